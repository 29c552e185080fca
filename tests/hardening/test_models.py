"""Bad ONNX models through the ``cimc`` command: each refused in one line naming the node, initializer or input at
fault, before anything large is allocated (see ``tests/refusal.py``).

The corpus is hand-written: non-finite weights in every place a model keeps constants, ops whose output size comes
from data (``ConstantOfShape``, ``Expand``, ``Tile``, ``Range``, ``Resize``, ``Pad``, ``Upsample``, ``OneHot``) asked
for far more than memory, and odd graphs (no outputs, negative dims). A hypothesis test then mutates the bytes of a
small valid model: every mutant is refused in one line or compiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from refusal import refused, refused_or_accepted, run_cimc

from cimc.compiler.onnx_importer import import_onnx

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64
BIG = 10**9  # elements: 3.7 GiB of float32, past the default limit of 1 GiB per tensor
HUGE = 10**11


def model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: dict[str, np.ndarray] | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    tensors = [numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()]
    graph = helper.make_graph(nodes, "bad", inputs, outputs, tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def value(name: str, shape: list[int | str] | None, elem: int = FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def node(op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op_type, inputs, outputs, name=name, **attrs)


def constant(name: str, array: np.ndarray | list | float) -> onnx.NodeProto:
    """A Constant node named after its output."""
    return helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(np.asarray(array)))


def ints(*values: float) -> np.ndarray:
    return np.array(values, np.int64)


# --- non-finite weights ------------------------------------------------------------------------------------------


def with_value(array: np.ndarray, index: tuple[int, ...], bad: float) -> np.ndarray:
    array = array.copy()
    array[index] = bad
    return array


def matmul(weight: np.ndarray) -> onnx.ModelProto:
    """x[1, K] @ w[K, N] by node 'fc'."""
    k, n = weight.shape
    return model([node("MatMul", ["x", "w"], ["y"], "fc")], [value("x", [1, k])], [value("y", [1, n])], {"w": weight})


def gemm(bias: np.ndarray) -> onnx.ModelProto:
    weight = np.ones((4, 3), np.float32)
    nodes = [node("Gemm", ["x", "w", "b"], ["y"], "fc", transB=1)]
    return model(nodes, [value("x", [1, 3])], [value("y", [1, 4])], {"w": weight, "b": bias})


def conv(weight: np.ndarray) -> onnx.ModelProto:
    nodes = [node("Conv", ["x", "w"], ["y"], "conv1", pads=[1, 1, 1, 1])]
    return model(nodes, [value("x", [1, 2, 5, 5])], [value("y", [1, 3, 5, 5])], {"w": weight})


def add_constant(array: np.ndarray | float, reader: str = "Add") -> onnx.ModelProto:
    """x (op) a Constant node 'c' with ``array``."""
    shape = list(np.shape(array)) or [1]
    nodes = [constant("c", np.asarray(array, np.float32)), node(reader, ["x", "c"], ["y"], "use")]
    return model(nodes, [value("x", shape)], [value("y", shape)])


def constant_attribute(attribute: str, values: float | list[float]) -> onnx.ModelProto:
    """x + a Constant node 'c' in its ``value_float`` or ``value_floats`` form."""
    size = 1 if isinstance(values, float) else len(values)
    nodes = [
        helper.make_node("Constant", [], ["c"], name="c", **{attribute: values}),
        node("Mul", ["x", "c"], ["y"], "scale"),
    ]
    return model(nodes, [value("x", [size])], [value("y", [size])])


def folded(op_type: str, *arrays: np.ndarray) -> onnx.ModelProto:
    """x + op(initializers a, b, ...): the op folds at compile time."""
    names = [f"k{i}" for i in range(len(arrays))]
    shape = list(np.broadcast_shapes(*(a.shape for a in arrays)))
    nodes = [node(op_type, names, ["k"], "consts"), node("Add", ["x", "k"], ["y"], "use")]
    return model(nodes, [value("x", shape)], [value("y", shape)], dict(zip(names, arrays)))


def where_mask(fill: float) -> onnx.ModelProto:
    """Where(x > 0, x, fill): PyTorch's masked_fill."""
    nodes = [
        constant("zero", np.float32(0)),
        node("Greater", ["x", "zero"], ["mask"], "mask"),
        constant("fill", np.float32(fill)),
        node("Where", ["mask", "x", "fill"], ["y"], "masked_fill"),
    ]
    return model(nodes, [value("x", [4])], [value("y", [4])])


