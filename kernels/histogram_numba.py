r"""Gradient histograms of gradient boosting: the Numba kernels.

Same sums and order as :mod:`histogram_numpy`. One call builds the
histograms of all the nodes of a tree level. Threads split the *features*
into contiguous groups; each thread walks every node's rows in order and adds
each row's gradient and hessian to its own features' bins (row-major binned
data: one row's codes sit in one cache line). No per-thread copies of the
histogram, no reduction, and every (feature, bin) sum is made in row order by
one thread, so the result does not depend on the number of threads, and the
work is balanced whatever the node sizes. Small levels run serially (the same
loop compiled without ``parallel``). ``build_class_histograms`` builds one
node's histograms for every class of a multiclass round in one pass (blocks of
rows that every class adds while the block's codes are in cache).
"""

import numba
import numpy as np

from ._constants import FAMILIES, THRESHOLDS
from ._threads import numba_threads, parallel_minimum

_SHARED = FAMILIES["histogram"]  # shared with histogram_cython
# Rows of a level below which one thread builds (histogram_cython).
PARALLEL_MIN_ROWS = THRESHOLDS["histogram"]["PARALLEL_MIN_ROWS"]
PARALLEL_MIN_SUBTRACT = _SHARED["PARALLEL_MIN_SUBTRACT"]  # histogram entries
CLASS_BLOCK = _SHARED["CLASS_BLOCK"]  # rows of binned data kept in cache while every class adds them


def _histograms_body(binned, rows, node_starts, node_stops, gradients, hessians, out_hists,
                     n_groups):
    n_features = binned.shape[1]
    n_slots = out_hists.shape[2]
    for group in numba.prange(n_groups):
        f_start = group * n_features // n_groups
        f_stop = (group + 1) * n_features // n_groups
        for j in range(node_starts.shape[0]):
            hist = out_hists[j]
            for f in range(f_start, f_stop):
                for b in range(n_slots):
                    hist[f, b, 0] = 0.0
                    hist[f, b, 1] = 0.0
            for i in range(node_starts[j], node_stops[j]):
                r = rows[i]
                g = np.float64(gradients[r])
                h = np.float64(hessians[r])
                for f in range(f_start, f_stop):
                    b = binned[r, f]
                    hist[f, b, 0] += g
                    hist[f, b, 1] += h


def _class_histograms_body(binned, rows, start, stop, gradients, hessians, out_hists, n_groups):
    # Blocks of CLASS_BLOCK rows: a block's codes are read from memory once and
    # stay in cache while every class adds them to its own histogram.
    n_features = binned.shape[1]
    n_slots = out_hists.shape[2]
    for group in numba.prange(n_groups):
        f_start = group * n_features // n_groups
        f_stop = (group + 1) * n_features // n_groups
        for k in range(out_hists.shape[0]):
            for f in range(f_start, f_stop):
                for b in range(n_slots):
                    out_hists[k, f, b, 0] = 0.0
                    out_hists[k, f, b, 1] = 0.0
        for block_start in range(start, stop, CLASS_BLOCK):
            block_stop = min(block_start + CLASS_BLOCK, stop)
            for k in range(out_hists.shape[0]):
                hist = out_hists[k]
                for i in range(block_start, block_stop):
                    r = rows[i]
                    g = np.float64(gradients[k, r])
                    h = np.float64(hessians[k, r])
                    for f in range(f_start, f_stop):
                        b = binned[r, f]
                        hist[f, b, 0] += g
                        hist[f, b, 1] += h


def _subtract_body(parent_hists, parent_index, child_hists, out_hists):
    n_features = child_hists.shape[1]
    n_slots = child_hists.shape[2]
    for task in numba.prange(child_hists.shape[0] * n_features):
        j = task // n_features
        f = task % n_features
        parent = parent_index[j]
        for b in range(n_slots):
            out_hists[j, f, b, 0] = parent_hists[parent, f, b, 0] - child_hists[j, f, b, 0]
            out_hists[j, f, b, 1] = parent_hists[parent, f, b, 1] - child_hists[j, f, b, 1]


