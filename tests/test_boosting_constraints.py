"""Monotone and interaction constraints against xgboost (tree_method="hist") on real data.

- Equal trees: given xgboost's own cut points, constrained fits (diabetes
  regression, breast-cancer classification; depthwise and lossguide; with
  missing values) split where xgboost's do, send missing values the same way
  and have the same leaf values (float32).
- Properties: predictions are monotone along constrained features (and an
  unconstrained fit is not, so the check can fail); every root-to-leaf path
  respects the interaction sets.
- The kernel ``find_best_splits_monotone``: every backend equal to the NumPy
  reference, on 1 and 2 threads.
- xgboost's input forms (tuple, list, string, dict by name; nested lists of
  indices or names, string), bad input, and saving the parameters.
"""

import numpy as np
import pandas as pd
import pytest
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from fastscratch import XGBClassifier, XGBRegressor
from fastscratch.boosting.constraints import allowed_after, parse_interaction
from fastscratch.kernels import get_kernel, histogram_numpy, splitting_numpy

from _boosting_trees import compare_trees

# diabetes: age, sex, bmi, bp, s1..s6; bmi, bp, s5 up; s3 (HDL) down
DIABETES_MONOTONE = (0, 0, 1, 1, 0, 0, -1, 0, 1, 0)
DIABETES_INTERACTION = "[[0, 2], [2, 3, 8], [4, 5, 6]]"
# breast cancer: worst radius / concave points (20, 27) raise malignancy, so P(benign) falls
CANCER_MONOTONE = {"worst radius": -1, "worst concave points": -1, "mean texture": -1,
                   "mean smoothness": 0}
CANCER_INTERACTION = [["worst radius", "worst concave points", "mean texture"],
                      ["worst area", "mean concavity"]]


@pytest.fixture(scope="module")
def cancer_frame():
    data = load_breast_cancer(as_frame=True)
    return data.data.astype(np.float32), data.target


def _cuts(X):
    return xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()


GROWTH = [dict(max_depth=5), dict(grow_policy="lossguide", max_leaves=12, max_depth=0)]


@pytest.mark.parametrize("growth", GROWTH, ids=["depthwise", "lossguide"])
@pytest.mark.parametrize("constraints", [
    dict(monotone_constraints=DIABETES_MONOTONE),
    dict(interaction_constraints=DIABETES_INTERACTION),
    dict(monotone_constraints="(0,0,1,1)", interaction_constraints=DIABETES_INTERACTION,
         max_delta_step=0.5, reg_alpha=2.0),
], ids=["monotone", "interaction", "both"])
def test_equal_trees_regression(diabetes, backend, growth, constraints):
    X, y = diabetes
    params = dict(n_estimators=8, **growth, **constraints)
    reference = xgboost.XGBRegressor(tree_method="hist", n_jobs=1, **params).fit(X, y)
    model = XGBRegressor(backend=backend, n_jobs=1, **params).fit(X, y, cuts=_cuts(X))
    assert compare_trees(model, reference) > 50
    assert_allclose(model.predict(X), reference.predict(X), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("growth", GROWTH, ids=["depthwise", "lossguide"])
def test_equal_trees_classification(cancer_frame, backend, growth):
    """Constraints by feature name on a DataFrame (the dict and nested-list forms)."""
    X, y = cancer_frame
    params = dict(n_estimators=8, monotone_constraints=CANCER_MONOTONE,
                  interaction_constraints=CANCER_INTERACTION, **growth)
    reference = xgboost.XGBClassifier(tree_method="hist", n_jobs=1, **params).fit(X, y)
    model = XGBClassifier(backend=backend, n_jobs=1, **params).fit(X, y, cuts=_cuts(X))
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), rtol=1e-5, atol=1e-6)
    reference.get_booster().feature_names = None  # dump splits as f<index>, as compare_trees reads
    assert compare_trees(model, reference) > 20


