"""numba kernels of the range-managed periphery's statistical level (``cimc.runtime.periphery.managed_read`` with
float32 weights): one pass over a read's inputs for the DAC, one over its outputs for the noise, the ADC and the
saturation test, in place of numpy's temporaries. They compute what the numpy path of ``managed_read`` computes,
element by element in the same float types."""

from __future__ import annotations

import numba as nb
import numpy as np

from cimc.runtime.kernels import gaussian


@nb.njit(cache=True, parallel=True)
def dac(codes: np.ndarray, rows: np.ndarray, inverse: np.ndarray, step: np.float32, levels: float, out: np.ndarray):
    """``out[i] = clip(rint(float32(codes[rows[i]]) * inverse[i] / step), -levels, levels)`` (float32): the DAC
    codes of the vectors ``rows`` scaled by ``inverse``."""
    for i in nb.prange(len(rows)):
        m = rows[i]
        for r in range(codes.shape[1]):
            v = np.rint(np.float32(codes[m, r]) * inverse[i] / step)
            out[i, r] = min(max(v, -levels), levels)


@nb.njit(cache=True, parallel=True)
def adc(
    y: np.ndarray,
    gain: np.ndarray,
    sigma: float,
    key: np.uint64,
    counters: np.ndarray,
    step: float,
    levels: float,
    q: np.ndarray,
    saturated: np.ndarray,
) -> None:
    """``q = rint((y * gain + sigma * gaussian(key, counters[i] + c)) / step)`` (float64) per output of each vector
    ``i``, ``saturated[i]`` whether any ``|q|`` passes ``levels`` (before the caller clips)."""
    for i in nb.prange(y.shape[0]):
        hit = False
        for c in range(y.shape[1]):
            value = np.float64(y[i, c]) * gain[c]
            if sigma > 0:
                value += sigma * np.float64(gaussian(key, np.uint64(counters[i] + c)))
            code = np.rint(value / step)
            hit = hit or abs(code) > levels
            q[i, c] = code
        saturated[i] = hit
