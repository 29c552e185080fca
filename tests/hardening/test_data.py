"""Bad data files (``--input`` of run, ``--data`` of eval, ``--calib`` of compile), each refused in one line naming
the file, the array and what to do (``tests/refusal.py``): pickles and object arrays are never unpickled, an array's
header is checked before its data is read, labels and datasets are validated, NaN and infinity are refused."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_workspace import make_workspace
from refusal import refused

from cimc.compiler.files import TensorFile
from cimc.runtime.session import InferenceSession, NonFiniteInputError


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_workspace(tmp_path_factory.mktemp("data"))


def _images(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 8, 8)).astype(np.float32)


def _labels(n: int = 8) -> np.ndarray:
    return np.arange(n) % 10


def _save_npy(array: object) -> Callable[[Path], None]:
    return lambda path: np.save(path, array, allow_pickle=True)


def _save_npz(**arrays: object) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)  # type: ignore[arg-type]


def _with_nan(value: float) -> np.ndarray:
    x = _images()
    x[2, 0, 3, 4] = value
    return x


def _truncated(path: Path) -> None:
    np.save(path, _images())
    path.write_bytes(path.read_bytes()[:300])


def _pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"x": [1, 2, 3]}))


def _damaged_zip(path: Path) -> None:
    np.savez(path, x=_images(), y=_labels())
    data = bytearray(path.read_bytes())
    data[100:140] = bytes(40)
    path.write_bytes(bytes(data))


def _huge_header(path: Path) -> None:
    """An .npy whose header claims 10^12 floats, with 16 bytes of data."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(bytes(16))


def _npz_member_huge(path: Path) -> None:
    """An .npz whose ``x`` claims 10^12 floats, with no data."""
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("x.npy", "w") as member:
            header = {"descr": "<f4", "fortran_order": False, "shape": (10**7, 10**5)}
            np.lib.format.write_array_header_1_0(member, header)
        with archive.open("y.npy", "w") as member:
            np.save(member, _labels())


#: Bad ``--data`` files of eval: (file name, how to write it, what the line must name).
DATASETS: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("obj.npz", _save_npz(x=np.array([1, "a", None], dtype=object), y=_labels(3)), ["'x'", "Python objects"]),
    ("objy.npz", _save_npz(x=_images(3), y=np.array([1, None, 2], dtype=object)), ["'y'", "Python objects"]),
    ("pickle.npz", _pickle, ["pickle.npz", "not an .npy or .npz"]),
    ("single.npy", _save_npy(_images()), ["single.npy", ".npz"]),
    ("zero-d.npz", _save_npz(x=np.float32(3), y=_labels(1)), ["'x'", "no samples"]),
    ("empty.npz", _save_npz(x=_images(0), y=_labels(0)), ["'x'", "no samples"]),
    ("short.npz", _save_npz(x=_images(8), y=_labels(5)), ["'y'", "5 labels for 8 samples"]),
    ("long.npz", _save_npz(x=_images(4), y=_labels(9)), ["'y'", "9 labels for 4 samples"]),
    ("float-labels.npz", _save_npz(x=_images(), y=_labels().astype(np.float32) + 0.5), ["'y'", "class indices"]),
    ("2d-labels.npz", _save_npz(x=_images(), y=np.stack([_labels()] * 2, 1)), ["'y'", "one-hot"]),
    ("3d-labels.npz", _save_npz(x=_images(), y=_labels().reshape(8, 1, 1)), ["'y'", "class indices"]),
    ("bool-labels.npz", _save_npz(x=_images(), y=_labels() > 4), ["'y'", "class indices"]),
    ("0d-labels.npz", _save_npz(x=_images(), y=np.int64(3)), ["'y'", "one label per sample"]),
    ("string-labels.npz", _save_npz(x=_images(), y=np.array(["cat"] * 8)), ["'y'", "not numeric"]),
    ("strings.npz", _save_npz(x=np.array(["a"] * 8), y=_labels()), ["'x'", "not numeric"]),
    ("complex.npz", _save_npz(x=_images().astype(np.complex64), y=_labels()), ["'x'", "not numeric"]),
    ("dates.npz", _save_npz(x=np.zeros(8, "datetime64[s]"), y=_labels()), ["'x'", "not numeric"]),
    ("structured.npz", _save_npz(x=np.zeros(8, [("a", "f4")]), y=_labels()), ["'x'", "not numeric"]),
    ("no-x.npz", _save_npz(images=_images(), y=_labels()), ["'x'", "--x-key"]),
    ("no-y.npz", _save_npz(x=_images(), labels=_labels()), ["'y'", "--y-key"]),
    ("rank.npz", _save_npz(x=_images()[:, 0], y=_labels()), ["'x'", "input 'x'", "float32[8, 8, 8]"]),
    ("shape.npz", _save_npz(x=np.zeros((8, 1, 4, 4), np.float32), y=_labels()), ["input 'x'"]),
    ("nan.npz", _save_npz(x=_with_nan(np.nan), y=_labels()), ["nan.npz", "'x'", "nan", "[2, 0, 3, 4]"]),
    ("inf.npz", _save_npz(x=_with_nan(np.inf), y=_labels()), ["inf.npz", "inf", "[2, 0, 3, 4]"]),
    ("neg-inf.npz", _save_npz(x=_with_nan(-np.inf), y=_labels()), ["-inf"]),
    ("damaged.npz", _damaged_zip, ["damaged.npz"]),
    ("huge.npz", _npz_member_huge, ["huge.npz", "'x'", "truncated"]),
    ("text.npz", lambda path: path.write_text("x,y\n1,2\n"), ["text.npz", "not an .npy or .npz"]),
    ("empty-file.npz", lambda path: path.write_bytes(b""), ["empty-file.npz"]),
    ("empty-zip.npz", lambda path: zipfile.ZipFile(path, "w").close(), ["'x'", "holds []"]),
]


