r"""K-means iterations on CSR data (Lloyd and Elkan): the readable reference.

A CSR matrix is passed as its three arrays: ``data`` (nnz values, float32 or
float64), ``indices`` (nnz column numbers, intp) and ``indptr`` (n + 1 row
starts, intp); row :math:`i` holds the values ``data[indptr[i]:indptr[i+1]]``
in the columns ``indices[indptr[i]:indptr[i+1]]``. No kernel ever builds the
dense (n x d) matrix.

The arithmetic is scikit-learn's (``_k_means_lloyd.pyx`` and
``_k_means_elkan.pyx``, sparse variants), in the input dtype and in the stored
order of each row's values, so that the labels agree bit for bit on near-ties:

- Lloyd ranks with :math:`d_{ij} = \lVert c_j \rVert^2 - 2\, p_{ij}`, where
  :math:`p_{ij} = \sum_{k} c_{j, \mathrm{col}_k}\, v_k` is accumulated over
  the row's stored values in order (a sparse dot product, never a GEMM);
  first minimum (ties to the smaller index).
- Elkan and the distances of the empty-cluster rule use
  :math:`\lVert x_i - c_j \rVert^2 = \lVert c_j \rVert^2 + \sum_k \big((v_k -
  c_{j,\mathrm{col}_k})^2 - c_{j,\mathrm{col}_k}^2\big)`, accumulated in the
  same order and clipped at 0 (scikit-learn's ``_euclidean_sparse_dense``).

The optimised kernels compute :math:`p_{i\cdot}` for all centres at once: for
each stored value :math:`v_k` they add :math:`v_k` times row
:math:`\mathrm{col}_k` of the transposed centres (``centers_t``, d x k) to a
k-vector. Each :math:`p_{ij}` still receives its terms in the row's order, so
the result is the same to the bit, and the inner loop runs along contiguous
memory over the centres.

Sums :math:`S_j = \sum_{\ell_i=j} w_i x_i` and weights :math:`W_j` are
accumulated in float64, row after row, after the labels (a single pass over
the stored values: cheap next to the k dot products per value, and the same
numbers whatever the number of threads). The inertia is
:math:`\sum_i w_i \lVert x_i - c_{\ell_i} \rVert^2` with the squared distances
above, added in float64 over blocks of ``BLOCK_ROWS`` rows, in block order.

This reference builds (n x k) matrices (it may); the compiled kernels hold one
k-vector per thread.
"""

import numpy as np

from .kmeans_numpy import BLOCK_ROWS, elkan_reassign

# Fastest first, measured on CSR 50,000 x 10,000 at 1% density, 20 clusters, 20
# iterations (2 threads, machine shared with other jobs, medians of 3 interleaved
# rounds): lloyd float64 numba 2.61 s, cython 3.07 s (scikit-learn 5.96 s); float32
# numba 2.59 s, cython 2.48 s (4.34 s); elkan float64 numba 2.74 s, cython 2.51 s
# (15.9 s); float32 numba 2.58 s, cython 2.30 s (7.69 s). Within the noise of a
# shared machine but for Elkan; Cython first (no compilation on first use).
AUTO_BACKEND_ORDER = {
    "kmeans_sparse_lloyd_iter": ("cython", "numba", "numpy"),
    "kmeans_sparse_elkan_init": ("cython", "numba", "numpy"),
    "kmeans_sparse_elkan_iter": ("cython", "numba", "numpy"),
    "kmeans_sparse_sq_distances": ("cython", "numba", "numpy"),
}


def _positions(indptr):
    """For each stored value: its row, and its position within the row."""
    lengths = np.diff(indptr)
    rows = np.repeat(np.arange(lengths.shape[0]), lengths)
    position = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)
    return rows, position


