"""xgboost's scikit-learn surface (issue 20): constructor, aliases, get_params, inputs, fit options.

Every check runs xgboost 3.x on the same data and compares: parameters as xgboost reports
them; trees node by node given xgboost's bin cuts; predictions to float32 rounding.
"""

import numpy as np
import pytest
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes

from fastscratch import XGBClassifier, XGBRegressor

from _boosting_trees import compare_trees

# Parameters of xgboost's constructor that other parts of issue 20 add (categorical splits,
# constraints); everything else xgboost's get_params reports, ours reports with its value.
_ADDED_ELSEWHERE = {"enable_categorical", "feature_types", "max_cat_to_onehot",
                    "max_cat_threshold", "monotone_constraints", "interaction_constraints"}
# Ours that xgboost's constructor does not name (xgboost takes the last three as **kwargs).
_OURS_ONLY = {"backend", "tweedie_variance_power", "huber_slope", "quantile_alpha"}


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X.astype(np.float32), y


def _same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))


def _assert_params_as_xgboost(ours, reference):
    mine, theirs = ours.get_params(), reference.get_params()
    assert set(theirs) - set(mine) <= _ADDED_ELSEWHERE
    assert set(mine) - set(theirs) <= _OURS_ONLY
    different = {k: (mine[k], theirs[k]) for k in set(mine) & set(theirs)
                 if not _same(mine[k], theirs[k])}
    assert not different
    mine, theirs = ours.get_xgb_params(), reference.get_xgb_params()
    assert set(theirs) - set(mine) <= _ADDED_ELSEWHERE
    assert set(mine) - set(theirs) <= _OURS_ONLY
    assert all(_same(mine[k], theirs[k]) for k in set(mine) & set(theirs))


@pytest.mark.parametrize("ours, reference", [(XGBRegressor, xgboost.XGBRegressor),
                                             (XGBClassifier, xgboost.XGBClassifier)])
@pytest.mark.parametrize("params", [{}, dict(eta=0.1, max_depth=3), dict(learning_rate=0.2,
                                                                          reg_lambda=2.0)])
def test_get_params_as_xgboost(ours, reference, params):
    _assert_params_as_xgboost(ours(**params), reference(**params))
    # set_params: a name that is not a parameter goes to kwargs, as xgboost's.
    _assert_params_as_xgboost(ours().set_params(**params), reference().set_params(**params))
    assert ours().get_num_boosting_rounds() == reference().get_num_boosting_rounds() == 100


def test_clone_keeps_kwargs():
    model = XGBRegressor(eta=0.1, seed=3, max_depth=2)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert copy.get_params()["eta"] == 0.1


def test_xgboost_defaults_written_out(diabetes):
    """xgboost's own defaults, written out, are accepted and change nothing."""
    X, y = diabetes
    written = dict(missing=np.nan, booster="gbtree", device="cpu", tree_method="hist",
                   verbosity=0, validate_parameters=True, num_parallel_tree=1,
                   sampling_method="uniform", multi_strategy="one_output_per_tree",
                   grow_policy="depthwise", max_leaves=0, subsample=1.0, colsample_bytree=1.0,
                   colsample_bylevel=1.0, colsample_bynode=1.0, scale_pos_weight=1.0,
                   min_child_weight=1.0, reg_lambda=1.0, reg_alpha=0.0, gamma=0.0, max_bin=256,
                   learning_rate=0.3, max_depth=6)
    a = XGBRegressor(n_estimators=5, **written).fit(X, y).predict(X)
    b = XGBRegressor(n_estimators=5).fit(X, y).predict(X)
    assert_array_equal(a, b)


@pytest.mark.parametrize("alias, name, value", [("eta", "learning_rate", 0.1),
                                                ("min_split_loss", "gamma", 50.0),
                                                ("lambda", "reg_lambda", 3.0),
                                                ("alpha", "reg_alpha", 2.0),
                                                ("seed", "random_state", 7),
                                                ("nthread", "n_jobs", 1)])
def test_aliases_as_xgboost(diabetes, alias, name, value):
    """``eta=`` etc. train what the parameter's own name trains, and xgboost's trees."""
    X, y = diabetes
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    common = dict(n_estimators=6, max_depth=4, subsample=0.8)  # row sampling: seed matters
    if alias != "seed":
        common["random_state"] = 0
    by_alias = XGBRegressor(**common, **{alias: value}).fit(X, y, cuts=cuts)
    by_name = XGBRegressor(**common, **{name: value}).fit(X, y, cuts=cuts)
    assert_array_equal(by_alias.predict(X), by_name.predict(X))
    if alias not in ("seed", "nthread"):  # row sampling draws differ from xgboost's
        reference = xgboost.XGBRegressor(n_estimators=6, max_depth=4, **{alias: value}).fit(X, y)
        ours = XGBRegressor(n_estimators=6, max_depth=4, **{alias: value}).fit(X, y, cuts=cuts)
        compare_trees(ours, reference, rtol=1e-5, atol=1e-5)
        assert_allclose(ours.predict(X), reference.predict(X), rtol=1e-5, atol=1e-4)


def test_bad_constructor_values(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="eta=0.1 is xgboost's name of learning_rate"):
        XGBRegressor(eta=0.1, learning_rate=0.2).fit(X, y)
    with pytest.raises(ValueError, match="parameter 'colsample_by_magic' is not supported"):
        XGBRegressor(colsample_by_magic=0.5).fit(X, y)
    for name, value in (("num_parallel_tree", 2), ("sampling_method", "gradient_based"),
                        ("multi_strategy", "multi_output_tree"), ("callbacks", [print]),
                        ("booster", "dart"), ("device", "cuda"), ("tree_method", "exact")):
        with pytest.raises(ValueError, match=f"{name}=.*not supported"):
            XGBRegressor(n_estimators=2, **{name: value}).fit(X, y)


def test_default_objective_as_xgboost(cancer):
    """"binary:logistic" (the default) trains "multi:softprob" on more classes, as xgboost."""
    X, y = cancer
    y3 = (X[:, 0] > 12).astype(int) + (X[:, 0] > 16)
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    reference = xgboost.XGBClassifier(n_estimators=4, max_depth=3).fit(X, y3)
    ours = XGBClassifier(n_estimators=4, max_depth=3).fit(X, y3, cuts=cuts)
    assert ours.get_params()["objective"] == "binary:logistic"
    compare_trees(ours, reference, rtol=1e-5, atol=1e-6)
    assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-5, atol=1e-6)
