"""TreeSHAP on models with categorical splits, against xgboost's own SHAP values.

The data are the categorical frames of ``test_boosting_categorical``
(breast_cancer and diabetes: four numeric columns and pandas category columns
of 3, 5, 8 (10% missing) and 25 levels). xgboost models fitted on them are
loaded into our estimators (``from_xgboost_json``), and models fitted here
with xgboost's cuts are compared with xgboost's fit of the same data (the
trees are then equal): contributions and interaction values equal xgboost's
``pred_contribs`` / ``pred_interactions`` to 1e-5 of the largest value (as
``test_treeshap``), rows add up to the margin, and the compiled kernels equal
the NumPy reference for any number of threads, also on codes outside every
category set (negative, too large, fractional), which go left as in
``predict``.
"""

import json

import numpy as np
import pytest
import xgboost
from fastscratch.kernels import categorical_numpy, get_kernel, treeshap_numpy
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_breast_cancer, load_diabetes
from test_boosting_categorical import categorical_frame, xgboost_cuts
from test_treeshap import _scale_close

from fastscratch import XGBClassifier, XGBRegressor
from fastscratch.boosting._treeshap import tree_contributions, tree_structure
from fastscratch.boosting._xgboost_json import from_xgboost_json

CASES = {  # name: (loader, xgboost class, parameters)
    "binary-partition": (load_breast_cancer, xgboost.XGBClassifier,
                         dict(max_depth=5, max_cat_to_onehot=1)),
    "binary-onehot": (load_breast_cancer, xgboost.XGBClassifier,
                      dict(max_depth=4, max_cat_to_onehot=30)),
    "regression": (load_diabetes, xgboost.XGBRegressor, dict(max_depth=6)),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def xgb_case(request):
    """(xgboost booster, our model loaded from its JSON, the frame) for one case."""
    loader, estimator, params = CASES[request.param]
    frame, y = categorical_frame(loader)
    reference = estimator(n_estimators=10, enable_categorical=True, tree_method="hist",
                          n_jobs=1, **params).fit(frame, y)
    booster = reference.get_booster()
    model = from_xgboost_json(json.loads(booster.save_raw("json")), n_jobs=1)
    assert model._forest.has_categorical
    return booster, model, frame


def test_contributions_equal_xgboost(xgb_case, backend):
    booster, model, frame = xgb_case
    dmatrix = xgboost.DMatrix(frame, enable_categorical=True)
    ours = tree_contributions(model, frame, backend=backend)
    _scale_close(ours, booster.predict(dmatrix, pred_contribs=True), 1e-5)
    # Efficiency: each row adds up to the margin (xgboost's, and ours to rounding).
    assert_allclose(ours.sum(axis=-1), booster.predict(dmatrix, output_margin=True),
                    rtol=1e-5, atol=1e-5)
    assert_allclose(ours.sum(axis=-1), model._raw_predict(frame)[:, 0], rtol=1e-9, atol=1e-9)


def test_interactions_equal_xgboost(xgb_case, backend):
    booster, model, frame = xgb_case
    frame = frame.iloc[::6]  # the NumPy reference walks each tree twice per split feature
    ours = tree_contributions(model, frame, interactions=True, backend=backend)
    expected = booster.predict(xgboost.DMatrix(frame, enable_categorical=True),
                               pred_interactions=True)
    _scale_close(ours, expected, 1e-5)
    assert_allclose(ours.sum(axis=-1), tree_contributions(model, frame, backend=backend),
                    rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("multiclass", [False, True])
def test_our_fit_matches_xgboost_fit(multiclass):
    """A model fitted here with xgboost's cuts: predict(pred_contribs / pred_interactions)."""
    frame, y = categorical_frame(load_diabetes)
    params = dict(n_estimators=6, max_depth=4, enable_categorical=True, max_cat_to_onehot=4)
    if multiclass:
        y = np.searchsorted(np.quantile(y, [1 / 3, 2 / 3]), y)
        reference = xgboost.XGBClassifier(tree_method="hist", **params).fit(frame, y)
        model = XGBClassifier(n_jobs=1, **params)
    else:
        reference = xgboost.XGBRegressor(tree_method="hist", **params).fit(frame, y)
        model = XGBRegressor(n_jobs=1, **params)
    model.fit(frame, y, cuts=xgboost_cuts(frame, y))
    booster = reference.get_booster()
    contributions = model.predict(frame, pred_contribs=True)
    _scale_close(contributions, booster.predict(xgboost.DMatrix(frame, enable_categorical=True),
                                                pred_contribs=True), 1e-5)
    assert_allclose(contributions.sum(axis=-1), model.predict(frame, output_margin=True),
                    rtol=1e-9, atol=1e-9)
    rows = frame.iloc[::9]
    interactions = model.predict(rows, pred_interactions=True)
    _scale_close(interactions, booster.predict(xgboost.DMatrix(rows, enable_categorical=True),
                                               pred_interactions=True), 1e-5)


def _odd_codes(frame, rng):
    """The frame's codes (float32, NaN missing), some replaced by codes in no set."""
    X = np.column_stack([frame[c].cat.codes.to_numpy().astype(np.float32)
                         if frame[c].dtype == "category" else frame[c].to_numpy(np.float32)
                         for c in frame.columns])
    X[X == -1] = np.nan
    odd = rng.random(X.shape) < 0.05
    odd[:, :4] = False
    X[odd] = rng.choice(np.float32([-1.0, -0.5, 2.5, 40.0, 1e6]), size=odd.sum())
    return X


def _kernel_problem(rng):
    frame, y = categorical_frame(load_diabetes)
    reference = xgboost.XGBRegressor(n_estimators=5, max_depth=5, enable_categorical=True,
                                     max_cat_to_onehot=1, tree_method="hist",
                                     n_jobs=1).fit(frame, y)
    model = from_xgboost_json(json.loads(reference.get_booster().save_raw("json")), n_jobs=1)
    forest = model._forest
    nodes, roots, groups = forest.arrays()
    node_cat, cat_sets = forest.categorical()
    _, node_depth = tree_structure(nodes["left"], roots)
    args = (nodes["feature"], nodes["threshold"], nodes["default_left"], nodes["left"],
            nodes["right"], nodes["value"], nodes["cover"].astype(np.float64), roots, groups)
    X = _odd_codes(frame, rng)[:150]
    return X, args, int(node_depth.max()), node_cat, cat_sets


@pytest.mark.parametrize("use_tables", [True, False])
def test_kernels_match_reference(optimised_backend, rng, monkeypatch, use_tables):
    X, args, max_depth, node_cat, cat_sets = _kernel_problem(rng)
    assert np.any(node_cat >= 0)
    if not use_tables:  # the compiled Algorithm 2, for forests whose tables are too large
        monkeypatch.setattr(treeshap_numpy, "MAX_TABLE_VALUES", 0)
    expected = np.zeros((X.shape[0], 1, X.shape[1] + 1))
    treeshap_numpy.tree_shap(X, *args, max_depth, node_cat, cat_sets, expected, 1)
    # Efficiency with the codes in no set: the sum is predict's margin less the mean values.
    margin = np.zeros((X.shape[0], 1))
    categorical_numpy.predict_raw_categorical(X, *args[:6], node_cat, cat_sets, *args[7:],
                                              margin, 1)
    no_categories = np.zeros_like(expected)
    treeshap_numpy.tree_shap(X, *args, max_depth, np.empty(0, np.intp),
                             np.empty((0, 0), np.uint8), no_categories, 1)
    assert not np.allclose(no_categories, expected)  # the category sets matter
    kernel = get_kernel("tree_shap", optimised_backend)
    outputs = []
    for n_threads in (1, 2):
        out = np.zeros_like(expected)
        kernel(X, *args, max_depth, node_cat, cat_sets, out, n_threads)
        outputs.append(out)
    assert_allclose(outputs[0], expected, rtol=1e-9, atol=1e-12)
    assert_array_equal(outputs[0], outputs[1])
    # The rows' sums differ from the margin by one constant (the trees' mean values).
    gap = margin[:, 0] - expected[:, 0].sum(axis=1)
    assert_allclose(gap, gap[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("use_tables", [True, False])
def test_interaction_kernels_match_reference(optimised_backend, rng, monkeypatch, use_tables):
    X, args, max_depth, node_cat, cat_sets = _kernel_problem(rng)
    X = X[:60]
    if not use_tables:
        monkeypatch.setattr(treeshap_numpy, "MAX_TABLE_VALUES", 0)
    feature, left, roots = args[0], args[3], args[7]
    node_tree, _ = tree_structure(left, roots)
    internal = (node_tree >= 0) & (left != -1)
    d = X.shape[1]
    pairs = np.unique(node_tree[internal] * d + feature[internal])
    ptr = np.concatenate([[0], np.cumsum(np.bincount(pairs // d, minlength=roots.shape[0]))])
    extra = (ptr.astype(np.intp), (pairs % d).astype(np.intp), max_depth, node_cat, cat_sets)
    shape = (X.shape[0], 1, d + 1, d + 1)
    expected = np.zeros(shape)
    treeshap_numpy.tree_shap_interactions(X, *args, *extra, expected, 1)
    contributions = np.zeros((X.shape[0], 1, d + 1))
    treeshap_numpy.tree_shap(X, *args, max_depth, node_cat, cat_sets, contributions, 1)
    assert_allclose(expected.sum(axis=-1), contributions, rtol=1e-9, atol=1e-9)
    kernel = get_kernel("tree_shap_interactions", optimised_backend)
    outputs = []
    for n_threads in (1, 2):
        out = np.zeros(shape)
        kernel(X, *args, *extra, out, n_threads)
        outputs.append(out)
    assert_allclose(outputs[0], expected, rtol=1e-9, atol=1e-12)
    assert_array_equal(outputs[0], outputs[1])
