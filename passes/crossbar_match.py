"""Which graph ops become crossbar layers, with which operands and input quantization, and which ops after a layer
its dequantization absorbs. ``lower-to-cim`` emits what this module matches; calibration measures the activations
it names (``crossbar_input``), so the two agree on the layers by construction.

A Conv, ConvTranspose, Gemm or MatMul whose weights are constant is a crossbar layer. A grouped Conv is one
block-diagonal matrix. Spatial dims may be dynamic when the padding does not depend on them (explicit or VALID). A
ConvTranspose whose square kernel equals its stride (no pads: each input pixel makes its own ``k x k`` output
block, as U-Net and DBNet decoders upsample) is a 1x1 Conv with ``M k^2`` columns. Where the contraction axis is
not the activations' last (Gemm with transA, a MatMul ``W @ X`` with the constant first), the lowering moves the
codes into the crossbar's layout and the result back. A layer that cannot be a crossbar's gets the reason why.

QDQ models (onnxruntime's ``quantize_static``) give their own quantization: a layer's input is
``DequantizeLinear(QuantizeLinear(x))`` and its weight ``DequantizeLinear(integer constant)``; the codes are the
model's (signed codes shifted to unsigned, the zero point with them).

The per-channel affine work right after a layer (a bias Add as PyTorch exports Linear layers, a Mul, Sub or Div by
a per-channel constant, an inference BatchNormalization that canonicalization could not fold) is its ``Epilogue``,
as long as each intermediate result feeds only the next such op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cimc.ir.core import Operation, OpResult, Value
from cimc.ir.dialects.graph import ConstantOp
from cimc.ir.types import F32, TensorType
from cimc.passes.common import constant_value
from cimc.passes.fold_batch_norm import channel_affine

#: The widest codes and weights ``cim.linear`` takes.
MAX_BITS = 16


@dataclass(frozen=True)
class InputQuantization:
    """How activations become unsigned input codes: ``u = clip(rint(x / scale) + zero_point, 0, 2^bits - 1)``."""

    scale: float  # a float32 value
    zero_point: int
    bits: int

    @staticmethod
    def from_range(lo: float, hi: float, bits: int) -> InputQuantization:
        """Asymmetric codes over ``[lo, hi]`` widened to hold 0 exactly (0 is the code of padding and of ReLU)."""
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        top = (1 << bits) - 1
        scale = float(np.float32((hi - lo) / top)) or 1.0
        return InputQuantization(scale, int(np.clip(np.rint(-lo / scale), 0, top)), bits)


@dataclass(frozen=True)
class Crossbar:
    """An op the lowering maps onto a crossbar: the float activations it quantizes, their quantization when the
    model gives it (QDQ; None when it comes from the calibrated range), and its constant weight and bias operands.
    ``column_axis`` is the weight operand's axis of output channels; ``alpha`` and ``beta`` are a Gemm's; ``block``
    is a ConvTranspose's kernel side: its matrix has ``block^2`` columns per output channel (one per output pixel
    of the block an input pixel makes), 1 for every other layer. ``transpose_input``: the activations' contraction
    axis is their second last (Gemm transA, constant-first MatMul), so their codes are transposed into the
    crossbar's layout; ``transpose_output``: the result's output channels are its second last axis (constant-first
    MatMul), so it is transposed back."""

    op: Operation
    kind: str
    data: Value
    given: InputQuantization | None
    weight: Value
    column_axis: int
    bias: Value | None
    alpha: float = 1.0
    beta: float = 1.0
    block: int = 1
    transpose_input: bool = False
    transpose_output: bool = False

    @property
    def convolution(self) -> bool:
        """A Conv or ConvTranspose: channels-first, its codes read through ``cim.im2col``."""
        return self.op.name in ("graph.conv", "graph.conv_transpose")

    @property
    def channel_axis(self) -> int:
        """The axis of output channels in the layer's float result: 1 (channels-first) for convolutions, the
        last for Gemm and MatMul, the second last for a constant-first MatMul."""
        if self.convolution:
            return 1
        return len(_shape(self.op.result)) - (2 if self.transpose_output else 1)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The shape of the weight operand, as the model gives it."""
        return _static_shape(self.weight)

    @property
    def channels(self) -> int:
        """The layer's output channels."""
        return self.weight_shape[self.column_axis]

    @property
    def weight_dequantize(self) -> Operation | None:
        """The DequantizeLinear that makes a QDQ model's weight from its integers; None for a float weight."""
        return _producer(self.weight, "graph.dequantize_linear")

    def constant(self, value: Value) -> np.ndarray:
        """The value of one of the layer's constants: its weight or bias (a DequantizeLinear of one is evaluated),
        or an operand of the weight's DequantizeLinear."""
        producer = value.op  # type: ignore[attr-defined]
        try:
            if isinstance(producer, ConstantOp):
                return producer.value
            return producer.evaluate([v.op.value for v in producer.operands])[0]
        except ValueError as exc:  # a weight elided from the text this IR was read from
            raise self.op.error(str(exc)) from None


