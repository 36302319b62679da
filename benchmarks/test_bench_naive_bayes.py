"""Naive Bayes prediction: each backend vs scikit-learn, with peak memory.

Default size (issue "Naive Bayes"):

- GaussianNB ``predict_proba`` on 1,000,000 x 50 float64 samples, 10 classes
  (fitted on 100,000 samples of the same distribution);
- MultinomialNB ``predict_proba`` and ``fit`` on a CSR matrix of 100,000 x
  20,000 counts at 1 % density, 10 classes.

Fit sweeps (issue "Fast on every shape"): GaussianNB ``fit`` over n, d, the
number of classes and float32/float64, around 100,000 x 50 with 10 classes
(with the issue's two bad points, 1,000,000 x 4 with 3 classes and 100,000 x
50 with 100 classes); the count models' ``fit`` (Multinomial, Complement,
Bernoulli) on CSR counts over the density (0.1 % to 10 %) and the classes, and
on dense counts. Every backend and scikit-learn in the same run, one group
per point; the first call (Numba's compilation) is untimed.

Each benchmark of the prediction groups also records, in ``extra_info["peak_memory_mb"]``, how much
the call adds to the peak resident memory above its inputs (measured in a
fresh process by :func:`fastscratch._memory.peak_memory_above_inputs_mb`;
skipped under ``--benchmark-disable``). Show it with
``--benchmark-columns=median,min,max`` and ``--benchmark-json``.
Numba kernels are compiled (and the Cython ones loaded) before timing.
"""

from functools import lru_cache, partial

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.naive_bayes as sk

import fastscratch.naive_bayes as fs
from fastscratch._sizes import sized
from fastscratch._memory import peak_memory_above_inputs_mb
from fastscratch.kernels import available_backends

GAUSSIAN_SIZES = {  # (n_samples, n_features, n_classes)
    "tiny": (20_000, 50, 10),
    "medium": (1_000_000, 50, 10),
    "large": (1_000_000, 50, 10),
}
SPARSE_SIZES = {  # (n_samples, n_features, density, n_classes)
    "tiny": (5_000, 2_000, 0.01, 10),
    "medium": (100_000, 20_000, 0.01, 10),
    "large": (100_000, 20_000, 0.01, 10),
}
N_THREADS = 2
_CHUNK = 10_000  # rows per chunk when generating data
BACKENDS = available_backends()
REFERENCE = "sklearn"


