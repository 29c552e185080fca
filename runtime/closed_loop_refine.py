"""The closed-loop solver's numerics (``cimc.runtime.closed_loop``): block inversion for systems larger than an
array, the ``shift`` remedy, and the mixed-precision refinement that brings analog steps to a tolerance.

Larger systems: recursive 2x2 block elimination, ``S = A22 - A21 A11^-1 A12`` built from analog solves with ``A11``,
refined as below to the resolution ``S`` is programmed at (half a level of ``matrix_bits``; the tolerance when
ideal), and open-loop analog MVMs with ``A21`` (crossbar reads with quantized inputs and outputs and the device
effects), then programmed itself. The refinement of ``A11^-1 A12`` matters: ``S`` is the preconditioner of the lower
half, and the smallest eigenvalue of a Schur complement (of a discretized PDE, say) is far below the first analog
step's error, so an ``S`` built from unrefined steps is a different matrix, and the whole system's refinement does
not contract (the 225-unknown Poisson system diverged so). ``[b1; b2]`` is solved with two solves on ``A11``, one
on ``S`` and MVMs with ``A21`` and ``A12``. The chip holds ``arrays // 2`` blocks at once; a step on a block that is
not held reprograms it (its cells' energy and one row at a time of write pulses). A reprogrammed block keeps the
conductances drawn the first time.

Refinement: ``x = analog(b)``; then ``r = b - A x`` in float64 (``2 m n`` digital ops a right-hand side) and ``x +=
analog(r)`` until ``||r|| / ||b|| <= tol`` (least squares: ``||A^T r|| / ||A^T b||``) or ``max_iterations``. It
contracts only when the analog step's relative error is below 1 (the error of ``x`` shrinks by about it each step);
otherwise the residual grows, and refinement stops as diverged when it has grown ``DIVERGENCE_STEPS`` iterations in
a row to above the first step's, or to ``DIVERGENCE_FACTOR`` times it, returning the iterate of the smallest
residual, ``converged=False``, ``diverged=True`` and the reason in ``SolveStats.reason``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cimc.ir.target.chip import Chip
from cimc.runtime.closed_loop_circuit import (
    Hardware,
    Loop,
    Mvm,
    SolveConfig,
    UnstableMatrixError,
    solver_device,
)

#: Digital operations of an eigenvalue analysis (the ``shift`` remedy's): the QR algorithm, eigenvalues only, about
#: 10 n^3 flops (Golub & Van Loan, Matrix Computations, section 7.5.6).
_EIG_OPS_PER_N3 = 10
#: Refinement has diverged when its residual grew this many iterations in a row to above the first step's ...
DIVERGENCE_STEPS = 3
#: ... or when it exceeds the first step's by this factor.
DIVERGENCE_FACTOR = 100.0


class Inverse:
    """``A^-1`` as the chip applies it: one closed-loop leaf, or 2x2 block elimination with the Schur complement
    ``S = A22 - A21 A11^-1 A12`` built from analog solves with ``A11`` and analog MVMs with ``A21``, then
    programmed."""

    def __init__(self, hw: Hardware, matrix: np.ndarray) -> None:
        self.hw = hw
        n = matrix.shape[0]
        self.leaf = Loop(hw, matrix) if n <= hw.leaf else None
        if self.leaf is not None:
            return
        h = self.h = (n + 1) // 2
        a11, a12 = matrix[:h, :h], matrix[:h, h:]
        self.a11 = Inverse(hw, a11)
        self.a12 = Mvm(hw, a12)
        self.a21 = Mvm(hw, matrix[h:, :h])

        def measure(z: np.ndarray) -> tuple[np.ndarray, float]:
            r = a12 - a11 @ z
            hw.ledger.digital(2 * h * h * (n - h))
            return r, relative_error(r, a12)

        # A11^-1 A12 refined (see the module docstring) to the resolution S is programmed at, half a level
        resolution = hw.config.tol if hw.ideal else max(hw.config.tol, 0.5 / hw.levels)
        z = refine_solution(hw, self.a11.apply, a12, measure, resolution).x
        schur = matrix[h:, h:] - self.a21.apply(z)
        hw.ledger.digital((n - h) ** 2)
        self.s = Inverse(hw, schur)

    def apply(self, rhs: np.ndarray) -> np.ndarray:
        """``A^-1 rhs``: ``y1 = A11^-1 b1``, ``x2 = S^-1 (b2 - A21 y1)``, ``x1 = A11^-1 (b1 - A12 x2)``."""
        if self.leaf is not None:
            return self.leaf.apply(rhs)
        h, k = self.h, rhs.shape[1]
        b1, b2 = rhs[:h], rhs[h:]
        x2 = self.s.apply(b2 - self.a21.apply(self.a11.apply(b1)))
        x1 = self.a11.apply(b1 - self.a12.apply(x2))
        self.hw.ledger.digital(rhs.shape[0] * k)
        return np.vstack([x1, x2])


def leaf_loops(n: int, leaf: int) -> int:
    """The closed loops ``Inverse`` sets up for an ``n x n`` matrix on arrays of ``leaf`` rows: one per leaf of the
    block elimination (``A11``'s, then the Schur complement's)."""
    if n <= leaf:
        return 1
    h = (n + 1) // 2
    return leaf_loops(h, leaf) + leaf_loops(n - h, leaf)


def remedy_shift(hw: Hardware, matrix: np.ndarray) -> float:
    """The ``shift`` remedy's ``s``: of the shifts that make every real part of ``A + s I``'s eigenvalues positive,
    the one whose refinement contracts fastest, ``min_s max_i |s / (lambda_i + s)|``; refused when that is not below
    1 (eigenvalues on the negative real axis never converge). Charges the eigenvalue analysis."""
    n = matrix.shape[0]
    hw.ledger.digital(_EIG_OPS_PER_N3 * n**3)
    eigenvalues = np.linalg.eigvals(matrix)
    least = float(np.min(eigenvalues.real))
    if least > 0:
        return 0.0
    span = float(np.max(np.abs(eigenvalues)))
    shifts = -least + span * 2.0 ** np.arange(-8, 9)
    rates = [float(np.max(np.abs(s / (eigenvalues + s)))) for s in shifts]
    best = int(np.argmin(rates))
    if rates[best] >= 1 - 1e-9:
        raise UnstableMatrixError(
            f"remedy 'shift' cannot converge: A has eigenvalues on the negative real axis (smallest real part "
            f"{least:.4g}), so refinement with A + s I contracts by {rates[best]:.4g} >= 1 a step; use remedy='normal' "
            "(least squares on two arrays) or remedy='negate' if every eigenvalue is negative"
        )
    return float(shifts[best])


def relative_error(difference: np.ndarray, reference: np.ndarray) -> float:
    """Largest relative 2-norm over the columns (0 where the reference column is 0 and so is the difference); both
    divided by the reference's largest magnitude first, so that a solution near float64's range (``A`` of 1e-300)
    does not overflow the norms."""
    scale = float(np.max(np.abs(reference), initial=0.0))
    if scale > 0:
        difference, reference = difference / scale, reference / scale
    norms = np.linalg.norm(reference, axis=0)
    diffs = np.linalg.norm(difference, axis=0)
    return float(np.max(np.where(norms > 0, diffs / np.where(norms > 0, norms, 1.0), diffs)))


@dataclass
class Refined:
    """What refinement reached: the iterate of the smallest measure (``x``) and that measure, the first analog
    step's result and its measure, the iterations done, and, when it stopped as diverged, the last measure and its
    growth per iteration over its last rise."""

    x: np.ndarray
    measured: float
    first: np.ndarray
    start: float
    iterations: int
    diverged: bool = False
    last: float = 0.0
    growth: float = 0.0


def refine_solution(
    hw: Hardware,
    operator: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    measure: Callable[[np.ndarray], tuple[np.ndarray, float]],
    tol: float,
) -> Refined:
    """Mixed-precision refinement (see the module docstring): ``x = operator(start)``, then ``x += operator(feed)``
    with ``feed, measured = measure(x)`` (``measure`` charges its digital work) until ``measured <= tol``, the
    config's ``max_iterations`` or divergence."""
    x = first = operator(start)
    feed, measured = measure(x)
    history = [measured]
    best_x, best = x, measured
    rising = 0
    while measured > tol and len(history) <= hw.config.max_iterations:
        x = x + operator(feed)
        hw.ledger.digital(x.size)
        feed, measured = measure(x)
        rising = rising + 1 if measured > history[-1] else 0
        history.append(measured)
        if measured < best:
            best_x, best = x, measured
        grew_away = rising >= DIVERGENCE_STEPS and measured > history[0]
        if grew_away or not measured <= DIVERGENCE_FACTOR * history[0]:  # "not <=": NaN diverged too
            steps = max(rising, 1)
            growth = (measured / history[-1 - steps]) ** (1 / steps)
            return Refined(best_x, best, first, history[0], len(history) - 1, True, measured, growth)
    return Refined(best_x, best, first, history[0], len(history) - 1)