def match_crossbar(op: Operation) -> Crossbar | str | None:
    """Whether ``op`` becomes a crossbar layer: its ``Crossbar`` when it does, the reason it stays digital when it
    is a Conv, ConvTranspose, Gemm or MatMul that cannot, None for every other op. The one place eligibility is
    decided."""
    if op.name in ("graph.conv", "graph.conv_transpose"):
        return _match_convolution(op)
    if op.name == "graph.gemm":
        return _match_gemm(op)
    if op.name == "graph.matmul":
        return _match_matmul(op)
    return None


def crossbar_input(op: Operation) -> Value | None:
    """The float activations that calibration must measure for ``op``: the data input of a crossbar layer whose
    input quantization the model does not give (not QDQ); None for every other op."""
    match = match_crossbar(op)
    return match.data if isinstance(match, Crossbar) and match.given is None else None


def _match_convolution(op: Operation) -> Crossbar | str:
    """A Conv or ConvTranspose: constant W and B (if any), then what its kind needs."""
    x, w, b = op.required_operand("X"), op.required_operand("W"), op.operand("B")
    if not _is_constant(w):
        return "weights are not constant"
    if b is not None and not _is_constant(b):
        return "the bias is not constant"
    if op.name == "graph.conv_transpose":
        return _match_conv_transpose(op, x, w, b)
    if None in _shape(x)[2:] and op.attr("auto_pad") in ("SAME_UPPER", "SAME_LOWER"):
        return f"spatial dims are dynamic and auto_pad={op.attr('auto_pad')} pads by them"
    group = op.attr("group")
    channels = _static_shape(w)[1] * group
    kind = "conv" if group == 1 else "depthwise conv" if group == channels else "grouped conv"
    return _crossbar(op, kind, x, w, 0, b)


def _match_conv_transpose(op: Operation, x: Value, w: Value, b: Value | None) -> Crossbar | str:
    kernel = _static_shape(w)[2:]
    plain = (
        len(kernel) == 2
        and kernel[0] == kernel[1]
        and tuple(op.attr("strides") or (1, 1)) == kernel
        and op.attr("group") == 1
        and not any(op.attr("pads") or ())
        and not any(op.attr("output_padding") or ())
        and set(op.attr("dilations") or (1,)) == {1}
        and op.attr("output_shape") is None
        and op.attr("auto_pad") in ("NOTSET", "VALID")
    )
    if not plain:
        return "not a 2-d ConvTranspose with a square kernel equal to its strides, one group, no pads or dilations"
    return _crossbar(op, "conv transpose", x, w, 1, b, block=kernel[0])


