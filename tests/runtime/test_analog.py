"""Static analog effects of programmed arrays, each against its closed form: levels and their step, the spread of
programmed conductances with and without program-and-verify, the drift exponent recovered from two reads, global
drift compensation, stuck cell counts, IR drop on a uniform array; the ideal configuration is exact and every
result is a function of the key. Each statistical check reads the arrays ``program_group`` (its one-pass kernel,
``cimc.runtime.programming``) makes with only the effect under test on.

The ``pcm`` preset is checked against aihwkit 1.2's ``PCMLikeNoiseModel`` formulas (src/aihwkit/inference/noise/
pcm.py) re-implemented here in numpy (``_aihwkit_*``), sharing no code with the simulator."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from cimc.runtime import kernels
from cimc.runtime.analog import (
    AnalogConfig,
    cell_conductance,
    drift_exponent_moments,
    drift_log_time,
    flicker_sigma,
    ir_drop_attenuation,
    level_step_us,
    program_group,
    programming_sigma_us,
    read_sigmas,
)
from cimc.runtime.devices import DEVICES, PCM, RRAM, SRAM, Device
from cimc.runtime.programming import NOW, REFERENCE, STUCK, draw_key, uniform

_PCM_DELTA = 25.0 / 3  # 2-bit PCM cells: g_min = 0 (aihwkit's SinglePairConductanceConverter)
#: every effect's switch, as AnalogConfig names it
_SWITCHES = ("programming_noise", "drift", "drift_spread", "flicker_noise", "read_noise", "output_noise", "ir_drop")


def _aihwkit_prog_sigma(g: np.ndarray) -> np.ndarray:
    """pcm.py lines 108-114 at g_max 25 uS: sum_i c_i (g / g_max)^i, c = [0.26348, 1.9650, -1.1731]."""
    x = g / 25.0
    return 0.26348 + 1.9650 * x - 1.1731 * x**2


def _aihwkit_nu_mu_sigma(g: float) -> tuple[float, float]:
    """pcm.py lines 123-127: mu and sigma of the drift exponent at target g (uS)."""
    log_g = math.log(max(abs(g / 25.0), 1e-7))
    return min(max(-0.0155 * log_g + 0.0244, 0.049), 0.1), min(max(-0.0125 * log_g - 0.0059, 0.008), 0.045)


def _aihwkit_flicker_sigma(g_prog: float, t_inference: float) -> float:
    """pcm.py lines 148-151: the relative sigma of the accumulated 1/f noise at t = t_inference + t0."""
    q_s = min(0.0088 / max((abs(g_prog) / 25.0) ** 0.65, 1e-3), 0.2)
    t = t_inference + 20.0
    return q_s * math.sqrt(math.log((t + 250e-9) / (2 * 250e-9)))


def _only(device: Device = PCM, **effects: Any) -> AnalogConfig:
    """Every effect off but ``effects``."""
    return dataclasses.replace(AnalogConfig.ideal(device), **effects)


def _levels(shape: tuple[int, ...], cell_bits: int = 2, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**cell_bits, shape).astype(np.uint8)


def _std_tolerance(sigma: float, n: int) -> float:
    """Five standard deviations of a sample standard deviation of n normal draws: sigma / sqrt(2 (n - 1))."""
    return 5 * sigma / math.sqrt(2 * (n - 1))


def test_levels_are_evenly_spaced_from_g_min_to_g_max() -> None:
    assert level_step_us(2, PCM) == pytest.approx(_PCM_DELTA, rel=1e-15)
    g = cell_conductance(np.arange(4), 2, PCM)
    np.testing.assert_allclose(g, [0.0, _PCM_DELTA, 2 * _PCM_DELTA, 25.0], rtol=1e-15)
    assert g.dtype == np.float64
    rram = cell_conductance(np.arange(16), 4, RRAM)  # g_min 4 uS: 16 levels from 4 to 40 uS
    np.testing.assert_allclose(rram, 4.0 + np.arange(16) * 36.0 / 15, rtol=1e-15)


def test_a_device_with_too_few_levels_is_refused() -> None:
    with pytest.raises(
        ValueError, match="device 'rram' has 16 conductance levels: 5-bit cells need 32; use cells of at most 4 bits"
    ):
        level_step_us(5, RRAM)
    with pytest.raises(ValueError, match="device 'sram' has 2 conductance levels"):
        program_group(_levels((1, 1, 2, 2)), 2, AnalogConfig.ideal(SRAM), np.random.default_rng(0))


def test_read_sigmas_are_in_level_units() -> None:
    rasch = DEVICES["pcm-rasch2023"]
    cell, column = read_sigmas(rasch, 2)
    assert cell == pytest.approx(0.0175 * 25 / _PCM_DELTA) and column == pytest.approx(0.04 * 25 / _PCM_DELTA)
    # with 8-bit DACs the unit is one level at 1/255 of the full read voltage: the per-cell sigma (per DAC step of
    # its input) stays, the output noise (a current at full voltage) is 255 units
    cell8, column8 = read_sigmas(rasch, 2, dac_bits=8)
    assert cell8 == cell and column8 == pytest.approx(255 * column)


def test_pcm_has_aihwkits_output_noise_and_no_per_read_cell_noise() -> None:
    """aihwkit IOParameters: out_noise 0.06 of a weight at g_max under a full input, w_noise 0."""
    assert read_sigmas(PCM, 2) == (0.0, pytest.approx(0.06 * 25 / _PCM_DELTA))
    config = AnalogConfig(device=PCM)
    assert config.read_sigmas(2, 4) == (0.0, pytest.approx(0.06 * 25 / _PCM_DELTA * 15))
    assert dataclasses.replace(config, output_noise=False).read_sigmas(2, 4) == (0.0, 0.0)
    rasch = dataclasses.replace(config, device=DEVICES["pcm-rasch2023"])
    assert dataclasses.replace(rasch, read_noise=False).read_sigmas(2) == (0.0, pytest.approx(1.0 / _PCM_DELTA))


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_ideal_config_holds_the_levels_exactly(name: str) -> None:
    device = DEVICES[name]
    cell_bits = 1 if name == "sram" else 2
    levels = _levels((2, 4, 64, 100), cell_bits)
    config = AnalogConfig.ideal(device)
    group = program_group(levels, cell_bits, config, np.random.default_rng(0))
    assert config.is_ideal and not AnalogConfig(device=device).is_ideal
    assert group.conductance.dtype == np.float32
    assert np.array_equal(group.conductance, levels.astype(np.float32))
    assert np.array_equal(group.adc_offsets, np.zeros((2, 4, 100), np.float32))
    assert (group.stuck_on, group.stuck_off, group.gain) == (0, 0, 1.0)


def test_programming_spread_per_level_is_aihwkits_polynomial() -> None:
    """Levels 1-3 of 2-bit PCM (far from the clamp at 0 S): the sample spread of each level's cells in level units
    is aihwkit's sigma(g) / delta; level 0 (0 uS) reads max(0, sigma(0) z): mean sigma(0) / sqrt(2 pi)."""
    levels = np.repeat(np.arange(0, 4, dtype=np.uint8), 40_000).reshape(1, 1, 4, 40_000)
    group = program_group(levels, 2, _only(programming_noise=True), np.random.default_rng(1))
    for level in range(1, 4):
        cells = group.conductance[0, 0, level] - level
        sigma = float(_aihwkit_prog_sigma(np.array(level * _PCM_DELTA))) / _PCM_DELTA
        assert abs(cells.mean()) < 5 * sigma / math.sqrt(cells.size)
        assert abs(cells.std() - sigma) < _std_tolerance(sigma, cells.size)
    zero = group.conductance[0, 0, 0].astype(np.float64)
    sigma0 = 0.26348 / _PCM_DELTA
    assert abs(zero.mean() - sigma0 / math.sqrt(2 * math.pi)) < 5 * sigma0 / math.sqrt(zero.size)
    assert (zero == 0).mean() == pytest.approx(0.5, abs=0.01)


