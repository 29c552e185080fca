"""The parser: MLIR generic syntax back into IR, the inverse of the printer.

It reads what the printer writes (and the usual MLIR variants: named values, ``{...}`` discardable attributes,
``//`` comments), so ``print(parse(print(m))) == print(m)``. Errors name the file, line and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from cimc.ir import dialects as _dialects  # noqa: F401 - registers every op the parser may meet
from cimc.ir.attributes import (
    ArrayAttr,
    Attribute,
    BoolAttr,
    DenseArrayAttr,
    DenseElementsAttr,
    DenseResourceAttr,
    DictAttr,
    FloatAttr,
    IntAttr,
    ResourceBlob,
    StringAttr,
    TypeAttr,
)
from cimc.ir.core import OPS, UNKNOWN, Block, Location, Operation, Region, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.types import ElementType, FunctionType, TensorType, Type

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$.\-]*")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*")
_VALUE = re.compile(r"%[A-Za-z0-9_$.\-]+")
_NUMBER = re.compile(r"[-+]?(0x[0-9A-Fa-f]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)")
_DIMS = re.compile(r"((?:\?|[0-9]+)x)*")
_ELEMENT = re.compile(r"(ui|i|f)[0-9]+")


T = TypeVar("T")


class ParseError(Exception):
    """The text is not valid IR; the message is ``file:line:col: error: what``."""


class Parser:
    """A recursive-descent parser over one text."""

    def __init__(self, text: str, filename: str = "<string>") -> None:
        self.filename = filename
        body, resources = _split_resources(text)
        self.text = body
        self.pos = 0
        self.blobs: dict[str, ResourceBlob] = {}
        self._resource_text = resources
        self._scopes: list[dict[str, Value | Operation]] = [{}]

    # --- errors and low-level scanning
    def error(self, message: str, pos: int | None = None) -> ParseError:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return ParseError(f"{self.filename}:{line}:{col}: error: {message}")

    def skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch in " \t\r\n":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            else:
                break

    def peek(self, literal: str) -> bool:
        self.skip()
        return self.text.startswith(literal, self.pos)

    def accept(self, literal: str) -> bool:
        if self.peek(literal):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, what: str = "") -> None:
        if not self.accept(literal):
            found = self.text[self.pos : self.pos + 12].split("\n")[0] or "end of input"
            raise self.error(f"expected '{literal}'{' ' + what if what else ''}, found '{found}'")

    def match(self, pattern: re.Pattern[str], what: str) -> str:
        self.skip()
        m = pattern.match(self.text, self.pos)
        if not m or not m.group(0):
            found = self.text[self.pos : self.pos + 12].split("\n")[0] or "end of input"
            raise self.error(f"expected {what}, found '{found}'")
        self.pos = m.end()
        return m.group(0)

    def sequence(self, close: str, item: Callable[[], T]) -> list[T]:
        """Comma-separated items up to ``close`` (the opening bracket already read)."""
        items: list[T] = []
        while not self.accept(close):
            items.append(item())
            if not self.peek(close):
                self.expect(",")
        return items

    def string(self) -> str:
        self.skip()
        if not self.text.startswith('"', self.pos):
            raise self.error("expected a string literal")
        out = bytearray()
        i = self.pos + 1
        text = self.text
        while True:
            if i >= len(text) or text[i] == "\n":
                raise self.error("unterminated string literal")
            ch = text[i]
            if ch == '"':
                break
            if ch == "\\":
                nxt = text[i + 1 : i + 3]
                simple = {"n": b"\n", "t": b"\t", '"': b'"', "\\": b"\\"}
                if nxt[:1] in simple:
                    out += simple[nxt[:1]]
                    i += 2
                    continue
                try:
                    out.append(int(nxt, 16))
                except ValueError:
                    raise self.error(f"bad escape '\\{nxt}' in string literal") from None
                i += 3
                continue
            out += ch.encode("utf-8")
            i += 1
        self.pos = i + 1
        return out.decode("utf-8")

    # --- entry point
    def parse_module(self) -> ModuleOp:
        """The whole text as one ``builtin.module`` (a bare list of functions is wrapped in one)."""
        self._parse_resources()
        self.skip()
        if self.text.startswith('"builtin.module"', self.pos):
            op = self.operation()
            self.skip()
            if self.pos != len(self.text):
                raise self.error("unexpected text after the module")
            assert isinstance(op, ModuleOp)
            return op
        module = ModuleOp()
        while self.pos < len(self.text):
            module.body.append(self.operation())
            self.skip()
        return module

    def _parse_resources(self) -> None:
        if self._resource_text is None:
            return
        sub = Parser(self._resource_text, self.filename)
        sub.expect("dialect_resources")
        sub.expect(":")
        sub.expect("{")
        while not sub.accept("}"):
            sub.match(_BARE, "a dialect name")
            sub.expect(":")
            sub.expect("{")
            while not sub.accept("}"):
                key = sub.match(_IDENT, "a resource key")
                sub.expect(":")
                self.blobs[key] = ResourceBlob(key, _decode_blob(sub, sub.string()))
                sub.accept(",")
            sub.accept(",")

    # --- operations
    def operation(self) -> Operation:
        start = self.pos
        result_names: list[tuple[str, int]] = []
        if self.peek("%"):
            while True:
                name = self.match(_VALUE, "a value name")
                count = int(self.match(re.compile(r"[0-9]+"), "a result count")) if self.accept(":") else 1
                result_names.append((name, count))
                if not self.accept(","):
                    break
            self.expect("=")
        self.skip()
        op_pos = self.pos
        op_name = self.string()
        cls = OPS.get(op_name)
        if cls is None:
            raise self.error(f"unknown op '{op_name}'", op_pos)
        self.expect("(")
        operands = self.sequence(")", self.value_use)
        attributes: dict[str, Attribute] = {}
        if self.accept("<{"):
            self.attribute_entries(attributes, "}>")
        regions: list[Region] = []
        if self.accept("("):
            regions = self.sequence(")", self.region)
        if self.peek("{") and not self.peek("{-#"):
            self.accept("{")
            self.attribute_entries(attributes, "}")
        self.expect(":")
        ftype = self.type()
        if not isinstance(ftype, FunctionType):
            raise self.error(f"'{op_name}' needs a function type '(operands) -> results'")
        if len(ftype.inputs) != len(operands):
            raise self.error(f"'{op_name}' has {len(operands)} operands but its type lists {len(ftype.inputs)}", op_pos)
        for value, expected in zip(operands, ftype.inputs):
            if value.type != expected:
                raise self.error(f"'{op_name}': operand type {value.type} differs from its use as {expected}", op_pos)
        location = self.location()
        op = cls(operands, ftype.results, attributes, regions, location)
        declared = sum(count for _, count in result_names)
        if declared != len(op.results):
            raise self.error(f"'{op_name}' declares {declared} results but its type has {len(op.results)}", start)
        index = 0
        for name, count in result_names:
            self._define(name, op if count > 1 or len(op.results) > 1 else op.results[index], start)
            index += count
        return op

    def _define(self, name: str, what: Value | Operation, pos: int) -> None:
        scope = self._scopes[-1]
        if name in scope:
            raise self.error(f"redefinition of value {name}", pos)
        scope[name] = what

    def value_use(self) -> Value:
        pos = self.pos
        name = self.match(_VALUE, "an operand")
        index = int(self.match(re.compile(r"[0-9]+"), "a result number")) if self.accept("#") else None
        for scope in reversed(self._scopes):
            if name in scope:
                found = scope[name]
                if isinstance(found, Operation):
                    if index is None or index >= len(found.results):
                        raise self.error(f"{name} has {len(found.results)} results; use {name}#N", pos)
                    return found.results[index]
                if index not in (None, 0):
                    raise self.error(f"{name} has one result", pos)
                return found
        raise self.error(f"use of undefined value {name}", pos)

    def region(self) -> Region:
        self.expect("{")
        self._scopes.append({})
        region = Region()
        block: Block | None = None
        while not self.accept("}"):
            if self.peek("^"):
                self.expect("^")
                self.match(_BARE, "a block name")
                block = region.add_block(Block())
                if self.accept("("):
                    while True:
                        pos = self.pos
                        name = self.match(_VALUE, "a block argument")
                        self.expect(":")
                        self._define(name, block.add_argument(self.type()), pos)
                        self.location()
                        if self.accept(")"):
                            break
                        self.expect(",")
                self.expect(":")
                continue
            if block is None:
                block = region.add_block(Block())
            block.append(self.operation())
        self._scopes.pop()
        if not region.blocks:
            region.add_block(Block())
        return region

    def location(self) -> Location:
        if not self.accept("loc("):
            return UNKNOWN
        if self.accept("unknown"):
            self.expect(")")
            return UNKNOWN
        name = self.string()
        depth = 1
        while depth:  # skip MLIR's file:line:col and fused forms after the name
            if self.pos >= len(self.text):
                raise self.error("unterminated location")
            ch = self.text[self.pos]
            if ch == '"':
                self.string()
                continue
            depth += ch == "("
            depth -= ch == ")"
            self.pos += 1
        return Location(name)

    # --- attributes
    def attribute_entries(self, into: dict[str, Attribute], close: str) -> None:
        if self.accept(close):
            return
        while True:
            self.skip()
            key = self.string() if self.peek('"') else self.match(_BARE, "an attribute name")
            self.expect("=", f"after attribute '{key}'")
            into[key] = self.attribute()
            if self.accept(close):
                return
            self.expect(",")

    def attribute(self) -> Attribute:
        self.skip()
        text, pos = self.text, self.pos
        if self.accept("true"):
            return BoolAttr(True)
        if self.accept("false"):
            return BoolAttr(False)
        if text.startswith('"', pos):
            return StringAttr(self.string())
        if self.accept("["):
            return ArrayAttr(tuple(self.sequence("]", self.attribute)))
        if self.peek("{"):
            self.expect("{")
            entries: dict[str, Attribute] = {}
            self.attribute_entries(entries, "}")
            return DictAttr(tuple(entries.items()))
        if self.accept("dense_resource<"):
            key = self.match(_IDENT, "a resource key")
            self.expect(">")
            self.expect(":")
            ttype = self.tensor_type()
            blob = self.blobs.setdefault(key, ResourceBlob(key, None))
            raw = blob.array
            if raw is not None and not ttype.accepts(raw.shape, raw.dtype):
                if raw.dtype != np.uint8 or raw.nbytes != ttype.num_elements * ttype.dtype.itemsize:
                    raise self.error(f"resource '{key}' holds {raw.nbytes} bytes, not a {ttype}", pos)
                typed = raw.view(ttype.dtype.newbyteorder("<")).astype(ttype.dtype).reshape(ttype.static_shape)
                blob = self.blobs[key] = ResourceBlob(key, typed)
            return DenseResourceAttr(ttype, blob)
        if self.accept("dense<"):
            return self.dense(pos)
        if self.accept("array<"):
            element = self.element_type("an element type")
            values: list[float | int] = []
            if self.accept(":"):
                while True:
                    values.append(self.number(element))
                    if not self.accept(","):
                        break
            self.expect(">")
            return DenseArrayAttr(element, tuple(values))
        if _NUMBER.match(text, pos):
            literal = self.match(_NUMBER, "a number")
            is_float = _is_float_literal(literal)
            number_type = self.element_type("a type") if self.accept(":") else ElementType("f64" if is_float else "i64")
            if number_type.is_float:
                return FloatAttr(_float_literal(literal, number_type), number_type)
            if is_float:
                raise self.error(f"float literal {literal} with integer type {number_type}", pos)
            return IntAttr(int(literal, 0), number_type)
        return TypeAttr(self.type())

    def number(self, element: ElementType) -> float | int:
        pos = self.pos
        literal = self.match(re.compile(r"true|false|" + _NUMBER.pattern), "a number")
        if literal in ("true", "false"):
            return int(literal == "true")
        if element.is_float:
            return _float_literal(literal, element)
        try:
            return int(literal, 0)
        except ValueError:
            raise self.error(f"expected an integer for {element}, found {literal}", pos) from None

    def dense(self, pos: int) -> DenseElementsAttr:
        if self.peek('"'):
            raw = self.string()
            self.expect(">")
            self.expect(":")
            ttype = self.tensor_type()
            data = bytes.fromhex(raw[2:])
            array = np.frombuffer(data, dtype=ttype.dtype.newbyteorder("<")).astype(ttype.dtype)
            return DenseElementsAttr.from_array(array.reshape(ttype.static_shape))
        items: list = []
        nested = self.peek("[")
        if not self.peek(">"):
            items = self._dense_items(ElementType("f64"))
        self.expect(">")
        self.expect(":")
        ttype = self.tensor_type()
        if not ttype.is_static:
            raise self.error("dense attribute needs a static shape", pos)
        values = np.array(items, dtype=np.float64 if ttype.element.is_float else object)
        if not nested and ttype.rank > 0 and values.size == 1:
            values = np.full(ttype.static_shape, values.reshape(()).item())
        if values.size != ttype.num_elements or (nested and values.shape != ttype.shape):
            raise self.error(f"dense literal of shape {values.shape} does not fit {ttype}", pos)
        return DenseElementsAttr.from_array(values.astype(ttype.dtype).reshape(ttype.static_shape))

    def _dense_items(self, element: ElementType) -> list:
        if self.accept("["):
            return self.sequence("]", lambda: self._dense_items(element))
        literal = self.match(re.compile(r"true|false|" + _NUMBER.pattern), "a dense element")
        if literal in ("true", "false"):
            return literal == "true"  # type: ignore[return-value]
        if _is_float_literal(literal):
            return float(literal)  # type: ignore[return-value]
        return int(literal, 0)  # type: ignore[return-value]

    # --- types
    def type(self) -> Type:
        self.skip()
        if self.peek("tensor<"):
            return self.tensor_type()
        if self.accept("("):
            inputs = self.sequence(")", self.type)
            self.expect("->")
            results = self.sequence(")", self.type) if self.accept("(") else [self.type()]
            return FunctionType(tuple(inputs), tuple(results))
        return self.element_type("a type")

    def element_type(self, what: str) -> ElementType:
        """An element type's name (``f32``, ``ui8``, ...); a ``ParseError`` for a width no element type has."""
        pos = self.pos
        name = self.match(_ELEMENT, what)
        try:
            return ElementType(name)
        except ValueError as exc:
            raise self.error(str(exc), pos) from None

    def tensor_type(self) -> TensorType:
        pos = self.pos
        self.expect("tensor<")
        if self.accept("*"):
            raise self.error("unranked tensors are not supported", pos)
        dims = self.match(_DIMS, "tensor dimensions") if _DIMS.match(self.text, self.pos).group(0) else ""  # type: ignore[union-attr]
        shape = tuple(None if d == "?" else int(d) for d in dims.split("x")[:-1])
        element = self.type()
        if not isinstance(element, ElementType):
            raise self.error("tensor element must be a scalar type", pos)
        self.expect(">")
        return TensorType(shape, element)


