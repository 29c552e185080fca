"""numba kernels of the exact path (``--ideal``): the digital work around a crossbar layer's integer product, each
one pass over uint8 or float32 data, on channels-last codes ``[N, H, W, C]`` (the layout the crossbar layers
produce, so that a layer's input is read in memory order and each pixel's channels are one contiguous run).

- ``quantize`` / ``quantize_4d``: float activations to input codes, as ``cim.quantize`` does (round half to even,
  NaN to 0, clamp), optionally after a clip (``Clip``, ``Relu``) that only the quantize reads;
- ``gather_rows`` / ``gather_patches``: a block of input vectors as a float32 GEMM operand ``codes - zero_point``,
  or (``gather_patches``) as raw uint8 codes for the integer product (a convolution's patches read straight from
  the codes, kernel offset-major then channels, padding reading ``fill``, so that the patch matrix exists only a
  block at a time); ``patch_norms``: each vector's L1 and squared
  L2 norms, which bound every partial sum of the product (``cimc.runtime.exact`` checks them against 2^24);
- ``depthwise`` and ``grouped_conv``: a grouped convolution straight from the codes in integers, each output
  channel against its own group's input channels only, no block-diagonal zeros;
- ``dequantize`` / ``wrap_i32``: accumulators to the layer's outputs as ``cim.dequantize`` makes them from the i32
  accumulators (the int32 wrap, the zero point's weight sums, scale and bias in float64, rounded to float32), or
  straight to the next layer's input codes where only its clip and ``cim.quantize`` read those floats.

Every kernel is the ops' own arithmetic, so results equal the ops' ``evaluate`` bit for bit (tests check);
``cache=True``: the first run on a machine compiles, later runs load the machine code.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, inline="always")
def _code(x: np.float32, bounds: np.ndarray, scale: np.float32, zero_point: np.float32, top: np.float32) -> np.float32:
    """``cim.quantize`` of one value clipped to ``bounds`` first (``[low, high]``, float32; infinite: no clip):
    ``max(x, low)`` then ``min(., high)``, NaN kept (as ``Clip`` and ``Relu`` do), then
    ``clip(nan_to_0(rint(x / scale) + zero_point), 0, top)`` in float32."""
    if x != x:
        return np.float32(0.0)
    if x < bounds[0]:
        x = bounds[0]
    if x > bounds[1]:
        x = bounds[1]
    q = np.float32(np.rint(x / scale)) + zero_point
    return min(max(q, np.float32(0.0)), top)


@nb.njit(cache=True, nogil=True, parallel=True)
def quantize(
    x: np.ndarray, bounds: np.ndarray, scale: np.float32, zero_point: np.float32, top: np.float32, out: np.ndarray
) -> None:
    """``out = cim.quantize(clip(x, *bounds))`` over flat float32 ``x`` into flat unsigned ``out`` (an infinity
    clamps like any value beyond the range)."""
    for i in nb.prange(x.size):
        out[i] = _code(x[i], bounds, scale, zero_point, top)


@nb.njit(cache=True, nogil=True, parallel=True)
def quantize_4d(
    x: np.ndarray, bounds: np.ndarray, scale: np.float32, zero_point: np.float32, top: np.float32, out: np.ndarray
) -> None:
    """``quantize`` of a 4-D float32 view of any strides into the 4-D ``out``, in logical order: one pass that
    changes the layout on the way."""
    d0, d1, d2, d3 = x.shape
    for line in nb.prange(d0 * d1):
        i = line // d1
        j = line % d1
        for k in range(d2):
            for m in range(d3):
                out[i, j, k, m] = _code(x[i, j, k, m], bounds, scale, zero_point, top)


@nb.njit(cache=True, nogil=True)
def gather_rows(codes: np.ndarray, zero_point: int, out: np.ndarray, norms: np.ndarray) -> None:
    """``out[v, k] = codes[v, k] - zero_point`` (float32) for the ``out.shape[1]`` first columns of ``codes``
    ``[vectors, >= K]``; ``norms[v] = (sum |out[v]|, sum out[v]^2)`` (int64)."""
    vectors, depth = out.shape
    for v in range(vectors):
        l1 = np.int64(0)
        l2 = np.int64(0)
        for k in range(depth):
            value = np.int64(codes[v, k]) - zero_point
            out[v, k] = value
            l1 += abs(value)
            l2 += value * value
        norms[v, 0] = l1
        norms[v, 1] = l2


@nb.njit(cache=True, nogil=True, parallel=True)
def gather_patches(
    codes: np.ndarray, first: int, geometry: np.ndarray, fill: int, zero_point: int, out: np.ndarray
) -> None:
    """Rows ``first ..`` of the patch matrix of channels-last ``codes`` ``[N, H, W, C]``, minus ``zero_point``, into
    ``out`` ``[rows, kh * kw * C]`` (float32, or uint8 codes with ``zero_point`` 0: then runs are copied as they
    are): row ``m`` is output position ``m`` (image-major), its elements kernel offset-major then channel (each
    offset one contiguous run of a pixel's channels, a whole kernel row one run where it lies inside the image; the
    weight rows are permuted to match), padding reading ``fill``.
    ``geometry``: ``kh, kw, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left, out_h, out_w``."""
    kh, kw, sh, sw, dh, dw, ph, pw, oh_count, ow_count = geometry
    height, width, channels = codes.shape[1], codes.shape[2], codes.shape[3]
    positions = oh_count * ow_count
    padding = np.int32(fill - zero_point)
    zp = np.int32(zero_point)
    for r in nb.prange(out.shape[0]):
        m = first + r
        n = m // positions
        oh = (m % positions) // ow_count
        ow = m % ow_count
        row = out[r]
        for a in range(kh):
            ih = oh * sh + a * dh - ph
            iw = ow * sw - pw
            if kw > 1 and dw == 1 and 0 <= ih < height and 0 <= iw and iw + kw <= width:  # the kernel row in one run
                line = codes[n, ih].reshape(-1)[iw * channels : (iw + kw) * channels]
                k = a * kw * channels
                if zp == 0:
                    row[k : k + kw * channels] = line
                else:
                    for c in range(kw * channels):
                        row[k + c] = np.int32(line[c]) - zp
                continue
            for b in range(kw):
                iw = ow * sw + b * dw - pw
                k = (a * kw + b) * channels
                if 0 <= ih < height and 0 <= iw < width and zp == 0:
                    row[k : k + channels] = codes[n, ih, iw]
                elif 0 <= ih < height and 0 <= iw < width:
                    pixel = codes[n, ih, iw]
                    for c in range(channels):
                        row[k + c] = np.int32(pixel[c]) - zp
                else:
                    for c in range(channels):
                        row[k + c] = padding


@nb.njit(cache=True, nogil=True, parallel=True)
def patch_norms(codes: np.ndarray, geometry: np.ndarray, fill: int, zero_point: int, norms: np.ndarray) -> None:
    """Each patch row's L1 norm and squared L2 norm (int64, ``norms[n * positions + p]``) of channels-last
    ``codes - zero_point`` ``[N, H, W, C]`` under the window ``geometry`` (as ``gather_patches`` takes it),
    padding reading ``fill``: per pixel the sums over its channels, then per output position the sums over its
    window, a pass over the codes instead of one over the (kernel-size times larger) patch matrix."""
    kh, kw, sh, sw, dh, dw, ph, pw, oh_count, ow_count = geometry
    batch, height, width, channels = codes.shape
    padding = fill - zero_point
    pad_l1 = channels * abs(padding)
    pad_l2 = channels * padding * padding
    for n in nb.prange(batch):
        l1 = np.zeros((height, width), np.int64)
        l2 = np.zeros((height, width), np.int64)
        for ih in range(height):
            for iw in range(width):
                pixel = codes[n, ih, iw]
                p1 = np.int64(0)
                p2 = np.int64(0)
                for c in range(channels):
                    value = np.int64(pixel[c]) - zero_point
                    p1 += abs(value)
                    p2 += value * value
                l1[ih, iw] = p1
                l2[ih, iw] = p2
        for oh in range(oh_count):
            for ow in range(ow_count):
                s1 = 0
                s2 = 0
                for a in range(kh):
                    ih = oh * sh + a * dh - ph
                    for b in range(kw):
                        iw = ow * sw + b * dw - pw
                        if 0 <= ih < height and 0 <= iw < width:
                            s1 += l1[ih, iw]
                            s2 += l2[ih, iw]
                        else:
                            s1 += pad_l1
                            s2 += pad_l2
                m = (n * oh_count + oh) * ow_count + ow
                norms[m, 0] = s1
                norms[m, 1] = s2


@nb.njit(cache=True, nogil=True, parallel=True)
def depthwise(
    codes: np.ndarray, geometry: np.ndarray, fill: int, zero_point: int, weights: np.ndarray, out: np.ndarray
) -> None:
    """A depthwise convolution (one input channel a group, one output channel each) of channels-last integer
    ``codes - zero_point`` ``[N, H, W, C]`` (padding reads ``fill``) with int32 ``weights`` ``[kh * kw, C]`` into
    int32 ``out`` ``[N, out_h, out_w, C]``, summed in int32 (the caller checks that it holds every sum): one output
    pixel at a time, each kernel offset one vectorized run over the channels."""
    kh, kw, sh, sw, dh, dw, ph, pw, oh_count, ow_count = geometry
    batch, height, width, channels = codes.shape
    zp = np.int32(zero_point)
    padding = np.int32(fill - zero_point)
    for line in nb.prange(batch * oh_count):
        n = line // oh_count
        oh = line % oh_count
        acc = np.empty(channels, np.int32)
        for ow in range(ow_count):
            acc[:] = 0
            for a in range(kh):
                ih = oh * sh + a * dh - ph
                for b in range(kw):
                    iw = ow * sw + b * dw - pw
                    tap = weights[a * kw + b]
                    if 0 <= ih < height and 0 <= iw < width:
                        pixel = codes[n, ih, iw]
                        for c in range(channels):
                            acc[c] += tap[c] * (np.int32(pixel[c]) - zp)
                    elif padding != 0:
                        for c in range(channels):
                            acc[c] += tap[c] * padding
            out[n, oh, ow, :] = acc


@nb.njit(cache=True, nogil=True, parallel=True)
def grouped_conv(
    codes: np.ndarray, geometry: np.ndarray, fill: int, zero_point: int, weights: np.ndarray, out: np.ndarray
) -> None:
    """A grouped convolution of channels-last integer codes ``[N, H, W, C]`` minus ``zero_point`` (padding reads
    ``fill``) with integer ``weights`` ``[G, C/G * kh * kw, M/G]`` (rows in ``cim.im2col``'s order within the
    group: channel-major) into int64 ``out`` ``[N, out_h, out_w, M]``: output channel ``g * M/G + j`` sums group
    ``g``'s input channels only. ``geometry`` as ``gather_patches`` takes it. One output pixel at a time."""
    kh, kw, sh, sw, dh, dw, ph, pw, oh_count, ow_count = geometry
    batch, height, width, channels = codes.shape
    groups, depth, per_group = weights.shape
    in_group = channels // groups
    padding = np.int64(fill - zero_point)
    for line in nb.prange(batch * oh_count):
        n = line // oh_count
        oh = line % oh_count
        for ow in range(ow_count):
            target = out[n, oh, ow]
            target[:] = 0
            for a in range(kh):
                ih = oh * sh + a * dh - ph
                for b in range(kw):
                    iw = ow * sw + b * dw - pw
                    inside = 0 <= ih < height and 0 <= iw < width
                    for g in range(groups):
                        for ci in range(in_group):
                            value = padding
                            if inside:
                                value = np.int64(codes[n, ih, iw, g * in_group + ci]) - zero_point
                            if value == 0:
                                continue
                            row = weights[g, (ci * kh + a) * kw + b]
                            for j in range(per_group):
                                target[g * per_group + j] += row[j] * value