def test_each_verify_iteration_cuts_the_error_by_the_verify_factor() -> None:
    """Cells at g_max (far from the clamp at 0), the same key: three more program-and-verify iterations scale each
    cell's error by 0.7^3, and the spread is aihwkit's sigma(g_max) times that."""
    levels = np.full((1, 1, 100, 1000), 3, np.uint8)
    first, verified = (
        program_group(levels, 2, _only(programming_noise=True, verify_iterations=n), 3).conductance - 3.0
        for n in (0, 3)
    )
    np.testing.assert_allclose(verified, PCM.verify_factor**3 * first, rtol=1e-5, atol=1e-6)
    sigma = float(programming_sigma_us(np.array([20.0]), PCM, 3)[0])
    assert sigma == pytest.approx(0.7**3 * (0.26348 + 1.9650 * 0.8 - 1.1731 * 0.64))
    expected = 0.7**3 * float(_aihwkit_prog_sigma(np.array(25.0))) / _PCM_DELTA
    assert abs(verified.std() - expected) < _std_tolerance(expected, verified.size)


def test_programmed_conductance_is_never_negative() -> None:
    levels = np.zeros((1, 1, 100, 100), np.uint8)
    g = program_group(levels, 2, _only(programming_noise=True), 0).conductance
    assert g.min() == 0.0 and (g > 0).mean() == pytest.approx(0.5, abs=0.03)


