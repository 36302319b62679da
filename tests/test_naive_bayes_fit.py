"""Naive Bayes fits: the fit kernels against the NumPy reference, the fits against scikit-learn.

Tolerances: fitted attributes within 1e-12 relative (``ATTR_RTOL``) of
scikit-learn on float64 data; float32 data are summed in float64 here and in
float32 by scikit-learn, so they are compared with scikit-learn fitted on the
same values in float64, to float32 rounding (``F32_RTOL``), and to scikit-learn
on float32 within float32 summation error. Compiled kernels within 1e-12 of
the NumPy reference (they sum in a different order) and bit-identical with 1
and 2 threads.
"""

from functools import cache

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.naive_bayes as sk
from sklearn.datasets import load_digits, load_iris, load_wine

import fastscratch
from fastscratch.kernels import get_kernel
from fastscratch.kernels.naive_bayes_numpy import fit_partition

ATTR_RTOL = 1e-12
KERNEL_RTOL = 1e-12
F32_RTOL = 2.5e-7  # float32 rounding of the same float64 value, within 2 ulp
DISCRETE = ["MultinomialNB", "ComplementNB", "BernoulliNB"]


def load(name):
    return {"iris": load_iris, "wine": load_wine, "digits": load_digits}[name](return_X_y=True)


