"""Our text is honest MLIR: xDSL's independent parser reads what we print for zoo models (with the resource section
and elided) and sees the same ops, in the same order, with the same result types and attribute names."""

from __future__ import annotations

import pytest
from zoo import ZOO

from cimc.compiler.onnx_importer import import_onnx
from cimc.ir.core import Operation
from cimc.ir.printer import print_module

pytest.importorskip("xdsl")

from xdsl.context import Context  # noqa: E402
from xdsl.dialects.builtin import Builtin, UnregisteredOp  # noqa: E402
from xdsl.dialects.func import Func  # noqa: E402
from xdsl.ir import Operation as XdslOperation  # noqa: E402
from xdsl.parser import Parser  # noqa: E402

#: Models whose text covers resources, symbolic dims, multi-result ops, optional operands and integer tensors.
MODELS = ["resnet_opset11", "transformer_opset17", "qdq_resnet_opset13", "unet_opset18", "ocr_conv_opset18"]


def xdsl_parse(text: str) -> XdslOperation:
    """The module as xDSL reads it, with our dialects' ops left unregistered."""
    context = Context(allow_unregistered=True)
    context.load_dialect(Builtin)
    context.load_dialect(Func)
    return Parser(context, text).parse_module()


def ours(op: Operation) -> tuple[str, list[str], list[str]]:
    """An op's name, result types and attribute names."""
    return op.name, [str(r.type) for r in op.results], sorted(op.attributes)


def theirs(op: XdslOperation) -> tuple[str, list[str], list[str]]:
    """The same as xDSL sees it: our attributes are printed as properties (``<{...}>``)."""
    name = op.op_name.data if isinstance(op, UnregisteredOp) else op.name
    assert set(op.attributes) <= {"op_name__"}, f"'{name}' has discardable attributes {sorted(op.attributes)}"
    return name, [str(r.type) for r in op.results], sorted(op.properties)


@pytest.mark.parametrize("resources", [True, False], ids=["resources", "elided"])
@pytest.mark.parametrize("name", MODELS)
def test_xdsl_reads_our_text(name: str, resources: bool) -> None:
    module = import_onnx(ZOO[name].build())
    text = print_module(module, resources=resources)
    expected = [ours(op) for op in module.walk()]
    actual = [theirs(op) for op in xdsl_parse(text).walk()]
    assert len(actual) == len(expected)
    assert actual == expected


@pytest.mark.parametrize("stage", ["quantized", "cim"])
def test_xdsl_reads_crossbar_ir(stage: str) -> None:
    """The crossbar stages too: resources, nested ``cim.digital`` regions (numbered in the function's one name
    scope, since an MLIR parser that does not know ``cim.digital`` does not open a new scope for it)."""
    from pathlib import Path

    from cimc.compiler import PipelineOptions, compile_onnx

    model = Path(__file__).resolve().parents[2] / "models" / "digits_cnn.onnx"
    module, _ = compile_onnx(model, PipelineOptions(emit=stage))
    text = print_module(module, resources=True)
    assert '"cim.digital"' in text
    expected = [ours(op) for op in module.walk()]
    assert [theirs(op) for op in xdsl_parse(text).walk()] == expected
