"""The simulator's commands: ``cimc run model.cimb`` (ideal equals the exact executor bit for bit; noise follows
the seed), ``cimc eval`` (accuracy against labels, onnxruntime's fp32 accuracy, seeds' mean and spread, dataset
keys, the reference found or not) and ``cimc demo`` (its accuracies against the exact executor and onnxruntime);
bad input ends in one ``cimc: error:`` line."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from refusal import refused

from cimc.compiler.cli import main
from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.compiler.simulate_cli import NOISE_SWITCHES, add_simulation_flags, session_for
from cimc.ir import run_module
from cimc.runtime.binary import load_binary, pack_container, read_sections

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
TEST = MODELS / "digits_test.npz"


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits CNN compiled for the default chip, alone in its folder (no ONNX model beside it)."""
    path = tmp_path_factory.mktemp("cli_simulate") / "digits_cnn.cimb"
    compile_binary(MODELS / "digits_cnn.onnx", path, PipelineOptions())
    return path


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    with np.load(TEST) as test:
        return test["x"], test["y"]


@pytest.fixture(scope="module")
def exact_logits(cnn: Path, data: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The exact ``cim`` executor's logits on the whole test split."""
    return run_module(load_binary(cnn).module, [data[0]])["logits"]


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.argmax(logits, axis=1) == labels).mean())


