"""The ``cimc`` command: compile, opt, run, ops.

Bad input ends in one line on stderr (``cimc: error: ...``) and exit status 1, never a traceback unless
``--debug`` is given; outputs are written atomically, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import numpy as np

from cimc.compiler.binary import checked_report, cimc_version
from cimc.compiler.calibration import CalibrationError
from cimc.compiler.files import InputFileError, check_outputs, load_inputs, save_outputs, write_atomic
from cimc.compiler.flag_values import integer, number
from cimc.compiler.pipeline import (
    CHIP_FIELDS,
    STAGES,
    CrossbarOptions,
    PipelineOptions,
    compile_onnx,
    load_module,
    read_mlir,
    run_passes,
)
from cimc.compiler.simulate_cli import (
    add_simulation_flags,
    checked_inputs,
    cmd_demo,
    cmd_eval,
    run_binary,
    simulation_flags_given,
)
from cimc.compiler.solve_cli import add_solve_parser, cmd_solve
from cimc.ir.core import VerifyError
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.interpreter import InterpreterError, main_function, run_module
from cimc.ir.limits import parse_size, tensor_limit
from cimc.ir.options import Option, OptionError, option_of, option_text
from cimc.ir.parser import ParseError
from cimc.ir.pass_manager import PassTiming, PipelineError
from cimc.ir.printer import print_module
from cimc.ir.target.chip import ChipError, RangeManagement, list_presets, load_chip
from cimc.ir.verifier import verify
from cimc.runtime.binary import BinaryFormatError

#: Errors that mean bad input, reported in one line; anything else is an internal error. Those of
#: ``LAZY_USER_ERRORS`` are too, recognised by ``is_user_error`` without importing their modules.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ParseError,
    VerifyError,
    InterpreterError,
    PipelineError,
    OptionError,
    InputFileError,
    CalibrationError,
    ChipError,
    BinaryFormatError,
    FileNotFoundError,
    IsADirectoryError,
    PermissionError,
)


#: The destinations of the flags that name a file a command reads (``--chip`` may name a
#: preset, no file: only inputs that exist are guarded) and of those naming a file it writes.
READS = ("model", "input", "binary", "calib", "data", "reference", "chip", "matrix", "rhs")
WRITES = ("output", "html", "report_json")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the flag; ``--help`` still gives the usage."""

    def error(self, message: str, prog: str | None = None) -> NoReturn:
        self.exit(2, f"cimc: error: {message} (see {prog or self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # argparse types it by overloads
        """The parsed arguments; an unknown flag is blamed on the subcommand it was given to, and a missing
        subcommand is reported only after unknown flags."""
        parsed, extras = self.parse_known_args(args, namespace)
        command = getattr(parsed, "command", None)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}", f"{self.prog} {command}" if command else None)
        if command is None:
            self.error(f"a command is required: {', '.join(COMMANDS)}")
        return parsed


