"""The chip a model is compiled for: a mesh of tiles of crossbar arrays, their converters, the network, the energy
of every event, and the tiles that do not work.

A chip is a TOML file (the presets live in ``ir/target/chips/``; ``cimc chips`` lists them):

```toml
name = "default"
description = "A 16x16 mesh of ReRAM tiles"
faulty_tiles = [[0, 3]]        # [row, col]; optional

[mesh]                         # rows x cols tiles; torus = true wraps both dimensions
[tile]                         # arrays per tile, array size, cell bits, device, DAC/ADC bits, ADC sharing, cycles
                               # of an array read and an ADC conversion, buffer, digital unit
[network]                      # link width (bits per cycle), router latency (cycles), clock (Hz)
[energy]                       # pJ per event: an array read's fixed, per-row and per-column parts, DAC and ADC
                               # conversion, buffer byte, ...
[opamp]                        # optional: the feedback op-amps of a closed-loop chip (cimc.runtime.closed_loop)
```

Every field is checked against its type and range (the ``MAX_*`` bounds below say why each is where it is) before
anything is sized by it, and a bad description is refused in one line naming the file, the field and its range.

The pipeline attaches the chip to the module as the discardable attribute ``cim.chip`` (``Chip.to_attribute``), so
passes read it from the IR; ``Chip.from_attribute`` reads it back with the same checks as a file.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cimc.ir.attributes import Attribute, DenseArrayAttr, DictAttr, FloatAttr, IntAttr, StringAttr
from cimc.ir.core import Operation
from cimc.ir.dialects.cim import CHIP_ATTRIBUTE, SIGN_ENCODINGS, WEIGHT_SCALINGS
from cimc.ir.options import Rule
from cimc.ir.types import ElementType

#: The discardable module attribute that carries the chip a module is compiled for.
ATTRIBUTE = CHIP_ATTRIBUTE

#: The folder of preset chip descriptions, one ``<name>.toml`` each.
CHIPS_DIR = Path(__file__).resolve().with_name("chips")

#: Memory technologies a tile's cells can be made of.
DEVICES = ("sram", "rram", "pcm", "nor-flash", "fefet", "mram")

_F64 = ElementType("f64")
_I64 = ElementType("i64")


class ChipError(ValueError):
    """A chip description that cannot be used; the message is one line naming the file and the field."""


def _rule(**bounds: Any) -> dict[str, Rule]:
    """Field metadata: the rule a description's value must satisfy."""
    return {"rule": Rule(**bounds)}


# The bounds of a chip description's fields. Each is far past every preset and every published chip, and low enough
# that what the compiler and the simulator size by it stays well under a workstation's memory (a 1000x1000 mesh asked
# for 9.8 GB before any check): a description past one is refused, naming the field, before anything is allocated.

#: Tiles along a mesh side, and in the whole mesh: placement keeps the hops between every two tiles and, per tile
#: pair, a flag per hop distance (tiles^2 x (rows + cols) bytes), 85 MB at 1024 tiles (presets: at most 256).
MAX_MESH_SIDE = 64
MAX_TILES = 1024
#: Arrays per tile (presets: at most 128).
MAX_ARRAYS_PER_TILE = 4096
#: Rows or columns of one crossbar array: 16 M cells, simulated as dense matrices (presets: at most 1024).
MAX_ARRAY_SIZE = 4096
#: Cycles of one array read or ADC conversion, and a router's latency: a millisecond at 1 GHz (presets: 3200).
MAX_CYCLES = 1 << 20
#: A tile's buffer: 1 GiB (presets: 64 KiB).
MAX_BUFFER_BYTES = 1 << 30
#: A tile's digital-unit lanes and a link's width in bits (presets: 16 and 128).
MAX_LANES = 1 << 16
#: The chip's clock, 1 kHz to 1 THz: every cycle count becomes seconds through it (presets: 100 MHz to 1.2 GHz).
CLOCK_HZ = (1e3, 1e12)
#: Picojoules of one event: a millijoule (presets: at most 26,214 pJ, a whole Mythic array read).
MAX_EVENT_PJ = 1e9
#: An op-amp's open-loop gain (V/V) and unity-gain bandwidth (Hz): the loop model divides by both (presets: 1e4, 1e7).
OPAMP_GAIN, OPAMP_GBW_HZ = (2.0, 1e12), (1.0, 1e12)
#: Volts of a row's full scale and an op-amp's swing, from a microvolt to 100 V (presets: 0.2, 0.5).
VOLTS = (1e-6, 100.0)
#: Characters of a chip's name and description, which are printed on one line (``cimc chips``, the reports).
MAX_NAME, MAX_DESCRIPTION = 64, 1024
#: Bytes of a chip description file (presets: under 4 KiB; a faulty-tile list of every tile takes about 16 KiB).
MAX_FILE_BYTES = 1 << 20

