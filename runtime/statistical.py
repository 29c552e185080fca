"""The statistical fidelity level: a row block's read in one GEMM, its per-read noise and ADC rounding drawn in
aggregate per output.

The per-read level (``cimc.runtime.kernels.read_arrays``) reads bit plane ``p`` of an input vector on array ``a``
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

The ADC's clamp at 0 acts on the readings whose integer current is 0 (every active cell at level 0: common, on
the unused array of a pair and the high slices of small weights) when their remainders, noise and offset fall
below half a step: each table entry mixes those readings (probability ``C(n0, k) / C(R, k)``, ``n0`` the column's
level-0 cells; their remainders' own mean and variance) with the others. Without it the spread is 5-15% too wide
with 0.2-LSB ADC offsets (measured on CIFAR ResNet-18's layers).

Not modelled: the realized remainders of undithered columns (the draws stand for them, so one input read again
and again varies more than per read, where they are fixed; over a data set the two agree), and correlations
between the rows a vector activates and the remainders of those rows, or between its planes' active rows (inputs
whose planes share their rows, as saturated pixels do: the first layer of the digits MLP, whose spread is then
10-15% below the per-read one without stuck cells).

A layer whose row blocks read one codes value (``Layer``) is read at once: one GEMM with every block's folded
conductances in place, the blocks' tables projected on a few functions of ``k`` they share (their leading singular
vectors) so that the error's mean and variance are two thin products of per-range plane counts, and one draw per
output of the layer, the blocks' independent errors summed.

Noise: one ``kernels.gaussian`` per output, keyed by (seed, group, replica, ``STREAM``) for a block, (seed,
``STREAM``, the accumulate's position in ``main``) for a layer, and counted by the input vector's position in the
stream and the column, so results do not depend on the batch size.
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
    # the cells at level 0: a plane that activates only those reads an integer current of 0, which the ADC clamps
    zero = integer == 0
    zeros = zero.sum(axis=1)
    mu_zero = np.where(zero, remainder, 0.0).sum(axis=1) / np.maximum(zeros, 1)
    var_zero = np.where(zero, (remainder - mu_zero[:, None, :]) ** 2, 0.0).sum(axis=1) / np.maximum(zeros, 1)
    only_zero = np.empty((rows + 1, *zeros.shape))  # [k + 1, arrays, cols]
    _only_zero(zeros, only_zero)
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
        zeros,
        mu_zero,
        var_zero,
        only_zero,
        cell_noise,
        sigma_column**2,
        offset,
        step,
        sign * shift,
        dithered,
        mean_table,
        variance_table,
        _STREAM_CDF,
        *_quantizer_grid(),
        *_clamped_grid(),
    )
    folded = np.where(dithered[:, None, :], g, integer)
    weights = np.tensordot(sign * shift, folded, axes=1)  # sum_a sign_a shift_a G_a: [rows, cols]
    exact = float(rows) * float(np.abs(weights).max(initial=0.0)) * input_top < 2**24  # float32 sums of integers
    return Block(weights.astype(np.float32 if exact else np.float64), mean_table, variance_table, key)


@nb.njit(cache=True)
def _only_zero(zeros: np.ndarray, out: np.ndarray) -> None:
    """``out[k, a, c]``: the probability that ``k`` rows drawn without replacement from the ``out.shape[0] - 1``
    rows of column ``c`` of array ``a`` are all among its ``zeros[a, c]`` level-0 cells."""
    rows = out.shape[0] - 1
    arrays, cols = zeros.shape
    for a in range(arrays):
        for c in range(cols):
            p = 1.0
            out[0, a, c] = p
            for k in range(rows):
                p *= min(max((zeros[a, c] - k) / (rows - k), 0.0), 1.0)
                out[k + 1, a, c] = p


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


@dataclass(frozen=True)
class Placed:
    """A prepared block where its layer puts it: its first row in the layer's codes and its first column in the
    layer's sums."""

    block: Block
    row: int
    column: int


