r"""k nearest neighbours of sparse (CSR) rows: the readable reference.

Queries :math:`Q` (m x d) and reference points :math:`X` (n x d) are CSR
matrices given by their three arrays (``data``, ``indices``, ``indptr``; the
column indices of each row sorted and unique, intp). Nothing here turns the
reference set into a dense matrix: each query is scattered into a dense
vector :math:`b` of length d (zero off its non-zeros), and each reference
row :math:`x_j` only visits its own non-zeros :math:`S_j`:

.. math::

    \lVert q - x_j \rVert^2 = \lVert q \rVert^2
        + \sum_{l \in S_j} \big( (x_{jl} - b_l)^2 - b_l^2 \big), \qquad
    \lVert q - x_j \rVert_1 = \lVert q \rVert_1
        + \sum_{l \in S_j} \big( \lvert x_{jl} - b_l \rvert - \lvert b_l \rvert \big),

and the cosine distance :math:`1 - \sum_{l \in S_j} x_{jl} b_l \,/\,
(\lVert q \rVert \lVert x_j \rVert)` (1 when either row is zero, as in
scikit-learn). This costs nnz(X) per query instead of n d.

Every backend works in the two steps of :mod:`distances_numpy`:

1. rank with the forms above in float64 and keep, per query, the
   ``candidate_count(k, n)`` smallest (ties to the smaller index);
2. recompute the candidates exactly, in float64, over the union of the two
   rows' non-zeros in feature order (the dense sum without its zero terms,
   so sparse and dense inputs give the same numbers), and sort them by
   (distance, index).

Unlike the dense kernels, ``out_distances`` is always float64: the
re-ranked distances are float64 whatever the input dtype. Squared euclidean
and Manhattan kernels return the reduced distance (no root), cosine the
distance :math:`\tfrac12 \lVert q/\lVert q\rVert - x/\lVert x\rVert \rVert^2`.

This reference takes one query at a time and builds float64 arrays of
nnz(X) terms per query; the Numba and Cython kernels keep one dense
d-vector per thread and a heap per query.
"""

import numpy as np

from .distances_numpy import _smallest_with_index_ties, candidate_count

# Fastest first, as measured by benchmarks/test_bench_distances.py::test_sparse_topk
# (CSR 20k x 2000 float64, 1% non-zeros, 500 queries, k = 10, 2 cores, shared machine;
# see that file's docstring for the numbers).
AUTO_BACKEND_ORDER = {
    "sparse_sqeuclidean_topk": ("cython", "numba", "numpy"),
    "sparse_manhattan_topk": ("cython", "numba", "numpy"),
    "sparse_cosine_topk": ("cython", "numba", "numpy"),
}

SQEUCLIDEAN, MANHATTAN, COSINE = 0, 1, 2


def _dense_row(data, indices, indptr, row, n_features):
    dense = np.zeros(n_features)
    span = slice(indptr[row], indptr[row + 1])
    dense[indices[span]] = data[span]
    return dense


def _row_sums(terms, indptr):
    """Sum of ``terms`` over each CSR row (empty rows give 0), added in index order."""
    n_rows = indptr.shape[0] - 1
    rows = np.repeat(np.arange(n_rows), np.diff(indptr))
    return np.bincount(rows, weights=terms, minlength=n_rows)


def _inverse_norms(data, indptr):
    """1 / ||row|| in float64 per CSR row, 0 for a zero row."""
    sq_norms = _row_sums(data.astype(np.float64) ** 2, indptr)
    inverse = np.zeros_like(sq_norms)
    np.divide(1.0, np.sqrt(sq_norms), out=inverse, where=sq_norms > 0)
    return inverse


