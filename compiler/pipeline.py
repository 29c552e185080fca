"""The compilation pipeline, read top to bottom: each stage named, the IR dumped after each on request.

Stages so far: ``import`` (ONNX -> graph dialect) and ``graph`` (canonicalization: constants folded, Identity and
Dropout removed, BatchNorm folded into its Conv/Gemm, dead code gone). Later stages lower to crossbars.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.parser import parse_module
from cimc.ir.pass_manager import PassManager, PassTiming, write_dump
from cimc.ir.printer import print_module
from cimc.ir.verifier import verify

#: The stages ``--emit`` can stop after, in pipeline order.
STAGES = ("import", "graph")

#: The passes of each stage after the import.
STAGE_PIPELINES = {"graph": "canonicalize"}


@dataclass
class PipelineOptions:
    """How to run the pipeline: stop after ``emit``; verify, dump and time each pass when asked."""

    emit: str = "graph"
    verify_each: bool = False
    print_ir_after_all: bool = False
    dump: TextIO | None = None

    def __post_init__(self) -> None:
        if self.emit not in STAGES:
            raise ValueError(f"unknown stage '{self.emit}' (stages: {', '.join(STAGES)})")


def compile_onnx(
    source: str | os.PathLike, options: PipelineOptions | None = None
) -> tuple[ModuleOp, list[PassTiming]]:
    """ONNX model -> IR at the requested stage; also returns per-pass timings."""
    from cimc.compiler.onnx_importer import import_onnx

    options = options or PipelineOptions()
    timings: list[PassTiming] = []
    module = import_onnx(source)  # stage: import
    _dump(options, "import", module)
    for stage in STAGES[STAGES.index("import") + 1 : STAGES.index(options.emit) + 1]:
        timings += run_passes(module, STAGE_PIPELINES[stage], options)  # stage: graph
    return module, timings


def run_passes(module: ModuleOp, pipeline: str, options: PipelineOptions | None = None) -> list[PassTiming]:
    """Run a pipeline string on ``module`` in place, honouring verify/dump options; returns the timings."""
    options = options or PipelineOptions()
    stream = (options.dump or sys.stderr) if options.print_ir_after_all else None
    manager = PassManager(pipeline, verify_each=options.verify_each, print_ir_after_all=stream)
    manager.run(module)
    return manager.timings


def load_module(path: str | os.PathLike, options: PipelineOptions | None = None) -> ModuleOp:
    """A model file as IR: ``.onnx`` is compiled to the graph stage, ``.mlir`` is parsed and verified."""
    if Path(path).suffix == ".mlir":
        return read_mlir(path)
    return compile_onnx(path, options)[0]


def read_mlir(path: str | os.PathLike) -> ModuleOp:
    """The verified module in an ``.mlir`` file; ``-`` reads standard input."""
    if str(path) == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
        text, name = Path(path).read_text(encoding="utf-8", errors="replace"), str(path)
    module = parse_module(text, name)
    verify(module)
    return module


def _dump(options: PipelineOptions, stage: str, module: ModuleOp) -> None:
    if options.print_ir_after_all:
        write_dump(options.dump or sys.stderr, stage, print_module(module))
