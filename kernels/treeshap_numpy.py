r"""Exact TreeSHAP of a forest of binary trees: the readable reference.

SHAP values (Lundberg et al., 2018, "Consistent individualized feature
attribution for tree ensembles", Algorithm 2) split the margin of one row,
:math:`F(x) = \phi_0 + \sum_j \phi_j`, among the features. For one tree
:math:`f` and the features :math:`M = \{1..d\}`,

.. math::

    \phi_j = \sum_{S \subseteq M \setminus \{j\}}
             \frac{|S|!\,(d - |S| - 1)!}{d!}\,
             \big(f_x(S \cup \{j\}) - f_x(S)\big),

where :math:`f_x(S)` is the tree's expected output when the features in
:math:`S` take the row's values and the others follow the training data: at a
split on a feature outside :math:`S`, both children are followed, each
weighted by its share of the node's cover (hessian sum,
``cover[child] / cover[node]``). :math:`\phi_0` is :math:`f_x(\emptyset)`,
the cover-weighted mean of the leaf values.

Algorithm 2 computes all :math:`\phi_j` in one walk down the tree. It keeps,
for the path from the root to the current node, one element per distinct
feature split on: the feature, its *zero fraction* :math:`z` (share of the
cover that goes this way, the fraction of "feature unknown" paths that
reach the node) and *one fraction* :math:`o` (1 if the row goes this way,
else 0), and the weights :math:`w_i` of the subsets of each size :math:`i`.
EXTEND adds a feature to the path,

.. math::

    w_{i+1} \mathrel{+}= o\, w_i \frac{i + 1}{m + 1}, \qquad
    w_i \leftarrow z\, w_i \frac{m - i}{m + 1} \quad (i = m-1, \dots, 0),

UNWIND removes one (the inverse recursion), and at a leaf of value
:math:`v` each path feature :math:`j` receives
:math:`(o_j - z_j)\, v \sum_i w_i^{(-j)}`, with :math:`w^{(-j)}` the weights
with :math:`j` unwound. A feature split on twice along a path is unwound
first and extended again with the product of its fractions.

Interaction values (Lundberg et al., 2020, "From local explanations to global
understanding with explainable AI for trees"; xgboost's ``pred_interactions``)
come from the same walk *conditioned* on a feature :math:`i`: with
``condition=+1`` the walk only follows the row's branch at splits on
:math:`i` (feature :math:`i` known), with ``condition=-1`` it follows both by
cover (feature :math:`i` unknown), and :math:`i` itself is left off the path.
Then, as xgboost,

.. math::

    \Phi_{ij} = \tfrac12\big(\phi_j^{(i\ \mathrm{on})} - \phi_j^{(i\ \mathrm{off})}\big)
    \quad (j \ne i), \qquad
    \Phi_{ii} = \phi_i - \sum_{j \ne i} \Phi_{ij}.

Layout of the forest: as :mod:`fastscratch.kernels.tree_predict_numpy` (flat
nodes, ``x < threshold`` goes left, NaN follows ``default_left``), plus
``cover`` (float64, each node's hessian sum, > 0). Categorical splits, as
:func:`fastscratch.kernels.categorical_numpy.predict_raw_categorical`:
``node_cat[k] >= 0`` is the row of ``cat_sets`` (uint8, (m, width)) holding
node ``k``'s category set; a value :math:`x` (a category code) goes right
when :math:`0 \le x < \mathrm{width}` and ``cat_sets[node_cat[k], int(x)]``
is set, left otherwise (NaN: ``default_left``). A numeric-only forest passes
empty ``node_cat`` (0,) and ``cat_sets`` (0, 0). Only the split *test*
changes: the node's feature stays the Shapley player, so the algorithm below
is the same for both kinds of split. ``out`` is float64 and is
added to; only the feature columns ``0..d-1`` are touched (the caller adds
the bias :math:`\phi_0`, see :func:`node_mean_values`).

This reference follows every row at once down every branch (NumPy arrays
over the rows); the paths it copies at each node are (depth + 2) x n floats.
"""

import numpy as np

