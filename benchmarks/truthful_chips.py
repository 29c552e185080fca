"""Benchmark: the figures of README's "Truthful chips" tables, each made the way a user makes it, by ``cimc compile``
and ``cimc eval`` (the same argument parser and evaluation code, called in this process) and ``cimc.runtime.solve``.

Usage: ``python benchmarks/truthful_chips.py [--quick] [--only energy converters devices solve aihwkit]``

It prints one Markdown table per section:

- ``energy``: one MVM over a full array of each chip against the chip's paper (HERMES one-phase and four-phase,
  Mythic's 0.5 pJ a MAC), then the digits CNN's energy on each chip at its utilization and against both digital
  baselines (``benchmarks/energy.py``'s two tables);
- ``converters``: the bundled digits CNN and MLP with every analog effect off (``cimc eval --ideal``) on the test
  split, against fp32 on onnxruntime: on the default chip with exact, 6-bit and 5-bit ADCs (calibrated and
  worst-case ranges) and 4-bit weights and inputs; on ``hermes``, ``mythic-m1076`` and ``isaac`` with exact ADCs
  (``--adc-bits 0``), the chip's ADCs over calibrated ranges (the default) and over the worst case
  (``--adc-range full``);
- ``devices``: the digits CNN on the default chip (and on ``hermes``) with each device preset's effects, over 3
  noise seeds (1 with ``--quick``): top-1 mean and sample standard deviation, as ``cimc eval --seeds 3`` prints them;
- ``solve``: 1-D Poisson matrices at n = 64, 128, 256 and a 2-D 16 x 16 one on ``milan-closed-loop``, refined to a
  relative residual of 1e-6 (a seeded standard-normal right-hand side);
- ``aihwkit``: the digits MLP and CNN on the ``aihwkit`` chip 1 s, 1 h, 1 d and 1 y after programming, over
  ``--aihwkit-seeds`` seeds, beside aihwkit 1.2.0's own figures recorded by ``benchmarks/aihwkit_side_by_side.py``
  in ``benchmarks/results/aihwkit-1.2.0.json`` (read, not computed: aihwkit is not a dependency); README's table
  is ``--only aihwkit --aihwkit-seeds 300`` (about 5 minutes).

Everything is seeded: the same figures every run. Measured on a 2-core machine shared with other work: 77 to 122 s
in all (the devices two thirds of it, the converters 12 s, the energy 4 s, the solves 3 s); ``--quick``: 32 s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import energy
import numpy as np
from import_canonicalize import MODELS_DIR, table

from cimc.compiler.cli import build_parser
from cimc.compiler.cli import main as cimc
from cimc.compiler.pipeline import CrossbarOptions
from cimc.compiler.simulate_cli import evaluate_binary
from cimc.ir.target.chip import load_chip
from cimc.runtime import solve

TEST = MODELS_DIR / "digits_test.npz"
AIHWKIT_RESULTS = Path(__file__).resolve().parent / "results" / "aihwkit-1.2.0.json"
SECTIONS = ("energy", "converters", "devices", "solve", "aihwkit")


# --- cimc compile and cimc eval, as the command line runs them ------------------------------------------------------


def compile_model(model: Path, binary: Path, flags: list[str]) -> None:
    """``cimc compile MODEL -o BINARY FLAGS``; its report lines are not shown."""
    with contextlib.redirect_stdout(io.StringIO()):
        status = cimc(["compile", str(model), "-o", str(binary), *flags])
    if status:
        raise RuntimeError(f"cimc compile {model} {' '.join(flags)} failed with status {status}")


def evaluate(binary: Path, model: Path, flags: list[str]) -> dict[str, Any]:
    """``cimc eval BINARY --data models/digits_test.npz --reference MODEL FLAGS --json``'s result."""
    args = build_parser().parse_args(["eval", str(binary), "--data", str(TEST), "--reference", str(model), *flags])
    result, _ = evaluate_binary(args, binary, model, label=binary.name)
    return result


def accuracy(result: dict[str, Any]) -> str:
    """Top-1, with its spread over seeds where there are several."""
    if len(result["seeds"]) == 1:
        return f"{result['accuracy']:.4f}"
    return f"{result['accuracy']:.4f} +- {result['accuracy_std']:.4f}"


