"""The ONNX importer: hand-built models in, checked against onnxruntime or numpy; bad files out with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler.onnx_importer import OnnxImportError, import_onnx
from cimc.ir.attributes import DenseResourceAttr
from cimc.ir.core import Operation
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.graph import OPSET, ConstantOp
from cimc.ir.interpreter import run_module
from cimc.ir.types import F32, TensorType

FLOAT = TensorProto.FLOAT
ORT_IR_VERSION = 10  # the newest IR version every supported onnxruntime reads


def make_model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: dict[str, np.ndarray] | None = None,
    opset: int = OPSET,
    ir_version: int = ORT_IR_VERSION,
) -> onnx.ModelProto:
    """A model over ``nodes``; ``initializers`` maps names to arrays."""
    tensors = [numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()]
    graph = helper.make_graph(nodes, "test", inputs, outputs, tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)


def tensor(name: str, shape: list[int | str] | None, elem: int = FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def run_cimc(source: onnx.ModelProto | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    module = import_onnx(source)
    results = run_module(module, feeds)
    return [results[name] for name in module.function("main").output_names]


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def ops_named(module: ModuleOp, name: str) -> list[Operation]:
    return [op for op in module.walk() if op.name == name]


def import_error(source: onnx.ModelProto | Path) -> str:
    """The importer's message for a model it must refuse; always a single line."""
    with pytest.raises(OnnxImportError) as info:
        import_onnx(source)
    message = str(info.value)
    assert "\n" not in message
    return message


def mlp() -> onnx.ModelProto:
    """input[batch, 8] -> MatMul -> Add -> Relu -> logits[batch, 4]; the Relu node has no name."""
    rng = np.random.default_rng(0)
    weights = {"fc.weight": rng.standard_normal((8, 4), dtype=np.float32), "fc.bias": np.arange(4, dtype=np.float32)}
    nodes = [
        helper.make_node("MatMul", ["input", "fc.weight"], ["h"], name="fc"),
        helper.make_node("Add", ["h", "fc.bias"], ["z"], name="bias"),
        helper.make_node("Relu", ["z"], ["logits"]),
    ]
    return make_model(nodes, [tensor("input", ["batch", 8])], [tensor("logits", ["batch", 4])], weights)


# --- graphs, types and values ------------------------------------------------------------------------------------


def test_symbolic_batch_dim_becomes_dynamic() -> None:
    model = mlp()
    module = import_onnx(model)
    main = module.function("main")
    assert main.input_names == ["input"] and main.output_names == ["logits"]
    assert main.function_type.inputs == (TensorType((None, 8), F32),)
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 8), dtype=np.float32)
        np.testing.assert_allclose(run_cimc(model, {"input": x})[0], run_ort(model, {"input": x})[0], rtol=1e-5)


def test_negative_dims_are_dynamic() -> None:
    # PaddlePaddle's exporter writes -1 for a dynamic dimension
    model = mlp()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    main = import_onnx(model).function("main")
    assert main.function_type.inputs == (TensorType((None, 8), F32),)


def test_locations_name_the_nodes() -> None:
    text = str(import_onnx(mlp()))
    assert 'loc("fc")' in text and 'loc("bias")' in text
    assert 'loc("Relu_2")' in text  # unnamed nodes are named after their type and index


def test_large_initializers_become_named_resources() -> None:
    module = import_onnx(mlp())
    constants = {op.attributes["value"].type.shape: op for op in module.walk() if isinstance(op, ConstantOp)}
    weight = constants[(8, 4)].attributes["value"]
    assert isinstance(weight, DenseResourceAttr) and weight.blob.name == "fc.weight"
    np.testing.assert_array_equal(constants[(4,)].value, np.arange(4, dtype=np.float32))  # small: inline


def test_initializers_listed_as_inputs_in_old_ir_versions() -> None:
    w = np.random.default_rng(1).standard_normal((3, 2), dtype=np.float32)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    model = make_model([node], [tensor("x", [1, 3]), tensor("w", [3, 2])], [tensor("y", [1, 2])], {"w": w}, 7, 3)
    module = import_onnx(model)
    assert module.function("main").input_names == ["x"]
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(run_cimc(model, {"x": x})[0], x @ w, rtol=1e-6)


