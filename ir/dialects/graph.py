"""The ``graph`` dialect: hardware-independent tensor ops with ONNX semantics at one canonical opset.

Each op mirrors one ONNX operator at ``OPSET``: its operands, results and attributes are declared from the ONNX
schema (names, optional and variadic inputs, attribute kinds and defaults, element-type rules), so the dialect
cannot drift from the standard, and its result types are inferred with ONNX's own per-node shape inference. The
schemas are read from a table generated from ``onnx.defs`` (``cimc.ir.dialects.onnx_schemas``), so declaring,
parsing, verifying and running graph ops never imports onnx; ``cimc.ir.dialects.graph_onnx`` holds what does need
it (shape inference when an op is built without result types, ONNX nodes and attributes, the table's generator).
What each op adds is its name, a docstring with an IR example, and ``evaluate``: a numpy reference implementation.
Together these are the reference interpreter, checked against onnxruntime.
"""

from __future__ import annotations

import functools
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self, overload

import numpy as np

from cimc.ir import kernels
from cimc.ir.attributes import (
    ArrayAttr,
    Attribute,
    DenseArrayAttr,
    DenseElementsAttr,
    DenseResourceAttr,
    FloatAttr,
    IntAttr,
    StringAttr,
    tensor_attr,
)
from cimc.ir.core import (
    REQUIRED,
    SEGMENTS,
    UNKNOWN,
    AttrDef,
    Location,
    OpDef,
    OperandDef,
    Operation,
    OpResult,
    ResultDef,
    Value,
    VerifyError,
    register_op,
)
from cimc.ir.dialects import onnx_schemas
from cimc.ir.types import ElementType, TensorType, Type

if TYPE_CHECKING:
    import onnx

#: The one ONNX opset every imported model is converted to; the graph ops have its semantics.
OPSET = onnx_schemas.OPSET

_ONNX_ELEMENTS = {code: name for name, code in onnx_schemas.ELEMENT_CODES.items()}


def element_from_onnx(elem_type: int) -> ElementType:
    """The IR element type of an ONNX ``TensorProto`` data type code; ValueError for types the IR lacks."""
    if elem_type not in _ONNX_ELEMENTS:
        from onnx import TensorProto  # only to name the type in the message

        raise ValueError(f"ONNX element type {TensorProto.DataType.Name(elem_type)} is not supported")
    return ElementType(_ONNX_ELEMENTS[elem_type])


def element_to_onnx(element: ElementType) -> int:
    """The ONNX ``TensorProto`` data type code of an IR element type."""
    return onnx_schemas.ELEMENT_CODES[element.name]


#: ONNX schema attribute kind -> the IR attribute class(es) holding its values; attributes of other kinds (graphs,
#: sparse tensors, type protos) are left out of the op definitions.
ATTRIBUTE_KINDS: dict[str, type[Attribute] | tuple[type[Attribute], ...]] = {
    "INT": IntAttr,
    "FLOAT": FloatAttr,
    "STRING": StringAttr,
    "INTS": DenseArrayAttr,
    "FLOATS": DenseArrayAttr,
    "STRINGS": ArrayAttr,
    "TENSOR": (DenseElementsAttr, DenseResourceAttr),
}


def _schema(onnx_type: str) -> dict[str, Any]:
    """The table entry of ``onnx_type``; an op type the table lacks is read from onnx itself until the table is
    regenerated (``python -m cimc.ir.dialects.graph_onnx``), which ``tests/ir/test_onnx_schemas.py`` demands."""
    if onnx_type in onnx_schemas.SCHEMAS:
        return onnx_schemas.SCHEMAS[onnx_type]
    from cimc.ir.dialects.graph_onnx import read_schema

    return read_schema(onnx_type)


def definition_from_schema(onnx_type: str) -> OpDef:
    """An ``OpDef`` read off the ONNX schema of ``onnx_type`` at ``OPSET``."""
    schema = _schema(onnx_type)
    return OpDef(
        operands=tuple(OperandDef(name, kind) for name, kind, _ in schema["operands"]),
        results=tuple(ResultDef(name, kind) for name, kind, _ in schema["results"]),
        attributes={
            name: AttrDef(ATTRIBUTE_KINDS[kind], REQUIRED if required else default)
            for name, kind, required, default in schema["attributes"]
        },
    )


#: ONNX ops that may read an infinite constant: they select or clamp with it rather than compute with it (PyTorch
#: exports ``masked_fill(mask, -inf)`` as a Where, and an open bound of a clamp as Clip's inf).
INFINITY_READERS = frozenset({"Where", "Clip", "Max", "Min"})


def nonfinite(array: np.ndarray) -> str | None:
    """What is not finite in a float array, for a message: ``NaN (2 of 8 values, the first at [1, 0])``; None when
    every value is finite (or the array holds no floats). NaN is named before infinity when it holds both."""
    array = np.asarray(array)
    if array.dtype.kind != "f":
        return None
    bad = ~np.isfinite(array)
    if not bad.any():
        return None
    nan = np.isnan(array)
    mask = nan if nan.any() else bad
    first = np.unravel_index(int(np.argmax(mask)), array.shape) if array.ndim else ()
    kind = "NaN" if nan.any() else str(array[first])
    return f"{kind} ({int(mask.sum())} of {array.size} values, the first at {[int(i) for i in first]})"


# --- ops ---------------------------------------------------------------------------------------------------------

#: Constant operands up to this many elements are handed to shape inference by ``GraphOp.build`` (shapes, axes,
#: scales); weights are not, as no shape depends on them and copying them would cost time.
SHAPE_OPERAND_SIZE = 4096

#: ONNX op type -> graph op class, for the importer and the ONNX backend.
BY_ONNX_TYPE: dict[str, type[GraphOp]] = {}


