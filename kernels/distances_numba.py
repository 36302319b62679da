r"""Squared euclidean distances and their k smallest: the Numba kernels.

Same two steps as :mod:`distances_numpy` (expanded-form ranking, then exact
float64 re-ranking of ``candidate_count(k, n)`` candidates), but blocked:
queries go in blocks of ``QUERY_BLOCK`` rows, one block per thread; each block
meets the reference points ``REFERENCE_BLOCK`` rows at a time through one GEMM
into a per-thread buffer, and each distance is pushed into a per-query max-heap
of candidates. Memory is bounded by the block sizes, never m x n.

``cosine_topk`` shares the blocking and the heap; it ranks with
``1 - dot * inverse_norm(q) * inverse_norm(x)`` and re-ranks with the exact
float64 form of :mod:`distances_numpy`.
"""

import numba
import numpy as np

from ._constants import FAMILIES
from ._threads import blas_single_threaded, numba_threads
from .distances_numpy import candidate_count

_SHARED = FAMILIES["distances"]  # shared with distances_cython
QUERY_BLOCK = _SHARED["QUERY_BLOCK"]
REFERENCE_BLOCK = _SHARED["REFERENCE_BLOCK"]


@numba.njit(cache=True, nogil=True)
def _heap_push(heap_values, heap_indices, value, index):
    """Push ``(value, index)`` into a full max-heap of size c if it is smaller than the root.

    The heap is ordered by value, then by index, so among equal values the
    larger index is evicted first: ties go to the smaller index.
    """
    size = heap_values.shape[0]
    if value > heap_values[0] or (value == heap_values[0] and index >= heap_indices[0]):
        return
    # Replace the root and sift down.
    position = 0
    while True:
        left = 2 * position + 1
        right = left + 1
        if left >= size:
            break
        child = left
        if right < size and (heap_values[right] > heap_values[left] or (
                heap_values[right] == heap_values[left] and heap_indices[right] > heap_indices[left])):
            child = right
        if heap_values[child] > value or (heap_values[child] == value and heap_indices[child] > index):
            heap_values[position] = heap_values[child]
            heap_indices[position] = heap_indices[child]
            position = child
        else:
            break
    heap_values[position] = value
    heap_indices[position] = index


@numba.njit(cache=True, nogil=True, inline="always")
def _reduced(diff, p):
    """|diff| ** p in float64, without a power call when p is 1 or 2."""
    if p == 1.0:
        return abs(diff)
    if p == 2.0:
        return diff * diff
    return abs(diff) ** p


@numba.njit(cache=True, nogil=True)
def _exact_rerank(query, reference, p, candidates, out_distances, out_indices):
    """Sort candidates by (exact float64 sum of |q - x|^p, index); write the first k.

    p = 2 gives the squared euclidean distance; :mod:`minkowski_numba` uses
    the same re-ranking for p = 1, general p and p = inf (Chebyshev: the
    maximum of |q - x| instead of the sum).
    """
    candidates = np.sort(candidates)
    exact = np.empty(candidates.shape[0], dtype=np.float64)
    for c in range(candidates.shape[0]):
        row = reference[candidates[c]]
        total = 0.0
        if p == np.inf:
            for l in range(query.shape[0]):
                total = max(total, abs(np.float64(query[l]) - np.float64(row[l])))
        else:
            for l in range(query.shape[0]):
                total += _reduced(np.float64(query[l]) - np.float64(row[l]), p)
        exact[c] = total
    order = np.argsort(exact, kind="mergesort")  # stable: ties keep index order
    for j in range(out_distances.shape[0]):
        out_distances[j] = exact[order[j]]
        out_indices[j] = candidates[order[j]]


