"""Bad chip descriptions and chip flags through ``cimc compile``: each refused in one line naming the file and the
field at fault (and the range it admits), before anything is sized by it (issue 14, items 3 and 5)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from refusal import refused

from cimc.ir.target.chip import load_chip

DEFAULT = load_chip("default").to_toml()
MILAN = load_chip("milan-closed-loop").to_toml()
AIHWKIT = load_chip("aihwkit").to_toml()


def tiny_model(folder: Path) -> tuple[Path, Path]:
    """A one-MatMul float model (8 inputs, 4 outputs) and its calibration inputs, written to ``folder``."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, folder / "tiny.onnx")
    np.savez(folder / "calib.npz", x=np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32))
    return folder / "tiny.onnx", folder / "calib.npz"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_model(tmp_path_factory.mktemp("model"))


def _set(text: str, key: str, value: str) -> str:
    """``text`` with the first ``key = ...`` line's value replaced."""
    changed, count = re.subn(rf"^{key} = .*$", lambda _: f"{key} = {value}", text, count=1, flags=re.M)
    assert count == 1, key
    return changed


#: (id, chip text, names the one error line must hold besides the file)
TEXT_CASES = [
    ("mesh-1000x1000", _set(_set(DEFAULT, "rows", "1000"), "cols", "1000"), ["[mesh] rows", "from 1 to 64", "1000"]),
    ("mesh-cols-huge", _set(DEFAULT, "cols", str(2**40)), ["[mesh] cols", "from 1 to 64"]),
    ("mesh-too-many-tiles", _set(_set(DEFAULT, "rows", "64"), "cols", "64"), ["[mesh]", "1024 tiles", "64x64"]),
    ("mesh-rows-zero", _set(DEFAULT, "rows", "0"), ["[mesh] rows"]),
    ("mesh-rows-negative", _set(DEFAULT, "rows", "-5"), ["[mesh] rows", "-5"]),
    ("mesh-rows-float", _set(DEFAULT, "rows", "16.0"), ["[mesh] rows", "a number"]),
    ("mesh-not-a-table", DEFAULT.replace("[mesh]\nrows = 16\ncols = 16\ntorus = false\n", "mesh = 5\n"), ["mesh"]),
    ("torus-string", _set(DEFAULT, "torus", '"yes"'), ["[mesh] torus", "true or false"]),
    ("arrays-int64-max", _set(DEFAULT, "arrays", str(2**63 - 1)), ["[tile] arrays", "from 1 to 4096"]),
    ("arrays-beyond-int64", _set(DEFAULT, "arrays", str(2**63)), ["arrays"]),
    ("arrays-zero", _set(DEFAULT, "arrays", "0"), ["[tile] arrays", "got 0"]),
    ("arrays-string", _set(DEFAULT, "arrays", '"128"'), ["[tile] arrays", "a string"]),
    ("arrays-boolean", _set(DEFAULT, "arrays", "true"), ["[tile] arrays", "a boolean"]),
    ("arrays-list", _set(DEFAULT, "arrays", "[1, 2]"), ["[tile] arrays", "a list"]),
    ("array-rows-huge", _set(DEFAULT, "array_rows", "100000"), ["[tile] array_rows", "from 1 to 4096"]),
    ("array-cols-zero", _set(DEFAULT, "array_cols", "0"), ["[tile] array_cols"]),
    ("cell-bits-99", _set(DEFAULT, "cell_bits", "99"), ["[tile] cell_bits", "from 1 to 8"]),
    ("dac-bits-zero", _set(DEFAULT, "dac_bits", "0"), ["[tile] dac_bits", "from 1 to 8"]),
    ("adc-bits-64", _set(DEFAULT, "adc_bits", "64"), ["[tile] adc_bits", "from 1 to 16"]),
    ("adc-columns-huge", _set(DEFAULT, "adc_columns", "5000"), ["[tile] adc_columns", "4096"]),
    ("read-cycles-huge", _set(DEFAULT, "read_cycles", str(2**40)), ["[tile] read_cycles", "1048576"]),
    ("adc-cycles-negative", _set(DEFAULT, "adc_cycles", "-1"), ["[tile] adc_cycles"]),
    ("buffer-huge", _set(DEFAULT, "buffer_bytes", str(2**40)), ["[tile] buffer_bytes", "1073741824"]),
    ("digital-lanes-zero", _set(DEFAULT, "digital_ops_per_cycle", "0"), ["[tile] digital_ops_per_cycle"]),
    ("device-unknown", _set(DEFAULT, "device", '"dram"'), ["[tile] device", "'rram'"]),
    ("device-number", _set(DEFAULT, "device", "3"), ["[tile] device"]),
    ("link-bits-zero", _set(DEFAULT, "link_bits", "0"), ["[network] link_bits"]),
    ("router-latency-huge", _set(DEFAULT, "router_latency", str(2**62)), ["[network] router_latency"]),
    ("clock-nan", _set(DEFAULT, "clock_hz", "nan"), ["[network] clock_hz", "from 1000 to 1e+12", "nan"]),
    ("clock-inf", _set(DEFAULT, "clock_hz", "inf"), ["[network] clock_hz", "inf"]),
    ("clock-negative", _set(DEFAULT, "clock_hz", "-1.2e9"), ["[network] clock_hz"]),
    ("clock-tiny", _set(DEFAULT, "clock_hz", "1e-300"), ["[network] clock_hz"]),
    ("clock-huge", _set(DEFAULT, "clock_hz", "1e300"), ["[network] clock_hz"]),
    ("energy-nan", _set(DEFAULT, "dac_pj", "nan"), ["[energy] dac_pj"]),
    ("energy-minus-inf", _set(DEFAULT, "adc_pj", "-inf"), ["[energy] adc_pj"]),
    ("energy-huge", _set(DEFAULT, "cell_program_pj", "1e20"), ["[energy] cell_program_pj", "1e+09"]),
    ("energy-negative", _set(DEFAULT, "buffer_byte_pj", "-0.5"), ["[energy] buffer_byte_pj"]),
    ("unknown-field", DEFAULT.replace("cell_bits = 2", "cell_bitz = 2"), ["'cell_bitz'", "did you mean 'cell_bits'"]),
    ("unknown-section", DEFAULT.replace("[energy]", "[energie]"), ["[energie]"]),
    ("unknown-top-level", "colour = 1\n" + DEFAULT, ["'colour'"]),
    ("key-with-newline", '"a\\nb" = 1\n' + DEFAULT, ["unknown field", "a\\u000Ab"]),
    ("missing-section", DEFAULT[: DEFAULT.index("[energy]")], ["missing section [energy]"]),
    ("missing-field", DEFAULT.replace("adc_bits = 8\n", ""), ["missing field [tile] adc_bits"]),
    ("missing-name", DEFAULT.replace('name = "default"\n', ""), ["missing field name"]),
    ("empty-name", _set(DEFAULT, "name", '""'), ["name must not be empty"]),
    ("name-two-lines", _set(DEFAULT, "name", '"a\\nb"'), ["name must be one line"]),
    ("name-too-long", _set(DEFAULT, "name", '"' + "n" * 100 + '"'), ["name", "64"]),
    ("description-huge", _set(DEFAULT, "description", '"' + "d" * 5000 + '"'), ["description", "1024"]),
    ("faulty-far-outside", _set(DEFAULT, "faulty_tiles", "[[999, 999]]"), ["faulty_tiles", "[999, 999]", "16x16"]),
    ("faulty-negative", _set(DEFAULT, "faulty_tiles", "[[-1, -1]]"), ["faulty_tiles", "[-1, -1]"]),
    ("faulty-twice", _set(DEFAULT, "faulty_tiles", "[[0, 3], [0, 3]]"), ["faulty_tiles", "[0, 3]", "twice"]),
    ("faulty-not-a-pair", _set(DEFAULT, "faulty_tiles", "[[0]]"), ["faulty_tiles", "[0]"]),
    ("faulty-floats", _set(DEFAULT, "faulty_tiles", "[[0.0, 1.0]]"), ["faulty_tiles"]),
    ("faulty-string", _set(DEFAULT, "faulty_tiles", '"0,3"'), ["faulty_tiles"]),
    (
        "faulty-every-tile",
        _set(_set(_set(DEFAULT, "rows", "1"), "cols", "2"), "faulty_tiles", "[[0, 0], [0, 1]]"),
        ["faulty_tiles", "all 2 tiles"],
    ),
    ("toml-unfinished", DEFAULT.replace("rows = 16", "rows = "), ["not valid TOML"]),
    ("toml-duplicate-key", DEFAULT.replace("rows = 16", "rows = 16\nrows = 8"), ["not valid TOML"]),
    ("toml-deep-nesting", "x = " + "[" * 5000 + "]" * 5000 + "\n" + DEFAULT, ["not valid TOML", "nested"]),
    ("toml-empty", "", ["missing field name"]),
    ("opamp-gain-zero", _set(MILAN, "gain", "0"), ["[opamp] gain", "from 2 to 1e+12"]),
    ("opamp-v-sat-inf", _set(MILAN, "v_sat", "inf"), ["[opamp] v_sat"]),
    ("opamp-gbw-negative", _set(MILAN, "gbw_hz", "-1e7"), ["[opamp] gbw_hz"]),
    ("periphery-levels-zero", _set(AIHWKIT, "input_levels", "0"), ["[periphery] input_levels"]),
    ("periphery-passes-huge", _set(AIHWKIT, "max_passes", "1000"), ["[periphery] max_passes", "from 1 to 32"]),
    ("periphery-bound-nan", _set(AIHWKIT, "output_bound", "nan"), ["[periphery] output_bound"]),
    ("periphery-offset", _set(AIHWKIT, "sign_encoding", '"offset"'), ["[periphery]", "differential"]),
]


