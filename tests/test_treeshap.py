"""TreeSHAP: every backend against the NumPy reference, and against xgboost's own SHAP values.

xgboost models are trained on breast_cancer (binary, 5% of the values made
missing), iris (3 classes) and diabetes (regression), loaded into our
estimators with ``from_xgboost_json``, and our contributions and interaction
values compared with xgboost's ``pred_contribs`` / ``pred_interactions`` on
the same trees: relative error 1e-5 of the largest value (xgboost computes in
float32, we in float64). Between backends: 1e-9 (the compiled kernels read
per-leaf tables, or run Algorithm 2 when the tables are too large; the
reference runs Algorithm 2), and the same bits for any number of threads.
"""

import numpy as np
import pytest
import xgboost
from fastscratch.kernels import get_kernel, treeshap_numpy
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from fastscratch import XGBClassifier, XGBRegressor
from fastscratch.boosting._treeshap import (
    node_mean_values,
    tree_contributions,
    tree_structure,
)
from fastscratch.boosting._xgboost_json import from_xgboost_json, to_xgboost_json

CASES = {  # name: (loader, xgboost class, max_depth)
    "binary": (load_breast_cancer, xgboost.XGBClassifier, 5),
    "multiclass": (load_iris, xgboost.XGBClassifier, 4),
    "regression": (load_diabetes, xgboost.XGBRegressor, 6),
}

# No categorical splits: the kernels' node_cat and cat_sets are empty.
NUMERIC = (np.empty(0, dtype=np.intp), np.empty((0, 0), dtype=np.uint8))


def _data(loader):
    X, y = loader(return_X_y=True)
    X = X.astype(np.float32)
    X[np.random.default_rng(0).random(X.shape) < 0.05] = np.nan
    return X, y


@pytest.fixture(scope="module", params=sorted(CASES))
def xgb_case(request, tmp_path_factory):
    """(xgboost booster, our model loaded from its JSON file, X) for one data set."""
    loader, estimator, depth = CASES[request.param]
    X, y = _data(loader)
    reference = estimator(n_estimators=12, max_depth=depth, learning_rate=0.3,
                          n_jobs=1).fit(X, y)
    path = tmp_path_factory.mktemp("treeshap") / "model.json"
    reference.save_model(path)
    return reference.get_booster(), from_xgboost_json(path, n_jobs=1), X


def _scale_close(actual, expected, rtol):
    assert actual.shape == expected.shape
    assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_contributions_equal_xgboost(xgb_case, backend):
    booster, model, X = xgb_case
    ours = tree_contributions(model, X, backend=backend)
    expected = booster.predict(xgboost.DMatrix(X), pred_contribs=True)
    _scale_close(ours, expected, 1e-5)
    # Additivity: the contributions sum to the margin (ours and xgboost's).
    margin = booster.predict(xgboost.DMatrix(X), output_margin=True)
    assert_allclose(ours.sum(axis=-1), margin, rtol=1e-5, atol=1e-5)
    assert_allclose(ours.sum(axis=-1), model._raw_predict(X)[:, 0] if ours.ndim == 2
                    else model._raw_predict(X), rtol=1e-9, atol=1e-9)


def test_interactions_equal_xgboost(xgb_case, backend):
    booster, model, X = xgb_case
    X = X[::7]  # the NumPy reference walks each tree twice per feature it splits on
    ours = tree_contributions(model, X, interactions=True, backend=backend)
    expected = booster.predict(xgboost.DMatrix(X), pred_interactions=True)
    _scale_close(ours, expected, 1e-5)
    # Rows of the interaction matrix sum to the contributions.
    assert_allclose(ours.sum(axis=-1), tree_contributions(model, X, backend=backend),
                    rtol=1e-9, atol=1e-9)


def _forest_problem(rng, n_features=3, depth=6, n=400):
    """An xgboost forest on few features (features repeat along paths), missing values."""
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    y = X[:, 0] * X[:, 1] + np.sin(3 * X[:, 2]) + 0.1 * rng.normal(size=n)
    X[rng.random(X.shape) < 0.1] = np.nan
    booster = xgboost.XGBRegressor(n_estimators=6, max_depth=depth, n_jobs=1).fit(X, y)
    model = from_xgboost_json(to_dict(booster))
    nodes, roots, groups = model._forest.arrays()
    node_tree, node_depth = tree_structure(nodes["left"], roots)
    args = (nodes["feature"], nodes["threshold"], nodes["default_left"], nodes["left"],
            nodes["right"], nodes["value"], nodes["cover"].astype(np.float64), roots, groups)
    return X, model, args, int(node_depth.max()), node_tree


def to_dict(estimator):
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        estimator.save_model(f"{folder}/m.json")
        with open(f"{folder}/m.json") as handle:
            return json.load(handle)


@pytest.mark.parametrize("use_tables", [True, False])
def test_kernels_match_reference(optimised_backend, rng, monkeypatch, use_tables):
    X, _, args, max_depth, _ = _forest_problem(rng)
    if not use_tables:  # the compiled Algorithm 2, for forests whose tables are too large
        monkeypatch.setattr(treeshap_numpy, "MAX_TABLE_VALUES", 0)
        assert treeshap_numpy.leaf_tables(args[0], args[3], args[5], args[6], args[7],
                                          max_depth) is None
    expected = np.zeros((X.shape[0], 1, X.shape[1] + 1))
    treeshap_numpy.tree_shap(X, *args, max_depth, *NUMERIC, expected, 1)
    kernel = get_kernel("tree_shap", optimised_backend)
    outputs = []
    for n_threads in (1, 2):
        out = np.zeros_like(expected)
        kernel(X, *args, max_depth, *NUMERIC, out, n_threads)
        outputs.append(out)
    assert_allclose(outputs[0], expected, rtol=1e-9, atol=1e-12)
    assert_array_equal(outputs[0], outputs[1])
    assert np.all(expected[:, :, -1] == 0)  # the bias column is the caller's


