"""Energy of a compiled model: event counts from the per-tile instruction streams times the chip's energy per
event (``Chip.energy``, pJ), per inference and broken down, the one-time cost of programming the arrays, and the
same model on a stated digital baseline, so that the energy ratio is computed, not claimed.

Events per inference (one input sample), from the streams and each group's geometry (``GroupGeometry``):

- ``arrays``: array reads of one bit plane: ``vectors x planes x arrays / replication`` per ``mvm`` (each input
  vector is read by one copy of the group's arrays), times ``array_read_pj``;
- ``dacs``: DAC conversions: the group's rows of every array read, ``rows x arrays / replication x planes x
  vectors``, times ``dac_pj``;
- ``adcs``: the ``adc`` instructions' conversions, times ``adc_pj``;
- ``buffers``: bytes through the tiles' buffers, times ``buffer_byte_pj``: the input codes every ``mvm`` reads
  (``ceil(vectors x rows x input_bits / 8)``), the bytes every tile sends and receives, and the outputs the
  digital unit writes: shift-add, accumulate and dequantize 4 bytes a value (i32 partial sums, f32 results), a
  ``digital`` 1 byte an element for the ops that make ui8 codes (``CODE_OPS``) and 4 (f32) for the graph ops;
- ``network``: bits x router hops of every transfer, times ``network_bit_hop_pj`` (the port's channel is no hop);
- ``digital``: digital-unit operations (``cimc.runtime.timing.digital_op_count``), times ``digital_op_pj``;
- ``closed_loop`` (only in models with a ``cim.solve``): every ``solve``'s right-hand sides times the energy of one
  (``GroupGeometry.solve``: ``cimc.runtime.closed_loop.solve_cost`` on the solve's matrix, which depends on its
  values: op-amps, DACs, ADCs, arrays, the refinement's digital work, blocks written again on a chip too small to
  hold them all).

The I/O port's work on the model inputs (quantizing them, making their bit planes) takes no tile time (see
``cimc.runtime.timing``) but its operations are charged as digital ones here; the port has no tile buffer.

Programming, once when the chip is loaded: every cell of every group (``rows x columns x signs x slices x
replication``) takes ``pulses_per_cell`` write pulses (1 for a single write; more with closed-loop
program-and-verify), each ``cell_program_pj``; an array writes one row at a time, every array at once, so loading
takes the most rows of any group x pulses x ``write_pulse_s``.

The baseline (``BASELINE``): every multiply-accumulate of the arrays on a digital unit (an 8-bit multiply and a
32-bit add) plus every weight fetched once per inference from DRAM; a ``solve``'s right-hand sides each add the
closed-loop model's digital baseline for one (``SolveCost.baseline_pj``: substitution with LU factors made once).
It leaves out the model's other digital work, which the CIM side pays, so the ratio favours the baseline a little.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cimc.compiler.chip import Chip
from cimc.runtime.isa import PORT, Instruction, Opcode, Streams
from cimc.runtime.timing import GroupGeometry, TimingError, digital_op_count, transfer_links

#: Digital ops (their names in the string table) whose outputs are ui8 codes, one byte an element.
CODE_OPS = frozenset({"cim.quantize", "cim.im2col", "cim.bit_planes"})
#: Bytes of an i32 partial sum or an f32 value.
WORD_BYTES = 4


@dataclass(frozen=True)
class Constant:
    """A baseline constant with where it comes from."""

    pj: float
    source: str


#: The digital baseline's energy per event, in pJ, at 45 nm (the most widely cited table).
BASELINE = {
    "multiply": Constant(0.2, "8-bit integer multiply; Horowitz, 'Computing's energy problem', ISSCC 2014, 45 nm"),
    "add": Constant(0.1, "32-bit integer add (the accumulation); Horowitz, ISSCC 2014, 45 nm"),
    "dram_byte": Constant(
        160.0,
        "DRAM read, 640 pJ per 32-bit word; Han et al., 'Learning both weights and connections for efficient "
        "neural networks', NeurIPS 2015, Table 1, from Horowitz ISSCC 2014",
    ),
}

#: The float32 arithmetic of a digital linear solver (``cimc.runtime.closed_loop``'s baseline), in pJ at 45 nm; its
#: matrix comes from DRAM at ``BASELINE["dram_byte"]``.
FP32_BASELINE = {
    "multiply": Constant(3.7, "32-bit float multiply; Horowitz, 'Computing's energy problem', ISSCC 2014, 45 nm"),
    "add": Constant(0.9, "32-bit float add; Horowitz, ISSCC 2014, 45 nm"),
}


@dataclass(frozen=True)
class Energy:
    """Energy of one inference in pJ by category (``arrays``, ``dacs``, ``adcs``, ``buffers``, ``network``,
    ``digital``, and ``closed_loop`` in models with a ``cim.solve``), its total, the one-time programming energy
    and time, the multiply-accumulates the arrays do, TOPS/W (2 ops a MAC), and the digital baseline by category
    (``multiply``, ``add``, ``dram``), its total and ``ratio`` = baseline / CIM energy."""

    per_inference_pj: dict[str, float]
    programming_pj: float
    programming_s: float
    macs: int
    baseline_pj: dict[str, float]

    @property
    def total_pj(self) -> float:
        return sum(self.per_inference_pj.values())

    @property
    def ops(self) -> int:
        """Operations per inference: a multiply and an add per MAC."""
        return 2 * self.macs

    @property
    def tops_per_w(self) -> float:
        """Tera-operations per second per watt, which is operations per picojoule."""
        return self.ops / self.total_pj if self.total_pj else 0.0

    @property
    def baseline_total_pj(self) -> float:
        return sum(self.baseline_pj.values())

    @property
    def ratio(self) -> float:
        """How many times less energy than the baseline one inference takes on the chip."""
        return self.baseline_total_pj / self.total_pj if self.total_pj else 0.0


@dataclass
class _Events:
    """Event counts of one inference."""

    array_reads: int = 0
    dac_conversions: int = 0
    adc_conversions: int = 0
    buffer_bytes: int = 0
    bit_hops: int = 0
    digital_ops: int = 0
    macs: int = 0
    closed_loop_pj: float = 0.0
    solve_baseline_pj: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("multiply", "add", "dram"), 0.0))

    def add(self, tile: tuple[int, int], i: Instruction, chip: Chip, groups: list[GroupGeometry], name: str) -> None:
        """Count the events of instruction ``i`` on ``tile``; ``name`` is a ``digital`` instruction's op."""
        on_tile = tile != PORT
        self.digital_ops += digital_op_count(i)
        if i.opcode == Opcode.MVM:
            if i.a >= len(groups):
                raise TimingError(f"'{i}' reads group {i.a}, but the model has {len(groups)} groups")
            group = groups[i.a]
            reads = i.c * i.b * group.arrays_per_copy
            self.array_reads += reads
            self.dac_conversions += reads * group.rows
            self.buffer_bytes += -(-i.c * group.rows * group.input_bits // 8)
            self.macs += i.c * group.rows * group.columns
        elif i.opcode == Opcode.ADC:
            self.adc_conversions += i.c
        elif i.opcode == Opcode.SOLVE:
            cost = groups[i.a].solve if i.a < len(groups) else None
            if cost is None:
                raise TimingError(f"'{i}' solves on group {i.a}, which is no closed-loop solve's first group")
            self.closed_loop_pj += i.d * cost.energy_total_pj
            for category, pj in cost.baseline_pj.items():
                self.solve_baseline_pj[category] += i.d * pj
        elif i.opcode in (Opcode.SHIFT_ADD, Opcode.ACCUMULATE):
            self.buffer_bytes += WORD_BYTES * i.c
        elif i.opcode == Opcode.DEQUANTIZE:
            self.buffer_bytes += WORD_BYTES * i.b
        elif i.opcode == Opcode.DIGITAL and on_tile:
            self.buffer_bytes += i.c * (1 if name in CODE_OPS else WORD_BYTES)
        elif i.opcode in (Opcode.SEND, Opcode.RECV):
            self.buffer_bytes += i.c if on_tile else 0
            if i.opcode == Opcode.SEND:
                _, hops = transfer_links(chip, tile, (i.a, i.b))
                self.bit_hops += 8 * i.c * hops


def estimate_energy(
    streams: Streams,
    chip: Chip,
    groups: list[GroupGeometry],
    *,
    pulses_per_cell: int = 1,
    write_pulse_s: float = 1e-7,
) -> Energy:
    """The energy of one inference of ``streams`` on ``chip`` and of loading its arrays (see the module
    docstring); ``pulses_per_cell`` write pulses of ``write_pulse_s`` seconds program one cell."""
    if pulses_per_cell < 1 or write_pulse_s < 0:
        raise ValueError(f"pulses_per_cell must be >= 1 and write_pulse_s >= 0, got {pulses_per_cell}, {write_pulse_s}")
    events = _Events()
    for tile, stream in streams.tiles.items():
        for instruction in stream:
            name = streams.strings[instruction.a] if instruction.opcode == Opcode.DIGITAL else ""
            events.add(tile, instruction, chip, groups, name)
    pj = chip.energy
    per_inference = {
        "arrays": events.array_reads * pj.array_read_pj,
        "dacs": events.dac_conversions * pj.dac_pj,
        "adcs": events.adc_conversions * pj.adc_pj,
        "buffers": events.buffer_bytes * pj.buffer_byte_pj,
        "network": events.bit_hops * pj.network_bit_hop_pj,
        "digital": events.digital_ops * pj.digital_op_pj,
    }
    if any(g.solve is not None for g in groups):
        per_inference["closed_loop"] = events.closed_loop_pj
    cells = sum(g.rows * g.columns * g.signs * g.slices * g.replication for g in groups)
    weight_bytes = sum(-(-g.rows * g.columns * g.weight_bits // 8) for g in groups)
    baseline = {
        "multiply": events.macs * BASELINE["multiply"].pj + events.solve_baseline_pj["multiply"],
        "add": events.macs * BASELINE["add"].pj + events.solve_baseline_pj["add"],
        "dram": weight_bytes * BASELINE["dram_byte"].pj + events.solve_baseline_pj["dram"],
    }
    return Energy(
        per_inference_pj=per_inference,
        programming_pj=cells * pulses_per_cell * pj.cell_program_pj,
        programming_s=max((g.rows for g in groups), default=0) * pulses_per_cell * write_pulse_s,
        macs=events.macs,
        baseline_pj=baseline,
    )
