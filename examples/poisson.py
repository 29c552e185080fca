"""The 2D Poisson equation solved in one analog step: -Laplace(u) = f on the unit square, Dirichlet boundary.

Usage: ``python examples/poisson.py [--grid 8] [--ideal] [--seed 0]``

The problem has a closed-form solution, u(x, y) = exp(x) sin(pi y), so that both the source f = (pi^2 - 1) u and the
boundary values (sin(pi y) on the side x = 0, e sin(pi y) on x = 1, 0 on the others) are non-trivial. The 5-point
finite-difference stencil on an N x N grid of interior points (spacing h = 1 / (N + 1), numbered row by row) turns
it into A u = b with A = 4 on the diagonal and -1 for each neighbour (the stencil times h^2: symmetric positive
definite, its small integers programmed exactly), b = h^2 f plus the boundary values next to each point.

The default N = 8 gives 64 unknowns, one 64 x 64 array of the ``milan-closed-loop`` chip; ``--grid 16`` gives 256,
which the solver splits by recursive block inversion. The system is solved by ``cimc.runtime.solve`` (one analog
closed-loop step, then mixed-precision refinement to a relative residual of 1e-6) and by numpy's LU.

The table gives the solve's error against numpy's solution, the work (refinement iterations, analog steps), the
simulated time and energy with the digital LU baseline's energy, and the discretization error: the largest
difference between the discrete solution and the closed form at the grid points. That one is O(h^2), four times
smaller for every halving of h, and it sits orders of magnitude above the analog solver's error.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from cimc.runtime import SolveStats, solve


def laplacian(n: int) -> np.ndarray:
    """h^2 times the 5-point -Laplace on an n x n grid of interior points numbered row by row: 4 on the diagonal,
    -1 for each of the (up to four) neighbours inside the grid."""
    second_difference = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    return np.kron(np.eye(n), second_difference) + np.kron(second_difference, np.eye(n))


def exact(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The closed-form solution u(x, y) = exp(x) sin(pi y)."""
    return np.exp(x) * np.sin(np.pi * y)


def right_hand_side(n: int) -> np.ndarray:
    """b = h^2 f at the interior points plus, for each point next to the boundary, the boundary values it touches."""
    h = 1.0 / (n + 1)
    coordinates = np.arange(n + 2) * h  # the boundary rows and columns included
    x, y = np.meshgrid(coordinates, coordinates)  # [y index, x index]
    u = exact(x, y)
    source = (np.pi**2 - 1) * u  # f = -Laplace(exp(x) sin(pi y))
    b = h * h * source[1:-1, 1:-1]
    b[0, :] += u[0, 1:-1]
    b[-1, :] += u[-1, 1:-1]
    b[:, 0] += u[1:-1, 0]
    b[:, -1] += u[1:-1, -1]
    return b.ravel()


def discretization_error(n: int, u: np.ndarray) -> float:
    """The largest difference between a solution u of the n x n system and the closed form at the grid points."""
    interior = np.arange(1, n + 1) / (n + 1)
    x, y = np.meshgrid(interior, interior)
    return float(np.max(np.abs(u - exact(x, y).ravel())))


def solve_figures(runs: list[SolveStats]) -> dict[str, float]:
    """The figures every example prints and its test checks, over one or several solves: the worst errors, the
    summed work, simulated time and energy, and the digital baseline's energy against it."""
    energy = sum(stats.energy_total_pj for stats in runs)
    baseline = sum(stats.baseline_total_pj for stats in runs)
    return {
        "error": float(np.max([stats.error for stats in runs])),  # np.max: a NaN of a diverged solve shows
        "residual": float(np.max([stats.residual for stats in runs])),
        "converged": all(stats.converged for stats in runs),
        "first_step_error": float(np.max([stats.first_step_error for stats in runs])),
        "iterations": sum(stats.iterations for stats in runs),
        "analog_solves": sum(stats.analog_solves for stats in runs),
        "time_s": sum(stats.time_s for stats in runs),
        "energy_pj": energy,
        "energy_breakdown_pj": sum(sum(stats.energy_pj.values()) for stats in runs),
        "baseline_pj": baseline,
        "ratio": baseline / energy,
    }


def solve_rows(figures: dict[str, float]) -> list[tuple[str, str]]:
    """The table rows of ``solve_figures``."""
    return [
        ("error vs numpy (relative)", f"{figures['error']:.2e}"),
        ("residual (relative)", f"{figures['residual']:.2e}{'' if figures['converged'] else ' (not converged)'}"),
        ("first analog step error", f"{figures['first_step_error']:.2e}"),
        ("refinement iterations", f"{figures['iterations']}"),
        ("analog steps", f"{figures['analog_solves']}"),
        ("simulated time", f"{figures['time_s'] * 1e3:.3f} ms"),
        ("simulated energy", f"{figures['energy_pj']:.4g} pJ (breakdown total {figures['energy_breakdown_pj']:.4g})"),
        ("digital LU baseline energy", f"{figures['baseline_pj']:.4g} pJ"),
        ("baseline / closed loop", f"{figures['ratio']:.3g}x"),
    ]


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    """A title and two aligned columns."""
    print(title)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Solve the grid's system with cimc and numpy, print the table and return its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=8, help="interior points per side (N; N^2 unknowns)")
    parser.add_argument("--tol", type=float, default=1e-6, help="refinement target on the relative residual")
    parser.add_argument("--ideal", action="store_true", help="an ideal circuit: every device and converter effect off")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated device effects")
    args = parser.parse_args(argv)

    n = args.grid
    a, b = laplacian(n), right_hand_side(n)
    u, stats = solve(a, b, tol=args.tol, ideal=args.ideal, seed=args.seed)
    result = solve_figures([stats])
    result |= {
        "unknowns": n * n,
        "blocks": stats.blocks,
        "discretization_error": discretization_error(n, u),
        "numpy_discretization_error": discretization_error(n, np.linalg.solve(a, b)),
    }
    print_table(
        f"Poisson -Laplace(u) = f on a {n} x {n} interior grid: {n * n} unknowns, {stats.blocks} block(s), "
        f"milan-closed-loop{' (ideal)' if args.ideal else ''}",
        [
            *solve_rows(result),
            ("discretization error (max)", f"{result['discretization_error']:.3e}"),
            ("  numpy's", f"{result['numpy_discretization_error']:.3e}"),
        ],
    )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