def batch_norm(var: np.ndarray) -> onnx.ModelProto:
    """Conv 'conv1' then BatchNormalization 'bn' with the given variances: the batch norm folds into the Conv."""
    channels = len(var)
    ones = np.ones(channels, np.float32)
    nodes = [
        node("Conv", ["x", "w"], ["h"], "conv1"),
        node("BatchNormalization", ["h", "g", "b", "m", "v"], ["y"], "bn"),
    ]
    weights = {"w": np.ones((channels, 2, 1, 1), np.float32), "g": ones, "b": ones, "m": ones, "v": var}
    return model(nodes, [value("x", [1, 2, 3, 3])], [value("y", [1, channels, 3, 3])], weights)


ONES = np.ones((64, 32), np.float32)  # 2048 elements: kept out of the importer's skeleton
SMALL = np.ones((4, 2), np.float32)

NONFINITE = {
    "matmul-weight-nan": (matmul(with_value(ONES, (5, 7), np.nan)), ["'w'", "'fc'", "NaN", "[5, 7]"]),
    "matmul-weight-inf": (matmul(with_value(ONES, (0, 0), np.inf)), ["'w'", "'fc'", "inf"]),
    "matmul-small-weight-nan": (matmul(with_value(SMALL, (1, 1), np.nan)), ["'w'", "'fc'", "NaN"]),
    "matmul-small-weight-minus-inf": (matmul(with_value(SMALL, (3, 0), -np.inf)), ["'w'", "'fc'", "-inf"]),
    "matmul-float16-inf": (matmul(with_value(SMALL.astype(np.float16), (0, 1), np.inf)), ["'w'", "'fc'", "inf"]),
    "matmul-all-nan": (matmul(np.full((4, 2), np.nan, np.float32)), ["'w'", "'fc'", "8 of 8"]),
    "gemm-bias-nan": (gemm(np.array([0, np.nan, 0, 0], np.float32)), ["'b'", "'fc'", "NaN"]),
    "gemm-bias-inf": (gemm(np.array([0, 0, 0, np.inf], np.float32)), ["'b'", "'fc'", "inf"]),
    "conv-weight-nan": (conv(with_value(np.ones((3, 2, 3, 3), np.float32), (2, 1, 0, 2), np.nan)), ["'w'", "'conv1'"]),
    "conv-weight-inf": (conv(with_value(np.ones((3, 2, 3, 3), np.float32), (0, 0, 0, 0), -np.inf)), ["'w'", "'conv1'"]),
    "constant-node-nan": (add_constant(np.array([1, np.nan, 2], np.float32)), ["'c'", "NaN"]),
    "constant-node-inf": (add_constant(np.array([np.inf, 1], np.float32)), ["'c'", "inf"]),
    "constant-node-scalar-inf": (add_constant(np.float32(np.inf), "Mul"), ["'c'", "'use'", "inf"]),
    "constant-value-float-inf": (constant_attribute("value_float", float("inf")), ["'c'", "inf"]),
    "constant-value-floats-nan": (constant_attribute("value_floats", [1.0, float("nan")]), ["'c'", "NaN"]),
    "constant-nan-read-by-where": (where_mask(np.nan), ["'fill'", "NaN"]),
    "folded-division-by-zero": (
        folded("Div", np.ones(2, np.float32), np.array([0, 1], np.float32)),
        ['"consts"', "inf"],
    ),
    "folded-zero-by-zero": (folded("Div", np.zeros(2, np.float32), np.zeros(2, np.float32)), ['"consts"', "NaN"]),
    "folded-log-of-zero": (folded("Log", np.array([0, 1], np.float32)), ['"consts"', "-inf"]),
    "folded-sqrt-of-negative": (folded("Sqrt", np.array([-1, 4], np.float32)), ['"consts"', "NaN"]),
    "folded-overflow": (folded("Mul", np.full(2, 1e30, np.float32), np.full(2, 1e30, np.float32)), ['"consts"', "inf"]),
    "folded-reciprocal-of-zero": (folded("Reciprocal", np.zeros(3, np.float32)), ['"consts"', "inf"]),
    "batch-norm-negative-variance": (batch_norm(np.array([1, -2, 1], np.float32)), ['"bn"', "-1.99999", "channel 1"]),
}