# Fastest first, as measured on a shared, heavily loaded 2-core machine (2 threads, runs
# interleaved in one process), 100 xgboost trees of depth 6, 28 features: contributions of
# 100k rows (one run each) Cython 12.2 s, Numba 13.3 s, xgboost pred_contribs 160 s; of 20k
# rows (median of 3) 9.35 s, 14.2 s, 106 s; interaction values of 500 rows (median of 3)
# 3.16 s, 5.96 s, xgboost pred_interactions 96.9 s.
AUTO_BACKEND_ORDER = {
    "tree_shap": ("cython", "numba", "numpy"),
    "tree_shap_interactions": ("cython", "numba", "numpy"),
}


class _Path:
    """The unique path of Algorithm 2 for all rows: element 0 is the root's dummy."""

    def __init__(self, size, n_rows):
        self.feature = np.full(size, -1, dtype=np.intp)
        self.zero = np.ones(size)                 # zero fraction (the same for every row)
        self.one = np.ones((size, n_rows))        # one fraction (1 or 0 per row)
        self.weight = np.zeros((size, n_rows))    # w_i: weight of the subsets of size i

    def copy(self):
        other = _Path.__new__(_Path)
        other.feature, other.zero = self.feature.copy(), self.zero.copy()
        other.one, other.weight = self.one.copy(), self.weight.copy()
        return other

    def extend(self, m, zero, one, feature):
        """EXTEND: add ``feature`` as element ``m`` (the path had elements 0..m-1)."""
        self.feature[m], self.zero[m], self.one[m] = feature, zero, one
        self.weight[m] = 1.0 if m == 0 else 0.0
        for i in range(m - 1, -1, -1):
            self.weight[i + 1] += one * self.weight[i] * (i + 1) / (m + 1)
            self.weight[i] = zero * self.weight[i] * (m - i) / (m + 1)

    def unwind(self, m, index):
        """UNWIND: remove element ``index`` of the path of elements 0..m."""
        one, zero = self.one[index], self.zero[index]
        known = one != 0
        safe_one = np.where(known, one, 1.0)
        next_one = self.weight[m].copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            for i in range(m - 1, -1, -1):
                kept = self.weight[i].copy()
                from_one = next_one * (m + 1) / ((i + 1) * safe_one)
                self.weight[i] = np.where(known, from_one, kept * (m + 1) / (zero * (m - i)))
                next_one = kept - from_one * zero * (m - i) / (m + 1)
        for name in ("feature", "zero", "one"):
            array = getattr(self, name)
            array[index:m] = array[index + 1:m + 1]

    def unwound_sum(self, m, index):
        r""":math:`\sum_i w_i` of the path of elements 0..m with element ``index`` unwound."""
        one, zero = self.one[index], self.zero[index]
        known = one != 0
        safe_one = np.where(known, one, 1.0)
        next_one = self.weight[m].copy()
        total = np.zeros_like(next_one)
        for i in range(m - 1, -1, -1):
            from_one = next_one * (m + 1) / ((i + 1) * safe_one)
            unknown = (self.weight[i] / zero) / ((m - i) / (m + 1)) if zero != 0 else 0.0
            total += np.where(known, from_one, unknown)
            next_one = self.weight[i] - from_one * zero * (m - i) / (m + 1)
        return total


def _goes_left(x, node, threshold, default_left, node_cat, cat_sets):
    """Whether the values ``x`` (one per row) of node ``node``'s feature go to its left child.

    NaN follows ``default_left``; at a categorical node (``node_cat[node] >= 0``)
    a code of the node's set goes right, anything else left; at a numeric node
    ``x < threshold`` goes left.
    """
    missing = np.isnan(x)
    if node_cat.shape[0] and node_cat[node] >= 0:
        codes = cat_sets[node_cat[node]]
        in_range = (x >= 0) & (x < codes.shape[0])
        in_set = in_range & (codes[np.where(in_range, x, 0).astype(np.intp)] != 0)
        result = ~in_set
    else:
        result = x < threshold[node]
    return np.where(missing, default_left[node] != 0, result)


