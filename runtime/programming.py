"""Programming one array group in one pass: the static per-cell effects of ``cimc.runtime.analog.program_group``
fused into a numba kernel that visits each cell once, array by array, in stages that numba vectorizes (the draws
alone, then the arithmetic, with a vectorizable ``exp`` and ``log``). It releases the GIL, so the simulator programs
as many groups at once as numba has threads (``Simulator._program_all``).

A cell's draws come from counter-based generators (``cimc.runtime.kernels.gaussian`` and ``uniform`` below), one
key per quantity: ``draw_key(key, quantity)`` with ``key`` the group's (the simulator's is ``stream_key(seed,
group, replica)``) and ``quantity`` one of ``STUCK``, ``PROGRAMMING``, ``DRIFT``, ``FLICKER`` (counter: the cell's
index in C order of ``levels[sign, slice, row, col]``), ``ADC_OFFSET`` (counter: ``(sign * slices + slice) * ADCs
+ adc``), ``REFERENCE`` and ``NOW`` (the two drift-compensation read-outs; counter: ``row * cols + col``). So a
result depends on the key alone: not on the thread count, the order of the blocks, or which other effects are on.

The stream is versioned: ``NOISE_STREAM`` changes whenever the same key and settings would draw other numbers, and
a run reports it (``cimc.runtime.simulator.ProgrammingStats.noise_stream``, ``cimc eval``'s settings), so that a
figure can be reproduced by the cimc that made it. Version 1 was numpy's ``default_rng([seed, group, replica])``,
one pass per effect; version 2 is this kernel's.

Compiled with ``cache=True`` (see ``cimc.runtime.kernels``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from cimc.runtime.kernels import _GOLDEN, _mix, gaussian

#: The version of the programming random stream (see the module docstring).
NOISE_STREAM = 2

#: The quantities drawn, each from its own key (``draw_key``).
STUCK, PROGRAMMING, DRIFT, FLICKER, ADC_OFFSET, REFERENCE, NOW = range(7)
_TAG = 0x70726F67  # "prog": keeps these keys apart from the read keys made from the same (seed, group, replica)
_UNIT = 1.0 / 9007199254740992.0  # 2^-53


@nb.njit(cache=True)
def draw_key(key: np.uint64, quantity: int) -> np.uint64:
    """The key of one quantity's draws under a group's ``key``: the next link of ``kernels.stream_key``'s chain,
    ``stream_key(*words, 0x70726F67 + quantity) == draw_key(stream_key(*words), quantity)``."""
    return _mix(np.uint64(key) ^ (np.uint64(_TAG + quantity) * _GOLDEN))


@nb.njit(cache=True, inline="always")
def uniform(key: np.uint64, counter: np.uint64) -> float:
    """A uniform draw in [0, 1) for ``counter`` under ``key``: 53 bits of one hash (float64)."""
    return np.float64(_mix(key + counter) >> np.uint64(11)) * _UNIT


_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_SQRT2 = 1.4142135623730951
_EXPONENT = 0x7FF0000000000000
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE = 0x3FF0000000000000


@nb.njit(cache=True, inline="always")
def _exp(x: np.ndarray, bits: np.ndarray) -> None:
    """``x = exp(x)`` in place (float64, relative error below 1e-10 for ``x`` in [-708, 709]), in loops numba
    vectorizes (libm's ``exp`` is a call per value): ``exp(x) = 2^n exp(f)``, ``n = round(x / ln 2)``, ``|f| <=
    ln(2) / 2``, ``exp(f)`` by its Taylor polynomial to ``f^9 / 9!`` and ``2^n`` made from its exponent bits."""
    for j in range(x.size):
        clipped = min(max(x[j], -708.0), 709.0)
        n = np.floor(clipped * _LOG2E + 0.5)
        f = clipped - n * _LN2
        p = 1 / 40320 + f * (1 / 362880)
        p = 1 / 120 + f * (1 / 720 + f * (1 / 5040 + f * p))
        p = 1.0 + f * (1.0 + f * (1 / 2 + f * (1 / 6 + f * (1 / 24 + f * p))))
        bits[j] = (np.int64(n) + 1023) << 52
        x[j] = p
    scale = bits.view(np.float64)
    for j in range(x.size):
        x[j] *= scale[j]


@nb.njit(cache=True, inline="always")
def _log(x: np.ndarray, bits: np.ndarray) -> None:
    """``x = ln(x)`` in place for positive normal ``x`` (float64, absolute error below 1e-10), in loops numba
    vectorizes: ``x = m 2^e`` with ``m`` in [sqrt(2) / 2, sqrt(2)), ``ln(m) = 2 atanh(t)``, ``t = (m - 1) / (m +
    1)``, by its series to ``t^13 / 13``."""
    raw = x.view(np.int64)
    for j in range(x.size):
        bits[j] = (raw[j] & _MANTISSA) | _ONE
    mantissa = bits.view(np.float64)
    for j in range(x.size):
        e = np.float64(((raw[j] & _EXPONENT) >> 52) - 1023)
        m = mantissa[j]
        big = m > _SQRT2
        m = m * 0.5 if big else m
        e = e + 1.0 if big else e
        t = (m - 1.0) / (m + 1.0)
        t2 = t * t
        series = 1.0 + t2 * (1 / 3 + t2 * (1 / 5 + t2 * (1 / 7 + t2 * (1 / 9 + t2 * (1 / 11 + t2 * (1 / 13))))))
        x[j] = 2.0 * t * series + e * _LN2


@nb.njit(cache=True, inline="always")
def accumulate_columns(g: np.ndarray, i: int, start: int, prefix: np.ndarray, rise: np.ndarray) -> None:
    """First-order IR drop, first sweep, row ``i`` of the array ``g[rows, start : start + prefix.size]`` (its cells'
    conductances): each column's running sum of the cells' currents from row 0 (``prefix``), and the sum of those
    over the rows so far (``rise``)."""
    for j in range(prefix.size):
        prefix[j] += g[i, start + j]
        rise[j] += prefix[j]


@nb.njit(cache=True, inline="always")
def row_factors(
    g: np.ndarray, i: int, start: int, prefix: np.ndarray, rise: np.ndarray, ohm_per_us: float, out: np.ndarray
) -> None:
    """First-order IR drop, second sweep, row ``i`` of the array ``g[rows, start : start + out.size]``
    (``cimc.runtime.analog.ir_drop_attenuation``): each cell's factor ``1 - r (drop + rise)``, clipped to [0, 1],
    into ``out``; then the row's currents taken off the columns' ``rise`` (which the first sweep summed over all
    rows), so that it holds the next row's. The row's drop at cell ``j`` sums the suffix sums of its currents from
    the driven end."""
    suffix = 0.0
    for j in range(out.size):
        suffix += g[i, start + j]
    drop = 0.0
    for j in range(out.size):
        drop += suffix
        suffix -= g[i, start + j]
        out[j] = min(max(1.0 - ohm_per_us * (drop + rise[j]), 0.0), 1.0)
    for j in range(out.size):
        prefix[j] += g[i, start + j]
        rise[j] -= prefix[j]


@nb.njit(cache=True)
def ir_drop_factors(g: np.ndarray, ohm_per_us: float, array_cols: int, out: np.ndarray) -> None:
    """The first-order IR-drop factor of every cell of ``g[array, rows, cols]`` (uS) into ``out``, every
    ``array_cols`` columns a physical array of their own: the two sweeps of ``accumulate_columns`` and
    ``row_factors`` (float64 sums)."""
    arrays, rows, cols = g.shape
    for a in range(arrays):
        for start in range(0, cols, array_cols):
            width = min(array_cols, cols - start)
            prefix, rise = np.zeros(width), np.zeros(width)
            for i in range(rows):
                accumulate_columns(g[a], i, start, prefix, rise)
            prefix[:] = 0.0
            for i in range(rows):
                row_factors(g[a], i, start, prefix, rise, ohm_per_us, out[a, i, start : start + width])


@nb.njit(cache=True, nogil=True)
def program_cells(
    levels: np.ndarray,
    cell_bits: int,
    key: np.uint64,
    tables: np.ndarray,
    scales: tuple[float, float, float],
    stuck: tuple[float, float, int],
    programming: bool,
    drift: tuple[bool, bool, float],
    flicker: tuple[bool, float, float, float, float],
    ohm_per_us: float,
    array_cols: int,
    readout: tuple[bool, float, float, float],
    adc: tuple[float, int],
    out: np.ndarray,
    programmed: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    lowest: np.ndarray,
    readouts: np.ndarray,
) -> None:
    """Program the cells ``levels[sign, slice, row, col]`` (ui8) of one group; see ``analog.program_group`` for the
    model, whose arguments this takes unpacked:

    - ``tables[q, level]`` (float64) per target level: ``q = 0`` its programming sigma (uS), 1 and 2 its drift
      exponent's mean and spread (0 when drift is off or without spread); its conductance is ``g_min + level
      delta``;
    - ``scales = (g_min, delta, g_max)`` (uS);
    - ``stuck = (on rate, off rate, top level)``; ``programming``: draw the programming error;
    - ``drift = (on, fold, ln((t + t0) / t0))``: ``nu = mean + spread z`` (``|nu|`` when ``fold``, aihwkit's PCM);
    - ``flicker = (on, scale, exponent, knee, low)``: ``Q_s`` times the time factor, ``scale / ratio^exponent``
      above ``ratio = |g_t0| / g_max = knee`` and ``low`` at or below it (where aihwkit's floor or cap holds);
    - ``ohm_per_us``: the wire resistance per segment times 1e-6 (0: no IR drop), over arrays of ``array_cols``;
    - ``readout = (on, output variance, cell variance, cell variance scales with |g| / g_max: 1.0 or 0.0)``;
    - ``adc = (offset sigma in LSB, columns per ADC)``.

    Writes ``out[row, sign, slice, col]`` (float32, level units ``(g a - g_min) / delta`` at the read time) and,
    when ``programmed`` has cells, the same at ``t0`` (no drift, no 1/f noise) into it; ``offsets[sign, slice,
    col]``; per column block ``b``: ``counts[b] = (stuck on, stuck off)``, ``lowest[b]`` its smallest IR-drop
    factor, ``readouts[b] = (sum |y| at t0, sum |y| now)`` over its weights' read-outs. The conductances get no
    gain here (the caller scales ``out`` by the ratio of the read-outs' sums).
    """
    offset_sigma, adc_columns = adc
    signs, slices, _, cols = levels.shape
    blocks = -(-cols // array_cols)
    for b in range(blocks):
        _program_block(
            levels,
            cell_bits,
            key,
            tables,
            scales,
            stuck,
            programming,
            drift,
            flicker,
            ohm_per_us,
            array_cols,
            readout,
            b,
            out,
            programmed,
            counts,
            lowest,
            readouts,
        )
    if offset_sigma > 0.0:
        k_adc = draw_key(key, ADC_OFFSET)
        per_array = -(-array_cols // adc_columns)
        adcs = (blocks - 1) * per_array + min(per_array, cols - (blocks - 1) * array_cols)
        for s in range(signs):
            for k in range(slices):
                for c in range(cols):
                    index = c // array_cols * per_array + c % array_cols % per_array  # interleaved (timing's order)
                    counter = np.uint64((s * slices + k) * adcs + index)
                    offsets[s, k, c] = offset_sigma * gaussian(k_adc, counter)


@nb.njit(cache=True)
def _program_block(
    levels: np.ndarray,
    cell_bits: int,
    key: np.uint64,
    tables: np.ndarray,
    scales: tuple[float, float, float],
    stuck: tuple[float, float, int],
    programming: bool,
    drift: tuple[bool, bool, float],
    flicker: tuple[bool, float, float, float, float],
    ohm_per_us: float,
    array_cols: int,
    readout: tuple[bool, float, float, float],
    b: int,
    out: np.ndarray,
    programmed: np.ndarray,
    counts: np.ndarray,
    lowest: np.ndarray,
    readouts: np.ndarray,
) -> None:
    """``program_cells`` on column block ``b``: one physical array per sign and slice, each in stages over all its
    cells, loops that numba vectorizes (draws alone; arithmetic with selects for branches; no calls)."""
    signs, slices, rows, cols = levels.shape
    g_min, delta, g_max = scales
    on_rate, off_rate, top = stuck
    drifts, fold, log_time = drift
    flickers, q_scale, q_exponent, q_knee, q_low = flicker
    compensate, output_variance, cell_variance, scaled = readout
    keep = programmed.size > 0
    k_stuck, k_prog, k_drift = draw_key(key, STUCK), draw_key(key, PROGRAMMING), draw_key(key, DRIFT)
    k_flicker, k_ref, k_now = draw_key(key, FLICKER), draw_key(key, REFERENCE), draw_key(key, NOW)
    sigmas, nu_means, nu_spreads = tables[0], tables[1], tables[2]
    per_delta, per_g_max = 1.0 / delta, 1.0 / g_max
    start = b * array_cols
    width = min(array_cols, cols - start)
    # the read-out noise of one weight: the variances of its signs x slices readings, weighted 4^(k cell_bits)
    weight_sq = 0.0
    for k in range(slices):
        weight_sq += float(1 << (2 * k * cell_bits))
    weight_sq *= signs
    ref, now = np.zeros((rows, width)), np.zeros((rows, width))
    noise_ref = np.full((rows, width), weight_sq * (output_variance + cell_variance * (1.0 - scaled)))
    noise_now = noise_ref.copy()
    # one array: target levels, 1.0 where a cell takes programming error, target conductances, conductances at t0
    # and now, scratch, draws, exponent bits
    target, held = np.empty((rows, width), np.int64), np.ones((rows, width))
    g_target, g_t0, g_now = np.empty((rows, width)), np.empty((rows, width)), np.empty((rows, width))
    work, z, bits = np.empty(rows * width), np.empty((rows, width), np.float32), np.empty(rows * width, np.int64)
    factor, prefix, rise = np.empty(width), np.empty(width), np.empty(width)
    stuck_on = stuck_off = 0
    least = 1.0
    for s in range(signs):
        for k in range(slices):
            first = (s * slices + k) * rows * cols + start  # the counter of cell (0, start) of array (s, k)
            for r in range(rows):
                for j in range(width):
                    target[r, j] = levels[s, k, r, start + j]
            if on_rate > 0.0 or off_rate > 0.0:  # stuck on: the top level, off: 0; neither takes programming error
                for r in range(rows):
                    for j in range(width):
                        work[r * width + j] = uniform(k_stuck, np.uint64(first + r * cols + j))
                for r in range(rows):
                    for j in range(width):
                        u = work[r * width + j]
                        on, off = u < on_rate, (u >= on_rate) & (u < on_rate + off_rate)
                        stuck_on += on
                        stuck_off += off
                        target[r, j] = top if on else (0 if off else target[r, j])
                        held[r, j] = 0.0 if on or off else 1.0
            for r in range(rows):
                for j in range(width):
                    g_target[r, j] = g_min + target[r, j] * delta  # as the table's: no gather
            if programming:  # programming error, floored at 0 uS
                _draw(k_prog, first, cols, z)
                for r in range(rows):
                    for j in range(width):
                        sigma = sigmas[target[r, j]] * held[r, j]
                        g_t0[r, j] = max(g_target[r, j] + sigma * z[r, j], 0.0)
            else:
                g_t0[:] = g_target
            g_now[:] = g_t0
            if drifts:  # G(t0) exp(-nu ln((t + t0) / t0))
                _draw(k_drift, first, cols, z)
                for r in range(rows):
                    for j in range(width):
                        nu = nu_means[target[r, j]] + nu_spreads[target[r, j]] * z[r, j]
                        work[r * width + j] = -(abs(nu) if fold else nu) * log_time
                _exp(work, bits)
                for r in range(rows):
                    for j in range(width):
                        g_now[r, j] *= work[r * width + j]
            if flickers:  # g + |g| Q_s z, Q_s = scale / (|g_t0| / g_max)^exponent above the knee, low below
                for r in range(rows):
                    for j in range(width):
                        work[r * width + j] = max(abs(g_t0[r, j]) * per_g_max, q_knee)
                _log(work, bits)
                for i in range(work.size):
                    work[i] *= -q_exponent
                _exp(work, bits)
                _draw(k_flicker, first, cols, z)
                for r in range(rows):
                    for j in range(width):
                        q = q_scale * work[r * width + j] if abs(g_t0[r, j]) * per_g_max > q_knee else q_low
                        g_now[r, j] = max(g_now[r, j] + abs(g_now[r, j]) * q * z[r, j], 0.0)
            if compensate:
                weight = (-1.0 if s else 1.0) * float(1 << (k * cell_bits))
                for r in range(rows):
                    for j in range(width):
                        ref[r, j] += weight * ((g_t0[r, j] - g_min) * per_delta)
                        now[r, j] += weight * ((g_now[r, j] - g_min) * per_delta)
                if scaled > 0.0:
                    for r in range(rows):
                        for j in range(width):
                            noise_ref[r, j] += weight * weight * cell_variance * abs(g_t0[r, j]) * per_g_max
                            noise_now[r, j] += weight * weight * cell_variance * abs(g_now[r, j]) * per_g_max
            least = min(
                least, _read(g_now, g_target, target, s, k, start, scales, ohm_per_us, prefix, rise, factor, out)
            )
            if keep:
                _read(g_t0, g_target, target, s, k, start, scales, ohm_per_us, prefix, rise, factor, programmed)
    counts[b, 0] = stuck_on
    counts[b, 1] = stuck_off
    lowest[b] = least
    if compensate:
        total_ref = total_now = 0.0
        for r in range(rows):
            for j in range(width):
                n = np.uint64(r * cols + start + j)
                y_ref, y_now = ref[r, j], now[r, j]
                if noise_ref[r, j] > 0.0:
                    y_ref += math.sqrt(noise_ref[r, j]) * gaussian(k_ref, n)
                if noise_now[r, j] > 0.0:
                    y_now += math.sqrt(noise_now[r, j]) * gaussian(k_now, n)
                total_ref += abs(y_ref)
                total_now += abs(y_now)
        readouts[b, 0] = total_ref
        readouts[b, 1] = total_now


@nb.njit(cache=True, inline="always")
def _draw(key: np.uint64, first: int, cols: int, z: np.ndarray) -> None:
    """``z[r, j] = gaussian(key, first + r * cols + j)``: one array's draws of one quantity."""
    rows, width = z.shape
    for r in range(rows):
        for j in range(width):
            z[r, j] = gaussian(key, np.uint64(first + r * cols + j))


@nb.njit(cache=True, inline="always")
def _read(
    g: np.ndarray,
    g_target: np.ndarray,
    target: np.ndarray,
    s: int,
    k: int,
    start: int,
    scales: tuple[float, float, float],
    ohm_per_us: float,
    prefix: np.ndarray,
    rise: np.ndarray,
    factor: np.ndarray,
    out: np.ndarray,
) -> float:
    """Array ``(s, k)``'s conductances ``g[rows, width]`` (uS) as read through first-order IR drop, in level units,
    into ``out[row, s, k, start + col]`` (float32): ``target + (g a - g_target) / delta``, each cell's factor ``a``
    from ``row_factors`` (1 when ``ohm_per_us`` is 0), so that a cell at its target with ``a = 1`` reads its level
    exactly. Returns the least ``a``."""
    per_delta = 1.0 / scales[1]
    rows, width = g.shape
    least = 1.0
    if ohm_per_us == 0.0:
        for r in range(rows):
            for j in range(width):
                out[r, s, k, start + j] = target[r, j] + (g[r, j] - g_target[r, j]) * per_delta
        return least
    prefix[:] = 0.0
    rise[:] = 0.0
    for r in range(rows):
        accumulate_columns(g, r, 0, prefix, rise)
    prefix[:] = 0.0
    for r in range(rows):
        row_factors(g, r, 0, prefix, rise, ohm_per_us, factor)
        for j in range(width):
            out[r, s, k, start + j] = target[r, j] + (g[r, j] * factor[j] - g_target[r, j]) * per_delta
            least = min(least, factor[j])
    return least
