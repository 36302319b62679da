"""KNeighborsClassifier / KNeighborsRegressor against scikit-learn's brute force."""

from functools import lru_cache

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn import neighbors as sk_neighbors
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastscratch._memory import peak_memory_above_inputs_mb
from fastscratch.neighbors import KNeighborsClassifier, KNeighborsRegressor, NearestNeighbors

# ("minkowski", 2) and ("minkowski", 1) run the euclidean and Manhattan paths
# (test_minkowski_aliases); here every kernel is exercised once.
METRICS = [("euclidean", 2), ("sqeuclidean", 2), ("manhattan", 2), ("cosine", 2), ("minkowski", 3.5)]
WEIGHTS = ["uniform", "distance"]
# Distances: relative tolerance. float32 data are compared with scikit-learn run on the
# float64 copy of the same numbers (the exact answer): our distances are recomputed in
# float64, while scikit-learn's own float32 path keeps only float32 precision (about 7e-8
# relative for euclidean, 5e-6 for cosine).
RTOL = {np.float64: 1e-10, np.float32: 1e-6}
PROBA_ATOL = 1e-12


def _standardised(loader):
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    cut = 2 * len(X) // 3
    return X[order[:cut]], y[order[:cut]], X[order[cut:]], y[order[cut:]]


DATASETS = {"iris": _standardised(load_iris), "breast_cancer": _standardised(load_breast_cancer)}
# The float32 case: float32 numbers, kept as float64 for the scikit-learn reference.
DATASETS["breast_cancer-float32"] = tuple(
    part.astype(np.float32).astype(np.float64) if part.dtype == np.float64 else part
    for part in DATASETS["breast_cancer"])


def _exact_distances(queries, train, metric, p):
    queries = np.asarray(queries, dtype=np.float64)
    train = np.asarray(train, dtype=np.float64)
    if metric == "minkowski":
        return cdist(queries, train, "minkowski", p=p)
    return cdist(queries, train, {"manhattan": "cityblock"}.get(metric, metric))


def _rows_without_ties(queries, train, metric, p, k):
    """Rows whose k + 1 nearest distances are all distinct.

    scikit-learn does not order exactly tied neighbours by index (its GEMM form
    leaves rounding noise on equal distances, so about 1% of rows of integer-like
    data such as iris list tied neighbours in another order); indices are only
    compared where no tie exists. Predictions are compared everywhere.
    """
    exact = np.sort(_exact_distances(queries, train, metric, p), axis=1)[:, :k + 1]
    gaps = np.diff(exact, axis=1)
    return np.all(gaps > 1e-9 * (1 + exact[:, 1:]), axis=1)


def _sk_model(cls, k, weights, metric, p):
    return cls(n_neighbors=k, weights=weights, metric=metric, p=p, algorithm="brute")


@lru_cache(maxsize=None)
def _sklearn_reference(dataset, metric, p, weights, k=7):
    """scikit-learn's brute-force answers on the float64 data (computed once for all backends)."""
    X_train, y_train, X_test, y_test = DATASETS[dataset]
    clf = _sk_model(sk_neighbors.KNeighborsClassifier, k, weights, metric, p).fit(X_train, y_train)
    reg = _sk_model(sk_neighbors.KNeighborsRegressor, k, weights, metric, p).fit(X_train, y_train)
    distances, indices = clf.kneighbors(X_test)
    return {"distances": distances, "indices": indices, "predict": clf.predict(X_test),
            "proba": clf.predict_proba(X_test), "score": clf.score(X_test, y_test),
            "regression": reg.predict(X_test)}


# float64 on both datasets, and the float32 case on breast_cancer (compared with
# scikit-learn run on the float64 values of the same float32 numbers, the exact answer).
@pytest.mark.parametrize("dataset, dtype", [("iris", np.float64), ("breast_cancer", np.float64),
                                            ("breast_cancer", np.float32)])
