r"""The same estimators on Dask, for data that outgrow one machine (extra ``[dask]``).

Every class here is a subclass of the in-memory estimator of the same name,
with the same parameters and fitted attributes. Given NumPy (or pandas) data
it behaves exactly as its parent; given a ``dask.array.Array`` or a
``dask.dataframe`` it runs on Dask, block by block, on whatever scheduler is
active (a ``dask.distributed.Client`` on a ``LocalCluster`` or on a real
cluster: no code change), and gives the same answer as the in-memory fit:

- prediction (:class:`ParallelPostFit`, dask-ml's wrapper, for *any* fitted
  fastscratch estimator, and the ``predict*`` / ``transform`` methods of the
  classes below): one task per block of rows, the model shipped once;
- naive Bayes (:class:`GaussianNB`, :class:`MultinomialNB`,
  :class:`BernoulliNB`, :class:`ComplementNB`, :class:`CategoricalNB`):
  per-block sufficient statistics merged by a tree reduction;
- :class:`KMeans`: Lloyd iterations as a map (our ``kmeans_lloyd_iter`` kernel on
  each block: labels, per-cluster weighted sums and weights, inertia) and a
  tree reduction; k-means|| initialisation (Bahmani et al., 2012);
- :class:`KNeighborsClassifier` / :class:`KNeighborsRegressor`: the training
  set stays partitioned on the workers; each partition answers with its local
  top-k, merged into the global top-k (ties by global index);
- :class:`XGBRegressor` / :class:`XGBClassifier`: data-parallel boosting, the
  workers' per-node histograms summed, each split chosen once and broadcast.

Kernel threads: Dask runs one task per worker thread, so each task runs our
kernels on one thread unless the estimator's ``n_jobs`` says otherwise.

Progress: use Dask's own diagnostics (the distributed dashboard, or
``dask.diagnostics.ProgressBar`` with the local schedulers).

Notes
-----
*Tree reduction.* Partial results :math:`r_1, \dots, r_B` of the blocks are
combined ``split_every`` at a time, :math:`\lceil \log_s B \rceil` levels,
so no task receives more than ``split_every`` partial results.

*Gaussian statistics* are merged with Chan, Golub and LeVeque's pairwise rule,
the one :meth:`fastscratch.GaussianNB.partial_fit` uses: for two parts
:math:`(n_a, \bar x_a, M_a)` and :math:`(n_b, \bar x_b, M_b)` with
:math:`M = n s^2` the sum of squared deviations,

.. math::

    n = n_a + n_b, \quad \bar x = \bar x_a + \frac{n_b}{n} (\bar x_b - \bar x_a), \quad
    M = M_a + M_b + \frac{n_a n_b}{n} (\bar x_b - \bar x_a)^2 ,

each part's :math:`(\bar x, M)` being computed in two passes over its block,
so no sum of squares ever cancels.

*k-means||* draws a first centre, then for ``init_max_iter`` rounds keeps
every sample independently with probability
:math:`\min(1, \ell\, w_i D(x_i)^2 / \phi)` (:math:`\ell` =
``oversampling_factor * n_clusters``, :math:`\phi = \sum_i w_i D(x_i)^2`,
:math:`D` the distance to the nearest candidate so far); the candidates,
weighted by the weight of the samples nearest to them, are then clustered
into ``n_clusters`` centres in memory by :class:`fastscratch.KMeans`
(k-means++).
"""

import numbers
import threading

import numpy as np

try:
    import dask
    import dask.array as da
    import dask.dataframe as dd
    from dask_ml.wrappers import ParallelPostFit as _DaskMLParallelPostFit
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "fastscratch.distributed needs Dask and dask-ml, which are not installed: "
        'pip install "fastscratch[dask]"'
    ) from exc

from sklearn.base import clone
from sklearn.utils import check_random_state

from . import boosting as _boosting
from . import cluster as _cluster
from . import naive_bayes as _nb
from . import neighbors as _neighbors
from ._backend import effective_n_threads, resolve_kernel
from .boosting.binning import BinMapper
from .boosting.grower import TreeGrower
from .boosting.loss import OBJECTIVES
from .boosting.predictor import Forest
from .kernels import _threads as _kernel_threads
from .kernels.kmeans_numpy import lloyd_state

__all__ = [
    "ParallelPostFit",
    "GaussianNB",
    "MultinomialNB",
    "BernoulliNB",
    "ComplementNB",
    "CategoricalNB",
    "KMeans",
    "KNeighborsClassifier",
    "KNeighborsRegressor",
]

SPLIT_EVERY = 8  # partial results per task of a tree reduction


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def is_dask_collection(X):
    """True for a Dask array, dataframe or series."""
    return dask.is_dask_collection(X)


def _as_dask_array(X, name, ndim=None):
    """A Dask array (rows in blocks, one block of columns) from a Dask array or frame.

    Returns ``(array, column_names or None)``.
    """
    columns = None
    if isinstance(X, (dd.DataFrame, dd.Series)):
        if isinstance(X, dd.DataFrame):
            columns = np.asarray(X.columns, dtype=object)
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(f"{name} must be a dask array or dataframe here, got {type(X).__name__}; "
                        "convert it with dask.array.from_array.")
    if np.isnan(X.shape[0]):
        X = X.compute_chunk_sizes()
    if ndim is not None and X.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, "
                         f"got shape {X.shape}.")
    if X.ndim == 2 and X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    return X, columns


def _aligned(X, *others):
    """``others`` (1-D Dask arrays, array-likes or None) chunked as the rows of ``X``."""
    out = []
    for other in others:
        if other is None:
            out.append(None)
            continue
        if isinstance(other, (dd.DataFrame, dd.Series)):
            other = other.to_dask_array(lengths=True)
        if not isinstance(other, da.Array):
            other = da.from_array(np.asarray(other), chunks=(X.chunks[0],))
        if other.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y or sample_weight has "
                             f"{other.shape[0]}; pass one value per row.")
        if other.ndim > 1 and other.numblocks[1] > 1:
            other = other.rechunk({1: -1})
        out.append(other.rechunk({0: X.chunks[0]}))
    return out


def _blocks(array):
    """The row blocks of a Dask array (1-D or one block of columns) as delayed objects."""
    if array is None:
        return None
    return list(array.to_delayed().ravel())


