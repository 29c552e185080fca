"""The simulator's commands: ``cimc run model.cimb``, ``cimc eval`` and ``cimc demo``.

They share one set of flags for the simulated chip (``add_simulation_flags``): ``--ideal``, ``--device``,
``--seed``, ``--drift-time``, ``--no-drift-compensation``, ``--verify-iterations``, ``--adc-offset``,
``--stuck-on``, ``--stuck-off``, ``--fidelity``, ``--batch-size`` and one ``--no-...`` switch per noise term
(``NOISE_SWITCHES``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cimc.compiler.files import InputFileError, TensorFile, load_inputs
from cimc.compiler.flag_values import integer, number
from cimc.ir.dialects.builtin import FuncOp
from cimc.ir.interpreter import InterpreterError, bind_inputs
from cimc.ir.target.chip import BOUND_MANAGEMENTS, INPUT_SCALINGS
from cimc.runtime.analog import FIDELITIES
from cimc.runtime.devices import DEVICES

#: The flags that switch one analog effect off: flag -> (``InferenceSession``/``AnalogConfig`` keyword, what it
#: removes).
NOISE_SWITCHES = {
    "--no-programming-noise": ("programming_noise", "no programming error: cells hold their target conductances"),
    "--no-drift": ("drift", "no conductance drift after t0 (the 1/f noise still accumulates to --drift-time)"),
    "--no-drift-spread": ("drift_spread", "every cell drifts with its mean exponent (no cell-to-cell spread)"),
    "--no-flicker-noise": ("flicker_noise", "no accumulated 1/f (flicker) noise of PCM cells"),
    "--no-read-noise": ("read_noise", "no per-read noise of the active cells"),
    "--no-output-noise": ("output_noise", "no per-read noise on each output (summation noise)"),
    "--no-ir-drop": ("ir_drop", "no IR drop along the row and column wires"),
}


def _switch_dest(flag: str) -> str:
    """The argparse attribute of a ``--no-...`` flag."""
    return flag[2:].replace("-", "_")


def add_simulation_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that set up the simulated chip."""
    group = parser.add_argument_group("the simulated chip (.cimb)")
    group.add_argument("--ideal", action="store_true", help="every analog effect off: the exact crossbar arithmetic")
    group.add_argument("--device", choices=sorted(DEVICES), help="cell device model (default: the chip's device)")
    group.add_argument(
        "--drift-time",
        type=duration,
        default=0.0,
        metavar="T",
        help="evaluate T after programming: seconds or 1h, 1d, 1y (default 0)",
    )
    group.add_argument(
        "--no-drift-compensation",
        action="store_true",
        help="no global drift compensation (the gain of a reference read-out at t0 over one at T)",
    )
    group.add_argument(
        "--verify-iterations",
        type=integer(0),
        default=0,
        metavar="N",
        help="program-and-verify iterations (default 0)",
    )
    group.add_argument(
        "--adc-offset",
        type=number(0),
        default=0.0,
        metavar="LSB",
        help="spread of each ADC's offset, in LSB (default 0)",
    )
    group.add_argument(
        "--stuck-on", type=number(0, 1), metavar="RATE", help="fraction of cells stuck at g_max (default 0)"
    )
    group.add_argument(
        "--stuck-off", type=number(0, 1), metavar="RATE", help="fraction of cells stuck at g_min (default 0)"
    )
    for flag, (_, removes) in NOISE_SWITCHES.items():
        group.add_argument(flag, action="store_true", help=removes)
    group.add_argument(
        "--input-scaling",
        choices=INPUT_SCALINGS,
        help="range-managed periphery ([periphery], the aihwkit chip): scale each input vector by its largest "
        "magnitude (abs_max) or not (default: the chip's)",
    )
    group.add_argument(
        "--bound-management",
        choices=BOUND_MANAGEMENTS,
        help="range-managed periphery: read a saturated input again with it halved (iterative) or not "
        "(default: the chip's)",
    )
    group.add_argument(
        "--fidelity",
        choices=FIDELITIES,
        default="per-read",
        help="per-read: every bit plane, slice and sign read with its own noise and ADC rounding (default); "
        "statistical: one product per row block, those errors drawn in aggregate per output (row blocks whose ADCs "
        "can saturate are still read per read)",
    )
    group.add_argument(
        "--batch-size", type=integer(1), default=256, metavar="N", help="samples simulated at a time (default 256)"
    )


