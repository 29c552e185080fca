"""``cimc solve A.npy b.npy -o x.npy``: solve ``A x = b`` on the simulated closed-loop chip and print the error
against numpy, the refinement's iterations, the loop's slowest eigenvalue and settling time, the time and energy by
category, and the digital baseline's energy and the ratio (``--json``: the same as JSON)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from cimc.compiler.files import InputFileError, write_atomic
from cimc.runtime.devices import DEVICES


def add_solve_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``solve`` subcommand's parser."""
    parser = sub.add_parser(
        "solve",
        help="solve A x = b in one analog step on a closed-loop chip, refined to a tolerance; least squares with "
        "--remedy normal",
    )
    parser.add_argument("matrix", metavar="A.npy", help="the matrix A, [n, n] (or [m, n] with --remedy normal)")
    parser.add_argument("rhs", metavar="b.npy", help="the right-hand side b, [m] or [m, k] (k right-hand sides)")
    parser.add_argument("-o", "--output", metavar="x.npy", help="write the solution x to this .npy")
    parser.add_argument("--chip", default="milan-closed-loop", metavar="NAME|FILE", help="a chip with [opamp]")
    parser.add_argument("--tol", type=float, default=1e-6, help="refinement target on ||b - A x|| / ||b||")
    parser.add_argument(
        "--max-iterations", type=int, metavar="N", help="refinement steps at most (default: SolveConfig's, 100)"
    )
    parser.add_argument("--matrix-bits", type=int, default=8, metavar="N", help="signed bits of the programmed A")
    parser.add_argument("--remedy", choices=["negate", "shift", "normal"], help="for a loop that cannot settle")
    parser.add_argument("--ideal", action="store_true", help="every analog effect off: the float64 solution")
    parser.add_argument("--device", choices=sorted(DEVICES), help="cell device model (default: the chip's device)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated noise (default 0)")
    parser.add_argument("--json", action="store_true", help="print the stats as JSON")
    return parser


def _load(path: str, what: str) -> np.ndarray:
    file = Path(path)
    if not file.is_file():
        raise InputFileError(f"{file}: no such file ({what} is a .npy array)")
    try:
        array = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputFileError(f"{file}: not a readable .npy file ({exc})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise InputFileError(f"{file}: {what} must be a numeric .npy array")
    return array


def format_stats(stats: dict[str, Any], shape: tuple[int, ...]) -> str:
    """The terminal form of ``SolveStats.to_dict()``."""
    error = "n/a (numpy cannot solve it)" if stats["error"] is None else f"{stats['error']:.3g}"
    state = "converged" if stats["converged"] else "NOT converged"
    lines = [
        f"solved a {'x'.join(map(str, shape))} system: error vs numpy {error}, residual {stats['residual']:.3g} "
        f"({state} in {stats['iterations']} refinement iterations; first analog step's error "
        f"{stats['first_step_error']:.3g})",
        f"  analog solves {stats['analog_solves']:,}, analog MVMs {stats['analog_mvms']:,}, digital ops "
        f"{stats['digital_ops']:,}, leaf blocks {stats['blocks']}, programmings {stats['programmings']}",
        f"  loop: smallest eigenvalue {stats['min_eigenvalue']:.4g}, settling {stats['settling_time_s'] * 1e6:.3g} us"
        + (f", shift {stats['shift']:.4g}" if stats["shift"] else ""),
        f"  time {stats['time_s'] * 1e6:.4g} us; energy {stats['energy_total_pj'] / 1e3:.4g} nJ ("
        + ", ".join(f"{name} {pj / 1e3:.3g}" for name, pj in stats["energy_pj"].items())
        + ")",
        f"  digital baseline (fp32 LU/QR + DRAM) {stats['baseline_total_pj'] / 1e3:.4g} nJ: "
        f"ratio {stats['ratio']:.3g}x",
    ]
    if stats.get("reason"):
        lines.append(f"  why: {stats['reason']}")
    return "\n".join(lines)


def cmd_solve(args: argparse.Namespace) -> int:
    """``cimc solve A.npy b.npy -o x.npy``."""
    from cimc.ir.target.chip import load_chip
    from cimc.runtime.closed_loop import SolveConfig, solve

    a, b = _load(args.matrix, "A"), _load(args.rhs, "b")
    try:
        config = SolveConfig(
            ideal=args.ideal,
            device=args.device,
            matrix_bits=args.matrix_bits,
            tol=args.tol,
            max_iterations=SolveConfig.max_iterations if args.max_iterations is None else args.max_iterations,
            remedy=args.remedy,
            seed=args.seed,
        )
        x, stats = solve(a, b, load_chip(args.chip), config=config)
    except ValueError as exc:  # bad shapes or values, an unstable loop, a chip with no op-amps
        raise InputFileError(f"{args.matrix}: {exc}") from None
    if args.output:
        buffer = io.BytesIO()
        np.save(buffer, x)
        write_atomic(args.output, buffer.getvalue())
    data = stats.to_dict()
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else format_stats(data, a.shape))
    return 0
