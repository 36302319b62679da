r"""Prediction of a forest of binary trees: the readable reference.

A forest is stored flat, one entry per node over all trees (xgboost's JSON
model and scikit-learn's ``TreePredictor`` do the same):

- ``feature[k]``: the feature tested by node ``k`` (-1 on leaves);
- ``threshold[k]`` (float32): rows with ``x < threshold`` go left (xgboost's
  ``split_condition``); ``bin_threshold[k]``: the same test on binned data,
  ``bin <= bin_threshold``;
- ``default_left[k]``: where a missing value (NaN, or the missing bin) goes;
- ``left[k]``, ``right[k]``: the children (absolute node indices), -1 on leaves;
- ``value[k]`` (float32): the leaf value (learning rate already applied).

Tree ``t`` starts at node ``tree_roots[t]`` and adds its leaf value to output
column ``tree_groups[t]`` (one column per class in multiclass models). The
output is float64, summed over the trees in order, and is added to (the caller
fills it with the base margin first).
"""

import numpy as np

# Fastest first, as measured by benchmarks/test_bench_boosting.py, default size
# (predict 200k x 28, 100 trees of depth 6, 2 threads, idle machine): Cython 0.071 s,
# Numba 0.380 s (xgboost 0.105 s).
AUTO_BACKEND_ORDER = {
    "predict_raw": ("cython", "numba", "numpy"),
    "predict_binned": ("cython", "numba", "numpy"),
}


def _leaves(go_left_of, feature, left, right, root, n_rows):
    """Leaf reached by every row: all rows descend one level per step."""
    node = np.full(n_rows, root, dtype=np.intp)
    active = np.flatnonzero(left[node] != -1)
    while active.size:
        current = node[active]
        goes_left = go_left_of(active, feature[current], current)
        node[active] = np.where(goes_left, left[current], right[current])
        active = active[left[node[active]] != -1]
    return node


def predict_raw(X, feature, threshold, default_left, left, right, value, tree_roots,
                tree_groups, out, n_threads):
    """Add each tree's leaf value for the rows of ``X`` (float32, (n, d)) to ``out`` (n, k)."""
    def go_left_of(rows, features, nodes):
        x = X[rows, features]
        return np.where(np.isnan(x), default_left[nodes] != 0, x < threshold[nodes])

    for root, group in zip(tree_roots, tree_groups):
        leaves = _leaves(go_left_of, feature, left, right, root, X.shape[0])
        out[:, group] += value[leaves].astype(np.float64)


def predict_binned(binned, feature, bin_threshold, default_left, left, right, value, missing_bin,
                   tree_roots, tree_groups, out, n_threads):
    """:func:`predict_raw` on binned data (uint8 codes; ``missing_bin[f]`` marks missing)."""
    def go_left_of(rows, features, nodes):
        b = binned[rows, features].astype(np.intp)
        return np.where(b == missing_bin[features], default_left[nodes] != 0,
                        b <= bin_threshold[nodes])

    for root, group in zip(tree_roots, tree_groups):
        leaves = _leaves(go_left_of, feature, left, right, root, binned.shape[0])
        out[:, group] += value[leaves].astype(np.float64)


def _predict_raw_naive(X, feature, threshold, default_left, left, right, value, tree_roots,
                       tree_groups, out, n_threads):
    for i in range(X.shape[0]):
        for root, group in zip(tree_roots, tree_groups):
            k = root
            while left[k] != -1:
                x = X[i, feature[k]]
                go_left = default_left[k] if np.isnan(x) else x < threshold[k]
                k = left[k] if go_left else right[k]
            out[i, group] += float(value[k])
