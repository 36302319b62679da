r"""Categorical splits of gradient boosting (xgboost ``hist``): the readable reference.

A categorical feature with categories :math:`0, \dots, C - 1` (bin ``c`` of
the histogram holds the rows of category ``c``; slot ``C`` the missing rows)
is split by a *set* of categories: rows whose category is in the set go
right, the others left, missing rows to the learned default side. As in
xgboost (``src/tree/hist/evaluate_splits.h``), with :math:`G, H` the node's
gradient and hessian sums and :math:`(G_c, H_c)` category ``c``'s:

*One-hot splits* (:math:`C <` ``max_cat_to_onehot``): the set is one
category. For each ``c`` in order, two candidates: right :math:`= (G_c, H_c)`
with the missing rows left, then right :math:`= (G_c, H_c) + (G_m, H_m)`
with them right, where :math:`(G_m, H_m) = (G, H) - \sum_c (G_c, H_c)`.

*Partition splits* (otherwise): the categories are sorted (stably) by their
leaf weight :math:`w_c = -T_\alpha(G_c) / (H_c + \lambda)` (xgboost's
``CalcWeight``, float32; 0 when :math:`H_c <` ``min_child_weight``). With
:math:`n = \min(` ``max_cat_threshold`` :math:`, C)` and :math:`s_0, s_1, \dots`
the sorted categories, a forward scan puts :math:`s_0 .. s_j` right
(:math:`j = 0 .. n - 2`), the missing rows left; a backward scan puts
:math:`s_j .. s_{C-1}` left (:math:`j = C - 1` down to :math:`C - n + 1`),
so :math:`s_0 .. s_{j-1}` and the missing rows right. Both scans send a
prefix of the sorted order right (Fisher, 1958: for a convex loss the best
binary partition of ordered categories is contiguous).

The gain of a candidate is computed as the numeric splits' gain
(:mod:`splitting_numpy`: float32 scores summed in float64, the gain rounded
to float32), so that equal partitions of a node's rows by a numeric and a
categorical feature get equal gains and the tie goes to the smaller feature
index, as in xgboost; -inf when a child's hessian sum is below
``min_child_weight``. A candidate replaces the best so far only
when strictly better (ties to the first one met), and only gains above 0
count, as xgboost's ``SplitEntry``.

Prediction (:func:`predict_raw_categorical`) applies xgboost's ``Decision``
on raw values: NaN takes the default side; a value ``x`` of a categorical
node goes right when ``0 <= x < width`` and category ``int(x)`` is in the
node's set, else left (so categories never seen in training, negative or
too large values go left).
"""

import numpy as np

from .splitting_numpy import MIN_CHILD_WEIGHT, _candidate_gains, leaf_weight, node_score

# Fastest first: the benchmark's problem (5 numeric + 5 category columns of 50 levels),
# 100k rows, 30 trees of depth 6, 2 threads, 2-core machine shared (load 6), best of 2:
# fit Cython 0.49 s, Numba 0.67 s; predict 50k rows Cython 0.093 s, Numba 0.141 s.
AUTO_BACKEND_ORDER = {
    "find_categorical_splits": ("cython", "numba", "numpy"),
    "partition_rows_categorical": ("cython", "numba", "numpy"),
    "predict_raw_categorical": ("cython", "numba", "numpy"),
}


def split_gain(left_g, left_h, right_g, right_h, parent_score, params):
    """The gain of one candidate (the numeric splits' rounding), -inf when a child is too light."""
    if left_h < params[MIN_CHILD_WEIGHT] or right_h < params[MIN_CHILD_WEIGHT]:
        return -np.inf
    total = (float(node_score(left_g, left_h, params)) + float(node_score(right_g, right_h, params))
             - float(parent_score))
    return float(np.float32(total))


def _first_best(gains):
    """Index of the first maximum of ``gains`` (scan order), or -1 when none is above 0."""
    if gains.size == 0:
        return -1
    i = int(np.argmax(gains))
    return i if gains[i] > 0.0 and np.isfinite(gains[i]) else -1


