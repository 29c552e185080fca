"""README.md stays true: its Python example runs as written, and its first two commands are the ones CI uses."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from cimc.compiler.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block is not None
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["logits"].shape == (450, 10)


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert len(commands) >= 2
    test_command = commands[1].strip()
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_first_command_names_bundled_files() -> None:
    first = re.findall(r"```sh\n(.*?)\n```", README, re.S)[0]
    for path in re.findall(r"models/\S+", first):
        assert os.path.exists(ROOT / path), path


def test_first_command_runs(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command after the install, as a new user types it (from the repository root): the demo prints the
    chip's exact accuracy, within half a point of fp32, then the simulated one and the performance."""
    first = re.findall(r"```sh\n(.*?)\n```", README, re.S)[0]
    command = first.split("&& ")[-1]
    assert command.startswith("cimc ")
    monkeypatch.chdir(ROOT)
    assert main(shlex.split(command)[1:]) == 0
    out = capsys.readouterr().out
    fp32 = float(re.search(r"fp32, onnxruntime\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    exact = float(re.search(r"exact arithmetic \(--ideal\)\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    assert exact > 0.98 and fp32 - exact <= 0.005
    assert "every effect on" in out and "Latency:" in out and "Energy:" in out
