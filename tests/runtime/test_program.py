"""The program is what runs: binaries whose streams (or chip) were changed by hand, checksums recomputed, are
refused at load in one line naming the tile, the instruction and what is wrong; the executor follows the streams
(a changed stream changes the outputs or is refused), frees every value after its last use, and the placement
report's link loads are the timing's by construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.ir import run_module
from cimc.ir.core import Operation
from cimc.ir.interpreter import evaluate_op
from cimc.runtime.analog import AnalogConfig
from cimc.runtime.binary import BinaryFormatError, CompiledModel, load_binary, pack_container, read_sections
from cimc.runtime.devices import device
from cimc.runtime.isa import PORT, Adc, Instruction, Mvm, Program, Recv, Send, Streams
from cimc.runtime.program import _COMPUTE, _RECV, _SEND
from cimc.runtime.simulator import Simulator

MODELS = Path(__file__).resolve().parents[2] / "models"
X = np.load(MODELS / "digits_test.npz")["x"][:40]
IDEAL = AnalogConfig.ideal(device("pcm"))
Tiles = dict[tuple[int, int], tuple[Instruction, ...]]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits MLP on the default chip: its three groups on tile (0, 0), the port quantizing the input."""
    path = tmp_path_factory.mktemp("program") / "digits_mlp.cimb"
    compile_binary(MODELS / "digits_mlp.onnx", path, PipelineOptions(placement_effort=2.0))
    return path


def _crafted(
    binary: Path, tmp_path: Path, edit: Callable[[Tiles], Tiles] | None = None, ir: Callable[[str], str] | None = None
) -> Path:
    """``binary`` with its streams (``edit``) or IR text (``ir``) changed, every checksum recomputed."""
    _, sections = read_sections(binary.read_bytes(), str(binary))
    payloads = {name: bytes(view) for name, view in sections.items()}
    if edit is not None:
        streams = Streams.decode(payloads["program"])
        payloads["program"] = Streams(edit(dict(streams.tiles)), streams.strings).encode()
    if ir is not None:
        payloads["ir"] = ir(payloads["ir"].decode()).encode()
    path = tmp_path / "crafted.cimb"
    path.write_bytes(pack_container(list(payloads.items())))
    return path