_ENERGY = _rule(low=0, high=MAX_EVENT_PJ)
_CYCLES = _rule(low=1, high=MAX_CYCLES)


@dataclass(frozen=True)
class Mesh:
    """The tile grid: ``rows`` x ``cols`` tiles on a 2D mesh, each router linked to its four neighbours; a torus
    also links the ends of every row and column."""

    rows: int = field(metadata=_rule(low=1, high=MAX_MESH_SIDE))
    cols: int = field(metadata=_rule(low=1, high=MAX_MESH_SIDE))
    torus: bool = False


@dataclass(frozen=True, kw_only=True)
class TileSpec:
    """One tile: its crossbar arrays and their converters, its local buffer and its digital unit.

    ``adc_columns`` columns share one ADC (read one after another: column ``c`` on ADC ``c mod adcs``);
    ``read_cycles`` is one array read of one bit plane (settling and integration) and ``adc_cycles`` one ADC
    conversion, in cycles of the chip's clock (``Network.clock_hz``; ``cimc.runtime.timing`` counts with them);
    ``sign_encoding`` is how signed weights sit in cells of non-negative conductance (``differential``: a positive
    and a negative array per slice; ``offset``: one array of offset codes), as in ``cimc.ir.dialects.cim``.
    ``weight_scaling`` is the range float weights are quantized over: each output ``column``'s own largest weight,
    or the whole layer's (``tensor``, as aihwkit maps a tile's largest weight to ``g_max``). ``ir_drop`` false
    makes the arrays' wires ideal (aihwkit's default ``IOParameters.ir_drop = 0``).
    """

    arrays: int = field(metadata=_rule(low=1, high=MAX_ARRAYS_PER_TILE))
    array_rows: int = field(default=64, metadata=_rule(low=1, high=MAX_ARRAY_SIZE))
    array_cols: int = field(default=64, metadata=_rule(low=1, high=MAX_ARRAY_SIZE))
    cell_bits: int = field(metadata=_rule(low=1, high=8))
    device: str = field(metadata=_rule(choices=DEVICES))
    dac_bits: int = field(metadata=_rule(low=1, high=8))
    adc_bits: int = field(metadata=_rule(low=1, high=16))
    adc_columns: int = field(metadata=_rule(low=1, high=MAX_ARRAY_SIZE))
    read_cycles: int = field(metadata=_CYCLES)
    adc_cycles: int = field(metadata=_CYCLES)
    buffer_bytes: int = field(metadata=_rule(low=1, high=MAX_BUFFER_BYTES))
    digital_ops_per_cycle: int = field(metadata=_rule(low=1, high=MAX_LANES))
    sign_encoding: str = field(default="differential", metadata=_rule(choices=SIGN_ENCODINGS))
    weight_scaling: str = field(default="column", metadata=_rule(choices=WEIGHT_SCALINGS))
    ir_drop: bool = True


@dataclass(frozen=True, kw_only=True)
class Network:
    """The on-chip network: ``link_bits`` bits per cycle per link, ``router_latency`` cycles per router, and the
    chip's clock, which every cycle count of the chip (these and the tile's) is in."""

    link_bits: int = field(metadata=_rule(low=1, high=MAX_LANES))
    router_latency: int = field(metadata=_CYCLES)
    clock_hz: float = field(metadata=_rule(low=CLOCK_HZ[0], high=CLOCK_HZ[1]))


