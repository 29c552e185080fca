"""The tile instruction set: what each tile of a compiled chip does per inference, and its binary encoding.

A compiled model holds one instruction stream per used tile (the ``program`` section of a ``.cimb``). Streams are
static: the compiler has placed every array group and every digital op, so a tile's work is a fixed list run once
per input sample, in order, with ``Send``/``Recv`` pairs carrying activations and partial sums over the network.
``Program`` instructions run once, when the chip is loaded. The runtime executes the streams
(``cimc.runtime.program``): the same walk gives the outputs, the cycles and the energy.

Every compute instruction names the op of ``main`` it executes (``op``: its index in main's body) and carries the
counts the timing and energy models charge; every transfer names the value it carries (``value``: an index of
``cimc.ir.dialects.cim.ssa_values``, ``NO_VALUE`` for a closed-loop solve's block results, which live inside the
solve). Groups are numbered as ``cimc.ir.dialects.cim.array_groups`` reads them; names (layers, digital ops,
conductance images) are indices into the stream set's string table.

Encoding (little-endian, ``docs/binary-format.md``): a header (ISA major and minor version, stream count, string
table bytes), the string table (a JSON list), then per stream its tile (u16 row, u16 col) and instruction count
(u32), then its instructions, each an opcode (u8), its field count (u8), two zero bytes and its fields (u32 each,
in the order of the instruction's dataclass fields; a peer tile is two of them: row, col).
"""

from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass
from typing import ClassVar

#: The I/O port (the host interface, at the router ``cimc.ir.target.network.PORT_ROUTER``): its stream's key, and
#: the peer of sends and receives of model inputs and outputs.
PORT = (0xFFFF, 0xFFFF)
#: A transfer's ``value`` when it carries no SSA value (a solve's block results, gathered inside the solve).
NO_VALUE = 0xFFFFFFFF
#: The instruction set's version: a reader decodes its own major at any minor.
ISA_VERSION = (2, 0)

_HEADER = struct.Struct("<HHII")  # ISA major, minor, stream count, string table bytes
_STREAM = struct.Struct("<HHI")  # tile row, tile col, instruction count
_OPCODE = struct.Struct("<BB2x")  # opcode, field count
_FIELD = struct.Struct("<I")


class IsaError(ValueError):
    """An instruction stream that cannot be decoded; the message says where."""


@dataclass(frozen=True)
class _Instruction:
    """What every instruction shares: its opcode and its encoding as u32 fields."""

    OPCODE: ClassVar[int]

    def fields(self) -> tuple[int, ...]:
        """The instruction's fields as the encoding stores them (a peer tile as row, col)."""
        out: list[int] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out.extend(value if isinstance(value, tuple) else (value,))
        return tuple(out)

    @classmethod
    def width(cls) -> int:
        """Fields of this kind in the encoding."""
        return sum(2 if f.name == "peer" else 1 for f in dataclasses.fields(cls))

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> _Instruction:
        """The instruction whose encoded fields are ``values`` (``fields`` read back)."""
        names = [f.name for f in dataclasses.fields(cls)]
        if "peer" not in names:
            return cls(*values)
        at = names.index("peer")
        fields: list[int | tuple[int, int]] = [*values[:at], (values[at], values[at + 1]), *values[at + 2 :]]
        return cls(*fields)

    @property
    def mnemonic(self) -> str:
        return _MNEMONICS[type(self)]

    def __str__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "peer":
                value = "port" if value == PORT else f"{value[0]},{value[1]}"
            elif f.name == "value" and value == NO_VALUE:
                value = "none"
            parts.append(f"{f.name}={value}")
        return f"{self.mnemonic} " + " ".join(parts)


@dataclass(frozen=True)
class Program(_Instruction):
    """Program group ``group`` (op ``op``, a ``cim.program``) into its ``arrays`` arrays with the conductance image
    named by string ``image``; once, at load."""

    OPCODE = 1
    op: int
    group: int
    arrays: int
    image: int


@dataclass(frozen=True)
class Mvm(_Instruction):
    """Read group ``group`` (op ``op``, a ``cim.mvm``): ``planes`` bit planes for each of ``vectors`` input vectors
    per sample, ``arrays`` arrays each time."""

    OPCODE = 2
    op: int
    group: int
    planes: int
    vectors: int
    arrays: int


@dataclass(frozen=True)
class Adc(_Instruction):
    """Convert the column currents of group ``group`` (op ``op``, a ``cim.adc``): ``bits`` bits, ``conversions`` per
    sample (planes x vectors x columns read)."""

    OPCODE = 3
    op: int
    group: int
    bits: int
    conversions: int


@dataclass(frozen=True)
class ShiftAdd(_Instruction):
    """Shift and add the readings of group ``group`` (op ``op``, a ``cim.shift_add``): ``readings`` per output value,
    ``values`` output values per sample."""

    OPCODE = 4
    op: int
    group: int
    readings: int
    values: int


@dataclass(frozen=True)
class Accumulate(_Instruction):
    """Sum a layer's partial sums (op ``op``, a ``cim.accumulate`` of layer string ``layer``): ``partials`` of
    ``values`` values each per sample."""

    OPCODE = 5
    op: int
    layer: int
    partials: int
    values: int


@dataclass(frozen=True)
class Dequantize(_Instruction):
    """Dequantize a layer's sums (op ``op``, a ``cim.dequantize`` of layer string ``layer``): ``values`` per sample."""

    OPCODE = 6
    op: int
    layer: int
    values: int


