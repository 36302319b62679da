"""K-means clustering: :class:`KMeans`, scikit-learn's estimator with fused kernels."""

import numbers
import os
import warnings
from contextlib import nullcontext

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.sparsefuncs import mean_variance_axis
from sklearn.utils.validation import _check_sample_weight, _num_samples, check_is_fitted, validate_data

from ._backend import effective_n_threads, resolve_kernel
from ._sparse_checks import check_sparse_structure
from .kernels._threads import blas_single_threaded, machine_shared
from .kernels.kmeans_numpy import BLOCK_ROWS, rank_copy_pays
from .kmeans_core import SAFE_EXPONENT as _SAFE_EXPONENT
from .kmeans_core import IterationProgress as _Progress
from .kmeans_core import LloydState
from .kmeans_core import euclidean_rows as _euclidean_rows
from .kmeans_core import ldexp as _ldexp
from .kmeans_core import max_abs_value as _max_abs
from .kmeans_core import scale_exponent as _scale_exponent
from .kmeans_core import scaled_callable as _scaled_callable
from .kmeans_core import scaled_inertia as _scaled_inertia

# Rows per block of KMeans.predict (a multiple of the kernels' BLOCK_ROWS).
PREDICT_BLOCK_ROWS = 1 << 16

__all__ = ["KMeans", "kmeans_plusplus"]

_KERNELS = ("kmeans_lloyd_iter", "kmeans_elkan_init", "kmeans_elkan_iter", "kmeans_inertia",
            "kmeans_center")
_SPARSE_KERNELS = ("kmeans_sparse_lloyd_iter", "kmeans_sparse_elkan_init", "kmeans_sparse_elkan_iter",
                   "kmeans_sparse_sq_distances")
_DISTANCE_CHUNK = 1 << 16  # rows of X per float64 chunk in k-means++
def _row_sq_norms(X):
    """||x_i||^2 in float64 for each row of a dense array or a CSR matrix."""
    if sp.issparse(X):
        squares = X.astype(np.float64)
        squares.data **= 2
        return np.asarray(squares.sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", X, X, dtype=np.float64)


def _dense_rows(X, rows):
    """X[rows] as a dense array (only these rows are densified when X is CSR)."""
    return X[rows].toarray() if sp.issparse(X) else X[rows]


def _sq_distances_to(X, x_sq_norms, points):
    """Squared distances (m x n, float64) from ``points`` (m x d) to every row of X.

    Expanded form ``||p||^2 - 2 p.x + ||x||^2`` in float64, clipped at 0; X
    (dense or CSR) is upcast one chunk of rows at a time, so float32 data is
    never copied whole, and CSR data never densified.
    """
    points = points.astype(np.float64)
    points_sq = np.einsum("ij,ij->i", points, points)
    out = np.empty((points.shape[0], X.shape[0]))
    for start in range(0, X.shape[0], _DISTANCE_CHUNK):
        chunk = X[start:start + _DISTANCE_CHUNK].astype(np.float64, copy=False)
        # (m x chunk) temporary: out's column slice is not C-contiguous
        block = np.asarray((chunk @ points.T).T) if sp.issparse(chunk) else points @ chunk.T
        block *= -2
        block += points_sq[:, None]
        block += x_sq_norms[None, start:start + _DISTANCE_CHUNK]
        out[:, start:start + _DISTANCE_CHUNK] = block
    np.maximum(out, 0, out=out)
    return out


def kmeans_plusplus(X, n_clusters, *, sample_weight=None, random_state=None, n_local_trials=None):
    r"""Greedy k-means++ seeding (Arthur & Vassilvitskii; scikit-learn's variant).

    The first centre is a sample drawn with probability proportional to its
    weight; each next one is the best of ``n_local_trials`` candidates drawn
    with probability :math:`\propto w_i D(x_i)^2` (:math:`D` the distance to
    the nearest centre so far), "best" meaning the one that leaves the smallest
    potential :math:`\sum_i w_i D(x_i)^2`.

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
    n_clusters : int
    sample_weight : ndarray of shape (n_samples,), default=None
    random_state : int, RandomState instance or None, default=None
    n_local_trials : int, default=None
        ``2 + int(log(n_clusters))`` when None.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), dtype of X
    indices : ndarray of shape (n_clusters,)
        Rows of X chosen as centres.
    """
    X = X.tocsr() if sp.issparse(X) else np.asarray(X)
    exponent = _scale_exponent(_max_abs(X), X.dtype) if X.dtype in _SAFE_EXPONENT else 0
    if exponent:
        # The same draws on X / 2**e (distances that do not overflow), the centres scaled back.
        centers, indices = kmeans_plusplus(_ldexp(X, -exponent), n_clusters,
                                           sample_weight=sample_weight, random_state=random_state,
                                           n_local_trials=n_local_trials)
        return _ldexp(centers, exponent), indices
    random_state = check_random_state(random_state)
    n_samples = X.shape[0]
    sample_weight = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight)
    weights = sample_weight.astype(np.float64)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    x_sq_norms = _row_sq_norms(X)

    centers = np.empty((n_clusters, X.shape[1]), dtype=X.dtype)
    indices = np.full(n_clusters, -1, dtype=int)
    center_id = random_state.choice(n_samples, p=weights / weights.sum())
    centers[0], indices[0] = _dense_rows(X, [center_id])[0], center_id
    closest_sq = _sq_distances_to(X, x_sq_norms, _dense_rows(X, [center_id]))[0]
    current_pot = closest_sq @ weights
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        candidate_ids = np.searchsorted(np.cumsum(weights * closest_sq), rand_vals)
        np.clip(candidate_ids, None, n_samples - 1, out=candidate_ids)
        candidates = _dense_rows(X, candidate_ids)
        candidate_sq = _sq_distances_to(X, x_sq_norms, candidates)
        np.minimum(closest_sq, candidate_sq, out=candidate_sq)
        candidate_pot = candidate_sq @ weights
        best = int(np.argmin(candidate_pot))
        current_pot, closest_sq = candidate_pot[best], candidate_sq[best]
        centers[c], indices[c] = candidates[best], candidate_ids[best]
    return centers, indices


