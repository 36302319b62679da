"""Growing trees on sparse data from its stored entries only (xgboost's sparse ``hist``).

A scipy sparse ``X`` whose absent entries are missing is binned into a table
of codes of its stored entries (:class:`~.binning.SparseBins`), not into the
dense ``n x d`` table: a node's histogram then costs its rows' stored entries
(``build_sparse_histograms``: the missing slot of each feature is the node's
sums minus its present bins, as xgboost's evaluator takes it) and a split's
partition costs the node's rows plus one column's stored entries
(``partition_sparse_rows``). :class:`SparseRows` plugs them into
:class:`~.grower.TreeGrower` through its ``source=`` seam; the split search,
the subtraction trick, node numbering and leaf values are the dense ones, so
the trees are those of the same data dense with NaN.

The path is taken when the stored entries are at most :data:`MAX_DENSITY` of
``n x d`` and the fit needs nothing the table does not give (see
:func:`use_sparse_path`).
"""

import numpy as np
import scipy.sparse as sp

from .._backend import resolve_kernel
from ..kernels._threads import parallel_minimum

MAX_DENSITY = 0.1
"""Densest input grown from stored entries; denser data use the dense bin table.

Measured (CPU seconds of one thread, 10 trees of depth 6 on Poisson counts
100k x 1000, a shared 2-core machine), sparse path / dense path: 0.14 / 0.80
at 1% density, 0.41 / 1.03 at 5%, 0.72 / 1.25 at 10%, 1.44 / 1.77 at 20%. On
2 threads the dense path also splits the root and the first level between
the threads, which the sparse path (threads take whole nodes) does not, so
the gain above 10% is too small to count on.
"""

KERNELS = ("build_sparse_histograms", "partition_sparse_rows")
PARALLEL_MIN_ENTRIES = 1 << 16
"""Stored entries of a level's built nodes below which one thread builds their histograms."""
PARALLEL_MIN_ROWS = 1 << 17
"""Rows of a level's split nodes below which one thread partitions them (as the dense kernels)."""


def use_sparse_path(X, subsample, categorical):
    """Whether a fit on ``X`` grows its trees from the stored entries.

    Sparse ``X`` at most :data:`MAX_DENSITY` dense, without row subsampling
    (rows left out of a tree's sample are predicted from the dense table) and
    without categorical features (refused on sparse input anyway).
    """
    if not sp.issparse(X) or subsample < 1.0 or np.any(categorical):
        return False
    return X.nnz <= MAX_DENSITY * X.shape[0] * X.shape[1]


class SparseTable:
    """The binned sparse training data and its kernels, shared by every tree of a fit."""

    def __init__(self, bins, n_bins, backend, n_threads):
        self.bins = bins
        self.n_bins = np.ascontiguousarray(n_bins, dtype=np.intp)
        self.kernels = {name: resolve_kernel(name, backend)[0] for name in KERNELS}
        self.n_threads = n_threads
        n = bins.shape[0]
        self.marks = np.zeros(n, dtype=np.intp)
        self.goes_left = np.zeros(n, dtype=np.uint8)
        # Stands for the dense table where only its shape is read (no memory per row).
        self.shape_only = np.broadcast_to(np.zeros(1, dtype=np.uint8), bins.shape)
        self.row_length = bins.codes.shape[0] / max(1, n)  # stored entries per row, on average

    def threads_for(self, work, minimum):
        """Threads for a level of ``work`` (one below ``minimum``, more when the machine is
        shared: a parallel region then waits for its second thread longer than the work
        takes; ``kernels._threads.parallel_minimum``). No result depends on it."""
        return self.n_threads if work >= parallel_minimum(minimum) else 1

    def source(self, rows, scratch, gradients, hessians, n_root_rows):
        """The ``source=`` of one tree's :class:`~.grower.TreeGrower`."""
        return SparseRows(self, rows, scratch, gradients, hessians, n_root_rows)


class SparseRows:
    """A :class:`~.grower.TreeGrower` source over a :class:`SparseTable` (one tree).

    Parameters
    ----------
    table : SparseTable
    rows, scratch : ndarray of shape (n,), intp
        The grower's row order (reordered in place by the partitions) and work array.
    gradients, hessians : ndarray of shape (n,), float32
    n_root_rows : int
    """

    def __init__(self, table, rows, scratch, gradients, hessians, n_root_rows):
        self.table = table
        self.rows, self.scratch = rows, scratch
        self.gradients, self.hessians = gradients, hessians
        self.n_root_rows = n_root_rows

    def build_histograms(self, nodes, out):
        """The nodes' histograms (missing slots included) into ``out``."""
        t = self.table
        starts = np.array([node.start for node in nodes], dtype=np.intp)
        stops = np.array([node.stop for node in nodes], dtype=np.intp)
        entries = float((stops - starts).sum()) * t.row_length
        t.kernels["build_sparse_histograms"](t.bins.indptr, t.bins.indices, t.bins.codes,
                                             self.rows, starts, stops, self.gradients,
                                             self.hessians, t.n_bins, out,
                                             t.threads_for(entries, PARALLEL_MIN_ENTRIES))

    def partition(self, splitting):
        """Each split node's rows, left then right; sets ``node.n_left``."""
        t = self.table
        k = len(splitting)
        n_left = np.empty(k, dtype=np.intp)
        starts = np.array([node.start for node in splitting], dtype=np.intp)
        stops = np.array([node.stop for node in splitting], dtype=np.intp)
        t.kernels["partition_sparse_rows"](
            t.bins.col_ptr, t.bins.col_rows, t.bins.col_codes, self.rows, starts, stops,
            np.array([node.split.feature for node in splitting], dtype=np.intp),
            np.array([node.split.bin for node in splitting], dtype=np.intp),
            np.array([node.split.default_left for node in splitting], dtype=np.uint8),
            t.marks, t.goes_left, self.scratch, n_left,
            t.threads_for(int((stops - starts).sum()), PARALLEL_MIN_ROWS))
        for node, count in zip(splitting, n_left):
            node.n_left = int(count)

    def row_order_sums(self):
        """The root's (gradient, hessian) sums over its rows in order, float64 (as xgboost)."""
        sampled = self.rows[:self.n_root_rows]
        return (np.add.accumulate(self.gradients[sampled], dtype=np.float64)[-1],
                np.add.accumulate(self.hessians[sampled], dtype=np.float64)[-1])
