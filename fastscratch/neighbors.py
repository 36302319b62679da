r"""k-nearest-neighbour classification and regression by brute force.

:class:`KNeighborsClassifier` and :class:`KNeighborsRegressor` follow
scikit-learn's estimators of the same names (parameters, attributes,
``kneighbors``, ``kneighbors_graph``, multi-output targets, the zero-distance
rule of ``weights="distance"``) and always search by brute force with the
top-k distance kernels of :mod:`fastscratch.kernels`:

- ``sqeuclidean_topk`` for "euclidean", "sqeuclidean" and "minkowski" with p=2;
- ``cosine_topk`` for "cosine";
- ``manhattan_topk`` for "manhattan" and "minkowski" with p=1;
- ``minkowski_topk`` for "minkowski" with any other p.

Queries are processed in batches of at most ``_batch_size(k)`` rows, and every
kernel works in cache-sized blocks, so ``predict`` and ``predict_proba`` on
1M queries against 1M training points run in memory bounded by the training
data, the output and a few MB per batch: no queries x train matrix is ever
built (``kneighbors`` itself returns the m x k neighbour arrays).
"""

import numbers

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from ._backend import effective_n_threads, resolve_backend, resolve_kernel

METRICS = ("euclidean", "sqeuclidean", "manhattan", "cosine", "minkowski")
_METRIC_ALIASES = {"l2": "euclidean", "l1": "manhattan", "cityblock": "manhattan"}
WEIGHTS = ("uniform", "distance")

# Query rows per batch: the batch's neighbour arrays (k distances, k indices,
# k labels) stay near 2 MB whatever the number of queries.
_BATCH_BYTES = 1 << 21
_MIN_BATCH, _MAX_BATCH = 1024, 65536
# Queries per block of the kernels' thread loop (distances_numba.QUERY_BLOCK).
_THREAD_BLOCK = 256
# Show a progress bar when a search does more distance terms than this (minutes of work).
_PROGRESS_MIN_WORK = 1e12


