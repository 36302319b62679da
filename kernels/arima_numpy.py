r"""ARMA likelihood recursions: the readable NumPy reference.

The ARIMA model of :mod:`fastscratch.timeseries.arima` is fitted on the
differenced series :math:`w_t = \Delta^d \Delta_s^D y_t`, which follows a
stationary ARMA model with the multiplied-out polynomials

.. math::

    w_t = c_{t-1} + \sum_{i=1}^{m} \phi_i w_{t-i}
          + \varepsilon_t + \sum_{j=1}^{m-1} \theta_j \varepsilon_{t-j},
    \qquad \varepsilon_t \sim N(0, \sigma^2).

Two recursions evaluate it, and both run thousands of times inside the
optimiser:

- :func:`arima_kalman_filter` / :func:`arima_kalman_loglike`: the Kalman filter
  on Harvey's state-space form (state dimension ``m = max(p', q' + 1)``)

  .. math::

      w_t = Z \alpha_t, \quad
      \alpha_{t+1} = T \alpha_t + c_t e_1 + R \varepsilon_{t+1},\quad
      Z = e_1^\top,\;
      T = \begin{pmatrix} \phi & \begin{matrix} I_{m-1} \\ 0 \end{matrix} \end{pmatrix},\;
      R = (1, \theta_1, \dots, \theta_{m-1})^\top,

  started from the stationary distribution: mean ``a0`` (given) and the
  covariance :math:`P_0` solving the discrete Lyapunov equation
  :math:`P_0 = T P_0 T^\top + R R^\top`. The filter works in units of
  :math:`\sigma^2` (it is concentrated out), and writes the innovations
  :math:`v_t = w_t - Z a_t` and their variances :math:`F_t = Z P_t Z^\top`:

  .. math::

      a_{t|t} = a_t + P_t Z^\top v_t / F_t, \quad
      P_{t|t} = P_t - P_t Z^\top Z P_t / F_t, \\
      a_{t+1} = T a_{t|t} + c_t e_1, \quad
      P_{t+1} = T P_{t|t} T^\top + R R^\top .

- :func:`arima_kalman_filter_missing` / :func:`arima_kalman_loglike_missing`:
  the same filter on the series itself (not differenced), for series with
  missing values (NaN). The state is augmented with the last ``k = d + sD``
  values, :math:`x_t = (\alpha_t, y_{t-1}, \dots, y_{t-k})`, so that
  :math:`y_t = Z x_t` with :math:`Z = (1, 0, \dots, 0, -\delta_1, \dots, -\delta_k)`
  (:math:`\delta(L) = (1-L)^d(1-L^s)^D = 1 + \sum_j \delta_j L^j`); the
  lags are known exactly at the start (covariance 0), which is the exact
  diffuse likelihood. At a NaN the update is skipped (prediction only), as
  statsmodels does:

  .. math::

      F_t = Z P_t Z^\top, \quad
      a_{t|t} = a_t + P_t Z^\top (y_t - Z a_t) / F_t, \quad
      P_{t|t} = P_t - P_t Z^\top Z P_t / F_t \quad (y_t \text{ observed}), \\
      a_{t|t} = a_t, \quad P_{t|t} = P_t \quad (y_t \text{ missing}).

- :func:`arima_css_residuals`: the conditional-sum-of-squares residuals,
  :math:`e_t = w_t - c_{t-1} - \sum_i \phi_i w_{t-i} - \sum_j \theta_j e_{t-j}`
  for :math:`t \ge p'`, with :math:`e_t = 0` before.

Float64 only: the likelihood sums need double precision. The recursions are
sequential in time; ``n_threads`` parallelises :func:`arima_kalman_loglike`
over a batch of parameter vectors (the optimiser's finite-difference
gradient), and is ignored elsewhere. This reference builds the dense
matrices T and R and solves the Lyapunov equation with SciPy; the compiled
kernels use the structure of T (O(m^2) per step) and build P0 from the ARMA
autocovariances.
"""

import numpy as np
from scipy.linalg import solve_discrete_lyapunov

# Fastest first, as measured by benchmarks/test_bench_arima.py (2 shared cores, one run):
# fit medians cython / numba / numpy: SARIMAX(1,1,1)(1,1,1,12) electric 0.036 / 0.035 /
# 0.92 s, co2 0.037 / 0.038 / 1.04 s, ARIMA(2,1,2) electric 0.039 / 0.048 / 2.87 s
# (statsmodels 0.39, 0.75, 0.20 s). Cython and Numba tie on large states; Cython wins
# on small ones and needs no compilation on first use. The missing-value kernels (issue 18),
# SARIMAX(1,1,1)(1,1,1,12) on the electric series with 3 NaN, medians of 5 on the shared
# machine: cython 0.64 s, numba 1.42 s, numpy 5.3 s (one run).
AUTO_BACKEND_ORDER = {
    "arima_kalman_filter": ("cython", "numba", "numpy"),
    "arima_kalman_loglike": ("cython", "numba", "numpy"),
    "arima_css_residuals": ("cython", "numba", "numpy"),
    "arima_kalman_filter_missing": ("cython", "numba", "numpy"),
    "arima_kalman_loglike_missing": ("cython", "numba", "numpy"),
}