def _file_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The destinations of ``parser``'s flags that name files (``READS``, ``WRITES``), each with the flag as the
    user sees it (``--html``, ``-o/--output``, ``model``)."""
    return {
        action.dest: "/".join(action.option_strings) or action.dest
        for action in parser._actions  # argparse keeps a parser's flags there, and lists them nowhere public
        if action.dest in READS + WRITES
    }


def _add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show a traceback on errors")


def _add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass (stderr)")
    parser.add_argument("--verify-each", action="store_true", help="run the verifier after every pass")
    parser.add_argument("--timing", action="store_true", help="print per-pass wall time (stderr)")


def _add_limit_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-tensor-size",
        type=_byte_size,
        metavar="BYTES",
        help="the most memory one tensor may take, e.g. 512M or 4G (default 1G): a model or IR text asking for a "
        "larger one is refused before anything is allocated",
    )


def _byte_size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_output_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help=f"write {what} to FILE (with its resource blobs)")
    parser.add_argument(
        "--print-resources",
        action="store_true",
        help="print resource blobs (weights) on stdout instead of eliding them",
    )


def _array_size(text: str) -> tuple[int, int]:
    rows, sep, cols = text.lower().partition("x")
    if not (sep and rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
        raise argparse.ArgumentTypeError(f"'{text}' is not ROWSxCOLS, e.g. 64x64")
    return int(rows), int(cols)


def _add_lowering_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-shape",
        action="append",
        metavar="NAME=SHAPE",
        help="fix an input's dims, e.g. x=?x3x224x224 (? keeps a dim dynamic, typically the batch; NAME= may be left "
        "out for a single-input model); repeat for more inputs. Timing and energy count each dynamic dim after the "
        "batch as 1, so give the sizes the chip will see",
    )
    group = parser.add_argument_group("lowering onto crossbars (stages quantized and cim)")
    group.add_argument(
        "--calib",
        metavar="FILE",
        help="calibration inputs (.npz keyed by input name) for float models; default: none, except for a model "
        "bundled in cimc's models/, calibrated on its bundled set (<prefix>_calib.npz)",
    )
    group.add_argument(
        "--calib-method",
        choices=["minmax", "percentile"],
        default="minmax",
        help="how activation and ADC ranges are read off the calibration inputs (default minmax)",
    )
    for field in dataclasses.fields(CrossbarOptions):  # a flag per crossbar option, from its declaration
        declared = option_of(field)
        assert declared is not None
        if field.name == "array_rows":
            group.add_argument(
                "--array-size", type=_array_size, metavar="ROWSxCOLS", help="crossbar array size (default: the chip's)"
            )
        if field.name in ("array_rows", "array_cols"):
            continue
        default = "the chip's" if field.name in CHIP_FIELDS else option_text(declared.default)
        group.add_argument(
            _flag(field.name),
            type=_declared(declared),
            choices=list(declared.rule.choices) or None,
            metavar=None if declared.rule.choices else "N",
            help=f"{declared.doc} (default: {default})",
        )
    chip = parser.add_argument_group("the chip and placement")
    chip.add_argument("--chip", default="default", metavar="NAME|FILE", help="a preset (cimc chips) or a .toml file")
    chip.add_argument(
        "--placement-effort",
        type=number(0, above=True),
        default=10.0,
        metavar="UNITS",
        help="placement solver's work budget, not seconds: CP-SAT deterministic time (the same binary on an idle or "
        "a busy machine; default 10)",
    )
    chip.add_argument(
        "--seed", type=integer(0), default=0, help="seed of the placement solver and the simulated noise (default 0)"
    )
    chip.add_argument(
        "--workers", type=integer(1), default=1, help="placement solver's threads (default 1: reproducible)"
    )


def _declared(declared: Option) -> Callable[[str], object]:
    """An argparse type for a flag that sets a declared option: its value, checked against the option's rule when
    parsed, so a bad value is blamed on the flag."""
    kind = type(declared.default)

    def parse(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (declared.rule.choices or declared.rule.holds(value)):  # argparse checks choices
            raise argparse.ArgumentTypeError(f"'{text}' is not {declared.rule.describe(declared.kind)}")
        return value

    return parse


def _flag(option: str) -> str:
    """The flag that sets a crossbar option: ``--cell-bits``; ``--array-size`` for both array dimensions."""
    return "--array-size" if option in ("array_rows", "array_cols") else "--" + option.replace("_", "-")


def _add_dataset_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="NPZ", help="an .npz with inputs and labels")
    parser.add_argument("--x-key", default="x", help="the inputs' array in --data (default x)")
    parser.add_argument("--y-key", default="y", help="the labels' array in --data (default y)")
    parser.add_argument(
        "--seeds", type=integer(1), default=1, metavar="N", help="repeat with N noise seeds; report mean and spread"
    )
    parser.add_argument("--limit", type=integer(1), metavar="N", help="only the first N samples (default: all)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cimc`` command."""
    parser = Parser(prog="cimc", description="Compiler and simulator for analog compute-in-memory.")
    parser.add_argument("--version", action="version", version=f"cimc {cimc_version()}")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    compile_ = sub.add_parser(
        "compile",
        help="compile an ONNX model into a chip binary (.cimb), or print its IR at a stage (--emit)",
    )
    compile_.add_argument("model", help="an .onnx file")
    compile_.add_argument(
        "--emit",
        choices=STAGES,
        help="stop after this stage and print its IR instead of writing the binary (quantized and cim also print "
        "the crossbar report)",
    )
    _add_output_flags(compile_, "the binary (default: <model>.cimb here), or with --emit the IR")
    compile_.add_argument(
        "--report-json",
        metavar="FILE",
        help="with --emit quantized|cim: write the crossbar report (per layer arrays, utilization, ADC) as JSON",
    )
    _add_pipeline_flags(compile_)
    _add_lowering_flags(compile_)
    _add_limit_flag(compile_)

    opt = sub.add_parser("opt", help="run passes on textual IR, like mlir-opt")
    opt.add_argument("input", help="an .mlir file, or - for stdin")
    opt.add_argument("--passes", default="", metavar="PIPELINE", help='e.g. "canonicalize" or "fold-constants,dce"')
    _add_output_flags(opt, "the resulting IR")
    _add_pipeline_flags(opt)
    _add_limit_flag(opt)

    run = sub.add_parser(
        "run",
        help="run a model on inputs: an .onnx or .mlir file with the reference interpreter or the exact crossbar "
        "executor, a .cimb binary on the simulated chip",
    )
    run.add_argument("model", help="an .onnx, .mlir or .cimb file")
    run.add_argument("--input", "-i", required=True, metavar="FILE", help=".npy (single input) or .npz keyed by name")
    run.add_argument("--output", metavar="FILE", help="write outputs to this .npz, keyed by output name")
    run.add_argument(
        "--stage",
        choices=STAGES[1:],
        help="which IR level of an .onnx model executes: graph (float reference), quantized (integer reference), "
        "cim or placed (the exact crossbar executor); default: graph",
    )
    _add_lowering_flags(run)
    _add_limit_flag(run)
    add_simulation_flags(run)

    eval_ = sub.add_parser(
        "eval", help="accuracy of a compiled binary on the simulated chip, against the fp32 model on onnxruntime"
    )
    eval_.add_argument("model", help="a .cimb file")
    _add_dataset_flags(eval_)
    eval_.add_argument(
        "--reference",
        metavar="ONNX",
        help="the fp32 model to compare with (default: the model the binary was compiled from, recognised by the "
        "SHA-256 the binary records: the file of its name beside the binary, or the bundled model; a model with "
        "another SHA-256 is compared with a warning)",
    )
    eval_.add_argument("--seed", type=integer(0), default=0, help="the first noise seed (default 0)")
    add_simulation_flags(eval_)

    demo = sub.add_parser(
        "demo",
        help="compile a bundled digits model for the default chip, simulate its test split and print accuracy, "
        "latency, throughput and energy",
    )
    demo.add_argument("--model", choices=["cnn", "mlp"], default="cnn", help="which bundled model (default cnn)")
    demo.add_argument("--chip", default="default", metavar="NAME|FILE", help="a preset (cimc chips) or a .toml file")
    demo.add_argument("--seed", type=integer(0), default=0, help="the placement and noise seed (default 0)")
    demo.add_argument(
        "--seeds", type=integer(1), default=1, metavar="N", help="repeat with N noise seeds; report mean and spread"
    )
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.set_defaults(x_key="x", y_key="y", limit=None, reference=None)
    add_simulation_flags(demo)

    report = sub.add_parser("report", help="the placement report of a compiled binary")
    report.add_argument("binary", help="a .cimb file")
    report.add_argument("--json", action="store_true", help="print the report as JSON (schema: docs/binary-format.md)")
    report.add_argument(
        "--html",
        metavar="FILE",
        help="also write the report as one self-contained HTML page with pictures: tiles by layer, link loads, "
        "arrays per layer",
    )

    solve = add_solve_parser(sub)
    chips = sub.add_parser("chips", help="list the chip presets")
    ops = sub.add_parser("ops", help="list the ONNX operators cimc imports")
    for command in (compile_, opt, run, eval_, demo, report, solve, chips, ops):
        _add_common_flags(command)
        command.set_defaults(file_flags=_file_flags(command))
    return parser


