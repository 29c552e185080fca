"""The ``cim`` dialect: a network as crossbar work, with the arithmetic exactly as arrays, DACs, ADCs and digital
shift-adders do it.

A crossbar layer computes ``acc = codes @ W`` on integer input codes and integer weights. It is written in two
forms, each runnable (every op here has ``evaluate``, so the interpreter is the exact executor of this level):

- the *integer reference*, made by ``lower-to-cim``: ``cim.quantize`` (float -> input codes, a DAC's input),
  ``cim.linear`` (one exact integer matrix product), ``cim.dequantize`` (zero-point correction, scales, bias);
- the *crossbar form*, made by ``tile`` and ``bit-slice``: the matrix cut into row blocks of one array's height
  (``cim.program``: conductance levels per cell, one array per bit slice, sign and 64-column block), the codes
  streamed as DAC bit planes (``cim.bit_planes``), one array read per plane (``cim.mvm``), every column read by an
  ADC (``cim.adc``), slices and planes recombined (``cim.shift_add``) and row blocks summed (``cim.accumulate``).

With an ADC wide enough, both forms give the same integers bit for bit: that is the oracle chain the simulator is
later checked against. The chip parameters that change the arithmetic (array size, cell bits, DAC and ADC bits,
sign encoding) are attributes, so running this level needs no chip file. Work that is not a crossbar's stays on a
tile's digital unit: ``cim.digital`` wraps one graph op (activation, pooling, residual add, softmax, layer norm,
activation x activation MatMul, layout changes) and runs it as the reference interpreter does.

Layout: the contraction axis of every crossbar op is the last one (``[..., K]``, one input vector per row of the
leading axes); ``cim.im2col`` puts a convolution's patches there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cimc.ir import kernels
from cimc.ir.attributes import (
    Attribute,
    DenseArrayAttr,
    DenseElementsAttr,
    DenseResourceAttr,
    FloatAttr,
    IntAttr,
    StringAttr,
)
from cimc.ir.core import AttrDef, OpDef, OperandDef, Operation, ResultDef, Value, register_op
from cimc.ir.dialects.builtin import FuncOp, ModuleOp
from cimc.ir.interpreter import main_function
from cimc.ir.types import ElementType, TensorType, Type

#: The module attribute holding the chip description (``Chip.to_attribute()``), which placement reads.
CHIP_ATTRIBUTE = "cim.chip"
#: The attribute ``place`` gives every ``cim.program``: its tile, ``array<i64: row, col>``.
TILE_ATTRIBUTE = "cim.tile"
#: The attribute ``place`` gives every ``cim.program``: its array group's number, ``0 .. groups - 1`` in the order
#: of ``main``'s body, by which the traffic, the instruction streams and the simulator's noise keys name it.
GROUP_ATTRIBUTE = "cim.group"

#: How signed weights sit in cells of non-negative conductance.
SIGN_ENCODINGS = ("differential", "offset")
#: The cim ops a tile's digital unit runs besides ``cim.digital``: they make the ui8 input codes of the arrays.
CODE_OPS = frozenset({"cim.quantize", "cim.im2col", "cim.bit_planes"})
#: The ranges float weights are quantized over: each output column's, or the whole matrix's.
WEIGHT_SCALINGS = ("column", "tensor")

_TENSOR = (DenseElementsAttr, DenseResourceAttr)
_I32 = ElementType("i32")


def code_element(bits: int) -> ElementType:
    """The unsigned element type that holds ``bits``-bit codes."""
    return ElementType("ui8" if bits <= 8 else "ui16" if bits <= 16 else "ui32")


def exact_adc_bits(rows: int, dac_bits: int, cell_bits: int) -> int:
    """ADC bits that read one array column exactly: its largest sum is rows x (2^dac - 1) x (2^cell - 1)."""
    return max(1, math.ceil(math.log2(rows * ((1 << dac_bits) - 1) * ((1 << cell_bits) - 1) + 1)))


def planes_for(input_bits: int, dac_bits: int) -> int:
    """Bit planes (DAC steps) that stream an ``input_bits`` code ``dac_bits`` at a time."""
    return -(-input_bits // dac_bits)


def signed_phases(input_bits: int, dac_bits: int, zero_point: int) -> tuple[int, int]:
    """Planes of the two phases of codes streamed around ``zero_point``: ``max(code - z, 0)`` reaches
    ``2^input_bits - 1 - z``, ``max(z - code, 0)`` reaches ``z``; each phase as many planes as its largest value's
    bits need."""
    top = (1 << input_bits) - 1
    return planes_for((top - zero_point).bit_length(), dac_bits), planes_for(zero_point.bit_length(), dac_bits)


def slices_for(weight_bits: int, cell_bits: int) -> int:
    """Cells (bit slices) that hold a ``weight_bits`` weight ``cell_bits`` per cell."""
    return -(-weight_bits // cell_bits)


def signs_for(sign_encoding: str) -> int:
    """Arrays per slice: a differential pair holds the positive and negative parts apart, an offset code one."""
    return 2 if sign_encoding == "differential" else 1


def _tensor(value: Value) -> TensorType:
    assert isinstance(value.type, TensorType)
    return value.type


def _int(attr: Attribute) -> int:
    assert isinstance(attr, IntAttr)
    return attr.value


class _CimOp(Operation):
    """Shared checks of the dialect's ops."""

    def tensor_attr(self, key: str) -> np.ndarray:
        attr = self.attributes[key]
        assert isinstance(attr, _TENSOR)
        return attr.array

    def payload(self, key: str) -> np.ndarray | None:
        """The tensor attribute's values, or None where the text it was parsed from elided them (verifiers check
        values only when they are there)."""
        attr = self.attributes[key]
        if isinstance(attr, DenseResourceAttr) and attr.blob.array is None:
            return None
        return self.tensor_attr(key)

    def attr_type(self, key: str) -> TensorType:
        attr = self.attributes[key]
        assert isinstance(attr, _TENSOR)
        return attr.type

    def check_bits(self, key: str, low: int = 1, high: int = 16) -> int:
        bits = self.attr(key)
        if not low <= bits <= high:
            raise self.error(f"'{key}' must be {low}..{high}, got {bits}")
        return bits

    def check_element(self, value: Value, what: str, kind: str) -> TensorType:
        ttype = _tensor(value)
        if ttype.element.is_float != (kind == "float") or (
            kind == "unsigned" and not ttype.element.name.startswith("ui")
        ):
            raise self.error(f"{what} must be {kind}, got {ttype}")
        return ttype


