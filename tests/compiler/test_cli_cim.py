"""``cimc compile --emit quantized|cim`` and ``cimc run --stage quantized|cim``: the crossbar stages from the shell,
their flags, and one clear line with exit 1 on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from refusal import refused

from cimc.compiler import CrossbarOptions, PipelineOptions, compile_onnx
from cimc.compiler.cli import main
from cimc.ir import run_module

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "models" / "digits_cnn.onnx"
TEST = ROOT / "models" / "digits_test.npz"


def test_compile_emit_cim_prints_crossbar_ir(capsys: pytest.CaptureFixture) -> None:
    assert main(["compile", str(CNN), "--emit", "cim"]) == 0
    captured = capsys.readouterr()
    for op in ("cim.quantize", "cim.im2col", "cim.bit_planes", "cim.program", "cim.mvm", "cim.adc", "cim.shift_add"):
        assert f'"{op}"' in captured.out, op
    assert '"graph.conv"' not in captured.out and '"cim.digital"' in captured.out


def test_compile_emit_quantized_writes_the_integer_reference(tmp_path: Path) -> None:
    target = tmp_path / "q.mlir"
    assert main(["compile", str(CNN), "--emit", "quantized", "-o", str(target)]) == 0
    text = target.read_text()
    assert '"cim.linear"' in text and '"cim.mvm"' not in text and "dialect_resources" in text


def test_run_stage_cim_equals_the_python_api(tmp_path: Path) -> None:
    out = tmp_path / "y.npz"
    flags = ["--cell-bits", "1", "--dac-bits", "2", "--sign-encoding", "offset", "--array-size", "32x32"]
    assert main(["run", str(CNN), "--stage", "cim", "--input", str(TEST), "--output", str(out), *flags]) == 0
    options = CrossbarOptions(cell_bits=1, dac_bits=2, sign_encoding="offset", array_rows=32, array_cols=32)
    module, _ = compile_onnx(CNN, PipelineOptions(emit="cim", crossbar=options))
    expected = run_module(module, {"x": np.load(TEST)["x"]})
    with np.load(out) as got:
        assert got.files == list(expected)
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name])


def test_run_stage_quantized_and_cim_agree(tmp_path: Path) -> None:
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(["run", str(CNN), "--stage", "quantized", "--input", str(TEST), "--output", str(a)]) == 0
    assert main(["run", str(CNN), "--stage", "cim", "--input", str(TEST), "--output", str(b)]) == 0
    with np.load(a) as x, np.load(b) as y:
        np.testing.assert_array_equal(x["logits"], y["logits"])


def test_a_float_model_without_calibration_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    alone = tmp_path / "cnn.onnx"
    shutil.copy(CNN, alone)
    assert main(["compile", str(alone), "--emit", "cim"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cimc: error: ") and str(alone) in err and "--calib" in err
    assert len(err.strip().splitlines()) == 1


def test_explicit_calibration_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    alone = tmp_path / "cnn.onnx"
    shutil.copy(CNN, alone)
    calib = ROOT / "models" / "digits_calib.npz"
    assert main(["compile", str(alone), "--emit", "cim", "--calib", str(calib), "-o", str(tmp_path / "c.mlir")]) == 0
    assert f"calibration: ranges measured on {calib} (--calib)" in capsys.readouterr().out.splitlines()


def test_the_compile_line_says_which_calibration_file_was_used(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A bundled model is calibrated on its bundled set, and says so; a model that needs none says it read none."""
    assert main(["compile", str(CNN), "-o", str(tmp_path / "c.cimb"), "--placement-effort", "1"]) == 0
    line = f"calibration: ranges measured on {ROOT / 'models' / 'digits_calib.npz'} (the bundled model's own set)"
    assert line in capsys.readouterr().out.splitlines()
    relu = tmp_path / "relu.onnx"
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), relu)
    calib = ROOT / "models" / "digits_calib.npz"
    assert main(["compile", str(relu), "--emit", "cim", "-o", str(tmp_path / "r.mlir"), "--calib", str(calib)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("calibration: none read (no float layer to quantize")


def test_a_calibration_file_without_the_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    wrong = tmp_path / "calib.npz"
    np.savez(wrong, images=np.zeros((2, 1, 8, 8), np.float32))
    assert main(["compile", str(CNN), "--emit", "cim", "--calib", str(wrong)]) == 1
    err = capsys.readouterr().err
    assert str(wrong) in err and "'x'" in err


def test_bad_array_size_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["compile", str(CNN), "--emit", "cim", "--array-size", "64"])
    assert exit_.value.code == 2 and "ROWSxCOLS" in capsys.readouterr().err


@pytest.mark.parametrize("effort", ["0", "-1", "nan", "inf", "ten"])
def test_placement_effort_must_be_a_positive_number(effort: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["compile", str(CNN), "--placement-effort", effort])
    message = f"argument --placement-effort: '{effort}' is not a finite number > 0"
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cell-bits", "99"], "argument --cell-bits: '99' is not an integer from 1 to 8"),
        (["--dac-bits", "0"], "argument --dac-bits: '0' is not an integer from 1 to 8"),
        (["--input-bits", "0"], "argument --input-bits: '0' is not an integer from 1 to 16"),
        (["--weight-bits", "0"], "argument --weight-bits: '0' is not an integer from 2 to 16"),
        (["--array-budget", "-2", "--replicate", "auto"], "argument --array-budget: '-2' is not an integer >= 0"),
    ],
)
def test_out_of_range_bits_are_refused(flags: list[str], message: str) -> None:
    """The flag the user gave is blamed when the arguments are parsed, not the pass option it sets."""
    assert message in refused(["compile", str(CNN), "--emit", "cim", *flags])


