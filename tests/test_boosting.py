"""XGBRegressor / XGBClassifier against xgboost (tree_method="hist") on real data.

- Equal trees: given xgboost's own cut points, every tree splits on the same
  feature at the same threshold, has the same shape and the same leaf values
  (float32), and the predictions agree to float32 accuracy.
- With our own binning: test RMSE within 2% and AUC within 0.005 of xgboost.
"""

import json

import numpy as np
import pytest
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastscratch import XGBClassifier, XGBRegressor
from fastscratch.kernels import available_backends

from _boosting_trees import compare_trees


REGRESSION_SETTINGS = [
    dict(max_depth=3, max_bin=32),
    dict(max_depth=6),
    dict(max_depth=4, reg_lambda=5.0, reg_alpha=3.0),
    dict(max_depth=5, gamma=3000.0),
    dict(max_depth=4, min_child_weight=15.0, learning_rate=0.1),
    dict(max_depth=4, max_delta_step=0.5),
]
CLASSIFICATION_SETTINGS = [
    dict(max_depth=3, max_bin=32),
    dict(max_depth=6),
    dict(max_depth=4, reg_lambda=0.1, reg_alpha=1.0),
    dict(max_depth=5, gamma=1.5),
    dict(max_depth=4, min_child_weight=4.0, learning_rate=0.5),
    dict(max_depth=4, max_delta_step=0.3),
]


@pytest.mark.parametrize("settings", REGRESSION_SETTINGS)
def test_equal_trees_regression(diabetes, settings):
    X, y = diabetes
    params = dict(n_estimators=8, **settings)
    reference = xgboost.XGBRegressor(tree_method="hist", n_jobs=1, **params).fit(X, y)
    cuts = xgboost.QuantileDMatrix(X, max_bin=params.get("max_bin", 256)).get_quantile_cut()
    model = XGBRegressor(n_jobs=1, **params).fit(X, y, cuts=cuts)
    assert compare_trees(model, reference) > 0
    # xgboost sums the trees in float32: ~1e-7 relative at targets ~150.
    assert_allclose(model.predict(X), reference.predict(X), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("settings", CLASSIFICATION_SETTINGS)
def test_equal_trees_binary(cancer, settings):
    X, y = cancer
    params = dict(n_estimators=8, **settings)
    reference = xgboost.XGBClassifier(tree_method="hist", n_jobs=1, **params).fit(X, y)
    cuts = xgboost.QuantileDMatrix(X, max_bin=params.get("max_bin", 256)).get_quantile_cut()
    model = XGBClassifier(n_jobs=1, **params).fit(X, y, cuts=cuts)
    assert compare_trees(model, reference) > 0
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)
    assert_array_equal(model.predict(X), reference.predict(X))


def test_gamma_prunes_like_xgboost(diabetes):
    X, y = diabetes
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    sizes = []
    for gamma in (0.0, 1e5, 1e9):
        reference = xgboost.XGBRegressor(n_estimators=3, gamma=gamma, max_depth=4, n_jobs=1).fit(X, y)
        model = XGBRegressor(n_estimators=3, gamma=gamma, max_depth=4).fit(X, y, cuts=cuts)
        sizes.append(compare_trees(model, reference))
    assert sizes[0] > sizes[1] > sizes[2] == 0


@pytest.mark.parametrize("backend", available_backends())
def test_equal_trees_every_backend(cancer, backend):
    X, y = cancer
    weights = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    params = dict(n_estimators=6, max_depth=5, learning_rate=0.3)
    reference = xgboost.XGBClassifier(tree_method="hist", n_jobs=1, **params).fit(
        X, y, sample_weight=weights)
    # xgboost sketches weighted quantiles when given weights.
    cuts = xgboost.QuantileDMatrix(X, weight=weights, max_bin=256).get_quantile_cut()
    model = XGBClassifier(backend=backend, **params).fit(X, y, sample_weight=weights, cuts=cuts)
    assert compare_trees(model, reference) > 0
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)
    assert model.base_score_ == pytest.approx(float(np.average(y, weights=weights)), rel=1e-6)


@pytest.mark.parametrize("backend", [b for b in available_backends() if b != "numpy"])
def test_same_result_with_one_and_two_threads(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40_000, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + 0.3 * rng.standard_normal(40_000) > 0).astype(int)
    fits = [XGBClassifier(n_estimators=3, max_depth=5, backend=backend, n_jobs=n).fit(X, y)
            for n in (1, 2)]
    assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))
    reference = XGBClassifier(n_estimators=3, max_depth=5, backend="numpy").fit(X, y)
    assert_array_equal(fits[0].predict_proba(X), reference.predict_proba(X))


