"""sqeuclidean_topk / sqeuclidean_argmin: every backend against the NumPy reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.neighbors import NearestNeighbors

from fastscratch.kernels import get_kernel

# Distances: relative tolerance per dtype (the exact re-ranking sums in float64;
# backends differ only in the summation order).
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def run_topk(backend, queries, reference, k, n_threads=2):
    distances = np.empty((queries.shape[0], k), dtype=queries.dtype)
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    get_kernel("sqeuclidean_topk", backend)(queries, reference, distances, indices, n_threads)
    return distances, indices


def run_argmin(backend, queries, reference, n_threads=2):
    distances = np.empty(queries.shape[0], dtype=queries.dtype)
    indices = np.empty(queries.shape[0], dtype=np.intp)
    get_kernel("sqeuclidean_argmin", backend)(queries, reference, distances, indices, n_threads)
    return distances, indices


def assert_same_topk(result, expected, dtype):
    np.testing.assert_array_equal(result[1], expected[1])
    np.testing.assert_allclose(result[0], expected[0], rtol=RTOL[dtype], atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(200, 1000, 8, 5), (37, 3001, 3, 1), (300, 50, 40, 7), (1, 10, 1, 10)])
def test_topk_matches_reference_and_sklearn(backend, dtype, shape, rng):
    n_queries, n_reference, n_features, k = shape
    reference = rng.standard_normal((n_reference, n_features)).astype(dtype)
    queries = rng.standard_normal((n_queries, n_features)).astype(dtype)
    result = run_topk(backend, queries, reference, k)
    assert_same_topk(result, run_topk("numpy", queries, reference, k), dtype)
    # And scikit-learn's brute force (continuous data: no exact ties).
    sk_distances, sk_indices = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(
        reference.astype(np.float64)).kneighbors(queries.astype(np.float64))
    np.testing.assert_array_equal(result[1], sk_indices)
    np.testing.assert_allclose(np.sqrt(result[0]), sk_distances, rtol=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_topk_k_equals_n(backend, dtype, rng):
    reference = rng.standard_normal((23, 4)).astype(dtype)
    queries = rng.standard_normal((9, 4)).astype(dtype)
    distances, indices = run_topk(backend, queries, reference, 23)
    for row in range(9):
        assert sorted(indices[row]) == list(range(23))
        assert np.all(np.diff(distances[row]) >= 0)
    assert_same_topk((distances, indices), run_topk("numpy", queries, reference, 23), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_go_to_smaller_index(backend, dtype):
    # Integer grid: many exactly tied distances, and duplicated points.
    grid = np.array([[x, y] for x in range(-3, 4) for y in range(-3, 4)], dtype=dtype)
    reference = np.concatenate([grid, grid[::-1], grid[:5]])
    queries = np.array([[0, 0], [0.5, 0.5], [3, 3], [-1, 2]], dtype=dtype)
    distances, indices = run_topk(backend, queries, reference, 9)
    exact = ((queries[:, None, :].astype(np.float64) - reference[None].astype(np.float64)) ** 2).sum(-1)
    expected_indices = np.argsort(exact, axis=1, kind="stable")[:, :9]
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(distances, np.take_along_axis(exact, expected_indices, 1).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_duplicate_points(backend, dtype, rng):
    point = rng.standard_normal((1, 5)).astype(dtype)
    reference = np.repeat(point, 12, axis=0)
    distances, indices = run_topk(backend, point, reference, 4)
    np.testing.assert_array_equal(indices, [[0, 1, 2, 3]])
    np.testing.assert_array_equal(distances, np.zeros((1, 4), dtype))


def test_near_cancellation_is_exact(backend):
    # Far from the origin the expanded form loses almost every digit; the exact
    # re-ranking must still give the true distances.
    rng = np.random.default_rng(3)
    reference = 1e4 + rng.standard_normal((500, 3))
    queries = 1e4 + rng.standard_normal((20, 3))
    distances, indices = run_topk(backend, queries, reference, 3)
    exact = ((queries[:, None, :] - reference[None]) ** 2).sum(-1)
    expected = np.argsort(exact, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, np.take_along_axis(exact, expected, 1), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmin_matches_sklearn(backend, dtype, rng):
    reference = rng.standard_normal((17, 6)).astype(dtype)
    queries = rng.standard_normal((2000, 6)).astype(dtype)
    distances, indices = run_argmin(backend, queries, reference)
    sk_indices, sk_distances = pairwise_distances_argmin_min(
        queries.astype(np.float64), reference.astype(np.float64))
    np.testing.assert_array_equal(indices, sk_indices)
    np.testing.assert_allclose(np.sqrt(distances), sk_distances, rtol=RTOL[dtype] * 10)
    expected = run_argmin("numpy", queries, reference)
    assert_same_topk((distances, indices), expected, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_result_with_one_and_two_threads(optimised_backend, dtype, rng):
    reference = rng.standard_normal((2500, 16)).astype(dtype)
    queries = rng.standard_normal((700, 16)).astype(dtype)
    one = run_topk(optimised_backend, queries, reference, 6, n_threads=1)
    two = run_topk(optimised_backend, queries, reference, 6, n_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    n_reference=st.integers(1, 40),
    n_queries=st.integers(1, 12),
    n_features=st.integers(1, 5),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_topk_property(data, n_reference, n_queries, n_features, dtype):
    # Small integers: many exact ties, which every backend must order by index.
    elements = st.integers(-4, 4)
    reference = data.draw(arrays(np.int64, (n_reference, n_features), elements=elements)).astype(dtype)
    queries = data.draw(arrays(np.int64, (n_queries, n_features), elements=elements)).astype(dtype)
    k = data.draw(st.integers(1, n_reference))
    exact = ((queries[:, None, :].astype(np.float64) - reference[None].astype(np.float64)) ** 2).sum(-1)
    expected_indices = np.argsort(exact, axis=1, kind="stable")[:, :k]
    for backend in __import__("fastscratch").kernels.available_backends():
        distances, indices = run_topk(backend, queries, reference, k)
        np.testing.assert_array_equal(indices, expected_indices, err_msg=backend)
        np.testing.assert_array_equal(distances, np.take_along_axis(exact, expected_indices, 1).astype(dtype))


# cosine_topk (distances family), manhattan_topk, minkowski_topk and chebyshev_topk
# (minkowski family).
NEW_KERNELS = [("cosine_topk", ()), ("manhattan_topk", ()), ("minkowski_topk", (3.0,)),
               ("minkowski_topk", (0.5,)), ("chebyshev_topk", ())]


def run_named_topk(name, extra, backend, queries, reference, k, n_threads=2):
    distances = np.empty((queries.shape[0], k), dtype=queries.dtype)
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    get_kernel(name, backend)(queries, reference, *extra, distances, indices, n_threads)
    return distances, indices


def exact_reduced(name, extra, queries, reference):
    """Exact float64 kernel outputs for every (query, reference) pair."""
    q = queries.astype(np.float64)[:, None, :]
    x = reference.astype(np.float64)[None]
    if name == "cosine_topk":
        qn = np.linalg.norm(q, axis=-1, keepdims=True)
        xn = np.linalg.norm(x, axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.minimum(0.5 * ((x / xn - q / qn) ** 2).sum(-1), 2.0)
        out[((qn == 0) | (xn == 0))[..., 0]] = 1.0
        return out
    if name == "chebyshev_topk":
        return np.abs(q - x).max(-1)
    p = extra[0] if extra else 1.0
    return (np.abs(q - x) ** p).sum(-1)


@pytest.mark.parametrize("name, extra", NEW_KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(200, 1000, 8, 5), (37, 301, 3, 1), (1, 10, 1, 10)])
def test_other_metrics_match_reference_and_exact(backend, name, extra, dtype, shape, rng):
    n_queries, n_reference, n_features, k = shape
    reference = rng.standard_normal((n_reference, n_features)).astype(dtype)
    queries = rng.standard_normal((n_queries, n_features)).astype(dtype)
    result = run_named_topk(name, extra, backend, queries, reference, k)
    expected = run_named_topk(name, extra, "numpy", queries, reference, k)
    np.testing.assert_array_equal(result[1], expected[1])
    np.testing.assert_allclose(result[0], expected[0], rtol=RTOL[dtype], atol=1e-30)
    exact = exact_reduced(name, extra, queries, reference)
    order = np.argsort(exact, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(result[1], order)
    np.testing.assert_allclose(result[0], np.take_along_axis(exact, order, 1), rtol=RTOL[dtype] * 10)


@pytest.mark.parametrize("name, extra", NEW_KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_other_metrics_ties_and_duplicates(backend, name, extra, dtype):
    grid = np.array([[x, y] for x in range(-3, 4) for y in range(-3, 4)], dtype=dtype)
    reference = np.concatenate([grid, grid[::-1], grid[:5]])
    queries = np.array([[0.5, 0.5], [3, 3], [-1, 2], [0, 1]], dtype=dtype)
    k = reference.shape[0] if name == "manhattan_topk" else 9  # k = n for one of them
    distances, indices = run_named_topk(name, extra, backend, queries, reference, k)
    exact = exact_reduced(name, extra, queries, reference)
    expected = np.argsort(exact, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, np.take_along_axis(exact, expected, 1), rtol=RTOL[dtype])


def test_cosine_zero_rows(backend):
    reference = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    queries = np.array([[0.0, 0.0], [2.0, 0.0]])
    distances, indices = run_named_topk("cosine_topk", (), backend, queries, reference, 4)
    np.testing.assert_array_equal(indices, [[0, 1, 2, 3], [1, 0, 2, 3]])
    np.testing.assert_allclose(distances, [[1, 1, 1, 1], [0, 1, 1, 2]], atol=1e-15)


@pytest.mark.parametrize("name, extra", NEW_KERNELS[:3] + NEW_KERNELS[4:])
def test_other_metrics_one_and_two_threads(optimised_backend, name, extra, rng):
    reference = rng.standard_normal((1500, 16)).astype(np.float32)
    queries = rng.standard_normal((700, 16)).astype(np.float32)
    one = run_named_topk(name, extra, optimised_backend, queries, reference, 6, n_threads=1)
    two = run_named_topk(name, extra, optimised_backend, queries, reference, 6, n_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


# sqeuclidean_topk_ranked: float64 data ranked in float32, each query certified or left to the
# float64 search (distances_numpy.ranking_margins).
def run_ranked(backend, queries, reference, k, n_threads=2):
    from fastscratch.kernels.distances_numpy import ranking_margins

    mean = reference.mean(axis=0)
    centred_reference, centred_queries = reference - mean, queries - mean
    margins = ranking_margins(np.linalg.norm(centred_queries, axis=1),
                                             np.linalg.norm(centred_reference, axis=1).max(), queries.shape[1])
    distances = np.empty((queries.shape[0], k))
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    certified = np.empty(queries.shape[0], dtype=np.uint8)
    get_kernel("sqeuclidean_topk_ranked", backend)(
        queries, reference, centred_queries.astype(np.float32), centred_reference.astype(np.float32),
        margins, distances, indices, certified, n_threads)
    return distances, indices, certified.astype(bool)


def _digits_standardised():
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(load_digits().data)
    return X[:1500], X[1500:]


def test_ranked_topk_is_the_float64_search_on_digits(backend):
    reference, queries = _digits_standardised()
    k = 10
    distances, indices, certified = run_ranked(backend, queries, reference, k)
    assert certified.mean() > 0.95  # the float32 path is taken, not only the fallback
    exact = run_topk(backend, queries, reference, k)
    np.testing.assert_array_equal(indices[certified], exact[1][certified])
    np.testing.assert_allclose(distances[certified], exact[0][certified], rtol=1e-12)
    sk_distances, sk_indices = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference).kneighbors(queries)
    from scipy.spatial.distance import cdist

    gaps = np.diff(np.sort(cdist(queries, reference, "sqeuclidean"), axis=1)[:, :k + 1], axis=1)
    untied = np.all(gaps > 1e-9, axis=1)
    np.testing.assert_array_equal(indices[certified & untied], sk_indices[certified & untied])
    np.testing.assert_allclose(np.sqrt(distances[certified]), sk_distances[certified], rtol=1e-10)


def _near_ties_at_large_norms(rng, n_queries=40, n_close=60, n_far=400, n_features=8):
    """Queries with n_close points at squared distance 1 + O(1e-6), in data with norms near 1e3.

    Float32 cannot order those neighbours (its rounding at these norms is about 1e-1): a float32
    ranking keeps the wrong 2k of them, and only the certificate sends the queries to float64.
    """
    far = 1e3 * rng.choice([-1.0, 1.0], size=(n_far, 1)) * np.eye(n_features)[0] + rng.standard_normal(
        (n_far, n_features))
    queries = far[rng.integers(0, n_far, n_queries)] + rng.standard_normal((n_queries, n_features))
    directions = rng.standard_normal((n_queries, n_close, n_features))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    radii = np.sqrt(1.0 + 1e-6 * rng.random((n_queries, n_close)))
    close = (queries[:, None, :] + radii[..., None] * directions).reshape(-1, n_features)
    reference = np.concatenate([far, close])
    return np.ascontiguousarray(reference[rng.permutation(len(reference))]), queries


def test_ranked_topk_near_ties_at_large_norms_stay_exact(backend, rng):
    reference, queries = _near_ties_at_large_norms(rng)
    k = 10
    exact = ((queries[:, None] - reference[None]) ** 2).sum(-1)
    expected = np.argsort(exact, axis=1, kind="stable")[:, :k]
    distances, indices, certified = run_ranked(backend, queries, reference, k)
    wrong = np.any(indices != expected, axis=1)
    assert wrong.any()  # the float32 candidates miss true neighbours here...
    assert not certified[wrong].any()  # ...and the certificate sends those queries back to float64
    np.testing.assert_array_equal(indices[certified], expected[certified])
    np.testing.assert_allclose(distances[certified], np.take_along_axis(exact, expected, 1)[certified],
                               rtol=1e-12)


def test_ranked_topk_one_and_two_threads(optimised_backend):
    reference, queries = _digits_standardised()
    one = run_ranked(optimised_backend, queries, reference, 7, n_threads=1)
    two = run_ranked(optimised_backend, queries, reference, 7, n_threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_ranked_topk_k_equals_n_and_overflow_scale(backend, rng):
    reference = rng.standard_normal((23, 4))
    queries = rng.standard_normal((9, 4))
    distances, indices, certified = run_ranked(backend, queries, reference, 23)
    assert certified.all()  # every point is a candidate
    assert_same_topk((distances, indices), run_topk("numpy", queries, reference, 23), np.float64)
    # Norms float32 cannot hold: never certified (the caller searches in float64).
    with np.errstate(over="ignore", invalid="ignore"):
        _, _, certified = run_ranked(backend, queries * 1e20, reference * 1e20, 3)
    assert not certified.any()