def _batch_size(n_neighbors):
    return int(np.clip(_BATCH_BYTES // (24 * max(n_neighbors, 1)), _MIN_BATCH, _MAX_BATCH))


def _get_weights(distances, weights):
    """Neighbour weights from float64 distances (scikit-learn's rule).

    ``"uniform"`` gives None (all ones). ``"distance"`` gives ``1 / d``,
    except in a row that holds a zero distance: there the zero-distance
    neighbours get weight 1 and the others 0. A callable is applied to the
    distances of each batch of queries.
    """
    if weights == "uniform":
        return None
    if weights == "distance":
        with np.errstate(divide="ignore"):
            inverse = 1.0 / distances
        infinite = np.isinf(inverse)
        rows_with_zero = infinite.any(axis=1)
        inverse[rows_with_zero] = infinite[rows_with_zero]
        return inverse
    return np.asarray(weights(distances))


class _KNeighborsBase(MultiOutputMixin, BaseEstimator):
    """Parameters, fit and neighbour search shared by the two estimators."""

    def __init__(self, n_neighbors=5, *, weights="uniform", metric="minkowski", p=2, n_jobs=None,
                 backend="auto"):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric = metric
        self.p = p
        self.n_jobs = n_jobs
        self.backend = backend

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        """Validate the hyper-parameters; return ``(effective_metric, p)``."""
        if isinstance(self.n_neighbors, bool) or not isinstance(self.n_neighbors, numbers.Integral):
            raise TypeError(f"n_neighbors must be an integer >= 1, got {self.n_neighbors!r}.")
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors={self.n_neighbors} must be >= 1; pass a positive integer.")
        if not (callable(self.weights) or (isinstance(self.weights, str) and self.weights in WEIGHTS)):
            raise ValueError(
                f"weights={self.weights!r} is not supported; use 'uniform', 'distance' or a callable "
                "that maps an array of distances to weights of the same shape."
            )
        metric = _METRIC_ALIASES.get(self.metric, self.metric) if isinstance(self.metric, str) else None
        if metric not in METRICS:
            raise ValueError(f"metric={self.metric!r} is not supported; use one of {METRICS}.")
        p = None
        if metric == "minkowski":
            if (isinstance(self.p, bool) or not isinstance(self.p, numbers.Real)
                    or not np.isfinite(self.p) or self.p <= 0):
                raise ValueError(f"p={self.p!r} must be a finite number > 0 for metric='minkowski'.")
            p = float(self.p)
            if p == 2.0:
                metric, p = "euclidean", None
            elif p == 1.0:
                metric, p = "manhattan", None
        resolve_backend("sqeuclidean_topk", self.backend)  # raises on an unknown backend name
        effective_n_threads(self.n_jobs)  # raises on a bad n_jobs
        return metric, p

    # --------------------------------------------------------------------- fit
    def _fit_search_structure(self, X, metric, p):
        """Store the training data and what the kernels need to search it."""
        self.effective_metric_ = metric
        self.effective_metric_params_ = {} if p is None else {"p": p}
        self._fit_X = X
        self.n_samples_fit_ = X.shape[0]
        # The euclidean kernel ranks with |q|^2 - 2 q.x + |x|^2 in the input
        # dtype, which loses every digit when the data sit far from the origin
        # compared with their spread (float32 data around 1e4, say). Distances
        # are translation invariant, so such data are searched after
        # subtracting their mean (a second copy of X, in its dtype); data
        # around the origin (standardised features) are searched as they are.
        self._shift = None
        self._search_X = X
        if metric in ("euclidean", "sqeuclidean") and X.shape[0] > 1:
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

    # ------------------------------------------------------------------ search
    def _kernel_call(self):
        name = {"euclidean": "sqeuclidean_topk", "sqeuclidean": "sqeuclidean_topk",
                "cosine": "cosine_topk", "manhattan": "manhattan_topk",
                "minkowski": "minkowski_topk"}[self.effective_metric_]
        kernel, _ = resolve_kernel(name, self.backend)
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
                else:
                    reduced = (np.abs(diff) ** self.effective_metric_params_["p"]).sum(axis=-1)
            out[start:start + step] = reduced
        return out

    def _search(self, queries, n_neighbors, return_distance, kernel, extra, n_threads):
        """Neighbours of one batch of (validated) queries, ``(float64 distances or None, indices)``."""
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

    def _check_n_neighbors(self, n_neighbors, query_is_train, n_queries):
        if n_neighbors is None:
            n_neighbors = self.n_neighbors
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral):
            raise TypeError(f"n_neighbors must be an integer >= 1, got {n_neighbors!r}.")
        if n_neighbors < 1:
            raise ValueError(f"n_neighbors={n_neighbors} must be >= 1; pass a positive integer.")
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
        queries = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], order="C")
        # The kernels take one dtype: queries follow the training data's.
        return np.ascontiguousarray(queries, dtype=self._fit_X.dtype), False

    def _kneighbors_batches(self, X, n_neighbors=None, return_distance=True):
        """Yield ``(start, stop, n_queries, distances, indices)`` over batches of queries.

        ``X=None`` queries the training points, each excluded from its own
        neighbours as in scikit-learn (if duplicates push a point out of its
        own k + 1 nearest, the last neighbour is dropped instead).
        """
        queries, query_is_train = self._validate_queries(X)
        n_queries = queries.shape[0]
        n_neighbors = self._check_n_neighbors(n_neighbors, query_is_train, n_queries)
        n_searched = n_neighbors + 1 if query_is_train else n_neighbors
        kernel, extra = self._kernel_call()
        batch = _batch_size(n_searched)
        # The kernels share out blocks of _THREAD_BLOCK queries: more threads would only wait.
        n_threads = max(1, min(effective_n_threads(self.n_jobs), -(-min(batch, n_queries) // _THREAD_BLOCK)))
        work = float(n_queries) * self.n_samples_fit_ * queries.shape[1]
        with tqdm(total=n_queries, unit="queries", desc=type(self).__name__, leave=False,
                  disable=work < _PROGRESS_MIN_WORK) as progress:
            for start in range(0, n_queries, batch):
                stop = min(start + batch, n_queries)
                distances, indices = self._search(queries[start:stop], n_searched, return_distance,
                                                  kernel, extra, n_threads)
                if query_is_train:
                    not_self = indices != np.arange(start, stop)[:, None]
                    self_missing = not_self.all(axis=1)
                    not_self[self_missing, -1] = False
                    indices = indices[not_self].reshape(stop - start, n_neighbors)
                    if distances is not None:
                        distances = distances[not_self].reshape(stop - start, n_neighbors)
                yield start, stop, n_queries, distances, indices
                progress.update(stop - start)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The k nearest training points of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            Queries. None means the training points, each excluded from its
            own neighbours.
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
        distance_parts, index_parts = [], []
        for _, _, _, distances, indices in self._kneighbors_batches(X, n_neighbors, return_distance):
            index_parts.append(indices)
            distance_parts.append(distances)
        indices = np.concatenate(index_parts)
        if return_distance:
            return np.concatenate(distance_parts), indices
        return indices

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Sparse graph of the k nearest neighbours of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
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
        return csr_matrix((data, indices.ravel(), indptr), shape=(n_queries, self.n_samples_fit_))


_PARAMETERS_DOC = """
    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours k.
    weights : {"uniform", "distance"} or callable, default="uniform"
        "uniform": every neighbour counts the same. "distance": weight
        :math:`1/d`; a query with neighbours at distance zero gives those
        weight 1 and the others 0 (scikit-learn's rule). A callable maps an
        array of distances (float64, one batch of queries at a time) to weights
        of the same shape.
    metric : {"minkowski", "euclidean", "sqeuclidean", "manhattan", "cosine"}, default="minkowski"
        Distance. "minkowski" uses ``p`` (p=2 is "euclidean", p=1 is
        "manhattan"). "l2", "l1" and "cityblock" are accepted as aliases.
    p : float, default=2
        Exponent of the Minkowski distance, finite and > 0.
    n_jobs : int, default=None
        Threads of the search (None: the global setting, else every core).
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel implementation; "auto" takes the fastest installed one.
"""

_NOTES_DOC = r"""
    The search is exact brute force. For queries :math:`q_i` and training
    points :math:`x_j` the kernels rank, per query, with the reduced distance

    .. math::

        R_{ij} = \lVert q_i \rVert^2 - 2\, q_i \cdot x_j + \lVert x_j \rVert^2
        \quad\text{(euclidean: one GEMM per block)}, \qquad
        R_{ij} = \sum_l \lvert q_{il} - x_{jl} \rvert^p
        \quad\text{(Minkowski)},

    or :math:`1 - q_i \cdot x_j / (\lVert q_i\rVert \lVert x_j\rVert)`
    (cosine), keep ``candidate_count(k, n)`` candidates in a max-heap, and
    re-rank them with the exact float64 distance, ties to the smaller index.
    Data far from the origin are centred at fit time for the euclidean
    ranking (distances are translation invariant). Returned distances are
    float64: :math:`d = \sqrt{R}` (euclidean), :math:`R^{1/p}` (Minkowski).
    The neighbour weights of query :math:`i` are :math:`w_{ij} = 1` (uniform)
    or :math:`w_{ij} = 1 / d_{ij}` (distance).
"""


class KNeighborsClassifier(ClassifierMixin, _KNeighborsBase):
    __doc__ = (
        """Classifier voting among the k nearest neighbours (exact brute force).

    A drop-in for :class:`sklearn.neighbors.KNeighborsClassifier` with
    ``algorithm="brute"``: same parameters (less ``algorithm``,
    ``leaf_size`` and ``metric_params``), plus ``backend``.
"""
        + _PARAMETERS_DOC
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or list of such arrays
        Class labels (one array per output for a 2-D target).
    effective_metric_ : str
        The metric used ("minkowski" with p=2 becomes "euclidean", p=1 "manhattan").
    effective_metric_params_ : dict
        ``{"p": p}`` for a general Minkowski metric, else empty.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    n_samples_fit_ : int
        Number of training points.
    outputs_2d_ : bool
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
        X : array-like of shape (n_samples, n_features)
            Training points (float32 stays float32, anything else becomes float64).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (numbers or strings).

        Returns
        -------
        self : KNeighborsClassifier
        """
        metric, p = self._check_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], order="C", multi_output=True)
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
        weights = _get_weights(distances, self.weights)
        if weights is not None and np.any(np.all(weights == 0, axis=1)):
            raise ValueError("All neighbours of some sample get zero weight; change the callable "
                             "passed as weights so that every row has a positive weight.")
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
        need_distances = self.weights != "uniform"
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
        need_distances = self.weights != "uniform"
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

    A drop-in for :class:`sklearn.neighbors.KNeighborsRegressor` with
    ``algorithm="brute"``: same parameters (less ``algorithm``,
    ``leaf_size`` and ``metric_params``), plus ``backend``.
"""
        + _PARAMETERS_DOC
        + """
    Attributes
    ----------
    effective_metric_ : str
        The metric used ("minkowski" with p=2 becomes "euclidean", p=1 "manhattan").
    effective_metric_params_ : dict
        ``{"p": p}`` for a general Minkowski metric, else empty.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    n_samples_fit_ : int
        Number of training points.

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
        X : array-like of shape (n_samples, n_features)
            Training points (float32 stays float32, anything else becomes float64).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Numeric targets.

        Returns
        -------
        self : KNeighborsRegressor
        """
        metric, p = self._check_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], order="C", multi_output=True,
                             y_numeric=True)
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
        need_distances = self.weights != "uniform"
        out = None
        for start, stop, n_queries, distances, indices in self._kneighbors_batches(X, return_distance=need_distances):
            weights = _get_weights(distances, self.weights)
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
