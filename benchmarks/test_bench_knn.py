"""KNeighborsClassifier fit + predict against scikit-learn.

Three parts:

- ``test_fit_predict*``: brute force on every backend vs scikit-learn's brute
  force. Issue size ("medium" and "large"): 200k x 32 float32 training points,
  20k queries, k = 10. ``faiss.IndexFlatL2`` (plus a majority vote) is a
  second reference when faiss-cpu is installed; it runs in its own spawned
  process, because importing faiss in this process changes scikit-learn's
  OpenMP threading.
- ``test_d_sweep``: the dimension sweep of issue 17: make_blobs with 5 centres,
  d in {2, 3, 8, 16, 32, 64}, k = 10, float32 and float64, our
  ``algorithm="auto"`` and our brute force against
  ``sklearn.neighbors.KNeighborsClassifier()`` with its DEFAULT algorithm, one
  group per (d, dtype). 200k training points and 20k queries at "large"
  (the issue's size), 50k / 5k at "medium", 2k / 200 at "tiny". The rule of
  ``neighbors.auto_algorithm`` comes from these groups.
- ``test_low_dimension_large``: 1M x 2 with 100k queries at "large" (200k / 20k
  at "medium"), auto vs scikit-learn's default; ``test_fit_peak_memory``
  records the MB that fit (the tree build) adds to the peak at that size.

Numba kernels are compiled before timing. ``test_peak_memory`` records, for
each contender, the MB that fit + predict add to the peak resident memory of a
fresh process (:func:`fastscratch._memory.peak_memory_above_inputs_mb`), in
``extra_info["peak_memory_mb"]`` (and prints it with ``-s``).
"""

import importlib.util
import multiprocessing

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier as SklearnKNeighborsClassifier

from fastscratch._sizes import sized
from fastscratch._memory import peak_memory_above_inputs_mb
from fastscratch.kernels import available_backends
from fastscratch.neighbors import KNeighborsClassifier

SIZES = {  # (n_train, n_queries, n_features, k)
    "tiny": (2_000, 200, 32, 10),
    "medium": (200_000, 20_000, 32, 10),
    "large": (200_000, 20_000, 32, 10),
}
N_CLASSES = 5
N_THREADS = 2
HAS_FAISS = importlib.util.find_spec("faiss") is not None


def make_data(size):
    n_train, n_queries, n_features, k = sized(SIZES, size)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_train, n_features), dtype=np.float32)
    # Labels that depend on the features, so the vote means something.
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], np.linspace(-1.5, 1.5, N_CLASSES - 1))
    queries = rng.standard_normal((n_queries, n_features), dtype=np.float32)
    return X, y, queries, k


@pytest.fixture(scope="module")
def data(bench_size):
    return make_data(bench_size)


def _group(data):
    X, _, queries, k = data
    return f"KNeighborsClassifier brute fit+predict {X.shape[0]}x{X.shape[1]}-q{queries.shape[0]}-k{k}-float32"


def fit_predict_ours(X, y, queries, k, backend, algorithm="brute"):
    model = KNeighborsClassifier(n_neighbors=k, algorithm=algorithm, backend=backend, n_jobs=N_THREADS)
    return model.fit(X, y).predict(queries)


def fit_predict_sklearn(X, y, queries, k):
    model = SklearnKNeighborsClassifier(n_neighbors=k, algorithm="brute", n_jobs=N_THREADS)
    return model.fit(X, y).predict(queries)


def fit_predict_faiss(X, y, queries, k):
    import faiss

    index = faiss.IndexFlatL2(X.shape[1])
    index.add(X)
    _, indices = index.search(queries, k)
    votes = np.zeros((queries.shape[0], N_CLASSES))
    rows = np.arange(queries.shape[0])
    for column in y[indices].T:
        votes[rows, column] += 1
    return np.argmax(votes, axis=1)


@pytest.mark.parametrize("backend", available_backends())
def test_fit_predict(benchmark, data, backend):
    X, y, queries, k = data
    fit_predict_ours(X[:500], y[:500], queries[:50], k, backend)  # compile / warm up
    benchmark.group = _group(data)
    benchmark.extra_info["backend"] = backend
    rounds = 1 if backend == "numpy" and X.shape[0] > 10_000 else 3
    benchmark.pedantic(fit_predict_ours, args=(X, y, queries, k, backend),
                       rounds=rounds, iterations=1, warmup_rounds=0)


