"""A crossbar layer's exact arithmetic at BLAS speed: the fast path of ``--ideal``.

With every effect off, a layer whose ADCs read every column sum exactly computes one integer product
``acc = (codes - zero_point) @ W`` of its input codes with its signed weights (planes, slices and signs folded
back). ``ExactLayer`` computes it, and with it the digital ops around it that the IR chains to it alone, in single
passes (``cimc.runtime.exact_kernels``):

    [Clip | Relu] -> cim.quantize -> cim.im2col -> [the layer's crossbar reads] -> cim.accumulate -> cim.dequantize

- the input codes are made once, clipped on the way, channels-last (``[N, H, W, C]``: the layout the layers
  before leave, so the pass reads memory in order), and a convolution's patch matrix only a block of rows at a
  time, straight into the GEMM operand (``gather_patches``); never a float64 or int64 copy of the inputs;
- the product of 8-bit codes with weights in [-128, 127] is onnxruntime's integer GEMM (``MatMulInteger`` on
  MLAS: uint8 x int8 into int32, every sum exact; ``cimc.runtime.integer_gemm`` checks at first use that this CPU's
  kernel is exact), over raw uint8 patches; otherwise
- the product is one float32 GEMM per block, exact by construction: float32 holds every integer up to 2^24, so a
  GEMM of integers is exact when every partial sum is, whatever order BLAS sums in, and every partial sum is at most
  ``sum_k |x_k w_kc|``, bounded per input vector by ``min(||x||_1 max|w|, ||x||_2 max_c ||w_c||_2)`` (Hoelder and
  Cauchy-Schwarz; ``patch_norms`` gives both norms of every patch from per-pixel sums). A block whose bound
  reaches 2^24 is summed instead over row chunks short enough that no sum can (``chunk``), in float64. Where the
  worst case itself stays below 2^24 (K up to 518 rows of 8-bit codes and weights) no norm is taken;
- a grouped convolution, whose weight matrix is block diagonal, is computed group by group in integers, not as a
  dense product of mostly zeros (``depthwise``: vectorized over channels; ``grouped_conv``: a few output channels
  a group); the groups are read off the matrix itself (``weight_groups``);
- the dequantize runs on each block's accumulators as they come out (``dequantize``), and where the next layer's
  quantize reads nothing else (``Simulator`` links the two), it makes that layer's codes in the same pass.

Every step is the ops' own arithmetic (the int32 accumulators' wrap included), so the result equals the ops'
``evaluate`` run one by one, bit for bit (tests/runtime/test_exact.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from cimc.ir import kernels
from cimc.runtime import exact_kernels
from cimc.runtime.integer_gemm import IntegerGemm, integer_gemm

#: float32 represents every integer of magnitude up to 2^24 exactly.
FLOAT32_EXACT = float(1 << 24)
#: Bytes of the float32 GEMM operand gathered at a time: a batch's patch matrix never exists whole.
BLOCK_BYTES = 16 << 20
#: Layers whose patch matrix has fewer elements than this run their kernels on one thread.
SERIAL_WORK = 1 << 21
#: Grouped convolutions with at most this many output channels a group run as integer direct convolutions; wider
#: groups are dense enough for BLAS.
DIRECT_GROUP_WIDTH = 8


@dataclass(frozen=True)
class Quantize:
    """A ``cim.quantize`` ahead of the layer: float activations to codes; ``low`` and ``high`` a ``Clip`` (or
    ``Relu``: ``low`` 0) that only this quantize reads, done on the way (infinite: none)."""

    scale: float
    zero_point: int
    bits: int
    dtype: np.dtype
    low: float = -np.inf
    high: float = np.inf

    def __call__(self, x: np.ndarray, channels_last: bool = False) -> np.ndarray:
        """The codes of ``x``; of ``x`` ``[N, C, H, W]`` laid out ``[N, H, W, C]`` where ``channels_last``."""
        x = np.asarray(x, dtype=np.float32)
        args = (
            np.array([self.low, self.high], np.float32),
            np.float32(self.scale),
            np.float32(self.zero_point),
            np.float32((1 << self.bits) - 1),
        )
        target = x.transpose(0, 2, 3, 1) if channels_last else x
        codes = np.empty(target.shape, self.dtype)
        if target.flags.c_contiguous:
            exact_kernels.quantize(target.reshape(-1), *args, codes.reshape(-1))
        elif channels_last and x.flags.c_contiguous:  # read in memory order, write across
            exact_kernels.quantize_4d(x, *args, codes.transpose(0, 3, 1, 2))
        elif target.ndim == 4:
            exact_kernels.quantize_4d(target, *args, codes)
        else:
            exact_kernels.quantize(np.ascontiguousarray(target).reshape(-1), *args, codes.reshape(-1))
        return codes


@dataclass(frozen=True)
class Patches:
    """A ``cim.im2col`` ahead of the layer: a 2-D convolution's window over codes ``[N, C, H, W]``."""

    kernel_shape: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[int, ...]
    fill: int

    def window(self, spatial: tuple[int, ...]) -> kernels.Window:
        return kernels.Window.resolve(spatial, self.kernel_shape, self.strides, self.dilations, self.pads)

    def geometry(self, window: kernels.Window) -> np.ndarray:
        """The window as ``exact_kernels.gather_patches`` takes it."""
        return np.array(
            [*window.kernel, *window.strides, *window.dilations, *window.pads_begin, *window.output], dtype=np.int64
        )


