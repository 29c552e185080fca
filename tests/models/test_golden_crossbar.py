"""Golden compilations (STYLE 13): the bundled models lowered to the ``cim`` stage with the default crossbar
parameters, their crossbar report and their exact-executor test accuracy compared with checked-in goldens, so that a
change in arrays, utilization, ADC bits or accuracy is seen and explained in the commit that makes it.

After an intended change, rewrite the goldens with ``CIMC_UPDATE_GOLDENS=1 pytest tests/models/test_golden_crossbar.py``
and commit them with the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cimc.compiler import PipelineOptions, compile_onnx
from cimc.compiler.crossbar_report import crossbar_report, report_json
from cimc.ir import run_module

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("model", ["digits_mlp", "digits_cnn"])
def test_crossbar_report_and_accuracy_match_the_golden(model: str) -> None:
    module, _ = compile_onnx(ROOT / "models" / f"{model}.onnx", PipelineOptions(emit="cim"))
    test = np.load(ROOT / "models" / "digits_test.npz")
    logits = run_module(module, {"x": test["x"]})["logits"]
    figures = {
        "report": report_json(crossbar_report(module)),
        "test_accuracy": float((logits.argmax(1) == test["y"]).mean()),
    }
    text = json.dumps(figures, indent=1, sort_keys=True) + "\n"
    path = GOLDEN / f"{model}.cim.json"
    if os.environ.get("CIMC_UPDATE_GOLDENS") == "1":
        path.write_text(text)
    assert path.is_file(), f"no golden {path}; write it with CIMC_UPDATE_GOLDENS=1"
    assert json.loads(text) == json.loads(path.read_text()), f"{model}: crossbar figures differ from {path}"