def _split_resources(text: str) -> tuple[str, str | None]:
    start = text.find("{-#")
    if start < 0:
        return text, None
    end = text.find("#-}", start)
    if end < 0:
        return text, text[start + 3 :]
    return text[:start] + " " * (end + 3 - start) + text[end + 3 :], text[start + 3 : end]


def _decode_blob(parser: Parser, hexed: str) -> np.ndarray:
    if not hexed.startswith("0x") or len(hexed) < 10:
        raise parser.error("a resource blob must be '0x' followed by hex digits")
    try:
        return np.frombuffer(bytes.fromhex(hexed[10:]), dtype=np.uint8)
    except ValueError:
        raise parser.error("resource blob holds non-hex characters") from None


def _is_float_literal(literal: str) -> bool:
    """A decimal with a point or an exponent (hex literals hold bits, and their 'e' is a digit)."""
    if literal.lower().lstrip("-+").startswith("0x"):
        return False
    return "." in literal or "e" in literal.lower()


def _float_literal(literal: str, element: ElementType) -> float:
    if literal.lower().lstrip("-+").startswith("0x"):  # MLIR hex float: the bits of the value in its type
        bits = int(literal, 16).to_bytes(element.dtype.itemsize, "big")
        return float(np.frombuffer(bits, dtype=element.dtype.newbyteorder(">"))[0])
    return float(literal)


def parse_module(text: str, filename: str = "<string>") -> ModuleOp:
    """Parse MLIR generic text (as the printer writes it) into a module."""
    return Parser(text, filename).parse_module()
