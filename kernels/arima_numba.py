r"""ARMA likelihood recursions: the Numba kernels.

Same recursions as :mod:`arima_numpy`, with two savings that make each step
O(m^2) instead of O(m^3):

- Harvey's T is a companion-like matrix and the first state is observed
  without noise, so the filtered covariance has a zero first row and column
  and the prediction step is a shift:
  :math:`P_{t+1}[i, j] = P_t[i+1, j+1] - P_t[i+1, 0] P_t[0, j+1] / F_t + R_i R_j`
  (with :math:`P[m, \cdot] = 0`), and
  :math:`a_{t+1}[i] = \phi_{i+1} w_t + a_{t|t}[i+1]`.
- P0 is built from the ARMA autocovariances instead of a Lyapunov solve:
  writing :math:`u_t = (w_t, \dots, w_{t-m+1}, \varepsilon_t, \dots, \varepsilon_{t-m+1})`,
  the state is :math:`\alpha_t = A u_t` with
  :math:`\alpha_{1} = w_t` and
  :math:`\alpha_{i+1} = \sum_{j=0}^{m-1-i} \phi_{i+1+j} w_{t-1-j} + \theta_{i+j} \varepsilon_{t-j}`,
  so :math:`P_0 = A \operatorname{Cov}(u_t) A^\top`, where
  :math:`\operatorname{Cov}(w_{t-a}, w_{t-b}) = \gamma_{|a-b|}` (the
  autocovariances, from an (m+1)-equation linear system) and
  :math:`\operatorname{Cov}(w_{t-a}, \varepsilon_{t-b}) = \psi_{b-a}` (the MA(infinity)
  weights).

:func:`arima_kalman_loglike` runs a batch of models in parallel (prange), one
per thread; each model's arithmetic is the same whatever the thread count.
"""

import numba
import numpy as np

from ._threads import numba_threads


@numba.njit(cache=True, nogil=True)
def _solve_in_place(matrix, rhs):
    """Solve matrix x = rhs by Gaussian elimination with partial pivoting; x in rhs."""
    size = rhs.shape[0]
    for col in range(size):
        pivot = col
        for row in range(col + 1, size):
            if abs(matrix[row, col]) > abs(matrix[pivot, col]):
                pivot = row
        if pivot != col:
            for k in range(size):
                tmp = matrix[col, k]
                matrix[col, k] = matrix[pivot, k]
                matrix[pivot, k] = tmp
            tmp = rhs[col]
            rhs[col] = rhs[pivot]
            rhs[pivot] = tmp
        for row in range(col + 1, size):
            factor = matrix[row, col] / matrix[col, col]
            if factor != 0.0:
                for k in range(col, size):
                    matrix[row, k] -= factor * matrix[col, k]
                rhs[row] -= factor * rhs[col]
    for col in range(size - 1, -1, -1):
        total = rhs[col]
        for k in range(col + 1, size):
            total -= matrix[col, k] * rhs[k]
        rhs[col] = total / matrix[col, col]


