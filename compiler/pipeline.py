"""The compilation pipeline, read top to bottom: each stage named, the IR dumped after each on request.

- ``import``: ONNX -> the ``graph`` dialect.
- ``graph``: canonicalization (constants folded, Identity and Dropout removed, BatchNorm folded, dead code gone).
- ``quantized``: calibration on sample inputs (float models), ``lower-solve`` (a product with the inverse of a
  constant matrix becomes a closed-loop ``cim.solve`` on its programmed blocks), then ``lower-to-cim``: every layer
  with constant weights becomes exact integer crossbar arithmetic (``cim.linear``), everything else a digital-unit
  op. This is the integer reference.
- ``cim``: ``tile`` (row blocks of one array's height), ``bit-slice`` (weights over cells, inputs over DAC bit
  planes, ADC reads, shift-add), the full scale of every ADC narrower than exact calibrated on the sample inputs
  (``adc_range="calibrated"``, the default) and, on request, ``replicate``: the arithmetic exactly as the chip does
  it.
- ``placed``: the chip attached to the module (``cim.chip``), ``split-groups`` (array groups that fit a tile) and
  ``place`` (every group on a tile, traffic x hops least).

``compile_binary`` goes on to code generation and writes the ``.cimb`` file.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import cimc.passes  # noqa: F401 - registers every pass the stages run
from cimc.compiler.files import InputFileError, load_inputs
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import ProgramOp
from cimc.ir.interpreter import main_function
from cimc.ir.parser import parse_module
from cimc.ir.pass_manager import PassManager, PassTiming, write_dump
from cimc.ir.printer import print_module
from cimc.ir.target.chip import ATTRIBUTE, PRESETS, Chip, ChipError, load_chip
from cimc.ir.verifier import verify

if TYPE_CHECKING:
    import numpy as np
    import onnx

#: The stages ``--emit`` can stop after, in pipeline order.
STAGES = ("import", "graph", "quantized", "cim", "placed")

#: How the full scale of an ADC narrower than exact is chosen (``CrossbarOptions.adc_range``).
ADC_RANGES = ("calibrated", "full")


@dataclass(frozen=True)
class CrossbarOptions:
    """The parameters that change crossbar arithmetic: quantization widths, cells, converters, arrays.

    ``adc_bits`` 0 means an ADC exact for its array (see ``cimc.ir.dialects.cim.exact_adc_bits``); an ADC narrower
    than that spans, by ``adc_range``, the currents measured on the calibration inputs (``calibrated``, as chips
    calibrate their ADCs' gain: ``cimc.compiler.calibration.calibrate_adc_ranges``) or the worst-case column sum
    (``full``); ``array_budget`` 0 with ``replicate="auto"`` means twice the arrays the model needs unreplicated;
    ``weight_scaling`` quantizes float weights per output ``column`` or over the whole ``tensor``.
    """

    input_bits: int = 8
    weight_bits: int = 8
    weight_scaling: str = "column"
    cell_bits: int = 2
    dac_bits: int = 1
    adc_bits: int = 0
    adc_range: str = "calibrated"
    sign_encoding: str = "differential"
    array_rows: int = 64
    array_cols: int = 64
    input_encoding: str = "signed"
    replicate: str = "none"
    array_budget: int = 0

    @staticmethod
    def for_chip(chip: Chip, **overrides: Any) -> CrossbarOptions:
        """The crossbar options of ``chip``: its cells, DACs, ADCs, sign encoding, weight scaling and array size,
        8-bit weights and inputs, and ``overrides`` (any field) on top.

        The chip's ADC is what the compiled arithmetic reads with: where it is narrower than an exact read of its
        array (ISAAC, HERMES, Mythic), its full scale is calibrated on the calibration inputs (``adc_range``);
        ``adc_bits=0`` asks for the exact ADC instead, the integer reference. A chip with a ``[periphery]`` sets its
        converters' ranges per read, in the simulator: its compiled reads are exact.
        """
        options = CrossbarOptions(
            cell_bits=chip.tile.cell_bits,
            dac_bits=chip.tile.dac_bits,
            adc_bits=0 if chip.periphery is not None else chip.tile.adc_bits,
            sign_encoding=chip.tile.sign_encoding,
            array_rows=chip.tile.array_rows,
            array_cols=chip.tile.array_cols,
            weight_scaling=chip.tile.weight_scaling,
        )
        return dataclasses.replace(options, **overrides)

    def stage_pipelines(self, placement: str = "") -> dict[str, str]:
        """The passes of each stage after the import (``placement``: the ``place`` pass's options); ``replicate``
        runs at the end of the ``cim`` stage, after the ADC ranges are calibrated (empty when not asked for)."""
        return {
            "graph": "canonicalize",
            "quantized": (
                f"lower-solve{{matrix-bits={self.weight_bits} cell-bits={self.cell_bits} array-rows={self.array_rows} "
                f"array-cols={self.array_cols}}},"
                f"lower-to-cim{{input-bits={self.input_bits} weight-bits={self.weight_bits} "
                f"weight-scaling={self.weight_scaling}}}"
            ),
            "cim": (
                f"tile{{array-rows={self.array_rows}}},"
                f"bit-slice{{cell-bits={self.cell_bits} dac-bits={self.dac_bits} adc-bits={self.adc_bits} "
                f"sign-encoding={self.sign_encoding} array-rows={self.array_rows} array-cols={self.array_cols} "
                f"input-encoding={self.input_encoding}}}"
            ),
            "replicate": f"replicate{{budget={self.array_budget}}}" if self.replicate == "auto" else "",
            "placed": f"split-groups,place{{{placement}}}",
        }


@dataclass
class PipelineOptions:
    """How to run the pipeline: fix dynamic input dims to ``input_shapes``; stop after ``emit``; calibrate float
    models on ``calib`` (arrays keyed by input name, or an ``.npz`` of them; by default the bundled set beside a
    bundled model); verify, dump and time each pass when asked."""

    emit: str = "graph"
    #: sizes of input dims by input name, None keeping a dim dynamic (see ``import_onnx``): a binary's timing and
    #: energy count each dynamic dim after the batch as 1, so give the sizes the chip will see
    input_shapes: dict[str, tuple[int | None, ...]] | None = None
    verify_each: bool = False
    print_ir_after_all: bool = False
    dump: TextIO | None = None
    #: a preset name, a .toml file or a loaded ``Chip``
    chip: str | os.PathLike | Chip = "default"
    #: the crossbar parameters; None takes them from the chip
    crossbar: CrossbarOptions | None = None
    calib: str | os.PathLike | Mapping[str, np.ndarray] | None = None
    calib_method: str = "minmax"
    #: the ``place`` pass: its effort (work, not seconds: CP-SAT deterministic seconds, local search iterations in
    #: proportion; the same binary on an idle or a busy machine), seed and workers
    placement_effort: float = 10.0
    seed: int = 0
    workers: int = 1
    #: called with each stage's name as it starts (a progress display for long compilations)
    progress: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.emit not in STAGES:
            raise ValueError(f"unknown stage '{self.emit}' (stages: {', '.join(STAGES)})")
        if self.crossbar is not None and self.crossbar.replicate not in ("none", "auto"):
            raise ValueError(f"replicate must be 'none' or 'auto', got '{self.crossbar.replicate}'")
        if self.crossbar is not None and self.crossbar.adc_range not in ADC_RANGES:
            raise ValueError(f"adc_range must be 'calibrated' or 'full', got '{self.crossbar.adc_range}'")
        if self.input_shapes is not None:  # plain ints, so the binary's meta can record them
            self.input_shapes = {
                name: tuple(None if size is None else int(size) for size in sizes)
                for name, sizes in self.input_shapes.items()
            }

    def resolved_chip(self) -> Chip:
        """The chip, loaded (``ChipError`` for a bad name or file)."""
        return self.chip if isinstance(self.chip, Chip) else load_chip(self.chip)

    def crossbar_options(self) -> CrossbarOptions:
        """The crossbar parameters: as given, else the chip's."""
        return self.crossbar if self.crossbar is not None else CrossbarOptions.for_chip(self.resolved_chip())


def compile_onnx(
    source: str | os.PathLike | onnx.ModelProto, options: PipelineOptions | None = None
) -> tuple[ModuleOp, list[PassTiming]]:
    """ONNX model (a file or a ``ModelProto``) -> IR at the requested stage; also returns per-pass timings."""
    from cimc.compiler.onnx_importer import import_onnx

    options = options or PipelineOptions()
    placement = f"effort={options.placement_effort} seed={options.seed} workers={options.workers}"
    pipelines = options.crossbar_options().stage_pipelines(placement)
    timings: list[PassTiming] = []
    _progress(options, "import")
    module = import_onnx(source, options.input_shapes)  # stage: import
    _dump(options, "import", module)
    calibration = _CalibrationSet(source, options)
    for stage in STAGES[STAGES.index("import") + 1 : STAGES.index(options.emit) + 1]:
        _progress(options, stage)
        if stage == "quantized":
            timings.append(_calibrate(module, calibration))
        if stage == "placed":
            _attach_chip(module, options.resolved_chip())
        timings += run_passes(module, pipelines[stage], options)  # stages: graph, quantized, cim, placed
        if stage == "cim":
            timings.append(_calibrate_adcs(module, calibration, options))
            timings += run_passes(module, pipelines["replicate"], options)
    return module, timings


def compile_binary(
    source: str | os.PathLike | onnx.ModelProto, output: str | os.PathLike, options: PipelineOptions | None = None
) -> tuple[dict, list[PassTiming]]:
    """The whole pipeline: ONNX -> placed IR -> per-tile instruction streams -> the ``.cimb`` binary at ``output``
    (written atomically); returns the placement report it holds, and per-step timings."""
    from cimc.compiler.binary import write_binary
    from cimc.compiler.codegen import generate
    from cimc.compiler.placement_report import placement_report

    options = dataclasses.replace(options or PipelineOptions(), emit="placed")
    module, timings = compile_onnx(source, options)
    _progress(options, "binary")
    start = time.perf_counter()
    chip = options.resolved_chip()
    report = placement_report(module, chip)
    crossbar = options.crossbar_options()
    input_shapes = options.input_shapes
    if input_shapes is not None and "" in input_shapes:  # the only input, unnamed: record its name
        input_shapes = {main_function(module).input_names[0]: input_shapes[""]}
    meta = {
        "model": Path(source).name if isinstance(source, (str, os.PathLike)) else "<onnx.ModelProto>",
        "chip": chip.name,
        "crossbar": dataclasses.asdict(crossbar),
        "placement": {"effort": options.placement_effort, "seed": options.seed, "workers": options.workers},
        "calib_method": options.calib_method,
        "input_shapes": input_shapes,
    }
    write_binary(output, module, program=generate(module).encode(), report=report, meta=meta)
    timings.append(PassTiming("codegen + binary", time.perf_counter() - start))
    return report, timings


def _attach_chip(module: ModuleOp, chip: Chip) -> None:
    """Give the module its chip (what ``split-groups`` and ``place`` read), after checking the arrays fit."""
    needed = sum(op.arrays for op in module.walk() if isinstance(op, ProgramOp))
    if needed > chip.arrays:
        fits = [name for name in PRESETS if load_chip(name).arrays >= needed]
        raise ChipError(
            f"the model needs {needed:,} arrays but chip '{chip.name}' has {chip.arrays:,} usable; "
            + (
                f"presets that fit: {', '.join(fits)}"
                if fits
                else "no preset fits: describe a bigger chip (--chip FILE.toml)"
            )
        )
    module.attributes[ATTRIBUTE] = chip.to_attribute()


def _calibrate(module: ModuleOp, calibration: _CalibrationSet) -> PassTiming:
    """Annotate the float layers of ``module`` with activation ranges measured on the calibration set."""
    from cimc.compiler.calibration import calibrate
    from cimc.passes.crossbar_match import crossbar_input

    start = time.perf_counter()
    if any(crossbar_input(op) is not None for op in main_function(module).body.ops):
        why = "quantizing its float layers for the crossbars"
        calibrate(module, calibration.inputs(module, why), method=calibration.options.calib_method)
    return PassTiming("calibrate", time.perf_counter() - start)


def _calibrate_adcs(module: ModuleOp, calibration: _CalibrationSet, options: PipelineOptions) -> PassTiming:
    """Set the full scale of every ADC narrower than exact from the calibration set's column currents, unless the
    crossbar options ask for the worst-case full scale."""
    from cimc.compiler.calibration import calibrate_adc_ranges, narrow_adcs

    start = time.perf_counter()
    adcs = narrow_adcs(module)
    if adcs and options.crossbar_options().adc_range == "calibrated":
        exact = max(op.attr("full_scale_bits") for op in adcs)
        why = f"calibrating the range of its {adcs[0].attr('bits')}-bit ADCs (an exact read needs up to {exact} bits)"
        hint = "; or --adc-range full (the worst-case range), --adc-bits 0 (exact ADCs)"
        calibrate_adc_ranges(module, calibration.inputs(module, why, hint), method=options.calib_method)
        _dump(options, "calibrate ADC ranges", module)
    return PassTiming("calibrate ADC ranges", time.perf_counter() - start)


class _CalibrationSet:
    """One compilation's calibration inputs: ``options.calib``, else the set bundled beside the model, read from
    its file once, when a stage first needs it (activation ranges, then ADC ranges)."""

    def __init__(self, source: str | os.PathLike | onnx.ModelProto, options: PipelineOptions) -> None:
        self.source = source
        self.options = options
        self._inputs: Mapping[str, np.ndarray] | None = None

    def inputs(self, module: ModuleOp, why: str, hint: str = "") -> Mapping[str, np.ndarray]:
        """The calibration inputs; an error saying ``why`` they are needed (and ``hint``: what else would do) when
        there are none."""
        if self._inputs is not None:
            return self._inputs
        calib = self.options.calib
        from_file = isinstance(self.source, (str, os.PathLike))
        if calib is None and from_file:
            calib = default_calibration(self.source)
        if calib is None:
            where = self.source if from_file else "the model"
            raise InputFileError(
                f"{where}: {why} needs calibration inputs; pass --calib data.npz (sample inputs keyed by input name, "
                f"like --input){hint}"
            )
        self._inputs = calib if isinstance(calib, Mapping) else load_inputs(calib, main_function(module).input_names)
        return self._inputs


def default_calibration(model: str | os.PathLike) -> Path | None:
    """The calibration set shipped beside a model: ``<prefix>_calib.npz`` in its folder, where ``<prefix>`` starts
    the model's name (``models/digits_calib.npz`` for ``models/digits_cnn.onnx``); the longest prefix wins."""
    model = Path(model)
    found = [
        path for path in model.parent.glob("*_calib.npz") if model.stem.startswith(path.name.removesuffix("_calib.npz"))
    ]
    return max(found, key=lambda p: len(p.name), default=None)


def run_passes(module: ModuleOp, pipeline: str, options: PipelineOptions | None = None) -> list[PassTiming]:
    """Run a pipeline string on ``module`` in place, honouring verify/dump options; returns the timings."""
    options = options or PipelineOptions()
    stream = (options.dump or sys.stderr) if options.print_ir_after_all else None
    manager = PassManager(pipeline, verify_each=options.verify_each, print_ir_after_all=stream)
    manager.run(module)
    return manager.timings


def load_module(path: str | os.PathLike, options: PipelineOptions | None = None) -> ModuleOp:
    """A model file as IR: ``.onnx`` is compiled to the stage ``options.emit`` (default graph), ``.mlir`` is parsed
    and verified as it is, a compiled ``.cimb`` gives its placed module."""
    if Path(path).suffix == ".mlir":
        return read_mlir(path)
    if Path(path).suffix == ".cimb":
        from cimc.runtime.binary import load_binary

        return load_binary(path).module
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


def _progress(options: PipelineOptions, stage: str) -> None:
    if options.progress is not None:
        options.progress(stage)


def _dump(options: PipelineOptions, stage: str, module: ModuleOp) -> None:
    if options.print_ir_after_all:
        write_dump(options.dump or sys.stderr, stage, print_module(module))