@cache
def text_like_csr(n_samples=1500, n_features=4000, n_classes=20, density=0.005, seed=0):
    """20-newsgroups-like counts: a shared vocabulary and a block of words per class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_samples)
    shared = sp.random(n_samples, n_features, density=density, format="csr", random_state=seed,
                       data_rvs=lambda m: rng.poisson(2.0, m) + 1.0)
    block = n_features // n_classes
    own_columns = y[:, None] * block + rng.integers(0, block, (n_samples, 5))
    own = sp.csr_matrix((rng.integers(1, 4, 5 * n_samples).astype(np.float64),
                         own_columns.ravel(), np.arange(0, 5 * n_samples + 1, 5)),
                        shape=(n_samples, n_features))
    return (shared + own).tocsr(), y


def assert_close(ours, theirs, name, rtol=ATTR_RTOL):
    theirs = np.asarray(theirs, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), theirs, rtol=rtol,
                               atol=rtol * (1 + np.max(np.abs(theirs), initial=0)), err_msg=name)


# ------------------------------------------------------------------------------------------
# Kernels against the NumPy reference
# ------------------------------------------------------------------------------------------

def moments(backend, X, y_index, weights, n_classes, n_threads=2):
    class_weight = np.empty(n_classes)
    mean = np.empty((n_classes, X.shape[1]))
    m2 = np.empty((n_classes, X.shape[1]))
    get_kernel("gaussian_class_moments", backend)(X, y_index, weights, class_weight, mean, m2,
                                                  n_threads)
    return class_weight, mean, m2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(30_000, 3, 3), (9_000, 40, 100), (500, 1, 2), (7, 5, 10),
                                   (1, 2, 1)])
def test_moments_kernel_matches_reference(backend, dtype, weighted, shape, rng):
    n_samples, n_features, n_classes = shape
    # A large offset against a small spread: a sum of squares about the origin would cancel.
    X = (1e4 + rng.standard_normal((n_samples, n_features))).astype(dtype)
    X[:, 0] = 5.0  # a constant column
    y_index = rng.integers(0, n_classes, n_samples).astype(np.intp)
    weights = rng.uniform(0, 2, n_samples) if weighted else np.empty(0)
    if weighted:
        weights[y_index == 0] = 0.0  # a class with no weight
    ours = moments(backend, X, y_index, weights, n_classes)
    reference = moments("numpy", X, y_index, weights, n_classes)
    for got, expected, name in zip(ours, reference, ["class_weight", "mean", "m2"]):
        assert_close(got, expected, name, rtol=KERNEL_RTOL)
    # The centred sums of squares are exact to working precision, not just to the scale of X.
    np.testing.assert_allclose(ours[2], reference[2], rtol=1e-10, atol=1e-12)
    absent = np.setdiff1d(np.arange(n_classes), y_index)
    assert np.all(ours[0][absent] == 0) and np.all(ours[1][absent] == 0)


def test_moments_kernel_spans_several_chunks():
    assert fit_partition(30_000, 3, 3)[0] > 2  # the parametrised case above is chunked
    assert fit_partition(10, 3, 3)[0] == 1
    assert fit_partition(10**6, 10**4, 100)[0] == 1  # tables beyond the budget: serial


def sums(name, backend, args, n_classes, n_features, n_threads=2):
    out = np.full((n_classes, n_features), np.nan)
    get_kernel(name, backend)(*args, out, n_threads)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threshold", [np.nan, 0.0, 1.5])
@pytest.mark.parametrize("shape", [(12_000, 30, 5), (300, 1, 3), (50, 200, 1)])
def test_feature_sums_kernels_match_reference(backend, dtype, threshold, shape, rng):
    if shape[0] > 4096:
        assert fit_partition(*shape)[0] > 1  # several chunks
    n_samples, n_features, n_classes = shape
    X = np.where(rng.random((n_samples, n_features)) < 0.2,
                 rng.integers(1, 5, (n_samples, n_features)), 0).astype(dtype)
    y_index = rng.integers(0, n_classes, n_samples).astype(np.intp)
    for weights in (np.empty(0), rng.uniform(0, 2, n_samples)):
        dense = sums("class_feature_sums_dense", backend,
                     (X, y_index, weights, threshold), n_classes, n_features)
        expected = sums("class_feature_sums_dense", "numpy",
                        (X, y_index, weights, threshold), n_classes, n_features)
        np.testing.assert_allclose(dense, expected, rtol=KERNEL_RTOL)
        for index_dtype in (np.int32, np.int64):
            csr = sp.csr_matrix(X)
            args = (csr.data, csr.indices.astype(index_dtype), csr.indptr.astype(index_dtype),
                    y_index, weights, threshold)
            np.testing.assert_allclose(sums("class_feature_sums_csr", backend, args, n_classes,
                                            n_features), expected, rtol=KERNEL_RTOL)


def test_csr_sums_kernel_unsorted_and_duplicate_indices(backend, rng):
    dense = np.where(rng.random((400, 25)) < 0.3, rng.uniform(0, 3, (400, 25)), 0)
    y_index = rng.integers(0, 4, 400).astype(np.intp)
    expected = sums("class_feature_sums_dense", "numpy", (dense, y_index, np.empty(0), np.nan),
                    4, 25)
    csr = sp.csr_matrix(dense)
    # Reverse the entries of every row, and split each value into two duplicate entries.
    data, indices = [], []
    for i in range(400):
        row = slice(csr.indptr[i], csr.indptr[i + 1])
        data += [np.repeat(csr.data[row][::-1] / 2, 2)]
        indices += [np.repeat(csr.indices[row][::-1], 2)]
    indptr = 2 * csr.indptr
    got = sums("class_feature_sums_csr", backend,
               (np.concatenate(data), np.concatenate(indices).astype(np.int32),
                indptr.astype(np.int32), y_index, np.empty(0), np.nan), 4, 25)
    np.testing.assert_allclose(got, expected, rtol=KERNEL_RTOL)


@pytest.mark.parametrize("shape", [(15_000, 12, 4), (40, 3, 1), (1, 1, 2)])
def test_categorical_counts_kernel_matches_reference(backend, shape, rng):
    n_samples, n_features, n_classes = shape
    X = rng.integers(0, 6, (n_samples, n_features)).astype(np.intp)
    y_index = rng.integers(0, n_classes, n_samples).astype(np.intp)
    widths = X.max(axis=0) + 1 + rng.integers(0, 2, n_features)  # some unseen categories
    offsets = np.concatenate([[0], np.cumsum(widths[:-1])]).astype(np.intp)
    for weights in (np.empty(0), rng.uniform(0, 2, n_samples)):
        results = []
        for name, n_threads in ((backend, 1), (backend, 2), ("numpy", 1)):
            out = np.full((int(widths.sum()), n_classes), np.nan)
            get_kernel("categorical_class_counts", name)(X, y_index, weights, offsets, out,
                                                         n_threads)
            results.append(out)
        np.testing.assert_array_equal(results[0], results[1])
        np.testing.assert_allclose(results[0], results[2], rtol=KERNEL_RTOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_kernels_same_result_with_one_and_two_threads(optimised_backend, dtype, rng):
    X = (rng.standard_normal((40_000, 12)) * 3 + 50).astype(dtype)
    y_index = rng.integers(0, 7, 40_000).astype(np.intp)
    weights = rng.uniform(0, 1, 40_000)
    counts = np.abs(np.round(X - 50)).astype(dtype)
    csr = sp.csr_matrix(counts)
    results = []
    for n_threads in (1, 2):
        results.append([
            *moments(optimised_backend, X, y_index, weights, 7, n_threads),
            sums("class_feature_sums_dense", optimised_backend,
                 (counts, y_index, weights, np.nan), 7, 12, n_threads),
            sums("class_feature_sums_csr", optimised_backend,
                 (csr.data, csr.indices, csr.indptr, y_index, weights, 1.0), 7, 12, n_threads),
        ])
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


# ------------------------------------------------------------------------------------------
# GaussianNB against scikit-learn
# ------------------------------------------------------------------------------------------

GAUSSIAN_ATTRIBUTES = ["theta_", "var_", "class_count_", "class_prior_", "epsilon_"]


def assert_gaussian_equal(ours, theirs, X, rtol=ATTR_RTOL, proba_atol=1e-9):
    for name in GAUSSIAN_ATTRIBUTES:
        assert_close(getattr(ours, name), getattr(theirs, name), name, rtol=rtol)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0,
                               atol=proba_atol)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("dataset", ["iris", "wine", "digits"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_fit_matches_sklearn(backend, dataset, weighted):
    X, y = load(dataset)
    weights = np.random.default_rng(0).uniform(0, 3, len(y)) if weighted else None
    ours = fastscratch.GaussianNB(backend=backend).fit(X, y, sample_weight=weights)
    theirs = sk.GaussianNB().fit(X, y, sample_weight=weights)
    assert_gaussian_equal(ours, theirs, X)


@pytest.mark.parametrize("dataset", ["iris", "wine", "digits"])
def test_gaussian_fit_float32_matches_sklearn(backend, dataset):
    X, y = load(dataset)
    X32 = X.astype(np.float32)
    ours = fastscratch.GaussianNB(backend=backend).fit(X32, y)
    assert ours.theta_.dtype == ours.var_.dtype == np.float32
    # Summed in float64: scikit-learn on the same values in float64, rounded to float32.
    exact = sk.GaussianNB().fit(X32.astype(np.float64), y)
    for name in ["theta_", "var_"]:
        assert_close(getattr(ours, name), getattr(exact, name), name, rtol=F32_RTOL)
    # scikit-learn sums in float32: equal within its float32 summation error.
    theirs = sk.GaussianNB().fit(X32, y)
    assert_close(ours.theta_, theirs.theta_, "theta_", rtol=1e-5)
    assert_close(ours.var_, theirs.var_, "var_", rtol=1e-4)
    np.testing.assert_array_equal(ours.predict(X32), theirs.predict(X32))


def test_gaussian_fit_is_stable_far_from_the_origin(backend, rng):
    # Means of 1e8 with a spread of 1: the variance needs the centred sums.
    X = 1e8 + rng.standard_normal((20_000, 5))
    y = rng.integers(0, 4, 20_000)
    ours = fastscratch.GaussianNB(backend=backend).fit(X, y)
    theirs = sk.GaussianNB().fit(X, y)
    assert_close(ours.var_, theirs.var_, "var_", rtol=1e-9)
    assert_close(ours.theta_, theirs.theta_, "theta_")


@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_partial_fit_on_digits_matches_sklearn(backend, weighted):
    X, y = load("digits")
    weights = np.random.default_rng(1).uniform(0.5, 2, len(y)) if weighted else None
    ours, theirs = fastscratch.GaussianNB(backend=backend), sk.GaussianNB()
    # The first batch lacks some classes; the later ones bring them.
    order = np.argsort(y, kind="stable")
    for batch in np.array_split(order, 3):
        kwargs = {} if weights is None else {"sample_weight": weights[batch]}
        ours.partial_fit(X[batch], y[batch], classes=np.arange(10), **kwargs)
        theirs.partial_fit(X[batch], y[batch], classes=np.arange(10), **kwargs)
        # Digits has pixels constant within a class: their variance is epsilon_ alone
        # (about 1e-8), which turns a 1e-12 difference of the attributes into ~1e-9
        # on a probability.
        assert_gaussian_equal(ours, theirs, X, proba_atol=1e-7)


def test_gaussian_zero_weight_class_keeps_its_statistics(backend):
    X, y = load("iris")
    weights = np.ones(len(y))
    weights[y == 2] = 0.0
    ours = fastscratch.GaussianNB(backend=backend).partial_fit(X, y, classes=[0, 1, 2],
                                                                sample_weight=weights)
    theirs = sk.GaussianNB().partial_fit(X, y, classes=[0, 1, 2], sample_weight=weights)
    for name in ["theta_", "var_", "class_count_"]:
        assert_close(getattr(ours, name), getattr(theirs, name), name)
    assert ours.class_count_[2] == 0 and np.all(ours.theta_[2] == 0)


def test_gaussian_labels_of_any_type(backend):
    X, y = load("wine")
    for labels in (y + 10**12, (y * 7 - 3).astype(np.int8), np.array(["a", "b", "c"])[y],
                   y.astype(np.float64) * 2, np.uint64(2**63) + y.astype(np.uint64),
                   np.where(y == 0, -(2**62), y)):
        ours = fastscratch.GaussianNB(backend=backend).fit(X, labels)
        theirs = sk.GaussianNB().fit(X, labels)
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        assert ours.classes_.dtype == theirs.classes_.dtype
        assert_gaussian_equal(ours, theirs, X)
    with pytest.raises(ValueError, match="Unknown label type"):
        fastscratch.GaussianNB(backend=backend).fit(X, y + 0.5)


@pytest.fixture
def threads_used(monkeypatch):
    """Fit kernels on two threads even for test-sized data; records each fit kernel's count."""
    import fastscratch.naive_bayes as nb

    monkeypatch.setattr(nb, "_FIT_MIN_WORK_PER_THREAD", 1)
    used = []
    resolve = nb.resolve_kernel

    def recording(name, backend):
        kernel, resolved = resolve(name, backend)

        def run(*args):
            used.append(args[-1])
            return kernel(*args)
        return (run if name in FIT_KERNELS else kernel), resolved

    monkeypatch.setattr(nb, "resolve_kernel", recording)
    return used


