"""The ``graph`` dialect: hardware-independent tensor ops with ONNX semantics at one canonical opset.

Each op mirrors one ONNX operator at ``OPSET``: its operands, results and attributes are declared from the ONNX
schema (names, optional and variadic inputs, attribute kinds and defaults), so the dialect cannot drift from the
standard, and its result types are inferred with ONNX's own per-node shape inference. What each op adds is its
name, a docstring with an IR example, and ``evaluate``: a numpy reference implementation. Together these are
the reference interpreter, checked against onnxruntime.
"""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from cimc.ir.attributes import (
    ArrayAttr,
    Attribute,
    DenseArrayAttr,
    DenseElementsAttr,
    DenseResourceAttr,
    FloatAttr,
    IntAttr,
    StringAttr,
    tensor_attr,
)
from cimc.ir.core import REQUIRED, SEGMENTS, AttrDef, OpDef, OperandDef, Operation, ResultDef, VerifyError, register_op
from cimc.ir.types import ElementType, TensorType, Type

#: The one ONNX opset every imported model is converted to; the graph ops have its semantics.
OPSET = 21

# ONNX tensor element type <-> IR element type
_ONNX_ELEMENTS = {
    TensorProto.FLOAT: "f32",
    TensorProto.FLOAT16: "f16",
    TensorProto.DOUBLE: "f64",
    TensorProto.BOOL: "i1",
    TensorProto.INT8: "i8",
    TensorProto.INT16: "i16",
    TensorProto.INT32: "i32",
    TensorProto.INT64: "i64",
    TensorProto.UINT8: "ui8",
    TensorProto.UINT16: "ui16",
    TensorProto.UINT32: "ui32",
    TensorProto.UINT64: "ui64",
}
_ELEMENTS_ONNX = {v: k for k, v in _ONNX_ELEMENTS.items()}


def element_from_onnx(elem_type: int) -> ElementType:
    """The IR element type of an ONNX ``TensorProto`` data type; ValueError for types the IR lacks."""
    if elem_type not in _ONNX_ELEMENTS:
        raise ValueError(f"ONNX element type {TensorProto.DataType.Name(elem_type)} is not supported")
    return ElementType(_ONNX_ELEMENTS[elem_type])


def element_to_onnx(element: ElementType) -> int:
    """The ONNX ``TensorProto`` data type of an IR element type."""
    return _ELEMENTS_ONNX[element.name]


# --- attributes: ONNX AttributeProto <-> IR attributes ----------------------------------------------------------

_ATTR_KINDS: dict[int, type[Attribute] | tuple[type[Attribute], ...]] = {
    AttributeProto.INT: IntAttr,
    AttributeProto.FLOAT: FloatAttr,
    AttributeProto.STRING: StringAttr,
    AttributeProto.INTS: DenseArrayAttr,
    AttributeProto.FLOATS: DenseArrayAttr,
    AttributeProto.STRINGS: ArrayAttr,
    AttributeProto.TENSOR: (DenseElementsAttr, DenseResourceAttr),
}


def attribute_from_onnx(attr: AttributeProto, name_hint: str = "tensor") -> Attribute:
    """An IR attribute holding the value of an ONNX attribute (tensors become inline or resource tensors)."""
    kind = attr.type
    if kind == AttributeProto.INT:
        return IntAttr(int(attr.i))
    if kind == AttributeProto.FLOAT:
        return FloatAttr(float(attr.f))
    if kind == AttributeProto.STRING:
        return StringAttr(attr.s.decode("utf-8"))
    if kind == AttributeProto.INTS:
        return DenseArrayAttr(ElementType("i64"), tuple(int(v) for v in attr.ints))
    if kind == AttributeProto.FLOATS:
        return DenseArrayAttr(ElementType("f32"), tuple(float(v) for v in attr.floats))
    if kind == AttributeProto.STRINGS:
        return ArrayAttr(tuple(StringAttr(s.decode("utf-8")) for s in attr.strings))
    if kind == AttributeProto.TENSOR:
        return tensor_attr(numpy_helper.to_array(attr.t), name_hint)
    raise ValueError(f"attribute '{attr.name}' of kind {AttributeProto.AttributeType.Name(kind)} is not supported")


