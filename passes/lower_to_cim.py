"""``lower-to-cim``: a graph-dialect function as the integer reference of the ``cim`` dialect (the ``quantized``
stage).

Every Conv, ConvTranspose, Gemm and MatMul whose weights are constant becomes a crossbar layer, located at its ONNX
node: ``cim.quantize`` (float activations -> unsigned input codes) [-> ``cim.im2col`` for a Conv] -> ``cim.linear``
(one exact integer product with the integer weights ``[K, N]``) -> ``cim.dequantize`` (zero point out, per-column
scale, bias) [-> a ``cim.digital`` transpose back to channels-first for a Conv]. A grouped Conv is one
block-diagonal matrix: group ``g``'s filters read only the rows of its own channels. Spatial dims may be dynamic
when the padding does not depend on them (explicit or VALID). A ConvTranspose whose square kernel equals its stride
(no pads: each input pixel makes its own ``k x k`` output block, as U-Net and DBNet decoders upsample) is a 1x1
Conv with ``M k^2`` columns followed by a digital DepthToSpace. Where the contraction axis is not the activations'
last (Gemm with transA, a MatMul ``W @ X`` with the constant first), digital transposes move the codes into the
crossbar's layout and the result back.

The per-channel affine work right after a layer (a bias Add as PyTorch exports Linear layers, a Mul, Sub or Div
by a per-channel constant, an inference BatchNormalization that canonicalization could not fold) is done by its
``cim.dequantize`` instead of a digital unit, as long as each intermediate result feeds only the next such op;
``cim.fused`` lists the ONNX nodes absorbed. Every other graph op, and every layer that cannot be a crossbar's
(``cim.reason`` says why), is wrapped alone in a ``cim.digital``.

Quantization parameters come from the model or from calibration:

- float models: the layer carries ``cim.input_range`` = ``[lo, hi]`` (set by ``cimc.compiler.calibration``).
  Activations are asymmetric unsigned ``input-bits`` codes over ``[min(lo, 0), max(hi, 0)]``; weights symmetric
  ``weight-bits`` integers, one scale per output column.
- QDQ models (onnxruntime's ``quantize_static``): the layer's input is ``DequantizeLinear(QuantizeLinear(x))`` and
  its weight ``DequantizeLinear(integer constant)``; the codes and integers are the model's own (signed codes
  shifted to unsigned, the zero point with them). The QuantizeLinear/DequantizeLinear after a layer stay as digital
  requantization. Float layers of a QDQ model without a calibrated range stay digital.

After this pass every op of a function is a ``cim`` op, a ``graph.constant`` or ``func.return`` (checked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cimc.ir.attributes import ArrayAttr, Attribute, DenseArrayAttr, FloatAttr, IntAttr, StringAttr, tensor_attr
from cimc.ir.core import Block, Operation, OpResult, Region, Value
from cimc.ir.dialects.builtin import FuncOp, ModuleOp
from cimc.ir.dialects.cim import DequantizeOp, DigitalOp, Im2ColOp, LinearOp, QuantizeOp, YieldOp
from cimc.ir.dialects.graph import BY_ONNX_TYPE, ConstantOp
from cimc.ir.pass_manager import Pass, PipelineError, register_pass
from cimc.ir.types import F32, I64, TensorType
from cimc.passes.common import blob_name, constant_value
from cimc.passes.dce import eliminate_dead_code

#: Discardable attributes: the activation range calibration measured (on a float layer, f64 ``[lo, hi]``), what
#: a crossbar layer is, how many weights it holds and which following ONNX nodes its dequantization absorbed (on
#: its ``cim.dequantize``, for reports), and why a layer stays digital (on its ``cim.digital``).
INPUT_RANGE = "cim.input_range"
KIND = "cim.kind"
WEIGHTS = "cim.weights"
FUSED = "cim.fused"
REASON = "cim.reason"

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
    def channel_axis(self) -> int:
        """The axis of output channels in the layer's float result: 1 (channels-first) for convolutions, the
        last for Gemm and MatMul, the second last for a constant-first MatMul."""
        if self.op.name in ("graph.conv", "graph.conv_transpose"):
            return 1
        return len(_shape(self.op.result)) - (2 if self.transpose_output else 1)


def match_crossbar(op: Operation) -> Crossbar | str | None:
    """Whether ``op`` becomes a crossbar layer: its ``Crossbar`` when it does, the reason it stays digital when it
    is a Conv, ConvTranspose, Gemm or MatMul that cannot, None for every other op. The one place eligibility is
    decided."""
    if op.name == "graph.conv":
        return _match_conv(op)
    if op.name == "graph.conv_transpose":
        return _match_conv_transpose(op)
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


def _convolution_operands(op: Operation) -> tuple[Value, Value, Value | None] | str:
    """A Conv's or ConvTranspose's X, W and B when W and B (if any) are constant, else the reason."""
    x, w, b = op.required_operand("X"), op.required_operand("W"), op.operand("B")
    if not _is_constant(w):
        return "weights are not constant"
    if b is not None and not _is_constant(b):
        return "the bias is not constant"
    return x, w, b


def _match_conv(op: Operation) -> Crossbar | str:
    operands = _convolution_operands(op)
    if isinstance(operands, str):
        return operands
    x, w, b = operands
    if None in _shape(x)[2:] and op.attr("auto_pad") in ("SAME_UPPER", "SAME_LOWER"):
        return f"spatial dims are dynamic and auto_pad={op.attr('auto_pad')} pads by them"
    group = op.attr("group")
    channels = _static_shape(w)[1] * group
    kind = "conv" if group == 1 else "depthwise conv" if group == channels else "grouped conv"
    return _crossbar(op, kind, x, w, 0, b)


def _match_conv_transpose(op: Operation) -> Crossbar | str:
    operands = _convolution_operands(op)
    if isinstance(operands, str):
        return operands
    x, w, b = operands
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
    if given is not None:
        data, quantization = given
    else:
        quantization = None
    element = data.type.element if isinstance(data.type, TensorType) else data.type
    if element != F32:
        return f"activations are {element}, not f32"
    dq = _producer(weight, "graph.dequantize_linear")
    if dq is not None:
        if math.prod(_static_shape(dq.operands[1])) != 1 and dq.attr("axis") % len(_shape(weight)) != column_axis:
            return f"weights are quantized along axis {dq.attr('axis')}, not per output channel"
    return Crossbar(op, kind, data, quantization, weight, column_axis, bias, **layout)


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
    codes = np.iinfo(_dtype(q.results[0]))
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
        channels = _static_shape(match.weight)[match.column_axis]
        scale, shift = np.ones(channels), np.zeros(channels)
        ops: list[Operation] = []
        while len(value.uses) == 1:
            user = value.uses[0].op
            step = _affine_step(user, value, match.channel_axis, channels)
            if step is None:
                break
            times, plus = step
            scale, shift = scale * times, shift * times + plus
            ops.append(user)
            value = user.result
        return Epilogue(tuple(ops), scale, shift)


def _affine_step(op: Operation, value: Value, channel_axis: int, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``op`` applied to ``value`` as ``value * times + plus`` with per-channel constants, when it is one: an
    Add, Sub, Mul or Div by a constant that broadcasts per channel without changing ``value``'s shape, or an
    inference BatchNormalization over the channels. None otherwise."""
    if op.name == "graph.batch_norm":
        if op.operands[0] is not value or channel_axis != 1 or len(op.results) != 1:
            return None
        params = [constant_value(v) for v in op.operands[1:]]
        if any(p is None for p in params):
            return None
        gamma, beta, mean, var = (p.astype(np.float64) for p in params)  # type: ignore[union-attr]
        times = gamma / np.sqrt(var + np.float64(np.float32(op.attr("epsilon"))))
        return times, beta - mean * times
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