@pytest.mark.parametrize("regression", [True, False])
@pytest.mark.parametrize("settings", [dict(max_depth=4, max_bin=64),
                                      dict(max_depth=6, max_bin=255, reg_alpha=1.0)])
def test_equal_trees_with_missing_values(diabetes, cancer, regression, settings):
    X, y = diabetes if regression else cancer
    X = X.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.15] = np.nan
    cls, reference_cls = ((XGBRegressor, xgboost.XGBRegressor) if regression
                          else (XGBClassifier, xgboost.XGBClassifier))
    params = dict(n_estimators=8, **settings)
    reference = reference_cls(tree_method="hist", n_jobs=1, **params).fit(X, y)
    cuts = xgboost.QuantileDMatrix(X, max_bin=settings["max_bin"]).get_quantile_cut()
    model = cls(**params).fit(X, y, cuts=cuts)
    assert compare_trees(model, reference) > 0
    nodes, _, _ = model._forest.arrays()
    assert nodes["default_left"].any() and not nodes["default_left"][nodes["left"] >= 0].all()
    if regression:
        assert_allclose(model.predict(X), reference.predict(X), rtol=1e-6, atol=1e-5)
    else:
        assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)


def test_missing_values_with_256_bins_raise():
    X1 = np.repeat(np.arange(300, dtype=np.float32), 2)[:, None]  # 300 distinct values
    X1[::5] = np.nan
    y1 = np.arange(600) % 2
    cuts = (np.array([0, 257]), np.arange(-1, 256, dtype=np.float32))
    with pytest.raises(ValueError, match="max_bin <= 255"):
        XGBClassifier(n_estimators=1).fit(X1, y1, cuts=cuts)
    # Our own binning keeps such features to 255 bins.
    model = XGBClassifier(n_estimators=2).fit(X1, y1)
    assert 200 < model._binner.n_bins_[0] <= 255
    assert np.isfinite(model.predict_proba(X1)).all()


def test_own_binning_regression_quality(diabetes):
    X, y = diabetes
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    params = dict(n_estimators=60, max_depth=3, learning_rate=0.05)
    ours = XGBRegressor(**params).fit(X_train, y_train).predict(X_test)
    theirs = xgboost.XGBRegressor(n_jobs=1, **params).fit(X_train, y_train).predict(X_test)
    rmse_ours = mean_squared_error(y_test, ours) ** 0.5
    rmse_theirs = mean_squared_error(y_test, theirs) ** 0.5
    assert rmse_ours <= 1.02 * rmse_theirs


def test_own_binning_classification_quality(cancer):
    X, y = cancer
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    params = dict(n_estimators=60, max_depth=3, learning_rate=0.1)
    ours = XGBClassifier(**params).fit(X_train, y_train).predict_proba(X_test)[:, 1]
    theirs = xgboost.XGBClassifier(n_jobs=1, **params).fit(X_train, y_train).predict_proba(X_test)[:, 1]
    assert roc_auc_score(y_test, ours) >= roc_auc_score(y_test, theirs) - 0.005


def test_own_cuts_match_xgboost_when_few_distinct_values():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 30, size=(500, 3)).astype(np.float32)
    y = X[:, 0] * 2 + X[:, 1] - X[:, 2] + rng.standard_normal(500)
    cuts = xgboost.QuantileDMatrix(X, max_bin=64).get_quantile_cut()
    ours = XGBRegressor(n_estimators=5, max_bin=64).fit(X, y)
    given = XGBRegressor(n_estimators=5, max_bin=64).fit(X, y, cuts=cuts)
    assert_array_equal(ours._binner.cut_values_, given._binner.cut_values_)
    assert_array_equal(ours.predict(X), given.predict(X))


def test_predict_binned_equals_predict_raw(cancer):
    X, y = cancer
    model = XGBClassifier(n_estimators=10, max_depth=4).fit(X, y)
    binned = model._binner.transform(X)
    from_binned = model._forest.predict_binned(binned, model._binner.n_bins_, model._base_margin)
    assert_allclose(from_binned[:, 0], model._raw_predict(X)[:, 0], rtol=0, atol=0)


@pytest.mark.parametrize("settings", [dict(max_depth=4),
                                      dict(grow_policy="lossguide", max_depth=12, max_leaves=0)])
