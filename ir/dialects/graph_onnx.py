"""The graph dialect's bridge to the ``onnx`` package: attributes and tensor types to and from ONNX protos, result
types by ONNX's own shape inference, and the generator of the schema table the op classes are declared from.

The op classes (``cimc.ir.dialects.graph``) read their operands, attributes and type rules from the generated
table ``cimc.ir.dialects.onnx_schemas``, so parsing, verifying and running graph ops never imports ``onnx``; this
module is imported where ONNX itself is needed: the importer, the ONNX backend, shape inference when an op is built
without result types, and regenerating the table (``python -m cimc.ir.dialects.graph_onnx``, after adding an op or
changing the onnx version; ``tests/ir/test_onnx_schemas.py`` fails until the table matches the installed onnx).
"""

from __future__ import annotations

import pprint
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from cimc.ir.core import VerifyError
from cimc.ir.dialects.graph import ATTRIBUTE_KINDS, OPSET, element_from_onnx, element_to_onnx
from cimc.ir.types import ElementType, TensorType, Type

if TYPE_CHECKING:
    from cimc.ir.dialects.graph import GraphOp

# --- attributes: ONNX AttributeProto <-> IR attributes ----------------------------------------------------------


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
        strings = [a.value for a in attr.value if isinstance(a, StringAttr)]
        if len(strings) != len(attr.value):
            raise ValueError(f"attribute '{name}' is a list of strings in ONNX, got {attr}")
        return helper.make_attribute(name, strings, attr_type=AttributeProto.STRINGS)
    if isinstance(attr, (DenseElementsAttr, DenseResourceAttr)):
        return helper.make_attribute(name, numpy_helper.from_array(np.asarray(attr.array)))
    return helper.make_attribute(name, attr.value)  # type: ignore[attr-defined]


# --- tensor types ---------------------------------------------------------------------------------------------


def onnx_type_proto(ttype: TensorType) -> onnx.TypeProto:
    """The ONNX type of a tensor type (dynamic dims left symbolic)."""
    shape = [d if d is not None else f"d{i}" for i, d in enumerate(ttype.shape)]
    return helper.make_tensor_type_proto(element_to_onnx(ttype.element), shape)


def tensor_type_from_onnx(tp: onnx.TypeProto) -> TensorType:
    """The IR tensor type of an ONNX tensor type; symbolic, unknown and negative dims (PaddlePaddle's exporter
    writes -1) become dynamic."""
    tensor = tp.tensor_type
    if not tensor.HasField("shape"):
        raise ValueError("tensor has unknown rank")
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None for d in tensor.shape.dim)
    return TensorType(dims, element_from_onnx(tensor.elem_type))


# --- shape inference --------------------------------------------------------------------------------------------


def infer_with_onnx(
    cls: type[GraphOp],
    operand_types: list[Type],
    attributes: dict[str, Attribute],
    constants: dict[int, np.ndarray],
    num_results: int | None = None,
) -> list[Type]:
    """Result types of a graph op by ONNX's per-node shape inference at ``OPSET``, with the values of the constant
    operands given (a Reshape's shape); a VerifyError naming the op when ONNX rejects the operands or attributes."""
    probe = cls([], [], attributes)
    probe._operands = [None] * len(operand_types)  # type: ignore[list-item]  # only groups are read
    names = [f"in{i}" for i in range(len(operand_types))]
    schema = onnx.defs.get_schema(cls.onnx_type, OPSET)
    n_out = cls.result_count(operand_types, attributes) if num_results is None else num_results
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


# --- the schema table -------------------------------------------------------------------------------------------

#: ONNX type strings -> IR element type names (types the IR lacks map to nothing and are never allowed)
_TYPE_STRS = {
    f"tensor({onnx_name})": ir_name
    for onnx_name, ir_name in (
        ("float", "f32"), ("float16", "f16"), ("double", "f64"), ("bool", "i1"),
        ("int8", "i8"), ("int16", "i16"), ("int32", "i32"), ("int64", "i64"),
        ("uint8", "ui8"), ("uint16", "ui16"), ("uint32", "ui32"), ("uint64", "ui64"),
    )
}  # fmt: skip

#: TensorProto data type names -> IR element type names, the element codes the table records
_ELEMENT_NAMES = {
    "FLOAT": "f32", "FLOAT16": "f16", "DOUBLE": "f64", "BOOL": "i1", "INT8": "i8", "INT16": "i16",
    "INT32": "i32", "INT64": "i64", "UINT8": "ui8", "UINT16": "ui16", "UINT32": "ui32", "UINT64": "ui64",
}  # fmt: skip

