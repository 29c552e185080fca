"""Benchmark: the simulator's speed at each fidelity level against onnxruntime, measured in the same run, beside the
goals issue 13 sets; the per-read path on one large layer against the hardware-arithmetic floor; and peak memory
while 10,000 CIFAR images stream through.

Usage: ``python benchmarks/simulate.py [--repeat 3] [--batch 64] [--per-read-images 4] [--stream-images 10000]
[--models digits_cnn,resnet18_cifar,mobilenet_v2] [--no-layer] [--no-stream]``

Models, each compiled with the chip's crossbar options (8-bit weights over 2-bit cells in differential pairs,
1-bit DACs, 8-bit ADCs, 64x64 arrays) for the ``default`` chip, or for the default tile on a bigger mesh where the
model does not fit (``benchmarks/compile.py``'s ``choose_chip``): the bundled digits CNN on its test split, and two
models with seeded weights on seeded standard-normal images, a CIFAR ResNet-18 and the ImageNet MobileNetV2
(``benchmarks/lowering.py``). Per model, at ``--batch`` images:

- onnxruntime on the fp32 model (CPU, 2 intra-op threads, the whole batch in one call);
- ``ideal``: every analog effect off (``--ideal``), the exact crossbar arithmetic, bit for bit;
- ``statistical`` and ``per-read``: the PCM device with every effect on (programming error, drift to one hour with
  its compensation, 1/f noise, read noise, 0.1% stuck cells each way, a 0.2 LSB ADC offset spread, IR drop), at
  each fidelity level; per-read is timed on ``--per-read-images`` images and scaled to the batch;
- for the CIFAR ResNet-18, the same model compiled for the ``aihwkit`` preset (aihwkit's analog tile: 512-row
  blocks, range-managed converters, its PCM model) at the statistical level;
- programming: making the session (the arrays programmed once per seed and drift time), which a run does once.

The ratios are simulated time over onnxruntime's, with the goal beside each where the issue sets one. Then the
per-read path on one 1024x1024 layer at batch 256 against the floor (``benchmarks/read_floor.py``), and, in a fresh
process, ``cimc.runtime.evaluate`` over ``--stream-images`` CIFAR images read from a memory-mapped file in batches of
``--batch`` at the ``--stream-level`` (``ideal`` by default, the quickest to stream 10,000 images through;
``statistical`` and ``per-read`` keep the same batch-bounded buffers): the peak resident set after the first batch
and after the last, and the peak anonymous memory (the process's own, without the pages of the memory-mapped data
set, which the resident set counts as they are read), which stays flat when memory is bounded by a batch. Times
are the best of ``--repeat`` runs after one warm-up (numba compiles, or loads its cache).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from compile import Model, choose_chip
from import_canonicalize import MIB, MODELS_DIR, table
from lowering import mobilenet_v2, resnet18_cifar

from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.runtime import InferenceSession
from cimc.runtime.binary import load_binary

#: The issue's goals: simulated time over onnxruntime's, by (model, level).
GOALS = {
    ("resnet18_cifar", "ideal"): 1.5,
    ("mobilenet_v2", "ideal"): 3.0,
    ("resnet18_cifar", "statistical"): 3.0,
    ("resnet18_cifar", "aihwkit statistical"): 2.5,
}

#: Every effect on, as the module docstring lists them (``InferenceSession`` settings).
EFFECTS = {"device": "pcm", "drift_time": "1h", "stuck_on_rate": 0.001, "stuck_off_rate": 0.001, "adc_offset_lsb": 0.2}

MODELS = ("digits_cnn", "resnet18_cifar", "mobilenet_v2")
SEED = 0


def best(action: Callable[[], object], repeat: int) -> float:
    """The least wall time of ``repeat`` runs of ``action`` after one warm-up run."""
    action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def onnxruntime_time(path: Path, x: np.ndarray, repeat: int) -> float:
    """onnxruntime's least time for batch ``x`` (CPU, 2 intra-op threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return best(lambda: session.run(None, {name: x}), repeat)


