"""ARIMA: kernels against the NumPy reference, the model against statsmodels' SARIMAX,
auto_arima against pmdarima and an exhaustive search."""

import warnings

import numpy as np
import pytest
from fastscratch.kernels import get_kernel
from fastscratch.kernels.arima_numpy import stationary_cov
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import fastscratch
from fastscratch.datasets import load_electric_production
from fastscratch.timeseries._arima_auto import kpss_statistic, ndiffs, nsdiffs
from fastscratch.timeseries.arima import (
    ARIMA,
    constrain_stationary,
    unconstrain_stationary,
)

sm_sarimax = pytest.importorskip("statsmodels.tsa.statespace.sarimax")


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """statsmodels' and pmdarima's small matrix products are much slower on BLAS threads."""
    from fastscratch.kernels._threads import blas_single_threaded

    with blas_single_threaded():
        yield


@pytest.fixture(scope="module")
def electric():
    return load_electric_production()


@pytest.fixture(scope="module")
def co2():
    import statsmodels.api as sm

    series = sm.datasets.co2.load_pandas().data["co2"]
    return series.resample("MS").mean().ffill()


def _random_arma(rng, p, q, m):
    """Stationary, invertible (phi, theta) padded to m and m - 1.

    Partial autocorrelations within +-0.6 keep P0 well conditioned, so that the
    backends' different P0 algorithms (Lyapunov solve, autocovariances) agree to 1e-10.
    """
    phi = np.zeros(m)
    theta = np.zeros(m - 1)
    phi[:p] = constrain_stationary(rng.uniform(-0.75, 0.75, size=p))
    theta[:q] = -constrain_stationary(rng.uniform(-0.75, 0.75, size=q))
    return phi, theta


KERNEL_CASES = [(1, 0, 1), (0, 0, 1), (2, 2, 3), (3, 1, 4), (13, 13, 14)]


