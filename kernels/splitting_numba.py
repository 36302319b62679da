r"""Best split of a tree node from its gradient histogram: the Numba kernel.

The loops of :func:`splitting_numpy._find_best_splits_naive` (forward scan,
then backward scan when the node has missing values), with the same float32
roundings as xgboost, in parallel over the (node, feature) pairs of a level (each feature's scan is
independent, so the thread count cannot change the answer). Empty bins are
skipped after each scan's first bin, as in :mod:`splitting_cython`.

``find_best_splits_monotone``: the same scans with xgboost's monotone gain
(:func:`splitting_numpy.find_best_splits_monotone`): weights clipped to the
node's bounds, scores in float32 arithmetic, order checked on constrained
features.
"""

import numba
import numpy as np

from ._constants import THRESHOLDS
from ._threads import numba_threads, parallel_minimum

# Histogram slots below which one thread searches (splitting_cython).
PARALLEL_MIN_WORK = THRESHOLDS["splitting"]["PARALLEL_MIN_WORK"]


@numba.njit(cache=True, nogil=True, inline="always")
def _threshold_l1(g, alpha):
    if g > alpha:
        return g - alpha
    if g < -alpha:
        return g + alpha
    return 0.0


@numba.njit(cache=True, nogil=True, inline="always")
def _leaf_weight(g, h, params):
    reg_lambda, reg_alpha, min_child_weight, max_delta_step = params[0], params[1], params[2], params[3]
    if h < min_child_weight or h <= 0.0:
        return np.float32(0.0)
    w = -_threshold_l1(g, reg_alpha) / (h + reg_lambda)
    if max_delta_step != 0.0 and abs(w) > max_delta_step:
        w = max_delta_step if w > 0 else -max_delta_step
    return np.float32(w)


@numba.njit(cache=True, nogil=True, inline="always")
def _node_score(g, h, params):
    if h <= 0.0:
        return np.float32(0.0)
    if params[3] == 0.0:
        t = _threshold_l1(g, params[1])
        return np.float32(t * t / (h + params[0]))
    w = np.float64(_leaf_weight(g, h, params))
    return np.float32(-(2.0 * g * w + (h + params[0]) * (w * w)))


@numba.njit(cache=True, nogil=True, inline="always")
def _gain(left_g, left_h, right_g, right_h, parent_score, params):
    if left_h < params[2] or right_h < params[2]:
        return -np.inf
    total = (np.float64(_node_score(left_g, left_h, params))
             + np.float64(_node_score(right_g, right_h, params)) - parent_score)
    return np.float64(np.float32(total))


@numba.njit(cache=True, nogil=True, inline="always")
def _bounded_weight(g, h, lower, upper, params):
    w = _leaf_weight(g, h, params)
    if w < lower:
        return lower
    if w > upper:
        return upper
    return w


@numba.njit(cache=True, nogil=True, inline="always")
def _score_given_weight(g, h, w, reg_lambda):
    if h <= 0.0:
        return np.float32(0.0)
    # float32 operations in xgboost's order (CalcGainGivenWeight<float>)
    return -(np.float32(2.0) * np.float32(g) * w + (np.float32(h) + reg_lambda) * (w * w))


@numba.njit(cache=True, nogil=True, inline="always")
def _monotone_gain(left_g, left_h, right_g, right_h, parent_score, lower, upper, constraint,
                   params):
    if left_h < params[2] or right_h < params[2]:
        return -np.inf
    w_left = _bounded_weight(left_g, left_h, lower, upper, params)
    w_right = _bounded_weight(right_g, right_h, lower, upper, params)
    if (constraint > 0 and not w_left <= w_right) or (constraint < 0 and not w_left >= w_right):
        return -np.inf
    reg_lambda = np.float32(params[0])
    gain = (_score_given_weight(left_g, left_h, w_left, reg_lambda)
            + _score_given_weight(right_g, right_h, w_right, reg_lambda))
    return np.float64(gain - parent_score)


def _splits_body(hists, n_bins, node_sums, parent_scores, params, allowed_features, out_gain,
                 out_bin, out_default_left, out_left_sums):
    n_features = hists.shape[1]
    for task in numba.prange(hists.shape[0] * n_features):
        j = task // n_features
        f = task % n_features
        sum_gradient = node_sums[j, 0]
        sum_hessian = node_sums[j, 1]
        parent_score = parent_scores[j]
        best_gain = -np.inf
        best_bin = -1
        best_default_left = 0
        best_g = 0.0
        best_h = 0.0
        if allowed_features[j, f]:
            nb = n_bins[f]
            left_g = 0.0
            left_h = 0.0
            for b in range(nb):
                if b > 0 and hists[j, f, b, 0] == 0.0 and hists[j, f, b, 1] == 0.0:
                    continue  # an empty bin: the same sums and gain (splitting_cython)
                left_g += hists[j, f, b, 0]
                left_h += hists[j, f, b, 1]
                gain = _gain(left_g, left_h, sum_gradient - left_g, sum_hessian - left_h,
                             parent_score, params)
                if gain > best_gain:
                    best_gain = gain
                    best_bin = b
                    best_g = left_g
                    best_h = left_h
            if hists[j, f, nb, 0] != 0.0 or hists[j, f, nb, 1] != 0.0:
                right_g = 0.0
                right_h = 0.0
                for b in range(nb - 1, -1, -1):
                    if b < nb - 1 and hists[j, f, b, 0] == 0.0 and hists[j, f, b, 1] == 0.0:
                        continue
                    right_g += hists[j, f, b, 0]
                    right_h += hists[j, f, b, 1]
                    left_g = sum_gradient - right_g
                    left_h = sum_hessian - right_h
                    gain = _gain(left_g, left_h, right_g, right_h, parent_score, params)
                    if gain > best_gain:
                        best_gain = gain
                        best_bin = b - 1
                        best_default_left = 1
                        best_g = left_g
                        best_h = left_h
        out_gain[j, f] = best_gain
        out_bin[j, f] = best_bin
        out_default_left[j, f] = best_default_left
        out_left_sums[j, f, 0] = best_g
        out_left_sums[j, f, 1] = best_h


