"""Calibration: the ranges set on each float crossbar layer are the min and max (or the batch-averaged
percentiles) of that layer's input as numpy computes it; only crossbar layers are annotated; bad inputs give one
clear error naming the input."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler import import_onnx, run_passes
from cimc.compiler.calibration import CalibrationError, calibrate
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
