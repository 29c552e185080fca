"""The chip description: presets, round trips through TOML, JSON and the ``cim.chip`` attribute, and one clear
error naming the file and the field for every kind of bad description."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from cimc.compiler.pipeline import CrossbarOptions
from cimc.ir.attributes import ArrayAttr, Attribute, DenseArrayAttr, DictAttr, FloatAttr, IntAttr, StringAttr
from cimc.ir.dialects.builtin import new_module
from cimc.ir.parser import parse_module
from cimc.ir.printer import print_module
from cimc.ir.target.chip import ATTRIBUTE, CHIPS_DIR, PRESETS, Chip, ChipError, OpAmp, list_presets, load_chip
from cimc.ir.types import ElementType

#: ResNet-18 for CIFAR input (3x3 stem, no max-pool): every crossbar layer as (contraction rows K, output columns M).
RESNET18_CIFAR = [
    (3 * 9, 64),  # stem
    *[(64 * 9, 64)] * 4,  # layer1: two BasicBlocks
    (64 * 9, 128),
    *[(128 * 9, 128)] * 3,
    (64, 128),  # layer2 and its 1x1 downsample
    (128 * 9, 256),
    *[(256 * 9, 256)] * 3,
    (128, 256),  # layer3
    (256 * 9, 512),
    *[(512 * 9, 512)] * 3,
    (256, 512),  # layer4
    (512, 10),  # classifier
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chip.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _load_text(tmp_path: Path, text: str) -> Chip:
    return load_chip(_write(tmp_path, text))


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_round_trips_through_toml_json_and_the_attribute(name: str, tmp_path: Path) -> None:
    chip = load_chip(name)
    assert chip.name == name and chip.description
    text = chip.to_toml()
    again = _load_text(tmp_path, text)
    assert again == chip and again.to_toml() == text  # canonical: the text is a fixed point
    assert Chip.from_dict(json.loads(json.dumps(chip.to_dict()))) == chip
    assert Chip.from_attribute(chip.to_attribute()) == chip


def test_the_chip_survives_the_printed_ir() -> None:
    """The attribute the pipeline attaches prints and parses back to the same chip, f64 energies bit for bit."""
    chip = Chip.from_dict({**load_chip("hermes").to_dict(), "faulty_tiles": [[7, 7], [0, 1]]})
    module = new_module([])
    module.attributes[ATTRIBUTE] = chip.to_attribute()
    parsed = parse_module(print_module(module), "chip.mlir")
    assert Chip.from_attribute(parsed.attributes[ATTRIBUTE]) == chip


def test_the_attribute_is_flat_with_the_names_passes_read() -> None:
    """``place`` and ``split-groups`` read the grid from ``mesh_rows``, ``mesh_cols``, ``torus`` (0 or 1),
    ``arrays_per_tile`` and the flat ``faulty_tiles``; every other field keeps its own name."""
    data = load_chip("isaac").to_dict()
    data["mesh"]["torus"] = True
    data["faulty_tiles"] = [[11, 13], [0, 1]]
    attr = Chip.from_dict(data).to_attribute()
    assert attr.get("mesh_rows") == IntAttr(12) and attr.get("mesh_cols") == IntAttr(14)
    assert attr.get("torus") == IntAttr(1) and attr.get("arrays_per_tile") == IntAttr(96)
    assert attr.get("faulty_tiles") == DenseArrayAttr(ElementType("i64"), (0, 1, 11, 13))
    assert attr.get("array_rows") == IntAttr(128) and attr.get("sign_encoding") == StringAttr("offset")
    assert attr.get("clock_hz") == FloatAttr(1.2e9, ElementType("f64"))
    assert attr.get("adc_pj") == FloatAttr(1.67, ElementType("f64"))
    assert len(attr.value) == 3 + sum(len(section) for section in data.values() if isinstance(section, dict))
    assert Chip.from_attribute(attr) == Chip.from_dict(data)


def test_strings_with_quotes_tabs_and_accents_round_trip(tmp_path: Path) -> None:
    data = load_chip("default").to_dict()
    data["description"] = 'a "quoted" \\ path\twith tab and é'
    chip = Chip.from_dict(data)
    assert _load_text(tmp_path, chip.to_toml()) == chip


@pytest.mark.parametrize("text", ["two\nlines", "DEL \x7f", "x" * 1025])
def test_a_description_is_one_printable_line(text: str) -> None:
    data = {**load_chip("default").to_dict(), "description": text}
    with pytest.raises(ChipError, match="description must be one line of at most 1024 printable characters"):
        Chip.from_dict(data)


@pytest.mark.parametrize(
    ("name", "tiles", "arrays", "size", "cell_bits", "dac_bits", "adc_bits", "sign_encoding"),
    [
        ("default", 256, 32_768, 64, 2, 1, 8, "differential"),
        ("isaac", 168, 16_128, 128, 2, 1, 8, "offset"),
        ("hermes", 64, 128, 256, 8, 8, 8, "differential"),
        ("mythic-m1076", 76, 152, 1024, 8, 8, 8, "differential"),
        ("milan-closed-loop", 1, 2, 64, 1, 8, 8, "differential"),
    ],
)
def test_preset_figures(
    name: str, tiles: int, arrays: int, size: int, cell_bits: int, dac_bits: int, adc_bits: int, sign_encoding: str
) -> None:
    chip = load_chip(name)
    assert (chip.tiles, chip.arrays, chip.capacity * chip.tiles) == (tiles, arrays, arrays)
    assert (chip.tile.array_rows, chip.tile.array_cols) == (size, size)
    assert (chip.tile.cell_bits, chip.tile.dac_bits, chip.tile.adc_bits) == (cell_bits, dac_bits, adc_bits)
    assert chip.tile.sign_encoding == sign_encoding
    assert chip.usable_tiles == [(r, c) for r in range(chip.mesh.rows) for c in range(chip.mesh.cols)]


def test_mythic_holds_about_80m_weights() -> None:
    """76 tiles of one 1024x1024 weight block (a positive and a negative array of 8-bit cells)."""
    chip = load_chip("mythic-m1076")
    weights = chip.arrays * chip.tile.array_rows * chip.tile.array_cols // 2
    assert weights == 76 * 1024 * 1024 == 79_691_776


def test_hermes_four_phase_differs_from_one_phase_only_in_its_reads() -> None:
    """Le Gallo et al., Nature Electronics 2023: 63.1 TOPS one-phase, 16.1 four-phase, over 64 cores; a core's
    256x256 MVM is 131,072 ops, so it takes 133 ns, or 521 ns, at 1 GHz."""
    one, four = load_chip("hermes"), load_chip("hermes-4phase")
    tile = dataclasses.replace(four.tile, read_cycles=one.tile.read_cycles)
    assert dataclasses.replace(four, name=one.name, description=one.description, tile=tile, energy=one.energy) == one
    assert one.tile.read_cycles + one.tile.adc_cycles == round(131_072 * 64 / 63.1e12 * 1e9) == 133
    assert four.tile.read_cycles + four.tile.adc_cycles == round(131_072 * 64 / 16.1e12 * 1e9) == 521


def test_default_chip_holds_resnet18_at_8_bit_weights() -> None:
    """Arrays per layer in closed form: row blocks x column blocks x bit slices x signs."""
    chip = load_chip("default")
    options = CrossbarOptions.for_chip(chip)
    slices = math.ceil(options.weight_bits / options.cell_bits)
    signs = 2 if options.sign_encoding == "differential" else 1
    needed = sum(
        math.ceil(k / options.array_rows) * math.ceil(m / options.array_cols) * slices * signs
        for k, m in RESNET18_CIFAR
    )
    assert needed == 21_864
    assert chip.arrays >= needed


def test_crossbar_options_come_from_the_chip() -> None:
    """The chip's cells, converters, arrays and sign encoding are the default; any field given overrides them."""
    options = CrossbarOptions.for_chip(load_chip("isaac"))
    assert (options.cell_bits, options.dac_bits, options.adc_bits, options.adc_range) == (2, 1, 8, "calibrated")
    assert (options.array_rows, options.array_cols, options.sign_encoding) == (128, 128, "offset")
    assert (options.input_bits, options.weight_bits, options.replicate) == (8, 8, "none")
    hermes = CrossbarOptions.for_chip(load_chip("hermes"))
    assert (hermes.cell_bits, hermes.dac_bits, hermes.adc_bits, hermes.array_rows) == (8, 8, 8, 256)
    narrow = CrossbarOptions.for_chip(load_chip("default"), weight_bits=4, adc_bits=6, adc_range="full")
    assert (narrow.weight_bits, narrow.adc_bits, narrow.adc_range, narrow.cell_bits) == (4, 6, "full", 2)
    assert CrossbarOptions.for_chip(load_chip("hermes"), adc_bits=0).adc_bits == 0  # the exact reference, asked for
    with pytest.raises(TypeError):
        CrossbarOptions.for_chip(load_chip("default"), cell_bit=3)


