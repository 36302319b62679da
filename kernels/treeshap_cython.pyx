# cython: language_level=3
r"""Exact TreeSHAP of a forest of binary trees: the Cython kernels.

The algorithm and the layout are those of :mod:`treeshap_numpy` (Lundberg et
al. 2018, Algorithm 2, and the conditioned walks of the interaction values),
walked as in :mod:`treeshap_numba`: one row at a time, a depth-first walk with
an explicit stack, the unique path of each tree level in row ``level`` of a
per-thread buffer (a child copies its parent's row), left child first. OpenMP
threads take blocks of rows; each row's output is summed over the trees in
order, so the result does not depend on the number of threads. When the
forest's per-leaf tables fit (:func:`treeshap_numpy.leaf_tables`),
``tree_shap`` reads them instead: one walk per row and tree that carries the
set of path features the row follows (a bit mask), and O(m) table reads per
leaf (``tree_shap_interactions``: O(m^2) from the tables of pairs).
Categorical splits send the codes of their set right (``_goes_left``, as the
reference); a numeric-only forest passes empty ``node_cat`` / ``cat_sets``.
"""

include "_common.pxi"
include "_constants_treeshap.pxi"  # shared with treeshap_numba (kernels/_constants.py)

from libc.stdint cimport uint8_t

import numpy as np
from libc.stdint cimport int64_t
from cython.parallel cimport prange
from libc.string cimport memset

from .treeshap_numpy import leaf_tables



cdef struct Walk:
    # per-thread buffers: the path of each level (size x size) and the stack (size + 1)
    intp_t size
    intp_t* p_feature
    double* p_zero
    double* p_one
    double* p_weight
    intp_t* s_node
    intp_t* s_level
    intp_t* s_m
    intp_t* s_parent
    double* s_zero
    double* s_one
    double* s_fraction


cdef struct Cats:
    # the categorical splits: node_cat[k] >= 0 is the row of ``sets`` (width bytes each)
    # with node k's category set; node_cat is NULL for a forest of numeric splits only
    const intp_t* node_cat
    const uint8_t* sets
    intp_t width


cdef Cats _cats(const intp_t[::1] node_cat, const uint8_t[:, ::1] cat_sets):
    cdef Cats cats
    cats.node_cat = NULL
    cats.sets = NULL
    cats.width = 0
    if node_cat.shape[0] > 0 and cat_sets.shape[0] > 0 and cat_sets.shape[1] > 0:
        cats.node_cat = &node_cat[0]
        cats.sets = &cat_sets[0, 0]
        cats.width = cat_sets.shape[1]
    return cats


cdef inline bint _goes_left(double x, intp_t node, const float* threshold,
                            const uint8_t* default_left, const Cats* cats) noexcept nogil:
    """Whether value ``x`` goes to node ``node``'s left child (``treeshap_numpy._goes_left``)."""
    cdef intp_t c
    if x != x:  # missing
        return default_left[node] != 0
    if cats.node_cat != NULL:
        c = cats.node_cat[node]
        if c >= 0:  # a categorical split: the codes of the set go right
            if x >= 0 and x < cats.width:
                return cats.sets[c * cats.width + <intp_t> x] == 0
            return True
    return x < threshold[node]


cdef int _walk_alloc(Walk* w, intp_t max_depth) noexcept nogil:
    w.size = max_depth + 2
    cdef intp_t s = w.size
    w.p_feature = <intp_t*> malloc(s * s * sizeof(intp_t))
    w.p_zero = <double*> malloc(s * s * sizeof(double))
    w.p_one = <double*> malloc(s * s * sizeof(double))
    w.p_weight = <double*> malloc(s * s * sizeof(double))
    w.s_node = <intp_t*> malloc((s + 1) * sizeof(intp_t))
    w.s_level = <intp_t*> malloc((s + 1) * sizeof(intp_t))
    w.s_m = <intp_t*> malloc((s + 1) * sizeof(intp_t))
    w.s_parent = <intp_t*> malloc((s + 1) * sizeof(intp_t))
    w.s_zero = <double*> malloc((s + 1) * sizeof(double))
    w.s_one = <double*> malloc((s + 1) * sizeof(double))
    w.s_fraction = <double*> malloc((s + 1) * sizeof(double))
    return 0


cdef void _walk_free(Walk* w) noexcept nogil:
    free(w.p_feature); free(w.p_zero); free(w.p_one); free(w.p_weight)
    free(w.s_node); free(w.s_level); free(w.s_m); free(w.s_parent)
    free(w.s_zero); free(w.s_one); free(w.s_fraction)


