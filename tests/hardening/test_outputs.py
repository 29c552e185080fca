"""Outputs never clobber inputs: an output that is one of the command's inputs (the same path, another spelling of
it, a link to it), another output, or a folder is refused in one line naming the flag and the path, before any
work, leaving every file as it was and no temporary behind (``tests/refusal.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_workspace import fill, make_workspace
from refusal import refused

from cimc.compiler.files import InputFileError, write_atomic

#: (argv, what the line must name): ``{name}`` fields are the workspace's files.
CASES: list[tuple[list[str], list[str]]] = [
    (["compile", "{model}", "--emit", "graph", "-o", "{model}"], ["-o/--output", "mlp.onnx", "model"]),
    (["compile", "{model}", "--emit", "import", "--output", "{model}"], ["-o/--output", "model"]),
    (["compile", "{model}", "--calib", "{calib}", "-o", "{model}"], ["-o/--output", "model"]),
    (["compile", "{model}", "--calib", "{calib}", "-o", "{calib}"], ["-o/--output", "--calib"]),
    (["compile", "{model}", "--calib", "{calib}", "--chip", "{binary}", "-o", "{binary}"], ["-o/--output", "--chip"]),
    (["compile", "{model}", "--emit", "cim", "--calib", "{calib}", "--report-json", "{model}"], ["--report-json"]),
    (["compile", "{model}", "--emit", "cim", "--calib", "{calib}", "--report-json", "{calib}"], ["--report-json"]),
    (
        [
            "compile",
            "{model}",
            "--emit",
            "cim",
            "--calib",
            "{calib}",
            "-o",
            "{folder}/a",
            "--report-json",
            "{folder}/a",
        ],
        ["--report-json", "-o/--output"],
    ),
    (["compile", "{model}", "--emit", "graph", "-o", "{dir}"], ["-o/--output", "folder"]),
    (["compile", "{model}", "--calib", "{calib}", "-o", "{dir}"], ["-o/--output", "folder"]),
    (["compile", "{model}", "--emit", "cim", "--calib", "{calib}", "--report-json", "{dir}"], ["--report-json"]),
    (["compile", "{model}", "--emit", "graph", "-o", "{folder}/missing/ir.mlir"], ["-o/--output", "missing"]),
    (["compile", "{model}", "--emit", "graph", "-o", "{folder}/dir/../mlp.onnx"], ["-o/--output", "model"]),
    (["compile", "{model}", "--emit", "graph", "-o", "{folder}/link.onnx"], ["-o/--output", "link.onnx"]),
    (["compile", "{model}", "--emit", "graph", "-o", "{folder}/hard.onnx"], ["-o/--output", "hard.onnx"]),
    (["compile", "mlp.onnx", "--emit", "graph", "-o", "{model}"], ["-o/--output", "model"]),
    (["opt", "{ir}", "-o", "{ir}"], ["-o/--output", "ir.mlir", "input"]),
    (["opt", "{ir}", "-o", "{dir}"], ["-o/--output", "folder"]),
    (["opt", "{ir}", "--passes", "canonicalize", "--output", "ir.mlir"], ["-o/--output", "input"]),
    (["report", "{binary}", "--html", "{binary}"], ["--html", "mlp.cimb", "binary"]),
    (["report", "{binary}", "--html", "{dir}"], ["--html", "folder"]),
    (["report", "{binary}", "--html", "{folder}/nowhere/r.html"], ["--html", "nowhere"]),
    (["report", "{binary}", "--json", "--html", "mlp.cimb"], ["--html", "binary"]),
    (["run", "{binary}", "-i", "{x_npz}", "--output", "{x_npz}"], ["--output", "x.npz", "--input"]),
    (["run", "{binary}", "-i", "{x_npz}", "--output", "{binary}"], ["--output", "model"]),
    (["run", "{model}", "-i", "{x_npz}", "--output", "{model}"], ["--output", "model"]),
    (["run", "{ir}", "-i", "{x_npz}", "--output", "{dir}"], ["--output", "folder"]),
    (["run", "{model}", "-i", "{x_npz}", "--calib", "{calib}", "--stage", "cim", "--output", "{calib}"], ["--calib"]),
    (["solve", "{matrix}", "{rhs}", "-o", "{matrix}"], ["-o/--output", "A.npy"]),
    (["solve", "{matrix}", "{rhs}", "-o", "{rhs}"], ["-o/--output", "b.npy"]),
    (["solve", "{matrix}", "{rhs}", "-o", "{dir}"], ["-o/--output", "folder"]),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    files = make_workspace(tmp_path_factory.mktemp("outputs"))
    folder = Path(files["folder"])
    (folder / "link.onnx").symlink_to(files["model"])
    os.link(files["model"], folder / "hard.onnx")
    return files


@pytest.mark.parametrize(("argv", "names"), CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_an_output_that_is_an_input_or_a_folder_is_refused(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch, argv: list[str], names: list[str]
) -> None:
    monkeypatch.chdir(files["folder"])
    folder = Path(files["folder"])
    before = sorted(p.name for p in folder.iterdir())
    inputs = [p for p in folder.iterdir() if p.is_file()]
    refused(fill(argv, files), *fill(names, files), inputs=inputs, outputs=[Path(files["dir"]) / "x"])
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written, no temporary left


def test_the_default_binary_may_not_replace_its_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cimc compile m.cimb`` would write ``m.cimb`` here by default: refused as an output like any other."""
    model = tmp_path / "m.cimb"
    model.write_bytes(b"not a model")
    monkeypatch.chdir(tmp_path)
    refused(["compile", "m.cimb"], "-o/--output", "m.cimb", "model", inputs=[model])


def test_write_atomic_refuses_a_folder_and_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(InputFileError, match="is a folder"):
        write_atomic(tmp_path / "out", "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
