"""The compiled binary ``.cimb``: its layout, its encoding and its loader.

A ``.cimb`` holds everything a chip needs to run a compiled model, and no Python objects: a header, a section table
with a SHA-256 per section, then the sections (``meta``, ``ir``, ``weights``, ``program``, ``report``). The chip the
model was compiled for is stored once, as the ``ir`` module's ``cim.chip`` attribute, and decoded once at load.
The layout is defined here once, for both sides: the compiler's writer (``cimc.compiler.binary``) packs with
``pack_container`` and ``encode_weights``, and the loader reads with ``read_sections``. Loading needs only ``cimc.ir``:
no ONNX file and nothing from ``cimc.compiler`` (the ``onnx`` package is imported only because the graph dialect
reads its op schemas), and never executes anything from the file: sections are JSON, UTF-8 text and raw
little-endian arrays. ``docs/binary-format.md`` documents every byte.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cimc.ir.attributes import ResourceBlob
from cimc.ir.core import VerifyError
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.parser import ParseError, Parser
from cimc.ir.target.chip import ATTRIBUTE, Chip, ChipError, chip_of
from cimc.ir.types import ElementType
from cimc.ir.verifier import verify
from cimc.runtime.program import Plan, ProgramError, load_program

MAGIC = b"CIMB\x00\x1a\r\n"  # NUL, ^Z and CR LF: a copy in text mode or through a line-ending filter breaks it
FORMAT_VERSION = (4, 1)  # (major, minor): a reader reads its own major at any minor; 4.1 added meta model_sha256
ALIGNMENT = 64  # every section payload and every weight array starts at a multiple of this, from the file start
SECTIONS = ("meta", "ir", "weights", "program", "report")  # the required sections, in file order
KNOWN_FLAGS = 0  # format 4 defines no flags

_HEADER = struct.Struct("<8sHHII")  # magic, major, minor, flags, section count
_ENTRY = struct.Struct("<16sQQ32s")  # name (ASCII, NUL padded), offset from the file start, length, SHA-256
_DIGEST = 32  # SHA-256 of the header and the section table, right after the table
_INDEX_LENGTH = struct.Struct("<Q")  # the weights index's byte length, at the start of the weights section


class BinaryFormatError(Exception):
    """A file that is not a loadable ``.cimb``; the message names the file, what is wrong and what to do."""


@dataclass(frozen=True)
class CompiledModel:
    """A loaded ``.cimb``: the placed ``cim`` module with its weights attached (``run_module`` runs it), the chip it
    was compiled for (its ``cim.chip``, decoded), the per-tile instruction streams checked against both and planned
    for execution (``cimc.runtime.program.Plan``: what the simulator runs) and the compiler's report."""

    version: tuple[int, int]
    meta: dict[str, Any]
    chip: Chip
    module: ModuleOp
    program: Plan
    report: dict[str, Any]