@numba.njit(cache=True, nogil=True)
def _stationary_cov(phi, theta, out_cov):
    """P0 (m x m, units of sigma^2) from the autocovariances (see module docstring)."""
    m = phi.shape[0]
    # MA(infinity) weights psi_0..psi_{m-1}; theta_0 = 1.
    psi = np.zeros(m)
    for j in range(m):
        value = 1.0 if j == 0 else theta[j - 1]
        for i in range(1, min(j, m) + 1):
            value += phi[i - 1] * psi[j - i]
        psi[j] = value
    # gamma_k - sum_i phi_i gamma_|k-i| = sum_{j>=k} theta_j psi_{j-k}, k = 0..m.
    system = np.zeros((m + 1, m + 1))
    gamma = np.zeros(m + 1)
    for k in range(m + 1):
        system[k, k] += 1.0
        for i in range(1, m + 1):
            system[k, abs(k - i)] -= phi[i - 1]
        total = 0.0
        for j in range(k, m):
            total += (1.0 if j == 0 else theta[j - 1]) * psi[j - k]
        gamma[k] = total
    _solve_in_place(system, gamma)
    # A (m x 2m): state = A u, u = (w_t..w_{t-m+1}, eps_t..eps_{t-m+1}).
    A = np.zeros((m, 2 * m))
    A[0, 0] = 1.0
    for i in range(1, m):
        for j in range(m - i):
            A[i, 1 + j] = phi[i + j]
            A[i, m + j] = 1.0 if i + j == 0 else theta[i + j - 1]
    cov_u = np.zeros((2 * m, 2 * m))
    for a in range(m):
        for b in range(m):
            cov_u[a, b] = gamma[abs(a - b)]
            if b >= a:
                cov_u[a, m + b] = psi[b - a]
                cov_u[m + b, a] = psi[b - a]
        cov_u[m + a, m + a] = 1.0
    left = A @ cov_u
    for i in range(m):
        for j in range(m):
            total = 0.0
            for k in range(2 * m):
                total += left[i, k] * A[j, k]
            out_cov[i, j] = total


@numba.njit(cache=True, nogil=True)
def _filter(w, intercept, phi, theta, a0, out_v, out_F, out_state, out_cov, gain):
    """Structured Kalman filter; out_state / out_cov hold the running a_t / P_t.

    Only the upper triangle of P is updated (it is symmetric); the lower one
    is filled in at the end.
    """
    m = phi.shape[0]
    n = w.shape[0]
    _stationary_cov(phi, theta, out_cov)
    selection = np.empty(m)
    selection[0] = 1.0
    for i in range(1, m):
        selection[i] = theta[i - 1]
    scaled = np.empty(m)
    for i in range(m):
        out_state[i] = a0[i]
    for t in range(n):
        v = w[t] - out_state[0]
        F = out_cov[0, 0]
        out_v[t] = v
        out_F[t] = F
        for i in range(m):
            gain[i] = out_cov[0, i]
            scaled[i] = gain[i] / F
        # a_{t+1}[i] = phi_i * w_t + a_{t|t}[i+1]; a_{t|t}[0] = w_t exactly.
        for i in range(m):
            next_value = 0.0
            if i + 1 < m:
                next_value = out_state[i + 1] + gain[i + 1] * (v / F)
            out_state[i] = phi[i] * w[t] + next_value
        out_state[0] += intercept[t]
        # P_{t+1}[i, j] = P[i+1, j+1] - K[i+1] K[j+1] / F + R_i R_j (in place, ascending, j >= i).
        for i in range(m - 1):
            r_i = selection[i]
            for j in range(i, m - 1):
                out_cov[i, j] = r_i * selection[j] + (out_cov[i + 1, j + 1]
                                                      - gain[i + 1] * scaled[j + 1])
            out_cov[i, m - 1] = r_i * selection[m - 1]
        out_cov[m - 1, m - 1] = selection[m - 1] * selection[m - 1]
    for i in range(m):
        for j in range(i):
            out_cov[i, j] = out_cov[j, i]


@numba.njit(cache=True, nogil=True)
def _kalman_filter(w, intercept, phi, theta, a0, out_v, out_F, out_state, out_cov):
    gain = np.empty(phi.shape[0])
    _filter(w, intercept, phi, theta, a0, out_v, out_F, out_state, out_cov, gain)


def _kalman_loglike_body(w, intercept, phi, theta, a0, out_sum_log_F, out_sum_squares):
    n = w.shape[1]
    n_models, m = phi.shape
    for b in numba.prange(n_models):
        v = np.empty(n)
        F = np.empty(n)
        state = np.empty(m)
        cov = np.empty((m, m))
        gain = np.empty(m)
        _filter(w[b], intercept[b], phi[b], theta[b], a0[b], v, F, state, cov, gain)
        sum_log_F = 0.0
        sum_squares = 0.0
        for t in range(n):
            sum_log_F += np.log(F[t])
            sum_squares += v[t] * v[t] / F[t]
        out_sum_log_F[b] = sum_log_F
        out_sum_squares[b] = sum_squares


