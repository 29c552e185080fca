"""Tile instruction streams: encoding round trip, the documented layout (version, named fields as u32), a readable
text form, and clear errors."""

from __future__ import annotations

import struct

import pytest

from cimc.runtime.isa import (
    ISA_VERSION,
    KINDS,
    NO_VALUE,
    PORT,
    Digital,
    IsaError,
    Mvm,
    Program,
    Recv,
    Send,
    Streams,
)


def _streams() -> Streams:
    return Streams(
        tiles={
            (1, 0): (
                Program(op=3, group=0, arrays=8, image=1),
                Mvm(op=4, group=0, planes=8, vectors=64, arrays=8),
                Send(peer=PORT, bytes=40, flow=4, value=NO_VALUE),
            ),
            (0, 2): (
                Recv(peer=(1, 0), bytes=512, flow=3, value=7),
                Digital(op=9, name=2, layer=3, elements=640, ops=0),
            ),
        },
        strings=("conv1", "conv1.r0.levels", "graph.relu", "relu1"),
    )


def test_round_trip() -> None:
    streams = _streams()
    assert Streams.decode(streams.encode()) == Streams(dict(sorted(streams.tiles.items())), streams.strings)


def test_layout_is_the_documented_one() -> None:
    data = _streams().encode()
    major, minor, count, table = struct.unpack_from("<HHII", data)
    assert (major, minor, count) == (*ISA_VERSION, 2) == (2, 0, 2)
    offset = 12 + table
    assert struct.unpack_from("<HHI", data, offset) == (0, 2, 2)  # tiles in order: (0, 2) first
    # a receive: opcode 9, 5 fields (the peer is two), then peer row, peer col, bytes, flow, value
    assert struct.unpack_from("<BB2x5I", data, offset + 8) == (9, 5, 1, 0, 512, 3, 7)
    digital = offset + 8 + 4 + 5 * 4
    assert struct.unpack_from("<BB2x5I", data, digital) == (7, 5, 9, 2, 3, 640, 0)
    sizes = {Recv: 5, Digital: 5, Program: 4, Mvm: 5, Send: 5}
    assert len(data) == 12 + table + 2 * 8 + sum(4 + 4 * sizes[type(i)] for s in _streams().tiles.values() for i in s)


def test_every_kind_has_its_own_opcode_and_a_readable_text() -> None:
    assert [kind.OPCODE for kind in KINDS] == list(range(1, 11))
    assert str(Mvm(op=4, group=0, planes=8, vectors=64, arrays=8)) == "mvm op=4 group=0 planes=8 vectors=64 arrays=8"
    assert str(Send(peer=PORT, bytes=40, flow=4, value=NO_VALUE)) == "send peer=port bytes=40 flow=4 value=none"
    assert str(Recv(peer=(1, 0), bytes=2, flow=3, value=7)) == "recv peer=1,0 bytes=2 flow=3 value=7"


@pytest.mark.parametrize("cut", [3, 20, 40, -1])
def test_truncated_streams_are_refused(cut: int) -> None:
    with pytest.raises(IsaError, match="cannot be decoded"):
        Streams.decode(_streams().encode()[:cut])


def test_unknown_opcodes_wrong_field_counts_versions_and_trailing_bytes_are_refused() -> None:
    data = bytearray(_streams().encode())
    with pytest.raises(IsaError, match=f"end at byte {len(data)} but the section has {len(data) + 1}"):
        Streams.decode(bytes(data) + b"\0")
    first = 12 + struct.unpack_from("<HHII", data)[3] + 8
    bad = bytearray(data)
    bad[first] = 99
    with pytest.raises(IsaError, match=r"tile \(0, 2\) instruction 0: unknown opcode 99"):
        Streams.decode(bytes(bad))
    bad = bytearray(data)
    bad[first + 1] = 4
    with pytest.raises(IsaError, match=r"tile \(0, 2\) instruction 0: 'recv' has 5 fields, not 4"):
        Streams.decode(bytes(bad))
    bad = bytearray(data)
    bad[0] = 1
    with pytest.raises(IsaError, match=r"instruction set 1\.0, this cimc reads 2\.x"):
        Streams.decode(bytes(bad))
