"""Hand-crafted bad binaries, each refused in one line through the ``cimc`` command (``tests/refusal.py``): damaged
containers, and well-formed ones (checksums recomputed) whose sections lie: arrays on faulty tiles or off the mesh,
streams that do not match the IR, weights that overlap or do not fit their shapes, a path in ``meta``, a report that
does not describe its binary. Each line names the file, the section and the field, tile or instruction at fault."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from crafted_binaries import (
    MODELS,
    Sections,
    compile_small,
    repack,
    replace_field,
    sections_of,
    weights_index,
    with_index,
    with_ir,
    with_json,
    with_section,
    with_streams,
)
from refusal import refused, run_cimc

from cimc.runtime.isa import PORT, Adc, Instruction, Mvm, Program, Recv, Send

NAME = "crafted.cimb"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Sections]:
    folder = tmp_path_factory.mktemp("crafted")
    binary = compile_small(folder)
    return folder, sections_of(binary)


Streams = dict[tuple[int, int], list[Instruction]]


def _first(tiles: Streams, kind: type, tile: tuple[int, int] | None = None) -> tuple[tuple[int, int], int]:
    """The tile and position of the first instruction of ``kind`` (on ``tile`` when given)."""
    for where, stream in sorted(tiles.items()):
        for position, instruction in enumerate(stream):
            if isinstance(instruction, kind) and tile in (None, where):
                return where, position
    raise AssertionError(f"no {kind.__name__}")


def _edit(kind: type, **fields: int) -> Callable[[Streams], None]:
    """Change ``fields`` of the first instruction of ``kind``."""

    def edit(tiles: Streams) -> None:
        tile, position = _first(tiles, kind)
        replace_field(tiles[tile], position, **fields)

    return edit


def _move_group_zero(tile: tuple[int, int]) -> Callable[[Sections], Sections]:
    """Group 0 moved to ``tile`` consistently: its ``cim.tile`` in the IR and its tile's stream (peers renamed)."""

    def craft(s: Sections) -> Sections:
        def edit(tiles: Streams) -> None:
            old, _ = _first(tiles, Program)
            tiles[tile] = tiles.pop(old)
            for stream in tiles.values():
                for i, instruction in enumerate(stream):
                    if isinstance(instruction, (Send, Recv)) and instruction.peer == old:
                        replace_field(stream, i, peer=tile)

        moved = with_ir(s, "cim.tile = array<i64: 0, 0>", f"cim.tile = array<i64: {tile[0]}, {tile[1]}>")
        return with_streams(moved, edit)

    return craft


def _drop(kind: type) -> Callable[[Streams], None]:
    def edit(tiles: Streams) -> None:
        tile, position = _first(tiles, kind, (0, 0))
        del tiles[tile][position]

    return edit


def _swap_recv_and_mvm(tiles: Streams) -> None:
    stream = tiles[(0, 0)]
    r, m = _first(tiles, Recv, (0, 0))[1], _first(tiles, Mvm, (0, 0))[1]
    stream[r], stream[m] = stream[m], stream[r]


def _second_program(tiles: Streams) -> None:
    tile, position = _first(tiles, Program)
    tiles[tile].insert(position, tiles[tile][position])


def _second_send(tiles: Streams) -> None:
    tile, position = _first(tiles, Send, PORT)
    tiles[tile].append(tiles[tile][position])


def _two_arrays_one_place(index: dict) -> None:
    keys = sorted(index, key=lambda k: index[k]["offset"])
    index[keys[1]]["offset"] = index[keys[0]]["offset"]


def _first_key(index: dict, edit: Callable[[dict], object]) -> None:
    edit(index[sorted(index)[0]])


def _drop_levels(index: dict) -> None:
    del index[next(k for k in index if k.endswith("levels"))]


def _meta(key: str, value: object) -> Callable[[Sections], Sections]:
    return lambda s: with_json(s, "meta", lambda m: m.update({key: value}))


def _report(edit: Callable[[dict], object]) -> Callable[[Sections], Sections]:
    return lambda s: with_json(s, "report", edit)


def _program(edit: Callable[[Streams], None]) -> Callable[[Sections], Sections]:
    return lambda s: with_streams(s, edit)


def _weights(edit: Callable[[dict], None]) -> Callable[[Sections], Sections]:
    return lambda s: with_index(s, edit)


def _ir(old: str, new: str) -> Callable[[Sections], Sections]:
    return lambda s: with_ir(s, old, new)


def _payload(name: str, payload: bytes) -> Callable[[Sections], Sections]:
    return lambda s: with_section(s, name, payload)


