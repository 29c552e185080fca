"""``lower-to-cim``: a graph-dialect function as the integer reference of the ``cim`` dialect (the ``quantized``
stage).

Every Conv, Gemm and MatMul whose weights are constant becomes a crossbar layer, located at its ONNX node:
``cim.quantize`` (float activations -> unsigned input codes) [-> ``cim.im2col`` for a Conv] -> ``cim.linear`` (one
exact integer product with the integer weights ``[K, N]``) -> ``cim.dequantize`` (zero point out, per-column scale,
bias) [-> a ``cim.digital`` transpose back to channels-first for a Conv]. A grouped Conv is one block-diagonal
matrix: group ``g``'s filters read only the rows of its own channels. Every other graph op, and every layer that
cannot be a crossbar's (``cim.reason`` says why), is wrapped alone in a ``cim.digital``.

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

import numpy as np

from cimc.ir.attributes import Attribute, DenseArrayAttr, FloatAttr, IntAttr, StringAttr, tensor_attr
from cimc.ir.core import Block, Operation, OpResult, Region, Value
from cimc.ir.dialects.builtin import FuncOp, ModuleOp
from cimc.ir.dialects.cim import DequantizeOp, DigitalOp, Im2ColOp, LinearOp, QuantizeOp, YieldOp
from cimc.ir.dialects.graph import BY_ONNX_TYPE, ConstantOp
from cimc.ir.pass_manager import Pass, PipelineError, register_pass
from cimc.ir.types import F32, I64, TensorType
from cimc.passes.common import blob_name, constant_value
from cimc.passes.dce import eliminate_dead_code

#: Discardable attributes: the activation range calibration measured (on a float layer, f64 ``[lo, hi]``), what
#: a crossbar layer is and how many weights it holds (on its ``cim.dequantize``, for reports), and why a layer
#: stays digital (on its ``cim.digital``).
INPUT_RANGE = "cim.input_range"
KIND = "cim.kind"
WEIGHTS = "cim.weights"
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
    ``column_axis`` is the weight operand's axis of output columns; ``alpha`` and ``beta`` are a Gemm's."""

    op: Operation
    kind: str
    data: Value
    given: InputQuantization | None
    weight: Value
    column_axis: int
    bias: Value | None
    alpha: float = 1.0
    beta: float = 1.0


def match_crossbar(op: Operation) -> Crossbar | str | None:
    """Whether ``op`` becomes a crossbar layer: its ``Crossbar`` when it does, the reason it stays digital when it
    is a Conv, Gemm or MatMul that cannot, None for every other op. The one place eligibility is decided."""
    if op.name == "graph.conv":
        return _match_conv(op)
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


def _match_conv(op: Operation) -> Crossbar | str:
    x, w, b = op.required_operand("X"), op.required_operand("W"), op.operand("B")
    if not _is_constant(w):
        return "weights are not constant"
    if b is not None and not _is_constant(b):
        return "the bias is not constant"
    if None in _shape(x)[2:]:
        return "spatial dims are dynamic"
    group = op.attr("group")
    channels = _static_shape(w)[1] * group
    kind = "conv" if group == 1 else "depthwise conv" if group == channels else "grouped conv"
    return _crossbar(op, kind, x, w, 0, b)


def _match_gemm(op: Operation) -> Crossbar | str:
    a, b, c = op.required_operand("A"), op.required_operand("B"), op.operand("C")
    if op.attr("transA"):
        return "transA=1"
    if not _is_constant(b):
        return "weights are not constant"
    column_axis = 0 if op.attr("transB") else 1
    if c is not None:
        columns = (1, _static_shape(b)[column_axis])
        if not _is_constant(c):
            return "the bias C is not constant"
        if _broadcast_shape(_static_shape(c), columns) != columns:
            return "the bias C is not one value per output column"
    return _crossbar(op, "gemm", a, b, column_axis, c, float(op.attr("alpha")), float(op.attr("beta")))


def _match_matmul(op: Operation) -> Crossbar | str:
    x, w = op.operands
    if not _is_constant(w):
        return "weights are not constant"
    if len(_shape(w)) != 2:
        return f"weights are not a matrix ({w.type})"
    return _crossbar(op, "matmul", x, w, 1, None)


