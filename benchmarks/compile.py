"""Benchmark: the whole compilation, ONNX to a ``.cimb`` binary, stage by stage, with peak memory, placement quality
and onnxruntime's session creation for comparison, on the bundled digits models, a CIFAR ResNet-18 and real
topologies the onnx package ships (ResNet-50 by default).

Usage: ``python benchmarks/compile.py [--repeat 3] [--placement-effort 10] [--workers 1] [--models a,b,...]``

Each model is compiled by ``compile_binary`` with the chip's crossbar options (8-bit inputs and weights, 2-bit
cells, 1-bit DACs, exact ADCs, differential pairs, 64x64 arrays) and ``place`` given ``--placement-effort`` (CP-SAT
deterministic seconds, not wall time), seed 0 and ``--workers`` CP-SAT workers. Per model it prints:

- the wall time of each step, from the timings ``compile_binary`` returns: import + canonicalize (the import is
  what the run took beyond the timed steps), ``calibrate-activations``, ``lower-to-cim``, ``tile``, ``bit-slice``,
  ``split-groups``, ``place``, codegen + binary; and their total, end to end;
- peak memory: the increase of the process's peak resident set (Linux's ``VmHWM``, reset through
  ``/proc/self/clear_refs`` once cimc and OR-Tools are imported) during the first compilation, in a fresh process
  per model so that models do not pollute each other's figures; RSS rather than tracemalloc, which would slow the
  timed run down and miss OR-Tools' native memory;
- the arrays programmed, the array groups (``cim.program`` ops after ``split-groups``), the tiles used, the
  placement's traffic x hops against the naive row-major placement's and the lower bound, the solver's status, and
  the binary's size;
- the time ``onnxruntime.InferenceSession`` takes to load and optimize the same file (CPU, default options),
  measured in the same process, and the ratio of cimc's end-to-end time to it;
- for CIFAR ResNet-18, that ratio and the placement's (traffic x hops over the row-major placement's and over the
  lower bound) beside issue 13's goals (``COMPILE_OVER_SESSION_GOAL``, ``OVER_NAIVE_GOAL``, ``OVER_BOUND_GOAL``),
  with its peak memory, and the compile/session ratio in CPU time too (the process's, least of the runs): on a
  machine other processes load, wall times stretch with the load, CPU times much less.

Times are those of the fastest of ``--repeat`` compilations, and the best of as many session creations.

Models: ``digits_mlp`` and ``digits_cnn`` (``models/``, calibrated on their bundled set), ``resnet18_cifar``
(``benchmarks/lowering.py``, seeded random weights) and the real topologies under onnx's backend test data
(``resnet50``, ``vgg19``, ``squeezenet``, ...: the weights there are stripped, so every float weight is filled with
seeded random values of its shape and dtype). These calibrate on 4 seeded standard-normal inputs of the model's
input shape. Each compiles for the ``default`` chip where it fits; a model too big for it gets the same tile on a
bigger square mesh, described in a TOML file written to a temporary folder (the output says which). A model cimc
cannot compile (onnx's AlexNet, ZFNet-512 and Inception v1 use LRN) gets a line saying why instead of a row.
``vgg19`` works but is left out by default: about 281k arrays, over 5 GiB of memory and a binary over 1 GiB.

The issue asks that a ResNet-50-sized graph compile end to end in under 60 s on a 2-core machine; the last line
says whether onnx's ResNet-50 did.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from import_canonicalize import MIB, MODELS_DIR, SEED, milliseconds, rss_status, start_peak_rss, table
from lowering import resnet18_cifar
from onnx import helper, numpy_helper

from cimc.compiler.onnx_importer import OnnxImportError

#: The issue's bound on compiling a ResNet-50-sized graph end to end, in seconds.
RESNET50_LIMIT_S = 60.0
#: Issue 13's goals for CIFAR ResNet-18 at the default effort: the whole compile within this many times
#: onnxruntime's session creation, and traffic x hops within these shares of the row-major placement's and of the
#: lower bound.
COMPILE_OVER_SESSION_GOAL = 20.0
OVER_NAIVE_GOAL = 0.38
OVER_BOUND_GOAL = 1.11

#: The steps ``compile_binary`` times after the import, by pass name (options dropped), in pipeline order.
STEPS = (
    "canonicalize",
    "calibrate-activations",
    "lower-to-cim",
    "tile",
    "bit-slice",
    "split-groups",
    "place",
    "codegen + binary",
)

#: Seeded random calibration inputs per model that has no bundled set.
CALIB_SAMPLES = 4

#: A model too big for the default chip gets a square mesh grown this many tiles a side at a time ...
MESH_STEP = 8
#: ... until its arrays fill at most this share of the chip, leaving the placer room to keep layers together.
MESH_FILL = 0.75

#: The onnx package's backend test data: ``real/test_<name>/`` holds each real model (or points to it).
ONNX_TEST_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"

BUNDLED = ("digits_mlp", "digits_cnn")
DEFAULT_MODELS = (*BUNDLED, "resnet18_cifar", "resnet50")


# --- the models --------------------------------------------------------------------------------------------------


def real_models() -> dict[str, Path]:
    """The real topologies the onnx package ships, by name (``resnet50``): each ``real/test_<name>/`` folder's
    ``model.onnx``, or the local file its ``data.json`` names (recent onnx releases keep a "light" copy, its
    weights replaced by ``ConstantOfShape`` placeholders, under ``light/``)."""
    found = {}
    for folder in sorted((ONNX_TEST_DATA / "real").glob("test_*")):
        model = folder / "model.onnx"
        if not model.is_file() and (folder / "data.json").is_file():
            url = json.loads((folder / "data.json").read_text())["url"]
            model = Path(onnx.__file__).parents[1] / url  # relative to the folder holding the onnx package
        if model.is_file():
            found[folder.name.removeprefix("test_")] = model
    return found


def random_weight(shape: tuple[int, ...], dtype: np.dtype, positive: bool, rng: np.random.Generator) -> np.ndarray:
    """Seeded values for one weight: He-normal for a kernel or matrix (fan-in: every dimension but the first, as
    in Conv's [M, C, kh, kw]), N(0, 0.1) for a vector, and uniform in [0.5, 1.5] where the value must be positive."""
    if positive:
        values = rng.uniform(0.5, 1.5, shape)
    elif len(shape) >= 2:
        values = rng.standard_normal(shape) * np.sqrt(2 / max(int(np.prod(shape[1:])), 1))
    else:
        values = rng.normal(0.0, 0.1, shape)
    return values.astype(dtype)


def with_random_weights(model: onnx.ModelProto, rng: np.random.Generator) -> onnx.ModelProto:
    """``model`` with every float weight filled with seeded random values of its shape and dtype: the float
    initializers (their data may be stripped or external: only dims and type are read) and the ``ConstantOfShape``
    placeholders of constant shape that onnx's light models stand in for weights with. Integer initializers
    (shapes, axes) stay; BatchNormalization's scale and variance are drawn positive. Initializers no node uses are
    dropped, and none stays a graph input (IR version 4 on), so that every consumer sees constants."""
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    weights: dict[str, tuple[tuple[int, ...], np.dtype]] = {}  # name -> shape, dtype
    nodes = []
    for t in graph.initializer:
        dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
        if np.issubdtype(dtype, np.floating):
            weights[t.name] = (tuple(t.dims), dtype)
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in initializers:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            dtype = np.dtype(np.float32) if value is None else helper.tensor_dtype_to_np_dtype(value.data_type)
            shape = tuple(int(d) for d in numpy_helper.to_array(initializers[node.input[0]]))
            weights[node.output[0]] = (shape, dtype)
        else:
            nodes.append(node)
    used = {name for node in nodes for name in node.input}
    positive = {n.input[i] for n in nodes if n.op_type == "BatchNormalization" for i in (1, 4) if i < len(n.input)}
    kept = [t for t in graph.initializer if t.name in used and t.name not in weights]
    filled = [
        numpy_helper.from_array(random_weight(shape, dtype, name in positive, rng), name)
        for name, (shape, dtype) in weights.items()
        if name in used
    ]
    inputs = [i for i in graph.input if i.name not in initializers]
    del graph.node[:], graph.initializer[:], graph.input[:]
    graph.node.extend(nodes)
    graph.initializer.extend(kept + filled)
    graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, 4)
    onnx.checker.check_model(model)
    return model


