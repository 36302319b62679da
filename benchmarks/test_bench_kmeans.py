"""KMeans.fit: each backend vs scikit-learn, same fixed initial centres.

``test_kmeans_fit_shape`` (issue 21): the shapes off that point, low d (500,000 x 2,
8 centres), high d (200,000 x 64, 8 centres; 100,000 x 128, 64 centres; 50,000 x 256,
16 centres) and many
centres (200,000 x 16, 256 centres), float64 and float32, each compiled backend and
scikit-learn in one group per shape. ``test_kmeans_fit_sparse``: CSR 100,000 x 10,000
at 1% density, 20 centres, Lloyd and Elkan. (Tiny sizes: a few thousand rows.)

Default size (issue "K-means"): 1,000,000 x 16 blobs (16 centres, cluster_std=4),
``max_iter=20``, ``tol=0`` (so every run does exactly 20 iterations), float64
and float32, Lloyd; Elkan in float64 as well. The time per iteration,
``extra_info["ms_per_iteration"]``, is the median fit divided by the number of
iterations (so it includes the fit's centring and final E-step). Numba kernels are compiled before
timing (a fit on a small slice of the same dtype).

The lloyd fits of every backend must give scikit-learn's labels (checked in
tests/test_cluster.py); ``extra_info["inertia"]`` lets a reader compare them
here too.
"""

import numpy as np
import pytest
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs

from fastscratch._sizes import sized
from fastscratch import KMeans
from fastscratch.kernels import available_backends

SIZES = {  # (n_samples, n_features, n_clusters)
    "tiny": (20_000, 16, 16),
    "medium": (1_000_000, 16, 16),
    "large": (4_000_000, 16, 16),
}
MAX_ITER = 20
CASES = [("lloyd", np.float64), ("lloyd", np.float32), ("elkan", np.float64)]


@pytest.fixture(scope="module")
def blobs(bench_size):
    n_samples, n_features, n_clusters = sized(SIZES, bench_size)
    X, _ = make_blobs(n_samples, n_features, centers=n_clusters, cluster_std=4.0, random_state=0)
    init = X[np.random.default_rng(0).choice(n_samples, n_clusters, replace=False)]
    return X, init


def _group(X, algorithm, dtype):
    return f"kmeans {algorithm} {X.shape[0]}x{X.shape[1]}-k16-{np.dtype(dtype).name}"