cdef inline double _unwound_sum(const double* zero_, const double* one_, const double* weight,
                                intp_t m, intp_t index) noexcept nogil:
    cdef double one = one_[index], zero = zero_[index]
    cdef double next_one = weight[m], total = 0.0, tmp
    cdef intp_t i
    for i in range(m - 1, -1, -1):
        if one != 0.0:
            tmp = next_one * (m + 1) / ((i + 1) * one)
            total += tmp
            next_one = weight[i] - tmp * zero * (m - i) / (m + 1)
        elif zero != 0.0:
            total += (weight[i] / zero) / (<double> (m - i) / (m + 1))
    return total


cdef void _shap_tree(const floating[:, ::1] X, intp_t row, const intp_t* feature,
                     const float* threshold, const uint8_t* default_left, const intp_t* left,
                     const float* value, const double* cover, const Cats* cats, intp_t root,
                     double* phi, int condition, intp_t condition_feature,
                     Walk* w) noexcept nogil:
    """Add one tree's (conditioned) SHAP values of row ``row`` to ``phi`` (d,)."""
    cdef intp_t s = w.size
    cdef intp_t top = 0, node, level, m, parent_feature, i, f, index, left_child
    cdef double zero, one, fraction, leaf, incoming_zero, incoming_one, left_zero, right_zero
    cdef double next_one, kept, left_fraction, right_fraction
    cdef bint goes_left
    cdef intp_t* pf
    cdef double* pz
    cdef double* po
    cdef double* pw
    w.s_node[0] = root; w.s_level[0] = 0; w.s_m[0] = 0
    w.s_zero[0] = 1.0; w.s_one[0] = 1.0; w.s_parent[0] = -1; w.s_fraction[0] = 1.0
    while top >= 0:
        node = w.s_node[top]; level = w.s_level[top]; m = w.s_m[top]
        zero = w.s_zero[top]; one = w.s_one[top]
        parent_feature = w.s_parent[top]; fraction = w.s_fraction[top]
        top -= 1
        if fraction == 0.0:
            continue
        pf = w.p_feature + level * s
        pz = w.p_zero + level * s
        po = w.p_one + level * s
        pw = w.p_weight + level * s
        if level > 0:  # copy the parent's path, elements 0..m
            for i in range(m + 1):
                pf[i] = pf[i - s]
                pz[i] = pz[i - s]
                po[i] = po[i - s]
                pw[i] = pw[i - s]
        if condition == 0 or parent_feature != condition_feature:  # EXTEND
            pf[m] = parent_feature
            pz[m] = zero
            po[m] = one
            pw[m] = 1.0 if m == 0 else 0.0
            for i in range(m - 1, -1, -1):
                pw[i + 1] += one * pw[i] * (i + 1) / (m + 1)
                pw[i] = zero * pw[i] * (m - i) / (m + 1)
        if left[node] == -1:  # a leaf
            leaf = value[node]
            for i in range(1, m + 1):
                phi[pf[i]] += (_unwound_sum(pz, po, pw, m, i) * (po[i] - pz[i]) * leaf
                               * fraction)
            continue
        f = feature[node]
        goes_left = _goes_left(X[row, f], node, threshold, default_left, cats)
        left_child = left[node]
        left_zero = cover[left_child] / cover[node]
        right_zero = cover[left_child + 1] / cover[node]
        incoming_zero = 1.0
        incoming_one = 1.0
        index = -1
        for i in range(m + 1):
            if pf[i] == f:
                index = i
                break
        if index >= 0:  # UNWIND the earlier split on this feature
            incoming_zero = pz[index]
            incoming_one = po[index]
            next_one = pw[m]
            for i in range(m - 1, -1, -1):
                if incoming_one != 0.0:
                    kept = pw[i]
                    pw[i] = next_one * (m + 1) / ((i + 1) * incoming_one)
                    next_one = kept - pw[i] * incoming_zero * (m - i) / (m + 1)
                else:
                    pw[i] = pw[i] * (m + 1) / (incoming_zero * (m - i))
            for i in range(index, m):
                pf[i] = pf[i + 1]
                pz[i] = pz[i + 1]
                po[i] = po[i + 1]
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
        w.s_node[top] = left_child + 1; w.s_level[top] = level + 1; w.s_m[top] = m + 1
        w.s_zero[top] = right_zero * incoming_zero
        w.s_one[top] = 0.0 if goes_left else incoming_one
        w.s_parent[top] = f; w.s_fraction[top] = right_fraction
        top += 1
        w.s_node[top] = left_child; w.s_level[top] = level + 1; w.s_m[top] = m + 1
        w.s_zero[top] = left_zero * incoming_zero
        w.s_one[top] = incoming_one if goes_left else 0.0
        w.s_parent[top] = f; w.s_fraction[top] = left_fraction


