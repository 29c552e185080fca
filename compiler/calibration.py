"""Post-training calibration: the ranges the chip must cover, measured on sample inputs.

- ``calibrate``: the activation range each float crossbar layer must quantize. The module's main function (at the
  ``graph`` stage) runs on the calibration inputs batch by batch with the reference interpreter; before each op
  whose input ``lower-to-cim`` will quantize (``crossbar_input``), the values of that input are observed. The range
  found is set on the op as ``cim.input_range`` (f64 ``[lo, hi]``), from which the lowering derives the input
  codes' scale and zero point.
- ``calibrate_adc_ranges``: the full scale of each ADC narrower than an exact read, as chips calibrate their ADCs'
  gain (HERMES calibrates each core's ADC gain and offset): the ``cim``-stage module runs on the same inputs, the
  column currents every narrow ``cim.adc`` reads are observed, and its ``full_scale_bits`` is set to cover them
  (``cim.adc_range = "calibrated"`` records it), so the ADC's codes span the currents the layer carries instead of
  the worst-case column sum that the arrays never reach.

Both reduce each observed value the same way (``METHODS``): the extremes over all batches, or per-batch
percentiles averaged over the batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from cimc.ir.attributes import DenseArrayAttr, IntAttr, StringAttr
from cimc.ir.core import Operation
from cimc.ir.dialects.builtin import FuncOp, ModuleOp
from cimc.ir.dialects.cim import AdcOp
from cimc.ir.interpreter import main_function, run_function
from cimc.ir.types import ElementType, TensorType
from cimc.passes.crossbar_match import crossbar_input
from cimc.passes.lower_to_cim import INPUT_RANGE

#: The ways a range is read off the observed values.
METHODS = ("minmax", "percentile")

#: The discardable attribute of a ``cim.adc`` whose full scale was set from data (value ``"calibrated"``); an ADC
#: narrower than exact without it spans the worst-case column sum.
ADC_RANGE = "cim.adc_range"

#: Bytes of ADC input currents one calibration batch may produce at its largest ``cim.adc`` (bounds the batch).
ADC_CALIBRATION_BYTES = 64 << 20


class CalibrationError(ValueError):
    """The calibration inputs or settings cannot calibrate the model; the message names which and why."""


def calibrate(
    module: ModuleOp,
    inputs: Mapping[str, np.ndarray],
    method: str = "minmax",
    percentile: float = 99.99,
    batch: int = 32,
) -> int:
    """Set ``cim.input_range`` on every float crossbar layer of ``module``'s main function, measured on
    ``inputs`` (arrays keyed by input name, samples along axis 0, run ``batch`` samples at a time); returns how
    many ops were annotated.

    ``minmax``: the least and greatest value seen over all batches. ``percentile``: per batch, the
    ``100 - percentile`` and ``percentile`` percentiles of the values, averaged over the batches weighted by their
    sample counts; clipping the rare extremes gives the common values finer codes.
    """
    func = main_function(module)
    # each float crossbar layer -> the index of the operand it quantizes
    watched = {op: op.operands.index(x) for op in func.body.ops if (x := crossbar_input(op)) is not None}
    for op, (lo, hi) in observed_ranges(func, inputs, watched, method, percentile, batch).items():
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise CalibrationError(
                f"the input of '{op.name}' at {op.location} is not finite (NaN or inf) on the calibration inputs"
            )
        op.attributes[INPUT_RANGE] = DenseArrayAttr(ElementType("f64"), (lo, hi))
    return len(watched)


def narrow_adcs(module: ModuleOp) -> list[AdcOp]:
    """The ``cim.adc`` ops of ``module``'s main function whose ``bits`` do not cover their full scale."""
    return [op for op in main_function(module).body.ops if isinstance(op, AdcOp) and op.dropped_bits > 0]


