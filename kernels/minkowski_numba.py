r"""Manhattan and Minkowski distances and their k smallest: the Numba kernels.

Same two steps as :mod:`minkowski_numpy`: rank with sums in the input dtype
(Manhattan) or in float64 (general ``p``, whose power is computed in float64
anyway; Chebyshev, a maximum of float64 differences), keep ``candidate_count(k, n)`` candidates per query in a max-heap,
then re-rank them exactly in float64. Queries go in blocks of ``QUERY_BLOCK``
rows, one block per thread; each reference row is read once per block while
the block's queries stay in cache. Memory: the heaps, never m x n.
"""

import numba
import numpy as np

from ._constants import FAMILIES
from ._threads import numba_threads
from .distances_numba import _exact_rerank, _heap_push, _reduced
from .distances_numpy import candidate_count

_SHARED = FAMILIES["minkowski"]  # shared with minkowski_cython
QUERY_BLOCK = _SHARED["QUERY_BLOCK"]


# The ranking sum may be reassociated (SIMD); the re-ranking stays exact.
@numba.njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _manhattan_topk(queries, reference, n_candidates, out_distances, out_indices):
    n_queries, n_features = queries.shape
    n_reference = reference.shape[0]
    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        start = block * QUERY_BLOCK
        stop = min(start + QUERY_BLOCK, n_queries)
        n_block = stop - start
        heap_values = np.full((n_block, n_candidates), np.inf, dtype=queries.dtype)
        heap_indices = np.full((n_block, n_candidates), n_reference, dtype=np.intp)
        for j in range(n_reference):
            row = reference[j]
            for i in range(n_block):
                query = queries[start + i]
                total = abs(query[0] - row[0])  # sums in the input dtype
                for l in range(1, n_features):
                    total += abs(query[l] - row[l])
                if total < heap_values[i, 0]:
                    _heap_push(heap_values[i], heap_indices[i], total, j)
        for i in range(n_block):
            _exact_rerank(queries[start + i], reference, 1.0, heap_indices[i],
                          out_distances[start + i], out_indices[start + i])


@numba.njit(parallel=True, cache=True, nogil=True)
def _minkowski_topk(queries, reference, p, n_candidates, out_distances, out_indices):
    n_queries, n_features = queries.shape
    n_reference = reference.shape[0]
    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        start = block * QUERY_BLOCK
        stop = min(start + QUERY_BLOCK, n_queries)
        n_block = stop - start
        heap_values = np.full((n_block, n_candidates), np.inf, dtype=np.float64)
        heap_indices = np.full((n_block, n_candidates), n_reference, dtype=np.intp)
        for j in range(n_reference):
            row = reference[j]
            for i in range(n_block):
                query = queries[start + i]
                total = 0.0
                for l in range(n_features):
                    total += _reduced(np.float64(query[l]) - np.float64(row[l]), p)
                if total < heap_values[i, 0]:
                    _heap_push(heap_values[i], heap_indices[i], total, j)
        for i in range(n_block):
            _exact_rerank(queries[start + i], reference, p, heap_indices[i],
                          out_distances[start + i], out_indices[start + i])


@numba.njit(parallel=True, cache=True, nogil=True)
def _chebyshev_topk(queries, reference, n_candidates, out_distances, out_indices):
    n_queries, n_features = queries.shape
    n_reference = reference.shape[0]
    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        start = block * QUERY_BLOCK
        stop = min(start + QUERY_BLOCK, n_queries)
        n_block = stop - start
        heap_values = np.full((n_block, n_candidates), np.inf, dtype=np.float64)
        heap_indices = np.full((n_block, n_candidates), n_reference, dtype=np.intp)
        for j in range(n_reference):
            row = reference[j]
            for i in range(n_block):
                query = queries[start + i]
                total = 0.0  # the maximum of float64 differences: exact
                for l in range(n_features):
                    total = max(total, abs(np.float64(query[l]) - np.float64(row[l])))
                if total < heap_values[i, 0]:
                    _heap_push(heap_values[i], heap_indices[i], total, j)
        for i in range(n_block):
            _exact_rerank(queries[start + i], reference, np.inf, heap_indices[i],
                          out_distances[start + i], out_indices[start + i])


def manhattan_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest Manhattan distances (see :mod:`minkowski_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with numba_threads(n_threads):
        _manhattan_topk(queries, reference, n_candidates, out_distances, out_indices)


def minkowski_topk(queries, reference, p, out_distances, out_indices, n_threads):
    """k smallest reduced Minkowski distances (see :mod:`minkowski_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with numba_threads(n_threads):
        _minkowski_topk(queries, reference, float(p), n_candidates, out_distances, out_indices)


def chebyshev_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest Chebyshev distances (see :mod:`minkowski_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with numba_threads(n_threads):
        _chebyshev_topk(queries, reference, n_candidates, out_distances, out_indices)