def _tree_shap(const floating[:, ::1] X,                                              # IN
               const intp_t[::1] feature, const float[::1] threshold,                # IN
               const uint8_t[::1] default_left, const intp_t[::1] left,              # IN
               const float[::1] value, const double[::1] cover,                      # IN
               const intp_t[::1] tree_roots, const intp_t[::1] tree_groups,          # IN
               intp_t max_depth,                                                     # IN
               const intp_t[::1] node_cat, const uint8_t[:, ::1] cat_sets,           # IN
               double[:, :, ::1] out,                                                # IN/OUT
               int n_threads):
    cdef Cats cats = _cats(node_cat, cat_sets)
    cdef intp_t n_rows = X.shape[0]
    cdef intp_t n_blocks = (n_rows + BLOCK - 1) // BLOCK
    cdef intp_t block, row, t
    cdef Walk* w
    for block in prange(n_blocks, num_threads=n_threads, schedule="dynamic", nogil=True):
        w = <Walk*> malloc(sizeof(Walk))  # assigned in the loop: private to each thread
        _walk_alloc(w, max_depth)
        for row in range(block * BLOCK, min((block + 1) * BLOCK, n_rows)):
            for t in range(tree_roots.shape[0]):
                _shap_tree(X, row, &feature[0], &threshold[0], &default_left[0], &left[0],
                           &value[0], &cover[0], &cats, tree_roots[t],
                           &out[row, tree_groups[t], 0], 0, -1, w)
        _walk_free(w)
        free(w)


cdef void _shap_tree_tables(const floating[:, ::1] X, intp_t row, const intp_t* feature,
                            const float* threshold, const uint8_t* default_left,
                            const intp_t* left, const intp_t* node_bit, const intp_t* leaf_m,
                            const intp_t* leaf_offset, const intp_t* position_feature,
                            const double* position_coef, const double* table,
                            const Cats* cats, intp_t root, double* phi, intp_t* s_node,
                            int64_t* s_mask) noexcept nogil:
    """Add one tree's SHAP values of row ``row`` to ``phi`` from the leaf tables."""
    cdef intp_t top = 0, node, m, start, p
    cdef int64_t mask, follows, bit, cleared
    cdef double t_follows
    cdef bint goes_left
    s_node[0] = root
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
            follows = mask & ((<int64_t> 1 << m) - 1)
            t_follows = table[start + follows]
            for p in range(m):
                bit = <int64_t> 1 << p
                if follows & bit:
                    phi[position_feature[start + p]] += (position_coef[start + p]
                                                         * table[start + (follows ^ bit)])
                else:
                    phi[position_feature[start + p]] -= t_follows
            continue
        goes_left = _goes_left(X[row, feature[node]], node, threshold, default_left, cats)
        cleared = mask & ~(<int64_t> 1 << node_bit[node])
        top += 1
        s_node[top] = left[node] + 1
        s_mask[top] = cleared if goes_left else mask
        top += 1
        s_node[top] = left[node]
        s_mask[top] = mask if goes_left else cleared


def _tree_shap_tables(const floating[:, ::1] X,                                       # IN
                      const intp_t[::1] feature, const float[::1] threshold,         # IN
                      const uint8_t[::1] default_left, const intp_t[::1] left,       # IN
                      const intp_t[::1] tree_roots, const intp_t[::1] tree_groups,   # IN
                      intp_t max_depth,                                              # IN
                      const intp_t[::1] node_cat, const uint8_t[:, ::1] cat_sets,    # IN
                      const intp_t[::1] node_bit, const intp_t[::1] leaf_m,          # IN
                      const intp_t[::1] leaf_offset,                                 # IN
                      const intp_t[::1] position_feature,                            # IN
                      const double[::1] position_coef, const double[::1] table,      # IN
                      double[:, :, ::1] out,                                         # IN/OUT
                      int n_threads):
    cdef Cats cats = _cats(node_cat, cat_sets)
    cdef intp_t n_rows = X.shape[0]
    cdef intp_t n_blocks = (n_rows + BLOCK - 1) // BLOCK
    cdef intp_t block, row, t
    cdef intp_t* s_node
    cdef int64_t* s_mask
    for block in prange(n_blocks, num_threads=n_threads, schedule="static", nogil=True):
        s_node = <intp_t*> malloc((max_depth + 3) * sizeof(intp_t))
        s_mask = <int64_t*> malloc((max_depth + 3) * sizeof(int64_t))
        for row in range(block * BLOCK, min((block + 1) * BLOCK, n_rows)):
            for t in range(tree_roots.shape[0]):
                _shap_tree_tables(X, row, &feature[0], &threshold[0], &default_left[0],
                                  &left[0], &node_bit[0], &leaf_m[0], &leaf_offset[0],
                                  &position_feature[0], &position_coef[0], &table[0], &cats,
                                  tree_roots[t], &out[row, tree_groups[t], 0], s_node, s_mask)
        free(s_node)
        free(s_mask)