def _recovered_exponents(levels: np.ndarray, device: Device, t_s: float, key: int, **effects: Any) -> np.ndarray:
    """Each cell's drift exponent from its conductance at ``t_s`` and its target (nothing else on):
    ``-ln(g / g_target) / ln((t + t0) / t0)``."""
    config = _only(device, drift=True, drift_time_s=t_s, **effects)
    delta = level_step_us(2, device)
    g = program_group(levels, 2, config, key).conductance.astype(np.float64) * delta + device.g_min_us
    return -np.log(g / (device.g_min_us + levels * delta)) / drift_log_time(t_s, device)


@pytest.mark.parametrize("g_ratio", [0.0, 1e-3, 0.01, 0.1, 0.3, 1.0])
def test_pcm_drift_exponents_follow_aihwkits_distribution(g_ratio: float) -> None:
    """At several target conductances (the floor of 1e-7, both clips and between): the moments are aihwkit's, and
    the exponents recovered from programmed arrays have the sample mean and spread of aihwkit's |mu + sigma z|;
    without spread every cell takes mu. (A cell at 0 uS drifts to 0 uS: its exponent shows in the moments only.)"""
    mu, sigma = _aihwkit_nu_mu_sigma(25.0 * g_ratio)
    moments = drift_exponent_moments(np.array([25.0 * g_ratio]), PCM)
    np.testing.assert_allclose([moments[0][0], moments[1][0]], [mu, sigma], rtol=1e-12)
    if g_ratio == 0.0:
        return
    # level 0 of a device whose g_min is the conductance under test, or level 3 at g_max
    device = dataclasses.replace(PCM, g_min_us=25.0 * g_ratio) if g_ratio < 1 else PCM
    levels = np.full((1, 1, 200, 1000), 0 if g_ratio < 1 else 3, np.uint8)
    nu = _recovered_exponents(levels, device, 86400.0, 21, drift_spread=True)
    mean, spread = _folded_normal(mu, sigma)
    assert abs(nu.mean() - mean) < 5 * spread / math.sqrt(nu.size)
    assert abs(nu.std() - spread) < _std_tolerance(spread, nu.size)
    assert nu.min() >= -1e-6
    np.testing.assert_allclose(_recovered_exponents(levels[..., :10], device, 86400.0, 0), mu, rtol=1e-5)


