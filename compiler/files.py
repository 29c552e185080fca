"""Reading inputs and writing outputs: ``.npy``/``.npz`` tensors and atomically written files.

Every file cimc writes goes to a temporary file beside the target and is renamed into place, so an interrupted
or failed run never leaves a half-written output; ``check_outputs`` refuses, before any work, an output that would
replace one of the command's inputs or that names a folder. Tensor files are read without unpickling: each array's
header is checked (numeric dtype, size against the bytes the file holds) before its data is read.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np

#: The dtype kinds a tensor file may hold: booleans, signed and unsigned integers, floats.
NUMERIC_KINDS = "biuf"

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members; an empty zip
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class InputFileError(Exception):
    """An input or output file cannot be used; the message names the file and what to do."""


def check_outputs(reads: Mapping[str, str | os.PathLike], writes: Mapping[str, str | os.PathLike]) -> None:
    """Refuse, before any work, an output (``writes``: flag -> path) that is one of the inputs that exist
    (``reads``: flag -> path; the same file, by any path or link), another output (the same resolved path), or a
    folder, or whose folder does not exist."""
    seen = {f"the {flag} input": Path(path) for flag, path in reads.items() if Path(path).exists()}
    for flag, path in writes.items():
        target = Path(path)
        if target.is_dir():
            raise InputFileError(f"{flag} '{path}' is a folder; name a file to write")
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise InputFileError(f"{flag} '{path}': folder '{folder}' does not exist")
        for other, source in seen.items():
            if _same_file(target, source):
                raise InputFileError(
                    f"{flag} '{path}' is also {other}: writing it would replace that; name another file"
                )
        seen[f"the {flag} output"] = target


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same existing file, or the same path once resolved."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputFileError(f"{path}: folder '{folder}' does not exist")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; name a file to write")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; an output gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_outputs(path: str | os.PathLike, outputs: Mapping[str, np.ndarray]) -> None:
    """Write ``outputs`` as an ``.npz`` keyed by output name, atomically."""
    if not str(path).endswith(".npz"):
        raise InputFileError(f"{path}: outputs are written as .npz (keyed by output name); name the file *.npz")
    buffer = io.BytesIO()
    # numpy's stubs type the ``**kwds`` of savez as if a key could be its ``allow_pickle`` flag
    np.savez(buffer, **{name: np.asarray(a) for name, a in outputs.items()})  # type: ignore[arg-type]
    write_atomic(path, buffer.getvalue())


class TensorFile:
    """An ``.npy`` (one array, key ``None``) or ``.npz`` (arrays by key) file, whose arrays are read one at a time,
    each only after its header shows a numeric dtype and a size the file holds; ``flag`` names where the user gave
    the file (``--input``), for messages."""

    def __init__(self, path: str | os.PathLike, flag: str) -> None:
        self.path, self.flag = Path(path), flag
        if not self.path.is_file():
            raise InputFileError(f"{flag} {self.path}: no such file")
        with self.path.open("rb") as f:
            magic = f.read(6)
        if magic.startswith(_NPY_MAGIC):
            self.keys: list[str] | None = None
        elif magic[:4] in _ZIP_MAGICS:
            self.keys = self._members()
        else:
            raise InputFileError(
                f"{flag} {self.path}: not an .npy or .npz file (numpy's array formats); pickles and other files "
                "are not read: save arrays with np.save or np.savez"
            )

    def _members(self) -> list[str]:
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputFileError(f"{self.flag} {self.path}: a damaged .npz (zip) file ({exc})") from None
        return [name.removesuffix(".npy") for name in names]

    def array(self, key: str | None = None) -> np.ndarray:
        """The array ``key`` (``None`` for an ``.npy``), checked: numeric and as large as its header says."""
        where = f"{self.flag} {self.path}" + ("" if key is None else f": array '{key}'")
        try:
            if key is None:
                with self.path.open("rb") as f:
                    return _read_checked(f, self.path.stat().st_size, where)
            with zipfile.ZipFile(self.path) as archive, archive.open(f"{key}.npy") as member:
                return _read_checked(member, archive.getinfo(f"{key}.npy").file_size, where)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise InputFileError(f"{where}: cannot be read, the file is damaged ({exc})") from None


def npy_header(stream: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """What an ``.npy`` stream declares before its data: its shape, Fortran order and dtype. ValueError (saying
    which) for no ``.npy`` magic, a format version numpy has no reader for, or a header that does not parse."""
    version = np.lib.format.read_magic(stream)
    reader = _HEADER_READERS.get(version)
    if reader is None:
        raise ValueError(f".npy format {version[0]}.{version[1]} is not read; save it with np.save")
    return reader(stream)


def _read_checked(stream: IO[bytes], size: int, where: str) -> np.ndarray:
    """The array in an ``.npy`` stream of ``size`` bytes, its header checked before its data is read."""
    try:
        shape, fortran, dtype = npy_header(stream)
    except ValueError as exc:
        raise InputFileError(f"{where}: not an .npy array ({exc})") from None
    if dtype.hasobject:
        raise InputFileError(f"{where}: holds Python objects, which cimc never unpickles; save numeric arrays")
    if dtype.kind not in NUMERIC_KINDS:
        raise InputFileError(f"{where}: dtype {dtype} is not numeric; save bool, integer or float arrays")
    needed = math.prod(shape) * dtype.itemsize
    if needed > size - stream.tell():
        raise InputFileError(
            f"{where}: truncated: its header declares {dtype}{list(shape)} ({needed:,} bytes) but "
            f"{size - stream.tell():,} bytes follow"
        )
    data = bytearray(needed)
    view, done = memoryview(data), 0
    while done < needed:  # read in place: no second copy of a large array
        count = stream.readinto(view[done:])  # type: ignore[attr-defined]
        if not count:
            raise InputFileError(f"{where}: truncated: {needed - done:,} of its bytes are missing")
        done += count
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def load_inputs(path: str | os.PathLike, input_names: list[str], flag: str = "--input") -> dict[str, np.ndarray]:
    """Inputs from a ``.npy`` (single-input models) or an ``.npz`` keyed by input names."""
    file = TensorFile(path, flag)
    if file.keys is None:
        if len(input_names) != 1:
            raise InputFileError(
                f"{flag} {path}: the model has {len(input_names)} inputs {input_names}; give an .npz keyed by these "
                "names"
            )
        return {input_names[0]: file.array()}
    keys = file.keys
    missing = [n for n in input_names if n not in keys]
    if missing:
        if len(input_names) == 1 and len(keys) == 1:
            raise InputFileError(f"{flag} {path}: holds '{keys[0]}' but the model's input is named '{input_names[0]}'")
        raise InputFileError(
            f"{flag} {path}: missing inputs {missing} (the file holds {keys}; the model takes {input_names})"
        )
    return {n: file.array(n) for n in input_names}