cdef void _interactions_tree_tables(const floating[:, ::1] X, intp_t row,
                                    const intp_t* feature, const float* threshold,
                                    const uint8_t* default_left, const intp_t* left,
                                    const intp_t* node_bit, const intp_t* leaf_m,
                                    const intp_t* leaf_offset, const intp_t* position_feature,
                                    const double* position_coef, const double* table,
                                    const double* position_zero, const intp_t* pair_offset,
                                    const double* pair_table, const Cats* cats, intp_t root,
                                    double* phi,
                                    intp_t n_columns, intp_t* s_node,
                                    int64_t* s_mask) noexcept nogil:
    """Add one tree's SHAP interaction values of row ``row`` to ``phi`` (d + 1, d + 1)."""
    cdef intp_t top = 0, node, m, start, p, q, f_q, pair
    cdef int64_t mask, follows, bit_p, bit_q, size, others, cleared
    cdef double own, scale, t_others, total, interaction, value
    cdef bint goes_left
    s_node[0] = root
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
            size = <int64_t> 1 << m
            follows = mask & (size - 1)
            for q in range(m):
                bit_q = <int64_t> 1 << q
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
                    bit_p = <int64_t> 1 << p
                    if others & bit_p:
                        value = position_coef[start + p] * pair_table[pair + (others ^ bit_p)]
                    else:
                        value = -t_others
                    interaction = scale * value
                    phi[f_q * n_columns + position_feature[start + p]] += interaction
                    total += interaction
                phi[f_q * n_columns + f_q] += own - total
            continue
        goes_left = _goes_left(X[row, feature[node]], node, threshold, default_left, cats)
        cleared = mask & ~(<int64_t> 1 << node_bit[node])
        top += 1
        s_node[top] = left[node] + 1
        s_mask[top] = cleared if goes_left else mask
        top += 1
        s_node[top] = left[node]
        s_mask[top] = mask if goes_left else cleared


def _tree_shap_interactions_tables(
        const floating[:, ::1] X,                                                     # IN
        const intp_t[::1] feature, const float[::1] threshold,                       # IN
        const uint8_t[::1] default_left, const intp_t[::1] left,                     # IN
        const intp_t[::1] tree_roots, const intp_t[::1] tree_groups,                 # IN
        intp_t max_depth,                                                            # IN
        const intp_t[::1] node_cat, const uint8_t[:, ::1] cat_sets,                  # IN
        const intp_t[::1] node_bit, const intp_t[::1] leaf_m,                        # IN
        const intp_t[::1] leaf_offset, const intp_t[::1] position_feature,           # IN
        const double[::1] position_coef, const double[::1] table,                    # IN
        const double[::1] position_zero, const intp_t[::1] pair_offset,              # IN
        const double[::1] pair_table,                                                # IN
        double[:, :, :, ::1] out,                                                    # IN/OUT
        int n_threads):
    cdef Cats cats = _cats(node_cat, cat_sets)
    cdef intp_t n_rows = X.shape[0], n_columns = out.shape[3]
    cdef intp_t n_blocks = (n_rows + BLOCK - 1) // BLOCK
    cdef intp_t block, row, t
    cdef intp_t* s_node
    cdef int64_t* s_mask
    for block in prange(n_blocks, num_threads=n_threads, schedule="static", nogil=True):
        s_node = <intp_t*> malloc((max_depth + 3) * sizeof(intp_t))
        s_mask = <int64_t*> malloc((max_depth + 3) * sizeof(int64_t))
        for row in range(block * BLOCK, min((block + 1) * BLOCK, n_rows)):
            for t in range(tree_roots.shape[0]):
                _interactions_tree_tables(X, row, &feature[0], &threshold[0], &default_left[0],
                                          &left[0], &node_bit[0], &leaf_m[0], &leaf_offset[0],
                                          &position_feature[0], &position_coef[0], &table[0],
                                          &position_zero[0], &pair_offset[0], &pair_table[0],
                                          &cats, tree_roots[t], &out[row, tree_groups[t], 0, 0],
                                          n_columns, s_node, s_mask)
        free(s_node)
        free(s_mask)