def test_fit_predict_sklearn(benchmark, data):
    X, y, queries, k = data
    benchmark.group = _group(data)
    benchmark.extra_info["backend"] = "sklearn KNeighborsClassifier(brute)"
    benchmark.pedantic(fit_predict_sklearn, args=(X, y, queries, k), rounds=3, iterations=1)


def _faiss_worker(connection, size):
    """Spawned process: imports faiss, builds the data, runs fit+predict on request."""
    import faiss

    faiss.omp_set_num_threads(N_THREADS)
    X, y, queries, k = make_data(size)
    fit_predict_faiss(X[:500], y[:500], queries[:50], k)
    connection.send("ready")
    while connection.recv():
        connection.send(fit_predict_faiss(X, y, queries, k).shape)


@pytest.mark.skipif(not HAS_FAISS, reason="faiss-cpu is not installed")
def test_fit_predict_faiss(benchmark, data, bench_size):
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    worker = context.Process(target=_faiss_worker, args=(child, bench_size))
    worker.start()
    try:
        assert parent.recv() == "ready"

        def run():
            parent.send(True)
            return parent.recv()

        benchmark.group = _group(data)
        benchmark.extra_info["backend"] = "faiss IndexFlatL2 + vote (separate process)"
        benchmark.pedantic(run, rounds=3, iterations=1)
    finally:
        parent.send(False)
        worker.join()


# Peak memory: module-level callables, run in a spawned process.
def _memory_run_cython(inputs):
    fit_predict_ours(*inputs, "cython")


def _memory_run_numba(inputs):
    fit_predict_ours(*inputs, "numba")


def _memory_run_numpy(inputs):
    fit_predict_ours(*inputs, "numpy")


def _memory_run_sklearn(inputs):
    fit_predict_sklearn(*inputs)


class _SizedSetup:
    """Picklable setup bound to a benchmark size."""

    def __init__(self, size):
        self.size = size

    def __call__(self, small):
        return make_data("tiny" if small else self.size)


@pytest.mark.parametrize("contender", [*available_backends(), "sklearn"])
def test_peak_memory(benchmark, bench_size, contender):
    if contender == "numpy" and bench_size != "tiny":
        pytest.skip("the NumPy reference holds a (chunk x n) float64 matrix by design")
    run = {"cython": _memory_run_cython, "numba": _memory_run_numba, "numpy": _memory_run_numpy,
           "sklearn": _memory_run_sklearn}[contender]
    benchmark.group = "KNeighborsClassifier fit+predict peak memory (timing = whole measurement)"
    benchmark.extra_info["backend"] = contender
    peak = benchmark.pedantic(peak_memory_above_inputs_mb, args=(_SizedSetup(bench_size), run),
                              rounds=1, iterations=1)
    benchmark.extra_info["peak_memory_mb"] = round(peak, 1)
    print(f"\npeak memory above inputs, {contender}, {bench_size}: {peak:.1f} MB")


# ------------------------------------------------------------------ dimension sweep (issue 17)
SWEEP_DIMENSIONS = (2, 3, 8, 16, 32, 64)
SWEEP_SIZES = {  # (n_train, n_queries)
    "tiny": (2_000, 200),
    "medium": (50_000, 5_000),
    "large": (200_000, 20_000),
}
SWEEP_K = 10
SWEEP_CONTENDERS = ("auto", "brute", "sklearn")


def make_blobs_data(n_train, n_queries, n_features, dtype):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n_train + n_queries, n_features=n_features, centers=5, random_state=0)
    X = X.astype(dtype)
    return X[:n_train], y[:n_train], X[n_train:]


def fit_predict_sklearn_default(X, y, queries, k):
    return SklearnKNeighborsClassifier(n_neighbors=k, n_jobs=N_THREADS).fit(X, y).predict(queries)


def _run_contender(contender, X, y, queries, k):
    if contender == "sklearn":
        return fit_predict_sklearn_default(X, y, queries, k)
    return fit_predict_ours(X, y, queries, k, "auto", algorithm=contender)