def _shape_before_conversion(X):
    """X's (n_samples, n_features) when known without converting X (arrays, frames, sparse), else None."""
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2:
        return None
    try:
        return int(_num_samples(X)), int(shape[1])
    except (TypeError, ValueError):
        return None


def _same_clustering(labels1, labels2, n_clusters):
    """True if two labelings are equal up to a permutation of the labels."""
    mapping = np.full(n_clusters, -1, dtype=np.intp)
    first = np.unique(labels1, return_index=True)
    mapping[first[0]] = labels2[first[1]]
    return bool(np.array_equal(mapping[labels1], labels2))


class _CSRData:
    """A CSR matrix as the sparse kernels take it, with those kernels behind the dense signatures.

    ``_run_lloyd`` and ``_run_elkan`` call the same methods on this object as
    on the dense kernels; the CSR arrays are passed as they are (indices as
    ``np.intp``), never densified. The centres' squared norms (scikit-learn's
    ``row_norms``) and their transpose are made here, once per call.
    """

    def __init__(self, X, kernels):
        self.data = X.data
        self.indices = X.indices.astype(np.intp, copy=False)
        self.indptr = X.indptr.astype(np.intp, copy=False)
        self.shape = X.shape
        self.dtype = X.dtype
        self.kernels = kernels

    def __getitem__(self, rows):
        """X[rows] densified (the few rows the empty-cluster rule moves)."""
        indptr = self.indptr
        out = np.zeros((len(rows), self.shape[1]), dtype=self.dtype)
        for r, i in enumerate(rows):
            out[r, self.indices[indptr[i]:indptr[i + 1]]] = self.data[indptr[i]:indptr[i + 1]]
        return out

    @property
    def arrays(self):
        return self.data, self.indices, self.indptr

    def lloyd_state(self, n_clusters):
        """Labels -1; the sparse kernel needs no per-stripe sums (empty buffers)."""
        return (np.full(self.shape[0], -1, dtype=np.intp), np.zeros((0, n_clusters, 0)),
                np.zeros((0, n_clusters)))

    def kmeans_lloyd_iter(self, X, sample_weight, centers, centers_sq_norms, with_inertia, labels,
                          stripe_sums, stripe_weights, out_sums, out_weights, out_inertia,
                          out_n_changed, n_threads):
        self.kernels["kmeans_sparse_lloyd_iter"](
            *self.arrays, sample_weight, centers, np.ascontiguousarray(centers.T), centers_sq_norms,
            with_inertia, labels, out_sums, out_weights, out_inertia, out_n_changed, n_threads)

    def kmeans_elkan_init(self, X, centers, center_half_distances, out_labels, out_upper, out_lower,
                          n_threads):
        self.kernels["kmeans_sparse_elkan_init"](
            *self.arrays, centers, np.einsum("ij,ij->i", centers, centers), center_half_distances,
            out_labels, out_upper, out_lower, n_threads)

    def kmeans_elkan_iter(self, X, sample_weight, centers, center_half_distances,
                          distance_next_center, center_shift, labels, upper, lower, out_sums,
                          out_weights, n_threads):
        self.kernels["kmeans_sparse_elkan_iter"](
            *self.arrays, sample_weight, centers, np.einsum("ij,ij->i", centers, centers),
            center_half_distances, distance_next_center, center_shift, labels, upper, lower,
            out_sums, out_weights, n_threads)

    def sq_distances(self, centers, labels, n_threads=1):
        """||x_i - c_{l_i}||^2 in scikit-learn's sparse arithmetic (input dtype)."""
        out = np.empty(self.shape[0], dtype=self.dtype)
        self.kernels["kmeans_sparse_sq_distances"](
            *self.arrays, centers, np.einsum("ij,ij->i", centers, centers), labels, out, n_threads)
        return out

    def kmeans_inertia(self, X, sample_weight, centers, labels, out_inertia, n_threads):
        weighted = self.sq_distances(centers, labels, n_threads).astype(np.float64) * sample_weight
        out_inertia[0] = weighted.sum()

    def as_kernels(self):
        """The methods above, by the names of the dense kernels they stand in for."""
        return {name: getattr(self, name) for name in
                ("kmeans_lloyd_iter", "kmeans_elkan_init", "kmeans_elkan_iter", "kmeans_inertia")}


class KMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    r"""K-means clustering, scikit-learn's ``KMeans`` with fused Lloyd and Elkan kernels.

    Given the same initial centres, the labels and iteration count equal
    scikit-learn's and the centres and inertia agree to rounding, on dense
    arrays and on scipy CSR matrices (which are never densified).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters :math:`k`.
    init : {"k-means++", "random"}, callable or array-like of shape (n_clusters, n_features), \
            default="k-means++"
        "k-means++": greedy k-means++ (:func:`kmeans_plusplus`, 2 + log(k)
        local trials, weighted by ``sample_weight``); "random": ``n_clusters``
        distinct samples drawn with probability proportional to their weight;
        an array: the initial centres; a callable ``init(X, n_clusters,
        random_state)`` returning them.
    n_init : "auto" or int, default="auto"
        Number of runs from different initialisations; the one with the
        lowest inertia is kept. "auto": 1 for "k-means++" and an array, 10
        for "random" and a callable.
    max_iter : int, default=300
        Maximum number of Lloyd / Elkan iterations per run.
    tol : float, default=1e-4
        Convergence tolerance, relative to the mean per-feature variance of X:
        a run stops when :math:`\sum_j \delta_j^2 \le` ``tol`` times that mean.
    verbose : int, default=0
        Show a progress bar of the iterations (tqdm) with the inertia.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation.
    copy_x : bool, default=True
        If False, X is centred in place during ``fit`` and restored afterwards
        (saves a copy of the data; the restored values may differ by rounding).
    algorithm : {"lloyd", "elkan"}, default="lloyd"
        "elkan" skips distance computations with the triangle inequality
        (faster for well-separated clusters, uses an n x k bound matrix).
    n_jobs : int, default=None
        Threads of the kernels; None uses the global configuration, then every core.
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel backend; "auto" uses the global configuration, then the fastest installed.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,), int32
    inertia_ : float
        :math:`\sum_i w_i \lVert x_i - c_{\ell_i} \rVert^2`.
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string column names.
    backend_ : str
        Backend that ran the kernels.

    Notes
    -----
    K-means minimises the weighted inertia

    .. math::

        J(c, \ell) = \sum_{i=1}^{n} w_i \, \lVert x_i - c_{\ell_i} \rVert^2

    by alternating an E-step (each sample to its nearest centre) and an
    M-step (each centre to the weighted mean of its samples):

    .. math::

        \ell_i = \operatorname{argmin}_j \lVert c_j \rVert^2 - 2\, x_i \cdot c_j ,
        \qquad
        c_j^{new} = \frac{S_j}{W_j}, \quad S_j = \sum_{\ell_i = j} w_i x_i, \quad
        W_j = \sum_{\ell_i = j} w_i .

    One kernel pass (``kmeans_lloyd_iter``) does both: the products
    :math:`x_i \cdot c_j` come from one BLAS GEMM per block of samples, or
    from vector code of our own (8 to 16 centres with AVX-512; 128 features
    and more, fewer than 64 centres, with AVX2 too; the compiled kernels rank in float32 and
    redo with scikit-learn's exact arithmetic every row whose ranking is
    within rounding error, see ``kernels/kmeans_numpy.py``; float64 data with
    33 to 127 features, or more with 64 centres or more, are ranked on a
    float32 copy of X that ``fit`` makes once, 4 bytes per value), and :math:`S_j`, :math:`W_j` are kept in
    float64 per-stripe buffers, reduced in a fixed order, that each pass
    updates for the samples whose label changed. As scikit-learn, ``fit``
    subtracts the mean of X first (and adds it back to the centres), stops
    when the labels no longer change ("strict convergence") or when the centre
    shift :math:`\sum_j \lVert c_j^{new} - c_j \rVert^2` is at most ``tol``
    times the mean feature variance, and then runs a last E-step so that
    ``labels_`` are the nearest centres of ``cluster_centers_``. A cluster
    left empty (:math:`W_j = 0`) is moved to the sample farthest from its
    centre. Elkan's variant keeps the bounds :math:`u_i \ge \lVert x_i -
    c_{\ell_i}\rVert`, :math:`l_{ij} \le \lVert x_i - c_j \rVert` and skips
    centre :math:`j` when :math:`u_i \le \max(l_{ij}, \tfrac12\lVert c_{\ell_i}
    - c_j \rVert)`.

    On CSR input the products :math:`x_i \cdot c_j` are sparse dot products
    over the stored values of :math:`x_i` in scikit-learn's order (see
    ``kernels/kmeans_sparse_numpy.py``), the data is not centred, and the
    tolerance uses the column variances of the sparse matrix.

    Scale: squared distances of data near 1e300 overflow float64 (near
    1e-300 they underflow; float32 from about 1e19 and 1e-19). When the
    largest :math:`|x_{il}|` lies outside :math:`[2^{-200}, 2^{200}]`
    (float32: :math:`[2^{-40}, 2^{40}]`), ``fit``, ``predict``, ``transform``,
    ``score`` and :func:`kmeans_plusplus` work on :math:`X / 2^e` with
    :math:`\max |x_{il}| / 2^e \in [0.5, 1)`. Division by a power of two is
    exact, so the labels and iterations are those of the unscaled problem,
    the centres come back times :math:`2^e` and the inertia times
    :math:`4^e`; an inertia beyond float64's range is a ValueError that says
    so. A callable ``init`` still sees (and returns) X on its own scale.

    Examples
    --------
    >>> import numpy as np
    >>> from fastscratch import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
    >>> km = KMeans(n_clusters=2, init=X[[0, 3]], backend="numpy").fit(X)
    >>> km.labels_
    array([0, 0, 0, 1, 1, 1], dtype=int32)
    >>> km.cluster_centers_
    array([[ 1.,  2.],
           [10.,  2.]])
    """

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300, tol=1e-4,
                 verbose=0, random_state=None, copy_x=True, algorithm="lloyd", n_jobs=None,
                 backend="auto"):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.n_jobs = n_jobs
        self.backend = backend

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR (other formats are converted to it)
        return tags

    # ------------------------------------------------------------------ checks
    def _check_size_params(self, shape=None, itemsize=8):
        """The size parameters, before X is converted or anything is allocated.

        Types (TypeError), values (ValueError), and, when X's ``shape`` is
        known, ``n_clusters`` against the number of samples and against this
        machine's memory (:meth:`_check_memory`).
        """
        def positive_int(name, value):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}; "
                                f"pass a positive integer.")
            if value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")

        positive_int("n_clusters", self.n_clusters)
        positive_int("max_iter", self.max_iter)
        if self.n_init != "auto":
            if isinstance(self.n_init, str):
                raise ValueError(f"n_init must be 'auto' or a positive int, got {self.n_init!r}.")
            positive_int("n_init", self.n_init)
        if shape is None or len(shape) != 2:
            return
        if shape[0] < self.n_clusters:
            raise ValueError(f"n_samples={shape[0]} should be >= n_clusters={self.n_clusters}: "
                             "lower n_clusters or pass more samples.")
        self._check_memory(shape[0], shape[1], itemsize)

    def _check_memory(self, n_samples, n_features, itemsize):
        """ValueError naming n_clusters when the arrays that grow with it cannot fit in memory.

        Counted: the float64 centres, their sums and the next centres (4 k x d),
        and for Elkan the n x k lower bounds (X's dtype) and the k x k centre
        distances (float64, twice); X and the labels are the input's size.
        """
        k = int(self.n_clusters)
        needed = 4 * 8 * k * n_features
        if self.algorithm == "elkan" and k > 1:
            needed += itemsize * n_samples * k + 2 * 8 * k * k
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # not a POSIX system: no check
            return
        if needed > memory:
            fix = (" or use algorithm='lloyd' (no n_samples x n_clusters bounds)"
                   if self.algorithm == "elkan" else "")
            raise ValueError(f"n_clusters={k} needs about {needed / 2**30:.3g} GiB for the centres"
                             f"{' and the Elkan bounds' if fix else ''} on {n_samples} x {n_features}"
                             f" data, more than this machine's {memory / 2**30:.3g} GiB of memory: "
                             f"lower n_clusters{fix}.")

    def _check_params(self, X):
        self._check_size_params(X.shape, np.dtype(getattr(X, "dtype", np.float64)).itemsize)
        if isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real) or not self.tol >= 0:
            raise ValueError(f"tol must be a non-negative float, got {self.tol!r}.")
        if self.algorithm not in ("lloyd", "elkan"):
            raise ValueError(f"algorithm={self.algorithm!r} is not supported; use 'lloyd' or 'elkan'.")
        init_is_array = not isinstance(self.init, str) and not callable(self.init)
        if isinstance(self.init, str) and self.init not in ("k-means++", "random"):
            raise ValueError(f"init={self.init!r} is not supported; use 'k-means++', 'random', "
                             "a callable or an array of shape (n_clusters, n_features).")
        if self.n_init == "auto":
            random_like = (isinstance(self.init, str) and self.init == "random") or callable(self.init)
            n_init = 10 if random_like else 1
        else:
            n_init = self.n_init
        if init_is_array and n_init != 1:
            warnings.warn(f"Explicit initial center position passed: performing only one init "
                          f"in KMeans instead of n_init={n_init}.", RuntimeWarning, stacklevel=3)
            n_init = 1
        algorithm = self.algorithm
        if algorithm == "elkan" and self.n_clusters == 1:
            warnings.warn("algorithm='elkan' doesn't make sense for a single cluster. Using "
                          "'lloyd' instead.", RuntimeWarning, stacklevel=3)
            algorithm = "lloyd"
        return n_init, algorithm, init_is_array

    def _check_init_array(self, X):
        try:
            init = check_array(self.init, dtype=X.dtype, copy=True, order="C")
        except ValueError as exc:
            raise ValueError(f"init: {exc}") from exc
        self._check_centers_shape(init.shape, X.shape[1], "init must be an array")
        return init

    def _check_centers_shape(self, shape, n_features, what):
        """ValueError (scikit-learn's wording, then the fix) unless shape is (n_clusters, n_features)."""
        expected = f"{what} of shape (n_clusters, n_features) = ({self.n_clusters}, {n_features})."
        if shape[0] != self.n_clusters:
            raise ValueError(f"The shape of the initial centers {shape} does not match the number "
                             f"of clusters {self.n_clusters}: {expected}")
        if shape[1] != n_features:
            raise ValueError(f"The shape of the initial centers {shape} does not match the number "
                             f"of features of the data {n_features}: {expected}")

    def _kernels(self):
        kernels, backends = {}, set()
        for name in _KERNELS:
            kernels[name], backend = resolve_kernel(name, self.backend)
            backends.add(backend)
        return kernels, "+".join(sorted(backends))

    def _sparse_kernels(self, X):
        """The CSR kernels, behind the names and signatures of the dense ones (:class:`_CSRData`)."""
        kernels, backends = {}, set()
        for name in _SPARSE_KERNELS:
            kernels[name], backend = resolve_kernel(name, self.backend)
            backends.add(backend)
        return _CSRData(X, kernels), "+".join(sorted(backends))

    def _n_threads(self, X):
        """Threads for the kernels: ``n_jobs``, but at least four row blocks per thread.

        Small inputs run on one thread (starting threads would cost more than
        the work). On a machine whose load exceeds its cores
        (``kernels._threads.machine_shared``) every fit runs on one thread: a
        pass is one OpenMP region whose threads spin at its end, and a thread
        that the busy machine deschedules holds the other one spinning for a
        time slice. Measured there (1 against 2 threads, wall, median, 16
        features, k = 16, 10 iterations, load 8 on 2 cores): 10,000 rows 7-12
        against 18-169 ms, 50,000 rows 28 against 280 ms, 200,000 rows 126
        against 309-360 ms, 1,000,000 rows 621-639 against 860-1,094 ms, and
        50,000 rows with k = 1024 721-774 against 912-1,012 ms. The results do
        not depend on the thread count either way.
        """
        if machine_shared():
            return 1
        n_blocks = -(-X.shape[0] // BLOCK_ROWS)
        return max(1, min(effective_n_threads(self.n_jobs), n_blocks // 4))

    def _check_test_data(self, X):
        check_sparse_structure(X, "X")  # before SciPy or a kernel reads an index out of range
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32], order="C",
                             accept_sparse="csr", accept_large_sparse=False)

    # ---------------------------------------------------------------- one run
    def _init_centroids(self, X, init, random_state, sample_weight):
        if isinstance(init, str) and init == "k-means++":
            return kmeans_plusplus(X, self.n_clusters, sample_weight=sample_weight,
                                   random_state=random_state)[0]
        if isinstance(init, str) and init == "random":
            seeds = random_state.choice(X.shape[0], size=self.n_clusters, replace=False,
                                        p=sample_weight / sample_weight.sum())
            return _dense_rows(X, seeds)
        if callable(init):
            centers = check_array(init(X, self.n_clusters, random_state=random_state),
                                  dtype=X.dtype, copy=False, order="C")
            self._check_centers_shape(centers.shape, X.shape[1], "a callable init must return centres")
            return centers
        return init

    @staticmethod
    def _m_step(X, sample_weight, centers_old, labels, state):
        """New centres from the state's float64 sums, with scikit-learn's empty-cluster rule."""
        def farthest(m):
            # The m rows farthest from their centres (for the clusters left empty).
            if isinstance(X, _CSRData):
                distances = X.sq_distances(centers_old, labels)
            else:
                distances = ((X - centers_old[labels]) ** 2).sum(axis=1)
            far = np.argpartition(distances, -m)[:-m - 1:-1]
            return (distances[far], X[far].astype(np.float64), sample_weight[far].astype(np.float64),
                    labels[far])

        state.relocate_empty(farthest)
        return state.centers(centers_old, X.dtype)

    def _run_lloyd(self, X, sample_weight, centers, tol, kernels, n_threads, progress):
        n_clusters = centers.shape[0]
        lloyd = kernels["kmeans_lloyd_iter"]
        # Labels and per-stripe sums live across passes: each pass moves only the changed rows.
        state = LloydState(X.shape[0], n_clusters, X.shape[1],
                           X.lloyd_state(n_clusters) if isinstance(X, _CSRData) else None)
        copy = {}
        if not isinstance(X, _CSRData) and rank_copy_pays(X.shape[1], n_clusters, X.dtype):
            # Many float64 features: the kernels rank on a float32 copy made once (half the
            # bytes to read per pass, no per-pass conversion); see kmeans_numpy.rank_path.
            copy = {"X_rank": X.astype(np.float32), "x_sq_norms": np.einsum("ij,ij->i", X, X)}
        strict = False
        for i in range(self.max_iter):
            state.lloyd_pass(lloyd, X, sample_weight, centers, self.verbose, n_threads, **copy)
            centers_new = self._m_step(X, sample_weight, centers, state.labels, state)
            shift = _euclidean_rows(centers_new, centers)
            centers = centers_new
            progress(state.inertia)
            if state.n_changed == 0:
                strict = True
                break
            if (shift ** 2).sum() <= tol:
                break
        if strict:
            inertia = np.empty(1)
            kernels["kmeans_inertia"](X, sample_weight, centers, state.labels, inertia, n_threads)
            return state.labels, inertia[0], centers, i + 1
        # Final E-step, so that the labels are those of the returned centres.
        state.lloyd_pass(lloyd, X, sample_weight, centers, True, n_threads, **copy)
        return state.labels, state.inertia, centers, i + 1

    @staticmethod
    def _half_distances(centers):
        """h (k x k) = ||c_j - c_j'|| / 2 and s_j = min_{j' != j} h_jj' (float64 math, centres' dtype)."""
        c = centers.astype(np.float64)
        squared = np.empty((c.shape[0], c.shape[0]))
        step = max(1, (1 << 23) // max(1, c.size))  # centres per (step x k x d) temporary of 64 MB
        for start in range(0, c.shape[0], step):
            diff = c[start:start + step, None, :] - c[None, :, :]
            squared[start:start + step] = np.einsum("ijl,ijl->ij", diff, diff)
        half = (np.sqrt(squared) / 2).astype(centers.dtype)
        np.fill_diagonal(half, 0)
        next_center = np.partition(half, kth=1, axis=0)[1] if centers.shape[0] > 1 else half[0]
        return np.ascontiguousarray(half), np.ascontiguousarray(next_center)

    def _run_elkan(self, X, sample_weight, centers, tol, kernels, n_threads, progress):
        n_samples, n_clusters = X.shape[0], centers.shape[0]
        elkan = kernels["kmeans_elkan_iter"]
        labels = np.empty(n_samples, dtype=np.intp)
        labels_old = np.full(n_samples, -1, dtype=np.intp)
        upper = np.zeros(n_samples, dtype=X.dtype)
        lower = np.zeros((n_samples, n_clusters), dtype=X.dtype)
        inertia = np.empty(1)
        shift = np.zeros(n_clusters, dtype=X.dtype)
        half, next_center = self._half_distances(centers)
        # The state's per-stripe sums kept across passes with their labels: each pass moves only
        # the changed rows (the kernels' last argument ``state``, passed by position as every
        # kernel argument; the CSR kernels keep no per-stripe sums).
        sparse = isinstance(X, _CSRData)
        state = LloydState(n_samples, n_clusters, X.shape[1], X.lloyd_state(n_clusters) if sparse else None)
        buffers = () if sparse else (state.buffers,)
        kernels["kmeans_elkan_init"](X, centers, half, labels, upper, lower, n_threads)
        strict = False
        for i in range(self.max_iter):
            elkan(X, sample_weight, centers, half, next_center, shift, labels, upper, lower,
                  state.sums, state.weights, n_threads, *buffers)
            centers_new = self._m_step(X, sample_weight, centers, labels, state)
            shift = _euclidean_rows(centers_new, centers)
            half, next_center = self._half_distances(centers_new)
            centers = centers_new
            if self.verbose:
                kernels["kmeans_inertia"](X, sample_weight, centers, labels, inertia, n_threads)
                progress(inertia[0])
            if np.array_equal(labels, labels_old):
                strict = True
                break
            if (shift ** 2).sum() <= tol:
                break
            labels_old[:] = labels
        if not strict:
            # Final E-step (the bounds are shifted by the last move first).
            elkan(X, sample_weight, centers, half, next_center, shift, labels, upper, lower,
                  state.sums, state.weights, n_threads, *buffers)
        kernels["kmeans_inertia"](X, sample_weight, centers, labels, inertia, n_threads)
        return labels, inertia[0], centers, i + 1

    # -------------------------------------------------------------------- API
    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float32 data stays float32; anything else becomes float64. Sparse
            input is converted to CSR and never densified (nor centred, as in
            scikit-learn); the sparse kernels (``kmeans_sparse_*``) run on it.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; None weights every sample 1. Not used by an
            array or callable ``init``.

        Returns
        -------
        self : KMeans
        """
        # Size parameters first: nothing is converted or allocated for a fit that cannot run.
        self._check_size_params(_shape_before_conversion(X), 8)
        check_sparse_structure(X, "X")
        X = validate_data(self, X, dtype=[np.float64, np.float32], order="C", accept_sparse="csr",
                          accept_large_sparse=False)
        n_init, algorithm, init_is_array = self._check_params(X)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight sums to zero; give at least one sample a positive weight.")
        random_state = check_random_state(self.random_state)
        kernels, self.backend_ = self._kernels()
        n_threads = self._n_threads(X)
        init = self._check_init_array(X) if init_is_array else self.init
        # Data near 1e300 or 1e-300: cluster X / 2**e (exact), scale the answer back at the end.
        exponent = _scale_exponent(_max_abs(X), X.dtype)
        if exponent:
            X = _ldexp(X, -exponent)
            if init_is_array:
                init = _ldexp(init, -exponent)
            elif callable(init):
                init = _scaled_callable(init, exponent)

        if sp.issparse(X):
            # As scikit-learn: CSR data is not centred (that would densify it).
            X_mean = np.zeros(X.shape[1], dtype=X.dtype)
            tol = np.mean(mean_variance_axis(X, axis=0)[1]) * self.tol if self.tol != 0 else 0
            data, self.backend_ = self._sparse_kernels(X)
            kernels = data.as_kernels()
        else:
            # Tolerance relative to the data's spread, then centre the data (both as
            # scikit-learn, with NumPy's exact arithmetic: the centred numbers decide the ties).
            X_mean = np.empty(X.shape[1], dtype=X.dtype)
            variances = np.empty(X.shape[1], dtype=X.dtype)
            centred = np.empty_like(X) if self.copy_x else X  # else in place, added back below
            kernels["kmeans_center"](X, self.tol != 0, centred, X_mean, variances, n_threads)
            tol = np.mean(variances) * self.tol if self.tol != 0 else 0
            X = data = centred
            if init_is_array:
                init -= X_mean

        run = self._run_elkan if algorithm == "elkan" else self._run_lloyd
        best = None
        for _ in range(n_init):
            centers = self._init_centroids(X, init, random_state, sample_weight)
            # The compiled kernels hold BLAS to one thread at each call; holding it here
            # once makes those calls free (the NumPy reference keeps BLAS's threads).
            hold_blas = blas_single_threaded() if self.backend_ != "numpy" else nullcontext()
            with _Progress(self.verbose, self.max_iter) as progress, hold_blas:
                labels, inertia, centers, n_iter = run(data, sample_weight, centers, tol, kernels,
                                                       n_threads, progress)
            if best is None or (inertia < best[1]
                                and not _same_clustering(labels, best[0], self.n_clusters)):
                best = (labels, inertia, centers, n_iter)
        labels, inertia, centers, n_iter = best

        if not self.copy_x and not sp.issparse(X):
            X += X_mean
        centers += X_mean
        if exponent:
            centers = _ldexp(centers, exponent)
            inertia = _scaled_inertia(inertia, exponent)
        distinct = np.count_nonzero(np.bincount(labels, minlength=self.n_clusters))
        if distinct < self.n_clusters:
            warnings.warn(f"Number of distinct clusters ({distinct}) found smaller than "
                          f"n_clusters ({self.n_clusters}). Possibly due to duplicate points in X.",
                          ConvergenceWarning, stacklevel=2)
        self.cluster_centers_ = centers
        self._n_features_out = centers.shape[0]
        self.labels_ = labels.astype(np.int32)
        self.inertia_ = float(inertia)
        self.n_iter_ = n_iter
        return self

    def _test_exponent(self, X, dtype=None):
        """:func:`_scale_exponent` of X and the centres together (0: no rescaling needed)."""
        dtype = X.dtype if dtype is None else np.dtype(dtype)
        max_abs = max(_max_abs(X), _max_abs(self.cluster_centers_))
        return _scale_exponent(max_abs, dtype)

    def _labels_inertia(self, X, sample_weight, with_inertia=True, centers=None):
        centers = self.cluster_centers_ if centers is None else centers
        if sp.issparse(X):
            data = self._sparse_kernels(X)[0]
            kernel, buffers = data.kmeans_lloyd_iter, data.lloyd_state(centers.shape[0])
        else:
            kernel, buffers = resolve_kernel("kmeans_lloyd_iter", self.backend)[0], None
        state = LloydState(X.shape[0], *centers.shape, buffers).lloyd_pass(
            kernel, X, sample_weight, centers, with_inertia, self._n_threads(X))
        return state.labels.astype(np.int32), state.inertia

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit and return ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X):
        """Index of the nearest centre of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        check_is_fitted(self)
        X = self._check_test_data(X)
        # Rows in blocks: the output is the only array the size of X's rows (the kernel's
        # work arrays and unit weights are per block), so predict needs less memory than
        # scikit-learn's. Each row's label depends on that row alone.
        # Data or centres near 1e300 or 1e-300: X / 2**e against the centres / 2**e, the same labels.
        exponent = self._test_exponent(X)
        centers = _ldexp(self.cluster_centers_, -exponent) if exponent else self.cluster_centers_
        labels = np.empty(X.shape[0], dtype=np.int32)
        for start in range(0, X.shape[0], PREDICT_BLOCK_ROWS):
            block = X[start:start + PREDICT_BLOCK_ROWS]
            if exponent:
                block = _ldexp(block, -exponent)
            labels[start:start + block.shape[0]] = self._labels_inertia(
                block, np.ones(block.shape[0], dtype=X.dtype), with_inertia=False, centers=centers)[0]
        return labels

    def transform(self, X):
        """Distances from each sample to each centre.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
        """
        check_is_fitted(self)
        return self._transform(self._check_test_data(X))

    def _transform(self, X):
        """scikit-learn's ``euclidean_distances(X, centres)``: -2 x.c, + ||x||^2, + ||c||^2, in that order.

        In float64, one chunk of rows of X at a time (dense or CSR), so that a
        centre's distance to itself comes out 0 as in scikit-learn. Data or
        centres near 1e300 or 1e-300: the distances of X / 2**e to the centres
        / 2**e, times 2**e.
        """
        dtype, same = X.dtype, X is self.cluster_centers_
        centers = self.cluster_centers_
        exponent = self._test_exponent(X, np.float64)
        if exponent:
            X, centers = _ldexp(X, -exponent), _ldexp(centers, -exponent)
        centers = centers.astype(np.float64)
        centers_sq = np.einsum("ij,ij->i", centers, centers)
        x_sq_norms = _row_sq_norms(X)
        squared = np.empty((X.shape[0], centers.shape[0]))
        for start in range(0, X.shape[0], _DISTANCE_CHUNK):
            rows = slice(start, start + _DISTANCE_CHUNK)
            block = np.asarray(X[rows].astype(np.float64, copy=False) @ centers.T)
            block *= -2
            block += x_sq_norms[rows, None]
            block += centers_sq[None, :]
            squared[rows] = block
        np.maximum(squared, 0, out=squared)
        if same:
            np.fill_diagonal(squared, 0)  # as scikit-learn's euclidean_distances(X, X)
        distances = np.sqrt(squared, out=squared)
        if exponent:
            distances = np.ldexp(distances, exponent, out=distances)
        return distances.astype(dtype)

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return the distances from each sample to each centre.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
        """
        self.fit(X, sample_weight=sample_weight)
        return self._transform(self._check_test_data(X))

    def score(self, X, y=None, sample_weight=None):
        """Minus the inertia of X with respect to the fitted centres.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        X = self._check_test_data(X)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        exponent = self._test_exponent(X)
        if not exponent:
            return -self._labels_inertia(X, sample_weight)[1]
        inertia = self._labels_inertia(_ldexp(X, -exponent), sample_weight,
                                       centers=_ldexp(self.cluster_centers_, -exponent))[1]
        return -_scaled_inertia(inertia, exponent)
