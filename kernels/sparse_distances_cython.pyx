# cython: language_level=3
r"""k nearest neighbours of sparse (CSR) rows: the Cython kernels.

Same two steps and blocking as :mod:`sparse_distances_numba`: OpenMP threads
over blocks of ``QUERY_BLOCK`` queries; each thread scatters its query into a
dense float64 d-vector, scores every reference row over its own non-zeros,
keeps ``candidate_count(k, n)`` candidates in a max-heap, and re-ranks them
exactly by merging sorted column indices. The reference set is never
densified.
"""

include "_common.pxi"

import numpy as np
from cython.parallel cimport parallel, prange
from libc.math cimport fabs, sqrt
from libc.string cimport memset

from .distances_numpy import candidate_count

DEF QUERY_BLOCK = 16
DEF SQEUCLIDEAN = 0
DEF MANHATTAN = 1
DEF COSINE = 2


cdef inline double inverse_norm(const floating* data, intp_t start, intp_t stop) noexcept nogil:
    """1 / ||row|| in float64 over the row's non-zeros (0 for a zero row)."""
    cdef double total = 0.0
    cdef intp_t position
    for position in range(start, stop):
        total = total + <double> data[position] * <double> data[position]
    if total == 0.0:
        return 0.0
    return 1.0 / sqrt(total)


cdef inline double term(int metric, double a, double b) noexcept nogil:
    cdef double diff = a - b
    if metric == MANHATTAN:
        return fabs(diff)
    return diff * diff


cdef double exact_distance(int metric, const floating* q_data, const intp_t* q_indices,
                           intp_t q_start, intp_t q_stop, double q_scale,
                           const floating* x_data, const intp_t* x_indices,
                           intp_t x_start, intp_t x_stop, double x_scale) noexcept nogil:
    """Exact float64 distance of two CSR rows: a merge of their sorted indices, feature order."""
    cdef double total = 0.0
    cdef intp_t a = q_start, b = x_start
    if metric == COSINE and (q_scale == 0.0 or x_scale == 0.0):
        return 1.0
    while a < q_stop or b < x_stop:
        if b >= x_stop or (a < q_stop and q_indices[a] < x_indices[b]):
            total = total + term(metric, <double> q_data[a] * q_scale, 0.0)
            a = a + 1
        elif a >= q_stop or x_indices[b] < q_indices[a]:
            total = total + term(metric, 0.0, <double> x_data[b] * x_scale)
            b = b + 1
        else:
            total = total + term(metric, <double> q_data[a] * q_scale, <double> x_data[b] * x_scale)
            a = a + 1
            b = b + 1
    if metric == COSINE:
        return min(0.5 * total, 2.0)
    return total


cdef void _query(int metric, const floating[::1] q_data, const intp_t[::1] q_indices,
                 const intp_t[::1] q_indptr, const floating[::1] x_data, const intp_t[::1] x_indices,
                 const intp_t[::1] x_indptr, const double[::1] x_inverse_norms, intp_t i,
                 intp_t n_candidates, double* dense, double* heap_values, intp_t* heap_indices,
                 double* exact, double[:, ::1] out_distances, intp_t[:, ::1] out_indices) noexcept nogil:
    """Neighbours of query row i (dense is all zeros on entry and on exit)."""
    cdef intp_t n_reference = x_indptr.shape[0] - 1
    cdef intp_t k = out_distances.shape[1]
    cdef intp_t q_start = q_indptr[i], q_stop = q_indptr[i + 1]
    cdef intp_t a, b, j, c
    cdef double base = 0.0, total, value, at_query, distance, q_scale = 1.0, x_scale
    for a in range(q_start, q_stop):
        value = <double> q_data[a]
        dense[q_indices[a]] = value
        if metric == SQEUCLIDEAN:
            base = base + value * value
        elif metric == MANHATTAN:
            base = base + fabs(value)
    if metric == COSINE:
        q_scale = inverse_norm(&q_data[0], q_start, q_stop) if q_stop > q_start else 0.0
    for c in range(n_candidates):
        heap_values[c] = INFINITY
        heap_indices[c] = n_reference
    # Step 1: rank every reference row over its own non-zeros.
    for j in range(n_reference):
        total = 0.0
        for b in range(x_indptr[j], x_indptr[j + 1]):
            value = <double> x_data[b]
            at_query = dense[x_indices[b]]
            if metric == SQEUCLIDEAN:
                total = total + ((value - at_query) * (value - at_query) - at_query * at_query)
            elif metric == MANHATTAN:
                total = total + (fabs(value - at_query) - fabs(at_query))
            else:
                total = total + value * at_query
        if metric == COSINE:
            distance = 1.0 - total * x_inverse_norms[j] * q_scale
        else:
            distance = base + total
        if distance < heap_values[0]:  # indices only grow: ties keep the smaller
            heap_push(heap_values, heap_indices, n_candidates, distance, j)
    for a in range(q_start, q_stop):
        dense[q_indices[a]] = 0.0
    # Step 2: exact re-ranking, sorted by (distance, index).
    for c in range(n_candidates):
        j = heap_indices[c]
        x_scale = x_inverse_norms[j] if metric == COSINE else 1.0
        exact[c] = exact_distance(metric, &q_data[0] if q_data.shape[0] else NULL, &q_indices[0] if q_indices.shape[0] else NULL,
                                  q_start, q_stop, q_scale,
                                  &x_data[0] if x_data.shape[0] else NULL, &x_indices[0] if x_indices.shape[0] else NULL,
                                  x_indptr[j], x_indptr[j + 1], x_scale)
    sort_pairs(exact, heap_indices, n_candidates)
    for c in range(k):
        out_distances[i, c] = exact[c]
        out_indices[i, c] = heap_indices[c]


