"""Device presets: their numbers against the sources they cite, the chip presets they serve, and clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cimc.compiler.chip import DEVICES as CHIP_DEVICES
from cimc.compiler.chip import PRESETS, load_chip
from cimc.runtime.analog import level_step_us, programming_sigma_us
from cimc.runtime.devices import DEVICES, PCM, RRAM, device, for_chip_device


def test_presets_are_named_and_sourced() -> None:
    assert set(DEVICES) == {"pcm", "rram", "sram", "nor-flash", "memristor-2048"}
    for name, preset in DEVICES.items():
        assert preset.name == name and device(name) is preset
        assert preset.source and preset.description
        assert preset.g_min_us == pytest.approx(preset.g_max_us / preset.on_off_ratio)


def test_pcm_is_aihwkits_pcm_like_noise_model() -> None:
    """aihwkit PCMLikeNoiseModel: g_max 25 uS, sigma(g) = 0.26348 + 1.9650 x - 1.1731 x^2 (x = g / g_max), t0 20 s,
    t_read 250 ns."""
    assert (PCM.g_max_us, PCM.drift, PCM.drift_t0_s, PCM.t_read_s) == (25.0, "pcm", 20.0, 250e-9)
    g = np.array([0.0, 12.5, 25.0])
    expected = [0.26348, 0.26348 + 1.9650 / 2 - 1.1731 / 4, 0.26348 + 1.9650 - 1.1731]
    np.testing.assert_allclose(programming_sigma_us(g, PCM, 0), expected, rtol=1e-12)


def test_rram_is_aihwkits_wan_2022_fit() -> None:
    """aihwkit ReRamWan2022NoiseModel at 1 s: sigma(x) = 0.348 + 16.030 x - 43.853 x^2 + 45.393 x^3 - 16.815 x^4 uS
    at g_max 40 uS; the fit stays positive over the whole range."""
    x = np.linspace(0.0, 1.0, 101)
    expected = 0.348 + 16.030 * x - 43.853 * x**2 + 45.393 * x**3 - 16.815 * x**4
    np.testing.assert_allclose(programming_sigma_us(x * 40.0, RRAM, 0), expected, rtol=1e-12)
    assert expected.min() > 0


def test_memristor_2048_has_a_2_us_step() -> None:
    """Rao et al. 2023: 2048 levels from 50 to 4144 uS, 2 uS apart."""
    preset = device("memristor-2048")
    assert preset.max_levels == 2048 and preset.g_min_us == pytest.approx(50.0)
    assert level_step_us(11, preset) == pytest.approx(2.0)


@pytest.mark.parametrize("chip_name", PRESETS)
def test_every_chip_preset_has_a_device_with_enough_levels(chip_name: str) -> None:
    chip = load_chip(chip_name)
    level_step_us(chip.tile.cell_bits, for_chip_device(chip.tile.device))


def test_chip_devices_map_to_presets_or_say_there_is_no_model() -> None:
    for chip_device in CHIP_DEVICES:
        if chip_device in ("fefet", "mram"):
            with pytest.raises(ValueError, match=rf"'{chip_device}' has no device model.*pass a device preset"):
                for_chip_device(chip_device)
        else:
            assert for_chip_device(chip_device) is DEVICES[chip_device]


def test_unknown_device_names_the_presets_and_the_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown device 'pcn': did you mean 'pcm'\? presets are pcm, rram, sram"):
        device("pcn")
    with pytest.raises(ValueError) as error:
        device("tape")
    assert "did you mean" not in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("verify_factor", 1.5), ("on_off_ratio", 1.0), ("drift", "log"), ("stuck_off_rate", 1.5), ("max_levels", 1)],
)
def test_a_device_with_an_impossible_number_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"device 'pcm': {field} must be"):
        dataclasses.replace(PCM, **{field: value})
