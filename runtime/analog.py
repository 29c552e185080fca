"""Static per-cell analog effects of programmed crossbar arrays: what an array holds when it is read, as against the
integer levels the compiler asked for.

Units: conductances in microsiemens (uS). A cell of ``cell_bits`` bits has levels ``0 .. L-1`` (``L =
2^cell_bits``) at ``g(level) = g_min + level * delta``, ``delta = (g_max - g_min) / T``, ``T`` the level programmed at
``g_max``: ``L - 1``, or for the simulator's groups their largest level (``group_top_level``). An array is handed to
the simulator in *level units*, ``(g - g_min) / delta``: the periphery cancels the nominal ``g_min`` of every row
with a reference column, so an ideal array holds exactly its integer levels and a read is ``planes @ G``.

``program_group`` applies, once per array group, what stays fixed between reads: stuck cells, programming error
(with closed-loop program-and-verify), drift to the inference time with its spread and (PCM) accumulated 1/f noise,
first-order IR drop, each ADC's static offset and global drift compensation from two noisy read-outs. Per-read
noise, DAC and ADC are the simulator's; ``read_sigmas`` gives it the read-noise sigmas in level units. Every draw
comes from the ``numpy.random.Generator`` the caller passes, in a fixed order, so one seed gives one result.

The PCM formulas are aihwkit 1.2's ``PCMLikeNoiseModel`` (src/aihwkit/inference/noise/pcm.py), term by term:
programming ``g_target + sigma(g_target) z`` clamped at 0 (lines 108-116), drift exponents from the target
conductance (``generate_drift_coefficients``, lines 123-130, called on ``g_target`` by base.py line 95), drift
``g_prog (t / t0)^-nu`` with ``t = t_inference + t0`` (lines 138-142), 1/f noise ``|g_drift| Q_s(g_prog) sqrt(ln((t +
t_read) / (2 t_read))) z`` clamped at 0 (lines 148-158). One difference: aihwkit converts the programmed *weights*
back to a conductance pair before drifting them (base.py lines 117-122: the pair's smaller device is re-set to
``g_min``); here both devices of a pair keep their programmed conductances and drift, as the hardware's do.
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

#: The simulator's fidelity levels (``AnalogConfig.fidelity``): every bit plane, slice and sign read with its own
#: noise and ADC rounding, or one product per row block with those errors drawn in aggregate per output
#: (``cimc.runtime.statistical``).
FIDELITIES = ("per-read", "statistical")


@dataclass(frozen=True, kw_only=True)
class AnalogConfig:
    """Which analog effects are on, and their settings; ``ideal(device)`` turns all off. Each noise term of the
    device has its own switch, so that any one can be studied alone or taken out.

    ``programming_noise``: programming error, after ``verify_iterations`` extra program-and-verify iterations.
    ``drift``: the conductances drift from ``t0`` to ``drift_time_s`` (the power law); ``drift_spread``: each cell's
    drift exponent is drawn around its mean (off: every cell takes the mean). ``flicker_noise``: (PCM) the 1/f noise
    accumulated up to the read. ``read_noise``: each active cell's noise on every read. ``output_noise``: each
    output's noise on every read. ``drift_time_s``: seconds after ``t0`` at which the arrays are read (0: at ``t0``).
    ``drift_compensation``: one gain per array group, the ratio of a reference read-out taken at ``t0`` to the same
    read-out at ``drift_time_s`` (aihwkit's ``GlobalDriftCompensation``; ``compensation_gain``), for a device
    with a drift model (one without has nothing to compensate, and noisy read-outs would only add a gain error).
    ``stuck_on_rate``/``stuck_off_rate``: fractions of cells stuck at ``g_max`` / ``g_min`` (None: the device's).
    ``adc_offset_lsb``: sigma of each ADC column's static offset, in that ADC's LSB. ``ir_drop``: first-order IR drop
    along rows and columns. ``seed``: the run's seed, from which the simulator makes the generators this module's
    functions take. ``fidelity``: how the simulator reads (``FIDELITIES``): ``"per-read"`` every bit plane, slice
    and sign with its own noise and ADC rounding, ``"statistical"`` one product per row block with those errors
    drawn in aggregate per output where that model holds (``cimc.runtime.statistical``).
    """

    device: Device
    programming_noise: bool = True
    verify_iterations: int = 0
    drift: bool = True
    drift_spread: bool = True
    flicker_noise: bool = True
    read_noise: bool = True
    output_noise: bool = True
    drift_time_s: float = 0.0
    drift_compensation: bool = True
    stuck_on_rate: float | None = None
    stuck_off_rate: float | None = None
    adc_offset_lsb: float = 0.0
    ir_drop: bool = True
    seed: int = 0
    fidelity: str = "per-read"

    def __post_init__(self) -> None:
        on, off = self.stuck_rates
        checks = (
            ("verify_iterations", self.verify_iterations >= 0, "an integer >= 0"),
            ("drift_time_s", self.drift_time_s >= 0, "a number of seconds >= 0"),
            ("stuck_on_rate", 0 <= on <= 1, "a fraction in [0, 1]"),
            ("stuck_off_rate", 0 <= off <= 1 - on, "a fraction, on + off <= 1"),
            ("adc_offset_lsb", self.adc_offset_lsb >= 0, "a number >= 0"),
            ("fidelity", self.fidelity in FIDELITIES, f"one of {', '.join(FIDELITIES)}"),
        )
        require("analog config", self, checks)

    @classmethod
    def ideal(cls, device: Device) -> AnalogConfig:
        """Every effect off: no stuck cells, no programming error, no noise, no drift, no offsets, no IR drop."""
        return cls(
            device=device,
            programming_noise=False,
            drift=False,
            drift_spread=False,
            flicker_noise=False,
            read_noise=False,
            output_noise=False,
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
    def drifts(self) -> bool:
        """Whether the conductances drift: drift on, a drifting device and a read after ``t0``."""
        return self.drift and self.drift_time_s > 0 and self.device.drift != "none"

    @property
    def flickers(self) -> bool:
        """Whether accumulated 1/f noise is drawn: on, for a device with the PCM model (which has it at any
        read time, ``t0`` included, as aihwkit does)."""
        return self.flicker_noise and self.device.drift == "pcm"

    @property
    def is_ideal(self) -> bool:
        """Whether every effect is off or has nothing to act with (a device with no per-read cell noise, say), so
        arrays hold their exact levels and reads are exact (drift compensation alone then measures the same
        read-out twice: a gain of exactly 1)."""
        return (
            not self.programming_noise
            and self.read_sigmas(1) == (0.0, 0.0)
            and not self.drifts
            and not self.flickers
            and self.stuck_rates == (0.0, 0.0)
            and self.adc_offset_lsb == 0
            and not self.ir_drop
        )

    def read_sigmas(self, cell_bits: int, dac_bits: int = 1, top_level: int | None = None) -> tuple[float, float]:
        """``read_sigmas`` of the device with each term that is switched off at 0."""
        cell, output = read_sigmas(self.device, cell_bits, dac_bits, top_level)
        return (cell if self.read_noise else 0.0), (output if self.output_noise else 0.0)


def level_step_us(cell_bits: int, device: Device, top_level: int | None = None) -> float:
    """``delta``, the conductance between adjacent levels of a ``cell_bits``-bit cell whose level ``top_level``
    (default the cell's top, ``2^cell_bits - 1``) is programmed at ``g_max`` (uS); a ValueError when the device has
    fewer than ``2^cell_bits`` levels."""
    levels = 2**cell_bits
    if cell_bits < 1 or levels > device.max_levels:
        most = int(math.log2(device.max_levels))
        raise ValueError(
            f"device '{device.name}' has {device.max_levels} conductance levels: {cell_bits}-bit cells need {levels}; "
            f"use cells of at most {most} bit{'s' if most != 1 else ''} or another device"
        )
    return (device.g_max_us - device.g_min_us) / (top_level or levels - 1)


def group_top_level(levels: np.ndarray, cell_bits: int) -> int:
    """The level an array group programs at ``g_max``: its largest level (at least 1, at most the cell's top).
    A group's cells span the device's conductance range, as aihwkit maps each tile's largest weight to ``g_max``
    (``SinglePairConductanceConverter``, src/aihwkit/inference/converter/conductance.py lines 54-65): a 7-bit
    weight magnitude on an 8-bit cell then reaches ``g_max``, not half of it."""
    return int(min(max(int(np.max(levels, initial=0)), 1), (1 << cell_bits) - 1))


def cell_conductance(levels: np.ndarray, cell_bits: int, device: Device) -> np.ndarray:
    """The target conductance of each cell, ``g_min + level * delta`` (uS, float64)."""
    return device.g_min_us + np.asarray(levels, dtype=np.float64) * level_step_us(cell_bits, device)


def relative_conductance(
    conductance: np.ndarray, cell_bits: int, device: Device, top_level: int | None = None
) -> np.ndarray:
    """``|g| / g_max`` of cells holding ``conductance`` in level units (``g = g_min + conductance * delta``), in
    ``conductance``'s float type: the factor of a read noise variance that scales with conductance."""
    x = _floating(conductance)
    ratio = x * x.dtype.type(level_step_us(cell_bits, device, top_level) / device.g_max_us)
    ratio += x.dtype.type(device.g_min_us / device.g_max_us)
    return np.abs(ratio, out=ratio)


def programming_sigma_us(g: np.ndarray, device: Device, iterations: int) -> np.ndarray:
    """The programming-error sigma at target conductance ``g`` (uS, in ``g``'s float type): the device's polynomial
    in ``g / g_max`` (aihwkit's ``prog_coeff``, pcm.py lines 108-114), its magnitude (aihwkit multiplies the signed
    polynomial by a symmetric draw: the same law), times ``verify_factor`` per extra program-and-verify iteration."""
    if iterations < 0:
        raise ValueError(f"verify iterations must be >= 0, got {iterations}")
    x = _floating(g) / device.g_max_us
    sigma = np.full_like(x, device.prog_noise_us[-1])
    for coefficient in reversed(device.prog_noise_us[:-1]):  # Horner
        sigma *= x
        sigma += coefficient
    np.abs(sigma, out=sigma)
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


def drift_exponents(g_target: np.ndarray, device: Device, rng: np.random.Generator, spread: bool = True) -> np.ndarray:
    """Each cell's drift exponent ``nu``: 0 for drift ``"none"``; ~ N(``drift_nu_mean``, ``drift_nu_std``) for
    ``"constant"``; for ``"pcm"`` aihwkit's ``|mu + sigma z|`` with ``mu = clip(-0.0155 ln(g/g_max) + 0.0244, 0.049,
    0.1)`` and ``sigma = clip(-0.0125 ln(g/g_max) - 0.0059, 0.008, 0.045)`` at the target conductance, ``g/g_max``
    floored at 1e-7 (pcm.py lines 123-128; ``drift_scale`` 1). Without ``spread`` every cell takes the mean (``mu``)
    and nothing is drawn; ``"none"`` draws nothing either."""
    g = _floating(g_target)
    if device.drift == "none":
        return np.zeros_like(g)
    z = _normal(rng, g) if spread else None
    if device.drift == "constant":
        nu = np.full_like(g, device.drift_nu_mean)
        return nu if z is None else nu + device.drift_nu_std * z
    log_g = np.log(np.maximum(np.abs(g) / device.g_max_us, _PCM_G_FLOOR))
    std = np.clip(_PCM_NU_STD[0] * log_g + _PCM_NU_STD[1], _PCM_NU_STD[2], _PCM_NU_STD[3])
    nu = np.clip(_PCM_NU_MEAN[0] * log_g + _PCM_NU_MEAN[1], _PCM_NU_MEAN[2], _PCM_NU_MEAN[3], out=log_g)
    if z is None:
        return nu
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
    """PCM: the 1/f noise accumulated from programming to the read at ``t = t_s + t0`` (aihwkit, pcm.py lines
    146-158): ``g + |g| Q_s sqrt(ln((t + t_read) / (2 t_read))) z``, ``Q_s = min(0.0088 / max((g_prog/g_max)^0.65,
    1e-3), 0.2)`` of the programmed conductance, ``g`` the drifted one, floored at 0 (``read_noise_scale`` 1). Other
    devices: unchanged (no draw)."""
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


def drift_readout(
    g: np.ndarray, cell_bits: int, config: AnalogConfig, rng: np.random.Generator, top_level: int | None = None
) -> float:
    """aihwkit 1.2's ``GlobalDriftCompensation`` read-out of one array group holding conductances ``g[signs, slices,
    rows, cols]`` (uS): the forward pass of the one-hot vectors ``eye(rows)`` (``get_readout_tensor``,
    src/aihwkit/inference/compensation/drift.py line 38), each row alone at the full input, every output of every
    array read with the read's noise (the output noise and the one active cell's read noise, each if on), the
    arrays' readings in level units ``(g - g_min) / delta`` shift-added over slices and subtracted over the sign
    pair; the statistic is the mean absolute output (``readout``, drift.py line 30), floored at 1e-4 of one
    full-scale weight as aihwkit clamps it at 1e-4 of its unit weight. Drawn from ``rng`` array by array, each array
    ``rows x cols`` standard normals. Not modelled: the ADC's rounding of the read-out (it averages out over the
    ``rows x cols`` outputs) and IR drop (one driven row at a time). An offset-coded group (one sign) reads its
    unsigned levels: the offset is digital."""
    device = config.device
    signs, slices, rows, cols = g.shape
    delta = level_step_us(cell_bits, device, top_level)
    cell_sigma, output_sigma = config.read_sigmas(cell_bits, 1, top_level)  # one DAC step: the full input at 1 bit
    out = np.zeros((rows, cols))
    for s in range(signs):
        for k in range(slices):
            read = (g[s, k].astype(np.float64) - device.g_min_us) / delta
            if cell_sigma > 0 or output_sigma > 0:
                variance = np.full_like(read, output_sigma**2)
                scaled = device.read_noise_scaling == "conductance"
                variance += cell_sigma**2 * (np.abs(g[s, k]) / device.g_max_us if scaled else 1.0)
                read += np.sqrt(variance) * rng.standard_normal(read.shape)
            out += (-1.0 if s else 1.0) * float(1 << (k * cell_bits)) * read
    full_scale = float(top_level or (1 << cell_bits) - 1) * sum(1 << (k * cell_bits) for k in range(slices))
    return max(float(np.mean(np.abs(out))), 1e-4 * full_scale)


def compensation_gain(
    g_reference: np.ndarray,
    g_now: np.ndarray,
    cell_bits: int,
    config: AnalogConfig,
    rng: np.random.Generator,
    top_level: int | None = None,
) -> float:
    """Global drift compensation: the read-out of the group right after programming (``g_reference``, at ``t0``)
    over the same read-out now (``g_now``), ``drift_readout`` both, the reference drawn first; aihwkit's ``alpha =
    ref_value / current_value`` (src/aihwkit/inference/compensation/base.py line 59), which multiplies the group's
    outputs. With no read noise and unchanged conductances it is exactly 1."""
    reference = drift_readout(g_reference, cell_bits, config, rng, top_level)
    return reference / drift_readout(g_now, cell_bits, config, rng, top_level)


def read_sigmas(device: Device, cell_bits: int, dac_bits: int = 1, top_level: int | None = None) -> tuple[float, float]:
    """Read-noise sigmas in the simulator's current unit, one level read at one DAC step (``delta`` at
    ``1 / (2^dac_bits - 1)`` of the full read voltage): (per active cell and per DAC step of its input, per output
    read). A cell's read noise scales with the voltage on its row, so the caller multiplies the first by the
    input's DAC code; for a device whose read noise scales with conductance it is a cell's at ``g_max``, and the
    caller scales its variance by ``|g| / g_max``. The output noise is a current at full voltage, ``2^dac_bits - 1``
    units per uS/delta (``delta`` with ``top_level`` at ``g_max``, ``level_step_us``)."""
    delta = level_step_us(cell_bits, device, top_level)
    return device.read_noise_us / delta, device.output_noise_us / delta * ((1 << dac_bits) - 1)


@dataclass(frozen=True)
class ProgrammedGroup:
    """An array group as it is read: ``conductance[sign, slice, row, col]`` in level units (float32) with every
    static effect applied, each column's ADC static offset in LSB (``adc_offsets[sign, slice, col]``, float32),
    the stuck cell counts, the drift-compensation gain applied (1.0 when off) and the smallest IR-drop factor of
    any cell (1.0 when off; the first-order model holds while it stays above about 0.9).

    The gain is folded into the conductances, so it acts before the ADC, as a gain of the column read-out (the
    ADC's reference) would. aihwkit multiplies the digitized outputs instead (``post_forward``: ``x_output *
    self.alpha``, src/aihwkit/simulator/tiles/inference.py); with its 9-bit ADC over the whole output range the two
    agree, but on bit-sliced arrays whose ADC step is one level a digital gain would re-scale the rounding of
    drifted currents that fall between codes (measured on the digits CNN: 7x the partial-sum error)."""

    conductance: np.ndarray
    adc_offsets: np.ndarray
    stuck_on: int
    stuck_off: int
    gain: float
    min_ir_factor: float = 1.0
    programmed: np.ndarray | None = None


def program_group(
    levels: np.ndarray,
    cell_bits: int,
    config: AnalogConfig,
    rng: np.random.Generator,
    *,
    array_cols: int | None = None,
    adc_columns: int = 1,
    top_level: int | None = None,
    keep_programmed: bool = False,
) -> ProgrammedGroup:
    """Program the levels ``[signs, slices, rows, cols]`` of one array group and return what its arrays hold at
    ``config.drift_time_s``.

    In order, drawing from ``rng`` in this order (only for effects that are on): target conductances from the
    levels; stuck cells (stuck on -> ``g_max``, off -> ``g_min``; they take no programming error); programming
    error after ``verify_iterations``; drift exponents from the target conductance and drift to ``t``; (PCM)
    accumulated 1/f noise; IR drop, a factor ``a`` per cell from the drifted conductances of each physical array
    (every ``array_cols`` columns; None: the whole width is one array); each ADC's offset, shared by the
    ``adc_columns`` columns of an array that one ADC reads (interleaved: column ``c`` on ADC ``c mod (array_cols /
    adc_columns)``, as ``cimc.runtime.timing`` counts conversions); last the drift-compensation read-outs
    (``compensation_gain``: of the programmed conductances at ``t0``, then of those at ``t``), so that switching
    compensation leaves every other draw as it was. Level ``top_level`` (default the cell's top) is programmed at
    ``g_max`` (``level_step_us``; stuck-on cells hold it). With ``keep_programmed`` the result also holds
    ``programmed``: the arrays as programmed, at ``t0`` (no drift, no 1/f noise; IR drop if on), in level units, for
    a caller that compensates drift from its own read-outs. The level units are

        conductance = gain * (g * a - g_min) / delta

    computed as ``gain * (target_level + (g * a - g_target) / delta)`` (the same number with less rounding), so with
    every effect off it equals ``levels`` exactly.
    """
    if np.ndim(levels) != 4:
        raise ValueError(f"levels must be [signs, slices, rows, cols], got shape {np.shape(levels)}")
    device = config.device
    delta = level_step_us(cell_bits, device, top_level)
    top = top_level or (1 << cell_bits) - 1
    # float32 throughout (half float64's memory traffic); the ideal path stays exact: levels are < 2^24
    target_levels = np.asarray(levels, dtype=np.float32)
    on_rate, off_rate = config.stuck_rates
    stuck_on = stuck_off = 0
    stuck = None
    if on_rate > 0 or off_rate > 0:
        stuck = stuck_cells(target_levels.shape, on_rate, off_rate, rng)
        stuck_on, stuck_off = int(np.count_nonzero(stuck == 1)), int(np.count_nonzero(stuck == -1))
        target_levels = np.where(stuck == 0, target_levels, np.where(stuck > 0, np.float32(top), 0))
    g_target = target_levels * np.float32(delta)
    g_target += np.float32(device.g_min_us)

    g = g_target
    if config.programming_noise:
        g = program(g_target, device, config.verify_iterations, rng)
        if stuck is not None:
            g = np.where(stuck == 0, g, g_target)
    g_programmed = g
    if config.drifts:
        nu = drift_exponents(g_target, device, rng, spread=config.drift_spread)
        g = drift(g, nu, config.drift_time_s, device)
    if config.flickers:
        g = flicker_noise(g, g_programmed, config.drift_time_s, device, rng)
    g_read = g

    def as_read(g: np.ndarray) -> tuple[np.ndarray, float]:
        """Conductances ``g`` with the IR drop they cause, in level units, and the smallest IR-drop factor."""
        lowest = 1.0
        if config.ir_drop and device.wire_ohm > 0:
            factor = ir_drop_attenuation(g, device.wire_ohm, array_cols)
            lowest = float(factor.min(initial=1.0))
            g = g * factor
        levels_now = g - g_target
        levels_now *= np.float32(1 / delta)
        levels_now += target_levels
        return levels_now, lowest

    conductance, min_ir_factor = as_read(g)
    programmed = as_read(g_programmed)[0] if keep_programmed else None
    signs, slices, _, cols = target_levels.shape
    offsets = np.zeros((signs, slices, cols), dtype=np.float32)
    if config.adc_offset_lsb > 0:
        width = array_cols or cols
        per_array = -(-width // adc_columns)
        column = np.arange(cols)
        adc = column // width * per_array + column % width % per_array  # interleaved, as cimc.runtime.timing reads
        draws = rng.normal(0.0, config.adc_offset_lsb, (signs, slices, int(adc.max()) + 1))
        offsets = draws[..., adc].astype(np.float32)
    compensate = config.drift_compensation and device.drift != "none"  # nothing to compensate: no read-outs
    gain = compensation_gain(g_programmed, g_read, cell_bits, config, rng, top_level) if compensate else 1.0
    if gain != 1.0:
        conductance *= np.float32(gain)
    return ProgrammedGroup(
        conductance=conductance,
        adc_offsets=offsets,
        stuck_on=stuck_on,
        stuck_off=stuck_off,
        gain=gain,
        min_ir_factor=min_ir_factor,
        programmed=programmed,
    )
