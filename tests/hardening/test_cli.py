"""Bad flags of every ``cimc`` subcommand, each refused in one line naming the flag (``tests/refusal.py``), and
random flag values for compile, run and eval: each accepted, or refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_workspace import fill, make_workspace
from hypothesis import given, settings
from hypothesis import strategies as st
from refusal import refused, run_cimc

#: (argv, what the line must name): ``{name}`` fields are the workspace's files.
CASES: list[tuple[list[str], list[str]]] = [
    # the command itself
    ([], ["a command is required", "compile"]),
    (["frobnicate"], ["frobnicate"]),
    (["--bogus"], ["--bogus"]),
    # compile
    (["compile"], ["model"]),
    (["compile", "{model}", "--bogus"], ["--bogus"]),
    (["compile", "{model}", "--emit", "nope"], ["--emit", "nope"]),
    (["compile", "{model}", "--emit"], ["--emit"]),
    (["compile", "{model}", "--weight-bits", "0"], ["--weight-bits", "'0'"]),
    (["compile", "{model}", "--weight-bits", "1"], ["--weight-bits"]),
    (["compile", "{model}", "--weight-bits", "17"], ["--weight-bits"]),
    (["compile", "{model}", "--weight-bits", "eight"], ["--weight-bits", "eight"]),
    (["compile", "{model}", "--weight-bits", "8.5"], ["--weight-bits"]),
    (["compile", "{model}", "--cell-bits", "0"], ["--cell-bits"]),
    (["compile", "{model}", "--cell-bits", "99"], ["--cell-bits", "99"]),
    (["compile", "{model}", "--input-bits", "0"], ["--input-bits"]),
    (["compile", "{model}", "--input-bits", "17"], ["--input-bits"]),
    (["compile", "{model}", "--dac-bits", "0"], ["--dac-bits"]),
    (["compile", "{model}", "--dac-bits", "9"], ["--dac-bits"]),
    (["compile", "{model}", "--adc-bits", "-1"], ["--adc-bits"]),
    (["compile", "{model}", "--adc-bits", "32"], ["--adc-bits"]),
    (["compile", "{model}", "--adc-range", "wide"], ["--adc-range", "wide"]),
    (["compile", "{model}", "--sign-encoding", "twos"], ["--sign-encoding"]),
    (["compile", "{model}", "--weight-scaling", "row"], ["--weight-scaling"]),
    (["compile", "{model}", "--input-encoding", "thermo"], ["--input-encoding"]),
    (["compile", "{model}", "--replicate", "always"], ["--replicate"]),
    (["compile", "{model}", "--array-budget", "-1"], ["--array-budget"]),
    (["compile", "{model}", "--array-size", "0x64"], ["--array-size", "0x64"]),
    (["compile", "{model}", "--array-size", "64"], ["--array-size"]),
    (["compile", "{model}", "--array-size", "ax4"], ["--array-size"]),
    (["compile", "{model}", "--array-size", "-4x4"], ["--array-size"]),
    (["compile", "{model}", "--placement-effort", "0"], ["--placement-effort"]),
    (["compile", "{model}", "--placement-effort", "-1"], ["--placement-effort"]),
    (["compile", "{model}", "--placement-effort", "nan"], ["--placement-effort"]),
    (["compile", "{model}", "--placement-effort", "inf"], ["--placement-effort"]),
    (["compile", "{model}", "--seed", "-1"], ["--seed", "-1"]),
    (["compile", "{model}", "--seed", "x"], ["--seed"]),
    (["compile", "{model}", "--workers", "0"], ["--workers"]),
    (["compile", "{model}", "--workers", "-2"], ["--workers"]),
    (["compile", "{model}", "--calib-method", "median"], ["--calib-method", "median"]),
    (["compile", "{model}", "--chip", "no-such-chip"], ["no-such-chip"]),
    (["compile", "{model}", "--input-shape", "x=ax3"], ["--input-shape", "x=ax3"]),
    (["compile", "{model}", "--input-shape", "x=1x1x8x8", "--input-shape", "x=2x1x8x8"], ["--input-shape"]),
    (["compile", "{model}", "--calib", "{folder}/none.npz"], ["--calib", "none.npz"]),
    (["compile", "{model}", "--report-json"], ["--report-json"]),
    (["compile", "{folder}/none.onnx"], ["none.onnx"]),
    (["compile", "{model}", "-o", "{folder}/m.mlir"], ["m.mlir", ".cimb"]),
    # opt
    (["opt"], ["input"]),
    (["opt", "{ir}", "--passes", "no-such-pass"], ["no-such-pass"]),
    (["opt", "{ir}", "--passes", "tile{{array-rows=0}}"], ["tile", "array-rows"]),
    (["opt", "{ir}", "--bogus"], ["--bogus"]),
    (["opt", "{folder}/none.mlir"], ["none.mlir"]),
    # run
    (["run", "{binary}"], ["--input"]),
    (["run", "{binary}", "-i"], ["-i"]),
    (["run", "{binary}", "-i", "{x_npy}", "--stage", "nope"], ["--stage", "nope"]),
    (["run", "{binary}", "-i", "{x_npy}", "--stage", "cim"], ["--stage"]),
    (["run", "{ir}", "-i", "{x_npy}", "--stage", "cim"], ["--stage"]),
    (["run", "{model}", "-i", "{x_npy}", "--ideal"], ["--ideal"]),
    (["run", "{binary}", "-i", "{x_npy}", "--batch-size", "0"], ["--batch-size"]),
    (["run", "{binary}", "-i", "{x_npy}", "--batch-size", "-5"], ["--batch-size"]),
    (["run", "{binary}", "-i", "{x_npy}", "--verify-iterations", "-1"], ["--verify-iterations"]),
    (["run", "{binary}", "-i", "{x_npy}", "--adc-offset", "-1"], ["--adc-offset"]),
    (["run", "{binary}", "-i", "{x_npy}", "--adc-offset", "nan"], ["--adc-offset"]),
    (["run", "{binary}", "-i", "{x_npy}", "--adc-offset", "inf"], ["--adc-offset"]),
    (["run", "{binary}", "-i", "{x_npy}", "--stuck-on", "2"], ["--stuck-on"]),
    (["run", "{binary}", "-i", "{x_npy}", "--stuck-on", "-0.1"], ["--stuck-on"]),
    (["run", "{binary}", "-i", "{x_npy}", "--stuck-on", "nan"], ["--stuck-on"]),
    (["run", "{binary}", "-i", "{x_npy}", "--stuck-off", "1.5"], ["--stuck-off"]),
    (["run", "{binary}", "-i", "{x_npy}", "--drift-time", "soon"], ["--drift-time", "soon"]),
    (["run", "{binary}", "-i", "{x_npy}", "--drift-time", "-1"], ["--drift-time"]),
    (["run", "{binary}", "-i", "{x_npy}", "--drift-time", "1e400"], ["--drift-time"]),
    (["run", "{binary}", "-i", "{x_npy}", "--device", "vacuum-tube"], ["--device"]),
    (["run", "{binary}", "-i", "{x_npy}", "--device", "sram"], ["sram"]),
    (["run", "{binary}", "-i", "{x_npy}", "--fidelity", "exact"], ["--fidelity"]),
    (["run", "{binary}", "-i", "{x_npy}", "--input-scaling", "max"], ["--input-scaling"]),
    (["run", "{binary}", "-i", "{x_npy}", "--input-scaling", "abs_max"], ["input_scaling"]),
    (["run", "{binary}", "-i", "{x_npy}", "--bound-management", "twice"], ["--bound-management"]),
    (["run", "{binary}", "-i", "{x_npy}", "--limit", "3"], ["--limit"]),
    (["run", "{binary}", "-i", "{folder}/none.npy"], ["--input", "none.npy"]),
    (["run", "{folder}/none.cimb", "-i", "{x_npy}"], ["none.cimb"]),
    # eval
    (["eval", "{binary}"], ["--data"]),
    (["eval", "{binary}", "--data", "{data}", "--limit", "0"], ["--limit", "'0'"]),
    (["eval", "{binary}", "--data", "{data}", "--limit", "-1"], ["--limit", "-1"]),
    (["eval", "{binary}", "--data", "{data}", "--limit", "ten"], ["--limit"]),
    (["eval", "{binary}", "--data", "{data}", "--seeds", "0"], ["--seeds"]),
    (["eval", "{binary}", "--data", "{data}", "--seeds", "-2"], ["--seeds"]),
    (["eval", "{binary}", "--data", "{data}", "--seed", "-1"], ["--seed"]),
    (["eval", "{binary}", "--data", "{data}", "--batch-size", "0"], ["--batch-size"]),
    (["eval", "{binary}", "--data", "{data}", "--stuck-off", "-1"], ["--stuck-off"]),
    (["eval", "{binary}", "--data", "{data}", "--reference", "{folder}/none.onnx"], ["--reference", "none.onnx"]),
    (["eval", "{binary}", "--data", "{data}", "--x-key", "images"], ["--x-key", "images"]),
    (["eval", "{binary}", "--data", "{data}", "--y-key", "labels"], ["--y-key", "labels"]),
    (["eval", "{binary}", "--data", "{folder}/none.npz"], ["--data", "none.npz"]),
    # demo
    (["demo", "--model", "resnet"], ["--model", "resnet"]),
    (["demo", "--seeds", "0"], ["--seeds"]),
    (["demo", "--seed", "-3"], ["--seed"]),
    (["demo", "--drift-time", "soon"], ["--drift-time"]),
    (["demo", "--chip", "no-such-chip"], ["no-such-chip"]),
    (["demo", "--batch-size", "0"], ["--batch-size"]),
    # report
    (["report"], ["binary"]),
    (["report", "{folder}/none.cimb"], ["none.cimb"]),
    (["report", "{binary}", "--html"], ["--html"]),
    (["report", "{binary}", "--bogus"], ["--bogus"]),
    # solve, chips, ops
    (["solve", "{matrix}"], ["b.npy"]),
    (["solve", "{matrix}", "{rhs}", "--remedy", "pray"], ["--remedy", "pray"]),
    (["solve", "{matrix}", "{rhs}", "--tol", "small"], ["--tol"]),
    (["solve", "{matrix}", "{rhs}", "--matrix-bits", "x"], ["--matrix-bits"]),
    (["solve", "{matrix}", "{rhs}", "--device", "abacus"], ["--device"]),
    (["chips", "extra"], ["extra"]),
    (["chips", "--bogus"], ["--bogus"]),
    (["ops", "extra"], ["extra"]),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_workspace(tmp_path_factory.mktemp("cli"))


@pytest.mark.parametrize(("argv", "names"), CASES, ids=[" ".join(argv) or "(none)" for argv, _ in CASES])
def test_bad_flag_is_refused_in_one_line(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch, argv: list[str], names: list[str]
) -> None:
    monkeypatch.chdir(files["folder"])  # a default output, were one written, would land in the workspace
    inputs = [Path(p) for p in files.values() if Path(p).is_file()]
    refused(fill(argv, files), *fill(names, files), inputs=inputs)


def test_help_still_gives_the_usage() -> None:
    status, out, _, _ = run_cimc(["compile", "--help"])
    assert status == 0 and out.startswith("usage: cimc compile") and "--weight-bits" in out


def test_an_argument_error_points_at_the_commands_help() -> None:
    assert refused(["eval", "m.cimb", "--data", "d.npz", "--limit", "0"]).endswith("(see cimc eval --help)")


#: Flags of compile, run and eval with the values they take; random values of any kind are tried on them.
FLAGS = {
    "compile": ["--weight-bits", "--input-bits", "--cell-bits", "--dac-bits", "--adc-bits", "--array-budget",
                "--array-size", "--placement-effort", "--seed", "--workers", "--calib-method", "--adc-range"],
    "run": ["--batch-size", "--verify-iterations", "--adc-offset", "--stuck-on", "--stuck-off", "--drift-time",
            "--seed", "--fidelity", "--device"],
    "eval": ["--limit", "--seeds", "--seed", "--batch-size", "--drift-time", "--adc-offset", "--stuck-on"],
}  # fmt: skip

VALUES = st.one_of(
    st.integers(-3, 6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "-", "0x10", "1e400", "-0", "1h", "8x8", "nan", "inf", "pcm", "minmax", "full", " 3"]),
    st.text(max_size=4),
)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(command=st.sampled_from(sorted(FLAGS)), data=st.data())
def test_random_flag_values_are_accepted_or_refused_in_one_line(
    files: dict[str, str], command: str, data: st.DataObject
) -> None:
    flag = data.draw(st.sampled_from(FLAGS[command]), label="flag")
    value = data.draw(VALUES, label="value")
    base = {
        "compile": ["compile", files["model"], "--calib", files["calib"], "--emit", "cim"],
        "run": ["run", files["binary"], "-i", files["x_npy"]],
        "eval": ["eval", files["binary"], "--data", files["data"], "--limit", "4"],
    }[command]
    argv = [*base, f"{flag}={value}"]
    status, _, err, _ = run_cimc(argv)
    if status == 0:
        return
    lines = err.splitlines()
    assert status in (1, 2) and len(lines) == 1 and lines[0].startswith("cimc: error: "), (argv, err)
    assert "internal error" not in err and "Traceback" not in err, (argv, err)
