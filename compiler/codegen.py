"""Code generation: a placed ``cim`` module -> one instruction stream per tile (``cimc.runtime.isa``).

Streams follow the module's op order, which is a valid static schedule: every op runs on the tile ``place``
gave it (``cimc.passes.place.op_tiles``), and every flow of ``traffic_flows`` becomes a ``send`` on its source
tile and a ``recv`` on its destination, right after the op that makes the value. Arrays are programmed first
(``program``, once at load). Work on the model inputs alone and the model outputs belong to the I/O port, whose
stream is keyed ``PORT``.
"""

from __future__ import annotations

from collections import defaultdict

from cimc.ir.attributes import DenseResourceAttr
from cimc.ir.core import Operation, OpResult, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import AccumulateOp, AdcOp, DequantizeOp, DigitalOp, MvmOp, ProgramOp, ShiftAddOp
from cimc.ir.interpreter import main_function
from cimc.ir.types import TensorType
from cimc.passes.place import op_tiles, program_groups, tile_of, traffic_flows, value_bytes
from cimc.runtime.isa import PORT, Instruction, Opcode, Streams

Tile = tuple[int, int]


class _Strings:
    """The string table: each name once, in order of first use."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}

    def __getitem__(self, name: str) -> int:
        return self.names.setdefault(name, len(self.names))


def _elements(value: Value) -> int:
    """Elements per sample of a value (its bytes over its element size)."""
    assert isinstance(value.type, TensorType)
    return value_bytes(value) // value.type.element.dtype.itemsize


def _defining(value: Value) -> Operation:
    assert isinstance(value, OpResult)
    return value.op


def generate(module: ModuleOp) -> Streams:
    """The instruction streams of a placed module."""
    groups = program_groups(module)
    group = {id(p): g for g, p in enumerate(groups)}
    tiles = op_tiles(module)
    strings = _Strings()
    streams: dict[Tile, list[Instruction]] = defaultdict(list)
    for g, program in enumerate(groups):
        levels = program.attributes["levels"]
        image = levels.blob.name if isinstance(levels, DenseResourceAttr) else f"{program.location.name}.levels"
        streams[tile_of(program)].append(Instruction(Opcode.PROGRAM, g, program.arrays, strings[image]))
    sends: dict[int, list[tuple[int, Tile, Tile, int]]] = defaultdict(list)  # id(producer) -> flows it starts
    for f, flow in enumerate(traffic_flows(module)):
        src = PORT if flow.src is None else tile_of(groups[flow.src])
        dst = PORT if flow.dst is None else tile_of(groups[flow.dst])
        if src != dst:
            sends[id(_defining(flow.value))].append((f, src, dst, flow.bytes))
    for op in main_function(module).body.ops:
        instruction = _instruction(op, group, strings)
        if instruction is not None:
            tile = tiles.get(op)
            streams[PORT if tile is None else tile].append(instruction)
        for f, src, dst, size in sends.get(id(op), ()):
            streams[src].append(Instruction(Opcode.SEND, *dst, size, f))
            streams[dst].append(Instruction(Opcode.RECV, *src, size, f))
    return Streams({tile: tuple(stream) for tile, stream in sorted(streams.items())}, tuple(strings.names))


def _instruction(op: Operation, group: dict[int, int], strings: _Strings) -> Instruction | None:
    """The instruction an op of ``main`` runs as (None for constants, programming and the return)."""
    layer = op.location.name or op.name
    if isinstance(op, MvmOp):
        program = _defining(op.operands[1])
        assert isinstance(program, ProgramOp)
        planes = op.operands[0].type.shape[0]  # type: ignore[attr-defined]
        return Instruction(Opcode.MVM, group[id(program)], planes, op.vectors, program.arrays)
    if isinstance(op, AdcOp):
        mvm = _defining(op.operands[0])
        program = _defining(mvm.operands[1])
        return Instruction(Opcode.ADC, group[id(program)], op.attr("bits"), _elements(op.result))
    if isinstance(op, ShiftAddOp):
        mvm = _defining(_defining(op.operands[0]).operands[0])
        program = _defining(mvm.operands[1])
        readings = _elements(op.operands[0]) // max(_elements(op.result), 1)
        return Instruction(Opcode.SHIFT_ADD, group[id(program)], readings, _elements(op.result))
    if isinstance(op, AccumulateOp):
        return Instruction(Opcode.ACCUMULATE, strings[layer], len(op.operands), _elements(op.result))
    if isinstance(op, DequantizeOp):
        return Instruction(Opcode.DEQUANTIZE, strings[layer], _elements(op.result))
    if isinstance(op, DigitalOp):
        return Instruction(Opcode.DIGITAL, strings[op.work.name], strings[layer], sum(map(_elements, op.results)))
    if op.name.startswith("cim.") and not isinstance(op, ProgramOp):  # quantize, im2col, bit planes
        return Instruction(Opcode.DIGITAL, strings[op.name], strings[layer], sum(map(_elements, op.results)))
    return None
