"""Attributes: frozen, hashable compile-time constants attached to operations.

Scalars, strings, arrays and types print in MLIR syntax. Tensors print inline (``dense<...>``) when small; large
payloads live in resource blobs beside the text (MLIR's ``dense_resource``), so a weight is never copied into an
attribute string and the printed IR stays readable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cimc.ir.types import ElementType, TensorType, Type

#: Tensors with at most this many elements print inline as ``dense<...>``; larger ones become resource blobs.
INLINE_ELEMENTS = 16


class Attribute:
    """Base of every attribute."""


@dataclass(frozen=True)
class IntAttr(Attribute):
    """An integer, printed ``3 : i64``."""

    value: int
    type: ElementType = ElementType("i64")

    def __str__(self) -> str:
        return f"{self.value} : {self.type}"


@dataclass(frozen=True)
class FloatAttr(Attribute):
    """A floating-point number, printed ``1.0e-05 : f32`` with the shortest digits that round-trip in its type."""

    value: float
    type: ElementType = ElementType("f32")

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.type.dtype.type(self.value)))

    def __eq__(self, other: object) -> bool:  # NaN attributes compare by bits, like MLIR's
        return isinstance(other, FloatAttr) and self.type == other.type and _bits(self) == _bits(other)

    def __hash__(self) -> int:
        return hash((self.type, _bits(self)))

    def __str__(self) -> str:
        return f"{format_float(self.value, self.type)} : {self.type}"


def _bits(attr: FloatAttr) -> bytes:
    return np.array(attr.value, dtype=attr.type.dtype).tobytes()


@dataclass(frozen=True)
class BoolAttr(Attribute):
    """A boolean, printed ``true`` or ``false``."""

    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(frozen=True)
class StringAttr(Attribute):
    """A string, printed as a quoted MLIR string literal."""

    value: str

    def __str__(self) -> str:
        return quote(self.value)


@dataclass(frozen=True)
class TypeAttr(Attribute):
    """A type used as a value, e.g. the ``function_type`` of a function or the target of a cast."""

    value: Type

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class ArrayAttr(Attribute):
    """A list of attributes of any kind, printed ``[a, b]``."""

    value: tuple[Attribute, ...]

    def __str__(self) -> str:
        return "[" + ", ".join(map(str, self.value)) + "]"


@dataclass(frozen=True)
class DenseArrayAttr(Attribute):
    """A list of numbers of one element type, printed ``array<i64: 1, 2>`` (kernel shapes, strides, axes)."""

    element: ElementType
    value: tuple[Any, ...]

    def __post_init__(self) -> None:
        cast = float if self.element.is_float else int
        object.__setattr__(self, "value", tuple(cast(v) for v in self.value))

    def __str__(self) -> str:
        if not self.value:
            return f"array<{self.element}>"
        items = (format_float(v, self.element) if self.element.is_float else str(v) for v in self.value)
        return f"array<{self.element}: " + ", ".join(items) + ">"


@dataclass(frozen=True)
class DictAttr(Attribute):
    """A dictionary of named attributes, printed ``{a = 1 : i64}``; keys are kept sorted."""

    value: tuple[tuple[str, Attribute], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", tuple(sorted(self.value)))

    def get(self, key: str) -> Attribute | None:
        return dict(self.value).get(key)

    def __str__(self) -> str:
        return "{" + ", ".join(f"{format_key(k)} = {v}" for k, v in self.value) + "}"


@dataclass(frozen=True)
class DenseElementsAttr(Attribute):
    """A small tensor printed inline: ``dense<[1.0, 2.0]> : tensor<2xf32>``."""

    type: TensorType
    data: bytes = field(repr=False)

    @staticmethod
    def from_array(array: np.ndarray) -> DenseElementsAttr:
        array = np.asarray(array, order="C")
        return DenseElementsAttr(TensorType.of(array), array.tobytes())

    @property
    def array(self) -> np.ndarray:
        """The payload as a read-only numpy array."""
        return np.frombuffer(self.data, dtype=self.type.dtype).reshape(self.type.static_shape)

    def __str__(self) -> str:
        array = self.array
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            return f'dense<"0x{array.astype(array.dtype.newbyteorder("<")).tobytes().hex().upper()}"> : {self.type}'
        if array.size == 0:
            return f"dense<> : {self.type}"
        flat = array.reshape(-1)
        bits = flat.view(np.dtype(f"u{flat.dtype.itemsize}"))  # by bits, so that -0.0 is not a splat of 0.0
        if array.ndim > 0 and np.all(bits == bits[0]):
            return f"dense<{_element(flat[0], self.type.element)}> : {self.type}"
        return f"dense<{_nested(array, self.type.element)}> : {self.type}"


class ResourceBlob:
    """A named, immutable payload that lives beside the IR text (MLIR ``dialect_resources``).

    Blobs compare by identity: two weights with equal values are still two weights. ``array`` is None when the
    payload was elided in the text this blob was parsed from.
    """

    __slots__ = ("name", "array")

    def __init__(self, name: str, array: np.ndarray | None) -> None:
        self.name = name
        if array is not None:
            array = np.asarray(array, order="C")
            array.flags.writeable = False
        self.array = array

    def __repr__(self) -> str:
        return f"ResourceBlob({self.name!r})"


@dataclass(frozen=True)
class DenseResourceAttr(Attribute):
    """A large tensor held in a resource blob: ``dense_resource<conv1.weight> : tensor<16x1x3x3xf32>``."""

    type: TensorType
    blob: ResourceBlob

    @property
    def array(self) -> np.ndarray:
        if self.blob.array is None:
            raise ValueError(
                f"resource '{self.blob.name}' was elided when this IR was printed; "
                "print it again with its resources (cimc ... -o FILE or --print-resources)"
            )
        return self.blob.array

    def __str__(self) -> str:
        return f"dense_resource<{self.blob.name}> : {self.type}"


def tensor_attr(array: np.ndarray, name: str = "tensor") -> DenseElementsAttr | DenseResourceAttr:
    """A tensor attribute for a constant: inline when small, a resource blob named after ``name`` when large."""
    array = np.asarray(array)
    if array.size <= INLINE_ELEMENTS:
        return DenseElementsAttr.from_array(array)
    return DenseResourceAttr(TensorType.of(array), ResourceBlob(name, array))


def tensor_value(attr: Attribute) -> np.ndarray:
    """The numpy payload of a tensor attribute (inline or resource)."""
    if isinstance(attr, (DenseElementsAttr, DenseResourceAttr)):
        return attr.array
    raise TypeError(f"expected a tensor attribute, got {attr}")


def format_float(value: float, element: ElementType) -> str:
    """Shortest decimal that round-trips in ``element``, always with a '.', or MLIR hex bits for inf and NaN."""
    if not math.isfinite(value):
        return (
            "0x" + np.array(value, dtype=element.dtype).astype(element.dtype.newbyteorder(">")).tobytes().hex().upper()
        )
    text = str(element.dtype.type(value)) if element.name != "f64" else repr(float(value))
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + ("e" + exponent if exponent else "")


def _element(value: Any, element: ElementType) -> str:
    if element.name == "i1":
        return "true" if value else "false"
    if element.is_float:
        return format_float(float(value), element)
    return str(int(value))


def _nested(array: np.ndarray, element: ElementType) -> str:
    if array.ndim == 0:
        return _element(array.item(), element)
    return "[" + ", ".join(_nested(sub, element) for sub in array) + "]"


_BARE_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$.")


def format_key(key: str) -> str:
    """An attribute name, bare when MLIR allows it, quoted otherwise."""
    if key and (key[0].isalpha() or key[0] == "_") and set(key) <= _BARE_KEY_CHARS:
        return key
    return quote(key)


def quote(text: str) -> str:
    """An MLIR string literal: printable ASCII kept, quotes and backslashes escaped, other bytes as ``\\XX``."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\' or not (32 <= byte < 127):
            out.append(f"\\{byte:02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