def test_complete_layout_and_node_arrays_predict_the_same(diabetes, backend, monkeypatch,
                                                          settings):
    """Raw data go through the complete layout (trees up to COMPLETE_MAX_DEPTH deep) or the
    node arrays (deeper trees: these lossguide trees reach depth 12); both give
    the leaves that the binned data reach, bit for bit."""
    from fastscratch.kernels import tree_predict_numpy

    X, y = diabetes
    X = X.copy()
    X[::7, 2] = np.nan
    model = XGBRegressor(n_estimators=3, backend=backend, **settings).fit(X, y)
    expected = model._forest.predict_binned(model._binner.transform(X), model._binner.n_bins_,
                                            model._base_margin, backend="numpy")
    deep = settings.get("grow_policy") == "lossguide"
    assert bool(model._forest.complete()) is not deep
    assert_array_equal(model._raw_predict(X), expected)
    monkeypatch.setattr(tree_predict_numpy, "COMPLETE_MAX_DEPTH", 12 if deep else 3)
    model._forest._complete = None
    assert bool(model._forest.complete()) is deep
    assert_array_equal(model._raw_predict(X), expected)


def test_string_labels_and_classes(cancer):
    X, y = cancer
    labels = np.where(y == 1, "benign", "malignant")
    model = XGBClassifier(n_estimators=5, max_depth=3).fit(X, labels)
    assert_array_equal(model.classes_, ["benign", "malignant"])
    assert set(model.predict(X)) <= {"benign", "malignant"}
    assert model.score(X, labels) > 0.9


def test_progress_bar(diabetes, capsys):
    X, y = diabetes
    XGBRegressor(n_estimators=3, max_depth=2, verbosity=1).fit(X, y)
    assert "train-rmse" in capsys.readouterr().err


def test_xgboost_defaults_written_out_are_accepted(diabetes):
    """xgboost's constructor arguments at their defaults (or the values we can honour) fit
    as the defaults; the others are ValueErrors that say what is supported."""
    X, y = diabetes
    default = XGBRegressor(n_estimators=5).fit(X, y)
    written = XGBRegressor(n_estimators=5, missing=np.nan, booster="gbtree", device="cpu",
                           validate_parameters=True).fit(X, y)
    assert_array_equal(written.predict(X), default.predict(X))
    for params, message in [(dict(missing=0.0), "missing=0.0 is not supported"),
                            (dict(booster="dart"), "booster='dart'"),
                            (dict(device="cuda"), "device='cuda'")]:
        with pytest.raises(ValueError, match=message):
            XGBRegressor(n_estimators=5, **params).fit(X, y)


def test_none_and_zero_mean_what_they_mean_in_xgboost(diabetes):
    """xgboost's scikit-learn API takes None as the library default, and max_depth=0 as no
    depth limit (with either grow policy)."""
    X, y = diabetes
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    defaults = XGBRegressor().fit(X, y, cuts=cuts)
    nones = XGBRegressor(n_estimators=None, learning_rate=None, max_depth=None,
                         max_bin=None).fit(X, y, cuts=cuts)
    assert_array_equal(nones.predict(X), defaults.predict(X))
    assert nones.get_params()["max_depth"] is None  # parameters are left as given
    params = dict(n_estimators=3, max_depth=0)
    reference = xgboost.XGBRegressor(n_jobs=1, **params).fit(X, y)
    unlimited = XGBRegressor(**params).fit(X, y, cuts=cuts)
    assert compare_trees(unlimited, reference) > 0
    assert max(dump.count("\n\t\t\t\t\t\t\t") for dump in unlimited.get_dump()) > 0  # deeper than 6


@pytest.mark.parametrize("params, message", [
    (dict(max_depth=-1), "max_depth"),
    (dict(max_leaves=8), "max_leaves=8 is supported with grow_policy='lossguide' only"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(max_bin=1), "max_bin"),
    (dict(max_bin=257), "max_bin"),
    (dict(n_estimators=0), "n_estimators"),
    (dict(reg_lambda=-1.0), "reg_lambda"),
    (dict(tree_method="exact"), "tree_method"),
    (dict(objective="reg:nonsense"), "objective"),
])
def test_bad_parameters(diabetes, params, message):
    X, y = diabetes
    with pytest.raises(ValueError, match=message):
        XGBRegressor(**params).fit(X, y)


