"""``lower-solve``: a product with the inverse of a constant matrix as a closed-loop solve on crossbar arrays.

``MatMul(Inverse(A), b)`` is ``x = A^{-1} b``, the solution of ``A x = b``, which arrays in closed loop compute in
one analog step without ever forming ``A^{-1}`` (``cim.solve``); ``MatMul(b, Inverse(A))`` is ``(A^{-T} b^T)^T``,
the same solve with ``A^T`` between two transposes of the last two axes. ``A`` is quantized symmetrically to signed
``matrix-bits`` integers, its largest magnitude at the level ``cimc.ir.dialects.cim_solve.top_level`` picks (the full
scale, or a level a little below it that represents ``A`` more faithfully), and cut into blocks of at most one array
(``array-rows`` x ``array-cols``), each block a ``cim.program`` of a differential pair of ``cell-bits`` slices, as
``bit-slice`` programs a layer's weights, except that the slices are binary-weighted cells in parallel in each element
of the same pair of arrays (``parallel_slices``): the closed loop needs each matrix element as one conductance on one
node, so a block takes two arrays whatever its width. Options left 0 come from the module's ``cim.chip`` when it has
one, else from the defaults of the options (2-bit cells on 64 x 64 arrays).

Only float32 systems of a constant square matrix match; the inverse of a computed matrix, or of a stack of them,
stays a graph op (``lower-to-cim`` gives it to a digital unit). A singular constant matrix is an error. Runs at the
``quantized`` stage, before ``lower-to-cim``; after it no MatMul by the inverse of a constant matrix remains
(checked).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np

from cimc.ir.attributes import Attribute, DenseArrayAttr, FloatAttr, IntAttr, StringAttr, tensor_attr
from cimc.ir.core import Operation, OpResult, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import ProgramOp
from cimc.ir.dialects.cim_solve import SIGN_ENCODING, SolveOp, top_level
from cimc.ir.dialects.graph import BY_ONNX_TYPE, InverseOp, MatMulOp
from cimc.ir.options import Option, Rule
from cimc.ir.pass_manager import Pass, PipelineError, register_pass
from cimc.ir.rewrite import RewritePattern, Rewriter
from cimc.ir.target.chip import ChipError, chip_of
from cimc.ir.types import I64, ElementType, TensorType
from cimc.passes.bit_slice import weight_levels
from cimc.passes.common import blob_name, constant_value, replace_op, rewrite_module
from cimc.passes.crossbar_match import MAX_BITS
from cimc.passes.crossbar_options import ARRAY_COLS, ARRAY_ROWS, CELL_BITS

F64 = ElementType("f64")

#: What an option left 0 means.
CHIP_DEFAULT = "the module's chip's (the option's default without a chip)"


@dataclass(frozen=True)
class Crossbars:
    """How a matrix is programmed: its signed width, the cells' bits, the arrays' rows and columns."""

    matrix_bits: int
    cell_bits: int
    array_rows: int
    array_cols: int


def inverted_matrix(value: Value) -> np.ndarray | None:
    """The constant float32 square matrix ``A`` when ``value`` is ``Inverse(A)``, else None."""
    producer = value.op if isinstance(value, OpResult) else None
    if not isinstance(producer, InverseOp):
        return None
    matrix = constant_value(producer.operands[0])
    if matrix is None or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.dtype != np.float32:
        return None
    return matrix


def block_sizes(n: int, array_size: int) -> list[int]:
    """The sides of the blocks a matrix of side ``n`` is cut into: whole arrays, then the rest."""
    return [array_size] * (n // array_size) + ([n % array_size] if n % array_size else [])


def solve(rewriter: Rewriter, anchor: Operation, rhs: Value, matrix: np.ndarray, crossbars: Crossbars) -> Value:
    """A ``cim.solve`` of ``matrix @ x = rhs`` right before ``anchor``, at its location, with the programs of the
    matrix's blocks before it; its result ``x``."""
    wide = matrix.astype(np.float64)
    n = len(matrix)
    rank = int(np.linalg.matrix_rank(wide))
    if rank < n:
        raise anchor.error(
            f"multiplies by the inverse of a singular {n}x{n} constant matrix (rank {rank}); fix the model"
        )
    top = (1 << (crossbars.matrix_bits - 1)) - 1
    scale = float(np.abs(wide).max()) * top / top_level(wide, top)  # the full-scale level's value
    ints = np.clip(np.rint(wide / scale * top), -top, top).astype(np.int64)
    sizes = block_sizes(n, min(crossbars.array_rows, crossbars.array_cols))
    starts = np.cumsum([0, *sizes])
    programs = []
    for i, (r0, r1) in enumerate(zip(starts[:-1], starts[1:])):
        for j, (c0, c1) in enumerate(zip(starts[:-1], starts[1:])):
            levels, _ = weight_levels(ints[r0:r1, c0:c1], crossbars.matrix_bits, crossbars.cell_bits, SIGN_ENCODING)
            attributes: dict[str, Attribute] = {
                "levels": tensor_attr(levels, blob_name(anchor, f".block{i}_{j}.levels")),
                "weight_bits": IntAttr(crossbars.matrix_bits),
                "cell_bits": IntAttr(crossbars.cell_bits),
                "sign_encoding": StringAttr(SIGN_ENCODING),
                "array_rows": IntAttr(crossbars.array_rows),
                "array_cols": IntAttr(crossbars.array_cols),
                "parallel_slices": IntAttr(1),
            }
            program = ProgramOp.build(attributes=attributes, location=anchor.location)
            programs.append(rewriter.insert_before(anchor, program).result)
    attributes = {
        "matrix": tensor_attr(matrix, blob_name(anchor, ".matrix")),
        "scale": FloatAttr(scale, F64),
        "block": DenseArrayAttr(I64, tuple(sizes)),
    }
    x = SolveOp.build(rhs, programs, attributes=attributes, location=anchor.location)
    return rewriter.insert_before(anchor, x).result