@dataclass(frozen=True, kw_only=True)
class EventEnergy:
    """Energy per event, in picojoules.

    An array read of one bit plane costs what follows the work (``read_pj``): ``array_fixed_pj`` whatever it uses
    (bias, references, control), ``array_row_pj`` and a DAC conversion (``dac_pj``) per row it drives (the row's
    driver and its cells' read current), ``array_column_pj`` and an ADC conversion (``adc_pj``) per column it
    converts (the column's integrator or sample-and-hold). A chip's published energy per full read splits into
    these parts by its paper's breakdown where one is given, else by an estimate its file states. Then one buffer
    byte read or written, one bit crossing one network hop, one digital-unit op, one cell programmed.
    """

    array_fixed_pj: float = field(metadata=_ENERGY)
    array_row_pj: float = field(metadata=_ENERGY)
    array_column_pj: float = field(metadata=_ENERGY)
    dac_pj: float = field(metadata=_ENERGY)
    adc_pj: float = field(metadata=_ENERGY)
    buffer_byte_pj: float = field(metadata=_ENERGY)
    network_bit_hop_pj: float = field(metadata=_ENERGY)
    digital_op_pj: float = field(metadata=_ENERGY)
    cell_program_pj: float = field(metadata=_ENERGY)

    def read_pj(self, rows: int, columns: int) -> float:
        """One array read of one bit plane that drives ``rows`` rows and converts ``columns`` columns: the fixed
        part, each row's (array and DAC) and each column's (array and ADC)."""
        return (
            self.array_fixed_pj
            + rows * (self.array_row_pj + self.dac_pj)
            + columns * (self.array_column_pj + self.adc_pj)
        )


@dataclass(frozen=True, kw_only=True)
class OpAmp:
    """The operational amplifiers of a closed-loop chip, one per array row, which close the feedback loop around the
    arrays so that the circuit settles to the solution of ``A x = b`` (``cimc.runtime.closed_loop``).

    ``gain``: open-loop DC gain (V/V); ``gbw_hz``: unity-gain bandwidth of the single-pole response (Hz);
    ``offset_mv``: sigma of each op-amp's input offset voltage (mV); ``power_uw``: one op-amp's power while it
    settles (uW); ``v_read``: the full-scale row (DAC) voltage (V); ``v_sat``: the output swing limit, +-``v_sat``
    (V).
    """

    gain: float = field(metadata=_rule(low=OPAMP_GAIN[0], high=OPAMP_GAIN[1]))
    gbw_hz: float = field(metadata=_rule(low=OPAMP_GBW_HZ[0], high=OPAMP_GBW_HZ[1]))
    offset_mv: float = field(metadata=_rule(low=0, high=VOLTS[1] * 1e3))
    power_uw: float = field(metadata=_rule(low=0, high=1e6))  # a watt (presets: 100 uW)
    v_read: float = field(metadata=_rule(low=VOLTS[0], high=VOLTS[1]))
    v_sat: float = field(metadata=_rule(low=VOLTS[0], high=VOLTS[1]))


#: How the inputs of a read are scaled (``Periphery.input_scaling``): by their largest magnitude, or not at all.
INPUT_SCALINGS = ("abs_max", "none")
#: What a saturated read does (``Periphery.bound_management``): read again with the input halved, or nothing.
BOUND_MANAGEMENTS = ("iterative", "none")


@dataclass(frozen=True, kw_only=True)
class RangeManagement:
    """The converters of a range-managed read: a chip description's ``[periphery]`` table (``cimc.ir.target.chip``
    checks each field by its ``rule``), as in the module docstring.

    ``input_scaling``: each input vector divided by its largest magnitude (``abs_max``, aihwkit's
    ``NoiseManagementType.ABS_MAX``) or by the largest code (``none``), then quantized to ``input_levels`` DAC steps
    per sign and applied in one signed pass; ``output_levels`` ADC steps per sign over +-``output_bound``;
    ``bound_management``: ``iterative`` reads again with the input halved while any output saturated, at most
    ``max_passes`` reads (aihwkit's ``BoundManagementType.ITERATIVE``), ``none`` reads once; ``weight_units``: the
    bound, the ADC step and the device's output noise (its ``output_noise_us / g_max``) are in units of the layer's
    weights times the scaled input, as aihwkit's forward is (its tiles hold raw weights:
    ``weight_scaling_omega = 0``); false: in units of one full-scale cell at the full input.
    """

    input_scaling: str = field(metadata=_rule(choices=INPUT_SCALINGS))
    input_levels: int = field(metadata=_rule(low=1, high=1 << 16))
    output_levels: int = field(metadata=_rule(low=1, high=1 << 24))
    output_bound: float = field(metadata=_rule(low=1e-6, high=1e6))  # aihwkit's: 12
    bound_management: str = field(metadata=_rule(choices=BOUND_MANAGEMENTS))
    max_passes: int = field(default=1, metadata=_rule(low=1, high=32))
    weight_units: bool = False

    @property
    def passes(self) -> int:
        """The most reads one input vector may take."""
        return self.max_passes if self.bound_management == "iterative" else 1


