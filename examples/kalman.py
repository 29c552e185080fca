"""Kalman-filter tracking of ballistic targets, the gain computed by the closed-loop chip at every step.

Usage: ``python examples/kalman.py [--targets 16] [--steps 50] [--ideal] [--seed 0]``

Each target flies under gravity: its state is (x, y, vx, vy) in m and m/s, launched from a random point at 40 to
60 m/s and 45 to 75 degrees (seeded), sampled every 0.1 s; a white-noise acceleration (spectral density 0.5 m^2/s^3:
wind, drag) perturbs it, and a radar measures its position with a Gaussian error of its own standard deviation (2
to 10 m: each target at its own range). The constant-velocity model F with gravity as a known input, the process
noise Q of that acceleration and the measurement noise R are the textbook ones (Bar-Shalom, Li & Kirubarajan,
"Estimation with Applications to Tracking and Navigation", 2001, section 6.3.2).

At every step the filter needs the gain K = P H^T S^-1, S = H P H^T + R the innovation covariance (2 x 2 per
target). All targets are tracked jointly: their S blocks make one block-diagonal 2M x 2M system (M = 16 targets:
32 unknowns on a 64 x 64 array), and their (P H^T)^T = H P blocks, stacked, its four right-hand sides, so that one
``cimc.runtime.solve`` of S K^T = H P gives every target's gain. The same filter with numpy's solver is the
reference.

The table gives the solver's figures over the whole track (the worst step's error against numpy, the work, time and
energy summed over the steps, the digital LU baseline's energy) and the root-mean-square position error of the
filtered track, of numpy's filter and of the raw measurements, against the true positions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
from poisson import print_table, solve_figures, solve_rows  # the figures and table every example prints

from cimc.runtime import SolveStats, solve

DT = 0.1  # s between measurements
GRAVITY = 9.81  # m/s^2
ACCELERATION_DENSITY = 0.5  # m^2/s^3, the spectral density of the white-noise acceleration

F = np.array([[1, 0, DT, 0], [0, 1, 0, DT], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
GRAVITY_STEP = np.array([0, -GRAVITY * DT**2 / 2, 0, -GRAVITY * DT])  # what gravity adds to the state in one step
H = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=float)  # the radar sees the position
_Q_AXIS = ACCELERATION_DENSITY * np.array([[DT**3 / 3, DT**2 / 2], [DT**2 / 2, DT]])
Q = np.kron(_Q_AXIS, np.eye(2))  # (position, velocity) of one axis, interleaved with the other's as (x, y, vx, vy)

#: Solves the targets' gain systems S_i K_i^T = H P_i: S [M, 2, 2], H P [M, 2, 4] -> K^T [M, 2, 4].
GainSolver = Callable[[np.ndarray, np.ndarray], np.ndarray]


def simulate(targets: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True states [steps, M, 4], position measurements [steps, M, 2] and each target's measurement sigma [M]."""
    speed = rng.uniform(40, 60, targets)
    angle = np.radians(rng.uniform(45, 75, targets))
    state = np.column_stack(
        [rng.uniform(0, 100, targets), np.zeros(targets), speed * np.cos(angle), speed * np.sin(angle)]
    )
    sigma = rng.uniform(2, 10, targets)
    states = []
    for _ in range(steps):
        states.append(state)
        state = state @ F.T + GRAVITY_STEP + rng.multivariate_normal(np.zeros(4), Q, targets)
    truth = np.array(states)
    measurements = truth[:, :, :2] + sigma[:, None] * rng.standard_normal((steps, targets, 2))
    return truth, measurements, sigma


def kalman_filter(measurements: np.ndarray, sigma: np.ndarray, solve_gain: GainSolver) -> np.ndarray:
    """The filtered states [steps, M, 4]. The track starts at the first measurement, at rest, with a 100 m/s
    velocity uncertainty."""
    targets = measurements.shape[1]
    r = sigma[:, None, None] ** 2 * np.eye(2)
    state = np.concatenate([measurements[0], np.zeros((targets, 2))], axis=1)
    p = np.diag([1.0, 1.0, 0.0, 0.0]) * sigma[:, None, None] ** 2 + np.diag([0.0, 0.0, 1e4, 1e4])
    filtered = []
    for z in measurements:
        s = H @ p @ H.T + r
        gain = solve_gain(s, H @ p).transpose(0, 2, 1)  # K = (S^-1 H P)^T, P symmetric
        state = state + np.einsum("mij,mj->mi", gain, z - state @ H.T)
        p = (np.eye(4) - gain @ H) @ p
        filtered.append(state)
        state = state @ F.T + GRAVITY_STEP
        p = F @ p @ F.T + Q
    return np.array(filtered)


def block_diagonal(blocks: np.ndarray) -> np.ndarray:
    """The [M * n, M * n] matrix with the [M, n, n] blocks on its diagonal."""
    count, n, _ = blocks.shape
    matrix = np.zeros((count * n, count * n))
    for i, block in enumerate(blocks):
        matrix[i * n : (i + 1) * n, i * n : (i + 1) * n] = block
    return matrix


def rms(positions: np.ndarray, truth: np.ndarray) -> float:
    """The root-mean-square distance between positions [steps, M, 2] and the true ones."""
    return float(np.sqrt(np.mean(np.sum((positions - truth[:, :, :2]) ** 2, axis=-1))))


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Track the targets with the closed-loop gain and with numpy's, print the table and return its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=16, help="targets tracked jointly (M; 2M unknowns)")
    parser.add_argument("--steps", type=int, default=50, help="measurements per target, 0.1 s apart")
    parser.add_argument("--tol", type=float, default=1e-6, help="refinement target on the relative residual")
    parser.add_argument("--ideal", action="store_true", help="an ideal circuit: every device and converter effect off")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the trajectories, the noise and the device effects"
    )
    args = parser.parse_args(argv)

    truth, measurements, sigma = simulate(args.targets, args.steps, np.random.default_rng(args.seed))
    runs: list[SolveStats] = []

    def closed_loop_gain(s: np.ndarray, hp: np.ndarray) -> np.ndarray:
        gain_t, stats = solve(
            block_diagonal(s), hp.reshape(-1, 4), tol=args.tol, ideal=args.ideal, seed=args.seed + len(runs)
        )
        runs.append(stats)
        return gain_t.reshape(hp.shape)

    filtered = kalman_filter(measurements, sigma, closed_loop_gain)
    reference = kalman_filter(measurements, sigma, np.linalg.solve)
    result = solve_figures(runs)
    result |= {
        "rms_filtered_m": rms(filtered[:, :, :2], truth),
        "rms_numpy_m": rms(reference[:, :, :2], truth),
        "rms_measured_m": rms(measurements, truth),
        "track_difference": float(np.max(np.abs(filtered - reference)) / np.max(np.abs(reference))),
    }
    print_table(
        f"Kalman tracking of {args.targets} ballistic targets, {args.steps} steps: a {2 * args.targets} x "
        f"{2 * args.targets} S K^T = H P a step, milan-closed-loop{' (ideal)' if args.ideal else ''}",
        [
            *solve_rows(result),
            ("RMS position error, filtered", f"{result['rms_filtered_m']:.4f} m"),
            ("  numpy's filter", f"{result['rms_numpy_m']:.4f} m"),
            ("  raw measurements", f"{result['rms_measured_m']:.4f} m"),
            ("track vs numpy's (max, relative)", f"{result['track_difference']:.2e}"),
        ],
    )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
