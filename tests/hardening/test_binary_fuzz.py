"""Random mutations of a valid small binary, checksums recomputed (``crafted_binaries``): flipped bytes and fields
inside sections, truncated, dropped, repeated and renamed sections, changed JSON values in ``meta`` and ``report``,
changed instruction fields and streams, tile coordinates, weight shapes and offsets. Each mutant, through ``cimc run``
and ``cimc report``, is refused in one line (``tests/refusal.py``) or does what the original does: the same outputs,
bit for bit, and the same report.

A mutation that changes what the model computes (a byte of a weight array, a number in the IR text: a scale, a
bias, a quantizer's width) makes another valid model that no loader can tell from the original once the
checksums are recomputed: such a mutant may run to other outputs (of the same names), but its report is still
refused or the original's, since ``cimc report`` checks the report against the IR. Seeds are fixed
(``derandomize``); the ``slow`` variant draws more mutants.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crafted_binaries import Sections, compile_small, repack, sections_of, with_index, with_section, with_streams
from hypothesis import event, given, settings
from hypothesis import strategies as st
from refusal import refused, run_cimc

from cimc.runtime.binary import SECTIONS
from cimc.runtime.isa import PORT

NAME = "mutant.cimb"


@dataclass(frozen=True)
class Mutation:
    """A named change of the base sections into a whole file; ``same_values``: whether an accepted mutant must
    compute exactly what the original does."""

    name: str
    apply: Callable[[Sections], bytes]
    same_values: bool = True

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return self.name


@dataclass(frozen=True, repr=False)
class Base:
    folder: Path
    sections: Sections
    outputs: dict[str, np.ndarray]
    report: str


def _argv(command: str, base: Base, path: Path) -> list[str]:
    if command == "run":
        return ["run", str(path), "-i", str(base.folder / "x.npy"), "--ideal", "--output", str(_output(base))]
    return ["report", str(path), "--json"]


def _output(base: Base) -> Path:
    return base.folder / "outputs.npz"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    folder = tmp_path_factory.mktemp("fuzz")
    binary = compile_small(folder)
    original = Base(folder, sections_of(binary), {}, "")
    status, _, err, _ = run_cimc(_argv("run", original, binary))
    assert status == 0, err
    with np.load(_output(original)) as outputs:
        arrays = {name: outputs[name] for name in outputs}
    _output(original).unlink()
    status, report, err, _ = run_cimc(_argv("report", original, binary))
    assert status == 0, err
    return dataclasses.replace(original, outputs=arrays, report=report)


# --- mutations: hypothesis draws the choices, applied to the base sections (sizes taken modulo what is there)

_WORDS = st.one_of(st.sampled_from([0, 1, 2, 3, 7, 8, 64, 999, 0xFFFF, 0xFFFFFFFF]), st.integers(0, 2**32 - 1))
_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from([[], {}, [[-1, -1]], [[999, 999]], "/etc/passwd", "../model.onnx", "0" * 64]),
)


@st.composite
def _instruction_field(draw: st.DrawFn) -> Mutation:
    """One field of one instruction set to another value (a peer tile to another tile or the port)."""
    tile, position, field = draw(st.integers(0, 99)), draw(st.integers(0, 999)), draw(st.integers(0, 9))
    word = draw(_WORDS)
    peer = draw(st.sampled_from([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (999, 999), PORT]))

    def edit(tiles: dict) -> None:
        stream = tiles[sorted(tiles)[tile % len(tiles)]]
        instruction = stream[position % len(stream)]
        chosen = dataclasses.fields(instruction)[field % len(dataclasses.fields(instruction))]
        value = peer if chosen.name == "peer" else word
        stream[position % len(stream)] = dataclasses.replace(instruction, **{chosen.name: value})

    return Mutation(
        f"instruction {tile}/{position}/{field} = {word} or {peer}", lambda s: repack(with_streams(s, edit))
    )


@st.composite
def _stream_edit(draw: st.DrawFn) -> Mutation:
    """An instruction dropped, repeated or swapped with the next, or a whole stream moved to another tile."""
    how = draw(st.sampled_from(["drop", "repeat", "swap", "move"]))
    tile, position = draw(st.integers(0, 99)), draw(st.integers(0, 999))
    target = draw(st.sampled_from([(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (999, 999), PORT]))

    def edit(tiles: dict) -> None:
        key = sorted(tiles)[tile % len(tiles)]
        stream, at = tiles[key], position % len(tiles[key])
        if how == "drop":
            del stream[at]
        elif how == "repeat":
            stream.insert(at, stream[at])
        elif how == "swap" and at + 1 < len(stream):
            stream[at], stream[at + 1] = stream[at + 1], stream[at]
        elif how == "move" and target not in tiles:
            tiles[target] = tiles.pop(key)

    return Mutation(f"{how} {tile}/{position} {target}", lambda s: repack(with_streams(s, edit)))


@st.composite
def _ir_number(draw: st.DrawFn) -> Mutation:
    """One integer of the IR text (a tile, a group, a dimension, an attribute, a digit of a constant) changed:
    may compute other values."""
    which = draw(st.integers(0, 10**6))
    value = draw(st.one_of(st.sampled_from([0, 1, -1, 2, 3, 7, 8, 64, 65, 999, 2**31, 2**63]), st.integers(-9, 99)))

    def apply(s: Sections) -> bytes:
        text = s["ir"].decode()
        numbers = list(re.finditer(r"-?\d+", text))
        m = numbers[which % len(numbers)]
        return repack(with_section(s, "ir", (text[: m.start()] + str(value) + text[m.end() :]).encode()))

    return Mutation(f"ir number {which} = {value}", apply, same_values=False)


@st.composite
def _ir_tile(draw: st.DrawFn) -> Mutation:
    """One group's ``cim.tile`` in the IR moved, its stream left where it was."""
    which, row, col = draw(st.integers(0, 99)), draw(st.integers(-2, 1000)), draw(st.integers(-2, 4))

    def apply(s: Sections) -> bytes:
        text = s["ir"].decode()
        tiles = list(re.finditer(r"cim\.tile = array<i64: -?\d+, -?\d+>", text))
        m = tiles[which % len(tiles)]
        moved = f"{text[: m.start()]}cim.tile = array<i64: {row}, {col}>{text[m.end() :]}"
        return repack(with_section(s, "ir", moved.encode()))

    return Mutation(f"ir tile {which} = ({row}, {col})", apply)


