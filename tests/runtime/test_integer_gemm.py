"""onnxruntime's integer GEMM as the exact path's product (``cimc.runtime.integer_gemm``): its hand-written ONNX
model is the one the ``onnx`` package builds, and its products equal numpy's int64 ones, worst cases included."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.runtime.integer_gemm import MAX_DEPTH, IntegerGemm, _model, exact_form, integer_gemm


@pytest.mark.parametrize("form", ["s8", "u8"])
def test_the_wire_format_model_is_the_one_onnx_builds(form: str) -> None:
    weights = np.arange(-6, 6).reshape(4, 3).astype(np.int8 if form == "s8" else np.uint8)
    wz = 0 if form == "s8" else 128
    data_type = TensorProto.INT8 if form == "s8" else TensorProto.UINT8
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "a_zero", "w_zero"], ["y"])],
        "crossbar",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, ["rows", 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["rows", 3])],
        [
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array(7, np.uint8), "a_zero"),
            numpy_helper.from_array(np.array(wz, weights.dtype), "w_zero"),
        ],
    )
    expected = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    got = onnx.load_from_string(_model(weights, 7, wz))
    onnx.checker.check_model(got)
    assert got.graph.initializer[0].data_type == data_type
    # the same messages field by field (onnx's own writer adds nothing else but the default producer fields)
    assert got.graph == expected.graph
    assert got.ir_version == 8 and [(o.domain, o.version) for o in got.opset_import] == [("", 13)]


@pytest.mark.parametrize("form", ["s8", "u8"])
@pytest.mark.parametrize("zero_point", [0, 1, 128, 255])
def test_products_equal_numpys_on_worst_and_random_codes(form: str, zero_point: int) -> None:
    if form == "s8" and exact_form() != "s8":
        pytest.skip("uint8 x int8 saturates on this CPU: integer_gemm takes the uint8 form")
    rng = np.random.default_rng(zero_point)
    depth = 300
    weights = rng.integers(-128, 128, (depth, 21))
    weights[:, 0], weights[:, 1] = 127, -128  # every product at the range's ends
    codes = rng.integers(0, 256, (50, depth)).astype(np.uint8)
    codes[0], codes[1] = 255, 0
    expected = (codes.astype(np.int64) - zero_point) @ weights
    got = IntegerGemm(weights, zero_point, form)(codes)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)


def test_this_cpu_has_an_exact_form() -> None:
    """The uint8 form widens before it multiplies: exact on every CPU MLAS runs on."""
    assert exact_form() in ("s8", "u8")


@pytest.mark.parametrize(
    ("weights", "zero_point", "fill"),
    [
        (np.full((4, 2), 128), 0, 0),  # a weight past int8
        (np.full((4, 2), -129), 0, 0),
        (np.ones((4, 2), np.int64), 256, 0),  # codes past uint8
        (np.ones((4, 2), np.int64), 0, 300),
        (np.ones((MAX_DEPTH + 1, 1), np.int64), 0, 0),  # int32 sums could overflow
    ],
)
def test_no_integer_product_where_it_could_not_be_exact(weights: np.ndarray, zero_point: int, fill: int) -> None:
    assert integer_gemm(weights, zero_point, fill) is None
