r"""Seasonal ARIMA from the math, equal to statsmodels' ``SARIMAX``.

:class:`ARIMA` (alias :class:`SARIMAX`) fits
:math:`\mathrm{SARIMA}(p, d, q)(P, D, Q)_s` with a polynomial trend and
regressors by exact Gaussian maximum likelihood (Kalman filter, missing
values skipped) or by conditional sum of squares; :func:`auto_arima` searches
the orders stepwise (Hyndman-Khandakar). The hot loops live in the ``arima`` kernel
family (:mod:`fastscratch.kernels.arima_numpy` and its Numba / Cython twins).
"""

import numbers
import warnings

import numpy as np
from scipy import optimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from .._backend import effective_n_threads, resolve_kernel
from ..kernels._threads import blas_single_threaded

__all__ = ["ARIMA", "SARIMAX", "ARIMAResults", "PredictionResults", "auto_arima"]

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


def _constrain_stationary_rows(unconstrained):
    """:func:`constrain_stationary` of each row of a (b, n) array (the same operations)."""
    b, n = unconstrained.shape
    if n == 0:
        return np.zeros((b, 0))
    r = unconstrained / np.sqrt(1.0 + unconstrained ** 2)
    y = np.zeros((b, n, n))
    for k in range(n):
        for i in range(k):
            y[:, k, i] = y[:, k - 1, i] + r[:, k] * y[:, k - 1, k - i - 1]
        y[:, k, k] = r[:, k]
    return -y[:, n - 1, :]


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
    """Orders, parameter names and polynomial expansion of one SARIMA model.

    Parameter layout (statsmodels' order): trend, exog coefficients, ar, ma,
    seasonal ar, seasonal ma, sigma2.
    """

    def __init__(self, order, seasonal_order, trend, enforce_stationarity, enforce_invertibility,
                 exog_names=()):
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
        self.exog_names = list(exog_names)
        self.k_exog = len(self.exog_names)
        self.k_trend = len(self.trend_powers)
        self.k_arma = self.p + self.q + self.P + self.Q
        self.k_params = self.k_trend + self.k_exog + self.k_arma + 1
        self._bounds = [int(b) for b in np.cumsum(
            [0, self.k_trend, self.k_exog, self.p, self.q, self.P, self.Q])]
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

    def with_exog(self, exog_names):
        return _Spec((self.p, self.d, self.q), (self.P, self.D, self.Q, self.s), self.trend,
                     self.enforce_stationarity, self.enforce_invertibility, exog_names)

    @property
    def param_names(self):
        names = [_TREND_NAMES[power] for power in self.trend_powers]
        names += [str(name) for name in self.exog_names]
        names += [f"ar.L{i}" for i in range(1, self.p + 1)]
        names += [f"ma.L{i}" for i in range(1, self.q + 1)]
        names += [f"ar.S.L{i * self.s}" for i in range(1, self.P + 1)]
        names += [f"ma.S.L{i * self.s}" for i in range(1, self.Q + 1)]
        return names + ["sigma2"]

    @property
    def title(self):
        """statsmodels' model name, e.g. ``SARIMAX(1, 1, 1)x(1, 1, 1, 12)``."""
        text = f"SARIMAX{(self.p, self.d, self.q)}"
        return text + (f"x{(self.P, self.D, self.Q, self.s)}" if self.s else "")

    def split(self, params):
        """(trend, exog, ar, ma, seasonal ar, seasonal ma) slices of a parameter vector."""
        bounds = self._bounds
        return tuple(params[bounds[i]:bounds[i + 1]] for i in range(6))

    def constrain(self, unconstrained):
        trend, exog, ar, ma, sar, sma = self.split(np.asarray(unconstrained, dtype=np.float64))
        if self.enforce_stationarity:
            ar, sar = constrain_stationary(ar), constrain_stationary(sar)
        if self.enforce_invertibility:
            ma, sma = -constrain_stationary(ma), -constrain_stationary(sma)
        return np.concatenate([trend, exog, ar, ma, sar, sma])

    def constrain_rows(self, unconstrained):
        """:meth:`constrain` of each row of a (b, k) array."""
        rows = np.array(unconstrained, dtype=np.float64, ndmin=2)
        bounds = self._bounds
        ar, ma = slice(bounds[2], bounds[3]), slice(bounds[3], bounds[4])
        sar, sma = slice(bounds[4], bounds[5]), slice(bounds[5], bounds[6])
        if self.enforce_stationarity:
            rows[:, ar] = _constrain_stationary_rows(rows[:, ar])
            rows[:, sar] = _constrain_stationary_rows(rows[:, sar])
        if self.enforce_invertibility:
            rows[:, ma] = -_constrain_stationary_rows(rows[:, ma])
            rows[:, sma] = -_constrain_stationary_rows(rows[:, sma])
        return rows

    def polynomial_rows(self, rows):
        """(phi, theta) of each row of constrained parameters, zero-padded to m and m - 1.

        The multiplied-out phi(L) Phi(L^s) and theta(L) Theta(L^s) of
        :meth:`polynomials`, for a batch of rows at once.
        """
        b = rows.shape[0]
        bounds = self._bounds
        phi = np.zeros((b, self.m))
        theta = np.zeros((b, self.m - 1))
        for out, sign, short, seasonal in (
                (phi, -1.0, rows[:, bounds[2]:bounds[3]], rows[:, bounds[4]:bounds[5]]),
                (theta, 1.0, rows[:, bounds[3]:bounds[4]], rows[:, bounds[5]:bounds[6]])):
            # (1 + sign * sum a_i L^i)(1 + sign * sum A_j L^{sj}) without its leading 1.
            short_poly = np.concatenate([np.ones((b, 1)), sign * short], axis=1)
            seasonal_poly = np.concatenate([np.ones((b, 1)), sign * seasonal], axis=1)
            full = np.zeros((b, short.shape[1] + self.s * seasonal.shape[1] + 1))
            for j in range(seasonal_poly.shape[1]):
                full[:, self.s * j:self.s * j + short_poly.shape[1]] += \
                    short_poly * seasonal_poly[:, j:j + 1]
            out[:, :full.shape[1] - 1] = sign * full[:, 1:]
        return phi, theta

    def unconstrain(self, constrained):
        trend, exog, ar, ma, sar, sma = self.split(np.asarray(constrained, dtype=np.float64))
        if self.enforce_stationarity:
            ar, sar = unconstrain_stationary(ar), unconstrain_stationary(sar)
        if self.enforce_invertibility:
            ma, sma = unconstrain_stationary(-ma), unconstrain_stationary(-sma)
        return np.concatenate([trend, exog, ar, ma, sar, sma])

    def polynomials(self, params):
        """Multiplied-out (phi, theta) of a parameter vector (sigma2 excluded or not).

        w_t = sum phi_i w_{t-i} + e_t + sum theta_j e_{t-j}.
        """
        _, _, ar, ma, sar, sma = self.split(params)
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
    """Concentrated exact log-likelihood and CSS of one model on one series.

    With regressors, u_t = y_t - x_t' beta follows the SARIMA model; the
    differenced w_t = delta(L) u_t is what the (NaN-free) kernels filter. A
    series with NaN goes through the augmented-state kernels instead, which
    skip the update at a missing value.
    """

    def __init__(self, spec, y, exog, backend, n_threads):
        self.spec = spec
        self.y = y
        self.exog = exog if exog is not None else np.zeros((y.shape[0], 0))
        self.n = y.shape[0]
        k = spec.n_diff
        self.n_eff = self.n - k
        self.observed = ~np.isnan(y[k:])
        self.n_obs = int(self.observed.sum())
        self.missing = self.n_obs < self.n_eff
        self.trend = spec.trend_data(0, self.n)
        self.delta_lags = np.ascontiguousarray(spec.delta[1:])
        self.w0 = np.ascontiguousarray(_difference(y, spec.delta))
        self.dx = np.ascontiguousarray(_difference(self.exog, spec.delta))
        self.filter_kernel, self.backend = resolve_kernel("arima_kalman_filter", backend)
        self.loglike_kernel, _ = resolve_kernel("arima_kalman_loglike", self.backend)
        self.css_kernel, _ = resolve_kernel("arima_css_residuals", self.backend)
        self.missing_filter_kernel, _ = resolve_kernel("arima_kalman_filter_missing", self.backend)
        self.missing_loglike_kernel, _ = resolve_kernel("arima_kalman_loglike_missing",
                                                        self.backend)
        self.n_threads = n_threads

    # -- one model's state-space pieces -------------------------------------------------
    def beta(self, params):
        return params[self.spec.k_trend:self.spec.k_trend + self.spec.k_exog]

    def series(self, params):
        """u_t = y_t - x_t' beta (the series whose SARIMA model is filtered)."""
        return self.y - self.exog @ self.beta(params) if self.spec.k_exog else self.y

    def differenced(self, params):
        return self.w0 - self.dx @ self.beta(params) if self.spec.k_exog else self.w0

    def pieces(self, params, n_total=None):
        """(intercept, phi, theta, a0) of the Kalman filter for constrained ``params``.

        ``intercept[j]`` is the trend term added after observation j + d + sD,
        for observations up to ``n_total`` (default: the sample).
        """
        intercept, phi, theta, a0 = self.batch_pieces(np.asarray(params)[None, :], n_total)
        return intercept[0], phi[0], theta[0], a0[0]

    def batch_pieces(self, rows, n_total=None):
        """:meth:`pieces` of each row of constrained parameters: arrays with a row axis."""
        spec = self.spec
        n_total = self.n if n_total is None else n_total
        b = rows.shape[0]
        phi, theta = spec.polynomial_rows(rows)
        if spec.k_trend:
            c = rows[:, :spec.k_trend] @ spec.trend_data(0, n_total).T
        else:
            c = np.zeros((b, n_total))
        # Stationary mean of Harvey's state: w has mean mu = c / (1 - sum phi), state i
        # mu * sum_{k >= i} phi_k.
        a0 = np.zeros((b, spec.m))
        with_mean = c[:, 0] != 0
        if with_mean.any():
            mu = c[with_mean, 0] / (1.0 - phi[with_mean].sum(axis=1))
            tails = np.cumsum(phi[with_mean, ::-1], axis=1)[:, ::-1][:, 1:]
            a0[with_mean] = mu[:, None] * np.concatenate([np.ones((mu.shape[0], 1)), tails],
                                                         axis=1)
        if spec.k_trend:
            # The first n_diff observations only identify the differencing states:
            # propagate the ARMA mean through them.
            for t in range(spec.n_diff):
                a0 = phi * a0[:, :1] + np.concatenate([a0[:, 1:], np.zeros((b, 1))], axis=1)
                a0[:, 0] += c[:, t]
        return np.ascontiguousarray(c[:, spec.n_diff:]), phi, theta, a0

    def concentrated(self, sum_log_F, sum_squares):
        """(llf, sigma2) from the kernel sums, with sigma2 concentrated out."""
        n = self.n_obs
        sigma2 = sum_squares / n
        with np.errstate(divide="ignore", invalid="ignore"):
            llf = -0.5 * n * (np.log(2 * np.pi * sigma2) + 1.0) - 0.5 * sum_log_F
        return llf, sigma2

    def batch_sums(self, constrained_rows):
        """Kernel sums (sum log F, sum v^2 / F) of each row of constrained parameters.

        Rows that are not stationary (possible with enforce_stationarity=False)
        get NaN.
        """
        spec = self.spec
        rows = np.atleast_2d(constrained_rows)
        b = rows.shape[0]
        intercept, phi, theta, a0 = self.batch_pieces(rows)
        valid = np.ones(b, dtype=bool)
        if not spec.enforce_stationarity:
            for i in range(b):
                if not spec.is_stationary(phi[i]):
                    valid[i] = False
                    phi[i] = 0.0
        sum_log_F = np.empty(b)
        sum_squares = np.empty(b)
        k = spec.n_diff
        if self.missing:
            if spec.k_exog:
                u = self.y - self.beta(rows.T).T @ self.exog.T
            else:
                u = np.broadcast_to(self.y, (b, self.n))
            tails = np.ascontiguousarray(u[:, k:])
            lags0 = np.ascontiguousarray(u[:, k - 1::-1] if k else np.zeros((b, 0)))
            self.missing_loglike_kernel(tails, lags0, self.delta_lags, intercept, phi, theta, a0,
                                        sum_log_F, sum_squares, self.n_threads)
        else:
            if spec.k_exog:
                w = np.ascontiguousarray(self.w0 - self.beta(rows.T).T @ self.dx.T)
            else:
                w = np.ascontiguousarray(np.broadcast_to(self.w0, (b, self.n_eff)))
            self.loglike_kernel(w, intercept, phi, theta, a0, sum_log_F, sum_squares,
                                self.n_threads)
        sum_log_F[~valid] = np.nan
        sum_squares[~valid] = np.nan
        return sum_log_F, sum_squares

    def batch_loglike(self, unconstrained_rows):
        """Concentrated llf of each row of unconstrained parameters (one kernel call)."""
        constrained = self.spec.constrain_rows(unconstrained_rows)
        llf, _ = self.concentrated(*self.batch_sums(constrained))
        llf[~np.isfinite(llf)] = -np.inf
        return llf

    def full_loglike(self, params_rows):
        """Unconcentrated llf of rows of constrained parameters with sigma2 last."""
        rows = np.atleast_2d(params_rows)
        sum_log_F, sum_squares = self.batch_sums(rows[:, :-1])
        sigma2 = rows[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return -0.5 * (self.n_obs * np.log(2 * np.pi * sigma2) + sum_log_F
                           + sum_squares / sigma2)

    def filter(self, params):
        """Run the Kalman filter once: (v, F, llf, sigma2), v NaN where y is missing."""
        if self.missing:
            pred, F, _, _ = self.predict(params, self.n)
            v = self.series(params)[self.spec.n_diff:] - pred
        else:
            intercept, phi, theta, a0 = self.pieces(params)
            m = self.spec.m
            v = np.empty(self.n_eff)
            F = np.empty(self.n_eff)
            self.filter_kernel(self.differenced(params), intercept, phi, theta, a0, v, F,
                               np.empty(m), np.empty((m, m)), self.n_threads)
        observed = self.observed
        llf, sigma2 = self.concentrated(np.sum(np.log(F[observed])),
                                        np.sum(v[observed] ** 2 / F[observed]))
        return v, F, llf, sigma2

    def predict(self, params, n_total, masked_from=None):
        """One-step predictions of u_t for t in [d + sD, n_total) (y missing beyond n).

        Observations from ``masked_from`` on are treated as missing (dynamic
        prediction). Returns (prediction, F, final state, final covariance).
        """
        spec = self.spec
        k = spec.n_diff
        u = np.full(n_total, np.nan)
        u[:self.n] = self.series(params)
        if masked_from is not None:
            u[max(masked_from, k):] = np.nan
        intercept, phi, theta, a0 = self.pieces(params, n_total)
        dim = spec.m + k
        pred = np.empty(n_total - k)
        F = np.empty(n_total - k)
        state = np.empty(dim)
        cov = np.empty((dim, dim))
        self.missing_filter_kernel(np.ascontiguousarray(u[k:]),
                                   np.ascontiguousarray(u[k - 1::-1] if k else np.zeros(0)),
                                   self.delta_lags, intercept, phi, theta, a0, pred, F, state,
                                   cov, self.n_threads)
        return pred, F, state, cov

    # -- conditional sum of squares ------------------------------------------------------
    def css_residuals(self, params):
        spec = self.spec
        phi, theta = spec.polynomials(params)
        # The trend term entering w_j (time j + n_diff) is c at the time before.
        c = self.trend @ params[:spec.k_trend] if spec.k_trend else np.zeros(self.n)
        intercept = np.ascontiguousarray(np.concatenate([[c[0]], c[:-1]])[spec.n_diff:])
        resid = np.empty(self.n_eff)
        self.css_kernel(np.ascontiguousarray(self.differenced(params)), intercept,
                        np.ascontiguousarray(phi), np.ascontiguousarray(theta), resid,
                        self.n_threads)
        return resid[spec.p_full:]

    def css_objective(self, unconstrained):
        resid = self.css_residuals(self.spec.constrain(unconstrained))
        value = np.dot(resid, resid) / max(resid.shape[0], 1)
        return value if np.isfinite(value) else 1e300


def _difference(x, delta):
    """delta(L) x along the first axis, dropping the first len(delta) - 1 rows."""
    k = delta.shape[0] - 1
    out = x[k:].copy() if x.ndim == 1 else x[k:].astype(np.float64, copy=True)
    for j in range(1, k + 1):
        out += delta[j] * x[k - j:x.shape[0] - j]
    return out


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
    r"""Seasonal ARIMA with a trend and regressors (SARIMAX), fitted by exact maximum likelihood.

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
    The model for the series :math:`y_t` with regressors :math:`x_t`
    (``fit(y, exog)``; coefficients :math:`\beta` named after the columns)
    is a regression with SARIMA errors, as statsmodels' ``SARIMAX``:

    .. math::

        y_t = x_t^\top \beta + u_t, \qquad
        \phi(L)\,\Phi(L^s)\,\Delta^d \Delta_s^D u_t
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

    *Exact likelihood.* The differenced series
    :math:`w_t = \delta(L)(y_t - x_t^\top\beta)` is a stationary
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

    *Missing values.* Where :math:`y_t` is NaN the filter runs on the
    undifferenced series with the state augmented by the last d + sD values
    (``arima_kalman_filter_missing``) and skips the update at the gap, as
    statsmodels does; :math:`n'` counts the observed values.

    *Estimation.* ``fit(method="css")`` minimises the conditional sum of
    squares :math:`\sum_{t \ge p'} e_t^2` of the recursion
    :math:`e_t = w_t - c_{t-1} - \sum_i \phi^*_i w_{t-i} - \sum_j \theta^*_j e_{t-j}`;
    ``fit(method="mle")`` maximises :math:`\ell` jointly in
    :math:`(\beta, c, \phi, \theta, \Phi, \Theta)` with L-BFGS-B over
    unconstrained parameters: AR and MA coefficients go through the Monahan
    (1984) / Jones (1980) transform (:func:`constrain_stationary`), as
    statsmodels does, and the gradient is by central differences, its 2k + 1
    likelihoods computed in one parallel kernel call. Three starts are
    tried: the CSS estimate, the Hannan-Rissanen regressions (after an OLS
    of :math:`\delta(L) y_t` on :math:`\delta(L) x_t`) and zero ARMA terms;
    the one with the highest likelihood runs to convergence, the others
    only if a 10-iteration run already beats it, and the best optimum is
    kept. ``converged`` is True only when L-BFGS-B reports success and the
    likelihood and parameters are finite.

    *Inference.* ``ARIMAResults.bse`` and friends use statsmodels' default
    covariance, the outer product of the per-observation scores ("opg"), or
    the inverse negative Hessian ("approx"), both by finite differences at
    the constrained parameters with :math:`\sigma^2` as a parameter (see
    :mod:`fastscratch.timeseries._arima_results`).

    *Predictions.* The state is augmented with :math:`u_{t-1}, \dots,
    u_{t-d-sD}` so that :math:`u_t = w_t - \sum_k \delta_k u_{t-k}`
    (:math:`\delta(L) = (1-L)^d (1-L^s)^D`); forecasts and dynamic
    predictions are that filter run with the values it may not use marked
    missing, plus :math:`x_t^\top\beta` for the (future) regressors.

    Examples
    --------
    >>> import fastscratch
    >>> y = fastscratch.datasets.load_electric_production()
    >>> res = fastscratch.ARIMA((1, 1, 1), (0, 1, 1, 12)).fit(y)
    >>> res.forecast(3)  # doctest: +SKIP
    >>> print(res.summary())  # doctest: +SKIP
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

    def _spec(self, exog_names=()):
        return _Spec(self.order, self.seasonal_order, self.trend, self.enforce_stationarity,
                     self.enforce_invertibility, exog_names)

    def fit(self, y, exog=None, method="mle", start_params=None, maxiter=500):
        """Estimate the parameters.

        Parameters
        ----------
        y : array-like of shape (n,) or pandas.Series
            The series; a Series with a DatetimeIndex, PeriodIndex or integer
            index gives forecasts labelled as statsmodels labels them. NaN
            marks a missing value (skipped by the Kalman filter); the first
            d + sD values must be observed.
        exog : array-like of shape (n, k) or (n,), optional
            Regressors :math:`x_t` of a regression with SARIMA errors,
            :math:`y_t = x_t^\top \beta + u_t`; their coefficients are
            estimated jointly with the others by exact maximum likelihood
            (statsmodels' ``SARIMAX(y, exog, mle_regression=True)``).
            Forecasts then need the future regressors (``exog=`` of
            :meth:`ARIMAResults.get_forecast`).
        method : {"mle", "css"}, default="mle"
            Exact maximum likelihood or conditional sum of squares.
        start_params : array-like, optional
            Starting values in ``params`` order (sigma2 last, optional and
            ignored: it is concentrated out). Default: several starts (the
            CSS estimate, the Hannan-Rissanen regressions and zeros), keeping
            the one that reaches the highest likelihood.
        maxiter : int, default=500
            Iteration limit of L-BFGS-B.

        Returns
        -------
        results : ARIMAResults

        Warns
        -----
        ConvergenceWarning
            When the optimiser stops without reporting success (the message
            says why), or the result is not finite; ``results.converged`` is
            then False.
        """
        if method not in ("mle", "css"):
            raise ValueError(f"method must be 'mle' or 'css', got {method!r}.")
        if (isinstance(maxiter, (bool, np.bool_)) or not isinstance(maxiter, numbers.Integral)
                or maxiter < 1):
            raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}.")
        values, index, name = _validate_series(y)
        exog_values, exog_names = _validate_exog(exog, values.shape[0])
        spec = self._spec(exog_names)
        scales = _DataScales.of(values, exog_values)
        lik = _make_likelihood(spec, *scales.shrink(values, exog_values), self.backend,
                               effective_n_threads(self.n_jobs), method)
        if start_params is not None:
            start_params = scales.internal_params(spec, start_params)
        # L-BFGS-B's tiny BLAS calls are much slower on several threads.
        with blas_single_threaded():
            params, sigma2, llf, converged, reason = _estimate(lik, method, start_params,
                                                               maxiter)
        if not converged:
            warnings.warn(f"{spec.title}: the fit did not converge ({reason}); the estimates "
                          "may not be the maximum. Try other start_params, a larger maxiter "
                          "or other orders.", ConvergenceWarning, stacklevel=2)
        from ._arima_results import ARIMAResults

        self.results_ = ARIMAResults(self, spec, lik, np.append(params, sigma2), float(llf),
                                     method, bool(converged), index, name, scales=scales)
        return self.results_

    def filter(self, y, params, exog=None):
        """Results at given parameters, without estimation (statsmodels' ``model.filter``).

        Parameters
        ----------
        y, exog
            As in :meth:`fit`.
        params : array-like of shape (k_params,)
            All parameters in ``params`` order, sigma2 last.

        Returns
        -------
        results : ARIMAResults
            ``llf`` is the log-likelihood at ``params`` (not concentrated);
            ``converged`` is False (nothing was estimated).
        """
        from ._arima_results import ARIMAResults, _llf_obs

        values, index, name = _validate_series(y)
        exog_values, exog_names = _validate_exog(exog, values.shape[0])
        spec = self._spec(exog_names)
        params = np.asarray(params, dtype=np.float64).reshape(-1)
        if params.shape[0] != spec.k_params:
            raise ValueError(f"params must hold {spec.k_params} values {spec.param_names}, got "
                             f"{params.shape[0]}.")
        if not np.all(np.isfinite(params)) or params[-1] <= 0:
            raise ValueError("params must be finite with a positive sigma2 (last).")
        scales = _DataScales.of(values, exog_values)
        lik = _make_likelihood(spec, *scales.shrink(values, exog_values), self.backend,
                               effective_n_threads(self.n_jobs))
        params = scales.internal_params(spec, params)
        llf = float(_llf_obs(lik, params).sum())
        self.results_ = ARIMAResults(self, spec, lik, params, llf, "filter", False, index, name,
                                     scales=scales)
        return self.results_


class SARIMAX(ARIMA):
    """statsmodels' name for :class:`ARIMA` (same parameters, same model).

    ``SARIMAX(order, seasonal_order, trend).fit(y, exog)`` fits what
    ``statsmodels.tsa.statespace.sarimax.SARIMAX(y, exog, order=order,
    seasonal_order=seasonal_order, trend=trend).fit()`` fits; see
    :class:`ARIMA` for the parameters and the math.
    """


class _DataScales:
    r"""Powers of two that bring a series and its regressors to a safe magnitude.

    The likelihood squares the series: beyond about 1e150 the sums of squares
    overflow, below about 1e-150 they underflow, and the fit then returns
    zeros or infinities. A series whose largest absolute value lies outside
    [2^-100, 2^100] (about 1e-30 to 1e30) is therefore divided by the power of
    two :math:`s_y = 2^e` that brings that value into [0.5, 1), and each
    regressor column likewise by its own :math:`s_j`; series of ordinary
    magnitude are not touched (:math:`s = 1`), so their results are those
    of the unscaled arithmetic bit for bit. Division by a power of two is
    exact, so the fitted model is the model of the original series with

    .. math::

        c_k = s_y \, c'_k, \quad \beta_j = \frac{s_y}{s_j} \beta'_j, \quad
        \sigma^2 = s_y^2 \sigma'^2, \quad
        \ell = \ell' - n' \log s_y,

    the AR and MA coefficients unchanged (:meth:`param_scales`). Quantities
    that do not fit in a float64 (``sigma2`` of a series near 1e300 is about
    1e600) are reported as ``inf`` (or 0 near 1e-300); point forecasts,
    standard errors of predictions and intervals stay finite. The approximate
    diffuse prior (variance 1e6) of the first d + sD one-step errors
    (``resid``, in-sample predictions) is then in the rescaled units, where it
    is still diffuse; in the series' own units (statsmodels' choice) it would
    be a point mass for a series near 1e300.
    """

    LOW, HIGH = 2.0 ** -100, 2.0 ** 100

    def __init__(self, y_scale=1.0, exog_scales=None):
        self.y = float(y_scale)
        self.exog = np.ones(0) if exog_scales is None else np.asarray(exog_scales, float)

    @classmethod
    def _scale_of(cls, values):
        """The power of two dividing ``values`` (1.0 when their magnitude is safe)."""
        finite = np.abs(values[np.isfinite(values)])
        largest = float(finite.max()) if finite.size else 0.0
        if largest == 0.0 or cls.LOW <= largest <= cls.HIGH:
            return 1.0
        return float(np.ldexp(1.0, np.frexp(largest)[1]))

    @classmethod
    def of(cls, values, exog=None):
        exog_scales = None if exog is None else np.array(
            [cls._scale_of(exog[:, j]) for j in range(exog.shape[1])])
        return cls(cls._scale_of(values), exog_scales)

    def shrink(self, values, exog=None):
        """(values / s_y, exog / s_j): the data the likelihood sees."""
        return values / self.y, None if exog is None else exog / self.exog

    def param_scales(self, spec):
        """Factors d with public params = d * internal params (sigma2 last)."""
        d = np.ones(spec.k_params)
        d[:spec.k_trend] = self.y
        d[spec.k_trend:spec.k_trend + spec.k_exog] = self.y / self.exog
        d[-1] = self.y * self.y
        return d

    def internal_params(self, spec, params):
        """User parameters (``start_params``, ``filter``'s params) in internal units; values of
        another length are returned as given, for the caller's own check to refuse."""
        params = np.asarray(params, dtype=np.float64).reshape(-1)
        if params.shape[0] not in (spec.k_params - 1, spec.k_params):
            return params
        d = self.param_scales(spec)
        with np.errstate(all="ignore"):
            internal = params / d[:params.shape[0]]
            if params.shape[0] == spec.k_params:
                # sigma2 divided by s_y twice: s_y ** 2 itself may overflow or underflow.
                internal[-1] = params[-1] / self.y / self.y
        return internal


def _make_likelihood(spec, values, exog, backend, n_threads, method="mle"):
    """Check that the series can be fitted and build its likelihood; clear errors."""
    n = values.shape[0]
    n_needed = spec.n_diff + max(spec.k_params + 2, spec.p_full + spec.q_full + 1)
    if n < n_needed:
        raise ValueError(f"y has {n} observations but {spec.title} with {spec.k_exog} regressors "
                         f"needs at least {n_needed}; use a longer series or smaller orders.")
    if np.isnan(values[:spec.n_diff]).any():
        raise ValueError(f"y has missing values (NaN) among its first d + sD = {spec.n_diff} "
                         "observations, which start the differencing; drop them.")
    lik = _Likelihood(spec, values, exog, backend, n_threads)
    if lik.missing and method == "css":
        raise ValueError("method='css' needs a complete series; y has NaN. Use method='mle' "
                         "(the Kalman filter skips missing values).")
    w = lik.w0[~np.isnan(lik.w0)]
    if lik.n_obs < spec.k_params + 2 or w.shape[0] == 0:
        raise ValueError(f"y has only {lik.n_obs} observed values after differencing; "
                         f"{spec.title} needs at least {spec.k_params + 2}.")
    if np.ptp(w) == 0 and spec.k_exog == 0:
        raise ValueError(f"y is constant after differencing (d={spec.d}, D={spec.D}): the "
                         "innovation variance is zero and the likelihood is unbounded. Fit "
                         "fewer differences, or do not model a constant series.")
    return lik


def _estimate(lik, method, start_params, maxiter):
    """(params without sigma2, sigma2, llf, converged, reason for not converging)."""
    spec = lik.spec
    if start_params is not None:
        starts = [spec.unconstrain(_check_start_params(start_params, spec))]
    elif method == "css":
        starts = [_css_start(lik, refine=False)]
    else:
        starts = _starts(lik)
    if method == "css":
        x, converged, reason = _minimise_css(lik, starts[0], maxiter)
        params = spec.constrain(x)
        resid = lik.css_residuals(params)
        n_used = resid.shape[0]
        sigma2 = float(np.dot(resid, resid) / n_used)
        llf = -0.5 * n_used * (np.log(2 * np.pi * sigma2) + 1.0)
    else:
        x, converged, reason = _minimise_mle_multistart(lik, starts, maxiter)
        params = spec.constrain(x)
        llf, sigma2 = lik.filter(params)[2:]
    if converged and not (np.all(np.isfinite(params)) and np.isfinite(llf)
                          and np.isfinite(sigma2) and sigma2 > 0):
        converged, reason = False, "the log-likelihood or the parameters are not finite"
    return params, sigma2, llf, converged, reason


def _check_start_params(start_params, spec):
    start = np.asarray(start_params, dtype=np.float64).reshape(-1)
    k = spec.k_params
    if start.shape[0] not in (k - 1, k):
        raise ValueError(f"start_params must hold {k - 1} or {k} values ({spec.param_names}), "
                         f"got {start.shape[0]}.")
    start = start[:k - 1]
    if not np.all(np.isfinite(start)):
        raise ValueError("start_params must be finite.")
    _, _, ar, ma, sar, sma = spec.split(start)
    if spec.enforce_stationarity and not (_is_stationary_poly(ar, range(1, spec.p + 1))
                                          and _is_stationary_poly(sar, range(1, spec.P + 1))):
        raise ValueError("start_params has non-stationary autoregressive coefficients while "
                         "enforce_stationarity=True; give stationary ones (all roots of the AR "
                         "polynomials outside the unit circle) or omit start_params.")
    if spec.enforce_invertibility and not (_is_stationary_poly(-ma, range(1, spec.q + 1))
                                           and _is_stationary_poly(-sma, range(1, spec.Q + 1))):
        raise ValueError("start_params has non-invertible moving-average coefficients while "
                         "enforce_invertibility=True; give invertible ones or omit start_params.")
    return start


def _validate_series(y):
    """(float64 values, pandas index or None, name) of a 1-D series; clear errors.

    NaN marks a missing value; infinite values are refused.
    """
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
    if dtype != bool and (not np.issubdtype(dtype, np.number)
                          or np.issubdtype(dtype, np.complexfloating)):
        raise TypeError(f"y must hold real numbers, got dtype {values.dtype}.")
    if values.shape[0] == 0:
        raise ValueError("y is empty; give a series with observations.")
    values = np.ascontiguousarray(values, dtype=np.float64)
    if np.isinf(values).any():
        raise ValueError("y contains infinite values; replace them (NaN marks a missing value).")
    if np.isnan(values).all():
        raise ValueError("y has no observed values (all NaN).")
    return values, index, name


def _validate_exog(exog, n, what="exog"):
    """(float64 array (n, k), column names) of regressors with n rows; (None, []) for None."""
    if exog is None:
        return None, []
    names = None
    if hasattr(exog, "columns"):
        names = [str(column) for column in exog.columns]
    elif hasattr(exog, "name") and hasattr(exog, "to_numpy"):
        names = [str(exog.name) if exog.name is not None else "x1"]
    values = np.asarray(exog.to_numpy() if hasattr(exog, "to_numpy") else exog)
    if values.dtype != bool and (not np.issubdtype(values.dtype, np.number)
                                 or np.issubdtype(values.dtype, np.complexfloating)):
        raise TypeError(f"{what} must hold real numbers, got dtype {values.dtype}.")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_obs, n_regressors), got shape {values.shape}.")
    if values.shape[0] != n:
        raise ValueError(f"{what} has {values.shape[0]} rows but {n} are needed (one per "
                         f"{'observation of y' if what == 'exog' else 'predicted step'}).")
    values = np.ascontiguousarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} contains NaN or infinite values; regressors must be complete.")
    if names is None:
        names = [f"x{i + 1}" for i in range(values.shape[1])]
    return values, names


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
    """Constrained start values: OLS for the regressors, then Hannan-Rissanen regressions
    (non-seasonal, then seasonal) on the differenced regression residuals."""
    spec = lik.spec
    w = lik.w0
    if lik.missing:
        # Start values only: interpolate the gaps linearly.
        positions = np.arange(w.shape[0])
        seen = ~np.isnan(w)
        w = np.interp(positions, positions[seen], w[seen])
    beta = np.zeros(spec.k_exog)
    if spec.k_exog:
        beta = np.linalg.lstsq(lik.dx, w, rcond=None)[0]
        w = w - lik.dx @ beta
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
    return np.concatenate([params_trend, beta, ar, ma, sar, sma])


def _css_start(lik, refine=True):
    """Unconstrained start values: the regression estimate, refined by CSS."""
    spec = lik.spec
    x0 = spec.unconstrain(_regression_start(lik))
    if spec.k_arma == 0 or not refine or lik.missing:
        return x0
    # A start value only: at most 30 steps, fewer once CSS improves by < 1e-7 relative.
    x, _, _ = _minimise_css(lik, x0, 30, ftol=1e-7)
    # Keep the start away from the boundary of the stationary / invertible region.
    x[spec.k_trend + spec.k_exog:] = np.clip(x[spec.k_trend + spec.k_exog:], -3.0, 3.0)
    return x


def _starts(lik):
    """Distinct unconstrained starts: CSS-refined, Hannan-Rissanen, and zero ARMA terms."""
    spec = lik.spec
    regression = spec.unconstrain(_regression_start(lik))
    zero = regression.copy()
    zero[spec.k_trend + spec.k_exog:] = 0.0
    starts = []
    for start in (_css_start(lik), regression, zero):
        if np.all(np.isfinite(start)) and not any(np.allclose(start, other, rtol=1e-6,
                                                              atol=1e-8) for other in starts):
            starts.append(start)
    return starts or [zero]


def _minimise_css(lik, x0, maxiter, ftol=2.2e-9):
    if x0.shape[0] == 0:
        return x0, True, ""
    result = optimize.minimize(lik.css_objective, x0, method="L-BFGS-B",
                               options={"maxiter": maxiter, "ftol": ftol})
    return result.x, bool(result.success), f"L-BFGS-B: {result.message}"


# Each start other than the best one gets this many L-BFGS-B iterations to show promise.
_SCREEN_ITERATIONS = 10


def _minimise_mle_multistart(lik, starts, maxiter):
    """Maximise the likelihood from several starts, keep the best: (x, converged, reason).

    The start with the highest likelihood is optimised to convergence. Each
    other start gets a short screening run, and is optimised to convergence
    only if it already beats that optimum (it is heading for a better local
    maximum); the best converged result is kept.
    """
    if starts[0].shape[0] == 0:
        return starts[0], True, ""
    if len(starts) > 1:
        order = np.argsort(-lik.batch_loglike(np.stack(starts)), kind="stable")
        starts = [starts[i] for i in order]
    best_x, best_converged, best_reason = _minimise_mle(lik, starts[0], maxiter)
    best_llf = lik.batch_loglike(best_x[None])[0]
    for x0 in starts[1:]:
        x, converged, reason, result = _minimise_mle(lik, x0, min(_SCREEN_ITERATIONS, maxiter),
                                                     keep_result=True)
        llf = -result.fun * lik.n_obs
        if not llf > best_llf + 1e-6 * max(1.0, abs(best_llf)):
            continue
        if not converged and maxiter > _SCREEN_ITERATIONS:
            x, converged, reason = _minimise_mle(lik, x, maxiter - result.nit)
        llf = lik.batch_loglike(x[None])[0]
        if llf > best_llf:
            best_x, best_converged, best_reason, best_llf = x, converged, reason, llf
    return best_x, best_converged, best_reason


def _minimise_mle(lik, x0, maxiter, keep_result=False):
    """L-BFGS-B on the concentrated llf, central-difference gradient in one kernel call."""
    if x0.shape[0] == 0:
        return (x0, True, "", None) if keep_result else (x0, True, "")
    scale = 1.0 / lik.n_obs

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
    if result.fun >= 1e300:
        result.fun = np.inf
    converged = bool(result.success) and np.isfinite(result.fun)
    reason = "" if converged else (
        "the log-likelihood is not finite" if not np.isfinite(result.fun)
        else f"L-BFGS-B: {result.message}")
    if keep_result:
        return result.x, converged, reason, result
    return result.x, converged, reason


# Imported last: both use the definitions above.
from ._arima_auto import auto_arima
from ._arima_results import ARIMAResults, PredictionResults
