# cython: language_level=3
r"""Categorical splits of gradient boosting: the Cython kernels.

The loops of :mod:`categorical_numpy` (one-hot scan, or forward and backward
scans over the categories sorted by leaf weight; a stable insertion sort of
at most 256 categories), with xgboost's float32 roundings, OpenMP threads
over the (node, categorical feature) pairs of a level; the partition runs a
node per task and the prediction a block of rows per task, so the thread
count cannot change the answer.
"""

include "_common.pxi"
include "_boosting_common.pxi"
include "_constants_categorical.pxi"  # shared with categorical_numba (kernels/_constants.py)

from cython.parallel cimport prange

import numpy as np

from ._constants import THRESHOLDS
from ._threads import parallel_minimum  # 8 times more on a shared machine

# Below these, one thread (as splitting_cython and partition_cython): a parallel region
# costs more than the work, above all when other processes share the cores.
PARALLEL_MIN_WORK = THRESHOLDS["categorical"]["PARALLEL_MIN_WORK"]  # histogram slots of a level
PARALLEL_MIN_ROWS = THRESHOLDS["categorical"]["PARALLEL_MIN_ROWS"]  # rows partitioned

DEF MAX_CATEGORIES = 257  # bins of a feature (uint8 codes) and one missing slot


cdef void _search(const double* hist, intp_t nb, double sum_g, double sum_h, double parent,
                  const double* params, intp_t max_cat_to_onehot, intp_t max_cat_threshold,
                  double* out_gain, uint8_t* out_default_left, double* out_left_sums,
                  uint8_t* out_categories) noexcept nogil:
    cdef double best = 0.0, best_g = 0.0, best_h = 0.0, gain, forward, backward
    cdef double left_g, left_h, right_g, right_h, feature_g = 0.0, feature_h = 0.0
    cdef uint8_t best_default_left = 0
    cdef intp_t c, k, n, n_right = 0, best_c = -1, default_left, key_index
    cdef float key
    cdef float weights[MAX_CATEGORIES]
    cdef intp_t order[MAX_CATEGORIES]
    if nb < max_cat_to_onehot:
        for c in range(nb):
            feature_g += hist[2 * c]
            feature_h += hist[2 * c + 1]
        for c in range(nb):
            for default_left in range(1, -1, -1):
                right_g = hist[2 * c]
                right_h = hist[2 * c + 1]
                if default_left == 0:
                    right_g = right_g + (sum_g - feature_g)
                    right_h = right_h + (sum_h - feature_h)
                left_g = sum_g - right_g
                left_h = sum_h - right_h
                gain = split_gain(left_g, left_h, right_g, right_h, parent, params)
                if gain > best and gain != INFINITY:
                    best = gain
                    best_c = c
                    best_default_left = <uint8_t> default_left
                    best_g = left_g
                    best_h = left_h
        if best_c >= 0:
            out_categories[best_c] = 1
    else:
        # Stable insertion sort of the categories by leaf weight.
        for c in range(nb):
            key = leaf_weight(hist[2 * c], hist[2 * c + 1], params)
            k = c
            while k > 0 and weights[k - 1] > key:
                weights[k] = weights[k - 1]
                order[k] = order[k - 1]
                k -= 1
            weights[k] = key
            order[k] = c
        n = max_cat_threshold if max_cat_threshold < nb else nb
        right_g = 0.0
        right_h = 0.0
        for k in range(n - 1):  # forward: order[0..k] right, missing left
            right_g += hist[2 * order[k]]
            right_h += hist[2 * order[k] + 1]
            left_g = sum_g - right_g
            left_h = sum_h - right_h
            gain = split_gain(left_g, left_h, right_g, right_h, parent, params)
            if gain > best and gain != INFINITY:
                best = gain
                n_right = k + 1
                best_default_left = 1
                best_g = left_g
                best_h = left_h
        forward = best
        backward = 0.0
        left_g = 0.0
        left_h = 0.0
        k = nb - 1
        while k > nb - n:  # backward: order[k..] left, order[..k) and missing right
            left_g += hist[2 * order[k]]
            left_h += hist[2 * order[k] + 1]
            gain = split_gain(left_g, left_h, sum_g - left_g, sum_h - left_h, parent, params)
            if gain > backward and gain != INFINITY:
                backward = gain
                if backward > forward:
                    best = gain
                    n_right = k
                    best_default_left = 0
                    best_g = left_g
                    best_h = left_h
            k -= 1
        for k in range(n_right):
            out_categories[order[k]] = 1
    if best > 0.0:
        out_gain[0] = best
        out_default_left[0] = best_default_left
        out_left_sums[0] = best_g
        out_left_sums[1] = best_h


