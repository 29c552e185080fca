"""``cim.solve``: a linear system ``A x = b`` solved by crossbar arrays in closed loop, the ``cim`` dialect's inverse
matrix-vector product.

Operational amplifiers in feedback around an array holding ``A`` settle to the solution of ``A x = b`` in one
analog step (Sun and Ielmini, PNAS 2019); a matrix larger than an array is solved by recursive block inversion over
one array group per block, and a digital residual ``b - A x`` in float64 refines the analog answer to a tolerance
(``cimc.runtime.closed_loop``). The op holds both what is programmed, the blocks as ``cim.program`` operands (placed
like any other group), and the float matrix the digital residual needs.
"""

from __future__ import annotations

import numpy as np

from cimc.ir.attributes import Attribute, DenseArrayAttr, FloatAttr, IntAttr
from cimc.ir.core import AttrDef, OpDef, OperandDef, ResultDef, register_op
from cimc.ir.dialects.cim import _TENSOR, ProgramOp, _CimOp, _tensor, signs_for
from cimc.ir.types import Type

#: Blocks of the matrix hold signed values as a differential pair of arrays: a closed loop needs both signs.
SIGN_ENCODING = "differential"

#: The matrix quantization tries this many levels for ``max|A|``, from the full scale down (``top_level``).
TOP_LEVEL_CANDIDATES = 64
#: Quantization errors (Frobenius, in units of ``max|A|``) this close are equal: rounding noise of exact ratios.
_EQUAL_ERROR = 1e-9


