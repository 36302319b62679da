r"""K-means iterations (Lloyd and Elkan): the Numba kernels.

Same arithmetic as :mod:`kmeans_numpy` (read it for the math): the samples are
cut into ``n_stripes(n, k, d)`` contiguous stripes, one parallel task each;
a stripe walks its samples ``BLOCK_ROWS`` at a time. Lloyd, per block:

1. copy the block transposed (features x rows) into the ranking dtype, with
   each row's squared norm, and prefetch the next block (with many features,
   copy the rows as stored instead: :func:`kmeans_numpy.rank_path`);
2. one GEMM (with at most 2 features, plain loops) gives ``products_t``
   (centres x rows) and one pass over it, rows along the vector lanes, the
   best and second-best value of every row;
3. rows whose gap is inside :func:`kmeans_numpy.ranking_margin` get
   scikit-learn's exact values (its GEMM on the block) and first-minimum scan;
4. move :math:`w_i x_i` and :math:`w_i` of the rows whose label changed
   between the stripe's float64 sums (and add :math:`w_i \lVert x_i -
   c_{\ell_i} \rVert^2` of every row when asked for the inertia).

The stripes are then added in order, so the result does not depend on the
number of threads.
"""

import numba
import numpy as np

from ._numba_prefetch import prefetch_row
from ._threads import blas_single_threaded, numba_threads
from .kmeans_numpy import (BLOCK_ROWS, RANK_DIRECT, RANK_ROWS, RANK_SWITCH, lloyd_state, n_stripes,
                           rank_path, ranking_margin, stripe_bounds)


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


@numba.njit(cache=True, nogil=True, inline="always")
def _load_block(X, start, n_rows, n_prefetch, xt, x_sq_norms):
    """xt[:, i] = X[start + i] in xt's dtype, x_sq_norms[i] = ||X[start + i]||^2 (float64).

    Also prefetches the ``n_prefetch`` rows after the block, one per row copied.
    """
    n_features = X.shape[1]
    for i in range(n_rows):
        if i < n_prefetch:
            prefetch_row(X, start + n_rows + i)
        t0 = t1 = 0.0
        l = 0
        while l + 2 <= n_features:
            v0 = X[start + i, l]
            v1 = X[start + i, l + 1]
            xt[l, i] = v0
            xt[l + 1, i] = v1
            t0 += np.float64(v0) * np.float64(v0)
            t1 += np.float64(v1) * np.float64(v1)
            l += 2
        if l < n_features:
            v0 = X[start + i, l]
            xt[l, i] = v0
            t0 += np.float64(v0) * np.float64(v0)
        x_sq_norms[i] = t0 + t1


@numba.njit(cache=True, nogil=True, inline="always")
def _load_rows(X, start, n_rows, xr, x_sq_norms):
    """xr[i] = X[start + i] in xr's dtype (rows as stored), x_sq_norms[i] = ||X[start + i]||^2 (float64)."""
    n_features = X.shape[1]
    for i in range(n_rows):
        t0 = t1 = 0.0
        l = 0
        while l + 2 <= n_features:
            v0 = X[start + i, l]
            v1 = X[start + i, l + 1]
            xr[i, l] = v0
            xr[i, l + 1] = v1
            t0 += np.float64(v0) * np.float64(v0)
            t1 += np.float64(v1) * np.float64(v1)
            l += 2
        if l < n_features:
            v0 = X[start + i, l]
            xr[i, l] = v0
            t0 += np.float64(v0) * np.float64(v0)
        x_sq_norms[i] = t0 + t1


@numba.njit(cache=True, nogil=True, inline="always")
def _direct_products(centers_rank, xt, products_t):
    """products_t = centers_rank @ xt without a GEMM (few features): feature after feature, rows along the lanes."""
    n_features, n_rows = xt.shape
    for j in range(centers_rank.shape[0]):
        c = centers_rank[j, 0]
        for i in range(n_rows):
            products_t[j, i] = c * xt[0, i]
        for l in range(1, n_features):
            c = centers_rank[j, l]
            for i in range(n_rows):
                products_t[j, i] += c * xt[l, i]


