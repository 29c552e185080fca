"""Builds small graph-dialect modules op by op for the pass tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from onnx import helper

from cimc.ir import FuncOp, Location, ModuleOp, Operation, ReturnOp, TensorType, Value, new_module, verify
from cimc.ir.dialects.graph import BY_ONNX_TYPE, ConstantOp
from cimc.ir.dialects.graph_onnx import attribute_from_onnx


class GraphBuilder:
    """One function, ``main``, built op by op; attributes are given as ONNX would take them."""

    def __init__(self, inputs: dict[str, TensorType]) -> None:
        self.func = FuncOp.create("main", list(inputs.items()), [])
        self.inputs = dict(zip(inputs, self.func.body.args))

    def const(self, array: np.ndarray, name: str = "tensor") -> Value:
        """A ``graph.constant``."""
        return self.func.body.append(ConstantOp.create(np.asarray(array), name)).result

    def op(self, onnx_type: str, *operands: Value | None, loc: str | None = None, **attrs: object) -> Operation:
        """The graph op of ``onnx_type`` on ``operands`` (None for an absent optional), types inferred."""
        attributes = {k: attribute_from_onnx(helper.make_attribute(k, v)) for k, v in attrs.items()}
        location = Location(loc or onnx_type.lower())
        return self.func.body.append(BY_ONNX_TYPE[onnx_type].build(*operands, attributes=attributes, location=location))

    def finish(self, outputs: Sequence[Value]) -> ModuleOp:
        """Return ``outputs`` (named y0, y1, ...) and give the verified module."""
        self.func.body.append(ReturnOp(list(outputs)))
        self.func.set_output_names([f"y{i}" for i in range(len(outputs))])
        self.func.update_function_type()
        module = new_module([self.func])
        verify(module)
        return module

    @staticmethod
    def op_names(module: ModuleOp) -> list[str]:
        """The names of the ops in ``main``, in order."""
        return [op.name for op in module.function("main").body.ops]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def graph() -> type[GraphBuilder]:
    return GraphBuilder
