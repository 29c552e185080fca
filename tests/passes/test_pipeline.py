"""The canonicalization passes are registered by name, and pipeline strings naming them parse, or fail with a
message naming what is wrong."""

from __future__ import annotations

import pytest

from cimc.ir import PipelineError, parse_pipeline
from cimc.passes.canonicalize import CanonicalizePass
from cimc.passes.dce import DcePass
from cimc.passes.fold_batch_norm import FoldBatchNormPass
from cimc.passes.fold_constants import FoldConstantsPass
from cimc.passes.remove_identity import RemoveIdentityPass


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
