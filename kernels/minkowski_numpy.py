r"""Manhattan and Minkowski distances and their k smallest: the readable reference.

For queries :math:`Q` (m x d), reference points :math:`X` (n x d) and
:math:`p > 0`,

.. math::

    R_{ij} = \sum_l \lvert q_{il} - x_{jl} \rvert^p ,
    \qquad D_{ij} = R_{ij}^{1/p} ,

with :math:`p = 1` (Manhattan, ``manhattan_topk``) on its own fast path
without any power, and the limit :math:`p = \infty` (Chebyshev,
``chebyshev_topk``): :math:`R_{ij} = D_{ij} = \max_l \lvert q_{il} - x_{jl} \rvert`. The kernels return the *reduced* distance :math:`R` (the
sum, without the root, as ``sqeuclidean_topk`` returns squared distances);
the caller takes the root. There is no matrix product here: each distance is
a direct sum of ``d`` terms, so there is no cancellation either, only the
rounding of the input dtype. The kernels keep the same two steps as the
euclidean family so that float32 and float64 give the same neighbours:

1. rank with the sum in the input dtype and keep, per query, the
   ``candidate_count(k, n)`` smallest (ties to the smaller index);
2. recompute those candidates in float64 (terms added in feature order) and
   sort them by (distance, index).

This reference builds a (chunk x n) float64 matrix per chunk of queries
(``query_chunk(n)`` rows, about 32 MB); the Numba and Cython kernels never
hold more than their per-query candidate heaps.
"""

import numpy as np

from .distances_numpy import _smallest_with_index_ties, candidate_count, query_chunk

# Fastest first, as measured by benchmarks/test_bench_distances.py::test_other_metric_topk[manhattan]
# (20k x 32 float32 reference points, 2k queries, k = 10, 2 cores, idle machine: cython
# 0.119 s, numba 0.139 s, scikit-learn 0.440 s). minkowski_topk runs the same loops with a
# float64 power per term; it follows the Manhattan order.
AUTO_BACKEND_ORDER = {
    "manhattan_topk": ("cython", "numba", "numpy"),
    "minkowski_topk": ("cython", "numba", "numpy"),
    # Same loops with a max instead of a sum (no power): follows the Manhattan order.
    "chebyshev_topk": ("cython", "numba", "numpy"),
}


def _reduced(diff, p):
    """|diff| ** p, without a power call when p is 1, 2 or inf (then |diff|, combined by max)."""
    if p == 1.0:
        return np.abs(diff)
    if p == 2.0:
        return diff * diff
    if p == np.inf:
        return np.abs(diff)
    return np.abs(diff) ** p


def _combine(total, terms, p):
    """Add the terms to the running reduced distance (the maximum for p = inf), in place."""
    if p == np.inf:
        np.maximum(total, terms, out=total)
    else:
        total += terms


def _minkowski_topk(queries, reference, p, out_distances, out_indices):
    k = out_distances.shape[1]
    n_reference, n_features = reference.shape
    n_keep = candidate_count(k, n_reference)
    reference64 = reference.astype(np.float64)

    chunk_size = query_chunk(n_reference)
    for start in range(0, queries.shape[0], chunk_size):
        chunk = queries[start:start + chunk_size].astype(np.float64)
        # Step 1: reduced distances, one feature at a time, a full (chunk x n) matrix.
        approx = np.zeros((chunk.shape[0], n_reference))
        for l in range(n_features):
            _combine(approx, _reduced(chunk[:, l, None] - reference64[None, :, l], p), p)
        for row in range(chunk.shape[0]):
            candidates = np.sort(_smallest_with_index_ties(approx[row], n_keep))
            # Step 2: exact float64 sums in feature order, sorted by (distance, index).
            exact = np.zeros(candidates.shape[0])
            for l in range(n_features):
                _combine(exact, _reduced(chunk[row, l] - reference64[candidates, l], p), p)
            order = np.argsort(exact, kind="stable")[:k]
            out_distances[start + row] = exact[order]
            out_indices[start + row] = candidates[order]


def manhattan_topk(queries, reference, out_distances, out_indices, n_threads):
    r"""k smallest Manhattan distances :math:`\sum_l |q_{il} - x_{jl}|` from each query.

    Parameters
    ----------
    queries : ndarray of shape (m, d), float32 or float64, C-contiguous
    reference : ndarray of shape (n, d), same dtype, C-contiguous
    out_distances : ndarray of shape (m, k), same dtype
        Written: the k smallest distances of each query, ascending.
    out_indices : ndarray of shape (m, k), intp
        Written: the matching rows of ``reference``; equal distances are
        ordered by index.
    n_threads : int
        Ignored (NumPy is single-threaded here).
    """
    _minkowski_topk(queries, reference, 1.0, out_distances, out_indices)


def minkowski_topk(queries, reference, p, out_distances, out_indices, n_threads):
    r"""k smallest reduced Minkowski distances :math:`\sum_l |q_{il} - x_{jl}|^p`.

    Parameters
    ----------
    queries, reference : as in :func:`manhattan_topk`
    p : float
        The exponent, ``p > 0`` and finite.
    out_distances : ndarray of shape (m, k), same dtype as the inputs
        Written: the k smallest *reduced* distances (no ``1/p`` root), ascending.
    out_indices : ndarray of shape (m, k), intp
        Written: the matching rows; ties ordered by index.
    n_threads : int
        Ignored.
    """
    _minkowski_topk(queries, reference, float(p), out_distances, out_indices)


def chebyshev_topk(queries, reference, out_distances, out_indices, n_threads):
    r"""k smallest Chebyshev distances :math:`\max_l |q_{il} - x_{jl}|` from each query.

    The Minkowski distance for :math:`p = \infty`; same parameters as
    :func:`manhattan_topk`. The maximum of float64 differences is exact, so
    the ranking and the re-ranking agree; the second step only sorts.
    """
    _minkowski_topk(queries, reference, np.inf, out_distances, out_indices)