def _emit(module: ModuleOp, args: argparse.Namespace) -> None:
    if args.output:
        write_atomic(args.output, print_module(module, resources=True))
    else:
        sys.stdout.write(print_module(module, resources=args.print_resources))


def _report_timing(args: argparse.Namespace, timings: list[PassTiming]) -> None:
    if args.timing:
        from cimc.ir.pass_manager import timing_table

        sys.stderr.write(timing_table(timings) + "\n")


def _input_shapes(texts: list[str]) -> dict[str, tuple[int | None, ...]]:
    """``--input-shape`` flags (``NAME=?x3x48x192``, or ``?x3x48x192`` alone for a single-input model, keyed
    ``""``) as ``PipelineOptions.input_shapes``."""
    shapes: dict[str, tuple[int | None, ...]] = {}
    for text in texts:
        name, _, shape = text.rpartition("=")
        sizes = shape.lower().split("x")
        if not all(size == "?" or size.isdigit() for size in sizes):
            raise InputFileError(
                f"--input-shape '{text}': the shape is not sizes joined by x, e.g. x=?x3x224x224 (? for a dynamic dim)"
            )
        if not name and len(texts) > 1:
            raise InputFileError(f"--input-shape '{text}': with several --input-shape flags, name each (NAME=SHAPE)")
        if name in shapes:
            raise InputFileError(f"--input-shape '{text}': input '{name}' has a shape already; give each input once")
        shapes[name] = tuple(None if size == "?" else int(size) for size in sizes)
    return shapes


