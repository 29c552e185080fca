"""Benchmark: one model's energy on each chip preset, at its utilization of the arrays and at full utilization,
against both digital baselines.

Usage: ``python benchmarks/energy.py [--model models/digits_cnn.onnx] [--chips default hermes ...]``

Per chip: the model compiled for it (``cimc compile --chip``), then the energy model on the binary
(``cimc.runtime.energy``; the figures ``cimc eval`` and ``cimc demo`` print): nJ per inference, TOPS/W of the
whole inference, the share of the read arrays' rows x columns the model uses, TOPS/W of the reads (arrays, DACs,
ADCs) at that utilization and at full utilization (the chip's paper figure: HERMES 9.76 one-phase and 2.48
four-phase, Mythic 4 = 0.5 pJ a MAC), and baseline / chip for the digital unit with the weights in on-chip SRAM and
with them from DRAM (above 1 the chip wins). Energy depends on the instruction streams only, not on the data, so
nothing is simulated.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from import_canonicalize import MODELS_DIR, table

from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.runtime.binary import load_binary
from cimc.runtime.performance import estimate

CHIPS = ("default", "hermes", "hermes-4phase", "mythic-m1076", "isaac")


def row(model: Path, chip: str, scratch: Path) -> list[str]:
    """The table's figures for ``model`` compiled for ``chip``."""
    path = scratch / f"{model.stem}.{chip}.cimb"
    compile_binary(model, path, PipelineOptions(chip=chip, time_limit=2.0))
    energy = estimate(load_binary(path)).energy
    return [
        chip,
        f"{energy.total_pj / 1e3:,.1f}",
        f"{energy.tops_per_w:.2f}",
        f"{energy.utilization:.1%}",
        f"{energy.reads_tops_per_w:.2f}",
        f"{energy.full_tops_per_w:.2f}",
        f"{energy.ratios['sram']:.3g}",
        f"{energy.ratios['dram']:.3g}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=MODELS_DIR / "digits_cnn.onnx")
    parser.add_argument("--chips", nargs="+", default=list(CHIPS))
    args = parser.parse_args()
    header = [
        "chip",
        "nJ / inference",
        "TOPS/W",
        "utilization",
        "reads TOPS/W",
        "full TOPS/W",
        "SRAM baseline / chip",
        "DRAM baseline / chip",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        rows = [row(args.model, chip, Path(scratch)) for chip in args.chips]
    print(f"{args.model.name}: energy per inference on each chip")
    print(table(header, rows))


if __name__ == "__main__":
    main()