class Binaries:
    """Compiled binaries in a scratch folder, each compiled once per (model, flags)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.paths: dict[tuple[str, tuple[str, ...]], Path] = {}

    def get(self, model: Path, flags: list[str]) -> Path:
        """The binary of ``cimc compile MODEL FLAGS``."""
        key = (model.name, tuple(flags))
        if key not in self.paths:
            self.paths[key] = self.scratch / f"{model.stem}.{len(self.paths)}.cimb"
            compile_model(model, self.paths[key], flags)
        return self.paths[key]

    def ideal(self, model: Path, flags: list[str]) -> str:
        """The model's top-1 with every analog effect off, compiled with ``flags``."""
        return accuracy(evaluate(self.get(model, flags), model, ["--ideal"]))


# --- energy ---------------------------------------------------------------------------------------------------------


def energy_tables(scratch: Path) -> str:
    """``benchmarks/energy.py``'s two tables for the digits CNN and every chip it lists."""
    full = [energy.full_array_row(chip, scratch) for chip in energy.CHIPS]
    model = MODELS_DIR / "digits_cnn.onnx"
    rows = [energy.row(model, chip, scratch) for chip in energy.CHIPS]
    return (
        "One MVM over a full array (arrays, DACs, ADCs; one vector of 8-bit inputs), against the chips' papers\n\n"
        + table(energy.FULL_ARRAY_HEADER, full)
        + "\n\nThe digits CNN: energy per inference at its utilization of the arrays, against the digital baselines\n\n"
        + table(energy.MODEL_HEADER, rows)
    )


# --- converters -----------------------------------------------------------------------------------------------------

#: The default chip's columns: heading and ``cimc compile`` flags (a pair: calibrated / worst-case range).
DEFAULT_CHIP_COLUMNS: list[tuple[str, list[list[str]]]] = [
    ("8-bit weights and inputs, the chip's 8-bit ADCs (exact here)", [[]]),
    ("6-bit ADCs, calibrated / worst-case range", [["--adc-bits", "6"], ["--adc-bits", "6", "--adc-range", "full"]]),
    ("5-bit ADCs, calibrated / worst-case range", [["--adc-bits", "5"], ["--adc-bits", "5", "--adc-range", "full"]]),
    ("4-bit weights and inputs", [["--weight-bits", "4", "--input-bits", "4"]]),
]
CONVERTER_CHIPS = ("hermes", "mythic-m1076", "isaac")
DIGITS = ("digits_mlp.onnx", "digits_cnn.onnx")


def converters_tables(binaries: Binaries) -> str:
    """The digits models with every analog effect off: on the default chip with narrower converters, and on three
    chips with their own converters, exact ADCs, and the chip's ADCs over calibrated and worst-case ranges."""
    default_rows, chip_rows = [], []
    for name in DIGITS:
        model = MODELS_DIR / name
        fp32 = evaluate(binaries.get(model, []), model, ["--ideal"])["reference_accuracy"]
        cells = [" / ".join(binaries.ideal(model, flags) for flags in pair) for _, pair in DEFAULT_CHIP_COLUMNS]
        default_rows.append([f"`{name}`", f"{fp32:.4f}", *cells])
        for chip in CONVERTER_CHIPS:
            options = CrossbarOptions.for_chip(load_chip(chip))
            converters = (
                f"{options.dac_bits}-bit DACs, {options.adc_bits}-bit ADCs, {options.cell_bits}-bit cells, "
                f"{options.array_rows}x{options.array_cols}"
            )
            chip_flags = ["--chip", chip]
            figures = [
                binaries.ideal(model, [*chip_flags, *flags])
                for flags in (["--adc-bits", "0"], [], ["--adc-range", "full"])
            ]
            chip_rows.append([f"`{name}`", f"`{chip}`", converters, f"{fp32:.4f}", *figures])
    default_header = ["model", "fp32 (onnxruntime)", *(heading for heading, _ in DEFAULT_CHIP_COLUMNS)]
    chip_header = [
        "model",
        "chip",
        "the chip's converters",
        "fp32",
        "exact ADCs (`--adc-bits 0`)",
        "chip's ADCs, calibrated (default)",
        "worst-case range (`--adc-range full`)",
    ]
    return (
        "The default chip, every analog effect off (`cimc eval --ideal`), digits test split\n\n"
        + table(default_header, default_rows)
        + "\n\nEach chip's own converters, every analog effect off\n\n"
        + table(chip_header, chip_rows)
    )


# --- devices --------------------------------------------------------------------------------------------------------

