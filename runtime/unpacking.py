"""Unpacking the cell levels of a binary's ``weights`` section (``cimc.runtime.binary``): every packed array in one
parallel numba pass, into one buffer. numpy took one temporary per bit position and one more per differential pair;
this writes each level once. Imported by the loader when a section holds packed arrays (it loads numba).
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: The columns of ``unpack``'s table: where an array's bytes start in the section, its bits per value, its slices
#: and values per slice (a pair array ``[2, slices, ...]``: values per sign and slice), whether it is stored as a
#: pair (``pairs``: 1), and where its values start in the output buffer.
SOURCE, BITS, SLICES, VALUES, PAIRS, TARGET = range(6)


@nb.njit(cache=True, parallel=True)
def unpack(payload: np.ndarray, table: np.ndarray, workers: int, out: np.ndarray) -> None:
    """Unpack each array of ``table`` (int64, one row per array, columns as named above) from ``payload`` (the
    section's bytes, uint8) into ``out`` (uint8). The arrays are dealt to ``workers`` threads in turn, so that each
    gets large and small ones alike; the result does not depend on which thread unpacks what."""
    for worker in nb.prange(workers):
        for row in range(worker, table.shape[0], workers):
            _unpack_array(payload, table[row], out)


@nb.njit(cache=True)
def _unpack_array(payload: np.ndarray, entry: np.ndarray, out: np.ndarray) -> None:
    """One array: its values, ``8 / bits`` a byte, lowest bits first; for a pair array, the magnitudes
    ``[slices, values]`` then one sign bit per value (1: the second array of the pair holds the magnitude, the first
    0; 0: the other way round), written as ``[2, slices, values]``."""
    source, bits, target = entry[SOURCE], entry[BITS], entry[TARGET]
    slices, values, pairs = entry[SLICES], entry[VALUES], entry[PAIRS]
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    count = slices * values  # the values packed at ``source``: all, or a pair's magnitudes
    whole = count // per_byte
    for byte in range(whole):
        word = payload[source + byte]
        base = target + byte * per_byte
        for p in range(per_byte):
            out[base + p] = (word >> (p * bits)) & mask
    for e in range(whole * per_byte, count):
        out[target + e] = (payload[source + e // per_byte] >> ((e % per_byte) * bits)) & mask
    if not pairs:
        return
    signs = source + (count * bits + 7) // 8
    second = target + count
    for s in range(slices):
        for i in range(values):
            first = target + s * values + i
            if (payload[signs + (i >> 3)] >> (i & 7)) & 1:
                out[second + s * values + i] = out[first]
                out[first] = 0
            else:
                out[second + s * values + i] = 0
