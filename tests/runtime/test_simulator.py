"""The functional simulator: ``--ideal`` equals the exact ``cim`` executor bit for bit (both the exact fast path and
the simulated read path), on bundled models under several chips (narrow ADCs over calibrated and worst-case ranges
among them) and on PyTorch exports; HERMES's calibrated 8-bit ADCs within a point of exact; the read kernel against
a numpy reference bit for bit (planes, DAC bits, signed streams, every kind of noise, split batches) and against its
closed forms (ADC step, saturation, offset, noise spread); saturations per layer against a numpy count; determinism
across seeds and batch sizes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numba as nb
import numpy as np
import onnx
import pytest
from oracles import IDEAL, assert_ideal_equals

from cimc.compiler.pipeline import CrossbarOptions, PipelineOptions, compile_binary
from cimc.ir import run_module
from cimc.ir.core import Operation
from cimc.ir.dialects.cim import AdcOp, signed_phases
from cimc.ir.target.chip import load_chip
from cimc.runtime import kernels
from cimc.runtime.analog import AnalogConfig
from cimc.runtime.binary import CompiledModel, load_binary
from cimc.runtime.devices import device
from cimc.runtime.programming import NOISE_STREAM
from cimc.runtime.session import InferenceSession
from cimc.runtime.simulator import Simulator

MODELS = Path(__file__).resolve().parents[2] / "models"
EXPORTS = Path(__file__).resolve().parents[1] / "data" / "torch_exports"
TEST = np.load(MODELS / "digits_test.npz")

#: Chips and lowering options that change the read arithmetic: bit slices and planes, offset codes, 128-row
#: arrays with an ADC one bit narrower than exact, analog 8-bit cells with 8-bit DACs and 8-bit ADCs over a
#: calibrated range (HERMES) or the worst-case one, a narrow ADC that rounds and saturates, replicated layers.
VARIANTS = {
    "default": ("default", {}),
    "isaac-offset": ("isaac", {}),
    "hermes-analog": ("hermes", {}),
    "hermes-full-range": ("hermes", {"adc_range": "full"}),
    "adc5": ("default", {"adc_bits": 5}),
    "replicated": ("default", {"replicate": "auto"}),
}


def _compile(
    source: Path, folder: Path, chip: str, calib: dict | None = None, calib_method: str = "minmax", **crossbar: object
) -> CompiledModel:
    chip_ = load_chip(chip)
    crossbar_options = CrossbarOptions.for_chip(chip_, **crossbar)
    options = PipelineOptions(chip=chip_, crossbar=crossbar_options, calib=calib, calib_method=calib_method)
    path = folder / ("-".join([source.stem, *(f"{k}{v}" for k, v in crossbar.items())]) + ".cimb")
    compile_binary(source, path, options)
    return load_binary(path)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> CompiledModel:
    return _compile(MODELS / "digits_cnn.onnx", tmp_path_factory.mktemp("cnn"), "default")


@pytest.mark.parametrize("model", ["digits_mlp", "digits_cnn"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_ideal_equals_the_exact_executor_bit_for_bit(model: str, variant: str, tmp_path: Path) -> None:
    chip, crossbar = VARIANTS[variant]
    compiled = _compile(MODELS / f"{model}.onnx", tmp_path, chip, **crossbar)
    x = TEST["x"][:120]
    assert_ideal_equals(compiled, [x], run_module(compiled.module, [x]))
    if model == "digits_cnn" and variant == "default":  # conv, transpose, relu, quantize, conv: linked
        layers = Simulator(compiled, IDEAL)._layers.values()
        assert sum(layer.requantize is not None for layer in layers) == 1


def test_a_narrow_adc_changes_the_outputs(cnn: CompiledModel, tmp_path: Path) -> None:
    """The adc5 variant above is not vacuous: its arithmetic differs from the exact ADC's."""
    x = TEST["x"][:60]
    narrow = _compile(MODELS / "digits_cnn.onnx", tmp_path, "default", adc_bits=5)
    exact = run_module(cnn.module, [x])["logits"]
    assert not np.array_equal(Simulator(narrow, IDEAL).run([x])["logits"], exact)


