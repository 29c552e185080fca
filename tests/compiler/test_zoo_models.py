"""Models no one here wrote, imported and run: the zoo (tests/zoo.py) and hypothesis-made random graphs.

For each zoo model the reference interpreter must compute what onnxruntime computes, on the imported module and
after ``canonicalize``; the module must survive print -> parse -> print unchanged, with and without its resource
blobs, and the re-parsed module must compute the same outputs bit for bit. The CRNN ends in an LSTM, which cimc
does not compile: the importer must refuse it in one line naming the node.

onnxruntime runs with its graph optimizations off, so the reference is the ONNX graph as written (its fusions
would otherwise change the rounding, and in the QDQ model move values across quantization steps).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from oracles import assert_outputs_match, onnxruntime_outputs
from zoo import ZOO, ZooModel

from cimc.compiler.onnx_importer import OnnxImportError, import_onnx
from cimc.ir.interpreter import run_module
from cimc.ir.parser import parse_module
from cimc.ir.pass_manager import PassManager
from cimc.ir.printer import print_module
from cimc.ir.verifier import verify

COMPILED = [m for m in ZOO.values() if m.refused_node is None]
REFUSED = [m for m in ZOO.values() if m.refused_node is not None]


@cache
def built(name: str) -> onnx.ModelProto:
    """The zoo model, built once (the QDQ one runs onnxruntime's calibration)."""
    return ZOO[name].build()


@cache
def reference(name: str, batch: int = 2) -> dict[str, np.ndarray]:
    """onnxruntime's outputs for the zoo model on its seed-0 sample inputs."""
    return onnxruntime_outputs(built(name), ZOO[name].sample_inputs(0, batch))


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every zoo model saved as ``<name>.onnx``, as the importer meets models in practice."""
    folder = tmp_path_factory.mktemp("zoo")
    paths = {}
    for name in ZOO:
        paths[name] = folder / f"{name}.onnx"
        onnx.save(built(name), paths[name])
    return paths


def ids(models: list[ZooModel]) -> list[str]:
    """Test ids: the zoo names."""
    return [m.name for m in models]


@pytest.mark.parametrize("model", ZOO.values(), ids=ids(list(ZOO.values())))
def test_zoo_model_is_valid_onnx(model: ZooModel) -> None:
    """Each builder makes checked ONNX whose outputs onnxruntime computes with the declared shapes (batch 2),
    finite and not constant: the zoo itself is sound."""
    proto = built(model.name)
    onnx.checker.check_model(proto, full_check=True)
    outputs = reference(model.name)
    declared = {o.name: o.type.tensor_type.shape.dim for o in proto.graph.output}
    for name, array in outputs.items():
        dims = [d.dim_value if d.HasField("dim_value") else 2 for d in declared[name]]
        assert list(array.shape) == dims
        assert np.all(np.isfinite(array)) and np.ptp(array) > 0


@pytest.mark.parametrize("model", COMPILED, ids=ids(COMPILED))
def test_import_matches_onnxruntime(model: ZooModel, zoo_files: dict[str, Path]) -> None:
    """Batches of 2 and 1: the symbolic batch dim must stay dynamic through the import."""
    module = import_onnx(zoo_files[model.name])
    verify(module)
    for batch in (2, 1):
        assert_outputs_match(run_module(module, model.sample_inputs(0, batch)), reference(model.name, batch))


@pytest.mark.parametrize("model", COMPILED, ids=ids(COMPILED))
def test_canonicalized_matches_onnxruntime(model: ZooModel, zoo_files: dict[str, Path]) -> None:
    module = import_onnx(zoo_files[model.name])
    PassManager("canonicalize", verify_each=True).run(module)
    assert_outputs_match(run_module(module, model.sample_inputs(0)), reference(model.name))


@pytest.mark.parametrize("canonicalized", [False, True], ids=["imported", "canonicalized"])
@pytest.mark.parametrize("model", COMPILED, ids=ids(COMPILED))
def test_print_parse_round_trip(model: ZooModel, canonicalized: bool, zoo_files: dict[str, Path]) -> None:
    """print(parse(print(m))) == print(m) with and without resources; the re-parsed complete text computes the
    same outputs as the module printed, bit for bit. Canonicalized modules hold the constants the passes made."""
    module = import_onnx(zoo_files[model.name])
    if canonicalized:
        PassManager("canonicalize").run(module)
    for resources in (True, False):
        text = print_module(module, resources=resources)
        assert print_module(parse_module(text, f"{model.name}.mlir"), resources=resources) == text
    reparsed = parse_module(print_module(module, resources=True), f"{model.name}.mlir")
    verify(reparsed)
    inputs = model.sample_inputs(1)
    expected, actual = run_module(module, inputs), run_module(reparsed, inputs)
    assert sorted(actual) == sorted(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(actual[name], array, err_msg=f"output '{name}'")


@pytest.mark.parametrize("model", REFUSED, ids=ids(REFUSED))
def test_unsupported_model_is_refused(model: ZooModel, zoo_files: dict[str, Path]) -> None:
    """A model with an op cimc cannot compile fails at import with one line naming the node and its op type."""
    with pytest.raises(OnnxImportError) as caught:
        import_onnx(zoo_files[model.name])
    message = str(caught.value)
    assert "\n" not in message.strip()
    assert model.refused_node in message
    refused_type = next(n.op_type for n in built(model.name).graph.node if n.name == model.refused_node)
    assert refused_type in message


# --- hypothesis: random graphs -----------------------------------------------------------------------------------

_UNARY = ["Relu", "Sigmoid", "Tanh", "Neg", "Abs"]
_BINARY = ["Add", "Sub", "Mul", "Div"]


class _RandomGraph:
    """A DAG grown one node at a time over values whose static shapes are tracked here."""

    def __init__(self, draw: st.DrawFn, rng: np.random.Generator) -> None:
        self.draw = draw
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.used: set[str] = set()

    def constant(self, array: np.ndarray, dtype: type = np.float32) -> str:
        name = f"c{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    def add(self, op_type: str, inputs: list[str], shape: tuple[int, ...], **attrs: object) -> None:
        out = f"v{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"/{op_type}_{len(self.nodes)}", **attrs))
        self.used.update(inputs)
        self.shapes[out] = shape

    def grow(self) -> None:
        """Add one node on values drawn from those made so far."""
        draw = self.draw
        x = draw(st.sampled_from(sorted(self.shapes)))
        shape = self.shapes[x]
        kinds = ["unary", "binary", "matmul", "reshape", "transpose", "concat"] + (["conv"] if len(shape) == 4 else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "unary":
            self.add(draw(st.sampled_from(_UNARY)), [x], shape)
        elif kind == "binary":
            op = draw(st.sampled_from(_BINARY))
            twins = sorted(v for v, s in self.shapes.items() if s == shape and v != x)
            if twins and op != "Div" and draw(st.booleans()):
                other = draw(st.sampled_from(twins))
            else:  # a constant away from 0, broadcast along some axes (leading axes possibly dropped)
                kept = shape[draw(st.integers(0, len(shape))) :]
                dims = tuple(d if draw(st.booleans()) else 1 for d in kept)
                other = self.constant(self.rng.uniform(0.5, 2.0, dims) * self.rng.choice([-1.0, 1.0], dims))
            inputs = [x, other] if op == "Div" or draw(st.booleans()) else [other, x]
            self.add(op, inputs, shape)  # the constant never has more axes or larger dims than x
        elif kind == "matmul":  # numpy.matmul semantics: a rank-1 x is a row vector, the result rank 1
            k = draw(st.integers(1, 5))
            w = self.rng.standard_normal((shape[-1], k)) / np.sqrt(shape[-1])
            self.add("MatMul", [x, self.constant(w)], (*shape[:-1], k))
        elif kind == "reshape":
            target, dims = self.reshape_target(shape)
            self.add("Reshape", [x, target], dims)
        elif kind == "transpose":
            perm = draw(st.permutations(range(len(shape))))
            self.add("Transpose", [x], tuple(shape[p] for p in perm), perm=list(perm))
        elif kind == "concat":
            axis = draw(st.integers(-len(shape), len(shape) - 1))
            extra = list(shape)
            extra[axis] = draw(st.integers(1, 3))
            other = self.constant(self.rng.standard_normal(extra))
            joined = list(shape)
            joined[axis] += extra[axis]
            inputs = [x, other] if draw(st.booleans()) else [other, x]
            self.add("Concat", inputs, tuple(joined), axis=axis)
        else:
            self.conv(x, shape)

    def reshape_target(self, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        """A random shape of the same size: the name of its constant (one dim possibly -1) and its dims."""
        size = int(np.prod(shape))
        factors = [f for f in range(2, size + 1) for _ in range(_multiplicity(size, f))]
        rank = self.draw(st.integers(1, 4))
        dims = [1] * rank
        for f in factors:
            dims[self.draw(st.integers(0, rank - 1))] *= f
        target = list(dims)
        if self.draw(st.booleans()):
            target[self.draw(st.integers(0, rank - 1))] = -1
        return self.constant(target, np.int64), tuple(dims)

    def conv(self, x: str, shape: tuple[int, ...]) -> None:
        draw = self.draw
        n, c, h, w = shape
        cout = draw(st.integers(1, 4))
        kh, kw = draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))
        pad = draw(st.integers(0, 1))
        stride = draw(st.integers(1, 2))
        weight = self.constant(self.rng.standard_normal((cout, c, kh, kw)) / np.sqrt(c * kh * kw))
        inputs = [x, weight] + ([self.constant(self.rng.standard_normal(cout))] if draw(st.booleans()) else [])
        out_h, out_w = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        self.add("Conv", inputs, (n, cout, out_h, out_w), pads=[pad] * 4, strides=[stride] * 2)

    def model(self, opset: int, symbolic_batch: bool) -> onnx.ModelProto:
        """The graph as an ONNX model; with ``symbolic_batch`` the inputs' first dims are declared ``N`` and the
        outputs' dims left to shape inference, as exporters do with a dynamic batch axis."""
        inputs = [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", *s[1:]] if symbolic_batch else s)
            for n, s in self.shapes.items()
            if not n.startswith("v")
        ]
        sinks = [v for v in self.shapes if v.startswith("v") and v not in self.used]
        outputs = [
            helper.make_tensor_value_info(
                v, TensorProto.FLOAT, [None] * len(self.shapes[v]) if symbolic_batch else self.shapes[v]
            )
            for v in sinks
        ]
        graph = helper.make_graph(self.nodes, "random", inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
        onnx.checker.check_model(model, full_check=True)
        return model


def _multiplicity(n: int, f: int) -> int:
    """How often prime ``f`` divides ``n`` (0 for composite ``f``: their primes are counted already)."""
    if any(f % p == 0 for p in range(2, int(f**0.5) + 1)):
        return 0
    count = 0
    while n % f == 0:
        n //= f
        count += 1
    return count


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A small random DAG of elementwise ops, MatMul, Conv, Reshape, Transpose and Concat, with inputs."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    graph = _RandomGraph(draw, rng)
    for name in ["x", "y"][: draw(st.integers(1, 2))]:
        rank = draw(st.sampled_from([2, 3, 4, 4]))  # rank 4 twice as often: Conv needs it
        graph.shapes[name] = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    for _ in range(draw(st.integers(1, 8))):
        graph.grow()
    inputs = {n: rng.standard_normal(s).astype(np.float32) for n, s in graph.shapes.items() if not n.startswith("v")}
    return graph.model(draw(st.sampled_from([13, 17, 21])), draw(st.booleans())), inputs


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs())
def test_random_graphs_match_onnxruntime(case: tuple[onnx.ModelProto, dict[str, np.ndarray]]) -> None:
    model, inputs = case
    module = import_onnx(model)
    verify(module)
    assert_outputs_match(run_module(module, inputs), onnxruntime_outputs(model, inputs))
