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
Issue 19 ("faster than xgboost on every shape") adds LightGBM as a second
reference in every group, ``make_friedman1`` regression (1M rows at "large")
and a rows sweep (100k, 300k, 1M, 3M rows of the 28-feature problem at
"large"; 30k, 100k, 300k at "medium"; seconds at "tiny"), timed over
``ROUNDS`` rounds (pytest-benchmark reports the median).
Every model uses 2 threads. Numba kernels are compiled before timing.
"""

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_friedman1
from sklearn.metrics import r2_score, roc_auc_score

from fastscratch._sizes import sized
from fastscratch import XGBClassifier, XGBRegressor
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


# Part 2 (issue "Gradient boosting, part 2"): multiclass and missing values; issue 19 adds
# LightGBM to these groups, the regression case and the rows sweep.
MULTICLASS_SIZES = {"tiny": (5_000, 5), "medium": (200_000, 50), "large": (200_000, 50)}
MISSING_SIZES = {"tiny": (10_000, 5), "medium": (200_000, 100), "large": (1_000_000, 100)}
REGRESSION_SIZES = {"tiny": (10_000, 5), "medium": (200_000, 100), "large": (1_000_000, 100)}
SWEEP_ROWS = {"tiny": (2_000, 6_000), "medium": (30_000, 100_000, 300_000),
              "large": (100_000, 300_000, 1_000_000, 3_000_000)}
SWEEP_TREES = {"tiny": 3, "medium": 50, "large": 100}
ROUNDS = {"tiny": 1, "medium": 3, "large": 3}  # timed fits per case (the median is reported)
CONTENDERS = [b for b in available_backends() if b != "numpy"] + ["xgboost", "lightgbm"]


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


@pytest.fixture(scope="module")
def regression_data(bench_size):
    n, n_trees = sized(REGRESSION_SIZES, bench_size)
    X, y = make_friedman1(n_samples=n, n_features=10, noise=1.0, random_state=0)
    return X.astype(np.float32), y, n_trees


def _model(name, n_estimators, regression=False, **extra):
    """Our estimator on backend ``name``, or the reference library ``name``, 2 threads."""
    if name == "xgboost":
        import xgboost
        kind = xgboost.XGBRegressor if regression else xgboost.XGBClassifier
        return kind(n_estimators=n_estimators, tree_method="hist", n_jobs=N_THREADS, **PARAMS,
                    **extra)
    if name == "lightgbm":
        lightgbm = pytest.importorskip("lightgbm")
        kind = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
        # Depth 6 holds at most 64 leaves; LightGBM's max_bin counts the missing bin too.
        return kind(n_estimators=n_estimators, max_depth=6, num_leaves=64, learning_rate=0.1,
                    max_bin=min(extra.get("max_bin", 256), 255), n_jobs=N_THREADS, verbose=-1)
    kind = XGBRegressor if regression else XGBClassifier
    return kind(n_estimators=n_estimators, backend=name, n_jobs=N_THREADS, **PARAMS, **extra)


def _timed_fit(benchmark, bench_size, name, make, X, y):
    if name not in ("xgboost", "lightgbm"):
        _warm_up(name)
    benchmark.extra_info["backend"] = name
    return benchmark.pedantic(lambda: make().fit(X, y), rounds=sized(ROUNDS, bench_size),
                              iterations=1)


@pytest.mark.parametrize("name", CONTENDERS)
def test_fit_multiclass(benchmark, bench_size, multiclass_data, name):
    X, y, n_rounds = multiclass_data
    benchmark.group = (f"boosting fit multiclass 10 classes {X.shape[0]}x{X.shape[1]} "
                       f"rounds {n_rounds}")
    model = _timed_fit(benchmark, bench_size, name, lambda: _model(name, n_rounds), X, y)
    benchmark.extra_info["train_accuracy"] = float(model.score(X, y))


@pytest.mark.parametrize("name", CONTENDERS)
def test_fit_missing_values(benchmark, bench_size, missing_data, name):
    X, y, n_trees = missing_data
    benchmark.group = f"boosting fit 10% NaN {X.shape[0]}x{X.shape[1]} trees {n_trees}"
    # max_bin 255: a feature with missing values keeps one code for them.
    model = _timed_fit(benchmark, bench_size, name, lambda: _model(name, n_trees, max_bin=255),
                       X, y)
    benchmark.extra_info["train_auc"] = float(roc_auc_score(y, model.predict_proba(X)[:, 1]))


@pytest.mark.parametrize("name", CONTENDERS)
def test_fit_regression(benchmark, bench_size, regression_data, name):
    X, y, n_trees = regression_data
    benchmark.group = f"boosting fit regression friedman1 {X.shape[0]}x{X.shape[1]} trees {n_trees}"
    model = _timed_fit(benchmark, bench_size, name,
                       lambda: _model(name, n_trees, regression=True), X, y)
    benchmark.extra_info["train_r2"] = float(r2_score(y, model.predict(X)))


@pytest.fixture(scope="module")
def sweep_data(bench_size):
    """The largest sweep problem; each point takes its first rows."""
    n = max(sized(SWEEP_ROWS, bench_size))
    X, y = make_classification(n_samples=n, n_features=28, n_informative=20, random_state=0)
    return X.astype(np.float32), y


def pytest_generate_tests(metafunc):
    """The rows sweep runs the points of the chosen ``--bench-size`` only."""
    if "n_rows" in metafunc.fixturenames:
        metafunc.parametrize("n_rows", sized(SWEEP_ROWS, metafunc.config.getoption("--bench-size")))


@pytest.mark.parametrize("name", CONTENDERS)
def test_fit_rows_sweep(benchmark, bench_size, sweep_data, n_rows, name):
    X, y = sweep_data[0][:n_rows], sweep_data[1][:n_rows]
    n_trees = sized(SWEEP_TREES, bench_size)
    benchmark.group = f"boosting fit rows sweep {n_rows}x{X.shape[1]} trees {n_trees}"
    benchmark.extra_info["n_rows"] = n_rows
    _timed_fit(benchmark, bench_size, name, lambda: _model(name, n_trees), X, y)


# The speed sweep of fastscratch/compare/sweeps.py: ours (backend="auto") and the reference at
# every point, one axis varied at a time (benchmarks/conftest.py builds the cases).
SWEEP_FAMILIES = ("boosting",)


def test_sweep(benchmark, sweep_case):
    sweep_case.run(benchmark)


# Issue 19's opt-in quantized gradients (use_quantized_grad, LightGBM's names): the fit of the
# main problem with exact and quantized gradients (4 levels, LightGBM's default), against
# xgboost and LightGBM's own quantized training; held-out AUC in extra_info["auc"].
QUANTIZED_CONTENDERS = ([f"{b} {mode}" for b in available_backends() if b != "numpy"
                         for mode in ("exact", "quantized")]
                        + ["xgboost", "lightgbm exact", "lightgbm quantized"])


@pytest.mark.parametrize("name", QUANTIZED_CONTENDERS)
def test_fit_quantized(benchmark, bench_size, data, name):
    X, y, _, _, n_trees = data
    benchmark.group = f"boosting fit quantized gradients {X.shape[0]}x{X.shape[1]} trees {n_trees}"
    library, _, mode = name.partition(" ")
    quantized = mode == "quantized"
    if library == "lightgbm":
        lightgbm = pytest.importorskip("lightgbm")

        def make():
            return lightgbm.LGBMClassifier(n_estimators=n_trees, max_depth=6, num_leaves=64,
                                           learning_rate=0.1, max_bin=255, n_jobs=N_THREADS,
                                           use_quantized_grad=quantized, verbose=-1)
    else:
        def make():
            return _model(library, n_trees, **({"use_quantized_grad": True} if quantized
                                               else {}))
    model = _timed_fit(benchmark, bench_size, library, make, X, y)
    _record(benchmark, name, model, data)