@pytest.mark.parametrize("name", ["resnet_ts.onnx", "mbv2_dynamo.onnx", "encoder_ts.onnx"])
def test_ideal_equals_the_exact_executor_on_pytorch_exports(name: str, tmp_path: Path) -> None:
    """Models exported by PyTorch's exporters (residual, depthwise, attention), compiled to binaries."""
    model = onnx.load(EXPORTS / name)
    rng = np.random.default_rng(0)
    inputs = {}
    for value in model.graph.input:
        dims = [d.dim_value or {"batch": 2, "seq": 16}.get(d.dim_param, 2) for d in value.type.tensor_type.shape.dim]
        if value.type.tensor_type.elem_type == onnx.TensorProto.INT64:
            ids = rng.integers(0, 100, dims) if value.name == "ids" else np.ones(dims)
            inputs[value.name] = ids.astype(np.int64)
        else:
            inputs[value.name] = rng.standard_normal(dims).astype(np.float32)
    compiled = _compile(EXPORTS / name, tmp_path, "default", calib=inputs)
    assert_ideal_equals(compiled, inputs, run_module(compiled.module, inputs))


def _accuracy(compiled: CompiledModel) -> float:
    logits = Simulator(compiled, IDEAL).run([TEST["x"]])["logits"]
    return float((np.argmax(logits, 1) == TEST["y"]).mean())


def test_hermes_with_calibrated_adcs_stays_within_a_point_of_exact(tmp_path: Path) -> None:
    """The issue's bar: the digits CNN on HERMES, every noise source off, reads with the chip's 8-bit ADCs over
    calibrated ranges within 1 point of the exact arithmetic (446 of 450 test images); over the worst-case range
    they drop the low 12-16 bits of every read and lose over 20 points."""
    cnn = MODELS / "digits_cnn.onnx"
    exact = _accuracy(_compile(cnn, tmp_path, "hermes", adc_bits=0))
    calibrated = _accuracy(_compile(cnn, tmp_path, "hermes"))
    full = _accuracy(_compile(cnn, tmp_path, "hermes", adc_range="full"))
    assert exact == 446 / 450
    assert calibrated >= exact - 0.01
    assert full < exact - 0.2


def _numpy_saturations(compiled: CompiledModel, x: np.ndarray) -> dict[str, tuple[int, int]]:
    """Per layer, ``(conversions, saturated)`` counted in numpy over the ADC inputs the exact executor gives: a
    reading saturates when ``floor(current / 2^k + 1/2)`` passes the top code ``2^bits - 1``."""
    counts: dict[str, tuple[int, int]] = {}

    def observe(op: Operation, args: list[np.ndarray]) -> None:
        if isinstance(op, AdcOp):
            k, top = op.dropped_bits, 2 ** op.attr("bits") - 1
            codes = np.floor(args[0].astype(np.float64) / 2**k + 0.5)
            total, saturated = counts.get(op.location.name, (0, 0))
            counts[op.location.name] = (total + codes.size, saturated + int((codes > top).sum()))

    run_module(compiled.module, [x], observe)
    return counts


def test_saturations_per_layer_are_the_numpy_count(tmp_path: Path) -> None:
    """HERMES with ranges at the calibration set's 99.99th percentile: the test images saturate some reads; the
    simulator counts them per layer as numpy does, over every run, and the session gives their fractions."""
    compiled = _compile(MODELS / "digits_cnn.onnx", tmp_path, "hermes", calib_method="percentile")
    x = TEST["x"][:200]
    expected = _numpy_saturations(compiled, x)
    assert sum(saturated for _, saturated in expected.values()) > 0  # not vacuous
    sim = Simulator(compiled, IDEAL)
    sim.run([x[:120]])
    sim.run([x[120:]], first_sample=120)
    assert {layer: (c.conversions, c.saturated) for layer, c in sim.adc_counts.items()} == expected
    session = InferenceSession(compiled, ideal=True, batch_size=64)
    session.run(None, {"x": x})
    assert session.adc_saturation() == {layer: saturated / total for layer, (total, saturated) in expected.items()}