def _one_hot(bins, sum_g, sum_h, parent_score, params):
    """Best one-hot split: (gain, category, default_left, left_g, left_h)."""
    missing_g = sum_g - np.add.accumulate(bins[:, 0])[-1]
    missing_h = sum_h - np.add.accumulate(bins[:, 1])[-1]
    # Scan order: category 0 with the missing rows left, then right; category 1; ...
    right_g = np.column_stack([bins[:, 0], bins[:, 0] + missing_g]).reshape(-1)
    right_h = np.column_stack([bins[:, 1], bins[:, 1] + missing_h]).reshape(-1)
    left_g, left_h = sum_g - right_g, sum_h - right_h
    gains = _candidate_gains(left_g, left_h, right_g, right_h, parent_score, params)
    i = _first_best(gains)
    if i < 0:
        return 0.0, -1, 0, 0.0, 0.0
    return float(gains[i]), i // 2, 1 - i % 2, left_g[i], left_h[i]


def _partition(bins, sum_g, sum_h, parent_score, params, max_cat_threshold):
    """Best partition split: (gain, sorted order, n_right, default_left, left_g, left_h)."""
    n_cats = bins.shape[0]
    order = np.argsort(leaf_weight(bins[:, 0], bins[:, 1], params), kind="stable")
    n = min(max_cat_threshold, n_cats)
    ordered = bins[order]
    # Forward: s_0..s_j right (j = 0..n-2), the missing rows left.
    right = np.cumsum(ordered[:n - 1], axis=0).reshape(-1, 2)
    forward = _candidate_gains(sum_g - right[:, 0], sum_h - right[:, 1], right[:, 0],
                               right[:, 1], parent_score, params)
    # Backward: s_j.. left (j = C-1 down to C-n+1), s_0..s_{j-1} and the missing rows right.
    left = np.cumsum(ordered[::-1][:n - 1], axis=0).reshape(-1, 2)
    backward = _candidate_gains(left[:, 0], left[:, 1], sum_g - left[:, 0], sum_h - left[:, 1],
                                parent_score, params)
    best = (0.0, order, 0, 0, 0.0, 0.0)
    j = _first_best(forward)
    if j >= 0:
        best = (float(forward[j]), order, j + 1, 1, sum_g - right[j, 0], sum_h - right[j, 1])
    t = _first_best(backward)
    if t >= 0 and backward[t] > best[0]:  # replaces the forward winner only if strictly better
        best = (float(backward[t]), order, n_cats - 1 - t, 0, left[t, 0], left[t, 1])
    return best


