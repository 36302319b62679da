"""algorithm / leaf_size, NearestNeighbors, radius queries, chebyshev, precomputed and sparse
input: every search against scikit-learn on real data (iris, wine, digits standardised, 2-D
and 3-D blobs)."""

from functools import lru_cache

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import cdist
from sklearn import neighbors as sk_neighbors
from sklearn.datasets import load_digits, load_iris, load_wine, make_blobs
from sklearn.preprocessing import StandardScaler

from fastscratch import NearestNeighbors
from fastscratch.kernels import available_backends
from fastscratch.neighbors import KNeighborsClassifier, KNeighborsRegressor, auto_algorithm

ALGORITHMS = ["kd_tree", "ball_tree", "brute"]
# (metric, p) as passed to both libraries; minkowski p=3 runs the general-p path.
METRICS = [("euclidean", 2), ("manhattan", 1), ("chebyshev", 2), ("minkowski", 3.0)]
RTOL = {np.float64: 1e-10, np.float32: 1e-6}
K = 6


def _split(X, y, n_train):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    return X[order[:n_train]], y[order[:n_train]], X[order[n_train:]], y[order[n_train:]]


def _standardised(loader, n_train):
    X, y = loader(return_X_y=True)
    return _split(StandardScaler().fit_transform(X), y, n_train)


def _blobs(n_features):
    X, y = make_blobs(n_samples=1500, centers=5, n_features=n_features, random_state=n_features)
    return _split(X, y, 1200)


DATASETS = {
    "iris": _standardised(load_iris, 100),
    "wine": _standardised(load_wine, 120),
    "digits": _standardised(load_digits, 1400),
    "blobs2d": _blobs(2),
    "blobs3d": _blobs(3),
}


def _queries_for(backend, dataset):
    """All test rows, but few for the NumPy tree (plain recursive Python) on 64-D digits."""
    X_test = DATASETS[dataset][2]
    return X_test[:8] if backend == "numpy" else X_test[:300]


def _cdist(queries, train, metric, p):
    """Exact float64 distances with scipy, under this module's metric names."""
    return cdist(queries, train, {"manhattan": "cityblock"}.get(metric, metric),
                 **({"p": p} if metric == "minkowski" else {}))


def _untied(queries, train, metric, p, k):
    """Rows whose k + 1 nearest exact distances are distinct (scikit-learn orders ties arbitrarily)."""
    exact = np.sort(_cdist(queries, train, metric, p), axis=1)[:, :k + 1]
    return np.all(np.diff(exact, axis=1) > 1e-9 * (1 + exact[:, 1:]), axis=1)


@lru_cache(maxsize=None)
def _sklearn_answers(dataset, metric, p, float32):
    """scikit-learn's brute-force answers on the float64 values (of the float32 numbers)."""
    X_train, y_train, X_test, _ = DATASETS[dataset]
    if float32:
        X_train, X_test = (a.astype(np.float32).astype(np.float64) for a in (X_train, X_test))
    clf = sk_neighbors.KNeighborsClassifier(K, metric=metric, p=p, algorithm="brute",
                                            weights="distance").fit(X_train, y_train)
    distances, indices = clf.kneighbors(X_test)
    return distances, indices, clf.predict_proba(X_test)


