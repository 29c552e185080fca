"""What the canonicalization passes share: reading constants, replacing ops cleanly, refreshing function types.

A rewrite that replaces an op often leaves its operands' producers unused (the constants a fold consumed, the
``graph.shape`` feeding a folded ``graph.gather``); like MLIR's greedy driver, the passes erase those at once, so
each pass's output holds no litter of its own making even when ``dce`` does not run after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cimc.ir.attributes import DenseResourceAttr
from cimc.ir.core import Operation, OpResult, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.graph import ConstantOp
from cimc.ir.rewrite import RewritePattern, Rewriter, apply_patterns


def constant_value(value: Value | None) -> np.ndarray | None:
    """The payload of a ``graph.constant`` result, or None for any other value (or a payload elided from text)."""
    producer = value.op if isinstance(value, OpResult) else None
    if not isinstance(producer, ConstantOp):
        return None
    attr = producer.attributes["value"]
    if isinstance(attr, DenseResourceAttr) and attr.blob.array is None:
        return None
    return attr.array  # type: ignore[attr-defined]


def is_dead(op: Operation) -> bool:
    """An op is dead when it has results and none is used.

    Ops that return nothing (``func.return``, functions, the module) exist for their effect, so they never are;
    every op with results is free of side effects in our dialects.
    """
    return bool(op.results) and not any(r.uses for r in op.results)


def erase_dead_producers(rewriter: Rewriter, values: Sequence[Value]) -> None:
    """Erase the producers of ``values`` that are now dead, and transitively those of their operands."""
    stack = list(values)
    while stack:
        value = stack.pop()
        producer = value.op if isinstance(value, OpResult) else None
        if producer is not None and producer.parent is not None and is_dead(producer):
            stack.extend(producer.operands)
            rewriter.erase_op(producer)


def replace_op(rewriter: Rewriter, op: Operation, values: Sequence[Value | None]) -> None:
    """Replace ``op``'s results by ``values`` (None for a result that has no uses), erase ``op``, then erase
    the producers of its operands that this left dead."""
    operands = op.operands
    rewriter.replace_op(op, values)
    erase_dead_producers(rewriter, operands)


def insert_constant(
    rewriter: Rewriter, anchor: Operation, array: np.ndarray, name: str, dtype: np.dtype | None = None
) -> Value:
    """A new ``graph.constant`` holding ``array`` (rounded to ``dtype`` when given) right before ``anchor``,
    located where ``anchor`` is; when large it is a resource blob named ``name``."""
    constant = ConstantOp.create(array if dtype is None else array.astype(dtype), name)
    constant.location = anchor.location
    return rewriter.insert_before(anchor, constant).result


def blob_name(op: Operation, suffix: str = "") -> str:
    """A name for a blob made from ``op``: its location (its ONNX node's name), else its op name."""
    return (op.location.name or op.name) + suffix


def rewrite_module(module: ModuleOp, patterns: Sequence[RewritePattern]) -> None:
    """Apply ``patterns`` to a fixed point, then refresh every function's type: a returned value may have been
    replaced by one of a more precise type (a folded constant)."""
    apply_patterns(module, patterns)
    for func in module.functions:
        func.update_function_type()