@pytest.mark.parametrize(("text", "names"), [case[1:] for case in TEXT_CASES], ids=[case[0] for case in TEXT_CASES])
def test_a_bad_chip_file_is_refused_naming_the_file_and_field(
    text: str, names: list[str], model: tuple[Path, Path], tmp_path: Path
) -> None:
    chip, out = tmp_path / "chip.toml", tmp_path / "out.cimb"
    chip.write_text(text, encoding="utf-8")
    onnx_file, calib = model
    argv = ["compile", str(onnx_file), "--calib", str(calib), "--chip", str(chip), "-o", str(out)]
    refused(argv, str(chip), *names, inputs=[chip, onnx_file], outputs=[out])


def test_files_that_are_no_chip_description_are_refused(model: tuple[Path, Path], tmp_path: Path) -> None:
    onnx_file, calib = model
    out = tmp_path / "out.cimb"
    latin = tmp_path / "latin.toml"
    latin.write_bytes(DEFAULT.replace("ISAAC", "ISAAC \xe9t\xe9").encode("latin-1"))
    huge = tmp_path / "huge.toml"
    huge.write_text(DEFAULT + "# " + "x" * (1 << 20) + "\n", encoding="utf-8")
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    cases = {
        latin: ["not valid TOML"],
        huge: ["too large", "1,048,576"],
        folder: ["no such chip file"],
        tmp_path / "absent.toml": ["no such chip file"],
    }
    for chip, names in cases.items():
        argv = ["compile", str(onnx_file), "--calib", str(calib), "--chip", str(chip), "-o", str(out)]
        refused(argv, str(chip), *names, inputs=[onnx_file], outputs=[out])


