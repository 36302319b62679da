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

# Fastest first, as measured by benchmarks/test_bench_boosting.py (2 cores).
AUTO_BACKEND_ORDER = {
    "partition_rows": ("numba", "cython", "numpy"),
    "add_leaf_values": ("numba", "cython", "numpy"),
}


def partition_rows(binned, feature, split_bin, missing_bin, default_left, rows, scratch,
                   out_n_left, n_threads):
    """Stable partition of a node's rows into left then right.

    Parameters
    ----------
    binned : ndarray of shape (n, d), uint8
    feature : int
    split_bin : int
        Rows with ``binned[i, feature] <= split_bin`` go left.
    missing_bin : int
        The bin that marks a missing value of ``feature``; such rows go left
        iff ``default_left``.
    default_left : int (0 or 1)
    rows : ndarray of shape (m,), intp
        IN and OUT: the node's rows, reordered in place.
    scratch : ndarray of shape (>= m,), intp
        Work space.
    out_n_left : ndarray of shape (1,), intp
        Written: the number of rows that went left.
    n_threads : int
        Ignored.
    """
    bins = binned[rows, feature].astype(np.intp)
    go_left = np.where(bins == missing_bin, bool(default_left), bins <= split_bin)
    n_left = int(np.count_nonzero(go_left))
    m = rows.shape[0]
    scratch[:n_left] = rows[go_left]
    scratch[n_left:m] = rows[~go_left]
    rows[:] = scratch[:m]
    out_n_left[0] = n_left


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


def _partition_rows_naive(binned, feature, split_bin, missing_bin, default_left, rows, scratch,
                          out_n_left, n_threads):
    left = [i for i in rows if (default_left if binned[i, feature] == missing_bin
                                else binned[i, feature] <= split_bin)]
    right = [i for i in rows if not (default_left if binned[i, feature] == missing_bin
                                     else binned[i, feature] <= split_bin)]
    rows[:] = left + right
    out_n_left[0] = len(left)


def _add_leaf_values_naive(rows, leaf_starts, leaf_stops, leaf_values, raw_predictions, n_threads):
    for leaf in range(len(leaf_starts)):
        for k in range(leaf_starts[leaf], leaf_stops[leaf]):
            raw_predictions[rows[k]] = np.float32(raw_predictions[rows[k]] + leaf_values[leaf])
