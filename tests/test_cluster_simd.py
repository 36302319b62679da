"""The Cython k-means kernels' vector code: Lloyd's RANK_SIMD (many features, few centres) and RANK_LANES
(up to 32 features, 8 or 12 to 16 centres) paths, Elkan's distances.

Every vector level the CPU has (2 AVX-512, 1 AVX2, 0 the plain loop) is tried
by lowering ``kmeans_cython.SIMD_LEVEL``; the labels must stay scikit-learn's
(the margin test sends near-ties to scikit-learn's own GEMM) and not depend on
the thread count.
"""

from functools import lru_cache

import numpy as np
import pytest
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import load_breast_cancer, load_digits, make_blobs
from threadpoolctl import threadpool_limits

from fastscratch import KMeans
from fastscratch.kernels import get_kernel
from fastscratch.kernels.kmeans_numpy import (BLOCK_ROWS, RANK_DIRECT, RANK_EXACT, RANK_LANES, RANK_ROWS,
                                              RANK_SIMD, lloyd_state, rank_path)

kmeans_cython = pytest.importorskip("fastscratch.kernels.kmeans_cython")
LEVELS = [level for level in (2, 1) if level <= kmeans_cython.SIMD_LEVEL]
RTOL = {np.float64: 1e-10, np.float32: 1e-5}


def test_rule():
    assert rank_path(256, 16, np.float64, simd=True) == RANK_SIMD
    assert rank_path(128, 2, np.float64, simd=True) == RANK_SIMD
    assert rank_path(256, 16, np.float64, simd=False) == RANK_EXACT
    assert rank_path(64, 16, np.float64, with_copy=True, simd=True) == RANK_ROWS  # the float32 copy
    assert rank_path(256, 64, np.float64, with_copy=True, simd=True) == RANK_ROWS
    assert rank_path(256, 16, np.float32, simd=True) == RANK_EXACT  # float32: the exact GEMM
    assert rank_path(256, 1, np.float64, simd=True) == RANK_EXACT


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("level", [0, 1, 2])
def test_dots_match_numpy(level, dtype):
    if level > kmeans_cython.SIMD_LEVEL:
        pytest.skip("the CPU lacks this vector level")
    rng = np.random.default_rng(level)
    for n, d, k in [(1, 1, 1), (7, 7, 5), (37, 33, 16), (13, 130, 3), (9, 257, 6), (4, 16, 4)]:
        X = rng.normal(size=(n, d)).astype(dtype)
        centers = rng.normal(size=(k, d)).astype(dtype)
        products, norms = np.empty((n, k), dtype), np.empty(n)
        kmeans_cython._simd_dots(X, centers, level, products, norms)
        exact = X.astype(np.float64) @ centers.astype(np.float64).T
        scale = np.abs(X).astype(np.float64) @ np.abs(centers).astype(np.float64).T
        unit = np.finfo(dtype).eps
        assert np.all(np.abs(products - exact) <= 2 * d * unit * scale)
        np.testing.assert_allclose(norms, np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64)),
                                   rtol=2 * d * unit)


def run_lloyd(backend, X, centers, n_threads):
    k = centers.shape[0]
    labels, stripe_sums, stripe_weights = lloyd_state(X.shape[0], k, X.shape[1])
    sums, weights, inertia = np.empty((k, X.shape[1])), np.empty(k), np.empty(1)
    get_kernel("kmeans_lloyd_iter", backend)(
        X, np.ones(X.shape[0], X.dtype), centers, np.einsum("ij,ij->i", centers, centers), True,
        labels, stripe_sums, stripe_weights, sums, weights, inertia, np.empty(1, np.intp), n_threads)
    return labels, sums, weights, inertia


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("level", LEVELS)
def test_lloyd_kernel_with_ties_matches_reference(monkeypatch, level, dtype):
    monkeypatch.setattr(kmeans_cython, "SIMD_LEVEL", level)
    rng = np.random.default_rng(5)
    n, d, k = 5 * BLOCK_ROWS + 11, 131, 7
    X = rng.normal(size=(n, d))
    centers = X[rng.choice(n, k, replace=False)].copy()
    centers[4] = centers[1]  # duplicate centre: every row near it is an exact tie
    ties = np.arange(3, n - 1, 19)  # on the bisector of two centres, and a hair off it
    X[ties] = (centers[0] + centers[2]) / 2
    X[ties + 1] = X[ties] * (1 + 1e-7)
    X, centers = X.astype(dtype), centers.astype(dtype)
    if dtype == np.float32:  # not the rule's choice (see rank_path), but the kernel must be right
        monkeypatch.setattr(kmeans_cython, "rank_path", lambda *args, **kwargs: RANK_SIMD)
    assert kmeans_cython.rank_path(d, k, dtype, simd=True) == RANK_SIMD
    ref = run_lloyd("numpy", X, centers, 2)
    single = run_lloyd("cython", X, centers, 1)
    double = run_lloyd("cython", X, centers, 2)
    np.testing.assert_array_equal(double[0], ref[0])
    assert not np.any(double[0] == 4)  # ties go to the smaller index
    np.testing.assert_allclose(double[1], ref[1], rtol=1e-12, atol=1e-12 * np.abs(ref[1]).max())
    np.testing.assert_allclose(double[3], ref[3], rtol=1e-12)
    for a, b in zip(single, double):
        np.testing.assert_array_equal(a, b)  # bit for bit on one and two threads