# --- the lowering ------------------------------------------------------------------------------------------------


@register_pass
@dataclass(frozen=True)
class LowerToCimPass(Pass):
    """Conv, ConvTranspose, Gemm and MatMul with constant weights -> quantize / im2col / linear / dequantize (with
    the per-channel affine ops after them); everything else -> one ``cim.digital`` per graph op."""

    name = "lower-to-cim"
    input_bits: int = 8
    weight_bits: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.input_bits <= MAX_BITS:
            raise PipelineError(f"pass 'lower-to-cim' option 'input-bits' must be 1..{MAX_BITS}, got {self.input_bits}")
        if not 2 <= self.weight_bits <= MAX_BITS:
            raise PipelineError(
                f"pass 'lower-to-cim' option 'weight-bits' must be 2..{MAX_BITS} (signed), got {self.weight_bits}"
            )

    def run(self, module: ModuleOp) -> None:
        qdq_model = any(
            isinstance(m, Crossbar) and m.given is not None
            for func in module.functions
            for m in map(match_crossbar, func.body.ops)
        )
        reasons: dict[Operation, str] = {}
        for func in module.functions:
            shared: dict[tuple[Value, InputQuantization], Value] = {}
            for op in list(func.body.ops):
                match = match_crossbar(op)  # now: the layers before it have been replaced
                if isinstance(match, str):
                    reasons[op] = match
                    continue
                if match is None:
                    continue
                quantization = match.given or self._calibrated(match, qdq_model)
                if quantization is None:
                    reasons[op] = "the input is float and was not calibrated"
                    continue
                key = (match.data, quantization)
                if key not in shared:
                    shared[key] = _quantize(op, match.data, quantization)
                epilogue = Epilogue.after(match)
                result = _lower(match, epilogue, shared[key], quantization, self.weight_bits)
                (epilogue.ops[-1] if epilogue.ops else op).result.replace_all_uses_with(result)
                for absorbed in (*reversed(epilogue.ops), op):
                    absorbed.erase()
        eliminate_dead_code(module)
        for func in module.functions:
            for op in list(func.body.ops):
                if op.name.startswith("graph.") and not isinstance(op, ConstantOp):
                    wrap_digital(op, reasons.get(op))
            func.update_function_type()
            _check_legal(func)

    def _calibrated(self, match: Crossbar, qdq_model: bool) -> InputQuantization | None:
        """The quantization of a float layer's input from its calibrated range; None for an uncalibrated layer
        of a QDQ model (it stays digital); an error for one of a float model."""
        op = match.op
        attr = op.attributes.get(INPUT_RANGE)
        if attr is None:
            if qdq_model:
                return None
            raise op.error(
                f"has no '{INPUT_RANGE}' to quantize its input with: calibrate the model on sample inputs "
                "(--calib data.npz)"
            )
        values: tuple[float, ...] = attr.value if isinstance(attr, DenseArrayAttr) else ()
        if len(values) != 2 or not values[0] <= values[1]:
            raise op.error(f"'{INPUT_RANGE}' must be array<f64: lo, hi> with lo <= hi, got {attr}")
        if not all(math.isfinite(v) for v in values):
            raise op.error(f"'{INPUT_RANGE}' must be finite, got {attr}")
        return InputQuantization.from_range(values[0], values[1], self.input_bits)