@pytest.mark.parametrize("estimator", [XGBRegressor, XGBClassifier])
@pytest.mark.parametrize("params, message", [
    (dict(max_bin=2**40), "max_bin=1099511627776 is out of range.*uint8"),
    (dict(max_bin=np.uint64(2**63)), "max_bin=.* is out of range"),
    (dict(max_depth=2**31), "max_depth=2147483648 is out of range.*int32"),
    (dict(max_depth=2**70), "max_depth=1180591620717411303424 is out of range"),
    (dict(max_leaves=2**40, grow_policy="lossguide"), "max_leaves=1099511627776 is out of range"),
    (dict(learning_rate=float("nan")), "learning_rate=nan is out of range"),
])
def test_sizes_that_cannot_fit_are_refused_before_x_is_read(estimator, params, message):
    """Issue 23: a size the model cannot hold is a ValueError naming it, raised before the
    data are converted (X here is not even numeric) or anything is allocated from it."""
    X = np.array([["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match=message):
        estimator(**params).fit(X, [0, 1])


def test_bin_mapper_checks_its_sizes_before_allocating(diabetes):
    from fastscratch.boosting.binning import BinMapper

    X, _ = diabetes
    with pytest.raises(ValueError, match="max_bin=1099511627776 is out of range"):
        BinMapper(max_bin=2**40).fit(X)  # np.arange(1, max_bin) would need 8 TB
    with pytest.raises(ValueError, match="subsample=0 is out of range"):
        BinMapper(subsample=0).fit(X)
    with pytest.raises(TypeError, match="max_bin must be an int"):
        BinMapper(max_bin=3.0).fit(X)


def test_max_depth_1000_is_a_limit_as_in_xgboost(diabetes):
    """xgboost accepts max_depth=1000 (depthwise): trees grow until the data stop them. So do
    ours, with the same trees, and the deep trees predict through the node arrays."""
    X, y = diabetes
    params = dict(n_estimators=3, max_depth=1000, min_child_weight=0.0)
    reference = xgboost.XGBRegressor(tree_method="hist", n_jobs=1, **params).fit(X, y)
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    model = XGBRegressor(n_jobs=1, **params).fit(X, y, cuts=cuts)
    assert compare_trees(model, reference) > 0
    assert model._forest.complete() is False  # deeper than the complete layout takes
    assert_allclose(model.predict(X), reference.predict(X), rtol=1e-6, atol=1e-5)


def test_bad_data(diabetes, cancer):
    X, y = diabetes
    y_nan = y.copy()
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        XGBRegressor(n_estimators=2).fit(X, y_nan)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        XGBRegressor(n_estimators=2).fit(X_inf, y)
    with pytest.raises(ValueError):
        XGBRegressor(n_estimators=2).fit(X[:, :, None], y)
    Xc, yc = cancer
    # The default objective "binary:logistic" with 3 classes trains "multi:softprob", as xgboost.
    three = XGBClassifier(n_estimators=2, objective="binary:logistic").fit(Xc[:30],
                                                                          np.arange(30) % 3)
    assert three.predict_proba(Xc[:5]).shape == (5, 3)
    with pytest.raises(ValueError, match="one class"):
        XGBClassifier(n_estimators=2).fit(Xc[:30], np.zeros(30))
    model = XGBRegressor(n_estimators=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :5])


@parametrize_with_checks([XGBRegressor(n_estimators=3, max_depth=3),
                          XGBClassifier(n_estimators=3, max_depth=3)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("importance_type", ["weight", "gain", "total_gain", "cover",
                                             "total_cover"])
def test_feature_importances_like_xgboost(cancer, importance_type):
    X, y = cancer
    params = dict(n_estimators=5, max_depth=4, importance_type=importance_type)
    reference = xgboost.XGBClassifier(n_jobs=1, **params).fit(X, y)
    cuts = xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut()
    model = XGBClassifier(**params).fit(X, y, cuts=cuts)
    assert_allclose(model.feature_importances_, reference.feature_importances_, atol=1e-6)


def test_save_load_round_trip(cancer, diabetes, tmp_path):
    import pickle

    X, y = cancer
    labels = np.where(y == 1, "yes", "no")
    X = X.copy()
    X[::9, 2] = np.nan
    model = XGBClassifier(n_estimators=7, max_depth=4, learning_rate=0.2).fit(X, labels)
    path = tmp_path / "model.json"
    model.save_model(path)  # xgboost's schema by default, as xgboost's save_model
    loaded = XGBClassifier().load_model(path)
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert_array_equal(loaded.predict(X), model.predict(X))  # the string labels are kept
    assert_array_equal(loaded.classes_, ["no", "yes"])
    served = xgboost.XGBClassifier()
    served.load_model(path)  # the labels in the scikit_learn attribute do not disturb xgboost
    assert_allclose(served.predict_proba(X), model.predict_proba(X), rtol=1e-6, atol=1e-7)
    signed = XGBClassifier(n_estimators=3).fit(X, np.where(y == 1, 1, -1))  # numbers, not 0..K-1
    signed.save_model(tmp_path / "signed.json")
    restored = XGBClassifier().load_model(tmp_path / "signed.json")
    assert_array_equal(restored.classes_, [-1, 1])
    assert restored.classes_.dtype == signed.classes_.dtype
    assert_array_equal(restored.predict(X), signed.predict(X))
    own = tmp_path / "own.json"
    model.save_model(own, format="fastscratch")  # everything, the parameters included
    loaded = XGBClassifier().load_model(own)
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params()["learning_rate"] == 0.2
    assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X), model.predict_proba(X))
    Xr, yr = diabetes
    regressor = XGBRegressor(n_estimators=4).fit(Xr, yr)
    regressor.save_model(tmp_path / "r.json")
    assert_array_equal(XGBRegressor().load_model(tmp_path / "r.json").predict(Xr),
                       regressor.predict(Xr))
    with pytest.raises(ValueError, match="not an XGBRegressor"):
        XGBRegressor().load_model(path)
    with pytest.raises(ValueError, match="not a XGBRegressor"):
        XGBRegressor().load_model(own)


def test_predict_options_like_xgboost(cancer, tmp_path):
    X, y = cancer
    params = dict(n_estimators=8, max_depth=4)
    reference = xgboost.XGBClassifier(n_jobs=1, **params).fit(X, y)
    model = XGBClassifier(**params).fit(
        X, y, cuts=xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut())
    booster = reference.get_booster()
    matrix = xgboost.DMatrix(X)
    assert_allclose(model.predict(X, output_margin=True),
                    booster.predict(matrix, output_margin=True), rtol=1e-5, atol=1e-5)
    assert_array_equal(model.predict(X, pred_leaf=True), booster.predict(matrix, pred_leaf=True))
    contributions = model.predict(X, pred_contribs=True)
    assert_allclose(contributions, booster.predict(matrix, pred_contribs=True),
                    rtol=1e-5, atol=1e-5 * np.abs(contributions).max())
    interactions = model.predict(X[:20], pred_interactions=True)
    assert interactions.shape == (20, X.shape[1] + 1, X.shape[1] + 1)
    assert_allclose(interactions.sum(axis=2), contributions[:20], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="exclusive"):
        model.predict(X, output_margin=True, pred_leaf=True)
    path = tmp_path / "ours_as_xgboost.json"
    model.save_model(path, format="xgboost")
    assert_allclose(xgboost.Booster(model_file=str(path)).predict(matrix),
                    model.predict_proba(X)[:, 1], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="format"):
        model.save_model(path, format="ubj")


def test_load_bad_files(cancer, tmp_path):
    X, y = cancer
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is neither an xgboost JSON nor a UBJSON"):
        XGBClassifier().load_model(bad)
    foreign = tmp_path / "xgb.json"
    reference = xgboost.XGBClassifier(n_estimators=2).fit(X, y)
    reference.save_model(foreign)  # xgboost's own file: loads, predicts as xgboost
    assert_allclose(XGBClassifier().load_model(foreign).predict_proba(X),
                    reference.predict_proba(X), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="XGBRegressor"):
        XGBRegressor().load_model(foreign)
    model = XGBClassifier(n_estimators=2).fit(X, y)
    path = tmp_path / "m.json"
    model.save_model(path, format="fastscratch")
    document = json.loads(path.read_text())
    document["forest"]["nodes"]["left"][0] = 10**6
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="corrupted"):
        XGBClassifier().load_model(path)


@pytest.mark.parametrize("regression", [True, False])
def test_early_stopping_like_xgboost(diabetes, cancer, regression, capsys):
    X, y = diabetes if regression else cancer
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)
    metrics = ["mae", "rmse"] if regression else ["auc", "logloss"]
    params = dict(n_estimators=200, max_depth=4, learning_rate=0.3, early_stopping_rounds=5,
                  eval_metric=metrics, max_bin=32)
    cls, reference_cls = ((XGBRegressor, xgboost.XGBRegressor) if regression
                          else (XGBClassifier, xgboost.XGBClassifier))
    eval_set = [(X_train, y_train), (X_valid, y_valid)]
    reference = reference_cls(n_jobs=1, **params).fit(X_train, y_train, eval_set=eval_set,
                                                      verbose=False)
    cuts = xgboost.QuantileDMatrix(X_train, max_bin=32).get_quantile_cut()
    model = cls(**params).fit(X_train, y_train, eval_set=eval_set, verbose=False, cuts=cuts)
    assert model.best_iteration == reference.best_iteration
    assert model.best_score == pytest.approx(reference.best_score, rel=1e-6)
    ours, theirs = model.evals_result(), reference.evals_result()
    for name in ("validation_0", "validation_1"):
        for metric in metrics:
            assert_allclose(ours[name][metric], theirs[name][metric], rtol=1e-5, atol=1e-7)
    predict = "predict" if regression else "predict_proba"
    assert_allclose(getattr(model, predict)(X_valid), getattr(reference, predict)(X_valid),
                    rtol=1e-6, atol=1e-5)
    # All trained rounds stay available through iteration_range.
    assert_allclose(getattr(model, predict)(X_valid, iteration_range=(0, 3)),
                    getattr(reference, predict)(X_valid, iteration_range=(0, 3)),
                    rtol=1e-6, atol=1e-5)
    assert capsys.readouterr().out == ""
    model.set_params(n_estimators=3, early_stopping_rounds=None)
    model.fit(X_train, y_train, eval_set=eval_set[1:], verbose=True)
    assert "[2]\tvalidation_0-" in capsys.readouterr().out
    assert not hasattr(model, "best_iteration")


