r"""Seasonal ARIMA from the math, equal to statsmodels' ``SARIMAX``.

:class:`ARIMA` fits :math:`\mathrm{SARIMA}(p, d, q)(P, D, Q)_s` with a
polynomial trend by exact Gaussian maximum likelihood (Kalman filter) or by
conditional sum of squares; :func:`auto_arima` searches the orders
stepwise (Hyndman-Khandakar). The hot loops live in the ``arima`` kernel
family (:mod:`fastscratch.kernels.arima_numpy` and its Numba / Cython twins).
"""

import numbers
import warnings

import numpy as np
from scipy import optimize, stats
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from .._backend import effective_n_threads, resolve_kernel
from ..kernels._threads import blas_single_threaded
from ..kernels.arima_numpy import stationary_cov

__all__ = ["ARIMA", "ARIMAResults", "PredictionResults", "auto_arima"]

_TREND_POWERS = {"n": (), "c": (0,), "t": (1,), "ct": (0, 1)}
_TREND_NAMES = {0: "intercept", 1: "drift"}
# statsmodels' approximate diffuse prior variance (KalmanFilter.initial_variance).
_DIFFUSE_VARIANCE = 1e6


# ---------------------------------------------------------------------------
# Parameter transforms (Monahan 1984 / Jones 1980), as statsmodels.
# ---------------------------------------------------------------------------
def constrain_stationary(unconstrained):
    r"""Map any real vector to the coefficients of a stationary AR polynomial.

    Partial autocorrelations :math:`r_k = u_k / \sqrt{1 + u_k^2} \in (-1, 1)`
    are turned into AR coefficients by the Durbin-Levinson recursion
    (Monahan, 1984), so that :math:`1 - \sum_k \phi_k z^k` has its roots
    outside the unit circle. The same map with a minus sign gives invertible
    MA coefficients. Equal to statsmodels' ``constrain_stationary_univariate``.
    """
    unconstrained = np.asarray(unconstrained, dtype=np.float64)
    n = unconstrained.shape[0]
    if n == 0:
        return np.zeros(0)
    r = unconstrained / np.sqrt(1.0 + unconstrained ** 2)
    y = np.zeros((n, n))
    for k in range(n):
        for i in range(k):
            y[k, i] = y[k - 1, i] + r[k] * y[k - 1, k - i - 1]
        y[k, k] = r[k]
    return -y[n - 1, :]


def unconstrain_stationary(constrained):
    """Inverse of :func:`constrain_stationary` (the reverse Durbin-Levinson recursion)."""
    constrained = np.asarray(constrained, dtype=np.float64)
    n = constrained.shape[0]
    if n == 0:
        return np.zeros(0)
    y = np.zeros((n, n))
    y[n - 1] = -constrained
    for k in range(n - 1, 0, -1):
        for i in range(k):
            y[k - 1, i] = (y[k, i] - y[k, k] * y[k, k - i - 1]) / (1.0 - y[k, k] ** 2)
    r = np.diag(y)
    return r / np.sqrt(1.0 - r ** 2)


# ---------------------------------------------------------------------------
# The model specification: orders, polynomials, parameter layout.
# ---------------------------------------------------------------------------
def _check_order(value, name, length):
    if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != length:
        raise TypeError(f"{name} must be a tuple of {length} non-negative integers, got {value!r}.")
    out = []
    for item in value:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Integral) or item < 0:
            raise ValueError(f"{name} must hold non-negative integers (lag orders, not lists "
                             f"of lags or floats), got {value!r}.")
        out.append(int(item))
    return tuple(out)


