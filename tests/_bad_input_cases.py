"""Estimators, reference estimators and bad inputs of the bad-input suite (test_bad_input.py).

Each estimator is described once by an :class:`Entry`: how to build ours (on a
backend) and the reference (scikit-learn or xgboost) with the same
parameters, its small real data set, and how two fitted models' answers are
compared. Each kind of bad input is a function of the clean data that returns
the (fit X, fit y, predict X) triple a careful user could pass.
"""

import dataclasses
from functools import cache

import numpy as np
import scipy.sparse as sp

# ---------------------------------------------------------------------------
# Small real data sets (tens of rows: the suite checks behaviour, not accuracy)
# ---------------------------------------------------------------------------


@cache
def iris():
    """30 rows of iris (every fifth), 4 features, 3 classes."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return np.ascontiguousarray(X[::5]), y[::5]


@cache
def diabetes():
    """40 rows and 4 features of the diabetes regression data."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return np.ascontiguousarray(X[:40, :4]), y[:40]


@cache
def digit_counts():
    """40 digits, 8 of their pixel counts (0..16) as count features, 10 classes."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return np.ascontiguousarray(X[:40, 18:26]), y[:40]


# ---------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Entry:
    """One estimator of the suite.

    ``ours(backend)`` and ``reference()`` build unfitted estimators with the same
    parameters; ``data()`` gives (X, y); ``kind`` is "classifier", "regressor",
    "cluster" or "neighbors" and says how answers are compared;
    ``main_param`` is the size parameter the absurd-parameter cases set.
    """

    name: str
    ours: object
    reference: object
    data: object
    kind: str
    main_param: str
    kernel_overflow: str = "reference"  # what 1e300 data gives: "reference" or a message


def _fastscratch(name, **params):
    import fastscratch

    def build(backend="auto"):
        return getattr(fastscratch, name)(backend=backend, **params)

    return build


def _sklearn(module, name, **params):
    def build():
        import importlib

        return getattr(importlib.import_module(module), name)(**params)

    return build


XGB_PARAMS = {"n_estimators": 4, "max_depth": 3, "learning_rate": 0.5, "n_jobs": 1}

ENTRIES = {
    entry.name: entry for entry in [
        Entry("KNeighborsClassifier", _fastscratch("KNeighborsClassifier", n_neighbors=3),
              _sklearn("sklearn.neighbors", "KNeighborsClassifier", n_neighbors=3), iris,
              "classifier", "n_neighbors", kernel_overflow="overflow"),
        Entry("KNeighborsRegressor", _fastscratch("KNeighborsRegressor", n_neighbors=3),
              _sklearn("sklearn.neighbors", "KNeighborsRegressor", n_neighbors=3), diabetes,
              "regressor", "n_neighbors", kernel_overflow="overflow"),
        Entry("NearestNeighbors", _fastscratch("NearestNeighbors", n_neighbors=3),
              _sklearn("sklearn.neighbors", "NearestNeighbors", n_neighbors=3), iris,
              "neighbors", "n_neighbors", kernel_overflow="overflow"),
        Entry("KMeans", _fastscratch("KMeans", n_clusters=3, n_init=1, random_state=0),
              _sklearn("sklearn.cluster", "KMeans", n_clusters=3, n_init=1, random_state=0),
              iris, "cluster", "n_clusters"),
        Entry("GaussianNB", _fastscratch("GaussianNB"),
              _sklearn("sklearn.naive_bayes", "GaussianNB"), iris, "classifier",
              "var_smoothing"),
        Entry("MultinomialNB", _fastscratch("MultinomialNB"),
              _sklearn("sklearn.naive_bayes", "MultinomialNB"), digit_counts, "classifier",
              "alpha"),
        Entry("ComplementNB", _fastscratch("ComplementNB"),
              _sklearn("sklearn.naive_bayes", "ComplementNB"), digit_counts, "classifier",
              "alpha"),
        Entry("BernoulliNB", _fastscratch("BernoulliNB", binarize=4.0),
              _sklearn("sklearn.naive_bayes", "BernoulliNB", binarize=4.0), digit_counts,
              "classifier", "alpha"),
        Entry("CategoricalNB", _fastscratch("CategoricalNB"),
              _sklearn("sklearn.naive_bayes", "CategoricalNB"), digit_counts, "classifier",
              "alpha"),
        Entry("XGBClassifier", _fastscratch("XGBClassifier", **XGB_PARAMS),
              _sklearn("xgboost", "XGBClassifier", tree_method="hist", **XGB_PARAMS), iris,
              "classifier", "max_depth"),
        Entry("XGBRegressor", _fastscratch("XGBRegressor", **XGB_PARAMS),
              _sklearn("xgboost", "XGBRegressor", tree_method="hist", **XGB_PARAMS), diabetes,
              "regressor", "max_depth"),
    ]
}


def fit_answer(model, X, y, X_query, kind):
    """Fit ``model`` on (X, y) and return its answers on ``X_query`` as a tuple of arrays."""
    if kind == "cluster":
        model.fit(X)
        return (np.asarray(model.predict(X_query)), np.asarray([model.inertia_]))
    if kind == "neighbors":
        model.fit(X)
        distances, indices = model.kneighbors(X_query)
        return np.asarray(distances), np.asarray(indices)
    model.fit(X, y)
    if kind == "classifier":
        return np.asarray(model.predict(X_query)), np.asarray(model.predict_proba(X_query))
    return (np.asarray(model.predict(X_query), dtype=np.float64),)


def assert_same_answers(got, expected, kind, name):
    """Our answers equal the reference's: labels exactly (k-means: the same partition),
    probabilities, distances and predictions to float tolerances (xgboost sums its trees
    in float32)."""
    from numpy.testing import assert_allclose, assert_array_equal

    rtol, atol = (1e-5, 1e-5) if name.startswith("XGB") else (1e-7, 1e-9)
    if kind == "cluster":
        from sklearn.metrics import adjusted_rand_score

        assert adjusted_rand_score(expected[0], got[0]) == 1.0
        assert_allclose(got[1], expected[1], rtol=1e-6)
        return
    if kind == "classifier":
        assert_array_equal(got[0], expected[0])
        assert_allclose(got[1], expected[1], rtol=rtol, atol=atol)
        return
    if kind == "neighbors":
        assert_allclose(got[0], expected[0], rtol=1e-7, atol=1e-12)
        # Equidistant neighbours may come in either order (ties break by index here,
        # by tree order in scikit-learn): compare the indices at untied distances.
        distances = np.asarray(expected[0])
        tied = np.zeros(distances.shape, dtype=bool)
        tied[:, 1:] |= distances[:, 1:] == distances[:, :-1]
        tied[:, :-1] |= distances[:, 1:] == distances[:, :-1]
        tied[:, -1] = True  # the k-th may tie with the (k+1)-th, which is not returned
        assert_array_equal(got[1][~tied], expected[1][~tied])
        return
    # Relative to the target's spread.
    assert_allclose(got[0], expected[0], rtol=rtol, atol=atol * max(1.0, np.ptp(expected[0])))


# ---------------------------------------------------------------------------
# Bad inputs: each returns (X_fit, y_fit, X_query) from the clean (X, y)
# ---------------------------------------------------------------------------
def _with(X, row, column, value):
    X = np.array(X, dtype=np.float64)
    X[row, column] = value
    return X


def _object_numbers(X):
    return np.array(X, dtype=object)


def _strings(X):
    out = np.array(X, dtype=object)
    out[0, 0] = "a"
    return out


def _strided(X):
    wide = np.zeros((X.shape[0] * 2, X.shape[1] * 2))
    wide[::2, ::2] = X
    return wide[::2, ::2]


INPUTS = {
    # name: (make(X, y) -> (X_fit, y_fit, X_query))
    "nan_X": lambda X, y: (_with(X, 1, 0, np.nan), y, X),
    "inf_X": lambda X, y: (_with(X, 1, 0, np.inf), y, X),
    "nan_X_predict": lambda X, y: (X, y, _with(X, 1, 0, np.nan)),
    "inf_X_predict": lambda X, y: (X, y, _with(X, 1, 0, -np.inf)),
    "nan_y": lambda X, y: (X, np.where(np.arange(y.shape[0]) == 1, np.nan, y.astype(float)), X),
    "string_y_mixed": lambda X, y: (X, np.array(["a"] + list(y[1:]), dtype=object), X),
    "empty": lambda X, y: (X[:0], y[:0], X),
    "zero_features": lambda X, y: (X[:, :0], y, X[:, :0]),
    "one_sample": lambda X, y: (X[:1], y[:1], X),
    "one_class": lambda X, y: (X, np.zeros_like(y), X),
    "object_numbers": lambda X, y: (_object_numbers(X), y, _object_numbers(X)),
    "strings": lambda X, y: (_strings(X), y, X),
    "complex": lambda X, y: (X + 1j, y, X),
    "bool": lambda X, y: (X > np.median(X), y, X > np.median(X)),
    "fortran": lambda X, y: (np.asfortranarray(X), y, np.asfortranarray(X)),
    "strided": lambda X, y: (_strided(X), y, _strided(X)),
    "float32": lambda X, y: (X.astype(np.float32), y, X.astype(np.float32)),
    "three_d": lambda X, y: (X[:, :, None], y, X),
    "wrong_features": lambda X, y: (X, y, X[:, :-1]),
    "one_d": lambda X, y: (X[:, 0], y, X),
    "y_length": lambda X, y: (X, y[:-1], X),
    "huge": lambda X, y: (X * 1e300, y, X * 1e300),
    "tiny": lambda X, y: (X * 1e-300, y, X * 1e-300),
}


def malformed_csr(kind, X):
    """A CSR matrix of X's shape whose index arrays are broken as ``kind`` says."""
    matrix = sp.csr_matrix(X)
    indices = matrix.indices.copy()
    indptr = matrix.indptr.copy()
    if kind == "column_out_of_range":
        indices[len(indices) // 2] = X.shape[1] + 5
    elif kind == "negative_column":
        indices[len(indices) // 2] = -1
    elif kind == "decreasing_indptr":
        indptr[2], indptr[3] = indptr[3], indptr[2]
    else:
        raise ValueError(kind)
    broken = sp.csr_matrix(X.shape)
    broken.data, broken.indices, broken.indptr = matrix.data.copy(), indices, indptr
    return broken