def sparse_products(data, indices, indptr, centers):
    r""":math:`p_{ij} = \sum_k c_{j,\mathrm{col}_k} v_k` (n x k, input dtype), each row's terms in stored order.

    One vectorised step per position within a row: step ``t`` adds the
    ``t``-th stored value of every row that has one, so every sum runs in the
    row's order, as scikit-learn's loop does.
    """
    n_samples = indptr.shape[0] - 1
    products = np.zeros((n_samples, centers.shape[0]), dtype=data.dtype)
    rows, position = _positions(indptr)
    for t in range(int(position.max(initial=-1)) + 1):
        at = position == t
        products[rows[at]] += centers[:, indices[at]].T * data[at][:, None]
    return products


def sparse_sq_distances(data, indices, indptr, centers, centers_sq_norms, labels=None):
    r"""scikit-learn's ``_euclidean_sparse_dense`` squared: to every centre (n x k), or to ``labels`` (n,).

    :math:`\lVert c_j \rVert^2 + \sum_k ((v_k - c_{jk})^2 - c_{jk}^2)`, in the input
    dtype, terms in stored order, clipped at 0.
    """
    n_samples = indptr.shape[0] - 1
    rows, position = _positions(indptr)
    if labels is None:
        result = np.zeros((n_samples, centers.shape[0]), dtype=data.dtype)
    else:
        result = np.zeros(n_samples, dtype=data.dtype)
    for t in range(int(position.max(initial=-1)) + 1):
        at = np.flatnonzero(position == t)
        r = rows[at]
        if labels is None:
            c = centers[:, indices[at]].T                  # (m x k)
            v = data[at][:, None]
        else:
            c = centers[labels[r], indices[at]]            # (m,)
            v = data[at]
        diff = v - c
        result[r] += diff * diff - c * c
    result += centers_sq_norms[None, :] if labels is None else centers_sq_norms[labels]
    np.maximum(result, data.dtype.type(0), out=result)
    return result


def _accumulate(data, indices, indptr, sample_weight, labels, out_sums, out_weights):
    """S_j and W_j in float64, row after row."""
    out_sums[:] = 0.0
    out_weights[:] = 0.0
    rows, _ = _positions(indptr)
    weights = sample_weight.astype(np.float64)
    np.add.at(out_weights, labels, weights)
    np.add.at(out_sums, (labels[rows], indices), data.astype(np.float64) * weights[rows])


def _block_inertia(sq_distances, sample_weight):
    """sum_i w_i d_i in float64, block after block of BLOCK_ROWS rows."""
    per_row = sq_distances.astype(np.float64) * sample_weight.astype(np.float64)
    return float(sum(per_row[s:s + BLOCK_ROWS].sum() for s in range(0, per_row.shape[0], BLOCK_ROWS)))


def kmeans_sparse_lloyd_iter(data, indices, indptr, sample_weight, centers, centers_t,
                             centers_sq_norms, with_inertia, labels, out_sums, out_weights,
                             out_inertia, out_n_changed, n_threads):
    r"""One Lloyd pass on CSR data: labels, float64 sums and weights, inertia.

    Parameters
    ----------
    data : ndarray of shape (nnz,), float32 or float64
    indices : ndarray of shape (nnz,), intp
    indptr : ndarray of shape (n + 1,), intp
    sample_weight : ndarray of shape (n,), dtype of data
    centers : ndarray of shape (k, d), dtype of data, C-contiguous
    centers_t : ndarray of shape (d, k), dtype of data, C-contiguous
        ``centers.T`` (the optimised kernels read a row of it per stored value).
    centers_sq_norms : ndarray of shape (k,), dtype of data
        ``np.einsum("ij,ij->i", centers, centers)`` (scikit-learn's row_norms).
    with_inertia : bool
        Whether to compute the inertia (else ``out_inertia`` is 0).
    labels : ndarray of shape (n,), intp
        Read (previous labels, -1 where none), then written: nearest centre.
    out_sums : ndarray of shape (k, d), float64
        Written: :math:`S_j`.
    out_weights : ndarray of shape (k,), float64
        Written: :math:`W_j`.
    out_inertia : ndarray of shape (1,), float64
    out_n_changed : ndarray of shape (1,), intp
        Written: how many labels differ from those on entry.
    n_threads : int
        Ignored.
    """
    products = sparse_products(data, indices, indptr, centers)
    nearest = np.argmin(centers_sq_norms[None, :] - 2 * products, axis=1)  # first minimum
    out_n_changed[0] = np.count_nonzero(nearest != labels)
    labels[:] = nearest
    _accumulate(data, indices, indptr, sample_weight, labels, out_sums, out_weights)
    if with_inertia:
        out_inertia[0] = _block_inertia(
            sparse_sq_distances(data, indices, indptr, centers, centers_sq_norms, labels), sample_weight)
    else:
        out_inertia[0] = 0.0


