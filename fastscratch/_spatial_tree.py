r"""KD-tree and ball tree for exact k-nearest and radius neighbour search.

:class:`SpatialTree` is what the KNN estimators call when ``algorithm`` picks a
tree: it validates its own parameters, picks the backend of the
``spatial_tree`` kernel family (:mod:`fastscratch.kernels.spatial_tree_numpy`
explains the trees), allocates the tree arrays and turns the kernels' reduced
distances into the metric's distances.

Answers equal the brute-force search of :mod:`fastscratch.neighbors`: the k
nearest rows by exact float64 distance, equal distances ordered by the smaller
index, and distances in the metric's own units (euclidean: the root of the
float64 sum of squares; sqeuclidean: the sum itself; Minkowski: its ``1/p``-th
power). Float32 data stay float32 in memory; every distance is evaluated in
float64 from them, which is what the brute-force kernels' exact float64
re-ranking computes.
"""

import numbers

import numpy as np

from ._backend import resolve_kernel
from .kernels.spatial_tree_numpy import tree_shape

TREE_METRICS = ("euclidean", "sqeuclidean", "manhattan", "chebyshev", "minkowski")
KINDS = ("kd_tree", "ball_tree")


def _exponent(metric, p):
    """The Minkowski exponent that ranks ``metric`` (2 for (sq)euclidean, inf for Chebyshev)."""
    if metric in ("euclidean", "sqeuclidean"):
        return 2.0
    if metric == "manhattan":
        return 1.0
    if metric == "chebyshev":
        return np.inf
    return float(p)


def tree_supports(metric, p=2):
    """Whether a KD-tree or ball tree can serve ``metric`` (with exponent ``p`` for "minkowski").

    Parameters
    ----------
    metric : str
        One of ``TREE_METRICS`` to be served; anything else gives False.
    p : float, default=2
        Minkowski exponent; a tree needs a true metric, so ``p >= 1``
        (``np.inf`` allowed). Ignored for the other metrics.

    Returns
    -------
    bool
    """
    if not isinstance(metric, str) or metric not in TREE_METRICS:
        return False
    if metric != "minkowski":
        return True
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        return False
    return bool(p >= 1)  # NaN compares False


def _object_rows(flat, offsets):
    """Object array whose item i is ``flat[offsets[i]:offsets[i + 1]]`` (scikit-learn's layout)."""
    rows = np.empty(offsets.shape[0] - 1, dtype=object)
    for i in range(rows.shape[0]):
        rows[i] = flat[offsets[i]:offsets[i + 1]]
    return rows