_histograms_serial = numba.njit(cache=True, nogil=True)(_histograms_body)
_histograms_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_histograms_body)
_class_histograms_serial = numba.njit(cache=True, nogil=True)(_class_histograms_body)
_class_histograms_parallel = numba.njit(cache=True, nogil=True,
                                        parallel=True)(_class_histograms_body)
_subtract_serial = numba.njit(cache=True, nogil=True)(_subtract_body)
_subtract_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_subtract_body)


BIN_BLOCK = _SHARED["BIN_BLOCK"]  # rows of X binned together, feature by feature


@numba.njit(cache=True, nogil=True, inline="always")
def _bin_one(X, cut_values, out_binned, i, f, start, n_cuts):
    x = X[i, f]
    if np.isnan(x):
        out_binned[i, f] = n_cuts
        return
    # upper_bound (first cut strictly above x), branch-free halving.
    base = start
    size = n_cuts
    while size > 1:
        half = size >> 1
        base += half * np.intp(cut_values[base + half] <= x)  # no branch to mispredict
        size -= half
    low = base - start + (1 if cut_values[base] <= x else 0)
    if low > n_cuts - 1:
        low = n_cuts - 1
    out_binned[i, f] = low


@numba.njit(cache=True, nogil=True, parallel=True)
def _map_to_bins(X, cut_values, cut_ptr, out_binned):
    # Blocks of rows, one feature at a time: consecutive searches share the cut points and
    # the number of halvings (a loop the branch predictor learns), so the CPU overlaps them.
    n_rows, n_features = X.shape
    n_blocks = (n_rows + BIN_BLOCK - 1) // BIN_BLOCK
    for block in numba.prange(n_blocks):
        for f in range(n_features):
            start = cut_ptr[f]
            n_cuts = cut_ptr[f + 1] - start
            for i in range(block * BIN_BLOCK, min((block + 1) * BIN_BLOCK, n_rows)):
                _bin_one(X, cut_values, out_binned, i, f, start, n_cuts)


def _groups(n_features, n_threads):
    return max(1, min(int(n_threads), n_features))


def map_to_bins(X, cut_values, cut_ptr, out_binned, n_threads):
    """Bin codes (see :func:`histogram_numpy.map_to_bins`); threads over blocks of rows."""
    with numba_threads(n_threads):
        _map_to_bins(X, cut_values, cut_ptr, out_binned)


def build_histograms(binned, rows, node_starts, node_stops, gradients, hessians, out_hists,
                     n_threads):
    """Histograms of a level's nodes (see :func:`histogram_numpy.build_histograms`)."""
    n_rows = int(np.sum(node_stops - node_starts))
    if n_threads <= 1 or n_rows < parallel_minimum(PARALLEL_MIN_ROWS):
        _histograms_serial(binned, rows, node_starts, node_stops, gradients, hessians, out_hists, 1)
        return
    with numba_threads(n_threads):
        _histograms_parallel(binned, rows, node_starts, node_stops, gradients, hessians, out_hists,
                             _groups(binned.shape[1], n_threads))


def build_class_histograms(binned, rows, start, stop, gradients, hessians, out_hists,
                           n_threads):
    """One node's histograms for every class (:func:`histogram_numpy.build_class_histograms`)."""
    if n_threads <= 1 or stop - start < parallel_minimum(PARALLEL_MIN_ROWS):
        _class_histograms_serial(binned, rows, start, stop, gradients, hessians, out_hists, 1)
        return
    with numba_threads(n_threads):
        _class_histograms_parallel(binned, rows, start, stop, gradients, hessians, out_hists,
                                   _groups(binned.shape[1], n_threads))


def subtract_histograms(parent_hists, parent_index, child_hists, out_hists, n_threads):
    """``out_hists[j] = parent_hists[parent_index[j]] - child_hists[j]``."""
    if n_threads <= 1 or child_hists.size < PARALLEL_MIN_SUBTRACT:
        _subtract_serial(parent_hists, parent_index, child_hists, out_hists)
        return
    with numba_threads(n_threads):
        _subtract_parallel(parent_hists, parent_index, child_hists, out_hists)