def _match_gemm(op: Operation) -> Crossbar | str:
    a, b, c = op.required_operand("A"), op.required_operand("B"), op.operand("C")
    if not _is_constant(b):
        return "weights are not constant"
    column_axis = 0 if op.attr("transB") else 1
    if c is not None:
        columns = (1, _static_shape(b)[column_axis])
        if not _is_constant(c):
            return "the bias C is not constant"
        if _broadcast_shape(_static_shape(c), columns) != columns:
            return "the bias C is not one value per output column"
    alpha, beta = float(op.attr("alpha")), float(op.attr("beta"))
    # transA = 1: A is [K, M], its input vectors are its columns
    return _crossbar(op, "gemm", a, b, column_axis, c, alpha=alpha, beta=beta, transpose_input=bool(op.attr("transA")))


def _match_matmul(op: Operation) -> Crossbar | str:
    x, w = op.operands
    if not _is_constant(w) and _is_constant(x) and len(_shape(x)) == 2:
        # W @ X with constant W [M, K]: the input vectors are the columns of X [..., K, N], the outputs the rows
        columns_first = len(_shape(w)) >= 2
        return _crossbar(op, "matmul", w, x, 0, None, transpose_input=columns_first, transpose_output=columns_first)
    if not _is_constant(w):
        return "weights are not constant"
    if len(_shape(w)) != 2:
        return f"weights are not a matrix ({w.type})"
    return _crossbar(op, "matmul", x, w, 1, None)


def _crossbar(
    op: Operation, kind: str, data: Value, weight: Value, column_axis: int, bias: Value | None, **layout: Any
) -> Crossbar | str:
    """The checks every crossbar layer shares: activations (after the model's own quantization, if any) in f32,
    weights quantized per tensor or per output channel. ``layout`` sets the optional fields of ``Crossbar``."""
    given = _given_quantization(data)
    if isinstance(given, str):
        return given
    data, quantization = given if given is not None else (data, None)
    element = data.type.element if isinstance(data.type, TensorType) else data.type
    if element != F32:
        return f"activations are {element}, not f32"
    dq = _producer(weight, "graph.dequantize_linear")
    if dq is not None:
        if math.prod(_static_shape(dq.operands[1])) != 1 and dq.attr("axis") % len(_shape(weight)) != column_axis:
            return f"weights are quantized along axis {dq.attr('axis')}, not per output channel"
    return Crossbar(op, kind, data, quantization, weight, column_axis, bias, **layout)


# --- QDQ models ----------------------------------------------------------------------------------------------------


def _given_quantization(value: Value) -> tuple[Value, InputQuantization] | str | None:
    """A QDQ model's activation quantization: ``value = DequantizeLinear(QuantizeLinear(x, s, zp), s, zp)`` with
    one constant ``s`` and ``zp`` gives ``x`` and its codes, signed ones shifted to unsigned (zero point
    ``zp - qmin``); None when ``value`` is not quantized so; the reason when it is, but not as a DAC takes it."""
    dq = _producer(value, "graph.dequantize_linear")
    q = _producer(dq.operands[0], "graph.quantize_linear") if dq is not None else None
    if dq is None or q is None:
        return None
    params = [_per_tensor(qdq) for qdq in (q, dq)]
    if params[0] is None or params[0] != params[1]:
        return "the input's QuantizeLinear and DequantizeLinear are not one constant per-tensor quantization"
    scale, zero_point = params[0]
    codes_type = q.results[0].type
    assert isinstance(codes_type, TensorType)
    codes = np.iinfo(codes_type.dtype)
    if codes.bits > MAX_BITS:
        return f"the input is quantized to {codes.bits} bits, more than {MAX_BITS}"
    return q.operands[0], InputQuantization(scale, zero_point - int(codes.min), codes.bits)


def _per_tensor(qdq: Operation) -> tuple[float, int] | None:
    """A QuantizeLinear's or DequantizeLinear's scale and zero point when both are one constant, else None."""
    scale = constant_value(qdq.operands[1])
    zero_point = constant_value(qdq.operands[2]) if len(qdq.operands) > 2 else np.zeros(1, np.int64)
    if scale is None or zero_point is None or scale.size != 1 or zero_point.size != 1:
        return None
    return float(np.float32(scale.item())), int(zero_point.item())


