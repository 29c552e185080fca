"""The crossbar report on hand-built ``cim`` and ``quantized`` modules: every figure against a number worked out by
hand from the shapes chosen here (arrays, utilization, reads, ADC conversions, the other encoding, ADC error)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cimc.compiler.crossbar_report import crossbar_report, format_report, report_json
from cimc.compiler.pipeline import CrossbarOptions, PipelineOptions, compile_onnx
from cimc.ir.attributes import ArrayAttr, DenseArrayAttr, FloatAttr, IntAttr, StringAttr, tensor_attr
from cimc.ir.core import Block, Location, Operation, Region, Value, VerifyError
from cimc.ir.dialects.builtin import FuncOp, ModuleOp, ReturnOp, new_module
from cimc.ir.dialects.cim import (
    AccumulateOp,
    AdcOp,
    BitPlanesOp,
    DequantizeOp,
    DigitalOp,
    Im2ColOp,
    LinearOp,
    MvmOp,
    ProgramOp,
    QuantizeOp,
    ShiftAddOp,
    YieldOp,
    exact_adc_bits,
)
from cimc.ir.dialects.graph import BY_ONNX_TYPE
from cimc.ir.interpreter import run_module
from cimc.ir.parser import parse_module
from cimc.ir.printer import print_module
from cimc.ir.types import ElementType, TensorType
from cimc.ir.verifier import verify
from cimc.passes.bit_slice import weight_levels

I64 = ElementType("i64")
MODELS = Path(__file__).resolve().parents[2] / "models"


class ModuleBuilder:
    """A ``main`` function with one f32 input, built op by op."""

    def __init__(self, shape: tuple[int | None, ...]) -> None:
        self.func = FuncOp.create("main", [("x", TensorType(shape, ElementType("f32")))], [])
        self.input = self.func.arguments[0]

    def add(self, op: Operation) -> Operation:
        return self.func.body.append(op)

    def quantize(self, value: Value) -> Value:
        attributes = {"scale": FloatAttr(0.1), "zero_point": IntAttr(0), "bits": IntAttr(8)}
        return self.add(QuantizeOp.build(value, attributes=attributes)).result

    def digital(
        self, onnx_type: str, values: list[Value], location: str, reason: str | None = None, **attrs: object
    ) -> Value:
        """A ``cim.digital`` running one graph op on ``values``."""
        body = Block([v.type for v in values])
        work = body.append(BY_ONNX_TYPE[onnx_type].build(*body.args, attributes=attrs, location=Location(location)))
        body.append(YieldOp([work.result]))
        op = DigitalOp(values, [work.result.type], regions=[Region([body])], location=Location(location))
        if reason is not None:
            op.attributes["cim.reason"] = StringAttr(reason)
        return self.add(op).result

    def finish(self, *outputs: Value) -> ModuleOp:
        self.func.body.append(ReturnOp(list(outputs)))
        self.func.update_function_type()
        module = new_module([self.func])
        verify(module)
        return module


def sliced_layer(
    b: ModuleBuilder,
    codes: Value,
    name: str,
    blocks: Sequence[tuple[int, int, int, int]],
    columns: int,
    *,
    kind: str,
    weights: int,
    encoding: str = "differential",
    weight_bits: int = 8,
    cell_bits: int = 2,
    dac_bits: int = 1,
    adc_bits: int | None = None,
    replication: int = 1,
    rng: np.random.Generator | None = None,
) -> Value:
    """A crossbar layer as ``bit-slice`` writes it, from blocks ``(row_offset, rows, first column, end column)``;
    weights drawn from ``rng``, else 0."""
    loc = Location(name)
    bit_planes = {"dac_bits": IntAttr(dac_bits), "input_bits": IntAttr(8)}
    planes = b.add(BitPlanesOp.build(codes, attributes=bit_planes, location=loc)).result
    partials = []
    for index, (offset, rows, c0, c1) in enumerate(blocks):
        top = 1 << (weight_bits - 1)
        block = np.zeros((rows, c1 - c0), np.int64) if rng is None else rng.integers(-top, top, (rows, c1 - c0))
        levels, weight_offset = weight_levels(block, weight_bits, cell_bits, encoding)
        program = ProgramOp.build(
            attributes={
                "levels": tensor_attr(levels, f"{name}.r{index}"),
                "weight_bits": IntAttr(weight_bits),
                "cell_bits": IntAttr(cell_bits),
                "sign_encoding": StringAttr(encoding),
                "array_rows": IntAttr(64),
                "array_cols": IntAttr(64),
                "replication": IntAttr(replication),
            },
            location=loc,
        )
        b.add(program)
        mvm = b.add(MvmOp.build(planes, program.result, attributes={"row_offset": IntAttr(offset)}, location=loc))
        exact = exact_adc_bits(rows, dac_bits, cell_bits)
        adc_attrs = {"bits": IntAttr(adc_bits or exact), "full_scale_bits": IntAttr(exact)}
        adc = b.add(AdcOp.build(mvm.result, attributes=adc_attrs, location=loc))
        shift = {"dac_bits": IntAttr(dac_bits), "cell_bits": IntAttr(cell_bits)}
        if weight_offset:
            shift |= {"weight_offset": IntAttr(weight_offset), "row_offset": IntAttr(offset), "rows": IntAttr(rows)}
        offset_codes = codes if weight_offset else None
        partials.append(b.add(ShiftAddOp.build(adc.result, offset_codes, attributes=shift, location=loc)).result)
    offsets = DenseArrayAttr(I64, tuple(c0 for _, _, c0, _ in blocks))
    accumulate = AccumulateOp.build(partials, attributes={"col_offsets": offsets, "columns": IntAttr(columns)})
    return dequantize(b, b.add(accumulate).result, name, columns, kind, weights)


def dequantize(b: ModuleBuilder, acc: Value, name: str, columns: int, kind: str, weights: int) -> Value:
    attributes = {
        "scale": tensor_attr(np.full(columns, 0.01), f"{name}.scale"),
        "weight_sums": tensor_attr(np.zeros(columns, np.int64), f"{name}.sums"),
        "cim.kind": StringAttr(kind),
        "cim.weights": IntAttr(weights),
    }
    return b.add(DequantizeOp.build(acc, attributes=attributes, location=Location(name))).result


def dense_module(**options: object) -> ModuleOp:
    """fc1: a 100 x 70 Gemm on 64 x 64 arrays, two row blocks (64 and 36 rows) over all 70 columns."""
    b = ModuleBuilder((None, 100))
    y = sliced_layer(
        b, b.quantize(b.input), "fc1", [(0, 64, 0, 70), (64, 36, 0, 70)], 70, kind="gemm", weights=7000, **options
    )
    return b.finish(y)


def test_dense_layer_arrays_reads_conversions() -> None:
    (layer,) = crossbar_report(dense_module()).layers
    assert (layer.name, layer.kind, layer.rows, layer.columns, layer.weights) == ("fc1", "gemm", 100, 70, 7000)
    assert (layer.row_blocks, layer.vectors, layer.planes, layer.slices, layer.cell_bits) == (2, 1, 8, 4, 2)
    # closed form: ceil(100/64) x ceil(70/64) x 4 slices x 2 signs
    assert layer.arrays == 2 * 2 * 4 * 2 == 32
    assert layer.cell_utilization == 7000 * 4 * 2 / (32 * 64 * 64)
    assert layer.array_reads == 1 * 8 * 32
    # 8 planes x 2 signs x 4 slices x 70 columns, per block
    assert layer.adc_conversions == 8 * 2 * 4 * (70 + 70) == 8960
    diff, offset = layer.encodings["differential"], layer.encodings["offset"]
    assert (diff.arrays, diff.adc_conversions, diff.row_sums) == (32, 8960, 0)
    assert (offset.arrays, offset.adc_conversions, offset.row_sums) == (16, 4480, 2)


def test_ir_printed_without_its_weights() -> None:
    """Parsed from text whose resources were elided: the same figures, none of them read from the weights."""
    module = dense_module(rng=np.random.default_rng(0))
    elided = parse_module(print_module(module))
    assert crossbar_report(elided) == crossbar_report(module)
    (layer,) = crossbar_report(elided).layers
    assert (layer.arrays, layer.adc_conversions, layer.weight_bits) == (32, 8960, 8)


def test_adc_error_bound_of_a_narrow_adc() -> None:
    (layer,) = crossbar_report(dense_module(adc_bits=6)).layers
    # block 0: 64 rows x 1 x 3 = 192 -> 8 exact bits, 2 dropped, off by <= 2; block 1: 108 -> 7 bits, 1 dropped, <= 1
    assert (layer.adc_exact_bits, layer.adc_bits, layer.adc_dropped_bits) == (8, 6, 2)
    shift_add = 2 * (2**8 - 1) * (1 + 4 + 16 + 64)  # signs x sum of plane weights x sum of slice weights
    assert layer.adc_error == shift_add * (2 + 1) == 130050
    assert layer.adc_relative_error == 130050 / (100 * 255 * 2**7)
    # 7-bit weights take as many slices of 2-bit cells: the same error, over half the full scale
    (layer,) = crossbar_report(dense_module(adc_bits=6, weight_bits=7)).layers
    assert (layer.weight_bits, layer.slices, layer.adc_error) == (7, 4, 130050)
    assert layer.adc_relative_error == 130050 / (100 * 255 * 2**6)
    (exact,) = crossbar_report(dense_module()).layers
    assert (exact.adc_exact_bits, exact.adc_bits, exact.adc_dropped_bits, exact.adc_error) == (8, 8, 0, 0)


def test_adc_error_bound_holds_when_run() -> None:
    """The interpreter runs a layer of random levels with 5-bit ADCs and exact ones: the accumulators differ, by no
    more than the bound."""
    module = dense_module(adc_bits=5, rng=np.random.default_rng(0))
    (layer,) = crossbar_report(module).layers
    x = np.random.default_rng(1).uniform(0, 25.5, (32, 100)).astype(np.float32)  # codes 0..255
    accumulators = []

    def observe(op: Operation, args: list[np.ndarray]) -> None:
        if isinstance(op, DequantizeOp):
            accumulators.append(args[0].astype(np.int64))

    run_module(module, {"x": x}, observe)
    for adc in (op for op in module.walk() if isinstance(op, AdcOp)):
        adc.attributes["bits"] = adc.attributes["full_scale_bits"]
    run_module(module, {"x": x}, observe)
    narrow, exact = accumulators
    assert 0 < np.abs(narrow - exact).max() <= layer.adc_error


@pytest.mark.parametrize(("rows", "cell_bits", "adc_bits"), [(64, 2, 6), (36, 2, 3), (7, 1, 1), (5, 1, 1), (3, 3, 2)])
def test_adc_read_error_is_the_worst_over_every_current(rows: int, cell_bits: int, adc_bits: int) -> None:
    """One block of one slice: the bound is 2 signs x 8 planes' weights x the worst single read, found here by
    running ``cim.adc`` on every current a column can carry (saturation included)."""
    b = ModuleBuilder((None, rows))
    y = sliced_layer(
        b,
        b.quantize(b.input),
        "fc",
        [(0, rows, 0, 3)],
        3,
        kind="gemm",
        weights=3 * rows,
        weight_bits=cell_bits,  # one slice
        cell_bits=cell_bits,
        adc_bits=adc_bits,
    )
    module = b.finish(y)
    adc = next(op for op in module.walk() if isinstance(op, AdcOp))
    currents = np.arange(rows * (2**cell_bits - 1) + 1, dtype=np.int32)
    worst = int(np.abs(adc.evaluate([currents])[0] - currents).max())
    (layer,) = crossbar_report(module).layers
    assert layer.adc_error == worst * 2 * (2**8 - 1)


def test_offset_encoding_with_replication() -> None:
    b = ModuleBuilder((None, 64))
    y = sliced_layer(
        b, b.quantize(b.input), "fc", [(0, 64, 0, 10)], 10, kind="matmul", weights=640, encoding="offset", replication=2
    )
    (layer,) = crossbar_report(b.finish(y)).layers
    assert (layer.sign_encoding, layer.replication, layer.weight_bits) == ("offset", 2, 8)
    assert layer.arrays == 1 * 1 * 4 * 1 * 2  # row blocks x column blocks x slices x 1 sign x replicas
    assert layer.cell_utilization == 640 * 4 * 2 / (8 * 64 * 64)
    assert layer.array_reads == 8 * 4  # replicas serve other vectors: no extra reads
    assert layer.adc_conversions == 8 * 1 * 4 * 10
    diff, offset = layer.encodings["differential"], layer.encodings["offset"]
    assert (diff.arrays, diff.adc_conversions, diff.row_sums) == (16, 640, 0)
    assert (offset.arrays, offset.adc_conversions, offset.row_sums) == (8, 320, 1)


def grouped_conv_module() -> ModuleOp:
    """conv: 8 -> 16 channels in 2 groups, 3x3 on 4x4, so K = 72 (block-diagonal: group 0 rows 0-35 -> columns 0-7,
    group 1 rows 36-71 -> columns 8-15). Tiled at 64 rows: block 0 holds columns 0-15, block 1 (8 rows) only 8-15.
    Then a ReLU, the layout change back, and a MatMul of two activations, left digital with its reason."""
    b = ModuleBuilder((None, 8, 4, 4))
    window = {"kernel_shape": (3, 3), "strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1)}
    attributes = {key: DenseArrayAttr(I64, value) for key, value in window.items()}
    patches = b.add(Im2ColOp.build(b.quantize(b.input), attributes=attributes, location=Location("conv"))).result
    y = sliced_layer(
        b, patches, "conv", [(0, 64, 0, 16), (64, 8, 8, 16)], 16, kind="grouped conv", weights=16 * 4 * 9, dac_bits=2
    )
    y = b.digital("Relu", [y], "relu")
    y = b.digital("Transpose", [y], "conv", perm=DenseArrayAttr(I64, (0, 3, 1, 2)))
    y = b.digital("Relu", [y], "relu2")
    y = b.digital("MatMul", [y, y], "scores", reason="weights are not constant")
    return b.finish(y)


def test_grouped_conv_vectors_and_partial_columns() -> None:
    report = crossbar_report(grouped_conv_module())
    (layer,) = report.layers
    assert (layer.kind, layer.rows, layer.columns, layer.weights, layer.row_blocks) == ("grouped conv", 72, 16, 576, 2)
    assert (layer.vectors, layer.planes, layer.dac_bits) == (16, 4, 2)  # 4x4 output pixels; 8 bits 2 at a time
    assert layer.arrays == 8 + 8  # each block: 2 signs x 4 slices x 1 column block
    assert layer.cell_utilization == 576 * 4 * 2 / (16 * 64 * 64)
    assert layer.array_reads == 16 * 4 * 16
    assert layer.adc_conversions == 16 * 4 * 2 * 4 * (16 + 8)
    assert layer.encodings["offset"].row_sums == 16 * 2


def test_digital_work_rows_counts_and_reasons() -> None:
    report = crossbar_report(grouped_conv_module())
    assert [(w.op, w.location, w.reason) for w in report.digital] == [
        ("graph.relu", "relu", None),
        ("graph.transpose", "conv", None),
        ("graph.relu", "relu2", None),
        ("graph.matmul", "scores", "weights are not constant"),
    ]
    assert report.digital_counts == {"graph.relu": 2, "graph.matmul": 1, "graph.transpose": 1}
    assert [w.location for w in report.refused] == ["scores"]


def test_totals_over_layers() -> None:
    b = ModuleBuilder((None, 100))
    codes = b.quantize(b.input)
    fc1 = sliced_layer(b, codes, "fc1", [(0, 64, 0, 70), (64, 36, 0, 70)], 70, kind="gemm", weights=7000)
    fc2 = sliced_layer(b, b.quantize(fc1), "fc2", [(0, 64, 0, 10), (64, 6, 0, 10)], 10, kind="gemm", weights=700)
    totals = crossbar_report(b.finish(fc2)).totals
    assert (totals.layers, totals.weights, totals.arrays) == (2, 7700, 32 + 16)
    assert totals.cell_utilization == (7000 + 700) * 8 / (48 * 64 * 64)
    assert totals.adc_conversions == 8960 + 8 * 2 * 4 * (10 + 10)
    assert totals.encodings["offset"].arrays == 24
    assert totals.encodings["offset"].row_sums == 4


def quantized_module() -> ModuleOp:
    """fc1 at the ``quantized`` stage, already cut into two ``cim.linear`` row blocks, over 3 tokens a sample."""
    b = ModuleBuilder((None, 3, 100))
    codes = b.quantize(b.input)
    partials = []
    for offset, rows in ((0, 64), (64, 36)):
        weights = tensor_attr(np.ones((rows, 70), np.int8), f"fc1.r{offset}")
        attributes = {
            "weights": weights,
            "weight_bits": IntAttr(6),
            "input_bits": IntAttr(8),
            "row_offset": IntAttr(offset),
        }
        partials.append(b.add(LinearOp.build(codes, attributes=attributes, location=Location("fc1"))).result)
    offsets = DenseArrayAttr(I64, (0, 0))
    acc = b.add(AccumulateOp.build(partials, attributes={"col_offsets": offsets, "columns": IntAttr(70)})).result
    return b.finish(dequantize(b, acc, "fc1", 70, "matmul", 7000))


def test_quantized_stage_lists_shapes_without_arrays() -> None:
    report = crossbar_report(quantized_module())
    (layer,) = report.layers
    assert (layer.name, layer.kind, layer.rows, layer.columns) == ("fc1", "matmul", 100, 70)
    assert (layer.row_blocks, layer.vectors) == (2, 3)  # 3 tokens a sample
    assert (layer.input_bits, layer.weight_bits) == (8, 6)
    assert (layer.arrays, layer.cell_utilization, layer.adc_conversions, layer.encodings) == (None, None, None, {})
    assert report.totals.arrays is None
    text = format_report(report)
    assert "fc1    matmul  100 x 70    7,000       2       6        8     -       -  -         -       -     -" in text
    assert "Sign encodings" not in text


def test_format_report_tables() -> None:
    text = format_report(crossbar_report(grouped_conv_module()))
    lines = text.splitlines()
    assert lines[0] == "Crossbar report: 1 crossbar layer, 576 weights, 16 arrays, 4 digital ops"
    header = lines.index(
        "layer  kind           matrix  weights  blocks  w bits  in bits  cell  slices  signs  repl  arrays  util"
    )
    assert lines[header + 2] == (
        "conv   grouped conv  72 x 16      576       2       8        8     2       4  diff      1      16  7.0%"
    )
    assert lines[header + 3] == "total" + " " * 29 + "576" + " " * 58 + "16  7.0%"
    assert "conv        16       4        1,024    12,288" in text
    assert "conv          2        10         10          10  exact  no              0            0         0" in text
    assert "conv   differential           16              8         12,288            6,144               32" in text
    assert "graph.relu           2" in text
    assert "scores  graph.matmul  weights are not constant" in text
    assert max(map(len, lines)) <= 120


def test_report_json_is_plain_data() -> None:
    report = crossbar_report(grouped_conv_module())
    data = json.loads(json.dumps(report_json(report)))
    assert data["arrays"] == 16
    (layer,) = data["layers"]
    assert (layer["name"], layer["arrays"], layer["adc_conversions"]) == ("conv", 16, 12288)
    assert layer["encodings"]["offset"] == {"arrays": 8, "adc_conversions": 6144, "row_sums": 32}
    assert data["digital_ops"][3] == {"op": "graph.matmul", "location": "scores", "reason": "weights are not constant"}
    assert data["digital_op_counts"] == {"graph.relu": 2, "graph.matmul": 1, "graph.transpose": 1}
    assert data["totals"]["encodings"]["differential"]["arrays"] == 16
    assert math.isclose(data["totals"]["cell_utilization"], 576 * 8 / (16 * 4096))


def test_malformed_layers_are_named() -> None:
    b = ModuleBuilder((None, 4))
    acc = b.add(BY_ONNX_TYPE["Cast"].build(b.input, attributes={"to": IntAttr(6)})).result
    with pytest.raises(VerifyError, match=r"'cim.dequantize' op at loc\(\"fc\"\): its accumulators come from "):
        crossbar_report(b.finish(dequantize(b, acc, "fc", 4, "gemm", 16)))
    b = ModuleBuilder((None, 100))
    codes = b.quantize(b.input)
    y = sliced_layer(b, codes, "fc1", [(0, 64, 0, 70), (64, 36, 0, 70)], 70, kind="gemm", weights=7000)
    program = next(op for op in b.func.body.ops if isinstance(op, ProgramOp))
    program.attributes["replication"] = IntAttr(2)
    with pytest.raises(VerifyError, match=r"at loc\(\"fc1\"\): the blocks of its layer differ in replication \(1, 2\)"):
        crossbar_report(b.finish(y))
    module = quantized_module()
    next(op for op in module.walk() if isinstance(op, LinearOp)).attributes["weight_bits"] = IntAttr(7)
    with pytest.raises(VerifyError, match=r"at loc\(\"fc1\"\): the blocks of its layer differ in weight_bits \(6, 7\)"):
        crossbar_report(module)


@pytest.mark.parametrize(("encoding", "replicate"), [("differential", "none"), ("offset", "auto")])
def test_bundled_cnn_arrays_follow_the_closed_form(encoding: str, replicate: str) -> None:
    """digits_cnn compiled to the cim stage: each layer's matrix is its ONNX weight's ([C * kh * kw, M] for a Conv,
    [K, N] for the Gemm) and its arrays are ceil(K / 64) x ceil(N / 64) x ceil(8 / 2) slices x signs x replication."""
    model = onnx.load(MODELS / "digits_cnn.onnx")
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    matrices = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            filters, channels, *kernel = shapes[node.input[1]]
            matrices[node.name] = (channels * math.prod(kernel), filters)
        elif node.op_type == "Gemm":  # transB=1: the weight is [N, K]
            matrices[node.name] = shapes[node.input[1]][::-1]
    crossbar = CrossbarOptions(sign_encoding=encoding, replicate=replicate)
    options = PipelineOptions(emit="cim", calib=str(MODELS / "digits_calib.npz"), crossbar=crossbar)
    report = crossbar_report(compile_onnx(MODELS / "digits_cnn.onnx", options)[0])
    assert {layer.name: (layer.rows, layer.columns) for layer in report.layers} == matrices
    signs = 2 if encoding == "differential" else 1
    for layer in report.layers:
        k, n = matrices[layer.name]
        assert layer.replication is not None
        assert layer.arrays == math.ceil(k / 64) * math.ceil(n / 64) * 4 * signs * layer.replication
        assert (layer.weight_bits, layer.adc_error) == (8, 0)
    assert any(layer.replication > 1 for layer in report.layers) == (replicate == "auto")


def test_ops_fused_into_the_dequantization_are_listed() -> None:
    """MatMul -> bias Add -> Mul -> Relu -> MatMul compiled to the cim stage: the first layer's dequantization does
    the Add and the Mul (per-channel constants after it); the Relu stays digital, and the second layer fuses nothing."""
    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.array([0.5, -1.0, 2.0], np.float32), "b1"),
        numpy_helper.from_array(np.array([2.0, 0.5, 1.0], np.float32), "s1"),
        numpy_helper.from_array(rng.standard_normal((3, 2)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "b1"], ["h_bias"], name="fc1_bias"),
        helper.make_node("Mul", ["h_bias", "s1"], ["h_scaled"], name="fc1_scale"),
        helper.make_node("Relu", ["h_scaled"], ["h_relu"], name="relu"),
        helper.make_node("MatMul", ["h_relu", "w2"], ["y"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes,
        "fused",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = PipelineOptions(emit="cim", calib={"x": rng.standard_normal((16, 4)).astype(np.float32)})
    report = crossbar_report(compile_onnx(model, options)[0])
    assert [(layer.name, layer.fused) for layer in report.layers] == [("fc1", ("fc1_bias", "fc1_scale")), ("fc2", ())]
    assert [(work.op, work.location) for work in report.digital] == [("graph.relu", "relu")]
    assert [layer["fused"] for layer in json.loads(json.dumps(report_json(report)))["layers"]] == [
        ["fc1_bias", "fc1_scale"],
        [],
    ]
    lines = format_report(report).splitlines()
    title = lines.index(
        "Fused into the dequantization (per-channel ops done by a layer's cim.dequantize, not a digital unit)"
    )
    assert lines[title + 1 : title + 5] == [
        "layer  fused ONNX nodes",
        "-----  -------------------",
        "fc1    fc1_bias, fc1_scale",
        "",
    ]


def test_fused_nodes_past_the_line_width_are_counted() -> None:
    """Names that would pass 120 columns: as many as fit are named, the rest counted."""
    module = quantized_module()
    names = tuple(f"/decoder/block{i}/affine/Mul" for i in range(8))  # 26 characters each
    dequantize_op = next(op for op in module.walk() if isinstance(op, DequantizeOp))
    dequantize_op.attributes["cim.fused"] = ArrayAttr(tuple(StringAttr(name) for name in names))
    report = crossbar_report(module)
    assert report.layers[0].fused == names
    lines = format_report(report).splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("Fused into the dequantization"))
    # the names start at column 7 ("layer" and 2 spaces), leaving 113: three names and ", +5 more" take 91; four
    # and ", +4 more" would take 119
    assert lines[title + 3] == "fc1    " + ", ".join(names[:3]) + ", +5 more"
    assert max(map(len, lines)) <= 120
    dequantize_op.attributes["cim.fused"] = StringAttr("fc1_bias")
    with pytest.raises(VerifyError, match=r"at loc\(\"fc1\"\): 'cim.fused' must be an array of ONNX node names"):
        crossbar_report(module)
