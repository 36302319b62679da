"""Gradient boosting: fit and predict, each backend vs xgboost hist (and LightGBM, sklearn).

Issue "Gradient boosting from scratch, part 1": 1,000,000 x 28
``make_classification(n_informative=20)`` training rows, 100 trees, max_depth 6,
256 bins, learning rate 0.1; AUC on 200k held-out rows (``extra_info["auc"]``);
prediction of the 200k held-out rows. That is the "large" size; "medium" is
200k training rows (the same shape otherwise), "tiny" 10k rows and 5 trees.
The NumPy backend's fit runs at the tiny size only (minutes beyond).

Part 2 adds, vs xgboost: multiclass (10 classes, 200k x 28, 50 rounds; tiny 5k,
5 rounds) and 10% missing values (1M x 28 at "large", 200k at "medium", 100
trees; max_bin 255).
Every model uses 2 threads. Numba kernels are compiled before timing.
"""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score

from fastscratch._sizes import sized
from fastscratch import XGBClassifier
from fastscratch.kernels import available_backends

SIZES = {  # (n_train, n_test, n_trees)
    "tiny": (10_000, 2_000, 5),
    "medium": (200_000, 200_000, 100),
    "large": (1_000_000, 200_000, 100),
}
PARAMS = dict(max_depth=6, learning_rate=0.1)
N_THREADS = 2


@pytest.fixture(scope="module")
def data(bench_size):
    n_train, n_test, n_trees = sized(SIZES, bench_size)
    X, y = make_classification(n_samples=n_train + n_test, n_features=28, n_informative=20,
                               random_state=0)
    X = X.astype(np.float32)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:], n_trees


def _group(task, data):
    X, _, X_test, _, n_trees = data
    return f"boosting {task} {X.shape[0]}x{X.shape[1]} test {X_test.shape[0]} trees {n_trees}"


def _record(benchmark, name, model, data):
    _, _, X_test, y_test, _ = data
    benchmark.extra_info["backend"] = name
    benchmark.extra_info["auc"] = float(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))


def _ours(backend, n_trees):
    return XGBClassifier(n_estimators=n_trees, max_bin=256, backend=backend, n_jobs=N_THREADS,
                         **PARAMS)


def _skip_numpy(backend, data):
    if backend == "numpy" and data[0].shape[0] > 20_000:
        pytest.skip("the NumPy reference takes minutes beyond the tiny size")


def _warm_up(backend):
    X, y = make_classification(n_samples=5000, n_features=28, random_state=0)
    _ours(backend, 2).fit(X, y).predict_proba(X)


@pytest.mark.parametrize("backend", available_backends())
def test_fit(benchmark, data, backend):
    _skip_numpy(backend, data)
    X, y, _, _, n_trees = data
    _warm_up(backend)
    benchmark.group = _group("fit", data)
    model = benchmark.pedantic(lambda: _ours(backend, n_trees).fit(X, y), rounds=1, iterations=1)
    _record(benchmark, backend, model, data)


def test_fit_xgboost(benchmark, data):
    xgboost = pytest.importorskip("xgboost")
    X, y, _, _, n_trees = data
    benchmark.group = _group("fit", data)
    model = benchmark.pedantic(
        lambda: xgboost.XGBClassifier(n_estimators=n_trees, tree_method="hist", max_bin=256,
                                      n_jobs=N_THREADS, **PARAMS).fit(X, y),
        rounds=1, iterations=1)
    _record(benchmark, "xgboost hist", model, data)


def test_fit_lightgbm(benchmark, data):
    lightgbm = pytest.importorskip("lightgbm")
    X, y, _, _, n_trees = data
    benchmark.group = _group("fit", data)
    model = benchmark.pedantic(
        lambda: lightgbm.LGBMClassifier(n_estimators=n_trees, max_depth=6, num_leaves=64,
                                        learning_rate=0.1, max_bin=255, n_jobs=N_THREADS,
                                        verbose=-1).fit(X, y),
        rounds=1, iterations=1)
    _record(benchmark, "lightgbm", model, data)


