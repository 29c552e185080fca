"""The IR core: use lists, replace_all_uses_with, erasure, the verifier's rules, the pass manager."""

from __future__ import annotations

import io

import numpy as np
import pytest

from cimc.ir import (
    FuncOp,
    Location,
    PassManager,
    PipelineError,
    ReturnOp,
    TensorType,
    VerifyError,
    new_module,
    parse_pipeline,
    run_module,
    verify,
)
from cimc.ir.core import Use
from cimc.ir.dialects.graph import AddOp, ConstantOp, ReluOp
from cimc.ir.types import F32, ElementType


def _relu_add() -> tuple:
    """main(x) = relu(x) + x, the ops returned for inspection."""
    func = FuncOp.create("main", [("x", TensorType((None, 4), F32))], [])
    x = func.body.args[0]
    relu = func.body.append(ReluOp.build(x, location=Location("relu_0")))
    add = func.body.append(AddOp.build(relu.result, x))
    func.body.append(ReturnOp([add.result]))
    func.set_output_names(["y"])
    func.update_function_type()
    return new_module([func]), func, relu, add


def test_use_lists_follow_operands() -> None:
    module, func, relu, add = _relu_add()
    x = func.body.args[0]
    assert x.uses == [Use(relu, 0), Use(add, 1)]
    assert relu.result.uses == [Use(add, 0)]
    add.set_operand(0, x)
    assert relu.result.uses == []
    assert x.uses == [Use(relu, 0), Use(add, 1), Use(add, 0)]


def test_replace_all_uses_with_moves_every_use() -> None:
    module, func, relu, add = _relu_add()
    x = func.body.args[0]
    x.replace_all_uses_with(relu.result)  # makes relu use itself: a dominance error the verifier must catch
    assert x.uses == []
    assert {u.op for u in relu.result.uses} == {relu, add}
    with pytest.raises(VerifyError, match="does not dominate"):
        verify(module)


def test_erase_refuses_used_results_and_drops_uses() -> None:
    module, func, relu, add = _relu_add()
    with pytest.raises(ValueError, match="still used"):
        relu.erase()
    add.result.replace_all_uses_with(relu.result)
    add.erase()
    assert add.parent is None
    assert len(func.body.args[0].uses) == 1
    verify(module)
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    assert run_module(module, [x])["y"].tolist() == [[0.0, 2.0, 0.0, 4.0]]


def test_interpreter_matches_numpy() -> None:
    module, *_ = _relu_add()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(run_module(module, {"x": x})["y"], np.maximum(x, 0) + x)


def test_verifier_names_op_location_and_rule() -> None:
    module, func, relu, add = _relu_add()
    relu.attributes["alpha"] = ConstantOp.create(np.ones(1, np.float32)).attributes["value"]
    with pytest.raises(VerifyError, match=r"'graph.relu' op at loc\(\"relu_0\"\): has no attribute 'alpha'"):
        verify(module)


def test_verifier_checks_operand_count() -> None:
    module, func, relu, add = _relu_add()
    bad = AddOp([func.body.args[0]], [TensorType((None, 4), F32)])
    func.body.insert_before(func.return_op, bad)
    with pytest.raises(VerifyError, match="takes operands"):
        verify(module)


def test_verifier_checks_function_type() -> None:
    module, func, relu, add = _relu_add()
    func.return_op.set_operand(0, relu.result)
    func.body.args[0].type = TensorType((2, 4), F32)
    with pytest.raises(VerifyError, match="block argument types differ"):
        verify(module)


def test_return_must_end_block() -> None:
    module, func, relu, add = _relu_add()
    ret = func.return_op
    func.body.remove(ret)
    func.body.insert_before(add, ret)
    with pytest.raises(VerifyError):
        verify(module)


def test_interpreter_rejects_wrong_shape_and_dtype() -> None:
    from cimc.ir import InterpreterError

    module, *_ = _relu_add()
    with pytest.raises(InterpreterError, match=r"input 'x' is float32\[2, 5\] but the model expects tensor<\?x4xf32>"):
        run_module(module, {"x": np.zeros((2, 5), np.float32)})
    with pytest.raises(InterpreterError, match="float64"):
        run_module(module, {"x": np.zeros((2, 4))})
    with pytest.raises(InterpreterError, match="missing"):
        run_module(module, {"y": np.zeros((2, 4), np.float32)})


def test_pipeline_strings() -> None:
    passes = parse_pipeline("canonicalize, dce")
    assert [p.name for p in passes] == ["canonicalize", "dce"]
    with pytest.raises(PipelineError, match="unknown pass 'nope'"):
        parse_pipeline("canonicalize,nope")
    with pytest.raises(PipelineError, match="has no option 'bogus'"):
        parse_pipeline("dce{bogus=1}")


def test_pass_manager_dumps_and_times() -> None:
    module, *_ = _relu_add()
    stream = io.StringIO()
    manager = PassManager("dce", verify_each=True, print_ir_after_all=stream)
    manager.run(module)
    assert "// -----// IR Dump After dce //----- //" in stream.getvalue()
    assert [t.name for t in manager.timings] == ["dce"]


def test_verifier_applies_onnx_type_constraints() -> None:
    func = FuncOp.create("main", [("a", TensorType((2,), F32)), ("b", TensorType((2,), ElementType("f64")))], [])
    a, b = func.body.args
    add = func.body.append(AddOp([a, b], [TensorType((2,), F32)], location=Location("add_0")))
    func.body.append(ReturnOp([add.result]))
    func.update_function_type()
    with pytest.raises(VerifyError, match=r"operand 'A' \(f32\) and operand 'B' \(f64\) must have the same element"):
        verify(new_module([func]))
    relu = ReluOp([a], [TensorType((2,), ElementType("i1"))])
    with pytest.raises(VerifyError, match=r"result 0 has element type i1; ONNX Relu allows"):
        relu.verify_()
