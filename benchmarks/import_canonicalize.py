"""Benchmark: cimc's ONNX import and ``canonicalize`` against onnxruntime's session creation, on a ResNet-50-sized
graph and the bundled digits models.

Usage: ``python benchmarks/import_canonicalize.py [--repeat 5] [--no-resnet]``

For each model it measures, in a fresh process per tool so that peak memory figures do not mix:

- cimc: ``onnx.load`` alone, ``import_onnx`` (load, opset conversion, shape inference, IR construction), the
  ``canonicalize`` pipeline, the ops in ``main`` before and after it, peak Python memory (tracemalloc, which sees
  numpy buffers too) and the peak RSS increase over the process's footprint after its imports;
- onnxruntime: ``InferenceSession`` creation with default options (CPU, all graph optimizations) and its peak RSS
  increase;
- both: the wall time of one batch-1 inference (best of ``--repeat`` after a warm-up), cimc's being the reference
  interpreter on the canonicalized module, and how far its logits are from onnxruntime's.

Times are the best of ``--repeat`` runs. The ResNet-50 is the v1.5 topology (stride in the 3x3 convolution of
each bottleneck, projection shortcuts with batch normalization) at opset 17 with seeded random weights, written to
a temporary folder; it is about 100 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
BUNDLED = ("digits_mlp.onnx", "digits_cnn.onnx")
SEED = 0
MIB = 1 << 20


# --- the ResNet-50 graph -----------------------------------------------------------------------------------------


class ResNetBuilder:
    """Appends ONNX nodes and seeded random initializers, named as torchvision names ResNet-50's layers."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []

    def tensor(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def node(self, op_type: str, name: str, inputs: list[str], **attributes: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name, **attributes))
        return name

    def conv(self, name: str, x: str, cin: int, cout: int, kernel: int, stride: int) -> str:
        """A bias-free convolution with He-initialized weights and 'same' padding."""
        weight = self.rng.standard_normal((cout, cin, kernel, kernel), dtype=np.float32) * np.sqrt(
            2 / (cin * kernel**2)
        )
        pad = kernel // 2
        return self.node(
            "Conv",
            name,
            [x, self.tensor(f"{name}.weight", weight)],
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad] * 4,
        )

    def batch_norm(self, name: str, x: str, channels: int, gain: float = 1.0) -> str:
        """Batch normalization with random running statistics; ``gain`` scales its output (small on residuals)."""
        params = [
            ("weight", gain * self.rng.uniform(0.5, 1.0, channels)),
            ("bias", self.rng.normal(0.0, 0.1, channels)),
            ("running_mean", self.rng.normal(0.0, 0.1, channels)),
            ("running_var", self.rng.uniform(0.5, 1.5, channels)),
        ]
        return self.node(
            "BatchNormalization", name, [x, *(self.tensor(f"{name}.{key}", v) for key, v in params)], epsilon=1e-5
        )

    def bottleneck(self, name: str, x: str, cin: int, width: int, stride: int) -> str:
        """1x1 -> 3x3 (stride here, as in v1.5) -> 1x1 with 4x expansion; a projection shortcut where shapes change."""
        cout = 4 * width
        y = self.batch_norm(f"{name}.bn1", self.conv(f"{name}.conv1", x, cin, width, 1, 1), width)
        y = self.node("Relu", f"{name}.relu1", [y])
        y = self.batch_norm(f"{name}.bn2", self.conv(f"{name}.conv2", y, width, width, 3, stride), width)
        y = self.node("Relu", f"{name}.relu2", [y])
        y = self.batch_norm(f"{name}.bn3", self.conv(f"{name}.conv3", y, width, cout, 1, 1), cout, gain=0.25)
        if stride != 1 or cin != cout:
            shortcut = self.conv(f"{name}.downsample.0", x, cin, cout, 1, stride)
            x = self.batch_norm(f"{name}.downsample.1", shortcut, cout)
        return self.node("Relu", f"{name}.relu3", [self.node("Add", f"{name}.add", [y, x])])

    def classifier(self, name: str, features: str, channels: int, classes: int, size: int) -> onnx.ModelProto:
        """Global average pooling and a fully connected layer on ``features``, wrapped as the checked model
        ``name`` with input ``x`` [N, 3, size, size] and output ``logits`` [N, classes]."""
        y = self.node("Flatten", "flatten", [self.node("GlobalAveragePool", "avgpool", [features])], axis=1)
        weight = self.rng.standard_normal((classes, channels), dtype=np.float32) / np.sqrt(channels)
        head = [y, self.tensor("fc.weight", weight), self.tensor("fc.bias", np.zeros(classes))]
        self.nodes.append(helper.make_node("Gemm", head, ["logits"], "fc", transB=1))
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        onnx.checker.check_model(model)
        return model


