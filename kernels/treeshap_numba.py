r"""Exact TreeSHAP of a forest of binary trees: the Numba kernels.

The algorithm and the layout are those of :mod:`treeshap_numpy` (Lundberg et
al. 2018, Algorithm 2, and the conditioned walks of the interaction values),
one row at a time: the recursion becomes a depth-first walk with an explicit
stack, and the unique path of each tree level lives in row ``level`` of small
per-thread arrays (a child copies its parent's row, so the parent's path is
intact when its second child is visited). Children are visited left first, as
in the reference. When the forest's per-leaf tables fit
(:func:`treeshap_numpy.leaf_tables`), ``tree_shap`` reads them instead:
one walk per row and tree that carries the set of path features the row
follows, and O(m) table reads per leaf (``tree_shap_interactions``: O(m^2)
from the tables of pairs). A categorical split sends the codes of its set
right (:func:`_goes_left`, as the reference). Threads take blocks of rows;
each row's output is summed over the trees in order, so the result does not
depend on the number of threads.
"""

import numba
import numpy as np

from ._constants import FAMILIES
from ._threads import numba_threads
from .treeshap_numpy import leaf_tables

_SHARED = FAMILIES["treeshap"]  # shared with treeshap_cython
BLOCK = _SHARED["BLOCK"]


@numba.njit(cache=True, nogil=True, inline="always")
def _goes_left(x, node, threshold, default_left, node_cat, cat_sets):
    """Whether value ``x`` goes to node ``node``'s left child (``treeshap_numpy._goes_left``)."""
    if np.isnan(x):
        return default_left[node] != 0
    if node_cat.shape[0] > 0:
        c = node_cat[node]
        if c >= 0:  # a categorical split: the codes of the set go right
            if x >= 0 and x < cat_sets.shape[1]:
                return cat_sets[c, np.intp(x)] == 0
            return True
    return x < threshold[node]


@numba.njit(cache=True, nogil=True)
def _unwound_sum(p_feature, p_zero, p_one, p_weight, level, m, index):
    one = p_one[level, index]
    zero = p_zero[level, index]
    next_one = p_weight[level, m]
    total = 0.0
    for i in range(m - 1, -1, -1):
        if one != 0.0:
            tmp = next_one * (m + 1) / ((i + 1) * one)
            total += tmp
            next_one = p_weight[level, i] - tmp * zero * (m - i) / (m + 1)
        elif zero != 0.0:
            total += (p_weight[level, i] / zero) / ((m - i) / (m + 1))
    return total


