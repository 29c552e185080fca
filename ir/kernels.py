"""numpy kernels for the heavier graph ops: convolution, pooling, padding, resizing, gathers, scatters and top-k.

Everything here is vectorized: a kernel sliding over an image is a strided view of the padded image (one axis per
output position, one per kernel offset), so convolution is one matrix product over ``im2col``'s patch matrix and
pooling one reduction. ``im2col`` is public because the crossbar lowering maps a convolution the same way: each
row of the patch matrix is one input vector applied to the crossbar's rows.

Geometry follows ONNX (pads as begins then ends, ``auto_pad``, ``ceil_mode``); the results match onnxruntime.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from types import EllipsisType
from typing import Literal, cast

import numpy as np

from cimc.ir.limits import oversize

AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")
PadMode = Literal["constant", "reflect", "edge", "wrap"]
PAD_MODES: tuple[PadMode, ...] = ("constant", "reflect", "edge", "wrap")
SCATTER_REDUCTIONS = ("none", "add", "mul", "max", "min")
RESIZE_MODES = ("nearest", "linear", "cubic")
COORDINATE_TRANSFORMATIONS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
ASPECT_RATIO_POLICIES = ("stretch", "not_larger", "not_smaller")


# --- windows: the geometry of a kernel sliding over the spatial axes ------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Where a kernel sits over the spatial axes of an input: the output spatial shape and the padding it needs.

    ``pads_end`` can exceed the declared end pads: with ``ceil_mode`` the last window may hang over the padded
    input, and that overhang is padded too (it never counts as a window element of an average).
    """

    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]  # the declared (or auto) end pads
    output: tuple[int, ...]

    @staticmethod
    def resolve(
        spatial: Sequence[int],
        kernel: Sequence[int],
        strides: Sequence[int] | None = None,
        dilations: Sequence[int] | None = None,
        pads: Sequence[int] | None = None,
        auto_pad: str = "NOTSET",
        ceil_mode: bool = False,
    ) -> Window:
        """The window of an ONNX Conv or pool: attributes as ONNX gives them (None for absent ones)."""
        rank = len(spatial)
        strides = tuple(strides or (1,) * rank)
        dilations = tuple(dilations or (1,) * rank)
        extents = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            output = [-(-n // s) for n, s in zip(spatial, strides)]
            totals = [max((o - 1) * s + e - n, 0) for o, s, e, n in zip(output, strides, extents, spatial)]
            small = [t // 2 for t in totals]
            big = [t - t // 2 for t in totals]
            before, after = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
            return Window(tuple(spatial), tuple(kernel), strides, dilations, tuple(before), tuple(after), tuple(output))
        if auto_pad == "VALID":
            pads = (0,) * (2 * rank)
        elif auto_pad != "NOTSET":
            raise ValueError(f"auto_pad must be one of {', '.join(AUTO_PADS)}, got '{auto_pad}'")
        pads = tuple(pads or (0,) * (2 * rank))
        begin, end = pads[:rank], pads[rank:]
        output = []
        for n, b, e, ext, s in zip(spatial, begin, end, extents, strides):
            span = n + b + e - ext
            if span < 0:
                raise ValueError(f"kernel extent {ext} exceeds the padded input size {n + b + e}")
            count = (-(-span // s) if ceil_mode else span // s) + 1
            if ceil_mode and (count - 1) * s >= n + b:  # the last window must start inside the input or its pad
                count -= 1
            output.append(count)
        return Window(tuple(spatial), tuple(kernel), strides, dilations, tuple(begin), tuple(end), tuple(output))

    @property
    def overhang(self) -> tuple[int, ...]:
        """Padding past the end pads that the last window reaches (ceil_mode), per spatial axis."""
        return tuple(
            max((o - 1) * s + (k - 1) * d + 1 - (n + b + e), 0)
            for o, s, k, d, n, b, e in zip(
                self.output, self.strides, self.kernel, self.dilations, self.spatial, self.pads_begin, self.pads_end
            )
        )


def windows(x: np.ndarray, window: Window, fill: float | int = 0) -> np.ndarray:
    """A read-only view ``(N, C, *output, *kernel)`` of every window over ``x`` (``(N, C, *spatial)``), padded
    with ``fill``: element ``[n, c, o..., k...]`` is the input at ``o * stride + k * dilation - pad_begin``."""
    widths = [(0, 0), (0, 0)] + [(b, e + h) for b, e, h in zip(window.pads_begin, window.pads_end, window.overhang)]
    check_size([size + b + e for size, (b, e) in zip(x.shape, widths)], x.dtype, "padded input")
    padded = np.pad(x, widths, constant_values=np.asarray(fill).astype(x.dtype))
    spatial_strides = padded.strides[2:]
    return np.lib.stride_tricks.as_strided(
        padded,
        shape=padded.shape[:2] + window.output + window.kernel,
        strides=padded.strides[:2]
        + tuple(st * s for st, s in zip(spatial_strides, window.strides))
        + tuple(st * d for st, d in zip(spatial_strides, window.dilations)),
        writeable=False,
    )


def check_size(shape: Sequence[int], dtype: np.dtype, what: str) -> None:
    """ValueError when an intermediate a kernel is about to make (``what``) is past the tensor limit: a window
    view copied out, a patch matrix; the op's own result was sized before it ran (``cimc.ir.interpreter``)."""
    problem = oversize(shape, dtype)
    if problem:
        raise ValueError(f"its {what}: {problem}")


def _flat_windows(view: np.ndarray, rank: int) -> np.ndarray:
    """A window view ``(N, C, *output, *kernel)`` as ``(N, C, *output, K)``: a copy of every window."""
    check_size(view.shape, view.dtype, "windows")
    return view.reshape(*view.shape[: 2 + rank], -1)


def im2col(x: np.ndarray, window: Window, fill: float | int = 0) -> np.ndarray:
    """The patch matrix of ``x`` (``(N, C, *spatial)``): shape ``(N, *output, C * prod(kernel))``, one row per
    output position holding its window, ordered channel-major then kernel offsets, the order of a Conv weight
    ``(M, C, *kernel)`` flattened to ``(M, C * prod(kernel))``: so ``conv = im2col(x) @ w.reshape(M, -1).T``."""
    view = windows(x, window, fill)
    rank = len(window.kernel)
    order = (0, *range(2, 2 + rank), 1, *range(2 + rank, 2 + 2 * rank))
    check_size(view.shape, view.dtype, "patch matrix")
    return view.transpose(order).reshape(x.shape[0], *window.output, -1)


# --- convolution --------------------------------------------------------------------------------------------------


def conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, window: Window, group: int = 1) -> np.ndarray:
    """ONNX Conv: ``x`` ``(N, C, *spatial)``, ``w`` ``(M, C / group, *kernel)``, optional bias ``(M,)``; returns
    ``(N, M, *output)``. Each group is one matrix product of its patch columns and its filters."""
    n, channels = x.shape[:2]
    filters = w.shape[0]
    if channels != w.shape[1] * group or filters % group:
        raise ValueError(f"input has {channels} channels, weight {tuple(w.shape)} with group {group} does not fit")
    positions = math.prod(window.output)
    cols = im2col(x, window).reshape(n * positions, group, -1).transpose(1, 0, 2)  # (G, N*P, C/G * K)
    weights = w.reshape(group, filters // group, -1).transpose(0, 2, 1)  # (G, C/G * K, M/G)
    y = np.matmul(cols, weights)  # (G, N*P, M/G)
    y = y.reshape(group, n, positions, -1).transpose(1, 0, 3, 2).reshape(n, filters, *window.output)
    if bias is not None:
        y = y + bias.reshape(-1, *(1,) * len(window.output)).astype(y.dtype)
    return np.ascontiguousarray(y, dtype=x.dtype)


def conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    strides: Sequence[int] | None = None,
    dilations: Sequence[int] | None = None,
    pads: Sequence[int] | None = None,
    auto_pad: str = "NOTSET",
    output_padding: Sequence[int] | None = None,
    output_shape: Sequence[int] | None = None,
    group: int = 1,
) -> np.ndarray:
    """ONNX ConvTranspose: ``x`` ``(N, C, *spatial)``, ``w`` ``(C, M / group, *kernel)``; returns ``(N, M, *out)``.

    Every input pixel scatters its weighted kernel into the output at ``i * stride + k * dilation - pad_begin``:
    one matrix product gives all contributions, then one strided add per kernel offset places them.
    """
    n, channels, *spatial = x.shape
    rank = len(spatial)
    kernel = w.shape[2:]
    per_group = w.shape[1]
    strides = tuple(strides or (1,) * rank)
    dilations = tuple(dilations or (1,) * rank)
    output_padding = tuple(output_padding or (0,) * rank)
    full = [
        s * (i - 1) + (k - 1) * d + 1 + p for s, i, k, d, p in zip(strides, spatial, kernel, dilations, output_padding)
    ]
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = list(output_shape[-rank:]) if output_shape is not None else [i * s for i, s in zip(spatial, strides)]
        totals = [f - o for f, o in zip(full, out)]
        if auto_pad == "SAME_UPPER":
            begin = [t // 2 for t in totals]
        else:
            begin = [t - t // 2 for t in totals]
    else:
        pads = tuple(pads or (0,) * (2 * rank))
        begin = list(pads[:rank])
        out = [f - pb - pe for f, pb, pe in zip(full, pads[:rank], pads[rank:])]
    if min(begin) < 0:
        raise ValueError(f"output_shape {list(out)} is larger than the full transposed convolution {full}")
    if channels != w.shape[0] or channels % group:
        raise ValueError(f"input has {channels} channels, weight {tuple(w.shape)} with group {group} does not fit")
    # contributions[g, n, i..., m, k...] = sum_c x[n, g*C/G + c, i...] * w[g*C/G + c, m, k...]
    xg = x.reshape(n, group, channels // group, -1).transpose(1, 0, 3, 2)  # (G, N, P, C/G)
    wg = w.reshape(group, channels // group, -1)  # (G, C/G, M/G * K)
    check_size((group, n, *spatial, per_group, *kernel), np.result_type(x.dtype, w.dtype), "contributions")
    contributions = np.matmul(xg, wg[:, None]).reshape(group, n, *spatial, per_group, *kernel)
    # to (N, G, M/G, i..., k...)
    contributions = contributions.transpose(1, 0, 2 + rank, *range(2, 2 + rank), *range(3 + rank, 3 + 2 * rank))
    size = [max(f, start + o) for f, start, o in zip(full, begin, out)]
    buffer = np.zeros((n, group, per_group, *size), dtype=np.result_type(x.dtype, w.dtype))
    for offset in np.ndindex(*kernel):
        target: tuple[EllipsisType | slice, ...] = (
            Ellipsis,
            *(slice(k * d, k * d + s * (i - 1) + 1, s) for k, d, s, i in zip(offset, dilations, strides, spatial)),
        )
        source: tuple[EllipsisType | int, ...] = (Ellipsis, *offset)
        buffer[target] += contributions[source]
    crop: tuple[EllipsisType | slice, ...] = (Ellipsis, *(slice(start, start + o) for start, o in zip(begin, out)))
    y = buffer[crop].reshape(n, group * per_group, *out)
    if bias is not None:
        y = y + bias.reshape(-1, *(1,) * rank).astype(y.dtype)
    return np.ascontiguousarray(y, dtype=x.dtype)


# --- pooling ------------------------------------------------------------------------------------------------------


def _lowest(dtype: np.dtype) -> float | int:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def max_pool(x: np.ndarray, window: Window, with_indices: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """ONNX MaxPool: the maximum of each window (pads never win), and with ``with_indices`` the flat row-major
    index into ``x`` of each maximum (first of ties), as int64."""
    view = windows(x, window, _lowest(x.dtype))
    flat = _flat_windows(view, len(window.output))
    if not with_indices:
        return flat.max(axis=-1), None
    arg = flat.argmax(axis=-1)
    values = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    offsets = np.unravel_index(arg, window.kernel)
    coords = []
    for axis, (k_offset, s, d, b) in enumerate(zip(offsets, window.strides, window.dilations, window.pads_begin)):
        shape = [1] * len(window.output)
        shape[axis] = -1
        start = (np.arange(window.output[axis]) * s - b).reshape(shape)
        coords.append(start + k_offset * d)
    n, c = x.shape[:2]
    planes = np.arange(n * c).reshape(n, c, *(1,) * len(window.output))
    inner = np.ravel_multi_index(tuple(coords), window.spatial)
    return values, (planes * math.prod(window.spatial) + inner).astype(np.int64)


def column_major_indices(indices: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """MaxPool indices re-expressed with the spatial axes in column-major order (``storage_order = 1``)."""
    plane = math.prod(shape[2:])
    spatial = np.unravel_index(indices % plane, tuple(shape[2:]))
    return (indices // plane) * plane + np.ravel_multi_index(spatial, tuple(shape[2:]), order="F")


def average_pool(x: np.ndarray, window: Window, count_include_pad: bool = False) -> np.ndarray:
    """ONNX AveragePool: the mean of each window; the divisor counts the input elements in the window, plus the
    declared pads with ``count_include_pad`` (never the ceil_mode overhang)."""
    view = windows(x, window, 0)
    rank = len(window.output)
    sums = _flat_windows(view, rank).sum(axis=-1)
    counted = np.ones((1, 1, *window.spatial), dtype=np.int64)
    if count_include_pad:
        counted = np.pad(counted, [(0, 0), (0, 0)] + list(zip(window.pads_begin, window.pads_end)), constant_values=1)
        inner = Window(
            tuple(counted.shape[2:]),
            window.kernel,
            window.strides,
            window.dilations,
            (0,) * rank,
            (0,) * rank,
            window.output,
        )
        counts = windows(counted, inner).reshape(1, 1, *window.output, -1).sum(axis=-1)
    else:
        counts = windows(counted, window).reshape(1, 1, *window.output, -1).sum(axis=-1)
    return (sums / counts.astype(x.dtype)).astype(x.dtype)


# --- padding ------------------------------------------------------------------------------------------------------


def pad(
    x: np.ndarray, begins: Sequence[int], ends: Sequence[int], mode: str = "constant", fill: float = 0
) -> np.ndarray:
    """ONNX Pad: per axis, ``begins``/``ends`` elements added (negative ones crop) by ``mode``: ``constant``
    (``fill``), ``reflect`` (mirror without the edge), ``edge`` (repeat the edge) or ``wrap`` (periodic)."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad mode must be one of {', '.join(PAD_MODES)}, got '{mode}'")
    crop = tuple(slice(max(-b, 0), n - max(-e, 0)) for b, e, n in zip(begins, ends, x.shape))
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends)]
    check_size([n + b + e for n, (b, e) in zip(x.shape, widths)], x.dtype, "output")
    if mode == "constant":
        return np.pad(x, widths, constant_values=np.asarray(fill).astype(x.dtype))
    return np.pad(x, widths, mode=cast(PadMode, mode))  # one of PAD_MODES, checked above


# --- indexing: gathers, scatters and top-k ------------------------------------------------------------------------


def wrap_indices(indices: np.ndarray, sizes: int | Sequence[int], what: str) -> np.ndarray:
    """``indices`` as int64 with negative ones counted from the end; ``sizes`` is one dim's size or, for index
    tuples along the last axis, one size per tuple entry. ValueError (saying ``what`` indexes) when out of range."""
    indices = np.asarray(indices).astype(np.int64)
    limit = np.asarray(sizes, dtype=np.int64)
    if np.any((indices < -limit) | (indices >= limit)):
        bounds = f"[-{int(limit)}, {int(limit) - 1}]" if limit.ndim == 0 else f"dims {limit.tolist()}"
        raise ValueError(f"{what} indices out of range {bounds}")
    return np.where(indices < 0, indices + limit, indices)


def gather_nd(data: np.ndarray, indices: np.ndarray, batch_dims: int = 0) -> np.ndarray:
    """ONNX GatherND: the slices of ``data`` addressed by the index tuples along the last axis of ``indices``,
    the first ``batch_dims`` axes of both running in step. Shape: ``indices.shape[:-1] + data.shape[b + m:]``
    for index tuples of length m."""
    b, m = batch_dims, indices.shape[-1]
    if m > data.ndim - b:
        raise ValueError(f"index tuples of length {m} exceed the {data.ndim - b} non-batch axes of the data")
    batch = math.prod(data.shape[:b])
    per_batch = math.prod(indices.shape[b:-1])
    tuples = wrap_indices(indices, data.shape[b : b + m], "GatherND").reshape(batch, per_batch, m)
    rows = np.broadcast_to(np.arange(batch).reshape(batch, 1), (batch, per_batch))
    picked = data.reshape(batch, *data.shape[b:])[(rows, *np.moveaxis(tuples, -1, 0))]
    return picked.reshape(*indices.shape[:-1], *data.shape[b + m :])


_SCATTER_UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def scatter(data: np.ndarray, index: tuple[np.ndarray, ...], updates: np.ndarray, reduction: str) -> np.ndarray:
    """A copy of ``data`` with ``updates`` written at ``index`` (a tuple of index arrays, one per leading axis),
    or combined with what is there by ``reduction``; a position indexed twice combines both updates in order
    (with "none" the last one wins, as in onnxruntime's loop)."""
    if reduction not in SCATTER_REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(SCATTER_REDUCTIONS)}, got '{reduction}'")
    out = data.copy()
    if reduction == "none":
        out[index] = updates
    else:
        _SCATTER_UFUNCS[reduction].at(out, index, updates)
    return out


def scatter_nd(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, reduction: str = "none") -> np.ndarray:
    """ONNX ScatterND: ``updates`` written at the index tuples along the last axis of ``indices``."""
    m = indices.shape[-1]
    tuples = wrap_indices(indices, data.shape[:m], "ScatterND")
    return scatter(data, tuple(np.moveaxis(tuples, -1, 0)), updates, reduction)


def scatter_elements(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, axis: int, reduction: str = "none"
) -> np.ndarray:
    """ONNX ScatterElements: ``updates[i...]`` goes to ``data`` at ``i...`` with the ``axis`` coordinate replaced
    by ``indices[i...]``."""
    index: list[np.ndarray] = list(np.indices(indices.shape, sparse=True))
    index[axis] = wrap_indices(indices, data.shape[axis], "ScatterElements")
    return scatter(data, tuple(index), updates, reduction)


def top_k(x: np.ndarray, k: int, axis: int, largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest (or smallest) entries along ``axis``, sorted, and their int64 indices; equal values come
    lowest index first, as in onnxruntime."""
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise ValueError(f"k = {k} is outside [0, {n}], the size of axis {axis}")
    if largest:
        # a stable ascending sort of the reversed axis, read backwards: descending, equal values by ascending index
        order = n - 1 - np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    indices = np.take(order, np.arange(k), axis=axis).astype(np.int64)
    return np.take_along_axis(x, indices, axis), indices


# --- resize -------------------------------------------------------------------------------------------------------


def resize_shape(
    shape: Sequence[int],
    scales: Sequence[float] | None,
    sizes: Sequence[int] | None,
    axes: Sequence[int],
    keep_aspect_ratio_policy: str = "stretch",
) -> tuple[list[int], list[float]]:
    """Output sizes and the per-axis scales of a Resize over ``axes`` (the others keep size, scale 1).

    Scales give ``floor(size * scale)``; sizes give scale ``out / in`` (float32, as onnxruntime), or with a
    ``not_larger``/``not_smaller`` policy one common scale and ``round(size * scale)``.
    """
    out = list(shape)
    factors = [1.0] * len(shape)
    if scales is not None:
        for axis, scale in zip(axes, scales):
            factors[axis] = float(np.float32(scale))
            out[axis] = int(np.float32(scale) * np.float32(shape[axis]))
        return out, factors
    assert sizes is not None
    if keep_aspect_ratio_policy == "stretch":
        for axis, size in zip(axes, sizes):
            out[axis] = size
            factors[axis] = float(np.float32(size) / np.float32(shape[axis]))
        return out, factors
    ratios = [np.float32(size) / np.float32(shape[axis]) for axis, size in zip(axes, sizes)]
    common = min(ratios) if keep_aspect_ratio_policy == "not_larger" else max(ratios)
    for axis in axes:
        factors[axis] = float(common)
        out[axis] = int(np.floor(common * np.float32(shape[axis]) + np.float32(0.5)))
    return out, factors


def source_coordinates(size_in: int, size_out: int, scale: float, transformation: str) -> np.ndarray:
    """For each output index along one axis, its coordinate in the input (float32, as onnxruntime computes it)."""
    f32 = np.float32
    x = np.arange(size_out, dtype=f32)
    scale32 = f32(scale)
    if transformation == "half_pixel":
        return (x + f32(0.5)) / scale32 - f32(0.5)
    if transformation == "pytorch_half_pixel":
        return (x + f32(0.5)) / scale32 - f32(0.5) if size_out > 1 else np.zeros(size_out, f32)
    if transformation == "half_pixel_symmetric":  # the last steps in double, as onnxruntime does
        adjustment = f32(size_out) / (scale32 * f32(size_in))
        offset = f32(size_in) / f32(2) * (f32(1) - adjustment)
        return (np.float64(offset) + (x + 0.5) / np.float64(scale32) - 0.5).astype(f32)
    if transformation == "align_corners":
        return x * f32(size_in - 1) / f32(size_out - 1) if size_out > 1 else np.zeros(size_out, f32)
    if transformation == "asymmetric":
        return x / scale32
    raise ValueError(
        f"coordinate_transformation_mode must be one of {', '.join(COORDINATE_TRANSFORMATIONS)}, got '{transformation}'"
    )


def _nearest_index(coords: np.ndarray, nearest_mode: str, size_in: int) -> np.ndarray:
    below = np.floor(coords)
    fraction = coords - below  # exact, so halves are found exactly
    if nearest_mode == "round_prefer_floor":
        index = below + (fraction > 0.5)
    elif nearest_mode == "round_prefer_ceil":
        index = below + (fraction >= 0.5)
    elif nearest_mode == "floor":
        index = np.floor(coords)
    elif nearest_mode == "ceil":
        index = np.ceil(coords)
    else:
        raise ValueError(f"nearest_mode must be one of {', '.join(NEAREST_MODES)}, got '{nearest_mode}'")
    return np.clip(index, 0, size_in - 1).astype(np.int64)


def _cubic_weights(distance: np.ndarray, a: float) -> np.ndarray:
    """The cubic convolution kernel (Keys) with parameter ``a`` at |distance| < 2."""
    t = np.abs(distance)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0)).astype(np.float32)


def _taps(
    coords: np.ndarray, mode: str, size_in: int, cubic_coeff_a: float, exclude_outside: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Input indices ``(out, taps)`` and their weights ``(out, taps)`` for linear or cubic interpolation."""
    if mode == "linear":
        coords = np.clip(coords, 0, size_in - 1)
        low = np.floor(coords)
        frac = (coords - low).astype(np.float32)
        index = np.stack([low, np.minimum(low + 1, size_in - 1)], axis=1).astype(np.int64)
        return index, np.stack([1 - frac, frac], axis=1)
    low = np.floor(coords)
    frac = coords - low
    index = low.astype(np.int64)[:, None] + np.arange(-1, 3)
    weights = _cubic_weights(frac[:, None] - np.arange(-1, 3, dtype=np.float32), cubic_coeff_a)
    if exclude_outside:
        weights = np.where((index < 0) | (index >= size_in), np.float32(0), weights)
        weights = weights / weights.sum(axis=1, keepdims=True)
    return np.clip(index, 0, size_in - 1), weights


def resize(
    x: np.ndarray,
    scales: Sequence[float] | None = None,
    sizes: Sequence[int] | None = None,
    axes: Sequence[int] | None = None,
    mode: str = "nearest",
    coordinate_transformation_mode: str = "half_pixel",
    nearest_mode: str = "round_prefer_floor",
    cubic_coeff_a: float = -0.75,
    exclude_outside: bool = False,
    keep_aspect_ratio_policy: str = "stretch",
) -> np.ndarray:
    """ONNX Resize without ``tf_crop_and_resize`` or antialiasing: one 1-D resampling per resized axis (the
    interpolations are separable), each output index mapped to an input coordinate by the transformation mode."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}, got '{mode}'")
    axes = [a % x.ndim for a in axes] if axes is not None else list(range(x.ndim))
    out, factors = resize_shape(x.shape, scales, sizes, axes, keep_aspect_ratio_policy)
    check_size(out, x.dtype, "output")
    if out == list(x.shape):  # onnxruntime copies the input then, whatever the scales and modes say
        return x
    y = x if mode == "nearest" or x.dtype.kind == "f" else x.astype(np.float32)
    for axis in axes:
        if factors[axis] == 1:
            continue
        coords = source_coordinates(x.shape[axis], out[axis], factors[axis], coordinate_transformation_mode)
        if mode == "nearest":
            y = np.take(y, _nearest_index(coords, nearest_mode, x.shape[axis]), axis=axis)
            continue
        index, weights = _taps(coords, mode, x.shape[axis], cubic_coeff_a, exclude_outside)
        shape = [1] * y.ndim
        shape[axis] = out[axis]
        terms = (
            np.take(y, index[:, tap], axis=axis) * weights[:, tap].reshape(shape).astype(y.dtype)
            for tap in range(index.shape[1])
        )
        y = functools.reduce(operator.add, terms)
    if y.dtype != x.dtype:  # integer images: round to the nearest representable value
        limits = np.iinfo(x.dtype)
        y = np.clip(np.trunc(y), limits.min, limits.max)
    return y.astype(x.dtype, copy=False)