# --- the epilogue ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Epilogue:
    """The per-channel affine ops right after a crossbar layer, which its ``cim.dequantize`` does instead of a
    digital unit: together they map the layer's result ``y`` to ``y * scale + shift`` (float64, one entry per
    output channel). Each op in ``ops`` is the only user of the result before it."""

    ops: tuple[Operation, ...]
    scale: np.ndarray
    shift: np.ndarray

    @staticmethod
    def after(match: Crossbar) -> Epilogue:
        """The longest chain of absorbable ops after ``match.op`` (possibly none)."""
        value = match.op.result
        scale, shift = np.ones(match.channels), np.zeros(match.channels)
        ops: list[Operation] = []
        while len(value.uses) == 1:
            user = value.uses[0].op
            step = _affine_step(user, value, match.channel_axis, match.channels)
            if step is None:
                break
            times, plus = step
            scale, shift = scale * times, shift * times + plus
            ops.append(user)
            value = user.result
        return Epilogue(tuple(ops), scale, shift)


def _affine_step(
    op: Operation, value: OpResult, channel_axis: int, channels: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``op`` applied to ``value`` (used by ``op`` alone) as ``value * times + plus`` with per-channel constants,
    when it is one: an Add, Sub, Mul or Div by a constant that broadcasts per channel without changing ``value``'s
    shape, or an inference BatchNormalization over the channels. None otherwise."""
    if op.name == "graph.batch_norm":
        if op.operands[0] is not value or channel_axis != 1 or len(op.results) != 1:
            return None
        affine = channel_affine(op, value.op.name)  # the map fold-batch-norm folds into weights
        return None if affine is None else (affine.scale, affine.shift)
    if op.name not in ("graph.add", "graph.sub", "graph.mul", "graph.div") or len(op.operands) != 2:
        return None
    index = op.operands.index(value)
    other = op.operands[1 - index]
    if other is value:
        return None
    vector = _per_channel(constant_value(other), _shape(value), channel_axis, channels)
    if vector is None or not np.isfinite(vector).all() or (op.name == "graph.div" and not vector.all()):
        return None
    one, zero = np.ones(channels), np.zeros(channels)
    if op.name == "graph.add":
        return one, vector
    if op.name == "graph.sub":
        return (one, -vector) if index == 0 else (-one, vector)
    if op.name == "graph.mul":
        return vector, zero
    return (1 / vector, zero) if index == 0 else None  # a constant divided by the layer is not affine


def _per_channel(
    constant: np.ndarray | None, shape: tuple[int | None, ...], channel_axis: int, channels: int
) -> np.ndarray | None:
    """A float constant as one float64 value per channel of a result of ``shape``, when it broadcasts against that
    result without changing its shape and varies along the channel axis only; else None."""
    if constant is None or constant.dtype.kind != "f" or constant.ndim > len(shape):
        return None
    full = (1,) * (len(shape) - constant.ndim) + constant.shape
    if any(size != 1 for axis, size in enumerate(full) if axis != channel_axis):
        return None
    if full[channel_axis] not in (1, channels):
        return None
    return np.broadcast_to(constant.astype(np.float64).reshape(-1), (channels,))


# --- small helpers -------------------------------------------------------------------------------------------------


def _producer(value: Value, name: str) -> Operation | None:
    """The op of ``name`` defining ``value``, else None."""
    op = value.op if isinstance(value, OpResult) else None
    return op if op is not None and op.name == name else None


def _is_constant(value: Value) -> bool:
    """Produced by a ``graph.constant``, or (QDQ models) by a DequantizeLinear of ``graph.constant`` s."""
    if _producer(value, "graph.constant") is not None:
        return True
    dq = _producer(value, "graph.dequantize_linear")
    return dq is not None and all(_producer(v, "graph.constant") is not None for v in dq.operands)


def _shape(value: Value) -> tuple[int | None, ...]:
    return value.type.shape if isinstance(value.type, TensorType) else ()


def _static_shape(value: Value) -> tuple[int, ...]:
    """The shape of a value known to be static (a constant's)."""
    assert isinstance(value.type, TensorType)
    return value.type.static_shape


def _broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None
