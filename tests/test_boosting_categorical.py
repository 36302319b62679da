"""Categorical features (``enable_categorical=True``) against xgboost's ``hist`` on real data.

The data: scikit-learn's shipped breast_cancer and diabetes sets, four
numeric features kept as they are and four others quantised into pandas
category columns of 3 (one-hot splits), 5 and 8 levels (the 8-level one with
10% missing entries) and 25 levels (partition splits). Given xgboost's cuts,
every tree must be xgboost's node for node (feature, category set, missing
direction, children; leaf values to float32 rounding), and the predictions
agree.
"""

import json

import numpy as np
import pandas as pd
import pytest
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_breast_cancer, load_diabetes

from fastscratch import XGBClassifier, XGBRegressor
from fastscratch.kernels import available_backends, get_kernel
from fastscratch.kernels import categorical_numpy


def _quantise(column, levels):
    edges = np.quantile(column, np.linspace(0, 1, levels + 1)[1:-1])
    return np.searchsorted(edges, column, side="right")


def categorical_frame(loader, seed=0):
    X, y = loader(return_X_y=True)
    rng = np.random.RandomState(seed)
    frame = pd.DataFrame(X[:, :4].astype(np.float32), columns=[f"x{i}" for i in range(4)])
    frame["c3"] = pd.Categorical.from_codes(_quantise(X[:, 4], 3), categories=["lo", "mid", "hi"])
    frame["c5"] = pd.Categorical.from_codes(_quantise(X[:, 5], 5), categories=list("abcde"))
    c8 = _quantise(X[:, 6], 8)
    c8[rng.rand(c8.size) < 0.1] = -1  # missing
    frame["c8"] = pd.Categorical.from_codes(c8, categories=[f"k{i}" for i in range(8)])
    frame["c25"] = pd.Categorical.from_codes(_quantise(X[:, 7], 25),
                                             categories=[f"L{i}" for i in range(25)])
    return frame, y


@pytest.fixture(scope="module")
def cancer_frame():
    return categorical_frame(load_breast_cancer)


@pytest.fixture(scope="module")
def diabetes_frame():
    return categorical_frame(load_diabetes)


def xgboost_cuts(frame, y, max_bin=256):
    return xgboost.QuantileDMatrix(frame, y, enable_categorical=True,
                                   max_bin=max_bin).get_quantile_cut()


def compare_categorical_trees(ours, reference, rtol=1e-5, atol=1e-6):
    """xgboost's model JSON against our forest, node by node; returns the categorical splits."""
    model = json.loads(reference.get_booster().save_raw("json"))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    nodes, roots, _ = ours._forest.arrays()
    assert len(trees) == roots.shape[0]
    n_categorical = 0
    for root, tree in zip(roots, trees):
        left = np.asarray(tree["left_children"])
        n = left.shape[0]
        assert_array_equal(nodes["left"][root:root + n], np.where(left >= 0, left + root, -1))
        split = left >= 0
        assert_array_equal(nodes["feature"][root:root + n][split],
                           np.asarray(tree["split_indices"])[split])
        assert_array_equal(nodes["default_left"][root:root + n][split],
                           np.asarray(tree["default_left"])[split])
        assert_allclose(nodes["value"][root:root + n][~split],
                        np.asarray(tree["split_conditions"], dtype=np.float32)[~split],
                        rtol=rtol, atol=atol)
        sets = {node: tree["categories"][start:start + size] for node, start, size in
                zip(tree["categories_nodes"], tree["categories_segments"],
                    tree["categories_sizes"])}
        split_type = np.asarray(tree["split_type"])
        for i in np.flatnonzero(split):
            ours_set = ours._forest.node_categories(root + i)
            if split_type[i] == 1:
                assert ours_set is not None, f"node {i} should split on categories"
                assert_array_equal(ours_set, sets[i])
                n_categorical += 1
            else:
                assert ours_set is None, f"node {i} should be a numeric split"
                assert nodes["threshold"][root + i] == np.float32(tree["split_conditions"][i])
    return n_categorical