def _snake(onnx_type: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", onnx_type).lower()


@dataclass(frozen=True)
class TypeParams:
    """An ONNX schema's element-type rules: each input's and output's type parameter (``T``) or fixed type, and
    the element types each parameter allows. Values sharing a parameter must share their element type."""

    operands: tuple[str, ...]
    results: tuple[str, ...]
    allowed: dict[str, frozenset[str]]


def _type_params(onnx_type: str) -> TypeParams:
    schema = _schema(onnx_type)
    return TypeParams(
        tuple(param for *_, param in schema["operands"]),
        tuple(param for *_, param in schema["results"]),
        {param: frozenset(elements) for param, elements in schema["type_params"].items()},
    )


def graph_op(onnx_type: str, name: str | None = None):  # noqa: ANN201 - a class decorator
    """Class decorator: declare a graph op mirroring ONNX ``onnx_type`` (named ``graph.<snake_case>``)."""

    def wrap(cls: type[GraphOp]) -> type[GraphOp]:
        cls.onnx_type = onnx_type
        cls.name = "graph." + (name or _snake(onnx_type))
        cls.definition = definition_from_schema(onnx_type)
        cls.type_params = _type_params(onnx_type)
        BY_ONNX_TYPE[onnx_type] = cls
        register_op(cls)
        return cls

    return wrap


class GraphOp(Operation):
    """Base of the ONNX-mirroring ops: result types from ONNX shape inference.

    Every subclass defines ``evaluate(args) -> list[np.ndarray]``, its numpy reference implementation: one array
    per operand in, one per result out (``group_args`` splits them into required and optional ones).
    """

    onnx_type: ClassVar[str] = ""
    type_params: ClassVar[TypeParams]

    @classmethod
    def build(
        cls,
        *operands: Value | Sequence[Value] | None,
        attributes: dict[str, Attribute] | None = None,
        result_types: Sequence[Type] | None = None,
        location: Location = UNKNOWN,
    ) -> Self:
        """``Operation.build``, with the values of small ``graph.constant`` operands given to shape inference, so
        that a Reshape by a constant shape (or a Resize by constant scales) gets a static result type."""
        op = super().build(*operands, attributes=attributes, result_types=result_types or (), location=location)
        if result_types is None:
            constants = {
                i: v.op.value
                for i, v in enumerate(op.operands)
                if isinstance(v, OpResult) and isinstance(v.op, ConstantOp) and v.op.value.size <= SHAPE_OPERAND_SIZE
            }
            inferred = infer_types(cls, [v.type for v in op.operands], op.attributes, constants)
            op.results = [OpResult(t, op, i) for i, t in enumerate(inferred)]
        return op

    @classmethod
    def result_count(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> int:
        """How many results inference gives by default: the required ones (ops with variadic results override)."""
        return sum(d.kind == "single" for d in cls.definition.results) or 1

    def group_args(self, args: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Runtime arrays arranged like the declared operands of an op with optional ones: the required arrays,
        then one entry per optional operand, None where absent (``(x, w), (b,) = self.group_args(args)``).
        Ops with a variadic operand read ``args`` directly."""
        required: list[np.ndarray] = []
        optional: list[np.ndarray | None] = []
        start = 0
        for d, group in zip(self.definition.operands, self.operand_groups()):
            if d.kind == "variadic":
                raise TypeError(f"'{self.name}' has a variadic operand; read its arguments directly")
            chunk = args[start : start + len(group)]
            start += len(group)
            if d.kind == "single":
                required.append(chunk[0])
            else:
                optional.append(chunk[0] if chunk else None)
        return required, optional

    def to_onnx_node(self, input_names: list[str], output_names: list[str]) -> onnx.NodeProto:
        """This op as an ONNX node over the given value names (absent optional inputs become '')."""
        from onnx import helper

        from cimc.ir.dialects.graph_onnx import attribute_to_onnx

        names = iter(input_names)
        inputs: list[str] = []
        for d, group in zip(self.definition.operands, self.operand_groups()):
            if d.kind == "variadic":
                inputs.extend(next(names) for _ in group)
            else:
                inputs.append(next(names) if group else "")
        while inputs and inputs[-1] == "":
            inputs.pop()
        attrs = [attribute_to_onnx(k, v) for k, v in sorted(self.attributes.items()) if k != SEGMENTS and "." not in k]
        node = helper.make_node(self.onnx_type, inputs, output_names, name=self.location.name or "")
        node.attribute.extend(attrs)
        return node

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        return cls.infer(operand_types, attributes, {})

    @classmethod
    def infer(
        cls,
        operand_types: list[Type],
        attributes: dict[str, Attribute],
        constants: dict[int, np.ndarray],
        num_results: int | None = None,
    ) -> list[Type]:
        """Result types by ONNX's shape inference for this op (see ``infer_types``); ops where onnxruntime's
        result shapes differ from ONNX's inference override this, so types always match what ``evaluate`` gives."""
        from cimc.ir.dialects.graph_onnx import infer_with_onnx

        return infer_with_onnx(cls, operand_types, attributes, constants, num_results)

    def verify_(self) -> None:
        for i, value in enumerate(self.operands):
            if not isinstance(value.type, TensorType):
                raise self.error(f"operand {i} must be a tensor, got {value.type}")
        for r in self.results:
            if not isinstance(r.type, TensorType):
                raise self.error(f"result {r.index} must be a tensor, got {r.type}")
        self._verify_element_types()

    def _verify_element_types(self) -> None:
        """ONNX's type constraints: each element type allowed by its parameter, and one element type per parameter
        (a Conv's input and weight are both ``T``)."""
        params = self.type_params
        named: list[tuple[str, str, str]] = []  # (what, type parameter, element type)
        for d, param, group in zip(self.definition.operands, params.operands, self.operand_groups()):
            named += [(f"operand '{d.name}'", param, v.type.element.name) for v in group]  # type: ignore[attr-defined]
        result_params = list(params.results) + [params.results[-1]] * (len(self.results) - len(params.results))
        for r, param in zip(self.results, result_params):
            named.append((f"result {r.index}", param, r.type.element.name))  # type: ignore[attr-defined]
        seen: dict[str, tuple[str, str]] = {}
        for what, param, element in named:
            allowed = params.allowed.get(param, frozenset())
            if element not in allowed:
                raise self.error(f"{what} has element type {element}; ONNX {self.onnx_type} allows {sorted(allowed)}")
            first = seen.setdefault(param, (what, element))
            if first[1] != element:
                raise self.error(
                    f"{first[0]} ({first[1]}) and {what} ({element}) must have the same element type ({param})"
                )


def infer_types(cls: type[GraphOp], operand_types: list[Type], attributes: dict[str, Attribute],
                constants: dict[int, np.ndarray], num_results: int | None = None) -> list[Type]:  # fmt: skip
    """Result types of a graph op, with the values of constant operands (a Reshape's shape) where known;
    ``num_results`` asks for optional results too (a LayerNormalization's Mean and InvStdDev)."""
    return cls.infer(operand_types, attributes, constants, num_results)


# --- the ops ----------------------------------------------------------------------------------------------------


@register_op
class ConstantOp(Operation):
    """A constant tensor; large ones live in resource blobs.

    ``%0 = "graph.constant"() <{value = dense_resource<fc1.weight> : tensor<64x10xf32>}> : () -> tensor<64x10xf32>``
    """

    name = "graph.constant"
    definition = OpDef(
        results=(ResultDef("output"),), attributes={"value": AttrDef((DenseElementsAttr, DenseResourceAttr))}
    )

    @staticmethod
    def create(array: np.ndarray, name: str = "tensor") -> ConstantOp:
        attr = tensor_attr(np.asarray(array), name)
        return ConstantOp([], [attr.type], {"value": attr})

    @property
    def value(self) -> np.ndarray:
        return self.attributes["value"].array  # type: ignore[attr-defined]

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        return [self.value]

    def verify_(self) -> None:
        if self.results[0].type != self.attributes["value"].type:  # type: ignore[attr-defined]
            raise self.error(f"result type {self.results[0].type} differs from its value's type")


@overload
def _ints(array: np.ndarray) -> list[int]: ...
@overload
def _ints(array: None) -> None: ...
@overload
def _ints(array: np.ndarray | None) -> list[int] | None: ...
def _ints(array: np.ndarray | None) -> list[int] | None:
    """A 1-D integer operand (axes, shape, pads, ...) as Python ints; None when the operand is absent."""
    return None if array is None else [int(v) for v in np.asarray(array).reshape(-1)]


def _static_dim(value: Value, axis: int) -> int | None:
    """Dimension ``axis`` of a tensor value when static, else None."""
    ttype = value.type
    if not isinstance(ttype, TensorType) or not -ttype.rank <= axis < ttype.rank:
        return None
    return ttype.shape[axis]


def _rank(value: Value) -> int:
    return _rank_of(value.type)


def _rank_of(ttype: Type) -> int:
    return ttype.rank if isinstance(ttype, TensorType) else 0


# --- elementwise --------------------------------------------------------------------------------------------------


class _Elementwise(GraphOp):
    """Base of the elementwise ops: ``compute`` applies ``ufunc`` to the operands with numpy broadcasting.

    numpy keeps float32 in float32 for these, so results have the element type ONNX gives. Ops whose function is
    not one ufunc override ``compute``.
    """

    ufunc: ClassVar[np.ufunc]

    def _apply_ufunc(self, *xs: np.ndarray) -> np.ndarray:
        return self.ufunc(*xs)

    #: the op's function of its operand arrays, one argument per operand
    compute: Callable[..., np.ndarray] = _apply_ufunc

    def param(self, name: str, x: np.ndarray) -> np.ndarray:
        """A float attribute (alpha, beta, ...) as a scalar of x's element type, so float32 math stays float32."""
        return np.asarray(self.attr(name), x.dtype)

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(self.compute(*args))]


@graph_op("Relu")
class ReluOp(_Elementwise):
    """max(x, 0): ``%1 = "graph.relu"(%0) : (tensor<1x8xf32>) -> tensor<1x8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, np.zeros((), x.dtype))


@graph_op("LeakyRelu")
class LeakyReluOp(_Elementwise):
    """x, or alpha * x below 0: ``%1 = "graph.leaky_relu"(%0) <{alpha = 0.1 : f32}> : (...) -> tensor<8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return np.where(x < 0, x * self.param("alpha", x), x)


@graph_op("PRelu", name="prelu")
class PReluOp(_Elementwise):
    """x, or slope * x below 0, slope broadcast to x: ``%2 = "graph.prelu"(%0, %1) : (...) -> tensor<1x8x4x4xf32>``."""

    def compute(self, x: np.ndarray, slope: np.ndarray) -> np.ndarray:
        return np.where(x < 0, x * slope, x).astype(x.dtype, copy=False)


@graph_op("Clip")
class ClipOp(GraphOp):
    """x limited to [min, max], both optional operands: ``%3 = "graph.clip"(%0, %1, %2) : (...) -> tensor<8xf32>``."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,), (low, high) = self.group_args(args)
        if low is not None:
            x = np.maximum(x, np.asarray(low, x.dtype))
        if high is not None:  # after min, so that min > max gives max, as ONNX says
            x = np.minimum(x, np.asarray(high, x.dtype))
        return [np.asarray(x)]


@graph_op("Sigmoid")
class SigmoidOp(_Elementwise):
    """1 / (1 + exp(-x)): ``%1 = "graph.sigmoid"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return np.exp(-np.logaddexp(0, -x))  # = 1 / (1 + exp(-x)), without overflow for very negative x


@graph_op("HardSigmoid")
class HardSigmoidOp(_Elementwise):
    """max(0, min(1, alpha * x + beta)): ``%1 = "graph.hard_sigmoid"(%0) <{alpha = 0.2 : f32}> : (...) -> ...``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x * self.param("alpha", x) + self.param("beta", x), 0, 1).astype(x.dtype, copy=False)


@graph_op("HardSwish")
class HardSwishOp(_Elementwise):
    """x * max(0, min(1, x / 6 + 1/2)): ``%1 = "graph.hard_swish"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return x * np.clip(x * np.asarray(1 / 6, x.dtype) + np.asarray(0.5, x.dtype), 0, 1)


@graph_op("Tanh")
class TanhOp(_Elementwise):
    """tanh(x): ``%1 = "graph.tanh"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.tanh


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in x's float type (numpy has none; ``math.erf`` is exact)."""
    return np.asarray(_ERF(np.asarray(x, np.float64))).astype(x.dtype)


_ERF = np.frompyfunc(math.erf, 1, 1)


@graph_op("Erf")
class ErfOp(_Elementwise):
    """The error function: ``%1 = "graph.erf"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return _erf(x)


@graph_op("Gelu")
class GeluOp(_Elementwise):
    """x * Phi(x), exact or tanh-approximated: ``%1 = "graph.gelu"(%0) <{approximate = "tanh"}> : (...) -> ...``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        if self.attr("approximate") == "tanh":
            inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x.astype(np.float64) ** 3)
            return (0.5 * x * (1 + np.tanh(inner))).astype(x.dtype)
        return (0.5 * x * (1 + _erf(x.astype(np.float64) / np.sqrt(2)))).astype(x.dtype)

    def verify_(self) -> None:
        super().verify_()
        if self.attr("approximate") not in ("none", "tanh"):
            raise self.error(f"approximate must be 'none' or 'tanh', got '{self.attr('approximate')}'")


@graph_op("Softplus")
class SoftplusOp(_Elementwise):
    """log(1 + exp(x)): ``%1 = "graph.softplus"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return np.logaddexp(0, x).astype(x.dtype, copy=False)


@graph_op("Mish")
class MishOp(_Elementwise):
    """x * tanh(softplus(x)): ``%1 = "graph.mish"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return (x * np.tanh(np.logaddexp(0, x))).astype(x.dtype, copy=False)


@graph_op("Elu")
class EluOp(_Elementwise):
    """x, or alpha * (exp(x) - 1) below 0: ``%1 = "graph.elu"(%0) <{alpha = 1.0 : f32}> : (tensor<8xf32>) -> ...``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return np.where(x < 0, self.param("alpha", x) * np.expm1(x), x)


@graph_op("Selu")
class SeluOp(_Elementwise):
    """gamma * x, or gamma * alpha * (exp(x) - 1) at and below 0 (the self-normalizing unit):
    ``%1 = "graph.selu"(%0) <{alpha = 1.67326319 : f32, gamma = 1.05070102 : f32}> : (tensor<8xf32>) -> ...``.
    """

    def compute(self, x: np.ndarray) -> np.ndarray:
        negative = self.param("alpha", x) * np.exp(x) - self.param("alpha", x)
        return self.param("gamma", x) * np.where(x > 0, x, negative)


@graph_op("Celu")
class CeluOp(_Elementwise):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), the continuously differentiable ELU:
    ``%1 = "graph.celu"(%0) <{alpha = 2.0 : f32}> : (tensor<8xf32>) -> tensor<8xf32>``.
    """

    def compute(self, x: np.ndarray) -> np.ndarray:
        alpha = self.param("alpha", x)
        return np.maximum(x, 0) + np.minimum(alpha * np.expm1(x / alpha), 0)


@graph_op("Softsign")
class SoftsignOp(_Elementwise):
    """x / (1 + |x|): ``%1 = "graph.softsign"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return x / (1 + np.abs(x))


@graph_op("ThresholdedRelu")
class ThresholdedReluOp(_Elementwise):
    """x above alpha, else 0: ``%1 = "graph.thresholded_relu"(%0) <{alpha = 1.0 : f32}> : (...) -> tensor<8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > self.param("alpha", x), x, np.zeros((), x.dtype))