def digits_128():
    """The digits (8 x 8 images) and their squared pixels: 128 real features."""
    X = load_digits().data
    return np.hstack([X, X ** 2 / 16])


CASES = {
    "digits_128_features_k10": (digits_128, 10),
    "blobs_256_features_k16": (lambda: make_blobs(3000, 256, centers=16, cluster_std=2.0, random_state=0)[0], 16),
}


@lru_cache(maxsize=None)
def sklearn_fit(name, dtype):
    make, k = CASES[name]
    X = make().astype(dtype)
    with threadpool_limits(limits=1, user_api="openmp"):
        ref = SKKMeans(k, n_init=1, random_state=0).fit(X)
    return X, k, ref


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("level", LEVELS)
def test_fit_same_as_sklearn(monkeypatch, level, name):
    dtype = np.float64  # (float32 data keep the exact path: rank_path)
    X, k, ref = sklearn_fit(name, dtype)
    assert rank_path(X.shape[1], k, dtype, simd=True) == RANK_SIMD
    monkeypatch.setattr(kmeans_cython, "SIMD_LEVEL", level)
    fits = [KMeans(k, n_init=1, random_state=0, backend="cython", n_jobs=n_jobs).fit(X) for n_jobs in (1, 2)]
    ours = fits[1]
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    scale = np.abs(ref.cluster_centers_).max()
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * scale)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=RTOL[dtype])
    np.testing.assert_array_equal(ours.predict(X[::7]), ref.predict(X[::7]))
    np.testing.assert_array_equal(fits[0].labels_, ours.labels_)
    np.testing.assert_array_equal(fits[0].cluster_centers_, ours.cluster_centers_)
    assert fits[0].inertia_ == ours.inertia_


# Elkan: every distance a vector of centres at a time (fs_elkan_*), bit for bit scikit-learn's.
def run_elkan(backend, X, centers, n_threads):
    n, k = X.shape[0], centers.shape[0]
    c = centers.astype(np.float64)
    half = (np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1)) / 2).astype(X.dtype)
    next_center = np.partition(half, 1, axis=0)[1]
    labels, upper, lower = np.empty(n, np.intp), np.empty(n, X.dtype), np.zeros((n, k), X.dtype)
    get_kernel("kmeans_elkan_init", backend)(X, centers, half, labels, upper, lower, n_threads)
    init = (labels.copy(), upper.copy(), lower.copy())
    moved = (centers + 0.05).astype(X.dtype)
    shift = np.full(k, np.sqrt(X.shape[1]) * 0.05, X.dtype)
    sums, weight_sums = np.empty((k, X.shape[1])), np.empty(k)
    get_kernel("kmeans_elkan_iter", backend)(X, np.ones(n, X.dtype), moved, half, next_center, shift,
                                             labels, upper, lower, sums, weight_sums, n_threads)
    return init + (labels, upper, lower, sums, weight_sums)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(3 * BLOCK_ROWS + 5, 131, 7), (BLOCK_ROWS + 9, 3, 21), (300, 256, 16)])