def test_exact_reads_count_their_conversions_and_no_saturation(cnn: CompiledModel) -> None:
    """On the exact fast path (the default chip's ADCs are exact) conversions are counted all the same."""
    x = TEST["x"][:50]
    sim = Simulator(cnn, IDEAL)
    sim.run([x])
    expected = _numpy_saturations(cnn, x)
    assert {layer: (c.conversions, c.saturated) for layer, c in sim.adc_counts.items()} == expected
    assert all(saturated == 0 for _, saturated in expected.values())


def test_noise_depends_on_the_seed_not_on_the_batching(cnn: CompiledModel) -> None:
    config = AnalogConfig(device=device("pcm"), drift_time_s=3600.0, adc_offset_lsb=0.2, seed=3)
    x = TEST["x"][:40]
    whole = Simulator(cnn, config).run([x])["logits"]
    sim = Simulator(cnn, config)
    parts = [sim.run([x[i : i + 7]], first_sample=i)["logits"] for i in range(0, 40, 7)]
    assert np.array_equal(np.concatenate(parts), whole)
    again = Simulator(cnn, config).run([x])["logits"]
    assert np.array_equal(again, whole)
    other = Simulator(cnn, dataclasses.replace(config, seed=4)).run([x])["logits"]
    assert not np.array_equal(other, whole)
    exact = run_module(cnn.module, [x])["logits"]
    assert not np.array_equal(whole, exact)


def test_pcm_after_an_hour_with_compensation_keeps_accuracy(cnn: CompiledModel) -> None:
    """8-bit digits CNN, PCM preset (aihwkit's PCMLikeNoiseModel and out_noise 0.06), t = 1 hour, drift compensation
    from noisy read-outs: at most 3 points lost (issue 11 moved the bar from 2: aihwkit's output noise is 0.06, not
    0.04, and its read-out compensation carries that noise into the gain)."""
    x, y = TEST["x"], TEST["y"]
    reference = float((np.argmax(run_module(cnn.module, [x])["logits"], 1) == y).mean())
    accuracies = []
    for seed in range(3):
        config = AnalogConfig(device=device("pcm"), drift_time_s=3600.0, seed=seed)
        accuracies.append(float((np.argmax(Simulator(cnn, config).run([x])["logits"], 1) == y).mean()))
    assert reference - np.mean(accuracies) <= 0.03, accuracies