@graph_op("Shrink")
class ShrinkOp(_Elementwise):
    """x + bias below -lambd, x - bias above lambd, else 0:
    ``%1 = "graph.shrink"(%0) <{bias = 0.5 : f32, lambd = 0.5 : f32}> : (tensor<8xf32>) -> tensor<8xf32>``.

    Integer inputs are shifted in float32 and truncated back, as onnxruntime's ``T(x + bias)`` does.
    """

    def compute(self, x: np.ndarray) -> np.ndarray:
        xs = x if x.dtype.kind == "f" else x.astype(np.float32)
        lambd, bias = self.param("lambd", xs), self.param("bias", xs)
        shrunk = np.where(xs < -lambd, xs + bias, np.where(xs > lambd, xs - bias, np.zeros((), xs.dtype)))
        return shrunk.astype(x.dtype)


@graph_op("Sign")
class SignOp(_Elementwise):
    """-1, 0 or 1 by the sign of x (NaN stays NaN): ``%1 = "graph.sign"(%0) : (tensor<8xi32>) -> tensor<8xi32>``."""

    ufunc = np.sign


@graph_op("Round")
class RoundOp(_Elementwise):
    """To the nearest integer, halves to even: ``%1 = "graph.round"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.rint


@graph_op("IsNaN", name="is_nan")
class IsNaNOp(_Elementwise):
    """Whether x is NaN, as bool: ``%1 = "graph.is_nan"(%0) : (tensor<8xf32>) -> tensor<8xi1>``."""

    ufunc = np.isnan


@graph_op("IsInf")
class IsInfOp(_Elementwise):
    """Whether x is infinite, counting +inf and -inf as detect_positive and detect_negative say:
    ``%1 = "graph.is_inf"(%0) <{detect_negative = 0 : i64}> : (tensor<8xf32>) -> tensor<8xi1>``.
    """

    def compute(self, x: np.ndarray) -> np.ndarray:
        positive, negative = bool(self.attr("detect_positive")), bool(self.attr("detect_negative"))
        return (np.isposinf(x) & positive) | (np.isneginf(x) & negative)


@graph_op("Sqrt")
class SqrtOp(_Elementwise):
    """Square root: ``%1 = "graph.sqrt"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.sqrt


@graph_op("Exp")
class ExpOp(_Elementwise):
    """e ** x: ``%1 = "graph.exp"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.exp


@graph_op("Log")
class LogOp(_Elementwise):
    """Natural logarithm: ``%1 = "graph.log"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.log


@graph_op("Neg")
class NegOp(_Elementwise):
    """-x: ``%1 = "graph.neg"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.negative


@graph_op("Abs")
class AbsOp(_Elementwise):
    """|x|: ``%1 = "graph.abs"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.abs


@graph_op("Reciprocal")
class ReciprocalOp(_Elementwise):
    """1 / x: ``%1 = "graph.reciprocal"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.reciprocal


@graph_op("Floor")
class FloorOp(_Elementwise):
    """Round down: ``%1 = "graph.floor"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.floor


@graph_op("Ceil")
class CeilOp(_Elementwise):
    """Round up: ``%1 = "graph.ceil"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.ceil


@graph_op("Sin")
class SinOp(_Elementwise):
    """Sine: ``%1 = "graph.sin"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.sin


@graph_op("Cos")
class CosOp(_Elementwise):
    """Cosine: ``%1 = "graph.cos"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    ufunc = np.cos


@graph_op("Not")
class NotOp(_Elementwise):
    """Logical not of a bool tensor: ``%1 = "graph.not"(%0) : (tensor<8xi1>) -> tensor<8xi1>``."""

    ufunc = np.logical_not


@graph_op("Identity")
class IdentityOp(_Elementwise):
    """The input itself: ``%1 = "graph.identity"(%0) : (tensor<8xf32>) -> tensor<8xf32>``."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return x


@graph_op("Add")
class AddOp(_Elementwise):
    """Elementwise sum with numpy broadcasting: ``%2 = "graph.add"(%0, %1) : (...) -> tensor<1x8xf32>``."""

    ufunc = np.add


@graph_op("Sub")
class SubOp(_Elementwise):
    """Elementwise difference: ``%2 = "graph.sub"(%0, %1) : (tensor<1x8xf32>, tensor<8xf32>) -> tensor<1x8xf32>``."""

    ufunc = np.subtract


@graph_op("Mul")
class MulOp(_Elementwise):
    """Elementwise product: ``%2 = "graph.mul"(%0, %1) : (tensor<1x8xf32>, tensor<1xf32>) -> tensor<1x8xf32>``."""

    ufunc = np.multiply


def _truncating_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division rounding toward zero (C's, onnxruntime's), where numpy's ``//`` rounds down."""
    with np.errstate(divide="ignore"):
        quotient = np.floor_divide(a, b)
        inexact = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return quotient + inexact.astype(quotient.dtype)


@graph_op("Div")
class DivOp(_Elementwise):
    """Elementwise quotient; integers truncate toward zero, as in C: ``%2 = "graph.div"(%0, %1) : (...) -> ...``."""

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b) if a.dtype.kind not in "iu" else _truncating_divide(a, b)


@graph_op("Pow")
class PowOp(_Elementwise):
    """base ** exponent, in the base's element type: ``%2 = "graph.pow"(%0, %1) : (...) -> tensor<8xf32>``."""

    def compute(self, base: np.ndarray, exponent: np.ndarray) -> np.ndarray:
        if base.dtype.kind == "f":
            return np.power(base, exponent.astype(base.dtype))
        if exponent.dtype.kind in "iu" and np.all(exponent >= 0):
            return np.power(base, exponent.astype(base.dtype))
        # negative or fractional exponents of an integer base: pow in double, truncated back (as C++ casts)
        return np.power(base.astype(np.float64), exponent.astype(np.float64)).astype(base.dtype)


@graph_op("Equal")
class EqualOp(_Elementwise):
    """a == b as bool: ``%2 = "graph.equal"(%0, %1) : (tensor<8xi64>, tensor<8xi64>) -> tensor<8xi1>``."""

    ufunc = np.equal


@graph_op("Less")
class LessOp(_Elementwise):
    """a < b as bool: ``%2 = "graph.less"(%0, %1) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xi1>``."""

    ufunc = np.less


@graph_op("Greater")
class GreaterOp(_Elementwise):
    """a > b as bool: ``%2 = "graph.greater"(%0, %1) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xi1>``."""

    ufunc = np.greater


@graph_op("LessOrEqual")
class LessOrEqualOp(_Elementwise):
    """a <= b as bool: ``%2 = "graph.less_or_equal"(%0, %1) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xi1>``."""

    ufunc = np.less_equal


@graph_op("GreaterOrEqual")
class GreaterOrEqualOp(_Elementwise):
    """a >= b as bool: ``%2 = "graph.greater_or_equal"(%0, %1) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xi1>``."""

    ufunc = np.greater_equal


@graph_op("And")
class AndOp(_Elementwise):
    """Logical and of bool tensors: ``%2 = "graph.and"(%0, %1) : (tensor<8xi1>, tensor<8xi1>) -> tensor<8xi1>``."""

    ufunc = np.logical_and


@graph_op("Or")
class OrOp(_Elementwise):
    """Logical or of bool tensors: ``%2 = "graph.or"(%0, %1) : (tensor<8xi1>, tensor<8xi1>) -> tensor<8xi1>``."""

    ufunc = np.logical_or


@graph_op("Xor")
class XorOp(_Elementwise):
    """Logical exclusive or of bool tensors: ``%2 = "graph.xor"(%0, %1) : (tensor<8xi1>, ...) -> tensor<8xi1>``."""

    ufunc = np.logical_xor


@graph_op("Mod")
class ModOp(_Elementwise):
    """Remainder of a / b: with the divisor's sign (Python's %, integers only) or, when fmod, the dividend's (C's
    fmod, integers and floats): ``%2 = "graph.mod"(%0, %1) <{fmod = 1 : i64}> : (...) -> tensor<8xf32>``.
    """

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.fmod(a, b) if self.attr("fmod") else np.mod(a, b)

    def verify_(self) -> None:
        super().verify_()
        if self.attr("fmod") not in (0, 1):
            raise self.error(f"fmod must be 0 or 1, got {self.attr('fmod')}")
        element = self.operands[0].type.element  # type: ignore[attr-defined]
        if element.is_float and not self.attr("fmod"):
            raise self.error(f"the remainder of {element} tensors needs fmod = 1 (fmod = 0 is for integers)")


@graph_op("Where")
class WhereOp(_Elementwise):
    """X where condition else Y: ``%3 = "graph.where"(%0, %1, %2) : (tensor<8xi1>, ...) -> tensor<8xf32>``."""

    def compute(self, condition: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.where(condition, x, y)


class _Variadic(GraphOp):
    """Base of the ops folding ``ufunc`` over any number of broadcast operands (Max, Min, Sum)."""

    ufunc: ClassVar[np.ufunc]

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(functools.reduce(self.ufunc, args))]


@graph_op("Max")
class MaxOp(_Variadic):
    """Elementwise maximum of N tensors: ``%2 = "graph.max"(%0, %1) : (...) -> tensor<8xf32>``."""

    ufunc = np.maximum


@graph_op("Min")
class MinOp(_Variadic):
    """Elementwise minimum of N tensors: ``%2 = "graph.min"(%0, %1) : (...) -> tensor<8xf32>``."""

    ufunc = np.minimum


@graph_op("Sum")
class SumOp(_Variadic):
    """Elementwise sum of N tensors: ``%3 = "graph.sum"(%0, %1, %2) : (...) -> tensor<8xf32>``."""

    ufunc = np.add


@graph_op("Mean")
class MeanOp(_Variadic):
    """Elementwise mean of N tensors: ``%2 = "graph.mean"(%0, %1) : (...) -> tensor<8xf32>``."""

    ufunc = np.add

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (total,) = super().evaluate(args)
        return [(total / np.asarray(len(args), total.dtype)).astype(total.dtype, copy=False)]


# --- linear algebra and normalization -----------------------------------------------------------------------------


@graph_op("MatMul", name="matmul")
class MatMulOp(GraphOp):
    """numpy.matmul semantics: ``%2 = "graph.matmul"(%0, %1) : (tensor<?x64xf32>, tensor<64x10xf32>) -> ...``."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        a, b = args
        return [np.matmul(a, b)]


@graph_op("Gemm")
class GemmOp(GraphOp):
    """alpha * A' @ B' + beta * C (A', B' optionally transposed, C broadcast and optional):
    ``%3 = "graph.gemm"(%0, %1, %2) <{transB = 1 : i64}> : (tensor<1x64xf32>, tensor<10x64xf32>, ...) -> ...``
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (a, b), (c,) = self.group_args(args)
        a = a.T if self.attr("transA") else a
        b = b.T if self.attr("transB") else b
        y = a @ b
        if self.attr("alpha") != 1:
            y = y * np.asarray(self.attr("alpha"), y.dtype)
        if c is not None:
            y = y + (c if self.attr("beta") == 1 else c * np.asarray(self.attr("beta"), c.dtype))
        return [y.astype(a.dtype, copy=False)]

    def verify_(self) -> None:
        super().verify_()
        for name in ("A", "B"):
            if _rank(self.required_operand(name)) != 2:
                raise self.error(f"operand {name} must be a matrix, got {self.required_operand(name).type}")