#: The tables of a chip description, in the order they are written.
SECTIONS: dict[str, type] = {"mesh": Mesh, "tile": TileSpec, "network": Network, "energy": EventEnergy}
#: Tables a chip may leave out (None on the ``Chip``), written after ``SECTIONS`` when present.
OPTIONAL_SECTIONS: dict[str, type] = {"opamp": OpAmp, "periphery": RangeManagement}
_TOP_LEVEL = ("name", "description", "faulty_tiles")


@dataclass(frozen=True)
class Chip:
    """A chip: its tile grid, what every tile holds, its network, its energy per event, its faulty tiles
    (``(row, col)``, sorted), which placement never uses, on a closed-loop chip its feedback op-amps, and on a chip
    whose converters follow each read (aihwkit's forward) their ``[periphery]`` (``RangeManagement``; each None
    elsewhere)."""

    name: str
    description: str
    mesh: Mesh
    tile: TileSpec
    network: Network
    energy: EventEnergy
    faulty_tiles: tuple[tuple[int, int], ...] = ()
    opamp: OpAmp | None = None
    periphery: RangeManagement | None = None

    @property
    def tiles(self) -> int:
        """Tiles in the mesh, faulty ones included."""
        return self.mesh.rows * self.mesh.cols

    @property
    def usable_tiles(self) -> list[tuple[int, int]]:
        """The working tiles, ``(row, col)`` in row-major order."""
        faulty = set(self.faulty_tiles)
        return [(r, c) for r in range(self.mesh.rows) for c in range(self.mesh.cols) if (r, c) not in faulty]

    @property
    def capacity(self) -> int:
        """Arrays one tile holds."""
        return self.tile.arrays

    @property
    def arrays(self) -> int:
        """Arrays on the working tiles."""
        return len(self.usable_tiles) * self.tile.arrays

    def to_dict(self) -> dict[str, Any]:
        """The chip as plain JSON-able data, laid out as its TOML file."""
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "faulty_tiles": [list(t) for t in self.faulty_tiles],
        }
        for section in (*SECTIONS, *OPTIONAL_SECTIONS):
            value = getattr(self, section)
            if value is not None:
                data[section] = dataclasses.asdict(value)
        return data

    @staticmethod
    def from_dict(data: Any, where: str = "chip description") -> Chip:
        """The chip ``data`` describes (laid out as ``to_dict``), checked field by field; errors name ``where``."""
        if not isinstance(data, dict):
            raise ChipError(f"{where}: expected a table of chip fields, got {_show(data)}")
        _reject_unknown(data, (*_TOP_LEVEL, *SECTIONS, *OPTIONAL_SECTIONS), where, "")
        name = _line(data, "name", MAX_NAME, where, required=True)
        if not name:
            raise ChipError(f"{where}: name must not be empty")
        description = _line(data, "description", MAX_DESCRIPTION, where, required=False)
        sections = {section: _section(cls, data, section, where) for section, cls in SECTIONS.items()}
        mesh = sections["mesh"]
        if mesh.rows * mesh.cols > MAX_TILES:
            raise ChipError(
                f"{where}: [mesh] rows x cols must be at most {MAX_TILES} tiles, got {mesh.rows}x{mesh.cols} = "
                f"{mesh.rows * mesh.cols}"
            )
        for section, cls in OPTIONAL_SECTIONS.items():
            if section in data:
                sections[section] = _section(cls, data, section, where)
        faulty = _faulty_tiles(data.get("faulty_tiles", []), sections["mesh"], where)
        if "periphery" in sections and sections["tile"].sign_encoding != "differential":
            raise ChipError(
                f"{where}: [periphery] reads a conductance pair's difference in one output: it needs "
                f"[tile] sign_encoding = \"differential\", got '{sections['tile'].sign_encoding}'"
            )
        return Chip(name, description, faulty_tiles=faulty, **sections)

    def to_toml(self) -> str:
        """The chip as canonical TOML text (no comments); ``load_chip`` of it gives an equal chip."""
        data = self.to_dict()
        lines = [f"{key} = {_toml(data[key])}" for key in _TOP_LEVEL]
        for section in (*SECTIONS, *OPTIONAL_SECTIONS):
            if section in data:
                lines += ["", f"[{section}]", *(f"{key} = {_toml(value)}" for key, value in data[section].items())]
        return "\n".join(lines) + "\n"

    def to_attribute(self) -> DictAttr:
        """The chip as the flat ``cim.chip`` module attribute passes read: every field under its own name
        (``mesh_rows``, ``mesh_cols``, ``torus`` 0 or 1 and ``arrays_per_tile`` for the generic ones), integers
        i64, numbers f64, faulty tiles a flat ``array<i64: row, col, ...>``; the op-amps, when the chip has them, as
        ``opamp_gain``, ``opamp_gbw_hz``, ...)."""
        entries: dict[str, Attribute] = {
            "name": StringAttr(self.name),
            "description": StringAttr(self.description),
            "faulty_tiles": DenseArrayAttr(_I64, tuple(v for tile in self.faulty_tiles for v in tile)),
        }
        for section, table in self.to_dict().items():
            if isinstance(table, dict):
                for key, value in table.items():
                    entries[_attribute_key(section, key)] = _attribute(value)
        return DictAttr(tuple(entries.items()))

    @staticmethod
    def from_attribute(attr: Attribute) -> Chip:
        """The chip a ``cim.chip`` attribute carries, with the same checks as a file."""
        where = f"the '{ATTRIBUTE}' attribute"
        if not isinstance(attr, DictAttr):
            raise ChipError(f"{where}: expected a dictionary made by Chip.to_attribute, got {attr}")
        flat = {key: _plain(value, key, where) for key, value in attr.value}
        data: dict[str, Any] = {}
        for section, cls in {**SECTIONS, **OPTIONAL_SECTIONS}.items():
            table = {}
            for spec in fields(cls):
                key = _attribute_key(section, spec.name)
                if key in flat:
                    value = flat.pop(key)
                    table[spec.name] = bool(value) if str(spec.type) == "bool" and value in (0, 1) else value
            if section in SECTIONS or table:
                data[section] = table
        if "faulty_tiles" in flat:
            tiles = flat.pop("faulty_tiles")
            if not isinstance(tiles, list) or len(tiles) % 2:
                raise ChipError(
                    f"{where}: faulty_tiles must be array<i64: row, col, ...>, got {attr.get('faulty_tiles')}"
                )
            data["faulty_tiles"] = [tiles[i : i + 2] for i in range(0, len(tiles), 2)]
        return Chip.from_dict({**flat, **data}, where)


