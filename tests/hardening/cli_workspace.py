"""The files the command-line refusal corpora (``test_cli.py``, ``test_data.py``, ``test_outputs.py``) run against:
a float model with its calibration set, its compiled binary, its IR, inputs, a labelled dataset and a linear system,
all in one folder. A case is an ``argv`` template whose ``{name}`` fields are these files' paths."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cimc.compiler.pipeline import PipelineOptions, compile_binary

MODELS = Path(__file__).resolve().parents[2] / "models"


def make_workspace(folder: Path) -> dict[str, str]:
    """Write the workspace's files in ``folder``; returns their paths by name (``model``, ``calib``, ``binary``,
    ``ir``, ``x_npy``, ``x_npz``, ``data``, ``matrix``, ``rhs``, ``folder``, ``dir``: an empty subfolder)."""
    model = folder / "mlp.onnx"
    shutil.copy(MODELS / "digits_mlp.onnx", model)
    calib = folder / "calib.npz"
    shutil.copy(MODELS / "digits_calib.npz", calib)
    binary = folder / "mlp.cimb"
    compile_binary(model, binary, PipelineOptions(calib=str(calib), placement_effort=1))
    with np.load(MODELS / "digits_test.npz") as test:
        x, y = test["x"][:20], test["y"][:20]
    np.save(folder / "x.npy", x[:4])
    np.savez(folder / "x.npz", x=x[:4])
    np.savez(folder / "data.npz", x=x, y=y)
    np.save(folder / "A.npy", np.eye(4) * 2 + 0.1)
    np.save(folder / "b.npy", np.ones(4))
    (folder / "ir.mlir").write_text(MLIR)
    (folder / "dir").mkdir()
    names = {"model": model, "calib": calib, "binary": binary, "ir": folder / "ir.mlir", "x_npy": folder / "x.npy"}
    names |= {"x_npz": folder / "x.npz", "data": folder / "data.npz", "matrix": folder / "A.npy"}
    names |= {"rhs": folder / "b.npy", "folder": folder, "dir": folder / "dir"}
    return {name: str(path) for name, path in names.items()}


#: A small module in IR text: relu of a 2x2 tensor.
MLIR = """"builtin.module"() ({
  "func.func"() <{function_type = (tensor<2x2xf32>) -> tensor<2x2xf32>, sym_name = "main"}> ({
  ^bb0(%0: tensor<2x2xf32>):
    %1 = "graph.relu"(%0) : (tensor<2x2xf32>) -> tensor<2x2xf32>
    "func.return"(%1) : (tensor<2x2xf32>) -> ()
  }) : () -> ()
}) : () -> ()
"""


def fill(template: Sequence[str], files: dict[str, str]) -> list[str]:
    """A case's ``argv`` (or names) with its ``{name}`` fields replaced by the workspace's paths."""
    return [part.format(**files) for part in template]
