# cython: language_level=3
r"""Splitting the rows of a tree node, and adding leaf values: the Cython kernels.

The same two passes as :mod:`partition_numba` over fixed blocks of
``BLOCK`` rows of each node of a tree level: each block reads its
rows once, writing the left ones forward from its start in ``scratch`` and the
right ones backward from its end; the
counts become offsets within the node; each block then copies its two parts to
their final places. The blocks never depend on the number of threads, and the
result is the serial stable partition. Blocks are handed out dynamically: a
thread that the OS pauses on a shared machine does not hold up the others
(which block a thread takes never changes what the block writes). ``binned``
may have any strides: the grower passes a column-major copy, so that a
level's reads of one feature stay within one column.
"""

include "_common.pxi"
include "_boosting_common.pxi"
include "_constants_partition.pxi"  # BLOCK, shared with partition_numba (kernels/_constants.py)

import numpy as np
from cython.parallel cimport prange

from ._constants import THRESHOLDS
from ._threads import parallel_minimum

# Rows of a level below which one thread partitions on an idle machine: about
# 0.25 ms of serial work (1.7 ns a row). Eight times more (2 ms) on a shared
# machine, where the wait for a second thread is longer than the work
# (measured 35 ms a parallel region at load 15 on 2 cores; see
# kernels._threads.parallel_minimum).
PARALLEL_MIN_ROWS = THRESHOLDS["partition"]["PARALLEL_MIN_ROWS"]


cdef extern from *:
    """
    #define fs_partition_prefetch(address) __builtin_prefetch((address), 0, 1)
    """
    void fs_partition_prefetch(const void* address) noexcept nogil

DEF PARTITION_PREFETCH_ROWS = 32  # 1M x 28, depth 6: a tree's partitions 13.3 ms to 11.4 ms CPU


cdef intp_t _partition_block(const uint8_t[:, :] binned, const intp_t[::1] rows,
                             intp_t[::1] scratch, intp_t start, intp_t stop, intp_t f,
                             intp_t split_bin, intp_t missing, bint default_left) noexcept nogil:
    """Read rows[start:stop] once: left rows forward from scratch[start], right rows
    backward from scratch[stop - 1]; returns the left count.

    Branch-free: every row is written at both ends and only the end it belongs
    to advances (a split sends rows left or right at random, so a branch would
    be mispredicted for about half of them). The write at the other end lands
    on a free slot, as ``left_position <= right_position`` until the last row.
    """
    cdef intp_t i, r, code, left_position = start, right_position = stop - 1
    cdef intp_t left
    for i in range(start, stop):
        if i + PARTITION_PREFETCH_ROWS < stop:
            # Below the first levels a node's rows are scattered: ask for the code
            # of the row PARTITION_PREFETCH_ROWS ahead (a hint; no result changes).
            fs_partition_prefetch(&binned[rows[i + PARTITION_PREFETCH_ROWS], f])
        r = rows[i]
        code = binned[r, f]
        # The missing code lies above every split bin, so it goes left only by default.
        left = (code <= split_bin) | ((code == missing) & default_left)
        scratch[left_position] = r
        scratch[right_position] = r
        left_position = left_position + left
        right_position = right_position - (1 - left)
    return left_position - start