@pytest.mark.parametrize(("name", "write", "names"), DATASETS, ids=[case[0] for case in DATASETS])
def test_bad_dataset_is_refused(
    files: dict[str, str], tmp_path: Path, name: str, write: Callable[[Path], None], names: list[str]
) -> None:
    path = tmp_path / name
    write(path)
    line = refused(["eval", files["binary"], "--data", str(path)], "--data", *names, inputs=[path])
    assert "unsafely" not in line and "allow_pickle" not in line


#: Bad ``--input`` files of run (a binary, an ONNX model or IR text): (file name, how to write it, names).
INPUTS: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("obj.npy", _save_npy(np.array([1, "a", None], dtype=object)), ["obj.npy", "Python objects"]),
    ("pickle.npy", _pickle, ["pickle.npy", "not an .npy or .npz"]),
    ("zero-d.npy", _save_npy(np.float32(3)), ["input 'x'", "float32[]"]),
    ("truncated.npy", _truncated, ["truncated.npy", "truncated"]),
    ("huge.npy", _huge_header, ["huge.npy", "truncated", "4,000,000,000,000 bytes"]),
    ("strings.npy", _save_npy(np.array(["a", "b"])), ["strings.npy", "not numeric"]),
    ("nan.npy", _save_npy(_with_nan(np.nan)), ["--input", "nan.npy", "input 'x'", "nan"]),
    ("inf.npz", _save_npz(x=_with_nan(np.inf)), ["--input", "inf.npz", "input 'x'", "inf"]),
    ("wrong-key.npz", _save_npz(image=_images()), ["'image'", "'x'"]),
    ("obj.npz", _save_npz(x=np.array([None], dtype=object)), ["'x'", "Python objects"]),
    ("rank.npy", _save_npy(_images()[0, 0]), ["input 'x'", "float32[8, 8]"]),
    ("v3.npy", lambda path: path.write_bytes(b"\x93NUMPY\x03\x00" + bytes(10)), ["v3.npy", "3.0"]),
    ("bad-header.npy", lambda path: path.write_bytes(b"\x93NUMPY\x01\x00\x04\x00{xx}"), ["bad-header.npy", "header"]),
]


@pytest.mark.parametrize("model", ["binary", "model"])
@pytest.mark.parametrize(("name", "write", "names"), INPUTS, ids=[case[0] for case in INPUTS])
def test_bad_input_file_is_refused(
    files: dict[str, str], tmp_path: Path, model: str, name: str, write: Callable[[Path], None], names: list[str]
) -> None:
    path = tmp_path / name
    write(path)
    argv = ["run", files[model], "--input", str(path)]
    line = refused(argv, *names, inputs=[path, Path(files[model])])
    assert "unsafely" not in line


#: Bad ``--calib`` files of compile: (file name, how to write it, names).
CALIBRATIONS: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("obj.npz", _save_npz(x=np.array([None], dtype=object)), ["--calib", "obj.npz", "Python objects"]),
    ("pickle.npz", _pickle, ["--calib", "pickle.npz"]),
    ("nan.npz", _save_npz(x=_with_nan(np.nan)), ["not finite"]),
    ("no-x.npz", _save_npz(images=_images()), ["--calib", "'images'", "'x'"]),
    ("empty.npz", _save_npz(x=_images(0)), ["calibration input 'x'", "empty"]),
    ("strings.npz", _save_npz(x=np.array(["a"] * 8)), ["--calib", "not numeric"]),
]


@pytest.mark.parametrize(("name", "write", "names"), CALIBRATIONS, ids=[case[0] for case in CALIBRATIONS])
def test_bad_calibration_file_is_refused(
    files: dict[str, str], tmp_path: Path, name: str, write: Callable[[Path], None], names: list[str]
) -> None:
    path = tmp_path / name
    write(path)
    refused(["compile", files["model"], "--calib", str(path), "--emit", "quantized"], *names, inputs=[path])


def test_a_file_beside_a_users_model_is_never_used_unnamed(files: dict[str, str], tmp_path: Path) -> None:
    """``mlp_calib.npz`` beside ``mlp.onnx`` is not read: only a bundled model's bundled set is used unnamed."""
    model = tmp_path / "mlp.onnx"
    model.write_bytes(Path(files["model"]).read_bytes())
    np.savez(tmp_path / "mlp_calib.npz", x=_images())
    refused(["compile", str(model), "--emit", "quantized"], "mlp.onnx", "--calib")


def test_the_session_refuses_nan_inputs(files: dict[str, str]) -> None:
    session = InferenceSession(files["binary"], ideal=True)
    with pytest.raises(NonFiniteInputError, match=r"input 'x' holds nan at index \[2, 0, 3, 4\]"):
        session.run(None, {"x": _with_nan(np.nan)})


def test_a_good_file_reads_back_exactly(tmp_path: Path) -> None:
    """Header-first reading gives numpy's own arrays: C and Fortran order, every numeric kind, empty arrays."""
    arrays = {
        "c": _images(),
        "f": np.asfortranarray(_images()[:, 0, :, :3]),
        "b": _labels() > 3,
        "u": np.arange(6, dtype=np.uint16),
        "e": np.zeros((0, 4), np.float16),
    }
    np.savez(tmp_path / "all.npz", **arrays)  # type: ignore[arg-type]
    file = TensorFile(tmp_path / "all.npz", "--input")
    for key, array in arrays.items():
        read = file.array(key)
        assert read.dtype == array.dtype and np.array_equal(read, array)
