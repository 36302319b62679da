r"""k-nearest-neighbour classification, regression and search.

:class:`KNeighborsClassifier`, :class:`KNeighborsRegressor` and
:class:`NearestNeighbors` follow scikit-learn's estimators of the same names
(parameters, attributes, ``kneighbors``, ``kneighbors_graph``,
``radius_neighbors``, ``radius_neighbors_graph``, multi-output targets, the
zero-distance rule of ``weights="distance"``). ``algorithm`` chooses the
search at fit (``_fit_method``), every one exact and with the same answers:

- brute force with the top-k distance kernels of :mod:`fastscratch.kernels`:
  ``sqeuclidean_topk`` for "euclidean", "sqeuclidean" and "minkowski" with
  p=2; ``cosine_topk`` for "cosine"; ``manhattan_topk`` for "manhattan" and
  p=1; ``chebyshev_topk`` for "chebyshev" and p=inf; ``minkowski_topk`` for
  any other p; the ``sparse_*_topk`` kernels for CSR input (never densified);
  a row-wise selection for ``metric="precomputed"``;
- a KD-tree or ball tree (:class:`fastscratch._spatial_tree.SpatialTree`);
- "auto": the measured rule of :func:`auto_algorithm`.

Queries are processed in batches of at most ``_batch_size(k)`` rows, and every
kernel works in cache-sized blocks, so ``predict`` and ``predict_proba`` on
1M queries against 1M training points run in memory bounded by the training
data, the output and a few MB per batch: no queries x train matrix is ever
built (``kneighbors`` itself returns the m x k neighbour arrays). Radius
queries by brute force compute exact float64 distances block by block (about
32 MB per block).
"""

import numbers
import os
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from ._backend import effective_n_threads, resolve_backend, resolve_kernel
from ._labels import check_label_kinds
from ._sparse_checks import check_sparse_structure

ALGORITHMS = ("auto", "kd_tree", "ball_tree", "brute")
METRICS = ("euclidean", "sqeuclidean", "manhattan", "chebyshev", "cosine", "minkowski", "precomputed")
_METRIC_ALIASES = {"l2": "euclidean", "l1": "manhattan", "cityblock": "manhattan",
                   "infinity": "chebyshev"}
# What each search can serve (effective metrics, after "minkowski" with p = 1, 2, inf is renamed).
TREE_METRICS = ("euclidean", "sqeuclidean", "manhattan", "chebyshev", "minkowski")
SPARSE_METRICS = ("euclidean", "sqeuclidean", "manhattan", "cosine")
WEIGHTS = ("uniform", "distance")

# Query rows per batch: the batch's neighbour arrays (k distances, k indices,
# k labels) stay near 2 MB whatever the number of queries.
_BATCH_BYTES = 1 << 21
_MIN_BATCH, _MAX_BATCH = 1024, 65536
_MAX_BATCH_BYTES = 1 << 26  # a batch's neighbour arrays never exceed 64 MB (huge n_neighbors)
# Queries per block of the kernels' thread loop (distances_numba.QUERY_BLOCK).
_THREAD_BLOCK = 256
# Show a progress bar when a search does more distance terms than this (minutes of work).
_PROGRESS_MIN_WORK = 1e12
# float64 entries of one block of a brute-force radius search or a precomputed top-k (32 MB).
_BLOCK_ELEMENTS = 1 << 22

# ----------------------------------------------------------------------------------------------
# algorithm="auto": the rule, and the measurements it comes from
# ----------------------------------------------------------------------------------------------
# A KD-tree prunes well while the dimension d is low: its cost per query grows
# roughly like 2^d leaves, while brute force costs n d per query, through a GEMM
# for euclidean (fast per term) and through a plain loop for the other metrics
# (slower per term, a power call per term for general Minkowski p). "auto" takes
# the KD-tree when
#
#     the metric is one a tree serves (Minkowski p >= 1), the input is dense,
#     the tree kernels run on a compiled backend (the NumPy tree is a readable
#     recursive reference), n_samples >= _AUTO_MIN_SAMPLES, k < n_samples / 2,
#     and d <= _AUTO_MAX_TREE_DIM[metric, dtype],
#
# and brute force otherwise (always for cosine, precomputed and sparse input).
# Measured fit + predict, make_blobs with 5 centres, k = 10, 2 threads, medians
# of 2-3 interleaved runs on the shared 2-core machine (seconds, KD-tree /
# brute force; 100k training points and 10k queries unless said):
#
#   euclidean float32: d=2 0.47/1.35, d=3 0.60/1.50, d=4 1.13/1.51, d=5 1.72/1.99,
#                      d=6 2.41/1.89, d=8 3.48/1.64                       -> tree up to d=5
#   euclidean float64: d=2 0.62/2.31, d=4 0.70/2.37, d=6 1.84/3.39, d=8 5.20/4.15
#                                                                           -> tree up to d=6
#   manhattan float32 (50k/5k): d=8 2.02/2.62, d=16 4.63/2.90, d=32 7.54/3.61 -> up to d=8
#   chebyshev float32 (50k/5k): d=8 0.72/4.55, d=16 2.26/7.59               -> up to d=16
#   minkowski p=3 float32 (20k/2k): d=16 2.47/19.9, d=32 4.90/38.7          -> up to d=32
#   small n, euclidean float64, 2-D: n=500 (500 queries) 0.075/0.081, n=2000 0.078/0.123
#
# The ball tree was never faster than the KD-tree on these data (d=2: 1.02 s,
# d=3: 1.97 s, d=8: 9.70 s against the KD-tree's 0.47, 0.60, 3.48 s), so
# "auto" never picks it. Limits beyond the last measured win are not
# extrapolated. Below _AUTO_MIN_SAMPLES rows both searches cost about the same
# fixed overhead, and brute force skips the build.
#
# The resulting d-sweep (benchmarks/test_bench_knn.py::test_d_sweep, fit + predict, k = 10, 2
# threads, shared machine, medians of 3; ratio = our time / scikit-learn's default
# KNeighborsClassifier(), which takes its KD-tree up to d = 15 and brute force above):
#
#   200k x d, 20k queries ("large"):  d=2  f32 0.40 s (0.62x)  f64 0.57 s (0.87x)
#                                     d=3  f32 0.76 s (0.67x)  f64 0.67 s (0.51x)
#                                     d=16 f32 8.50 s (0.27x)  f64 13.7 s (0.58x)
#   1M x 2, 100k queries, f64:        2.66 s (0.73x; scikit-learn 3.65 s)
#   50k x d, 5k queries ("medium"):   d=8 0.47x / 0.77x, d=32 0.45x / 0.58x, d=64 0.44x / 0.79x
#                                     (f32 / f64); auto never slower than our brute force beyond noise.
#
# Float64 brute force now ranks in float32 (_RANK_FLOAT64_IN_FLOAT32 below), which makes it about as
# fast as float32 brute force. Re-measured (fit + predict, 100k x d float64, 10k queries, k = 10, 2
# threads, medians of 3, KD-tree / ranked brute force, machine lightly shared (load ~3)):
#   d=4 0.117/0.404, d=5 0.083/0.182, d=6 0.136/0.200, d=7 0.223/0.201, d=8 0.469/0.385 (ball tree
#   1.95) -> float64 tree still up to d=6 (the same order under load 16-20: d=6 7.91/9.46, d=8
#   8.27/4.16).
# d-sweep after the change at the size (200k x d, 20k queries, k = 10, fit + predict, 2
# threads, machine shared (load 5-7), medians of 3, ours, the float64 path without ranking and
# scikit-learn's default interleaved in one process; ratio to scikit-learn, predictions equal):
#   float64 before -> after: d=8 0.82x -> 0.37x (2.50 s), d=16 0.67x -> 0.32x (4.28 s),
#                            d=32 0.70x -> 0.34x (6.72 s), d=64 0.55x -> 0.39x (8.30 s);
#   float32 (unchanged):     d=8 0.46x, d=16 0.27x, d=32 0.27x, d=64 0.39x;
#   KD-tree (unchanged):     d=2 0.47x / 0.46x, d=3 0.48x / 0.45x (float64 / float32).
_AUTO_MIN_SAMPLES = 1000

