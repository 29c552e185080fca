"""Device presets: their numbers against the sources they cite, the chip presets they serve, and clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cimc.ir.target.chip import DEVICES as CHIP_DEVICES
from cimc.ir.target.chip import PRESETS, load_chip
from cimc.runtime.analog import level_step_us, programming_sigma_us
from cimc.runtime.devices import DEVICES, PCM, RRAM, device, for_chip_device


def test_presets_are_named_and_sourced() -> None:
    assert set(DEVICES) == {"pcm", "pcm-rasch2023", "rram", "sram", "nor-flash", "memristor-2048"}
    for name, preset in DEVICES.items():
        assert preset.name == name and device(name) is preset
        assert preset.source and preset.description
        assert 0 <= preset.g_min_us < preset.g_max_us


def test_pcm_is_aihwkits_pcm_like_noise_model() -> None:
    """aihwkit 1.2 PCMLikeNoiseModel: g_max 25 uS, g_min 0 (SinglePairConductanceConverter), sigma(g) = 0.26348 +
    1.9650 x - 1.1731 x^2 (x = g / g_max), t0 20 s, t_read 250 ns; IOParameters.out_noise 0.06 and no w_noise."""
    assert (PCM.g_max_us, PCM.g_min_us, PCM.drift, PCM.drift_t0_s, PCM.t_read_s) == (25.0, 0.0, "pcm", 20.0, 250e-9)
    assert (PCM.read_noise_us, PCM.output_noise_us) == (0.0, 0.06 * 25.0)
    g = np.array([0.0, 12.5, 25.0])
    expected = [0.26348, 0.26348 + 1.9650 / 2 - 1.1731 / 4, 0.26348 + 1.9650 - 1.1731]
    np.testing.assert_allclose(programming_sigma_us(g, PCM, 0), expected, rtol=1e-12)


def test_pcm_rasch2023_adds_only_the_papers_read_and_output_noise() -> None:
    """Rasch et al. 2023's standard setting (aihwkit StandardHWATrainingPreset): w_noise 0.0175 of type PCM_READ
    and out_noise 0.04, on the pcm cells; every other number as pcm."""
    rasch = device("pcm-rasch2023")
    assert (rasch.read_noise_us, rasch.read_noise_scaling, rasch.output_noise_us) == (
        pytest.approx(0.0175 * 25.0),
        "conductance",
        pytest.approx(0.04 * 25.0),
    )
    same = ("name", "description", "source", "read_noise_us", "read_noise_scaling", "output_noise_us")
    assert dataclasses.replace(rasch, **{f: getattr(PCM, f) for f in same}) == PCM


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
    assert for_chip_device("pcm") is PCM  # a chip's PCM is aihwkit's; pcm-rasch2023 is asked for by name


def test_unknown_device_names_the_presets_and_the_closest() -> None:
    names = "presets are pcm, pcm-rasch2023, rram, sram"
    with pytest.raises(ValueError, match=rf"unknown device 'pcn': did you mean 'pcm'\? {names}"):
        device("pcn")
    with pytest.raises(ValueError) as error:
        device("tape")
    assert "did you mean" not in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("verify_factor", 1.5),
        ("g_min_us", 25.0),
        ("g_min_us", -1.0),
        ("drift", "log"),
        ("read_noise_scaling", "linear"),
        ("stuck_off_rate", 1.5),
        ("max_levels", 1),
    ],
)
def test_a_device_with_an_impossible_number_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"device 'pcm': {field} must be"):
        dataclasses.replace(PCM, **{field: value})
