"""The whole pipeline to a ``.cimb``: deterministic bytes, a binary that runs as the crossbar IR does, instruction
streams whose sends and receives pair up, the placement report's schema, a model too big for its chip, and the
``compile``, ``report``, ``run`` and ``chips`` commands on binaries."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cimc.compiler import PipelineOptions, compile_onnx
from cimc.compiler.cli import main
from cimc.compiler.pipeline import compile_binary
from cimc.ir import run_module
from cimc.ir.dialects.cim import ProgramOp
from cimc.ir.target.chip import ChipError, list_presets
from cimc.runtime.binary import load_binary
from cimc.runtime.isa import Mvm, Program, Recv, Send

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "models" / "digits_cnn.onnx"
X = np.load(ROOT / "models" / "digits_test.npz")["x"][:50]
FAST = {"placement_effort": 2.0}


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cimb") / "cnn.cimb"
    compile_binary(CNN, path, PipelineOptions(**FAST))
    return path


def test_compiling_twice_gives_the_same_bytes(binary: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.cimb"
    compile_binary(CNN, again, PipelineOptions(**FAST))
    assert again.read_bytes() == binary.read_bytes()


def test_the_binary_runs_as_the_crossbar_ir(binary: Path) -> None:
    module, _ = compile_onnx(CNN, PipelineOptions(emit="cim"))
    loaded = load_binary(binary)
    np.testing.assert_array_equal(run_module(loaded.module, {"x": X})["logits"], run_module(module, {"x": X})["logits"])
    assert loaded.meta["model"] == "digits_cnn.onnx" and loaded.meta["chip"] == "default"
    assert loaded.meta["placement"] == {"effort": 2.0, "seed": 0, "workers": 1}


def test_instruction_streams_pair_every_send_with_a_receive(binary: Path) -> None:
    loaded = load_binary(binary)
    streams = loaded.program.streams
    programs = [op for op in loaded.module.walk() if isinstance(op, ProgramOp)]
    everything = [i for stream in streams.tiles.values() for i in stream]
    counts = Counter(type(i) for i in everything)
    assert counts[Program] == counts[Mvm] == len(programs)
    assert sum(i.arrays for i in everything if isinstance(i, Program)) == loaded.report["arrays"] == 56
    sends = {i.flow: (tile, i) for tile, stream in streams.tiles.items() for i in stream if isinstance(i, Send)}
    recvs = {i.flow: (tile, i) for tile, stream in streams.tiles.items() for i in stream if isinstance(i, Recv)}
    assert sends.keys() == recvs.keys()
    for flow, (src, send) in sends.items():
        dst, recv = recvs[flow]
        assert send.peer == dst and recv.peer == src and send.bytes == recv.bytes > 0 and send.value == recv.value


def test_the_report_has_its_documented_fields(binary: Path) -> None:
    report = load_binary(binary).report
    placement = report["placement"]
    assert {"objective", "naive_objective", "status", "bound", "lower_bound", "solver"} <= placement.keys()
    assert placement["lower_bound"] <= placement["objective"] <= max(placement["naive_objective"], 0)
    best = max(placement["bound"], placement["lower_bound"])
    assert placement["gap"] == (round((placement["objective"] - best) / placement["objective"], 6) if best else 0.0)
    assert report["arrays"] == sum(layer["arrays"] for layer in report["layers"]) == 56
    assert report["tiles_used"] == len(report["per_tile"]) >= 1
    assert sum(t["arrays"] for t in report["per_tile"]) == 56
    assert report["network"]["byte_hops"] == placement["objective"]
    assert sum(size for _, _, size in report["network"]["link_loads"]) == placement["objective"]
    assert report["mesh"] == {"rows": 16, "cols": 16, "torus": False} and report["faulty_tiles"] == []
    # digits CNN: conv1 and conv2 read 64 patches x 8 bit planes, conv3 16 x 8, fc 1 x 8; no replication
    schedule = report["schedule"]
    assert [(s["layer"], s["rounds"], s["start"]) for s in schedule["stages"]] == [
        ("conv1", 512, 0),
        ("conv2", 512, 512),
        ("conv3", 128, 1024),
        ("fc", 8, 1152),
    ]
    assert (schedule["latency_rounds"], schedule["interval_rounds"], schedule["bottleneck"]) == (1160, 512, "conv1")


def test_a_model_too_big_for_its_chip_names_the_counts_and_the_presets_that_fit() -> None:
    with pytest.raises(ChipError) as error:
        compile_onnx(CNN, PipelineOptions(emit="placed", chip="milan-closed-loop", **FAST))
    message = str(error.value)
    # the chip's 1-bit cells make 8-bit weights 8 slices: twice the arrays of the default chip's 2-bit cells
    assert "needs 112 arrays" in message and "'milan-closed-loop' has 2 usable" in message
    assert "presets that fit: default," in message


def test_cli_compile_report_run_and_chips(
    binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["compile", str(CNN), "--placement-effort", "2"]) == 0
    out = capsys.readouterr().out
    assert "wrote digits_cnn.cimb: 56 arrays" in out
    assert (tmp_path / "digits_cnn.cimb").read_bytes() == binary.read_bytes()
    assert main(["report", "digits_cnn.cimb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == load_binary(binary).report
    assert main(["report", "digits_cnn.cimb"]) == 0
    assert "Placement: " in capsys.readouterr().out
    np.savez(tmp_path / "x.npz", x=X)
    assert main(["run", "digits_cnn.cimb", "--input", "x.npz", "--output", "y.npz", "--ideal"]) == 0
    module, _ = compile_onnx(CNN, PipelineOptions(emit="cim"))
    with np.load(tmp_path / "y.npz") as y:
        np.testing.assert_array_equal(y["logits"], run_module(module, {"x": X})["logits"])
    assert main(["run", "digits_cnn.cimb", "--input", "x.npz", "--output", "noisy.npz", "--device", "pcm"]) == 0
    with np.load(tmp_path / "noisy.npz") as noisy, np.load(tmp_path / "y.npz") as y:
        assert not np.array_equal(noisy["logits"], y["logits"])  # the simulated chip is not ideal by default
    capsys.readouterr()
    assert main(["chips"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [name for name, _ in list_presets()]


def test_cli_refuses_a_binary_not_named_cimb_and_a_corrupt_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["compile", str(CNN), "-o", str(tmp_path / "model.mlir")]) == 1
    assert "--emit" in capsys.readouterr().err
    broken = tmp_path / "broken.cimb"
    broken.write_bytes(b"CIMB but not really")
    assert main(["report", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cimc: error: ") and str(broken) in err and len(err.strip().splitlines()) == 1


def test_outputs_get_the_usual_permissions(binary: Path) -> None:
    """Atomic writes go through a private temporary file; the output itself follows the umask."""
    umask = os.umask(0)
    os.umask(umask)
    assert binary.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_report_from_an_older_binary_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cimc.compiler.binary import write_binary

    module, _ = compile_onnx(CNN, PipelineOptions(emit="placed"))
    old = tmp_path / "old.cimb"
    write_binary(old, module, program=b"", report={"chip": "default"}, meta={})
    assert main(["report", str(old)]) == 1
    err = capsys.readouterr().err
    assert "compile the model again" in err and len(err.strip().splitlines()) == 1


def test_faulty_tiles_of_a_chip_file_are_never_used(tmp_path: Path) -> None:
    """The default chip with its first row of tiles marked faulty: the digits CNN (which fits one tile) lands on
    another row, and nothing is placed on a faulty tile."""
    from cimc.ir.target.chip import load_chip

    text = (
        load_chip("default")
        .to_toml()
        .replace("faulty_tiles = []", "faulty_tiles = " + str([[0, c] for c in range(16)]))
    )
    chip = tmp_path / "broken_row.toml"
    chip.write_text(text)
    report, _ = compile_binary(CNN, tmp_path / "cnn.cimb", PipelineOptions(chip=str(chip), **FAST))
    assert len(report["faulty_tiles"]) == 16 and report["tiles"] == 240
    assert all(entry["tile"][0] != 0 for entry in report["per_tile"])
