# cython: language_level=3
r"""Squared euclidean distances and their k smallest: the Cython kernels.

Same two steps and blocking as :mod:`distances_numba` (expanded-form ranking
through a per-thread GEMM buffer and a per-query max-heap, then exact float64
re-ranking of ``candidate_count(k, n)`` candidates), with OpenMP threads over
query blocks and BLAS from ``scipy.linalg.cython_blas``. ``cosine_topk`` runs
the same block loop with the cosine ranking and re-ranking of
:mod:`distances_numpy`.
"""

include "_common.pxi"
include "_constants_distances.pxi"  # shared with distances_numba (kernels/_constants.py)

import numpy as np
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from scipy.linalg.cython_blas cimport dgemm, sgemm

from ._threads import blas_single_threaded
from .distances_numpy import candidate_count



cdef inline void gemm_abt(int n_rows_a, int n_rows_b, int n_features, floating alpha,
                          const floating* a, const floating* b, floating* out) noexcept nogil:
    """out (n_rows_a x n_rows_b, row-major) = alpha * a (row-major) times b (row-major) transposed.

    In BLAS's column-major terms this is out^T = b^T' a, i.e. gemm("T", "N").
    """
    cdef char trans_a = b"T"
    cdef char trans_b = b"N"
    cdef floating zero = 0.0
    if floating is float:
        sgemm(&trans_a, &trans_b, &n_rows_b, &n_rows_a, &n_features, &alpha,
              <float*> b, &n_features, <float*> a, &n_features, &zero, out, &n_rows_b)
    else:
        dgemm(&trans_a, &trans_b, &n_rows_b, &n_rows_a, &n_features, &alpha,
              <double*> b, &n_features, <double*> a, &n_features, &zero, out, &n_rows_b)


DEF SCAN_CHUNK = 64


cdef inline intp_t scan_sqeuclidean(const floating* minus_two_products, const floating* reference_sq_norms,
                                    floating query_sq_norm, intp_t ref_start, intp_t n_ref_block,
                                    floating* heap_values, intp_t* heap_indices,
                                    intp_t n_candidates) noexcept nogil:
    """Push the block's expanded-form distances of one query into its heap.

    Branch-light: ``reference_sq_norm - 2 dot`` is compared with
    ``root - query_sq_norm``; a chunk of ``SCAN_CHUNK`` values is first tested
    as a whole (its comparisons counted in a loop the compiler turns into SIMD)
    and only a chunk holding a winner is walked one value at a time. Indices
    only grow during the scan, so a strictly smaller value is the only way in
    (ties keep the smaller index).
    """
    cdef intp_t j, j0, chunk_stop
    cdef int any_below
    cdef floating partial, distance
    cdef floating threshold = heap_values[0] - query_sq_norm
    j0 = 0
    while j0 < n_ref_block:
        chunk_stop = min(j0 + SCAN_CHUNK, n_ref_block)
        any_below = 0
        if chunk_stop - j0 == SCAN_CHUNK:
            for j in range(SCAN_CHUNK):
                any_below += reference_sq_norms[j0 + j] + minus_two_products[j0 + j] < threshold
        else:
            any_below = 1
        if any_below:
            for j in range(j0, chunk_stop):
                partial = reference_sq_norms[j] + minus_two_products[j]
                if partial < threshold:
                    distance = query_sq_norm + partial
                    if distance < 0:
                        distance = 0
                    heap_push(heap_values, heap_indices, n_candidates, distance, ref_start + j)
                    threshold = heap_values[0] - query_sq_norm
        j0 = chunk_stop
    return 0


cdef inline intp_t scan_cosine(const floating* products, const floating* reference_inverse_norms,
                               floating query_inverse_norm, intp_t ref_start, intp_t n_ref_block,
                               floating* heap_values, intp_t* heap_indices,
                               intp_t n_candidates) noexcept nogil:
    """Push ``1 - dot / (|q| |x|)`` of one query and one reference block into its heap."""
    cdef intp_t j
    cdef floating distance
    for j in range(n_ref_block):
        distance = 1 - products[j] * (reference_inverse_norms[j] * query_inverse_norm)
        if distance < heap_values[0]:
            heap_push(heap_values, heap_indices, n_candidates, distance, ref_start + j)
    return 0