#: (chip, cells, setting, ``cimc eval`` flags) of each row.
DEVICE_ROWS: list[tuple[str, str, str, list[str]]] = [
    ("default", "pcm", "as programmed, no compensation", ["--device", "pcm", "--no-drift-compensation"]),
    ("default", "pcm", "as programmed, compensated", ["--device", "pcm"]),
    ("default", "pcm", "1 hour, compensated", ["--device", "pcm", "--drift-time", "1h"]),
    ("default", "pcm", "1 hour, no compensation", ["--device", "pcm", "--drift-time", "1h", "--no-drift-compensation"]),
    ("default", "pcm", "1 day, compensated", ["--device", "pcm", "--drift-time", "1d"]),
    ("default", "pcm", "1 year, compensated", ["--device", "pcm", "--drift-time", "1y"]),
    (
        "default",
        "pcm",
        "as programmed, output noise alone",
        ["--device", "pcm", "--no-programming-noise", "--no-flicker-noise", "--no-ir-drop"],
    ),
    ("default", "pcm-rasch2023", "1 hour, compensated", ["--device", "pcm-rasch2023", "--drift-time", "1h"]),
    ("default", "pcm-rasch2023", "1 day, compensated", ["--device", "pcm-rasch2023", "--drift-time", "1d"]),
    ("default", "pcm-rasch2023", "1 year, compensated", ["--device", "pcm-rasch2023", "--drift-time", "1y"]),
    ("default", "rram", "as programmed", ["--device", "rram"]),
    ("default", "rram", "3 program-and-verify iterations", ["--device", "rram", "--verify-iterations", "3"]),
    ("default", "nor-flash", "as programmed", ["--device", "nor-flash"]),
    ("hermes", "pcm", "1 hour, compensated", ["--device", "pcm", "--drift-time", "1h"]),
    (
        "hermes",
        "pcm",
        "1 hour, compensated, no output noise",
        ["--device", "pcm", "--drift-time", "1h", "--no-output-noise"],
    ),
]


def devices_table(binaries: Binaries, seeds: int) -> str:
    """The digits CNN with each device's effects, ``seeds`` noise seeds a row."""
    model = MODELS_DIR / "digits_cnn.onnx"
    rows = []
    for chip, cells, setting, flags in DEVICE_ROWS:
        binary = binaries.get(model, ["--chip", chip])
        result = evaluate(binary, model, ["--seeds", str(seeds), *flags])
        rows.append([f"`{chip}`", f"`{cells}`", setting, f"`{' '.join(flags)}`", accuracy(result)])
    header = ["chip", "cells", "setting", "`cimc eval` flags", f"top-1 (mean +- sample std, {seeds} seeds)"]
    return (
        f"The digits CNN on the simulated chip: `cimc eval digits_cnn.cimb --data models/digits_test.npz --seeds "
        f"{seeds} FLAGS`\n\n" + table(header, rows)
    )


# --- closed loop ----------------------------------------------------------------------------------------------------


def second_difference(n: int) -> np.ndarray:
    """The 1-D Poisson matrix: 2 on the diagonal, -1 beside it."""
    return 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


def poisson_2d(side: int) -> np.ndarray:
    """The 5-point 2-D Poisson matrix on a side x side grid: the Kronecker sum of two 1-D ones."""
    one = second_difference(side)
    return np.kron(np.eye(side), one) + np.kron(one, np.eye(side))


def solve_table() -> str:
    """The Poisson systems solved on ``milan-closed-loop``, refined to a relative residual of 1e-6."""
    systems = [(f"1-D, n = {n}", second_difference(n)) for n in (64, 128, 256)]
    systems.append(("2-D, 16 x 16 (n = 256)", poisson_2d(16)))
    rows = []
    for name, a in systems:
        b = np.random.default_rng(1).standard_normal(len(a))
        _, stats = solve(a, b, chip="milan-closed-loop", tol=1e-6)
        rows.append(
            [
                name,
                str(stats.blocks),
                "yes" if stats.converged else f"no: {stats.reason}",
                f"{stats.residual:.1e}",
                f"{stats.error:.1e}",
                f"{stats.min_eigenvalue:.1e}",
                f"{stats.first_step_error:.2f}",
                str(stats.iterations),
                f"{stats.analog_solves:,}",
                f"{stats.time_s * 1e3:,.2f}",
                f"{stats.energy_total_pj / 1e6:,.2f}",
                f"{stats.baseline_total_pj / 1e6:,.3f}",
            ]
        )
    header = [
        "system",
        "blocks",
        "converged",
        "residual",
        "error vs numpy",
        "slowest eigenvalue",
        "first step error",
        "iterations",
        "analog solves",
        "simulated ms",
        "energy uJ",
        "LU baseline uJ",
    ]
    return "Closed-loop solves on `milan-closed-loop` (`cimc.runtime.solve`, tol 1e-6)\n\n" + table(header, rows)


