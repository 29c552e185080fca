"""``lower-to-cim``: a graph-dialect function as the integer reference of the ``cim`` dialect (the ``quantized``
stage).

Every op ``cimc.passes.crossbar_match`` matches becomes a crossbar layer, located at its ONNX node:
``cim.quantize`` (float activations -> unsigned input codes) [-> ``cim.im2col`` for a Conv] -> ``cim.linear`` (one
exact integer product with the integer weights ``[K, N]``) -> ``cim.dequantize`` (zero point out, per-column scale,
bias, and the layer's epilogue: ``cim.fused`` lists the ONNX nodes absorbed) [-> a ``cim.digital`` transpose back
to channels-first for a Conv]. A grouped Conv's matrix is block-diagonal: group ``g``'s filters read only the rows
of its own channels. A ConvTranspose with stride == kernel is a 1x1 Conv with ``M k^2`` columns followed by a
digital DepthToSpace. Where the contraction axis is not the activations' last, digital transposes move the codes
into the crossbar's layout and the result back. Every other graph op, and every layer that cannot be a crossbar's
(``cim.reason`` says why), is wrapped alone in a ``cim.digital``.

Quantization parameters come from the model or from calibration:

- float models: the layer carries ``cim.input_range`` = ``[lo, hi]`` (set by ``cimc.compiler.calibration``).
  Activations are asymmetric unsigned ``input-bits`` codes over ``[min(lo, 0), max(hi, 0)]``; weights symmetric
  ``weight-bits`` integers, one scale per output column.
- QDQ models: the codes and integer weights are the model's own. The QuantizeLinear/DequantizeLinear after a layer
  stay as digital requantization. Float layers of a QDQ model without a calibrated range stay digital.

After this pass every op of a function is a ``cim`` op, a ``graph.constant`` or ``func.return`` (checked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cimc.ir.attributes import ArrayAttr, Attribute, DenseArrayAttr, FloatAttr, IntAttr, StringAttr, tensor_attr
from cimc.ir.core import Block, Operation, Region, Value
from cimc.ir.dialects.builtin import FuncOp, ModuleOp
from cimc.ir.dialects.cim import DequantizeOp, DigitalOp, Im2ColOp, LinearOp, QuantizeOp, YieldOp
from cimc.ir.dialects.graph import BY_ONNX_TYPE, ConstantOp
from cimc.ir.pass_manager import Pass, register_pass
from cimc.ir.types import I64, TensorType
from cimc.passes.common import blob_name
from cimc.passes.crossbar_match import MAX_BITS, Crossbar, Epilogue, InputQuantization, match_crossbar
from cimc.passes.crossbar_options import INPUT_BITS, WEIGHT_BITS, WEIGHT_SCALING
from cimc.passes.dce import eliminate_dead_code

#: Discardable attributes: the activation range calibration measured (on a float layer, f64 ``[lo, hi]``), what
#: a crossbar layer is, how many weights it holds and which following ONNX nodes its dequantization absorbed (on
#: its ``cim.dequantize``, for reports), and why a layer stays digital (on its ``cim.digital``).
INPUT_RANGE = "cim.input_range"
KIND = "cim.kind"
WEIGHTS = "cim.weights"
FUSED = "cim.fused"
REASON = "cim.reason"


@register_pass
@dataclass(frozen=True)
class LowerToCimPass(Pass):
    """Conv, ConvTranspose, Gemm and MatMul with constant weights -> quantize / im2col / linear / dequantize (with
    the per-channel affine ops after them); everything else -> one ``cim.digital`` per graph op."""

    name = "lower-to-cim"
    input_bits: int = INPUT_BITS.field()
    weight_bits: int = WEIGHT_BITS.field()
    weight_scaling: str = WEIGHT_SCALING.field()

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
                result = _lower(match, epilogue, shared[key], quantization, self.weight_bits, self.weight_scaling)
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


# --- the crossbar layer --------------------------------------------------------------------------------------------


def _quantize(op: Operation, data: Value, quantization: InputQuantization) -> Value:
    """A ``cim.quantize`` of ``data`` right before ``op``, located where ``op`` is."""
    attributes: dict[str, Attribute] = {
        "scale": FloatAttr(quantization.scale),
        "zero_point": IntAttr(quantization.zero_point),
        "bits": IntAttr(quantization.bits),
    }
    return _emit(op, QuantizeOp, data, attributes)


def _lower(
    match: Crossbar,
    epilogue: Epilogue,
    codes: Value,
    quantization: InputQuantization,
    weight_bits: int,
    weight_scaling: str = "column",
) -> Value:
    """Emit the crossbar layer of ``match.op``, doing ``epilogue`` too, on its input ``codes`` right before it;
    returns its float result (the epilogue's)."""
    op = match.op
    ints, weight_scale, bits = _integer_weights(match, weight_bits, weight_scaling)
    if match.convolution:
        codes = _emit(op, Im2ColOp, codes, _patches(match, quantization))
    if match.transpose_input:
        codes = _transpose(op, codes, _last_two_swapped(codes))
    linear: dict[str, Attribute] = {
        "weights": tensor_attr(ints.astype(np.int8 if bits <= 8 else np.int16), blob_name(op, ".weights")),
        "weight_bits": IntAttr(bits),
        "input_bits": IntAttr(quantization.bits),
    }
    acc = _emit(op, LinearOp, codes, linear)
    dequantize = _dequantization(match, epilogue, ints, np.float64(quantization.scale) * weight_scale)
    dequantize["zero_point"] = IntAttr(quantization.zero_point)
    y = _emit(op, DequantizeOp, acc, dequantize)
    # back to the layer's layout
    if match.convolution:
        assert isinstance(y.type, TensorType)
        spatial = y.type.rank - 2
        y = _transpose(op, y, (0, spatial + 1, *range(1, spatial + 1)))
    if match.block > 1:  # channels (m, i, j) of one input pixel -> the k x k output block at that pixel
        blocks = {"blocksize": IntAttr(match.block), "mode": StringAttr("CRD")}
        y = _emit(op, BY_ONNX_TYPE["DepthToSpace"], y, blocks)
    if match.transpose_output:
        y = _transpose(op, y, _last_two_swapped(y))
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
        WEIGHTS: IntAttr(math.prod(match.weight_shape)),
    }
    bias = np.repeat(epilogue.shift, per_channel)
    if match.bias is not None:
        given = np.broadcast_to(match.constant(match.bias).astype(np.float64), (1, match.channels))[0] * match.beta
        bias = bias + np.repeat(given, per_channel) * times
    if match.bias is not None or epilogue.shift.any():
        attributes["bias"] = tensor_attr(bias.astype(np.float32), blob_name(op, ".bias"))
    if epilogue.ops:
        attributes[FUSED] = ArrayAttr(tuple(StringAttr(str(o.location.name)) for o in epilogue.ops))
    return attributes


