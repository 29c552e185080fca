"""Energy of a compiled model: event counts from the per-tile instruction streams times the chip's energy per
event (``Chip.energy``, pJ), per inference and broken down, the one-time cost of programming the arrays, TOPS/W at
the model's utilization of its arrays and at full utilization, and the same model on two stated digital baselines,
so that the energy ratio is computed, not claimed.

Events per inference (one input sample), from the streams and each group's geometry (``GroupGeometry``):

- ``arrays``: array reads of one bit plane, ``vectors x planes x arrays / replication`` per ``mvm`` (each input
  vector is read by one copy of the group's arrays), each ``array_fixed_pj``, plus ``array_row_pj`` per row a read
  drives (the group's rows) and ``array_column_pj`` per column it converts (the ``adc`` instructions'
  conversions): a read costs what it uses of its array (``chip.EventEnergy.read_pj``);
- ``dacs``: DAC conversions, one per driven row of every array read, ``rows x arrays / replication x planes x
  vectors``, times ``dac_pj``;
- ``adcs``: the ``adc`` instructions' conversions, one per converted column of every read, times ``adc_pj``;
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

Utilization: the arrays' multiply-accumulates against those the same reads would do with every row and column of
every array read used (``full_macs``: ``vectors x array_rows x array_cols x column blocks`` per ``mvm``). TOPS/W
is given for the whole inference, for the reads alone (arrays, DACs and ADCs) at the model's utilization, and for
the same reads at full utilization (each a full read, ``read_pj(array_rows, array_cols)``): the last is what a
chip's paper quotes.

Programming, once when the chip is loaded: every cell of every group (``rows x columns x signs x slices x
replication``) takes ``pulses_per_cell`` write pulses (1 for a single write; more with closed-loop
program-and-verify), each ``cell_program_pj``; an array writes one row at a time, every array at once, so loading
takes the most rows of any group x pulses x ``write_pulse_s``.

The baselines (``BASELINE``, ``SRAM_READ``): every multiply-accumulate of the arrays on a digital unit (an 8-bit
multiply and a 32-bit add) plus every weight read once per inference, from on-chip SRAM (``sram``: the smallest of
Horowitz's SRAMs that holds all the weights) or from DRAM (``dram``); a ``solve``'s right-hand sides each add the
closed-loop model's digital baseline for one (``SolveCost.baseline_pj``: substitution with LU factors made once,
the factors' ``4 n^2`` bytes read from the same memory). They leave out the model's other digital work, which the
CIM side pays, so the ratios favour the baselines a little.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cimc.ir.dialects.cim import CODE_OPS
from cimc.ir.target.chip import Chip
from cimc.runtime.isa import (
    PORT,
    Accumulate,
    Adc,
    Dequantize,
    Digital,
    Instruction,
    Mvm,
    Recv,
    Send,
    ShiftAdd,
    Solve,
    Streams,
)
from cimc.runtime.timing import GroupGeometry, TimingError, digital_op_count, transfer_links

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
        "neural networks', NeurIPS 2015, Table 1, from Horowitz ISSCC 2014 (DRAM 1.3-2.6 nJ per 64 bits)",
    ),
}

#: On-chip SRAM reads by the SRAM's size, ``(bytes it holds, pJ per byte)``, smallest first: Horowitz ISSCC 2014's
#: 64-bit reads at 45 nm, 10 pJ from an 8 KB SRAM, 20 pJ from 32 KB, 100 pJ from 1 MB, each over 8 bytes. Weights
#: beyond 1 MB are priced as from 1 MB, which favours the baseline.
SRAM_READ = (
    (8 * 1024, Constant(10.0 / 8, "64-bit read of an 8 KB SRAM, 10 pJ; Horowitz, ISSCC 2014, 45 nm")),
    (32 * 1024, Constant(20.0 / 8, "64-bit read of a 32 KB SRAM, 20 pJ; Horowitz, ISSCC 2014, 45 nm")),
    (1024 * 1024, Constant(100.0 / 8, "64-bit read of a 1 MB SRAM, 100 pJ; Horowitz, ISSCC 2014, 45 nm")),
)

#: The float32 arithmetic of a digital linear solver (``cimc.runtime.closed_loop_cost``'s baseline), in pJ at 45 nm; its
#: matrix comes from DRAM at ``BASELINE["dram_byte"]``.
FP32_BASELINE = {
    "multiply": Constant(3.7, "32-bit float multiply; Horowitz, 'Computing's energy problem', ISSCC 2014, 45 nm"),
    "add": Constant(0.9, "32-bit float add; Horowitz, ISSCC 2014, 45 nm"),
}

#: The categories of one inference's energy that are the arrays' reads.
READ_CATEGORIES = ("arrays", "dacs", "adcs")


def _smallest_sram(stored_bytes: int) -> tuple[int, Constant]:
    """The smallest SRAM of ``SRAM_READ`` that holds ``stored_bytes`` (the largest one beyond them all)."""
    return next((entry for entry in SRAM_READ if stored_bytes <= entry[0]), SRAM_READ[-1])


def sram_read(stored_bytes: int) -> Constant:
    """The read energy per byte of the smallest SRAM in ``SRAM_READ`` that holds ``stored_bytes`` (the largest one
    beyond them all)."""
    return _smallest_sram(stored_bytes)[1]


@dataclass(frozen=True)
class Baseline:
    """One digital baseline for one inference: the energy by category (``multiply``, ``add``, ``weights``: the
    weights' reads from ``memory``, ``byte_pj`` a byte)."""

    memory: str
    byte_pj: float
    pj: dict[str, float]

    @property
    def total_pj(self) -> float:
        return sum(self.pj.values())


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy of one inference in pJ by category (``arrays``, ``dacs``, ``adcs``, ``buffers``, ``network``,
    ``digital``, and ``closed_loop`` in models with a ``cim.solve``), its total, the one-time programming energy
    and time, the multiply-accumulates the arrays do and those the same reads would do at full utilization with
    their energy (``full_macs``, ``full_reads_pj``), and the digital baselines (``sram``, ``dram``)."""

    per_inference_pj: dict[str, float]
    programming_pj: float
    programming_s: float
    macs: int
    full_macs: int
    full_reads_pj: float
    baselines: dict[str, Baseline]

    @property
    def total_pj(self) -> float:
        return sum(self.per_inference_pj.values())

    @property
    def ops(self) -> int:
        """Operations per inference: a multiply and an add per MAC."""
        return 2 * self.macs

    @property
    def tops_per_w(self) -> float:
        """Tera-operations per second per watt of the whole inference, which is operations per picojoule."""
        return self.ops / self.total_pj if self.total_pj else 0.0

    @property
    def reads_pj(self) -> float:
        """The array reads' energy: arrays, DACs and ADCs."""
        return sum(self.per_inference_pj.get(category, 0.0) for category in READ_CATEGORIES)

    @property
    def utilization(self) -> float:
        """The share of the read arrays' rows x columns the model's multiply-accumulates use."""
        return self.macs / self.full_macs if self.full_macs else 0.0

    @property
    def reads_tops_per_w(self) -> float:
        """TOPS/W of the array reads alone at the model's utilization."""
        return self.ops / self.reads_pj if self.reads_pj else 0.0

    @property
    def full_tops_per_w(self) -> float:
        """TOPS/W of the same reads with every row and column of every read array used."""
        return 2 * self.full_macs / self.full_reads_pj if self.full_reads_pj else 0.0

    @property
    def ratios(self) -> dict[str, float]:
        """Per baseline, how many times less energy than it one inference takes on the chip (below 1: more)."""
        return {name: b.total_pj / self.total_pj if self.total_pj else 0.0 for name, b in self.baselines.items()}


@dataclass
class _Events:
    """Event counts of one inference."""

    array_reads: int = 0
    full_reads_pj: float = 0.0
    dac_conversions: int = 0
    adc_conversions: int = 0
    buffer_bytes: int = 0
    bit_hops: int = 0
    digital_ops: int = 0
    macs: int = 0
    full_macs: int = 0
    closed_loop_pj: float = 0.0
    solve_baseline_pj: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("multiply", "add", "dram"), 0.0))
    solve_factor_bytes: int = 0
    solve_stored_bytes: int = 0

    def add(self, tile: tuple[int, int], i: Instruction, chip: Chip, groups: list[GroupGeometry], name: str) -> None:
        """Count the events of instruction ``i`` on ``tile``; ``name`` is a ``Digital`` instruction's op."""
        on_tile = tile != PORT
        self.digital_ops += digital_op_count(i)
        if isinstance(i, Mvm):
            if i.group >= len(groups):
                raise TimingError(f"'{i}' reads group {i.group}, but the model has {len(groups)} groups")
            group = groups[i.group]
            reads = round(i.vectors * i.planes * group.arrays_per_copy * group.passes)
            self.array_reads += reads
            self.full_reads_pj += reads * chip.energy.read_pj(group.array_rows, group.array_cols)
            self.dac_conversions += reads * group.rows
            self.buffer_bytes += -(-i.vectors * group.rows * group.input_bits // 8)
            self.macs += i.vectors * group.rows * group.columns
            column_blocks = group.arrays_per_copy // (group.signs * group.slices)
            self.full_macs += i.vectors * group.array_rows * group.array_cols * column_blocks
        elif isinstance(i, Adc):
            passes = groups[i.group].passes if i.group < len(groups) else 1.0
            self.adc_conversions += round(i.conversions * passes)
        elif isinstance(i, Solve):
            cost = groups[i.group].solve if i.group < len(groups) else None
            if cost is None:
                raise TimingError(f"'{i}' solves on group {i.group}, which is no closed-loop solve's first group")
            self.closed_loop_pj += i.rhs * cost.energy_total_pj
            for category, pj in cost.baseline_pj.items():
                self.solve_baseline_pj[category] += i.rhs * pj
            # the LU factors' n^2 f32 entries, per right-hand side
            self.solve_factor_bytes += i.rhs * WORD_BYTES * i.unknowns**2
            self.solve_stored_bytes += WORD_BYTES * i.unknowns**2
        elif isinstance(i, (ShiftAdd, Accumulate, Dequantize)):
            self.buffer_bytes += WORD_BYTES * i.values
        elif isinstance(i, Digital) and on_tile:
            self.buffer_bytes += i.elements * (1 if name in CODE_OPS else WORD_BYTES)
        elif isinstance(i, (Send, Recv)):
            self.buffer_bytes += i.bytes if on_tile else 0
            if isinstance(i, Send):
                _, hops = transfer_links(chip, tile, i.peer)
                self.bit_hops += 8 * i.bytes * hops

    def baselines(self, weight_bytes: int) -> dict[str, Baseline]:
        """The SRAM and the DRAM baseline of these events, with the arrays' ``weight_bytes`` read once."""
        arithmetic = {
            "multiply": self.macs * BASELINE["multiply"].pj + self.solve_baseline_pj["multiply"],
            "add": self.macs * BASELINE["add"].pj + self.solve_baseline_pj["add"],
        }
        stored = weight_bytes + self.solve_stored_bytes
        sram = sram_read(stored).pj
        dram = BASELINE["dram_byte"].pj
        return {
            "sram": Baseline(
                f"on-chip SRAM of {_size(stored)}",
                sram,
                {**arithmetic, "weights": (weight_bytes + self.solve_factor_bytes) * sram},
            ),
            "dram": Baseline(
                "DRAM", dram, {**arithmetic, "weights": weight_bytes * dram + self.solve_baseline_pj["dram"]}
            ),
        }


def _size(stored_bytes: int) -> str:
    """The SRAM of ``SRAM_READ`` that holds ``stored_bytes``, as ``8 KB``, ``32 KB`` or ``1 MB``."""
    size = _smallest_sram(stored_bytes)[0]
    return f"{size // 1024} KB" if size < 1024 * 1024 else f"{size // (1024 * 1024)} MB"


def estimate_energy(
    streams: Streams,
    chip: Chip,
    groups: list[GroupGeometry],
    *,
    pulses_per_cell: int = 1,
    write_pulse_s: float = 1e-7,
) -> EnergyBreakdown:
    """The energy of one inference of ``streams`` on ``chip`` and of loading its arrays (see the module
    docstring); ``pulses_per_cell`` write pulses of ``write_pulse_s`` seconds program one cell."""
    if pulses_per_cell < 1 or write_pulse_s < 0:
        raise ValueError(f"pulses_per_cell must be >= 1 and write_pulse_s >= 0, got {pulses_per_cell}, {write_pulse_s}")
    events = _Events()
    for tile, stream in streams.tiles.items():
        for instruction in stream:
            name = streams.strings[instruction.name] if isinstance(instruction, Digital) else ""
            events.add(tile, instruction, chip, groups, name)
    pj = chip.energy
    per_inference = {
        "arrays": events.array_reads * pj.array_fixed_pj
        + events.dac_conversions * pj.array_row_pj
        + events.adc_conversions * pj.array_column_pj,
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
    return EnergyBreakdown(
        per_inference_pj=per_inference,
        programming_pj=cells * pulses_per_cell * pj.cell_program_pj,
        programming_s=max((g.rows for g in groups), default=0) * pulses_per_cell * write_pulse_s,
        macs=events.macs,
        full_macs=events.full_macs,
        full_reads_pj=events.full_reads_pj,
        baselines=events.baselines(weight_bytes),
    )
