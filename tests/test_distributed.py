"""fastscratch.distributed on a 2-process LocalCluster: every Dask fit and predict equals the
in-memory one (labels and indices exactly, floats to 1e-10)."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("dask")
pytest.importorskip("distributed")
pytest.importorskip("dask_ml")

import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits, load_iris,  # noqa: E402
                              load_wine, make_blobs)

import fastscratch  # noqa: E402
from fastscratch import distributed as fd  # noqa: E402

RTOL = 1e-10
# The distributed code path is the same for every backend (the kernels are compared with the
# NumPy reference in their own tests); the NumPy one needs no compilation in each worker.
KMEANS_BACKEND = "numpy"


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def chunked(a, n_chunks):
    rows = -(-a.shape[0] // n_chunks)
    return da.from_array(a, chunks=(rows,) + a.shape[1:])


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return X, y


# ------------------------------------------------------------------------------ naive Bayes
def test_gaussian_nb_fit_predict_equal_in_memory(client, wine):
    X, y = wine
    w = np.random.default_rng(0).uniform(0.1, 3, size=len(y))
    for sample_weight in (None, w):
        dist = fd.GaussianNB().fit(chunked(X, 5), chunked(y, 3),
                                   sample_weight=None if sample_weight is None else chunked(w, 4))
        ref = fastscratch.GaussianNB().fit(X, y, sample_weight=sample_weight)
        for attr in ("class_count_", "class_prior_", "theta_", "var_"):
            np.testing.assert_allclose(getattr(dist, attr), getattr(ref, attr), rtol=RTOL, atol=0)
        assert dist.epsilon_ == pytest.approx(ref.epsilon_, rel=RTOL)
        np.testing.assert_array_equal(dist.classes_, ref.classes_)
        Xd = chunked(X, 4)
        labels = dist.predict(Xd)
        assert isinstance(labels, da.Array)
        np.testing.assert_array_equal(labels.compute(), ref.predict(X))
        np.testing.assert_allclose(dist.predict_proba(Xd).compute(), ref.predict_proba(X),
                                   rtol=RTOL, atol=1e-300)
        np.testing.assert_allclose(dist.predict_log_proba(Xd).compute(), ref.predict_log_proba(X),
                                   rtol=RTOL)
        np.testing.assert_allclose(dist.predict_joint_log_proba(Xd).compute(),
                                   ref.predict_joint_log_proba(X), rtol=RTOL)


def test_gaussian_nb_float32_and_dataframe(client, wine):
    X, y = wine
    X32 = X.astype(np.float32)
    frame = pd.DataFrame(X32, columns=[f"f{i}" for i in range(X.shape[1])])
    dist = fd.GaussianNB().fit(dd.from_pandas(frame, npartitions=4),
                               dd.from_pandas(pd.Series(y), npartitions=4))
    ref = fastscratch.GaussianNB().fit(frame, y)
    assert dist.theta_.dtype == np.float32 and dist.var_.dtype == np.float32
    np.testing.assert_allclose(dist.theta_, ref.theta_, rtol=1e-6)
    np.testing.assert_allclose(dist.var_, ref.var_, rtol=1e-5)
    np.testing.assert_array_equal(dist.feature_names_in_, ref.feature_names_in_)
    predicted = dist.predict(dd.from_pandas(frame, npartitions=3)).compute()
    np.testing.assert_array_equal(np.asarray(predicted), ref.predict(frame))


@pytest.mark.parametrize("name", ["MultinomialNB", "BernoulliNB", "ComplementNB", "CategoricalNB"])
def test_discrete_nb_fit_predict_equal_in_memory(client, name):
    X, y = load_digits(return_X_y=True)
    if name == "CategoricalNB":
        X = X.astype(np.int64)
        # Chunks of rows whose largest category differs: the tables are widened when merged.
        order = np.argsort(X[:, 20], kind="stable")
        X, y = X[order], y[order]
    w = np.random.default_rng(1).uniform(0.5, 2, size=len(y))
    dist = getattr(fd, name)().fit(chunked(X, 6), chunked(y, 6), sample_weight=chunked(w, 5))
    ref = getattr(fastscratch, name)().fit(X, y, sample_weight=w)
    np.testing.assert_allclose(dist.class_count_, ref.class_count_, rtol=RTOL)
    np.testing.assert_allclose(dist.class_log_prior_, ref.class_log_prior_, rtol=RTOL)
    if name == "CategoricalNB":
        np.testing.assert_array_equal(dist.n_categories_, ref.n_categories_)
        for a, b in zip(dist.category_count_, ref.category_count_):
            np.testing.assert_allclose(a, b, rtol=RTOL)
        for a, b in zip(dist.feature_log_prob_, ref.feature_log_prob_):
            np.testing.assert_allclose(a, b, rtol=RTOL)
    else:
        np.testing.assert_allclose(dist.feature_count_, ref.feature_count_, rtol=RTOL)
        np.testing.assert_allclose(dist.feature_log_prob_, ref.feature_log_prob_, rtol=RTOL)
    Xd = chunked(X, 3)
    np.testing.assert_array_equal(dist.predict(Xd).compute(), ref.predict(X))
    np.testing.assert_allclose(dist.predict_log_proba(Xd).compute(), ref.predict_log_proba(X),
                               rtol=RTOL, atol=1e-12)


def test_in_memory_input_is_the_parent_estimator(wine):
    X, y = wine
    dist = fd.GaussianNB().fit(X, y)
    ref = fastscratch.GaussianNB().fit(X, y)
    np.testing.assert_array_equal(dist.var_, ref.var_)
    np.testing.assert_array_equal(dist.predict(X), ref.predict(X))


# ------------------------------------------------------------------------------ prediction
def test_parallel_post_fit_predicts_any_fitted_estimator(client, wine):
    X, y = wine
    Xd = chunked(X, 4)
    for model in (fastscratch.KNeighborsClassifier(5), fastscratch.GaussianNB(),
                  fastscratch.MultinomialNB()):
        ref = model.fit(X, y)
        wrapped = fd.ParallelPostFit(ref)
        np.testing.assert_array_equal(wrapped.predict(Xd).compute(), ref.predict(X))
        np.testing.assert_allclose(wrapped.predict_proba(Xd).compute(), ref.predict_proba(X),
                                   rtol=RTOL, atol=1e-300)
    km = fastscratch.KMeans(3, random_state=0, backend=KMEANS_BACKEND).fit(X)
    wrapped = fd.ParallelPostFit(km)
    np.testing.assert_array_equal(wrapped.predict(Xd).compute(), km.predict(X))
    np.testing.assert_allclose(wrapped.transform(Xd).compute(), km.transform(X), rtol=RTOL)


def test_boosting_prediction_on_dask(client):
    X, y = load_iris(return_X_y=True)
    reg = fastscratch.XGBRegressor(n_estimators=5, max_depth=3).fit(X, y.astype(float))
    np.testing.assert_allclose(fd.ParallelPostFit(reg).predict(chunked(X, 3)).compute(),
                               reg.predict(X), rtol=1e-6)


# ---------------------------------------------------------------------------------- boosting
def _assert_same_forest(dist, ref, value_atol=1e-7):
    nodes_d, roots_d, _ = dist._forest.arrays()
    nodes_r, roots_r, _ = ref._forest.arrays()
    np.testing.assert_array_equal(roots_d, roots_r)
    for name in ("feature", "left", "right", "default_left"):
        np.testing.assert_array_equal(nodes_d[name], nodes_r[name], err_msg=name)
    np.testing.assert_array_equal(nodes_d["threshold"], nodes_r["threshold"])
    np.testing.assert_allclose(nodes_d["value"], nodes_r["value"], rtol=1e-6, atol=value_atol)


def test_boosting_regressor_equals_in_memory(client):
    X, y = load_diabetes(return_X_y=True)
    w = np.random.default_rng(4).uniform(0.5, 2, size=len(y))
    params = dict(n_estimators=5, max_depth=4, backend="numpy")
    dist = fd.XGBRegressor(**params).fit(chunked(X, 4), chunked(y, 4), sample_weight=chunked(w, 4))
    ref = fastscratch.XGBRegressor(**params).fit(X, y, sample_weight=w)
    # The in-memory base score is a float32 np.average, ours a float64 sum: a few float32 ulps
    # apart, which moves the margins, hence the leaf values, by about 1e-6.
    assert dist.base_score_ == pytest.approx(ref.base_score_, rel=1e-6)
    _assert_same_forest(dist, ref, value_atol=1e-5)
    np.testing.assert_allclose(dist.predict(chunked(X, 3)).compute(), ref.predict(X), rtol=1e-6)


def test_boosting_classifier_with_xgboost_cuts_equals_in_memory(client):
    xgboost = pytest.importorskip("xgboost")
    X, y = load_breast_cancer(return_X_y=True)
    labels = np.array(["benign", "malignant"])[y]
    cuts = xgboost.QuantileDMatrix(X, max_bin=32).get_quantile_cut()
    params = dict(n_estimators=5, max_depth=3, max_bin=32, backend="numpy")
    dist = fd.XGBClassifier(**params).fit(chunked(X, 3), chunked(labels, 3), cuts=cuts)
    ref = fastscratch.XGBClassifier(**params).fit(X, labels, cuts=cuts)
    np.testing.assert_array_equal(dist.classes_, ref.classes_)
    _assert_same_forest(dist, ref)
    Xd = chunked(X, 3)
    np.testing.assert_allclose(dist.predict_proba(Xd).compute(), ref.predict_proba(X),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(dist.predict(Xd).compute(), ref.predict(X))


def test_boosting_multiclass_equals_in_memory(client):
    X, y = load_iris(return_X_y=True)
    params = dict(n_estimators=3, max_depth=3, backend="numpy")
    dist = fd.XGBClassifier(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBClassifier(**params).fit(X, y)
    _assert_same_forest(dist, ref, value_atol=1e-6)
    np.testing.assert_allclose(dist.predict_proba(chunked(X, 2)).compute(), ref.predict_proba(X),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dist.predict_proba(chunked(X, 2), iteration_range=(0, 1)).compute(),
                               ref.predict_proba(X, iteration_range=(0, 1)), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------------- k-means
@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(4000, 6, centers=7, cluster_std=2.0, random_state=0)
    return X


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_given_init_equals_in_memory(client, blobs, dtype):
    X = blobs.astype(dtype)
    init = X[[0, 100, 200, 300, 400, 500, 600]].copy()
    w = np.random.default_rng(2).uniform(0.5, 2, size=X.shape[0]).astype(dtype)
    dist = fd.KMeans(7, init=init, backend=KMEANS_BACKEND).fit(chunked(X, 5),
                                                               sample_weight=chunked(w, 5))
    ref = fastscratch.KMeans(7, init=init, backend=KMEANS_BACKEND).fit(X, sample_weight=w)
    rtol = RTOL if dtype == np.float64 else 1e-5
    assert dist.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(dist.labels_.compute(), ref.labels_)
    np.testing.assert_allclose(dist.cluster_centers_, ref.cluster_centers_, rtol=rtol)
    assert dist.inertia_ == pytest.approx(ref.inertia_, rel=rtol)
    assert dist.cluster_centers_.dtype == dtype
    Xd = chunked(X, 3)
    np.testing.assert_array_equal(dist.predict(Xd).compute(), ref.predict(X))


def test_kmeans_tol_stop_and_empty_cluster(client, blobs):
    X = blobs
    # tol stop (not strict convergence) and an initial centre far from every sample (empty).
    init = np.vstack([X[:6], np.full((1, X.shape[1]), 1e3)])
    dist = fd.KMeans(7, init=init, tol=1e-2, backend=KMEANS_BACKEND).fit(chunked(X, 4))
    ref = fastscratch.KMeans(7, init=init, tol=1e-2, backend=KMEANS_BACKEND).fit(X)
    assert dist.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(dist.labels_.compute(), ref.labels_)
    np.testing.assert_allclose(dist.cluster_centers_, ref.cluster_centers_, rtol=RTOL)
    assert dist.inertia_ == pytest.approx(ref.inertia_, rel=RTOL)


def test_kmeans_parallel_init_finds_the_in_memory_optimum(client, blobs):
    X = blobs
    params = dict(random_state=0, init_max_iter=3, backend=KMEANS_BACKEND)
    dist = fd.KMeans(7, **params).fit(chunked(X, 4))
    ref = fastscratch.KMeans(7, random_state=0, n_init=5, backend=KMEANS_BACKEND).fit(X)
    assert dist.inertia_ <= ref.inertia_ * (1 + 1e-3)
    again = fd.KMeans(7, **params).fit(chunked(X, 4))
    np.testing.assert_array_equal(again.cluster_centers_, dist.cluster_centers_)  # same seed
    rand = fd.KMeans(7, init="random", random_state=0, backend=KMEANS_BACKEND).fit(chunked(X, 4))
    assert rand.inertia_ <= ref.inertia_ * 2
    # The relabelled data: labels_ are the nearest centres.
    np.testing.assert_array_equal(dist.labels_.compute(),
                                  dist.predict(chunked(X, 2)).compute())


def test_kmeans_bad_params(client, blobs):
    with pytest.raises(ValueError, match="oversampling_factor"):
        fd.KMeans(3, oversampling_factor=0).fit(chunked(blobs, 2))
    with pytest.raises(ValueError, match="algorithm"):
        fd.KMeans(3, algorithm="elkan").fit(chunked(blobs, 2))
    with pytest.raises(ValueError, match="n_clusters"):
        fd.KMeans(3, init=blobs[:2]).fit(chunked(blobs, 2))


# --------------------------------------------------------------------------------------- KNN
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_knn_partitioned_equals_in_memory(client, weights, metric):
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(3)
    # Integer coordinates around the origin: many exactly tied distances.
    train = np.round(X - X.mean(axis=0))
    queries = np.round(X + rng.normal(0, 0.5, X.shape) - X.mean(axis=0))
    dist = fd.KNeighborsClassifier(7, weights=weights, metric=metric).fit(chunked(train, 4),
                                                                          chunked(y, 4))
    ref = fastscratch.KNeighborsClassifier(7, weights=weights, metric=metric).fit(train, y)
    Qd = chunked(queries, 3)
    d1, i1 = dist.kneighbors(Qd)
    d2, i2 = ref.kneighbors(queries)
    np.testing.assert_array_equal(i1.compute(), i2)
    np.testing.assert_allclose(d1.compute(), d2, rtol=RTOL, atol=1e-12)
    np.testing.assert_array_equal(dist.predict(Qd).compute(), ref.predict(queries))
    np.testing.assert_allclose(dist.predict_proba(queries), ref.predict_proba(queries), rtol=RTOL)

    reg = fd.KNeighborsRegressor(5, weights=weights, metric=metric).fit(chunked(train, 3),
                                                                        chunked(y * 1.5, 3))
    ref = fastscratch.KNeighborsRegressor(5, weights=weights, metric=metric).fit(train, y * 1.5)
    np.testing.assert_allclose(reg.predict(Qd).compute(), ref.predict(queries), rtol=RTOL)


@pytest.mark.parametrize("centred", [True, False])
def test_knn_string_labels_and_small_partitions(client, centred):
    X, y = load_iris(return_X_y=True)
    if centred:
        X = X - X.mean(axis=0)  # searched as they are
    # else: far from the origin, searched after subtracting the training mean (the in-memory rule)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    # Partitions of 20 rows, k = 25: each partition returns all it has.
    dist = fd.KNeighborsClassifier(25).fit(chunked(X, 8), chunked(labels, 8))
    ref = fastscratch.KNeighborsClassifier(25).fit(X, labels)
    np.testing.assert_array_equal(dist.predict(X), ref.predict(X))
    np.testing.assert_array_equal(dist.kneighbors(X, return_distance=False),
                                  ref.kneighbors(X, return_distance=False))
    with pytest.raises(ValueError, match="queries"):
        dist.kneighbors()


# --------------------------------------------------------------------------- worker loss
def test_lost_worker_is_recomputed(client, wine):
    """A worker killed after the blocks were persisted: Dask recomputes the lost blocks."""
    X, y = wine
    Xd = chunked(X, 6).persist()
    client.wait_for_workers(2)
    worker = next(iter(client.scheduler_info()["workers"]))
    pid = client.run(lambda: __import__("os").getpid(), workers=[worker])[worker]
    import os
    import signal

    os.kill(pid, signal.SIGKILL)
    dist = fd.GaussianNB().fit(Xd, chunked(y, 6))
    ref = fastscratch.GaussianNB().fit(X, y)
    np.testing.assert_allclose(dist.theta_, ref.theta_, rtol=RTOL)
    np.testing.assert_allclose(dist.var_, ref.var_, rtol=RTOL)
    client.wait_for_workers(2, timeout=30)


# ------------------------------------------------------------------------- missing Dask
def test_clear_error_without_dask():
    code = ("import sys; sys.modules['dask'] = None\n"
            "try:\n    import fastscratch.distributed\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "fastscratch[dask]"' in out.stdout


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_set_config_backend_reaches_the_workers(monkeypatch, blobs, wine, backend):
    """set_config is thread-local: the backend in force where a fit is called must be the one
    that the Dask worker threads run (they would otherwise resolve "auto" on their own)."""
    import fastscratch._backend as backend_module

    if backend not in fastscratch.kernels.available_backends():
        pytest.skip(f"{backend} is not installed")
    ran = []
    original = backend_module.get_kernel

    def recording_get_kernel(name, backend_name):
        ran.append((name, backend_name))
        return original(name, backend_name)

    monkeypatch.setattr(backend_module, "get_kernel", recording_get_kernel)
    X, y = wine
    # Threads in this process, so the recording sees the workers' kernel look-ups.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster), fastscratch.config_context(backend=backend):
        kmeans = fd.KMeans(n_clusters=3, init=blobs[:3], n_init=1, max_iter=3).fit(chunked(blobs, 4))
        kmeans.predict(chunked(blobs, 3)).compute()
        fd.XGBClassifier(n_estimators=2, max_depth=2).fit(chunked(X, 3), chunked(y, 3))
        fd.KNeighborsClassifier(n_neighbors=3).fit(chunked(X, 2), chunked(y, 2)).predict(chunked(X, 3)).compute()
    kernels_run = {name for name, _ in ran}
    assert {"kmeans_lloyd_iter", "build_histograms", "partition_rows"} <= kernels_run
    assert {backend_name for _, backend_name in ran} == {backend}
    assert kmeans.backend_ == backend


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", ["GaussianNB", "XGBClassifier", "KNeighborsClassifier"])
def test_nan_in_y_is_no_class(client, wine, name):
    X, y = wine
    y = y.astype(float)
    y[7] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        getattr(fastscratch, name)().fit(X, y)  # the in-memory message ...
    with pytest.raises(ValueError, match="Input y contains NaN"):
        getattr(fd, name)().fit(chunked(X, 3), chunked(y, 3))  # ... is the Dask one


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_knn_queries_checked_for_nan_and_inf(client, wine, bad):
    X, y = wine
    model = fd.KNeighborsClassifier(n_neighbors=3).fit(chunked(X, 2), chunked(y, 2))
    queries = X[:20].copy()
    queries[11, 2] = bad
    message = "Input X contains (NaN|infinity)"
    with pytest.raises(ValueError, match=message):
        model.predict(queries)
    lazy = model.predict(chunked(queries, 3))  # Dask input: checked when computed
    with pytest.raises(ValueError, match=message):
        lazy.compute()


def test_knn_lazy_prediction_outlives_the_estimator(client, wine):
    """fit(...).predict(dask) in one expression: the training partitions kept on the workers must
    stay alive as long as the lazy prediction does, not as long as the (discarded) estimator."""
    import gc

    X, y = wine
    lazy = fd.KNeighborsClassifier(n_neighbors=3).fit(chunked(X, 2), chunked(y, 2)).predict(chunked(X, 3))
    gc.collect()
    np.testing.assert_array_equal(lazy.compute(), fastscratch.KNeighborsClassifier(n_neighbors=3).fit(X, y).predict(X))


def test_boosting_lossguide_equals_in_memory(client):
    X, y = load_diabetes(return_X_y=True)
    params = dict(n_estimators=3, grow_policy="lossguide", max_depth=0, max_leaves=8, backend="numpy")
    dist = fd.XGBRegressor(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBRegressor(**params).fit(X, y)
    _assert_same_forest(dist, ref, value_atol=1e-5)
    assert np.std(dist.predict(X)) > 1  # not a constant model
    np.testing.assert_allclose(dist.predict(chunked(X, 2)).compute(), ref.predict(X), rtol=1e-6)


def test_boosting_callable_objective_is_refused(client):
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match="callable objective"):
        fd.XGBClassifier(n_estimators=2, objective=lambda y, p: (p - y, np.ones_like(p))).fit(
            chunked(X, 2), chunked(y, 2))


def _with_missing(X, fraction, seed):
    X = X.astype(float)
    X[np.random.default_rng(seed).random(X.shape) < fraction] = np.nan
    return X


_SAMPLING = {
    "none": {},
    "subsample": {"subsample": 0.7},
    "colsample_bytree": {"colsample_bytree": 0.6},
    "all": {"subsample": 0.8, "colsample_bytree": 0.8, "colsample_bylevel": 0.7,
            "colsample_bynode": 0.6},
}


@pytest.mark.parametrize("sampling", list(_SAMPLING))
def test_boosting_multiclass_with_missing_and_sampling_equals_in_memory(client, sampling):
    """3 classes, NaN, weights: the class trees grow together, the samples are the in-memory ones."""
    X, y = load_wine(return_X_y=True)
    X = _with_missing(X, 0.1, 5)
    w = np.random.default_rng(6).uniform(0.5, 2.0, size=len(y))
    params = dict(n_estimators=4, max_depth=4, random_state=7, backend="numpy",
                  **_SAMPLING[sampling])
    dist = fd.XGBClassifier(**params).fit(chunked(X, 4), chunked(y, 4), sample_weight=chunked(w, 4))
    ref = fastscratch.XGBClassifier(**params).fit(X, y, sample_weight=w)
    _assert_same_forest(dist, ref, value_atol=1e-6)
    np.testing.assert_allclose(dist.predict_proba(chunked(X, 2)).compute(), ref.predict_proba(X),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("sampling", ["none", "subsample", "all"])
def test_boosting_ten_classes_with_missing_equals_in_memory(client, sampling):
    X, y = load_digits(return_X_y=True)
    X = _with_missing(X[:900], 0.05, 8)
    y = y[:900]
    params = dict(n_estimators=2, max_depth=3, max_bin=16, random_state=9, backend="numpy",
                  **_SAMPLING[sampling])
    dist = fd.XGBClassifier(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBClassifier(**params).fit(X, y)
    assert dist._forest.n_trees == 20
    _assert_same_forest(dist, ref, value_atol=1e-6)


@pytest.mark.parametrize("sampling", ["subsample", "all"])
@pytest.mark.parametrize("grow_policy", ["depthwise", "lossguide"])
def test_boosting_regressor_with_sampling_equals_in_memory(client, sampling, grow_policy):
    X, y = load_diabetes(return_X_y=True)
    X = _with_missing(X, 0.05, 10)
    params = dict(n_estimators=4, max_depth=4, grow_policy=grow_policy,
                  max_leaves=7 if grow_policy == "lossguide" else 0,
                  random_state=11, backend="numpy", **_SAMPLING[sampling])
    dist = fd.XGBRegressor(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBRegressor(**params).fit(X, y)
    _assert_same_forest(dist, ref, value_atol=1e-5)
    np.testing.assert_allclose(dist.predict(chunked(X, 2)).compute(), ref.predict(X), rtol=1e-6)


@pytest.mark.parametrize("params", [{"scale_pos_weight": 3.0}, {"scale_pos_weight": 0.4, "subsample": 0.7}])
def test_boosting_scale_pos_weight_equals_in_memory(client, params):
    X, y = load_breast_cancer(return_X_y=True)
    w = np.random.default_rng(12).uniform(0.5, 2.0, size=len(y))
    params = dict(n_estimators=4, max_depth=3, random_state=13, backend="numpy", **params)
    dist = fd.XGBClassifier(**params).fit(chunked(X, 3), chunked(y, 3), sample_weight=chunked(w, 3))
    ref = fastscratch.XGBClassifier(**params).fit(X, y, sample_weight=w)
    assert dist.base_score_ == pytest.approx(ref.base_score_, rel=1e-6)
    _assert_same_forest(dist, ref, value_atol=1e-6)


def test_boosting_multiclass_round_is_one_call_per_level(client):
    """A round's class trees grow together: one call per shard per level for all of them."""
    X, y = load_iris(return_X_y=True)
    model = fd.XGBClassifier(n_estimators=5, max_depth=3, backend="numpy").fit(chunked(X, 4), chunked(y, 4))
    profile = model._dask_profile
    assert profile["trees"] == 15
    # Per round: the gradients and the 3 roots in one call, then one call per level below the
    # root (max_depth - 1); the last round's leaf values are sent once at the end.
    assert profile["round_trips_per_tree"] == pytest.approx((5 * 3 + 1) / 15)