def _quantize(op: Operation, data: Value, quantization: InputQuantization) -> Value:
    """A ``cim.quantize`` of ``data`` right before ``op``, located where ``op`` is."""
    attributes: dict[str, Attribute] = {
        "scale": FloatAttr(quantization.scale),
        "zero_point": IntAttr(quantization.zero_point),
        "bits": IntAttr(quantization.bits),
    }
    return _insert(op, QuantizeOp.build(data, attributes=attributes, location=op.location))


def _lower(
    match: Crossbar, epilogue: Epilogue, codes: Value, quantization: InputQuantization, weight_bits: int
) -> Value:
    """Emit the crossbar layer of ``match.op``, doing ``epilogue`` too, on its input ``codes`` right before it;
    returns its float result (the epilogue's)."""
    op = match.op
    ints, weight_scale, bits = _integer_weights(match, weight_bits)
    convolution = op.name in ("graph.conv", "graph.conv_transpose")
    if convolution:
        codes = _insert(op, Im2ColOp.build(codes, attributes=_patches(match, quantization), location=op.location))
    if match.transpose_input:
        codes = _transpose(op, codes, _last_two_swapped(len(_shape(codes))))
    linear: dict[str, Attribute] = {
        "weights": tensor_attr(ints.astype(np.int8 if bits <= 8 else np.int16), blob_name(op, ".weights")),
        "weight_bits": IntAttr(bits),
        "input_bits": IntAttr(quantization.bits),
    }
    acc = _insert(op, LinearOp.build(codes, attributes=linear, location=op.location))
    dequantize = _dequantization(match, epilogue, ints, np.float64(quantization.scale) * weight_scale)
    dequantize["zero_point"] = IntAttr(quantization.zero_point)
    y = _insert(op, DequantizeOp.build(acc, attributes=dequantize, location=op.location))
    # back to the layer's layout
    if convolution:
        spatial = len(_shape(y)) - 2
        y = _transpose(op, y, (0, spatial + 1, *range(1, spatial + 1)))
    if match.block > 1:  # channels (m, i, j) of one input pixel -> the k x k output block at that pixel
        blocks = {"blocksize": IntAttr(match.block), "mode": StringAttr("CRD")}
        y = _insert(op, BY_ONNX_TYPE["DepthToSpace"].build(y, attributes=blocks, location=op.location))
    if match.transpose_output:
        y = _transpose(op, y, _last_two_swapped(len(_shape(y))))
    return y