def test_faulty_tiles_are_not_usable(tmp_path: Path) -> None:
    text = load_chip("default").to_toml().replace("faulty_tiles = []", "faulty_tiles = [[2, 3], [0, 1]]")
    chip = _load_text(tmp_path, text)
    assert chip.faulty_tiles == ((0, 1), (2, 3))
    assert len(chip.usable_tiles) == 254 and chip.arrays == 254 * 128
    assert (0, 1) not in chip.usable_tiles and (2, 3) not in chip.usable_tiles
    assert chip.usable_tiles[:3] == [(0, 0), (0, 2), (0, 3)]  # row-major, the faulty one skipped
    assert chip.usable_tiles == sorted(chip.usable_tiles)


def test_presets_are_listed_default_first() -> None:
    listed = list_presets()
    assert [name for name, _ in listed] == list(PRESETS)
    assert PRESETS[0] == "default" and set(PRESETS) >= {"isaac", "hermes", "mythic-m1076", "milan-closed-loop"}
    lines = dict(listed)
    assert lines["default"] == (
        "ISAAC-like ReRAM chip sized for ResNet-18 at 8-bit weights "
        "[16x16 mesh, 32,768 arrays of 64x64, 2-bit rram cells]"
    )
    assert all("\n" not in line for line in lines.values())