@st.composite
def _weights_entry(draw: st.DrawFn) -> Mutation:
    """One field of one weights index entry (dtype, shape, offset, length, bits, pairs) set to another value."""
    key, field = (
        draw(st.integers(0, 99)),
        draw(st.sampled_from(["dtype", "shape", "offset", "length", "bits", "pairs"])),
    )
    value = draw(
        st.one_of(
            _JSON_VALUES,
            st.sampled_from(["f32", "f64", "i8", "ui8", "i64", "f16", "x"]),
            st.lists(st.integers(-2, 70), max_size=4),
            st.integers(-64, 20000).map(lambda n: n * 64),
        )
    )

    def edit(index: dict) -> None:
        index[sorted(index)[key % len(index)]][field] = value

    return Mutation(f"weights {key}.{field} = {value!r}", lambda s: repack(with_index(s, edit)))


def _set_at(value: Any, path: list[int], new: Any) -> str:
    """Replace the value ``path`` leads to (each step an index into a dict's sorted keys or a list) by ``new``."""
    if not path or not isinstance(value, (dict, list)) or not value:
        return ""
    keys = sorted(value) if isinstance(value, dict) else list(range(len(value)))
    key = keys[path[0] % len(keys)]
    inner = _set_at(value[key], path[1:], new)
    if not inner:
        value[key] = new
    return f"{key}.{inner}" if inner else str(key)


@st.composite
def _json_value(draw: st.DrawFn) -> Mutation:
    """One value in ``meta`` or ``report`` (at any depth) replaced."""
    section = draw(st.sampled_from(["meta", "report"]))
    path, value = draw(st.lists(st.integers(0, 99), min_size=1, max_size=4)), draw(_JSON_VALUES)

    def apply(s: Sections) -> bytes:
        document = json.loads(s[section])
        _set_at(document, path, value)
        return repack(with_section(s, section, json.dumps(document).encode()))

    return Mutation(f"{section} {path} = {value!r}", apply)


