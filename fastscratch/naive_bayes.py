r"""Naive Bayes classifiers, written from the math, equal to scikit-learn's.

Five models share one recipe: learn per-class statistics in ``fit`` (or
incrementally in ``partial_fit``), and score a sample :math:`x` against each
class :math:`c` by the joint log-likelihood

.. math::

    \mathrm{jll}_c(x) = \log P(c) + \sum_j \log P(x_j \mid c),

the "naive" step being the sum over features, which assumes the features
independent given the class. Predictions are ``argmax_c jll_c`` (ties to the
first class); probabilities are normalised in log space with log-sum-exp,
:math:`\log P(c \mid x) = \mathrm{jll}_c - \log \sum_{c'} e^{\mathrm{jll}_{c'}}`,
never by multiplying probabilities.

- :class:`GaussianNB`: :math:`x_j \mid c \sim \mathcal N(\theta_{cj}, \sigma^2_{cj})`.
- :class:`MultinomialNB`: counts, :math:`P(x \mid c) \propto \prod_j p_{cj}^{x_j}`.
- :class:`ComplementNB`: Rennie et al.'s weights from the complement of each class.
- :class:`BernoulliNB`: binary features, present or absent.
- :class:`CategoricalNB`: each feature a categorical variable with its own table.

The hot loops (the per-class statistics of ``fit``, the joint
log-likelihood over all samples, and its normalisation) run in the kernels of
:mod:`fastscratch.kernels.naive_bayes_numpy` (and its Numba and Cython twins),
picked by the ``backend`` parameter. Sparse input is checked for a consistent
structure (index ranges, ``indptr``) before any kernel, or SciPy, reads it. The
parameters, fitted attributes and semantics (``force_alpha``, ``partial_fit``,
``sample_weight``, ``class_prior``, ``min_categories``, ``norm``) follow
scikit-learn 1.9, so the two can be swapped and compared.
"""

import numbers
import warnings
from abc import ABCMeta, abstractmethod

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    check_non_negative,
    validate_data,
)

from ._backend import effective_n_threads, resolve_kernel
from ._config import BACKEND_NAMES
from ._sparse_checks import check_sparse_structure as _check_sparse_structure
from ._labels import check_label_kinds as _check_label_kinds

__all__ = ["GaussianNB", "MultinomialNB", "BernoulliNB", "ComplementNB", "CategoricalNB"]

# Below this much work (multiply-adds) per thread, kernels run on fewer threads.
_MIN_WORK_PER_THREAD = 1 << 18
# The fit kernels: entries of X per thread. One pass over 2M entries takes about 2 ms
# on one core; below that a second thread saves little on an idle machine, and on a
# busy one waiting for it to be scheduled can cost tens of ms.
_FIT_MIN_WORK_PER_THREAD = 1 << 21


class UnseenCategoryError(ValueError, IndexError):
    """A category code at prediction time that ``fit`` never made room for.

    A ValueError with a message that says how to fix it; also an IndexError,
    which is what scikit-learn's CategoricalNB raises for the same input.
    """


