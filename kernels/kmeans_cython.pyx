# cython: language_level=3
r"""K-means iterations (Lloyd and Elkan): the Cython kernels.

Same arithmetic and stripes as :mod:`kmeans_numba` (read :mod:`kmeans_numpy`
for the math): OpenMP threads over stripes, a thread-local GEMM buffer
(``scipy.linalg.cython_blas``), float64 per-stripe sums reduced in stripe
order, so the result does not depend on the number of threads.
"""

include "_common.pxi"

import numpy as np
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport dgemm, sgemm

from ._threads import blas_single_threaded
from .kmeans_numpy import BLOCK_ROWS, n_stripes, stripe_bounds

DEF BLOCK = 256  # = kmeans_numpy.BLOCK_ROWS (checked at import below)

if BLOCK != BLOCK_ROWS:
    raise ImportError("kmeans_cython was built with another BLOCK_ROWS than kmeans_numpy's.")


cdef inline void partial_distances(int n_rows, int n_clusters, int n_features,
                                   const floating* x, const floating* centers,
                                   const floating* centers_sq_norms, floating* out) noexcept nogil:
    """out (n_rows x n_clusters, row-major) = ||c_j||^2 - 2 x_i . c_j.

    One GEMM with alpha = -2 and beta = 1 on a buffer pre-filled with the
    norms: the same BLAS call as scikit-learn's, hence the same rounding.
    In BLAS's column-major terms, out^T = -2 centers x^T + out^T.
    """
    cdef char trans_a = b"T"
    cdef char trans_b = b"N"
    cdef floating alpha = -2.0
    cdef floating beta = 1.0
    cdef intp_t i
    for i in range(n_rows):
        memcpy(out + i * n_clusters, centers_sq_norms, n_clusters * sizeof(floating))
    if floating is float:
        sgemm(&trans_a, &trans_b, &n_clusters, &n_rows, &n_features, &alpha,
              <float*> centers, &n_features, <float*> x, &n_features, &beta, out, &n_clusters)
    else:
        dgemm(&trans_a, &trans_b, &n_clusters, &n_rows, &n_features, &alpha,
              <double*> centers, &n_features, <double*> x, &n_features, &beta, out, &n_clusters)


cdef inline double sq_distance(const floating* x, const floating* c, intp_t n_features) noexcept nogil:
    """sum_l (x_l - c_l)^2 in float64 (four running sums: no long dependency chain)."""
    cdef double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0, d0, d1, d2, d3
    cdef intp_t l = 0
    while l + 4 <= n_features:
        d0 = <double> x[l] - <double> c[l]
        d1 = <double> x[l + 1] - <double> c[l + 1]
        d2 = <double> x[l + 2] - <double> c[l + 2]
        d3 = <double> x[l + 3] - <double> c[l + 3]
        t0 = t0 + d0 * d0
        t1 = t1 + d1 * d1
        t2 = t2 + d2 * d2
        t3 = t3 + d3 * d3
        l = l + 4
    while l < n_features:
        d0 = <double> x[l] - <double> c[l]
        t0 = t0 + d0 * d0
        l = l + 1
    return (t0 + t1) + (t2 + t3)


cdef inline double accumulate_and_distance(const floating* x, const floating* c, double w,
                                           intp_t n_features, double* sums_row) noexcept nogil:
    """sums_row += w x, and return sum_l (x_l - c_l)^2 (float64), in one sweep over x."""
    cdef double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0, x0, x1, x2, x3, d0, d1, d2, d3
    cdef intp_t l = 0
    while l + 4 <= n_features:
        x0 = x[l]
        x1 = x[l + 1]
        x2 = x[l + 2]
        x3 = x[l + 3]
        sums_row[l] = sums_row[l] + w * x0
        sums_row[l + 1] = sums_row[l + 1] + w * x1
        sums_row[l + 2] = sums_row[l + 2] + w * x2
        sums_row[l + 3] = sums_row[l + 3] + w * x3
        d0 = x0 - <double> c[l]
        d1 = x1 - <double> c[l + 1]
        d2 = x2 - <double> c[l + 2]
        d3 = x3 - <double> c[l + 3]
        t0 = t0 + d0 * d0
        t1 = t1 + d1 * d1
        t2 = t2 + d2 * d2
        t3 = t3 + d3 * d3
        l = l + 4
    while l < n_features:
        x0 = x[l]
        sums_row[l] = sums_row[l] + w * x0
        d0 = x0 - <double> c[l]
        t0 = t0 + d0 * d0
        l = l + 1
    return (t0 + t1) + (t2 + t3)


cdef inline floating elkan_distance(const floating* x, const floating* c, intp_t n_features) noexcept nogil:
    """scikit-learn's _euclidean_dense_dense: input dtype, four features at a time."""
    cdef floating result = 0
    cdef intp_t l, n_groups = n_features // 4
    for l in range(0, 4 * n_groups, 4):
        result = result + ((((x[l] - c[l]) * (x[l] - c[l]) + (x[l + 1] - c[l + 1]) * (x[l + 1] - c[l + 1]))
                            + (x[l + 2] - c[l + 2]) * (x[l + 2] - c[l + 2]))
                           + (x[l + 3] - c[l + 3]) * (x[l + 3] - c[l + 3]))
    for l in range(4 * n_groups, n_features):
        result = result + (x[l] - c[l]) * (x[l] - c[l])
    return sqrt(result)