class _Spec:
    """Orders, parameter names and polynomial expansion of one SARIMA model."""

    def __init__(self, order, seasonal_order, trend, enforce_stationarity, enforce_invertibility):
        self.p, self.d, self.q = _check_order(order, "order", 3)
        self.P, self.D, self.Q, self.s = _check_order(seasonal_order, "seasonal_order", 4)
        if (self.P or self.D or self.Q) and self.s < 2:
            raise ValueError(f"seasonal_order={tuple(seasonal_order)!r} has seasonal terms but a "
                             "period s < 2; give the number of observations per season, e.g. "
                             "(P, D, Q, 12) for monthly data.")
        if not (self.P or self.D or self.Q):
            self.s = 0
        if trend is None:
            trend = "n"
        if not isinstance(trend, str) or trend not in _TREND_POWERS:
            raise ValueError(f"trend must be one of 'n', 'c', 't', 'ct' (or None), got {trend!r}.")
        self.trend = trend
        self.trend_powers = _TREND_POWERS[trend]
        self.enforce_stationarity = bool(enforce_stationarity)
        self.enforce_invertibility = bool(enforce_invertibility)
        self.k_trend = len(self.trend_powers)
        self.k_arma = self.p + self.q + self.P + self.Q
        self.k_params = self.k_trend + self.k_arma + 1
        self._bounds = [int(b) for b in np.cumsum([0, self.k_trend, self.p, self.q, self.P, self.Q])]
        self.p_full = self.p + self.s * self.P
        self.q_full = self.q + self.s * self.Q
        self.m = max(self.p_full, self.q_full + 1)
        # Differencing polynomial delta(L) = (1 - L)^d (1 - L^s)^D, delta_0 = 1.
        delta = np.array([1.0])
        for _ in range(self.d):
            delta = np.convolve(delta, [1.0, -1.0])
        for _ in range(self.D):
            seasonal = np.zeros(self.s + 1)
            seasonal[0], seasonal[-1] = 1.0, -1.0
            delta = np.convolve(delta, seasonal)
        self.delta = delta
        self.n_diff = delta.shape[0] - 1

    @property
    def param_names(self):
        names = [_TREND_NAMES[power] for power in self.trend_powers]
        names += [f"ar.L{i}" for i in range(1, self.p + 1)]
        names += [f"ma.L{i}" for i in range(1, self.q + 1)]
        names += [f"ar.S.L{i * self.s}" for i in range(1, self.P + 1)]
        names += [f"ma.S.L{i * self.s}" for i in range(1, self.Q + 1)]
        return names + ["sigma2"]

    def split(self, params):
        """(trend, ar, ma, seasonal ar, seasonal ma) slices of a parameter vector."""
        bounds = self._bounds
        return tuple(params[bounds[i]:bounds[i + 1]] for i in range(5))

    def constrain(self, unconstrained):
        trend, ar, ma, sar, sma = self.split(np.asarray(unconstrained, dtype=np.float64))
        if self.enforce_stationarity:
            ar, sar = constrain_stationary(ar), constrain_stationary(sar)
        if self.enforce_invertibility:
            ma, sma = -constrain_stationary(ma), -constrain_stationary(sma)
        return np.concatenate([trend, ar, ma, sar, sma])

    def unconstrain(self, constrained):
        trend, ar, ma, sar, sma = self.split(np.asarray(constrained, dtype=np.float64))
        if self.enforce_stationarity:
            ar, sar = unconstrain_stationary(ar), unconstrain_stationary(sar)
        if self.enforce_invertibility:
            ma, sma = unconstrain_stationary(-ma), unconstrain_stationary(-sma)
        return np.concatenate([trend, ar, ma, sar, sma])

    def polynomials(self, arma):
        """Multiplied-out (phi, theta): w_t = sum phi_i w_{t-i} + e_t + sum theta_j e_{t-j}."""
        trend, ar, ma, sar, sma = self.split(np.concatenate([np.zeros(self.k_trend), arma]))
        ar_poly = np.concatenate([[1.0], -ar])
        ma_poly = np.concatenate([[1.0], ma])
        if self.s:
            seasonal_ar = np.zeros(self.s * self.P + 1)
            seasonal_ar[0] = 1.0
            seasonal_ar[self.s::self.s] = -sar
            seasonal_ma = np.zeros(self.s * self.Q + 1)
            seasonal_ma[0] = 1.0
            seasonal_ma[self.s::self.s] = sma
            ar_poly = np.convolve(ar_poly, seasonal_ar)
            ma_poly = np.convolve(ma_poly, seasonal_ma)
        return -ar_poly[1:], ma_poly[1:]

    def trend_data(self, start, stop):
        """Rows (t + 1) ** power for t in [start, stop) (statsmodels' trend_offset=1)."""
        time = np.arange(start + 1, stop + 1, dtype=np.float64)
        if not self.k_trend:
            return np.zeros((stop - start, 0))
        return np.column_stack([time ** power for power in self.trend_powers])

    def is_stationary(self, phi):
        if phi.shape[0] == 0 or not np.any(phi):
            return True
        roots = np.roots(np.concatenate([-phi[::-1], [1.0]]))
        return bool(np.all(np.abs(roots) > 1.0 + 1e-10))