class Layer:
    """A whole crossbar layer read statistically at once (its row blocks summed, as ``cim.accumulate`` sums them):
    one GEMM of the codes with every block's folded conductances in place, the blocks' error tables reduced to a
    few shared functions of the active-cell count (``TABLE_TOLERANCE``) so that their means and variances are two
    thin products, and one Gaussian per output of the layer (the blocks' errors are independent: their sum is one
    Gaussian with the sum of their variances). Equal in distribution to reading each block with ``read``, at about
    the cost of the exact layer's product. For codes of at most 8 bits and blocks of at most 255 rows (the planes'
    active cells are counted a byte each).
    """

    def __init__(
        self,
        placed: list[Placed],
        depth: int,
        columns: int,
        *,
        zero_point: int,
        phase_planes: np.ndarray,
        plane_weights: np.ndarray,
        key: np.uint64,
    ) -> None:
        exact = all(p.block.weights.dtype == np.float32 for p in placed)
        self.weights = np.zeros((depth, columns), np.float32 if exact else np.float64)
        ranges: dict[tuple[int, int], int] = {}
        for p in placed:
            rows, width = p.block.weights.shape
            self.weights[p.row : p.row + rows, p.column : p.column + width] += p.block.weights
            ranges.setdefault((p.row, rows), len(ranges))
        #: the row ranges the blocks read ([start, stop) per range): their planes' active cells are counted apart
        self.ranges = np.array([[start, start + rows] for start, rows in ranges], dtype=np.int64)
        size = max(rows for _, rows in ranges) + 1
        self.mean_basis, self.mean_coefficients = _reduce([p.block.mean for p in placed], size)
        self.variance_basis, self.variance_coefficients = _reduce([p.block.variance for p in placed], size)
        rank_mean, rank_variance = self.mean_basis.shape[1], self.variance_basis.shape[1]
        self.mean_product = np.zeros((len(ranges) * rank_mean, columns))
        self.variance_product = np.zeros((len(ranges) * rank_variance, columns))
        for i, p in enumerate(placed):
            r = ranges[(p.row, p.block.weights.shape[0])]
            width = p.block.weights.shape[1]
            self.mean_product[r * rank_mean : (r + 1) * rank_mean, p.column : p.column + width] += (
                self.mean_coefficients[i]
            )
            self.variance_product[r * rank_variance : (r + 1) * rank_variance, p.column : p.column + width] += (
                self.variance_coefficients[i]
            )
        dtype = self.weights.dtype
        self.mean_product = self.mean_product.astype(dtype)
        self.variance_product = self.variance_product.astype(dtype)
        self.zero_point = zero_point
        self.bits = _plane_bits(zero_point, phase_planes)
        self.plane_weights = plane_weights.astype(np.float64)
        self.key = key

    def __call__(self, codes: np.ndarray, vector_index: np.ndarray) -> np.ndarray:
        """The layer's sums (int64 ``[vectors, columns]``) for its codes ``[vectors, depth]`` (uint8);
        ``vector_index`` picks each vector's noise (its position in the stream)."""
        vectors, columns = len(codes), self.weights.shape[1]
        dtype = self.weights.dtype
        mean_features = np.empty((vectors, self.mean_product.shape[0]), dtype)
        variance_features = np.empty((vectors, self.variance_product.shape[0]), dtype)
        x = np.zeros(codes.shape, dtype)  # rows no block reads stay 0
        _features(
            codes,
            float(self.zero_point),
            self.bits,
            self.plane_weights,
            self.ranges,
            self.mean_basis,
            self.variance_basis,
            x,
            mean_features,
            variance_features,
        )
        mean = x @ self.weights
        mean += mean_features @ self.mean_product
        variance = variance_features @ self.variance_product
        noise = np.empty((vectors, columns), dtype=np.float32)
        kernels.gaussian_rows(self.key, vector_index.astype(np.int64) * columns, noise)
        out = np.empty((vectors, columns), dtype=np.int64)
        _add_noise(mean, variance, noise, out)
        return out


#: The largest error, relative to the tables' largest singular value, that reducing a layer's tables to a few
#: shared functions of the active-cell count may make (their singular values fall off fast: 1e-3 at rank 6-9 on
#: the digits CNN with every PCM effect on; a variance off by 0.3% moves the drawn spread by 0.15%).
TABLE_TOLERANCE = 3e-3


