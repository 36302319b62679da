r"""K-means iterations (Lloyd and Elkan): the Numba kernels.

Same arithmetic as :mod:`kmeans_numpy` (read it for the math): the samples are
cut into ``n_stripes(n, k, d)`` contiguous stripes, one parallel task each;
a stripe walks its samples ``BLOCK_ROWS`` at a time, gets the block's
:math:`x_i \cdot c_j` from one GEMM (``np.dot``, single-threaded BLAS) into a
task-local buffer, picks each label and adds :math:`w_i x_i`, :math:`w_i` and
:math:`w_i \lVert x_i - c_{\ell_i} \rVert^2` to the stripe's float64 buffers.
The stripes are then added in order, so the result does not depend on the
number of threads.
"""

import numba
import numpy as np

from ._threads import blas_single_threaded, numba_threads
from .kmeans_numpy import BLOCK_ROWS, n_stripes, stripe_bounds


@numba.njit(cache=True, nogil=True)
def _sq_distance(x, c):
    """sum_l (x_l - c_l)^2 in float64 (four running sums: no long dependency chain)."""
    n_features = x.shape[0]
    t0 = t1 = t2 = t3 = 0.0
    l = 0
    while l + 4 <= n_features:
        d0 = np.float64(x[l]) - np.float64(c[l])
        d1 = np.float64(x[l + 1]) - np.float64(c[l + 1])
        d2 = np.float64(x[l + 2]) - np.float64(c[l + 2])
        d3 = np.float64(x[l + 3]) - np.float64(c[l + 3])
        t0 += d0 * d0
        t1 += d1 * d1
        t2 += d2 * d2
        t3 += d3 * d3
        l += 4
    while l < n_features:
        d0 = np.float64(x[l]) - np.float64(c[l])
        t0 += d0 * d0
        l += 1
    return (t0 + t1) + (t2 + t3)


@numba.njit(cache=True, nogil=True, inline="always")
def _accumulate_and_distance(x, c, w, sums, label):
    """sums[label] += w x, and return sum_l (x_l - c_l)^2 (float64), in one sweep over x."""
    n_features = x.shape[0]
    t0 = t1 = t2 = t3 = 0.0
    l = 0
    while l + 4 <= n_features:
        x0 = np.float64(x[l])
        x1 = np.float64(x[l + 1])
        x2 = np.float64(x[l + 2])
        x3 = np.float64(x[l + 3])
        sums[label, l] += w * x0
        sums[label, l + 1] += w * x1
        sums[label, l + 2] += w * x2
        sums[label, l + 3] += w * x3
        d0 = x0 - np.float64(c[l])
        d1 = x1 - np.float64(c[l + 1])
        d2 = x2 - np.float64(c[l + 2])
        d3 = x3 - np.float64(c[l + 3])
        t0 += d0 * d0
        t1 += d1 * d1
        t2 += d2 * d2
        t3 += d3 * d3
        l += 4
    while l < n_features:
        x0 = np.float64(x[l])
        sums[label, l] += w * x0
        d0 = x0 - np.float64(c[l])
        t0 += d0 * d0
        l += 1
    return (t0 + t1) + (t2 + t3)


@numba.njit(cache=True, nogil=True, inline="always")
def _elkan_distance(x, c):
    """scikit-learn's _euclidean_dense_dense: input dtype, four features at a time."""
    n_features = x.shape[0]
    result = x.dtype.type(0)
    n_groups = n_features // 4
    for g in range(n_groups):
        l = 4 * g
        result += ((((x[l] - c[l]) * (x[l] - c[l]) + (x[l + 1] - c[l + 1]) * (x[l + 1] - c[l + 1]))
                    + (x[l + 2] - c[l + 2]) * (x[l + 2] - c[l + 2]))
                   + (x[l + 3] - c[l + 3]) * (x[l + 3] - c[l + 3]))
    for l in range(4 * n_groups, n_features):
        result += (x[l] - c[l]) * (x[l] - c[l])
    return np.sqrt(result)


@numba.njit(cache=True, nogil=True, inline="always")
def _accumulate_sample(x, w, label, sums):
    """sums[label] += w x (float64)."""
    for l in range(x.shape[0]):
        sums[label, l] += w * np.float64(x[l])


@numba.njit(cache=True, nogil=True)
def _reduce_stripes(stripe_sums, stripe_weights, stripe_inertia, out_sums, out_weights, out_inertia):
    out_sums[:] = 0.0
    out_weights[:] = 0.0
    total = 0.0
    for s in range(stripe_sums.shape[0]):  # in stripe order: thread-count independent
        out_sums += stripe_sums[s]
        out_weights += stripe_weights[s]
        total += stripe_inertia[s]
    out_inertia[0] = total


