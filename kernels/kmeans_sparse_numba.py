r"""K-means iterations on CSR data (Lloyd and Elkan): the Numba kernels.

Same arithmetic as :mod:`kmeans_sparse_numpy` (read it for the math). The
labels are computed in parallel over blocks of ``BLOCK_ROWS`` rows (each row
independent, each block's inertia kept apart and added in block order); the
float64 sums are then accumulated row after row on one thread. Results do not
depend on the number of threads.
"""

import numba
import numpy as np

from ._threads import numba_threads
from .kmeans_numpy import BLOCK_ROWS


@numba.njit(cache=True, nogil=True, inline="always")
def _sq_distance(data, indices, start, stop, center, center_sq_norm):
    """scikit-learn's _euclidean_sparse_dense, squared: input dtype, stored order, clipped at 0."""
    result = data.dtype.type(0)
    for k in range(start, stop):
        c = center[indices[k]]
        diff = data[k] - c
        result += diff * diff - c * c
    result += center_sq_norm
    return result if result > 0 else data.dtype.type(0)


@numba.njit(cache=True, nogil=True)
def _accumulate(data, indices, indptr, sample_weight, labels, out_sums, out_weights):
    """S_j and W_j in float64, row after row (one thread: a fixed order)."""
    out_sums[:] = 0.0
    out_weights[:] = 0.0
    for i in range(indptr.shape[0] - 1):
        label = labels[i]
        w = np.float64(sample_weight[i])
        out_weights[label] += w
        for k in range(indptr[i], indptr[i + 1]):
            out_sums[label, indices[k]] += np.float64(data[k]) * w


@numba.njit(parallel=True, cache=True, nogil=True)
def _lloyd_labels(data, indices, indptr, sample_weight, centers, centers_t, centers_sq_norms,
                  with_inertia, labels, block_inertia, block_changed):
    n_samples = indptr.shape[0] - 1
    n_clusters = centers.shape[0]
    n_blocks = block_inertia.shape[0]
    largest = data.dtype.type(np.inf)  # (scikit-learn starts at FLT_MAX: the same labels)
    for b in numba.prange(n_blocks):
        products = np.empty(n_clusters, dtype=data.dtype)
        inertia = 0.0
        changed = 0
        for i in range(b * BLOCK_ROWS, min((b + 1) * BLOCK_ROWS, n_samples)):
            products[:] = 0
            for k in range(indptr[i], indptr[i + 1]):
                # p_j += c_{j, col} v for every centre at once: a contiguous row of centers_t.
                v = data[k]
                column = centers_t[indices[k]]
                for j in range(n_clusters):
                    products[j] += column[j] * v
            best = largest
            label = 0
            for j in range(n_clusters):
                value = centers_sq_norms[j] - (products[j] + products[j])  # 2 p, in the dtype
                if value < best:
                    best = value
                    label = j
            if label != labels[i]:
                changed += 1
                labels[i] = label
            if with_inertia:
                inertia += np.float64(sample_weight[i]) * np.float64(_sq_distance(
                    data, indices, indptr[i], indptr[i + 1], centers[label], centers_sq_norms[label]))
        block_inertia[b] = inertia
        block_changed[b] = changed


@numba.njit(parallel=True, cache=True, nogil=True)
def _label_sq_distances(data, indices, indptr, centers, centers_sq_norms, labels, out):
    for i in numba.prange(indptr.shape[0] - 1):
        label = labels[i]
        out[i] = _sq_distance(data, indices, indptr[i], indptr[i + 1], centers[label],
                              centers_sq_norms[label])


@numba.njit(parallel=True, cache=True, nogil=True)
def _elkan_init(data, indices, indptr, centers, centers_sq_norms, center_half_distances,
                out_labels, out_upper, out_lower):
    n_clusters = centers.shape[0]
    for i in numba.prange(indptr.shape[0] - 1):
        start, stop = indptr[i], indptr[i + 1]
        best = 0
        min_dist = np.sqrt(_sq_distance(data, indices, start, stop, centers[0], centers_sq_norms[0]))
        out_lower[i, 0] = min_dist
        for j in range(1, n_clusters):
            if min_dist > center_half_distances[best, j]:
                dist = np.sqrt(_sq_distance(data, indices, start, stop, centers[j], centers_sq_norms[j]))
                out_lower[i, j] = dist
                if dist < min_dist:
                    min_dist = dist
                    best = j
        out_labels[i] = best
        out_upper[i] = min_dist


