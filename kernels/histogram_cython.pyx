# cython: language_level=3
r"""Gradient histograms of gradient boosting: the Cython kernels.

Same sums and order as :mod:`histogram_numpy` and the same threading as
:mod:`histogram_numba`: one call builds the histograms of all the nodes of a
tree level; OpenMP threads split the features into contiguous groups, and each
thread walks every node's rows in order, adding each row's gradient and
hessian to its own features' bins. No per-thread copies, no reduction; every
(feature, bin) sum is made in row order by one thread, so the result does not
depend on the number of threads. A bin's gradient and hessian sums are
adjacent, and one SSE2 packed addition updates both (``fs_add_pair``).
``build_class_histograms`` does the same for the root of every class tree of
a multiclass round, in blocks of rows that every class adds while the block's
codes are in cache.
"""

include "_common.pxi"
include "_boosting_common.pxi"
# CLASS_BLOCK, BIN_BLOCK, PARALLEL_MIN_SUBTRACT: shared with histogram_numba (kernels/_constants.py)
include "_constants_histogram.pxi"

import numpy as np
from cython.parallel cimport prange

from ._constants import THRESHOLDS
from ._threads import parallel_minimum
from libc.math cimport isnan

# Rows of a level below which one thread builds the histograms on an idle
# machine: about 0.25 ms of serial work (28 features), many times an idle
# parallel region's cost. Eight times more (2 ms) on a shared machine, where
# the wait for a second thread is longer than the work (kernels._threads.
# parallel_minimum; the partition kernels use the same rule).
PARALLEL_MIN_ROWS = THRESHOLDS["histogram"]["PARALLEL_MIN_ROWS"]