def _dequantization(match: Crossbar, epilogue: Epilogue, ints: np.ndarray, scale: np.ndarray) -> dict[str, Attribute]:
    """The ``cim.dequantize`` attributes but the zero point: ``scale`` (input x weight scale per column) times
    the Gemm's alpha and the epilogue's scale; the bias (the layer's, times beta) through the epilogue."""
    op = match.op
    per_channel = match.block**2  # columns per output channel
    times = np.repeat(epilogue.scale, per_channel)
    attributes: dict[str, Attribute] = {
        "scale": tensor_attr(scale * match.alpha * times, blob_name(op, ".scale")),
        "weight_sums": tensor_attr(ints.sum(axis=0), blob_name(op, ".weight_sums")),
        KIND: StringAttr(match.kind),
        WEIGHTS: IntAttr(math.prod(_static_shape(match.weight))),
    }
    bias = np.repeat(epilogue.shift, per_channel)
    if match.bias is not None:
        channels = len(epilogue.scale)
        given = np.broadcast_to(_constant_array(match.bias, op).astype(np.float64), (1, channels))[0] * match.beta
        bias = bias + np.repeat(given, per_channel) * times
    if match.bias is not None or epilogue.shift.any():
        attributes["bias"] = tensor_attr(bias.astype(np.float32), blob_name(op, ".bias"))
    if epilogue.ops:
        attributes[FUSED] = ArrayAttr(tuple(StringAttr(str(o.location.name)) for o in epilogue.ops))
    return attributes


def _transpose(op: Operation, value: Value, perm: tuple[int, ...]) -> Value:
    """A ``graph.transpose`` of ``value`` right before ``op``, at its location: a digital unit after the lowering,
    moving data between the layouts of a layer and of its crossbar."""
    attributes: dict[str, Attribute] = {"perm": DenseArrayAttr(I64, perm)}
    return _insert(op, BY_ONNX_TYPE["Transpose"].build(value, attributes=attributes, location=op.location))


def _last_two_swapped(rank: int) -> tuple[int, ...]:
    return (*range(rank - 2), rank - 1, rank - 2)