def _crossbar(
    op: Operation,
    kind: str,
    data: Value,
    weight: Value,
    column_axis: int,
    bias: Value | None,
    alpha: float = 1.0,
    beta: float = 1.0,
) -> Crossbar | str:
    """The checks every crossbar layer shares: activations (after the model's own quantization, if any) in f32,
    weights quantized per tensor or per output column."""
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
            return f"weights are quantized along axis {dq.attr('axis')}, not per output column"
    return Crossbar(op, kind, data, quantization, weight, column_axis, bias, alpha, beta)


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


# --- the lowering ------------------------------------------------------------------------------------------------


@register_pass
@dataclass(frozen=True)
class LowerToCimPass(Pass):
    """Conv, Gemm and MatMul with constant weights -> quantize / im2col / linear / dequantize; everything else
    -> one ``cim.digital`` per graph op."""

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
                op.result.replace_all_uses_with(_lower(match, shared[key], quantization, self.weight_bits))
                op.erase()
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


def _lower(match: Crossbar, codes: Value, quantization: InputQuantization, weight_bits: int) -> Value:
    """Emit the crossbar layer of ``match.op`` on its input ``codes`` right before it; returns its float result."""
    op = match.op
    ints, weight_scale, bits = _integer_weights(match, weight_bits)
    if op.name == "graph.conv":
        x, w = _shape(op.operands[0]), _shape(match.weight)
        window = op.window(x[2:], w[2:])  # type: ignore[attr-defined]
        patches = {
            "kernel_shape": window.kernel,
            "strides": window.strides,
            "dilations": window.dilations,
            "pads": window.pads_begin + window.pads_end,
        }
        attributes: dict[str, Attribute] = {k: DenseArrayAttr(I64, v) for k, v in patches.items()}
        attributes["fill"] = IntAttr(quantization.zero_point)
        codes = _insert(op, Im2ColOp.build(codes, attributes=attributes, location=op.location))
    linear: dict[str, Attribute] = {
        "weights": tensor_attr(ints.astype(np.int8 if bits <= 8 else np.int16), blob_name(op, ".weights")),
        "weight_bits": IntAttr(bits),
        "input_bits": IntAttr(quantization.bits),
    }
    acc = _insert(op, LinearOp.build(codes, attributes=linear, location=op.location))
    scale = np.float64(quantization.scale) * weight_scale * match.alpha
    dequantize: dict[str, Attribute] = {
        "scale": tensor_attr(scale, blob_name(op, ".scale")),
        "zero_point": IntAttr(quantization.zero_point),
        "weight_sums": tensor_attr(ints.sum(axis=0), blob_name(op, ".weight_sums")),
        KIND: StringAttr(match.kind),
        WEIGHTS: IntAttr(math.prod(_static_shape(match.weight))),
    }
    if match.bias is not None:
        columns = ints.shape[1]
        bias = np.broadcast_to(_constant_array(match.bias, op).astype(np.float64), (1, columns))[0] * match.beta
        dequantize["bias"] = tensor_attr(bias.astype(np.float32), blob_name(op, ".bias"))
    y = _insert(op, DequantizeOp.build(acc, attributes=dequantize, location=op.location))
    if op.name == "graph.conv":
        spatial = len(_shape(y)) - 2
        perm = DenseArrayAttr(I64, (0, spatial + 1, *range(1, spatial + 1)))
        y = _insert(op, BY_ONNX_TYPE["Transpose"].build(y, attributes={"perm": perm}, location=op.location))
    return y


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
    return ints, np.broadcast_to(scale.astype(np.float64).reshape(-1), (ints.shape[1],)), bits


def _matrix(match: Crossbar, weight: np.ndarray) -> np.ndarray:
    """A weight operand's values as the crossbar matrix ``[K, N]`` (rows: the contraction, columns: outputs).

    A Conv weight ``[M, C/G, *kernel]`` becomes ``[C * prod(kernel), M]`` in ``cim.im2col``'s row order (channel,
    then kernel offset), block-diagonal for ``G`` groups: filter ``m`` of group ``g`` has zeros outside the rows of
    channels ``g * C/G .. (g + 1) * C/G - 1``.
    """
    op = match.op
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
    yielded), in its place and at its location; ``reason`` says why a Conv, Gemm or MatMul is not a crossbar's."""
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
