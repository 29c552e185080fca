"""Each graph op's reference implementation against onnxruntime, one single-node model per case.

Our side is built directly (FuncOp, ``Op.build``, ReturnOp; no importer), run by the interpreter, and checked for
shape, element type and values: integer and shape results exactly, floats to 1e-5 relative. The result types that
``Op.build`` inferred must be exactly the types of the arrays it computes (only where a result's shape depends on
the data, as NonZero's does, may a dim be dynamic).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.ir import (
    ElementType,
    FuncOp,
    InterpreterError,
    Location,
    ModuleOp,
    Operation,
    ReturnOp,
    TensorType,
    Value,
    VerifyError,
    new_module,
    run_module,
    verify,
)
from cimc.ir.core import OpResult
from cimc.ir.dialects.graph import (
    BY_ONNX_TYPE,
    OPSET,
    ConstantOp,
    infer_types,
)
from cimc.ir.dialects.graph_onnx import attribute_from_onnx

_RNG = np.random.default_rng(20240521)


def rand(*shape: int, dtype: type = np.float32, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    """Uniform random values from the module's seeded generator."""
    return _RNG.uniform(low, high, shape).astype(dtype)


def ints(*shape: int, low: int = -5, high: int = 6, dtype: type = np.int64) -> np.ndarray:
    return _RNG.integers(low, high, shape).astype(dtype)


@dataclass(frozen=True)
class Const:
    """An operand that is a constant: an initializer for onnxruntime, a ``graph.constant`` for us."""

    array: np.ndarray


def i64(*values: int) -> Const:
    return Const(np.array(values, dtype=np.int64))


def f32(*values: float) -> Const:
    return Const(np.array(values, dtype=np.float32))


@dataclass
class Case:
    """One op on given operands: an array (a runtime input), a ``Const``, None (absent) or a list (variadic)."""

    op_type: str
    operands: list
    attrs: dict = field(default_factory=dict)
    outputs: int = 1
    id: str = ""
    data_dependent: bool = False  # a result shape depends on the values: its inferred type may have dynamic dims

    def __str__(self) -> str:
        return self.op_type + (f"-{self.id}" if self.id else "")


