"""KNeighborsClassifier fit + predict: each backend vs scikit-learn's brute force.

Issue size ("medium" and "large"): 200k x 32 float32 training points, 20k
queries, k = 10. ``faiss.IndexFlatL2`` (plus a majority vote) is a second
reference when faiss-cpu is installed; it runs in its own spawned process,
because importing faiss in this process changes scikit-learn's OpenMP
threading. Numba kernels are compiled before timing.

``test_peak_memory`` records, for each contender, the MB that fit + predict add
to the peak resident memory of a fresh process
(:func:`fastscratch._memory.peak_memory_above_inputs_mb`), in
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
    return f"KNeighborsClassifier fit+predict {X.shape[0]}x{X.shape[1]}-q{queries.shape[0]}-k{k}-float32"


def fit_predict_ours(X, y, queries, k, backend):
    return KNeighborsClassifier(n_neighbors=k, backend=backend, n_jobs=N_THREADS).fit(X, y).predict(queries)


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
