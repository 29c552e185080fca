"""fold-constants on the shape arithmetic exporters emit: the chain folds to a constant shape where the shape
is known, folds partly where a dimension is dynamic, and the function computes what it did."""

from __future__ import annotations

import numpy as np
import pytest

from cimc.ir import PassManager, TensorType, VerifyError, parse_module, print_module, run_module
from cimc.ir.dialects.graph import ConstantOp
from cimc.ir.types import F32


def _flatten(graph, x_type: TensorType):
    """reshape(x, concat(unsqueeze(gather(shape(x), 0)), unsqueeze(gather(shape(x), 1) * gather(shape(x), 2))))"""
    g = graph({"x": x_type})
    x = g.inputs["x"]
    shape = g.op("Shape", x).result
    dims = [g.op("Gather", shape, g.const(np.array(i, np.int64)), loc=f"dim{i}", axis=0).result for i in range(3)]
    inner = g.op("Mul", dims[1], dims[2], loc="inner").result
    axes = g.const(np.array([0], np.int64))
    parts = [g.op("Unsqueeze", d, axes, loc=f"unsqueeze_{i}").result for i, d in enumerate([dims[0], inner])]
    target = g.op("Concat", *parts, loc="target", axis=0).result
    reshape = g.op("Reshape", x, target, loc="flatten")
    return g, g.finish([reshape.result]), reshape


def test_static_chain_folds_to_a_constant_shape(graph) -> None:
    g, module, reshape = _flatten(graph, TensorType((3, 4, 5), F32))
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    before = run_module(module, [x])["y0"]
    PassManager("fold-constants", verify_each=True).run(module)
    target = reshape.operands[1].op
    assert isinstance(target, ConstantOp)
    assert target.value.tolist() == [3, 20]
    assert g.op_names(module) == ["graph.constant", "graph.reshape", "func.return"]
    np.testing.assert_array_equal(run_module(module, [x])["y0"], before)


def test_dynamic_batch_folds_the_static_part(graph) -> None:
    g, module, reshape = _flatten(graph, TensorType((None, 4, 5), F32))
    PassManager("fold-constants", verify_each=True).run(module)
    names = g.op_names(module)
    assert "graph.mul" not in names  # 4 * 5 is known...
    assert names.count("graph.gather") == 1  # ...the batch size is not
    for batch in (1, 7):
        x = np.random.default_rng(batch).standard_normal((batch, 4, 5)).astype(np.float32)
        np.testing.assert_array_equal(run_module(module, [x])["y0"], x.reshape(batch, 20))


def test_a_failing_fold_names_the_node(graph) -> None:
    g = graph({})
    data = g.const(np.array([1, 2, 3], np.int64))
    gather = g.op("Gather", data, g.const(np.array(5, np.int64)), loc="bad_gather", axis=0)
    module = g.finish([gather.result])
    with pytest.raises(VerifyError, match=r"'graph.gather' op at loc\(\"bad_gather\"\).*out of range"):
        PassManager("fold-constants").run(module)


def test_elided_weights_are_left_alone(graph, rng) -> None:
    g = graph({})
    weight = g.const(rng.standard_normal((8, 8)).astype(np.float32), "fc.weight")
    transpose = g.op("Transpose", weight, loc="transpose")
    module = parse_module(print_module(g.finish([transpose.result])))  # printed without its resources
    PassManager("fold-constants", verify_each=True).run(module)
    assert g.op_names(module) == ["graph.constant", "graph.transpose", "func.return"]


def test_folded_blobs_are_named_after_the_node(graph, rng) -> None:
    g = graph({})
    weight = rng.standard_normal((8, 8)).astype(np.float32)
    transpose = g.op("Transpose", g.const(weight, "fc.weight"), loc="fc.weight_t")
    module = g.finish([transpose.result])
    PassManager("fold-constants", verify_each=True).run(module)
    assert "dense_resource<fc.weight_t>" in print_module(module)
    np.testing.assert_array_equal(run_module(module, [])["y0"], weight.T)