def _folded_normal(mean: float, std: float) -> tuple[float, float]:
    """Mean and standard deviation of |X|, X ~ N(mean, std)."""
    phi = 0.5 * (1 + math.erf(-mean / (std * math.sqrt(2))))
    folded = std * math.sqrt(2 / math.pi) * math.exp(-(mean**2) / (2 * std**2)) + mean * (1 - 2 * phi)
    return folded, math.sqrt(mean**2 + std**2 - folded**2)


@pytest.mark.parametrize(
    ("level", "mean", "std"),
    [
        # g = g_min = g_max / 100: mu = -0.0155 ln(0.01) + 0.0244, sigma = -0.0125 ln(0.01) - 0.0059 clipped to 0.045
        (0, -0.0155 * math.log(0.01) + 0.0244, 0.045),
        (3, 0.049, 0.008),  # g = g_max: both clipped to their floors
    ],
)
def test_drift_exponent_is_recovered_from_two_reads(level: int, mean: float, std: float) -> None:
    """PCM cells read at 1 hour and at 1 day after t0 (same seed: same exponents): the log-log slope of each cell's
    conductance is -nu, and its average is the folded normal mean of aihwkit's |mu + sigma z|."""
    levels = np.full((1, 1, 100, 1000), level, np.uint8)
    times = (3600.0, 86400.0)
    device = dataclasses.replace(PCM, g_min_us=0.25)  # level 0 at g_max / 100, so that it has something to drift
    delta = (25.0 - 0.25) / 3
    reads = [
        program_group(
            levels, 2, _only(device, drift=True, drift_spread=True, drift_time_s=t), np.random.default_rng(5)
        ).conductance.astype(np.float64)
        * delta
        + 0.25
        for t in times
    ]
    slope = np.log(reads[1] / reads[0]) / math.log((times[1] + 20.0) / (times[0] + 20.0))
    expected, spread = _folded_normal(mean, std)
    assert abs(-slope.mean() - expected) < 5 * spread / math.sqrt(slope.size)
    assert abs(slope.std() - spread) < 0.05 * spread


def test_drift_is_a_power_law_from_t0() -> None:
    """An exponent of 0.05 for every cell: G(t) = G(t0) ((t + t0) / t0)^-0.05, each level's."""
    device = dataclasses.replace(PCM, drift="constant", drift_nu_mean=0.05, drift_nu_std=0.0, g_min_us=1.0)
    delta = level_step_us(2, device)
    levels = np.arange(4, dtype=np.uint8).reshape(1, 1, 1, 4)
    g = program_group(levels, 2, _only(device, drift=True, drift_time_s=3600.0), 0).conductance * delta + 1.0
    np.testing.assert_allclose(g[0, 0, 0], (1.0 + np.arange(4) * delta) * (3620.0 / 20.0) ** -0.05, rtol=1e-6)
    assert drift_log_time(0.0, PCM) == 0.0
    with pytest.raises(ValueError, match="drift time must be >= 0"):
        drift_log_time(-1.0, PCM)


def test_constant_drift_exponents_are_normal() -> None:
    device = dataclasses.replace(PCM, drift="constant", drift_nu_mean=0.06, drift_nu_std=0.01, g_min_us=10.0)
    nu = _recovered_exponents(np.zeros((1, 1, 50, 1000), np.uint8), device, 3600.0, 2, drift_spread=True)
    assert abs(nu.mean() - 0.06) < 5 * 0.01 / math.sqrt(nu.size)
    assert abs(nu.std() - 0.01) < _std_tolerance(0.01, nu.size)
    assert not AnalogConfig(device=RRAM, drift_time_s=3600.0).drifts  # drift "none": nothing to draw


