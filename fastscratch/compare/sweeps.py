"""Speed sweeps: each model family against its reference over the axes its cost depends on.

A benchmark point proves little: the cost of a k-means fit depends on the
number of samples ``n``, the dimension ``d`` and the number of clusters ``k``;
that of a boosting fit on the rows, the features and the depth. A *sweep*
varies one axis at a time around a base point and times our estimator (its
default, ``backend="auto"``) and the reference library (its default settings)
on the same data, in the same process.

This module is the one definition of every sweep. Two places run them:

- the benchmark suite: each family's ``benchmarks/test_bench_<family>.py``
  names its ``SWEEP_FAMILY`` and ``benchmarks/conftest.py`` turns every point
  and contender into a pytest-benchmark case (group ``sweep <family> <axis>=<value>``);
- ``fastscratch compare TASK --sweep``, which prints the ratio ours / reference
  at each point and plots it against each axis (:func:`run_sweep`,
  :func:`plot_sweep`).

Sizes follow :mod:`fastscratch._sizes`: the grids below are keyed by size name
(``sized`` fills in a missing "small" from "tiny").

Examples
--------
>>> from fastscratch.compare.sweeps import sweep_points
>>> [point.id for point in sweep_points("kmeans", "tiny")][:3]
['base', 'n=1000', 'n=4000']
"""

import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .._sizes import check_size, sized