def _transpose(op: Operation, value: Value, perm: tuple[int, ...]) -> Value:
    """A ``graph.transpose`` of ``value`` right before ``op``, at its location: a digital unit after the lowering,
    moving data between the layouts of a layer and of its crossbar."""
    return _emit(op, BY_ONNX_TYPE["Transpose"], value, {"perm": DenseArrayAttr(I64, perm)})


def _last_two_swapped(value: Value) -> tuple[int, ...]:
    """The permutation that swaps ``value``'s last two axes."""
    assert isinstance(value.type, TensorType)
    rank = value.type.rank
    return (*range(rank - 2), rank - 1, rank - 2)


def _patches(match: Crossbar, quantization: InputQuantization) -> dict[str, Attribute]:
    """The ``cim.im2col`` attributes of a Conv (its window) or a ConvTranspose (each pixel alone: 1 x 1)."""
    op = match.op
    w = match.weight_shape
    if op.name == "graph.conv_transpose":
        window = {"kernel_shape": (1, 1), "strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0)}
    else:
        x = op.operands[0].type
        assert isinstance(x, TensorType)
        # explicit (or VALID) pads do not depend on the input size: a dynamic one is resolved at the kernel extent
        extents = [(k - 1) * d + 1 for k, d in zip(w[2:], op.attr("dilations") or (1,) * len(w[2:]))]
        resolved = op.window(extents if None in x.shape[2:] else x.shape[2:], w[2:])  # type: ignore[attr-defined]
        window = {
            "kernel_shape": resolved.kernel,
            "strides": resolved.strides,
            "dilations": resolved.dilations,
            "pads": resolved.pads_begin + resolved.pads_end,
        }
    attributes: dict[str, Attribute] = {k: DenseArrayAttr(I64, v) for k, v in window.items()}
    attributes["fill"] = IntAttr(quantization.zero_point)
    return attributes


def _integer_weights(match: Crossbar, weight_bits: int, scaling: str = "column") -> tuple[np.ndarray, np.ndarray, int]:
    """The crossbar's integer weights ``[K, N]`` (int64), the float64 scale of each column and their signed bit
    width: a float weight quantized symmetrically to ``weight_bits`` over each column's largest magnitude (``scaling``
    ``column``) or the whole matrix's (``tensor``), a QDQ weight's ``q - zp`` with its own scales in the smallest
    width that holds them."""
    dq = match.weight_dequantize
    if dq is None:
        matrix = _matrix(match, match.constant(match.weight).astype(np.float64))
        top = (1 << (weight_bits - 1)) - 1
        largest = np.maximum(matrix.max(axis=0, initial=0.0), -matrix.min(axis=0, initial=0.0))  # |w| per column
        if scaling == "tensor":
            largest = np.full_like(largest, largest.max(initial=0.0))
        scale = np.where(largest > 0, largest / top, 1.0)
        codes = matrix / scale
        np.clip(np.rint(codes, out=codes), -top, top, out=codes)
        return codes.astype(np.int64), scale, weight_bits
    q, scale, *zero_point = (match.constant(v) for v in dq.operands)
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
        raise match.op.error(f"its quantized weights span [{low}, {high}]: {bits} bits, more than {MAX_BITS}")
    per_channel = np.broadcast_to(scale.astype(np.float64).reshape(-1), (match.channels,))
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
        if groups == 1:
            return weight.reshape(filters, -1).T
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
    assert op.parent is not None
    op.parent.insert_before(op, digital)
    for result, replacement in zip(op.results, digital.results):
        result.replace_all_uses_with(replacement)
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


def _emit(layer: Operation, kind: type[Operation], value: Value, attributes: dict[str, Attribute]) -> Value:
    """An op of ``kind`` on ``value`` right before ``layer``, located where ``layer`` is; its result."""
    assert layer.parent is not None
    return layer.parent.insert_before(layer, kind.build(value, attributes=attributes, location=layer.location)).result