def prepare(name: str, scratch: Path, batch: int) -> tuple[Model, np.ndarray]:
    """Model ``name`` as a file with its calibration set and chip, and a batch of ``batch`` inputs for it."""
    if name == "digits_cnn":
        x = np.load(MODELS_DIR / "digits_test.npz")["x"][:batch]
        return Model(name, MODELS_DIR / "digits_cnn.onnx", None), x
    rng = np.random.default_rng(SEED)
    proto = {"resnet18_cifar": resnet18_cifar, "mobilenet_v2": mobilenet_v2}[name](rng)
    shape = [d.dim_value or 1 for d in proto.graph.input[0].type.tensor_type.shape.dim][1:]
    path, calib = scratch / f"{name}.onnx", scratch / f"{name}_calib.npz"
    onnx.save(proto, path)
    np.savez(calib, x=rng.standard_normal((8, *shape)).astype(np.float32))
    model = Model(name, path, calib)
    choose_chip(model, scratch)
    return model, rng.standard_normal((batch, *shape)).astype(np.float32)


def session_times(binary: Path, x: np.ndarray, settings: dict[str, Any], repeat: int) -> tuple[float, float]:
    """Seconds to make a session with ``settings`` (programming the arrays) and its least time for batch ``x``."""
    model = load_binary(binary)
    start = time.perf_counter()
    session = InferenceSession(model, batch_size=len(x), **settings)
    program_s = time.perf_counter() - start
    name = session.get_inputs()[0].name
    return program_s, best(lambda: session.run(None, {name: x}), repeat)


def ratio(name: str, level: str, seconds: float, ort_s: float) -> str:
    """``seconds`` over onnxruntime's, with the goal and whether it is met where the issue sets one."""
    value = seconds / ort_s
    goal = GOALS.get((name, level))
    return f"{value:.2f}x" if goal is None else f"{value:.2f}x ({'met' if value <= goal else 'NOT met'}: <= {goal}x)"


def measure(model: Model, x: np.ndarray, args: argparse.Namespace, scratch: Path) -> list[list[str]]:
    """One model's rows: one per level, with images per second, the ratio to onnxruntime and programming time."""
    binary = scratch / f"{model.name}.cimb"
    compile_binary(model.path, binary, PipelineOptions(chip=model.chip, calib=model.calib))
    ort_s = onnxruntime_time(model.path, x, args.repeat)
    rows = [[model.name, "onnxruntime fp32", f"{len(x) / ort_s:,.1f}", "1.00x", ""]]
    few = x[: args.per_read_images]
    levels = [
        ("ideal", {"ideal": True}, x),
        ("statistical", {**EFFECTS, "fidelity": "statistical"}, x),
        ("per-read", {**EFFECTS, "fidelity": "per-read"}, few),
    ]
    for level, settings, batch in levels:
        program_s, run_s = session_times(binary, batch, settings, max(1, args.repeat if batch is x else 1))
        run_s *= len(x) / len(batch)
        rows.append(
            [model.name, level, f"{len(x) / run_s:,.2f}", ratio(model.name, level, run_s, ort_s), f"{program_s:.2f}"]
        )
    if model.name == "resnet18_cifar":
        aihwkit = scratch / f"{model.name}_aihwkit.cimb"
        compile_binary(model.path, aihwkit, PipelineOptions(chip="aihwkit", calib=model.calib))
        level = "aihwkit statistical"
        program_s, run_s = session_times(aihwkit, x, {"drift_time": "1h", "fidelity": "statistical"}, args.repeat)
        rows.append(
            [model.name, level, f"{len(x) / run_s:,.2f}", ratio(model.name, level, run_s, ort_s), f"{program_s:.2f}"]
        )
    return rows