def _onnxruntime_accuracy(x: np.ndarray, labels: np.ndarray) -> float:
    session = ort.InferenceSession(str(MODELS / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])
    return _accuracy(session.run(None, {"x": x})[0], labels)


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run a command that must fail on bad input (``refused``): its single stderr line, without the
    ``cimc: error:`` prefix."""
    return refused(argv).removeprefix("cimc: error: ")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _run(cnn: Path, folder: Path, name: str, *flags: str) -> np.ndarray:
    """``cimc run`` on the first 30 test images, read back from its ``--output``."""
    output = folder / f"{name}.npz"
    assert main(["run", str(cnn), "--input", str(folder / "x.npz"), "--output", str(output), *flags]) == 0
    with np.load(output) as outputs:
        assert list(outputs) == ["logits"]
        return outputs["logits"]


@pytest.fixture
def inputs(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> Path:
    np.savez(tmp_path / "x.npz", x=data[0][:30])
    return tmp_path


def test_run_ideal_equals_the_exact_executor(cnn: Path, inputs: Path, exact_logits: np.ndarray, capsys) -> None:
    logits = _run(cnn, inputs, "ideal", "--ideal")
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(logits, exact_logits[:30])
    assert capsys.readouterr().out.startswith("logits: float32[30, 10]")


def test_run_noise_follows_the_seed(cnn: Path, inputs: Path, exact_logits: np.ndarray) -> None:
    first = _run(cnn, inputs, "seed1", "--device", "pcm", "--seed", "1")
    again = _run(cnn, inputs, "seed1-again", "--device", "pcm", "--seed", "1")
    second = _run(cnn, inputs, "seed2", "--device", "pcm", "--seed", "2")
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, exact_logits[:30])
    assert not np.array_equal(first, second)
    # noise, not garbage: the simulated logits stay near the exact ones
    assert np.abs(first - exact_logits[:30]).max() < 0.5 * np.abs(exact_logits[:30]).max()


def test_run_an_onnx_model_with_chip_flags_is_refused(inputs: Path, capsys) -> None:
    line = _error_line(capsys, ["run", str(MODELS / "digits_cnn.onnx"), "--input", str(inputs / "x.npz"), "--ideal"])
    assert line.startswith(f"{MODELS / 'digits_cnn.onnx'}: --ideal, --device, --drift-time")
    assert "compile the model first (cimc compile model.onnx)" in line


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--drift-time", "soon"], "argument --drift-time: duration 'soon' is not a number of seconds"),
        (["--device", "sram"], "digits_cnn.cimb: device 'sram' has 2 conductance levels: 2-bit cells need 4"),
    ],
    ids=["drift-time", "device"],
)
def test_run_bad_chip_settings_are_one_line(cnn: Path, inputs: Path, capsys, flags: list[str], words: str) -> None:
    line = _error_line(capsys, ["run", str(cnn), "--input", str(inputs / "x.npz"), *flags])
    assert words in line


def test_eval_against_the_reference(cnn: Path, data: tuple[np.ndarray, np.ndarray], capsys) -> None:
    x, y = data
    reference = ["--reference", str(MODELS / "digits_cnn.onnx")]
    result = _json(capsys, ["eval", str(cnn), "--data", str(TEST), *reference, "--limit", "200", "--json"])
    assert result["samples"] == 200
    assert result["reference_accuracy"] == _onnxruntime_accuracy(x[:200], y[:200])
    assert result["accuracy_loss"] == pytest.approx(result["reference_accuracy"] - result["accuracy"], abs=1e-15)
    assert [s["seed"] for s in result["seeds"]] == [0]
    assert result["seeds"][0]["accuracy"] == result["accuracy"] and result["accuracy_std"] == 0.0
    # the default chip's RRAM at one seed: accuracy 0.69 to 0.91 over seeds 0-5 (both programming streams, 1 and
    # 2), so the bound checks the plumbing; the device's statistics are tests/runtime/test_analog.py's
    assert 0.6 <= result["agreement"] <= 1.0
    error = result["error"]
    assert set(error) == {"max_abs", "mean_abs", "rms", "relative_rms"}
    assert 0 < error["mean_abs"] <= error["rms"] <= error["max_abs"]
    assert result["settings"]["device"] == "rram" and result["settings"]["ideal"] is False
    assert result["performance"]["latency_cycles"] > 0 and result["performance"]["energy"]["total_pj"] > 0


def test_eval_ideal_accuracy_is_the_exact_executors(
    cnn: Path, data: tuple[np.ndarray, np.ndarray], exact_logits: np.ndarray, capsys
) -> None:
    result = _json(capsys, ["eval", str(cnn), "--data", str(TEST), "--ideal", "--json"])
    assert result["samples"] == len(data[1])
    assert result["accuracy"] == _accuracy(exact_logits, data[1])
    assert result["settings"]["ideal"] is True
    # the default chip's ADCs are exact: every conversion counted, none saturated
    saturation = result["adc_saturation"]
    assert list(saturation) == ["conv1", "conv2", "conv3", "fc"]
    assert all(s["conversions"] > 0 and s["saturated"] == 0 == s["fraction"] for s in saturation.values())
    assert main(["eval", str(cnn), "--data", str(TEST), "--ideal", "--limit", "10"]) == 0
    conversions = sum(s["conversions"] for s in saturation.values()) * 10 // len(data[1])
    assert f"  ADC saturation          none of {conversions:,} conversions\n" in capsys.readouterr().out


def test_eval_seeds_report_their_mean_and_spread(cnn: Path, capsys) -> None:
    argv = ["eval", str(cnn), "--data", str(TEST), "--limit", "120", "--seeds", "3", "--device", "pcm"]
    result = _json(capsys, [*argv, "--drift-time", "1h", "--json"])
    assert [s["seed"] for s in result["seeds"]] == [0, 1, 2]
    accuracies = [s["accuracy"] for s in result["seeds"]]
    assert result["accuracy"] == pytest.approx(statistics.fmean(accuracies), rel=1e-12)
    assert result["accuracy_std"] == pytest.approx(statistics.stdev(accuracies), rel=1e-12, abs=1e-15)
    assert result["settings"]["drift_time_s"] == 3600.0 and result["settings"]["device"] == "pcm"


def test_eval_named_keys_and_a_missing_key(
    cnn: Path, data: tuple[np.ndarray, np.ndarray], exact_logits: np.ndarray, tmp_path: Path, capsys
) -> None:
    custom = tmp_path / "custom.npz"
    np.savez(custom, images=data[0][:60], labels=data[1][:60])
    argv = ["eval", str(cnn), "--data", str(custom), "--ideal", "--json"]
    result = _json(capsys, [*argv, "--x-key", "images", "--y-key", "labels"])
    assert result["samples"] == 60
    assert result["accuracy"] == _accuracy(exact_logits[:60], data[1][:60])
    line = _error_line(capsys, argv)
    assert line == f"--data {custom}: no array 'x' (it holds ['images', 'labels']); name the inputs with --x-key"
    line = _error_line(capsys, [*argv, "--x-key", "images"])
    assert line == f"--data {custom}: no array 'y' (it holds ['images', 'labels']); name the labels with --y-key"


def test_eval_without_a_reference_says_how_to_give_one(
    cnn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A binary that records no SHA-256 of its model (an older cimc's) is compared with no model found by name."""
    sections = {name: bytes(payload) for name, payload in read_sections(cnn.read_bytes(), str(cnn))[1].items()}
    meta = json.loads(sections["meta"])
    del meta["model_sha256"]
    sections["meta"] = json.dumps(meta).encode()
    binary = tmp_path / "digits_cnn.cimb"
    binary.write_bytes(pack_container(list(sections.items())))
    (tmp_path / "digits_cnn.onnx").write_bytes((MODELS / "digits_cnn.onnx").read_bytes())  # same name: not used
    monkeypatch.chdir(tmp_path)
    argv = ["eval", str(binary), "--data", str(TEST), "--limit", "50", "--ideal"]
    result = _json(capsys, [*argv, "--json"])
    assert result["samples"] == 50
    assert result["reference_accuracy"] is None and result["agreement"] is None and result["error"] is None
    assert result["settings"]["reference"] is None
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "(no fp32 comparison: give --reference model.onnx)" in text
    assert "accuracy (simulated)" in text and "Latency:" in text


