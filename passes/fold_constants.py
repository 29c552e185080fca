"""``fold-constants``: ops computed at compile time when their inputs are known.

An op whose operands are all constants is evaluated with its numpy reference (``evaluate``) and replaced by
constants; exporters' shape arithmetic (``Shape -> Gather -> Concat -> Reshape``) folds this way once the shape
it starts from is known. A shape is known from the type alone when the dimensions asked for are static, so
``graph.shape`` folds even though its operand is not constant. Casts to the type a value already has and
reshapes to the shape it already has are dropped.

Random ops are never folded, nor ``DequantizeLinear`` and ``Inverse`` (see ``NEVER_FOLDED``). Folding never makes a
tensor larger than ``max-elements`` unless its inputs were at least as large (transposing a weight folds; broadcasting a
scalar into a huge tensor does not), so weights are not blown up in the IR; a result's size is known before it is
computed, from its type or the op's shape inference on the constants. Folding finite constants into NaN or infinity
(a division by zero, the log of 0) is refused, naming the op: the model would compute garbage on the chip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cimc.ir.core import Operation, VerifyError
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.graph import (
    INFINITY_READERS,
    SHAPE_OPERAND_SIZE,
    GraphOp,
    ReshapeOp,
    element_to_onnx,
    infer_types,
    nonfinite,
)
from cimc.ir.options import Option, Rule
from cimc.ir.pass_manager import Pass, register_pass
from cimc.ir.rewrite import RewritePattern, Rewriter
from cimc.ir.types import TensorType
from cimc.passes.common import blob_name, constant_value, insert_constant, replace_op, rewrite_module

#: ONNX ops never folded: random ones (evaluating them once would freeze one sample), and DequantizeLinear, which
#: keeps a quantized model's integer weights and their scales visible to the passes that program them into
#: cells (onnxruntime's constant folding skips it by default for the same reason); and Inverse: the inverse of a
#: constant matrix is a linear solve that ``lower-solve`` gives to closed-loop arrays (folding it would program
#: a quantized A^-1 instead, far less accurate for an ill-conditioned A).
NEVER_FOLDED = frozenset(
    {
        "Bernoulli",
        "DequantizeLinear",
        "Inverse",
        "Multinomial",
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
    }
)

#: The default bound on the elements of a folded tensor (see the module docstring).
MAX_ELEMENTS = 1 << 20


class FoldConstantOp(RewritePattern):
    """Evaluate a graph op whose operands are all constants."""

    # op(constant a, constant b, ...) -> constant(op.evaluate([a, b, ...]))
    def __init__(self, max_elements: int = MAX_ELEMENTS) -> None:
        self.max_elements = max_elements

    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        if not isinstance(op, GraphOp) or op.onnx_type in NEVER_FOLDED or not hasattr(op, "evaluate"):
            return False
        known = [constant_value(v) for v in op.operands]
        args = [a for a in known if a is not None]
        if len(args) != len(known):
            return False
        limit = max(self.max_elements, sum(a.size for a in args))
        if _result_size(op, args) > limit:
            return False  # known too large without computing it
        try:
            with np.errstate(all="ignore"):  # non-finite results are refused below, naming the op
                results = [np.asarray(r) for r in op.evaluate(args)]
        except Exception as exc:  # the model computes something invalid from its own constants: name the node
            raise op.error(f"evaluating it on its constant operands failed: {exc}") from exc
        if sum(r.size for r in results) > limit:
            return False
        _refuse_nonfinite(op, args, results)
        arrays = []
        for result, array in zip(op.results, results):
            declared = result.type
            assert isinstance(declared, TensorType)
            array = array.astype(declared.dtype, copy=False)  # numpy may promote where ONNX does not
            if not declared.accepts(array.shape, array.dtype):
                return False  # the reference disagrees with the inferred type: leave the op to the interpreter
            arrays.append(array)
        several = len(arrays) > 1
        values = [
            insert_constant(rewriter, op, a, blob_name(op, f"_{i}" if several else "")) for i, a in enumerate(arrays)
        ]
        replace_op(rewriter, op, values)
        return True


def _result_size(op: Operation, args: list[np.ndarray]) -> int:
    """Elements of the op's results, by their types or, where those are dynamic, by the op's shape inference on
    the constants (results still dynamic count as 0: checked after evaluating)."""
    types: list = [r.type for r in op.results]
    if not all(isinstance(t, TensorType) and t.is_static for t in types) and isinstance(op, GraphOp):
        small = {i: a for i, a in enumerate(args) if a.size <= SHAPE_OPERAND_SIZE}
        try:
            types = infer_types(type(op), [TensorType.of(a) for a in args], op.attributes, small, len(types))
        except VerifyError:
            pass  # ONNX's inference refuses what evaluating may still do: sized after evaluating
    return sum(t.num_elements for t in types if isinstance(t, TensorType) and t.is_static)


def _refuse_nonfinite(op: Operation, args: list[np.ndarray], results: list[np.ndarray]) -> None:
    """Refuse NaN made from finite constants, and infinity unless only ops that select or clamp read it."""
    if any(nonfinite(a) for a in args):
        return  # the model's own non-finite constants: the importer has allowed them already
    for result, array in zip(op.results, results):
        found = nonfinite(array)
        readers = {getattr(use.op, "onnx_type", use.op.name) for use in result.uses}
        if found and ("NaN" in found or not readers <= INFINITY_READERS):
            raise op.error(
                f"folding it on its constant operands gives {found} (a division by zero, the log of 0 or an "
                "overflow); fix the model's constants"
            )


def _shape_dims(op: Operation) -> list[int | None]:
    """The dimensions a ``graph.shape`` returns (None where dynamic), after its ``start``/``end`` slicing."""
    source = op.operands[0].type
    assert isinstance(source, TensorType)
    end = op.attr("end")
    # ONNX clamps start and end into [-rank, rank] and counts negatives from the back: Python slicing does both
    return list(source.shape[op.attr("start") : end if end is not None else None])


class FoldStaticShape(RewritePattern):
    """Read a Shape off its operand's type when the dimensions it returns are static."""

    # shape(x : tensor<2x3x?xf32>, end=2) -> constant([2, 3])
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        if op.name != "graph.shape":
            return False
        dims = _shape_dims(op)
        if None in dims:
            return False
        replace_op(rewriter, op, [insert_constant(rewriter, op, np.array(dims, np.int64), blob_name(op))])
        return True