@numba.njit(cache=True, nogil=True)
def _shap_tree(X, row, feature, threshold, default_left, left, value, cover, node_cat,
               cat_sets, root, phi, condition, condition_feature, p_feature, p_zero, p_one,
               p_weight, s_node, s_level, s_m, s_zero, s_one, s_parent, s_fraction):
    """Add one tree's (conditioned) SHAP values of row ``row`` to ``phi`` (d,)."""
    top = 0
    s_node[0], s_level[0], s_m[0] = root, 0, 0
    s_zero[0], s_one[0], s_parent[0], s_fraction[0] = 1.0, 1.0, -1, 1.0
    while top >= 0:
        node, level, m = s_node[top], s_level[top], s_m[top]
        zero, one = s_zero[top], s_one[top]
        parent_feature, fraction = s_parent[top], s_fraction[top]
        top -= 1
        if fraction == 0.0:
            continue
        if level > 0:  # copy the parent's path, elements 0..m
            for i in range(m + 1):
                p_feature[level, i] = p_feature[level - 1, i]
                p_zero[level, i] = p_zero[level - 1, i]
                p_one[level, i] = p_one[level - 1, i]
                p_weight[level, i] = p_weight[level - 1, i]
        if condition == 0 or parent_feature != condition_feature:  # EXTEND
            p_feature[level, m] = parent_feature
            p_zero[level, m] = zero
            p_one[level, m] = one
            p_weight[level, m] = 1.0 if m == 0 else 0.0
            for i in range(m - 1, -1, -1):
                p_weight[level, i + 1] += one * p_weight[level, i] * (i + 1) / (m + 1)
                p_weight[level, i] = zero * p_weight[level, i] * (m - i) / (m + 1)
        if left[node] == -1:  # a leaf
            leaf = np.float64(value[node])
            for i in range(1, m + 1):
                w = _unwound_sum(p_feature, p_zero, p_one, p_weight, level, m, i)
                phi[p_feature[level, i]] += (w * (p_one[level, i] - p_zero[level, i]) * leaf
                                             * fraction)
            continue
        f = feature[node]
        goes_left = _goes_left(X[row, f], node, threshold, default_left, node_cat, cat_sets)
        left_child = left[node]
        left_zero = cover[left_child] / cover[node]
        right_zero = cover[left_child + 1] / cover[node]
        incoming_zero = 1.0
        incoming_one = 1.0
        index = -1
        for i in range(m + 1):
            if p_feature[level, i] == f:
                index = i
                break
        if index >= 0:  # UNWIND the earlier split on this feature
            incoming_zero = p_zero[level, index]
            incoming_one = p_one[level, index]
            next_one = p_weight[level, m]
            for i in range(m - 1, -1, -1):
                if incoming_one != 0.0:
                    kept = p_weight[level, i]
                    p_weight[level, i] = next_one * (m + 1) / ((i + 1) * incoming_one)
                    next_one = kept - p_weight[level, i] * incoming_zero * (m - i) / (m + 1)
                else:
                    p_weight[level, i] = (p_weight[level, i] * (m + 1)
                                          / (incoming_zero * (m - i)))
            for i in range(index, m):
                p_feature[level, i] = p_feature[level, i + 1]
                p_zero[level, i] = p_zero[level, i + 1]
                p_one[level, i] = p_one[level, i + 1]
            m -= 1
        left_fraction = fraction
        right_fraction = fraction
        if condition != 0 and f == condition_feature:
            if condition > 0:
                if goes_left:
                    right_fraction = 0.0
                else:
                    left_fraction = 0.0
            else:
                left_fraction = fraction * left_zero
                right_fraction = fraction * right_zero
            m -= 1
        # Push the right child first, so the left one is walked first.
        top += 1
        s_node[top], s_level[top], s_m[top] = left_child + 1, level + 1, m + 1
        s_zero[top] = right_zero * incoming_zero
        s_one[top] = 0.0 if goes_left else incoming_one
        s_parent[top], s_fraction[top] = f, right_fraction
        top += 1
        s_node[top], s_level[top], s_m[top] = left_child, level + 1, m + 1
        s_zero[top] = left_zero * incoming_zero
        s_one[top] = incoming_one if goes_left else 0.0
        s_parent[top], s_fraction[top] = f, left_fraction


@numba.njit(cache=True, nogil=True, parallel=True)
def _tree_shap_tables(X, feature, threshold, default_left, left, tree_roots, tree_groups,
                      max_depth, node_cat, cat_sets, node_bit, leaf_m, leaf_offset,
                      position_feature, position_coef, table, out):
    n_rows = X.shape[0]
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for block in numba.prange(n_blocks):
        s_node = np.empty(max_depth + 3, dtype=np.intp)
        s_mask = np.empty(max_depth + 3, dtype=np.int64)
        for row in range(block * BLOCK, min((block + 1) * BLOCK, n_rows)):
            for t in range(tree_roots.shape[0]):
                phi = out[row, tree_groups[t]]
                top = 0
                s_node[0] = tree_roots[t]
                s_mask[0] = -1  # every bit set: the row follows every split so far
                while top >= 0:
                    node = s_node[top]
                    mask = s_mask[top]
                    top -= 1
                    if left[node] == -1:
                        m = leaf_m[node]
                        if m <= 0:
                            continue
                        start = leaf_offset[node]
                        follows = mask & ((np.int64(1) << m) - 1)
                        t_follows = table[start + follows]
                        for p in range(m):
                            bit = np.int64(1) << p
                            if follows & bit:
                                phi[position_feature[start + p]] += (
                                    position_coef[start + p] * table[start + (follows ^ bit)])
                            else:
                                phi[position_feature[start + p]] -= t_follows
                        continue
                    goes_left = _goes_left(X[row, feature[node]], node, threshold,
                                           default_left, node_cat, cat_sets)
                    cleared = mask & ~(np.int64(1) << node_bit[node])
                    top += 1
                    s_node[top] = left[node] + 1
                    s_mask[top] = cleared if goes_left else mask
                    top += 1
                    s_node[top] = left[node]
                    s_mask[top] = mask if goes_left else cleared


