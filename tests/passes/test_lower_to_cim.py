"""lower-to-cim against independent references: each crossbar layer of the lowered module equals a numpy
computation of the quantized layer written from the formulas (codes, integer weights, integer product, scales)
bit for bit, and stays within the quantization error bound of the float layer; QDQ models match onnxruntime
within one output step; what cannot be a crossbar stays digital with its reason; and the bundled CNN keeps its
accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler import import_onnx, run_passes
from cimc.compiler.calibration import calibrate
from cimc.ir import DenseArrayAttr, ElementType, PassManager, PipelineError, TensorType, VerifyError, run_module
from cimc.ir.dialects.cim import DequantizeOp, DigitalOp, LinearOp, QuantizeOp
from cimc.ir.kernels import Window, conv
from cimc.ir.types import F32
from cimc.passes.crossbar_match import crossbar_input
from cimc.passes.lower_to_cim import INPUT_RANGE, REASON

MODELS = Path(__file__).resolve().parents[2] / "models"


# --- independent references ----------------------------------------------------------------------------------


def quantize_input(x: np.ndarray, lo: float, hi: float, bits: int) -> tuple[np.ndarray, float]:
    """``x`` as centred integer codes ``u - zero_point`` (int64) and the f32 input scale, by the formulas."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)  # the range is f64, as calibration gives it
    top = 2**bits - 1
    scale = np.float32((hi - lo) / top)
    zero_point = np.clip(np.rint(-lo / np.float64(scale)), 0, top)
    codes = np.clip(np.rint(x.astype(np.float32) / scale) + zero_point, 0, top)
    return (codes - zero_point).astype(np.int64), float(scale)