@numba.njit(cache=True, nogil=True)
def _rank_sqeuclidean_block(block_queries, reference, reference_sq_norms, n_candidates):
    """Step 1 for one block of queries: the ``n_candidates`` smallest expanded-form values of each.

    Returns per-query max-heaps ``(values, indices)`` of shape (n_block,
    n_candidates), in the input dtype; the root ``values[i, 0]`` is the
    largest value kept, and every point left out ranks at or above it.
    """
    n_block, n_features = block_queries.shape
    n_reference = reference.shape[0]
    dtype = block_queries.dtype
    zero = np.zeros(1, dtype=dtype)[0]
    # Per-thread buffers, allocated once per query block.
    products = np.empty(n_block * REFERENCE_BLOCK, dtype=dtype)
    heap_values = np.full((n_block, n_candidates), np.inf, dtype=dtype)
    heap_indices = np.full((n_block, n_candidates), n_reference, dtype=np.intp)
    query_sq_norms = np.empty(n_block, dtype=dtype)
    for i in range(n_block):
        total = 0.0
        for l in range(n_features):
            total += np.float64(block_queries[i, l]) * np.float64(block_queries[i, l])
        query_sq_norms[i] = total

    for ref_start in range(0, n_reference, REFERENCE_BLOCK):
        ref_stop = min(ref_start + REFERENCE_BLOCK, n_reference)
        n_ref_block = ref_stop - ref_start
        block_products = products[:n_block * n_ref_block].reshape((n_block, n_ref_block))
        np.dot(block_queries, reference[ref_start:ref_stop].T, block_products)
        block_norms = reference_sq_norms[ref_start:ref_stop]
        for i in range(n_block):
            # Branch-light: compare |x|^2 - 2 q.x with (root - |q|^2) and
            # push only the rare winners. Indices only grow during the scan,
            # so a value enters the heap only if strictly below the root
            # (ties keep the smaller index).
            query_sq_norm = query_sq_norms[i]
            row = block_products[i]
            threshold = heap_values[i, 0] - query_sq_norm
            for j in range(n_ref_block):
                partial = block_norms[j] - (row[j] + row[j])  # stays in the input dtype
                if partial < threshold:
                    distance = query_sq_norm + partial
                    if distance < zero:
                        distance = zero
                    _heap_push(heap_values[i], heap_indices[i], distance, ref_start + j)
                    threshold = heap_values[i, 0] - query_sq_norm
    return heap_values, heap_indices


@numba.njit(parallel=True, cache=True, nogil=True)
def _sqeuclidean_topk(queries, reference, n_candidates, out_distances, out_indices):
    n_queries = queries.shape[0]
    reference_sq_norms = np.empty(reference.shape[0], dtype=queries.dtype)
    for j in numba.prange(reference.shape[0]):
        total = 0.0
        for l in range(reference.shape[1]):
            total += np.float64(reference[j, l]) * np.float64(reference[j, l])
        reference_sq_norms[j] = total
    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        start = block * QUERY_BLOCK
        stop = min(start + QUERY_BLOCK, n_queries)
        block_queries = queries[start:stop]
        _, heap_indices = _rank_sqeuclidean_block(block_queries, reference, reference_sq_norms, n_candidates)
        for i in range(stop - start):
            _exact_rerank(block_queries[i], reference, 2.0, heap_indices[i],
                          out_distances[start + i], out_indices[start + i])


@numba.njit(parallel=True, cache=True, nogil=True)
def _sqeuclidean_topk_ranked(queries, reference, ranking_queries, ranking_reference, margins, n_candidates,
                             out_distances, out_indices, out_certified):
    n_queries = queries.shape[0]
    n_reference = reference.shape[0]
    k = out_distances.shape[1]
    reference_sq_norms = np.empty(n_reference, dtype=ranking_reference.dtype)
    for j in numba.prange(n_reference):
        total = 0.0
        for l in range(ranking_reference.shape[1]):
            total += np.float64(ranking_reference[j, l]) * np.float64(ranking_reference[j, l])
        reference_sq_norms[j] = total
    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        start = block * QUERY_BLOCK
        stop = min(start + QUERY_BLOCK, n_queries)
        heap_values, heap_indices = _rank_sqeuclidean_block(ranking_queries[start:stop], ranking_reference,
                                                            reference_sq_norms, n_candidates)
        for i in range(stop - start):
            _exact_rerank(queries[start + i], reference, 2.0, heap_indices[i],
                          out_distances[start + i], out_indices[start + i])
            # Certificate (distances_numpy.ranking_margins): every point left out ranks at or
            # above the heap's root.
            largest_kept = np.float64(heap_values[i, 0])
            certified = (n_candidates == n_reference
                         or largest_kept - margins[start + i] > out_distances[start + i, k - 1])
            out_certified[start + i] = 1 if certified else 0


@numba.njit(cache=True, nogil=True)
def _inverse_norm(row):
    """1 / ||row|| in float64, 0 for a zero row."""
    total = 0.0
    for l in range(row.shape[0]):
        total += np.float64(row[l]) * np.float64(row[l])
    if total == 0.0:
        return 0.0
    return 1.0 / np.sqrt(total)


