"""More of xgboost's objectives and callable eval metrics (issue 20), checked against xgboost.

Trees are compared node by node given xgboost's bin cuts, as in test_boosting.py;
predictions within the same tolerances (float32 sums of the trees).
"""

import json
import re

import numpy as np
import pytest
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_iris

from fastscratch import XGBClassifier, XGBRegressor

from _boosting_trees import compare_trees


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


def _base_score(reference):
    config = json.loads(reference.get_booster().save_config())
    return config["learner"]["learner_model_param"]["base_score"]


REGRESSION_OBJECTIVES = [
    dict(objective="count:poisson"),
    dict(objective="count:poisson", max_delta_step=0.3),
    dict(objective="reg:gamma"),
    dict(objective="reg:tweedie"),
    dict(objective="reg:tweedie", tweedie_variance_power=1.2),
    # Slope 1 on targets ~150: hessians ~1e-6, no split passes (xgboost's trees are stumps too).
    dict(objective="reg:pseudohubererror"),
    dict(objective="reg:pseudohubererror", huber_slope=60.0),
    dict(objective="reg:absoluteerror"),
    dict(objective="reg:quantileerror", quantile_alpha=0.3),
    dict(objective="reg:quantileerror", quantile_alpha=0.9, learning_rate=0.5),
]


@pytest.mark.parametrize("settings", REGRESSION_OBJECTIVES)
def test_regression_objectives_equal_xgboost(diabetes, settings, tmp_path):
    X, y = diabetes
    params = dict(n_estimators=6, max_depth=4, **settings)
    reference = xgboost.XGBRegressor(tree_method="hist", n_jobs=1, **params).fit(
        X, y, eval_set=[(X, y)], verbose=False)
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    model = XGBRegressor(n_jobs=1, **params).fit(X, y, cuts=cuts, eval_set=[(X, y)],
                                                 verbose=False)
    assert_allclose(model.base_score_, float(_base_score(reference)[1:-1]), rtol=1e-6)
    n_splits = compare_trees(model, reference, rtol=1e-5, atol=1e-6)
    assert n_splits > 0 or settings == dict(objective="reg:pseudohubererror")
    assert_allclose(model.predict(X), reference.predict(X), rtol=1e-5, atol=1e-5)
    # The objective's default metric, named and valued as xgboost's.
    ours, theirs = model.evals_result()["validation_0"], reference.evals_result()["validation_0"]
    assert list(ours) == list(theirs)
    assert_allclose(next(iter(ours.values())), next(iter(theirs.values())), rtol=1e-4)
    # Saved in xgboost's format: xgboost loads it and predicts the same; and back.
    path = str(tmp_path / "model.json")
    model.save_model(path, format="xgboost")
    booster = xgboost.Booster(model_file=path)
    assert_allclose(booster.predict(xgboost.DMatrix(X)), model.predict(X), rtol=1e-5, atol=1e-5)
    loaded = XGBRegressor().load_model(path)
    assert loaded.objective == settings["objective"]
    assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6, atol=1e-6)
    reference.save_model(path)
    assert_allclose(XGBRegressor().load_model(path).predict(X), reference.predict(X),
                    rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("objective, data", [("binary:hinge", "cancer"),
                                             ("multi:softmax", "iris")])
def test_classification_objectives_equal_xgboost(objective, data, request, tmp_path):
    X, y = request.getfixturevalue(data)
    params = dict(n_estimators=6, max_depth=3, objective=objective)
    reference = xgboost.XGBClassifier(tree_method="hist", n_jobs=1, **params).fit(
        X, y, eval_set=[(X, y)], verbose=False)
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    model = XGBClassifier(n_jobs=1, **params).fit(X, y, cuts=cuts, eval_set=[(X, y)],
                                                  verbose=False)
    assert compare_trees(model, reference, rtol=1e-5, atol=1e-6) > 0
    assert_array_equal(model.predict(X), reference.predict(X))
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)
    ours, theirs = model.evals_result()["validation_0"], reference.evals_result()["validation_0"]
    assert list(ours) == list(theirs)
    assert_allclose(next(iter(ours.values())), next(iter(theirs.values())), rtol=1e-4, atol=1e-7)
    path = str(tmp_path / "model.json")
    model.save_model(path, format="xgboost")
    booster = xgboost.Booster(model_file=path)
    assert_allclose(booster.predict(xgboost.DMatrix(X), output_margin=True),
                    model.predict(X, output_margin=True), rtol=1e-5, atol=1e-5)
    loaded = XGBClassifier().load_model(path)
    assert_array_equal(loaded.predict(X), model.predict(X))