class SpatialTree:
    r"""A KD-tree or ball tree over a training set, for exact neighbour queries.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        C-contiguous, finite, ``n_samples >= 1`` (validated by the caller).
        Kept by reference; the tree holds a second copy in tree order.
    kind : {"kd_tree", "ball_tree"}
    leaf_size : int, default=30
        Rows per leaf: between about ``leaf_size / 2`` and ``leaf_size``.
    metric : {"euclidean", "sqeuclidean", "manhattan", "chebyshev", "minkowski"}, default="euclidean"
    p : float, default=2
        Exponent of "minkowski", >= 1 (``np.inf`` is Chebyshev). p = 2 and
        p = 1 give exactly the "euclidean" and "manhattan" results.
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
    n_threads : int, default=1
        Threads of the build.

    Attributes
    ----------
    backend_ : str
        The backend that runs the build and the queries.
    n_samples_, n_features_ : int
    n_levels_, n_nodes_ : int
        Shape of the complete binary tree (node ``i`` has children
        ``2 i + 1`` and ``2 i + 2``).
    idx_array_ : ndarray of shape (n_samples,), intp
        Training rows in tree order.

    Notes
    -----
    The queries rank the reduced distance

    .. math::

        R(q, x) = \sum_l \lvert q_l - x_l \rvert^p \quad (p < \infty), \qquad
        R(q, x) = \max_l \lvert q_l - x_l \rvert \quad (p = \infty),

    in float64, and return :math:`R` for "sqeuclidean", :math:`\sqrt R` for
    "euclidean", :math:`R^{1/p}` for "minkowski" and :math:`R` for
    "manhattan" and "chebyshev". A node is skipped when its lower bound (the
    distance to the KD-tree's box, or the distance to the ball's centre less
    its radius) exceeds the current k-th distance; see
    :mod:`fastscratch.kernels.spatial_tree_numpy`.
    """

    def __init__(self, X, kind, *, leaf_size=30, metric="euclidean", p=2, backend="auto",
                 n_threads=1):
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not supported; use one of {KINDS}.")
        if isinstance(leaf_size, bool) or not isinstance(leaf_size, numbers.Integral):
            raise TypeError(f"leaf_size must be an integer >= 1, got {leaf_size!r}.")
        if leaf_size < 1:
            raise ValueError(f"leaf_size={leaf_size} must be >= 1; pass a positive integer such as 30.")
        if not tree_supports(metric, p):
            raise ValueError(
                f"metric={metric!r} with p={p!r} cannot be served by a tree; use one of "
                f"{TREE_METRICS} (minkowski with p >= 1), or brute force."
            )
        X = np.asarray(X)
        if X.ndim != 2 or X.dtype not in (np.float32, np.float64) or X.shape[0] < 1:
            raise ValueError(
                "X must be a 2-D float32 or float64 array with at least one row; "
                f"got shape {X.shape} and dtype {X.dtype}."
            )
        self.kind = kind
        self.leaf_size = int(leaf_size)
        self.metric = metric
        self.p = p
        self._exponent = _exponent(metric, p)
        self._X = np.ascontiguousarray(X)
        self.n_samples_, self.n_features_ = X.shape
        self.n_levels_, self.n_nodes_ = tree_shape(self.n_samples_, self.leaf_size)

        prefix = "kd_tree" if kind == "kd_tree" else "ball_tree"
        build, self.backend_ = resolve_kernel(f"{prefix}_build", backend)
        self._query_kernel, _ = resolve_kernel(f"{prefix}_query", self.backend_)
        self._count_kernel, _ = resolve_kernel(f"{prefix}_radius_count", self.backend_)
        self._fill_kernel, _ = resolve_kernel(f"{prefix}_radius_fill", self.backend_)

        n, d, n_nodes = self.n_samples_, self.n_features_, self.n_nodes_
        self.idx_array_ = np.empty(n, dtype=np.intp)
        self._node_start = np.empty(n_nodes, dtype=np.intp)
        self._node_end = np.empty(n_nodes, dtype=np.intp)
        if kind == "kd_tree":
            self._geometry = (np.empty((n_nodes, d)), np.empty((n_nodes, d)))
            build(self._X, self.idx_array_, self._node_start, self._node_end, *self._geometry,
                  int(n_threads))
        else:
            self._geometry = (np.empty((n_nodes, d)), np.empty(n_nodes))
            build(self._X, self._exponent, self.idx_array_, self._node_start, self._node_end,
                  *self._geometry, int(n_threads))
        # The rows in tree order: a leaf's rows are contiguous in memory.
        self._tree_data = self._X[self.idx_array_]

    # ----------------------------------------------------------------- helpers
    def _tree_arrays(self):
        return (self._tree_data, self.idx_array_, self._node_start, self._node_end, *self._geometry)

    def _check_queries(self, Q):
        Q = np.asarray(Q)
        if Q.ndim != 2 or Q.shape[1] != self.n_features_:
            raise ValueError(
                f"Q must have shape (n_queries, {self.n_features_}) like the training data; "
                f"got shape {Q.shape}."
            )
        return np.ascontiguousarray(Q, dtype=self._X.dtype)

    def _to_distance(self, reduced):
        """Reduced float64 distances to the metric's distances, in place."""
        if self.metric == "euclidean" or (self.metric == "minkowski" and self._exponent == 2.0):
            np.sqrt(reduced, out=reduced)
        elif self.metric == "minkowski" and self._exponent not in (1.0, np.inf):
            np.power(reduced, 1.0 / self._exponent, out=reduced)
        return reduced

    def _to_reduced(self, r):
        if self.metric == "sqeuclidean" or self._exponent in (1.0, np.inf):
            return r.copy()
        return r ** self._exponent

    # ----------------------------------------------------------------- queries
    def query(self, Q, k, *, n_threads=1, return_distance=True):
        """The k nearest training rows of each query.

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features)
            Cast to the training data's dtype.
        k : int
            ``1 <= k <= n_samples_``.
        n_threads : int, default=1
            Threads of the search (results do not depend on it).
        return_distance : bool, default=True

        Returns
        -------
        distances : ndarray of shape (n_queries, k), float64
            Ascending, in the metric's units. Only with ``return_distance``.
        indices : ndarray of shape (n_queries, k), intp
            Training rows; equal distances ordered by index.
        """
        Q = self._check_queries(Q)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"k must be an integer, got {k!r}.")
        if not 1 <= k <= self.n_samples_:
            raise ValueError(f"k={k} must be between 1 and n_samples={self.n_samples_}.")
        reduced = np.empty((Q.shape[0], int(k)))
        indices = np.empty((Q.shape[0], int(k)), dtype=np.intp)
        self._query_kernel(*self._tree_arrays(), Q, self._exponent, reduced, indices,
                           max(1, int(n_threads)))
        if not return_distance:
            return indices
        return self._to_distance(reduced), indices

    def query_radius(self, Q, r, *, n_threads=1, return_distance=True, sort_results=False):
        """Every training row within distance ``r`` (inclusive) of each query.

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features)
        r : float or ndarray of shape (n_queries,)
            Radius, >= 0, in the metric's units.
        n_threads : int, default=1
        return_distance : bool, default=True
        sort_results : bool, default=False
            Rows are always returned sorted by (distance, index), so this
            only exists for scikit-learn's signature.

        Returns
        -------
        indices : ndarray of shape (n_queries,), object
            One intp array of training rows per query.
        distances : ndarray of shape (n_queries,), object
            One float64 array per query. Only with ``return_distance``.
        """
        Q = self._check_queries(Q)
        m = Q.shape[0]
        radii = np.asarray(r, dtype=np.float64)
        if radii.ndim == 0:
            radii = np.full(m, float(radii))
        if radii.shape != (m,) or not np.all(radii >= 0):
            raise ValueError(f"r must be a number >= 0 or an array of {m} such numbers.")
        radii_reduced = self._to_reduced(radii)
        n_threads = max(1, int(n_threads))
        counts = np.empty(m, dtype=np.intp)
        self._count_kernel(*self._tree_arrays(), Q, self._exponent, radii_reduced, counts, n_threads)
        offsets = np.zeros(m + 1, dtype=np.intp)
        np.cumsum(counts, out=offsets[1:])
        from .neighbors import _check_radius_output_fits  # a lazy import: neighbors imports this module

        _check_radius_output_fits(int(offsets[-1]), r)
        flat_indices = np.empty(offsets[-1], dtype=np.intp)
        flat_reduced = np.empty(offsets[-1])
        self._fill_kernel(*self._tree_arrays(), Q, self._exponent, radii_reduced, offsets,
                          flat_indices, flat_reduced, n_threads)
        indices = _object_rows(flat_indices, offsets)
        if not return_distance:
            return indices
        return indices, _object_rows(self._to_distance(flat_reduced), offsets)