@pytest.mark.parametrize("contender", SWEEP_CONTENDERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("n_features", SWEEP_DIMENSIONS)
def test_d_sweep(benchmark, bench_size, n_features, dtype, contender):
    n_train, n_queries = sized(SWEEP_SIZES, bench_size)
    X, y, queries = make_blobs_data(n_train, n_queries, n_features, dtype)
    _run_contender(contender, X[:1000], y[:1000], queries[:50], SWEEP_K)  # compile / warm up
    benchmark.group = (f"KNN d-sweep d={n_features} {np.dtype(dtype).name} "
                       f"{n_train}x{n_features}-q{n_queries}-k{SWEEP_K}")
    benchmark.extra_info["contender"] = ("scikit-learn KNeighborsClassifier() default" if contender == "sklearn"
                                         else f"fastscratch algorithm={contender!r}")
    if contender != "sklearn":
        model = KNeighborsClassifier(n_neighbors=SWEEP_K, algorithm=contender, n_jobs=N_THREADS).fit(X, y)
        benchmark.extra_info["fit_method"] = model._fit_method
    else:
        model = SklearnKNeighborsClassifier(n_neighbors=SWEEP_K).fit(X, y)
        benchmark.extra_info["fit_method"] = model._fit_method
    rounds = 1 if bench_size == "tiny" else 3
    benchmark.pedantic(_run_contender, args=(contender, X, y, queries, SWEEP_K), rounds=rounds,
                       iterations=1, warmup_rounds=0)


LOW_DIMENSION_SIZES = {  # (n_train, n_queries): 1M x 2 with 100k queries is the case
    "tiny": (5_000, 500),
    "medium": (200_000, 20_000),
    "large": (1_000_000, 100_000),
}


@pytest.fixture(scope="module")
def low_dimension_data(bench_size):
    n_train, n_queries = sized(LOW_DIMENSION_SIZES, bench_size)
    return make_blobs_data(n_train, n_queries, 2, np.float64)


@pytest.mark.parametrize("contender", ("auto", "sklearn"))
def test_low_dimension_large(benchmark, low_dimension_data, contender):
    X, y, queries = low_dimension_data
    _run_contender(contender, X[:1000], y[:1000], queries[:50], SWEEP_K)
    benchmark.group = f"KNN low dimension {X.shape[0]}x2-q{queries.shape[0]}-k{SWEEP_K}-float64"
    benchmark.extra_info["contender"] = contender
    benchmark.pedantic(_run_contender, args=(contender, X, y, queries, SWEEP_K), rounds=3, iterations=1)


def _fit_auto(inputs):
    X, y, _ = inputs
    KNeighborsClassifier(n_neighbors=SWEEP_K, n_jobs=N_THREADS).fit(X, y)


def _fit_sklearn_default(inputs):
    X, y, _ = inputs
    SklearnKNeighborsClassifier(n_neighbors=SWEEP_K).fit(X, y)


class _LowDimensionSetup:
    """Picklable setup of the low-dimension case at a benchmark size."""

    def __init__(self, size):
        self.size = size

    def __call__(self, small):
        n_train, n_queries = sized(LOW_DIMENSION_SIZES, "tiny" if small else self.size)
        return make_blobs_data(n_train, n_queries, 2, np.float64)


@pytest.mark.parametrize("contender", ("auto", "sklearn"))
def test_fit_peak_memory(benchmark, bench_size, contender):
    run = _fit_auto if contender == "auto" else _fit_sklearn_default
    benchmark.group = "KNN fit (tree build) peak memory, low dimension (timing = whole measurement)"
    benchmark.extra_info["contender"] = contender
    peak = benchmark.pedantic(peak_memory_above_inputs_mb, args=(_LowDimensionSetup(bench_size), run),
                              rounds=1, iterations=1)
    benchmark.extra_info["peak_memory_mb"] = round(peak, 1)
    print(f"\nfit peak memory above inputs, {contender}, {bench_size}: {peak:.1f} MB")


# The speed sweep of fastscratch/compare/sweeps.py: ours (backend="auto") and the reference at
# every point, one axis varied at a time (benchmarks/conftest.py builds the cases).
SWEEP_FAMILIES = ("knn",)


def test_sweep(benchmark, sweep_case):
    sweep_case.run(benchmark)