def harvey_matrices(phi, theta):
    """Dense transition T (m x m) and selection R (m,) of Harvey's form."""
    m = phi.shape[0]
    transition = np.zeros((m, m))
    transition[:, 0] = phi
    transition[:m - 1, 1:] += np.eye(m - 1)
    selection = np.concatenate([[1.0], theta])
    return transition, selection


def stationary_cov(phi, theta):
    """Stationary covariance P0 of the state, in units of sigma^2 (Lyapunov equation)."""
    transition, selection = harvey_matrices(phi, theta)
    return solve_discrete_lyapunov(transition, np.outer(selection, selection))


def arima_kalman_filter(w, intercept, phi, theta, a0, out_v, out_F, out_state, out_cov,
                        n_threads):
    r"""Kalman filter of one ARMA model on the differenced series.

    Parameters
    ----------
    w : ndarray of shape (n,), float64
        The differenced series.
    intercept : ndarray of shape (n,), float64
        :math:`c_t`, added to the first state in the prediction step after
        observation t (zeros without a trend).
    phi : ndarray of shape (m,), float64
        AR coefficients of the multiplied-out polynomial, zero-padded to m.
    theta : ndarray of shape (m - 1,), float64
        MA coefficients of the multiplied-out polynomial, zero-padded to m - 1.
    a0 : ndarray of shape (m,), float64
        Predicted state mean for ``w[0]``.
    out_v, out_F : ndarray of shape (n,), float64
        Written: innovations :math:`v_t` and their variances :math:`F_t`
        (in units of :math:`\sigma^2`).
    out_state : ndarray of shape (m,), float64
        Written: the predicted state mean for time n (after the last observation).
    out_cov : ndarray of shape (m, m), float64
        Written: its covariance, in units of :math:`\sigma^2`.
    n_threads : int
        Ignored (the recursion is sequential).
    """
    transition, selection = harvey_matrices(phi, theta)
    state_noise = np.outer(selection, selection)
    a = a0.copy()
    P = stationary_cov(phi, theta)
    for t in range(w.shape[0]):
        v = w[t] - a[0]
        F = P[0, 0]
        out_v[t] = v
        out_F[t] = F
        a_filtered = a + P[:, 0] * (v / F)
        P_filtered = P - np.outer(P[:, 0], P[0, :]) / F
        a = transition @ a_filtered
        a[0] += intercept[t]
        P = transition @ P_filtered @ transition.T + state_noise
    out_state[:] = a
    out_cov[:, :] = P


def arima_kalman_loglike(w, intercept, phi, theta, a0, out_sum_log_F, out_sum_squares,
                         n_threads):
    r"""Likelihood pieces of a batch of ARMA models (e.g. a finite-difference stencil).

    Parameters
    ----------
    w : ndarray of shape (b, n), float64
        One differenced series per model (they differ when regression
        coefficients are estimated), as in :func:`arima_kalman_filter`.
    intercept : ndarray of shape (b, n), float64
        One intercept series per model.
    phi : ndarray of shape (b, m); theta : ndarray of shape (b, m - 1); a0 : ndarray of shape (b, m)
        One model per row.
    out_sum_log_F, out_sum_squares : ndarray of shape (b,), float64
        Written: :math:`\sum_t \\log F_t` and :math:`\sum_t v_t^2 / F_t`, from
        which the concentrated log-likelihood is
        :math:`-\\tfrac{n}{2}(\\log 2\\pi \\hat\sigma^2 + 1) - \\tfrac12 \sum \\log F_t`,
        :math:`\\hat\sigma^2 = \\tfrac1n \sum v_t^2/F_t`.
    n_threads : int
        Ignored here; the compiled kernels run the models in parallel.
    """
    n = w.shape[1]
    m = phi.shape[1]
    v = np.empty(n)
    F = np.empty(n)
    state = np.empty(m)
    cov = np.empty((m, m))
    for b in range(phi.shape[0]):
        arima_kalman_filter(w[b], intercept[b], phi[b], theta[b], a0[b], v, F, state, cov, 1)
        out_sum_log_F[b] = np.sum(np.log(F))
        out_sum_squares[b] = np.sum(v * v / F)


def augmented_matrices(phi, theta, delta):
    """Dense (Z, T, R) of the state (alpha_t, y_{t-1}, ..., y_{t-k}), k = len(delta)."""
    m = phi.shape[0]
    k = delta.shape[0]
    design = np.concatenate([[1.0], np.zeros(m - 1), -delta])
    transition = np.zeros((m + k, m + k))
    transition[:m, :m], selection = harvey_matrices(phi, theta)
    if k:
        transition[m] = design
        transition[m + 1:, m:m + k - 1] = np.eye(k - 1)
    return design, transition, np.concatenate([selection, np.zeros(k)])


