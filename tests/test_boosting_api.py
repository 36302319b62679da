"""xgboost's scikit-learn surface (issue 20): constructor, aliases, get_params, inputs, fit options.

Every check runs xgboost 3.x on the same data and compares: parameters as xgboost reports
them; trees node by node given xgboost's bin cuts; predictions to float32 rounding.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from fastscratch import XGBClassifier, XGBRegressor

from _boosting_trees import compare_trees

# Parameters of xgboost's constructor that other parts of issue 20 add (categorical splits,
# constraints); everything else xgboost's get_params reports, ours reports with its value.
_ADDED_ELSEWHERE = {"enable_categorical", "feature_types", "max_cat_to_onehot",
                    "max_cat_threshold", "monotone_constraints", "interaction_constraints"}
# Ours that xgboost's constructor does not name (xgboost takes the last three as **kwargs).
_OURS_ONLY = {"backend", "tweedie_variance_power", "huber_slope", "quantile_alpha",
              # LightGBM's names of the opt-in quantized-gradient mode (issue 19)
              "use_quantized_grad", "num_grad_quant_bins", "stochastic_rounding",
              "quant_train_renew_leaf"}


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


def test_default_seed_repeats(diabetes):
    """random_state=None is xgboost's seed 0: sampled fits with the defaults repeat, and are
    the fit with random_state=0 (scikit-learn's None would draw a new sample each time)."""
    X, y = diabetes
    sampled = dict(n_estimators=5, subsample=0.5, colsample_bytree=0.5)
    first = XGBRegressor(**sampled).fit(X, y).predict(X)
    assert_array_equal(first, XGBRegressor(**sampled).fit(X, y).predict(X))
    assert_array_equal(first, XGBRegressor(random_state=0, **sampled).fit(X, y).predict(X))
    assert not np.array_equal(first, XGBRegressor(random_state=1, **sampled).fit(X, y).predict(X))


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


# ----------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def sparse_cancer(cancer):
    """breast_cancer with each feature's values below its median zeroed and left out of the CSR
    matrix (absent: missing, for xgboost and for us)."""
    X, y = cancer
    X = np.where(X < np.median(X, axis=0), 0, X)
    return sp.csr_matrix(X), y


@pytest.fixture(scope="module")
def sparse_counts():
    """A 20-newsgroups-like term-count matrix: 2% dense, Poisson counts (so some stored
    zeros, which are values, not missing), and a linear target."""
    rng = np.random.default_rng(0)
    n, d = 3000, 400
    X = sp.random(n, d, density=0.02, format="csr", random_state=1,
                  data_rvs=lambda k: rng.poisson(2.0, k).astype(np.float32))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    return X, y


def test_sparse_classifier_as_xgboost(sparse_cancer):
    X, y = sparse_cancer
    params = dict(n_estimators=10, max_depth=4, max_bin=128)  # <= 255 bins: missing values
    cuts = xgboost.QuantileDMatrix(X, max_bin=128).get_quantile_cut()
    reference = xgboost.XGBClassifier(**params).fit(X, y)
    ours = XGBClassifier(**params).fit(X, y, cuts=cuts)
    assert compare_trees(ours, reference, rtol=1e-5, atol=1e-6) > 50
    expected = reference.predict_proba(X)
    for data in (X, X.tocsc(), X.astype(np.float64)):
        assert_allclose(ours.predict_proba(data), expected, rtol=1e-5, atol=1e-6)
    assert_array_equal(ours.predict(X, pred_leaf=True),
                       reference.get_booster().predict(xgboost.DMatrix(X), pred_leaf=True))
    assert_allclose(ours.predict(X, pred_contribs=True),
                    reference.get_booster().predict(xgboost.DMatrix(X), pred_contribs=True),
                    rtol=1e-5, atol=1e-5)
    # Fitted from CSC, the same trees; with our own cuts, xgboost's accuracy.
    from_csc = XGBClassifier(**params).fit(X.tocsc(), y, cuts=cuts)
    assert_array_equal(from_csc.predict_proba(X), ours.predict_proba(X))
    own = XGBClassifier(**params).fit(X, y)
    assert abs(np.mean(own.predict(X) == y) - np.mean(reference.predict(X) == y)) < 0.01


def test_sparse_counts_as_xgboost(sparse_counts):
    X, y = sparse_counts
    params = dict(n_estimators=10, max_depth=5, max_bin=64)
    cuts = xgboost.QuantileDMatrix(X, max_bin=64).get_quantile_cut()
    reference = xgboost.XGBRegressor(**params).fit(X, y, eval_set=[(X[:500], y[:500])],
                                                   verbose=False)
    ours = XGBRegressor(**params).fit(X, y, cuts=cuts, eval_set=[(X[:500], y[:500])],
                                      verbose=False)
    assert compare_trees(ours, reference, rtol=1e-5, atol=1e-5) > 100
    assert_allclose(ours.predict(X), reference.predict(X), rtol=1e-5, atol=1e-4)
    assert_allclose(ours.evals_result()["validation_0"]["rmse"],
                    reference.evals_result()["validation_0"]["rmse"], rtol=1e-5)
    # Our own cuts are xgboost's on these counts (fewer distinct values than bins).
    own = XGBRegressor(**params).fit(X, y)
    assert_array_equal(own._binner.cut_values_,
                       np.delete(cuts[1], cuts[0][:-1]))  # xgboost lists each min first


def test_sparse_binning_blocks_equal_dense(sparse_counts, monkeypatch):
    """Binned a few rows at a time, sparse data give the codes of the same data dense with NaN."""
    from fastscratch.boosting import binning

    X, _ = sparse_counts
    dense = np.full(X.shape, np.nan, dtype=np.float32)
    coo = X.tocoo()
    dense[coo.row, coo.col] = coo.data
    mapper = binning.BinMapper(max_bin=32).fit(X)
    reference = binning.BinMapper(max_bin=32).fit(dense)
    assert_array_equal(mapper.cut_values_, reference.cut_values_)
    monkeypatch.setattr(binning, "SPARSE_BLOCK_BYTES", 4 * X.shape[1] * 7)  # 7-row blocks
    assert_array_equal(mapper.transform(X), reference.transform(dense))


def test_series_as_one_feature(diabetes):
    """A 1-D pandas Series as X is one feature, as xgboost reads it."""
    X, y = diabetes
    named = pd.Series(X[:, 2], name="bmi")
    assert_array_equal(XGBRegressor(n_estimators=2).fit(named, y).feature_names_in_,
                       xgboost.XGBRegressor(n_estimators=2).fit(named, y).feature_names_in_)
    column = pd.Series(X[:, 2])
    reference = xgboost.XGBRegressor(n_estimators=5, max_depth=3).fit(column, y)
    cuts = xgboost.QuantileDMatrix(X[:, 2:3], max_bin=256).get_quantile_cut()
    ours = XGBRegressor(n_estimators=5, max_depth=3).fit(column, y, cuts=cuts)
    assert ours.n_features_in_ == reference.n_features_in_ == 1
    assert_allclose(ours.predict(column), reference.predict(column), rtol=1e-5, atol=1e-4)
    reference.get_booster().feature_names = None  # dumps name the feature f0, as ours
    compare_trees(ours, reference, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="2D array"):  # 1-D NumPy stays an error, as xgboost
        XGBRegressor(n_estimators=2).fit(X[:, 2], y)


# ------------------------------------------------------------------------ base_margin
def test_base_margin_regression_as_xgboost(diabetes):
    """base_margin in fit, in the eval set (with eval weights) and in predict, as xgboost."""
    X, y = diabetes
    rng = np.random.default_rng(0)
    margin = rng.normal(140, 20, y.shape[0])
    options = dict(base_margin=margin, eval_set=[(X[:100], y[:100])],
                   base_margin_eval_set=[margin[:100] + 3.0],
                   sample_weight_eval_set=[np.linspace(0.5, 2.0, 100)], verbose=False)
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    reference = xgboost.XGBRegressor(n_estimators=5, max_depth=3).fit(X, y, **options)
    ours = XGBRegressor(n_estimators=5, max_depth=3).fit(X, y, cuts=cuts, **options)
    assert compare_trees(ours, reference, rtol=1e-5, atol=1e-5) > 20
    assert_allclose(ours.evals_result()["validation_0"]["rmse"],
                    reference.evals_result()["validation_0"]["rmse"], rtol=1e-5)
    # Without base_margin, predict starts from the base score (estimated from y, as xgboost).
    assert_allclose(ours.predict(X), reference.predict(X), rtol=1e-6, atol=1e-4)
    assert_allclose(ours.predict(X, base_margin=margin),
                    reference.predict(X, base_margin=margin), rtol=1e-6, atol=1e-4)
    with_margin = xgboost.DMatrix(X, base_margin=margin)
    assert_allclose(ours.predict(X, pred_contribs=True, base_margin=margin),
                    reference.get_booster().predict(with_margin, pred_contribs=True),
                    rtol=1e-5, atol=1e-4)
    assert_allclose(ours.predict(X[:20], pred_interactions=True, base_margin=margin[:20]),
                    reference.get_booster().predict(
                        xgboost.DMatrix(X[:20], base_margin=margin[:20]), pred_interactions=True),
                    rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_base_margin_classifier_as_xgboost(cancer, n_classes):
    X, y = cancer
    if n_classes == 3:
        y = (X[:, 0] > 12).astype(int) + (X[:, 0] > 16)
    rng = np.random.default_rng(1)
    margin = rng.normal(0, 1, y.shape[0] if n_classes == 2 else (y.shape[0], n_classes))
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    reference = xgboost.XGBClassifier(n_estimators=4, max_depth=3).fit(X, y, base_margin=margin)
    ours = XGBClassifier(n_estimators=4, max_depth=3).fit(X, y, base_margin=margin, cuts=cuts)
    compare_trees(ours, reference, rtol=1e-5, atol=1e-5)
    assert_allclose(ours.predict_proba(X, base_margin=margin),
                    reference.predict_proba(X, base_margin=margin), rtol=1e-5, atol=1e-6)
    assert_allclose(ours.predict(X, output_margin=True, base_margin=margin),
                    reference.predict(X, output_margin=True, base_margin=margin),
                    rtol=1e-5, atol=1e-5)
    assert_array_equal(ours.predict(X, base_margin=margin),
                       reference.predict(X, base_margin=margin))
    assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_bad_base_margin(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match=r"base_margin has shape \(3,\); it must be \(442,\)"):
        XGBRegressor(n_estimators=2).fit(X, y, base_margin=np.zeros(3))
    with pytest.raises(ValueError, match="base_margin contains NaN"):
        XGBRegressor(n_estimators=2).fit(X, y, base_margin=np.full(y.shape[0], np.nan))
    with pytest.raises(ValueError, match="base_margin_eval_set has 2 entries, eval_set 1"):
        XGBRegressor(n_estimators=2).fit(X, y, eval_set=[(X, y)], verbose=False,
                                         base_margin_eval_set=[None, None])
    model = XGBRegressor(n_estimators=2).fit(X, y)
    with pytest.raises(ValueError, match="base_margin has shape"):
        model.predict(X, base_margin=np.zeros((y.shape[0], 2)))


# ------------------------------------------------------------------ continuation
@pytest.fixture(scope="module")
def continued(diabetes):
    """xgboost trained on half of diabetes, then continued on the other half (y shifted)."""
    X, y = diabetes
    X1, y1, X2, y2 = X[:250], y[:250], X[250:], y[250:] + 20.0
    first = xgboost.XGBRegressor(n_estimators=4, max_depth=3).fit(X1, y1)
    second = xgboost.XGBRegressor(n_estimators=3, max_depth=3).fit(X2, y2, xgb_model=first)
    ours_first = XGBRegressor(n_estimators=4, max_depth=3).fit(
        X1, y1, cuts=xgboost.QuantileDMatrix(X1, max_bin=256).get_quantile_cut())
    return dict(data=(X1, y1, X2, y2), first=first, second=second, ours_first=ours_first)


@pytest.mark.parametrize("source", ["estimator", "booster", "our file", "xgboost json",
                                    "xgboost ubj", "xgboost booster"])
def test_continuation_as_xgboost(continued, source, tmp_path):
    """fit(..., xgb_model=) from each kind of model gives xgboost's continued trees."""
    X1, y1, X2, y2 = continued["data"]
    first, ours_first = continued["first"], continued["ours_first"]
    if source == "estimator":
        model = ours_first
    elif source == "booster":
        model = ours_first.get_booster()
    elif source == "our file":
        model = str(tmp_path / "ours.json")
        ours_first.save_model(model)
    elif source == "xgboost booster":
        model = first.get_booster()
    else:
        model = str(tmp_path / ("first." + source.split()[1]))
        first.save_model(model)
    cuts = xgboost.QuantileDMatrix(X2, max_bin=256).get_quantile_cut()
    ours = XGBRegressor(n_estimators=3, max_depth=3).fit(
        X2, y2, cuts=cuts, xgb_model=model, eval_set=[(X1[:50], y1[:50])], verbose=False)
    reference = continued["second"]
    assert compare_trees(ours, reference, rtol=1e-5, atol=1e-4) > 40
    assert_allclose(ours.predict(X1), reference.predict(X1), rtol=1e-6, atol=1e-4)
    # The eval history is the rmse of the model's own predictions after each round (xgboost
    # evaluates a quantised eval set, whose bins do not match the first model's thresholds).
    rmse = [np.sqrt(np.mean((reference.predict(X1[:50], iteration_range=(0, k)) - y1[:50]) ** 2))
            for k in (5, 6, 7)]
    assert_allclose(ours.evals_result()["validation_0"]["rmse"], rmse, rtol=1e-5)
    assert ours_first._forest.n_trees == 4  # the continued model is a copy


def test_continuation_classifier_early_stopping(cancer):
    """best_iteration counts every round, the continued model's included, as xgboost's."""
    X, y = cancer
    even, odd = np.arange(y.shape[0]) % 2 == 0, np.arange(y.shape[0]) % 2 == 1
    first = xgboost.XGBClassifier(n_estimators=3, max_depth=3).fit(X[even], y[even])
    params = dict(n_estimators=6, max_depth=3, early_stopping_rounds=2)
    reference = xgboost.XGBClassifier(**params).fit(X[odd], y[odd], xgb_model=first,
                                                    eval_set=[(X[even], y[even])], verbose=False)
    ours = XGBClassifier(**params).fit(
        X[odd], y[odd], cuts=xgboost.QuantileDMatrix(X[odd], max_bin=256).get_quantile_cut(),
        xgb_model=first.get_booster(), eval_set=[(X[even], y[even])], verbose=False)
    compare_trees(ours, reference, rtol=1e-5, atol=1e-5)
    assert ours.best_iteration == reference.best_iteration
    assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_bad_continuation(continued, cancer):
    X1, y1, X2, y2 = continued["data"]
    with pytest.raises(ValueError, match="xgb_model has 10 features, X has 5"):
        XGBRegressor(n_estimators=2).fit(X2[:, :5], y2, xgb_model=continued["ours_first"])
    Xc, yc = cancer
    y3 = (Xc[:, 0] > 12).astype(int) + (Xc[:, 0] > 16)
    three = XGBClassifier(n_estimators=2).fit(Xc, y3)
    with pytest.raises(ValueError, match="3 output groups .* this fit 1"):
        XGBClassifier(n_estimators=2).fit(Xc, yc, xgb_model=three)
    with pytest.raises(TypeError, match="xgb_model=dict is not a fitted model"):
        XGBRegressor(n_estimators=2).fit(X2, y2, xgb_model={})


# -------------------------------------------------------------------- multi-label
@pytest.fixture(scope="module")
def multilabel(cancer):
    """breast_cancer's diagnosis and two thresholded features as three 0/1 labels."""
    X, y = cancer
    return X, np.column_stack([y, (X[:, 0] > 14).astype(int), (X[:, 1] > 20).astype(int)])


def test_multilabel_as_xgboost(multilabel):
    """y (n, 3) of 0/1: one tree per label per round, as xgboost's XGBClassifier."""
    X, Y = multilabel
    weights = np.linspace(0.5, 1.5, Y.shape[0])
    options = dict(sample_weight=weights, eval_set=[(X[:100], Y[:100])], verbose=False)
    cuts = xgboost.QuantileDMatrix(X, weight=weights, max_bin=256).get_quantile_cut()
    reference = xgboost.XGBClassifier(n_estimators=5, max_depth=3).fit(X, Y, **options)
    ours = XGBClassifier(n_estimators=5, max_depth=3).fit(X, Y, cuts=cuts, **options)
    assert compare_trees(ours, reference, rtol=1e-5, atol=1e-5) > 30
    assert_array_equal(ours.classes_, reference.classes_)
    assert ours.n_classes_ == reference.n_classes_ == 2
    assert_allclose(ours.base_score_, [0.66707104, 0.39197442, 0.39464778], rtol=1e-6)
    assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert_array_equal(ours.predict(X), reference.predict(X))
    assert_allclose(ours.predict(X, output_margin=True), reference.predict(X, output_margin=True),
                    rtol=1e-5, atol=1e-5)
    assert_allclose(ours.evals_result()["validation_0"]["logloss"],
                    reference.evals_result()["validation_0"]["logloss"], rtol=1e-6)
    assert_allclose(ours.predict(X, pred_contribs=True),
                    reference.get_booster().predict(xgboost.DMatrix(X), pred_contribs=True),
                    rtol=1e-5, atol=1e-5)


def test_multilabel_saved_and_reloaded(multilabel, tmp_path):
    X, Y = multilabel
    ours = XGBClassifier(n_estimators=3, max_depth=3).fit(X, Y)
    ours.save_model(tmp_path / "ours.json")
    loaded = XGBClassifier().load_model(tmp_path / "ours.json")
    assert_array_equal(loaded.predict_proba(X), ours.predict_proba(X))
    assert_array_equal(loaded.predict(X), ours.predict(X))
    ours.save_model(tmp_path / "xgb.json", format="xgboost")  # xgboost serves it
    served = xgboost.XGBClassifier()
    served.load_model(tmp_path / "xgb.json")
    assert_allclose(served.predict_proba(X), ours.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert_array_equal(served.predict(X), ours.predict(X))
    # and an xgboost multi-label model (JSON, UBJSON) predicts and explains here.
    reference = xgboost.XGBClassifier(n_estimators=3, max_depth=3).fit(X, Y)
    for name in ("reference.json", "reference.ubj"):
        reference.save_model(tmp_path / name)
        loaded = XGBClassifier().load_model(tmp_path / name)
        assert_allclose(loaded.predict_proba(X), reference.predict_proba(X), rtol=1e-5,
                        atol=1e-6)
        assert_array_equal(loaded.predict(X), reference.predict(X))
        assert_allclose(loaded.predict(X, pred_contribs=True),
                        reference.get_booster().predict(xgboost.DMatrix(X), pred_contribs=True),
                        rtol=1e-5, atol=1e-5)


def test_bad_multilabel(multilabel):
    X, Y = multilabel
    with pytest.raises(ValueError, match="2-D y must be a multi-label indicator"):
        XGBClassifier(n_estimators=2).fit(X, Y * 2 + np.arange(3))
    with pytest.raises(ValueError, match="'multi:softprob' is not supported with a multi-label"):
        XGBClassifier(n_estimators=2, objective="multi:softprob").fit(X, Y)
    with pytest.raises(ValueError, match="scale_pos_weight is not supported with a multi-label"):
        XGBClassifier(n_estimators=2, scale_pos_weight=2.0).fit(X, Y)


# ------------------------------------------------------- custom multi-class objectives
def _softmax_objective(y_true, margin):
    """Softmax cross-entropy with xgboost's hessian factor 2 (as multi:softprob)."""
    e = np.exp(margin - margin.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(margin.shape[1])[y_true.astype(int)]
    return p - onehot, np.maximum(2.0 * p * (1.0 - p), 1e-6)


def test_custom_objective_multiclass_as_xgboost(cancer, tmp_path):
    """A callable objective with 3 classes: margins (n, 3) in, gradients (n, 3) out; xgboost
    trains multi:softprob from base margins 0.5 and predicts the softmax."""
    X, y = cancer
    y3 = (X[:, 0] > 12).astype(int) + (X[:, 0] > 16)
    params = dict(n_estimators=5, max_depth=3, objective=_softmax_objective)
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    reference = xgboost.XGBClassifier(**params).fit(X, y3)
    ours = XGBClassifier(**params).fit(X, y3, cuts=cuts)
    assert compare_trees(ours, reference, rtol=1e-5, atol=1e-5) >= 20
    assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert_array_equal(ours.predict(X), reference.predict(X))
    assert_allclose(ours.predict(X, output_margin=True), reference.predict(X, output_margin=True),
                    rtol=1e-5, atol=1e-5)
    ours.save_model(tmp_path / "custom.json", format="xgboost")  # served by xgboost
    served = xgboost.Booster(model_file=str(tmp_path / "custom.json"))
    assert_allclose(served.predict(xgboost.DMatrix(X)), ours.predict_proba(X), rtol=1e-5,
                    atol=1e-6)
    with pytest.raises(ValueError, match=r"returned a gradient of shape \(10,\)"):
        XGBClassifier(n_estimators=1, objective=lambda t, m: (np.zeros(10), np.ones(10))).fit(
            X, y3)


def test_sparse_predict_equals_dense_with_nan(sparse_counts):
    """CSR prediction (the split features' columns only, densified a block at a time) gives
    the bits of the same rows dense with NaN, also for trees without a split."""
    X, y = sparse_counts
    dense = np.full(X.shape, np.nan, dtype=np.float32)
    coo = X.tocoo()
    dense[coo.row, coo.col] = coo.data
    for params in (dict(n_estimators=8, max_depth=4), dict(n_estimators=2, gamma=1e12)):
        model = XGBRegressor(**params).fit(X, y)
        assert_array_equal(model.predict(X), model.predict(dense))
        assert_array_equal(model.predict(X[:7]), model.predict(dense[:7]))


def test_pickle_after_predict_keeps_only_the_trees(sparse_counts):
    """The layouts a prediction builds (the complete layout, the sparse predict's
    renumbered copy) are not pickled; the unpickled model rebuilds them and predicts the
    same bits."""
    import pickle

    X, y = sparse_counts
    model = XGBRegressor(n_estimators=8, max_depth=4).fit(X, y)
    model.get_booster().get_dump()  # the flat arrays, built without a layout
    trees_only = len(pickle.dumps(model))
    expected = model.predict(X)
    model.predict(X.toarray())  # builds the complete layout as well
    assert len(pickle.dumps(model)) == trees_only
    restored = pickle.loads(pickle.dumps(model))
    assert_array_equal(restored.predict(X), expected)
    assert_array_equal(restored.predict(X.toarray()), model.predict(X.toarray()))