@pytest.mark.parametrize(
    ("name", "names"),
    [("defualt", ["unknown chip 'defualt'", "did you mean 'default'"]), ("tpu", ["unknown chip 'tpu'", "presets"])],
)
def test_an_unknown_preset_is_refused_naming_the_presets(
    name: str, names: list[str], model: tuple[Path, Path], tmp_path: Path
) -> None:
    onnx_file, calib = model
    refused(["compile", str(onnx_file), "--calib", str(calib), "--chip", name, "-o", str(tmp_path / "o.cimb")], *names)


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--array-size", "100000x64"], ["--array-size", "from 1 to 4096", "100000"]),
        (["--array-size", "64x5000"], ["--array-size", "5000"]),
        (["--cell-bits", "99"], ["--cell-bits", "from 1 to 8"]),
        (["--dac-bits", "0"], ["--dac-bits", "from 1 to 8"]),
        (["--adc-bits", "99"], ["--adc-bits", "99"]),
    ],
)
def test_chip_fields_set_by_flags_meet_the_same_ranges_and_name_the_flag(
    flags: list[str], names: list[str], model: tuple[Path, Path], tmp_path: Path
) -> None:
    onnx_file, calib = model
    out = tmp_path / "o.cimb"
    refused(["compile", str(onnx_file), "--calib", str(calib), *flags, "-o", str(out)], *names, outputs=[out])
