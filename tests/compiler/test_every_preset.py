"""Every chip preset loads and runs what it compiles: the bundled digits models and a few test-zoo models compiled
for each preset they fit, with the exact ADC and with the chip's own, written as binaries, loaded and run ideal on
one small batch, equal to the exact ``cim`` executor bit for bit on both of the simulator's paths (the exact fast
path and the simulated reads). ``milan-closed-loop`` holds two 64 x 64 arrays, too few for any of them (refused in
one line), and runs a closed-loop solve instead. The CIFAR ResNet-18 on ``mythic-m1076`` (1024-row arrays, 8-bit
DACs and cells: a 26-bit exact ADC, beyond float32's exact integers) once failed to load (``cim.adc bits 26 >
24``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_solve_onnx import inverse_model
from zoo import ZOO

from cimc.compiler.pipeline import CrossbarOptions, PipelineOptions, compile_binary
from cimc.ir import run_module
from cimc.ir.target.chip import PRESETS, ChipError, load_chip
from cimc.runtime import InferenceSession
from cimc.runtime.analog import AnalogConfig
from cimc.runtime.binary import load_binary
from cimc.runtime.devices import device
from cimc.runtime.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
#: The presets a model of crossbar layers fits: all but the closed-loop chip's two arrays.
LAYER_CHIPS = [name for name in PRESETS if name != "milan-closed-loop"]
#: Zoo models cheap to compile on every preset (the others take 5-10 s each on hermes and mythic: slow).
FAST_ZOO = ["speech_opset21", "ocr_conv_opset18"]
SLOW_ZOO = ["resnet_opset11", "transformer_opset17"]


def compile_and_run(source: Path, folder: Path, chip_name: str, adc: str, calib: dict, inputs: dict) -> None:
    """Compile ``source`` for the preset (``adc``: "exact", an ADC exact for its array, or "chip", the preset's
    ADC bits), write and load the binary, and check its ideal run against the exact executor bit for bit."""
    chip = load_chip(chip_name)
    overrides = {"adc_bits": 0 if adc == "exact" else chip.tile.adc_bits}
    options = PipelineOptions(chip=chip, crossbar=CrossbarOptions.for_chip(chip, **overrides), calib=calib)
    path = folder / f"{source.stem}.{chip_name}.{adc}.cimb"
    compile_binary(source, path, options)
    compiled = load_binary(path)
    assert compiled.meta["chip"] == chip_name and compiled.meta["crossbar"]["adc_bits"] == overrides["adc_bits"]
    exact = run_module(compiled.module, inputs)
    for fast in (True, False):
        out = Simulator(compiled, AnalogConfig.ideal(device("pcm")), exact_fast_path=fast).run(inputs)
        assert sorted(out) == sorted(exact)
        for name, value in exact.items():
            assert out[name].dtype == value.dtype and np.array_equal(out[name], value), (name, fast)


@pytest.mark.parametrize("adc", ["exact", "chip"])
@pytest.mark.parametrize("chip", LAYER_CHIPS)
@pytest.mark.parametrize("model", ["digits_mlp", "digits_cnn"])
def test_bundled_models_run_on_every_preset(model: str, chip: str, adc: str, tmp_path: Path) -> None:
    calib = dict(np.load(MODELS / "digits_calib.npz"))
    x = np.load(MODELS / "digits_test.npz")["x"][:8]
    compile_and_run(MODELS / f"{model}.onnx", tmp_path, chip, adc, calib, {"x": x})


def _zoo(name: str, chip: str, folder: Path) -> None:
    source = folder / f"{name}.onnx"
    onnx.save(ZOO[name].build(), source)
    compile_and_run(source, folder, chip, "exact", ZOO[name].sample_inputs(1, 4), ZOO[name].sample_inputs(0, 2))


@pytest.mark.parametrize("chip", LAYER_CHIPS)
@pytest.mark.parametrize("name", FAST_ZOO)
def test_zoo_models_run_on_every_preset(name: str, chip: str, tmp_path: Path) -> None:
    _zoo(name, chip, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("chip", LAYER_CHIPS)
@pytest.mark.parametrize("name", SLOW_ZOO)
def test_larger_zoo_models_run_on_every_preset(name: str, chip: str, tmp_path: Path) -> None:
    _zoo(name, chip, tmp_path)


def test_the_closed_loop_chip_refuses_layers_and_runs_a_solve(tmp_path: Path) -> None:
    """The digits MLP needs more arrays than the two the chip has: one-line error. The 1-D Poisson matrix, as an
    ONNX ``MatMul(Inverse(A), x)``: the binary holds it exactly (2 : -1 as 126 : -63, ``top_level``), and the loaded
    binary solves it, ideal and with the chip's effects, to numpy's solution."""
    chip = load_chip("milan-closed-loop")
    with pytest.raises(ChipError, match=r"^the model needs \d+ arrays but chip 'milan-closed-loop' has 2 usable"):
        compile_binary(MODELS / "digits_mlp.onnx", tmp_path / "mlp.cimb", PipelineOptions(chip=chip))
    n = 64
    a = (2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)).astype(np.float32)
    path = tmp_path / "poisson.cimb"
    compile_binary(inverse_model(a, batched=False), path, PipelineOptions(chip=chip))
    (program,) = [op for op in load_binary(path).module.walk() if op.name == "cim.program"]
    levels = program.tensor_attr("levels").astype(np.int64)
    magnitude = (levels << np.arange(levels.shape[1]).reshape(1, -1, 1, 1)).sum(axis=1)  # 1-bit parallel cells
    np.testing.assert_array_equal(magnitude[0] - magnitude[1], np.rint(a * 63).astype(np.int64))
    x = np.random.default_rng(0).standard_normal((n, 2)).astype(np.float32)
    expected = np.linalg.solve(a.astype(np.float64), x.astype(np.float64))
    for ideal, tolerance in ((True, 1e-6), (False, 1e-4)):
        (y,) = InferenceSession(path, ideal=ideal).run(None, {"x": x})
        assert np.linalg.norm(y - expected) / np.linalg.norm(expected) < tolerance, ideal


def test_a_full_mythic_array_reads_through_a_26_bit_exact_adc(tmp_path: Path) -> None:
    """One 1024 -> 16 layer fills a Mythic array's 1024 rows: 8-bit DAC codes times 8-bit cells sum to at most 1024
    x 255 x 255 < 2^26, so the exact ADC has 26 bits (beyond float32's 2^24 exact integers: the simulator's reads
    run in float64) and the binary loads and runs bit for bit."""
    rng = np.random.default_rng(0)
    weights = (rng.standard_normal((1024, 16)) / 32).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
        [numpy_helper.from_array(weights, "w")],
    )
    source = tmp_path / "wide.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), source)
    calib = {"x": rng.standard_normal((16, 1024)).astype(np.float32)}
    compile_and_run(source, tmp_path, "mythic-m1076", "exact", calib, {"x": calib["x"][:4]})
    module = load_binary(tmp_path / "wide.mythic-m1076.exact.cimb").module
    assert {op.attr("bits") for op in module.walk() if op.name == "cim.adc"} == {26}


@pytest.mark.slow
@pytest.mark.parametrize("adc", ["exact", "chip"])
def test_cifar_resnet18_runs_on_mythic(adc: str, tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from lowering import resnet18_cifar
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))

    rng = np.random.default_rng(0)
    source = tmp_path / "resnet18_cifar.onnx"
    onnx.save(resnet18_cifar(rng), source)
    calib = {"x": rng.standard_normal((8, 3, 32, 32)).astype(np.float32)}
    x = {"x": rng.standard_normal((2, 3, 32, 32)).astype(np.float32)}
    compile_and_run(source, tmp_path, "mythic-m1076", adc, calib, x)
