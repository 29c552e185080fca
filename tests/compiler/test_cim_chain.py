"""The oracle chain of the crossbar lowering, end to end on whole models:

- the exact ``cim`` executor (bit planes, sliced arrays, ADCs, shift-add, row-block accumulation) equals the
  integer quantized reference (``quantized`` stage: one integer GEMM per layer) bit for bit with exact ADCs, on
  the bundled models and on models no one here wrote (residual, depthwise, transformer, speech, OCR, and the
  PyTorch exports), under several chip parameters;
- on a QDQ model from onnxruntime's quantizer the ``cim`` outputs match onnxruntime within one output step;
- 8-bit float models keep their fp32 top-1 accuracy within 0.5 points;
- array counts per layer equal the closed form.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from oracles import assert_chain, lower
from zoo import ZOO

from cimc.compiler import CrossbarOptions
from cimc.ir import run_module
from cimc.ir.dialects.cim import AdcOp, DequantizeOp, ProgramOp

MODELS = Path(__file__).resolve().parents[2] / "models"
EXPORTS = Path(__file__).resolve().parents[1] / "data" / "torch_exports"
TEST = dict(np.load(MODELS / "digits_test.npz"))
CALIB = dict(np.load(MODELS / "digits_calib.npz"))

#: Chip parameters the chain must hold under: the default (2-bit cells, 1-bit DACs, differential pairs, 64x64),
#: offset encoding with 1-bit cells and 2-bit DACs, and 4-bit cells with 3-bit DACs (planes that do not divide
#: the input bits) on 32x48 arrays with 6-bit weights and 5-bit inputs.
CHIPS = {
    "default": CrossbarOptions(),
    "offset-1b-cells": CrossbarOptions(cell_bits=1, dac_bits=2, sign_encoding="offset"),
    "4b-cells-32x48": CrossbarOptions(
        cell_bits=4, dac_bits=3, array_rows=32, array_cols=48, weight_bits=6, input_bits=5
    ),
}


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("model", ["digits_mlp.onnx", "digits_cnn.onnx"])
def test_bundled_models_cim_equals_integer_reference(model: str, chip: str) -> None:
    assert_chain(MODELS / model, {"x": TEST["x"][:64]}, CHIPS[chip])


ZOO_CHAIN = ["resnet_opset11", "mobilenet_opset17", "transformer_opset17", "qdq_resnet_opset13", "speech_opset21"]


@pytest.mark.parametrize("name", ZOO_CHAIN)
def test_zoo_models_cim_equals_integer_reference(name: str) -> None:
    entry = ZOO[name]
    model = entry.build()
    calib = entry.sample_inputs(100, 4)
    assert_chain(model, entry.sample_inputs(0, 2), CHIPS["default"], calib)


@pytest.mark.parametrize("name", ["resnet_ts.onnx", "mbv2_dynamo.onnx", "encoder_ts.onnx"])
def test_pytorch_exports_cim_equals_integer_reference(name: str) -> None:
    model = onnx.load(EXPORTS / name)
    rng = np.random.default_rng(0)
    inputs = {}
    for value in model.graph.input:
        dims = [d.dim_value or {"batch": 2, "seq": 16}.get(d.dim_param, 2) for d in value.type.tensor_type.shape.dim]
        if value.type.tensor_type.elem_type == onnx.TensorProto.INT64:
            inputs[value.name] = (
                rng.integers(0, 100, dims) if value.name == "ids" else np.ones(dims, np.int64)
            ).astype(np.int64)
        else:
            inputs[value.name] = rng.standard_normal(dims).astype(np.float32)
    assert_chain(EXPORTS / name, inputs, CrossbarOptions(), calib=inputs)


@pytest.mark.parametrize("model", ["digits_mlp.onnx", "digits_cnn.onnx"])
def test_8bit_accuracy_within_half_a_point_of_fp32(model: str) -> None:
    session = ort.InferenceSession(MODELS / model, providers=["CPUExecutionProvider"])
    fp32 = session.run(None, {"x": TEST["x"]})[0].argmax(1)
    cim = run_module(lower(MODELS / model, "cim"), {"x": TEST["x"]})
    ours = next(iter(cim.values())).argmax(1)
    fp32_accuracy, cim_accuracy = (fp32 == TEST["y"]).mean(), (ours == TEST["y"]).mean()
    assert cim_accuracy >= fp32_accuracy - 0.005, (cim_accuracy, fp32_accuracy)


@pytest.fixture(scope="module")
def qdq_digits_cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits CNN statically quantized to QDQ by onnxruntime's quantizer (per-channel int8 weights, uint8
    activations calibrated on the bundled calibration set)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Calibration(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter({"x": CALIB["x"][i : i + 16]} for i in range(0, len(CALIB["x"]), 16))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    target = tmp_path_factory.mktemp("qdq") / "digits_cnn_qdq.onnx"
    quantize_static(
        MODELS / "digits_cnn.onnx",
        target,
        Calibration(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return target


def test_qdq_cnn_matches_onnxruntime_within_one_output_step(qdq_digits_cnn: Path) -> None:
    model = onnx.load(qdq_digits_cnn)
    producer = {out: node for node in model.graph.node for out in node.output}[model.graph.output[0].name]
    assert producer.op_type == "DequantizeLinear"
    scales = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    step = float(scales[producer.input[1]])
    session = ort.InferenceSession(qdq_digits_cnn, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": TEST["x"]})[0]
    got = next(iter(run_module(lower(qdq_digits_cnn, "cim"), {"x": TEST["x"]}).values()))
    assert np.abs(got - expected).max() <= step * (1 + 1e-6)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


def test_qdq_cnn_needs_no_calibration(qdq_digits_cnn: Path, tmp_path: Path) -> None:
    """A QDQ model keeps its own scales: it lowers from a folder with no calibration set."""
    alone = tmp_path / "model.onnx"
    alone.write_bytes(qdq_digits_cnn.read_bytes())
    lower(alone, "cim")


def _layers(module) -> dict[str, list[ProgramOp]]:
    layers: dict[str, list[ProgramOp]] = {}
    for op in module.walk():
        if isinstance(op, ProgramOp):
            layers.setdefault(op.location.name, []).append(op)
    return layers


@pytest.mark.parametrize("chip", CHIPS)
def test_array_counts_equal_the_closed_form(chip: str) -> None:
    """Dense layers: ceil(rows / array rows) x ceil(cols / array cols) x ceil(weight bits / cell bits) x signs."""
    options = CHIPS[chip]
    module = lower(MODELS / "digits_cnn.onnx", "cim", options)
    shapes = {
        op.location.name: (op.attributes["cim.weights"].value, op.result.type.shape[-1])
        for op in module.walk()
        if isinstance(op, DequantizeOp)
    }
    layers = _layers(module)
    assert layers.keys() == shapes.keys() and layers
    signs = 2 if options.sign_encoding == "differential" else 1
    for name, programs in layers.items():
        weights, cols = shapes[name]
        rows = weights // cols
        expected = (
            math.ceil(rows / options.array_rows)
            * math.ceil(cols / options.array_cols)
            * math.ceil(options.weight_bits / options.cell_bits)
            * signs
        )
        assert sum(p.arrays for p in programs) == expected, name


def test_a_narrow_adc_loses_what_it_drops() -> None:
    """With 4-bit ADCs on arrays that need 5 to 8 bits, reads are rounded: outputs move away from the exact ones.
    Over the worst-case range each ADC drops the bits its exact read has beyond 4; calibrated, at most as many."""
    exact = lower(MODELS / "digits_cnn.onnx", "cim")
    full = lower(MODELS / "digits_cnn.onnx", "cim", CrossbarOptions(adc_bits=4, adc_range="full"))
    calibrated = lower(MODELS / "digits_cnn.onnx", "cim", CrossbarOptions(adc_bits=4))
    worst = [op.attr("full_scale_bits") - 4 for op in exact.walk() if isinstance(op, AdcOp)]
    assert [op.dropped_bits for op in full.walk() if isinstance(op, AdcOp)] == worst
    dropped = [op.dropped_bits for op in calibrated.walk() if isinstance(op, AdcOp)]
    assert all(d <= w for d, w in zip(dropped, worst, strict=True)) and dropped != worst
    x = {"x": TEST["x"][:100]}
    a = next(iter(run_module(exact, x).values()))
    for narrow in (full, calibrated):
        assert not np.array_equal(a, next(iter(run_module(narrow, x).values())))


def test_lowering_is_deterministic() -> None:
    """Same model, options and calibration: byte-identical crossbar IR, resources included."""
    from cimc.ir import print_module

    options = CrossbarOptions(replicate="auto", sign_encoding="offset")
    texts = {print_module(lower(MODELS / "digits_cnn.onnx", "cim", options), resources=True) for _ in range(2)}
    assert len(texts) == 1
