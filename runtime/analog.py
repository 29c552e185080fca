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
noise, DAC and ADC are the simulator's; ``read_sigmas`` gives it the read-noise sigmas in level units. It visits
each cell once, in one numba kernel (``cimc.runtime.programming``), whose draws come from counter-based streams of
the key the caller passes, so one key gives one result, whatever the thread count.

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

import numpy as np

from cimc.runtime.devices import Device, require
from cimc.runtime.programming import ir_drop_factors, program_cells

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
    read-out at ``drift_time_s`` (aihwkit's ``GlobalDriftCompensation``; ``program_group``), for a device
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


def drift_exponent_moments(g_target: np.ndarray, device: Device) -> tuple[np.ndarray, np.ndarray]:
    """The mean and spread of each cell's drift exponent ``nu`` at target conductance ``g_target`` (uS), float64:
    0 and 0 for drift ``"none"``; ``drift_nu_mean`` and ``drift_nu_std`` for ``"constant"`` (``nu ~ N(mean,
    std)``); for ``"pcm"`` aihwkit's ``mu = clip(-0.0155 ln(g/g_max) + 0.0244, 0.049, 0.1)`` and ``sigma =
    clip(-0.0125 ln(g/g_max) - 0.0059, 0.008, 0.045)``, ``g/g_max`` floored at 1e-7 (pcm.py lines 123-128;
    ``drift_scale`` 1), of which a cell's exponent is ``|mu + sigma z|`` (``drift_folds``)."""
    g = np.asarray(g_target, dtype=np.float64)
    if device.drift == "none":
        return np.zeros_like(g), np.zeros_like(g)
    if device.drift == "constant":
        return np.full_like(g, device.drift_nu_mean), np.full_like(g, device.drift_nu_std)
    log_g = np.log(np.maximum(np.abs(g) / device.g_max_us, _PCM_G_FLOOR))
    std = np.clip(_PCM_NU_STD[0] * log_g + _PCM_NU_STD[1], _PCM_NU_STD[2], _PCM_NU_STD[3])
    return np.clip(_PCM_NU_MEAN[0] * log_g + _PCM_NU_MEAN[1], _PCM_NU_MEAN[2], _PCM_NU_MEAN[3]), std


def drift_folds(device: Device) -> bool:
    """Whether a cell's drift exponent is the magnitude of its normal draw (aihwkit's PCM: ``|mu + sigma z|``)."""
    return device.drift == "pcm"


def drift_log_time(t_s: float, device: Device) -> float:
    """``ln((t_s + t0) / t0)``: a cell drifts by ``exp(-nu * this)``, ``G(t0) ((t_s + t0) / t0)^-nu`` (aihwkit's
    ``t_inference`` counts from ``t0``; pcm.py lines 138-142)."""
    if t_s < 0:
        raise ValueError(f"drift time must be >= 0 seconds, got {t_s}")
    return math.log((t_s + device.drift_t0_s) / device.drift_t0_s)


def flicker_sigma(g_prog: np.ndarray, t_s: float, device: Device) -> np.ndarray:
    """PCM: the relative sigma of the 1/f noise accumulated from programming to the read at ``t = t_s + t0``
    (aihwkit, pcm.py lines 146-158): ``Q_s sqrt(ln((t + t_read) / (2 t_read)))``, ``Q_s = min(0.0088 /
    max((g_prog/g_max)^0.65, 1e-3), 0.2)`` of the programmed conductance (``read_noise_scale`` 1); a cell then
    reads ``g + |g| sigma z``, ``g`` the drifted conductance, floored at 0."""
    spread = _flicker_time_factor(t_s, device)
    ratio = np.abs(np.asarray(g_prog, np.float64)) / device.g_max_us
    q_s = np.maximum(np.power(ratio, _PCM_1F_EXPONENT), _PCM_1F_FLOOR)
    return np.minimum(_PCM_1F_SCALE * spread / q_s, _PCM_1F_CAP * spread)


def _flicker_time_factor(t_s: float, device: Device) -> float:
    t = t_s + device.drift_t0_s
    return math.sqrt(math.log((t + device.t_read_s) / (2 * device.t_read_s)))


def _floating(x: np.ndarray) -> np.ndarray:
    """``x`` as a float32 or float64 array (float32 stays float32: the group's arrays are float32 for speed)."""
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def ir_drop_attenuation(g: np.ndarray, wire_ohm: float, array_cols: int | None = None) -> np.ndarray:
    """The first-order IR-drop factor of each cell of arrays ``g[..., rows, cols]`` (uS), float64 of the same
    shape; every ``array_cols`` columns are one physical array with wires of their own (None: all ``cols``).

    Rows are driven from column 0's end; each column's current is sensed past row ``rows - 1``. With every row
    driven at unit voltage (the worst case) each cell passes ``I0 = G``. Row wire segment ``m`` (before cell ``m``)
    carries ``sum_{k>=m} I0[i, k]``, so the row voltage at cell ``(i, j)`` falls by ``r sum_{m<=j} sum_{k>=m}
    I0[i, k]``; column segment below cell ``s`` carries ``sum_{k<=s} I0[k, j]``, so the column voltage at ``(i, j)``
    rises by ``r sum_{s>=i} sum_{k<=s} I0[k, j]``. The cell sees ``1 - drop - rise`` of the voltage: the factor,
    clipped to [0, 1]. ``r`` = ``wire_ohm``, ``G`` in siemens. First order: currents are those of the ideal array,
    so the factor is accurate while the drops are small (a few percent) and overstates larger ones. Two sweeps
    down the rows of each array (``cimc.runtime.programming``'s, which ``program_group`` runs fused).
    """
    g = np.asarray(g, dtype=np.float64)
    rows, cols = g.shape[-2:]
    stack = np.ascontiguousarray(g.reshape(-1, rows, cols))
    factor = np.empty_like(stack)
    ir_drop_factors(stack, wire_ohm * 1e-6, array_cols or cols, factor)
    return factor.reshape(g.shape)


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
    key: int | np.uint64 | np.random.Generator,
    *,
    array_cols: int | None = None,
    adc_columns: int = 1,
    top_level: int | None = None,
    keep_programmed: bool = False,
) -> ProgrammedGroup:
    """Program the levels ``[signs, slices, rows, cols]`` of one array group and return what its arrays hold at
    ``config.drift_time_s``.

    Per cell, in one pass (``cimc.runtime.programming.program_cells``), for the effects that are on: the target
    level; stuck cells (stuck on -> level ``top_level``, at ``g_max``; off -> 0, ``g_min``; they take no
    programming error) from one uniform draw; the target conductance ``g_min + level * delta``
    (``level_step_us``); programming error after ``verify_iterations`` (``programming_sigma_us``, floored at 0);
    drift to ``t`` with an exponent drawn about the target's moments (``drift_exponent_moments``), without spread
    their mean; (PCM) accumulated 1/f noise (``flicker_sigma``); IR drop, a factor ``a`` per cell from the drifted
    conductances of each physical array (every ``array_cols`` columns; None: the whole width is one array). Then
    each ADC's offset, shared by the ``adc_columns`` columns of an array that one ADC reads (interleaved: column
    ``c`` on ADC ``c mod (array_cols / adc_columns)``, as ``cimc.runtime.timing`` counts conversions), and the
    drift-compensation gain (below). The level units are

        conductance = gain * (g * a - g_min) / delta

    computed as ``gain * (target_level + (g * a - g_target) / delta)`` (the same number with less rounding), so with
    every effect off it equals ``levels`` exactly. ``conductance`` is a ``[signs, slices, rows, cols]`` view of a
    C-ordered ``[rows, signs, slices, cols]`` array: the simulator's GEMM operand without a copy.

    Drift compensation is aihwkit 1.2's ``GlobalDriftCompensation``: the read-out of the one-hot vectors
    ``eye(rows)`` (``get_readout_tensor``, src/aihwkit/inference/compensation/drift.py line 38), each row alone at
    the full input, through every array with the read's noise (the output noise and the one active cell's read
    noise, each if on), in level units shift-added over slices and subtracted over the sign pair; its statistic the
    mean absolute output (``readout``, drift.py line 30), floored at 1e-4 of one full-scale weight as aihwkit clamps
    it at 1e-4 of its unit weight. The gain is the read-out of the arrays as programmed (at ``t0``) over the same
    read-out at ``t`` (aihwkit's ``alpha = ref_value / current_value``, base.py line 59), for a device with a drift
    model (one without has nothing to compensate). The noise of one weight's read-out is the sum of its ``signs x
    slices`` readings' independent Gaussian noises: one draw per weight with their summed variance (the same
    distribution as one per reading). Not modelled: the ADC's rounding of the read-out (it averages out over the
    ``rows x cols`` outputs) and IR drop (one driven row at a time). With no read noise and unchanged conductances
    the gain is exactly 1.

    Draws come from the counter-based streams of ``key`` (``cimc.runtime.programming``: stream version
    ``NOISE_STREAM``), so one key gives one result whatever the thread count, and switching one effect leaves the
    others' draws as they were; a ``numpy.random.Generator`` given as ``key`` gives one 64-bit key. With
    ``keep_programmed`` the result also holds ``programmed``: the arrays as programmed, at ``t0`` (no drift, no 1/f
    noise; IR drop if on), in level units, for a caller that compensates drift from its own read-outs.
    """
    if np.ndim(levels) != 4:
        raise ValueError(f"levels must be [signs, slices, rows, cols], got shape {np.shape(levels)}")
    if isinstance(key, np.random.Generator):
        key = key.integers(0, 1 << 64, dtype=np.uint64)
    device = config.device
    delta = level_step_us(cell_bits, device, top_level)
    top = top_level or (1 << cell_bits) - 1
    levels = np.ascontiguousarray(levels, dtype=np.uint8)
    signs, slices, rows, cols = levels.shape
    tables = _level_tables(cell_bits, top, config)
    on_rate, off_rate = config.stuck_rates
    time_factor = _flicker_time_factor(config.drift_time_s, device) if config.flickers else 0.0
    # Q_s = min(scale / max(ratio^e, floor), cap) is a constant up to the ratio where floor or cap stops holding
    knee = max(_PCM_1F_SCALE / _PCM_1F_CAP, _PCM_1F_FLOOR) ** (1 / _PCM_1F_EXPONENT)
    q_low = min(_PCM_1F_SCALE / _PCM_1F_FLOOR, _PCM_1F_CAP)
    compensate = config.drift_compensation and device.drift != "none"
    cell_sigma, output_sigma = config.read_sigmas(cell_bits, 1, top_level)  # one DAC step: the full input at 1 bit
    scaled = device.read_noise_scaling == "conductance"
    width = array_cols or cols
    conductance = np.empty((rows, signs, slices, cols), np.float32)
    programmed = np.empty((rows, signs, slices, cols) if keep_programmed else (0, 0, 0, 0), np.float32)
    offsets = np.zeros((signs, slices, cols), np.float32)
    blocks = -(-cols // width)
    counts = np.zeros((blocks, 2), np.int64)
    lowest = np.ones(blocks)
    readouts = np.zeros((blocks, 2))
    program_cells(
        levels,
        cell_bits,
        np.uint64(key),
        tables,
        (float(device.g_min_us), float(delta), float(device.g_max_us)),
        (float(on_rate), float(off_rate), int(top)),
        bool(config.programming_noise),
        (config.drifts, drift_folds(device), drift_log_time(config.drift_time_s, device)),
        (config.flickers, _PCM_1F_SCALE * time_factor, _PCM_1F_EXPONENT, knee, q_low * time_factor),
        device.wire_ohm * 1e-6 if config.ir_drop else 0.0,  # uS -> S
        int(width),
        (compensate, output_sigma**2, cell_sigma**2, 1.0 if scaled else 0.0),
        (float(config.adc_offset_lsb), int(adc_columns)),
        conductance,
        programmed,
        offsets,
        counts,
        lowest,
        readouts,
    )
    gain = 1.0
    if compensate:
        full_scale = float(top) * sum(1 << (k * cell_bits) for k in range(slices))
        reference, now = (max(float(total) / (rows * cols), 1e-4 * full_scale) for total in readouts.sum(axis=0))
        gain = reference / now
        if gain != 1.0:
            conductance *= np.float32(gain)
    stuck_on, stuck_off = (int(n) for n in counts.sum(axis=0))
    return ProgrammedGroup(
        conductance=conductance.transpose(1, 2, 0, 3),
        adc_offsets=offsets,
        stuck_on=stuck_on,
        stuck_off=stuck_off,
        gain=gain,
        min_ir_factor=float(lowest.min(initial=1.0)),
        programmed=programmed.transpose(1, 2, 0, 3) if keep_programmed else None,
    )


def _level_tables(cell_bits: int, top: int, config: AnalogConfig) -> np.ndarray:
    """Per target level ``0 .. 2^cell_bits - 1`` (float64): its programming sigma (uS), its drift exponent's mean
    and spread (0 where drift or its spread is off): what ``program_cells`` looks up."""
    device = config.device
    g = device.g_min_us + np.arange(1 << cell_bits) * level_step_us(cell_bits, device, top)
    mean, std = drift_exponent_moments(g, device)
    if not config.drifts:
        mean = std = np.zeros_like(g)
    elif not config.drift_spread:
        std = np.zeros_like(g)
    sigma = programming_sigma_us(g, device, config.verify_iterations)
    return np.ascontiguousarray(np.stack([sigma, mean, std]))