def not_converged_reason(refined: Refined, config: SolveConfig, first_error: float) -> str | None:
    """Why refinement did not converge, in one line (None when it did)."""
    if refined.measured <= config.tol:
        return None
    if refined.diverged:
        return (
            f"refinement diverged: the residual grew from {refined.start:.3g} after the first analog step to "
            f"{refined.last:.3g} in {refined.iterations} iterations ({refined.growth:.3g}x an iteration at the end); "
            f"it contracts only when an analog step's relative error is below 1 (the first step's: {first_error:.3g}): "
            f"improve A's conditioning (scaling, a shift, a preconditioner) or program it with more than "
            f"{config.matrix_bits} matrix bits"
        )
    return (
        f"max_iterations ({config.max_iterations}) reached at a residual of {refined.measured:.3g}, above tol "
        f"{config.tol:g}"
    )


class Problem:
    """A matrix as the chip solves systems with it: the hardware, the remedy's shift and the operator, set up (the
    blocks programmed, Schur complements built, charged to the hardware's ledger) when made."""

    def __init__(
        self, a: np.ndarray, chip: Chip, config: SolveConfig, progress: Callable[[int, int], None] | None = None
    ) -> None:
        assert chip.opamp is not None
        self.a, self.normal = a, config.remedy == "normal"
        self.hw = Hardware(chip, chip.opamp, config, solver_device(chip, config))
        if progress is not None:
            total = 1 if self.normal else leaf_loops(a.shape[0], self.hw.leaf)
            self.hw.on_leaf = lambda done: progress(done, total)
        self.shift = remedy_shift(self.hw, a) if config.remedy == "shift" else 0.0
        n = a.shape[1]
        self.operator = Loop(self.hw, a, normal=True) if self.normal else Inverse(self.hw, a + self.shift * np.eye(n))

    def refine(self, rhs: np.ndarray) -> Refined:
        """The refined solution for the columns of ``rhs``; least squares measures ``||A^T r|| / ||A^T b||`` and
        feeds ``A^T r`` to the loop."""
        a, hw = self.a, self.hw
        m, n = a.shape
        ops = 2 * m * n * rhs.shape[1]  # one product with A (or A^T) for every right-hand side
        if not self.normal:

            def residual(x: np.ndarray) -> tuple[np.ndarray, float]:
                r = rhs - a @ x
                hw.ledger.digital(ops)
                return r, relative_error(r, rhs)

            return refine_solution(hw, self.operator.apply, rhs, residual, hw.config.tol)
        hw.ledger.digital(ops)
        target = a.T @ rhs

        def gradient(x: np.ndarray) -> tuple[np.ndarray, float]:
            g = a.T @ (rhs - a @ x)
            hw.ledger.digital(2 * ops)
            return g, relative_error(g, target)

        return refine_solution(hw, self.operator.apply, target, gradient, hw.config.tol)
