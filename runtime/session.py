"""``InferenceSession``: a compiled binary run on the simulated chip, shaped like onnxruntime's session.

```python
from cimc.runtime import InferenceSession
session = InferenceSession("model.cimb", device="pcm", drift_time="1h", seed=0, fidelity="statistical")
(logits,) = session.run(None, {"x": images})          # any batch size; streamed in batches
print(session.performance().to_dict()["energy"]["total_pj"])
```

The session loads the binary (``cimc.runtime.binary``), programs the arrays once under its analog settings and
runs batches through ``cimc.runtime.simulator``. It needs no ONNX model and never loads the ONNX importer.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cimc.ir.interpreter import InterpreterError, bind_inputs
from cimc.ir.target.chip import Chip, RangeManagement
from cimc.ir.types import TensorType
from cimc.runtime import devices
from cimc.runtime.analog import AnalogConfig
from cimc.runtime.binary import CompiledModel, load_binary
from cimc.runtime.devices import Device, for_chip_device
from cimc.runtime.simulator import Simulator

#: Samples per batch when a session streams a large input.
BATCH_SIZE = 256

_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 365.25 * 86400.0}


def parse_duration(text: str | float) -> float:
    """Seconds in a duration: a number of seconds, or a number with a unit ``s``, ``m``/``min``, ``h``, ``d``,
    ``w``, ``y`` (365.25 days): ``"1h"`` is 3600.0."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*", text.lower())
        if match is None or match.group(2) not in ("", *_UNITS):
            raise ValueError(f"duration '{text}' is not a number of seconds or a number with s, m, h, d, w or y")
        seconds = float(match.group(1)) * _UNITS.get(match.group(2), 1.0)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration '{text}' must be a finite time >= 0")
    return seconds


def analog_config(
    chip: Chip,
    *,
    ideal: bool = False,
    device: str | Device | None = None,
    seed: int = 0,
    drift_time: str | float = 0.0,
    drift_compensation: bool = True,
    verify_iterations: int = 0,
    adc_offset_lsb: float = 0.0,
    stuck_on_rate: float | None = None,
    stuck_off_rate: float | None = None,
    programming_noise: bool = True,
    drift: bool = True,
    drift_spread: bool = True,
    flicker_noise: bool = True,
    read_noise: bool = True,
    output_noise: bool = True,
    ir_drop: bool | None = None,
    fidelity: str = "per-read",
) -> AnalogConfig:
    """The analog settings for a chip: its own device unless ``device`` is one or names a preset
    (``cimc.runtime.devices``), every effect on unless ``ideal`` or switched off by name (``AnalogConfig``'s
    switches: ``programming_noise``, ``drift``, ``drift_spread``, ``flicker_noise``, ``read_noise``,
    ``output_noise``, ``ir_drop``, ``drift_compensation``); ``ir_drop`` None follows the chip's ``tile.ir_drop``;
    ``fidelity`` how reads are simulated (``cimc.runtime.analog.FIDELITIES``)."""
    if isinstance(device, Device):
        model = device
    elif device is not None:
        model = devices.device(device)
    else:
        model = for_chip_device(chip.tile.device)
    if ideal:
        return dataclasses.replace(AnalogConfig.ideal(model), fidelity=fidelity)
    return AnalogConfig(
        device=model,
        seed=seed,
        drift_time_s=parse_duration(drift_time),
        drift_compensation=drift_compensation,
        verify_iterations=verify_iterations,
        adc_offset_lsb=adc_offset_lsb,
        stuck_on_rate=stuck_on_rate,
        stuck_off_rate=stuck_off_rate,
        programming_noise=programming_noise,
        drift=drift,
        drift_spread=drift_spread,
        flicker_noise=flicker_noise,
        read_noise=read_noise,
        output_noise=output_noise,
        ir_drop=chip.tile.ir_drop if ir_drop is None else ir_drop,
        fidelity=fidelity,
    )


