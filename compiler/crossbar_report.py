"""The crossbar report: what each layer of a lowered module costs in arrays, array reads and ADC conversions, how
well its weights fill the cells, what the configured ADC loses, what the other sign encoding would cost, and what
work stays on the digital units.

It reads the IR of the ``cim`` stage (``cim.program`` / ``cim.mvm`` / ``cim.adc`` / ``cim.shift_add``) or of the
``quantized`` stage (``cim.linear``, before arrays exist: matrix shapes and kinds only). A crossbar layer is one
``cim.dequantize`` and the crossbar ops upstream of its accumulators; it is named by its location (the ONNX node).
Every figure is counted from the IR, per input sample, so tests check it against closed forms.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from cimc.ir.attributes import DenseElementsAttr, StringAttr
from cimc.ir.core import Operation, OpResult, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import (
    SIGN_ENCODINGS,
    AccumulateOp,
    AdcOp,
    BitPlanesOp,
    DequantizeOp,
    DigitalOp,
    LinearOp,
    MvmOp,
    ProgramOp,
    ShiftAddOp,
    planes_for,
)
from cimc.ir.interpreter import main_function
from cimc.ir.types import TensorType
from cimc.passes.lower_to_cim import KIND, REASON, WEIGHTS

T = TypeVar("T")
OpT = TypeVar("OpT", bound=Operation)


def _signs(encoding: str) -> int:
    """Arrays per bit slice that hold one signed weight: a differential pair (2) or one offset-coded array (1)."""
    return 2 if encoding == "differential" else 1


@dataclass(frozen=True)
class EncodingCost:
    """What one layer costs under one sign encoding, per input sample.

    The slices are the same under both encodings (a differential magnitude up to ``2^(weight_bits-1)`` and an
    offset code ``w + 2^(weight_bits-1)`` both need ``weight_bits`` bits), so arrays and ADC conversions scale with
    the signs: 2 for differential, 1 for offset. Offset encoding pays instead ``row_sums``: per input vector and row
    block, the digital sum of the block's input codes that takes the stored offset out again.
    """

    arrays: int
    adc_conversions: int | None
    row_sums: int | None


@dataclass(frozen=True)
class CrossbarLayer:
    """One crossbar layer (a Conv, Gemm or MatMul with constant weights) and its cost.

    Shapes: the weight matrix is ``rows`` (K, the contraction depth, the input's last axis) x ``columns`` (N);
    ``weights`` is the layer's true weight count (``cim.weights``; below K x N for grouped convolutions, whose matrix
    is block-diagonal; None in IR written without it); ``row_blocks`` counts the distinct row offsets of its
    programmed blocks (a block of zero weights is not programmed); ``vectors`` is the input vectors one sample
    streams (1 for a Gemm, output pixels for a convolution, tokens for a MatMul; None when a dimension is dynamic).

    Weight bits: exact (``weight_bits_min == weight_bits_max``) at the ``quantized`` stage (``cim.linear``) and with
    offset encoding (``cim.shift_add``'s ``weight_offset`` is ``2^(weight_bits-1)``). A differential layer stores
    ``ceil(weight_bits / cell_bits)`` slices, so only ``(slices-1) * cell_bits < weight_bits <= slices * cell_bits``
    is known from its shape; when the levels are in the IR, the largest stored magnitudes raise the lower end (a
    positive magnitude of ``b`` bits needs ``b + 1`` signed bits, a negative one at least ``b``).

    The rest is None at the ``quantized`` stage (no arrays yet; ``encodings`` is empty there):

    - ``arrays``: physical arrays, replicas included (the sum of ``cim.program``'s ``arrays``);
    - ``cells``: their cells, ``arrays * array_rows * array_cols``; ``weight_cells``: those holding one of the
      layer's weights, ``weights * slices * signs * replication``; ``cell_utilization``: ``weight_cells / cells``;
    - ``array_reads``: per sample; one read is one array activated for one bit plane of one input vector, so it is
      ``vectors * planes * arrays / replication`` (a replica serves other vectors; it does not add reads);
    - ``adc_conversions``: per sample, one per column of every array read: ``vectors * planes * signs * slices *
      programmed columns``, summed over the blocks;
    - ``adc_exact_bits`` / ``adc_bits`` / ``adc_dropped_bits``: the largest ``full_scale_bits``, ``bits`` and
      ``dropped_bits`` of its ``cim.adc`` ops;
    - ``adc_error``: a bound on how far one output accumulator can be from the exact one, in accumulator units (the
      integer ``codes @ weights``): each read is off by at most ``e`` (half a step, ``2^(k-1)`` for ``k`` dropped
      bits, or the saturation at the top code if larger), each shift-added with weight ``2^(p*dac_bits) *
      2^(s*cell_bits)`` per sign, and one such sum per row block: ``sum_blocks e * signs * sum_p 2^(p*dac_bits) *
      sum_s 2^(s*cell_bits)``. 0 with an exact ADC;
    - ``adc_relative_error``: ``adc_error`` over the accumulator's full scale ``K * (2^input_bits - 1) *
      2^(weight_bits-1)``, taken with ``weight_bits_min`` so that it stays a bound;
    - ``encodings``: the cost under each sign encoding (the one used and the other), by encoding name.
    """

    name: str
    kind: str | None
    rows: int
    columns: int
    weights: int | None
    row_blocks: int
    vectors: int | None
    input_bits: int
    weight_bits_min: int
    weight_bits_max: int
    cell_bits: int | None = None
    slices: int | None = None
    sign_encoding: str | None = None
    replication: int | None = None
    array_rows: int | None = None
    array_cols: int | None = None
    dac_bits: int | None = None
    planes: int | None = None
    arrays: int | None = None
    cells: int | None = None
    weight_cells: int | None = None
    cell_utilization: float | None = None
    array_reads: int | None = None
    adc_conversions: int | None = None
    adc_exact_bits: int | None = None
    adc_bits: int | None = None
    adc_dropped_bits: int | None = None
    adc_error: int | None = None
    adc_relative_error: float | None = None
    encodings: dict[str, EncodingCost] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class DigitalWork:
    """One ``cim.digital`` op: the graph op it runs (``graph.relu``), its location, and why it is not on crossbars
    when it is a Conv, Gemm or MatMul that could not be (``cim.reason``)."""

    op: str
    location: str | None
    reason: str | None


@dataclass(frozen=True)
class Totals:
    """Sums over the crossbar layers (None where a layer's figure is None) and the digital op count;
    ``cell_utilization`` is over all programmed cells of the model."""

    layers: int
    weights: int | None
    arrays: int | None
    cell_utilization: float | None
    array_reads: int | None
    adc_conversions: int | None
    encodings: dict[str, EncodingCost]
    digital_ops: int


@dataclass(frozen=True)
class CrossbarReport:
    """The crossbar layers in module order and the digital work."""

    layers: list[CrossbarLayer]
    digital: list[DigitalWork]

    @property
    def digital_counts(self) -> dict[str, int]:
        """Digital ops per graph op kind, most frequent first."""
        counts = Counter(work.op for work in self.digital)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    @property
    def refused(self) -> list[DigitalWork]:
        """The Conv, Gemm and MatMul ops left on digital units, with their reasons."""
        return [work for work in self.digital if work.reason is not None]

    @property
    def totals(self) -> Totals:
        layers = self.layers
        encodings = {}
        if layers and all(layer.encodings for layer in layers):
            encodings = {
                name: EncodingCost(
                    sum(layer.encodings[name].arrays for layer in layers),
                    _sum(layer.encodings[name].adc_conversions for layer in layers),
                    _sum(layer.encodings[name].row_sums for layer in layers),
                )
                for name in SIGN_ENCODINGS
            }
        cells, weight_cells = _sum(layer.cells for layer in layers), _sum(layer.weight_cells for layer in layers)
        return Totals(
            layers=len(layers),
            weights=_sum(layer.weights for layer in layers),
            arrays=_sum(layer.arrays for layer in layers),
            cell_utilization=None if weight_cells is None or not cells else weight_cells / cells,
            array_reads=_sum(layer.array_reads for layer in layers),
            adc_conversions=_sum(layer.adc_conversions for layer in layers),
            encodings=encodings,
            digital_ops=len(self.digital),
        )


def _sum(values: Iterable[int | None]) -> int | None:
    """The sum, or None when any term is unknown."""
    total = 0
    for value in values:
        if value is None:
            return None
        total += value
    return total


# --- reading the IR ----------------------------------------------------------------------------------------------


def crossbar_report(module: ModuleOp) -> CrossbarReport:
    """The report of a module at the ``cim`` or ``quantized`` stage (its ``main`` function)."""
    ops = main_function(module).body.ops
    layers = [_layer(op) for op in ops if isinstance(op, DequantizeOp)]
    digital = [
        DigitalWork(op.work.name, op.location.name, _string(op, REASON)) for op in ops if isinstance(op, DigitalOp)
    ]
    return CrossbarReport(layers, digital)


def _string(op: Operation, key: str) -> str | None:
    attr = op.attributes.get(key)
    return attr.value if isinstance(attr, StringAttr) else None


def _defining(value: Value) -> Operation | None:
    return value.op if isinstance(value, OpResult) else None


def _expect(value: Value, kind: type[OpT], user: Operation) -> OpT:
    """The op of type ``kind`` that defines ``value``, an operand of ``user``."""
    op = _defining(value)
    if not isinstance(op, kind):
        found = f"'{op.name}'" if op is not None else "a block argument"
        raise user.error(f"the crossbar report expects '{kind.name}' here, found {found}")
    return op


def _partial_sums(dequantize: DequantizeOp) -> list[Operation]:
    """The ``cim.shift_add`` or ``cim.linear`` ops whose partial sums the layer's accumulators add, in order."""
    found: list[Operation] = []
    stack = [dequantize.operands[0]]
    while stack:
        op = _defining(stack.pop())
        if isinstance(op, AccumulateOp):
            stack.extend(reversed(op.operands))
        elif isinstance(op, (ShiftAddOp, LinearOp)):
            found.append(op)
        else:
            found_name = f"'{op.name}'" if op is not None else "a block argument"
            raise dequantize.error(f"its accumulators come from {found_name}, not from crossbar ops")
    return found


def _vectors(codes: Value) -> int | None:
    """Input vectors per sample: the product of the codes' axes between the batch and the contraction axis."""
    shape = _shape(codes)[1:-1]
    return None if None in shape else math.prod(shape)  # type: ignore[arg-type]


def _shape(value: Value) -> tuple[int | None, ...]:
    assert isinstance(value.type, TensorType)
    return value.type.shape


def _uniform(dequantize: DequantizeOp, what: str, values: Iterable[T]) -> T:
    """The one value every block of the layer of ``dequantize`` has for ``what``; a clear error when they differ."""
    distinct = sorted(set(values), key=str)
    if len(distinct) != 1:
        raise dequantize.error(f"the blocks of its layer differ in {what} ({', '.join(map(str, distinct))})")
    return distinct[0]


def _layer(dequantize: DequantizeOp) -> CrossbarLayer:
    sources = _partial_sums(dequantize)
    weights = dequantize.attributes.get(WEIGHTS)
    common: dict[str, Any] = {
        "name": dequantize.location.name or "<unknown>",
        "kind": _string(dequantize, KIND),
        "columns": _shape(dequantize.result)[-1],
        "weights": getattr(weights, "value", None),
    }
    linears = [op for op in sources if isinstance(op, LinearOp)]
    shift_adds = [op for op in sources if isinstance(op, ShiftAddOp)]
    if len(linears) == len(sources):
        return _quantized_layer(dequantize, common, linears)
    if len(shift_adds) != len(sources):
        raise dequantize.error("its partial sums mix 'cim.linear' and 'cim.shift_add'")
    return _sliced_layer(dequantize, common, [_Block.of(op) for op in shift_adds])


def _depth(codes: Value, ends: Iterable[int]) -> int:
    """K: the codes' contraction axis (rows past the last programmed block hold zero weights only)."""
    return max([*ends, _shape(codes)[-1] or 0])


def _quantized_layer(dequantize: DequantizeOp, common: dict[str, Any], linears: Sequence[LinearOp]) -> CrossbarLayer:
    """A layer at the ``quantized`` stage: exact integer ``cim.linear`` blocks, no arrays yet."""
    codes = linears[0].operands[0]
    bits = _uniform(dequantize, "weight bits", (op.attr("weight_bits") for op in linears))
    return CrossbarLayer(
        **common,
        rows=_depth(codes, (op.attr("row_offset") + op.rows for op in linears)),
        row_blocks=len({op.attr("row_offset") for op in linears}),
        vectors=_vectors(codes),
        input_bits=_uniform(dequantize, "input bits", (op.attr("input_bits") for op in linears)),
        weight_bits_min=bits,
        weight_bits_max=bits,
    )


@dataclass(frozen=True)
class _Block:
    """One programmed row block and the ops that read it: its DAC planes, array reads, ADC and shift-add."""

    planes: BitPlanesOp
    mvm: MvmOp
    program: ProgramOp
    adc: AdcOp
    shift_add: ShiftAddOp

    @staticmethod
    def of(shift_add: ShiftAddOp) -> _Block:
        adc = _expect(shift_add.operands[0], AdcOp, shift_add)
        mvm = _expect(adc.operands[0], MvmOp, adc)
        planes = _expect(mvm.operands[0], BitPlanesOp, mvm)
        program = _expect(mvm.operands[1], ProgramOp, mvm)
        return _Block(planes, mvm, program, adc, shift_add)

    @property
    def row_offset(self) -> int:
        return self.mvm.attr("row_offset")

    def read_error(self) -> int:
        """The largest ``|reading - current|`` of one ADC read over every current a column of this block can carry:
        half a step when ``k`` low bits are dropped, or the saturation at the top code when that is larger."""
        k = self.adc.dropped_bits
        largest = (
            self.program.rows * ((1 << self.planes.attr("dac_bits")) - 1) * ((1 << self.program.attr("cell_bits")) - 1)
        )
        top = ((1 << self.adc.attr("bits")) - 1) << k
        return max(min((1 << k) >> 1, largest), largest - top)


def _sliced_layer(dequantize: DequantizeOp, common: dict[str, Any], blocks: Sequence[_Block]) -> CrossbarLayer:
    """A layer at the ``cim`` stage: programmed arrays, bit planes, ADC reads."""

    def same(what: str, value: Callable[[_Block], T]) -> T:
        return _uniform(dequantize, what, (value(b) for b in blocks))

    cell_bits = same("cell bits", lambda b: b.program.attr("cell_bits"))
    slices = same("slices", lambda b: b.program.slices)
    signs = same("signs", lambda b: b.program.signs)
    encoding = same("sign encoding", lambda b: b.program.attr("sign_encoding"))
    replication = same("replication", lambda b: b.program.attr("replication"))
    array_rows = same("array rows", lambda b: b.program.attr("array_rows"))
    array_cols = same("array columns", lambda b: b.program.attr("array_cols"))
    dac_bits = same("DAC bits", lambda b: b.planes.attr("dac_bits"))
    input_bits = same("input bits", lambda b: b.planes.attr("input_bits"))
    planes = planes_for(input_bits, dac_bits)

    codes = blocks[0].planes.operands[0]
    vectors = _vectors(codes)
    rows = _depth(codes, (b.row_offset + b.program.rows for b in blocks))
    offsets = {b.row_offset for b in blocks}
    programs = list({id(b.program): b.program for b in blocks}.values())
    arrays = sum(p.arrays for p in programs)
    per_vector = None if vectors is None else vectors * planes
    reads = None if per_vector is None else per_vector * sum(b.program.arrays // replication for b in blocks)
    conversions = None if per_vector is None else per_vector * signs * slices * sum(b.program.columns for b in blocks)

    weight_offset = same("weight offset", lambda b: b.shift_add.attr("weight_offset"))
    low, high = _weight_bits(blocks, weight_offset, slices, cell_bits)
    # one output: each row block adds signs x planes x slices ADC readings, shift-added with these weights
    shift_weights = (
        signs * sum(1 << (p * dac_bits) for p in range(planes)) * sum(1 << (s * cell_bits) for s in range(slices))
    )
    error = shift_weights * sum(max(b.read_error() for b in blocks if b.row_offset == o) for o in offsets)
    full_scale = rows * ((1 << input_bits) - 1) * (1 << (low - 1))
    weights = common["weights"]
    cells = arrays * array_rows * array_cols
    weight_cells = None if weights is None else weights * slices * signs * replication

    row_sums = None if vectors is None else vectors * len(offsets)  # offset encoding: one per vector and row block

    def cost(other: str) -> EncodingCost:
        scale = _signs(other)
        return EncodingCost(
            arrays // signs * scale,
            None if conversions is None else conversions // signs * scale,
            row_sums if other == "offset" else 0,
        )

    return CrossbarLayer(
        **common,
        rows=rows,
        row_blocks=len(offsets),
        vectors=vectors,
        input_bits=input_bits,
        weight_bits_min=low,
        weight_bits_max=high,
        cell_bits=cell_bits,
        slices=slices,
        sign_encoding=encoding,
        replication=replication,
        array_rows=array_rows,
        array_cols=array_cols,
        dac_bits=dac_bits,
        planes=planes,
        arrays=arrays,
        cells=cells,
        weight_cells=weight_cells,
        cell_utilization=None if weight_cells is None else weight_cells / cells,
        array_reads=reads,
        adc_conversions=conversions,
        adc_exact_bits=max(b.adc.attr("full_scale_bits") for b in blocks),
        adc_bits=max(b.adc.attr("bits") for b in blocks),
        adc_dropped_bits=max(b.adc.dropped_bits for b in blocks),
        adc_error=error,
        adc_relative_error=error / full_scale,
        encodings={other: cost(other) for other in SIGN_ENCODINGS},
    )


def _weight_bits(blocks: Sequence[_Block], weight_offset: int, slices: int, cell_bits: int) -> tuple[int, int]:
    """The weight bits of a sliced layer, as ``(lowest, highest)`` consistent with its IR (see ``CrossbarLayer``)."""
    if weight_offset:  # offset encoding: 2^(weight_bits - 1)
        exact = weight_offset.bit_length()
        return exact, exact
    low, high = (slices - 1) * cell_bits + 1, slices * cell_bits
    for block in blocks:
        levels = _levels(block.program)
        if levels is None:
            continue
        top = levels.max(axis=(2, 3))  # [sign, slice]: the largest level of each slice
        for sign, needs in ((0, 1), (1, 0)):  # +b bits need b + 1 signed bits, -b bits at least b
            used = [s for s in range(slices) if top[sign, s]]
            if used:
                magnitude_bits = used[-1] * cell_bits + int(top[sign, used[-1]]).bit_length()
                low = max(low, magnitude_bits + needs)
    return min(low, high), high


def _levels(program: ProgramOp) -> np.ndarray | None:
    """The program's levels, or None when the IR was printed without its resources."""
    attr = program.attributes["levels"]
    if isinstance(attr, DenseElementsAttr) or attr.blob.array is not None:  # type: ignore[attr-defined]
        return program.tensor_attr("levels")
    return None


# --- output ------------------------------------------------------------------------------------------------------


def report_json(report: CrossbarReport) -> dict[str, Any]:
    """The report as plain JSON data for scripts. Reads, conversions and row sums are per input sample; null
    stands for unknown (a dynamic dimension, or no arrays yet at the ``quantized`` stage). Schema:

    - ``layers``: one object per crossbar layer, in module order, with the fields of ``CrossbarLayer`` (see there):
      ``name``, ``kind``, ``rows``, ``columns``, ``weights``, ``row_blocks``, ``vectors``, ``input_bits``,
      ``weight_bits_min``, ``weight_bits_max``, ``cell_bits``, ``slices``, ``sign_encoding``, ``replication``,
      ``array_rows``, ``array_cols``, ``dac_bits``, ``planes``, ``arrays``, ``cells``, ``weight_cells``,
      ``cell_utilization`` (0..1), ``array_reads``, ``adc_conversions``, ``adc_exact_bits``, ``adc_bits``,
      ``adc_dropped_bits``, ``adc_error`` (accumulator units), ``adc_relative_error``, and ``encodings``:
      ``{"differential": {"arrays", "adc_conversions", "row_sums"}, "offset": {...}}`` (empty at ``quantized``);
    - ``arrays``: the model's arrays (null at the ``quantized`` stage);
    - ``totals``: ``layers``, ``weights``, ``arrays``, ``cell_utilization`` (of all programmed cells),
      ``array_reads``, ``adc_conversions``, ``encodings`` (as in a layer), ``digital_ops``;
    - ``digital_ops``: one object per ``cim.digital``, in module order: ``op`` (``graph.relu``), ``location``,
      ``reason`` (why a Conv/Gemm/MatMul is not on crossbars, else null);
    - ``digital_op_counts``: ``{op: count}``, most frequent first.
    """
    totals = report.totals
    return {
        "layers": [dataclasses.asdict(layer) for layer in report.layers],
        "arrays": totals.arrays,
        "totals": dataclasses.asdict(totals),
        "digital_ops": [dataclasses.asdict(work) for work in report.digital],
        "digital_op_counts": report.digital_counts,
    }


def format_report(report: CrossbarReport) -> str:
    """The report as aligned terminal tables: layers and their arrays, work per sample and ADC, the cost of each sign
    encoding, and the digital work (counts per op kind, and the crossbar ops refused with their reasons)."""
    layers, totals = report.layers, report.totals
    sections = [
        f"Crossbar report: {totals.layers} crossbar layer{'s' * (totals.layers != 1)}, "
        f"{_count(totals.weights)} weights, {_count(totals.arrays)} arrays, {totals.digital_ops} digital ops"
    ]
    if layers:
        sections.append(_layers_table(layers, totals))
    if any(layer.arrays is not None for layer in layers):
        sections += [_work_table(layers, totals), _encoding_table(layers, totals)]
    if report.digital:
        counts = [[op, str(count)] for op, count in report.digital_counts.items()]
        sections.append(_table("Digital units (ops per kind)", ["op", "count"], counts, "lr"))
    if report.refused:
        rows = [[work.location or "<unknown>", work.op, work.reason or ""] for work in report.refused]
        sections.append(_table("Left on digital units", ["layer", "op", "reason"], rows, "lll"))
    return "\n\n".join(sections) + "\n"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _relative(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}" if value else "0"


def _bits(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


def _layers_table(layers: Sequence[CrossbarLayer], totals: Totals) -> str:
    header = ["layer", "kind", "matrix", "weights", "blocks", "w bits", "in bits", "cell", "slices", "encoding"]
    header += ["repl", "arrays", "util"]
    rows = [
        [
            layer.name,
            layer.kind or "-",
            f"{layer.rows} x {layer.columns}",
            _count(layer.weights),
            _count(layer.row_blocks),
            _bits(layer.weight_bits_min, layer.weight_bits_max),
            str(layer.input_bits),
            _count(layer.cell_bits),
            _count(layer.slices),
            layer.sign_encoding or "-",
            _count(layer.replication),
            _count(layer.arrays),
            _percent(layer.cell_utilization),
        ]
        for layer in layers
    ]
    total = [
        "total",
        "",
        "",
        _count(totals.weights),
        *[""] * 7,
        _count(totals.arrays),
        _percent(totals.cell_utilization),
    ]
    title = "Crossbar layers (util: cells holding a weight / programmed cells)"
    return _table(title, header, [*rows, total], "llrrrrrrrlrrr")


def _work_table(layers: Sequence[CrossbarLayer], totals: Totals) -> str:
    header = ["layer", "vectors", "planes", "array reads", "ADC conv", "ADC exact", "ADC bits", "dropped"]
    header += ["error bound", "relative"]
    rows = [
        [
            layer.name,
            _count(layer.vectors),
            _count(layer.planes),
            _count(layer.array_reads),
            _count(layer.adc_conversions),
            _count(layer.adc_exact_bits),
            _count(layer.adc_bits),
            _count(layer.adc_dropped_bits),
            _count(layer.adc_error),
            _relative(layer.adc_relative_error),
        ]
        for layer in layers
    ]
    total = ["total", "", "", _count(totals.array_reads), _count(totals.adc_conversions), *[""] * 5]
    title = "Work per sample and ADC (error bound: of one output, in accumulator units; relative: to its full scale)"
    return _table(title, header, [*rows, total], "lrrrrrrrrr")


def _encoding_table(layers: Sequence[CrossbarLayer], totals: Totals) -> str:
    header = ["layer", "used", "arrays diff", "arrays offset", "ADC conv diff", "ADC conv offset", "row sums offset"]

    def figures(encodings: dict[str, EncodingCost]) -> list[str]:
        if not encodings:
            return ["-"] * 5
        differential, offset = encodings["differential"], encodings["offset"]
        return [
            _count(differential.arrays),
            _count(offset.arrays),
            _count(differential.adc_conversions),
            _count(offset.adc_conversions),
            _count(offset.row_sums),
        ]

    rows = [[layer.name, layer.sign_encoding or "-", *figures(layer.encodings)] for layer in layers]
    total = ["total", "", *figures(totals.encodings)]
    title = "Sign encodings per sample (differential: 2 arrays per slice; offset: 1, plus a digital row sum per vector)"
    return _table(title, header, [*rows, total], "llrrrrr")


def _table(title: str, header: list[str], rows: list[list[str]], align: str) -> str:
    """A titled table, columns padded to their widest cell, aligned per ``align`` (``l`` or ``r`` per column)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, rows)])
