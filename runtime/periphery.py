"""Reads whose converters follow each input vector: aihwkit's forward pass (``IOParameters`` of its inference
tiles) on one array group, for chips with a range-managed periphery (a chip's ``[periphery]``:
``cimc.ir.target.chip.RangeManagement``).

aihwkit 1.2's C++ tile (``ForwardBackwardPassIOManaged::forwardVector``, src/rpucuda/rpu_forward_backward_pass.cpp
lines 900-988) reads one input vector ``x`` as follows, and ``managed_read`` does the same on a row block:

1. noise management ABS_MAX (lines 125-130, 919-920): ``nm = max |x|``; an all-zero vector reads exactly 0, with no
   noise (lines 924-933);
2. bound management ITERATIVE (lines 938-983): passes with reductions ``r = 1, 2, 4, ...``, each reading with the
   input scaled by ``1 / (nm r)``, until no output saturates or the pass limit is reached (aihwkit: 5 passes at its
   defaults, ``r > max_bm_res / inp_res`` ends the loop after ``r = 16``); every pass draws new output noise;
3. the DAC (lines 572-604): ``v = rint(x * (1 / (nm r)) / step) * step`` with ``step = 1 / input_levels``
   (aihwkit's ``inp_res = 1/126`` over ``[-1, 1]``: 63 steps per sign; ``rint`` rounds half to even, as numpy's
   does), in float32 as aihwkit computes it, since codes over their largest often fall on a step's half;
4. the array: ``y = W v``, the pair's difference in one output per column;
5. the ADC (lines 673-719): ``y += sigma N(0, 1)``; ``y = rint(y / step) * step`` with ``step = bound /
   output_levels`` (aihwkit: ``out_res = 1/510`` over ``[-12, 12]``: 255 steps per sign); an output beyond the
   bound saturates (fails the pass) and is clipped to it;
6. the result scaled back by ``nm r`` (lines 985-987).

Units: ``weights`` are the group's signed weights in level units (slices shifted and added, the negative array of
each pair subtracted), ``codes`` the input codes minus their zero point; ``unit`` turns a level into the output's
unit per column (a weight in aihwkit's convention, which keeps raw weights on its tiles; or one full-scale cell),
in which the bound, the ADC step and the noise ``sigma`` are given. The result is in the exact arithmetic's units
(codes x levels), what the shift-add would give: ``sum_r weights[r, c] * codes[r]`` read through these converters.
"""

from __future__ import annotations

import numpy as np

from cimc.ir.target.chip import RangeManagement


