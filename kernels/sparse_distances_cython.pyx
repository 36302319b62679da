# cython: language_level=3
r"""k nearest neighbours of sparse (CSR) rows: the Cython kernels.

Same two steps and blocking as :mod:`sparse_distances_numba`: OpenMP threads
over blocks of ``QUERY_BLOCK`` queries; for each query, the CSC columns of
its non-zeros add their terms into the thread's float64 n-vector, one scan
of the n rows (zeroing it again) keeps ``candidate_count(k, n)`` candidates
in a max-heap, and the candidates are re-ranked exactly by merging sorted
column indices. The reference set is never densified.
"""

include "_common.pxi"
include "_constants_sparse_distances.pxi"  # shared with sparse_distances_numba (kernels/_constants.py)

import numpy as np
from cython.parallel cimport parallel, prange
from libc.math cimport fabs, sqrt
from libc.string cimport memset

from .distances_numpy import candidate_count



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


cdef inline double accumulated_term(int metric, double x_value, double q_value) noexcept nogil:
    """t(x, q) of :mod:`sparse_distances_numpy`: what one shared non-zero adds to A_j."""
    if metric == SQEUCLIDEAN:
        return -2.0 * x_value * q_value
    if metric == MANHATTAN:
        return fabs(x_value - q_value) - fabs(x_value) - fabs(q_value)
    return x_value * q_value


cdef inline double row_norm(int metric, const floating[::1] data, intp_t start, intp_t stop) noexcept nogil:
    """Squared norm (squared euclidean), L1 norm (Manhattan) or 1/||row|| (cosine) of a CSR row."""
    cdef double total = 0.0, value
    cdef intp_t position
    if metric == COSINE:
        for position in range(start, stop):
            total = total + <double> data[position] * <double> data[position]
        return 0.0 if total == 0.0 else 1.0 / sqrt(total)
    for position in range(start, stop):
        value = <double> data[position]
        if metric == SQEUCLIDEAN:
            total = total + value * value
        else:
            total = total + fabs(value)
    return total


cdef void _query(int metric, const floating[::1] q_data, const intp_t[::1] q_indices,
                 const intp_t[::1] q_indptr, const floating[::1] x_data, const intp_t[::1] x_indices,
                 const intp_t[::1] x_indptr, const floating[::1] xt_data, const intp_t[::1] xt_indices,
                 const intp_t[::1] xt_indptr, const double[::1] x_norms, intp_t i,
                 intp_t n_candidates, double* accumulated, double* heap_values, intp_t* heap_indices,
                 double* exact, double[:, ::1] out_distances, intp_t[:, ::1] out_indices) noexcept nogil:
    """Neighbours of query row i (``accumulated`` is all zeros on entry and on exit)."""
    cdef intp_t n_reference = x_indptr.shape[0] - 1
    cdef intp_t k = out_distances.shape[1]
    cdef intp_t q_start = q_indptr[i], q_stop = q_indptr[i + 1]
    cdef intp_t a, b, j, c, column
    cdef double q_value, distance, q_norm, q_scale, x_scale
    q_norm = row_norm(metric, q_data, q_start, q_stop)
    # Step 1: the columns of the query's non-zeros, then one scan of the n rows.
    for a in range(q_start, q_stop):
        q_value = <double> q_data[a]
        column = q_indices[a]
        for b in range(xt_indptr[column], xt_indptr[column + 1]):
            accumulated[xt_indices[b]] += accumulated_term(metric, <double> xt_data[b], q_value)
    for c in range(n_candidates):
        heap_values[c] = INFINITY
        heap_indices[c] = n_reference
    for j in range(n_reference):
        if metric == COSINE:
            distance = 1.0 - accumulated[j] * x_norms[j] * q_norm
        else:
            distance = q_norm + x_norms[j] + accumulated[j]
        accumulated[j] = 0.0
        if distance < heap_values[0]:  # indices only grow: ties keep the smaller
            heap_push(heap_values, heap_indices, n_candidates, distance, j)
    # Step 2: exact re-ranking, sorted by (distance, index).
    q_scale = q_norm if metric == COSINE else 1.0
    for c in range(n_candidates):
        j = heap_indices[c]
        x_scale = x_norms[j] if metric == COSINE else 1.0
        exact[c] = exact_distance(metric, &q_data[0] if q_data.shape[0] else NULL,
                                  &q_indices[0] if q_indices.shape[0] else NULL, q_start, q_stop, q_scale,
                                  &x_data[0] if x_data.shape[0] else NULL,
                                  &x_indices[0] if x_indices.shape[0] else NULL,
                                  x_indptr[j], x_indptr[j + 1], x_scale)
    sort_pairs(exact, heap_indices, n_candidates)
    for c in range(k):
        out_distances[i, c] = exact[c]
        out_indices[i, c] = heap_indices[c]


