"""Benchmark: the same compile on an idle and on a busy machine gives the same binary, byte for byte.

Usage: ``python benchmarks/deterministic_compile.py [--placement-effort 10]``

A CIFAR ResNet-18 (``benchmarks/lowering.py``'s, seeded weights, calibrated on 4 seeded standard-normal images as
``benchmarks/compile.py`` does) is compiled for the default chip by ``cimc compile`` twice, each in a fresh process:
once with the machine as it is (its load average printed: idle, at best), once with every core kept busy by a
spinning process besides (``busy_cores``), so the compiler gets a fraction of the CPU it had. Placement budgets are
work (CP-SAT's deterministic time, local search proposals and rounds), not seconds, so the two ``.cimb`` files must be
identical: the script prints both compile times, the placement's traffic x hops below the naive row-major
placement's (the figure the README reports), and exits 1 when the binaries differ.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from compile import prepare

#: The spinning process: says it has started (so the load is on before the compile starts), then never stops.
_SPIN = "import sys; sys.stdout.write('.'); sys.stdout.flush()\nwhile True: pass"


@contextlib.contextmanager
def busy_cores(count: int | None = None) -> Iterator[None]:
    """Keep ``count`` cores (default: every core this process may use) busy with spinning processes for as long as
    the block runs; each has started before the block does, and each is killed after it."""
    count = count or len(os.sched_getaffinity(0))
    spinners = [subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE) for _ in range(count)]
    try:
        for spinner in spinners:
            assert spinner.stdout is not None and spinner.stdout.read(1) == b"."
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def compile_once(model: Path, calib: Path, output: Path, effort: float) -> float:
    """``cimc compile`` of ``model`` to ``output`` in a fresh process; its wall time in seconds."""
    command = [sys.executable, "-m", "cimc.compiler.cli", "compile", str(model), "--calib", str(calib)]
    command += ["-o", str(output), "--placement-effort", f"{effort:g}", "--seed", "0", "--workers", "1"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--placement-effort", type=float, default=10.0, help="the place pass's effort (default 10, the compiler's)"
    )
    args = parser.parse_args()
    from cimc.runtime.binary import load_binary

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model = prepare("resnet18_cifar", {}, scratch)
        assert model.calib is not None
        idle_path, busy_path = scratch / "idle.cimb", scratch / "busy.cimb"
        idle_load = os.getloadavg()[0]
        idle_s = compile_once(model.path, model.calib, idle_path, args.placement_effort)
        cores = len(os.sched_getaffinity(0))
        with busy_cores(cores):
            busy_s = compile_once(model.path, model.calib, busy_path, args.placement_effort)
        idle, busy = idle_path.read_bytes(), busy_path.read_bytes()
        placement = load_binary(idle_path).report["placement"]
    below = 1 - placement["objective"] / placement["naive_objective"]
    same = idle == busy
    print(f"CIFAR ResNet-18 on the default chip, place effort {args.placement_effort:g}, seed 0, 1 worker")
    rows = [
        (f"compile as the machine is (1-minute load average {idle_load:.1f} on {cores} cores)", idle_s),
        (f"compile with all {cores} cores kept busy besides", busy_s),
    ]
    width = max(len(label) for label, _ in rows)
    for label, seconds in rows:
        print(f"{label + ':':<{width + 1}} {seconds:6.1f} s")
    print(
        f"placement: {placement['status']}, traffic x hops {placement['objective']:,} bytes per sample, "
        f"{below:.1%} below row-major ({placement['naive_objective']:,})"
    )
    digests = [hashlib.sha256(data).hexdigest()[:16] for data in (idle, busy)]
    print(f"binaries: {len(idle):,} and {len(busy):,} bytes, sha256 {digests[0]} and {digests[1]}: ", end="")
    print("byte-identical" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
