"""cimc's compiler: the ONNX importer, the pipeline and the ``cimc`` command.

``import_onnx(path)`` gives the graph-dialect module of an ONNX model; ``compile_onnx(path, options)`` runs the
pipeline up to a stage; ``load_module(path)`` takes an ``.onnx`` or ``.mlir`` file.
"""

from cimc.compiler.onnx_importer import OnnxImportError, import_onnx
from cimc.compiler.pipeline import STAGES, CrossbarOptions, PipelineOptions, compile_onnx, load_module, run_passes

__all__ = [
    "STAGES",
    "CrossbarOptions",
    "OnnxImportError",
    "PipelineOptions",
    "compile_onnx",
    "import_onnx",
    "load_module",
    "run_passes",
]