def _gaussian_data(n_samples, n_features, n_classes, seed=0):
    """Gaussian classes, generated in row chunks: the peak memory is X itself."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, n_features)) * 2
    scales = rng.uniform(0.5, 2.0, (n_classes, n_features))
    y = rng.integers(0, n_classes, n_samples)
    X = np.empty((n_samples, n_features))
    for start in range(0, n_samples, _CHUNK):
        labels = y[start:start + _CHUNK]
        noise = rng.standard_normal((len(labels), n_features))
        X[start:start + _CHUNK] = centres[labels] + noise * scales[labels]
    return X, y


def _gaussian_model(library, n_features, n_classes):
    X_train, y_train = _gaussian_data(min(100_000, 20 * n_features * n_classes * 10),
                                      n_features, n_classes, seed=1)
    if library == REFERENCE:
        return sk.GaussianNB().fit(X_train, y_train)
    return fs.GaussianNB(backend=library, n_jobs=N_THREADS).fit(X_train, y_train)


def _sparse_counts(n_samples, n_features, density, n_classes, seed=0):
    """CSR word counts, ``density * n_features`` entries per row, built in row chunks.

    Half of each row's entries fall anywhere, half in its class's own block of
    features, so the classes differ. A row may repeat a column (CSR allows it;
    the entries add up). Built straight into the CSR arrays, so the peak
    memory is the matrix itself. (``scipy.sparse.random`` would draw the
    positions from all n_samples * n_features cells, tens of GB here.)
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_samples)
    per_row = max(2, round(density * n_features))
    block = n_features // n_classes
    data = np.empty(n_samples * per_row)
    indices = np.empty(n_samples * per_row, dtype=np.int32)
    for start in range(0, n_samples, _CHUNK):
        labels = y[start:start + _CHUNK]
        anywhere = rng.integers(0, n_features, (len(labels), per_row - per_row // 2))
        own = labels[:, None] * block + rng.integers(0, block, (len(labels), per_row // 2))
        columns = np.sort(np.concatenate([anywhere, own], axis=1), axis=1)
        indices[start * per_row:(start + len(labels)) * per_row] = columns.ravel()
        data[start * per_row:(start + len(labels)) * per_row] = rng.integers(1, 6, columns.size)
    indptr = np.arange(0, n_samples * per_row + 1, per_row, dtype=np.int32)
    X = sp.csr_matrix((data, indices, indptr), shape=(n_samples, n_features), copy=False)
    return X, y


def _multinomial_model(library):
    return sk.MultinomialNB() if library == REFERENCE else fs.MultinomialNB(backend=library,
                                                                            n_jobs=N_THREADS)


# ---- module-level setups and runs: picklable for the memory measurement ----

def _gaussian_setup(library, size, small):
    n_samples, n_features, n_classes = size
    model = _gaussian_model(library, n_features, n_classes)
    X, _ = _gaussian_data(1_000 if small else n_samples, n_features, n_classes)
    return model, X


def _predict_proba(inputs):
    model, X = inputs
    model.predict_proba(X)


def _sparse_predict_setup(library, size, small):
    n_samples, n_features, density, n_classes = size
    X, y = _sparse_counts(1_000 if small else n_samples, n_features, density, n_classes)
    return _multinomial_model(library).fit(X, y), X


def _sparse_fit_setup(library, size, small):
    n_samples, n_features, density, n_classes = size
    X, y = _sparse_counts(1_000 if small else n_samples, n_features, density, n_classes)
    return _multinomial_model(library), X, y


def _fit(inputs):
    model, X, y = inputs
    model.fit(X, y)


def _record(benchmark, library, group, setup, run):
    benchmark.group = group
    benchmark.extra_info["backend"] = library
    if not benchmark.disabled:  # the CI smoke run (--benchmark-disable) skips the fresh process
        benchmark.extra_info["peak_memory_mb"] = round(peak_memory_above_inputs_mb(setup, run), 1)


@pytest.fixture(scope="module")
def gaussian_inputs(bench_size):
    n_samples, n_features, n_classes = sized(GAUSSIAN_SIZES, bench_size)
    X, _ = _gaussian_data(n_samples, n_features, n_classes)
    return X


@pytest.fixture(scope="module")
def sparse_inputs(bench_size):
    return _sparse_counts(*sized(SPARSE_SIZES, bench_size))


@pytest.mark.parametrize("library", [*BACKENDS, REFERENCE])
def test_gaussian_predict_proba(benchmark, bench_size, gaussian_inputs, library):
    size = sized(GAUSSIAN_SIZES, bench_size)
    n_samples, n_features, n_classes = size
    model = _gaussian_model(library, n_features, n_classes)
    X = gaussian_inputs
    model.predict_proba(X[:100])  # compile / warm up
    group = f"GaussianNB.predict_proba {n_samples}x{n_features}-float64-{n_classes}classes"
    _record(benchmark, library, group, partial(_gaussian_setup, library, size), _predict_proba)
    benchmark.pedantic(model.predict_proba, args=(X,), rounds=3, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("library", [*BACKENDS, REFERENCE])
def test_multinomial_csr_predict_proba(benchmark, bench_size, sparse_inputs, library):
    size = sized(SPARSE_SIZES, bench_size)
    X, y = sparse_inputs
    model = _multinomial_model(library).fit(X, y)
    model.predict_proba(X[:100])
    group = f"MultinomialNB.predict_proba CSR {X.shape[0]}x{X.shape[1]}-density{size[2]}"
    _record(benchmark, library, group, partial(_sparse_predict_setup, library, size), _predict_proba)
    benchmark.pedantic(model.predict_proba, args=(X,), rounds=5, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("library", [BACKENDS[0], REFERENCE])
def test_multinomial_csr_fit(benchmark, bench_size, sparse_inputs, library):
    # Fitting is plain NumPy/SciPy in every backend; one backend suffices.
    size = sized(SPARSE_SIZES, bench_size)
    X, y = sparse_inputs
    model = _multinomial_model(library)
    group = f"MultinomialNB.fit CSR {X.shape[0]}x{X.shape[1]}-density{size[2]}"
    _record(benchmark, library, group, partial(_sparse_fit_setup, library, size), _fit)
    benchmark.pedantic(model.fit, args=(X, y), rounds=3, iterations=1, warmup_rounds=0)


# ---- fit sweeps: one axis at a time around a base point ----

GAUSSIAN_FIT_POINTS = {  # (n_samples, n_features, n_classes)
    "tiny": [(2_000, 8, 3), (10_000, 8, 3), (2_000, 50, 3), (2_000, 8, 20)],
    "medium": [
        (100_000, 50, 10),                          # base
        (10_000, 50, 10), (1_000_000, 50, 10),      # n
        (100_000, 4, 10), (100_000, 200, 10),       # d
        (100_000, 50, 2), (100_000, 50, 100),       # classes
        (1_000_000, 4, 3),                          # the worst point
    ],
}
COUNT_FIT_POINTS = {  # (n_samples, n_features, density, n_classes); density None: dense counts
    "tiny": [(2_000, 500, 0.001, 3), (2_000, 500, 0.1, 3), (2_000, 500, 0.01, 20),
             (2_000, 50, None, 3)],
    "medium": [
        (20_000, 10_000, 0.001, 10), (20_000, 10_000, 0.01, 10),
        (20_000, 10_000, 0.1, 10),                  # density
        (20_000, 10_000, 0.01, 2), (20_000, 10_000, 0.01, 100),  # classes
        (200_000, 64, None, 10),                    # dense counts
    ],
}
COUNT_MODELS = ["MultinomialNB", "ComplementNB", "BernoulliNB"]
_FIT_ROUNDS = {"tiny": 1, "medium": 3, "large": 3}


@lru_cache(maxsize=2)
def _gaussian_fit_data(n_samples, n_features, n_classes, dtype):
    X, y = _gaussian_data(n_samples, n_features, n_classes)
    return X.astype(dtype), y


@lru_cache(maxsize=2)
def _count_fit_data(n_samples, n_features, density, n_classes):
    if density is None:
        rng = np.random.default_rng(0)
        y = rng.integers(0, n_classes, n_samples)
        X = rng.poisson(1.0 + y[:, None] % 3, (n_samples, n_features)).astype(np.float64)
        return X, y
    X, y = _sparse_counts(n_samples, n_features, density, n_classes)
    # Canonical CSR (repeated columns summed): BernoulliNB binarises a sum of duplicates
    # where scikit-learn binarises each entry, so only canonical input gives both one answer.
    X.sum_duplicates()
    return X, y


def _fit_benchmark(benchmark, bench_size, model, X, y, group, library):
    model.fit(X, y)  # compile / warm up
    benchmark.group = group
    benchmark.extra_info["backend"] = library
    benchmark.pedantic(model.fit, args=(X, y), rounds=sized(_FIT_ROUNDS, bench_size),
                       iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("point", range(len(GAUSSIAN_FIT_POINTS["medium"])))
@pytest.mark.parametrize("library", [*BACKENDS, REFERENCE])
def test_gaussian_fit_sweep(benchmark, bench_size, point, dtype, library):
    points = sized(GAUSSIAN_FIT_POINTS, bench_size)
    if point >= len(points):
        pytest.skip(f"the {bench_size} sweep has {len(points)} points")
    n_samples, n_features, n_classes = points[point]
    X, y = _gaussian_fit_data(n_samples, n_features, n_classes, dtype)
    model = (sk.GaussianNB() if library == REFERENCE
             else fs.GaussianNB(backend=library, n_jobs=N_THREADS))
    group = f"GaussianNB.fit {n_samples}x{n_features}-{dtype}-{n_classes}classes"
    _fit_benchmark(benchmark, bench_size, model, X, y, group, library)


@pytest.mark.parametrize("name", COUNT_MODELS)
@pytest.mark.parametrize("point", range(len(COUNT_FIT_POINTS["medium"])))
@pytest.mark.parametrize("library", [*BACKENDS, REFERENCE])
def test_count_fit_sweep(benchmark, bench_size, point, name, library):
    points = sized(COUNT_FIT_POINTS, bench_size)
    if point >= len(points):
        pytest.skip(f"the {bench_size} sweep has {len(points)} points")
    n_samples, n_features, density, n_classes = points[point]
    X, y = _count_fit_data(n_samples, n_features, density, n_classes)
    model = (getattr(sk, name)() if library == REFERENCE
             else getattr(fs, name)(backend=library, n_jobs=N_THREADS))
    layout = "dense" if density is None else f"CSR-density{density}"
    group = f"{name}.fit {n_samples}x{n_features}-{layout}-{n_classes}classes"
    _fit_benchmark(benchmark, bench_size, model, X, y, group, library)


# The speed sweep of fastscratch/compare/sweeps.py: ours (backend="auto") and the reference at
# every point, one axis varied at a time (benchmarks/conftest.py builds the cases).
SWEEP_FAMILIES = ("gaussian_nb", "multinomial_nb")


def test_sweep(benchmark, sweep_case):
    sweep_case.run(benchmark)