FIT_KERNELS = {"gaussian_class_moments", "class_feature_sums_dense", "class_feature_sums_csr",
               "categorical_class_counts"}


def test_gaussian_fit_same_with_one_and_two_threads(optimised_backend, rng, threads_used):
    X = rng.standard_normal((60_000, 8)).astype(np.float32) * 4 + 2
    y = rng.integers(0, 5, 60_000)
    one = fastscratch.GaussianNB(backend=optimised_backend, n_jobs=1).fit(X, y)
    two = fastscratch.GaussianNB(backend=optimised_backend, n_jobs=2).fit(X, y)
    assert threads_used == [1, 2]
    for name in GAUSSIAN_ATTRIBUTES:
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))


# ------------------------------------------------------------------------------------------
# Count models against scikit-learn, dense and CSR
# ------------------------------------------------------------------------------------------

DISCRETE_ATTRIBUTES = ["class_count_", "feature_count_", "feature_log_prob_", "class_log_prior_"]


def assert_discrete_equal(ours, theirs, X_ours, X_theirs):
    for name in DISCRETE_ATTRIBUTES:
        assert_close(getattr(ours, name), getattr(theirs, name), name)
    np.testing.assert_allclose(ours.predict_proba(X_ours), theirs.predict_proba(X_theirs),
                               rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(X_ours), theirs.predict(X_theirs))