# --- aihwkit --------------------------------------------------------------------------------------------------------

#: The times after programming the side-by-side records, and how the tables name them.
TIMES = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 d", 31536000.0: "1 y"}


@dataclass(frozen=True)
class AihwkitFigure:
    """aihwkit's top-1 at one time after programming: mean, sample std and standard error over ``seeds``."""

    t_s: float
    mean: float
    std: float
    seeds: int

    @property
    def standard_error(self) -> float:
        return self.std / np.sqrt(self.seeds)


@dataclass(frozen=True)
class AihwkitEntry:
    """One model's recorded run of ``benchmarks/aihwkit_side_by_side.py``: its top-1 at each time."""

    name: str
    figures: list[AihwkitFigure]


def load_aihwkit(path: Path = AIHWKIT_RESULTS) -> list[AihwkitEntry]:
    """The recorded aihwkit figures, an entry per model (``digits_cnn+fold-bn``: BatchNorm folded, as cimc does)."""
    recorded = json.loads(path.read_text())
    return [
        AihwkitEntry(
            name, [AihwkitFigure(r["t_s"], r["top1_mean"], r["top1_std"], entry["seeds"]) for r in entry["results"]]
        )
        for name, entry in recorded["entries"].items()
    ]


#: cimc's bundled model -> the recorded aihwkit run it is compared with: the CNN's with BatchNorm folded, as cimc
#: folds it before mapping the weights (aihwkit maps the unfolded weights: 3-12 points apart on this CNN).
AIHWKIT_MODELS = {"digits_mlp": "digits_mlp", "digits_cnn": "digits_cnn+fold-bn"}


def aihwkit_table(binaries: Binaries, entries: list[AihwkitEntry], seeds: int) -> str:
    """cimc's ``aihwkit`` chip beside aihwkit 1.2.0's recorded figures: top-1 at each time after programming over
    ``seeds`` seeds, the difference and twice its standard error (the band two equal means fall within 95% of the
    time)."""
    recorded = {e.name: e for e in entries}
    rows = []
    for name, reference in AIHWKIT_MODELS.items():
        model = MODELS_DIR / f"{name}.onnx"
        binary = binaries.get(model, ["--chip", "aihwkit"])
        for theirs in recorded[reference].figures:
            ours = evaluate(binary, model, ["--seeds", str(seeds), "--drift-time", str(theirs.t_s)])
            error = np.hypot(theirs.standard_error, ours["accuracy_std"] / np.sqrt(seeds))
            rows.append(
                [
                    f"`{name}`",
                    TIMES[theirs.t_s],
                    f"{theirs.mean:.4f} +- {theirs.std:.4f} ({theirs.seeds})",
                    f"{accuracy(ours)} ({seeds})",
                    f"{ours['accuracy'] - theirs.mean:+.4f}",
                    f"{2 * error:.4f}",
                ]
            )
    header = ["model", "after", "aihwkit 1.2.0 (seeds)", "cimc `--chip aihwkit` (seeds)", "cimc - aihwkit", "2 s.e."]
    return (
        "cimc's `aihwkit` chip beside aihwkit 1.2.0's `InferenceRPUConfig()` (recorded in "
        f"`{AIHWKIT_RESULTS.relative_to(MODELS_DIR.parent)}`): top-1 mean +- std over seeds; the CNN against "
        "aihwkit's run on the BatchNorm-folded model, as cimc folds it\n\n" + table(header, rows)
    )


# --------------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 noise seed per device row instead of 3")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="the sections to print")
    parser.add_argument(
        "--aihwkit-seeds", type=int, default=30, help="noise seeds of cimc's aihwkit rows (README: 300; default 30)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        binaries = Binaries(scratch)
        sections = {
            "energy": lambda: energy_tables(scratch),
            "converters": lambda: converters_tables(binaries),
            "devices": lambda: devices_table(binaries, 1 if args.quick else 3),
            "solve": solve_table,
            "aihwkit": lambda: aihwkit_table(binaries, load_aihwkit(), args.aihwkit_seeds),
        }
        for name in args.only:
            print(sections[name]() + "\n", flush=True)
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
