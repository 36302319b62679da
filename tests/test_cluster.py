"""KMeans against scikit-learn, and the k-means kernels against the NumPy reference."""

import warnings
from functools import lru_cache

import numpy as np
import pytest
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import load_breast_cancer, load_iris, make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from fastscratch import KMeans
from fastscratch.kernels import available_backends, get_kernel
from fastscratch.kernels.kmeans_numpy import BLOCK_ROWS, lloyd_state, n_stripes

# Centres and inertia relative to scikit-learn: sums differ only in order and
# precision (we accumulate in float64, scikit-learn in the input dtype).
RTOL = {np.float64: 1e-10, np.float32: 1e-5}


@lru_cache(maxsize=None)
def dataset(name):
    if name == "iris":
        return load_iris().data, 3
    if name == "breast_cancer":
        return StandardScaler().fit_transform(load_breast_cancer().data), 4
    return make_blobs(3000, 7, centers=6, cluster_std=3.0, random_state=0)[0], 6


def sk_fit(model, X, sample_weight=None):
    """scikit-learn's fit on one OpenMP thread: a deterministic reference (its
    thread-local sums are reduced in thread-arrival order), and no waiting on
    busy cores."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.fit(X, sample_weight=sample_weight)


def init_centers(X, k, seed=0):
    return X[np.random.default_rng(seed).choice(X.shape[0], k, replace=False)]


@lru_cache(maxsize=None)
def sklearn_fit(name, dtype, algorithm, weighted):
    X, k = dataset(name)
    X = X.astype(dtype)
    weights = np.random.default_rng(1).uniform(0.1, 3.0, X.shape[0]) if weighted else None
    model = sk_fit(SKKMeans(k, init=init_centers(X, k), n_init=1, algorithm=algorithm), X, weights)
    return X, k, weights, model


def assert_same_fit(ours, ref, dtype):
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    scale = np.abs(ref.cluster_centers_).max()
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * scale)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=RTOL[dtype])


@pytest.mark.parametrize("name", ["iris", "breast_cancer", "blobs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_as_sklearn_given_init(backend, name, dtype, algorithm, weighted):
    X, k, weights, ref = sklearn_fit(name, dtype, algorithm, weighted)
    ours = KMeans(k, init=init_centers(X, k), algorithm=algorithm, backend=backend).fit(
        X, sample_weight=weights)
    assert_same_fit(ours, ref, dtype)
    assert ours.cluster_centers_.dtype == dtype
    assert ours.labels_.dtype == np.int32


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_predict_transform_score_match_sklearn(backend, algorithm):
    X, k, _, ref = sklearn_fit("breast_cancer", np.float64, algorithm, False)
    ours = KMeans(k, init=init_centers(X, k), algorithm=algorithm, backend=backend).fit(X)
    X_new = X[::3] + 0.1
    np.testing.assert_array_equal(ours.predict(X_new), ref.predict(X_new))
    np.testing.assert_allclose(ours.transform(X_new), ref.transform(X_new), rtol=1e-10)
    assert ours.score(X_new) == pytest.approx(ref.score(X_new), rel=1e-10)
    np.testing.assert_array_equal(ours.fit_predict(X), ref.labels_)
    np.testing.assert_allclose(ours.fit_transform(X), ref.transform(X), rtol=1e-10)


def test_float32_stays_float32():
    X = load_iris().data.astype(np.float32)
    model = KMeans(3, random_state=0).fit(X)
    assert model.cluster_centers_.dtype == np.float32
    assert model.transform(X).dtype == np.float32


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_empty_cluster_relocated_as_sklearn(backend, algorithm):
    X, _ = make_blobs(500, 3, centers=3, random_state=2)
    init = np.vstack([X[:3], [[100.0, 100.0, 100.0], [-100.0, 50.0, 0.0]]])  # two start empty
    ref = sk_fit(SKKMeans(5, init=init, n_init=1, algorithm=algorithm), X)
    ours = KMeans(5, init=init, algorithm=algorithm, backend=backend).fit(X)
    assert_same_fit(ours, ref, np.float64)
    assert np.unique(ours.labels_).size == 5


def test_more_clusters_than_distinct_points(backend):
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 4, axis=0)
    init = X[[0, 1, 4, 8, 9]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sk_fit(SKKMeans(5, init=init, n_init=1), X)
        with pytest.warns(ConvergenceWarning, match="distinct clusters"):
            ours = KMeans(5, init=init, backend=backend).fit(X)
    assert_same_fit(ours, ref, np.float64)


@pytest.mark.parametrize("name", ["iris", "breast_cancer", "blobs"])
def test_kmeans_plusplus_inertia_close_to_sklearn(name):
    X, k = dataset(name)
    seeds = range(8)
    ours = np.mean([KMeans(k, random_state=s).fit(X).inertia_ for s in seeds])
    ref = np.mean([sk_fit(SKKMeans(k, random_state=s), X).inertia_ for s in seeds])
    assert ours == pytest.approx(ref, rel=0.01)


def test_random_init_and_n_init():
    X, k = dataset("breast_cancer")
    weights = np.random.default_rng(3).uniform(0.5, 2.0, X.shape[0])
    ours = KMeans(k, init="random", random_state=0).fit(X, sample_weight=weights)
    ref = sk_fit(SKKMeans(k, init="random", random_state=0), X, weights)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=0.01)
    single = KMeans(k, init="random", n_init=1, random_state=0).fit(X, sample_weight=weights)
    assert ours.inertia_ <= single.inertia_ * (1 + 1e-12)


def test_callable_init_and_same_seed_same_result():
    X, k = dataset("iris")
    model = KMeans(k, init=lambda X, k, random_state: X[:k], backend="numpy").fit(X)
    ref = sk_fit(SKKMeans(k, init=X[:k], n_init=1), X)
    np.testing.assert_array_equal(model.labels_, ref.labels_)
    a = KMeans(k, random_state=7).fit(X)
    b = KMeans(k, random_state=7).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_one_and_two_threads_identical(optimised_backend, algorithm, monkeypatch):
    monkeypatch.setenv("FASTSCRATCH_MACHINE_SHARED", "0")  # two threads even on a busy machine
    X, _ = make_blobs(20 * BLOCK_ROWS + 17, 5, centers=8, cluster_std=4.0, random_state=1)
    assert KMeans(8, n_jobs=2)._n_threads(X) == 2
    assert n_stripes(X.shape[0], 8, 5) > 2
    fits = [KMeans(8, random_state=0, algorithm=algorithm, n_jobs=n, backend=optimised_backend).fit(X)
            for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].labels_, fits[1].labels_)
    np.testing.assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    assert fits[0].inertia_ == fits[1].inertia_
    assert fits[0].n_iter_ == fits[1].n_iter_


def test_thread_count_rule(monkeypatch):
    """n_jobs threads with at least four row blocks each; one thread on a shared machine."""
    X = np.zeros((40 * BLOCK_ROWS, 3))
    monkeypatch.setenv("FASTSCRATCH_MACHINE_SHARED", "0")
    assert KMeans(n_jobs=2)._n_threads(X) == 2
    assert KMeans(n_jobs=8)._n_threads(X) == 8
    assert KMeans(n_jobs=16)._n_threads(X) == 10
    assert KMeans(n_jobs=2)._n_threads(X[:7 * BLOCK_ROWS]) == 1
    monkeypatch.setenv("FASTSCRATCH_MACHINE_SHARED", "1")
    assert KMeans(n_jobs=2)._n_threads(X) == 1


@pytest.mark.parametrize("change, match", [
    (dict(n_clusters=200), "n_clusters"),
    (dict(n_clusters=0), "n_clusters"),
    (dict(init=np.zeros((2, 4))), "init"),
    (dict(init=np.zeros((3, 5))), "init"),
    (dict(init="kmeans++"), "init"),
    (dict(algorithm="full"), "algorithm"),
    (dict(tol=-1.0), "tol"),
    (dict(max_iter=0), "max_iter"),
    (dict(n_init=0), "n_init"),
])
def test_bad_parameters(change, match):
    X = load_iris().data
    with pytest.raises(ValueError, match=match):
        KMeans(**{"n_clusters": 3, **change}).fit(X)


def test_bad_data():
    X = load_iris().data.copy()
    with pytest.raises(ValueError, match="sample_weight"):
        KMeans(3).fit(X, sample_weight=-np.ones(X.shape[0]))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KMeans(3).fit(X)
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        KMeans(3).fit(X)


def test_elkan_single_cluster_falls_back_to_lloyd():
    X = load_iris().data
    with pytest.warns(RuntimeWarning, match="lloyd"):
        model = KMeans(1, algorithm="elkan").fit(X)
    np.testing.assert_allclose(model.cluster_centers_[0], X.mean(axis=0), rtol=1e-12)


# ------------------------------------------------------------------ kernels
def kernel_inputs(n, d, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    centers = X[rng.choice(n, k, replace=False)].copy()
    weights = rng.uniform(0.5, 2.0, n).astype(dtype)
    return X, weights, centers


def run_lloyd(backend, X, weights, centers, n_threads=2, **copy):
    k = centers.shape[0]
    labels, stripe_sums, stripe_weights = lloyd_state(X.shape[0], k, X.shape[1])
    out = (labels, np.empty((k, X.shape[1])), np.empty(k), np.empty(1))
    get_kernel("kmeans_lloyd_iter", backend)(X, weights, centers, np.einsum("ij,ij->i", centers, centers),
                                             True, labels, stripe_sums, stripe_weights, *out[1:],
                                             np.empty(1, np.intp), n_threads, **copy)
    return out


def run_elkan(backend, X, weights, centers, n_threads=2):
    n, k = X.shape[0], centers.shape[0]
    c = centers.astype(np.float64)
    half = (np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1)) / 2).astype(X.dtype)
    next_center = np.partition(half, 1, axis=0)[1] if k > 1 else half[0]
    labels, upper, lower = np.empty(n, np.intp), np.empty(n, X.dtype), np.zeros((n, k), X.dtype)
    get_kernel("kmeans_elkan_init", backend)(X, centers, half, labels, upper, lower, n_threads)
    init = (labels.copy(), upper.copy(), lower.copy())
    moved = (centers + 0.05).astype(X.dtype)
    shift = np.full(k, np.sqrt(X.shape[1]) * 0.05, X.dtype)
    sums, weight_sums = np.empty((k, X.shape[1])), np.empty(k)
    get_kernel("kmeans_elkan_iter", backend)(X, weights, moved, half, next_center, shift, labels,
                                             upper, lower, sums, weight_sums, n_threads)
    return init, (labels, upper, lower, sums, weight_sums)


KERNEL_SHAPES = [(1000, 8, 5), (37, 3, 1), (300, 1, 4), (70 * BLOCK_ROWS + 5, 6, 3), (50, 20, 50),
                 (3 * BLOCK_ROWS + 7, 40, 6),   # too many features, too few centres: exact path only
                 (2 * BLOCK_ROWS + 9, 2, 9),    # few features: products without a GEMM
                 (2 * BLOCK_ROWS + 9, 70, 65),  # many features and centres: ranked rows as stored
                 (2 * BLOCK_ROWS + 3, 12, 70)]  # float32: transposed block; float64: rows as stored


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_lloyd_kernel_matches_reference(optimised_backend, dtype, shape):
    X, weights, centers = kernel_inputs(*shape, dtype)
    labels, sums, weight_sums, inertia = run_lloyd(optimised_backend, X, weights, centers)
    ref = run_lloyd("numpy", X, weights, centers)
    np.testing.assert_array_equal(labels, ref[0])
    np.testing.assert_allclose(sums, ref[1], rtol=1e-12, atol=1e-12 * np.abs(ref[1]).max())
    np.testing.assert_allclose(weight_sums, ref[2], rtol=1e-12)
    np.testing.assert_allclose(inertia, ref[3], rtol=1e-12)
    inertia_only = np.empty(1)
    get_kernel("kmeans_inertia", optimised_backend)(X, weights, centers, labels, inertia_only, 2)
    np.testing.assert_allclose(inertia_only, ref[3], rtol=1e-12)
    # Same answer on one thread, bit for bit.
    single = run_lloyd(optimised_backend, X, weights, centers, n_threads=1)
    for a, b in zip(single, (labels, sums, weight_sums, inertia)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(3 * BLOCK_ROWS + 7, 40, 6), (2 * BLOCK_ROWS + 9, 70, 65),
                                   (BLOCK_ROWS + 3, 130, 64)])
def test_lloyd_kernel_ranks_on_a_float32_copy(optimised_backend, shape):
    # float64 data with many features: fit hands the kernels X in float32 (rank_copy_pays)
    X, weights, centers = kernel_inputs(*shape, np.float64)
    ties = np.arange(5, X.shape[0] - 1, 23)  # ties and near-ties: decided by the exact path
    X[ties] = (centers[0] + centers[1]) / 2
    X[ties + 1] = X[ties] * (1 + 1e-9)
    ref = run_lloyd("numpy", X, weights, centers)
    copy = {"X_rank": X.astype(np.float32), "x_sq_norms": np.einsum("ij,ij->i", X, X)}
    for n_threads in (1, 2):
        got = run_lloyd(optimised_backend, X, weights, centers, n_threads, **copy)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-12 * np.abs(ref[1]).max())
        np.testing.assert_allclose(got[3], ref[3], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_elkan_kernels_match_reference(optimised_backend, dtype, shape):
    X, weights, centers = kernel_inputs(*shape, dtype)
    init, after = run_elkan(optimised_backend, X, weights, centers)
    ref_init, ref_after = run_elkan("numpy", X, weights, centers)
    for a, b in zip(init, ref_init):
        np.testing.assert_array_equal(a, b)  # same arithmetic: bounds equal exactly
    for a, b in zip(after[:3], ref_after[:3]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(after[3], ref_after[3], rtol=1e-12, atol=1e-12 * np.abs(ref_after[3]).max())
    np.testing.assert_allclose(after[4], ref_after[4], rtol=1e-12)
    single_init, single_after = run_elkan(optimised_backend, X, weights, centers, n_threads=1)
    for a, b in zip(single_init + single_after, init + after):
        np.testing.assert_array_equal(a, b)


def test_lloyd_ties_go_to_smaller_index(backend):
    # Duplicated centres and an integer grid: many exact ties.
    X = np.array([[x, y] for x in range(-3, 4) for y in range(-3, 4)], dtype=np.float64)
    centers = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = run_lloyd(backend, X, np.ones(X.shape[0]), centers)[0]
    exact = ((X[:, None] - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, np.argmin(exact, axis=1))


def near_tie_inputs(dtype):
    """Rows a hair's breadth from the bisector of two mirrored centres.

    With ``x_0`` the offset from the bisector, ``d_0 - d_1 = -4 x_0``: the
    nearest centre is the sign of ``x_0``. The offsets are below float32's
    ranking precision but well above the data dtype's rounding, so the
    compiled kernels must take the exact path to get the labels right.
    """
    rng = np.random.default_rng(3)
    n = 3 * BLOCK_ROWS + 17
    X = rng.normal(size=(n, 5))
    low, high = (-12, -7) if dtype == np.float64 else (-6, -5)
    X[:, 0] = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(low, high, n)
    centers = np.array([[1.0, 0.3, -0.2, 0.1, 0.5], [-1.0, 0.3, -0.2, 0.1, 0.5]])
    return X.astype(dtype), np.ones(n, dtype), centers.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lloyd_near_ties_take_the_exact_path(backend, dtype):
    X, weights, centers = near_tie_inputs(dtype)
    labels = run_lloyd(backend, X, weights, centers)[0]
    np.testing.assert_array_equal(labels, (X[:, 0] < 0).astype(np.intp))
    np.testing.assert_array_equal(labels, run_lloyd("numpy", X, weights, centers)[0])


def test_lloyd_far_from_the_origin(backend):
    # Clusters 0.05 apart around 1e4: float32 cannot rank these (every row is
    # uncertain); the kernels give up ranking and keep the labels exact.
    rng = np.random.default_rng(4)
    centers = 1e4 + rng.normal(scale=0.05, size=(6, 3))
    X = centers[rng.integers(0, 6, 20 * BLOCK_ROWS)] + rng.normal(scale=0.01, size=(20 * BLOCK_ROWS, 3))
    weights = np.ones(X.shape[0])
    ours = run_lloyd(backend, X, weights, centers)
    ref = run_lloyd("numpy", X, weights, centers)
    np.testing.assert_array_equal(ours[0], ref[0])
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-12)
    exact = ((X[:, None] - centers[None]) ** 2).sum(-1)
    assert np.mean(ours[0] == np.argmin(exact, axis=1)) > 0.99


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lloyd_passes_update_the_sums_of_changed_rows(optimised_backend, dtype):
    # Several passes on one state (as fit runs them) give the sums a fresh pass gives.
    X, weights, centers = kernel_inputs(5 * BLOCK_ROWS + 3, 6, 7, dtype, seed=5)
    k = centers.shape[0]
    labels, stripe_sums, stripe_weights = lloyd_state(X.shape[0], k, X.shape[1])
    sums, weight_sums, inertia, n_changed = np.empty((k, X.shape[1])), np.empty(k), np.empty(1), np.empty(1, np.intp)
    kernel = get_kernel("kmeans_lloyd_iter", optimised_backend)
    previous = labels.copy()
    for step in range(4):
        moved = (centers + 0.3 * step * np.random.default_rng(step).normal(size=centers.shape)).astype(dtype)
        kernel(X, weights, moved, np.einsum("ij,ij->i", moved, moved), step == 3, labels, stripe_sums,
               stripe_weights, sums, weight_sums, inertia, n_changed, 2)
        fresh = run_lloyd("numpy", X, weights, moved)
        np.testing.assert_array_equal(labels, fresh[0])
        assert n_changed[0] == np.count_nonzero(labels != previous)
        np.testing.assert_allclose(sums, fresh[1], rtol=1e-12, atol=1e-12 * np.abs(fresh[1]).max())
        np.testing.assert_allclose(weight_sums, fresh[2], rtol=1e-12)
        previous = labels.copy()
    np.testing.assert_allclose(inertia, fresh[3], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 3), (150, 4), (3 * BLOCK_ROWS + 1, 17)])
@pytest.mark.parametrize("in_place", [False, True])
def test_center_kernel_is_numpy_bit_for_bit(backend, dtype, shape, in_place):
    X = (np.random.default_rng(6).normal(size=shape) * 7 + 3).astype(dtype)
    for with_variance in (True, False):
        data = X.copy()
        centred = data if in_place else np.empty_like(data)
        mean, variance = np.empty(shape[1], dtype), np.zeros(shape[1], dtype)
        get_kernel("kmeans_center", backend)(data, with_variance, centred, mean, variance, 2)
        np.testing.assert_array_equal(mean, X.mean(axis=0))
        np.testing.assert_array_equal(centred, X - X.mean(axis=0))
        if with_variance:
            np.testing.assert_array_equal(variance, np.var(X, axis=0))


def test_fit_with_ties_on_a_grid_matches_sklearn(backend):
    # Integer grid, centres symmetric about the origin: many samples are exactly
    # equidistant; scikit-learn's rounding decides, and so must ours.
    X = np.array([[x, y] for x in range(-6, 7) for y in range(-6, 7)], dtype=np.float64)
    init = np.array([[1.5, 0.0], [0.0, 1.5], [-1.5, 0.0], [0.0, -1.5]])
    ours = KMeans(4, init=init, backend=backend).fit(X)
    ref = sk_fit(SKKMeans(4, init=init, n_init=1), X)
    assert_same_fit(ours, ref, np.float64)


def test_predict_far_from_the_origin_matches_sklearn(backend):
    X, _ = make_blobs(4000, 3, centers=5, cluster_std=0.02, center_box=(-0.2, 0.2), random_state=1)
    X += 1e4
    init = init_centers(X, 5)
    ref = sk_fit(SKKMeans(5, init=init, n_init=1), X)
    ours = KMeans(5, init=init, backend=backend).fit(X)
    assert_same_fit(ours, ref, np.float64)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


# scikit-learn expects the same failure of its own KMeans (k-means++ seeding draws
# differently from weighted and from repeated samples).
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data":
        "sample_weight is not equivalent to removing/repeating samples (as scikit-learn's KMeans).",
    "check_sample_weight_equivalence_on_sparse_data":
        "sample_weight is not equivalent to removing/repeating samples (as scikit-learn's KMeans).",
}


@parametrize_with_checks([KMeans(n_clusters=3, n_init=2, max_iter=5, backend=available_backends()[0])],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_kmeans_plusplus_on_more_rows_than_one_distance_chunk():
    # k-means++ computes candidate distances in chunks of 65,536 rows; with more
    # rows and several candidates the chunks must still land in the right columns.
    from fastscratch.cluster import _sq_distances_to

    X = np.random.default_rng(0).random((70_000, 4))
    points = X[[5, 69_999, 123]]
    distances = _sq_distances_to(X, np.einsum("ij,ij->i", X, X), points)
    np.testing.assert_allclose(distances, ((points[:, None] - X[None]) ** 2).sum(-1), atol=1e-12)
    model = KMeans(n_clusters=8, random_state=0, max_iter=5, backend="numpy").fit(X)
    assert model.cluster_centers_.shape == (8, 4) and np.isfinite(model.inertia_)


def test_predict_in_blocks_equals_scikit_learn(monkeypatch):
    """predict walks the rows in blocks; labels across block edges are scikit-learn's."""
    import fastscratch.cluster as cluster_module

    X, _ = make_blobs(5_000, 6, centers=7, cluster_std=3.0, random_state=3)
    model = KMeans(7, n_init=1, random_state=0).fit(X)
    reference = SKKMeans(7, init=model.cluster_centers_, n_init=1, max_iter=1).fit(X)
    reference.cluster_centers_ = model.cluster_centers_
    whole = model.predict(X)
    monkeypatch.setattr(cluster_module, "PREDICT_BLOCK_ROWS", 768)  # 7 blocks, the last one short
    np.testing.assert_array_equal(model.predict(X), whole)
    np.testing.assert_array_equal(whole, reference.predict(X))
    assert whole.dtype == np.int32