@nb.njit(cache=True, nogil=True, inline="always")
def _output(y: np.float64, requantize: np.ndarray, bounds: np.ndarray) -> np.float32:
    """A dequantized output as float32, or (``requantize`` = ``[low, high, scale, zero_point, top]``, the next
    layer's clip and ``cim.quantize``; empty: none; ``bounds`` its first two) that float32's code."""
    value = np.float32(y)
    if requantize.size == 0:
        return value
    return _code(value, bounds, requantize[2], requantize[3], requantize[4])


@nb.njit(cache=True, nogil=True, parallel=True)
def dequantize(
    acc: np.ndarray,
    offsets: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    with_bias: bool,
    wrap: bool,
    requantize: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[n, p, c] = f32(f64(i32(acc[n, p, c]) - offsets[c]) * scale[c] (+ bias[c]))`` over 3-D arrays:
    ``acc`` holds exact integers (integer or float), wrapped to int32 as the i32 accumulators are; ``offsets`` the
    dequantize's ``zero_point x weight_sums``; the bias added only ``with_bias``, as ``cim.dequantize`` adds it only
    when it has one; with ``requantize`` (``_output``), the codes of those floats. Without ``wrap`` (accumulators
    int32 holds as they are: float32 exact integers, or int32; ``offsets`` in float64), the wrap is the identity and
    ``f64(acc) - offsets[c]`` the exact integer difference, with no conversion through int64."""
    batch, positions, columns = out.shape
    bounds = requantize[:2]
    for np_ in nb.prange(batch * positions):
        n = np_ // positions
        p = np_ % positions
        for c in range(columns):
            if wrap:
                difference = np.float64(np.int64(np.int32(np.int64(acc[n, p, c]))) - offsets[c])
            else:
                difference = np.float64(acc[n, p, c]) - offsets[c]
            y = difference * scale[c]
            if with_bias:
                y = y + bias[c]
            out[n, p, c] = _output(y, requantize, bounds)


@nb.njit(cache=True, nogil=True, parallel=True)
def wrap_i32(acc: np.ndarray, out: np.ndarray) -> None:
    """``out[n, p, c] = i32(acc[n, p, c])`` over 3-D views: exact integer accumulators (int64 or float) as the
    layer's i32 result."""
    batch, positions, columns = out.shape
    for np_ in nb.prange(batch * positions):
        n = np_ // positions
        p = np_ % positions
        for c in range(columns):
            out[n, p, c] = np.int32(np.int64(acc[n, p, c]))