@graph_op("BatchNormalization", name="batch_norm")
class BatchNormOp(GraphOp):
    """Inference-mode batch normalization over axis 1: scale * (x - mean) / sqrt(var + epsilon) + B:
    ``%5 = "graph.batch_norm"(%0, %1, %2, %3, %4) <{epsilon = 1.0e-05 : f32}> : (tensor<1x8x4x4xf32>, ...) -> ...``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        x, scale, bias, mean, var = args
        shape = (-1,) + (1,) * (x.ndim - 2)  # per channel, channels on axis 1
        epsilon = np.asarray(self.attr("epsilon"), x.dtype)
        inv_std = (scale.astype(x.dtype) / np.sqrt(var.astype(x.dtype) + epsilon)).reshape(shape)
        return [((x - mean.astype(x.dtype).reshape(shape)) * inv_std + bias.astype(x.dtype).reshape(shape))]

    def verify_(self) -> None:
        super().verify_()
        if self.attr("training_mode") != 0:
            raise self.error("training_mode must be 0: only inference-mode batch normalization is supported")
        if len(self.results) != 1:
            raise self.error("running_mean and running_var exist only in training mode")
        _verify_per_channel(self, ("scale", "B", "input_mean", "input_var"))


def _verify_per_channel(op: GraphOp, names: Sequence[str]) -> None:
    """The named operands of a normalization hold one value per channel (axis 1 of the first operand)."""
    channels = _static_dim(op.operands[0], 1)
    for name in names:
        ttype = op.required_operand(name).type
        if channels is not None and isinstance(ttype, TensorType) and ttype.shape not in ((channels,), (None,)):
            raise op.error(f"{name} must have shape ({channels},) (the channels of the input), got {ttype}")


def _moments(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over ``axes`` (kept as size 1), x minus it, and the variance (the mean square of that), all in x's
    element type, as onnxruntime's normalizations compute them (two passes, not E[x^2] - E[x]^2)."""
    mean = x.mean(axis=axes, keepdims=True, dtype=x.dtype)
    centered = x - mean
    return mean, centered, np.mean(centered * centered, axis=axes, keepdims=True, dtype=x.dtype)


@graph_op("LayerNormalization", name="layer_norm")
class LayerNormOp(GraphOp):
    """Normalization over the axes from ``axis`` on, then Scale and B; Mean and InvStdDev are optional results:
    ``%3 = "graph.layer_norm"(%0, %1, %2) <{axis = -1 : i64}> : (tensor<1x4x8xf32>, tensor<8xf32>, ...) -> ...``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x, scale), (bias,) = self.group_args(args)
        stash = element_from_onnx(self.attr("stash_type")).dtype  # statistics are computed in this type
        axes = tuple(range(self.attr("axis") % x.ndim, x.ndim))
        mean, centered, variance = _moments(x.astype(stash), axes)
        inv_std = (1 / np.sqrt(variance + np.asarray(self.attr("epsilon"), stash))).astype(stash)
        y = centered * inv_std * scale.astype(stash)
        if bias is not None:
            y = y + bias.astype(stash)
        return [y.astype(x.dtype), mean, inv_std][: len(self.results)]


@graph_op("InstanceNormalization", name="instance_norm")
class InstanceNormOp(GraphOp):
    """Normalization of each channel of each sample over the spatial axes, then per-channel scale and B:
    ``%3 = "graph.instance_norm"(%0, %1, %2) <{epsilon = 1.0e-05 : f32}> : (tensor<1x8x4x4xf32>, ...) -> ...``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        x, scale, bias = args
        _, centered, variance = _moments(x, tuple(range(2, x.ndim)))
        shape = (-1,) + (1,) * (x.ndim - 2)  # per channel, channels on axis 1
        normalized = centered / np.sqrt(variance + np.asarray(self.attr("epsilon"), x.dtype))
        return [normalized * scale.reshape(shape) + bias.reshape(shape)]

    def verify_(self) -> None:
        super().verify_()
        _verify_per_channel(self, ("scale", "B"))


@graph_op("MeanVarianceNormalization", name="mean_variance_norm")
class MeanVarianceNormOp(GraphOp):
    """(x - mean) / standard deviation over ``axes`` (0, 2, 3 by default: per channel of an NCHW batch):
    ``%1 = "graph.mean_variance_norm"(%0) <{axes = array<i64: 0, 2, 3>}> : (tensor<2x8x4x4xf32>) -> ...``.
    """

    @classmethod
    def infer(
        cls,
        operand_types: list[Type],
        attributes: dict[str, Attribute],
        constants: dict[int, np.ndarray],
        num_results: int | None = None,
    ) -> list[Type]:
        return operand_types[:1]  # ONNX defines this op as a function, without shape inference of its own

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        _, centered, variance = _moments(x, tuple(a % x.ndim for a in self.attr("axes")))
        return [centered / np.sqrt(variance)]


class _AlongAxis(GraphOp, ABC):
    """Base of the ops mapping each 1-D slice along ``axis`` to a slice of the same length: Softmax, LogSoftmax,
    Hardmax and LpNormalization."""

    @abstractmethod
    def along(self, x: np.ndarray, axis: int) -> np.ndarray:
        """What the op computes; each concrete op defines it."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        return [np.asarray(self.along(x, self.attr("axis") % x.ndim))]


@graph_op("Softmax")
class SoftmaxOp(_AlongAxis):
    """exp(x) / sum(exp(x)) on ``axis``: ``%1 = "graph.softmax"(%0) <{axis = 1 : i64}> : (tensor<2x9xf32>) -> ...``"""

    def along(self, x: np.ndarray, axis: int) -> np.ndarray:
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)


@graph_op("LogSoftmax")
class LogSoftmaxOp(_AlongAxis):
    """log(softmax(x)) on ``axis``, as x - max - log(sum(exp(x - max))) so that large inputs do not overflow:
    ``%1 = "graph.log_softmax"(%0) <{axis = -1 : i64}> : (tensor<2x9xf32>) -> tensor<2x9xf32>``.
    """

    def along(self, x: np.ndarray, axis: int) -> np.ndarray:
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@graph_op("Hardmax")
class HardmaxOp(_AlongAxis):
    """1 at the first maximum along ``axis``, 0 elsewhere:
    ``%1 = "graph.hardmax"(%0) <{axis = -1 : i64}> : (tensor<2x9xf32>) -> tensor<2x9xf32>``.
    """

    def along(self, x: np.ndarray, axis: int) -> np.ndarray:
        hot = np.zeros_like(x)
        np.put_along_axis(hot, np.argmax(x, axis=axis, keepdims=True), 1, axis)
        return hot


@graph_op("LpNormalization", name="lp_norm")
class LpNormOp(_AlongAxis):
    """x divided by its L1 or L2 norm (``p``) along ``axis``; all-zero slices stay zero:
    ``%1 = "graph.lp_norm"(%0) <{axis = 1 : i64, p = 2 : i64}> : (tensor<2x9xf32>) -> tensor<2x9xf32>``.
    """

    def along(self, x: np.ndarray, axis: int) -> np.ndarray:
        norm = _lp_norm(x, self.attr("p"), (axis,), keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm != 0)

    def verify_(self) -> None:
        super().verify_()
        if self.attr("p") not in (1, 2):
            raise self.error(f"p must be 1 or 2, got {self.attr('p')}")


def _lp_norm(x: np.ndarray, p: int, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """The Lp norm over ``axes`` in x's element type: (sum |x|^p)^(1/p), integer norms truncated as onnxruntime's
    ``T(sqrt(sum))``; p = 1 and 2 without powers."""
    if p == 1:
        return np.sum(np.abs(x), axis=axes, keepdims=keepdims, dtype=x.dtype)
    if p == 2:
        return np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims, dtype=x.dtype)).astype(x.dtype)
    total = np.sum(np.abs(x) ** p, axis=axes, keepdims=keepdims, dtype=x.dtype)
    return np.power(total, np.asarray(1 / p, total.dtype)).astype(x.dtype)


@graph_op("Einsum")
class EinsumOp(GraphOp):
    """Einstein summation by the ``equation`` attribute (numpy.einsum's notation, ``...`` included):
    ``%2 = "graph.einsum"(%0, %1) <{equation = "bij,bjk->bik"}> : (tensor<2x3x4xf32>, ...) -> tensor<2x3x5xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(np.einsum(self.equation, *args))]

    @property
    def equation(self) -> str:
        """The equation without spaces (ONNX allows them around terms; numpy does not)."""
        return self.attr("equation").replace(" ", "")

    def verify_(self) -> None:
        super().verify_()
        terms = self.equation.split("->")[0].split(",")
        if len(terms) != len(self.operands):
            count = f"{len(terms)} input terms for {len(self.operands)} operands"
            raise self.error(f"equation '{self.attr('equation')}' has {count}")


# --- convolution and pooling --------------------------------------------------------------------------------------


class _Windowed(GraphOp):
    """Base of the ops sliding a kernel over the spatial axes (2..) of an NC... tensor: Conv and the pools."""

    def window(self, spatial: Sequence[int], kernel: Sequence[int]) -> kernels.Window:
        """The kernel geometry for an input with these spatial dims: strides, dilations and resolved pads."""
        return kernels.Window.resolve(
            spatial,
            kernel,
            strides=self.attr("strides"),
            dilations=self.attr("dilations"),
            pads=self.attr("pads"),
            auto_pad=self.attr("auto_pad"),
            ceil_mode=bool(self.attr("ceil_mode")) if "ceil_mode" in self.definition.attributes else False,
        )

    def verify_kernel_operands(self) -> None:
        """Conv and ConvTranspose: X and W have one rank, and the window attributes fit its spatial axes."""
        x, w = self.required_operand("X"), self.required_operand("W")
        if _rank(x) < 3 or _rank(w) != _rank(x):
            raise self.error(f"X and W must have the same rank (3 or more), got {x.type} and {w.type}")
        self.verify_window(_rank(x) - 2)
        if self.attr("group") < 1:
            raise self.error(f"group must be positive, got {self.attr('group')}")

    def verify_window(self, kernel_rank: int) -> None:
        """Attribute lengths agree with the number of spatial axes."""
        for name, length in (("strides", kernel_rank), ("dilations", kernel_rank), ("pads", 2 * kernel_rank)):
            value = self.attr(name)
            if value is not None and len(value) != length:
                raise self.error(f"{name} must have {length} values for {kernel_rank} spatial axes, got {len(value)}")
        if self.attr("auto_pad") not in kernels.AUTO_PADS:
            raise self.error(f"auto_pad must be one of {', '.join(kernels.AUTO_PADS)}, got '{self.attr('auto_pad')}'")