# --- tensors far past the limit ----------------------------------------------------------------------------------


def constant_of_shape(shape: onnx.NodeProto | list[onnx.NodeProto], elem: int = FLOAT) -> onnx.ModelProto:
    """x + ConstantOfShape 'big'(s), s made by the given nodes."""
    makers = shape if isinstance(shape, list) else [shape]
    fill = numpy_helper.from_array(np.zeros(1, helper.tensor_dtype_to_np_dtype(elem)))
    nodes = [*makers, node("ConstantOfShape", ["s"], ["c"], "big", value=fill), node("Add", ["x", "c"], ["y"], "use")]
    return model(nodes, [value("x", [1], elem)], [value("y", ["n"], elem)])


def grows(
    op_type: str, x_shape: list[int], operands: dict[str, np.ndarray], rank: int = 0, opset: int = 17
) -> onnx.ModelProto:
    """op_type 'big'(x, operands...), its operands Constant nodes (an operand named "" is left out), its output of
    ``rank`` (default x's)."""
    nodes = [constant(name, array) for name, array in operands.items() if name]
    nodes.append(node(op_type, ["x", *operands], ["y"], "big"))
    return model(nodes, [value("x", x_shape)], [value("y", ["?"] * (rank or len(x_shape)))], opset=opset)


def ranged(start: float, limit: float, delta: float, dtype: type = np.int64) -> onnx.ModelProto:
    nodes = [constant(n, dtype(v)) for n, v in (("start", start), ("limit", limit), ("delta", delta))]
    nodes.append(node("Range", ["start", "limit", "delta"], ["y"], "big"))
    elem = INT64 if dtype is np.int64 else FLOAT
    return model(nodes, [value("x", [1])], [value("y", ["n"], elem)])


def one_hot(depth: int) -> onnx.ModelProto:
    nodes = [constant("depth", ints(depth)), constant("values", np.array([0, 1], np.float32))]
    nodes.append(node("OneHot", ["x", "depth", "values"], ["y"], "big"))
    return model(nodes, [value("x", [4], INT64)], [value("y", [4, "n"])])


def declared(shape: list[int], where: str = "input") -> onnx.ModelProto:
    """Relu over an input (or its output, or a value) of a declared shape."""
    inputs = [value("x", shape if where == "input" else [1, 4])]
    outputs = [value("y", shape if where == "output" else [1, 4])]
    graph_model = model([node("Relu", ["x"], ["y"], "relu")], inputs, outputs)
    if where == "value":
        graph_model.graph.value_info.append(value("y", shape))
    return graph_model