def _swap_last_two(rewriter: Rewriter, anchor: Operation, value: Value) -> Value:
    """``value`` with its last two axes swapped, by a ``graph.transpose`` right before ``anchor``."""
    assert isinstance(value.type, TensorType)
    rank = value.type.rank
    perm = DenseArrayAttr(I64, (*range(rank - 2), rank - 1, rank - 2))
    transpose = BY_ONNX_TYPE["Transpose"].build(value, attributes={"perm": perm}, location=anchor.location)
    return rewriter.insert_before(anchor, transpose).result


class _InverseProduct(RewritePattern):
    """Base of the patterns on a MatMul one of whose operands (``side``) is the inverse of a constant matrix."""

    side: int

    def __init__(self, crossbars: Crossbars) -> None:
        self.crossbars = crossbars

    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        matrix = inverted_matrix(op.operands[self.side]) if isinstance(op, MatMulOp) else None
        if matrix is None:
            return False
        replace_op(rewriter, op, [self.rewrite(rewriter, op, op.operands[1 - self.side], matrix)])
        return True

    @abstractmethod
    def rewrite(self, rewriter: Rewriter, op: Operation, other: Value, matrix: np.ndarray) -> Value:
        """What replaces the product ``op`` of ``other`` with the inverse of ``matrix``."""


class SolveInverseTimes(_InverseProduct):
    """A product by the inverse of a constant matrix on the left: a closed-loop solve."""

    # matmul(inverse(constant A), b) -> solve(b){A}
    side = 0

    def rewrite(self, rewriter: Rewriter, op: Operation, other: Value, matrix: np.ndarray) -> Value:
        return solve(rewriter, op, other, matrix, self.crossbars)


class SolveTimesInverse(_InverseProduct):
    """A product by the inverse of a constant matrix on the right: the transposed system's closed-loop solve."""

    # matmul(b, inverse(constant A)) -> transpose(solve(transpose(b)){A^T})   (b [n]: solve(b){A^T})
    side = 1

    def rewrite(self, rewriter: Rewriter, op: Operation, other: Value, matrix: np.ndarray) -> Value:
        assert isinstance(other.type, TensorType)
        if other.type.rank == 1:
            return solve(rewriter, op, other, np.ascontiguousarray(matrix.T), self.crossbars)
        x = solve(rewriter, op, _swap_last_two(rewriter, op, other), np.ascontiguousarray(matrix.T), self.crossbars)
        return _swap_last_two(rewriter, op, x)


def _chip_field(module: ModuleOp, field: str, default: int) -> int:
    """A field of the tiles of the module's chip (``chip_of``), or ``default`` when the module has no chip."""
    try:
        chip = chip_of(module)
    except ChipError as exc:
        raise PipelineError(f"pass 'lower-solve': {exc}") from None
    return default if chip is None else getattr(chip.tile, field)


def _check_legal(module: ModuleOp) -> None:
    """What ``lower-solve`` makes illegal: a MatMul by the inverse of a constant float32 matrix."""
    for op in module.walk():
        if isinstance(op, MatMulOp) and any(inverted_matrix(v) is not None for v in op.operands):
            raise op.error("multiplies by the inverse of a constant matrix after lower-solve")


@register_pass
@dataclass(frozen=True)
class LowerSolvePass(Pass):
    """MatMul by the inverse of a constant matrix -> ``cim.solve`` on the matrix's programmed blocks; options 0
    come from the module's chip (see the module docstring)."""

    name = "lower-solve"
    matrix_bits: int = Option(8, "bits of the signed matrix", Rule(low=2, high=MAX_BITS)).field()
    cell_bits: int = CELL_BITS.or_zero(CHIP_DEFAULT).field()
    array_rows: int = ARRAY_ROWS.or_zero(CHIP_DEFAULT).field()
    array_cols: int = ARRAY_COLS.or_zero(CHIP_DEFAULT).field()

    def run(self, module: ModuleOp) -> None:
        crossbars = Crossbars(
            self.matrix_bits,
            self.cell_bits or _chip_field(module, "cell_bits", CELL_BITS.default),
            self.array_rows or _chip_field(module, "array_rows", ARRAY_ROWS.default),
            self.array_cols or _chip_field(module, "array_cols", ARRAY_COLS.default),
        )
        rewrite_module(module, (SolveInverseTimes(crossbars), SolveTimesInverse(crossbars)))
        _check_legal(module)