# ---------------------------------------------------------------------------
# Likelihood evaluation (the kernels do the recursions).
# ---------------------------------------------------------------------------
class _Likelihood:
    """Concentrated exact log-likelihood and CSS of one model on one series."""

    def __init__(self, spec, y, backend, n_threads):
        self.spec = spec
        self.y = y
        self.n = y.shape[0]
        self.w = np.ascontiguousarray(np.convolve(y, spec.delta)[spec.n_diff:self.n])
        self.n_eff = self.w.shape[0]
        self.trend = spec.trend_data(0, self.n)  # c_t rows for t = 0..n-1
        self.filter_kernel, self.backend = resolve_kernel("arima_kalman_filter", backend)
        self.loglike_kernel, _ = resolve_kernel("arima_kalman_loglike", self.backend)
        self.css_kernel, _ = resolve_kernel("arima_css_residuals", self.backend)
        self.n_threads = n_threads

    # -- one model's state-space pieces -------------------------------------------------
    def pieces(self, params):
        """(intercept, phi, theta, a0) of the Kalman filter for constrained ``params``."""
        spec = self.spec
        m = spec.m
        trend = params[:spec.k_trend]
        phi_full, theta_full = spec.polynomials(params[spec.k_trend:])
        phi = np.zeros(m)
        phi[:phi_full.shape[0]] = phi_full
        theta = np.zeros(m - 1)
        theta[:theta_full.shape[0]] = theta_full
        c = self.trend @ trend if spec.k_trend else np.zeros(self.n)
        a0 = _stationary_mean(phi, c[0])
        if spec.k_trend:
            # The first n_diff observations only identify the differencing states:
            # propagate the ARMA mean through them.
            for t in range(spec.n_diff):
                a0 = phi * a0[0] + np.append(a0[1:], 0.0)
                a0[0] += c[t]
        return np.ascontiguousarray(c[spec.n_diff:]), phi, theta, a0

    def concentrated(self, sum_log_F, sum_squares):
        """(llf, sigma2) from the kernel sums, with sigma2 concentrated out."""
        n = self.n_eff
        sigma2 = sum_squares / n
        with np.errstate(divide="ignore", invalid="ignore"):
            llf = -0.5 * n * (np.log(2 * np.pi * sigma2) + 1.0) - 0.5 * sum_log_F
        return llf, sigma2

    def batch_loglike(self, unconstrained_rows):
        """Concentrated llf of each row of unconstrained parameters (one kernel call)."""
        spec = self.spec
        rows = np.atleast_2d(unconstrained_rows)
        b = rows.shape[0]
        m = spec.m
        intercept = np.empty((b, self.n_eff))
        phi = np.empty((b, m))
        theta = np.empty((b, m - 1))
        a0 = np.empty((b, m))
        valid = np.ones(b, dtype=bool)
        for i in range(b):
            params = spec.constrain(rows[i])
            intercept[i], phi[i], theta[i], a0[i] = self.pieces(params)
            if not spec.enforce_stationarity and not spec.is_stationary(phi[i]):
                valid[i] = False
                phi[i] = 0.0
        sum_log_F = np.empty(b)
        sum_squares = np.empty(b)
        self.loglike_kernel(self.w, intercept, phi, theta, a0, sum_log_F, sum_squares,
                            self.n_threads)
        llf, _ = self.concentrated(sum_log_F, sum_squares)
        llf[~valid] = -np.inf
        llf[~np.isfinite(llf)] = -np.inf
        return llf

    def filter(self, params):
        """Run the Kalman filter once: (v, F, state, cov, llf, sigma2)."""
        intercept, phi, theta, a0 = self.pieces(params)
        m = self.spec.m
        v = np.empty(self.n_eff)
        F = np.empty(self.n_eff)
        state = np.empty(m)
        cov = np.empty((m, m))
        self.filter_kernel(self.w, intercept, phi, theta, a0, v, F, state, cov, self.n_threads)
        llf, sigma2 = self.concentrated(np.sum(np.log(F)), np.sum(v * v / F))
        return v, F, state, cov, llf, sigma2

    # -- conditional sum of squares ------------------------------------------------------
    def css_residuals(self, params):
        spec = self.spec
        phi, theta = spec.polynomials(params[spec.k_trend:])
        # The trend term entering w_j (time j + n_diff) is c at the time before.
        c = self.trend @ params[:spec.k_trend] if spec.k_trend else np.zeros(self.n)
        intercept = np.ascontiguousarray(np.concatenate([[c[0]], c[:-1]])[spec.n_diff:])
        resid = np.empty(self.n_eff)
        self.css_kernel(self.w, intercept, np.ascontiguousarray(phi),
                        np.ascontiguousarray(theta), resid, self.n_threads)
        return resid[spec.p_full:]

    def css_objective(self, unconstrained):
        resid = self.css_residuals(self.spec.constrain(unconstrained))
        value = np.dot(resid, resid) / max(resid.shape[0], 1)
        return value if np.isfinite(value) else 1e300


def _stationary_mean(phi, intercept):
    """Stationary state mean (I - T)^{-1} e_1 c of Harvey's form.

    The first state (w_t) has mean mu = c / (1 - sum phi); state i has
    mu * sum_{k >= i} phi_k.
    """
    if intercept == 0:
        return np.zeros(phi.shape[0])
    mu = intercept / (1.0 - phi.sum())
    return mu * np.concatenate([[1.0], np.cumsum(phi[::-1])[::-1][1:]])


