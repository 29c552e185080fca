"""Side by side with aihwkit: an ONNX classifier's top-1 accuracy under aihwkit 1.2.0's standard inference setting,
over many seeds, recorded in ``benchmarks/results/aihwkit-1.2.0.json`` for cimc's ``--chip aihwkit`` to be put beside.

Not part of the test suite and not run by CI: it needs torch and aihwkit, which cimc does not depend on. The tables
come from the recorded JSON (``python benchmarks/truthful_chips.py --only aihwkit``), which the project's venv reads.

What it does, per model (and nothing else):

1. builds the network in torch from the ONNX file (onnx2torch; an ``ai.onnx.ml`` LinearClassifier by hand as one
   ``nn.Linear``) and checks its float accuracy against onnxruntime on the same data;
2. with ``--fold-bn``, folds each BatchNormalization into the convolution before it, as cimc does; by default BN
   stays a digital torch layer, as ``convert_to_analog`` leaves it;
3. ``convert_to_analog(model, InferenceRPUConfig())`` with every default: ``PCMLikeNoiseModel``,
   ``GlobalDriftCompensation``, 7-bit inputs with ABS_MAX noise management, 9-bit ADC with out_bound 12 and
   iterative bound management, out_noise 0.06, tiles up to 512 x 512, digital bias;
4. for each seed s = 0 .. N-1: ``torch.manual_seed(s)``, ``program_analog_weights()``, then for each time t (1 s,
   1 h, 1 d, 1 y) ``drift_analog_weights(t)`` and the top-1 accuracy in eval mode. aihwkit's C++ tile seeds its
   output noise from the clock, so runs are not bit-reproducible: compare means over many seeds (the digits CNN
   spreads 8-14 points from seed to seed; 300 seeds give a standard error under 1 point);
5. writes the model's entry (per t: images right per seed, mean and sample std of the top-1; the float and
   IO-only accuracies; the exact command) into ``--out``, replacing an entry of the same name and keeping the others.

The aihwkit venv (CPU only; aihwkit 1.2.0 builds from its PyPI source, about 15 minutes on 2 cores)::

    apt-get update && apt-get install -y libopenblas-dev
    python3 -m venv aihwkit-venv && . aihwkit-venv/bin/activate
    pip install torch==2.13.0 'cmake>=4.2.1' 'scikit-build>=0.18.1' 'pybind11>=3.0.1' ninja setuptools wheel mypy
    MAX_JOBS=2 CMAKE_BUILD_PARALLEL_LEVEL=2 pip install --no-build-isolation torch==2.13.0 aihwkit==1.2.0
    pip install onnx onnxruntime onnx2torch scikit-learn

(``mypy`` must be there before the build: aihwkit's CMake runs its ``stubgen`` after linking ``rpu_base``.) The
torchvision wheel pip pulls in beside torch's CPU build may not load; aihwkit does not need it, and onnx2torch
imports it only for NonMaxSuppression and RoiAlign, so this script stands a stub in for it then.

The recorded figures, from the repository root (300 seeds; about 70, 90, 4 and 1 s on one core)::

    aihwkit-venv/bin/python benchmarks/aihwkit_side_by_side.py --model models/digits_cnn.onnx \\
        --data models/digits_test.npz --seeds 300
    aihwkit-venv/bin/python benchmarks/aihwkit_side_by_side.py --model models/digits_cnn.onnx \\
        --data models/digits_test.npz --seeds 300 --fold-bn
    aihwkit-venv/bin/python benchmarks/aihwkit_side_by_side.py --model models/digits_mlp.onnx \\
        --data models/digits_test.npz --seeds 300
    aihwkit-venv/bin/python benchmarks/aihwkit_side_by_side.py --model ort:logreg_iris.onnx --data sklearn:iris \\
        --seeds 300

``ort:logreg_iris.onnx`` is the scikit-learn logistic regression on iris that onnxruntime ships
(``onnxruntime.datasets``); ``sklearn:iris`` its 150 labelled samples (``sklearn.datasets.load_iris``): a model and
data no one here made.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
import types
from pathlib import Path

import aihwkit
import numpy as np
import onnx
import onnxruntime
import torch
from aihwkit.nn.conversion import convert_to_analog
from aihwkit.simulator.configs import InferenceRPUConfig
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "aihwkit-1.2.0.json"
#: 1 s, 1 hour, 1 day and 1 year (365 days) after programming, in seconds.
TIMES = (1.0, 3600.0, 86400.0, 31536000.0)


def linear_classifier(model: onnx.ModelProto) -> nn.Module:
    """An ``ai.onnx.ml`` LinearClassifier as one ``nn.Linear`` of its coefficients and intercepts: its LOGISTIC
    post-transform and the Normalizer or ZipMap after it do not move the arg-max, so top-1 is the layer's."""
    node = next(n for n in model.graph.node if n.op_type == "LinearClassifier")
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    intercepts = np.asarray(attributes["intercepts"], dtype=np.float32)
    coefficients = np.asarray(attributes["coefficients"], dtype=np.float32).reshape(intercepts.size, -1)
    layer = nn.Linear(coefficients.shape[1], intercepts.size)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(coefficients))
        layer.bias.copy_(torch.from_numpy(intercepts))
    return nn.Sequential(layer)


