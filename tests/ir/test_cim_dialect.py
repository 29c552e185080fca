"""The ``cim`` ops one by one: each ``evaluate`` against an independent reference (onnxruntime's QuantizeLinear,
int64 numpy, hand-worked numbers), the verifier's rules, and the exact text round trip."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from cimc.ir import kernels
from cimc.ir.attributes import DenseArrayAttr, FloatAttr, IntAttr, StringAttr, tensor_attr
from cimc.ir.core import VerifyError
from cimc.ir.dialects import cim
from cimc.ir.parser import parse_module
from cimc.ir.printer import print_module
from cimc.ir.types import ElementType, TensorType
from cimc.ir.verifier import verify

I64 = ElementType("i64")


def _value(shape: tuple[int | None, ...], element: str):
    """A function argument of this type, to build single ops on."""
    from cimc.ir.dialects.builtin import FuncOp

    return FuncOp.create("f", [("x", TensorType(shape, ElementType(element)))], []).body.args[0]


def _quantize(bits: int, scale: float, zero_point: int, shape=(None, 6)) -> cim.QuantizeOp:
    attributes = {"scale": FloatAttr(scale), "zero_point": IntAttr(zero_point), "bits": IntAttr(bits)}
    return cim.QuantizeOp.build(_value(shape, "f32"), attributes=attributes)


@pytest.mark.parametrize(("element", "qmin"), [(TensorProto.UINT8, 0), (TensorProto.INT8, -128)])
def test_quantize_equals_onnxruntime_quantize_linear_shifted_to_codes(element: int, qmin: int) -> None:
    """Ties round to even, both ends saturate; a signed quantization is the same codes shifted by -qmin."""
    scale, zero_point = np.float32(0.05), 3
    x = np.concatenate(
        [np.random.default_rng(0).normal(0, 4, 200), np.arange(-20, 20) * scale / 2, [-1e9, 1e9]]
    ).astype(np.float32)[None]
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])
    graph = helper.make_graph(
        [node],
        "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("q", element, x.shape)],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [scale]), helper.make_tensor("z", element, [], [zero_point])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    expected = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0].astype(np.int64) - qmin
    op = _quantize(8, float(scale), zero_point - qmin, x.shape)
    (got,) = op.evaluate([x])
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    onnx.checker.check_model(model)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(input_bits=st.integers(1, 12), dac_bits=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_bit_planes_recombine_to_the_codes(input_bits: int, dac_bits: int, seed: int) -> None:
    dac_bits = min(dac_bits, input_bits)
    codes = np.random.default_rng(seed).integers(0, 1 << input_bits, (3, 7)).astype(cim.code_element(input_bits).dtype)
    op = cim.BitPlanesOp.build(
        _value((3, 7), cim.code_element(input_bits).name),
        attributes={"dac_bits": IntAttr(dac_bits), "input_bits": IntAttr(input_bits)},
    )
    (planes,) = op.evaluate([codes])
    assert planes.shape == (cim.planes_for(input_bits, dac_bits), 3, 7) == op.result.type.shape
    assert planes.max() < 1 << dac_bits
    weights = (1 << (dac_bits * np.arange(len(planes)))).reshape(-1, 1, 1)
    np.testing.assert_array_equal((planes.astype(np.int64) * weights).sum(0), codes)


def test_im2col_patches_times_filters_is_the_convolution() -> None:
    """Integer codes: im2col rows x the flattened filters == the direct convolution (kernels.conv, in int64),
    with padding reading the fill code."""
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (2, 3, 7, 6)).astype(np.uint8)
    w = rng.integers(-8, 8, (4, 3, 3, 2)).astype(np.int64)
    attributes = {
        "kernel_shape": DenseArrayAttr(I64, (3, 2)),
        "strides": DenseArrayAttr(I64, (2, 1)),
        "pads": DenseArrayAttr(I64, (1, 0, 1, 1)),
        "dilations": DenseArrayAttr(I64, (1, 2)),
        "fill": IntAttr(7),
    }
    op = cim.Im2ColOp.build(_value((None, 3, 7, 6), "ui8"), attributes=attributes)
    (patches,) = op.evaluate([codes])
    assert op.result.type == TensorType((None, 4, 5, 18), ElementType("ui8"))
    assert patches.shape == (2, 4, 5, 18)
    shifted = codes.astype(np.int64) - 7  # padding with the fill code == padding the shifted codes with zeros
    window = kernels.Window.resolve((7, 6), (3, 2), (2, 1), (1, 2), (1, 0, 1, 1))
    expected = kernels.conv(shifted, w, None, window) + 7 * w.sum(axis=(1, 2, 3)).reshape(1, -1, 1, 1)
    got = patches.astype(np.int64) @ w.reshape(4, -1).T
    np.testing.assert_array_equal(np.moveaxis(got, -1, 1), expected)


@pytest.mark.parametrize(("rows", "dac_bits", "cell_bits"), [(64, 1, 2), (512, 8, 8)])
def test_mvm_is_exact_in_float32_and_beyond_2_to_the_24(rows: int, dac_bits: int, cell_bits: int) -> None:
    """64 rows of 1-bit planes x 2-bit cells sum below 2^24 (float32 GEMM); 512 rows of 8-bit planes and 8-bit
    cells reach 512 x 255 x 255 > 2^24 and must still be exact (float64)."""
    rng = np.random.default_rng(2)
    planes = rng.integers(0, 1 << dac_bits, (3, 5, rows)).astype(np.uint8)
    planes[0, 0] = (1 << dac_bits) - 1  # the largest sum occurs
    levels = rng.integers(0, 1 << cell_bits, (2, 3, rows, 9)).astype(np.uint8)
    levels[..., 0] = (1 << cell_bits) - 1
    program = cim.ProgramOp.build(
        attributes={
            "levels": tensor_attr(levels, "l"),
            "weight_bits": IntAttr(3 * cell_bits),
            "cell_bits": IntAttr(cell_bits),
            "sign_encoding": StringAttr("differential"),
            "array_rows": IntAttr(rows),
            "array_cols": IntAttr(64),
        }
    )
    op = cim.MvmOp.build(_value((3, 5, rows), "ui8"), program.result)
    (got,) = op.evaluate([planes, levels])
    expected = np.einsum("pbr,gsrc->pbgsc", planes.astype(np.int64), levels.astype(np.int64))
    assert got.dtype == np.int32 and got.shape == (3, 5, 2, 3, 9)
    np.testing.assert_array_equal(got, expected)
    assert expected.max() == rows * ((1 << dac_bits) - 1) * ((1 << cell_bits) - 1)  # 33,292,800 for 512 rows


def test_shift_add_hand_worked() -> None:
    """Two 1-bit planes, two 2-bit slices, differential: 1*(3 + 4*1) - 1*(1) + 2*(2) = 10 for column 0; offset
    encoding takes weight_offset x the block's code sum back out."""
    readings = np.zeros((2, 1, 2, 2, 1), np.int32)  # [plane, vector, sign, slice, col]
    readings[0, 0, 0, 0, 0], readings[0, 0, 0, 1, 0], readings[0, 0, 1, 0, 0], readings[1, 0, 0, 0, 0] = 3, 1, 1, 2
    attributes = {"dac_bits": IntAttr(1), "cell_bits": IntAttr(2)}
    op = cim.ShiftAddOp.build(_value((2, 1, 2, 2, 1), "i32"), attributes=attributes)
    assert op.evaluate([readings])[0].tolist() == [[1 * (3 + 4 * 1) - 1 + 2 * 2]]
    codes = np.array([[5, 6, 7, 100]], np.uint8)
    offset = cim.ShiftAddOp.build(
        _value((2, 1, 1, 2, 1), "i32"),
        _value((1, 4), "ui8"),
        attributes={**attributes, "weight_offset": IntAttr(8), "row_offset": IntAttr(1), "rows": IntAttr(2)},
    )
    assert offset.evaluate([readings[:, :, :1], codes])[0].tolist() == [[3 + 4 * 1 + 2 * 2 - 8 * (6 + 7)]]


