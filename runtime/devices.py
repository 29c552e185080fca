"""Memory cell technologies as the simulator models them: conductance range, levels, programming error, read and
summation noise, drift, stuck cells, write pulse and wire resistance, every number with its source.

Conductances are in microsiemens (uS). A cell of ``cell_bits`` bits holds levels ``0 .. 2^cell_bits - 1`` at
``g_min + level * delta`` (``cimc.runtime.analog``), ``g_min = g_max / on_off_ratio``. "estimate" in a preset's
``source`` marks a number no cited work gives; those are rounded, not tuned.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

#: How a device's conductance drifts after programming (``cimc.runtime.analog.drift_exponents``).
DRIFT_MODELS = ("pcm", "constant", "none")

#: The wire resistance of one cell-pitch segment of a row or column wire: 0.35 ohm, aihwkit's default
#: ``IOParameters.ir_drop_g_ratio`` (its docstring: "0.35 Ohm wire resistance"). Used by every preset.
_WIRE_OHM = 0.35

#: Rasch et al., "Hardware-aware training for large-scale and diverse deep learning inference workloads using
#: in-memory computing-based accelerators", Nature Communications 2023, standard configuration: output (summation)
#: noise 0.04 and per-read weight noise 0.0175, both relative to one cell at g_max under a full input.
_RASCH_OUT_NOISE = 0.04
_RASCH_W_NOISE = 0.0175


def require(owner: str, settings: object, checks: Iterable[tuple[str, bool, str]]) -> None:
    """Refuse the first setting whose check fails: a one-line ValueError ``{owner}: {field} must be {rule}, got
    {value}``."""
    for field, holds, rule in checks:
        if not holds:
            raise ValueError(f"{owner}: {field} must be {rule}, got {getattr(settings, field)!r}")


@dataclass(frozen=True, kw_only=True)
class Device:
    """A memory cell technology as the simulator models it, every number with its source.

    ``prog_noise_us`` are the coefficients of the programming-error sigma as a polynomial of ``g / g_max``
    (aihwkit's ``prog_coeff`` convention, in uS at this ``g_max``); ``verify_factor`` is what one more closed-loop
    program-and-verify iteration multiplies that sigma by. ``drift`` names the drift model: ``"pcm"`` (aihwkit's
    state-dependent exponent and accumulated 1/f noise), ``"constant"`` (an exponent ~ N(``drift_nu_mean``,
    ``drift_nu_std``) per cell) or ``"none"``. ``max_levels`` is the most conductance targets one cell is programmed
    to: a chip's ``2^cell_bits`` must not exceed it.
    """

    name: str
    description: str
    source: str
    g_max_us: float
    on_off_ratio: float
    max_levels: int
    prog_noise_us: tuple[float, ...]
    verify_factor: float
    read_noise_us: float
    summation_noise_us: float
    drift: str
    drift_nu_mean: float
    drift_nu_std: float
    drift_t0_s: float
    t_read_s: float
    stuck_on_rate: float
    stuck_off_rate: float
    write_pulse_s: float
    wire_ohm: float

    def __post_init__(self) -> None:
        checks = (
            ("g_max_us", self.g_max_us > 0, "a number > 0"),
            ("on_off_ratio", self.on_off_ratio > 1, "a number > 1"),
            ("max_levels", self.max_levels >= 2, "an integer >= 2"),
            ("prog_noise_us", len(self.prog_noise_us) >= 1, "at least one coefficient"),
            ("verify_factor", 0 < self.verify_factor <= 1, "a number in (0, 1]"),
            ("read_noise_us", self.read_noise_us >= 0, "a number >= 0"),
            ("summation_noise_us", self.summation_noise_us >= 0, "a number >= 0"),
            ("drift", self.drift in DRIFT_MODELS, "one of " + ", ".join(DRIFT_MODELS)),
            ("drift_nu_std", self.drift_nu_std >= 0, "a number >= 0"),
            ("drift_t0_s", self.drift_t0_s > 0, "a number > 0"),
            ("t_read_s", self.t_read_s > 0, "a number > 0"),
            ("stuck_on_rate", 0 <= self.stuck_on_rate <= 1, "a fraction in [0, 1]"),
            ("stuck_off_rate", 0 <= self.stuck_off_rate <= 1 - self.stuck_on_rate, "a fraction, on + off <= 1"),
            ("write_pulse_s", self.write_pulse_s > 0, "a number > 0"),
            ("wire_ohm", self.wire_ohm >= 0, "a number >= 0"),
        )
        require(f"device '{self.name}'", self, checks)

    @property
    def g_min_us(self) -> float:
        """The off-state conductance, ``g_max / on_off_ratio`` (uS)."""
        return self.g_max_us / self.on_off_ratio


PCM = Device(
    name="pcm",
    description="Phase-change memory with the statistics of aihwkit's PCM inference noise model",
    source=(
        "aihwkit PCMLikeNoiseModel (IBM, src/aihwkit/inference/noise/pcm.py), fitted on PCM measurements in "
        "Nandakumar et al., ICECS 2019 and Joshi et al., 'Accurate deep neural network inference using "
        "computational phase-change memory', Nature Communications 11, 2473 (2020): g_max 25 uS, programming sigma "
        "polynomial [0.26348, 1.9650, -1.1731] uS, state-dependent drift exponent and accumulated 1/f noise, "
        "t0 20 s, t_read 250 ns. Read noise 0.0175 x g_max and summation noise 0.04 x g_max: Rasch et al., Nature "
        "Communications 2023, standard configuration. on/off ratio 100 (estimate: aihwkit maps to g_min = 0). "
        "max_levels 256: conductance is analog and HERMES programs 8-bit targets (Le Gallo et al., Nature "
        "Electronics 2023); the programming error, not the level count, sets the precision reached. "
        "verify_factor 0.7 per extra iteration (estimate). No stuck cells by default (aihwkit models none; give "
        "rates to study them). "
        "Write pulse 1 us (estimate). Wire 0.35 ohm per cell (aihwkit IOParameters.ir_drop_g_ratio default)."
    ),
    g_max_us=25.0,
    on_off_ratio=100.0,
    max_levels=256,
    prog_noise_us=(0.26348, 1.9650, -1.1731),
    verify_factor=0.7,
    read_noise_us=_RASCH_W_NOISE * 25.0,
    summation_noise_us=_RASCH_OUT_NOISE * 25.0,
    drift="pcm",
    drift_nu_mean=0.0,
    drift_nu_std=0.0,
    drift_t0_s=20.0,
    t_read_s=250e-9,
    stuck_on_rate=0.0,
    stuck_off_rate=0.0,
    write_pulse_s=1e-6,
    wire_ohm=_WIRE_OHM,
)

RRAM = Device(
    name="rram",
    description="Resistive RAM (HfOx 1T1R) with the programming statistics of NeuRRAM",
    source=(
        "aihwkit ReRamWan2022NoiseModel (IBM, src/aihwkit/inference/noise/reram.py), fitted on Wan et al., 'A "
        "compute-in-memory chip based on resistive random-access memory', Nature 608, 504 (2022): g_max 40 uS, "
        "programming sigma polynomial [0.348, 16.030, -43.853, 45.393, -16.815] uS (1 s after programming); "
        "aihwkit notes ReRAM shows no power-law drift (drift 'none') and about 1% read noise (0.01 x g_max). "
        "Summation noise 0.04 x g_max: Rasch et al., Nature Communications 2023, standard configuration. "
        "on/off ratio 10 (estimate). max_levels 16 (estimate: 4-bit multi-level HfOx cells). verify_factor 0.7 "
        "(estimate). No stuck cells by default (give rates to study them). Write pulse 100 ns (estimate). Wire "
        "0.35 ohm per cell (aihwkit IOParameters.ir_drop_g_ratio default)."
    ),
    g_max_us=40.0,
    on_off_ratio=10.0,
    max_levels=16,
    prog_noise_us=(0.348, 16.030, -43.853, 45.393, -16.815),
    verify_factor=0.7,
    read_noise_us=0.01 * 40.0,
    summation_noise_us=_RASCH_OUT_NOISE * 40.0,
    drift="none",
    drift_nu_mean=0.0,
    drift_nu_std=0.0,
    drift_t0_s=20.0,
    t_read_s=250e-9,
    stuck_on_rate=0.0,
    stuck_off_rate=0.0,
    write_pulse_s=100e-9,
    wire_ohm=_WIRE_OHM,
)

SRAM = Device(
    name="sram",
    description="SRAM bits switching a fixed conductance: exact cells, analog summation noise only",
    source=(
        "Mannocci et al., 'A fully integrated analogue closed-loop in-memory computing accelerator based on static "
        "random-access memory', Nature Electronics 2026: digital SRAM cells are exact (no programming error, no "
        "drift, no stuck cells, one bit per cell: max_levels 2); the error is in the analogue summation. g_max "
        "10 uS (estimate), on/off ratio 10000 (estimate: an open switch), summation noise 0.05 uS = 0.5% of one "
        "cell (estimate), no per-cell read noise (estimate). Write pulse 1 ns (estimate: one SRAM write). Wire "
        "0.35 ohm per cell (aihwkit IOParameters.ir_drop_g_ratio default)."
    ),
    g_max_us=10.0,
    on_off_ratio=10000.0,
    max_levels=2,
    prog_noise_us=(0.0,),
    verify_factor=1.0,
    read_noise_us=0.0,
    summation_noise_us=0.05,
    drift="none",
    drift_nu_mean=0.0,
    drift_nu_std=0.0,
    drift_t0_s=20.0,
    t_read_s=250e-9,
    stuck_on_rate=0.0,
    stuck_off_rate=0.0,
    write_pulse_s=1e-9,
    wire_ohm=_WIRE_OHM,
)

NOR_FLASH = Device(
    name="nor-flash",
    description="NOR flash cells holding an 8-bit weight as analog charge (Mythic analog matrix processor)",
    source=(
        "Mythic M1076 product brief (2021) and Demler, 'Mythic Multiplies in a Flash', Microprocessor Report, August "
        "2018: one 8-bit weight per flash cell (max_levels 256). Mythic publishes no device statistics: g_max 1 uS "
        "(estimate: sub-microampere cell currents), on/off ratio 1000 (estimate), programming sigma 0.004 uS = one "
        "8-bit step (estimate), read noise 0.002 uS (estimate), summation noise 0.01 uS (estimate), no drift over "
        "inference times (estimate: charge loss is a retention effect of years), no stuck cells (estimate: "
        "tested and repaired arrays), verify_factor 0.7 (estimate). Write pulse 1 us (estimate, as the "
        "mythic-m1076 chip's cell_program_pj). Wire 0.35 ohm per cell (aihwkit IOParameters.ir_drop_g_ratio "
        "default)."
    ),
    g_max_us=1.0,
    on_off_ratio=1000.0,
    max_levels=256,
    prog_noise_us=(0.004,),
    verify_factor=0.7,
    read_noise_us=0.002,
    summation_noise_us=0.01,
    drift="none",
    drift_nu_mean=0.0,
    drift_nu_std=0.0,
    drift_t0_s=20.0,
    t_read_s=250e-9,
    stuck_on_rate=0.0,
    stuck_off_rate=0.0,
    write_pulse_s=1e-6,
    wire_ohm=_WIRE_OHM,
)

MEMRISTOR_2048 = Device(
    name="memristor-2048",
    description="Memristors with 2048 conductance levels on CMOS, after their denoising protocol",
    source=(
        "Rao et al. (J. J. Yang's group), 'Thousands of conductance levels in memristors integrated on CMOS', "
        "Nature 615, 823 (2023): 2048 levels from 50 uS to 4144 uS, a 2 uS step (g_max 4144 uS, on/off ratio "
        "82.9 = 4144 / 50); their denoising brings the fluctuation below the level spacing: programming sigma 0.5 "
        "uS and read noise 0.5 uS, a quarter step each (estimate). Summation noise 1 uS (estimate), no drift "
        "(estimate), no stuck cells (estimate), verify_factor 0.7 (estimate), write pulse 100 ns (estimate). "
        "Wire 0.35 ohm per cell (aihwkit IOParameters.ir_drop_g_ratio default): at 4 mS cells the first-order IR "
        "drop of a large array is not small."
    ),
    g_max_us=4144.0,
    on_off_ratio=4144.0 / 50.0,
    max_levels=2048,
    prog_noise_us=(0.5,),
    verify_factor=0.7,
    read_noise_us=0.5,
    summation_noise_us=1.0,
    drift="none",
    drift_nu_mean=0.0,
    drift_nu_std=0.0,
    drift_t0_s=20.0,
    t_read_s=250e-9,
    stuck_on_rate=0.0,
    stuck_off_rate=0.0,
    write_pulse_s=100e-9,
    wire_ohm=_WIRE_OHM,
)

#: The device presets by name.
DEVICES: dict[str, Device] = {d.name: d for d in (PCM, RRAM, SRAM, NOR_FLASH, MEMRISTOR_2048)}

#: The chip description's ``tile.device`` (``cimc.compiler.chip.DEVICES``) -> the preset that models it; a chip
#: device absent here has no model.
_CHIP_DEVICES = {"sram": "sram", "rram": "rram", "pcm": "pcm", "nor-flash": "nor-flash"}


def device(name: str) -> Device:
    """The preset called ``name``; a ValueError naming the presets (and the closest one) otherwise."""
    if name in DEVICES:
        return DEVICES[name]
    close = difflib.get_close_matches(name, list(DEVICES), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ValueError(f"unknown device '{name}': {hint}presets are {', '.join(DEVICES)}")


def for_chip_device(chip_device: str) -> Device:
    """The preset for a chip description's ``tile.device``; a ValueError for a technology with no model here."""
    if chip_device in _CHIP_DEVICES:
        return DEVICES[_CHIP_DEVICES[chip_device]]
    raise ValueError(
        f"chip device '{chip_device}' has no device model in the simulator: pass a device preset explicitly "
        f"(one of {', '.join(DEVICES)})"
    )
