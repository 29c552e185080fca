"""The bundled digits models: their recorded accuracy is what onnxruntime measures, and the reference interpreter
computes the same logits as onnxruntime on the whole test split, on the imported graph and after canonicalization.

Retraining (models/train_digits.py) is not done here: it needs scikit-learn and takes seconds to minutes.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
METRICS = json.loads((MODELS_DIR / "metrics.json").read_text())
MODEL_NAMES = sorted(METRICS)


@cache
def digits_test_split() -> tuple[np.ndarray, np.ndarray]:
    """The 450-image test split: ``x`` float32 [450, 1, 8, 8], ``y`` int64 [450]."""
    with np.load(MODELS_DIR / "digits_test.npz") as data:
        return data["x"], data["y"]


@cache
def onnxruntime_logits(name: str) -> np.ndarray:
    """The logits onnxruntime computes for the whole test split: the independent reference."""
    session = ort.InferenceSession(str(MODELS_DIR / name), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"x": digits_test_split()[0]})
    return logits


def test_both_models_recorded() -> None:
    assert MODEL_NAMES == ["digits_cnn.onnx", "digits_mlp.onnx"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_recorded_accuracy_is_onnxruntime_accuracy(name: str) -> None:
    _, y = digits_test_split()
    correct = int((onnxruntime_logits(name).argmax(axis=1) == y).sum())
    recorded = METRICS[name]
    assert (correct, len(y)) == (recorded["correct"], recorded["samples"])
    assert correct / len(y) == recorded["accuracy"]
    assert recorded["accuracy"] >= 0.95


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_readme_states_recorded_accuracy(name: str) -> None:
    recorded = METRICS[name]
    readme = (MODELS_DIR / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{name}` |")]
    assert row.endswith(f"| {recorded['accuracy']:.4f} ({recorded['correct']}/{recorded['samples']}) |")


@pytest.mark.parametrize("pipeline", ["", "canonicalize"], ids=["imported", "canonicalized"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_interpreter_matches_onnxruntime(name: str, pipeline: str) -> None:
    from cimc.compiler.onnx_importer import import_onnx
    from cimc.ir.interpreter import run_module
    from cimc.ir.pass_manager import PassManager
    from cimc.ir.verifier import verify

    module = import_onnx(MODELS_DIR / name)
    verify(module)
    if pipeline:
        PassManager(pipeline, verify_each=True).run(module)
        assert not [op for op in module.walk() if op.name == "graph.batch_normalization"], "BatchNorm not folded"
    x, _ = digits_test_split()
    logits = run_module(module, {"x": x})["logits"]
    expected = onnxruntime_logits(name)
    assert logits.dtype == np.float32 and logits.shape == expected.shape
    # 1e-4 relative to each sample's largest logit: a logit near zero has no meaningful relative error of its own
    scale = np.abs(expected).max(axis=1, keepdims=True)
    np.testing.assert_array_less(np.abs(logits - expected), np.broadcast_to(1e-4 * scale, expected.shape))
    np.testing.assert_array_equal(logits.argmax(axis=1), expected.argmax(axis=1))
