"""Boosting kernels: every backend against the NumPy reference and the naive loop twins.

Families: histogram (map_to_bins, build_histograms, subtract_histograms),
splitting (find_best_splits), partition (partition_rows, add_leaf_values),
tree_predict (predict_raw, predict_binned). Integer outputs must be equal,
float outputs equal to 1e-10 (in fact they are bit-identical: every backend
adds in the same order).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastscratch.kernels import get_kernel
from fastscratch.kernels import histogram_numpy, partition_numpy, splitting_numpy, tree_predict_numpy

PARAMS = np.array([1.0, 0.5, 0.1, 0.0])  # reg_lambda, reg_alpha, min_child_weight, max_delta_step


def _cuts(rng, n_features, max_cuts):
    cuts = [np.sort(rng.choice(np.linspace(-2, 2, 300), rng.integers(1, max_cuts + 1),
                               replace=False)).astype(np.float32) for _ in range(n_features)]
    cut_ptr = np.concatenate([[0], np.cumsum([c.size for c in cuts])]).astype(np.intp)
    return np.concatenate(cuts), cut_ptr


def _binned_problem(rng, n=3000, d=6, max_cuts=20, missing_rate=0.1):
    cut_values, cut_ptr = _cuts(rng, d, max_cuts)
    X = rng.uniform(-2.5, 2.5, size=(n, d)).astype(np.float32)
    X[:, 0] = np.round(X[:, 0])  # ties with cut points
    X[rng.random((n, d)) < missing_rate] = np.nan
    binned = np.empty((n, d), dtype=np.uint8)
    histogram_numpy.map_to_bins(X, cut_values, cut_ptr, binned, 1)
    n_bins = np.diff(cut_ptr).astype(np.intp)
    return X, binned, n_bins, cut_values, cut_ptr


def _nodes(rng, n, k):
    rows = rng.permutation(n).astype(np.intp)
    bounds = np.sort(rng.choice(np.arange(1, n), k - 1, replace=False))
    starts = np.concatenate([[0], bounds]).astype(np.intp)
    stops = np.concatenate([bounds, [n]]).astype(np.intp)
    return rows, starts, stops


def test_map_to_bins(backend, rng):
    X, _, _, cut_values, cut_ptr = _binned_problem(rng)
    X[:5, 1] = cut_values[cut_ptr[1]]  # exactly on a cut point: goes to the next bin
    X[5:8] = 1e6                        # above every cut: the last bin
    expected = np.empty(X.shape, dtype=np.uint8)
    histogram_numpy._map_to_bins_naive(X[:300], cut_values, cut_ptr, expected[:300], 1)
    reference = np.empty(X.shape, dtype=np.uint8)
    histogram_numpy.map_to_bins(X, cut_values, cut_ptr, reference, 1)
    assert_array_equal(reference[:300], expected[:300])
    for n_threads in (1, 2):
        out = np.empty(X.shape, dtype=np.uint8)
        get_kernel("map_to_bins", backend)(X, cut_values, cut_ptr, out, n_threads)
        assert_array_equal(out, reference)


@pytest.mark.parametrize("n_nodes", [1, 5])
@pytest.mark.parametrize("d", [6, 13])  # 13: four-feature steps and a remainder per thread
def test_build_and_subtract_histograms(backend, rng, n_nodes, d, always_parallel):
    _, binned, n_bins, _, _ = _binned_problem(rng, n=6000, d=d)
    gradients = rng.standard_normal(6000).astype(np.float32)
    hessians = rng.uniform(0.1, 1, 6000).astype(np.float32)
    rows, starts, stops = _nodes(rng, 6000, n_nodes)
    shape = (n_nodes, binned.shape[1], int(n_bins.max()) + 1, 2)
    naive = np.empty(shape)
    histogram_numpy._build_histograms_naive(binned, rows, starts, stops, gradients, hessians,
                                            naive, 1)
    reference = np.empty(shape)
    histogram_numpy.build_histograms(binned, rows, starts, stops, gradients, hessians,
                                     reference, 1)
    assert_allclose(reference, naive, rtol=1e-10, atol=1e-10)
    build = get_kernel("build_histograms", backend)
    for n_threads in (1, 2):
        out = np.full(shape, np.nan)
        build(binned, rows, starts, stops, gradients, hessians, out, n_threads)
        assert_array_equal(out, reference)
    parent_index = rng.integers(0, n_nodes, n_nodes).astype(np.intp)
    child = reference * 0.25
    expected = reference[parent_index] - child
    out = np.empty(shape)
    get_kernel("subtract_histograms", backend)(reference, parent_index, child, out, 2)
    assert_array_equal(out, expected)


@pytest.mark.parametrize("n_classes", [1, 3])
@pytest.mark.parametrize("d", [6, 13])
def test_build_class_histograms(backend, rng, n_classes, d, always_parallel):
    _, binned, n_bins, _, _ = _binned_problem(rng, n=9000, d=d)
    gradients = rng.standard_normal((n_classes, 9000)).astype(np.float32)
    hessians = rng.uniform(0.1, 1, (n_classes, 9000)).astype(np.float32)
    rows = rng.permutation(9000).astype(np.intp)
    start, stop = 100, 8900  # several row blocks
    shape = (n_classes, binned.shape[1], int(n_bins.max()) + 1, 2)
    reference = np.empty(shape)
    histogram_numpy.build_class_histograms(binned, rows, start, stop, gradients, hessians,
                                           reference, 1)
    for k in range(n_classes):  # each class: the one-node histogram of its gradients
        naive = np.empty(shape[1:])[None]
        histogram_numpy._build_histograms_naive(binned, rows, np.array([start]), np.array([stop]),
                                                gradients[k], hessians[k], naive, 1)
        assert_allclose(reference[k], naive[0], rtol=1e-10, atol=1e-10)
    build = get_kernel("build_class_histograms", backend)
    for n_threads in (1, 2):
        out = np.full(shape, np.nan)
        build(binned, rows, start, stop, gradients, hessians, out, n_threads)
        assert_array_equal(out, reference)


@pytest.mark.parametrize("params", [PARAMS, np.array([0.0, 0.0, 0.0, 0.0]),
                                    np.array([2.0, 0.0, 5.0, 0.7])])
@pytest.mark.parametrize("max_cuts", [12, 200])  # 200: several 64-bin blocks of the Cython scan
def test_find_best_splits(backend, rng, params, max_cuts, always_parallel):
    _, binned, n_bins, _, _ = _binned_problem(rng, n=2000, max_cuts=max_cuts)
    binned[:, 3] = 0  # a constant feature: no valid split
    gradients = rng.standard_normal(2000).astype(np.float32)
    hessians = rng.uniform(0.0, 1, 2000).astype(np.float32)
    rows, starts, stops = _nodes(rng, 2000, 6)
    stops[0] = starts[0] + 1  # a single-row node
    k, d = 6, binned.shape[1]
    hists = np.empty((k, d, int(n_bins.max()) + 1, 2))
    histogram_numpy.build_histograms(binned, rows, starts, stops, gradients, hessians, hists, 1)
    hists[2, :, :, :] = np.round(hists[2] * 4) / 4  # many exact ties
    hists[3, :, 1::2] = 0.0  # every other bin empty (skipped by the compiled scans)
    hists[4, :, :3] = 0.0  # empty first bins, missing slot included for few-bin features
    sums = hists[:, 0, : n_bins[0] + 1].sum(axis=1)
    scores = splitting_numpy.node_score(sums[:, 0], sums[:, 1], params).astype(np.float64)
    allowed = (rng.random((k, d)) < 0.8).astype(np.uint8)

    def run(kernel, n_threads=1):
        outs = (np.empty((k, d)), np.empty((k, d), np.intp), np.empty((k, d), np.uint8),
                np.empty((k, d, 2)))
        kernel(hists, n_bins, sums, scores, params, allowed, *outs, n_threads)
        return outs

    reference = run(splitting_numpy.find_best_splits)
    naive = run(splitting_numpy._find_best_splits_naive)
    assert np.isfinite(reference[0]).any() and np.isinf(reference[0]).any()
    for got in [naive] + [run(get_kernel("find_best_splits", backend), t) for t in (1, 2)]:
        assert_allclose(got[0], reference[0], rtol=1e-10)
        assert_array_equal(got[1], reference[1])
        assert_array_equal(got[2], reference[2])
        assert_allclose(got[3], reference[3], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [500, 50_000])  # 50k rows: the blocked parallel path
def test_partition_rows(backend, rng, n, always_parallel):
    _, binned, n_bins, _, _ = _binned_problem(rng, n=n, max_cuts=10)
    rows, starts, stops = _nodes(rng, n, 4)
    starts, stops = starts[[0, 2, 3]], stops[[0, 2, 3]]  # node 1 is not split
    features = np.array([0, 1, 2], dtype=np.intp)
    split_bins = np.array([2, -1, 5], dtype=np.intp)
    default_lefts = np.array([1, 1, 0], dtype=np.uint8)
    expected = rows.copy()
    expected_left = np.empty(3, dtype=np.intp)
    partition_numpy._partition_rows_naive(binned, expected, starts, stops, features, split_bins,
                                          default_lefts, n_bins, None, expected_left, 1)
    reference = rows.copy()
    reference_left = np.empty(3, dtype=np.intp)
    partition_numpy.partition_rows(binned, reference, starts, stops, features, split_bins,
                                   default_lefts, n_bins, np.empty(n, np.intp), reference_left, 1)
    assert_array_equal(reference, expected)
    assert_array_equal(reference_left, expected_left)
    # The grower passes a column-major copy (one feature per split is read).
    for layout, n_threads in [("C", 1), ("C", 2), ("F", 1), ("F", 2)]:
        out = rows.copy()
        n_left = np.empty(3, dtype=np.intp)
        get_kernel("partition_rows", backend)(np.asarray(binned, order=layout), out, starts,
                                              stops, features, split_bins, default_lefts, n_bins,
                                              np.empty(n, np.intp), n_left, n_threads)
        assert_array_equal(out, reference)
        assert_array_equal(n_left, reference_left)


def test_add_leaf_values(backend, rng, always_parallel):
    rows, starts, stops = _nodes(rng, 1000, 7)
    values = rng.standard_normal(7).astype(np.float32)
    raw = rng.standard_normal(1000).astype(np.float32)
    expected = raw.copy()
    partition_numpy._add_leaf_values_naive(rows, starts, stops, values, expected, 1)
    reference = raw.copy()
    partition_numpy.add_leaf_values(rows, starts, stops, values, reference, 1)
    assert_array_equal(reference, expected)
    out = raw.copy()
    get_kernel("add_leaf_values", backend)(rows, starts, stops, values, out, 2)
    assert_array_equal(out, expected)


def _random_forest(rng, n_features, n_trees, depth, n_groups):
    """Random complete trees (children next to each other), flat."""
    fields = {name: [] for name in ("feature", "threshold", "bin", "default_left", "left", "value")}
    roots, offset = [], 0
    for _ in range(n_trees):
        n_internal = 2 ** depth - 1
        n_nodes = 2 ** (depth + 1) - 1
        internal = np.arange(n_nodes) < n_internal
        fields["feature"].append(np.where(internal, rng.integers(0, n_features, n_nodes), -1))
        fields["threshold"].append(rng.uniform(-1, 1, n_nodes))
        fields["bin"].append(rng.integers(-1, 10, n_nodes))
        fields["default_left"].append(rng.integers(0, 2, n_nodes))
        fields["left"].append(np.where(internal, offset + 2 * np.arange(n_nodes) + 1, -1))
        fields["value"].append(rng.standard_normal(n_nodes))
        roots.append(offset)
        offset += n_nodes
    dtypes = {"feature": np.intp, "threshold": np.float32, "bin": np.intp,
              "default_left": np.uint8, "left": np.intp, "value": np.float32}
    forest = {name: np.concatenate(v).astype(dtypes[name]) for name, v in fields.items()}
    forest["right"] = np.where(forest["left"] >= 0, forest["left"] + 1, -1).astype(np.intp)
    groups = (np.arange(n_trees) % n_groups).astype(np.intp)
    return forest, np.array(roots, dtype=np.intp), groups


@pytest.mark.parametrize("n_groups", [1, 3])
def test_predict_raw_and_binned(backend, rng, n_groups):
    X, binned, n_bins, _, _ = _binned_problem(rng, n=700, d=5, max_cuts=12)
    forest, roots, groups = _random_forest(rng, 5, 12, 4, n_groups)
    f = forest
    raw_args = (f["feature"], f["threshold"], f["default_left"], f["left"], f["right"],
                f["value"], roots, groups)
    binned_args = (f["feature"], f["bin"], f["default_left"], f["left"], f["right"], f["value"],
                   n_bins, roots, groups)
    start = rng.standard_normal((700, n_groups))
    naive = start.copy()
    tree_predict_numpy._predict_raw_naive(X[:200], *raw_args, naive[:200], 1)
    reference = start.copy()
    tree_predict_numpy.predict_raw(X, *raw_args, reference, 1)
    assert_allclose(reference[:200], naive[:200], rtol=1e-12)
    reference_binned = start.copy()
    tree_predict_numpy.predict_binned(binned, *binned_args, reference_binned, 1)
    for n_threads in (1, 2):
        out = start.copy()
        get_kernel("predict_raw", backend)(X, *raw_args, out, n_threads)
        assert_allclose(out, reference, rtol=1e-12)
        out = start.copy()
        get_kernel("predict_binned", backend)(binned, *binned_args, out, n_threads)
        assert_allclose(out, reference_binned, rtol=1e-12)


def _random_unbalanced_forest(rng, n_features, n_trees, max_depth, n_groups):
    """Random trees whose leaves lie at every depth up to ``max_depth`` (children next to
    each other, a single-leaf tree among them), flat."""
    fields = {name: [] for name in ("feature", "threshold", "default_left", "left", "value")}
    roots, offset = [], 0
    for t in range(n_trees):
        feature, left, depth = [-1], [-1], [0]
        k = 0
        while k < len(feature) and t > 0:  # tree 0 stays a single leaf
            if depth[k] < max_depth and (depth[k] == 0 or rng.random() < 0.7):
                feature[k] = int(rng.integers(0, n_features))
                left[k] = len(feature)
                feature += [-1, -1]
                left += [-1, -1]
                depth += [depth[k] + 1] * 2
            k += 1
        n = len(feature)
        fields["feature"].append(np.array(feature))
        fields["left"].append(np.where(np.array(left) >= 0, np.array(left) + offset, -1))
        # Thresholds on the cut grid of the data, ties with the values of X[:, 0] included.
        fields["threshold"].append(np.round(rng.uniform(-2.5, 2.5, n) * 4) / 4)
        fields["default_left"].append(rng.integers(0, 2, n))
        fields["value"].append(rng.standard_normal(n))
        roots.append(offset)
        offset += n
    dtypes = {"feature": np.intp, "threshold": np.float32, "default_left": np.uint8,
              "left": np.intp, "value": np.float32}
    forest = {name: np.concatenate(v).astype(dtypes[name]) for name, v in fields.items()}
    forest["right"] = np.where(forest["left"] >= 0, forest["left"] + 1, -1).astype(np.intp)
    groups = (np.arange(n_trees) % n_groups).astype(np.intp)
    return forest, np.array(roots, dtype=np.intp), groups


def _simd_levels(backend):
    """The vector paths of ``predict_complete`` this CPU can run (Cython), else [None]."""
    if backend != "cython":
        return [None]
    from fastscratch.kernels import tree_predict_cython

    return list(range(tree_predict_cython.SIMD_LEVEL + 1))


# max_depth 3: the trees fit the registers of both vector paths; 6: the AVX-512 path's
# (levels 0-5 and 64 leaves); 7: the deep levels and leaves are gathered.
@pytest.mark.parametrize("max_depth", [3, 6, 7])
@pytest.mark.parametrize("n_groups", [1, 3])
def test_predict_complete(backend, rng, monkeypatch, max_depth, n_groups):
    n = 64 * 9 + 13  # full row blocks of the compiled kernels, and a short one
    X, _, _, _, _ = _binned_problem(rng, n=n, d=5, max_cuts=12)
    X[:50, 2] = np.inf
    X[50:70, 1] = -np.inf
    f, roots, groups = _random_unbalanced_forest(rng, 5, 25, max_depth, n_groups)
    args = (f["feature"], f["threshold"], f["default_left"], f["left"], f["right"], f["value"])
    layout = tree_predict_numpy.complete_layout(*args, roots)
    assert layout["tree_depths"][0] == 0 and layout["tree_depths"].max() == max_depth
    assert tree_predict_numpy.complete_layout(*args, roots, max_depth=max_depth - 1) is None
    complete_args = (layout["node_split"], layout["node_threshold"], layout["leaf_value"],
                     layout["tree_node_starts"], layout["tree_leaf_starts"],
                     layout["tree_depths"], groups)
    start = rng.standard_normal((n, n_groups))
    reference = start.copy()
    tree_predict_numpy.predict_raw(X, *args, roots, groups, reference, 1)
    naive = start.copy()
    tree_predict_numpy._predict_raw_naive(X[:100], *args, roots, groups, naive[:100], 1)
    assert_array_equal(reference[:100], naive[:100])
    expected = start.copy()
    tree_predict_numpy.predict_complete(X, *complete_args, expected, 1)
    assert_array_equal(expected, reference)  # the same leaves, added in the same order
    kernel = get_kernel("predict_complete", backend)
    for level in _simd_levels(backend):
        if level is not None:
            from fastscratch.kernels import tree_predict_cython
            monkeypatch.setattr(tree_predict_cython, "SIMD_LEVEL", level)
        for n_threads in (1, 2):
            out = start.copy()
            kernel(X, *complete_args, out, n_threads)
            assert_array_equal(out, reference)
    # A tree range (as iteration_range): the layout's per-tree arrays sliced.
    out = start.copy()
    kernel(X, *complete_args[:3], *(a[5:11] for a in complete_args[3:]), out, 2)
    expected = start.copy()
    tree_predict_numpy.predict_raw(X, *args, roots[5:11], groups[5:11], expected, 1)
    assert_array_equal(out, expected)


def test_parallel_minimum_follows_machine_state(monkeypatch):
    """The one-thread limit is the idle one, or 8 times it on a shared machine (forced here)."""
    from fastscratch.kernels import _threads

    monkeypatch.setenv("FASTSCRATCH_MACHINE_SHARED", "0")
    assert not _threads.machine_shared()
    assert _threads.parallel_minimum(1 << 14) == 1 << 14
    monkeypatch.setenv("FASTSCRATCH_MACHINE_SHARED", "1")
    assert _threads.machine_shared()
    assert _threads.parallel_minimum(1 << 14) == _threads.SHARED_MACHINE_FACTOR << 14
    monkeypatch.delenv("FASTSCRATCH_MACHINE_SHARED")
    assert isinstance(_threads.machine_shared(), bool)  # the load-average guess
