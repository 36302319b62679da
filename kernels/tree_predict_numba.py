r"""Prediction of a forest of binary trees: the Numba kernels.

Rows go in blocks of ``BLOCK`` (one block per thread at a time); each block
meets every tree in order while the tree's nodes stay in cache. The two
children of a node are stored next to each other (``right == left + 1``,
checked by the forest), so a step down is ``left + (not go_left)``. Each row's
output is summed over the trees in order, as in :mod:`tree_predict_numpy`,
so the result does not depend on the number of threads.
``predict_complete`` walks the complete layout of :mod:`tree_predict_numpy`:
the rows of a block descend a tree in lockstep, exactly its depth in steps,
with no child indices to load and no branch (``k = 2k + 1 + goes_right``).
"""

import numba
import numpy as np

from ._constants import FAMILIES
from ._threads import numba_threads

_SHARED = FAMILIES["tree_predict"]  # shared with tree_predict_cython
BLOCK = _SHARED["BLOCK"]


@numba.njit(cache=True, nogil=True, parallel=True)
def _predict_raw(X, feature, threshold, default_left, left, right, value, tree_roots,
                 tree_groups, out):
    n_rows = X.shape[0]
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for block in numba.prange(n_blocks):
        start = block * BLOCK
        n = min(start + BLOCK, n_rows) - start
        position = np.empty(BLOCK, dtype=np.intp)
        for t in range(tree_roots.shape[0]):
            # The block's rows walk down the tree in lockstep, one level per pass:
            # independent chains of loads that the CPU overlaps.
            for i in range(n):
                position[i] = tree_roots[t]
            n_active = n
            while n_active > 0:
                n_active = 0
                for i in range(n):
                    k = position[i]
                    if left[k] == -1:
                        continue
                    x = X[start + i, feature[k]]
                    if np.isnan(x):
                        go_left = default_left[k] != 0
                    else:
                        go_left = x < threshold[k]
                    position[i] = left[k] + (0 if go_left else 1)  # right == left + 1
                    n_active += 1
            group = tree_groups[t]
            for i in range(n):
                out[start + i, group] += np.float64(value[position[i]])


@numba.njit(cache=True, nogil=True, parallel=True)
def _predict_binned(binned, feature, bin_threshold, default_left, left, right, value,
                    missing_bin, tree_roots, tree_groups, out):
    n_rows = binned.shape[0]
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
                    f = feature[k]
                    b = np.intp(binned[i, f])
                    if b == missing_bin[f]:
                        go_left = default_left[k] != 0
                    else:
                        go_left = b <= bin_threshold[k]
                    k = left[k] + (0 if go_left else 1)  # right == left + 1
                out[i, group] += np.float64(value[k])


@numba.njit(cache=True, nogil=True, parallel=True)
def _predict_complete(X, node_split, node_threshold, leaf_value, tree_node_starts,
                      tree_leaf_starts, tree_depths, tree_groups, out):
    n_rows = X.shape[0]
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for block in numba.prange(n_blocks):
        start = block * BLOCK
        n = min(start + BLOCK, n_rows) - start
        position = np.empty(BLOCK, dtype=np.int32)
        for t in range(tree_node_starts.shape[0]):
            nodes = tree_node_starts[t]
            for i in range(n):
                position[i] = 0
            for _ in range(tree_depths[t]):
                for i in range(n):
                    k = position[i]
                    split = node_split[nodes + k]
                    x = X[start + i, split & 0x7FFFFFFF]
                    # NaN: x >= threshold is false; bit 31 (split < 0) sends it right.
                    goes_right = (x >= node_threshold[nodes + k]) | ((x != x) & (split < 0))
                    position[i] = 2 * k + 1 + np.int32(goes_right)
            leaves = tree_leaf_starts[t] - (2 ** tree_depths[t] - 1)
            group = tree_groups[t]
            for i in range(n):
                out[start + i, group] += np.float64(leaf_value[leaves + position[i]])


def predict_raw(X, feature, threshold, default_left, left, right, value, tree_roots,
                tree_groups, out, n_threads):
    """Add the forest's leaf values for raw rows (see :func:`tree_predict_numpy.predict_raw`)."""
    with numba_threads(n_threads):
        _predict_raw(X, feature, threshold, default_left, left, right, value, tree_roots,
                     tree_groups, out)


def predict_complete(X, node_split, node_threshold, leaf_value, tree_node_starts,
                     tree_leaf_starts, tree_depths, tree_groups, out, n_threads):
    """Add the forest's leaf values for raw rows, complete layout
    (see :func:`tree_predict_numpy.predict_complete`)."""
    with numba_threads(n_threads):
        _predict_complete(X, node_split, node_threshold, leaf_value, tree_node_starts,
                          tree_leaf_starts, tree_depths, tree_groups, out)


def predict_binned(binned, feature, bin_threshold, default_left, left, right, value, missing_bin,
                   tree_roots, tree_groups, out, n_threads):
    """Add the forest's leaf values for binned rows."""
    with numba_threads(n_threads):
        _predict_binned(binned, feature, bin_threshold, default_left, left, right, value,
                        missing_bin, tree_roots, tree_groups, out)