def kmeans_sparse_sq_distances(data, indices, indptr, centers, centers_sq_norms, labels,
                               out_sq_distances, n_threads):
    r"""Squared distance of each row to the centre of its label (scikit-learn's arithmetic).

    Used for the inertia and for the empty-cluster rule (the farthest rows,
    whose order must be scikit-learn's).

    Parameters
    ----------
    data, indices, indptr, centers, centers_sq_norms : as :func:`kmeans_sparse_lloyd_iter`
    labels : ndarray of shape (n,), intp
    out_sq_distances : ndarray of shape (n,), dtype of data
    n_threads : int
        Ignored.
    """
    out_sq_distances[:] = sparse_sq_distances(data, indices, indptr, centers, centers_sq_norms, labels)


def kmeans_sparse_elkan_init(data, indices, indptr, centers, centers_sq_norms,
                             center_half_distances, out_labels, out_upper, out_lower, n_threads):
    """Initial Elkan assignment and bounds on CSR data (see :func:`kmeans_numpy.kmeans_elkan_init`).

    Parameters
    ----------
    data, indices, indptr, centers, centers_sq_norms : as :func:`kmeans_sparse_lloyd_iter`
    center_half_distances : ndarray of shape (k, k), dtype of data
    out_labels : ndarray of shape (n,), intp
    out_upper : ndarray of shape (n,), dtype of data
    out_lower : ndarray of shape (n, k), dtype of data
        Written where a distance was computed; the caller zeroes it first.
    n_threads : int
        Ignored.
    """
    distances = np.sqrt(sparse_sq_distances(data, indices, indptr, centers, centers_sq_norms))
    n_samples = indptr.shape[0] - 1
    best = np.zeros(n_samples, dtype=np.intp)
    min_dist = distances[:, 0].copy()
    out_lower[:, 0] = min_dist
    for j in range(1, centers.shape[0]):
        computed = min_dist > center_half_distances[best, j]
        out_lower[computed, j] = distances[computed, j]
        closer = computed & (distances[:, j] < min_dist)
        min_dist[closer] = distances[closer, j]
        best[closer] = j
    out_labels[:] = best
    out_upper[:] = min_dist


def kmeans_sparse_elkan_iter(data, indices, indptr, sample_weight, centers, centers_sq_norms,
                             center_half_distances, distance_next_center, center_shift, labels,
                             upper, lower, out_sums, out_weights, n_threads):
    r"""One Elkan pass on CSR data (see :func:`kmeans_numpy.kmeans_elkan_iter` for the bounds).

    Parameters
    ----------
    data, indices, indptr, sample_weight, centers, centers_sq_norms : as :func:`kmeans_sparse_lloyd_iter`
    center_half_distances, distance_next_center, center_shift : as :func:`kmeans_numpy.kmeans_elkan_iter`
    labels, upper, lower : read and written, as :func:`kmeans_numpy.kmeans_elkan_iter`
    out_sums, out_weights : as :func:`kmeans_sparse_lloyd_iter`
    n_threads : int
        Ignored.
    """
    distances = np.sqrt(sparse_sq_distances(data, indices, indptr, centers, centers_sq_norms))
    elkan_reassign(distances, center_half_distances, distance_next_center, center_shift, labels,
                   upper, lower)
    _accumulate(data, indices, indptr, sample_weight, labels, out_sums, out_weights)