def dims_only_initializer() -> onnx.ModelProto:
    """An initializer declaring 10^6 x 10^6 floats with no data."""
    weight = TensorProto(name="w", data_type=FLOAT, dims=[10**6, 10**6])
    graph = helper.make_graph(
        [node("MatMul", ["x", "w"], ["y"], "fc")], "bad", [value("x", [1, 10**6])], [value("y", [1, 10**6])], [weight]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def dims_only_constant() -> onnx.ModelProto:
    tensor = TensorProto(name="v", data_type=FLOAT, dims=[10**6, 10**6], raw_data=bytes(4))
    nodes = [helper.make_node("Constant", [], ["c"], name="c", value=tensor), node("Add", ["x", "c"], ["y"], "use")]
    return model(nodes, [value("x", [1])], [value("y", ["n", "m"])])


TOO_LARGE = {
    "constant-of-shape-1e9": (constant_of_shape(constant("s", ints(BIG))), ["'big'", "ConstantOfShape", "3.73 GiB"]),
    "constant-of-shape-1e11": (constant_of_shape(constant("s", ints(HUGE))), ["'big'", "373 GiB"]),
    "constant-of-shape-2d": (constant_of_shape(constant("s", ints(10**5, 10**5))), ["'big'", "100000x100000"]),
    "constant-of-shape-int64": (constant_of_shape(constant("s", ints(BIG // 2)), INT64), ["'big'", "int64"]),
    "constant-of-shape-past-int64": (constant_of_shape(constant("s", ints(2**62, 2**62))), ["'big'"]),
    "constant-of-shape-by-concat": (
        constant_of_shape(
            [constant("a", ints(10**5)), constant("b", ints(10**5)), node("Concat", ["a", "b"], ["s"], "cat", axis=0)]
        ),
        ["'big'", "100000x100000"],
    ),
    "constant-of-shape-1d-by-concat": (
        constant_of_shape([constant("a", ints(BIG)), node("Concat", ["a"], ["s"], "cat", axis=0)]),
        ["'big'", "1000000000"],
    ),
    "constant-of-shape-by-mul": (
        constant_of_shape([constant("a", ints(10**5)), node("Mul", ["a", "a"], ["s"], "square")]),
        ["'big'", "10000000000"],
    ),
    "expand": (grows("Expand", [1], {"shape": ints(10**6, 10**6)}, rank=2), ["'big'", "Expand"]),
    "expand-1d": (grows("Expand", [1], {"shape": ints(BIG)}), ["'big'", "Expand"]),
    "tile": (grows("Tile", [4], {"repeats": ints(BIG)}), ["'big'", "Tile"]),
    "tile-2d": (grows("Tile", [2, 2], {"repeats": ints(10**5, 10**5)}), ["'big'", "Tile"]),
    "range": (ranged(0, 10**10, 1), ["'big'", "Range"]),
    "range-float": (ranged(0, 1e3, 1e-7, np.float32), ["'big'", "Range"]),
    "resize-scales": (
        grows(
            "Resize", [1, 1, 4, 4], {"roi": np.zeros(0, np.float32), "scales": np.array([1, 1, 1e5, 1e5], np.float32)}
        ),
        ["'big'", "Resize"],
    ),
    "resize-sizes": (
        grows(
            "Resize", [1, 1, 4, 4], {"roi": np.zeros(0, np.float32), "": np.zeros(0), "sizes": ints(1, 1, 10**6, 10**6)}
        ),
        ["'big'", "Resize"],
    ),
    "pad": (grows("Pad", [1, 4], {"pads": ints(0, BIG, 0, BIG)}), ["'big'", "Pad"]),
    "pad-2d": (grows("Pad", [2, 2], {"pads": ints(10**5, 10**5, 10**5, 10**5)}), ["'big'", "Pad"]),
    "upsample": (
        grows("Upsample", [1, 1, 4, 4], {"scales": np.array([1, 1, 1e5, 1e5], np.float32)}, opset=9),
        ["Upsample"],
    ),
    "one-hot": (one_hot(10**10), ["'big'", "OneHot"]),
    "reshape-of-too-many": (grows("Reshape", [4], {"shape": ints(99999999999, 99999999999)}, rank=2), ['"big"']),
    "input-declared-huge": (declared([99999999999, 99999999999]), ["input 'x'"]),
    "input-declared-past-int64-product": (declared([2**40, 2**40]), ["input 'x'"]),
    "output-declared-huge": (declared([10**6, 10**6], "output"), ["'relu'"]),
    "initializer-declared-huge": (dims_only_initializer(), ["initializer 'w'"]),
    "constant-declared-huge": (dims_only_constant(), ["Name: c", "4000000000000 bytes"]),
}


# --- odd graphs --------------------------------------------------------------------------------------------------


def with_dim(where: str, dim: int) -> onnx.ModelProto:
    graph_model = declared([1, 4], where)
    values = {
        "input": graph_model.graph.input,
        "output": graph_model.graph.output,
        "value": graph_model.graph.value_info,
    }
    target = values[where][0] if where != "value" else graph_model.graph.value_info.add()
    if where == "value":
        target.CopyFrom(value("h", [1, 4]))
    target.type.tensor_type.shape.dim[1].dim_value = dim
    return graph_model


def no_outputs(with_nodes: bool = True) -> onnx.ModelProto:
    return model([node("Relu", ["x"], ["y"], "relu")] if with_nodes else [], [value("x", [1, 4])], [])


def negative_initializer() -> onnx.ModelProto:
    graph_model = matmul(SMALL)
    graph_model.graph.initializer[0].dims[0] = -4
    return graph_model


ODD = {
    "no-outputs": (no_outputs(), ["no outputs"]),
    "no-nodes-no-outputs": (no_outputs(with_nodes=False), ["no outputs"]),
    "input-dim-minus-5": (with_dim("input", -5), ["input 'x'", "-5"]),
    "output-dim-minus-5": (with_dim("output", -5), ["output 'y'", "-5"]),
    "value-dim-minus-5": (with_dim("value", -5), ["value 'h'", "-5"]),
    "input-dim-int64-min": (with_dim("input", -(2**63)), ["input 'x'", str(-(2**63))]),
    "initializer-negative-dim": (negative_initializer(), ["initializer 'w'", "-4"]),
}


@dataclass(frozen=True)
class Command:
    """How a case's model goes through cimc: argv after the model, and the input file it needs, if any."""

    argv: tuple[str, ...]
    needs_input: bool = False
    output: str | None = None


COMMANDS = {
    "emit": Command(("--emit", "graph")),
    "compile": Command((), output="out.cimb"),
    "run": Command((), needs_input=True),
}
CASES = [
    pytest.param(model_, names, command, id=f"{command}-{name}")
    for corpus, command in ((NONFINITE, "emit"), (TOO_LARGE, "emit"), (ODD, "emit"))
    for name, (model_, names) in corpus.items()
] + [
    pytest.param(*NONFINITE["matmul-weight-nan"], "compile", id="compile-matmul-weight-nan"),
    pytest.param(*NONFINITE["folded-division-by-zero"], "compile", id="compile-folded-division-by-zero"),
    pytest.param(*TOO_LARGE["constant-of-shape-1e11"], "compile", id="compile-constant-of-shape-1e11"),
    pytest.param(*ODD["no-outputs"], "compile", id="compile-no-outputs"),
    pytest.param(*NONFINITE["gemm-bias-inf"], "run", id="run-gemm-bias-inf"),
    pytest.param(*TOO_LARGE["expand"], "run", id="run-expand"),
    pytest.param(*ODD["input-dim-minus-5"], "run", id="run-input-dim-minus-5"),
]


def run_argv(tmp_path: Path, graph_model: onnx.ModelProto, command: str) -> tuple[list[str], Path, list[Path]]:
    """The argv running ``command`` on the model saved in ``tmp_path``; the model's path; the outputs not to make."""
    path = tmp_path / "m.onnx"
    path.write_bytes(graph_model.SerializeToString())
    spec = COMMANDS[command]
    argv = ["compile" if command != "run" else "run", str(path), *spec.argv]
    outputs = []
    if spec.output:
        outputs.append(tmp_path / spec.output)
        argv += ["-o", str(outputs[-1])]
    if spec.needs_input:
        np.save(tmp_path / "x.npy", np.ones((1, 3), np.float32))
        argv += ["-i", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npz")]
        outputs.append(tmp_path / "y.npz")
    return argv, path, outputs


@pytest.mark.parametrize(("graph_model", "names", "command"), CASES)
def test_bad_model_is_refused_naming_the_fault(
    tmp_path: Path, graph_model: onnx.ModelProto, names: list[str], command: str
) -> None:
    argv, path, outputs = run_argv(tmp_path, graph_model, command)
    line = refused(argv, *names, inputs=[path], outputs=outputs)
    assert str(path) in line or "'graph." in line  # the file, or the folded op and its node


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize(
    ("shape", "names"),
    [
        ("?x99999999999x99999999999", ["input 'x'", "limit"]),
        (f"1x{2**64}x4", ["input 'x'", "beyond int64"]),
        ("1x0x4", ["input 'x'", "not positive"]),
    ],
    ids=["past-the-limit", "past-int64", "zero"],
)
def test_a_bad_input_shape_flag_is_refused_naming_the_input(tmp_path: Path, shape: str, names: list[str]) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(
        model(
            [node("Relu", ["x"], ["y"], "relu")], [value("x", [1, "h", "w"])], [value("y", [1, "h", "w"])]
        ).SerializeToString()
    )
    refused(["compile", str(path), "--emit", "graph", "--input-shape", f"x={shape}"], *names, inputs=[path])


# --- what is still accepted ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fill", [-np.inf, np.inf])
def test_infinity_as_a_masked_fill_value_is_accepted(fill: float) -> None:
    """PyTorch exports ``masked_fill(mask, -inf)`` as a Where reading a -inf constant: a select, not arithmetic."""
    import_onnx(where_mask(fill))


def test_dim_minus_1_stays_dynamic() -> None:
    """Some exporters write -1 for a dynamic dim."""
    module = import_onnx(with_dim("input", -1))
    assert str(module.function("main").arguments[0].type) == "tensor<1x?xf32>"


def test_the_limit_can_be_raised_and_lowered(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(constant_of_shape(constant("s", ints(10**6))).SerializeToString())
    status, out, _, _ = run_cimc(["compile", str(path), "--emit", "graph"])
    assert status == 0 and "tensor<1000000xf32>" in out
    line = refused(
        ["compile", str(path), "--emit", "graph", "--max-tensor-size", "1M"], "'big'", "1 MiB", inputs=[path]
    )
    assert "3.81 MiB" in line
    status, _, err, _ = run_cimc(["compile", str(path), "--emit", "graph", "--max-tensor-size", "4M"])
    assert status == 0, err


@pytest.mark.parametrize("size", ["0", "-1", "lots", "4X", "1e9"])
def test_a_bad_limit_is_refused_naming_the_flag(tmp_path: Path, size: str) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(matmul(SMALL).SerializeToString())
    status, _, err, _ = run_cimc(["compile", str(path), "--emit", "graph", "--max-tensor-size", size])
    assert status == 2 and "--max-tensor-size" in err and "Traceback" not in err


# --- sizes that come from the data a model runs on ---------------------------------------------------------------


def data_sized(op_type: str, operand: str) -> onnx.ModelProto:
    """op_type 'big'(x, the graph input ``operand``): the size of its output is only known at run time."""
    nodes = [node(op_type, ["x", operand] if op_type != "ConstantOfShape" else [operand], ["y"], "big")]
    inputs = [value(operand, [1], INT64)] + ([value("x", [1])] if op_type != "ConstantOfShape" else [])
    return model(nodes, inputs, [value("y", ["n"])])


@pytest.mark.parametrize(
    ("op_type", "operand"), [("ConstantOfShape", "shape"), ("Expand", "shape"), ("Tile", "repeats")]
)
def test_run_refuses_an_output_its_inputs_make_too_large(tmp_path: Path, op_type: str, operand: str) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(data_sized(op_type, operand).SerializeToString())
    inputs = tmp_path / "in.npz"
    arrays = {operand: ints(HUGE)} | ({"x": np.ones(1, np.float32)} if op_type != "ConstantOfShape" else {})
    np.savez(inputs, **arrays)
    refused(["run", str(path), "-i", str(inputs)], '"big"', "373 GiB", inputs=[path, inputs])


def test_run_refuses_a_kernel_intermediate_too_large(tmp_path: Path) -> None:
    """A MaxPool padded by 10^5 on each side with as large a stride: its output is 3x3, its padded input is not."""
    pool = node("MaxPool", ["x"], ["y"], "pool", kernel_shape=[1, 1], pads=[10**5] * 4, strides=[10**5] * 2)
    path = tmp_path / "m.onnx"
    path.write_bytes(model([pool], [value("x", [1, 1, 4, 4])], [value("y", [1, 1, "h", "w"])]).SerializeToString())
    inputs = tmp_path / "x.npy"
    np.save(inputs, np.ones((1, 1, 4, 4), np.float32))
    refused(["run", str(path), "-i", str(inputs)], '"pool"', "padded input", "149 GiB", inputs=[path, inputs])


# --- byte mutations of a valid model -----------------------------------------------------------------------------

VALID = model(
    [
        node("MatMul", ["x", "w"], ["h"], "fc"),
        node("Add", ["h", "b"], ["z"], "bias"),
        node("Relu", ["z"], ["y"], "relu"),
    ],
    [value("x", ["batch", 4])],
    [value("y", ["batch", 3])],
    {"w": np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "b": np.ones(3, np.float32)},
).SerializeToString()


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    """VALID with a few bytes replaced, inserted or deleted, or cut short."""
    data = bytearray(VALID)
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if kind == "replace":
            data[at] = byte
        elif kind == "insert":
            data.insert(at, byte)
        else:
            del data[at]
    return bytes(data)


@settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutants())
def test_a_mutated_model_is_refused_in_one_line_or_compiles(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    refused_or_accepted(["compile", str(path), "--emit", "graph"])


@pytest.mark.slow
@settings(
    derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=mutants())
def test_many_mutated_models_are_refused_in_one_line_or_compile(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    refused_or_accepted(["compile", str(path), "--emit", "graph"])