def test_every_energy_constant_has_its_source() -> None:
    """Each energy line carries a comment or sits under one that names its source or says it is an estimate."""
    for name in PRESETS:
        lines = (CHIPS_DIR / f"{name}.toml").read_text().splitlines()
        energy = lines.index("[energy]")
        for number, line in enumerate(lines[energy + 1 :], start=energy + 1):
            if re.match(r"\w+ = ", line):
                assert "#" in line or lines[number - 1].startswith("#"), f"{name}.toml: '{line}' has no source"


# --- errors: one line naming the file and the field, saying what is expected ----------------------------------


def _mesh(text: str, rows: int, cols: int) -> str:
    return text.replace("rows = 16\ncols = 16", f"rows = {rows}\ncols = {cols}")


DEFAULT = load_chip("default").to_toml()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DEFAULT.split("[energy]")[0], "missing section [energy]"),
        (DEFAULT.replace("adc_bits = 8\n", ""), "missing field [tile] adc_bits (an integer from 1 to 16)"),
        (DEFAULT.replace("read_cycles = 120\n", ""), "missing field [tile] read_cycles (an integer from 1 to 1048576)"),
        (
            DEFAULT.replace("adc_cycles = 1\n", "adc_cycles = 0\n"),
            "[tile] adc_cycles must be an integer from 1 to 1048576, got 0",
        ),
        (DEFAULT.replace('name = "default"\n', ""), "missing field name (a string)"),
        (
            DEFAULT.replace("cell_bits = 2", 'cell_bits = "2"'),
            '[tile] cell_bits must be an integer from 1 to 8, got "2"',
        ),
        (DEFAULT.replace("arrays = 128", "arrays = true"), "[tile] arrays must be an integer from 1 to 4096, got true"),
        (DEFAULT.replace("arrays = 128", "arrays = 1.5"), "[tile] arrays must be an integer from 1 to 4096, got 1.5"),
        (DEFAULT.replace("torus = false", "torus = 0"), "[mesh] torus must be true or false, got 0"),
        (
            DEFAULT.replace("cell_bits = 2", "cell_bits = {a = 1}"),
            "[tile] cell_bits must be an integer from 1 to 8, got a table",
        ),
        (
            DEFAULT.replace("clock_hz = 1200000000.0", "clock_hz = 2016-06-18"),
            "[network] clock_hz must be a number from 1000 to 1e+12, got a date",
        ),
        (DEFAULT.replace("cell_bits = 2", "cell_bits = 9"), "[tile] cell_bits must be an integer from 1 to 8, got 9"),
        (DEFAULT.replace("dac_bits = 1", "dac_bits = 0"), "[tile] dac_bits must be an integer from 1 to 8, got 0"),
        (DEFAULT.replace("adc_bits = 8", "adc_bits = 17"), "[tile] adc_bits must be an integer from 1 to 16, got 17"),
        (
            DEFAULT.replace("array_rows = 64", "array_rows = 0"),
            "[tile] array_rows must be an integer from 1 to 4096, got 0",
        ),
        (DEFAULT.replace("rows = 16", "rows = -2"), "[mesh] rows must be an integer from 1 to 64, got -2"),
        (
            DEFAULT.replace("clock_hz = 1200000000.0", "clock_hz = 0"),
            "[network] clock_hz must be a number from 1000 to 1e+12, got 0",
        ),
        (
            DEFAULT.replace("clock_hz = 1200000000.0", "clock_hz = inf"),
            "[network] clock_hz must be a number from 1000 to 1e+12",
        ),
        (
            DEFAULT.replace("dac_pj = 0.39", "dac_pj = -0.1"),
            "[energy] dac_pj must be a number from 0 to 1e+09, got -0.1",
        ),
        (
            DEFAULT.replace("array_row_pj = 0.117", "array_row_pj = -1.0"),
            "[energy] array_row_pj must be a number from 0 to 1e+09, got -1.0",
        ),
        (  # the whole-array read energy of earlier descriptions: now split into its parts
            DEFAULT.replace("array_fixed_pj = 0.0", "array_read_pj = 7.5"),
            "[energy] unknown field 'array_read_pj' (did you mean 'array_fixed_pj'?)",
        ),
        (DEFAULT.replace('device = "rram"', 'device = "dram"'), "[tile] device must be one of 'sram', 'rram'"),
        (
            DEFAULT.replace('sign_encoding = "differential"', 'sign_encoding = "twos"'),
            "[tile] sign_encoding must be one of 'differential', 'offset', got \"twos\"",
        ),
        (
            DEFAULT.replace("cell_bits = 2", "cel_bits = 2"),
            "[tile] unknown field 'cel_bits' (did you mean 'cell_bits'?)",
        ),
        (DEFAULT.replace("[mesh]", "[meshh]"), "unknown section [meshh] (did you mean [mesh]?)"),
        (DEFAULT.replace('name = "default"', 'nme = "default"'), "unknown field 'nme' (did you mean 'name'?)"),
        (DEFAULT.replace('name = "default"', 'name = ""'), "name must not be empty"),
        (
            DEFAULT.replace("faulty_tiles = []", "faulty_tiles = [[16, 0]]"),
            "faulty_tiles: [16, 0] is outside the 16x16 mesh (rows 0..15, cols 0..15)",
        ),
        (
            DEFAULT.replace("faulty_tiles = []", "faulty_tiles = [[1, 1], [1, 1]]"),
            "faulty_tiles: [1, 1] is listed twice",
        ),
        (
            DEFAULT.replace("faulty_tiles = []", "faulty_tiles = [1, 2]"),
            "faulty_tiles must be a list of [row, col] pairs; 1 is not a pair of integers",
        ),
        (
            _mesh(DEFAULT, 1, 2).replace("faulty_tiles = []", "faulty_tiles = [[0, 1], [0, 0]]"),
            "faulty_tiles: all 2 tiles are faulty",
        ),
        (DEFAULT.replace("rows = 16", "rows = "), "not valid TOML"),
    ],
)
def test_bad_descriptions_name_the_file_and_the_field(text: str, expected: str, tmp_path: Path) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ChipError) as error:
        load_chip(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message


def test_a_section_given_as_a_value_is_named(tmp_path: Path) -> None:
    text = DEFAULT.replace("[network]\nlink_bits = 32\nrouter_latency = 2\nclock_hz = 1200000000.0\n", "")
    path = _write(tmp_path, text.replace("faulty_tiles = []", "faulty_tiles = []\nnetwork = 5"))
    with pytest.raises(ChipError, match=r"'network' must be a table \[network\], got 5"):
        load_chip(path)


def test_unknown_presets_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ChipError, match=r"unknown chip 'hermez': did you mean 'hermes'\? presets are default, "):
        load_chip("hermez")
    with pytest.raises(ChipError, match=r"unknown chip 'tpu': presets are default, .*mythic-m1076.*\.toml file"):
        load_chip("tpu")
    with pytest.raises(ChipError, match=r"nope\.toml: no such chip file"):
        load_chip(tmp_path / "nope.toml")
    with pytest.raises(ChipError, match=r"nope\.toml: no such chip file"):
        load_chip(str(tmp_path / "nope.toml"))


