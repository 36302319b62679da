# cython: language_level=3
r"""Quantized-gradient histograms: the Cython kernels.

Same integers as :mod:`quantized_histogram_numpy` and the same threading as
:mod:`histogram_cython`: one call builds the packed int64 histograms of all
the nodes of a tree level; OpenMP threads split the features into contiguous
groups, and each thread walks every node's rows, adding the row's packed
``(q_g, q_h)`` to its features' bins, one integer addition per (row,
feature) where the float kernel makes two float64 additions, with the same
prefetching of rows ahead. Integer sums do not depend on their order, so the
results are the same on any number of threads.
"""

include "_common.pxi"
include "_boosting_common.pxi"

import numpy as np
from cython.parallel cimport prange
from libc.math cimport copysign, fabs
from libc.stdint cimport int64_t

from ._threads import parallel_minimum

PARALLEL_MIN_ROWS = 1 << 14  # as histogram_cython: rows of a level below which one thread builds
PARALLEL_MIN_ENTRIES = 1 << 20  # histogram entries below which subtract/dequantize run serially
PARALLEL_MIN_QUANTIZE = 1 << 18  # rows below which quantize / ranges run serially (about 0.25 ms of
# serial work idle, as the histogram kernels' rule; 8 times more on a shared machine, where a
# 2-thread region of 1M rows took 15 ms waiting for its second thread against 1.1 ms on one)
DEF QUANTIZE_BLOCK = 16384  # rows per task of quantize_gradients
DEF RANGE_BLOCK = 16384  # rows per block of gradient_ranges (as quantized_histogram_numba)
DEF HESSIAN_BITS = 32
# The packed hessian half: its mask, and 2**32 (q_g * HESSIAN_UNIT is q_g << 32 without
# shifting a negative number, which C leaves undefined).
cdef int64_t HESSIAN_MASK = 0xFFFFFFFF
cdef int64_t HESSIAN_UNIT = 0x100000000
DEF PREFETCH_ROWS = 32

cdef extern from *:
    """
    #define fs_prefetch(address) __builtin_prefetch((address), 0, 1)
    """
    void fs_prefetch(const void* address) noexcept nogil


cdef void _ranges_block(const float[::1] gradients, const float[::1] hessians,
                        double[:, ::1] out_blocks, intp_t block) noexcept nogil:
    cdef intp_t n = gradients.shape[0]
    cdef intp_t start = block * RANGE_BLOCK
    cdef intp_t stop = min(start + RANGE_BLOCK, n)
    cdef intp_t i
    cdef double g, h, g_max = 0.0, h_max = hessians[start], h_min = hessians[start]
    for i in range(start, stop):
        # Selects the compiler turns into max/min instructions (no branches).
        g = fabs(gradients[i])
        h = hessians[i]
        g_max = g if g > g_max else g_max
        h_max = h if h > h_max else h_max
        h_min = h if h < h_min else h_min
    out_blocks[block, 0] = g_max
    out_blocks[block, 1] = h_max
    out_blocks[block, 2] = h_min


def _gradient_ranges(const float[::1] gradients, const float[::1] hessians,          # IN
                     double[:, ::1] out_blocks,                                      # OUT
                     int n_threads):
    cdef intp_t block
    for block in prange(out_blocks.shape[0], num_threads=n_threads, schedule="static",
                        nogil=True):
        _ranges_block(gradients, hessians, out_blocks, block)


cdef void _quantize_block(const float* gradients, const float* hessians,
                          const float* random_g, const float* random_h, double inverse_g,
                          double inverse_h, bint constant_hessian, int64_t* out_packed,
                          intp_t count) noexcept nogil:
    """``count`` consecutive rows, their draws at ``random_g[i]``, ``random_h[i]``."""
    cdef intp_t i
    cdef double g, u_g
    cdef int64_t q_g, q_h
    for i in range(count):
        g = gradients[i]
        u_g = random_g[i]
        # C's cast truncates toward zero. copysign, not a branch (signs are random): u for
        # g >= 0, -u below; for g = -0.0 both give level 0.
        q_g = <int64_t> (g * inverse_g + copysign(u_g, g))
        if constant_hessian:
            q_h = 1
        else:
            q_h = <int64_t> (<double> hessians[i] * inverse_h + <double> random_h[i])
        out_packed[i] = q_g * HESSIAN_UNIT + q_h


