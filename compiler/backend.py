"""cimc as an ONNX backend (``onnx.backend.base``): the reference interpreter behind ONNX's own test runner.

``CimcBackend.prepare`` imports a model (``import_onnx``, no passes) and returns a ``CimcRep`` whose ``run`` evaluates
it with ``cimc.ir.interpreter``. This is how the ONNX conformance tests check the importer and every graph op's
numpy reference against the standard's expected outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from cimc.compiler.onnx_importer import import_onnx
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.graph import OPSET
from cimc.ir.interpreter import run_module


class CimcRep(BackendRep):
    """An imported model, ready to run repeatedly on the reference interpreter."""

    def __init__(self, module: ModuleOp) -> None:
        self.module = module
        self.output_names = module.function("main").output_names

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:  # noqa: ARG002 - no run options
        """The outputs in graph-output order, also readable by name; ``inputs`` is a list, a dict or one array."""
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        elif not isinstance(inputs, Mapping):
            inputs = list(inputs)
        results = run_module(self.module, inputs)
        return namedtupledict("Outputs", self.output_names)(*(results[n] for n in self.output_names))


class CimcBackend(Backend):
    """The ONNX backend of cimc: CPU only, through the numpy reference interpreter."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> CimcRep:
        """Import ``model`` (converted to the graph dialect's opset) for running."""
        if not cls.supports_device(device):
            raise ValueError(f"cimc runs on CPU only, not on '{device}'")
        return CimcRep(import_onnx(model))

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Sequence[np.ndarray],
        device: str = "CPU",
        outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, ...]:
        """Run one node on ``inputs`` (one array per non-empty node input), as a one-node model."""
        names = [n for n in node.input if n]
        arrays = [np.asarray(a) for a in inputs]
        graph_inputs = [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, arrays)
        ]
        if outputs_info is None:  # shapes unknown: symbolic dims of unknown count are not allowed, so infer them
            inferred = onnx.shape_inference.infer_shapes(
                _one_node_model(node, graph_inputs, [], kwargs.get("opset_version", OPSET))
            )
            graph_outputs = [v for v in inferred.graph.value_info if v.name in node.output]
            graph_outputs.sort(key=lambda v: list(node.output).index(v.name))
        else:
            graph_outputs = [
                helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)
                for n, (dtype, shape) in zip(node.output, outputs_info)
            ]
        model = _one_node_model(node, graph_inputs, graph_outputs, kwargs.get("opset_version", OPSET))
        return cls.run_model(model, arrays, device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU


def _one_node_model(
    node: onnx.NodeProto, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], opset: int
) -> onnx.ModelProto:
    graph = helper.make_graph([node], f"{node.op_type}_node", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


prepare = CimcBackend.prepare
run_model = CimcBackend.run_model
run_node = CimcBackend.run_node
supports_device = CimcBackend.supports_device