def _central_gradient_stencil(x):
    """Rows x, x + h_i e_i, x - h_i e_i and the steps h (central differences)."""
    k = x.shape[0]
    h = 6e-6 * np.maximum(1.0, np.abs(x))
    rows = np.tile(x, (2 * k + 1, 1))
    rows[1 + np.arange(k), np.arange(k)] += h
    rows[1 + k + np.arange(k), np.arange(k)] -= h
    return rows, h


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------
class ARIMA(BaseEstimator):
    r"""Seasonal ARIMA with a polynomial trend, fitted by exact maximum likelihood.

    Parameters follow statsmodels' ``SARIMAX`` so that code carries over.

    Parameters
    ----------
    order : tuple of 3 int, default=(1, 0, 0)
        (p, d, q): AR order, number of differences, MA order.
    seasonal_order : tuple of 4 int, default=(0, 0, 0, 0)
        (P, D, Q, s): seasonal AR order, seasonal differences, seasonal MA
        order and the period s (>= 2 when any seasonal term is present).
    trend : {"n", "c", "t", "ct"} or None, default=None
        Polynomial trend: none, constant ("intercept"), linear in time
        ("drift", t = 1, 2, ...), or both. It enters the ARMA equation of
        the differenced series, as in statsmodels.
    enforce_stationarity : bool, default=True
        Optimise the AR coefficients through the Monahan transform, so they
        stay stationary. When False, the AR coefficients are optimised as
        they are and non-stationary trial points get a likelihood of -inf
        (the state is still started from its stationary distribution; this
        differs from statsmodels, which then uses a diffuse start).
    enforce_invertibility : bool, default=True
        Same for the MA coefficients (invertibility).
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel backend of the Kalman filter and CSS recursions.
    n_jobs : int or None, default=1
        Threads evaluating the finite-difference gradient's 2k + 1
        likelihoods in parallel (None: the global setting, else every core).
        The default is one thread: a batch takes about a millisecond, too
        short to pay for waking threads (2 threads measured 3-10x slower on
        the shared 2-core test machine).

    Notes
    -----
    The model for the series :math:`y_t` is

    .. math::

        \phi(L)\,\Phi(L^s)\,\Delta^d \Delta_s^D y_t
            = c_{t-1} + \theta(L)\,\Theta(L^s)\,\varepsilon_t,
        \qquad \varepsilon_t \sim N(0, \sigma^2),

    with :math:`\phi(L) = 1 - \sum_{i=1}^p \phi_i L^i` (``ar.L{i}``),
    :math:`\theta(L) = 1 + \sum_{j=1}^q \theta_j L^j` (``ma.L{j}``), the
    seasonal :math:`\Phi, \Theta` (``ar.S.L{is}``, ``ma.S.L{js}``),
    :math:`\Delta = 1 - L` and the trend
    :math:`c_t = \sum_k \beta_k (t + 1)^k` (``intercept``, ``drift``).
    ``_Spec.polynomials`` multiplies the polynomials out into
    :math:`\phi^*(L) = \phi(L)\Phi(L^s)` (degree :math:`p' = p + sP`) and
    :math:`\theta^*(L)` (degree :math:`q' = q + sQ`).

    *Exact likelihood.* The differenced series :math:`w_t` is a stationary
    ARMA(p', q'); its Gaussian likelihood is computed by the Kalman filter on
    Harvey's state-space form (state dimension :math:`m = \max(p', q'+1)`,
    see :mod:`fastscratch.kernels.arima_numpy`) started from the stationary
    distribution (the discrete Lyapunov equation), which gives innovations
    :math:`v_t` with variances :math:`\sigma^2 F_t`. Concentrating
    :math:`\sigma^2` out,

    .. math::

        \hat\sigma^2 = \frac{1}{n'} \sum_t \frac{v_t^2}{F_t}, \qquad
        \ell = -\frac{n'}{2}\left(\log 2\pi\hat\sigma^2 + 1\right)
               - \frac12 \sum_t \log F_t,

    with :math:`n' = n - d - sD`. This is the likelihood of the exact diffuse
    initialisation of the differencing states; statsmodels' default is an
    approximate diffuse prior (variance 1e6) with the first :math:`d + sD`
    terms burnt, which agrees with it to about 1e-6 relative.

    *Estimation.* ``fit(method="css")`` minimises the conditional sum of
    squares :math:`\sum_{t \ge p'} e_t^2` of the recursion
    :math:`e_t = w_t - c_{t-1} - \sum_i \phi^*_i w_{t-i} - \sum_j \theta^*_j e_{t-j}`;
    ``fit(method="mle")`` starts from that estimate and maximises
    :math:`\ell` with L-BFGS-B over unconstrained parameters: AR and MA
    coefficients go through the Monahan (1984) / Jones (1980) transform
    (:func:`constrain_stationary`), as statsmodels does, and the gradient is
    by central differences, its 2k + 1 likelihoods computed in one parallel
    kernel call.

    *Forecasts.* The state is augmented with :math:`y_{t-1}, \dots,
    y_{t-d-sD}` so that :math:`y_t = w_t - \sum_k \delta_k y_{t-k}`
    (:math:`\delta(L) = (1-L)^d (1-L^s)^D`); the h-step forecast and its
    variance come from iterating the augmented transition from the filter's
    last predicted state.

    Examples
    --------
    >>> import fastscratch
    >>> y = fastscratch.datasets.load_electric_production()
    >>> res = fastscratch.ARIMA((1, 1, 1), (0, 1, 1, 12)).fit(y)
    >>> res.forecast(3)  # doctest: +SKIP
    """

    def __init__(self, order=(1, 0, 0), seasonal_order=(0, 0, 0, 0), trend=None,
                 enforce_stationarity=True, enforce_invertibility=True, backend="auto",
                 n_jobs=1):
        self.order = order
        self.seasonal_order = seasonal_order
        self.trend = trend
        self.enforce_stationarity = enforce_stationarity
        self.enforce_invertibility = enforce_invertibility
        self.backend = backend
        self.n_jobs = n_jobs

    def _spec(self):
        return _Spec(self.order, self.seasonal_order, self.trend, self.enforce_stationarity,
                     self.enforce_invertibility)

    def fit(self, y, method="mle", start_params=None, maxiter=500):
        """Estimate the parameters.

        Parameters
        ----------
        y : array-like of shape (n,) or pandas.Series
            The series; a Series with a DatetimeIndex gives dated forecasts.
        method : {"mle", "css"}, default="mle"
            Exact maximum likelihood (started from CSS) or conditional sum of squares.
        start_params : array-like, optional
            Starting values in ``params`` order (sigma2 last, ignored);
            default: the CSS estimate.
        maxiter : int, default=500
            Iteration limit of L-BFGS-B; reaching it warns (ConvergenceWarning).

        Returns
        -------
        results : ARIMAResults
        """
        if method not in ("mle", "css"):
            raise ValueError(f"method must be 'mle' or 'css', got {method!r}.")
        spec = self._spec()
        values, index, name = _validate_series(y)
        n = values.shape[0]
        n_needed = spec.n_diff + max(spec.k_params + 2, spec.p_full + spec.q_full + 1)
        if n < n_needed:
            raise ValueError(f"y has {n} observations but order={tuple(self.order)} and "
                             f"seasonal_order={tuple(self.seasonal_order)} need at least "
                             f"{n_needed}; use a longer series or smaller orders.")
        lik = _Likelihood(spec, values, self.backend, effective_n_threads(self.n_jobs))
        # L-BFGS-B's tiny BLAS calls are much slower on several threads.
        with blas_single_threaded():
            params, sigma2, llf, converged = self._estimate(lik, method, start_params, maxiter)
        if not converged:
            warnings.warn(f"ARIMA{spec.p, spec.d, spec.q}x{spec.P, spec.D, spec.Q, spec.s}: the "
                          f"optimiser did not converge in {maxiter} iterations; raise maxiter or "
                          "check the orders.", ConvergenceWarning, stacklevel=2)
        self.results_ = ARIMAResults(self, spec, lik, np.append(params, sigma2), float(llf),
                                     method, bool(converged), index, name)
        return self.results_

    def _estimate(self, lik, method, start_params, maxiter):
        """(params without sigma2, sigma2, llf, converged)."""
        spec = lik.spec
        x0 = _css_start(lik) if start_params is None else spec.unconstrain(
            np.asarray(start_params, dtype=np.float64)[:spec.k_params - 1])
        if method == "css":
            x, converged = _minimise_css(lik, x0, maxiter)
            params = spec.constrain(x)
            resid = lik.css_residuals(params)
            sigma2 = float(np.dot(resid, resid) / resid.shape[0])
            n_used = resid.shape[0]
            llf = -0.5 * n_used * (np.log(2 * np.pi * sigma2) + 1.0)
        else:
            x, converged = _minimise_mle(lik, x0, maxiter)
            params = spec.constrain(x)
            llf, sigma2 = lik.filter(params)[4:]
        return params, sigma2, llf, converged