def test_parity_with_sklearn(backend, dataset, dtype):
    X_train, y_train, X_test, y_test = DATASETS[dataset]
    k = 7
    if dtype == np.float32:
        X_train, X_test = X_train.astype(dtype), X_test.astype(dtype)
        assert np.all(DATASETS["breast_cancer-float32"][0] == X_train)
    for metric, p in METRICS:
        untied = _rows_without_ties(X_test, X_train, metric, p, k)
        assert untied.mean() > 0.75  # iris: many duplicate rows
        for weights in WEIGHTS:
            label = f"{metric} p={p} {weights}"
            if dtype == np.float32:
                ref = _sklearn_reference(dataset + "-float32", metric, p, weights)
            else:
                ref = _sklearn_reference(dataset, metric, p, weights)
            ours = KNeighborsClassifier(k, weights=weights, metric=metric, p=p, backend=backend)
            ours.fit(X_train, y_train)
            distances, indices = ours.kneighbors(X_test)
            assert distances.dtype == np.float64
            np.testing.assert_array_equal(indices[untied], ref["indices"][untied], err_msg=label)
            np.testing.assert_allclose(distances, ref["distances"], rtol=RTOL[dtype], atol=1e-12,
                                       err_msg=label)
            np.testing.assert_array_equal(ours.predict(X_test), ref["predict"], err_msg=label)
            np.testing.assert_allclose(ours.predict_proba(X_test), ref["proba"], rtol=0,
                                       atol=PROBA_ATOL, err_msg=label)
            assert ours.score(X_test, y_test) == ref["score"]
            ours_reg = KNeighborsRegressor(k, weights=weights, metric=metric, p=p, backend=backend)
            np.testing.assert_allclose(ours_reg.fit(X_train, y_train).predict(X_test), ref["regression"],
                                       rtol=1e-12, atol=1e-12, err_msg=label)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_float32_predictions_equal_sklearn_float32(metric):
    # scikit-learn run on the float32 data itself: same predictions, distances within
    # its float32 precision.
    X_train, y_train, X_test, _ = DATASETS["breast_cancer"]
    X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    ours = KNeighborsClassifier(5, metric=metric).fit(X_train, y_train)
    ref = sk_neighbors.KNeighborsClassifier(5, metric=metric, algorithm="brute").fit(X_train, y_train)
    np.testing.assert_array_equal(ours.predict(X_test), ref.predict(X_test))
    rtol = 1e-5 if metric == "cosine" else 1e-6
    np.testing.assert_allclose(ours.kneighbors(X_test)[0], ref.kneighbors(X_test)[0], rtol=rtol, atol=1e-6)


def test_backends_agree_with_numpy_reference(optimised_backend, rng):
    X = rng.standard_normal((700, 6))
    y = rng.integers(0, 3, 700)
    queries = rng.standard_normal((150, 6))
    for metric, p in METRICS:
        for dtype in (np.float32, np.float64):
            expected = KNeighborsClassifier(9, metric=metric, p=p, backend="numpy").fit(X.astype(dtype), y)
            result = KNeighborsClassifier(9, metric=metric, p=p, backend=optimised_backend).fit(
                X.astype(dtype), y)
            d_ref, i_ref = expected.kneighbors(queries.astype(dtype))
            d_res, i_res = result.kneighbors(queries.astype(dtype))
            np.testing.assert_array_equal(i_res, i_ref)
            np.testing.assert_allclose(d_res, d_ref, rtol=1e-12)


def test_training_set_queries_exclude_self(backend):
    X_train, y_train, _, _ = DATASETS["iris"]
    ours = KNeighborsClassifier(5, backend=backend).fit(X_train, y_train)
    ref = sk_neighbors.KNeighborsClassifier(5, algorithm="brute").fit(X_train, y_train)
    distances, indices = ours.kneighbors()
    ref_distances, ref_indices = ref.kneighbors()
    assert not np.any(indices == np.arange(len(X_train))[:, None])
    np.testing.assert_allclose(distances, ref_distances, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(None), ref.predict(None))
    np.testing.assert_allclose(ours.predict_proba(None), ref.predict_proba(None), atol=PROBA_ATOL)
    assert ours.score(None, y_train) == ref.score(None, y_train)
    reg = KNeighborsRegressor(5, weights="distance", backend=backend).fit(X_train, y_train)
    ref_reg = sk_neighbors.KNeighborsRegressor(5, weights="distance", algorithm="brute").fit(X_train, y_train)
    np.testing.assert_allclose(reg.predict(None), ref_reg.predict(None), rtol=1e-12)