def _shap_tree(X, feature, threshold, default_left, left, value, cover, root, max_depth,
               node_cat, cat_sets, phi, condition=0, condition_feature=-1):
    """Add one tree's SHAP values of every row of ``X`` to ``phi`` (n, d).

    ``condition`` 0: plain SHAP values; +1 / -1: conditioned on
    ``condition_feature`` being known / unknown (interaction values).
    """
    n_rows = X.shape[0]

    def recurse(node, parent_path, m, zero, one, parent_feature, condition_fraction):
        if not np.any(condition_fraction):
            return  # no weight comes down to this node
        path = parent_path.copy()
        if condition == 0 or parent_feature != condition_feature:
            path.extend(m, zero, one, parent_feature)
        if left[node] == -1:  # a leaf: each path feature's share of its value
            for i in range(1, m + 1):
                weight = path.unwound_sum(m, i)
                phi[:, path.feature[i]] += (weight * (path.one[i] - path.zero[i]) * value[node]
                                            * condition_fraction)
            return
        f = feature[node]
        x = X[:, f]
        goes_left = _goes_left(x, node, threshold, default_left, node_cat, cat_sets)
        children = (left[node], left[node] + 1)  # right == left + 1
        child_zero = [cover[child] / cover[node] for child in children]
        incoming_zero, incoming_one = 1.0, np.ones(n_rows)
        # A feature already on the path is unwound, and extended again below.
        previous = np.flatnonzero(path.feature[:m + 1] == f)
        if previous.size:
            incoming_zero, incoming_one = path.zero[previous[0]], path.one[previous[0]].copy()
            path.unwind(m, previous[0])
            m -= 1
        follows = (goes_left, ~goes_left)
        child_condition = [condition_fraction, condition_fraction]
        if condition != 0 and f == condition_feature:
            if condition > 0:   # known: only the row's branch
                child_condition = [condition_fraction * follows[0], condition_fraction * follows[1]]
            else:               # unknown: both branches by cover
                child_condition = [condition_fraction * z for z in child_zero]
            m -= 1
        for child, z, follow, c in zip(children, child_zero, follows, child_condition):
            recurse(child, path, m + 1, z * incoming_zero, incoming_one * follow, f, c)

    recurse(root, _Path(max_depth + 2, n_rows), 0, 1.0, np.ones(n_rows), -1, np.ones(n_rows))


def _tree_nodes(left, root):
    """Node indices of the tree at ``root`` (children of a node: left, left + 1)."""
    nodes, stack = [], [root]
    while stack:
        k = stack.pop()
        nodes.append(k)
        if left[k] != -1:
            stack += [left[k], left[k] + 1]
    return np.array(nodes, dtype=np.intp)


def tree_shap(X, feature, threshold, default_left, left, right, value, cover, tree_roots,
              tree_groups, max_depth, node_cat, cat_sets, out, n_threads):
    """Add the SHAP values of the rows of ``X`` (float32, (n, d)) to ``out`` (n, k, d + 1).

    Tree ``t`` adds to ``out[:, tree_groups[t], :d]``; ``max_depth`` bounds the
    depth of every tree (edges from root to leaf); ``node_cat`` and
    ``cat_sets`` describe the categorical splits (empty for none).
    """
    d = X.shape[1]
    for root, group in zip(tree_roots, tree_groups):
        phi = np.zeros((X.shape[0], d))
        _shap_tree(X, feature, threshold, default_left, left, value, cover, root, max_depth,
                   node_cat, cat_sets, phi)
        out[:, group, :d] += phi


def tree_shap_interactions(X, feature, threshold, default_left, left, right, value, cover,
                           tree_roots, tree_groups, tree_feature_ptr, tree_features, max_depth,
                           node_cat, cat_sets, out, n_threads):
    """Add the SHAP interaction values of the rows of ``X`` to ``out`` (n, k, d + 1, d + 1).

    ``tree_features[tree_feature_ptr[t]:tree_feature_ptr[t + 1]]`` are the
    distinct features split on in tree ``t`` (the only ones it conditions on).
    Only ``out[:, g, :d, :d]`` is touched.
    """
    n, d = X.shape
    for t, (root, group) in enumerate(zip(tree_roots, tree_groups)):
        args = (X, feature, threshold, default_left, left, value, cover, root, max_depth,
                node_cat, cat_sets)
        phi = np.zeros((n, d))
        _shap_tree(*args, phi)
        for i in tree_features[tree_feature_ptr[t]:tree_feature_ptr[t + 1]]:
            on, off = np.zeros((n, d)), np.zeros((n, d))
            _shap_tree(*args, on, condition=1, condition_feature=i)
            _shap_tree(*args, off, condition=-1, condition_feature=i)
            interaction = (on - off) / 2.0
            interaction[:, i] = 0.0
            out[:, group, i, :d] += interaction
            out[:, group, i, i] += phi[:, i] - interaction.sum(axis=1)