@graph_op("Conv")
class ConvOp(_Windowed):
    """N-d convolution (cross-correlation) with groups, strides, dilations and pads:
    ``%2 = "graph.conv"(%0, %1) <{pads = array<i64: 1, 1, 1, 1>}> : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>) -> ...``
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x, w), (b,) = self.group_args(args)
        window = self.window(x.shape[2:], w.shape[2:])
        return [kernels.conv(x, w, b, window, self.attr("group"))]

    def verify_(self) -> None:
        super().verify_()
        self.verify_kernel_operands()
        x, w, b = self.required_operand("X"), self.required_operand("W"), self.operand("B")
        group = self.attr("group")
        channels, per_group, filters = _static_dim(x, 1), _static_dim(w, 1), _static_dim(w, 0)
        if channels is not None and per_group is not None and channels != per_group * group:
            raise self.error(f"X has {channels} channels but W takes {per_group} per group x {group} groups")
        if filters is not None and filters % group:
            raise self.error(f"W's {filters} filters do not split into {group} groups")
        if b is not None:
            bias = b.type.shape if isinstance(b.type, TensorType) else ()
            if len(bias) != 1 or None not in (filters, bias[0]) and bias[0] != filters:
                raise self.error(f"B must have shape ({filters},) (one bias per filter), got {b.type}")
        kernel = self.attr("kernel_shape")
        if (
            kernel is not None
            and isinstance(w.type, TensorType)
            and w.type.is_static
            and tuple(kernel) != w.type.shape[2:]
        ):
            raise self.error(f"kernel_shape {list(kernel)} differs from W's spatial shape {list(w.type.shape[2:])}")


@graph_op("ConvTranspose")
class ConvTransposeOp(_Windowed):
    """Transposed (fractionally strided) convolution, the gradient of Conv:
    ``%2 = "graph.conv_transpose"(%0, %1) <{strides = array<i64: 2, 2>}> : (...) -> tensor<1x8x9x9xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x, w), (b,) = self.group_args(args)
        return [
            kernels.conv_transpose(
                x,
                w,
                b,
                strides=self.attr("strides"),
                dilations=self.attr("dilations"),
                pads=self.attr("pads"),
                auto_pad=self.attr("auto_pad"),
                output_padding=self.attr("output_padding"),
                output_shape=self.attr("output_shape"),
                group=self.attr("group"),
            )
        ]

    def verify_(self) -> None:
        super().verify_()
        self.verify_kernel_operands()
        x, w = self.required_operand("X"), self.required_operand("W")
        channels, w_channels, group = _static_dim(x, 1), _static_dim(w, 0), self.attr("group")
        if channels is not None and w_channels is not None and channels != w_channels:
            raise self.error(f"X has {channels} channels but W is for {w_channels} input channels")
        if channels is not None and channels % group:
            raise self.error(f"X's {channels} channels do not split into {group} groups")


class _Pool(_Windowed):
    """Base of MaxPool and AveragePool: a reduction over each kernel window."""

    def verify_(self) -> None:
        super().verify_()
        kernel = self.attr("kernel_shape")
        if _rank(self.operands[0]) != len(kernel) + 2:
            raise self.error(f"kernel_shape {list(kernel)} does not fit input {self.operands[0].type}")
        self.verify_window(len(kernel))


@graph_op("MaxPool")
class MaxPoolOp(_Pool):
    """Maximum over each window, with the optional flat Indices of the maxima:
    ``%1 = "graph.max_pool"(%0) <{kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>}> : (...) -> ...``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        window = self.window(x.shape[2:], self.attr("kernel_shape"))
        values, indices = kernels.max_pool(x, window, with_indices=len(self.results) > 1)
        if indices is not None and self.attr("storage_order") == 1:
            indices = kernels.column_major_indices(indices, x.shape)
        return [values] if indices is None else [values, indices]


@graph_op("AveragePool")
class AveragePoolOp(_Pool):
    """Mean over each window, padding counted or not (count_include_pad):
    ``%1 = "graph.average_pool"(%0) <{kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}> : ...``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        window = self.window(x.shape[2:], self.attr("kernel_shape"))
        return [kernels.average_pool(x, window, count_include_pad=bool(self.attr("count_include_pad")))]


class _GlobalPool(GraphOp, ABC):
    """Base of the global pools: ``pool`` reduces the spatial axes (2..) of an NC... tensor to size 1."""

    @abstractmethod
    def pool(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        """What the op computes; each concrete op defines it."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        return [np.asarray(self.pool(x, tuple(range(2, x.ndim))))]


@graph_op("GlobalAveragePool")
class GlobalAveragePoolOp(_GlobalPool):
    """Mean over the spatial axes: ``%1 = "graph.global_average_pool"(%0) : (tensor<1x8x7x7xf32>) -> ...``."""

    def pool(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return x.mean(axis=axes, keepdims=True, dtype=x.dtype)


@graph_op("GlobalMaxPool")
class GlobalMaxPoolOp(_GlobalPool):
    """Maximum over the spatial axes: ``%1 = "graph.global_max_pool"(%0) : (tensor<1x8x7x7xf32>) -> ...``."""

    def pool(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return x.max(axis=axes, keepdims=True)


@graph_op("GlobalLpPool")
class GlobalLpPoolOp(_GlobalPool):
    """Lp norm over the spatial axes, (sum |x|^p)^(1/p):
    ``%1 = "graph.global_lp_pool"(%0) <{p = 2 : i64}> : (tensor<1x8x7x7xf32>) -> tensor<1x8x1x1xf32>``.
    """

    def pool(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return _lp_norm(x, self.attr("p"), axes, keepdims=True)

    def verify_(self) -> None:
        super().verify_()
        if self.attr("p") < 1:
            raise self.error(f"p must be positive, got {self.attr('p')}")


# --- shape and data movement --------------------------------------------------------------------------------------


@graph_op("Flatten")
class FlattenOp(GraphOp):
    """To a matrix: axes before ``axis`` form the rows:
    ``%1 = "graph.flatten"(%0) <{axis = 1 : i64}> : (tensor<1x8x2x2xf32>) -> tensor<1x32xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        axis = self.attr("axis") + (x.ndim if self.attr("axis") < 0 else 0)
        rows = int(np.prod(x.shape[:axis], dtype=np.int64))
        return [x.reshape(rows, int(np.prod(x.shape[axis:], dtype=np.int64)))]


@graph_op("Reshape")
class ReshapeOp(GraphOp):
    """To the shape given as an operand (0 copies an input dim unless allowzero, -1 is inferred):
    ``%2 = "graph.reshape"(%0, %1) : (tensor<1x8x2x2xf32>, tensor<2xi64>) -> tensor<1x32xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        x, shape = args
        dims = _ints(shape)
        if not self.attr("allowzero"):
            dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
        return [x.reshape(dims)]


@graph_op("Transpose")
class TransposeOp(GraphOp):
    """Permute the axes (reversed by default):
    ``%1 = "graph.transpose"(%0) <{perm = array<i64: 0, 2, 1>}> : (tensor<1x4x8xf32>) -> tensor<1x8x4xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        return [np.transpose(x, self.attr("perm"))]

    def verify_(self) -> None:
        super().verify_()
        perm = self.attr("perm")
        if perm is not None and sorted(perm) != list(range(_rank(self.operands[0]))):
            raise self.error(f"perm {list(perm)} is not a permutation of the {_rank(self.operands[0])} input axes")


@graph_op("Concat")
class ConcatOp(GraphOp):
    """Join tensors along ``axis``: ``%2 = "graph.concat"(%0, %1) <{axis = 1 : i64}> : (...) -> tensor<1x16xf32>``."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        return [np.concatenate(args, axis=self.attr("axis"))]


@graph_op("Split")
class SplitOp(GraphOp):
    """Cut along ``axis`` by the ``split`` sizes operand, or into ``num_outputs`` near-equal parts:
    ``%0:2 = "graph.split"(%arg0) <{axis = 1 : i64, num_outputs = 2 : i64}> : (tensor<1x8xf32>) -> (...)``.
    """

    @classmethod
    def result_count(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> int:
        if "num_outputs" in attributes:
            return attributes["num_outputs"].value  # type: ignore[attr-defined]
        split = operand_types[1] if len(operand_types) > 1 else None
        if isinstance(split, TensorType) and split.rank == 1 and split.shape[0] is not None:
            return split.shape[0]
        raise VerifyError(f"'{cls.name}': the number of outputs is unknown; give num_outputs or a static split")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,), (split,) = self.group_args(args)
        axis = self.attr("axis") % x.ndim
        if split is None:
            count = self.attr("num_outputs") or len(self.results)
            chunk = -(-x.shape[axis] // count)  # ceil: the last part is the smaller one
            sizes = [min(chunk, x.shape[axis] - i * chunk) for i in range(count)]
        else:
            sizes = _ints(split)
        if sum(sizes) != x.shape[axis]:
            raise ValueError(f"split sizes {sizes} do not add up to dim {axis} of size {x.shape[axis]}")
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)

    def verify_(self) -> None:
        super().verify_()
        if (self.operand("split") is None) == (self.attr("num_outputs") is None):
            raise self.error("give exactly one of the split operand and the num_outputs attribute")


@graph_op("Slice")
class SliceOp(GraphOp):
    """Strided slice by starts/ends/axes/steps operands (clamped as Python slices are):
    ``%5 = "graph.slice"(%0, %1, %2, %3, %4) : (tensor<1x8xf32>, tensor<1xi64>, ...) -> tensor<1x4xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x, start_array, end_array), (axis_array, step_array) = self.group_args(args)
        starts, ends = _ints(start_array), _ints(end_array)
        axes = _ints(axis_array) or list(range(len(starts)))
        steps = _ints(step_array) or [1] * len(starts)
        index = [slice(None)] * x.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            if step == 0:
                raise ValueError("slice steps must not be 0")
            index[axis] = slice(start, end, step)  # Python's clamping is ONNX's, for either sign of step
        return [x[tuple(index)]]


