"""Inverse kinematics of a planar robot arm with many joints by damped least squares on the closed-loop chip.

Usage: ``python examples/inverse_kinematics.py [--joints 32] [--damping 0.3] [--tol 1e-6] [--ideal] [--seed 0]``

The arm has n revolute joints in a plane, its links of equal length 1 / n (1 m of reach); joint i turns every link
from i on, so the end effector sits at sum_k (cos, sin)(q_0 + ... + q_k) / n. It starts gently curled (every joint
at 0.1 rad) and must reach a target: the end effector of a random configuration (seeded; angles in [-0.5, 0.5]
rad), so the target is reachable. Each iteration moves the joints by the damped least-squares step (Wampler,
"Manipulator inverse kinematic solutions based on vector formulations and damped least-squares methods", IEEE
Trans. SMC 1986)

    dq = (J^T J + lambda^2 I)^-1 J^T e,

J the 2 x n Jacobian of the end effector, e the error from it to the target, lambda the damping. J^T J + lambda^2
I is n x n, symmetric positive definite (its eigenvalues are lambda^2, n - 2 times, and lambda^2 plus J J^T's), and
``cimc.runtime.solve`` solves it in one analog step and ``--tol`` refinement; the arm stops when the end effector is
within 1e-4 m of the target. The same iteration with numpy's solver is the reference. The damping sets the
condition number, about 1 + ||J||^2 / lambda^2: 66 at the default 0.3 for 32 joints, where the chip's 8-bit
matrix still lets refinement converge; at 0.2 or 0.1 (590) the loop amplifies the op-amps' input offsets alone beyond
the output swing, and the chip refuses the system (the script stops with that one line).

The table gives the solver's figures over all iterations (the worst step's error against numpy, the work, time and
energy summed, the digital LU baseline's energy), then the arm's iterations and final distance to the target, the
chip's and numpy's. The outer loop corrects the inner one's errors: a loose ``--tol 1e-2`` reaches the target in
about as many arm iterations with fewer analog steps.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
from poisson import print_table, solve_figures, solve_rows  # the figures and table every example prints

from cimc.runtime import SolveStats, solve
from cimc.runtime.closed_loop import SaturatedOutputError

REACHED_M = 1e-4  # the end effector's distance to the target that ends the iterations
MAX_ARM_ITERATIONS = 200

#: Solves one iteration's system (J^T J + lambda^2 I) dq = J^T e: (matrix, right-hand side) -> dq.
StepSolver = Callable[[np.ndarray, np.ndarray], np.ndarray]


def joint_positions(q: np.ndarray) -> np.ndarray:
    """The base, every joint after it and the end effector: [n + 1, 2] in m, for joint angles q [n]."""
    angles = np.cumsum(q)
    links = np.column_stack([np.cos(angles), np.sin(angles)]) / len(q)
    return np.vstack([np.zeros(2), np.cumsum(links, axis=0)])


def jacobian(q: np.ndarray) -> np.ndarray:
    """d(end effector) / dq [2, n]: turning joint i swings the end effector about joint i's position."""
    positions = joint_positions(q)
    lever = positions[-1] - positions[:-1]  # from each joint to the end effector
    return np.vstack([-lever[:, 1], lever[:, 0]])


def reach(target: np.ndarray, q: np.ndarray, damping: float, solve_step: StepSolver) -> tuple[int, float]:
    """Damped least-squares iterations from q to the target: (iterations, final distance in m)."""
    iterations = 0
    error = target - joint_positions(q)[-1]
    while np.linalg.norm(error) >= REACHED_M and iterations < MAX_ARM_ITERATIONS:
        j = jacobian(q)
        q = q + solve_step(j.T @ j + damping**2 * np.eye(len(q)), j.T @ error)
        error = target - joint_positions(q)[-1]
        iterations += 1
    return iterations, float(np.linalg.norm(error))


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Move the arm to the target with the chip's and numpy's solver, print the table and return its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joints", type=int, default=32, help="revolute joints (n; an n x n system each iteration)")
    parser.add_argument("--damping", type=float, default=0.3, help="lambda of the damped least squares")
    parser.add_argument("--tol", type=float, default=1e-6, help="refinement target on the relative residual")
    parser.add_argument("--ideal", action="store_true", help="an ideal circuit: every device and converter effect off")
    parser.add_argument("--seed", type=int, default=0, help="seed of the target and the device effects")
    args = parser.parse_args(argv)

    target = joint_positions(np.random.default_rng(args.seed).uniform(-0.5, 0.5, args.joints))[-1]
    start = np.full(args.joints, 0.1)
    runs: list[SolveStats] = []

    def closed_loop_step(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        dq, stats = solve(a, b, tol=args.tol, ideal=args.ideal, seed=args.seed + len(runs))
        runs.append(stats)
        return dq

    try:
        iterations, distance = reach(target, start, args.damping, closed_loop_step)
    except SaturatedOutputError as refusal:
        raise SystemExit(f"the chip refuses arm iteration {len(runs) + 1}'s system: {refusal}") from None
    numpy_iterations, numpy_distance = reach(target, start, args.damping, np.linalg.solve)
    result = solve_figures(runs)
    result |= {
        "arm_iterations": iterations,
        "distance_m": distance,
        "numpy_arm_iterations": numpy_iterations,
        "numpy_distance_m": numpy_distance,
    }
    print_table(
        f"Inverse kinematics of a {args.joints}-joint planar arm, damped least squares (lambda = {args.damping}): "
        f"one {args.joints} x {args.joints} solve an iteration, milan-closed-loop{' (ideal)' if args.ideal else ''}",
        [
            *solve_rows(result),
            ("arm iterations (chip / numpy)", f"{iterations} / {numpy_iterations}"),
            ("final distance to target", f"{distance:.2e} m"),
            ("  numpy's", f"{numpy_distance:.2e} m"),
        ],
    )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