@pytest.mark.parametrize("mode", ["connectivity", "distance"])
def test_kneighbors_graph(backend, mode):
    X_train, y_train, X_test, _ = DATASETS["breast_cancer"]
    ours = KNeighborsClassifier(4, backend=backend).fit(X_train, y_train)
    ref = sk_neighbors.KNeighborsClassifier(4, algorithm="brute").fit(X_train, y_train)
    for queries in (X_test, None):
        graph = ours.kneighbors_graph(queries, mode=mode)
        expected = ref.kneighbors_graph(queries, mode=mode)
        assert graph.format == "csr" and graph.shape == expected.shape
        np.testing.assert_allclose(graph.toarray(), expected.toarray(), rtol=1e-10, atol=1e-12)
    assert ours.kneighbors_graph(X_test[:3], n_neighbors=2).nnz == 6


def test_zero_distance_weights_follow_sklearn(backend):
    # Queries equal to training points: the zero-distance neighbours get weight 1, the others 0.
    X = np.array([[0.0], [0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 1, 1, 1, 1])
    queries = np.array([[0.0], [2.0], [1.5]])
    for cls in (sk_neighbors.KNeighborsClassifier, sk_neighbors.KNeighborsRegressor):
        ours_cls = KNeighborsClassifier if cls is sk_neighbors.KNeighborsClassifier else KNeighborsRegressor
        ours = ours_cls(4, weights="distance", backend=backend).fit(X, y)
        ref = cls(4, weights="distance", algorithm="brute").fit(X, y)
        np.testing.assert_allclose(ours.predict(queries), ref.predict(queries), rtol=1e-12)
        if ours_cls is KNeighborsClassifier:
            np.testing.assert_allclose(ours.predict_proba(queries), ref.predict_proba(queries), atol=PROBA_ATOL)
            np.testing.assert_allclose(ours.predict_proba(queries)[0], [0.5, 0.5])


def test_callable_weights_and_string_labels(backend):
    X_train, y_train, X_test, _ = DATASETS["iris"]
    names = np.array(["setosa", "versicolor", "virginica"])[y_train]
    weights = lambda d: np.exp(-d)  # noqa: E731
    ours = KNeighborsClassifier(6, weights=weights, backend=backend).fit(X_train, names)
    ref = sk_neighbors.KNeighborsClassifier(6, weights=weights, algorithm="brute").fit(X_train, names)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_array_equal(ours.predict(X_test), ref.predict(X_test))
    np.testing.assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test), atol=PROBA_ATOL)
    zero = KNeighborsClassifier(3, weights=lambda d: np.zeros_like(d), backend=backend).fit(X_train, names)
    with pytest.raises(ValueError, match="zero weight"):
        zero.predict(X_test)


def test_multi_output(backend, rng):
    X_train, y_train, X_test, _ = DATASETS["breast_cancer"]
    Y = np.column_stack([y_train, rng.integers(0, 4, len(y_train))])
    Y_text = np.where(Y == 0, "no", "yes").astype(object)
    for targets in (Y, Y_text):
        ours = KNeighborsClassifier(5, weights="distance", backend=backend).fit(X_train, targets)
        ref = sk_neighbors.KNeighborsClassifier(5, weights="distance", algorithm="brute").fit(X_train, targets)
        np.testing.assert_array_equal(ours.predict(X_test), ref.predict(X_test))
        for mine, theirs in zip(ours.predict_proba(X_test), ref.predict_proba(X_test)):
            np.testing.assert_allclose(mine, theirs, atol=PROBA_ATOL)
    Y_reg = np.column_stack([y_train, X_train[:, 0]])
    for weights in WEIGHTS:
        ours = KNeighborsRegressor(5, weights=weights, backend=backend).fit(X_train, Y_reg)
        ref = sk_neighbors.KNeighborsRegressor(5, weights=weights, algorithm="brute").fit(X_train, Y_reg)
        np.testing.assert_allclose(ours.predict(X_test), ref.predict(X_test), rtol=1e-12)
        assert ours.predict(X_test).shape == (len(X_test), 2)