def _tree_reduce(parts, combine, split_every=SPLIT_EVERY):
    """Delayed tree reduction of delayed ``parts`` with ``combine(list) -> part``."""
    combine = dask.delayed(combine, pure=True)
    parts = list(parts)
    while len(parts) > 1:
        parts = [combine(parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


def _set_feature_names(estimator, columns, n_features):
    estimator.n_features_in_ = int(n_features)
    if columns is not None and all(isinstance(c, str) for c in columns):
        estimator.feature_names_in_ = columns
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


def _float_dtype(X):
    return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _task_threads(n_jobs):
    """Kernel threads inside one Dask task: 1 unless n_jobs says otherwise.

    Dask already runs one task per worker thread; more kernel threads per
    task would oversubscribe the cores.
    """
    return 1 if n_jobs is None else effective_n_threads(n_jobs)


def _classes_and_codes(y):
    """Sorted classes of a Dask ``y`` (computed) and the Dask array of their positions."""
    classes = np.unique(np.asarray(da.unique(y).compute()))
    codes = y.map_blocks(lambda block: np.searchsorted(classes, block).astype(np.intp),
                         dtype=np.intp)
    return classes, codes


# ---------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------


def _predict_log_proba(part, estimator):
    return estimator.predict_log_proba(part)


def _predict_joint_log_proba(part, estimator):
    return estimator.predict_joint_log_proba(part)


class ParallelPostFit(_DaskMLParallelPostFit):
    """dask-ml's ``ParallelPostFit`` for fastscratch estimators.

    Wraps a fitted (or to be fitted in memory) estimator; ``predict``,
    ``predict_proba``, ``transform`` and ``score`` on a Dask array or
    dataframe run one task per block of rows. ``predict_log_proba`` calls the
    estimator's own ``predict_log_proba`` block by block (normalised in log
    space) instead of dask-ml's ``log(predict_proba)``, which underflows.

    Parameters
    ----------
    estimator : estimator
        Any fastscratch (or scikit-learn) estimator.
    scoring : str or callable, default=None
    predict_meta, predict_proba_meta, transform_meta : array-like, default=None
        Empty arrays of the outputs' type and dtype (see dask-ml).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from fastscratch import GaussianNB
    >>> from fastscratch.distributed import ParallelPostFit
    >>> X = np.array([[-1.0, -1], [-2, -1], [1, 1], [2, 1]]); y = np.array([0, 0, 1, 1])
    >>> model = ParallelPostFit(GaussianNB()).fit(X, y)
    >>> model.predict(da.from_array(X, chunks=2)).compute()
    array([0, 0, 1, 1])
    """

    def predict_log_proba(self, X):
        self._check_method("predict_log_proba")
        X = self._check_array(X)
        if isinstance(X, da.Array):
            n_classes = len(self._postfit_estimator.classes_)
            return X.map_blocks(_predict_log_proba, estimator=self._postfit_estimator,
                                dtype=np.float64, chunks=(X.chunks[0], n_classes),
                                meta=np.empty((0, 0), dtype=np.float64))
        if isinstance(X, (dd.DataFrame, dd.Series)):
            return X.map_partitions(_predict_log_proba, estimator=self._postfit_estimator)
        return _predict_log_proba(X, self._postfit_estimator)


class _DaskPredictMixin:
    """``predict*`` / ``transform`` of a Dask collection through :class:`ParallelPostFit`.

    The blocks are predicted by the parent class's own methods (the mixin
    sees NumPy blocks there and steps aside).
    """

    def _postfit(self):
        return ParallelPostFit(estimator=self)

    def _dispatch(self, method, X, *args, **kwargs):
        if is_dask_collection(X):
            if args or kwargs:
                return getattr(ParallelPostFit(_BoundMethods(self, args, kwargs)), method)(X)
            return getattr(self._postfit(), method)(X)
        return getattr(super(), method)(X, *args, **kwargs)

    def predict(self, X, *args, **kwargs):
        return self._dispatch("predict", X, *args, **kwargs)

    def predict_proba(self, X, *args, **kwargs):
        return self._dispatch("predict_proba", X, *args, **kwargs)

    def predict_log_proba(self, X, *args, **kwargs):
        return self._dispatch("predict_log_proba", X, *args, **kwargs)


class _BoundMethods:
    """An estimator whose predict methods get extra arguments (``iteration_range=...``)."""

    def __init__(self, estimator, args, kwargs):
        self.estimator, self.args, self.kwargs = estimator, args, kwargs

    def __getattr__(self, name):
        if name.startswith("__") or name in ("estimator", "args", "kwargs"):
            raise AttributeError(name)  # pickling looks these up before __init__ state exists
        attribute = getattr(self.estimator, name)
        if name.startswith("predict"):
            return lambda X: attribute(X, *self.args, **self.kwargs)
        return attribute


# ---------------------------------------------------------------------------------------------
# Naive Bayes
# ---------------------------------------------------------------------------------------------


def _column_moments(X, weights=None):
    """``(n, mean, M)`` of the columns of a block in float64 (M = n * variance).

    The in-memory GaussianNB's own two-pass statistics (over row chunks, so a
    float32 block is never copied whole to float64).
    """
    n_features = X.shape[1]
    if X.shape[0] == 0 or (weights is not None and float(np.sum(weights)) == 0):
        return 0.0, np.zeros(n_features), np.zeros(n_features)
    n, mean, var = _nb._mean_var(X, weights)
    return n, mean, var * n


def _merge_moments(a, b):
    """Chan-Golub-LeVeque merge of two ``(n, mean, M)`` triples."""
    n_a, mean_a, m_a = a
    n_b, mean_b, m_b = b
    if n_b == 0:
        return a
    if n_a == 0:
        return b
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * (n_b / n), m_a + m_b + delta ** 2 * (n_a * n_b / n)


def _gaussian_block_stats(X, codes, weights, n_classes):
    """Per-block statistics: all rows' moments and each class's moments.

    The rows are stably sorted by class once, so each class's moments read a
    contiguous slice (its rows in their original order).
    """
    X = np.asarray(X)
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    X_sorted = X[order]
    w_sorted = None if weights is None else np.asarray(weights, dtype=np.float64)[order]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_classes))])
    per_class = [_column_moments(X_sorted[bounds[c]:bounds[c + 1]],
                                 None if w_sorted is None else w_sorted[bounds[c]:bounds[c + 1]])
                 for c in range(n_classes)]
    return _column_moments(X), per_class


def _gaussian_combine(parts):
    total, per_class = parts[0]
    for other_total, other_class in parts[1:]:
        total = _merge_moments(total, other_total)
        per_class = [_merge_moments(a, b) for a, b in zip(per_class, other_class)]
    return total, per_class


def _discrete_block_counts(estimator, classes, X, codes, weights):
    """The counts of one block: a fresh estimator's ``partial_fit`` on it."""
    part = clone(estimator)
    part.partial_fit(np.asarray(X), classes[codes], classes=classes, sample_weight=weights)
    out = {"class_count_": part.class_count_}
    if hasattr(part, "category_count_"):
        out["category_count_"] = part.category_count_
        out["n_categories_"] = part.n_categories_
    else:
        out["feature_count_"] = part.feature_count_
    return out


def _pad_add(a, b):
    if a.shape[1] < b.shape[1]:
        a, b = b, a
    out = a.copy()
    out[:, :b.shape[1]] += b
    return out


def _discrete_combine(parts):
    total = {key: (list(value) if isinstance(value, list) else value.copy())
             for key, value in parts[0].items()}
    for part in parts[1:]:
        total["class_count_"] = total["class_count_"] + part["class_count_"]
        if "category_count_" in total:
            total["category_count_"] = [_pad_add(a, b) for a, b in
                                        zip(total["category_count_"], part["category_count_"])]
            total["n_categories_"] = np.maximum(total["n_categories_"], part["n_categories_"])
        else:
            total["feature_count_"] = total["feature_count_"] + part["feature_count_"]
    return total


class _DaskNBMixin(_DaskPredictMixin):
    """``fit`` of a Dask collection from per-block statistics, else the parent's ``fit``."""

    def fit(self, X, y, sample_weight=None):
        """Fit to ``X, y``; Dask collections are reduced block by block.

        Parameters
        ----------
        X : array-like, dask array or dask dataframe of shape (n_samples, n_features)
        y : array-like or dask array of shape (n_samples,)
        sample_weight : array-like or dask array of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        if not is_dask_collection(X):
            return super().fit(X, y, sample_weight=sample_weight)
        self._validate_params()
        X, columns = _as_dask_array(X, "X", ndim=(2,))
        y, sample_weight = _aligned(X, y, sample_weight)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}; pass y.ravel().")
        if X.shape[0] == 0:
            raise ValueError("X has 0 samples; pass at least one row.")
        classes, codes = _classes_and_codes(y)
        self._fit_dask(X, codes, classes, sample_weight)
        _set_feature_names(self, columns, X.shape[1])
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        if is_dask_collection(X):
            raise TypeError("partial_fit takes in-memory batches; fit the whole Dask collection "
                            "with fit, or pass X.compute() batches to partial_fit.")
        return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)

    def predict_joint_log_proba(self, X):
        if is_dask_collection(X):
            X, _ = _as_dask_array(X, "X", ndim=(2,))
            return X.map_blocks(_predict_joint_log_proba, estimator=self, dtype=np.float64,
                                chunks=(X.chunks[0], len(self.classes_)),
                                meta=np.empty((0, 0), dtype=np.float64))
        return super().predict_joint_log_proba(X)


_NB_DOC = """{name} on Dask: :class:`fastscratch.{name}` whose ``fit`` also takes
    Dask arrays and dataframes{how}, and whose ``predict``, ``predict_proba``,
    ``predict_log_proba`` and ``predict_joint_log_proba`` return Dask arrays
    for Dask inputs (one task per block). Parameters and fitted attributes
    are those of :class:`fastscratch.{name}`; the fit equals the in-memory fit
    on the same data (to rounding: the blocks are summed in a different
    order).