def calibrate_adc_ranges(
    module: ModuleOp,
    inputs: Mapping[str, np.ndarray],
    method: str = "minmax",
    percentile: float = 99.99,
    batch: int = 32,
) -> int:
    """Set the full scale of every narrow ``cim.adc`` (``narrow_adcs``) of a ``cim``-stage module from the column
    currents it reads on ``inputs``; returns how many ADCs were calibrated.

    Each such ADC (one per row block of a layer: one array group) gets ``full_scale_bits = clamp(ceil(log2(top +
    1)), bits, exact)``, ``top`` the largest current seen (``minmax``) or the ``percentile`` of its currents
    (``percentile``, as ``calibrate`` reduces them), ``exact`` the worst-case full scale ``bit-slice`` gave it. The
    step stays a power of two, so the shift-add and the dequantization take the readings as they are. The currents
    are those of the integer reference: while they are observed every ADC reads exactly, so one layer's range does
    not depend on another's. ``batch`` is lowered where one batch's largest ADC input would pass
    ``ADC_CALIBRATION_BYTES``.
    """
    adcs = narrow_adcs(module)
    if not adcs:
        _check_method(method, percentile, batch)
        return 0
    per_sample = max(4 * math.prod(size or 1 for size in _tensor_shape(op)) for op in adcs)
    batch = max(1, min(batch, ADC_CALIBRATION_BYTES // per_sample))
    widths = [op.attr("bits") for op in adcs]
    exact = [op.attr("full_scale_bits") for op in adcs]
    try:
        for op, full_scale in zip(adcs, exact):
            op.attributes["bits"] = IntAttr(full_scale)  # read exactly while observed
        ranges = observed_ranges(main_function(module), inputs, dict.fromkeys(adcs, 0), method, percentile, batch)
    finally:
        for op, bits in zip(adcs, widths):
            op.attributes["bits"] = IntAttr(bits)
    for op, bits, full_scale in zip(adcs, widths, exact):
        top = max(ranges[op][1], 0.0)
        op.attributes["full_scale_bits"] = IntAttr(min(max(math.ceil(math.log2(top + 1)), bits), full_scale))
        op.attributes[ADC_RANGE] = StringAttr("calibrated")
    return len(adcs)


def _tensor_shape(op: Operation) -> tuple[int | None, ...]:
    ttype = op.operands[0].type
    assert isinstance(ttype, TensorType)
    return ttype.shape


def _check_method(method: str, percentile: float, batch: int) -> None:
    if method not in METHODS:
        raise CalibrationError(f"unknown calibration method '{method}' (methods: {', '.join(METHODS)})")
    if not 50 < percentile <= 100:
        raise CalibrationError(f"the calibration percentile must be in (50, 100], got {percentile}")
    if batch < 1:
        raise CalibrationError(f"the calibration batch must be positive, got {batch}")


def observed_ranges(
    func: FuncOp,
    inputs: Mapping[str, np.ndarray],
    watched: Mapping[Operation, int],
    method: str = "minmax",
    percentile: float = 99.99,
    batch: int = 32,
) -> dict[Operation, tuple[float, float]]:
    """The range ``[lo, hi]`` of operand ``watched[op]`` of each watched op of ``func`` over ``inputs``, run ``batch``
    samples at a time (``[0, 0]`` for an op never seen with a non-empty operand), reduced by ``method`` (see
    ``calibrate``)."""
    _check_method(method, percentile, batch)
    arrays, batch = _check_inputs(func, inputs, batch)
    if not watched:
        return {}
    samples = len(next(iter(arrays.values())))
    stats: dict[Operation, list[tuple[float, float, int]]] = {op: [] for op in watched}  # per batch: lo, hi, samples
    batch_samples = 0

    def observe(op: Operation, args: list[np.ndarray]) -> None:
        index = watched.get(op)
        if index is None or not args[index].size:
            return
        if method == "minmax":
            lo, hi = args[index].min(), args[index].max()
        else:
            lo, hi = np.percentile(args[index], [100 - percentile, percentile])
        stats[op].append((float(lo), float(hi), batch_samples))

    for start in range(0, samples, batch):
        chunk = {name: array[start : start + batch] for name, array in arrays.items()}
        batch_samples = len(next(iter(chunk.values())))
        run_function(func, chunk, observe)
    ranges = {}
    for op, seen in stats.items():
        lows, highs, weights = np.array(seen or [(0.0, 0.0, 1)]).T  # never seen non-empty: range [0, 0]
        if method == "minmax":
            ranges[op] = (float(lows.min()), float(highs.max()))
        else:
            ranges[op] = (float(np.average(lows, weights=weights)), float(np.average(highs, weights=weights)))
    return ranges


def _check_inputs(func: FuncOp, inputs: Mapping[str, np.ndarray], batch: int) -> tuple[dict[str, np.ndarray], int]:
    """The inputs as arrays in argument order, and the batch to run them in; a ``CalibrationError`` naming the
    input that is missing, empty, or does not fit the function."""
    names = func.input_names
    unknown = sorted(set(inputs) - set(names))
    missing = [n for n in names if n not in inputs]
    if missing or unknown:
        raise CalibrationError(
            f"calibration inputs must be named {names}; missing {missing}" + (f", unknown {unknown}" if unknown else "")
        )
    arrays = {name: np.asarray(inputs[name]) for name in names}
    for name, arg in zip(names, func.arguments):
        array, ttype = arrays[name], arg.type
        assert isinstance(ttype, TensorType)
        if array.ndim == 0 or len(array) == 0:
            raise CalibrationError(f"calibration input '{name}' is empty: give samples along axis 0")
        if not ttype.accepts((ttype.shape[0] or len(array), *array.shape[1:]), array.dtype):
            raise CalibrationError(
                f"calibration input '{name}' is {array.dtype}{list(array.shape)} but the model expects {ttype} "
                "('?' is any size; samples along axis 0)"
            )
        if ttype.shape[0] is not None:  # a fixed batch: run it that many samples at a time
            if len(array) % ttype.shape[0]:
                raise CalibrationError(
                    f"calibration input '{name}' has {len(array)} samples, not a multiple of the model's fixed "
                    f"batch {ttype.shape[0]}"
                )
            batch = ttype.shape[0]
    counts = {len(array) for array in arrays.values()}
    if len(counts) > 1:
        raise CalibrationError(f"calibration inputs have different sample counts {sorted(counts)}: give equal ones")
    return arrays, batch