@numba.njit(cache=True, nogil=True)
def _exact_cosine_rerank(query, query_inverse_norm, reference, reference_inverse_norms,
                         candidates, out_distances, out_indices):
    """Sort candidates by (exact float64 cosine distance, index); write the first k."""
    candidates = np.sort(candidates)
    exact = np.empty(candidates.shape[0], dtype=np.float64)
    for c in range(candidates.shape[0]):
        row = reference[candidates[c]]
        row_inverse_norm = reference_inverse_norms[candidates[c]]
        if query_inverse_norm == 0.0 or row_inverse_norm == 0.0:
            exact[c] = 1.0
            continue
        total = 0.0
        for l in range(query.shape[0]):
            diff = np.float64(row[l]) * row_inverse_norm - np.float64(query[l]) * query_inverse_norm
            total += diff * diff
        exact[c] = min(0.5 * total, 2.0)
    order = np.argsort(exact, kind="mergesort")  # stable: ties keep index order
    for j in range(out_distances.shape[0]):
        out_distances[j] = exact[order[j]]
        out_indices[j] = candidates[order[j]]


@numba.njit(parallel=True, cache=True, nogil=True)
def _cosine_topk(queries, reference, n_candidates, out_distances, out_indices):
    n_queries = queries.shape[0]
    n_reference = reference.shape[0]
    dtype = queries.dtype
    reference_inverse_norms = np.empty(n_reference, dtype=np.float64)
    for j in numba.prange(n_reference):
        reference_inverse_norms[j] = _inverse_norm(reference[j])
    # The ranking step runs in the input dtype.
    ranking_inverse_norms = reference_inverse_norms.astype(dtype)
    one = np.ones(1, dtype=dtype)[0]  # a literal 1 would promote float32 to float64

    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        start = block * QUERY_BLOCK
        stop = min(start + QUERY_BLOCK, n_queries)
        block_queries = queries[start:stop]
        n_block = stop - start
        products = np.empty(n_block * REFERENCE_BLOCK, dtype=dtype)
        heap_values = np.full((n_block, n_candidates), np.inf, dtype=dtype)
        heap_indices = np.full((n_block, n_candidates), n_reference, dtype=np.intp)
        query_inverse_norms = np.empty(n_block, dtype=np.float64)
        for i in range(n_block):
            query_inverse_norms[i] = _inverse_norm(block_queries[i])
        ranking_query_inverse_norms = query_inverse_norms.astype(dtype)

        for ref_start in range(0, n_reference, REFERENCE_BLOCK):
            ref_stop = min(ref_start + REFERENCE_BLOCK, n_reference)
            n_ref_block = ref_stop - ref_start
            block_products = products[:n_block * n_ref_block].reshape((n_block, n_ref_block))
            np.dot(block_queries, reference[ref_start:ref_stop].T, block_products)
            for i in range(n_block):
                query_scale = ranking_query_inverse_norms[i]
                root = heap_values[i, 0]
                for j in range(n_ref_block):
                    distance = one - block_products[i, j] * (ranking_inverse_norms[ref_start + j] * query_scale)
                    if distance < root:
                        _heap_push(heap_values[i], heap_indices[i], distance, ref_start + j)
                        root = heap_values[i, 0]

        for i in range(n_block):
            _exact_cosine_rerank(block_queries[i], query_inverse_norms[i], reference,
                                 reference_inverse_norms, heap_indices[i],
                                 out_distances[start + i], out_indices[start + i])


def sqeuclidean_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest squared euclidean distances (see :mod:`distances_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with numba_threads(n_threads), blas_single_threaded():
        _sqeuclidean_topk(queries, reference, n_candidates, out_distances, out_indices)


def sqeuclidean_argmin(queries, reference, out_distances, out_indices, n_threads):
    """Nearest reference point of each query (k = 1), 1-D outputs of length m."""
    sqeuclidean_topk(queries, reference, out_distances.reshape(-1, 1),
                     out_indices.reshape(-1, 1), n_threads)


def cosine_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest cosine distances (see :mod:`distances_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with numba_threads(n_threads), blas_single_threaded():
        _cosine_topk(queries, reference, n_candidates, out_distances, out_indices)


def sqeuclidean_topk_ranked(queries, reference, ranking_queries, ranking_reference, margins,
                            out_distances, out_indices, out_certified, n_threads):
    """Float64 top-k ranked in float32, certified per query (see :mod:`distances_numpy`)."""
    n_candidates = candidate_count(out_distances.shape[1], reference.shape[0])
    with numba_threads(n_threads), blas_single_threaded():
        _sqeuclidean_topk_ranked(queries, reference, ranking_queries, ranking_reference, margins,
                                 n_candidates, out_distances, out_indices, out_certified)