def _tree_shap_interactions(const floating[:, ::1] X,                                 # IN
                            const intp_t[::1] feature, const float[::1] threshold,   # IN
                            const uint8_t[::1] default_left, const intp_t[::1] left, # IN
                            const float[::1] value, const double[::1] cover,         # IN
                            const intp_t[::1] tree_roots,                            # IN
                            const intp_t[::1] tree_groups,                           # IN
                            const intp_t[::1] tree_feature_ptr,                      # IN
                            const intp_t[::1] tree_features,                         # IN
                            intp_t max_depth,                                        # IN
                            const intp_t[::1] node_cat,                              # IN
                            const uint8_t[:, ::1] cat_sets,                          # IN
                            double[:, :, :, ::1] out,                                # IN/OUT
                            int n_threads):
    cdef Cats cats = _cats(node_cat, cat_sets)
    cdef intp_t n_rows = X.shape[0], d = X.shape[1]
    cdef intp_t n_blocks = (n_rows + BLOCK - 1) // BLOCK
    cdef intp_t block, row, t, g, k, i, j
    cdef double total, interaction
    cdef double* phi
    cdef double* on
    cdef double* off
    cdef Walk* w
    for block in prange(n_blocks, num_threads=n_threads, schedule="dynamic", nogil=True):
        w = <Walk*> malloc(sizeof(Walk))  # assigned in the loop: private to each thread
        _walk_alloc(w, max_depth)
        phi = <double*> malloc(3 * d * sizeof(double))
        on = phi + d
        off = phi + 2 * d
        for row in range(block * BLOCK, min((block + 1) * BLOCK, n_rows)):
            for t in range(tree_roots.shape[0]):
                g = tree_groups[t]
                memset(phi, 0, d * sizeof(double))
                _shap_tree(X, row, &feature[0], &threshold[0], &default_left[0], &left[0],
                           &value[0], &cover[0], &cats, tree_roots[t], phi, 0, -1, w)
                for k in range(tree_feature_ptr[t], tree_feature_ptr[t + 1]):
                    i = tree_features[k]
                    memset(on, 0, 2 * d * sizeof(double))
                    _shap_tree(X, row, &feature[0], &threshold[0], &default_left[0], &left[0],
                               &value[0], &cover[0], &cats, tree_roots[t], on, 1, i, w)
                    _shap_tree(X, row, &feature[0], &threshold[0], &default_left[0], &left[0],
                               &value[0], &cover[0], &cats, tree_roots[t], off, -1, i, w)
                    total = 0.0
                    for j in range(d):
                        if j != i:
                            interaction = (on[j] - off[j]) / 2.0
                            out[row, g, i, j] += interaction
                            total = total + interaction
                    out[row, g, i, i] += phi[i] - total
        free(phi)
        _walk_free(w)
        free(w)


def tree_shap(X, feature, threshold, default_left, left, right, value, cover, tree_roots,
              tree_groups, max_depth, node_cat, cat_sets, out, n_threads):
    """Add the SHAP values of the rows of ``X`` to ``out`` (see ``treeshap_numpy.tree_shap``)."""
    tables = leaf_tables(feature, left, value, cover, tree_roots, max_depth)
    if tables is None:
        _tree_shap(X, feature, threshold, default_left, left, value, cover, tree_roots,
                   tree_groups, max_depth, node_cat, cat_sets, out, max(1, int(n_threads)))
    else:
        _tree_shap_tables(X, feature, threshold, default_left, left, tree_roots, tree_groups,
                          max_depth, node_cat, cat_sets, *tables, out, max(1, int(n_threads)))


def tree_shap_interactions(X, feature, threshold, default_left, left, right, value, cover,
                           tree_roots, tree_groups, tree_feature_ptr, tree_features, max_depth,
                           node_cat, cat_sets, out, n_threads):
    """Add the SHAP interaction values (see :func:`treeshap_numpy.tree_shap_interactions`)."""
    tables = leaf_tables(feature, left, value, cover, tree_roots, max_depth, interactions=True)
    if tables is None:
        _tree_shap_interactions(X, feature, threshold, default_left, left, value, cover,
                                tree_roots, tree_groups, tree_feature_ptr, tree_features,
                                max_depth, node_cat, cat_sets, out, max(1, int(n_threads)))
    else:
        _tree_shap_interactions_tables(X, feature, threshold, default_left, left, tree_roots,
                                       tree_groups, max_depth, node_cat, cat_sets, *tables, out,
                                       max(1, int(n_threads)))
