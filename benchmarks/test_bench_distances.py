"""sqeuclidean_topk: each backend vs scikit-learn's brute-force neighbours.

Default size (issue "Foundation"): 100k x 32 float32 reference points, 5k
queries, k = 10. Numba kernels are compiled (and the Cython ones loaded)
before timing.
"""

import numpy as np
import pytest
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.neighbors import NearestNeighbors

from fastscratch._sizes import sized
from fastscratch.kernels import available_backends, get_kernel

SIZES = {  # (n_reference, n_queries, n_features, k)
    "tiny": (2_000, 200, 32, 10),
    "medium": (100_000, 5_000, 32, 10),
    "large": (1_000_000, 20_000, 32, 10),
}


@pytest.fixture(scope="module")
def data(bench_size):
    n_reference, n_queries, n_features, k = sized(SIZES, bench_size)
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((n_reference, n_features), dtype=np.float32)
    queries = rng.standard_normal((n_queries, n_features), dtype=np.float32)
    return queries, reference, k


def _shape_name(data):
    queries, reference, k = data
    return f"{reference.shape[0]}x{reference.shape[1]}-q{queries.shape[0]}-k{k}-float32"


@pytest.mark.parametrize("backend", available_backends())
def test_topk(benchmark, data, backend):
    queries, reference, k = data
    kernel = get_kernel("sqeuclidean_topk", backend)
    distances = np.empty((queries.shape[0], k), dtype=queries.dtype)
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    kernel(queries[:8], reference[:64], distances[:8], indices[:8], 2)  # compile / warm up
    benchmark.group = "sqeuclidean_topk " + _shape_name(data)
    benchmark.extra_info["backend"] = backend
    benchmark.pedantic(kernel, args=(queries, reference, distances, indices, 2),
                       rounds=3, iterations=1, warmup_rounds=0)


def test_topk_sklearn_nearest_neighbors(benchmark, data):
    queries, reference, k = data
    model = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    benchmark.group = "sqeuclidean_topk " + _shape_name(data)
    benchmark.extra_info["backend"] = "sklearn NearestNeighbors(brute)"
    benchmark.pedantic(model.kneighbors, args=(queries,), rounds=3, iterations=1)


@pytest.mark.parametrize("backend", available_backends())
def test_argmin(benchmark, data, backend):
    queries, reference, _ = data
    # k-means shape: many points, few centres.
    points, centres = reference, queries[:16]
    kernel = get_kernel("sqeuclidean_argmin", backend)
    distances = np.empty(points.shape[0], dtype=points.dtype)
    indices = np.empty(points.shape[0], dtype=np.intp)
    kernel(points[:64], centres, distances[:64], indices[:64], 2)
    benchmark.group = f"sqeuclidean_argmin {points.shape[0]}x{points.shape[1]}-c16-float32"
    benchmark.extra_info["backend"] = backend
    benchmark.pedantic(kernel, args=(points, centres, distances, indices, 2), rounds=5, iterations=1)


def test_argmin_sklearn(benchmark, data):
    queries, reference, _ = data
    points, centres = reference, queries[:16]
    benchmark.group = f"sqeuclidean_argmin {points.shape[0]}x{points.shape[1]}-c16-float32"
    benchmark.extra_info["backend"] = "sklearn pairwise_distances_argmin_min"
    benchmark.pedantic(pairwise_distances_argmin_min, args=(points, centres), rounds=5, iterations=1)


# Cosine (GEMM + heap, like sqeuclidean_topk) and Manhattan (direct sums: no GEMM,
# so a smaller shape) top-k, each against scikit-learn's brute force.
OTHER_SIZES = {  # (n_reference, n_queries, n_features, k)
    "tiny": (2_000, 200, 32, 10),
    "medium": (20_000, 2_000, 32, 10),
    "large": (100_000, 5_000, 32, 10),
}


@pytest.fixture(scope="module")
def other_data(bench_size):
    n_reference, n_queries, n_features, k = sized(OTHER_SIZES, bench_size)
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((n_reference, n_features), dtype=np.float32)
    queries = rng.standard_normal((n_queries, n_features), dtype=np.float32)
    return queries, reference, k