def test_edge_cases(backend, rng):
    # Duplicate training points: ties ordered by index.
    X = np.tile(rng.standard_normal((3, 4)), (4, 1))
    y = np.arange(12) % 3
    model = KNeighborsClassifier(4, backend=backend).fit(X, y)
    distances, indices = model.kneighbors(X[:1])
    np.testing.assert_array_equal(indices, [[0, 3, 6, 9]])
    np.testing.assert_array_equal(distances, 0)
    # k = n_samples.
    model = KNeighborsRegressor(12, backend=backend).fit(X, y)
    np.testing.assert_allclose(model.predict(X[:2]), y.mean())
    assert sorted(model.kneighbors(X[:1], return_distance=False)[0]) == list(range(12))
    # One feature, one query.
    X1 = rng.standard_normal((30, 1))
    y1 = (X1[:, 0] > 0).astype(int)
    ours = KNeighborsClassifier(3, backend=backend).fit(X1, y1)
    ref = sk_neighbors.KNeighborsClassifier(3, algorithm="brute").fit(X1, y1)
    np.testing.assert_array_equal(ours.kneighbors([[0.1]])[1], ref.kneighbors([[0.1]])[1])
    np.testing.assert_array_equal(ours.predict([[0.1]]), ref.predict([[0.1]]))
    # Zero vectors under cosine: distance 1 to everything, as scikit-learn.
    Xc = np.vstack([np.zeros(3), rng.standard_normal((10, 3))])
    ours = KNeighborsRegressor(3, metric="cosine", backend=backend).fit(Xc, np.arange(11.0))
    ref = sk_neighbors.KNeighborsRegressor(3, metric="cosine", algorithm="brute").fit(Xc, np.arange(11.0))
    np.testing.assert_allclose(ours.kneighbors(np.zeros((1, 3)))[0], 1.0)
    np.testing.assert_allclose(ours.kneighbors(Xc[1:4])[0], ref.kneighbors(Xc[1:4])[0], atol=1e-12)


def test_far_from_origin_float32_is_exact(backend):
    # float32 data around 1e4: the expanded form alone would rank by rounding noise;
    # centring at fit time and the float64 re-ranking give the exact neighbours.
    rng = np.random.default_rng(5)
    X = (1e4 + rng.standard_normal((2000, 5))).astype(np.float32)
    queries = (1e4 + rng.standard_normal((50, 5))).astype(np.float32)
    model = KNeighborsRegressor(5, backend=backend).fit(X, np.zeros(2000))
    distances, indices = model.kneighbors(queries)
    exact = _exact_distances(queries, X, "euclidean", 2)
    expected = np.argsort(exact, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, np.take_along_axis(exact, expected, 1), rtol=1e-12)


def test_same_result_with_one_and_two_threads(optimised_backend, rng):
    X = rng.standard_normal((3000, 8)).astype(np.float32)
    y = rng.integers(0, 4, 3000)
    queries = rng.standard_normal((900, 8)).astype(np.float32)
    for metric in ("euclidean", "cosine", "manhattan"):
        one = KNeighborsClassifier(6, metric=metric, n_jobs=1, backend=optimised_backend).fit(X, y)
        two = KNeighborsClassifier(6, metric=metric, n_jobs=2, backend=optimised_backend).fit(X, y)
        np.testing.assert_array_equal(one.kneighbors(queries)[1], two.kneighbors(queries)[1])
        np.testing.assert_array_equal(one.predict_proba(queries), two.predict_proba(queries))


def test_batches_give_the_same_answer(monkeypatch, rng):
    X = rng.standard_normal((400, 3))
    y = rng.standard_normal(400)
    queries = rng.standard_normal((250, 3))
    model = KNeighborsRegressor(4, weights="distance").fit(X, y)
    expected = model.predict(queries), model.kneighbors(queries), model.predict(None)
    import fastscratch.neighbors as module

    monkeypatch.setattr(module, "_MIN_BATCH", 7)
    monkeypatch.setattr(module, "_MAX_BATCH", 7)
    assert module._batch_size(4) == 7
    np.testing.assert_array_equal(model.predict(queries), expected[0])
    np.testing.assert_array_equal(model.kneighbors(queries)[1], expected[1][1])
    np.testing.assert_array_equal(model.predict(None), expected[2])