@pytest.mark.parametrize("growth", GROWTH, ids=["depthwise", "lossguide"])
def test_equal_trees_multiclass(growth):
    """Three classes (wine): each class's tree has its own bounds, as xgboost's."""
    X, y = load_wine(return_X_y=True)
    X = X.astype(np.float32)
    params = dict(n_estimators=5, monotone_constraints=(1, 0, -1, 0, 0, 1, 0, 0, 0, -1, 0, 1),
                  interaction_constraints="[[0, 2, 5], [9, 11, 12]]", **growth)
    reference = xgboost.XGBClassifier(tree_method="hist", n_jobs=1, **params).fit(X, y)
    model = XGBClassifier(n_jobs=1, **params).fit(X, y, cuts=_cuts(X))
    assert compare_trees(model, reference) > 40
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("growth", GROWTH, ids=["depthwise", "lossguide"])
def test_equal_trees_with_missing_values(diabetes, growth):
    """Missing values in constrained features: the learned direction is xgboost's."""
    X, y = diabetes
    X = X.copy()
    rng = np.random.default_rng(0)
    for f in (2, 3, 6, 8):
        X[rng.random(X.shape[0]) < 0.2, f] = np.nan
    params = dict(n_estimators=10, monotone_constraints=DIABETES_MONOTONE,
                  interaction_constraints="[[2, 3, 8], [0, 6, 1]]", **growth)
    reference = xgboost.XGBRegressor(tree_method="hist", n_jobs=1, **params).fit(X, y)
    model = XGBRegressor(n_jobs=1, **params).fit(X, y, cuts=_cuts(X))
    assert compare_trees(model, reference) > 50
    nodes, _, _ = model._forest.arrays()
    internal = nodes["left"] >= 0
    assert nodes["default_left"][internal].any() and not nodes["default_left"][internal].all()
    assert_allclose(model.predict(X), reference.predict(X), rtol=1e-5, atol=1e-3)


def _sweeps(model, X, feature, n_rows=40, n_values=60):
    """Predictions of ``n_rows`` rows with ``feature`` set to a grid of values: (rows, grid)."""
    values = np.linspace(np.nanmin(X[:, feature]) - 0.01, np.nanmax(X[:, feature]) + 0.01,
                         n_values, dtype=np.float32)
    rows = np.repeat(X[:n_rows], n_values, axis=0)
    rows[:, feature] = np.tile(values, n_rows)
    return model.predict(rows).reshape(n_rows, n_values)


def test_predictions_are_monotone(diabetes):
    """Along each constrained feature, every row's prediction moves one way only."""
    X, y = diabetes
    params = dict(n_estimators=30, max_depth=6, learning_rate=0.3)
    constrained = XGBRegressor(monotone_constraints=DIABETES_MONOTONE, **params).fit(X, y)
    free = XGBRegressor(**params).fit(X, y)
    violations = 0
    for feature, direction in enumerate(DIABETES_MONOTONE):
        if direction == 0:
            continue
        steps = np.diff(_sweeps(constrained, X, feature), axis=1) * direction
        assert (steps >= 0).all(), f"feature {feature} is not monotone"
        assert (steps > 0).any()  # the feature is used
        violations += int((np.diff(_sweeps(free, X, feature), axis=1) * direction < 0).sum())
    assert violations > 0  # without the constraints the same check fails


def _paths(nodes, root):
    """Distinct features on each root-to-leaf path of the tree at ``root``."""
    stack, paths = [(root, frozenset())], []
    while stack:
        node, used = stack.pop()
        if nodes["left"][node] < 0:
            paths.append(used)
            continue
        used = used | {int(nodes["feature"][node])}
        stack += [(nodes["left"][node], used), (nodes["left"][node] + 1, used)]
    return paths


def test_paths_respect_interaction_sets(diabetes):
    X, y = diabetes
    sets = parse_interaction(DIABETES_INTERACTION, X.shape[1])
    params = dict(n_estimators=20, max_depth=6)

    def bad_paths(model):
        nodes, roots, _ = model._forest.arrays()
        return sum(len(path) > 1 and not any(path <= group for group in sets)
                   for root in roots for path in _paths(nodes, root))
    constrained = XGBRegressor(interaction_constraints=DIABETES_INTERACTION, **params).fit(X, y)
    assert bad_paths(constrained) == 0
    assert bad_paths(XGBRegressor(**params).fit(X, y)) > 0


def test_allowed_after_is_xgboosts_rule():
    sets = (frozenset({0, 1}), frozenset({1, 2, 3}))
    assert allowed_after(frozenset({1}), sets, 5).tolist() == [1, 1, 1, 1, 0]
    assert allowed_after(frozenset({1, 3}), sets, 5).tolist() == [0, 1, 1, 1, 0]
    assert allowed_after(frozenset({4}), sets, 5).tolist() == [0, 0, 0, 0, 1]  # in no set
    assert allowed_after(frozenset({0, 2}), sets, 5).tolist() == [1, 0, 1, 0, 0]


def _forest_arrays(model):
    nodes, roots, _ = model._forest.arrays()
    return {name: array.tolist() for name, array in nodes.items()}, roots.tolist()