# One row's (gradient, hessian) added to one bin's two adjacent float64 sums.
# With SSE2 (every x86-64) the two additions are one packed addition: one load,
# one add and one store per (row, feature) instead of two of each, which is
# what the histogram loop spends its time on. Each lane is the same IEEE
# float64 addition as the scalar fallback, so the sums are bit-identical.
cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    static inline void fs_add_pair(double* bin, double g, double h) {
        _mm_storeu_pd(bin, _mm_add_pd(_mm_loadu_pd(bin), _mm_set_pd(h, g)));
    }
    #else
    static inline void fs_add_pair(double* bin, double g, double h) {
        bin[0] += g;
        bin[1] += h;
    }
    #endif
    """
    void fs_add_pair(double* bin, double g, double h) noexcept nogil

# Below the root a node's rows are scattered over the data: ask for the codes
# and gradients of the row PREFETCH_ROWS ahead while adding this one (a hint;
# it changes no result). 2.2x faster on a node holding 10% of 1M rows; asking
# for both cache lines of a 28-byte row, 32 rows ahead, and four features per
# step made one tree's histograms (1M x 28, depth 6, one thread) 1.77x faster
# again (45 ms to 25.5 ms CPU).
cdef extern from *:
    """
    #define fs_prefetch(address) __builtin_prefetch((address), 0, 1)
    """
    void fs_prefetch(const void* address) noexcept nogil

DEF PREFETCH_ROWS = 32


cdef inline void _add_row(double* hist, const uint8_t* row, intp_t n_slots, intp_t f_start,
                          intp_t f_stop, double g, double h) noexcept nogil:
    """Add one row's (g, h) to the bins of its features f_start:f_stop.

    Four features per step: four independent read-modify-writes in flight
    (different features' bins never alias), which the loop with one per step
    left to the CPU's reordering; same additions in the same order per bin.
    """
    cdef intp_t f = f_start
    while f + 4 <= f_stop:
        fs_add_pair(&hist[(f * n_slots + row[f]) * 2], g, h)
        fs_add_pair(&hist[((f + 1) * n_slots + row[f + 1]) * 2], g, h)
        fs_add_pair(&hist[((f + 2) * n_slots + row[f + 2]) * 2], g, h)
        fs_add_pair(&hist[((f + 3) * n_slots + row[f + 3]) * 2], g, h)
        f = f + 4
    while f < f_stop:
        fs_add_pair(&hist[(f * n_slots + row[f]) * 2], g, h)
        f = f + 1


cdef void _histograms_group(const uint8_t[:, ::1] binned, const intp_t[::1] rows,
                            const intp_t[::1] node_starts, const intp_t[::1] node_stops,
                            const float[::1] gradients, const float[::1] hessians,
                            double[:, :, :, ::1] out_hists, intp_t f_start,
                            intp_t f_stop) noexcept nogil:
    cdef intp_t n_features = binned.shape[1]
    cdef intp_t n_slots = out_hists.shape[2]
    cdef intp_t j, i, f, r, ahead
    cdef double* hist
    for j in range(node_starts.shape[0]):
        hist = &out_hists[j, 0, 0, 0]
        for f in range(f_start * n_slots * 2, f_stop * n_slots * 2):
            hist[f] = 0.0
        for i in range(node_starts[j], node_stops[j]):
            if i + PREFETCH_ROWS < node_stops[j]:
                # A row's codes may straddle two cache lines: ask for both ends.
                ahead = rows[i + PREFETCH_ROWS]
                fs_prefetch(&binned[ahead, f_start])
                fs_prefetch(&binned[ahead, f_stop - 1])
                fs_prefetch(&gradients[ahead])
                fs_prefetch(&hessians[ahead])
            r = rows[i]
            _add_row(hist, &binned[r, 0], n_slots, f_start, f_stop, gradients[r], hessians[r])


def _build_histograms(const uint8_t[:, ::1] binned, const intp_t[::1] rows,           # IN
                      const intp_t[::1] node_starts, const intp_t[::1] node_stops,    # IN
                      const float[::1] gradients, const float[::1] hessians,          # IN
                      double[:, :, :, ::1] out_hists,                                 # OUT
                      int n_groups, int n_threads):
    cdef intp_t n_features = binned.shape[1]
    cdef int group
    with nogil:
        for group in prange(n_groups, num_threads=n_threads, schedule="static"):
            _histograms_group(binned, rows, node_starts, node_stops, gradients, hessians,
                              out_hists, group * n_features // n_groups,
                              (group + 1) * n_features // n_groups)


cdef void _class_histograms_group(const uint8_t[:, ::1] binned, const intp_t[::1] rows,
                                  intp_t start, intp_t stop, const float[:, ::1] gradients,
                                  const float[:, ::1] hessians, double[:, :, :, ::1] out_hists,
                                  intp_t f_start, intp_t f_stop) noexcept nogil:
    cdef intp_t n_slots = out_hists.shape[2]
    cdef intp_t n_classes = out_hists.shape[0]
    cdef intp_t k, i, f, r, block_start, block_stop
    cdef double* hist
    for k in range(n_classes):
        hist = &out_hists[k, 0, 0, 0]
        for f in range(f_start * n_slots * 2, f_stop * n_slots * 2):
            hist[f] = 0.0
    block_start = start
    while block_start < stop:
        block_stop = min(block_start + CLASS_BLOCK, stop)
        for k in range(n_classes):
            hist = &out_hists[k, 0, 0, 0]
            for i in range(block_start, block_stop):
                r = rows[i]
                _add_row(hist, &binned[r, 0], n_slots, f_start, f_stop, gradients[k, r],
                         hessians[k, r])
        block_start = block_stop


def _build_class_histograms(const uint8_t[:, ::1] binned, const intp_t[::1] rows,    # IN
                            intp_t start, intp_t stop,                                # IN
                            const float[:, ::1] gradients, const float[:, ::1] hessians,  # IN
                            double[:, :, :, ::1] out_hists,                           # OUT
                            int n_groups, int n_threads):
    cdef intp_t n_features = binned.shape[1]
    cdef int group
    with nogil:
        for group in prange(n_groups, num_threads=n_threads, schedule="static"):
            _class_histograms_group(binned, rows, start, stop, gradients, hessians, out_hists,
                                    group * n_features // n_groups,
                                    (group + 1) * n_features // n_groups)


def _subtract_histograms(const double[:, :, :, ::1] parent_hists,                     # IN
                         const intp_t[::1] parent_index,                              # IN
                         const double[:, :, :, ::1] child_hists,                      # IN
                         double[:, :, :, ::1] out_hists,                              # OUT
                         int n_threads):
    cdef intp_t k = child_hists.shape[0]
    cdef intp_t size = child_hists.shape[1] * child_hists.shape[2] * 2
    cdef intp_t j, e
    cdef const double* parent
    cdef const double* child
    cdef double* out
    for j in prange(k, num_threads=n_threads, schedule="static", nogil=True):
        parent = &parent_hists[parent_index[j], 0, 0, 0]
        child = &child_hists[j, 0, 0, 0]
        out = &out_hists[j, 0, 0, 0]
        for e in range(size):
            out[e] = parent[e] - child[e]



cdef void _map_block_to_bins(const float[:, ::1] X, const float[::1] cut_values,
                             const intp_t[::1] cut_ptr, uint8_t[:, ::1] out_binned,
                             intp_t row_start, intp_t row_stop) noexcept nogil:
    """Rows row_start:row_stop, one feature at a time: consecutive searches then run over
    the same cut points with the same number of halvings (a loop the branch predictor
    learns), so the CPU overlaps them; the block's values stay in cache meanwhile."""
    cdef intp_t i, f, start, n_cuts, low, base, size, half
    cdef float x
    for f in range(X.shape[1]):
        start = cut_ptr[f]
        n_cuts = cut_ptr[f + 1] - start
        for i in range(row_start, row_stop):
            x = X[i, f]
            if isnan(x):
                out_binned[i, f] = <uint8_t> n_cuts
                continue
            # upper_bound (first cut strictly above x), branch-free halving.
            base = start
            size = n_cuts
            while size > 1:
                half = size >> 1
                base = base + (half if cut_values[base + half] <= x else 0)
                size = size - half
            low = base - start + (1 if cut_values[base] <= x else 0)
            if low > n_cuts - 1:
                low = n_cuts - 1
            out_binned[i, f] = <uint8_t> low


def _map_to_bins(const float[:, ::1] X, const float[::1] cut_values,                  # IN
                 const intp_t[::1] cut_ptr,                                           # IN
                 uint8_t[:, ::1] out_binned,                                          # OUT
                 int n_threads):
    cdef intp_t n_rows = X.shape[0]
    cdef intp_t n_blocks = (n_rows + BIN_BLOCK - 1) // BIN_BLOCK
    cdef intp_t block
    for block in prange(n_blocks, num_threads=n_threads, schedule="dynamic", chunksize=16,
                        nogil=True):
        _map_block_to_bins(X, cut_values, cut_ptr, out_binned, block * BIN_BLOCK,
                           min((block + 1) * BIN_BLOCK, n_rows))


def map_to_bins(X, cut_values, cut_ptr, out_binned, n_threads):
    """Bin codes (see :func:`histogram_numpy.map_to_bins`); threads over blocks of rows."""
    _map_to_bins(X, cut_values, cut_ptr, out_binned, max(1, int(n_threads)))


def build_histograms(binned, rows, node_starts, node_stops, gradients, hessians, out_hists,
                     n_threads):
    """Histograms of a level's nodes (see :func:`histogram_numpy.build_histograms`)."""
    n_rows = int(np.sum(node_stops - node_starts))
    n_threads = max(1, int(n_threads))
    if n_rows < parallel_minimum(PARALLEL_MIN_ROWS):
        n_threads = 1
    n_groups = max(1, min(n_threads, binned.shape[1]))
    _build_histograms(binned, rows, node_starts, node_stops, gradients, hessians, out_hists,
                      n_groups, n_groups)


def build_class_histograms(binned, rows, start, stop, gradients, hessians, out_hists,
                           n_threads):
    """One node's histograms for every class (see :func:`histogram_numpy.build_class_histograms`).

    Rows in blocks of ``CLASS_BLOCK``: every class adds a block while its codes
    are in cache, so the binned data are read from memory once per round.
    """
    n_threads = max(1, int(n_threads))
    if stop - start < parallel_minimum(PARALLEL_MIN_ROWS):
        n_threads = 1
    n_groups = max(1, min(n_threads, binned.shape[1]))
    _build_class_histograms(binned, rows, start, stop, gradients, hessians, out_hists,
                            n_groups, n_groups)


def subtract_histograms(parent_hists, parent_index, child_hists, out_hists, n_threads):
    """``out_hists[j] = parent_hists[parent_index[j]] - child_hists[j]``."""
    n_threads = max(1, int(n_threads)) if child_hists.size >= PARALLEL_MIN_SUBTRACT else 1
    _subtract_histograms(parent_hists, parent_index, child_hists, out_hists, n_threads)