# One loop body compiled twice (as umap's layouts): the serial twin skips setting
# Numba's thread count, which costs more than a small batch on one thread.
_kalman_loglike = numba.njit(parallel=True, cache=True, nogil=True)(_kalman_loglike_body)
_kalman_loglike_serial = numba.njit(cache=True, nogil=True)(_kalman_loglike_body)


@numba.njit(cache=True, nogil=True)
def _apply_transition(x, phi, delta, out):
    """out = T x for the augmented state (alpha, y_{t-1}, ..., y_{t-k}); O(m + k)."""
    m = phi.shape[0]
    k = delta.shape[0]
    x0 = x[0]
    for i in range(m - 1):
        out[i] = phi[i] * x0 + x[i + 1]
    out[m - 1] = phi[m - 1] * x0
    if k > 0:
        value = x0
        for j in range(k):
            value -= delta[j] * x[m + j]
        out[m] = value
        for j in range(1, k):
            out[m + j] = x[m + j - 1]


@numba.njit(cache=True, nogil=True)
def _filter_missing(y, lags0, delta, intercept, phi, theta, a0, out_pred, out_F, state, cov,
                    work_cov, column, moved, pz):
    """Augmented-state filter, NaN skipped; state / cov hold the running a_t / P_t.

    The prediction step P <- T P T' + R R' is two passes of the O(m + k)
    transition: M = T P column by column, then T M' (P is symmetric).
    """
    m = phi.shape[0]
    k = delta.shape[0]
    dim = m + k
    n = y.shape[0]
    _stationary_cov(phi, theta, work_cov)
    for i in range(dim):
        state[i] = a0[i] if i < m else lags0[i - m]
        for j in range(dim):
            cov[i, j] = work_cov[i, j] if (i < m and j < m) else 0.0
    for t in range(n):
        # PZ = P Z', prediction Z a, F = Z P Z'.
        prediction = state[0]
        for j in range(k):
            prediction -= delta[j] * state[m + j]
        for i in range(dim):
            value = cov[i, 0]
            for j in range(k):
                value -= delta[j] * cov[i, m + j]
            pz[i] = value
        F = pz[0]
        for j in range(k):
            F -= delta[j] * pz[m + j]
        out_pred[t] = prediction
        out_F[t] = F
        if not np.isnan(y[t]):
            scaled = (y[t] - prediction) / F
            for i in range(dim):
                state[i] += pz[i] * scaled
            for i in range(dim):
                for j in range(dim):
                    cov[i, j] -= pz[i] * pz[j] / F
        _apply_transition(state, phi, delta, moved)
        for i in range(dim):
            state[i] = moved[i]
        state[0] += intercept[t]
        # work = T P (column by column), then P = T work' + R R'.
        for c in range(dim):
            for i in range(dim):
                column[i] = cov[i, c]
            _apply_transition(column, phi, delta, moved)
            for i in range(dim):
                work_cov[i, c] = moved[i]
        for r in range(dim):
            for i in range(dim):
                column[i] = work_cov[r, i]
            _apply_transition(column, phi, delta, moved)
            for i in range(dim):
                cov[i, r] = moved[i]
        for i in range(m):
            r_i = 1.0 if i == 0 else theta[i - 1]
            for j in range(m):
                cov[i, j] += r_i * (1.0 if j == 0 else theta[j - 1])


@numba.njit(cache=True, nogil=True)
def _kalman_filter_missing(y, lags0, delta, intercept, phi, theta, a0, out_pred, out_F,
                           out_state, out_cov):
    dim = out_state.shape[0]
    _filter_missing(y, lags0, delta, intercept, phi, theta, a0, out_pred, out_F, out_state,
                    out_cov, np.empty((dim, dim)), np.empty(dim), np.empty(dim), np.empty(dim))