@numba.njit(cache=True, nogil=True, parallel=True)
def _tree_shap_interactions_tables(X, feature, threshold, default_left, left, tree_roots,
                                   tree_groups, max_depth, node_cat, cat_sets, node_bit, leaf_m,
                                   leaf_offset, position_feature, position_coef, table,
                                   position_zero, pair_offset, pair_table, out):
    n_rows = X.shape[0]
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for block in numba.prange(n_blocks):
        s_node = np.empty(max_depth + 3, dtype=np.intp)
        s_mask = np.empty(max_depth + 3, dtype=np.int64)
        for row in range(block * BLOCK, min((block + 1) * BLOCK, n_rows)):
            for t in range(tree_roots.shape[0]):
                phi = out[row, tree_groups[t]]
                top = 0
                s_node[0] = tree_roots[t]
                s_mask[0] = -1
                while top >= 0:
                    node = s_node[top]
                    mask = s_mask[top]
                    top -= 1
                    if left[node] == -1:
                        m = leaf_m[node]
                        if m <= 0:
                            continue
                        start = leaf_offset[node]
                        size = np.int64(1) << m
                        follows = mask & (size - 1)
                        for q in range(m):
                            bit_q = np.int64(1) << q
                            f_q = position_feature[start + q]
                            if follows & bit_q:
                                own = position_coef[start + q] * table[start + (follows ^ bit_q)]
                                scale = 0.5 * (1.0 - position_zero[start + q])
                            else:
                                own = -table[start + follows]
                                scale = -0.5 * position_zero[start + q]
                            others = follows & ~bit_q
                            pair = pair_offset[node] + q * size
                            t_others = pair_table[pair + others]
                            total = 0.0
                            for p in range(m):
                                if p == q:
                                    continue
                                bit_p = np.int64(1) << p
                                if others & bit_p:
                                    value = position_coef[start + p] * pair_table[
                                        pair + (others ^ bit_p)]
                                else:
                                    value = -t_others
                                interaction = scale * value
                                phi[f_q, position_feature[start + p]] += interaction
                                total += interaction
                            phi[f_q, f_q] += own - total
                        continue
                    goes_left = _goes_left(X[row, feature[node]], node, threshold,
                                           default_left, node_cat, cat_sets)
                    cleared = mask & ~(np.int64(1) << node_bit[node])
                    top += 1
                    s_node[top] = left[node] + 1
                    s_mask[top] = cleared if goes_left else mask
                    top += 1
                    s_node[top] = left[node]
                    s_mask[top] = mask if goes_left else cleared


@numba.njit(cache=True, nogil=True)
def _buffers(max_depth):
    size = max_depth + 2
    return (np.empty((size, size), dtype=np.intp), np.empty((size, size)),
            np.empty((size, size)), np.empty((size, size)),
            np.empty(size + 1, dtype=np.intp), np.empty(size + 1, dtype=np.intp),
            np.empty(size + 1, dtype=np.intp), np.empty(size + 1), np.empty(size + 1),
            np.empty(size + 1, dtype=np.intp), np.empty(size + 1))


@numba.njit(cache=True, nogil=True, parallel=True)
def _tree_shap(X, feature, threshold, default_left, left, value, cover, tree_roots, tree_groups,
               max_depth, node_cat, cat_sets, out):
    n_rows = X.shape[0]
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for block in numba.prange(n_blocks):
        (p_feature, p_zero, p_one, p_weight, s_node, s_level, s_m, s_zero, s_one, s_parent,
         s_fraction) = _buffers(max_depth)
        for row in range(block * BLOCK, min((block + 1) * BLOCK, n_rows)):
            for t in range(tree_roots.shape[0]):
                _shap_tree(X, row, feature, threshold, default_left, left, value, cover,
                           node_cat, cat_sets, tree_roots[t], out[row, tree_groups[t]], 0, -1,
                           p_feature, p_zero, p_one, p_weight, s_node, s_level, s_m, s_zero,
                           s_one, s_parent, s_fraction)