def test_fit_sklearn(benchmark, data):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    X, y, _, _, n_trees = data
    benchmark.group = _group("fit", data)

    def fit():
        with threadpool_limits(N_THREADS, user_api="openmp"):
            return HistGradientBoostingClassifier(max_iter=n_trees, max_depth=6,
                                                  max_leaf_nodes=64, learning_rate=0.1,
                                                  early_stopping=False).fit(X, y)
    model = benchmark.pedantic(fit, rounds=1, iterations=1)
    _record(benchmark, "sklearn HistGradientBoosting", model, data)


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _, n_trees = data
    # Prediction cost depends on the trees only: fit once (fast backend).
    return _ours("auto", n_trees).fit(X, y)


@pytest.mark.parametrize("backend", available_backends())
def test_predict(benchmark, data, fitted, backend):
    X_test = data[2]
    fitted.set_params(backend=backend)
    fitted.predict_proba(X_test[:100])  # compile / warm up
    benchmark.group = _group("predict", data)
    benchmark.extra_info["backend"] = backend
    benchmark.pedantic(fitted.predict_proba, args=(X_test,), rounds=3, iterations=1)


def test_predict_xgboost(benchmark, data):
    xgboost = pytest.importorskip("xgboost")
    X, y, X_test, _, n_trees = data
    model = xgboost.XGBClassifier(n_estimators=n_trees, tree_method="hist", max_bin=256,
                                  n_jobs=N_THREADS, **PARAMS).fit(X, y)
    model.predict_proba(X_test[:100])
    benchmark.group = _group("predict", data)
    benchmark.extra_info["backend"] = "xgboost"
    benchmark.pedantic(model.predict_proba, args=(X_test,), rounds=3, iterations=1)


# Part 2 (issue "Gradient boosting, part 2"): multiclass and missing values, vs xgboost.
MULTICLASS_SIZES = {"tiny": (5_000, 5), "medium": (200_000, 50), "large": (200_000, 50)}
MISSING_SIZES = {"tiny": (10_000, 5), "medium": (200_000, 100), "large": (1_000_000, 100)}


@pytest.fixture(scope="module")
def multiclass_data(bench_size):
    n, n_rounds = sized(MULTICLASS_SIZES, bench_size)
    X, y = make_classification(n_samples=n, n_features=28, n_informative=20, n_classes=10,
                               random_state=0)
    return X.astype(np.float32), y, n_rounds


@pytest.fixture(scope="module")
def missing_data(bench_size):
    n, n_trees = sized(MISSING_SIZES, bench_size)
    X, y = make_classification(n_samples=n, n_features=28, n_informative=20, random_state=0)
    X = X.astype(np.float32)
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    return X, y, n_trees


def _xgboost_or_ours(name, n_estimators, **extra):
    if name == "xgboost":
        import xgboost
        return xgboost.XGBClassifier(n_estimators=n_estimators, tree_method="hist",
                                     n_jobs=N_THREADS, **PARAMS, **extra)
    return XGBClassifier(n_estimators=n_estimators, backend=name, n_jobs=N_THREADS, **PARAMS,
                         **extra)


@pytest.mark.parametrize("name", [b for b in available_backends() if b != "numpy"] + ["xgboost"])
def test_fit_multiclass(benchmark, multiclass_data, name):
    X, y, n_rounds = multiclass_data
    if name != "xgboost":
        _warm_up(name)
    benchmark.group = f"boosting fit multiclass 10 classes {X.shape[0]}x{X.shape[1]} rounds {n_rounds}"
    benchmark.extra_info["backend"] = name
    model = benchmark.pedantic(lambda: _xgboost_or_ours(name, n_rounds).fit(X, y),
                               rounds=1, iterations=1)
    benchmark.extra_info["train_accuracy"] = float(model.score(X, y))


@pytest.mark.parametrize("name", [b for b in available_backends() if b != "numpy"] + ["xgboost"])
def test_fit_missing_values(benchmark, missing_data, name):
    X, y, n_trees = missing_data
    if name != "xgboost":
        _warm_up(name)
    benchmark.group = f"boosting fit 10% NaN {X.shape[0]}x{X.shape[1]} trees {n_trees}"
    benchmark.extra_info["backend"] = name
    # max_bin 255: a feature with missing values keeps one code for them.
    model = benchmark.pedantic(lambda: _xgboost_or_ours(name, n_trees, max_bin=255).fit(X, y),
                               rounds=1, iterations=1)
    benchmark.extra_info["train_auc"] = float(roc_auc_score(y, model.predict_proba(X)[:, 1]))
