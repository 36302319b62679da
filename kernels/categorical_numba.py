r"""Categorical splits of gradient boosting: the Numba kernels.

The loops of :mod:`categorical_numpy` (one-hot scan, or the forward and
backward scans over the categories sorted by leaf weight), with xgboost's
float32 roundings. The split search runs in parallel over the (node,
categorical feature) pairs of a level, the partition over the level's nodes
and the prediction over blocks of rows: each task is computed alone, so the
thread count cannot change the answer.
"""

import numba
import numpy as np

from ._constants import FAMILIES, THRESHOLDS
from ._threads import numba_threads, parallel_minimum
from .splitting_numba import _leaf_weight, _node_score

_SHARED = FAMILIES["categorical"]  # shared with categorical_cython
BLOCK = _SHARED["BLOCK"]  # rows per prediction task
# Below these, one thread (as splitting_numba and partition_numba): a parallel region
# costs more than the work, above all when other processes share the cores.
PARALLEL_MIN_WORK = THRESHOLDS["categorical"]["PARALLEL_MIN_WORK"]  # histogram slots of a level
PARALLEL_MIN_ROWS = THRESHOLDS["categorical"]["PARALLEL_MIN_ROWS"]  # rows partitioned


@numba.njit(cache=True, nogil=True, inline="always")
def _split_gain(left_g, left_h, right_g, right_h, parent_score, params):
    """The numeric splits' gain (splitting_numba._gain), -inf when a child is too light."""
    if left_h < params[2] or right_h < params[2]:
        return -np.inf
    total = (np.float64(_node_score(left_g, left_h, params))
             + np.float64(_node_score(right_g, right_h, params)) - parent_score)
    return np.float64(np.float32(total))


@numba.njit(cache=True, nogil=True)
def _search(hists, n_bins, features, node_sums, parent_scores, params, allowed_features,
            max_cat_to_onehot, max_cat_threshold, out_gain, out_default_left, out_left_sums,
            out_categories, task):
    n_cat = features.shape[0]
    j = task // n_cat
    i = task % n_cat
    f = features[i]
    for c in range(out_categories.shape[2]):
        out_categories[j, i, c] = 0
    out_gain[j, f] = -np.inf
    out_default_left[j, f] = 0
    out_left_sums[j, f, 0] = 0.0
    out_left_sums[j, f, 1] = 0.0
    if not allowed_features[j, f]:
        return
    sum_g = node_sums[j, 0]
    sum_h = node_sums[j, 1]
    parent = parent_scores[j]
    nb = n_bins[f]
    best = 0.0
    best_default_left = 0
    best_g = 0.0
    best_h = 0.0
    if nb < max_cat_to_onehot:
        feature_g = 0.0
        feature_h = 0.0
        for c in range(nb):
            feature_g += hists[j, f, c, 0]
            feature_h += hists[j, f, c, 1]
        missing_g = sum_g - feature_g
        missing_h = sum_h - feature_h
        best_c = -1
        for c in range(nb):
            for default_left in (1, 0):
                right_g = hists[j, f, c, 0]
                right_h = hists[j, f, c, 1]
                if default_left == 0:
                    right_g += missing_g
                    right_h += missing_h
                left_g = sum_g - right_g
                left_h = sum_h - right_h
                gain = _split_gain(left_g, left_h, right_g, right_h, parent, params)
                if gain > best and gain != np.inf:
                    best = gain
                    best_c = c
                    best_default_left = default_left
                    best_g = left_g
                    best_h = left_h
        if best_c >= 0:
            out_categories[j, i, best_c] = 1
    else:
        weights = np.empty(nb, dtype=np.float32)
        for c in range(nb):
            weights[c] = _leaf_weight(hists[j, f, c, 0], hists[j, f, c, 1], params)
        order = np.argsort(weights, kind="mergesort")  # stable, as xgboost's stable_sort
        n = min(max_cat_threshold, nb)
        n_right = 0
        right_g = 0.0
        right_h = 0.0
        for k in range(n - 1):  # forward: order[0..k] right, missing left
            right_g += hists[j, f, order[k], 0]
            right_h += hists[j, f, order[k], 1]
            left_g = sum_g - right_g
            left_h = sum_h - right_h
            gain = _split_gain(left_g, left_h, right_g, right_h, parent, params)
            if gain > best and gain != np.inf:
                best = gain
                n_right = k + 1
                best_default_left = 1
                best_g = left_g
                best_h = left_h
        forward = best
        backward = 0.0
        left_g = 0.0
        left_h = 0.0
        for k in range(nb - 1, nb - n, -1):  # backward: order[k..] left, the rest right
            left_g += hists[j, f, order[k], 0]
            left_h += hists[j, f, order[k], 1]
            gain = _split_gain(left_g, left_h, sum_g - left_g, sum_h - left_h, parent, params)
            if gain > backward and gain != np.inf:
                backward = gain
                if backward > forward:
                    best = gain
                    n_right = k
                    best_default_left = 0
                    best_g = left_g
                    best_h = left_h
        for k in range(n_right):
            out_categories[j, i, order[k]] = 1
    if best > 0.0:
        out_gain[j, f] = best
        out_default_left[j, f] = best_default_left
        out_left_sums[j, f, 0] = best_g
        out_left_sums[j, f, 1] = best_h