cdef inline double inverse_norm(const floating* row, intp_t n_features) noexcept nogil:
    """1 / ||row|| in float64, 0 for a zero row."""
    cdef double total = 0.0
    cdef intp_t l
    for l in range(n_features):
        total = total + <double> row[l] * <double> row[l]
    if total == 0.0:
        return 0.0
    return 1.0 / sqrt(total)


cdef void _rank_block(const floating[:, ::1] queries, const floating[:, ::1] reference,
                      const floating[::1] reference_ranking, bint cosine, intp_t start, intp_t stop,
                      intp_t n_candidates, floating* products, floating* heap_values,
                      intp_t* heap_indices) noexcept nogil:
    """Step 1 for the queries start:stop: each query's ``n_candidates`` smallest ranking values.

    Fills per-query max-heaps (``heap_values + i * n_candidates``; the root
    is the largest value kept, and every point left out ranks at or above
    it). ``reference_ranking`` holds the squared norms (euclidean) or the
    inverse norms (cosine) of the reference rows in the input dtype.
    """
    cdef intp_t n_features = queries.shape[1]
    cdef intp_t n_reference = reference.shape[0]
    cdef intp_t n_block = stop - start
    cdef intp_t i, l, c, ref_start, n_ref_block
    cdef double total
    cdef floating query_term
    cdef floating alpha = 1.0 if cosine else -2.0

    for c in range(n_block * n_candidates):
        heap_values[c] = INFINITY
        heap_indices[c] = n_reference

    ref_start = 0
    while ref_start < n_reference:
        n_ref_block = min(REFERENCE_BLOCK, n_reference - ref_start)
        gemm_abt(<int> n_block, <int> n_ref_block, <int> n_features, alpha,
                 &queries[start, 0], &reference[ref_start, 0], products)
        for i in range(n_block):
            if cosine:
                query_term = <floating> inverse_norm(&queries[start + i, 0], n_features)
                scan_cosine(products + i * n_ref_block, &reference_ranking[ref_start], query_term,
                            ref_start, n_ref_block, heap_values + i * n_candidates,
                            heap_indices + i * n_candidates, n_candidates)
            else:
                total = 0.0
                for l in range(n_features):
                    total = total + <double> queries[start + i, l] * <double> queries[start + i, l]
                query_term = <floating> total
                scan_sqeuclidean(products + i * n_ref_block, &reference_ranking[ref_start], query_term,
                                 ref_start, n_ref_block, heap_values + i * n_candidates,
                                 heap_indices + i * n_candidates, n_candidates)
        ref_start = ref_start + n_ref_block


cdef inline double exact_sqeuclidean(const floating* a, const floating* b, intp_t n_features) noexcept nogil:
    """sum_l (a_l - b_l)^2 in float64."""
    cdef double total = 0.0, diff
    cdef intp_t l
    for l in range(n_features):
        diff = <double> a[l] - <double> b[l]
        total = total + diff * diff
    return total