def _kalman_loglike_missing_body(y, lags0, delta, intercept, phi, theta, a0, out_sum_log_F,
                                 out_sum_squares):
    n = y.shape[1]
    n_models, m = phi.shape
    dim = m + delta.shape[0]
    for b in numba.prange(n_models):
        pred = np.empty(n)
        F = np.empty(n)
        _filter_missing(y[b], lags0[b], delta, intercept[b], phi[b], theta[b], a0[b], pred, F,
                        np.empty(dim), np.empty((dim, dim)), np.empty((dim, dim)),
                        np.empty(dim), np.empty(dim), np.empty(dim))
        sum_log_F = 0.0
        sum_squares = 0.0
        for t in range(n):
            if not np.isnan(y[b, t]):
                v = y[b, t] - pred[t]
                sum_log_F += np.log(F[t])
                sum_squares += v * v / F[t]
        out_sum_log_F[b] = sum_log_F
        out_sum_squares[b] = sum_squares


_kalman_loglike_missing = numba.njit(parallel=True, cache=True, nogil=True)(
    _kalman_loglike_missing_body)
_kalman_loglike_missing_serial = numba.njit(cache=True, nogil=True)(_kalman_loglike_missing_body)


@numba.njit(cache=True, nogil=True)
def _css_residuals(w, intercept, phi, theta, out_resid):
    n = w.shape[0]
    p = phi.shape[0]
    q = theta.shape[0]
    for t in range(min(p, n)):
        out_resid[t] = 0.0
    for t in range(p, n):
        value = w[t] - intercept[t]
        for i in range(p):
            value -= phi[i] * w[t - 1 - i]
        for j in range(min(q, t)):
            value -= theta[j] * out_resid[t - 1 - j]
        out_resid[t] = value


def arima_kalman_filter(w, intercept, phi, theta, a0, out_v, out_F, out_state, out_cov,
                        n_threads):
    """Kalman filter of one ARMA model (see :mod:`arima_numpy`)."""
    _kalman_filter(w, intercept, phi, theta, a0, out_v, out_F, out_state, out_cov)


def arima_kalman_loglike(w, intercept, phi, theta, a0, out_sum_log_F, out_sum_squares,
                         n_threads):
    """Likelihood pieces of a batch of ARMA models, in parallel (see :mod:`arima_numpy`)."""
    if n_threads == 1:
        _kalman_loglike_serial(w, intercept, phi, theta, a0, out_sum_log_F, out_sum_squares)
        return
    with numba_threads(n_threads):
        _kalman_loglike(w, intercept, phi, theta, a0, out_sum_log_F, out_sum_squares)


def arima_css_residuals(w, intercept, phi, theta, out_resid, n_threads):
    """Conditional-sum-of-squares residuals (see :mod:`arima_numpy`)."""
    _css_residuals(w, intercept, phi, theta, out_resid)


def arima_kalman_filter_missing(y, lags0, delta, intercept, phi, theta, a0, out_pred, out_F,
                                out_state, out_cov, n_threads):
    """Augmented-state Kalman filter, NaN skipped (see :mod:`arima_numpy`)."""
    _kalman_filter_missing(y, lags0, delta, intercept, phi, theta, a0, out_pred, out_F,
                           out_state, out_cov)


def arima_kalman_loglike_missing(y, lags0, delta, intercept, phi, theta, a0, out_sum_log_F,
                                 out_sum_squares, n_threads):
    """Likelihood pieces of a batch of models on series with NaN (see :mod:`arima_numpy`)."""
    if n_threads == 1:
        _kalman_loglike_missing_serial(y, lags0, delta, intercept, phi, theta, a0,
                                       out_sum_log_F, out_sum_squares)
        return
    with numba_threads(n_threads):
        _kalman_loglike_missing(y, lags0, delta, intercept, phi, theta, a0, out_sum_log_F,
                                out_sum_squares)