def _node_mean_values_naive(left, value, cover, root):
    """Cover-weighted mean leaf value of every node of one tree (recursive, as xgboost)."""
    means = {}

    def fill(k):
        if left[k] == -1:
            means[k] = float(value[k])
        else:
            a, b = left[k], left[k] + 1
            means[k] = (fill(a) * cover[a] + fill(b) * cover[b]) / cover[k]
        return means[k]

    fill(root)
    return means


# ------------------------------------------------------------------ leaf tables
# The compiled backends compute the same SHAP values from per-leaf tables (the
# idea of Yang, 2021, "Fast TreeSHAP", v2): for a leaf of value v whose path
# splits on the distinct features u_0..u_{m-1} (in order of first appearance),
# with zero fractions z_p (product of cover[child] / cover[node] over the
# splits on u_p), the leaf's part of the tree output when the features in S
# are known is v * prod_{p in S} o_p * prod_{p not in S} z_p, where o_p is 1 if
# the row follows every split on u_p. Shapley's formula over the m path
# features then only depends on the set O = {p : o_p = 1}:
#
#     phi[u_p] += (1 - z_p) / z_p * T[O - {p}]   if p in O,
#     phi[u_p] -= T[O]                           otherwise,
#
#     T[P] = v * sum_{S subset of P} |S|! (m - 1 - |S|)! / m! * prod_{q not in S} z_q
#
# (P a proper subset of the m features). T is built once per forest (2^m
# values per leaf, a subset-sum transform), and a row then costs O(m) per
# leaf instead of Algorithm 2's O(m^2).
MAX_TABLE_VALUES = 1 << 23   # 64 MB of float64 tables at most; larger forests use Algorithm 2
MAX_TABLE_PATH = 20          # distinct features on one path