@numba.njit(cache=True, nogil=True, inline="always")
def _rank_block(path, X, start, n_rows, n_prefetch, centers_rank, norms_rank, margin_a, margin_b,
                x_sq_limit, xt_buffer, products_buffer, labels, best, second, x_sq_norms, uncertain,
                X_rank, x_sq_norms_rank):
    """Steps 1-2 and the test of step 3 for one block; returns the number of uncertain rows.

    ``labels`` gets the first minimum of ``norms_rank[j] - 2 x_i . c_j`` in
    the ranking dtype; ``uncertain[:count]`` the rows to redo exactly.
    ``path``: :func:`kmeans_numpy.rank_path` (the products without a GEMM,
    the transposed block and one GEMM, or one GEMM on the rows as stored: of
    the caller's float32 copy ``X_rank`` when it has X's rows, with their norms
    ``x_sq_norms_rank``).
    """
    n_features = X.shape[1]
    n_clusters = centers_rank.shape[0]
    products_t = products_buffer[:n_clusters * n_rows].reshape((n_clusters, n_rows))
    if path == RANK_ROWS:
        xr = xt_buffer[:n_features * n_rows].reshape((n_rows, n_features))
        if X_rank.shape[0] == X.shape[0]:
            for i in range(n_rows):  # float32 rows into the contiguous block buffer
                x_sq_norms[i] = x_sq_norms_rank[start + i]
                for l in range(n_features):
                    xr[i, l] = X_rank[start + i, l]
        else:
            _load_rows(X, start, n_rows, xr, x_sq_norms)
        np.dot(centers_rank, xr.T, products_t)
    else:
        xt = xt_buffer[:n_features * n_rows].reshape((n_features, n_rows))
        _load_block(X, start, n_rows, n_prefetch, xt, x_sq_norms)
        if path == RANK_DIRECT:
            _direct_products(centers_rank, xt, products_t)
        else:
            np.dot(centers_rank, xt, products_t)
    # Rows along the lanes: no data-dependent branch, no dependency between rows.
    for i in range(n_rows):
        best[i] = norms_rank[0] - (products_t[0, i] + products_t[0, i])
        second[i] = np.inf
        labels[i] = 0
    for j in range(1, n_clusters):
        norm = norms_rank[j]
        label = labels.dtype.type(j)
        for i in range(n_rows):
            value = norm - (products_t[j, i] + products_t[j, i])
            current = best[i]
            closer = value < current
            second[i] = current if closer else min(second[i], value)
            best[i] = value if closer else current
            labels[i] = label if closer else labels[i]
    count = 0
    for i in range(n_rows):
        # certain when gap > a ||x|| + b, that is gap - b > 0 and (gap - b)^2 > a^2 ||x||^2
        excess = np.float64(second[i]) - np.float64(best[i]) - margin_b
        certain = (excess > 0 and excess * excess > margin_a * margin_a * x_sq_norms[i]
                   and second[i] < np.inf and x_sq_norms[i] <= x_sq_limit)
        if not certain:
            uncertain[count] = i
            count += 1
    return count


@numba.njit(cache=True, nogil=True, inline="always")
def _first_nearest(products, centers_sq_norms):
    """scikit-learn's scan: the first j minimising ||c_j||^2 - 2 x . c_j."""
    best = centers_sq_norms[0] - (products[0] + products[0])
    label = 0
    for j in range(1, products.shape[0]):
        value = centers_sq_norms[j] - (products[j] + products[j])
        if value < best:
            best = value
            label = j
    return label