def _refused(path: Path, message: str) -> None:
    with pytest.raises(BinaryFormatError) as caught:
        load_binary(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: section 'program': ") and "\n" not in text, text
    assert message in text, text


def _without(stream: tuple[Instruction, ...], kind: type, nth: int = 0) -> tuple[Instruction, ...]:
    """``stream`` less its ``nth`` instruction of ``kind``."""
    at = [i for i, instruction in enumerate(stream) if isinstance(instruction, kind)][nth]
    return stream[:at] + stream[at + 1 :]


def test_the_compiled_program_loads_and_its_streams_name_the_ops_they_run(mlp: Path) -> None:
    model = load_binary(mlp)
    ops = list(model.module.function("main").body.ops)
    streams = model.program.streams
    for stream in streams.tiles.values():
        for instruction in stream:
            if isinstance(instruction, Mvm):
                assert ops[instruction.op].name == "cim.mvm"
            if isinstance(instruction, Adc):
                assert ops[instruction.op].name == "cim.adc"
    assert set(streams.tiles) == {PORT, (0, 0)}


def test_an_array_on_a_faulty_tile_is_refused(mlp: Path, tmp_path: Path) -> None:
    path = _crafted(
        mlp, tmp_path, ir=lambda text: text.replace("faulty_tiles = array<i64>", "faulty_tiles = array<i64: 0, 0>")
    )
    _refused(path, "tile (0, 0) has a stream of 23 instructions but is faulty")


def test_an_array_on_an_off_mesh_tile_is_refused(mlp: Path, tmp_path: Path) -> None:
    def move(tiles: Tiles) -> Tiles:
        tiles[(999, 999)] = tiles.pop((0, 0))
        return tiles

    _refused(_crafted(mlp, tmp_path, move), "tile (999, 999) has a stream of 23 instructions but is off the 16x16 mesh")


def test_a_group_on_another_tile_than_the_ir_gives_it_is_refused(mlp: Path, tmp_path: Path) -> None:
    def move(tiles: Tiles) -> Tiles:
        tiles[(0, 1)] = tiles.pop((0, 0))
        return tiles

    _refused(
        _crafted(mlp, tmp_path, move),
        "tile (0, 1) instruction 0 'program op=3 group=0 arrays=8 image=0': group 0 is on tile (0, 0) in the IR",
    )


def test_a_missing_group_is_refused(mlp: Path, tmp_path: Path) -> None:
    def drop(tiles: Tiles) -> Tiles:
        tiles[(0, 0)] = _without(tiles[(0, 0)], Program, 2)
        return tiles

    _refused(_crafted(mlp, tmp_path, drop), "group 2 (fc3) is never programmed")


def test_an_instruction_naming_another_op_kind_is_refused(mlp: Path, tmp_path: Path) -> None:
    def rename(tiles: Tiles) -> Tiles:
        stream = list(tiles[(0, 0)])
        at = next(i for i, instruction in enumerate(stream) if isinstance(instruction, Mvm))
        stream[at] = dataclasses.replace(stream[at], op=stream[at].op + 1)  # type: ignore[type-var]
        tiles[(0, 0)] = tuple(stream)
        return tiles

    _refused(_crafted(mlp, tmp_path, rename), "'mvm op=5 group=0 planes=8 vectors=1 arrays=8': names op 5, a 'cim.adc'")


def test_a_missing_send_is_refused(mlp: Path, tmp_path: Path) -> None:
    def drop(tiles: Tiles) -> Tiles:
        tiles[PORT] = _without(tiles[PORT], Send)
        return tiles

    _refused(_crafted(mlp, tmp_path, drop), "'recv peer=port bytes=64 flow=0 value=3': flow 0 is never sent")


def test_a_missing_buffer_value_is_refused(mlp: Path, tmp_path: Path) -> None:
    """The input's bit planes never reach tile (0, 0) (its send and receive both dropped): the first read of
    them is refused."""

    def drop(tiles: Tiles) -> Tiles:
        tiles[PORT] = _without(tiles[PORT], Send)
        tiles[(0, 0)] = _without(tiles[(0, 0)], Recv)
        return tiles

    _refused(
        _crafted(mlp, tmp_path, drop),
        "tile (0, 0) instruction 3 'mvm op=4 group=0 planes=8 vectors=1 arrays=8': needs value 3 (the result of "
        "'cim.bit_planes' at fc1), which is not in its buffer",
    )


def test_a_stream_that_drops_a_read_is_refused(mlp: Path, tmp_path: Path) -> None:
    def drop(tiles: Tiles) -> Tiles:
        tiles[(0, 0)] = _without(tiles[(0, 0)], Mvm, 1)
        return tiles

    _refused(
        _crafted(mlp, tmp_path, drop),
        "'adc op=13 group=1 bits=8 conversions=2048': needs value 13 (the result of 'cim.mvm' at fc2)",
    )


def test_a_stream_that_swaps_two_reads_is_refused(mlp: Path, tmp_path: Path) -> None:
    """fc2's read moved before fc1's: its input codes are not made yet."""

    def swap(tiles: Tiles) -> Tiles:
        stream = list(tiles[(0, 0)])
        first, second = [i for i, instruction in enumerate(stream) if isinstance(instruction, Mvm)][:2]
        stream[first], stream[second] = stream[second], stream[first]
        tiles[(0, 0)] = tuple(stream)
        return tiles

    _refused(
        _crafted(mlp, tmp_path, swap),
        "'mvm op=12 group=1 planes=8 vectors=1 arrays=8': needs value 11 (the result of 'cim.bit_planes' at fc2)",
    )


def test_the_plan_runs_every_compute_instruction_once_in_walk_order(mlp: Path) -> None:
    """Run with the exact executor's step: the ops evaluated are those the streams name, in the timing walk's order
    (programming aside: it is done at load), and the outputs are the IR executor's bit for bit."""
    model = load_binary(mlp)
    plan, ops = model.program, list(model.module.function("main").body.ops)
    evaluated: list[Operation] = []

    def evaluate(op: Operation, args: list[np.ndarray]) -> list[np.ndarray]:
        evaluated.append(op)
        return evaluate_op(op, args)

    (out,) = plan.run([X], evaluate)
    named = [plan.streams.tiles[tile][at] for tile, at in plan.timing.order]
    assert evaluated == [ops[i.op] for i in named if not isinstance(i, (Program, Send, Recv))]
    assert np.array_equal(out, run_module(model.module, [X])["logits"])


def test_every_value_leaves_its_buffer_after_its_last_use(mlp: Path) -> None:
    """Following the plan, a tile's buffer holds at the end only the outputs (at the port): every other value was
    freed after its last use; at no point does tile (0, 0) hold more than a layer's few values."""
    plan = load_binary(mlp).program
    live: list[set[int]] = [set() for _ in plan.tiles]
    port = plan.tiles.index(PORT)
    live[port].update(plan.arguments)
    most = 0
    for kind, tile, _, operands, results, _, frees in plan.steps:
        if kind == _COMPUTE:
            assert all(j in live[tile] for j, constant in operands if constant is None)
            live[tile].update(results)
        elif kind == _RECV:
            live[tile].update(results)
        else:
            assert kind == _SEND and operands[0][0] in live[tile]
        most = max(most, len(live[plan.tiles.index((0, 0))]))
        live[tile] -= set(frees)
    assert live[port] == {j for j, constant in plan.outputs if constant is None} | set(plan.arguments) - {
        j for step in plan.steps for j in step.frees
    }
    assert all(not values for k, values in enumerate(live) if k != port)
    assert most <= 3


def test_the_report_link_loads_are_the_timings(tmp_path: Path) -> None:
    """The digits CNN on a 2x2 chip of 32-array tiles spans tiles: the placement report's bytes per link (the flows
    place recorded) equal those of the sends the timing walk made, on the same routes."""
    chip = tmp_path / "small.toml"
    from cimc.ir.target.chip import load_chip

    text = load_chip("default").to_toml().replace("rows = 16", "rows = 2").replace("cols = 16", "cols = 2")
    chip.write_text(text.replace("arrays = 128", "arrays = 32"))
    path = tmp_path / "cnn.cimb"
    report, _ = compile_binary(MODELS / "digits_cnn.onnx", path, PipelineOptions(chip=str(chip), placement_effort=2.0))
    model: CompiledModel = load_binary(path)
    assert report["tiles_used"] > 1
    loads = {(tuple(a), tuple(b)): size for a, b, size in report["network"]["link_loads"]}
    assert loads and loads == model.program.timing.link_loads.loads
    assert model.program.timing.link_loads.total == report["placement"]["objective"]
    x = np.load(MODELS / "digits_test.npz")["x"][:20]
    assert np.array_equal(Simulator(model, IDEAL).run([x])["logits"], run_module(model.module, [x])["logits"])