def test_early_stopping_errors(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="eval_set"):
        XGBRegressor(n_estimators=3, early_stopping_rounds=2).fit(X, y)
    with pytest.raises(ValueError, match="eval_metric"):
        XGBRegressor(n_estimators=3, eval_metric="nope").fit(X, y, eval_set=[(X, y)])
    model = XGBRegressor(n_estimators=3).fit(X, y)
    with pytest.raises(ValueError, match="iteration_range"):
        model.predict(X, iteration_range=(0, 10))
    with pytest.raises(ValueError, match="eval_set"):
        model.evals_result()


@pytest.mark.parametrize("dataset", ["wine", "digits"])
def test_equal_trees_multiclass(dataset):
    from sklearn.datasets import load_digits, load_wine

    X, y = (load_wine if dataset == "wine" else load_digits)(return_X_y=True)
    X = X.astype(np.float32)
    params = dict(n_estimators=4, max_depth=3, max_bin=64, reg_alpha=0.5)
    reference = xgboost.XGBClassifier(n_jobs=1, **params).fit(X, y)
    cuts = xgboost.QuantileDMatrix(X, max_bin=64).get_quantile_cut()
    model = XGBClassifier(**params).fit(X, y, cuts=cuts)
    assert compare_trees(model, reference) > 0
    probabilities = model.predict_proba(X)
    assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    assert_allclose(probabilities, reference.predict_proba(X), atol=1e-5)
    assert_array_equal(model.predict(X), reference.predict(X))


