r"""k nearest neighbours of sparse (CSR) rows: the Numba kernels.

Same two steps as :mod:`sparse_distances_numpy`: each query is scattered into
a dense float64 vector (one per thread, reset after the query), every
reference row is scored over its own non-zeros only and pushed into the
query's max-heap of ``candidate_count(k, n)`` candidates, and the candidates
are re-ranked exactly by merging the two rows' sorted column indices.
Queries go in blocks of ``QUERY_BLOCK``, one block per thread; the
reference set is never densified. Memory: one d-vector and the heaps per
thread.
"""

import numba
import numpy as np

from ._threads import numba_threads
from .distances_numba import _heap_push
from .distances_numpy import candidate_count

QUERY_BLOCK = 16
SQEUCLIDEAN, MANHATTAN, COSINE = 0, 1, 2


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


@numba.njit(parallel=True, cache=True, nogil=True)
def _sparse_topk(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                 n_candidates, out_distances, out_indices):
    n_queries = q_indptr.shape[0] - 1
    n_reference = x_indptr.shape[0] - 1
    k = out_distances.shape[1]
    x_inverse_norms = np.zeros(n_reference if metric == COSINE else 0)
    for j in numba.prange(x_inverse_norms.shape[0]):
        x_inverse_norms[j] = _inverse_norm(x_data, x_indptr[j], x_indptr[j + 1])
    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        dense = np.zeros(n_features)  # per thread: the current query, scattered
        heap_values = np.empty(n_candidates)
        heap_indices = np.empty(n_candidates, dtype=np.intp)
        exact = np.empty(n_candidates)
        for i in range(block * QUERY_BLOCK, min((block + 1) * QUERY_BLOCK, n_queries)):
            q_start, q_stop = q_indptr[i], q_indptr[i + 1]
            base = 0.0
            for a in range(q_start, q_stop):
                value = np.float64(q_data[a])
                dense[q_indices[a]] = value
                if metric == SQEUCLIDEAN:
                    base += value * value
                elif metric == MANHATTAN:
                    base += abs(value)
            q_scale = _inverse_norm(q_data, q_start, q_stop) if metric == COSINE else 1.0
            heap_values[:] = np.inf
            heap_indices[:] = n_reference
            # Step 1: rank every reference row over its own non-zeros.
            for j in range(n_reference):
                total = 0.0
                for b in range(x_indptr[j], x_indptr[j + 1]):
                    value = np.float64(x_data[b])
                    at_query = dense[x_indices[b]]
                    if metric == SQEUCLIDEAN:
                        total += (value - at_query) * (value - at_query) - at_query * at_query
                    elif metric == MANHATTAN:
                        total += abs(value - at_query) - abs(at_query)
                    else:
                        total += value * at_query
                if metric == COSINE:
                    distance = 1.0 - total * x_inverse_norms[j] * q_scale
                else:
                    distance = base + total
                if distance < heap_values[0]:  # indices only grow: ties keep the smaller
                    _heap_push(heap_values, heap_indices, distance, j)
            for a in range(q_start, q_stop):
                dense[q_indices[a]] = 0.0
            # Step 2: exact re-ranking, sorted by (distance, index).
            candidates = np.sort(heap_indices)
            for c in range(n_candidates):
                j = candidates[c]
                x_scale = x_inverse_norms[j] if metric == COSINE else 1.0
                exact[c] = _exact_distance(metric, q_data, q_indices, q_start, q_stop, q_scale,
                                           x_data, x_indices, x_indptr[j], x_indptr[j + 1], x_scale)
            order = np.argsort(exact, kind="mergesort")  # stable: ties keep index order
            for c in range(k):
                out_distances[i, c] = exact[order[c]]
                out_indices[i, c] = candidates[order[c]]


def _run(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
         out_distances, out_indices, n_threads):
    n_candidates = candidate_count(out_distances.shape[1], x_indptr.shape[0] - 1)
    with numba_threads(n_threads):
        _sparse_topk(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, int(n_features),
                     n_candidates, out_distances, out_indices)


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