@register_op
class QuantizeOp(_CimOp):
    """Float activations -> unsigned ``bits``-bit input codes, as ONNX QuantizeLinear rounds and saturates:
    ``u = clip(round_half_even(x / scale) + zero_point, 0, 2^bits - 1)``. Signed quantizations are shifted into
    this range (their zero point moves with them), so every DAC input is non-negative.

    ``%1 = "cim.quantize"(%0) <{bits = 8 : i64, scale = 0.02 : f32, zero_point = 128 : i64}> :
    (tensor<?x64xf32>) -> tensor<?x64xui8>``
    """

    name = "cim.quantize"
    definition = OpDef(
        operands=(OperandDef("input"),),
        results=(ResultDef("codes"),),
        attributes={"scale": AttrDef(FloatAttr), "zero_point": AttrDef(IntAttr), "bits": AttrDef(IntAttr)},
    )

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        (x,) = operand_types
        assert isinstance(x, TensorType)
        return [TensorType(x.shape, code_element(_int(attributes["bits"])))]

    def verify_(self) -> None:
        bits = self.check_bits("bits")
        self.check_element(self.operands[0], "the input", "float")
        self.check_element(self.result, "the codes", "unsigned")
        if not self.attr("scale") > 0:
            raise self.error(f"'scale' must be positive, got {self.attr('scale')}")
        if not 0 <= self.attr("zero_point") < 1 << bits:
            raise self.error(f"'zero_point' {self.attr('zero_point')} is outside the {bits}-bit code range")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        scale = np.float32(self.attr("scale"))
        q = np.asarray(np.rint(args[0].astype(np.float32) / scale))  # an array even at rank 0, for out=
        q += np.float32(self.attr("zero_point"))
        top = np.float32((1 << self.attr("bits")) - 1)
        # fmax and fmin drop NaN: NaN reads 0, as nan_to_num then clip would make it (infinities clamp too)
        np.fmax(q, np.float32(0.0), out=q)
        np.fmin(q, top, out=q)
        return [q.astype(_tensor(self.result).dtype)]


@register_op
class Im2ColOp(_CimOp):
    """A convolution's input patches as vectors: codes ``[N, C, *spatial]`` -> ``[N, *out, C * prod(kernel)]``,
    channel-major then kernel offsets (a Conv weight ``[M, C, *kernel]`` flattened). Padding reads ``fill``, the
    code of zero (the input zero point). This is the addressing of a tile's input buffer; it moves no arithmetic.

    ``%2 = "cim.im2col"(%1) <{dilations = array<i64: 1, 1>, fill = 0 : i64, kernel_shape = array<i64: 3, 3>,
    pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>}> : (tensor<?x1x8x8xui8>) -> tensor<?x8x8x9xui8>``
    """

    name = "cim.im2col"
    definition = OpDef(
        operands=(OperandDef("codes"),),
        results=(ResultDef("patches"),),
        attributes={
            "kernel_shape": AttrDef(DenseArrayAttr),
            "strides": AttrDef(DenseArrayAttr),
            "pads": AttrDef(DenseArrayAttr),
            "dilations": AttrDef(DenseArrayAttr),
            "fill": AttrDef(IntAttr, default=0),
        },
    )

    def window(self, spatial: Sequence[int]) -> kernels.Window:
        return kernels.Window.resolve(
            spatial, self.attr("kernel_shape"), self.attr("strides"), self.attr("dilations"), self.attr("pads")
        )

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        (x,) = operand_types
        assert isinstance(x, TensorType)
        kernel = attributes["kernel_shape"].value  # type: ignore[attr-defined]
        spatial = x.shape[2:]
        if None in spatial:
            out: tuple[int | None, ...] = (None,) * len(kernel)
        else:
            values = {k: a.value for k, a in attributes.items()}  # type: ignore[attr-defined]
            out = kernels.Window.resolve(spatial, kernel, values["strides"], values["dilations"], values["pads"]).output  # type: ignore[arg-type]
        channels = x.shape[1]
        rows = None if channels is None else channels * math.prod(kernel)
        return [TensorType((x.shape[0], *out, rows), x.element)]

    def verify_(self) -> None:
        x = self.check_element(self.operands[0], "the codes", "unsigned")
        rank = len(self.attr("kernel_shape"))
        if x.rank != rank + 2:
            raise self.error(f"codes must be [N, C, {rank} spatial dims], got {x}")
        for key, size in (("strides", rank), ("dilations", rank), ("pads", 2 * rank)):
            if len(self.attr(key)) != size:
                raise self.error(f"'{key}' must have {size} entries, got {len(self.attr(key))}")
        if self.result.type != self.infer_result_types([x], self.attributes)[0]:
            raise self.error(f"result type {self.result.type} does not follow from the input and the window")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = args
        return [kernels.im2col(x, self.window(x.shape[2:]), self.attr("fill"))]