def arima_kalman_filter_missing(y, lags0, delta, intercept, phi, theta, a0, out_pred, out_F,
                                out_state, out_cov, n_threads):
    r"""Kalman filter of one ARIMA model on the undifferenced series, NaN skipped.

    Parameters
    ----------
    y : ndarray of shape (n,), float64
        The series from time k = d + sD on (NaN where missing).
    lags0 : ndarray of shape (k,), float64
        The k values before ``y[0]``, most recent first (all observed).
    delta : ndarray of shape (k,), float64
        :math:`\delta_1, \dots, \delta_k` of the differencing polynomial.
    intercept, phi, theta, a0
        As in :func:`arima_kalman_filter` (``intercept[t]`` enters the
        prediction of ``y[t + 1]``).
    out_pred, out_F : ndarray of shape (n,), float64
        Written: the one-step prediction :math:`Z a_t` of ``y[t]`` and its
        variance :math:`F_t` (units of :math:`\sigma^2`), also where y is NaN.
    out_state : ndarray of shape (m + k,), float64
        Written: the predicted augmented state for time n.
    out_cov : ndarray of shape (m + k, m + k), float64
        Written: its covariance, in units of :math:`\sigma^2`.
    n_threads : int
        Ignored (the recursion is sequential).
    """
    m = phi.shape[0]
    design, transition, selection = augmented_matrices(phi, theta, delta)
    state_noise = np.outer(selection, selection)
    a = np.concatenate([a0, lags0])
    P = np.zeros((m + delta.shape[0],) * 2)
    P[:m, :m] = stationary_cov(phi, theta)
    for t in range(y.shape[0]):
        prediction = design @ a
        PZ = P @ design
        F = design @ PZ
        out_pred[t] = prediction
        out_F[t] = F
        if not np.isnan(y[t]):
            a = a + PZ * ((y[t] - prediction) / F)
            P = P - np.outer(PZ, PZ) / F
        a = transition @ a
        a[0] += intercept[t]
        P = transition @ P @ transition.T + state_noise
    out_state[:] = a
    out_cov[:, :] = P


def arima_kalman_loglike_missing(y, lags0, delta, intercept, phi, theta, a0, out_sum_log_F,
                                 out_sum_squares, n_threads):
    r"""Likelihood pieces of a batch of models on series with NaN (observed times only).

    Parameters
    ----------
    y : ndarray of shape (b, n); lags0 : ndarray of shape (b, k)
        One series (and its k starting lags) per model.
    delta : ndarray of shape (k,), float64
    intercept : ndarray of shape (b, n); phi : (b, m); theta : (b, m - 1); a0 : (b, m)
    out_sum_log_F, out_sum_squares : ndarray of shape (b,), float64
        Written: :math:`\sum \log F_t` and :math:`\sum v_t^2 / F_t` over the
        observed times, :math:`v_t = y_t - Z a_t`.
    n_threads : int
        Ignored here; the compiled kernels run the models in parallel.
    """
    n = y.shape[1]
    m = phi.shape[1]
    dim = m + delta.shape[0]
    pred = np.empty(n)
    F = np.empty(n)
    state = np.empty(dim)
    cov = np.empty((dim, dim))
    for b in range(phi.shape[0]):
        arima_kalman_filter_missing(y[b], lags0[b], delta, intercept[b], phi[b], theta[b], a0[b],
                                    pred, F, state, cov, 1)
        observed = ~np.isnan(y[b])
        v = y[b][observed] - pred[observed]
        out_sum_log_F[b] = np.sum(np.log(F[observed]))
        out_sum_squares[b] = np.sum(v * v / F[observed])


def arima_css_residuals(w, intercept, phi, theta, out_resid, n_threads):
    """Conditional-sum-of-squares residuals of one ARMA model.

    Parameters
    ----------
    w : ndarray of shape (n,), float64
        The differenced series.
    intercept : ndarray of shape (n,), float64
        The trend term entering ``w[t]`` (:math:`c_{t-1}` above).
    phi : ndarray of shape (p,), float64
        AR coefficients (multiplied out, not padded); the first p residuals are 0.
    theta : ndarray of shape (q,), float64
        MA coefficients (multiplied out, not padded).
    out_resid : ndarray of shape (n,), float64
        Written: the residuals :math:`e_t`.
    n_threads : int
        Ignored (the recursion is sequential).
    """
    n = w.shape[0]
    p = phi.shape[0]
    q = theta.shape[0]
    out_resid[:min(p, n)] = 0.0
    for t in range(p, n):
        ar_part = np.dot(phi, w[t - p:t][::-1])
        n_ma = min(q, t)
        ma_part = np.dot(theta[:n_ma], out_resid[t - n_ma:t][::-1])
        out_resid[t] = w[t] - intercept[t] - ar_part - ma_part