def _onnx2torch_convert():
    """``onnx2torch.convert``, with a stub for torchvision where its wheel cannot load beside torch's CPU build
    (onnx2torch imports it only for NonMaxSuppression and RoiAlign; the stub raises if they are reached)."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

        def unusable(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("torchvision cannot be loaded in this venv")

        stub, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
        ops.nms = ops.roi_align = ops.box_convert = unusable  # type: ignore[attr-defined]
        stub.ops = ops  # type: ignore[attr-defined]
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = stub, ops
    from onnx2torch import convert

    return convert


def model_path(name: str) -> Path:
    """``--model``: a file, or ``ort:NAME`` for a model bundled with onnxruntime."""
    if name.startswith("ort:"):
        from onnxruntime.datasets import get_example

        return Path(get_example(name[4:]))
    return Path(name)


def dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``--data``: an ``.npz`` with inputs ``x`` and integer labels ``y``, or ``sklearn:iris``."""
    if name == "sklearn:iris":
        from sklearn.datasets import load_iris

        iris = load_iris()
        return iris.data.astype(np.float32), iris.target.astype(np.int64)
    with np.load(name) as data:
        return data["x"].astype(np.float32), data["y"].astype(np.int64)


def to_torch(path: Path) -> tuple[nn.Module, str]:
    """The torch module of an ONNX file and how it was built."""
    model = onnx.load(str(path))
    if any(n.op_type == "LinearClassifier" for n in model.graph.node):
        return linear_classifier(model), "LinearClassifier as nn.Linear"
    return _onnx2torch_convert()(model), "onnx2torch"