"""


class GaussianNB(_DaskNBMixin, _nb.GaussianNB):
    __doc__ = _NB_DOC.format(
        name="GaussianNB",
        how=(" (per-block counts, means and sums of squared deviations of each class, "
             "merged with the pairwise rule of the module Notes in a tree reduction)"))

    def _fit_dask(self, X, codes, classes, sample_weight):
        dtype = _float_dtype(X)
        n_classes = len(classes)
        stats = [dask.delayed(_gaussian_block_stats, pure=True)(xb, cb, wb, n_classes)
                 for xb, cb, wb in zip(_blocks(X), _blocks(codes),
                                       _blocks(sample_weight) or [None] * X.numblocks[0])]
        (n, _, m_all), per_class = _tree_reduce(stats, _gaussian_combine).compute()
        self.classes_ = classes
        self.epsilon_ = dtype.type(self.var_smoothing * np.max(m_all / n))
        self.theta_ = np.zeros((n_classes, X.shape[1]), dtype=dtype)
        self.var_ = np.zeros((n_classes, X.shape[1]), dtype=dtype)
        self.class_count_ = np.zeros(n_classes, dtype=dtype)
        for c, (n_c, mean_c, m_c) in enumerate(per_class):
            self.class_count_[c] = n_c
            if n_c > 0:
                self.theta_[c], self.var_[c] = mean_c, m_c / n_c
        self.var_ += self.epsilon_
        if self.priors is not None:
            # The parent's checks (count, sum, sign), on a one-row batch.
            probe = _nb.GaussianNB(priors=self.priors)
            probe.partial_fit(np.zeros((1, 1)), classes[:1], classes=classes)
            self.class_prior_ = np.asarray(self.priors, dtype=dtype)
        else:
            self.class_prior_ = self.class_count_ / self.class_count_.sum()


class _DaskDiscreteNBMixin(_DaskNBMixin):
    def _fit_dask(self, X, codes, classes, sample_weight):
        base = next(c for c in type(self).__mro__ if c.__module__ == _nb.__name__)
        template = base(**self.get_params())
        counts = [dask.delayed(_discrete_block_counts, pure=True)(template, classes, xb, cb, wb)
                  for xb, cb, wb in zip(_blocks(X), _blocks(codes),
                                        _blocks(sample_weight) or [None] * X.numblocks[0])]
        total = _tree_reduce(counts, _discrete_combine).compute()
        self.classes_ = classes
        self.n_features_in_ = int(X.shape[1])
        self._init_counters(len(classes), X.shape[1])
        for key, value in total.items():
            setattr(self, key, value)
        if isinstance(self, _nb.ComplementNB):
            self.feature_all_ = self.feature_count_.sum(axis=0)
        self._update_feature_log_prob(self._check_alpha())
        self._update_class_log_prior()


_DISCRETE_HOW = " (per-block counts of a ``partial_fit`` on each block, summed in a tree reduction)"


class MultinomialNB(_DaskDiscreteNBMixin, _nb.MultinomialNB):
    __doc__ = _NB_DOC.format(name="MultinomialNB", how=_DISCRETE_HOW)


class BernoulliNB(_DaskDiscreteNBMixin, _nb.BernoulliNB):
    __doc__ = _NB_DOC.format(name="BernoulliNB", how=_DISCRETE_HOW)


class ComplementNB(_DaskDiscreteNBMixin, _nb.ComplementNB):
    __doc__ = _NB_DOC.format(name="ComplementNB", how=_DISCRETE_HOW)


class CategoricalNB(_DaskDiscreteNBMixin, _nb.CategoricalNB):
    __doc__ = _NB_DOC.format(
        name="CategoricalNB",
        how=(" (per-block category tables, widened to the largest category seen and summed "
             "in a tree reduction)"))

    def _fit_dask(self, X, codes, classes, sample_weight):
        super()._fit_dask(X, codes, classes, sample_weight)
        # n_categories_ from the whole data and min_categories, as one in-memory fit.
        if self.min_categories is not None:
            self.n_categories_ = np.maximum(self.n_categories_,
                                            np.asarray(self.min_categories, dtype=np.int64))
        self.n_categories_ = np.asarray(self.n_categories_, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# k-means
# ---------------------------------------------------------------------------------------------


def _center_block(X, mean, dtype):
    """``X - mean`` in ``dtype`` (the in-memory fit's ``X -= X.mean(axis=0)``)."""
    out = np.array(X, dtype=dtype, order="C")
    out -= mean
    return out


def _moments_block(X):
    return _column_moments(X)


def _moments_combine(parts):
    total = parts[0]
    for part in parts[1:]:
        total = _merge_moments(total, part)
    return total


def _sum_combine(parts):
    total = parts[0]
    for part in parts[1:]:
        total = tuple(a + b for a, b in zip(total, part))
    return total


_CONTROLLER_LOCK = threading.Lock()


def _thread_safe_kernels():
    """Create the process's threadpoolctl controller once, under a lock.

    The compiled kernels limit BLAS through a controller built lazily on
    first use (an unguarded ``lru_cache``); with Dask's threaded scheduler two
    tasks could build it at once, so every task builds it under this lock
    before a kernel runs (a no-op once built).
    """
    with _CONTROLLER_LOCK:
        _kernel_threads._threadpool_controller()


def _weights_of(X, weights):
    return np.ones(X.shape[0], dtype=X.dtype) if weights is None else np.asarray(weights, dtype=X.dtype)


def _lloyd_block(X, weights, centers, with_inertia, backend, n_threads):
    """One fused Lloyd pass on a block: ``(labels, (sums, weights, inertia))``.

    The inertia is computed only ``with_inertia`` (else it is 0).
    """
    _thread_safe_kernels()
    kernel, _ = resolve_kernel("kmeans_lloyd_iter", backend)
    n_clusters = centers.shape[0]
    labels, stripe_sums, stripe_weights = lloyd_state(X.shape[0], n_clusters, X.shape[1])
    sums = np.empty((n_clusters, X.shape[1]))
    cluster_weights = np.empty(n_clusters)
    inertia = np.empty(1)
    inertia[0] = 0.0
    kernel(X, _weights_of(X, weights), centers, np.einsum("ij,ij->i", centers, centers),
           bool(with_inertia), labels, stripe_sums, stripe_weights, sums, cluster_weights, inertia,
           np.empty(1, dtype=np.intp), n_threads)
    return labels, (sums, cluster_weights, inertia)


def _lloyd_stats(result, labels_old):
    """The block's M-step statistics and its number of changed labels."""
    labels, (sums, weights, inertia) = result
    changed = labels.shape[0] if labels_old is None else int(np.count_nonzero(labels != labels_old))
    return sums, weights, inertia, np.array([changed])


def _labels_of(result):
    return result[0]


def _inertia_block(X, weights, centers, labels, backend, n_threads):
    _thread_safe_kernels()
    kernel, _ = resolve_kernel("kmeans_inertia", backend)
    inertia = np.empty(1)
    kernel(X, _weights_of(X, weights), centers, labels, inertia, n_threads)
    return (inertia,)


def _farthest_block(X, weights, centers, labels, offset, n_far):
    """The ``n_far`` samples of a block farthest from their centres (for empty clusters)."""
    distances = ((X - centers[labels]) ** 2).sum(axis=1)
    order = np.lexsort((np.arange(X.shape[0]), -distances))[:n_far]
    return (distances[order], order + offset, X[order].astype(np.float64),
            _weights_of(X, weights)[order].astype(np.float64), labels[order])


def _farthest_combine(parts, n_far=None):
    joined = [np.concatenate(values) for values in zip(*parts)]
    order = np.lexsort((joined[1], -joined[0]))
    if n_far is not None:
        order = order[:n_far]
    return tuple(values[order] for values in joined)


_DISTANCE_ROWS = 1 << 14  # rows of a block per float64 distance chunk (k-means||)


def _min_sq_distances(X, candidates):
    """Float64 squared distance from each row of X to its nearest candidate, and its index.

    Expanded form ``||x||^2 - 2 x.c + ||c||^2`` in float64, clipped at 0, over
    chunks of rows: never more than a (chunk x candidates) matrix.
    """
    candidates = np.asarray(candidates, dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", candidates, candidates)
    closest = np.empty(X.shape[0])
    nearest = np.empty(X.shape[0], dtype=np.intp)
    for start in range(0, X.shape[0], _DISTANCE_ROWS):
        chunk = np.asarray(X[start:start + _DISTANCE_ROWS], dtype=np.float64)
        sq = chunk @ candidates.T
        sq *= -2
        sq += c_sq[None, :]
        sq += np.einsum("ij,ij->i", chunk, chunk)[:, None]
        np.maximum(sq, 0, out=sq)
        nearest[start:start + chunk.shape[0]] = sq.argmin(axis=1)
        closest[start:start + chunk.shape[0]] = sq[np.arange(chunk.shape[0]),
                                                    nearest[start:start + chunk.shape[0]]]
    return closest, nearest


def _kmeans_parallel_cost(X, weights, candidates):
    closest, _ = _min_sq_distances(X, candidates)
    return (np.array([closest @ _weights_of(X, weights).astype(np.float64)]),)


def _kmeans_parallel_sample(X, weights, candidates, cost, oversampling, seed):
    """Rows kept by one k-means|| round: independently, with probability min(1, l w D^2 / phi)."""
    closest, _ = _min_sq_distances(X, candidates)
    w = _weights_of(X, weights).astype(np.float64)
    probability = np.minimum(1.0, oversampling * w * closest / cost)
    keep = np.random.default_rng(seed).uniform(size=X.shape[0]) < probability
    return X[keep]


def _kmeans_parallel_counts(X, weights, candidates):
    """Total weight of the samples nearest to each candidate."""
    _, nearest = _min_sq_distances(X, candidates)
    return (np.bincount(nearest, weights=_weights_of(X, weights).astype(np.float64),
                        minlength=candidates.shape[0]),)


class KMeans(_DaskPredictMixin, _cluster.KMeans):
    r"""K-means on Dask: :class:`fastscratch.KMeans` whose ``fit`` also takes Dask arrays.

    Given NumPy data, exactly the parent estimator. Given a Dask array or
    dataframe, each Lloyd iteration is one map over the blocks (our
    ``kmeans_lloyd_iter`` kernel: labels, per-cluster float64 weighted sums
    and weights, inertia) and one tree reduction of the (k x d) statistics;
    the M-step, the convergence tests (labels unchanged, or centre shift at
    most ``tol`` times the mean feature variance) and the final E-step are
    the parent's. The data are centred first and the centred blocks persisted
    on the workers (one copy of X in the cluster's memory). With the same
    initial centres (an array ``init``) the labels and iteration count equal
    the in-memory fit's, and the centres and inertia agree to rounding.

    Parameters
    ----------
    n_clusters, n_init, max_iter, tol, verbose, random_state, copy_x, n_jobs, backend
        As :class:`fastscratch.KMeans` (``n_jobs``: kernel threads per Dask
        task; None means 1, since Dask runs one task per worker thread).
        ``n_init`` > 1 reruns the whole distributed fit and keeps the lowest
        inertia.
    init : {"k-means||", "k-means++", "random"}, callable or array-like, default="k-means||"
        "k-means||" (Dask input only; Bahmani et al., see the module Notes);
        "random": ``n_clusters`` distinct samples drawn uniformly (weights
        ignored); an array: the initial centres. "k-means++" and a callable
        load X into memory (the parent's seeding) and warn. With NumPy input,
        "k-means||" means the parent's "k-means++".
    algorithm : {"lloyd"}, default="lloyd"
        Dask input runs Lloyd's algorithm ("elkan" is used only with NumPy input).
    oversampling_factor : float, default=2
        k-means||: expected samples kept per round, in units of ``n_clusters``.
    init_max_iter : int, default=None
        k-means|| rounds; None means 5 (Bahmani et al. find 5 rounds enough).

    Attributes
    ----------
    cluster_centers_, inertia_, n_iter_, n_features_in_, feature_names_in_, backend_
        As :class:`fastscratch.KMeans`.
    labels_ : dask array of shape (n_samples,), int32, or ndarray
        Persisted on the workers for Dask input.
    """

    def __init__(self, n_clusters=8, *, init="k-means||", n_init="auto", max_iter=300, tol=1e-4,
                 verbose=0, random_state=None, copy_x=True, algorithm="lloyd", n_jobs=None,
                 backend="auto", oversampling_factor=2, init_max_iter=None):
        super().__init__(n_clusters=n_clusters, init=init, n_init=n_init, max_iter=max_iter,
                         tol=tol, verbose=verbose, random_state=random_state, copy_x=copy_x,
                         algorithm=algorithm, n_jobs=n_jobs, backend=backend)
        self.oversampling_factor = oversampling_factor
        self.init_max_iter = init_max_iter

    def _in_memory(self):
        params = {k: v for k, v in self.get_params().items()
                  if k not in ("oversampling_factor", "init_max_iter")}
        if isinstance(params["init"], str) and params["init"] == "k-means||":
            params["init"] = "k-means++"
        return _cluster.KMeans(**params)

    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering (see the class docstring).

        Parameters
        ----------
        X : array-like, dask array or dask dataframe of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like or dask array of shape (n_samples,), default=None

        Returns
        -------
        self : KMeans
        """
        if not is_dask_collection(X):
            fitted = self._in_memory().fit(X, sample_weight=sample_weight)
            self.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")
                                  or k == "_n_features_out"})
            if not hasattr(fitted, "feature_names_in_") and hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return self
        return self._fit_dask(X, sample_weight)

    # --------------------------------------------------------------- Dask fit
    def _check_dask_params(self, X):
        if self.algorithm != "lloyd":
            raise ValueError(f"algorithm={self.algorithm!r}: Dask input runs 'lloyd' only; "
                             "pass algorithm='lloyd'.")
        if (isinstance(self.oversampling_factor, bool)
                or not isinstance(self.oversampling_factor, numbers.Real)
                or not self.oversampling_factor > 0):
            raise ValueError(f"oversampling_factor must be a positive number, got "
                             f"{self.oversampling_factor!r}.")
        if self.init_max_iter is not None and (
                isinstance(self.init_max_iter, bool)
                or not isinstance(self.init_max_iter, numbers.Integral) or self.init_max_iter < 1):
            raise ValueError(f"init_max_iter must be a positive int or None, got "
                             f"{self.init_max_iter!r}.")
        probe = self._in_memory()
        n_init, _, init_is_array = _cluster.KMeans._check_params(probe, _ShapeOnly(X.shape))
        return n_init, init_is_array

    def _fit_dask(self, X, sample_weight):
        X, columns = _as_dask_array(X, "X", ndim=(2,))
        dtype = _float_dtype(X)
        (sample_weight,) = _aligned(X, sample_weight)
        n_init, init_is_array = self._check_dask_params(X)
        random_state = check_random_state(self.random_state)
        _, self.backend_ = self._in_memory()._kernels()
        n_threads = _task_threads(self.n_jobs)
        x_blocks = _blocks(X)
        w_blocks = _blocks(sample_weight) or [None] * len(x_blocks)
        if sample_weight is not None:
            total_weight = float(sample_weight.sum().compute())
            if not total_weight > 0 or bool((sample_weight < 0).any().compute()):
                raise ValueError("sample_weight must be non-negative and sum to a positive "
                                 "number; give at least one sample a positive weight.")

        # Mean and mean variance of the features (float64, pairwise merge), as the parent.
        moments = [dask.delayed(_moments_block, pure=True)(b) for b in x_blocks]
        n, mean, m2 = _tree_reduce(moments, _moments_combine).compute()
        variance = m2 / n
        tol = float(np.mean(variance) * self.tol) if self.tol != 0 else 0
        X_mean = mean.astype(dtype)
        centred = [dask.delayed(_center_block, pure=True)(b, X_mean, dtype) for b in x_blocks]
        centred = list(dask.persist(*centred))
        sizes = X.chunks[0]

        init = None
        if init_is_array:
            init = self._check_init_array(_ShapeOnly(X.shape, dtype)) - X_mean
        best = None
        for _ in range(n_init):
            centers = self._dask_init(centred, w_blocks, sizes, init, random_state, dtype)
            labels, inertia, centers, n_iter = self._dask_lloyd(
                centred, w_blocks, sizes, centers, tol, n_threads)
            if best is None or inertia < best[1]:
                best = (labels, inertia, centers, n_iter)
        labels, inertia, centers, n_iter = best
        centers = centers + X_mean
        label_arrays = [da.from_delayed(dask.delayed(np.asarray)(part, np.int32), shape=(size,),
                                        dtype=np.int32) for part, size in zip(labels, sizes)]
        self.labels_ = da.concatenate(label_arrays).persist()
        self.cluster_centers_ = centers.astype(dtype, copy=False)
        self._n_features_out = centers.shape[0]
        self.inertia_ = float(inertia)
        self.n_iter_ = n_iter
        _set_feature_names(self, columns, X.shape[1])
        return self

    def _dask_init(self, centred, w_blocks, sizes, init, random_state, dtype):
        if init is not None:
            return init.copy()
        n_samples = int(sum(sizes))
        if callable(self.init) or self.init == "k-means++":
            import warnings

            warnings.warn(f"init={self.init!r} loads X into memory for the seeding; use "
                          "init='k-means||' for data that do not fit.", UserWarning, stacklevel=4)
            data = np.concatenate(dask.compute(*centred))
            weights = (np.concatenate(dask.compute(*w_blocks)).astype(dtype)
                       if w_blocks[0] is not None else np.ones(n_samples, dtype=dtype))
            return self._init_centroids(data, self.init, random_state, weights)
        if self.init == "random":
            chosen = np.sort(random_state.choice(n_samples, size=self.n_clusters, replace=False))
            return self._rows(centred, sizes, chosen, dtype)
        return self._kmeans_parallel(centred, w_blocks, sizes, random_state, dtype)

    @staticmethod
    def _rows(blocks, sizes, indices, dtype):
        """Rows ``indices`` (global, any order) of the blocked data."""
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        owner = np.searchsorted(offsets, indices, side="right") - 1
        parts = [dask.delayed(lambda b, i: np.asarray(b)[i])(blocks[o], indices[owner == o] - offsets[o])
                 for o in np.unique(owner)]
        rows = np.concatenate(dask.compute(*parts))
        order = np.concatenate([np.flatnonzero(owner == o) for o in np.unique(owner)])
        out = np.empty((len(indices), rows.shape[1]), dtype=dtype)
        out[order] = rows
        return out

    def _kmeans_parallel(self, centred, w_blocks, sizes, random_state, dtype):
        """k-means|| (Bahmani et al., 2012): oversample in rounds, recluster the candidates."""
        n_samples = int(sum(sizes))
        first = random_state.randint(n_samples)
        candidates = self._rows(centred, sizes, np.array([first]), dtype)
        oversampling = self.oversampling_factor * self.n_clusters
        rounds = 5 if self.init_max_iter is None else self.init_max_iter
        for _ in range(rounds):
            costs = [dask.delayed(_kmeans_parallel_cost, pure=True)(b, w, candidates)
                     for b, w in zip(centred, w_blocks)]
            (cost,) = _tree_reduce(costs, _sum_combine).compute()
            if not cost[0] > 0:
                break  # every sample is a candidate already
            seeds = random_state.randint(np.iinfo(np.int32).max, size=len(centred))
            kept = [dask.delayed(_kmeans_parallel_sample, pure=True)(b, w, candidates, cost[0],
                                                                     oversampling, int(s))
                    for b, w, s in zip(centred, w_blocks, seeds)]
            candidates = np.concatenate([candidates, *dask.compute(*kept)]).astype(dtype)
        if candidates.shape[0] < self.n_clusters:
            extra = random_state.choice(n_samples, size=self.n_clusters, replace=False)
            candidates = np.concatenate([candidates, self._rows(centred, sizes, extra, dtype)])
            candidates = np.unique(candidates, axis=0)[:max(self.n_clusters, candidates.shape[0])]
        counts = [dask.delayed(_kmeans_parallel_counts, pure=True)(b, w, candidates)
                  for b, w in zip(centred, w_blocks)]
        (weights,) = _tree_reduce(counts, _sum_combine).compute()
        if np.count_nonzero(weights) < self.n_clusters:
            weights = weights + 1e-12 * max(weights.max(), 1)  # keep k distinct seeds possible
        reclustered = _cluster.KMeans(
            n_clusters=self.n_clusters, init="k-means++", n_init=1, max_iter=self.max_iter,
            tol=self.tol, random_state=random_state, backend=self.backend,
            n_jobs=self.n_jobs).fit(candidates, sample_weight=weights.astype(dtype))
        return np.ascontiguousarray(reclustered.cluster_centers_, dtype=dtype)

    def _dask_lloyd(self, centred, w_blocks, sizes, centers, tol, n_threads):
        """Lloyd iterations, as the parent's ``_run_lloyd``, one map/reduce per iteration."""
        stats_of = dask.delayed(_lloyd_stats, pure=True)
        labels_old = [None] * len(centred)
        strict = False
        with _cluster._Progress(self.verbose, self.max_iter) as progress:
            for i in range(self.max_iter):
                results = [dask.delayed(_lloyd_block, pure=True)(b, w, centers, bool(self.verbose),
                                                                 self.backend, n_threads)
                           for b, w in zip(centred, w_blocks)]
                labels = [dask.delayed(_labels_of, pure=True)(r) for r in results]
                stats = [stats_of(r, old) for r, old in zip(results, labels_old)]
                *labels, total = dask.persist(*labels, _tree_reduce(stats, _sum_combine))
                sums, weights, inertia, changed = total.compute()
                centers_new = self._dask_m_step(centred, w_blocks, sizes, centers, labels, sums,
                                                weights, centers.dtype)
                shift = _cluster._euclidean_rows(centers_new, centers)
                centers = centers_new
                progress(inertia[0])
                if changed[0] == 0:
                    strict = True
                    break
                if (shift ** 2).sum() <= tol:
                    break
                labels_old = labels
        if strict:
            parts = [dask.delayed(_inertia_block, pure=True)(b, w, centers, lab, self.backend, n_threads)
                     for b, w, lab in zip(centred, w_blocks, labels)]
            final_inertia = _tree_reduce(parts, _sum_combine).compute()[0][0]
        else:
            results = [dask.delayed(_lloyd_block, pure=True)(b, w, centers, True, self.backend,
                                                             n_threads)
                       for b, w in zip(centred, w_blocks)]
            labels = [dask.delayed(_labels_of, pure=True)(r) for r in results]
            stats = [stats_of(r, None) for r in results]
            *labels, total = dask.persist(*labels, _tree_reduce(stats, _sum_combine))
            final_inertia = total.compute()[2][0]
        return labels, final_inertia, centers, i + 1

    def _dask_m_step(self, centred, w_blocks, sizes, centers_old, labels, sums, weights, dtype):
        """The parent's M-step; an empty cluster takes one of the samples farthest from theirs."""
        empty = np.flatnonzero(weights == 0)
        if empty.size:
            offsets = np.concatenate([[0], np.cumsum(sizes)])
            parts = [dask.delayed(_farthest_block, pure=True)(b, w, centers_old, lab, int(o), empty.size)
                     for b, w, lab, o in zip(centred, w_blocks, labels, offsets)]
            distances, _, rows, row_weights, row_labels = _tree_reduce(
                parts, lambda p: _farthest_combine(p, empty.size)).compute()
            if distances.size and np.max(distances) > 0:
                for new_id, row, w, old_id in zip(empty, rows, row_weights, row_labels):
                    _cluster._move_to_empty(sums, weights, new_id, old_id, row * w, w)
        return _cluster._centers_from_sums(sums, weights, centers_old, dtype)

    def transform(self, X):
        if is_dask_collection(X):
            X, _ = _as_dask_array(X, "X", ndim=(2,))
            return self._postfit().transform(X)
        return super().transform(X)

    def score(self, X, y=None, sample_weight=None):
        if is_dask_collection(X):
            raise TypeError("score takes in-memory data; for a Dask array, use "
                            "-(estimator.transform(X).min(axis=1) ** 2).sum().")
        return super().score(X, y, sample_weight)


class _ShapeOnly:
    """Stands for X where the parent's checks need only its shape (and dtype)."""

    def __init__(self, shape, dtype=np.float64):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)


# ---------------------------------------------------------------------------------------------
# k-nearest neighbours with a partitioned training set
# ---------------------------------------------------------------------------------------------


def _knn_fit_partition(template, X, y, shift):
    """The in-memory estimator fitted on one partition, searching with the global ``shift``.

    The in-memory estimator centres data far from the origin on their mean
    before a euclidean search; every partition uses the mean of the whole
    training set, so the kernels rank the same numbers as in memory.
    """
    model = clone(template)
    model.fit(np.asarray(X), np.asarray(y))
    model._shift = shift
    model._search_X = (model._fit_X if shift is None
                       else np.subtract(model._fit_X, shift, dtype=model._fit_X.dtype))
    return model


def _knn_local_topk(model, targets, queries, n_neighbors, offset, n_threads):
    """A partition's top-k: ``(ranking keys, global indices, targets, float64 distances)``.

    The keys are what the in-memory search sorts by (the kernel's reduced
    distances), so that the merge reproduces its order exactly.
    """
    _thread_safe_kernels()
    queries = np.ascontiguousarray(queries, dtype=model._fit_X.dtype)
    k = min(n_neighbors, model.n_samples_fit_)
    kernel, extra = model._kernel_call()
    search_queries = queries if model._shift is None else np.subtract(
        queries, model._shift, dtype=queries.dtype)
    reduced = np.empty((queries.shape[0], k), dtype=queries.dtype)
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    kernel(search_queries, model._search_X, *extra, reduced, indices, n_threads)
    if queries.dtype == np.float64 and model._shift is None:
        exact = reduced.copy()
    else:
        exact = model._exact_reduced(queries, indices)
    distances = model._reduced_to_distance(exact)
    return reduced, indices + offset, np.asarray(targets)[indices], distances


def _knn_merge(parts, n_neighbors):
    """Global top-k of partial top-k lists: by ranking key, ties to the smaller global index."""
    joined = [np.concatenate(values, axis=1) for values in zip(*parts)]
    order = np.lexsort((joined[1], joined[0]), axis=1)[:, :n_neighbors]
    return tuple(np.take_along_axis(values, order, axis=1) for values in joined)


def _knn_classify(merged, weights, n_classes, classes, proba):
    _, _, labels, distances = merged
    w = _neighbors._get_weights(distances, weights)
    if w is None:
        w = np.ones(labels.shape)
    elif np.any(np.all(w == 0, axis=1)):
        raise ValueError("All neighbours of some sample get zero weight; change the callable "
                         "passed as weights so that every row has a positive weight.")
    out = np.zeros((labels.shape[0], n_classes))
    rows = np.arange(labels.shape[0])
    for i, label in enumerate(labels.T):  # neighbour order, as the in-memory estimator
        out[rows, label] += w[:, i]
    out /= out.sum(axis=1)[:, np.newaxis]
    return out if proba else classes.take(np.argmax(out, axis=1))


def _knn_regress(merged, weights):
    _, _, targets, distances = merged
    w = _neighbors._get_weights(distances, weights)
    if w is None:
        return np.mean(targets, axis=1)
    return np.sum(targets * w, axis=1) / np.sum(w, axis=1)


class _DaskKNeighborsMixin:
    """Fit on a Dask collection: one in-memory estimator per training partition, on the workers."""

    def fit(self, X, y):
        """Store the training data: in memory, or partitioned on the workers for Dask input.

        Parameters
        ----------
        X : array-like, dask array or dask dataframe of shape (n_samples, n_features)
        y : array-like or dask array of shape (n_samples,)

        Returns
        -------
        self
        """
        self._partitions = None
        if not is_dask_collection(X):
            return super().fit(X, y)
        metric, p = self._check_params()
        X, columns = _as_dask_array(X, "X", ndim=(2,))
        (y,) = _aligned(X, y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D for a partitioned fit, got shape {y.shape}; fit "
                             "one estimator per output.")
        if X.shape[0] == 0:
            raise ValueError("X has 0 samples; pass at least one row.")
        if self._is_classifier:
            self.classes_, targets = _classes_and_codes(y)
            self.outputs_2d_ = False
        else:
            targets = y.astype(np.float64)
        template = self._in_memory_type(**self.get_params())
        shift = None
        if metric in ("euclidean", "sqeuclidean") and X.shape[0] > 1:
            # The in-memory rule (neighbors._fit_search_structure), on the whole training set.
            moments = [dask.delayed(_moments_block, pure=True)(b) for b in _blocks(X)]
            n, mean, m2 = _tree_reduce(moments, _moments_combine).compute()
            if mean @ mean > (m2 / n).sum():
                shift = mean.astype(_float_dtype(X))
        self._shift = shift
        models = [dask.delayed(_knn_fit_partition, pure=True)(template, xb, yb, shift)
                  for xb, yb in zip(_blocks(X), _blocks(y))]
        *persisted, = dask.persist(*models, *_blocks(targets))
        n_parts = len(models)
        self._partitions = list(zip(persisted[:n_parts], persisted[n_parts:]))
        self._offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.intp)
        self.effective_metric_ = metric
        self.effective_metric_params_ = {} if p is None else {"p": p}
        self.n_samples_fit_ = int(X.shape[0])
        self._fit_dtype = _float_dtype(X)
        _set_feature_names(self, columns, X.shape[1])
        return self

    def _merged_blocks(self, X, n_neighbors):
        """Per query block, the delayed merged top-k ``(distances, indices, targets)``."""
        if X is None:
            raise ValueError("X=None (the training points) is not supported when the training "
                             "set is partitioned; pass the queries.")
        dask_input = is_dask_collection(X)
        if dask_input:
            X, _ = _as_dask_array(X, "X", ndim=(2,))
        else:
            X = np.asarray(X)
            X = da.from_array(X, chunks=(max(1, X.shape[0]),) + X.shape[1:])
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has shape {X.shape} but the model was fitted with "
                             f"{self.n_features_in_} features; pass the same columns.")
        n_neighbors = self._check_n_neighbors(n_neighbors, False, X.shape[0])
        merged = []
        for qb in _blocks(X):
            local = [dask.delayed(_knn_local_topk, pure=True)(model, targets, qb, n_neighbors, int(o),
                                                              _task_threads(self.n_jobs))
                     for (model, targets), o in zip(self._partitions, self._offsets)]
            merged.append(_tree_reduce(local, lambda p, k=n_neighbors: _knn_merge(p, k)))
        return merged, X.chunks[0], n_neighbors, dask_input

    @staticmethod
    def _assemble(blocks, sizes, trailing, dtype, dask_input):
        arrays = [da.from_delayed(b, shape=(s,) + trailing, dtype=dtype) for b, s in zip(blocks, sizes)]
        out = da.concatenate(arrays)
        return out if dask_input else out.compute()

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        if getattr(self, "_partitions", None) is None:
            return super().kneighbors(X, n_neighbors, return_distance)
        merged, sizes, k, dask_input = self._merged_blocks(X, n_neighbors)
        distances = self._assemble([dask.delayed(lambda m: m[3])(m) for m in merged], sizes,
                                   (k,), np.float64, dask_input)
        indices = self._assemble([dask.delayed(lambda m: m[1])(m) for m in merged], sizes,
                                 (k,), np.intp, dask_input)
        return (distances, indices) if return_distance else indices

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        if getattr(self, "_partitions", None) is not None and is_dask_collection(X):
            raise TypeError("kneighbors_graph returns an in-memory sparse matrix; pass "
                            "X.compute() or use kneighbors.")
        return super().kneighbors_graph(X, n_neighbors, mode)