def _tree_backend_or_skip(algorithm, backend):
    if algorithm != "brute":
        from fastscratch._backend import resolve_kernel

        try:
            resolve_kernel(f"{algorithm}_query", backend)
        except ImportError as exc:
            pytest.skip(f"no {backend} tree kernels: {exc}")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_every_algorithm_matches_sklearn(backend, algorithm, dataset):
    _tree_backend_or_skip(algorithm, backend)
    X_train, y_train, _, _ = DATASETS[dataset]
    queries = _queries_for(backend, dataset)
    n = len(queries)
    # float32 on one data set per search (same numbers as float64 for the reference).
    dtypes = (np.float64, np.float32) if dataset == "wine" else (np.float64,)
    for dtype in dtypes:
        for metric, p in METRICS:
            label = f"{dataset} {algorithm} {backend} {metric} p={p} {dtype.__name__}"
            ref_distances, ref_indices, ref_proba = _sklearn_answers(dataset, metric, p, dtype == np.float32)
            train = X_train.astype(dtype)
            model = KNeighborsClassifier(K, algorithm=algorithm, metric=metric, p=p, weights="distance",
                                         leaf_size=7, backend=backend).fit(train, y_train)
            assert model._fit_method == algorithm
            distances, indices = model.kneighbors(queries.astype(dtype))
            untied = _untied(queries.astype(dtype).astype(np.float64), train.astype(np.float64),
                             metric, p, K)
            # Chebyshev on iris's coarse values ties nearly everywhere; distances still compared.
            assert untied.mean() >= (0.0 if metric == "chebyshev" else 0.6), label
            np.testing.assert_array_equal(indices[untied], ref_indices[:n][untied], err_msg=label)
            np.testing.assert_allclose(distances, ref_distances[:n], rtol=RTOL[dtype], atol=1e-12,
                                       err_msg=label)
            # A tie at the k-th distance may bring in another label: probabilities on untied rows.
            np.testing.assert_allclose(model.predict_proba(queries.astype(dtype))[untied],
                                       ref_proba[:n][untied], atol=1e-12, err_msg=label)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_exact_ties_go_to_the_smaller_index(optimised_backend, algorithm, rng):
    # Exact ties everywhere (an integer grid with duplicates): every search gives the
    # exact answer, ties by index, on the training set itself too. (The euclidean brute
    # force ranks with the GEMM form and only promises this for fewer than
    # candidate_count(k, n) - k tied points, so it is left out here.)
    _tree_backend_or_skip(algorithm, optimised_backend)
    grid = np.array([[x, y, z] for x in range(6) for y in range(6) for z in range(4)], dtype=np.float64)
    X = np.concatenate([grid, grid[::-1], grid[:40]])
    y = rng.standard_normal(len(X))
    queries = grid[::7] + 0.5 * (rng.random((len(grid[::7]), 3)) > 0.5)
    metrics = METRICS[1:] if algorithm == "brute" else METRICS
    for metric, p in metrics:
        ours = KNeighborsRegressor(9, algorithm=algorithm, metric=metric, p=p, leaf_size=5,
                                   backend=optimised_backend).fit(X, y)
        exact = _cdist(queries, X, metric, p)
        expected = np.argsort(exact, axis=1, kind="stable")[:, :9]
        distances, indices = ours.kneighbors(queries)
        np.testing.assert_array_equal(indices, expected, err_msg=metric)
        np.testing.assert_allclose(distances, np.take_along_axis(exact, expected, 1), rtol=1e-12)
        np.testing.assert_allclose(ours.predict(queries), y[expected].mean(axis=1), rtol=1e-12)
        # The training set itself: the point's own index is dropped from its k + 1 nearest.
        exact_train = _cdist(X, X, metric, p)
        order = np.argsort(exact_train, axis=1, kind="stable")[:, :10]
        keep = order != np.arange(len(X))[:, None]
        keep[keep.all(axis=1), 0] = False  # self crowded out by duplicates: scikit-learn drops the first
        np.testing.assert_array_equal(ours.kneighbors(None)[1], order[keep].reshape(len(X), 9))


@lru_cache(maxsize=None)
def _sklearn_radius(dataset, metric, p, train_queries):
    """scikit-learn's radius answers (rows and the distance graph), computed once for all searches."""
    X_train, _, X_test, _ = DATASETS[dataset]
    # A radius that holds about 5 neighbours per query: the median 5th-nearest distance.
    radius = float(np.median(np.sort(_cdist(X_test, X_train, metric, p), axis=1)[:, 4]))
    ref = sk_neighbors.NearestNeighbors(radius=radius, algorithm="brute", metric=metric, p=p).fit(X_train)
    queries = None if train_queries else X_test
    distances, indices = ref.radius_neighbors(queries)
    return radius, distances, indices, ref.radius_neighbors_graph(queries, mode="distance").toarray()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dataset", ["wine", "blobs2d", "iris"])