def _quantize_gradients(const float[::1] gradients, const float[::1] hessians,       # IN
                        const float[:, ::1] random_values, intp_t offset,            # IN
                        const double[::1] inverse_scales, bint stochastic,           # IN
                        bint constant_hessian,                                       # IN
                        int64_t[::1] out_packed,                                     # OUT
                        int n_threads):
    cdef intp_t n = gradients.shape[0]
    cdef intp_t n_blocks = (n + QUANTIZE_BLOCK - 1) // QUANTIZE_BLOCK
    cdef intp_t block, start, stop, split
    cdef float[2] halves = [0.5, 0.5]
    cdef float* half_g = NULL
    cdef float* half_h = NULL
    if not stochastic:  # every draw 1/2: a block's worth of halves, read as the table
        half_g = <float*> malloc(QUANTIZE_BLOCK * sizeof(float))
        for start in range(QUANTIZE_BLOCK):
            half_g[start] = 0.5
        half_h = half_g
    try:
        for block in prange(n_blocks, num_threads=n_threads, schedule="static", nogil=True):
            start = block * QUANTIZE_BLOCK
            stop = min(start + QUANTIZE_BLOCK, n)
            if not stochastic:
                _quantize_block(&gradients[start], &hessians[start], half_g, half_h,
                                inverse_scales[0], inverse_scales[1], constant_hessian,
                                &out_packed[start], stop - start)
                continue
            # Row i reads the draws at (i + offset) % n: at most two runs per block.
            split = n - offset  # rows from here on wrap to the table's start
            if split > start:
                _quantize_block(&gradients[start], &hessians[start],
                                &random_values[0, start + offset],
                                &random_values[1, start + offset],
                                inverse_scales[0], inverse_scales[1], constant_hessian,
                                &out_packed[start], min(stop, split) - start)
            if split < stop:
                split = max(split, start)
                _quantize_block(&gradients[split], &hessians[split],
                                &random_values[0, split + offset - n],
                                &random_values[1, split + offset - n],
                                inverse_scales[0], inverse_scales[1], constant_hessian,
                                &out_packed[split], stop - split)
    finally:
        free(half_g)


cdef inline void _add_row(int64_t* hist, const uint8_t* row, intp_t n_slots, intp_t f_start,
                          intp_t f_stop, int64_t value) noexcept nogil:
    """Add one row's packed value to the bins of its features f_start:f_stop, four per step
    (independent read-modify-writes in flight, as histogram_cython's)."""
    cdef intp_t f = f_start
    while f + 4 <= f_stop:
        hist[f * n_slots + row[f]] += value
        hist[(f + 1) * n_slots + row[f + 1]] += value
        hist[(f + 2) * n_slots + row[f + 2]] += value
        hist[(f + 3) * n_slots + row[f + 3]] += value
        f = f + 4
    while f < f_stop:
        hist[f * n_slots + row[f]] += value
        f = f + 1


cdef void _histograms_group(const uint8_t[:, ::1] binned, const intp_t[::1] rows,
                            const intp_t[::1] node_starts, const intp_t[::1] node_stops,
                            const int64_t[::1] packed, int64_t[:, :, ::1] out_hists,
                            intp_t f_start, intp_t f_stop) noexcept nogil:
    cdef intp_t n_slots = out_hists.shape[2]
    cdef intp_t j, i, e, r, ahead
    cdef int64_t* hist
    for j in range(node_starts.shape[0]):
        hist = &out_hists[j, 0, 0]
        for e in range(f_start * n_slots, f_stop * n_slots):
            hist[e] = 0
        for i in range(node_starts[j], node_stops[j]):
            if i + PREFETCH_ROWS < node_stops[j]:
                # A row's codes may straddle two cache lines: ask for both ends.
                ahead = rows[i + PREFETCH_ROWS]
                fs_prefetch(&binned[ahead, f_start])
                fs_prefetch(&binned[ahead, f_stop - 1])
                fs_prefetch(&packed[ahead])
            r = rows[i]
            _add_row(hist, &binned[r, 0], n_slots, f_start, f_stop, packed[r])


