"""Static analog effects of programmed arrays, each against its closed form: levels and their step, the spread of
programmed conductances with and without program-and-verify, the drift exponent recovered from two reads, global
drift compensation, stuck cell counts, IR drop on a uniform array; the ideal configuration is exact and every
result is a function of the seed."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from cimc.runtime.analog import (
    AnalogConfig,
    cell_conductance,
    compensation_gain,
    drift,
    drift_exponents,
    flicker_noise,
    ir_drop_attenuation,
    level_step_us,
    program,
    program_group,
    programming_sigma_us,
    read_sigmas,
    stuck_cells,
)
from cimc.runtime.devices import DEVICES, PCM, RRAM, SRAM, Device

_PCM_DELTA = (25.0 - 0.25) / 3  # 2-bit PCM cells: g_min = 25 / 100


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
    np.testing.assert_allclose(g, [0.25, 0.25 + _PCM_DELTA, 0.25 + 2 * _PCM_DELTA, 25.0], rtol=1e-15)
    assert g.dtype == np.float64


def test_a_device_with_too_few_levels_is_refused() -> None:
    with pytest.raises(
        ValueError, match="device 'rram' has 16 conductance levels: 5-bit cells need 32; use cells of at most 4 bits"
    ):
        level_step_us(5, RRAM)
    with pytest.raises(ValueError, match="device 'sram' has 2 conductance levels"):
        program_group(_levels((1, 1, 2, 2)), 2, AnalogConfig.ideal(SRAM), np.random.default_rng(0))


def test_read_sigmas_are_in_level_units() -> None:
    cell, column = read_sigmas(PCM, 2)
    assert cell == pytest.approx(0.0175 * 25 / _PCM_DELTA) and column == pytest.approx(0.04 * 25 / _PCM_DELTA)
    # with 8-bit DACs the unit is one level at 1/255 of the full read voltage: the per-cell sigma (per DAC step of
    # its input) stays, the summation noise (a current at full voltage) is 255 units
    cell8, column8 = read_sigmas(PCM, 2, dac_bits=8)
    assert cell8 == cell and column8 == pytest.approx(255 * column)


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


def test_programming_spread_per_level_is_the_devices_sigma() -> None:
    """Levels 1-3 of 2-bit PCM (far from the floor at 0 S): the sample spread of each level's cells in level units
    is sigma(g) / delta, sigma from aihwkit's polynomial."""
    levels = np.repeat(np.arange(1, 4, dtype=np.uint8), 40_000).reshape(1, 1, 3, 40_000)
    group = program_group(levels, 2, _only(programming=True), np.random.default_rng(1))
    for level in range(1, 4):
        cells = group.conductance[0, 0, level - 1] - level
        sigma = float(programming_sigma_us(np.array([0.25 + level * _PCM_DELTA]), PCM, 0)[0]) / _PCM_DELTA
        assert abs(cells.mean()) < 5 * sigma / math.sqrt(cells.size)
        assert abs(cells.std() - sigma) < _std_tolerance(sigma, cells.size)


def test_each_verify_iteration_cuts_the_error_by_the_verify_factor() -> None:
    g = np.full(100_000, 20.0)
    first = program(g, PCM, 0, np.random.default_rng(3)) - g
    verified = program(g, PCM, 3, np.random.default_rng(3)) - g
    np.testing.assert_allclose(verified, PCM.verify_factor**3 * first, rtol=1e-12, atol=1e-12)
    sigma = float(programming_sigma_us(np.array([20.0]), PCM, 3)[0])
    assert sigma == pytest.approx(0.7**3 * (0.26348 + 1.9650 * 0.8 - 1.1731 * 0.64))
    assert abs(verified.std() - sigma) < _std_tolerance(sigma, verified.size)


def test_programmed_conductance_is_never_negative() -> None:
    g = program(np.zeros(10_000), PCM, 0, np.random.default_rng(0))
    assert g.min() == 0.0 and (g > 0).mean() == pytest.approx(0.5, abs=0.03)


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
    reads = [
        program_group(levels, 2, _only(drift_time_s=t), np.random.default_rng(5)).conductance.astype(np.float64)
        * _PCM_DELTA
        + 0.25
        for t in times
    ]
    slope = np.log(reads[1] / reads[0]) / math.log((times[1] + 20.0) / (times[0] + 20.0))
    expected, spread = _folded_normal(mean, std)
    assert abs(-slope.mean() - expected) < 5 * spread / math.sqrt(slope.size)
    assert abs(slope.std() - spread) < 0.05 * spread


def test_drift_is_a_power_law_from_t0() -> None:
    g = np.array([1.0, 10.0, 25.0])
    nu = np.array([0.0, 0.05, 0.1])
    np.testing.assert_allclose(drift(g, nu, 3600.0, PCM), g * (3620.0 / 20.0) ** -nu, rtol=1e-12)
    assert np.array_equal(drift(g, nu, 0.0, PCM), g)
    with pytest.raises(ValueError, match="drift time must be >= 0"):
        drift(g, nu, -1.0, PCM)