def _options(args: argparse.Namespace, emit: str = "graph") -> PipelineOptions:
    lowering: dict = {}
    if hasattr(args, "calib"):
        given = {
            field.name: getattr(args, field.name)
            for field in dataclasses.fields(CrossbarOptions)
            if getattr(args, field.name, None) is not None
        }
        if args.array_size is not None:
            given["array_rows"], given["array_cols"] = args.array_size
        chip = load_chip(args.chip)
        try:
            crossbar = CrossbarOptions.for_chip(chip, **given)
        except OptionError as exc:
            if exc.option not in given:
                raise
            raise OptionError(_flag(exc.option), exc.option, exc.value, exc.expected) from None  # blame the flag
        lowering = {
            "chip": chip,
            "crossbar": crossbar,
            "calib": args.calib,
            "calib_method": args.calib_method,
            "placement_effort": args.placement_effort,
            "seed": args.seed,
            "workers": args.workers,
            "input_shapes": _input_shapes(args.input_shape) if args.input_shape else None,
        }
    return PipelineOptions(
        emit=emit,
        verify_each=getattr(args, "verify_each", False),
        print_ir_after_all=getattr(args, "print_ir_after_all", False),
        **lowering,
    )


def _cmd_compile(args: argparse.Namespace) -> int:
    if args.emit is None:
        return _compile_binary(args)
    calibration: list[str] = []
    options = dataclasses.replace(_options(args, args.emit), on_calibration=calibration.append)
    module, timings = compile_onnx(args.model, options)
    report = None
    if args.emit in ("quantized", "cim", "placed"):
        from cimc.compiler.crossbar_report import crossbar_report

        report = crossbar_report(module)
        if args.report_json:
            from cimc.compiler.crossbar_report import report_json

            write_atomic(args.report_json, json.dumps(report_json(report), indent=2, sort_keys=True) + "\n")
    _emit(module, args)
    if report is not None:
        from cimc.compiler.crossbar_report import format_report

        # the IR owns stdout unless it went to a file
        print(format_report(report), file=sys.stdout if args.output else sys.stderr)
        print(calibration_line(calibration, args.calib), file=sys.stdout if args.output else sys.stderr)
    _report_timing(args, timings)
    return 0


def _compile_binary(args: argparse.Namespace) -> int:
    from cimc.compiler.pipeline import compile_binary

    output = args.output
    if not str(output).endswith(".cimb"):
        raise InputFileError(f"{output}: a compiled binary is named *.cimb; for IR text give --emit STAGE")
    steps = {
        "import": "importing",
        "graph": "canonicalizing",
        "quantized": "calibrating and quantizing",
        "cim": "tiling and bit-slicing",
        "placed": f"placing (effort {args.placement_effort:g})",
        "binary": "generating code",
    }

    def progress(stage: str) -> None:
        print(f"  {steps[stage]} ...", file=sys.stderr, flush=True)

    calibration: list[str] = []
    options = dataclasses.replace(_options(args, "placed"), on_calibration=calibration.append)
    if sys.stderr.isatty():  # a progress display for people, not for scripts reading stderr
        print(f"compiling {args.model} for chip '{args.chip}'", file=sys.stderr)
        options = dataclasses.replace(options, progress=progress)
    report, timings = compile_binary(args.model, output, options)
    placement = report["placement"]
    naive = placement["naive_objective"]
    saving = f", {1 - placement['objective'] / naive:.1%} below row-major" if naive else ""
    print(
        f"wrote {output}: {report['arrays']:,} arrays on {report['tiles_used']} of {report['tiles']} tiles; "
        f"placement {placement['status']}, traffic x hops {placement['objective']:,} bytes per sample{saving}; "
        f"{sum(t.seconds for t in timings):.1f} s (cimc report {output} for details)"
    )
    if report["layers"]:
        print(converters_line(options.crossbar_options(), report["layers"]))
        periphery = options.resolved_chip().periphery
        if periphery is not None:
            print(periphery_line(periphery))
    print(calibration_line(calibration, args.calib))
    _report_timing(args, timings)
    return 0


