"""Reading inputs and writing outputs: ``.npy``/``.npz`` tensors and atomically written files.

Every file cimc writes goes to a temporary file beside the target and is renamed into place, so an interrupted
or failed run never leaves a half-written output.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np


class InputFileError(Exception):
    """An input or output file cannot be used; the message names the file and what to do."""


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputFileError(f"{path}: folder '{folder}' does not exist")
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


def load_inputs(path: str | os.PathLike, input_names: list[str]) -> dict[str, np.ndarray]:
    """Inputs from a ``.npy`` (single-input models) or an ``.npz`` keyed by input names."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFileError(f"{path}: not a readable .npy or .npz file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        if len(input_names) != 1:
            raise InputFileError(
                f"{path}: the model has {len(input_names)} inputs {input_names}; give an .npz keyed by these names"
            )
        return {input_names[0]: loaded}
    with loaded:
        keys = list(loaded.keys())
        missing = [n for n in input_names if n not in keys]
        if missing:
            if len(input_names) == 1 and len(keys) == 1:
                raise InputFileError(f"{path}: holds '{keys[0]}' but the model's input is named '{input_names[0]}'")
            raise InputFileError(
                f"{path}: missing inputs {missing} (the file holds {keys}; the model takes {input_names})"
            )
        return {n: loaded[n] for n in input_names}
