"""Post-training calibration: the activation range each float crossbar layer must quantize, measured on sample
inputs.

The module's main function runs on the calibration inputs batch by batch with the reference interpreter; before
each op whose input ``lower-to-cim`` will quantize (``crossbar_input``), the values of that input are observed.
The range found is set on the op as ``cim.input_range`` (f64 ``[lo, hi]``), from which the lowering derives the
input codes' scale and zero point.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cimc.ir.attributes import DenseArrayAttr
from cimc.ir.core import Operation
from cimc.ir.dialects.builtin import FuncOp, ModuleOp
from cimc.ir.interpreter import main_function, run_function
from cimc.ir.types import ElementType, TensorType
from cimc.passes.crossbar_match import crossbar_input
from cimc.passes.lower_to_cim import INPUT_RANGE

#: The ways a range is read off the observed activations.
METHODS = ("minmax", "percentile")


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
    if method not in METHODS:
        raise CalibrationError(f"unknown calibration method '{method}' (methods: {', '.join(METHODS)})")
    if not 50 < percentile <= 100:
        raise CalibrationError(f"the calibration percentile must be in (50, 100], got {percentile}")
    if batch < 1:
        raise CalibrationError(f"the calibration batch must be positive, got {batch}")
    func = main_function(module)
    arrays, batch = _check_inputs(func, inputs, batch)
    samples = len(next(iter(arrays.values())))
    # each float crossbar layer -> the index of the operand it quantizes
    watched = {op: op.operands.index(x) for op in func.body.ops if (x := crossbar_input(op)) is not None}
    if not watched:
        return 0
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
    for op, seen in stats.items():
        lows, highs, weights = np.array(seen or [(0.0, 0.0, 1)]).T  # never seen non-empty: range [0, 0]
        if method == "minmax":
            lo, hi = lows.min(), highs.max()
        else:
            lo, hi = np.average(lows, weights=weights), np.average(highs, weights=weights)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise CalibrationError(
                f"the input of '{op.name}' at {op.location} is not finite (NaN or inf) on the calibration inputs"
            )
        op.attributes[INPUT_RANGE] = DenseArrayAttr(ElementType("f64"), (lo, hi))
    return len(watched)


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
