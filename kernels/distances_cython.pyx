# cython: language_level=3
r"""Squared euclidean distances and their k smallest: the Cython kernels.

Same two steps and blocking as :mod:`distances_numba` (expanded-form ranking
through a per-thread GEMM buffer and a per-query max-heap, then exact float64
re-ranking of ``candidate_count(k, n)`` candidates), with OpenMP threads over
query blocks and BLAS from ``scipy.linalg.cython_blas``.
"""

include "_common.pxi"

import numpy as np
from cython.parallel cimport parallel, prange
from scipy.linalg.cython_blas cimport dgemm, sgemm

from ._threads import blas_single_threaded
from .distances_numpy import candidate_count

DEF QUERY_BLOCK = 256
DEF REFERENCE_BLOCK = 1024


cdef inline void gemm_abt(int n_rows_a, int n_rows_b, int n_features,
                          const floating* a, const floating* b, floating* out) noexcept nogil:
    """out (n_rows_a x n_rows_b, row-major) = a (row-major) times b (row-major) transposed.

    In BLAS's column-major terms this is out^T = b^T' a, i.e. gemm("T", "N").
    """
    cdef char trans_a = b"T"
    cdef char trans_b = b"N"
    cdef floating one = 1.0
    cdef floating zero = 0.0
    if floating is float:
        sgemm(&trans_a, &trans_b, &n_rows_b, &n_rows_a, &n_features, &one,
              <float*> b, &n_features, <float*> a, &n_features, &zero, out, &n_rows_b)
    else:
        dgemm(&trans_a, &trans_b, &n_rows_b, &n_rows_a, &n_features, &one,
              <double*> b, &n_features, <double*> a, &n_features, &zero, out, &n_rows_b)


cdef void _topk_block(const floating[:, ::1] queries, const floating[:, ::1] reference,
                      const floating[::1] reference_sq_norms, intp_t start, intp_t stop,
                      intp_t n_candidates, floating* products, floating* heap_values,
                      intp_t* heap_indices, double* exact, intp_t* sorted_candidates,
                      floating[:, ::1] out_distances, intp_t[:, ::1] out_indices) noexcept nogil:
    cdef intp_t n_features = queries.shape[1]
    cdef intp_t n_reference = reference.shape[0]
    cdef intp_t k = out_distances.shape[1]
    cdef intp_t n_block = stop - start
    cdef intp_t i, j, l, c, ref_start, n_ref_block
    cdef double total, diff
    cdef floating query_sq_norm, distance

    for c in range(n_block * n_candidates):
        heap_values[c] = INFINITY
        heap_indices[c] = n_reference

    ref_start = 0
    while ref_start < n_reference:
        n_ref_block = min(REFERENCE_BLOCK, n_reference - ref_start)
        gemm_abt(<int> n_block, <int> n_ref_block, <int> n_features,
                 &queries[start, 0], &reference[ref_start, 0], products)
        for i in range(n_block):
            total = 0.0
            for l in range(n_features):
                total = total + <double> queries[start + i, l] * <double> queries[start + i, l]
            query_sq_norm = <floating> total
            for j in range(n_ref_block):
                distance = query_sq_norm - 2 * products[i * n_ref_block + j] + reference_sq_norms[ref_start + j]
                if distance < 0:
                    distance = 0
                heap_push(heap_values + i * n_candidates, heap_indices + i * n_candidates,
                          n_candidates, distance, ref_start + j)
        ref_start = ref_start + n_ref_block

    # Exact float64 re-ranking of each query's candidates.
    for i in range(n_block):
        for c in range(n_candidates):
            sorted_candidates[c] = heap_indices[i * n_candidates + c]
            total = 0.0
            for l in range(n_features):
                diff = <double> queries[start + i, l] - <double> reference[sorted_candidates[c], l]
                total = total + diff * diff
            exact[c] = total
        sort_pairs(exact, sorted_candidates, n_candidates)
        for j in range(k):
            out_distances[start + i, j] = <floating> exact[j]
            out_indices[start + i, j] = sorted_candidates[j]


def _sqeuclidean_topk(const floating[:, ::1] queries, const floating[:, ::1] reference,  # IN
                      intp_t n_candidates,                                                # IN
                      floating[:, ::1] out_distances, intp_t[:, ::1] out_indices,         # OUT
                      int n_threads):
    cdef intp_t n_queries = queries.shape[0]
    cdef intp_t n_reference = reference.shape[0]
    cdef intp_t n_features = queries.shape[1]
    cdef intp_t n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    cdef intp_t block, j, l, start, stop
    cdef double total
    cdef floating[::1] reference_sq_norms = np.empty(n_reference, dtype=np.asarray(queries).dtype)
    cdef floating* products
    cdef floating* heap_values
    cdef intp_t* heap_indices
    cdef double* exact
    cdef intp_t* sorted_candidates

    with nogil:
        for j in prange(n_reference, num_threads=n_threads, schedule="static"):
            total = 0.0
            for l in range(n_features):
                total = total + <double> reference[j, l] * <double> reference[j, l]
            reference_sq_norms[j] = <floating> total

        with parallel(num_threads=n_threads):
            # Thread-local buffers, allocated once per thread.
            products = <floating*> malloc(QUERY_BLOCK * REFERENCE_BLOCK * sizeof(floating))
            heap_values = <floating*> malloc(QUERY_BLOCK * n_candidates * sizeof(floating))
            heap_indices = <intp_t*> malloc(QUERY_BLOCK * n_candidates * sizeof(intp_t))
            exact = <double*> malloc(n_candidates * sizeof(double))
            sorted_candidates = <intp_t*> malloc(n_candidates * sizeof(intp_t))
            for block in prange(n_blocks, schedule="static"):
                start = block * QUERY_BLOCK
                stop = min(start + QUERY_BLOCK, n_queries)
                _topk_block(queries, reference, reference_sq_norms, start, stop, n_candidates,
                            products, heap_values, heap_indices, exact, sorted_candidates,
                            out_distances, out_indices)
            free(products)
            free(heap_values)
            free(heap_indices)
            free(exact)
            free(sorted_candidates)


def sqeuclidean_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest squared euclidean distances (see :mod:`distances_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with blas_single_threaded():
        _sqeuclidean_topk(queries, reference, n_candidates, out_distances, out_indices, n_threads)


def sqeuclidean_argmin(queries, reference, out_distances, out_indices, n_threads):
    """Nearest reference point of each query (k = 1), 1-D outputs of length m."""
    sqeuclidean_topk(queries, reference, out_distances.reshape(-1, 1),
                     out_indices.reshape(-1, 1), n_threads)
