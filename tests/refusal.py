"""The contract a bad input meets through the ``cimc`` command, checked in-process.

A refusal is exit status 1 (2 for a flag that does not parse), exactly one line on stderr that starts
``cimc: error:`` and names what is at fault, no traceback, no ``internal error``, no output written, no input
changed, no temporary file left beside an output, and no more than ``MEMORY_LIMIT`` bytes allocated on the way.
"""

from __future__ import annotations

import contextlib
import io
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from cimc.compiler.cli import main

#: The most a refusal may allocate (numpy's buffers are traced by ``tracemalloc``).
MEMORY_LIMIT = 2 << 30


def _snapshot(paths: Sequence[Path]) -> dict[Path, bytes | None]:
    return {p: p.read_bytes() if p.is_file() else None for p in paths}


def _temporaries(folders: set[Path]) -> list[Path]:
    return sorted(p for folder in folders if folder.is_dir() for p in folder.glob(".*.tmp"))


def run_cimc(argv: Sequence[str]) -> tuple[int, str, str, int]:
    """Run ``cimc argv`` in this process: exit status, stdout, stderr and the peak of traced allocations."""
    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(argv))
            except SystemExit as exc:  # argparse's own exit
                status = exc.code if isinstance(exc.code, int) else 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return status, out.getvalue(), err.getvalue(), peak


def refused(
    argv: Sequence[str],
    *names: str,
    inputs: Sequence[Path] = (),
    outputs: Sequence[Path] = (),
) -> str:
    """Assert that ``cimc argv`` refuses in one line naming each of ``names``; return that line.

    ``inputs`` must keep their bytes; ``outputs`` must not be created (or, if they existed, not be changed), and
    their folders must hold no temporary file afterwards.
    """
    before = _snapshot([*inputs, *outputs])
    status, _, err, peak = run_cimc(argv)
    lines = err.splitlines()
    assert status in (1, 2), f"exit status {status} for {argv}: {err}"
    assert len(lines) == 1 and lines[0].startswith("cimc: error: "), f"not one error line for {argv}:\n{err}"
    assert "internal error" not in err and "Traceback" not in err, err
    for name in names:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    assert _snapshot([*inputs, *outputs]) == before, f"{argv} changed a file"
    assert not _temporaries({p.parent for p in outputs}), f"{argv} left a temporary file"
    assert peak < MEMORY_LIMIT, f"{argv} allocated {peak / 2**30:.1f} GiB"
    return lines[0]


def refused_or_accepted(argv: Sequence[str]) -> int:
    """Assert that ``cimc argv`` either succeeds or refuses in one ``cimc: error:`` line, never an internal error
    or a traceback, within ``MEMORY_LIMIT``; return the exit status. For fuzzing, where a mutant may be valid."""
    status, _, err, peak = run_cimc(argv)
    assert "Traceback" not in err and "internal error" not in err, err
    refusal = status in (1, 2) and len(err.splitlines()) == 1 and err.startswith("cimc: error: ")
    assert status == 0 or refusal, f"exit status {status} for {argv}: {err}"
    assert peak < MEMORY_LIMIT, f"{argv} allocated {peak / 2**30:.1f} GiB"
    return status
