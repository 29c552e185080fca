"""canonicalize on a small residual CNN as exporters write it: what it removes is gone, the function computes
what it did, and a second run changes nothing."""

from __future__ import annotations

import numpy as np

from cimc.ir import PassManager, TensorType, print_module, run_module
from cimc.ir.types import F32


def _residual_cnn(graph, rng: np.random.Generator):
    """conv-bn-relu, conv-bn + skip, relu, dropout, flatten by shape arithmetic (the batch is dynamic, so it
    stays), gemm-bn; plus a dead branch."""
    g = graph({"image": TensorType((None, 3, 6, 6), F32)})

    def const(*shape: int, low: float = -1.0, high: float = 1.0):
        return g.const(rng.uniform(low, high, shape).astype(np.float32))

    def batch_norm(x, channels: int, name: str):
        params = [const(channels, low=0.5), const(channels), const(channels), const(channels, low=0.2, high=2.0)]
        return g.op("BatchNormalization", x, *params, loc=name).result

    x = g.op("Identity", g.inputs["image"], loc="input_copy").result
    stem = g.op("Conv", x, const(4, 3, 3, 3), const(4), loc="stem", pads=[1, 1, 1, 1]).result
    g.op("Relu", stem, loc="dead_relu")  # an unused output the exporter kept: the Conv has two users until dce
    y = g.op("Relu", batch_norm(stem, 4, "stem_bn"), loc="stem_relu").result
    z = g.op("Conv", y, const(4, 4, 3, 3), None, loc="conv2", pads=[1, 1, 1, 1]).result
    y = g.op("Relu", g.op("Add", batch_norm(z, 4, "bn2"), y, loc="skip").result).result
    y = g.op("Dropout", y, loc="dropout").results[0]
    shape = g.op("Shape", y, loc="shape").result
    batch = g.op("Gather", shape, g.const(np.array([0], np.int64)), loc="batch", axis=0).result
    flat = g.op("Reshape", y, g.op("Concat", batch, g.const(np.array([144], np.int64)), axis=0).result).result
    logits = g.op("Gemm", flat, const(10, 144), const(10), loc="fc", transB=1).result
    return g, g.finish([batch_norm(logits, 10, "fc_bn")])


def test_canonicalize_keeps_the_outputs(graph, rng) -> None:
    g, module = _residual_cnn(graph, rng)
    image = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    before = run_module(module, [image])["y0"]
    PassManager("canonicalize", verify_each=True).run(module)
    names = g.op_names(module)
    for gone in ("graph.identity", "graph.dropout", "graph.batch_norm"):
        assert gone not in names
    assert names.count("graph.relu") == 2
    # rtol for the outputs, plus an atol floor of float32 rounding for outputs that cancel to near zero
    np.testing.assert_allclose(run_module(module, [image])["y0"], before, rtol=1e-5, atol=1e-6)


def test_canonicalize_is_idempotent(graph, rng) -> None:
    _, module = _residual_cnn(graph, rng)
    PassManager("canonicalize").run(module)
    once = print_module(module, resources=True)
    PassManager("canonicalize", verify_each=True).run(module)
    assert print_module(module, resources=True) == once
