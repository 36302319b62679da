"""xgboost's own model format: our models load in xgboost, xgboost's load in ours.

- A model fitted here (binary, multiclass, regression, custom objective, with
  missing values) written by ``to_xgboost_json`` loads in
  ``xgboost.Booster`` and in ``xgboost.XGBClassifier/XGBRegressor.load_model``
  and predicts the same margins to float32 rounding (1e-6 relative, 1e-5
  absolute).
- An xgboost model saved as JSON or UBJSON loads with ``from_xgboost_json``
  and predicts the same; leaf ids (``apply``) are xgboost's ``pred_leaf``.
"""

import json

import numpy as np
import pytest
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from fastscratch import XGBClassifier, XGBRegressor
from fastscratch.boosting._xgboost_json import (
    from_xgboost_json,
    read_ubjson,
    to_xgboost_json,
)


def _data(loader, missing=0.05):
    X, y = loader(return_X_y=True)
    X = X.astype(np.float32)
    X[np.random.default_rng(1).random(X.shape) < missing] = np.nan
    return X, y


def _booster(model):
    return xgboost.Booster(model_file=bytearray(json.dumps(to_xgboost_json(model)).encode()))


def _squared(y_true, margin):
    return margin - y_true, np.ones_like(margin)


@pytest.mark.parametrize("case", ["binary", "multiclass", "regression", "custom"])
def test_our_model_loads_in_xgboost(case, tmp_path):
    if case == "binary":
        X, y = _data(load_breast_cancer)
        model = XGBClassifier(n_estimators=15, max_depth=4, n_jobs=1).fit(X, y)
    elif case == "multiclass":
        X, y = _data(load_iris)
        model = XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1).fit(X, y)
    else:
        X, y = _data(load_diabetes)
        model = XGBRegressor(n_estimators=15, max_depth=4, n_jobs=1,
                             objective=_squared if case == "custom" else None).fit(X, y)
    booster = _booster(model)
    dmatrix = xgboost.DMatrix(X)
    margin = booster.predict(dmatrix, output_margin=True)
    assert_allclose(margin, model._raw_predict(X).reshape(margin.shape), rtol=1e-6, atol=1e-5)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(to_xgboost_json(model)))
    if case in ("binary", "multiclass"):
        reference = xgboost.XGBClassifier()
        reference.load_model(path)
        assert_allclose(reference.predict_proba(X), model.predict_proba(X), rtol=1e-6, atol=1e-6)
        assert_array_equal(reference.predict(X), model.predict(X))
    else:
        reference = xgboost.XGBRegressor()
        reference.load_model(path)
        assert_allclose(reference.predict(X), model.predict(X), rtol=1e-6, atol=1e-4)
    # ... and back: the same trees, the same bits.
    again = from_xgboost_json(path)
    if case != "custom":
        assert_array_equal(again._raw_predict(X), model._raw_predict(X))
    assert_array_equal(again.apply(X), model.apply(X))


def test_document_schema():
    X, y = _data(load_iris, missing=0.0)
    model = XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(X, y)
    document = to_xgboost_json(model)
    learner = document["learner"]
    assert learner["learner_model_param"]["num_class"] == "3"
    assert learner["objective"]["name"] == "multi:softprob"
    trees = learner["gradient_booster"]["model"]["trees"]
    assert len(trees) == 6 and learner["gradient_booster"]["model"]["tree_info"] == [0, 1, 2] * 2
    tree = trees[0]
    for key in ("split_indices", "split_conditions", "left_children", "right_children",
                "default_left", "base_weights", "sum_hessian", "loss_changes", "parents"):
        assert len(tree[key]) == int(tree["tree_param"]["num_nodes"])
    assert tree["parents"][0] == 2147483647
    # xgboost's own dump of the loaded model is ours.
    assert _booster(model).get_dump() == model.get_dump()


@pytest.fixture(scope="module")
def xgb_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xgb")
    models = {}
    for name, loader, estimator in [("binary", load_breast_cancer, xgboost.XGBClassifier),
                                    ("multiclass", load_iris, xgboost.XGBClassifier),
                                    ("regression", load_diabetes, xgboost.XGBRegressor)]:
        X, y = _data(loader)
        reference = estimator(n_estimators=10, max_depth=5, n_jobs=1,
                              grow_policy="lossguide" if name == "regression" else "depthwise",
                              max_leaves=12 if name == "regression" else 0).fit(X, y)
        reference.save_model(folder / f"{name}.json")
        reference.save_model(folder / f"{name}.ubj")
        models[name] = (reference, X, folder / f"{name}.json", folder / f"{name}.ubj")
    return models