def fold_batchnorm(module: nn.Module) -> int:
    """Fold each BatchNorm2d whose input is a Conv2d used only by it into that Conv2d (an fx graph module, as
    onnx2torch builds); the number folded."""
    if not isinstance(module, torch.fx.GraphModule):
        return 0
    modules = dict(module.named_modules())
    folded = 0
    for node in list(module.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        source = node.args[0]
        if not (isinstance(source, torch.fx.Node) and source.op == "call_module" and len(source.users) == 1):
            continue
        conv, bn = modules[source.target], modules[node.target]
        if not isinstance(conv, nn.Conv2d):
            continue
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
        node.replace_all_uses_with(source)
        module.graph.erase_node(node)
        folded += 1
    module.graph.lint()
    module.recompile()
    return folded


@torch.no_grad()
def correct(model: nn.Module, x: torch.Tensor, y: np.ndarray, batch: int = 512) -> int:
    """How many of ``x`` the model classifies as ``y`` says (top-1)."""
    right = 0
    for start in range(0, len(x), batch):
        out = model(x[start : start + batch])
        out = out[0] if isinstance(out, (tuple, list)) else out
        right += int((out.argmax(dim=1).numpy() == y[start : start + batch]).sum())
    return right


def onnxruntime_top1(path: Path, x: np.ndarray, y: np.ndarray) -> float | None:
    """Top-1 of the ONNX file under onnxruntime; None where it refuses the batch (logreg_iris.onnx declares its
    input [3, 2])."""
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out = session.run(None, {session.get_inputs()[0].name: x})[0]
    except InvalidArgument:
        return None
    predicted = out if out.ndim == 1 else out.argmax(axis=1)  # an ONNX-ML classifier's first output is its labels
    return float((predicted == y).mean())


def entry_name(model: Path, fold_bn: bool) -> str:
    """The entry's key in the results file: the model's stem, ``+fold-bn`` when BN was folded."""
    return model.stem + ("+fold-bn" if fold_bn else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an .onnx file, or ort:NAME (bundled with onnxruntime)")
    parser.add_argument("--data", required=True, help="an .npz with x and y, or sklearn:iris")
    parser.add_argument("--seeds", type=int, default=300, help="seeds 0 .. N-1 (default 300)")
    parser.add_argument("--fold-bn", action="store_true", help="fold BatchNormalization into the Conv before it")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"the results file (default {RESULTS.relative_to(ROOT)})"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    path = model_path(args.model)
    x_np, y = dataset(args.data)
    model, built_by = to_torch(path)
    model.eval()
    folded = fold_batchnorm(model) if args.fold_bn else 0
    x = torch.from_numpy(x_np)
    float_right = correct(model, x, y)

    rpu_config = InferenceRPUConfig()
    analog = convert_to_analog(model, rpu_config)
    analog.eval()
    # the IO path alone (no programming noise, no drift: alpha is 1 before programming), for orientation
    io_only = [correct(analog, x, y) for _ in range(5)]

    right: dict[float, list[int]] = {t: [] for t in TIMES}
    started = time.perf_counter()
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        analog.program_analog_weights()
        for t in TIMES:
            analog.drift_analog_weights(t)
            right[t].append(correct(analog, x, y))
        print(f"seed {seed}: " + "  ".join(f"{t:g} s {right[t][-1] / len(y):.4f}" for t in TIMES), flush=True)

    argv_shown = sys.argv[1:] if argv is None else argv
    entry = {
        "command": shlex.join(["python", "benchmarks/aihwkit_side_by_side.py", *argv_shown]),
        "aihwkit": aihwkit.__version__,
        "torch": torch.__version__,
        "model": args.model,
        "data": args.data,
        "samples": len(y),
        "built_by": built_by,
        "batchnorm_folded": folded,
        "analog_tiles": sum(1 for _ in analog.analog_tiles()),
        "fp32_top1_torch": float_right / len(y),
        "fp32_top1_onnxruntime": onnxruntime_top1(path, x_np, y),
        "io_only_top1_mean": float(np.mean(io_only)) / len(y),
        "seeds": args.seeds,
        "wall_s": round(time.perf_counter() - started, 1),
        "results": [
            {
                "t_s": t,
                "top1_mean": float(np.mean(counts)) / len(y),
                "top1_std": float(np.std(counts, ddof=1)) / len(y) if len(counts) > 1 else 0.0,
                "correct_per_seed": counts,
            }
            for t, counts in right.items()
        ],
    }
    recorded = json.loads(args.out.read_text()) if args.out.is_file() else {}
    recorded.setdefault("rpu_config", str(rpu_config))
    recorded.setdefault("entries", {})[entry_name(path, args.fold_bn)] = entry
    recorded["entries"] = dict(sorted(recorded["entries"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # one line per list of counts, not one line per count
    text = re.sub(r"\[[\d,\s]+\]", lambda m: json.dumps(json.loads(m.group(0))), json.dumps(recorded, indent=1))
    args.out.write_text(text + "\n")
    print(f"fp32 {entry['fp32_top1_torch']:.4f} (onnxruntime: {entry['fp32_top1_onnxruntime']})")
    print(f"IO only {entry['io_only_top1_mean']:.4f}")
    for r in entry["results"]:
        print(f"t = {r['t_s']:g} s: top-1 {r['top1_mean']:.4f} +- {r['top1_std']:.4f} over {args.seeds} seeds")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
