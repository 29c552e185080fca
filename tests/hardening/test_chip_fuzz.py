"""Random chip description files through ``cimc compile`` and ``cimc solve`` (issue 14, item 7).

Hypothesis starts from a preset's description and changes it: fields set to values of random types and magnitudes
(integers up to 2^70, floats with NaN, infinities and extremes, booleans, strings with control characters, lists,
tables), fields and sections deleted, unknown keys added, faulty tiles anywhere, and now and then the TOML text itself
cut short or corrupted. Every file is either accepted (the compiled binary's report prints, and a chip with op-amps
solves a small system) or refused in one line naming the file (``refusal.refused``), and nothing on the way allocates
more than ``refusal.MEMORY_LIMIT``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from refusal import MEMORY_LIMIT, refused, run_cimc
from test_chips import tiny_model

from cimc.ir.target.chip import _TOP_LEVEL, OPTIONAL_SECTIONS, PRESETS, SECTIONS, _toml, load_chip

#: Every field a description may hold, as (section or None for the top level, key).
FIELDS = [(None, key) for key in _TOP_LEVEL] + [
    (section, spec.name)
    for section, cls in {**SECTIONS, **OPTIONAL_SECTIONS}.items()
    for spec in dataclasses.fields(cls)
]

_SCALARS = st.one_of(
    st.integers(-3, 70),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 1e3, 1e12, 2.0**63]),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["rram", "sram", "differential", "offset", "abs_max", "iterative", "tensor", "none"]),
)
VALUES = st.one_of(
    _SCALARS,
    st.lists(st.lists(st.integers(-2, 20), max_size=3), max_size=4),  # faulty tiles, well formed or not
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), _SCALARS, max_size=2),
)


@st.composite
def _in_range(draw: st.DrawFn, field: tuple[str | None, str]) -> Any:
    """A value the field's rule admits (a faulty-tile list of pairs, a one-line name), for edits that keep a chip
    usable: an accepted chip must compile."""
    section, key = field
    if section is None:
        if key == "faulty_tiles":
            return draw(st.lists(st.lists(st.integers(0, 3), min_size=2, max_size=2), max_size=3))
        return draw(st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8))
    spec = next(f for f in dataclasses.fields({**SECTIONS, **OPTIONAL_SECTIONS}[section]) if f.name == key)
    rule = spec.metadata.get("rule")
    if str(spec.type) == "bool":
        return draw(st.booleans())
    if rule is None or rule.choices:
        return draw(st.sampled_from(rule.choices if rule else ("",)))
    low, high = rule.low if rule.low is not None else 0, rule.high if rule.high is not None else 1e6
    if str(spec.type) == "int":
        return draw(st.integers(int(low), int(min(high, low + 300))) | st.just(int(high)))
    return draw(st.floats(low, high) | st.sampled_from([low, high]))


IN_RANGE = st.sampled_from(FIELDS).flatmap(lambda field: st.tuples(st.just("set"), st.just(field), _in_range(field)))
EDITS = st.one_of(
    IN_RANGE,
    st.tuples(st.just("set"), st.sampled_from(FIELDS), VALUES),
    st.tuples(st.just("delete"), st.sampled_from(FIELDS), st.none()),
    st.tuples(st.just("delete-section"), st.sampled_from([*SECTIONS, *OPTIONAL_SECTIONS]), st.none()),
    st.tuples(st.just("add"), st.tuples(st.sampled_from([None, *SECTIONS]), st.text(min_size=1, max_size=8)), VALUES),
)


def _edited(data: dict[str, Any], edits: list[tuple[str, Any, Any]]) -> dict[str, Any]:
    """``data`` with ``edits`` applied in order (an edit of a section that is no table sets it to one)."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for kind, where, value in edits:
        if kind == "delete-section":
            data.pop(where, None)
            continue
        section, key = where
        table = data if section is None else data.setdefault(section, {})
        if not isinstance(table, dict):
            table = data[section] = {}
        if kind == "delete":
            table.pop(key, None)
        else:
            table[key] = value
    return data


def _value(value: Any) -> str:
    """A TOML value, tables inline."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml(str(k))} = {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return _toml(value)


def toml_text(data: dict[str, Any]) -> str:
    """``data`` as TOML: top-level values (tables among them inline when they are no section), then sections."""
    sections = {key: value for key, value in data.items() if isinstance(value, dict) and value}
    lines = [f"{_toml(key)} = {_value(value)}" for key, value in data.items() if key not in sections]
    for name, table in sections.items():
        lines += [f"[{_toml(name)}]", *(f"{_toml(str(k))} = {_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


@st.composite
def chip_texts(draw: st.DrawFn) -> str:
    """A chip description's text: a preset's, edited (half of them only within each field's range, which mostly
    leaves a chip to compile for), its text now and then cut short or corrupted."""
    base = load_chip(draw(st.sampled_from(PRESETS))).to_dict()
    edits = draw(st.lists(draw(st.sampled_from([IN_RANGE, EDITS])), min_size=1, max_size=4))
    text = toml_text(_edited(base, edits))
    damage = draw(st.sampled_from(["none"] * 8 + ["cut", "insert"]))
    if damage != "none":
        at = draw(st.integers(0, len(text)))
        text = (
            text[:at]
            if damage == "cut"
            else text[:at] + draw(st.sampled_from(["[", "=", '"', "\\", "\x00"])) + text[at:]
        )
    return text


def check_chip_file(text: str) -> None:
    """Compile a tiny model for the chip ``text`` describes: refused in one line naming the chip file or the chip,
    or accepted, its binary's report printed; a chip with op-amps also solves (or refuses) a 2x2 system."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model, calib = tiny_model(root)
        chip, out = root / "chip.toml", root / "out.cimb"
        chip.write_text(text, encoding="utf-8")
        argv = ["compile", str(model), "--calib", str(calib), "--chip", str(chip), "-o", str(out)]
        _accepted_or_refused(argv, [chip, model], out, ["report", str(out)])
        if "[opamp]" in text:
            np.save(root / "A.npy", np.array([[4.0, 1.0], [1.0, 3.0]]))
            np.save(root / "b.npy", np.ones(2))
            argv = ["solve", str(root / "A.npy"), str(root / "b.npy"), "--chip", str(chip), "-o", str(root / "x.npy")]
            _accepted_or_refused(argv, [chip], root / "x.npy", None)


def _accepted_or_refused(argv: list[str], inputs: list[Path], out: Path, then: list[str] | None) -> None:
    status, _, err, peak = run_cimc(argv)
    if status == 0:
        assert "error" not in err and out.is_file() and peak < MEMORY_LIMIT, (argv, err, peak)
        if then is not None:
            status, _, err, peak = run_cimc(then)
            assert status == 0 and not err and peak < MEMORY_LIMIT, (then, err, peak)
        return
    line = refused(argv, inputs=inputs, outputs=[out])
    assert str(inputs[0]) in line or "chip" in line, line  # the file, or the chip it describes


@settings(derandomize=True, max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chip_texts())
def test_random_chip_files_are_accepted_or_refused_in_one_line(text: str) -> None:
    check_chip_file(text)


@pytest.mark.slow
@settings(derandomize=True, max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chip_texts())
def test_many_random_chip_files_are_accepted_or_refused_in_one_line(text: str) -> None:
    check_chip_file(text)
