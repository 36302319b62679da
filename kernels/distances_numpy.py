r"""Squared euclidean distances and their k smallest: the readable reference.

For queries :math:`Q` (m x d) and reference points :math:`X` (n x d),

.. math::

    D_{ij} = \lVert q_i - x_j \rVert^2
           = \lVert q_i \rVert^2 - 2\, q_i \cdot x_j + \lVert x_j \rVert^2 .

The expanded form on the right turns the work into one matrix product (BLAS
GEMM), but it cancels badly when two points are close compared with their
norms. Every backend therefore works in two steps:

1. rank with the expanded form and keep, per query, the
   ``candidate_count(k, n)`` smallest (k plus a margin, ties to the smaller
   index);
2. recompute those candidates exactly, :math:`\sum_l (q_{il} - x_{jl})^2` in
   float64, and sort them by (exact distance, index).

The result is exact whenever the true k nearest are among the candidates,
that is unless more than ``candidate_count(k, n) - k`` points lie within the
rounding error of the expanded form (about ``1e-7 * (|q|^2 + |x|^2)`` in
float32, ``1e-16 * ...`` in float64) of the k-th distance.

This reference builds a (chunk x n) float64 distance matrix per chunk of at
most 256 queries (fewer when n is large, so a chunk stays near 32 MB); the
Numba and Cython kernels never hold more than a cache-sized block.

Cosine distances (:func:`cosine_topk`) follow the same two steps with

.. math::

    D_{ij} = 1 - \frac{q_i \cdot x_j}{\lVert q_i \rVert \lVert x_j \rVert}
    \quad\text{(ranking: one GEMM and two inverse norms)}, \qquad
    D_{ij} = \tfrac12 \Big\lVert \frac{q_i}{\lVert q_i \rVert}
                               - \frac{x_j}{\lVert x_j \rVert} \Big\rVert^2
    \quad\text{(exact re-ranking in float64)},

equal for unit vectors; the second form keeps the relative precision of small
distances, which ``1 - cos`` loses. A zero row has distance 1 to everything
(its cosine similarity is taken as 0, as in scikit-learn), and distances are
clipped to [0, 2].
"""

import numpy as np

# Fastest first, as measured by benchmarks/test_bench_distances.py
# (100k x 32 float32 reference points, 5k queries, k = 10, 2 cores, idle machine:
# cython 0.259 s, numba 0.346 s, numpy 4.50 s, scikit-learn 0.809 s).
AUTO_BACKEND_ORDER = {
    "sqeuclidean_topk": ("cython", "numba", "numpy"),
    "sqeuclidean_argmin": ("cython", "numba", "numpy"),
    # Same GEMM + heap machinery as sqeuclidean_topk; measured with
    # benchmarks/test_bench_distances.py::test_other_metric_topk[cosine] (100k x 32 float32,
    # 5k queries, k = 10: cython 1.7 s, numba 1.9 s, numpy 21 s, sklearn 19 s).
    "cosine_topk": ("cython", "numba", "numpy"),
}

QUERY_CHUNK = 256
MAX_CHUNK_ELEMENTS = 1 << 22  # float64 entries of one chunk's distance matrix (32 MB)
MIN_EXTRA_CANDIDATES = 8


