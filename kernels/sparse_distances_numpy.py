r"""k nearest neighbours of sparse (CSR) rows: the readable reference.

Queries :math:`Q` (m x d) and reference points :math:`X` (n x d) are sparse
matrices given by their arrays: the queries and the reference rows in CSR
(``data``, ``indices``, ``indptr``; column indices sorted and unique within
a row, intp), and the reference set once more in CSC (``xt_*``: the CSR
arrays of :math:`X^T`), its inverted index. Nothing here turns the reference
set into a dense matrix. For a query :math:`q` with non-zeros :math:`S_q`,
the CSC columns of :math:`S_q` reach exactly the reference entries that
meet a non-zero of :math:`q`, and accumulate per reference row

.. math::

    A_j = \sum_{l \in S_q \cap S_j} t(x_{jl}, q_l), \qquad
    t = -2 x q \;\text{(squared euclidean)}, \quad
    t = \lvert x - q \rvert - \lvert x \rvert - \lvert q \rvert \;\text{(Manhattan)}, \quad
    t = x q \;\text{(cosine)},

so that :math:`\lVert q - x_j \rVert^2 = \lVert q \rVert^2 + \lVert x_j \rVert^2 + A_j`,
:math:`\lVert q - x_j \rVert_1 = \lVert q \rVert_1 + \lVert x_j \rVert_1 + A_j`
and the cosine distance is :math:`1 - A_j / (\lVert q \rVert \lVert x_j \rVert)`
(1 when either row is zero, as in scikit-learn). A query costs the length of
its columns plus one pass over n, instead of nnz(X).

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

This reference takes one query at a time with a float64 accumulator of
length n; the Numba and Cython kernels keep one accumulator per thread and a
heap per query.
"""

import numpy as np

from .distances_numpy import _smallest_with_index_ties, candidate_count

# Fastest first, as measured by benchmarks/test_bench_distances.py::test_sparse_topk
# (--bench-size medium: CSR 20k x 2000 float64, 1% non-zeros, 500 queries, k = 10, 2 threads,
# shared 2-core machine, medians of 3; scikit-learn NearestNeighbors(brute) on the same CSR):
#   squared euclidean: numba 81 ms, cython 118 ms, numpy 593 ms, scikit-learn (euclidean) 420 ms
#   cosine:            numba 100 ms, cython 132 ms, numpy 578 ms, scikit-learn 202 ms
#   Manhattan:         cython 104 ms, numba 110 ms, numpy 603 ms, scikit-learn 5.62 s
AUTO_BACKEND_ORDER = {
    "sparse_sqeuclidean_topk": ("numba", "cython", "numpy"),
    "sparse_manhattan_topk": ("cython", "numba", "numpy"),
    "sparse_cosine_topk": ("numba", "cython", "numpy"),
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


def _row_norms(metric, data, indptr):
    """Per CSR row: the squared norm (squared euclidean), the L1 norm (Manhattan) or 1/||row|| (cosine)."""
    data = data.astype(np.float64)
    if metric == SQEUCLIDEAN:
        return _row_sums(data * data, indptr)
    if metric == MANHATTAN:
        return _row_sums(np.abs(data), indptr)
    return _inverse_norms(data, indptr)


def _sparse_topk(metric, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                 xt_data, xt_indices, xt_indptr, out_distances, out_indices):
    k = out_distances.shape[1]
    n_reference = x_indptr.shape[0] - 1
    n_features = xt_indptr.shape[0] - 1
    n_keep = candidate_count(k, n_reference)
    x_data64 = x_data.astype(np.float64)
    xt_data64 = xt_data.astype(np.float64)
    q_data64 = q_data.astype(np.float64)
    x_norms = _row_norms(metric, x_data, x_indptr)
    q_norms = _row_norms(metric, q_data, q_indptr)
    for row in range(q_indptr.shape[0] - 1):
        # Step 1: accumulate A_j over the columns of the query's non-zeros.
        accumulated = np.zeros(n_reference)
        for position in range(q_indptr[row], q_indptr[row + 1]):
            value = q_data64[position]
            column = slice(xt_indptr[q_indices[position]], xt_indptr[q_indices[position] + 1])
            x_values = xt_data64[column]
            if metric == SQEUCLIDEAN:
                terms = -2.0 * x_values * value
            elif metric == MANHATTAN:
                terms = np.abs(x_values - value) - np.abs(x_values) - abs(value)
            else:
                terms = x_values * value
            accumulated[xt_indices[column]] += terms  # rows are unique within a column
        if metric == COSINE:
            approx = 1.0 - accumulated * x_norms * q_norms[row]
        else:
            approx = q_norms[row] + x_norms + accumulated
        candidates = np.sort(_smallest_with_index_ties(approx, n_keep))
        # Step 2: exact distances of the candidates, sorted by (distance, index).
        query = _dense_row(q_data64, q_indices, q_indptr, row, n_features)
        rows = np.array([_dense_row(x_data64, x_indices, x_indptr, j, n_features) for j in candidates])
        exact = _exact(metric, query, q_norms[row] if metric == COSINE else None,
                       rows, x_norms[candidates] if metric == COSINE else None)
        order = np.argsort(exact, kind="stable")[:k]
        out_distances[row] = exact[order]
        out_indices[row] = candidates[order]


def sparse_sqeuclidean_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                            xt_data, xt_indices, xt_indptr, out_distances, out_indices, n_threads):
    """k smallest squared euclidean distances between CSR queries and CSR reference rows.

    Parameters
    ----------
    q_data, q_indices, q_indptr : ndarray
        The queries' CSR arrays: values (float32 or float64), column indices
        (intp, sorted and unique within a row), row pointers (intp, m + 1).
    x_data, x_indices, x_indptr : ndarray
        The reference rows' CSR arrays, same dtypes (n + 1 row pointers).
    xt_data, xt_indices, xt_indptr : ndarray
        The same reference set in CSC (the CSR arrays of its transpose:
        d + 1 column pointers, row indices sorted within a column).
    out_distances : ndarray of shape (m, k), float64
        Written: the k smallest squared distances of each query, ascending.
    out_indices : ndarray of shape (m, k), intp
        Written: the matching reference rows; equal distances ordered by index.
    n_threads : int
        Ignored (one query at a time).
    """
    _sparse_topk(SQEUCLIDEAN, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                 xt_data, xt_indices, xt_indptr, out_distances, out_indices)


def sparse_manhattan_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                          xt_data, xt_indices, xt_indptr, out_distances, out_indices, n_threads):
    """k smallest Manhattan distances between CSR rows (parameters of :func:`sparse_sqeuclidean_topk`)."""
    _sparse_topk(MANHATTAN, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                 xt_data, xt_indices, xt_indptr, out_distances, out_indices)


def sparse_cosine_topk(q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                       xt_data, xt_indices, xt_indptr, out_distances, out_indices, n_threads):
    """k smallest cosine distances between CSR rows (parameters of :func:`sparse_sqeuclidean_topk`).

    A zero row has distance 1 to everything; distances are clipped to [0, 2].
    """
    _sparse_topk(COSINE, q_data, q_indices, q_indptr, x_data, x_indices, x_indptr,
                 xt_data, xt_indices, xt_indptr, out_distances, out_indices)