@dataclass(frozen=True)
class Dequantize:
    """A ``cim.dequantize`` after the layer: ``offsets`` its ``zero_point x weight_sums`` (int64), ``scale`` and
    ``bias`` (None: none) in float64."""

    offsets: np.ndarray
    scale: np.ndarray
    bias: np.ndarray | None


class ExactLayer:
    """``(codes - zero_point) @ weights`` of one crossbar layer (``weights`` int64 ``[K, C]``, ``input_bits``-bit
    codes), with the ``quantize``, ``patches`` and ``dequantize`` around it that the IR chains to it (None: not
    fused; the call then takes codes, or returns the int32 accumulators).

    Called on the layer's input (floats where ``quantize`` is fused, else codes; ``[N, C, H, W]`` where
    ``patches`` is, else ``[..., >= K]``, the first K columns read), it returns the dequantized float32 outputs
    (with ``requantize``: their codes for the next layer) or the int32 accumulators, ``[..., C]``
    (``[N, out_h, out_w, C]`` for a convolution).
    """

    def __init__(
        self,
        weights: np.ndarray,
        input_bits: int,
        zero_point: int = 0,
        *,
        quantize: Quantize | None = None,
        patches: Patches | None = None,
        dequantize: Dequantize | None = None,
        requantize: Quantize | None = None,
    ) -> None:
        self.depth, self.columns = weights.shape
        self.zero_point = zero_point
        self.quantize, self.patches, self.dequantize = quantize, patches, dequantize
        #: the next layer's quantize (and clip), done on this layer's dequantized outputs: it returns their codes
        self.requantize = requantize
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)  # |w| < 2^24: exact
        self.w_max = float(np.abs(weights).max(initial=0))
        self.w2_max = float((weights.astype(np.float64) ** 2).sum(axis=0).max(initial=0.0))  # squared L2 norms
        x_max = max((1 << input_bits) - 1 - zero_point, zero_point)
        if patches is not None:
            x_max = max(x_max, abs(patches.fill - zero_point))
        #: rows per float32 product whose sums stay exact whatever the codes
        self.chunk = max(1, int((FLOAT32_EXACT - 1) // (x_max * max(self.w_max, 1.0))))
        #: how a convolution runs: "dense" (patches @ W), "depthwise" or "grouped" (in integers), "im2col" (the
        #: patch matrix whole: windows of other ranks)
        self.mode = "dense"
        self.groups = 1
        #: the exact uint8 x int8 product on onnxruntime's quantized GEMM, where one is exact (None: float32 GEMMs)
        self.integer: IntegerGemm | None = None
        if patches is None:
            self._use_integer(input_bits, zero_point)
            return
        taps = math.prod(patches.kernel_shape)
        if len(patches.kernel_shape) != 2 or self.depth % taps:
            self.mode = "im2col"
            return
        # the weight rows in gather_patches' order: kernel offset-major, then channel
        self.channels = self.depth // taps
        by_offset = self.weights.reshape(self.channels, taps, self.columns).transpose(1, 0, 2)
        self.weights = np.ascontiguousarray(by_offset.reshape(self.depth, self.columns))
        g = self.groups = weight_groups(weights, taps)
        per_group = self.columns // g
        if g > 1 and per_group == 1 and self.depth // g == taps and taps * x_max * self.w_max < 2**31:
            self.mode = "depthwise"  # channel c's weights are rows c * taps .. of column c
            diagonal = weights[np.arange(self.depth), np.repeat(np.arange(g), taps)]
            self.taps = np.ascontiguousarray(diagonal.reshape(g, taps).T, dtype=np.int32)  # [taps, C]
        elif g > 1 and per_group <= DIRECT_GROUP_WIDTH:
            self.mode = "grouped"
            blocks = weights.reshape(g, self.depth // g, g, per_group)
            self.grouped = np.ascontiguousarray(blocks[np.arange(g), :, np.arange(g)], dtype=np.int64)  # [G, Kg, Cg]
        if self.mode == "dense":
            self._use_integer(input_bits, patches.fill)

    def _use_integer(self, input_bits: int, fill: int) -> None:
        """Take the integer product for 8-bit codes where ``integer_gemm`` finds one exact."""
        if input_bits <= 8:
            self.integer = integer_gemm(self.weights.astype(np.int64), self.zero_point, fill)

    def vectors(self, x: np.ndarray) -> int:
        """The input vectors (patch rows) a call on ``x`` reads."""
        if self.patches is None:
            return math.prod(x.shape[:-1])
        return x.shape[0] * math.prod(self.patches.window(x.shape[2:]).output)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        taps = math.prod(self.patches.kernel_shape) if self.patches is not None else 1
        if x.size * taps >= SERIAL_WORK:  # about the patch matrix's elements
            return self._run(x)
        threads = nb.get_num_threads()
        nb.set_num_threads(1)  # small work: waking the other threads costs more than they save
        try:
            return self._run(x)
        finally:
            nb.set_num_threads(threads)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.patches is None:
            codes = self.quantize(x) if self.quantize is not None else x
            lead = codes.shape[:-1]
            out = self._output(math.prod(lead), 1)
            self._rows(codes.reshape(-1, codes.shape[-1]), out)
            return out.reshape(*lead, self.columns)
        window = self.patches.window(x.shape[2:])
        if self.mode == "im2col":
            codes = self.quantize(x) if self.quantize is not None else x
            patches = kernels.im2col(codes, window, self.patches.fill)
            out = self._output(math.prod(patches.shape[:-1]), 1)
            self._rows(patches.reshape(-1, patches.shape[-1]), out)
            return out.reshape(*patches.shape[:-1], self.columns)
        if self.quantize is not None:
            codes = self.quantize(x, channels_last=True)
        else:
            codes = np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))
        if codes.shape[-1] != self.channels:
            raise ValueError(f"the layer reads {self.channels} channels, the input has {codes.shape[-1]}")
        out = self._output(codes.shape[0], math.prod(window.output))
        geometry = self.patches.geometry(window)
        fill = self.patches.fill
        if self.mode == "depthwise":
            acc = np.empty((codes.shape[0], *window.output, self.columns), np.int32)
            exact_kernels.depthwise(codes, geometry, fill, self.zero_point, self.taps, acc)
            self._finish(acc.reshape(out.shape), out)
        elif self.mode == "grouped":
            acc = np.empty((codes.shape[0], *window.output, self.columns), np.int64)
            exact_kernels.grouped_conv(codes, geometry, fill, self.zero_point, self.grouped, acc)
            self._finish(acc.reshape(out.shape), out)
        else:
            self._patches(codes, geometry, out)
        return out.reshape(codes.shape[0], *window.output, self.columns)

    def _output(self, batch: int, positions: int) -> np.ndarray:
        dtype = np.dtype(np.int32 if self.dequantize is None else np.float32)
        if self.dequantize is not None and self.requantize is not None:
            dtype = self.requantize.dtype
        return np.empty((batch, positions, self.columns), dtype)

    def _finish(self, acc: np.ndarray, out: np.ndarray) -> None:
        """Exact accumulators ``acc`` ``[n, P, C]`` (any strides) into ``out``: dequantized, or as int32."""
        if self.dequantize is None:
            exact_kernels.wrap_i32(acc, out)
            return
        d = self.dequantize
        bias = d.bias if d.bias is not None else d.scale
        q = self.requantize
        requantize = np.zeros(0, np.float32)  # the kernels' form: [low, high, scale, zero point, top code]
        if q is not None:
            requantize = np.array([q.low, q.high, q.scale, q.zero_point, (1 << q.bits) - 1], np.float32)
        if acc.dtype in (np.float32, np.int32) and np.all(np.abs(d.offsets) < 2**53):
            offsets = d.offsets.astype(np.float64)  # exact: below 2^53
            exact_kernels.dequantize(acc, offsets, d.scale, bias, d.bias is not None, False, requantize, out)
        else:
            exact_kernels.dequantize(acc, d.offsets, d.scale, bias, d.bias is not None, True, requantize, out)

    def _rows(self, codes: np.ndarray, out: np.ndarray) -> None:
        """Input vectors as rows ``codes`` ``[vectors, >= K]``, a block of rows per GEMM ``block @ W``."""
        step = max(1, BLOCK_BYTES // (4 * max(self.depth, 1)))
        if self.integer is not None:
            for begin in range(0, len(codes), step):
                block = np.ascontiguousarray(codes[begin : begin + step, : self.depth], dtype=np.uint8)
                self._finish(self.integer(block)[:, None], out[begin : begin + len(block)])
            return
        block = np.empty((min(step, len(codes)), self.depth), np.float32)
        norms = np.empty((len(block), 2), np.int64)
        for begin in range(0, len(codes), step):
            size = min(step, len(codes) - begin)
            exact_kernels.gather_rows(codes[begin : begin + size], self.zero_point, block[:size], norms[:size])
            self._finish(self._product(block[:size], norms[:size]), out[begin : begin + size])

    def _patches(self, codes: np.ndarray, geometry: np.ndarray, out: np.ndarray) -> None:
        """A convolution over channels-last codes ``[N, H, W, C]``, a block of patch rows per GEMM ``patches @ W``
        (``out`` ``[N, positions, C]`` taken as rows)."""
        assert self.patches is not None
        rows = out.reshape(-1, 1, self.columns)
        fill, zero_point = self.patches.fill, self.zero_point
        step = max(1, BLOCK_BYTES // (4 * max(self.depth, 1)))
        if self.integer is not None:  # raw codes: the product subtracts the zero point
            codes_block = np.empty((min(step, len(rows)), self.depth), np.uint8)
            for begin in range(0, len(rows), step):
                size = min(step, len(rows) - begin)
                exact_kernels.gather_patches(codes, begin, geometry, fill, 0, codes_block[:size])
                self._finish(self.integer(codes_block[:size])[:, None], rows[begin : begin + size])
            return
        block = np.empty((min(step, len(rows)), self.depth), np.float32)
        norms = None
        if self.depth > self.chunk:  # the worst case could reach 2^24: each vector's own bound decides
            norms = np.empty((len(rows), 2), np.int64)
            exact_kernels.patch_norms(codes, geometry, fill, zero_point, norms)
        for begin in range(0, len(rows), step):
            size = min(step, len(rows) - begin)
            exact_kernels.gather_patches(codes, begin, geometry, fill, zero_point, block[:size])
            block_norms = None if norms is None else norms[begin : begin + size]
            self._finish(self._product(block[:size], block_norms), rows[begin : begin + size])

    def _product(self, block: np.ndarray, norms: np.ndarray | None) -> np.ndarray:
        """``block @ W`` exactly, ``[rows, 1, C]``: one float32 GEMM where every sum stays below 2^24 (``norms``
        None: the worst case does), else float32 GEMMs over row chunks added in float64."""
        acc: np.ndarray
        if norms is None or self._exact_in_float32(norms):
            acc = block @ self.weights
        else:
            acc = np.zeros((len(block), self.columns))
            for start in range(0, self.depth, self.chunk):
                acc += block[:, start : start + self.chunk] @ self.weights[start : start + self.chunk]
        return acc.reshape(len(block), 1, self.columns)

    def _exact_in_float32(self, norms: np.ndarray) -> bool:
        """Whether every sum of the block's product is below 2^24, by each vector's tighter bound."""
        if self.depth <= self.chunk:
            return True
        l1 = norms[:, 0].astype(np.float64) * self.w_max < FLOAT32_EXACT
        # ||x||_2^2 ||w||_2^2 < 2^48, with room for the product's rounding (relative 2^-53)
        l2 = norms[:, 1].astype(np.float64) * self.w2_max < FLOAT32_EXACT**2 * (1 - 1e-12)
        return bool(np.all(l1 | l2))


def weight_groups(weights: np.ndarray, taps: int = 1) -> int:
    """The most groups ``G`` whose diagonal blocks ``[K/G, C/G]`` hold every nonzero weight of ``weights``
    ``[K, C]``: a grouped convolution's matrix (rows channel-major, ``taps`` rows a channel, as ``cim.im2col``
    orders them). 1 for a dense one. ``G`` divides the channels, never a channel's taps: a sparse matrix (weights
    quantized to 0) may look block diagonal for more groups than there are channels. A matrix block diagonal for
    ``G`` is so for every divisor of ``G``, so a failing smallest prime factor settles a dense matrix in one test."""
    depth, columns = weights.shape
    rows, cols = np.nonzero(weights)
    common = math.gcd(depth // taps, columns)

    def fits(g: int) -> bool:
        return bool(np.array_equal(rows // (depth // g), cols // (columns // g)))

    divisors = [d for d in range(2, common + 1) if common % d == 0]
    if not divisors or not fits(divisors[0]):
        return 1
    return next(g for g in reversed(divisors) if fits(g))