REFERENCE = "reference"
OURS = "fastscratch"
CONTENDERS = (OURS, REFERENCE)


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: the base parameters with one axis set to one value."""

    family: str
    axis: str
    value: object
    params: tuple  # sorted (name, value) pairs, hashable so data can be cached per point

    @property
    def id(self):
        if self.axis == "base":
            return "base"
        value = getattr(self.value, "__name__", self.value)
        return f"{self.axis}={value}"

    def as_dict(self):
        return dict(self.params)


@dataclass(frozen=True)
class SweepFamily:
    """How to sweep one model family.

    Attributes
    ----------
    name : str
        The family, also the ``fastscratch compare`` task it belongs to.
    title : str
        What is timed, for tables and plots.
    reference : str
        The reference library and its setting, for tables and plots.
    grids : dict
        Size name -> ``(base, axes)``: ``base`` maps every parameter to its
        value at the base point, ``axes`` maps the swept parameters to the
        values they take, one axis at a time.
    make_data : callable
        ``make_data(**params)`` -> the data of a point (deterministic).
    make_call : callable
        ``make_call(contender, data, backend, **params)`` -> a function of no
        argument that runs the timed work once and returns its result.
    agree : callable or None
        ``agree(ours_result, reference_result)`` -> bool, whether the answers
        agree (None: the family's answers are compared in its tests only).
    notes : tuple of str
        Printed under the family's table.
    settle_s : float
        Seconds of idle time before each contender's calls at a point (0:
        none), so that neither contender is timed beside the other's idle
        OpenMP threads still spin-waiting (:func:`settle`). The same for both.
    """

    name: str
    title: str
    reference: str
    grids: dict
    make_data: object
    make_call: object
    agree: object = None
    notes: tuple = field(default_factory=tuple)
    settle_s: float = 0.0


# ------------------------------------------------------------------ k-means
def _kmeans_data(n, d, k, dtype):
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=2.0, random_state=0)
    return X.astype(dtype)


def _kmeans_call(contender, X, backend, n, d, k, dtype):
    # A fixed init (the first k rows) and a fixed number of iterations, so both
    # libraries do the same work and must give the same labels.
    params = dict(n_clusters=k, init=X[:k].copy(), n_init=1, max_iter=10, tol=0.0, algorithm="lloyd")
    if contender == REFERENCE:
        from sklearn.cluster import KMeans as Reference

        return lambda: Reference(**params).fit(X)
    from ..cluster import KMeans

    return lambda: KMeans(**params, backend=backend).fit(X)


def _same_labels(ours, reference):
    return bool(np.array_equal(ours.labels_, reference.labels_))


# Both k-means fits are OpenMP loops with two runtimes in one process: scikit-learn's bundled
# libgomp and the system libgomp of our kernels (and Numba's). After its last parallel region,
# each runtime's idle worker spin-waits (libgomp's default GOMP_SPINCOUNT) before it sleeps:
# measured 6.7-8.1 ms of CPU per fit for either library's worker, at 10,000 x 16, k = 16 (up to
# 43 ms of wall time while other processes kept the 2 cores busy). A fit that starts in that
# window shares the 2 cores with a third, spinning thread: the whole fit at n = 10,000 (about
# 3 ms) and part of the larger ones ran so, and both libraries measured slower in one process
# than alone (issue 21: ours 3.9 ms against 2.45 ms alone at 10,000 rows, scikit-learn 4.3
# against 2.9-3.1 ms). The k-means sweep therefore waits KMEANS_SETTLE_S before each
# contender's calls at a point, the same for both: each library is timed as if alone, as a user
# who runs one of them would see it, with its own threads warm from its untimed first call.
KMEANS_SETTLE_S = 0.1


# ------------------------------------------------------------- neighbours
def _knn_data(n, d, k, n_queries, dtype):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n + n_queries, n_features=d, centers=5, random_state=0)
    X = X.astype(dtype)
    return X[:n], y[:n], X[n:]


def _knn_call(contender, data, backend, n, d, k, n_queries, dtype):
    X, y, queries = data
    if contender == REFERENCE:
        from sklearn.neighbors import KNeighborsClassifier as Reference

        model = Reference(n_neighbors=k)  # scikit-learn's default algorithm="auto"
    else:
        from ..neighbors import KNeighborsClassifier

        model = KNeighborsClassifier(n_neighbors=k, backend=backend)
    return lambda: model.fit(X, y).predict(queries)


def _same_array(ours, reference):
    return bool(np.array_equal(ours, reference))


# ------------------------------------------------------------ naive Bayes
def _gaussian_nb_data(n, d, classes, dtype):
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, n)
    means = rng.normal(0.0, 1.0, (classes, d))
    X = (means[y] + rng.normal(0.0, 2.0, (n, d))).astype(dtype)
    return X, y


def _gaussian_nb_call(contender, data, backend, n, d, classes, dtype):
    X, y = data
    if contender == REFERENCE:
        from sklearn.naive_bayes import GaussianNB as Reference

        return lambda: Reference().fit(X, y)
    from ..naive_bayes import GaussianNB

    return lambda: GaussianNB(backend=backend).fit(X, y)


def _close_theta(ours, reference):
    # float32 fits: scikit-learn accumulates in float32 (relative error ~1e-5 at 1e5 rows), ours
    # in float64 before rounding, so the two agree to float32 accumulation error only.
    rtol = 1e-9 if ours.theta_.dtype == np.float64 else 1e-4
    return bool(np.allclose(ours.theta_, reference.theta_, rtol=rtol, atol=1e-12)
                and np.allclose(ours.var_, reference.var_, rtol=rtol, atol=1e-12))


def _multinomial_nb_data(n, d, density, classes):
    from scipy import sparse

    rng = np.random.default_rng(0)
    X = sparse.random(n, d, density=density, format="csr", random_state=rng,
                      data_rvs=lambda size: rng.integers(1, 5, size)).astype(np.float64)
    y = rng.integers(0, classes, n)
    return X, y


def _multinomial_nb_call(contender, data, backend, n, d, density, classes):
    X, y = data
    if contender == REFERENCE:
        from sklearn.naive_bayes import MultinomialNB as Reference

        return lambda: Reference().fit(X, y)
    from ..naive_bayes import MultinomialNB

    return lambda: MultinomialNB(backend=backend).fit(X, y)


def _close_log_prob(ours, reference):
    return bool(np.allclose(ours.feature_log_prob_, reference.feature_log_prob_, rtol=1e-10))


# --------------------------------------------------------------- boosting
def _boosting_data(n, features, depth, trees):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=features, n_informative=max(2, features * 2 // 3),
                               random_state=0)
    return X.astype(np.float32), y


def _boosting_call(contender, data, backend, n, features, depth, trees):
    X, y = data
    params = dict(n_estimators=trees, max_depth=depth)  # everything else at xgboost's defaults
    if contender == REFERENCE:
        import xgboost

        return lambda: xgboost.XGBClassifier(**params).fit(X, y)
    from ..boosting import XGBClassifier

    return lambda: XGBClassifier(**params, backend=backend).fit(X, y)


# ------------------------------------------------------------------ ARIMA
def _arima_data(length, period):
    """A seasonal series of ``length`` points: SARIMA(1,1,1)(1,1,1,period) noise on a level."""
    rng = np.random.default_rng(0)
    burn = 3 * period + 50
    shocks = rng.normal(0.0, 1.0, length + burn)
    w = np.zeros_like(shocks)  # the twice-differenced ARMA part
    for t in range(len(w)):
        w[t] = shocks[t] - 0.4 * shocks[t - 1] * (t >= 1) - 0.5 * shocks[t - period] * (t >= period)
        w[t] += 0.5 * w[t - 1] * (t >= 1) + 0.2 * w[t - period] * (t >= period)
    seasonal = np.cumsum(w)  # undo the first difference
    y = seasonal.copy()
    for t in range(period, len(y)):  # undo the seasonal difference
        y[t] = seasonal[t] + y[t - period]
    return 100.0 + y[burn:] / np.sqrt(period)


def _arima_call(contender, y, backend, length, period):
    order, seasonal_order = (1, 1, 1), (1, 1, 1, period)
    if contender == REFERENCE:
        import warnings

        from statsmodels.tsa.statespace.sarimax import SARIMAX

        def fit_reference():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return SARIMAX(y, order=order, seasonal_order=seasonal_order).fit(disp=False)

        return fit_reference
    from ..timeseries.arima import ARIMA

    return lambda: ARIMA(order=order, seasonal_order=seasonal_order, backend=backend).fit(y)


def _close_llf(ours, reference):
    return bool(abs(float(ours.llf) - float(reference.llf)) <= 1e-3 * max(1.0, abs(float(reference.llf))))


# ------------------------------------------------------------------- LSTM
def _lstm_data(batch, hidden, lookback):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((batch, lookback, 1)).astype(np.float32),
            rng.standard_normal((batch, 1)).astype(np.float32))


def _lstm_call(contender, data, backend, batch, hidden, lookback):
    """One training step (forward, MSE on a linear head, backward, Adam) on one CPU thread."""
    import torch

    from ..timeseries.lstm import LSTM

    torch.manual_seed(0)
    if contender == REFERENCE:
        lstm = torch.nn.LSTM(1, hidden, 2, batch_first=True)
    else:
        lstm = LSTM(1, hidden, 2, batch_first=True)
    head = torch.nn.Linear(hidden, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    x, y = (torch.from_numpy(array) for array in data)

    def step():
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            optimizer.zero_grad(set_to_none=True)
            output, _ = lstm(x)
            loss = torch.nn.functional.mse_loss(head(output[:, -1]), y)
            loss.backward()
            optimizer.step()
        finally:
            torch.set_num_threads(previous)
        return float(loss.detach())

    return step


# ------------------------------------------------------------------ U-Net
def _unet_data(image_size, base_width, steps):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((1, 1, image_size, image_size)).astype(np.float32),
            rng.integers(0, 2, (1, image_size, image_size)))


def _unet_call(contender, data, backend, image_size, base_width, steps):
    """``steps`` SGD steps of a same-padded U-Net: our Trainer, or a bare forward/backward/step loop.

    Several steps per timed call: a median of three single steps of ~12 ms (base
    width 4, 128 x 128) moved by several percent from run to run on an idle machine.
    """
    import torch

    from ..segmentation.train import Trainer
    from ..segmentation.unet import UNet

    torch.manual_seed(0)
    model = UNet(base_channels=base_width, padding="same")
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    if contender == REFERENCE:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.99)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.detach()
    else:
        trainer = Trainer(model, optimizer="sgd", lr=0.01, momentum=0.99, device="cpu", progress=False)

        def step():
            return trainer.train_step(x, y)[0]

    def run():
        for _ in range(steps):
            loss = step()
        return float(loss)  # one host read per call, on both sides

    return run


FAMILIES = {family.name: family for family in [
    SweepFamily(
        "kmeans", "KMeans lloyd fit (10 iterations from the same init)", "scikit-learn KMeans",
        {"tiny": ({"n": 2_000, "d": 4, "k": 4, "dtype": np.float64},
                  {"n": (1_000, 4_000), "d": (2, 16), "k": (2, 16), "dtype": (np.float32,)}),
         "small": ({"n": 50_000, "d": 16, "k": 16, "dtype": np.float64},
                   {"n": (10_000, 200_000), "d": (2, 4, 64, 256), "k": (2, 128, 1024),
                    "dtype": (np.float32,)}),
         "medium": ({"n": 200_000, "d": 16, "k": 16, "dtype": np.float64},
                    {"n": (50_000, 1_000_000), "d": (2, 4, 8, 32, 64, 128, 256), "k": (2, 8, 64, 256, 1024),
                     "dtype": (np.float32,)}),
         "large": ({"n": 1_000_000, "d": 16, "k": 16, "dtype": np.float64},
                   {"n": (100_000, 3_000_000), "d": (2, 4, 8, 32, 64, 128, 256),
                    "k": (2, 8, 64, 256, 1024), "dtype": (np.float32,)})},
        _kmeans_data, _kmeans_call, _same_labels,
        notes=(f"Each contender's calls at a point start after {KMEANS_SETTLE_S:g} s of idle time, so that "
               "neither library is timed beside the other's OpenMP threads still spin-waiting (see "
               "KMEANS_SETTLE_S in fastscratch/compare/sweeps.py).",),
        settle_s=KMEANS_SETTLE_S),
    SweepFamily(
        "knn", "KNeighborsClassifier fit + predict", "scikit-learn KNeighborsClassifier()",
        {"tiny": ({"n": 2_000, "d": 3, "k": 5, "n_queries": 200, "dtype": np.float64},
                  {"d": (2, 16), "k": (1, 20), "n": (500,)}),
         "small": ({"n": 50_000, "d": 3, "k": 10, "n_queries": 5_000, "dtype": np.float64},
                   {"d": (2, 8, 16, 32), "k": (1, 50), "n": (10_000, 200_000), "dtype": (np.float32,)}),
         "medium": ({"n": 200_000, "d": 8, "k": 10, "n_queries": 20_000, "dtype": np.float64},
                    {"d": (2, 3, 16, 32, 64), "k": (1, 50), "n": (50_000, 1_000_000), "dtype": (np.float32,)})},
        _knn_data, _knn_call, _same_array),
    SweepFamily(
        "gaussian_nb", "GaussianNB fit", "scikit-learn GaussianNB",
        {"tiny": ({"n": 2_000, "d": 8, "classes": 3, "dtype": np.float64},
                  {"n": (500,), "d": (2, 50), "classes": (2, 20)}),
         "small": ({"n": 100_000, "d": 20, "classes": 10, "dtype": np.float64},
                   {"n": (10_000, 1_000_000), "d": (4, 100), "classes": (2, 100), "dtype": (np.float32,)}),
         "medium": ({"n": 300_000, "d": 50, "classes": 10, "dtype": np.float64},
                    {"n": (10_000, 100_000, 1_000_000), "d": (4, 10, 200), "classes": (2, 3, 30, 100),
                     "dtype": (np.float32,)})},
        _gaussian_nb_data, _gaussian_nb_call, _close_theta),
    SweepFamily(
        "multinomial_nb", "MultinomialNB fit on CSR counts", "scikit-learn MultinomialNB",
        {"tiny": ({"n": 2_000, "d": 500, "density": 0.01, "classes": 3},
                  {"density": (0.001, 0.1), "classes": (20,)}),
         "small": ({"n": 50_000, "d": 10_000, "density": 0.01, "classes": 10},
                   {"n": (10_000, 200_000), "d": (1_000, 50_000), "density": (0.001, 0.1), "classes": (2, 100)}),
         "medium": ({"n": 100_000, "d": 20_000, "density": 0.01, "classes": 10},
                    {"n": (20_000, 500_000), "d": (2_000, 100_000), "density": (0.001, 0.003, 0.03, 0.1),
                     "classes": (2, 100)})},
        _multinomial_nb_data, _multinomial_nb_call, _close_log_prob),
    SweepFamily(
        "boosting", "XGBClassifier fit (xgboost's defaults but trees and depth)", "xgboost XGBClassifier",
        {"tiny": ({"n": 3_000, "features": 8, "depth": 4, "trees": 5},
                  {"n": (1_000,), "features": (20,), "depth": (2, 6)}),
         "small": ({"n": 50_000, "features": 28, "depth": 6, "trees": 20},
                   {"n": (10_000, 200_000), "features": (8, 100), "depth": (3, 10)}),
         "medium": ({"n": 200_000, "features": 28, "depth": 6, "trees": 50},
                    {"n": (30_000, 100_000, 1_000_000), "features": (8, 100), "depth": (3, 8, 10)}),
         "large": ({"n": 1_000_000, "features": 28, "depth": 6, "trees": 100},
                   {"n": (100_000, 300_000, 3_000_000), "features": (8, 100), "depth": (3, 8, 10)})},
        _boosting_data, _boosting_call, None,
        notes=("Answers are compared in tests/test_boosting.py (trees equal to xgboost's given its cuts); "
               "here each library bins the data with its own quantiles.",)),
    SweepFamily(
        "arima", "SARIMA(1,1,1)(1,1,1,s) fit by exact likelihood", "statsmodels SARIMAX",
        {"tiny": ({"length": 120, "period": 4}, {"length": (60,), "period": (12,)}),
         "small": ({"length": 480, "period": 12}, {"length": (120, 2_000), "period": (4, 24)}),
         "medium": ({"length": 480, "period": 12}, {"length": (120, 2_000, 10_000), "period": (4, 7, 24)})},
        _arima_data, _arima_call, _close_llf),
    SweepFamily(
        "lstm", "2-layer LSTM training step (one CPU thread)", "torch.nn.LSTM",
        {"tiny": ({"batch": 8, "hidden": 16, "lookback": 8}, {"batch": (32,), "hidden": (32,), "lookback": (16,)}),
         "small": ({"batch": 64, "hidden": 64, "lookback": 24},
                   {"batch": (16, 256), "hidden": (16, 128), "lookback": (12, 96)}),
         "medium": ({"batch": 64, "hidden": 64, "lookback": 24},
                    {"batch": (16, 256, 1024), "hidden": (16, 128, 256), "lookback": (12, 48, 96)})},
        _lstm_data, _lstm_call, None,
        notes=("The scratch LSTM equals torch.nn.LSTM to float32 rounding (tests/test_lstm.py).",)),
    SweepFamily(
        "unet", "U-Net SGD step, same padding (our Trainer)", "bare PyTorch step",
        {"tiny": ({"image_size": 64, "base_width": 4, "steps": 1}, {"image_size": (32,), "base_width": (8,)}),
         "small": ({"image_size": 128, "base_width": 8, "steps": 10},
                   {"image_size": (64, 256), "base_width": (4, 16)}),
         "medium": ({"image_size": 256, "base_width": 16, "steps": 5},
                    {"image_size": (128, 512), "base_width": (8, 32)})},
        _unet_data, _unet_call, None,
        notes=("The reference is the same network, data, loss (cross-entropy) and optimiser (SGD, momentum "
               "0.99) stepped by a bare loop: the ratio is our training loop's overhead. Each timed call runs "
               "`steps` steps. Beyond the bare step, Trainer.train_step counts the correctly classified pixels "
               "(the training accuracy: ~22 us per 128 x 128 step, 0.1-0.2 % of the 12 ms step at base width 4) "
               "and enters a disabled autocast and GradScaler on CPU (~3 us); until this session its loss also "
               "went through a per-pixel tensor (~42 us, now F.cross_entropy's fused mean). The 1.06x once "
               "measured at base width 4 was a median of three single steps: timed over 40-step rounds "
               "(process CPU time, one thread, two instances of each side interleaved), ours took 10.51 and "
               "10.54 ms per step, the bare loop 10.30 and 10.44 ms: within 2 %, against 1.4 % between the "
               "bare loop's own two instances (shared machine).",)),
]}

# The compare task that each sweep family belongs to.
TASK_FAMILIES = {
    "knn": ("knn",),
    "kmeans": ("kmeans",),
    "naive_bayes": ("gaussian_nb", "multinomial_nb"),
    "boosting": ("boosting",),
    "timeseries": ("arima", "lstm"),
    "unet": ("unet",),
}


def get_family(name):
    """The :class:`SweepFamily` called ``name`` (ValueError listing the families otherwise)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown sweep family {name!r}; choose from {sorted(FAMILIES)}.")
    return FAMILIES[name]


