r"""Splitting the rows of a tree node, and adding leaf values: the Numba kernels.

The stable partition of :func:`partition_numpy.partition_rows` for all the
nodes of a level, in two parallel passes over fixed blocks of ``BLOCK`` rows
of each node: each block reads its rows once, writing the left ones forward
from its start in ``scratch`` and the right ones backward from its end; the counts become offsets within the node;
each block then copies its two parts to their final places. The blocks do not
depend on the number of threads, and the result is the serial stable
partition.
"""

import numba
import numpy as np

from ._constants import FAMILIES, THRESHOLDS
from ._threads import numba_threads, parallel_minimum

BLOCK = FAMILIES["partition"]["BLOCK"]  # shared with partition_cython
# Rows of a level below which one thread partitions (see partition_cython).
PARALLEL_MIN_ROWS = THRESHOLDS["partition"]["PARALLEL_MIN_ROWS"]


def _partition_body(binned, rows, node_starts, node_stops, features, split_bins, default_lefts,
                    missing_bins, scratch, out_n_left):
    n_nodes = node_starts.shape[0]
    # The block table: block b covers rows[block_starts[b]:block_stops[b]] of node block_nodes[b].
    n_blocks = 0
    for j in range(n_nodes):
        n_blocks += (node_stops[j] - node_starts[j] + BLOCK - 1) // BLOCK
    block_starts = np.empty(n_blocks, dtype=np.intp)
    block_stops = np.empty(n_blocks, dtype=np.intp)
    block_nodes = np.empty(n_blocks, dtype=np.intp)
    block_lefts = np.empty(n_blocks, dtype=np.intp)
    b = 0
    for j in range(n_nodes):
        for start in range(node_starts[j], node_stops[j], BLOCK):
            block_starts[b] = start
            block_stops[b] = min(start + BLOCK, node_stops[j])
            block_nodes[b] = j
            b += 1
    # Pass 1: each block reads its rows once, writing left rows forward from the
    # block's start of scratch and right rows backward from its end.
    for b in numba.prange(n_blocks):
        j = block_nodes[b]
        f = features[j]
        split_bin = split_bins[j]
        missing = missing_bins[f]
        default_left = np.intp(default_lefts[j] != 0)
        left_position = block_starts[b]
        right_position = block_stops[b] - 1
        # Branch-free (a split sends rows left or right at random): each row is
        # written at both ends and only its own end advances; the other write
        # lands on a free slot (left_position <= right_position until the last row).
        for i in range(block_starts[b], block_stops[b]):
            r = rows[i]
            code = np.intp(binned[r, f])
            # The missing code lies above every split bin: it goes left only by default.
            left = np.intp(code <= split_bin) | (np.intp(code == missing) & default_left)
            scratch[left_position] = r
            scratch[right_position] = r
            left_position += left
            right_position -= 1 - left
        block_lefts[b] = left_position - block_starts[b]
    # Offsets: where each block's left and right rows go in its node.
    left_offsets = np.empty(n_blocks, dtype=np.intp)
    right_offsets = np.empty(n_blocks, dtype=np.intp)
    b = 0
    for j in range(n_nodes):
        first = b
        n_left = 0
        while b < n_blocks and block_nodes[b] == j:
            left_offsets[b] = node_starts[j] + n_left
            n_left += block_lefts[b]
            b += 1
        out_n_left[j] = n_left
        position = node_starts[j] + n_left
        for c in range(first, b):
            right_offsets[c] = position
            position += block_stops[c] - block_starts[c] - block_lefts[c]
    # Pass 2: each block copies its two parts to their final places.
    for b in numba.prange(n_blocks):
        n_left = block_lefts[b]
        for k in range(n_left):
            rows[left_offsets[b] + k] = scratch[block_starts[b] + k]
        last = block_stops[b] - 1  # right rows were written backward: read them backward
        for k in range(block_stops[b] - block_starts[b] - n_left):
            rows[right_offsets[b] + k] = scratch[last - k]


_partition_serial = numba.njit(cache=True, nogil=True)(_partition_body)
_partition_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_partition_body)


def _add_leaf_values_body(rows, leaf_starts, leaf_stops, leaf_values, raw_predictions):
    for leaf in numba.prange(leaf_starts.shape[0]):
        value = leaf_values[leaf]
        for k in range(leaf_starts[leaf], leaf_stops[leaf]):
            raw_predictions[rows[k]] += value


_add_leaf_values_serial = numba.njit(cache=True, nogil=True)(_add_leaf_values_body)
_add_leaf_values_parallel = numba.njit(cache=True, nogil=True,
                                       parallel=True)(_add_leaf_values_body)


def partition_rows(binned, rows, node_starts, node_stops, features, split_bins, default_lefts,
                   missing_bins, scratch, out_n_left, n_threads):
    """Stable partition of a level's nodes (see :func:`partition_numpy.partition_rows`)."""
    args = (binned, rows, node_starts, node_stops, features, split_bins, default_lefts,
            missing_bins, scratch, out_n_left)
    n_rows = int(np.sum(node_stops - node_starts))
    if n_threads <= 1 or n_rows < parallel_minimum(PARALLEL_MIN_ROWS):
        _partition_serial(*args)
        return
    with numba_threads(n_threads):
        _partition_parallel(*args)


def add_leaf_values(rows, leaf_starts, leaf_stops, leaf_values, raw_predictions, n_threads):
    """Add each leaf's value to its rows' margins (leaves in parallel; disjoint rows)."""
    args = (rows, leaf_starts, leaf_stops, leaf_values, raw_predictions)
    if n_threads <= 1 or rows.shape[0] < parallel_minimum(PARALLEL_MIN_ROWS):
        _add_leaf_values_serial(*args)
        return
    with numba_threads(n_threads):
        _add_leaf_values_parallel(*args)
