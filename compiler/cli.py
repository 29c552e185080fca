"""The ``cimc`` command: compile, opt, run, ops.

Bad input ends in one line on stderr (``cimc: error: ...``) and exit status 1, never a traceback unless
``--debug`` is given; outputs are written atomically, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from cimc.compiler.files import InputFileError, load_inputs, save_outputs, write_atomic
from cimc.compiler.onnx_importer import OnnxImportError
from cimc.compiler.pipeline import STAGES, PipelineOptions, compile_onnx, load_module, read_mlir, run_passes
from cimc.ir.core import VerifyError
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.interpreter import InterpreterError, run_module
from cimc.ir.parser import ParseError
from cimc.ir.pass_manager import PassTiming, PipelineError
from cimc.ir.printer import print_module
from cimc.ir.verifier import verify

#: Errors that mean bad input, reported in one line; anything else is an internal error.
USER_ERRORS: tuple[type[BaseException], ...] = (
    OnnxImportError,
    ParseError,
    VerifyError,
    InterpreterError,
    PipelineError,
    InputFileError,
    FileNotFoundError,
    IsADirectoryError,
    PermissionError,
)


def _version() -> str:
    try:
        return version("cimc")
    except PackageNotFoundError:
        return "unknown"


def _add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show a traceback on errors")


def _add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass (stderr)")
    parser.add_argument("--verify-each", action="store_true", help="run the verifier after every pass")
    parser.add_argument("--timing", action="store_true", help="print per-pass wall time (stderr)")


def _add_output_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help=f"write {what} to FILE (with its resource blobs)")
    parser.add_argument(
        "--print-resources",
        action="store_true",
        help="print resource blobs (weights) on stdout instead of eliding them",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cimc`` command."""
    parser = argparse.ArgumentParser(prog="cimc", description="Compiler and simulator for analog compute-in-memory.")
    parser.add_argument("--version", action="version", version=f"cimc {_version()}")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compile_ = sub.add_parser("compile", help="compile an ONNX model and print or write its IR")
    compile_.add_argument("model", help="an .onnx file")
    compile_.add_argument(
        "--emit", choices=STAGES, default="graph", help="stop after this stage and print its IR (default: graph)"
    )
    _add_output_flags(compile_, "the IR")
    _add_pipeline_flags(compile_)

    opt = sub.add_parser("opt", help="run passes on textual IR, like mlir-opt")
    opt.add_argument("input", help="an .mlir file, or - for stdin")
    opt.add_argument("--passes", default="", metavar="PIPELINE", help='e.g. "canonicalize" or "fold-constants,dce"')
    _add_output_flags(opt, "the resulting IR")
    _add_pipeline_flags(opt)

    run = sub.add_parser("run", help="run a model on inputs with the reference interpreter")
    run.add_argument("model", help="an .onnx or .mlir file")
    run.add_argument("--input", "-i", required=True, metavar="FILE", help=".npy (single input) or .npz keyed by name")
    run.add_argument("--output", metavar="FILE", help="write outputs to this .npz, keyed by output name")
    run.add_argument("--stage", choices=["graph"], default="graph", help="which IR level executes (default: graph)")

    ops = sub.add_parser("ops", help="list the ONNX operators cimc imports")
    for command in (compile_, opt, run, ops):
        _add_common_flags(command)
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


def _options(args: argparse.Namespace, emit: str = "graph") -> PipelineOptions:
    return PipelineOptions(emit=emit, verify_each=args.verify_each, print_ir_after_all=args.print_ir_after_all)


def _cmd_compile(args: argparse.Namespace) -> int:
    module, timings = compile_onnx(args.model, _options(args, args.emit))
    _emit(module, args)
    _report_timing(args, timings)
    return 0


def _cmd_opt(args: argparse.Namespace) -> int:
    module = read_mlir(args.input)
    timings = run_passes(module, args.passes, _options(args))
    verify(module)
    _emit(module, args)
    _report_timing(args, timings)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    module = load_module(args.model)
    func = module.functions[0] if len(module.functions) == 1 else module.function("main")
    inputs = load_inputs(args.input, func.input_names)
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


def _cmd_ops(args: argparse.Namespace) -> int:
    from cimc.ir.dialects.graph import BY_ONNX_TYPE, OPSET

    print(f"ONNX operators cimc imports (converted to opset {OPSET}), and their graph ops:")
    for onnx_type in sorted(BY_ONNX_TYPE):
        print(f"  {onnx_type:<24} {BY_ONNX_TYPE[onnx_type].name}")
    print("  Constant                 graph.constant")
    return 0


COMMANDS = {"compile": _cmd_compile, "opt": _cmd_opt, "run": _cmd_run, "ops": _cmd_ops}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cimc`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("cimc: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        known = isinstance(exc, USER_ERRORS)
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