def calibration_line(read: list[str], given: str | None) -> str:
    """One line on where the compile's ranges came from: the calibration file it read (``--calib``, or the bundled
    set of a bundled model), or that it read none."""
    if read:
        whose = "--calib" if given else "the bundled model's own set"
        return f"calibration: ranges measured on {read[0]} ({whose})"
    unused = f"; --calib {given} was not needed" if given else ""
    return f"calibration: none read (no float layer to quantize, no ADC range to measure){unused}"


def converters_line(crossbar: CrossbarOptions, layers: list[dict]) -> str:
    """One line on the converters the layers (as in the crossbar report's JSON) read with: the DAC and ADC widths,
    and the layers whose ADC is narrower than an exact read, with how its full scale was chosen."""
    line = f"converters: {crossbar.dac_bits}-bit DACs, "
    if not crossbar.adc_bits:
        return line + f"exact ADCs ({_span(layers, 'adc_exact_bits')} bits)"
    narrow = [layer for layer in layers if layer["adc_range"] != "exact"]
    line += f"{crossbar.adc_bits}-bit ADCs"
    if not narrow:
        return line + ", exact on every layer"
    names = [layer["name"] for layer in narrow]
    shown = ", ".join(names[:4]) + (f", +{len(names) - 4} more" if len(names) > 4 else "")
    scale = _span(narrow, "adc_full_scale_bits")
    how = "calibrated on the calibration inputs" if crossbar.adc_range == "calibrated" else "the worst case"
    return (
        line + f", narrower than an exact read ({_span(narrow, 'adc_exact_bits')} bits) on {len(narrow)} of "
        f"{len(layers)} layers ({shown}); full scale {scale} bits, {how}"
    )


def periphery_line(periphery: RangeManagement) -> str:
    """One line on a range-managed periphery: the compiled reads are exact, and the simulator's converters act per
    read as the chip's ``[periphery]`` says."""
    scaling = "scaled by their largest magnitude" if periphery.input_scaling == "abs_max" else "unscaled"
    bound = (
        f"read again with the input halved while saturated (at most {periphery.max_passes} reads)"
        if periphery.bound_management == "iterative"
        else "clipped"
    )
    units = " in weight units" if periphery.weight_units else ""
    return (
        f"periphery: each read's inputs {scaling} onto {periphery.input_levels} DAC steps per sign; outputs on "
        f"{periphery.output_levels} ADC steps per sign over +-{periphery.output_bound:g}{units}, {bound} "
        "(in the simulator; --ideal reads exactly)"
    )


def _span(layers: list[dict], key: str) -> str:
    """The least and greatest value of ``key`` over ``layers``: ``17-19``, or ``17`` when they are equal."""
    values = sorted({layer[key] for layer in layers})
    return f"{values[0]}-{values[-1]}" if len(values) > 1 else f"{values[0]}"


