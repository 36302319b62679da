"""Gradient boosting with monotone and interaction constraints: fit, each backend vs xgboost.

``make_friedman1`` with 28 features (5 informative), monotone +1 on the linear
terms x3, x4 and -1 on two noise features, interaction sets
``[[0, 1], [2], [3, 4, 5, 6]]``; trees of depth 6, learning rate 0.1, 2 threads.
Sizes (rows, trees): tiny 10k and 5, medium 200k and 100, large 1M and 100.
``extra_info["r2"]`` is the training R^2 (the constrained fits of both libraries
are the same model given the same cuts; tests/test_boosting_constraints.py).
The NumPy backend runs at the tiny size only.
"""

import numpy as np
import pytest
from sklearn.datasets import make_friedman1
from sklearn.metrics import r2_score

from fastscratch import XGBRegressor
from fastscratch._sizes import sized
from fastscratch.kernels import available_backends

SIZES = {"tiny": (10_000, 5), "medium": (200_000, 100), "large": (1_000_000, 100)}
N_THREADS = 2
MONOTONE = tuple(1 if f in (3, 4) else -1 if f in (10, 11) else 0 for f in range(28))
PARAMS = dict(max_depth=6, learning_rate=0.1, monotone_constraints=MONOTONE,
              interaction_constraints="[[0, 1], [2], [3, 4, 5, 6]]")


@pytest.fixture(scope="module")
def data(bench_size):
    n, n_trees = sized(SIZES, bench_size)
    X, y = make_friedman1(n_samples=n, n_features=28, noise=1.0, random_state=0)
    return X.astype(np.float32), y, n_trees


def _group(data):
    X, _, n_trees = data
    return f"boosting constrained fit {X.shape[0]}x{X.shape[1]} trees {n_trees}"


@pytest.mark.parametrize("backend", available_backends())
def test_fit_constrained(benchmark, data, backend):
    X, y, n_trees = data
    if backend == "numpy" and X.shape[0] > 20_000:
        pytest.skip("the NumPy reference takes minutes beyond the tiny size")
    XGBRegressor(n_estimators=2, backend=backend, **PARAMS).fit(X[:2000], y[:2000])  # compile
    benchmark.group = _group(data)
    model = benchmark.pedantic(
        lambda: XGBRegressor(n_estimators=n_trees, backend=backend, n_jobs=N_THREADS,
                             **PARAMS).fit(X, y), rounds=1, iterations=1)
    benchmark.extra_info["backend"] = backend
    benchmark.extra_info["r2"] = float(r2_score(y, model.predict(X)))


def test_fit_constrained_xgboost(benchmark, data):
    xgboost = pytest.importorskip("xgboost")
    X, y, n_trees = data
    benchmark.group = _group(data)
    model = benchmark.pedantic(
        lambda: xgboost.XGBRegressor(n_estimators=n_trees, tree_method="hist",
                                     n_jobs=N_THREADS, **PARAMS).fit(X, y),
        rounds=1, iterations=1)
    benchmark.extra_info["backend"] = "xgboost hist"
    benchmark.extra_info["r2"] = float(r2_score(y, model.predict(X)))