def test_callable_eval_metric_like_xgboost(diabetes):
    X, y = diabetes
    X_train, y_train, X_valid, y_valid = X[:300], y[:300], X[300:], y[300:]

    def median_error(y_true, y_pred):
        return float(np.median(np.abs(y_true - y_pred)))

    params = dict(n_estimators=60, max_depth=3, learning_rate=0.3, eval_metric=median_error,
                  early_stopping_rounds=5)
    reference = xgboost.XGBRegressor(tree_method="hist", n_jobs=1, **params).fit(
        X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
    cuts = xgboost.QuantileDMatrix(X_train, max_bin=256).get_quantile_cut()
    model = XGBRegressor(n_jobs=1, **params).fit(X_train, y_train, cuts=cuts,
                                                 eval_set=[(X_valid, y_valid)], verbose=False)
    ours, theirs = model.evals_result()["validation_0"], reference.evals_result()["validation_0"]
    assert list(ours) == list(theirs) == ["rmse", "median_error"]
    assert_allclose(ours["median_error"], theirs["median_error"], rtol=1e-4)
    assert model.best_iteration == reference.best_iteration
    assert model.best_iteration < 59  # the callable drove early stopping
    assert_allclose(model.predict(X_valid), reference.predict(X_valid), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("params, y_change, message", [
    (dict(objective="reg:unknown"), None, "objective='reg:unknown'"),
    (dict(objective="reg:tweedie", tweedie_variance_power=2.5), None, "tweedie_variance_power"),
    (dict(objective="reg:tweedie", tweedie_variance_power=1.0), None, "tweedie_variance_power"),
    (dict(objective="reg:pseudohubererror", huber_slope=0.0), None, "huber_slope"),
    (dict(objective="count:poisson"), -1.0, "y >= 0"),
    (dict(objective="reg:gamma"), 0.0, "y > 0"),
    (dict(eval_metric="tweedie-nloglik@3"), None, "eval_metric"),
    (dict(objective="reg:quantileerror", quantile_alpha=1.0), None, "quantile_alpha"),
    (dict(objective="reg:quantileerror", quantile_alpha=0.0), None, "quantile_alpha"),
    (dict(objective="reg:quantileerror"), None, "needs quantile_alpha"),
])
def test_bad_objective_input(diabetes, params, y_change, message):
    X, y = diabetes
    y = y.copy()
    if y_change is not None:
        y[0] = y_change
    with pytest.raises(ValueError, match=message):
        XGBRegressor(n_estimators=2, **params).fit(X, y, eval_set=[(X, y)], verbose=False)


def _assert_same_json(mine, reference):
    """Same keys and strings; numbers equal to float32 rounding."""
    if isinstance(reference, dict):
        assert list(mine) == list(reference)
        for key in reference:
            _assert_same_json(mine[key], reference[key])
    elif isinstance(reference, list):
        assert len(mine) == len(reference)
        for a, b in zip(mine, reference):
            _assert_same_json(a, b)
    elif isinstance(reference, (int, float)) and not isinstance(reference, bool):
        assert_allclose(mine, reference, rtol=1e-5, atol=1e-7)
    else:
        assert mine == reference


def _fit_pair(estimator, reference_class, X, y, **params):
    reference = reference_class(tree_method="hist", n_jobs=1, **params).fit(X, y)
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    model = estimator(n_jobs=1, **params).fit(X, y, cuts=cuts)
    assert compare_trees(model, reference, rtol=1e-5, atol=1e-6) > 0
    return model.get_booster(), reference.get_booster()


@pytest.mark.parametrize("data, objective", [("diabetes", "reg:squarederror"),
                                             ("cancer", "binary:logistic"),
                                             ("iris", "multi:softprob"),
                                             ("iris", "multi:softmax")])
def test_get_booster_equals_xgboost_booster(data, objective, request, tmp_path):
    import pandas as pd

    X, y = request.getfixturevalue(data)
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])
    estimator, reference_class = ((XGBRegressor, xgboost.XGBRegressor) if objective.startswith("reg")
                                  else (XGBClassifier, xgboost.XGBClassifier))
    ours, theirs = _fit_pair(estimator, reference_class, frame, y, n_estimators=5, max_depth=3,
                             objective=objective)
    matrix = xgboost.DMatrix(frame)
    assert_allclose(ours.predict(frame), theirs.predict(matrix), rtol=1e-5, atol=1e-5)
    assert_allclose(ours.predict(frame, output_margin=True),
                    theirs.predict(matrix, output_margin=True),
                    rtol=1e-5, atol=1e-5)
    assert_allclose(ours.predict(frame, iteration_range=(1, 3)),
                    theirs.predict(matrix, iteration_range=(1, 3)), rtol=1e-5, atol=1e-5)
    assert_array_equal(ours.predict(frame, pred_leaf=True), theirs.predict(matrix, pred_leaf=True))
    contributions = theirs.predict(matrix, pred_contribs=True)
    assert_allclose(ours.predict(frame, pred_contribs=True), contributions, rtol=1e-5,
                    atol=1e-5 * np.abs(contributions).max())
    # Leaf values, gains and covers agree to float32 rounding (their sums differ in the last bit);
    # everything else in the dumps is identical.
    rounded = lambda dump: re.sub(r"(leaf|gain|cover)=[^,\n]*", r"\1", dump)
    for with_stats in (False, True):
        assert [rounded(t) for t in ours.get_dump(with_stats=with_stats)] \
            == [rounded(t) for t in theirs.get_dump(with_stats=with_stats)]
        for mine, reference in zip(ours.get_dump(with_stats=with_stats, dump_format="json"),
                                   theirs.get_dump(with_stats=with_stats, dump_format="json")):
            _assert_same_json(json.loads(mine), json.loads(reference))
    for kind in ("weight", "gain", "cover", "total_gain", "total_cover"):
        mine, reference = ours.get_score(importance_type=kind), theirs.get_score(importance_type=kind)
        assert list(mine) == list(reference)
        assert_allclose(list(mine.values()), list(reference.values()), rtol=1e-5)
    import pandas.testing as pdt
    pdt.assert_frame_equal(ours.trees_to_dataframe(), theirs.trees_to_dataframe(),
                           check_dtype=False, rtol=1e-5)
    path = str(tmp_path / "booster.json")
    ours.save_model(path)
    assert_allclose(xgboost.Booster(model_file=path).predict(matrix), theirs.predict(matrix),
                    rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="importance_type"):
        ours.get_score(importance_type="split")