def test_outputs_may_be_graph_inputs_and_initializers() -> None:
    w = np.arange(20, dtype=np.float32).reshape(4, 5)
    node = helper.make_node("Relu", ["x"], ["y"])
    model = make_model([node], [tensor("x", [2])], [tensor("y", [2]), tensor("x", [2]), tensor("w", [4, 5])], {"w": w})
    x = np.array([-1.0, 2.0], np.float32)
    y, x_out, w_out = run_cimc(model, {"x": x})
    np.testing.assert_array_equal(y, [0.0, 2.0])
    np.testing.assert_array_equal(x_out, x)
    np.testing.assert_array_equal(w_out, w)


@pytest.mark.parametrize(
    ("form", "value", "expected"),
    [
        ("value", numpy_helper.from_array(np.array([[1.5, -2.0]], np.float32)), np.array([[1.5, -2.0]], np.float32)),
        ("value_float", 0.25, np.array(0.25, np.float32)),
        ("value_floats", [1.0, 2.0], np.array([1.0, 2.0], np.float32)),
        ("value_int", 7, np.array(7, np.int64)),
        ("value_ints", [3, -4], np.array([3, -4], np.int64)),
    ],
)
def test_constant_node_forms(form: str, value: object, expected: np.ndarray) -> None:
    elem = helper.np_dtype_to_tensor_dtype(expected.dtype)
    nodes = [
        helper.make_node("Constant", [], ["c"], name="const", **{form: value}),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    model = make_model(nodes, [tensor("x", [2, 2], elem)], [tensor("y", [2, 2], elem)])
    x = np.arange(4).reshape(2, 2).astype(expected.dtype)
    np.testing.assert_array_equal(run_cimc(model, {"x": x})[0], x + expected)
    assert 'loc("const")' in str(import_onnx(model))


def test_string_constant_is_refused() -> None:
    nodes = [
        helper.make_node("Constant", [], ["c"], name="label", value_string="cat"),
        helper.make_node("Relu", ["x"], ["y"]),
    ]
    model = make_model(nodes, [tensor("x", [1])], [tensor("y", [1])])
    assert import_error(model) == (
        "<onnx.ModelProto>: node 'label' (Constant): "
        "its 'value_string' form is not supported: cimc has no string tensors"
    )


def test_unused_optional_outputs_are_dropped_used_ones_kept() -> None:
    def dropout(outputs: list[str]) -> onnx.ModelProto:
        node = helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop")
        return make_model([node], [tensor("x", [2, 3])], [tensor(n, [2, 3], elem) for n, elem in outputs])

    (drop,) = ops_named(import_onnx(dropout([("y", FLOAT)])), "graph.dropout")
    assert len(drop.results) == 1
    (drop,) = ops_named(import_onnx(dropout([("y", FLOAT), ("mask", TensorProto.BOOL)])), "graph.dropout")
    assert len(drop.results) == 2 and str(drop.results[1].type) == "tensor<2x3xi1>"


def test_types_onnx_cannot_infer_are_inferred_per_node_with_known_values() -> None:
    # ONNX's shape inference gives ReduceSum(data, axes) no rank when axes is an input; an int64[0] input can only
    # be empty, though (reduce over all axes), which per-node inference is told
    nodes = [helper.make_node("ReduceSum", ["data", "axes"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    inputs = [tensor("data", [2, 3]), tensor("axes", [0], TensorProto.INT64)]
    model = make_model(nodes, inputs, [tensor("y", [1, 1])])
    (reduce,) = ops_named(import_onnx(model), "graph.reduce_sum")
    assert str(reduce.result.type) == "tensor<1x1xf32>"
    feeds = {"data": np.arange(6, dtype=np.float32).reshape(2, 3), "axes": np.empty(0, np.int64)}
    np.testing.assert_array_equal(run_cimc(model, feeds)[0], run_ort(model, feeds)[0])


def test_constant_chains_steer_type_inference() -> None:
    # PyTorch's TorchScript exporter computes Slice bounds from constants through Mod and Reshape, which ONNX's
    # data propagation does not follow; then neither Slice's length nor the final Reshape's rank is known to it.
    ints = {
        "seven": np.array(7),
        "six": np.array(6),
        "one": np.array([1]),
        "zero": np.array([0]),
        "tail": np.array([2, 3]),
    }
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Mod", ["seven", "six"], ["m"]),
        helper.make_node("Reshape", ["m", "one"], ["end"]),
        helper.make_node("Slice", ["shape", "zero", "end"], ["batch"]),
        helper.make_node("Concat", ["batch", "tail"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape_out"),
        helper.make_node("Relu", ["r"], ["y"]),
    ]
    initializers = {k: v.astype(np.int64) for k, v in ints.items()}
    model = make_model(nodes, [tensor("x", ["n", 6])], [tensor("y", ["n", 2, 3])], initializers)
    inferred = {v.name: v.type.tensor_type for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    assert "r" not in inferred or not inferred["r"].HasField("shape")  # ONNX alone finds no rank
    module = import_onnx(model)
    (reshape,) = [op for op in ops_named(module, "graph.reshape") if op.location.name == "reshape_out"]
    assert str(reshape.result.type) == "tensor<?x?x?xf32>"  # its rank, from the length the Slice was given
    (first, *_) = ops_named(module, "graph.mod")
    assert first.location.name == "Mod_1"  # the ops stay; folding them is fold-constants' job
    feeds = {"x": np.arange(12, dtype=np.float32).reshape(2, 6)}
    np.testing.assert_array_equal(run_cimc(model, feeds)[0], run_ort(model, feeds)[0])


def test_local_functions_are_inlined() -> None:
    body = [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Add", ["r", "r"], ["b"])]
    double_relu = helper.make_function("local", "DoubleRelu", ["a"], ["b"], body, [helper.make_opsetid("", OPSET)])
    model = make_model(
        [helper.make_node("DoubleRelu", ["x"], ["y"], domain="local")], [tensor("x", [3])], [tensor("y", [3])]
    )
    model.opset_import.append(helper.make_opsetid("local", 1))
    model.functions.append(double_relu)
    np.testing.assert_array_equal(run_cimc(model, {"x": np.array([-1, 2, 3], np.float32)})[0], [0, 4, 6])


# --- numerics against onnxruntime --------------------------------------------------------------------------------


def cnn() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Conv (grouped, padded) -> BatchNormalization -> Relu -> MaxPool -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(2)
    weights = {
        "conv.w": rng.standard_normal((8, 2, 3, 3), dtype=np.float32),
        "conv.b": rng.standard_normal(8, dtype=np.float32),
        "bn.scale": rng.random(8, dtype=np.float32) + 0.5,
        "bn.bias": rng.standard_normal(8, dtype=np.float32),
        "bn.mean": rng.standard_normal(8, dtype=np.float32),
        "bn.var": rng.random(8, dtype=np.float32) + 0.5,
        "fc.w": rng.standard_normal((3, 8), dtype=np.float32),
        "fc.b": rng.standard_normal(3, dtype=np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], name="conv", group=2, pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1),
    ]
    model = make_model(nodes, [tensor("x", ["N", 4, 8, 8])], [tensor("y", ["N", 3])], weights)
    return model, {"x": rng.standard_normal((2, 4, 8, 8), dtype=np.float32)}


def mlp_case() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    return mlp(), {"input": np.random.default_rng(3).standard_normal((4, 8), dtype=np.float32)}


@pytest.mark.parametrize("case", [mlp_case, cnn])
def test_matches_onnxruntime(case) -> None:  # noqa: ANN001 - a model builder
    model, feeds = case()
    for got, want in zip(run_cimc(model, feeds), run_ort(model, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def resnet50(rng: np.random.Generator) -> onnx.ModelProto:
    """ResNet-50's graph (bottleneck stages of 3, 4, 6, 3 blocks; 25.6M weights), He-initialised."""
    nodes, weights = [], {}

    def conv_bn(x: str, cin: int, cout: int, k: int, stride: int, name: str, relu: bool = True) -> str:
        he = np.sqrt(2 / (cin * k * k))
        weights[f"{name}.weight"] = (he * rng.standard_normal((cout, cin, k, k))).astype(np.float32)
        bn = {"scale": 1 + 0.1 * rng.standard_normal(cout), "bias": 0.1 * rng.standard_normal(cout)}
        bn |= {"mean": 0.1 * rng.standard_normal(cout), "var": 1 + 0.1 * rng.random(cout)}
        weights.update({f"{name}.bn.{p}": v.astype(np.float32) for p, v in bn.items()})
        conv = [x, f"{name}.weight"]
        nodes.append(helper.make_node("Conv", conv, [f"{name}.c"], name=name, strides=[stride] * 2, pads=[k // 2] * 4))
        norm = [f"{name}.c", *(f"{name}.bn.{p}" for p in bn)]
        nodes.append(helper.make_node("BatchNormalization", norm, [f"{name}.bn"]))
        if not relu:
            return f"{name}.bn"
        nodes.append(helper.make_node("Relu", [f"{name}.bn"], [f"{name}.r"]))
        return f"{name}.r"

    x = conv_bn("input", 3, 64, 7, 2, "conv1")
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = "pool", 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        for b in range(blocks):
            stride, name = (2 if b == 0 and stage > 0 else 1), f"layer{stage + 1}.{b}"
            h = conv_bn(x, cin, width, 1, 1, f"{name}.conv1")
            h = conv_bn(h, width, width, 3, stride, f"{name}.conv2")
            h = conv_bn(h, width, 4 * width, 1, 1, f"{name}.conv3", relu=False)
            shortcut = conv_bn(x, cin, 4 * width, 1, stride, f"{name}.downsample", relu=False) if b == 0 else x
            nodes.append(helper.make_node("Add", [h, shortcut], [f"{name}.sum"]))
            nodes.append(helper.make_node("Relu", [f"{name}.sum"], [f"{name}.out"]))
            x, cin = f"{name}.out", 4 * width
    weights["fc.weight"] = rng.standard_normal((1000, 2048), dtype=np.float32) * 0.01
    weights["fc.bias"] = np.zeros(1000, np.float32)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1))
    return make_model(nodes, [tensor("input", ["N", 3, 224, 224])], [tensor("logits", ["N", 1000])], weights, 13)


def test_resnet50_matches_onnxruntime(tmp_path: Path) -> None:
    model = resnet50(np.random.default_rng(4))
    path = tmp_path / "resnet50.onnx"
    onnx.save(model, path)
    module = import_onnx(path)  # its speed is measured in benchmarks/import_canonicalize.py, not here
    assert len(ops_named(module, "graph.conv")) == 53
    x = np.random.default_rng(5).standard_normal((1, 3, 224, 224), dtype=np.float32)
    got, (want,) = run_module(module, {"input": x})["logits"], run_ort(model, {"input": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


# --- opsets --------------------------------------------------------------------------------------------------------


def test_opset_11_model_is_converted() -> None:
    # Unsqueeze and ReduceSum took their axes as attributes until opset 13; at OPSET they are inputs
    nodes = [
        helper.make_node("Unsqueeze", ["x"], ["u"], name="unsqueeze", axes=[0]),
        helper.make_node("ReduceSum", ["u"], ["s"], name="sum", axes=[2], keepdims=0),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    model = make_model(nodes, [tensor("x", [3, 4])], [tensor("y", [1, 3])], opset=11)
    module = import_onnx(model)
    (unsqueeze,) = ops_named(module, "graph.unsqueeze")
    assert len(unsqueeze.operands) == 2  # the axes became a constant operand
    assert 'loc("Relu_2")' in str(module)  # unnamed nodes keep their index in the model, not the converted one
    x = np.random.default_rng(6).standard_normal((3, 4), dtype=np.float32)
    np.testing.assert_allclose(run_cimc(model, {"x": x})[0], run_ort(model, {"x": x})[0], rtol=1e-5)


def test_opset_28_model_is_converted() -> None:
    w = np.random.default_rng(7).standard_normal((4, 2), dtype=np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    model = make_model(nodes, [tensor("x", [3, 4])], [tensor("y", [3, 2])], {"w": w}, 28, onnx.IR_VERSION)
    x = np.random.default_rng(8).standard_normal((3, 4), dtype=np.float32)
    np.testing.assert_allclose(run_cimc(model, {"x": x})[0], np.maximum(x @ w, 0), rtol=1e-6)


def test_conversion_failure_names_the_opsets() -> None:
    node = helper.make_node("GlobalMaxPool", ["x"], ["y"])  # changed at opset 22, and onnx has no adapter back
    model = make_model([node], [tensor("x", [1, 2, 3, 3])], [tensor("y", [1, 2, 1, 1])], opset=22)
    assert import_error(model) == (
        f"<onnx.ModelProto>: cannot convert from opset 22 to opset {OPSET}: "
        f"No Adapter From Version $22 for GlobalMaxPool; export the model at opset {OPSET}"
    )


# --- refusals --------------------------------------------------------------------------------------------------------


def test_unsupported_ops_are_listed_at_once() -> None:
    body = helper.make_graph([], "body", [tensor("i", [])], [tensor("i", [])])
    nodes = [
        helper.make_node("LSTM", ["x", "w", "r"], ["y"], name="lstm_1", hidden_size=2),
        helper.make_node("LSTM", ["x", "w", "r"], ["y2"], name="lstm_2", hidden_size=2),
        helper.make_node("Loop", ["n", "c"], ["z"], name="loop", body=body),
        helper.make_node("FusedConv", ["x", "w"], ["f"], domain="com.microsoft"),
        helper.make_node("Relu", ["x"], ["ok"], name="fine"),
    ]
    model = make_model(nodes, [tensor("x", [1, 2, 3])], [tensor("y", [1, 2, 3])], opset=14)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert import_error(model) == (
        "<onnx.ModelProto>: 3 unsupported ops: LSTM (2 nodes 'lstm_1', 'lstm_2', opset 14), "
        "Loop (node 'loop', opset 14, has a subgraph), "
        "FusedConv (domain 'com.microsoft', node 'FusedConv_3', opset 1); supported: see `cimc ops`"
    )


@pytest.mark.parametrize(("x_shape", "y_shape", "value"), [(None, [2], "input 'x'"), ([2], None, "output 'y'")])
def test_unknown_rank_asks_for_a_shape(x_shape: list[int] | None, y_shape: list[int] | None, value: str) -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", x_shape)], [tensor("y", y_shape)])
    assert f"{value} has unknown rank; give it a shape" in import_error(model)


def test_checker_errors_name_the_node() -> None:
    node = helper.make_node("Relu", ["x"], ["y"], name="relu1", alpha=0.5)
    message = import_error(make_model([node], [tensor("x", [2])], [tensor("y", [2])]))
    assert "invalid ONNX model (onnx.checker)" in message and "alpha" in message and "relu1" in message


# --- files -----------------------------------------------------------------------------------------------------------


def test_external_data_is_read_relative_to_the_model(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(mlp(), path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    x = np.random.default_rng(9).standard_normal((2, 8), dtype=np.float32)
    np.testing.assert_allclose(run_cimc(path, {"input": x})[0], run_ort(mlp(), {"input": x})[0], rtol=1e-5)

    unloaded = onnx.load(path, load_external_data=False)
    assert "import the model from its path" in import_error(unloaded)
    (tmp_path / "weights.bin").unlink()
    assert import_error(path) == (
        f"{path}: initializer 'fc.weight' keeps its data in 'weights.bin', which is missing from {tmp_path}; "
        "put that file next to the model"
    )


@pytest.mark.filterwarnings("ignore:The onnxtxt format is experimental")
def test_onnx_text_format_by_extension(tmp_path: Path) -> None:
    path = tmp_path / "model.onnxtxt"
    onnx.save(mlp(), path, format="onnxtxt")
    x = np.ones((1, 8), np.float32)
    np.testing.assert_allclose(run_cimc(path, {"input": x})[0], run_cimc(mlp(), {"input": x})[0])


def test_missing_file(tmp_path: Path) -> None:
    assert import_error(tmp_path / "absent.onnx") == f"{tmp_path / 'absent.onnx'}: no such file; check the path"


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    data = mlp().SerializeToString()
    path.write_bytes(data[: len(data) // 2])
    assert f"{path}: is truncated ({len(data) // 2} bytes; field 'graph' runs past the end)" in import_error(path)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_text(onnx.printer.to_text(mlp()))
    assert import_error(path).startswith(f"{path}: is a text file, not a binary ONNX model; ")


def test_other_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert import_error(path).startswith(f"{path}: is not an ONNX model")