cdef void _topk_block(const floating[:, ::1] queries, const floating[:, ::1] reference,
                      const floating[::1] reference_ranking, const double[::1] reference_inverse_norms,
                      bint cosine, intp_t start, intp_t stop,
                      intp_t n_candidates, floating* products, floating* heap_values,
                      intp_t* heap_indices, double* exact, intp_t* sorted_candidates,
                      floating[:, ::1] out_distances, intp_t[:, ::1] out_indices) noexcept nogil:
    """Top-k of the queries start:stop, squared euclidean (cosine=False) or cosine.

    ``reference_inverse_norms``: the float64 inverse norms (cosine only).
    """
    cdef intp_t n_features = queries.shape[1]
    cdef intp_t k = out_distances.shape[1]
    cdef intp_t n_block = stop - start
    cdef intp_t i, j, l, c
    cdef double total, diff, query_scale, row_scale

    _rank_block(queries, reference, reference_ranking, cosine, start, stop, n_candidates, products,
                heap_values, heap_indices)

    # Exact float64 re-ranking of each query's candidates.
    for i in range(n_block):
        if cosine:
            query_scale = inverse_norm(&queries[start + i, 0], n_features)
        for c in range(n_candidates):
            sorted_candidates[c] = heap_indices[i * n_candidates + c]
            total = 0.0
            if cosine:
                row_scale = reference_inverse_norms[sorted_candidates[c]]
                if query_scale == 0.0 or row_scale == 0.0:
                    exact[c] = 1.0
                    continue
                for l in range(n_features):
                    diff = (<double> reference[sorted_candidates[c], l] * row_scale
                            - <double> queries[start + i, l] * query_scale)
                    total = total + diff * diff
                exact[c] = min(0.5 * total, 2.0)
            else:
                exact[c] = exact_sqeuclidean(&queries[start + i, 0], &reference[sorted_candidates[c], 0],
                                             n_features)
        sort_pairs(exact, sorted_candidates, n_candidates)
        for j in range(k):
            out_distances[start + i, j] = <floating> exact[j]
            out_indices[start + i, j] = sorted_candidates[j]


def _topk(const floating[:, ::1] queries, const floating[:, ::1] reference,  # IN
          intp_t n_candidates, bint cosine,                                   # IN
          floating[:, ::1] out_distances, intp_t[:, ::1] out_indices,         # OUT
          int n_threads):
    cdef intp_t n_queries = queries.shape[0]
    cdef intp_t n_reference = reference.shape[0]
    cdef intp_t n_features = queries.shape[1]
    cdef intp_t n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    cdef intp_t block, j, l, start, stop
    cdef double total
    cdef floating[::1] reference_ranking = np.empty(n_reference, dtype=np.asarray(queries).dtype)
    cdef double[::1] reference_inverse_norms = np.empty(n_reference if cosine else 0, dtype=np.float64)
    cdef floating* products
    cdef floating* heap_values
    cdef intp_t* heap_indices
    cdef double* exact
    cdef intp_t* sorted_candidates

    with nogil:
        for j in prange(n_reference, num_threads=n_threads, schedule="static"):
            if cosine:
                reference_inverse_norms[j] = inverse_norm(&reference[j, 0], n_features)
                reference_ranking[j] = <floating> reference_inverse_norms[j]
            else:
                total = 0.0
                for l in range(n_features):
                    total = total + <double> reference[j, l] * <double> reference[j, l]
                reference_ranking[j] = <floating> total

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
                _topk_block(queries, reference, reference_ranking, reference_inverse_norms, cosine,
                            start, stop, n_candidates, products, heap_values, heap_indices,
                            exact, sorted_candidates, out_distances, out_indices)
            free(products)
            free(heap_values)
            free(heap_indices)
            free(exact)
            free(sorted_candidates)


