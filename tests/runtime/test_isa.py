"""Tile instruction streams: encoding round trip, the documented 20-byte layout, and clear errors."""

from __future__ import annotations

import struct

import pytest

from cimc.runtime.isa import Instruction, IsaError, Opcode, Streams


def _streams() -> Streams:
    return Streams(
        tiles={
            (1, 0): (Instruction(Opcode.PROGRAM, 0, 8, 1), Instruction(Opcode.MVM, 0, 8, 64, 8)),
            (0, 2): (Instruction(Opcode.RECV, 1, 0, 512, 3), Instruction(Opcode.DIGITAL, 2, 3, 640)),
        },
        strings=("conv1", "conv1.r0.levels", "graph.relu", "relu1"),
    )


def test_round_trip() -> None:
    streams = _streams()
    assert Streams.decode(streams.encode()) == Streams(dict(sorted(streams.tiles.items())), streams.strings)


def test_layout_is_the_documented_one() -> None:
    data = _streams().encode()
    count, table = struct.unpack_from("<II", data)
    assert count == 2
    offset = 8 + table
    assert struct.unpack_from("<HHI", data, offset) == (0, 2, 2)  # tiles in order: (0, 2) first
    assert struct.unpack_from("<B3xIIII", data, offset + 8) == (Opcode.RECV, 1, 0, 512, 3)
    assert len(data) == 8 + table + 2 * 8 + 4 * 20


@pytest.mark.parametrize("cut", [3, 20, 40, -1])
def test_truncated_streams_are_refused(cut: int) -> None:
    with pytest.raises(IsaError, match="cannot be decoded"):
        Streams.decode(_streams().encode()[:cut])


def test_unknown_opcode_and_trailing_bytes_are_refused() -> None:
    data = bytearray(_streams().encode())
    with pytest.raises(IsaError, match="end at byte 152 but the section has 153"):
        Streams.decode(bytes(data) + b"\0")
    first = 8 + struct.unpack_from("<II", data)[1] + 8
    data[first] = 99
    with pytest.raises(IsaError, match="99"):
        Streams.decode(bytes(data))
