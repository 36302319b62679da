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

MAX_DENSITY = 0.1
"""Densest input grown from stored entries; denser data use the dense bin table.

Measured on CSR counts 100k x 1000, depth-6 trees, 2 threads (a shared
2-core machine): see the module's report in benchmarks/test_bench_boosting_sparse.py.
"""

KERNELS = ("build_sparse_histograms", "partition_sparse_rows")


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
        starts = np.array([node["start"] for node in nodes], dtype=np.intp)
        stops = np.array([node["stop"] for node in nodes], dtype=np.intp)
        t.kernels["build_sparse_histograms"](t.bins.indptr, t.bins.indices, t.bins.codes,
                                             self.rows, starts, stops, self.gradients,
                                             self.hessians, t.n_bins, out, t.n_threads)

    def partition(self, splitting):
        """Each split node's rows, left then right; sets ``node["n_left"]``."""
        t = self.table
        k = len(splitting)
        n_left = np.empty(k, dtype=np.intp)
        t.kernels["partition_sparse_rows"](
            t.bins.col_ptr, t.bins.col_rows, t.bins.col_codes, self.rows,
            np.array([node["start"] for node in splitting], dtype=np.intp),
            np.array([node["stop"] for node in splitting], dtype=np.intp),
            np.array([node["split"].feature for node in splitting], dtype=np.intp),
            np.array([node["split"].bin for node in splitting], dtype=np.intp),
            np.array([node["split"].default_left for node in splitting], dtype=np.uint8),
            t.marks, t.goes_left, self.scratch, n_left, t.n_threads)
        for node, count in zip(splitting, n_left):
            node["n_left"] = int(count)

    def row_order_sums(self):
        """The root's (gradient, hessian) sums over its rows in order, float64 (as xgboost)."""
        sampled = self.rows[:self.n_root_rows]
        return (np.add.accumulate(self.gradients[sampled], dtype=np.float64)[-1],
                np.add.accumulate(self.hessians[sampled], dtype=np.float64)[-1])