@numba.njit(cache=True, nogil=True, parallel=True)
def _tree_shap_interactions(X, feature, threshold, default_left, left, value, cover, tree_roots,
                            tree_groups, tree_feature_ptr, tree_features, max_depth, node_cat,
                            cat_sets, out):
    n_rows, d = X.shape
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for block in numba.prange(n_blocks):
        (p_feature, p_zero, p_one, p_weight, s_node, s_level, s_m, s_zero, s_one, s_parent,
         s_fraction) = _buffers(max_depth)
        phi = np.empty(d)
        on = np.empty(d)
        off = np.empty(d)
        for row in range(block * BLOCK, min((block + 1) * BLOCK, n_rows)):
            for t in range(tree_roots.shape[0]):
                g = tree_groups[t]
                phi[:] = 0.0
                _shap_tree(X, row, feature, threshold, default_left, left, value, cover,
                           node_cat, cat_sets, tree_roots[t], phi, 0, -1, p_feature, p_zero,
                           p_one, p_weight, s_node, s_level, s_m, s_zero, s_one, s_parent,
                           s_fraction)
                for k in range(tree_feature_ptr[t], tree_feature_ptr[t + 1]):
                    i = tree_features[k]
                    on[:] = 0.0
                    off[:] = 0.0
                    _shap_tree(X, row, feature, threshold, default_left, left, value, cover,
                               node_cat, cat_sets, tree_roots[t], on, 1, i, p_feature, p_zero,
                               p_one, p_weight, s_node, s_level, s_m, s_zero, s_one, s_parent,
                               s_fraction)
                    _shap_tree(X, row, feature, threshold, default_left, left, value, cover,
                               node_cat, cat_sets, tree_roots[t], off, -1, i, p_feature, p_zero,
                               p_one, p_weight, s_node, s_level, s_m, s_zero, s_one, s_parent,
                               s_fraction)
                    total = 0.0
                    for j in range(d):
                        if j != i:
                            interaction = (on[j] - off[j]) / 2.0
                            out[row, g, i, j] += interaction
                            total += interaction
                    out[row, g, i, i] += phi[i] - total


def tree_shap(X, feature, threshold, default_left, left, right, value, cover, tree_roots,
              tree_groups, max_depth, node_cat, cat_sets, out, n_threads):
    """Add the SHAP values of the rows of ``X`` to ``out`` (see ``treeshap_numpy.tree_shap``)."""
    tables = leaf_tables(feature, left, value, cover, tree_roots, max_depth)
    with numba_threads(n_threads):
        if tables is None:
            _tree_shap(X, feature, threshold, default_left, left, value, cover, tree_roots,
                       tree_groups, max_depth, node_cat, cat_sets, out)
        else:
            _tree_shap_tables(X, feature, threshold, default_left, left, tree_roots, tree_groups,
                              max_depth, node_cat, cat_sets, *tables, out)


def tree_shap_interactions(X, feature, threshold, default_left, left, right, value, cover,
                           tree_roots, tree_groups, tree_feature_ptr, tree_features, max_depth,
                           node_cat, cat_sets, out, n_threads):
    """Add the SHAP interaction values (see :func:`treeshap_numpy.tree_shap_interactions`)."""
    tables = leaf_tables(feature, left, value, cover, tree_roots, max_depth, interactions=True)
    with numba_threads(n_threads):
        if tables is None:
            _tree_shap_interactions(X, feature, threshold, default_left, left, value, cover,
                                    tree_roots, tree_groups, tree_feature_ptr, tree_features,
                                    max_depth, node_cat, cat_sets, out)
        else:
            _tree_shap_interactions_tables(X, feature, threshold, default_left, left,
                                           tree_roots, tree_groups, max_depth, node_cat,
                                           cat_sets, *tables, out)