@st.composite
def _section_edit(draw: st.DrawFn) -> Mutation:
    """A section dropped, repeated, renamed, swapped with the next, truncated, or an unknown one added."""
    how = draw(st.sampled_from(["drop", "repeat", "rename", "swap", "truncate", "add"]))
    which, cut = draw(st.sampled_from(SECTIONS)), draw(st.integers(0, 10**6))

    def apply(s: Sections) -> bytes:
        items = list(s.items())
        at = list(s).index(which)
        if how == "drop":
            del items[at]
        elif how == "repeat":
            items.insert(at, items[at])
        elif how == "rename":
            items[at] = (which.upper(), items[at][1])
        elif how == "swap" and at + 1 < len(items):
            items[at], items[at + 1] = items[at + 1], items[at]
        elif how == "truncate":
            items[at] = (which, items[at][1][: cut % max(len(items[at][1]), 1)])
        elif how == "add":
            items.insert(at, ("extension", bytes(cut % 100)))
        return repack(items)

    return Mutation(f"{how} section {which} {cut}", apply)


@st.composite
def _byte_flip(draw: st.DrawFn) -> Mutation:
    """A byte inside a section changed (a weight's bytes or the IR text: may compute other values)."""
    which, position, mask = draw(st.sampled_from(SECTIONS)), draw(st.integers(0, 10**6)), draw(st.integers(1, 255))

    def apply(s: Sections) -> bytes:
        payload = bytearray(s[which])
        payload[position % len(payload)] ^= mask
        return repack(with_section(s, which, bytes(payload)))

    return Mutation(f"flip {which} {position} ^ {mask}", apply, same_values=which not in ("ir", "weights"))


@st.composite
def _header(draw: st.DrawFn) -> Mutation:
    """Another version or flags in the header."""
    major, minor, flags = draw(st.integers(0, 6)), draw(st.integers(0, 0xFFFF)), draw(st.sampled_from([0, 0, 1, 2**31]))
    return Mutation(f"version {major}.{minor} flags {flags}", lambda s: repack(s, version=(major, minor), flags=flags))


MUTATIONS = st.one_of(
    _instruction_field(),
    _stream_edit(),
    _ir_number(),
    _ir_tile(),
    _weights_entry(),
    _json_value(),
    _section_edit(),
    _byte_flip(),
    _header(),
)


def check_mutant(base: Base, mutation: Mutation) -> None:
    """``cimc run`` and ``cimc report`` of the mutant: each refused in one line, or as the original's."""
    path = base.folder / NAME
    path.write_bytes(mutation.apply(base.sections))
    for command in ("run", "report"):
        argv = _argv(command, base, path)
        status, out, err, peak = run_cimc(argv)
        if status != 0:
            refused(argv, str(path), inputs=[path], outputs=[_output(base)] if command == "run" else [])
            event(f"{command}: refused")
            continue
        event(f"{command}: accepted")
        assert err == "" and peak < 2 << 30, (mutation, err)
        if command == "report":
            assert out == base.report, mutation
            continue
        with np.load(_output(base)) as outputs:
            assert sorted(outputs) == sorted(base.outputs), mutation
            for name, expected in base.outputs.items():
                if mutation.same_values:
                    np.testing.assert_array_equal(outputs[name], expected, err_msg=repr(mutation))
        _output(base).unlink()


@settings(derandomize=True, database=None, max_examples=40, deadline=None)
@given(mutation=MUTATIONS)
def test_a_mutant_is_refused_or_runs_as_the_original(base: Base, mutation: Mutation) -> None:
    check_mutant(base, mutation)


@pytest.mark.slow
@settings(derandomize=True, database=None, max_examples=200, deadline=None)
@given(mutation=MUTATIONS)
def test_many_mutants_are_refused_or_run_as_the_original(base: Base, mutation: Mutation) -> None:
    check_mutant(base, mutation)
