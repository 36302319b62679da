"""KMeans on CSR input against scikit-learn, and the sparse k-means kernels against the NumPy reference."""

from functools import lru_cache

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

from fastscratch import KMeans
from fastscratch.kernels import get_kernel

# Centres and inertia relative to scikit-learn (float64 sums here, input-dtype sums there).
RTOL = {np.float64: 1e-10, np.float32: 1e-5}


def newsgroups_like(n_samples=1000, n_features=3000, density=0.01, seed=0):
    """Random tf-idf-like CSR: skewed word frequencies, positive counts, rows scaled to unit norm."""
    rng = np.random.default_rng(seed)
    word_probability = 1.0 / np.arange(1, n_features + 1) ** 0.8  # Zipf-like vocabulary
    word_probability /= word_probability.sum()
    lengths = rng.poisson(density * n_features, n_samples) + 1
    rows, cols = [], []
    for i, length in enumerate(lengths):
        words = np.unique(rng.choice(n_features, size=length, p=word_probability))
        rows.append(np.full(words.size, i))
        cols.append(rng.permutation(words))  # unsorted indices, as CSR allows
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    values = np.log1p(rng.poisson(2.0, rows.size) + 1.0) * np.log(n_features / (1.0 + cols))
    X = sp.csr_matrix((values, (rows, cols)), shape=(n_samples, n_features))
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / norms) @ X)


@lru_cache(maxsize=None)
def dataset(name):
    if name == "digits":
        return sp.csr_matrix(load_digits().data), 10
    return newsgroups_like(), 20


