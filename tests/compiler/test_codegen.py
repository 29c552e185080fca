"""Digital-unit operation counts of the ``digital`` instructions (``codegen.digital_ops``), worked out by hand."""

from __future__ import annotations

from pathlib import Path

from cimc.compiler import PipelineOptions, compile_onnx
from cimc.compiler.codegen import digital_ops, generate
from cimc.ir.attributes import Attribute, DenseArrayAttr
from cimc.ir.dialects.builtin import FuncOp
from cimc.ir.dialects.graph import BY_ONNX_TYPE
from cimc.ir.types import ElementType, TensorType
from cimc.passes.lower_to_cim import wrap_digital
from cimc.runtime.isa import Adc, Digital

MODELS = Path(__file__).resolve().parents[2] / "models"
F32 = ElementType("f32")


def _digital(onnx_type: str, shapes: list[tuple[int | None, ...]], **attributes: tuple[int, ...]) -> int:
    """``digital_ops`` of a ``cim.digital`` wrapping one ``onnx_type`` op on arguments of ``shapes``."""
    func = FuncOp.create("main", [(f"x{i}", TensorType(shape, F32)) for i, shape in enumerate(shapes)], [])
    op = BY_ONNX_TYPE[onnx_type].build(*func.arguments, attributes=_attributes(attributes))
    func.body.append(op)
    return digital_ops(wrap_digital(op))


def _attributes(values: dict[str, tuple[int, ...]]) -> dict[str, Attribute]:
    """Integer-list attributes as ``DenseArrayAttr``."""
    return {key: DenseArrayAttr(ElementType("i64"), v) for key, v in values.items()}


def test_matmul_counts_two_ops_per_multiply_accumulate() -> None:
    # [?, 4, 6] x [?, 6, 5]: 20 outputs a sample, 6 MACs each
    assert _digital("MatMul", [(None, 4, 6), (None, 6, 5)]) == 2 * 20 * 6


def test_pooling_counts_its_window_and_global_pooling_its_inputs() -> None:
    # 2x2 windows, stride 2, over 3 x 8 x 8: 3 x 4 x 4 outputs of 4 each
    assert _digital("MaxPool", [(None, 3, 8, 8)], kernel_shape=(2, 2), strides=(2, 2)) == 48 * 4
    assert _digital("GlobalAveragePool", [(None, 3, 8, 8)]) == 3 * 64


def test_elementwise_softmax_and_layout_ops() -> None:
    assert _digital("Relu", [(None, 10)]) == 10
    assert _digital("Add", [(None, 10), (None, 10)]) == 10
    assert _digital("Softmax", [(None, 10)]) == 5 * 10
    assert _digital("Transpose", [(None, 2, 3)], perm=(0, 2, 1)) == 0


def test_the_digits_cnn_streams_carry_their_op_counts() -> None:
    """digits CNN: conv1 1 -> 8 channels 3x3 on 8x8, conv2 8 -> 16, 2x2 max pool, conv3 16 -> 32 on 4x4, global
    average pool, fc; codes are 8-bit, DACs 1-bit (8 planes)."""
    module, _ = compile_onnx(MODELS / "digits_cnn.onnx", PipelineOptions(emit="placed", placement_effort=2.0))
    streams = generate(module)
    counts = {}
    for stream in streams.tiles.values():
        for i in stream:
            if isinstance(i, Digital):
                counts.setdefault((streams.strings[i.name], streams.strings[i.layer]), []).append((i.elements, i.ops))
    assert counts[("cim.im2col", "conv1")] == [(64 * 9, 0)]  # addressing: no arithmetic
    assert counts[("cim.bit_planes", "conv1")] == [(8 * 64 * 9, 8 * 64 * 9)]
    assert counts[("cim.quantize", "conv1")] == [(64, 64)]
    assert counts[("graph.relu", "relu1")] == [(8 * 64, 8 * 64)]
    assert counts[("graph.max_pool", "pool")] == [(16 * 16, 16 * 16 * 4)]
    assert counts[("graph.global_average_pool", "gap")] == [(32, 32 * 16)]
    assert counts[("graph.transpose", "conv1")] == [(8 * 64, 0)]
    adc = [i for i in streams.tiles[(0, 0)] if isinstance(i, Adc)][0]
    assert adc.conversions == 8 * 64 * 2 * 4 * 8  # planes x vectors x signs x slices x columns


def test_conv_on_activations_counts_its_multiply_accumulates() -> None:
    # weights [4, 3, 3, 3] as an operand: 4 x 6 x 6 outputs of 27 MACs each
    assert _digital("Conv", [(None, 3, 8, 8), (4, 3, 3, 3)]) == 2 * 4 * 36 * 27