class KNeighborsClassifier(_DaskKNeighborsMixin, _neighbors.KNeighborsClassifier):
    """k-nearest-neighbour classifier with the training set partitioned on Dask workers.

    :class:`fastscratch.KNeighborsClassifier` whose ``fit`` also takes a Dask
    array or dataframe (1-D ``y``): each block of training rows is fitted, as
    an in-memory estimator, on a worker and stays there. A query block is sent
    to every partition, each answers with its local top-k (float64 distances,
    indices shifted to global row numbers, labels), and the answers are merged
    in a tree reduction into the global top-k, sorted by distance with ties to
    the smaller global index: the in-memory order, so ``kneighbors``,
    ``predict`` and ``predict_proba`` equal the in-memory estimator's. Dask
    queries give Dask arrays; NumPy queries give NumPy arrays. ``X=None``
    (leave-one-out on the training set) needs the in-memory estimator.
    Parameters and attributes: those of :class:`fastscratch.KNeighborsClassifier`.
    """

    _is_classifier = True
    _in_memory_type = _neighbors.KNeighborsClassifier

    def predict_proba(self, X):
        if getattr(self, "_partitions", None) is None:
            return super().predict_proba(X)
        merged, sizes, _, dask_input = self._merged_blocks(X, None)
        n_classes = len(self.classes_)
        blocks = [dask.delayed(_knn_classify, pure=True)(m, self.weights, n_classes, self.classes_, True)
                  for m in merged]
        return self._assemble(blocks, sizes, (n_classes,), np.float64, dask_input)

    def predict(self, X):
        if getattr(self, "_partitions", None) is None:
            return super().predict(X)
        merged, sizes, _, dask_input = self._merged_blocks(X, None)
        blocks = [dask.delayed(_knn_classify, pure=True)(m, self.weights, len(self.classes_),
                                                          self.classes_, False) for m in merged]
        return self._assemble(blocks, sizes, (), self.classes_.dtype, dask_input)


