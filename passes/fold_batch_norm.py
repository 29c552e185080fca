"""``fold-batch-norm``: inference BatchNormalization folded into the Conv, Gemm or MatMul before it.

In inference a batch norm is a per-channel affine map ``y * s + t`` with ``s = scale / sqrt(var + epsilon)`` and
``t = beta - mean * s``. After a layer with constant weights it folds into them: output channel ``c`` of the layer
is scaled by ``s[c]`` and shifted by ``t[c]``. On a crossbar this matters twice over: the batch norm would cost a
digital pass over every activation, and the folded weights are the ones the conductances must hold.

``s`` and ``t`` are computed in float64 and the new weights rounded once to the weights' type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cimc.ir.attributes import Attribute, FloatAttr
from cimc.ir.core import Operation, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.graph import BY_ONNX_TYPE
from cimc.ir.pass_manager import Pass, register_pass
from cimc.ir.rewrite import RewritePattern, Rewriter
from cimc.ir.types import TensorType
from cimc.passes.common import blob_name, constant_value, insert_constant, replace_op, rewrite_module


@dataclass
class ChannelAffine:
    """An inference batch norm as ``y * scale + shift`` per channel (axis 1), in float64, and the op feeding it."""

    producer: Operation
    scale: np.ndarray
    shift: np.ndarray


def channel_affine(bn: Operation, producer_name: str) -> ChannelAffine | None:
    """The affine map of ``bn`` when it is a batch norm (the verifier admits only inference ones) with constant
    parameters whose input comes from a ``producer_name`` op used by nothing else; None otherwise."""
    if bn.name != "graph.batch_norm":
        return None
    x = bn.operands[0]
    producer = getattr(x, "op", None)
    if producer is None or producer.name != producer_name or len(x.uses) != 1:
        return None
    params = [constant_value(bn.operand(name)) for name in ("scale", "B", "input_mean", "input_var")]
    if any(p is None for p in params):
        return None
    gamma, beta, mean, var = (np.asarray(p, np.float64) for p in params)
    if not gamma.shape == beta.shape == mean.shape == var.shape or gamma.ndim != 1:
        return None
    denominator = var + float(bn.attr("epsilon"))
    if not np.all(denominator > 0):  # NaN fails too
        channel = int(np.argmin(np.nan_to_num(denominator, nan=-np.inf)))
        raise bn.error(
            f"its variance plus epsilon is {denominator[channel]:g} at channel {channel}, not positive: folding it "
            "would program NaN or infinite weights; fix the model's batch norm statistics"
        )
    scale = gamma / np.sqrt(denominator)
    return ChannelAffine(producer, scale, beta - mean * scale)


def replace_with_refolded(
    rewriter: Rewriter,
    bn: Operation,
    producer: Operation,
    data: Value,
    weight: tuple[np.ndarray, np.dtype],
    bias: np.ndarray,
    attributes: dict[str, Attribute],
) -> None:
    """Replace ``bn`` by a new op of ``producer``'s kind over ``data`` with the folded weight and bias (both rounded
    to the weight's original dtype), placed and located where ``producer`` is."""
    new_weight, dtype = weight
    folded = type(producer).build(
        data,
        insert_constant(rewriter, producer, new_weight, blob_name(producer, ".weight"), dtype),
        insert_constant(rewriter, producer, bias, blob_name(producer, ".bias"), dtype),
        attributes=attributes,
        result_types=[bn.results[0].type],
        location=producer.location,
    )
    replace_op(rewriter, bn, [rewriter.insert_before(producer, folded).result])


class FoldBatchNormIntoConv(RewritePattern):
    """Scale a Conv's output channels and shift its bias."""

    # batch_norm(conv(x, W, b)) -> conv(x, W * s[:, None, ...], b * s + t)
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        affine = channel_affine(op, "graph.conv")
        if affine is None:
            return False
        conv = affine.producer
        x, w, b = conv.required_operand("X"), constant_value(conv.operand("W")), conv.operand("B")
        bias = np.zeros(len(affine.scale)) if b is None else constant_value(b)
        if w is None or bias is None or w.shape[0] != len(affine.scale) or bias.shape != affine.scale.shape:
            return False
        new_w = w * affine.scale.reshape(-1, *[1] * (w.ndim - 1))
        new_b = bias * affine.scale + affine.shift
        replace_with_refolded(rewriter, op, conv, x, (new_w, w.dtype), new_b, dict(conv.attributes))
        return True


class FoldBatchNormIntoGemm(RewritePattern):
    """Scale a Gemm's output columns and fold the shift into its bias (with ``beta`` folded in too)."""

    # batch_norm(gemm(a, B, C, alpha, beta)) -> gemm(a, B * s (per output column), beta * C * s + t, alpha, 1)
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        affine = channel_affine(op, "graph.gemm")
        if affine is None:
            return False
        gemm = affine.producer
        trans_b = gemm.attr("transB")
        b, c = constant_value(gemm.operand("B")), gemm.operand("C")
        bias = np.zeros(()) if c is None else constant_value(c)
        if b is None or bias is None or b.ndim != 2 or b.shape[1 - trans_b] != len(affine.scale):
            return False
        new_b = b * (affine.scale[:, None] if trans_b else affine.scale[None, :])
        new_c = float(gemm.attr("beta")) * bias * affine.scale + affine.shift
        attributes = dict(gemm.attributes)
        attributes["beta"] = FloatAttr(1.0)
        a = gemm.required_operand("A")
        replace_with_refolded(rewriter, op, gemm, a, (new_b, b.dtype), new_c, attributes)
        return True


class FoldBatchNormIntoMatMul(RewritePattern):
    """Scale the columns of a MatMul's constant 2-D weight and add the shift as a bias."""

    # batch_norm(matmul(x, W)) -> add(matmul(x, W * s[None, :]), t)   for 2-D results, channels = columns
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        affine = channel_affine(op, "graph.matmul")
        if affine is None:
            return False
        matmul = affine.producer
        x, w = matmul.operands[0], constant_value(matmul.operands[1])
        result_type = matmul.result.type
        if w is None or w.ndim != 2 or w.shape[1] != len(affine.scale):
            return False
        if not isinstance(result_type, TensorType) or result_type.rank != 2:
            return False  # batch norm's channels (axis 1) are the weight's columns only for 2-D results
        new_w = insert_constant(rewriter, matmul, w * affine.scale[None, :], blob_name(matmul, ".weight"), w.dtype)
        scaled = type(matmul).build(x, new_w, result_types=[result_type], location=matmul.location)
        rewriter.insert_before(matmul, scaled)
        bias = insert_constant(rewriter, matmul, affine.shift, blob_name(matmul, ".bias"), w.dtype)
        shifted = BY_ONNX_TYPE["Add"].build(
            scaled.result, bias, result_types=[op.results[0].type], location=matmul.location
        )
        replace_op(rewriter, op, [rewriter.insert_before(matmul, shifted).result])
        return True


PATTERNS: tuple[RewritePattern, ...] = (FoldBatchNormIntoConv(), FoldBatchNormIntoGemm(), FoldBatchNormIntoMatMul())


@register_pass
@dataclass(frozen=True)
class FoldBatchNormPass(Pass):
    """Fold inference batch norms into the Conv, Gemm or MatMul feeding them."""

    name = "fold-batch-norm"

    def run(self, module: ModuleOp) -> None:
        rewrite_module(module, PATTERNS)
