"""``cimc solve A.npy b.npy -o x.npy``: solve ``A x = b`` on the simulated closed-loop chip and print the error
against numpy, the refinement's iterations, the loop's slowest eigenvalue and settling time, the time and energy by
category, and the digital baseline's energy and the ratio (``--json``: the same as JSON)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cimc.compiler.files import InputFileError, npy_header, write_atomic
from cimc.compiler.flag_values import integer, number
from cimc.runtime.devices import DEVICES

#: The largest dimension of ``A`` or ``b`` ``cimc solve`` takes unless ``--max-size`` says otherwise: simulating a
#: system on the 64x64 arrays of milan-closed-loop took 5 s at n = 512 and 27 s at 1024, growing about as n^2.5, so
#: about 2.5 minutes at 2048 (and a quarter of an hour at 4096; a 5000x5000 one ran past 4 minutes unannounced).
MAX_SIZE = 2048


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
    parser.add_argument(
        "--tol", type=number(0, above=True), default=1e-6, help="refinement target on ||b - A x|| / ||b||"
    )
    parser.add_argument(
        "--max-iterations", type=integer(0), metavar="N", help="refinement steps at most (default: SolveConfig's, 100)"
    )
    parser.add_argument(
        "--matrix-bits", type=integer(2, 24), default=8, metavar="N", help="signed bits of the programmed A (2 to 24)"
    )
    parser.add_argument(
        "--max-size",
        type=integer(1),
        default=MAX_SIZE,
        metavar="N",
        help=f"refuse A or b larger than N along a dimension (default {MAX_SIZE}): larger systems take long",
    )
    parser.add_argument("--remedy", choices=["negate", "shift", "normal"], help="for a loop that cannot settle")
    parser.add_argument("--ideal", action="store_true", help="every analog effect off: the float64 solution")
    parser.add_argument("--device", choices=sorted(DEVICES), help="cell device model (default: the chip's device)")
    parser.add_argument("--seed", type=integer(0), default=0, help="seed of the simulated noise (default 0)")
    parser.add_argument("--json", action="store_true", help="print the stats as JSON")
    return parser


def _header(file: Path, what: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` file declares, read before its data (which may be large or absent)."""
    if not file.is_file():
        raise InputFileError(f"{file}: no such file ({what} is a .npy array)")
    with file.open("rb") as stream:
        try:
            shape, _, dtype = npy_header(stream)
        except ValueError:  # no .npy magic, a version numpy does not read, or a header that does not parse
            raise InputFileError(f"{file}: not a readable .npy array ({what} is saved with np.save)") from None
    return shape, dtype


def _load(path: str, what: str, dims: tuple[int, ...], max_size: int) -> np.ndarray:
    """``what`` (``A`` or ``b``) from the ``.npy`` at ``path``: its header checked first (a real or integer dtype,
    ``dims`` dimensions, each at most ``max_size`` and none empty), then its data (finite numbers)."""
    file = Path(path)
    shape, dtype = _header(file, what)
    if dtype.hasobject or dtype.kind not in "fiu":
        raise InputFileError(f"{file}: {what} must hold real numbers (a float or integer dtype), got dtype {dtype}")
    if len(shape) not in dims:
        wanted = " or ".join(f"{d}-D" for d in dims)
        raise InputFileError(f"{file}: {what} must be {wanted}, got shape {shape} ({len(shape)}-D)")
    if 0 in shape:
        raise InputFileError(f"{file}: {what} is empty (shape {shape}); a system needs at least one equation")
    if max(shape) > max_size:
        raise InputFileError(
            f"{file}: {what} of shape {shape} is larger than --max-size {max_size} along a dimension; a larger "
            "system takes minutes to hours to simulate: raise --max-size to solve it anyway"
        )
    try:
        array = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise InputFileError(
            f"{file}: not a readable .npy array (truncated or damaged); save it with np.save"
        ) from None
    values = np.asarray(array, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        index = tuple(int(i) for i in bad[0])
        raise InputFileError(f"{file}: {what} holds {values[index]} at {list(index)}; give finite numbers")
    return values


def _matching(a: np.ndarray, b: np.ndarray, args: argparse.Namespace) -> None:
    """Refuse a right-hand side whose rows are not ``A``'s, or a non-square ``A`` without least squares."""
    m, n = a.shape
    if b.shape[0] != m:
        raise InputFileError(
            f"{args.rhs}: b of shape {b.shape} does not match A of shape {a.shape} ({args.matrix}): b must be [{m}] "
            f"or [{m}, k]"
        )
    if m != n and args.remedy != "normal":
        raise InputFileError(
            f"{args.matrix}: A is {m}x{n}, not square; --remedy normal solves it in the least-squares sense"
        )


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


def _check_output(args: argparse.Namespace) -> None:
    """Refuse, before any work, an ``-o`` that names a folder or one of the inputs (it would replace it)."""
    if not args.output:
        return
    target = Path(args.output)
    if target.is_dir():
        raise InputFileError(f"-o {target}: is a folder; name the .npy file to write")
    for path in (args.matrix, args.rhs):
        if target.resolve() == Path(path).resolve():
            raise InputFileError(f"-o {target}: is also the input {path}; writing x would replace it")


def _progress_line(done: int, total: int) -> None:
    """One line on stderr, rewritten as each leaf block of a long solve (more than one block) is set up."""
    if total > 1:
        print(f"\rcimc solve: block {done} of {total} set up", end="", file=sys.stderr, flush=True)


def cmd_solve(args: argparse.Namespace) -> int:
    """``cimc solve A.npy b.npy -o x.npy``."""
    from cimc.ir.target.chip import load_chip
    from cimc.runtime.closed_loop import SolveConfig, SolveError, closed_loop_chip, solve

    _check_output(args)
    chip = closed_loop_chip(load_chip(args.chip))
    a = _load(args.matrix, "A", (2,), args.max_size)
    b = _load(args.rhs, "b", (1, 2), args.max_size)
    _matching(a, b, args)
    config = SolveConfig(
        ideal=args.ideal,
        device=args.device,
        matrix_bits=args.matrix_bits,
        tol=args.tol,
        max_iterations=SolveConfig.max_iterations if args.max_iterations is None else args.max_iterations,
        remedy=args.remedy,
        seed=args.seed,
    )
    progress = _progress_line if sys.stderr.isatty() else None  # a line that changes with time: terminals only
    try:
        x, stats = solve(a, b, chip, config=config, progress=progress)
    except SolveError as exc:  # a matrix the chip cannot solve: singular, an unstable loop, saturated outputs
        raise InputFileError(f"{args.matrix}: {exc}") from None
    finally:
        if progress is not None:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
    if args.output:
        buffer = io.BytesIO()
        np.save(buffer, x)
        write_atomic(args.output, buffer.getvalue())
    data = stats.to_dict()
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else format_stats(data, a.shape))
    return 0