def _find_categorical_splits(const double[:, :, :, ::1] hists, const intp_t[::1] n_bins,    # IN
                             const intp_t[::1] features, const double[:, ::1] node_sums,   # IN
                             const double[::1] parent_scores, const double[::1] params,    # IN
                             const uint8_t[:, ::1] allowed_features,                        # IN
                             intp_t max_cat_to_onehot, intp_t max_cat_threshold,            # IN
                             double[:, ::1] out_gain, uint8_t[:, ::1] out_default_left,     # OUT
                             double[:, :, ::1] out_left_sums,                               # OUT
                             uint8_t[:, :, ::1] out_categories, int n_threads):             # OUT
    cdef intp_t n_cat = features.shape[0], task, j, i, f, c
    for task in prange(hists.shape[0] * n_cat, num_threads=n_threads, schedule="dynamic",
                       nogil=True):
        j = task // n_cat
        i = task % n_cat
        f = features[i]
        for c in range(out_categories.shape[2]):
            out_categories[j, i, c] = 0
        out_gain[j, f] = -INFINITY
        out_default_left[j, f] = 0
        out_left_sums[j, f, 0] = 0.0
        out_left_sums[j, f, 1] = 0.0
        if allowed_features[j, f]:
            _search(&hists[j, f, 0, 0], n_bins[f], node_sums[j, 0], node_sums[j, 1],
                    parent_scores[j], &params[0], max_cat_to_onehot, max_cat_threshold,
                    &out_gain[j, f], &out_default_left[j, f], &out_left_sums[j, f, 0],
                    &out_categories[j, i, 0])


def find_categorical_splits(hists, n_bins, features, node_sums, parent_scores, params,
                            allowed_features, max_cat_to_onehot, max_cat_threshold, out_gain,
                            out_default_left, out_left_sums, out_categories, n_threads):
    """Best categorical split per node and feature
    (see :func:`categorical_numpy.find_categorical_splits`)."""
    if hists.shape[2] > MAX_CATEGORIES:
        raise ValueError(f"at most {MAX_CATEGORIES} histogram slots per feature.")
    n_threads = max(1, int(n_threads))
    if hists.shape[0] * features.shape[0] * hists.shape[2] < parallel_minimum(PARALLEL_MIN_WORK):
        n_threads = 1
    _find_categorical_splits(hists, n_bins, features, node_sums, parent_scores, params,
                             allowed_features, max_cat_to_onehot, max_cat_threshold, out_gain,
                             out_default_left, out_left_sums, out_categories, n_threads)


def _partition_rows_categorical(const uint8_t[::1, :] binned_columns, intp_t[::1] rows,       # IN/OUT
                                const intp_t[::1] starts, const intp_t[::1] stops,         # IN
                                const intp_t[::1] features, const uint8_t[:, ::1] categories,  # IN
                                const uint8_t[::1] default_left, const intp_t[::1] n_bins,  # IN
                                intp_t[::1] scratch, intp_t[::1] out_n_left,                # OUT
                                int n_threads):
    cdef intp_t width = categories.shape[1], j, f, p, row, code, n_left, n_right
    cdef bint right
    for j in prange(starts.shape[0], num_threads=n_threads, schedule="dynamic", nogil=True):
        f = features[j]
        n_left = starts[j]
        n_right = starts[j]
        for p in range(starts[j], stops[j]):
            row = rows[p]
            code = binned_columns[row, f]
            if code == n_bins[f]:
                right = default_left[j] == 0
            else:
                right = code < width and categories[j, code] != 0
            if right:
                scratch[n_right] = row
                n_right = n_right + 1
            else:
                rows[n_left] = row  # never ahead of p: left rows keep their order in place
                n_left = n_left + 1
        for p in range(n_right - starts[j]):
            rows[n_left + p] = scratch[starts[j] + p]
        out_n_left[j] = n_left - starts[j]


def partition_rows_categorical(binned_columns, rows, starts, stops, features, categories,
                               default_left, n_bins, scratch, out_n_left, n_threads):
    """Stable partition by category sets
    (see :func:`categorical_numpy.partition_rows_categorical`)."""
    n_threads = max(1, int(n_threads))
    if int(np.sum(np.asarray(stops) - np.asarray(starts))) < parallel_minimum(PARALLEL_MIN_ROWS):
        n_threads = 1
    _partition_rows_categorical(binned_columns, rows, starts, stops, features, categories,
                                default_left, n_bins, scratch, out_n_left, n_threads)


