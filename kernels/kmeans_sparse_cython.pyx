# cython: language_level=3
r"""K-means iterations on CSR data (Lloyd and Elkan): the Cython kernels.

Same arithmetic as :mod:`kmeans_sparse_numpy` (read it for the math) and the
same split as :mod:`kmeans_sparse_numba`: labels in parallel (OpenMP) over
blocks of ``BLOCK_ROWS`` rows, each block's inertia apart and added in block
order, then the float64 sums row after row on one thread. Results do not
depend on the number of threads.
"""

include "_common.pxi"

import numpy as np
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt

from .kmeans_numpy import BLOCK_ROWS

DEF BLOCK = 256  # = kmeans_numpy.BLOCK_ROWS (checked at import below)

if BLOCK != BLOCK_ROWS:
    raise ImportError("kmeans_sparse_cython was built with another block size than kmeans_numpy's.")


cdef inline floating sq_distance(const floating* data, const intp_t* indices, intp_t start,
                                 intp_t stop, const floating* center,
                                 floating center_sq_norm) noexcept nogil:
    """scikit-learn's _euclidean_sparse_dense, squared: input dtype, stored order, clipped at 0."""
    cdef floating result = 0, c, diff
    cdef intp_t k
    for k in range(start, stop):
        c = center[indices[k]]
        diff = data[k] - c
        result = result + (diff * diff - c * c)
    result = result + center_sq_norm
    return result if result > 0 else 0


cdef void accumulate(const floating[::1] data, const intp_t[::1] indices,
                     const intp_t[::1] indptr, const floating[::1] sample_weight,
                     const intp_t[::1] labels, double[:, ::1] out_sums,
                     double[::1] out_weights) noexcept nogil:
    """S_j and W_j in float64, row after row (one thread: a fixed order)."""
    cdef intp_t i, k, label
    cdef double w
    out_sums[:, :] = 0.0
    out_weights[:] = 0.0
    for i in range(indptr.shape[0] - 1):
        label = labels[i]
        w = sample_weight[i]
        out_weights[label] = out_weights[label] + w
        for k in range(indptr[i], indptr[i + 1]):
            out_sums[label, indices[k]] = out_sums[label, indices[k]] + <double> data[k] * w


def _lloyd_labels(const floating[::1] data, const intp_t[::1] indices,       # IN
                  const intp_t[::1] indptr, const floating[::1] sample_weight,  # IN
                  const floating[:, ::1] centers, const floating[:, ::1] centers_t,  # IN
                  const floating[::1] centers_sq_norms, bint with_inertia,    # IN
                  intp_t[::1] labels,                                         # INOUT
                  double[::1] block_inertia, intp_t[::1] block_changed,       # OUT
                  int n_threads):
    cdef intp_t n_samples = indptr.shape[0] - 1
    cdef intp_t n_clusters = centers.shape[0]
    cdef intp_t n_blocks = block_inertia.shape[0]
    cdef intp_t b, i, j, k, label, changed, stop
    cdef floating v, value, best
    cdef const floating* column
    cdef floating* products
    cdef double inertia
    with nogil, parallel(num_threads=n_threads):
        products = <floating*> malloc(n_clusters * sizeof(floating))
        for b in prange(n_blocks, schedule="dynamic"):
            inertia = 0.0
            changed = 0
            stop = min((b + 1) * BLOCK, n_samples)
            for i in range(b * BLOCK, stop):
                for j in range(n_clusters):
                    products[j] = 0
                for k in range(indptr[i], indptr[i + 1]):
                    # p_j += c_{j, col} v for every centre at once: a contiguous row of centers_t.
                    v = data[k]
                    column = &centers_t[indices[k], 0]
                    for j in range(n_clusters):
                        products[j] = products[j] + column[j] * v
                best = INFINITY  # (scikit-learn starts at FLT_MAX: the same labels)
                label = 0
                for j in range(n_clusters):
                    value = centers_sq_norms[j] - (products[j] + products[j])
                    if value < best:
                        best = value
                        label = j
                if label != labels[i]:
                    changed = changed + 1
                    labels[i] = label
                if with_inertia:
                    inertia = inertia + <double> sample_weight[i] * <double> sq_distance(
                        &data[0], &indices[0], indptr[i], indptr[i + 1], &centers[label, 0],
                        centers_sq_norms[label])
            block_inertia[b] = inertia
            block_changed[b] = changed
        free(products)


def _label_sq_distances(const floating[::1] data, const intp_t[::1] indices,     # IN
                        const intp_t[::1] indptr, const floating[:, ::1] centers,   # IN
                        const floating[::1] centers_sq_norms, const intp_t[::1] labels,  # IN
                        floating[::1] out,                                           # OUT
                        int n_threads):
    cdef intp_t i, label
    with nogil:
        for i in prange(indptr.shape[0] - 1, num_threads=n_threads, schedule="static"):
            label = labels[i]
            out[i] = sq_distance(&data[0], &indices[0], indptr[i], indptr[i + 1],
                                 &centers[label, 0], centers_sq_norms[label])


