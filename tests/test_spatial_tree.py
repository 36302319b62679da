"""KD-tree and ball tree (fastscratch._spatial_tree) against brute force.

References: scikit-learn's brute-force NearestNeighbors (indices on rows
without ties, radius neighbours as sets), SciPy's cdist (distances), our own
brute-force KNN estimator (indices and distances everywhere) and an exact
brute force written here that ranks with the same float64 sums as the trees
(so equal distances, ties included, must come out in the same order).
"""

from functools import lru_cache

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import load_digits, load_iris, load_wine, make_blobs
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from fastscratch import KNeighborsRegressor
from fastscratch._spatial_tree import TREE_METRICS, SpatialTree, tree_supports
from fastscratch.kernels import get_kernel

KINDS = ("kd_tree", "ball_tree")
# (metric, p) pairs: every metric a tree serves, and Minkowski at p = 1.5 and 3.
METRICS = [("euclidean", 2), ("sqeuclidean", 2), ("manhattan", 1), ("chebyshev", np.inf),
           ("minkowski", 1.5), ("minkowski", 3.0)]
RTOL = {np.float64: 1e-10, np.float32: 1e-6}
K = 7


def _split(X):
    X = StandardScaler().fit_transform(X)
    order = np.random.default_rng(0).permutation(len(X))
    cut = 2 * len(X) // 3
    return np.ascontiguousarray(X[order[:cut]]), np.ascontiguousarray(X[order[cut:]])


@lru_cache(maxsize=None)
def _dataset(name):
    if name == "blobs2":
        return _split(make_blobs(900, 2, centers=5, random_state=0)[0])
    if name == "blobs3":
        return _split(make_blobs(900, 3, centers=5, random_state=1)[0])
    loader = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[name]
    return _split(loader().data)


DATASETS = ("iris", "wine", "digits", "blobs2", "blobs3")


def _queries(name, backend):
    """Test queries: 120 (the slow NumPy reference gets 10)."""
    return _dataset(name)[1][:10 if backend == "numpy" else 120]


def _exponent(metric, p):
    return {"euclidean": 2.0, "sqeuclidean": 2.0, "manhattan": 1.0, "chebyshev": np.inf}.get(metric, p)


def _exact_reduced(queries, train, p):
    """(m, n) reduced distances summed feature by feature in float64 (the trees' order)."""
    queries = queries.astype(np.float64)
    train = train.astype(np.float64)
    total = np.zeros((queries.shape[0], train.shape[0]))
    for l in range(train.shape[1]):
        diff = np.abs(queries[:, l, None] - train[None, :, l])
        if p == np.inf:
            total = np.maximum(total, diff)
        elif p == 2:
            total += diff * diff
        elif p == 1:
            total += diff
        else:
            total += diff ** p
    return total


