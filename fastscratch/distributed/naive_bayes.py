"""Naive Bayes on Dask: per-block sufficient statistics merged by a tree reduction."""

import dask.array as da
import numpy as np
from sklearn.base import clone

from .. import naive_bayes as _nb
from .._config import get_config
from ._common import (
    _aligned,
    _as_dask_array,
    _blocks,
    _BoundMethods,
    _checked_X,
    _classes_and_codes,
    _column_moments,
    _DaskPredictMixin,
    _delayed,
    _float_dtype,
    _merge_moments,
    _predict_joint_log_proba,
    _set_feature_names,
    _tree_reduce,
    is_dask_collection,
)


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
        X, columns = _checked_X(X, self)
        y, sample_weight = _aligned(X, y, sample_weight)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}; pass y.ravel().")
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
            return X.map_blocks(_predict_joint_log_proba, estimator=_BoundMethods(self, (), {}, get_config()),
                                dtype=np.float64,
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
        stats = [_delayed(_gaussian_block_stats, pure=True)(xb, cb, wb, n_classes)
                 for xb, cb, wb in zip(_blocks(X), _blocks(codes),
                                       _blocks(sample_weight) or [None] * X.numblocks[0])]
        (n, _, m_all), per_class = _tree_reduce(stats, _gaussian_combine).compute()
        with np.errstate(invalid="ignore", divide="ignore"):
            self._check_variance_range(
                np.array([m_c for _, _, m_c in per_class]), m_all / n, X.shape[0],
                lambda: (float(da.absolute(X).max().compute()),
                         bool((X.max(axis=0) > X.min(axis=0)).any().compute())))
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
        counts = [_delayed(_discrete_block_counts, pure=True)(template, classes, xb, cb, wb)
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