def duration(text: str) -> float:
    """An argparse type: the seconds of a duration ``parse_duration`` reads (``3600``, ``1h``). The runtime is
    imported only when the flag is given (its default is no string, so argparse does not convert it)."""
    from cimc.runtime.session import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def simulation_flags_given(args: argparse.Namespace) -> bool:
    """Whether any flag that sets up the simulated chip departs from its default (they mean nothing to an .onnx
    run)."""
    stuck = args.stuck_on is not None or args.stuck_off is not None
    switched = args.no_drift_compensation or any(getattr(args, _switch_dest(flag)) for flag in NOISE_SWITCHES)
    switched = switched or bool(args.input_scaling or args.bound_management) or args.fidelity != "per-read"
    return bool(
        args.ideal or args.device or args.drift_time or args.verify_iterations or args.adc_offset or stuck
    ) or bool(switched)


def session_for(path: str | Path, args: argparse.Namespace, seed: int | None = None) -> Any:
    """The ``InferenceSession`` the flags describe."""
    from cimc.runtime.session import InferenceSession

    switches: dict[str, Any] = {  # a switch not given keeps the default (the chip's, for IR drop)
        name: False for flag, (name, _) in NOISE_SWITCHES.items() if getattr(args, _switch_dest(flag))
    }
    try:
        return InferenceSession(
            path,
            ideal=args.ideal,
            device=args.device,
            seed=args.seed if seed is None else seed,
            drift_time=args.drift_time,
            drift_compensation=not args.no_drift_compensation,
            verify_iterations=args.verify_iterations,
            adc_offset_lsb=args.adc_offset,
            stuck_on_rate=args.stuck_on,
            stuck_off_rate=args.stuck_off,
            batch_size=args.batch_size,
            input_scaling=args.input_scaling,
            bound_management=args.bound_management,
            fidelity=args.fidelity,
            **switches,
        )
    except ValueError as exc:  # a device that does not fit the chip, a bad duration
        raise InputFileError(f"{path}: {exc}") from None


def _progress(total_label: str) -> Callable[[int, int], None] | None:
    """A one-line progress display on a terminal (none for scripts)."""
    if not sys.stderr.isatty():
        return None
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - start, 1e-9)
        end = "\n" if done >= total else ""
        print(f"\r  {total_label}: {done:,}/{total:,} samples ({rate:,.0f}/s)", end=end, file=sys.stderr, flush=True)

    return show