@pytest.mark.parametrize("name", DISCRETE)
@pytest.mark.parametrize("data", ["digits", "digits-csr", "text-csr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_count_fit_matches_sklearn(backend, name, data, dtype):
    if data == "text-csr":
        X, y = text_like_csr()
    else:
        X, y = load("digits")
        X = sp.csr_matrix(X) if data == "digits-csr" else X
    X = X.astype(dtype)
    weights = np.random.default_rng(2).uniform(0, 2, len(y))
    params = {"binarize": 4.0} if name == "BernoulliNB" and data != "text-csr" else {}
    for sample_weight in (None, weights):
        ours = getattr(fastscratch, name)(backend=backend, **params).fit(
            X, y, sample_weight=sample_weight)
        # scikit-learn on float64 (its float32 product runs in float64 too).
        theirs = getattr(sk, name)(**params).fit(X.astype(np.float64), y,
                                                 sample_weight=sample_weight)
        assert_discrete_equal(ours, theirs, X, X.astype(np.float64))


@pytest.mark.parametrize("name", DISCRETE)
def test_count_partial_fit_csr_matches_sklearn(backend, name):
    X, y = text_like_csr(seed=3)
    weights = np.random.default_rng(4).uniform(0, 2, len(y))
    ours, theirs = getattr(fastscratch, name)(backend=backend), getattr(sk, name)()
    for batch in np.array_split(np.arange(len(y)), 3):
        ours.partial_fit(X[batch], y[batch], classes=np.arange(20), sample_weight=weights[batch])
        theirs.partial_fit(X[batch], y[batch], classes=np.arange(20),
                           sample_weight=weights[batch])
    assert_discrete_equal(ours, theirs, X, X)


def test_categorical_fit_matches_sklearn(backend):
    X, y = load("digits")
    X = X.astype(int)
    weights = np.random.default_rng(5).uniform(0, 2, len(y))
    ours = fastscratch.CategoricalNB(backend=backend).fit(X, y, sample_weight=weights)
    theirs = sk.CategoricalNB().fit(X, y, sample_weight=weights)
    for name in ["class_count_", "category_count_", "feature_log_prob_"]:
        for a, b in zip(getattr(ours, name), getattr(theirs, name)):
            assert_close(a, b, name)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-9)
    # partial_fit on batches that bring new categories (the tables widen).
    ours, theirs = fastscratch.CategoricalNB(backend=backend), sk.CategoricalNB()
    order = np.argsort(X[:, 20], kind="stable")
    for batch in np.array_split(order, 3):
        ours.partial_fit(X[batch], y[batch], classes=np.arange(10), sample_weight=weights[batch])
        theirs.partial_fit(X[batch], y[batch], classes=np.arange(10),
                           sample_weight=weights[batch])
        for a, b in zip(ours.category_count_, theirs.category_count_):
            assert_close(a, b, "category_count_")
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-9)


