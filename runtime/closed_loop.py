"""Closed-loop in-memory solution of linear systems: ``A x = b`` in one analog step, as the feedback circuit of Sun &
Ielmini (PNAS 2019) and the Politecnico di Milano SRAM chip (Mannocci et al., Nature Electronics 2026) compute it,
with mixed-precision refinement to a requested tolerance, block inversion for systems larger than an array, and the
time and energy of every step against a digital LU solver.

The model is in three layers, a module each: the circuit (``cimc.runtime.closed_loop_circuit``: the matrix
quantized and programmed, the op-amp loop, its stability and settling), the numerics on top of it
(``cimc.runtime.closed_loop_refine``: block inversion, the ``shift`` remedy, mixed-precision refinement) and the cost
ledger every step is charged to (``cimc.runtime.closed_loop_cost``: time, energy, the digital baseline). This module
is the interface: ``solve`` and ``solve_cost``, their configuration and their results.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cimc.ir.target.chip import Chip
from cimc.runtime.closed_loop_circuit import (
    REMEDIES,
    SaturatedOutputError,
    SolveConfig,
    SolveError,
    UnstableMatrixError,
    closed_loop_chip,
)
from cimc.runtime.closed_loop_cost import SolveCost, baseline_pj, fp32_pj
from cimc.runtime.closed_loop_refine import Problem, not_converged_reason, relative_error

__all__ = [
    "REMEDIES",
    "SaturatedOutputError",
    "SolveConfig",
    "SolveCost",
    "SolveError",
    "SolveStats",
    "UnstableMatrixError",
    "closed_loop_chip",
    "condition_number",
    "solve",
    "solve_cost",
]


@dataclass
class SolveStats:
    """What one ``solve`` reached and cost: errors against numpy, steps, the loop's slowest eigenvalue and settling
    time (the worst leaf's), time, energy by category (``opamps``, ``dacs``, ``adcs``, ``arrays``, ``digital``,
    ``programming``) and the digital baseline's (``multiply``, ``add``, ``dram``) with ``ratio`` = baseline / this.
    ``diverged``: refinement stopped early because its residual grew (the analog step's error is too large for it to
    contract); ``reason``: one line saying why it did not converge (None when it did)."""

    error: float | None
    residual: float
    iterations: int
    analog_solves: int
    analog_mvms: int
    digital_ops: int
    first_step_error: float
    min_eigenvalue: float
    settling_time_s: float
    time_s: float
    energy_pj: dict[str, float]
    energy_total_pj: float
    baseline_pj: dict[str, float]
    baseline_total_pj: float
    ratio: float
    blocks: int
    converged: bool
    programmings: int = 0
    shift: float = 0.0
    diverged: bool = False
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stats as plain JSON-able data."""
        return dataclasses.asdict(self)