def _find_body(hists, n_bins, features, node_sums, parent_scores, params, allowed_features,
               max_cat_to_onehot, max_cat_threshold, out_gain, out_default_left, out_left_sums,
               out_categories):
    for task in numba.prange(hists.shape[0] * features.shape[0]):
        _search(hists, n_bins, features, node_sums, parent_scores, params, allowed_features,
                max_cat_to_onehot, max_cat_threshold, out_gain, out_default_left, out_left_sums,
                out_categories, task)


_find_serial = numba.njit(cache=True, nogil=True)(_find_body)
_find_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_find_body)


def find_categorical_splits(hists, n_bins, features, node_sums, parent_scores, params,
                            allowed_features, max_cat_to_onehot, max_cat_threshold, out_gain,
                            out_default_left, out_left_sums, out_categories, n_threads):
    """Best categorical split per node and feature
    (see :func:`categorical_numpy.find_categorical_splits`)."""
    args = (hists, n_bins, features, node_sums, parent_scores, params, allowed_features,
            np.intp(max_cat_to_onehot), np.intp(max_cat_threshold), out_gain, out_default_left,
            out_left_sums, out_categories)
    work = hists.shape[0] * features.shape[0] * hists.shape[2]
    if n_threads <= 1 or work < parallel_minimum(PARALLEL_MIN_WORK):
        _find_serial(*args)
        return
    with numba_threads(n_threads):
        _find_parallel(*args)


def _partition_body(binned_columns, rows, starts, stops, features, categories, default_left, n_bins,
               scratch, out_n_left):
    width = categories.shape[1]
    for j in numba.prange(starts.shape[0]):
        f = features[j]
        missing = n_bins[f]
        n_left = starts[j]
        n_right = starts[j]
        for p in range(starts[j], stops[j]):
            row = rows[p]
            code = np.intp(binned_columns[row, f])
            if code == missing:
                right = default_left[j] == 0
            else:
                right = code < width and categories[j, code] != 0
            if right:
                scratch[n_right] = row
                n_right += 1
            else:
                rows[n_left] = row  # never ahead of p: left rows keep their order in place
                n_left += 1
        for p in range(n_right - starts[j]):
            rows[n_left + p] = scratch[starts[j] + p]
        out_n_left[j] = n_left - starts[j]


_partition_serial = numba.njit(cache=True, nogil=True)(_partition_body)
_partition_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_partition_body)


def partition_rows_categorical(binned_columns, rows, starts, stops, features, categories,
                               default_left, n_bins, scratch, out_n_left, n_threads):
    """Stable partition by category sets (see :func:`categorical_numpy.partition_rows_categorical`)."""
    args = (binned_columns, rows, starts, stops, features, categories, default_left, n_bins,
            scratch, out_n_left)
    if n_threads <= 1 or int(np.sum(stops - starts)) < parallel_minimum(PARALLEL_MIN_ROWS):
        _partition_serial(*args)
        return
    with numba_threads(n_threads):
        _partition_parallel(*args)


@numba.njit(cache=True, nogil=True, parallel=True)
def _predict(X, feature, threshold, default_left, left, right, value, node_cat, cat_sets,
             tree_roots, tree_groups, out):
    n_rows = X.shape[0]
    width = cat_sets.shape[1]
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for block in numba.prange(n_blocks):
        start = block * BLOCK
        stop = min(start + BLOCK, n_rows)
        for t in range(tree_roots.shape[0]):
            root = tree_roots[t]
            group = tree_groups[t]
            for i in range(start, stop):
                k = root
                while left[k] != -1:
                    x = X[i, feature[k]]
                    if np.isnan(x):
                        go_left = default_left[k] != 0
                    elif node_cat[k] >= 0:
                        go_left = not (x >= 0 and x < width
                                       and cat_sets[node_cat[k], np.intp(x)] != 0)
                    else:
                        go_left = x < threshold[k]
                    k = left[k] if go_left else right[k]
                out[i, group] += np.float64(value[k])


def predict_raw_categorical(X, feature, threshold, default_left, left, right, value, node_cat,
                            cat_sets, tree_roots, tree_groups, out, n_threads):
    """Forest prediction with categorical nodes
    (see :func:`categorical_numpy.predict_raw_categorical`)."""
    with numba_threads(n_threads):
        _predict(X, feature, threshold, default_left, left, right, value, node_cat, cat_sets,
                 tree_roots, tree_groups, out)
