"""Gradient boosting with categorical features: fit, each backend vs xgboost hist.

Issue 20: 1,000,000 rows, 5 pandas category columns of 50 levels and 5 numeric
columns (``make_classification`` features, the categorical ones quantised into
50 levels), ``enable_categorical=True`` (partition splits: 50 levels are above
``max_cat_to_onehot``), 100 trees of depth 6, learning rate 0.1, 2 threads.
That is the "large" size; "medium" is 200k rows, "tiny" 10k rows and 5 trees.
AUC on held-out rows in ``extra_info["auc"]``. The NumPy backend runs at the
tiny size only. Numba kernels are compiled before timing.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score

from fastscratch import XGBClassifier
from fastscratch._sizes import sized
from fastscratch.kernels import available_backends

SIZES = {  # (n_train, n_test, n_trees)
    "tiny": (10_000, 2_000, 5),
    "medium": (200_000, 50_000, 100),
    "large": (1_000_000, 200_000, 100),
}
N_LEVELS = 50
PARAMS = dict(max_depth=6, learning_rate=0.1, enable_categorical=True)
N_THREADS = 2


def categorical_problem(n_rows, seed=0):
    """5 numeric and 5 categorical columns (50 levels each), and a binary target."""
    X, y = make_classification(n_samples=n_rows, n_features=10, n_informative=8,
                               random_state=seed)
    frame = pd.DataFrame(X[:, :5].astype(np.float32), columns=[f"x{i}" for i in range(5)])
    for j in range(5):
        column = X[:, 5 + j]
        edges = np.quantile(column, np.linspace(0, 1, N_LEVELS + 1)[1:-1])
        codes = np.searchsorted(edges, column)
        # Shuffle the level order so that a threshold on the codes is not enough.
        codes = np.random.RandomState(seed + j).permutation(N_LEVELS)[codes]
        frame[f"c{j}"] = pd.Categorical.from_codes(codes, categories=[f"L{i}" for i in
                                                                      range(N_LEVELS)])
    return frame, y


@pytest.fixture(scope="module")
def data(bench_size):
    n_train, n_test, n_trees = sized(SIZES, bench_size)
    frame, y = categorical_problem(n_train + n_test)
    return frame.iloc[:n_train], y[:n_train], frame.iloc[n_train:], y[n_train:], n_trees


def _group(data):
    X, _, X_test, _, n_trees = data
    return (f"boosting categorical fit {X.shape[0]}x{X.shape[1]} (5 x {N_LEVELS} levels) "
            f"trees {n_trees}")


@pytest.mark.parametrize("backend", available_backends())
def test_fit(benchmark, data, backend):
    X, y, X_test, y_test, n_trees = data
    if backend == "numpy" and X.shape[0] > 20_000:
        pytest.skip("the NumPy reference takes minutes beyond the tiny size")
    small, small_y = categorical_problem(3000, seed=1)
    XGBClassifier(n_estimators=2, backend=backend, **PARAMS).fit(small, small_y)  # compile
    benchmark.group = _group(data)
    model = benchmark.pedantic(
        lambda: XGBClassifier(n_estimators=n_trees, backend=backend, n_jobs=N_THREADS,
                              **PARAMS).fit(X, y), rounds=1, iterations=1)
    benchmark.extra_info["backend"] = backend
    benchmark.extra_info["auc"] = float(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))


def test_fit_xgboost(benchmark, data):
    xgboost = pytest.importorskip("xgboost")
    X, y, X_test, y_test, n_trees = data
    benchmark.group = _group(data)
    model = benchmark.pedantic(
        lambda: xgboost.XGBClassifier(n_estimators=n_trees, tree_method="hist",
                                      n_jobs=N_THREADS, **PARAMS).fit(X, y),
        rounds=1, iterations=1)
    benchmark.extra_info["backend"] = "xgboost"
    benchmark.extra_info["auc"] = float(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))
