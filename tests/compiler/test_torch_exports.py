"""Models as PyTorch's exporters write them (tests/data/torch_exports, made by export.py there) import, run as
onnxruntime runs them, survive canonicalization, and print -> parse -> print unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from cimc.compiler import import_onnx
from cimc.ir import PassManager, parse_module, print_module, run_module

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "torch_exports"
MODELS = sorted(p.name for p in EXPORTS.glob("*.onnx"))


def _feeds(session: ort.InferenceSession) -> dict[str, np.ndarray]:
    """Seeded inputs at the exported sizes (the TorchScript encoder fixes batch 2 and 16 tokens in a Reshape)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else {"batch": 2, "seq": 16}[d] for d in i.shape]
        if i.name == "ids":
            feeds[i.name] = rng.integers(0, 100, shape).astype(np.int64)
        elif i.name == "mask":
            feeds[i.name] = np.ones(shape, np.int64)
            feeds[i.name][:, -3:] = 0  # padded tokens
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def test_every_export_is_tested() -> None:
    assert len(MODELS) == 8


@pytest.mark.parametrize("name", MODELS)
def test_matches_onnxruntime_before_and_after_canonicalize(name: str) -> None:
    path = EXPORTS / name
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = _feeds(session)
    (want,) = session.run(None, feeds)
    module = import_onnx(path)
    for stage in ("import", "canonicalize"):
        if stage == "canonicalize":
            PassManager("canonicalize", verify_each=True).run(module)
        (got,) = run_module(module, feeds).values()
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    text = print_module(module, resources=True)
    assert print_module(parse_module(text), resources=True) == text
