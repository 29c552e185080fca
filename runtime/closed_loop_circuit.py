"""The closed-loop solver's circuit model (``cimc.runtime.closed_loop``): a matrix quantized and programmed on a
differential pair of arrays, the op-amp feedback loop that settles to ``A^-1 b``, its stability and settling time,
and the open-loop crossbar reads of block elimination.

The circuit (one leaf, ``n <= array size``). ``A`` is programmed, quantized to ``matrix_bits`` signed bits with
``max|A|`` at level ``L`` (``top_level``: the full scale or a level a little below it that represents ``A`` more
faithfully, exactly when its entries are small integer multiples of a unit), in a differential pair of arrays (positive
and negative parts; the negative array is driven by the inverted outputs); a cell magnitude wider than the chip's
``cell_bits`` is split into binary-weighted cells in parallel on the same node, so the effective conductance is ``G =
sum_s 2^(s cell_bits) G_s`` (uS, with the device effects of ``cimc.runtime.analog.program_group``). ``G = k A`` with ``k
= delta L / max|A|`` (``L <= Q = 2^(matrix_bits-1) - 1`` levels, ``delta`` the level step). Row ``i``'s node (the
op-amp's inverting input, voltage ``u_i``) sums the currents of the row's cells from the op-amp outputs ``y`` and of the
input conductance ``g_in`` (``= delta Q``, a full-scale cell) from the DAC voltage ``v_in``:

    sum_j G_ij (y_j - u_i) + g_in (v_in_i - u_i) = 0   ->   G y + g_in v_in = D u,

``D = diag(row sums of the physical |G| over both arrays and all slices, g_min included, + g_in)``. An op-amp of
open-loop gain ``A0`` and input offset ``v_os`` gives ``y = A0 (v_os - u)``, so ``u = v_os - y / A0`` and

    (G + D / A0) y = -g_in v_in + D v_os,

which tends to ``y = -g_in G^-1 v_in`` as ``A0 -> inf``: ``x = A^-1 b = -y k s_b / (g_in v_read)`` for an input
``v_in = v_read b / s_b`` (``s_b = max|b|``, quantized to the chip's signed ``dac_bits``). Noise currents at the
nodes (the device's summation noise at full voltage and each cell's read noise at its output voltage,
``cimc.runtime.analog.read_sigmas``) are added per solve; the outputs clip at ``+-v_sat`` (an input that saturates
an output is halved and solved again, each retry counted; a matrix whose loop amplifies the op-amp offsets alone
beyond the swing, ``max |(G + D / A0)^-1 D v_os| >= v_sat``, is refused with ``SaturatedOutputError``, as no
input scaling can help); the ADC reads ``y`` over ``v_sat / 2^j``, the smallest range that holds the largest output
(a programmable gain before the ADC), at the chip's ``adc_bits``. The offsets' output is the same in every solve
with a leaf, so the control logic calibrates it out, as chips with untrimmed amplifiers do (a zero-input read
subtracted digitally, the digital form of auto-zeroing): when a leaf is set up, one analog solve with a zero input
reads it, and every solve's reading less it is the signal's (``SolveConfig.calibrate_offsets``; a reprogrammed leaf
keeps its conductances, and with them its calibration). Uncalibrated, an offset output near the swing leaves the
signal only the rest of it, and the offset's share of each reading grows with every halving of the input: the first
step of a 1-D Poisson system of 256 unknowns is then off by several times its norm, and refinement diverges. A
right-hand side that is all zero is known to be so on the digital side: its solution is 0, with no analog step. The
ideal circuit has no offsets and an unbounded swing: one analog step a right-hand side, never a retry, no
calibration.

Dynamics (Sun et al., "Time complexity of in-memory solution of linear systems", IEEE TED 2020): with single-pole
op-amps of unity-gain bandwidth ``gbw`` and large ``A0``, ``dy/dt = -2 pi gbw D^-1 (G y + g_in v_in)``, stable iff
every eigenvalue of ``M = D^-1 G`` has a positive real part; the slowest mode decays as ``exp(-2 pi gbw lambda_min
t)``, ``lambda_min = min Re eig(M)``, so the outputs are within half an ADC LSB after

    t_settle = ln(2^(adc_bits + 1)) / (2 pi gbw lambda_min).

An unstable loop (``lambda_min <= 0``) raises ``UnstableMatrixError`` unless a remedy is asked for: ``negate``
(every eigenvalue negative: solve ``-A x = -b``), ``shift`` (the loop solves ``A + s I``, refinement uses the true
``A`` in its residual; refused when refinement cannot converge, ``max |s / (lambda_i + s)| >= 1``) or ``normal``
(least squares, any full-column-rank ``m x n`` ``A``: the two-array circuit of Sun et al., Science Advances 2020,
whose loop matrix is ``Ahat^T Ahat``, symmetric positive definite, with ``A`` programmed twice, once read along
its rows and once along its columns; its loop nodes take ``A^T b``, and then ``A^T r``, from the digital side, so
that refinement converges to the true normal equations rather than to those of the programmed copy).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from cimc.ir.dialects.cim_solve import top_level
from cimc.ir.target.chip import PRESETS, Chip, ChipError, OpAmp, load_chip
from cimc.runtime.analog import AnalogConfig, level_step_us, program_group, read_sigmas
from cimc.runtime.closed_loop_cost import Ledger
from cimc.runtime.devices import Device, device, for_chip_device, require

#: What ``SolveConfig.remedy`` offers for a loop that is not stable.
REMEDIES = ("negate", "shift", "normal")
#: The most times an input is halved to bring a saturated output within the swing (a bound never reached in practice:
#: the offsets' share of every output is below the swing, or the matrix is refused).
_MAX_RETRIES = 60
#: The largest gain (2^j) ahead of the ADC.
_MAX_ADC_GAIN_LOG2 = 16


class SolveError(ValueError):
    """A system the closed-loop chip cannot solve (a singular matrix, shapes that do not match, a loop that cannot
    settle); the message is one line saying why and what to do."""


class UnstableMatrixError(SolveError):
    """The closed loop cannot settle on this matrix: the smallest real part of its loop matrix's eigenvalues is not
    positive. The message (one line) gives it and the remedies."""


class SaturatedOutputError(SolveError):
    """The loop amplifies the op-amps' input offsets alone beyond the output swing: every solve would saturate
    whatever its input, so the matrix (too ill-conditioned for the chip) is refused. The message is one line."""


@dataclass(frozen=True, kw_only=True)
class SolveConfig:
    """How ``solve`` models the chip; ``ideal`` turns every effect off (continuous conductances, infinite gain, no
    offsets or noise, no DAC, ADC or matrix quantization, no output saturation), leaving the float64 solution and the
    circuit's time and energy. ``calibrate_offsets``: each leaf's outputs for a zero input are read once when it is
    set up and subtracted from its solves' (the module docstring); off, the offsets' output stays in every solve."""

    ideal: bool = False
    device: str | Device | None = None
    matrix_bits: int = 8
    tol: float = 1e-6
    max_iterations: int = 100  # as cim.solve's default (cimc.ir.dialects.cim_solve)
    remedy: str | None = None
    seed: int = 0
    drift_time_s: float = 0.0
    calibrate_offsets: bool = True

    def __post_init__(self) -> None:
        checks = (
            ("matrix_bits", 2 <= self.matrix_bits <= 24, "an integer from 2 to 24"),
            ("tol", self.tol > 0, "a number > 0"),
            ("max_iterations", self.max_iterations >= 0, "an integer >= 0"),
            ("remedy", self.remedy is None or self.remedy in REMEDIES, "None or one of " + ", ".join(REMEDIES)),
            ("drift_time_s", self.drift_time_s >= 0, "a number of seconds >= 0"),
        )
        require("solve config", self, checks)


@dataclass
class Block:
    """A matrix block as programmed on a differential pair of arrays: its effective conductance ``g = k A`` (uS),
    each cell position's physical conductance summed over both arrays and all slices, ``g_min`` included (uS),
    ``k`` (uS per unit of A) and its cell count."""

    key: int
    g: np.ndarray
    physical: np.ndarray
    k: float
    cells: int


class Hardware:
    """The chip as the solver drives it: its constants, the programmed blocks it holds, its DACs, ADCs and read
    noise, the random draws, and the ledger every step is charged to."""

    def __init__(self, chip: Chip, opamp: OpAmp, config: SolveConfig, dev: Device) -> None:
        tile = chip.tile
        self.chip, self.opamp, self.config, self.device = chip, opamp, config, dev
        self.ideal = config.ideal
        self.rng = np.random.default_rng(config.seed)
        self.leaf = min(tile.array_rows, tile.array_cols)
        self.capacity = chip.arrays // 2
        self.delta = level_step_us(tile.cell_bits, dev)
        self.levels = (1 << (config.matrix_bits - 1)) - 1
        self.slices = -(-(config.matrix_bits - 1) // tile.cell_bits)
        self.slice_weights = np.array([2.0 ** (s * tile.cell_bits) for s in range(self.slices)])
        self.g_in = self.delta * self.levels
        self.dac_levels = max(1, (1 << (tile.dac_bits - 1)) - 1)
        self.adc_levels = max(1, (1 << (tile.adc_bits - 1)) - 1)
        cell_sigma, node_sigma = read_sigmas(dev, tile.cell_bits)
        self.cell_sigma_us = 0.0 if self.ideal else cell_sigma * self.delta
        self.node_sigma_ua = 0.0 if self.ideal else node_sigma * self.delta * opamp.v_read
        self.cell_weight = math.sqrt(2 * float(np.sum(self.slice_weights**2)))
        self.gain = math.inf if self.ideal else opamp.gain
        self.offsets = (
            np.zeros(tile.array_rows) if self.ideal else self.rng.normal(0.0, opamp.offset_mv * 1e-3, tile.array_rows)
        )
        self.analog = AnalogConfig(device=dev, drift_time_s=config.drift_time_s, seed=config.seed)
        self.resident: OrderedDict[int, None] = OrderedDict()
        self.ledger = Ledger(chip, opamp)
        self._keys = 0
        #: called with the count of leaf loops set up so far, as each is (a progress display)
        self.on_leaf: Callable[[int], None] | None = None

    def program(self, matrix: np.ndarray) -> Block:
        """Quantize ``matrix`` to ``matrix_bits``, ``max|A|`` at the level ``top_level`` picks (the full scale when
        ideal), split it into signs and slices, program it with the device effects (``program_group``) and return
        what the pair of arrays holds, held from now on."""
        rows, cols = matrix.shape
        scale = float(np.max(np.abs(matrix)))
        if not self.ideal:  # the value of the full-scale level Q, max|A| at level L = top_level
            scale *= self.levels / top_level(matrix, self.levels)
        magnitude = np.abs(matrix) / scale * self.levels
        positive = matrix > 0
        if self.ideal:  # continuous conductances: the whole magnitude in one cell
            conductance = np.zeros((2, self.slices, rows, cols))
            conductance[0, 0] = np.where(positive, magnitude, 0.0)
            conductance[1, 0] = np.where(positive, 0.0, magnitude)
        else:
            codes = np.rint(magnitude).astype(np.int64)
            bits = self.chip.tile.cell_bits
            planes = (codes[None] >> (np.arange(self.slices)[:, None, None] * bits)) & ((1 << bits) - 1)
            levels = np.stack([np.where(positive, planes, 0), np.where(positive, 0, planes)])
            conductance = program_group(levels, bits, self.analog, self.rng).conductance.astype(np.float64)
        weights = self.slice_weights[:, None, None]
        g = self.delta * np.sum(weights * (conductance[0] - conductance[1]), axis=0)
        physical = np.sum(weights * (self.device.g_min_us + self.delta * conductance), axis=(0, 1))
        self._keys += 1
        block = Block(self._keys, g, physical, self.delta * self.levels / scale, 2 * self.slices * g.size)
        self.use(block)
        return block

    def use(self, block: Block) -> None:
        """Make the arrays hold ``block``: one that is not held (the chip holds ``arrays // 2``, the least recently
        used leaves) is written again, one row at a time."""
        if block.key in self.resident:
            self.resident.move_to_end(block.key)
            return
        if len(self.resident) >= self.capacity:
            self.resident.popitem(last=False)
        self.resident[block.key] = None
        self.ledger.programming(block.cells, block.g.shape[0], self.device.write_pulse_s)

    def dac(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The row voltages of each column of ``vectors`` scaled to the DAC's full scale ``v_read`` (V), and the
        scales (``max|column|``)."""
        scale = np.max(np.abs(vectors), axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        unit = vectors / scale
        if not self.ideal:
            unit = np.rint(unit * self.dac_levels) / self.dac_levels
        return unit * self.opamp.v_read, scale

    def adc(self, y: np.ndarray) -> np.ndarray:
        """``y`` clipped at the swing and read by the ADC over ``v_sat / 2^j``, the least such range that holds each
        column's largest output (a programmable gain ahead of the ADC); the ideal circuit's ``y`` as it is."""
        if self.ideal:
            return y
        v_sat = self.opamp.v_sat
        y = np.clip(y, -v_sat, v_sat)
        peak = np.max(np.abs(y), axis=0)
        gain = np.floor(np.log2(v_sat / np.where(peak > 0, peak, v_sat)))
        full_scale = v_sat / 2.0 ** np.clip(gain, 0, _MAX_ADC_GAIN_LOG2)
        codes = np.clip(np.rint(y / full_scale * self.adc_levels), -self.adc_levels, self.adc_levels)
        return codes * (full_scale / self.adc_levels)

    def node_noise(self, voltages: np.ndarray, nodes: int) -> np.ndarray:
        """Read-noise currents (uA) at ``nodes`` summing nodes whose cells are driven at ``voltages[drives,
        vectors]``: the device's summation noise at full voltage and each cell's read noise at its drive voltage."""
        if self.cell_sigma_us == 0 and self.node_sigma_ua == 0:
            return np.zeros((nodes, voltages.shape[1]))
        cells = self.cell_sigma_us * self.cell_weight * np.linalg.norm(voltages, axis=0)
        return self.rng.standard_normal((nodes, voltages.shape[1])) * np.hypot(self.node_sigma_ua, cells)


def nonzero_columns(apply: Callable[[np.ndarray], np.ndarray], vectors: np.ndarray, rows: int) -> np.ndarray:
    """``apply`` to the columns of ``vectors`` that are not all zero, 0 for the others: the digital side knows a
    zero vector, whose product and solution are 0, and spends no analog step on it."""
    out = np.zeros((rows, vectors.shape[1]))
    live = np.flatnonzero(np.any(vectors != 0, axis=0))
    if live.size:
        out[:, live] = apply(vectors[:, live])
    return out


def unstable_error(loop_min: float, n: int, hint: str = "") -> UnstableMatrixError:
    return UnstableMatrixError(
        f"the closed loop of a {n}x{n} block cannot settle: the smallest real part of the eigenvalues of its loop "
        f"matrix D^-1 G is {loop_min:.4g} (it must be > 0){hint}; remedies: remedy='negate' (every eigenvalue "
        "negative: solve -A x = -b), remedy='shift' (the loop solves A + s I, refinement uses A), remedy='normal' "
        "(least squares on two arrays: A^T A is positive definite)"
    )


class Loop:
    """One closed-loop leaf: ``(K + D / A0) y = -g_in v_in + D v_os`` with its stability and settling time. Square:
    ``K = G``, ``D`` the row nodes' conductances + ``g_in``. Least squares (two copies of ``A``: the first read into
    ``m`` transimpedance stages of feedback ``g_in``, the second along its columns into the ``n`` loop nodes): ``K
    = G2^T G1 / g_in = (k^2 / g_in) A^T A``, ``D`` the column nodes' conductances of the second copy + ``g_in``; its
    input is ``A^T b`` (digital), so that refinement converges to the normal equations of the true ``A``."""

    blocks: list[Block]
    k_matrix: np.ndarray
    d: np.ndarray
    x_per_volt: float
    array_us: float
    eigenvalues: np.ndarray
    min_eigenvalue: float

    def __init__(self, hw: Hardware, matrix: np.ndarray, *, normal: bool = False) -> None:
        self.hw, self.sign = hw, 1.0
        m, n = matrix.shape
        if n > hw.leaf or m > hw.leaf:
            raise SolveError(
                f"a {m}x{n} least-squares system does not fit the two-array circuit of {hw.leaf}x{hw.leaf} arrays; "
                f"give at most {hw.leaf} rows and columns"
            )
        self.opamps, self.n = (m + n if normal else n), n
        self._build(matrix, normal)
        if self.min_eigenvalue <= 0 and not normal and hw.config.remedy == "negate":
            most = float(np.max(self.eigenvalues.real))
            if most >= 0:
                raise unstable_error(self.min_eigenvalue, n, f" and its largest is {most:.4g}, so negating cannot help")
            # -A on the same cells: the two arrays swap roles (the inverted outputs drive the positive one)
            self.sign = -1.0
            self.k_matrix = -self.k_matrix
            self.eigenvalues = -self.eigenvalues
            self.min_eigenvalue = -most
        if self.min_eigenvalue <= 0:
            raise unstable_error(self.min_eigenvalue, n)
        hw.ledger.leaves += 1
        if hw.on_leaf is not None:
            hw.on_leaf(hw.ledger.leaves)
        hw.ledger.min_eigenvalue = min(hw.ledger.min_eigenvalue, self.min_eigenvalue)
        adc_bits = hw.chip.tile.adc_bits
        self.settling_s = math.log(2.0 ** (adc_bits + 1)) / (2 * math.pi * hw.opamp.gbw_hz * self.min_eigenvalue)
        hw.ledger.settling_time_s = max(hw.ledger.settling_time_s, self.settling_s)
        self.system = self.k_matrix + (0.0 if math.isinf(hw.gain) else np.diag(self.d / hw.gain))
        self.offset_output = np.linalg.solve(self.system, self.d * hw.offsets[:n])
        offset_swing = float(np.max(np.abs(self.offset_output)))
        if offset_swing >= hw.opamp.v_sat:
            raise SaturatedOutputError(
                f"the op-amp offsets alone saturate the outputs: the loop of a {n}x{n} block amplifies the "
                f"{hw.opamp.offset_mv:g} mV (sigma) input offsets to {offset_swing:.3g} V, beyond the +-"
                f"{hw.opamp.v_sat:g} V swing, whatever the input; its matrix is too ill-conditioned for the chip "
                f"(smallest loop eigenvalue {self.min_eigenvalue:.3g}): improve its conditioning (more damping or "
                "regularization, row scaling) or use op-amps with smaller offsets"
            )
        self.calibration = np.zeros((n, 1))
        if hw.config.calibrate_offsets and hw.offsets.any():  # one read of the outputs for a zero input
            self.calibration = self._settle(np.zeros((n, 1)), np.zeros((n, 1)), 1)

    def _build(self, matrix: np.ndarray, normal: bool) -> None:
        hw = self.hw
        first = hw.program(matrix)
        if normal:
            second = hw.program(matrix)
            self.blocks = [first, second]
            self.k_matrix = second.g.T @ first.g / hw.g_in
            self.d = second.physical.sum(axis=0) + hw.g_in
            self.x_per_volt = -((first.k / hw.g_in) ** 2)
        else:
            self.blocks = [first]
            self.k_matrix = first.g
            self.d = first.physical.sum(axis=1) + hw.g_in
            self.x_per_volt = -first.k / hw.g_in
        self.array_us = sum(float(block.physical.sum()) for block in self.blocks)
        self.eigenvalues = np.linalg.eigvals(self.k_matrix / self.d[:, None])
        self.min_eigenvalue = float(np.min(self.eigenvalues.real))

    def apply(self, rhs: np.ndarray) -> np.ndarray:
        """``A^-1 rhs`` (least squares: ``(A^T A)^-1 A^T rhs``) for every column of ``rhs`` that is not all zero,
        a closed-loop solve each, plus one more for every halving of a saturating input."""
        return nonzero_columns(self._solve, rhs, self.n)

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        hw = self.hw
        v, scale = hw.dac(self.sign * rhs)
        signal = np.linalg.solve(self.system, -hw.g_in * v)
        offset = self.offset_output[:, None]
        retries = np.zeros(rhs.shape[1], dtype=np.int64)
        v_sat = math.inf if hw.ideal else hw.opamp.v_sat
        for column in np.flatnonzero(np.max(np.abs(signal + offset), axis=0) > v_sat):
            while retries[column] < _MAX_RETRIES and (
                np.max(np.abs(signal[:, column] / 2.0 ** retries[column] + offset[:, 0])) > v_sat
            ):
                retries[column] += 1
        attenuation = 2.0 ** -retries.astype(np.float64)
        y = self._settle(signal * attenuation, v * attenuation, int(rhs.shape[1] + retries.sum()))
        return (y - self.calibration) * (self.x_per_volt * scale / (hw.opamp.v_read * attenuation))

    def _settle(self, signal: np.ndarray, v: np.ndarray, steps: int) -> np.ndarray:
        """The ADC's reading (V) of the outputs that settle on the input voltages ``v`` (``signal``: their share
        of the outputs), the offsets' share and the read noise added, charged as ``steps`` analog solves."""
        hw = self.hw
        for block in self.blocks:
            hw.use(block)
        y = signal + self.offset_output[:, None]
        noise = hw.node_noise(np.vstack([v, y]), self.n)
        if noise.any():
            y += np.linalg.solve(self.system, -noise)
        hw.ledger.analog_solves += steps
        hw.ledger.analog_steps(
            steps,
            signal.shape[1],
            opamps=self.opamps,
            inputs=self.n,
            outputs=self.n,
            array_us=self.array_us,
            active_s=self.settling_s,
        )
        return hw.adc(y)


class Mvm:
    """``A @ u`` as open-loop crossbar reads: ``A`` cut into array-sized blocks (outputs <= ``array_cols``, inputs
    <= ``array_rows``), each programmed on a differential pair; the partial sums of a row of blocks add digitally.
    All-zero blocks are not programmed."""

    def __init__(self, hw: Hardware, matrix: np.ndarray) -> None:
        self.hw, self.shape = hw, matrix.shape
        tile = hw.chip.tile
        self.blocks = [
            (r, c, hw.program(matrix[r : r + tile.array_cols, c : c + tile.array_rows]))
            for r in range(0, matrix.shape[0], tile.array_cols)
            for c in range(0, matrix.shape[1], tile.array_rows)
            if np.any(matrix[r : r + tile.array_cols, c : c + tile.array_rows])
        ]

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """``A @ vectors``, each block read for the columns of its part of ``vectors`` that are not all zero."""
        hw = self.hw
        out = np.zeros((self.shape[0], vectors.shape[1]))
        for r, c, block in self.blocks:
            hw.use(block)
            rows, cols = block.g.shape
            out[r : r + rows] += nonzero_columns(partial(self._read, block), vectors[c : c + cols], rows)
        partial_sums = len(self.blocks) - len({r for r, _, _ in self.blocks})
        hw.ledger.digital(partial_sums * self.hw.chip.tile.array_cols * vectors.shape[1])
        return out

    def _read(self, block: Block, vectors: np.ndarray) -> np.ndarray:
        """One read of ``block`` per column of ``vectors``: DAC, Ohm and Kirchhoff, read noise, a transimpedance
        stage whose full-scale input never exceeds the swing, the ADC."""
        hw = self.hw
        rows, cols = block.g.shape
        v, scale = hw.dac(vectors)
        current = block.g @ v + hw.node_noise(v, rows)
        g_feedback = cols * hw.g_in * hw.opamp.v_read / hw.opamp.v_sat
        y = hw.adc(current / g_feedback)
        hw.ledger.analog_mvms += vectors.shape[1]
        read_s = hw.chip.tile.read_cycles / hw.chip.network.clock_hz
        hw.ledger.analog_steps(
            vectors.shape[1],
            vectors.shape[1],
            opamps=rows,
            inputs=cols,
            outputs=rows,
            array_us=float(block.physical.sum()),
            active_s=read_s,
        )
        return y * (g_feedback * scale / (block.k * hw.opamp.v_read))


def solver_device(chip: Chip, config: SolveConfig) -> Device:
    if isinstance(config.device, Device):
        return config.device
    return device(config.device) if config.device else for_chip_device(chip.tile.device)


def closed_loop_chip(chip: str | Chip) -> Chip:
    """The chip, which must have op-amps and a pair of arrays."""
    chip = load_chip(chip) if isinstance(chip, str) else chip
    if chip.opamp is None:
        with_opamps = [name for name in PRESETS if load_chip(name).opamp is not None]
        raise ChipError(
            f"chip '{chip.name}' has no [opamp] section, and a closed-loop solve needs its feedback op-amps: use "
            f"{' or '.join(repr(name) for name in with_opamps)}, or add [opamp] to the description"
        )
    if chip.arrays < 2:
        raise ChipError(f"chip '{chip.name}' has {chip.arrays} array; a matrix needs a differential pair of two")
    return chip