def random_inputs(model: onnx.ModelProto, samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``samples`` seeded standard-normal samples for every input of ``model``, stacked along the batch axis (a
    fixed batch of B takes ``samples * B`` rows); a ValueError for an input that is not float or whose other
    dimensions are not fixed."""
    inputs = {}
    for value in model.graph.input:
        tensor = value.type.tensor_type
        dims = [d.dim_value for d in tensor.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        if not dims or not all(dims[1:]) or not np.issubdtype(dtype, np.floating):
            raise ValueError(
                f"model '{model.graph.name}': input '{value.name}' is {dtype}{dims}; random calibration inputs need "
                "a float tensor whose dimensions after the batch are fixed"
            )
        inputs[value.name] = rng.standard_normal((samples * (dims[0] or 1), *dims[1:])).astype(dtype)
    return inputs


@dataclasses.dataclass
class Model:
    """A model file to compile, its calibration set (None: the one bundled beside it) and the chip it goes on."""

    name: str
    path: Path
    calib: Path | None
    chip: str = "default"
    #: how the chip was chosen, for the notes under the tables
    chip_note: str = ""


def prepare(name: str, real: dict[str, Path], scratch: Path) -> Model:
    """The model ``name`` as a file, with the calibration inputs it needs written beside it."""
    if name in BUNDLED:
        return Model(name, MODELS_DIR / f"{name}.onnx", None)
    if name == "resnet18_cifar":
        model = resnet18_cifar(np.random.default_rng(SEED))
    else:
        model = with_random_weights(onnx.load(real[name], load_external_data=False), np.random.default_rng(SEED))
    path, calib = scratch / f"{name}.onnx", scratch / f"{name}_calib.npz"
    onnx.save(model, path)
    np.savez(calib, **random_inputs(model, CALIB_SAMPLES, np.random.default_rng(SEED)))
    return Model(name, path, calib)


def choose_chip(model: Model, scratch: Path) -> None:
    """Put ``model`` on the default chip if its arrays fit there, else on the default tile in a square mesh grown
    ``MESH_STEP`` tiles a side at a time until the arrays fill at most ``MESH_FILL`` of it (a TOML file in
    ``scratch``). The arrays are counted on a compilation to the ``cim`` stage."""
    from cimc.compiler.pipeline import PipelineOptions, compile_onnx
    from cimc.ir.dialects.cim import ProgramOp
    from cimc.ir.target.chip import Mesh, load_chip

    module, _ = compile_onnx(model.path, PipelineOptions(emit="cim", calib=model.calib))
    arrays = sum(op.arrays for op in module.walk() if isinstance(op, ProgramOp))
    default = load_chip("default")
    if arrays <= default.arrays:
        return
    side = default.mesh.rows
    while arrays > MESH_FILL * side * side * default.capacity:
        side += MESH_STEP
    chip = dataclasses.replace(
        default,
        name=f"default-{side}x{side}",
        description=f"the default chip's tiles on a {side}x{side} mesh",
        mesh=Mesh(side, side, default.mesh.torus),
    )
    path = scratch / f"{chip.name}.toml"
    path.write_text(chip.to_toml())
    model.chip = str(path)
    model.chip_note = (
        f"{model.name} needs {arrays:,} arrays, more than the default chip's {default.arrays:,}: it goes on "
        f"'{chip.name}' ({side}x{side} tiles of {default.capacity} arrays = {chip.arrays:,}), described in a "
        f"temporary TOML file ({path.name})"
    )


# --- measurements, in a fresh process per model ------------------------------------------------------------------


def measure(model: Path, calib: Path | None, chip: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Compile ``model`` to a binary ``args.repeat`` times and create its onnxruntime session as often: the
    fastest compilation's steps, report figures and binary size, the first one's peak RSS increase, the fastest
    session creation."""
    # OR-Tools and the local search imported before the memory baseline: the place pass imports OR-Tools for a
    # small instance, numba's local search for a large one, when it first needs them
    import onnxruntime as ort
    from ortools.sat.python import cp_model  # noqa: F401

    import cimc.compiler.binary
    import cimc.compiler.codegen
    import cimc.compiler.placement_report
    import cimc.passes  # noqa: F401
    import cimc.passes.local_search  # noqa: F401
    from cimc.compiler.pipeline import PipelineOptions, compile_binary

    options = PipelineOptions(
        chip=chip, calib=calib, placement_effort=args.placement_effort, seed=SEED, workers=args.workers
    )
    output = scratch / f"{model.stem}.cimb"
    runs: list[dict[str, Any]] = []
    baseline = start_peak_rss()
    for _ in range(args.repeat):
        start, cpu = time.perf_counter(), time.process_time()
        report, timings = compile_binary(model, output, options)
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
        if not runs:
            peak_rss = rss_status("VmHWM") - baseline
        steps = {t.name.partition("{")[0]: t.seconds for t in timings}
        steps["import"] = total - sum(steps.values())  # what is not a timed step: the import
        runs.append(
            {"total_s": total, "cpu_s": cpu, "steps": steps, "report": report, "binary_bytes": output.stat().st_size}
        )

    def session() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        return time.perf_counter() - start, time.process_time() - cpu

    fastest = min(runs, key=lambda run: run["total_s"])
    sessions = [session() for _ in range(args.repeat)]
    report = fastest.pop("report")
    return {
        **fastest,
        "peak_rss": peak_rss,
        "arrays": report["arrays"],
        "groups": sum(tile["groups"] for tile in report["per_tile"]),
        "tiles_used": report["tiles_used"],
        "tiles": report["tiles"],
        "placement": report["placement"],
        "session_s": min(wall for wall, _ in sessions),
        "session_cpu_s": min(cpu for _, cpu in sessions),
        "least_cpu_s": min(run["cpu_s"] for run in runs),
    }


def measure_in_child(model: Model, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``measure`` on ``model`` in a fresh interpreter and return its figures."""
    command = [sys.executable, __file__, "--child", str(model.path), "--chip", model.chip]
    command += [
        "--repeat",
        str(args.repeat),
        "--placement-effort",
        str(args.placement_effort),
        "--workers",
        str(args.workers),
    ]
    if model.calib is not None:
        command += ["--calib", str(model.calib)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout.splitlines()[-1])


# --- the report --------------------------------------------------------------------------------------------------


def report(models: list[Model], results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    time_header = [
        "model",
        "chip",
        "import+canon ms",
        *(f"{step} ms" for step in STEPS[1:]),
        "total ms",
        "peak RSS +MiB",
    ]
    time_rows = []
    result_header = ["model", "arrays", "groups", "tiles used", "traffic x hops", "naive", "ours/naive"]
    result_header += ["lower bound", "ours/bound", "status", "solver", "binary KiB", "ORT session ms", "cimc/ORT"]
    result_rows = []
    for model in models:
        r = results[model.name]
        steps, placement = defaultdict(float, r["steps"]), r["placement"]
        time_rows.append(
            [
                model.name,
                Path(model.chip).stem,
                milliseconds(steps["import"] + steps["canonicalize"]),
                *(milliseconds(steps[step]) for step in STEPS[1:]),
                milliseconds(r["total_s"]),
                f"{r['peak_rss'] / MIB:,.0f}",
            ]
        )
        objective, naive, bound = placement["objective"], placement["naive_objective"], placement["lower_bound"]
        result_rows.append(
            [
                model.name,
                f"{r['arrays']:,}",
                f"{r['groups']:,}",
                f"{r['tiles_used']} of {r['tiles']}",
                f"{objective:,}",
                f"{naive:,}",
                f"{objective / naive:.3f}" if naive else "-",
                f"{bound:,}",
                f"{objective / bound:.3f}" if bound else "-",
                placement["status"],
                placement["solver"],
                f"{r['binary_bytes'] / 1024:,.0f}",
                milliseconds(r["session_s"]),
                f"{r['total_s'] / r['session_s']:.1f}",
            ]
        )
    cores = len(os.sched_getaffinity(0))
    time_title = (
        f"Compilation ONNX -> .cimb by stage (fastest of {args.repeat}; place: effort {args.placement_effort:g}, "
        f"seed {SEED}, {args.workers} worker(s); {cores} cores); peak RSS: increase of the process's peak resident "
        "set during the first compilation, one process per model"
    )
    result_title = (
        "Placement and binary (traffic x hops in bytes per sample; lower bound: each layer's traffic star placed "
        "alone; cimc/ORT: cimc's end-to-end time over onnxruntime InferenceSession creation, best of "
        f"{args.repeat})"
    )
    return f"{time_title}\n{table(time_header, time_rows)}\n\n{result_title}\n{table(result_header, result_rows)}"


def goals(r: dict[str, Any]) -> str:
    """CIFAR ResNet-18's figures beside issue 13's goals, each met or MISSED."""
    placement = r["placement"]
    figures = [
        ("cimc compile / onnxruntime session creation", r["total_s"] / r["session_s"], COMPILE_OVER_SESSION_GOAL, "x"),
        ("traffic x hops / row-major placement's", placement["objective"] / placement["naive_objective"],
         OVER_NAIVE_GOAL, "x"),
        ("traffic x hops / lower bound", placement["objective"] / placement["lower_bound"], OVER_BOUND_GOAL, "x"),
    ]  # fmt: skip
    lines = [f"CIFAR ResNet-18 against issue 13's goals (peak RSS +{r['peak_rss'] / MIB:,.0f} MiB):"]
    for label, value, goal, unit in figures:
        lines.append(f"  {label}: {value:.3f}{unit} (goal <= {goal:g}{unit}): {'met' if value <= goal else 'MISSED'}")
    lines.append(
        f"  (in CPU time, which other processes on a loaded machine do not inflate: cimc {r['least_cpu_s']:.2f} s, "
        f"onnxruntime {r['session_cpu_s']:.3f} s, {r['least_cpu_s'] / r['session_cpu_s']:.1f}x)"
    )
    return "\n".join(lines)


def main() -> None:
    real = real_models()
    known = (*BUNDLED, "resnet18_cifar", *real)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="compilations per model; the fastest is reported")
    parser.add_argument(
        "--placement-effort",
        type=float,
        default=10.0,
        help="the place pass's effort (CP-SAT deterministic seconds; default 10)",
    )
    parser.add_argument("--workers", type=int, default=1, help="CP-SAT workers for the place pass (default 1)")
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help=f"comma-separated, from: {', '.join(known)} (default: {','.join(DEFAULT_MODELS)})",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--chip", default="default", help=argparse.SUPPRESS)
    parser.add_argument("--calib", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.child:
        with tempfile.TemporaryDirectory(prefix="cimc-bench-") as scratch:
            print(json.dumps(measure(args.child, args.calib, args.chip, args, Path(scratch))))
        return
    names = [name for name in args.models.split(",") if name]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(known)}")
    with tempfile.TemporaryDirectory(prefix="cimc-bench-") as scratch:
        models, results, failed = [], {}, []
        for name in names:
            start = time.perf_counter()
            try:
                model = prepare(name, real, Path(scratch))
                choose_chip(model, Path(scratch))
                print(f"{name}: prepared in {time.perf_counter() - start:.1f} s; compiling...", file=sys.stderr)
                results[name] = measure_in_child(model, args)
            except (OnnxImportError, ValueError, RuntimeError) as err:  # cimc's errors about the model, one line
                failed.append(f"{name}: not compiled: {err}")
                continue
            models.append(model)
        print(report(models, results, args))
    site = Path(onnx.__file__).parents[1]
    notes = failed + [model.chip_note for model in models if model.chip_note]
    notes += [
        f"{name}: {real[name].relative_to(site)}, every float weight seeded random" for name in results if name in real
    ]
    notes.append(
        f"Calibration: digits models on models/digits_calib.npz; the others on {CALIB_SAMPLES} seeded "
        f"standard-normal inputs (seed {SEED})."
    )
    print("\n" + "\n".join(notes))
    if "resnet18_cifar" in results:
        print(goals(results["resnet18_cifar"]))
    if "resnet50" in names:
        cores = len(os.sched_getaffinity(0))
        if "resnet50" not in results:
            print(f"ResNet-50 (onnx's real topology): not compiled: OVER the {RESNET50_LIMIT_S:.0f} s limit.")
            return
        total = results["resnet50"]["total_s"]
        verdict = "under" if total < RESNET50_LIMIT_S else "OVER"
        print(
            f"ResNet-50 (onnx's real topology): compiled end to end in {total:.2f} s on {cores} cores: {verdict} "
            f"the {RESNET50_LIMIT_S:.0f} s limit."
        )


if __name__ == "__main__":
    main()