def _flip(data: bytes, position: int) -> bytes:
    damaged = bytearray(data)
    damaged[position] ^= 0x10
    return bytes(damaged)


def _bytes(craft: Callable[[Sections], Sections]) -> Callable[[Sections], bytes]:
    """A crafted file from crafted sections, checksums recomputed."""
    return lambda s: repack(craft(s))


def _program_header(major: int) -> Callable[[Sections], Sections]:
    return lambda s: with_section(s, "program", major.to_bytes(2, "little") + s["program"][2:])


#: id -> (the crafted file from the base sections, the commands that refuse it, the names the line must hold
#: besides the file's).
CASES: dict[str, tuple[Callable[[Sections], bytes], tuple[str, ...], tuple[str, ...]]] = {
    # the container
    "empty-file": (lambda s: b"", ("run", "report"), ("empty file",)),
    "png": (lambda s: b"\x89PNG\r\n\x1a\n" + bytes(64), ("run", "report"), ("not a cimc binary",)),
    "text-mode-copy": (lambda s: repack(s).replace(b"\r\n", b"\n"), ("run",), ("text-mode copy",)),
    "truncated-header": (lambda s: repack(s)[:10], ("run",), ("truncated",)),
    "truncated-section": (lambda s: repack(s)[:-5], ("run", "report"), ("truncated", "section 'report'")),
    "appended-bytes": (lambda s: repack(s) + b"\0", ("run",), ("unexpected bytes", "section 'report'")),
    "flipped-byte": (lambda s: _flip(repack(s), len(repack(s)) - 3), ("run",), ("section 'report' checksum",)),
    "newer-major": (lambda s: repack(s, version=(5, 0)), ("run", "report"), ("format 5.0", "upgrade")),
    "older-major": (lambda s: repack(s, version=(3, 2)), ("run",), ("format 3.2", "recompile")),
    "unknown-flags": (lambda s: repack(s, flags=2), ("run",), ("unknown flags 0x00000002",)),
    "missing-program": (
        lambda s: repack([(n, p) for n, p in s.items() if n != "program"]),
        ("run", "report"),
        ("missing section 'program'",),
    ),
    "repeated-section": (lambda s: repack([*s.items(), ("ir", s["ir"])]), ("run",), ("section 'ir'", "repeats")),
    # meta: nothing in it is a path
    "meta-model-path": (_bytes(_meta("model", "/etc/passwd")), ("run", "report"), ("'meta'", "'model'", "passwd")),
    "meta-model-windows-path": (_bytes(_meta("model", "..\\m.onnx")), ("run",), ("'meta'", "'model'")),
    "meta-model-dotdot": (_bytes(_meta("model", "..")), ("run",), ("'meta'", "'model'")),
    "meta-model-number": (_bytes(_meta("model", 7)), ("run",), ("'meta'", "'model'")),
    "meta-sha256": (_bytes(_meta("model_sha256", "not-hex")), ("run",), ("'meta'", "'model_sha256'")),
    "meta-not-json": (_bytes(_payload("meta", b"{model")), ("run",), ("section 'meta'", "not valid JSON")),
    "meta-a-list": (_bytes(_payload("meta", b"[]")), ("run",), ("section 'meta'", "JSON list")),
    # report: it must describe its binary
    "report-empty": (_bytes(_payload("report", b"{}")), ("report",), ("section 'report'", "field 'arrays'")),
    "report-placement-null": (
        _bytes(_report(lambda r: r.update(placement=None))),
        ("report",),
        ("section 'report'", "field 'placement'"),
    ),
    "report-arrays-changed": (
        _bytes(_report(lambda r: r["per_tile"][0].update(arrays=[1]))),
        ("report",),
        ("section 'report'", "field 'per_tile'"),
    ),
    "report-faulty-tiles-hidden": (
        _bytes(_report(lambda r: r.update(faulty_tiles=[]))),
        ("report",),
        ("section 'report'", "field 'faulty_tiles'"),
    ),
    "report-ir-placement-summary": (
        _bytes(_ir("cim.placement = {bound = ", "cim.placement = {bund = ")),
        ("report",),
        ("section 'ir'", "'cim.placement'", "'bound'"),
    ),
    "report-ir-traffic": (
        _bytes(_ir("cim.traffic = array<i64: -1, 0,", "cim.traffic = array<i64: -1, 7,")),
        ("report",),
        ("section 'ir'", "'cim.traffic' flow 0"),
    ),
    "report-not-json": (_bytes(_payload("report", b"\xff")), ("run", "report"), ("section 'report'", "not valid")),
    # weights: sizes against declared shapes, arrays disjoint
    "weights-short": (_bytes(_payload("weights", b"\x01")), ("run",), ("section 'weights'", "index length")),
    "weights-index-past-end": (
        _bytes(_payload("weights", (10**6).to_bytes(8, "little") + b"{}")),
        ("run",),
        ("section 'weights'", "index of 1000000 bytes"),
    ),
    "weights-shape": (
        _bytes(_weights(lambda i: _first_key(i, lambda e: e.update(shape=[*e["shape"][:-1], e["shape"][-1] + 1])))),
        ("run",),
        ("section 'weights'", "holds", "bytes, not a"),
    ),
    "weights-negative-dim": (
        _bytes(_weights(lambda i: _first_key(i, lambda e: e.update(shape=[-1, *e["shape"][1:]])))),
        ("run",),
        ("section 'weights'", "negative dimension"),
    ),
    "weights-dtype": (
        _bytes(_weights(lambda i: _first_key(i, lambda e: e.update(dtype="f128")))),
        ("run",),
        ("section 'weights'", "bad index entry"),
    ),
    "weights-misaligned": (
        _bytes(_weights(lambda i: _first_key(i, lambda e: e.update(offset=e["offset"] + 1)))),
        ("run",),
        ("section 'weights'", "misaligned"),
    ),
    "weights-overlap": (_bytes(_weights(_two_arrays_one_place)), ("run", "report"), ("section 'weights'", "overlaps")),
    "weights-missing-levels": (
        _bytes(_weights(_drop_levels)),
        ("run",),
        ("section 'ir'", "levels", "missing from 'weights'"),
    ),
    "weights-packed-float": (
        _bytes(_weights(lambda i: _first_key(i, lambda e: e.update(bits=2) if "bits" not in e else e.update(bits=3)))),
        ("run",),
        ("section 'weights'", "packed to"),
    ),
    # ir
    "ir-not-utf8": (_bytes(_payload("ir", b"\xff\xfe")), ("run",), ("section 'ir'", "not UTF-8")),
    "ir-not-ir": (_bytes(_payload("ir", b'"builtin.module"() ({')), ("run",), ("section 'ir'", "not valid IR")),
    "ir-element-type": (_bytes(_ir("dac_pj = 0.39 : f64", "dac_pj = 0.39 : f65")), ("run", "report"), ("'f65'",)),
    "ir-no-chip": (_bytes(_ir("cim.chip = {", "cim.chap = {")), ("run",), ("section 'ir'", "'cim.chip'")),
    "ir-chip-mesh": (_bytes(_ir("mesh_rows = 2 : i64", "mesh_rows = 0 : i64")), ("run",), ("section 'ir'", "mesh")),
    # tiles: every array on the chip's grid and on a working tile
    "ir-tile-999": (
        _bytes(_ir("cim.tile = array<i64: 0, 0>", "cim.tile = array<i64: 999, 999>")),
        ("run", "report"),
        ("section 'program'", "group 0", "(999, 999)"),
    ),
    "ir-tile-minus-one": (
        _bytes(_ir("cim.tile = array<i64: 0, 0>", "cim.tile = array<i64: -1, -1>")),
        ("run", "report"),
        ("section 'program'", "group 0", "(-1, -1)"),
    ),
    "chip-lists-used-tile-faulty": (
        _bytes(_ir("faulty_tiles = array<i64: 0, 1>", "faulty_tiles = array<i64: 0, 0>")),
        ("run", "report"),
        ("section 'program'", "tile (0, 0)", "faulty"),
    ),
    "group-moved-to-faulty-tile": (
        _bytes(_move_group_zero((0, 1))),
        ("run", "report"),
        ("section 'program'", "tile (0, 1)", "faulty"),
    ),
    "group-moved-off-the-mesh": (
        _bytes(_move_group_zero((999, 999))),
        ("run", "report"),
        ("section 'program'", "tile (999, 999)", "off the 2x3 mesh"),
    ),
    "tile-over-capacity": (
        _bytes(_ir("arrays_per_tile = 8 : i64", "arrays_per_tile = 4 : i64")),
        ("run",),
        ("section 'program'", "more than its 4"),
    ),
    # program: decoded and checked at load
    "program-empty": (_bytes(_payload("program", b"")), ("run", "report"), ("section 'program'", "truncated")),
    "program-garbage": (_bytes(_payload("program", b"\x02\0\0\0" + b"\xff" * 12)), ("run",), ("section 'program'",)),
    "program-isa-major": (_bytes(_program_header(3)), ("run",), ("section 'program'", "instruction set 3.0")),
    "program-trailing-bytes": (
        lambda s: repack(with_section(s, "program", s["program"] + b"\0")),
        ("run",),
        ("section 'program'", "end at byte"),
    ),
    "program-op-out-of-range": (_bytes(_program(_edit(Mvm, op=999))), ("run",), ("'program'", "names op 999")),
    "program-wrong-kind": (_bytes(_program(_edit(Mvm, op=5))), ("run",), ("'program'", "'cim.adc'", "does not run")),
    "program-string-out-of-range": (
        _bytes(_program(_edit(Program, image=500))),
        ("run",),
        ("'program'", "names string 500"),
    ),
    "program-group-mismatch": (
        _bytes(_program(_edit(Mvm, group=2))),
        ("run",),
        ("'program'", "names group 2", "works on group 0"),
    ),
    "program-programmed-twice": (_bytes(_program(_second_program)), ("run",), ("'program'", "programmed twice")),
    "program-never-programmed": (_bytes(_program(_drop(Program))), ("run",), ("'program'", "never programmed")),
    "program-never-received": (_bytes(_program(_drop(Recv))), ("run",), ("'program'", "never received")),
    "program-sent-twice": (_bytes(_program(_second_send)), ("run",), ("'program'", "second 'send'")),
    "program-send-bytes": (_bytes(_program(_edit(Send, bytes=1))), ("run",), ("'program'", "does not match its send")),
    "program-value-out-of-range": (
        _bytes(_program(_edit(Send, value=10**6))),
        ("run",),
        ("'program'", "value 1000000 does not exist"),
    ),
    "program-reordered": (_bytes(_program(_swap_recv_and_mvm)), ("run",), ("'program'", "not in its buffer")),
    "program-planes": (_bytes(_program(_edit(Mvm, planes=9))), ("run",), ("'program'", "planes is 9", "'cim.mvm'")),
    "program-arrays": (_bytes(_program(_edit(Program, arrays=1))), ("run",), ("'program'", "arrays is 1")),
    "program-adc-bits": (_bytes(_program(_edit(Adc, bits=12))), ("run",), ("'program'", "bits is 12", "'cim.adc'")),
}


