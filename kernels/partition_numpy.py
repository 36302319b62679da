r"""Splitting the rows of a tree node, and adding leaf values: the readable reference.

Each node of a tree owns a contiguous segment of one array of row indices
(pygbm and scikit-learn's ``sample_indices``). Splitting the node on feature
``f`` at bin ``b`` reorders its segment *stably* into the rows that go left,

.. math::

    \text{left} = \{ i : X^{bin}_{if} \le b \} \cup
                  \{ i : x_{if} \text{ missing and the default is left} \},

followed by the rows that go right, so both children again own contiguous
segments and keep the order of their rows (the histograms then add rows in
the same order in every backend). At the end of a tree every leaf owns a
segment, and :func:`add_leaf_values` adds its value to the training
predictions of its rows without walking the tree.
"""

import numpy as np

# Fastest first, as measured by benchmarks/test_bench_boosting.py, default size
# (fit of 200k x 28, 100 trees of depth 6, 2 threads) on an otherwise idle
# 2-core machine: Cython 1.96 s, Numba 4.10 s (xgboost 1.65 s). Under heavy
# load from other processes the order flipped (OpenMP threads spin-waiting;
# OMP_WAIT_POLICY=passive helps). Issue 19 made the Cython kernels faster still
# (packed SSE2 histogram additions, prefetch, branch-free partition over a
# column-major copy) and small levels serial: 1M x 28, 20 trees, 2 threads, on
# a 2-core machine at load 15 from other processes, Cython 3.6 s CPU / 12 s wall
# against xgboost's 9.6 s CPU / 35 s wall.
AUTO_BACKEND_ORDER = {
    "partition_rows": ("cython", "numba", "numpy"),
    "add_leaf_values": ("cython", "numba", "numpy"),
}


def partition_rows(binned, rows, node_starts, node_stops, features, split_bins, default_lefts,
                   missing_bins, scratch, out_n_left, n_threads):
    """Stable partition of each node's rows into left then right (one tree level).

    Parameters
    ----------
    binned : ndarray of shape (n, d), uint8, any memory layout
        Column-major (``np.asfortranarray``) is the fast layout: each node
        reads one feature of its rows, so one column (n bytes) stays in cache,
        where row-major data bring a cache line per row.
    rows : ndarray of shape (n,), intp
        IN and OUT: node ``j``'s rows ``rows[node_starts[j]:node_stops[j]]``
        are reordered in place, left rows first.
    node_starts, node_stops : ndarray of shape (k,), intp
    features, split_bins : ndarray of shape (k,), intp
        Node ``j``'s rows with ``binned[i, features[j]] <= split_bins[j]`` go left.
    default_lefts : ndarray of shape (k,), uint8
        Whether node ``j``'s rows with a missing value go left.
    missing_bins : ndarray of shape (d,), intp
        The code that marks a missing value of each feature.
    scratch : ndarray of shape (n,), intp
        Work space.
    out_n_left : ndarray of shape (k,), intp
        Written: the number of rows of each node that went left.
    n_threads : int
        Ignored.
    """
    for j in range(node_starts.shape[0]):
        start, stop = node_starts[j], node_stops[j]
        segment = rows[start:stop]
        bins = binned[segment, features[j]].astype(np.intp)
        go_left = np.where(bins == missing_bins[features[j]], bool(default_lefts[j]),
                           bins <= split_bins[j])
        n_left = int(np.count_nonzero(go_left))
        scratch[start:start + n_left] = segment[go_left]
        scratch[start + n_left:stop] = segment[~go_left]
        segment[:] = scratch[start:stop]
        out_n_left[j] = n_left


def add_leaf_values(rows, leaf_starts, leaf_stops, leaf_values, raw_predictions, n_threads):
    """``raw_predictions[rows[start:stop]] += value`` for every leaf.

    Parameters
    ----------
    rows : ndarray of shape (n,), intp
        The row order left by the partitions of one tree.
    leaf_starts, leaf_stops : ndarray of shape (n_leaves,), intp
        Each leaf's segment of ``rows``.
    leaf_values : ndarray of shape (n_leaves,), float32
    raw_predictions : ndarray of shape (n,), float32
        IN and OUT: the margins, updated in place (float32 additions, as
        xgboost's prediction cache).
    n_threads : int
        Ignored.
    """
    for start, stop, value in zip(leaf_starts, leaf_stops, leaf_values):
        segment = rows[start:stop]
        raw_predictions[segment] += np.float32(value)


def _partition_rows_naive(binned, rows, node_starts, node_stops, features, split_bins,
                          default_lefts, missing_bins, scratch, out_n_left, n_threads):
    for j in range(len(node_starts)):
        segment = list(rows[node_starts[j]:node_stops[j]])
        f = features[j]

        def goes_left(i):
            if binned[i, f] == missing_bins[f]:
                return bool(default_lefts[j])
            return binned[i, f] <= split_bins[j]
        left = [i for i in segment if goes_left(i)]
        right = [i for i in segment if not goes_left(i)]
        rows[node_starts[j]:node_stops[j]] = left + right
        out_n_left[j] = len(left)


def _add_leaf_values_naive(rows, leaf_starts, leaf_stops, leaf_values, raw_predictions, n_threads):
    for leaf in range(len(leaf_starts)):
        for k in range(leaf_starts[leaf], leaf_stops[leaf]):
            raw_predictions[rows[k]] = np.float32(raw_predictions[rows[k]] + leaf_values[leaf])