def top_level(matrix: np.ndarray, levels: int) -> int:
    """The level ``max|A|`` of a matrix ``A`` (not all zero) is programmed at, ``levels = Q = 2^(matrix_bits - 1) -
    1`` being the full scale. With ``u = |A| / max|A|`` and ``E(L) = ||rint(u L) / L - u||_F`` the rounding error
    of the codes ``rint(u L)``: of ``Q - 1, Q - 2, ...`` (``TOP_LEVEL_CANDIDATES - 1`` of them, never below ``Q /
    2``) the one of least ``E`` (the largest of equals) when that is at most ``E(Q) / 2``, else ``Q``. A level below
    the full scale loses up to one bit of range (the noise and the converters' error grow against the matrix by up
    to ``Q / L <= 2``), so it is taken only where it gains at least a bit of matrix accuracy.

    The scale of a programmed matrix is the host's choice, as on a real chip (the mapping software sets the
    conductance per unit of ``A``, and the digital side divides it out); mapping ``max|A|`` to the full scale by rule
    breaks the ratios of matrices whose entries are small integer multiples of a unit (a finite-difference stencil,
    a graph Laplacian, an incidence matrix), which this choice programs exactly, their definiteness kept: a 1-D
    Poisson matrix's ``2 : -1`` at 8 bits is ``126 : -63``, where the full scale gives ``127 : -64`` (``-63.5``
    rounded half to even), whose rows sum to less than 0: at ``n = 64`` an indefinite matrix (smallest eigenvalue
    -0.0134 against the true ``4 sin^2(pi / 130) = 0.0023``) that the loop cannot settle on. A matrix of no such
    structure keeps the full scale. The search is host software before programming; like the quantization itself,
    it is not charged as chip work."""
    unit = np.abs(matrix) / float(np.max(np.abs(matrix)))
    tops = np.arange(levels, max(levels - TOP_LEVEL_CANDIDATES, (levels - 1) // 2), -1)
    errors = np.array([np.linalg.norm(np.rint(unit * top) - unit * top) / top for top in tops])
    best = float(errors.min())
    if best > errors[0] / 2:
        return levels
    return int(tops[np.flatnonzero(errors <= best + _EQUAL_ERROR)[0]])


@register_op
class SolveOp(_CimOp):
    """``x = A^{-1} rhs`` for a constant ``n x n`` matrix ``A``: ``rhs`` is ``[n]``, ``[n, k]`` (``k`` right-hand
    sides) or ``[..., n, k]`` (a batch of them), ``x`` has its type. ``arrays`` are the ``cim.program`` groups of
    ``A``'s blocks in row-major block order, block ``(i, j)`` holding rows ``block[i]`` and columns ``block[j]`` of
    ``A`` quantized to signed ``weight_bits`` integers of ``round(A / scale * Q)``, ``Q = 2^(weight_bits - 1) - 1``
    (``scale = max|A| Q / L``, the value of the full-scale level, ``L = top_level(A, Q)``) in a differential pair, its
    slices parallel cells of each element (``parallel_slices``): ``block`` lists the block sizes along each side, each
    at most an array's height and width. ``matrix`` is ``A`` in float, for the digital residual of the refinement, which
    runs until ``||rhs - A x|| / ||rhs||`` is below ``tol`` or ``max_iterations`` steps are done.

    ``evaluate`` (the exact executor) is ``numpy.linalg.solve`` in float64, rounded to the result's type: what the
    ideal circuit with refinement reaches to ``tol``. It does not round through the arrays; the simulator does.

    ``%3 = "cim.solve"(%arg0, %0, %1, %2, %4) <{block = array<i64: 64, 36>, matrix = dense_resource<mm.matrix> :
    tensor<100x100xf32>, scale = 4.5 : f64}> : (tensor<100x?xf32>, tensor<2x4x64x64xui8>, tensor<2x4x64x36xui8>,
    tensor<2x4x36x64xui8>, tensor<2x4x36x36xui8>) -> tensor<100x?xf32>``
    """

    name = "cim.solve"
    definition = OpDef(
        operands=(OperandDef("rhs"), OperandDef("arrays", "variadic")),
        results=(ResultDef("x"),),
        attributes={
            "matrix": AttrDef(_TENSOR),
            "scale": AttrDef(FloatAttr),
            "block": AttrDef(DenseArrayAttr),
            "tol": AttrDef(FloatAttr, default=1e-6),
            "max_iterations": AttrDef(IntAttr, default=100),
        },
    )

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        return [operand_types[0]]

    @property
    def size(self) -> int:
        """``n``, the side of the matrix."""
        return self.attr_type("matrix").shape[0]  # type: ignore[return-value]

    @property
    def matrix_bits(self) -> int:
        """The signed width the matrix is programmed at: its blocks' ``weight_bits``."""
        program = getattr(self.operands[1], "op", None)
        if not isinstance(program, ProgramOp):
            raise self.error("its arrays must be 'cim.program' results")
        return program.attr("weight_bits")

    @property
    def rhs_per_sample(self) -> int:
        """Right-hand sides one sample solves for: ``k`` of ``[..., n, k]`` (a dynamic ``k`` counts 1), 1 for
        ``[n]``."""
        rhs = _tensor(self.operands[0])
        return 1 if rhs.rank == 1 else rhs.shape[-1] or 1

    def verify_(self) -> None:
        matrix = self.attr_type("matrix")
        if matrix.rank != 2 or matrix.shape[0] != matrix.shape[1] or not matrix.element.is_float:
            raise self.error(f"'matrix' must be a square float matrix [n, n], got {matrix}")
        n = self.size
        rhs = self.check_element(self.operands[0], "the right-hand side", "float")
        rows = rhs.shape[0] if rhs.rank == 1 else rhs.shape[-2] if rhs.rank else None
        if rhs.rank == 0 or rows not in (n, None):
            raise self.error(f"the right-hand side must be [{n}], [{n}, k] or [..., {n}, k], got {rhs}")
        if self.result.type != rhs:
            raise self.error(f"result type {self.result.type} must be the right-hand side's {rhs}")
        if not self.attr("scale") > 0 or not self.attr("tol") > 0 or self.attr("max_iterations") < 1:
            raise self.error("'scale' and 'tol' must be positive and 'max_iterations' at least 1")
        self._verify_blocks(n)

    def _verify_blocks(self, n: int) -> None:
        """The arrays hold the blocks that tile the matrix, row-major, each a differential pair of equal slices, the
        slices parallel cells of one element where the arrays are ``cim.program`` results."""
        sizes = self.attr("block")
        if not sizes or min(sizes) < 1 or sum(sizes) != n:
            raise self.error(f"'block' sizes {list(sizes)} must be positive and add up to the matrix side {n}")
        arrays = self.operands[1:]
        if len(arrays) != len(sizes) ** 2:
            raise self.error(f"{len(sizes)} x {len(sizes)} blocks need {len(sizes) ** 2} arrays, got {len(arrays)}")
        slices = {_tensor(a).shape[1] for a in arrays if _tensor(a).rank == 4}
        for index, value in enumerate(arrays):
            levels = _tensor(value)
            i, j = divmod(index, len(sizes))
            expected = (signs_for(SIGN_ENCODING), levels.shape[1] if levels.rank == 4 else None, sizes[i], sizes[j])
            if levels.element.name != "ui8" or levels.shape != expected or len(slices) != 1:
                raise self.error(
                    f"array {index} (block {i}, {j}) must be levels ui8 [2, slices, {sizes[i]}, {sizes[j]}] with "
                    f"the slices of the others, got {levels}"
                )
            program = getattr(value, "op", None)
            if isinstance(program, ProgramOp) and not program.attr("parallel_slices"):
                raise self.error(
                    f"array {index} (block {i}, {j}) must hold its slices as parallel cells (parallel_slices = 1): "
                    "the closed loop sums each matrix element's cells on one node"
                )

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        rhs = args[0]
        n = self.size
        # every right-hand side a column: [..., n, k] -> [n, ... * k], solved at once, moved back
        columns = np.moveaxis(rhs.reshape(n, 1) if rhs.ndim == 1 else rhs, -2, 0)
        x = np.linalg.solve(self.tensor_attr("matrix").astype(np.float64), columns.reshape(n, -1).astype(np.float64))
        return [np.moveaxis(x.reshape(columns.shape), 0, -2).reshape(rhs.shape).astype(rhs.dtype)]
