"""Calibration: the ranges set on each float crossbar layer are the min and max (or the batch-averaged
percentiles) of that layer's input as numpy computes it; only crossbar layers are annotated; bad inputs give one
clear error naming the input. The full scale of each ADC narrower than exact covers the currents it reads (worked by
hand on a small layer, and against numpy on the digits CNN for HERMES)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler import CrossbarOptions, PipelineOptions, compile_onnx, import_onnx, run_passes
from cimc.compiler.calibration import ADC_RANGE, CalibrationError, calibrate, calibrate_adc_ranges
from cimc.compiler.files import InputFileError
from cimc.ir import run_module
from cimc.ir.core import Operation
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import AdcOp
from cimc.ir.parser import parse_module
from cimc.ir.target.chip import load_chip
from cimc.passes.lower_to_cim import INPUT_RANGE

RNG = np.random.default_rng(0)
W1 = RNG.standard_normal((6, 8)).astype(np.float32)
W2 = RNG.standard_normal((4, 8)).astype(np.float32)
B2 = RNG.standard_normal(4).astype(np.float32)


def _mlp(batch: int | str = "batch"):
    """x -> MatMul(W1) -> Relu -> Gemm(W2, B2, transB=1), canonicalized."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((W1, "w1"), (W2, "w2"), (B2, "b2"))]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
        inits,
    )
    module = import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    run_passes(module, "canonicalize")
    return module


def _ranges(module) -> dict[str, tuple[float, float]]:
    return {
        op.location.name: op.attributes[INPUT_RANGE].value
        for op in module.function("main").body.ops
        if INPUT_RANGE in op.attributes
    }


def test_minmax_ranges_are_the_inputs_extremes() -> None:
    module = _mlp()
    x = RNG.normal(0.5, 2.0, (100, 6)).astype(np.float32)  # batches of 32, 32, 32 and 4
    assert calibrate(module, {"x": x}) == 2
    ranges = _ranges(module)
    assert set(ranges) == {"fc1", "fc2"}  # the Relu is not a crossbar layer
    assert ranges["fc1"] == (float(x.min()), float(x.max()))
    hidden = np.maximum(x @ W1, 0)
    np.testing.assert_allclose(ranges["fc2"], (hidden.min(), hidden.max()), rtol=1e-6)
    assert ranges["fc2"][0] == 0.0


def test_minmax_does_not_depend_on_the_batch() -> None:
    x = RNG.standard_normal((50, 6)).astype(np.float32)
    ranges = []
    for batch in (1, 7, 64):
        module = _mlp()
        calibrate(module, {"x": x}, batch=batch)
        ranges.append(_ranges(module)["fc1"])
    assert ranges[0] == ranges[1] == ranges[2] == (float(x.min()), float(x.max()))


def test_percentile_averages_the_batches_percentiles() -> None:
    module = _mlp()
    x = RNG.standard_cauchy((80, 6)).astype(np.float32)  # heavy tails: percentiles well inside the extremes
    calibrate(module, {"x": x}, method="percentile", percentile=99.0, batch=32)
    batches = [x[:32], x[32:64], x[64:]]
    weights = [32, 32, 16]
    lows = [np.percentile(b.astype(np.float64), 1.0) for b in batches]
    highs = [np.percentile(b.astype(np.float64), 99.0) for b in batches]
    lo, hi = _ranges(module)["fc1"]
    assert lo == pytest.approx(np.average(lows, weights=weights), rel=1e-6)
    assert hi == pytest.approx(np.average(highs, weights=weights), rel=1e-6)
    assert lo != pytest.approx(np.mean(lows), rel=1e-3)  # the short last batch counts for its samples only
    assert x.min() < lo < 0 < hi < x.max()


def test_percentile_100_is_minmax_for_one_batch() -> None:
    x = RNG.standard_normal((20, 6)).astype(np.float32)
    module = _mlp()
    calibrate(module, {"x": x}, method="percentile", percentile=100.0)
    assert _ranges(module)["fc1"] == (float(x.min()), float(x.max()))


def test_fixed_batch_runs_in_its_own_batch() -> None:
    module = _mlp(batch=4)
    x = RNG.standard_normal((12, 6)).astype(np.float32)
    assert calibrate(module, {"x": x}, batch=32) == 2
    assert _ranges(module)["fc1"] == (float(x.min()), float(x.max()))
    with pytest.raises(CalibrationError, match="'x' has 10 samples, not a multiple of the model's fixed batch 4"):
        calibrate(_mlp(batch=4), {"x": x[:10]})