def resnet50(rng: np.random.Generator) -> onnx.ModelProto:
    """ResNet-50 v1.5 for 224x224 RGB images and 1000 classes: input ``x`` [N, 3, 224, 224], output ``logits``."""
    b = ResNetBuilder(rng)
    y = b.node("Relu", "relu", [b.batch_norm("bn1", b.conv("conv1", "x", 3, 64, 7, 2), 64)])
    y = b.node("MaxPool", "maxpool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    channels = 64
    for stage, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1):
        for block in range(blocks):
            y = b.bottleneck(f"layer{stage}.{block}", y, channels, width, stride if block == 0 else 1)
            channels = 4 * width
    return b.classifier("resnet50", y, channels, 1000, 224)


# --- measurements, each in its own process -----------------------------------------------------------------------


def timed(action: Callable[..., object], *args: object) -> tuple[float, object]:
    """The wall time of one call ``action(*args)``, and its result."""
    start = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - start, result


def best_time(action: Callable[[], object], repeat: int) -> float:
    """The shortest wall time of ``repeat`` calls; each result is dropped before the next call."""
    return min(timed(action)[0] for _ in range(repeat))


def rss_status(field: str) -> int:
    """``VmRSS`` (resident set size now) or ``VmHWM`` (its peak) of this process in bytes, from Linux's /proc.

    Not ``ru_maxrss``: Linux carries that over from the forking parent into the child, across ``exec``.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # given in kB
    raise RuntimeError(f"/proc/self/status has no {field}; this benchmark needs Linux")


def start_peak_rss() -> int:
    """Reset the peak RSS to the current RSS (``clear_refs`` code 5) and return it, to measure what follows."""
    Path("/proc/self/clear_refs").write_text("5")
    return rss_status("VmRSS")


def batch_one_input(path: Path) -> tuple[str, np.ndarray]:
    """A seeded random batch-1 input for the model's only input, symbolic dimensions set to 1."""
    (graph_input,) = onnx.load(path, load_external_data=False).graph.input
    shape = [d.dim_value or 1 for d in graph_input.type.tensor_type.shape.dim]
    return graph_input.name, np.random.default_rng(SEED).random(shape, dtype=np.float32)


def measure_cimc(path: Path, repeat: int, output: Path) -> dict[str, float]:
    """Import and canonicalize times, op counts, peak memory and batch-1 interpreter time; writes the logits."""
    from cimc.compiler.onnx_importer import import_onnx
    from cimc.ir.dialects.builtin import ModuleOp, ReturnOp
    from cimc.ir.interpreter import run_module
    from cimc.ir.pass_manager import PassManager

    def op_counts(module: ModuleOp) -> tuple[int, int]:
        ops = [op for op in module.function("main").body.ops if not isinstance(op, ReturnOp)]
        return len(ops), sum(op.name == "graph.constant" for op in ops)

    def canonicalize(module: ModuleOp) -> None:
        PassManager("canonicalize").run(module)

    name, x = batch_one_input(path)
    rss_before = start_peak_rss()
    tracemalloc.start()
    module = import_onnx(path)
    canonicalize(module)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    module = None
    rss_increase = rss_status("VmHWM") - rss_before

    load_s = best_time(lambda: onnx.load(path), repeat)
    import_times, canonicalize_times = [], []
    for _ in range(repeat):
        module = None
        seconds, module = timed(import_onnx, path)
        import_times.append(seconds)
        before = op_counts(module)
        canonicalize_times.append(timed(canonicalize, module)[0])
    after = op_counts(module)

    run_module(module, {name: x})  # warm-up
    infer_s = best_time(lambda: run_module(module, {name: x}), repeat)
    np.save(output, next(iter(run_module(module, {name: x}).values())))
    return {
        "load_s": load_s,
        "import_s": min(import_times),
        "canonicalize_s": min(canonicalize_times),
        "ops_before": before[0],
        "constants_before": before[1],
        "ops_after": after[0],
        "constants_after": after[1],
        "traced_peak": traced_peak,
        "rss_increase": rss_increase,
        "infer_s": infer_s,
    }


def measure_onnxruntime(path: Path, repeat: int, output: Path) -> dict[str, float]:
    """Session creation time, its peak RSS increase and batch-1 inference time; writes the logits."""
    import onnxruntime as ort

    def create() -> ort.InferenceSession:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    name, x = batch_one_input(path)
    rss_before = start_peak_rss()
    session = create()
    rss_increase = rss_status("VmHWM") - rss_before
    session_s = best_time(create, repeat)
    session.run(None, {name: x})  # warm-up
    infer_s = best_time(lambda: session.run(None, {name: x}), repeat)
    np.save(output, session.run(None, {name: x})[0])
    return {"session_s": session_s, "rss_increase": rss_increase, "infer_s": infer_s}