def _contract_type(x: Type, columns: int) -> TensorType:
    assert isinstance(x, TensorType)
    return TensorType((*x.shape[:-1], columns), _I32)


def _exact_matmul(x: np.ndarray, w: np.ndarray, bound: float) -> np.ndarray:
    """``x @ w`` of integer-valued operands, exact: float32 BLAS while every sum stays below 2^24, else float64
    (exact below 2^53)."""
    dtype = np.float32 if bound < 2**24 else np.float64
    return np.matmul(x.astype(dtype), w.astype(dtype))


@register_op
class LinearOp(_CimOp):
    """One crossbar layer as exact integer arithmetic, before bit slicing (the integer reference):
    ``acc[..., c] = sum_r codes[..., row_offset + r] * weights[r, c]``. ``weight_bits`` bounds the signed
    weights, ``input_bits`` the codes; both say how ``bit-slice`` will spread them over cells and DAC steps.

    ``%3 = "cim.linear"(%2) <{input_bits = 8 : i64, weights = dense_resource<fc1.weights> : tensor<64x10xi8>,
    weight_bits = 8 : i64}> : (tensor<?x64xui8>) -> tensor<?x10xi32>``
    """

    name = "cim.linear"
    definition = OpDef(
        operands=(OperandDef("codes"),),
        results=(ResultDef("acc"),),
        attributes={
            "weights": AttrDef(_TENSOR),
            "weight_bits": AttrDef(IntAttr),
            "input_bits": AttrDef(IntAttr),
            "row_offset": AttrDef(IntAttr, default=0),
        },
    )

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        weights = attributes["weights"]
        assert isinstance(weights, _TENSOR)
        return [_contract_type(operand_types[0], weights.type.shape[1])]  # type: ignore[arg-type]

    @property
    def rows(self) -> int:
        return self.attr_type("weights").shape[0]  # type: ignore[return-value]

    def verify_(self) -> None:
        bits = self.check_bits("weight_bits")
        self.check_bits("input_bits")
        codes = self.check_element(self.operands[0], "the codes", "unsigned")
        weights = self.attr_type("weights")
        if weights.rank != 2 or weights.element.is_float:
            raise self.error(f"'weights' must be an integer matrix [rows, cols], got {weights}")
        _check_rows(self, codes, self.rows)
        if self.result.type != self.infer_result_types([codes], self.attributes)[0]:
            raise self.error(
                f"result type {self.result.type} must be {self.infer_result_types([codes], self.attributes)[0]}"
            )
        w = self.payload("weights")
        if w is not None and w.size and (w.min() < -(1 << (bits - 1)) or w.max() >= 1 << (bits - 1)):
            raise self.error(f"weights span [{w.min()}, {w.max()}], outside signed {bits}-bit")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        (codes,) = args
        w = self.tensor_attr("weights")
        start = self.attr("row_offset")
        x = codes[..., start : start + w.shape[0]]
        bound = w.shape[0] * float((1 << self.attr("input_bits")) - 1) * float(max(np.abs(w).max(initial=0), 1))
        return [_exact_matmul(x, w, bound).astype(np.int32)]


def _check_rows(op: _CimOp, codes: TensorType, rows: int) -> None:
    depth = codes.shape[-1] if codes.rank else None
    if depth is not None and op.attr("row_offset") + rows > depth:
        raise op.error(f"rows [{op.attr('row_offset')}, {op.attr('row_offset') + rows}) exceed the input's {depth}")


@register_op
class AccumulateOp(_CimOp):
    """Partial sums of the row blocks of one matrix, added by the digital unit: operand ``i`` covers columns
    ``[col_offsets[i], col_offsets[i] + its width)`` of the ``columns``-wide result.

    ``%9 = "cim.accumulate"(%4, %8) <{col_offsets = array<i64: 0, 0>, columns = 10 : i64}> :
    (tensor<?x10xi32>, tensor<?x10xi32>) -> tensor<?x10xi32>``
    """

    name = "cim.accumulate"
    definition = OpDef(
        operands=(OperandDef("partials", "variadic"),),
        results=(ResultDef("acc"),),
        attributes={"col_offsets": AttrDef(DenseArrayAttr), "columns": AttrDef(IntAttr)},
    )

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        return [_contract_type(operand_types[0], _int(attributes["columns"]))]

    def verify_(self) -> None:
        offsets, columns = self.attr("col_offsets"), self.attr("columns")
        if not self.operands or len(offsets) != len(self.operands):
            raise self.error(f"needs one column offset per partial sum, got {len(offsets)} for {len(self.operands)}")
        lead = _tensor(self.result).shape[:-1]
        for value, offset in zip(self.operands, offsets):
            ttype = _tensor(value)
            if ttype.element != _I32 or len(ttype.shape) != len(lead) + 1:
                raise self.error(f"partial sums must be i32 [..., cols] like the result, got {ttype}")
            if offset < 0 or offset + ttype.shape[-1] > columns:
                raise self.error(f"partial sum at column {offset} of width {ttype.shape[-1]} exceeds {columns}")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        shape = np.broadcast_shapes(*(a.shape[:-1] for a in args))
        acc = np.zeros((*shape, self.attr("columns")), dtype=np.int64)
        for partial, offset in zip(args, self.attr("col_offsets")):
            acc[..., offset : offset + partial.shape[-1]] += partial
        return [acc.astype(np.int32)]


