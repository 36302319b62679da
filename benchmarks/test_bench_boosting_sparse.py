"""Gradient boosting on a scipy CSR matrix (absent entries missing): fit and predict vs xgboost.

A 20-newsgroups-like term-count matrix, 1% dense (Poisson counts), and a linear
target; trees of depth 6, 2 threads, both libraries fed the same CSR matrix.
Sizes (rows, columns, trees): tiny 5k x 200 and 5, medium 100k x 1000 and 50,
large 500k x 1000 and 100. ``extra_info["rmse"]`` is the training RMSE (the
trees are xgboost's given its cuts; tests/test_boosting_api.py). The NumPy
backend runs at the tiny size only.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from fastscratch import XGBRegressor
from fastscratch._sizes import sized
from fastscratch.kernels import available_backends

SIZES = {"tiny": (5_000, 200, 5), "medium": (100_000, 1_000, 50),
         "large": (500_000, 1_000, 100)}
N_THREADS = 2
PARAMS = dict(max_depth=6, n_jobs=N_THREADS)


@pytest.fixture(scope="module")
def data(bench_size):
    n, d, n_trees = sized(SIZES, bench_size)
    rng = np.random.default_rng(0)
    X = sp.random(n, d, density=0.01, format="csr", random_state=1,
                  data_rvs=lambda k: rng.poisson(2.0, k).astype(np.float32) + 1)
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    return X, y, n_trees


def _group(data, task):
    X, _, n_trees = data
    return f"boosting CSR {task} {X.shape[0]}x{X.shape[1]} 1% dense trees {n_trees}"


def _rmse(model, X, y):
    return float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))


@pytest.mark.parametrize("backend", available_backends())
def test_fit_sparse(benchmark, data, backend):
    X, y, n_trees = data
    if backend == "numpy" and X.shape[0] > 20_000:
        pytest.skip("the NumPy reference takes minutes beyond the tiny size")
    XGBRegressor(n_estimators=2, backend=backend).fit(X[:2000], y[:2000])  # compile
    benchmark.group = _group(data, "fit")
    model = benchmark.pedantic(
        lambda: XGBRegressor(n_estimators=n_trees, backend=backend, **PARAMS).fit(X, y),
        rounds=1, iterations=1)
    benchmark.extra_info["backend"] = backend
    benchmark.extra_info["rmse"] = _rmse(model, X, y)


def test_fit_sparse_xgboost(benchmark, data):
    xgboost = pytest.importorskip("xgboost")
    X, y, n_trees = data
    benchmark.group = _group(data, "fit")
    model = benchmark.pedantic(
        lambda: xgboost.XGBRegressor(n_estimators=n_trees, tree_method="hist",
                                     **PARAMS).fit(X, y), rounds=1, iterations=1)
    benchmark.extra_info["backend"] = "xgboost hist"
    benchmark.extra_info["rmse"] = _rmse(model, X, y)


@pytest.mark.parametrize("backend", available_backends())
def test_predict_sparse(benchmark, data, backend):
    X, y, n_trees = data
    model = XGBRegressor(n_estimators=n_trees, backend=backend, **PARAMS).fit(X[:20_000],
                                                                             y[:20_000])
    model.predict(X[:100])  # compile
    benchmark.group = _group(data, "predict")
    benchmark.pedantic(lambda: model.predict(X), rounds=3, iterations=1)
    benchmark.extra_info["backend"] = backend


def test_predict_sparse_xgboost(benchmark, data):
    xgboost = pytest.importorskip("xgboost")
    X, y, n_trees = data
    model = xgboost.XGBRegressor(n_estimators=n_trees, tree_method="hist",
                                 **PARAMS).fit(X[:20_000], y[:20_000])
    benchmark.group = _group(data, "predict")
    benchmark.pedantic(lambda: model.predict(X), rounds=3, iterations=1)
    benchmark.extra_info["backend"] = "xgboost hist"