def test_multiclass_string_labels_early_stopping_and_save(tmp_path):
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    X = X.astype(np.float32)
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    X_train, X_valid, y_train, y_valid = train_test_split(X, names, random_state=0, stratify=y)
    params = dict(n_estimators=100, max_depth=3, learning_rate=0.5, early_stopping_rounds=3,
                  eval_metric=["merror", "mlogloss"], max_bin=32)
    model = XGBClassifier(**params).fit(X_train, y_train, eval_set=[(X_valid, y_valid)],
                                        verbose=False,
                                        cuts=xgboost.QuantileDMatrix(X_train, max_bin=32)
                                        .get_quantile_cut())
    reference = xgboost.XGBClassifier(n_jobs=1, **params).fit(
        X_train, np.searchsorted(model.classes_, y_train),
        eval_set=[(X_valid, np.searchsorted(model.classes_, y_valid))], verbose=False)
    assert model.best_iteration == reference.best_iteration
    assert_allclose(model.evals_result()["validation_0"]["mlogloss"],
                    reference.evals_result()["validation_0"]["mlogloss"], rtol=1e-5)
    assert set(model.predict(X_valid)) <= set(names)
    assert model.score(X_valid, y_valid) > 0.85
    model.save_model(tmp_path / "wine.json")
    loaded = XGBClassifier().load_model(tmp_path / "wine.json")
    assert_array_equal(loaded.predict_proba(X_valid), model.predict_proba(X_valid))
    assert_array_equal(loaded.predict(X_valid), model.predict(X_valid))


@pytest.mark.parametrize("sampling", [dict(subsample=0.5),
                                      dict(colsample_bytree=0.5, colsample_bylevel=0.7,
                                           colsample_bynode=0.8),
                                      dict(subsample=0.7, colsample_bynode=0.3)])