@numba.njit(parallel=True, cache=True, nogil=True)
def _elkan_labels(data, indices, indptr, centers, centers_sq_norms, center_half_distances,
                  distance_next_center, center_shift, labels, upper, lower):
    n_clusters = centers.shape[0]
    zero = data.dtype.type(0)
    for i in numba.prange(indptr.shape[0] - 1):
        start, stop = indptr[i], indptr[i + 1]
        label = labels[i]
        # Bounds after the centres' last move.
        upper_bound = upper[i] + center_shift[label]
        for j in range(n_clusters):
            bound = lower[i, j] - center_shift[j]
            lower[i, j] = bound if bound > zero else zero
        tight = False
        if not distance_next_center[label] >= upper_bound:
            for j in range(n_clusters):
                if (j != label and upper_bound > lower[i, j]
                        and upper_bound > center_half_distances[label, j]):
                    if not tight:
                        upper_bound = np.sqrt(_sq_distance(data, indices, start, stop, centers[label],
                                                           centers_sq_norms[label]))
                        lower[i, label] = upper_bound
                        tight = True
                    if (upper_bound > lower[i, j]
                            or upper_bound > center_half_distances[label, j]):
                        distance = np.sqrt(_sq_distance(data, indices, start, stop, centers[j],
                                                        centers_sq_norms[j]))
                        lower[i, j] = distance
                        if distance < upper_bound:
                            label = j
                            upper_bound = distance
            labels[i] = label
        upper[i] = upper_bound


def kmeans_sparse_lloyd_iter(data, indices, indptr, sample_weight, centers, centers_t,
                             centers_sq_norms, with_inertia, labels, out_sums, out_weights,
                             out_inertia, out_n_changed, n_threads):
    """One Lloyd pass on CSR data (see :func:`kmeans_sparse_numpy.kmeans_sparse_lloyd_iter`)."""
    n_blocks = max(1, -(-(indptr.shape[0] - 1) // BLOCK_ROWS))
    block_inertia = np.zeros(n_blocks)
    block_changed = np.zeros(n_blocks, dtype=np.intp)
    with numba_threads(n_threads):
        _lloyd_labels(data, indices, indptr, sample_weight, centers, centers_t, centers_sq_norms,
                      bool(with_inertia), labels, block_inertia, block_changed)
    _accumulate(data, indices, indptr, sample_weight, labels, out_sums, out_weights)
    out_inertia[0] = block_inertia.sum() if with_inertia else 0.0  # pairwise sum: a fixed order
    out_n_changed[0] = block_changed.sum()


def kmeans_sparse_sq_distances(data, indices, indptr, centers, centers_sq_norms, labels,
                               out_sq_distances, n_threads):
    """Squared distance of each row to its centre (see :func:`kmeans_sparse_numpy.kmeans_sparse_sq_distances`)."""
    with numba_threads(n_threads):
        _label_sq_distances(data, indices, indptr, centers, centers_sq_norms, labels, out_sq_distances)


def kmeans_sparse_elkan_init(data, indices, indptr, centers, centers_sq_norms,
                             center_half_distances, out_labels, out_upper, out_lower, n_threads):
    """Initial Elkan assignment and bounds (see :func:`kmeans_sparse_numpy.kmeans_sparse_elkan_init`)."""
    with numba_threads(n_threads):
        _elkan_init(data, indices, indptr, centers, centers_sq_norms, center_half_distances,
                    out_labels, out_upper, out_lower)


def kmeans_sparse_elkan_iter(data, indices, indptr, sample_weight, centers, centers_sq_norms,
                             center_half_distances, distance_next_center, center_shift, labels,
                             upper, lower, out_sums, out_weights, n_threads):
    """One Elkan pass (see :func:`kmeans_sparse_numpy.kmeans_sparse_elkan_iter`)."""
    with numba_threads(n_threads):
        _elkan_labels(data, indices, indptr, centers, centers_sq_norms, center_half_distances,
                      distance_next_center, center_shift, labels, upper, lower)
    _accumulate(data, indices, indptr, sample_weight, labels, out_sums, out_weights)