def test_a_bad_attribute_is_a_chip_error() -> None:
    attr = load_chip("default").to_attribute()

    def without(key: str, *extra: tuple[str, Attribute]) -> DictAttr:
        return DictAttr((*((k, v) for k, v in attr.value if k != key), *extra))

    where = "the 'cim.chip' attribute: "
    with pytest.raises(ChipError, match=re.escape(where + "missing field [tile] arrays (an integer from 1 to 4096)")):
        Chip.from_attribute(without("arrays_per_tile"))
    with pytest.raises(ChipError, match=re.escape(where + "faulty_tiles must be array<i64: row, col, ...>")):
        Chip.from_attribute(without("faulty_tiles", ("faulty_tiles", DenseArrayAttr(ElementType("i64"), (1, 2, 3)))))
    with pytest.raises(ChipError, match=re.escape(where + "[mesh] torus must be true or false, got 2")):
        Chip.from_attribute(without("torus", ("torus", IntAttr(2))))
    with pytest.raises(ChipError, match=re.escape(where + "name must be a string, got 1")):
        Chip.from_attribute(without("name", ("name", IntAttr(1))))
    with pytest.raises(ChipError, match=re.escape(where + "unknown field 'arays_per_tile'")):
        Chip.from_attribute(without("name", ("arays_per_tile", IntAttr(1)), ("name", StringAttr("x"))))
    with pytest.raises(ChipError, match=re.escape(where + "expected a dictionary made by Chip.to_attribute")):
        Chip.from_attribute(StringAttr("default"))
    with pytest.raises(ChipError, match=re.escape(where + "mesh_rows = [] is not a number, string or array<i64>")):
        Chip.from_attribute(without("mesh_rows", ("mesh_rows", ArrayAttr(()))))


