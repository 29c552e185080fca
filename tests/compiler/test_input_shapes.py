"""Fixing dynamic input dims (``input_shapes``, ``--input-shape``): static types from the import on, a binary
whose MAC count is the conv's by hand, the performance note when dims stay dynamic, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler.cli import main
from cimc.compiler.onnx_importer import OnnxImportError, import_onnx
from cimc.compiler.pipeline import PipelineOptions, compile_binary, compile_onnx
from cimc.runtime.binary import load_binary
from cimc.runtime.performance import estimate, format_performance

C_IN, C_OUT, K = 1, 4, 3
H = W = 8
#: the conv's multiply-accumulates per sample: no padding, stride 1
MACS = (H - K + 1) * (W - K + 1) * C_OUT * C_IN * K * K
CALIB = {"x": np.random.default_rng(1).standard_normal((4, C_IN, H, W)).astype(np.float32)}
FAST = {"placement_effort": 2.0, "calib": CALIB}


def _conv(path: Path) -> Path:
    """A 3x3 conv and a ReLU over an input of dynamic batch, height and width, saved to ``path``."""
    weight = np.random.default_rng(0).standard_normal((C_OUT, C_IN, K, K)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[K, K]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", C_IN, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", C_OUT, None, None])],
        [numpy_helper.from_array(weight, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _conv(tmp_path_factory.mktemp("model") / "conv.onnx")


def test_fixed_dims_are_static_from_the_graph_stage_on(model: Path) -> None:
    module, _ = compile_onnx(model, PipelineOptions(input_shapes={"x": (None, C_IN, H, W)}))
    text = str(module)
    assert "tensor<?x1x8x8xf32>" in text and "tensor<?x4x6x6xf32>" in text
    assert "?x1x?x?" not in text and "?x4x?x?" not in text
    assert "tensor<?x1x?x?xf32>" in str(compile_onnx(model)[0])


def test_the_binary_counts_the_real_macs_and_records_the_shapes(model: Path, tmp_path: Path) -> None:
    compile_binary(model, tmp_path / "fixed.cimb", PipelineOptions(input_shapes={"x": (None, C_IN, H, W)}, **FAST))
    loaded = load_binary(tmp_path / "fixed.cimb")
    performance = estimate(loaded)
    assert performance.energy.macs == MACS == 1296
    assert performance.dynamic_dims == () and performance.to_dict()["dynamic_dims"] == []
    assert not format_performance(performance).startswith("Note:")
    assert loaded.meta["input_shapes"] == {"x": [None, C_IN, H, W]}


def test_dynamic_dims_are_reported_with_a_note(model: Path, tmp_path: Path) -> None:
    compile_binary(model, tmp_path / "dynamic.cimb", PipelineOptions(**FAST))
    loaded = load_binary(tmp_path / "dynamic.cimb")
    performance = estimate(loaded)
    assert performance.energy.macs == C_OUT * C_IN * K * K  # a 1x1 output: each unknown dim counted as 1
    assert performance.dynamic_dims == ("x[?x1x?x?]",)
    assert json.loads(json.dumps(performance.to_dict()))["dynamic_dims"] == ["x[?x1x?x?]"]
    assert format_performance(performance).splitlines()[0] == (
        "Note: input x has dynamic dims [?, 1, ?, ?]: these figures count each unknown dim after the batch as 1; "
        "compile with --input-shape x=?x1x<n>x<n> for real sizes"
    )
    assert loaded.meta["input_shapes"] is None


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"image": (None, 1, 8, 8)}, "the model has no input 'image' to give a shape; its inputs: 'x' [?, 1, ?, ?]"),
        ({"x": (1, 8, 8)}, "input 'x' has rank 4 [?, 1, ?, ?], but its given shape [1, 8, 8] has 3 dims"),
        ({"x": (None, 3, 8, 8)}, "input 'x' has static dim 1 of size 1 [?, 1, ?, ?], but the given shape"),
        ({"x": (None, 1, 0, 8)}, "input 'x': size 0 of dim 2 in [?, 1, 0, 8] is not positive"),
    ],
)
def test_bad_shapes_give_one_line_naming_file_and_input(model: Path, shapes: dict, message: str) -> None:
    with pytest.raises(OnnxImportError) as info:
        import_onnx(model, shapes)
    text = str(info.value)
    assert text.startswith(f"{model}: ") and message in text and "\n" not in text


def test_an_unnamed_shape_needs_a_single_input_model(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
        "add",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", "L"]) for name in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "L"])],
    )
    path = tmp_path / "add.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)
    with pytest.raises(OnnxImportError, match=r"has 2 inputs \('a' \[\?, \?\], 'b' \[\?, \?\]\); name the input"):
        import_onnx(path, {"": (None, 5)})
    assert "tensor<?x5xf32>" in str(import_onnx(path, {"a": (None, 5), "b": (None, 5)}))


@pytest.mark.parametrize(
    "flag",
    ["x=?x1x8x8", "?x1x8x8"],  # NAME= may be left out for a single-input model
)
def test_cli_compiles_with_input_shape(model: Path, tmp_path: Path, flag: str, capsys: pytest.CaptureFixture) -> None:
    np.savez(tmp_path / "calib.npz", **CALIB)
    output = tmp_path / "m.cimb"
    argv = ["compile", str(model), "--input-shape", flag, "--calib", str(tmp_path / "calib.npz"), "-o", str(output)]
    assert main([*argv, "--placement-effort", "2"]) == 0
    assert f"wrote {output}" in capsys.readouterr().out
    loaded = load_binary(output)
    assert loaded.meta["input_shapes"] == {"x": [None, C_IN, H, W]}
    assert estimate(loaded).energy.macs == MACS


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["x=3by4"], "--input-shape 'x=3by4': the shape is not sizes joined by x"),
        (["x=?x1x8x8", "x=?x1x4x4"], "--input-shape 'x=?x1x4x4': input 'x' has a shape already"),
        (["?x1x8x8", "y=?x2"], "--input-shape '?x1x8x8': with several --input-shape flags, name each"),
        (["image=?x1x8x8"], "the model has no input 'image' to give a shape; its inputs: 'x' [?, 1, ?, ?]"),
    ],
)
def test_cli_bad_input_shape_is_one_line(
    model: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    argv = ["compile", str(model), "--emit", "graph"]
    for flag in flags:
        argv += ["--input-shape", flag]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("cimc: error: ") and message in err and err.count("\n") == 1