def test_radius_neighbors_match_sklearn_as_sets(optimised_backend, algorithm, dataset):
    _tree_backend_or_skip(algorithm, optimised_backend)
    X_train, _, X_test, _ = DATASETS[dataset]
    for metric, p in METRICS:
        for train_queries in (False, True):
            radius, ref_distances, ref_indices, ref_graph = _sklearn_radius(dataset, metric, p, train_queries)
            ours = NearestNeighbors(radius=radius, algorithm=algorithm, metric=metric, p=p,
                                    backend=optimised_backend).fit(X_train)
            queries = None if train_queries else X_test
            distances, indices = ours.radius_neighbors(queries, sort_results=True)
            assert all(np.all(np.diff(i) > 0) for i in ours.radius_neighbors(queries, return_distance=False))
            assert len(indices) == len(ref_indices) and sum(map(len, indices)) > len(indices)
            # Same sets: compare each row sorted by index, all rows at once.
            by_index = [np.argsort(i, kind="stable") for i in indices]
            ref_by_index = [np.argsort(i, kind="stable") for i in ref_indices]
            np.testing.assert_array_equal(np.concatenate([i[o] for i, o in zip(indices, by_index)]),
                                          np.concatenate([i[o] for i, o in zip(ref_indices, ref_by_index)]))
            np.testing.assert_allclose(np.concatenate([d[o] for d, o in zip(distances, by_index)]),
                                       np.concatenate([d[o] for d, o in zip(ref_distances, ref_by_index)]),
                                       rtol=1e-10, atol=1e-12)
            assert all(np.all(np.diff(d) >= 0) for d in distances)  # (distance, index) order
            graph = ours.radius_neighbors_graph(queries, mode="distance")
            np.testing.assert_allclose(graph.toarray(), ref_graph, rtol=1e-10, atol=1e-12)
            connectivity = ours.radius_neighbors_graph(queries)
            np.testing.assert_array_equal(connectivity.indices, graph.indices)
            np.testing.assert_array_equal(connectivity.data, 1.0)


def test_nearest_neighbors_graphs_and_supervised_radius(backend):
    X_train, y_train, X_test, _ = DATASETS["wine"]
    ours = NearestNeighbors(n_neighbors=4, backend=backend).fit(X_train)
    ref = sk_neighbors.NearestNeighbors(n_neighbors=4).fit(X_train)
    for queries in (X_test, None):
        for mode in ("connectivity", "distance"):
            np.testing.assert_allclose(ours.kneighbors_graph(queries, mode=mode).toarray(),
                                       ref.kneighbors_graph(queries, mode=mode).toarray(), rtol=1e-10)
    clf = KNeighborsClassifier(3, backend=backend).fit(X_train, y_train)
    distances, indices = clf.radius_neighbors(X_test, radius=2.0)
    ref_distances, ref_indices = ref.radius_neighbors(X_test, radius=2.0, sort_results=True)
    for i, ri in zip(indices, ref_indices):
        assert set(i.tolist()) == set(ri.tolist())
    # One radius per query, and np.inf, on a tree and by brute force.
    radii = np.linspace(0.0, 3.0, len(X_test))
    for algorithm in ("kd_tree", "brute"):
        nn = NearestNeighbors(algorithm=algorithm, backend=backend).fit(X_train)
        ref_rows = ref.radius_neighbors(X_test, radius=radii, return_distance=False)
        rows = nn.radius_neighbors(X_test, radius=radii, return_distance=False)
        assert sum(map(len, rows)) > 0 and [len(r) for r in nn.radius_neighbors(X_test[:2], np.inf)[1]] == [120, 120]
        for i, ri in zip(rows, ref_rows):
            np.testing.assert_array_equal(i, np.sort(ri))
    with pytest.raises(ValueError, match="one per query"):
        ours.radius_neighbors(X_test, radius=radii[:3])
    with pytest.raises(ValueError, match="needs radius"):
        clf.radius_neighbors(X_test)
    with pytest.raises(ValueError, match="radius=-1.0 must be >= 0"):
        ours.radius_neighbors(X_test, radius=-1.0)
    with pytest.raises(ValueError, match="radius=-0.5 must be >= 0"):
        NearestNeighbors(radius=-0.5).fit(X_train)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_edge_cases(optimised_backend, algorithm, rng):
    _tree_backend_or_skip(algorithm, optimised_backend)
    kwargs = {"algorithm": algorithm, "backend": optimised_backend}
    # All points identical: every distance 0, neighbours in index order.
    X = np.ones((40, 3))
    model = NearestNeighbors(n_neighbors=40, leaf_size=3, **kwargs).fit(X)
    distances, indices = model.kneighbors(X[:2])
    np.testing.assert_array_equal(indices, np.tile(np.arange(40), (2, 1)))
    np.testing.assert_array_equal(distances, 0.0)
    assert [len(row) for row in model.radius_neighbors(X[:2], radius=0.0)[1]] == [40, 40]
    # Training points as queries, duplicates crowding out the point itself: scikit-learn's rule.
    small = NearestNeighbors(n_neighbors=1, **kwargs).fit(np.ones((3, 1)))
    ref = sk_neighbors.NearestNeighbors(n_neighbors=1, algorithm="brute").fit(np.ones((3, 1)))
    np.testing.assert_array_equal(small.kneighbors()[1], ref.kneighbors()[1])
    np.testing.assert_array_equal(small.kneighbors()[1], [[1], [0], [1]])
    # 1-D data with duplicates, k = n_samples, leaf_size larger than n.
    X1 = np.repeat(rng.standard_normal((25, 1)), 2, axis=0)
    y1 = rng.standard_normal(50)
    for leaf_size in (1, 100):
        ours = KNeighborsRegressor(50, leaf_size=leaf_size, weights="distance", **kwargs).fit(X1, y1)
        ref = sk_neighbors.KNeighborsRegressor(50, algorithm="brute", weights="distance").fit(X1, y1)
        queries = np.array([[0.1], [X1[3, 0]], [-5.0]])
        distances, indices = ours.kneighbors(queries)
        np.testing.assert_allclose(distances, ref.kneighbors(queries)[0], rtol=1e-12)
        expected = np.argsort(np.abs(queries - X1.T), axis=1, kind="stable")
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_allclose(ours.predict(queries), ref.predict(queries), rtol=1e-12)
        assert ours.kneighbors(None, n_neighbors=49)[1].shape == (50, 49)