def sk_fit(model, X, sample_weight=None):
    """scikit-learn on one OpenMP thread (its sums are then added in a fixed order)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.fit(X, sample_weight=sample_weight)


@lru_cache(maxsize=None)
def sklearn_fit(name, dtype, algorithm, weighted):
    X, k = dataset(name)
    X = X.astype(dtype)
    weights = np.random.default_rng(1).uniform(0.1, 3.0, X.shape[0]) if weighted else None
    model = sk_fit(SKKMeans(k, n_init=1, random_state=0, algorithm=algorithm), X, weights)
    return X, k, weights, model


def assert_same_fit(ours, ref, dtype):
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    scale = np.abs(ref.cluster_centers_).max()
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * scale)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=RTOL[dtype])


@pytest.mark.parametrize("name", ["digits", "newsgroups_like"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize("weighted", [False, True])
def test_csr_same_as_sklearn_kmeans_plusplus(backend, name, dtype, algorithm, weighted):
    """k-means++ from the same seed, then Lloyd or Elkan: scikit-learn's labels and n_iter."""
    X, k, weights, ref = sklearn_fit(name, dtype, algorithm, weighted)
    ours = KMeans(k, n_init=1, random_state=0, algorithm=algorithm, backend=backend).fit(
        X, sample_weight=weights)
    assert_same_fit(ours, ref, dtype)
    assert ours.cluster_centers_.dtype == dtype
    assert ours.backend_ == backend


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_csr_predict_transform_score_match_sklearn(backend, algorithm):
    X, k, _, ref = sklearn_fit("newsgroups_like", np.float64, algorithm, False)
    ours = KMeans(k, n_init=1, random_state=0, algorithm=algorithm, backend=backend).fit(X)
    X_new = newsgroups_like(n_samples=300, seed=5)
    np.testing.assert_array_equal(ours.predict(X_new), ref.predict(X_new))
    np.testing.assert_allclose(ours.transform(X_new), ref.transform(X_new), rtol=1e-9, atol=1e-12)
    assert ours.score(X_new) == pytest.approx(ref.score(X_new), rel=1e-10)
    # A CSR matrix and its dense copy give the same predictions.
    np.testing.assert_array_equal(ours.predict(X_new), ours.predict(X_new.toarray()))
    np.testing.assert_allclose(ours.fit_transform(X), ref.transform(X), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_csr_empty_cluster_relocated_as_sklearn(backend, algorithm):
    X, _ = dataset("digits")
    init = np.vstack([X[:4].toarray(), np.full((2, X.shape[1]), 100.0)])  # two start empty
    ref = sk_fit(SKKMeans(6, init=init, n_init=1, algorithm=algorithm), X)
    ours = KMeans(6, init=init, algorithm=algorithm, backend=backend).fit(X)
    assert_same_fit(ours, ref, np.float64)
    assert np.unique(ours.labels_).size == 6


@pytest.mark.parametrize("broken", ["column too large", "negative column", "decreasing indptr"])
def test_broken_csr_structure_is_a_clear_error(backend, broken):
    """SciPy builds a CSR from its arrays unchecked: an index out of range must be a ValueError
    naming X at fit and at predict, before any kernel reads it (never a wrong answer)."""
    good = sp.random(60, 8, density=0.3, format="csr", random_state=0)
    bad = good.copy()
    indices, indptr = bad.indices.copy(), bad.indptr.copy()
    if broken == "column too large":
        indices[3] = 1000
    elif broken == "negative column":
        indices[3] = -2
    else:
        indptr[5], indptr[6] = indptr[6], indptr[5] - 1
    bad.indices, bad.indptr = indices, indptr
    with pytest.raises(ValueError, match=r"^X \(a CSR matrix"):
        KMeans(3, n_init=1, random_state=0, backend=backend).fit(bad)
    model = KMeans(3, n_init=1, random_state=0, backend=backend).fit(good)
    for method in (model.predict, model.transform, model.score):
        with pytest.raises(ValueError, match=r"^X \(a CSR matrix"):
            method(bad)


def test_csr_random_init_and_n_init_as_sklearn(backend):
    X, k = dataset("digits")
    ref = sk_fit(SKKMeans(k, init="random", n_init=3, random_state=4), X)
    ours = KMeans(k, init="random", n_init=3, random_state=4, backend=backend).fit(X)
    assert_same_fit(ours, ref, np.float64)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_csr_never_densified(backend, algorithm):
    """A CSR matrix whose dense copy would take 40 GB fits (and predicts) in memory."""
    rng = np.random.default_rng(3)
    n_samples, n_features = 5_000, 1_000_000
    nnz = 5 * n_samples
    X = sp.csr_matrix((rng.uniform(0.5, 1.5, nnz), (rng.integers(0, n_samples, nnz),
                                                     rng.integers(0, n_features, nnz))),
                      shape=(n_samples, n_features))
    model = KMeans(2, max_iter=3, random_state=0, algorithm=algorithm, backend=backend).fit(X)
    assert model.labels_.shape == (n_samples,)
    np.testing.assert_array_equal(model.predict(X[:100]), model.labels_[:100])


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_csr_one_and_two_threads_identical(optimised_backend, algorithm):
    X, k = dataset("newsgroups_like")
    fits = [KMeans(k, random_state=0, algorithm=algorithm, backend=optimised_backend,
                   n_jobs=n).fit(X) for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].labels_, fits[1].labels_)
    np.testing.assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    assert fits[0].inertia_ == fits[1].inertia_


# ----------------------------------------------------------------- kernels
def sparse_inputs(n, d, k, dtype, density=0.05, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float64,
                  data_rvs=lambda size: rng.normal(size=size)).astype(dtype)
    X[3] = 0  # an empty row
    X.eliminate_zeros()
    centers = rng.normal(scale=0.3, size=(k, d)).astype(dtype)
    weights = rng.uniform(0.5, 2.0, n).astype(dtype)
    return (X.data, X.indices.astype(np.intp), X.indptr.astype(np.intp)), weights, centers


SPARSE_SHAPES = [(7, 1, 1), (300, 20, 3), (1000, 300, 17), (600, 50, 64)]