def _elkan_init(const floating[::1] data, const intp_t[::1] indices,         # IN
                const intp_t[::1] indptr, const floating[:, ::1] centers,       # IN
                const floating[::1] centers_sq_norms,                          # IN
                const floating[:, ::1] center_half_distances,                  # IN
                intp_t[::1] out_labels, floating[::1] out_upper,               # OUT
                floating[:, ::1] out_lower,                                    # OUT
                int n_threads):
    cdef intp_t n_clusters = centers.shape[0]
    cdef intp_t i, j, best, start, stop
    cdef floating min_dist, dist
    with nogil:
        for i in prange(indptr.shape[0] - 1, num_threads=n_threads, schedule="static"):
            start = indptr[i]
            stop = indptr[i + 1]
            best = 0
            min_dist = sqrt(sq_distance(&data[0], &indices[0], start, stop, &centers[0, 0],
                                        centers_sq_norms[0]))
            out_lower[i, 0] = min_dist
            for j in range(1, n_clusters):
                if min_dist > center_half_distances[best, j]:
                    dist = sqrt(sq_distance(&data[0], &indices[0], start, stop, &centers[j, 0],
                                            centers_sq_norms[j]))
                    out_lower[i, j] = dist
                    if dist < min_dist:
                        min_dist = dist
                        best = j
            out_labels[i] = best
            out_upper[i] = min_dist


def _elkan_labels(const floating[::1] data, const intp_t[::1] indices,          # IN
                  const intp_t[::1] indptr, const floating[:, ::1] centers,        # IN
                  const floating[::1] centers_sq_norms,                           # IN
                  const floating[:, ::1] center_half_distances,                   # IN
                  const floating[::1] distance_next_center,                       # IN
                  const floating[::1] center_shift,                               # IN
                  intp_t[::1] labels, floating[::1] upper, floating[:, ::1] lower,  # INOUT
                  int n_threads):
    cdef intp_t n_clusters = centers.shape[0]
    cdef intp_t i, j, label, start, stop
    cdef floating upper_bound, bound, distance
    cdef bint tight
    with nogil:
        for i in prange(indptr.shape[0] - 1, num_threads=n_threads, schedule="static"):
            start = indptr[i]
            stop = indptr[i + 1]
            label = labels[i]
            # Bounds after the centres' last move.
            upper_bound = upper[i] + center_shift[label]
            for j in range(n_clusters):
                bound = lower[i, j] - center_shift[j]
                lower[i, j] = bound if bound > 0 else 0
            tight = False
            if not distance_next_center[label] >= upper_bound:
                for j in range(n_clusters):
                    if (j != label and upper_bound > lower[i, j]
                            and upper_bound > center_half_distances[label, j]):
                        if not tight:
                            upper_bound = sqrt(sq_distance(&data[0], &indices[0], start, stop,
                                                           &centers[label, 0], centers_sq_norms[label]))
                            lower[i, label] = upper_bound
                            tight = True
                        if (upper_bound > lower[i, j]
                                or upper_bound > center_half_distances[label, j]):
                            distance = sqrt(sq_distance(&data[0], &indices[0], start, stop,
                                                        &centers[j, 0], centers_sq_norms[j]))
                            lower[i, j] = distance
                            if distance < upper_bound:
                                label = j
                                upper_bound = distance
                labels[i] = label
            upper[i] = upper_bound


def _accumulate(const floating[::1] data, const intp_t[::1] indices,        # IN
                const intp_t[::1] indptr, const floating[::1] sample_weight,   # IN
                const intp_t[::1] labels,                                      # IN
                double[:, ::1] out_sums, double[::1] out_weights):             # OUT
    with nogil:
        accumulate(data, indices, indptr, sample_weight, labels, out_sums, out_weights)


def kmeans_sparse_lloyd_iter(data, indices, indptr, sample_weight, centers, centers_t,
                             centers_sq_norms, with_inertia, labels, out_sums, out_weights,
                             out_inertia, out_n_changed, n_threads):
    """One Lloyd pass on CSR data (see :func:`kmeans_sparse_numpy.kmeans_sparse_lloyd_iter`)."""
    n_blocks = max(1, -(-(indptr.shape[0] - 1) // BLOCK_ROWS))
    block_inertia = np.zeros(n_blocks)
    block_changed = np.zeros(n_blocks, dtype=np.intp)
    _lloyd_labels(data, indices, indptr, sample_weight, centers, centers_t, centers_sq_norms,
                  bool(with_inertia), labels, block_inertia, block_changed, n_threads)
    _accumulate(data, indices, indptr, sample_weight, labels, out_sums, out_weights)
    out_inertia[0] = block_inertia.sum() if with_inertia else 0.0  # pairwise sum: a fixed order
    out_n_changed[0] = block_changed.sum()


def kmeans_sparse_sq_distances(data, indices, indptr, centers, centers_sq_norms, labels,
                               out_sq_distances, n_threads):
    """Squared distance of each row to its centre (see :func:`kmeans_sparse_numpy.kmeans_sparse_sq_distances`)."""
    _label_sq_distances(data, indices, indptr, centers, centers_sq_norms, labels, out_sq_distances,
                        n_threads)


def kmeans_sparse_elkan_init(data, indices, indptr, centers, centers_sq_norms,
                             center_half_distances, out_labels, out_upper, out_lower, n_threads):
    """Initial Elkan assignment and bounds (see :func:`kmeans_sparse_numpy.kmeans_sparse_elkan_init`)."""
    _elkan_init(data, indices, indptr, centers, centers_sq_norms, center_half_distances,
                out_labels, out_upper, out_lower, n_threads)


def kmeans_sparse_elkan_iter(data, indices, indptr, sample_weight, centers, centers_sq_norms,
                             center_half_distances, distance_next_center, center_shift, labels,
                             upper, lower, out_sums, out_weights, n_threads):
    """One Elkan pass (see :func:`kmeans_sparse_numpy.kmeans_sparse_elkan_iter`)."""
    _elkan_labels(data, indices, indptr, centers, centers_sq_norms, center_half_distances,
                  distance_next_center, center_shift, labels, upper, lower, n_threads)
    _accumulate(data, indices, indptr, sample_weight, labels, out_sums, out_weights)