class FoldGatherOfShape(RewritePattern):
    """Pick static dimensions out of the Shape of a tensor whose other dimensions may be dynamic."""

    # gather(shape(x : tensor<?x128x768xf32>), constant [2]) -> constant([768])
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        if op.name != "graph.gather" or op.attr("axis") != 0:
            return False
        data, indices = op.operands
        shape_op = getattr(data, "op", None)
        index = constant_value(indices)
        if shape_op is None or shape_op.name != "graph.shape" or index is None:
            return False
        dims = _shape_dims(shape_op)
        if not np.all((-len(dims) <= index) & (index < len(dims))):
            return False  # out of range: an error the interpreter reports
        picked = np.asarray(np.take(np.array(dims, dtype=object), index))
        if any(d is None for d in picked.flat):
            return False
        replace_op(rewriter, op, [insert_constant(rewriter, op, picked.astype(np.int64), blob_name(op))])
        return True


class RemoveSameTypeCast(RewritePattern):
    """Drop a Cast to the element type its input already has."""

    # cast(x : tensor<...xT>, to=T) -> x
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        if op.name != "graph.cast":
            return False
        source = op.operands[0].type
        if not isinstance(source, TensorType) or element_to_onnx(source.element) != op.attr("to"):
            return False
        replace_op(rewriter, op, [op.operands[0]])
        return True


class RemoveSameShapeReshape(RewritePattern):
    """Drop a Reshape to the static shape its input already has."""

    # reshape(x : tensor<S>, shape) -> x   when the result is tensor<S> too
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        if not isinstance(op, ReshapeOp):
            return False
        data, shape = op.operands
        if not isinstance(data.type, TensorType) or not data.type.is_static:
            return False
        result_type = op.result.type
        if isinstance(result_type, TensorType) and not result_type.is_static:
            target = constant_value(shape)
            if target is None:
                return False
            # the type predates the shape becoming constant: infer it again, with ONNX's rules
            try:
                result_type = infer_types(type(op), [data.type, shape.type], op.attributes, {1: target})[0]
            except VerifyError as exc:  # the model reshapes to a shape its input does not have: name the node
                raise op.error(f"its shape {target.tolist()} does not fit its input {data.type}: {exc}") from None
        if result_type != data.type:
            return False
        replace_op(rewriter, op, [data])
        return True


def patterns(max_elements: int = MAX_ELEMENTS) -> tuple[RewritePattern, ...]:
    """The patterns of ``fold-constants``."""
    return (
        FoldConstantOp(max_elements),
        FoldStaticShape(),
        FoldGatherOfShape(),
        RemoveSameTypeCast(),
        RemoveSameShapeReshape(),
    )


@register_pass
@dataclass(frozen=True)
class FoldConstantsPass(Pass):
    """Evaluate ops on constants, fold known shapes, drop no-op casts and reshapes."""

    name = "fold-constants"
    max_elements: int = Option(MAX_ELEMENTS, "the most elements a folded constant may have", Rule(low=0)).field()

    def run(self, module: ModuleOp) -> None:
        rewrite_module(module, patterns(self.max_elements))