def range_management(
    chip: Chip, *, ideal: bool = False, input_scaling: str | None = None, bound_management: str | None = None
) -> RangeManagement | None:
    """The chip's range-managed periphery (its ``[periphery]``) with ``input_scaling``/``bound_management`` in place
    of its own where given; None for a chip without one, and under ``ideal`` (exact reads). A ValueError when a
    setting is given for a chip that has no such periphery."""
    given: dict[str, Any] = {
        k: v for k, v in (("input_scaling", input_scaling), ("bound_management", bound_management)) if v
    }
    if chip.periphery is None:
        if given:
            raise ValueError(
                f"chip '{chip.name}' has no range-managed periphery ([periphery]): "
                f"{', '.join(given)} cannot be set (the 'aihwkit' preset has one)"
            )
        return None
    return None if ideal else dataclasses.replace(chip.periphery, **given)


@dataclass(frozen=True)
class NodeArg:
    """An input or output as onnxruntime describes it: name, shape (``None`` for a dynamic dim) and type."""

    name: str
    shape: list[int | None]
    type: str


def _node_arg(name: str, ttype: Any) -> NodeArg:
    assert isinstance(ttype, TensorType)
    onnx_names = {"f32": "float", "f64": "double", "f16": "float16", "i1": "bool"}
    element = ttype.element.name
    kind = onnx_names.get(element) or element.replace("ui", "uint").replace("i", "int", 1)
    return NodeArg(name, list(ttype.shape), f"tensor({kind})")


class NonFiniteInputError(InterpreterError):
    """An input holds NaN or infinity: no DAC can apply it, and quantizing it would give finite, wrong outputs."""


def check_finite(inputs: Mapping[str, np.ndarray], source: str = "") -> None:
    """Raise ``NonFiniteInputError`` naming the first float input of ``inputs`` (by name) that holds NaN or
    infinity, and the position of its first such value; ``source`` (a file, a flag) prefixes the message."""
    for name, array in inputs.items():
        array = np.asarray(array)
        if array.dtype.kind != "f":
            continue
        bad = _first_non_finite(array)
        if bad is not None:
            where = f"{source}: " if source else ""
            raise NonFiniteInputError(
                f"{where}input '{name}' holds {array[bad]} at index {list(bad)}: the chip's DACs take finite values "
                "only; replace NaN and infinity in the data"
            )


def _first_non_finite(array: np.ndarray, chunk: int = 1 << 20) -> tuple[int, ...] | None:
    """The index of the first NaN or infinity in ``array``, looked for ``chunk`` values at a time (memory stays
    that of one chunk's mask)."""
    flat = array.reshape(-1)
    for start in range(0, flat.size, chunk):
        found = np.flatnonzero(~np.isfinite(flat[start : start + chunk]))
        if found.size:
            return tuple(int(i) for i in np.unravel_index(start + int(found[0]), array.shape))
    return None