def chip_of(module: Operation) -> Chip | None:
    """The chip ``module`` is compiled for (its ``cim.chip`` attribute), None when it has none; decoded once per
    attribute, whoever asks (the passes, the binary loader, the simulator, the timing)."""
    attr = module.attributes.get(ATTRIBUTE)
    return None if attr is None else _decoded(attr)


@functools.lru_cache(maxsize=8)
def _decoded(attr: Attribute) -> Chip:
    return Chip.from_attribute(attr)


#: Names in the flat ``cim.chip`` attribute of the fields whose own name says too little there.
_ATTRIBUTE_KEYS = {
    ("mesh", "rows"): "mesh_rows",
    ("mesh", "cols"): "mesh_cols",
    ("mesh", "torus"): "torus",
    ("tile", "arrays"): "arrays_per_tile",
}


def _attribute_key(section: str, key: str) -> str:
    """A field's name in the flat ``cim.chip`` attribute: its own, renamed by ``_ATTRIBUTE_KEYS``, or prefixed with
    its section for an optional section (``opamp_gain``)."""
    if section in OPTIONAL_SECTIONS:
        return f"{section}_{key}"
    return _ATTRIBUTE_KEYS.get((section, key), key)


#: The preset chip names, as ``load_chip`` takes them: ``default`` first, then alphabetical.
PRESETS = tuple(sorted(sorted(path.stem for path in CHIPS_DIR.glob("*.toml")), key=lambda name: name != "default"))


