"""Loading compiled binaries: the documented layout, exact round trips that run bit for bit like the compiled module,
and a clear ``BinaryFormatError`` for every kind of damage (flipped bytes, truncation, versions, flags, sections)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cimc.compiler.binary import write_binary
from cimc.compiler.codegen import generate
from cimc.compiler.pipeline import PipelineOptions, compile_binary, compile_onnx
from cimc.ir import ModuleOp, print_module, run_module
from cimc.ir.attributes import DenseResourceAttr
from cimc.ir.target.chip import load_chip
from cimc.runtime.binary import (
    ALIGNMENT,
    SECTIONS,
    BinaryFormatError,
    CompiledModel,
    decode_weights,
    encode_weights,
    load_binary,
    pack_cells,
    pack_container,
    read_sections,
)
from cimc.runtime.isa import Streams

MODELS = Path(__file__).resolve().parents[2] / "models"
REPORT = {"placement": {"objective": 1234, "naive_objective": 2048, "status": "OPTIMAL", "bound": 1234.0}}
META = {"model": "digits_cnn.onnx", "options": {"chip": "default", "weight_bits": 8}}


@pytest.fixture(scope="module")
def compiled() -> ModuleOp:
    module, _ = compile_onnx(MODELS / "digits_cnn.onnx", PipelineOptions(emit="placed"))
    return module


@pytest.fixture(scope="module")
def program(compiled: ModuleOp) -> bytes:
    return generate(compiled).encode()


@pytest.fixture(scope="module")
def binary(compiled: ModuleOp, program: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cimb") / "digits_cnn.cimb"
    write_binary(path, compiled, program=program, report=REPORT, meta=META)
    return path


def _table(data: bytes) -> dict[str, tuple[int, int]]:
    """Section name -> (offset, length), read by hand as docs/binary-format.md lays the table out."""
    count = struct.unpack_from("<I", data, 16)[0]
    table = {}
    for i in range(count):
        name, offset, length, _ = struct.unpack_from("<16sQQ32s", data, 20 + 64 * i)
        table[name.rstrip(b"\0").decode()] = (offset, length)
    return table


def _load_bytes(data: bytes, tmp_path: Path) -> CompiledModel:
    path = tmp_path / "damaged.cimb"
    path.write_bytes(data)
    return load_binary(path)


def test_layout_is_the_documented_one(binary: Path, program: bytes) -> None:
    data = binary.read_bytes()
    magic, major, minor, flags, count = struct.unpack_from("<8sHHII", data, 0)
    assert (magic, major, minor, flags, count) == (b"CIMB\x00\x1a\r\n", 4, 1, 0, 5)
    table_end = 20 + 64 * count
    assert hashlib.sha256(data[:table_end]).digest() == data[table_end : table_end + 32]
    table = _table(data)
    assert list(table) == list(SECTIONS)
    end = table_end + 32
    for i, (name, (offset, length)) in enumerate(table.items()):
        assert offset % 64 == 0 and offset == -(-end // 64) * 64, name
        digest = struct.unpack_from("<32s", data, 20 + 64 * i + 32)[0]
        assert hashlib.sha256(data[offset : offset + length]).digest() == digest
        assert not any(data[end:offset])
        end = offset + length
    assert end == len(data)
    section = {name: data[o : o + n] for name, (o, n) in table.items()}
    assert json.loads(section["meta"]) == {**META, "cimc_version": json.loads(section["meta"])["cimc_version"]}
    assert section["meta"] == json.dumps(json.loads(section["meta"]), sort_keys=True, separators=(",", ":")).encode()
    assert section["program"] == program
    assert json.loads(section["report"]) == REPORT


def test_weights_section_maps_every_resource_key_to_its_array(binary: Path, compiled: ModuleOp) -> None:
    data = binary.read_bytes()
    offset, length = _table(data)["weights"]
    weights = data[offset : offset + length]
    (size,) = struct.unpack_from("<Q", weights, 0)
    index = json.loads(weights[8 : 8 + size])
    start = -(-(8 + size) // 64) * 64
    ir_offset, ir_length = _table(data)["ir"]
    ir = data[ir_offset : ir_offset + ir_length].decode()
    assert ir == print_module(compiled) and "dialect_resources" not in ir
    assert set(index) == set(re.findall(r"dense_resource<([^>]+)>", ir))
    originals = {
        attr.blob.name: attr.array  # the digits CNN's blob names are already unique keys
        for op in compiled.walk()
        for attr in op.attributes.values()
        if isinstance(attr, DenseResourceAttr)
    }
    assert set(originals) == set(index)
    for key, entry in index.items():
        assert entry["offset"] % 64 == 0 and (offset + start + entry["offset"]) % 64 == 0
        raw = weights[start + entry["offset"] : start + entry["offset"] + entry["length"]]
        if entry.get("pairs"):  # a differential pair: magnitudes [slices, weights], then a sign bit per weight
            shape = entry["shape"]
            pairs = math.prod(shape[2:])
            magnitudes = _unpacked(raw, entry["bits"], shape[1] * pairs).reshape(shape[1], pairs)
            signs = _unpacked(raw[-(-shape[1] * pairs * entry["bits"] // 8) :], 1, pairs)
            stored = np.stack([magnitudes * (1 - signs), magnitudes * signs]).astype(np.uint8).reshape(shape)
        elif "bits" in entry:
            stored = _unpacked(raw, entry["bits"], originals[key].size).astype(np.uint8).reshape(entry["shape"])
        else:
            stored = np.frombuffer(raw, originals[key].dtype.newbyteorder("<")).reshape(entry["shape"])
        np.testing.assert_array_equal(stored, originals[key])
    levels = [entry for entry in index.values() if entry["dtype"] == "ui8" and len(entry["shape"]) == 4]
    assert levels and all(entry["bits"] <= 2 and entry["pairs"] for entry in levels)  # 2-bit cells, in pairs


def _unpacked(raw: bytes, bits: int, count: int) -> np.ndarray:
    """``count`` values of ``bits`` bits, least significant first, from each byte's lowest bit up (int64)."""
    planes = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[: count * bits].reshape(-1, bits)
    return (planes.astype(np.int64) << np.arange(bits)).sum(axis=1)


