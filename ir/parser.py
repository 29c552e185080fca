"""The parser: MLIR generic syntax back into IR, the inverse of the printer.

It reads what the printer writes (and the usual MLIR variants: named values, ``{...}`` discardable attributes,
``//`` comments), so ``print(parse(print(m))) == print(m)``. Errors name the file, line and column.

Text is untrusted: nesting (regions, types, lists) deeper than ``MAX_NESTING`` is refused rather than recursed
into, integer literals must fit their element type and dims int64, and a static tensor type past the tensor limit
(``cimc.ir.limits``) is refused where it is written, so no literal makes the parser allocate what it names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from cimc.ir.limits import INT64_MAX, oversize
from cimc.ir.types import ElementType, FunctionType, TensorType, Type

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$.\-]*")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*")
_VALUE = re.compile(r"%[A-Za-z0-9_$.\-]+")
_NUMBER = re.compile(r"[-+]?(0x[0-9A-Fa-f]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)")
_DIMS = re.compile(r"((?:\?|[0-9]+)x)*")
_ELEMENT = re.compile(r"(ui|i|f)[0-9]+")


T = TypeVar("T")

#: The deepest nesting of regions, types, lists and dictionaries the parser follows; the printer's deepest is a
#: handful of levels (a module, a function, an op with a region, a rank-8 dense literal).
MAX_NESTING = 64

#: The most digits an integer literal may have: 2**64 has 20, so more is out of every element type's range.
_MAX_DIGITS = 20


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
        self._depth = 0

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

    @contextmanager
    def nested(self, pos: int) -> Iterator[None]:
        """One level deeper into a region, type, list or dictionary opened at ``pos``; refused past MAX_NESTING."""
        if self._depth >= MAX_NESTING:
            raise self.error(f"nesting deeper than {MAX_NESTING} levels; the IR text is malformed", pos)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

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
        try:
            decoded = out.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("string literal is not UTF-8 (a \\XX escape breaks a character)") from None
        self.pos = i + 1
        return decoded

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
        if self.pos == len(self.text):
            raise self.error("no operations: the text is empty or only comments; expected a module or functions")
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
                count = self.count("a result count") if self.accept(":") else 1
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
        index = self.count("a result number") if self.accept("#") else None
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

    def count(self, what: str) -> int:
        """A decimal count (results, a result number), at most int64."""
        pos = self.pos
        digits = self.match(_DIGITS, what)
        if len(digits) > _MAX_DIGITS or int(digits) > INT64_MAX:
            raise self.error(f"{what} {digits[:24]}{'...' if len(digits) > 24 else ''} is beyond int64", pos)
        return int(digits)

    def region(self) -> Region:
        self.skip()
        with self.nested(self.pos):
            return self._region()

    def _region(self) -> Region:
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
            with self.nested(pos):
                return ArrayAttr(tuple(self.sequence("]", self.attribute)))
        if self.peek("{"):
            self.expect("{")
            entries: dict[str, Attribute] = {}
            with self.nested(pos):
                self.attribute_entries(entries, "}")
            return DictAttr(tuple(entries.items()))
        if self.accept("dense_resource<"):
            key = self.match(_IDENT, "a resource key")
            self.expect(">")
            self.expect(":")
            ttype = self.tensor_type()
            if not ttype.is_static:
                raise self.error(f"dense_resource needs a static shape, not {ttype}", pos)
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
            number_type = self.element_type() if self.accept(":") else ElementType("f64" if is_float else "i64")
            if number_type.is_float:
                return FloatAttr(self.float_literal(literal, number_type, pos), number_type)
            if is_float:
                raise self.error(f"float literal {literal} with integer type {number_type}", pos)
            return IntAttr(self.integer(literal, number_type, pos), number_type)
        return TypeAttr(self.type())

    def number(self, element: ElementType) -> float | int:
        pos = self.pos
        literal = self.match(re.compile(r"true|false|" + _NUMBER.pattern), "a number")
        if literal in ("true", "false"):
            return int(literal == "true")
        if element.is_float:
            return self.float_literal(literal, element, pos)
        if _is_float_literal(literal):
            raise self.error(f"expected an integer for {element}, found {literal}", pos)
        return self.integer(literal, element, pos)

    def integer(self, literal: str, element: ElementType, pos: int) -> int:
        """An integer literal (decimal or hex) in the range of ``element``."""
        digits = literal.lstrip("+-")
        base = 16 if digits.lower().startswith("0x") else 10
        value = int(literal, base) if len(digits) <= _MAX_DIGITS + 2 else None  # "0x" and 16 hex digits fit
        low, high = _int_range(element)
        if value is None or not low <= value <= high:
            shown = literal if len(literal) <= 24 else literal[:24] + "..."
            raise self.error(f"integer literal {shown} is out of range for {element} ({low} to {high})", pos)
        return value

    def float_literal(self, literal: str, element: ElementType, pos: int) -> float:
        """A float literal (decimal, or MLIR hex bits of ``element``) whose value ``element`` holds."""
        if literal.lower().lstrip("-+").startswith("0x"):
            if len(literal.lstrip("+-")) > 2 + 2 * element.dtype.itemsize or literal.startswith(("-", "+")):
                raise self.error(f"hex float {literal} has more bits than {element} or a sign", pos)
            return _float_literal(literal, element)
        value = float(literal)
        with np.errstate(over="ignore"):
            stored = float(np.array(value, dtype=element.dtype))
        if not math.isfinite(stored):
            raise self.error(f"float literal {literal} is out of range for {element}", pos)
        return value

    def element_type(self, what: str = "a type") -> ElementType:
        pos = self.pos
        name = self.match(_ELEMENT, what)
        try:
            return ElementType(name)
        except ValueError as exc:
            raise self.error(str(exc), pos) from None

    def dense(self, pos: int) -> DenseElementsAttr:
        if self.peek('"'):
            raw = self.string()
            self.expect(">")
            self.expect(":")
            ttype = self.tensor_type()
            if not ttype.is_static:
                raise self.error("dense attribute needs a static shape", pos)
            data = _hex_bytes(raw)
            if data is None or len(data) != ttype.num_elements * ttype.dtype.itemsize:
                raise self.error(f"dense hex literal is not the {ttype.num_elements * ttype.dtype.itemsize} bytes "
                                 f"of a {ttype} as '0x' and hex digits", pos)  # fmt: skip
            array = np.frombuffer(data, dtype=ttype.dtype.newbyteorder("<")).astype(ttype.dtype)
            return DenseElementsAttr.from_array(array.reshape(ttype.static_shape))
        nested = self.peek("[")
        empty = self.peek(">")
        items = [] if empty else self._dense_items()
        self.expect(">")
        self.expect(":")
        ttype = self.tensor_type()
        if not ttype.is_static:
            raise self.error("dense attribute needs a static shape", pos)
        if empty:
            if ttype.num_elements:
                raise self.error(f"an empty dense literal does not fit {ttype}", pos)
            return DenseElementsAttr.from_array(np.zeros(ttype.static_shape, ttype.dtype))
        flat = list(_flatten(items))
        shape = _nested_shape(items)
        if shape is None or (nested and shape != ttype.shape) or (not nested and ttype.num_elements == 0):
            raise self.error(f"dense literal of shape {'ragged' if shape is None else shape} does not fit {ttype}", pos)
        values = [self._dense_value(literal, ttype.element, pos) for literal in flat]
        array = np.array(values, dtype=ttype.dtype)
        return DenseElementsAttr.from_array(np.broadcast_to(array.reshape(shape), ttype.static_shape).copy())

    def _dense_value(self, literal: str, element: ElementType, pos: int) -> float | int | bool:
        if literal in ("true", "false"):
            return literal == "true"
        if element.is_float:
            return self.float_literal(literal, element, pos)
        if _is_float_literal(literal):
            raise self.error(f"float literal {literal} in a dense {element} tensor", pos)
        return self.integer(literal, element, pos)

    def _dense_items(self) -> list | str:
        """A dense literal's elements as nested lists of their literal text."""
        self.skip()
        pos = self.pos
        if self.accept("["):
            with self.nested(pos):
                return self.sequence("]", self._dense_items)
        return self.match(re.compile(r"true|false|" + _NUMBER.pattern), "a dense element")

    # --- types
    def type(self) -> Type:
        self.skip()
        if self.peek("tensor<"):
            return self.tensor_type()
        pos = self.pos
        if self.accept("("):
            with self.nested(pos):
                inputs = self.sequence(")", self.type)
                self.expect("->")
                results = self.sequence(")", self.type) if self.accept("(") else [self.type()]
            return FunctionType(tuple(inputs), tuple(results))
        return self.element_type()

    def tensor_type(self) -> TensorType:
        pos = self.pos
        self.expect("tensor<")
        if self.accept("*"):
            raise self.error("unranked tensors are not supported", pos)
        dims = self.match(_DIMS, "tensor dimensions") if _DIMS.match(self.text, self.pos).group(0) else ""  # type: ignore[union-attr]
        for dim in dims.split("x")[:-1]:
            if dim != "?" and (len(dim) > _MAX_DIGITS or int(dim) > INT64_MAX):
                raise self.error(f"dimension {dim[:24]}{'...' if len(dim) > 24 else ''} is beyond int64", pos)
        shape = tuple(None if d == "?" else int(d) for d in dims.split("x")[:-1])
        self.skip()
        if self.peek("tensor<") or self.peek("("):
            raise self.error("tensor element must be a scalar type", pos)
        element = self.element_type()
        self.expect(">")
        ttype = TensorType(shape, element)
        problem = oversize(ttype.static_shape, ttype.dtype) if ttype.is_static else None
        if problem:
            raise self.error(f"{ttype}: {problem}", pos)
        return ttype


_DIGITS = re.compile(r"[0-9]+")


def _int_range(element: ElementType) -> tuple[int, int]:
    """The least and greatest integer ``element`` holds (0 and 1 for ``i1``)."""
    if element.name == "i1":
        return 0, 1
    info = np.iinfo(element.dtype)
    return int(info.min), int(info.max)


def _hex_bytes(text: str) -> bytes | None:
    """The bytes of ``0x`` and hex digits; None for anything else."""
    if not text.startswith("0x"):
        return None
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        return None


def _flatten(items: list | str) -> Iterator[str]:
    if isinstance(items, str):
        yield items
        return
    for item in items:
        yield from _flatten(item)


def _nested_shape(items: list | str) -> tuple[int, ...] | None:
    """The shape of nested lists, or None when they are ragged (or mix lists and scalars)."""
    if isinstance(items, str):
        return ()
    shapes = {_nested_shape(item) for item in items}
    if None in shapes or len(shapes) > 1:
        return None
    inner = shapes.pop() if shapes else ()
    return None if inner is None else (len(items), *inner)


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
