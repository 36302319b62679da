r"""Prediction of a forest of binary trees: the Numba kernels.

Rows go in blocks of ``BLOCK`` (one block per thread at a time); each block
meets every tree in order while the tree's nodes stay in cache. The two
children of a node are stored next to each other (``right == left + 1``,
checked by the forest), so a step down is ``left + (not go_left)``. Each row's
output is summed over the trees in order, as in :mod:`tree_predict_numpy`,
so the result does not depend on the number of threads.
"""

import numba
import numpy as np

from ._threads import numba_threads

BLOCK = 64


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


def predict_raw(X, feature, threshold, default_left, left, right, value, tree_roots,
                tree_groups, out, n_threads):
    """Add the forest's leaf values for raw rows (see :func:`tree_predict_numpy.predict_raw`)."""
    with numba_threads(n_threads):
        _predict_raw(X, feature, threshold, default_left, left, right, value, tree_roots,
                     tree_groups, out)


def predict_binned(binned, feature, bin_threshold, default_left, left, right, value, missing_bin,
                   tree_roots, tree_groups, out, n_threads):
    """Add the forest's leaf values for binned rows."""
    with numba_threads(n_threads):
        _predict_binned(binned, feature, bin_threshold, default_left, left, right, value,
                        missing_bin, tree_roots, tree_groups, out)