@pytest.mark.parametrize("nu_std", [0.0, 0.02])
def test_compensation_restores_the_mean_of_a_drifted_group(nu_std: float) -> None:
    """Drift exponents ~ N(0.06, nu_std), read 1 day after t0, no read noise: the arrays hold the drifted levels
    (closed form (g c - g_min) / delta, c = ((t + t0) / t0)^-0.06, when nu_std = 0), and the gain from the two
    read-outs times their mean is the levels' mean (every weight shrinks by c, so mean |y| shrinks by c)."""
    device = dataclasses.replace(PCM, drift="constant", drift_nu_mean=0.06, drift_nu_std=nu_std, g_min_us=0.25)
    delta = (25.0 - 0.25) / 3
    levels = _levels((2, 2, 64, 64))
    config = _only(device, drift=True, drift_spread=True, drift_time_s=86400.0)
    drifted = program_group(levels, 2, config, np.random.default_rng(4))
    with_gain = dataclasses.replace(config, drift_compensation=True)
    compensated = program_group(levels, 2, with_gain, np.random.default_rng(4))
    if nu_std == 0.0:
        g = 0.25 + levels * delta
        expected = (g * (86420.0 / 20.0) ** -0.06 - 0.25) / delta
        np.testing.assert_allclose(drifted.conductance, expected, rtol=1e-5)
        assert compensated.gain == pytest.approx((86420.0 / 20.0) ** 0.06 * 0.25 / 0.25, rel=0.05)
    assert drifted.gain == 1.0 and drifted.conductance.mean() < 0.7 * levels.mean()
    np.testing.assert_allclose(compensated.conductance, compensated.gain * drifted.conductance, rtol=1e-6)
    assert compensated.conductance.mean() == pytest.approx(levels.mean(), rel=0.05)


def test_compensation_gain_is_the_ratio_of_two_noisy_readouts() -> None:
    """A small pair of 2-bit PCM arrays drifting by c = (86420 / 20)^-0.06 (every cell the same exponent; g_min = 0,
    so each reads c times its level) under output noise sigma = 0.06 g_max / delta: the gain is the read-out of the
    arrays as programmed over the read-out now, each the mean |y| of every weight's one-hot read-out (aihwkit 1.2
    GlobalDriftCompensation: forward(eye(rows)), drift.py lines 30 and 38), y = sum over signs and slices of
    +-2^(2 k) times the reading, whose noise is one Gaussian per weight with the readings' summed variance
    sigma^2 sum 4^(2 k), drawn from the key's REFERENCE and NOW streams; floored at 1e-4 of a full-scale weight."""
    device = dataclasses.replace(PCM, drift="constant", drift_nu_mean=0.06, drift_nu_std=0.0)
    levels = _levels((2, 2, 5, 3))
    config = _only(device, drift=True, drift_time_s=86400.0, output_noise=True, drift_compensation=True)
    gain = program_group(levels, 2, config, 31).gain
    c = (86420.0 / 20.0) ** -0.06
    sigma = 0.06 * 25.0 / _PCM_DELTA
    y = np.einsum("sk,skrc->rc", np.array([[1.0, 4.0], [-1.0, -4.0]]), levels.astype(np.float64))
    noise = sigma * math.sqrt(2 * (1 + 16))

    def readout(values: np.ndarray, stream: int) -> float:
        z = np.empty(values.size, np.float32)
        kernels.gaussians(np.uint64(draw_key(np.uint64(31), stream)), np.uint64(0), z)
        return max(float(np.abs(values + noise * z.reshape(values.shape)).mean()), 1e-4 * 3 * 5)

    assert gain == pytest.approx(readout(y, REFERENCE) / readout(c * y, NOW), rel=1e-6)
    quiet = dataclasses.replace(config, output_noise=False)
    assert program_group(levels, 2, quiet, 31).gain == pytest.approx(1 / c, rel=1e-6)
    assert program_group(levels, 2, dataclasses.replace(quiet, drift=False), 31).gain == 1.0
    # nothing to read: the statistic's floor (aihwkit clamps at 1e-4), not a division by zero
    assert program_group(np.zeros_like(levels), 2, quiet, 31).gain == 1.0