class InferenceSession:
    """A compiled model (a ``.cimb`` path or a loaded ``CompiledModel``) on its simulated chip.

    Keyword settings, those of ``analog_config``: ``ideal`` (every analog effect off: outputs equal the exact
    executor bit for bit), ``device`` (a preset of ``cimc.runtime.devices``; default the chip's), ``seed``,
    ``drift_time`` (seconds or ``"1h"``, ``"1d"``, ``"1y"``), ``drift_compensation``, ``verify_iterations``
    (program-and-verify), ``adc_offset_lsb``, ``stuck_on_rate``/``stuck_off_rate`` (None: the device's), and one
    switch per noise term, each True by default: ``programming_noise``, ``drift``, ``drift_spread``,
    ``flicker_noise``, ``read_noise``, ``output_noise``, ``ir_drop`` (None: the chip's), ``fidelity``
    (``"per-read"`` or ``"statistical"``: ``cimc.runtime.statistical``; ``fallbacks()`` names the array groups
    still read per read and why); or a whole ``config``
    (``AnalogConfig``). On a chip with a range-managed periphery (``[periphery]``, the ``aihwkit`` preset),
    ``input_scaling`` and ``bound_management`` replace its own (``range_management``). ``batch_size`` bounds memory.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | CompiledModel,
        *,
        config: AnalogConfig | None = None,
        batch_size: int = BATCH_SIZE,
        **settings: Any,
    ) -> None:
        self.compiled = model if isinstance(model, CompiledModel) else load_binary(model)
        self.chip = self.compiled.chip
        periphery = range_management(
            self.chip,
            ideal=settings.get("ideal", False),
            input_scaling=settings.pop("input_scaling", None),
            bound_management=settings.pop("bound_management", None),
        )
        self.config = config or analog_config(self.chip, **settings)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.simulator = Simulator(self.compiled, self.config, periphery=periphery)

    def get_inputs(self) -> list[NodeArg]:
        func = self.simulator.func
        return [_node_arg(n, a.type) for n, a in zip(func.input_names, func.arguments)]

    def get_outputs(self) -> list[NodeArg]:
        func = self.simulator.func
        return [_node_arg(n, v.type) for n, v in zip(func.output_names, func.return_op.operands)]

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, np.ndarray],
        run_options: object = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[np.ndarray]:
        """The outputs named (all when ``None``) for ``input_feed``, in order; inputs of any batch size are run
        ``batch_size`` samples at a time. An input holding NaN or infinity is refused (``NonFiniteInputError``)."""
        pieces = list(self.stream(output_names, input_feed, progress))
        return [np.concatenate(parts) if len(parts) > 1 else parts[0] for parts in zip(*pieces)]

    def stream(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, np.ndarray],
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[list[np.ndarray]]:
        """``run``'s outputs a batch at a time (``batch_size`` samples, in order), for a caller that keeps one
        batch's outputs only: the pieces of ``run``'s result, the same noise included (each sample's draws follow
        its position in ``input_feed``, whatever the batches), where running the batches one by one would draw
        every batch's noise from the first samples' positions again."""
        names = list(output_names) if output_names is not None else self.simulator.output_names
        unknown = [n for n in names if n not in self.simulator.output_names]
        if unknown:
            raise InterpreterError(f"no output named {unknown}; the outputs are {self.simulator.output_names}")
        arrays = bind_inputs(self.simulator.func, input_feed)
        check_finite(dict(zip(self.simulator.input_names, arrays)))
        for outputs in self.simulator.run_stream(self._batches(arrays), progress):
            yield [outputs[n] for n in names]

    def _batches(self, arrays: list[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        """Slices of ``batch_size`` samples along the inputs' first axis; one piece when the inputs do not share
        a first axis (scalars, or inputs of different lengths)."""
        names = self.simulator.input_names
        lengths = {len(a) if a.ndim else -1 for a in arrays}
        if len(lengths) != 1 or -1 in lengths:
            yield dict(zip(names, arrays))
            return
        (total,) = lengths
        for start in range(0, max(total, 1), self.batch_size):
            yield {n: a[start : start + self.batch_size] for n, a in zip(names, arrays)}

    def fallbacks(self) -> list[str]:
        """Under ``fidelity="statistical"``, the array groups where the statistical model does not hold (an ADC
        that can saturate, multi-bit DACs), each with its reason: those are read per read."""
        return sorted(self.simulator.fallbacks.values())

    def adc_saturation(self) -> dict[str, float]:
        """Per crossbar layer (by name), the fraction of its ADC conversions that saturated over every run of this
        session so far: how often a read's current passed the ADC's range (``Simulator.adc_counts`` has the
        counts)."""
        return {layer: counts.fraction for layer, counts in self.simulator.adc_counts.items()}

    def performance(self) -> Any:
        """Latency, throughput and energy of one inference on the chip (``cimc.runtime.performance``); on a
        range-managed periphery, each group's reads count the passes its inputs took so far (bound management reads
        a saturated input again), on average per input vector."""
        from cimc.runtime.performance import estimate

        passes = {group: done / vectors for group, (done, vectors) in self.simulator.read_passes.items() if vectors}
        return estimate(
            self.compiled,
            pulses_per_cell=1 + self.config.verify_iterations,
            write_pulse_s=self.config.device.write_pulse_s,
            read_passes=passes,
        )