@dataclass(frozen=True)
class Digital(_Instruction):
    """Run op ``op`` (named by string ``name``, at location string ``layer``) on the digital unit: ``elements``
    output elements per sample (a bit-plane tensor's planes included), ``ops`` digital-unit operations per sample
    (``cimc.compiler.codegen.digital_ops``)."""

    OPCODE = 7
    op: int
    name: int
    layer: int
    elements: int
    ops: int


@dataclass(frozen=True)
class Send(_Instruction):
    """Send ``bytes`` per sample of value ``value`` to tile ``peer`` (``PORT``: the I/O port), as flow ``flow``."""

    OPCODE = 8
    peer: tuple[int, int]
    bytes: int
    flow: int
    value: int


@dataclass(frozen=True)
class Recv(_Instruction):
    """Receive flow ``flow``: ``bytes`` per sample of value ``value`` from tile ``peer`` (``PORT``: the I/O port);
    the stream waits for it."""

    OPCODE = 9
    peer: tuple[int, int]
    bytes: int
    flow: int
    value: int


@dataclass(frozen=True)
class Solve(_Instruction):
    """Closed-loop solve (op ``op``, a ``cim.solve``) of ``A x = b`` on the ``groups`` groups of ``A``'s blocks,
    ``group`` the first (row-major block order): ``unknowns`` unknowns, ``rhs`` right-hand sides per sample
    (``cimc.runtime.closed_loop`` models its circuit)."""

    OPCODE = 10
    op: int
    group: int
    groups: int
    unknowns: int
    rhs: int


#: Any tile instruction.
Instruction = Program | Mvm | Adc | ShiftAdd | Accumulate | Dequantize | Digital | Send | Recv | Solve
#: The instructions that execute an op of ``main`` (they have ``op``).
Compute = Program | Mvm | Adc | ShiftAdd | Accumulate | Dequantize | Digital | Solve
#: Every instruction kind, in opcode order.
KINDS: tuple[type[_Instruction], ...] = (
    Program,
    Mvm,
    Adc,
    ShiftAdd,
    Accumulate,
    Dequantize,
    Digital,
    Send,
    Recv,
    Solve,
)
_BY_OPCODE = {kind.OPCODE: kind for kind in KINDS}
_MNEMONICS = {kind: "".join(f"_{c.lower()}" if c.isupper() else c for c in kind.__name__).lstrip("_") for kind in KINDS}


@dataclass(frozen=True)
class Streams:
    """The instruction streams of a chip: one per used tile, sorted by tile, and the names they refer to."""

    tiles: dict[tuple[int, int], tuple[Instruction, ...]]
    strings: tuple[str, ...]

    def encode(self) -> bytes:
        """The ``program`` section: header, string table (JSON list), then each tile's stream in tile order."""
        table = json.dumps(list(self.strings), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        out = [_HEADER.pack(*ISA_VERSION, len(self.tiles), len(table)), table]
        for (row, col), stream in sorted(self.tiles.items()):
            out.append(_STREAM.pack(row, col, len(stream)))
            for instruction in stream:
                fields = instruction.fields()
                out.append(_OPCODE.pack(instruction.OPCODE, len(fields)))
                out.append(struct.pack(f"<{len(fields)}I", *fields))
        return b"".join(out)

    @staticmethod
    def decode(data: bytes) -> Streams:
        """Read back what ``encode`` wrote; ``IsaError`` naming the tile and the instruction on a truncated stream,
        an unknown opcode, a wrong field count or another ISA major version."""
        where = "header"
        try:
            major, minor, count, size = _HEADER.unpack_from(data, 0)
            if major != ISA_VERSION[0]:
                raise IsaError(f"instruction set {major}.{minor}, this cimc reads {ISA_VERSION[0]}.x")
            offset = _HEADER.size
            where = "string table"
            strings = tuple(json.loads(data[offset : offset + size].decode("utf-8")))
            if not all(isinstance(s, str) for s in strings):
                raise ValueError("the string table holds a non-string")
            offset += size
            tiles: dict[tuple[int, int], tuple[Instruction, ...]] = {}
            for s in range(count):
                where = f"stream {s}"
                row, col, length = _STREAM.unpack_from(data, offset)
                offset += _STREAM.size
                stream = []
                for i in range(length):
                    where = f"tile ({row}, {col}) instruction {i}"
                    opcode, width = _OPCODE.unpack_from(data, offset)
                    kind = _BY_OPCODE.get(opcode)
                    if kind is None:
                        raise ValueError(f"unknown opcode {opcode}")
                    if width != kind.width():
                        raise ValueError(f"'{_MNEMONICS[kind]}' has {kind.width()} fields, not {width}")
                    fields = struct.unpack_from(f"<{width}I", data, offset + _OPCODE.size)
                    offset += _OPCODE.size + width * _FIELD.size
                    stream.append(kind.from_fields(fields))
                if (row, col) in tiles:
                    raise ValueError("a second stream for this tile")
                tiles[(row, col)] = tuple(stream)  # type: ignore[arg-type]
        except IsaError:
            raise
        except struct.error:
            raise IsaError(f"instruction streams cannot be decoded at {where}: truncated at byte {len(data)}") from None
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise IsaError(f"instruction streams cannot be decoded at {where}: {exc}") from None
        if offset != len(data):
            raise IsaError(f"instruction streams end at byte {offset} but the section has {len(data)}")
        return Streams(tiles, strings)
