"""Benchmark: closed-loop solves of ``A x = b`` on the simulated ``milan-closed-loop`` chip against a digital LU
solver.

Usage: ``python benchmarks/solve.py [--repeat 3] [--tol 1e-6]``

For n = 16, 32, 64, 128 and 256 (seeded symmetric positive definite matrices with eigenvalues from 1 to 10, one
seeded right-hand side) it prints the wall time of ``solve()`` in the simulator (the best of ``--repeat`` runs after
a warm-up), the refinement's iterations, analog steps and reached error, the simulated latency and energy, the
digital baseline's energy (float32 LU and the matrix read once from DRAM, ``cimc.runtime.energy``) and the ratio.
Above 64 the chip's one pair of arrays is reprogrammed at every step of the block inversion.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from import_canonicalize import table

from cimc.runtime import solve

SIZES = (16, 32, 64, 128, 256)
SEED = 0


def spd(n: int, rng: np.random.Generator) -> np.ndarray:
    """A symmetric positive definite matrix with eigenvalues from 1 to 10, geometrically spaced."""
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q @ np.diag(np.geomspace(1.0, 10.0, n)) @ q.T


def row(n: int, repeat: int, tol: float) -> list[str]:
    rng = np.random.default_rng(SEED + n)
    a, b = spd(n, rng), rng.standard_normal(n)
    solve(a, b, tol=tol)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        _, stats = solve(a, b, tol=tol)
        times.append(time.perf_counter() - start)
    return [
        str(n),
        f"{min(times) * 1e3:.1f}",
        str(stats.iterations),
        f"{stats.analog_solves:,} / {stats.analog_mvms:,}",
        f"{stats.error:.1e}",
        f"{stats.settling_time_s * 1e6:.2f}",
        f"{stats.time_s * 1e6:,.1f}",
        f"{stats.energy_total_pj / 1e3:,.1f}",
        f"{stats.baseline_total_pj / 1e3:,.1f}",
        f"{stats.ratio:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tol", type=float, default=1e-6)
    args = parser.parse_args()
    header = [
        "n",
        "solve() ms",
        "iterations",
        "analog solves / MVMs",
        "error vs numpy",
        "settling us",
        "latency us",
        "energy nJ",
        "LU baseline nJ",
        "ratio",
    ]
    print(table(header, [row(n, args.repeat, args.tol) for n in SIZES]))


if __name__ == "__main__":
    main()