def run_sparse_lloyd(backend, arrays, weights, centers, labels_in, n_threads=2):
    k, d = centers.shape
    labels = labels_in.copy()
    sums, cluster_weights = np.empty((k, d)), np.empty(k)
    inertia, n_changed = np.empty(1), np.empty(1, dtype=np.intp)
    get_kernel("kmeans_sparse_lloyd_iter", backend)(
        *arrays, weights, centers, np.ascontiguousarray(centers.T),
        np.einsum("ij,ij->i", centers, centers), True, labels, sums, cluster_weights, inertia,
        n_changed, n_threads)
    return labels, sums, cluster_weights, inertia[0], n_changed[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SPARSE_SHAPES)
def test_sparse_lloyd_kernel_matches_reference(optimised_backend, dtype, shape):
    arrays, weights, centers = sparse_inputs(*shape, dtype)
    labels_in = np.random.default_rng(1).integers(-1, shape[2], shape[0]).astype(np.intp)
    ref = run_sparse_lloyd("numpy", arrays, weights, centers, labels_in)
    for n_threads in (1, 2):
        got = run_sparse_lloyd(optimised_backend, arrays, weights, centers, labels_in, n_threads)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])  # same float64 sums, same order
        np.testing.assert_array_equal(got[2], ref[2])
        assert got[3] == pytest.approx(ref[3], rel=1e-12)
        assert got[4] == ref[4]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_lloyd_labels_are_sklearn_scan(backend, dtype):
    """The labels are the first minimum of ||c_j||^2 - 2 x.c_j computed as scikit-learn does."""
    from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_sparse

    arrays, weights, centers = sparse_inputs(2000, 40, 9, dtype, density=0.2)
    centers[4] = centers[2]  # exact ties: to the smaller index
    X = sp.csr_matrix((arrays[0], arrays[1].astype(np.int32), arrays[2].astype(np.int32)),
                      shape=(2000, 40))
    expected = np.empty(2000, dtype=np.int32)
    lloyd_iter_chunked_sparse(X, weights, centers, None, None, expected, None, 1,
                              update_centers=False)
    labels = run_sparse_lloyd(backend, arrays, weights, centers, np.full(2000, -1, np.intp))[0]
    np.testing.assert_array_equal(labels, expected)
    assert not np.any(labels == 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SPARSE_SHAPES)
def test_sparse_elkan_and_distance_kernels_match_reference(optimised_backend, dtype, shape):
    from fastscratch.cluster import KMeans as _K

    arrays, weights, centers = sparse_inputs(*shape, dtype)
    n, _, k = shape
    norms = np.einsum("ij,ij->i", centers, centers)
    half, next_center = _K._half_distances(centers)
    shift = np.random.default_rng(2).uniform(0, 0.05, k).astype(dtype)
    results = {}
    for backend in ("numpy", optimised_backend):
        labels, upper, lower = np.empty(n, dtype=np.intp), np.empty(n, dtype=dtype), np.zeros((n, k), dtype)
        get_kernel("kmeans_sparse_elkan_init", backend)(*arrays, centers, norms, half, labels, upper,
                                                        lower, 2)
        init = (labels.copy(), upper.copy(), lower.copy())
        sums, cluster_weights = np.empty((k, shape[1])), np.empty(k)
        moved = centers + np.asarray(shift[:, None] / np.sqrt(shape[1]), dtype=dtype)
        moved_half, moved_next = _K._half_distances(moved)
        get_kernel("kmeans_sparse_elkan_iter", backend)(
            *arrays, weights, moved, np.einsum("ij,ij->i", moved, moved), moved_half, moved_next,
            shift, labels, upper, lower, sums, cluster_weights, 2)
        distances = np.empty(n, dtype=dtype)
        get_kernel("kmeans_sparse_sq_distances", backend)(*arrays, centers, norms, labels, distances, 2)
        results[backend] = init + (labels, upper, lower, sums, cluster_weights, distances)
    for ref, got in zip(results["numpy"], results[optimised_backend]):
        np.testing.assert_array_equal(got, ref)  # same arithmetic in the same order: the same bits
