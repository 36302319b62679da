r"""Gradient histograms of gradient boosting: the readable reference.

Gradient boosting with histograms (xgboost ``tree_method="hist"``, LightGBM,
scikit-learn's ``HistGradientBoosting*``) first maps every feature value to a
small integer, its *bin* (:func:`map_to_bins`). A tree node is then summarised,
per feature and per bin, by the sums of the gradients and hessians of its rows:

.. math::

    G_{f b} = \sum_{i \in \text{node},\; X^{bin}_{i f} = b} g_i, \qquad
    H_{f b} = \sum_{i \in \text{node},\; X^{bin}_{i f} = b} h_i .

Every split of the node along feature ``f`` is a prefix of these bins, so the
split search needs only the histogram (see :mod:`splitting_numpy`).

Layout: ``hist[f, b, 0]`` is :math:`G_{fb}`, ``hist[f, b, 1]`` is :math:`H_{fb}`,
one such array per node of a tree level (the kernels work a level at a time,
so that a tree costs a few parallel regions, not a few per node),
float64 (sums of float32 gradients; float64 keeps the subtraction trick
``sibling = parent - child`` free of catastrophic cancellation). Gradients and
hessians are float32, as in xgboost. Every backend adds the rows of a node in
the order of ``rows``, one accumulator per (feature, bin), so all backends give
bit-identical histograms whatever the number of threads (threads split the
features, never the rows).
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
    "map_to_bins": ("cython", "numba", "numpy"),
    "build_histograms": ("cython", "numba", "numpy"),
    "subtract_histograms": ("cython", "numba", "numpy"),
    "build_class_histograms": ("cython", "numba", "numpy"),
}


def map_to_bins(X, cut_values, cut_ptr, out_binned, n_threads):
    """Bin index of every value: the first cut point strictly above it.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32, C-contiguous
    cut_values : ndarray of shape (cut_ptr[-1],), float32
        The increasing cut points of feature ``f`` are
        ``cut_values[cut_ptr[f]:cut_ptr[f + 1]]``; the last one lies above the
        feature's maximum.
    cut_ptr : ndarray of shape (d + 1,), intp
    out_binned : ndarray of shape (n, d), uint8
        Written: ``b`` such that ``cuts[b - 1] <= x < cuts[b]`` (xgboost's
        ``upper_bound`` search), clipped to the last bin. NaN is written as
        the number of cut points of its feature (the feature's *missing slot*,
        one past its last bin); the caller guarantees that it fits in uint8.
    n_threads : int
        Ignored.
    """
    for f in range(X.shape[1]):
        cuts = cut_values[cut_ptr[f]:cut_ptr[f + 1]]
        column = X[:, f]
        bins = np.searchsorted(cuts, column, side="right")
        np.minimum(bins, cuts.shape[0] - 1, out=bins)
        bins[np.isnan(column)] = cuts.shape[0]
        out_binned[:, f] = bins


def build_histograms(binned, rows, node_starts, node_stops, gradients, hessians, out_hists,
                     n_threads):
    """Gradient and hessian sums per (feature, bin) of several nodes (one tree level).

    Parameters
    ----------
    binned : ndarray of shape (n, d), uint8, C-contiguous
    rows : ndarray of shape (n,), intp
        Node ``j`` owns ``rows[node_starts[j]:node_stops[j]]``; its rows are
        added in this order.
    node_starts, node_stops : ndarray of shape (k,), intp
    gradients, hessians : ndarray of shape (n,), float32
    out_hists : ndarray of shape (k, d, n_slots, 2), float64
        Overwritten: ``[j, f, b, 0]`` the gradient sum, ``[j, f, b, 1]`` the
        hessian sum of node ``j``'s rows whose feature ``f`` is in bin ``b``.
    n_threads : int
        Ignored.
    """
    n_slots = out_hists.shape[2]
    for j in range(node_starts.shape[0]):
        node_rows = rows[node_starts[j]:node_stops[j]]
        node_gradients = gradients[node_rows].astype(np.float64)
        node_hessians = hessians[node_rows].astype(np.float64)
        for f in range(binned.shape[1]):
            bins = binned[node_rows, f]
            # bincount adds the weights in row order, in float64.
            out_hists[j, f, :, 0] = np.bincount(bins, weights=node_gradients, minlength=n_slots)
            out_hists[j, f, :, 1] = np.bincount(bins, weights=node_hessians, minlength=n_slots)


def build_class_histograms(binned, rows, start, stop, gradients, hessians, out_hists,
                           n_threads):
    """One node's histograms for several sets of gradients (the classes of a round).

    A multiclass round grows one tree per class from the same rows, so the
    roots of all its trees are one pass over the binned data: the optimised
    backends read each block of rows once for all the classes.

    Parameters
    ----------
    binned : ndarray of shape (n, d), uint8, C-contiguous
    rows : ndarray of shape (n,), intp
        The node owns ``rows[start:stop]``; its rows are added in this order.
    start, stop : int
    gradients, hessians : ndarray of shape (K, n), float32
        One row per class.
    out_hists : ndarray of shape (K, d, n_slots, 2), float64
        Overwritten: ``out_hists[k]`` is what :func:`build_histograms` gives
        for ``gradients[k], hessians[k]`` (the same sums in the same order).
    n_threads : int
        Ignored.
    """
    starts, stops = np.array([start], dtype=np.intp), np.array([stop], dtype=np.intp)
    for k in range(gradients.shape[0]):
        build_histograms(binned, rows, starts, stops, gradients[k], hessians[k],
                         out_hists[k:k + 1], n_threads)


def subtract_histograms(parent_hists, parent_index, child_hists, out_hists, n_threads):
    """Siblings' histograms: ``out_hists[j] = parent_hists[parent_index[j]] - child_hists[j]``.

    The subtraction trick: a split node's two children partition its rows, so
    only the smaller child is built from the data.
    """
    np.subtract(parent_hists[parent_index], child_hists, out=out_hists)


# Readable loop twins, the definition the tests check every backend against.

def _map_to_bins_naive(X, cut_values, cut_ptr, out_binned, n_threads):
    for i in range(X.shape[0]):
        for f in range(X.shape[1]):
            cuts = cut_values[cut_ptr[f]:cut_ptr[f + 1]]
            x = X[i, f]
            if np.isnan(x):
                out_binned[i, f] = len(cuts)
                continue
            b = 0
            while b < len(cuts) - 1 and not x < cuts[b]:
                b += 1
            out_binned[i, f] = b


def _build_histograms_naive(binned, rows, node_starts, node_stops, gradients, hessians, out_hists,
                            n_threads):
    out_hists[:] = 0.0
    for j in range(len(node_starts)):
        for i in rows[node_starts[j]:node_stops[j]]:
            for f in range(binned.shape[1]):
                out_hists[j, f, binned[i, f], 0] += float(gradients[i])
                out_hists[j, f, binned[i, f], 1] += float(hessians[i])