cdef inline void accumulate_sample(const floating* x, double w, intp_t label, intp_t n_features,
                                   double* sums) noexcept nogil:
    """sums[label] += w x (float64)."""
    cdef double* row = sums + label * n_features
    cdef intp_t l
    for l in range(n_features):
        row[l] = row[l] + w * <double> x[l]


cdef void reduce_stripes(double[:, :, ::1] stripe_sums, double[:, ::1] stripe_weights,
                         double[::1] out_sums_flat, double[::1] out_weights) noexcept nogil:
    """Add the stripes in order (thread-count independent)."""
    cdef intp_t s, j, n_stripes_ = stripe_sums.shape[0]
    cdef intp_t n_clusters = stripe_sums.shape[1], n_features = stripe_sums.shape[2]
    for j in range(n_clusters * n_features):
        out_sums_flat[j] = 0.0
    for j in range(n_clusters):
        out_weights[j] = 0.0
    for s in range(n_stripes_):
        for j in range(n_clusters * n_features):
            out_sums_flat[j] = out_sums_flat[j] + (&stripe_sums[s, 0, 0])[j]
        for j in range(n_clusters):
            out_weights[j] = out_weights[j] + stripe_weights[s, j]


def _lloyd_iter(const floating[:, ::1] X, const floating[::1] sample_weight,      # IN
                const floating[:, ::1] centers, const floating[::1] centers_sq_norms,  # IN
                const intp_t[::1] starts,                                         # IN
                bint with_inertia,                                                # IN
                intp_t[::1] out_labels, double[:, ::1] out_sums,                  # OUT
                double[::1] out_weights, double[::1] out_inertia,                 # OUT
                int n_threads):
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_clusters = centers.shape[0]
    cdef intp_t n_stripes_ = starts.shape[0] - 1
    cdef double[:, :, ::1] stripe_sums = np.zeros((n_stripes_, n_clusters, n_features))
    cdef double[:, ::1] stripe_weights = np.zeros((n_stripes_, n_clusters))
    cdef double[::1] stripe_inertia = np.zeros(n_stripes_)
    cdef intp_t s, start, stop, i, j, row, label
    cdef floating best, value
    cdef double inertia, total, w
    cdef floating* products
    cdef floating* p

    with nogil, parallel(num_threads=n_threads):
        products = <floating*> malloc(BLOCK * n_clusters * sizeof(floating))  # thread-local
        for s in prange(n_stripes_, schedule="dynamic"):
            inertia = 0.0
            start = starts[s]
            while start < starts[s + 1]:
                stop = min(start + BLOCK, starts[s + 1])
                partial_distances(<int> (stop - start), <int> n_clusters, <int> n_features,
                                  &X[start, 0], &centers[0, 0], &centers_sq_norms[0], products)
                for i in range(stop - start):
                    p = products + i * n_clusters
                    row = start + i
                    # argmin_j ||c_j||^2 - 2 x.c_j, the first minimum (ties to the smaller index)
                    best = p[0]
                    label = 0
                    for j in range(1, n_clusters):
                        if p[j] < best:
                            best = p[j]
                            label = j
                    out_labels[row] = label
                    w = sample_weight[row]
                    stripe_weights[s, label] = stripe_weights[s, label] + w
                    if with_inertia:
                        inertia = inertia + w * accumulate_and_distance(
                            &X[row, 0], &centers[label, 0], w, n_features, &stripe_sums[s, label, 0])
                    else:
                        accumulate_sample(&X[row, 0], w, label, n_features, &stripe_sums[s, 0, 0])
                start = stop
            stripe_inertia[s] = inertia
        free(products)
    # (with_inertia False: out_inertia is 0)

    reduce_stripes(stripe_sums, stripe_weights, np.asarray(out_sums).reshape(-1), out_weights)
    total = 0.0
    for s in range(n_stripes_):
        total = total + stripe_inertia[s]
    out_inertia[0] = total


def _inertia(const floating[:, ::1] X, const floating[::1] sample_weight,   # IN
             const floating[:, ::1] centers, const intp_t[::1] labels,      # IN
             const intp_t[::1] starts,                                      # IN
             double[::1] out_inertia,                                       # OUT
             int n_threads):
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_stripes_ = starts.shape[0] - 1
    cdef double[::1] stripe_inertia = np.zeros(n_stripes_)
    cdef intp_t s, row
    cdef double inertia, total = 0.0
    with nogil:
        for s in prange(n_stripes_, num_threads=n_threads, schedule="dynamic"):
            inertia = 0.0
            for row in range(starts[s], starts[s + 1]):
                inertia = inertia + <double> sample_weight[row] * sq_distance(
                    &X[row, 0], &centers[labels[row], 0], n_features)
            stripe_inertia[s] = inertia
        for s in range(n_stripes_):
            total = total + stripe_inertia[s]
    out_inertia[0] = total


