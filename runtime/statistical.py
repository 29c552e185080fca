"""The statistical fidelity level: a row block's read in one GEMM, its per-read noise and ADC rounding drawn in
aggregate per output.

The per-read level (``cimc.runtime.kernels.read_out``) reads bit plane ``p`` of an input vector on array ``a``
(sign, slice) of a row block and digitizes column ``c``'s current

    I[p, a, c] = sum_r b_p[r] G_a[r, c]        (level units; b_p the plane's DAC codes)

as ``step * min(max(floor((I + n) / step + o_ac + 1/2), 0), top)``, ``n ~ N(0, s^2)`` the read noise,
``s^2 = sigma_cell^2 * k_p * rho_ac + sigma_column^2`` (``k_p = sum_r b_p[r]^2`` the plane's active cells, ``rho``
the mean ``|g| / g_max`` of the column's cells where read noise scales with conductance, else 1), ``o_ac`` the ADC's
static offset in LSB; the shift-add sums the readings with weights ``w[p, a] = pw_p * sign_a * 2^(slice_a *
cell_bits)`` (``pw_p`` the plane's weight, negative for a signed stream's second phase). Everything here rests on
that definition.

**Where the error comes from.** Write each conductance as an integer level and a remainder, ``G = rint(G) + rho``
(``|rho| <= 1/2``: programming error, drift and its compensation, 1/f noise, IR drop; a stuck cell lands in
``rint(G)``), so a current is an integer ``I' = b_p . rint(G_a)`` plus ``eps = b_p . rho_a``. The reading is then
``I' + D`` with ``D = step * round((u + eps + n) / step + o) - u`` (``u = I' mod step``), and the output is
``sum_{p,a} w[p,a] I'[p,a,c] + sum_{p,a} w[p,a] D[p,a,c]``. The first sum folds over planes (``sum_p pw_p b_p``
is the input code minus its zero point) and over arrays: it is ONE product ``(x - z) @ sum_a sign_a shift_a
rint(G_a)``. The second is a weighted sum of many small independent errors, drawn as one Gaussian per output with
the sum of their means and of their variances.

**What a reading's error is.** ``D``'s distribution depends on how much the rounding is dithered, i.e. on the
spread of ``eps + n`` against the ADC step:

- dithered (spread >= step/2): ``D = eps + n + step*o + q``, the rounding error ``q`` uniform (variance
  ``step^2/12``) and independent (Widrow's quantization theorem; the Gaussian's characteristic function at the
  step's frequency is below 1%), so the reading carries the programmed remainders ``eps`` through;
- undithered (small spread, e.g. PCM's programming error on mostly level-0 cells with aihwkit's output noise):
  the ADC snaps the reading back to the integer ``I'``: ``D`` is almost always 0 and the remainders are erased.
  Treating these readings as dithered overstates the error variance 3-7x on PCM (measured on the digits CNN).

So each reading's ``D`` has the mean and variance of the quantizer ``step * round(t / step + o)`` of a Gaussian
``t ~ N(u + k mu_ac, k (R - k) / (R - 1) v_ac + s^2) - u``, ``mu_ac, v_ac`` the mean and variance of the column's
remainders ``rho`` over its ``R`` rows (the active rows taken as a random subset of the column's, drawn without
replacement: the model's assumption; without the finite-population factor the spread is 10-20% too wide on dense
inputs), ``u`` uniform over
the step's residues when ``step > 1`` (an integer current's rounding is then a deterministic function of ``I mod
step``, averaged over residues here). These are computed exactly (sums of the normal CDF) per active count ``k``,
array and column once per programmed block, and folded over the arrays into two tables ``E[k, c] = sum_a sign_a
shift_a E[D | k, a, c]`` and ``V[k, c] = sum_a shift_a^2 Var[D | k, a, c]`` (sign^2 = 1: the weights are separable,
``w^2 = pw_p^2 shift_a^2``). A vector's error then has mean ``sum_p pw_p E[k_p, c]`` and variance ``sum_p pw_p^2
V[k_p, c]``: two more products, ``H1 @ E`` and ``H2 @ V``, ``H1[m, k] = sum_p pw_p [k_p(m) = k]`` and ``H2`` the
same with ``pw_p^2``, from the input codes' plane counts alone. With ``k = 0`` (an all-zero plane) the current is
exactly 0 and only the read noise and offset act: its row is exact, the clamp at 0 included.

Where a column is dithered even with one active row (``v_ac + s^2(1) >= (step/2)^2``), its realized remainders are
kept in the mean (``G_a`` in the product in place of ``rint(G_a)``) and ``D - eps`` is drawn instead (``E[D] - k
mu_ac``, ``Var[D]`` less the remainders' share): the programming error of such cells reaches the outputs as it does
per read, the same cells for every input.

Exact cases: with no remainders and no noise (an ideal device with offsets only, say), every ``D`` is a constant and
the output is exactly the per-read one; with integer currents and ``step > 1`` the per-residue average is used (the
per-read rounding depends on ``I mod step``, which only the per-read level knows per vector).

**Where the model fails, and the per-read level is used instead** (``prepare`` returns the reason):

- an ADC that can saturate: a column's largest current (every row at the top DAC code, positive remainders, six
  read-noise sigmas) above the ADC's top code. Range-calibrated ADCs below the worst case saturate by design;
- multi-bit DACs: ``eps``'s mean then needs the sum of the codes and its variance the sum of their squares, two
  counts per plane that the tables do not index.

Not modelled: the clamp at 0 of a reading whose integer current is 0 but whose remainders and noise are negative
(with ``k >= 1``; rare where ``g_min`` is 0, as on PCM), and correlations between the rows a vector activates and
the remainders of those rows (structured inputs on structured errors).

Noise: one ``kernels.gaussian`` per output, keyed by (seed, group, replica, ``STREAM``) and counted by the input
vector's position in the stream and the column, so results do not depend on the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from cimc.runtime import kernels

#: A word in the noise keys of statistical reads, apart from the per-read stream of the same group.
STREAM = 0x57A7

#: Read-noise sigmas beyond a column's mean current that the saturation bound allows for.
_SATURATION_SIGMAS = 6.0


@dataclass(frozen=True)
class Block:
    """One replica of a row block prepared for statistical reads: the mean's operand ``[rows, cols]`` (float32, or
    float64 where a float32 sum could be inexact), the error tables ``mean``/``variance`` ``[k + 1, cols]``
    (float64, indexed by a plane's active cells), and the noise key."""

    weights: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    key: np.uint64


def prepare(
    conductance: np.ndarray,
    offsets: np.ndarray,
    *,
    cell_bits: int,
    dac_bits: int,
    step: float,
    top: float,
    sigma_cell: float,
    sigma_column: float,
    noise_ratio: np.ndarray | None,
    input_top: int,
    key: np.uint64,
) -> Block | str:
    """A replica's ``Block`` from its conductances ``[signs, slices, rows, cols]`` (level units) and ADC offsets
    ``[signs, slices, cols]`` (LSB), or why the statistical model does not hold for it (the module's docstring).
    ``noise_ratio`` is ``|g| / g_max`` of each cell (same shape) where read noise scales with conductance;
    ``input_top`` the largest input code magnitude (it bounds the product's sums)."""
    if dac_bits != 1:
        return f"{dac_bits}-bit DACs (the statistical model needs 1-bit planes)"
    signs, slices, rows, cols = conductance.shape
    g = conductance.astype(np.float64).reshape(signs * slices, rows, cols)
    integer = np.rint(g)
    remainder = g - integer
    mu, var = remainder.mean(axis=1), remainder.var(axis=1)  # [arrays, cols]
    if noise_ratio is not None:
        cell_noise = sigma_cell**2 * noise_ratio.astype(np.float64).reshape(signs * slices, rows, cols).mean(axis=1)
    else:
        cell_noise = np.full_like(mu, sigma_cell**2)
    largest = np.maximum(g, 0.0).sum(axis=1)
    sigma_top = np.sqrt(cell_noise * rows + sigma_column**2)
    offset = offsets.astype(np.float64).reshape(signs * slices, cols)
    if ((largest + _SATURATION_SIGMAS * sigma_top) / step + offset + 0.5 > top).any():
        return "its ADC can saturate (the largest column current reaches the top code)"
    dithered = var + cell_noise + sigma_column**2 >= (step / 2) ** 2
    sign = np.array([1.0, -1.0][:signs]).repeat(slices)
    shift = np.tile(np.exp2(np.arange(slices) * cell_bits), signs)
    mean_table = np.zeros((rows + 1, cols))
    variance_table = np.zeros((rows + 1, cols))
    _tables(
        mu,
        var,
        cell_noise,
        sigma_column**2,
        offset,
        step,
        sign * shift,
        dithered,
        mean_table,
        variance_table,
        _STREAM_CDF,
    )
    folded = np.where(dithered[:, None, :], g, integer)
    weights = np.tensordot(sign * shift, folded, axes=1)  # sum_a sign_a shift_a G_a: [rows, cols]
    exact = float(rows) * float(np.abs(weights).max(initial=0.0)) * input_top < 2**24  # float32 sums of integers
    return Block(weights.astype(np.float32 if exact else np.float64), mean_table, variance_table, key)


def read(
    block: Block,
    codes: np.ndarray,
    zero_point: int,
    phase_planes: np.ndarray,
    plane_weights: np.ndarray,
    vector_index: np.ndarray,
) -> np.ndarray:
    """Partial sums (int64 ``[vectors, cols]``) of input codes ``[vectors, rows]`` read statistically on ``block``:
    the product with the folded conductances, the tables' mean and a Gaussian of the tables' variance per output
    (``vector_index``: each vector's position in the stream, which picks its noise), rounded to the integers the
    shift-add makes."""
    rows, cols = block.weights.shape
    counts = np.empty((len(codes), len(plane_weights)), dtype=np.int64)
    _plane_counts(codes, zero_point, phase_planes, counts)
    h1 = np.zeros((len(codes), rows + 1))
    h2 = np.zeros((len(codes), rows + 1))
    _histograms(counts, plane_weights.astype(np.float64), h1, h2)
    x = codes.astype(block.weights.dtype)
    if zero_point:
        x -= block.weights.dtype.type(zero_point)
    out = (x @ block.weights).astype(np.float64)
    out += h1 @ block.mean
    spread = h2 @ block.variance
    np.sqrt(np.maximum(spread, 0.0, out=spread), out=spread)
    noise = np.empty((len(codes), cols), dtype=np.float32)
    kernels.gaussian_rows(block.key, vector_index.astype(np.int64) * cols, noise)
    out += spread * noise
    return np.rint(out).astype(np.int64)


@nb.njit(cache=True)
def _plane_counts(codes: np.ndarray, zero_point: int, phase_planes: np.ndarray, out: np.ndarray) -> None:
    """``out[m, first_f + p]``: how many rows of vector ``m`` have bit ``p`` of phase ``f`` set (the active cells
    of that 1-bit plane; the phases as ``kernels.bit_planes`` makes them)."""
    vectors, rows = codes.shape
    out[:] = 0
    for m in range(vectors):
        for r in range(rows):
            x = int(codes[m, r])
            first = 0
            for f in range(len(phase_planes)):
                value = x
                if zero_point != 0:
                    value = max(x - zero_point if f == 0 else zero_point - x, 0)
                for p in range(phase_planes[f]):
                    out[m, first + p] += (value >> p) & 1
                first += phase_planes[f]


@nb.njit(cache=True)
def _histograms(counts: np.ndarray, plane_weights: np.ndarray, h1: np.ndarray, h2: np.ndarray) -> None:
    """``h1[m, k] += pw_p`` and ``h2[m, k] += pw_p^2`` for each plane ``p`` of vector ``m`` with ``k`` active
    cells."""
    vectors, planes = counts.shape
    for m in range(vectors):
        for p in range(planes):
            k = counts[m, p]
            h1[m, k] += plane_weights[p]
            h2[m, k] += plane_weights[p] * plane_weights[p]


def _stream_table() -> np.ndarray:
    """``P(count < j)`` for ``j = 0 .. 113`` of the binomial(112, 1/2) count behind ``kernels.gaussian``."""
    pmf = np.array([math.comb(112, j) for j in range(113)], dtype=np.float64) / 2.0**112
    return np.concatenate([[0.0], np.cumsum(pmf)])


#: The CDF of ``kernels.gaussian`` is that of a binomial count plus a uniform dither, not the normal one: its
#: tails are lighter (3% fewer draws beyond 2.8 sigma, 12% beyond 3.5), which is where a small read noise crosses
#: an ADC threshold, so the tables use the stream's own CDF.
_STREAM_CDF = _stream_table()
_STREAM_NORM = float(kernels._NORM)


@nb.njit(cache=True)
def _gaussian_cdf(x: float, table: np.ndarray) -> float:
    """``P(kernels.gaussian(...) <= x)``: ``(count - 56 + u - 1/2) * NORM <= x`` with ``u`` uniform on [0, 1)."""
    y = x / _STREAM_NORM + 56.5
    if y <= 0.0:
        return 0.0
    if y >= 113.0:
        return 1.0
    j = int(math.floor(y))
    return table[j] + (table[j + 1] - table[j]) * (y - j)


@nb.njit(cache=True)
def _quantizer(
    mean: float, variance: float, offset: float, step: float, clamp: bool, table: np.ndarray
) -> tuple[float, float]:
    """Mean and variance of ``step * j``, ``j = floor(t / step + offset + 1/2)`` (at least 0 with ``clamp``),
    ``t = mean + sqrt(variance) z``, ``z`` a ``kernels.gaussian`` draw (``table``: its CDF): the ADC's reading of a
    noisy current."""
    mu = mean / step + offset
    sigma = math.sqrt(variance) / step
    if sigma == 0.0:
        code = float(math.floor(mu + 0.5))
        return step * (max(code, 0.0) if clamp else code), 0.0
    if sigma >= 1.0 and not clamp:  # dithered: the quantizer's error is uniform and independent (Widrow)
        return step * mu, step * step * (sigma * sigma + 1.0 / 12.0)
    lo = float(math.floor(mu - 8.0 * sigma))
    hi = float(math.ceil(mu + 8.0 * sigma)) + 1.0
    below = _gaussian_cdf((lo - 0.5 - mu) / sigma, table)
    if clamp and lo <= 0.0:
        lo, below = 0.0, 0.0  # every code below 0 reads 0
    first, second = 0.0, 0.0
    j = lo
    while j <= hi:
        upper = _gaussian_cdf((j + 0.5 - mu) / sigma, table)
        p = upper - below
        first += p * j
        second += p * j * j
        below = upper
        j += 1.0
    return step * first, step * step * max(second - first * first, 0.0)


@nb.njit(cache=True, parallel=True)
def _tables(
    mu: np.ndarray,
    var: np.ndarray,
    cell_noise: np.ndarray,
    column_noise: float,
    offsets: np.ndarray,
    step: float,
    weights: np.ndarray,
    dithered: np.ndarray,
    mean_out: np.ndarray,
    variance_out: np.ndarray,
    table: np.ndarray,
) -> None:
    """The error tables of one block (the module's docstring): for ``k`` active cells and column ``c``, the sum
    over arrays ``a`` of ``weights[a]`` times ``E[D]`` and of ``weights[a]^2`` times ``Var[D]``, ``D`` the error of
    a reading over the integer current (or over the realized current where ``dithered[a, c]``)."""
    arrays, cols = mu.shape
    residues = max(int(step), 1)
    rows = mean_out.shape[0] - 1
    for k in nb.prange(mean_out.shape[0]):
        # k of the column's rows drawn without replacement: the sum's variance has the finite-population factor
        spread = k * (rows - k) / max(rows - 1, 1)
        for c in range(cols):
            mean_sum, variance_sum = 0.0, 0.0
            for a in range(arrays):
                noise = k * cell_noise[a, c] + column_noise
                if k == 0:  # no active cell: the current is exactly 0
                    e, v = _quantizer(0.0, noise, offsets[a, c], step, True, table)
                else:
                    e, second = 0.0, 0.0
                    for u in range(residues):  # an integer current's residue modulo the step, uniform
                        eu, vu = _quantizer(
                            u + k * mu[a, c], spread * var[a, c] + noise, offsets[a, c], step, False, table
                        )
                        e += (eu - u) / residues
                        second += (vu + (eu - u) ** 2) / residues
                    v = second - e * e
                    if dithered[a, c]:  # the realized remainders are in the product
                        e -= k * mu[a, c]
                        v -= spread * var[a, c]
                mean_sum += weights[a] * e
                variance_sum += weights[a] * weights[a] * max(v, 0.0)
            mean_out[k, c] = mean_sum
            variance_out[k, c] = variance_sum