def _exact(metric, query, query_inverse_norm, rows, rows_inverse_norms):
    """Exact float64 distances of one dense query to dense candidate ``rows`` (feature order)."""
    if metric == COSINE:
        diff = rows * rows_inverse_norms[:, None] - query * query_inverse_norm
        terms = diff * diff
    else:
        diff = rows - query
        terms = diff * diff if metric == SQEUCLIDEAN else np.abs(diff)
    # Sequential sums in feature order, as the compiled kernels (zero terms change nothing).
    exact = np.cumsum(terms, axis=1)[:, -1] if rows.shape[1] else np.zeros(rows.shape[0])
    if metric == COSINE:
        exact = np.minimum(0.5 * exact, 2.0)
        exact[(rows_inverse_norms == 0) | (query_inverse_norm == 0)] = 1.0
    return exact


def _sparse_topk(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                 out_distances, out_indices):
    k = out_distances.shape[1]
    n_reference = x_indptr.shape[0] - 1
    n_keep = candidate_count(k, n_reference)
    x_data64 = x_data.astype(np.float64)
    q_data64 = q_data.astype(np.float64)
    x_inverse_norms = _inverse_norms(x_data, x_indptr) if metric == COSINE else None
    q_inverse_norms = _inverse_norms(q_data, q_indptr) if metric == COSINE else None
    for row in range(q_indptr.shape[0] - 1):
        query = _dense_row(q_data64, q_indices, q_indptr, row, n_features)
        at_x = query[x_indices]  # b_l for every non-zero of X
        # Step 1: the scatter forms of the module docstring.
        if metric == SQEUCLIDEAN:
            approx = query @ query + _row_sums((x_data64 - at_x) ** 2 - at_x ** 2, x_indptr)
        elif metric == MANHATTAN:
            approx = np.abs(query).sum() + _row_sums(np.abs(x_data64 - at_x) - np.abs(at_x), x_indptr)
        else:
            approx = 1.0 - _row_sums(x_data64 * at_x, x_indptr) * x_inverse_norms * q_inverse_norms[row]
        candidates = np.sort(_smallest_with_index_ties(approx, n_keep))
        # Step 2: exact distances of the candidates, sorted by (distance, index).
        rows = np.array([_dense_row(x_data64, x_indices, x_indptr, j, n_features) for j in candidates])
        exact = _exact(metric, query, None if q_inverse_norms is None else q_inverse_norms[row],
                       rows, None if x_inverse_norms is None else x_inverse_norms[candidates])
        order = np.argsort(exact, kind="stable")[:k]
        out_distances[row] = exact[order]
        out_indices[row] = candidates[order]


def sparse_sqeuclidean_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                            out_distances, out_indices, n_threads):
    """k smallest squared euclidean distances between CSR queries and CSR reference rows.

    Parameters
    ----------
    q_data, q_indices, q_indptr : ndarray
        The queries' CSR arrays: values (float32 or float64), column indices
        (intp, sorted and unique within a row), row pointers (intp, m + 1).
    x_data, x_indices, x_indptr : ndarray
        The reference rows' CSR arrays, same dtypes (n + 1 row pointers).
    n_features : int
        Number of columns d.
    out_distances : ndarray of shape (m, k), float64
        Written: the k smallest squared distances of each query, ascending.
    out_indices : ndarray of shape (m, k), intp
        Written: the matching reference rows; equal distances ordered by index.
    n_threads : int
        Ignored (one query at a time).
    """
    _sparse_topk(SQEUCLIDEAN, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                 out_distances, out_indices)


def sparse_manhattan_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                          out_distances, out_indices, n_threads):
    """k smallest Manhattan distances between CSR rows (parameters of :func:`sparse_sqeuclidean_topk`)."""
    _sparse_topk(MANHATTAN, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                 out_distances, out_indices)


def sparse_cosine_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                       out_distances, out_indices, n_threads):
    """k smallest cosine distances between CSR rows (parameters of :func:`sparse_sqeuclidean_topk`).

    A zero row has distance 1 to everything; distances are clipped to [0, 2].
    """
    _sparse_topk(COSINE, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr, n_features,
                 out_distances, out_indices)