def test_compensation_does_not_move_the_other_draws() -> None:
    """The read-outs are drawn last: the arrays (but for the gain) and ADC offsets are the same with compensation on
    or off."""
    levels = _levels((2, 2, 32, 48))
    config = AnalogConfig(device=PCM, drift_time_s=3600.0, adc_offset_lsb=0.3)
    on = program_group(levels, 2, config, np.random.default_rng(2))
    off = program_group(levels, 2, dataclasses.replace(config, drift_compensation=False), np.random.default_rng(2))
    np.testing.assert_allclose(on.conductance, on.gain * off.conductance, rtol=1e-6)
    assert np.array_equal(on.adc_offsets, off.adc_offsets)
    assert off.gain == 1.0 and on.gain > 1.0


@pytest.mark.parametrize(("g_us", "t_s"), [(12.5, 3600.0), (25.0, 0.0), (2.0, 86400.0), (0.5, 3.15576e7)])
def test_pcm_flicker_noise_spread(g_us: float, t_s: float) -> None:
    """aihwkit's accumulated 1/f noise: relative sigma Q_s sqrt(ln((t + t_read) / (2 t_read))), Q_s = 0.0088 /
    (g / g_max)^0.65 (capped at 0.2: 0.5 uS is past the cap), at t0 too; through program_group with only it on, at
    level 0 of a device whose g_min is the conductance under test (or level 3 at g_max)."""
    sigma = _aihwkit_flicker_sigma(g_us, t_s)
    assert float(flicker_sigma(np.array([g_us]), t_s, PCM)[0]) == pytest.approx(sigma, rel=1e-12)
    device = dataclasses.replace(PCM, g_min_us=g_us) if g_us < 25 else PCM
    levels = np.full((1, 1, 1, 100_000), 0 if g_us < 25 else 3, np.uint8)
    config = _only(device, flicker_noise=True, drift_time_s=t_s)
    g = program_group(levels, 2, config, 7).conductance.astype(np.float64) * level_step_us(2, device)
    relative = (g + device.g_min_us) / g_us - 1
    assert g.min() >= -device.g_min_us - 1e-6  # floored at 0 uS
    if g_us > 1:  # far from the clamp at 0
        assert abs(relative.std() - sigma) < _std_tolerance(sigma, relative.size)
    assert not AnalogConfig(device=RRAM).flickers  # no 1/f noise for a device without the PCM model


def test_stuck_counts_are_binomial_and_disjoint() -> None:
    """Cells at level 1 (neither end, so a stuck one shows): the counts are binomial, a cell is never stuck both
    ways (the stuck total is a binomial of on + off), and the counts are the cells read at the ends."""
    shape, on, off = (4, 4, 128, 512), 0.01, 0.03
    n = math.prod(shape)
    group = program_group(np.ones(shape, np.uint8), 2, _only(stuck_on_rate=on, stuck_off_rate=off), 8)
    counts = (np.count_nonzero(group.conductance == 3), np.count_nonzero(group.conductance == 0))
    assert counts == (group.stuck_on, group.stuck_off)
    for count, rate in zip(counts, (on, off), strict=True):
        assert abs(count - n * rate) < 4 * math.sqrt(n * rate * (1 - rate))
    assert abs(sum(counts) - n * (on + off)) < 4 * math.sqrt(n * (on + off) * (1 - on - off))


def test_stuck_cells_read_at_the_ends_of_the_range() -> None:
    """The stream pinned: cell n is stuck on where uniform(draw_key(key, STUCK), n) < on, off in the next off."""
    levels = _levels((2, 2, 64, 64))
    group = program_group(levels, 2, _only(stuck_on_rate=0.05, stuck_off_rate=0.05), 9)
    key = np.uint64(draw_key(np.uint64(9), STUCK))
    u = np.array([uniform(key, np.uint64(n)) for n in range(levels.size)]).reshape(levels.shape)
    expected = np.where(u < 0.05, 3, np.where(u < 0.1, 0, levels)).astype(np.float32)
    assert np.array_equal(group.conductance, expected)
    assert (group.stuck_on, group.stuck_off) == (np.count_nonzero(u < 0.05), np.count_nonzero((u >= 0.05) & (u < 0.1)))


