"""Gradient boosting on sparse data: Numba kernels (see :mod:`sparse_histogram_numpy`).

Threads take whole nodes (``prange`` over the nodes of a level); each node's
sums run serially in row order, so the bits do not depend on the thread count.
Compiled on first use (``cache=True``), never at import.
"""

import numba as nb
import numpy as np

from ._threads import numba_threads



@nb.njit(parallel=True, cache=True, nogil=True)
def _map(data, indices, cut_values, cut_ptr, out_codes, n_chunks):
    nnz = data.shape[0]
    step = (nnz + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        for e in range(c * step, min(nnz, (c + 1) * step)):
            f = indices[e]
            low = cut_ptr[f]
            high = cut_ptr[f + 1]
            first, last = low, high - 1
            x = data[e]
            while low < high:  # first cut point strictly above x
                middle = (low + high) // 2
                if cut_values[middle] > x:
                    high = middle
                else:
                    low = middle + 1
            out_codes[e] = min(low, last) - first


def map_sparse_to_bins(data, indices, cut_values, cut_ptr, out_codes, n_threads):
    """Numba version of :func:`sparse_histogram_numpy.map_sparse_to_bins`."""
    n_chunks = max(1, min(int(n_threads), data.shape[0] // 4096))
    with numba_threads(n_threads):
        _map(data, indices, cut_values, cut_ptr, out_codes, n_chunks)


@nb.njit(cache=True, nogil=True)
def _node_histogram(indptr, indices, codes, rows, start, stop, gradients, hessians,
                    missing_bins, hist, counts):
    hist[:] = 0.0
    counts[:] = 0
    total_g = 0.0
    total_h = 0.0
    for p in range(start, stop):
        i = rows[p]
        g = np.float64(gradients[i])
        h = np.float64(hessians[i])
        total_g += g
        total_h += h
        for e in range(indptr[i], indptr[i + 1]):
            f = indices[e]
            b = codes[e]
            hist[f, b, 0] += g
            hist[f, b, 1] += h
            counts[f] += 1
    n_rows = stop - start
    for f in range(hist.shape[0]):
        if counts[f] == n_rows:
            continue
        present_g = 0.0
        present_h = 0.0
        nb_ = missing_bins[f]
        for b in range(nb_):
            present_g += hist[f, b, 0]
            present_h += hist[f, b, 1]
        hist[f, nb_, 0] = total_g - present_g
        hist[f, nb_, 1] = total_h - present_h


@nb.njit(parallel=True, cache=True, nogil=True)
def _build_parallel(indptr, indices, codes, rows, node_starts, node_stops, gradients, hessians,
                    missing_bins, out_hists):
    d = out_hists.shape[1]
    for j in nb.prange(node_starts.shape[0]):
        counts = np.empty(d, dtype=np.intp)
        _node_histogram(indptr, indices, codes, rows, node_starts[j], node_stops[j], gradients,
                        hessians, missing_bins, out_hists[j], counts)


@nb.njit(cache=True, nogil=True)
def _build_serial(indptr, indices, codes, rows, node_starts, node_stops, gradients, hessians,
                  missing_bins, out_hists):
    counts = np.empty(out_hists.shape[1], dtype=np.intp)
    for j in range(node_starts.shape[0]):
        _node_histogram(indptr, indices, codes, rows, node_starts[j], node_stops[j], gradients,
                        hessians, missing_bins, out_hists[j], counts)


def build_sparse_histograms(indptr, indices, codes, rows, node_starts, node_stops, gradients,
                            hessians, missing_bins, out_hists, n_threads):
    """Numba version of :func:`sparse_histogram_numpy.build_sparse_histograms`."""
    if n_threads > 1 and node_starts.shape[0] > 1:
        with numba_threads(n_threads):
            _build_parallel(indptr, indices, codes, rows, node_starts, node_stops, gradients,
                            hessians, missing_bins, out_hists)
    else:
        _build_serial(indptr, indices, codes, rows, node_starts, node_stops, gradients,
                      hessians, missing_bins, out_hists)


@nb.njit(cache=True, nogil=True)
def _partition_node(j, col_ptr, col_rows, col_codes, rows, start, stop, feature, split_bin,
                    default_left, marks, goes_left, scratch):
    for p in range(start, stop):
        goes_left[rows[p]] = default_left
    for e in range(col_ptr[feature], col_ptr[feature + 1]):
        r = col_rows[e]
        if marks[r] == j:
            goes_left[r] = 1 if col_codes[e] <= split_bin else 0
    n_left = start
    n_right = start
    for p in range(start, stop):
        r = rows[p]
        if goes_left[r]:
            rows[n_left] = r
            n_left += 1
        else:
            scratch[n_right] = r
            n_right += 1
    for q in range(start, n_right):
        rows[n_left + q - start] = scratch[q]
    return n_left - start


@nb.njit(parallel=True, cache=True, nogil=True)
def _mark(rows, node_starts, node_stops, marks):
    for j in nb.prange(node_starts.shape[0]):  # the nodes' rows are disjoint
        for p in range(node_starts[j], node_stops[j]):
            marks[rows[p]] = j


@nb.njit(parallel=True, cache=True, nogil=True)
def _partition_parallel(col_ptr, col_rows, col_codes, rows, node_starts, node_stops, features,
                        split_bins, default_lefts, marks, goes_left, scratch, out_n_left):
    for j in nb.prange(node_starts.shape[0]):
        out_n_left[j] = _partition_node(j, col_ptr, col_rows, col_codes, rows, node_starts[j],
                                        node_stops[j], features[j], split_bins[j],
                                        default_lefts[j], marks, goes_left, scratch)


@nb.njit(cache=True, nogil=True)
def _partition_serial(col_ptr, col_rows, col_codes, rows, node_starts, node_stops, features,
                      split_bins, default_lefts, marks, goes_left, scratch, out_n_left):
    for j in range(node_starts.shape[0]):
        out_n_left[j] = _partition_node(j, col_ptr, col_rows, col_codes, rows, node_starts[j],
                                        node_stops[j], features[j], split_bins[j],
                                        default_lefts[j], marks, goes_left, scratch)


def partition_sparse_rows(col_ptr, col_rows, col_codes, rows, node_starts, node_stops, features,
                          split_bins, default_lefts, marks, goes_left, scratch, out_n_left,
                          n_threads):
    """Numba version of :func:`sparse_histogram_numpy.partition_sparse_rows`."""
    if n_threads > 1 and node_starts.shape[0] > 1:
        with numba_threads(n_threads):
            # Every node's rows are marked before any column is read.
            _mark(rows, node_starts, node_stops, marks)
            _partition_parallel(col_ptr, col_rows, col_codes, rows, node_starts, node_stops,
                                features, split_bins, default_lefts, marks, goes_left, scratch,
                                out_n_left)
    else:
        with numba_threads(1):
            _mark(rows, node_starts, node_stops, marks)
        _partition_serial(col_ptr, col_rows, col_codes, rows, node_starts, node_stops, features,
                          split_bins, default_lefts, marks, goes_left, scratch, out_n_left)