@register_op
class DequantizeOp(_CimOp):
    """Integer accumulators -> float outputs on the digital unit: the input zero point taken out
    (``acc - zero_point * weight_sums``), then the per-column scale (input scale x weight scale) and the bias:
    ``y = (acc - zero_point * weight_sums[c]) * scale[c] + bias[c]``, computed in float64 and rounded to f32.

    ``%5 = "cim.dequantize"(%4) <{bias = dense<...> : tensor<10xf32>, scale = dense<...> : tensor<10xf64>,
    weight_sums = dense<...> : tensor<10xi64>, zero_point = 0 : i64}> : (tensor<?x10xi32>) -> tensor<?x10xf32>``
    """

    name = "cim.dequantize"
    definition = OpDef(
        operands=(OperandDef("acc"),),
        results=(ResultDef("output"),),
        attributes={
            "scale": AttrDef(_TENSOR),
            "zero_point": AttrDef(IntAttr, default=0),
            "weight_sums": AttrDef(_TENSOR),
            "bias": AttrDef(_TENSOR, default=None),
        },
    )

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        (acc,) = operand_types
        assert isinstance(acc, TensorType)
        return [TensorType(acc.shape, ElementType("f32"))]

    def verify_(self) -> None:
        acc = _tensor(self.operands[0])
        if acc.element != _I32:
            raise self.error(f"the accumulators must be i32, got {acc}")
        columns = acc.shape[-1]
        for key in ("scale", "weight_sums", "bias"):
            if key in self.attributes:
                shape = self.attr_type(key).shape
                if len(shape) != 1 or (columns is not None and shape[0] != columns):
                    raise self.error(f"'{key}' must have one entry per column ({columns}), got {list(shape)}")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        acc = args[0].astype(np.int64) - self.attr("zero_point") * self.tensor_attr("weight_sums").astype(np.int64)
        y = acc.astype(np.float64) * self.tensor_attr("scale").astype(np.float64)
        if "bias" in self.attributes:
            y += self.tensor_attr("bias").astype(np.float64)
        return [y.astype(np.float32)]