_splits_serial = numba.njit(cache=True, nogil=True)(_splits_body)
_splits_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_splits_body)


def _splits_monotone_body(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                          monotone, node_bounds, out_gain, out_bin, out_default_left,
                          out_left_sums):
    n_features = hists.shape[1]
    for task in numba.prange(hists.shape[0] * n_features):
        j = task // n_features
        f = task % n_features
        sum_gradient = node_sums[j, 0]
        sum_hessian = node_sums[j, 1]
        parent_score = np.float32(parent_scores[j])
        lower = np.float32(node_bounds[j, 0])
        upper = np.float32(node_bounds[j, 1])
        constraint = monotone[f]
        best_gain = -np.inf
        best_bin = -1
        best_default_left = 0
        best_g = 0.0
        best_h = 0.0
        if allowed_features[j, f]:
            nb = n_bins[f]
            left_g = 0.0
            left_h = 0.0
            for b in range(nb):
                if b > 0 and hists[j, f, b, 0] == 0.0 and hists[j, f, b, 1] == 0.0:
                    continue
                left_g += hists[j, f, b, 0]
                left_h += hists[j, f, b, 1]
                gain = _monotone_gain(left_g, left_h, sum_gradient - left_g,
                                      sum_hessian - left_h, parent_score, lower, upper,
                                      constraint, params)
                if gain > best_gain:
                    best_gain = gain
                    best_bin = b
                    best_g = left_g
                    best_h = left_h
            if hists[j, f, nb, 0] != 0.0 or hists[j, f, nb, 1] != 0.0:
                right_g = 0.0
                right_h = 0.0
                for b in range(nb - 1, -1, -1):
                    if b < nb - 1 and hists[j, f, b, 0] == 0.0 and hists[j, f, b, 1] == 0.0:
                        continue
                    right_g += hists[j, f, b, 0]
                    right_h += hists[j, f, b, 1]
                    left_g = sum_gradient - right_g
                    left_h = sum_hessian - right_h
                    gain = _monotone_gain(left_g, left_h, right_g, right_h, parent_score, lower,
                                          upper, constraint, params)
                    if gain > best_gain:
                        best_gain = gain
                        best_bin = b - 1
                        best_default_left = 1
                        best_g = left_g
                        best_h = left_h
        out_gain[j, f] = best_gain
        out_bin[j, f] = best_bin
        out_default_left[j, f] = best_default_left
        out_left_sums[j, f, 0] = best_g
        out_left_sums[j, f, 1] = best_h


_splits_monotone_serial = numba.njit(cache=True, nogil=True)(_splits_monotone_body)
_splits_monotone_parallel = numba.njit(cache=True, nogil=True,
                                       parallel=True)(_splits_monotone_body)


def find_best_splits(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                     out_gain, out_bin, out_default_left, out_left_sums, n_threads):
    """Best split per node and feature (see :func:`splitting_numpy.find_best_splits`)."""
    args = (hists, n_bins, node_sums, parent_scores, params, allowed_features, out_gain, out_bin,
            out_default_left, out_left_sums)
    n_slots = hists.shape[0] * hists.shape[1] * hists.shape[2]
    if n_threads <= 1 or n_slots < parallel_minimum(PARALLEL_MIN_WORK):
        _splits_serial(*args)
        return
    with numba_threads(n_threads):
        _splits_parallel(*args)


def find_best_splits_monotone(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                              monotone, node_bounds, out_gain, out_bin, out_default_left,
                              out_left_sums, n_threads):
    """Best split per node and feature under monotone constraints.

    See :func:`splitting_numpy.find_best_splits_monotone`.
    """
    args = (hists, n_bins, node_sums, parent_scores, params, allowed_features, monotone,
            node_bounds, out_gain, out_bin, out_default_left, out_left_sums)
    n_slots = hists.shape[0] * hists.shape[1] * hists.shape[2]
    if n_threads <= 1 or n_slots < parallel_minimum(PARALLEL_MIN_WORK):
        _splits_monotone_serial(*args)
        return
    with numba_threads(n_threads):
        _splits_monotone_parallel(*args)
