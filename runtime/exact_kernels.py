"""numba kernels of the exact path (``--ideal``): the digital work around a crossbar layer's integer product, each
one pass over uint8 or float32 data.

- ``quantize``: float activations to input codes, as ``cim.quantize`` does (round half to even, NaN to 0, clamp);
- ``gather_rows`` / ``gather_patches``: a block of input vectors as a float32 GEMM operand ``codes - zero_point``
  (a convolution's patches read straight from the ``[N, C, H, W]`` codes, padding reading ``fill``, so that the
  patch matrix exists only a block at a time), with each vector's L1 and squared L2 norms, which bound every
  partial sum of the product (``cimc.runtime.exact`` checks them against float32's 2^24);
- ``grouped_conv``: a grouped convolution (depthwise included) straight from the codes in integers, each output
  channel against its own group's input channels only, no block-diagonal zeros;
- ``dequantize``: accumulators to float outputs as ``cim.i32`` accumulators then ``cim.dequantize`` make them
  (the int32 wrap, the zero point's weight sums, scale and bias in float64, rounded to float32).

Every kernel is the op's own arithmetic in the op's own order, so results equal the ops' ``evaluate`` bit for bit
(tests check); ``cache=True``: the first run on a machine compiles, later runs load the machine code.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def quantize(x: np.ndarray, scale: np.float32, zero_point: np.float32, top: np.float32, out: np.ndarray) -> None:
    """``out = clip(nan_to_0(rint(x / scale) + zero_point), 0, top)`` over flat float32 ``x`` into flat unsigned
    ``out``: ``cim.quantize`` in float32, an infinity clamped like any value beyond the range."""
    for i in range(x.size):
        q = np.float32(np.rint(x[i] / scale)) + zero_point
        if q != q:
            q = np.float32(0.0)
        out[i] = min(max(q, np.float32(0.0)), top)


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


@nb.njit(cache=True, nogil=True)
def gather_patches(
    codes: np.ndarray, first: int, geometry: np.ndarray, fill: int, zero_point: int, out: np.ndarray
) -> None:
    """The patch matrix of images ``first ..`` of ``codes`` ``[N, C, H, W]``, transposed and minus ``zero_point``:
    ``out[k, m]`` (float32, ``[C * kh * kw, images * out_h * out_w]``) is element ``k`` of ``cim.im2col``'s row
    for output position ``m`` (channel-major, then kernel rows, then kernel columns), padding reading ``fill``.
    Transposed so that each kernel offset copies whole input rows (the loop the compiler vectorizes).
    ``geometry``: ``kh, kw, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left, out_h, out_w``."""
    kh, kw, sh, sw, dh, dw, ph, pw, oh_count, ow_count = geometry
    channels, height, width = codes.shape[1], codes.shape[2], codes.shape[3]
    positions = oh_count * ow_count
    images = out.shape[1] // positions
    padding = np.float32(fill - zero_point)
    for i in range(images):
        n = first + i
        k = 0
        for c in range(channels):
            for a in range(kh):
                for b in range(kw):
                    base = b * dw - pw
                    lo, hi = _inside(base, sw, width, ow_count)
                    row = out[k]
                    for oh in range(oh_count):
                        ih = oh * sh + a * dh - ph
                        m = i * positions + oh * ow_count
                        if ih < 0 or ih >= height:
                            row[m : m + ow_count] = padding
                            continue
                        row[m : m + lo] = padding
                        row[m + hi : m + ow_count] = padding
                        source = codes[n, c, ih]
                        for ow in range(lo, hi):
                            row[m + ow] = np.float32(np.int32(source[ow * sw + base]) - zero_point)
                    k += 1


@nb.njit(cache=True, nogil=True, inline="always")
def _inside(base: int, stride: int, width: int, count: int) -> tuple[int, int]:
    """The output columns ``lo <= o < hi`` whose input column ``o * stride + base`` lies in ``[0, width)``."""
    lo = 0
    while lo < count and lo * stride + base < 0:
        lo += 1
    hi = lo
    while hi < count and hi * stride + base < width:
        hi += 1
    return lo, hi


@nb.njit(cache=True, nogil=True)
def patch_norms(codes: np.ndarray, geometry: np.ndarray, fill: int, zero_point: int, norms: np.ndarray) -> None:
    """Each patch row's L1 norm and squared L2 norm (int64, ``norms[n * positions + p]``) of ``codes - zero_point``
    ``[N, C, H, W]`` under the window ``geometry`` (as ``gather_patches`` takes it), padding reading ``fill``:
    per pixel the sums over channels, then per output position the sums over its window, which costs a pass over
    the codes instead of one over the (kernel-size times larger) patch matrix."""
    kh, kw, sh, sw, dh, dw, ph, pw, oh_count, ow_count = geometry
    batch, channels, height, width = codes.shape
    padding = fill - zero_point
    pad_l1 = channels * abs(padding)
    pad_l2 = channels * padding * padding
    l1 = np.empty((height, width), np.int64)
    l2 = np.empty((height, width), np.int64)
    for n in range(batch):
        l1[:, :] = 0
        l2[:, :] = 0
        for c in range(channels):
            plane = codes[n, c]
            for ih in range(height):
                for iw in range(width):
                    value = np.int64(plane[ih, iw]) - zero_point
                    l1[ih, iw] += abs(value)
                    l2[ih, iw] += value * value
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


@nb.njit(cache=True, nogil=True)
def grouped_conv(
    codes: np.ndarray, geometry: np.ndarray, fill: int, zero_point: int, weights: np.ndarray, out: np.ndarray
) -> None:
    """A grouped convolution of integer codes ``[N, C, H, W]`` minus ``zero_point`` (padding reads ``fill``) with
    integer ``weights`` ``[G, C/G * kh * kw, M/G]`` (rows in ``cim.im2col``'s order within the group) into int64
    ``out`` ``[N, M, out_h, out_w]``: output channel ``g * M/G + j`` sums group ``g``'s input channels only.
    ``geometry`` as ``gather_patches`` takes it. One output plane at a time, a kernel tap at a time over the
    plane's valid columns (padding's share added apart), so the inner loop is a strided row of the input."""
    kh, kw, sh, sw, dh, dw, ph, pw, oh_count, ow_count = geometry
    batch, channels, height, width = codes.shape
    groups, depth, per_group = weights.shape
    in_group = channels // groups
    padding = fill - zero_point
    for plane in range(batch * groups * per_group):
        n = plane // (groups * per_group)
        m = plane % (groups * per_group)
        g = m // per_group
        j = m % per_group
        acc = out[n, m]
        acc[:, :] = 0
        for ci in range(in_group):
            c = g * in_group + ci
            for a in range(kh):
                for b in range(kw):
                    w = np.int64(weights[g, (ci * kh + a) * kw + b, j])
                    if w == 0:
                        continue
                    # output columns whose input column lies inside the image: lo <= ow < hi
                    base = b * dw - pw
                    lo, hi = _inside(base, sw, width, ow_count)
                    for oh in range(oh_count):
                        ih = oh * sh + a * dh - ph
                        if ih < 0 or ih >= height:
                            if padding != 0:
                                for ow in range(ow_count):
                                    acc[oh, ow] += w * padding
                            continue
                        if padding != 0:
                            for ow in range(lo):
                                acc[oh, ow] += w * padding
                            for ow in range(hi, ow_count):
                                acc[oh, ow] += w * padding
                        source = codes[n, c, ih]
                        for ow in range(lo, hi):
                            acc[oh, ow] += w * (np.int64(source[ow * sw + base]) - zero_point)


@nb.njit(cache=True, nogil=True)
def dequantize(
    acc: np.ndarray,
    offsets: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    with_bias: bool,
    out: np.ndarray,
) -> None:
    """``out[n, p, c] = f32(f64(i32(acc[n, p, c]) - offsets[c]) * scale[c] (+ bias[c]))`` over 3-D views (any
    strides: ``acc`` may be a channel-major buffer read as ``[N, P, C]``): ``acc`` holds exact integers (int64 or
    float), wrapped to int32 as the i32 accumulators are; ``offsets`` the dequantize's ``zero_point x
    weight_sums`` (int64); the bias added only ``with_bias``, as ``cim.dequantize`` adds it only when it has one."""
    batch, positions, columns = out.shape
    for np_ in range(batch * positions):
        n = np_ // positions
        p = np_ % positions
        for c in range(columns):
            value = np.int64(np.int32(np.int64(acc[n, p, c]))) - offsets[c]
            y = np.float64(value) * scale[c]
            if with_bias:
                y = y + bias[c]
            out[n, p, c] = np.float32(y)


@nb.njit(cache=True, nogil=True)
def wrap_i32(acc: np.ndarray, out: np.ndarray) -> None:
    """``out[n, p, c] = i32(acc[n, p, c])`` over 3-D views: exact integer accumulators (int64 or float) as the
    layer's i32 result."""
    batch, positions, columns = out.shape
    for np_ in range(batch * positions):
        n = np_ // positions
        p = np_ % positions
        for c in range(columns):
            out[n, p, c] = np.int32(np.int64(acc[n, p, c]))