@register_op
class ProgramOp(_CimOp):
    """A row block of a matrix of signed ``weight_bits``-bit weights programmed into crossbar arrays: conductance
    levels per cell, ``levels[sign, slice, row, col]`` in ``0 .. 2^cell_bits - 1``. Slice ``s`` holds bits
    ``s * cell_bits`` and up of each weight's magnitude (``differential``: sign 0 the positive part, sign 1 the
    negative) or of its offset code (``offset``: ``w + 2^(weight_bits - 1)``, one sign), in
    ``ceil(weight_bits / cell_bits)`` slices. Every ``array_cols`` columns of one slice and sign is one physical
    array of ``array_rows`` rows; ``replication`` copies of them serve alternate input vectors.

    ``parallel_slices = 1`` says the slices are not arrays of their own but binary-weighted cells of the same array
    element, wired in parallel onto one node (a closed-loop chip's ``cim.solve`` matrix: its effective conductance is
    ``sum_s 2^(s cell_bits) G_s``, ``cimc.runtime.closed_loop``): every ``array_cols`` columns of one sign is then
    one physical array, whose elements hold ``slices`` cells each. It is 0 (each slice its own array, read and
    shift-added digitally, as ``bit-slice`` programs a layer) unless ``lower-solve`` sets it.

    ``%4 = "cim.program"() <{array_cols = 64 : i64, array_rows = 64 : i64, cell_bits = 2 : i64,
    levels = dense_resource<fc1.r0> : tensor<2x4x64x10xui8>, sign_encoding = "differential", weight_bits = 8 : i64}> :
    () -> tensor<2x4x64x10xui8>``
    """

    name = "cim.program"
    definition = OpDef(
        results=(ResultDef("levels"),),
        attributes={
            "levels": AttrDef(_TENSOR),
            "weight_bits": AttrDef(IntAttr),
            "cell_bits": AttrDef(IntAttr),
            "sign_encoding": AttrDef(StringAttr),
            "array_rows": AttrDef(IntAttr),
            "array_cols": AttrDef(IntAttr),
            "replication": AttrDef(IntAttr, default=1),
            "parallel_slices": AttrDef(IntAttr, default=0),
        },
    )

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        levels = attributes["levels"]
        assert isinstance(levels, _TENSOR)
        return [levels.type]

    @property
    def signs(self) -> int:
        return self.attr_type("levels").shape[0]  # type: ignore[return-value]

    @property
    def slices(self) -> int:
        return self.attr_type("levels").shape[1]  # type: ignore[return-value]

    @property
    def rows(self) -> int:
        return self.attr_type("levels").shape[2]  # type: ignore[return-value]

    @property
    def columns(self) -> int:
        return self.attr_type("levels").shape[3]  # type: ignore[return-value]

    @property
    def arrays(self) -> int:
        """Physical arrays: signs x slices x column blocks x replication, or signs x column blocks x replication
        when the slices are parallel cells of one array element (``parallel_slices``)."""
        blocks = -(-self.columns // self.attr("array_cols"))
        slices = 1 if self.attr("parallel_slices") else self.slices
        return self.signs * slices * blocks * self.attr("replication")

    def verify_(self) -> None:
        weight_bits = self.check_bits("weight_bits")
        cell_bits = self.check_bits("cell_bits", 1, 8)
        ltype = self.attr_type("levels")
        if ltype.rank != 4 or ltype.element.name != "ui8" or not ltype.is_static:
            raise self.error(f"'levels' must be ui8 [signs, slices, rows, cols], got {ltype}")
        if self.result.type != ltype:
            raise self.error(f"result type {self.result.type} differs from the levels' {ltype}")
        encoding = self.attr("sign_encoding")
        if encoding not in SIGN_ENCODINGS:
            raise self.error(f"'sign_encoding' must be one of {', '.join(SIGN_ENCODINGS)}, got '{encoding}'")
        if self.signs != signs_for(encoding):
            raise self.error(f"{encoding} encoding needs {signs_for(encoding)} signs, got {self.signs}")
        if self.slices != slices_for(weight_bits, cell_bits):
            raise self.error(
                f"{weight_bits}-bit weights take {slices_for(weight_bits, cell_bits)} slices of {cell_bits}-bit "
                f"cells, got {self.slices}"
            )
        if self.rows > self.attr("array_rows"):
            raise self.error(f"{self.rows} rows do not fit arrays of {self.attr('array_rows')} rows")
        if self.attr("array_cols") < 1 or self.attr("replication") < 1:
            raise self.error("'array_cols' and 'replication' must be positive")
        if self.attr("parallel_slices") not in (0, 1):
            raise self.error(f"'parallel_slices' must be 0 or 1, got {self.attr('parallel_slices')}")
        levels = self.payload("levels")
        if levels is not None:
            top = int(levels.max(initial=0))
            if top >= 1 << cell_bits:
                raise self.error(f"level {top} does not fit a {cell_bits}-bit cell")
            # the largest magnitude (differential) or offset code that one weight's slices add up to, a slice at a
            # time in the narrowest integers that hold it (the check runs on every load: ResNet-18 has 89M cells)
            wide = np.dtype(np.int32 if cell_bits * self.slices < 31 else np.int64)
            codes = np.zeros(levels.shape[:1] + levels.shape[2:], wide)
            for index in range(self.slices):
                codes += np.left_shift(levels[:, index].astype(wide), cell_bits * index)
            stored = int(codes.max(initial=0))
            limit = (1 << weight_bits) - 1 if encoding == "offset" else 1 << (weight_bits - 1)
            if stored > limit:
                what = "offset code" if encoding == "offset" else "magnitude"
                raise self.error(f"levels hold {what} {stored}, beyond {weight_bits}-bit weights (at most {limit})")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        return [self.tensor_attr("levels")]


@register_op
class BitPlanesOp(_CimOp):
    """Input codes streamed through ``dac_bits`` DACs: ``planes[p] = (codes >> (p * dac_bits)) & (2^dac_bits - 1)``
    for ``p`` in ``0 .. ceil(input_bits / dac_bits) - 1``, one array read per plane.

    With a ``zero_point`` z > 0 the codes stream signed, in two phases: the planes of ``max(codes - z, 0)`` then
    those of ``max(z - codes, 0)``, each as many as its largest value needs (``signed_phases``); the arrays then
    sum ``codes - z`` (the shift-add subtracts the second phase), so the zero point's common current, and its
    analog error, never flow.

    ``%3 = "cim.bit_planes"(%2) <{dac_bits = 1 : i64, input_bits = 8 : i64}> :
    (tensor<?x64xui8>) -> tensor<8x?x64xui8>``
    """

    name = "cim.bit_planes"
    definition = OpDef(
        operands=(OperandDef("codes"),),
        results=(ResultDef("planes"),),
        attributes={
            "dac_bits": AttrDef(IntAttr),
            "input_bits": AttrDef(IntAttr),
            "zero_point": AttrDef(IntAttr, default=0),
        },
    )

    @staticmethod
    def plane_count(input_bits: int, dac_bits: int, zero_point: int) -> int:
        """Planes per code: one phase of ``input_bits``, or two of the magnitude's bits when signed."""
        if zero_point == 0:
            return planes_for(input_bits, dac_bits)
        return sum(signed_phases(input_bits, dac_bits, zero_point))

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        (codes,) = operand_types
        assert isinstance(codes, TensorType)
        zero_point = _int(attributes["zero_point"]) if "zero_point" in attributes else 0
        planes = cls.plane_count(_int(attributes["input_bits"]), _int(attributes["dac_bits"]), zero_point)
        return [TensorType((planes, *codes.shape), ElementType("ui8"))]

    def verify_(self) -> None:
        dac_bits = self.check_bits("dac_bits", 1, 8)
        input_bits = self.check_bits("input_bits")
        codes = self.check_element(self.operands[0], "the codes", "unsigned")
        if not 0 <= self.attr("zero_point") < 1 << input_bits:
            raise self.error(f"'zero_point' {self.attr('zero_point')} is outside the {input_bits}-bit code range")
        if self.result.type != self.infer_result_types([codes], self.attributes)[0]:
            raise self.error(f"result type must be {self.infer_result_types([codes], self.attributes)[0]}")
        if dac_bits > input_bits:
            raise self.error(f"{dac_bits} DAC bits exceed the {input_bits}-bit codes")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        codes = args[0].astype(np.int64)
        d, z, bits = self.attr("dac_bits"), self.attr("zero_point"), self.attr("input_bits")
        if z == 0:
            phases = [(codes, planes_for(bits, d))]
        else:
            positive, negative = signed_phases(bits, d, z)
            phases = [(np.maximum(codes - z, 0), positive), (np.maximum(z - codes, 0), negative)]
        planes = [(phase >> (p * d)) & ((1 << d) - 1) for phase, count in phases for p in range(count)]
        return [np.stack(planes).astype(np.uint8)]


@register_op
class MvmOp(_CimOp):
    """Array reads: for each bit plane, the column currents of every array of a programmed row block, as integers
    ``out[p, ..., sign, slice, c] = sum_r planes[p, ..., row_offset + r] * levels[sign, slice, r, c]``.

    ``%5 = "cim.mvm"(%3, %4) <{row_offset = 0 : i64}> : (tensor<8x?x64xui8>, tensor<2x4x64x10xui8>) ->
    tensor<8x?x2x4x10xi32>``
    """

    name = "cim.mvm"
    definition = OpDef(
        operands=(OperandDef("planes"), OperandDef("levels")),
        results=(ResultDef("currents"),),
        attributes={"row_offset": AttrDef(IntAttr, default=0)},
    )

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        planes, levels = operand_types
        assert isinstance(planes, TensorType) and isinstance(levels, TensorType)
        signs, slices, _, columns = levels.shape
        return [TensorType((*planes.shape[:-1], signs, slices, columns), _I32)]

    @property
    def vector_dims(self) -> tuple[int | None, ...]:
        """The dims of the input vectors one sample streams through the arrays: the planes' dims between the
        batch and the contraction axes (a conv's output positions, a sequence's tokens; none for a dense layer)."""
        return _tensor(self.operands[0]).shape[2:-1]

    @property
    def vectors(self) -> int:
        """Input vectors per sample (dynamic dims count as 1)."""
        return math.prod(d or 1 for d in self.vector_dims)

    def verify_(self) -> None:
        planes = self.check_element(self.operands[0], "the planes", "unsigned")
        levels = _tensor(self.operands[1])
        if levels.rank != 4:
            raise self.error(f"levels must be [signs, slices, rows, cols], got {levels}")
        _check_rows(self, planes, levels.shape[2])  # type: ignore[arg-type]
        expected = self.infer_result_types([planes, levels], self.attributes)[0]
        if self.result.type != expected:
            raise self.error(f"result type must be {expected}")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        planes, levels = args
        signs, slices, rows, columns = levels.shape
        start = self.attr("row_offset")
        x = planes[..., start : start + rows].reshape(-1, rows)
        w = levels.transpose(2, 0, 1, 3).reshape(rows, -1)
        bound = rows * float(max(int(planes.max(initial=0)), 1)) * float(max(int(levels.max(initial=0)), 1))
        out = _exact_matmul(x, w, bound).astype(np.int32)
        return [out.reshape(*planes.shape[:-1], signs, slices, columns)]


@register_op
class AdcOp(_CimOp):
    """Column currents read by ``bits``-bit ADCs spanning ``[0, 2^full_scale_bits)``: exact when ``bits`` covers
    the full scale, else the ``full_scale_bits - bits`` low bits are rounded away (half up) and the top code
    saturates: ``out = min(floor(x / 2^k + 1/2), 2^bits - 1) * 2^k`` with ``k = full_scale_bits - bits``.

    ``%6 = "cim.adc"(%5) <{bits = 8 : i64, full_scale_bits = 8 : i64}> : (tensor<8x?x2x4x10xi32>) ->
    tensor<8x?x2x4x10xi32>``
    """

    name = "cim.adc"
    definition = OpDef(
        operands=(OperandDef("currents"),),
        results=(ResultDef("codes"),),
        attributes={"bits": AttrDef(IntAttr), "full_scale_bits": AttrDef(IntAttr)},
    )

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        return [operand_types[0]]

    @property
    def dropped_bits(self) -> int:
        """Low bits of the full scale the ADC cannot resolve (0 for an exact readout)."""
        return max(self.attr("full_scale_bits") - self.attr("bits"), 0)

    def verify_(self) -> None:
        # an exact ADC resolves its full scale, which the i32 currents bound at 31 bits (1024 rows of 8-bit cells
        # read by 8-bit DACs need 26)
        self.check_bits("bits", 1, 31)
        self.check_bits("full_scale_bits", 1, 31)
        if _tensor(self.operands[0]).element != _I32 or self.result.type != self.operands[0].type:
            raise self.error("reads i32 currents into i32 values of the same shape")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        k = self.dropped_bits
        half = (1 << k) >> 1
        codes = np.minimum((args[0].astype(np.int64) + half) >> k, (1 << self.attr("bits")) - 1)
        return [(codes << k).astype(np.int32)]


@register_op
class ShiftAddOp(_CimOp):
    """ADC readings of one row block recombined by the digital shift-adder into that block's partial sums:
    ``sum_p sum_s sum_sign (+1 | -1) * 2^(p * dac_bits + s * cell_bits) * x[p, ..., sign, s, c]``; sign 1 (the
    negative array of a differential pair) subtracts. With offset encoding the stored offset is taken out again:
    ``- weight_offset * sum_r codes[..., row_offset + r]`` over the block's ``rows``, the codes given as operand.
    Codes streamed signed (``input_zero_point`` z > 0, see ``cim.bit_planes``) fill the planes axis with two phases,
    the second subtracted, so the partial sums are those of ``codes - z`` (and the offset term takes ``codes - z``).

    ``%7 = "cim.shift_add"(%6) <{cell_bits = 2 : i64, dac_bits = 1 : i64}> : (tensor<8x?x2x4x10xi32>) ->
    tensor<?x10xi32>``
    """

    name = "cim.shift_add"
    definition = OpDef(
        operands=(OperandDef("readings"), OperandDef("codes", "optional")),
        results=(ResultDef("partial"),),
        attributes={
            "dac_bits": AttrDef(IntAttr),
            "cell_bits": AttrDef(IntAttr),
            "weight_offset": AttrDef(IntAttr, default=0),
            "row_offset": AttrDef(IntAttr, default=0),
            "rows": AttrDef(IntAttr, default=0),
            "input_zero_point": AttrDef(IntAttr, default=0),
        },
    )

    def plane_weights(self, planes: int) -> np.ndarray:
        """The shift-adder's weight of each plane: ``2^(p * dac_bits)`` within its phase, negative for a signed
        stream's second phase (``planes_for(bits of z, dac_bits)`` planes)."""
        d, z = self.attr("dac_bits"), self.attr("input_zero_point")
        negative = planes_for(z.bit_length(), d) if z else 0
        powers = [np.int64(1) << (np.arange(n, dtype=np.int64) * d) for n in (planes - negative, negative)]
        return np.concatenate([powers[0], -powers[1]])

    @classmethod
    def infer_result_types(cls, operand_types: list[Type], attributes: dict[str, Attribute]) -> list[Type]:
        readings = operand_types[0]
        assert isinstance(readings, TensorType)
        return [TensorType((*readings.shape[1:-3], readings.shape[-1]), _I32)]

    def verify_(self) -> None:
        self.check_bits("dac_bits", 1, 8)
        self.check_bits("cell_bits", 1, 8)
        readings = _tensor(self.operands[0])
        if readings.rank < 4 or readings.element != _I32:
            raise self.error(f"readings must be i32 [planes, ..., signs, slices, cols], got {readings}")
        negative = planes_for(self.attr("input_zero_point").bit_length(), self.attr("dac_bits"))
        if readings.shape[0] is not None and readings.shape[0] < negative:
            raise self.error(
                f"a signed stream's negative phase needs {negative} planes, the readings have {readings.shape[0]}"
            )
        codes = self.operand("codes")
        if (codes is not None) != (self.attr("weight_offset") != 0):
            raise self.error("the input codes are needed exactly when a weight offset is taken out")
        if codes is not None:
            _check_rows(self, self.check_element(codes, "the codes", "unsigned"), self.attr("rows"))
        if self.result.type != self.infer_result_types([readings], self.attributes)[0]:
            raise self.error(f"result type must be {self.infer_result_types([readings], self.attributes)[0]}")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        readings = args[0].astype(np.int64)
        planes, signs, slices = readings.shape[0], readings.shape[-3], readings.shape[-2]
        p = self.plane_weights(planes).reshape(-1, *(1,) * (readings.ndim - 1))
        s = np.arange(slices).reshape(-1, 1)
        sign = np.array([1, -1][:signs]).reshape(-1, 1, 1)
        weight = p * (np.int64(1) << (s * self.attr("cell_bits"))) * sign
        partial = (readings * weight).sum(axis=(0, -3, -2))
        if len(args) > 1:
            start, rows = self.attr("row_offset"), self.attr("rows")
            codes = args[1][..., start : start + rows].astype(np.int64) - self.attr("input_zero_point")
            partial = partial - self.attr("weight_offset") * codes.sum(axis=-1, keepdims=True)
        return [partial.astype(np.int32)]


def dequantize_of(value: Value) -> DequantizeOp | None:
    """The ``cim.dequantize`` a layer's partial sums reach, directly or through its ``cim.accumulate``."""
    found = _dequantize_at(value)
    return found[0] if found is not None else None


def _dequantize_at(value: Value) -> tuple[DequantizeOp, int] | None:
    """The ``cim.dequantize`` partial sums ``value`` reach (through ``cim.accumulate`` ops) and the column of its
    result where they start (the accumulates' ``col_offsets``); None when they reach none."""
    for use in value.uses:
        if isinstance(use.op, DequantizeOp):
            return use.op, 0
        if isinstance(use.op, AccumulateOp):
            found = _dequantize_at(use.op.result)
            return None if found is None else (found[0], found[1] + use.op.attr("col_offsets")[use.index])
    return None


def quantize_of(codes: Value) -> QuantizeOp | None:
    """The ``cim.quantize`` that made ``codes``, through ``cim.im2col`` and one-operand digital ops (transposes of
    the codes); None when there is none."""
    op = getattr(codes, "op", None)
    while isinstance(op, (Im2ColOp, DigitalOp)) and op.operands:
        op = getattr(op.operands[0], "op", None)
    return op if isinstance(op, QuantizeOp) else None


def layer_scales(partial: Value, codes: Value) -> tuple[np.ndarray, int] | None:
    """What one level of each column of a layer is worth as a weight: its ``cim.dequantize`` scale over the scale of
    its input ``codes`` (float64, one per column of the layer), and the first column of the row block whose partial
    sums are ``partial``; None when the chain reaches no quantize or dequantize."""
    quantize, found = quantize_of(codes), _dequantize_at(partial)
    if quantize is None or found is None:
        return None
    dequantize, offset = found
    return dequantize.tensor_attr("scale").astype(np.float64).reshape(-1) / float(quantize.attr("scale")), offset


@register_op
class DigitalOp(_CimOp):
    """Work a tile's digital unit does: its region holds one graph op (activation, pooling, residual add,
    softmax, layer norm, activation x activation MatMul, a layout change), run as the reference interpreter runs
    it. Isolated from above: the region's block arguments are the operands.

    ``%6 = "cim.digital"(%5) ({ ^bb0(%arg1: tensor<?x10xf32>): %7 = "graph.relu"(%arg1) : ... "cim.yield"(%7) ...
    }) : (tensor<?x10xf32>) -> tensor<?x10xf32>``
    """

    name = "cim.digital"
    isolated = True
    definition = OpDef(operands=(OperandDef("inputs", "variadic"),), results=(ResultDef("outputs", "variadic"),))

    @property
    def body(self) -> Sequence[Operation]:
        return self.regions[0].block.ops

    @property
    def work(self) -> Operation:
        """The graph op this unit runs."""
        return self.body[0]

    def verify_(self) -> None:
        if len(self.regions) != 1 or len(self.regions[0].blocks) != 1:
            raise self.error("must have one region with one block")
        block = self.regions[0].block
        if [a.type for a in block.args] != [v.type for v in self.operands]:
            raise self.error("block argument types differ from the operand types")
        if not block.ops or not isinstance(block.ops[-1], YieldOp):
            raise self.error("region must end with 'cim.yield'")
        if [v.type for v in block.ops[-1].operands] != [r.type for r in self.results]:
            raise self.error("yielded types differ from the result types")

    def evaluate(self, args: list[np.ndarray]) -> list[np.ndarray]:
        from cimc.ir.interpreter import run_block

        return run_block(self.regions[0].block, args)


@register_op
class YieldOp(Operation):
    """Ends a ``cim.digital`` region, giving its results: ``"cim.yield"(%7) : (tensor<?x10xf32>) -> ()``."""

    name = "cim.yield"
    definition = OpDef(operands=(OperandDef("values", "variadic"),))

    def verify_(self) -> None:
        if not isinstance(self.parent and self.parent.parent and self.parent.parent.parent, DigitalOp):
            raise self.error("must end a 'cim.digital' region")
        if self.parent is not None and self.parent.ops[-1] is not self:
            raise self.error("must be the last op of its block")


def number_groups(module: ModuleOp) -> None:
    """Give every ``cim.program`` of ``main`` its group number (``GROUP_ATTRIBUTE``), in body order: done once, by
    ``place``, when the groups are final."""
    programs = [op for op in main_function(module).body.ops if isinstance(op, ProgramOp)]
    for number, program in enumerate(programs):
        program.attributes[GROUP_ATTRIBUTE] = IntAttr(number)


def array_groups(module: ModuleOp) -> list[ProgramOp]:
    """The array groups of ``main``, indexed by their ``GROUP_ATTRIBUTE``: the one reader of the numbering, for
    placement, code generation, the simulator, timing and the reports. Raises ``VerifyError`` naming the op when a
    ``cim.program`` has no number, or the numbers are not ``0 .. n-1`` each once."""
    programs = [op for op in main_function(module).body.ops if isinstance(op, ProgramOp)]
    groups: list[ProgramOp | None] = [None] * len(programs)
    for program in programs:
        attr = program.attributes.get(GROUP_ATTRIBUTE)
        if not isinstance(attr, IntAttr):
            raise program.error(f"has no '{GROUP_ATTRIBUTE}' number: run 'place' first")
        number = attr.value
        if not 0 <= number < len(programs) or groups[number] is not None:
            raise program.error(
                f"'{GROUP_ATTRIBUTE} = {number}' repeats or is outside 0..{len(programs) - 1}: every group is numbered "
                "once"
            )
        groups[number] = program
    return [g for g in groups if g is not None]


def ssa_values(func: FuncOp) -> list[Value]:
    """The SSA values of ``func`` in one numbering: its arguments, then every op's results in body order. Transfers
    of the instruction streams name the value they carry by its index here (``value_numbers`` inverts it)."""
    values: list[Value] = list(func.body.args)
    for op in func.body.ops:
        values.extend(op.results)
    return values


def value_numbers(func: FuncOp) -> dict[Value, int]:
    """Each SSA value of ``func`` by its index in ``ssa_values``."""
    return {value: index for index, value in enumerate(ssa_values(func))}
