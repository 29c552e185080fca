"""Instruction streams written by hand for the timing and energy tests: a dense layer on one tile, and a chain of
two dense layers on two tiles two hops apart."""

from __future__ import annotations

from cimc.runtime.isa import PORT, Instruction, Opcode, Streams
from cimc.runtime.timing import GroupGeometry

MVM, ADC, SHIFT_ADD, DEQUANTIZE = Opcode.MVM, Opcode.ADC, Opcode.SHIFT_ADD, Opcode.DEQUANTIZE
DIGITAL, SEND, RECV, PROGRAM = Opcode.DIGITAL, Opcode.SEND, Opcode.RECV, Opcode.PROGRAM
STRINGS = ("l1.levels", "l2.levels", "l1", "l2", "graph.relu", "relu1", "cim.quantize", "cim.bit_planes")
L1, L2, RELU, RELU1, QUANTIZE, BIT_PLANES = 2, 3, 4, 5, 6, 7


def geometry(tile: tuple[int, int], layer: str, rows: int, columns: int, replication: int = 1) -> GroupGeometry:
    """A group of 8-bit weights in 2-bit cells (4 slices), differential (2 signs), on 64 x 64 arrays."""
    blocks = -(-columns // 64)
    return GroupGeometry(
        tile,
        layer,
        arrays=2 * 4 * blocks * replication,
        replication=replication,
        rows=rows,
        columns=columns,
        signs=2,
        slices=4,
        array_rows=64,
        array_cols=64,
        weight_bits=8,
        input_bits=8,
    )


def _layer(group: int, layer: int, columns: int) -> list[Instruction]:
    """A dense layer's work for one sample: 8 bit planes of one vector through 8 arrays, 2 x 4 x columns
    conversions a plane, shift-add of 64 readings per output, dequantize."""
    return [
        Instruction(MVM, group, 8, 1, 8),
        Instruction(ADC, group, 8, 8 * 2 * 4 * columns),
        Instruction(SHIFT_ADD, group, 64, columns),
        Instruction(DEQUANTIZE, layer, columns),
    ]


def single() -> tuple[Streams, list[GroupGeometry]]:
    """One 64 x 64 layer on tile (0, 0): 64 input bytes in, 64 f32 results (256 bytes) out."""
    tiles = {
        PORT: (Instruction(SEND, 0, 0, 64, 0), Instruction(RECV, 0, 0, 256, 1)),
        (0, 0): (
            Instruction(PROGRAM, 0, 8, 0),
            Instruction(RECV, *PORT, 64, 0),
            *_layer(0, L1, 64),
            Instruction(SEND, *PORT, 256, 1),
        ),
    }
    return Streams(tiles, STRINGS), [geometry((0, 0), "l1", 64, 64)]


def chain() -> tuple[Streams, list[GroupGeometry]]:
    """A 64 x 64 layer on tile (0, 0), its ReLU and the next layer's input codes and bit planes there, then a
    64 x 10 layer on tile (0, 2); the port gets 10 f32 logits (40 bytes)."""
    tiles = {
        PORT: (Instruction(SEND, 0, 0, 64, 0), Instruction(RECV, 0, 2, 40, 2)),
        (0, 0): (
            Instruction(PROGRAM, 0, 8, 0),
            Instruction(RECV, *PORT, 64, 0),
            *_layer(0, L1, 64),
            Instruction(DIGITAL, RELU, RELU1, 64, 64),
            Instruction(DIGITAL, QUANTIZE, L2, 64, 64),
            Instruction(DIGITAL, BIT_PLANES, L2, 512, 512),
            Instruction(SEND, 0, 2, 64, 1),
        ),
        (0, 2): (
            Instruction(PROGRAM, 1, 8, 1),
            Instruction(RECV, 0, 0, 64, 1),
            *_layer(1, L2, 10),
            Instruction(SEND, *PORT, 40, 2),
        ),
    }
    return Streams(tiles, STRINGS), [geometry((0, 0), "l1", 64, 64), geometry((0, 2), "l2", 64, 10)]