_BAD_X = {
    "0 features": (np.empty((60, 0)), "0 feature"),
    "0 samples": (np.empty((0, 3)), "0 sample"),
    "complex": (np.ones((60, 3)) + 1j, "Complex data"),
    "NaN": (np.where(np.arange(180).reshape(60, 3) == 7, np.nan, 1.0), "Input X contains NaN"),
    "infinity": (np.where(np.arange(180).reshape(60, 3) == 7, np.inf, 1.0), "Input X contains infinity"),
}


@pytest.mark.parametrize("case", list(_BAD_X))
@pytest.mark.parametrize("name", ["GaussianNB", "MultinomialNB", "KMeans", "KNeighborsClassifier",
                                  "KNeighborsRegressor", "XGBRegressor"])
def test_dask_fit_checks_X_as_in_memory(client, name, case):
    X, message = _BAD_X[case]
    if name == "XGBRegressor" and case == "NaN":
        pytest.skip("NaN is a missing value for boosting")
    y = np.arange(X.shape[0]) % 2
    model = getattr(fd, name)(**({"n_clusters": 2, "n_init": 1} if name == "KMeans" else {}))
    Xd = da.from_array(X, chunks=(max(1, X.shape[0] // 3), X.shape[1]))
    with pytest.raises(ValueError, match=message):
        model.fit(Xd) if name == "KMeans" else model.fit(Xd, da.from_array(y, chunks=max(1, len(y) // 3)))


def test_dask_targets_of_the_wrong_kind(client, wine):
    X, y = wine
    mixed = np.array(["a", None], dtype=object)[y % 2]
    # The in-memory estimator's TypeError (labels that cannot be sorted into classes).
    with pytest.raises(TypeError, match="y mixes strings and numbers"):
        fd.GaussianNB().fit(chunked(X, 3), chunked(mixed, 3))
    with pytest.raises(TypeError, match="y mixes strings and numbers"):
        fastscratch.GaussianNB().fit(X, mixed)
    with pytest.raises(ValueError, match="Unknown label type"):
        fd.GaussianNB().fit(chunked(X, 3), chunked(y + 0.5 * np.arange(len(y)), 3))  # continuous
    with pytest.raises(ValueError, match="must hold numbers"):
        fd.XGBRegressor(n_estimators=2).fit(chunked(X, 3), chunked(np.array(["a", "b"])[y % 2], 3))


def test_dask_kmeans_on_duplicated_rows_as_in_memory(client):
    X = np.repeat(np.array([[1.0, 2.0], [3.0, 4.0]]), 30, axis=0)
    dist = fd.KMeans(n_clusters=3, n_init=1, random_state=0).fit(chunked(X, 3))
    assert dist.cluster_centers_.shape == (3, 2)
    np.testing.assert_allclose(np.unique(dist.cluster_centers_, axis=0), [[1.0, 2.0], [3.0, 4.0]])
    assert dist.inertia_ == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("grow_policy", ["depthwise", "lossguide"])
def test_boosting_with_missing_values_equals_in_memory(client, grow_policy):
    X, y = load_breast_cancer(return_X_y=True)
    X = X.copy()
    X[np.random.default_rng(1).random(X.shape) < 0.1] = np.nan
    params = dict(n_estimators=3, max_depth=3, grow_policy=grow_policy,
                  max_leaves=6 if grow_policy == "lossguide" else 0, backend="numpy")
    dist = fd.XGBClassifier(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBClassifier(**params).fit(X, y)
    _assert_same_forest(dist, ref, value_atol=1e-6)
    np.testing.assert_allclose(dist.predict_proba(chunked(X, 2)).compute(), ref.predict_proba(X),
                               rtol=1e-6, atol=1e-7)


def test_boosting_multiclass_weighted_with_missing_values_equals_in_memory(client):
    X, y = load_wine(return_X_y=True)
    X = X.copy()
    X[np.random.default_rng(2).random(X.shape) < 0.15] = np.nan
    w = np.random.default_rng(3).uniform(0.2, 3.0, size=len(y))
    params = dict(n_estimators=4, max_depth=4, backend="numpy")
    dist = fd.XGBClassifier(**params).fit(chunked(X, 5), chunked(y, 5), sample_weight=chunked(w, 5))
    ref = fastscratch.XGBClassifier(**params).fit(X, y, sample_weight=w)
    _assert_same_forest(dist, ref, value_atol=1e-6)
    np.testing.assert_allclose(dist.predict_proba(chunked(X, 2)).compute(), ref.predict_proba(X),
                               rtol=1e-6, atol=1e-7)


def test_boosting_level_is_one_call_per_shard(client):
    """The design: one round trip to the shards per tree level, whatever the number of nodes."""
    X, y = load_breast_cancer(return_X_y=True)
    model = fd.XGBClassifier(n_estimators=6, max_depth=4, backend="numpy").fit(chunked(X, 4), chunked(y, 4))
    profile = model._dask_profile
    assert profile["shards"] == 2
    # max_depth levels per tree (the root's histograms, then one call per level below it),
    # plus the last tree's leaf values sent once at the end.
    assert profile["round_trips_per_tree"] == pytest.approx(4 + 1 / 6)


def test_boosting_without_a_distributed_scheduler_equals_in_memory():
    """With another Dask scheduler in force, the one shard lives in this process."""
    import dask

    X, y = load_diabetes(return_X_y=True)
    X = X.copy()
    X[::7, 2] = np.nan
    params = dict(n_estimators=3, max_depth=3, objective="count:poisson", backend="numpy")
    y = np.round(y / 25)
    with dask.config.set(scheduler="synchronous"):
        dist = fd.XGBRegressor(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBRegressor(**params).fit(X, y)
    assert dist._dask_profile["shards"] == 1
    assert dist.base_score_ == pytest.approx(ref.base_score_, rel=1e-6)
    _assert_same_forest(dist, ref, value_atol=1e-5)


@pytest.mark.parametrize("objective", ["reg:absoluteerror", "reg:pseudohubererror"])
def test_boosting_objectives_not_on_dask_are_refused(client, objective):
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="not supported on Dask input"):
        fd.XGBRegressor(n_estimators=2, objective=objective).fit(chunked(X, 2), chunked(y, 2))


def test_boosting_without_reachable_worker_sockets_falls_back_to_dask_calls(client, monkeypatch):
    """Workers whose sockets the client cannot reach (a firewall): the same fit, through Dask."""
    import fastscratch.distributed.boosting as dask_boosting

    def unreachable(address, timeout=None):
        raise OSError("unreachable")

    monkeypatch.setattr(dask_boosting, "_open_socket", unreachable)
    X, y = load_breast_cancer(return_X_y=True)
    # With a row sample: each shard gets its own slice of it through the actor calls too.
    params = dict(n_estimators=3, max_depth=3, subsample=0.7, random_state=1, backend="numpy")
    dist = fd.XGBClassifier(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBClassifier(**params).fit(X, y)
    assert dist._dask_profile["shards"] == 2
    _assert_same_forest(dist, ref, value_atol=1e-6)


def test_boosting_rows_go_to_workers_in_contiguous_runs():
    from fastscratch.distributed.boosting import contiguous_runs

    assert contiguous_runs([50, 50, 50, 50], 2) == [(0, 2), (2, 4)]
    assert contiguous_runs([10, 10, 100], 2) == [(0, 2), (2, 3)]
    assert contiguous_runs([100], 4) == [(0, 1)]
    assert contiguous_runs([0, 0, 100], 2) == [(2, 3)]  # no shard without rows
    runs = contiguous_runs([7] * 13, 3)
    assert [b for run in runs for b in range(*run)] == list(range(13))


def test_boosting_with_empty_blocks_equals_in_memory(client):
    X, y = load_breast_cancer(return_X_y=True)
    Xd, yd = chunked(X, 3), chunked(y, 3)
    Xd, yd = da.concatenate([Xd[:0], Xd[:0], Xd]), da.concatenate([yd[:0], yd[:0], yd])
    params = dict(n_estimators=2, max_depth=3, backend="numpy")
    dist = fd.XGBClassifier(**params).fit(Xd, yd)
    ref = fastscratch.XGBClassifier(**params).fit(X, y)
    _assert_same_forest(dist, ref, value_atol=1e-6)


def test_boosting_class_trees_in_groups_under_the_memory_cap(client, monkeypatch):
    """Class trees whose histograms would pass the cap grow a few at a time, with the same trees."""
    import fastscratch.distributed.boosting as dask_boosting

    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    params = dict(n_estimators=2, max_depth=3, max_bin=16, backend="numpy")
    # Room for the histograms of 3 trees (2 levels of 4 nodes, 64 features, 17 slots, g and h).
    monkeypatch.setattr(dask_boosting, "POOL_HISTOGRAM_BYTES", 3 * 2 * 4 * 64 * 17 * 2 * 8)
    dist = fd.XGBClassifier(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBClassifier(**params).fit(X, y)
    _assert_same_forest(dist, ref, value_atol=1e-6)
    # Per round: the roots with the first group of 3 trees, 2 levels per group of 3, 3, 3 and 1
    # trees; the leaf values of the last round at the end.
    assert dist._dask_profile["round_trips_per_tree"] == pytest.approx((2 * (1 + 4 * 2) + 1) / 20)


def test_grower_threads_pause_at_each_request_and_unwind_on_failure():
    from fastscratch.distributed.boosting import _GrowerThread

    answers = []

    def grow():
        answers.append(threads[0].ask(("build", 1)))
        answers.append(threads[0].ask(("build", 2)))
        return "tree"

    def fail():
        raise ValueError("in the grower")

    threads = [_GrowerThread(grow), _GrowerThread(fail)]
    threads[0].run_until_request()
    assert threads[0].request == ("build", 1) and not threads[0].done
    threads[0].run_until_request("first")
    assert threads[0].request == ("build", 2) and answers == ["first"]
    with pytest.raises(ValueError, match="in the grower"):
        threads[1].run_until_request()
    threads[0].stop()  # unwinds the waiting grower: it never returns its tree
    assert threads[0].done and threads[0].tree is None and answers == ["first"]
    threads[1].stop()


def _category_codes(X, seed):
    """X's first 4 columns, then 4 categorical features (codes; NaN missing in the third):
    3, 5, 8 and 25 categories, quantiles of X's columns 4 to 7."""
    def quantised(column, levels):
        edges = np.quantile(column, np.linspace(0, 1, levels + 1)[1:-1])
        return np.searchsorted(edges, column, side="right").astype(np.float64)

    codes = [quantised(X[:, 4 + j], levels) for j, levels in enumerate((3, 5, 8, 25))]
    codes[2][np.random.default_rng(seed).random(X.shape[0]) < 0.1] = np.nan
    return np.column_stack([X[:, :4], *codes]), ["q"] * 4 + ["c"] * 4


@pytest.mark.parametrize("sampling", ["none", "subsample"])
def test_boosting_categorical_features_equal_in_memory(client, sampling):
    X, y = load_breast_cancer(return_X_y=True)
    X, types = _category_codes(X, 14)
    params = dict(n_estimators=4, max_depth=4, enable_categorical=True, feature_types=types,
                  random_state=15, backend="numpy", **_SAMPLING[sampling])
    dist = fd.XGBClassifier(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBClassifier(**params).fit(X, y)
    _assert_same_forest(dist, ref, value_atol=1e-6)
    assert dist._forest.has_categorical  # category-set splits, grown on the shards
    np.testing.assert_allclose(dist.predict_proba(chunked(X, 2)).compute(), ref.predict_proba(X),
                               rtol=1e-6, atol=1e-7)


def test_boosting_multiclass_categorical_features_equal_in_memory(client):
    X, y = load_wine(return_X_y=True)
    X, types = _category_codes(X, 16)
    params = dict(n_estimators=3, max_depth=3, enable_categorical=True, feature_types=types,
                  max_cat_to_onehot=4, backend="numpy")
    dist = fd.XGBClassifier(**params).fit(chunked(X, 4), chunked(y, 4))
    ref = fastscratch.XGBClassifier(**params).fit(X, y)
    _assert_same_forest(dist, ref, value_atol=1e-6)


def test_boosting_categorical_input_checked_as_in_memory(client):
    X, y = load_breast_cancer(return_X_y=True)
    X, types = _category_codes(X, 17)
    X[300, 6] = -1.0  # a negative code, in the second block
    with pytest.raises(ValueError, match="non-negative integer codes"):
        fd.XGBClassifier(n_estimators=2, enable_categorical=True, feature_types=types).fit(
            chunked(X, 3), chunked(y, 3))
    with pytest.raises(ValueError, match="enable_categorical=True"):
        fd.XGBClassifier(n_estimators=2, feature_types=types).fit(chunked(X, 3), chunked(y, 3))
    frame = pd.DataFrame({"a": X[:, 0], "c": pd.Categorical.from_codes([0, 1] * 284 + [0], ["u", "v"])})
    with pytest.raises(ValueError, match="enable_categorical=True"):
        fd.XGBClassifier(n_estimators=2).fit(dd.from_pandas(frame, npartitions=2), chunked(y, 2))
    unknown = dd.from_pandas(frame, npartitions=2)
    unknown["c"] = unknown["c"].cat.as_unknown()
    with pytest.raises(ValueError, match="categorize"):
        fd.XGBClassifier(n_estimators=2, enable_categorical=True).fit(unknown, chunked(y, 2))


def test_boosting_dask_frame_with_category_columns_equals_in_memory(client):
    """A Dask frame's category columns, coded by value as the in-memory fit codes a pandas frame."""
    X, y = load_breast_cancer(return_X_y=True)
    codes, _ = _category_codes(X, 18)
    frame = pd.DataFrame(codes[:, :4], columns=[f"x{i}" for i in range(4)])
    for j, levels in zip(range(4, 8), (3, 5, 8, 25)):
        column = np.nan_to_num(codes[:, j], nan=-1).astype(int)
        frame[f"c{levels}"] = pd.Categorical.from_codes(column, [f"k{i}" for i in range(levels)])
    params = dict(n_estimators=3, max_depth=3, enable_categorical=True, backend="numpy")
    dist = fd.XGBClassifier(**params).fit(dd.from_pandas(frame, npartitions=3),
                                          dd.from_pandas(pd.Series(y), npartitions=3))
    ref = fastscratch.XGBClassifier(**params).fit(frame, y)
    _assert_same_forest(dist, ref, value_atol=1e-6)
    assert dist._forest.has_categorical
    # Predicting a frame whose categories are listed in another order: re-coded by value.
    shuffled = frame.copy()
    shuffled["c5"] = shuffled["c5"].cat.reorder_categories(["k4", "k3", "k2", "k1", "k0"])
    np.testing.assert_allclose(
        dist.predict_proba(dd.from_pandas(shuffled, npartitions=2)).compute(),
        ref.predict_proba(frame), rtol=1e-6, atol=1e-7)


def test_boosting_class_trees_together_keep_each_call_small():
    """Class trees grow together while one call's histograms stay within CALL_HISTOGRAM_BYTES
    on a shard (and the client's buffers within POOL_HISTOGRAM_BYTES)."""
    from fastscratch.distributed.boosting import CALL_HISTOGRAM_BYTES, _trees_at_once

    node_bytes = 28 * 257 * 2 * 8
    assert _trees_at_once(fd.XGBClassifier(max_depth=6), 10, 28, 257, 200_000) == 10
    # Depth 8: 64 nodes built per tree at its deepest level.
    assert _trees_at_once(fd.XGBClassifier(max_depth=8), 10, 28, 257, 200_000) == \
        CALL_HISTOGRAM_BYTES // (64 * node_bytes) < 10
    assert _trees_at_once(fd.XGBClassifier(max_depth=0), 10, 28, 257, 200_000) == 1
    assert _trees_at_once(fd.XGBClassifier(max_depth=0, grow_policy="lossguide", max_leaves=31),
                          10, 28, 257, 200_000) == 10


@pytest.mark.parametrize("scheduler", ["distributed", "synchronous"])
def test_boosting_multiclass_lossguide_equals_in_memory(client, scheduler):
    """Lossguide class trees grown together (a node per call and tree), on the workers' shards
    or on the one shard in this process."""
    import dask

    X, y = load_wine(return_X_y=True)
    X = _with_missing(X, 0.1, 19)
    params = dict(n_estimators=3, grow_policy="lossguide", max_depth=0, max_leaves=6,
                  subsample=0.8, random_state=20, backend="numpy")
    with dask.config.set(scheduler=scheduler):
        dist = fd.XGBClassifier(**params).fit(chunked(X, 3), chunked(y, 3))
    ref = fastscratch.XGBClassifier(**params).fit(X, y)
    assert dist._dask_profile["shards"] == (2 if scheduler == "distributed" else 1)
    _assert_same_forest(dist, ref, value_atol=1e-6)


def test_boosting_failure_while_class_trees_grow_together_leaves_no_thread(monkeypatch):
    """A shard failing mid-level: its error reaches the caller and every paused grower unwinds."""
    import threading

    import dask

    import fastscratch.distributed.boosting as dask_boosting

    calls = []
    build = dask_boosting.BoostingShard.build

    def failing_build(self, group, keys, out):
        calls.append(group)
        if len(calls) > 8:  # after the second level's first trees
            raise RuntimeError("shard failed")
        return build(self, group, keys, out)

    monkeypatch.setattr(dask_boosting.BoostingShard, "build", failing_build)
    X, y = load_wine(return_X_y=True)
    with dask.config.set(scheduler="synchronous"), pytest.raises(RuntimeError, match="shard failed"):
        fd.XGBClassifier(n_estimators=2, max_depth=4, backend="numpy").fit(chunked(X, 2), chunked(y, 2))
    assert not [t for t in threading.enumerate() if t.name == "fastscratch-dask-tree"]