# --- the optional [opamp] section of closed-loop chips ------------------------------------------------------------


def test_opamps_of_the_closed_loop_chip_round_trip_and_flatten_with_a_prefix(tmp_path: Path) -> None:
    chip = load_chip("milan-closed-loop")
    assert chip.opamp == OpAmp(gain=1e4, gbw_hz=1e7, offset_mv=1.0, power_uw=100.0, v_read=0.2, v_sat=0.5)
    assert "[opamp]" in chip.to_toml() and chip.to_dict()["opamp"]["gbw_hz"] == 1e7
    attr = chip.to_attribute()
    assert attr.get("opamp_gain") == FloatAttr(1e4, ElementType("f64"))
    assert Chip.from_attribute(attr) == chip and _load_text(tmp_path, chip.to_toml()) == chip
    plain = load_chip("default")
    assert plain.opamp is None and "opamp" not in plain.to_dict() and "[opamp]" not in plain.to_toml()
    assert Chip.from_attribute(plain.to_attribute()).opamp is None


MILAN = load_chip("milan-closed-loop").to_toml()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MILAN.replace("gain = 10000.0", "gain = 1"), "[opamp] gain must be a number from 2 to 1e+12, got 1"),
        (MILAN.replace("gbw_hz = 10000000.0\n", ""), "missing field [opamp] gbw_hz (a number from 1 to 1e+12)"),
        (
            MILAN.replace("offset_mv = 1.0", "offset_mv = -1.0"),
            "[opamp] offset_mv must be a number from 0 to 100000, got -1.0",
        ),
        (MILAN.replace("v_sat = 0.5", "v_sat = 0"), "[opamp] v_sat must be a number from 1e-06 to 100, got 0"),
        (MILAN.replace("v_read = 0.2", "v_red = 0.2"), "[opamp] unknown field 'v_red' (did you mean 'v_read'?)"),
        (MILAN.replace("[opamp]", "[opamps]"), "unknown section [opamps] (did you mean [opamp]?)"),
    ],
)
def test_bad_opamp_sections_name_the_field(text: str, expected: str, tmp_path: Path) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ChipError) as error:
        load_chip(path)
    assert str(error.value).startswith(f"{path}: ") and expected in str(error.value)
