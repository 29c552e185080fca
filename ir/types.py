"""Types of the IR: element types, ranked tensor types and function types.

Types are frozen and hashable, and print in MLIR syntax (``tensor<?x64xf32>``, ``(tensor<4xf32>) -> f32``)
so that our text stays parseable by any MLIR parser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cimc.ir.limits import INT64_MAX

# MLIR spelling -> numpy dtype. ``i1`` is MLIR's boolean; integers are signless unless ``ui``.
_ELEMENT_DTYPES: dict[str, np.dtype] = {
    "f64": np.dtype(np.float64),
    "f32": np.dtype(np.float32),
    "f16": np.dtype(np.float16),
    "i1": np.dtype(np.bool_),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "ui8": np.dtype(np.uint8),
    "ui16": np.dtype(np.uint16),
    "ui32": np.dtype(np.uint32),
    "ui64": np.dtype(np.uint64),
}
_DTYPE_ELEMENTS = {dtype: name for name, dtype in _ELEMENT_DTYPES.items()}


class Type:
    """Base of every IR type."""


@dataclass(frozen=True)
class ElementType(Type):
    """A scalar element type such as ``f32``, ``i8`` or ``i1`` (bool)."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in _ELEMENT_DTYPES:
            raise ValueError(f"unknown element type '{self.name}' (known: {', '.join(_ELEMENT_DTYPES)})")

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype that holds values of this type."""
        return _ELEMENT_DTYPES[self.name]

    @property
    def is_float(self) -> bool:
        return self.name.startswith("f")

    @staticmethod
    def from_dtype(dtype: np.dtype | type) -> ElementType:
        """The element type of a numpy dtype; raises ValueError for dtypes the IR has no type for."""
        dtype = np.dtype(dtype)
        if dtype not in _DTYPE_ELEMENTS:
            raise ValueError(f"numpy dtype {dtype} has no IR element type")
        return ElementType(_DTYPE_ELEMENTS[dtype])

    def __str__(self) -> str:
        return self.name


F32 = ElementType("f32")
I64 = ElementType("i64")
I32 = ElementType("i32")
I1 = ElementType("i1")


@dataclass(frozen=True)
class TensorType(Type):
    """A ranked tensor; a dimension of ``None`` is dynamic (printed ``?``), as a symbolic ONNX batch is."""

    shape: tuple[int | None, ...]
    element: ElementType

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(None if d is None else int(d) for d in self.shape))
        for d in self.shape:
            if d is not None and not 0 <= d <= INT64_MAX:
                problem = "negative" if d < 0 else "beyond int64"
                raise ValueError(f"{problem} dimension {d} in tensor shape {self.shape}")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(d is not None for d in self.shape)

    @property
    def static_shape(self) -> tuple[int, ...]:
        """The shape of a static tensor type (ValueError when a dim is dynamic)."""
        dims = tuple(d for d in self.shape if d is not None)
        if len(dims) != self.rank:
            raise ValueError(f"{self} has dynamic dimensions")
        return dims

    @property
    def num_elements(self) -> int:
        """Element count of a static shape (an exact integer: never wraps around int64)."""
        return math.prod(self.static_shape)

    @property
    def dtype(self) -> np.dtype:
        return self.element.dtype

    def accepts(self, shape: tuple[int, ...], dtype: np.dtype) -> bool:
        """Whether a concrete array of this shape and dtype is a value of this type."""
        if np.dtype(dtype) != self.dtype or len(shape) != self.rank:
            return False
        return all(d is None or d == s for d, s in zip(self.shape, shape))

    @staticmethod
    def of(array: np.ndarray) -> TensorType:
        """The static tensor type of a numpy array."""
        return TensorType(tuple(array.shape), ElementType.from_dtype(array.dtype))

    def __str__(self) -> str:
        dims = "".join(("?" if d is None else str(d)) + "x" for d in self.shape)
        return f"tensor<{dims}{self.element}>"


@dataclass(frozen=True)
class FunctionType(Type):
    """The signature of a function: ``(inputs) -> results``."""

    inputs: tuple[Type, ...]
    results: tuple[Type, ...]

    def __str__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        if len(self.results) == 1 and not isinstance(self.results[0], FunctionType):
            return f"({ins}) -> {self.results[0]}"
        return f"({ins}) -> ({', '.join(map(str, self.results))})"