class KNeighborsRegressor(_DaskKNeighborsMixin, _neighbors.KNeighborsRegressor):
    """k-nearest-neighbour regressor with the training set partitioned on Dask workers.

    As :class:`KNeighborsClassifier` (local top-k per partition, merged by
    distance then global index), predicting the (weighted) mean target of the
    merged neighbours, summed in neighbour order as the in-memory
    :class:`fastscratch.KNeighborsRegressor`.
    """

    _is_classifier = False
    _in_memory_type = _neighbors.KNeighborsRegressor

    def predict(self, X):
        if getattr(self, "_partitions", None) is None:
            return super().predict(X)
        merged, sizes, _, dask_input = self._merged_blocks(X, None)
        blocks = [dask.delayed(_knn_regress, pure=True)(m, self.weights) for m in merged]
        return self._assemble(blocks, sizes, (), np.float64, dask_input)


# ---------------------------------------------------------------------------------------------
# Boosting: data-parallel histograms, splits chosen once on the client
# ---------------------------------------------------------------------------------------------


def _bin_block(X, binner):
    return binner.transform(np.ascontiguousarray(X, dtype=np.float32))


def _boost_gradients(loss, y, raw, weights):
    """Gradients and hessians (n_groups, n) of one block at its margins ``raw`` (n_groups, n)."""
    gradients = np.empty(raw.shape, dtype=np.float32)
    hessians = np.empty(raw.shape, dtype=np.float32)
    if raw.shape[0] == 1:
        loss.gradients(y, raw[0], weights, gradients[0], hessians[0])
    else:
        loss.gradients(y, raw, weights, gradients, hessians)
    return gradients, hessians