def attribute_to_onnx(name: str, attr: Attribute) -> AttributeProto:
    """The ONNX attribute for an IR attribute (the inverse of ``attribute_from_onnx``)."""
    if isinstance(attr, DenseArrayAttr):
        values = [float(v) for v in attr.value] if attr.element.is_float else [int(v) for v in attr.value]
        kind = AttributeProto.FLOATS if attr.element.is_float else AttributeProto.INTS
        return helper.make_attribute(name, values, attr_type=kind)
    if isinstance(attr, ArrayAttr):
        return helper.make_attribute(name, [a.value for a in attr.value], attr_type=AttributeProto.STRINGS)
    if isinstance(attr, (DenseElementsAttr, DenseResourceAttr)):
        return helper.make_attribute(name, numpy_helper.from_array(np.asarray(attr.array)))
    return helper.make_attribute(name, attr.value)  # type: ignore[attr-defined]


def _default(attr: onnx.defs.OpSchema.Attribute) -> object:
    if attr.required:
        return REQUIRED
    if attr.default_value is None or attr.default_value.type == AttributeProto.UNDEFINED:
        return None  # optional with no default: absent means "not given"
    value = helper.get_attribute_value(attr.default_value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in value)
    return value


def definition_from_schema(onnx_type: str, opset: int = OPSET) -> OpDef:
    """An ``OpDef`` read off the ONNX schema of ``onnx_type`` at ``opset``."""
    schema = onnx.defs.get_schema(onnx_type, opset)
    option = onnx.defs.OpSchema.FormalParameterOption
    kinds = {option.Single: "single", option.Optional: "optional", option.Variadic: "variadic"}
    return OpDef(
        operands=tuple(OperandDef(p.name, kinds[p.option]) for p in schema.inputs),
        results=tuple(ResultDef(p.name, kinds[p.option]) for p in schema.outputs),
        attributes={
            name: AttrDef(_ATTR_KINDS[a.type], _default(a))
            for name, a in sorted(schema.attributes.items())
            if a.type in _ATTR_KINDS
        },
    )


# --- ops ---------------------------------------------------------------------------------------------------------

#: ONNX op type -> graph op class, for the importer and the ONNX backend.
BY_ONNX_TYPE: dict[str, type[GraphOp]] = {}