def _partition_rows(const uint8_t[:, :] binned,                                     # IN
                    intp_t[::1] rows,                                                 # IN/OUT
                    const intp_t[::1] node_starts, const intp_t[::1] node_stops,      # IN
                    const intp_t[::1] features, const intp_t[::1] split_bins,         # IN
                    const uint8_t[::1] default_lefts, const intp_t[::1] missing_bins,  # IN
                    intp_t[::1] scratch, intp_t[::1] out_n_left,                      # OUT
                    int n_threads):
    cdef intp_t n_nodes = node_starts.shape[0]
    cdef intp_t n_blocks = 0, b, c, j, k, first, n_left, position, start
    for j in range(n_nodes):
        n_blocks += (node_stops[j] - node_starts[j] + BLOCK - 1) // BLOCK
    cdef intp_t[::1] block_starts = np.empty(n_blocks, dtype=np.intp)
    cdef intp_t[::1] block_stops = np.empty(n_blocks, dtype=np.intp)
    cdef intp_t[::1] block_nodes = np.empty(n_blocks, dtype=np.intp)
    cdef intp_t[::1] block_lefts = np.empty(n_blocks, dtype=np.intp)
    cdef intp_t[::1] left_offsets = np.empty(n_blocks, dtype=np.intp)
    cdef intp_t[::1] right_offsets = np.empty(n_blocks, dtype=np.intp)
    b = 0
    for j in range(n_nodes):
        start = node_starts[j]
        while start < node_stops[j]:
            block_starts[b] = start
            block_stops[b] = min(start + BLOCK, node_stops[j])
            block_nodes[b] = j
            b += 1
            start += BLOCK
    with nogil:
        # Pass 1: each block partitions itself into scratch, left rows first.
        for b in prange(n_blocks, num_threads=n_threads, schedule="dynamic"):
            j = block_nodes[b]
            block_lefts[b] = _partition_block(binned, rows, scratch, block_starts[b],
                                              block_stops[b], features[j], split_bins[j],
                                              missing_bins[features[j]], default_lefts[j] != 0)
        # Offsets of each block's two parts within its node.
        b = 0
        for j in range(n_nodes):
            first = b
            n_left = 0
            while b < n_blocks and block_nodes[b] == j:
                left_offsets[b] = node_starts[j] + n_left
                n_left = n_left + block_lefts[b]
                b = b + 1
            out_n_left[j] = n_left
            position = node_starts[j] + n_left
            for c in range(first, b):
                right_offsets[c] = position
                position = position + block_stops[c] - block_starts[c] - block_lefts[c]
        # Pass 2: each block copies its parts to their places.
        for b in prange(n_blocks, num_threads=n_threads, schedule="dynamic"):
            for k in range(block_lefts[b]):
                rows[left_offsets[b] + k] = scratch[block_starts[b] + k]
            for k in range(block_stops[b] - block_starts[b] - block_lefts[b]):
                rows[right_offsets[b] + k] = scratch[block_stops[b] - 1 - k]


def _add_leaf_values(const intp_t[::1] rows, const intp_t[::1] leaf_starts,           # IN
                     const intp_t[::1] leaf_stops, const float[::1] leaf_values,      # IN
                     float[::1] raw_predictions,                                      # IN/OUT
                     int n_threads):
    cdef intp_t leaf, k
    cdef float value
    for leaf in prange(leaf_starts.shape[0], num_threads=n_threads, schedule="dynamic",
                       nogil=True):
        value = leaf_values[leaf]
        for k in range(leaf_starts[leaf], leaf_stops[leaf]):
            raw_predictions[rows[k]] = raw_predictions[rows[k]] + value


def partition_rows(binned, rows, node_starts, node_stops, features, split_bins, default_lefts,
                   missing_bins, scratch, out_n_left, n_threads):
    """Stable partition of a level's nodes (see :func:`partition_numpy.partition_rows`)."""
    n_threads = max(1, int(n_threads))
    if int(np.sum(node_stops - node_starts)) < parallel_minimum(PARALLEL_MIN_ROWS):
        n_threads = 1
    _partition_rows(binned, rows, node_starts, node_stops, features, split_bins, default_lefts,
                    missing_bins, scratch, out_n_left, n_threads)


def add_leaf_values(rows, leaf_starts, leaf_stops, leaf_values, raw_predictions, n_threads):
    """Add each leaf's value to its rows' margins (leaves in parallel; disjoint rows).

    One thread below ``PARALLEL_MIN_ROWS`` rows (as the partitions).
    """
    n_threads = (max(1, int(n_threads)) if rows.shape[0] >= parallel_minimum(PARALLEL_MIN_ROWS)
                 else 1)
    _add_leaf_values(rows, leaf_starts, leaf_stops, leaf_values, raw_predictions, n_threads)