@pytest.mark.parametrize("name", DISCRETE)
def test_count_fit_same_with_one_and_two_threads(optimised_backend, name, threads_used):
    X, y = text_like_csr(n_samples=20_000, n_features=1000, density=0.04, seed=6)
    weights = np.random.default_rng(7).uniform(0, 2, len(y))
    for data in (X, X.toarray()):
        fits = [getattr(fastscratch, name)(backend=optimised_backend, n_jobs=n_jobs)
                .fit(data, y, sample_weight=weights) for n_jobs in (1, 2)]
        for attribute in DISCRETE_ATTRIBUTES:
            np.testing.assert_array_equal(getattr(fits[0], attribute),
                                          getattr(fits[1], attribute))
    assert threads_used == [1, 2, 1, 2]


def test_categorical_fit_same_with_one_and_two_threads(optimised_backend, rng, threads_used):
    X = rng.integers(0, 8, (30_000, 10))
    y = rng.integers(0, 4, 30_000)
    fits = [fastscratch.CategoricalNB(backend=optimised_backend, n_jobs=n_jobs).fit(X, y)
            for n_jobs in (1, 2)]
    assert threads_used == [1, 2]
    for a, b in zip(fits[0].category_count_, fits[1].category_count_):
        np.testing.assert_array_equal(a, b)
