# cython: language_level=3
r"""Prediction of a forest of binary trees: the Cython kernels.

As :mod:`tree_predict_numba`: rows in blocks of ``BLOCK``, OpenMP threads over
blocks; each block meets every tree in order, and each row's output is summed
over the trees in order, so the result does not depend on the number of
threads. The two children of a node are stored next to each other
(``right == left + 1``), so a step down the tree is ``left + (not go_left)``.
"""

include "_common.pxi"
include "_boosting_common.pxi"

from cython.parallel cimport prange
from libc.math cimport isnan

DEF BLOCK = 64


def _predict_raw(const float[:, ::1] X, const intp_t[::1] feature,                    # IN
                 const float[::1] threshold, const uint8_t[::1] default_left,         # IN
                 const intp_t[::1] left, const float[::1] value,                      # IN
                 const intp_t[::1] tree_roots, const intp_t[::1] tree_groups,         # IN
                 double[:, ::1] out,                                                  # IN/OUT
                 int n_threads):
    cdef intp_t n_rows = X.shape[0]
    cdef intp_t n_blocks = (n_rows + BLOCK - 1) // BLOCK
    cdef intp_t block, start, stop, t, i, k, group
    cdef float x
    cdef bint go_left
    for block in prange(n_blocks, num_threads=n_threads, schedule="static", nogil=True):
        start = block * BLOCK
        stop = min(start + BLOCK, n_rows)
        for t in range(tree_roots.shape[0]):
            group = tree_groups[t]
            for i in range(start, stop):
                k = tree_roots[t]
                while left[k] != -1:
                    x = X[i, feature[k]]
                    if isnan(x):
                        go_left = default_left[k] != 0
                    else:
                        go_left = x < threshold[k]
                    k = left[k] + (0 if go_left else 1)
                out[i, group] += value[k]


def _predict_binned(const uint8_t[:, ::1] binned, const intp_t[::1] feature,           # IN
                    const intp_t[::1] bin_threshold, const uint8_t[::1] default_left,  # IN
                    const intp_t[::1] left, const float[::1] value,                    # IN
                    const intp_t[::1] missing_bin,                                     # IN
                    const intp_t[::1] tree_roots, const intp_t[::1] tree_groups,       # IN
                    double[:, ::1] out,                                                # IN/OUT
                    int n_threads):
    cdef intp_t n_rows = binned.shape[0]
    cdef intp_t n_blocks = (n_rows + BLOCK - 1) // BLOCK
    cdef intp_t block, start, stop, t, i, k, group, f, b
    cdef bint go_left
    for block in prange(n_blocks, num_threads=n_threads, schedule="static", nogil=True):
        start = block * BLOCK
        stop = min(start + BLOCK, n_rows)
        for t in range(tree_roots.shape[0]):
            group = tree_groups[t]
            for i in range(start, stop):
                k = tree_roots[t]
                while left[k] != -1:
                    f = feature[k]
                    b = binned[i, f]
                    if b == missing_bin[f]:
                        go_left = default_left[k] != 0
                    else:
                        go_left = b <= bin_threshold[k]
                    k = left[k] + (0 if go_left else 1)
                out[i, group] += value[k]


def predict_raw(X, feature, threshold, default_left, left, right, value, tree_roots,
                tree_groups, out, n_threads):
    """Add the forest's leaf values for raw rows (see :func:`tree_predict_numpy.predict_raw`)."""
    _predict_raw(X, feature, threshold, default_left, left, value, tree_roots, tree_groups, out,
                 max(1, int(n_threads)))


def predict_binned(binned, feature, bin_threshold, default_left, left, right, value, missing_bin,
                   tree_roots, tree_groups, out, n_threads):
    """Add the forest's leaf values for binned rows."""
    _predict_binned(binned, feature, bin_threshold, default_left, left, value, missing_bin,
                    tree_roots, tree_groups, out, max(1, int(n_threads)))
