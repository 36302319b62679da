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
    # Float64 data ranked in float32 (sqeuclidean_topk_ranked, below): benchmarks/
    # test_bench_distances.py::test_ranked_topk*, 100k x 32 float64, 5k queries, k = 10, 2 threads,
    # machine shared (load ~16), medians of 3: cython 7.1 s, numba 8.6 s, numpy 50 s; the float64
    # kernels 13.8 s (cython) and 11.9 s (numba); scikit-learn brute 20.6 s.
    "sqeuclidean_topk_ranked": ("cython", "numba", "numpy"),
}

# Ranking float64 data in float32 (sqeuclidean_topk_ranked): unit roundoff of float32, half its
# smallest subnormal times 16 (the absolute error of gradual underflow, with room), and the largest
# (|q| + max |x|)^2 the float32 ranking may meet (far below float32's 3.4e38).
RANKING_UNIT = float(np.finfo(np.float32).eps) / 2
RANKING_UNDERFLOW = 2.0 ** -146
RANKING_MAX_SCALE = 1e36

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


def ranking_margins(centred_query_norms, reference_max_norm, n_features):
    r"""Per-query margin that proves a float32 ranking of float64 data exact.

    :func:`sqeuclidean_topk_ranked` ranks centred float64 data (queries
    :math:`q`, reference rows :math:`x_j`, centred by the same vector, which
    changes no distance) after rounding them to float32, with the expanded
    form of the module docstring computed in float32 (norms summed in float64,
    then rounded; the products by BLAS in any summation order). With unit
    roundoff :math:`u = 2^{-24}`, :math:`M = \max_j \lVert x_j \rVert` and
    :math:`S = (\lVert q \rVert + M)^2 \ge` every norm, product and distance
    involved, the rounding of the data moves :math:`D_j = \lVert q - x_j
    \rVert^2` by at most :math:`(2u + u^2) S`, the two rounded norms by
    :math:`u S` each, the product :math:`2\, q \cdot x_j` by :math:`\gamma_d S / 2`
    (:math:`\gamma_d = d u / (1 - d u)`, the dot-product bound) and their sum
    by :math:`1.5\, u S`: the ranking value :math:`\tilde D_j` is within
    :math:`(5.6 + 0.51 d) u S` of :math:`D_j`. A point the scan never kept,
    or evicted, has :math:`\tilde D_j \ge r - 2.01 u S`, where :math:`r` is
    the largest ranking value kept at the end (the rounding of the scan's
    threshold and of the stored value). Hence every point outside the kept
    candidates has

    .. math::

        D_j \ge r - (7.7 + 0.51 d)\, u S > r - \text{margin}, \qquad
        \text{margin} = (d + 10)\, u S + (d + 10)(1 + \sqrt{S})\, 2^{-146},

    the last term for gradual underflow (absolute error at most
    :math:`2^{-150}` per rounding). If the k-th smallest exact float64
    distance among the candidates is below :math:`r - \text{margin}`, no
    outside point can enter the k nearest: the answer is exact. The slack
    between :math:`7.7 + 0.51 d` and :math:`d + 10` also covers the float64
    rounding of the centring and of the exact distances (about
    :math:`d\, 2^{-53} S`).

    Parameters
    ----------
    centred_query_norms : ndarray of shape (m,), float64
        :math:`\lVert q \rVert` of the centred float64 queries.
    reference_max_norm : float
        :math:`M`, the largest norm of the centred float64 reference rows.
    n_features : int

    Returns
    -------
    margins : ndarray of shape (m,), float64
        ``inf`` where :math:`S` exceeds ``RANKING_MAX_SCALE`` (float32 could
        overflow): such a query is never certified.
    """
    scale = (np.asarray(centred_query_norms, dtype=np.float64) + reference_max_norm) ** 2
    terms = n_features + 10.0
    margins = terms * RANKING_UNIT * scale + terms * (1.0 + np.sqrt(scale)) * RANKING_UNDERFLOW
    margins[~(scale <= RANKING_MAX_SCALE)] = np.inf
    return margins


def sqeuclidean_topk_ranked(queries, reference, ranking_queries, ranking_reference, margins,
                            out_distances, out_indices, out_certified, n_threads):
    r"""Exact k smallest squared euclidean distances of float64 data, ranked in float32.

    The two steps of :func:`sqeuclidean_topk`, with the ranking (step 1) on
    float32 copies of the data (half the memory traffic, twice the vector
    lanes of the float64 GEMM) and the re-ranking (step 2) on the float64
    data. A query is *certified* when :func:`ranking_margins` proves that no
    point outside its ``candidate_count(k, n)`` candidates can be among its k
    nearest: its output is then exactly what the float64 search gives (the k
    smallest exact float64 distances, ties to the smaller index). The caller
    searches the other queries again in float64.

    Parameters
    ----------
    queries : ndarray of shape (m, d), float64, C-contiguous
    reference : ndarray of shape (n, d), float64, C-contiguous
        The data of the exact re-ranking.
    ranking_queries : ndarray of shape (m, d), float32, C-contiguous
    ranking_reference : ndarray of shape (n, d), float32, C-contiguous
        The same data after subtracting one vector (in float64) and rounding
        to float32.
    margins : ndarray of shape (m,), float64
        :func:`ranking_margins` of the queries.
    out_distances : ndarray of shape (m, k), float64
        Written: the k smallest exact squared distances, ascending (rows of
        certified queries only).
    out_indices : ndarray of shape (m, k), intp
        Written: their reference rows, equal distances by index (certified rows).
    out_certified : ndarray of shape (m,), uint8
        Written: 1 where the row is proven exact, 0 where the caller must
        search again.
    n_threads : int
        Ignored (NumPy runs its own BLAS threads).
    """
    k = out_distances.shape[1]
    n_reference = reference.shape[0]
    n_keep = candidate_count(k, n_reference)
    reference_sq_norms = np.einsum("ij,ij->i", ranking_reference.astype(np.float64),
                                   ranking_reference.astype(np.float64)).astype(np.float32)
    chunk_size = query_chunk(n_reference)
    for start in range(0, queries.shape[0], chunk_size):
        chunk = ranking_queries[start:start + chunk_size]
        chunk64 = chunk.astype(np.float64)
        chunk_sq_norms = np.einsum("ij,ij->i", chunk64, chunk64).astype(np.float32)
        # Step 1 in float32: |q|^2 + (|x|^2 - 2 q.x), a full (chunk x n) matrix.
        partial = reference_sq_norms[None, :] + np.float32(-2.0) * (chunk @ ranking_reference.T)
        approx = np.maximum(chunk_sq_norms[:, None] + partial, np.float32(0.0))
        for row in range(chunk.shape[0]):
            i = start + row
            candidates = np.sort(_smallest_with_index_ties(approx[row], n_keep))
            # Step 2: exact float64 distances of the candidates.
            exact = ((reference[candidates] - queries[i]) ** 2).sum(axis=1)
            order = np.argsort(exact, kind="stable")[:k]
            out_distances[i] = exact[order]
            out_indices[i] = candidates[order]
            # Certificate: every point left out ranks at or above the largest kept value r.
            largest_kept = float(approx[row, candidates].max())
            out_certified[i] = n_keep == n_reference or largest_kept - margins[i] > exact[order[-1]]