# ---------------------------------------------------------------------------
# Kernels: every backend equals the NumPy reference (1e-10)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("p, q, m", KERNEL_CASES)
def test_kalman_filter_kernel_matches_reference(backend, rng, p, q, m):
    n = 120
    phi, theta = _random_arma(rng, p, q, m)
    w = rng.normal(size=n).cumsum() * 0.1 + rng.normal(size=n)
    intercept = rng.normal(size=n) * 0.1
    a0 = rng.normal(size=m)
    outputs = {}
    for name in ("numpy", backend):
        kernel = get_kernel("arima_kalman_filter", name)
        v, F, state, cov = np.empty(n), np.empty(n), np.empty(m), np.empty((m, m))
        kernel(w, intercept, phi, theta, a0, v, F, state, cov, 1)
        outputs[name] = (v, F, state, cov)
    for expected, got in zip(outputs["numpy"], outputs[backend]):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    # F_0 is the stationary variance of w, P0[0, 0].
    np.testing.assert_allclose(outputs[backend][1][0], stationary_cov(phi, theta)[0, 0], rtol=1e-10)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_kalman_loglike_batch_matches_reference(backend, rng, n_threads):
    n, m, b = 90, 4, 5
    rows = [_random_arma(rng, 3, 3, m) for _ in range(b)]
    phi = np.ascontiguousarray([r[0] for r in rows])
    theta = np.ascontiguousarray([r[1] for r in rows])
    w = rng.normal(size=(b, n))
    intercept = rng.normal(size=(b, n)) * 0.1
    a0 = rng.normal(size=(b, m))
    results = {}
    for name, threads in (("numpy", 1), (backend, n_threads)):
        sums = np.empty(b), np.empty(b)
        get_kernel("arima_kalman_loglike", name)(w, intercept, phi, theta, a0, *sums, threads)
        results[name] = sums
    for expected, got in zip(results["numpy"], results[backend]):
        np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("d_poly", [[], [-1.0], [-1.0, -1.0, 1.0]])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_missing_filter_kernels_match_reference(backend, rng, d_poly, n_threads):
    """The augmented-state filter (NaN skipped): every backend equals the NumPy reference,
    and without NaN it equals the differenced-series filter."""
    n, m, b = 70, 4, 3
    delta = np.array(d_poly)
    k = delta.shape[0]
    phi, theta = _random_arma(rng, 3, 3, m)
    y = rng.normal(size=n).cumsum()
    y[[3, 4, 40, n - 1]] = np.nan
    lags0 = rng.normal(size=k)
    intercept = rng.normal(size=n) * 0.1
    a0 = rng.normal(size=m)
    outputs = {}
    for name in ("numpy", backend):
        out = np.empty(n), np.empty(n), np.empty(m + k), np.empty((m + k, m + k))
        get_kernel("arima_kalman_filter_missing", name)(y, lags0, delta, intercept, phi, theta,
                                                        a0, *out, 1)
        outputs[name] = out
    for expected, got in zip(outputs["numpy"], outputs[backend]):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    rows = [_random_arma(rng, 2, 3, m) for _ in range(b)]
    batch = (np.ascontiguousarray(np.tile(y, (b, 1))), np.ascontiguousarray(np.tile(lags0, (b, 1))),
             delta, np.ascontiguousarray(np.tile(intercept, (b, 1))),
             np.ascontiguousarray([r[0] for r in rows]), np.ascontiguousarray([r[1] for r in rows]),
             np.ascontiguousarray(np.tile(a0, (b, 1))))
    sums = {}
    for name, threads in (("numpy", 1), (backend, n_threads)):
        sums[name] = np.empty(b), np.empty(b)
        get_kernel("arima_kalman_loglike_missing", name)(*batch, *sums[name], threads)
    for expected, got in zip(sums["numpy"], sums[backend]):
        np.testing.assert_allclose(got, expected, rtol=1e-10)
    # Without NaN: the innovations of the differenced-series filter.
    y = rng.normal(size=n).cumsum()
    w = np.convolve(np.r_[lags0[::-1], y], np.r_[1.0, delta])[k:k + n]
    v, F = np.empty(n), np.empty(n)
    get_kernel("arima_kalman_filter", backend)(w, intercept, phi, theta, a0, v, F, np.empty(m),
                                               np.empty((m, m)), 1)
    pred, F_aug = np.empty(n), np.empty(n)
    get_kernel("arima_kalman_filter_missing", backend)(y, lags0, delta, intercept, phi, theta, a0,
                                                       pred, F_aug, np.empty(m + k),
                                                       np.empty((m + k, m + k)), 1)
    np.testing.assert_allclose(y - pred, v, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(F_aug, F, rtol=1e-10)


@pytest.mark.parametrize("p, q", [(0, 0), (1, 0), (0, 2), (2, 1), (13, 13)])
def test_css_kernel_matches_reference(backend, rng, p, q):
    n = 80
    phi = constrain_stationary(rng.normal(size=p))
    theta = -constrain_stationary(rng.normal(size=q))
    w = rng.normal(size=n)
    intercept = np.full(n, 0.3)
    expected, got = np.empty(n), np.empty(n)
    get_kernel("arima_css_residuals", "numpy")(w, intercept, phi, theta, expected, 1)
    get_kernel("arima_css_residuals", backend)(w, intercept, phi, theta, got, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert np.all(got[:p] == 0)


def test_css_residuals_equal_linear_filter(rng):
    """The CSS recursion is theta(L) e = phi(L) w - c, started at t = p with zeros."""
    from scipy.signal import lfilter

    n, p = 60, 2
    phi = np.array([0.5, -0.2])
    theta = np.array([0.4])
    w = rng.normal(size=n)
    resid = np.empty(n)
    get_kernel("arima_css_residuals", "numpy")(w, np.zeros(n), phi, theta, resid, 1)
    ar_part = lfilter(np.r_[1.0, -phi], [1.0], w)[p:]
    np.testing.assert_allclose(resid[p:], lfilter([1.0], np.r_[1.0, theta], ar_part), rtol=1e-12)


# ---------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------
def test_transforms_match_statsmodels_and_invert(rng):
    from statsmodels.tsa.statespace.tools import (
        constrain_stationary_univariate,
        unconstrain_stationary_univariate,
    )

    for k in (1, 2, 5):
        u = rng.normal(size=k) * 2
        c = constrain_stationary(u)
        np.testing.assert_allclose(c, constrain_stationary_univariate(u), rtol=1e-12)
        np.testing.assert_allclose(unconstrain_stationary(c), u, rtol=1e-8)
        np.testing.assert_allclose(unconstrain_stationary(c), unconstrain_stationary_univariate(c),
                                   rtol=1e-10)
        roots = np.roots(np.r_[-c[::-1], 1.0])
        assert np.all(np.abs(roots) > 1)


# ---------------------------------------------------------------------------
# Against statsmodels' SARIMAX
# ---------------------------------------------------------------------------
SM_CASES = [
    ("electric", (1, 0, 0), (0, 0, 0, 0), "c"),
    ("electric", (2, 1, 2), (0, 0, 0, 0), "n"),
    ("electric", (0, 1, 1), (0, 1, 1, 12), "n"),
    ("electric", (1, 1, 1), (1, 1, 1, 12), "n"),
    ("co2", (0, 1, 1), (0, 1, 1, 12), "n"),
]


@pytest.mark.parametrize("data, order, seasonal_order, trend", SM_CASES)
def test_matches_statsmodels_sarimax(request, data, order, seasonal_order, trend):
    y = request.getfixturevalue(data)
    model = sm_sarimax.SARIMAX(y, order=order, seasonal_order=seasonal_order, trend=trend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = model.fit(disp=False)
    got = ARIMA(order, seasonal_order, trend).fit(y)

    assert list(got.params.index) == list(expected.params.index)
    np.testing.assert_allclose(got.params, expected.params, rtol=1e-3)
    np.testing.assert_allclose(got.llf, expected.llf, rtol=1e-4)
    # Our exact-diffuse llf vs statsmodels' approximate-diffuse llf at the same parameters.
    np.testing.assert_allclose(got.llf, model.loglike(got.params.to_numpy()), rtol=1e-5)
    for criterion in ("aic", "bic", "aicc"):
        np.testing.assert_allclose(getattr(got, criterion), getattr(expected, criterion), rtol=1e-4)

    steps = 24
    expected_forecast = expected.get_forecast(steps)
    got_forecast = got.get_forecast(steps)
    np.testing.assert_allclose(got_forecast.predicted_mean, expected_forecast.predicted_mean,
                               rtol=1e-3)
    np.testing.assert_allclose(got_forecast.conf_int(alpha=0.05),
                               expected_forecast.conf_int(alpha=0.05), rtol=1e-3)
    np.testing.assert_allclose(got.forecast(steps), expected.forecast(steps), rtol=1e-3)
    assert got_forecast.predicted_mean.index.equals(expected_forecast.predicted_mean.index)
    assert list(got_forecast.conf_int().columns) == list(expected_forecast.conf_int().columns)

    # Residuals / fitted values at our parameters, including the first d + sD.
    at_ours = model.filter(got.params.to_numpy())
    scale = np.std(np.asarray(y))
    np.testing.assert_allclose(got.resid, at_ours.resid, atol=2e-3 * scale)
    np.testing.assert_allclose(got.fittedvalues, at_ours.fittedvalues, atol=2e-3 * scale)
    assert got.order == order and got.seasonal_order[:3] == seasonal_order[:3]


def test_trend_t_forecast_matches_statsmodels_at_same_params(electric):
    """Drift with differencing: compare the filter and forecasts at fixed parameters."""
    got = ARIMA((1, 1, 0), trend="ct").fit(electric)
    model = sm_sarimax.SARIMAX(electric, order=(1, 1, 0), trend="ct")
    at_ours = model.filter(got.params.to_numpy())
    np.testing.assert_allclose(got.llf, at_ours.llf, rtol=1e-5)
    np.testing.assert_allclose(got.forecast(12), at_ours.forecast(12), rtol=1e-4)
    np.testing.assert_allclose(got.get_forecast(12).conf_int(), at_ours.get_forecast(12).conf_int(),
                               rtol=1e-4)


def test_backends_give_the_same_fit(electric, backend):
    reference = ARIMA((0, 1, 1), (0, 1, 1, 12), backend="numba" if backend == "numpy" else "numpy")
    if backend == "numpy":
        pytest.skip("compared from the compiled backends")
    got = ARIMA((0, 1, 1), (0, 1, 1, 12), backend=backend).fit(electric)
    expected = reference.fit(electric)
    np.testing.assert_allclose(got.params, expected.params, rtol=1e-6)
    np.testing.assert_allclose(got.llf, expected.llf, rtol=1e-10)
    assert got.backend == backend


def test_threads_give_the_same_fit(electric, optimised_backend):
    one = ARIMA((1, 1, 1), backend=optimised_backend, n_jobs=1).fit(electric)
    two = ARIMA((1, 1, 1), backend=optimised_backend, n_jobs=2).fit(electric)
    np.testing.assert_array_equal(one.params, two.params)


def test_css_fit_is_conditional_least_squares_for_pure_ar(electric):
    """For a pure AR, CSS is the OLS regression of w_t on its lags and a constant."""
    res = ARIMA((2, 1, 0), trend="c").fit(electric, method="css")
    w = np.diff(electric.to_numpy())
    design = np.column_stack([np.ones(w.size - 2), w[1:-1], w[:-2]])
    coef, *_ = np.linalg.lstsq(design, w[2:], rcond=None)
    np.testing.assert_allclose(res.params.to_numpy()[:3], coef, rtol=1e-4, atol=1e-6)
    resid = w[2:] - design @ coef
    np.testing.assert_allclose(res.params["sigma2"], resid @ resid / resid.size, rtol=1e-4)
    assert res.method == "css"


def test_numpy_input_and_outputs(electric):
    y = electric.to_numpy()
    res = ARIMA((1, 1, 1), (0, 1, 1, 12)).fit(y)
    assert isinstance(res.forecast(5), np.ndarray) and res.forecast(5).shape == (5,)
    bounds = res.get_forecast(5).conf_int(alpha=0.1)
    assert isinstance(bounds, np.ndarray) and bounds.shape == (5, 2)
    assert np.all(bounds[:, 0] < res.forecast(5)) and np.all(res.forecast(5) < bounds[:, 1])
    assert res.resid.shape == y.shape and res.fittedvalues.shape == y.shape
    text = res.summary()
    for name in res.params.index:
        assert name in text
    series_res = ARIMA((1, 1, 1), (0, 1, 1, 12)).fit(electric)
    np.testing.assert_allclose(series_res.forecast(5).to_numpy(), res.forecast(5), rtol=1e-12)
    assert series_res.forecast(3).index[0] == electric.index[-1] + electric.index.freq


def test_get_params_and_clone():
    model = ARIMA((2, 1, 0), (1, 0, 0, 4), trend="t", backend="numpy")
    params = clone(model).get_params()
    assert params["order"] == (2, 1, 0) and params["seasonal_order"] == (1, 0, 0, 4)
    assert params["trend"] == "t" and params["enforce_stationarity"] is True


# ---------------------------------------------------------------------------
# Bad input and warnings
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    ({"order": (1.5, 0, 0)}, ValueError, "order"),
    ({"order": (1, 0)}, TypeError, "order"),
    ({"seasonal_order": (1, 0, 0, 1)}, ValueError, "s < 2"),
    ({"seasonal_order": (0, 1, 0, 0)}, ValueError, "s < 2"),
    ({"trend": "x"}, ValueError, "trend"),
])
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        ARIMA(**kwargs).fit(np.arange(100.0))


def test_bad_series():
    with pytest.raises(ValueError, match="infinite"):
        ARIMA().fit(np.r_[np.arange(20.0), np.inf])
    with pytest.raises(ValueError, match="at least 40"):
        ARIMA((1, 1, 1), (1, 1, 1, 12)).fit(np.arange(20.0))
    with pytest.raises(ValueError, match="one-dimensional"):
        ARIMA().fit(np.ones((10, 2)))
    with pytest.raises(ValueError, match="method"):
        ARIMA().fit(np.arange(30.0), method="ols")


def test_non_convergence_warns(electric):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        ARIMA((2, 1, 2)).fit(electric, maxiter=1)


# ---------------------------------------------------------------------------
# auto_arima
# ---------------------------------------------------------------------------
def test_kpss_matches_statsmodels(electric):
    from statsmodels.tsa.stattools import kpss

    x = np.diff(electric.to_numpy(), 12)
    n_lags = int(np.trunc(3 * np.sqrt(x.size) / 13))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = kpss(x, regression="c", nlags=n_lags)[0]
    np.testing.assert_allclose(kpss_statistic(x), expected, rtol=1e-10)


def test_differencing_tests(electric, rng):
    assert nsdiffs(electric.to_numpy(), 12) == 1
    assert nsdiffs(rng.normal(size=200), 12) == 0
    assert ndiffs(rng.normal(size=200)) == 0
    assert ndiffs(rng.normal(size=300).cumsum()) == 1


def test_auto_arima_no_worse_than_pmdarima():
    pm = pytest.importorskip("pmdarima")
    import statsmodels.api as sm

    y = sm.datasets.macrodata.load_pandas().data["realinv"].to_numpy()
    y = np.log(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = pm.auto_arima(y, seasonal=False, information_criterion="aicc", max_p=3,
                                  max_q=3, stepwise=True, suppress_warnings=True,
                                  error_action="ignore")
    got = fastscratch.auto_arima(y, seasonal=False, max_p=3, max_q=3)
    assert got.order[1] == reference.order[1]
    # pmdarima's choice, refitted by us (exact likelihood), and as pmdarima reports it.
    trend = "c" if reference.with_intercept else "n"
    theirs = ARIMA(reference.order, trend=trend).fit(y)
    assert got.aicc <= theirs.aicc + 1e-6
    assert got.aicc <= reference.aicc() + 1e-3


def test_auto_arima_seasonal_against_exhaustive_grid(electric):
    got = fastscratch.auto_arima(electric, m=12, max_p=1, max_q=1, max_P=1, max_Q=1)
    d, D = got.order[1], got.seasonal_order[1]
    assert (d, D) == (1, 1)
    best = min(
        ARIMA((p, d, q), (P, D, Q, 12)).fit(electric).aicc
        for p in (0, 1) for q in (0, 1) for P in (0, 1) for Q in (0, 1)
    )
    assert got.aicc <= best + 1e-6
    assert got.forecast(12).index[0] == electric.index[-1] + electric.index.freq


def test_auto_arima_bad_input():
    with pytest.raises(ValueError, match="information_criterion"):
        fastscratch.auto_arima(np.arange(50.0), information_criterion="hqic")
    with pytest.raises(ValueError, match="max_p"):
        fastscratch.auto_arima(np.arange(50.0), max_p=-1)


def test_batch_transforms_equal_the_single_ones(rng):
    """The vectorised constrain / polynomial expansion used by the optimiser equal the
    one-row functions (statsmodels-equal transforms, np.convolve products)."""
    from fastscratch.timeseries.arima import _Spec

    spec = _Spec((3, 1, 2), (2, 1, 1, 4), "c", True, True, ["a", "b"])
    rows = rng.normal(size=(6, spec.k_params - 1)) * 2
    constrained = spec.constrain_rows(rows)
    for row, expected in zip(rows, constrained):
        np.testing.assert_array_equal(spec.constrain(row), expected)
    phi, theta = spec.polynomial_rows(constrained)
    for i, row in enumerate(constrained):
        phi_full, theta_full = spec.polynomials(row)
        np.testing.assert_allclose(phi[i, :phi_full.size], phi_full, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(theta[i, :theta_full.size], theta_full, rtol=1e-14, atol=1e-15)
        assert not phi[i, phi_full.size:].any() and not theta[i, theta_full.size:].any()
