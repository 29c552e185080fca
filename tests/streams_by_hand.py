"""Instruction streams written by hand for the timing and energy tests: a dense layer on one tile, and a chain of
two dense layers on two tiles two hops apart. Timing and energy read the counts, not the ops and values named
(those are the executor's), so ``op`` numbers each instruction's op in the order a ``main`` would hold them and
``value`` each transfer's value, as code generation would."""

from __future__ import annotations

from cimc.runtime.isa import PORT, Adc, Dequantize, Digital, Instruction, Mvm, Program, Recv, Send, ShiftAdd, Streams
from cimc.runtime.timing import GroupGeometry

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


def _layer(op: int, group: int, layer: int, columns: int) -> list[Instruction]:
    """A dense layer's work for one sample (ops ``op`` to ``op + 3``): 8 bit planes of one vector through 8 arrays,
    2 x 4 x columns conversions a plane, shift-add of 64 readings per output, dequantize."""
    return [
        Mvm(op, group, planes=8, vectors=1, arrays=8),
        Adc(op + 1, group, bits=8, conversions=8 * 2 * 4 * columns),
        ShiftAdd(op + 2, group, readings=64, values=columns),
        Dequantize(op + 3, layer, values=columns),
    ]


def single() -> tuple[Streams, list[GroupGeometry]]:
    """One 64 x 64 layer on tile (0, 0): 64 input bytes in, 64 f32 results (256 bytes) out."""
    tiles = {
        PORT: (Send((0, 0), 64, flow=0, value=1), Recv((0, 0), 256, flow=1, value=6)),
        (0, 0): (
            Program(0, 0, arrays=8, image=0),
            Recv(PORT, 64, flow=0, value=1),
            *_layer(1, 0, L1, 64),
            Send(PORT, 256, flow=1, value=6),
        ),
    }
    return Streams(tiles, STRINGS), [geometry((0, 0), "l1", 64, 64)]


def chain() -> tuple[Streams, list[GroupGeometry]]:
    """A 64 x 64 layer on tile (0, 0), its ReLU and the next layer's input codes and bit planes there, then a
    64 x 10 layer on tile (0, 2); the port gets 10 f32 logits (40 bytes)."""
    tiles = {
        PORT: (Send((0, 0), 64, flow=0, value=1), Recv((0, 2), 40, flow=2, value=14)),
        (0, 0): (
            Program(0, 0, arrays=8, image=0),
            Recv(PORT, 64, flow=0, value=1),
            *_layer(1, 0, L1, 64),
            Digital(5, RELU, RELU1, elements=64, ops=64),
            Digital(6, QUANTIZE, L2, elements=64, ops=64),
            Digital(7, BIT_PLANES, L2, elements=512, ops=512),
            Send((0, 2), 64, flow=1, value=9),
        ),
        (0, 2): (
            Program(8, 1, arrays=8, image=1),
            Recv((0, 0), 64, flow=1, value=9),
            *_layer(9, 1, L2, 10),
            Send(PORT, 40, flow=2, value=14),
        ),
    }
    return Streams(tiles, STRINGS), [geometry((0, 0), "l1", 64, 64), geometry((0, 2), "l2", 64, 10)]