def _predict_memory_setup(small):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2_000 if small else 1_000_000, 16))
    return KMeans(8, init=X[:8].copy(), n_init=1, max_iter=2).fit(X[:2_000]), X


def _predict_memory_run(inputs):
    model, X = inputs
    model.predict(X)


def test_predict_memory_is_the_labels():
    """1M x 16 rows: predict adds the int32 labels (4 MB) and per-block buffers, no per-row
    float64 weights or intp work arrays (scikit-learn's predict adds about 12 MB here)."""
    from fastscratch._memory import peak_memory_above_inputs_mb

    peak_mb = peak_memory_above_inputs_mb(_predict_memory_setup, _predict_memory_run)
    assert peak_mb < 8, f"predict added {peak_mb:.1f} MB to the peak"


# ------------------------------------------------------- scale and size checks
@lru_cache(maxsize=None)
def unscaled_fit(backend, algorithm, dtype):
    X = load_iris().data.astype(dtype)
    return X, KMeans(3, init=X[[0, 50, 100]], algorithm=algorithm, backend=backend).fit(X)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e150), (np.float64, 1e-150),
                                          (np.float64, 1e-300), (np.float32, 1e30),
                                          (np.float32, 1e-30)])
def test_scaled_data_gives_the_scaled_answer(backend, algorithm, dtype, scale):
    X, ref = unscaled_fit(backend, algorithm, dtype)
    scaled = (X * scale).astype(dtype)
    model = KMeans(3, init=scaled[[0, 50, 100]], algorithm=algorithm, backend=backend).fit(scaled)
    np.testing.assert_array_equal(model.labels_, ref.labels_)
    assert model.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(model.cluster_centers_ / scale, ref.cluster_centers_, rtol=RTOL[dtype])
    # float64 inertia: 1e-300 data give 1e-600, which rounds to 0 (as the exact product does)
    assert model.inertia_ == pytest.approx(ref.inertia_ * scale * scale, rel=RTOL[dtype], abs=1e-300)
    assert model.score(scaled) == pytest.approx(-model.inertia_, rel=RTOL[dtype], abs=1e-300)
    np.testing.assert_array_equal(model.predict(scaled), ref.labels_)
    np.testing.assert_allclose(model.transform(scaled) / scale, ref.transform(X), rtol=RTOL[dtype],
                               atol=RTOL[dtype] * 10)


