"""The energy model against event counts worked out by hand: the two-layer chain of ``streams_by_hand`` on a chip
of round energy constants, reads that use part of an array against full ones on every preset, HERMES's and Mythic's
published energies re-derived from compiled full-array layers, the compiled digits MLP on the default chip, and the
terminal and JSON reports."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from streams_by_hand import chain

from cimc.compiler.pipeline import CrossbarOptions, PipelineOptions, compile_binary
from cimc.ir.target.chip import PRESETS, Chip, EventEnergy, load_chip
from cimc.runtime.binary import load_binary
from cimc.runtime.energy import BASELINE, SRAM_READ, EnergyBreakdown, estimate_energy, sram_read
from cimc.runtime.isa import Adc, Mvm, Streams
from cimc.runtime.performance import estimate, format_performance
from cimc.runtime.timing import GroupGeometry

MODELS = Path(__file__).resolve().parents[2] / "models"
ROUND = EventEnergy(
    array_fixed_pj=10.0,
    array_row_pj=0.25,
    array_column_pj=0.5,
    dac_pj=1.0,
    adc_pj=2.0,
    buffer_byte_pj=0.5,
    network_bit_hop_pj=0.25,
    digital_op_pj=0.125,
    cell_program_pj=3.0,
)
CHIP = dataclasses.replace(load_chip("default"), energy=ROUND)


def test_the_two_layer_chain_counts_every_event() -> None:
    streams, groups = chain()
    energy = estimate_energy(streams, CHIP, groups, pulses_per_cell=3, write_pulse_s=1e-7)
    reads = 1 * 8 * 8 + 1 * 8 * 8  # vectors x planes x arrays, both layers
    dacs = 64 * 64 + 64 * 64  # reads x the 64 rows each drives
    conversions = 8 * 2 * 4 * 64 + 8 * 2 * 4 * 10  # the columns each read converts: 64, then 10
    codes = 64 + 64  # input codes of both reads
    moved = (64 + 64) + (64 + 40)  # received + sent by (0, 0), then by (0, 2)
    written = 4 * (64 + 10) * 2 + 4 * 64 + 64 + 512  # shift-add and dequantize (i32, f32); ReLU (f32); codes, planes
    bit_hops = 64 * 8 * 2 + 40 * 8 * 2  # (0, 0) -> (0, 2) and (0, 2) -> the port: 2 hops each
    ops = 64 * 64 + 64 * 10 + 3 * (64 + 10) + 64 + 64 + 512  # shift-adds, dequantize, ReLU, quantize, planes
    assert energy.per_inference_pj == {
        "arrays": reads * 10.0 + dacs * 0.25 + conversions * 0.5,  # fixed, per driven row, per converted column
        "dacs": dacs * 1.0,
        "adcs": conversions * 2.0,
        "buffers": (codes + moved + written) * 0.5,
        "network": bit_hops * 0.25,
        "digital": ops * 0.125,
    }
    assert energy.total_pj == 5696 + 8192 + 9472 + 892 + 416 + 699.75 == 25367.75
    assert energy.macs == 64 * 64 + 64 * 10 == 4736
    assert energy.tops_per_w == 2 * 4736 / 25367.75
    # the reads alone: 1280 + 2048 + 2368 in the arrays, 8192 in the DACs, 9472 in the ADCs
    assert energy.reads_pj == 23360.0
    assert energy.reads_tops_per_w == 2 * 4736 / 23360
    # at full use each of the 128 reads drives 64 rows and converts 64 columns: 10 + 64 x 1.25 + 64 x 2.5 = 250 pJ,
    # and the two layers' reads could do 64 x 64 MACs each
    assert energy.full_macs == 2 * 64 * 64
    assert energy.utilization == 4736 / 8192
    assert energy.full_reads_pj == 128 * 250.0
    assert energy.full_tops_per_w == 2 * 8192 / 32000
    # 4,736 weight bytes fit the 8 KB SRAM: 1.25 pJ a byte; DRAM 160
    sram, dram = energy.baselines["sram"], energy.baselines["dram"]
    assert (sram.memory, sram.byte_pj, dram.memory, dram.byte_pj) == ("on-chip SRAM of 8 KB", 1.25, "DRAM", 160.0)
    assert sram.pj == {"multiply": 4736 * 0.2, "add": 4736 * 0.1, "weights": 4736 * 1.25}
    assert dram.pj == {"multiply": 4736 * 0.2, "add": 4736 * 0.1, "weights": 4736 * 160.0}
    assert energy.ratios["sram"] == pytest.approx((947.2 + 473.6 + 5920.0) / 25367.75, rel=1e-12)
    assert energy.ratios["dram"] == pytest.approx((947.2 + 473.6 + 757760.0) / 25367.75, rel=1e-12)
    # every cell of both groups (64 x 64 and 64 x 10 weights, 2 signs x 4 slices), 3 pulses of 3 pJ
    assert energy.programming_pj == (64 * 64 + 64 * 10) * 8 * 3 * 3.0
    assert energy.programming_s == pytest.approx(64 * 3 * 1e-7, rel=1e-12)


def test_every_baseline_constant_names_its_source() -> None:
    assert {name: c.pj for name, c in BASELINE.items()} == {"multiply": 0.2, "add": 0.1, "dram_byte": 160.0}
    assert [(size, c.pj) for size, c in SRAM_READ] == [(8192, 10 / 8), (32768, 20 / 8), (1048576, 100 / 8)]
    assert all("Horowitz" in c.source for c in [*BASELINE.values(), *(c for _, c in SRAM_READ)])


@pytest.mark.parametrize(("stored", "pj"), [(1, 1.25), (8192, 1.25), (8193, 2.5), (32768, 2.5), (40000, 12.5)])
def test_the_sram_baseline_reads_the_smallest_sram_that_holds_the_weights(stored: int, pj: float) -> None:
    assert sram_read(stored).pj == pj
    assert sram_read(10 * 1024 * 1024).pj == 12.5  # beyond 1 MB: the 1 MB figure, which favours the baseline


def _one_read(chip: Chip, rows: int, columns: int) -> float:
    """Arrays, DACs and ADCs of one bit plane of one vector through one array of ``chip`` whose group drives
    ``rows`` rows and converts ``columns`` columns."""
    tile = chip.tile
    group = GroupGeometry(
        (0, 0), "layer", 1, 1, rows, columns, 1, 1, tile.array_rows, tile.array_cols, weight_bits=8, input_bits=1
    )
    streams = Streams(
        {(0, 0): (Mvm(0, 0, planes=1, vectors=1, arrays=1), Adc(1, 0, bits=8, conversions=columns))}, ("layer",)
    )
    return estimate_energy(streams, chip, [group]).reads_pj


@pytest.mark.parametrize("name", PRESETS)
def test_a_read_of_a_quarter_of_the_rows_and_columns_costs_at_most_0_4_of_a_full_one(name: str) -> None:
    chip = load_chip(name)
    rows, cols = chip.tile.array_rows, chip.tile.array_cols
    quarter, full = _one_read(chip, rows // 4, cols // 4), _one_read(chip, rows, cols)
    assert quarter <= 0.4 * full
    pj = chip.energy
    assert full == pytest.approx(
        pj.array_fixed_pj + rows * (pj.array_row_pj + pj.dac_pj) + cols * (pj.array_column_pj + pj.adc_pj), rel=1e-12
    )


def test_a_quarter_read_on_hermes_by_hand() -> None:
    """hermes.toml: 671.5 pJ fixed, 7.869 + 2.623 pJ a row, 13.115 pJ a column."""
    quarter = 671.5 + 64 * (7.869 + 2.623) + 64 * 13.115
    full = 671.5 + 256 * (7.869 + 2.623) + 256 * 13.115
    assert _one_read(load_chip("hermes"), 64, 64) == pytest.approx(quarter, rel=1e-12)
    assert quarter / full == pytest.approx(0.325, abs=1e-3)


def _dense(size: int) -> onnx.ModelProto:
    """x[1, size] @ W[size, size], W with no zero, so a compiled read drives every row and converts every column."""
    rng = np.random.default_rng(11)
    weights = rng.uniform(0.5, 1.0, size=(size, size)) * rng.choice([-1.0, 1.0], size=(size, size))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, size])],
        [numpy_helper.from_array(weights.astype(np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _compiled(tmp_path: Path, name: str, size: int) -> EnergyBreakdown:
    """The energy of ``_dense(size)`` compiled for chip ``name`` with 16-bit ADCs (a 1024-row column of 8-bit cells
    needs more than the 24 bits a binary may ask for exactly; the width changes no event count)."""
    path = tmp_path / f"dense_{name}.cimb"
    calib = {"x": np.random.default_rng(12).uniform(0.0, 1.0, size=(8, size)).astype(np.float32)}
    crossbar = CrossbarOptions.for_chip(load_chip(name), adc_bits=16)
    compile_binary(_dense(size), path, PipelineOptions(chip=name, crossbar=crossbar, calib=calib))
    return estimate(load_binary(path)).energy


@pytest.mark.parametrize(("chip", "tops_per_w"), [("hermes", 9.76), ("hermes-4phase", 2.48)])
def test_a_full_256x256_mvm_on_hermes_costs_what_the_paper_says(tmp_path: Path, chip: str, tops_per_w: float) -> None:
    """Le Gallo et al., Nature Electronics 2023: 8-bit MVMs at 9.76 TOPS/W one-phase, 2.48 four-phase; a core's
    256 x 256 MVM is 131,072 ops, 13.4 nJ one-phase."""
    energy = _compiled(tmp_path, chip, 256)
    assert energy.macs == energy.full_macs == 256 * 256  # one vector, one plane of 8-bit inputs, every cell used
    assert energy.reads_pj == pytest.approx(2 * 256 * 256 / tops_per_w, rel=0.05)
    assert energy.reads_tops_per_w == energy.full_tops_per_w == pytest.approx(tops_per_w, rel=0.05)
    if chip == "hermes":
        assert energy.reads_pj == pytest.approx(13_400, rel=0.05)


def test_mythic_at_full_utilization_costs_its_published_half_picojoule_a_mac(tmp_path: Path) -> None:
    """Mythic (Hot Chips 2018, as WikiChip Fuse reports it): about 0.5 pJ per MAC."""
    energy = _compiled(tmp_path, "mythic-m1076", 1024)
    assert energy.macs == energy.full_macs == 1024 * 1024
    assert energy.reads_pj / energy.macs == pytest.approx(0.5, rel=0.05)
    assert energy.full_tops_per_w == pytest.approx(2 / 0.5, rel=0.05)


def test_bad_programming_arguments_are_refused() -> None:
    streams, groups = chain()
    with pytest.raises(ValueError, match="pulses_per_cell must be >= 1"):
        estimate_energy(streams, CHIP, groups, pulses_per_cell=0)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cimb") / "digits_mlp.cimb"
    compile_binary(MODELS / "digits_mlp.onnx", path, PipelineOptions(placement_effort=2.0))
    return path


def test_the_compiled_digits_mlp_on_the_default_chip(mlp: Path) -> None:
    """64 -> 64 -> 32 -> 10, all on tile (0, 0): each layer one vector, 8 planes, 8 arrays (2 signs x 4 slices);
    the default chip's ISAAC energies."""
    performance = estimate(load_binary(mlp))
    energy = performance.energy
    layers = [(64, 64), (64, 32), (32, 10)]
    per_layer_reads = 8 * 8
    driven = sum(per_layer_reads * r for r, _ in layers)  # 64 rows, 64 rows, then 32 rows a read
    converted = sum(8 * 8 * c for _, c in layers)  # 64, 32, then 10 columns a read
    assert energy.per_inference_pj["arrays"] == pytest.approx(driven * 0.117 + converted * 0.00098, rel=1e-12)
    assert energy.per_inference_pj["dacs"] == pytest.approx(driven * 0.39, rel=1e-12)
    assert energy.per_inference_pj["adcs"] == pytest.approx(converted * 1.67, rel=1e-12)
    assert energy.per_inference_pj["network"] == 0.0  # the port sits at tile (0, 0)'s router: no hop
    assert energy.macs == sum(r * c for r, c in layers) == 6464
    assert energy.full_macs == 3 * 64 * 64
    # 6,464 weight bytes: an 8 KB SRAM's 1.25 pJ a byte, or DRAM's 160
    assert energy.baselines["sram"].pj["weights"] == 6464 * 1.25
    assert energy.baselines["dram"].pj["weights"] == 6464 * 160.0
    data = performance.to_dict()
    assert json.loads(json.dumps(data)) == data
    # fc1's reads (8 planes x (120 + 8) cycles) set the pace; see test_timing for the hand count
    assert data["bottleneck"] == {"kind": "tile", "where": [0, 0], "cycles": 1024, "layer": "fc1"}
    assert data["tiles"] == {"0,0": {"busy_cycles": 1024, "utilization": 1.0}}
    assert data["links"] == {"port->0,0": 16, "0,0->port": 10}
    baselines = data["energy"]["baselines"]
    assert set(baselines) == {"sram", "dram"}
    assert baselines["sram"]["ratio"] == energy.ratios["sram"] and baselines["dram"]["ratio"] == energy.ratios["dram"]
    assert baselines["dram"]["total_pj"] == pytest.approx(6464 * (0.3 + 160.0), rel=1e-12)
    assert data["energy"]["full_tops_per_w"] == energy.full_tops_per_w
    text = format_performance(performance)
    assert "Latency:    3,522 cycles = 2.94 us at 1.2 GHz" in text
    assert "Bottleneck: tile 0,0, 1,024 busy cycles per input, mostly fc1" in text
    assert f"{energy.utilization:.1%} utilization of the read arrays" in text
    assert f"{energy.full_tops_per_w:,.2f} TOPS/W at full" in text
    assert "weights in on-chip SRAM of 8 KB (1.25 pJ/B)" in text and "weights from DRAM (160 pJ/B)" in text
    # which baseline the chip beats and by how much, each
    for ratio in energy.ratios.values():
        verdict = f"the chip beats it {ratio:,.1f}x" if ratio >= 1 else f"the chip takes {1 / ratio:,.1f}x its energy"
        assert verdict in text
    assert "Busiest tiles: 0,0 100%" in text
