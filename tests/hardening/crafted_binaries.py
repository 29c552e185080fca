"""Crafting ``.cimb`` files for the hardening tests: a small valid binary, and edits of its sections re-packed with
``pack_container``, so every checksum is right and only the loader's semantic checks stand between a crafted file
and the simulator.

The base binary is the bundled digits MLP (three layers, 8 arrays each) on ``tiny``: the default chip cut to a
2 x 3 mesh of 8-array tiles with tile (0, 1) faulty, so its layers take three tiles and send to each other, and
the I/O port sends the input and receives the logits.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.ir.target.chip import load_chip
from cimc.runtime.binary import pack_container, read_sections
from cimc.runtime.isa import Instruction, Streams

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"

#: Section name -> payload, in file order.
Sections = dict[str, bytes]


def tiny_chip_text() -> str:
    """The ``tiny`` chip's TOML: the default chip on a 2 x 3 mesh of 8-array tiles, tile (0, 1) faulty."""
    text = (ROOT / "ir" / "target" / "chips" / "default.toml").read_text()
    for old, new in [
        ('name = "default"', 'name = "tiny"'),
        ("faulty_tiles = []", "faulty_tiles = [[0, 1]]"),
        ("rows = 16", "rows = 2"),
        ("cols = 16", "cols = 3"),
        ("arrays = 128 ", "arrays = 8 "),
    ]:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def compile_small(folder: Path) -> Path:
    """The base binary, ``folder / "mlp.cimb"``, and the inputs ``folder / "x.npy"`` (four test digits)."""
    chip = folder / "tiny.toml"
    chip.write_text(tiny_chip_text())
    binary = folder / "mlp.cimb"
    options = PipelineOptions(chip=load_chip(str(chip)), placement_effort=0.1, calib=MODELS / "digits_calib.npz")
    compile_binary(MODELS / "digits_mlp.onnx", binary, options)
    with np.load(MODELS / "digits_test.npz") as test:
        np.save(folder / "x.npy", test["x"][:4])
    return binary


def sections_of(binary: Path) -> Sections:
    """Every section's payload, by name, in file order."""
    _, sections = read_sections(binary.read_bytes(), str(binary))
    return {name: payload.tobytes() for name, payload in sections.items()}


def repack(sections: Sections | list[tuple[str, bytes]], **header: Any) -> bytes:
    """A container of ``sections`` with valid checksums (``header``: ``version``, ``flags``)."""
    items = list(sections.items()) if isinstance(sections, dict) else sections
    return pack_container(items, **header)


def with_section(sections: Sections, name: str, payload: bytes) -> Sections:
    return {**sections, name: payload}


def with_ir(sections: Sections, old: str, new: str) -> Sections:
    """The ``ir`` text with its first ``old`` replaced by ``new``."""
    text = sections["ir"].decode()
    assert old in text, old
    return with_section(sections, "ir", text.replace(old, new, 1).encode())


def with_json(sections: Sections, name: str, edit: Callable[[dict[str, Any]], object]) -> Sections:
    """A JSON section after ``edit`` changed its object in place."""
    value = json.loads(sections[name])
    edit(value)
    return with_section(sections, name, json.dumps(value).encode())


def with_streams(sections: Sections, edit: Callable[[dict[tuple[int, int], list[Instruction]]], object]) -> Sections:
    """The ``program`` section after ``edit`` changed its streams (tile -> list of instructions) in place."""
    streams = Streams.decode(sections["program"])
    tiles = {tile: list(stream) for tile, stream in streams.tiles.items()}
    edit(tiles)
    encoded = Streams({tile: tuple(s) for tile, s in sorted(tiles.items())}, streams.strings).encode()
    return with_section(sections, "program", encoded)


def replace_field(stream: list[Instruction], position: int, **fields: Any) -> None:
    stream[position] = dataclasses.replace(stream[position], **fields)  # type: ignore[arg-type]


def weights_index(sections: Sections) -> tuple[dict[str, dict[str, Any]], bytes]:
    """The weights index and the section's data (from the data start on)."""
    payload = sections["weights"]
    (size,) = struct.unpack_from("<Q", payload)
    start = -(-(8 + size) // 64) * 64
    return json.loads(payload[8 : 8 + size]), payload[start:]


def with_index(sections: Sections, edit: Callable[[dict[str, dict[str, Any]]], object]) -> Sections:
    """The ``weights`` section with its index changed in place by ``edit`` and its data as they were."""
    index, data = weights_index(sections)
    edit(index)
    text = json.dumps(index).encode()
    head = struct.pack("<Q", len(text)) + text
    return with_section(sections, "weights", head + bytes(-len(head) % 64) + data)
