"""Gradient boosting: fit and predict, each backend vs xgboost hist (and LightGBM, sklearn).

Issue "Gradient boosting from scratch, part 1": 1,000,000 x 28
``make_classification(n_informative=20)`` training rows, 100 trees, max_depth 6,
256 bins, learning rate 0.1; AUC on 200k held-out rows (``extra_info["auc"]``);
prediction of the 200k held-out rows. That is the "large" size; "default" is
200k training rows (the same shape otherwise), "tiny" 10k rows and 5 trees.
The NumPy backend's fit runs at the tiny size only (minutes beyond).
Every model uses 2 threads. Numba kernels are compiled before timing.
"""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score

from fastscratch import XGBClassifier
from fastscratch.kernels import available_backends

SIZES = {  # (n_train, n_test, n_trees)
    "tiny": (10_000, 2_000, 5),
    "default": (200_000, 200_000, 100),
    "large": (1_000_000, 200_000, 100),
}
PARAMS = dict(max_depth=6, learning_rate=0.1)
N_THREADS = 2


@pytest.fixture(scope="module")
def data(bench_size):
    n_train, n_test, n_trees = SIZES[bench_size]
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