@numba.njit(parallel=True, cache=True, nogil=True)
def _lloyd_iter(X, sample_weight, centers, centers_sq_norms, centers_f32, norms_f32, margins,
                path, X_rank, x_sq_norms_rank, starts, with_inertia, labels, stripe_sums,
                stripe_weights, out_sums, out_weights, out_inertia, out_n_changed):
    n_features = X.shape[1]
    n_clusters = centers.shape[0]
    n_stripes_ = starts.shape[0] - 1
    stripe_inertia = np.zeros(n_stripes_)
    stripe_changed = np.zeros(n_stripes_, dtype=np.intp)
    centers_t = centers.T
    for s in numba.prange(n_stripes_):
        # Task-local buffers: the float32 ranking, then the exact GEMM.
        xt = np.empty(n_features * BLOCK_ROWS, dtype=centers_f32.dtype)
        products_t = np.empty(n_clusters * BLOCK_ROWS, dtype=centers_f32.dtype)
        best = np.empty(BLOCK_ROWS, dtype=centers_f32.dtype)
        second = np.empty(BLOCK_ROWS, dtype=centers_f32.dtype)
        x_sq_norms = np.empty(BLOCK_ROWS)
        exact = np.empty((BLOCK_ROWS, n_clusters), dtype=X.dtype)
        nearest = np.zeros(BLOCK_ROWS, dtype=np.int32)
        uncertain = np.empty(BLOCK_ROWS, dtype=np.intp)
        ranking = path != 0 and n_clusters > 1
        blocks_ranked = 0
        blocks_exact = 0
        sums = stripe_sums[s]
        weights = stripe_weights[s]
        inertia = 0.0
        changed = 0
        for start in range(starts[s], starts[s + 1], BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, starts[s + 1])
            n_rows = stop - start
            n_uncertain = 0
            if ranking:
                n_uncertain = _rank_block(path, X, start, n_rows, min(BLOCK_ROWS, starts[s + 1] - stop),
                                          centers_f32, norms_f32, margins[0], margins[1],
                                          margins[2], xt, products_t, nearest, best, second,
                                          x_sq_norms, uncertain, X_rank, x_sq_norms_rank)
                # Float32 cannot separate these centres here: the exact path for every row from now on.
                blocks_ranked += 1
                blocks_exact += n_uncertain > 0
                ranking = blocks_ranked < RANK_SWITCH or 2 * blocks_exact <= blocks_ranked
            elif n_clusters > 1:
                for i in range(n_rows):
                    uncertain[i] = i
                n_uncertain = n_rows
            if n_uncertain > 0:
                # scikit-learn's own GEMM on its own 256-row chunk, then its scan.
                block = exact[:n_rows]
                np.dot(X[start:stop], centers_t, block)
                for u in range(n_uncertain):
                    i = uncertain[u]
                    nearest[i] = _first_nearest(block[i], centers_sq_norms)
            # Step 4: only the rows whose label changed move between the stripe's sums.
            for i in range(n_rows):
                row = start + i
                label = nearest[i]
                previous = labels[row]
                w = np.float64(sample_weight[row])
                if with_inertia:
                    inertia += w * _sq_distance(X[row], centers[label])
                if label != previous:
                    changed += 1
                    labels[row] = label
                    if previous >= 0:
                        weights[previous] -= w
                        _accumulate_sample(X[row], -w, previous, sums)
                    weights[label] += w
                    _accumulate_sample(X[row], w, label, sums)
        stripe_inertia[s] = inertia
        stripe_changed[s] = changed
    _reduce_stripes(stripe_sums, stripe_weights, stripe_inertia, out_sums, out_weights, out_inertia)
    out_n_changed[0] = stripe_changed.sum()


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
                center_shift, starts, labels, upper, lower, sum_labels, stripe_sums, stripe_weights,
                out_sums, out_weights):
    n_clusters = centers.shape[0]
    n_stripes_ = starts.shape[0] - 1
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
            # Only a row whose label changed moves between the stripe's sums.
            previous = sum_labels[i]
            if label != previous:
                w = np.float64(sample_weight[i])
                if previous >= 0:
                    weights[previous] -= w
                    _accumulate_sample(X[i], -w, previous, sums)
                weights[label] += w
                _accumulate_sample(X[i], w, label, sums)
                sum_labels[i] = label
    out_sums[:] = 0.0
    out_weights[:] = 0.0
    for s in range(n_stripes_):
        out_sums += stripe_sums[s]
        out_weights += stripe_weights[s]


@numba.njit(cache=True, nogil=True)
def _column_sums(X, out):
    """out[l] = sum_i X[i, l], row after row in X's dtype (NumPy's order over axis 0)."""
    out[:] = 0
    for i in range(X.shape[0]):
        for l in range(X.shape[1]):
            out[l] += X[i, l]