@pytest.mark.parametrize("level", [0, 1, 2])
def test_elkan_kernels_match_reference_at_each_level(monkeypatch, level, shape, dtype):
    if level > kmeans_cython.SIMD_LEVEL:
        pytest.skip("the CPU lacks this vector level")
    monkeypatch.setattr(kmeans_cython, "SIMD_LEVEL", level)
    n, d, k = shape
    rng = np.random.default_rng(d)
    X = (rng.normal(size=(n, d)) + rng.integers(0, 4, size=(n, 1))).astype(dtype)
    centers = X[rng.choice(n, k, replace=False)].copy()
    ref = run_elkan("numpy", X, centers, 2)
    for n_threads in (1, 2):
        got = run_elkan("cython", X, centers, n_threads)
        for a, b in zip(got[:6], ref[:6]):  # labels and bounds: the same arithmetic, bit for bit
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(got[6], ref[6], rtol=1e-12, atol=1e-12 * np.abs(ref[6]).max())
        np.testing.assert_allclose(got[7], ref[7], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("level", LEVELS)
def test_elkan_fit_same_as_sklearn(monkeypatch, level, dtype):
    X = digits_128().astype(dtype)
    with threadpool_limits(limits=1, user_api="openmp"):
        ref = SKKMeans(10, n_init=1, random_state=0, algorithm="elkan").fit(X)
    monkeypatch.setattr(kmeans_cython, "SIMD_LEVEL", level)
    ours = KMeans(10, n_init=1, random_state=0, algorithm="elkan", backend="cython").fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=RTOL[dtype])


def elkan_passes(backend, X, centers, n_threads, with_state):
    """Elkan's init and three passes with the centres moving; the sums of each pass."""
    n, k = X.shape[0], centers.shape[0]
    labels, upper, lower = np.empty(n, np.intp), np.empty(n, X.dtype), np.zeros((n, k), X.dtype)
    state = {"state": lloyd_state(n, k, X.shape[1])} if with_state else {}
    shift = np.zeros(k, X.dtype)
    out = []
    for step in range(4):
        c = centers.astype(np.float64)
        half = (np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1)) / 2).astype(X.dtype)
        next_center = np.partition(half, 1, axis=0)[1]
        if step == 0:
            get_kernel("kmeans_elkan_init", backend)(X, centers, half, labels, upper, lower, n_threads)
            continue
        sums, weights = np.empty((k, X.shape[1])), np.empty(k)
        get_kernel("kmeans_elkan_iter", backend)(X, np.ones(n, X.dtype), centers, half, next_center, shift,
                                                 labels, upper, lower, sums, weights, n_threads, **state)
        out.append((labels.copy(), sums, weights))
        moved = (sums / np.maximum(weights, 1)[:, None]).astype(X.dtype)
        shift = np.sqrt(((moved.astype(np.float64) - c) ** 2).sum(1)).astype(X.dtype)
        centers = moved
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_elkan_state_moves_only_changed_rows(backend, dtype):
    X = make_blobs(4 * BLOCK_ROWS + 3, 40, centers=6, cluster_std=4.0, random_state=2)[0].astype(dtype)
    centers = X[:6].copy()
    full = elkan_passes(backend, X, centers, 2, with_state=False)
    kept = elkan_passes(backend, X, centers, 2, with_state=True)
    assert not np.array_equal(full[0][0], full[-1][0])  # labels do change between passes
    for (labels_a, sums_a, weights_a), (labels_b, sums_b, weights_b) in zip(full, kept):
        np.testing.assert_array_equal(labels_a, labels_b)
        np.testing.assert_allclose(sums_b, sums_a, rtol=1e-12, atol=1e-12 * np.abs(sums_a).max())
        np.testing.assert_allclose(weights_b, weights_a, rtol=1e-12)
    if backend != "numpy":  # the same bits on one thread
        for a, b in zip(elkan_passes(backend, X, centers, 1, with_state=True), kept):
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)


