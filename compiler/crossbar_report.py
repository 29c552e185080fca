"""The crossbar report: what each layer of a lowered module costs in arrays, array reads and ADC conversions, how
well its weights fill the cells, which converters it reads with and what its ADC loses, what the other sign encoding
would cost, and what work stays on the digital units.

It reads the verified IR of the ``cim`` stage (``cim.program`` / ``cim.mvm`` / ``cim.adc`` / ``cim.shift_add``) or
of the ``quantized`` stage (``cim.linear``, before arrays exist: matrix shapes and kinds only). A crossbar layer is
one ``cim.dequantize`` and the crossbar ops upstream of its accumulators; it is named by its location (the ONNX
node), and lists the ONNX nodes its dequantization absorbed (``cim.fused``). Every figure is counted from the IR,
per input sample, so tests check it against closed forms.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cimc.compiler.calibration import ADC_RANGE
from cimc.ir.attributes import StringAttr
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
    exact_adc_bits,
    planes_for,
    signs_for,
    slices_for,
)
from cimc.ir.interpreter import main_function
from cimc.ir.types import TensorType
from cimc.passes.lower_to_cim import FUSED, KIND, REASON, WEIGHTS

OpT = TypeVar("OpT", bound=Operation)


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
    streams (1 for a Gemm, output pixels for a convolution, tokens for a MatMul; None when a dimension is dynamic);
    ``input_bits`` and ``weight_bits`` are the widths of the input codes and of the signed weights; ``fused`` names
    the ONNX nodes after the layer (a bias Add, a per-channel Mul, a BatchNormalization) that its dequantization does
    instead of a digital unit, in order (``cim.fused``).

    The rest is None at the ``quantized`` stage (no arrays yet; ``encodings`` is empty there):

    - ``arrays``: physical arrays, replicas included (the sum of ``cim.program``'s ``arrays``);
    - ``cells``: their cells, ``arrays * array_rows * array_cols``; ``weight_cells``: those holding one of the
      layer's weights, ``weights * slices * signs * replication``; ``cell_utilization``: ``weight_cells / cells``;
    - ``array_reads``: per sample; one read is one array activated for one bit plane of one input vector, so it is
      ``vectors * planes * arrays / replication`` (a replica serves other vectors; it does not add reads);
    - ``adc_conversions``: per sample, one per column of every array read: ``vectors * planes * signs * slices *
      programmed columns``, summed over the blocks;
    - ``adc_exact_bits``: the bits an exact read of its largest block needs (``exact_adc_bits``: its rows, DAC
      and cells); ``adc_bits`` / ``adc_full_scale_bits`` / ``adc_dropped_bits``: the largest ``bits``,
      ``full_scale_bits`` and ``dropped_bits`` of its ``cim.adc`` ops (the ADC spans ``[0, 2^full_scale_bits)`` in
      steps of ``2^dropped_bits``);
    - ``adc_range``: ``exact`` (every ADC at least as wide as an exact read), ``full`` (an ADC narrower than exact
      spanning the worst-case column sum) or ``calibrated`` (its full scale set from the calibration inputs'
      column currents, ``cim.adc_range``; currents above it saturate);
    - ``adc_error``: a bound on how far one output accumulator can be from the exact one, in accumulator units (the
      integer ``codes @ weights``), over the reads within the ADCs' ranges (every read, unless a range is
      calibrated): each read is off by at most ``e`` (half a step, ``2^(k-1)`` for ``k`` dropped bits, or the
      saturation at the top code if larger), each shift-added with weight ``2^(p*dac_bits) * 2^(s*cell_bits)`` per
      sign, and one such sum per row block: ``sum_blocks e * signs * sum_p 2^(p*dac_bits) * sum_s 2^(s*cell_bits)``.
      0 with an exact ADC;
    - ``adc_relative_error``: ``adc_error`` over the accumulator's full scale ``K * (2^input_bits - 1) *
      2^(weight_bits-1)``;
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
    weight_bits: int
    fused: tuple[str, ...] = ()
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
    adc_full_scale_bits: int | None = None
    adc_dropped_bits: int | None = None
    adc_range: str | None = None
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
        DigitalWork(op.work.name, op.location.name, _annotation(op, REASON)) for op in ops if isinstance(op, DigitalOp)
    ]
    return CrossbarReport(layers, digital)


def _annotation(op: Operation, key: str) -> Any:
    """The value of an attribute ``lower-to-cim`` notes for reports (``cim.kind``, ...), None when absent."""
    return getattr(op.attributes.get(key), "value", None)


def _defining(value: Value) -> Operation | None:
    return value.op if isinstance(value, OpResult) else None


def _found(op: Operation | None) -> str:
    return f"'{op.name}'" if op is not None else "a block argument"


def _expect(value: Value, kind: type[OpT], user: Operation) -> OpT:
    """The op of type ``kind`` that defines ``value``, an operand of ``user``."""
    op = _defining(value)
    if not isinstance(op, kind):
        raise user.error(f"the crossbar report expects '{kind.name}' here, found {_found(op)}")
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
            raise dequantize.error(f"its accumulators come from {_found(op)}, not from crossbar ops")
    return found


def _uniform(dequantize: DequantizeOp, ops: Iterable[Operation], key: str) -> Any:
    """The one value of attribute ``key`` that the ops of the layer of ``dequantize`` share; a clear error when they
    differ."""
    distinct = sorted({op.attr(key) for op in ops}, key=str)
    if len(distinct) != 1:
        raise dequantize.error(f"the blocks of its layer differ in {key} ({', '.join(map(str, distinct))})")
    return distinct[0]


@dataclass(frozen=True)
class _Block:
    """One programmed row block and the ops that read it: its DAC planes, array reads and ADC."""

    planes: BitPlanesOp
    mvm: MvmOp
    program: ProgramOp
    adc: AdcOp

    @staticmethod
    def of(shift_add: ShiftAddOp) -> _Block:
        adc = _expect(shift_add.operands[0], AdcOp, shift_add)
        mvm = _expect(adc.operands[0], MvmOp, adc)
        return _Block(_expect(mvm.operands[0], BitPlanesOp, mvm), mvm, _expect(mvm.operands[1], ProgramOp, mvm), adc)

    @property
    def row_offset(self) -> int:
        return self.mvm.attr("row_offset")

    @property
    def exact_bits(self) -> int:
        """The bits an exact read of this block's columns needs."""
        return exact_adc_bits(self.program.rows, self.planes.attr("dac_bits"), self.program.attr("cell_bits"))

    @property
    def range(self) -> str:
        """``exact``, ``full`` or ``calibrated`` (see ``CrossbarLayer.adc_range``)."""
        if self.adc.attr("bits") >= self.exact_bits:
            return "exact"
        return "calibrated" if _annotation(self.adc, ADC_RANGE) == "calibrated" else "full"

    def read_error(self) -> int:
        """The largest ``|reading - current|`` of one ADC read over every current a column of this block can carry
        within the ADC's full scale: half a step when ``k`` low bits are dropped, or the saturation at the top code
        when that is larger."""
        k = self.adc.dropped_bits
        largest = min(
            self.program.rows * ((1 << self.planes.attr("dac_bits")) - 1) * ((1 << self.program.attr("cell_bits")) - 1),
            (1 << self.adc.attr("full_scale_bits")) - 1,
        )
        top = ((1 << self.adc.attr("bits")) - 1) << k
        return max(min((1 << k) >> 1, largest), largest - top)