def load_chip(name_or_path: str | os.PathLike[str]) -> Chip:
    """A preset chip by name (see ``PRESETS``) or a chip description file (``.toml``)."""
    text = os.fspath(name_or_path)
    if not isinstance(name_or_path, os.PathLike) and text in PRESETS:
        path = CHIPS_DIR / f"{text}.toml"
    elif isinstance(name_or_path, os.PathLike) or text.endswith(".toml") or os.sep in text or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise ChipError(f"{path}: no such chip file")
    else:
        close = difflib.get_close_matches(text, PRESETS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ChipError(f"unknown chip '{text}': {hint}presets are {', '.join(PRESETS)}; or give a .toml file")
    where = str(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ChipError(f"{where}: {size:,} bytes is too large for a chip description (at most {MAX_FILE_BYTES:,})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ChipError(f"{where}: not valid TOML: {err}") from None
    except OSError as err:
        raise ChipError(f"{where}: cannot read the chip file: {err.strerror}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ChipError(f"{where}: not valid TOML: arrays or tables nested too deeply") from None
    return Chip.from_dict(data, where)


def list_presets() -> list[tuple[str, str]]:
    """``(name, line)`` for every preset, the line as ``cimc chips`` prints it."""
    return [(name, summary(load_chip(name))) for name in PRESETS]


def summary(chip: Chip) -> str:
    """One line: the description, then mesh, arrays, array size and cells."""
    mesh = f"{chip.mesh.rows}x{chip.mesh.cols} {'torus' if chip.mesh.torus else 'mesh'}"
    tile = chip.tile
    arrays = f"{chip.arrays:,} arrays of {tile.array_rows}x{tile.array_cols}"
    faulty = f" ({len(chip.faulty_tiles)} faulty tiles)" if chip.faulty_tiles else ""
    return f"{chip.description} [{mesh}{faulty}, {arrays}, {tile.cell_bits}-bit {tile.device} cells]"


# --- checking a description ---------------------------------------------------------------------------------------


def _section(cls: type, data: dict[str, Any], section: str, where: str) -> Any:
    """The dataclass ``cls`` built from the table ``[section]`` of ``data``, every field checked."""
    specs = fields(cls)
    if section not in data:
        raise ChipError(f"{where}: missing section [{section}] (fields: {', '.join(f.name for f in specs)})")
    table = data[section]
    if not isinstance(table, dict):
        raise ChipError(f"{where}: '{section}' must be a table [{section}], got {_show(table)}")
    _reject_unknown(table, [f.name for f in specs], where, f"[{section}] ")
    values = {}
    for spec in specs:
        required = spec.default is dataclasses.MISSING
        rule = spec.metadata.get("rule", Rule())
        value = _value(table, spec.name, str(spec.type), rule, where, section, required)
        if value is not None:
            values[spec.name] = value
    return cls(**values)


def _value(table: dict[str, Any], key: str, kind: str, rule: Rule, where: str, section: str, required: bool) -> Any:
    """``table[key]`` checked against its kind and rule; None when absent and not required."""
    place = f"[{section}] {key}" if section else key
    expected = rule.describe(kind)
    if key not in table:
        if required:
            raise ChipError(f"{where}: missing field {place} ({expected})")
        return None
    value = table[key]
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    python_type = {"int": int, "float": float, "str": str, "bool": bool}[kind]
    right_type = isinstance(value, python_type) and (kind == "bool" or not isinstance(value, bool))
    if not right_type or (kind == "float" and not math.isfinite(value)) or not rule.holds(value):
        raise ChipError(f"{where}: {place} must be {expected}, got {_show(table[key], with_kind=not right_type)}")
    return value


def _line(data: dict[str, Any], key: str, limit: int, where: str, required: bool) -> str:
    """A one-line text field (``name``, ``description``) of at most ``limit`` characters; "" when absent."""
    value = _value(data, key, "str", Rule(), where, "", required) or ""
    if len(value) > limit or not value.replace("\t", " ").isprintable():
        raise ChipError(
            f"{where}: {key} must be one line of at most {limit} printable characters (tabs allowed), got "
            f"{_show(value)}"
        )
    return value


def _reject_unknown(table: dict[str, Any], known: Sequence[str], where: str, prefix: str) -> None:
    """A key that is no field is a typo until shown otherwise: name the closest known one."""
    for key, value in table.items():
        if key not in known:
            section = isinstance(value, dict) and not prefix
            name = "[{}]" if section else "'{}'"
            key = _clip("".join(_toml_char(ch) for ch in key))
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"did you mean {name.format(close[0])}?" if close else f"known: {', '.join(known)}"
            raise ChipError(f"{where}: {prefix}unknown {'section' if section else 'field'} {name.format(key)} ({hint})")


def _faulty_tiles(value: Any, mesh: Mesh, where: str) -> tuple[tuple[int, int], ...]:
    """The faulty tiles, sorted: pairs inside the mesh, each once, at least one tile left working."""
    shape = "a list of [row, col] pairs"
    if not isinstance(value, list):
        raise ChipError(f"{where}: faulty_tiles must be {shape}, got {_show(value)}")
    tiles: set[tuple[int, int]] = set()
    for item in value:
        pair = isinstance(item, list) and len(item) == 2
        if not pair or not all(isinstance(v, int) and not isinstance(v, bool) for v in item):
            raise ChipError(f"{where}: faulty_tiles must be {shape}; {_show(item)} is not a pair of integers")
        row, col = item
        if not (0 <= row < mesh.rows and 0 <= col < mesh.cols):
            raise ChipError(
                f"{where}: faulty_tiles: [{row}, {col}] is outside the {mesh.rows}x{mesh.cols} mesh "
                f"(rows 0..{mesh.rows - 1}, cols 0..{mesh.cols - 1})"
            )
        if (row, col) in tiles:
            raise ChipError(f"{where}: faulty_tiles: [{row}, {col}] is listed twice")
        tiles.add((row, col))
    if len(tiles) == mesh.rows * mesh.cols:
        raise ChipError(f"{where}: faulty_tiles: all {len(tiles)} tiles are faulty; a chip needs a working tile")
    return tuple(sorted(tiles))


def _show(value: Any, with_kind: bool = True) -> str:
    """A value as a description's author wrote it, with its kind when that is the problem."""
    try:
        text = _toml(value)
    except TypeError:  # a table, a date: TOML values no field takes
        return "a table" if isinstance(value, dict) else f"a {type(value).__name__}"
    kind = {bool: "a boolean", str: "a string", list: "a list", float: "a number"}.get(type(value))
    text = _clip(text)
    return f"{text} ({kind})" if kind and with_kind else text


def _clip(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, so that a huge value keeps its message one short line."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


# --- writing a description ----------------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    """A TOML value: booleans, integers, floats that read back to the same double, basic strings, arrays."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest round-trip digits; inf and nan never pass the checks
    if isinstance(value, str):
        return '"' + "".join(_toml_char(ch) for ch in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _toml_char(ch: str) -> str:
    """A character of a basic string: quotes and backslashes escaped, and every character that does not print
    (controls, line and paragraph separators) as ``\\uXXXX``, so that a value shown in a message stays on its line."""
    if ch in '"\\':
        return "\\" + ch
    if ch != "\t" and not ch.isprintable():
        return f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08X}"
    return ch


def _attribute(value: bool | int | float | str) -> Attribute:
    """A field's value as an attribute: booleans and integers i64, numbers f64, strings as strings."""
    if isinstance(value, (bool, int)):
        return IntAttr(int(value))
    if isinstance(value, float):
        return FloatAttr(value, _F64)
    return StringAttr(value)


def _plain(attr: Attribute, key: str, where: str) -> Any:
    """The value an attribute made by ``_attribute`` (or the faulty tiles' array) carries."""
    if isinstance(attr, DenseArrayAttr):
        return list(attr.value)
    if isinstance(attr, (IntAttr, FloatAttr, StringAttr)):
        return attr.value
    raise ChipError(f"{where}: {key} = {attr} is not a number, string or array<i64>")