def test_round_trip_runs_bit_for_bit(binary: Path, compiled: ModuleOp, program: bytes) -> None:
    model = load_binary(binary)
    assert model.version == (4, 1)
    assert {k: v for k, v in model.meta.items() if k != "cimc_version"} == META
    assert (model.chip, model.program.streams, model.report) == (load_chip("default"), Streams.decode(program), REPORT)
    assert print_module(model.module, resources=True) == print_module(compiled, resources=True)
    with np.load(MODELS / "digits_test.npz") as test:
        inputs = [test["x"][:64]]
    expected = run_module(compiled, inputs)
    got = run_module(model.module, inputs)
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(got[name], expected[name])


def test_meta_records_the_model_by_name_and_sha256_and_compiles_stay_identical(tmp_path: Path) -> None:
    """``model_sha256`` is the SHA-256 of the ONNX file's bytes (how ``cimc eval`` recognises the model), the name
    is the file's name alone, and compiling twice from two folders gives the same bytes."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "digits_mlp.onnx").write_bytes((MODELS / "digits_mlp.onnx").read_bytes())
        options = PipelineOptions(calib=MODELS / "digits_calib.npz", placement_effort=1)
        compile_binary(tmp_path / folder / "digits_mlp.onnx", tmp_path / folder / "m.cimb", options)
    data = (tmp_path / "a" / "m.cimb").read_bytes()
    assert data == (tmp_path / "b" / "m.cimb").read_bytes()
    meta = load_binary(tmp_path / "a" / "m.cimb").meta
    digest = hashlib.sha256((MODELS / "digits_mlp.onnx").read_bytes()).hexdigest()
    assert (meta["model"], meta["model_sha256"]) == ("digits_mlp.onnx", digest)


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({"model": "/abs/m.onnx"}, "field 'model' must be the model's file name, not '/abs/m.onnx'"),
        ({"model": "sub\\m.onnx"}, "field 'model' must be the model's file name"),
        ({"model": ["m.onnx"]}, "field 'model' must be the model's file name"),
        ({"model_sha256": "ABC"}, "field 'model_sha256' must be 64 hex digits, not 'ABC'"),
        ({"model_sha256": 12}, "field 'model_sha256' must be 64 hex digits"),
    ],
)
def test_meta_holds_no_path(binary: Path, tmp_path: Path, meta: dict, words: str) -> None:
    """Nothing in a binary is a path: a ``model`` with a folder in it is refused at load, as is a malformed hash."""
    sections = [(n, json.dumps(meta).encode() if n == "meta" else p) for n, p in _sections(binary)]
    with pytest.raises(BinaryFormatError, match=re.escape(f"section 'meta': {words}")):
        _load_bytes(pack_container(sections), tmp_path)


def test_overlapping_weights_are_refused() -> None:
    """Two index entries on the same bytes would alias one array's values as another's."""
    section = encode_weights([("a", np.arange(16, dtype=np.float32)), ("b", np.ones(16, np.float32))])
    size = struct.unpack_from("<Q", section)[0]
    index = json.loads(section[8 : 8 + size])
    index["b"]["offset"] = index["a"]["offset"]
    text = json.dumps(index).encode()
    head = struct.pack("<Q", len(text)) + text
    damaged = head + bytes(-len(head) % 64) + section[-(-(8 + size) // 64) * 64 :]
    with pytest.raises(BinaryFormatError, match="'b' at data bytes 0 to 64 overlaps 'a'"):
        decode_weights(memoryview(damaged), "t.cimb")


def test_loaded_arrays_are_read_only_aligned_views(binary: Path) -> None:
    model = load_binary(binary)
    arrays = [
        attr.array
        for op in model.module.walk()
        for attr in op.attributes.values()
        if isinstance(attr, DenseResourceAttr)
    ]
    assert arrays
    for array in arrays:
        assert not array.flags.writeable and array.flags.aligned and array.flags.c_contiguous


@pytest.mark.parametrize(
    "array",
    [
        np.arange(-40, 40, dtype=np.int8).reshape(4, 20),
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.linspace(-1, 1, 30, dtype=np.float16),
        np.array([1.5, -np.inf, np.nan, 1e-300], dtype=np.float64),
        np.arange(-5, 5, dtype=np.int64) * (2**40),
        np.array([True, False, True]),
        np.array(7, dtype=np.int32),
        np.zeros((0, 3), np.float32),
        np.arange(12, dtype=">f4").reshape(3, 4),  # big-endian in memory: stored little-endian all the same
        np.arange(12, dtype=np.uint16).reshape(3, 4).T,  # not C-contiguous: stored in C order
    ],
    ids=lambda a: f"{a.dtype.str}{list(a.shape)}",
)
def test_weights_encoding_round_trips_every_element_type(array: np.ndarray) -> None:
    section = encode_weights([("before", np.ones(3, np.uint8)), ("w", array)])
    decoded = decode_weights(memoryview(section), "t.cimb")
    assert decoded["w"].shape == array.shape and decoded["w"].dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(decoded["w"], array)
    np.testing.assert_array_equal(decoded["before"], np.ones(3, np.uint8))


# --- damage: every case must raise BinaryFormatError naming the file and the fault


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(BinaryFormatError, match=r"damaged\.cimb: empty file"):
        _load_bytes(b"", tmp_path)


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n" + bytes(100), b'"builtin.module"() ({\n', b"CIMC" + bytes(40)])
def test_wrong_magic(data: bytes, tmp_path: Path) -> None:
    with pytest.raises(BinaryFormatError, match="not a cimc binary"):
        _load_bytes(data, tmp_path)


def test_text_mode_copy_is_named(binary: Path, tmp_path: Path) -> None:
    with pytest.raises(BinaryFormatError, match="text-mode copy"):
        _load_bytes(binary.read_bytes().replace(b"\r\n", b"\n"), tmp_path)


def test_truncation_names_the_section(binary: Path, tmp_path: Path) -> None:
    data = binary.read_bytes()
    table = _table(data)
    for size in (3, 8, 19):
        with pytest.raises(BinaryFormatError, match="truncated: .* header"):
            _load_bytes(data[:size], tmp_path)
    for size in (20, 100, 20 + 64 * 5 + 31):
        with pytest.raises(BinaryFormatError, match="truncated or corrupted header"):
            _load_bytes(data[:size], tmp_path)
    for name, (offset, length) in table.items():
        for size in (offset, offset + length // 2, offset + length - 1):
            if length == 0 or size >= len(data):
                continue
            with pytest.raises(BinaryFormatError, match=f"truncated: section '{name}' needs bytes"):
                _load_bytes(data[:size], tmp_path)


def test_a_flipped_byte_in_each_section_names_it(binary: Path, tmp_path: Path) -> None:
    data = binary.read_bytes()
    for name, (offset, length) in _table(data).items():
        for position in (offset, offset + length // 2, offset + length - 1):
            damaged = bytearray(data)
            damaged[position] ^= 0x10
            with pytest.raises(BinaryFormatError, match=f"damaged\\.cimb: section '{name}' checksum mismatch"):
                _load_bytes(bytes(damaged), tmp_path)


@pytest.mark.parametrize(
    ("position", "words"),
    [
        (0, "not a cimc binary"),
        (5, "damaged magic number"),
        (8, "newer cimc: format 20.1"),  # major 4 ^ 0x10
        (10, "header checksum mismatch"),  # minor
        (12, "header checksum mismatch"),  # flags
        (16, "header checksum mismatch"),  # section count 5 -> 21
        (20, "header checksum mismatch"),  # the first section's name
        (20 + 64 * 2 + 17, "header checksum mismatch"),  # the weights section's offset
        (20 + 64 * 4 + 40, "header checksum mismatch"),  # the report section's SHA-256
        (20 + 64 * 5 + 5, "header checksum mismatch"),  # the header checksum itself
        (20 + 64 * 5 + 32, "nonzero bytes in the padding after the section table"),
    ],
)
def test_a_flipped_byte_in_the_header(binary: Path, tmp_path: Path, position: int, words: str) -> None:
    damaged = bytearray(binary.read_bytes())
    damaged[position] ^= 0x10
    with pytest.raises(BinaryFormatError, match=words):
        _load_bytes(bytes(damaged), tmp_path)


def test_every_flipped_byte_is_caught(binary: Path) -> None:
    """Every single-byte change anywhere in the file, padding included, is refused before any section is decoded."""
    data = binary.read_bytes()
    for position in range(0, len(data), 7):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        with pytest.raises(BinaryFormatError):
            read_sections(bytes(damaged), "x.cimb")


def test_padding_between_sections_must_be_zero(binary: Path, tmp_path: Path) -> None:
    data = bytearray(binary.read_bytes())
    name, end = next((name, o + n) for name, (o, n) in _table(bytes(data)).items() if (o + n) % ALIGNMENT)
    data[end] = 1
    with pytest.raises(BinaryFormatError, match=f"nonzero bytes in the padding after section '{name}'"):
        _load_bytes(bytes(data), tmp_path)


def test_appended_bytes(binary: Path, tmp_path: Path) -> None:
    with pytest.raises(BinaryFormatError, match="3 unexpected bytes after section 'report'"):
        _load_bytes(binary.read_bytes() + b"\n\n\n", tmp_path)


def _sections(binary: Path) -> list[tuple[str, bytes]]:
    _, sections = read_sections(binary.read_bytes(), str(binary))
    return [(name, payload.tobytes()) for name, payload in sections.items()]


def test_newer_major_version_says_upgrade(binary: Path, tmp_path: Path) -> None:
    data = pack_container(_sections(binary), version=(5, 3))
    with pytest.raises(BinaryFormatError, match=r"written by a newer cimc: format 5\.3, this cimc reads 4\.x; upgrade"):
        _load_bytes(data, tmp_path)


def test_older_major_version_says_recompile(binary: Path, tmp_path: Path) -> None:
    with pytest.raises(BinaryFormatError, match=r"format 1\.9 is older .* recompile"):
        _load_bytes(pack_container(_sections(binary), version=(1, 9)), tmp_path)


def test_newer_minor_version_with_an_unknown_section_loads(binary: Path, tmp_path: Path) -> None:
    data = pack_container([*_sections(binary), ("extension", b"\x01\x02")], version=(4, 4))
    assert _load_bytes(data, tmp_path).version == (4, 4)


def test_unknown_flags(binary: Path, tmp_path: Path) -> None:
    with pytest.raises(BinaryFormatError, match="unknown flags 0x00000004: written by a newer cimc; upgrade cimc"):
        _load_bytes(pack_container(_sections(binary), flags=4), tmp_path)


def test_missing_section(binary: Path, tmp_path: Path) -> None:
    sections = [(name, payload) for name, payload in _sections(binary) if name != "program"]
    with pytest.raises(BinaryFormatError, match="missing section 'program'"):
        _load_bytes(pack_container(sections), tmp_path)


_EMPTY_MAIN = b"""\
"builtin.module"() ({
  "func.func"() <{function_type = () -> (), sym_name = "main"}> ({
    "func.return"() : () -> ()
  }) : () -> ()
}) : () -> ()
"""


@pytest.mark.parametrize(
    ("section", "payload", "words"),
    [
        ("meta", b"{not json", "section 'meta' is not valid JSON"),
        ("report", b"[1, 2]", "section 'report' holds a JSON list, not an object"),
        ("report", b"\xff\xfe", "section 'report' is not valid JSON"),
        ("ir", b'"builtin.module"() ({', "section 'ir' is not valid IR"),
        ("ir", _EMPTY_MAIN.replace(b'"main"', b"3"), "section 'ir' does not verify .*'sym_name' must be StringAttr"),
        ("weights", b"\x05", "section 'weights': shorter than its index length"),
        ("weights", struct.pack("<Q", 2) + b"{}", "section 'ir' names resources \\[.*\\] missing from 'weights'"),
        ("weights", struct.pack("<Q", 1000) + b"{}", "index of 1000 bytes runs past"),
    ],
)
def test_bad_section_content(binary: Path, tmp_path: Path, section: str, payload: bytes, words: str) -> None:
    """Well-formed containers (checksums right) whose sections do not decode: a writer bug, still a clear error."""
    sections = [(name, payload if name == section else data) for name, data in _sections(binary)]
    with pytest.raises(BinaryFormatError, match=words):
        _load_bytes(pack_container(sections), tmp_path)


def test_inconsistent_weights_index(tmp_path: Path) -> None:
    section = bytearray(encode_weights([("w", np.zeros((4, 4), np.float32))]))
    size = struct.unpack_from("<Q", section)[0]
    index = json.loads(section[8 : 8 + size])
    for field, value, words in [
        ("dtype", "f128", "bad index entry for 'w'"),
        ("shape", [4, 5], "'w' holds 64 bytes, not a f32 array of shape \\[4, 5\\]"),
        ("offset", 64, "past the section end"),
        ("offset", 3, "misaligned"),
        ("bits", 2, "'w' is packed to 2 bits, but only ui8 arrays pack"),
        ("pairs", True, "'w' is stored as a pair, but only packed \\[2, slices, ...\\] arrays are"),
    ]:
        entry = {**index["w"], field: value}
        text = json.dumps({"w": entry}).encode()
        damaged = struct.pack("<Q", len(text)) + text
        damaged += bytes(-len(damaged) % 64) + bytes(section[-64:])
        with pytest.raises(BinaryFormatError, match=words):
            decode_weights(memoryview(damaged), "t.cimb")


def test_cell_levels_pack_four_two_bit_cells_a_byte() -> None:
    """A hand-packed byte: levels 1, 2, 3, 0 of 2-bit cells are 0b00_11_10_01 (the first in the lowest bits); the
    last byte of an array whose size is no multiple of four is zero-padded; wider values stay unpacked."""
    levels = np.array([[1, 2, 3, 0], [3, 3, 0, 1]], np.uint8)
    np.testing.assert_array_equal(pack_cells(levels, 2), [0b00111001, 0b01001111])
    np.testing.assert_array_equal(pack_cells(np.array([1, 1, 1, 1, 1], np.uint8), 1), [0b11111])
    np.testing.assert_array_equal(pack_cells(np.array([15, 1, 9], np.uint8), 4), [0x1F, 0x09])
    section = encode_weights([("l", levels), ("b", np.array([0, 1, 0, 1, 1, 1, 0, 0, 1], np.uint8)), ("w", levels * 9)])
    size = struct.unpack_from("<Q", section)[0]
    index = json.loads(section[8 : 8 + size])
    assert [index[k].get("bits") for k in ("l", "b", "w")] == [2, 1, None]  # 27 needs 5 bits: one a byte
    assert [index[k]["length"] for k in ("l", "b", "w")] == [2, 2, 8]
    decoded = decode_weights(memoryview(section), "t.cimb")
    np.testing.assert_array_equal(decoded["l"], levels)
    np.testing.assert_array_equal(decoded["b"], [0, 1, 0, 1, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(decoded["w"], levels * 9)
    assert decoded["l"].dtype == np.uint8 and decoded["l"].shape == (2, 4)


def test_a_differential_pair_is_stored_as_magnitudes_and_signs() -> None:
    """Levels [2 signs, 2 slices, 3 weights]: weight 0 positive (1, 2), weight 1 negative (3, 0), weight 2 zero:
    the magnitudes [1, 3, 0, 2, 0, 0] at 2 bits (0b10_00_11_01, then 0) and the signs 0b010, 3 bytes for 12
    levels; an array whose two halves both hold a weight is no pair and stays packed as it is."""
    levels = np.zeros((2, 2, 3), np.uint8)
    levels[0, :, 0] = (1, 2)
    levels[1, :, 1] = (3, 0)
    both = np.ones((2, 1, 3), np.uint8)
    section = encode_weights([("p", levels), ("q", both)])
    size = struct.unpack_from("<Q", section)[0]
    index = json.loads(section[8 : 8 + size])
    assert (index["p"]["pairs"], index["p"]["length"], "pairs" in index["q"]) == (True, 3, False)
    start = -(-(8 + size) // 64) * 64 + index["p"]["offset"]
    assert list(section[start : start + 3]) == [0b10001101, 0, 0b010]
    decoded = decode_weights(memoryview(section), "t.cimb")
    np.testing.assert_array_equal(decoded["p"], levels)
    np.testing.assert_array_equal(decoded["q"], both)


#: Packages that loading and running a binary must not import, with their submodules: onnx and ml_dtypes (most of
#: its import time), onnxruntime, ortools (the placement solver) and pandas (which it imports), and the ONNX
#: importer.
_BANNED = ("onnx", "ml_dtypes", "onnxruntime", "ortools", "pandas", "cimc.compiler.onnx_importer")


def _report_banned(banned: tuple[str, ...]) -> str:
    """Script lines printing which of ``banned`` (or their submodules) the interpreter has imported."""
    return (
        f"banned = {banned!r}\n"
        "inside = tuple(b + '.' for b in banned)\n"
        "print('banned:', sorted(m for m in sys.modules if m in banned or m.startswith(inside)))\n"
    )


def _run_isolated(script: str, cwd: Path) -> str:
    """The standard output of ``script`` run by a fresh interpreter in ``cwd``; fails on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_loading_needs_no_compiler_and_no_onnx_model(tmp_path: Path) -> None:
    """The runtime loads and runs a binary in a folder with no ONNX file, both with the exact executor and on the
    simulated chip (``InferenceSession``), importing neither the ONNX importer nor the compiler's pipeline, nor the
    onnx, onnxruntime or ortools packages: the graph ops the binary keeps (the CNN's pooling, transposes and ReLUs)
    are declared from the generated schema table and verified without ONNX's shape inference. The chip is read with
    ``cimc.ir.target``."""
    compile_binary(MODELS / "digits_cnn.onnx", tmp_path / "model.cimb", PipelineOptions())  # a real chip section
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from cimc.runtime.binary import load_binary\n"
        "from cimc.ir import run_module\n"
        "model = load_binary('model.cimb')\n"
        "assert any(op.name == 'graph.max_pool' for op in model.module.walk())\n"
        "x = np.zeros((2, 1, 8, 8), np.float32)\n"
        "out = run_module(model.module, [x])\n"
        "assert out['logits'].shape == (2, 10), out\n"
        "from cimc.runtime import InferenceSession\n"
        "(logits,) = InferenceSession('model.cimb', device='pcm').run(None, {'x': x})\n"
        "assert logits.shape == (2, 10) and logits.dtype == np.float32, logits\n"
        + _report_banned((*_BANNED, "cimc.compiler.pipeline"))
    )
    assert _run_isolated(script, tmp_path).strip() == "banned: []"
    assert not list(tmp_path.glob("*.onnx"))


