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

This reference builds a (chunk x n) float64 distance matrix per chunk of 256
queries; the Numba and Cython kernels never hold more than a cache-sized block.
"""

import numpy as np

# Fastest first, as measured by benchmarks/test_bench_distances.py
# (100k x 32 float32 reference points, 5k queries, k = 10, 2 cores).
AUTO_BACKEND_ORDER = {
    "sqeuclidean_topk": ("cython", "numba", "numpy"),
    "sqeuclidean_argmin": ("cython", "numba", "numpy"),
}

QUERY_CHUNK = 256
MIN_EXTRA_CANDIDATES = 8


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

    for start in range(0, queries.shape[0], QUERY_CHUNK):
        chunk = queries[start:start + QUERY_CHUNK].astype(np.float64)
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