def test_accumulate_adds_partial_sums_at_their_columns() -> None:
    a, b = np.array([[1, 2, 3]], np.int32), np.array([[10, 20]], np.int32)
    op = cim.AccumulateOp.build(
        [_value((None, 3), "i32"), _value((None, 2), "i32")],
        attributes={"col_offsets": DenseArrayAttr(I64, (0, 3)), "columns": IntAttr(5)},
    )
    assert op.evaluate([a, b])[0].tolist() == [[1, 2, 3, 10, 20]]
    overlapping = cim.AccumulateOp.build(
        [_value((None, 3), "i32"), _value((None, 2), "i32")],
        attributes={"col_offsets": DenseArrayAttr(I64, (0, 1)), "columns": IntAttr(3)},
    )
    assert overlapping.evaluate([a, b])[0].tolist() == [[1, 12, 23]]


def test_dequantize_hand_worked() -> None:
    """(acc - zp * sum_k w) * scale + bias: (100 - 3 * 10) * 0.5 + 1 = 36, (-7 - 3 * -2) * 0.25 - 1 = -1.25."""
    op = cim.DequantizeOp.build(
        _value((None, 2), "i32"),
        attributes={
            "scale": tensor_attr(np.array([0.5, 0.25])),
            "zero_point": IntAttr(3),
            "weight_sums": tensor_attr(np.array([10, -2], np.int64)),
            "bias": tensor_attr(np.array([1.0, -1.0], np.float32)),
        },
    )
    (y,) = op.evaluate([np.array([[100, -7]], np.int32)])
    assert y.dtype == np.float32 and y.tolist() == [[36.0, -1.25]]