def managed_read(
    codes: np.ndarray,
    weights: np.ndarray,
    unit: np.ndarray,
    periphery: RangeManagement,
    *,
    full_scale: float,
    sigma: float = 0.0,
    key: int | np.uint64 = 0,
    vector_index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Read ``codes`` (``[vectors, rows]``, signed, float64; float32 with float32 weights) with ``weights``
    (``[rows, cols]``, level units) through the range-managed converters; returns the results (``[vectors, cols]``,
    codes x levels, float64), the passes each vector took (int64; 0 for an all-zero vector, which reads 0) and how
    many outputs stayed clipped at the bound in the pass each vector kept (the saturations bound management could
    not avoid).

    ``weights`` in float32 make the product a float32 GEMM and the DAC and ADC passes numba kernels
    (``cimc.runtime.periphery_kernels``): the statistical fidelity level. The DAC codes are exact in float32 and
    the product's rounding, 2^-24 of a weight, is far below the output noise and the ADC step; every read here
    already draws its noise and rounding per output, in aggregate, so the two levels differ in nothing else.
    ``full_scale`` is the code that drives the full input when inputs are not scaled (``input_scaling =
    "none"``); ``sigma`` the output noise in ``unit``; the noise of pass ``p`` of vector ``m``, column ``c`` is
    ``kernels.gaussian(key, (vector_index[m] * passes + p) * cols + c)``, so results do not depend on the batch.
    """
    vectors, cols = codes.shape[0], weights.shape[1]
    index = np.arange(vectors, dtype=np.int64) if vector_index is None else np.asarray(vector_index, np.int64)
    magnitude = np.abs(codes).max(axis=1, initial=0.0) if periphery.input_scaling == "abs_max" else None
    scale = magnitude if magnitude is not None else np.full(vectors, float(full_scale))
    out = np.zeros((vectors, cols))
    passes = np.zeros(vectors, dtype=np.int64)
    clipped = 0
    step = periphery.output_bound / periphery.output_levels
    todo = np.flatnonzero(np.abs(codes).max(axis=1, initial=0.0) > 0)
    reduction = 1.0
    fast = weights.dtype == np.float32  # the statistical level: numba passes, the same arithmetic
    gain = unit / periphery.input_levels
    for p in range(periphery.passes):
        if not todo.size:
            break
        s = scale[todo] * reduction
        dac = _dac(codes, todo, np.float32(1.0) / s.astype(np.float32), periphery, fast)
        counters = (index[todo] * periphery.passes + p) * cols
        q, saturated = _adc(
            dac.astype(weights.dtype) @ weights, gain, sigma, np.uint64(key), counters, step, periphery, fast
        )
        done = ~saturated if p + 1 < periphery.passes else np.ones(len(todo), dtype=bool)
        passes[todo] += 1
        out[todo[done]] = q[done] * step * (s[done, None] / unit)
        clipped += int(np.count_nonzero(np.abs(q[done]) == periphery.output_levels))
        todo = todo[~done]
        reduction *= 2.0
    return out, passes, clipped


def _dac(
    codes: np.ndarray, todo: np.ndarray, inverse: np.ndarray, periphery: RangeManagement, fast: bool
) -> np.ndarray:
    """The DAC codes (float32) of the vectors ``todo`` of ``codes``, each scaled by its ``inverse``: in float32 as
    aihwkit's tile computes it (codes over their largest often fall on a DAC step's half); one numba pass where
    ``fast``."""
    levels = float(periphery.input_levels)
    if fast:
        from cimc.runtime import periphery_kernels

        dac = np.empty((len(todo), codes.shape[1]), dtype=np.float32)
        periphery_kernels.dac(codes, todo, inverse, np.float32(1.0 / periphery.input_levels), levels, dac)
        return dac
    dac = np.rint(codes[todo].astype(np.float32) * inverse[:, None] / np.float32(1.0 / periphery.input_levels))
    np.clip(dac, -levels, levels, out=dac)
    return dac


def _adc(
    product: np.ndarray,
    gain: np.ndarray,
    sigma: float,
    key: np.uint64,
    counters: np.ndarray,
    step: float,
    periphery: RangeManagement,
    fast: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """One ADC pass over ``product * gain`` plus the output noise (``kernels.gaussian(key, counters[i] + c)``):
    the codes, clipped to the ADC's levels, and per vector whether any saturated before the clip; one numba pass
    where ``fast``."""
    top = periphery.output_levels
    if fast:
        from cimc.runtime import periphery_kernels

        q = np.empty(product.shape)
        saturated = np.empty(len(product), dtype=np.bool_)
        periphery_kernels.adc(product, gain, sigma, key, counters, step, float(top), q, saturated)
    else:
        y = product * gain
        if sigma > 0:
            from cimc.runtime import kernels  # numba: loaded by the reads that need it, not by chip descriptions

            noise = np.empty(product.shape, dtype=np.float32)
            kernels.gaussian_rows(key, counters, noise)
            y += sigma * noise
        q = np.rint(y / step)
        saturated = (np.abs(q) > top).any(axis=1)
    np.clip(q, -top, top, out=q)
    return q, saturated


def readout(
    weights: np.ndarray,
    unit: np.ndarray,
    periphery: RangeManagement,
    *,
    sigma: float,
    key: np.uint64,
) -> float:
    """aihwkit 1.2's ``GlobalDriftCompensation`` read-out of a group: the one-hot inputs ``eye(rows)``
    (src/aihwkit/inference/compensation/drift.py line 38) read through the same converters and noise as any input,
    the mean absolute output in ``unit`` (line 30), floored at 1e-4 as aihwkit clamps it."""
    rows = weights.shape[0]
    out, _, _ = managed_read(np.eye(rows), weights, unit, periphery, full_scale=1.0, sigma=sigma, key=key)
    return max(float(np.mean(np.abs(out * unit))), 1e-4)
