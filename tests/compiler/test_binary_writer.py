"""Writing compiled binaries: byte-identical output (across compiles and hash seeds), atomic writes, the blob keys
the IR text names, and clear errors for what cannot be stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cimc.compiler.binary import binary_bytes, cimc_version, module_sections, write_binary
from cimc.compiler.codegen import generate
from cimc.compiler.files import InputFileError
from cimc.compiler.pipeline import PipelineOptions, compile_onnx
from cimc.ir import FuncOp, ModuleOp, ReturnOp, new_module, parse_module, print_module, run_module
from cimc.ir.dialects.graph import ConstantOp
from cimc.ir.target.chip import ATTRIBUTE, load_chip
from cimc.runtime.binary import decode_weights, load_binary, read_sections
from cimc.runtime.isa import Streams

MODELS = Path(__file__).resolve().parents[2] / "models"
ARGS = {
    "program": Streams({}, ()).encode(),  # no streams: what a module of constants alone runs
    "report": {"placement": {"objective": 10, "status": "OPTIMAL"}, "arrays": 20},
    "meta": {"model": "digits_cnn.onnx", "options": {"emit": "cim"}},
}


def _digits_cnn() -> ModuleOp:
    module, _ = compile_onnx(MODELS / "digits_cnn.onnx", PipelineOptions(emit="placed"))
    return module


@pytest.fixture(scope="module")
def digits_cnn() -> ModuleOp:
    return _digits_cnn()


def test_two_compiles_give_identical_bytes(digits_cnn: ModuleOp, tmp_path: Path) -> None:
    write_binary(tmp_path / "a.cimb", digits_cnn, **ARGS)
    write_binary(tmp_path / "b.cimb", _digits_cnn(), **ARGS)
    assert (tmp_path / "a.cimb").read_bytes() == (tmp_path / "b.cimb").read_bytes()


def test_bytes_do_not_depend_on_the_hash_seed(digits_cnn: ModuleOp, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from cimc.compiler.binary import write_binary\n"
        "from cimc.compiler.pipeline import PipelineOptions, compile_onnx\n"
        f"module, _ = compile_onnx({str(MODELS / 'digits_cnn.onnx')!r}, PipelineOptions(emit='placed'))\n"
        f"write_binary('seeded.cimb', module, **{ARGS!r})\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, timeout=300)
    assert (tmp_path / "seeded.cimb").read_bytes() == binary_bytes(digits_cnn, **ARGS)


def test_meta_gets_the_version_and_no_path(digits_cnn: ModuleOp, tmp_path: Path) -> None:
    write_binary(tmp_path / "m.cimb", digits_cnn, **{**ARGS, "program": generate(digits_cnn).encode()})
    assert load_binary(tmp_path / "m.cimb").meta == {**ARGS["meta"], "cimc_version": cimc_version()}
    with pytest.raises(ValueError, match="meta 'model' must be a file name, not a path"):
        binary_bytes(digits_cnn, **{**ARGS, "meta": {"model": str(MODELS / "digits_cnn.onnx")}})
    with pytest.raises(ValueError, match="meta 'cimc_version' is written by the binary writer"):
        binary_bytes(digits_cnn, **{**ARGS, "meta": {"model": "m.onnx", "cimc_version": "9"}})


@pytest.mark.parametrize(
    ("report", "words"),
    [
        ({"gap": float("inf")}, "section 'report' cannot be stored as JSON .*Out of range float"),
        ({"arrays": np.int64(3)}, "section 'report' cannot be stored as JSON .*int64"),
        ({1: "a", "b": 2}, "section 'report' cannot be stored as JSON"),
    ],
)
def test_report_must_be_plain_json(digits_cnn: ModuleOp, tmp_path: Path, report: dict, words: str) -> None:
    path = tmp_path / "r.cimb"
    path.write_bytes(b"the previous binary")
    with pytest.raises(ValueError, match=words):
        write_binary(path, digits_cnn, **{**ARGS, "report": report})
    assert path.read_bytes() == b"the previous binary"  # a failed write leaves the old file whole
    assert [p.name for p in tmp_path.iterdir()] == ["r.cimb"]  # and no temporary file


def test_write_is_atomic_and_replaces(digits_cnn: ModuleOp, tmp_path: Path) -> None:
    path = tmp_path / "model.cimb"
    path.write_bytes(b"old")
    write_binary(path, digits_cnn, **ARGS)
    assert path.read_bytes() == binary_bytes(digits_cnn, **ARGS)
    assert [p.name for p in tmp_path.iterdir()] == ["model.cimb"]
    with pytest.raises(InputFileError, match="does not exist"):
        write_binary(tmp_path / "missing" / "model.cimb", digits_cnn, **ARGS)


def _shared_name_module() -> ModuleOp:
    """Two different weights that share a name, one used twice: the printer keys them ``w`` and ``w_1``."""
    func = FuncOp.create("main", [], [])
    a = func.body.append(ConstantOp.create(np.arange(100, dtype=np.float32), "w"))
    b = func.body.append(ConstantOp.create(np.arange(100, dtype=np.int64) * -3, "w"))
    again = func.body.append(ConstantOp([], [a.result.type], {"value": a.attributes["value"]}))
    func.body.append(ReturnOp([a.result, b.result, again.result]))
    func.update_function_type()
    return new_module([func])


def test_weights_are_keyed_as_the_text_names_them(tmp_path: Path) -> None:
    module = _shared_name_module()
    ir, weights = module_sections(module)
    assert ir.decode() == print_module(module)
    assert ir.decode().count("dense_resource<w>") == 2 and ir.decode().count("dense_resource<w_1>") == 1
    arrays = decode_weights(memoryview(weights), "t")
    assert list(arrays) == ["w", "w_1"]
    np.testing.assert_array_equal(arrays["w"], np.arange(100, dtype=np.float32))
    np.testing.assert_array_equal(arrays["w_1"], np.arange(100, dtype=np.int64) * -3)
    module.attributes[ATTRIBUTE] = load_chip("default").to_attribute()
    write_binary(tmp_path / "w.cimb", module, **ARGS)
    loaded = run_module(load_binary(tmp_path / "w.cimb").module, [])
    for name, value in run_module(module, []).items():
        np.testing.assert_array_equal(loaded[name], value)


def test_a_module_without_weights(tmp_path: Path) -> None:
    func = FuncOp.create("main", [], [])
    func.body.append(ReturnOp([]))
    func.update_function_type()
    write_binary(tmp_path / "e.cimb", new_module([func]), **ARGS)
    _, sections = read_sections((tmp_path / "e.cimb").read_bytes(), "e.cimb")
    assert decode_weights(sections["weights"], "e.cimb") == {}


def test_elided_weights_are_refused(digits_cnn: ModuleOp) -> None:
    elided = parse_module(print_module(digits_cnn))
    with pytest.raises(ValueError, match="resource 'conv1.r0.levels' has no payload"):
        binary_bytes(elided, **ARGS)
