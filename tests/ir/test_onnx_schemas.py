"""The generated schema table the graph ops are declared from (``cimc.ir.dialects.onnx_schemas``) is what the
installed onnx gives: regenerating it reproduces the file byte for byte, so it can never drift from the standard."""

from __future__ import annotations

import onnx
from onnx import TensorProto

from cimc.ir.attributes import FloatAttr, IntAttr, StringAttr
from cimc.ir.core import REQUIRED
from cimc.ir.dialects import onnx_schemas
from cimc.ir.dialects.graph import BY_ONNX_TYPE, OPSET, CastOp, ConvOp, LeakyReluOp, ResizeOp, element_to_onnx
from cimc.ir.dialects.graph_onnx import TABLE, schema_table
from cimc.ir.types import ElementType


def test_regenerating_the_table_from_onnx_gives_the_same_file() -> None:
    assert schema_table(list(BY_ONNX_TYPE)) == TABLE.read_text(), (
        "ir/dialects/onnx_schemas.py differs from the installed onnx; run python -m cimc.ir.dialects.graph_onnx"
    )


def test_the_table_holds_every_declared_op_and_nothing_else() -> None:
    assert onnx_schemas.OPSET == OPSET == 21
    assert sorted(onnx_schemas.SCHEMAS) == sorted(BY_ONNX_TYPE)


def test_element_codes_are_onnx_tensor_proto_codes() -> None:
    assert element_to_onnx(ElementType("f32")) == TensorProto.FLOAT == 1
    assert element_to_onnx(ElementType("i1")) == TensorProto.BOOL == 9
    assert element_to_onnx(ElementType("ui64")) == TensorProto.UINT64 == 13


def test_declarations_read_off_the_table_match_hand_checked_schemas() -> None:
    """Spot checks against the ONNX operator documentation at opset 21 (onnx/docs/Operators.md)."""
    assert [(d.name, d.kind) for d in ConvOp.definition.operands] == [
        ("X", "single"),
        ("W", "single"),
        ("B", "optional"),
    ]
    assert ConvOp.definition.attributes["auto_pad"].default == "NOTSET"
    assert ConvOp.definition.attributes["auto_pad"].kind is StringAttr
    assert ConvOp.definition.attributes["group"].default == 1
    assert ConvOp.definition.attributes["group"].kind is IntAttr
    alpha = LeakyReluOp.definition.attributes["alpha"]
    assert alpha.kind is FloatAttr and alpha.default == float(onnx.helper.make_attribute("a", 0.01).f)  # f32 0.01
    assert ResizeOp.definition.attributes["mode"].default == "nearest"
    assert ConvOp.type_params.operands == ("T", "T", "T")
    assert ConvOp.type_params.allowed["T"] == frozenset({"f16", "f32", "f64"})


def test_required_attributes_are_required() -> None:
    assert CastOp.definition.attributes["to"].default is REQUIRED