def _validate_series(y):
    """(float64 values, pandas index or None, name) of a 1-D series; clear errors."""
    index, name = None, None
    if hasattr(y, "index") and hasattr(y, "to_numpy"):
        index = y.index
        name = getattr(y, "name", None)
        if getattr(y, "ndim", 1) == 2:
            if y.shape[1] != 1:
                raise ValueError(f"y must be one series, got a frame with {y.shape[1]} columns.")
            name = y.columns[0]
        values = y.to_numpy()
    else:
        values = np.asarray(y)
    if values.ndim == 2 and 1 in values.shape:
        values = values.reshape(-1)
    if values.ndim != 1:
        raise ValueError(f"y must be one-dimensional (a single series), got shape {values.shape}.")
    dtype = values.dtype
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"y must hold real numbers, got dtype {values.dtype}.")
    values = np.ascontiguousarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("y contains NaN or infinite values; fill or drop them (missing "
                         "observations are not supported).")
    return values, index, name


def _lag_matrix(x, lags, start):
    """Columns x[t - lag] for t in [start, len(x)), one per lag."""
    return np.column_stack([x[start - lag:x.shape[0] - lag] for lag in lags])


def _hannan_rissanen(w, lags_ar, lags_ma, trend=None):
    """Regression estimates of an ARMA's coefficients (Hannan and Rissanen, 1982).

    A long AR(2 q_max) regression gives residuals that stand in for the
    innovations; then w_t is regressed on the trend, its own lags and the
    residual lags (as statsmodels' SARIMAX start parameters).
    """
    k_trend = 0 if trend is None else trend.shape[1]
    if k_trend + len(lags_ar) + len(lags_ma) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    max_ma = max(lags_ma, default=0)
    long_order = 2 * max_ma
    start = max(long_order + max_ma, max(lags_ar, default=0))
    if w.shape[0] - start <= k_trend + len(lags_ar) + len(lags_ma) + 1:
        return np.zeros(k_trend), np.zeros(len(lags_ar)), np.zeros(len(lags_ma))
    residuals = None
    if max_ma:
        design = _lag_matrix(w, range(1, long_order + 1), long_order)
        coef = np.linalg.lstsq(design, w[long_order:], rcond=None)[0]
        residuals = np.concatenate([np.zeros(long_order), w[long_order:] - design @ coef])
    columns = []
    if k_trend:
        columns.append(trend[start:])
    if lags_ar:
        columns.append(_lag_matrix(w, lags_ar, start))
    if lags_ma:
        columns.append(_lag_matrix(residuals, lags_ma, start))
    coef = np.linalg.lstsq(np.column_stack(columns), w[start:], rcond=None)[0]
    n_ar = len(lags_ar)
    return coef[:k_trend], coef[k_trend:k_trend + n_ar], coef[k_trend + n_ar:]