def _patches(match: Crossbar, quantization: InputQuantization) -> dict[str, Attribute]:
    """The ``cim.im2col`` attributes of a Conv (its window) or a ConvTranspose (each pixel alone: 1 x 1)."""
    op = match.op
    w = _static_shape(match.weight)
    if op.name == "graph.conv_transpose":
        window = {"kernel_shape": (1, 1), "strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0)}
    else:
        x = _shape(op.operands[0])
        # explicit (or VALID) pads do not depend on the input size: a dynamic one is resolved at the kernel extent
        extents = [(k - 1) * d + 1 for k, d in zip(w[2:], op.attr("dilations") or (1,) * len(w[2:]))]
        resolved = op.window(extents if None in x[2:] else x[2:], w[2:])  # type: ignore[attr-defined]
        window = {
            "kernel_shape": resolved.kernel,
            "strides": resolved.strides,
            "dilations": resolved.dilations,
            "pads": resolved.pads_begin + resolved.pads_end,
        }
    attributes: dict[str, Attribute] = {k: DenseArrayAttr(I64, v) for k, v in window.items()}
    attributes["fill"] = IntAttr(quantization.zero_point)
    return attributes


def _integer_weights(match: Crossbar, weight_bits: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The crossbar's integer weights ``[K, N]`` (int64), the float64 scale of each column and their signed bit
    width: a float weight quantized symmetrically per column to ``weight_bits``, a QDQ weight's ``q - zp`` with its
    own scales in the smallest width that holds them."""
    op = match.op
    dq = _producer(match.weight, "graph.dequantize_linear")
    if dq is None:
        matrix = _matrix(match, _constant_array(match.weight, op).astype(np.float64))
        top = (1 << (weight_bits - 1)) - 1
        largest = np.abs(matrix).max(axis=0)
        scale = np.where(largest > 0, largest / top, 1.0)
        return np.clip(np.rint(matrix / scale), -top, top).astype(np.int64), scale, weight_bits
    q, scale, *zero_point = (_constant_array(v, op) for v in dq.operands)
    rank, axis = q.ndim, match.column_axis
    along = [-1 if d == axis else 1 for d in range(rank)]  # a per-column parameter broadcast against q
    centered = q.astype(np.int64)
    if zero_point:
        centered = centered - zero_point[0].astype(np.int64).reshape(along if zero_point[0].size > 1 else ())
    ints = _matrix(match, centered)
    low, high = int(ints.min(initial=0)), int(ints.max(initial=0))
    # signed b bits hold -2^(b-1) .. 2^(b-1) - 1; at least 2, the narrowest the weight-bits option allows
    bits = max(2, 1 + max(high.bit_length(), max(-1 - low, 0).bit_length()))
    if bits > MAX_BITS:
        raise op.error(f"its quantized weights span [{low}, {high}]: {bits} bits, more than {MAX_BITS}")
    channels = ints.shape[1] // match.block**2
    per_channel = np.broadcast_to(scale.astype(np.float64).reshape(-1), (channels,))
    return ints, np.repeat(per_channel, match.block**2), bits


def _matrix(match: Crossbar, weight: np.ndarray) -> np.ndarray:
    """A weight operand's values as the crossbar matrix ``[K, N]`` (rows: the contraction, columns: outputs).

    A Conv weight ``[M, C/G, *kernel]`` becomes ``[C * prod(kernel), M]`` in ``cim.im2col``'s row order (channel,
    then kernel offset), block-diagonal for ``G`` groups: filter ``m`` of group ``g`` has zeros outside the rows of
    channels ``g * C/G .. (g + 1) * C/G - 1``. A ConvTranspose weight ``[C, M, k, k]`` becomes ``[C, M k^2]``,
    columns ordered as DepthToSpace's CRD mode reads channels: output channel, then kernel row and column.
    """
    op = match.op
    if op.name == "graph.conv_transpose":
        return weight.reshape(weight.shape[0], -1)
    if op.name == "graph.conv":
        groups = op.attr("group")
        filters = weight.shape[0]
        blocks = weight.reshape(groups, filters // groups, -1).transpose(0, 2, 1)  # [G, C/G * k, M/G]
        matrix = np.zeros((groups, blocks.shape[1], groups, blocks.shape[2]), weight.dtype)
        index = np.arange(groups)
        matrix[index, :, index, :] = blocks
        return matrix.reshape(groups * blocks.shape[1], filters)
    return weight.T if match.column_axis == 0 else weight


# --- digital units and legality ------------------------------------------------------------------------------------


def wrap_digital(op: Operation, reason: str | None = None) -> DigitalOp:
    """Move ``op`` into its own ``cim.digital`` (its operands become the region's arguments, its results are
    yielded), in its place and at its location; ``reason`` says why a layer with weights is not a crossbar's."""
    block = Block([v.type for v in op.operands])
    attributes: dict[str, Attribute] = {} if reason is None else {REASON: StringAttr(reason)}
    digital = DigitalOp(op.operands, [r.type for r in op.results], attributes, [Region([block])], op.location)
    _insert(op, digital)
    for result, replacement in zip(op.results, digital.results):
        result.replace_all_uses_with(replacement)
    assert op.parent is not None
    op.parent.remove(op)
    for index, arg in enumerate(block.args):
        op.set_operand(index, arg)
    block.append(op)
    block.append(YieldOp(list(op.results)))
    return digital


def _check_legal(func: FuncOp) -> None:
    """What ``lower-to-cim`` makes illegal: any op of a function but ``cim`` ops, ``graph.constant`` and
    ``func.return``."""
    for op in func.body.ops:
        if not (op.name.startswith("cim.") or op.name in ("graph.constant", "func.return")):
            raise op.error("is left in the function after lower-to-cim (only cim ops and constants may be)")


# --- small helpers -------------------------------------------------------------------------------------------------


def _insert(anchor: Operation, op: Operation) -> Value:
    assert anchor.parent is not None
    anchor.parent.insert_before(anchor, op)
    return op.results[0]


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


def _constant_array(value: Value, user: Operation) -> np.ndarray:
    """The value of a constant operand of ``user`` (see ``_is_constant``); a DequantizeLinear is evaluated."""
    producer = value.op  # type: ignore[attr-defined]
    try:
        if isinstance(producer, ConstantOp):
            return producer.value
        return producer.evaluate([v.op.value for v in producer.operands])[0]
    except ValueError as exc:  # a weight elided from the text this IR was read from
        raise user.error(str(exc)) from None


def _shape(value: Value) -> tuple[int | None, ...]:
    return value.type.shape if isinstance(value.type, TensorType) else ()


def _static_shape(value: Value) -> tuple[int, ...]:
    """The shape of a value known to be static (a constant's)."""
    assert isinstance(value.type, TensorType)
    return value.type.static_shape


def _dtype(value: Value) -> np.dtype:
    assert isinstance(value.type, TensorType)
    return value.type.dtype


def _broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None