def test_input_forms_are_equivalent(diabetes):
    X, y = diabetes
    frame = pd.DataFrame(X, columns=load_diabetes().feature_names)
    params = dict(n_estimators=4, max_depth=4)
    fits = [XGBRegressor(monotone_constraints=m, interaction_constraints=i, **params)
            .fit(data, y)
            for data, m, i in [
                (X, (0, 0, 1, 1, 0, 0, -1), [[2, 3], [3, 6, 8]]),
                (X, [0, 0, 1, 1, 0, 0, -1, 0, 0, 0], "[[2, 3], [3, 6, 8]]"),
                (X, "(0,0,1,1,0,0,-1)", ((2, 3), (3, 6, 8))),
                (frame, {"bmi": 1, "bp": 1, "s3": -1}, [["bmi", "bp"], ["bp", "s3", "s5"]]),
            ]]
    first = _forest_arrays(fits[0])
    for other in fits[1:]:
        assert _forest_arrays(other) == first
    # an all-zero vector and an empty interaction list are no constraints at all
    free = XGBRegressor(**params).fit(X, y)
    zeros = XGBRegressor(monotone_constraints=(0,) * 10, interaction_constraints=[],
                         **params).fit(X, y)
    assert _forest_arrays(zeros) == _forest_arrays(free)


@pytest.mark.parametrize("params, match", [
    (dict(monotone_constraints=(1,) * 11), "monotone_constraints has 11 entries"),
    (dict(monotone_constraints=(1, 2)), "monotone_constraints: 2 is not a direction"),
    (dict(monotone_constraints="1,0,1"), "monotone_constraints='1,0,1'"),
    (dict(monotone_constraints={"bmi": 1}), "X has no feature names"),
    (dict(monotone_constraints=1), "monotone_constraints must be"),
    (dict(interaction_constraints=[[0, 10]]), "feature index 10 is out of range"),
    (dict(interaction_constraints="[[0, 1]"), "interaction_constraints='\\[\\[0, 1\\]'"),
    (dict(interaction_constraints=[0, 1]), "interaction_constraints must be a list of lists"),
])
def test_bad_constraints(diabetes, params, match):
    X, y = diabetes
    with pytest.raises((ValueError, TypeError), match=match):
        XGBRegressor(n_estimators=2, **params).fit(X, y)


def test_unknown_feature_name(cancer_frame):
    X, y = cancer_frame
    with pytest.raises(ValueError, match="'radius' is not a feature name of X"):
        XGBClassifier(n_estimators=2, monotone_constraints={"radius": 1}).fit(X, y)


def test_saved_and_loaded(diabetes, tmp_path):
    X, y = diabetes
    model = XGBRegressor(n_estimators=5, monotone_constraints=DIABETES_MONOTONE,
                         interaction_constraints=[[0, 2], [2, 3, 8]]).fit(X, y)
    model.save_model(tmp_path / "model.json", format="fastscratch")  # keeps the parameters
    loaded = XGBRegressor().load_model(tmp_path / "model.json")
    assert loaded.get_params()["monotone_constraints"] == DIABETES_MONOTONE
    assert loaded.get_params()["interaction_constraints"] == [[0, 2], [2, 3, 8]]
    assert_array_equal(loaded.predict(X), model.predict(X))
    refit = XGBRegressor(**loaded.get_params()).fit(X, y)
    assert_array_equal(refit.predict(X), model.predict(X))


def test_threads_give_the_same_trees(diabetes, optimised_backend, always_parallel):
    X, y = diabetes
    params = dict(n_estimators=6, backend=optimised_backend,
                  monotone_constraints=DIABETES_MONOTONE,
                  interaction_constraints=DIABETES_INTERACTION)
    one = XGBRegressor(n_jobs=1, **params).fit(X, y)
    two = XGBRegressor(n_jobs=2, **params).fit(X, y)
    assert _forest_arrays(one) == _forest_arrays(two)


F32_MAX = splitting_numpy.FLOAT32_MAX


