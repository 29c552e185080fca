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

A second table gives one full-array MVM per chip: a dense layer exactly one array in size (every row driven, every
column converted, one vector of 8-bit inputs) compiled with the chip's own converters, its reads' energy (arrays,
DACs, ADCs) in nJ and per MAC, and TOPS/W beside the figure the chip's paper publishes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
from import_canonicalize import MODELS_DIR, table
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler.pipeline import CrossbarOptions, PipelineOptions, compile_binary
from cimc.ir.target.chip import load_chip
from cimc.runtime.binary import load_binary
from cimc.runtime.energy import EnergyBreakdown
from cimc.runtime.performance import estimate

CHIPS = ("default", "hermes", "hermes-4phase", "mythic-m1076", "isaac")

#: What each chip's paper publishes for a full-array MVM (the figure the second table compares with).
PUBLISHED = {
    "hermes": "9.76 TOPS/W, 13.4 nJ (Le Gallo et al., Nature Electronics 2023: one-phase)",
    "hermes-4phase": "2.48 TOPS/W (the same paper: four-phase)",
    "mythic-m1076": "0.5 pJ/MAC = 4 TOPS/W (Mythic at Hot Chips 2018, as WikiChip Fuse reports it)",
}

#: The first table's columns (``row``).
MODEL_HEADER = [
    "chip",
    "nJ / inference",
    "TOPS/W",
    "utilization",
    "reads TOPS/W",
    "full TOPS/W",
    "SRAM baseline / chip",
    "DRAM baseline / chip",
]


def row(model: Path, chip: str, scratch: Path) -> list[str]:
    """The table's figures for ``model`` compiled for ``chip``."""
    path = scratch / f"{model.stem}.{chip}.cimb"
    compile_binary(model, path, PipelineOptions(chip=chip, placement_effort=2.0))
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


def dense(rows: int, cols: int) -> onnx.ModelProto:
    """``x[1, rows] @ W[rows, cols]`` with no zero weight (seeded), so that a read drives every row and converts
    every column of a ``rows x cols`` array."""
    rng = np.random.default_rng(11)
    weights = rng.uniform(0.5, 1.0, size=(rows, cols)) * rng.choice([-1.0, 1.0], size=(rows, cols))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cols])],
        [numpy_helper.from_array(weights.astype(np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def full_array(chip: str, scratch: Path) -> tuple[tuple[int, int], EnergyBreakdown]:
    """The array size of ``chip`` and the energy of one MVM that fills one of its arrays, compiled with the chip's
    own converters (calibrated on seeded uniform inputs; the calibration changes no event count)."""
    options = CrossbarOptions.for_chip(load_chip(chip))
    rows, cols = options.array_rows, options.array_cols
    path = scratch / f"dense.{chip}.cimb"
    calib = {"x": np.random.default_rng(12).uniform(0.0, 1.0, size=(8, rows)).astype(np.float32)}
    compile_binary(dense(rows, cols), path, PipelineOptions(chip=chip, calib=calib, placement_effort=2.0))
    return (rows, cols), estimate(load_binary(path)).energy


def full_array_row(chip: str, scratch: Path) -> list[str]:
    """The second table's figures for ``chip``."""
    (rows, cols), energy = full_array(chip, scratch)
    return [
        chip,
        f"{rows}x{cols}",
        f"{energy.macs:,}",
        f"{energy.reads_pj / 1e3:.2f}",
        f"{energy.reads_pj / energy.macs:.3f}",
        f"{energy.full_tops_per_w:.2f}",
        PUBLISHED.get(chip, "-"),
    ]


#: The second table's columns (``full_array_row``).
FULL_ARRAY_HEADER = ["chip", "array", "MACs", "reads nJ", "pJ / MAC", "TOPS/W", "published"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=MODELS_DIR / "digits_cnn.onnx")
    parser.add_argument("--chips", nargs="+", default=list(CHIPS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        rows = [row(args.model, chip, Path(scratch)) for chip in args.chips]
        full = [full_array_row(chip, Path(scratch)) for chip in args.chips]
    print(f"{args.model.name}: energy per inference on each chip")
    print(table(MODEL_HEADER, rows))
    print("\nOne MVM over a full array (arrays, DACs, ADCs; 8-bit inputs, one vector), against the chips' papers")
    print(table(FULL_ARRAY_HEADER, full))


if __name__ == "__main__":
    main()