@graph_op("Gather")
class GatherOp(GraphOp):
    """Take entries of ``data`` along ``axis`` at ``indices`` (negative counts from the end):
    ``%2 = "graph.gather"(%0, %1) <{axis = 0 : i64}> : (tensor<100x16xf32>, tensor<1x8xi64>) -> tensor<1x8x16xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        data, indices = args
        axis = self.attr("axis") % data.ndim
        return [np.take(data, kernels.wrap_indices(indices, data.shape[axis], f"gather axis {axis}"), axis=axis)]


@graph_op("GatherElements")
class GatherElementsOp(GraphOp):
    """``data`` at each position of ``indices`` with the ``axis`` coordinate replaced by the index there (the
    result has the indices' shape): ``%2 = "graph.gather_elements"(%0, %1) <{axis = 1 : i64}> : (...) -> ...``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        data, indices = args
        axis = self.attr("axis") % data.ndim
        return [np.take_along_axis(data, kernels.wrap_indices(indices, data.shape[axis], "GatherElements"), axis)]


@graph_op("GatherND", name="gather_nd")
class GatherNDOp(GraphOp):
    """The slices of ``data`` at the index tuples along the last axis of ``indices``, the first batch_dims axes
    of both in step:
    ``%2 = "graph.gather_nd"(%0, %1) : (tensor<4x5x6xf32>, tensor<3x2xi64>) -> tensor<3x6xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        data, indices = args
        return [kernels.gather_nd(data, indices, self.attr("batch_dims"))]


class _Scatter(GraphOp):
    """Base of ScatterND and ScatterElements: a copy of ``data`` with ``updates`` written in, or combined with
    what is there by ``reduction`` (add, mul, max or min)."""

    def verify_(self) -> None:
        super().verify_()
        if self.attr("reduction") not in kernels.SCATTER_REDUCTIONS:
            allowed = ", ".join(kernels.SCATTER_REDUCTIONS)
            raise self.error(f"reduction must be one of {allowed}, got '{self.attr('reduction')}'")


@graph_op("ScatterND", name="scatter_nd")
class ScatterNDOp(_Scatter):
    """``updates`` written at the index tuples along the last axis of ``indices``:
    ``%3 = "graph.scatter_nd"(%0, %1, %2) <{reduction = "add"}> : (tensor<4x5xf32>, tensor<3x1xi64>, ...) -> ...``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        data, indices, updates = args
        return [kernels.scatter_nd(data, indices, updates, self.attr("reduction"))]


@graph_op("ScatterElements")
class ScatterElementsOp(_Scatter):
    """Each of ``updates`` written at its own position with the ``axis`` coordinate replaced by the index there:
    ``%3 = "graph.scatter_elements"(%0, %1, %2) <{axis = 1 : i64}> : (tensor<4x5xf32>, ...) -> tensor<4x5xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        data, indices, updates = args
        axis = self.attr("axis") % data.ndim
        return [kernels.scatter_elements(data, indices, updates, axis, self.attr("reduction"))]


@graph_op("OneHot")
class OneHotOp(GraphOp):
    """``values[1]`` where a new ``axis`` of length ``depth`` equals the index (negative ones count from the end),
    ``values[0]`` elsewhere:
    ``%3 = "graph.one_hot"(%0, %1, %2) <{axis = -1 : i64}> : (tensor<4xi64>, tensor<i64>, tensor<2xf32>) -> ...``.

    As in onnxruntime, float indices are compared as they are, so a fractional one matches no position.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        indices, depth_array, values = args
        depth = int(np.asarray(depth_array).reshape(-1)[0])  # a float depth truncates
        axis = self.attr("axis") % (indices.ndim + 1)
        positions = np.where(indices < 0, indices + depth, indices)
        shape = [depth if a == axis else 1 for a in range(indices.ndim + 1)]
        kernels.check_size([*indices.shape, depth], values.dtype, "output")
        hot = np.expand_dims(positions, axis) == np.arange(depth).reshape(shape)
        off, on = values.reshape(-1)
        return [np.where(hot, on, off)]

    def verify_(self) -> None:
        super().verify_()
        values = self.required_operand("values").type
        if isinstance(values, TensorType) and values.is_static and values.num_elements != 2:
            raise self.error(f"values must hold 2 elements (off, on), got {values}")


@graph_op("NonZero", name="nonzero")
class NonZeroOp(GraphOp):
    """The int64 indices of the nonzero elements, one row per axis, one column per element in row-major order;
    the column count depends on the data, so the result type has a dynamic dim:
    ``%1 = "graph.nonzero"(%0) : (tensor<3x4xi1>) -> tensor<2x?xi64>``.
    """

    @classmethod
    def infer(
        cls,
        operand_types: list[Type],
        attributes: dict[str, Attribute],
        constants: dict[int, np.ndarray],
        num_results: int | None = None,
    ) -> list[Type]:
        # onnxruntime takes a scalar as a 1-element vector, so it gets one row where ONNX's inference gives none
        (result,) = super().infer(operand_types, attributes, constants, num_results)
        assert isinstance(result, TensorType)
        return [TensorType((max(_rank_of(operand_types[0]), 1), None), result.element)]

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        return [np.array(np.nonzero(np.atleast_1d(x)), dtype=np.int64)]


@graph_op("Trilu")
class TriluOp(GraphOp):
    """The upper (or lower) triangle of the last two axes from diagonal ``k``, the rest zero:
    ``%2 = "graph.trilu"(%0, %1) <{upper = 1 : i64}> : (tensor<2x4x4xf32>, tensor<i64>) -> tensor<2x4x4xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,), (k_array,) = self.group_args(args)
        k = 0 if k_array is None else _ints(k_array)[0]
        return [np.triu(x, k) if self.attr("upper") else np.tril(x, k)]


@graph_op("CumSum", name="cumsum")
class CumSumOp(GraphOp):
    """Running sums along the axis operand, each including its own element or not (exclusive), from the start or
    the end (reverse): ``%2 = "graph.cumsum"(%0, %1) <{exclusive = 1 : i64}> : (tensor<4x5xf32>, ...) -> ...``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        x, axis = args
        axis = _ints(axis)[0] % x.ndim
        reverse = bool(self.attr("reverse"))
        x = np.flip(x, axis) if reverse else x
        if self.attr("exclusive"):  # the sums of the elements before: shift by one, a zero first
            shifted = np.zeros_like(x)
            shifted[(slice(None),) * axis + (slice(1, None),)] = x[(slice(None),) * axis + (slice(None, -1),)]
            x = shifted
        y = np.cumsum(x, axis=axis, dtype=x.dtype)
        return [np.flip(y, axis) if reverse else y]

    def verify_(self) -> None:
        super().verify_()
        axis = self.required_operand("axis").type
        if isinstance(axis, TensorType) and axis.shape not in ((), (1,), (None,)):
            raise self.error(f"axis must be a scalar, got {axis}")


@graph_op("TopK", name="top_k")
class TopKOp(GraphOp):
    """The K largest (or smallest) entries along ``axis`` and their int64 indices, sorted, equal values lowest
    index first (with sorted = 0 the order is unspecified, and this order is used too):
    ``%2:2 = "graph.top_k"(%0, %1) <{axis = -1 : i64}> : (tensor<2x9xf32>, tensor<1xi64>) -> (...)``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        x, k = args
        axis = self.attr("axis") % x.ndim
        return list(kernels.top_k(x, _ints(k)[0], axis, largest=bool(self.attr("largest"))))


class _BlockRearrange(GraphOp):
    """Base of DepthToSpace and SpaceToDepth: moving ``blocksize`` x ``blocksize`` blocks between the channels and
    the spatial axes of an NCHW tensor."""

    def verify_(self) -> None:
        super().verify_()
        if self.attr("blocksize") < 1:
            raise self.error(f"blocksize must be positive, got {self.attr('blocksize')}")
        if _rank(self.operands[0]) != 4:
            raise self.error(f"the input must be NCHW (rank 4), got {self.operands[0].type}")


@graph_op("DepthToSpace")
class DepthToSpaceOp(_BlockRearrange):
    """Channels into blocks of pixels: C x H x W -> C / b^2 x H b x W b, the channel read depth-column-row (DCR)
    or column-row-depth (CRD):
    ``%1 = "graph.depth_to_space"(%0) <{blocksize = 2 : i64, mode = "CRD"}> : (tensor<1x8x3x3xf32>) -> ...``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        b = self.attr("blocksize")
        n, c, h, w = x.shape
        if self.attr("mode") == "DCR":
            blocks = x.reshape(n, b, b, c // b**2, h, w).transpose(0, 3, 4, 1, 5, 2)
        else:
            blocks = x.reshape(n, c // b**2, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        return [blocks.reshape(n, c // b**2, h * b, w * b)]

    def verify_(self) -> None:
        super().verify_()
        if self.attr("mode") not in ("DCR", "CRD"):
            raise self.error(f"mode must be DCR or CRD, got '{self.attr('mode')}'")


@graph_op("SpaceToDepth")
class SpaceToDepthOp(_BlockRearrange):
    """Blocks of pixels into channels (the inverse of DCR DepthToSpace): C x H x W -> C b^2 x H / b x W / b:
    ``%1 = "graph.space_to_depth"(%0) <{blocksize = 2 : i64}> : (tensor<1x2x6x6xf32>) -> tensor<1x8x3x3xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        b = self.attr("blocksize")
        n, c, h, w = x.shape
        blocks = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
        return [blocks.reshape(n, c * b * b, h // b, w // b)]


@graph_op("Squeeze")
class SqueezeOp(GraphOp):
    """Drop size-1 axes, those named by the optional ``axes`` operand or all:
    ``%2 = "graph.squeeze"(%0, %1) : (tensor<1x8x1xf32>, tensor<1xi64>) -> tensor<1x8xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,), (axes,) = self.group_args(args)
        if axes is None:
            return [np.squeeze(x)]
        return [np.squeeze(x, axis=tuple(a % x.ndim for a in _ints(axes)))]


@graph_op("Unsqueeze")
class UnsqueezeOp(GraphOp):
    """Insert size-1 axes at the positions (of the result) named by ``axes``:
    ``%2 = "graph.unsqueeze"(%0, %1) : (tensor<8xf32>, tensor<1xi64>) -> tensor<1x8xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        x, axes = args
        rank = x.ndim + axes.size
        return [np.expand_dims(x, tuple(a % rank for a in _ints(axes)))]


@graph_op("Pad")
class PadOp(GraphOp):
    """Pad (or crop, for negative pads) with a constant, a reflection, the edge or a wrap-around:
    ``%2 = "graph.pad"(%0, %1) <{mode = "reflect"}> : (tensor<1x3x8x8xf32>, tensor<8xi64>) -> tensor<1x3x10x10xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x, pad_array), (value, axis_array) = self.group_args(args)
        pads = _ints(pad_array)
        axes = [a % x.ndim for a in _ints(axis_array)] if axis_array is not None else list(range(x.ndim))
        if len(pads) != 2 * len(axes):
            raise ValueError(f"pads has {len(pads)} values, expected 2 x {len(axes)} axes")
        begins, ends = [0] * x.ndim, [0] * x.ndim
        for i, axis in enumerate(axes):
            begins[axis], ends[axis] = pads[i], pads[i + len(axes)]
        fill = 0 if value is None or value.size == 0 else value.reshape(-1)[0]
        return [kernels.pad(x, begins, ends, self.attr("mode"), fill)]

    def verify_(self) -> None:
        super().verify_()
        if self.attr("mode") not in kernels.PAD_MODES:
            raise self.error(f"mode must be one of {', '.join(kernels.PAD_MODES)}, got '{self.attr('mode')}'")


@graph_op("Expand")
class ExpandOp(GraphOp):
    """Broadcast to a shape operand (both ways, as numpy broadcasting):
    ``%2 = "graph.expand"(%0, %1) : (tensor<1x8xf32>, tensor<2xi64>) -> tensor<4x8xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        x, shape = args
        out = np.broadcast_shapes(x.shape, tuple(_ints(shape)))
        kernels.check_size(out, x.dtype, "output")
        return [np.broadcast_to(x, out).copy()]


@graph_op("Tile")
class TileOp(GraphOp):
    """Repeat the tensor ``repeats[i]`` times along axis i:
    ``%2 = "graph.tile"(%0, %1) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<4x3xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        x, repeats = args
        kernels.check_size([n * r for n, r in zip(x.shape, _ints(repeats))], x.dtype, "output")
        return [np.tile(x, _ints(repeats))]


@graph_op("Shape")
class ShapeOp(GraphOp):
    """The input's shape (dims start..end) as int64:
    ``%1 = "graph.shape"(%0) : (tensor<?x8xf32>) -> tensor<2xi64>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        end = self.attr("end")
        return [np.array(x.shape[self.attr("start") : end], dtype=np.int64)]


@graph_op("Size")
class SizeOp(GraphOp):
    """The number of elements, an int64 scalar: ``%1 = "graph.size"(%0) : (tensor<?x8xf32>) -> tensor<i64>``."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        return [np.array(x.size, dtype=np.int64)]


@graph_op("EyeLike")
class EyeLikeOp(GraphOp):
    """Ones on diagonal ``k`` of a matrix shaped like the input, zeros elsewhere, of element type ``dtype`` (an
    ONNX data type; the input's by default):
    ``%1 = "graph.eye_like"(%0) <{k = 1 : i64}> : (tensor<3x4xf32>) -> tensor<3x4xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        code = self.attr("dtype")
        dtype = x.dtype if code is None else element_from_onnx(code).dtype
        return [np.eye(x.shape[0], x.shape[1], k=self.attr("k"), dtype=dtype)]

    def verify_(self) -> None:
        super().verify_()
        _verify_element_code(self, "dtype", "dtype must be a type the IR has:")
        if _rank(self.operands[0]) != 2:
            raise self.error(f"the input must be a matrix, got {self.operands[0].type}")


@graph_op("ConstantOfShape")
class ConstantOfShapeOp(GraphOp):
    """A tensor of the shape operand filled with ``value`` (float 0 by default):
    ``%1 = "graph.constant_of_shape"(%0) <{value = dense<1> : tensor<1xi64>}> : (tensor<2xi64>) -> tensor<?x?xi64>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (shape,) = args
        value = self.attributes.get("value")
        fill = np.zeros(1, np.float32) if value is None else value.array  # type: ignore[attr-defined]
        kernels.check_size(_ints(shape), fill.dtype, "output")
        return [np.full(_ints(shape), fill.reshape(-1)[0], dtype=fill.dtype)]


@graph_op("Range")
class RangeOp(GraphOp):
    """start, start + delta, ... up to limit (excluded):
    ``%3 = "graph.range"(%0, %1, %2) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        start, limit, delta = (np.asarray(a).reshape(()) for a in args)
        count = max(math.ceil(float(limit - start) / float(delta)), 0)
        kernels.check_size([count], start.dtype, "output")
        # each term is the previous plus delta, in the element type, as onnxruntime accumulates them
        terms = np.full(count, delta, dtype=start.dtype)
        if count:
            terms[0] = start
        return [np.cumsum(terms, dtype=start.dtype)]


@graph_op("Cast")
class CastOp(GraphOp):
    """To the element type ``to`` (an ONNX TensorProto data type):
    ``%1 = "graph.cast"(%0) <{to = 7 : i64}> : (tensor<8xf32>) -> tensor<8xi64>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        return [x.astype(element_from_onnx(self.attr("to")).dtype)]

    def verify_(self) -> None:
        super().verify_()
        _verify_element_code(self, "to", "cannot cast to")


def _verify_element_code(op: GraphOp, name: str, problem: str) -> None:
    """An attribute naming an ONNX data type (Cast's ``to``, EyeLike's ``dtype``) names one the IR has."""
    code = op.attr(name)
    if code is None:
        return
    try:
        element_from_onnx(code)
    except ValueError as exc:
        raise op.error(f"{problem} {exc}") from None


@graph_op("Dropout")
class DropoutOp(GraphOp):
    """Inference-mode dropout: the input unchanged, and an all-true mask as the optional second result:
    ``%1 = "graph.dropout"(%0) : (tensor<1x8xf32>) -> tensor<1x8xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,), (_, training) = self.group_args(args)
        if training is not None and bool(np.asarray(training).reshape(-1)[0]):
            raise ValueError("training_mode is true; only inference-mode dropout is supported")
        return [x, np.ones(x.shape, dtype=np.bool_)][: len(self.results)]


# --- reductions ---------------------------------------------------------------------------------------------------


class _Reduce(GraphOp, ABC):
    """Base of the Reduce* ops: ``reduce`` over the axes operand, keeping reduced axes as size 1 when keepdims.

    No axes means all axes, or with noop_with_empty_axes none: then each element is reduced alone, which keeps
    it for most reductions but squares it for ReduceSumSquare (as in onnxruntime and ONNX's reference).
    """

    @abstractmethod
    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        """What the op computes; each concrete op defines it."""

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,), (axis_array,) = self.group_args(args)
        axes = _ints(axis_array) or []
        if axes:
            chosen = tuple(a % x.ndim for a in axes)
        else:
            chosen = () if self.attr("noop_with_empty_axes") else tuple(range(x.ndim))
        return [np.asarray(self.reduce(x, chosen, bool(self.attr("keepdims"))))]


def _extreme(dtype: np.dtype, lowest: bool) -> float | int | bool:
    """The lowest (or highest) value of an element type: the identity of max (or min)."""
    if dtype.kind == "f":
        return -np.inf if lowest else np.inf
    if dtype.kind == "b":
        return not lowest
    return np.iinfo(dtype).min if lowest else np.iinfo(dtype).max


@graph_op("ReduceMean")
class ReduceMeanOp(_Reduce):
    """Mean over axes: ``%2 = "graph.reduce_mean"(%0, %1) <{keepdims = 1 : i64}> : (...) -> tensor<1x8x1x1xf32>``."""

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        if x.dtype.kind in "iu":  # integer mean truncates, in the element type
            count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
            total = np.sum(x, axis=axes, keepdims=keepdims, dtype=np.int64)
            return _truncating_divide(np.asarray(total), np.asarray(count, np.int64)).astype(x.dtype)
        return np.mean(x, axis=axes, keepdims=keepdims, dtype=x.dtype)


@graph_op("ReduceSum")
class ReduceSumOp(_Reduce):
    """Sum over axes: ``%2 = "graph.reduce_sum"(%0, %1) <{keepdims = 0 : i64}> : (...) -> tensor<1x8xf32>``."""

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        return np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)


@graph_op("ReduceMax")
class ReduceMaxOp(_Reduce):
    """Maximum over axes: ``%2 = "graph.reduce_max"(%0, %1) : (tensor<8x4xf32>, tensor<1xi64>) -> tensor<8x1xf32>``."""

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        # the maximum of no elements is the lowest value (-inf for floats), as ONNX defines it
        return np.max(x, axis=axes, keepdims=keepdims, initial=_extreme(x.dtype, lowest=True))


@graph_op("ReduceMin")
class ReduceMinOp(_Reduce):
    """Minimum over axes: ``%2 = "graph.reduce_min"(%0, %1) : (tensor<8x4xf32>, tensor<1xi64>) -> tensor<8x1xf32>``."""

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        # the minimum of no elements is the highest value (inf for floats), as ONNX defines it
        return np.min(x, axis=axes, keepdims=keepdims, initial=_extreme(x.dtype, lowest=False))


@graph_op("ReduceProd")
class ReduceProdOp(_Reduce):
    """Product over axes: ``%2 = "graph.reduce_prod"(%0, %1) : (tensor<8x4xf32>, tensor<1xi64>) -> tensor<8x1xf32>``."""

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        return np.prod(x, axis=axes, keepdims=keepdims, dtype=x.dtype)


@graph_op("ReduceSumSquare")
class ReduceSumSquareOp(_Reduce):
    """Sum of squares over axes: ``%2 = "graph.reduce_sum_square"(%0, %1) : (...) -> tensor<8x1xf32>``."""

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        return np.sum(x * x, axis=axes, keepdims=keepdims, dtype=x.dtype)


@graph_op("ReduceL1")
class ReduceL1Op(_Reduce):
    """Sum of magnitudes over axes: ``%2 = "graph.reduce_l1"(%0, %1) : (...) -> tensor<8x1xf32>``."""

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        return _lp_norm(x, 1, axes, keepdims)


@graph_op("ReduceL2")
class ReduceL2Op(_Reduce):
    """Euclidean norm over axes (integers truncated): ``%2 = "graph.reduce_l2"(%0, %1) : (...) -> ...``."""

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        return _lp_norm(x, 2, axes, keepdims)


@graph_op("ReduceLogSum")
class ReduceLogSumOp(_Reduce):
    """log of the sum over axes (integers truncated): ``%2 = "graph.reduce_log_sum"(%0, %1) : (...) -> ...``."""

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        return np.log(np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)).astype(x.dtype)


@graph_op("ReduceLogSumExp")
class ReduceLogSumExpOp(_Reduce):
    """log(sum(exp(x))) over axes, as max + log(sum(exp(x - max))) so that large inputs do not overflow:
    ``%2 = "graph.reduce_log_sum_exp"(%0, %1) : (tensor<8x4xf32>, tensor<1xi64>) -> tensor<8x1xf32>``.

    Like onnxruntime, each exp(x - max) is in x's element type, so an integer sum counts the maxima.
    """

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        peak = np.max(x, axis=axes, keepdims=True, initial=_extreme(x.dtype, lowest=True))
        if x.dtype.kind == "f":  # no elements, or only -inf: nothing to shift by
            peak = np.where(np.isfinite(peak), peak, np.zeros((), x.dtype))
        total = np.sum(np.exp(x - peak).astype(x.dtype), axis=axes, keepdims=True, dtype=x.dtype)
        result = np.log(total).astype(x.dtype) + peak
        return result if keepdims else np.squeeze(result, axes)


class _ArgExtreme(GraphOp):
    """Base of ArgMax and ArgMin: the int64 index of ``arg``'s pick along ``axis`` (the first of ties, or the last
    with select_last_index), the axis kept as size 1 when keepdims."""

    arg: ClassVar[Callable[..., np.ndarray | np.intp]]  # numpy's argmax or argmin

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        axis = self.attr("axis") % x.ndim
        if self.attr("select_last_index"):
            index = x.shape[axis] - 1 - self.arg(np.flip(x, axis), axis=axis, keepdims=True)
        else:
            index = self.arg(x, axis=axis, keepdims=True)
        return [(index if self.attr("keepdims") else np.squeeze(index, axis)).astype(np.int64)]


@graph_op("ArgMax")
class ArgMaxOp(_ArgExtreme):
    """Index of the maximum along ``axis`` (first or last of ties), int64:
    ``%1 = "graph.arg_max"(%0) <{axis = 1 : i64, keepdims = 0 : i64}> : (tensor<1x10xf32>) -> tensor<1xi64>``.
    """

    arg = staticmethod(np.argmax)


@graph_op("ArgMin")
class ArgMinOp(_ArgExtreme):
    """Index of the minimum along ``axis`` (first or last of ties), int64:
    ``%1 = "graph.arg_min"(%0) <{axis = 1 : i64, keepdims = 0 : i64}> : (tensor<1x10xf32>) -> tensor<1xi64>``.
    """

    arg = staticmethod(np.argmin)


# --- resize -------------------------------------------------------------------------------------------------------


@graph_op("Resize")
class ResizeOp(GraphOp):
    """Resample by ``scales`` or to ``sizes`` (nearest, linear or cubic, any coordinate transformation except
    tf_crop_and_resize):
    ``%2 = "graph.resize"(%0, %1) <{operandSegmentSizes = array<i32: 1, 0, 1, 0>}> : (...) -> tensor<1x8x8x8xf32>``.
    """

    @classmethod
    def infer(
        cls,
        operand_types: list[Type],
        attributes: dict[str, Attribute],
        constants: dict[int, np.ndarray],
        num_results: int | None = None,
    ) -> list[Type]:
        # onnxruntime sizes the output as int(float32(scale) * size), ONNX's inference in double: 3.1 x 10 gives 31
        # and 30. With the scales or sizes known, the output type is what ``evaluate`` will give.
        types = super().infer(operand_types, attributes, constants, num_results)
        x = operand_types[0]
        if SEGMENTS not in attributes or not isinstance(x, TensorType) or not x.is_static:
            return types
        counts = attributes[SEGMENTS].value  # type: ignore[attr-defined]  # X, roi, scales, sizes
        scale_array = constants.get(1 + counts[1]) if counts[2] else None
        sizes = constants.get(1 + counts[1] + counts[2]) if counts[3] else None
        scales = None if scale_array is None or scale_array.size == 0 else [float(v) for v in scale_array]
        if scales is None and sizes is None:
            return types
        probe = cls([], [], attributes)
        axes = probe.attr("axes")
        axes = [a % x.rank for a in axes] if axes is not None else list(range(x.rank))
        policy = probe.attr("keep_aspect_ratio_policy")
        shape, _ = kernels.resize_shape(x.static_shape, scales, None if scales else _ints(sizes), axes, policy)
        return [TensorType(tuple(shape), x.element)]

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,), (_, scales, sizes) = self.group_args(args)
        return [
            kernels.resize(
                x,
                scales=None if scales is None or scales.size == 0 else [float(s) for s in scales],
                sizes=None if sizes is None or sizes.size == 0 else _ints(sizes),
                axes=self.attr("axes"),
                mode=self.attr("mode"),
                coordinate_transformation_mode=self.attr("coordinate_transformation_mode"),
                nearest_mode=self.attr("nearest_mode"),
                cubic_coeff_a=self.attr("cubic_coeff_a"),
                exclude_outside=bool(self.attr("exclude_outside")),
                keep_aspect_ratio_policy=self.attr("keep_aspect_ratio_policy"),
            )
        ]

    def verify_(self) -> None:
        super().verify_()
        choices = {
            "mode": kernels.RESIZE_MODES,
            "coordinate_transformation_mode": kernels.COORDINATE_TRANSFORMATIONS,
            "nearest_mode": kernels.NEAREST_MODES,
            "keep_aspect_ratio_policy": kernels.ASPECT_RATIO_POLICIES,
        }
        for name, allowed in choices.items():
            if self.attr(name) not in allowed:
                raise self.error(f"{name} '{self.attr(name)}' is not supported; use one of {', '.join(allowed)}")
        if self.attr("antialias"):
            raise self.error("antialias = 1 is not supported; export the model without antialiasing")
        scales = self.operand("scales")
        if scales is not None and isinstance(scales.type, TensorType) and scales.type.shape == (0,):
            scales = None  # an empty scales beside sizes, as older exporters write
        if (scales is None) == (self.operand("sizes") is None):
            raise self.error("give exactly one of the scales and sizes operands")


# --- quantization -------------------------------------------------------------------------------------------------


def _per_axis(param: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """A scale or zero point shaped to broadcast against ``x``: a scalar as is, a 1-D one along ``axis``."""
    if param.ndim == 0 or param.size == 1 and param.ndim <= 1:
        return param.reshape(())
    shape = [1] * x.ndim
    shape[axis % x.ndim] = param.size
    return param.reshape(shape)


class _Quantization(GraphOp):
    """Base of QuantizeLinear and DequantizeLinear: per-tensor or per-axis (blocked quantization is refused)."""

    def verify_(self) -> None:
        super().verify_()
        if self.attr("block_size"):
            raise self.error("block_size must be 0: blocked quantization is not supported")
        scale = self.operands[1].type
        if isinstance(scale, TensorType) and scale.rank > 1:
            raise self.error(f"the scale must be a scalar or 1-D (per axis), got {scale}")


@graph_op("QuantizeLinear")
class QuantizeLinearOp(_Quantization):
    """saturate(round_half_even(x / y_scale) + y_zero_point) in the zero point's integer type (uint8 by default):
    ``%3 = "graph.quantize_linear"(%0, %1, %2) : (tensor<1x8xf32>, tensor<f32>, tensor<i8>) -> tensor<1x8xi8>``.
    """

    def output_dtype(self, zero_point: np.ndarray | None) -> np.dtype:
        if zero_point is not None:
            return zero_point.dtype
        code = self.attr("output_dtype")
        return np.dtype(np.uint8) if code == 0 else element_from_onnx(code).dtype

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x, scale), (zero_point,) = self.group_args(args)
        dtype = self.output_dtype(zero_point)
        axis = self.attr("axis")
        q = np.rint(x / _per_axis(scale, x, axis).astype(x.dtype))
        if zero_point is not None:
            q = q + _per_axis(zero_point, x, axis).astype(q.dtype)
        limits = np.iinfo(dtype)
        return [np.clip(q, limits.min, limits.max).astype(dtype)]

    def verify_(self) -> None:
        super().verify_()
        result = self.results[0].type
        if isinstance(result, TensorType) and result.dtype.kind not in "iu":
            raise self.error(f"only integer quantization is supported, got {result}")


@graph_op("DequantizeLinear")
class DequantizeLinearOp(_Quantization):
    """(x - x_zero_point) * x_scale, per tensor or per axis, in the scale's float type:
    ``%3 = "graph.dequantize_linear"(%0, %1, %2) : (tensor<1x8xi8>, tensor<f32>, tensor<i8>) -> tensor<1x8xf32>``.
    """

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x, scale), (zero_point,) = self.group_args(args)
        axis = self.attr("axis")
        centered = x.astype(np.int64)
        if zero_point is not None:
            centered = centered - _per_axis(zero_point, x, axis).astype(np.int64)
        return [centered.astype(scale.dtype) * _per_axis(scale, x, axis)]


# --- operators of other domains -----------------------------------------------------------------------------------

#: onnxruntime's contrib operators domain.
MICROSOFT_DOMAIN = "com.microsoft"

#: (domain, op type) -> graph op class, for the operators outside the default ONNX domain the importer accepts.
BY_DOMAIN_TYPE: dict[tuple[str, str], type[GraphOp]] = {}

_FLOATS = frozenset({"f16", "f32", "f64"})


@register_op
class InverseOp(GraphOp):
    """The inverse of each square matrix of ``X [..., n, n]``, onnxruntime's contrib operator ``Inverse``
    (domain ``com.microsoft``), computed in float64 and rounded to ``X``'s type. A model that multiplies by the
    inverse of a constant matrix is a linear solve, which ``lower-solve`` gives to the closed-loop arrays; that is
    why ``fold-constants`` must leave it alone. Declared by hand: ONNX's own schemas do not hold contrib operators.

    ``%1 = "graph.inverse"(%0) : (tensor<16x16xf32>) -> tensor<16x16xf32>``
    """

    name = "graph.inverse"
    onnx_type = "Inverse"
    definition = OpDef(operands=(OperandDef("X"),), results=(ResultDef("Y"),))
    type_params = TypeParams(("T",), ("T",), {"T": _FLOATS})

    @classmethod
    def infer(
        cls,
        operand_types: list[Type],
        attributes: dict[str, Attribute],
        constants: dict[int, np.ndarray],
        num_results: int | None = None,
    ) -> list[Type]:
        (x,) = operand_types
        if not isinstance(x, TensorType):
            raise VerifyError(f"'{cls.name}': operand of type {x} is not a tensor")
        return [x]

    def verify_(self) -> None:
        super().verify_()
        x = self.operands[0].type
        assert isinstance(x, TensorType)
        if x.rank < 2 or None not in x.shape[-2:] and x.shape[-1] != x.shape[-2]:
            raise self.error(f"operand X must be square matrices [..., n, n], got {x}")
        if self.result.type != x:
            raise self.error(f"result type {self.result.type} must be the operand's {x}")

    def to_onnx_node(self, input_names: list[str], output_names: list[str]) -> onnx.NodeProto:
        node = super().to_onnx_node(input_names, output_names)
        node.domain = MICROSOFT_DOMAIN
        return node

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        return [np.linalg.inv(x.astype(np.float64)).astype(x.dtype)]


BY_DOMAIN_TYPE[(MICROSOFT_DOMAIN, InverseOp.onnx_type)] = InverseOp