@pytest.mark.parametrize("name", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("kind", ["json", "ubj", "dict", "bytes"])
def test_xgboost_model_loads_in_ours(xgb_models, name, kind, backend):
    reference, X, json_path, ubj_path = xgb_models[name]
    source = {"json": json_path, "ubj": ubj_path, "dict": json.loads(json_path.read_text()),
              "bytes": ubj_path.read_bytes()}[kind]
    model = from_xgboost_json(source, backend=backend, n_jobs=1)
    assert type(model) is (XGBRegressor if name == "regression" else XGBClassifier)
    dmatrix = xgboost.DMatrix(X)
    margin = reference.get_booster().predict(dmatrix, output_margin=True)
    assert_allclose(model._raw_predict(X).reshape(margin.shape), margin, rtol=1e-6, atol=1e-5)
    if name == "regression":
        assert_allclose(model.predict(X), reference.predict(X), rtol=1e-6, atol=1e-4)
    else:
        assert_allclose(model.predict_proba(X), reference.predict_proba(X), rtol=1e-6,
                        atol=1e-6)
        assert_array_equal(model.predict(X), reference.predict(X))
    leaves = reference.get_booster().predict(dmatrix, pred_leaf=True).reshape(X.shape[0], -1)
    assert_array_equal(model.apply(X), leaves)


def test_ubjson_reader_matches_json(xgb_models):
    _, _, json_path, ubj_path = xgb_models["multiclass"]

    def same(a, b):
        if isinstance(a, dict):
            assert sorted(a) == sorted(b)
            for key in a:
                same(a[key], b[key])
        elif isinstance(a, list) and a and isinstance(a[0], dict):
            assert len(a) == len(b)
            for item_a, item_b in zip(a, b):
                same(item_a, item_b)
        elif isinstance(a, (list, np.ndarray)) and not isinstance(b, str):
            assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                            rtol=1e-7)
        else:
            assert a == b or float(a) == pytest.approx(float(b), rel=1e-7)

    same(read_ubjson(ubj_path.read_bytes()), json.loads(json_path.read_text()))


def test_renumbered_nodes(xgb_models):
    """A tree whose children are not adjacent (right != left + 1) is renumbered, same answers."""
    reference, X, json_path, _ = xgb_models["binary"]
    document = json.loads(json_path.read_text())
    tree = document["learner"]["gradient_booster"]["model"]["trees"][0]
    n = len(tree["left_children"])
    order = np.concatenate([[0], np.arange(n - 1, 0, -1)])  # new id -> old id, root kept
    new_id = np.argsort(order)
    for key, value in list(tree.items()):
        if isinstance(value, list) and len(value) == n:
            tree[key] = [value[k] for k in order]
    for key in ("left_children", "right_children"):
        tree[key] = [int(new_id[c]) if c != -1 else -1 for c in tree[key]]
    model = from_xgboost_json(document)
    margin = reference.get_booster().predict(xgboost.DMatrix(X), output_margin=True)
    assert_allclose(model._raw_predict(X)[:, 0], margin, rtol=1e-6, atol=1e-5)


def test_feature_names_and_best_iteration(tmp_path):
    pandas = pytest.importorskip("pandas")
    X, y = _data(load_breast_cancer, missing=0.0)
    frame = pandas.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    reference = xgboost.XGBClassifier(n_estimators=30, max_depth=3, early_stopping_rounds=2,
                                      n_jobs=1)
    reference.fit(frame[:400], y[:400], eval_set=[(frame[400:], y[400:])], verbose=False)
    reference.save_model(tmp_path / "m.json")
    model = from_xgboost_json(tmp_path / "m.json")
    assert list(model.feature_names_in_) == list(frame.columns)
    assert model.best_iteration == reference.best_iteration
    assert_allclose(model.predict_proba(frame), reference.predict_proba(frame), rtol=1e-6,
                    atol=1e-6)
    assert to_xgboost_json(model)["learner"]["feature_names"] == list(frame.columns)


def test_bad_files(tmp_path, xgb_models):
    path = tmp_path / "bad.json"
    path.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(ValueError, match="neither an xgboost JSON nor a UBJSON"):
        from_xgboost_json(path)
    with pytest.raises(ValueError, match="not an xgboost model"):
        from_xgboost_json({"format": "fastscratch.boosting"})
    with pytest.raises(TypeError, match="path_or_dict"):
        from_xgboost_json(3)
    document = json.loads(xgb_models["regression"][2].read_text())
    document["learner"]["objective"]["name"] = "survival:cox"  # an objective we do not have
    with pytest.raises(ValueError, match="survival:cox"):
        from_xgboost_json(document)
    document["learner"]["objective"]["name"] = "reg:squarederror"
    document["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"][0] = 1
    with pytest.raises(ValueError, match="categorical"):
        from_xgboost_json(document)


def test_load_into_an_estimator(xgb_models):
    reference, X, json_path, ubj_path = xgb_models["multiclass"]
    model = XGBClassifier(n_jobs=1, max_depth=3)
    assert from_xgboost_json(ubj_path, into=model) is model
    assert model.max_depth == 3 and model.n_estimators == 10
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="XGBClassifier, not an XGBRegressor"):
        from_xgboost_json(json_path, into=XGBRegressor())
