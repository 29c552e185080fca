"""Memory cell technologies as the simulator models them: conductance range, levels, programming error, per-read
cell noise and output noise, drift, stuck cells, write pulse and wire resistance, every number with its source.

Conductances are in microsiemens (uS). A cell of ``cell_bits`` bits holds levels ``0 .. 2^cell_bits - 1`` at
``g_min + level * delta`` (``cimc.runtime.analog``); ``g_min`` may be 0 (aihwkit's conductance converters map a
weight of 0 to 0 uS). "estimate" in a preset's ``source`` marks a number no cited work gives; those are rounded, not
tuned. A preset models exactly the terms its ``source`` names and no others: ``pcm`` is aihwkit's
``PCMLikeNoiseModel`` with aihwkit's default output noise, ``pcm-rasch2023`` the same cells with the read and output
noise of Rasch et al. 2023.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from dataclasses import dataclass

#: How a device's conductance drifts after programming (``cimc.runtime.analog.drift_exponent_moments``).
DRIFT_MODELS = ("pcm", "constant", "none")

#: How a cell's per-read noise scales (aihwkit's ``WeightNoiseType``, src/aihwkit/simulator/parameters/enums.py):
#: ``"constant"`` (ADDITIVE_CONSTANT: sigma ``read_noise_us`` per active cell at the full input) or ``"conductance"``
#: (PCM_READ: variance ``read_noise_us^2 |g| / g_max`` per cell at the full input, the cell's current noise;
#: src/rpucuda/rpu_forward_backward_pass.cpp, ``applyOutputWeightNoise``: ``w_noise * sqrt(sum_j |w_ij| x_j^2)``).
READ_NOISE_SCALINGS = ("constant", "conductance")

#: The wire resistance of one cell-pitch segment of a row or column wire: 0.35 ohm, aihwkit's default
#: ``IOParameters.ir_drop_g_ratio`` (its docstring: "0.35 Ohm wire resistance"). Used by every preset.
_WIRE_OHM = 0.35

#: aihwkit 1.2 ``IOParameters.out_noise = 0.06`` (src/aihwkit/simulator/parameters/io.py, line 77: "Output noise
#: strength at each output of a tile"), the default of ``InferenceRPUConfig.forward``: a Gaussian of that sigma in
#: units of the tile's weights times its (abs-max scaled) input. A device charges it to one cell at ``g_max`` under
#: the full input, which is aihwkit's figure for a tile whose largest weight is 1; the ``aihwkit`` chip's periphery
#: (``weight_units``) charges it in the layer's own weight units, as aihwkit does.
_AIHWKIT_OUT_NOISE = 0.06

#: Rasch et al., "Hardware-aware training for large-scale and diverse deep learning inference workloads using
#: in-memory computing-based accelerators", Nature Communications 14, 5282 (2023), standard configuration: output
#: noise 0.04 and per-read (short-term, output-referred) weight noise 0.0175, both in aihwkit's normalized units.
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

    ``g_min_us`` is the conductance of level 0 (0 is allowed), ``g_max_us`` that of the top level.
    ``prog_noise_us`` are the coefficients of the programming-error sigma as a polynomial of ``g / g_max``
    (aihwkit's ``prog_coeff`` convention, in uS at this ``g_max``); ``verify_factor`` is what one more closed-loop
    program-and-verify iteration multiplies that sigma by. ``read_noise_us`` is the sigma of each active cell's
    noise on every read at the full input voltage (aihwkit's ``w_noise`` times ``g_max``: it scales with the input
    on the cell's row), ``read_noise_scaling`` how it depends on the cell's conductance (``READ_NOISE_SCALINGS``);
    ``output_noise_us`` the sigma of the noise on every output of every read, a current at the full input voltage
    (aihwkit's ``out_noise`` times ``g_max``). ``drift`` names the drift model: ``"pcm"`` (aihwkit's state-dependent
    exponent and accumulated 1/f noise), ``"constant"`` (an exponent ~ N(``drift_nu_mean``, ``drift_nu_std``) per
    cell) or ``"none"``. ``max_levels`` is the most conductance targets one cell is programmed to: a chip's
    ``2^cell_bits`` must not exceed it.
    """

    name: str
    description: str
    source: str
    g_max_us: float
    g_min_us: float
    max_levels: int
    prog_noise_us: tuple[float, ...]
    verify_factor: float
    read_noise_us: float
    read_noise_scaling: str
    output_noise_us: float
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
            ("g_min_us", 0 <= self.g_min_us < self.g_max_us, "a number >= 0 and below g_max_us"),
            ("max_levels", self.max_levels >= 2, "an integer >= 2"),
            ("prog_noise_us", len(self.prog_noise_us) >= 1, "at least one coefficient"),
            ("verify_factor", 0 < self.verify_factor <= 1, "a number in (0, 1]"),
            ("read_noise_us", self.read_noise_us >= 0, "a number >= 0"),
            ("read_noise_scaling", self.read_noise_scaling in READ_NOISE_SCALINGS, "one of constant, conductance"),
            ("output_noise_us", self.output_noise_us >= 0, "a number >= 0"),
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


