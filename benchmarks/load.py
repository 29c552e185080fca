"""Benchmark: what starting a compiled model costs, from a fresh process: imports, loading the ``.cimb`` (parse,
verify, validate its program against its chip), making an ideal session, programming the arrays with every effect
on, the first batch, and the whole ``cimc run`` command; the binary's bytes per weight; and which heavy packages a
run pulls in (it should pull in none of ``onnx``, ``onnxruntime``, ``ortools``, ``pandas`` and ``ml_dtypes``).

Usage: ``python benchmarks/load.py [--repeat 3]``

Two models, compiled once for the ``default`` chip: the bundled digits CNN and a CIFAR ResNet-18 (seeded weights,
``benchmarks/lowering.py``'s). Every figure is the least of ``--repeat`` fresh processes (``python -c``), so each
pays its imports and disk reads as a user's first command does; the machine's load shows in all of them alike.
"program s" makes a ``Simulator`` with ``benchmarks/simulate.py``'s ``noisy_config`` (the PCM device with every
effect on: programming error, drift to 1 h with its spread and compensation, 1/f noise, 0.1% stuck cells each way,
0.2 LSB ADC offsets, IR drop); the goal is load + program under 1 s (issue 13), printed beside it. Issue 13's goal
for the binary is at most 2 bytes a weight for ResNet-18 (a model as small as the digits CNN is mostly its program,
IR text and report).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from import_canonicalize import MODELS_DIR, table
from lowering import resnet18_cifar

from cimc.compiler.pipeline import PipelineOptions, compile_binary

#: One fresh process: the times of its steps and the heavy packages it imported, as JSON on stdout.
PROBE = """
import json, sys, time
start = time.perf_counter()
from cimc.runtime import InferenceSession
from cimc.runtime.analog import AnalogConfig
from cimc.runtime.binary import load_binary
from cimc.runtime.devices import device
from cimc.runtime.simulator import Simulator
imported = time.perf_counter()
import numpy as np
x = np.load(sys.argv[2])
model = load_binary(sys.argv[1])
loaded = time.perf_counter()
session = InferenceSession(model, ideal=True)
made = time.perf_counter()
session.run(None, {session.get_inputs()[0].name: x})
ran = time.perf_counter()
heavy = sorted(name for name in HEAVY if name in sys.modules)
noisy = AnalogConfig(device=device("pcm"), drift_time_s=3600.0, stuck_on_rate=0.001, stuck_off_rate=0.001,
                     adc_offset_lsb=0.2)  # benchmarks/simulate.py's noisy_config
Simulator(model, noisy)
programmed = time.perf_counter()
print(json.dumps({"import": imported - start, "load": loaded - imported, "session": made - loaded,
                  "run": ran - made, "program": programmed - ran, "heavy": heavy}))
"""

#: Packages a run must not import.
HEAVY = ("onnx", "onnxruntime", "ortools", "pandas", "ml_dtypes")


def probe(binary: Path, inputs: Path) -> dict:
    """One fresh process's figures (``PROBE``)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.replace("HEAVY", repr(HEAVY)), str(binary), str(inputs)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def command_seconds(binary: Path, inputs: Path) -> float:
    """Wall time of ``cimc run BINARY --input X --ideal`` in a fresh process."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cimc.compiler.cli", "run", str(binary), "--input", str(inputs), "--ideal"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def measure(name: str, model: Path, calib: dict | None, x: np.ndarray, repeat: int, scratch: Path) -> list[str]:
    """One model's row: the least of ``repeat`` fresh processes for each step, and the binary's bytes per weight
    (its size over the model's weights: the initializers of two or more dimensions)."""
    binary = scratch / f"{name}.cimb"
    compile_binary(model, binary, PipelineOptions(calib=calib))
    inputs = scratch / f"{name}.npy"
    np.save(inputs, x)
    runs = [probe(binary, inputs) for _ in range(repeat)]
    command = min(command_seconds(binary, inputs) for _ in range(repeat))
    step = {key: min(r[key] for r in runs) for key in ("import", "load", "session", "run", "program")}
    start = min(r["load"] + r["program"] for r in runs)
    heavy = sorted({m for r in runs for m in r["heavy"]})
    weights = sum(int(np.prod(t.dims)) for t in onnx.load(str(model)).graph.initializer if len(t.dims) >= 2)
    return [
        name,
        f"{binary.stat().st_size / 1e6:,.1f}",
        f"{binary.stat().st_size / weights:.2f}",
        *(f"{step[key]:.3f}" for key in ("import", "load", "session", "run", "program")),
        f"{start:.3f} ({start:.2f}x the 1 s goal)",
        f"{command:.3f}",
        ", ".join(heavy) or "none",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        digits = np.load(MODELS_DIR / "digits_test.npz")["x"][:1]
        rows = [measure("digits CNN", MODELS_DIR / "digits_cnn.onnx", None, digits, args.repeat, scratch)]
        resnet = scratch / "resnet18_cifar.onnx"
        onnx.save(resnet18_cifar(rng), resnet)
        calib = {"x": rng.standard_normal((8, 3, 32, 32)).astype(np.float32)}
        x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
        rows.append(measure("ResNet-18 (CIFAR)", resnet, calib, x, args.repeat, scratch))
    header = ["model", "binary MB", "bytes/weight", "import s", "load s", "ideal session s"]
    header += ["first run s", "program s", "load + program s", "cimc run s", "heavy imports"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
