"""``InferenceSession``: outputs equal the exact ``cim`` executor bit for bit with ``ideal=True``, do not depend on
the batch size (ideal or noisy), select and order outputs as onnxruntime does, describe inputs and outputs as
onnxruntime describes the same ONNX model; ``parse_duration``; the performance figures; a device the chip's cells
do not fit is refused in one line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.ir import run_module
from cimc.ir.interpreter import InterpreterError
from cimc.runtime import InferenceSession
from cimc.runtime.binary import load_binary
from cimc.runtime.evaluate import evaluate
from cimc.runtime.session import NonFiniteInputError, check_finite, parse_duration

MODELS = Path(__file__).resolve().parents[2] / "models"
X = np.load(MODELS / "digits_test.npz")["x"][:40]


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits CNN compiled for the default chip."""
    path = tmp_path_factory.mktemp("session") / "digits_cnn.cimb"
    compile_binary(MODELS / "digits_cnn.onnx", path, PipelineOptions())
    return path


def _two_outputs() -> onnx.ModelProto:
    """x -> fc1 ("hidden", an output) -> relu -> fc2 ("logits"): a model with two outputs, logits first."""
    rng = np.random.default_rng(5)
    weights = [
        numpy_helper.from_array(rng.normal(size=(16, 8)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["hidden"], name="fc1"),
        helper.make_node("Relu", ["hidden"], ["h"], name="relu"),
        helper.make_node("MatMul", ["h", "w2"], ["logits"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes,
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["N", 8]),
        ],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The two-output model compiled, and inputs for it (also its calibration set)."""
    x = np.random.default_rng(6).normal(size=(20, 16)).astype(np.float32)
    path = tmp_path_factory.mktemp("session") / "two_outputs.cimb"
    compile_binary(_two_outputs(), path, PipelineOptions(calib={"x": x}))
    return path, x


def test_ideal_equals_the_exact_executor_bit_for_bit(cnn: Path) -> None:
    (logits,) = InferenceSession(str(cnn), ideal=True).run(None, {"x": X})
    expected = run_module(load_binary(cnn).module, [X])["logits"]
    assert logits.dtype == expected.dtype == np.float32 and logits.shape == (40, 10)
    np.testing.assert_array_equal(logits, expected)


@pytest.mark.parametrize("settings", [{"ideal": True}, {"device": "pcm", "drift_time": "1h"}], ids=["ideal", "pcm"])
def test_batches_smaller_than_the_input_give_the_same_outputs(cnn: Path, settings: dict) -> None:
    (whole,) = InferenceSession(cnn, **settings).run(None, {"x": X})
    (batched,) = InferenceSession(cnn, batch_size=7, **settings).run(None, {"x": X})
    np.testing.assert_array_equal(batched, whole)
    if "ideal" not in settings:  # the noise is there: the batches really saw the same programmed arrays
        assert not np.array_equal(whole, run_module(load_binary(cnn).module, [X])["logits"])


def test_a_stream_gives_the_pieces_of_one_run(cnn: Path) -> None:
    settings = {"device": "pcm", "drift_time": "1h", "seed": 2}
    (whole,) = InferenceSession(cnn, **settings).run(None, {"x": X})
    pieces = [p for (p,) in InferenceSession(cnn, batch_size=7, **settings).stream(["logits"], {"x": X})]
    assert [len(p) for p in pieces] == [7] * 5 + [5]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


@pytest.mark.parametrize("batch_size", [7, 40])
def test_evaluation_is_one_runs_outputs_whatever_the_batch_size(cnn: Path, batch_size: int) -> None:
    """``evaluate`` streams the data through one session per seed: its figures are those of one run over the whole
    data (each sample's noise drawn from its own position), not of batches that repeat the first samples' noise."""
    y = np.load(MODELS / "digits_test.npz")["y"][:40]
    settings = {"device": "pcm", "drift_time": "1h"}
    result = evaluate(lambda seed: InferenceSession(cnn, batch_size=batch_size, seed=seed, **settings), X, y, seeds=[4])
    (logits,) = InferenceSession(cnn, seed=4, **settings).run(None, {"x": X})
    assert result.accuracy == float((np.argmax(logits, axis=1) == y).mean())


def test_a_session_from_a_loaded_model_runs_like_one_from_the_path(cnn: Path) -> None:
    settings = {"device": "pcm", "drift_time": "1d", "seed": 3}
    (from_path,) = InferenceSession(cnn, **settings).run(None, {"x": X})
    (from_model,) = InferenceSession(load_binary(cnn), **settings).run(None, {"x": X})
    np.testing.assert_array_equal(from_model, from_path)


def test_output_names_select_and_order_the_outputs(two_outputs: tuple[Path, np.ndarray]) -> None:
    path, x = two_outputs
    session = InferenceSession(path, ideal=True)
    expected = run_module(load_binary(path).module, [x])
    assert list(expected) == ["logits", "hidden"]
    logits, hidden = session.run(None, {"x": x})
    np.testing.assert_array_equal(logits, expected["logits"])
    np.testing.assert_array_equal(hidden, expected["hidden"])
    swapped = session.run(["hidden", "logits"], {"x": x})
    assert [a.shape for a in swapped] == [(20, 8), (20, 4)]
    np.testing.assert_array_equal(swapped[0], expected["hidden"])
    np.testing.assert_array_equal(swapped[1], expected["logits"])
    (only,) = session.run(["hidden"], {"x": x})
    np.testing.assert_array_equal(only, expected["hidden"])


def test_a_repeated_output_name_gives_one_array_per_name_as_onnxruntime(two_outputs: tuple[Path, np.ndarray]) -> None:
    path, x = two_outputs
    reference = ort.InferenceSession(_two_outputs().SerializeToString(), providers=["CPUExecutionProvider"])
    asked = ["hidden", "logits", "hidden"]
    assert len(reference.run(asked, {"x": x})) == 3
    got = InferenceSession(path, ideal=True).run(asked, {"x": x})
    assert [a.shape for a in got] == [(20, 8), (20, 4), (20, 8)]


def test_an_unknown_output_name_names_the_outputs(two_outputs: tuple[Path, np.ndarray]) -> None:
    path, x = two_outputs
    with pytest.raises(InterpreterError, match=r"no output named \['probs'\]; the outputs are \['logits', 'hidden'\]"):
        InferenceSession(path, ideal=True).run(["logits", "probs"], {"x": x})


def test_inputs_and_outputs_are_described_as_onnxruntime_does(cnn: Path) -> None:
    session = InferenceSession(cnn, ideal=True)
    reference = ort.InferenceSession(str(MODELS / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])
    for ours, theirs in [
        (session.get_inputs(), reference.get_inputs()),
        (session.get_outputs(), reference.get_outputs()),
    ]:
        assert [a.name for a in ours] == [a.name for a in theirs]
        assert [a.type for a in ours] == [a.type for a in theirs] == ["tensor(float)"]
        for arg, expected in zip(ours, theirs):
            assert len(arg.shape) == len(expected.shape)
            # onnxruntime names a dynamic dim ("N"); ours is None; the static dims are the same numbers
            assert [d if isinstance(d, int) else None for d in expected.shape] == arg.shape
    assert session.get_inputs()[0].shape == [None, 1, 8, 8]
    assert session.get_outputs()[0].shape == [None, 10]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1y", 365.25 * 86400.0),
        ("90", 90.0),
        ("2.5m", 150.0),
        ("30min", 1800.0),
        ("2w", 1_209_600.0),
        ("1e3s", 1000.0),
        (" 1 H ", 3600.0),
        ("0", 0.0),
        (12, 12.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "h", "1 fortnight", "-1h", "1.2.3s", "1e400", "one hour"])
def test_parse_duration_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match=f"duration '{text}'") as error:
        parse_duration(text)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("value", [-1.0, math.inf, math.nan])
def test_parse_duration_refuses_negative_and_infinite_seconds(value: float) -> None:
    with pytest.raises(ValueError, match="must be a finite time >= 0"):
        parse_duration(value)


def test_performance_totals_its_breakdown(cnn: Path) -> None:
    figures = InferenceSession(cnn).performance().to_dict()
    assert isinstance(figures["latency_cycles"], int) and figures["latency_cycles"] > 0
    assert figures["latency_s"] == pytest.approx(figures["latency_cycles"] / figures["clock_hz"], rel=1e-12)
    energy = figures["energy"]
    assert set(energy["per_inference_pj"]) == {"arrays", "dacs", "adcs", "buffers", "network", "digital"}
    assert energy["total_pj"] > 0
    assert math.isclose(energy["total_pj"], math.fsum(energy["per_inference_pj"].values()), rel_tol=1e-9)
    assert set(energy["baselines"]) == {"sram", "dram"}
    for baseline in energy["baselines"].values():
        assert math.isclose(baseline["total_pj"], math.fsum(baseline["per_inference_pj"].values()), rel_tol=1e-9)
        assert math.isclose(baseline["ratio"], baseline["total_pj"] / energy["total_pj"], rel_tol=1e-9)
    assert math.isclose(energy["reads_tops_per_w"], 2 * energy["macs"] / energy["reads_pj"], rel_tol=1e-9)
    assert 0 < energy["utilization"] <= 1 and energy["full_tops_per_w"] > 0


def test_program_and_verify_costs_programming_energy_and_time(cnn: Path) -> None:
    once = InferenceSession(cnn).performance().to_dict()["energy"]
    verified = InferenceSession(cnn, verify_iterations=3).performance().to_dict()["energy"]
    assert math.isclose(verified["programming_pj"], 4 * once["programming_pj"], rel_tol=1e-9)
    assert math.isclose(verified["programming_s"], 4 * once["programming_s"], rel_tol=1e-9)
    assert verified["total_pj"] == once["total_pj"]


def test_a_device_with_too_few_levels_for_the_cells_is_refused(cnn: Path) -> None:
    with pytest.raises(ValueError, match=r"'sram' has 2 conductance levels: 2-bit cells need 4") as error:
        InferenceSession(cnn, device="sram")
    assert "\n" not in str(error.value)


def test_a_bad_batch_size_is_refused(cnn: Path) -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        InferenceSession(cnn, batch_size=0)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_input_is_refused_naming_the_input(two_outputs: tuple[Path, np.ndarray], value: float) -> None:
    """No DAC applies NaN or infinity: quantized, it would give finite, wrong outputs, so it is refused."""
    path, x = two_outputs
    x = x.copy()
    x[3, 7] = value
    with pytest.raises(NonFiniteInputError, match=rf"input 'x' holds {value} at index \[3, 7\]"):
        InferenceSession(path, ideal=True).run(None, {"x": x})


def test_check_finite_passes_integers_and_finite_floats() -> None:
    check_finite({"a": np.arange(4), "b": np.ones((2, 2), np.float32)})
