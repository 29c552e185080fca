"""Exact integer products on onnxruntime's quantized GEMM: the exact path's fastest product.

``(codes - zero_point) @ W`` of uint8 input codes and weights in [-128, 127] is what onnxruntime's
``MatMulInteger`` computes, in int32, with MLAS's quantized GEMM kernels: on a CPU with VNNI (``vpdpbusd``) four
times the multiplies of a float32 GEMM per instruction, and every sum exact (int32 holds any sum of fewer than
2^31 / (255 * 128) = 65,793 products). One caveat decides which form is used: on x86 CPUs without VNNI, MLAS's
uint8 x int8 kernel adds adjacent products in int16 with saturation (``vpmaddubsw``), which is not exact for
8-bit weights, while its uint8 x uint8 kernel (weights offset by 128) widens to int16 first and is exact, though
slower. ``integer_gemm`` therefore runs both forms once on a worst-case probe (every code 255, every weight at
each end of its range) and uses the first that returns the exact sums, or none (the caller keeps its float32
GEMM), so the result is exact on any CPU.

The one-node ONNX model is written here in protobuf's wire format (``_model``): the runtime never imports the
``onnx`` package.
"""

from __future__ import annotations

import functools

import numba as nb
import numpy as np

#: ONNX ``TensorProto.DataType`` codes used here.
_UINT8, _INT8, _INT32 = 2, 3, 6
#: Depth below which int32 sums of uint8 x int8 products cannot overflow.
MAX_DEPTH = (2**31 - 1) // (255 * 128)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bytes(field: int, payload: bytes | str) -> bytes:
    """A length-delimited field (a string, bytes or an embedded message)."""
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _tensor(name: str, array: np.ndarray, data_type: int) -> bytes:
    """A ``TensorProto``: dims (1), data_type (2), name (8), raw_data (9, little-endian)."""
    dims = b"".join(_int(1, d) for d in array.shape)
    return dims + _int(2, data_type) + _bytes(8, name) + _bytes(9, np.ascontiguousarray(array).tobytes())


def _value_info(name: str, data_type: int, dims: tuple[int | str, ...]) -> bytes:
    """A ``ValueInfoProto`` of a tensor: name (1), type (2) -> tensor_type (1) -> elem_type (1), shape (2)."""
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, data_type) + _bytes(2, shape)))


def _model(weights: np.ndarray, zero_point: int, weight_zero_point: int) -> bytes:
    """The ``ModelProto`` of ``y = MatMulInteger(a, weights, zero_point, weight_zero_point)``, ``a`` uint8
    ``[rows, K]``, ``y`` int32 ``[rows, C]`` (IR version 8, opset 13)."""
    weight_type = _INT8 if weights.dtype == np.int8 else _UINT8
    node = b"".join(_bytes(1, n) for n in ("a", "w", "a_zero", "w_zero")) + _bytes(2, "y") + _bytes(4, "MatMulInteger")
    graph = (
        _bytes(1, node)
        + _bytes(2, "crossbar")
        + _bytes(5, _tensor("w", weights, weight_type))
        + _bytes(5, _tensor("a_zero", np.array(zero_point, np.uint8), _UINT8))
        + _bytes(5, _tensor("w_zero", np.array(weight_zero_point, weights.dtype), weight_type))
        + _bytes(11, _value_info("a", _UINT8, ("rows", weights.shape[0])))
        + _bytes(12, _value_info("y", _INT32, ("rows", weights.shape[1])))
    )
    return _int(1, 8) + _bytes(7, graph) + _bytes(8, _int(2, 13))


class IntegerGemm:
    """``(a - zero_point) @ weights`` exactly in int32 for uint8 ``a`` ``[rows, K]`` (C-contiguous), on one
    onnxruntime session holding the layer's weights in ``form``: ``"s8"`` (int8 weights) or ``"u8"`` (uint8,
    offset by 128)."""

    def __init__(self, weights: np.ndarray, zero_point: int, form: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = nb.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # numba's threads run next
        stored = weights.astype(np.int8) if form == "s8" else (weights + 128).astype(np.uint8)
        model = _model(stored, zero_point, 0 if form == "s8" else 128)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"a": a})[0]


@functools.cache
def exact_form() -> str | None:
    """The first of ``"s8"``, ``"u8"`` whose product is exact on this CPU over the worst case (None: neither):
    codes 255 against weights of 127 and of -128 everywhere, a depth long enough for any kernel's inner loop."""
    depth, columns = 256, 16
    codes = np.full((4, depth), 255, np.uint8)
    for form in ("s8", "u8"):
        ok = True
        for weight in (127, -128):
            weights = np.full((depth, columns), weight, np.int64)
            got = IntegerGemm(weights, 0, form)(codes)
            ok = ok and bool(np.array_equal(got, codes.astype(np.int64) @ weights))
        if ok:
            return form
    return None


def integer_gemm(weights: np.ndarray, zero_point: int, fill: int = 0) -> IntegerGemm | None:
    """An exact ``IntegerGemm`` of integer ``weights`` ``[K, C]`` for uint8 codes with ``zero_point`` (and a
    convolution's padding code ``fill``), or None where one cannot be exact: weights outside [-128, 127], codes
    outside uint8, a depth past ``MAX_DEPTH``, or a CPU where neither form is (``exact_form``)."""
    if not (0 <= zero_point <= 255 and 0 <= fill <= 255 and 0 < weights.shape[0] <= MAX_DEPTH):
        return None
    if weights.size and not (-128 <= weights.min() and weights.max() <= 127):
        return None
    form = exact_form()
    return None if form is None else IntegerGemm(weights, zero_point, form)