def _layer(dequantize: DequantizeOp) -> CrossbarLayer:
    """One layer: its matrix from the row blocks its accumulators add, and its arrays once they are programmed."""
    sources = _partial_sums(dequantize)
    linears = [op for op in sources if isinstance(op, LinearOp)]
    blocks = [_Block.of(op) for op in sources if isinstance(op, ShiftAddOp)]
    if linears and blocks:
        raise dequantize.error("its partial sums mix 'cim.linear' and 'cim.shift_add'")
    if linears:  # the quantized stage: cim.linear holds the codes' and weights' widths
        codes, spans = linears[0].operands[0], [(op.attr("row_offset"), op.rows) for op in linears]
        inputs: Sequence[Operation] = linears
        weights: Sequence[Operation] = linears
    else:  # the cim stage: the bit planes hold the codes' width, the programs the weights'
        codes, spans = blocks[0].planes.operands[0], [(b.row_offset, b.program.rows) for b in blocks]
        inputs, weights = [b.planes for b in blocks], [b.program for b in blocks]
    assert isinstance(codes.type, TensorType)
    lead = codes.type.shape[1:-1]  # the axes between the batch and the contraction axis
    layer = CrossbarLayer(
        name=dequantize.location.name or "<unknown>",
        kind=_annotation(dequantize, KIND),
        # K: the codes' contraction axis (rows past the last programmed block hold zero weights only)
        rows=max(*(offset + rows for offset, rows in spans), codes.type.shape[-1] or 0),
        columns=dequantize.result.type.shape[-1],  # type: ignore[attr-defined]
        weights=_annotation(dequantize, WEIGHTS),
        row_blocks=len({offset for offset, _ in spans}),
        vectors=None if None in lead else math.prod(lead),  # type: ignore[arg-type]
        input_bits=_uniform(dequantize, inputs, "input_bits"),
        weight_bits=_uniform(dequantize, weights, "weight_bits"),
        fused=_fused(dequantize),
    )
    return _programmed(dequantize, layer, blocks) if blocks else layer