def quantize_weights(w: np.ndarray, bits: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric integers with one scale per index of ``axis`` (the output channel), and those scales."""
    top = 2 ** (bits - 1) - 1
    others = tuple(a for a in range(w.ndim) if a != axis)
    largest = np.abs(w.astype(np.float64)).max(axis=others, keepdims=True)
    scale = np.where(largest > 0, largest / top, 1.0)
    return np.clip(np.rint(w / scale), -top, top).astype(np.int64), scale.reshape(-1)


def with_range(op, x: np.ndarray) -> None:
    """Calibrate ``op`` by hand: its input range is the min and max of ``x``."""
    op.attributes[INPUT_RANGE] = DenseArrayAttr(ElementType("f64"), (float(x.min()), float(x.max())))


def lower(module, pipeline: str = "lower-to-cim"):
    PassManager(pipeline, verify_each=True).run(module)
    body = module.function("main").body.ops
    assert all(op.name.startswith("cim.") or op.name in ("graph.constant", "func.return") for op in body)
    return module


def ops_of(module, cls) -> list:
    return [op for op in module.function("main").body.ops if isinstance(op, cls)]


# --- Gemm and MatMul -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("bias_shape", [None, (), (5,), (1, 5)], ids=["no-C", "C-scalar", "C-N", "C-1xN"])
@pytest.mark.parametrize("bits", [(8, 8), (4, 3), (6, 12)], ids=["8-8", "4in-3w", "6in-12w"])
def test_gemm_equals_the_quantized_formula(graph, rng, trans_a: int, trans_b: int, bias_shape, bits) -> None:
    input_bits, weight_bits = bits
    x = rng.normal(0.5, 1.0, (7, 6)).astype(np.float32)  # the input vectors [M, K]; A is x.T [K, M] with transA
    w = rng.standard_normal((6, 5)).astype(np.float32)  # [K, N]
    w[:, 2] = 0  # an all-zero column: scale 1, integer weights 0
    c = None if bias_shape is None else rng.standard_normal(bias_shape).astype(np.float32)
    a = x.T.copy() if trans_a else x
    g = graph({"x": TensorType((6, None) if trans_a else (None, 6), F32)})
    b = g.const(w.T.copy() if trans_b else w, "B")
    gemm = g.op(
        "Gemm",
        g.inputs["x"],
        b,
        None if c is None else g.const(c),
        loc="fc",
        transA=trans_a,
        transB=trans_b,
        alpha=0.75,
        beta=1.5,
    )
    with_range(gemm, x)
    module = g.finish([gemm.result])
    expected_float = run_module(module, [a])["y0"]
    lower(module, f"lower-to-cim{{input-bits={input_bits},weight-bits={weight_bits}}}")
    # transA: the codes are transposed into the crossbar's layout [M, K] on a digital unit
    assert [unit.work.name for unit in ops_of(module, DigitalOp)] == ["graph.transpose"] * trans_a

    (linear,) = ops_of(module, LinearOp)
    assert linear.attr("weight_bits") == weight_bits and linear.attr("input_bits") == input_bits
    assert linear.tensor_attr("weights").dtype == (np.int8 if weight_bits <= 8 else np.int16)
    xq, sx = quantize_input(x, x.min(), x.max(), input_bits)
    wq, sw = quantize_weights(w, weight_bits, axis=1)
    np.testing.assert_array_equal(linear.tensor_attr("weights"), wq)
    bias = np.zeros(5) if c is None else np.float32(np.broadcast_to(c, (1, 5))[0].astype(np.float64) * 1.5)
    expected = ((xq @ wq).astype(np.float64) * (np.float64(sx) * sw * 0.75) + bias.astype(np.float64)).astype(
        np.float32
    )
    y = run_module(module, [a])["y0"]
    np.testing.assert_array_equal(y, expected)

    # float error bound: |x w - x^ w^| <= sum |x - x^| |w| + sum |x^| |w - w^|, with |x - x^| <= sx / 2 and
    # |w - w^| <= sw / 2 per column (nothing clips: the range is x's own), times alpha
    bound = 0.75 * (sx / 2 * np.abs(w).sum(axis=0) + np.abs(xq * sx) @ np.ones((6, 5)) * sw / 2)
    assert np.all(np.abs(y - expected_float) <= bound + 1e-5 * np.abs(expected_float) + 1e-6)


@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4)])
def test_matmul_equals_the_quantized_formula(graph, rng, x_shape) -> None:
    x = rng.uniform(-1.0, 3.0, x_shape).astype(np.float32)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    g = graph({"x": TensorType(x_shape, F32)})
    matmul = g.op("MatMul", g.inputs["x"], g.const(w), loc="proj")
    with_range(matmul, x)
    module = g.finish([matmul.result])
    expected_float = run_module(module, [x])["y0"]
    lower(module)
    (dequantize,) = ops_of(module, DequantizeOp)
    assert dequantize.attr("cim.kind") == "matmul" and dequantize.attr("cim.weights") == 12
    xq, sx = quantize_input(x, x.min(), x.max(), 8)
    wq, sw = quantize_weights(w, 8, axis=1)
    expected = ((xq @ wq).astype(np.float64) * (np.float64(sx) * sw)).astype(np.float32)
    y = run_module(module, [x])["y0"]
    np.testing.assert_array_equal(y, expected)
    bound = sx / 2 * np.abs(w).sum(axis=0) + np.abs(xq * sx).sum(axis=-1, keepdims=True) * sw / 2
    assert np.all(np.abs(y - expected_float) <= bound + 1e-6)


@pytest.mark.parametrize("x_shape", [(4,), (4, 3), (2, 4, 3)])
def test_constant_first_matmul_equals_the_quantized_formula(graph, rng, x_shape) -> None:
    # W @ X: the columns of X are the input vectors, the rows of W the output channels (one weight scale each)
    x = rng.uniform(-1.0, 3.0, x_shape).astype(np.float32)
    w = rng.standard_normal((5, 4)).astype(np.float32)
    g = graph({"x": TensorType(x_shape, F32)})
    matmul = g.op("MatMul", g.const(w), g.inputs["x"], loc="proj")
    assert crossbar_input(matmul) is g.inputs["x"]
    with_range(matmul, x)
    module = g.finish([matmul.result])
    expected_float = run_module(module, [x])["y0"]
    lower(module)
    (linear,) = ops_of(module, LinearOp)
    xq, sx = quantize_input(x, x.min(), x.max(), 8)
    wq, sw = quantize_weights(w, 8, axis=0)
    np.testing.assert_array_equal(linear.tensor_attr("weights"), wq.T)
    per_row = (np.float64(sx) * sw).reshape(-1, *(1,) * (len(x_shape) > 1))
    expected = ((wq @ xq).astype(np.float64) * per_row).astype(np.float32)
    y = run_module(module, [x])["y0"]
    np.testing.assert_array_equal(y, expected)
    # a matrix X is transposed to [..., N, K] before the crossbar and the result back to [..., M, N]
    assert [unit.work.name for unit in ops_of(module, DigitalOp)] == ["graph.transpose"] * (
        2 if len(x_shape) > 1 else 0
    )
    bound = np.abs(w) @ np.full(x_shape, sx / 2) + (sw / 2).reshape(per_row.shape) * (np.ones((5, 4)) @ np.abs(xq * sx))
    assert np.all(np.abs(y - expected_float) <= bound + 1e-6)


# --- convolutions ----------------------------------------------------------------------------------------------

CONVS = {
    # name: (x shape, weight shape, attributes, kind)
    "conv-2d-padded-strided": ((2, 3, 7, 6), (4, 3, 3, 2), {"pads": [1, 0, 2, 1], "strides": [2, 1]}, "conv"),
    "grouped": ((2, 4, 5, 5), (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}, "grouped conv"),
    "depthwise": (
        (1, 3, 6, 6),
        (6, 1, 3, 3),
        {"group": 3, "auto_pad": "SAME_UPPER", "strides": [2, 2]},
        "depthwise conv",
    ),
    "conv-1d-dilated": ((2, 2, 9), (3, 2, 3), {"dilations": [2], "pads": [2, 1]}, "conv"),
    "conv-3d": ((1, 2, 4, 3, 3), (2, 2, 2, 2, 2), {}, "conv"),
}


@pytest.mark.parametrize("name", CONVS)
def test_conv_equals_the_quantized_formula(graph, rng, name: str) -> None:
    x_shape, w_shape, attrs, kind = CONVS[name]
    x = rng.normal(0.3, 1.0, x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    g = graph({"x": TensorType((None, *x_shape[1:]), F32)})
    op = g.op("Conv", g.inputs["x"], g.const(w, "w"), g.const(b, "b"), loc="conv", **attrs)
    with_range(op, x)
    module = g.finish([op.result])
    expected_float = run_module(module, [x])["y0"]
    lower(module)

    (dequantize,) = ops_of(module, DequantizeOp)
    assert dequantize.attr("cim.kind") == kind
    assert dequantize.attr("cim.weights") == w.size  # the true weights, not the block-diagonal zeros
    assert dequantize.location.name == "conv"
    group = attrs.get("group", 1)
    geometry = [attrs.get(key) for key in ("strides", "dilations", "pads")]
    window = Window.resolve(x_shape[2:], w_shape[2:], *geometry, auto_pad=attrs.get("auto_pad", "NOTSET"))
    xq, sx = quantize_input(x, x.min(), x.max(), 8)
    wq, sw = quantize_weights(w, 8, axis=0)
    acc = conv(xq.astype(np.float64), wq.astype(np.float64), None, window, group)  # exact: small integers
    channels = (1, -1) + (1,) * (len(x_shape) - 2)
    scale = (np.float64(sx) * sw).reshape(channels)
    expected = (acc * scale + b.astype(np.float64).reshape(channels)).astype(np.float32)
    y = run_module(module, [x])["y0"]
    np.testing.assert_array_equal(y, expected)

    per_filter = np.ones((w_shape[0], *w_shape[1:]))
    bound = conv(np.full(x.shape, sx / 2), np.abs(w).astype(np.float64), None, window, group)
    bound += conv(np.abs(xq * sx), per_filter, None, window, group) * (sw / 2).reshape(channels)
    assert np.all(np.abs(y - expected_float) <= bound + 1e-5 * np.abs(expected_float) + 1e-6)


@pytest.mark.parametrize("x_shape", [(2, 3, 4, 5), (None, 3, None, None)], ids=["static", "dynamic"])
def test_conv_transpose_equals_the_quantized_formula(graph, rng, x_shape) -> None:
    # kernel 2 = stride 2: each input pixel makes its own 2 x 2 output block, M x 4 crossbar columns (m, i, j)
    x = rng.normal(0.3, 1.0, (2, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 4, 2, 2)).astype(np.float32)  # [C, M, kh, kw]
    b = rng.standard_normal(4).astype(np.float32)
    g = graph({"x": TensorType(x_shape, F32)})
    op = g.op("ConvTranspose", g.inputs["x"], g.const(w), g.const(b), loc="up", strides=[2, 2])
    with_range(op, x)
    module = g.finish([op.result])
    expected_float = run_module(module, [x])["y0"]
    lower(module)

    (dequantize,) = ops_of(module, DequantizeOp)
    assert dequantize.attr("cim.kind") == "conv transpose" and dequantize.attr("cim.weights") == w.size
    assert [unit.work.name for unit in ops_of(module, DigitalOp)] == ["graph.transpose", "graph.depth_to_space"]
    xq, sx = quantize_input(x, x.min(), x.max(), 8)
    wq, sw = quantize_weights(w.reshape(3, 16), 8, axis=1)  # one scale per column (m, i, j)
    acc = np.einsum("nchw,ck->nhwk", xq, wq).astype(np.float64) * (np.float64(sx) * sw) + np.repeat(b, 4)
    blocks = acc.astype(np.float32).reshape(2, 4, 5, 4, 2, 2)  # [n, h, w, m, i, j]
    expected = np.zeros((2, 4, 8, 10), np.float32)
    for i in range(2):
        for j in range(2):
            expected[:, :, i::2, j::2] = blocks[..., i, j].transpose(0, 3, 1, 2)
    y = run_module(module, [x])["y0"]
    np.testing.assert_array_equal(y, expected)

    error = np.abs(y - expected_float).reshape(2, 4, 4, 2, 5, 2).transpose(0, 2, 4, 1, 3, 5).reshape(2, 4, 5, 16)
    bound = sx / 2 * np.abs(w).reshape(3, 16).sum(axis=0) + np.einsum("nchw->nhw", np.abs(xq * sx))[..., None] * sw / 2
    assert np.all(error <= bound + 1e-5 * np.abs(expected_float).max() + 1e-6)


def test_conv_transpose_with_overlapping_blocks_stays_digital(graph, rng) -> None:
    g = graph({"x": TensorType((1, 2, 4, 4), F32)})
    op = g.op(
        "ConvTranspose", g.inputs["x"], g.const(rng.standard_normal((2, 2, 3, 3)).astype(np.float32)), strides=[2, 2]
    )
    module = lower(g.finish([op.result]))
    (unit,) = ops_of(module, DigitalOp)
    assert unit.attr(REASON) == (
        "not a 2-d ConvTranspose with a square kernel equal to its strides, one group, no pads or dilations"
    )


def test_grouped_weights_are_block_diagonal(graph, rng) -> None:
    # 3 groups of 2 channels, 2 filters each; no weight small enough to round to 0
    w = (rng.uniform(0.5, 1.0, (6, 2, 3, 3)) * rng.choice([-1, 1], (6, 2, 3, 3))).astype(np.float32)
    g = graph({"x": TensorType((1, 6, 4, 4), F32)})
    op = g.op("Conv", g.inputs["x"], g.const(w), group=3)
    op.attributes[INPUT_RANGE] = DenseArrayAttr(ElementType("f64"), (0.0, 1.0))
    module = lower(g.finish([op.result]))
    (linear,) = ops_of(module, LinearOp)
    matrix = linear.tensor_attr("weights")
    assert matrix.shape == (6 * 9, 6)
    for m in range(6):
        rows = np.zeros(54, bool)
        rows[(m // 2) * 18 : (m // 2 + 1) * 18] = True  # group m // 2 reads channels 2g, 2g + 1 (9 rows each)
        assert np.all(matrix[~rows, m] == 0)
        assert np.count_nonzero(matrix[rows, m]) == 18


def test_layer_feeding_a_layer(graph, rng) -> None:
    # the second layer quantizes the first one's lowered result, not the value it replaced
    x = rng.standard_normal((5, 6)).astype(np.float32)
    w1, w2 = (rng.standard_normal(shape).astype(np.float32) for shape in ((6, 4), (4, 3)))
    g = graph({"x": TensorType((None, 6), F32)})
    first = g.op("MatMul", g.inputs["x"], g.const(w1), loc="fc1")
    second = g.op("MatMul", first.result, g.const(w2), loc="fc2")
    with_range(first, x)
    second.attributes[INPUT_RANGE] = DenseArrayAttr(ElementType("f64"), (-2.0, 3.0))
    module = lower(g.finish([second.result]))

    def layer(x: np.ndarray, w: np.ndarray, lo: float, hi: float) -> np.ndarray:
        xq, sx = quantize_input(x, lo, hi, 8)
        wq, sw = quantize_weights(w, 8, axis=1)
        return ((xq @ wq).astype(np.float64) * (np.float64(sx) * sw)).astype(np.float32)

    expected = layer(layer(x, w1, x.min(), x.max()), w2, -2.0, 3.0)
    np.testing.assert_array_equal(run_module(module, [x])["y0"], expected)


def test_one_quantize_per_input_and_range(graph, rng) -> None:
    # a residual block's shortcut and main path read one value: its codes are made once
    g = graph({"x": TensorType((1, 2, 4, 4), F32)})
    main = g.op("Conv", g.inputs["x"], g.const(rng.standard_normal((2, 2, 3, 3)).astype(np.float32)), pads=[1] * 4)
    shortcut = g.op("Conv", g.inputs["x"], g.const(rng.standard_normal((2, 2, 1, 1)).astype(np.float32)))
    other = g.op("Conv", g.inputs["x"], g.const(rng.standard_normal((2, 2, 1, 1)).astype(np.float32)))
    for op, hi in ((main, 2.0), (shortcut, 2.0), (other, 3.0)):
        op.attributes[INPUT_RANGE] = DenseArrayAttr(ElementType("f64"), (-1.0, hi))
    module = lower(g.finish([main.result, shortcut.result, other.result]))
    quantizes = ops_of(module, QuantizeOp)
    assert len(quantizes) == 2  # [-1, 2] shared, [-1, 3] its own
    assert sorted(len(q.result.uses) for q in quantizes) == [1, 2]


# --- per-channel affine work after a layer ----------------------------------------------------------------------


def test_per_channel_affine_ops_after_a_layer_are_absorbed(graph, rng) -> None:
    # Linear as PyTorch exports it (MatMul, then Add with the bias first) and more per-column constants; a Conv
    # with a per-channel Mul and Add and a BatchNormalization canonicalization did not fold: each chain is done
    # by its layer's cim.dequantize, y * times + shift per channel.
    x = rng.normal(0.5, 1.0, (3, 6)).astype(np.float32)
    image = rng.normal(0.0, 1.0, (2, 2, 5, 5)).astype(np.float32)
    w, conv_w = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    bias, mul, sub, div = (rng.uniform(0.5, 2.0, shape).astype(np.float32) for shape in ((5,), (1, 5), (), (5,)))
    conv_b, cmul, cadd = (rng.standard_normal(shape).astype(np.float32) for shape in ((3,), (3, 1, 1), (1, 3, 1, 1)))
    gamma, beta, mean = (rng.standard_normal(3).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2.0, 3).astype(np.float32)

    g = graph({"x": TensorType((None, 6), F32), "image": TensorType((None, 2, 5, 5), F32)})
    matmul = g.op("MatMul", g.inputs["x"], g.const(w), loc="fc")
    y = g.op("Add", g.const(bias), matmul.result, loc="fc_bias").result
    y = g.op("Mul", y, g.const(mul), loc="fc_mul").result
    y = g.op("Sub", y, g.const(sub), loc="fc_sub").result
    y = g.op("Div", y, g.const(div), loc="fc_div").result
    y = g.op("Sub", g.const(np.float32(3.0)), y, loc="fc_flip").result  # 3 - y: times -1
    convolution = g.op("Conv", g.inputs["image"], g.const(conv_w), g.const(conv_b), loc="conv", pads=[1, 1, 1, 1])
    z = g.op("Mul", convolution.result, g.const(cmul), loc="conv_mul").result
    z = g.op("Add", g.const(cadd), z, loc="conv_add").result
    z = g.op("BatchNormalization", z, *map(g.const, (gamma, beta, mean, var)), loc="bn").result
    z = g.op("Relu", z, loc="relu").result
    with_range(matmul, x)
    with_range(convolution, image)
    module = g.finish([y, z])
    expected_float = run_module(module, [x, image])
    lower(module)

    fc, cv = ops_of(module, DequantizeOp)
    assert [name.value for name in fc.attr("cim.fused")] == ["fc_bias", "fc_mul", "fc_sub", "fc_div", "fc_flip"]
    assert [name.value for name in cv.attr("cim.fused")] == ["conv_mul", "conv_add", "bn"]
    assert [unit.location.name for unit in ops_of(module, DigitalOp)] == ["conv", "relu"]  # NCHW transpose, Relu
    got = run_module(module, [x, image])

    xq, sx = quantize_input(x, x.min(), x.max(), 8)
    wq, sw = quantize_weights(w, 8, axis=1)
    times = -(mul[0].astype(np.float64) * (1 / div.astype(np.float64)))
    shift = 3 - (bias.astype(np.float64) * mul[0] - np.float64(sub)) / div
    expected = ((xq @ wq) * (np.float64(sx) * sw * times) + shift.astype(np.float32)).astype(np.float32)
    np.testing.assert_array_equal(got["y0"], expected)
    bound = (sx / 2 * np.abs(w).sum(axis=0) + np.abs(xq * sx).sum(axis=1, keepdims=True) * sw / 2) * np.abs(times)
    assert np.all(np.abs(got["y0"] - expected_float["y0"]) <= bound + 1e-5 * np.abs(expected_float["y0"]))

    iq, si = quantize_input(image, image.min(), image.max(), 8)
    cq, sc = quantize_weights(conv_w, 8, axis=0)
    window = Window.resolve((5, 5), (3, 3), None, None, [1, 1, 1, 1])
    acc = conv(iq.astype(np.float64), cq.astype(np.float64), None, window, 1)
    normalize = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + np.float64(np.float32(1e-5)))
    times = cmul.reshape(3).astype(np.float64) * normalize
    shift = (cadd.reshape(3).astype(np.float64) * normalize + (beta - mean * normalize)) + conv_b * times
    per_channel = (1, 3, 1, 1)
    expected = acc * (np.float64(si) * sc * times).reshape(per_channel) + shift.astype(np.float32).reshape(per_channel)
    np.testing.assert_array_equal(got["y1"], np.maximum(expected.astype(np.float32), 0))
    np.testing.assert_allclose(got["y1"], expected_float["y1"], atol=0.05 * np.abs(expected_float["y1"]).max())


def test_affine_ops_that_are_not_per_channel_or_not_alone_stay_digital(graph, rng) -> None:
    g = graph({"x": TensorType((4, 6), F32)})
    x = g.inputs["x"]

    def layer(name: str):
        op = g.op("MatMul", x, g.const(rng.standard_normal((6, 5)).astype(np.float32)), loc=name)
        op.attributes[INPUT_RANGE] = DenseArrayAttr(ElementType("f64"), (-3.0, 3.0))
        return op.result

    per_element = g.op("Add", layer("a"), g.const(np.ones((4, 5), np.float32)), loc="per_element").result
    numerator = g.op("Div", g.const(np.float32(2.0)), layer("b"), loc="numerator").result
    shared = layer("c")  # also read unbiased by the Relu: its bias cannot go into the layer
    biased = g.op("Add", shared, g.const(np.ones(5, np.float32)), loc="biased").result
    relu = g.op("Relu", shared, loc="relu").result
    module = lower(g.finish([per_element, numerator, biased, relu]))
    assert all("cim.fused" not in op.attributes for op in ops_of(module, DequantizeOp))
    units = {op.location.name for op in ops_of(module, DigitalOp)}
    assert units == {"per_element", "numerator", "biased", "relu"}


def test_new_layouts_keep_the_crossbar_chain_exact(graph, rng) -> None:
    # dynamic spatial dims, a ConvTranspose, a constant-first MatMul, Gemm transA and absorbed affine ops: after
    # tile and bit-slice (arrays of 8 rows, 2-bit cells, 1-bit DACs, exact ADCs) the outputs are the same integers
    g = graph({"image": TensorType((None, 3, None, None), F32), "a": TensorType((6, None), F32)})

    def weights(*shape: int):
        return g.const(rng.standard_normal(shape).astype(np.float32))

    conv = g.op("Conv", g.inputs["image"], weights(4, 3, 3, 3), pads=[1, 1, 1, 1])
    z = g.op("Mul", conv.result, g.const(rng.uniform(0.5, 2.0, (4, 1, 1)).astype(np.float32))).result
    up = g.op("ConvTranspose", g.op("Relu", z).result, weights(4, 2, 2, 2), strides=[2, 2])
    rows = g.op("MatMul", weights(5, 8), up.result)  # [N, 2, 5, W]
    fc = g.op("Gemm", g.inputs["a"], weights(6, 3), transA=1)
    biased = g.op("Add", fc.result, weights(3)).result
    for op in (conv, up, rows, fc):
        op.attributes[INPUT_RANGE] = DenseArrayAttr(ElementType("f64"), (-3.0, 3.0))  # some codes clip: still exact
    module = lower(g.finish([rows.result, biased]))
    assert [op.attr("cim.kind") for op in ops_of(module, DequantizeOp)] == ["conv", "conv transpose", "matmul", "gemm"]
    inputs = {"image": rng.uniform(-1.0, 1.0, (2, 3, 4, 4)), "a": rng.normal(size=(6, 9))}
    inputs = {name: array.astype(np.float32) for name, array in inputs.items()}
    reference = run_module(module, inputs)
    PassManager("tile{array-rows=8},bit-slice{array-rows=8}", verify_each=True).run(module)
    crossbars = run_module(module, inputs)
    for name in reference:
        np.testing.assert_array_equal(crossbars[name], reference[name])


# --- what stays digital -----------------------------------------------------------------------------------------


def test_digital_ops_are_wrapped_one_per_unit(graph, rng) -> None:
    g = graph({"x": TensorType((2, 3), F32), "y": TensorType((3, 2), F32)})
    x, y = g.inputs["x"], g.inputs["y"]
    relu = g.op("Relu", x, loc="relu").result
    scores = g.op("MatMul", relu, y, loc="scores").result  # activation x activation
    batched_w = g.const(rng.standard_normal((4, 3, 2)).astype(np.float32))  # one matrix per batch: not a crossbar's
    transposed = g.op("MatMul", relu, batched_w, loc="fc_t")
    bias = g.const(rng.standard_normal((2, 2)).astype(np.float32))  # one bias per row and column: not [N]
    batched = g.op("Gemm", scores, g.const(np.eye(2, dtype=np.float32)), bias, loc="fc_c")
    batched.attributes[INPUT_RANGE] = DenseArrayAttr(ElementType("f64"), (-1.0, 1.0))
    module = g.finish([transposed.result, batched.result])
    inputs = {"x": rng.standard_normal((2, 3)).astype(np.float32), "y": rng.standard_normal((3, 2)).astype(np.float32)}
    before = run_module(module, inputs)
    lower(module)
    units = {op.location.name: op for op in ops_of(module, DigitalOp)}
    assert set(units) == {"relu", "scores", "fc_t", "fc_c"}
    for unit in units.values():
        assert len(unit.body) == 2 and unit.body[-1].name == "cim.yield"
        assert [a.type for a in unit.regions[0].block.args] == [v.type for v in unit.operands]
    assert units["relu"].work.name == "graph.relu" and REASON not in units["relu"].attributes
    assert units["scores"].attr(REASON) == "weights are not constant"
    assert units["fc_t"].attr(REASON) == "weights are not a matrix (tensor<4x3x2xf32>)"
    assert units["fc_c"].attr(REASON) == "the bias C is not one value per output column"
    after = run_module(module, inputs)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def test_dynamic_spatial_dims(graph, rng) -> None:
    # explicit pads do not depend on the input size: the Conv lowers, and equals its lowering at a static size
    x = rng.normal(0.2, 1.0, (2, 2, 7, 5)).astype(np.float32)
    w, b = rng.standard_normal((3, 2, 3, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    outputs = []
    for shape in ((None, 2, None, None), x.shape):
        g = graph({"x": TensorType(shape, F32)})
        op = g.op("Conv", g.inputs["x"], g.const(w), g.const(b), loc="conv", pads=[1, 0, 2, 1], strides=[2, 1])
        with_range(op, x)
        module = lower(g.finish([op.result]))
        assert [op.attr("cim.kind") for op in ops_of(module, DequantizeOp)] == ["conv"]
        outputs.append(run_module(module, [x])["y0"])
    np.testing.assert_array_equal(*outputs)

    # SAME pads do: that Conv stays digital
    g = graph({"x": TensorType((1, 2, None, None), F32)})
    op = g.op("Conv", g.inputs["x"], g.const(w), loc="conv", auto_pad="SAME_UPPER")
    module = lower(g.finish([op.result]))
    (unit,) = ops_of(module, DigitalOp)
    assert unit.attr(REASON) == "spatial dims are dynamic and auto_pad=SAME_UPPER pads by them"
    assert unit.work.name == "graph.conv" and crossbar_input(unit.work) is None


def test_uncalibrated_float_layer_is_an_error(graph, rng) -> None:
    g = graph({"x": TensorType((None, 4), F32)})
    op = g.op("MatMul", g.inputs["x"], g.const(rng.standard_normal((4, 2)).astype(np.float32)), loc="fc1")
    assert crossbar_input(op) is g.inputs["x"]
    module = g.finish([op.result])
    with pytest.raises(VerifyError, match=r"'graph.matmul' op at loc\(\"fc1\"\): .*calibrate.*--calib data.npz"):
        lower(module)


@pytest.mark.parametrize(
    "pipeline, message",
    [
        ("lower-to-cim{input-bits=0}", "'input-bits' must be an integer from 1 to 16, got 0"),
        ("lower-to-cim{weight-bits=1}", "'weight-bits' must be an integer from 2 to 16, got 1"),
        ("lower-to-cim{weight-bits=17}", "'weight-bits' must be an integer from 2 to 16, got 17"),
        ("lower-to-cim{weight-scaling=row}", "'weight-scaling' must be one of 'column', 'tensor', got 'row'"),
    ],
)
def test_bad_options_are_named(pipeline: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        PassManager(pipeline)


# --- QDQ models ---------------------------------------------------------------------------------------------------


def _qdq_model(layer: str, activations: int, rng: np.random.Generator):
    """x -> QuantizeLinear/DequantizeLinear -> layer (int8 per-channel weights as DequantizeLinear of constants,
    int32 bias) -> QuantizeLinear/DequantizeLinear -> y, as onnxruntime's quantize_static writes it; plus a float
    MatMul with no QDQ around it, which a QDQ model leaves digital when it is not calibrated."""
    act_dtype = np.uint8 if activations == TensorProto.UINT8 else np.int8
    x_scale, x_zero = np.float32(0.03), act_dtype(128 if act_dtype is np.uint8 else -5)
    y_scale, y_zero = np.float32(0.05), act_dtype(120 if act_dtype is np.uint8 else 3)
    if layer == "conv":
        x_shape, y_shape, w_shape, axis, columns = [1, 4, 6, 6], [1, 6, 6, 6], (6, 2, 3, 3), 0, 6
        attrs = {"group": 2, "pads": [1, 1, 1, 1]}
    elif layer == "conv_transpose":  # weights [C, M, k, k], quantized per output channel M (axis 1)
        x_shape, y_shape, w_shape, axis, columns = [1, 4, 3, 3], [1, 6, 6, 6], (4, 6, 2, 2), 1, 6
        attrs = {"strides": [2, 2]}
    elif layer == "gemm":
        x_shape, y_shape, w_shape, axis, columns, attrs = [3, 8], [3, 5], (5, 8), 0, 5, {"transB": 1}
    else:
        x_shape, y_shape, w_shape, axis, columns, attrs = [2, 3, 8], [2, 3, 5], (8, 5), 1, 5, {}
    w_int = rng.integers(-127, 128, w_shape).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.01, columns).astype(np.float32)
    bias_int = rng.integers(-500, 500, columns).astype(np.int32)
    inits = [
        numpy_helper.from_array(np.array(x_scale), "x_scale"),
        numpy_helper.from_array(np.array(x_zero), "x_zero"),
        numpy_helper.from_array(np.array(y_scale), "y_scale"),
        numpy_helper.from_array(np.array(y_zero), "y_zero"),
        numpy_helper.from_array(w_int, "w_int"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(columns, np.int8), "w_zero"),
        numpy_helper.from_array(bias_int, "b_int"),
        numpy_helper.from_array((x_scale * w_scale).astype(np.float32), "b_scale"),
        numpy_helper.from_array(rng.standard_normal((x_shape[-1], 2)).astype(np.float32), "side_w"),
    ]
    op_type = {"conv": "Conv", "conv_transpose": "ConvTranspose", "gemm": "Gemm", "matmul": "MatMul"}[layer]
    inputs = ["x_dq", "w_dq"] + ([] if layer == "matmul" else ["b_dq"])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"], name="x_q"),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"], name="x_dq"),
        helper.make_node("DequantizeLinear", ["w_int", "w_scale", "w_zero"], ["w_dq"], name="w_dq", axis=axis),
        helper.make_node("DequantizeLinear", ["b_int", "b_scale"], ["b_dq"], name="b_dq", axis=0),
        helper.make_node(op_type, inputs, ["layer"], name="layer", **attrs),
        helper.make_node("QuantizeLinear", ["layer", "y_scale", "y_zero"], ["y_q"], name="y_q"),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zero"], ["y"], name="y_dq"),
        helper.make_node("MatMul", ["x", "side_w"], ["side"], name="side"),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape),
            helper.make_tensor_value_info("side", TensorProto.FLOAT, [*x_shape[:-1], 2]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return model, x_shape, float(y_scale)


@pytest.mark.parametrize("layer", ["conv", "conv_transpose", "gemm", "matmul"])
@pytest.mark.parametrize("activations", [TensorProto.UINT8, TensorProto.INT8], ids=["uint8", "int8"])
def test_qdq_layer_matches_onnxruntime_within_one_step(rng, layer: str, activations: int) -> None:
    model, x_shape, y_scale = _qdq_model(layer, activations, rng)
    x = rng.uniform(-3.0, 3.0, x_shape).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected, side = session.run(None, {"x": x})
    module = import_onnx(model)
    run_passes(module, "canonicalize")
    assert crossbar_input(next(op for op in module.function("main").body.ops if op.location.name == "layer")) is None
    lower(module)

    (quantize,) = ops_of(module, QuantizeOp)
    assert quantize.attr("zero_point") == (128 if activations == TensorProto.UINT8 else -5 + 128)
    assert quantize.attr("bits") == 8 and quantize.attr("scale") == np.float32(0.03)
    (linear,) = ops_of(module, LinearOp)
    assert linear.attr("weight_bits") == 8
    units = {op.location.name: op for op in ops_of(module, DigitalOp)}
    assert units["side"].attr(REASON) == "the input is float and was not calibrated"
    assert {"y_q", "y_dq"} <= set(units) and "x_q" not in units and "w_dq" not in units

    y = run_module(module, {"x": x})
    assert np.max(np.abs(y["y"] - expected)) <= y_scale * (1 + 1e-6)
    np.testing.assert_allclose(y["side"], side, rtol=1e-5, atol=1e-5)


# --- the bundled CNN ----------------------------------------------------------------------------------------------


def test_digits_cnn_keeps_its_accuracy() -> None:
    module = import_onnx(MODELS / "digits_cnn.onnx")
    run_passes(module, "canonicalize")
    test = np.load(MODELS / "digits_test.npz")
    float_accuracy = np.mean(run_module(module, {"x": test["x"]})["logits"].argmax(axis=1) == test["y"])
    assert calibrate(module, {"x": np.load(MODELS / "digits_calib.npz")["x"]}) == 4  # 3 convs and the Gemm
    lower(module)
    kinds = [op.attr("cim.kind") for op in ops_of(module, DequantizeOp)]
    assert kinds == ["conv", "conv", "conv", "gemm"]
    accuracy = np.mean(run_module(module, {"x": test["x"]})["logits"].argmax(axis=1) == test["y"])
    assert abs(accuracy - float_accuracy) <= 0.005, (accuracy, float_accuracy)