# Brute force on float64 euclidean data ranks in float32 and re-ranks in float64, with a proof
# per query that the answer is the float64 search's (kernels/distances_numpy.ranking_margins;
# the rare query it cannot prove is searched again in float64). It costs a float32 copy of the
# training data (half its size) and pays at every dimension measured: fit + predict, 50k x d
# float64 blobs, 5k queries, k = 10, algorithm="brute", shared machine, ranked / float64:
#   d=2 0.59/1.11 s, d=8 0.47/0.80 s, d=64 2.19/4.00 s  (equal indices and distances).
_RANK_FLOAT64_IN_FLOAT32 = True
_RANK_PROBE = 256  # queries ranked first; fewer than half certified: the batch's rest goes to float64
_AUTO_MAX_TREE_DIM = {
    ("euclidean", "float32"): 5, ("euclidean", "float64"): 6,
    ("sqeuclidean", "float32"): 5, ("sqeuclidean", "float64"): 6,
    ("manhattan", "float32"): 8, ("manhattan", "float64"): 8,
    ("chebyshev", "float32"): 16, ("chebyshev", "float64"): 16,
    ("minkowski", "float32"): 32, ("minkowski", "float64"): 32,
}


def auto_algorithm(metric, p, n_samples, n_features, n_neighbors, dtype=np.float64, sparse=False):
    """The search that ``algorithm="auto"`` runs (the rule above).

    Parameters
    ----------
    metric : str
        Effective metric ("minkowski" with p = 1, 2 or inf already renamed).
    p : float or None
        Minkowski exponent (None for the other metrics).
    n_samples, n_features : int
        Shape of the training data.
    n_neighbors : int
        The estimator's k.
    dtype : {np.float32, np.float64}, default=np.float64
        Dtype of the training data (float32 brute force is about twice as fast).
    sparse : bool, default=False
        Whether the training data are a sparse matrix.

    Returns
    -------
    method : {"kd_tree", "brute"}
        The caller also falls back to "brute" when the tree kernels only exist
        as the NumPy reference.
    """
    if sparse or metric not in TREE_METRICS or (metric == "minkowski" and p < 1):
        return "brute"
    if n_samples < _AUTO_MIN_SAMPLES or n_neighbors >= n_samples // 2:
        return "brute"
    if n_features > _AUTO_MAX_TREE_DIM[metric, np.dtype(dtype).name]:
        return "brute"
    return "kd_tree"


def _tree_available(kind, backend):
    """Whether the ``kind`` tree runs on a compiled backend for ``backend`` (else "auto" takes brute force)."""
    try:
        from ._spatial_tree import SpatialTree  # noqa: F401

        for step in ("build", "query", "radius_count", "radius_fill"):
            _, name = resolve_kernel(f"{kind}_{step}", backend)
            if name == "numpy":  # the plain recursive reference: slower than NumPy brute force
                return False
    except ImportError:
        return False
    return True