def _boost_raw(n_rows, base_margin):
    raw = np.empty((base_margin.shape[0], n_rows), dtype=np.float32)
    raw[:] = base_margin[:, None]
    return raw


def _any_nan(X):
    return np.array([bool(np.isnan(X).any())])


def _class_weight_totals(codes, weights, n_classes):
    return (np.bincount(codes, weights=weights, minlength=n_classes).astype(np.float64),)


def _local_segments(segments, keys, n_lefts, n_rows):
    """Local ``(starts, stops)`` in one block of the nodes ``keys`` (see :class:`_DaskTreeGrower`)."""
    def one(key):
        parent = segments[key]
        if parent is None:
            return 0, n_rows
        parent_key, level, j, side = parent
        start, stop = one(parent_key)
        middle = start + int(n_lefts[level][j])
        return (start, middle) if side == 0 else (middle, stop)

    pairs = [one(key) for key in keys]
    return (np.array([p[0] for p in pairs], dtype=np.intp),
            np.array([p[1] for p in pairs], dtype=np.intp))


def _boost_partition(binned, rows, n_lefts, segments, keys, features, split_bins, default_lefts,
                     n_bins, backend, n_threads):
    """One block's rows of the splitting nodes, partitioned left then right; and the left counts."""
    _thread_safe_kernels()
    kernel, _ = resolve_kernel("partition_rows", backend)
    starts, stops = _local_segments(segments, keys, n_lefts, rows.shape[0])
    rows = rows.copy()
    n_left = np.empty(starts.shape[0], dtype=np.intp)
    kernel(binned, rows, starts, stops, features, split_bins, default_lefts, n_bins,
           np.empty(rows.shape[0], dtype=np.intp), n_left, n_threads)
    return rows, n_left