def _fused(dequantize: DequantizeOp) -> tuple[str, ...]:
    """The ONNX nodes the layer's dequantization absorbed, from its ``cim.fused`` (none when absent)."""
    names = _annotation(dequantize, FUSED) or ()
    if not isinstance(names, tuple) or not all(isinstance(name, StringAttr) for name in names):
        raise dequantize.error(f"'{FUSED}' must be an array of ONNX node names, got {dequantize.attributes[FUSED]}")
    return tuple(name.value for name in names)


def _programmed(dequantize: DequantizeOp, layer: CrossbarLayer, blocks: Sequence[_Block]) -> CrossbarLayer:
    """``layer`` with the figures of its programmed arrays, bit planes and ADC reads."""
    programs = [b.program for b in blocks]
    cell_bits, encoding, replication, array_rows, array_cols = (
        _uniform(dequantize, programs, key)
        for key in ("cell_bits", "sign_encoding", "replication", "array_rows", "array_cols")
    )
    dac_bits = _uniform(dequantize, (b.planes for b in blocks), "dac_bits")
    slices, signs = slices_for(layer.weight_bits, cell_bits), signs_for(encoding)
    planes = planes_for(layer.input_bits, dac_bits)
    offsets = {b.row_offset for b in blocks}
    arrays = sum(p.arrays for p in set(programs))
    per_vector = None if layer.vectors is None else layer.vectors * planes
    reads = None if per_vector is None else per_vector * sum(p.arrays // replication for p in programs)
    conversions = None if per_vector is None else per_vector * signs * slices * sum(p.columns for p in programs)
    # one output: each row block adds signs x planes x slices ADC readings, shift-added with these weights
    shift_weights = (
        signs * sum(1 << (p * dac_bits) for p in range(planes)) * sum(1 << (s * cell_bits) for s in range(slices))
    )
    error = shift_weights * sum(max(b.read_error() for b in blocks if b.row_offset == o) for o in offsets)
    full_scale = layer.rows * ((1 << layer.input_bits) - 1) * (1 << (layer.weight_bits - 1))
    cells = arrays * array_rows * array_cols
    weight_cells = None if layer.weights is None else layer.weights * slices * signs * replication
    row_sums = None if layer.vectors is None else layer.vectors * len(offsets)  # offset: per vector and row block

    def cost(other: str) -> EncodingCost:
        scale = signs_for(other)
        return EncodingCost(
            arrays // signs * scale,
            None if conversions is None else conversions // signs * scale,
            row_sums if other == "offset" else 0,
        )

    return dataclasses.replace(
        layer,
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
        adc_exact_bits=max(b.exact_bits for b in blocks),
        adc_bits=max(b.adc.attr("bits") for b in blocks),
        adc_full_scale_bits=max(b.adc.attr("full_scale_bits") for b in blocks),
        adc_dropped_bits=max(b.adc.dropped_bits for b in blocks),
        adc_range=next((r for r in ("calibrated", "full") if any(b.range == r for b in blocks)), "exact"),
        adc_error=error,
        adc_relative_error=error / full_scale,
        encodings={other: cost(other) for other in SIGN_ENCODINGS},
    )


# --- output ------------------------------------------------------------------------------------------------------


def report_json(report: CrossbarReport) -> dict[str, Any]:
    """The report as plain JSON data for scripts. Reads, conversions and row sums are per input sample; null
    stands for unknown (a dynamic dimension, or no arrays yet at the ``quantized`` stage). Schema:

    - ``layers``: one object per crossbar layer, in module order, with the fields of ``CrossbarLayer`` (see there):
      ``name``, ``kind``, ``rows``, ``columns``, ``weights``, ``row_blocks``, ``vectors``, ``input_bits``,
      ``weight_bits``, ``fused`` (the ONNX node names its dequantization absorbed, in order; ``[]`` when none),
      ``cell_bits``, ``slices``, ``sign_encoding``, ``replication``, ``array_rows``, ``array_cols``, ``dac_bits``,
      ``planes``, ``arrays``, ``cells``, ``weight_cells``, ``cell_utilization`` (0..1), ``array_reads``,
      ``adc_conversions``, ``adc_exact_bits``, ``adc_bits``, ``adc_full_scale_bits``, ``adc_dropped_bits``,
      ``adc_range`` (``exact``, ``full`` or ``calibrated``), ``adc_error`` (accumulator units),
      ``adc_relative_error``, and ``encodings``:
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
    """The report as aligned terminal tables: layers and their arrays, the ops fused into their dequantization, work
    per sample, converters, the cost of each sign encoding, and the digital work (counts per op kind, and the
    crossbar ops refused with their reasons)."""
    totals = report.totals
    sections = [
        f"Crossbar report: {totals.layers} crossbar layer{'s' * (totals.layers != 1)}, "
        f"{_count(totals.weights)} weights, {_count(totals.arrays)} arrays, {totals.digital_ops} digital ops"
    ]
    if report.layers:
        sections.append(_layer_table(_LAYERS_TITLE, _LAYERS, report))
    if any(layer.fused for layer in report.layers):
        sections.append(_fused_table(report))
    if any(layer.arrays is not None for layer in report.layers):
        sections += [
            _layer_table(_WORK_TITLE, _WORK, report),
            _layer_table(_CONVERTERS_TITLE, _CONVERTERS, report, totals=False),
            _layer_table(_ENCODINGS_TITLE, _ENCODINGS, report),
        ]
    if report.digital:
        counts = [[op, str(count)] for op, count in report.digital_counts.items()]
        sections.append(text_table("Digital units (ops per kind)", ["op", "count"], counts, "lr"))
    if report.refused:
        rows = [[work.location or "<unknown>", work.op, work.reason or ""] for work in report.refused]
        sections.append(text_table("Left on digital units", ["layer", "op", "reason"], rows, "lll"))
    return "\n\n".join(sections) + "\n"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _relative(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}" if value else "0"


def _encoding_cell(name: str, figure: str) -> Callable[[CrossbarLayer | Totals], str]:
    """The cell of one figure of ``EncodingCost`` under encoding ``name``, for a layer or the totals."""
    return lambda row: _count(getattr(row.encodings[name], figure)) if row.encodings else "-"


#: The columns of a per-layer table: header, alignment (``l`` or ``r``), the cell of a layer, and the cell of the
#: totals row (None: blank).
_Column = tuple[str, str, Callable[[CrossbarLayer], str], Callable[[Totals], str] | None]


def _figure(header: str, field: str, summed: bool = False) -> _Column:
    """A right-aligned column of one count of ``CrossbarLayer`` (``-`` when unknown), with the field of the same name
    of ``Totals`` in the totals row when ``summed``."""
    total = (lambda totals: _count(getattr(totals, field))) if summed else None
    return header, "r", lambda layer: _count(getattr(layer, field)), total


_LAYERS_TITLE = (
    "Crossbar layers (signs: diff = differential pairs, offset = offset codes;\n"
    "util: cells holding a weight / programmed cells)"
)
_LAYERS: list[_Column] = [
    ("kind", "l", lambda layer: layer.kind or "-", None),
    ("matrix", "r", lambda layer: f"{layer.rows} x {layer.columns}", None),
    _figure("weights", "weights", summed=True),
    _figure("blocks", "row_blocks"),
    _figure("w bits", "weight_bits"),
    _figure("in bits", "input_bits"),
    _figure("cell", "cell_bits"),
    _figure("slices", "slices"),
    (
        "signs",
        "l",
        lambda layer: {"differential": "diff"}.get(layer.sign_encoding or "-", layer.sign_encoding or "-"),
        None,
    ),
    _figure("repl", "replication"),
    _figure("arrays", "arrays", summed=True),
    ("util", "r", lambda layer: _percent(layer.cell_utilization), lambda totals: _percent(totals.cell_utilization)),
]
_WORK_TITLE = "Work per sample"
_WORK: list[_Column] = [
    _figure("vectors", "vectors"),
    _figure("planes", "planes"),
    _figure("array reads", "array_reads", summed=True),
    _figure("ADC conv", "adc_conversions", summed=True),
]
_CONVERTERS_TITLE = (
    "Converters (ADC exact: the bits an exact read needs; full scale: 2^bits spanned, the worst case or calibrated;\n"
    "narrower: an ADC below exact; error bound: of one output over reads within range, in accumulator units;\n"
    "relative: to the output's full scale)"
)
_CONVERTERS: list[_Column] = [
    _figure("DAC bits", "dac_bits"),
    _figure("ADC bits", "adc_bits"),
    _figure("ADC exact", "adc_exact_bits"),
    _figure("full scale", "adc_full_scale_bits"),
    ("range", "l", lambda layer: layer.adc_range or "-", None),
    ("narrower", "l", lambda layer: {None: "-", "exact": "no"}.get(layer.adc_range, "yes"), None),
    _figure("dropped", "adc_dropped_bits"),
    _figure("error bound", "adc_error"),
    ("relative", "r", lambda layer: _relative(layer.adc_relative_error), None),
]
_ENCODINGS_TITLE = (
    "Sign encodings per sample (differential: 2 arrays per slice; offset: 1, plus a digital row sum per vector)"
)
_ENCODINGS: list[_Column] = [
    ("used", "l", lambda layer: layer.sign_encoding or "-", None),
    *(
        (header, "r", _encoding_cell(name, figure), _encoding_cell(name, figure))
        for header, name, figure in (
            ("arrays diff", "differential", "arrays"),
            ("arrays offset", "offset", "arrays"),
            ("ADC conv diff", "differential", "adc_conversions"),
            ("ADC conv offset", "offset", "adc_conversions"),
            ("row sums offset", "offset", "row_sums"),
        )
    ),
]


def _layer_table(title: str, columns: Sequence[_Column], report: CrossbarReport, totals: bool = True) -> str:
    """A table of one row per layer, named in the first column, and a totals row unless ``totals`` is false."""
    rows = [[layer.name, *(cell(layer) for _, _, cell, _ in columns)] for layer in report.layers]
    if totals:
        summed = report.totals
        rows.append(["total", *("" if cell is None else cell(summed) for _, _, _, cell in columns)])
    header = ["layer", *(header for header, _, _, _ in columns)]
    return text_table(title, header, rows, "l" + "".join(align for _, align, _, _ in columns))


#: The widest line the fused-nodes table writes (other tables are as wide as their layer names make them).
_WIDTH = 120


def _fused_table(report: CrossbarReport) -> str:
    """The layers whose dequantization absorbed ONNX nodes, and those nodes in order (the last ones counted, not
    named, where the line would pass ``_WIDTH``)."""
    fused = [layer for layer in report.layers if layer.fused]
    room = _WIDTH - 2 - max(len("layer"), *(len(layer.name) for layer in fused))
    rows = [[layer.name, _listed(layer.fused, room)] for layer in fused]
    title = "Fused into the dequantization (per-channel ops done by a layer's cim.dequantize, not a digital unit)"
    return text_table(title, ["layer", "fused ONNX nodes"], rows, "ll")


def _listed(names: Sequence[str], room: int) -> str:
    """``names`` joined by commas in at most ``room`` characters: the most that fit, then ``+N more``."""
    for shown in range(len(names), 0, -1):
        rest = len(names) - shown
        text = ", ".join([*names[:shown], *([f"+{rest} more"] if rest else [])])
        if len(text) <= room:
            return text
    return f"+{len(names)} more"


def text_table(title: str, header: list[str], rows: list[list[str]], align: str) -> str:
    """A titled table, columns padded to their widest cell, aligned per ``align`` (``l`` or ``r`` per column)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, rows)])
