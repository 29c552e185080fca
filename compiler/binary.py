"""Writing the compiled binary ``.cimb``: the sections of a placed module, packed and written atomically.

The layout (and the loader) live in ``cimc.runtime.binary``; this side turns a module into its ``ir`` text and
``weights`` arrays, adds the compiler's version to ``meta``, and writes the file through a temporary file and a
rename, so a failed compile never leaves a half-written binary. Identical inputs give identical bytes: fixed
section order, sorted JSON keys, no timestamps, arrays in the order the IR text first names them.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cimc.compiler.files import write_atomic
from cimc.ir.attributes import DictAttr, FloatAttr, IntAttr
from cimc.ir.core import VerifyError
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.printer import Printer
from cimc.runtime.binary import (
    META_MODEL,
    SECTIONS,
    BinaryFormatError,
    encode_json,
    encode_weights,
    is_file_name,
    load_binary,
    pack_container,
)


def cimc_version() -> str:
    """The installed cimc's version, as ``meta`` records it (``unknown`` when run from an uninstalled tree)."""
    try:
        return version("cimc")
    except PackageNotFoundError:
        return "unknown"


def module_sections(module: ModuleOp) -> tuple[bytes, bytes]:
    """The ``ir`` section (the module's text without its resource section) and the ``weights`` section (every
    resource blob it names, under the key the text names it by)."""
    printer = Printer(resources=False)
    text = printer.module_text(module)
    blobs = []
    for key, blob in printer.blobs:  # the printer's unique keys: the ones the text's dense_resource<...> names
        if blob.array is None:
            raise ValueError(
                f"resource '{key}' has no payload (it was elided in the text this module was parsed from); "
                "compile from the model or from IR printed with its resources"
            )
        blobs.append((key, blob.array))
    return text.encode("utf-8"), encode_weights(blobs)


def model_digest(path: str | os.PathLike) -> str:
    """The SHA-256 of a model file's bytes, in hex: what ``meta``'s ``model_sha256`` records, so that ``cimc eval``
    recognises the fp32 model a binary was compiled from by its content, never by a name or path in the binary."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def binary_bytes(module: ModuleOp, *, program: bytes, report: dict[str, Any], meta: dict[str, Any]) -> bytes:
    """The whole ``.cimb`` of ``module``. ``meta`` holds what the compile was given (``model``: the model's file
    name, not its path, so the bytes do not depend on where it was built; ``model_sha256``: ``model_digest`` of
    it; ``options``); ``cimc_version`` is added."""
    model = str(meta.get(META_MODEL, ""))
    if not is_file_name(model):
        raise ValueError(f"meta 'model' must be a file name, not a path ('{model}'): give os.path.basename of it")
    if "cimc_version" in meta:
        raise ValueError("meta 'cimc_version' is written by the binary writer; leave it out")
    ir, weights = module_sections(module)
    payloads = {
        "meta": encode_json({**meta, "cimc_version": cimc_version()}, "meta"),
        "ir": ir,
        "weights": weights,
        "program": bytes(program),
        "report": encode_json(report, "report"),
    }
    return pack_container([(name, payloads[name]) for name in SECTIONS])


def write_binary(
    path: str | os.PathLike,
    module: ModuleOp,
    *,
    program: bytes,
    report: dict[str, Any],
    meta: dict[str, Any],
) -> None:
    """Write the ``.cimb`` of ``module`` to ``path`` atomically (see ``binary_bytes`` for the arguments)."""
    write_atomic(path, binary_bytes(module, program=program, report=report, meta=meta))


def checked_report(path: str | os.PathLike) -> dict[str, Any]:
    """The ``report`` section of the binary at ``path``, after loading the whole binary (``load_binary``: every
    section checked) and checking each figure of the report against the placement report its IR and chip give
    (``placement_report``): a report that does not describe its binary is refused, naming the first field that
    differs. Keys this cimc does not make (a newer minor version's) are kept as they are."""
    from cimc.compiler.placement_report import placement_report

    model = load_binary(path)
    _check_placement(model.module, path)
    try:
        made = placement_report(model.module, model.chip)
    except VerifyError as exc:  # the flows the IR records (cim.traffic) name groups or values it does not have
        raise BinaryFormatError(f"{Path(path)}: section 'ir': {exc}; compile the model again") from None
    expected = json.loads(encode_json(made, "report"))
    for key, value in expected.items():
        if model.report.get(key) != value:
            raise BinaryFormatError(
                f"{Path(path)}: section 'report': field '{key}' does not match the binary's IR and chip "
                f"({'missing' if key not in model.report else 'changed'}); compile the model again"
            )
    return model.report


#: The figures of the IR's ``cim.placement`` summary the report is made from, each a number.
_PLACEMENT_FIGURES = ("bound", "lower_bound", "objective")


def _check_placement(module: ModuleOp, path: str | os.PathLike) -> None:
    """The IR's ``cim.placement`` summary holds the figures a report is made from (``_PLACEMENT_FIGURES``)."""
    from cimc.passes.place import PLACEMENT_ATTRIBUTE

    summary = module.attributes.get(PLACEMENT_ATTRIBUTE)
    entries = dict(summary.value) if isinstance(summary, DictAttr) else {}
    for figure in _PLACEMENT_FIGURES:
        if not isinstance(entries.get(figure), (IntAttr, FloatAttr)):
            raise BinaryFormatError(
                f"{Path(path)}: section 'ir': '{PLACEMENT_ATTRIBUTE}' has no number '{figure}'; compile the model again"
            )
