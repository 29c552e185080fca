"""The energy model against event counts worked out by hand: the two-layer chain of ``streams_by_hand`` on a chip
of round energy constants, the compiled digits MLP on the default chip, and the terminal and JSON reports."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from streams_by_hand import chain

from cimc.compiler.chip import Energy as EnergyTable
from cimc.compiler.chip import load_chip
from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.runtime.binary import load_binary
from cimc.runtime.energy import BASELINE, estimate_energy
from cimc.runtime.performance import estimate, format_performance

MODELS = Path(__file__).resolve().parents[2] / "models"
ROUND = EnergyTable(
    array_read_pj=10.0,
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
    dacs = 64 * 64 + 64 * 64  # reads x the 64 rows of each
    conversions = 8 * 2 * 4 * 64 + 8 * 2 * 4 * 10
    codes = 64 + 64  # input codes of both reads
    moved = (64 + 64) + (64 + 40)  # received + sent by (0, 0), then by (0, 2)
    written = 4 * (64 + 10) * 2 + 4 * 64 + 64 + 512  # shift-add and dequantize (i32, f32); ReLU (f32); codes, planes
    bit_hops = 64 * 8 * 2 + 40 * 8 * 2  # (0, 0) -> (0, 2) and (0, 2) -> the port: 2 hops each
    ops = 64 * 64 + 64 * 10 + 3 * (64 + 10) + 64 + 64 + 512  # shift-adds, dequantize, ReLU, quantize, planes
    assert energy.per_inference_pj == {
        "arrays": reads * 10.0,
        "dacs": dacs * 1.0,
        "adcs": conversions * 2.0,
        "buffers": (codes + moved + written) * 0.5,
        "network": bit_hops * 0.25,
        "digital": ops * 0.125,
    }
    assert energy.total_pj == 1280 + 8192 + 9472 + 892 + 416 + 699.75 == 20951.75
    assert energy.macs == 64 * 64 + 64 * 10
    assert energy.tops_per_w == 2 * 4736 / 20951.75
    assert energy.baseline_pj == {"multiply": 4736 * 0.2, "add": 4736 * 0.1, "dram": (4096 + 640) * 160.0}
    assert energy.ratio == pytest.approx((4736 * 0.3 + 4736 * 160.0) / 20951.75, rel=1e-12)
    # every cell of both groups (64 x 64 and 64 x 10 weights, 2 signs x 4 slices), 3 pulses of 3 pJ
    assert energy.programming_pj == (64 * 64 + 64 * 10) * 8 * 3 * 3.0
    assert energy.programming_s == pytest.approx(64 * 3 * 1e-7, rel=1e-12)


def test_every_baseline_constant_names_its_source() -> None:
    assert {name: c.pj for name, c in BASELINE.items()} == {"multiply": 0.2, "add": 0.1, "dram_byte": 160.0}
    assert all("Horowitz" in c.source for c in BASELINE.values())


def test_bad_programming_arguments_are_refused() -> None:
    streams, groups = chain()
    with pytest.raises(ValueError, match="pulses_per_cell must be >= 1"):
        estimate_energy(streams, CHIP, groups, pulses_per_cell=0)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cimb") / "digits_mlp.cimb"
    compile_binary(MODELS / "digits_mlp.onnx", path, PipelineOptions(time_limit=2.0))
    return path


def test_the_compiled_digits_mlp_on_the_default_chip(mlp: Path) -> None:
    """64 -> 64 -> 32 -> 10, all on tile (0, 0): each layer one vector, 8 planes, 8 arrays (2 signs x 4 slices);
    the default chip's ISAAC energies."""
    performance = estimate(load_binary(mlp))
    energy = performance.energy
    layers = [(64, 64), (64, 32), (32, 10)]
    per_layer_reads = 8 * 8
    assert energy.per_inference_pj["arrays"] == 3 * per_layer_reads * 7.5
    assert energy.per_inference_pj["dacs"] == pytest.approx(sum(per_layer_reads * r for r, _ in layers) * 0.39)
    assert energy.per_inference_pj["adcs"] == pytest.approx(sum(8 * 8 * c for _, c in layers) * 1.67)
    assert energy.per_inference_pj["network"] == 0.0  # the port sits at tile (0, 0)'s router: no hop
    assert energy.macs == sum(r * c for r, c in layers) == 6464
    assert energy.baseline_pj["dram"] == 6464 * 160.0
    data = performance.to_dict()
    assert json.loads(json.dumps(data)) == data
    # fc1's reads (8 planes x (120 + 8) cycles) set the pace; see test_timing for the hand count
    assert data["bottleneck"] == {"kind": "tile", "where": [0, 0], "cycles": 1024, "layer": "fc1"}
    assert data["tiles"] == {"0,0": {"busy_cycles": 1024, "utilization": 1.0}}
    assert data["links"] == {"port->0,0": 16, "0,0->port": 10}
    assert data["energy"]["ratio"] == energy.ratio
    text = format_performance(performance)
    assert "Latency:    3,522 cycles = 2.94 us at 1.2 GHz" in text
    assert "Bottleneck: tile 0,0, 1,024 busy cycles per input, mostly fc1" in text
    assert f"{energy.ratio:,.1f}x the chip's energy" in text
    assert "Busiest tiles: 0,0 100%" in text