PCM = Device(
    name="pcm",
    description="Phase-change memory as aihwkit 1.2's PCMLikeNoiseModel, with aihwkit's default output noise",
    source=(
        "aihwkit 1.2 PCMLikeNoiseModel (IBM, src/aihwkit/inference/noise/pcm.py), fitted on PCM measurements in "
        "Nandakumar et al., ICECS 2019 and Joshi et al., 'Accurate deep neural network inference using "
        "computational phase-change memory', Nature Communications 11, 2473 (2020), at its defaults (prog_noise_scale, "
        "read_noise_scale and drift_scale 1): g_max 25 uS (converter default), programming sigma polynomial "
        "[0.26348, 1.9650, -1.1731] uS (pcm.py line 89), state-dependent drift exponent and its spread (lines "
        "126-128), accumulated 1/f noise (lines 148-152), t0 20 s, t_read 250 ns (lines 69-70). g_min 0 uS: "
        "SinglePairConductanceConverter's default (src/aihwkit/inference/converter/conductance.py line 38). Output "
        "noise 0.06 x g_max per output and read: aihwkit IOParameters.out_noise default (src/aihwkit/simulator/"
        "parameters/io.py line 77). No per-read cell noise: IOParameters.w_noise default 0 (io.py line 141). "
        "max_levels 256: conductance is analog and HERMES programs 8-bit targets (Le Gallo et al., Nature "
        "Electronics 2023); the programming error, not the level count, sets the precision reached. "
        "verify_factor 0.7 per extra iteration (estimate; aihwkit has no program-and-verify, so 0 iterations is "
        "aihwkit's model). No stuck cells (aihwkit models none; give rates to study them). Write pulse 1 us "
        "(estimate). Wire 0.35 ohm per cell (aihwkit IOParameters.ir_drop_g_ratio docstring, io.py line 164; "
        "aihwkit's default ir_drop scale is 0, so --no-ir-drop is aihwkit's setting)."
    ),
    g_max_us=25.0,
    g_min_us=0.0,
    max_levels=256,
    prog_noise_us=(0.26348, 1.9650, -1.1731),
    verify_factor=0.7,
    read_noise_us=0.0,
    read_noise_scaling="constant",
    output_noise_us=_AIHWKIT_OUT_NOISE * 25.0,
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

PCM_RASCH2023 = dataclasses.replace(
    PCM,
    name="pcm-rasch2023",
    description="Phase-change memory as pcm, with the read and output noise of Rasch et al. 2023's standard setting",
    source=(
        "Cells as the pcm preset (aihwkit 1.2 PCMLikeNoiseModel: programming error, drift and its spread, "
        "accumulated 1/f noise, g_max 25 uS, g_min 0). Per-read cell noise and output noise of the standard AIMC "
        "evaluation setting of Rasch et al., 'Hardware-aware training for large-scale and diverse deep learning "
        "inference workloads using in-memory computing-based accelerators', Nature Communications 14, 5282 (2023), "
        "arXiv:2302.08469, as aihwkit 1.2 encodes it in StandardHWATrainingPreset (src/aihwkit/simulator/presets/"
        "inference.py lines 97-100): w_noise 0.0175 of type PCM_READ (PCM short-term read noise, sigma "
        "0.0175 g_max sqrt(|g| / g_max) per cell at the full input) and out_noise 0.04 x g_max per output and read. "
        "The preset's other settings (8-bit DAC and ADC, out_bound 10, ir_drop 1) belong to the chip, not the cell."
    ),
    read_noise_us=_RASCH_W_NOISE * 25.0,
    read_noise_scaling="conductance",
    output_noise_us=_RASCH_OUT_NOISE * 25.0,
)

RRAM = Device(
    name="rram",
    description="Resistive RAM (HfOx 1T1R) with the programming statistics of NeuRRAM",
    source=(
        "aihwkit 1.2 ReRamWan2022NoiseModel (IBM, src/aihwkit/inference/noise/reram.py), fitted on Wan et al., 'A "
        "compute-in-memory chip based on resistive random-access memory', Nature 608, 504 (2022): g_max 40 uS, "
        "programming sigma polynomial [0.348, 16.030, -43.853, 45.393, -16.815] uS (1 s after programming). aihwkit "
        "models the later spread as other polynomials at 1 and 2 days, not as a power-law drift: here drift 'none' "
        "(the 1-day and 2-day spreads are not modelled). Per-read cell noise 0.01 x g_max, constant: reram.py's "
        "note ('about 1%', w_noise 0.01 with ADDITIVE_CONSTANT). Output noise 0.04 x g_max: Rasch et al., Nature "
        "Communications 2023 (a PCM study; for RRAM an estimate of the same order). g_min 4 uS (estimate: an on/off "
        "ratio of 10). max_levels 16 (estimate: 4-bit multi-level HfOx cells). verify_factor 0.7 (estimate). No "
        "stuck cells by default (give rates to study them). Write pulse 100 ns (estimate). Wire 0.35 ohm per cell "
        "(aihwkit IOParameters.ir_drop_g_ratio docstring)."
    ),
    g_max_us=40.0,
    g_min_us=4.0,
    max_levels=16,
    prog_noise_us=(0.348, 16.030, -43.853, 45.393, -16.815),
    verify_factor=0.7,
    read_noise_us=0.01 * 40.0,
    read_noise_scaling="constant",
    output_noise_us=_RASCH_OUT_NOISE * 40.0,
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
    description="SRAM bits switching a fixed conductance: exact cells, analog output noise only",
    source=(
        "Mannocci et al., 'A fully integrated analogue closed-loop in-memory computing accelerator based on static "
        "random-access memory', Nature Electronics 2026: digital SRAM cells are exact (no programming error, no "
        "drift, no stuck cells, one bit per cell: max_levels 2); the error is in the analogue summation. g_max "
        "10 uS (estimate), g_min 0.001 uS (estimate: an open switch, on/off ratio 10000), output noise 0.05 uS = "
        "0.5% of one cell (estimate), no per-read cell noise (estimate). Write pulse 1 ns (estimate: one SRAM "
        "write). Wire 0.35 ohm per cell (aihwkit IOParameters.ir_drop_g_ratio docstring)."
    ),
    g_max_us=10.0,
    g_min_us=0.001,
    max_levels=2,
    prog_noise_us=(0.0,),
    verify_factor=1.0,
    read_noise_us=0.0,
    read_noise_scaling="constant",
    output_noise_us=0.05,
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
        "(estimate: sub-microampere cell currents), g_min 0.001 uS (estimate: on/off ratio 1000), programming sigma "
        "0.004 uS = one 8-bit step (estimate), per-read cell noise 0.002 uS, constant (estimate), output noise 0.01 "
        "uS (estimate), no drift over inference times (estimate: charge loss is a retention effect of years), no "
        "stuck cells (estimate: tested and repaired arrays), verify_factor 0.7 (estimate). Write pulse 1 us "
        "(estimate, as the mythic-m1076 chip's cell_program_pj). Wire 0.35 ohm per cell (aihwkit "
        "IOParameters.ir_drop_g_ratio docstring)."
    ),
    g_max_us=1.0,
    g_min_us=0.001,
    max_levels=256,
    prog_noise_us=(0.004,),
    verify_factor=0.7,
    read_noise_us=0.002,
    read_noise_scaling="constant",
    output_noise_us=0.01,
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
        "Nature 615, 823 (2023): 2048 levels from 50 uS to 4144 uS, a 2 uS step (g_min 50 uS, g_max 4144 uS); "
        "their denoising brings the fluctuation below the level spacing: programming sigma 0.5 uS and per-read "
        "cell noise 0.5 uS, constant, a quarter step each (estimate). Output noise 1 uS (estimate), no drift "
        "(estimate), no stuck cells (estimate), verify_factor 0.7 (estimate), write pulse 100 ns (estimate). "
        "Wire 0.35 ohm per cell (aihwkit IOParameters.ir_drop_g_ratio docstring): at 4 mS cells the first-order "
        "IR drop of a large array is not small."
    ),
    g_max_us=4144.0,
    g_min_us=50.0,
    max_levels=2048,
    prog_noise_us=(0.5,),
    verify_factor=0.7,
    read_noise_us=0.5,
    read_noise_scaling="constant",
    output_noise_us=1.0,
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
DEVICES: dict[str, Device] = {d.name: d for d in (PCM, PCM_RASCH2023, RRAM, SRAM, NOR_FLASH, MEMRISTOR_2048)}

#: The chip description's ``tile.device`` (``cimc.ir.target.chip.DEVICES``) -> the preset that models it; a chip
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