def _argv(command: str, path: Path, folder: Path) -> list[str]:
    if command == "run":
        return ["run", str(path), "-i", str(folder / "x.npy"), "--ideal"]
    return ["report", str(path)]


@pytest.mark.parametrize("case", list(CASES))
def test_a_crafted_binary_is_refused_in_one_line(base: tuple[Path, Sections], tmp_path: Path, case: str) -> None:
    folder, sections = base
    craft, commands, names = CASES[case]
    path = tmp_path / NAME
    path.write_bytes(craft(sections))
    for command in commands:
        refused(_argv(command, path, folder), str(path), *names, inputs=[path])


def test_the_base_binary_runs_and_reports(base: tuple[Path, Sections], tmp_path: Path) -> None:
    """The crafted cases' base: the same sections re-packed run and report (so each refusal is its edit's)."""
    folder, sections = base
    path = tmp_path / NAME
    path.write_bytes(repack(sections))
    for command in ("run", "report"):
        status, out, err, _ = run_cimc(_argv(command, path, folder))
        assert (status, err) == (0, ""), err
    index, _ = weights_index(sections)
    assert len(index) > 2 and "faulty_tiles = array<i64: 0, 1>" in sections["ir"].decode()


def test_eval_never_opens_a_path_from_the_binary(base: tuple[Path, Sections], tmp_path: Path) -> None:
    """``cimc eval`` of a binary whose meta names a path is refused at load, before anything is opened."""
    folder, sections = base
    path = tmp_path / NAME
    path.write_bytes(_bytes(_meta("model", str(MODELS / "digits_mlp.onnx")))(sections))
    argv = ["eval", str(path), "--data", str(MODELS / "digits_test.npz"), "--limit", "5", "--ideal"]
    refused(argv, str(path), "'meta'", "'model'", inputs=[path])


@pytest.mark.parametrize("command", ["run", "report", "eval"])
@pytest.mark.parametrize(("what", "reason"), [("missing", "no such file"), ("folder", "is a directory")])
def test_a_binary_that_is_no_file_is_refused_in_words(tmp_path: Path, command: str, what: str, reason: str) -> None:
    path = tmp_path / "gone.cimb"
    if what == "folder":
        path.mkdir()
    extra = {"run": ["-i", str(MODELS / "digits_test.npz")], "eval": ["--data", str(MODELS / "digits_test.npz")]}
    argv = [command, str(path), *extra.get(command, [])]
    line = refused(argv, str(path), reason)
    assert "Errno" not in line


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