# Lloyd's RANK_LANES: float32 products with the centres along the lanes of one vector, fused with the ranking.
def test_lanes_rule():
    assert rank_path(16, 16, np.float64, simd=True, lanes=True) == RANK_LANES
    assert rank_path(3, 8, np.float64, simd=True, lanes=True) == RANK_LANES
    assert rank_path(32, 16, np.float64, simd=True, lanes=True) == RANK_LANES
    assert rank_path(16, 16, np.float64, simd=True, lanes=False) == RANK_ROWS  # no AVX-512
    assert rank_path(16, 7, np.float64, simd=True, lanes=True) == RANK_EXACT  # few centres
    assert rank_path(16, 17, np.float64, simd=True, lanes=True) == RANK_ROWS  # more than a vector
    assert rank_path(64, 16, np.float64, with_copy=True, simd=True, lanes=True) == RANK_LANES  # on the copy
    assert rank_path(127, 8, np.float64, simd=True, lanes=True) == RANK_LANES
    assert rank_path(128, 16, np.float64, simd=True, lanes=True) == RANK_SIMD
    assert rank_path(2, 16, np.float64, simd=True, lanes=True) == RANK_LANES
    assert rank_path(1, 12, np.float32, simd=True, lanes=True) == RANK_LANES
    assert rank_path(2, 64, np.float64, simd=True, lanes=True) == RANK_DIRECT  # more than a vector
    assert rank_path(2, 7, np.float64, simd=True, lanes=True) == RANK_DIRECT
    assert rank_path(32, 12, np.float32, simd=True, lanes=True) == RANK_LANES
    assert rank_path(16, 11, np.float32, simd=True, lanes=True) == RANK_EXACT  # float32: the exact GEMM
    assert rank_path(33, 16, np.float32, simd=True, lanes=True) == RANK_EXACT


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d, k", [(1, 16), (2, 8), (3, 16), (16, 16), (32, 12), (5, 1), (17, 7)])
@pytest.mark.parametrize("level", [0, 1, 2])
def test_lanes_kernel_with_ties_matches_reference(monkeypatch, level, d, k, dtype):
    """Every vector level (forced), any centre count up to 16: the reference's labels, ties to the smaller index."""
    if level > kmeans_cython.SIMD_LEVEL:
        pytest.skip("the CPU lacks this vector level")
    monkeypatch.setattr(kmeans_cython, "SIMD_LEVEL", level)
    monkeypatch.setattr(kmeans_cython, "rank_path", lambda *args, **kwargs: RANK_LANES)
    rng = np.random.default_rng(d * 100 + k)
    n = 5 * BLOCK_ROWS + 11
    X = rng.normal(size=(n, d))
    centers = X[rng.choice(n, k, replace=False)].copy()
    if k >= 5:
        centers[4] = centers[1]  # duplicate centre: every row near it is an exact tie
        ties = np.arange(3, n - 1, 19)  # on the bisector of two centres, and a hair off it
        X[ties] = (centers[0] + centers[2]) / 2
        X[ties + 1] = X[ties] * (1 + 1e-7)
    X, centers = X.astype(dtype), centers.astype(dtype)
    ref = run_lloyd("numpy", X, centers, 2)
    single = run_lloyd("cython", X, centers, 1)
    double = run_lloyd("cython", X, centers, 2)
    np.testing.assert_array_equal(double[0], ref[0])
    if k >= 5:
        assert not np.any(double[0] == 4)  # ties go to the smaller index
    np.testing.assert_allclose(double[1], ref[1], rtol=1e-12, atol=1e-12 * np.abs(ref[1]).max())
    np.testing.assert_allclose(double[3], ref[3], rtol=1e-12 if dtype == np.float64 else 1e-6)
    for a, b in zip(single, double):
        np.testing.assert_array_equal(a, b)  # bit for bit on one and two threads


@lru_cache(maxsize=None)
def lanes_case(name):
    """Real data with 3 to 32 features, scikit-learn's fit (one OpenMP thread, 12 or 16 centres)."""
    if name == "breast_cancer_30_features_k12":
        X, k = load_breast_cancer().data, 12
    elif name == "digits_64_features_k10":  # float64 with 33 to 127 features: the fit's float32 copy
        X, k = load_digits().data, 10
    else:
        X, k = load_digits().data[:, 8:24] * 2 + 1, 16  # 16 real pixel features
    with threadpool_limits(limits=1, user_api="openmp"):
        ref = SKKMeans(k, n_init=1, random_state=0).fit(X)
    return X, k, ref


@pytest.mark.parametrize("name", ["breast_cancer_30_features_k12", "digits_16_features_k16",
                                  "digits_64_features_k10"])
@pytest.mark.parametrize("level", [0, 1, 2])
def test_lanes_fit_same_as_sklearn(monkeypatch, level, name):
    if level > kmeans_cython.SIMD_LEVEL:
        pytest.skip("the CPU lacks this vector level")
    X, k, ref = lanes_case(name)
    assert rank_path(X.shape[1], k, np.float64, simd=True, lanes=True) == RANK_LANES
    monkeypatch.setattr(kmeans_cython, "SIMD_LEVEL", level)
    if level < 2:  # the rule picks RANK_LANES with AVX-512 only; the other levels' code, forced
        monkeypatch.setattr(kmeans_cython, "rank_path", lambda *args, **kwargs: RANK_LANES)
    fits = [KMeans(k, n_init=1, random_state=0, backend="cython", n_jobs=n_jobs).fit(X) for n_jobs in (1, 2)]
    ours = fits[1]
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    scale = np.abs(ref.cluster_centers_).max()
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10, atol=1e-10 * scale)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)
    np.testing.assert_array_equal(ours.predict(X[::7]), ref.predict(X[::7]))
    np.testing.assert_array_equal(fits[0].labels_, ours.labels_)
    np.testing.assert_array_equal(fits[0].cluster_centers_, ours.cluster_centers_)