def test_minkowski_aliases():
    X, y = DATASETS["iris"][:2]
    for p, metric in [(2, "euclidean"), (1, "manhattan"), (1.5, "minkowski")]:
        model = KNeighborsClassifier(metric="minkowski", p=p).fit(X, y)
        assert model.effective_metric_ == metric
        assert model.effective_metric_params_ == ({"p": 1.5} if p == 1.5 else {})
    for alias, metric in [("l2", "euclidean"), ("l1", "manhattan"), ("cityblock", "manhattan")]:
        assert KNeighborsRegressor(metric=alias).fit(X, y).effective_metric_ == metric
    np.testing.assert_array_equal(KNeighborsClassifier(metric="minkowski", p=1).fit(X, y).kneighbors(X[:20]),
                                  KNeighborsClassifier(metric="manhattan").fit(X, y).kneighbors(X[:20]))


@pytest.mark.parametrize("params, error, match", [
    ({"n_neighbors": 0}, ValueError, "n_neighbors=0 must be >= 1"),
    ({"n_neighbors": 2.5}, TypeError, "n_neighbors must be an integer"),
    ({"weights": "gaussian"}, ValueError, "weights='gaussian' is not supported"),
    ({"metric": "mahalanobis"}, ValueError, "metric='mahalanobis' is not supported"),
    ({"metric": "minkowski", "p": 0}, ValueError, "p=0 must be a number > 0"),
    ({"metric": "minkowski", "p": np.nan}, ValueError, "p=nan must be a number > 0"),
    ({"backend": "cuda"}, ValueError, "backend='cuda' is not a backend"),
])
def test_bad_parameters(params, error, match):
    X, y = DATASETS["iris"][:2]
    for cls in (KNeighborsClassifier, KNeighborsRegressor):
        with pytest.raises(error, match=match):
            cls(**params).fit(X, y)


def test_bad_input():
    from sklearn.exceptions import NotFittedError

    X, y = DATASETS["iris"][:2]
    with pytest.raises(NotFittedError):
        KNeighborsClassifier().predict(X)
    model = KNeighborsClassifier(3).fit(X, y)
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        model.kneighbors(X, n_neighbors=len(X) + 1)
    with pytest.raises(ValueError, match="n_neighbors < n_samples_fit"):
        model.kneighbors(None, n_neighbors=len(X))
    with pytest.raises(ValueError, match="n_neighbors = 10, n_samples_fit = 5"):
        KNeighborsClassifier(10).fit(X[:5], y[:5]).predict(X)
    with pytest.raises(ValueError, match="n_neighbors=0 must be >= 1"):
        model.kneighbors(X, n_neighbors=0)
    with pytest.raises(ValueError, match="0 sample"):
        model.predict(X[:0])
    with pytest.raises(ValueError, match="0 sample"):
        KNeighborsClassifier().fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((2, X.shape[1]), np.nan))
    with pytest.raises(ValueError, match="infinity"):
        KNeighborsRegressor().fit(np.full(X.shape, np.inf), y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match="mode='both' is not supported"):
        model.kneighbors_graph(X, mode="both")


@parametrize_with_checks([KNeighborsClassifier(), KNeighborsRegressor(weights="distance", metric="cosine"),
                          NearestNeighbors(), KNeighborsClassifier(algorithm="kd_tree", p=np.inf)])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# Bounded memory: predict never builds a queries x train matrix. Module-level
# functions, because the measurement runs in a spawned process.
MEMORY_SHAPE = (20_000, 20_000, 8)  # queries, train, features: a full float32 matrix is 1.6 GB


def _memory_setup(small):
    n_queries, n_train, n_features = (500, 500, 8) if small else MEMORY_SHAPE
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_train, n_features), dtype=np.float32)
    y = rng.integers(0, 3, n_train)
    queries = rng.standard_normal((n_queries, n_features), dtype=np.float32)
    return X, y, queries


def _memory_run(inputs):
    X, y, queries = inputs
    KNeighborsClassifier(10, algorithm="brute", backend="auto").fit(X, y).predict(queries)


def _memory_run_tree(inputs):
    X, y, queries = inputs
    KNeighborsClassifier(10, algorithm="kd_tree", backend="auto").fit(X, y).predict(queries)


@pytest.mark.parametrize("run", [_memory_run, _memory_run_tree], ids=["brute", "kd_tree"])
def test_predict_memory_is_bounded(run):
    peak_mb = peak_memory_above_inputs_mb(_memory_setup, run)
    assert peak_mb < 64, f"predict added {peak_mb:.0f} MB to the peak"