@numba.njit(parallel=True, cache=True, nogil=True)
def _lloyd_iter(X, sample_weight, centers, centers_sq_norms, starts, with_inertia,
                out_labels, out_sums, out_weights, out_inertia):
    n_features = X.shape[1]
    n_clusters = centers.shape[0]
    n_stripes_ = starts.shape[0] - 1
    stripe_sums = np.zeros((n_stripes_, n_clusters, n_features))
    stripe_weights = np.zeros((n_stripes_, n_clusters))
    stripe_inertia = np.zeros(n_stripes_)
    centers_t = centers.T
    for s in numba.prange(n_stripes_):
        products = np.empty((BLOCK_ROWS, n_clusters), dtype=X.dtype)  # task-local GEMM buffer
        sums = stripe_sums[s]
        weights = stripe_weights[s]
        inertia = 0.0
        for start in range(starts[s], starts[s + 1], BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, starts[s + 1])
            block = products[:stop - start]
            np.dot(X[start:stop], centers_t, block)
            for i in range(stop - start):
                # argmin_j ||c_j||^2 - 2 x.c_j, the first minimum (ties to the smaller index)
                # (p + p is 2p exactly and keeps float32 arithmetic in float32)
                best = centers_sq_norms[0] - (block[i, 0] + block[i, 0])
                label = 0
                for j in range(1, n_clusters):
                    value = centers_sq_norms[j] - (block[i, j] + block[i, j])
                    if value < best:
                        best = value
                        label = j
                row = start + i
                out_labels[row] = label
                w = np.float64(sample_weight[row])
                weights[label] += w
                if with_inertia:
                    inertia += w * _accumulate_and_distance(X[row], centers[label], w, sums, label)
                else:
                    _accumulate_sample(X[row], w, label, sums)
        stripe_inertia[s] = inertia
    _reduce_stripes(stripe_sums, stripe_weights, stripe_inertia, out_sums, out_weights, out_inertia)


@numba.njit(parallel=True, cache=True, nogil=True)
def _inertia(X, sample_weight, centers, labels, starts, out_inertia):
    n_stripes_ = starts.shape[0] - 1
    stripe_inertia = np.zeros(n_stripes_)
    for s in numba.prange(n_stripes_):
        inertia = 0.0
        for row in range(starts[s], starts[s + 1]):
            inertia += np.float64(sample_weight[row]) * _sq_distance(X[row], centers[labels[row]])
        stripe_inertia[s] = inertia
    total = 0.0
    for s in range(n_stripes_):
        total += stripe_inertia[s]
    out_inertia[0] = total


@numba.njit(parallel=True, cache=True, nogil=True)
def _elkan_init(X, centers, center_half_distances, out_labels, out_upper, out_lower):
    n_clusters = centers.shape[0]
    for i in numba.prange(X.shape[0]):
        best = 0
        min_dist = _elkan_distance(X[i], centers[0])
        out_lower[i, 0] = min_dist
        for j in range(1, n_clusters):
            if min_dist > center_half_distances[best, j]:
                dist = _elkan_distance(X[i], centers[j])
                out_lower[i, j] = dist
                if dist < min_dist:
                    min_dist = dist
                    best = j
        out_labels[i] = best
        out_upper[i] = min_dist


@numba.njit(parallel=True, cache=True, nogil=True)
def _elkan_iter(X, sample_weight, centers, center_half_distances, distance_next_center,
                center_shift, starts, labels, upper, lower, out_sums, out_weights):
    n_features = X.shape[1]
    n_clusters = centers.shape[0]
    n_stripes_ = starts.shape[0] - 1
    stripe_sums = np.zeros((n_stripes_, n_clusters, n_features))
    stripe_weights = np.zeros((n_stripes_, n_clusters))
    zero = X.dtype.type(0)
    for s in numba.prange(n_stripes_):
        sums = stripe_sums[s]
        weights = stripe_weights[s]
        for i in range(starts[s], starts[s + 1]):
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
                            upper_bound = _elkan_distance(X[i], centers[label])
                            lower[i, label] = upper_bound
                            tight = True
                        if (upper_bound > lower[i, j]
                                or upper_bound > center_half_distances[label, j]):
                            distance = _elkan_distance(X[i], centers[j])
                            lower[i, j] = distance
                            if distance < upper_bound:
                                label = j
                                upper_bound = distance
                labels[i] = label
            upper[i] = upper_bound
            weights[label] += np.float64(sample_weight[i])
            _accumulate_sample(X[i], np.float64(sample_weight[i]), label, sums)
    out_sums[:] = 0.0
    out_weights[:] = 0.0
    for s in range(n_stripes_):
        out_sums += stripe_sums[s]
        out_weights += stripe_weights[s]


def _starts(X, centers):
    return stripe_bounds(X.shape[0], n_stripes(X.shape[0], centers.shape[0], X.shape[1]))


def kmeans_lloyd_iter(X, sample_weight, centers, centers_sq_norms, with_inertia,
                      out_labels, out_sums, out_weights, out_inertia, n_threads):
    """One fused Lloyd pass (see :func:`kmeans_numpy.kmeans_lloyd_iter`)."""
    with numba_threads(n_threads), blas_single_threaded():
        _lloyd_iter(X, sample_weight, centers, centers_sq_norms, _starts(X, centers),
                    bool(with_inertia), out_labels, out_sums, out_weights, out_inertia)


def kmeans_inertia(X, sample_weight, centers, labels, out_inertia, n_threads):
    """Inertia of given labels (see :func:`kmeans_numpy.kmeans_inertia`)."""
    with numba_threads(n_threads):
        _inertia(X, sample_weight, centers, labels, _starts(X, centers), out_inertia)


def kmeans_elkan_init(X, centers, center_half_distances, out_labels, out_upper, out_lower, n_threads):
    """Initial Elkan assignment and bounds (see :func:`kmeans_numpy.kmeans_elkan_init`)."""
    with numba_threads(n_threads):
        _elkan_init(X, centers, center_half_distances, out_labels, out_upper, out_lower)


def kmeans_elkan_iter(X, sample_weight, centers, center_half_distances, distance_next_center,
                      center_shift, labels, upper, lower, out_sums, out_weights, n_threads):
    """One Elkan pass (see :func:`kmeans_numpy.kmeans_elkan_iter`)."""
    with numba_threads(n_threads):
        _elkan_iter(X, sample_weight, centers, center_half_distances, distance_next_center,
                    center_shift, _starts(X, centers), labels, upper, lower, out_sums, out_weights)
