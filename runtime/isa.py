"""The tile instruction set: what each tile of a compiled chip does per inference, and its binary encoding.

A compiled model holds one instruction stream per used tile (the ``program`` section of a ``.cimb``). Streams are
static: the compiler has placed every array group and every digital op, so a tile's work is a fixed list run once
per input sample, in order, with ``send``/``recv`` pairs carrying activations and partial sums over the network.
``program`` instructions run once, when the chip is loaded.

Each instruction is 20 bytes, little-endian: opcode (u8), three reserved zero bytes, four u32 operands ``a b c d``
whose meaning depends on the opcode (``Opcode`` documents each). Names (layers, digital ops) are indices into the
stream set's string table. The layout of the whole section is in ``docs/binary-format.md``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum

#: The I/O port (the host interface, at the router ``cimc.ir.target.network.PORT_ROUTER``): its stream's key, and
#: the peer of sends and receives of model inputs and outputs.
PORT = (0xFFFF, 0xFFFF)


class Opcode(IntEnum):
    """The operations of a tile, with the meaning of their operands ``(a, b, c, d)``."""

    #: program group ``a`` (``b`` arrays) with the conductance image named by string ``c``; once, at load
    PROGRAM = 1
    #: read group ``a``: ``b`` bit planes for each of ``c`` input vectors per sample, ``d`` arrays each time
    MVM = 2
    #: ADC conversions of group ``a``: ``b`` bits, ``c`` conversions per sample (planes x vectors x columns read)
    ADC = 3
    #: shift-add of group ``a``: ``b`` readings per output value, ``c`` output values per sample
    SHIFT_ADD = 4
    #: accumulate layer ``a`` (string): ``b`` partial sums of ``c`` values each per sample
    ACCUMULATE = 5
    #: dequantize layer ``a`` (string): ``b`` values per sample
    DEQUANTIZE = 6
    #: digital op ``a`` (string: op name) at location ``b`` (string): ``c`` output elements per sample (a bit-plane
    #: tensor's planes included), ``d`` digital-unit operations per sample (``cimc.compiler.codegen.digital_ops``)
    DIGITAL = 7
    #: send ``c`` bytes per sample to tile (``a``, ``b``) (``PORT``: the I/O port), flow ``d``
    SEND = 8
    #: receive ``c`` bytes per sample from tile (``a``, ``b``) (``PORT``: the I/O port), flow ``d``
    RECV = 9
    #: closed-loop solve of ``A x = b`` on the ``b`` groups of ``A``'s blocks, group ``a`` the first (row-major block
    #: order): ``c`` unknowns, ``d`` right-hand sides per sample (``cimc.runtime.closed_loop`` models its circuit)
    SOLVE = 10


_INSTRUCTION = struct.Struct("<B3xIIII")
_STREAM = struct.Struct("<HHI")  # tile row, tile col, instruction count
_HEADER = struct.Struct("<II")  # stream count, string table bytes


class IsaError(ValueError):
    """An instruction stream that cannot be decoded; the message says where."""


@dataclass(frozen=True)
class Instruction:
    """One tile instruction: an opcode and four operands."""

    opcode: Opcode
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0

    def __str__(self) -> str:
        return f"{self.opcode.name.lower()} {self.a} {self.b} {self.c} {self.d}"


@dataclass(frozen=True)
class Streams:
    """The instruction streams of a chip: one per used tile, sorted by tile, and the names they refer to."""

    tiles: dict[tuple[int, int], tuple[Instruction, ...]]
    strings: tuple[str, ...]

    def encode(self) -> bytes:
        """The ``program`` section: header, string table (JSON list), then each tile's stream in tile order."""
        table = json.dumps(list(self.strings), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        out = [_HEADER.pack(len(self.tiles), len(table)), table]
        for (row, col), stream in sorted(self.tiles.items()):
            out.append(_STREAM.pack(row, col, len(stream)))
            out.extend(_INSTRUCTION.pack(i.opcode, i.a, i.b, i.c, i.d) for i in stream)
        return b"".join(out)

    @staticmethod
    def decode(data: bytes) -> Streams:
        """Read back what ``encode`` wrote; ``IsaError`` on a truncated stream or an unknown opcode."""
        try:
            count, size = _HEADER.unpack_from(data, 0)
            offset = _HEADER.size
            strings = tuple(json.loads(data[offset : offset + size].decode("utf-8")))
            offset += size
            tiles: dict[tuple[int, int], tuple[Instruction, ...]] = {}
            for _ in range(count):
                row, col, length = _STREAM.unpack_from(data, offset)
                offset += _STREAM.size
                stream = []
                for _ in range(length):
                    opcode, a, b, c, d = _INSTRUCTION.unpack_from(data, offset)
                    offset += _INSTRUCTION.size
                    stream.append(Instruction(Opcode(opcode), a, b, c, d))
                tiles[(row, col)] = tuple(stream)
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise IsaError(f"instruction streams cannot be decoded: {exc}") from None
        if offset != len(data):
            raise IsaError(f"instruction streams end at byte {offset} but the section has {len(data)}")
        return Streams(tiles, strings)
