"""The range-managed periphery (``cimc.runtime.periphery``) and the ``aihwkit`` chip preset, against aihwkit 1.2's
forward pass and noise model as re-implemented independently in numpy (``tests/aihwkit_reference.py``)."""

from __future__ import annotations

import dataclasses
import math

import aihwkit_reference as ref
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler.pipeline import CrossbarOptions, PipelineOptions, compile_binary
from cimc.ir.target.chip import load_chip
from cimc.runtime.binary import load_binary
from cimc.runtime.performance import estimate
from cimc.runtime.periphery import managed_read, readout
from cimc.runtime.session import InferenceSession, range_management

AIHWKIT = load_chip("aihwkit").periphery
assert AIHWKIT is not None


def test_the_aihwkit_preset_is_aihwkits_forward_io_parameters() -> None:
    """Each converter field is aihwkit 1.2's default, as the resolutions become steps in its C++ tile."""
    chip = load_chip("aihwkit")
    assert 1 / AIHWKIT.input_levels == pytest.approx(ref.INP_STEP)  # 1/126 over [-1, 1]: 1/63
    assert AIHWKIT.output_bound / AIHWKIT.output_levels == pytest.approx(ref.OUT_STEP)  # 1/510 over [-12, 12]
    assert AIHWKIT.output_bound == ref.OUT_BOUND and AIHWKIT.input_scaling == "abs_max"
    assert AIHWKIT.bound_management == "iterative" and AIHWKIT.max_passes == 5 and AIHWKIT.weight_units
    assert chip.tile.array_rows == chip.tile.array_cols == ref.MAX_TILE
    assert chip.tile.weight_scaling == "tensor" and not chip.tile.ir_drop and chip.tile.device == "pcm"
    options = CrossbarOptions.for_chip(chip)
    assert options.adc_bits == 0 and options.cell_bits == 8 and options.sign_encoding == "differential"