def test_weights_none_is_uniform(backend):
    X_train, y_train, X_test, _ = DATASETS["iris"]
    for cls in (KNeighborsClassifier, KNeighborsRegressor):
        none = cls(5, weights=None, backend=backend).fit(X_train, y_train)
        uniform = cls(5, weights="uniform", backend=backend).fit(X_train, y_train)
        np.testing.assert_array_equal(none.predict(X_test), uniform.predict(X_test))
    ref = sk_neighbors.KNeighborsClassifier(5, weights=None).fit(X_train, y_train)
    ours = KNeighborsClassifier(5, weights=None, backend=backend).fit(X_train, y_train)
    np.testing.assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-12)


def test_chebyshev_names(backend):
    X_train, y_train, X_test, _ = DATASETS["wine"]
    expected = KNeighborsClassifier(5, metric="chebyshev", backend=backend).fit(X_train, y_train)
    assert expected.effective_metric_ == "chebyshev"
    for params in ({"p": np.inf}, {"metric": "infinity"}, {"metric_params": {"p": np.inf}}):
        model = KNeighborsClassifier(5, backend=backend, **params).fit(X_train, y_train)
        assert model.effective_metric_ == "chebyshev" and model.effective_metric_params_ == {}
        np.testing.assert_array_equal(model.kneighbors(X_test)[1], expected.kneighbors(X_test)[1])
    ref = sk_neighbors.KNeighborsClassifier(5, p=np.inf).fit(X_train, y_train)
    np.testing.assert_array_equal(expected.predict(X_test), ref.predict(X_test))


def test_precomputed_matches_sklearn_and_features(backend):
    X_train, y_train, X_test, y_test = DATASETS["wine"]
    train_distances = cdist(X_train, X_train)
    query_distances = cdist(X_test, X_train)
    ours = KNeighborsClassifier(5, metric="precomputed", weights="distance", backend=backend)
    ours.fit(train_distances, y_train)
    ref = sk_neighbors.KNeighborsClassifier(5, metric="precomputed", weights="distance")
    ref.fit(train_distances, y_train)
    assert ours._fit_method == "brute"
    for queries in (query_distances, None):
        distances, indices = ours.kneighbors(queries)
        ref_distances, ref_indices = ref.kneighbors(queries)
        np.testing.assert_array_equal(indices, ref_indices)
        np.testing.assert_array_equal(distances, ref_distances)
    np.testing.assert_allclose(ours.predict_proba(query_distances), ref.predict_proba(query_distances),
                               atol=1e-12)
    # Same neighbours as searching the features themselves.
    features = KNeighborsClassifier(5, backend=backend).fit(X_train, y_train)
    np.testing.assert_array_equal(ours.kneighbors(query_distances)[1], features.kneighbors(X_test)[1])
    nn = NearestNeighbors(radius=2.5, metric="precomputed").fit(train_distances)
    ref_nn = sk_neighbors.NearestNeighbors(radius=2.5, metric="precomputed").fit(train_distances)
    for i, ri in zip(nn.radius_neighbors(query_distances)[1], ref_nn.radius_neighbors(query_distances)[1]):
        assert set(i.tolist()) == set(ri.tolist())
    with pytest.raises(ValueError, match=r"shape \(n_queries, 120\)"):
        ours.kneighbors(query_distances[:, :50])
    with pytest.raises(ValueError, match="square matrix"):
        KNeighborsClassifier(metric="precomputed").fit(query_distances, y_test)
    with pytest.raises(ValueError, match="Negative values"):
        KNeighborsClassifier(metric="precomputed").fit(-train_distances, y_train)
    with pytest.raises(ValueError, match="Negative values"):
        ours.kneighbors(-query_distances)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine", "sqeuclidean"])