def test_scaled_data_match_sklearn_with_kmeans_plusplus(backend):
    X = load_iris().data
    ref = sk_fit(SKKMeans(3, n_init=1, random_state=0), X)
    model = KMeans(3, n_init=1, random_state=0, backend=backend).fit(X * 2.0 ** -990)
    np.testing.assert_array_equal(model.labels_, ref.labels_)
    np.testing.assert_allclose(model.cluster_centers_ * 2.0 ** 990, ref.cluster_centers_, rtol=1e-10)


def test_inertia_overflow_is_a_clear_error(backend):
    X, ref = unscaled_fit(backend, "lloyd", np.float64)
    with pytest.raises(ValueError, match="inertia .* overflows float64"):
        KMeans(3, init=X[[0, 50, 100]] * 1e300, backend=backend).fit(X * 1e300)
    # Labels and distances are still those of the scaled centres.
    ref = KMeans(3, init=X[[0, 50, 100]], backend=backend).fit(X)
    distances = ref.transform(X)
    ref.cluster_centers_ = ref.cluster_centers_ * 1e300
    np.testing.assert_array_equal(ref.predict(X * 1e300), ref.labels_)
    np.testing.assert_allclose(ref.transform(X * 1e300) / 1e300, distances, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="overflows float64"):
        ref.score(X * 1e300)