def test_sampling_reproducible_and_as_good_as_xgboost(sampling):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=12_000, n_features=20, n_informative=10,
                               random_state=0)
    X = X.astype(np.float32)
    X_train, X_valid, y_train, y_valid = X[:9000], X[9000:], y[:9000], y[9000:]
    params = dict(n_estimators=30, random_state=1, **sampling)
    fits = [XGBClassifier(n_jobs=n, **params).fit(X_train, y_train) for n in (1, 2)]
    assert_array_equal(fits[0].predict_proba(X_valid), fits[1].predict_proba(X_valid))
    other_seed = XGBClassifier(**{**params, "random_state": 2}).fit(X_train, y_train)
    assert not np.array_equal(other_seed.predict_proba(X_valid), fits[0].predict_proba(X_valid))
    reference = xgboost.XGBClassifier(n_jobs=1, **params).fit(X_train, y_train)
    auc = roc_auc_score(y_valid, fits[0].predict_proba(X_valid)[:, 1])
    assert auc >= roc_auc_score(y_valid, reference.predict_proba(X_valid)[:, 1]) - 0.005


def test_colsample_bytree_limits_each_tree(cancer):
    X, y = cancer
    model = XGBClassifier(n_estimators=6, max_depth=3, colsample_bytree=0.05,
                          random_state=0).fit(X, y)  # round(0.05 * 30) = 2 features per tree
    nodes, roots, _ = model._forest.arrays()
    bounds = list(roots) + [nodes["feature"].shape[0]]
    used = [set(nodes["feature"][a:b][nodes["left"][a:b] >= 0]) for a, b in zip(bounds, bounds[1:])]
    assert all(len(features) <= 2 for features in used)
    assert len(set().union(*used)) > 2


@pytest.mark.parametrize("with_weights", [False, True])
@pytest.mark.parametrize("scale_pos_weight", [3.0, 0.4])
def test_scale_pos_weight_like_xgboost(cancer, scale_pos_weight, with_weights):
    X, y = cancer
    weights = np.random.default_rng(0).uniform(0.5, 2, y.shape[0]) if with_weights else None
    params = dict(n_estimators=6, max_depth=4, scale_pos_weight=scale_pos_weight)
    reference = xgboost.XGBClassifier(n_jobs=1, **params).fit(X, y, sample_weight=weights)
    cuts = xgboost.QuantileDMatrix(X, weight=weights, max_bin=256).get_quantile_cut()
    model = XGBClassifier(**params).fit(X, y, sample_weight=weights, cuts=cuts)
    assert compare_trees(model, reference) > 0
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)


def test_apply_like_xgboost(cancer):
    from sklearn.datasets import load_wine

    for X, y in (cancer, load_wine(return_X_y=True)):
        X = X.astype(np.float32).copy()
        X[::11, 3] = np.nan
        params = dict(n_estimators=4, max_depth=4, max_bin=128)
        reference = xgboost.XGBClassifier(n_jobs=1, **params).fit(X, y)
        model = XGBClassifier(**params).fit(
            X, y, cuts=xgboost.QuantileDMatrix(X, max_bin=128).get_quantile_cut())
        assert_array_equal(model.apply(X), reference.apply(X))


def test_get_dump_like_xgboost(diabetes):
    X, y = diabetes
    X = X.copy()
    X[::13, 2] = np.nan
    params = dict(n_estimators=3, max_depth=3, max_bin=64)
    reference = xgboost.XGBRegressor(n_jobs=1, **params).fit(X, y)
    model = XGBRegressor(**params).fit(
        X, y, cuts=xgboost.QuantileDMatrix(X, max_bin=64).get_quantile_cut())
    assert model.get_dump() == reference.get_booster().get_dump()
    ours = model.get_dump(with_stats=True)
    theirs = reference.get_booster().get_dump(with_stats=True)
    assert [len(t.splitlines()) for t in ours] == [len(t.splitlines()) for t in theirs]
    assert "gain=" in ours[0] and "cover=" in ours[0]


@pytest.mark.parametrize("regression", [True, False])
@pytest.mark.parametrize("settings", [dict(max_leaves=8, max_depth=0), dict(max_leaves=5),
                                      dict(max_depth=4),
                                      dict(max_leaves=16, max_depth=0, gamma=0.5)])