def test_stage_is_for_onnx_models(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ir = tmp_path / "m.mlir"
    assert main(["compile", str(CNN), "--emit", "graph", "-o", str(ir)]) == 0
    assert main(["run", str(ir), "--stage", "cim", "--input", str(TEST)]) == 1
    assert "--stage" in capsys.readouterr().err


def test_compile_prints_the_crossbar_report_and_writes_its_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """With the IR in a file the report goes to stdout; its JSON has one entry per crossbar layer, arrays summing
    to the total (digits CNN: 9x8, 72x16, 144x32 and 32x10 matrices on 64x64 arrays, 4 slices x 2 signs each)."""
    target = tmp_path / "report.json"
    args = ["compile", str(CNN), "--emit", "cim", "-o", str(tmp_path / "c.mlir"), "--report-json", str(target)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Crossbar layers" in out and "conv1" in out
    report = json.loads(target.read_text())
    assert [layer["arrays"] for layer in report["layers"]] == [8, 16, 24, 8]
    assert report["arrays"] == 56


def test_compile_for_hermes_reports_its_8_bit_adcs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The chip's converters are the default: HERMES's 8-bit DACs and ADCs, the ADCs narrower than an exact read
    of rows x 255 x 255 (conv1 9 rows: 20 bits; conv2 72: 23; conv3 144: 24; fc 32: 21) and their full scale
    calibrated; ``--adc-range full`` keeps the worst case, ``--adc-bits 0`` asks for exact ADCs."""
    target = tmp_path / "report.json"
    args = ["compile", str(CNN), "--chip", "hermes", "--emit", "cim", "-o", str(tmp_path / "c.mlir")]
    assert main([*args, "--report-json", str(target)]) == 0
    out = capsys.readouterr().out
    assert "DAC bits  ADC bits  ADC exact  full scale  range       narrower" in out
    layers = json.loads(target.read_text())["layers"]
    assert [(layer["dac_bits"], layer["adc_bits"], layer["adc_exact_bits"]) for layer in layers] == [
        (8, 8, 20),
        (8, 8, 23),
        (8, 8, 24),
        (8, 8, 21),
    ]
    assert all(layer["adc_range"] == "calibrated" and 8 <= layer["adc_full_scale_bits"] < 20 for layer in layers)
    binary = ["compile", str(CNN), "--chip", "hermes", "-o", str(tmp_path / "c.cimb"), "--placement-effort", "1"]
    lines = {}
    for flags in ([], ["--adc-range", "full"], ["--adc-bits", "0"], ["--adc-bits", "10", "--dac-bits", "4"]):
        assert main([*binary, *flags]) == 0
        lines[" ".join(flags)] = capsys.readouterr().out.splitlines()[1]
    narrow = "narrower than an exact read (20-24 bits) on 4 of 4 layers (conv1, conv2, conv3, fc); full scale "
    assert lines[""].startswith("converters: 8-bit DACs, 8-bit ADCs, " + narrow)
    assert lines[""].endswith(" bits, calibrated on the calibration inputs")
    assert lines["--adc-range full"] == "converters: 8-bit DACs, 8-bit ADCs, " + narrow + "20-24 bits, the worst case"
    assert lines["--adc-bits 0"] == "converters: 8-bit DACs, exact ADCs (20-24 bits)"
    # 4-bit DAC steps: exact reads need rows x 15 x 255 (16-20 bits); the flags override the chip
    assert lines["--adc-bits 10 --dac-bits 4"].startswith(
        "converters: 4-bit DACs, 10-bit ADCs, narrower than an exact read (16-20 bits) on 4 of 4 layers"
    )
