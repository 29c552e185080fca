"""Resource limits: the most bytes one tensor may take, checked before anything allocates it.

A model or an IR text can ask for a tensor far larger than memory with a few bytes (a ``ConstantOfShape`` of
[100000000000], a ``tensor<99999999999x99999999999xf32>``). Whatever would create a tensor (the importer, the
constant folder, the interpreter, the parser) sizes it first with ``oversize`` and refuses in its own error class,
naming the node or literal at fault. The limit is per tensor, well under a workstation's memory by default, and
``tensor_limit`` (the ``--max-tensor-size`` flag) raises or lowers it for a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

#: The default most bytes one tensor may take: 1 GiB.
DEFAULT_MAX_TENSOR_BYTES = 1 << 30

#: The largest dimension numpy (and ONNX, which stores int64) can hold.
INT64_MAX = (1 << 63) - 1

_max_tensor_bytes = DEFAULT_MAX_TENSOR_BYTES

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


def max_tensor_bytes() -> int:
    """The most bytes one tensor may take now."""
    return _max_tensor_bytes


@contextmanager
def tensor_limit(nbytes: int | None) -> Iterator[None]:
    """Within the block, tensors may take up to ``nbytes`` each (None keeps the current limit)."""
    global _max_tensor_bytes
    saved = _max_tensor_bytes
    if nbytes is not None:
        _max_tensor_bytes = nbytes
    try:
        yield
    finally:
        _max_tensor_bytes = saved


def parse_size(text: str) -> int:
    """Bytes from ``1073741824``, ``512M``, ``4G`` or ``1.5GiB`` (binary units); ValueError for anything else."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not a size in bytes such as 1073741824, 512M or 4G")
    nbytes = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if nbytes < 1:
        raise ValueError(f"'{text}' is not a positive size")
    return nbytes


def format_size(nbytes: int) -> str:
    """A byte count for people: ``4.0 GiB``, ``512 MiB``, ``96 bytes``."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:.3e} {unit}"
    return f"{nbytes} bytes"


def tensor_bytes(shape: Sequence[int], dtype: np.dtype | type) -> int:
    """The bytes of a tensor of ``shape`` and ``dtype``, in exact integers (no int64 overflow)."""
    return math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize


def oversize(shape: Sequence[int], dtype: np.dtype | type) -> str | None:
    """Why a tensor of ``shape`` and ``dtype`` may not be created (its size against the limit), or None if it may.
    The caller's error names what asked for it."""
    nbytes = tensor_bytes(shape, dtype)
    if nbytes <= _max_tensor_bytes:
        return None
    dims = "x".join(str(int(d)) for d in shape) or "scalar"
    return (
        f"a tensor of {dims} {np.dtype(dtype).name} takes {format_size(nbytes)}, over the limit of "
        f"{format_size(_max_tensor_bytes)} per tensor (raise it with --max-tensor-size if this is meant)"
    )
