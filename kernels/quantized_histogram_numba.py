r"""Quantized-gradient histograms: the Numba kernels.

Same integers as :mod:`quantized_histogram_numpy`. The histogram kernel has
the float kernel's threading (:mod:`histogram_numba`): threads split the
features into contiguous groups and each walks every node's rows, adding a
row's packed ``(q_g, q_h)`` int64 to its features' bins: one integer addition
per (row, feature). Integer sums do not depend on their order, so neither do
the results on the number of threads. Small levels run serially (the same
loop compiled without ``parallel``).
"""

import numba
import numpy as np

from ._threads import numba_threads, parallel_minimum

PARALLEL_MIN_ROWS = 1 << 14  # rows of a level below which one thread builds (histogram_numba)
PARALLEL_MIN_ENTRIES = 1 << 20  # histogram entries below which subtract/dequantize run serially
PARALLEL_MIN_QUANTIZE = 1 << 18  # rows below which quantize / ranges run serially (about 0.25 ms of
# serial work idle, as the histogram kernels' rule; 8 times more on a shared machine, where a
# 2-thread region of 1M rows took 15 ms waiting for its second thread against 1.1 ms on one)
HESSIAN_BITS = 32
HESSIAN_MASK = (1 << HESSIAN_BITS) - 1
HESSIAN_UNIT = 1 << HESSIAN_BITS
RANGE_BLOCK = 1 << 14  # rows per block of gradient_ranges (fixed: never the thread count)


def _ranges_body(gradients, hessians, out_blocks):
    n = gradients.shape[0]
    for block in numba.prange(out_blocks.shape[0]):
        start = block * RANGE_BLOCK
        stop = min(start + RANGE_BLOCK, n)
        g_max = 0.0
        h_max = np.float64(hessians[start])
        h_min = h_max
        for i in range(start, stop):
            g = abs(np.float64(gradients[i]))
            h = np.float64(hessians[i])
            if g > g_max:
                g_max = g
            if h > h_max:
                h_max = h
            if h < h_min:
                h_min = h
        out_blocks[block, 0] = g_max
        out_blocks[block, 1] = h_max
        out_blocks[block, 2] = h_min


def _quantize_body(gradients, hessians, random_values, offset, inverse_scales, stochastic,
                   constant_hessian, out_packed):
    n = gradients.shape[0]
    inverse_g = inverse_scales[0]
    inverse_h = inverse_scales[1]
    for i in numba.prange(n):
        position = i + offset
        if position >= n:
            position -= n
        u_g = 0.5
        u_h = 0.5
        if stochastic:
            u_g = np.float64(random_values[0, position])
            u_h = np.float64(random_values[1, position])
        g = np.float64(gradients[i])
        scaled = g * inverse_g
        if g >= 0.0:
            q_g = np.int64(scaled + u_g)  # truncation toward zero, as C's cast
        else:
            q_g = np.int64(scaled - u_g)
        if constant_hessian:
            q_h = np.int64(1)
        else:
            q_h = np.int64(np.float64(hessians[i]) * inverse_h + u_h)
        out_packed[i] = q_g * HESSIAN_UNIT + q_h  # q_g << 32 without shifting a negative


def _histograms_body(binned, rows, node_starts, node_stops, packed, out_hists, n_groups):
    n_features = binned.shape[1]
    n_slots = out_hists.shape[2]
    for group in numba.prange(n_groups):
        f_start = group * n_features // n_groups
        f_stop = (group + 1) * n_features // n_groups
        for j in range(node_starts.shape[0]):
            hist = out_hists[j]
            for f in range(f_start, f_stop):
                for b in range(n_slots):
                    hist[f, b] = 0
            for i in range(node_starts[j], node_stops[j]):
                r = rows[i]
                value = packed[r]
                for f in range(f_start, f_stop):
                    hist[f, binned[r, f]] += value


def _subtract_body(parent_hists, parent_index, child_hists, out_hists):
    n_features = child_hists.shape[1]
    n_slots = child_hists.shape[2]
    for task in numba.prange(child_hists.shape[0] * n_features):
        j = task // n_features
        f = task % n_features
        parent = parent_index[j]
        for b in range(n_slots):
            out_hists[j, f, b] = parent_hists[parent, f, b] - child_hists[j, f, b]


def _dequantize_body(int_hists, scales, out_hists):
    n_features = int_hists.shape[1]
    n_slots = int_hists.shape[2]
    s_g = scales[0]
    s_h = scales[1]
    for task in numba.prange(int_hists.shape[0] * n_features):
        j = task // n_features
        f = task % n_features
        for b in range(n_slots):
            value = int_hists[j, f, b]
            out_hists[j, f, b, 0] = np.float64(value >> HESSIAN_BITS) * s_g
            out_hists[j, f, b, 1] = np.float64(value & HESSIAN_MASK) * s_h