@numba.njit(parallel=True, cache=True, nogil=True)
def _subtract(X, mean, out_centred):
    for i in numba.prange(X.shape[0]):
        for l in range(X.shape[1]):
            out_centred[i, l] = X[i, l] - mean[l]


@numba.njit(cache=True, nogil=True)
def _subtract_and_square_sums(X, mean, out_centred, out_sq_sums):
    """Centre row after row and sum the squares in NumPy's order (one pass)."""
    out_sq_sums[:] = 0
    for i in range(X.shape[0]):
        for l in range(X.shape[1]):
            centred = X[i, l] - mean[l]
            out_centred[i, l] = centred
            out_sq_sums[l] += centred * centred


def _starts(X, centers):
    return stripe_bounds(X.shape[0], n_stripes(X.shape[0], centers.shape[0], X.shape[1]))


_NO_COPY = np.empty((0, 0), dtype=np.float32)
_NO_NORMS = np.empty(0)


def kmeans_lloyd_iter(X, sample_weight, centers, centers_sq_norms, with_inertia, labels,
                      stripe_sums, stripe_weights, out_sums, out_weights, out_inertia,
                      out_n_changed, n_threads, X_rank=None, x_sq_norms=None):
    """One fused Lloyd pass (see :func:`kmeans_numpy.kmeans_lloyd_iter`)."""
    margins = np.array(ranking_margin(X.shape[1], centers_sq_norms))
    has_copy = X_rank is not None
    path = rank_path(X.shape[1], centers.shape[0], X.dtype, has_copy)
    with numba_threads(n_threads), blas_single_threaded():
        _lloyd_iter(X, sample_weight, centers, centers_sq_norms, centers.astype(np.float32),
                    centers_sq_norms.astype(np.float32), margins, path,
                    X_rank if has_copy else _NO_COPY, x_sq_norms if has_copy else _NO_NORMS,
                    stripe_bounds(X.shape[0], stripe_sums.shape[0]), bool(with_inertia), labels,
                    stripe_sums, stripe_weights, out_sums, out_weights, out_inertia, out_n_changed)


def kmeans_center(X, with_variance, out_centred, out_mean, out_variance, n_threads):
    """Means, centred data and variances, bit for bit NumPy's (see :func:`kmeans_numpy.kmeans_center`).

    The sums run on one thread in row order (the order fixes the rounding);
    centring alone runs on ``n_threads``.
    """
    _column_sums(X, out_mean)
    out_mean /= X.dtype.type(X.shape[0])
    if with_variance:
        _subtract_and_square_sums(X, out_mean, out_centred, out_variance)
        out_variance /= X.dtype.type(X.shape[0])
    else:
        with numba_threads(n_threads):
            _subtract(X, out_mean, out_centred)


def kmeans_inertia(X, sample_weight, centers, labels, out_inertia, n_threads):
    """Inertia of given labels (see :func:`kmeans_numpy.kmeans_inertia`)."""
    with numba_threads(n_threads):
        _inertia(X, sample_weight, centers, labels, _starts(X, centers), out_inertia)


def kmeans_elkan_init(X, centers, center_half_distances, out_labels, out_upper, out_lower, n_threads):
    """Initial Elkan assignment and bounds (see :func:`kmeans_numpy.kmeans_elkan_init`)."""
    with numba_threads(n_threads):
        _elkan_init(X, centers, center_half_distances, out_labels, out_upper, out_lower)


def kmeans_elkan_iter(X, sample_weight, centers, center_half_distances, distance_next_center,
                      center_shift, labels, upper, lower, out_sums, out_weights, n_threads,
                      state=None):
    """One Elkan pass (see :func:`kmeans_numpy.kmeans_elkan_iter`; with ``state``, only changed rows move)."""
    if state is None:
        state = lloyd_state(X.shape[0], centers.shape[0], X.shape[1])
    with numba_threads(n_threads):
        _elkan_iter(X, sample_weight, centers, center_half_distances, distance_next_center,
                    center_shift, _starts(X, centers), labels, upper, lower, *state, out_sums,
                    out_weights)