def _brute(queries, train, p, k):
    """k nearest by (exact reduced distance, index)."""
    reduced = _exact_reduced(queries, train, p)
    order = np.argsort(reduced, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(reduced, order, axis=1), order


def _cdist(queries, train, metric, p):
    queries, train = queries.astype(np.float64), train.astype(np.float64)
    if metric == "sqeuclidean":
        return cdist(queries, train, "sqeuclidean")
    if metric == "minkowski":
        return cdist(queries, train, "minkowski", p=p)
    return cdist(queries, train, {"manhattan": "cityblock"}.get(metric, metric))


def _sklearn_metric(metric, p):
    if metric == "sqeuclidean":
        return {"metric": "euclidean"}
    return {"metric": metric, "p": p} if metric == "minkowski" else {"metric": metric}


def _rows_without_ties(exact_sorted, k):
    gaps = np.diff(exact_sorted[:, :k + 1], axis=1)
    return np.all(gaps > 1e-9 * (1 + exact_sorted[:, 1:k + 1]), axis=1)


@lru_cache(maxsize=None)
def _references(dataset, n_queries, metric, p):
    """Exact brute force, SciPy's distances and scikit-learn's brute force, computed once."""
    train, queries = _dataset(dataset)
    queries = queries[:n_queries]
    expected = _brute(queries, train, _exponent(metric, p), K)[1]
    exact = _cdist(queries, train, metric, p)
    sk_distances, sk_indices = NearestNeighbors(
        n_neighbors=K, algorithm="brute", **_sklearn_metric(metric, p)).fit(train).kneighbors(queries)
    return expected, exact, sk_distances, sk_indices


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("kind", KINDS)
def test_knn_equals_brute_force(backend, kind, dataset):
    train, queries = _dataset(dataset)
    queries = _queries(dataset, backend)
    for metric, p in METRICS:
        tree = SpatialTree(train, kind, leaf_size=10, metric=metric, p=p, backend=backend)
        assert tree.backend_ == backend
        distances, indices = tree.query(queries, K)
        expected, exact, sk_distances, sk_indices = _references(dataset, len(queries), metric, p)
        # Our exact brute force: the same float64 sums, so the same indices, ties included.
        np.testing.assert_array_equal(indices, expected, err_msg=f"{metric} p={p}")
        # SciPy's distances of the returned neighbours.
        np.testing.assert_allclose(distances, np.take_along_axis(exact, indices, axis=1),
                                   rtol=1e-10, atol=1e-12, err_msg=f"{metric} p={p}")
        # scikit-learn's brute force, on rows without ties.
        clean = _rows_without_ties(np.sort(exact, axis=1), K)
        assert clean.mean() > 0.5 or metric == "chebyshev"  # iris: every Chebyshev row has ties
        np.testing.assert_array_equal(indices[clean], sk_indices[clean], err_msg=f"{metric} p={p}")
        if metric == "sqeuclidean":
            sk_distances = sk_distances ** 2
        np.testing.assert_allclose(distances, sk_distances, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("metric, p", [("euclidean", 2), ("sqeuclidean", 2), ("manhattan", 1),
                                       ("minkowski", 3.0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_knn_equals_our_brute_force_estimator(optimised_backend, kind, metric, p, dtype):
    """Indices and distances equal the brute-force path of fastscratch.neighbors."""
    train, queries = (part.astype(dtype) for part in _dataset("wine"))
    tree = SpatialTree(train, kind, metric=metric, p=p, backend=optimised_backend)
    distances, indices = tree.query(queries, K)
    brute = KNeighborsRegressor(n_neighbors=K, metric=metric, p=p, backend=optimised_backend)
    brute_distances, brute_indices = brute.fit(train, np.zeros(len(train))).kneighbors(queries)
    np.testing.assert_array_equal(indices, brute_indices)
    np.testing.assert_allclose(distances, brute_distances, rtol=RTOL[dtype] * 1e-4, atol=0)


@lru_cache(maxsize=None)
def _radius_references(dataset, n_queries, metric, p):
    """A radius near the 6th neighbour's distance, exact distances, scikit-learn's answer."""
    train, queries = _dataset(dataset)
    queries = queries[:n_queries]
    exact = _cdist(queries, train, metric, p)
    radius = 1.0001 * float(np.median(np.sort(exact, axis=1)[:, 5]))
    sk_radius = np.sqrt(radius) if metric == "sqeuclidean" else radius
    sk_indices = NearestNeighbors(algorithm="brute", **_sklearn_metric(metric, p)).fit(
        train).radius_neighbors(queries, sk_radius, return_distance=False)
    return radius, exact, _exact_reduced(queries, train, _exponent(metric, p)), sk_indices


@pytest.mark.parametrize("dataset", ["iris", "digits", "blobs2"])
@pytest.mark.parametrize("kind", KINDS)
def test_radius_equals_sklearn(backend, kind, dataset):
    train, _ = _dataset(dataset)
    queries = _queries(dataset, backend)
    for metric, p in METRICS:
        radius, exact, exact_reduced, sk_indices = _radius_references(dataset, len(queries), metric, p)
        tree = SpatialTree(train, kind, leaf_size=8, metric=metric, p=p, backend=backend)
        indices, distances = tree.query_radius(queries, radius, sort_results=True)
        # Rows with a point on the sphere (up to rounding) may legitimately differ.
        clean = ~np.any(np.abs(exact - radius) <= 1e-9 * (1 + radius), axis=1)
        assert clean.mean() > 0.5
        for i in np.flatnonzero(clean):
            assert set(indices[i]) == set(sk_indices[i]), (metric, p, i)
        radius_reduced = tree._to_reduced(np.array([radius]))[0]
        for i in range(len(queries)):
            assert indices[i].dtype == np.intp and distances[i].dtype == np.float64
            np.testing.assert_allclose(distances[i], exact[i, indices[i]], rtol=1e-10, atol=1e-12)
            assert np.all(np.diff(distances[i]) >= 0)
            # Everything within the radius by the trees' own float64 sums.
            np.testing.assert_array_equal(np.sort(indices[i]),
                                          np.flatnonzero(exact_reduced[i] <= radius_reduced))


def test_radius_per_query_and_without_distances(backend):
    train, queries = _dataset("blobs2")
    queries = queries[:20]
    radii = np.linspace(0.0, 1.0, len(queries))
    tree = SpatialTree(train, "kd_tree", backend=backend)
    indices = tree.query_radius(queries, radii, return_distance=False)
    exact = cdist(queries, train)
    for i in range(len(queries)):
        np.testing.assert_array_equal(np.sort(indices[i]), np.flatnonzero(exact[i] <= radii[i]))
    # A radius of 0 finds the query's own copy in the training set.
    own = tree.query_radius(train[:5], 0.0, return_distance=False)
    for i in range(5):
        assert i in own[i]


def test_backends_build_the_same_tree(optimised_backend):
    train, queries = _dataset("blobs3")
    for kind in KINDS:
        reference = SpatialTree(train, kind, leaf_size=12, metric="manhattan", backend="numpy")
        tree = SpatialTree(train, kind, leaf_size=12, metric="manhattan", backend=optimised_backend)
        np.testing.assert_array_equal(tree._node_start, reference._node_start)
        np.testing.assert_array_equal(tree._node_end, reference._node_end)
        for start, end in zip(tree._node_start, tree._node_end):  # same rows in every node
            np.testing.assert_array_equal(np.sort(tree.idx_array_[start:end]),
                                          np.sort(reference.idx_array_[start:end]))
        for ours, theirs in zip(tree._geometry, reference._geometry):
            np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(tree.query(queries[:40], 5)[1], reference.query(queries[:40], 5)[1])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("metric, p", METRICS)
def test_float32_equals_float64_of_the_same_numbers(backend, kind, metric, p):
    train, queries = _dataset("blobs3")
    train32, queries32 = train.astype(np.float32), queries[:60].astype(np.float32)
    tree32 = SpatialTree(train32, kind, metric=metric, p=p, backend=backend)
    tree64 = SpatialTree(train32.astype(np.float64), kind, metric=metric, p=p, backend=backend)
    distances32, indices32 = tree32.query(queries32, K)
    distances64, indices64 = tree64.query(queries32.astype(np.float64), K)
    assert distances32.dtype == np.float64 and indices32.dtype == np.intp
    np.testing.assert_array_equal(indices32, indices64)
    np.testing.assert_allclose(distances32, distances64, rtol=RTOL[np.float32] * 1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_edge_cases(backend, kind):
    rng = np.random.default_rng(3)
    # Duplicate points: ties ordered by index.
    base = rng.normal(size=(40, 3))
    X = np.concatenate([base, base[:15], base[:15]])
    reduced, expected = _brute(X[:20], X, 2.0, 5)
    distances, indices = SpatialTree(X, kind, leaf_size=4, backend=backend).query(X[:20], 5)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(indices[:15, :3], np.stack([np.arange(15), np.arange(40, 55),
                                                              np.arange(55, 70)], axis=1))
    # All points identical: the first k rows, distance 0.
    X = np.ones((50, 2))
    distances, indices = SpatialTree(X, kind, leaf_size=3, backend=backend).query(X[:4], 6)
    np.testing.assert_array_equal(indices, np.tile(np.arange(6), (4, 1)))
    np.testing.assert_array_equal(distances, 0.0)
    # 1-D data, k = n_samples, leaf_size larger than n and leaf_size = 1.
    X = rng.normal(size=(33, 1))
    for leaf_size in (1, 100):
        tree = SpatialTree(X, kind, leaf_size=leaf_size, metric="manhattan", backend=backend)
        distances, indices = tree.query(X[:6], 33)
        reduced, expected = _brute(X[:6], X, 1.0, 33)
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_array_equal(distances, reduced)
    # One training point.
    distances, indices = SpatialTree(X[:1], kind, backend=backend).query(X[:3], 1)
    np.testing.assert_array_equal(indices, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_one_and_two_threads_agree(optimised_backend, kind):
    train, queries = _dataset("digits")
    one = SpatialTree(train, kind, metric="euclidean", backend=optimised_backend, n_threads=1)
    two = SpatialTree(train, kind, metric="euclidean", backend=optimised_backend, n_threads=2)
    np.testing.assert_array_equal(one.idx_array_, two.idx_array_)
    d1, i1 = one.query(queries, K, n_threads=1)
    d2, i2 = two.query(queries, K, n_threads=2)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)
    r1, rd1 = one.query_radius(queries, 4.0, n_threads=1)
    r2, rd2 = two.query_radius(queries, 4.0, n_threads=2)
    for a, b, c, d in zip(r1, r2, rd1, rd2):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(c, d)


def test_tree_supports():
    for metric in TREE_METRICS:
        assert tree_supports(metric, 2)
    assert tree_supports("minkowski", 1) and tree_supports("minkowski", np.inf)
    assert not tree_supports("minkowski", 0.5)
    assert not tree_supports("minkowski", np.nan)
    assert not tree_supports("cosine", 2)
    assert not tree_supports("precomputed", 2)


def test_bad_parameters():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="kind"):
        SpatialTree(X, "octree")
    with pytest.raises(ValueError, match="leaf_size"):
        SpatialTree(X, "kd_tree", leaf_size=0)
    with pytest.raises(TypeError, match="leaf_size"):
        SpatialTree(X, "kd_tree", leaf_size=2.5)
    with pytest.raises(ValueError, match="metric"):
        SpatialTree(X, "ball_tree", metric="cosine")
    with pytest.raises(ValueError, match="p=0.5"):
        SpatialTree(X, "ball_tree", metric="minkowski", p=0.5)
    with pytest.raises(ValueError, match="backend"):
        SpatialTree(X, "kd_tree", backend="fortran")
    tree = SpatialTree(X, "kd_tree")
    with pytest.raises(ValueError, match="k=21"):
        tree.query(X, 21)
    with pytest.raises(ValueError, match="shape"):
        tree.query(X[:, :1], 3)
    with pytest.raises(ValueError, match="r must be"):
        tree.query_radius(X, -1.0)
    with pytest.raises(ValueError, match="r must be"):
        tree.query_radius(X, np.ones(3))


def test_kernels_are_registered():
    for name in ("kd_tree_build", "kd_tree_query", "ball_tree_radius_fill"):
        assert callable(get_kernel(name, "numpy"))
