"""The ``cimc`` command: compile, opt, run and ops, and one clear line with exit 1 on every kind of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _mlp(path: Path, opset: int = 17) -> Path:
    """A two-layer perceptron with a symbolic batch, saved to ``path``."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "fc1.weight"),
        numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "fc1.bias"),
        numpy_helper.from_array(rng.standard_normal((32, 4)).astype(np.float32), "fc2.weight"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "fc1.weight"], ["h0"], name="/fc1/MatMul"),
        helper.make_node("Add", ["h0", "fc1.bias"], ["h1"], name="/fc1/Add"),
        helper.make_node("Relu", ["h1"], ["h2"], name="/relu/Relu"),
        helper.make_node("MatMul", ["h2", "fc2.weight"], ["logits"], name="/fc2/MatMul"),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8), path)
    return path


@pytest.fixture
def mlp(tmp_path: Path) -> Path:
    return _mlp(tmp_path / "mlp.onnx")


def _x(rows: int = 5) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((rows, 16)).astype(np.float32)


def test_compile_emit_graph_prints_ir(mlp: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["compile", str(mlp), "--emit", "graph"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('"builtin.module"()')
    assert 'loc("/fc1/MatMul")' in out and "tensor<?x16xf32>" in out
    assert "{-#" not in out


def test_compile_to_file_then_opt_then_run(mlp: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    mlir = tmp_path / "mlp.mlir"
    assert main(["compile", str(mlp), "--emit", "graph", "-o", str(mlir)]) == 0
    assert "dialect_resources" in mlir.read_text()
    opt_out = tmp_path / "opt.mlir"
    assert main(["opt", str(mlir), "--passes", "canonicalize", "--verify-each", "-o", str(opt_out)]) == 0
    np.save(tmp_path / "x.npy", _x())
    expected = ort.InferenceSession(str(mlp)).run(None, {"x": _x()})[0]
    for model in (mlp, mlir, opt_out):
        out = tmp_path / f"{model.stem}_y.npz"
        assert main(["run", str(model), "--input", str(tmp_path / "x.npy"), "--output", str(out)]) == 0
        with np.load(out) as result:
            assert list(result.keys()) == ["logits"]
            np.testing.assert_allclose(result["logits"], expected, rtol=1e-5, atol=1e-5)
    assert "logits: float32[5, 4]" in capsys.readouterr().out


def test_run_takes_npz_keyed_by_input_name(mlp: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", x=_x(2), y=np.zeros(2))
    assert main(["run", str(mlp), "--input", str(tmp_path / "in.npz"), "--output", str(tmp_path / "o.npz")]) == 0


def test_pipeline_flags(mlp: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["compile", str(mlp), "--emit", "graph", "--print-ir-after-all", "--timing", "--verify-each"]) == 0
    err = capsys.readouterr().err
    assert "// -----// IR Dump After import //----- //" in err
    assert "// -----// IR Dump After canonicalize //----- //" in err
    assert "Pass execution timing report" in err


def test_ops_lists_supported_operators(capsys: pytest.CaptureFixture) -> None:
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    assert "MatMul" in out and "graph.matmul" in out


def _bad_inputs(tmp_path: Path, mlp: Path) -> dict[str, tuple[list[str], str]]:
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(mlp.read_bytes()[: len(mlp.read_bytes()) // 2])
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    lstm = tmp_path / "lstm.onnx"
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["x", "w", "r"], ["y"], name="lstm_1", hidden_size=2)],
        "g",
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
            for n, s in (("x", [1, 1, 2]), ("w", [1, 8, 2]), ("r", [1, 8, 2]))
        ],  # fmt: skip
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), lstm)
    np.save(tmp_path / "wrong_shape.npy", np.zeros((2, 15), np.float32))
    np.save(tmp_path / "wrong_dtype.npy", np.zeros((2, 16), np.float64))
    bad_mlir = tmp_path / "bad.mlir"
    bad_mlir.write_text('"builtin.module"() ({\n  "graph.nope"() : () -> ()\n}) : () -> ()\n')
    out = str(tmp_path / "out.npz")
    return {
        "truncated": (["compile", str(truncated)], "truncated.onnx"),
        "text file": (["compile", str(text)], "notes.onnx"),
        "missing": (["compile", str(tmp_path / "missing.onnx")], "missing.onnx"),
        "unsupported op": (["compile", str(lstm)], "LSTM (node 'lstm_1', opset 14)"),
        "wrong shape": (["run", str(mlp), "--input", str(tmp_path / "wrong_shape.npy"), "--output", out], "input 'x'"),
        "wrong dtype": (["run", str(mlp), "--input", str(tmp_path / "wrong_dtype.npy"), "--output", out], "float64"),
        "bad mlir": (["opt", str(bad_mlir)], "bad.mlir:2:3: error: unknown op 'graph.nope'"),
    }


@pytest.mark.parametrize(
    "case", ["truncated", "text file", "missing", "unsupported op", "wrong shape", "wrong dtype", "bad mlir"]
)
def test_bad_input_gives_one_line_and_exit_1(case: str, mlp: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    argv, expected = _bad_inputs(tmp_path, mlp)[case]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cimc: error: "), err
    assert expected in err
    assert not (tmp_path / "out.npz").exists()  # nothing half-written


def test_unknown_pass_is_a_clear_error(tmp_path: Path, mlp: Path, capsys: pytest.CaptureFixture) -> None:
    mlir = tmp_path / "m.mlir"
    assert main(["compile", str(mlp), "--emit", "graph", "-o", str(mlir)]) == 0
    assert main(["opt", str(mlir), "--passes", "canonicalize,bogus"]) == 1
    assert "unknown pass 'bogus'" in capsys.readouterr().err


def test_console_script_shows_no_traceback(tmp_path: Path) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    script = Path(sys.executable).with_name("cimc")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "cimc.compiler.cli"]
    proc = subprocess.run([*cmd, "compile", str(text)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("cimc: error:")
    debug = subprocess.run([*cmd, "compile", str(text), "--debug"], capture_output=True, text=True, check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
