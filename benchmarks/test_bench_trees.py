"""KD-tree and ball tree: build and query times of each backend against scikit-learn.

- ``test_build`` / ``test_query``: make_blobs with 5 centres, d in {2, 3, 8, 16},
  200k training points and 20k queries, k = 10 ("medium" and "large"; 20k / 2k
  at "small", 2k / 200 at "tiny"), float64; our ``SpatialTree`` on every
  compiled backend (the NumPy reference only at "tiny") against
  ``sklearn.neighbors.KDTree`` / ``BallTree`` with their default leaf size.
  One group per (task, kind, d). Our build and query use ``N_THREADS``
  threads; scikit-learn's trees have no thread parameter (one thread).
- ``test_large_2d``: 1M x 2 build + 100k-query case at "large" (200k / 20k at
  "medium"), KD-tree against ``KDTree``; the time includes the build.
- ``test_build_peak_memory``: MB that the build adds to the peak resident
  memory of a fresh process (:func:`fastscratch._memory.peak_memory_above_inputs_mb`),
  per d (d = 2 only at "tiny"), in ``extra_info["peak_memory_mb"]`` (printed
  with ``-s``).

Numba kernels are compiled before timing (a warm-up call on small data).
"""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.neighbors import BallTree, KDTree

from fastscratch._memory import peak_memory_above_inputs_mb
from fastscratch._sizes import sized
from fastscratch._spatial_tree import SpatialTree
from fastscratch.kernels import available_backends

SIZES = {  # (n_train, n_queries)
    "tiny": (2_000, 200),
    "small": (20_000, 2_000),
    "medium": (200_000, 20_000),
    "large": (200_000, 20_000),
}
LARGE_2D_SIZES = {"tiny": (2_000, 200), "small": (20_000, 2_000), "medium": (200_000, 20_000),
                  "large": (1_000_000, 100_000)}
DIMENSIONS = (2, 3, 8, 16)
KINDS = ("kd_tree", "ball_tree")
K = 10
N_THREADS = 2
SKLEARN_TREES = {"kd_tree": KDTree, "ball_tree": BallTree}
CONTENDERS = [*available_backends(), "sklearn"]


def make_data(n_train, n_queries, n_features):
    X, _ = make_blobs(n_train + n_queries, n_features, centers=5, random_state=0)
    return np.ascontiguousarray(X[:n_train]), np.ascontiguousarray(X[n_train:])


def build(contender, kind, X):
    if contender == "sklearn":
        return SKLEARN_TREES[kind](X)
    return SpatialTree(X, kind, backend=contender, n_threads=N_THREADS)


def query(contender, tree, queries):
    if contender == "sklearn":
        return tree.query(queries, K)
    return tree.query(queries, K, n_threads=N_THREADS)


def _warm_up(contender, kind, n_features):
    if contender != "sklearn":
        X, queries = make_data(500, 20, n_features)
        query(contender, build(contender, kind, X), queries)


def _skip_slow(contender, size):
    if contender == "numpy" and size != "tiny":
        pytest.skip("the NumPy reference is plain recursive Python: tiny size only")


@pytest.fixture(scope="module", params=DIMENSIONS, ids=lambda d: f"d={d}")
def data(request, bench_size):
    return make_data(*sized(SIZES, bench_size), request.param)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("contender", CONTENDERS)
def test_build(benchmark, data, bench_size, kind, contender):
    _skip_slow(contender, bench_size)
    X, _ = data
    _warm_up(contender, kind, X.shape[1])
    benchmark.group = f"tree build {kind} {X.shape[0]} x {X.shape[1]}"
    benchmark.extra_info["contender"] = contender
    benchmark.pedantic(build, args=(contender, kind, X), rounds=3, iterations=1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("contender", CONTENDERS)
def test_query(benchmark, data, bench_size, kind, contender):
    _skip_slow(contender, bench_size)
    X, queries = data
    _warm_up(contender, kind, X.shape[1])
    tree = build(contender, kind, X)
    benchmark.group = f"tree query {kind} {X.shape[0]} x {X.shape[1]}, {queries.shape[0]} queries, k={K}"
    benchmark.extra_info["contender"] = contender
    benchmark.pedantic(query, args=(contender, tree, queries), rounds=3, iterations=1)


def _build_and_query(contender, X, queries):
    return query(contender, build(contender, "kd_tree", X), queries)


@pytest.mark.parametrize("contender", CONTENDERS)
def test_large_2d(benchmark, bench_size, contender):
    _skip_slow(contender, bench_size)
    X, queries = make_data(*sized(LARGE_2D_SIZES, bench_size), 2)
    _warm_up(contender, "kd_tree", 2)
    benchmark.group = f"KD-tree build + query {X.shape[0]} x 2, {queries.shape[0]} queries, k={K}"
    benchmark.extra_info["contender"] = contender
    benchmark.pedantic(_build_and_query, args=(contender, X, queries), rounds=3, iterations=1)


# Peak memory: module-level callables, run in a spawned process.
class _BuildSetup:
    """Picklable setup: the training set of one size and dimension."""

    def __init__(self, size, n_features):
        self.size, self.n_features = size, n_features

    def __call__(self, small):
        n_train = 500 if small else sized(SIZES, self.size)[0]
        return make_data(n_train, 0, self.n_features)[0]


class _BuildRun:
    def __init__(self, contender):
        self.contender = contender

    def __call__(self, X):
        build(self.contender, "kd_tree", X)


@pytest.mark.parametrize("n_features", DIMENSIONS, ids=lambda d: f"d={d}")
@pytest.mark.parametrize("contender", CONTENDERS)
def test_build_peak_memory(benchmark, bench_size, n_features, contender):
    _skip_slow(contender, bench_size)
    if bench_size == "tiny" and n_features != 2:
        pytest.skip("one fresh process per case: the smoke run measures d = 2 only")
    benchmark.group = "KD-tree build peak memory (timing = whole measurement)"
    benchmark.extra_info["contender"] = contender
    peak = benchmark.pedantic(peak_memory_above_inputs_mb,
                              args=(_BuildSetup(bench_size, n_features), _BuildRun(contender)),
                              rounds=1, iterations=1)
    benchmark.extra_info["peak_memory_mb"] = round(peak, 1)
    print(f"\nKD-tree build peak memory above inputs, {contender}, d={n_features}, {bench_size}: "
          f"{peak:.1f} MB")