def _elkan_init(const floating[:, ::1] X, const floating[:, ::1] centers,          # IN
                const floating[:, ::1] center_half_distances,                      # IN
                intp_t[::1] out_labels, floating[::1] out_upper,                   # OUT
                floating[:, ::1] out_lower,                                        # OUT
                int n_threads):
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_clusters = centers.shape[0]
    cdef intp_t i, j, best
    cdef floating min_dist, dist
    with nogil:
        for i in prange(X.shape[0], num_threads=n_threads, schedule="static"):
            best = 0
            min_dist = elkan_distance(&X[i, 0], &centers[0, 0], n_features)
            out_lower[i, 0] = min_dist
            for j in range(1, n_clusters):
                if min_dist > center_half_distances[best, j]:
                    dist = elkan_distance(&X[i, 0], &centers[j, 0], n_features)
                    out_lower[i, j] = dist
                    if dist < min_dist:
                        min_dist = dist
                        best = j
            out_labels[i] = best
            out_upper[i] = min_dist


def _elkan_iter(const floating[:, ::1] X, const floating[::1] sample_weight,          # IN
                const floating[:, ::1] centers,                                       # IN
                const floating[:, ::1] center_half_distances,                         # IN
                const floating[::1] distance_next_center,                             # IN
                const floating[::1] center_shift, const intp_t[::1] starts,           # IN
                intp_t[::1] labels, floating[::1] upper, floating[:, ::1] lower,      # INOUT
                double[:, ::1] out_sums, double[::1] out_weights,                     # OUT
                int n_threads):
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_clusters = centers.shape[0]
    cdef intp_t n_stripes_ = starts.shape[0] - 1
    cdef double[:, :, ::1] stripe_sums = np.zeros((n_stripes_, n_clusters, n_features))
    cdef double[:, ::1] stripe_weights = np.zeros((n_stripes_, n_clusters))
    cdef intp_t s, i, j, label
    cdef floating upper_bound, bound, distance
    cdef bint tight

    with nogil:
        for s in prange(n_stripes_, num_threads=n_threads, schedule="dynamic"):
            for i in range(starts[s], starts[s + 1]):
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
                                upper_bound = elkan_distance(&X[i, 0], &centers[label, 0], n_features)
                                lower[i, label] = upper_bound
                                tight = True
                            if (upper_bound > lower[i, j]
                                    or upper_bound > center_half_distances[label, j]):
                                distance = elkan_distance(&X[i, 0], &centers[j, 0], n_features)
                                lower[i, j] = distance
                                if distance < upper_bound:
                                    label = j
                                    upper_bound = distance
                    labels[i] = label
                upper[i] = upper_bound
                stripe_weights[s, label] = stripe_weights[s, label] + sample_weight[i]
                accumulate_sample(&X[i, 0], sample_weight[i], label, n_features, &stripe_sums[s, 0, 0])
    reduce_stripes(stripe_sums, stripe_weights, np.asarray(out_sums).reshape(-1), out_weights)


def _starts(X, centers):
    return stripe_bounds(X.shape[0], n_stripes(X.shape[0], centers.shape[0], X.shape[1]))


def kmeans_lloyd_iter(X, sample_weight, centers, centers_sq_norms, with_inertia,
                      out_labels, out_sums, out_weights, out_inertia, n_threads):
    """One fused Lloyd pass (see :func:`kmeans_numpy.kmeans_lloyd_iter`)."""
    with blas_single_threaded():
        _lloyd_iter(X, sample_weight, centers, centers_sq_norms, _starts(X, centers),
                    with_inertia, out_labels, out_sums, out_weights, out_inertia, n_threads)


def kmeans_inertia(X, sample_weight, centers, labels, out_inertia, n_threads):
    """Inertia of given labels (see :func:`kmeans_numpy.kmeans_inertia`)."""
    _inertia(X, sample_weight, centers, labels, _starts(X, centers), out_inertia, n_threads)


def kmeans_elkan_init(X, centers, center_half_distances, out_labels, out_upper, out_lower, n_threads):
    """Initial Elkan assignment and bounds (see :func:`kmeans_numpy.kmeans_elkan_init`)."""
    _elkan_init(X, centers, center_half_distances, out_labels, out_upper, out_lower, n_threads)


def kmeans_elkan_iter(X, sample_weight, centers, center_half_distances, distance_next_center,
                      center_shift, labels, upper, lower, out_sums, out_weights, n_threads):
    """One Elkan pass (see :func:`kmeans_numpy.kmeans_elkan_iter`)."""
    _elkan_iter(X, sample_weight, centers, center_half_distances, distance_next_center,
                center_shift, _starts(X, centers), labels, upper, lower, out_sums, out_weights,
                n_threads)
