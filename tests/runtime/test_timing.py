"""The timing model against cycle counts worked out by hand: one dense layer on one tile, a two-layer chain on two
tiles, transfers queueing for a shared link, a torus route, and the compiled digits MLP. A tile's array groups and
its digital unit work side by side: its busy cycles per sample are those of its busiest resource."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from streams_by_hand import chain, geometry, single

from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.ir.target.chip import Mesh, load_chip
from cimc.runtime.binary import load_binary
from cimc.runtime.isa import PORT, Recv, Send, Streams
from cimc.runtime.performance import estimate
from cimc.runtime.timing import (
    PORT_IN,
    PORT_OUT,
    Bottleneck,
    TimingError,
    group_geometry,
    mvm_cycles,
    simulate,
    transfer_cycles,
    transfer_links,
)

MODELS = Path(__file__).resolve().parents[2] / "models"
# The default chip: 64x64 arrays, 8 ADCs an array (8 columns each), 120-cycle reads, 1-cycle conversions,
# 16 digital ops a cycle, 32-bit links, 2-cycle routers, 1.2 GHz.
CHIP = load_chip("default")


def test_mvm_cycles_follow_the_read_and_conversion_formula() -> None:
    spec = CHIP.tile
    # 64 columns on 8 ADCs: 8 conversions after each 120-cycle read, for each of 8 planes
    assert mvm_cycles(8, 1, geometry((0, 0), "l", 64, 64), spec) == 8 * (120 + 8)
    # 10 columns: columns 8 and 9 share ADCs 0 and 1 with columns 0 and 1: two conversions
    assert mvm_cycles(8, 1, geometry((0, 0), "l", 64, 10), spec) == 8 * (120 + 2)
    # 130 columns in three 64-column blocks read at once: the widest array has 64 columns
    assert mvm_cycles(8, 1, geometry((0, 0), "l", 64, 130), spec) == 8 * (120 + 8)
    # 65 vectors over 2 replicas: 33 rounds
    assert mvm_cycles(8, 65, geometry((0, 0), "l", 64, 64, replication=2), spec) == 33 * 8 * (120 + 8)
    # one ADC for all 64 columns, 3 cycles a conversion
    slow = dataclasses.replace(spec, adc_columns=64, adc_cycles=3)
    assert mvm_cycles(1, 1, geometry((0, 0), "l", 64, 64), slow) == 120 + 64 * 3


def test_a_single_dense_layer_on_one_tile() -> None:
    streams, groups = single()
    timing = simulate(streams, CHIP, groups)
    inputs = 64 * 8 // 32  # 64 bytes through the port's 32-bit channel, no router hop
    mvm = 8 * (120 + 64 // 8)
    shift_add = 64 * 64 // 16  # 64 readings (8 planes x 2 signs x 4 slices) per output, 16 ops a cycle
    dequantize = 3 * 64 // 16
    outputs = 256 * 8 // 32
    assert timing.latency_cycles == inputs + mvm + shift_add + dequantize + outputs == 1372
    # in steady state the arrays read the next sample while the digital unit shift-adds this one: the arrays
    # (1024 cycles) outlast the digital unit (256 + 12)
    assert timing.tile_cycles == {(0, 0): max(mvm, shift_add + dequantize)} == {(0, 0): 1024}
    assert timing.link_cycles == {PORT_IN: inputs, PORT_OUT: outputs}
    assert timing.interval_cycles == 1024
    assert timing.bottleneck == Bottleneck("tile", (0, 0), 1024, "l1")
    assert timing.layer_cycles == {"l1": mvm + shift_add + dequantize}
    assert timing.utilization == {(0, 0): 1.0}
    assert timing.latency_s == pytest.approx(1372 / 1.2e9, rel=1e-12)
    assert timing.throughput_per_s == pytest.approx(1.2e9 / 1024, rel=1e-12)


def test_a_two_layer_chain_on_two_tiles() -> None:
    streams, groups = chain()
    timing = simulate(streams, CHIP, groups)
    first = 8 * (120 + 8) + 64 * 64 // 16 + 3 * 64 // 16  # 1292: MVM, shift-add, dequantize of 64 columns
    between = 64 // 16 + 64 // 16 + 512 // 16  # ReLU, quantize, 8 bit planes of 64 codes
    hop = 2 * 2 + 64 * 8 // 32  # (0, 0) -> (0, 2): two router hops, then 64 bytes over 32-bit links
    second = 8 * (120 + 2) + 64 * 10 // 16 + -(-3 * 10 // 16)  # 1018: 10 columns take 2 conversions an ADC
    back = 2 * 2 + 40 * 8 // 32  # (0, 2) -> (0, 0) -> the port
    assert timing.latency_cycles == 16 + first + between + hop + second + back == 2400
    # per tile, its busiest resource: tile (0, 0)'s arrays (1024) against its digital unit (256 + 12 + 40);
    # tile (0, 2)'s arrays (976) against its digital unit (40 + 2)
    assert timing.tile_cycles == {(0, 0): 8 * (120 + 8), (0, 2): 8 * (120 + 2)} == {(0, 0): 1024, (0, 2): 976}
    assert timing.link_cycles == {
        PORT_IN: 16,
        ((0, 0), (0, 1)): 16,
        ((0, 1), (0, 2)): 16,
        ((0, 2), (0, 1)): 10,
        ((0, 1), (0, 0)): 10,
        PORT_OUT: 10,
    }
    assert timing.interval_cycles == 1024
    assert timing.bottleneck == Bottleneck("tile", (0, 0), 1024, "l1")
    assert timing.layer_cycles == {"l1": first, "relu1": 4, "l2": 36 + second} == {"l1": 1292, "relu1": 4, "l2": 1054}
    assert timing.utilization == {(0, 0): 1.0, (0, 2): 976 / 1024}


def test_transfers_sharing_a_link_queue_in_departure_order() -> None:
    """Two 64-byte inputs leave the port at once for tile (0, 1): the second waits for the port channel and the
    link (0, 0) -> (0, 1), 16 cycles each; the tile answers after both."""
    streams = Streams(
        {
            PORT: (Send((0, 1), 64, flow=0, value=0), Send((0, 1), 64, flow=1, value=1)),
            (0, 1): (
                Recv(PORT, 64, flow=0, value=0),
                Recv(PORT, 64, flow=1, value=1),
                Send(PORT, 4, flow=2, value=2),
            ),
        },
        (),
    )
    streams = Streams({**streams.tiles, PORT: (*streams.tiles[PORT], Recv((0, 1), 4, flow=2, value=2))}, ())
    timing = simulate(streams, CHIP, [])
    # flow 0 arrives at 2 + 16 = 18; flow 1 starts at 16 and arrives at 34; the reply: 34 + 2 + 1 = 37
    assert timing.latency_cycles == 37
    assert timing.link_cycles == {PORT_IN: 32, ((0, 0), (0, 1)): 32, ((0, 1), (0, 0)): 1, PORT_OUT: 1}
    assert timing.interval_cycles == 32
    assert timing.bottleneck == Bottleneck("link", ((0, 0), (0, 1)), 32, "input")


def test_routes_wrap_round_a_torus_and_the_port_adds_its_channel() -> None:
    ring = dataclasses.replace(CHIP, mesh=Mesh(1, 4, torus=True))
    assert transfer_links(ring, (0, 0), (0, 3)) == ([((0, 0), (0, 3))], 1)
    assert transfer_links(CHIP, (0, 0), (0, 3)) == ([((0, 0), (0, 1)), ((0, 1), (0, 2)), ((0, 2), (0, 3))], 3)
    assert transfer_links(CHIP, PORT, (1, 0)) == ([PORT_IN, ((0, 0), (1, 0))], 1)
    assert transfer_cycles(64, 3, CHIP.network) == 3 * 2 + 16


def test_a_receive_nothing_sends_is_an_error() -> None:
    streams = Streams({(0, 0): (Recv((0, 1), 4, flow=7, value=0),)}, ())
    with pytest.raises(TimingError, match=r"tile \(0, 0\) waits for flow 7, which no stream sends"):
        simulate(streams, CHIP, [])


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cimb") / "digits_mlp.cimb"
    compile_binary(MODELS / "digits_mlp.onnx", path, PipelineOptions(placement_effort=2.0))
    return path


def test_the_compiled_digits_mlp_takes_the_hand_computed_cycles(mlp: Path) -> None:
    """digits MLP: 64 -> 64 -> 32 -> 10 dense layers with ReLUs, 8-bit weights and inputs, all on tile (0, 0)
    of the default chip; the port quantizes the input and sends its 64 codes."""
    model = load_binary(mlp)
    groups = group_geometry(model.module)
    assert [(g.tile, g.layer, g.rows, g.columns, g.arrays) for g in groups] == [
        ((0, 0), "fc1", 64, 64, 8),
        ((0, 0), "fc2", 64, 32, 8),
        ((0, 0), "fc3", 32, 10, 8),
    ]

    def layer(columns: int) -> int:
        """MVM (8 planes; 8 ADCs an array), shift-add (64 readings an output), dequantize (3 ops a value)."""
        return 8 * (120 + -(-columns // 8)) + 64 * columns // 16 + -(-3 * columns // 16)

    def next_input(width: int) -> int:
        """ReLU, quantize and 8 bit planes of ``width`` values."""
        return -(-width // 16) + -(-width // 16) + 8 * width // 16

    chain = layer(64) + next_input(64) + layer(32) + next_input(32) + layer(10)
    timing = estimate(model).timing
    # one input goes through the layers one after another: the latency is the whole chain
    assert timing.latency_cycles == 64 * 8 // 32 + chain + 40 * 8 // 32 == 3522
    # in steady state the three groups read side by side and the digital unit keeps up: fc1's reads set the pace
    digital = chain - 8 * (128 + 124 + 122)
    assert digital == 504
    assert timing.tile_cycles == {(0, 0): 8 * 128} == {(0, 0): 1024}
    assert timing.interval_cycles == 1024
    assert timing.bottleneck == Bottleneck("tile", (0, 0), 1024, "fc1")
