r"""k nearest neighbours of sparse (CSR) rows: the Numba kernels.

Same two steps as :mod:`sparse_distances_numpy`: for each query, the CSC
columns of its non-zeros add their terms into a float64 accumulator of
length n (one per thread, zeroed again while it is scanned), one pass over
the n reference rows pushes the ranking values into the query's max-heap of
``candidate_count(k, n)`` candidates, and the candidates are re-ranked
exactly by merging the two rows' sorted column indices. Queries go in
blocks of ``QUERY_BLOCK``, one block per thread; the reference set is never
densified. Memory: one n-vector and the heap per thread.
"""

import numba
import numpy as np

from ._constants import FAMILIES
from ._threads import numba_threads
from .distances_numba import _heap_push
from .distances_numpy import candidate_count

_SHARED = FAMILIES["sparse_distances"]  # shared with sparse_distances_cython
QUERY_BLOCK = _SHARED["QUERY_BLOCK"]
SQEUCLIDEAN = _SHARED["SQEUCLIDEAN"]  # metric codes
MANHATTAN = _SHARED["MANHATTAN"]
COSINE = _SHARED["COSINE"]


@numba.njit(cache=True, nogil=True)
def _inverse_norm(data, start, stop):
    """1 / ||row|| in float64 over the row's non-zeros (0 for a zero row)."""
    total = 0.0
    for position in range(start, stop):
        total += np.float64(data[position]) * np.float64(data[position])
    if total == 0.0:
        return 0.0
    return 1.0 / np.sqrt(total)


@numba.njit(cache=True, nogil=True, inline="always")
def _term(metric, a, b):
    """One feature's term of the exact distance (a, b already scaled for cosine)."""
    diff = a - b
    if metric == MANHATTAN:
        return abs(diff)
    return diff * diff


@numba.njit(cache=True, nogil=True)
def _exact_distance(metric, q_data, q_indices, q_start, q_stop, q_scale,
                    x_data, x_indices, x_start, x_stop, x_scale):
    """Exact float64 distance of two CSR rows: a merge of their sorted indices, feature order."""
    if metric == COSINE and (q_scale == 0.0 or x_scale == 0.0):
        return 1.0
    total = 0.0
    a = q_start
    b = x_start
    while a < q_stop or b < x_stop:
        if b >= x_stop or (a < q_stop and q_indices[a] < x_indices[b]):
            total += _term(metric, np.float64(q_data[a]) * q_scale, 0.0)
            a += 1
        elif a >= q_stop or x_indices[b] < q_indices[a]:
            total += _term(metric, 0.0, np.float64(x_data[b]) * x_scale)
            b += 1
        else:
            total += _term(metric, np.float64(q_data[a]) * q_scale, np.float64(x_data[b]) * x_scale)
            a += 1
            b += 1
    if metric == COSINE:
        return min(0.5 * total, 2.0)
    return total


@numba.njit(cache=True, nogil=True, inline="always")
def _accumulated_term(metric, x_value, q_value):
    """t(x, q) of the module docstring: what one shared non-zero adds to A_j."""
    if metric == SQEUCLIDEAN:
        return -2.0 * x_value * q_value
    if metric == MANHATTAN:
        return abs(x_value - q_value) - abs(x_value) - abs(q_value)
    return x_value * q_value


@numba.njit(cache=True, nogil=True)
def _row_norm(metric, data, start, stop):
    """Squared norm (squared euclidean), L1 norm (Manhattan) or 1/||row|| (cosine) of a CSR row."""
    if metric == COSINE:
        return _inverse_norm(data, start, stop)
    total = 0.0
    for position in range(start, stop):
        value = np.float64(data[position])
        total += value * value if metric == SQEUCLIDEAN else abs(value)
    return total


@numba.njit(parallel=True, cache=True, nogil=True)
def _sparse_topk(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                 xt_data, xt_indices, xt_indptr, n_candidates, out_distances, out_indices):
    n_queries = q_indptr.shape[0] - 1
    n_reference = x_indptr.shape[0] - 1
    k = out_distances.shape[1]
    x_norms = np.empty(n_reference)
    for j in numba.prange(n_reference):
        x_norms[j] = _row_norm(metric, x_data, x_indptr[j], x_indptr[j + 1])
    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        accumulated = np.zeros(n_reference)  # per thread; every entry is zeroed again by the scan
        heap_values = np.empty(n_candidates)
        heap_indices = np.empty(n_candidates, dtype=np.intp)
        exact = np.empty(n_candidates)
        for i in range(block * QUERY_BLOCK, min((block + 1) * QUERY_BLOCK, n_queries)):
            q_start, q_stop = q_indptr[i], q_indptr[i + 1]
            q_norm = _row_norm(metric, q_data, q_start, q_stop)
            # Step 1: the columns of the query's non-zeros, then one scan of the n rows.
            for a in range(q_start, q_stop):
                q_value = np.float64(q_data[a])
                column = q_indices[a]
                for b in range(xt_indptr[column], xt_indptr[column + 1]):
                    accumulated[xt_indices[b]] += _accumulated_term(metric, np.float64(xt_data[b]), q_value)
            heap_values[:] = np.inf
            heap_indices[:] = n_reference
            for j in range(n_reference):
                if metric == COSINE:
                    distance = 1.0 - accumulated[j] * x_norms[j] * q_norm
                else:
                    distance = q_norm + x_norms[j] + accumulated[j]
                accumulated[j] = 0.0
                if distance < heap_values[0]:  # indices only grow: ties keep the smaller
                    _heap_push(heap_values, heap_indices, distance, j)
            # Step 2: exact re-ranking, sorted by (distance, index).
            candidates = np.sort(heap_indices)
            for c in range(n_candidates):
                j = candidates[c]
                q_scale = q_norm if metric == COSINE else 1.0
                x_scale = x_norms[j] if metric == COSINE else 1.0
                exact[c] = _exact_distance(metric, q_data, q_indices, q_start, q_stop, q_scale,
                                           x_data, x_indices, x_indptr[j], x_indptr[j + 1], x_scale)
            order = np.argsort(exact, kind="mergesort")  # stable: ties keep index order
            for c in range(k):
                out_distances[i, c] = exact[order[c]]
                out_indices[i, c] = candidates[order[c]]


def _run(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, xt_data, xt_indices, xt_indptr,
         out_distances, out_indices, n_threads):
    n_candidates = candidate_count(out_distances.shape[1], x_indptr.shape[0] - 1)
    with numba_threads(n_threads):
        _sparse_topk(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                     xt_data, xt_indices, xt_indptr, n_candidates, out_distances, out_indices)


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
