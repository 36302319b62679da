"""ARIMA fits: each backend vs statsmodels' SARIMAX, and auto_arima vs pmdarima.

Tasks (issue 9): SARIMAX(1,1,1)(1,1,1,12) on the electric production series
and on statsmodels' co2 (weekly, resampled to monthly means), ARIMA(2,1,2) on
the electric series, and auto_arima (seasonal, m = 12, by AICc) on the
electric series. "tiny" cuts the series to the last 96 months and the
auto_arima search to non-seasonal orders <= 1; "large" adds the NumPy backend
to auto_arima. Numba kernels are compiled (Cython ones loaded) before timing.

statsmodels and pmdarima run with BLAS limited to one thread, as our fits do
(L-BFGS-B and the small state-space products are slower on several BLAS
threads; on the shared 2-core machine, 5-10x slower): the conservative
comparison.
"""

import warnings

import numpy as np
import pytest

import fastscratch
from fastscratch.datasets import load_electric_production
from fastscratch.kernels import available_backends
from fastscratch.kernels._threads import blas_single_threaded

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


# The speed sweep of fastscratch/compare/sweeps.py: ours (backend="auto") and the reference at
# every point, one axis varied at a time (benchmarks/conftest.py builds the cases).
SWEEP_FAMILIES = ("arima",)


def test_sweep(benchmark, sweep_case):
    sweep_case.run(benchmark)
