"""Dask: fastscratch.distributed vs dask-ml on the same LocalCluster, time and peak memory.

Sizes (``--bench-size``; "large" is the issue's):

- k-means, 16 clusters, k-means|| init, 10 Lloyd iterations at most, on blobs of
  n x 16 float32: tiny 10,000, medium 2,000,000, large 20,000,000 rows;
- GaussianNB fit on the same data (16 classes);
- boosting (binary classification, trees of depth 6, 256 bins: tiny 3, medium 20, large 100
  trees) on n x 28 float32 (HIGGS-shaped: a noisy linear-plus-interaction rule): tiny 5,000,
  medium 200,000, large 2,000,000 rows (the issue's shape); vs
  ``xgboost.dask.DaskXGBClassifier`` (``tree_method="hist"``). Ours also records its round
  trips to the workers per tree and where the time went (``dask_profile``);
- multiclass boosting, 10 classes (the class of the largest of 10 noisy linear scores), trees
  of depth 6: tiny 5,000 rows and 2 rounds, medium and large 200,000 rows and 20 rounds (200
  trees), n x 28 float32; ours records its round trips per round (the class trees of a round
  grow together).

The data are generated lazily, block by block on the workers (one seed per
block), so they never sit in one process's memory. The cluster is a
LocalCluster of 2 worker processes with 1 thread each. Each benchmark
records in ``extra_info`` the peak resident memory of each worker during the
timed rounds (``VmHWM``, reset before the first round) and, for k-means, the
inertia and iteration count, so the two libraries can be compared at equal
quality. The data are persisted on the workers before timing (both
libraries then read the same blocks).
"""

import numpy as np
import pytest

pytest.importorskip("dask_ml")
pytest.importorskip("distributed")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from fastscratch._sizes import sized  # noqa: E402
from fastscratch import distributed as fd  # noqa: E402

SIZES = {"tiny": 10_000, "medium": 2_000_000, "large": 20_000_000}
CHUNK_ROWS = {"tiny": 2_500, "medium": 250_000, "large": 1_000_000}
N_FEATURES = 16
N_CLUSTERS = 16
MAX_ITER = 10
BOOST_SIZES = {"tiny": 5_000, "medium": 200_000, "large": 2_000_000}
BOOST_CHUNK_ROWS = {"tiny": 2_500, "medium": 50_000, "large": 250_000}
BOOST_FEATURES = 28
BOOST_PARAMS = dict(max_depth=6, learning_rate=0.3, max_bin=256)
BOOST_TREES = {"tiny": 3, "medium": 20, "large": 100}
MULTI_CLASSES = 10
MULTI_SIZES = {"tiny": 5_000, "medium": 200_000}
MULTI_CHUNK_ROWS = {"tiny": 2_500, "medium": 25_000}
MULTI_ROUNDS = {"tiny": 2, "medium": 20}


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def _blob_block(block_id, n_rows, seed):
    """One block of the blobs (float32) and its labels, from the block's own seed."""
    rng = np.random.default_rng([seed, block_id])
    centres = np.random.default_rng(seed).uniform(-10, 10, (N_CLUSTERS, N_FEATURES))
    labels = rng.integers(0, N_CLUSTERS, n_rows)
    X = (centres[labels] + rng.standard_normal((n_rows, N_FEATURES))).astype(np.float32)
    return X, labels


def lazy_data(make_block, n_samples, n_features, chunk_rows, seed):
    """``(X, y)`` as Dask arrays whose blocks ``make_block(i, rows, seed)`` run on the workers."""
    import dask

    sizes = [min(chunk_rows, n_samples - start) for start in range(0, n_samples, chunk_rows)]
    blocks = [dask.delayed(make_block, pure=True)(i, n, seed) for i, n in enumerate(sizes)]
    X = da.concatenate([da.from_delayed(b[0], shape=(n, n_features), dtype=np.float32)
                        for b, n in zip(blocks, sizes)])
    y = da.concatenate([da.from_delayed(b[1], shape=(n,), dtype=np.int64)
                        for b, n in zip(blocks, sizes)])
    return X, y


def _higgs_block(block_id, n_rows, seed):
    rng = np.random.default_rng([seed, block_id])
    X = rng.standard_normal((n_rows, BOOST_FEATURES)).astype(np.float32)
    w = np.random.default_rng(seed).standard_normal(BOOST_FEATURES)
    score = X @ w + 2.0 * X[:, 0] * X[:, 1] + rng.standard_normal(n_rows) * 2.0
    return X, (score > 0).astype(np.int64)


def _multiclass_block(block_id, n_rows, seed):
    """The class of the largest of ``MULTI_CLASSES`` noisy linear scores of the row."""
    rng = np.random.default_rng([seed, block_id])
    X = rng.standard_normal((n_rows, BOOST_FEATURES)).astype(np.float32)
    W = np.random.default_rng(seed).standard_normal((BOOST_FEATURES, MULTI_CLASSES))
    scores = X @ W + rng.standard_normal((n_rows, MULTI_CLASSES)) * 2.0
    return X, np.argmax(scores, axis=1).astype(np.int64)


def _status_mb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


@pytest.fixture(scope="module")
def data(client, bench_size):
    X, y = lazy_data(_blob_block, sized(SIZES, bench_size), N_FEATURES, sized(CHUNK_ROWS, bench_size), 0)
    X, y = client.persist([X, y])
    client.wait_for_workers(2)
    return X, y