@pytest.mark.parametrize("settings", [dict(objective="reg:quantileerror", quantile_alpha=0.7),
                                      dict(objective="reg:tweedie", tweedie_variance_power=1.3),
                                      dict(objective="reg:pseudohubererror", huber_slope=80.0)])
def test_weighted_objectives_equal_xgboost_and_save_in_our_format(diabetes, settings, tmp_path):
    X, y = diabetes
    weights = np.random.default_rng(0).uniform(0.2, 3.0, y.shape[0])
    params = dict(n_estimators=5, max_depth=3, **settings)
    reference = xgboost.XGBRegressor(tree_method="hist", n_jobs=1, **params).fit(
        X, y, sample_weight=weights)
    cuts = xgboost.QuantileDMatrix(X, weight=weights, max_bin=256).get_quantile_cut()
    model = XGBRegressor(n_jobs=1, **params).fit(X, y, sample_weight=weights, cuts=cuts)
    assert_allclose(model.base_score_, float(_base_score(reference)[1:-1]), rtol=1e-6)
    assert compare_trees(model, reference, rtol=1e-5, atol=1e-6) > 0
    assert_allclose(model.predict(X), reference.predict(X), rtol=1e-5, atol=1e-5)
    path = str(tmp_path / "ours.json")
    model.save_model(path, format="fastscratch")
    loaded = XGBRegressor().load_model(path)
    assert loaded.get_params() == model.get_params()
    assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("data", ["cancer", "iris"])
def test_callable_eval_metric_sees_probabilities_like_xgboost(data, request):
    """A classifier's callable metric gets the probabilities xgboost gives it: the positive
    class's (binary), or one column per class."""
    X, y = request.getfixturevalue(data)

    def brier_last_class(y_true, y_pred):
        p = np.asarray(y_pred).reshape(len(y_true), -1)[:, -1]
        return float(np.mean((p - (y_true == y_true.max())) ** 2))

    params = dict(n_estimators=5, max_depth=3, eval_metric=brier_last_class)
    reference = xgboost.XGBClassifier(tree_method="hist", n_jobs=1, **params).fit(
        X, y, eval_set=[(X, y)], verbose=False)
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    model = XGBClassifier(n_jobs=1, **params).fit(X, y, cuts=cuts, eval_set=[(X, y)],
                                                  verbose=False)
    ours, theirs = model.evals_result()["validation_0"], reference.evals_result()["validation_0"]
    assert list(ours) == list(theirs)
    assert_allclose(ours["brier_last_class"], theirs["brier_last_class"], rtol=1e-5)