def _sparse_topk(int metric,
                 const floating[::1] q_data, const intp_t[::1] q_indices, const intp_t[::1] q_indptr,     # IN
                 const floating[::1] x_data, const intp_t[::1] x_indices, const intp_t[::1] x_indptr,     # IN
                 const floating[::1] xt_data, const intp_t[::1] xt_indices, const intp_t[::1] xt_indptr,  # IN
                 intp_t n_candidates,                                                                     # IN
                 double[:, ::1] out_distances, intp_t[:, ::1] out_indices,                                 # OUT
                 int n_threads):
    cdef intp_t n_queries = q_indptr.shape[0] - 1
    cdef intp_t n_reference = x_indptr.shape[0] - 1
    cdef intp_t n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    cdef intp_t block, i, j
    cdef double[::1] x_norms = np.zeros(max(n_reference, 1), dtype=np.float64)
    cdef double* accumulated
    cdef double* heap_values
    cdef intp_t* heap_indices
    cdef double* exact
    for j in prange(n_reference, nogil=True, num_threads=n_threads):
        x_norms[j] = row_norm(metric, x_data, x_indptr[j], x_indptr[j + 1])
    with nogil, parallel(num_threads=n_threads):
        # Thread-local buffers: the accumulator (all zeros between queries) and the heap.
        accumulated = <double*> malloc(max(n_reference, 1) * sizeof(double))
        memset(accumulated, 0, max(n_reference, 1) * sizeof(double))
        heap_values = <double*> malloc(n_candidates * sizeof(double))
        heap_indices = <intp_t*> malloc(n_candidates * sizeof(intp_t))
        exact = <double*> malloc(n_candidates * sizeof(double))
        for block in prange(n_blocks, schedule="static"):
            for i in range(block * QUERY_BLOCK, min((block + 1) * QUERY_BLOCK, n_queries)):
                _query(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                       xt_data, xt_indices, xt_indptr, x_norms, i, n_candidates, accumulated,
                       heap_values, heap_indices, exact, out_distances, out_indices)
        free(accumulated)
        free(heap_values)
        free(heap_indices)
        free(exact)


def _run(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, xt_data, xt_indices, xt_indptr,
         out_distances, out_indices, n_threads):
    n_candidates = candidate_count(out_distances.shape[1], x_indptr.shape[0] - 1)
    _sparse_topk(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                 xt_data, xt_indices, xt_indptr, n_candidates, out_distances, out_indices, n_threads)


def sparse_sqeuclidean_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                            xt_data, xt_indices, xt_indptr, out_distances, out_indices, n_threads):
    """k smallest squared euclidean distances between CSR rows (see :mod:`sparse_distances_numpy`)."""
    _run(SQEUCLIDEAN, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
         xt_data, xt_indices, xt_indptr, out_distances, out_indices, n_threads)


def sparse_manhattan_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                          xt_data, xt_indices, xt_indptr, out_distances, out_indices, n_threads):
    """k smallest Manhattan distances between CSR rows (see :mod:`sparse_distances_numpy`)."""
    _run(MANHATTAN, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
         xt_data, xt_indices, xt_indptr, out_distances, out_indices, n_threads)


def sparse_cosine_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                       xt_data, xt_indices, xt_indptr, out_distances, out_indices, n_threads):
    """k smallest cosine distances between CSR rows (see :mod:`sparse_distances_numpy`)."""
    _run(COSINE, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
         xt_data, xt_indices, xt_indptr, out_distances, out_indices, n_threads)