cdef void _predict_block(const floating[:, ::1] X, const int* nodes, const float[::1] value,
                         const uint8_t[:, ::1] cat_sets, const intp_t[::1] tree_roots,
                         const intp_t[::1] tree_depths, const intp_t[::1] tree_groups,
                         double[:, ::1] out, intp_t start, intp_t stop) noexcept nogil:
    """All trees for rows start:stop walking down in lockstep, exactly ``depth`` steps per
    tree (leaves are absorbing nodes), as tree_predict_cython's node-array kernel."""
    cdef intp_t position[BLOCK]
    cdef intp_t t, i, level, n = stop - start, width = cat_sets.shape[1], code
    cdef const int* node
    cdef floating x
    for t in range(tree_roots.shape[0]):
        for i in range(n):
            position[i] = tree_roots[t]
        for level in range(tree_depths[t]):
            for i in range(n):
                node = nodes + 4 * position[i]
                x = X[start + i, node[1]]
                if x != x:  # missing: the learned default direction
                    position[i] = node[0] + (0 if node[3] & 1 else 1)
                elif node[3] & 2:  # a category set: its categories go right
                    code = <intp_t> x if (x >= 0 and x < width) else -1
                    position[i] = node[0] + (1 if code >= 0 and cat_sets[node[2], code] else 0)
                else:  # NaN threshold (a leaf): x >= NaN is false, the row stays
                    position[i] = node[0] + (1 if x >= (<const float*> (node + 2))[0] else 0)
        for i in range(n):
            out[start + i, tree_groups[t]] += value[position[i]]


def _predict_raw_categorical(const floating[:, ::1] X, const int[:, ::1] packed,           # IN
                             const float[::1] value, const uint8_t[:, ::1] cat_sets,       # IN
                             const intp_t[::1] tree_roots, const intp_t[::1] tree_depths,  # IN
                             const intp_t[::1] tree_groups, double[:, ::1] out,            # OUT
                             int n_threads):
    """``packed[k] = (left, feature, threshold bits or set row, flags)``: one 16-byte node;
    flags bit 0: missing goes left, bit 1: categorical split."""
    cdef intp_t n_rows = X.shape[0], block, start
    cdef const int* nodes = &packed[0, 0]
    for block in prange((n_rows + BLOCK - 1) // BLOCK, num_threads=n_threads,
                        schedule="static", nogil=True):
        start = block * BLOCK
        _predict_block(X, nodes, value, cat_sets, tree_roots, tree_depths, tree_groups, out,
                       start, start + BLOCK if start + BLOCK < n_rows else n_rows)


def _tree_depths(left, right, tree_roots):
    """Depth of each tree (edges on its longest root-to-leaf path), one level at a time."""
    depths = np.zeros(tree_roots.shape[0], dtype=np.intp)
    nodes = np.asarray(tree_roots, dtype=np.intp)
    trees = np.arange(tree_roots.shape[0], dtype=np.intp)
    level = 0
    while nodes.size:
        split = left[nodes] != -1
        nodes, trees = nodes[split], trees[split]
        level += 1
        depths[trees] = level
        nodes, trees = np.concatenate([left[nodes], right[nodes]]), np.concatenate([trees, trees])
    return depths


def predict_raw_categorical(X, feature, threshold, default_left, left, right, value, node_cat,
                            cat_sets, tree_roots, tree_groups, out, n_threads):
    """Forest prediction with categorical nodes
    (see :func:`categorical_numpy.predict_raw_categorical`).

    The node fields are packed into one int32 row per node, a leaf as a node that
    points to itself with a NaN threshold and "missing goes left" (tree_predict_cython's
    layout, plus a categorical flag whose third field is the row of ``cat_sets``).
    """
    left = np.asarray(left, dtype=np.intp)
    right = np.asarray(right, dtype=np.intp)
    leaves = left == -1
    categorical = np.asarray(node_cat) >= 0
    packed = np.empty((left.shape[0], 4), dtype=np.int32)
    packed[:, 0] = np.where(leaves, np.arange(left.shape[0]), left)
    packed[:, 1] = np.where(leaves, 0, feature)
    packed[:, 2] = np.where(leaves, np.float32(np.nan),
                            np.asarray(threshold, dtype=np.float32)).view(np.int32)
    packed[categorical, 2] = np.asarray(node_cat)[categorical]
    packed[:, 3] = (np.where(leaves, 1, default_left).astype(np.int32)
                    | np.where(categorical, 2, 0).astype(np.int32))
    tree_roots = np.asarray(tree_roots, dtype=np.intp)
    _predict_raw_categorical(X, packed, value, cat_sets, tree_roots,
                             _tree_depths(left, right, tree_roots), tree_groups, out,
                             max(1, int(n_threads)))