def _build_quantized_histograms(const uint8_t[:, ::1] binned, const intp_t[::1] rows,  # IN
                                const intp_t[::1] node_starts,                        # IN
                                const intp_t[::1] node_stops,                         # IN
                                const int64_t[::1] packed,                            # IN
                                int64_t[:, :, ::1] out_hists,                         # OUT
                                int n_groups, int n_threads):
    cdef intp_t n_features = binned.shape[1]
    cdef int group
    with nogil:
        for group in prange(n_groups, num_threads=n_threads, schedule="static"):
            _histograms_group(binned, rows, node_starts, node_stops, packed, out_hists,
                              group * n_features // n_groups,
                              (group + 1) * n_features // n_groups)


def _subtract_quantized_histograms(const int64_t[:, :, ::1] parent_hists,           # IN
                                   const intp_t[::1] parent_index,                  # IN
                                   const int64_t[:, :, ::1] child_hists,            # IN
                                   int64_t[:, :, ::1] out_hists,                    # OUT
                                   int n_threads):
    cdef intp_t k = child_hists.shape[0]
    cdef intp_t size = child_hists.shape[1] * child_hists.shape[2]
    cdef intp_t j, e
    cdef const int64_t* parent
    cdef const int64_t* child
    cdef int64_t* out
    for j in prange(k, num_threads=n_threads, schedule="static", nogil=True):
        parent = &parent_hists[parent_index[j], 0, 0]
        child = &child_hists[j, 0, 0]
        out = &out_hists[j, 0, 0]
        for e in range(size):
            out[e] = parent[e] - child[e]


def _dequantize_histograms(const int64_t[:, :, ::1] int_hists,                      # IN
                           const double[::1] scales,                                # IN
                           double[:, :, :, ::1] out_hists,                          # OUT
                           int n_threads):
    cdef intp_t k = int_hists.shape[0]
    cdef intp_t size = int_hists.shape[1] * int_hists.shape[2]
    cdef double s_g = scales[0], s_h = scales[1]
    cdef intp_t j, e
    cdef const int64_t* source
    cdef double* out
    cdef int64_t value
    for j in prange(k, num_threads=n_threads, schedule="static", nogil=True):
        source = &int_hists[j, 0, 0]
        out = &out_hists[j, 0, 0, 0]
        for e in range(size):
            value = source[e]
            # >> on a negative int64 is an arithmetic shift with GCC and Clang.
            out[2 * e] = <double> (value >> HESSIAN_BITS) * s_g
            out[2 * e + 1] = <double> (value & HESSIAN_MASK) * s_h


def _segment_sums(const intp_t[::1] rows, const intp_t[::1] starts,                # IN
                  const intp_t[::1] stops,                                          # IN
                  const float[::1] gradients, const float[::1] hessians,            # IN
                  double[:, ::1] out_sums,                                          # OUT
                  int n_threads):
    cdef intp_t j, i, r
    cdef double g_sum, h_sum
    for j in prange(starts.shape[0], num_threads=n_threads, schedule="dynamic", nogil=True):
        g_sum = 0.0
        h_sum = 0.0
        for i in range(starts[j], stops[j]):
            r = rows[i]
            g_sum = g_sum + gradients[r]
            h_sum = h_sum + hessians[r]
        out_sums[j, 0] = g_sum
        out_sums[j, 1] = h_sum


def _threads_for(n_threads, size, minimum):
    n_threads = max(1, int(n_threads))
    return 1 if size < parallel_minimum(minimum) else n_threads


def gradient_ranges(gradients, hessians, out_ranges, n_threads):
    """``[max |g|, max h, min h]`` (see :func:`quantized_histogram_numpy.gradient_ranges`)."""
    n = gradients.shape[0]
    blocks = np.empty(((n + RANGE_BLOCK - 1) // RANGE_BLOCK, 3), dtype=np.float64)
    _gradient_ranges(gradients, hessians, blocks,
                     _threads_for(n_threads, n, PARALLEL_MIN_QUANTIZE))
    out_ranges[0] = blocks[:, 0].max()
    out_ranges[1] = blocks[:, 1].max()
    out_ranges[2] = blocks[:, 2].min()


def quantize_gradients(gradients, hessians, random_values, offset, inverse_scales, flags,
                       out_packed, n_threads):
    """Packed integer levels (see :func:`quantized_histogram_numpy.quantize_gradients`)."""
    _quantize_gradients(gradients, hessians, random_values, int(offset), inverse_scales,
                        bool(flags[0]), bool(flags[1]), out_packed,
                        _threads_for(n_threads, gradients.shape[0], PARALLEL_MIN_QUANTIZE))


def build_quantized_histograms(binned, rows, node_starts, node_stops, packed, out_hists,
                               n_threads):
    """Packed histograms of a level's nodes (see
    :func:`quantized_histogram_numpy.build_quantized_histograms`)."""
    n_threads = _threads_for(n_threads, int(np.sum(node_stops - node_starts)), PARALLEL_MIN_ROWS)
    n_groups = max(1, min(n_threads, binned.shape[1]))
    _build_quantized_histograms(binned, rows, node_starts, node_stops, packed, out_hists,
                                n_groups, n_groups)


def subtract_quantized_histograms(parent_hists, parent_index, child_hists, out_hists, n_threads):
    """``out_hists[j] = parent_hists[parent_index[j]] - child_hists[j]`` (int64)."""
    _subtract_quantized_histograms(parent_hists, parent_index, child_hists, out_hists,
                                   _threads_for(n_threads, child_hists.size, PARALLEL_MIN_ENTRIES))


def dequantize_histograms(int_hists, scales, out_hists, n_threads):
    """``G = s_g Q^g``, ``H = s_h Q^h`` (see :func:`quantized_histogram_numpy.dequantize_histograms`)."""
    _dequantize_histograms(int_hists, scales, out_hists,
                           _threads_for(n_threads, int_hists.size, PARALLEL_MIN_ENTRIES))


def segment_sums(rows, starts, stops, gradients, hessians, out_sums, n_threads):
    """Float sums per node, in row order (see :func:`quantized_histogram_numpy.segment_sums`);
    threads split the nodes, each sum made by one thread."""
    _segment_sums(rows, starts, stops, gradients, hessians, out_sums,
                  _threads_for(n_threads, int(np.sum(stops - starts)), PARALLEL_MIN_ROWS))