def _reduce(tables: list[np.ndarray], size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A basis ``[size, rank]`` of the tables' columns (each table ``[k + 1, cols]`` padded to ``size`` rows: no
    plane has more active cells than its block's rows) and each table's coefficients ``[rank, cols]`` in it: the
    leading singular vectors (from the eigenvectors of the small Gram matrix), as many as ``TABLE_TOLERANCE``
    asks."""
    padded = [np.pad(t, ((0, size - len(t)), (0, 0))) for t in tables]
    gram = np.zeros((size, size))
    for t in tables:
        _add_gram(np.ascontiguousarray(t, dtype=np.float64), gram)
    eigenvalues, vectors = np.linalg.eigh(gram)  # ascending
    energy = np.maximum(eigenvalues[::-1], 0.0)
    if not energy.size or energy[0] == 0:
        basis = np.zeros((size, 1))
    else:
        left = np.sqrt(np.append(np.cumsum(energy[::-1])[::-1][1:], 0.0))  # the error of keeping 1, 2, ... vectors
        rank = int(np.searchsorted(-left, -TABLE_TOLERANCE * np.sqrt(energy[0]))) + 1
        basis = vectors[:, ::-1][:, :rank]
    return np.ascontiguousarray(basis), [basis.T @ t for t in padded]


@nb.njit(cache=True)
def _add_gram(table: np.ndarray, gram: np.ndarray) -> None:
    """``gram[:k, :k] += table @ table.T`` (``table`` ``[k, cols]``), summed in a fixed order on one thread: the
    tables are small and many, and a multithreaded BLAS spends far longer synchronizing on them (100x on a loaded
    machine) than it saves."""
    k, cols = table.shape
    for i in range(k):
        for j in range(i + 1):
            total = 0.0
            for c in range(cols):
                total += table[i, c] * table[j, c]
            gram[i, j] += total
            if j != i:
                gram[j, i] += total


def _plane_bits(zero_point: int, phase_planes: np.ndarray) -> np.ndarray:
    """``[256, words]`` uint64: byte ``q % 8`` of word ``q // 8`` of row ``v`` is bit ``q`` of code ``v``'s planes
    (plane ``q``: the phases' planes in order, as ``kernels.bit_planes`` makes them), so that adding the rows of a
    block's codes counts every plane's active cells at once, one byte each."""
    planes = int(np.sum(phase_planes))
    table = np.zeros((256, -(-planes // 8)), dtype=np.uint64)
    for v in range(256):
        first = 0
        for f, count in enumerate(phase_planes):
            value = v if not zero_point else max(v - zero_point if f == 0 else zero_point - v, 0)
            for p in range(int(count)):
                q = first + p
                table[v, q // 8] |= np.uint64(((value >> p) & 1) << (8 * (q % 8)))
            first += int(count)
    return table


@nb.njit(cache=True, parallel=True)
def _features(
    codes: np.ndarray,
    zero_point: float,
    bits: np.ndarray,
    plane_weights: np.ndarray,
    ranges: np.ndarray,
    mean_basis: np.ndarray,
    variance_basis: np.ndarray,
    signed: np.ndarray,
    mean_out: np.ndarray,
    variance_out: np.ndarray,
) -> None:
    """In one pass over the codes: ``signed`` = codes - zero point (the product's operand), and per vector and row
    range the planes' active-cell counts ``k_p`` (``_plane_bits``: one add per code and 8 planes; a range has at
    most 255 rows) and from them ``mean_out[m, r * J + j] = sum_p pw_p mean_basis[k_p, j]``, ``variance_out`` the
    same with ``pw_p^2`` and ``variance_basis``."""
    vectors = codes.shape[0]
    planes = plane_weights.shape[0]
    two = bits.shape[1] > 1
    rank_mean, rank_variance = mean_basis.shape[1], variance_basis.shape[1]
    for m in nb.prange(vectors):
        for r in range(ranges.shape[0]):
            low, high = np.uint64(0), np.uint64(0)
            for i in range(ranges[r, 0], ranges[r, 1]):
                code = codes[m, i]
                signed[m, i] = code - zero_point
                low += bits[code, 0]
                if two:
                    high += bits[code, 1]
            for j in range(rank_mean):
                mean_out[m, r * rank_mean + j] = 0.0
            for j in range(rank_variance):
                variance_out[m, r * rank_variance + j] = 0.0
            for p in range(planes):
                word = low if p < 8 else high
                k = (word >> np.uint64(8 * (p % 8))) & np.uint64(0xFF)
                weight = plane_weights[p]
                for j in range(rank_mean):
                    mean_out[m, r * rank_mean + j] += weight * mean_basis[k, j]
                for j in range(rank_variance):
                    variance_out[m, r * rank_variance + j] += weight * weight * variance_basis[k, j]


@nb.njit(cache=True, parallel=True)
def _add_noise(mean: np.ndarray, variance: np.ndarray, noise: np.ndarray, out: np.ndarray) -> None:
    """``out = rint(mean + sqrt(max(variance, 0)) * noise)`` (int64): the drawn error, rounded to the integers the
    shift-add makes."""
    vectors, columns = mean.shape
    for m in nb.prange(vectors):
        for c in range(columns):
            out[m, c] = np.int64(np.rint(mean[m, c] + math.sqrt(max(variance[m, c], 0.0)) * noise[m, c]))


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


#: The quantizer's moments for a noise below one step come from a grid over the current's place between two
#: codes (``GRID[0]`` steps) and the noise's sigma in steps (``GRID[1]`` steps), interpolated: a table entry then
#: costs a lookup, not a sum of CDFs.
GRID = (512, 256)
_grid: tuple[np.ndarray, np.ndarray] | None = None


def _quantizer_grid() -> tuple[np.ndarray, np.ndarray]:
    """``_quantizer``'s mean and variance (step 1, no offset) at ``mean = f / GRID[0]`` and ``sigma = s /
    GRID[1]``, ``f`` and ``s`` over the grid (both ends included), computed once."""
    global _grid
    if _grid is None:
        mean = np.empty((GRID[0] + 1, GRID[1] + 1))
        variance = np.empty_like(mean)
        _fill_grid(mean, variance, 0.0, 1.0 / GRID[0], False, _STREAM_CDF)
        _grid = mean, variance
    return _grid


@nb.njit(cache=True)
def _fill_grid(
    mean: np.ndarray, variance: np.ndarray, low: float, spacing: float, clamp: bool, table: np.ndarray
) -> None:
    """``_quantizer``'s moments (step 1, no offset) at currents ``low + f * spacing`` and sigmas ``s / (columns -
    1)`` into row ``f``, column ``s``."""
    places, sigmas = mean.shape
    for f in range(places):
        for s in range(sigmas):
            sigma = s / (sigmas - 1)
            mean[f, s], variance[f, s] = _quantizer(low + f * spacing, sigma * sigma, 0.0, 1.0, clamp, table)


@nb.njit(cache=True)
def _bilinear(grid_mean: np.ndarray, grid_variance: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """Both grids interpolated at the fractional indices ``(x, y)``."""
    i, j = min(int(x), grid_mean.shape[0] - 2), min(int(y), grid_mean.shape[1] - 2)
    dx, dy = x - i, y - j
    e = (grid_mean[i, j] * (1 - dx) + grid_mean[i + 1, j] * dx) * (1 - dy)
    e += (grid_mean[i, j + 1] * (1 - dx) + grid_mean[i + 1, j + 1] * dx) * dy
    v = (grid_variance[i, j] * (1 - dx) + grid_variance[i + 1, j] * dx) * (1 - dy)
    v += (grid_variance[i, j + 1] * (1 - dx) + grid_variance[i + 1, j + 1] * dx) * dy
    return e, v


#: The clamped quantizer's grid: currents from ``CLAMPED[0]`` to ``CLAMPED[1]`` steps (beyond, the clamp at 0 does
#: not act for a noise below one step, or the moments are summed), ``CLAMPED[2]`` points a step.
CLAMPED = (-2.0, 10.0, 64)
_clamped: tuple[np.ndarray, np.ndarray] | None = None


def _clamped_grid() -> tuple[np.ndarray, np.ndarray]:
    """``_quantizer``'s mean and variance with the clamp at 0 (step 1, no offset) over ``CLAMPED`` and sigmas
    ``s / GRID[1]``, computed once."""
    global _clamped
    if _clamped is None:
        low, high, per_step = CLAMPED
        mean = np.empty((int((high - low) * per_step) + 1, GRID[1] + 1))
        variance = np.empty_like(mean)
        _fill_grid(mean, variance, low, 1.0 / per_step, True, _STREAM_CDF)
        _clamped = mean, variance
    return _clamped


@nb.njit(cache=True)
def _quantizer_clamped(
    mean: float,
    variance: float,
    offset: float,
    step: float,
    grid_mean: np.ndarray,
    grid_variance: np.ndarray,
    table: np.ndarray,
) -> tuple[float, float]:
    """``_quantizer`` with the clamp at 0: from its grid (bilinear) where the current is within ``CLAMPED`` and the
    noise below one step, else summed."""
    mu = mean / step + offset
    sigma = math.sqrt(variance) / step
    low, high, per_step = CLAMPED
    if sigma == 0.0 or sigma >= 1.0 or mu < low or mu >= high:
        return _quantizer(mean, variance, offset, step, True, table)
    e, v = _bilinear(grid_mean, grid_variance, (mu - low) * per_step, sigma * (grid_mean.shape[1] - 1))
    return step * e, step * step * v


@nb.njit(cache=True)
def _quantizer_fast(
    mean: float, variance: float, offset: float, step: float, grid_mean: np.ndarray, grid_variance: np.ndarray
) -> tuple[float, float]:
    """``_quantizer`` without the clamp, from the grid (bilinear) where the noise is below one step: the reading
    of a current ``n + f`` steps is ``n`` steps plus that of ``f``."""
    mu = mean / step + offset
    sigma = math.sqrt(variance) / step
    if sigma == 0.0:
        return step * math.floor(mu + 0.5), 0.0
    if sigma >= 1.0:
        return step * mu, step * step * (sigma * sigma + 1.0 / 12.0)
    whole = math.floor(mu)
    x, y = (mu - whole) * (grid_mean.shape[0] - 1), sigma * (grid_mean.shape[1] - 1)
    e, v = _bilinear(grid_mean, grid_variance, x, y)
    return step * (whole + e), step * step * v


@nb.njit(cache=True)
def _tables(
    mu: np.ndarray,
    var: np.ndarray,
    zeros: np.ndarray,
    mu_zero: np.ndarray,
    var_zero: np.ndarray,
    only_zero: np.ndarray,
    cell_noise: np.ndarray,
    column_noise: float,
    offsets: np.ndarray,
    step: float,
    weights: np.ndarray,
    dithered: np.ndarray,
    mean_out: np.ndarray,
    variance_out: np.ndarray,
    table: np.ndarray,
    grid_mean: np.ndarray,
    grid_variance: np.ndarray,
    clamped_mean: np.ndarray,
    clamped_variance: np.ndarray,
) -> None:
    """The error tables of one block (the module's docstring): for ``k`` active cells and column ``c``, the sum
    over arrays ``a`` of ``weights[a]`` times ``E[D]`` and of ``weights[a]^2`` times ``Var[D]``, ``D`` the error of
    a reading over the integer current (or over the realized current where ``dithered[a, c]``)."""
    arrays, cols = mu.shape
    residues = max(int(step), 1)
    rows = mean_out.shape[0] - 1
    for k in range(mean_out.shape[0]):
        # k of the column's rows drawn without replacement: the sum's variance has the finite-population factor
        spread = k * (rows - k) / max(rows - 1, 1)
        for c in range(cols):
            mean_sum, variance_sum = 0.0, 0.0
            for a in range(arrays):
                noise = k * cell_noise[a, c] + column_noise
                if k == 0:  # no active cell: the current is exactly 0
                    e, v = _quantizer(0.0, noise, offsets[a, c], step, True, table)
                else:
                    p0 = only_zero[k, a, c]  # every active cell at level 0: the integer current is 0
                    mean_rest = k * mu[a, c]
                    e, second = 0.0, 0.0
                    if p0 > 1e-9:
                        spread0 = k * (zeros[a, c] - k) / max(zeros[a, c] - 1, 1)
                        e0, v0 = _quantizer_clamped(
                            k * mu_zero[a, c],
                            spread0 * var_zero[a, c] + noise,
                            offsets[a, c],
                            step,
                            clamped_mean,
                            clamped_variance,
                            table,
                        )
                        e, second = p0 * e0, p0 * (v0 + e0 * e0)
                        if p0 < 1.0:
                            mean_rest = (k * mu[a, c] - p0 * k * mu_zero[a, c]) / (1.0 - p0)
                    if p0 < 1.0:
                        for u in range(residues):  # an integer current's residue modulo the step, uniform
                            eu, vu = _quantizer_fast(
                                u + mean_rest, spread * var[a, c] + noise, offsets[a, c], step, grid_mean, grid_variance
                            )
                            e += (1.0 - p0) * (eu - u) / residues
                            second += (1.0 - p0) * (vu + (eu - u) ** 2) / residues
                    v = second - e * e
                    if dithered[a, c]:  # the realized remainders are in the product
                        e -= k * mu[a, c]
                        v -= spread * var[a, c]
                mean_sum += weights[a] * e
                variance_sum += weights[a] * weights[a] * max(v, 0.0)
            mean_out[k, c] = mean_sum
            variance_out[k, c] = variance_sum