def _onnx_model(case: Case) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The single-node ONNX model of the case (constants as initializers) and its runtime feeds."""
    inputs, initializers, feeds, names = [], [], {}, []
    for i, entry in enumerate(case.operands):
        for j, item in enumerate(entry if isinstance(entry, list) else [entry]):
            name = f"x{i}_{j}"
            if item is None:
                names.append("")
            elif isinstance(item, Const):
                initializers.append(numpy_helper.from_array(item.array, name))
                names.append(name)
            else:
                inputs.append(
                    helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(item.dtype), item.shape)
                )
                feeds[name] = item
                names.append(name)
    while names and names[-1] == "":
        names.pop()
    outputs = [f"y{k}" for k in range(case.outputs)]
    node = helper.make_node(case.op_type, names, outputs, **case.attrs)
    graph = helper.make_graph(
        [node], "case", inputs, [onnx.ValueInfoProto(name=n) for n in outputs], initializer=initializers
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10)
    return model, feeds


def _ours(case: Case, node: onnx.NodeProto) -> tuple[ModuleOp, dict[str, np.ndarray], Operation]:
    """Our module for the case (verified), its inputs by name, and the op in it."""
    runtime = [
        (f"x{i}_{j}", item)
        for i, entry in enumerate(case.operands)
        for j, item in enumerate(entry if isinstance(entry, list) else [entry])
        if item is not None and not isinstance(item, Const)
    ]
    func = FuncOp.create("main", [(name, TensorType.of(a)) for name, a in runtime], [])
    args = iter(func.body.args)

    def value(item: np.ndarray | Const) -> Value:
        if isinstance(item, Const):
            return func.body.append(ConstantOp.create(item.array)).result
        return next(args)

    groups = [None if e is None else [value(a) for a in e] if isinstance(e, list) else value(e) for e in case.operands]
    cls = BY_ONNX_TYPE[case.op_type]
    attributes = {a.name: attribute_from_onnx(a) for a in node.attribute}
    result_types = None
    if case.outputs > 1 and case.op_type != "Split":  # optional results: inference gives them when asked
        flat = [v for g in groups if g is not None for v in (g if isinstance(g, list) else [g])]
        constants = {
            k: v.op.value for k, v in enumerate(flat) if isinstance(v, OpResult) and isinstance(v.op, ConstantOp)
        }
        result_types = infer_types(cls, [v.type for v in flat], attributes, constants, num_results=case.outputs)
    op = cls.build(*groups, attributes=attributes, result_types=result_types, location=Location("node"))
    func.body.append(op)
    func.body.append(ReturnOp(op.results))
    func.set_output_names([f"y{k}" for k in range(len(op.results))])
    func.update_function_type()
    module = new_module([func])
    verify(module)
    return module, dict(runtime), op


def check(case: Case) -> None:
    """Run the case on onnxruntime and on our interpreter; compare types, shapes and values."""
    model, feeds = _onnx_model(case)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    module, inputs, op = _ours(case, model.graph.node[0])
    got = run_module(module, inputs)
    assert len(op.results) == len(expected)
    for k, (want, result) in enumerate(zip(expected, op.results)):
        have = got[f"y{k}"]
        assert (have.dtype, have.shape) == (want.dtype, want.shape), f"output {k}"
        if case.data_dependent:
            assert result.type.accepts(want.shape, want.dtype), f"inferred type of output {k}"
        else:
            assert result.type == TensorType.of(want), f"inferred type of output {k}"
        if want.dtype.kind == "f":
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(have, want, err_msg=f"output {k}")


# --- cases --------------------------------------------------------------------------------------------------------

X = (2, 3, 4, 5)

ELEMENTWISE = [
    *(
        Case(t, [rand(*X)])
        for t in "Relu Sigmoid Tanh Erf Exp Neg Abs Floor Ceil Sin Cos Softplus Mish HardSwish Identity".split()
    ),
    Case("Sigmoid", [rand(64, low=-90, high=90)], id="saturating"),
    Case("Sqrt", [rand(*X, low=0.01)]),
    Case("Log", [rand(*X, low=0.01)]),
    Case("Reciprocal", [rand(*X, low=0.5)]),
    Case("HardSigmoid", [rand(*X, low=-6, high=6)], {"alpha": 0.3, "beta": 0.4}),
    Case("LeakyRelu", [rand(*X)], {"alpha": 0.1}),
    Case("Gelu", [rand(*X, low=-5, high=5)]),
    Case("Gelu", [rand(*X, low=-5, high=5)], {"approximate": "tanh"}, id="tanh"),
    Case("Abs", [ints(*X, dtype=np.int32)], id="int32"),
    Case("Not", [rand(*X) > 0]),
    Case("Add", [rand(*X), rand(4, 1)]),
    Case("Add", [ints(*X), ints(5)], id="int64"),
    Case("Sub", [rand(*X), Const(rand(1, 3, 1, 1))]),
    Case("Mul", [rand(*X), rand(5)]),
    Case("Div", [rand(*X), rand(*X, low=0.5)]),
    Case("Div", [ints(*X, low=-20, high=21, dtype=np.int32), ints(5, low=1, high=7, dtype=np.int32) * -1], id="int32"),
    Case("Div", [ints(*X, low=-20, high=21), ints(*X, low=1, high=7) * np.where(rand(*X) > 0, 1, -1)], id="int64"),
    Case("Pow", [rand(*X, low=0.1), rand(*X)]),
    Case("Pow", [rand(*X), Const(np.array(3, np.int64))], id="f32-int-exponent"),
    Case("Pow", [ints(*X), ints(*X, low=0, high=4)], id="int64"),
    Case("Equal", [ints(*X, low=0, high=3), ints(5, low=0, high=3)]),
    Case("Less", [rand(*X), rand(5)]),
    Case("Greater", [rand(*X), rand(1)]),
    Case("Where", [rand(*X) > 0, rand(*X), rand(5)]),
    Case("PRelu", [rand(*X), Const(rand(3, 1, 1))]),
    Case("Max", [[rand(*X), rand(5), rand(4, 1)]]),
    Case("Min", [[rand(*X), rand(5)]]),
    Case("Sum", [[rand(*X), rand(5), rand(1, 4, 5)]]),
    Case("Mean", [[rand(*X), rand(5), rand(3, 1, 1)]]),
    Case("Clip", [rand(*X), f32(-0.5), f32(0.7)]),
    Case("Clip", [rand(*X), None, f32(0.7)], id="max-only"),
    Case("Clip", [rand(*X)], id="none"),
    Case("Clip", [ints(*X, dtype=np.int32), Const(np.array(-2, np.int32)), Const(np.array(3, np.int32))], id="int32"),
    Case("Softmax", [rand(*X, low=-10, high=10)]),
    Case("Softmax", [rand(*X)], {"axis": 1}, id="axis1"),
]

LINEAR = [
    Case("MatMul", [rand(2, 3, 4, 5), rand(5, 6)]),
    Case("MatMul", [rand(7), rand(2, 7, 3)], id="vector"),
    Case("Gemm", [rand(4, 6), Const(rand(5, 6)), Const(rand(5))], {"transB": 1}),
    Case("Gemm", [rand(6, 4), rand(6, 5), rand(4, 1)], {"transA": 1, "alpha": 0.5, "beta": -2.0}, id="alpha-beta"),
    Case("Gemm", [rand(4, 6), rand(6, 5)], id="no-c"),
    Case(
        "BatchNormalization",
        [rand(*X), Const(rand(3)), Const(rand(3)), Const(rand(3)), Const(rand(3, low=0.1))],
        {"epsilon": 1e-3},
    ),
    Case("BatchNormalization", [rand(2, 3, 7), *(Const(rand(3, low=0.1)) for _ in range(4))], id="1d"),
    Case("LayerNormalization", [rand(2, 5, 8), Const(rand(8)), Const(rand(8))]),
    Case("LayerNormalization", [rand(*X), Const(rand(4, 5))], {"axis": 2, "epsilon": 1e-3}, outputs=3, id="stats"),
]


def _conv(x: tuple, w: tuple, bias: bool = False, id: str = "", **attrs: object) -> Case:
    operands = [rand(*x), Const(rand(*w))] + ([Const(rand(w[0]))] if bias else [])
    return Case("Conv", operands, attrs, id=id)


def _deconv(x: tuple, w: tuple, bias: bool = False, id: str = "", **attrs: object) -> Case:
    groups = attrs.get("group", 1)
    operands = [rand(*x), Const(rand(*w))] + ([Const(rand(w[1] * groups))] if bias else [])
    return Case("ConvTranspose", operands, attrs, id=id)


CONV = [
    _conv((1, 3, 8, 8), (4, 3, 3, 3), bias=True, pads=[1, 1, 1, 1], id="pad1"),
    _conv((2, 3, 9, 7), (5, 3, 3, 2), strides=[2, 3], pads=[0, 1, 2, 1], id="strides-asymmetric-pads"),
    _conv((1, 2, 10, 10), (3, 2, 3, 3), dilations=[2, 3], pads=[2, 1, 0, 3], id="dilations"),
    _conv((1, 4, 6, 6), (6, 2, 3, 3), bias=True, group=2, pads=[1, 1, 1, 1], id="groups"),
    _conv((2, 4, 7, 7), (8, 1, 3, 3), bias=True, group=4, strides=[2, 2], pads=[1, 1, 1, 1], id="depthwise"),
    _conv((1, 3, 7, 8), (4, 3, 4, 3), auto_pad="SAME_UPPER", strides=[2, 2], id="same-upper"),
    _conv((1, 3, 7, 8), (4, 3, 4, 3), auto_pad="SAME_LOWER", strides=[2, 3], id="same-lower"),
    _conv((1, 3, 7, 8), (4, 3, 3, 3), auto_pad="VALID", strides=[2, 2], id="valid"),
    _conv((2, 3, 11), (4, 3, 3), bias=True, strides=[2], pads=[1, 2], id="1d"),
    _conv((1, 2, 5, 6, 4), (3, 2, 3, 3, 2), pads=[1, 0, 1, 1, 1, 0], id="3d"),
    _conv((1, 8, 5, 5), (4, 8, 1, 1), kernel_shape=[1, 1], id="1x1"),
    _deconv((1, 4, 4, 4), (4, 3, 3, 3), bias=True, strides=[2, 2], id="stride2"),
    _deconv((2, 3, 5, 4), (3, 2, 3, 2), strides=[2, 3], pads=[1, 0, 0, 1], output_padding=[1, 2], id="pads"),
    _deconv((1, 3, 4, 5), (3, 2, 3, 3), strides=[2, 2], output_shape=[10, 12], id="output-shape"),
    _deconv((1, 4, 4, 4), (4, 2, 3, 3), bias=True, group=2, dilations=[2, 1], id="group-dilation"),
    _deconv((1, 3, 4, 5), (3, 2, 3, 3), strides=[2, 2], auto_pad="SAME_UPPER", id="same-upper"),
    _deconv((1, 3, 4, 5), (3, 2, 4, 3), strides=[2, 2], auto_pad="SAME_LOWER", id="same-lower"),
    _deconv((1, 2, 6), (2, 3, 4), strides=[3], pads=[1, 2], id="1d"),
]


def _pool(op: str, x: tuple, id: str, outputs: int = 1, dtype: type = np.float32, **attrs: object) -> Case:
    return Case(op, [rand(*x, low=-100, high=100).astype(dtype)], attrs, outputs=outputs, id=id)


POOL = [
    _pool("MaxPool", (1, 3, 8, 8), "2x2", kernel_shape=[2, 2], strides=[2, 2]),
    _pool("MaxPool", (2, 3, 9, 7), "pads", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 0]),
    _pool("MaxPool", (1, 2, 8, 9), "ceil", kernel_shape=[3, 2], strides=[2, 2], ceil_mode=1),
    _pool("MaxPool", (1, 2, 9, 9), "ceil-pads", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    _pool("MaxPool", (1, 2, 10, 10), "dilations", kernel_shape=[3, 3], dilations=[2, 3], pads=[1, 1, 2, 2]),
    _pool("MaxPool", (1, 2, 7, 8), "same-upper", kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_UPPER"),
    _pool("MaxPool", (1, 2, 7, 8), "same-lower", kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER"),
    _pool("MaxPool", (2, 3, 7, 6), "indices", 2, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    _pool("MaxPool", (2, 3, 7, 6), "indices-col-major", 2, kernel_shape=[2, 3], strides=[2, 1], storage_order=1),
    _pool("MaxPool", (1, 3, 8, 8), "int8", dtype=np.int8, kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 0, 0]),
    _pool("MaxPool", (2, 3, 11), "1d", kernel_shape=[3], strides=[2]),
    _pool("AveragePool", (1, 3, 8, 8), "2x2", kernel_shape=[2, 2], strides=[2, 2]),
    _pool("AveragePool", (2, 3, 9, 7), "pads-excluded", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 0]),
    _pool(
        "AveragePool",
        (2, 3, 9, 7),
        "pads-included",
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 2, 1, 0],
        count_include_pad=1,
    ),
    _pool("AveragePool", (1, 2, 8, 9), "ceil", kernel_shape=[3, 2], strides=[2, 2], ceil_mode=1),
    _pool(
        "AveragePool",
        (1, 2, 9, 8),
        "ceil-pads-included",
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        ceil_mode=1,
        count_include_pad=1,
    ),
    _pool("AveragePool", (1, 2, 10, 10), "dilations", kernel_shape=[2, 3], dilations=[2, 2], pads=[1, 1, 1, 1]),
    _pool("AveragePool", (1, 2, 7, 8), "same-lower", kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"),
    _pool(
        "AveragePool",
        (1, 2, 7, 8),
        "same-upper-included",
        kernel_shape=[2, 3],
        strides=[2, 2],
        auto_pad="SAME_UPPER",
        count_include_pad=1,
    ),
    _pool("AveragePool", (2, 3, 5, 6, 4), "3d", kernel_shape=[2, 3, 2], strides=[1, 2, 2], pads=[0, 1, 1, 1, 0, 0]),
    Case("GlobalAveragePool", [rand(*X)]),
    Case("GlobalMaxPool", [rand(*X)]),
]

SHAPE = [
    Case("Flatten", [rand(*X)]),
    Case("Flatten", [rand(*X)], {"axis": 0}, id="axis0"),
    Case("Flatten", [rand(*X)], {"axis": -1}, id="axis-1"),
    Case("Reshape", [rand(*X), i64(0, -1, 5)]),
    Case("Reshape", [rand(2, 0, 3), i64(0, 3)], {"allowzero": 1}, id="allowzero"),
    Case("Transpose", [rand(*X)]),
    Case("Transpose", [rand(*X)], {"perm": [0, 2, 3, 1]}, id="perm"),
    Case("Concat", [[rand(2, 1, 4), rand(2, 3, 4), rand(2, 2, 4)]], {"axis": 1}),
    Case("Concat", [[ints(2, 3), ints(1, 3)]], {"axis": -2}, id="int64"),
    Case("Split", [rand(2, 7, 3)], {"axis": 1, "num_outputs": 3}, outputs=3),
    Case("Split", [rand(2, 7, 3), i64(2, 4, 1)], {"axis": -2}, outputs=3, id="sizes"),
    Case("Slice", [rand(*X), i64(1, 0), i64(3, -1), i64(1, 3)]),
    Case("Slice", [rand(*X), i64(-1, 10), i64(-100, 0), i64(3, 2), i64(-2, -3)], id="negative-steps"),
    Case("Slice", [rand(*X), i64(0), i64(2**62), None, i64(2)], id="clamped-steps"),
    Case("Gather", [rand(6, 4), ints(2, 3, low=-6, high=6)]),
    Case("Gather", [rand(3, 6, 2), ints(4, low=-6, high=6)], {"axis": 1}, id="axis1"),
    Case("Gather", [rand(3, 6), Const(np.array(-1, np.int64))], {"axis": 1}, id="scalar"),
    Case("Squeeze", [rand(1, 3, 1, 5), i64(0, -2)]),
    Case("Squeeze", [rand(1, 3, 1, 5)], id="all"),
    Case("Unsqueeze", [rand(3, 5), i64(-1, 0)]),
    Case("Pad", [rand(*X), i64(0, 1, 2, 0, 0, 0, 1, 3)], {"mode": "constant"}),
    Case("Pad", [rand(*X), i64(0, 0, 1, 2, 0, 0, 2, 1), f32(1.5)], id="value"),
    Case("Pad", [rand(*X), i64(1, 3, 2, 2), None, i64(2, -1)], {"mode": "reflect"}, id="reflect-axes"),
    Case("Pad", [rand(*X), i64(0, 0, 3, 1, 0, 0, 1, 4)], {"mode": "edge"}, id="edge"),
    Case("Pad", [rand(*X), i64(0, 0, 2, 1, 0, 0, 3, 2)], {"mode": "wrap"}, id="wrap"),
    Case("Pad", [rand(*X), i64(0, -1, 2, -1, 0, 0, -2, 1)], id="negative"),
    Case("Pad", [ints(3, 4, dtype=np.int32), i64(1, 1, 1, 1), Const(np.array(7, np.int32))], id="int32"),
    Case("Expand", [rand(3, 1), i64(2, 1, 4)]),
    Case("Tile", [rand(2, 3), i64(2, 3)]),
    Case("Shape", [rand(*X)]),
    Case("Shape", [rand(*X)], {"start": 1, "end": -1}, id="start-end"),
    Case("Shape", [rand(*X)], {"start": -10, "end": 10}, id="clamped"),
    Case("Cast", [rand(*X, low=-100, high=100)], {"to": TensorProto.INT32}, id="to-int32"),
    Case("Cast", [ints(*X)], {"to": TensorProto.FLOAT}, id="to-f32"),
    Case("Cast", [rand(*X).round()], {"to": TensorProto.BOOL}, id="to-bool"),
    Case("Cast", [rand(*X)], {"to": TensorProto.DOUBLE}, id="to-f64"),
    Case("ConstantOfShape", [i64(2, 3)]),
    Case("ConstantOfShape", [i64(4)], {"value": numpy_helper.from_array(np.array([7], np.int32))}, id="int32"),
    Case("Identity", [ints(3, 4)], id="int64"),
    Case("Dropout", [rand(*X)], outputs=2),
    Case("Range", [Const(np.array(3, np.int64)), Const(np.array(-8, np.int64)), Const(np.array(-2, np.int64))]),
    Case(
        "Range",
        [Const(np.array(0.1, np.float32)), Const(np.array(5.0, np.float32)), Const(np.array(0.3, np.float32))],
        id="f32",
    ),
    Case("ArgMax", [rand(*X)], {"axis": 2}),
    Case("ArgMax", [ints(*X, low=0, high=3)], {"axis": -1, "keepdims": 0, "select_last_index": 1}, id="last"),
    Case("ArgMax", [ints(*X, low=0, high=3)], {"axis": 1, "keepdims": 0}, id="first"),
]

REDUCE = [
    *(Case(op, [rand(*X), i64(1, -1)]) for op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin")),
    Case("ReduceMean", [rand(*X), i64(2)], {"keepdims": 0}, id="keepdims0"),
    Case("ReduceMean", [rand(*X)], id="all"),
    Case("ReduceMean", [rand(*X), Const(np.zeros(0, np.int64))], {"noop_with_empty_axes": 1}, id="noop"),
    Case("ReduceSum", [ints(*X, dtype=np.int32), i64(0, 2)], {"keepdims": 0}, id="int32"),
    Case("ReduceMean", [ints(*X, low=-9, high=5, dtype=np.int32), i64(1, 3)], id="int32-truncates"),
    Case("ReduceMax", [rand(*X)], {"keepdims": 0}, id="all"),
    Case("ReduceMin", [ints(*X), i64(-2)], id="int64"),
    Case("ReduceMax", [rand(2, 0, 3), i64(1)], id="empty"),
    Case("ReduceMin", [ints(2, 0, 3, dtype=np.int32), i64(1)], {"keepdims": 0}, id="empty"),
]


def _resize(x: tuple, id: str, scales: tuple | None = None, sizes: tuple | None = None, **attrs: object) -> Case:
    operands = [rand(*x, low=-10, high=10), None, f32(*scales) if scales else None, i64(*sizes) if sizes else None]
    return Case("Resize", operands, attrs, id=id)


_TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_R = (1, 2, 5, 7)

RESIZE = [
    *(
        _resize(_R, f"nearest-{m}-{t}", (1, 1, 1.7, 0.55), coordinate_transformation_mode=t, nearest_mode=m)
        for t in _TRANSFORMS
        for m in _NEAREST
    ),
    _resize(_R, "nearest-x2", (1, 1, 2, 2), coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    _resize(_R, "nearest-sizes-x3", sizes=(1, 2, 15, 21)),
    *(
        _resize(_R, f"linear-{t}", (1, 1, 1.6, 0.7), mode="linear", coordinate_transformation_mode=t)
        for t in _TRANSFORMS
    ),
    *(
        _resize(_R, f"linear-sizes-{t}", sizes=(1, 2, 9, 4), mode="linear", coordinate_transformation_mode=t)
        for t in _TRANSFORMS
    ),
    *(_resize(_R, f"cubic-{t}", (1, 1, 1.6, 0.7), mode="cubic", coordinate_transformation_mode=t) for t in _TRANSFORMS),
    _resize(_R, "cubic-exclude-outside", (1, 1, 2.3, 1.5), mode="cubic", exclude_outside=1, cubic_coeff_a=-0.5),
    _resize(_R, "sizes-not-larger", sizes=(9, 9), axes=[2, 3], keep_aspect_ratio_policy="not_larger"),
    _resize(_R, "sizes-not-smaller", sizes=(9, 9), axes=[2, 3], keep_aspect_ratio_policy="not_smaller", mode="linear"),
    _resize(_R, "axes", (2.5,), axes=[-1], mode="linear"),
    _resize((1, 1, 2, 10), "float32-output-size", (1, 1, 1, 3.1)),  # 31 columns, as float32(3.1) * 10 rounds up
    _resize((1, 2, 6, 6), "same-size-is-a-copy", (1, 1, 1.1, 1.1), mode="linear"),
    Case("Resize", [rand(*_R), None, Const(np.zeros(0, np.float32)), i64(1, 2, 9, 3)], id="empty-scales"),
    Case(
        "Resize",
        [ints(*_R, low=0, high=256, dtype=np.uint8), None, f32(1, 1, 1.5, 0.8)],
        {"mode": "linear"},
        id="linear-uint8",
    ),
]

QDQ = [
    Case("QuantizeLinear", [rand(*X, low=-300, high=300), f32(0.75), Const(np.array(128, np.uint8))]),
    Case("QuantizeLinear", [rand(*X, low=-100, high=100), f32(0.5), Const(np.array(-3, np.int8))], id="int8"),
    Case(
        "QuantizeLinear",
        [rand(*X, low=-10, high=10), f32(0.05, 0.1, 0.2), Const(np.array([0, 1, -2], np.int8))],
        {"axis": 1},
        id="per-axis",
    ),
    Case("QuantizeLinear", [np.arange(-8, 8, dtype=np.float32) / 2, f32(1.0)], id="half-even-default-uint8"),
    Case("QuantizeLinear", [rand(*X, low=-50, high=50), f32(0.1)], {"output_dtype": TensorProto.INT8}, id="dtype"),
    Case(
        "QuantizeLinear",
        [rand(*X, low=-10000, high=10000), f32(0.25), Const(np.array(3, np.int16))],
        id="int16",
    ),
    Case("DequantizeLinear", [ints(*X, low=0, high=256, dtype=np.uint8), f32(0.02), Const(np.array(128, np.uint8))]),
    Case(
        "DequantizeLinear",
        [ints(*X, low=-128, high=128, dtype=np.int8), f32(0.1, 0.2, 0.3, 0.4), Const(np.array([1, 0, -1, 2], np.int8))],
        {"axis": -2},
        id="per-axis",
    ),
    Case("DequantizeLinear", [ints(*X, low=-1000, high=1000, dtype=np.int32), f32(0.01)], id="int32"),
]

# Cases for ops added later come after the earlier lists, so that those keep their random data.

ACTIVATIONS = [
    *(Case(t, [rand(*X, low=-4, high=4)]) for t in "Elu Selu Celu Softsign ThresholdedRelu Shrink".split()),
    Case("Elu", [rand(*X, low=-4, high=4)], {"alpha": 0.5}, id="alpha"),
    Case("Selu", [rand(*X, low=-4, high=4)], {"alpha": 1.5, "gamma": 2.0}, id="alpha-gamma"),
    Case("Celu", [rand(*X, low=-4, high=4)], {"alpha": 2.5}, id="alpha"),
    Case("ThresholdedRelu", [rand(*X)], {"alpha": 0.3}, id="alpha"),
    Case("Shrink", [rand(*X)], {"lambd": 0.8, "bias": 0.3}, id="soft"),
    Case("Shrink", [ints(*X, dtype=np.int32)], {"lambd": 1.2, "bias": 1.5}, id="int32"),
    Case("Sign", [np.concatenate([rand(20), np.zeros(2, np.float32), np.array([-0.0, np.nan], np.float32)])]),
    Case("Sign", [ints(*X, dtype=np.int8)], id="int8"),
    Case("Round", [np.concatenate([np.arange(-8, 8, dtype=np.float32) / 2, rand(20, low=-10, high=10)])]),
    Case("IsNaN", [np.array([0.5, np.nan, -np.inf, np.inf, -0.0, np.nan], np.float32)]),
    Case("IsInf", [np.array([0.5, np.nan, -np.inf, np.inf, 3e38, -np.inf], np.float32)]),
    Case("IsInf", [np.array([np.inf, -np.inf, 1.0], np.float32)], {"detect_positive": 0}, id="negative-only"),
    Case("IsInf", [np.array([np.inf, -np.inf, 1.0], np.float64)], {"detect_negative": 0}, id="positive-only"),
]

LOGIC = [
    Case("Mod", [ints(*X, low=-20, high=21), ints(5, low=1, high=7) * np.array([1, -1, 1, -1, 1])], id="int64"),
    Case(
        "Mod",
        [ints(*X, low=-20, high=21, dtype=np.int32), ints(*X, low=1, high=7, dtype=np.int32)],
        {"fmod": 1},
        id="int32-fmod",
    ),
    Case("Mod", [rand(*X, low=-10, high=10), rand(5, low=0.5, high=3) * np.float32(-1)], {"fmod": 1}, id="f32"),
    Case("Mod", [ints(8, low=0, high=200, dtype=np.uint8), ints(8, low=1, high=9, dtype=np.uint8)], id="uint8"),
    *(Case(t, [rand(*X) > 0, rand(4, 5) > 0]) for t in ("And", "Or", "Xor")),
    Case("LessOrEqual", [ints(*X, low=0, high=3), ints(5, low=0, high=3)]),
    Case("GreaterOrEqual", [rand(*X).round(), rand(1, 5).round()]),
    Case(
        "GreaterOrEqual",
        [ints(*X, low=0, high=3, dtype=np.uint16), ints(5, low=0, high=3, dtype=np.uint16)],
        id="uint16",
    ),
]

NORMALIZATION = [
    Case("InstanceNormalization", [rand(*X, low=-3, high=5), Const(rand(3)), Const(rand(3))]),
    Case("InstanceNormalization", [rand(2, 3, 7), rand(3), rand(3)], {"epsilon": 0.1}, id="1d-epsilon"),
    Case("MeanVarianceNormalization", [rand(*X, low=-1, high=3)]),
    Case("MeanVarianceNormalization", [rand(*X)], {"axes": [1, -1]}, id="axes"),
    Case("LogSoftmax", [rand(*X, low=-10, high=10)]),
    Case("LogSoftmax", [rand(*X, low=9000, high=10000)], {"axis": 1}, id="large-axis1"),
    Case("Hardmax", [rand(*X).round()], id="ties"),
    Case("Hardmax", [rand(*X)], {"axis": 0}, id="axis0"),
    Case("LpNormalization", [np.concatenate([rand(3, 6), np.zeros((1, 6), np.float32)])]),
    Case("LpNormalization", [rand(*X)], {"axis": 1, "p": 1}, id="p1-axis1"),
    Case("GlobalLpPool", [rand(*X)]),
    Case("GlobalLpPool", [rand(2, 3, 7)], {"p": 1}, id="p1-1d"),
    Case("GlobalLpPool", [rand(*X)], {"p": 3}, id="p3"),
]

EINSUM = [
    Case("Einsum", [[rand(2, 3, 4), rand(2, 4, 5)]], {"equation": "bij,bjk->bik"}),
    Case("Einsum", [[rand(3, 4)]], {"equation": "ij->ji"}, id="transpose"),
    Case("Einsum", [[rand(4, 4)]], {"equation": "ii"}, id="trace"),
    Case("Einsum", [[rand(2, 3, 4), rand(4, 5)]], {"equation": "...j, jk -> ...k"}, id="ellipsis-spaces"),
    Case("Einsum", [[rand(3, 4), rand(4, 5)]], {"equation": "ij,jk"}, id="implicit"),
    Case("Einsum", [[ints(3, 4), ints(3, 4)]], {"equation": "ij,ij->i"}, id="int64"),
]

MORE_REDUCTIONS = [
    *(
        Case(op, [rand(*X, low=0.1, high=1.9), i64(1, -1)])
        for op in "ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare".split()
    ),
    Case("ReduceProd", [ints(*X, low=-3, high=4, dtype=np.int32), i64(2)], {"keepdims": 0}, id="int32"),
    Case("ReduceL1", [rand(*X)], {"keepdims": 0}, id="all"),
    Case("ReduceL2", [ints(*X, dtype=np.int32), i64(0, 2)], id="int32-truncates"),
    Case("ReduceLogSum", [ints(*X, low=1, high=9), i64(3)], id="int64-truncates"),
    Case("ReduceLogSumExp", [rand(*X, low=80, high=120), i64(3)], {"keepdims": 0}, id="large"),
    Case("ReduceLogSumExp", [ints(*X, low=0, high=3, dtype=np.int32), i64(1)], id="int32"),
    Case("ReduceLogSumExp", [rand(2, 0, 3), i64(1)], id="empty"),
    Case("ReduceSumSquare", [ints(*X), Const(np.zeros(0, np.int64))], {"noop_with_empty_axes": 1}, id="noop"),
    Case("ArgMin", [rand(*X)], {"axis": 2}),
    Case("ArgMin", [ints(*X, low=0, high=3)], {"axis": -1, "keepdims": 0, "select_last_index": 1}, id="last"),
    Case("ArgMin", [ints(*X, low=0, high=3, dtype=np.int32)], {"axis": 0}, id="first-int32"),
]

INDEXING = [
    Case("NonZero", [rand(3, 4) > 0], data_dependent=True),
    Case("NonZero", [ints(2, 3, 4, low=-1, high=2, dtype=np.int32)], data_dependent=True, id="int32-3d"),
    Case("NonZero", [np.zeros((2, 3), np.float32)], data_dependent=True, id="none"),
    Case("NonZero", [np.array(2.0, np.float32)], data_dependent=True, id="scalar"),
    Case("Trilu", [rand(2, 4, 5)]),
    Case("Trilu", [rand(2, 4, 5), Const(np.array(-1, np.int64))], {"upper": 0}, id="lower-k-1"),
    Case("Trilu", [ints(5, 3), Const(np.array(2, np.int64))], id="k2-int64"),
    Case("Trilu", [rand(3, 4), Const(np.array(9, np.int64))], {"upper": 0}, id="lower-k-beyond"),
    Case("CumSum", [rand(*X), Const(np.array(1, np.int64))]),
    Case("CumSum", [rand(*X), Const(np.array(-1, np.int32))], {"exclusive": 1}, id="exclusive"),
    Case("CumSum", [rand(*X), Const(np.array(2, np.int64))], {"reverse": 1}, id="reverse"),
    Case(
        "CumSum",
        [ints(*X, dtype=np.int32), Const(np.array(0, np.int32))],
        {"exclusive": 1, "reverse": 1},
        id="exclusive-reverse-int32",
    ),
    Case("TopK", [rand(*X).round(), i64(3)], outputs=2, id="ties"),
    Case("TopK", [rand(*X).round(), i64(2)], {"axis": 1, "largest": 0}, outputs=2, id="smallest-ties"),
    Case("TopK", [ints(4, 9, low=0, high=4), i64(9)], {"axis": -1}, outputs=2, id="int64-all"),
    Case("TopK", [ints(4, 9, low=0, high=4, dtype=np.int32), i64(0)], outputs=2, id="k0"),
    Case("GatherElements", [rand(4, 5), ints(3, 5, low=-4, high=4)]),
    Case(
        "GatherElements",
        [rand(2, 3, 4), ints(2, 3, 6, low=-4, high=4, dtype=np.int32)],
        {"axis": -1},
        id="int32-axis-1",
    ),
    Case("GatherND", [rand(4, 5, 6), ints(3, 2, low=-4, high=4)]),
    Case("GatherND", [rand(4, 5, 6), ints(2, 3, 3, low=0, high=4)], id="elements"),
    Case("GatherND", [ints(3, 5, 6), ints(3, 2, 1, low=-5, high=5)], {"batch_dims": 1}, id="batch1"),
    Case("GatherND", [rand(2, 3, 4, 5), ints(2, 3, 1, low=0, high=4)], {"batch_dims": 2}, id="batch2"),
    Case("ScatterND", [rand(4, 5, 6), Const(np.array([[3], [0], [-1]])), rand(3, 5, 6)]),
    *(
        Case("ScatterND", [rand(4, 5), Const(np.array([[1, 2], [0, 0], [1, 2]])), rand(3)], {"reduction": r}, id=r)
        for r in ("add", "mul", "max", "min")
    ),
    Case("ScatterElements", [rand(4, 5), Const(np.array([[1, -1, 0], [3, 2, 0]])), rand(2, 3)]),
    Case(
        "ScatterElements",
        [ints(4, 5), Const(np.array([[1, 4, 1, 1]], np.int32)), ints(1, 4)],
        {"axis": 1, "reduction": "add"},
        id="add-duplicates",
    ),
    Case(
        "ScatterElements",
        [rand(4, 5), Const(np.array([[1, 2], [1, 2], [1, 0]])), rand(3, 2)],
        {"axis": 0, "reduction": "max"},
        id="max",
    ),
    Case("OneHot", [Const(np.array([[0, 3], [-1, 7]])), Const(np.array(5)), f32(0, 1)]),
    Case(
        "OneHot",
        [ints(2, 3, low=-4, high=4, dtype=np.int32), Const(np.array(4.7, np.float32)), f32(-2, 3)],
        {"axis": 0},
        id="axis0-float-depth",
    ),
    Case("OneHot", [np.array([1.0, -2.0, 2.5], np.float32), i64(4), i64(7, 9)], {"axis": -2}, id="float-indices"),
]

LAYOUT = [
    Case("Size", [rand(*X)]),
    Case("Size", [ints(0, 3)], id="empty"),
    Case("EyeLike", [rand(3, 5)]),
    Case("EyeLike", [ints(4, 3)], {"k": -1, "dtype": TensorProto.FLOAT}, id="dtype-k"),
    Case("EyeLike", [rand(4, 4)], {"k": 2, "dtype": TensorProto.INT32}, id="int32-k"),
    Case("DepthToSpace", [rand(2, 8, 3, 4)], {"blocksize": 2}),
    Case("DepthToSpace", [rand(1, 18, 2, 3)], {"blocksize": 3, "mode": "CRD"}, id="crd"),
    Case("SpaceToDepth", [rand(2, 3, 4, 6)], {"blocksize": 2}),
]

CASES = (
    ELEMENTWISE
    + LINEAR
    + CONV
    + POOL
    + SHAPE
    + REDUCE
    + RESIZE
    + QDQ
    + ACTIVATIONS
    + LOGIC
    + NORMALIZATION
    + EINSUM
    + MORE_REDUCTIONS
    + INDEXING
    + LAYOUT
)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_onnxruntime(case: Case) -> None:
    check(case)


def test_every_op_is_covered() -> None:
    assert sorted(set(BY_ONNX_TYPE) - {c.op_type for c in CASES}) == []


def test_case_ids_are_unique() -> None:
    names = [str(c) for c in CASES]
    assert sorted({n for n in names if names.count(n) > 1}) == []


# --- structural rules ---------------------------------------------------------------------------------------------


def _verify_single(op_type: str, inputs: list[TensorType], results: list[TensorType], **attrs: object) -> None:
    """Verify a function holding one op on fresh inputs, its result types given (inference would refuse first)."""
    func = FuncOp.create("main", [(f"x{i}", t) for i, t in enumerate(inputs)], [])
    node = helper.make_node(op_type, [], [], **attrs)
    attributes = {a.name: attribute_from_onnx(a) for a in node.attribute}
    op = BY_ONNX_TYPE[op_type].build(*func.body.args, attributes=attributes, result_types=results)
    func.body.append(op)
    func.body.append(ReturnOp(op.results))
    func.update_function_type()
    verify(new_module([func]))


def _t(*shape: int, element: str = "f32") -> TensorType:
    return TensorType(shape, ElementType(element))


@pytest.mark.parametrize(
    ("op_type", "inputs", "results", "attrs", "message"),
    [
        ("Conv", [_t(1, 4, 8, 8), _t(2, 3, 3, 3)], [_t(1, 2, 6, 6)], {}, "X has 4 channels but W takes 3 per group"),
        ("Conv", [_t(1, 4, 8, 8), _t(3, 2, 3, 3)], [_t(1, 3, 6, 6)], {"group": 2}, "3 filters do not split into 2"),
        ("Conv", [_t(1, 4, 8), _t(2, 4, 3, 3)], [_t(1, 2, 6)], {}, "same rank"),
        ("Conv", [_t(1, 4, 8, 8), _t(2, 4, 3, 3), _t(3)], [_t(1, 2, 6, 6)], {}, r"B must have shape \(2,\)"),
        ("Conv", [_t(1, 4, 8, 8), _t(2, 4, 3, 3)], [_t(1, 2, 6, 6)], {"strides": [1]}, "strides must have 2 values"),
        ("Conv", [_t(1, 4, 8, 8), _t(2, 4, 3, 3)], [_t(1, 2, 6, 6)], {"auto_pad": "SAME"}, "auto_pad must be one of"),
        ("ConvTranspose", [_t(1, 4, 8, 8), _t(3, 2, 3, 3)], [_t(1, 2, 10, 10)], {}, "X has 4 channels but W is for 3"),
        ("MaxPool", [_t(1, 4, 8, 8)], [_t(1, 4, 4, 4)], {"kernel_shape": [2]}, "does not fit input"),
        (
            "BatchNormalization",
            [_t(1, 3, 4, 4), _t(3), _t(3), _t(3), _t(3)],
            [_t(1, 3, 4, 4)],
            {"training_mode": 1},
            "training_mode must be 0",
        ),
        (
            "BatchNormalization",
            [_t(1, 3, 4, 4), _t(4), _t(3), _t(3), _t(3)],
            [_t(1, 3, 4, 4)],
            {},
            r"scale must have shape \(3,\)",
        ),
        ("QuantizeLinear", [_t(4, 8), _t(4, 2)], [_t(4, 8, element="ui8")], {"block_size": 4}, "block_size must be 0"),
        ("DequantizeLinear", [_t(4, 8, element="i8"), _t(2, 2)], [_t(4, 8)], {}, "scalar or 1-D"),
        (
            "Resize",
            [_t(1, 1, 4, 4), _t(8), _t(4)],
            [_t(1, 1, 8, 8)],
            {"coordinate_transformation_mode": "tf_crop_and_resize"},
            "tf_crop_and_resize' is not supported",
        ),
        ("Split", [_t(4, 8)], [_t(2, 8), _t(2, 8)], {}, "exactly one of the split operand and the num_outputs"),
        ("Pad", [_t(4, 8), _t(4, element="i64")], [_t(6, 10)], {"mode": "mirror"}, "mode must be one of"),
        ("Gelu", [_t(4)], [_t(4)], {"approximate": "erf"}, "approximate must be"),
        ("Transpose", [_t(2, 3, 4)], [_t(4, 3, 2)], {"perm": [0, 0, 1]}, "not a permutation"),
        ("Cast", [_t(4)], [_t(4)], {"to": TensorProto.STRING}, "cannot cast to"),
        ("Gemm", [_t(2, 3, 4), _t(4, 5)], [_t(2, 3, 5)], {}, "operand A must be a matrix"),
        ("Mod", [_t(4), _t(4)], [_t(4)], {}, "f32 tensors needs fmod = 1"),
        ("Mod", [_t(4, element="i32"), _t(4, element="i32")], [_t(4, element="i32")], {"fmod": 2}, "fmod must be"),
        ("LpNormalization", [_t(4, 8)], [_t(4, 8)], {"p": 3}, "p must be 1 or 2"),
        ("GlobalLpPool", [_t(1, 4, 8, 8)], [_t(1, 4, 1, 1)], {"p": 0}, "p must be positive"),
        ("DepthToSpace", [_t(1, 8, 2, 2)], [_t(1, 2, 4, 4)], {"blocksize": 2, "mode": "RCD"}, "mode must be DCR"),
        ("SpaceToDepth", [_t(8, 4, 4)], [_t(32, 2, 2)], {"blocksize": 2}, r"NCHW \(rank 4\)"),
        ("SpaceToDepth", [_t(1, 8, 4, 4)], [_t(1, 8, 4, 4)], {"blocksize": 0}, "blocksize must be positive"),
        (
            "ScatterND",
            [_t(4, 5), _t(3, 1, element="i64"), _t(3, 5)],
            [_t(4, 5)],
            {"reduction": "sum"},
            "reduction must be one of none, add, mul, max, min",
        ),
        ("EyeLike", [_t(3, 3)], [_t(3, 3)], {"dtype": TensorProto.STRING}, "dtype must be a type the IR has"),
        ("EyeLike", [_t(3, 3, 3)], [_t(3, 3, 3)], {}, "must be a matrix"),
        ("OneHot", [_t(4, element="i64"), _t(element="i64"), _t(3)], [_t(4, 5)], {}, "values must hold 2"),
        ("Einsum", [_t(3, 4), _t(4, 5)], [_t(3, 5)], {"equation": "ij->ji"}, "1 input terms for 2 operands"),
        (
            "InstanceNormalization",
            [_t(1, 3, 4, 4), _t(4), _t(3)],
            [_t(1, 3, 4, 4)],
            {},
            r"scale must have shape \(3,\)",
        ),
        ("CumSum", [_t(4, 5), _t(2, element="i64")], [_t(4, 5)], {}, "axis must be a scalar"),
    ],
    ids=lambda v: v if isinstance(v, str) and v[0].isupper() else None,
)
def test_verify_rejects(op_type: str, inputs: list, results: list, attrs: dict, message: str) -> None:
    with pytest.raises(VerifyError, match=message):
        _verify_single(op_type, inputs, results, **attrs)


def test_resize_with_antialias_is_refused() -> None:
    with pytest.raises(VerifyError, match="antialias = 1 is not supported"):
        _verify_single("Resize", [_t(1, 1, 4, 4), _t(0), _t(4)], [_t(1, 1, 2, 2)], antialias=1, mode="linear")


def test_dropout_in_training_mode_is_refused() -> None:
    case = Case("Dropout", [rand(4), Const(np.array(0.5, np.float32)), np.array(True)])
    model, feeds = _onnx_model(case)
    module, inputs, _ = _ours(case, model.graph.node[0])
    with pytest.raises(InterpreterError, match="only inference-mode dropout"):
        run_module(module, inputs)


def test_top_k_unsorted_picks_the_entries_onnxruntime_picks() -> None:
    """With sorted = 0 the order is unspecified (onnxruntime's follows its heap); the picked entries are the same,
    ties included (lowest index first)."""
    case = Case("TopK", [ints(3, 40, low=0, high=5).astype(np.float32), i64(7)], {"sorted": 0}, outputs=2)
    model, feeds = _onnx_model(case)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want_values, want_indices = session.run(None, feeds)
    module, inputs, _ = _ours(case, model.graph.node[0])
    got = run_module(module, inputs)
    np.testing.assert_array_equal(np.sort(got["y1"], axis=-1), np.sort(want_indices, axis=-1))
    np.testing.assert_array_equal(np.sort(got["y0"], axis=-1), np.sort(want_values, axis=-1))


def test_out_of_range_indices_are_refused() -> None:
    case = Case("GatherND", [rand(4, 5), np.array([[1, 5]], np.int64)])
    model, feeds = _onnx_model(case)
    module, inputs, _ = _ours(case, model.graph.node[0])
    with pytest.raises(InterpreterError, match=r"GatherND indices out of range dims \[4, 5\]"):
        run_module(module, inputs)


def test_build_folds_constant_shapes_into_result_types() -> None:
    """A Reshape by a graph.constant shape gets a static type; by a runtime shape, only the rank is known."""
    func = FuncOp.create("main", [("x", _t(2, 3, 4)), ("shape", _t(2, element="i64"))], [])
    shape = func.body.append(ConstantOp.create(np.array([0, -1], np.int64))).result
    reshape = BY_ONNX_TYPE["Reshape"]
    assert reshape.build(func.body.args[0], shape).result.type == _t(2, 12)
    assert reshape.build(*func.body.args).result.type == TensorType((None, None), ElementType("f32"))