def _batch_size(n_neighbors):
    """Query rows per batch: about 2 MB of neighbour arrays, at least _MIN_BATCH rows unless k is huge.

    Past about 2,700 neighbours, _MIN_BATCH rows would hold more than
    _MAX_BATCH_BYTES; the batch then shrinks (down to one row) instead.
    """
    per_row = 24 * max(n_neighbors, 1)
    smallest = max(1, min(_MIN_BATCH, _MAX_BATCH_BYTES // per_row))
    return int(np.clip(_BATCH_BYTES // per_row, smallest, _MAX_BATCH))


def _physical_memory():
    """Bytes of physical memory of this machine, or None when unknown (no check then)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None


def _check_radius_output_fits(n_found, radius):
    """ValueError naming radius when ``n_found`` neighbours (index, distance, row copies) exceed the memory.

    Counted at 32 bytes per neighbour: an intp index and a float64 distance,
    once in flat arrays and once in the per-query rows.
    """
    memory = _physical_memory()
    needed = 32 * n_found
    if memory is not None and needed > memory:
        shown = radius if np.ndim(radius) == 0 else "an array of radii"
        raise ValueError(
            f"radius={shown} finds {n_found:,} neighbours or more ({needed / 2**30:.3g} GiB), more than "
            f"this machine's {memory / 2**30:.3g} GiB of memory: lower radius, or query fewer rows at a time."
        )


def _search_bytes(n_queries, n_neighbors, n_samples_fit, batch, n_threads, keep_all, return_distance):
    """Bytes a k-nearest search allocates that grow with n_neighbors (inputs excluded).

    Per batch: k distances (float64 and the input dtype), k indices and k
    labels per row (24 bytes); per thread, the kernels' candidate heaps of
    ``QUERY_BLOCK`` rows (value and index, 16 bytes per candidate); with
    ``keep_all`` (``kneighbors``), the whole n_queries x k output.
    """
    from .kernels.distances_numpy import candidate_count

    heaps = n_threads * _THREAD_BLOCK * candidate_count(n_neighbors, n_samples_fit) * 16
    needed = batch * n_neighbors * 24 + heaps
    if keep_all:
        needed += n_queries * n_neighbors * (16 if return_distance else 8)
    return needed


def neighbor_weights(distances, weights):
    """Neighbour weights from float64 distances (scikit-learn's rule).

    ``"uniform"`` (or None) gives None (all ones). ``"distance"`` gives
    ``1 / d``, except in a row that holds a zero distance: there the
    zero-distance neighbours get weight 1 and the others 0. A callable is
    applied to the distances of each batch of queries. Used by the
    estimators' ``predict`` here and on Dask (:mod:`fastscratch.distributed`).
    """
    if weights is None or (isinstance(weights, str) and weights == "uniform"):
        return None
    if isinstance(weights, str) and weights == "distance":
        with np.errstate(divide="ignore"):
            inverse = 1.0 / distances
        infinite = np.isinf(inverse)
        rows_with_zero = infinite.any(axis=1)
        inverse[rows_with_zero] = infinite[rows_with_zero]
        return inverse
    return np.asarray(weights(distances))


def _needs_distances(weights):
    return not (weights is None or (isinstance(weights, str) and weights == "uniform"))


def _canonical_csr(matrix, dtype):
    """CSR copy (when needed) with sorted, unique column indices, in ``dtype``."""
    matrix = sp.csr_matrix(matrix, dtype=dtype)
    if not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
    return matrix


def _csr_arrays(matrix):
    """The three arrays the sparse kernels take (intp indices)."""
    return (matrix.data, matrix.indices.astype(np.intp, copy=False),
            matrix.indptr.astype(np.intp, copy=False))


def _smallest_by_index(rows, k):
    """Column indices of the k smallest entries of each row, ties to the smaller index."""
    if k >= rows.shape[1]:
        return np.argsort(rows, axis=1, kind="stable")
    threshold = np.partition(rows, k - 1, axis=1)[:, k - 1:k]
    candidates = rows <= threshold  # every winner, and ties beyond k
    out = np.empty((rows.shape[0], k), dtype=np.intp)
    for i in range(rows.shape[0]):
        columns = np.flatnonzero(candidates[i])
        out[i] = columns[np.argsort(rows[i, columns], kind="stable")[:k]]
    return out


def _object_array(rows):
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        out[i] = row
    return out


def _check_radius(radius):
    """A number >= 0 (np.inf allowed), or an array of such numbers (one per query)."""
    if np.ndim(radius) > 0:
        radii = np.asarray(radius)
        if radii.ndim != 1 or radii.dtype.kind not in "iuf" or np.isnan(radii).any():
            raise TypeError(f"radius must be a number >= 0 or a 1-D array of them, got {radius!r}.")
        if (radii < 0).any():
            raise ValueError(f"radius={radius!r} must be >= 0; pass non-negative distances.")
        return radii.astype(np.float64)
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or np.isnan(radius):
        raise TypeError(f"radius must be a number >= 0 (np.inf allowed), got {radius!r}.")
    if radius < 0:
        raise ValueError(f"radius={radius} must be >= 0; pass a non-negative distance.")
    return float(radius)


class _NeighborsBase(MultiOutputMixin, BaseEstimator):
    """Parameters, fit and neighbour searches shared by the three estimators."""

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        """Validate the hyper-parameters; return ``(effective_metric, p)``."""
        if isinstance(self.n_neighbors, bool) or not isinstance(self.n_neighbors, numbers.Integral):
            raise TypeError(f"n_neighbors must be an integer >= 1, got {self.n_neighbors!r}.")
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors={self.n_neighbors} must be >= 1; pass a positive integer.")
        weights = getattr(self, "weights", None)
        if not (weights is None or callable(weights) or (isinstance(weights, str) and weights in WEIGHTS)):
            raise ValueError(
                f"weights={weights!r} is not supported; use 'uniform' (or None), 'distance' or a "
                "callable that maps an array of distances to weights of the same shape."
            )
        if not isinstance(self.algorithm, str) or self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm={self.algorithm!r} is not supported; use one of {ALGORITHMS}.")
        if isinstance(self.leaf_size, bool) or not isinstance(self.leaf_size, numbers.Integral):
            raise TypeError(f"leaf_size must be an integer >= 1, got {self.leaf_size!r}.")
        if self.leaf_size < 1:
            raise ValueError(f"leaf_size={self.leaf_size} must be >= 1; pass a positive integer such as 30.")
        metric = _METRIC_ALIASES.get(self.metric, self.metric) if isinstance(self.metric, str) else None
        if metric not in METRICS:
            raise ValueError(f"metric={self.metric!r} is not supported; use one of {METRICS}.")
        p_value = self.p
        if self.metric_params is not None:
            if not isinstance(self.metric_params, dict) or set(self.metric_params) - {"p"}:
                raise ValueError(
                    f"metric_params={self.metric_params!r} is not supported; pass None or {{'p': value}} "
                    "(the Minkowski exponent)."
                )
            if "p" in self.metric_params:
                p_value = self.metric_params["p"]
        p = None
        if metric == "minkowski":
            if (isinstance(p_value, bool) or not isinstance(p_value, numbers.Real) or np.isnan(p_value)
                    or p_value <= 0):
                raise ValueError(f"p={p_value!r} must be a number > 0 (np.inf allowed) for metric='minkowski'.")
            p = float(p_value)
            if p == 2.0:
                metric, p = "euclidean", None
            elif p == 1.0:
                metric, p = "manhattan", None
            elif p == np.inf:
                metric, p = "chebyshev", None
        if metric == "minkowski" and p < 1:
            # scikit-learn's messages: a semi-metric (no triangle inequality) only for brute force.
            if self.algorithm in ("kd_tree", "ball_tree"):
                raise ValueError(
                    f'algorithm="{self.algorithm}" does not support 0 < p < 1 for the Minkowski metric. '
                    'To resolve this problem either set p >= 1 or algorithm="brute".'
                )
            warnings.warn("Mind that for 0 < p < 1, Minkowski metrics are not distance metrics. Continuing "
                          "the execution with `algorithm='brute'`.", UserWarning, stacklevel=3)
        if self.algorithm in ("kd_tree", "ball_tree") and metric not in TREE_METRICS:
            raise ValueError(
                f"algorithm={self.algorithm!r} cannot serve metric={self.metric!r}"
                + (f" with p={p_value!r}" if metric == "minkowski" else "")
                + f"; use algorithm='brute' (or 'auto'), or a metric in {TREE_METRICS} (p >= 1)."
            )
        resolve_backend("sqeuclidean_topk", self.backend)  # raises on an unknown backend name
        effective_n_threads(self.n_jobs)  # raises on a bad n_jobs
        return metric, p

    def _validate_fit_X(self, X, y=None, **y_kwargs):
        """Validate the training data (dense, CSR, or a precomputed square distance matrix)."""
        if self.metric == "precomputed":
            if sp.issparse(X):
                raise TypeError("metric='precomputed' takes a dense distance matrix; pass X.toarray().")
            if y is None:
                X = validate_data(self, X, dtype=np.float64, order="C")
            else:
                X, y = validate_data(self, X, y, dtype=np.float64, order="C", **y_kwargs)
            check_array(X, ensure_non_negative=True, input_name="X (precomputed distances)")
            if X.shape[0] != X.shape[1]:
                raise ValueError(f"metric='precomputed' needs the square matrix of distances between "
                                 f"training points; X has shape {X.shape}.")
            return X, y
        check_sparse_structure(X, "X")  # before SciPy or a kernel reads an index out of range
        if y is None:
            X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], order="C")
        else:
            X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32],
                                 order="C", **y_kwargs)
        if sp.issparse(X):
            X = _canonical_csr(X, X.dtype)
        return X, y

    # --------------------------------------------------------------------- fit
    def _check_distance_range(self, X, name, at_fit=False):
        """ValueError if distances between these data overflow (or, at fit, underflow) the kernels' float type.

        The kernels rank by sums of ``|q - x| ** p`` (squares for euclidean and
        cosine, the largest term for chebyshev) in the data's dtype; past its
        largest float every distance is infinite and no neighbour can be
        ranked. The largest term is at most ``(2 L) ** p`` for data up to
        ``L`` in magnitude, summed over ``d`` features.
        """
        metric = self.effective_metric_
        if metric == "precomputed":
            return
        values = X.data if sp.issparse(X) else X
        largest = float(np.max(np.abs(values))) if values.size else 0.0
        if at_fit:
            self._largest_abs = largest  # queries are checked against the training data with it
        largest = max(largest, self._largest_abs)
        if largest == 0.0:
            return
        p = {"euclidean": 2.0, "sqeuclidean": 2.0, "cosine": 2.0, "manhattan": 1.0,
             "chebyshev": 1.0}.get(metric, self.effective_metric_params_.get("p", 2.0))
        p = 1.0 if p == np.inf else float(p)
        n_terms = 1 if metric == "chebyshev" else X.shape[1]
        finfo = np.finfo(self._fit_X.dtype)
        if at_fit and p * np.log(2.0 * largest) < np.log(finfo.tiny) - np.log(finfo.eps):
            # Every term is below the smallest normal float over eps: the distances are 0 or
            # subnormal, without the precision to rank neighbours.
            raise ValueError(
                f"{name} holds values of at most {largest:.3g} in magnitude: with metric={metric!r}"
                + (f" and p={p:g}" if metric == "minkowski" else "")
                + f", distances between such points underflow {finfo.dtype} (smallest normal "
                f"{finfo.tiny:.3g}) and no neighbour can be ranked; rescale the data (multiply X "
                "and the queries by the same number).")
        if np.log(n_terms) + p * np.log(2.0 * largest) > np.log(finfo.max):
            raise ValueError(
                f"{name} holds values up to {largest:.3g} in magnitude: with metric={metric!r}"
                + (f" and p={p:g}" if metric == "minkowski" else "")
                + f", distances between such points overflow {finfo.dtype} (largest {finfo.max:.3g}) and "
                "no neighbour can be ranked; rescale the data (divide X and the queries by the same "
                + ("number), or choose a smaller p." if metric == "minkowski" else "number)."))

    def _fit_search_structure(self, X, metric, p):
        """Store the training data, choose the search (``_fit_method``) and build it."""
        self.effective_metric_ = metric
        self.effective_metric_params_ = {} if p is None else {"p": p}
        self._fit_X = X
        self._check_distance_range(X, "X", at_fit=True)
        self.n_samples_fit_ = X.shape[0]
        self._tree = None
        self._shift = None
        self._ranking = None
        self._search_X = X
        sparse = sp.issparse(X)
        if metric == "precomputed":
            method = "brute"
        elif sparse:
            if metric not in SPARSE_METRICS:
                raise ValueError(f"metric={self.metric!r} is not supported for sparse input; use one of "
                                 f"{SPARSE_METRICS}, or pass a dense array.")
            if self.algorithm in ("kd_tree", "ball_tree"):
                warnings.warn("cannot use tree with sparse input: using brute force", stacklevel=3)
            method = "brute"
        elif self.algorithm == "auto":
            method = auto_algorithm(metric, p, X.shape[0], X.shape[1], self.n_neighbors, dtype=X.dtype)
            if method != "brute" and not _tree_available(method, self.backend):
                method = "brute"
        else:
            method = self.algorithm
        self._fit_method = method
        if method in ("kd_tree", "ball_tree"):
            from ._spatial_tree import SpatialTree

            self._tree = SpatialTree(X, method, leaf_size=self.leaf_size, metric=metric,
                                     p=2 if p is None else p, backend=self.backend,
                                     n_threads=effective_n_threads(self.n_jobs))
            self._backend = self._tree.backend_
            return
        if metric == "precomputed":
            self._backend = "numpy"
            return
        self._backend = resolve_backend(self._kernel_name(), self.backend)
        # The euclidean kernel ranks with |q|^2 - 2 q.x + |x|^2 in the input
        # dtype, which loses every digit when the data sit far from the origin
        # compared with their spread (float32 data around 1e4, say). Distances
        # are translation invariant, so such data are searched after
        # subtracting their mean (a second copy of X, in its dtype); data
        # around the origin (standardised features) are searched as they are.
        if not sparse and metric in ("euclidean", "sqeuclidean") and X.shape[0] > 1:
            # |mean|^2 > total variance  <=>  2 |mean|^2 > mean of |x|^2, in
            # float64 row chunks (no full-size temporary).
            mean = X.mean(axis=0, dtype=np.float64)
            mean_sq_norm = 0.0
            for start in range(0, X.shape[0], 1024):
                chunk = X[start:start + 1024].astype(np.float64)
                mean_sq_norm += np.einsum("ij,ij->", chunk, chunk) / X.shape[0]
            if 2 * (mean @ mean) > mean_sq_norm:
                self._shift = mean.astype(X.dtype)
                self._search_X = np.subtract(X, self._shift, dtype=X.dtype)
        if (_RANK_FLOAT64_IN_FLOAT32 and not sparse and metric in ("euclidean", "sqeuclidean")
                and X.dtype == np.float64):
            self._ranking = self._float32_ranking(X)

    # ------------------------------------------------------------------ search
    def _kernel_name(self):
        name = {"euclidean": "sqeuclidean_topk", "sqeuclidean": "sqeuclidean_topk",
                "cosine": "cosine_topk", "manhattan": "manhattan_topk",
                "chebyshev": "chebyshev_topk", "minkowski": "minkowski_topk"}[self.effective_metric_]
        if sp.issparse(self._fit_X):
            name = "sparse_" + name
        return name

    def _kernel_call(self):
        """``(kernel, extra arguments)`` of the brute-force search, on the backend chosen at fit."""
        name = self._kernel_name()
        kernel, _ = resolve_kernel(name, getattr(self, "_backend", self.backend))
        extra = (self.effective_metric_params_["p"],) if name == "minkowski_topk" else ()
        return kernel, extra

    def _reduced_to_distance(self, reduced):
        """Kernel output (squared / p-th power sums) to the metric's distances, in place."""
        if self.effective_metric_ == "euclidean":
            np.sqrt(reduced, out=reduced)
        elif self.effective_metric_ == "minkowski":
            np.power(reduced, 1.0 / self.effective_metric_params_["p"], out=reduced)
        return reduced

    def _exact_reduced(self, queries, indices):
        """Float64 reduced distances from ``queries`` to their neighbours ``indices``.

        The kernels already re-rank in float64 but return the input dtype; for
        float32 data (and for centred data) the distances are recomputed here
        from the original rows, so they carry float64 precision.
        """
        n_queries, k = indices.shape
        out = np.empty((n_queries, k))
        step = max(1, (1 << 20) // max(1, k * queries.shape[1]))
        metric = self.effective_metric_
        for start in range(0, n_queries, step):
            query = queries[start:start + step].astype(np.float64)[:, None, :]
            rows = self._fit_X[indices[start:start + step]].astype(np.float64)
            if metric == "cosine":
                query_norm = np.sqrt((query * query).sum(axis=-1, keepdims=True))
                row_norm = np.sqrt((rows * rows).sum(axis=-1, keepdims=True))
                with np.errstate(divide="ignore", invalid="ignore"):
                    diff = rows / row_norm - query / query_norm
                reduced = np.minimum(0.5 * (diff * diff).sum(axis=-1), 2.0)
                reduced[(row_norm[..., 0] == 0) | (query_norm[..., 0] == 0)] = 1.0
            else:
                diff = rows - query
                if metric in ("euclidean", "sqeuclidean"):
                    reduced = (diff * diff).sum(axis=-1)
                elif metric == "manhattan":
                    reduced = np.abs(diff).sum(axis=-1)
                elif metric == "chebyshev":
                    reduced = np.abs(diff).max(axis=-1)
                else:
                    reduced = (np.abs(diff) ** self.effective_metric_params_["p"]).sum(axis=-1)
            out[start:start + step] = reduced
        return out

    @staticmethod
    def _float32_ranking(X):
        """What the float32 ranking of float64 euclidean data reuses: ``(mean, X32, max norm)`` or None.

        The training rows centred on their float64 mean and rounded to float32
        (a copy half the size of X), and the largest norm of the centred
        float64 rows (:func:`fastscratch.kernels.distances_numpy.ranking_margins`).
        None when float32 could overflow (norms past ``RANKING_MAX_SCALE``).
        """
        from .kernels.distances_numpy import RANKING_MAX_SCALE

        mean = X.mean(axis=0)
        ranking_X = np.empty(X.shape, dtype=np.float32)
        max_sq_norm = 0.0
        for start in range(0, X.shape[0], 4096):  # float64 temporaries of one chunk only
            centred = X[start:start + 4096] - mean
            max_sq_norm = max(max_sq_norm, float(np.einsum("ij,ij->i", centred, centred).max()))
            if not 4 * max_sq_norm <= RANKING_MAX_SCALE:
                return None
            ranking_X[start:start + 4096] = centred
        return mean, ranking_X, np.sqrt(max_sq_norm)

    def use_search_shift(self, shift):
        """Search the training rows minus ``shift`` (None: the rows as they are).

        The fit centres euclidean data that sit far from the origin on their
        own mean before searching (see ``_fit``). A model fitted on one
        partition of a larger training set (the Dask estimators) is given the
        whole set's mean instead, so every partition's kernel ranks the numbers
        the in-memory search ranks.
        """
        self._shift = shift
        self._search_X = (self._fit_X if shift is None
                          else np.subtract(self._fit_X, shift, dtype=self._fit_X.dtype))

    def ranked_neighbors(self, queries, n_neighbors, n_threads):
        """Brute-force top-k of dense ``queries``: ``(keys, indices, distances)``, each ``(n_queries, k)``.

        ``k = min(n_neighbors, n_samples_fit_)``. The keys are what this
        estimator's search orders by (the kernel's reduced distances, e.g.
        squared euclidean), ascending, ties to the smaller index; the
        distances are the metric's, in float64. Top-k lists of several
        partitions merged by key then index (the Dask estimators) give the
        in-memory search's neighbours of the union.
        """
        queries = np.ascontiguousarray(queries, dtype=self._fit_X.dtype)
        k = min(n_neighbors, self.n_samples_fit_)
        if self._ranking is not None and queries.dtype == np.float64:
            # Float64 euclidean data: ranked in float32, proven or searched again, float64
            # reduced distances ordered as the float64 search orders them.
            reduced, indices = self._ranked_search(queries, k, n_threads)
            return reduced, indices, self._reduced_to_distance(reduced.copy())
        kernel, extra = self._kernel_call()
        search_queries = queries if self._shift is None else np.subtract(
            queries, self._shift, dtype=queries.dtype)
        reduced = np.empty((queries.shape[0], k), dtype=queries.dtype)
        indices = np.empty((queries.shape[0], k), dtype=np.intp)
        kernel(search_queries, self._search_X, *extra, reduced, indices, n_threads)
        if queries.dtype == np.float64 and self._shift is None:
            exact = reduced.copy()
        else:
            exact = self._exact_reduced(queries, indices)
        return reduced, indices, self._reduced_to_distance(exact)

    def _ranked_search(self, queries, n_neighbors, n_threads):
        """Float64 euclidean top-k ranked in float32; ``(reduced, indices)`` equal to the float64 search's.

        Queries the certificate does not cover (near ties within float32
        rounding of the k-th distance, see ``ranking_margins``) are searched
        again by the float64 kernel. The first ``_RANK_PROBE`` queries are
        ranked alone: if fewer than half of them are certified (data whose
        spread is tiny next to their norms, a far outlier), the rest of the
        batch goes straight to the float64 kernel instead of paying twice.
        """
        from .kernels.distances_numpy import ranking_margins

        mean, ranking_X, max_norm = self._ranking
        centred = queries - mean
        margins = ranking_margins(np.sqrt(np.einsum("ij,ij->i", centred, centred)), max_norm, queries.shape[1])
        unsafe = np.isinf(margins)  # norms float32 cannot hold: never certified, searched in float64
        with np.errstate(over="ignore"):
            ranking_queries = centred.astype(np.float32)
        ranking_queries[unsafe] = 0.0
        reduced = np.empty((queries.shape[0], n_neighbors))
        indices = np.empty((queries.shape[0], n_neighbors), dtype=np.intp)
        certified = np.zeros(queries.shape[0], dtype=np.uint8)
        kernel, _ = resolve_kernel("sqeuclidean_topk_ranked", self._backend)
        probe = min(_RANK_PROBE, queries.shape[0])
        for rows in (slice(0, probe), slice(probe, queries.shape[0])):
            if rows.start == probe and (probe == queries.shape[0] or 2 * int(certified[:probe].sum()) < probe):
                break
            kernel(queries[rows], self._fit_X, ranking_queries[rows], ranking_X, margins[rows], reduced[rows],
                   indices[rows], certified[rows], n_threads)
        again = np.flatnonzero(certified == 0)
        if again.size:
            exact_kernel, _ = resolve_kernel("sqeuclidean_topk", self._backend)
            search_queries = queries[again]
            if self._shift is not None:
                search_queries = np.subtract(search_queries, self._shift, dtype=queries.dtype)
            redo_reduced = np.empty((again.size, n_neighbors))
            redo_indices = np.empty((again.size, n_neighbors), dtype=np.intp)
            exact_kernel(search_queries, self._search_X, redo_reduced, redo_indices, n_threads)
            if self._shift is not None:
                redo_reduced = self._exact_reduced(queries[again], redo_indices)
            reduced[again] = redo_reduced
            indices[again] = redo_indices
        return reduced, indices

    def _search(self, queries, n_neighbors, return_distance, kernel, extra, n_threads):
        """Brute-force neighbours of one batch of dense queries, ``(float64 distances or None, indices)``."""
        if self._ranking is not None and queries.dtype == np.float64:
            reduced, indices = self._ranked_search(queries, n_neighbors, n_threads)
            return (self._reduced_to_distance(reduced) if return_distance else None), indices
        search_queries = queries
        if self._shift is not None:
            search_queries = np.subtract(queries, self._shift, dtype=queries.dtype)
        reduced = np.empty((queries.shape[0], n_neighbors), dtype=queries.dtype)
        indices = np.empty((queries.shape[0], n_neighbors), dtype=np.intp)
        kernel(search_queries, self._search_X, *extra, reduced, indices, n_threads)
        if not return_distance:
            return None, indices
        if queries.dtype == np.float64 and self._shift is None:
            distances = reduced
        else:
            distances = self._exact_reduced(queries, indices)
        return self._reduced_to_distance(distances), indices

    def _search_batch(self, queries, n_neighbors, return_distance, n_threads):
        """Neighbours of one batch of validated queries, by the search chosen at fit."""
        if self._tree is not None:
            distances, indices = self._tree.query(queries, n_neighbors, n_threads=n_threads)
            return (distances if return_distance else None), indices
        if self.effective_metric_ == "precomputed":
            indices = _smallest_by_index(queries, n_neighbors)
            distances = np.take_along_axis(queries, indices, axis=1) if return_distance else None
            return distances, indices
        kernel, extra = self._kernel_call()
        if sp.issparse(self._fit_X):
            distances = np.empty((queries.shape[0], n_neighbors))
            indices = np.empty((queries.shape[0], n_neighbors), dtype=np.intp)
            kernel(*_csr_arrays(queries), *self._sparse_arrays(), distances, indices, n_threads)
            return (self._reduced_to_distance(distances) if return_distance else None), indices
        return self._search(queries, n_neighbors, return_distance, kernel, extra, n_threads)

    def _sparse_arrays(self):
        """The training set's CSR arrays and its CSC arrays (the sparse kernels' inverted index)."""
        cache = getattr(self, "_sparse_arrays_cache", None)
        if cache is None or cache[0] is not self._fit_X:
            by_column = _canonical_csr(self._fit_X.T, self._fit_X.dtype)  # CSC of X, as CSR of X^T
            self._sparse_arrays_cache = (self._fit_X, _csr_arrays(self._fit_X) + _csr_arrays(by_column))
        return self._sparse_arrays_cache[1]

    def _check_n_neighbors(self, n_neighbors, query_is_train, n_queries, against_fit=True):
        """n_neighbors (None: the estimator's) as an int: an integer >= 1 and, ``against_fit``, at most the fit's rows."""
        if n_neighbors is None:
            n_neighbors = self.n_neighbors
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral):
            raise TypeError(f"n_neighbors must be an integer >= 1, got {n_neighbors!r}.")
        if n_neighbors < 1:
            raise ValueError(f"n_neighbors={n_neighbors} must be >= 1; pass a positive integer.")
        if not against_fit:
            return int(n_neighbors)
        n_searched = n_neighbors + 1 if query_is_train else n_neighbors
        if n_searched > self.n_samples_fit_:
            inequality = "n_neighbors < n_samples_fit" if query_is_train else "n_neighbors <= n_samples_fit"
            raise ValueError(
                f"Expected {inequality}, but n_neighbors = {n_neighbors}, n_samples_fit = "
                f"{self.n_samples_fit_}, n_samples = {n_queries}; lower n_neighbors or fit on more samples."
            )
        return int(n_neighbors)

    def _validate_queries(self, X):
        """``(queries, query_is_train)``: X validated against the fit, or the training set."""
        check_is_fitted(self, "n_samples_fit_")
        if X is None:
            return self._fit_X, True
        if self.effective_metric_ == "precomputed":
            if sp.issparse(X):
                raise TypeError("metric='precomputed' takes a dense distance matrix; pass X.toarray().")
            queries = check_array(X, dtype=np.float64, order="C", ensure_non_negative=True,
                                  input_name="X (precomputed distances)")
            if queries.shape[1] != self.n_samples_fit_:
                raise ValueError(
                    f"metric='precomputed': X must hold the distances from each query to the "
                    f"{self.n_samples_fit_} training points, shape (n_queries, {self.n_samples_fit_}); "
                    f"got shape {queries.shape}."
                )
            return queries, False
        check_sparse_structure(X, "X")
        queries = validate_data(self, X, reset=False, accept_sparse="csr", dtype=[np.float64, np.float32],
                                order="C")
        # The kernels take one dtype: queries follow the training data's.
        self._check_distance_range(queries, "X")
        if sp.issparse(self._fit_X):
            return _canonical_csr(queries, self._fit_X.dtype), False
        if sp.issparse(queries):
            if self._tree is not None:
                raise ValueError(f"{self._fit_method} does not work with sparse matrices; densify the "
                                 "queries, or set algorithm='brute'.")
            queries = queries.toarray()
        return np.ascontiguousarray(queries, dtype=self._fit_X.dtype), False

    def _search_threads(self, n_queries, batch):
        if self._tree is not None:
            return effective_n_threads(self.n_jobs)
        # The kernels share out blocks of _THREAD_BLOCK queries: more threads would only wait.
        return max(1, min(effective_n_threads(self.n_jobs), -(-min(batch, n_queries) // _THREAD_BLOCK)))

    def _check_search_fits(self, n_queries, n_neighbors, n_searched, batch, n_threads, keep_all,
                           return_distance):
        """ValueError naming n_neighbors when the search's arrays cannot fit in this machine's memory."""
        needed = _search_bytes(n_queries, n_searched, self.n_samples_fit_, batch, n_threads, keep_all,
                               return_distance)
        memory = _physical_memory()
        if memory is not None and needed > memory:
            raise ValueError(
                f"n_neighbors={n_neighbors} for {n_queries} queries needs about {needed / 2**30:.3g} GiB "
                + ("for the n_queries x n_neighbors output" if keep_all else "for the neighbour arrays")
                + f", more than this machine's {memory / 2**30:.3g} GiB of memory: lower n_neighbors"
                + (", or query in smaller batches of rows." if keep_all else ".")
            )

    def _kneighbors_batches(self, X, n_neighbors=None, return_distance=True, keep_all=False):
        """Yield ``(start, stop, n_queries, distances, indices)`` over batches of queries.

        ``X=None`` queries the training points, each excluded from its own
        neighbours as in scikit-learn (if duplicates push a point out of its
        own k + 1 nearest, the first neighbour is dropped instead, as
        scikit-learn does). n_neighbors is checked before anything is
        allocated: its type and value, then (``keep_all``: the caller keeps
        every batch) whether the arrays it implies fit in memory.
        """
        if n_neighbors is not None:
            self._check_n_neighbors(n_neighbors, False, 0, against_fit=False)
        queries, query_is_train = self._validate_queries(X)
        n_queries = queries.shape[0]
        n_neighbors = self._check_n_neighbors(n_neighbors, query_is_train, n_queries)
        n_searched = n_neighbors + 1 if query_is_train else n_neighbors
        batch = _batch_size(n_searched)
        if self.effective_metric_ == "precomputed":
            batch = max(1, min(batch, _BLOCK_ELEMENTS // max(1, self.n_samples_fit_)))
        n_threads = self._search_threads(n_queries, batch)
        self._check_search_fits(n_queries, n_neighbors, n_searched, min(batch, n_queries), n_threads,
                                keep_all, return_distance)
        work = 0.0 if self._tree is not None else float(n_queries) * self.n_samples_fit_ * queries.shape[1]
        with tqdm(total=n_queries, unit="queries", desc=type(self).__name__, leave=False,
                  disable=work < _PROGRESS_MIN_WORK) as progress:
            for start in range(0, n_queries, batch):
                stop = min(start + batch, n_queries)
                distances, indices = self._search_batch(queries[start:stop], n_searched, return_distance,
                                                        n_threads)
                if query_is_train:
                    not_self = indices != np.arange(start, stop)[:, None]
                    self_missing = not_self.all(axis=1)
                    not_self[self_missing, 0] = False
                    indices = indices[not_self].reshape(stop - start, n_neighbors)
                    if distances is not None:
                        distances = distances[not_self].reshape(stop - start, n_neighbors)
                yield start, stop, n_queries, distances, indices
                progress.update(stop - start)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The k nearest training points of each query.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features), default=None
            Queries (with ``metric="precomputed"``: their distances to the
            training points, shape (n_queries, n_samples_fit_)). None means
            the training points, each excluded from its own neighbours.
        n_neighbors : int, default=None
            Neighbours per query (default: the estimator's ``n_neighbors``).
        return_distance : bool, default=True
            Whether to return the distances too.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors), float64
            Distances in the estimator's metric, ascending. Only with
            ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors), intp
            Rows of the training data; equal distances are ordered by index.
        """
        all_distances = all_indices = None
        for start, stop, n_queries, distances, indices in self._kneighbors_batches(
                X, n_neighbors, return_distance, keep_all=True):
            if all_indices is None:  # allocated once the size is checked, filled batch by batch
                all_indices = np.empty((n_queries, indices.shape[1]), dtype=np.intp)
                if return_distance:
                    all_distances = np.empty((n_queries, indices.shape[1]))
            all_indices[start:stop] = indices
            if return_distance:
                all_distances[start:stop] = distances
        if return_distance:
            return all_distances, all_indices
        return all_indices

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Sparse graph of the k nearest neighbours of each query.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features), default=None
            Queries; None means the training points (each excluded from its own
            neighbours).
        n_neighbors : int, default=None
            Neighbours per query (default: the estimator's ``n_neighbors``).
        mode : {"connectivity", "distance"}, default="connectivity"
            Entries of the matrix: ones, or the distances.

        Returns
        -------
        graph : scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit_)
            Row i holds the neighbours of query i.
        """
        if mode not in ("connectivity", "distance"):
            raise ValueError(f"mode={mode!r} is not supported; use 'connectivity' or 'distance'.")
        if mode == "connectivity":
            indices = self.kneighbors(X, n_neighbors, return_distance=False)
            data = np.ones(indices.size)
        else:
            distances, indices = self.kneighbors(X, n_neighbors, return_distance=True)
            data = distances.ravel()
        n_queries, k = indices.shape
        indptr = np.arange(0, n_queries * k + 1, k)
        return sp.csr_matrix((data, indices.ravel(), indptr), shape=(n_queries, self.n_samples_fit_))

    # ------------------------------------------------------------ radius search
    def _radius_train(self):
        """What the dense brute-force radius search reuses for every block: float64 training rows."""
        if self.effective_metric_ == "precomputed" or sp.issparse(self._fit_X):
            return None
        train = self._fit_X.astype(np.float64)
        if self.effective_metric_ == "cosine":
            return self._unit_rows(train), np.all(train == 0, axis=1)
        return train

    def _brute_radius_block(self, queries, radius, train):
        """Exact float64 distances of a block of queries to every training point, and the mask <= radius."""
        metric = self.effective_metric_
        if metric == "precomputed":
            distances = queries
        elif sp.issparse(self._fit_X):
            from sklearn.metrics.pairwise import cosine_distances, euclidean_distances, manhattan_distances

            X = self._fit_X
            if metric in ("euclidean", "sqeuclidean"):
                distances = euclidean_distances(queries, X, squared=metric == "sqeuclidean")
            elif metric == "manhattan":
                distances = manhattan_distances(queries, X)
            else:
                distances = cosine_distances(queries, X)
        else:
            queries = queries.astype(np.float64)
            if metric == "cosine":
                unit_train, zero_train = train
                distances = np.minimum(0.5 * cdist(self._unit_rows(queries), unit_train, "sqeuclidean"), 2.0)
                distances[np.all(queries == 0, axis=1)] = 1.0
                distances[:, zero_train] = 1.0
            elif metric == "minkowski":
                distances = cdist(queries, train, "minkowski", p=self.effective_metric_params_["p"])
            else:
                distances = cdist(queries, train, {"manhattan": "cityblock"}.get(metric, metric))
        return distances, distances <= radius

    @staticmethod
    def _unit_rows(rows):
        norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
        scale = np.zeros_like(norms)
        np.divide(1.0, norms, out=scale, where=norms > 0)
        return rows * scale[:, None]

    def _radius_search(self, X, radius, return_distance):
        """``(list of distance rows or None, list of index rows)``, each sorted by (distance, index)."""
        queries, query_is_train = self._validate_queries(X)
        n_queries = queries.shape[0]
        if np.ndim(radius) > 0 and radius.shape != (n_queries,):
            raise ValueError(f"radius has shape {radius.shape}; pass one number, or one per query "
                             f"({n_queries}).")
        if self._tree is not None:
            result = self._tree.query_radius(queries, radius, n_threads=effective_n_threads(self.n_jobs),
                                             return_distance=True)
            index_rows, distance_rows = list(result[0]), list(result[1])
        else:
            train = self._radius_train()
            block = max(1, _BLOCK_ELEMENTS // max(1, self.n_samples_fit_))
            index_rows, distance_rows = [], []
            n_found = 0
            for start in range(0, n_queries, block):
                block_radius = radius[start:start + block, None] if np.ndim(radius) > 0 else radius
                distances, within = self._brute_radius_block(queries[start:start + block], block_radius, train)
                n_found += int(np.count_nonzero(within))
                _check_radius_output_fits(n_found, radius)  # before this block's rows are made
                for row, mask in zip(distances, within):
                    columns = np.flatnonzero(mask)
                    order = np.argsort(row[columns], kind="stable")
                    index_rows.append(columns[order])
                    distance_rows.append(row[columns][order])
        if query_is_train:  # scikit-learn drops the query's own index, duplicates stay
            for i in range(n_queries):
                keep = index_rows[i] != i
                index_rows[i] = index_rows[i][keep]
                distance_rows[i] = distance_rows[i][keep]
        return (distance_rows if return_distance else None), index_rows

    def radius_neighbors(self, X=None, radius=None, return_distance=True, sort_results=False):
        """Every training point within ``radius`` of each query.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features), default=None
            Queries (distances to the training points with
            ``metric="precomputed"``); None means the training points, each
            without itself.
        radius : float or array of shape (n_queries,), default=None
            Inclusive limit on the distance, >= 0 (``np.inf``: every point),
            or one limit per query. None means the estimator's
            ``radius`` (:class:`NearestNeighbors`); the two KNN estimators
            have none and need it here.
        return_distance : bool, default=True
        sort_results : bool, default=False
            True: each row sorted by (distance, index), which needs
            ``return_distance=True`` as in scikit-learn. False: each row in
            index order (the order of scikit-learn's brute force).

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries,), object
            One float64 array of distances per query. Only with ``return_distance``.
        neigh_ind : ndarray of shape (n_queries,), object
            One intp array of training rows per query.
        """
        if sort_results and not return_distance:
            raise ValueError("return_distance must be True if sort_results is True.")
        if radius is None:
            radius = getattr(self, "radius", None)
            if radius is None:
                raise ValueError(f"{type(self).__name__}.radius_neighbors needs radius=<distance>: the "
                                 "estimator has no radius parameter.")
        radius = _check_radius(radius)
        distance_rows, index_rows = self._radius_search(X, radius, return_distance)
        if not sort_results:  # scikit-learn's brute force: each row in index order
            for i, row in enumerate(index_rows):
                order = np.argsort(row, kind="stable")
                index_rows[i] = row[order]
                if return_distance:
                    distance_rows[i] = distance_rows[i][order]
        if return_distance:
            return _object_array(distance_rows), _object_array(index_rows)
        return _object_array(index_rows)

    def radius_neighbors_graph(self, X=None, radius=None, mode="connectivity", sort_results=False):
        """Sparse graph of the training points within ``radius`` of each query.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features), default=None
            As in :meth:`radius_neighbors`.
        radius : float, default=None
            As in :meth:`radius_neighbors`.
        mode : {"connectivity", "distance"}, default="connectivity"
            Entries of the matrix: ones, or the distances.
        sort_results : bool, default=False
            Accepted for scikit-learn's signature (entries of a row are
            always in (distance, index) order).

        Returns
        -------
        graph : scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit_)
        """
        if mode not in ("connectivity", "distance"):
            raise ValueError(f"mode={mode!r} is not supported; use 'connectivity' or 'distance'.")
        if radius is None:
            radius = getattr(self, "radius", None)
        if radius is None:
            raise ValueError(f"{type(self).__name__}.radius_neighbors_graph needs radius=<distance>: "
                             "the estimator has no radius parameter.")
        radius = _check_radius(radius)
        distance_rows, index_rows = self._radius_search(X, radius, mode == "distance")
        lengths = np.array([len(row) for row in index_rows], dtype=np.intp)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.concatenate(index_rows) if index_rows else np.empty(0, dtype=np.intp)
        data = (np.concatenate(distance_rows) if mode == "distance" and distance_rows
                else np.ones(indices.shape[0]))
        return sp.csr_matrix((data, indices, indptr), shape=(len(index_rows), self.n_samples_fit_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        metric = _METRIC_ALIASES.get(self.metric, self.metric) if isinstance(self.metric, str) else None
        tags.input_tags.sparse = metric in SPARSE_METRICS or (metric == "minkowski" and self.p in (1, 2))
        tags.input_tags.pairwise = self.metric == "precomputed"
        tags.input_tags.positive_only = tags.input_tags.pairwise
        return tags


class _KNeighborsBase(_NeighborsBase):
    """Constructor of the two supervised estimators."""

    def __init__(self, n_neighbors=5, *, weights="uniform", algorithm="auto", leaf_size=30, p=2,
                 metric="minkowski", metric_params=None, n_jobs=None, backend="auto"):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.p = p
        self.metric = metric
        self.metric_params = metric_params
        self.n_jobs = n_jobs
        self.backend = backend


_COMMON_PARAMETERS_DOC = """
    algorithm : {"auto", "kd_tree", "ball_tree", "brute"}, default="auto"
        The search. "brute": the top-k distance kernels; "kd_tree" and
        "ball_tree": an exact spatial tree (:mod:`fastscratch._spatial_tree`),
        for the metrics in ``TREE_METRICS`` (Minkowski with p >= 1); "auto":
        the rule of :func:`auto_algorithm`, measured on this project's
        benchmarks. Every search gives the same neighbours and distances.
        Sparse input and "precomputed" always run brute force. The choice
        made at fit is ``_fit_method``.
    leaf_size : int, default=30
        Rows per leaf of a tree (between about ``leaf_size / 2`` and
        ``leaf_size``); >= 1. Changes the speed, never the answers.
    p : float, default=2
        Exponent of the Minkowski distance, > 0; ``np.inf`` is Chebyshev.
    metric : {"minkowski", "euclidean", "sqeuclidean", "manhattan", "chebyshev", "cosine", \
"precomputed"}, default="minkowski"
        Distance. "minkowski" uses ``p`` (p=2 is "euclidean", p=1
        "manhattan", p=inf "chebyshev"); "l2", "l1", "cityblock" and
        "infinity" are accepted as aliases. "precomputed": ``fit`` takes the
        square matrix of distances between training points and the queries
        are their distances to the training points, shape (n_queries,
        n_samples_fit).
    metric_params : dict, default=None
        Only ``{"p": value}`` (it overrides ``p``), for scikit-learn's signature.
    n_jobs : int, default=None
        Threads of the search (None: the global setting, else every core).
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel implementation; "auto" takes the fastest installed one. Resolved at fit.
"""

_PARAMETERS_DOC = """
    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours k.
    weights : {"uniform", "distance"}, callable or None, default="uniform"
        "uniform" (or None): every neighbour counts the same. "distance":
        weight :math:`1/d`; a query with neighbours at distance zero gives
        those weight 1 and the others 0 (scikit-learn's rule). A callable
        maps an array of distances (float64, one batch of queries at a time)
        to weights of the same shape.""" + _COMMON_PARAMETERS_DOC

# The fitted attributes every neighbours estimator documents.
_SEARCH_ATTRIBUTES_DOC = """    effective_metric_ : str
        The metric used ("minkowski" with p=2 becomes "euclidean", p=1
        "manhattan", p=inf "chebyshev").
    effective_metric_params_ : dict
        ``{"p": p}`` for a general Minkowski metric, else empty.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    n_samples_fit_ : int
        Number of training points.
"""

_NOTES_DOC = r"""
    The search is exact. Brute force ranks, per query :math:`q_i` and
    training point :math:`x_j`, with the reduced distance

    .. math::

        R_{ij} = \lVert q_i \rVert^2 - 2\, q_i \cdot x_j + \lVert x_j \rVert^2
        \quad\text{(euclidean: one GEMM per block)}, \qquad
        R_{ij} = \sum_l \lvert q_{il} - x_{jl} \rvert^p
        \quad\text{(Minkowski)},

    :math:`R_{ij} = \max_l \lvert q_{il} - x_{jl} \rvert` (Chebyshev) or
    :math:`1 - q_i \cdot x_j / (\lVert q_i\rVert \lVert x_j\rVert)`
    (cosine), keeps ``candidate_count(k, n)`` candidates in a max-heap, and
    re-ranks them with the exact float64 distance, ties to the smaller index.
    Float64 euclidean data are ranked in float32 (a centred float32 copy of
    the training data) and re-ranked in float64: a bound on the float32
    rounding (:func:`fastscratch.kernels.distances_numpy.ranking_margins`)
    proves for each query that no point outside its candidates can be among
    its k nearest, and a query it cannot prove is searched again in float64.
    Sparse (CSR) data are scored over each training row's non-zeros only
    (:mod:`fastscratch.kernels.sparse_distances_numpy`). Data far from the
    origin are centred at fit time for the euclidean ranking (distances are
    translation invariant). A KD-tree or ball tree finds the same neighbours
    by skipping every node whose lower bound on :math:`R` exceeds the
    current k-th distance. Returned distances are float64:
    :math:`d = \sqrt{R}` (euclidean), :math:`R^{1/p}` (Minkowski), :math:`R`
    otherwise. The neighbour weights of query :math:`i` are
    :math:`w_{ij} = 1` (uniform) or :math:`w_{ij} = 1 / d_{ij}` (distance).
"""


class KNeighborsClassifier(ClassifierMixin, _KNeighborsBase):
    __doc__ = (
        """Classifier voting among the k nearest neighbours (exact search).

    A drop-in for :class:`sklearn.neighbors.KNeighborsClassifier`: same
    parameters, plus ``backend``.
"""
        + _PARAMETERS_DOC
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or list of such arrays
        Class labels (one array per output for a 2-D target).
"""
        + _SEARCH_ATTRIBUTES_DOC
        + """    outputs_2d_ : bool
        Whether y was 2-D (several outputs).

    Notes
    -----"""
        + _NOTES_DOC
        + r"""
    The probability of class :math:`c` (for each output) is

    .. math::

        P(c \mid q_i) = \frac{\sum_{j \in N_k(i)} w_{ij} [y_j = c]}{\sum_{j \in N_k(i)} w_{ij}},

    summed in neighbour order, and ``predict`` returns the class with the
    largest probability, the smallest label on a tie (``argmax``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastscratch import KNeighborsClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> KNeighborsClassifier(n_neighbors=3).fit(X, y).score(X, y) > 0.9
    True
"""
    )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def fit(self, X, y):
        """Store the training data and the encoded labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training points (float32 stays float32, anything else becomes
            float64; sparse becomes CSR), or the (n_samples, n_samples)
            distance matrix with ``metric="precomputed"``.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (numbers or strings).

        Returns
        -------
        self : KNeighborsClassifier
        """
        metric, p = self._check_params()
        X, y = self._validate_fit_X(X, y, multi_output=True)
        check_label_kinds(y)
        self._fit_search_structure(X, metric, p)
        check_classification_targets(y)
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
            if y.ndim != 1:
                import warnings

                warnings.warn("A column-vector y was passed when a 1d array was expected. Please change "
                              "the shape of y to (n_samples,), for example using ravel().",
                              DataConversionWarning, stacklevel=2)
            self.outputs_2d_ = False
            y = y.reshape((-1, 1))
        else:
            self.outputs_2d_ = True
        self.classes_ = []
        self._y = np.empty(y.shape, dtype=np.intp)
        for k in range(y.shape[1]):
            # np.unique(..., return_inverse=True) would hold several n-sized
            # temporaries; sorting the few classes and searching them does not.
            classes = np.unique(y[:, k])
            self._y[:, k] = np.searchsorted(classes, y[:, k])
            self.classes_.append(classes)
        if not self.outputs_2d_:
            self.classes_ = self.classes_[0]
            self._y = self._y.ravel()
        return self

    def _batch_probabilities(self, distances, indices):
        """Class probabilities of one batch, one (batch x n_classes) array per output."""
        weights = neighbor_weights(distances, self.weights)
        if weights is not None and np.any(np.all(weights == 0, axis=1)):
            raise ValueError("All neighbors of some sample is getting zero weights. Please modify 'weights' "
                             "to avoid this case if you are using a user-defined function.")
        labels = self._y.reshape(self.n_samples_fit_, -1)
        classes = self.classes_ if self.outputs_2d_ else [self.classes_]
        rows = np.arange(indices.shape[0])
        probabilities = []
        for k, classes_k in enumerate(classes):
            neighbour_labels = labels[:, k][indices]
            proba = np.zeros((indices.shape[0], classes_k.size))
            for i, label in enumerate(neighbour_labels.T):  # neighbour order, as scikit-learn
                proba[rows, label] += 1.0 if weights is None else weights[:, i]
            proba /= proba.sum(axis=1)[:, np.newaxis]
            probabilities.append(proba)
        return probabilities

    def predict_proba(self, X):
        """Class probabilities of the queries.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None
            Queries; None means the training points, each excluded from its
            own neighbours.

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes), or a list of such arrays (one per output)
        """
        need_distances = _needs_distances(self.weights)
        out = None
        for start, stop, n_queries, distances, indices in self._kneighbors_batches(X, return_distance=need_distances):
            batch = self._batch_probabilities(distances, indices)
            if out is None:
                out = [np.empty((n_queries, p.shape[1])) for p in batch]
            for full, part in zip(out, batch):
                full[start:stop] = part
        return out if self.outputs_2d_ else out[0]

    def predict(self, X):
        """Class labels of the queries (the most probable class, smallest label on a tie).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None
            Queries; None means the training points, each excluded from its
            own neighbours (leave-one-out).

        Returns
        -------
        y : ndarray of shape (n_queries,) or (n_queries, n_outputs)
        """
        check_is_fitted(self, "n_samples_fit_")
        need_distances = _needs_distances(self.weights)
        classes = self.classes_ if self.outputs_2d_ else [self.classes_]
        out = None
        for start, stop, n_queries, distances, indices in self._kneighbors_batches(X, return_distance=need_distances):
            batch = self._batch_probabilities(distances, indices)
            if out is None:
                out = np.empty((n_queries, len(classes)), dtype=classes[0].dtype)
            for k, proba in enumerate(batch):
                out[start:stop, k] = classes[k].take(np.argmax(proba, axis=1))
        return out if self.outputs_2d_ else out.ravel()


class KNeighborsRegressor(RegressorMixin, _KNeighborsBase):
    __doc__ = (
        """Regression by the (weighted) mean target of the k nearest neighbours.

    A drop-in for :class:`sklearn.neighbors.KNeighborsRegressor`: same
    parameters, plus ``backend``.
"""
        + _PARAMETERS_DOC
        + """
    Attributes
    ----------
"""
        + _SEARCH_ATTRIBUTES_DOC
        + """
    Notes
    -----"""
        + _NOTES_DOC
        + r"""
    The prediction for query :math:`q_i` is

    .. math::

        \hat y_i = \frac{\sum_{j \in N_k(i)} w_{ij}\, y_j}{\sum_{j \in N_k(i)} w_{ij}}

    (the plain mean for uniform weights), per output.

    Examples
    --------
    >>> import numpy as np
    >>> from fastscratch import KNeighborsRegressor
    >>> X = np.arange(10.0).reshape(-1, 1)
    >>> KNeighborsRegressor(n_neighbors=2).fit(X, 2 * X.ravel()).predict([[4.2]])
    array([9.])
"""
    )

    def fit(self, X, y):
        """Store the training data and targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training points (float32 stays float32, anything else becomes
            float64; sparse becomes CSR), or the (n_samples, n_samples)
            distance matrix with ``metric="precomputed"``.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Numeric targets.

        Returns
        -------
        self : KNeighborsRegressor
        """
        metric, p = self._check_params()
        X, y = self._validate_fit_X(X, y, multi_output=True, y_numeric=True)
        self._fit_search_structure(X, metric, p)
        self._y = y
        return self

    def predict(self, X):
        """Targets of the queries.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None
            Queries; None means the training points, each excluded from its
            own neighbours (leave-one-out).

        Returns
        -------
        y : ndarray of shape (n_queries,) or (n_queries, n_outputs), float64
        """
        check_is_fitted(self, "n_samples_fit_")
        targets = self._y.reshape(self.n_samples_fit_, -1) if self._y.ndim == 1 else self._y
        need_distances = _needs_distances(self.weights)
        out = None
        for start, stop, n_queries, distances, indices in self._kneighbors_batches(X, return_distance=need_distances):
            weights = neighbor_weights(distances, self.weights)
            if weights is None:
                batch = np.mean(targets[indices], axis=1)
            else:
                batch = np.empty((indices.shape[0], targets.shape[1]))
                denominator = np.sum(weights, axis=1)
                for j in range(targets.shape[1]):
                    batch[:, j] = np.sum(targets[indices, j] * weights, axis=1) / denominator
            if out is None:
                out = np.empty((n_queries, targets.shape[1]))
            out[start:stop] = batch
        return out.ravel() if self._y.ndim == 1 else out


class NearestNeighbors(_NeighborsBase):
    __doc__ = (
        """Unsupervised nearest-neighbour search (k nearest and within a radius).

    A drop-in for :class:`sklearn.neighbors.NearestNeighbors`: same
    parameters, plus ``backend``.

    Parameters
    ----------
    n_neighbors : int, default=5
        Default k of :meth:`kneighbors`.
    radius : float, default=1.0
        Default radius of :meth:`radius_neighbors`, >= 0."""
        + _COMMON_PARAMETERS_DOC
        + """
    Attributes
    ----------
"""
        + _SEARCH_ATTRIBUTES_DOC
        + """
    Notes
    -----"""
        + _NOTES_DOC
        + r"""
    A radius query returns every :math:`x_j` with :math:`d(q_i, x_j) \le r`
    (exact float64 distances), in (distance, index) order.

    Examples
    --------
    >>> import numpy as np
    >>> from fastscratch.neighbors import NearestNeighbors
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    >>> distances, indices = NearestNeighbors(n_neighbors=2).fit(X).kneighbors([[0.0, 0.2]])
    >>> indices
    array([[0, 1]])
    >>> NearestNeighbors(radius=1.5).fit(X).radius_neighbors([[0.0, 0.2]], return_distance=False)[0]
    array([0, 1])
"""
    )

    def __init__(self, *, n_neighbors=5, radius=1.0, algorithm="auto", leaf_size=30, metric="minkowski",
                 p=2, metric_params=None, n_jobs=None, backend="auto"):
        self.n_neighbors = n_neighbors
        self.radius = radius
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.n_jobs = n_jobs
        self.backend = backend

    def fit(self, X, y=None):
        """Store the training data and build the search chosen by ``algorithm``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training points (float32 stays float32, anything else becomes
            float64; sparse becomes CSR), or the (n_samples, n_samples)
            distance matrix with ``metric="precomputed"``.
        y : None
            Ignored.

        Returns
        -------
        self : NearestNeighbors
        """
        metric, p = self._check_params()
        _check_radius(self.radius)
        X, _ = self._validate_fit_X(X)
        self._fit_search_structure(X, metric, p)
        return self