def _snake(onnx_type: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", onnx_type).lower()


def graph_op(onnx_type: str, name: str | None = None):  # noqa: ANN201 - a class decorator
    """Class decorator: declare a graph op mirroring ONNX ``onnx_type`` (named ``graph.<snake_case>``)."""

    def wrap(cls: type[GraphOp]) -> type[GraphOp]:
        cls.onnx_type = onnx_type
        cls.name = "graph." + (name or _snake(onnx_type))
        cls.definition = definition_from_schema(onnx_type)
        BY_ONNX_TYPE[onnx_type] = cls
        register_op(cls)
        return cls

    return wrap


class GraphOp(Operation):
    """Base of the ONNX-mirroring ops: result types from ONNX shape inference.

    Every subclass defines ``evaluate(args) -> list[np.ndarray]``, its numpy reference implementation: one array
    per operand in, one per result out (``group_args`` arranges them by declared operand, None where absent).
    """

    onnx_type: ClassVar[str] = ""

    def group_args(self, args: list[np.ndarray]) -> list[np.ndarray | None | list[np.ndarray]]:
        """Runtime arrays arranged like the declared operands: an array, None (absent optional) or a list."""
        out: list[np.ndarray | None | list[np.ndarray]] = []
        start = 0
        for d, group in zip(self.definition.operands, self.operand_groups()):
            chunk = args[start : start + len(group)]
            start += len(group)
            out.append(chunk if d.kind == "variadic" else (chunk[0] if chunk else None))
        return out

    def to_onnx_node(self, input_names: list[str], output_names: list[str]) -> onnx.NodeProto:
        """This op as an ONNX node over the given value names (absent optional inputs become '')."""
        names = iter(input_names)
        inputs: list[str] = []
        for d, group in zip(self.definition.operands, self.operand_groups()):
            if d.kind == "variadic":
                inputs.extend(next(names) for _ in group)
            else:
                inputs.append(next(names) if group else "")
        while inputs and inputs[-1] == "":
            inputs.pop()
        attrs = [attribute_to_onnx(k, v) for k, v in sorted(self.attributes.items()) if k != SEGMENTS and "." not in k]
        node = helper.make_node(self.onnx_type, inputs, output_names, name=self.location.name or "")
        node.attribute.extend(attrs)
        return node

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        return _infer_with_onnx(cls, operand_types, attributes, {})

    def verify_(self) -> None:
        for i, value in enumerate(self.operands):
            if not isinstance(value.type, TensorType):
                raise self.error(f"operand {i} must be a tensor, got {value.type}")
        for r in self.results:
            if not isinstance(r.type, TensorType):
                raise self.error(f"result {r.index} must be a tensor, got {r.type}")


def onnx_type_proto(ttype: TensorType) -> onnx.TypeProto:
    """The ONNX type of a tensor type (dynamic dims left symbolic)."""
    shape = [d if d is not None else f"d{i}" for i, d in enumerate(ttype.shape)]
    return helper.make_tensor_type_proto(element_to_onnx(ttype.element), shape)


def tensor_type_from_onnx(tp: onnx.TypeProto) -> TensorType:
    """The IR tensor type of an ONNX tensor type; symbolic and unknown dims become dynamic."""
    tensor = tp.tensor_type
    if not tensor.HasField("shape"):
        raise ValueError("tensor has unknown rank")
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return TensorType(dims, element_from_onnx(tensor.elem_type))


def _infer_with_onnx(
    cls: type[GraphOp],
    operand_types: list[Type],
    attributes: dict[str, Attribute],
    constants: dict[int, np.ndarray],
) -> list[Type]:
    probe = cls([], [], attributes)
    probe._operands = [None] * len(operand_types)  # type: ignore[list-item]  # only groups are read
    names = [f"in{i}" for i in range(len(operand_types))]
    schema = onnx.defs.get_schema(cls.onnx_type, OPSET)
    n_out = sum(d.kind == "single" for d in cls.definition.results) or 1
    node = probe.to_onnx_node(names, [f"out{i}" for i in range(n_out)])
    types = {}
    for name, t in zip(names, operand_types):
        if not isinstance(t, TensorType):
            raise VerifyError(f"'{cls.name}': operand of type {t} is not a tensor")
        types[name] = onnx_type_proto(t)
    data = {names[i]: numpy_helper.from_array(a, names[i]) for i, a in constants.items()}
    try:
        inferred = onnx.shape_inference.infer_node_outputs(
            schema, node, types, data, opset_imports=[helper.make_opsetid("", OPSET)]
        )
    except Exception as exc:  # onnx raises its own InferenceError subclasses
        raise VerifyError(f"'{cls.name}': {str(exc).strip().splitlines()[-1]}") from None
    return [tensor_type_from_onnx(inferred[n]) for n in node.output]


def infer_types(cls: type[GraphOp], operand_types: list[Type], attributes: dict[str, Attribute],
                constants: dict[int, np.ndarray]) -> list[Type]:  # fmt: skip
    """Result types of a graph op, with the values of constant operands (a Reshape's shape) where known."""
    return _infer_with_onnx(cls, operand_types, attributes, constants)


# --- the ops ----------------------------------------------------------------------------------------------------


@register_op
class ConstantOp(Operation):
    """A constant tensor; large ones live in resource blobs.

    ``%0 = "graph.constant"() <{value = dense_resource<fc1.weight> : tensor<64x10xf32>}> : () -> tensor<64x10xf32>``
    """

    name = "graph.constant"
    definition = OpDef(results=(ResultDef("output"),), attributes={"value": AttrDef((DenseElementsAttr, DenseResourceAttr))})

    @staticmethod
    def create(array: np.ndarray, name: str = "tensor") -> ConstantOp:
        attr = tensor_attr(np.asarray(array), name)
        return ConstantOp([], [attr.type], {"value": attr})

    @property
    def value(self) -> np.ndarray:
        return self.attributes["value"].array  # type: ignore[attr-defined]

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        return [self.value]

    def verify_(self) -> None:
        if self.results[0].type != self.attributes["value"].type:  # type: ignore[attr-defined]
            raise self.error(f"result type {self.results[0].type} differs from its value's type")


@graph_op("Relu")
class ReluOp(GraphOp):
    """max(x, 0): ``%1 = "graph.relu"(%0) : (tensor<1x8xf32>) -> tensor<1x8xf32>``."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        return [np.maximum(x, np.zeros((), x.dtype))]


@graph_op("Add")
class AddOp(GraphOp):
    """Elementwise sum with numpy broadcasting: ``%2 = "graph.add"(%0, %1) : (...) -> tensor<1x8xf32>``."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        a, b = args
        return [np.add(a, b)]


@graph_op("MatMul", name="matmul")
class MatMulOp(GraphOp):
    """numpy.matmul semantics: ``%2 = "graph.matmul"(%0, %1) : (tensor<?x64xf32>, tensor<64x10xf32>) -> ...``."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        a, b = args
        return [np.matmul(a, b)]