def test_cimc_run_of_a_binary_imports_no_onnx(tmp_path: Path) -> None:
    """``cimc run model.cimb`` (the command's entry point, as the console script calls it) simulates the binary
    without importing onnx, onnxruntime, ortools or the importer (the command's parser reads the pipeline's stage
    names, so it loads the pipeline module, which imports the importer only to compile)."""
    compile_binary(MODELS / "digits_cnn.onnx", tmp_path / "model.cimb", PipelineOptions())
    np.save(tmp_path / "x.npy", np.load(MODELS / "digits_test.npz")["x"][:3])
    script = (
        "import sys\n"
        "from cimc.compiler.cli import main\n"
        "assert main(['run', 'model.cimb', '-i', 'x.npy', '--output', 'y.npz']) == 0\n" + _report_banned(_BANNED)
    )
    assert _run_isolated(script, tmp_path).splitlines()[-1] == "banned: []"
    assert np.load(tmp_path / "y.npz")["logits"].shape == (3, 10)


def test_the_documented_reading_example_runs(binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/binary-format.md stays true: its hand-written reader reads a real binary."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "binary-format.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", doc, re.S)
    (tmp_path / "model.cimb").write_bytes(binary.read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "binary-format.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert set(namespace["sections"]) == set(SECTIONS)