def _aligned(offset: int) -> int:
    """The first multiple of 64 at or after ``offset``."""
    return -(-offset // ALIGNMENT) * ALIGNMENT


def _padding(size: int) -> bytes:
    """The zero bytes that take ``size`` bytes up to the next 64-byte boundary."""
    return bytes(_aligned(size) - size)


def _table_end(count: int) -> int:
    """Where the header checksum ends: the header, ``count`` table entries and the SHA-256 of both."""
    return _HEADER.size + count * _ENTRY.size + _DIGEST


def encode_json(value: Mapping[str, Any], section: str) -> bytes:
    """A JSON section: UTF-8, sorted keys, no whitespace, so equal values give equal bytes. Raises ValueError
    naming the section when ``value`` holds something JSON cannot hold exactly (NaN, numpy scalars, objects)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"section '{section}' cannot be stored as JSON ({exc}); give dicts with str keys, lists, str, int, "
            "finite float, bool and None"
        ) from None
    return text.encode("utf-8")


def encode_weights(blobs: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """The ``weights`` section: the index length (u64), the index (JSON: key -> dtype, shape, offset, length, and
    ``bits`` for a packed array, ``pairs`` for a pair array), then from the next 64-byte boundary (the data start)
    each array's little-endian C-order bytes, in the order given, each at a 64-byte boundary; ``offset`` counts from
    the data start. A ``ui8`` array whose values all fit in 1, 2 or 4 bits (cell levels: a 2-bit cell's level is 0
    to 3) is stored packed, ``8 / bits`` values a byte (``pack_cells``); one that is also a differential pair's
    levels (``pair_signs``) as the pair's magnitudes, packed, and a sign bit per weight."""
    index: dict[str, dict[str, Any]] = {}
    data = bytearray()
    for key, array in blobs:
        if key in index:
            raise ValueError(f"weights: two arrays under the key '{key}'")
        element = ElementType.from_dtype(array.dtype.newbyteorder("="))
        entry: dict[str, Any] = {"dtype": element.name, "shape": list(array.shape)}
        bits = _packed_bits(array) if element.name == "ui8" else None
        signs = pair_signs(array) if bits is not None else None
        if bits is None:
            payload = np.asarray(array).astype(element.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        elif signs is None:
            payload = pack_cells(array, bits).tobytes()
            entry["bits"] = bits
        else:
            payload = pack_cells(array[0] | array[1], bits).tobytes() + pack_cells(signs, 1).tobytes()
            entry.update(bits=bits, pairs=True)
        data += _padding(len(data))
        index[key] = {**entry, "offset": len(data), "length": len(payload)}
        data += payload
    text = encode_json(index, "weights")
    head = _INDEX_LENGTH.pack(len(text)) + text
    return head + _padding(len(head)) + data


#: The widths a ``ui8`` array may be packed to: values a byte holds 8, 4 or 2 of.
PACKED_BITS = (1, 2, 4)


def _packed_bits(array: np.ndarray) -> int | None:
    """The narrowest of ``PACKED_BITS`` that holds every value of a ``ui8`` array, None when none does."""
    top = int(np.max(array, initial=0))
    return next((bits for bits in PACKED_BITS if top < 1 << bits), None)


def pair_signs(array: np.ndarray) -> np.ndarray | None:
    """The sign of each weight of a differential pair's levels ``[2, slices, ...]`` (ui8: 1 where the second array
    holds the weight's magnitude, 0 where the first does or neither), or None when ``array`` is no such pair: a
    pair has at most one array nonzero per weight, over all its slices (the other cell sits at level 0), and its
    magnitudes and signs take ``1 + 1 / (slices x bits)`` of half its packed bytes."""
    if array.ndim < 2 or array.shape[0] != 2:
        return None
    first, second = array[0].any(axis=0), array[1].any(axis=0)
    return None if (first & second).any() else second.astype(np.uint8)


def pack_cells(array: np.ndarray, bits: int) -> np.ndarray:
    """A ``ui8`` array's values packed ``8 / bits`` to a byte (C order; value ``i`` in bits ``(i mod 8/bits) x bits``
    upwards of byte ``i div 8/bits``; the last byte's unused bits zero). Every value must be below ``2^bits``."""
    per_byte = 8 // bits
    flat = np.asarray(array, dtype=np.uint8).reshape(-1)
    padded = np.zeros(-(-flat.size // per_byte) * per_byte, np.uint8)
    padded[: flat.size] = flat
    shifts = (np.arange(per_byte, dtype=np.uint8) * bits).reshape(1, -1)
    return np.bitwise_or.reduce(padded.reshape(-1, per_byte) << shifts, axis=1).astype(np.uint8)


def _packed_length(shape: tuple[int, ...], bits: int, pairs: bool) -> int:
    """The bytes of a packed array: its values at ``bits`` each, rounded up to a byte; a pair array's magnitudes
    (half its values) so, then its signs (one bit per weight: ``prod(shape[2:])``) likewise."""
    if not pairs:
        return -(-math.prod(shape) * bits // 8)
    weights = math.prod(shape[2:])
    return -(-shape[1] * weights * bits // 8) + -(-weights // 8)


def pack_container(
    sections: Sequence[tuple[str, bytes]], version: tuple[int, int] = FORMAT_VERSION, flags: int = 0
) -> bytes:
    """The whole file: header, section table, header checksum, then each payload at a 64-byte boundary (zero
    padding between; the file ends where the last payload ends)."""
    offset = _aligned(_table_end(len(sections)))
    entries = []
    for name, payload in sections:
        encoded = name.encode("ascii")
        if not 0 < len(encoded) <= 16 or b"\x00" in encoded:
            raise ValueError(f"section name '{name}' must be 1 to 16 ASCII characters")
        entries.append(_ENTRY.pack(encoded, offset, len(payload), hashlib.sha256(payload).digest()))
        offset = _aligned(offset + len(payload))
    head = _HEADER.pack(MAGIC, *version, flags, len(sections)) + b"".join(entries)
    out = bytearray(head + hashlib.sha256(head).digest())
    for _, payload in sections:
        out += _padding(len(out))
        out += payload
    return bytes(out)


def read_sections(data: bytes, filename: str) -> tuple[tuple[int, int], dict[str, memoryview]]:
    """The format version and the payload of every section of a ``.cimb`` held in ``data``, after checking the
    magic, the version, the header checksum, the flags, the layout and every section's checksum. Raises
    ``BinaryFormatError``; ``filename`` names the file in its messages."""

    def fail(what: str) -> BinaryFormatError:
        return BinaryFormatError(f"{filename}: {what}")

    recompile = "recompile the model with `cimc compile` or copy the file again"
    if not data:
        raise fail("empty file (0 bytes), not a cimc binary; compile one with `cimc compile MODEL.onnx`")
    if len(data) < _HEADER.size and MAGIC.startswith(data[: len(MAGIC)]):
        raise fail(f"truncated: {len(data)} bytes, shorter than the {_HEADER.size}-byte header; {recompile}")
    if data[: len(MAGIC)] != MAGIC:
        if data[:4] == MAGIC[:4]:
            raise fail(
                "damaged magic number: the file went through a text-mode copy or a line-ending conversion; "
                "copy it again in binary mode"
            )
        raise fail(f"not a cimc binary (starts with {bytes(data[:8])!r}); give a .cimb written by `cimc compile`")
    _, major, minor, flags, count = _HEADER.unpack_from(data)
    if major > FORMAT_VERSION[0]:
        raise fail(
            f"written by a newer cimc: format {major}.{minor}, this cimc reads {FORMAT_VERSION[0]}.x; upgrade cimc"
        )
    if major < FORMAT_VERSION[0]:
        raise fail(f"format {major}.{minor} is older than this cimc reads ({FORMAT_VERSION[0]}.x); {recompile}")
    table_end = _table_end(count)
    if len(data) < table_end:
        raise fail(
            f"truncated or corrupted header: its table of {count} sections needs {table_end} bytes but the file "
            f"has {len(data)}; {recompile}"
        )
    if hashlib.sha256(data[: table_end - _DIGEST]).digest() != data[table_end - _DIGEST : table_end]:
        raise fail(f"header checksum mismatch: the header or section table is corrupted; {recompile}")
    if flags & ~KNOWN_FLAGS:
        raise fail(f"unknown flags 0x{flags:08x}: written by a newer cimc; upgrade cimc")
    entries = []
    for i in range(count):
        raw_name, offset, length, digest = _ENTRY.unpack_from(data, _HEADER.size + i * _ENTRY.size)
        entries.append((raw_name.rstrip(b"\x00").decode("ascii", "replace"), offset, length, digest))
    for name, offset, length, _ in entries:
        if offset + length > len(data):
            raise fail(
                f"truncated: section '{name}' needs bytes {offset} to {offset + length} but the file ends at "
                f"{len(data)}; the copy is incomplete: {recompile}"
            )
    sections: dict[str, memoryview] = {}
    view = memoryview(data)
    end, after = table_end, "the section table"
    for name, offset, length, digest in entries:
        if name in sections or offset % ALIGNMENT or offset < end:
            raise fail(f"section '{name}' at byte {offset} overlaps, repeats or is misaligned; {recompile}")
        if any(view[end:offset]):
            raise fail(f"nonzero bytes in the padding after {after} (bytes {end} to {offset}); {recompile}")
        payload = view[offset : offset + length]
        if hashlib.sha256(payload).digest() != digest:
            raise fail(f"section '{name}' checksum mismatch: the file is corrupted; {recompile}")
        sections[name] = payload
        end, after = offset + length, f"section '{name}'"
    if len(data) > end:
        raise fail(f"{len(data) - end} unexpected bytes after {after}: the file was appended to or damaged")
    missing = [name for name in SECTIONS if name not in sections]
    if missing:
        raise fail(f"missing section '{missing[0]}' (holds {', '.join(sections) or 'none'}); {recompile}")
    return (major, minor), sections


def decode_json(payload: memoryview, section: str, filename: str) -> dict[str, Any]:
    """A JSON section's object; ``BinaryFormatError`` when it is not a JSON object."""
    try:
        value = json.loads(payload.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BinaryFormatError(f"{filename}: section '{section}' is not valid JSON ({exc}); recompile") from None
    if not isinstance(value, dict):
        raise BinaryFormatError(
            f"{filename}: section '{section}' holds a JSON {type(value).__name__}, not an object; recompile"
        )
    return value


def _decode_text(payload: memoryview, section: str, filename: str) -> str:
    try:
        return payload.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BinaryFormatError(f"{filename}: section '{section}' is not UTF-8 text ({exc}); recompile") from None


def decode_weights(payload: memoryview, filename: str) -> dict[str, np.ndarray]:
    """The arrays of a ``weights`` section by key: read-only views of ``payload``, no copy, but for packed arrays,
    which are unpacked, all in one pass (``cimc.runtime.unpacking``), into views of one buffer."""

    def fail(what: str) -> BinaryFormatError:
        return BinaryFormatError(f"{filename}: section 'weights': {what}; recompile")

    if len(payload) < _INDEX_LENGTH.size:
        raise fail("shorter than its index length")
    (size,) = _INDEX_LENGTH.unpack_from(payload)
    if _INDEX_LENGTH.size + size > len(payload):
        raise fail(f"index of {size} bytes runs past the section's {len(payload)}")
    index = decode_json(payload[_INDEX_LENGTH.size : _INDEX_LENGTH.size + size], "weights", filename)
    start = _aligned(_INDEX_LENGTH.size + size)
    arrays = {}
    spans: list[tuple[int, int, str]] = []  # data offset, length, key: no two arrays may share a byte
    packed: list[tuple[str, tuple[int, ...], list[int]]] = []  # key, shape, unpacking.unpack's table row
    values = 0
    for key, entry in index.items():
        try:
            element = ElementType(entry["dtype"])
            shape = tuple(int(d) for d in entry["shape"])
            offset, length = int(entry["offset"]), int(entry["length"])
            bits = entry.get("bits")
            pairs = bool(entry.get("pairs", False))
        except (KeyError, TypeError, ValueError) as exc:
            raise fail(f"bad index entry for '{key}' ({exc})") from None
        if bits is not None and (element.name != "ui8" or bits not in PACKED_BITS):
            raise fail(f"'{key}' is packed to {bits} bits, but only ui8 arrays pack, to {PACKED_BITS} bits")
        if pairs and (bits is None or len(shape) < 2 or shape[0] != 2):
            raise fail(f"'{key}' is stored as a pair, but only packed [2, slices, ...] arrays are")
        if min(shape, default=0) < 0:
            raise fail(f"'{key}' has a negative dimension in its shape {list(shape)}")
        size = math.prod(shape) * element.dtype.itemsize if bits is None else _packed_length(shape, bits, pairs)
        if length != size:
            packed_as = "" if bits is None else f" packed to {bits} bits" + (" as a pair" if pairs else "")
            raise fail(f"'{key}' holds {length} bytes, not a {element} array of shape {list(shape)}{packed_as}")
        if offset < 0 or offset % ALIGNMENT or start + offset + length > len(payload):
            raise fail(f"'{key}' at data bytes {offset} to {offset + length} is misaligned or past the section end")
        spans.append((offset, length, key))
        if bits is not None:
            slices, count = (shape[1], math.prod(shape[2:])) if pairs else (1, math.prod(shape))
            packed.append((key, shape, [start + offset, bits, slices, count, int(pairs), values]))
            values += math.prod(shape)
            continue
        little = element.dtype.newbyteorder("<")
        array = np.frombuffer(payload, dtype=little, count=math.prod(shape), offset=start + offset)
        arrays[key] = array.astype(element.dtype, copy=False).reshape(shape)
    _check_disjoint(spans, fail)
    if packed:
        from cimc.runtime.unpacking import unpack  # numba: only where there are levels to unpack

        out = np.empty(values, np.uint8)
        unpack(np.frombuffer(payload, np.uint8), np.array([row for _, _, row in packed], np.int64), out)
        for key, shape, row in packed:
            arrays[key] = out[row[-1] : row[-1] + math.prod(shape)].reshape(shape)
    return arrays


def _check_disjoint(spans: list[tuple[int, int, str]], fail: Callable[[str], BinaryFormatError]) -> None:
    """No two arrays of the weights index overlap: each is its own bytes, so none can alias another's values."""
    end, previous = 0, ""
    for offset, length, key in sorted(spans):
        if offset < end:
            raise fail(f"'{key}' at data bytes {offset} to {offset + length} overlaps '{previous}' (ends at {end})")
        if length:
            end, previous = offset + length, key


#: What ``meta`` may hold under the keys a reader looks at: the model's file name (never a path: nothing in a binary
#: is opened as a file) and the SHA-256 of its bytes (how ``cimc eval`` recognises the fp32 model), both optional.
META_MODEL, META_MODEL_SHA256 = "model", "model_sha256"


def check_meta(meta: Mapping[str, Any], filename: str) -> None:
    """``BinaryFormatError`` naming the field when ``meta``'s ``model`` is not a bare file name or its
    ``model_sha256`` is not 64 lowercase hex digits (or null)."""
    model, digest = meta.get(META_MODEL, ""), meta.get(META_MODEL_SHA256)
    if not isinstance(model, str) or not is_file_name(model):
        raise BinaryFormatError(
            f"{filename}: section 'meta': field '{META_MODEL}' must be the model's file name, not {model!r}; "
            "compile the model again"
        )
    if digest is not None and not (isinstance(digest, str) and re.fullmatch("[0-9a-f]{64}", digest)):
        raise BinaryFormatError(
            f"{filename}: section 'meta': field '{META_MODEL_SHA256}' must be 64 hex digits, not {digest!r}; "
            "compile the model again"
        )


def is_file_name(name: str) -> bool:
    """Whether ``name`` is a bare file name: no folder in it, on any system, and not ``.`` or ``..``."""
    return not any(c in name for c in "/\\\x00") and name not in (".", "..")


def decode_module(text: str, weights: Mapping[str, np.ndarray], filename: str) -> ModuleOp:
    """The ``ir`` section parsed and verified, each ``dense_resource<key>`` bound to the weights array ``key``."""
    parser = Parser(text, f"{filename}:ir")
    parser.blobs.update((key, ResourceBlob(key, array)) for key, array in weights.items())
    try:
        module = parser.parse_module()
    except ParseError as exc:
        raise BinaryFormatError(f"{filename}: section 'ir' is not valid IR ({exc}); recompile") from None
    missing = sorted(key for key, blob in parser.blobs.items() if blob.array is None)
    if missing:
        raise BinaryFormatError(f"{filename}: section 'ir' names resources {missing} missing from 'weights'; recompile")
    try:
        verify(module)
    except VerifyError as exc:
        raise BinaryFormatError(f"{filename}: section 'ir' does not verify ({exc}); recompile") from None
    return module


def load_binary(path: str | os.PathLike) -> CompiledModel:
    """Read, check and decode a ``.cimb``, its program checked against its chip and IR and planned
    (``cimc.runtime.program.load_program``); ``BinaryFormatError`` names the file and what is wrong with it."""
    filename = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:  # missing, a folder, unreadable: said in words, not as an errno
        reason = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc)).lower()
        raise BinaryFormatError(f"{filename}: {reason}; give a .cimb that cimc compile wrote") from None
    version, sections = read_sections(data, filename)
    meta = decode_json(sections["meta"], "meta", filename)
    check_meta(meta, filename)
    report = decode_json(sections["report"], "report", filename)
    weights = decode_weights(sections["weights"], filename)
    module = decode_module(_decode_text(sections["ir"], "ir", filename), weights, filename)
    try:
        chip = chip_of(module)
    except ChipError as exc:
        raise BinaryFormatError(f"{filename}: section 'ir': {exc}; recompile") from None
    if chip is None:
        raise BinaryFormatError(f"{filename}: section 'ir' has no '{ATTRIBUTE}' (the chip it runs on); recompile")
    try:
        program = load_program(module, chip, sections["program"].tobytes())
    except ProgramError as exc:
        raise BinaryFormatError(f"{filename}: section 'program': {exc}; compile the model again") from None
    return CompiledModel(version=version, meta=meta, chip=chip, module=module, program=program, report=report)
