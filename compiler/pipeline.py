"""The compilation pipeline, read top to bottom: ``stages`` lists each stage's steps as pass objects, in order;
``--print-ir-after-all`` dumps the IR after each step and ``--emit`` stops after a stage.

- ``import``: ONNX -> the ``graph`` dialect.
- ``graph``: ``canonicalize`` (constants folded, Identity and Dropout removed, BatchNorm folded, dead code gone).
- ``quantized``: ``calibrate-activations`` (the activation range of every float layer, measured on sample inputs),
  ``lower-solve`` (a product with the inverse of a constant matrix becomes a closed-loop ``cim.solve`` on its
  programmed blocks), then ``lower-to-cim``: every layer with constant weights becomes exact integer crossbar
  arithmetic (``cim.linear``), everything else a digital-unit op. This is the integer reference.
- ``cim``: ``tile`` (row blocks of one array's height), ``bit-slice`` (weights over cells, inputs over DAC bit
  planes, ADC reads, shift-add), ``calibrate-adc-ranges`` (the full scale of every ADC narrower than exact, from the
  sample inputs' column currents; unless ``adc_range="full"``) and, on request, ``replicate``: the arithmetic
  exactly as the chip does it.
- ``placed``: ``attach-chip`` (the chip on the module as ``cim.chip``, after checking its arrays suffice),
  ``split-groups`` (array groups that fit a tile) and ``place`` (every group on a tile, traffic x hops least).

The crossbar passes take their options from one ``CrossbarOptions``, whose fields are made from the same
declarations as the passes' (``cimc.passes.crossbar_options``). ``compile_binary`` goes on to code generation and
writes the ``.cimb`` file.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import cimc.passes  # noqa: F401 - registers every pass the stages run
from cimc.compiler.files import InputFileError, load_inputs
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import ProgramOp
from cimc.ir.interpreter import main_function
from cimc.ir.options import Option, Rule, check_options
from cimc.ir.parser import parse_module
from cimc.ir.pass_manager import Pass, PassManager, PassTiming, write_dump
from cimc.ir.printer import print_module
from cimc.ir.target.chip import ATTRIBUTE, PRESETS, Chip, ChipError, load_chip
from cimc.ir.verifier import verify
from cimc.passes.bit_slice import BitSlicePass
from cimc.passes.canonicalize import CanonicalizePass
from cimc.passes.crossbar_options import (
    ADC_BITS,
    ARRAY_BUDGET,
    ARRAY_COLS,
    ARRAY_ROWS,
    CELL_BITS,
    DAC_BITS,
    INPUT_BITS,
    INPUT_ENCODING,
    SIGN_ENCODING,
    WEIGHT_BITS,
    WEIGHT_SCALING,
)
from cimc.passes.lower_solve import LowerSolvePass
from cimc.passes.lower_to_cim import LowerToCimPass
from cimc.passes.place import PlacePass
from cimc.passes.replicate import ReplicatePass
from cimc.passes.split_groups import SplitGroupsPass
from cimc.passes.tile import TilePass

if TYPE_CHECKING:
    import numpy as np
    import onnx

#: The stages ``--emit`` can stop after, in pipeline order.
STAGES = ("import", "graph", "quantized", "cim", "placed")

#: How the full scale of an ADC narrower than exact is chosen (``CrossbarOptions.adc_range``).
ADC_RANGES = ("calibrated", "full")

ADC_RANGE = Option(
    "calibrated",
    "the full scale of an ADC narrower than an exact read: calibrated on the --calib inputs' column currents (max, "
    "or with --calib-method percentile a percentile), or full, the worst-case column sum",
    Rule(choices=ADC_RANGES),
)
REPLICATE = Option(
    "none",
    "auto: replicate the arrays of the conv layers that dominate latency, under --array-budget",
    Rule(choices=("none", "auto")),
)

#: The crossbar options a chip sets (``CrossbarOptions.for_chip``): its tiles' fields of the same names.
CHIP_FIELDS = ("cell_bits", "dac_bits", "adc_bits", "sign_encoding", "array_rows", "array_cols", "weight_scaling")


@dataclass(frozen=True)
class CrossbarOptions:
    """The parameters that change crossbar arithmetic: quantization widths, cells, converters, arrays; each field
    made from the declaration the passes that take it share (``cimc.passes.crossbar_options``), checked when made
    (``OptionError``).

    ``adc_bits`` 0 means an ADC exact for its array (see ``cimc.ir.dialects.cim.exact_adc_bits``); an ADC narrower
    than that spans, by ``adc_range``, the currents measured on the calibration inputs (``calibrated``, as chips
    calibrate their ADCs' gain: ``cimc.compiler.calibration.calibrate_adc_ranges``) or the worst-case column sum
    (``full``); ``array_budget`` 0 with ``replicate="auto"`` means twice the arrays the model needs unreplicated;
    ``weight_scaling`` quantizes float weights per output ``column`` or over the whole ``tensor``.
    """

    input_bits: int = INPUT_BITS.field()
    weight_bits: int = WEIGHT_BITS.field()
    weight_scaling: str = WEIGHT_SCALING.field()
    cell_bits: int = CELL_BITS.field()
    dac_bits: int = DAC_BITS.field()
    adc_bits: int = ADC_BITS.field()
    adc_range: str = ADC_RANGE.field()
    sign_encoding: str = SIGN_ENCODING.field()
    array_rows: int = ARRAY_ROWS.field()
    array_cols: int = ARRAY_COLS.field()
    input_encoding: str = INPUT_ENCODING.field()
    replicate: str = REPLICATE.field()
    array_budget: int = ARRAY_BUDGET.field()

    def __post_init__(self) -> None:
        check_options(self, lambda field: f"CrossbarOptions.{field}")

    @staticmethod
    def for_chip(chip: Chip, **overrides: Any) -> CrossbarOptions:
        """The crossbar options of ``chip``: its cells, DACs, ADCs, sign encoding, weight scaling and array size
        (``CHIP_FIELDS``), 8-bit weights and inputs, and ``overrides`` (any field) on top.

        The chip's ADC is what the compiled arithmetic reads with: where it is narrower than an exact read of its
        array (ISAAC, HERMES, Mythic), its full scale is calibrated on the calibration inputs (``adc_range``);
        ``adc_bits=0`` asks for the exact ADC instead, the integer reference. A chip with a ``[periphery]`` sets its
        converters' ranges per read, in the simulator: its compiled reads are exact.
        """
        from_chip = {name: getattr(chip.tile, name) for name in CHIP_FIELDS}
        if chip.periphery is not None:
            from_chip["adc_bits"] = 0
        return CrossbarOptions(**{**from_chip, **overrides})


@dataclass
class PipelineOptions:
    """How to run the pipeline: fix dynamic input dims to ``input_shapes``; stop after ``emit``; calibrate float
    models on ``calib`` (arrays keyed by input name, or an ``.npz`` of them; by default, for a bundled model only,
    its bundled set: ``default_calibration``); verify, dump and time each pass when asked."""

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
    #: called with the calibration inputs' source (the file read, or "the given arrays") when a step first needs them
    on_calibration: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.emit not in STAGES:
            raise ValueError(f"unknown stage '{self.emit}' (stages: {', '.join(STAGES)})")
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


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline: its name (what ``--emit`` stops after) and its steps, in order."""

    name: str
    steps: tuple[Pass, ...]


def stages(source: str | os.PathLike | onnx.ModelProto, options: PipelineOptions) -> tuple[Stage, ...]:
    """The stages after ``import`` of compiling ``source`` with ``options``, each step a pass object."""
    crossbar = options.crossbar_options()
    calibration = CalibrationSet(source, options)
    return (
        Stage("graph", (CanonicalizePass(),)),
        Stage(
            "quantized",
            (
                CalibrateActivations(calibration),
                LowerSolvePass(
                    matrix_bits=crossbar.weight_bits,
                    cell_bits=crossbar.cell_bits,
                    array_rows=crossbar.array_rows,
                    array_cols=crossbar.array_cols,
                ),
                LowerToCimPass(
                    input_bits=crossbar.input_bits,
                    weight_bits=crossbar.weight_bits,
                    weight_scaling=crossbar.weight_scaling,
                ),
            ),
        ),
        Stage(
            "cim",
            (
                TilePass(array_rows=crossbar.array_rows),
                BitSlicePass(
                    cell_bits=crossbar.cell_bits,
                    dac_bits=crossbar.dac_bits,
                    adc_bits=crossbar.adc_bits,
                    sign_encoding=crossbar.sign_encoding,
                    array_rows=crossbar.array_rows,
                    array_cols=crossbar.array_cols,
                    input_encoding=crossbar.input_encoding,
                ),
                *([CalibrateAdcRanges(calibration)] if crossbar.adc_range == "calibrated" else []),
                *([ReplicatePass(budget=crossbar.array_budget)] if crossbar.replicate == "auto" else []),
            ),
        ),
        Stage(
            "placed",
            (
                AttachChip(options.chip),
                SplitGroupsPass(),
                PlacePass(effort=options.placement_effort, seed=options.seed, workers=options.workers),
            ),
        ),
    )


def compile_onnx(
    source: str | os.PathLike | onnx.ModelProto, options: PipelineOptions | None = None
) -> tuple[ModuleOp, list[PassTiming]]:
    """ONNX model (a file or a ``ModelProto``) -> IR at the requested stage; also returns per-step timings."""
    from cimc.compiler.onnx_importer import import_onnx

    options = options or PipelineOptions()
    _progress(options, "import")
    module = import_onnx(source, options.input_shapes)
    _dump(options, "import", module)
    timings: list[PassTiming] = []
    for stage in stages(source, options)[: STAGES.index(options.emit)]:
        _progress(options, stage.name)
        timings += run_passes(module, stage.steps, options)
    return module, timings


def compile_binary(
    source: str | os.PathLike | onnx.ModelProto, output: str | os.PathLike, options: PipelineOptions | None = None
) -> tuple[dict, list[PassTiming]]:
    """The whole pipeline: ONNX -> placed IR -> per-tile instruction streams -> the ``.cimb`` binary at ``output``
    (written atomically); returns the placement report it holds, and per-step timings."""
    from cimc.compiler.binary import model_digest, write_binary
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
        "model_sha256": model_digest(source) if isinstance(source, (str, os.PathLike)) else None,
        "chip": chip.name,
        "crossbar": dataclasses.asdict(crossbar),
        "placement": {"effort": options.placement_effort, "seed": options.seed, "workers": options.workers},
        "calib_method": options.calib_method,
        "input_shapes": input_shapes,
    }
    write_binary(output, module, program=generate(module).encode(), report=report, meta=meta)
    timings.append(PassTiming("codegen + binary", time.perf_counter() - start))
    return report, timings