def _run(benchmark, client, library, fit, bench_size):
    before = client.run(_reset_peak)
    rounds = 1 if bench_size == "large" else 3
    result = benchmark.pedantic(fit, rounds=rounds, iterations=1, warmup_rounds=1)
    peak = client.run(_status_mb, "VmHWM")
    benchmark.extra_info["library"] = library
    benchmark.extra_info["backend"] = library
    benchmark.extra_info["peak_memory_mb_per_worker"] = {w: round(peak[w], 1) for w in peak}
    benchmark.extra_info["rss_before_mb_per_worker"] = {w: round(before[w], 1) for w in before}
    return result


@pytest.mark.parametrize("library", ["fastscratch", "dask-ml"])
def test_kmeans(benchmark, client, data, library, bench_size):
    X, _ = data
    benchmark.group = f"dask k-means {sized(SIZES, bench_size)}x{N_FEATURES} float32, k={N_CLUSTERS}"
    if library == "fastscratch":
        model = fd.KMeans(N_CLUSTERS, init="k-means||", max_iter=MAX_ITER, random_state=0)
    else:
        from dask_ml.cluster import KMeans

        model = KMeans(N_CLUSTERS, init="k-means||", max_iter=MAX_ITER, random_state=0)
    fitted = _run(benchmark, client, library, lambda: model.fit(X), bench_size)
    benchmark.extra_info["inertia"] = float(fitted.inertia_)
    benchmark.extra_info["n_iter"] = int(fitted.n_iter_)


@pytest.mark.parametrize("library", ["fastscratch", "dask-ml"])
def test_gaussian_nb_fit(benchmark, client, data, library, bench_size):
    X, y = data
    benchmark.group = f"dask GaussianNB fit {sized(SIZES, bench_size)}x{N_FEATURES} float32"
    if library == "fastscratch":
        model = fd.GaussianNB()
    else:
        from dask_ml.naive_bayes import GaussianNB

        model = GaussianNB()

    def fit():
        fitted = model.fit(X, y)
        if library == "dask-ml":
            # dask-ml's fit is lazy (its attributes are Dask arrays): compute them, as ours are.
            fitted.theta_, fitted.sigma_ = dask.compute(fitted.theta_, fitted.sigma_)
        return fitted

    fitted = _run(benchmark, client, library, fit, bench_size)
    assert np.asarray(fitted.theta_).shape == (N_CLUSTERS, N_FEATURES)


@pytest.fixture(scope="module")
def higgs(client, bench_size):
    X, y = lazy_data(_higgs_block, sized(BOOST_SIZES, bench_size), BOOST_FEATURES,
                     BOOST_CHUNK_ROWS[bench_size], 1)
    X, y = client.persist([X, y])
    return X, y


def _fit_boosting(benchmark, client, library, X, y, n_trees, bench_size):
    """Time ``library``'s classifier fit on (X, y); record the training accuracy and, for
    ours, the fit's profile (round trips, phases). Returns (accuracy, profile or None)."""
    if library == "fastscratch":
        model = fd.XGBClassifier(n_estimators=n_trees, **BOOST_PARAMS, random_state=0)
    else:
        xgboost_dask = pytest.importorskip("xgboost.dask")
        model = xgboost_dask.DaskXGBClassifier(n_estimators=n_trees, **BOOST_PARAMS,
                                               tree_method="hist", nthread=1)
        model.client = client
    fitted = _run(benchmark, client, library, lambda: model.fit(X, y), bench_size)
    accuracy = float((fitted.predict(X) == y).mean().compute())
    benchmark.extra_info["train_accuracy"] = accuracy
    profile = getattr(fitted, "_dask_profile", None)
    if profile is not None:
        benchmark.extra_info["dask_profile"] = {key: value for key, value in profile.items()
                                                if key != "shard_seconds"}
    return accuracy, profile


@pytest.mark.parametrize("library", ["fastscratch", "xgboost.dask"])
def test_boosting_fit(benchmark, client, higgs, library, bench_size):
    X, y = higgs
    n_trees = sized(BOOST_TREES, bench_size)
    benchmark.group = (f"dask boosting fit {sized(BOOST_SIZES, bench_size)}x{BOOST_FEATURES} float32, "
                       f"{n_trees} trees")
    accuracy, _ = _fit_boosting(benchmark, client, library, X, y, n_trees, bench_size)
    assert accuracy > 0.6


@pytest.fixture(scope="module")
def multiclass(client, bench_size):
    X, y = lazy_data(_multiclass_block, sized(MULTI_SIZES, bench_size), BOOST_FEATURES,
                     sized(MULTI_CHUNK_ROWS, bench_size), 2)
    X, y = client.persist([X, y])
    return X, y


@pytest.mark.parametrize("library", ["fastscratch", "xgboost.dask"])
def test_boosting_multiclass_fit(benchmark, client, multiclass, library, bench_size):
    X, y = multiclass
    n_rounds = sized(MULTI_ROUNDS, bench_size)
    benchmark.group = (f"dask boosting fit {sized(MULTI_SIZES, bench_size)}x{BOOST_FEATURES} "
                       f"float32, {MULTI_CLASSES} classes, {n_rounds} rounds")
    accuracy, profile = _fit_boosting(benchmark, client, library, X, y, n_rounds, bench_size)
    if profile is not None:
        benchmark.extra_info["round_trips_per_round"] = (profile["round_trips_per_tree"]
                                                         * MULTI_CLASSES)
    assert accuracy > 1.5 / MULTI_CLASSES  # well above chance