SETTINGS = [
    dict(max_depth=4),
    dict(max_depth=6, max_cat_to_onehot=1),  # every categorical split a partition
    dict(max_depth=5, max_cat_to_onehot=30),  # every categorical split one-hot
    dict(max_depth=4, max_cat_threshold=3, reg_lambda=3.0, reg_alpha=0.5),
    dict(max_depth=4, min_child_weight=5.0, max_delta_step=0.7),
    dict(max_depth=0, grow_policy="lossguide", max_leaves=12, colsample_bynode=1.0),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_equal_trees_binary(cancer_frame, settings):
    frame, y = cancer_frame
    params = dict(n_estimators=8, enable_categorical=True, **settings)
    reference = xgboost.XGBClassifier(tree_method="hist", **params).fit(frame, y)
    model = XGBClassifier(n_jobs=1, **params).fit(frame, y, cuts=xgboost_cuts(frame, y))
    assert compare_categorical_trees(model, reference) > 0
    assert_allclose(model.predict_proba(frame), reference.predict_proba(frame), atol=1e-6)


@pytest.mark.parametrize("settings", SETTINGS)
def test_equal_trees_regression(diabetes_frame, settings):
    frame, y = diabetes_frame
    params = dict(n_estimators=8, enable_categorical=True, **settings)
    reference = xgboost.XGBRegressor(tree_method="hist", **params).fit(frame, y)
    model = XGBRegressor(n_jobs=1, **params).fit(frame, y, cuts=xgboost_cuts(frame, y))
    assert compare_categorical_trees(model, reference) > 0
    assert_allclose(model.predict(frame), reference.predict(frame), rtol=1e-5, atol=1e-4)


def test_equal_trees_multiclass(diabetes_frame):
    frame, y = diabetes_frame
    classes = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    params = dict(n_estimators=4, max_depth=4, enable_categorical=True)
    reference = xgboost.XGBClassifier(tree_method="hist", **params).fit(frame, classes)
    model = XGBClassifier(n_jobs=1, **params).fit(frame, classes,
                                                  cuts=xgboost_cuts(frame, classes))
    assert compare_categorical_trees(model, reference) > 0
    assert_allclose(model.predict_proba(frame), reference.predict_proba(frame), atol=1e-6)


@pytest.mark.parametrize("backend", available_backends())
def test_every_backend_grows_xgboost_trees(cancer_frame, backend):
    frame, y = cancer_frame
    params = dict(n_estimators=5, max_depth=5, enable_categorical=True)
    reference = xgboost.XGBClassifier(tree_method="hist", **params).fit(frame, y)
    model = XGBClassifier(backend=backend, n_jobs=2, **params).fit(
        frame, y, cuts=xgboost_cuts(frame, y))
    assert compare_categorical_trees(model, reference) > 0
    assert_allclose(model.predict_proba(frame), reference.predict_proba(frame), atol=1e-6)


@pytest.mark.parametrize("backend", [b for b in available_backends() if b != "numpy"])
def test_same_result_with_one_and_two_threads(backend):
    rng = np.random.default_rng(0)
    n = 30_000
    codes = rng.integers(0, 40, size=(n, 3))
    numeric = rng.standard_normal((n, 2))
    effect = rng.standard_normal(40)
    y = effect[codes[:, 0]] + 0.5 * effect[codes[:, 1]] + numeric[:, 0] \
        + 0.3 * rng.standard_normal(n)
    frame = pd.DataFrame(numeric, columns=["a", "b"])
    for j in range(3):
        frame[f"c{j}"] = pd.Categorical(codes[:, j])
    fits = [XGBRegressor(n_estimators=3, max_depth=6, backend=backend, n_jobs=threads,
                         enable_categorical=True).fit(frame, y) for threads in (1, 2)]
    assert_array_equal(fits[0].predict(frame), fits[1].predict(frame))
    reference = XGBRegressor(n_estimators=3, max_depth=6, backend="numpy",
                             enable_categorical=True).fit(frame, y)
    assert_array_equal(fits[0].predict(frame), reference.predict(frame))


@pytest.mark.parametrize("backend", available_backends())
def test_split_kernel_equals_naive_loops(backend):
    rng = np.random.default_rng(1)
    k, d, n_slots = 5, 4, 41
    n_bins = np.array([3, 40, 12, 1], dtype=np.intp)
    hists = np.zeros((k, d, n_slots, 2))
    sums = np.column_stack([rng.standard_normal(k), np.full(k, 200.0)])
    for f, nb in enumerate(n_bins):
        hists[:, f, :nb, 0] = rng.standard_normal((k, nb)) * 3
        hists[:, f, :nb, 1] = rng.uniform(0, 4, (k, nb)) * (rng.random((k, nb)) > 0.2)
        hists[:, f, nb] = sums - hists[:, f, :nb].sum(axis=1)  # the missing rows: the rest
    params = np.array([1.0, 0.5, 0.5, 0.0])
    scores = np.array([float(categorical_numpy.node_score(g, h, params)) for g, h in sums])
    features = np.array([0, 1, 2], dtype=np.intp)
    allowed = np.ones((k, d), dtype=np.uint8)
    allowed[2, 1] = 0
    outputs = []
    for kernel in (categorical_numpy._find_categorical_splits_naive,
                   get_kernel("find_categorical_splits", backend)):
        out = (np.zeros((k, d)), np.zeros((k, d), np.uint8), np.zeros((k, d, 2)),
               np.zeros((k, 3, n_slots), np.uint8))
        kernel(hists, n_bins, features, sums, scores, params, allowed, 4, 8, *out, 2)
        outputs.append(out)
    for ours, reference in zip(outputs[1], outputs[0]):
        assert_array_equal(ours[:, :3], reference[:, :3])
    assert np.isfinite(outputs[0][0][:, :3]).sum() >= 8


@pytest.mark.parametrize("backend", available_backends())
def test_predict_kernel_equals_naive_loop(cancer_frame, backend):
    frame, y = cancer_frame
    model = XGBClassifier(n_estimators=6, max_depth=4, enable_categorical=True).fit(frame, y)
    X = np.ascontiguousarray(model._encode_categorical(frame).to_numpy(np.float32))
    X[::7, 6] = 30.0  # codes above every category seen: left, as xgboost
    X[::11, 7] = -2.0
    nodes, roots, groups = model._forest.arrays()
    node_cat, cat_sets = model._forest.categorical()
    args = (nodes["feature"], nodes["threshold"], nodes["default_left"], nodes["left"],
            nodes["right"], nodes["value"], node_cat, cat_sets, roots, groups)
    expected = np.zeros((X.shape[0], 1))
    categorical_numpy._predict_raw_categorical_naive(X, *args, expected, 1)
    out = np.zeros((X.shape[0], 1))
    get_kernel("predict_raw_categorical", backend)(X, *args, out, 2)
    assert_array_equal(out, expected)


def test_categories_recoded_by_value_and_unseen_refused(cancer_frame):
    frame, y = cancer_frame
    model = XGBClassifier(n_estimators=5, max_depth=4, enable_categorical=True).fit(frame, y)
    reordered = frame.copy()
    reordered["c25"] = pd.Categorical(frame["c25"].astype(str),
                                      categories=[f"L{i}" for i in range(24, -1, -1)])
    assert_array_equal(model.predict_proba(reordered), model.predict_proba(frame))
    unseen = frame.iloc[:5].copy()
    unseen["c5"] = pd.Categorical(["zz"] * 5, categories=["zz"] + list("abcde"))
    with pytest.raises(ValueError, match="not seen in fit"):
        model.predict(unseen)


def test_missing_categories_follow_the_default_direction(cancer_frame):
    frame, y = cancer_frame
    params = dict(n_estimators=5, max_depth=4, enable_categorical=True)
    reference = xgboost.XGBClassifier(tree_method="hist", **params).fit(frame, y)
    model = XGBClassifier(**params).fit(frame, y, cuts=xgboost_cuts(frame, y))
    holes = frame.copy()
    for column in ("c3", "c25"):
        values = holes[column].copy()
        values.iloc[::3] = np.nan
        holes[column] = values
    assert_allclose(model.predict_proba(holes), reference.predict_proba(holes), atol=1e-6)


def test_feature_types_with_numpy_input_equal_the_pandas_fit(diabetes_frame):
    frame, y = diabetes_frame
    codes = frame.copy()
    for column in ("c3", "c5", "c8", "c25"):
        codes[column] = frame[column].cat.codes.replace(-1, np.nan).astype(np.float32)
    X = codes.to_numpy(np.float32)
    types = ["q"] * 4 + ["c"] * 4
    cuts = xgboost_cuts(frame, y)
    from_frame = XGBRegressor(n_estimators=5, enable_categorical=True).fit(frame, y, cuts=cuts)
    from_numpy = XGBRegressor(n_estimators=5, enable_categorical=True,
                              feature_types=types).fit(X, y, cuts=cuts)
    assert_array_equal(from_numpy.predict(X), from_frame.predict(frame))


def test_own_cuts_of_categorical_columns_are_xgboosts(diabetes_frame):
    frame, y = diabetes_frame
    model = XGBRegressor(n_estimators=2, enable_categorical=True).fit(frame, y)
    ptr, values = xgboost_cuts(frame, y)
    for f in range(4, 8):
        ours = model._binner.cut_values_[model._binner.cut_ptr_[f]:model._binner.cut_ptr_[f + 1]]
        assert_array_equal(ours - 1, values[ptr[f]:ptr[f + 1]])


def _codes(frame):
    """The frame as a float32 matrix, category columns as their codes (NaN missing)."""
    return np.column_stack([
        frame[c].cat.codes.replace(-1, np.nan).to_numpy(np.float32)
        if frame[c].dtype == "category" else frame[c].to_numpy(np.float32)
        for c in frame.columns])


@pytest.mark.parametrize("make, message", [
    (lambda f: (XGBClassifier(), f), "enable_categorical=True"),
    (lambda f: (XGBClassifier(enable_categorical=True, feature_types=["q"] * 3), _codes(f)),
     "feature_types has 3 entries"),
    (lambda f: (XGBClassifier(enable_categorical=True, max_cat_to_onehot=0), f),
     "max_cat_to_onehot"),
    (lambda f: (XGBClassifier(feature_types=["c"] + ["q"] * 7), _codes(f)),
     "enable_categorical=True"),
])
def test_bad_categorical_input(cancer_frame, make, message):
    frame, y = cancer_frame
    model, X = make(frame)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


def test_negative_or_fractional_codes_are_refused(cancer_frame):
    frame, y = cancer_frame
    X = _codes(frame)
    X[0, 5] = 1.5
    with pytest.raises(ValueError, match="non-negative integer codes"):
        XGBClassifier(enable_categorical=True, feature_types=["q"] * 4 + ["c"] * 4).fit(X, y)


def test_dump_and_dataframe_as_xgboost(diabetes_frame):
    frame, y = diabetes_frame
    params = dict(n_estimators=3, max_depth=3, enable_categorical=True)
    reference = xgboost.XGBRegressor(tree_method="hist", **params).fit(frame, y)
    model = XGBRegressor(**params).fit(frame, y, cuts=xgboost_cuts(frame, y))
    ours, theirs = model.get_booster(), reference.get_booster()
    assert any("{" in tree for tree in ours.get_dump())
    for a, b in zip(ours.get_dump(), theirs.get_dump()):
        assert a.split("leaf=")[0] == b.split("leaf=")[0]  # the splits, in order
    frame_ours, frame_theirs = ours.trees_to_dataframe(), theirs.trees_to_dataframe()
    for column in ("Feature", "Yes", "No", "Missing", "Category"):
        assert frame_ours[column].astype(str).tolist() == frame_theirs[column].astype(str).tolist()


def test_pred_leaf_follows_the_category_sets(cancer_frame):
    frame, y = cancer_frame
    params = dict(n_estimators=4, max_depth=4, enable_categorical=True)
    reference = xgboost.XGBClassifier(tree_method="hist", **params).fit(frame, y)
    model = XGBClassifier(**params).fit(frame, y, cuts=xgboost_cuts(frame, y))
    assert_array_equal(model.predict(frame, pred_leaf=True), reference.apply(frame))
    # The same trees explain the same way (tests/test_treeshap_categorical.py has the rest).
    matrix = xgboost.DMatrix(frame, enable_categorical=True)
    assert_allclose(model.predict(frame, pred_contribs=True),
                    reference.get_booster().predict(matrix, pred_contribs=True),
                    rtol=1e-5, atol=1e-5)


def test_fastscratch_format_round_trip(cancer_frame, tmp_path):
    frame, y = cancer_frame
    model = XGBClassifier(n_estimators=4, max_depth=4, enable_categorical=True).fit(frame, y)
    model.save_model(tmp_path / "model.json", format="fastscratch")
    loaded = XGBClassifier().load_model(tmp_path / "model.json")
    assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert loaded.get_dump() == model.get_dump()


@pytest.mark.parametrize("numeric_categories", [False, True])
def test_saved_model_loads_in_xgboost(diabetes_frame, tmp_path, numeric_categories):
    frame, y = diabetes_frame
    if numeric_categories:  # no string table: both libraries read the codes
        frame = frame.copy()
        frame["c5"] = pd.Categorical.from_codes(frame["c5"].cat.codes, categories=[10, 20, 30, 40, 50])
    model = XGBRegressor(n_estimators=6, max_depth=4, enable_categorical=True).fit(frame, y)
    model.save_model(tmp_path / "model.json", format="xgboost")
    booster = xgboost.Booster(model_file=str(tmp_path / "model.json"))
    theirs = booster.predict(xgboost.DMatrix(frame, enable_categorical=True))
    assert_allclose(theirs, model.predict(frame), rtol=1e-6, atol=1e-4)
    reloaded = XGBRegressor().load_model(tmp_path / "model.json")
    assert_array_equal(reloaded.predict(frame), model.predict(frame))


@pytest.mark.parametrize("suffix", ["json", "ubj"])
def test_xgboost_model_loads_here(cancer_frame, tmp_path, suffix):
    frame, y = cancer_frame
    reference = xgboost.XGBClassifier(n_estimators=6, max_depth=4, enable_categorical=True,
                                      max_cat_to_onehot=6).fit(frame, y)
    reference.save_model(tmp_path / f"model.{suffix}")
    model = XGBClassifier().load_model(tmp_path / f"model.{suffix}")
    assert model._forest.has_categorical
    assert_allclose(model.predict_proba(frame), reference.predict_proba(frame), atol=1e-6)
    reordered = frame.copy()  # re-coded by value through xgboost's table
    reordered["c3"] = pd.Categorical(frame["c3"].astype(str), categories=["hi", "lo", "mid"])
    assert_allclose(model.predict_proba(reordered), reference.predict_proba(frame), atol=1e-6)
    assert model.get_booster().get_dump() == reference.get_booster().get_dump()


def test_binned_and_raw_predictions_agree_with_row_sampling(diabetes_frame):
    frame, y = diabetes_frame
    # Row sampling adds each tree to the training margins through the binned data.
    model = XGBRegressor(n_estimators=5, max_depth=4, subsample=0.6, random_state=0,
                         enable_categorical=True).fit(frame, y)
    X = np.ascontiguousarray(model._encode_categorical(frame).to_numpy(np.float32))
    binned = model._binner.transform(X)
    assert_allclose(model._forest.predict_binned(binned, model._binner.n_bins_, 0.0),
                    model._forest.predict_raw(X, 0.0), rtol=1e-6)
    assert model.score(frame, y) > 0.3


@pytest.mark.parametrize("backend", [b for b in available_backends() if b != "numpy"])
def test_kernels_give_the_same_bits_on_one_and_two_threads(backend, monkeypatch):
    # Sizes above the kernels' one-thread limits, so that two threads really run.
    monkeypatch.setenv("FASTSCRATCH_MACHINE_SHARED", "0")
    rng = np.random.default_rng(3)
    k, d, n_slots = 40, 6, 201
    n_bins = np.full(d, 200, dtype=np.intp)
    hists = np.zeros((k, d, n_slots, 2))
    hists[..., :200, 0] = rng.standard_normal((k, d, 200))
    hists[..., :200, 1] = rng.uniform(0, 2, (k, d, 200))
    sums = np.column_stack([hists[:, 0, :, 0].sum(axis=1), hists[:, 0, :, 1].sum(axis=1)])
    hists[:, :, 200] = sums[:, None] - hists[:, :, :200].sum(axis=2)
    params = np.array([1.0, 0.0, 1.0, 0.0])
    scores = np.array([float(categorical_numpy.node_score(g, h, params)) for g, h in sums])
    features = np.arange(d, dtype=np.intp)
    allowed = np.ones((k, d), dtype=np.uint8)
    find = get_kernel("find_categorical_splits", backend)
    found = []
    for threads in (1, 2):
        out = (np.zeros((k, d)), np.zeros((k, d), np.uint8), np.zeros((k, d, 2)),
               np.zeros((k, d, n_slots), np.uint8))
        find(hists, n_bins, features, sums, scores, params, allowed, 4, 64, *out, threads)
        found.append(out)
    for one, two in zip(*found):
        assert_array_equal(one, two)

    n = 200_000
    codes = np.asfortranarray(rng.integers(0, 30, size=(n, 2)).astype(np.uint8))
    codes[::17, 1] = 30  # missing
    starts = np.array([0, 70_000], dtype=np.intp)
    stops = np.array([70_000, n], dtype=np.intp)
    sets = (rng.random((2, 31)) < 0.5).astype(np.uint8)
    partition = get_kernel("partition_rows_categorical", backend)
    results = []
    for threads in (1, 2):
        rows = rng.permutation(n).astype(np.intp) if not results else results[0][2].copy()
        initial = rows.copy()
        n_left = np.empty(2, dtype=np.intp)
        partition(codes, rows, starts, stops, np.array([0, 1], dtype=np.intp), sets,
                  np.array([1, 0], dtype=np.uint8), np.array([30, 30], dtype=np.intp),
                  np.empty(n, dtype=np.intp), n_left, threads)
        results.append((rows, n_left, initial))
    assert_array_equal(results[0][0], results[1][0])
    assert_array_equal(results[0][1], results[1][1])
    expected = results[0][2].copy()  # the NumPy reference from the same starting order
    categorical_numpy.partition_rows_categorical(
        codes, expected, starts, stops, np.array([0, 1], dtype=np.intp), sets,
        np.array([1, 0], dtype=np.uint8), np.array([30, 30], dtype=np.intp),
        np.empty(n, dtype=np.intp), np.empty(2, dtype=np.intp), 1)
    assert_array_equal(results[0][0], expected)