def find_categorical_splits(hists, n_bins, features, node_sums, parent_scores, params,
                            allowed_features, max_cat_to_onehot, max_cat_threshold, out_gain,
                            out_default_left, out_left_sums, out_categories, n_threads):
    """Best split of each node (one tree level) along each categorical feature.

    Parameters
    ----------
    hists : ndarray of shape (k, d, n_slots, 2), float64
        The nodes' histograms; bin ``c`` of a categorical feature is category ``c``.
    n_bins : ndarray of shape (d,), intp
        Categories of each feature (``C``: bins 0..C-1; slot ``C`` is missing).
    features : ndarray of shape (m,), intp
        The categorical features (only these are searched and written).
    node_sums : ndarray of shape (k, 2), float64
    parent_scores : ndarray of shape (k,), float64
    params : ndarray of shape (4,), float64
        ``[reg_lambda, reg_alpha, min_child_weight, max_delta_step]``.
    allowed_features : ndarray of shape (k, d), uint8
    max_cat_to_onehot, max_cat_threshold : int
    out_gain : ndarray of shape (k, d), float64
        Written at ``features``: the best gain (-inf: no split with gain > 0).
    out_default_left : ndarray of shape (k, d), uint8
        Written at ``features``: 1 if missing rows go left.
    out_left_sums : ndarray of shape (k, d, 2), float64
        Written at ``features``: the left child's sums.
    out_categories : ndarray of shape (k, m, n_slots), uint8
        Written: 1 for the categories that go right (all 0 when no split).
    n_threads : int
        Ignored.
    """
    for j in range(hists.shape[0]):
        sum_g, sum_h = node_sums[j]
        for i, f in enumerate(features):
            out_gain[j, f] = -np.inf
            out_default_left[j, f] = 0
            out_left_sums[j, f] = 0.0
            out_categories[j, i] = 0
            if not allowed_features[j, f]:
                continue
            bins = hists[j, f, :n_bins[f]]
            if n_bins[f] < max_cat_to_onehot:
                gain, c, default_left, left_g, left_h = _one_hot(
                    bins, sum_g, sum_h, parent_scores[j], params)
                if c >= 0:
                    out_categories[j, i, c] = 1
            else:
                gain, order, n_right, default_left, left_g, left_h = _partition(
                    bins, sum_g, sum_h, parent_scores[j], params, max_cat_threshold)
                out_categories[j, i, order[:n_right]] = 1
            if gain > 0.0:
                out_gain[j, f] = gain
                out_default_left[j, f] = default_left
                out_left_sums[j, f] = left_g, left_h


def partition_rows_categorical(binned_columns, rows, starts, stops, features, categories,
                               default_left, n_bins, scratch, out_n_left, n_threads):
    """Stable partition of each node's rows by a category set (left rows first).

    Parameters
    ----------
    binned_columns : ndarray of shape (n, d), uint8
    rows : ndarray of shape (n,), intp
        Reordered in place: segment ``starts[j]:stops[j]`` of node ``j``.
    starts, stops, features : ndarray of shape (k,), intp
    categories : ndarray of shape (k, n_slots), uint8
        1 for the categories of node ``j`` that go right.
    default_left : ndarray of shape (k,), uint8
    n_bins : ndarray of shape (d,), intp
        Missing code of each feature.
    scratch : ndarray of shape (n,), intp
        Work array.
    out_n_left : ndarray of shape (k,), intp
        Written: rows that went left.
    n_threads : int
        Ignored.
    """
    for j in range(starts.shape[0]):
        segment = rows[starts[j]:stops[j]]
        f = features[j]
        codes = binned_columns[segment, f].astype(np.intp)
        missing = codes == n_bins[f]
        goes_right = np.where(missing, default_left[j] == 0,
                              categories[j, np.minimum(codes, categories.shape[1] - 1)] != 0)
        n_left = int(np.count_nonzero(~goes_right))
        scratch[:segment.shape[0]] = np.concatenate([segment[~goes_right], segment[goes_right]])
        segment[:] = scratch[:segment.shape[0]]
        out_n_left[j] = n_left


def predict_raw_categorical(X, feature, threshold, default_left, left, right, value, node_cat,
                            cat_sets, tree_roots, tree_groups, out, n_threads):
    """Add each tree's leaf value for the rows of ``X`` (float32) to ``out`` (n, k).

    As :func:`tree_predict_numpy.predict_raw`, plus categorical nodes:
    ``node_cat[k] >= 0`` is the row of ``cat_sets`` (uint8, (m, width)) that
    holds node ``k``'s set; a value goes right when it is a category of the set.
    """
    width = cat_sets.shape[1]
    for root, group in zip(tree_roots, tree_groups):
        node = np.full(X.shape[0], root, dtype=np.intp)
        active = np.flatnonzero(left[node] != -1)
        while active.size:
            current = node[active]
            x = X[active, feature[current]]
            cat = node_cat[current]
            in_range = (x >= 0) & (x < width)
            code = np.where(in_range, x, 0).astype(np.intp)
            in_set = in_range & (cat_sets[np.maximum(cat, 0), code] != 0)
            goes_left = np.where(cat >= 0, ~in_set, x < threshold[current])
            goes_left = np.where(np.isnan(x), default_left[current] != 0, goes_left)
            node[active] = np.where(goes_left, left[current], right[current])
            active = active[left[node[active]] != -1]
        out[:, group] += value[node].astype(np.float64)