_OPTIONS = {
    onnx.defs.OpSchema.FormalParameterOption.Single: "single",
    onnx.defs.OpSchema.FormalParameterOption.Optional: "optional",
    onnx.defs.OpSchema.FormalParameterOption.Variadic: "variadic",
}

_HEADER = '''"""ONNX operator schemas at opset {opset}, for the graph dialect's op classes to be declared without onnx.

Generated from onnx.defs by ``python -m cimc.ir.dialects.graph_onnx``; do not edit. ``tests/ir/test_onnx_schemas.py``
regenerates it from the installed onnx and fails when the two differ.
"""

from typing import Any

'''

#: The path of the generated table.
TABLE = Path(__file__).with_name("onnx_schemas.py")


def _default(attr: onnx.defs.OpSchema.Attribute) -> object:
    """An attribute's default as a Python value; None for an optional attribute without one."""
    if attr.required or attr.default_value is None or attr.default_value.type == AttributeProto.UNDEFINED:
        return None
    value = helper.get_attribute_value(attr.default_value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in value)
    if not isinstance(value, (int, float, str)):
        raise TypeError(f"attribute '{attr.name}' has a default of type {type(value).__name__}, which the table lacks")
    return value


def read_schema(onnx_type: str, opset: int = OPSET) -> dict[str, Any]:
    """One entry of the table, read off the ONNX schema of ``onnx_type`` at ``opset``: each operand and result as
    ``(name, single|optional|variadic, type parameter)``, each attribute the IR holds as ``(name, kind, required,
    default)``, and the IR element types each type parameter (``T``, or a fixed type such as ``tensor(int64)``)
    allows."""
    schema = onnx.defs.get_schema(onnx_type, opset)
    params = [*schema.inputs, *schema.outputs]
    allowed = {c.type_param_str: c.allowed_type_strs for c in schema.type_constraints}
    allowed.update({p.type_str: [p.type_str] for p in params if p.type_str not in allowed})
    kinds = {k: AttributeProto.AttributeType.Value(k) for k in ATTRIBUTE_KINDS}
    return {
        "operands": tuple((p.name, _OPTIONS[p.option], p.type_str) for p in schema.inputs),
        "results": tuple((p.name, _OPTIONS[p.option], p.type_str) for p in schema.outputs),
        "attributes": tuple(
            (name, kind, a.required, _default(a))
            for name, a in sorted(schema.attributes.items())
            for kind in kinds
            if a.type == kinds[kind]
        ),
        "type_params": {
            param: tuple(sorted(_TYPE_STRS[t] for t in types if t in _TYPE_STRS))
            for param, types in sorted(allowed.items())
        },
    }


def schema_table(onnx_types: list[str]) -> str:
    """The text of the generated module: the element codes and the schema of each of ``onnx_types`` at ``OPSET``."""
    codes = {ir_name: int(TensorProto.DataType.Value(name)) for name, ir_name in _ELEMENT_NAMES.items()}
    schemas = {t: read_schema(t) for t in sorted(onnx_types)}
    return (
        _HEADER.format(opset=OPSET)
        + f"#: The opset the schemas are read at.\nOPSET = {OPSET}\n\n"
        + "#: IR element type name -> ONNX TensorProto data type code.\n"
        + f"ELEMENT_CODES: dict[str, int] = {pprint.pformat(codes, width=120, sort_dicts=False)}\n\n"
        + "#: ONNX op type -> its operands and results (name, single|optional|variadic, type parameter), attributes\n"
        + "#: (name, kind, required, default) and the IR element types each type parameter allows.\n"
        + f"SCHEMAS: dict[str, dict[str, Any]] = {pprint.pformat(schemas, width=120, sort_dicts=False)}\n"
    )


def main() -> None:
    """Rewrite the generated table from the installed onnx, for every ONNX op type the graph dialect declares."""
    from cimc.ir.dialects.graph import BY_ONNX_TYPE

    TABLE.write_text(schema_table(list(BY_ONNX_TYPE)))
    print(f"wrote {TABLE}: {len(BY_ONNX_TYPE)} schemas at opset {OPSET}", file=sys.stderr)


if __name__ == "__main__":
    main()
