"""ARIMA fits: each backend vs statsmodels' SARIMAX, and auto_arima vs pmdarima.

Tasks (issue 9): SARIMAX(1,1,1)(1,1,1,12) on the electric production series
and on statsmodels' co2 (weekly, resampled to monthly means), ARIMA(2,1,2) on
the electric series, and auto_arima (seasonal, m = 12, by AICc) on the
electric series. "tiny" cuts the series to the last 96 months and the
auto_arima search to non-seasonal orders <= 1; "large" adds the NumPy backend
to auto_arima. Numba kernels are compiled (Cython ones loaded) before timing.

Regression with SARIMA errors (issue 18): SARIMAX(1,1,1)(1,1,1,12) with two
regressors, fitted by exact joint MLE, on the electric series (a level shift
from 2009 and log(t + 1); "tiny" keeps the last 150 months) and on a simulated
series of 10,000 points ("tiny" 400, "small" 2,000), the fit alone and the
fit followed by the standard errors (statsmodels computes them in ``fit``).
Measured interleaved in one process on the shared 2-core machine (backend
"auto" = Cython, medians): electric fit 0.160 s vs statsmodels 2.38 s (0.067x),
fit + bse 0.158 vs 2.32 s (0.068x), 9 rounds; 10,000 points fit 2.25 vs
47.4 s (0.048x), fit + bse 2.39 vs 48.0 s (0.050x), 3 rounds; same llf to 1e-7.

statsmodels and pmdarima run with BLAS limited to one thread, as our fits do
(L-BFGS-B and the small state-space products are slower on several BLAS
threads; on the shared 2-core machine, 5-10x slower): the conservative
comparison.
"""

import warnings

import numpy as np
import pytest
from fastscratch.kernels import available_backends
from fastscratch.kernels._threads import blas_single_threaded

import fastscratch
from fastscratch._sizes import sized
from fastscratch.datasets import load_electric_production

sarimax = pytest.importorskip("statsmodels.tsa.statespace.sarimax")

SEASONAL = ((1, 1, 1), (1, 1, 1, 12))
NON_SEASONAL = ((2, 1, 2), (0, 0, 0, 0))


def _electric(bench_size):
    y = load_electric_production()
    return y.iloc[-96:] if bench_size == "tiny" else y


def _co2(bench_size):
    import statsmodels.api as sm

    y = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().ffill()
    return y.iloc[-96:] if bench_size == "tiny" else y


def _warm_up(backend):
    y = np.sin(np.arange(40.0)) + np.arange(40) * 0.01
    fastscratch.ARIMA((1, 0, 1), backend=backend).fit(y)


def _rounds(backend, bench_size):
    return 1 if backend == "numpy" and bench_size != "tiny" else 3


def _bench_ours(benchmark, y, order, seasonal_order, backend, bench_size, group):
    _warm_up(backend)
    model = fastscratch.ARIMA(order, seasonal_order, backend=backend)
    benchmark.group = group
    benchmark.extra_info["backend"] = backend
    result = benchmark.pedantic(model.fit, args=(y,), rounds=_rounds(backend, bench_size),
                                iterations=1)
    benchmark.extra_info["llf"] = result.llf


def _bench_statsmodels(benchmark, y, order, seasonal_order, group):
    def fit():
        with warnings.catch_warnings(), blas_single_threaded():
            warnings.simplefilter("ignore")
            return sarimax.SARIMAX(y, order=order, seasonal_order=seasonal_order).fit(disp=False)

    benchmark.group = group
    benchmark.extra_info["backend"] = "statsmodels SARIMAX"
    result = benchmark.pedantic(fit, rounds=3, iterations=1)
    benchmark.extra_info["llf"] = result.llf


@pytest.mark.parametrize("backend", available_backends())
def test_fit_sarima_electric(benchmark, bench_size, backend):
    y = _electric(bench_size)
    _bench_ours(benchmark, y, *SEASONAL, backend, bench_size,
                f"fit SARIMAX(1,1,1)(1,1,1,12) electric n={len(y)}")


def test_fit_sarima_electric_statsmodels(benchmark, bench_size):
    y = _electric(bench_size)
    _bench_statsmodels(benchmark, y, *SEASONAL, f"fit SARIMAX(1,1,1)(1,1,1,12) electric n={len(y)}")


@pytest.mark.parametrize("backend", available_backends())
def test_fit_sarima_co2(benchmark, bench_size, backend):
    y = _co2(bench_size)
    _bench_ours(benchmark, y, *SEASONAL, backend, bench_size,
                f"fit SARIMAX(1,1,1)(1,1,1,12) co2 n={len(y)}")


def test_fit_sarima_co2_statsmodels(benchmark, bench_size):
    y = _co2(bench_size)
    _bench_statsmodels(benchmark, y, *SEASONAL, f"fit SARIMAX(1,1,1)(1,1,1,12) co2 n={len(y)}")


@pytest.mark.parametrize("backend", available_backends())
def test_fit_arima212_electric(benchmark, bench_size, backend):
    y = _electric(bench_size)
    _bench_ours(benchmark, y, *NON_SEASONAL, backend, bench_size,
                f"fit ARIMA(2,1,2) electric n={len(y)}")


def test_fit_arima212_electric_statsmodels(benchmark, bench_size):
    y = _electric(bench_size)
    _bench_statsmodels(benchmark, y, *NON_SEASONAL, f"fit ARIMA(2,1,2) electric n={len(y)}")


def _auto_kwargs(bench_size):
    if bench_size == "tiny":
        return {"seasonal": False, "start_p": 1, "start_q": 1, "max_p": 1, "max_q": 1}
    return {"seasonal": True, "m": 12}