def test_sparse_input_equals_dense(backend, metric, rng):
    # Word-count-like data: digits pixels are sparse (about half zeros).
    X, y = load_digits(return_X_y=True)
    # The NumPy reference goes one query at a time in Python: fewer rows for it.
    n_train = 300 if backend == "numpy" else 1200
    X_train, y_train, X_test = X[:n_train], y[:n_train], X[1200:1400]
    for dtype in (np.float64, np.float32):
        dense = KNeighborsClassifier(5, metric=metric, algorithm="brute", backend=backend)
        dense.fit(X_train.astype(dtype), y_train)
        sparse = KNeighborsClassifier(5, metric=metric, backend=backend)
        sparse.fit(sp.csr_matrix(X_train.astype(dtype)), y_train)
        assert sparse._fit_method == "brute"
        for queries in (sp.csr_matrix(X_test.astype(dtype)), X_test.astype(dtype), None):
            d_dense, i_dense = dense.kneighbors(None if queries is None else X_test.astype(dtype))
            d_sparse, i_sparse = sparse.kneighbors(queries)
            np.testing.assert_allclose(d_sparse, d_dense, rtol=1e-12, atol=1e-13)
            exact_queries = X_train if queries is None else X_test
            untied = _untied(exact_queries.astype(np.float64), X_train.astype(np.float64),
                             "cosine" if metric == "cosine" else metric, 2, 6 if queries is None else 5)
            np.testing.assert_array_equal(i_sparse[untied], i_dense[untied])
        if metric != "sqeuclidean":
            ref = sk_neighbors.KNeighborsClassifier(5, metric=metric).fit(sp.csr_matrix(X_train), y_train)
            np.testing.assert_array_equal(sparse.predict(sp.csr_matrix(X_test.astype(dtype))),
                                          ref.predict(sp.csr_matrix(X_test)))
    if metric == "sqeuclidean":  # scikit-learn takes no sparse sqeuclidean
        return
    radius = float(np.median(np.sort(_cdist(X_test[:40], X_train, metric, 2), axis=1)[:, 4]))
    ref_nn = sk_neighbors.NearestNeighbors(radius=radius, metric=metric).fit(sp.csr_matrix(X_train))
    nn = NearestNeighbors(radius=radius, metric=metric, backend=backend).fit(sp.csr_matrix(X_train))
    radius_queries = sp.csr_matrix(X_test[:40])
    rows = nn.radius_neighbors(radius_queries)[1]
    assert sum(map(len, rows)) > len(rows)
    for i, ri in zip(rows, ref_nn.radius_neighbors(radius_queries)[1]):
        assert set(i.tolist()) == set(ri.tolist())


def test_sparse_warnings_and_errors():
    X = sp.random(50, 8, density=0.3, format="csr", random_state=0)
    with pytest.warns(UserWarning, match="using brute force"):
        model = NearestNeighbors(algorithm="kd_tree").fit(X)
    assert model._fit_method == "brute"
    with pytest.raises(ValueError, match="not supported for sparse input"):
        NearestNeighbors(metric="chebyshev").fit(X)
    dense_tree = NearestNeighbors(algorithm="kd_tree").fit(X.toarray())
    with pytest.raises(ValueError, match="does not work with sparse"):
        dense_tree.kneighbors(X)


def _broken_csr(kind):
    X = sp.random(50, 8, density=0.3, format="csr", random_state=0)
    indices, indptr = X.indices.copy(), X.indptr.copy()
    if kind == "column too large":
        indices[3] = 1000
    elif kind == "negative column":
        indices[3] = -2
    else:  # indptr that decreases
        indptr[5], indptr[6] = indptr[6], indptr[5] - 1
    X.indices, X.indptr = indices, indptr  # SciPy does not check arrays set afterwards
    return X


