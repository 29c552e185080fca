"""The closed-loop solver's cost ledger (``cimc.runtime.closed_loop``): the time and energy every step is charged,
and the digital baseline a solve is compared with.

Time: a solve is a DAC cycle, the settling and the outputs' conversions (``adc_columns`` outputs share an ADC, read
in turn); an MVM is a DAC cycle, the chip's ``read_cycles`` and the conversions; digital work is ops /
``digital_ops_per_cycle`` cycles; programming is rows x the device's write pulse. Energy: op-amps ``count x
power x time``, DAC and ADC conversions, the arrays' ``sum |G| v_read^2 x time`` (every cell taken at the full read
voltage, the worst case), digital ops x ``digital_op_pj``, programmed cells x ``cell_program_pj``. The baseline:
LU, ``n^3 / 3`` multiply-adds to factor (``2/3 n^3`` flops) and ``n^2`` a right-hand side (``2 n^2`` flops), or
Householder QR for least squares (``m n^2 - n^3/3`` plus ``2 m n - n^2/2`` per right-hand side), at float32
(``cimc.runtime.energy.FP32_BASELINE``), with the matrix read once from DRAM (4 bytes an entry). ``solve_cost``
prices one more right-hand side with the matrix already programmed, for ``cimc.runtime.performance``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cimc.runtime.energy import BASELINE, FP32_BASELINE

if TYPE_CHECKING:
    from cimc.ir.target.chip import Chip, OpAmp


@dataclass
class Ledger:
    """Counts, time and energy of a solver's steps so far, each charged at the chip's and its op-amps' constants."""

    chip: Chip
    opamp: OpAmp
    analog_solves: int = 0
    analog_mvms: int = 0
    digital_ops: int = 0
    programmings: int = 0
    time_s: float = 0.0
    energy_pj: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("opamps", "dacs", "adcs", "arrays", "digital", "programming"), 0.0)
    )
    min_eigenvalue: float = math.inf
    settling_time_s: float = 0.0
    leaves: int = 0

    def programming(self, cells: int, rows: int, write_pulse_s: float) -> None:
        """Charge writing a block of ``cells`` cells, one of its ``rows`` rows at a time."""
        self.programmings += 1
        self.energy_pj["programming"] += cells * self.chip.energy.cell_program_pj
        self.time_s += rows * write_pulse_s

    def digital(self, ops: int) -> None:
        """Charge ``ops`` digital operations."""
        self.digital_ops += ops
        self.energy_pj["digital"] += ops * self.chip.energy.digital_op_pj
        self.time_s += ops / self.chip.tile.digital_ops_per_cycle / self.chip.network.clock_hz

    def analog_steps(
        self, steps: int, vectors: int, *, opamps: int, inputs: int, outputs: int, array_us: float, active_s: float
    ) -> None:
        """Charge ``steps`` analog steps that read ``vectors`` results: each step a DAC cycle and ``active_s`` of
        ``opamps`` op-amps and of arrays of physical conductance ``array_us`` at ``v_read``, with ``inputs`` DAC
        conversions; each result ``outputs`` ADC conversions, ``adc_columns`` outputs in turn per ADC."""
        chip, energy = self.chip, self.energy_pj
        conversions = min(outputs, chip.tile.adc_columns) * chip.tile.adc_cycles
        self.time_s += steps * (1 / chip.network.clock_hz + active_s) + vectors * conversions / chip.network.clock_hz
        energy["opamps"] += steps * opamps * self.opamp.power_uw * active_s * 1e6  # uW x s = 1e6 pJ
        energy["arrays"] += steps * array_us * self.opamp.v_read**2 * active_s * 1e6  # uS x V^2 = uW
        energy["dacs"] += steps * inputs * chip.energy.dac_pj
        energy["adcs"] += vectors * outputs * chip.energy.adc_pj


def baseline_pj(m: int, n: int, k: int) -> dict[str, float]:
    """The digital solver's energy: LU (square, ``n^3 / 3`` multiply-adds to factor and ``n^2`` a right-hand side)
    or Householder QR (least squares) at float32 and the matrix read once from DRAM."""
    if m == n:
        macs = n**3 / 3 + n**2 * k
    else:
        macs = m * n**2 - n**3 / 3 + (2 * m * n - n**2 / 2) * k
    return fp32_pj(macs, m * n)


def fp32_pj(macs: float, entries: int) -> dict[str, float]:
    """``macs`` float32 multiply-adds and ``entries`` float32 numbers read from DRAM, in pJ by category."""
    return {
        "multiply": macs * FP32_BASELINE["multiply"].pj,
        "add": macs * FP32_BASELINE["add"].pj,
        "dram": 4 * entries * BASELINE["dram_byte"].pj,
    }


@dataclass(frozen=True)
class SolveCost:
    """One right-hand side's closed-loop solve with a matrix the chip already holds (its blocks programmed and, for
    block inversion, its Schur complements built, once, when the chip is loaded): time (s), energy by category as
    ``SolveStats.energy_pj`` (``programming``: blocks evicted and written again, on a chip that holds fewer than
    there are), analog steps, refinement iterations, and the digital baseline for the same right-hand side with the
    LU factors made once: forward and back substitution, ``n^2`` float32 multiply-adds, with the factors' ``n^2``
    entries read from DRAM."""

    time_s: float
    energy_pj: dict[str, float]
    baseline_pj: dict[str, float]
    analog_solves: int
    analog_mvms: int
    iterations: int
    converged: bool

    @property
    def energy_total_pj(self) -> float:
        return sum(self.energy_pj.values())

    @property
    def baseline_total_pj(self) -> float:
        return sum(self.baseline_pj.values())