def _is_stationary_poly(coefficients, lags):
    """Whether 1 - sum_k c_k L^lag_k has all roots outside the unit circle."""
    if len(lags) == 0:
        return True
    poly = np.zeros(max(lags) + 1)
    poly[0] = 1.0
    poly[list(lags)] = -np.asarray(coefficients)
    roots = np.roots(poly[::-1])
    return bool(np.all(np.abs(roots) > 1.0))


def _regression_start(lik):
    """Constrained start values: Hannan-Rissanen regressions, non-seasonal then seasonal."""
    spec = lik.spec
    w = lik.w
    trend = lik.trend[:w.shape[0]] if spec.k_trend else None
    params_trend, ar, ma = _hannan_rissanen(w, list(range(1, spec.p + 1)),
                                            list(range(1, spec.q + 1)), trend)
    _, sar, sma = _hannan_rissanen(w, [spec.s * i for i in range(1, spec.P + 1)],
                                   [spec.s * i for i in range(1, spec.Q + 1)])
    # Non-stationary / non-invertible regression estimates start from zero.
    if spec.enforce_stationarity:
        ar = ar if _is_stationary_poly(ar, range(1, spec.p + 1)) else 0 * ar
        sar = sar if _is_stationary_poly(sar, range(1, spec.P + 1)) else 0 * sar
    if spec.enforce_invertibility:
        ma = ma if _is_stationary_poly(-ma, range(1, spec.q + 1)) else 0 * ma
        sma = sma if _is_stationary_poly(-sma, range(1, spec.Q + 1)) else 0 * sma
    return np.concatenate([params_trend, ar, ma, sar, sma])


def _css_start(lik, refine=True):
    """Unconstrained start values: the regression estimate, refined by CSS."""
    spec = lik.spec
    x0 = spec.unconstrain(_regression_start(lik))
    if spec.k_arma == 0 or not refine:
        return x0
    # A start value only: at most 30 steps, fewer once CSS improves by < 1e-7 relative.
    x, _ = _minimise_css(lik, x0, 30, ftol=1e-7)
    # Keep the start away from the boundary of the stationary / invertible region.
    x[spec.k_trend:] = np.clip(x[spec.k_trend:], -3.0, 3.0)
    return x


def _minimise_css(lik, x0, maxiter, ftol=2.2e-9):
    if x0.shape[0] == 0:
        return x0, True
    result = optimize.minimize(lik.css_objective, x0, method="L-BFGS-B",
                               options={"maxiter": maxiter, "ftol": ftol})
    return result.x, bool(result.success) or result.nit < maxiter


def _minimise_mle(lik, x0, maxiter):
    if x0.shape[0] == 0:
        return x0, True
    scale = 1.0 / lik.n_eff

    def objective(x):
        rows, h = _central_gradient_stencil(x)
        llf = lik.batch_loglike(rows)
        k = x.shape[0]
        if not np.isfinite(llf[0]):
            return 1e300, np.zeros(k)
        grad = (llf[1:k + 1] - llf[k + 1:]) / (2 * h)
        grad[~np.isfinite(grad)] = 0.0
        return -llf[0] * scale, -grad * scale

    result = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                               options={"maxiter": maxiter, "ftol": 1e-14, "gtol": 1e-7})
    converged = result.nit < maxiter and np.isfinite(result.fun)
    return result.x, bool(converged)