@pytest.mark.parametrize("use_tables", [True, False])
def test_interaction_kernels_match_reference(optimised_backend, rng, monkeypatch, use_tables):
    X, model, args, max_depth, node_tree = _forest_problem(rng, n=120)
    if not use_tables:
        monkeypatch.setattr(treeshap_numpy, "MAX_TABLE_VALUES", 0)
    nodes, roots, _ = model._forest.arrays()
    internal = nodes["left"] != -1
    pairs = np.unique(node_tree[internal] * X.shape[1] + nodes["feature"][internal])
    ptr = np.concatenate([[0], np.cumsum(np.bincount(pairs // X.shape[1],
                                                     minlength=roots.shape[0]))]).astype(np.intp)
    features = (pairs % X.shape[1]).astype(np.intp)
    shape = (X.shape[0], 1, X.shape[1] + 1, X.shape[1] + 1)
    expected = np.zeros(shape)
    treeshap_numpy.tree_shap_interactions(X, *args, ptr, features, max_depth, *NUMERIC, expected,
                                          1)
    kernel = get_kernel("tree_shap_interactions", optimised_backend)
    outputs = []
    for n_threads in (1, 2):
        out = np.zeros(shape)
        kernel(X, *args, ptr, features, max_depth, *NUMERIC, out, n_threads)
        outputs.append(out)
    assert_allclose(outputs[0], expected, rtol=1e-9, atol=1e-12)
    assert_array_equal(outputs[0], outputs[1])


def test_our_model_matches_xgboost_on_its_export(backend):
    """A model fitted here: its SHAP values equal xgboost's on the same trees (exported)."""
    X, y = _data(load_diabetes)
    model = XGBRegressor(n_estimators=15, max_depth=4, n_jobs=1, backend=backend).fit(X, y)
    booster = xgboost.Booster(model_file=bytearray(
        __import__("json").dumps(to_xgboost_json(model)).encode()))
    dmatrix = xgboost.DMatrix(X)
    _scale_close(tree_contributions(model, X), booster.predict(dmatrix, pred_contribs=True),
                 1e-5)
    assert_allclose(tree_contributions(model, X).sum(axis=1), model.predict(X), rtol=1e-6,
                    atol=1e-4)


def test_multiclass_layout_and_iteration_range(backend):
    X, y = load_iris(return_X_y=True)
    model = XGBClassifier(n_estimators=6, max_depth=3, n_jobs=1, backend=backend).fit(X, y)
    contributions = tree_contributions(model, X)
    assert contributions.shape == (X.shape[0], 3, X.shape[1] + 1)
    assert_allclose(contributions.sum(axis=-1), model._raw_predict(X), rtol=1e-9, atol=1e-9)
    first_rounds = tree_contributions(model, X, iteration_range=(0, 2))
    assert_allclose(first_rounds.sum(axis=-1), model._raw_predict(X, (0, 2)), rtol=1e-9,
                    atol=1e-9)
    interactions = tree_contributions(model, X[:10], interactions=True)
    assert interactions.shape == (10, 3, X.shape[1] + 1, X.shape[1] + 1)


def test_node_mean_values_match_recursion(rng):
    _, model, _, _, _ = _forest_problem(rng)
    nodes, roots, _ = model._forest.arrays()
    _, node_depth = tree_structure(nodes["left"], roots)
    cover = nodes["cover"].astype(np.float64)
    means = node_mean_values(nodes["left"], nodes["value"], cover, node_depth)
    for root in roots:
        for node, mean in treeshap_numpy._node_mean_values_naive(
                nodes["left"], nodes["value"], cover, root).items():
            assert means[node] == pytest.approx(mean, rel=1e-12)


def test_bad_input():
    X, y = load_diabetes(return_X_y=True)
    model = XGBRegressor(n_estimators=3, max_depth=2, n_jobs=1).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        tree_contributions(model, X[:, :5])
    nodes, _, _ = model._forest.arrays()
    nodes["cover"][:] = 0.0  # a model file without covers
    with pytest.raises(ValueError, match="cover"):
        tree_contributions(model, X)
    with pytest.raises(ValueError, match="iteration_range"):
        tree_contributions(XGBRegressor(n_estimators=2).fit(X, y), X, iteration_range=(0, 5))


def test_one_feature_and_leaf_only_trees(backend):
    """n_features = 1, and trees that are a single leaf (constant target): bias only."""
    X = np.random.default_rng(0).normal(size=(60, 1)).astype(np.float32)
    constant = XGBRegressor(n_estimators=3, max_depth=3, n_jobs=1).fit(X, np.ones(60))
    contributions = tree_contributions(constant, X, backend=backend)
    assert_array_equal(contributions[:, 0], 0.0)
    assert_allclose(contributions[:, 1], constant.predict(X), rtol=1e-12)
    model = XGBRegressor(n_estimators=3, max_depth=3, n_jobs=1).fit(X, X[:, 0] ** 2)
    contributions = tree_contributions(model, X, backend=backend)
    assert_allclose(contributions.sum(axis=1), model.predict(X), rtol=1e-6, atol=1e-6)
    interactions = tree_contributions(model, X, interactions=True, backend=backend)
    assert_allclose(interactions.sum(axis=-1), contributions, rtol=1e-9, atol=1e-12)