# --- the compiler's own steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompilerStep(Pass):
    """A step of the pipeline that is no ``cimc opt`` pass: it takes what pipeline text cannot give (calibration
    inputs, a chip), so it is not registered and prints as its name alone."""

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class CalibrateActivations(CompilerStep):
    """Annotate the float layers with activation ranges measured on the calibration set (``cim.input_range``, what
    ``lower-to-cim`` quantizes with); a module without float crossbar layers needs no calibration inputs."""

    name = "calibrate-activations"
    calibration: CalibrationSet

    def run(self, module: ModuleOp) -> None:
        from cimc.compiler.calibration import calibrate
        from cimc.passes.crossbar_match import crossbar_input

        if any(crossbar_input(op) is not None for op in main_function(module).body.ops):
            inputs = self.calibration.inputs(module, "quantizing its float layers for the crossbars")
            calibrate(module, inputs, method=self.calibration.options.calib_method)


@dataclass(frozen=True)
class CalibrateAdcRanges(CompilerStep):
    """Set the full scale of every ADC narrower than exact from the calibration set's column currents."""

    name = "calibrate-adc-ranges"
    calibration: CalibrationSet

    def run(self, module: ModuleOp) -> None:
        from cimc.compiler.calibration import calibrate_adc_ranges, narrow_adcs

        adcs = narrow_adcs(module)
        if adcs:
            exact, bits = max(op.attr("full_scale_bits") for op in adcs), adcs[0].attr("bits")
            why = f"calibrating the range of its {bits}-bit ADCs (an exact read needs up to {exact} bits)"
            hint = "; or --adc-range full (the worst-case range), --adc-bits 0 (exact ADCs)"
            inputs = self.calibration.inputs(module, why, hint)
            calibrate_adc_ranges(module, inputs, method=self.calibration.options.calib_method)


