"""Random small graphs through the whole chain (issue 14, item 7).

Hypothesis builds small valid ONNX models, on images ``[N, C, H, W]``, sequences ``[N, T, F]`` or vectors ``[N, F]``
(the batch symbolic), from what cimc lowers onto crossbars and the digital ops around them: Conv (kernel sizes, strides,
pads, dilations, auto_pad, groups, depthwise) with or without bias, ConvTranspose with stride == kernel, Gemm (transB,
alpha, beta, with or without bias), MatMul (with or without a bias Add; ``W @ X`` over a sequence's steps),
BatchNormalization (after a layer, where canonicalization folds it, or alone), Relu, LeakyRelu, Clip, Sigmoid,
HardSigmoid, HardSwish and Tanh, residual Adds, Concat of a layer's input with its output, MaxPool, AveragePool and
GlobalAveragePool, Flatten and Reshape; random weights from a drawn seed (dense, or with half or 90% of them 0),
calibration inputs (on a grid of quarters half the time, so codes land on rounding ties), and a small chip (a 2x2 or 3x3
mesh, perhaps with a faulty tile, arrays of 8 to 32 rows and columns, 1- to 4-bit cells, 1- to 3-bit DACs, differential
or offset signs, weights scaled per column or per tensor) with 2- to 8-bit weights, 1- to 8-bit inputs, signed or
unsigned input streams, replication on or off, and exact ADCs (three times in five) or 3- and 5-bit ones over calibrated
or worst-case ranges.

For each model, bit for bit on inputs beyond the calibration range (so codes clip):

- with exact ADCs, the integer quantized reference (the ``quantized`` stage run by the interpreter) equals the
  exact ``cim`` executor (``oracles.assert_chain``); narrower ADCs round the reads, so there the ``cim`` executor
  is the reference;
- the binary compiled for the chip, loaded back, run by the simulator with every analog effect off (on the exact
  fast path and on the simulated read path, ``oracles.assert_ideal_equals``) and by the ``--ideal`` session, equals
  that reference too;

and the float graph (the ``graph`` stage, BatchNorm folded) matches onnxruntime within ``RELATIVE_TOLERANCE``.

Every graph the strategy draws is one cimc compiles: it never draws an op or attribute cimc refuses, so a refusal
here is a failure too. Cases that broke the chain once stay as explicit examples.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from oracles import (
    assert_chain,
    assert_ideal_equals,
    assert_outputs_match,
    ideal_session_outputs,
    lower,
    onnxruntime_outputs,
)

from cimc.compiler.pipeline import CrossbarOptions, PipelineOptions, compile_binary
from cimc.ir import run_module
from cimc.ir.target.chip import Chip, Mesh, load_chip
from cimc.runtime.binary import load_binary

ACTIVATIONS = ("Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh")


@dataclass
class Graph:
    """A model grown one block at a time from one input ``x``: the current value, its static shape, the nodes and
    the initializers (drawn from ``rng``)."""

    draw: st.DrawFn
    rng: np.random.Generator
    #: the input's shape (its batch dim 0: the batch is symbolic), and the current value and its shape
    input_shape: tuple[int, ...]
    value: str = "x"
    shape: tuple[int, ...] = ()
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    crossbar_layers: int = 0
    sparsity: float = 0.0

    def constant(self, array: np.ndarray, dtype: type = np.float32) -> str:
        name = f"c{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    def weights(self, shape: tuple[int, ...], fan_in: int) -> str:
        """Random weights, a ``sparsity`` fraction of them 0 (whole row blocks and columns of zeros, which ``tile``
        leaves without arrays)."""
        weights = self.rng.standard_normal(shape) / np.sqrt(fan_in)
        return self.constant(weights * (self.rng.random(shape) >= self.sparsity))

    def node(self, op_type: str, inputs: list[str], shape: tuple[int, ...], **attrs: object) -> str:
        """Append ``op_type`` on ``inputs``; its output (of ``shape``) becomes the current value."""
        out = f"v{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{op_type}_{len(self.nodes)}", **attrs))
        self.value, self.shape = out, shape
        return out

    # --- the layers -----------------------------------------------------------------------------------------------

    def conv(self, cout: int | None = None, same: bool = False) -> str:
        """A Conv on the current value; ``same`` keeps the spatial shape (odd kernel, stride 1, centred pads) and
        ``cout`` the output channels."""
        draw = self.draw
        n, c, h, w = self.shape
        groups = [g for g in range(1, c + 1) if c % g == 0]
        group = draw(st.sampled_from(groups))
        if cout is None:
            cout = group * draw(st.integers(1, max(1, 6 // group)))
        elif cout % group:
            group = 1
        attrs: dict[str, object] = {"group": group} if group > 1 or draw(st.booleans()) else {}
        if same:
            k = draw(st.sampled_from([1, 3])) if min(h, w) >= 3 else 1
            kernel, dilation, stride = (k, k), (1, 1), (1, 1)
            attrs["pads"] = [k // 2] * 4
        else:
            dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
            stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            attrs |= self.padding(kernel, dilation, stride)
            if dilation != (1, 1) or draw(st.booleans()):
                attrs["dilations"] = list(dilation)
            if stride != (1, 1) or draw(st.booleans()):
                attrs["strides"] = list(stride)
        if draw(st.booleans()):
            attrs["kernel_shape"] = list(kernel)
        fan_in = c // group * kernel[0] * kernel[1]
        inputs = [self.value, self.weights((cout, c // group, *kernel), fan_in)]
        if draw(st.booleans()):
            inputs.append(self.constant(self.rng.standard_normal(cout) * 0.1))
        spatial = [
            self.out_size(size, k, d, s, attrs, axis)
            for axis, (size, k, d, s) in enumerate(zip((h, w), kernel, dilation, stride, strict=True))
        ]
        self.crossbar_layers += 1
        return self.node("Conv", inputs, (n, cout, *spatial), **attrs)

    def padding(self, kernel: tuple[int, ...], dilation: tuple[int, ...], stride: tuple[int, ...]) -> dict:
        """Pads for a window over the current value (explicit, or an auto_pad), such that every output has a
        window that overlaps the input."""
        draw = self.draw
        auto = draw(st.sampled_from(["NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]))
        spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
        if auto == "VALID" and all(span <= size for span, size in zip(spans, self.shape[2:], strict=True)):
            return {"auto_pad": "VALID"}
        if auto.startswith("SAME") and dilation == (1, 1):  # onnxruntime refuses SAME with dilations
            return {"auto_pad": auto}
        begins = [draw(st.integers(0, min(span - 1, 1))) for span in spans]
        ends = [
            max(draw(st.integers(0, min(span - 1, 1))), span - size - begin)
            for span, size, begin in zip(spans, self.shape[2:], begins, strict=True)
        ]
        return {"pads": begins + ends} if any(begins + ends) or draw(st.booleans()) else {}

    @staticmethod
    def out_size(size: int, kernel: int, dilation: int, stride: int, attrs: dict, axis: int) -> int:
        """The output size along one spatial axis (floor mode)."""
        auto = attrs.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            return -(-size // stride)
        pads = attrs.get("pads", [0, 0, 0, 0])
        assert isinstance(pads, list)
        padded = size + (pads[axis] + pads[axis + 2] if auto == "NOTSET" else 0)
        return (padded - (kernel - 1) * dilation - 1) // stride + 1

    def gemm(self, cols: int | None = None) -> str:
        """A MatMul (with a bias Add or not) or, on vectors, a Gemm (transB, alpha and beta drawn, a bias of shape
        (cols,) or (1, cols), or none) on the current value; ``cols`` outputs."""
        draw = self.draw
        *lead, k = self.shape
        cols = cols or draw(st.integers(1, 12))
        self.crossbar_layers += 1
        bias = self.rng.standard_normal(cols) * 0.1
        if len(lead) > 1 or draw(st.booleans()):
            weights = self.weights((k, cols), k)
            out = self.node("MatMul", [self.value, weights], (*lead, cols))
            return self.node("Add", [out, self.constant(bias)], (*lead, cols)) if draw(st.booleans()) else out
        (n,) = lead
        attrs: dict[str, object] = {}
        trans_b = draw(st.booleans())
        if trans_b or draw(st.booleans()):
            attrs["transB"] = int(trans_b)
        if draw(st.booleans()):
            attrs["alpha"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
        inputs = [self.value, self.weights((cols, k) if trans_b else (k, cols), k)]
        if draw(st.booleans()):
            inputs.append(self.constant(bias if draw(st.booleans()) else bias[None]))
            if draw(st.booleans()):
                attrs["beta"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
        return self.node("Gemm", inputs, (n, cols), **attrs)

    def conv_transpose(self) -> str:
        """A ConvTranspose whose square kernel equals its stride (each pixel makes its own block of outputs, as
        U-Net decoders upsample: a crossbar layer)."""
        n, c, h, w = self.shape
        k, cout = self.draw(st.integers(1, 2)), self.draw(st.integers(1, 4))
        inputs = [self.value, self.weights((c, cout, k, k), c)]
        if self.draw(st.booleans()):
            inputs.append(self.constant(self.rng.standard_normal(cout) * 0.1))
        self.crossbar_layers += 1
        return self.node("ConvTranspose", inputs, (n, cout, h * k, w * k), kernel_shape=[k, k], strides=[k, k])

    def mix_steps(self) -> str:
        """A MatMul ``W @ X`` over a sequence's steps (the constant first: the lowering moves the codes into the
        crossbar's layout and the result back)."""
        n, steps, features = self.shape
        rows = self.draw(st.integers(1, 6))
        self.crossbar_layers += 1
        return self.node("MatMul", [self.weights((rows, steps), steps), self.value], (n, rows, features))

    def layer(self) -> str:
        """A crossbar layer for the current rank: a Conv (or a ConvTranspose), a MatMul (or ``W @ X``) or a Gemm."""
        rank, other = len(self.shape), self.draw(st.integers(0, 3)) == 0
        if rank == 4:
            return self.conv_transpose() if other else self.conv()
        return self.mix_steps() if rank == 3 and other else self.gemm()

    def batch_norm(self) -> str:
        c = self.shape[1]
        scale, bias, mean = (self.rng.standard_normal(c) for _ in range(3))
        var = self.rng.uniform(0.5, 2.0, c)
        names = [self.constant(a) for a in (scale, bias, mean, var)]
        return self.node("BatchNormalization", [self.value, *names], self.shape)

    def activation(self) -> str:
        op = self.draw(st.sampled_from(ACTIVATIONS))
        if op == "Clip":
            lo, hi = sorted(self.rng.uniform(-1.0, 1.5, 2))
            bounds = [self.constant(np.float32(lo)), self.constant(np.float32(hi))]
            return self.node("Clip", [self.value, *bounds[: self.draw(st.integers(0, 2))]], self.shape)
        if op == "LeakyRelu":
            return self.node(op, [self.value], self.shape, alpha=self.draw(st.sampled_from([0.01, 0.2])))
        return self.node(op, [self.value], self.shape)

    def block(self) -> None:
        """One block on the current value: a layer (with a BatchNorm and an activation after it, perhaps), a
        residual Add, a Concat of a value with a layer of it, an activation or BatchNorm alone, or a pool."""
        draw = self.draw
        kinds = ["layer", "layer", "residual", "concat", "activation", "batch_norm"]
        kind = draw(st.sampled_from(kinds + (["pool"] if len(self.shape) == 4 else [])))
        if kind == "layer":
            self.layer()
            if len(self.shape) == 4 and draw(st.booleans()):
                self.batch_norm()
            if draw(st.booleans()):
                self.activation()
        elif kind in ("residual", "concat"):
            skip, shape = self.value, self.shape
            axis = 1 if len(shape) == 4 else len(shape) - 1  # of channels or features
            if len(shape) == 4:
                self.conv(shape[1] if kind == "residual" else None, same=True)
            else:
                self.gemm(shape[-1] if kind == "residual" else None)
            if draw(st.booleans()):
                self.activation()
            pair = [skip, self.value] if draw(st.booleans()) else [self.value, skip]
            if kind == "residual":
                self.node("Add", pair, shape)
            else:
                joined = list(shape)
                joined[axis] += self.shape[axis]
                self.node("Concat", pair, tuple(joined), axis=axis - len(shape) * draw(st.booleans()))
        elif kind == "activation":
            self.activation()
        elif kind == "batch_norm":
            self.batch_norm()
        else:
            self.pool()

    def pool(self) -> str:
        draw = self.draw
        n, c, h, w = self.shape
        op = draw(st.sampled_from(["MaxPool", "AveragePool"]))
        kernel = (draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w))))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        attrs: dict[str, object] = {"kernel_shape": list(kernel), "strides": list(stride)}
        if draw(st.booleans()):
            attrs["pads"] = [draw(st.integers(0, k // 2)) for k in kernel * 2]
        if op == "AveragePool" and draw(st.booleans()):
            attrs["count_include_pad"] = 1
        spatial = [
            self.out_size(size, k, 1, s, attrs, axis) for axis, (size, k, s) in enumerate(zip((h, w), kernel, stride))
        ]
        return self.node(op, [self.value], (n, c, *spatial), **attrs)

    def to_vector(self) -> str:
        """From images to vectors: GlobalAveragePool then Flatten or Reshape, or Flatten or Reshape alone."""
        draw = self.draw
        n, c, h, w = self.shape
        if h * w * c > 256 or draw(st.booleans()):  # keeps the next layers' arrays within the chip
            self.node("GlobalAveragePool", [self.value], (n, c, 1, 1))
        n, size = self.shape[0], int(np.prod(self.shape[1:]))
        if draw(st.booleans()):
            return self.node("Flatten", [self.value], (n, size))
        target = self.constant([0, -1] if draw(st.booleans()) else [-1, size], np.int64)
        return self.node("Reshape", [self.value, target], (n, size))

    def model(self, opset: int) -> onnx.ModelProto:
        """The graph as a model whose batch dim is symbolic (``N``), as exporters write it; checked by ONNX."""
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *self.input_shape[1:]])
        y = helper.make_tensor_value_info(self.value, TensorProto.FLOAT, ["N", *self.shape[1:]])
        graph = helper.make_graph(self.nodes, "fuzz", [x], [y], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
        onnx.checker.check_model(model, full_check=True)
        return model


@dataclass(frozen=True)
class Case:
    """A drawn model with its calibration set, its test inputs, the chip and the crossbar options."""

    model: onnx.ModelProto
    calib: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    chip: Chip
    crossbar: CrossbarOptions

    def __repr__(self) -> str:  # what hypothesis prints for a failing case
        return (
            f"Case(nodes={[n.op_type for n in self.model.graph.node]}, chip={self.chip.tile}, crossbar={self.crossbar})"
        )


def small_chip(side: int = 2, faulty: tuple[tuple[int, int], ...] = (), **tile: object) -> Chip:
    """The default chip cut down to a ``side`` x ``side`` mesh with ``faulty`` tiles, its tiles' fields ``tile``
    replaced, 4096 arrays a tile: enough for any model ``cases`` draws (its layers are at most a few hundred rows
    and a few dozen columns, a few thousand arrays replicated on 8x8 arrays of 1-bit cells)."""
    base = load_chip("default")
    spec = dataclasses.replace(base.tile, arrays=4096, **tile)  # type: ignore[arg-type]
    return dataclasses.replace(base, name="small", mesh=Mesh(side, side), tile=spec, faulty_tiles=faulty)


@st.composite
def chips(draw: st.DrawFn) -> Chip:
    """A small chip: a 2x2 or 3x3 mesh (the 3x3 perhaps with a faulty tile), arrays of 8 to 32 rows and columns,
    1- to 4-bit cells, 1- to 3-bit DACs, either sign encoding and weight scaling."""
    side = draw(st.integers(2, 3))
    return small_chip(
        side,
        ((1, 1),) if side == 3 and draw(st.booleans()) else (),
        array_rows=draw(st.sampled_from([8, 16, 32])),
        array_cols=draw(st.sampled_from([8, 16, 32])),
        cell_bits=draw(st.integers(1, 4)),
        dac_bits=draw(st.integers(1, 3)),
        sign_encoding=draw(st.sampled_from(["differential", "offset"])),
        weight_scaling=draw(st.sampled_from(["column", "tensor"])),
    )


@st.composite
def cases(draw: st.DrawFn, max_blocks: int = 3) -> Case:
    """A random model of up to ``max_blocks`` image blocks and as many vector blocks, with at least one crossbar
    layer; its calibration set, test inputs, chip and crossbar options."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.sampled_from([4, 4, 3, 2]))  # images (N, C, H, W), sequences (N, T, F), vectors (N, F)
    if rank == 4:
        shape: tuple[int, ...] = (0, draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    else:
        shape = (0, *[draw(st.integers(1, 4))] * (rank == 3), draw(st.integers(1, 24)))
    graph = Graph(draw, rng, shape, shape=shape, sparsity=draw(st.sampled_from([0.0, 0.0, 0.5, 0.9])))
    if len(shape) == 4:
        for _ in range(draw(st.integers(1, max_blocks))):
            graph.block()
        if draw(st.integers(0, 2)):
            graph.to_vector()
    if len(graph.shape) < 4:
        for _ in range(draw(st.integers(int(len(shape) < 4), max_blocks))):
            graph.block()
    if not graph.crossbar_layers:
        graph.layer()
    model = graph.model(draw(st.sampled_from([14, 17, 21])))
    calib = rng.standard_normal((8, *shape[1:]))
    inputs = rng.standard_normal((draw(st.integers(1, 3)), *shape[1:])) * 1.5
    if draw(st.booleans()):  # on a grid of quarters: codes land on rounding ties
        calib, inputs = np.round(calib * 4) / 4, np.round(inputs * 4) / 4
    chip = draw(chips())
    crossbar = CrossbarOptions.for_chip(
        chip,
        adc_bits=draw(st.sampled_from([0, 0, 0, 3, 5])),
        adc_range=draw(st.sampled_from(["calibrated", "full"])),
        weight_bits=draw(st.sampled_from([2, 3, 4, 6, 8])),
        input_bits=draw(st.sampled_from([1, 2, 4, 5, 8])),
        input_encoding=draw(st.sampled_from(["signed", "unsigned"])),
        replicate=draw(st.sampled_from(["none", "auto"])),
    )
    return Case(model, {"x": calib.astype(np.float32)}, {"x": inputs.astype(np.float32)}, chip, crossbar)


def check_chain(case: Case, folder: Path) -> None:
    """The float graph against onnxruntime; the quantized reference, the ``cim`` executor and the ideal simulator
    bit for bit (with ADCs narrower than exact, which round the reads, the last two)."""
    graph = run_module(lower(case.model, "graph", case.crossbar, case.calib, case.chip), case.inputs)
    assert_outputs_match(graph, onnxruntime_outputs(case.model, case.inputs))
    if case.crossbar.adc_bits == 0:
        reference = assert_chain(case.model, case.inputs, case.crossbar, case.calib, case.chip)
    else:
        reference = run_module(lower(case.model, "cim", case.crossbar, case.calib, case.chip), case.inputs)
    binary = folder / "fuzz.cimb"
    options = PipelineOptions(chip=case.chip, crossbar=case.crossbar, calib=case.calib, placement_effort=0.5)
    compile_binary(case.model, binary, options)
    compiled = load_binary(binary)
    assert_ideal_equals(compiled, case.inputs, reference)
    session = ideal_session_outputs(compiled, case.inputs)
    for name, want in reference.items():
        np.testing.assert_array_equal(session[name], want, err_msg=f"{name}, the --ideal session")


FUZZ_SETTINGS = settings(derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@settings(FUZZ_SETTINGS, max_examples=40)
@given(case=cases(max_blocks=3))
def test_random_graphs_agree_through_the_chain(case: Case) -> None:
    with tempfile.TemporaryDirectory() as folder:
        check_chain(case, Path(folder))


@pytest.mark.slow
@settings(FUZZ_SETTINGS, max_examples=200)
@given(case=cases(max_blocks=5))
def test_more_and_larger_random_graphs_agree_through_the_chain(case: Case) -> None:
    with tempfile.TemporaryDirectory() as folder:
        check_chain(case, Path(folder))


# --- cases that broke the chain once ------------------------------------------------------------------------------


def one_node_case(node: onnx.NodeProto, x: tuple[int, ...], y: tuple[int, ...], weights: dict, chip: Chip) -> Case:
    """A model of ``node`` alone from input ``x`` (shape after the batch) to output ``y``, with ``weights``;
    calibration and test inputs from seed 0, exact crossbar options for ``chip``."""
    graph = helper.make_graph(
        [node],
        "regression",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *y])],
        [numpy_helper.from_array(np.asarray(w, np.float32), name) for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    rng = np.random.default_rng(0)
    calib, inputs = (rng.standard_normal((n, *x)).astype(np.float32) for n in (8, 3))
    return Case(model, {"x": calib}, {"x": inputs}, chip, CrossbarOptions.for_chip(chip, adc_bits=0))


def test_a_conv_whose_last_row_block_is_all_zero(tmp_path: Path) -> None:
    """A 1x1 Conv over 9 channels on 8-row arrays whose 9th channel's weights are 0: ``tile`` programs no array for
    that row block, and the ideal fast path took the layer's depth from its blocks (8 rows) instead of its codes (9),
    refusing the input ("the layer reads 8 channels, the input has 9")."""
    weights = np.random.default_rng(1).standard_normal((2, 9, 1, 1))
    weights[:, 8] = 0
    conv = helper.make_node("Conv", ["x", "w"], ["y"])
    check_chain(one_node_case(conv, (9, 2, 3), (2, 2, 3), {"w": weights}, small_chip(array_rows=8)), tmp_path)


def test_a_grouped_conv_whose_weights_quantize_to_a_finer_block_diagonal(tmp_path: Path) -> None:
    """A Conv of 2 groups over 2 channels with 3x1 kernels, one weight nonzero: its matrix (6 rows, 3 taps a
    channel) is block diagonal for 6 groups of one row, and the ideal fast path took 6 groups, splitting channels'
    taps: its outputs lost their inputs (in the fuzzer: 2-bit weights scaled per tensor rounding all but one to 0).
    Groups divide the channels now."""
    weights = np.zeros((6, 1, 3, 1))
    weights[1, 0, 1, 0] = 1.0
    conv = helper.make_node("Conv", ["x", "w"], ["y"], group=2)
    check_chain(one_node_case(conv, (2, 4, 6), (6, 2, 6), {"w": weights}, small_chip()), tmp_path)
