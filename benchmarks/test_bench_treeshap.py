"""TreeSHAP: SHAP contributions of every backend vs xgboost's ``pred_contribs`` on the same trees.

Issue 20: 100k x 28 rows, 100 trees of depth 6 (target: at most 0.5x
xgboost's time). The trees are xgboost's (``XGBClassifier``, hist, learning
rate 0.1, on ``make_classification(n_informative=20)``), loaded into our
estimator with ``from_xgboost_json``, so both explain the same forest; the
explained rows are held out. "medium" and "large" are the issue's size;
"small" 10k rows; "tiny" 2k rows and 10 trees (seconds, the CI smoke run).
Interaction values (xgboost's ``pred_interactions``) on 1/50 of the rows.
The NumPy reference runs contributions at the tiny size only. 2 threads everywhere; Numba
is compiled before timing. Each case checks its answer against xgboost's
(1e-5 of the largest value) before it is timed.
"""

import numpy as np
import pytest
from fastscratch.kernels import available_backends
from sklearn.datasets import make_classification

from fastscratch._sizes import sized
from fastscratch.boosting._treeshap import tree_contributions
from fastscratch.boosting._xgboost_json import from_xgboost_json

SIZES = {"tiny": (2_000, 10), "small": (10_000, 100), "medium": (100_000, 100)}  # rows, trees
N_TRAIN = {"tiny": 5_000, "small": 50_000, "medium": 100_000}
ROUNDS = {"tiny": 1, "small": 3}
N_THREADS = 2
MAX_DEPTH = 6


@pytest.fixture(scope="module")
def problem(bench_size, tmp_path_factory):
    xgboost = pytest.importorskip("xgboost")
    n_rows, n_trees = sized(SIZES, bench_size)
    n_train = sized(N_TRAIN, bench_size)
    X, y = make_classification(n_samples=n_train + n_rows, n_features=28, n_informative=20,
                               random_state=0)
    X = X.astype(np.float32)
    reference = xgboost.XGBClassifier(n_estimators=n_trees, max_depth=MAX_DEPTH,
                                      learning_rate=0.1, tree_method="hist",
                                      n_jobs=N_THREADS).fit(X[:n_train], y[:n_train])
    path = tmp_path_factory.mktemp("treeshap") / "model.json"
    reference.save_model(path)
    model = from_xgboost_json(path, n_jobs=N_THREADS)
    return reference.get_booster(), model, np.ascontiguousarray(X[n_train:]), n_trees, bench_size


def _group(task, problem):
    _, _, X, n_trees, _ = problem
    return f"treeshap {task} {X.shape[0]}x{X.shape[1]} trees {n_trees} depth {MAX_DEPTH}"


def _rows(X, interactions):
    return X[::50] if interactions else X


def _check(values, expected):
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("interactions", [False, True], ids=["contribs", "interactions"])
@pytest.mark.parametrize("backend", available_backends())
def test_treeshap(benchmark, problem, backend, interactions):
    import xgboost

    booster, model, X, _, size = problem
    if backend == "numpy" and (size != "tiny" or interactions):
        pytest.skip("the NumPy reference takes minutes beyond the tiny size (and for "
                    "interactions)")
    X = _rows(X, interactions)
    expected = booster.predict(xgboost.DMatrix(X[:200]), pred_contribs=not interactions,
                               pred_interactions=interactions)
    _check(tree_contributions(model, X[:200], interactions=interactions, backend=backend,
                              n_threads=N_THREADS), expected)  # also compiles Numba
    benchmark.group = _group("interactions" if interactions else "contribs", problem)
    benchmark.extra_info["backend"] = backend
    benchmark.pedantic(tree_contributions, args=(model, X),
                       kwargs={"interactions": interactions, "backend": backend,
                               "n_threads": N_THREADS},
                       rounds=sized(ROUNDS, size), iterations=1)


@pytest.mark.parametrize("interactions", [False, True], ids=["contribs", "interactions"])
def test_treeshap_xgboost(benchmark, problem, interactions):
    import xgboost

    booster, _, X, _, size = problem
    X = _rows(X, interactions)
    booster.set_param({"nthread": N_THREADS})

    def explain():
        return booster.predict(xgboost.DMatrix(X, nthread=N_THREADS),
                               pred_contribs=not interactions,
                               pred_interactions=interactions)

    booster.predict(xgboost.DMatrix(X[:100]), pred_contribs=True)
    benchmark.group = _group("interactions" if interactions else "contribs", problem)
    benchmark.extra_info["backend"] = "xgboost"
    benchmark.pedantic(explain, rounds=sized(ROUNDS, size), iterations=1)
