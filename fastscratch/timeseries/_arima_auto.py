r"""Automatic order selection for :class:`~fastscratch.timeseries.arima.ARIMA`.

Hyndman and Khandakar (2008), as R's ``forecast::auto.arima`` and pmdarima's
``auto_arima``:

1. the seasonal differences D from a seasonal test (the seasonal strength of
   R's ``nsdiffs(test="seas")`` by default, or the OCSB test of pmdarima's
   default), then the differences d from repeated KPSS tests on the
   seasonally differenced series;
2. a stepwise search over (p, q, P, Q, constant) from four starting models,
   moving to the best neighbour (one or two orders changed by one, or the
   constant toggled) until no neighbour lowers the information criterion.
"""

import warnings

import numpy as np
from tqdm.auto import tqdm

# Kwiatkowski et al. (1992), Table 1, level stationarity: (significance, critical value).
_KPSS_LEVEL_TABLE = ((0.10, 0.347), (0.05, 0.463), (0.025, 0.574), (0.01, 0.739))
# Wang, Smith and Hyndman (2006): difference seasonally when the seasonal strength exceeds it.
SEASONAL_STRENGTH_THRESHOLD = 0.64


def kpss_statistic(x, n_lags=None):
    r"""KPSS statistic for level stationarity (Kwiatkowski et al., 1992).

    .. math::

        \eta = \frac{1}{n^2 \hat\sigma^2_{LR}} \sum_{t=1}^n S_t^2, \quad
        S_t = \sum_{i \le t} (x_i - \bar x), \quad
        \hat\sigma^2_{LR} = \hat\gamma_0
            + 2 \sum_{l=1}^{L} \Bigl(1 - \frac{l}{L+1}\Bigr) \hat\gamma_l

    (Newey-West long-run variance, Bartlett weights), with
    :math:`L = \lfloor 3 \sqrt{n} / 13 \rfloor` lags by default (pmdarima's
    and R's ``lshort``).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n_lags is None:
        n_lags = int(np.trunc(3.0 * np.sqrt(n) / 13.0))
    resid = x - x.mean()
    partial_sums = np.cumsum(resid)
    long_run = np.dot(resid, resid) / n
    for lag in range(1, n_lags + 1):
        long_run += 2.0 * (1.0 - lag / (n_lags + 1.0)) * np.dot(resid[lag:], resid[:-lag]) / n
    return float(np.dot(partial_sums, partial_sums) / (n * n * long_run))


def _kpss_critical_value(alpha):
    levels = np.array([level for level, _ in _KPSS_LEVEL_TABLE])
    values = np.array([value for _, value in _KPSS_LEVEL_TABLE])
    # Interpolate in log(alpha), clipped to the table.
    return float(np.interp(np.log(alpha), np.log(levels[::-1]), values[::-1]))


def ndiffs(x, alpha=0.05, max_d=2):
    """Number of differences d: difference while the KPSS test rejects level stationarity."""
    x = np.asarray(x, dtype=np.float64)
    critical = _kpss_critical_value(alpha)
    d = 0
    while d < max_d and x.shape[0] > 3 and np.ptp(x) > 0 and kpss_statistic(x) > critical:
        x = np.diff(x)
        d += 1
    return d


def seasonal_strength(x, m):
    r"""Seasonal strength :math:`F_s = \max(0, 1 - \mathrm{Var}(R) / \mathrm{Var}(S + R))`.

    From a classical additive decomposition: the trend is the centred moving
    average of order m (2 x m for even m), the seasonal component the
    per-position mean of the detrended series (centred to sum to zero), R the
    remainder (Wang, Smith and Hyndman, 2006; R's ``nsdiffs`` uses STL).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n < 2 * m + 1:
        return 0.0
    if m % 2 == 0:
        weights = np.concatenate([[0.5], np.ones(m - 1), [0.5]]) / m
    else:
        weights = np.ones(m) / m
    half = (weights.shape[0] - 1) // 2
    trend = np.full(n, np.nan)
    trend[half:n - half] = np.convolve(x, weights, mode="valid")
    detrended = x - trend
    seasonal_means = np.array([np.nanmean(detrended[i::m]) for i in range(m)])
    seasonal_means -= seasonal_means.mean()
    seasonal = np.resize(seasonal_means, n)
    keep = ~np.isnan(trend)
    remainder = detrended[keep] - seasonal[keep]
    total = np.var(detrended[keep])
    if total <= 0:
        return 0.0
    return float(max(0.0, 1.0 - np.var(remainder) / total))


def _ols(design, target):
    """(coefficients, t statistics, AIC) of a least-squares fit (Gaussian AIC, as statsmodels)."""
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ coef
    n, k = design.shape
    sse = float(resid @ resid)
    sigma2 = sse / (n - k)
    cov = sigma2 * np.linalg.pinv(design.T @ design)
    llf = -0.5 * n * (np.log(2 * np.pi * sse / n) + 1.0)
    return coef, coef / np.sqrt(np.diag(cov)), -2.0 * llf + 2.0 * k


def _lags(x, n_lags):
    """Rows (x[t-1], ..., x[t-n_lags]) for t = n_lags .. len(x) - 1."""
    return np.column_stack([x[n_lags - lag:x.shape[0] - lag] for lag in range(1, n_lags + 1)])


def _ocsb_regression(x, m, n_lags):
    r"""(t statistic of the last term, AIC) of the OCSB regression with n_lags AR lags.

    With :math:`z_t = \Delta\Delta_m x_t`, an AR(n_lags) with constant is
    fitted to z; its AR filter (constant included) is applied to
    :math:`\Delta_m x_{t-1}` and :math:`\Delta x_{t-m}`, and z is regressed on
    the lags of z and these two filtered series (no constant).
    """
    seasonal = x[m:] - x[:-m]
    z = np.diff(seasonal)
    first = np.diff(x)
    if n_lags == 0:
        _, tvalues, aic = _ols(np.column_stack([seasonal[:-1], first[:z.shape[0]]]), z)
        return float(tvalues[-1]), aic
    lags_z = _lags(z, n_lags)
    target = z[n_lags:]
    ar, _, _ = _ols(np.column_stack([np.ones(target.shape[0]), lags_z]), target)

    def filtered(series):
        # series[t] - constant - sum_i ar_i series[t - i], for the rows of z's regression.
        rows = _lags(np.concatenate([series, [0.0]]), n_lags)[:target.shape[0]]
        return series[n_lags:n_lags + target.shape[0]] - ar[0] - rows @ ar[1:]

    design = np.column_stack([lags_z, filtered(seasonal), filtered(first)])
    _, tvalues, aic = _ols(design, target)
    return float(tvalues[-1]), aic


def ocsb_critical_value(m):
    """Osborn et al. (1988) critical value at 5% for period m (R forecast's fit, as pmdarima)."""
    log_m = np.log(m)
    return float(-0.2937411 * np.exp(-0.2850853 * (log_m - 0.7656451)
                                     - 0.05983644 * (log_m - 0.7656451) ** 2) - 1.652202)


def ocsb_statistic(x, m, max_lag=3, lag_method="aic"):
    r"""OCSB statistic (Osborn, Chui, Smith and Birchenhall, 1988) for a seasonal unit root.

    The regression

    .. math::

        \Delta\Delta_m x_t = \sum_{i=1}^{L} a_i \Delta\Delta_m x_{t-i}
            + \beta_1 \tilde z_{4,t} + \beta_2 \tilde z_{5,t} + e_t,

    with :math:`z_4 = \Delta_m x_{t-1}`, :math:`z_5 = \Delta x_{t-m}` filtered
    by the AR(L) fitted to :math:`\Delta\Delta_m x` (pmdarima's construction);
    the statistic is the t value of :math:`\beta_2`. A statistic above
    :func:`ocsb_critical_value` means a seasonal unit root: difference.
    ``lag_method="aic"`` picks L in 1..max_lag by AIC; "fixed" uses max_lag.
    """
    x = np.asarray(x, dtype=np.float64)
    if lag_method == "fixed" or max_lag <= 0:
        return _ocsb_regression(x, m, max(max_lag, 0))[0]
    fits = [_ocsb_regression(x, m, lag) for lag in range(1, max_lag + 1)]
    return min(fits, key=lambda fit: fit[1])[0]


def nsdiffs(x, m, max_D=1, test="seas"):
    """Number of seasonal differences D.

    ``test="seas"``: while the seasonal strength exceeds 0.64 (R's default).
    ``test="ocsb"``: while the OCSB statistic exceeds its critical value
    (pmdarima's default).
    """
    if test not in ("seas", "ocsb"):
        raise ValueError(f"seasonal_test must be 'seas' or 'ocsb', got {test!r}.")
    x = np.asarray(x, dtype=np.float64)
    D = 0
    while D < max_D and x.shape[0] >= 2 * m + 8 and np.ptp(x) > 0:
        if test == "seas":
            seasonal_unit_root = seasonal_strength(x, m) > SEASONAL_STRENGTH_THRESHOLD
        else:
            seasonal_unit_root = ocsb_statistic(x, m) > ocsb_critical_value(m)
        if not seasonal_unit_root:
            break
        x = x[m:] - x[:-m]
        D += 1
    return D


def _fill_gaps(x):
    """x with NaN replaced by linear interpolation (for the differencing tests only)."""
    missing = np.isnan(x)
    if not missing.any():
        return x
    positions = np.arange(x.shape[0])
    return np.interp(positions, positions[~missing], x[~missing])


def auto_arima(y, seasonal=True, m=12, d=None, D=None, start_p=2, start_q=2, start_P=1,
               start_Q=1, max_p=5, max_q=5, max_P=2, max_Q=2, max_d=2, max_D=1,
               information_criterion="aicc", alpha=0.05, with_intercept="auto", max_models=100,
               backend="auto", n_jobs=1, progress_bar=False, seasonal_test="seas",
               intercept_when_d2=False):
    """Choose the orders of a seasonal ARIMA by a stepwise search (Hyndman-Khandakar).

    Parameters
    ----------
    y : array-like of shape (n,) or pandas.Series
        The series (a Series with a DatetimeIndex gives dated forecasts).
    seasonal : bool, default=True
        Search seasonal orders (P, D, Q) with period ``m``.
    m : int, default=12
        Seasonal period (observations per season); ignored when
        ``seasonal=False``; ``m < 2`` means no seasonal terms.
    d, D : int or None, default=None
        Differences; None chooses them by the KPSS test (d, level ``alpha``)
        and the seasonal test ``seasonal_test`` (D), on the seasonally
        differenced series for d, as pmdarima and R do.
    start_p, start_q, start_P, start_Q : int
        Orders of the first starting model.
    max_p, max_q, max_P, max_Q, max_d, max_D : int
        Bounds of the search (as R and pmdarima, the stepwise search does not
        bound p + q + P + Q).
    information_criterion : {"aicc", "aic", "bic"}, default="aicc"
    alpha : float, default=0.05
        Level of the KPSS tests.
    with_intercept : "auto" or bool, default="auto"
        Include the constant (trend "c"). "auto" (as R's ``auto.arima``)
        starts with it when d + D <= 1 and lets the search drop it, and never
        uses it when d + D >= 2 (unless ``intercept_when_d2``); True or False
        fixes it.
    max_models : int, default=100
        Stop after this many fitted models.
    backend, n_jobs
        Passed to each :class:`ARIMA`.
    progress_bar : bool, default=False
        Show a tqdm bar of the fitted models.
    seasonal_test : {"seas", "ocsb"}, default="seas"
        How D is chosen: "seas", the seasonal strength of an additive
        decomposition above 0.64 (Wang, Smith and Hyndman 2006; R
        forecast's default since 8.0), or "ocsb", the OCSB seasonal
        unit-root regression test at 5% (Osborn et al. 1988; pmdarima's
        default). The default is "seas", as R's: it measures how much of
        the variation is seasonal, needs no lag selection, and does not
        under-difference strongly seasonal series the way OCSB can: on the
        electric production series OCSB keeps D = 0 (statistic -2.19, below
        the critical value -1.80) although its seasonal strength is 0.89,
        and auto_arima then needs a SAR(2) to model the seasonality.
        "ocsb" reproduces pmdarima's choices.
    intercept_when_d2 : bool, default=False
        With ``with_intercept="auto"``, also try a constant when d + D >= 2
        (pmdarima's ``with_intercept="auto"`` keeps it in the search; R never
        does). False by default, as R: after two differences a constant is a
        quadratic trend in the forecasts, rarely what a forecaster wants.

    Returns
    -------
    results : ARIMAResults
        The best model, fitted; ``results.order`` and
        ``results.seasonal_order`` give its orders.
    """
    from .._config import _check_backend_name, _check_n_jobs
    from .arima import ARIMA, _DataScales, _validate_series

    _check_n_jobs(n_jobs)
    if backend is not None:
        _check_backend_name(backend)
    if seasonal_test not in ("seas", "ocsb"):
        raise ValueError(f"seasonal_test must be 'seas' or 'ocsb', got {seasonal_test!r}.")
    if information_criterion not in ("aicc", "aic", "bic"):
        raise ValueError(f"information_criterion must be 'aicc', 'aic' or 'bic', got "
                         f"{information_criterion!r}.")
    values, _, _ = _validate_series(y)
    # The differencing tests are scale-free; run them on the series at a safe magnitude
    # (each ARIMA fit rescales the series the same way).
    values, _ = _DataScales.of(values).shrink(values)
    if not seasonal or m is None or m < 2:
        seasonal, m = False, 1
    for name, value in (("m", m), ("max_p", max_p), ("max_q", max_q), ("max_P", max_P),
                        ("max_Q", max_Q), ("max_d", max_d),
                        ("max_D", max_D), ("max_models", max_models)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")

    if not seasonal:
        D = 0
    elif D is None:
        D = nsdiffs(_fill_gaps(values), m, max_D, seasonal_test) \
            if values.shape[0] >= 2 * m + 1 else 0
    seasonal_diff = _fill_gaps(values)
    for _ in range(D):
        seasonal_diff = seasonal_diff[m:] - seasonal_diff[:-m]
    if d is None:
        d = ndiffs(seasonal_diff, alpha, max_d)
    # As R: a constant (mean or drift) only when d + D <= 1, and then the search
    # also tries without it; an explicit with_intercept is kept throughout.
    if with_intercept == "auto":
        constant = toggle_constant = d + D <= 1 or bool(intercept_when_d2)
    else:
        constant, toggle_constant = bool(with_intercept), False
    if not seasonal:
        max_P = max_Q = start_P = start_Q = 0

    fitted = {}
    errors = {}
    progress = tqdm(total=max_models, desc="auto_arima", disable=not progress_bar)

    def fit(p, q, P, Q, with_constant):
        key = (p, q, P, Q, with_constant)
        if key in fitted:
            return fitted[key][0]
        if (min(key[:4]) < 0 or p > max_p or q > max_q or P > max_P or Q > max_Q
                or len(fitted) >= max_models):
            return np.inf
        model = ARIMA(order=(p, d, q), seasonal_order=(P, D, Q, m if seasonal else 0),
                      trend="c" if with_constant else "n", backend=backend, n_jobs=n_jobs)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results = model.fit(y)
            criterion = float(getattr(results, information_criterion))
            if not np.isfinite(criterion):
                criterion = np.inf
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as error:
            results, criterion = None, np.inf
            errors[key] = f"{model._spec().title}: {error}"
        fitted[key] = (criterion, results)
        progress.update(1)
        return criterion

    start_models = [
        (min(start_p, max_p), min(start_q, max_q), min(start_P, max_P), min(start_Q, max_Q)),
        (0, 0, 0, 0),
        (1, 0, 1 if seasonal else 0, 0),
        (0, 1, 0, 1 if seasonal else 0),
    ]
    for orders in start_models:
        fit(*orders, constant)
    if toggle_constant:
        fit(0, 0, 0, 0, False)

    def best_key():
        return min(fitted, key=lambda key: (fitted[key][0], sum(key[:4]), key))

    current = best_key()
    improved = True
    while improved and len(fitted) < max_models:
        improved = False
        p, q, P, Q, with_constant = current
        neighbours = []
        if seasonal:
            neighbours += [(p, q, P - 1, Q), (p, q, P + 1, Q), (p, q, P, Q - 1), (p, q, P, Q + 1),
                           (p, q, P - 1, Q - 1), (p, q, P - 1, Q + 1), (p, q, P + 1, Q - 1),
                           (p, q, P + 1, Q + 1)]
        neighbours += [(p - 1, q, P, Q), (p + 1, q, P, Q), (p, q - 1, P, Q), (p, q + 1, P, Q),
                       (p - 1, q - 1, P, Q), (p - 1, q + 1, P, Q), (p + 1, q - 1, P, Q),
                       (p + 1, q + 1, P, Q)]
        candidates = [orders + (with_constant,) for orders in neighbours]
        if toggle_constant:
            candidates.append((p, q, P, Q, not with_constant))
        for key in candidates:
            if fit(*key) < fitted[current][0]:
                current = key
                improved = True
                break
    progress.close()
    _, results = fitted[current]
    if results is None:
        # The error of the smallest model says best why nothing could be fitted.
        smallest = min(errors, key=lambda key: (sum(key[:4]), key), default=None)
        reason = f" The smallest model's error: {errors[smallest]}" if errors else ""
        raise ValueError("auto_arima: no model could be fitted; check the series (length, "
                         f"constant values) or lower the maximum orders.{reason}")
    return results