@pytest.mark.parametrize("kind", ["column too large", "negative column", "decreasing indptr"])
def test_broken_sparse_structure_is_a_clear_error(kind):
    """An inconsistent CSR (SciPy builds it unchecked) must never reach a kernel: a ValueError
    naming X at fit and at query time, never a crash or a silently wrong answer."""
    good = sp.random(50, 8, density=0.3, format="csr", random_state=1)
    y = np.arange(50) % 2
    for backend in available_backends():
        with pytest.raises(ValueError, match=r"^X \(a CSR matrix"):
            KNeighborsClassifier(n_neighbors=3, backend=backend).fit(_broken_csr(kind), y)
        model = KNeighborsClassifier(n_neighbors=3, backend=backend).fit(good, y)
        with pytest.raises(ValueError, match=r"^X \(a CSR matrix"):
            model.predict(_broken_csr(kind))


def test_auto_rule():
    rng = np.random.default_rng(0)
    assert auto_algorithm("euclidean", None, 100_000, 2, 10) == "kd_tree"
    assert auto_algorithm("euclidean", None, 100_000, 6, 10, dtype=np.float64) == "kd_tree"
    assert auto_algorithm("euclidean", None, 100_000, 6, 10, dtype=np.float32) == "brute"
    assert auto_algorithm("euclidean", None, 100_000, 64, 10) == "brute"
    assert auto_algorithm("chebyshev", None, 100_000, 16, 10) == "kd_tree"
    assert auto_algorithm("minkowski", 3.0, 100_000, 32, 10) == "kd_tree"
    assert auto_algorithm("cosine", None, 100_000, 2, 10) == "brute"
    assert auto_algorithm("minkowski", 0.5, 100_000, 2, 10) == "brute"
    assert auto_algorithm("euclidean", None, 100_000, 2, 10, sparse=True) == "brute"
    assert auto_algorithm("euclidean", None, 100, 2, 10) == "brute"
    assert auto_algorithm("euclidean", None, 10_000, 2, 6000) == "brute"
    X = rng.standard_normal((5000, 3))
    for backend in ("numba", "cython"):
        try:
            expected = "kd_tree" if _tree_backend(backend) != "numpy" else "brute"
        except ImportError:
            continue
        assert NearestNeighbors(backend=backend).fit(X)._fit_method == expected
    # The NumPy tree is a readable reference: "auto" does not pick it.
    assert NearestNeighbors(backend="numpy").fit(X)._fit_method == "brute"
    assert NearestNeighbors(metric="cosine").fit(X)._fit_method == "brute"
    assert NearestNeighbors(metric="precomputed").fit(cdist(X[:50], X[:50]))._fit_method == "brute"


def _tree_backend(backend):
    from fastscratch._backend import resolve_kernel

    return resolve_kernel("kd_tree_query", backend)[1]


@pytest.mark.parametrize("params, error, match", [
    ({"algorithm": "fast"}, ValueError, "algorithm='fast' is not supported"),
    ({"leaf_size": 0}, ValueError, "leaf_size=0 must be >= 1"),
    ({"leaf_size": 2.5}, TypeError, "leaf_size must be an integer"),
    ({"algorithm": "kd_tree", "metric": "cosine"}, ValueError, "algorithm='kd_tree' cannot serve metric='cosine'"),
    ({"algorithm": "ball_tree", "p": 0.5}, ValueError, 'algorithm="ball_tree" does not support 0 < p < 1'),
    ({"algorithm": "kd_tree", "metric": "precomputed"}, ValueError, "cannot serve metric='precomputed'"),
    ({"metric_params": {"w": 1}}, ValueError, "metric_params="),
    ({"radius": -1}, ValueError, "radius=-1 must be >= 0"),
])
def test_bad_parameters(params, error, match):
    X = DATASETS["iris"][0]
    with pytest.raises(error, match=match):
        NearestNeighbors(**params).fit(X)
    params.pop("radius", None)
    if params:
        with pytest.raises(error, match=match):
            KNeighborsClassifier(**params).fit(X, DATASETS["iris"][1])


