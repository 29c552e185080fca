"""Passes are registered by name; pipeline text naming them parses into pass objects, or fails with a message
naming what is wrong, and every pass prints back as the text it parses from."""

from __future__ import annotations

import dataclasses

import pytest

from cimc.ir import PipelineError, parse_pipeline
from cimc.ir.options import option_of
from cimc.ir.pass_manager import PASSES
from cimc.passes.bit_slice import BitSlicePass
from cimc.passes.canonicalize import CanonicalizePass
from cimc.passes.crossbar_options import ARRAY_ROWS, CELL_BITS
from cimc.passes.dce import DcePass
from cimc.passes.fold_batch_norm import FoldBatchNormPass
from cimc.passes.fold_constants import FoldConstantsPass
from cimc.passes.lower_solve import CHIP_DEFAULT, LowerSolvePass
from cimc.passes.remove_identity import RemoveIdentityPass
from cimc.passes.tile import TilePass


def test_each_pass_parses_by_name() -> None:
    text = "remove-identity,fold-constants,fold-batch-norm,dce,canonicalize"
    assert parse_pipeline(text) == [
        RemoveIdentityPass(),
        FoldConstantsPass(),
        FoldBatchNormPass(),
        DcePass(),
        CanonicalizePass(),
    ]


def test_canonicalize_then_dce() -> None:
    assert parse_pipeline("canonicalize,dce") == [CanonicalizePass(), DcePass()]


def test_options_parse_and_print_back() -> None:
    (fold,) = parse_pipeline(" fold-constants{ max-elements=64 } ")
    assert fold == FoldConstantsPass(max_elements=64)
    assert str(fold) == "fold-constants{max-elements=64}"


@pytest.mark.parametrize(
    "pipeline, message",
    [
        ("canonicalize,no-such-pass", r"unknown pass 'no-such-pass' \(known: .*canonicalize.*dce"),
        ("dce{depth=2}", r"pass 'dce' has no option 'depth' \(options: none\)"),
        ("fold-constants{limit=2}", r"pass 'fold-constants' has no option 'limit' \(options: max-elements\)"),
        ("fold-constants{max-elements=many}", r"option 'max-elements': 'many' is not a valid int"),
    ],
)
def test_bad_pipelines_are_named(pipeline: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        parse_pipeline(pipeline)


def _other_value(field: dataclasses.Field) -> object:
    """A value of ``field`` other than its default that its option admits."""
    declared, default = option_of(field), field.default
    if declared is not None and declared.rule.choices:
        return next(choice for choice in declared.rule.choices if choice != default)
    candidates = {bool: [not default], int: [default + 1, default - 1], float: [2.5 * default + 1]}[type(default)]
    return next(value for value in candidates if declared is None or declared.rule.holds(value))


@pytest.mark.parametrize("name", sorted(PASSES))
def test_every_pass_round_trips_through_its_text_with_options_set(name: str) -> None:
    """``str(pass)`` is pipeline text that parses back into an equal pass, every option away from its default."""
    cls = PASSES[name]
    changed = cls(**{field.name: _other_value(field) for field in dataclasses.fields(cls)})
    assert all(getattr(changed, f.name) != f.default for f in dataclasses.fields(cls))
    assert parse_pipeline(str(changed)) == [changed]
    assert parse_pipeline(f"dce,{changed},canonicalize") == [DcePass(), changed, CanonicalizePass()]


def test_pipeline_text_prints_options_in_field_order() -> None:
    text = (
        "bit-slice{cell-bits=4,dac-bits=2,adc-bits=6,sign-encoding=offset,array-rows=32,array-cols=16,"
        "input-encoding=unsigned}"
    )
    (bit_slice,) = parse_pipeline(text.replace(",", " ").replace("bit-slice{", "bit-slice{ "))
    assert bit_slice == BitSlicePass(4, 2, 6, "offset", 32, 16, "unsigned")
    assert str(bit_slice) == text


def test_passes_sharing_an_option_share_its_declaration() -> None:
    """``cell-bits`` of ``bit-slice`` and of ``lower-solve`` are one declaration: the same bound, lower-solve's
    admitting 0 (the module's chip's)."""
    bit_slice = {f.name: option_of(f) for f in dataclasses.fields(BitSlicePass)}
    assert bit_slice["cell_bits"] is CELL_BITS and bit_slice["array_rows"] is ARRAY_ROWS
    assert option_of(dataclasses.fields(TilePass)[0]) is ARRAY_ROWS
    solve = {f.name: option_of(f) for f in dataclasses.fields(LowerSolvePass)}
    assert solve["cell_bits"] == CELL_BITS.or_zero(CHIP_DEFAULT)
    assert (solve["cell_bits"].default, solve["cell_bits"].rule.low, solve["cell_bits"].rule.high) == (0, 0, 8)
    with pytest.raises(
        PipelineError, match=r"^pass 'tile' option 'array-rows' must be an integer from 1 to 4096, got -3$"
    ):
        TilePass(array_rows=-3)
    with pytest.raises(
        PipelineError, match=r"^pass 'bit-slice' option 'cell-bits' must be an integer from 1 to 8, got 'two'$"
    ):
        BitSlicePass(cell_bits="two")  # type: ignore[arg-type]
