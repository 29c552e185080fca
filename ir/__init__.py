"""cimc's IR: MLIR-style operations, SSA values, types and attributes, with a printer, parser, verifier, pass
manager and interpreter. ``print(module)`` shows the IR; ``parse_module(text)`` reads it back."""

from cimc.ir.attributes import (
    ArrayAttr,
    Attribute,
    BoolAttr,
    DenseArrayAttr,
    DenseElementsAttr,
    DenseResourceAttr,
    DictAttr,
    FloatAttr,
    IntAttr,
    ResourceBlob,
    StringAttr,
    TypeAttr,
    tensor_attr,
    tensor_value,
)
from cimc.ir.core import (
    Block,
    BlockArgument,
    Location,
    Operation,
    OpResult,
    Region,
    Use,
    Value,
    VerifyError,
)
from cimc.ir.dialects.builtin import FuncOp, ModuleOp, ReturnOp, new_module
from cimc.ir.interpreter import InterpreterError, run_function, run_module
from cimc.ir.parser import ParseError, parse_module
from cimc.ir.pass_manager import Pass, PassManager, PipelineError, parse_pipeline, register_pass
from cimc.ir.printer import print_module
from cimc.ir.types import ElementType, FunctionType, TensorType, Type
from cimc.ir.verifier import verify

__all__ = [
    "ArrayAttr", "Attribute", "BoolAttr", "DenseArrayAttr", "DenseElementsAttr", "DenseResourceAttr", "DictAttr",
    "FloatAttr", "IntAttr", "ResourceBlob", "StringAttr", "TypeAttr", "tensor_attr", "tensor_value",
    "Block", "BlockArgument", "Location", "Operation", "OpResult", "Region", "Use", "Value", "VerifyError",
    "FuncOp", "ModuleOp", "ReturnOp", "new_module", "InterpreterError", "run_function", "run_module",
    "ParseError", "parse_module", "Pass", "PassManager", "PipelineError", "parse_pipeline", "register_pass",
    "print_module", "ElementType", "FunctionType", "TensorType", "Type", "verify",
]  # fmt: skip
