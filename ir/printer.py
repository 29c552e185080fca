"""The printer: MLIR generic syntax, deterministic.

Values are numbered in order per function (``%arg0`` for block arguments, ``%0``, ``%1:2`` for results), attributes
are printed sorted by name, and resource blobs follow the module in a ``{-# dialect_resources #-}`` section, or are
left out when the text is printed elided (the default for ``print(module)``; files are written with them).
"""

from __future__ import annotations

import re
from io import StringIO

import numpy as np

from cimc.ir.attributes import Attribute, DenseResourceAttr, ResourceBlob, format_key
from cimc.ir.core import Block, Operation, Value

_KEY_BAD = re.compile(r"[^A-Za-z0-9_.$-]")


def resource_key(name: str) -> str:
    """A name usable as an MLIR resource key: letters, digits and ``_.$-``, not starting with a digit or dash."""
    key = _KEY_BAD.sub("_", name).lstrip(".-")
    return key if key and not key[0].isdigit() else "r_" + key


def blob_hex(array: np.ndarray) -> str:
    """MLIR's blob encoding: ``0x``, the alignment as 4 little-endian bytes, then the little-endian payload."""
    array = np.asarray(array, order="C")
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    alignment = max(array.dtype.itemsize, 1)
    return "0x" + alignment.to_bytes(4, "little").hex().upper() + little.tobytes().hex().upper()


class Printer:
    """Prints modules and ops. ``resources=False`` leaves the resource section out (payloads elided)."""

    def __init__(self, resources: bool = False) -> None:
        self.resources = resources
        self._names: dict[int, str] = {}
        self._blob_keys: dict[int, str] = {}
        self._numbered: set[int] = set()  # ops inside an already numbered function
        self._blobs: list[tuple[str, ResourceBlob]] = []
        self._out = StringIO()

    def module_text(self, module: Operation) -> str:
        """The whole module, with its resource section when printing resources."""
        self._op(module, 0)
        if self.resources and self._blobs:
            self._out.write("\n{-#\n  dialect_resources: {\n    builtin: {\n")
            lines = []
            for key, blob in self._blobs:
                if blob.array is not None:
                    lines.append(f'      {key}: "{blob_hex(blob.array)}"')
            self._out.write(",\n".join(lines))
            self._out.write("\n    }\n  }\n#-}\n")
        return self._out.getvalue()

    def op_text(self, op: Operation) -> str:
        """One op (and what it nests), with values named as the enclosing function names them."""
        function = op
        while function.parent is not None and function.parent.parent is not None:
            owner = function.parent.parent.parent
            if owner is None or owner.name == "builtin.module":
                break
            function = owner
        if function is not op:
            self._number(function)
        self._op(op, 0)
        return self._out.getvalue().rstrip("\n")

    # numbering
    def _number(self, op: Operation) -> None:
        """Name every value of a function: ``%argN`` for block arguments, ``%N`` for results, each counted across
        the whole function, nested regions included, so that no name shadows another (an MLIR parser that does not
        know our ops treats their regions as one name scope with the function)."""
        counters = {"args": 0, "results": 0}

        def name_block(block: Block) -> None:
            for arg in block.args:
                self._names[id(arg)] = f"%arg{counters['args']}"
                counters["args"] += 1
            for inner in block.ops:
                self._numbered.add(id(inner))
                if inner.results:
                    self._names[id(inner)] = f"%{counters['results']}"
                    counters["results"] += 1
                for region in inner.regions:
                    for nested in region.blocks:
                        name_block(nested)

        for region in op.regions:
            for block in region.blocks:
                name_block(block)

    def _value(self, value: Value) -> str:
        from cimc.ir.core import BlockArgument, OpResult

        if isinstance(value, BlockArgument):
            return self._names.get(id(value), f"%<arg{value.index}?>")
        assert isinstance(value, OpResult)
        base = self._names.get(id(value.op), "%<unnamed>")
        return base if len(value.op.results) == 1 else f"{base}#{value.index}"

    def _blob_key(self, blob: ResourceBlob) -> str:
        key = self._blob_keys.get(id(blob))
        if key is None:
            base = key = resource_key(blob.name)
            taken = {k for k, _ in self._blobs}
            suffix = 0
            while key in taken:
                suffix += 1
                key = f"{base}_{suffix}"
            self._blob_keys[id(blob)] = key
            self._blobs.append((key, blob))
        return key

    @property
    def blobs(self) -> list[tuple[str, ResourceBlob]]:
        """The resource blobs named so far, each with the unique key the text gives it, in order of first use."""
        return list(self._blobs)

    def attribute(self, attr: Attribute) -> str:
        """An attribute's text; resource blobs are given their unique key here."""
        if isinstance(attr, DenseResourceAttr):
            return f"dense_resource<{self._blob_key(attr.blob)}> : {attr.type}"
        from cimc.ir.attributes import ArrayAttr, DictAttr

        if isinstance(attr, ArrayAttr):
            return "[" + ", ".join(self.attribute(a) for a in attr.value) + "]"
        if isinstance(attr, DictAttr):
            return "{" + ", ".join(f"{format_key(k)} = {self.attribute(v)}" for k, v in attr.value) + "}"
        return str(attr)

    # ops
    def _op(self, op: Operation, indent: int) -> None:
        pad = "  " * indent
        out = self._out
        out.write(pad)
        if op.results:
            name = self._names.setdefault(id(op), f"%{len(self._names)}")
            out.write(name if len(op.results) == 1 else f"{name}:{len(op.results)}")
            out.write(" = ")
        out.write(f'"{op.name}"(' + ", ".join(self._value(v) for v in op.operands) + ")")
        if op.attributes:
            items = sorted(op.attributes.items())
            out.write(" <{" + ", ".join(f"{format_key(k)} = {self.attribute(v)}" for k, v in items) + "}>")
        if op.regions:
            if op.name != "builtin.module" and id(op) not in self._numbered:
                self._number(op)  # a function: one name scope, its nested regions included
            out.write(" (")
            for r, region in enumerate(op.regions):
                out.write("{\n" if r == 0 else ", {\n")
                for block in region.blocks:
                    self._block(block, indent + 1)
                out.write(pad + "}")
            out.write(")")
        ins = ", ".join(str(v.type) for v in op.operands)
        outs = ", ".join(str(r.type) for r in op.results)
        out.write(f" : ({ins}) -> " + (outs if len(op.results) == 1 else f"({outs})"))
        if op.location.name is not None:
            out.write(f" {op.location}")
        out.write("\n")

    def _block(self, block: Block, indent: int) -> None:
        if block.args:
            args = ", ".join(f"{self._value(a)}: {a.type}" for a in block.args)
            self._out.write("  " * (indent - 1) + f"^bb0({args}):\n")
        for op in block.ops:
            self._op(op, indent)


def print_module(module: Operation, resources: bool = False) -> str:
    """The module as MLIR generic text; with ``resources`` the blobs follow it so the text is complete."""
    return Printer(resources=resources).module_text(module)
