"""``fastscratch profile KERNEL``: the readable kernel against the optimised ones.

How it works, for any kernel of :mod:`fastscratch.kernels`:

1. *Capture*: a small workload of the estimator that uses the kernel runs on
   the NumPy backend, and the arguments of the kernel's largest call are
   recorded (inputs and caller-allocated outputs).
2. *Replay*: the same arguments go to every installed backend; each is timed
   (median of repeats after a warm-up call, so Numba's compilation is left
   out), its outputs are compared with the NumPy reference's, and its peak
   memory is measured in a fresh process.
3. *Where the time goes*: the NumPy version runs under cProfile (and, if
   ``line_profiler`` is installed, line by line), so a student can see which
   lines the compiled kernels make fast.
"""

import copy
import cProfile
import io
import os
import pickle
import pstats
import statistics
import tempfile
import time
from contextlib import contextmanager

import numpy as np

from . import _backend
from ._sizes import DEFAULT_COMMAND_SIZE
from .kernels import available_backends, get_kernel, kernel_names

# Size name (fastscratch._sizes) -> workload level; "large" runs the medium workloads.
SIZES = {"tiny": 0, "small": 1, "medium": 2, "large": 2}


# ---------------------------------------------------------------- workloads
# Each workload runs one estimator at a given size level (0 = tiny, 1, 2) on
# the backend "numpy"; together they call every kernel.

def _classification(n_samples, n_features, dtype=np.float64, n_classes=3):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n_samples, n_features=n_features, n_informative=max(2, n_features // 2),
                               n_classes=n_classes, random_state=0)
    return X.astype(dtype), y