def sweep_points(family, size):
    """The points of ``family``'s sweep at ``size``, one axis varied at a time.

    The base point comes first (axis "base"), then every axis value that
    differs from the base.
    """
    check_size(size)
    base, axes = sized(get_family(family).grids, size)
    points = [SweepPoint(family, "base", "base", tuple(sorted(base.items(), key=lambda item: item[0])))]
    for axis, values in axes.items():
        for value in values:
            if value is base[axis] or value == base[axis]:
                continue
            params = dict(base, **{axis: value})
            points.append(SweepPoint(family, axis, value, tuple(sorted(params.items(), key=lambda item: item[0]))))
    # Order each axis by value, so tables and plots read from small to large.
    return [points[0]] + sorted(points[1:], key=lambda p: (list(axes).index(p.axis), _order_key(p.value)))


def _order_key(value):
    if isinstance(value, type):
        return np.dtype(value).itemsize
    return value


@lru_cache(maxsize=2)
def point_data(point):
    """The data of ``point`` (the two most recent points are cached, so contenders share them)."""
    return get_family(point.family).make_data(**point.as_dict())


def settle(family):
    """Sleep ``family``'s ``settle_s`` (if any) before a contender's calls at a point.

    Idle OpenMP workers spin for a few milliseconds after a parallel region
    before they sleep; a library timed in that window shares the cores with
    the other library's spinning threads. Both contenders settle the same way.
    """
    seconds = get_family(family).settle_s
    if seconds > 0:
        time.sleep(seconds)