def _inputs(a: Any, b: Any, remedy: str | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """``A`` and ``b`` as float64, ``b`` as columns, whether it was a vector; one-line errors for bad input."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise SolveError(f"A must be a non-empty 2-D matrix, got shape {a.shape}")
    vector = b.ndim == 1
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[0] or b.size == 0:
        raise SolveError(
            f"b must be [{a.shape[0]}] or [{a.shape[0]}, k], k >= 1, to match A of shape {a.shape}, got {b.shape}"
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise SolveError("A and b must hold finite numbers (no NaN or infinity)")
    m, n = a.shape
    if m != n and remedy != "normal":
        raise SolveError(
            f"A is {m}x{n}, not square: least squares runs on the two-array normal-equations circuit, remedy='normal'"
        )
    if remedy == "normal" and (m < n or np.linalg.matrix_rank(a) < n):
        raise SolveError(f"remedy 'normal' needs A of full column rank ({m}x{n} A has rank {np.linalg.matrix_rank(a)})")
    if remedy != "normal":
        _check_invertible(a)
    return a, (b[:, None] if vector else b), vector


#: The largest condition number of a matrix ``solve`` takes: beyond 1 / eps, float64 itself cannot tell ``A`` from
#: a singular matrix (LAPACK's "singular to working precision"), let alone an 8-bit analog copy of it.
MAX_CONDITION = 1 / np.finfo(np.float64).eps


def condition_number(a: np.ndarray) -> float:
    """``A``'s condition number in the 1-norm, ``||A|| ||A^-1||`` (inf for a singular ``A``); scaled by its largest
    entry first, which leaves it unchanged and keeps the inverse in range."""
    largest = float(np.max(np.abs(a)))
    if largest == 0:
        return math.inf
    scaled = a / largest
    try:
        inverse = np.linalg.inv(scaled)
    except np.linalg.LinAlgError:  # an exactly zero pivot
        return math.inf
    return float(np.linalg.norm(scaled, 1) * np.linalg.norm(inverse, 1))


def _check_invertible(a: np.ndarray) -> None:
    """Refuse a square ``A`` that is singular, or numerically so: ``A x = b`` has no unique solution to refine."""
    condition = condition_number(a)
    if not condition < MAX_CONDITION:
        raise SolveError(
            f"A is singular{'' if math.isinf(condition) else ' to working precision'} (its condition number is "
            f"{condition:.3g}, at most {MAX_CONDITION:.3g} can be solved): A x = b has no unique solution; check for a "
            "zero or repeated row or column, or use --remedy normal for least squares if A has full column rank"
        )


def solve(
    A: Any,
    b: Any,
    chip: str | Chip = "milan-closed-loop",
    tol: float = 1e-6,
    *,
    config: SolveConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    **config_fields: Any,
) -> tuple[np.ndarray, SolveStats]:
    """Solve ``A x = b`` (``b``: ``[n]`` or ``[n, k]``, several right-hand sides; least squares for ``m x n`` ``A``
    with ``remedy="normal"``) on a closed-loop chip, refined to ``tol``; the solution (float64, ``b``'s layout) and
    what it reached and cost. ``config_fields`` set ``SolveConfig`` fields (on ``config``'s when given); ``tol`` is
    the config's unless given apart from its default; ``progress(done, total)`` is called as each of the ``total``
    leaf loops is set up."""
    base = config or SolveConfig()
    if tol != SolveConfig.tol:
        config_fields.setdefault("tol", tol)
    config = dataclasses.replace(base, **config_fields)
    chip = closed_loop_chip(chip)
    a, rhs, vector = _inputs(A, b, config.remedy)
    m, n = a.shape
    problem = Problem(a, chip, config, progress)
    normal = problem.normal
    try:
        reference = np.linalg.lstsq(a, rhs, rcond=None)[0] if normal else np.linalg.solve(a, rhs)
    except np.linalg.LinAlgError:
        reference = None
    refined = problem.refine(rhs)
    x = refined.x

    ledger = problem.hw.ledger
    if reference is not None:
        error: float | None = relative_error(x - reference, reference)
        first_error = relative_error(refined.first - reference, reference)
    else:
        error, first_error = None, relative_error(rhs - a @ refined.first, rhs)
    energy = dict(ledger.energy_pj)
    total = sum(energy.values())
    baseline = baseline_pj(m, n, rhs.shape[1])
    stats = SolveStats(
        error=error,
        residual=relative_error(rhs - a @ x, rhs),  # charged when refinement measured it
        iterations=refined.iterations,
        analog_solves=ledger.analog_solves,
        analog_mvms=ledger.analog_mvms,
        digital_ops=ledger.digital_ops,
        first_step_error=first_error,
        min_eigenvalue=ledger.min_eigenvalue,
        settling_time_s=ledger.settling_time_s,
        time_s=ledger.time_s,
        energy_pj=energy,
        energy_total_pj=total,
        baseline_pj=baseline,
        baseline_total_pj=sum(baseline.values()),
        ratio=sum(baseline.values()) / total if total else 0.0,
        blocks=ledger.leaves,
        converged=refined.measured <= config.tol,
        programmings=ledger.programmings,
        shift=problem.shift,
        diverged=refined.diverged,
        reason=not_converged_reason(refined, config, first_error),
    )
    return (x[:, 0] if vector else x), stats


def solve_cost(
    A: Any, chip: str | Chip = "milan-closed-loop", *, config: SolveConfig | None = None, **config_fields: Any
) -> SolveCost:
    """What one solve with the square matrix ``A`` costs on a closed-loop chip once ``A`` is programmed (see
    ``SolveCost``): the ledger of ``solve``'s model for a right-hand side of standard normal entries drawn with the
    config's seed, less the setup. ``cimc.runtime.performance`` charges it to every ``cim.solve``."""
    config = dataclasses.replace(config or SolveConfig(), **config_fields)
    chip = closed_loop_chip(chip)
    matrix = np.asarray(A, dtype=np.float64)
    rows = matrix.shape[0] if matrix.ndim == 2 else 1
    if config.remedy == "normal":
        raise SolveError("solve_cost prices square systems; least squares (remedy='normal') has no cost model here")
    a, rhs, _ = _inputs(matrix, np.random.default_rng(config.seed).standard_normal(rows), config.remedy)
    problem = Problem(a, chip, config)
    ledger = problem.hw.ledger
    time_s, energy, solves, mvms = ledger.time_s, dict(ledger.energy_pj), ledger.analog_solves, ledger.analog_mvms
    refined = problem.refine(rhs)
    n = a.shape[0]
    return SolveCost(
        time_s=ledger.time_s - time_s,
        energy_pj={name: pj - energy[name] for name, pj in ledger.energy_pj.items()},
        baseline_pj=fp32_pj(n**2, n**2),
        analog_solves=ledger.analog_solves - solves,
        analog_mvms=ledger.analog_mvms - mvms,
        iterations=refined.iterations,
        converged=refined.measured <= config.tol,
    )
