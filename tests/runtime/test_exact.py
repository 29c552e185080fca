"""The exact path's fused layers (``cimc.runtime.exact``) against the ops they fuse, run one by one with their own
``evaluate``: ``cim.quantize`` -> ``cim.im2col`` -> the integer product (int64 numpy, wrapped to the i32
accumulators) -> ``cim.dequantize``, bit for bit, on random data with the edge values in (zero points, saturating
and NaN inputs, padding that reads a fill code), for dense, grouped and depthwise convolutions, with the product on
onnxruntime's integer GEMM and on float32 GEMMs."""

from __future__ import annotations

import numpy as np
import pytest

from cimc.ir.attributes import DenseArrayAttr, FloatAttr, IntAttr, tensor_attr
from cimc.ir.dialects import cim
from cimc.ir.dialects.builtin import FuncOp
from cimc.ir.types import ElementType, TensorType
from cimc.runtime import exact
from cimc.runtime.exact import Dequantize, ExactLayer, Patches, Quantize, weight_groups

I64 = ElementType("i64")


@pytest.fixture(params=["integer", "float32"])
def product(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which product the layers take: onnxruntime's integer GEMM where exact, or float32 GEMMs only."""
    if request.param == "float32":
        monkeypatch.setattr(exact, "integer_gemm", lambda *args: None)
    return request.param


def _value(shape: tuple[int | None, ...], element: str):
    return FuncOp.create("f", [("x", TensorType(shape, ElementType(element)))], []).body.args[0]


def _activations(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Normal activations over about the code range, with NaN, infinities, values far beyond both ends and exact
    halfway points (ties to even) sprinkled in."""
    x = rng.normal(0.0, 60 * scale, shape).astype(np.float32)
    flat = x.reshape(-1)
    spots = rng.choice(flat.size, size=min(flat.size, 40), replace=False)
    specials = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 2.5 * scale, 3.5 * scale, -0.5 * scale], np.float32)
    flat[spots] = np.resize(specials, len(spots))
    return x


class _Chain:
    """The unfused ops of one layer, built on single values, and their evaluation one after another."""

    def __init__(self, shape, quantize: Quantize, patches: Patches | None, dequantize: Dequantize | None) -> None:
        attributes = {
            "scale": FloatAttr(quantize.scale),
            "zero_point": IntAttr(quantize.zero_point),
            "bits": IntAttr(quantize.bits),
        }
        self.quantize = cim.QuantizeOp.build(_value(shape, "f32"), attributes=attributes)
        self.im2col = None
        if patches is not None:
            window = {
                "kernel_shape": DenseArrayAttr(I64, patches.kernel_shape),
                "strides": DenseArrayAttr(I64, patches.strides),
                "pads": DenseArrayAttr(I64, patches.pads),
                "dilations": DenseArrayAttr(I64, patches.dilations),
                "fill": IntAttr(patches.fill),
            }
            self.im2col = cim.Im2ColOp.build(self.quantize.result, attributes=window)
        self.dequantize = None
        if dequantize is not None:
            columns = len(dequantize.scale)
            attributes = {
                "scale": tensor_attr(dequantize.scale),
                "zero_point": IntAttr(1),  # so that it takes out the offsets themselves
                "weight_sums": tensor_attr(dequantize.offsets),
            }
            if dequantize.bias is not None:
                attributes["bias"] = tensor_attr(dequantize.bias.astype(np.float32))
            self.dequantize = cim.DequantizeOp.build(_value((None, columns), "i32"), attributes=attributes)

    def __call__(self, x: np.ndarray, weights: np.ndarray, zero_point: int) -> np.ndarray:
        (codes,) = self.quantize.evaluate([x])
        if self.im2col is not None:
            (codes,) = self.im2col.evaluate([codes])
        codes = codes[..., : weights.shape[0]]
        acc = ((codes.astype(np.int64) - zero_point) @ weights).astype(np.int32)
        if self.dequantize is None:
            return acc
        return self.dequantize.evaluate([acc])[0]


def _dequantize(rng: np.random.Generator, weights: np.ndarray, zero_point: int, bias: bool) -> Dequantize:
    columns = weights.shape[1]
    scale = rng.uniform(1e-5, 1e-3, columns)
    # the offsets as the dequantize's own zero point x weight sums: weight_sums carries the product here
    offsets = zero_point * weights.sum(axis=0)
    return Dequantize(offsets, scale, rng.normal(0, 1, columns).astype(np.float32).astype(np.float64) if bias else None)


def _grouped_weights(rng: np.random.Generator, channels: int, filters: int, kernel: int, groups: int) -> np.ndarray:
    """A grouped convolution's block-diagonal matrix ``[C * k * k, M]`` in im2col's row order, 8-bit weights."""
    per_in, per_out, taps = channels // groups, filters // groups, kernel * kernel
    weights = np.zeros((channels * taps, filters), np.int64)
    for g in range(groups):
        rows = slice(g * per_in * taps, (g + 1) * per_in * taps)
        weights[rows, g * per_out : (g + 1) * per_out] = rng.integers(-128, 128, (per_in * taps, per_out))
    return weights


CONVOLUTIONS = [
    # channels, filters, groups, kernel, stride, pads, dilation, quantize zero point, fill
    (6, 10, 1, 3, 1, (1, 1, 1, 1), 1, 0, 0),
    (6, 6, 6, 3, 2, (1, 1, 1, 1), 1, 128, 128),  # depthwise, stride 2
    (8, 16, 4, 3, 1, (0, 1, 2, 0), 2, 3, 9),  # grouped, fill not the zero point, asymmetric pads, dilation
    (12, 12, 12, 3, 1, (1, 1, 1, 1), 1, 7, 7),  # depthwise
    (4, 32, 2, 1, 1, (0, 0, 0, 0), 1, 0, 0),  # 16 filters a group: dense through BLAS
    (5, 7, 1, 1, 2, (0, 0, 0, 0), 1, 255, 255),  # 1x1 stride 2, zero point at the top
]


@pytest.mark.parametrize(
    ("channels", "filters", "groups", "kernel", "stride", "pads", "dilation", "zp", "fill"), CONVOLUTIONS
)
@pytest.mark.parametrize("dequantize", [True, False])
def test_a_fused_convolution_equals_its_ops_one_by_one(
    channels: int,
    filters: int,
    groups: int,
    kernel: int,
    stride: int,
    pads: tuple[int, ...],
    dilation: int,
    zp: int,
    fill: int,
    dequantize: bool,
    product: str,
) -> None:
    rng = np.random.default_rng(channels * 100 + groups)
    shape = (3, channels, 9, 8)
    weights = _grouped_weights(rng, channels, filters, kernel, groups)
    quantize = Quantize(0.05, zp, 8, np.dtype(np.uint8))
    patches = Patches((kernel, kernel), (stride, stride), (dilation, dilation), pads, fill)
    deq = _dequantize(rng, weights, 5, bias=groups % 2 == 0) if dequantize else None
    layer = ExactLayer(weights, 8, zp, quantize=quantize, patches=patches, dequantize=deq)
    assert layer.groups == groups
    depthwise = groups == channels == filters
    grouped = groups > 1 and filters // groups <= exact.DIRECT_GROUP_WIDTH
    assert layer.mode == ("depthwise" if depthwise else "grouped" if grouped else "dense")
    assert (layer.integer is not None) == (product == "integer" and layer.mode == "dense")
    x = _activations(rng, shape, quantize.scale)
    expected = _Chain((None, *shape[1:]), quantize, patches, deq)(x, weights, zp)
    got = layer(x)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert layer.vectors(x) == np.prod(expected.shape[:-1])


@pytest.mark.parametrize("zp", [0, 100])
def test_a_fused_fully_connected_layer_equals_its_ops_one_by_one(zp: int, product: str) -> None:
    rng = np.random.default_rng(zp)
    weights = rng.integers(-128, 128, (70, 9)).astype(np.int64)
    quantize = Quantize(0.02, zp, 8, np.dtype(np.uint8))
    deq = _dequantize(rng, weights, zp, bias=True)
    x = _activations(rng, (33, 70), quantize.scale)
    layer = ExactLayer(weights, 8, zp, quantize=quantize, dequantize=deq)
    assert (layer.integer is not None) == (product == "integer")
    np.testing.assert_array_equal(layer(x), _Chain((None, 70), quantize, None, deq)(x, weights, zp))


@pytest.mark.parametrize("clip", [(-np.inf, np.inf), (0.0, 6.0)])
def test_a_requantized_layer_gives_the_codes_of_its_outputs(clip: tuple[float, float], product: str) -> None:
    """The next layer's clip and quantize done on the dequantized outputs (``requantize``): the codes that
    ``cim.quantize`` makes of the clipped float32 outputs."""
    rng = np.random.default_rng(8)
    weights = rng.integers(-128, 128, (30, 12)).astype(np.int64)
    quantize = Quantize(0.02, 3, 8, np.dtype(np.uint8))
    deq = _dequantize(rng, weights, 3, bias=True)
    deq = Dequantize(deq.offsets, rng.uniform(5e-5, 2e-4, 12), deq.bias)  # outputs of a few units: codes all over
    after = Quantize(0.03, 11, 8, np.dtype(np.uint8), *clip)
    x = _activations(rng, (40, 30), quantize.scale)
    floats = ExactLayer(weights, 8, 3, quantize=quantize, dequantize=deq)(x)
    codes = ExactLayer(weights, 8, 3, quantize=quantize, dequantize=deq, requantize=after)(x)
    expected = cim.QuantizeOp.build(
        _value((None, 12), "f32"),
        attributes={"scale": FloatAttr(0.03), "zero_point": IntAttr(11), "bits": IntAttr(8)},
    ).evaluate([np.clip(floats, *clip)])[0]
    assert codes.dtype == np.uint8 and len(np.unique(codes)) > 100
    np.testing.assert_array_equal(codes, expected)


def test_codes_wider_than_the_matrix_read_their_first_rows(product: str) -> None:
    rng = np.random.default_rng(3)
    weights = rng.integers(-128, 128, (40, 5)).astype(np.int64)
    codes = rng.integers(0, 256, (2, 6, 50)).astype(np.uint8)
    expected = ((codes[..., :40].astype(np.int64) - 17) @ weights).astype(np.int32)
    np.testing.assert_array_equal(ExactLayer(weights, 8, 17)(codes), expected)


@pytest.mark.parametrize("patches", [None, Patches((3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 0)])
def test_sums_beyond_float32s_integers_fall_back_to_exact_chunks(
    patches: Patches | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes at the top against the largest weights make sums of about 4e7 > 2^24 in some blocks (float32 would
    round them); small blocks mix exact float32 ones and chunked ones (the integer product is off: it is exact
    whatever the sums)."""
    monkeypatch.setattr(exact, "BLOCK_BYTES", 1 << 14)
    monkeypatch.setattr(exact, "integer_gemm", lambda *args: None)
    rng = np.random.default_rng(5)
    channels = 160
    depth = channels * 9
    weights = np.where(rng.random((depth, 4)) < 0.5, 127, -128).astype(np.int64)
    weights[:, 0] = 127
    shape = (6, channels, 5, 5) if patches else (300, depth)
    codes = rng.integers(0, 3, shape).astype(np.uint8)
    codes[1] = 255  # one image (or vector) all at the top
    layer = ExactLayer(weights, 8, 0, patches=patches)
    assert layer.chunk < depth
    if patches is None:
        expected = (codes.astype(np.int64) @ weights).astype(np.int32)
    else:
        cols = cim.Im2ColOp.build(
            _value((None, *shape[1:]), "ui8"),
            attributes={
                "kernel_shape": DenseArrayAttr(I64, (3, 3)),
                "strides": DenseArrayAttr(I64, (1, 1)),
                "pads": DenseArrayAttr(I64, (1, 1, 1, 1)),
                "dilations": DenseArrayAttr(I64, (1, 1)),
                "fill": IntAttr(0),
            },
        ).evaluate([codes])[0]
        expected = (cols.astype(np.int64) @ weights).astype(np.int32)
    assert np.abs(expected).max() > 2**24
    np.testing.assert_array_equal(layer(codes), expected)


def test_weight_groups_reads_the_block_diagonal() -> None:
    rng = np.random.default_rng(0)
    assert weight_groups(_grouped_weights(rng, 12, 24, 3, 4)) == 4
    assert weight_groups(_grouped_weights(rng, 12, 12, 3, 12)) == 12
    assert weight_groups(_grouped_weights(rng, 12, 24, 3, 1)) == 1
    dense = _grouped_weights(rng, 12, 24, 3, 6)
    dense[0, -1] = 1  # one weight off the blocks
    assert weight_groups(dense) == 1


def test_a_channels_last_view_quantizes_as_its_contiguous_copy() -> None:
    """A layout change leaves ``[N, C, H, W]`` as a view of channels-last memory: ``quantize_4d`` reads it as is."""
    rng = np.random.default_rng(8)
    quantize = Quantize(0.1, 9, 8, np.dtype(np.uint8))
    x = _activations(rng, (2, 5, 6, 7), quantize.scale).transpose(0, 3, 1, 2)  # [2, 7, 5, 6], not contiguous
    op = _Chain((None, 7, 5, 6), quantize, None, None).quantize
    np.testing.assert_array_equal(quantize(x), op.evaluate([np.ascontiguousarray(x)])[0])


@pytest.mark.parametrize(("low", "high"), [(0.0, 6.0), (0.0, np.inf), (-1.5, 0.25), (2.0, 1.0)])
def test_a_clip_before_the_quantize_is_applied_on_the_way(low: float, high: float) -> None:
    """``Clip`` (max, then min: ``low > high`` gives ``high``, NaN stays NaN) and then ``cim.quantize``."""
    rng = np.random.default_rng(11)
    quantize = Quantize(0.03, 4, 8, np.dtype(np.uint8), low, high)
    x = _activations(rng, (3, 4, 5, 6), quantize.scale)
    clipped = np.minimum(np.maximum(x, np.float32(low)), np.float32(high))
    op = _Chain((None, 4, 5, 6), quantize, None, None).quantize
    expected = op.evaluate([clipped])[0]
    np.testing.assert_array_equal(quantize(x), expected)
    np.testing.assert_array_equal(quantize(x, channels_last=True), expected.transpose(0, 2, 3, 1))