def point_call(point, contender, backend="auto"):
    """A function of no argument that runs ``contender``'s timed work at ``point`` once."""
    if contender not in CONTENDERS:
        raise ValueError(f"contender={contender!r} is not one of {CONTENDERS}.")
    return get_family(point.family).make_call(contender, point_data(point), backend, **point.as_dict())


@dataclass
class SweepRow:
    """Timings of both contenders at one point."""

    point: SweepPoint
    ours_s: float
    reference_s: float
    agree: object = None

    @property
    def ratio(self):
        return self.ours_s / self.reference_s if self.reference_s > 0 else float("nan")


def run_sweep(family, size, backend="auto", repeats=3, progress=None):
    """Time our estimator and the reference at every point of ``family``'s sweep.

    Each contender runs once untimed (compilation, caches), then ``repeats``
    times; the median counts. A family with ``settle_s`` waits that long
    before each contender's calls (:func:`settle`). Returns a list of
    :class:`SweepRow`.
    """
    from ._runner import time_call

    spec = get_family(family)
    rows = []
    for point in sweep_points(family, size):
        settle(family)
        reference, reference_s, _ = time_call(point_call(point, REFERENCE), repeats)
        settle(family)
        ours, ours_s, _ = time_call(point_call(point, OURS, backend), repeats)
        agree = None if spec.agree is None else spec.agree(ours, reference)
        rows.append(SweepRow(point, ours_s, reference_s, agree))
        if progress is not None:
            progress()
    point_data.cache_clear()
    return rows


