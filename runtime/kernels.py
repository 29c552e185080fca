"""numba kernels of the simulator: every array read of a row block, from input codes to shift-added partial sums.

One array read applies one bit plane of an input vector to the rows and gives a current per column; the hardware
then digitizes every current with an ADC and the digital shift-adder weighs and sums the readings. ``read_arrays``
does all of it for a batch of input vectors in one kernel, without writing a current to memory: the bit planes
packed as row masks, each read's currents summed from subset-sum tables of the conductance rows (a cache-sized
tile of columns at a time), read noise, the ADC's offset, step and saturation (counted), and the shift-add. Noise
comes from ``gaussian``, a counter-based generator: the draw for a read depends only on the key and the read's
index, so results do not depend on batch size, thread count or call order.

Compiled with ``cache=True``: the first run on a machine compiles (seconds) and stores the machine code beside
this module (or in ``NUMBA_CACHE_DIR``); later runs load it.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_LOW16 = np.uint64(0xFFFF)
#: 112 fair bits and a 16-bit dither: ``(popcount - 56 + u - 1/2)`` has mean 0 and variance 112/4 + 1/12.
_NORM = np.float32(1.0 / np.sqrt(28.0 + 1.0 / 12.0))


@nb.njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    """splitmix64's finalizer: a bijection of 64-bit words whose outputs pass BigCrush as a counter hash."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True, inline="always")
def _popcount(x: np.uint64) -> np.uint64:
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@nb.njit(cache=True, inline="always")
def gaussian(key: np.uint64, counter: np.uint64) -> np.float32:
    """A standard normal draw for ``counter`` under ``key``: a binomial(112, 1/2) count of hashed bits plus a
    uniform dither, standardized (exact mean 0 and variance 1; tails end at 10.6 sigma; kurtosis 2.98 against a
    Gaussian's 3). About 1 ns, against 8-13 ns for numpy's generators, and parallel without shared state."""
    h1 = _mix(key + np.uint64(2) * counter)
    h2 = _mix(key + np.uint64(2) * counter + np.uint64(1))
    count = _popcount(h1) + _popcount(h2 >> np.uint64(16))
    dither = np.float32(h2 & _LOW16) * np.float32(1.0 / 65536.0)
    return (np.float32(count) - np.float32(56.0) + dither - np.float32(0.5)) * _NORM


@nb.njit(cache=True)
def gaussians(key: np.uint64, start: np.uint64, out: np.ndarray) -> None:
    """``out[i] = gaussian(key, start + i)``: the generator's stream, for tests and for callers outside numba."""
    for i in range(out.size):
        out[i] = gaussian(key, start + np.uint64(i))


@nb.njit(cache=True)
def gaussian_rows(key: np.uint64, starts: np.ndarray, out: np.ndarray) -> None:
    """``out[i, j] = gaussian(key, starts[i] + j)``: one row of consecutive draws per start (a read's columns)."""
    rows, cols = out.shape
    for i in range(rows):
        for j in range(cols):
            out[i, j] = gaussian(key, np.uint64(starts[i]) + np.uint64(j))


def stream_key(*words: int) -> np.uint64:
    """A generator key from integers (seed, array group, ...): each word hashed into the previous."""
    key = np.uint64(0)
    with np.errstate(over="ignore"):
        for word in words:
            key = np.uint64(_mix_py(int(key) ^ ((int(word) * int(_GOLDEN)) & 0xFFFFFFFFFFFFFFFF)))
    return key


def _mix_py(z: int) -> int:
    mask = 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * int(_MIX1)) & mask
    z = ((z ^ (z >> 27)) * int(_MIX2)) & mask
    return z ^ (z >> 31)


#: Columns of one tile: one read's currents of a tile stay in L1 (64 float32, 4 AVX-512 words), its tables in L2.
TILE = 64
#: Tasks a call shares among its threads at least, where it has the vectors for them (results do not depend on it).
TASKS = 16
#: Input vectors a task reads at least: building a tile's tables costs about what reading 64 vectors through it does.
CHUNK_VECTORS = 64
#: Row groups summed in one pass over a tile's currents (a tree of adds, one load and store of the sums per pass;
#: ``_add_subsets`` spells the tree out for 8).
GROUP_BLOCK = 8


@nb.njit(cache=True)
def group_bits(rows: int) -> int:
    """Rows per subset-sum group: 8 (a table of 256 sums per group, 512 KiB a tile for 64 rows), or 4 past 128 rows
    so that a tile's table stays within the L2 cache (1 MiB for 1024 rows)."""
    return 8 if rows <= 128 else 4


