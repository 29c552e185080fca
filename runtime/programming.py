"""Programming one array group in one pass: the static per-cell effects of ``cimc.runtime.analog.program_group``
fused into a numba kernel that visits each cell once, parallel over the group's physical arrays (column blocks).

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


@nb.njit(cache=True, inline="always")
def accumulate_columns(row: np.ndarray, prefix: np.ndarray, rise: np.ndarray) -> None:
    """First-order IR drop, first sweep, one row (``row``: its cells' conductances): each column's running sum of
    the cells' currents from row 0 (``prefix``), and the sum of those over the rows so far (``rise``)."""
    for j in range(row.size):
        prefix[j] += row[j]
        rise[j] += prefix[j]


@nb.njit(cache=True, inline="always")
def row_factors(row: np.ndarray, prefix: np.ndarray, rise: np.ndarray, ohm_per_us: float, out: np.ndarray) -> None:
    """First-order IR drop, second sweep, one row of one physical array (``cimc.runtime.analog.
    ir_drop_attenuation``): each cell's factor ``1 - r (drop + rise)``, clipped to [0, 1], into ``out``; then the
    row's currents taken off the columns' ``rise`` (which the first sweep summed over all rows), so that it holds
    the next row's. The row's drop at cell ``j`` sums the suffix sums of its currents from the driven end."""
    suffix = 0.0
    for j in range(row.size):
        suffix += row[j]
    drop = 0.0
    for j in range(row.size):
        drop += suffix
        suffix -= row[j]
        out[j] = min(max(1.0 - ohm_per_us * (drop + rise[j]), 0.0), 1.0)
    for j in range(row.size):
        prefix[j] += row[j]
        rise[j] -= prefix[j]


@nb.njit(cache=True)
def ir_drop_factors(g: np.ndarray, ohm_per_us: float, out: np.ndarray) -> None:
    """The first-order IR-drop factor of every cell of the physical arrays ``g[array, rows, cols]`` (uS) into
    ``out``: the two sweeps of ``accumulate_columns`` and ``row_factors`` (float64 sums)."""
    arrays, rows, cols = g.shape
    prefix = np.empty(cols)
    rise = np.empty(cols)
    for a in range(arrays):
        prefix[:] = 0.0
        rise[:] = 0.0
        for i in range(rows):
            accumulate_columns(g[a, i], prefix, rise)
        prefix[:] = 0.0
        for i in range(rows):
            row_factors(g[a, i], prefix, rise, ohm_per_us, out[a, i])


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

    - ``tables[q, level]`` (float64) per target level: ``q = 0`` its conductance (uS), 1 its programming sigma
      (uS), 2 and 3 its drift exponent's mean and spread (0 when drift is off or without spread);
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
    """``program_cells`` on column block ``b``: one physical array per sign and slice, every cell visited once."""
    signs, slices, rows, cols = levels.shape
    g_min, delta, g_max = scales
    on_rate, off_rate, top = stuck
    drifts, fold, log_time = drift
    flickers, q_scale, q_exponent, q_knee, q_low = flicker
    compensate, output_variance, cell_variance, scaled = readout
    keep = programmed.size > 0
    k_stuck, k_prog, k_drift = draw_key(key, STUCK), draw_key(key, PROGRAMMING), draw_key(key, DRIFT)
    k_flicker, k_ref, k_now = draw_key(key, FLICKER), draw_key(key, REFERENCE), draw_key(key, NOW)
    # the read-out noise of one weight: the variances of its signs x slices array readings, weighted 4^(k cell_bits)
    weight_sq = 0.0
    for k in range(slices):
        weight_sq += float(1 << (2 * k * cell_bits))
    weight_sq *= signs
    start = b * array_cols
    width = min(array_cols, cols - start)
    ref = np.zeros((rows, width))
    now = np.zeros((rows, width))
    noise_ref = np.full((rows, width), weight_sq * (output_variance + cell_variance * (1.0 - scaled)))
    noise_now = noise_ref.copy()
    read = np.empty((rows, width))  # one array's cells in level units, before IR drop: now and at t0
    read_t0 = np.empty((rows, width) if keep else (0, 0))
    g_row = np.empty(width)
    g_row_t0 = np.empty(width)
    factor = np.empty(width)
    prefix = np.empty(width)
    rise = np.empty(width)
    prefix_t0 = np.empty(width)
    rise_t0 = np.empty(width)
    stuck_on = stuck_off = 0
    least = 1.0
    for s in range(signs):
        for k in range(slices):
            weight = (-1.0 if s else 1.0) * float(1 << (k * cell_bits))
            prefix[:] = 0.0
            rise[:] = 0.0
            prefix_t0[:] = 0.0
            rise_t0[:] = 0.0
            for r in range(rows):
                base = np.uint64(((s * slices + k) * rows + r) * cols + start)
                for j in range(width):
                    n = base + np.uint64(j)
                    level = np.int64(levels[s, k, r, start + j])
                    held = True
                    if on_rate > 0.0 or off_rate > 0.0:
                        u = uniform(k_stuck, n)
                        if u < on_rate:
                            level, held = top, False
                            stuck_on += 1
                        elif u < on_rate + off_rate:
                            level, held = 0, False
                            stuck_off += 1
                    g_target = tables[0, level]
                    g = g_target
                    if programming and held:
                        g = max(g + tables[1, level] * gaussian(k_prog, n), 0.0)
                    g_t0 = g
                    if g != 0.0:  # a cell at 0 uS drifts to 0 and has no 1/f noise: no draws
                        if drifts:
                            nu = tables[2, level]
                            if tables[3, level] != 0.0:
                                nu += tables[3, level] * gaussian(k_drift, n)
                                nu = abs(nu) if fold else nu
                            g *= math.exp(np.float32(-nu * log_time))  # float32: expf, 2.5x exp's speed
                        if flickers:
                            ratio = abs(g_t0) / g_max
                            q = q_low
                            if ratio > q_knee:  # Q_s = scale / ratio^exponent, a float32 power
                                q = q_scale * math.exp(np.float32(-q_exponent) * math.log(np.float32(ratio)))
                            g = max(g + abs(g) * q * gaussian(k_flicker, n), 0.0)
                    read[r, j] = level + (g - g_target) / delta
                    if keep:
                        read_t0[r, j] = level + (g_t0 - g_target) / delta
                    if compensate:
                        ref[r, j] += weight * ((g_t0 - g_min) / delta)
                        now[r, j] += weight * ((g - g_min) / delta)
                        if scaled > 0.0:
                            noise_ref[r, j] += weight * weight * cell_variance * abs(g_t0) / g_max
                            noise_now[r, j] += weight * weight * cell_variance * abs(g) / g_max
                    g_row[j] = g
                    g_row_t0[j] = g_t0
                if ohm_per_us > 0.0:
                    accumulate_columns(g_row, prefix, rise)
                    if keep:
                        accumulate_columns(g_row_t0, prefix_t0, rise_t0)
            prefix[:] = 0.0
            prefix_t0[:] = 0.0
            for r in range(rows):
                least = min(
                    least,
                    _through_ir_drop(
                        read[r], scales, ohm_per_us, prefix, rise, g_row, factor, out[r, s, k, start : start + width]
                    ),
                )
                if keep:
                    _through_ir_drop(
                        read_t0[r],
                        scales,
                        ohm_per_us,
                        prefix_t0,
                        rise_t0,
                        g_row,
                        factor,
                        programmed[r, s, k, start : start + width],
                    )
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
def _through_ir_drop(
    read: np.ndarray,
    scales: tuple[float, float, float],
    ohm_per_us: float,
    prefix: np.ndarray,
    rise: np.ndarray,
    g_row: np.ndarray,
    factor: np.ndarray,
    out: np.ndarray,
) -> float:
    """One row of one array, in level units ``v`` (``read``), as read through first-order IR drop into ``out``
    (float32): its conductances ``g = g_min + v delta`` give each cell's factor ``a`` (``row_factors``, when
    ``ohm_per_us`` > 0), and ``(g a - g_min) / delta = v a - (1 - a) g_min / delta``, which is ``v`` exactly where
    ``a = 1``. Returns the row's least ``a``."""
    g_min, delta, _ = scales
    if ohm_per_us == 0.0:
        for j in range(read.size):
            out[j] = read[j]
        return 1.0
    for j in range(read.size):
        g_row[j] = g_min + read[j] * delta
    row_factors(g_row, prefix, rise, ohm_per_us, factor)
    least = 1.0
    for j in range(read.size):
        a = factor[j]
        out[j] = read[j] if a == 1.0 else read[j] * a - (1.0 - a) * (g_min / delta)
        least = min(least, a)
    return least