def test_eval_finds_the_reference_by_its_sha256(
    cnn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The model beside the binary is used when its bytes are the ones compiled, and eval says so; one of the same
    name with other bytes is not (the bundled model, whose bytes match, is used instead); a ``--reference`` with
    other bytes is compared with a warning."""
    binary = tmp_path / "digits_cnn.cimb"
    binary.write_bytes(cnn.read_bytes())
    (tmp_path / "digits_cnn.onnx").write_bytes((MODELS / "digits_cnn.onnx").read_bytes())
    argv = ["eval", str(binary), "--data", str(TEST), "--limit", "50", "--ideal", "--json"]
    result = _json(capsys, argv)
    assert result["settings"]["reference"] == str(tmp_path / "digits_cnn.onnx") and result["reference_accuracy"]
    (tmp_path / "digits_cnn.onnx").write_bytes((MODELS / "digits_mlp.onnx").read_bytes())
    assert main(argv) == 0
    captured = capsys.readouterr()
    used = json.loads(captured.out)["settings"]["reference"]
    assert Path(used).resolve() == (MODELS / "digits_cnn.onnx").resolve()
    assert captured.err == f"cimc: note: fp32 reference {used}: its SHA-256 is the one {binary} records\n"
    other = str(MODELS / "digits_mlp.onnx")
    assert main([*argv, "--reference", other]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"cimc: warning: --reference {other} is not the model {binary} was compiled from")


def test_demo_json(
    data: tuple[np.ndarray, np.ndarray], exact_logits: np.ndarray, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(ROOT)
    result = _json(capsys, ["demo", "--json"])
    assert set(result) == {"ideal", "simulated", "performance"}
    reference = _onnxruntime_accuracy(*data)
    for mode in ("ideal", "simulated"):
        assert result[mode]["samples"] == len(data[1])
        assert result[mode]["reference_accuracy"] == reference
        assert 0.6 <= result[mode]["accuracy"] <= 1.0  # RRAM at one seed: 0.69 to 0.91 (test_eval_against_...)
    assert result["ideal"]["accuracy"] == _accuracy(exact_logits, data[1])
    assert result["ideal"]["settings"]["ideal"] is True and result["simulated"]["settings"]["ideal"] is False
    performance = result["performance"]
    assert {"latency_cycles", "latency_s", "throughput_per_s", "bottleneck", "tiles", "energy"} <= set(performance)
    assert performance["latency_cycles"] > 0 and performance["energy"]["tops_per_w"] > 0


def test_demo_text(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cimc demo: ")
    assert "fp32, onnxruntime" in out and "chip, exact arithmetic (--ideal)" in out
    assert "chip, rram cells, every effect on" in out
    assert "\nLatency: " in out and "\nEnergy: " in out


def test_demo_mlp_ideal_has_only_the_ideal_section(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(ROOT)
    result = _json(capsys, ["demo", "--model", "mlp", "--ideal", "--json"])
    assert set(result) == {"ideal", "performance"}
    assert result["ideal"]["settings"]["binary"] == "digits_mlp.cimb"
    assert result["ideal"]["accuracy"] > 0.9


def test_demo_bad_drift_time_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(ROOT)
    line = _error_line(capsys, ["demo", "--drift-time", "soon"])
    assert "argument --drift-time: duration 'soon' is not a number of seconds or a number with s, m, h, d, w" in line


@pytest.mark.parametrize("flag", sorted(NOISE_SWITCHES))
def test_each_no_flag_switches_its_term_off(cnn: Path, flag: str, capsys) -> None:
    """``cimc eval --no-...``: the session's config has exactly that switch off (every other on), the JSON settings
    list it, and an ``.onnx`` run refuses it as a chip flag."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    add_simulation_flags(parser)
    config = session_for(cnn, parser.parse_args(["--device", "pcm", flag])).config
    name = NOISE_SWITCHES[flag][0]
    assert getattr(config, name) is False
    assert all(getattr(config, other) for other, _ in NOISE_SWITCHES.values() if other != name)
    result = _json(capsys, ["eval", str(cnn), "--data", str(TEST), "--limit", "20", "--device", "pcm", flag, "--json"])
    assert result["settings"]["off"] == [flag]
    line = _error_line(capsys, ["run", str(MODELS / "digits_cnn.onnx"), "--input", str(TEST), flag])
    assert "compile the model first" in line


def test_eval_and_run_at_the_statistical_level(cnn: Path, tmp_path: Path, capsys) -> None:
    """``--fidelity statistical`` reaches the session and is recorded in the settings (with the row blocks read per
    read: none on the default chip); ``cimc run`` gives the session's logits."""
    argv = ["eval", str(cnn), "--data", str(TEST), "--limit", "60", "--device", "pcm", "--fidelity", "statistical"]
    result = _json(capsys, [*argv, "--json"])
    assert result["settings"]["fidelity"] == "statistical" and result["settings"]["fallback_blocks"] == []
    assert 0.5 <= result["accuracy"] <= 1.0
    assert main(argv) == 0
    assert "pcm cells, no drift; statistical reads;" in capsys.readouterr().out
    with np.load(TEST) as test:
        np.savez(tmp_path / "x.npz", x=test["x"][:20])
    out = tmp_path / "y.npz"
    run = ["run", str(cnn), "--input", str(tmp_path / "x.npz"), "--output", str(out), "--device", "pcm"]
    assert main([*run, "--fidelity", "statistical"]) == 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    add_simulation_flags(parser)
    session = session_for(cnn, parser.parse_args(["--device", "pcm", "--fidelity", "statistical"]))
    expected = session.run(None, {"x": np.load(tmp_path / "x.npz")["x"]})[0]
    assert np.array_equal(np.load(out)["logits"], expected)
    line = _error_line(
        capsys, ["run", str(MODELS / "digits_cnn.onnx"), "--input", str(TEST), "--fidelity", "statistical"]
    )
    assert "--fidelity" in line and "compile the model first" in line