@nb.njit(cache=True, parallel=True)
def read_arrays(
    codes: np.ndarray,
    zero_point: int,
    dac_bits: int,
    phase_planes: np.ndarray,
    conductance: np.ndarray,
    noise_ratio: np.ndarray,
    sigma_cell: float,
    sigma_column: float,
    offsets: np.ndarray,
    step: float,
    top: float,
    weights: np.ndarray,
    key: np.uint64,
    vector_index: np.ndarray,
    out: np.ndarray,
    saturated: np.ndarray,
) -> None:
    """Every read of a row block for input vectors ``codes`` ``[vectors, rows]``, digitized and shift-added into
    ``out[m, c]`` (int64, added to).

    The DACs apply ``planes`` bit planes per vector: ``phase_planes[f]`` planes of phase ``f``, where phase 0 is the
    code itself when ``zero_point`` is 0 and otherwise ``max(code - zero_point, 0)``, phase 1 ``max(zero_point -
    code, 0)`` (a signed stream's negative part); plane ``p`` of a phase holds its bits ``p x dac_bits`` and up.
    ``conductance[r, a * C + c]`` is the cell at row ``r``, column ``c`` of array ``a`` (sign-major then slice), in
    level units; the current of column ``j`` for a plane is ``sum_r drive_r * conductance[r, j]``, summed without a
    GEMM: each plane's DAC bit ``b`` is a mask of rows, split in groups of ``group_bits(rows)`` rows whose subset sums
    a table holds per tile of ``TILE`` columns (each entry made when a read first needs it), so a current is a few
    table entries (all-zero groups skipped) times ``2^b``. The sums' order is fixed by the table, not by the batch:
    float32 rounding differs from a BLAS GEMM's in the last bit (exact for integer levels, as float32 sums of integers
    below 2^24 are).

    Read noise: sigma^2 = sigma_cell^2 * active + sigma_column^2, ``active`` the plane's sum of squared DAC codes, or,
    when ``noise_ratio`` is ``[rows, A * C]`` (read noise that scales with conductance, each cell's ``|g| / g_max``),
    that column's sum of squared codes times ``noise_ratio``, summed from subset-sum tables of ``noise_ratio`` as the
    currents are, and sigma computed in float32 (pass a ``[0, 0]`` array otherwise). ``offsets[a * C + c]`` is the
    column ADC's static offset in its LSBs. Each reading becomes ``min(max(floor((I + noise) / step + offset + 1/2),
    0), top) * step`` and adds ``weights[p, a]`` times that to ``out[m, c]``. The noise of read ``(m, p, a, c)`` is
    ``gaussian(key, counter)`` with ``counter = (vector_index[m] * P + p) * A * C + a * C + c``, ``vector_index[m]``
    the input vector's position in the stream. ``saturated[m]`` (int64, added to) counts the readings of vector ``m``
    whose code before the clamp is above ``top``.
    """
    vectors, rows = codes.shape
    width = conductance.shape[1]
    planes, arrays = weights.shape
    columns = width // arrays
    noisy = sigma_cell > 0.0 or sigma_column > 0.0
    per_column = noise_ratio.shape[0] == rows and sigma_cell > 0.0
    inv_step = np.float32(1.0 / step)
    cell_variance, column_variance = np.float32(sigma_cell * sigma_cell), np.float32(sigma_column * sigma_column)
    bits = group_bits(rows)
    groups = -(-rows // bits)
    blocks = -(-groups // GROUP_BLOCK)
    # the planes as row masks: words[m, p, b, g] has bit i set when DAC bit b of plane p drives row g * bits + i
    words = np.zeros((vectors, planes, dac_bits, blocks * GROUP_BLOCK), np.uint8)
    squares = np.zeros((vectors, planes), np.float32)
    for m in nb.prange(vectors):
        _pack_planes(codes[m], zero_point, dac_bits, phase_planes, bits, words[m], squares[m])
    tiles = -(-columns // TILE)
    # tasks: tiles x vector chunks, chunks only where the tiles are too few to share out (each builds its tables)
    chunks = max(1, min(-(-TASKS // tiles), vectors // CHUNK_VECTORS))
    per_chunk = -(-vectors // chunks)
    tile_saturated = np.zeros((tiles, vectors), np.int64)
    for task in nb.prange(chunks * tiles):
        t = task % tiles
        first = (task // tiles) * per_chunk
        last = min(vectors, first + per_chunk)
        c0 = t * TILE
        n = min(TILE, columns - c0)
        table = np.zeros((blocks * GROUP_BLOCK, 1 << bits, TILE), conductance.dtype)
        ratios = np.zeros((blocks * GROUP_BLOCK if per_column else 0, 1 << bits, TILE), np.float32)
        made = np.zeros((blocks * GROUP_BLOCK, 1 << bits), np.bool_)  # which entries of table hold this array's sums
        made_ratios = np.zeros((blocks * GROUP_BLOCK, 1 << bits), np.bool_)
        eager = (last - first) * planes * dac_bits >= 1 << bits
        current = np.empty(TILE, conductance.dtype)
        active = np.empty(TILE, np.float32)
        noise = np.zeros(TILE, np.float32)
        for a in range(arrays):
            j0 = a * columns + c0
            made[:] = False  # a new array: its tables are made as its reads need them, or all at once for a chunk
            made_ratios[:] = False  # that reads more words than a group has entries (the same sums either way)
            made[:, 0] = True
            made_ratios[:, 0] = True
            if eager:
                for g in range(groups):
                    for w in range(1, 1 << bits):
                        _subset_sum(conductance, j0, n, bits, table, made, g, w)
                        if per_column:
                            _subset_sum(noise_ratio, j0, n, bits, ratios, made_ratios, g, w)
            offset = offsets[j0 : j0 + n]
            for m in range(first, last):
                partial = out[m, c0 : c0 + n]
                count = 0
                for p in range(planes):
                    plane = words[m, p]
                    current[:] = 0
                    for b in range(dac_bits):
                        scale = conductance.dtype.type(1 << b)
                        _add_subsets(
                            conductance, j0, n, bits, table, made, not eager, plane[b], plane[b], scale, current
                        )
                    if noisy:
                        base = np.uint64((vector_index[m] * planes + p) * width + j0)
                        if per_column:
                            active[:] = 0
                            for b in range(dac_bits):  # a code's square: sum over bit pairs of 2^(b + b')
                                for b2 in range(dac_bits):
                                    square = np.float32(1 << (b + b2))
                                    words_b, words_b2, lazy = plane[b], plane[b2], not eager
                                    _add_subsets(
                                        noise_ratio,
                                        j0,
                                        n,
                                        bits,
                                        ratios,
                                        made_ratios,
                                        lazy,
                                        words_b,
                                        words_b2,
                                        square,
                                        active,
                                    )
                            for i in range(n):  # float32: a sqrt per read
                                sigma = np.sqrt(cell_variance * active[i] + column_variance)
                                noise[i] = sigma * gaussian(key, base + np.uint64(i))
                        else:
                            sigma = np.float32(
                                np.sqrt(sigma_cell * sigma_cell * squares[m, p] + sigma_column * sigma_column)
                            )
                            for i in range(n):
                                noise[i] = sigma * gaussian(key, base + np.uint64(i))
                    weight = weights[p, a] * np.int64(step)
                    if top < 2**24:  # float32 holds the top code: digitize in float32 (half the vector work)
                        count += _digitize(current, noise, offset, inv_step, np.float32(top), weight, partial)
                    else:
                        count += _digitize(current, noise, offset, inv_step, top, weight, partial)
                tile_saturated[t, m] += count
    for m in range(vectors):
        for t in range(tiles):
            saturated[m] += tile_saturated[t, m]


@nb.njit(cache=True, inline="always")
def _digitize(
    current: np.ndarray,
    noise: np.ndarray,
    offset: np.ndarray,
    inv_step: np.float32,
    top: float | np.floating,
    weight: int,
    partial: np.ndarray,
) -> int:
    """``partial[i] += weight * min(max(floor((current[i] + noise[i]) * inv_step + offset[i] + 1/2), 0), top)``
    over the tile's ``len(partial)`` columns; returns how many codes before the clamp pass ``top`` (float32 when it
    holds the top code exactly, float64 above 2^24)."""
    count = 0
    for i in range(len(partial)):
        code = np.floor((current[i] + noise[i]) * inv_step + offset[i] + np.float32(0.5))
        if code > top:
            count += 1
        code = min(max(code, np.float32(0.0)), top)
        partial[i] += weight * np.int64(code)
    return count


@nb.njit(cache=True, inline="always")
def _pack_planes(
    codes: np.ndarray,
    zero_point: int,
    dac_bits: int,
    phase_planes: np.ndarray,
    bits: int,
    words: np.ndarray,
    squares: np.ndarray,
) -> None:
    """One vector's planes as row masks (``words[p, b, g]``) and each plane's sum of squared DAC codes."""
    mask = (1 << dac_bits) - 1
    first = 0
    for f in range(len(phase_planes)):
        for r in range(len(codes)):
            x = int(codes[r])
            if zero_point != 0:
                x = max(x - zero_point if f == 0 else zero_point - x, 0)
            g, i = divmod(r, bits)
            for q in range(phase_planes[f]):
                v = (x >> (q * dac_bits)) & mask
                if v:
                    squares[first + q] += v * v
                    for b in range(dac_bits):
                        if (v >> b) & 1:
                            words[first + q, b, g] |= np.uint8(1 << i)
        first += phase_planes[f]


@nb.njit(cache=True, inline="always")
def _subset_sum(
    rows: np.ndarray, j0: int, n: int, bits: int, table: np.ndarray, made: np.ndarray, g: int, w: int
) -> None:
    """Make ``table[g, w, :n]``, the sum of ``rows[g * bits + i, j0 : j0 + n]`` over the bits ``i`` set in ``w``, if
    ``made[g, w]`` says it is not yet made: each entry is the entry without its lowest bit plus that bit's row (rows
    past the last add nothing), made on first use from its nearest made ancestor (``made[g, 0]``: entry 0 is zero).
    An entry's value does not depend on which entries were made before it: only the tables' cost follows the reads."""
    m = np.int64(w)
    while not made[g, m]:
        m ^= m & -m
    # the bits stripped, all below m's, added back highest first: each is the lowest bit of the entry it makes
    rest = np.int64(w) ^ m
    count = rows.shape[0]
    while rest:
        i = np.int64(bits - 1)
        while ((rest >> i) & 1) == 0:
            i -= 1
        entry = m | (1 << i)
        dst, src = table[g, entry], table[g, m]
        r = g * bits + i
        if r < count:
            row = rows[r, j0 : j0 + n]
            for k in range(n):
                dst[k] = src[k] + row[k]
        else:
            for k in range(n):
                dst[k] = src[k]
        made[g, entry] = True
        m = entry
        rest ^= 1 << i


@nb.njit(cache=True, inline="always")
def _add_subsets(
    rows: np.ndarray,
    j0: int,
    n: int,
    bits: int,
    table: np.ndarray,
    made: np.ndarray,
    lazy: bool,
    words: np.ndarray,
    other: np.ndarray,
    scale: float | np.floating,
    out: np.ndarray,
) -> None:
    """``out += scale * sum_g table[g, words[g] & other[g]]`` (entries made on first use from ``rows`` if ``lazy``),
    ``GROUP_BLOCK`` groups summed as a tree per pass over ``out``; a block whose masks are all zero adds nothing and
    is skipped."""
    for g0 in range(0, len(words), GROUP_BLOCK):
        w0 = words[g0] & other[g0]
        w1 = words[g0 + 1] & other[g0 + 1]
        w2 = words[g0 + 2] & other[g0 + 2]
        w3 = words[g0 + 3] & other[g0 + 3]
        w4 = words[g0 + 4] & other[g0 + 4]
        w5 = words[g0 + 5] & other[g0 + 5]
        w6 = words[g0 + 6] & other[g0 + 6]
        w7 = words[g0 + 7] & other[g0 + 7]
        if (w0 | w1 | w2 | w3 | w4 | w5 | w6 | w7) == 0:
            continue
        if lazy:
            for k, w in enumerate((w0, w1, w2, w3, w4, w5, w6, w7)):
                if not made[g0 + k, w]:
                    _subset_sum(rows, j0, n, bits, table, made, g0 + k, w)
        e0, e1, e2, e3 = table[g0, w0], table[g0 + 1, w1], table[g0 + 2, w2], table[g0 + 3, w3]
        e4, e5, e6, e7 = table[g0 + 4, w4], table[g0 + 5, w5], table[g0 + 6, w6], table[g0 + 7, w7]
        if scale == 1:  # a DAC's bit 0 and every 1-bit DAC: no multiply
            for i in range(TILE):
                out[i] += ((e0[i] + e1[i]) + (e2[i] + e3[i])) + ((e4[i] + e5[i]) + (e6[i] + e7[i]))
        else:
            for i in range(TILE):
                out[i] += scale * (((e0[i] + e1[i]) + (e2[i] + e3[i])) + ((e4[i] + e5[i]) + (e6[i] + e7[i])))