def _uniform_factor(rows: int, cols: int, rg: float) -> np.ndarray:
    """1 - rG (sum_{m=0}^{j} (cols - m) + sum_{s=i}^{rows-1} (s + 1)) for an array of equal conductances G."""
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    row_drop = (j + 1) * cols - j * (j + 1) / 2
    column_rise = (rows * (rows + 1) - i * (i + 1)) / 2
    return 1 - rg * (row_drop + column_rise)


def test_ir_drop_on_a_uniform_array_is_the_closed_form() -> None:
    rows, cols, g = 16, 24, 25.0
    factor = ir_drop_attenuation(np.full((2, rows, cols), g), 0.35)
    expected = _uniform_factor(rows, cols, 0.35 * g * 1e-6)
    assert np.abs(factor - expected).max() < 1e-12
    blocks = ir_drop_attenuation(np.full((rows, cols), g), 0.35, array_cols=8)
    assert np.abs(blocks - np.tile(_uniform_factor(rows, 8, 0.35 * g * 1e-6), 3)).max() < 1e-12
    assert not ir_drop_attenuation(np.full((64, 64), 1e5), 0.35).any()  # a drop past the supply clips to 0


def test_ir_drop_matches_the_segment_currents() -> None:
    """Any array: sum each wire segment's current directly, as the model states it."""
    g = np.random.default_rng(10).random((5, 7)) * 40
    current = g * 1e-6
    expected = np.empty_like(g)
    for i in range(5):
        for j in range(7):
            drop = sum(current[i, m:].sum() for m in range(j + 1))
            rise = sum(current[: s + 1, j].sum() for s in range(i, 5))
            expected[i, j] = 1 - 2.0 * (drop + rise)
    np.testing.assert_allclose(ir_drop_attenuation(g, 2.0), expected, rtol=1e-12)


def test_ir_drop_in_level_units() -> None:
    """A uniform group at level 3: the arrays read (g_max a - g_min) / delta, a per 64-column array."""
    levels = np.full((1, 1, 32, 128), 3, np.uint8)
    group = program_group(levels, 2, _only(ir_drop=True), np.random.default_rng(0), array_cols=64)
    factor = np.tile(_uniform_factor(32, 64, PCM.wire_ohm * 25.0 * 1e-6), 2)
    np.testing.assert_allclose(group.conductance[0, 0], 25.0 * factor / _PCM_DELTA, rtol=1e-5)


def test_adc_offsets_have_the_configured_spread() -> None:
    group = program_group(_levels((2, 4, 8, 5000)), 2, _only(adc_offset_lsb=0.5), np.random.default_rng(11))
    assert group.adc_offsets.shape == (2, 4, 5000) and group.adc_offsets.dtype == np.float32
    assert abs(group.adc_offsets.std() - 0.5) < _std_tolerance(0.5, group.adc_offsets.size)


def test_columns_read_by_one_adc_share_its_offset() -> None:
    """100 columns in arrays of 64, 8 columns per ADC, interleaved: column c of an array on its ADC c mod 8, so
    ADCs 0-7 read the first array and 8-15 the second's 36 columns."""
    levels = _levels((1, 2, 4, 100))
    group = program_group(levels, 2, _only(adc_offset_lsb=1.0), np.random.default_rng(12), array_cols=64, adc_columns=8)
    adc = [c % 8 if c < 64 else 8 + (c - 64) % 8 for c in range(100)]
    for s in range(2):
        offsets = group.adc_offsets[0, s]
        per_adc = [offsets[[c for c in range(100) if adc[c] == k]] for k in range(16)]
        assert all((values == values[0]).all() for values in per_adc)
        assert len({float(values[0]) for values in per_adc}) == 16