@pytest.mark.parametrize(
    "inputs, options, message",
    [
        ({"x": np.zeros((0, 6), np.float32)}, {}, "calibration input 'x' is empty"),
        ({"x": np.zeros((4, 5), np.float32)}, {}, r"calibration input 'x' is float32\[4, 5\] but the model expects "),
        ({"x": np.zeros((4, 6), np.float64)}, {}, r"calibration input 'x' is float64\[4, 6\]"),
        ({"image": np.zeros((4, 6), np.float32)}, {}, r"must be named \['x'\]; missing \['x'\], unknown \['image'\]"),
        ({"x": np.full((4, 6), np.nan, np.float32)}, {}, r"input of 'graph.matmul' at loc\(\"fc1\"\) is not finite"),
        ({"x": np.zeros((4, 6), np.float32)}, {"method": "entropy"}, "unknown calibration method 'entropy'"),
        ({"x": np.zeros((4, 6), np.float32)}, {"method": "percentile", "percentile": 30}, r"must be in \(50, 100\]"),
        ({"x": np.zeros((4, 6), np.float32)}, {"batch": 0}, "batch must be positive, got 0"),
    ],
    ids=["empty", "shape", "dtype", "name", "nan", "method", "percentile", "batch"],
)
def test_bad_calibration_is_named(inputs, options, message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        calibrate(_mlp(), inputs, **options)
    assert issubclass(CalibrationError, ValueError)


def test_a_model_without_float_layers_is_left_alone() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 6])],
    )
    module = import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert calibrate(module, {"x": np.ones((3, 6), np.float32)}) == 0
    assert not _ranges(module)


# --- ADC ranges ----------------------------------------------------------------------------------------------------

#: The layer of tests/passes/bit-slice.mlir: 4-bit codes, weights rows 1..4 of column 0 [1, 2, -3, 4] and rows 5..6
#: [[5, -6], [0, 7]], tiled into 4-row arrays, 2-bit cells, 2-bit DACs.
SLICED = (Path(__file__).resolve().parents[1] / "passes" / "bit-slice.mlir").read_text()
ROOT = Path(__file__).resolve().parents[2]


def _sliced(adc_bits: int) -> ModuleOp:
    """The layer above at the ``cim`` stage with ``adc_bits``-bit ADCs (6 bits read block 0 exactly, 5 block 1)."""
    module = parse_module(SLICED[SLICED.index('"builtin.module"') :])
    run_passes(module, f"tile{{array-rows=4}},bit-slice{{cell-bits=2 dac-bits=2 adc-bits={adc_bits} array-rows=4}}")
    return module


def _adcs(module: ModuleOp) -> list[tuple[int, int, str | None]]:
    """``(bits, full_scale_bits, cim.adc_range)`` of each ``cim.adc``, in order."""
    return [
        (op.attr("bits"), op.attr("full_scale_bits"), getattr(op.attributes.get(ADC_RANGE), "value", None))
        for op in module.walk()
        if isinstance(op, AdcOp)
    ]


def test_adc_full_scale_covers_the_largest_current_by_hand() -> None:
    """Codes 3 on rows 1..5 stream as plane 0 = 3, plane 1 = 0. Block 0 (rows 1..4, column 0): positive slice 0
    levels 1, 2, 0, 0 -> 3 x 3 = 9; slice 1 0, 0, 0, 1 -> 3; negative slice 0 0, 0, 3, 0 -> 9: the largest current
    is 9, ceil(log2(10)) = 4 bits. Block 1 (rows 5..6, only row 5 driven): positive slices [1, 0] and [1, 0] -> 3
    and 3; negative [0, 2] and [0, 1] -> 6 and 3: largest 6, ceil(log2(7)) = 3 bits. 2-bit ADCs keep them (both
    above 2, below exact 6 and 5); all-zero inputs give the ADC's own width."""
    module = _sliced(adc_bits=2)
    assert _adcs(module) == [(2, 6, None), (2, 5, None)]
    codes = np.array([[0, 3, 3, 3, 3, 3, 0]], np.uint8)
    assert calibrate_adc_ranges(module, {"codes": codes}) == 2
    assert _adcs(module) == [(2, 4, "calibrated"), (2, 3, "calibrated")]
    zeros = _sliced(adc_bits=2)
    calibrate_adc_ranges(zeros, {"codes": np.zeros((3, 7), np.uint8)})
    assert _adcs(zeros) == [(2, 2, "calibrated"), (2, 2, "calibrated")]


def test_top_codes_and_wide_adcs() -> None:
    """Codes 15 on every row stream 3 in both planes: each block's largest current is 9 (block 0: 3 x (1 + 2) and
    3 x 3; block 1: 3 x 3 in column 1), 4 bits for 3-bit ADCs. 6-bit ADCs read block 0 exactly and are cut to block
    1's exact 5 bits by ``bit-slice``: nothing is narrow, nothing calibrated."""
    module = _sliced(adc_bits=3)
    calibrate_adc_ranges(module, {"codes": np.full((2, 7), 15, np.uint8)})
    assert _adcs(module) == [(3, 4, "calibrated"), (3, 4, "calibrated")]
    exact = _sliced(adc_bits=6)  # block 0 exact at 6 bits; block 1 (5 bits exact) gets 5: nothing narrow
    assert calibrate_adc_ranges(exact, {"codes": np.full((2, 7), 15, np.uint8)}) == 0
    assert _adcs(exact) == [(6, 6, None), (5, 5, None)]