def _run(benchmark, model, X, label, algorithm, dtype):
    benchmark.group = _group(X, algorithm, dtype)
    benchmark.extra_info["backend"] = label
    # One untimed round first for every contender: the first fits of a process pay for fresh
    # memory (page faults on the centred copy both libraries make), later ones do not.
    fitted = benchmark.pedantic(model.fit, args=(X,), rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["n_iter"] = int(fitted.n_iter_)
    benchmark.extra_info["inertia"] = float(fitted.inertia_)
    if benchmark.stats is not None:  # (None under --benchmark-disable)
        median = benchmark.stats.stats.median
        benchmark.extra_info["ms_per_iteration"] = round(1e3 * median / fitted.n_iter_, 2)


@pytest.mark.parametrize("algorithm, dtype", CASES, ids=[f"{a}-{np.dtype(d).name}" for a, d in CASES])
@pytest.mark.parametrize("backend", available_backends())
def test_kmeans_fit(benchmark, blobs, bench_size, backend, algorithm, dtype):
    if backend == "numpy" and algorithm == "elkan" and bench_size != "tiny":
        pytest.skip("the NumPy reference Elkan computes every distance (minutes at this size)")
    X, init = blobs
    X, init = X.astype(dtype), init.astype(dtype)
    model = KMeans(init.shape[0], init=init, max_iter=MAX_ITER, tol=0, algorithm=algorithm, backend=backend)
    model.fit(X[:2048])  # compile (Numba) / load the kernels before timing
    _run(benchmark, model, X, backend, algorithm, dtype)


@pytest.mark.parametrize("algorithm, dtype", CASES, ids=[f"{a}-{np.dtype(d).name}" for a, d in CASES])
def test_kmeans_fit_sklearn(benchmark, blobs, algorithm, dtype):
    X, init = blobs
    X, init = X.astype(dtype), init.astype(dtype)
    model = SKKMeans(init.shape[0], init=init, n_init=1, max_iter=MAX_ITER, tol=0, algorithm=algorithm)
    _run(benchmark, model, X, "sklearn KMeans", algorithm, dtype)


# Shapes off the benchmark point (issue 21), each against scikit-learn in the same run.
SHAPES = {  # name -> size -> (n_samples, n_features, n_clusters)
    "low-d": {"tiny": (20_000, 2, 8), "medium": (500_000, 2, 8)},
    "high-d": {"tiny": (5_000, 64, 8), "medium": (200_000, 64, 8)},
    "high-d-many-centres": {"tiny": (3_000, 128, 64), "medium": (100_000, 128, 64)},
    "many-centres": {"tiny": (3_000, 16, 256), "medium": (200_000, 16, 256)},
    "very-high-d": {"tiny": (3_000, 256, 16), "medium": (50_000, 256, 16)},  # float64: RANK_SIMD
}
SHAPE_CONTENDERS = [b for b in available_backends() if b != "numpy"] + ["sklearn"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("contender", SHAPE_CONTENDERS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_kmeans_fit_shape(benchmark, bench_size, shape, contender, dtype):
    n_samples, n_features, n_clusters = sized(SHAPES[shape], bench_size)
    X, _ = make_blobs(n_samples, n_features, centers=n_clusters, cluster_std=4.0, random_state=0)
    X = X.astype(dtype)
    init = X[np.random.default_rng(0).choice(n_samples, n_clusters, replace=False)]
    if contender == "sklearn":
        model = SKKMeans(n_clusters, init=init, n_init=1, max_iter=MAX_ITER, tol=0)
    else:
        model = KMeans(n_clusters, init=init, max_iter=MAX_ITER, tol=0, backend=contender)
        model.fit(X[:2048])  # compile (Numba) / load the kernels before timing
    benchmark.group = f"kmeans {shape} lloyd {n_samples}x{n_features}-k{n_clusters}-{np.dtype(dtype).name}"
    benchmark.extra_info["backend"] = contender
    fitted = benchmark.pedantic(model.fit, args=(X,), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["n_iter"] = int(fitted.n_iter_)
    benchmark.extra_info["inertia"] = float(fitted.inertia_)


# CSR input, about 1% of the entries stored (as a bag of words), both algorithms.
SPARSE_SIZES = {"tiny": (2_000, 1_000, 10), "medium": (100_000, 10_000, 20)}
SPARSE_DENSITY = 0.01


@pytest.fixture(scope="module")
def sparse_data(bench_size):
    import scipy.sparse as sp

    n_samples, n_features, n_clusters = sized(SPARSE_SIZES, bench_size)
    rng = np.random.default_rng(0)
    X = sp.random(n_samples, n_features, density=SPARSE_DENSITY, format="csr", random_state=0,
                  data_rvs=lambda size: rng.uniform(0.0, 3.0, size))
    init = X[rng.choice(n_samples, n_clusters, replace=False)].toarray()
    return X, init


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize("contender", available_backends() + ["sklearn"])
def test_kmeans_fit_sparse(benchmark, bench_size, sparse_data, contender, algorithm):
    if contender == "numpy" and bench_size != "tiny":
        pytest.skip("the NumPy reference builds n x k matrices (minutes at this size)")
    X, init = sparse_data
    if contender == "sklearn":
        model = SKKMeans(init.shape[0], init=init, n_init=1, max_iter=MAX_ITER, tol=0, algorithm=algorithm)
    else:
        model = KMeans(init.shape[0], init=init, max_iter=MAX_ITER, tol=0, algorithm=algorithm,
                       backend=contender)
        model.fit(X[:512])  # compile (Numba) / load the kernels before timing
    benchmark.group = (f"kmeans sparse {algorithm} CSR {X.shape[0]}x{X.shape[1]} "
                       f"{SPARSE_DENSITY:.0%}-k{init.shape[0]}-float64")
    benchmark.extra_info["backend"] = contender
    fitted = benchmark.pedantic(model.fit, args=(X,), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["n_iter"] = int(fitted.n_iter_)
    benchmark.extra_info["inertia"] = float(fitted.inertia_)


# The speed sweep of fastscratch/compare/sweeps.py: ours (backend="auto") and the reference at
# every point, one axis varied at a time (benchmarks/conftest.py builds the cases). Each case
# starts after KMEANS_SETTLE_S of idle time, ours and the reference alike, so that neither is
# timed beside the other library's OpenMP threads still spin-waiting (see sweeps.py).
SWEEP_FAMILIES = ("kmeans",)


def test_sweep(benchmark, sweep_case):
    sweep_case.run(benchmark)