def _boost_histograms(binned, rows, n_lefts, segments, keys, gradients_hessians, group, n_slots,
                      backend, n_threads):
    """One block's histograms (float64) of the nodes ``keys``."""
    _thread_safe_kernels()
    kernel, _ = resolve_kernel("build_histograms", backend)
    starts, stops = _local_segments(segments, keys, n_lefts, rows.shape[0])
    out = np.empty((starts.shape[0], binned.shape[1], n_slots, 2), dtype=np.float64)
    kernel(binned, rows, starts, stops, gradients_hessians[0][group],
           gradients_hessians[1][group], out, n_threads)
    return out


def _add_arrays(parts):
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def _boost_add_leaves(rows, n_lefts, segments, keys, values, raw, group, backend, n_threads):
    _thread_safe_kernels()
    kernel, _ = resolve_kernel("add_leaf_values", backend)
    starts, stops = _local_segments(segments, keys, n_lefts, rows.shape[0])
    raw = raw.copy()
    kernel(rows, starts, stops, values, raw[group], n_threads)
    return raw


def _take_rows(X, indices):
    return np.asarray(X)[indices]


def _gather_rows(blocks, sizes, indices):
    """Rows ``indices`` (sorted, global) of a blocked array, in memory."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    owner = np.searchsorted(offsets, indices, side="right") - 1
    parts = [dask.delayed(_take_rows, pure=True)(blocks[o], indices[owner == o] - offsets[o])
             for o in np.unique(owner)]
    return np.concatenate(dask.compute(*parts))


class _DaskTreeGrower(TreeGrower):
    """The in-memory grower with its two data passes (histograms, partitions) run on Dask.

    Every block keeps its own ``rows`` array, partitioned level by level on
    its worker. The parent grower places nodes in a global row layout
    ``[start, stop)``; here that layout is virtual (the root spans ``2**62``
    and a split node's children its two halves), and ``segments`` maps each
    node to how its local segment follows from its parent's on every block:
    ``(parent, level, j, side)``, the left counts of partition ``level``
    being computed on the workers. So a level costs one wait (the summed
    histograms), the partitions running on the workers in between. Split
    finding, the subtraction trick, node numbering and leaf values are the
    parent's, on the summed histograms.
    """

    VIRTUAL_ROWS = 1 << 62

    def __init__(self, blocks, block_rows, gradients_hessians, group, n_features, n_bins, params,
                 max_depth, gamma, learning_rate, kernels, backend, n_threads, has_missing):
        super().__init__(_ShapeOnly((self.VIRTUAL_ROWS, n_features)), n_bins, None, None, None,
                         None, params, max_depth, gamma, learning_rate, kernels, 1,
                         has_missing=has_missing)
        self.group = group
        self.blocks = blocks
        self.block_rows = list(block_rows)
        self.n_lefts = [[] for _ in blocks]
        self.gradients_hessians = gradients_hessians
        self.backend = backend
        self.task_threads = n_threads
        self.segments = {(0, self.VIRTUAL_ROWS): None}
        self.level = 0

    @staticmethod
    def _keys(nodes):
        return [(int(node["start"]), int(node["stop"])) for node in nodes]

    def _build(self, nodes, out):
        keys, segments = self._keys(nodes), dict(self.segments)
        parts = [dask.delayed(_boost_histograms, pure=True)(
                     binned, rows, n_lefts, segments, keys, gh, self.group, self.n_slots,
                     self.backend, self.task_threads)
                 for binned, rows, n_lefts, gh in zip(self.blocks, self.block_rows, self.n_lefts,
                                                      self.gradients_hessians)]
        out[...] = _tree_reduce(parts, _add_arrays).compute()

    def _partition(self, splitting):
        keys, segments = self._keys(splitting), dict(self.segments)
        features = np.array([node["split"][0] for node in splitting], dtype=np.intp)
        split_bins = np.array([node["split"][1] for node in splitting], dtype=np.intp)
        default_lefts = np.array([node["split"][2] for node in splitting], dtype=np.uint8)
        results = [dask.delayed(_boost_partition, pure=True, nout=2)(
                       binned, rows, n_lefts, segments, keys, features, split_bins, default_lefts,
                       self.n_bins, self.backend, self.task_threads)
                   for binned, rows, n_lefts in zip(self.blocks, self.block_rows, self.n_lefts)]
        results = dask.persist(*results)  # no wait: the next level's tasks depend on them
        for b, result in enumerate(results):
            self.block_rows[b] = result[0]
            self.n_lefts[b] = self.n_lefts[b] + [result[1]]
        for j, (node, key) in enumerate(zip(splitting, keys)):
            half = (key[1] - key[0]) // 2
            node["n_left"] = half
            middle = key[0] + half
            self.segments[(key[0], middle)] = (key, self.level, j, 0)
            self.segments[(middle, key[1])] = (key, self.level, j, 1)
        self.level += 1

    def add_leaves(self, tree, raw):
        """Each block's margins plus the tree's leaf values (delayed, one per block)."""
        starts, stops, values = tree["leaf_segments"]
        keys = [(int(a), int(b)) for a, b in zip(starts, stops)]
        segments = dict(self.segments)
        return [dask.delayed(_boost_add_leaves, pure=True)(
                    rows, n_lefts, segments, keys, values, raw_b, self.group, self.backend,
                    self.task_threads)
                for rows, n_lefts, raw_b in zip(self.block_rows, self.n_lefts, raw)]


class _DaskBoostingMixin(_DaskPredictMixin):
    """``fit`` of a Dask collection: data-parallel histograms (xgboost.dask, LightGBM data-parallel)."""

    def fit(self, X, y, sample_weight=None, eval_set=None, verbose=True, cuts=None):
        """The in-memory ``fit``, or, for a Dask collection X, the data-parallel one."""
        if not is_dask_collection(X):
            return super().fit(X, y, sample_weight=sample_weight, eval_set=eval_set,
                               verbose=verbose, cuts=cuts)
        _no_eval_set(eval_set)
        X, y, sample_weight = self._dask_inputs(X, y, sample_weight)
        return self._fit_dask_target(X, y, sample_weight, cuts)

    def _fit_dask(self, X, y32, sample_weight, cuts, objective=None, n_classes=None):
        self._check_params()
        objective = objective or self.objective or self._objectives[0]
        self._check_objective(objective)
        n_threads = _task_threads(self.n_jobs)
        loss = (OBJECTIVES[objective](n_classes) if objective == "multi:softprob"
                else OBJECTIVES[objective]())
        K = loss.n_groups
        sizes = X.chunks[0]
        n_samples, n_features = int(X.shape[0]), int(X.shape[1])
        x_blocks = _blocks(X)
        weights = None
        if sample_weight is not None:
            weights = sample_weight.astype(np.float32)
            if bool((weights < 0).any().compute()):
                raise ValueError("sample_weight must be non-negative.")

        binner = BinMapper(self.max_bin, random_state=self.random_state, backend=self.backend,
                           n_threads=n_threads)
        if cuts is None:
            # The rows the in-memory BinMapper would sample (same random_state, same rows).
            candidates = np.arange(n_samples)
            if weights is not None:
                w_all = np.asarray(weights.compute())
                if np.any(w_all == 0) and np.any(w_all > 0):
                    candidates = np.flatnonzero(w_all > 0)
            if binner.subsample is not None and candidates.shape[0] > binner.subsample:
                rng = check_random_state(self.random_state)
                candidates = candidates[np.sort(rng.choice(candidates.shape[0], binner.subsample,
                                                           replace=False))]
            binner.fit(_gather_rows(x_blocks, sizes, candidates))
        else:
            cut_ptr, cut_values = cuts
            if len(cut_ptr) != n_features + 1:
                raise ValueError(f"cuts has {len(cut_ptr) - 1} features, X has {n_features}.")
            binner.set_xgboost_cuts(cut_ptr, cut_values)
        binned = list(dask.persist(*[dask.delayed(_bin_block, pure=True)(b, binner)
                                     for b in x_blocks]))
        y_blocks = list(dask.persist(*_blocks(y32)))
        w_blocks = (list(dask.persist(*_blocks(weights))) if weights is not None
                    else [None] * len(x_blocks))
        nan_parts = [dask.delayed(_any_nan, pure=True)(b) for b in x_blocks]
        has_missing = bool(_tree_reduce(nan_parts, _add_arrays).compute()[0])

        if self.base_score is not None:
            base_score = float(self.base_score)
        elif objective == "multi:softprob":
            # Class weight totals, then the loss's own formula (a bincount of one row per class).
            parts = [dask.delayed(_class_weight_totals, pure=True)(yb, wb, K)
                     for yb, wb in zip(_blocks(y32.astype(np.intp)), w_blocks)]
            (totals,) = _tree_reduce(parts, _sum_combine).compute()
            base_score = loss.base_score(np.arange(K, dtype=np.float32), totals)
        else:
            if weights is None:
                total, count = y32.astype(np.float64).sum().compute(), n_samples
            else:
                total, count = dask.compute((y32.astype(np.float64) * weights).sum(),
                                            weights.astype(np.float64).sum())
            base_score = loss.base_score(np.array([total / count], dtype=np.float32), None)
        base_margin = np.broadcast_to(loss.score_to_margin(base_score), (K,)).astype(np.float32)
        kernels = {name: resolve_kernel(name, self.backend)[0]
                   for name in ("find_best_splits", "subtract_histograms")}
        params = self._train_params()
        raw = [dask.delayed(_boost_raw, pure=True)(n, base_margin) for n in sizes]
        identity = [dask.delayed(np.arange, pure=True)(n, dtype=np.intp) for n in sizes]
        forest = Forest(n_groups=K)
        progress = None
        if self.verbosity > 0:
            from tqdm.auto import tqdm
            progress = tqdm(total=self.n_estimators, desc=type(self).__name__)
        for _ in range(self.n_estimators):
            gradients = list(dask.persist(*[
                dask.delayed(_boost_gradients, pure=True)(loss, yb, rb, wb)
                for yb, rb, wb in zip(y_blocks, raw, w_blocks)]))
            for k in range(K):
                grower = _DaskTreeGrower(binned, identity, gradients, k, n_features,
                                         binner.n_bins_, params, self.max_depth,
                                         float(np.float32(self.gamma)), self.learning_rate,
                                         kernels, self.backend, n_threads, has_missing)
                tree = grower.grow()
                raw = list(dask.persist(*grower.add_leaves(tree, raw)))
                split = tree["left"] >= 0
                thresholds = np.zeros(split.shape[0], dtype=np.float32)
                thresholds[split] = binner.thresholds(tree["feature"][split], tree["bin"][split])
                forest.add_tree(tree, thresholds, group=k)
            if progress is not None:
                progress.update()
        if progress is not None:
            progress.close()
        self._binner = binner
        self._forest = forest
        self.evals_result_ = {}
        for attribute in ("best_iteration", "best_score"):
            if attribute in self.__dict__:
                delattr(self, attribute)
        self._loss = loss
        self.base_score_ = base_score
        self._base_margin = base_margin.astype(np.float64)
        return self

    def _dask_inputs(self, X, y, sample_weight):
        X, columns = _as_dask_array(X, "X", ndim=(2,))
        X = X.astype(np.float32)
        y, sample_weight = _aligned(X, y, sample_weight)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}; pass y.ravel().")
        _set_feature_names(self, columns, X.shape[1])
        return X, y, sample_weight


_BOOST_DOC = """{name} on Dask: :class:`fastscratch.{name}` whose ``fit`` also takes Dask
    arrays and dataframes, data-parallel as xgboost.dask and LightGBM's
    data-parallel mode.

    The rows stay in their blocks on the workers, binned once with cut points
    from ``cuts`` (xgboost's format) or from the rows the in-memory
    :class:`~fastscratch.boosting.binning.BinMapper` would sample (the same
    rows for the same ``random_state``). For every tree, each worker computes
    its rows' gradients, and for every level it builds the histograms of its
    rows of the nodes to build (our ``build_histograms`` kernel); the client
    sums them (tree reduction), chooses the splits once with the in-memory
    grower (``find_best_splits``, the subtraction trick, xgboost's node
    numbering) and broadcasts them; each worker partitions its rows
    (``partition_rows``) and, at the end of the tree, adds the leaf values to
    its margins. With the same cut points the trees equal the in-memory ones
    (up to the rounding of the summed float64 histograms). ``predict*`` of a
    Dask collection returns Dask arrays (one task per block).
    Parameters and attributes: those of :class:`fastscratch.{name}`.
"""


def _no_eval_set(eval_set):
    if eval_set is not None:
        raise TypeError("eval_set is not supported with Dask input; evaluate the fitted model "
                        "with predict on the evaluation data.")


class XGBRegressor(_DaskBoostingMixin, _boosting.XGBRegressor):
    __doc__ = _BOOST_DOC.format(name="XGBRegressor")

    def _fit_dask_target(self, X, y, sample_weight, cuts):
        if not bool(da.isfinite(y).all().compute()):
            raise ValueError("y contains NaN or infinity; remove or impute those targets.")
        return self._fit_dask(X, y.astype(np.float32), sample_weight, cuts)


class XGBClassifier(_DaskBoostingMixin, _boosting.XGBClassifier):
    __doc__ = _BOOST_DOC.format(name="XGBClassifier")

    def _fit_dask_target(self, X, y, sample_weight, cuts):
        classes, codes = _classes_and_codes(y)
        n_classes = classes.shape[0]
        if n_classes < 2:
            raise ValueError(f"y has one class ({classes[0]!r}); a classifier needs at least two.")
        objective = self.objective or ("binary:logistic" if n_classes == 2 else "multi:softprob")
        if objective == "binary:logistic" and n_classes > 2:
            raise ValueError(f"objective='binary:logistic' needs exactly two classes in y, got "
                             f"{n_classes}; use objective='multi:softprob' (or None).")
        self.classes_ = classes
        self.n_classes_ = n_classes
        return self._fit_dask(X, codes.astype(np.float32), sample_weight, cuts, objective,
                              n_classes)