def test_adc_percentile_range_by_hand() -> None:
    """The same reads with ``percentile``: block 0's 8 currents per vector (2 planes x 2 signs x 2 slices) are
    9, 3, 9, 0 and four zeros: numpy's 75th percentile interpolates sorted[5.25] = 3 + 0.25 x 6 = 4.5 ->
    ceil(log2(5.5)) = 3 bits; block 1's 16 currents hold 3, 3, 6, 3 and twelve zeros: sorted[11.25] = 0.75 ->
    1 bit, raised to the ADC's 2."""
    module = _sliced(adc_bits=2)
    codes = np.array([[0, 3, 3, 3, 3, 3, 0]], np.uint8)
    calibrate_adc_ranges(module, {"codes": codes}, method="percentile", percentile=75)
    assert _adcs(module) == [(2, 3, "calibrated"), (2, 2, "calibrated")]


def test_adc_ranges_are_read_with_exact_adcs() -> None:
    """While the currents are observed every ADC reads exactly, and afterwards keeps its own width: the layer's
    outputs after calibration are those of ADCs of that width over the calibrated full scale."""
    module = _sliced(adc_bits=2)
    codes = np.random.default_rng(0).integers(0, 16, (64, 7)).astype(np.uint8)
    calibrate_adc_ranges(module, {"codes": codes})
    (_, block0, _), (_, block1, _) = _adcs(module)
    exact = _sliced(adc_bits=0)
    currents: list[np.ndarray] = []
    run_module(exact, {"codes": codes}, lambda op, args: currents.append(args[0]) if isinstance(op, AdcOp) else None)
    assert [math.ceil(math.log2(c.max() + 1)) for c in currents] == [block0, block1]
    assert [bits for bits, _, _ in _adcs(module)] == [2, 2]


def test_the_pipeline_calibrates_narrow_adcs_unless_asked_for_the_worst_case() -> None:
    """The digits CNN on HERMES (8-bit ADCs over 256 analog rows): calibrated by default, each ADC's full scale
    the calibration set's largest current (numpy, over the exact executor's ADC inputs); ``full`` keeps the
    worst-case column sum; ``adc_bits=0`` is exact."""
    chip = load_chip("hermes")
    model = ROOT / "models" / "digits_cnn.onnx"
    calibrated, full, exact = (
        compile_onnx(model, PipelineOptions(emit="cim", chip=chip, crossbar=CrossbarOptions.for_chip(chip, **kw)))[0]
        for kw in ({}, {"adc_range": "full"}, {"adc_bits": 0})
    )
    largest: list[int] = []

    def observe(op: Operation, args: list[np.ndarray]) -> None:
        if isinstance(op, AdcOp):
            largest.append(int(args[0].max()))

    with np.load(ROOT / "models" / "digits_calib.npz") as calib:
        run_module(exact, {"x": calib["x"]}, observe)
    worst = [full_scale for _, full_scale, _ in _adcs(exact)]
    assert min(worst) > 8 and _adcs(full) == [(8, cap, None) for cap in worst]
    assert _adcs(calibrated) == [
        (8, min(max(math.ceil(math.log2(top + 1)), 8), cap), "calibrated") for top, cap in zip(largest, worst)
    ]
    assert [bits for bits, _, _ in _adcs(exact)] == worst


def test_narrow_adcs_without_calibration_inputs_are_refused() -> None:
    """A QDQ model needs no activation ranges, but a chip with narrow ADCs still needs data for their ranges: the
    error says so and what else would do."""
    w = numpy_helper.from_array(np.linspace(-1, 1, 128, dtype=np.float32).reshape(64, 2), "w")
    s = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.uint8), "z")
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        helper.make_node("MatMul", ["d", "w"], ["y"], name="fc"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])
    model = helper.make_model(helper.make_graph(nodes, "qdq", [x], [y], [w, s, z]))
    message = "the model: calibrating the range of its 8-bit ADCs (an exact read needs up to 22 bits) needs calibration"
    with pytest.raises(InputFileError, match=re.escape(message) + ".*--adc-range full.*--adc-bits 0"):
        compile_onnx(model, PipelineOptions(emit="cim", chip="hermes"))
    full = CrossbarOptions.for_chip(load_chip("hermes"), adc_range="full")
    module, _ = compile_onnx(model, PipelineOptions(emit="cim", chip="hermes", crossbar=full))
    assert _adcs(module) == [(8, 22, None)]


def test_only_a_bundled_model_is_calibrated_on_its_bundled_set_unnamed(tmp_path: Path) -> None:
    """``models/digits_cnn.onnx`` takes ``models/digits_calib.npz``; a copy of both in a user's folder takes none:
    a file that merely lies beside a model is never used unless named with ``--calib``."""
    from cimc.compiler.pipeline import default_calibration

    assert default_calibration(ROOT / "models" / "digits_cnn.onnx") == ROOT / "models" / "digits_calib.npz"
    for name in ("digits_cnn.onnx", "digits_calib.npz"):
        (tmp_path / name).write_bytes((ROOT / "models" / name).read_bytes())
    assert default_calibration(tmp_path / "digits_cnn.onnx") is None
    assert default_calibration(ROOT / "models" / "no_such.onnx") is None