def measure_in_child(tool: str, path: Path, repeat: int, output: Path) -> dict[str, float]:
    """Run one tool's measurement in a fresh interpreter and return its figures."""
    command = [sys.executable, __file__, "--child", tool, str(path), "--repeat", str(repeat), "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"measuring {tool} on {path.name} failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout.splitlines()[-1])


# --- the report --------------------------------------------------------------------------------------------------


def parameter_count(path: Path) -> int:
    return sum(int(np.prod(t.dims)) for t in onnx.load(path).graph.initializer)


def milliseconds(seconds: float) -> str:
    """A duration in milliseconds, with three decimals below 10 ms."""
    value = seconds * 1e3
    return f"{value:.3f}" if value < 10 else f"{value:,.1f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with columns padded to their widest cell."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("| " + " | ".join(c.rjust(w) for c, w in zip(line, widths)) + " |" for line in lines)


def report(paths: list[Path], repeat: int, scratch: Path) -> str:
    compile_rows, memory_rows, inference_rows = [], [], []
    for path in paths:
        cimc = measure_in_child("cimc", path, repeat, scratch / f"{path.stem}.cimc.npy")
        ort = measure_in_child("onnxruntime", path, repeat, scratch / f"{path.stem}.ort.npy")
        ours, reference = np.load(scratch / f"{path.stem}.cimc.npy"), np.load(scratch / f"{path.stem}.ort.npy")
        total_s = cimc["import_s"] + cimc["canonicalize_s"]
        name = path.stem
        compile_rows.append(
            [
                name,
                f"{parameter_count(path):,}",
                f"{path.stat().st_size / MIB:.2f}",
                milliseconds(cimc["load_s"]),
                milliseconds(cimc["import_s"]),
                milliseconds(cimc["canonicalize_s"]),
                milliseconds(ort["session_s"]),
                f"{total_s / ort['session_s']:.2f}",
                f"{cimc['ops_before']} ({cimc['constants_before']})",
                f"{cimc['ops_after']} ({cimc['constants_after']})",
            ]
        )
        memory_rows.append(
            [
                name,
                f"{cimc['traced_peak'] / MIB:.1f}",
                f"{cimc['rss_increase'] / MIB:.1f}",
                f"{ort['rss_increase'] / MIB:.1f}",
                f"{cimc['rss_increase'] / max(ort['rss_increase'], 1):.2f}",
            ]
        )
        error = np.abs(ours - reference).max() / np.abs(reference).max()
        inference_rows.append(
            [
                name,
                milliseconds(cimc["infer_s"]),
                milliseconds(ort["infer_s"]),
                f"{cimc['infer_s'] / ort['infer_s']:.0f}",
                f"{error:.1e}",
                str(bool((ours.argmax(axis=-1) == reference.argmax(axis=-1)).all())),
            ]
        )
    compile_header = [
        "model",
        "parameters",
        "MiB",
        "onnx.load ms",
        "cimc import ms",
        "canonicalize ms",
        "ORT session ms",
        "(import+canon)/ORT",
        "ops before (const)",
        "ops after (const)",
    ]
    memory_header = ["model", "cimc peak traced MiB", "cimc peak RSS +MiB", "ORT peak RSS +MiB", "RSS cimc/ORT"]
    inference_header = ["model", "cimc interpreter ms", "ORT ms", "cimc/ORT", "max rel. diff", "same top-1"]
    return "\n\n".join(
        [
            f"Import + canonicalize (best of {repeat}) vs onnxruntime InferenceSession creation",
            table(compile_header, compile_rows),
            "Memory (import + canonicalize; RSS increase over the process after its imports)",
            table(memory_header, memory_rows),
            f"One batch-1 inference (best of {repeat} after a warm-up): reference interpreter on the canonicalized "
            "module vs onnxruntime; max rel. diff = max |cimc - ORT| / max |ORT| over the logits",
            table(inference_header, inference_rows),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing; the best is reported (default 5)")
    parser.add_argument("--no-resnet", action="store_true", help="only the bundled models")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tool, path = args.child
        measure = measure_cimc if tool == "cimc" else measure_onnxruntime
        print(json.dumps(measure(Path(path), args.repeat, args.output)))
        return
    with tempfile.TemporaryDirectory(prefix="cimc-bench-") as scratch:
        paths = [MODELS_DIR / name for name in BUNDLED]
        if not args.no_resnet:
            start = time.perf_counter()
            resnet = Path(scratch) / "resnet50.onnx"
            onnx.save(resnet50(np.random.default_rng(SEED)), resnet)
            print(f"built {resnet.name} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
            paths.append(resnet)
        print(report(paths, args.repeat, Path(scratch)))


if __name__ == "__main__":
    main()