class PredictionResults:
    """Forecasts with their variances: ``predicted_mean``, ``var_pred_mean``, ``conf_int``."""

    def __init__(self, mean, variance, index, name):
        self._mean = mean
        self._variance = variance
        self._index = index
        self._name = name

    @property
    def predicted_mean(self):
        if self._index is None:
            return self._mean.copy()
        import pandas as pd

        return pd.Series(self._mean, index=self._index, name="predicted_mean")

    @property
    def var_pred_mean(self):
        if self._index is None:
            return self._variance.copy()
        import pandas as pd

        return pd.Series(self._variance, index=self._index, name="var_pred_mean")

    @property
    def se_mean(self):
        return np.sqrt(self.var_pred_mean)

    def conf_int(self, alpha=0.05):
        """Normal (1 - alpha) intervals: ndarray (steps, 2), or a DataFrame for pandas input."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}.")
        z = stats.norm.ppf(1 - alpha / 2)
        half = z * np.sqrt(self._variance)
        bounds = np.column_stack([self._mean - half, self._mean + half])
        if self._index is None:
            return bounds
        import pandas as pd

        label = self._name if self._name is not None else "y"
        return pd.DataFrame(bounds, index=self._index, columns=[f"lower {label}", f"upper {label}"])

    def summary_frame(self, alpha=0.05):
        import pandas as pd

        bounds = np.asarray(self.conf_int(alpha))
        return pd.DataFrame({"mean": self._mean, "mean_se": np.sqrt(self._variance),
                             "mean_ci_lower": bounds[:, 0], "mean_ci_upper": bounds[:, 1]},
                            index=self._index)


class ARIMAResults:
    """A fitted :class:`ARIMA`: parameters, likelihood, residuals and forecasts.

    Attributes
    ----------
    params : pandas.Series
        Trend, ar.L*, ma.L*, ar.S.L*, ma.S.L*, sigma2 (statsmodels' names and order).
    llf, aic, bic, aicc : float
        Log-likelihood and information criteria, with statsmodels' definitions
        (``nobs_effective = n - d - sD`` observations, ``df_model`` parameters
        counting sigma2).
    order, seasonal_order, trend : the model's specification.
    converged : bool
    backend : str
        The kernel backend that ran.
    """

    def __init__(self, model, spec, lik, params, llf, method, converged, index, name):
        import pandas as pd

        self.model = model
        self._spec = spec
        self._lik = lik
        self.params = pd.Series(params, index=spec.param_names, name="params")
        self.llf = llf
        self.method = method
        self.converged = converged
        self.order = (spec.p, spec.d, spec.q)
        self.seasonal_order = (spec.P, spec.D, spec.Q, spec.s)
        self.trend = spec.trend
        self.backend = lik.backend
        self.nobs = lik.n
        self.nobs_effective = lik.n_eff
        self.df_model = spec.k_params
        self._index = index
        self._name = name
        self._filtered = None

    # -- information criteria -----------------------------------------------------------
    @property
    def aic(self):
        return -2.0 * self.llf + 2.0 * self.df_model

    @property
    def bic(self):
        return -2.0 * self.llf + self.df_model * np.log(self.nobs_effective)

    @property
    def aicc(self):
        k, n = self.df_model, self.nobs_effective
        if n - k - 1 <= 0:
            return np.inf
        return self.aic + 2.0 * k * (k + 1) / (n - k - 1)

    @property
    def sigma2(self):
        return float(self.params.iloc[-1])

    # -- filter output (computed once, on first use) ------------------------------------
    def _filter_output(self):
        if self._filtered is None:
            params = self.params.to_numpy()[:-1]
            v, F, state, cov, _, _ = self._lik.filter(params)
            self._filtered = (v, F, state, cov, self._presample_residuals(params))
        return self._filtered

    def _augmented(self, params):
        """Augmented (Z, T, R) with state (alpha_1..alpha_m, y_{t-1}..y_{t-n_diff})."""
        spec = self._spec
        m, k = spec.m, spec.n_diff
        _, phi, theta, _ = self._lik.pieces(params)
        design = np.concatenate([[1.0], np.zeros(m - 1), -spec.delta[1:]])
        transition = np.zeros((m + k, m + k))
        transition[:m, 0] = phi
        transition[:m - 1, 1:m] += np.eye(m - 1)
        if k:
            transition[m] = design
            transition[m + 1:, m:m + k - 1] = np.eye(k - 1)
        selection = np.concatenate([[1.0], theta, np.zeros(k)])
        return design, transition, selection, phi, theta

    def _diffuse_layout(self, phi, theta):
        """statsmodels' SARIMAX state layout: (Z, T, R) with the differencing states first.

        States: d integration states, D blocks of s seasonal states (a cyclic
        shift), then the m ARMA states. Used for the first d + sD one-step
        errors, whose values depend on how the approximate diffuse prior is
        laid out.
        """
        spec = self._spec
        d, D, s, m = spec.d, spec.D, spec.s, spec.m
        k = d + s * D
        seasonal_row = np.zeros(s)
        if s:
            seasonal_row[-1] = 1.0
        design = np.concatenate([np.ones(d), np.tile(seasonal_row, D), [1.0], np.zeros(m - 1)])
        transition = np.zeros((k + m, k + m))
        transition[k:, k] = phi
        transition[k:k + m - 1, k + 1:] += np.eye(m - 1)
        for block in range(D):
            start, stop = d + block * s, d + (block + 1) * s
            transition[start + 1:stop, start:stop - 1] = np.eye(s - 1)
            transition[start, stop - 1] = 1.0
            if block < D - 1:
                transition[start, stop + s - 1] = 1.0
            transition[start, k] = 1.0
        if d:
            transition[np.triu_indices(d)] = 1.0
            transition[:d, d:k] = np.tile(seasonal_row, D)
            transition[:d, k] = 1.0
        selection = np.concatenate([np.zeros(k), [1.0], theta])
        return design, transition, selection

    def _presample_residuals(self, params):
        """One-step errors of the first d + sD observations, as statsmodels computes them.

        statsmodels gives its differencing states the approximate diffuse
        prior N(0, 1e6 I) (and the ARMA states their stationary distribution)
        and runs the filter on the full state; the dense filter below does the
        same for the first d + sD observations only (after them, the
        differenced-series filter of the kernels is exact).
        """
        spec = self._spec
        k, m = spec.n_diff, spec.m
        if k == 0:
            return np.zeros(0)
        sigma2 = self.sigma2
        _, phi, theta, _ = self._lik.pieces(params)
        design, transition, selection = self._diffuse_layout(phi, theta)
        y = self._lik.y
        c = self._lik.trend @ params[:spec.k_trend] if spec.k_trend else np.zeros(self.nobs)
        a = np.concatenate([np.zeros(k), _stationary_mean(phi, c[0])])
        P = np.zeros((m + k, m + k))
        P[k:, k:] = sigma2 * stationary_cov(phi, theta)
        P[:k, :k] = _DIFFUSE_VARIANCE * np.eye(k)
        noise = sigma2 * np.outer(selection, selection)
        errors = np.empty(k)
        for t in range(k):
            v = y[t] - design @ a
            F = design @ P @ design
            gain = P @ design / F
            errors[t] = v
            a = transition @ (a + gain * v)
            a[k] += c[t]
            P = transition @ (P - np.outer(gain, design @ P)) @ transition.T + noise
        return errors

    @property
    def resid(self):
        v, _, _, _, presample = self._filter_output()
        return self._wrap(np.concatenate([presample, v]), "resid")

    @property
    def fittedvalues(self):
        v, _, _, _, presample = self._filter_output()
        return self._wrap(self._lik.y - np.concatenate([presample, v]), "fittedvalues")

    def _wrap(self, values, name):
        if self._index is None:
            return values
        import pandas as pd

        return pd.Series(values, index=self._index, name=name)

    # -- forecasts ----------------------------------------------------------------------
    def get_forecast(self, steps=1):
        """Forecasts of the next ``steps`` values with their variances (PredictionResults)."""
        if (isinstance(steps, (bool, np.bool_)) or not isinstance(steps, numbers.Integral)
                or steps < 1):
            raise ValueError(f"steps must be a positive integer, got {steps!r}.")
        spec = self._spec
        m, k = spec.m, spec.n_diff
        params = self.params.to_numpy()[:-1]
        sigma2 = self.sigma2
        _, _, state, cov, _ = self._filter_output()
        design, transition, selection, _, _ = self._augmented(params)
        y = self._lik.y
        n = self.nobs
        x = np.concatenate([state, y[n - 1::-1][:k] if k else np.zeros(0)])
        P = np.zeros((m + k, m + k))
        P[:m, :m] = cov * sigma2
        noise = sigma2 * np.outer(selection, selection)
        trend = self._lik.spec.trend_data(n, n + steps) @ params[:spec.k_trend] if spec.k_trend \
            else np.zeros(steps)
        mean = np.empty(steps)
        variance = np.empty(steps)
        for h in range(steps):
            mean[h] = design @ x
            variance[h] = design @ P @ design
            x = transition @ x
            x[0] += trend[h]
            P = transition @ P @ transition.T + noise
        return PredictionResults(mean, variance, self._forecast_index(steps), self._name)

    def forecast(self, steps=1):
        """Point forecasts of the next ``steps`` values."""
        return self.get_forecast(steps).predicted_mean

    def _forecast_index(self, steps):
        if self._index is None:
            return None
        import pandas as pd

        index = self._index
        if isinstance(index, pd.DatetimeIndex):
            freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
            if freq is not None:
                return pd.date_range(start=index[-1], periods=steps + 1, freq=freq)[1:]
        if isinstance(index, pd.RangeIndex):
            return pd.RangeIndex(index.stop, index.stop + steps * index.step, index.step)
        return pd.RangeIndex(len(index), len(index) + steps)

    # -- summary ------------------------------------------------------------------------
    def summary(self):
        """A plain-text table of the model, its criteria and its parameters."""
        spec = self._spec
        title = f"SARIMAX{self.order}x{self.seasonal_order}" if spec.s else f"ARIMA{self.order}"
        lines = [
            "fastscratch ARIMA results",
            "=" * 52,
            f"{'Model:':<22}{title}",
            f"{'Trend:':<22}{self.trend}",
            f"{'Method:':<22}{self.method}",
            f"{'Observations:':<22}{self.nobs} ({self.nobs_effective} after differencing)",
            f"{'Log likelihood:':<22}{self.llf:.4f}",
            f"{'AIC / AICc / BIC:':<22}{self.aic:.3f} / {self.aicc:.3f} / {self.bic:.3f}",
            f"{'Converged:':<22}{self.converged}",
            f"{'Backend:':<22}{self.backend}",
            "-" * 52,
            f"{'parameter':<22}{'estimate':>18}",
        ]
        lines += [f"{name:<22}{value:>18.6f}" for name, value in self.params.items()]
        lines.append("=" * 52)
        return "\n".join(lines)

    def __repr__(self):
        return f"<ARIMAResults order={self.order} seasonal_order={self.seasonal_order} " \
               f"trend={self.trend!r} llf={self.llf:.4f}>"


from ._arima_auto import auto_arima  # noqa: E402  (uses ARIMA above)