def test_n_threads_do_not_change_trees(optimised_backend, rng):
    _tree_backend_or_skip("kd_tree", optimised_backend)
    X = rng.standard_normal((4000, 3)).astype(np.float32)
    queries = rng.standard_normal((1500, 3)).astype(np.float32)
    for algorithm in ("kd_tree", "ball_tree"):
        one = NearestNeighbors(n_neighbors=5, algorithm=algorithm, n_jobs=1, backend=optimised_backend).fit(X)
        two = NearestNeighbors(n_neighbors=5, algorithm=algorithm, n_jobs=2, backend=optimised_backend).fit(X)
        np.testing.assert_array_equal(one.kneighbors(queries)[1], two.kneighbors(queries)[1])
        np.testing.assert_array_equal(one.kneighbors(queries)[0], two.kneighbors(queries)[0])



@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
def test_distances_that_overflow_are_a_clear_error(algorithm):
    """Data whose distances overflow (every distance infinite) cannot be ranked: a ValueError that
    names the overflow, never an index out of range (the kernels' sentinel) or an arbitrary answer."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 3
    for backend in available_backends():
        with pytest.raises(ValueError, match="overflow float64"):
            KNeighborsClassifier(5, algorithm=algorithm, backend=backend).fit(X * 1e300, y)
        with pytest.raises(ValueError, match="p=1e\\+06.*overflow"):
            KNeighborsClassifier(5, algorithm=algorithm, p=1e6, backend=backend).fit(X, y)
        model = KNeighborsClassifier(5, algorithm=algorithm, backend=backend).fit(X, y)
        with pytest.raises(ValueError, match="overflow"):
            model.predict(X * 1e300)  # queries far from the training data
        # Large but safe: the answers are scikit-learn's, scaled.
        scaled = KNeighborsClassifier(5, algorithm=algorithm, backend=backend).fit(X * 1e100, y)
        reference = sk_neighbors.KNeighborsClassifier(5, algorithm="brute").fit(X, y)
        np.testing.assert_array_equal(scaled.kneighbors(X[:10] * 1e100)[1], reference.kneighbors(X[:10])[1])


# ---------------------------------------------------------- float64 brute force ranked in float32
def _near_ties_far_apart(rng, n_queries=30, n_close=40, n_features=8):
    """Two groups of points 2,000 apart; around each query, n_close points at squared distance
    1 + O(1e-5): float32 cannot order them at these norms (its rounding is about 0.1)."""
    far = rng.standard_normal((300, n_features))
    far[:, 0] += 1e3 * rng.choice([-1.0, 1.0], size=300)
    queries = far[rng.integers(0, 300, n_queries)] + rng.standard_normal((n_queries, n_features))
    directions = rng.standard_normal((n_queries, n_close, n_features))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    radii = np.sqrt(1.0 + 1e-5 * rng.random((n_queries, n_close)))
    close = (queries[:, None, :] + radii[..., None] * directions).reshape(-1, n_features)
    return np.concatenate([far, close])[rng.permutation(300 + n_queries * n_close)], queries


def test_float64_brute_ranked_in_float32_is_exact(backend, monkeypatch):
    import fastscratch.neighbors as neighbors_module

    rng = np.random.default_rng(1)
    X_train, _, X_test, _ = DATASETS["digits"]  # standardised, float64
    tied_train, tied_queries = _near_ties_far_apart(rng)
    for train, queries in ((X_train, _queries_for(backend, "digits")), (tied_train, tied_queries)):
        ranked = NearestNeighbors(n_neighbors=K, algorithm="brute", backend=backend).fit(train)
        assert ranked._ranking is not None
        distances, indices = ranked.kneighbors(queries)
        with monkeypatch.context() as patch:
            patch.setattr(neighbors_module, "_RANK_FLOAT64_IN_FLOAT32", False)
            plain = NearestNeighbors(n_neighbors=K, algorithm="brute", backend=backend).fit(train)
            assert plain._ranking is None
            plain_distances, plain_indices = plain.kneighbors(queries)
        np.testing.assert_array_equal(indices, plain_indices)
        np.testing.assert_allclose(distances, plain_distances, rtol=1e-12)
        exact = cdist(queries, train)
        expected = np.argsort(exact, axis=1, kind="stable")[:, :K]
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_allclose(distances, np.take_along_axis(exact, expected, 1), rtol=1e-10)
        sk_distances, sk_indices = sk_neighbors.NearestNeighbors(n_neighbors=K).fit(train).kneighbors(queries)
        untied = _untied(queries, train, "euclidean", 2, K)
        assert untied.mean() > 0.5
        np.testing.assert_array_equal(indices[untied], sk_indices[untied])
        np.testing.assert_allclose(distances, sk_distances, rtol=1e-10)
    # Leave-one-out (X=None) and one thread against two: the same answers.
    one = NearestNeighbors(n_neighbors=K, algorithm="brute", backend=backend, n_jobs=1).fit(X_train)
    two = NearestNeighbors(n_neighbors=K, algorithm="brute", backend=backend, n_jobs=2).fit(X_train)
    for a, b in zip(one.kneighbors(), two.kneighbors()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one.kneighbors()[1], sk_neighbors.NearestNeighbors(n_neighbors=K).fit(
        X_train).kneighbors()[1])


# --------------------------------------------------------------- n_neighbors checked before allocation
def test_n_neighbors_checked_before_allocation(monkeypatch):
    import fastscratch.neighbors as neighbors_module

    X = DATASETS["digits"][0]
    model = NearestNeighbors().fit(X)
    # Type and value errors come before the queries are even validated.
    with pytest.raises(TypeError, match="n_neighbors must be an integer"):
        model.kneighbors("not an array", n_neighbors=2.5)
    with pytest.raises(ValueError, match="n_neighbors=0 must be >= 1"):
        model.kneighbors(np.full((3, 7), np.nan), n_neighbors=0)
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        model.kneighbors(X[:3], n_neighbors=len(X) + 1)
    assert model.kneighbors(X[:3], n_neighbors=np.int64(4))[1].shape == (3, 4)
    # An n_queries x n_neighbors output larger than the memory: a ValueError naming n_neighbors.
    monkeypatch.setattr(neighbors_module, "_physical_memory", lambda: 1 << 24)
    with pytest.raises(ValueError, match=r"n_neighbors=1399 for 1400 queries needs about .* GiB for the "
                                         r"n_queries x n_neighbors output, more than"):
        model.kneighbors(n_neighbors=1399)
    with pytest.raises(ValueError, match="n_neighbors=1399"):
        model.kneighbors_graph(n_neighbors=1399)
    # predict keeps one batch at a time: the same k fits.
    clf = KNeighborsClassifier(n_neighbors=1399, n_jobs=1).fit(X, DATASETS["digits"][1])
    assert clf.predict(X[:5]).shape == (5,)
    monkeypatch.setattr(neighbors_module, "_physical_memory", lambda: 1 << 10)
    with pytest.raises(ValueError, match="n_neighbors=1399 for 5 queries needs about .* for the neighbour arrays"):
        clf.predict(X[:5])


def test_batches_shrink_for_huge_n_neighbors():
    from fastscratch.neighbors import _MAX_BATCH_BYTES, _batch_size

    assert _batch_size(10) == 8738 and _batch_size(100) == 1024
    for k in (5_000, 100_000, 10**9):
        assert 1 <= _batch_size(k) and (_batch_size(k) == 1 or _batch_size(k) * 24 * k <= _MAX_BATCH_BYTES)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_radius_output_checked_against_memory(algorithm, monkeypatch):
    import fastscratch.neighbors as neighbors_module

    X = DATASETS["blobs2d"][0]
    model = NearestNeighbors(algorithm=algorithm).fit(X)
    expected = model.radius_neighbors(X[:50], radius=np.inf, return_distance=False)
    assert all(len(row) == len(X) for row in expected)
    monkeypatch.setattr(neighbors_module, "_physical_memory", lambda: 1 << 20)  # 20 x 1200 x 32 B fits
    assert len(model.radius_neighbors(X[:20], radius=np.inf, return_distance=False)) == 20
    with pytest.raises(ValueError, match=r"radius=inf finds .* neighbours or more .* lower radius"):
        model.radius_neighbors(radius=np.inf)  # every training point for each of 1200 queries


def test_float64_ranking_gives_way_on_a_far_outlier(backend, rng):
    # One point 1e7 away: the float32 rounding bound exceeds every neighbour gap, no query is
    # certified, and after the first _RANK_PROBE queries the batch goes straight to float64.
    train = np.concatenate([rng.standard_normal((1500, 4)), [[1e7, 0.0, 0.0, 0.0]]])
    queries = rng.standard_normal((700, 4))
    model = NearestNeighbors(n_neighbors=5, algorithm="brute", backend=backend).fit(train)
    assert model._ranking is not None
    distances, indices = model.kneighbors(queries)
    exact = cdist(queries, train)
    expected = np.argsort(exact, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, np.take_along_axis(exact, expected, 1), rtol=1e-10)