def _knn_workload(level):
    from . import KNeighborsClassifier
    from .pairwise import sqeuclidean_argmin

    n = (300, 20_000, 100_000)[level]
    X, y = _classification(n + n // 10, 32, np.float32)
    for metric in ("euclidean", "manhattan", "cosine", "minkowski"):
        params = {"p": 3} if metric == "minkowski" else {}
        model = KNeighborsClassifier(n_neighbors=10, metric=metric, backend="numpy", **params)
        model.fit(X[:n], y[:n]).predict(X[n:])
    sqeuclidean_argmin(X, X[:16], backend="numpy")  # nearest of a few centres, as in k-means
    model = KNeighborsClassifier(n_neighbors=10, metric="chebyshev", algorithm="brute", backend="numpy")
    model.fit(X[:n], y[:n]).predict(X[n:])
    # float64 data: ranked in float32, re-ranked exactly in float64 (sqeuclidean_topk_ranked).
    X64 = X.astype(np.float64)
    model = KNeighborsClassifier(n_neighbors=10, algorithm="brute", backend="numpy")
    model.fit(X64[:n], y[:n]).predict(X64[n:])


def _sparse_knn_workload(level):
    import scipy.sparse as sp

    from . import KNeighborsClassifier

    n = (300, 20_000, 100_000)[level]
    X, y = _classification(n + n // 10, 200)
    X = sp.csr_matrix(X * (np.random.default_rng(0).random(X.shape) < 0.05))
    for metric in ("euclidean", "manhattan", "cosine"):
        model = KNeighborsClassifier(n_neighbors=10, metric=metric, algorithm="brute", backend="numpy")
        model.fit(X[:n], y[:n]).predict(X[n:])


def _tree_workload(level):
    from . import KNeighborsClassifier

    from sklearn.datasets import make_blobs

    n = (300, 20_000, 100_000)[level]
    X, y = make_blobs(n_samples=n + n // 10, n_features=3, centers=5, random_state=0)
    for algorithm in ("kd_tree", "ball_tree"):
        model = KNeighborsClassifier(n_neighbors=10, algorithm=algorithm, backend="numpy").fit(X[:n], y[:n])
        model.predict(X[n:])
        model.radius_neighbors(X[n:], radius=0.5)


def _kmeans_workload(level):
    from sklearn.datasets import make_blobs

    from . import KMeans

    n = (500, 100_000, 500_000)[level]
    X, _ = make_blobs(n_samples=n, n_features=16, centers=8, cluster_std=4.0, random_state=0)
    for algorithm in ("lloyd", "elkan"):
        KMeans(n_clusters=8, init=X[:8], n_init=1, max_iter=10, algorithm=algorithm, backend="numpy").fit(X)


def _sparse_kmeans_workload(level):
    import scipy.sparse as sp

    from . import KMeans

    n = (500, 50_000, 200_000)[level]
    rng = np.random.default_rng(0)
    X = sp.random(n, 300, density=0.02, format="csr", random_state=rng)
    for algorithm in ("lloyd", "elkan"):
        KMeans(n_clusters=8, n_init=1, max_iter=10, algorithm=algorithm, random_state=0, backend="numpy").fit(X)


def _naive_bayes_workload(level):
    import scipy.sparse as sp

    from . import BernoulliNB, CategoricalNB, ComplementNB, GaussianNB, MultinomialNB

    n = (300, 50_000, 200_000)[level]
    X, y = _classification(n, 50, n_classes=10)
    GaussianNB(backend="numpy").fit(X, y).predict_proba(X)
    counts = np.floor(np.abs(X) * 3)
    for model in (MultinomialNB, ComplementNB, BernoulliNB, CategoricalNB):
        model(backend="numpy").fit(counts, y).predict_proba(counts)
    sparse = sp.csr_matrix(counts * (np.random.default_rng(0).random(counts.shape) < 0.1))
    for model in (MultinomialNB, ComplementNB, BernoulliNB):
        model(backend="numpy").fit(sparse, y).predict_proba(sparse)


def _boosting_workload(level):
    from . import XGBClassifier

    n = (400, 20_000, 100_000)[level]
    X, y = _classification(n, 28, n_classes=2)
    model = XGBClassifier(n_estimators=3, max_depth=4, backend="numpy").fit(X, y)
    model.predict_proba(X)  # trees in the complete layout (predict_complete)
    # Trees deeper than that layout takes walk the node arrays (predict_raw).
    model._forest.predict_raw(X.astype(np.float32), 0.0, "numpy", complete=False)
    # Row subsampling walks each new tree over the binned data (predict_binned).
    XGBClassifier(n_estimators=2, max_depth=4, subsample=0.5, random_state=0, backend="numpy").fit(X, y)
    # A multiclass round builds the roots of its class trees in one pass (build_class_histograms).
    X, y = _classification(n, 28, n_classes=4)
    XGBClassifier(n_estimators=2, max_depth=3, backend="numpy").fit(X, y)
    # Monotone constraints search splits with bounded weights (find_best_splits_monotone).
    X, y = _classification(n, 8, n_classes=2)
    XGBClassifier(n_estimators=2, max_depth=3, monotone_constraints=(1, -1), backend="numpy").fit(X, y)


def _categorical_workload(level):
    from . import XGBClassifier

    n = (400, 20_000, 100_000)[level]
    X, y = _classification(n, 8, n_classes=2)
    # Two columns become category codes: 3 levels (one-hot splits) and 20 (partition splits).
    X[:, 0] = np.digitize(X[:, 0], np.quantile(X[:, 0], [1 / 3, 2 / 3]))
    X[:, 1] = np.digitize(X[:, 1], np.quantile(X[:, 1], np.linspace(0.05, 0.95, 19)))
    feature_types = ["c", "c"] + ["q"] * 6
    model = XGBClassifier(n_estimators=3, max_depth=4, feature_types=feature_types,
                          enable_categorical=True, backend="numpy").fit(X, y)
    model.predict_proba(X)


def _arima_workload(level):
    from . import ARIMA
    from .datasets import load_electric_production

    y = load_electric_production(as_series=False)
    ARIMA(order=(1, 1, 1), seasonal_order=(1, 1, 1, 12), backend="numpy").fit(y, method="mle")
    ARIMA(order=(1, 1, 1), backend="numpy").fit(y, method="css")
    y_missing = y.copy()
    y_missing[30::17] = np.nan  # NaN skipped in the Kalman filter (none among the first d + sD values)
    ARIMA(order=(1, 1, 1), backend="numpy").fit(y_missing)


def _sparse_boosting_workload(level):
    import scipy.sparse as sp

    from . import XGBRegressor

    n, d = ((500, 100), (20_000, 500), (100_000, 1_000))[level]
    rng = np.random.default_rng(0)
    # Term counts, 2% dense: trees grown from the stored entries (sparse_histogram).
    X = sp.random(n, d, density=0.02, format="csr", random_state=1,
                  data_rvs=lambda k: rng.poisson(2.0, k).astype(np.float32) + 1)
    y = X @ rng.normal(size=d)
    XGBRegressor(n_estimators=3, max_depth=4, backend="numpy").fit(X, y)


def _quantized_boosting_workload(level):
    from . import XGBClassifier

    n = (400, 20_000, 100_000)[level]
    X, y = _classification(n, 28, n_classes=2)
    # Quantized gradients with leaf renewal: every kernel of quantized_histogram.
    XGBClassifier(n_estimators=3, max_depth=4, use_quantized_grad=True,
                  quant_train_renew_leaf=True, backend="numpy").fit(X, y)


def _treeshap_workload(level):
    from .boosting import XGBRegressor
    from .boosting._treeshap import tree_contributions

    n = (300, 3_000, 10_000)[level]
    X, y = _classification(n, 10, np.float32)
    model = XGBRegressor(n_estimators=5, max_depth=4, backend="numpy").fit(X, y)
    tree_contributions(model, X[:max(50, n // 10)], backend="numpy")
    tree_contributions(model, X[:20], interactions=True, backend="numpy")


WORKLOADS = {
    "treeshap": _treeshap_workload,
    "distances": _knn_workload,
    "minkowski": _knn_workload,
    "sparse_distances": _sparse_knn_workload,
    "spatial_tree": _tree_workload,
    "kmeans": _kmeans_workload,
    "kmeans_sparse": _sparse_kmeans_workload,
    "naive_bayes": _naive_bayes_workload,
    "histogram": _boosting_workload,
    "splitting": _boosting_workload,
    "partition": _boosting_workload,
    "tree_predict": _boosting_workload,
    "categorical": _categorical_workload,
    "arima": _arima_workload,
    "sparse_histogram": _sparse_boosting_workload,
    "quantized_histogram": _quantized_boosting_workload,
}


# ---------------------------------------------------------------- capture
def _nbytes(args):
    return sum(a.nbytes if isinstance(a, np.ndarray) else 0 for a in args)


@contextmanager
def _recording(kernel_name, calls):
    """Record copies of the arguments of every call to ``kernel_name``."""
    original = _backend.get_kernel

    def recording_get_kernel(name, backend):
        kernel = original(name, backend)
        if name != kernel_name:
            return kernel

        def recorded(*args):
            snapshot = copy.deepcopy(args)
            kernel(*args)
            if not calls or _nbytes(snapshot) > _nbytes(calls[0]):
                calls[:] = [snapshot]

        return recorded

    _backend.get_kernel = recording_get_kernel
    try:
        yield
    finally:
        _backend.get_kernel = original


def capture_call(kernel_name, size="small"):
    """Arguments of the largest call of ``kernel_name`` in its estimator's workload."""
    from .kernels import _kernel_families

    family = _kernel_families()[kernel_name][0]
    if family not in WORKLOADS:
        raise ValueError(f"no profiling workload for kernel family {family!r}.")
    calls = []
    with _recording(kernel_name, calls):
        WORKLOADS[family](SIZES[size])
    if not calls:
        raise RuntimeError(f"the {family} workload did not call {kernel_name}.")
    return calls[0]


# ---------------------------------------------------------------- replay
def _run(kernel_name, backend, args):
    fresh = copy.deepcopy(args)
    get_kernel(kernel_name, backend)(*fresh)
    return fresh


def _time(kernel_name, backend, args, repeats):
    _run(kernel_name, backend, args)  # warm-up: compilation / cache load
    times = []
    for _ in range(repeats):
        fresh = copy.deepcopy(args)
        kernel = get_kernel(kernel_name, backend)
        start = time.perf_counter()
        kernel(*fresh)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _max_output_diff(reference, other):
    worst = 0.0
    for a, b in zip(reference, other):
        if isinstance(a, np.ndarray) and a.size and np.issubdtype(a.dtype, np.number):
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
            worst = max(worst, float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0)
    return worst


def _peak_setup(small):
    """Load the recorded call (the spawned child inherits the environment)."""
    with open(os.environ["FASTSCRATCH_PROFILE_ARGS"], "rb") as handle:
        return pickle.load(handle)


def _peak_run(inputs):
    kernel_name, backend, args = inputs
    _run(kernel_name, backend, args)


def peak_memory_mb(kernel_name, backend, args):
    """Peak memory (MB) that one call adds, in a fresh process."""
    from ._memory import peak_memory_above_inputs_mb

    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as handle:
        pickle.dump((kernel_name, backend, args), handle)
    os.environ["FASTSCRATCH_PROFILE_ARGS"] = handle.name
    try:
        return peak_memory_above_inputs_mb(_peak_setup, _peak_run)
    finally:
        os.unlink(handle.name)


def profile_kernel(kernel_name, size="small", repeats=3, memory=True, line_level=True):
    """Profile one kernel on every installed backend; return the report as text."""
    if kernel_name not in kernel_names():
        raise ValueError(f"unknown kernel {kernel_name!r}; `fastscratch profile --list` lists them.")
    args = capture_call(kernel_name, size)
    shapes = ", ".join(f"{a.shape} {a.dtype}" if isinstance(a, np.ndarray) else repr(a) for a in args)
    lines = [f"kernel {kernel_name}, size {size}: arguments {shapes}", ""]
    reference_out = _run(kernel_name, "numpy", args)
    rows = []
    for backend in available_backends()[::-1]:
        try:
            median = _time(kernel_name, backend, args, repeats)
        except ImportError as exc:
            lines.append(f"{backend}: not available ({exc})")
            continue
        diff = _max_output_diff(reference_out, _run(kernel_name, backend, args))
        peak = peak_memory_mb(kernel_name, backend, args) if memory else float("nan")
        rows.append((backend, median, diff, peak))
    numpy_time = next(median for backend, median, _, _ in rows if backend == "numpy")
    lines.append(f"{'backend':<8} {'median (s)':>11} {'speed-up':>9} {'peak MB':>8} {'max |diff| vs numpy':>20}")
    for backend, median, diff, peak in rows:
        lines.append(f"{backend:<8} {median:>11.4g} {numpy_time / median:>8.1f}x {peak:>8.1f} {diff:>20.3g}")

    lines += ["", "where the readable NumPy version spends its time (cProfile, top 12 by own time):"]
    profiler = cProfile.Profile()
    fresh = copy.deepcopy(args)
    kernel = get_kernel(kernel_name, "numpy")
    profiler.runcall(kernel, *fresh)
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(12)
    lines += [line for line in stream.getvalue().splitlines() if line.strip()][-14:]

    if line_level:
        try:
            from line_profiler import LineProfiler
        except ImportError:
            lines.append("\n(line_profiler is not installed: pip install line_profiler for line-level timings)")
        else:
            line_profiler = LineProfiler()
            line_profiler.add_module(__import__(kernel.__module__, fromlist=["_"]))
            fresh = copy.deepcopy(args)
            line_profiler.runcall(kernel, *fresh)
            stream = io.StringIO()
            line_profiler.print_stats(stream=stream, stripzeros=True)
            lines += ["", "line by line (line_profiler):", stream.getvalue()]
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument("kernel", nargs="?", help="kernel name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the kernels")
    parser.add_argument("--size", choices=tuple(SIZES), default=DEFAULT_COMMAND_SIZE,
                        help=f"workload size (default: {DEFAULT_COMMAND_SIZE})")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per backend (default: 3)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--no-lines", action="store_true", help="skip line-level profiling")


def run(args):
    if args.list or not args.kernel:
        from .kernels import _kernel_families

        for name in kernel_names():
            print(f"{name:<28} ({_kernel_families()[name][0]})")
        return 0
    print(profile_kernel(args.kernel, size=args.size, repeats=args.repeats, memory=not args.no_memory,
                         line_level=not args.no_lines))
    return 0
