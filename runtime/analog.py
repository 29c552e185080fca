"""Static per-cell analog effects of programmed crossbar arrays: what an array holds when it is read, as against the
integer levels the compiler asked for.

Units: conductances in microsiemens (uS). A cell of ``cell_bits`` bits has levels ``0 .. L-1`` (``L =
2^cell_bits``) at ``g(level) = g_min + level * delta``, ``delta = (g_max - g_min) / (L - 1)``. An array is handed to
the simulator in *level units*, ``(g - g_min) / delta``: the periphery cancels the nominal ``g_min`` of every row
with a reference column, so an ideal array holds exactly its integer levels and a read is ``planes @ G``.

``program_group`` applies, once per array group, what stays fixed between reads: stuck cells, programming error
(with closed-loop program-and-verify), drift to the inference time with its spread and (PCM) accumulated 1/f noise,
global drift compensation, first-order IR drop and each ADC's static offset. Per-read noise, DAC and ADC are the
simulator's; ``read_sigmas`` gives it the read-noise sigmas in level units. Every draw comes from the
``numpy.random.Generator`` the caller passes, in a fixed order, so one seed gives one result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from cimc.runtime.devices import Device, require

# aihwkit PCMLikeNoiseModel (src/aihwkit/inference/noise/pcm.py), fitted on PCM measurements (Nandakumar et al.,
# ICECS 2019): drift exponent mean and spread as functions of ln(g / g_max), each clipped to a range.
_PCM_NU_MEAN = (-0.0155, 0.0244, 0.049, 0.1)  # slope, intercept, low, high
_PCM_NU_STD = (-0.0125, -0.0059, 0.008, 0.045)
_PCM_G_FLOOR = 1e-7  # aihwkit's _ZERO_CLIP: the smallest g / g_max the logarithm sees
# aihwkit PCMLikeNoiseModel: accumulated 1/f noise Q_s = min(0.0088 / max((g / g_max)^0.65, 1e-3), 0.2).
_PCM_1F_SCALE, _PCM_1F_EXPONENT, _PCM_1F_FLOOR, _PCM_1F_CAP = 0.0088, 0.65, 1e-3, 0.2


@dataclass(frozen=True, kw_only=True)
class AnalogConfig:
    """Which analog effects are on, and their settings; ``ideal(device)`` turns all off.

    ``programming``: programming error, after ``verify_iterations`` extra program-and-verify iterations.
    ``read_noise``: noise on every read (the simulator's) and, for PCM, the 1/f noise accumulated up to the read.
    ``drift_time_s``: seconds after the reference read ``t0`` at which the arrays are read (0: at ``t0``, no drift).
    ``drift_compensation``: one gain per array group restores the group's summed conductance at ``t0`` (aihwkit's
    ``GlobalDriftCompensation`` idea). ``stuck_on_rate``/``stuck_off_rate``: fractions of cells stuck at ``g_max`` /
    ``g_min`` (None: the device's). ``adc_offset_lsb``: sigma of each ADC column's static offset, in that ADC's LSB.
    ``ir_drop``: first-order IR drop along rows and columns. ``seed``: the run's seed, from which the simulator makes
    the generators this module's functions take.
    """

    device: Device
    programming: bool = True
    verify_iterations: int = 0
    read_noise: bool = True
    drift_time_s: float = 0.0
    drift_compensation: bool = True
    stuck_on_rate: float | None = None
    stuck_off_rate: float | None = None
    adc_offset_lsb: float = 0.0
    ir_drop: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        on, off = self.stuck_rates
        checks = (
            ("verify_iterations", self.verify_iterations >= 0, "an integer >= 0"),
            ("drift_time_s", self.drift_time_s >= 0, "a number of seconds >= 0"),
            ("stuck_on_rate", 0 <= on <= 1, "a fraction in [0, 1]"),
            ("stuck_off_rate", 0 <= off <= 1 - on, "a fraction, on + off <= 1"),
            ("adc_offset_lsb", self.adc_offset_lsb >= 0, "a number >= 0"),
        )
        require("analog config", self, checks)

    @classmethod
    def ideal(cls, device: Device) -> AnalogConfig:
        """Every effect off: no stuck cells, no programming error, no noise, no drift, no offsets, no IR drop."""
        return cls(
            device=device,
            programming=False,
            read_noise=False,
            drift_compensation=False,
            stuck_on_rate=0.0,
            stuck_off_rate=0.0,
            ir_drop=False,
        )

    @property
    def stuck_rates(self) -> tuple[float, float]:
        """(stuck on, stuck off) fractions: this config's, or the device's where None."""
        on = self.device.stuck_on_rate if self.stuck_on_rate is None else self.stuck_on_rate
        off = self.device.stuck_off_rate if self.stuck_off_rate is None else self.stuck_off_rate
        return on, off

    @property
    def is_ideal(self) -> bool:
        """Whether every effect is off, so arrays hold their exact levels (drift compensation alone is then a gain of
        exactly 1 and changes nothing)."""
        return (
            not self.programming
            and not self.read_noise
            and self.drift_time_s == 0
            and self.stuck_rates == (0.0, 0.0)
            and self.adc_offset_lsb == 0
            and not self.ir_drop
        )


def level_step_us(cell_bits: int, device: Device) -> float:
    """``delta``, the conductance between adjacent levels of a ``cell_bits``-bit cell (uS); a ValueError when the
    device has fewer than ``2^cell_bits`` levels."""
    levels = 2**cell_bits
    if cell_bits < 1 or levels > device.max_levels:
        most = int(math.log2(device.max_levels))
        raise ValueError(
            f"device '{device.name}' has {device.max_levels} conductance levels: {cell_bits}-bit cells need {levels}; "
            f"use cells of at most {most} bit{'s' if most != 1 else ''} or another device"
        )
    return (device.g_max_us - device.g_min_us) / (levels - 1)


def cell_conductance(levels: np.ndarray, cell_bits: int, device: Device) -> np.ndarray:
    """The target conductance of each cell, ``g_min + level * delta`` (uS, float64)."""
    return device.g_min_us + np.asarray(levels, dtype=np.float64) * level_step_us(cell_bits, device)


def programming_sigma_us(g: np.ndarray, device: Device, iterations: int) -> np.ndarray:
    """The programming-error sigma at target conductance ``g`` (uS, in ``g``'s float type): the device's polynomial
    in ``g / g_max`` (aihwkit's ``prog_coeff``), floored at 0, times ``verify_factor`` per extra program-and-verify
    iteration."""
    if iterations < 0:
        raise ValueError(f"verify iterations must be >= 0, got {iterations}")
    x = _floating(g) / device.g_max_us
    sigma = np.full_like(x, device.prog_noise_us[-1])
    for coefficient in reversed(device.prog_noise_us[:-1]):  # Horner
        sigma *= x
        sigma += coefficient
    np.maximum(sigma, 0.0, out=sigma)
    sigma *= device.verify_factor**iterations
    return sigma


def stuck_cells(shape: tuple[int, ...], on_rate: float, off_rate: float, rng: np.random.Generator) -> np.ndarray:
    """Which cells are stuck (int8): 0 fine, 1 stuck on (``g_max``), -1 stuck off (``g_min``). One uniform draw per
    cell decides both, so a cell is never stuck both ways: on below ``on_rate``, off in the next ``off_rate``."""
    u = rng.random(shape)
    return (u < on_rate).astype(np.int8) - ((u >= on_rate) & (u < on_rate + off_rate)).astype(np.int8)


def program(g_target: np.ndarray, device: Device, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """Programmed conductances: ``g_target + sigma(g_target) * z``, z standard normal, floored at 0 (aihwkit)."""
    g = programming_sigma_us(g_target, device, iterations)
    g *= _normal(rng, g)
    g += g_target
    return np.maximum(g, 0.0, out=g)


def drift_exponents(g_target: np.ndarray, device: Device, rng: np.random.Generator) -> np.ndarray:
    """Each cell's drift exponent ``nu``: 0 for drift ``"none"`` (no draw); ~ N(``drift_nu_mean``,
    ``drift_nu_std``) for ``"constant"``; for ``"pcm"`` aihwkit's ``|mu + sigma z|`` with ``mu = clip(-0.0155
    ln(g/g_max) + 0.0244, 0.049, 0.1)`` and ``sigma = clip(-0.0125 ln(g/g_max) - 0.0059, 0.008, 0.045)`` at the
    target conductance."""
    g = _floating(g_target)
    if device.drift == "none":
        return np.zeros_like(g)
    z = _normal(rng, g)
    if device.drift == "constant":
        return device.drift_nu_mean + device.drift_nu_std * z
    log_g = np.log(np.maximum(np.abs(g) / device.g_max_us, _PCM_G_FLOOR))
    std = np.clip(_PCM_NU_STD[0] * log_g + _PCM_NU_STD[1], _PCM_NU_STD[2], _PCM_NU_STD[3])
    nu = np.clip(_PCM_NU_MEAN[0] * log_g + _PCM_NU_MEAN[1], _PCM_NU_MEAN[2], _PCM_NU_MEAN[3], out=log_g)
    nu += std * z
    return np.abs(nu, out=nu)


def drift(g_prog: np.ndarray, nu: np.ndarray, t_s: float, device: Device) -> np.ndarray:
    """Conductances ``t_s`` seconds after the reference read at ``t0``: ``G(t0) ((t_s + t0) / t0)^-nu`` (aihwkit's
    ``t_inference`` counts from ``t0``); ``t_s = 0`` leaves them unchanged."""
    if t_s < 0:
        raise ValueError(f"drift time must be >= 0 seconds, got {t_s}")
    if t_s == 0:
        return np.array(g_prog)
    factor = nu * -math.log((t_s + device.drift_t0_s) / device.drift_t0_s)
    np.exp(factor, out=factor)
    factor *= g_prog
    return factor


def flicker_noise(
    g_drifted: np.ndarray, g_prog: np.ndarray, t_s: float, device: Device, rng: np.random.Generator
) -> np.ndarray:
    """PCM: the 1/f noise accumulated from programming to the read at ``t = t_s + t0`` (aihwkit):
    ``g + |g| Q_s sqrt(ln((t + t_read) / (2 t_read))) z``, ``Q_s = min(0.0088 / max((g_prog/g_max)^0.65, 1e-3),
    0.2)``, floored at 0. Other devices: unchanged (no draw)."""
    if device.drift != "pcm":
        return g_drifted
    t = t_s + device.drift_t0_s
    spread = math.sqrt(math.log((t + device.t_read_s) / (2 * device.t_read_s)))
    q_s = np.power(np.abs(g_prog) / device.g_max_us, _PCM_1F_EXPONENT)
    np.maximum(q_s, _PCM_1F_FLOOR, out=q_s)
    np.divide(_PCM_1F_SCALE * spread, q_s, out=q_s)
    np.minimum(q_s, _PCM_1F_CAP * spread, out=q_s)
    q_s *= np.abs(g_drifted)
    q_s *= _normal(rng, q_s)
    q_s += g_drifted
    return np.maximum(q_s, 0.0, out=q_s)


def _floating(x: np.ndarray) -> np.ndarray:
    """``x`` as a float32 or float64 array (float32 stays float32: the group's arrays are float32 for speed)."""
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def _normal(rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
    """Standard normal draws of ``like``'s shape and float type."""
    return rng.standard_normal(like.shape, dtype=like.dtype)


def ir_drop_attenuation(g: np.ndarray, wire_ohm: float, array_cols: int | None = None) -> np.ndarray:
    """The first-order IR-drop factor of each cell of arrays ``g[..., rows, cols]`` (uS), same shape and float type;
    every ``array_cols`` columns are one physical array with wires of their own (None: all ``cols``).

    Rows are driven from column 0's end; each column's current is sensed past row ``rows - 1``. With every row
    driven at unit voltage (the worst case) each cell passes ``I0 = G``. Row wire segment ``m`` (before cell ``m``)
    carries ``sum_{k>=m} I0[i, k]``, so the row voltage at cell ``(i, j)`` falls by ``r sum_{m<=j} sum_{k>=m}
    I0[i, k]``; column segment below cell ``s`` carries ``sum_{k<=s} I0[k, j]``, so the column voltage at ``(i, j)``
    rises by ``r sum_{s>=i} sum_{k<=s} I0[k, j]``. The cell sees ``1 - drop - rise`` of the voltage: the factor,
    clipped to [0, 1]. ``r`` = ``wire_ohm``, ``G`` in siemens. First order: currents are those of the ideal array,
    so the factor is accurate while the drops are small (a few percent) and overstates larger ones.
    """
    g = _floating(g)
    rows, cols = g.shape[-2:]
    stack = np.ascontiguousarray(g.reshape(-1, rows, cols))
    factor = np.empty_like(stack)
    _ir_drop_kernel(stack, array_cols or cols, wire_ohm * 1e-6, factor)  # uS -> S
    return factor.reshape(g.shape)


@nb.njit(cache=True)
def _ir_drop_kernel(g: np.ndarray, array_cols: int, ohm_per_us: float, out: np.ndarray) -> None:
    """``ir_drop_attenuation`` of ``g[array, rows, cols]`` into ``out``, in two sweeps down the rows (float64
    sums).

    Row ``i``'s drop at ``j`` accumulates the suffix sums ``R[m] = sum_{k>=m} I0[i, k]`` over its array's columns
    (``R`` at the array's first column is the row's total, and ``R[m+1] = R[m] - I0[i, m]``). Column ``j``'s rise
    at row ``i`` is the suffix sum of the prefix sums ``C[s] = sum_{k<=s} I0[k, j]``: the first sweep sums all
    ``C``, the second takes each ``C[i]`` off after row ``i``.
    """
    arrays, rows, cols = g.shape
    prefix = np.empty(cols)
    rise = np.empty(cols)
    for a in range(arrays):
        prefix[:] = 0.0
        rise[:] = 0.0
        for i in range(rows):
            for j in range(cols):
                prefix[j] += g[a, i, j]
                rise[j] += prefix[j]
        prefix[:] = 0.0
        for i in range(rows):
            for start in range(0, cols, array_cols):
                stop = min(start + array_cols, cols)
                suffix = 0.0
                for j in range(start, stop):
                    suffix += g[a, i, j]
                drop = 0.0
                for j in range(start, stop):
                    drop += suffix
                    suffix -= g[a, i, j]
                    factor = 1.0 - ohm_per_us * (drop + rise[j])
                    out[a, i, j] = min(max(factor, 0.0), 1.0)
            for j in range(cols):
                prefix[j] += g[a, i, j]
                rise[j] -= prefix[j]


def compensation_gain(g_reference: np.ndarray, g_now: np.ndarray, g_min: float) -> float:
    """Global drift compensation: ``sum(g_reference - g_min) / sum(g_now - g_min)`` over the group, the gain that
    restores the group's summed conductance above ``g_min``; 1.0 when either sum is not positive (nothing to
    measure)."""
    reference = float(np.sum(g_reference, dtype=np.float64)) - g_min * np.size(g_reference)
    now = float(np.sum(g_now, dtype=np.float64)) - g_min * np.size(g_now)
    return reference / now if reference > 0 and now > 0 else 1.0


def read_sigmas(device: Device, cell_bits: int, dac_bits: int = 1) -> tuple[float, float]:
    """Read-noise sigmas in the simulator's current unit, one level read at one DAC step (``delta`` at
    ``1 / (2^dac_bits - 1)`` of the full read voltage): (per active cell and per DAC step of its input, per column
    read). A cell's read noise scales with the voltage on its row, so the caller multiplies the first by the
    input's DAC code; the summation noise is a current at full voltage, ``2^dac_bits - 1`` units per uS/delta."""
    delta = level_step_us(cell_bits, device)
    return device.read_noise_us / delta, device.summation_noise_us / delta * ((1 << dac_bits) - 1)


@dataclass(frozen=True)
class ProgrammedGroup:
    """An array group as it is read: ``conductance[sign, slice, row, col]`` in level units (float32) with every
    static effect applied, each column's ADC static offset in LSB (``adc_offsets[sign, slice, col]``, float32),
    the stuck cell counts, the drift-compensation gain applied (1.0 when off) and the smallest IR-drop factor of
    any cell (1.0 when off; the first-order model holds while it stays above about 0.9)."""

    conductance: np.ndarray
    adc_offsets: np.ndarray
    stuck_on: int
    stuck_off: int
    gain: float
    min_ir_factor: float = 1.0


def program_group(
    levels: np.ndarray,
    cell_bits: int,
    config: AnalogConfig,
    rng: np.random.Generator,
    *,
    array_cols: int | None = None,
    adc_columns: int = 1,
) -> ProgrammedGroup:
    """Program the levels ``[signs, slices, rows, cols]`` of one array group and return what its arrays hold at
    ``config.drift_time_s``.

    In order, drawing from ``rng`` in this order (only for effects that are on): target conductances from the
    levels; stuck cells (stuck on -> ``g_max``, off -> ``g_min``; they take no programming error); programming
    error after ``verify_iterations``; drift exponents from the target conductance and drift to ``t``; (PCM, with
    ``read_noise``) accumulated 1/f noise; the drift-compensation gain against the programmed conductances at
    ``t0``; IR drop, a factor ``a`` per cell from the drifted conductances of each physical array (every
    ``array_cols`` columns; None: the whole width is one array); each ADC's offset, shared by the ``adc_columns``
    columns of an array that one ADC reads (interleaved: column ``c`` on ADC ``c mod (array_cols / adc_columns)``,
    as ``cimc.runtime.timing`` counts conversions). The level units are

        conductance = gain * (g * a - g_min) / delta

    computed as ``gain * (target_level + (g * a - g_target) / delta)`` (the same number with less rounding), so with
    every effect off it equals ``levels`` exactly.
    """
    if np.ndim(levels) != 4:
        raise ValueError(f"levels must be [signs, slices, rows, cols], got shape {np.shape(levels)}")
    device = config.device
    delta = level_step_us(cell_bits, device)
    g_min = device.g_min_us
    # float32 throughout (half float64's memory traffic); the ideal path stays exact: levels are < 2^24
    target_levels = np.asarray(levels, dtype=np.float32)
    on_rate, off_rate = config.stuck_rates
    stuck_on = stuck_off = 0
    stuck = None
    if on_rate > 0 or off_rate > 0:
        stuck = stuck_cells(target_levels.shape, on_rate, off_rate, rng)
        stuck_on, stuck_off = int(np.count_nonzero(stuck == 1)), int(np.count_nonzero(stuck == -1))
        target_levels = np.where(stuck == 0, target_levels, np.where(stuck > 0, np.float32(2**cell_bits - 1), 0))
    g_target = target_levels * np.float32(delta)
    g_target += np.float32(g_min)

    g = g_target
    if config.programming:
        g = program(g_target, device, config.verify_iterations, rng)
        if stuck is not None:
            g = np.where(stuck == 0, g, g_target)
    g_programmed = g
    if config.drift_time_s > 0 and device.drift != "none":
        g = drift(g, drift_exponents(g_target, device, rng), config.drift_time_s, device)
    if config.read_noise:
        g = flicker_noise(g, g_programmed, config.drift_time_s, device, rng)
    gain = compensation_gain(g_programmed, g, g_min) if config.drift_compensation else 1.0

    min_ir_factor = 1.0
    if config.ir_drop and device.wire_ohm > 0:
        factor = ir_drop_attenuation(g, device.wire_ohm, array_cols)
        min_ir_factor = float(factor.min(initial=1.0))
        g = g * factor

    conductance = g - g_target
    conductance *= np.float32(1 / delta)
    conductance += target_levels
    if gain != 1.0:
        conductance *= np.float32(gain)
    signs, slices, _, cols = target_levels.shape
    offsets = np.zeros((signs, slices, cols), dtype=np.float32)
    if config.adc_offset_lsb > 0:
        width = array_cols or cols
        per_array = -(-width // adc_columns)
        column = np.arange(cols)
        adc = column // width * per_array + column % width % per_array  # interleaved, as cimc.runtime.timing reads
        draws = rng.normal(0.0, config.adc_offset_lsb, (signs, slices, int(adc.max()) + 1))
        offsets = draws[..., adc].astype(np.float32)
    return ProgrammedGroup(
        conductance=conductance,
        adc_offsets=offsets,
        stuck_on=stuck_on,
        stuck_off=stuck_off,
        gain=gain,
        min_ir_factor=min_ir_factor,
    )
