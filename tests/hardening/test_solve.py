"""Bad systems, files and flags through ``cimc solve``: each refused in one line naming the file (or flag) at fault
and what to do, before the solve starts (issue 14, item 5): singular matrices by their condition number, systems
past ``--max-size`` from the file's header alone, and no output written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from refusal import refused, run_cimc

GOOD_A = np.array([[4.0, 1.0], [1.0, 3.0]])
GOOD_B = np.array([1.0, 2.0])
HILBERT = 1 / (np.arange(14)[:, None] + np.arange(14)[None, :] + 1)  # condition number about 1e18

#: (id, A, b, names in the one error line: "A" and "b" stand for their files)
ARRAY_CASES = [
    ("singular", np.array([[1.0, 2.0], [2.0, 4.0]]), GOOD_B, ["A", "singular", "condition number is inf"]),
    ("zero-matrix", np.zeros((3, 3)), np.ones(3), ["A", "singular"]),
    ("repeated-row", np.array([[1.0, 2, 3], [4, 5, 6], [1, 2, 3]]), np.ones(3), ["A", "singular", "repeated row"]),
    ("numerically-singular", HILBERT, np.ones(14), ["A", "singular to working precision", "condition number"]),
    ("nan-in-A", np.array([[1.0, np.nan], [0.0, 1.0]]), GOOD_B, ["A", "nan", "[0, 1]"]),
    ("inf-in-A", np.array([[np.inf, 0.0], [0.0, 1.0]]), GOOD_B, ["A", "inf", "[0, 0]"]),
    ("nan-in-b", GOOD_A, np.array([1.0, np.nan]), ["b", "nan", "[1]"]),
    ("minus-inf-in-b", GOOD_A, np.array([-np.inf, 1.0]), ["b", "-inf"]),
    ("bool-A", np.eye(2, dtype=bool), GOOD_B, ["A", "dtype bool"]),
    ("complex-A", np.eye(2, dtype=complex), GOOD_B, ["A", "complex128"]),
    ("string-A", np.array([["a", "b"], ["c", "d"]]), GOOD_B, ["A", "<U1"]),
    ("complex-b", GOOD_A, np.ones(2, dtype=complex), ["b", "complex128"]),
    ("datetime-b", GOOD_A, np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), ["b", "datetime64"]),
    ("0-d-A", np.float64(3.0), GOOD_B, ["A must be 2-D", "shape ()"]),
    ("1-d-A", np.ones(4), GOOD_B, ["A must be 2-D", "(4,)"]),
    ("3-d-A", np.ones((2, 2, 2)), GOOD_B, ["A must be 2-D", "3-D"]),
    ("0-d-b", GOOD_A, np.float64(1.0), ["b must be 1-D or 2-D", "shape ()"]),
    ("3-d-b", GOOD_A, np.ones((2, 1, 1)), ["b must be 1-D or 2-D"]),
    ("empty-A", np.zeros((0, 0)), np.zeros(0), ["A is empty", "(0, 0)"]),
    ("empty-b", GOOD_A, np.zeros((2, 0)), ["b is empty", "(2, 0)"]),
    ("b-too-short", GOOD_A, np.ones(3), ["b", "does not match A", "[2] or [2, k]"]),
    ("b-columns-mismatch", GOOD_A, np.ones((3, 2)), ["b", "(3, 2)", "does not match"]),
    ("not-square", np.ones((2, 3)), GOOD_B, ["A", "2x3", "not square", "--remedy normal"]),
    ("unstable-loop", -np.eye(3), np.ones(3), ["A", "cannot settle", "remedy"]),
    ("A-past-max-size", np.zeros((5000, 1), np.float32), GOOD_B, ["A", "(5000, 1)", "--max-size 2048"]),
    ("b-past-max-size", GOOD_A, np.zeros((2, 2049), np.float32), ["b", "(2, 2049)", "--max-size"]),
]


def _paths(tmp_path: Path, a: np.ndarray, b: np.ndarray) -> tuple[Path, Path]:
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "b.npy", b)
    return tmp_path / "A.npy", tmp_path / "b.npy"


@pytest.mark.parametrize(("a", "b", "names"), [c[1:] for c in ARRAY_CASES], ids=[c[0] for c in ARRAY_CASES])
def test_a_bad_system_is_refused_naming_its_file(
    a: np.ndarray, b: np.ndarray, names: list[str], tmp_path: Path
) -> None:
    a_path, b_path = _paths(tmp_path, a, b)
    out = tmp_path / "x.npy"
    files = {"A": str(a_path), "b": str(b_path)}
    refused(
        ["solve", str(a_path), str(b_path), "-o", str(out)],
        *[files.get(name, name) for name in names],
        inputs=[a_path, b_path],
        outputs=[out],
    )


def test_least_squares_of_a_rank_deficient_matrix_is_refused(tmp_path: Path) -> None:
    a_path, b_path = _paths(tmp_path, np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]), np.ones(3))
    refused(["solve", str(a_path), str(b_path), "--remedy", "normal"], str(a_path), "full column rank", "rank 1")


def test_max_size_is_a_flag(tmp_path: Path) -> None:
    a_path, b_path = _paths(tmp_path, np.eye(3) * 4, np.ones(3))
    refused(["solve", str(a_path), str(b_path), "--max-size", "2"], str(a_path), "--max-size 2")
    status, out, err, _ = run_cimc(["solve", str(a_path), str(b_path), "--max-size", "3"])
    assert status == 0 and "converged" in out and not err  # stderr no terminal: no progress line


@pytest.mark.parametrize(
    ("content", "names"),
    [
        (b"", ["not a readable .npy array"]),
        (b"hello, world", ["not a readable .npy array"]),
        (b"\x93NUMPY\x01\x00", ["not a readable .npy array"]),
        (b"\x93NUMPY\x09\x00" + b" " * 100, ["not a readable .npy array"]),
    ],
    ids=["empty", "text", "magic-only", "unknown-version"],
)
def test_files_that_are_no_npy_array_are_refused(content: bytes, names: list[str], tmp_path: Path) -> None:
    a_path = tmp_path / "A.npy"
    a_path.write_bytes(content)
    np.save(tmp_path / "b.npy", GOOD_B)
    refused(["solve", str(a_path), str(tmp_path / "b.npy")], str(a_path), *names, inputs=[a_path])


def test_damaged_pickled_and_archived_files_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", GOOD_B)
    b_path = tmp_path / "b.npy"
    truncated = tmp_path / "truncated.npy"
    np.save(truncated, GOOD_A)
    truncated.write_bytes(truncated.read_bytes()[:-4])  # the header promises 32 bytes of data
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    archive = tmp_path / "archive.npy"
    with archive.open("wb") as f:
        np.savez(f, A=GOOD_A)
    cases = {
        truncated: ["truncated or damaged"],
        pickled: ["dtype object"],
        archive: ["not a readable .npy array"],
        tmp_path / "absent.npy": ["no such file"],
        tmp_path: ["no such file"],
    }
    for a_path, names in cases.items():
        line = refused(["solve", str(a_path), str(b_path)], str(a_path), *names)
        assert "unsafe" not in line and "allow_pickle" not in line  # numpy's advice is not passed on


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--chip", "default"], ["chip 'default'", "[opamp]", "milan-closed-loop"]),
        (["--chip", "defualt"], ["unknown chip 'defualt'"]),
        (["-o", "{A}"], ["-o", "{A}", "replace"]),
        (["-o", "{b}"], ["-o", "{b}", "replace"]),
        (["-o", "{folder}"], ["-o", "is a folder"]),
    ],
)
def test_bad_chips_and_outputs_are_refused_before_any_work(flags: list[str], names: list[str], tmp_path: Path) -> None:
    a_path, b_path = _paths(tmp_path, GOOD_A, GOOD_B)
    fill = {"A": a_path, "b": b_path, "folder": tmp_path}
    argv = ["solve", str(a_path), str(b_path), *(flag.format(**fill) for flag in flags)]
    refused(argv, *(name.format(**fill) for name in names), inputs=[a_path, b_path])


def test_a_chip_file_without_op_amps_or_with_a_bad_field_is_refused(tmp_path: Path) -> None:
    from cimc.ir.target.chip import load_chip

    a_path, b_path = _paths(tmp_path, GOOD_A, GOOD_B)
    chip = tmp_path / "chip.toml"
    chip.write_text(load_chip("milan-closed-loop").to_toml().replace("v_read = 0.2", "v_read = -1.0"))
    refused(["solve", str(a_path), str(b_path), "--chip", str(chip)], str(chip), "[opamp] v_read")