# --- peak memory over a long stream, in a fresh process ----------------------------------------------------------

STREAM_PROBE = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[4])
from import_canonicalize import rss_status
from cimc.runtime import InferenceSession
from cimc.runtime.evaluate import evaluate
x = np.load(sys.argv[2], mmap_mode="r")
batch = int(sys.argv[3])
settings = json.loads(sys.argv[5])
peaks, anon = {}, [0]
def progress(done, total):
    anon[0] = max(anon[0], rss_status("RssAnon"))  # the process's own memory, without the mapped data's pages
    if done == batch or done == total:
        peaks[done] = [rss_status("VmHWM"), anon[0]]
result = evaluate(lambda seed: InferenceSession(sys.argv[1], batch_size=batch, seed=seed, **settings), x, None,
                  progress=progress)
print(json.dumps({str(k): v for k, v in peaks.items()}))
"""


def stream_memory(binary: Path, images: int, batch: int, level: str, scratch: Path) -> list[str]:
    """Peak RSS of a fresh process evaluating ``images`` memory-mapped CIFAR images at ``level``, after the first
    batch and at the end."""
    data = scratch / "stream.npy"
    x = np.lib.format.open_memmap(data, mode="w+", dtype=np.float32, shape=(images, 3, 32, 32))
    rng = np.random.default_rng(SEED)
    for start in range(0, images, 1000):  # written in pieces: the data set is never whole in memory here either
        x[start : start + 1000] = rng.standard_normal((min(1000, images - start), 3, 32, 32), dtype=np.float32)
    x.flush()
    del x
    settings = json.dumps({"ideal": True} if level == "ideal" else {**EFFECTS, "fidelity": level})
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", STREAM_PROBE, str(binary), str(data), str(batch), str(Path(__file__).parent), settings],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    peaks = {int(k): v for k, v in json.loads(done.stdout.splitlines()[-1]).items()}
    first, last = peaks[min(peaks)], peaks[max(peaks)]
    return [
        level,
        f"{images:,}",
        f"{batch}",
        f"{seconds:.0f}",
        *(f"{value / MIB:,.0f}" for value in (first[0], last[0], first[1], last[1])),
        f"{images * 3 * 32 * 32 * 4 / MIB:,.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--per-read-images", type=int, default=4, help="images simulated per read, scaled up")
    parser.add_argument("--stream-images", type=int, default=10_000)
    parser.add_argument("--stream-level", choices=("ideal", "statistical", "per-read"), default="ideal")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-layer", action="store_true", help="skip the 1024x1024 layer against the floor")
    parser.add_argument("--no-stream", action="store_true", help="skip the peak memory of a long stream")
    args = parser.parse_args()

    rows: list[list[str]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        for name in args.models.split(","):
            model, x = prepare(name, scratch, args.batch)
            notes += [model.chip_note] if model.chip_note else []
            rows += measure(model, x, args, scratch)
        print(table(["model", "level", "img/s", "time / onnxruntime", "programming s"], rows))
        for note in notes:
            print(f"note: {note}")
        if not args.no_layer:
            from read_floor import measure_layer
            from read_floor import report as report_layer

            print()
            print(report_layer(measure_layer(batch=256, repeat=args.repeat)))
        if not args.no_stream:
            binary = scratch / "resnet18_cifar.cimb"
            if not binary.exists():
                model, _ = prepare("resnet18_cifar", scratch, 1)
                compile_binary(model.path, binary, PipelineOptions(chip=model.chip, calib=model.calib))
            print()
            header = [
                "level",
                "CIFAR images",
                "batch",
                "seconds",
                "peak RSS after 1 batch MiB",
                "at the end MiB",
                "peak anonymous after 1 batch MiB",
                "at the end MiB",
                "mapped data MiB",
            ]
            print(table(header, [stream_memory(binary, args.stream_images, args.batch, args.stream_level, scratch)]))


if __name__ == "__main__":
    main()