@pytest.mark.parametrize("value, error", [(2.5, TypeError), ("8", TypeError), (None, TypeError),
                                          (True, TypeError), (np.int64(0), ValueError), (-3, ValueError)])
def test_n_clusters_type_and_value(value, error):
    with pytest.raises(error, match="n_clusters"):
        KMeans(value).fit(load_iris().data)


@pytest.mark.parametrize("name", ["max_iter", "n_init"])
def test_other_size_parameters_types(name):
    with pytest.raises(TypeError, match=name):
        KMeans(3, **{name: 2.0}).fit(load_iris().data)


def test_size_parameters_checked_before_any_allocation():
    # Views of one number: converting any of them would need terabytes.
    with pytest.raises(ValueError, match="n_samples=5 should be >= n_clusters=6"):
        KMeans(6).fit(np.broadcast_to(np.float32(1.0), (5, 10 ** 12)))
    huge = np.broadcast_to(0.0, (10 ** 6, 10 ** 6))
    with pytest.raises(ValueError, match="n_clusters=500000 needs about .* GiB"):
        KMeans(500_000).fit(huge)
    with pytest.raises(ValueError, match="algorithm='lloyd'"):
        KMeans(200_000, algorithm="elkan").fit(np.broadcast_to(0.0, (10 ** 7, 2)))
    with pytest.raises(TypeError, match="n_clusters"):
        KMeans(2.0).fit(huge)