def test_constant_drift_exponents_are_normal() -> None:
    device = dataclasses.replace(PCM, drift="constant", drift_nu_mean=0.06, drift_nu_std=0.01)
    nu = drift_exponents(np.full(50_000, 10.0), device, np.random.default_rng(2))
    assert abs(nu.mean() - 0.06) < 5 * 0.01 / math.sqrt(nu.size)
    assert abs(nu.std() - 0.01) < _std_tolerance(0.01, nu.size)
    assert not drift_exponents(np.ones(3), RRAM, np.random.default_rng(2)).any()


@pytest.mark.parametrize("nu_std", [0.0, 0.02])
def test_compensation_restores_the_mean_of_a_drifted_group(nu_std: float) -> None:
    """Drift exponents ~ N(0.06, nu_std), read 1 day after t0: without compensation the mean level is the closed form
    mean((g c - g_min) / delta) (c = ((t + t0) / t0)^-0.06 when nu_std = 0); with it the mean is the levels' mean."""
    device = dataclasses.replace(PCM, drift="constant", drift_nu_mean=0.06, drift_nu_std=nu_std)
    levels = _levels((2, 2, 64, 64))
    drifted = program_group(levels, 2, _only(device, drift_time_s=86400.0), np.random.default_rng(4))
    compensated = program_group(
        levels, 2, _only(device, drift_time_s=86400.0, drift_compensation=True), np.random.default_rng(4)
    )
    if nu_std == 0.0:
        g = 0.25 + levels * _PCM_DELTA
        expected = ((g * (86420.0 / 20.0) ** -0.06 - 0.25) / _PCM_DELTA).mean()
        assert drifted.conductance.mean() == pytest.approx(expected, rel=1e-6)
    assert drifted.conductance.mean() < 0.7 * levels.mean()
    assert compensated.conductance.mean() == pytest.approx(levels.mean(), rel=1e-6)
    assert compensated.gain == pytest.approx(levels.mean() / drifted.conductance.mean(), rel=1e-6)


def test_compensation_gain_closed_form() -> None:
    assert compensation_gain(np.array([3.0, 5.0]), np.array([2.0, 3.0]), 1.0) == pytest.approx(6.0 / 3.0)
    assert compensation_gain(np.ones(4), np.ones(4), 1.0) == 1.0  # nothing above g_min to measure


def test_pcm_flicker_noise_spread() -> None:
    """aihwkit's accumulated 1/f noise at 1 hour: relative sigma Q_s sqrt(ln((t + t_read) / (2 t_read))), Q_s =
    0.0088 / (g / g_max)^0.65 below its cap of 0.2."""
    g = np.full(100_000, 12.5)
    noisy = flicker_noise(g, g, 3600.0, PCM, np.random.default_rng(6))
    sigma = 0.0088 / 0.5**0.65 * math.sqrt(math.log((3620.0 + 250e-9) / 500e-9))
    relative = noisy / g - 1
    assert abs(relative.std() - sigma) < _std_tolerance(sigma, g.size)
    rng = np.random.default_rng(6)
    assert flicker_noise(g, g, 3600.0, RRAM, rng) is g
    assert rng.random() == np.random.default_rng(6).random()  # no draw for a device without 1/f noise


def test_stuck_counts_are_binomial_and_disjoint() -> None:
    shape, on, off = (4, 4, 128, 512), 0.01, 0.03
    n = math.prod(shape)
    mask = stuck_cells(shape, on, off, np.random.default_rng(8))
    for count, rate in ((np.count_nonzero(mask == 1), on), (np.count_nonzero(mask == -1), off)):
        assert abs(count - n * rate) < 4 * math.sqrt(n * rate * (1 - rate))
    # a cell counted both ways would leave the stuck total short of a binomial(n, on + off)
    assert abs(np.count_nonzero(mask) - n * (on + off)) < 4 * math.sqrt(n * (on + off) * (1 - on - off))


def test_stuck_cells_read_at_the_ends_of_the_range() -> None:
    levels = _levels((2, 2, 64, 64))
    config = _only(stuck_on_rate=0.05, stuck_off_rate=0.05)
    mask = stuck_cells(levels.shape, 0.05, 0.05, np.random.default_rng(9))
    group = program_group(levels, 2, config, np.random.default_rng(9))
    expected = np.where(mask == 1, 3, np.where(mask == -1, 0, levels)).astype(np.float32)
    assert np.array_equal(group.conductance, expected)
    assert (group.stuck_on, group.stuck_off) == (np.count_nonzero(mask == 1), np.count_nonzero(mask == -1))


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
    np.testing.assert_allclose(group.conductance[0, 0], (25.0 * factor - 0.25) / _PCM_DELTA, rtol=1e-5)


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
    assert first.adc_offsets.tobytes() == again.adc_offsets.tobytes() and first.gain == again.gain
    assert first.conductance.tobytes() != other.conductance.tobytes()
    assert first.adc_offsets.tobytes() != other.adc_offsets.tobytes()


def test_a_config_with_an_impossible_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="analog config: drift_time_s must be a number of seconds >= 0, got -1"):
        AnalogConfig(device=PCM, drift_time_s=-1)
    with pytest.raises(ValueError, match="analog config: stuck_off_rate must be a fraction, on \\+ off <= 1"):
        AnalogConfig(device=PCM, stuck_on_rate=0.6, stuck_off_rate=0.6)
    assert AnalogConfig(device=PCM).stuck_rates == (PCM.stuck_on_rate, PCM.stuck_off_rate)
