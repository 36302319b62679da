"""Boosting fits on enough rows that every kernel takes its parallel path.

The kernels switch to threads above a size (on an idle machine, histograms:
2**14 rows in a level; partitions: 2**17 rows; split search: 2**15 histogram
slots; larger on a shared machine); these
fits use 60,000 rows and lower the thresholds to 0, so that every kernel runs
threaded on every level. A fit on 1 and on 2 threads must give
bit-identical trees (every float the same), for every compiled backend, and
the trees must be xgboost's given its cut points.
"""

import re
from types import SimpleNamespace

import numpy as np
import pytest
import xgboost
from fastscratch.kernels import available_backends
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification, make_friedman1

from fastscratch import XGBClassifier, XGBRegressor

N_ROWS = 60_000
LEAF = re.compile(r"leaf=(-?[0-9.e+-]+)")
COMPILED = [b for b in available_backends() if b != "numpy"]


@pytest.fixture(scope="module")
def binary_nan():
    X, y = make_classification(n_samples=N_ROWS, n_features=12, n_informative=8,
                               random_state=0)
    X = X.astype(np.float32)
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    return X, y


@pytest.fixture(scope="module")
def multiclass():
    X, y = make_classification(n_samples=N_ROWS, n_features=12, n_informative=8, n_classes=4,
                               random_state=1)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def friedman():
    X, y = make_friedman1(n_samples=N_ROWS, n_features=10, noise=1.0, random_state=0)
    return X.astype(np.float32), y


CASES = {
    "binary with NaN": ("binary_nan", XGBClassifier, dict(max_depth=6)),
    "multiclass": ("multiclass", XGBClassifier, dict(max_depth=5)),
    "regression": ("friedman", XGBRegressor, dict(max_depth=6)),
    "lossguide": ("friedman", XGBRegressor, dict(grow_policy="lossguide", max_leaves=48,
                                                 max_depth=0)),
    "sampling": ("binary_nan", XGBClassifier, dict(max_depth=6, subsample=0.7,
                                                   colsample_bynode=0.6, random_state=3)),
}


def _forest(model):
    nodes, roots, _ = model._forest.arrays()
    return nodes, roots


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("case", list(CASES))
def test_one_and_two_threads_bit_identical(request, always_parallel, backend, case):
    data, estimator, params = CASES[case]
    X, y = request.getfixturevalue(data)
    fits = [estimator(n_estimators=3, backend=backend, n_jobs=n, **params).fit(X, y)
            for n in (1, 2)]
    (nodes_1, roots_1), (nodes_2, roots_2) = _forest(fits[0]), _forest(fits[1])
    assert_array_equal(roots_1, roots_2)
    assert set(nodes_1) == set(nodes_2)
    for name in nodes_1:
        assert_array_equal(nodes_1[name], nodes_2[name], err_msg=name)
    assert (nodes_1["left"] >= 0).sum() > 20  # real trees, not stumps
    predict = "predict_proba" if estimator is XGBClassifier else "predict"
    assert_array_equal(getattr(fits[0], predict)(X), getattr(fits[1], predict)(X))


@pytest.mark.parametrize("backend", COMPILED)
def test_parallel_trees_equal_xgboost_given_its_cuts(binary_nan, always_parallel, backend):
    X, y = binary_nan
    params = dict(n_estimators=4, max_depth=6, max_bin=255)
    reference = xgboost.XGBClassifier(tree_method="hist", n_jobs=2, **params).fit(X, y)
    cuts = xgboost.QuantileDMatrix(X, max_bin=255).get_quantile_cut()
    model = XGBClassifier(backend=backend, n_jobs=2, **params).fit(X, y, cuts=cuts)
    ours, theirs = model.get_dump(), reference.get_booster().get_dump()
    # Same nodes, features, thresholds and default directions (xgboost's text dump) ...
    assert [LEAF.sub("leaf=", tree) for tree in ours] == [LEAF.sub("leaf=", t) for t in theirs]
    # ... and leaf values to float32 rounding (the margins of later trees differ in the last bit).
    leaves = [np.array([float(v) for tree in dump for v in LEAF.findall(tree)])
              for dump in (ours, theirs)]
    assert_allclose(leaves[0], leaves[1], rtol=1e-5, atol=1e-7)
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("nan, n_jobs", [(False, 2), (True, 2), (True, 8)])
def test_class_trees_grown_concurrently(monkeypatch, multiclass, backend, nan, n_jobs):
    """With n_jobs=2, a round's class trees grow two at a time (one-thread kernels each;
    with n_jobs=8, the 4 classes' trees at once on 2 threads each; Numba's kernels keep
    them one after another), and equal the trees grown one at a time."""
    from fastscratch.boosting import training

    X, y = multiclass
    if nan:
        X = X.copy()
        X[np.random.default_rng(2).random(X.shape) < 0.1] = np.nan
    create = training._ClassTreePool.create
    pools = []

    def spy(*args):
        pools.append(create(*args))
        return pools[-1]

    params = dict(n_estimators=3, max_depth=5, backend=backend, n_jobs=n_jobs)
    monkeypatch.setattr(training._ClassTreePool, "create", staticmethod(spy))
    concurrent = XGBClassifier(**params).fit(X, y)
    assert (pools[0] is not None) == (backend != "numba")
    monkeypatch.setattr(training._ClassTreePool, "create", staticmethod(lambda *args: None))
    one_at_a_time = XGBClassifier(**params).fit(X, y)
    (nodes_1, roots_1), (nodes_2, roots_2) = _forest(concurrent), _forest(one_at_a_time)
    assert_array_equal(roots_1, roots_2)
    for name in nodes_1:
        assert_array_equal(nodes_1[name], nodes_2[name], err_msg=name)
    assert_array_equal(concurrent.predict_proba(X), one_at_a_time.predict_proba(X))


def test_class_tree_pool_memory_cap(monkeypatch, multiclass):
    """Concurrent class trees hold their histogram buffers together: fewer grow at once
    when deep trees would need more than POOL_HISTOGRAM_BYTES, none below two."""
    from fastscratch.boosting import training

    X, y = multiclass
    created = []
    create = training._ClassTreePool.create

    def spy(*args):
        created.append(create(*args))
        return created[-1]

    monkeypatch.setattr(training._ClassTreePool, "create", staticmethod(spy))
    params = dict(n_estimators=2, max_depth=10, backend="cython", n_jobs=8)
    reference = XGBClassifier(**params).fit(X, y)
    assert created[-1] is not None and created[-1].n_threads == 4  # 4 classes, 8 threads
    # Two buffers of min(n, 2**9) nodes x features x bin slots x 16 bytes per tree.
    n_slots = int(reference._binner.n_bins_.max()) + 1
    one_tree = 2 * min(X.shape[0], 2 ** 9) * X.shape[1] * n_slots * 16
    assert one_tree == training._ClassTreePool.histogram_bytes(
        reference, SimpleNamespace(binner=reference._binner, binned=X), X.shape[0])
    monkeypatch.setattr(training, "POOL_HISTOGRAM_BYTES", 3 * one_tree)
    capped = XGBClassifier(**params).fit(X, y)
    assert created[-1].n_threads == 3
    monkeypatch.setattr(training, "POOL_HISTOGRAM_BYTES", one_tree)
    single = XGBClassifier(**params).fit(X, y)
    assert created[-1] is None
    assert_array_equal(capped.predict_proba(X), reference.predict_proba(X))
    assert_array_equal(single.predict_proba(X), reference.predict_proba(X))
