"""``tile``: each crossbar layer cut into row blocks of one array's height, their partial sums accumulated.

An array has ``array_rows`` word lines, so a ``cim.linear`` with more rows becomes one ``cim.linear`` per block of
``array_rows`` rows, and a ``cim.accumulate`` (the digital unit's adder) sums their partial sums into the original
result. Each block keeps only the column range its weights use: the block-diagonal matrices of grouped and
depthwise convolutions touch a few columns per block, so they cost few arrays; a block with no nonzero weight is
not programmed at all. After this pass no ``cim.linear`` is taller than an array (checked).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cimc.ir.attributes import DenseArrayAttr, IntAttr, tensor_attr
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import AccumulateOp, LinearOp
from cimc.ir.pass_manager import Pass, register_pass
from cimc.ir.types import ElementType
from cimc.passes.common import blob_name
from cimc.passes.crossbar_options import ARRAY_ROWS


def linear_weights(op: LinearOp) -> np.ndarray:
    """The weight matrix of ``op``; a clear error when the IR it came from was printed without its weights."""
    try:
        return op.tensor_attr("weights")
    except ValueError as exc:
        raise op.error(f"cannot cut or slice weights that are not in the IR: {exc}") from None


def column_range(block: np.ndarray) -> tuple[int, int] | None:
    """``[c0, c1)``, the columns from the first to the last one holding a nonzero weight, or None if there is none."""
    used = np.flatnonzero(block.any(axis=0))
    return (int(used[0]), int(used[-1]) + 1) if used.size else None


def row_blocks(weights: np.ndarray, array_rows: int) -> list[tuple[int, int, int]]:
    """``(block index, c0, c1)`` of each row block of ``array_rows`` rows that holds a nonzero weight, with its
    column range; when every block is zero, the first one with all columns (the layer still has a result)."""
    blocks = []
    for index, start in enumerate(range(0, weights.shape[0], array_rows)):
        columns = column_range(weights[start : start + array_rows])
        if columns is not None:
            blocks.append((index, *columns))
    return blocks or [(0, 0, weights.shape[1])]


def tile_linear(op: LinearOp, array_rows: int) -> None:
    """Replace ``op`` by its row blocks and their accumulation, unless it is one block spanning all its columns."""
    weights = linear_weights(op)
    rows, columns = weights.shape
    blocks = row_blocks(weights, array_rows)
    if rows <= array_rows and blocks == [(0, 0, columns)]:
        return
    block = op.parent
    assert block is not None
    codes = op.operands[0]
    partials = []
    for index, c0, c1 in blocks:
        start = index * array_rows
        piece = np.ascontiguousarray(weights[start : start + array_rows, c0:c1])
        linear = LinearOp.build(
            codes,
            attributes={
                "weights": tensor_attr(piece, blob_name(op, f".r{index}")),
                "weight_bits": op.attributes["weight_bits"],
                "input_bits": op.attributes["input_bits"],
                "row_offset": IntAttr(op.attr("row_offset") + start),
            },
            location=op.location,
        )
        partials.append(block.insert_before(op, linear).result)
    accumulate = AccumulateOp.build(
        partials,
        attributes={
            "col_offsets": DenseArrayAttr(ElementType("i64"), tuple(c0 for _, c0, _ in blocks)),
            "columns": IntAttr(columns),
        },
        location=op.location,
    )
    op.result.replace_all_uses_with(block.insert_before(op, accumulate).result)
    op.erase()


def check_heights(module: ModuleOp, array_rows: int) -> None:
    """What ``tile`` makes illegal: a ``cim.linear`` taller than an array."""
    for op in module.walk():
        if isinstance(op, LinearOp) and op.rows > array_rows:
            raise op.error(f"{op.rows} rows remain after tiling into arrays of {array_rows} rows")


def linears(module: ModuleOp) -> list[LinearOp]:
    """The ``cim.linear`` ops of the module, in order (a snapshot: safe to rewrite while iterating)."""
    return [op for op in module.walk() if isinstance(op, LinearOp)]


@register_pass
@dataclass(frozen=True)
class TilePass(Pass):
    """Cut every ``cim.linear`` into row blocks of ``array_rows`` rows and their nonzero column ranges."""

    name = "tile"
    array_rows: int = ARRAY_ROWS.field()

    def run(self, module: ModuleOp) -> None:
        for op in linears(module):
            tile_linear(op, self.array_rows)
        check_heights(module, self.array_rows)