def leaf_tables(feature, left, value, cover, tree_roots, max_depth, interactions=False):
    """Per-leaf subset tables of the trees at ``tree_roots`` (see the comment above).

    Returns ``None`` when they do not apply (a zero fraction is 0, or the
    tables would hold more than ``MAX_TABLE_VALUES`` values), else a tuple:

    - ``node_bit`` (intp, per node): position p of a split node's feature on
      its path (a row that does not follow the split clears bit p);
    - ``leaf_m`` (intp, per node): m of a leaf (-1 elsewhere);
    - ``leaf_offset`` (intp, per node): start of the leaf's table in ``table``
      and of its positions in ``position_feature`` / ``position_coef``;
    - ``position_feature`` (intp), ``position_coef`` (float64, (1 - z_p) / z_p);
    - ``table`` (float64): T of every leaf, index P a bit set;
    - with ``interactions``: ``position_zero`` (float64, z_p), ``pair_offset``
      (intp, per node) and ``pair_table`` (float64): for each leaf, m tables
      T_q (one per path feature q, 2^m values each) of the m - 1 other features,

          T_q[P] = v * sum_{S subset of P, q not in S} |S|! (m - 2 - |S|)! / (m - 1)!
                   * prod_{r not in S, r != q} z_r,

      so that the interaction of the path features u_q and u_p (p != q) is
      (o_q - z_q) / 2 times the term of u_p computed from T_q as above.
    """
    n_nodes = left.shape[0]
    width = max_depth + 1
    node_bit = np.full(n_nodes, -1, dtype=np.intp)
    leaf_m = np.full(n_nodes, -1, dtype=np.intp)
    leaf_offset = np.full(n_nodes, -1, dtype=np.intp)
    leaves, leaf_features, leaf_zeros, leaf_counts = [], [], [], []
    frontier = np.asarray(tree_roots, dtype=np.intp)
    path_feature = np.full((frontier.shape[0], width), -1, dtype=np.intp)
    path_zero = np.ones((frontier.shape[0], width))
    count = np.zeros(frontier.shape[0], dtype=np.intp)
    while frontier.size:
        is_leaf = left[frontier] == -1
        leaves.append(frontier[is_leaf])
        leaf_features.append(path_feature[is_leaf])
        leaf_zeros.append(path_zero[is_leaf])
        leaf_counts.append(count[is_leaf])
        nodes = frontier[~is_leaf]
        path_feature, path_zero = path_feature[~is_leaf], path_zero[~is_leaf]
        count = count[~is_leaf]
        f = feature[nodes]
        match = path_feature == f[:, None]
        seen = match.any(axis=1)
        position = np.where(seen, np.argmax(match, axis=1), count)
        if np.any(position >= MAX_TABLE_PATH):
            return None
        node_bit[nodes] = position
        rows = np.arange(nodes.shape[0])
        path_feature[rows, position] = f
        count = count + ~seen
        next_frontier, next_feature, next_zero = [], [], []
        for child in (left[nodes], left[nodes] + 1):
            zero = path_zero.copy()
            zero[rows, position] *= cover[child] / cover[nodes]
            next_frontier.append(child)
            next_feature.append(path_feature)
            next_zero.append(zero)
        frontier = np.concatenate(next_frontier)
        path_feature = np.concatenate(next_feature)
        path_zero = np.concatenate(next_zero)
        count = np.concatenate([count, count])
    leaves, leaf_counts = np.concatenate(leaves), np.concatenate(leaf_counts)
    leaf_features, leaf_zeros = np.concatenate(leaf_features), np.concatenate(leaf_zeros)
    sizes = np.where(leaf_counts > 0, 1 << leaf_counts, 0)
    pair_sizes = leaf_counts * sizes if interactions else np.zeros_like(sizes)
    if sizes.sum() + pair_sizes.sum() > MAX_TABLE_VALUES or np.any(~(leaf_zeros > 0)):
        return None
    pair_offsets = np.concatenate([[0], np.cumsum(pair_sizes)[:-1]]).astype(np.intp)
    pair_offset = np.full(n_nodes, -1, dtype=np.intp)
    pair_offset[leaves] = pair_offsets
    pair_table = np.zeros(int(pair_sizes.sum()))
    position_zero = np.zeros(int(sizes.sum()))
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    leaf_m[leaves] = leaf_counts
    leaf_offset[leaves] = offsets
    table = np.zeros(int(sizes.sum()))
    position_feature = np.zeros(int(sizes.sum()), dtype=np.intp)
    position_coef = np.zeros(int(sizes.sum()))
    for m in np.unique(leaf_counts[leaf_counts > 0]):
        group = np.flatnonzero(leaf_counts == m)
        z = leaf_zeros[group, :m]
        subsets = np.arange(1 << m)
        in_subset = (subsets[:, None] >> np.arange(m)) & 1 == 1       # (2^m, m)
        size = in_subset.sum(axis=1)
        factorial = np.cumprod(np.concatenate([[1.0], np.arange(1.0, m + 1)]))
        weight = np.where(size < m, factorial[size] * factorial[np.maximum(m - 1 - size, 0)]
                          / factorial[m], 0.0)
        t = weight * value[leaves[group], None].astype(np.float64)
        for p in range(m):
            t = t * np.where(in_subset[:, p], 1.0, z[:, p:p + 1])
        for p in range(m):  # subset sums: T[P] = sum over S in P
            blocks = t.reshape(group.shape[0], -1, 2, 1 << p)
            blocks[:, :, 1, :] += blocks[:, :, 0, :]
        starts = offsets[group]
        index = starts[:, None] + subsets
        table[index] = t
        position_feature[starts[:, None] + np.arange(m)] = leaf_features[group, :m]
        position_coef[starts[:, None] + np.arange(m)] = (1.0 - z) / z
        position_zero[starts[:, None] + np.arange(m)] = z
        if not interactions or m < 2:
            continue
        others = factorial[m - 1]  # (m - 1)! : q is no player
        pair_weight = np.where(size < m - 1, factorial[size]
                               * factorial[np.maximum(m - 2 - size, 0)] / others, 0.0)
        for q in range(m):
            t = np.where(in_subset[:, q], 0.0, pair_weight) * value[leaves[group], None]
            for p in range(m):
                if p != q:
                    t = t * np.where(in_subset[:, p], 1.0, z[:, p:p + 1])
            for p in range(m):
                blocks = t.reshape(group.shape[0], -1, 2, 1 << p)
                blocks[:, :, 1, :] += blocks[:, :, 0, :]
            pair_table[pair_offsets[group][:, None] + q * (1 << m) + subsets] = t
    if interactions:
        return (node_bit, leaf_m, leaf_offset, position_feature, position_coef, table,
                position_zero, pair_offset, pair_table)
    return node_bit, leaf_m, leaf_offset, position_feature, position_coef, table
