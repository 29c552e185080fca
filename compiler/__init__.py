"""cimc's compiler: the ONNX importer, the pipeline and the ``cimc`` command.

``import_onnx(path)`` gives the graph-dialect module of an ONNX model; ``compile_onnx(path, options)`` runs the
pipeline up to a stage; ``load_module(path)`` takes an ``.onnx`` or ``.mlir`` file.

The names are imported on first use (PEP 562), so the runtime can read a chip description
(``cimc.ir.target.chip``) without loading the ONNX importer.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OnnxImportError": "cimc.compiler.onnx_importer",
    "import_onnx": "cimc.compiler.onnx_importer",
    "STAGES": "cimc.compiler.pipeline",
    "CrossbarOptions": "cimc.compiler.pipeline",
    "PipelineOptions": "cimc.compiler.pipeline",
    "compile_onnx": "cimc.compiler.pipeline",
    "load_module": "cimc.compiler.pipeline",
    "run_passes": "cimc.compiler.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cimc.compiler' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