def test_equal_trees_lossguide(diabetes, cancer, regression, settings):
    X, y = diabetes if regression else cancer
    cls, reference_cls = ((XGBRegressor, xgboost.XGBRegressor) if regression
                          else (XGBClassifier, xgboost.XGBClassifier))
    params = dict(n_estimators=5, grow_policy="lossguide", **settings)
    reference = reference_cls(n_jobs=1, **params).fit(X, y)
    model = cls(**params).fit(X, y, cuts=xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut())
    assert compare_trees(model, reference) > 0
    if settings.get("max_leaves"):
        nodes, _, _ = model._forest.arrays()
        assert np.count_nonzero(nodes["left"] == -1) <= 5 * settings["max_leaves"]
    with pytest.raises(ValueError, match="grow_policy"):
        cls(grow_policy="leafwise").fit(X, y)


def test_custom_objective_like_xgboost(diabetes, tmp_path):
    X, y = diabetes

    def pseudo_huber(y_true, margin):
        residual = margin - y_true
        scale = np.sqrt(1.0 + (residual / 20.0) ** 2)
        return residual / scale, 1.0 / scale ** 3

    params = dict(n_estimators=5, max_depth=3, objective=pseudo_huber)
    reference = xgboost.XGBRegressor(n_jobs=1, **params).fit(X, y)
    model = XGBRegressor(**params).fit(X, y,
                                       cuts=xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut())
    assert compare_trees(model, reference) > 0
    assert_allclose(model.predict(X), reference.predict(X), rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="custom"):
        model.save_model(tmp_path / "custom.json", format="fastscratch")
    model.save_model(tmp_path / "custom.json")  # xgboost's schema, as xgboost saves it
    booster = xgboost.Booster(model_file=str(tmp_path / "custom.json"))
    assert_allclose(booster.predict(xgboost.DMatrix(X)), model.predict(X), rtol=1e-5, atol=1e-4)


def test_reg_logistic_like_xgboost(diabetes):
    X, y = diabetes
    y = (y - y.min()) / (y.max() - y.min())
    params = dict(n_estimators=6, max_depth=4, objective="reg:logistic")
    reference = xgboost.XGBRegressor(n_jobs=1, **params).fit(X, y)
    model = XGBRegressor(**params).fit(X, y,
                                       cuts=xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut())
    assert compare_trees(model, reference) > 0
    assert_allclose(model.predict(X), reference.predict(X), atol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        XGBRegressor(objective="reg:logistic").fit(X, y * 2)


def test_custom_objective_classifier_like_xgboost(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)

    def logistic(y_true, margin):
        p = 1.0 / (1.0 + np.exp(-margin))
        return p - y_true, p * (1.0 - p)

    params = dict(n_estimators=5, max_depth=3, objective=logistic)
    reference = xgboost.XGBClassifier(n_jobs=1, **params).fit(X, y)
    model = XGBClassifier(**params).fit(X, y, cuts=xgboost.QuantileDMatrix(X, max_bin=256).get_quantile_cut())
    assert compare_trees(model, reference) > 0
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)
    assert_array_equal(model.predict(X), reference.predict(X))


def test_prediction_in_blocks_equals_whole(monkeypatch):
    """Rows are predicted in blocks (each cast to float32 apart); the answers do not change."""
    import fastscratch.boosting.sklearn as boosting_module

    X, y = load_breast_cancer(return_X_y=True)
    labels = np.array(["benign", "malignant"])[y]
    model = XGBClassifier(n_estimators=5, max_depth=3).fit(X, labels)
    proba, predicted = model.predict_proba(X), model.predict(X)
    monkeypatch.setattr(boosting_module, "PREDICT_BLOCK_ROWS", 100)  # 6 blocks, the last one short
    np.testing.assert_array_equal(model.predict_proba(X), proba)
    np.testing.assert_array_equal(model.predict(X), predicted)
    np.testing.assert_array_equal(model.predict(X.astype(np.float32)), predicted)


def _predict_memory_setup(small):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2_000, 16))
    model = XGBClassifier(n_estimators=10, max_depth=4).fit(X, (X[:, 0] > 0).astype(int))
    return model, (X if small else rng.standard_normal((1_000_000, 16)))


def _predict_memory_run(inputs):
    model, X = inputs
    model.predict(X)


def test_predict_memory_is_margins_and_labels():
    """1M x 16 float64 rows: predict adds the float64 margins and the labels (8 MB each) and
    per-block buffers, never a float32 copy of X (64 MB) or an n x classes matrix."""
    from fastscratch._memory import peak_memory_above_inputs_mb

    peak_mb = peak_memory_above_inputs_mb(_predict_memory_setup, _predict_memory_run)
    assert peak_mb < 24, f"predict added {peak_mb:.1f} MB to the peak"
