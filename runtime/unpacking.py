"""Unpacking the cell levels of a binary's ``weights`` section (``cimc.runtime.binary``): every packed array in one
numba pass, into one buffer. numpy took one temporary per bit position and one more per differential pair; this
writes each level once. One thread: on a loaded 2-core machine, starting numba's thread pool for this one pass cost
more than the second thread saved. Imported by the loader when a section holds packed arrays (it loads numba).
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: The columns of ``unpack``'s table: where an array's bytes start in the section, its bits per value, its slices
#: and values per slice (a pair array ``[2, slices, ...]``: values per sign and slice), whether it is stored as a
#: pair (``pairs``: 1), and where its values start in the output buffer.
SOURCE, BITS, SLICES, VALUES, PAIRS, TARGET = range(6)


@nb.njit(cache=True, nogil=True)
def unpack(payload: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """Unpack each array of ``table`` (int64, one row per array, columns as named above) from ``payload`` (the
    section's bytes, uint8) into ``out`` (uint8)."""
    for row in range(table.shape[0]):
        _unpack_array(payload, table[row], out)


@nb.njit(cache=True)
def _unpack_array(payload: np.ndarray, entry: np.ndarray, out: np.ndarray) -> None:
    """One array: its values, ``8 / bits`` a byte, lowest bits first; for a pair array, the magnitudes
    ``[slices, values]`` then one sign bit per value (1: the second array of the pair holds the magnitude, the first
    0; 0: the other way round), written as ``[2, slices, values]``. Branch-free: each value is a shift and a mask
    of its byte, each pair's halves the magnitude times the sign bit and its complement."""
    source, bits, target = entry[SOURCE], entry[BITS], entry[TARGET]
    slices, values, pairs = entry[SLICES], entry[VALUES], entry[PAIRS]
    mask = (1 << bits) - 1
    per_byte = 3 if bits == 1 else (2 if bits == 2 else 1)  # log2(8 / bits)
    within = (1 << per_byte) - 1
    count = slices * values  # the values packed at ``source``: all, or a pair's magnitudes
    if not pairs:
        for e in range(count):
            out[target + e] = (payload[source + (e >> per_byte)] >> ((e & within) * bits)) & mask
        return
    signs = source + (count * bits + 7) // 8
    for s in range(slices):
        for i in range(values):
            e = s * values + i
            magnitude = (payload[source + (e >> per_byte)] >> ((e & within) * bits)) & mask
            negative = (payload[signs + (i >> 3)] >> (i & 7)) & 1
            out[target + e] = magnitude * (1 - negative)
            out[target + count + e] = magnitude * negative
