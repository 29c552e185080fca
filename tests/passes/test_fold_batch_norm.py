"""fold-batch-norm keeps the function's numbers: Conv, Gemm and MatMul followed by a random batch norm give the
interpreter's output of the unfolded graph, and no batch norm is left."""

from __future__ import annotations

import numpy as np
import pytest

from cimc.ir import PassManager, TensorType, run_module
from cimc.ir.types import F32


def _batch_norm(graph, x, channels: int, rng: np.random.Generator, epsilon: float = 1e-3):
    """A batch norm with random statistics (positive variances) over ``channels``."""
    params = [
        rng.normal(1.0, 0.5, channels),  # gamma
        rng.normal(0.0, 0.5, channels),  # beta
        rng.normal(0.0, 1.0, channels),  # mean
        rng.uniform(0.2, 2.0, channels),  # var
    ]
    consts = [graph.const(p.astype(np.float32)) for p in params]
    return graph.op("BatchNormalization", x, *consts, loc="bn", epsilon=epsilon).result


def _check_folds(module, inputs: dict[str, np.ndarray], graph, expected_ops: list[str]) -> None:
    before = run_module(module, inputs)["y0"]
    PassManager("fold-batch-norm", verify_each=True).run(module)
    assert graph.op_names(module) == expected_ops
    # rtol for the outputs, plus an atol floor of float32 rounding for outputs that cancel to near zero
    np.testing.assert_allclose(run_module(module, inputs)["y0"], before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "bias, attrs",
    [
        (True, {"pads": [1, 1, 1, 1]}),
        (False, {"group": 2, "strides": [2, 2]}),
    ],
    ids=["bias-padded", "no-bias-grouped-strided"],
)
def test_conv_batch_norm(graph, rng, bias: bool, attrs: dict) -> None:
    group = attrs.get("group", 1)
    x = rng.standard_normal((2, 4, 7, 7)).astype(np.float32)
    g = graph({"x": TensorType.of(x)})
    w = g.const(rng.standard_normal((6, 4 // group, 3, 3)).astype(np.float32), "w")
    b = g.const(rng.standard_normal(6).astype(np.float32), "b") if bias else None
    conv = g.op("Conv", g.inputs["x"], w, b, loc="conv", **attrs)
    module = g.finish([_batch_norm(g, conv.result, 6, rng)])
    _check_folds(module, {"x": x}, g, ["graph.constant", "graph.constant", "graph.conv", "func.return"])


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("with_c", [True, False], ids=["C", "no-C"])
def test_gemm_batch_norm(graph, rng, trans_b: int, with_c: bool) -> None:
    a = rng.standard_normal((5, 8)).astype(np.float32)
    g = graph({"a": TensorType.of(a)})
    b = g.const(rng.standard_normal((3, 8) if trans_b else (8, 3)).astype(np.float32), "B")
    c = g.const(rng.standard_normal(3).astype(np.float32), "C") if with_c else None
    gemm = g.op("Gemm", g.inputs["a"], b, c, loc="gemm", transB=trans_b, alpha=0.75, beta=1.25)
    module = g.finish([_batch_norm(g, gemm.result, 3, rng)])
    _check_folds(module, {"a": a}, g, ["graph.constant", "graph.constant", "graph.gemm", "func.return"])


def test_matmul_batch_norm_becomes_matmul_plus_bias(graph, rng) -> None:
    g = graph({"x": TensorType((None, 8), F32)})
    w = g.const(rng.standard_normal((8, 3)).astype(np.float32), "w")
    matmul = g.op("MatMul", g.inputs["x"], w, loc="fc")
    module = g.finish([_batch_norm(g, matmul.result, 3, rng)])
    x = rng.standard_normal((5, 8)).astype(np.float32)
    expected = ["graph.constant", "graph.matmul", "graph.constant", "graph.add", "func.return"]
    _check_folds(module, {"x": x}, g, expected)


def test_matmul_with_3d_result_is_left_alone(graph, rng) -> None:
    # batch norm's channels are axis 1 (the 4 rows here), not the weight's columns: nothing to fold into
    g = graph({"x": TensorType((2, 4, 8), F32)})
    matmul = g.op("MatMul", g.inputs["x"], g.const(rng.standard_normal((8, 3)).astype(np.float32)))
    module = g.finish([_batch_norm(g, matmul.result, 4, rng)])
    PassManager("fold-batch-norm", verify_each=True).run(module)
    assert "graph.batch_norm" in g.op_names(module)