def _saturating_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed codes (some all zero, some that saturate the first passes), level weights and units per column."""
    rng = np.random.default_rng(seed)
    rows, cols = 40, 12
    weights = rng.integers(-127, 128, (rows, cols)).astype(np.float64)
    unit = rng.uniform(0.002, 0.02, cols)
    codes = rng.integers(-255, 256, (64, rows)).astype(np.float64)
    codes[::7] *= rng.random((len(codes[::7]), rows)) < 0.2  # sparse vectors: small abs-max, large outputs
    codes[5] = 0.0
    return codes, weights, unit


def test_managed_read_without_noise_is_aihwkits_forward() -> None:
    """ABS_MAX scaling, the 63-step DAC, the ADC at 24/510 clipped at +-12 and iterative bound management, read by
    read, equal aihwkit's forward (the C++ tile's steps, numpy in the reference) on the same raw weights."""
    codes, weights, unit = _saturating_case(0)
    out, passes, _ = managed_read(codes, weights, unit, AIHWKIT, full_scale=255.0)
    expected = ref.analog_mvm((weights * unit).T, codes, np.random.default_rng(0), out_noise=0.0)
    np.testing.assert_allclose(out * unit, expected, rtol=1e-5, atol=1e-9)
    assert passes[5] == 0 and not out[5].any()  # an all-zero input reads 0, with no read at all
    assert passes.max() > 1  # bound management did act here
    # each vector takes the passes until nothing saturates (16 is the last reduction)
    for m in range(len(codes)):
        nm = np.abs(codes[m]).max()
        if nm == 0:
            continue
        for p, r in enumerate((1, 2, 4, 8, 16)):
            v = np.rint(codes[m] / (nm * r) * 63) / 63
            y = np.rint((v @ (weights * unit)) / ref.OUT_STEP)
            if np.abs(y).max() <= 255 or r == 16:
                assert passes[m] == p + 1
                break


def test_managed_read_without_bound_management_reads_once_and_clips() -> None:
    codes, weights, unit = _saturating_case(0)
    once = dataclasses.replace(AIHWKIT, bound_management="none")
    out, passes, clipped = managed_read(codes, weights, unit, once, full_scale=255.0)
    assert set(np.unique(passes)) <= {0, 1}
    nm = np.abs(codes).max(axis=1, keepdims=True)
    v = np.rint(codes / np.where(nm > 0, nm, 1) * 63) / 63
    levels = np.clip(np.rint(v @ (weights * unit) / ref.OUT_STEP), -255, 255)
    np.testing.assert_allclose(out * unit, levels * ref.OUT_STEP * nm, rtol=1e-9, atol=1e-9)
    assert clipped == np.count_nonzero((np.abs(levels) == 255) & (nm > 0)) > 0  # every output at the bound


def test_output_noise_spread_is_its_closed_form() -> None:
    """With nothing stored, a read is the noise alone, digitized: its variance is sigma^2 + step^2 / 12 (the ADC's
    rounding; Sheppard's correction, good when sigma is above the step: 0.06 against 0.047)."""
    rows, cols, vectors = 8, 16, 20000
    codes = np.ones((vectors, rows))
    out, _, _ = managed_read(codes, np.zeros((rows, cols)), np.ones(cols), AIHWKIT, full_scale=1.0, sigma=0.06, key=7)
    expected = math.sqrt(0.06**2 + ref.OUT_STEP**2 / 12)
    assert out.std() == pytest.approx(expected, rel=0.015)
    assert abs(out.mean()) < 4 * expected / math.sqrt(out.size)
    again, _, _ = managed_read(
        codes[:100], np.zeros((rows, cols)), np.ones(cols), AIHWKIT, full_scale=1.0, sigma=0.06, key=7
    )
    np.testing.assert_array_equal(again, out[:100])  # the same draws for the same vectors: batch-independent


def test_readout_is_aihwkits_drift_compensation_readout() -> None:
    """The read-out of one-hot inputs through the converters, mean |y| over every output (noise off: exact)."""
    _, weights, unit = _saturating_case(2)
    expected = ref.readout((weights * unit).T, np.random.default_rng(0), out_noise=0.0)
    assert readout(weights, unit, AIHWKIT, sigma=0.0, key=0) == pytest.approx(expected, rel=1e-6)


def _gemm_model(weights: np.ndarray) -> onnx.ModelProto:
    """y = x @ W: one analog layer."""
    rows, cols = weights.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, cols])],
        [numpy_helper.from_array(weights.astype(np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def aihwkit_layer(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, np.ndarray, np.ndarray]:
    """A 64 -> 16 layer compiled for the ``aihwkit`` chip, its float weights and inputs."""
    rng = np.random.default_rng(3)
    weights = rng.normal(0.0, 0.3, (64, 16))
    x = rng.uniform(-1.0, 1.0, (8, 64)).astype(np.float32)
    path = str(tmp_path_factory.mktemp("aihwkit") / "layer.cimb")
    compile_binary(_gemm_model(weights), path, PipelineOptions(chip="aihwkit", calib={"x": x}))
    return path, weights, x


def test_aihwkit_layer_statistics_match_aihwkits_formulas(aihwkit_layer: tuple[str, np.ndarray, np.ndarray]) -> None:
    """One layer on the ``aihwkit`` chip, an hour after programming, over 40 seeds: each output's mean and the
    spread over seeds agree with aihwkit's programming noise, drift, 1/f noise, drift compensation and forward as
    the reference re-implements them on the float weights (cimc adds 8-bit weight and input quantization, small
    against the noise)."""
    path, weights, x = aihwkit_layer
    model, seeds = load_binary(path), 40
    runs = np.stack([InferenceSession(model, seed=s, drift_time="1h").run(None, {"x": x})[0] for s in range(seeds)])
    mean_ref, std_ref = ref.output_stats(weights.T, x, 3600.0, n_seeds=seeds, seed=5)
    mean, std = runs.mean(axis=0), runs.std(axis=0, ddof=1)
    scale = np.sqrt((std**2 + std_ref**2) / seeds)
    assert np.mean(np.abs(mean - mean_ref) < 3.5 * scale) >= 0.95
    pooled, pooled_ref = np.sqrt(np.mean(std**2)), np.sqrt(np.mean(std_ref**2))
    assert pooled == pytest.approx(pooled_ref, rel=0.12)


def test_ideal_aihwkit_reads_exactly(aihwkit_layer: tuple[str, np.ndarray, np.ndarray]) -> None:
    """``ideal`` turns the periphery off with everything else: the exact arithmetic, within 8-bit quantization."""
    path, weights, x = aihwkit_layer
    (y,) = InferenceSession(path, ideal=True).run(None, {"x": x})
    assert range_management(load_chip("aihwkit"), ideal=True) is None
    np.testing.assert_allclose(y, x @ weights, atol=0.02 * np.abs(x @ weights).max())


def test_bound_management_passes_count_in_time_and_energy(aihwkit_layer: tuple[str, np.ndarray, np.ndarray]) -> None:
    path, _, x = aihwkit_layer
    session = InferenceSession(path, seed=0)
    session.run(None, {"x": x * 4})
    (done, vectors) = session.simulator.read_passes[0]
    assert vectors == len(x) and done >= vectors
    model = load_binary(path)
    one, two = estimate(model), estimate(model, read_passes={0: 2.0})
    assert two.energy.per_inference_pj["dacs"] == pytest.approx(2 * one.energy.per_inference_pj["dacs"])
    assert two.energy.per_inference_pj["adcs"] == pytest.approx(2 * one.energy.per_inference_pj["adcs"])
    assert two.timing.latency_s > one.timing.latency_s


def test_periphery_settings_need_a_chip_that_has_one() -> None:
    with pytest.raises(ValueError, match="chip 'default' has no range-managed periphery"):
        range_management(load_chip("default"), bound_management="none")
    managed = range_management(load_chip("aihwkit"), input_scaling="none")
    assert managed is not None and managed.input_scaling == "none" and managed.bound_management == "iterative"


def test_a_periphery_is_checked_like_every_chip_field() -> None:
    from cimc.ir.target.chip import Chip, ChipError

    data = load_chip("aihwkit").to_dict()
    with pytest.raises(ChipError, match=r"\[periphery\] input_scaling must be one of 'abs_max', 'none', got \"max\""):
        Chip.from_dict({**data, "periphery": {**data["periphery"], "input_scaling": "max"}}, "chip.toml")
    with pytest.raises(ChipError, match=r"chip.toml: \[periphery\] reads a conductance pair's difference"):
        Chip.from_dict({**data, "tile": {**data["tile"], "sign_encoding": "offset"}}, "chip.toml")
    chip = load_chip("aihwkit")
    assert Chip.from_attribute(chip.to_attribute()) == chip
