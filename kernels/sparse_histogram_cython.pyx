# cython: language_level=3
r"""Gradient boosting on sparse data: the Cython kernels.

Same arithmetic as :mod:`sparse_histogram_numpy` (read it for the math) and
the same split as :mod:`sparse_histogram_numba`: OpenMP threads take whole
nodes, each node's sums run serially in row order, so the bits do not depend
on the number of threads. The values are float32 (the dense path bins float32
too, so both give the same codes); gradients and hessians are float32, as in
xgboost.
"""

include "_common.pxi"

import numpy as np
from cython.parallel cimport prange


def map_sparse_to_bins(const float[::1] data, const int[::1] indices,       # IN
                       const float[::1] cut_values, const intp_t[::1] cut_ptr,  # IN
                       unsigned char[::1] out_codes,                     # OUT
                       int n_threads):
    """Cython version of :func:`sparse_histogram_numpy.map_sparse_to_bins`."""
    cdef intp_t e, f, low, high, first, last, middle
    cdef float x
    with nogil:
        for e in prange(data.shape[0], num_threads=n_threads, schedule="static"):
            f = indices[e]
            low = cut_ptr[f]
            high = cut_ptr[f + 1]
            first = low
            last = high - 1
            x = data[e]
            while low < high:  # first cut point strictly above x
                middle = (low + high) // 2
                if cut_values[middle] > x:
                    high = middle
                else:
                    low = middle + 1
            out_codes[e] = (low if low < last else last) - first


cdef void node_histogram(const intp_t[::1] indptr, const int[::1] indices,
                         const unsigned char[::1] codes, const intp_t[::1] rows, intp_t start,
                         intp_t stop, const float[::1] gradients, const float[::1] hessians,
                         const intp_t[::1] missing_bins, double[:, :, ::1] hist,
                         intp_t* counts) noexcept nogil:
    cdef intp_t p, i, e, f, b, nb
    cdef intp_t d = hist.shape[0]
    cdef double g, h, total_g = 0.0, total_h = 0.0, present_g, present_h
    hist[:, :, :] = 0.0
    for f in range(d):
        counts[f] = 0
    for p in range(start, stop):
        i = rows[p]
        g = gradients[i]
        h = hessians[i]
        total_g += g
        total_h += h
        for e in range(indptr[i], indptr[i + 1]):
            f = indices[e]
            b = codes[e]
            hist[f, b, 0] += g
            hist[f, b, 1] += h
            counts[f] += 1
    for f in range(d):
        if counts[f] == stop - start:
            continue  # no row misses f: its missing slot stays 0
        nb = missing_bins[f]
        present_g = 0.0
        present_h = 0.0
        for b in range(nb):
            present_g += hist[f, b, 0]
            present_h += hist[f, b, 1]
        hist[f, nb, 0] = total_g - present_g
        hist[f, nb, 1] = total_h - present_h


def build_sparse_histograms(const intp_t[::1] indptr, const int[::1] indices,   # IN
                            const unsigned char[::1] codes, const intp_t[::1] rows,  # IN
                            const intp_t[::1] node_starts, const intp_t[::1] node_stops,  # IN
                            const float[::1] gradients, const float[::1] hessians,  # IN
                            const intp_t[::1] missing_bins,                     # IN
                            double[:, :, :, ::1] out_hists,                     # OUT
                            int n_threads):
    """Cython version of :func:`sparse_histogram_numpy.build_sparse_histograms`."""
    cdef intp_t j, k = node_starts.shape[0], d = out_hists.shape[1]
    cdef intp_t* counts
    cdef int threads = n_threads if k > 1 else 1
    with nogil:
        for j in prange(k, num_threads=threads, schedule="dynamic"):
            counts = <intp_t*> malloc(d * sizeof(intp_t))
            node_histogram(indptr, indices, codes, rows, node_starts[j], node_stops[j],
                           gradients, hessians, missing_bins, out_hists[j], counts)
            free(counts)


cdef intp_t partition_node(intp_t j, const intp_t[::1] col_ptr, const int[::1] col_rows,
                           const unsigned char[::1] col_codes, intp_t[::1] rows, intp_t start,
                           intp_t stop, intp_t feature, intp_t split_bin,
                           unsigned char default_left, const intp_t[::1] marks,
                           unsigned char[::1] goes_left, intp_t[::1] scratch) noexcept nogil:
    cdef intp_t p, e, r, q, n_left = start, n_right = start
    for p in range(start, stop):
        goes_left[rows[p]] = default_left
    for e in range(col_ptr[feature], col_ptr[feature + 1]):
        r = col_rows[e]
        if marks[r] == j:
            goes_left[r] = 1 if col_codes[e] <= split_bin else 0
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


def partition_sparse_rows(const intp_t[::1] col_ptr, const int[::1] col_rows,   # IN
                          const unsigned char[::1] col_codes,                  # IN
                          intp_t[::1] rows,                                    # INOUT
                          const intp_t[::1] node_starts, const intp_t[::1] node_stops,  # IN
                          const intp_t[::1] features, const intp_t[::1] split_bins,  # IN
                          const unsigned char[::1] default_lefts,              # IN
                          intp_t[::1] marks, unsigned char[::1] goes_left,     # WORK
                          intp_t[::1] scratch,                                 # WORK
                          intp_t[::1] out_n_left,                              # OUT
                          int n_threads):
    """Cython version of :func:`sparse_histogram_numpy.partition_sparse_rows`."""
    cdef intp_t j, p, k = node_starts.shape[0]
    cdef int threads = n_threads if k > 1 else 1
    with nogil:
        # Every node's rows are marked before any column is read (the nodes' rows are disjoint).
        for j in prange(k, num_threads=threads, schedule="dynamic"):
            for p in range(node_starts[j], node_stops[j]):
                marks[rows[p]] = j
        for j in prange(k, num_threads=threads, schedule="dynamic"):
            out_n_left[j] = partition_node(j, col_ptr, col_rows, col_codes, rows, node_starts[j],
                                           node_stops[j], features[j], split_bins[j],
                                           default_lefts[j], marks, goes_left, scratch)