class _BaseNB(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Prediction methods shared by every naive Bayes model."""

    _parameter_constraints: dict = {
        "backend": [StrOptions(set(BACKEND_NAMES)), None],
        "n_jobs": [Interval(numbers.Integral, None, None, closed="neither"), None],
    }

    @abstractmethod
    def _joint_log_likelihood(self, X):
        """``log P(c) + log P(x | c)``, float64 of shape (n_samples, n_classes)."""

    @abstractmethod
    def _check_X(self, X):
        """Validate ``X`` for the predict methods."""

    def _run(self, kernel_name, work, *args, min_work=_MIN_WORK_PER_THREAD):
        """Call kernel ``kernel_name`` of this estimator's backend.

        ``work`` (about the number of multiply-adds) caps the thread count at
        ``work // min_work``, so that a small input is not split over threads
        that cost more to wake than they save.
        """
        kernel, _ = resolve_kernel(kernel_name, self.backend)
        n_threads = min(effective_n_threads(self.n_jobs), max(1, int(work) // min_work))
        kernel(*args, n_threads)

    def predict_joint_log_proba(self, X):
        """Joint log-probabilities ``log P(x, c) = log P(c) + log P(x | c)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        C : ndarray of shape (n_samples, n_classes), float64
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        return self._joint_log_likelihood(self._check_X(X))

    def predict(self, X):
        """Class of the largest joint log-probability (ties: the first in ``classes_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        C : ndarray of shape (n_samples,)
        """
        jll = self.predict_joint_log_proba(X)
        return self.classes_[np.argmax(jll, axis=1)]

    def _normalized(self, X, exponentiate):
        jll = self.predict_joint_log_proba(X)
        self._run("nb_normalize", 20 * jll.size, jll, exponentiate, jll)
        return jll

    def predict_log_proba(self, X):
        """Log-probabilities ``log P(c | x)``, normalised with log-sum-exp.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        C : ndarray of shape (n_samples, n_classes), float64
        """
        return self._normalized(X, False)

    def predict_proba(self, X):
        """Probabilities ``P(c | x)`` (the exponential of :meth:`predict_log_proba`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        C : ndarray of shape (n_samples, n_classes), float64
        """
        return self._normalized(X, True)


def _encode_labels(y):
    """Sorted classes of ``y`` and each label's position in them.

    The result of ``np.unique(y, return_inverse=True)``; integer labels of a
    small range are counted with ``np.bincount`` instead of sorted or hashed
    (linear time, a few ms on a million labels).
    """
    y = np.asarray(y)
    _check_label_kinds(y)
    if y.dtype.kind in "iu" and y.size:
        low, high = y.min(), y.max()
        span = int(high) - int(low) + 1
        if span <= max(1 << 16, y.size):
            # The differences fit in y's own dtype (they are below span) unless it is
            # narrower than intp, where the subtraction could wrap: widen it first.
            offset = (y.astype(np.intp) - np.intp(low) if y.dtype.itemsize < 8
                      else (y - low).astype(np.intp, copy=False))
            present = np.bincount(offset, minlength=span) > 0
            position = np.cumsum(present) - 1
            classes = np.flatnonzero(present).astype(y.dtype) + low
            return classes, position[offset].astype(np.intp, copy=False)
    classes, y_index = np.unique(y, return_inverse=True)
    return classes, y_index.reshape(-1).astype(np.intp, copy=False)


def _check_targets(y, classes):
    """scikit-learn's ``check_classification_targets``, given the classes found already.

    The classes ride along in the dtype metadata that scikit-learn's
    ``cached_unique`` reads, so its target-type check does not find them
    again (if that mechanism ever goes, the check only gets slower).
    """
    try:
        y = y.view(np.dtype(y.dtype, metadata={"unique": classes}))
    except (TypeError, ValueError, AttributeError):
        pass
    check_classification_targets(y)


def _labels_to_indices(y, classes):
    """Positions of ``y`` in the sorted ``classes``; unknown labels are an error."""
    _check_label_kinds(y)
    indices = np.searchsorted(classes, y)
    known = indices < len(classes)
    known[known] = classes[indices[known]] == y[known]
    if not np.all(known):
        raise ValueError(
            f"The target label(s) {np.unique(y[~known])} in y do not exist in the initial "
            f"classes {classes}; pass every label in `classes` on the first call to partial_fit."
        )
    return indices


# ---------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------


def _merge_classes(class_weight, mean, m2):
    """Total ``(W, mean, M)`` of all classes, merged in class order (Chan et al.)."""
    total_weight, total_mean, total_m2 = 0.0, np.zeros(mean.shape[1]), np.zeros(mean.shape[1])
    for c in range(class_weight.shape[0]):
        if class_weight[c] == 0:
            continue
        if total_weight == 0:
            total_weight, total_mean, total_m2 = class_weight[c], mean[c].copy(), m2[c].copy()
            continue
        weight = total_weight + class_weight[c]
        delta = mean[c] - total_mean
        total_mean += delta * (class_weight[c] / weight)
        total_m2 += m2[c] + delta ** 2 * (total_weight * class_weight[c] / weight)
        total_weight = weight
    return total_weight, total_mean, total_m2


class GaussianNB(_BaseNB):
    r"""Gaussian naive Bayes, with incremental updates (:meth:`partial_fit`).

    Parameters
    ----------
    priors : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes. If given, they are not adjusted to
        the data.
    var_smoothing : float, default=1e-9
        Portion of the largest feature variance added to every variance, for
        numerical stability.
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel backend of the fit and prediction loops ("auto": the global
        setting, else the fastest installed).
    n_jobs : int, default=None
        Threads of the fit and prediction loops (None: the global setting, else
        all cores).

    Attributes
    ----------
    class_count_ : ndarray of shape (n_classes,)
        (Weighted) number of training samples of each class.
    class_prior_ : ndarray of shape (n_classes,)
        Probability of each class.
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    epsilon_ : float
        Absolute value added to the variances (of the last batch, see Notes).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` had string column names.
    var_ : ndarray of shape (n_classes, n_features)
        Variance of each feature per class, plus ``epsilon_``.
    theta_ : ndarray of shape (n_classes, n_features)
        Mean of each feature per class.

    Notes
    -----
    Each feature is normal given the class, :math:`x_j \mid c \sim
    \mathcal N(\theta_{cj}, \sigma^2_{cj})` (``theta_``, ``var_``), so

    .. math::

        \mathrm{jll}_c(x) = \log \pi_c - \tfrac12 \sum_j \log(2\pi\sigma^2_{cj})
            - \tfrac12 \sum_j \frac{(x_j - \theta_{cj})^2}{\sigma^2_{cj}},

    with :math:`\pi_c` = ``class_prior_``: ``priors`` if given, else
    ``class_count_ / class_count_.sum()``. The variances are smoothed,
    :math:`\sigma^2_{cj} = s^2_{cj} + \epsilon` with ``epsilon_`` =
    ``var_smoothing * max_j Var(X[:, j])``. The kernel evaluates the last sum
    directly, fused over features (no expanded form, so no cancellation).

    ``fit`` reads ``X`` once (the ``gaussian_class_moments`` kernel): per
    class the weight :math:`W_c = \sum_{y_i = c} w_i`, the mean and the centred
    sum of squares :math:`M_{cj} = \sum_{y_i = c} w_i (x_{ij} - \theta_{cj})^2`,
    so :math:`s^2_{cj} = M_{cj} / W_c`. The kernel takes each block of rows in
    two passes while it is in cache and merges the blocks with the update
    below, so it is as stable as scikit-learn's two-pass ``np.var`` and
    matches it to about 1e-12 relative; ``epsilon_`` comes from the classes'
    moments merged (scikit-learn takes it from the unweighted variance, so a
    weighted batch costs a second pass).

    ``partial_fit`` merges a batch of (weighted) size :math:`n_b`, mean
    :math:`\bar x_b` and variance :math:`s^2_b` into the running
    :math:`(n, \theta, s^2)` of each class (Chan, Golub and LeVeque, 1979):

    .. math::

        n' = n + n_b, \quad
        \theta' = \frac{n \theta + n_b \bar x_b}{n'}, \quad
        s'^2 = \frac{n s^2 + n_b s^2_b + \frac{n n_b}{n'} (\theta - \bar x_b)^2}{n'}.

    As in scikit-learn, ``epsilon_`` is recomputed from each batch alone, and
    the new batch's ``epsilon_`` is subtracted from ``var_`` before the merge and
    added after it; so ``partial_fit`` over several batches does not equal
    ``fit`` on all the data (it equals scikit-learn's ``partial_fit`` on the
    same batches).

    Parameters are stored in the floating dtype of ``X`` (float32 stays
    float32, as in scikit-learn) but computed in float64; predictions are
    float64.

    Examples
    --------
    >>> import numpy as np
    >>> from fastscratch import GaussianNB
    >>> X = np.array([[-1, -1], [-2, -1], [-3, -2], [1, 1], [2, 1], [3, 2]])
    >>> y = np.array([1, 1, 1, 2, 2, 2])
    >>> GaussianNB().fit(X, y).predict([[-0.8, -1]])
    array([1])
    """

    _parameter_constraints: dict = {
        **_BaseNB._parameter_constraints,
        "priors": ["array-like", None],
        "var_smoothing": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, *, priors=None, var_smoothing=1e-9, backend="auto", n_jobs=None):
        self.priors = priors
        self.var_smoothing = var_smoothing
        self.backend = backend
        self.n_jobs = n_jobs

    def fit(self, X, y, sample_weight=None):
        """Fit the class means and variances to ``X, y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianNB
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], order="C")
        classes, y_index = _encode_labels(y)
        _check_targets(y, classes)
        self.classes_ = classes
        return self._update(X, y_index, first_call=True, sample_weight=sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the model with one batch (see Notes on ``epsilon_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            Every class that may appear in ``y``: required on the first call,
            optional (and checked) afterwards.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianNB
        """
        self._validate_params()
        first_call = _check_partial_fit_first_call(self, classes)
        X, y = validate_data(self, X, y, reset=first_call, dtype=[np.float64, np.float32],
                             order="C")
        check_classification_targets(y)
        if not first_call and X.shape[1] != self.theta_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but the model was fitted with "
                f"{self.theta_.shape[1]}; pass the same columns to every partial_fit."
            )
        y_index = _labels_to_indices(np.asarray(y), self.classes_)
        return self._update(X, y_index, first_call, sample_weight)

    def _check_X(self, X):
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32], order="C")

    def _moments(self, X, y_index, n_classes, weights):
        """``(W_c, mean_c, M_c)`` of each class, by the ``gaussian_class_moments`` kernel."""
        class_weight = np.empty(n_classes)
        mean = np.empty((n_classes, X.shape[1]))
        m2 = np.empty((n_classes, X.shape[1]))
        self._run("gaussian_class_moments", X.size, X, y_index, weights, class_weight, mean, m2,
                  min_work=_FIT_MIN_WORK_PER_THREAD)
        return class_weight, mean, m2

    @staticmethod
    def _check_variance_range(class_m2, variance, n_samples, extent):
        """Data near 1e300 (1e-300) have squared deviations that overflow (underflow).

        ``extent()`` gives (the largest absolute value of X, whether any column of X
        varies); it is called only when the moments look wrong.
        """
        overflow = not (np.all(np.isfinite(class_m2)) and np.all(np.isfinite(variance)))
        if not overflow and not (n_samples > 1 and np.max(variance, initial=0.0) == 0):
            return
        largest, varies = extent()
        if overflow:
            raise ValueError(
                f"X holds values up to {largest:.3g} in magnitude: their squared deviations "
                f"from the class means overflow float64 (largest "
                f"{np.finfo(np.float64).max:.2g}), so the variances var_ cannot be stored. "
                "Divide X by a constant first (the predictions do not change when X is "
                "multiplied by a constant).")
        if varies:
            raise ValueError(
                f"X holds values of at most {largest:.3g} in magnitude: their squared "
                "deviations underflow to 0 in float64, so every variance var_ is 0. Multiply "
                "X by a constant first (the predictions do not change when X is multiplied "
                "by a constant).")

    def _update(self, X, y_index, first_call, sample_weight):
        """Merge the moments of the batch ``X, y_index`` into the model (Notes)."""
        float_dtype = X.dtype
        n_classes = len(self.classes_)
        if sample_weight is None:
            weights = np.empty(0)
        else:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=float_dtype)
            weights = np.ascontiguousarray(sample_weight, dtype=np.float64)
        batch_weight, batch_mean, batch_m2 = self._moments(X, y_index, n_classes, weights)

        # epsilon from the unweighted variance of this batch alone, as scikit-learn: the
        # classes' moments merged (unweighted), or one more pass when the batch is weighted.
        if sample_weight is None:
            parts = (batch_weight, batch_mean, batch_m2)
        else:
            parts = self._moments(X, np.zeros(X.shape[0], dtype=np.intp), 1, np.empty(0))
        n_total, _, m2_total = _merge_classes(*parts)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = m2_total / n_total
        self._check_variance_range(
            batch_m2, variance, X.shape[0],
            lambda: (float(np.max(np.abs(X))), bool(np.any(X != X[:1]))))
        self.epsilon_ = float_dtype.type(self.var_smoothing * np.max(variance))

        if first_call:
            self.theta_ = np.zeros((n_classes, X.shape[1]), dtype=float_dtype)
            self.var_ = np.zeros((n_classes, X.shape[1]), dtype=float_dtype)
            self.class_count_ = np.zeros(n_classes, dtype=float_dtype)
            if self.priors is not None:
                priors = np.asarray(self.priors, dtype=float_dtype)
                if priors.shape != (n_classes,):
                    raise ValueError(
                        f"priors has {priors.size} values but there are {n_classes} classes; "
                        "pass one prior per class, in the order of `classes_`."
                    )
                if not np.isclose(priors.sum(), 1.0):
                    raise ValueError(f"priors sum to {priors.sum()}; they must sum to 1.")
                if np.any(priors < 0):
                    raise ValueError("priors must be non-negative.")
                self.class_prior_ = priors
            else:
                self.class_prior_ = np.zeros(n_classes, dtype=float_dtype)
        else:
            self.var_ -= self.epsilon_  # scikit-learn removes the new batch's epsilon

        # Classes whose weight in the batch is (close to) 0 keep their statistics, as in
        # scikit-learn; their (near-zero) weight still adds to class_count_.
        update = ~np.isclose(batch_weight, 0.0)
        n_past = self.class_count_.astype(np.float64)
        new = update & (n_past == 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            batch_var = batch_m2 / batch_weight[:, None]
        self.theta_[new] = batch_mean[new]
        self.var_[new] = batch_var[new]
        old = update & (n_past != 0)
        if np.any(old):
            n_new, n_old = batch_weight[old, None], n_past[old, None]
            mean = self.theta_[old].astype(np.float64)
            var = self.var_[old].astype(np.float64)
            n_total = n_old + n_new
            self.theta_[old] = (n_new * batch_mean[old] + n_old * mean) / n_total
            self.var_[old] = (n_old * var + n_new * batch_var[old]
                              + (n_new * n_old / n_total) * (mean - batch_mean[old]) ** 2) / n_total
        self.class_count_ += batch_weight.astype(float_dtype)

        self.var_ += self.epsilon_
        if self.priors is None:
            self.class_prior_ = self.class_count_ / self.class_count_.sum()
        return self

    def _joint_log_likelihood(self, X):
        var = self.var_.astype(np.float64)
        mean_t = np.ascontiguousarray(self.theta_.T, dtype=np.float64)
        with np.errstate(divide="ignore"):
            inv_var_t = np.ascontiguousarray((1.0 / var).T)
            class_const = (np.log(self.class_prior_.astype(np.float64))
                           - 0.5 * np.sum(np.log(2.0 * np.pi * var), axis=1))
        out = np.empty((X.shape[0], len(self.classes_)), dtype=np.float64)
        self._run("gaussian_joint_log_likelihood", X.size * out.shape[1],
                  X, mean_t, inv_var_t, class_const, out)
        return out


# ---------------------------------------------------------------------------------------------
# Discrete models
# ---------------------------------------------------------------------------------------------


def _csr_arrays(X):
    """``data, indices, indptr`` of a CSR matrix, the index arrays of one integer type."""
    indices, indptr = X.indices, X.indptr
    if indices.dtype != indptr.dtype:
        indptr = indptr.astype(indices.dtype)
    return X.data, indices, indptr


class _BaseDiscreteNB(_BaseNB):
    """Counting, smoothing and priors shared by the discrete models."""

    _parameter_constraints: dict = {
        **_BaseNB._parameter_constraints,
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "fit_prior": ["boolean"],
        "class_prior": ["array-like", None],
        "force_alpha": ["boolean"],
    }

    _binarize_threshold = None  # BernoulliNB overrides

    @abstractmethod
    def _count(self, X, y_index, sample_weight):
        """Add the (weighted) counts of one batch to the count attributes.

        ``y_index``: intp class positions; ``sample_weight``: float64 or None.
        """

    @abstractmethod
    def _update_feature_log_prob(self, alpha):
        """Recompute ``feature_log_prob_`` from the counts."""

    def _count_features(self, X, y_index, sample_weight):
        """Add ``Y^T v(X)`` to ``feature_count_`` (``Y``: the one-hot labels times the
        sample weights) and the class weights to ``class_count_``.

        One kernel pass over ``X`` (its stored entries if sparse), each row
        added into its class's row of the table.
        """
        n_classes = len(self.class_count_)
        weights = np.empty(0) if sample_weight is None else sample_weight
        threshold = np.nan if self._binarize_threshold is None else float(self._binarize_threshold)
        sums = np.empty((n_classes, X.shape[1]))
        if sp.issparse(X):
            self._run("class_feature_sums_csr", X.nnz, *_csr_arrays(X), y_index, weights,
                      threshold, sums, min_work=_FIT_MIN_WORK_PER_THREAD)
        else:
            self._run("class_feature_sums_dense", X.size, X, y_index, weights, threshold, sums,
                      min_work=_FIT_MIN_WORK_PER_THREAD)
        self.feature_count_ += sums
        self.class_count_ += np.bincount(y_index, weights=sample_weight, minlength=n_classes)

    def _summed_duplicates(self, X):
        """``X`` with its duplicate entries summed, where the model binarises.

        A CSR matrix means the sum of duplicate entries; the linear models can
        add them one by one, but binarising must see the sum (scikit-learn
        binarises each entry and counts a split value twice). Copies only a
        matrix that has duplicates or unsorted rows.
        """
        if sp.issparse(X) and self._binarize_threshold is not None \
                and not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        return X

    def _check_X(self, X):
        _check_sparse_structure(X)
        X = validate_data(self, X, accept_sparse="csr", reset=False,
                          dtype=[np.float64, np.float32], order="C")
        return self._summed_duplicates(X)

    def _check_X_y(self, X, y, reset=True):
        _check_sparse_structure(X)
        X, y = validate_data(self, X, y, accept_sparse="csr", reset=reset,
                             dtype=[np.float64, np.float32], order="C")
        return self._summed_duplicates(X), y

    def _init_counters(self, n_classes, n_features):
        self.class_count_ = np.zeros(n_classes, dtype=np.float64)
        self.feature_count_ = np.zeros((n_classes, n_features), dtype=np.float64)

    def _check_alpha(self):
        """``alpha`` as used: checked against n_features, clipped to 1e-10 unless forced."""
        alpha = self.alpha if isinstance(self.alpha, numbers.Real) else np.asarray(self.alpha)
        alpha_min = np.min(alpha)
        if isinstance(alpha, np.ndarray):
            if alpha.shape != (self.n_features_in_,):
                raise ValueError(
                    "When alpha is an array, it should contains `n_features`. "
                    f"Got {alpha.size} elements instead of {self.n_features_in_}."
                )
            if alpha_min < 0:
                raise ValueError("All values in alpha must be greater than 0.")
        alpha_lower_bound = 1e-10
        if alpha_min < alpha_lower_bound and not self.force_alpha:
            warnings.warn(
                "alpha too small will result in numeric errors, setting alpha ="
                f" {alpha_lower_bound:.1e}. Use `force_alpha=True` to keep alpha unchanged."
            )
            return np.maximum(alpha, alpha_lower_bound)
        return alpha

    def _update_class_log_prior(self):
        n_classes = len(self.classes_)
        if self.class_prior is not None:
            class_prior = np.asarray(self.class_prior, dtype=np.float64)
            if len(class_prior) != n_classes:
                raise ValueError(
                    f"class_prior has {len(class_prior)} values but there are {n_classes} "
                    "classes; Number of priors must match number of classes."
                )
            self.class_log_prior_ = np.log(class_prior)
        elif self.fit_prior:
            with np.errstate(divide="ignore"):  # a class not seen yet has count 0
                log_class_count = np.log(self.class_count_)
            self.class_log_prior_ = log_class_count - np.log(self.class_count_.sum())
        else:
            self.class_log_prior_ = np.full(n_classes, -np.log(n_classes))

    def _update(self, X, y_index, sample_weight):
        if len(self.classes_) == 1:  # a single class: every sample belongs to it
            y_index = np.zeros(X.shape[0], dtype=np.intp)
        y_index = np.ascontiguousarray(y_index, dtype=np.intp)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(_check_sample_weight(sample_weight, X),
                                                 dtype=np.float64)
        self._count(X, y_index, sample_weight)
        self._update_feature_log_prob(self._check_alpha())
        self._update_class_log_prior()
        return self

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X, y`` (counts, smoothed log-probabilities, priors).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = self._check_X_y(X, y)
        self.classes_, y_index = _encode_labels(y)
        _check_targets(y, self.classes_)
        self._init_counters(len(self.classes_), X.shape[1])
        return self._update(X, y_index, sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add one batch to the counts and refresh the model.

        Counts add up, so ``partial_fit`` over batches equals ``fit`` on all of
        them.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            Every class that may appear in ``y``: required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        self._validate_params()
        first_call = not hasattr(self, "classes_")
        X, y = self._check_X_y(X, y, reset=first_call)
        if _check_partial_fit_first_call(self, classes):
            self._init_counters(len(self.classes_), X.shape[1])
        y_index = _labels_to_indices(np.asarray(y), self.classes_)
        return self._update(X, y_index, sample_weight)

    def _linear_joint_log_likelihood(self, X, weights, class_const):
        """``v(X) @ weights.T + class_const`` through the dense or CSR kernel."""
        weights_t = np.ascontiguousarray(weights.T, dtype=np.float64)
        class_const = np.ascontiguousarray(class_const, dtype=np.float64)
        threshold = np.nan if self._binarize_threshold is None else float(self._binarize_threshold)
        out = np.empty((X.shape[0], weights.shape[0]), dtype=np.float64)
        if sp.issparse(X):
            self._run("discrete_joint_log_likelihood_csr", X.nnz * out.shape[1],
                      *_csr_arrays(X), weights_t, class_const, threshold, out)
        else:
            self._run("discrete_joint_log_likelihood_dense", X.size * out.shape[1],
                      X, weights_t, class_const, threshold, out)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.poor_score = True
        return tags


class MultinomialNB(_BaseDiscreteNB):
    r"""Naive Bayes for counts (multinomial model), e.g. word counts.

    Parameters
    ----------
    alpha : float or array-like of shape (n_features,), default=1.0
        Additive (Laplace/Lidstone) smoothing (alpha=0 with force_alpha=True:
        no smoothing).
    force_alpha : bool, default=True
        If False, an alpha below 1e-10 is raised to 1e-10 (with a warning).
    fit_prior : bool, default=True
        Learn the class priors; if False, use a uniform prior.
    class_prior : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes; if given, not adjusted to the data.
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel backend of the fit and prediction loops.
    n_jobs : int, default=None
        Threads of the fit and prediction loops (None: the global setting, else
        all cores).

    Attributes
    ----------
    class_count_ : ndarray of shape (n_classes,)
        (Weighted) number of samples per class.
    class_log_prior_ : ndarray of shape (n_classes,)
        Log prior of each class.
    classes_ : ndarray of shape (n_classes,)
    feature_count_ : ndarray of shape (n_classes, n_features)
        (Weighted) sum of each feature per class.
    feature_log_prob_ : ndarray of shape (n_classes, n_features)
        :math:`\log p_{cj}`.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Notes
    -----
    With :math:`N_{cj}` = ``feature_count_`` (the weighted sum of feature j
    over the samples of class c) and smoothing :math:`\alpha_j`,

    .. math::

        \log p_{cj} = \log(N_{cj} + \alpha_j) - \log \sum_{j'} (N_{cj'} + \alpha_{j'}),
        \qquad
        \mathrm{jll}_c(x) = \log \pi_c + \sum_j x_j \log p_{cj},

    a linear function of :math:`x` (the multinomial coefficient is the same
    for every class and is dropped). :math:`\log \pi_c` = ``class_log_prior_``:
    ``log(class_prior)``, or ``log(class_count_ / class_count_.sum())`` if
    ``fit_prior``, else ``-log(n_classes)``. The CSR kernel visits only the
    stored entries of a sparse ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastscratch import MultinomialNB
    >>> rng = np.random.RandomState(1)
    >>> X = rng.randint(5, size=(6, 100))
    >>> MultinomialNB().fit(X, np.array([1, 2, 3, 4, 5, 6])).predict(X[2:3])
    array([3])
    """

    def __init__(self, *, alpha=1.0, force_alpha=True, fit_prior=True, class_prior=None,
                 backend="auto", n_jobs=None):
        self.alpha = alpha
        self.force_alpha = force_alpha
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.backend = backend
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def _count(self, X, y_index, sample_weight):
        check_non_negative(X, "MultinomialNB (input X): counts cannot be negative")
        self._count_features(X, y_index, sample_weight)

    def _update_feature_log_prob(self, alpha):
        smoothed_fc = self.feature_count_ + alpha
        smoothed_cc = smoothed_fc.sum(axis=1)
        self.feature_log_prob_ = np.log(smoothed_fc) - np.log(smoothed_cc.reshape(-1, 1))

    def _joint_log_likelihood(self, X):
        return self._linear_joint_log_likelihood(X, self.feature_log_prob_, self.class_log_prior_)


class ComplementNB(_BaseDiscreteNB):
    r"""Complement naive Bayes (Rennie et al., 2003), suited to imbalanced classes.

    Parameters
    ----------
    alpha : float or array-like of shape (n_features,), default=1.0
        Additive (Laplace/Lidstone) smoothing (alpha=0 with force_alpha=True:
        no smoothing).
    force_alpha : bool, default=True
        If False, an alpha below 1e-10 is raised to 1e-10 (with a warning).
    fit_prior : bool, default=True
        Only used with a single class in the training set.
    class_prior : array-like of shape (n_classes,), default=None
        Only used with a single class in the training set.
    norm : bool, default=False
        Normalise the weights a second time (Rennie et al.'s Table 9; the
        default, like Mahout and Weka, does not).
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel backend of the fit and prediction loops.
    n_jobs : int, default=None
        Threads of the fit and prediction loops (None: the global setting, else
        all cores).

    Attributes
    ----------
    class_count_ : ndarray of shape (n_classes,)
    class_log_prior_ : ndarray of shape (n_classes,)
        Only used with a single class.
    classes_ : ndarray of shape (n_classes,)
    feature_all_ : ndarray of shape (n_features,)
        (Weighted) sum of each feature over all classes.
    feature_count_ : ndarray of shape (n_classes, n_features)
    feature_log_prob_ : ndarray of shape (n_classes, n_features)
        The weights :math:`w_{cj}` of the class complements.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Notes
    -----
    The counts of everything *but* class c, smoothed, give the complement
    probabilities, and their negated logs the weights:

    .. math::

        \tilde N_{cj} = \sum_{c'} N_{c'j} + \alpha_j - N_{cj}, \qquad
        \ell_{cj} = \log \frac{\tilde N_{cj}}{\sum_{j'} \tilde N_{cj'}}, \qquad
        w_{cj} = -\ell_{cj} \ \text{or, with norm,}\ \ell_{cj} / \textstyle\sum_{j'} \ell_{cj'},

    and the score is :math:`\mathrm{jll}_c(x) = \sum_j x_j w_{cj}` (plus
    ``class_log_prior_`` only when there is a single class), as in
    scikit-learn; these scores are normalised into probabilities like the
    other models'.
    """

    _parameter_constraints: dict = {**_BaseDiscreteNB._parameter_constraints, "norm": ["boolean"]}

    def __init__(self, *, alpha=1.0, force_alpha=True, fit_prior=True, class_prior=None,
                 norm=False, backend="auto", n_jobs=None):
        self.alpha = alpha
        self.force_alpha = force_alpha
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.norm = norm
        self.backend = backend
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def _count(self, X, y_index, sample_weight):
        check_non_negative(X, "ComplementNB (input X): counts cannot be negative")
        self._count_features(X, y_index, sample_weight)
        self.feature_all_ = self.feature_count_.sum(axis=0)

    def _update_feature_log_prob(self, alpha):
        comp_count = self.feature_all_ + alpha - self.feature_count_
        logged = np.log(comp_count / comp_count.sum(axis=1, keepdims=True))
        if self.norm:
            self.feature_log_prob_ = logged / logged.sum(axis=1, keepdims=True)
        else:
            self.feature_log_prob_ = -logged

    def _joint_log_likelihood(self, X):
        if len(self.classes_) == 1:
            class_const = self.class_log_prior_
        else:
            class_const = np.zeros(len(self.classes_))
        return self._linear_joint_log_likelihood(X, self.feature_log_prob_, class_const)


class BernoulliNB(_BaseDiscreteNB):
    r"""Naive Bayes for binary features (multivariate Bernoulli model).

    Parameters
    ----------
    alpha : float or array-like of shape (n_features,), default=1.0
        Additive (Laplace/Lidstone) smoothing (alpha=0 with force_alpha=True:
        no smoothing).
    force_alpha : bool, default=True
        If False, an alpha below 1e-10 is raised to 1e-10 (with a warning).
    binarize : float or None, default=0.0
        Threshold: a feature is present when ``x > binarize``. None: ``X`` is
        taken to be binary already.
    fit_prior : bool, default=True
        Learn the class priors; if False, use a uniform prior.
    class_prior : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes; if given, not adjusted to the data.
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel backend of the fit and prediction loops.
    n_jobs : int, default=None
        Threads of the fit and prediction loops (None: the global setting, else
        all cores).

    Attributes
    ----------
    class_count_ : ndarray of shape (n_classes,)
    class_log_prior_ : ndarray of shape (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    feature_count_ : ndarray of shape (n_classes, n_features)
        (Weighted) number of samples of class c in which feature j is present.
    feature_log_prob_ : ndarray of shape (n_classes, n_features)
        :math:`\log p_{cj}`, the log probability that feature j is present.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Notes
    -----
    With :math:`b_j = [x_j > t]` (``t`` = ``binarize``; the kernels binarise
    on the fly, without copying ``X``), :math:`N_{cj}` = ``feature_count_`` and
    :math:`N_c` = ``class_count_``,

    .. math::

        p_{cj} = \frac{N_{cj} + \alpha_j}{N_c + 2\alpha_j}, \qquad
        \mathrm{jll}_c(x) = \log \pi_c + \sum_j \big(b_j \log p_{cj}
            + (1 - b_j) \log(1 - p_{cj})\big),

    computed as the linear form :math:`\sum_j b_j (\log p_{cj} - \log(1 -
    p_{cj})) + (\log \pi_c + \sum_j \log(1 - p_{cj}))`, so a sparse ``X``
    needs only its stored entries.
    """

    _parameter_constraints: dict = {
        **_BaseDiscreteNB._parameter_constraints,
        "binarize": [None, Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, *, alpha=1.0, force_alpha=True, binarize=0.0, fit_prior=True,
                 class_prior=None, backend="auto", n_jobs=None):
        self.alpha = alpha
        self.force_alpha = force_alpha
        self.binarize = binarize
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.backend = backend
        self.n_jobs = n_jobs

    @property
    def _binarize_threshold(self):
        return self.binarize

    def _count(self, X, y_index, sample_weight):
        self._count_features(X, y_index, sample_weight)

    def _update_feature_log_prob(self, alpha):
        smoothed_fc = self.feature_count_ + alpha
        smoothed_cc = self.class_count_ + alpha * 2
        self.feature_log_prob_ = np.log(smoothed_fc) - np.log(smoothed_cc.reshape(-1, 1))

    def _joint_log_likelihood(self, X):
        neg_prob = np.log(1 - np.exp(self.feature_log_prob_))
        return self._linear_joint_log_likelihood(
            X, self.feature_log_prob_ - neg_prob, self.class_log_prior_ + neg_prob.sum(axis=1))


class CategoricalNB(_BaseDiscreteNB):
    r"""Naive Bayes for categorical features, each coded 0, 1, ..., n_j - 1.

    Parameters
    ----------
    alpha : float, default=1.0
        Additive (Laplace/Lidstone) smoothing (alpha=0 with force_alpha=True:
        no smoothing).
    force_alpha : bool, default=True
        If False, an alpha below 1e-10 is raised to 1e-10 (with a warning).
    fit_prior : bool, default=True
        Learn the class priors; if False, use a uniform prior.
    class_prior : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes; if given, not adjusted to the data.
    min_categories : int or array-like of shape (n_features,), default=None
        Minimum number of categories per feature (an int for all features, or
        one per feature); None: ``max + 1`` of each column of the data.
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel backend of the fit and prediction loops.
    n_jobs : int, default=None
        Threads of the fit and prediction loops (None: the global setting, else
        all cores).

    Attributes
    ----------
    category_count_ : list of n_features ndarrays of shape (n_classes, n_categories_j)
        (Weighted) number of samples of class c with category k of feature j.
    class_count_ : ndarray of shape (n_classes,)
    class_log_prior_ : ndarray of shape (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    feature_log_prob_ : list of n_features ndarrays of shape (n_classes, n_categories_j)
        :math:`\log p_{cjk}`.
    n_categories_ : ndarray of shape (n_features,), int64
        Number of categories of each feature, from the last batch and
        ``min_categories`` (as in scikit-learn: after ``partial_fit`` it
        describes the last batch; the tables keep every category seen).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Notes
    -----
    With :math:`N_{cjk}` = ``category_count_[j][c, k]``,

    .. math::

        \log p_{cjk} = \log(N_{cjk} + \alpha) - \log \sum_{k'} (N_{cjk'} + \alpha),
        \qquad
        \mathrm{jll}_c(x) = \log \pi_c + \sum_j \log p_{c j x_j}.

    The kernel stacks the tables into one ``(sum_j n_j, n_classes)`` array
    and does one look-up per feature. A category at prediction time beyond a
    feature's table (never seen in training and not reserved with
    ``min_categories``) raises :class:`UnseenCategoryError` (a ValueError and
    an IndexError; scikit-learn raises an IndexError).
    """

    _parameter_constraints: dict = {
        **_BaseDiscreteNB._parameter_constraints,
        "min_categories": [None, "array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, *, alpha=1.0, force_alpha=True, fit_prior=True, class_prior=None,
                 min_categories=None, backend="auto", n_jobs=None):
        self.alpha = alpha
        self.force_alpha = force_alpha
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.min_categories = min_categories
        self.backend = backend
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.sparse = False
        tags.input_tags.positive_only = True
        return tags

    @staticmethod
    def _check_codes_fit_integers(X):
        """Floats beyond the int64 range would wrap around (to negative codes) in the cast."""
        values = X if isinstance(X, np.ndarray) else None
        if values is None and hasattr(X, "dtypes"):
            values = np.asarray(X)
        if values is None or values.dtype.kind != "f":
            return
        finite = np.abs(values[np.isfinite(values)])
        if finite.size and finite.max() >= 2.0 ** 63:
            raise ValueError(
                f"X holds values up to {finite.max():.3g}, beyond the int64 range, so they "
                "cannot be categories (coded 0, 1, ..., n_categories - 1); encode each "
                "feature's values first, e.g. with sklearn.preprocessing.OrdinalEncoder.")

    def _check_X(self, X):
        self._check_codes_fit_integers(X)
        X = validate_data(self, X, dtype="int", accept_sparse=False, ensure_all_finite=True,
                          reset=False)
        check_non_negative(X, "CategoricalNB (input X): categories are coded 0, 1, ...")
        return X

    def _check_X_y(self, X, y, reset=True):
        self._check_codes_fit_integers(X)
        X, y = validate_data(self, X, y, dtype="int", accept_sparse=False,
                             ensure_all_finite=True, reset=reset)
        check_non_negative(X, "CategoricalNB (input X): categories are coded 0, 1, ...")
        return X, y

    def _init_counters(self, n_classes, n_features):
        self.class_count_ = np.zeros(n_classes, dtype=np.float64)
        self.category_count_ = [np.zeros((n_classes, 0)) for _ in range(n_features)]

    @staticmethod
    def _validate_n_categories(X, min_categories):
        n_categories_X = X.max(axis=0) + 1
        if min_categories is None:
            return n_categories_X
        min_categories_ = np.array(min_categories)
        if not np.issubdtype(min_categories_.dtype, np.signedinteger):
            raise ValueError(
                f"'min_categories' should have integral type. Got {min_categories_.dtype} instead."
            )
        if min_categories_.ndim > 0 and min_categories_.shape != n_categories_X.shape:
            raise ValueError(
                f"'min_categories' should have shape ({X.shape[1]},) when an array-like is "
                f"provided. Got {min_categories_.shape} instead."
            )
        return np.maximum(n_categories_X, min_categories_, dtype=np.int64)

    def _count(self, X, y_index, sample_weight):
        n_classes = len(self.class_count_)
        self.class_count_ += np.bincount(y_index, weights=sample_weight, minlength=n_classes)
        self.n_categories_ = self._validate_n_categories(X, self.min_categories)
        # Every feature's table, widened to the categories of this batch, stacked for one
        # kernel pass over X (rows offsets[j] + k of the stack: category k of feature j).
        widths = np.array([max(counts.shape[1], int(n)) for counts, n
                           in zip(self.category_count_, self.n_categories_)], dtype=np.intp)
        offsets = np.zeros(len(widths), dtype=np.intp)
        np.cumsum(widths[:-1], out=offsets[1:])
        stacked = np.empty((int(widths.sum()), n_classes))
        weights = np.empty(0) if sample_weight is None else sample_weight
        self._run("categorical_class_counts", X.size, np.ascontiguousarray(X, dtype=np.intp),
                  y_index, weights, offsets, stacked, min_work=_FIT_MIN_WORK_PER_THREAD)
        for j, (offset, width) in enumerate(zip(offsets, widths)):
            counts = self.category_count_[j]
            if width > counts.shape[1]:
                counts = np.pad(counts, [(0, 0), (0, width - counts.shape[1])], "constant")
            counts += stacked[offset:offset + width].T
            self.category_count_[j] = counts

    def _update_feature_log_prob(self, alpha):
        feature_log_prob = []
        for counts in self.category_count_:
            smoothed = counts + alpha
            feature_log_prob.append(np.log(smoothed) - np.log(smoothed.sum(axis=1).reshape(-1, 1)))
        self.feature_log_prob_ = feature_log_prob

    def _joint_log_likelihood(self, X):
        widths = np.array([table.shape[1] for table in self.feature_log_prob_], dtype=np.intp)
        unseen = X >= widths
        if unseen.any():
            row, feature = np.argwhere(unseen)[0]
            raise UnseenCategoryError(
                f"X[{row}, {feature}] = {X[row, feature]} is a category of feature {feature} "
                f"never seen in training (it has {widths[feature]} categories, 0 to "
                f"{widths[feature] - 1}); encode it as a known category, or reserve it with "
                "min_categories when fitting."
            )
        offsets = np.zeros(len(widths), dtype=np.intp)
        np.cumsum(widths[:-1], out=offsets[1:])
        log_prob = np.ascontiguousarray(np.concatenate([t.T for t in self.feature_log_prob_]))
        out = np.empty((X.shape[0], len(self.classes_)), dtype=np.float64)
        self._run("categorical_joint_log_likelihood", X.size * out.shape[1],
                  np.ascontiguousarray(X, dtype=np.intp), offsets, log_prob,
                  np.ascontiguousarray(self.class_log_prior_, dtype=np.float64), out)
        return out