def checked_inputs(func: FuncOp, inputs: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """``inputs`` once they fit ``func``'s arguments (names, shapes, dtypes) and hold no NaN or infinity; else a
    one-line error that starts with ``where`` (the file and the flag that gave them)."""
    from cimc.runtime.session import check_finite

    try:
        bind_inputs(func, inputs)
    except InterpreterError as exc:
        raise InputFileError(f"{where}: {exc}") from None
    check_finite(inputs, where)
    return inputs


def run_binary(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """``cimc run model.cimb``: its outputs on the simulated chip."""
    session = session_for(args.model, args)
    if session.simulator.stats.ir_drop_warning:
        print(f"cimc: warning: {session.simulator.stats.ir_drop_warning}", file=sys.stderr)
    for reason in session.fallbacks():
        print(f"cimc: note: read per read, not statistically: {reason}", file=sys.stderr)
    inputs = load_inputs(args.input, session.simulator.input_names)
    checked_inputs(session.simulator.func, inputs, f"--input {args.input}")
    show = _progress("simulated")
    first = next(iter(inputs.values()), np.zeros(0))
    total = len(first) if first.ndim else 1
    outputs = session.run(None, inputs, progress=None if show is None else (lambda done: show(done, total)))
    return dict(zip(session.simulator.output_names, outputs))


def load_dataset(path: str, x_key: str, y_key: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs and labels from an ``.npz``: ``x_key`` must be there, with samples along axis 0; ``y_key`` may be
    missing (no accuracy), else it holds one class label per sample (``labels_of``)."""
    from cimc.runtime.evaluate import labels_of

    file = TensorFile(path, "--data")
    if file.keys is None:
        raise InputFileError(f"--data {path}: a dataset is an .npz with inputs and labels (keys '{x_key}', '{y_key}')")
    if x_key not in file.keys:
        raise InputFileError(f"--data {path}: no array '{x_key}' (it holds {file.keys}); name the inputs with --x-key")
    if y_key is not None and y_key not in file.keys:
        raise InputFileError(f"--data {path}: no array '{y_key}' (it holds {file.keys}); name the labels with --y-key")
    x = file.array(x_key)
    if x.ndim == 0 or not len(x):
        raise InputFileError(
            f"--data {path}: array '{x_key}' (--x-key) is {x.dtype}{list(x.shape)}, no samples; give samples along "
            "axis 0"
        )
    if y_key is None:
        return x, None
    y = file.array(y_key)
    where = f"--data {path}: array '{y_key}' (--y-key)"
    if y.ndim == 0 or len(y) != len(x):
        raise InputFileError(
            f"{where} has {y.shape[0] if y.ndim else 'no'} labels for {len(x)} samples of '{x_key}': give one label "
            "per sample"
        )
    labels_of(y, where)
    return x, y


def _reference_path(args: argparse.Namespace, meta: dict[str, Any]) -> tuple[Path | None, str | None]:
    """The fp32 model to compare with, and a remark for stderr once the evaluation is done (a refusal stays one
    line). ``--reference`` when given, with a warning when its SHA-256 is not the one the binary's meta records (a
    retrained model is a fair comparison, but the user should know). Otherwise the model the binary was compiled
    from, recognised by content alone: the file of its name beside the binary, then the bundled model of that
    name, each used only when its SHA-256 is the recorded one (the remark says which file); None when neither is,
    or the binary records no SHA-256. Nothing in the binary is opened as a path: its ``model`` is a bare file name
    (``load_binary`` refuses any other), looked up in those two folders only."""
    from cimc.compiler.binary import model_digest

    recorded = meta.get("model_sha256")
    if args.reference:
        path = Path(args.reference)
        if not path.is_file():
            raise InputFileError(f"{path}: no such file (--reference takes the fp32 .onnx model)")
        if recorded and model_digest(path) != recorded:
            return path, (
                f"warning: --reference {path} is not the model {args.model} was compiled from (its SHA-256 differs "
                "from the one the binary records); compared with it all the same"
            )
        return path, None
    name = meta.get("model")
    if not recorded or not name:
        return None, None
    beside = Path(args.model).parent / name
    try:
        candidates = [beside, bundled_model(name)]
    except InputFileError:  # no bundled model of that name
        candidates = [beside]
    for candidate in candidates:
        if candidate.is_file() and model_digest(candidate) == recorded:
            return candidate, f"note: fp32 reference {candidate}: its SHA-256 is the one {args.model} records"
    if beside.is_file():
        return None, f"note: {beside} is not the model {args.model} was compiled from (SHA-256 differs): not compared"
    return None, None


def evaluate_binary(
    args: argparse.Namespace, binary: str | Path, reference: Path | None, label: str | None = None
) -> tuple[dict[str, Any], Any]:
    """Evaluate a binary as ``cimc eval`` does: the JSON-able result (with ``settings`` and ``performance``) and
    the ``Performance`` of one inference."""
    from cimc.runtime.evaluate import ReferenceModel, evaluate

    x, y = load_dataset(args.data, args.x_key, args.y_key)
    if args.limit is not None:
        x, y = x[: args.limit], (None if y is None else y[: args.limit])
    first = session_for(binary, args)
    checked_inputs(first.simulator.func, {first.simulator.input_names[0]: x}, f"--data {args.data}: '{args.x_key}'")
    sessions = {args.seed: first}

    def make(seed: int) -> Any:
        return sessions.pop(seed, None) or session_for(binary, args, seed)

    seeds = list(range(args.seed, args.seed + (1 if args.ideal else args.seeds)))
    config = first.config
    settings = {
        "binary": label or str(binary),
        "chip": first.chip.name,
        "device": config.device.name,
        "ideal": config.is_ideal,
        "drift_time_s": config.drift_time_s,
        "drift_compensation": config.drift_compensation,
        "verify_iterations": config.verify_iterations,
        "off": [flag for flag, (name, _) in NOISE_SWITCHES.items() if not getattr(config, name)],
        "fidelity": config.fidelity,
        "fallback_blocks": sorted(first.simulator.fallbacks.values()),
        "reference": None if reference is None else str(reference),
        "warnings": [w for w in (first.simulator.stats.ir_drop_warning,) if w],
        "noise_stream": first.simulator.stats.noise_stream,
    }
    result = evaluate(
        make,
        x,
        y,
        seeds=seeds,
        reference=None if reference is None else ReferenceModel(reference),
        progress=_progress("evaluated"),
        settings=settings,
    ).to_dict()
    performance = first.performance()
    result["performance"] = performance.to_dict()
    return result, performance


def format_evaluation(result: dict[str, Any]) -> str:
    """The terminal form of ``evaluate_binary``'s result."""
    s = result["settings"]
    seeds = result["seeds"]
    drift = (
        "no drift"
        if not s["drift_time_s"]
        else f"drift {s['drift_time_s']:g} s" + (", compensated" if s["drift_compensation"] else ", uncompensated")
    )
    off = f"; off: {', '.join(flag[5:] for flag in s['off'])}" if s.get("off") else ""
    fidelity = ""
    if not s["ideal"] and s.get("fidelity", "per-read") != "per-read":
        fallen = len(s.get("fallback_blocks", []))
        fidelity = f"; {s['fidelity']} reads" + (f" ({fallen} array groups read per read)" if fallen else "")
    mode = "ideal (every effect off)" if s["ideal"] else f"{s['device']} cells, {drift}{off}{fidelity}"
    lines = [f"{s['binary']} on chip '{s['chip']}': {mode}; {result['samples']:,} samples"]
    if result["accuracy"] is not None:
        spread = f" +- {result['accuracy_std']:.4f} over {len(seeds)} seeds" if len(seeds) > 1 else ""
        lines.append(f"  accuracy (simulated)    {result['accuracy']:.4f}{spread}")
    if result["reference_accuracy"] is not None:
        lines.append(f"  accuracy (fp32, ORT)    {result['reference_accuracy']:.4f}  ({s['reference']})")
        lines.append(f"  loss                    {100 * result['accuracy_loss']:.2f} points")
    if result["agreement"] is not None:
        lines.append(f"  top-1 agreement         {result['agreement']:.4f}")
        e = result["error"]
        lines.append(
            f"  output error vs fp32    rms {e['rms']:.4g} ({100 * e['relative_rms']:.2f}% of the outputs' rms), "
            f"max {e['max_abs']:.4g}"
        )
    lines.append(f"  ADC saturation          {_saturation(result['adc_saturation'])}")
    if s["reference"] is None:
        lines.append("  (no fp32 comparison: give --reference model.onnx)")
    lines += [f"  warning: {w}" for w in s["warnings"]]
    return "\n".join(lines)


def _saturation(layers: dict[str, dict[str, float]]) -> str:
    """Each crossbar layer's fraction of saturated ADC conversions, or that none saturated."""
    if not any(counts["saturated"] for counts in layers.values()):
        conversions = sum(counts["conversions"] for counts in layers.values())
        return f"none of {conversions:,.0f} conversions"
    shown = (f"{layer} {100 * counts['fraction']:.3g}%" for layer, counts in layers.items())
    return ", ".join(shown) + " of each layer's conversions"


def cmd_eval(args: argparse.Namespace) -> int:
    """``cimc eval model.cimb --data test.npz``."""
    from cimc.runtime.binary import load_binary
    from cimc.runtime.performance import format_performance

    reference, remark = _reference_path(args, load_binary(args.model).meta)
    result, performance = evaluate_binary(args, args.model, reference)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(format_evaluation(result))
        print(format_performance(performance))
    if remark:
        print(f"cimc: {remark}", file=sys.stderr)
    return 0


def bundled_model(name: str) -> Path:
    """A bundled model's file in ``models/``: in the current folder's checkout or the installed source tree."""
    for root in (Path("."), Path(__file__).resolve().parents[1]):
        path = root / "models" / name
        if path.is_file():
            return path
    raise InputFileError(f"models/{name}: not found; run cimc demo in a cimc checkout (it uses the bundled models)")


def cmd_demo(args: argparse.Namespace) -> int:
    """``cimc demo``: compile a bundled digits model for a chip (the default one unless ``--chip``), evaluate its
    test split in the simulator, with the exact arithmetic and with every analog effect of the chip's device, and
    print the accuracies against onnxruntime's, then latency, throughput and energy."""
    from cimc.compiler.pipeline import PipelineOptions, compile_binary
    from cimc.ir.target.chip import load_chip
    from cimc.runtime.performance import format_performance

    model = bundled_model(f"digits_{args.model}.onnx")
    args.data = str(bundled_model("digits_test.npz"))
    calib = bundled_model("digits_calib.npz")
    chip = load_chip(args.chip)
    with tempfile.TemporaryDirectory() as scratch:
        binary = Path(scratch) / f"digits_{args.model}.cimb"
        started = time.perf_counter()
        report, _ = compile_binary(
            model, binary, PipelineOptions(emit="placed", chip=chip, seed=args.seed, calib=calib)
        )
        compiled = time.perf_counter() - started
        results = {}
        for mode in ("ideal", "simulated") if not args.ideal else ("ideal",):
            mode_args = argparse.Namespace(**{**vars(args), "ideal": mode == "ideal"})
            results[mode], performance = evaluate_binary(mode_args, binary, model, label=binary.name)
    if args.json:
        print(json.dumps({**results, "performance": performance.to_dict()}, indent=2, sort_keys=True))
        return 0
    first = next(iter(results.values()))
    print(
        f"cimc demo: {model} compiled for chip '{chip.name}' in {compiled:.1f} s ({report['arrays']:,} arrays on "
        f"{report['tiles_used']} of {report['tiles']} tiles)\n"
        f"top-1 accuracy on its {first['samples']:,} test images:\n"
        f"  {'fp32, onnxruntime':<36} {first['reference_accuracy']:.4f}"
    )
    for mode, result in results.items():
        device = result["settings"]["device"]
        what = "chip, exact arithmetic (--ideal)" if mode == "ideal" else f"chip, {device} cells, every effect on"
        spread = f" +- {result['accuracy_std']:.4f}" if len(result["seeds"]) > 1 else ""
        print(f"  {what:<36} {result['accuracy']:.4f}{spread}  agrees with fp32 on {100 * result['agreement']:.1f}%")
    if "simulated" in results:
        print(
            "  (programming error, read noise, IR drop; try --device pcm --drift-time 1d --seeds 5, --stuck-on 0.001,\n"
            "   --verify-iterations 3; cimc eval does the same for any compiled model)"
        )
    print(format_performance(performance))
    return 0