def test_same_seed_same_arrays_other_seed_other_arrays() -> None:
    levels = _levels((2, 4, 64, 96))
    config = AnalogConfig(device=PCM, verify_iterations=1, drift_time_s=3600.0, adc_offset_lsb=0.3)
    first, again, other = (
        program_group(levels, 2, config, np.random.default_rng(seed), array_cols=64) for seed in (1, 1, 2)
    )
    assert first.conductance.tobytes() == again.conductance.tobytes()
    assert first.adc_offsets.tobytes() == again.adc_offsets.tobytes() and first.gain == again.gain != 1.0
    assert first.conductance.tobytes() != other.conductance.tobytes()
    assert first.adc_offsets.tobytes() != other.adc_offsets.tobytes()


def test_a_config_with_an_impossible_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="analog config: drift_time_s must be a number of seconds >= 0, got -1"):
        AnalogConfig(device=PCM, drift_time_s=-1)
    with pytest.raises(ValueError, match="analog config: stuck_off_rate must be a fraction, on \\+ off <= 1"):
        AnalogConfig(device=PCM, stuck_on_rate=0.6, stuck_off_rate=0.6)
    assert AnalogConfig(device=PCM).stuck_rates == (PCM.stuck_on_rate, PCM.stuck_off_rate)


def test_pcm_has_no_other_static_term() -> None:
    """pcm with programming error, drift and 1/f noise off (IR drop and compensation off too): every other switch
    on, the arrays hold their exact levels: nothing else changes a conductance."""
    levels = _levels((2, 4, 64, 100))
    config = AnalogConfig(
        device=PCM,
        programming_noise=False,
        drift=False,
        flicker_noise=False,
        ir_drop=False,
        drift_compensation=False,
        drift_time_s=86400.0,
    )
    group = program_group(levels, 2, config, np.random.default_rng(0))
    assert np.array_equal(group.conductance, levels.astype(np.float32)) and group.gain == 1.0
    assert not config.is_ideal  # the output noise is still on
    assert dataclasses.replace(config, output_noise=False).is_ideal


@pytest.mark.parametrize("switch", _SWITCHES)
def test_each_switch_removes_its_term(switch: str) -> None:
    """Every effect on (pcm-rasch2023 at 1 day, which has them all) but one: the arrays or the read sigmas differ
    from those with all on exactly where that term acts, and equal them everywhere else."""
    device = DEVICES["pcm-rasch2023"]
    levels = _levels((2, 2, 32, 40))
    on = AnalogConfig(device=device, drift_time_s=86400.0, drift_compensation=False)
    off = dataclasses.replace(on, **{switch: False})
    sigmas_on, sigmas_off = on.read_sigmas(2), off.read_sigmas(2)
    if switch in ("read_noise", "output_noise"):
        index = 0 if switch == "read_noise" else 1
        assert sigmas_on[index] > 0 and sigmas_off[index] == 0 and sigmas_off[1 - index] == sigmas_on[1 - index]
        return
    assert sigmas_off == sigmas_on
    only = program_group(levels, 2, _only(device, **{switch: True, "drift_time_s": 86400.0}), np.random.default_rng(3))
    if switch == "drift_spread":  # the spread acts through drift: with drift on, spread off gives every cell mu
        with_drift = _only(device, drift=True, drift_time_s=86400.0)
        spread = program_group(levels, 2, dataclasses.replace(with_drift, drift_spread=True), np.random.default_rng(3))
        mean = program_group(levels, 2, with_drift, np.random.default_rng(3))
        assert not np.array_equal(spread.conductance, mean.conductance)
        mu = np.array([_aihwkit_nu_mu_sigma(level * _PCM_DELTA)[0] for level in range(4)])
        factor = (86420.0 / 20.0) ** -mu[levels]
        np.testing.assert_allclose(mean.conductance, levels * factor, rtol=1e-5)
        return
    assert not np.array_equal(only.conductance, levels.astype(np.float32))
    neither = program_group(levels, 2, _only(device, drift_time_s=86400.0), np.random.default_rng(3))
    assert np.array_equal(neither.conductance, levels.astype(np.float32))