def _program(levels: np.ndarray, encoding: str = "differential", replication: int = 1) -> cim.ProgramOp:
    """4-bit weights on 2-bit cells."""
    attributes = {
        "levels": tensor_attr(levels, "l"),
        "weight_bits": IntAttr(4),
        "cell_bits": IntAttr(2),
        "sign_encoding": StringAttr(encoding),
        "array_rows": IntAttr(64),
        "array_cols": IntAttr(64),
        "replication": IntAttr(replication),
    }
    return cim.ProgramOp.build(attributes=attributes)


@pytest.mark.parametrize(
    ("levels", "encoding", "rule"),
    [
        (np.zeros((2, 2, 65, 3), np.uint8), "differential", "do not fit arrays of 64 rows"),
        (np.full((2, 2, 4, 3), 4, np.uint8), "differential", "does not fit a 2-bit cell"),
        (np.zeros((1, 2, 4, 3), np.uint8), "differential", "needs 2 signs"),
        (np.zeros((2, 2, 4, 3), np.uint8), "ternary", "must be one of differential, offset"),
        (np.zeros((2, 3, 4, 3), np.uint8), "differential", "slices"),
    ],
)
def test_program_verifier_rules(levels: np.ndarray, encoding: str, rule: str) -> None:
    with pytest.raises(VerifyError, match=rule):
        _program(levels, encoding).verify_()


def test_program_counts_its_arrays() -> None:
    """2 signs x 2 slices x ceil(130 / 64) column blocks x 3 replicas; with parallel slices (cells of the same array
    element) the slices take no arrays of their own."""
    op = _program(np.zeros((2, 2, 10, 130), np.uint8), replication=3)
    assert op.arrays == 2 * 2 * 3 * 3 and op.attr("parallel_slices") == 0
    op.attributes["parallel_slices"] = IntAttr(1)
    assert op.arrays == 2 * 3 * 3


def test_parallel_slices_verify_and_round_trip_through_text() -> None:
    from cimc.ir.dialects.builtin import FuncOp, ReturnOp, new_module

    func = FuncOp.create("main", [], [])
    op = func.body.append(_program(np.ones((2, 2, 3, 4), np.uint8)))
    op.attributes["parallel_slices"] = IntAttr(1)
    func.body.append(ReturnOp.build(op.result, result_types=[]))
    func.update_function_type()
    func.set_output_names(["levels"])
    module = new_module([func])
    text = print_module(module, resources=True)
    assert "parallel_slices = 1 : i64" in text
    again = parse_module(text)
    verify(again)
    assert print_module(again, resources=True) == text
    (parsed,) = [o for o in again.walk() if isinstance(o, cim.ProgramOp)]
    assert parsed.arrays == 2
    op.attributes["parallel_slices"] = IntAttr(2)
    with pytest.raises(VerifyError, match="'parallel_slices' must be 0 or 1, got 2"):
        op.verify_()


@pytest.mark.parametrize(
    ("bits", "zero_point", "rule"), [(0, 0, "'bits' must be 1..16"), (4, 16, "outside the 4-bit code range")]
)
def test_quantize_verifier_rules(bits: int, zero_point: int, rule: str) -> None:
    op = cim.QuantizeOp(
        [_value((None, 6), "f32")],
        [TensorType((None, 6), ElementType("ui8"))],
        {"scale": FloatAttr(0.1), "zero_point": IntAttr(zero_point), "bits": IntAttr(bits)},
    )
    with pytest.raises(VerifyError, match=rule):
        op.verify_()


def test_every_op_round_trips_through_text() -> None:
    from pathlib import Path

    from cimc.compiler import PipelineOptions, compile_onnx

    model = Path(__file__).resolve().parents[2] / "models" / "digits_cnn.onnx"
    module, _ = compile_onnx(model, PipelineOptions(emit="cim"))
    text = print_module(module, resources=True)
    again = parse_module(text)
    verify(again)
    assert print_module(again, resources=True) == text
    names = {op.name for op in again.walk()}
    assert {"cim.quantize", "cim.im2col", "cim.bit_planes", "cim.program", "cim.mvm", "cim.adc", "cim.shift_add",
            "cim.accumulate", "cim.dequantize", "cim.digital", "cim.yield"} <= names  # fmt: skip