@pytest.mark.parametrize("backend", available_backends())
def test_auto_arima_electric(benchmark, bench_size, backend):
    if backend == "numpy" and bench_size == "medium":
        pytest.skip("the NumPy reference takes minutes here; run --bench-size large")
    y = _electric(bench_size)
    _warm_up(backend)
    benchmark.group = f"auto_arima electric n={len(y)} {_auto_kwargs(bench_size)}"
    benchmark.extra_info["backend"] = backend
    result = benchmark.pedantic(fastscratch.auto_arima, args=(y,),
                                kwargs={**_auto_kwargs(bench_size), "backend": backend},
                                rounds=1, iterations=1)
    benchmark.extra_info["model"] = f"{result.order}{result.seasonal_order} {result.trend}"
    benchmark.extra_info["aicc"] = result.aicc


def test_auto_arima_electric_pmdarima(benchmark, bench_size):
    pm = pytest.importorskip("pmdarima")
    y = _electric(bench_size)
    kwargs = _auto_kwargs(bench_size)

    def search():
        with warnings.catch_warnings(), blas_single_threaded():
            warnings.simplefilter("ignore")
            return pm.auto_arima(y, information_criterion="aicc", stepwise=True,
                                 suppress_warnings=True, error_action="ignore", **kwargs)

    benchmark.group = f"auto_arima electric n={len(y)} {kwargs}"
    benchmark.extra_info["backend"] = "pmdarima auto_arima"
    result = benchmark.pedantic(search, rounds=1, iterations=1)
    benchmark.extra_info["model"] = f"{result.order}{result.seasonal_order}"
    benchmark.extra_info["aicc"] = result.aicc()


# ---------------------------------------------------------------------------
# SARIMAX with regressors (issue 18)
# ---------------------------------------------------------------------------
SIMULATED_LENGTH = {"tiny": 400, "small": 2_000, "medium": 10_000}


def _electric_exog(bench_size):
    import pandas as pd

    y = load_electric_production()
    exog = pd.DataFrame({"shift": (y.index >= "2009-01-01").astype(float),
                         "logt": np.log1p(np.arange(len(y)))}, index=y.index)
    if bench_size == "tiny":
        return y.iloc[-150:], exog.iloc[-150:]
    return y, exog


def simulate_sarimax(n, seed=0):
    """y = 2 x1 - 1.5 x2 + u, u ~ SARIMA(1,1,1)(1,1,1,12); x1 an AR(1), x2 a level shift."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    ar = np.convolve([1.0, -0.5], np.r_[1.0, np.zeros(11), -0.3])
    ma = np.convolve([1.0, 0.4], np.r_[1.0, np.zeros(11), -0.6])
    u = np.cumsum(lfilter(ma, ar, rng.normal(size=n + 100))[100:])
    for t in range(12, n):
        u[t] += u[t - 12]
    exog = np.column_stack([lfilter([1.0], [1.0, -0.8], rng.normal(size=n)),
                            (np.arange(n) >= n // 2).astype(float)])
    return u + exog @ np.array([2.0, -1.5]), exog


def _exog_data(data, bench_size):
    if data == "electric":
        return _electric_exog(bench_size)
    return simulate_sarimax(sized(SIMULATED_LENGTH, bench_size))


@pytest.mark.parametrize("with_bse", [False, True], ids=["fit", "fit+bse"])
@pytest.mark.parametrize("data", ["electric", "simulated"])
@pytest.mark.parametrize("backend", available_backends())
def test_fit_sarimax_exog(benchmark, bench_size, backend, data, with_bse):
    if backend == "numpy" and bench_size != "large":
        pytest.skip("the NumPy reference takes minutes here; run --bench-size large")
    y, exog = _exog_data(data, bench_size)
    _warm_up(backend)
    model = fastscratch.SARIMAX(*SEASONAL, backend=backend)

    def fit():
        result = model.fit(y, exog=exog)
        if with_bse:
            result.bse  # noqa: B018 (computed on first use)
        return result

    benchmark.group = f"{'fit+bse' if with_bse else 'fit'} SARIMAX(1,1,1)(1,1,1,12) + 2 exog " \
                      f"{data} n={len(y)}"
    benchmark.extra_info["backend"] = backend
    result = benchmark.pedantic(fit, rounds=_rounds(backend, bench_size), iterations=1)
    benchmark.extra_info["llf"] = result.llf


@pytest.mark.parametrize("with_bse", [False, True], ids=["fit", "fit+bse"])
@pytest.mark.parametrize("data", ["electric", "simulated"])
def test_fit_sarimax_exog_statsmodels(benchmark, bench_size, data, with_bse):
    y, exog = _exog_data(data, bench_size)

    def fit():
        with warnings.catch_warnings(), blas_single_threaded():
            warnings.simplefilter("ignore")
            result = sarimax.SARIMAX(y, exog=exog, order=SEASONAL[0],
                                     seasonal_order=SEASONAL[1]).fit(disp=False)
            if with_bse:
                result.bse  # noqa: B018
            return result

    benchmark.group = f"{'fit+bse' if with_bse else 'fit'} SARIMAX(1,1,1)(1,1,1,12) + 2 exog " \
                      f"{data} n={len(y)}"
    benchmark.extra_info["backend"] = "statsmodels SARIMAX"
    rounds = 1 if len(y) > 5_000 else 3
    result = benchmark.pedantic(fit, rounds=rounds, iterations=1)
    benchmark.extra_info["llf"] = result.llf


# The speed sweep of fastscratch/compare/sweeps.py: ours (backend="auto") and the reference at
# every point, one axis varied at a time (benchmarks/conftest.py builds the cases).
SWEEP_FAMILIES = ("arima",)


def test_sweep(benchmark, sweep_case):
    sweep_case.run(benchmark)