def test_find_best_splits_monotone(backend, rng, always_parallel):
    n, d, k = 3000, 6, 6
    n_bins = rng.integers(2, 14, d).astype(np.intp)
    binned = (rng.random((n, d)) * n_bins).astype(np.uint8)
    binned[rng.random((n, d)) < 0.1] = 0
    missing = rng.random((n, d)) < 0.1
    binned[missing] = np.broadcast_to(n_bins, (n, d))[missing]  # the missing slot
    gradients = (rng.standard_normal(n) + np.repeat([0.0, 1.0], n // 2)).astype(np.float32)
    hessians = rng.uniform(0.1, 1, n).astype(np.float32)
    rows = rng.permutation(n).astype(np.intp)
    starts = np.arange(k, dtype=np.intp) * (n // k)
    stops = starts + n // k
    hists = np.empty((k, d, int(n_bins.max()) + 1, 2))
    histogram_numpy.build_histograms(binned, rows, starts, stops, gradients, hessians, hists, 1)
    hists[3, :, 1::2] = 0.0  # every other bin empty (skipped by the compiled scans)
    sums = hists[:, 0, : n_bins[0] + 1].sum(axis=1)
    params = np.array([1.0, 0.5, 0.2, 0.0])
    monotone = np.array([1, -1, 0, 1, -1, 1], dtype=np.int8)
    bounds = np.array([[-F32_MAX, F32_MAX], [-0.2, 0.3], [0.1, F32_MAX], [-F32_MAX, -0.05],
                       [0.01, 0.011], [-F32_MAX, F32_MAX]], dtype=np.float32).astype(np.float64)
    scores = splitting_numpy.bounded_node_score(sums[:, 0], sums[:, 1], bounds[:, 0],
                                                bounds[:, 1], params).astype(np.float64)
    allowed = (rng.random((k, d)) < 0.9).astype(np.uint8)

    def run(kernel, n_threads=1):
        outs = (np.empty((k, d)), np.empty((k, d), np.intp), np.empty((k, d), np.uint8),
                np.empty((k, d, 2)))
        kernel(hists, n_bins, sums, scores, params, allowed, monotone, bounds, *outs, n_threads)
        return outs

    reference = run(splitting_numpy.find_best_splits_monotone)
    gain, _, default_left, left_sums = reference
    assert np.isfinite(gain).any() and np.isinf(gain).any() and default_left.any()
    # the chosen splits respect the order of their feature's constraint
    for j, f in zip(*np.nonzero(np.isfinite(gain))):
        w = [splitting_numpy.bounded_weight(g, h, *bounds[j], params)
             for g, h in (left_sums[j, f], sums[j] - left_sums[j, f])]
        assert (w[1] - w[0]) * monotone[f] >= 0
    # unconstrained, a split is found on some of the features the constraints refuse
    free = np.empty((k, d)), np.empty((k, d), np.intp), np.empty((k, d), np.uint8), \
        np.empty((k, d, 2))
    splitting_numpy.find_best_splits(hists, n_bins, sums, scores, params, allowed, *free, 1)
    assert (np.isfinite(free[0]) & ~np.isfinite(gain)).any()
    for n_threads in (1, 2):
        got = run(get_kernel("find_best_splits_monotone", backend), n_threads)
        assert_array_equal(got[0], reference[0])
        assert_array_equal(got[1], reference[1])
        assert_array_equal(got[2], reference[2])
        assert_allclose(got[3], reference[3], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("growth", GROWTH, ids=["depthwise", "lossguide"])
def test_dask_fit_equals_in_memory(diabetes, growth):
    """The Dask fit grows its trees with the same grower: the same constrained trees."""
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("fastscratch.distributed")
    X, y = diabetes
    X = X.copy()
    X[np.random.default_rng(1).random(X.shape[0]) < 0.15, 2] = np.nan
    params = dict(n_estimators=4, monotone_constraints=DIABETES_MONOTONE,
                  interaction_constraints=DIABETES_INTERACTION, **growth)
    cuts = _cuts(X)
    dist = distributed.XGBRegressor(**params).fit(da.from_array(X, chunks=150),
                                                  da.from_array(y, chunks=150), cuts=cuts)
    local = XGBRegressor(**params).fit(X, y, cuts=cuts)
    assert _forest_arrays(dist)[1] == _forest_arrays(local)[1]
    nodes_d, nodes_l = _forest_arrays(dist)[0], _forest_arrays(local)[0]
    for name in ("feature", "left", "default_left", "threshold"):
        assert nodes_d[name] == nodes_l[name], name
    assert_allclose(nodes_d["value"], nodes_l["value"], rtol=1e-6, atol=1e-5)


def test_interaction_with_categorical_features():
    """Interaction sets over numeric and categorical columns: xgboost's trees."""
    from test_boosting_categorical import (categorical_frame, compare_categorical_trees,
                                           xgboost_cuts)

    frame, y = categorical_frame(load_diabetes)
    params = dict(n_estimators=8, enable_categorical=True)
    sets = [[0, 1, 4], [2, 3, 5, 6]]
    reference = xgboost.XGBRegressor(tree_method="hist", interaction_constraints=str(sets),
                                     **params).fit(frame, y)
    model = XGBRegressor(n_jobs=1, interaction_constraints=sets, **params).fit(
        frame, y, cuts=xgboost_cuts(frame, y))
    assert compare_categorical_trees(model, reference) > 0
    assert_allclose(model.predict(frame), reference.predict(frame), rtol=1e-5, atol=1e-3)