def sweep_table_lines(family, rows):
    """Markdown table of a sweep: one line per point, and the worst and best ratio."""
    spec = get_family(family)
    lines = [f"### sweep {family}: {spec.title} vs {spec.reference}", "",
             "| point | parameters | ours (s) | reference (s) | ours / reference | answers agree |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        params = ", ".join(f"{name}={getattr(value, '__name__', value)}" for name, value in row.point.params)
        agree = "-" if row.agree is None else ("yes" if row.agree else "NO")
        lines.append(f"| {row.point.id} | {params} | {row.ours_s:.4g} | {row.reference_s:.4g} | "
                     f"{row.ratio:.2f}x | {agree} |")
    worst, best = ratio_range(rows)
    lines += ["", f"Ratio over the sweep: best {best:.2f}x, worst {worst:.2f}x (below 1 is faster)."]
    lines += [f"\n{note}" for note in spec.notes]
    return lines


def ratio_range(rows):
    """``(worst, best)`` ratio ours / reference over a sweep's rows."""
    ratios = [row.ratio for row in rows]
    return max(ratios), min(ratios)


_RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def plot_sweep(family, rows, path):
    """Plot the ratio ours / reference against each axis (log scales, a line at 1.0).

    Every axis gets a panel; its points are the base point and the points
    that vary that axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = get_family(family)
    base = next(row for row in rows if row.point.axis == "base")
    axes_names = list(dict.fromkeys(row.point.axis for row in rows if row.point.axis != "base"))
    figure, panels = plt.subplots(1, max(1, len(axes_names)), figsize=(3.2 * max(1, len(axes_names)), 3.0),
                                  squeeze=False)
    for panel, axis in zip(panels[0], axes_names):
        members = [row for row in rows if row.point.axis == axis] + [base]
        categorical = any(isinstance(row.point.as_dict()[axis], type) for row in members)
        members.sort(key=lambda row: _order_key(row.point.as_dict()[axis]))
        labels = [getattr(row.point.as_dict()[axis], "__name__", row.point.as_dict()[axis]) for row in members]
        x = np.arange(len(members)) if categorical else np.array([row.point.as_dict()[axis] for row in members],
                                                                 dtype=float)
        panel.plot(x, [row.ratio for row in members], marker="o", color="tab:blue")
        panel.axhline(1.0, color="black", linewidth=1)
        panel.set_yscale("log")
        ratios = [row.ratio for row in members] + [1.0]
        low, high = min(ratios) / 1.3, max(ratios) * 1.3
        panel.set_ylim(low, high)
        ticks = [t for t in _RATIO_TICKS if low <= t <= high]
        panel.set_yticks(ticks, [f"{t:g}x" for t in ticks])
        if not categorical and x.min() > 0 and x.max() / x.min() >= 8:
            panel.set_xscale("log")
        panel.set_xticks(x, [f"{label:,}" if isinstance(label, int) else str(label) for label in labels],
                         fontsize=7, rotation=30)
        panel.minorticks_off()
        panel.set_xlabel(axis)
        panel.set_ylabel("ours / reference time")
    figure.suptitle(f"{spec.title} vs {spec.reference}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
