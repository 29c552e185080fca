"""``cimc solve``: the solution written atomically and equal to numpy's, the printed and JSON stats, least squares
with ``--remedy normal``, and one ``cimc: error:`` line for every kind of bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from cimc.compiler.cli import main


def _spd(n: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((n, n)))
    return q @ np.diag(np.geomspace(1.0, 10.0, n)) @ q.T


@pytest.fixture
def system(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    a, b = _spd(16), np.random.default_rng(1).standard_normal(16)
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "b.npy", b)
    return tmp_path / "A.npy", tmp_path / "b.npy", a, b


def test_solve_writes_the_solution_and_prints_the_stats(system, tmp_path: Path, capsys) -> None:
    a_path, b_path, a, b = system
    out = tmp_path / "x.npy"
    assert main(["solve", str(a_path), str(b_path), "-o", str(out)]) == 0
    x = np.load(out)
    assert np.linalg.norm(x - np.linalg.solve(a, b)) / np.linalg.norm(np.linalg.solve(a, b)) <= 1e-5
    text = capsys.readouterr().out
    for words in ("error vs numpy", "converged in", "smallest eigenvalue", "settling", "energy", "baseline", "ratio"):
        assert words in text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_solve_json_and_flags(system, capsys) -> None:
    a_path, b_path, _, _ = system
    argv = ["solve", str(a_path), str(b_path), "--json", "--tol", "1e-3", "--device", "pcm", "--seed", "2"]
    assert main([*argv, "--matrix-bits", "6", "--max-iterations", "20"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["converged"] and data["residual"] <= 1e-3 and data["ratio"] > 0
    assert main(["solve", str(a_path), str(b_path), "--json", "--ideal"]) == 0
    assert json.loads(capsys.readouterr().out)["error"] <= 1e-6


def test_least_squares_needs_remedy_normal(tmp_path: Path, capsys) -> None:
    a = np.random.default_rng(2).standard_normal((20, 6))
    b = np.random.default_rng(3).standard_normal(20)
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "b.npy", b)
    argv = ["solve", str(tmp_path / "A.npy"), str(tmp_path / "b.npy")]
    assert main(argv) == 1
    assert "--remedy normal" in capsys.readouterr().err
    assert main([*argv, "--remedy", "normal", "-o", str(tmp_path / "x.npy")]) == 0
    reference = np.linalg.lstsq(a, b, rcond=None)[0]
    assert np.linalg.norm(np.load(tmp_path / "x.npy") - reference) <= 1e-6 * np.linalg.norm(reference)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.eye(4), np.ones(3), "b must be [4] or [4, k]"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), np.ones(2), "finite"),
        (-np.eye(3), np.ones(3), "cannot settle"),
        (np.array(["a", "b"]), np.ones(2), "A must hold real numbers"),
    ],
)
def test_bad_input_is_one_error_line(a, b, message: str, tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "x.npy"
    assert main(["solve", str(tmp_path / "A.npy"), str(tmp_path / "b.npy"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cimc: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_missing_file_and_chip_without_opamps(system, tmp_path: Path, capsys) -> None:
    a_path, b_path, _, _ = system
    assert main(["solve", str(tmp_path / "nope.npy"), str(b_path)]) == 1
    assert "nope.npy: no such file" in capsys.readouterr().err
    assert main(["solve", str(a_path), str(b_path), "--chip", "default"]) == 1
    assert "has no [opamp] section" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_solve_shows_its_blocks_on_a_terminal_only(tmp_path: Path, monkeypatch, capsys) -> None:
    np.save(tmp_path / "A.npy", _spd(150))  # four 38- or 37-row leaf loops on 64x64 arrays
    np.save(tmp_path / "b.npy", np.ones(150))
    argv = ["solve", str(tmp_path / "A.npy"), str(tmp_path / "b.npy")]
    assert main(argv) == 0 and capsys.readouterr().err == ""
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(argv) == 0
    shown = terminal.getvalue()
    assert [f"block {i} of 4 set up" in shown for i in range(1, 5)] == [True] * 4 and shown.endswith("\r\033[K")