def _predict_raw_categorical_naive(X, feature, threshold, default_left, left, right, value,
                                   node_cat, cat_sets, tree_roots, tree_groups, out, n_threads):
    """Loop twin of :func:`predict_raw_categorical`: one row, one node at a time."""
    for i in range(X.shape[0]):
        for root, group in zip(tree_roots, tree_groups):
            k = root
            while left[k] != -1:
                x = X[i, feature[k]]
                if np.isnan(x):
                    go_left = default_left[k] != 0
                elif node_cat[k] >= 0:
                    go_left = not (0 <= x < cat_sets.shape[1] and cat_sets[node_cat[k], int(x)])
                else:
                    go_left = x < threshold[k]
                k = left[k] if go_left else right[k]
            out[i, group] += float(value[k])


def _find_categorical_splits_naive(hists, n_bins, features, node_sums, parent_scores, params,
                                   allowed_features, max_cat_to_onehot, max_cat_threshold,
                                   out_gain, out_default_left, out_left_sums, out_categories,
                                   n_threads):
    """Loop twin of :func:`find_categorical_splits`: one candidate at a time, as xgboost."""
    for j in range(hists.shape[0]):
        sum_g, sum_h = node_sums[j]
        for i, f in enumerate(features):
            out_gain[j, f], out_default_left[j, f] = -np.inf, 0
            out_left_sums[j, f] = 0.0
            out_categories[j, i] = 0
            if not allowed_features[j, f]:
                continue
            bins, nb = hists[j, f], n_bins[f]
            best = (0.0, 0, 0.0, 0.0)  # gain, default_left, left sums
            if nb < max_cat_to_onehot:
                missing = (sum_g - sum(bins[:nb, 0]), sum_h - sum(bins[:nb, 1]))
                chosen = -1
                for c in range(nb):
                    for default_left, extra in ((1, (0.0, 0.0)), (0, missing)):
                        rg, rh = bins[c, 0] + extra[0], bins[c, 1] + extra[1]
                        gain = split_gain(sum_g - rg, sum_h - rh, rg, rh, parent_scores[j], params)
                        if gain > best[0]:
                            best, chosen = (gain, default_left, sum_g - rg, sum_h - rh), c
                if chosen >= 0:
                    out_categories[j, i, chosen] = 1
            else:
                weights = [float(leaf_weight(bins[c, 0], bins[c, 1], params)) for c in range(nb)]
                order = sorted(range(nb), key=lambda c: weights[c])  # stable
                n = min(max_cat_threshold, nb)
                n_right, rg, rh = 0, 0.0, 0.0
                for k in range(n - 1):
                    rg, rh = rg + bins[order[k], 0], rh + bins[order[k], 1]
                    gain = split_gain(sum_g - rg, sum_h - rh, rg, rh, parent_scores[j], params)
                    if gain > best[0]:
                        best, n_right = (gain, 1, sum_g - rg, sum_h - rh), k + 1
                forward, backward, lg, lh = best[0], 0.0, 0.0, 0.0
                for k in range(nb - 1, nb - n, -1):
                    lg, lh = lg + bins[order[k], 0], lh + bins[order[k], 1]
                    gain = split_gain(lg, lh, sum_g - lg, sum_h - lh, parent_scores[j], params)
                    if gain > backward:
                        backward = gain
                        if gain > forward:
                            best, n_right = (gain, 0, lg, lh), k
                out_categories[j, i, order[:n_right]] = 1
            if best[0] > 0.0:
                out_gain[j, f], out_default_left[j, f] = best[0], best[1]
                out_left_sums[j, f] = best[2], best[3]
