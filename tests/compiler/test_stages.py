"""The pipeline as typed stages: each step a pass object, in order, the crossbar options declared once and shared
by the compiler's ``CrossbarOptions``, the passes and the flags."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest

from cimc.compiler.pipeline import (
    AttachChip,
    CalibrateActivations,
    CalibrateAdcRanges,
    CrossbarOptions,
    PipelineOptions,
    compile_onnx,
    stages,
)
from cimc.ir import parse_pipeline
from cimc.ir.options import OptionError, option_of
from cimc.ir.pass_manager import PASSES
from cimc.passes.bit_slice import BitSlicePass
from cimc.passes.lower_solve import LowerSolvePass
from cimc.passes.lower_to_cim import LowerToCimPass
from cimc.passes.replicate import ReplicatePass
from cimc.passes.tile import TilePass

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "models" / "digits_cnn.onnx"


def _names(options: PipelineOptions) -> list[tuple[str, list[str]]]:
    return [(stage.name, [step.name for step in stage.steps]) for stage in stages(CNN, options)]


def test_the_stages_list_every_step_in_order() -> None:
    assert _names(PipelineOptions()) == [
        ("graph", ["canonicalize"]),
        ("quantized", ["calibrate-activations", "lower-solve", "lower-to-cim"]),
        ("cim", ["tile", "bit-slice", "calibrate-adc-ranges"]),
        ("placed", ["attach-chip", "split-groups", "place"]),
    ]
    crossbar = CrossbarOptions(adc_range="full", replicate="auto", array_budget=300)
    assert _names(PipelineOptions(crossbar=crossbar))[2] == ("cim", ["tile", "bit-slice", "replicate"])


def test_the_crossbar_passes_take_the_crossbar_options() -> None:
    crossbar = CrossbarOptions(
        input_bits=6, weight_bits=4, weight_scaling="tensor", cell_bits=1, dac_bits=2, adc_bits=5,
        sign_encoding="offset", array_rows=32, array_cols=16, input_encoding="unsigned", replicate="auto",
        array_budget=99,
    )  # fmt: skip
    graph, quantized, cim, placed = stages(CNN, PipelineOptions(crossbar=crossbar))
    assert quantized.steps[1:] == (
        LowerSolvePass(matrix_bits=4, cell_bits=1, array_rows=32, array_cols=16),
        LowerToCimPass(input_bits=6, weight_bits=4, weight_scaling="tensor"),
    )
    assert cim.steps[:2] == (TilePass(array_rows=32), BitSlicePass(1, 2, 5, "offset", 32, 16, "unsigned"))
    assert cim.steps[3] == ReplicatePass(budget=99)
    assert isinstance(quantized.steps[0], CalibrateActivations) and isinstance(cim.steps[2], CalibrateAdcRanges)
    assert isinstance(placed.steps[0], AttachChip) and str(placed.steps[0]) == "attach-chip"


def test_each_registered_step_round_trips_through_its_text() -> None:
    """The stages' passes print as ``cimc opt`` pipeline text that parses back into equal pass objects."""
    for stage in stages(CNN, PipelineOptions(crossbar=CrossbarOptions(replicate="auto"))):
        passes = [step for step in stage.steps if step.name in PASSES]
        assert parse_pipeline(",".join(map(str, passes))) == passes


def test_crossbar_options_are_the_passes_declarations() -> None:
    """Every crossbar option a pass takes under the same name is the pass's own declaration."""
    crossbar = {f.name: option_of(f) for f in dataclasses.fields(CrossbarOptions)}
    shared = 0
    for cls in (LowerToCimPass, TilePass, BitSlicePass, ReplicatePass):
        for field in dataclasses.fields(cls):
            name = "array_budget" if (cls, field.name) == (ReplicatePass, "budget") else field.name
            assert option_of(field) is crossbar[name], (cls.name, field.name)
            assert field.default == dataclasses.fields(CrossbarOptions)[list(crossbar).index(name)].default
            shared += 1
    assert shared == 12
    with pytest.raises(OptionError, match=r"^CrossbarOptions.cell_bits must be an integer from 1 to 8, got 99$"):
        CrossbarOptions(cell_bits=99)
    with pytest.raises(OptionError, match=r"^CrossbarOptions.replicate must be one of 'none', 'auto', got 'yes'$"):
        CrossbarOptions(replicate="yes")


def test_every_step_is_dumped_and_timed_and_emit_stops_after_its_stage() -> None:
    dump = io.StringIO()
    module, timings = compile_onnx(CNN, PipelineOptions(emit="placed", print_ir_after_all=True, dump=dump))
    headers = re.findall(r"// -----// IR Dump After (\S+?)(?:\{.*\})? //----- //", dump.getvalue())
    steps = [step for _, names in _names(PipelineOptions()) for step in names]
    assert headers == ["import", *steps]
    assert [t.name.partition("{")[0] for t in timings] == steps
    assert "cim.chip" in module.attributes
    quantized, _ = compile_onnx(CNN, PipelineOptions(emit="quantized"))
    assert "cim.chip" not in quantized.attributes
    assert not any(op.name == "cim.program" for op in quantized.walk())
    assert any(op.name == "cim.linear" for op in quantized.walk())