def sqeuclidean_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest squared euclidean distances (see :mod:`distances_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with blas_single_threaded():
        _topk(queries, reference, n_candidates, False, out_distances, out_indices, n_threads)


def sqeuclidean_argmin(queries, reference, out_distances, out_indices, n_threads):
    """Nearest reference point of each query (k = 1), 1-D outputs of length m."""
    sqeuclidean_topk(queries, reference, out_distances.reshape(-1, 1),
                     out_indices.reshape(-1, 1), n_threads)


def cosine_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest cosine distances (see :mod:`distances_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with blas_single_threaded():
        _topk(queries, reference, n_candidates, True, out_distances, out_indices, n_threads)


cdef void _ranked_block(const float[:, ::1] ranking_queries, const float[:, ::1] ranking_reference,
                        const float[::1] reference_sq_norms, const double[:, ::1] queries,
                        const double[:, ::1] reference, const double[::1] margins,
                        intp_t start, intp_t stop, intp_t n_candidates, float* products,
                        float* heap_values, intp_t* heap_indices, double* exact,
                        intp_t* sorted_candidates, double[:, ::1] out_distances,
                        intp_t[:, ::1] out_indices, unsigned char[::1] out_certified) noexcept nogil:
    """Float32 ranking, float64 re-ranking and the certificate of the queries start:stop."""
    cdef intp_t n_features = queries.shape[1]
    cdef intp_t n_reference = reference.shape[0]
    cdef intp_t k = out_distances.shape[1]
    cdef intp_t i, j, c
    cdef double largest_kept

    _rank_block(ranking_queries, ranking_reference, reference_sq_norms, False, start, stop, n_candidates,
                products, heap_values, heap_indices)
    for i in range(stop - start):
        largest_kept = heap_values[i * n_candidates]  # the root: every point left out ranks at or above it
        for c in range(n_candidates):
            sorted_candidates[c] = heap_indices[i * n_candidates + c]
            exact[c] = exact_sqeuclidean(&queries[start + i, 0], &reference[sorted_candidates[c], 0],
                                         n_features)
        sort_pairs(exact, sorted_candidates, n_candidates)
        for j in range(k):
            out_distances[start + i, j] = exact[j]
            out_indices[start + i, j] = sorted_candidates[j]
        # Certificate: distances_numpy.ranking_margins.
        out_certified[start + i] = (n_candidates == n_reference
                                    or largest_kept - margins[start + i] > exact[k - 1])


def _topk_ranked(const double[:, ::1] queries, const double[:, ::1] reference,              # IN
                 const float[:, ::1] ranking_queries, const float[:, ::1] ranking_reference,  # IN
                 const double[::1] margins, intp_t n_candidates,                              # IN
                 double[:, ::1] out_distances, intp_t[:, ::1] out_indices,                    # OUT
                 unsigned char[::1] out_certified,                                            # OUT
                 int n_threads):
    cdef intp_t n_queries = queries.shape[0]
    cdef intp_t n_reference = reference.shape[0]
    cdef intp_t n_features = queries.shape[1]
    cdef intp_t n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    cdef intp_t block, j, l, start, stop
    cdef double total
    cdef float[::1] reference_sq_norms = np.empty(n_reference, dtype=np.float32)
    cdef float* products
    cdef float* heap_values
    cdef intp_t* heap_indices
    cdef double* exact
    cdef intp_t* sorted_candidates

    with nogil:
        for j in prange(n_reference, num_threads=n_threads, schedule="static"):
            total = 0.0
            for l in range(n_features):
                total = total + <double> ranking_reference[j, l] * <double> ranking_reference[j, l]
            reference_sq_norms[j] = <float> total

        with parallel(num_threads=n_threads):
            # Thread-local buffers, allocated once per thread.
            products = <float*> malloc(QUERY_BLOCK * REFERENCE_BLOCK * sizeof(float))
            heap_values = <float*> malloc(QUERY_BLOCK * n_candidates * sizeof(float))
            heap_indices = <intp_t*> malloc(QUERY_BLOCK * n_candidates * sizeof(intp_t))
            exact = <double*> malloc(n_candidates * sizeof(double))
            sorted_candidates = <intp_t*> malloc(n_candidates * sizeof(intp_t))
            for block in prange(n_blocks, schedule="static"):
                start = block * QUERY_BLOCK
                stop = min(start + QUERY_BLOCK, n_queries)
                _ranked_block(ranking_queries, ranking_reference, reference_sq_norms, queries, reference,
                              margins, start, stop, n_candidates, products, heap_values, heap_indices,
                              exact, sorted_candidates, out_distances, out_indices, out_certified)
            free(products)
            free(heap_values)
            free(heap_indices)
            free(exact)
            free(sorted_candidates)


def sqeuclidean_topk_ranked(queries, reference, ranking_queries, ranking_reference, margins,
                            out_distances, out_indices, out_certified, n_threads):
    """Float64 top-k ranked in float32, certified per query (see :mod:`distances_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with blas_single_threaded():
        _topk_ranked(queries, reference, ranking_queries, ranking_reference, margins, n_candidates,
                     out_distances, out_indices, out_certified, n_threads)
