"""Naive Bayes: every kernel backend against the NumPy reference, every model against scikit-learn.

Tolerances: ``predict_proba`` within 1e-9 absolute and fitted attributes within
1e-12 (relative to their scale) of scikit-learn on real data; compiled
backends within 1e-12 of the NumPy reference (they differ only in summation
order) and bit-identical with 1 and 2 threads.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.naive_bayes as sk
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastscratch
from fastscratch.kernels import available_backends, get_kernel
from fastscratch.naive_bayes import (
    BernoulliNB,
    CategoricalNB,
    ComplementNB,
    GaussianNB,
    MultinomialNB,
    UnseenCategoryError,
)

PROBA_ATOL = 1e-9
ATTR_RTOL = 1e-12
KERNEL_RTOL = 1e-12
# Compiled Gaussian kernels: expanded form within this bound, else the direct form.
GAUSSIAN_ATOL = 2e-10
DISCRETE = ["MultinomialNB", "ComplementNB", "BernoulliNB", "CategoricalNB"]
FASTEST = available_backends()[0]


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


def gaussian_data(name):
    return {"iris": load_iris, "wine": load_wine}[name](return_X_y=True)


# ------------------------------------------------------------------------------------------
# Kernels against the NumPy reference
# ------------------------------------------------------------------------------------------

def run_kernel(name, backend, *args, n_threads=2):
    get_kernel(name, backend)(*args, n_threads)


def gaussian_args(rng, n_samples, n_features, n_classes, dtype):
    X = (rng.standard_normal((n_samples, n_features)) * 3 + 1).astype(dtype)
    mean_t = rng.standard_normal((n_features, n_classes))
    inv_var_t = 1.0 / rng.uniform(0.1, 4.0, (n_features, n_classes))
    class_const = rng.standard_normal(n_classes)
    return X, mean_t, inv_var_t, class_const


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1000, 50, 10), (333, 1, 3), (17, 7, 1), (0, 4, 2), (600, 13, 2)])
def test_gaussian_kernel_matches_reference(backend, dtype, shape, rng):
    X, mean_t, inv_var_t, class_const = gaussian_args(rng, *shape, dtype)
    out = np.empty((shape[0], shape[2]))
    run_kernel("gaussian_joint_log_likelihood", backend, X, mean_t, inv_var_t, class_const, out)
    np.testing.assert_allclose(out, direct_gaussian(X, mean_t, inv_var_t, class_const),
                               rtol=KERNEL_RTOL, atol=GAUSSIAN_ATOL)
    reference = np.empty_like(out)
    run_kernel("gaussian_joint_log_likelihood", "numpy", X, mean_t, inv_var_t, class_const, reference)
    np.testing.assert_allclose(out, reference, rtol=KERNEL_RTOL, atol=GAUSSIAN_ATOL)


def direct_gaussian(X, mean_t, inv_var_t, class_const):
    X64 = X.astype(np.float64)
    return class_const - 0.5 * (((X64[:, :, None] - mean_t[None]) ** 2) * inv_var_t[None]).sum(1)


def test_gaussian_kernel_falls_back_to_direct_form_where_expanded_cancels(backend, rng):
    # Class 0 sits at 1e6 with spread 0.01: near it the expanded form loses every
    # digit, so those rows must come from the direct form; class 1 rows at 0 do not.
    n_features = 6
    mean_t = np.stack([np.full(n_features, 1e6), np.zeros(n_features)], axis=1)
    mean_t[:, 1] += rng.standard_normal(n_features)
    inv_var_t = np.stack([np.full(n_features, 1e4), np.full(n_features, 1.0)], axis=1)
    class_const = np.array([-0.3, -1.2])
    X = np.concatenate([1e6 + 0.01 * rng.standard_normal((50, n_features)),
                        rng.standard_normal((50, n_features))])
    out = np.empty((100, 2))
    run_kernel("gaussian_joint_log_likelihood", backend, X, mean_t, inv_var_t, class_const, out)
    expected = direct_gaussian(X, mean_t, inv_var_t, class_const)
    # Near class 0 the log-likelihood is O(1): absolute accuracy, not just relative.
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def discrete_weights(rng, n_features, n_classes):
    return rng.standard_normal((n_features, n_classes)), rng.standard_normal(n_classes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threshold", [np.nan, 0.0, 2.5])
@pytest.mark.parametrize("shape", [(700, 40, 10), (300, 1, 2), (5, 9, 1), (0, 3, 2)])
def test_discrete_kernels_dense_and_csr_match_reference(backend, dtype, threshold, shape, rng):
    n_samples, n_features, n_classes = shape
    X = rng.poisson(1.0, (n_samples, n_features)).astype(dtype)
    X[rng.random(X.shape) < 0.6] = 0  # sparse-ish, with empty rows
    weights_t, class_const = discrete_weights(rng, n_features, n_classes)
    values = X.astype(np.float64) if np.isnan(threshold) else (X > threshold).astype(np.float64)
    expected = values @ weights_t + class_const

    dense = np.empty((n_samples, n_classes))
    run_kernel("discrete_joint_log_likelihood_dense", backend, X, weights_t, class_const, threshold, dense)
    np.testing.assert_allclose(dense, expected, rtol=KERNEL_RTOL, atol=1e-12)

    csr = sp.csr_matrix(X)
    for index_dtype in (np.int32, np.int64):
        out = np.empty((n_samples, n_classes))
        run_kernel("discrete_joint_log_likelihood_csr", backend, csr.data, csr.indices.astype(index_dtype),
                   csr.indptr.astype(index_dtype), weights_t, class_const, threshold, out)
        np.testing.assert_allclose(out, expected, rtol=KERNEL_RTOL, atol=1e-12)


def test_csr_kernel_unsorted_indices_and_duplicates(backend, rng):
    # Row 0 stores column 2 twice (summed) and columns out of order.
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    indices = np.array([2, 0, 2, 1, 0], dtype=np.int32)
    indptr = np.array([0, 3, 3, 5], dtype=np.int32)
    weights_t, class_const = discrete_weights(rng, 3, 4)
    out = np.empty((3, 4))
    run_kernel("discrete_joint_log_likelihood_csr", backend, data, indices, indptr, weights_t,
               class_const, np.nan, out)
    dense = sp.csr_matrix((data, indices, indptr), shape=(3, 3)).toarray()
    np.testing.assert_allclose(out, dense @ weights_t + class_const, rtol=KERNEL_RTOL)


@pytest.mark.parametrize("shape", [(500, 12, 5), (40, 1, 1), (0, 3, 2)])
def test_categorical_kernel_matches_reference(backend, shape, rng):
    n_samples, n_features, n_classes = shape
    widths = rng.integers(1, 6, n_features)
    X = np.ascontiguousarray((rng.random((n_samples, n_features)) * widths).astype(np.intp))
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.intp)
    log_prob = rng.standard_normal((widths.sum(), n_classes))
    class_const = rng.standard_normal(n_classes)
    out = np.empty((n_samples, n_classes))
    run_kernel("categorical_joint_log_likelihood", backend, X, offsets, log_prob, class_const, out)
    expected = class_const + sum(log_prob[offsets[j] + X[:, j]] for j in range(n_features))
    np.testing.assert_allclose(out, expected.reshape(n_samples, n_classes), rtol=KERNEL_RTOL, atol=1e-12)


@pytest.mark.parametrize("exponentiate", [False, True])
def test_normalize_kernel(backend, exponentiate, rng):
    jll = rng.standard_normal((400, 6)) * 300
    jll[0] = [-np.inf, 0.0, -np.inf, 0.0, -1e300, 5.0]  # -inf entries and a tie
    jll[1] = 7.0  # all tied
    jll[2] = [-np.inf] * 6  # no finite entry: NaN, as scikit-learn
    out = np.empty_like(jll)
    run_kernel("nb_normalize", backend, jll, exponentiate, out)
    from scipy.special import logsumexp
    with np.errstate(invalid="ignore"):
        expected = jll - logsumexp(jll, axis=1, keepdims=True)
    if exponentiate:
        expected = np.exp(expected)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert np.all(np.isnan(out[2]))
    inplace = jll.copy()
    run_kernel("nb_normalize", backend, inplace, exponentiate, inplace)
    np.testing.assert_array_equal(inplace, out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_result_with_one_and_two_threads(optimised_backend, dtype, rng):
    X, mean_t, inv_var_t, class_const = gaussian_args(rng, 3001, 20, 7, dtype)
    outs = []
    for n_threads in (1, 2):
        out = np.empty((3001, 7))
        run_kernel("gaussian_joint_log_likelihood", optimised_backend, X, mean_t, inv_var_t,
                   class_const, out, n_threads=n_threads)
        dense = np.empty((3001, 7))
        run_kernel("discrete_joint_log_likelihood_dense", optimised_backend, np.abs(X), mean_t,
                   class_const, np.nan, dense, n_threads=n_threads)
        csr = sp.csr_matrix(np.where(X > 1, X, 0))
        sparse = np.empty((3001, 7))
        run_kernel("discrete_joint_log_likelihood_csr", optimised_backend, csr.data, csr.indices,
                   csr.indptr, mean_t, class_const, 0.5, sparse, n_threads=n_threads)
        proba = np.empty((3001, 7))
        run_kernel("nb_normalize", optimised_backend, out, True, proba, n_threads=n_threads)
        outs.append((out, dense, sparse, proba))
    for one, two in zip(*outs):
        np.testing.assert_array_equal(one, two)


# ------------------------------------------------------------------------------------------
# Estimators against scikit-learn
# ------------------------------------------------------------------------------------------

def assert_attributes_equal(ours, theirs, names):
    for name in names:
        a, b = getattr(ours, name), getattr(theirs, name)
        if isinstance(b, list):
            assert len(a) == len(b), name
            for x, y in zip(a, b):
                np.testing.assert_allclose(x, y, rtol=ATTR_RTOL, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=ATTR_RTOL, atol=1e-12 * (1 + np.max(np.abs(b))),
                                       err_msg=name)


def assert_same_predictions(ours, theirs, X, X_ours=None):
    X_ours = X if X_ours is None else X_ours
    np.testing.assert_allclose(ours.predict_proba(X_ours), theirs.predict_proba(X), rtol=0, atol=PROBA_ATOL)
    np.testing.assert_array_equal(ours.predict(X_ours), theirs.predict(X))
    # Log-probabilities: absolute where they are near 0, relative where very negative.
    np.testing.assert_allclose(ours.predict_log_proba(X_ours), theirs.predict_log_proba(X), rtol=1e-12,
                               atol=PROBA_ATOL)
    np.testing.assert_allclose(ours.predict_joint_log_proba(X_ours), theirs.predict_joint_log_proba(X),
                               rtol=1e-12, atol=1e-9)
    assert ours.score(X_ours, theirs.predict(X)) == 1.0


GAUSSIAN_ATTRIBUTES = ["theta_", "var_", "class_count_", "class_prior_", "epsilon_"]


@pytest.mark.parametrize("dataset", ["iris", "wine"])
@pytest.mark.parametrize("params", [{}, {"var_smoothing": 1e-3}, {"priors": [0.5, 0.3, 0.2]}])
def test_gaussian_matches_sklearn(backend, dataset, params):
    X, y = gaussian_data(dataset)
    ours = GaussianNB(backend=backend, **params).fit(X, y)
    theirs = sk.GaussianNB(**params).fit(X, y)
    assert_attributes_equal(ours, theirs, GAUSSIAN_ATTRIBUTES)
    assert_same_predictions(ours, theirs, X)
    # Away from the training data too (where the posteriors are not all 0 or 1).
    X_new = X.mean(0) + np.random.default_rng(1).standard_normal((300, X.shape[1])) * X.std(0) * 2
    assert_same_predictions(ours, theirs, X_new)


@pytest.mark.parametrize("dataset", ["iris", "wine"])
def test_gaussian_sample_weight_matches_sklearn(backend, dataset):
    X, y = gaussian_data(dataset)
    weights = np.random.default_rng(0).uniform(0, 3, len(y))
    weights[:10] = 0
    ours = GaussianNB(backend=backend).fit(X, y, sample_weight=weights)
    theirs = sk.GaussianNB().fit(X, y, sample_weight=weights)
    assert_attributes_equal(ours, theirs, GAUSSIAN_ATTRIBUTES)
    assert_same_predictions(ours, theirs, X)


@pytest.mark.parametrize("dataset", ["iris", "wine"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_partial_fit_matches_sklearn_partial_fit(dataset, weighted):
    X, y = gaussian_data(dataset)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    weights = np.random.default_rng(1).uniform(0.5, 2, len(y)) if weighted else None
    ours, theirs = GaussianNB(backend=FASTEST), sk.GaussianNB()
    classes = np.unique(y)
    for batch in np.array_split(np.arange(len(y)), 4):
        kwargs = {} if weights is None else {"sample_weight": weights[batch]}
        ours.partial_fit(X[batch], y[batch], classes=classes, **kwargs)
        theirs.partial_fit(X[batch], y[batch], classes=classes, **kwargs)
        assert_attributes_equal(ours, theirs, GAUSSIAN_ATTRIBUTES)
    assert_same_predictions(ours, theirs, X)
    # epsilon_ is recomputed per batch (as scikit-learn): not the same as one fit.
    assert ours.epsilon_ != GaussianNB().fit(X, y).epsilon_


def test_gaussian_float32_stays_float32(backend):
    X, y = gaussian_data("wine")
    X32 = X.astype(np.float32)
    ours = GaussianNB(backend=backend).fit(X32, y)
    theirs = sk.GaussianNB().fit(X32, y)
    assert ours.theta_.dtype == ours.var_.dtype == theirs.theta_.dtype == np.float32
    # scikit-learn sums in float32, we in float64: both round to float32 at the end.
    np.testing.assert_allclose(ours.theta_, theirs.theta_, rtol=1e-5)
    np.testing.assert_allclose(ours.var_, theirs.var_, rtol=1e-4)
    assert ours._check_X(X32).dtype == np.float32  # no float64 copy for the kernel
    np.testing.assert_allclose(ours.predict_proba(X32), GaussianNB(backend="numpy").fit(X32, y)
                               .predict_proba(X32), atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X32), theirs.predict(X32))


def discrete_pair(name, backend, **params):
    return getattr(fastscratch, name)(backend=backend, **params), getattr(sk, name)(**params)


DISCRETE_ATTRIBUTES = {
    "MultinomialNB": ["class_count_", "feature_count_", "feature_log_prob_", "class_log_prior_"],
    "ComplementNB": ["class_count_", "feature_count_", "feature_all_", "feature_log_prob_",
                     "class_log_prior_"],
    "BernoulliNB": ["class_count_", "feature_count_", "feature_log_prob_", "class_log_prior_"],
    "CategoricalNB": ["class_count_", "category_count_", "feature_log_prob_", "class_log_prior_",
                      "n_categories_"],
}

DISCRETE_PARAMS = {
    "MultinomialNB": [{}, {"alpha": 0.3, "fit_prior": False}, {"class_prior": [0.1] * 10},
                      {"alpha": np.linspace(0.1, 2, 64)}],
    "ComplementNB": [{}, {"norm": True}, {"alpha": 0.01}],
    "BernoulliNB": [{}, {"binarize": 6.0, "alpha": 0.5}, {"binarize": None}],
    "CategoricalNB": [{}, {"alpha": 0.2, "min_categories": 20},
                      {"min_categories": np.full(64, 18), "fit_prior": False}],
}


def check_discrete_against_sklearn(backend, digits, name, params):
    X, y = digits
    if name == "BernoulliNB" and params.get("binarize", 0.0) is None:
        X = (X > 8).astype(float)
    weights = np.random.default_rng(0).uniform(0, 2, len(y))
    for sample_weight in (None, weights):
        ours, theirs = discrete_pair(name, backend, **params)
        ours.fit(X, y, sample_weight=sample_weight)
        theirs.fit(X, y, sample_weight=sample_weight)
        assert_attributes_equal(ours, theirs, DISCRETE_ATTRIBUTES[name])
        assert_same_predictions(ours, theirs, X)
        if name != "CategoricalNB":
            # CSR input: fit and predict without densifying; same answers.
            X_csr = sp.csr_matrix(X)
            assert_same_predictions(ours, theirs, X, X_csr)
            ours_csr = getattr(fastscratch, name)(backend=backend, **params)
            ours_csr.fit(X_csr, y, sample_weight=sample_weight)
            assert_attributes_equal(ours_csr, theirs, DISCRETE_ATTRIBUTES[name])


@pytest.mark.parametrize("name", DISCRETE)
def test_discrete_matches_sklearn_dense_and_csr(backend, digits, name):
    check_discrete_against_sklearn(backend, digits, name, {})


@pytest.mark.parametrize("name, params", [(n, p) for n in DISCRETE for p in DISCRETE_PARAMS[n][1:]])
def test_discrete_parameters_match_sklearn(digits, name, params):
    check_discrete_against_sklearn(FASTEST, digits, name, params)


@pytest.mark.parametrize("name", DISCRETE)
@pytest.mark.parametrize("weighted", [False, True])
def test_discrete_partial_fit_matches_sklearn_and_fit(digits, name, weighted):
    X, y = digits
    weights = np.random.default_rng(1).uniform(0.5, 2, len(y)) if weighted else None
    params = {"min_categories": 17} if name == "CategoricalNB" else {}
    ours, theirs = discrete_pair(name, FASTEST, **params)
    for batch in np.array_split(np.arange(len(y)), 5):
        kwargs = {} if weights is None else {"sample_weight": weights[batch]}
        ours.partial_fit(X[batch], y[batch], classes=np.arange(10), **kwargs)
        theirs.partial_fit(X[batch], y[batch], classes=np.arange(10), **kwargs)
        assert_attributes_equal(ours, theirs, DISCRETE_ATTRIBUTES[name])
    assert_same_predictions(ours, theirs, X)
    whole = getattr(fastscratch, name)(backend=FASTEST, **params).fit(X, y, sample_weight=weights)
    for attribute in DISCRETE_ATTRIBUTES[name]:
        a, b = getattr(ours, attribute), getattr(whole, attribute)
        for x, z in zip(a, b) if isinstance(a, list) else [(a, b)]:
            np.testing.assert_allclose(x, z, rtol=1e-12, atol=1e-12, err_msg=attribute)
    np.testing.assert_allclose(ours.predict_proba(X), whole.predict_proba(X), atol=PROBA_ATOL)


def test_discrete_partial_fit_csr_batches(digits):
    X, y = digits
    ours, theirs = discrete_pair("MultinomialNB", FASTEST)
    for batch in np.array_split(np.arange(len(y)), 3):
        ours.partial_fit(sp.csr_matrix(X[batch]), y[batch], classes=np.arange(10))
        theirs.partial_fit(X[batch], y[batch], classes=np.arange(10))
    assert_attributes_equal(ours, theirs, DISCRETE_ATTRIBUTES["MultinomialNB"])
    assert_same_predictions(ours, theirs, X, sp.csr_matrix(X))


@pytest.mark.parametrize("name", ["MultinomialNB", "ComplementNB", "BernoulliNB"])
def test_discrete_float32_dense_and_csr(backend, digits, name):
    X, y = digits
    X32 = X.astype(np.float32)
    ours = getattr(fastscratch, name)(backend=backend).fit(X32, y)
    theirs = getattr(sk, name)().fit(X, y)
    assert ours._check_X(X32).dtype == np.float32
    assert ours._check_X(sp.csr_matrix(X32)).dtype == np.float32
    assert_same_predictions(ours, theirs, X, X32)  # small integers: exact in float32
    assert_same_predictions(ours, theirs, X, sp.csr_matrix(X32))


def test_sparse_text_like_data(backend, rng):
    # A larger, genuinely sparse problem: many features, few non-zeros.
    X = sp.random(800, 3000, density=0.01, format="csr", random_state=0,
                  data_rvs=lambda n: rng.integers(1, 5, n).astype(float))
    y = rng.integers(0, 4, 800)
    for name in ("MultinomialNB", "ComplementNB", "BernoulliNB"):
        ours, theirs = discrete_pair(name, backend)
        ours.fit(X, y)
        theirs.fit(X, y)
        assert_attributes_equal(ours, theirs, DISCRETE_ATTRIBUTES[name])
        assert_same_predictions(ours, theirs, X)


# ------------------------------------------------------------------------------------------
# Edge cases and bad input
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["GaussianNB", *DISCRETE])
def test_single_class_fits_as_sklearn(name, digits):
    X, _ = digits
    y = np.full(len(X), "only")
    ours, theirs = discrete_pair(name, FASTEST)
    ours.fit(X[:50], y[:50])
    theirs.fit(X[:50], y[:50])
    np.testing.assert_array_equal(ours.predict(X[:50]), theirs.predict(X[:50]))
    np.testing.assert_allclose(ours.predict_proba(X[:50]), theirs.predict_proba(X[:50]), atol=PROBA_ATOL)


@pytest.mark.parametrize("name", ["GaussianNB", *DISCRETE])
def test_string_labels_and_binary(name, digits):
    X, y = digits
    mask = y < 2
    labels = np.where(y[mask] == 0, "zero", "one")
    ours, theirs = discrete_pair(name, FASTEST)
    ours.fit(X[mask], labels)
    theirs.fit(X[mask], labels)
    assert_same_predictions(ours, theirs, X[mask])


@pytest.mark.parametrize("name", ["MultinomialNB", "ComplementNB"])
def test_negative_counts_rejected(name, digits):
    X, y = digits
    X = X.copy()
    X[3, 5] = -1
    with pytest.raises(ValueError, match="Negative values"):
        getattr(fastscratch, name)().fit(X, y)
    with pytest.raises(ValueError, match="Negative values"):
        getattr(fastscratch, name)().fit(sp.csr_matrix(X), y)


@pytest.mark.parametrize("name", ["GaussianNB", *DISCRETE])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_rejected(name, bad, digits):
    X, y = digits
    X = X.copy()
    X[0, 0] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        getattr(fastscratch, name)().fit(X, y)
    model = getattr(fastscratch, name)().fit(digits[0], y)
    with pytest.raises(ValueError, match="NaN|infinity"):
        model.predict(X)


@pytest.mark.parametrize("name", ["GaussianNB", *DISCRETE])
def test_wrong_number_of_features(name, digits):
    X, y = digits
    model = getattr(fastscratch, name)().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :10])
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :10], y)


@pytest.mark.parametrize("name", ["GaussianNB", *DISCRETE])
def test_partial_fit_needs_classes_first(name, digits):
    X, y = digits
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        getattr(fastscratch, name)().partial_fit(X, y)
    model = getattr(fastscratch, name)().partial_fit(X[y < 5], y[y < 5], classes=np.arange(5))
    with pytest.raises(ValueError, match="do not exist in the initial classes"):
        model.partial_fit(X, y)
    with pytest.raises(ValueError, match="is not the same as on last call"):
        model.partial_fit(X[y < 5], y[y < 5], classes=np.arange(6))


def test_categorical_unseen_category(digits):
    X, y = digits
    ours = CategoricalNB().fit(X[:, :8], y)
    X_new = X[:5, :8].copy()
    X_new[2, 3] = 40
    with pytest.raises(UnseenCategoryError, match="min_categories"):
        ours.predict(X_new)
    with pytest.raises(IndexError):  # the same kind of error as scikit-learn's
        sk.CategoricalNB().fit(X[:, :8], y).predict(X_new)
    # Reserved with min_categories: predicted, as scikit-learn.
    ours = CategoricalNB(min_categories=41).fit(X[:, :8], y)
    theirs = sk.CategoricalNB(min_categories=41).fit(X[:, :8], y)
    assert_same_predictions(ours, theirs, X_new)


def test_categorical_min_categories_errors(digits):
    X, y = digits
    with pytest.raises(ValueError, match="min_categories"):
        CategoricalNB(min_categories=np.full(3, 20)).fit(X, y)
    with pytest.raises(ValueError, match="min_categories"):
        CategoricalNB(min_categories=np.full(64, 2.5)).fit(X, y)


def test_parameter_errors_name_the_parameter(digits):
    X, y = digits
    with pytest.raises(ValueError, match="alpha"):
        MultinomialNB(alpha=-1).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        MultinomialNB(alpha=np.ones(3)).fit(X, y)
    with pytest.raises(ValueError, match="class_prior"):
        MultinomialNB(class_prior=[0.5, 0.5]).fit(X, y)
    with pytest.raises(ValueError, match="priors"):
        GaussianNB(priors=[0.5, 0.5]).fit(X, y)
    with pytest.raises(ValueError, match="priors"):
        GaussianNB(priors=[0.5] * 10).fit(X, y)
    with pytest.raises(ValueError, match="binarize"):
        BernoulliNB(binarize=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="backend"):
        GaussianNB(backend="fortran").fit(X, y)
    with pytest.raises(ValueError, match="Unknown label type"):
        GaussianNB().fit(X, np.linspace(0, 1, len(y)))


def test_force_alpha_false_clips_with_warning(digits):
    X, y = digits
    with pytest.warns(UserWarning, match="alpha too small"):
        ours = MultinomialNB(alpha=0.0, force_alpha=False).fit(X, y)
    with pytest.warns(UserWarning, match="alpha too small"):
        theirs = sk.MultinomialNB(alpha=0.0, force_alpha=False).fit(X, y)
    assert_attributes_equal(ours, theirs, DISCRETE_ATTRIBUTES["MultinomialNB"])


def test_backends_agree_through_estimators(digits):
    X, y = digits
    models = [GaussianNB(backend=b).fit(X, y) for b in available_backends()]
    reference = models[-1].predict_proba(X)  # numpy is last
    for model in models:
        np.testing.assert_allclose(model.predict_proba(X), reference, atol=1e-12)


def test_global_backend_setting_is_used(digits):
    X, y = digits
    with fastscratch.config_context(backend="numpy"):
        proba = GaussianNB().fit(X, y).predict_proba(X)
    np.testing.assert_allclose(proba, GaussianNB(backend=FASTEST).fit(X, y).predict_proba(X), atol=1e-12)


@parametrize_with_checks([
    GaussianNB(backend=FASTEST),
    MultinomialNB(backend=FASTEST),
    ComplementNB(backend=FASTEST),
    BernoulliNB(backend=FASTEST),
    CategoricalNB(backend=FASTEST),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)
