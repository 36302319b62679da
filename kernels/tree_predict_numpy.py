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

The *complete layout* (:func:`complete_layout`, read by :func:`predict_complete`)
stores a tree of depth :math:`D` as the complete binary tree of that depth in
heap order: internal slot :math:`k` has children :math:`2k + 1` (left) and
:math:`2k + 2` (right), and the :math:`2^D` leaf slots follow, so a row
descends by arithmetic alone,

.. math:: k \leftarrow 2k + 1 + [\text{goes right}],

exactly :math:`D` steps, and ends in leaf slot :math:`k - (2^D - 1)`. A leaf of
the tree above depth :math:`D` becomes internal slots that send rows either way
(feature 0, threshold 0) over copies of its value in every leaf slot below it,
so the answer is the same bits as :func:`predict_raw`. Per slot, ``node_split``
(int32) holds the feature, with bit 31 set when missing values go right, and
``node_threshold`` (float32) the threshold: a row goes right when
``x >= threshold``, or when ``x`` is NaN and bit 31 is set. No child indices, no
branch on leaves, and the block of rows of the compiled kernels walks a tree
in lockstep (the Cython kernel eight rows per AVX2 instruction where the CPU
has it). Trees deeper than :data:`COMPLETE_MAX_DEPTH` would take too many
slots: the forest then uses :func:`predict_raw`.
"""

import numpy as np

# Fastest first, as measured by benchmarks/test_bench_boosting.py, default size
# (predict 200k x 28, 100 trees of depth 6, 2 threads, idle machine): Cython 0.071 s,
# Numba 0.380 s (xgboost 0.105 s). predict_complete, same model and rows, one thread,
# shared machine, medians of 5 interleaved: Cython (AVX-512) 0.187 s, node arrays 0.350 s,
# xgboost 0.451 s; the Numba kernel about 1.2x xgboost.
AUTO_BACKEND_ORDER = {
    "predict_raw": ("cython", "numba", "numpy"),
    "predict_complete": ("cython", "numba", "numpy"),
    "predict_binned": ("cython", "numba", "numpy"),
}

# Deepest tree stored in the complete layout: 2**10 - 1 internal and 2**10 leaf slots
# (12 KB per tree, within a core's L1 cache).
COMPLETE_MAX_DEPTH = 10
# Bit 31 of ``node_split``: missing values go right.
MISSING_RIGHT = np.int32(np.iinfo(np.int32).min)
FEATURE_MASK = np.int32(np.iinfo(np.int32).max)


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


def _complete_tree(feature, threshold, default_left, left, right, value, root, max_depth):
    """One tree in the complete layout: (node_split, node_threshold, leaf_value), or None
    when the tree is deeper than ``max_depth``."""
    slots = np.array([root], dtype=np.intp)  # the tree's node in every slot of a level
    splits, thresholds = [], []
    for _ in range(max_depth + 1):
        is_leaf = left[slots] == -1
        if is_leaf.all():
            leaf_value = np.asarray(value[slots], dtype=np.float32)
            empty = np.empty(0)
            return (np.concatenate(splits + [empty]).astype(np.int32),
                    np.concatenate(thresholds + [empty]).astype(np.float32), leaf_value)
        split = np.where(is_leaf, 0, feature[slots]).astype(np.int32)
        missing_right = ~is_leaf & (default_left[slots] == 0)
        splits.append(np.where(missing_right, split | MISSING_RIGHT, split))
        thresholds.append(np.where(is_leaf, np.float32(0.0), threshold[slots]).astype(np.float32))
        children = np.empty(2 * slots.shape[0], dtype=np.intp)
        children[0::2] = np.where(is_leaf, slots, left[slots])  # a leaf fills both halves
        children[1::2] = np.where(is_leaf, slots, right[slots])
        slots = children
    return None


def complete_layout(feature, threshold, default_left, left, right, value, tree_roots,
                    max_depth=COMPLETE_MAX_DEPTH):
    """The forest in the complete layout (see the module notes), or None if a tree is deeper
    than ``max_depth``.

    Returns
    -------
    layout : dict or None
        ``node_split`` (int32), ``node_threshold`` (float32), ``leaf_value``
        (float32) over all trees, and per tree ``tree_node_starts``,
        ``tree_leaf_starts`` and ``tree_depths`` (intp).
    """
    trees = [_complete_tree(feature, threshold, default_left, left, right, value, root,
                            max_depth) for root in tree_roots]
    if any(tree is None for tree in trees):
        return None
    n_internal = np.array([tree[0].shape[0] for tree in trees], dtype=np.intp)
    n_leaves = np.array([tree[2].shape[0] for tree in trees], dtype=np.intp)
    starts = lambda sizes: np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    join = lambda i, dtype: (np.concatenate([tree[i] for tree in trees]) if trees
                             else np.empty(0, dtype=dtype))
    return {"node_split": join(0, np.int32), "node_threshold": join(1, np.float32),
            "leaf_value": join(2, np.float32),
            "tree_node_starts": starts(n_internal) if trees else np.empty(0, np.intp),
            "tree_leaf_starts": starts(n_leaves) if trees else np.empty(0, np.intp),
            "tree_depths": np.log2(np.maximum(n_leaves, 1)).round().astype(np.intp)}


def predict_complete(X, node_split, node_threshold, leaf_value, tree_node_starts,
                     tree_leaf_starts, tree_depths, tree_groups, out, n_threads):
    """:func:`predict_raw` on the complete layout: every row takes exactly the tree's depth
    in steps, ``k = 2k + 1 + goes_right``."""
    rows = np.arange(X.shape[0])
    for t in range(tree_node_starts.shape[0]):
        k = np.zeros(X.shape[0], dtype=np.intp)  # slot within the tree
        nodes = node_split[tree_node_starts[t]:]
        thresholds = node_threshold[tree_node_starts[t]:]
        for _ in range(tree_depths[t]):
            split = nodes[k]
            x = X[rows, split & FEATURE_MASK]
            goes_right = np.where(np.isnan(x), split < 0, x >= thresholds[k])
            k = 2 * k + 1 + goes_right
        first_leaf = 2 ** int(tree_depths[t]) - 1
        out[:, tree_groups[t]] += leaf_value[tree_leaf_starts[t] + k - first_leaf].astype(np.float64)
