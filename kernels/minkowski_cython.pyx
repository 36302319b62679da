# cython: language_level=3
r"""Manhattan and Minkowski distances and their k smallest: the Cython kernels.

Same two steps and blocking as :mod:`minkowski_numba`: sums in the input dtype
(Manhattan) or in float64 (general ``p``), or the maximum of float64
differences (Chebyshev, ``p = inf``), pushed into a per-query max-heap of
``candidate_count(k, n)`` candidates, then an exact float64 re-ranking. OpenMP
threads over blocks of ``QUERY_BLOCK`` queries; each reference row is read
once per block while the block's queries stay in cache.
"""

include "_common.pxi"
include "_constants_minkowski.pxi"  # shared with minkowski_numba (kernels/_constants.py)

import numpy as np
from cython.parallel cimport parallel, prange
from libc.math cimport fabs, fabsf, pow

from .distances_numpy import candidate_count



cdef inline double reduced(double diff, double p) noexcept nogil:
    """|diff| ** p, without a power call when p is 1 or 2."""
    if p == 1.0:
        return fabs(diff)
    if p == 2.0:
        return diff * diff
    return pow(fabs(diff), p)


cdef inline floating absolute(floating x) noexcept nogil:
    """|x| in the input dtype (fabsf for float32: no round trip through double)."""
    if floating is float:
        return fabsf(x)
    return fabs(x)


cdef inline floating manhattan_ranking(const floating* a, const floating* b, intp_t n) noexcept nogil:
    """sum_l |a_l - b_l| in the input dtype with eight running sums.

    Eight independent chains instead of one keep the adds from waiting on each
    other (and let the compiler use SIMD); the order of the sum only matters
    for the ranking, the re-ranking sums in float64 in feature order.
    """
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0
    cdef intp_t l = 0
    while l + 8 <= n:
        s0 += absolute(a[l] - b[l])
        s1 += absolute(a[l + 1] - b[l + 1])
        s2 += absolute(a[l + 2] - b[l + 2])
        s3 += absolute(a[l + 3] - b[l + 3])
        s4 += absolute(a[l + 4] - b[l + 4])
        s5 += absolute(a[l + 5] - b[l + 5])
        s6 += absolute(a[l + 6] - b[l + 6])
        s7 += absolute(a[l + 7] - b[l + 7])
        l += 8
    while l < n:
        s0 += absolute(a[l] - b[l])
        l += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


cdef inline double chebyshev(const floating* a, const floating* b, intp_t n) noexcept nogil:
    """max_l |a_l - b_l| of float64 differences (exact: no rounding in a maximum)."""
    cdef double result = 0.0, term
    cdef intp_t l
    for l in range(n):
        term = fabs(<double> a[l] - <double> b[l])
        if term > result:
            result = term
    return result


cdef void _block(const floating[:, ::1] queries, const floating[:, ::1] reference, double p,
                 intp_t start, intp_t stop, intp_t n_candidates,
                 double* heap_values, intp_t* heap_indices, double* exact, intp_t* sorted_candidates,
                 floating[:, ::1] out_distances, intp_t[:, ::1] out_indices) noexcept nogil:
    cdef intp_t n_features = queries.shape[1]
    cdef intp_t n_reference = reference.shape[0]
    cdef intp_t k = out_distances.shape[1]
    cdef intp_t n_block = stop - start
    cdef intp_t i, j, l, c
    cdef double total
    cdef const floating* row
    cdef const floating* query

    for c in range(n_block * n_candidates):
        heap_values[c] = INFINITY
        heap_indices[c] = n_reference

    for j in range(n_reference):
        row = &reference[j, 0]
        for i in range(n_block):
            query = &queries[start + i, 0]
            if p == 1.0:
                total = manhattan_ranking(query, row, n_features)
            elif p == INFINITY:
                total = chebyshev(query, row, n_features)
            else:
                total = 0.0
                for l in range(n_features):
                    total = total + reduced(<double> query[l] - <double> row[l], p)
            # Indices only grow: only a strictly smaller value enters the heap.
            if total < heap_values[i * n_candidates]:
                heap_push(heap_values + i * n_candidates, heap_indices + i * n_candidates,
                          n_candidates, total, j)

    # Exact float64 re-ranking of each query's candidates.
    for i in range(n_block):
        for c in range(n_candidates):
            sorted_candidates[c] = heap_indices[i * n_candidates + c]
            if p == INFINITY:
                total = chebyshev(&queries[start + i, 0], &reference[sorted_candidates[c], 0], n_features)
            else:
                total = 0.0
                for l in range(n_features):
                    total = total + reduced(<double> queries[start + i, l]
                                            - <double> reference[sorted_candidates[c], l], p)
            exact[c] = total
        sort_pairs(exact, sorted_candidates, n_candidates)
        for j in range(k):
            out_distances[start + i, j] = <floating> exact[j]
            out_indices[start + i, j] = sorted_candidates[j]


def _minkowski_topk(const floating[:, ::1] queries, const floating[:, ::1] reference,  # IN
                    double p, intp_t n_candidates,                                      # IN
                    floating[:, ::1] out_distances, intp_t[:, ::1] out_indices,         # OUT
                    int n_threads):
    cdef intp_t n_queries = queries.shape[0]
    cdef intp_t n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    cdef intp_t block, start, stop
    cdef double* heap_values
    cdef intp_t* heap_indices
    cdef double* exact
    cdef intp_t* sorted_candidates

    with nogil, parallel(num_threads=n_threads):
        # Thread-local buffers, allocated once per thread. The heap holds
        # float64 values: exact for float32 Manhattan sums, and float64 for p != 1.
        heap_values = <double*> malloc(QUERY_BLOCK * n_candidates * sizeof(double))
        heap_indices = <intp_t*> malloc(QUERY_BLOCK * n_candidates * sizeof(intp_t))
        exact = <double*> malloc(n_candidates * sizeof(double))
        sorted_candidates = <intp_t*> malloc(n_candidates * sizeof(intp_t))
        for block in prange(n_blocks, schedule="static"):
            start = block * QUERY_BLOCK
            stop = min(start + QUERY_BLOCK, n_queries)
            _block(queries, reference, p, start, stop, n_candidates, heap_values, heap_indices,
                   exact, sorted_candidates, out_distances, out_indices)
        free(heap_values)
        free(heap_indices)
        free(exact)
        free(sorted_candidates)


def manhattan_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest Manhattan distances (see :mod:`minkowski_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    _minkowski_topk(queries, reference, 1.0, n_candidates, out_distances, out_indices, n_threads)


def minkowski_topk(queries, reference, p, out_distances, out_indices, n_threads):
    """k smallest reduced Minkowski distances (see :mod:`minkowski_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    _minkowski_topk(queries, reference, float(p), n_candidates, out_distances, out_indices, n_threads)


def chebyshev_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest Chebyshev distances (see :mod:`minkowski_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    _minkowski_topk(queries, reference, INFINITY, n_candidates, out_distances, out_indices, n_threads)