def query_chunk(n_reference):
    """Queries per chunk of the reference implementations (bounded memory)."""
    return max(1, min(QUERY_CHUNK, MAX_CHUNK_ELEMENTS // max(n_reference, 1)))


def candidate_count(k, n_reference):
    """How many expanded-form candidates each backend re-ranks exactly."""
    return min(n_reference, k + max(k, MIN_EXTRA_CANDIDATES))


def _smallest_with_index_ties(row, n_keep):
    """Indices of the ``n_keep`` smallest values of ``row``, ties to smaller index."""
    threshold = np.partition(row, n_keep - 1)[n_keep - 1]
    below = np.flatnonzero(row < threshold)
    at_threshold = np.flatnonzero(row == threshold)[: n_keep - below.size]
    return np.concatenate([below, at_threshold])


def sqeuclidean_topk(queries, reference, out_distances, out_indices, n_threads):
    """k smallest squared euclidean distances from each query to ``reference``.

    Parameters
    ----------
    queries : ndarray of shape (m, d), float32 or float64, C-contiguous
    reference : ndarray of shape (n, d), same dtype, C-contiguous
    out_distances : ndarray of shape (m, k), same dtype
        Written: the k smallest squared distances of each query, ascending.
    out_indices : ndarray of shape (m, k), intp
        Written: the matching rows of ``reference``; equal distances are
        ordered by index.
    n_threads : int
        Ignored (NumPy runs its own BLAS threads).
    """
    k = out_distances.shape[1]
    n_reference = reference.shape[0]
    n_keep = candidate_count(k, n_reference)
    reference64 = reference.astype(np.float64)
    reference_sq_norms = np.einsum("ij,ij->i", reference64, reference64)

    chunk_size = query_chunk(n_reference)
    for start in range(0, queries.shape[0], chunk_size):
        chunk = queries[start:start + chunk_size].astype(np.float64)
        chunk_sq_norms = np.einsum("ij,ij->i", chunk, chunk)
        # Step 1: the expanded form, a full (chunk x n) matrix.
        approx = chunk_sq_norms[:, None] - 2.0 * (chunk @ reference64.T) + reference_sq_norms[None, :]
        np.maximum(approx, 0.0, out=approx)
        for row in range(chunk.shape[0]):
            candidates = np.sort(_smallest_with_index_ties(approx[row], n_keep))
            # Step 2: exact distances of the candidates, sorted by (distance, index).
            exact = ((reference64[candidates] - chunk[row]) ** 2).sum(axis=1)
            order = np.argsort(exact, kind="stable")[:k]
            out_distances[start + row] = exact[order]
            out_indices[start + row] = candidates[order]


def sqeuclidean_argmin(queries, reference, out_distances, out_indices, n_threads):
    """Nearest reference point of each query (k = 1), 1-D outputs of length m."""
    sqeuclidean_topk(queries, reference, out_distances.reshape(-1, 1),
                     out_indices.reshape(-1, 1), n_threads)


def _inverse_norms(rows):
    """1 / ||row|| in float64, and 0 for zero rows (their similarity is 0)."""
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    inverse = np.zeros_like(norms)
    np.divide(1.0, norms, out=inverse, where=norms > 0)
    return inverse


def exact_cosine(query, query_inverse_norm, rows, rows_inverse_norms):
    """Exact float64 cosine distances of one query to ``rows`` (the re-ranking step)."""
    distances = 0.5 * ((rows * rows_inverse_norms[:, None] - query * query_inverse_norm) ** 2).sum(axis=1)
    distances[(rows_inverse_norms == 0) | (query_inverse_norm == 0)] = 1.0
    return np.minimum(distances, 2.0)


def cosine_topk(queries, reference, out_distances, out_indices, n_threads):
    r"""k smallest cosine distances from each query to ``reference``.

    Same parameters as :func:`sqeuclidean_topk`; ``out_distances`` receives
    :math:`1 - \cos(q_i, x_j)` (see the module docstring), ascending, ties
    ordered by index.
    """
    k = out_distances.shape[1]
    n_reference = reference.shape[0]
    n_keep = candidate_count(k, n_reference)
    reference64 = reference.astype(np.float64)
    reference_inverse_norms = _inverse_norms(reference64)

    chunk_size = query_chunk(n_reference)
    for start in range(0, queries.shape[0], chunk_size):
        chunk = queries[start:start + chunk_size].astype(np.float64)
        chunk_inverse_norms = _inverse_norms(chunk)
        # Step 1: one minus the cosine similarity, a full (chunk x n) matrix.
        approx = 1.0 - (chunk @ reference64.T) * chunk_inverse_norms[:, None] * reference_inverse_norms[None, :]
        np.clip(approx, 0.0, 2.0, out=approx)
        for row in range(chunk.shape[0]):
            candidates = np.sort(_smallest_with_index_ties(approx[row], n_keep))
            # Step 2: exact distances of the candidates, sorted by (distance, index).
            exact = exact_cosine(chunk[row], chunk_inverse_norms[row], reference64[candidates],
                                 reference_inverse_norms[candidates])
            order = np.argsort(exact, kind="stable")[:k]
            out_distances[start + row] = exact[order]
            out_indices[start + row] = candidates[order]