@pytest.mark.parametrize("metric", ["cosine", "manhattan"])
@pytest.mark.parametrize("backend", available_backends())
def test_other_metric_topk(benchmark, data, other_data, backend, metric):
    queries, reference, k = data if metric == "cosine" else other_data
    kernel = get_kernel(f"{metric}_topk", backend)
    distances = np.empty((queries.shape[0], k), dtype=queries.dtype)
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    kernel(queries[:8], reference[:64], distances[:8], indices[:8], 2)  # compile / warm up
    benchmark.group = f"{metric}_topk " + _shape_name((queries, reference, k))
    benchmark.extra_info["backend"] = backend
    rounds = 1 if backend == "numpy" else 3
    benchmark.pedantic(kernel, args=(queries, reference, distances, indices, 2),
                       rounds=rounds, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("metric", ["cosine", "manhattan"])
def test_other_metric_topk_sklearn(benchmark, data, other_data, metric):
    queries, reference, k = data if metric == "cosine" else other_data
    model = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(reference)
    benchmark.group = f"{metric}_topk " + _shape_name((queries, reference, k))
    benchmark.extra_info["backend"] = f"sklearn NearestNeighbors(brute, {metric})"
    benchmark.pedantic(model.kneighbors, args=(queries,), rounds=3, iterations=1)


# Sparse (CSR) top-k: the reference set stays sparse; scikit-learn's brute force on the
# same CSR matrices. Text-like data: a fixed density of non-negative values.
SPARSE_SIZES = {  # (n_reference, n_queries, n_features, density, k)
    "tiny": (2_000, 100, 500, 0.01, 10),
    "medium": (20_000, 500, 2_000, 0.01, 10),
    "large": (100_000, 2_000, 20_000, 0.005, 10),
}
SPARSE_METRICS = ["sqeuclidean", "manhattan", "cosine"]


@pytest.fixture(scope="module")
def sparse_data(bench_size):
    import scipy.sparse as sp

    n_reference, n_queries, n_features, density, k = sized(SPARSE_SIZES, bench_size)
    rng = np.random.default_rng(2)
    reference = sp.random(n_reference, n_features, density=density, format="csr", random_state=rng)
    queries = sp.random(n_queries, n_features, density=density, format="csr", random_state=rng)
    return queries, reference, k


def _sparse_group(metric, data):
    queries, reference, k = data
    return (f"sparse_{metric}_topk CSR {reference.shape[0]}x{reference.shape[1]} "
            f"density {reference.nnz / np.prod(reference.shape):.3g}-q{queries.shape[0]}-k{k}-float64")


@pytest.mark.parametrize("metric", SPARSE_METRICS)
@pytest.mark.parametrize("backend", available_backends())
def test_sparse_topk(benchmark, sparse_data, backend, metric):
    queries, reference, k = sparse_data
    kernel = get_kernel(f"sparse_{metric}_topk", backend)
    query_arrays, first_queries = (_csr_arrays(m) for m in (queries, queries[:2]))
    reference_arrays = _csr_arrays(reference) + _csr_arrays(reference.T.tocsr())  # CSR and CSC
    distances = np.empty((queries.shape[0], k))
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    kernel(*first_queries, *reference_arrays, distances[:2], indices[:2], 2)  # compile / warm up
    benchmark.group = _sparse_group(metric, sparse_data)
    benchmark.extra_info["backend"] = backend
    rounds = 1 if backend == "numpy" else 3
    benchmark.pedantic(kernel, args=(*query_arrays, *reference_arrays, distances, indices, 2),
                       rounds=rounds, iterations=1, warmup_rounds=0)


def _csr_arrays(matrix):
    matrix = matrix.tocsr()
    matrix.sort_indices()
    return matrix.data, matrix.indices.astype(np.intp), matrix.indptr.astype(np.intp)


@pytest.mark.parametrize("metric", SPARSE_METRICS)
def test_sparse_topk_sklearn(benchmark, sparse_data, metric):
    queries, reference, k = sparse_data
    # scikit-learn has no sparse "sqeuclidean": its euclidean search ranks the same way.
    model = NearestNeighbors(n_neighbors=k, algorithm="brute",
                             metric="euclidean" if metric == "sqeuclidean" else metric).fit(reference)
    benchmark.group = _sparse_group(metric, sparse_data)
    benchmark.extra_info["backend"] = "sklearn NearestNeighbors(brute) on CSR"
    benchmark.pedantic(model.kneighbors, args=(queries,), rounds=3, iterations=1)


# sqeuclidean_topk_ranked: the SIZES data in float64, ranked in float32 with the certificate of
# distances_numpy.ranking_margins, against the float64 kernel and scikit-learn in one group.
@pytest.fixture(scope="module")
def ranked_data(data):
    from fastscratch.kernels.distances_numpy import ranking_margins

    queries32, reference32, k = data
    queries, reference = queries32.astype(np.float64), reference32.astype(np.float64)
    mean = reference.mean(axis=0)
    centred_reference, centred_queries = reference - mean, queries - mean
    margins = ranking_margins(np.linalg.norm(centred_queries, axis=1),
                              np.linalg.norm(centred_reference, axis=1).max(), queries.shape[1])
    return (queries, reference, centred_queries.astype(np.float32), centred_reference.astype(np.float32),
            margins, k)


def _ranked_group(data):
    return "sqeuclidean_topk float64 data " + _shape_name(data).replace("float32", "float64")


@pytest.mark.parametrize("backend", available_backends())
def test_ranked_topk(benchmark, data, ranked_data, backend):
    queries, reference, ranking_queries, ranking_reference, margins, k = ranked_data
    kernel = get_kernel("sqeuclidean_topk_ranked", backend)
    distances = np.empty((queries.shape[0], k))
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    certified = np.empty(queries.shape[0], dtype=np.uint8)
    kernel(queries[:8], reference[:64], ranking_queries[:8], ranking_reference[:64], margins[:8],
           distances[:8], indices[:8], certified[:8], 2)  # compile / warm up
    benchmark.group = _ranked_group(data)
    benchmark.extra_info["backend"] = f"{backend} ranked in float32"
    benchmark.pedantic(kernel, args=(queries, reference, ranking_queries, ranking_reference, margins,
                                     distances, indices, certified, 2),
                       rounds=1 if backend == "numpy" else 3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["certified_fraction"] = float(certified.mean())


@pytest.mark.parametrize("backend", [b for b in available_backends() if b != "numpy"])
def test_ranked_topk_float64_kernel(benchmark, data, ranked_data, backend):
    queries, reference, _, _, _, k = ranked_data
    kernel = get_kernel("sqeuclidean_topk", backend)
    distances = np.empty((queries.shape[0], k))
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    kernel(queries[:8], reference[:64], distances[:8], indices[:8], 2)
    benchmark.group = _ranked_group(data)
    benchmark.extra_info["backend"] = f"{backend} float64 kernel"
    benchmark.pedantic(kernel, args=(queries, reference, distances, indices, 2), rounds=3, iterations=1)


def test_ranked_topk_sklearn(benchmark, data, ranked_data):
    queries, reference, _, _, _, k = ranked_data
    model = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    benchmark.group = _ranked_group(data)
    benchmark.extra_info["backend"] = "sklearn NearestNeighbors(brute), float64"
    benchmark.pedantic(model.kneighbors, args=(queries,), rounds=3, iterations=1)