def _sparse_topk(int metric,
                 const floating[::1] q_data, const intp_t[::1] q_indices, const intp_t[::1] q_indptr,  # IN
                 const floating[::1] x_data, const intp_t[::1] x_indices, const intp_t[::1] x_indptr,  # IN
                 intp_t n_features, intp_t n_candidates,                                               # IN
                 double[:, ::1] out_distances, intp_t[:, ::1] out_indices,                              # OUT
                 int n_threads):
    cdef intp_t n_queries = q_indptr.shape[0] - 1
    cdef intp_t n_reference = x_indptr.shape[0] - 1
    cdef intp_t n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    cdef intp_t block, i, j
    cdef double[::1] x_inverse_norms = np.zeros(max(n_reference, 1), dtype=np.float64)
    cdef double* dense
    cdef double* heap_values
    cdef intp_t* heap_indices
    cdef double* exact
    if metric == COSINE and x_data.shape[0] > 0:
        for j in range(n_reference):
            x_inverse_norms[j] = inverse_norm(&x_data[0], x_indptr[j], x_indptr[j + 1])
    with nogil, parallel(num_threads=n_threads):
        # Thread-local buffers: the scattered query (all zeros between queries) and the heap.
        dense = <double*> malloc(max(n_features, 1) * sizeof(double))
        memset(dense, 0, max(n_features, 1) * sizeof(double))
        heap_values = <double*> malloc(n_candidates * sizeof(double))
        heap_indices = <intp_t*> malloc(n_candidates * sizeof(intp_t))
        exact = <double*> malloc(n_candidates * sizeof(double))
        for block in prange(n_blocks, schedule="static"):
            for i in range(block * QUERY_BLOCK, min((block + 1) * QUERY_BLOCK, n_queries)):
                _query(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                       x_inverse_norms, i, n_candidates, dense, heap_values, heap_indices, exact,
                       out_distances, out_indices)
        free(dense)
        free(heap_values)
        free(heap_indices)
        free(exact)


def _run(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
         out_distances, out_indices, n_threads):
    n_candidates = candidate_count(out_distances.shape[1], x_indptr.shape[0] - 1)
    _sparse_topk(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                 n_candidates, out_distances, out_indices, n_threads)


def sparse_sqeuclidean_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                            out_distances, out_indices, n_threads):
    """k smallest squared euclidean distances between CSR rows (see :mod:`sparse_distances_numpy`)."""
    _run(SQEUCLIDEAN, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
         out_distances, out_indices, n_threads)


def sparse_manhattan_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                          out_distances, out_indices, n_threads):
    """k smallest Manhattan distances between CSR rows (see :mod:`sparse_distances_numpy`)."""
    _run(MANHATTAN, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
         out_distances, out_indices, n_threads)


def sparse_cosine_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                       out_distances, out_indices, n_threads):
    """k smallest cosine distances between CSR rows (see :mod:`sparse_distances_numpy`)."""
    _run(COSINE, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
         out_distances, out_indices, n_threads)