def _cmd_opt(args: argparse.Namespace) -> int:
    module = read_mlir(args.input)
    timings = run_passes(module, args.passes, _options(args))
    verify(module)
    _emit(module, args)
    _report_timing(args, timings)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if args.model.endswith((".mlir", ".cimb")) and args.stage is not None:
        raise InputFileError(f"{args.model}: .mlir and .cimb files run at the stage they hold; --stage is for .onnx")
    if args.model.endswith(".cimb"):
        outputs = run_binary(args)
    else:
        if simulation_flags_given(args):
            raise InputFileError(
                f"{args.model}: --ideal, --device, --drift-time, --verify-iterations, --adc-offset, --stuck-on/off, "
                "--fidelity and the --no-... switches set up the simulated chip of a .cimb binary; compile the model "
                "first (cimc compile model.onnx)"
            )
        module = load_module(args.model, _options(args, args.stage or "graph"))
        func = main_function(module)
        inputs = checked_inputs(func, load_inputs(args.input, func.input_names), f"--input {args.input}")
        outputs = run_module(module, inputs)
    if args.output:
        save_outputs(args.output, outputs)
    for name, array in outputs.items():
        line = f"{name}: {array.dtype}{list(array.shape)}"
        if array.size and array.dtype.kind in "fiu":
            line += f"  min {array.min():.6g}  max {array.max():.6g}  mean {array.mean():.6g}"
        if array.ndim == 2 and array.shape[1] > 1 and array.dtype.kind == "f":
            top1 = np.argmax(array, axis=1)
            shown = " ".join(map(str, top1[:20])) + (" ..." if len(top1) > 20 else "")
            line += f"\n  top-1: {shown}"
        print(line)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from cimc.compiler.placement_report import format_placement_report

    path = Path(args.binary)
    report = checked_report(path)
    try:
        if args.html:
            from cimc.compiler.html_report import html_report

            write_atomic(args.html, html_report(report))
        text = json.dumps(report, indent=2, sort_keys=True) if args.json else format_placement_report(report)
    except KeyError as exc:
        raise InputFileError(
            f"{path}: its report has no {exc}: an older cimc wrote it; compile the model again"
        ) from None
    print(text)
    return 0


def _cmd_chips(args: argparse.Namespace) -> int:
    for name, line in list_presets():
        print(f"{name:<18} {line}")
    return 0


def _cmd_ops(args: argparse.Namespace) -> int:
    from cimc.ir.dialects.graph import BY_DOMAIN_TYPE, BY_ONNX_TYPE, OPSET

    print(f"ONNX operators cimc imports (converted to opset {OPSET}), and their graph ops:")
    for onnx_type in sorted(BY_ONNX_TYPE):
        print(f"  {onnx_type:<24} {BY_ONNX_TYPE[onnx_type].name}")
    print("  Constant                 graph.constant")
    print("Operators of other domains:")
    for domain, onnx_type in sorted(BY_DOMAIN_TYPE):
        print(f"  {domain + '.' + onnx_type:<24} {BY_DOMAIN_TYPE[domain, onnx_type].name}")
    return 0


COMMANDS = {
    "compile": _cmd_compile,
    "opt": _cmd_opt,
    "run": _cmd_run,
    "eval": cmd_eval,
    "demo": cmd_demo,
    "report": _cmd_report,
    "solve": cmd_solve,
    "chips": _cmd_chips,
    "ops": _cmd_ops,
}


#: User errors of modules that a command may never load (onnx for the importer, the simulator for evaluation):
#: module -> the error's class name, recognised by ``is_user_error`` only where that module is loaded.
LAZY_USER_ERRORS = {"cimc.compiler.onnx_importer": "OnnxImportError", "cimc.runtime.evaluate": "DatasetError"}


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` means bad input: one of ``USER_ERRORS`` or of ``LAZY_USER_ERRORS``. Those are looked up
    among the loaded modules, so ``cimc run model.cimb`` never loads onnx: a command that did not import the
    importer cannot have raised its error."""
    lazy = (getattr(sys.modules[name], error) for name, error in LAZY_USER_ERRORS.items() if name in sys.modules)
    return isinstance(exc, (*USER_ERRORS, *lazy))


def _check_files(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output that names a folder or would replace an input or another output; the
    binary ``cimc compile`` writes by default (``<model>.cimb`` here) is an output like any other."""
    if args.command == "compile" and args.emit is None and not args.output:
        args.output = Path(args.model).with_suffix(".cimb").name
    given = {
        dest: (flag, path) for dest, flag in args.file_flags.items() if isinstance(path := getattr(args, dest), str)
    }
    check_outputs(
        {flag: path for dest, (flag, path) in given.items() if dest in READS},
        {flag: path for dest, (flag, path) in given.items() if dest in WRITES},
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cimc`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        _check_files(args)
        with tensor_limit(getattr(args, "max_tensor_size", None)):
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("cimc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (cimc report x.cimb | head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        known = is_user_error(exc)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if known:
            print(f"cimc: error: {message}", file=sys.stderr)
            return 1
        print(
            f"cimc: internal error: {type(exc).__name__}: {message} (rerun with --debug for a traceback and report it)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