def _segment_sums_body(rows, starts, stops, gradients, hessians, out_sums):
    for j in numba.prange(starts.shape[0]):
        g_sum = 0.0
        h_sum = 0.0
        for i in range(starts[j], stops[j]):
            r = rows[i]
            g_sum += np.float64(gradients[r])
            h_sum += np.float64(hessians[r])
        out_sums[j, 0] = g_sum
        out_sums[j, 1] = h_sum


def _compile(body):
    return (numba.njit(cache=True, nogil=True)(body),
            numba.njit(cache=True, nogil=True, parallel=True)(body))


_ranges_serial, _ranges_parallel = _compile(_ranges_body)
_quantize_serial, _quantize_parallel = _compile(_quantize_body)
_histograms_serial, _histograms_parallel = _compile(_histograms_body)
_subtract_serial, _subtract_parallel = _compile(_subtract_body)
_dequantize_serial, _dequantize_parallel = _compile(_dequantize_body)
_segment_sums_serial, _segment_sums_parallel = _compile(_segment_sums_body)


def _run(serial, parallel, n_threads, size, minimum, *args):
    if n_threads <= 1 or size < parallel_minimum(minimum):
        serial(*args)
        return
    with numba_threads(n_threads):
        parallel(*args)


def gradient_ranges(gradients, hessians, out_ranges, n_threads):
    """``[max |g|, max h, min h]`` (see :func:`quantized_histogram_numpy.gradient_ranges`)."""
    n = gradients.shape[0]
    blocks = np.empty(((n + RANGE_BLOCK - 1) // RANGE_BLOCK, 3), dtype=np.float64)
    _run(_ranges_serial, _ranges_parallel, n_threads, n, PARALLEL_MIN_QUANTIZE,
         gradients, hessians, blocks)
    out_ranges[0] = blocks[:, 0].max()
    out_ranges[1] = blocks[:, 1].max()
    out_ranges[2] = blocks[:, 2].min()


def quantize_gradients(gradients, hessians, random_values, offset, inverse_scales, flags,
                       out_packed, n_threads):
    """Packed integer levels (see :func:`quantized_histogram_numpy.quantize_gradients`)."""
    _run(_quantize_serial, _quantize_parallel, n_threads, gradients.shape[0],
         PARALLEL_MIN_QUANTIZE, gradients, hessians, random_values, int(offset), inverse_scales,
         bool(flags[0]), bool(flags[1]), out_packed)


def build_quantized_histograms(binned, rows, node_starts, node_stops, packed, out_hists,
                               n_threads):
    """Packed histograms of a level's nodes (see
    :func:`quantized_histogram_numpy.build_quantized_histograms`)."""
    n_rows = int(np.sum(node_stops - node_starts))
    if n_threads <= 1 or n_rows < parallel_minimum(PARALLEL_MIN_ROWS):
        _histograms_serial(binned, rows, node_starts, node_stops, packed, out_hists, 1)
        return
    with numba_threads(n_threads):
        _histograms_parallel(binned, rows, node_starts, node_stops, packed, out_hists,
                             max(1, min(int(n_threads), binned.shape[1])))


def subtract_quantized_histograms(parent_hists, parent_index, child_hists, out_hists, n_threads):
    """``out_hists[j] = parent_hists[parent_index[j]] - child_hists[j]`` (int64)."""
    _run(_subtract_serial, _subtract_parallel, n_threads, child_hists.size, PARALLEL_MIN_ENTRIES,
         parent_hists, parent_index, child_hists, out_hists)


def dequantize_histograms(int_hists, scales, out_hists, n_threads):
    """``G = s_g Q^g``, ``H = s_h Q^h`` (see :func:`quantized_histogram_numpy.dequantize_histograms`)."""
    _run(_dequantize_serial, _dequantize_parallel, n_threads, int_hists.size,
         PARALLEL_MIN_ENTRIES, int_hists, scales, out_hists)


def segment_sums(rows, starts, stops, gradients, hessians, out_sums, n_threads):
    """Float sums per node, in row order (see :func:`quantized_histogram_numpy.segment_sums`);
    threads split the nodes, each sum made by one thread."""
    _run(_segment_sums_serial, _segment_sums_parallel, n_threads,
         int(np.sum(stops - starts)), PARALLEL_MIN_ROWS, rows, starts, stops, gradients,
         hessians, out_sums)
