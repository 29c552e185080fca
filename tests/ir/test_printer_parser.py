"""Printing and parsing: exact round trips, resource blobs, MLIR literal forms, and clear parse errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimc.ir import (
    ArrayAttr,
    BoolAttr,
    DenseArrayAttr,
    DictAttr,
    ElementType,
    FloatAttr,
    FuncOp,
    IntAttr,
    Location,
    ParseError,
    ReturnOp,
    StringAttr,
    TensorType,
    new_module,
    parse_module,
    print_module,
    run_module,
    verify,
)
from cimc.ir.attributes import DenseElementsAttr, DenseResourceAttr, format_float
from cimc.ir.dialects.graph import ConstantOp, MatMulOp, ReluOp
from cimc.ir.types import F32


def _mlp(weight: np.ndarray) -> object:
    func = FuncOp.create("main", [("input", TensorType((None, weight.shape[0]), F32))], [])
    w = func.body.append(ConstantOp.create(weight, "fc1/weight"))
    mm = func.body.append(MatMulOp.build(func.body.args[0], w.result, location=Location("/fc1/MatMul")))
    relu = func.body.append(ReluOp.build(mm.result))
    func.body.append(ReturnOp([relu.result]))
    func.set_output_names(["logits"])
    func.update_function_type()
    return new_module([func])


def test_printed_text_is_mlir_generic_form() -> None:
    module = _mlp(np.zeros((64, 10), np.float32))
    text = str(module)
    assert text.startswith('"builtin.module"() ({\n  "func.func"() <{arg_attrs = [{graph.name = "input"}]')
    assert '%1 = "graph.matmul"(%arg0, %0) : (tensor<?x64xf32>, tensor<64x10xf32>) -> tensor<?x10xf32>' in text
    assert 'loc("/fc1/MatMul")' in text
    assert "dense_resource<fc1_weight> : tensor<64x10xf32>" in text
    assert "{-#" not in text  # elided by default


def test_round_trip_with_resources_is_exact_and_runs() -> None:
    weight = np.random.default_rng(1).standard_normal((64, 10)).astype(np.float32)
    module = _mlp(weight)
    text = print_module(module, resources=True)
    assert "dialect_resources" in text
    again = parse_module(text)
    verify(again)
    assert print_module(again, resources=True) == text
    x = np.random.default_rng(2).standard_normal((3, 64)).astype(np.float32)
    np.testing.assert_array_equal(run_module(again, [x])["logits"], run_module(module, [x])["logits"])


def test_elided_text_round_trips_and_refuses_to_run() -> None:
    module = _mlp(np.ones((64, 10), np.float32))
    text = print_module(module)
    again = parse_module(text)
    assert print_module(again) == text
    from cimc.ir import InterpreterError

    with pytest.raises(InterpreterError, match="was elided"):
        run_module(again, [np.ones((1, 64), np.float32)])


def test_duplicate_blob_names_get_unique_keys() -> None:
    func = FuncOp.create("main", [], [])
    a = func.body.append(ConstantOp.create(np.zeros(100, np.float32), "w"))
    b = func.body.append(ConstantOp.create(np.ones(100, np.float32), "w"))
    func.body.append(ReturnOp([a.result, b.result]))
    func.update_function_type()
    text = print_module(new_module([func]), resources=True)
    assert "dense_resource<w>" in text and "dense_resource<w_1>" in text
    outputs = run_module(parse_module(text), [])
    assert outputs["result0"].sum() == 0 and outputs["result1"].sum() == 100


@pytest.mark.parametrize(
    ("value", "element", "text"),
    [
        (1e-5, "f32", "1.0e-05"),
        (0.1, "f32", "0.1"),
        (3.0, "f32", "3.0"),
        (0.1, "f64", "0.1"),
        (float("inf"), "f32", "0x7F800000"),
        (-float("inf"), "f32", "0xFF800000"),
        (65504.0, "f16", "6.55e+04"),
    ],
)
def test_float_format(value: float, element: str, text: str) -> None:
    assert format_float(value, ElementType(element)) == text


def _attr_module(attrs: dict) -> object:
    func = FuncOp.create("main", [], [])
    const = ConstantOp.create(np.arange(3, dtype=np.int64))
    const.attributes.update(attrs)
    func.body.append(const)
    func.body.append(ReturnOp([const.result]))
    func.update_function_type()
    return new_module([func])


def test_every_attribute_kind_round_trips() -> None:
    attrs = {
        "a.int": IntAttr(-7),
        "a.i32": IntAttr(3, ElementType("i32")),
        "a.float": FloatAttr(1e-5),
        "a.f64": FloatAttr(0.1, ElementType("f64")),
        "a.nan": FloatAttr(float("nan")),
        "a.str": StringAttr('quote " back \\ tab \t é'),
        "a.bool": BoolAttr(True),
        "a.ints": DenseArrayAttr(ElementType("i64"), (1, -2, 3)),
        "a.empty": DenseArrayAttr(ElementType("i64"), ()),
        "a.floats": DenseArrayAttr(ElementType("f32"), (0.5, -1.25)),
        "a.array": ArrayAttr((StringAttr("x"), IntAttr(1))),
        "a.dict": DictAttr((("k", BoolAttr(False)),)),
        "a.dense": DenseElementsAttr.from_array(np.array([[1.5, -2.0]], np.float32)),
        "a.splat": DenseElementsAttr.from_array(np.full((2, 2), 7, np.int8)),
        "a.bools": DenseElementsAttr.from_array(np.array([True, False])),
        "a.scalar": DenseElementsAttr.from_array(np.array(2.5, np.float16)),
        "a.inf": DenseElementsAttr.from_array(np.array([np.inf, 1.0], np.float32)),
        "a.uint": DenseElementsAttr.from_array(np.array([255, 0], np.uint8)),
        "a.zero": DenseElementsAttr.from_array(np.zeros((0, 3), np.float32)),
    }
    module = _attr_module(attrs)
    text = print_module(module, resources=True)
    again = parse_module(text)
    assert print_module(again, resources=True) == text
    parsed = again.functions[0].body.ops[0].attributes
    for key, attr in attrs.items():
        if isinstance(attr, DenseElementsAttr):
            np.testing.assert_array_equal(parsed[key].array, attr.array)
            assert parsed[key].type == attr.type
        else:
            assert parsed[key] == attr, key


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["f32", "f16", "f64", "i8", "i32", "i64", "ui8", "i1"]),
    st.lists(st.integers(1, 4), min_size=0, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_tensor_constants_round_trip_bit_exactly(element: str, shape: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    dtype = ElementType(element).dtype
    if dtype.kind == "f":
        with np.errstate(over="ignore"):  # f16 overflows to inf: the hex form must round-trip too
            array = (rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 8)).astype(dtype)
    elif dtype.kind == "b":
        array = rng.integers(0, 2, shape).astype(bool)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    for size in (1, 40):  # inline dense<...> and a resource blob
        tiled = np.resize(array, [size, *shape]) if shape else array
        module = _attr_module({})
        module.functions[0].body.ops[0].attributes["a.t"] = ConstantOp.create(tiled).attributes["value"]
        text = print_module(module, resources=True)
        again = parse_module(text).functions[0].body.ops[0].attributes["a.t"]
        assert isinstance(again, (DenseElementsAttr, DenseResourceAttr))
        assert again.array.dtype == tiled.dtype and again.array.shape == tiled.shape
        assert again.array.tobytes() == np.ascontiguousarray(tiled).tobytes()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"builtin.module"() ({\n  "nope.op"() : () -> ()\n}) : () -> ()', "<string>:2:3: error: unknown op 'nope.op'"),
        ('"builtin.module"() ({\n  "func.return"(%x) : (tensor<2xf32>) -> ()\n}) : () -> ()', "undefined value %x"),
        ('"builtin.module"() ({', "expected"),
        ('"builtin.module"() ({}) : () -> () trailing', "unexpected text after the module"),
        ('"builtin.module"() <{a = tensor<2xq8>}> : () -> ()', "expected a type, found 'q8"),
        ('"builtin.module"() <{a = "unterminated}> : () -> ()', "unterminated string"),
    ],
)
def test_parse_errors_name_line_and_column(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace(")", r"\)").replace("%", "%")):
        parse_module(text)


def test_parser_accepts_named_values_and_comments() -> None:
    text = """// a hand-written module
    "builtin.module"() ({
      "func.func"() <{function_type = (tensor<2xf32>) -> tensor<2xf32>, sym_name = "main"}> ({
      ^entry(%input: tensor<2xf32>):
        %r = "graph.relu"(%input) : (tensor<2xf32>) -> tensor<2xf32>  // rectify
        "func.return"(%r) : (tensor<2xf32>) -> ()
      }) : () -> ()
    }) : () -> ()
    """
    module = parse_module(text)
    verify(module)
    assert run_module(module, [np.array([-1.0, 1.0], np.float32)])["result0"].tolist() == [0.0, 1.0]