def _reference_reads(
    codes: np.ndarray,
    zero_point: int,
    dac_bits: int,
    g: np.ndarray,
    ratio: np.ndarray | None,
    sigma_cell: float,
    sigma_column: float,
    offsets: np.ndarray,
    step: float,
    top: float,
    weights: np.ndarray,
    key: np.uint64,
) -> tuple[np.ndarray, np.ndarray]:
    """The reads of ``kernels.read_arrays`` in numpy: planes by shifts and masks, currents by a float64 GEMM, each
    read's draw ``gaussians(key, counter)`` at its counter, the ADC in float32 as the kernel rounds, the shift-add
    as an einsum. Exact against the kernel where the sums of levels and ratios are exact in float32."""
    counts = signed_phases(8, dac_bits, zero_point) if zero_point else (-(-8 // dac_bits),)
    wide = codes.astype(np.int64)
    phases = [np.maximum(wide - zero_point, 0), np.maximum(zero_point - wide, 0)] if zero_point else [wide]
    mask = (1 << dac_bits) - 1
    drive = np.stack([(ph >> (p * dac_bits)) & mask for ph, n in zip(phases, counts) for p in range(n)])
    planes, arrays = weights.shape
    vectors, width = len(codes), g.shape[1]
    currents = (drive.astype(np.float64) @ g.astype(np.float64)).astype(g.dtype)  # [planes, vectors, width]
    squares = (drive * drive).astype(np.float64)
    active = squares @ ratio.astype(np.float64) if ratio is not None else squares.sum(axis=2, keepdims=True)
    if ratio is not None:  # a sigma per read, in float32
        sigma = np.sqrt(np.float32(sigma_cell**2) * active.astype(np.float32) + np.float32(sigma_column**2))
    else:
        sigma = np.sqrt(sigma_cell**2 * active.astype(np.float32) + sigma_column**2).astype(np.float32)
    z = np.empty(vectors * planes * width, np.float32)
    kernels.gaussians(key, np.uint64(0), z)
    noise = z.reshape(vectors, planes, width).transpose(1, 0, 2)  # counter (m * P + p) * width + j
    if sigma_cell > 0 or sigma_column > 0:
        currents = currents + sigma * noise
    code = np.floor(currents * np.float32(1 / step) + offsets + np.float32(0.5))
    saturated = (code > top).sum(axis=(0, 2))
    reading = np.clip(code, 0, top).astype(np.int64) * int(step)
    out = np.einsum("pa,pmac->mc", weights, reading.reshape(planes, vectors, arrays, -1))
    return out, saturated


@pytest.mark.parametrize(
    ("zero_point", "dac_bits", "noise", "dtype"),
    [
        (0, 1, "none", np.float32),
        (0, 1, "column", np.float32),
        (128, 1, "cell", np.float32),
        (77, 2, "cell", np.float32),
        (0, 3, "scaled", np.float32),
        (93, 1, "scaled", np.float32),
        (0, 2, "cell", np.float64),
    ],
)
def test_reads_equal_a_numpy_reference(zero_point: int, dac_bits: int, noise: str, dtype: type) -> None:
    """``kernels.read_arrays`` against numpy, bit for bit: every phase, plane and DAC bit (1, 2 and 3-bit DACs,
    signed streams), 70 rows (groups and blocks of groups cut short) and 100 columns per array (a tile cut short),
    noise none, per output, per active cell or scaling with conductance, ADC offsets, a dropped bit and saturation,
    float32 and float64 conductances (the simulator's choice past 2^24); the same readings when the batch is split and
    read in another order (the noise follows the vector's index), by parts of 2 and 4 vectors whose tables are made as
    their reads need them and one of 34 that makes them all at once."""
    rng = np.random.default_rng(5)
    vectors, rows, arrays, columns = 40, 70, 4, 100
    codes = rng.integers(0, 256, (vectors, rows), dtype=np.uint8)
    codes[2] = zero_point  # a vector whose planes are all zero
    g = rng.integers(0, 8, (rows, arrays * columns)).astype(dtype)
    ratio = (rng.integers(0, 9, g.shape) / 8).astype(np.float32) if noise == "scaled" else None
    sigma_cell = 0.0 if noise in ("none", "column") else 0.4
    sigma_column = 0.0 if noise == "none" else 0.7
    offsets = rng.uniform(-0.4, 0.4, arrays * columns).astype(np.float32)
    planes = sum(signed_phases(8, dac_bits, zero_point) if zero_point else (-(-8 // dac_bits),))
    weights = rng.integers(-40, 40, (planes, arrays))
    step, top = 2.0, 31.0
    key = kernels.stream_key(11, 2)
    expected, saturated = _reference_reads(
        codes, zero_point, dac_bits, g, ratio, sigma_cell, sigma_column, offsets, step, top, weights, key
    )
    assert saturated.sum() > 0  # not vacuous

    def read(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        counts = signed_phases(8, dac_bits, zero_point) if zero_point else (planes,)
        out, sat = np.zeros((len(m), columns), np.int64), np.zeros(len(m), np.int64)
        kernels.read_arrays(
            codes[m],
            zero_point,
            dac_bits,
            np.asarray(counts, np.int64),
            g,
            ratio if ratio is not None else np.zeros((0, 0), np.float32),
            sigma_cell,
            sigma_column,
            offsets,
            step,
            top,
            weights,
            key,
            m,
            out,
            sat,
        )
        return out, sat

    out, sat = read(np.arange(vectors))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(sat, saturated)
    order = rng.permutation(vectors)
    for part in np.split(order, [2, 6]):
        out, sat = read(part)
        np.testing.assert_array_equal(out, expected[part])
        np.testing.assert_array_equal(sat, saturated[part])


def _read(currents: np.ndarray, vectors: int = 1, **kw: object) -> np.ndarray:
    """``kernels.read_arrays`` reading the columns' ``currents`` (one array, unit shift-add weight) for ``vectors``
    input vectors: 16 rows at 1/16 of each current (exact in float32) driven by a 1-bit plane, so each read's sum
    of squared codes is 16; returns the ADC's codes times its step, one row per vector."""
    args = {
        "ratio": np.zeros((0, 0), np.float32),
        "sigma_cell": 0.0,
        "sigma_column": 0.0,
        "offsets": np.zeros(len(currents), np.float32),
        "step": 1.0,
        "top": 255.0,
        **kw,
    }
    out = np.zeros((vectors, len(currents)), np.int64)
    saturated = kw.get("saturated", np.zeros(vectors, np.int64))
    kernels.read_arrays(
        np.ones((vectors, 16), np.uint8),
        0,
        1,
        np.ones(1, np.int64),
        np.tile(np.asarray(currents, np.float32) / 16, (16, 1)),
        args["ratio"],
        args["sigma_cell"],
        args["sigma_column"],
        args["offsets"],
        args["step"],
        args["top"],
        np.ones((1, 1), np.int64),
        kernels.stream_key(0),
        np.arange(vectors, dtype=np.int64),
        out,
        saturated,
    )
    return out


def test_adc_rounds_to_its_step_and_saturates() -> None:
    currents = np.array([-3.0, 0.0, 3.0, 5.6, 47.9, 48.1, 250.0, 10_000.0])
    # a 4-bit ADC with an 8-level step (3 dropped bits): codes 0..15 round half up, negative currents read 0, the
    # top code saturates: readings 0..120
    saturated = np.zeros(1, np.int64)
    assert _read(currents, step=8.0, top=15.0, saturated=saturated).tolist() == [[0, 0, 0, 8, 48, 48, 120, 120]]
    assert saturated.tolist() == [2]  # 250 and 10,000 (codes 31 and 1,250) pass the top code 15; 48.1 (6) does not
    # offsets in LSB move the thresholds: +0.5 LSB rounds 3.0 (0.375 LSB) up, -0.5 LSB rounds 47.9 down to 40
    offsets = np.array([0, 0, 0.5, 0, -0.5, 0, 0, 0], np.float32)
    assert _read(currents, step=8.0, top=15.0, offsets=offsets).tolist() == [[0, 0, 8, 8, 40, 48, 120, 120]]


def test_read_noise_spread_follows_its_closed_form() -> None:
    """Each reading's noise has variance sigma_cell^2 * active + sigma_column^2 (active: the 16 driven cells);
    after an exact ADC of step 1 the reading's variance adds the rounding's 1/12 (Sheppard's correction, exact for a
    smooth density)."""
    vectors = 20_000
    currents = np.full(4, 100.25)
    out = _read(currents, vectors, sigma_cell=0.5, sigma_column=1.5)
    expected = 0.5**2 * 16 + 1.5**2 + 1 / 12
    samples = out.astype(np.float64).ravel()
    assert abs(samples.mean() - 100.25) < 4 * np.sqrt(expected / samples.size)
    # the sample variance's standard error is about var * sqrt(2 / n)
    assert abs(samples.var() - expected) < 4 * expected * np.sqrt(2 / samples.size)
    # read noise that scales with conductance: each cell's ratio 1/16, 4/16, 1, 4 gives active sums 1, 4, 16, 64
    ratio = np.tile(np.array([1 / 16, 4 / 16, 1.0, 4.0], np.float32), (16, 1))
    out = _read(currents, vectors, ratio=ratio, sigma_cell=0.5).astype(np.float64)
    for column, active_sum in enumerate([1.0, 4.0, 16.0, 64.0]):
        variance = 0.5**2 * active_sum + 1 / 12
        assert abs(out[:, column].var() - variance) < 4 * variance * np.sqrt(2 / vectors)


def test_the_gaussian_stream_is_standard_normal() -> None:
    z = np.empty(400_000, np.float32)
    kernels.gaussians(kernels.stream_key(7), np.uint64(0), z)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    # tails: the fraction beyond 2 sigma is 4.55% for a Gaussian
    assert abs((np.abs(z) > 2).mean() - 0.0455) < 0.002
    again = np.empty(10, np.float32)
    kernels.gaussians(kernels.stream_key(7), np.uint64(5), again)
    assert np.array_equal(again, z[5:15])


def test_programming_reports_its_stuck_cells(cnn: CompiledModel) -> None:
    config = AnalogConfig(device=device("rram"), stuck_on_rate=0.01, stuck_off_rate=0.02)
    stats = Simulator(cnn, config).stats
    cells = sum(op.tensor_attr("levels").size for op in cnn.module.walk() if op.name == "cim.program")
    assert stats.cells == cells
    for count, rate in ((stats.stuck_on, 0.01), (stats.stuck_off, 0.02)):
        assert abs(count - rate * cells) < 4 * np.sqrt(cells * rate * (1 - rate))


def test_programming_does_not_depend_on_the_thread_count(cnn: CompiledModel) -> None:
    """Groups are programmed on numba's threads, each from its own key: one thread or two give the same arrays,
    and the stats name the random stream they were drawn from."""
    config = AnalogConfig(device=device("pcm"), drift_time_s=3600.0, stuck_on_rate=0.01, adc_offset_lsb=0.2)
    threads = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        alone = Simulator(cnn, config)
    finally:
        nb.set_num_threads(threads)
    shared = Simulator(cnn, config)
    assert alone._arrays.keys() == shared._arrays.keys()
    for group, arrays in alone._arrays.items():
        for mine, theirs in zip(arrays.conductance, shared._arrays[group].conductance, strict=True):
            assert mine.tobytes() == theirs.tobytes()
        assert [o.tobytes() for o in arrays.offsets] == [o.tobytes() for o in shared._arrays[group].offsets]
    assert alone.stats == shared.stats and shared.stats.noise_stream == NOISE_STREAM == 2


def test_pcm_reads_add_only_aihwkits_output_noise(cnn: CompiledModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """pcm with programming error, drift and 1/f noise off (IR drop and compensation off): every read hands the
    kernel the exact levels, no ADC offsets, no per-cell read noise and the output noise 0.06 g_max in its units
    (delta = g_max / (2^cell_bits - 1), times 2^dac_bits - 1): the only variance left is the output noise's, whose
    spread through the kernel test_read_noise_spread_follows_its_closed_form checks."""
    seen: list[tuple[float, float, bool]] = []
    read_arrays = kernels.read_arrays

    def spy(*args: object) -> None:
        ratio, sigma_cell, sigma_column, offsets = args[5:9]
        assert isinstance(ratio, np.ndarray) and isinstance(offsets, np.ndarray)
        assert ratio.size == 0  # no noise that scales with conductance
        seen.append((float(sigma_cell), float(sigma_column), bool(offsets.any())))  # type: ignore[arg-type]
        read_arrays(*args)

    monkeypatch.setattr(kernels, "read_arrays", spy)
    config = AnalogConfig(
        device=device("pcm"),
        programming_noise=False,
        drift=False,
        flicker_noise=False,
        ir_drop=False,
        drift_compensation=False,
        drift_time_s=3600.0,
    )
    sim = Simulator(cnn, config)
    chip = load_chip("default")
    for arrays in sim._arrays.values():
        for g in arrays.conductance:
            assert np.array_equal(g, np.rint(g))  # exact integer levels
    sim.run([TEST["x"][:4]])
    dac = (1 << chip.tile.dac_bits) - 1
    expected = 0.06 * 25.0 / (25.0 / ((1 << chip.tile.cell_bits) - 1)) * dac
    assert seen and all(cell == 0.0 and column == pytest.approx(expected) and not off for cell, column, off in seen)