@dataclass(frozen=True)
class AttachChip(CompilerStep):
    """Give the module its chip (``cim.chip``, what ``split-groups`` and ``place`` read), after checking that the
    chip has the arrays the module needs (``ChipError`` naming the presets that would)."""

    name = "attach-chip"
    #: a preset name, a .toml file or a loaded ``Chip``
    chip: str | os.PathLike | Chip

    def run(self, module: ModuleOp) -> None:
        chip = self.chip if isinstance(self.chip, Chip) else load_chip(self.chip)
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


class CalibrationSet:
    """One compilation's calibration inputs: ``options.calib``, else the bundled set of a bundled model, read from
    its file once, when a step first needs it (activation ranges, then ADC ranges)."""

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
        if isinstance(calib, Mapping):
            self._inputs = calib
        else:
            self._inputs = load_inputs(calib, main_function(module).input_names, "--calib")
        if self.options.on_calibration is not None:
            self.options.on_calibration("the given arrays" if isinstance(calib, Mapping) else str(calib))
        return self._inputs


#: The folder of the models bundled with cimc (``models/`` of its source tree), the only ones calibrated by default.
BUNDLED_MODELS = Path(__file__).resolve().parents[1] / "models"


def default_calibration(model: str | os.PathLike) -> Path | None:
    """The calibration set bundled with a bundled model: ``<prefix>_calib.npz`` in ``BUNDLED_MODELS``, where
    ``<prefix>`` starts the model's name (``models/digits_calib.npz`` for ``models/digits_cnn.onnx``); the longest
    prefix wins. None for any other model: a file that merely lies beside a user's model is never used unnamed."""
    model = Path(model)
    if not model.is_file() or model.resolve().parent != BUNDLED_MODELS:
        return None
    found = [
        path
        for path in BUNDLED_MODELS.glob("*_calib.npz")
        if model.stem.startswith(path.name.removesuffix("_calib.npz"))
    ]
    return max(found, key=lambda p: len(p.name), default=None)


def run_passes(
    module: ModuleOp, pipeline: str | Sequence[Pass], options: PipelineOptions | None = None
) -> list[PassTiming]:
    """Run passes (pass objects, or a pipeline's text) on ``module`` in place, honouring the verify and dump options;
    returns the timings."""
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
