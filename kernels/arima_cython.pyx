# cython: language_level=3
r"""ARMA likelihood recursions: the Cython kernels.

Same structured recursions as :mod:`arima_numba` (O(m^2) prediction step
exploiting Harvey's companion form; P0 from the ARMA autocovariances), in
double precision; :func:`arima_kalman_loglike` runs a batch of models over
OpenMP threads, each model on one thread with its own buffers.
"""

include "_common.pxi"

from cython.parallel cimport parallel, prange
from libc.math cimport fabs, log, isnan


cdef inline double _theta0(const double[::1] theta, intp_t j) noexcept nogil:
    """theta_j with theta_0 = 1 (theta holds theta_1..theta_{m-1})."""
    return 1.0 if j == 0 else theta[j - 1]


cdef void _solve_in_place(double* matrix, double* rhs, intp_t size) noexcept nogil:
    """Solve matrix x = rhs (row-major, size x size), partial pivoting; x in rhs."""
    cdef intp_t col, row, k, pivot
    cdef double tmp, factor, total
    for col in range(size):
        pivot = col
        for row in range(col + 1, size):
            if fabs(matrix[row * size + col]) > fabs(matrix[pivot * size + col]):
                pivot = row
        if pivot != col:
            for k in range(size):
                tmp = matrix[col * size + k]
                matrix[col * size + k] = matrix[pivot * size + k]
                matrix[pivot * size + k] = tmp
            tmp = rhs[col]
            rhs[col] = rhs[pivot]
            rhs[pivot] = tmp
        for row in range(col + 1, size):
            factor = matrix[row * size + col] / matrix[col * size + col]
            if factor != 0.0:
                for k in range(col, size):
                    matrix[row * size + k] = matrix[row * size + k] - factor * matrix[col * size + k]
                rhs[row] = rhs[row] - factor * rhs[col]
    for col in range(size - 1, -1, -1):
        total = rhs[col]
        for k in range(col + 1, size):
            total = total - matrix[col * size + k] * rhs[k]
        rhs[col] = total / matrix[col * size + col]


cdef void _stationary_cov(const double[::1] phi, const double[::1] theta, double* out_cov,
                          double* work) noexcept nogil:
    """P0 (m x m, row-major) from the autocovariances; work holds 9 m^2 + 4 m + 2 doubles."""
    cdef intp_t m = phi.shape[0]
    cdef intp_t two_m = 2 * m
    cdef intp_t i, j, k, a, b
    cdef double value, total
    cdef double* psi = work
    cdef double* gamma = psi + m
    cdef double* system = gamma + (m + 1)
    cdef double* A = system + (m + 1) * (m + 1)
    cdef double* cov_u = A + m * two_m
    cdef double* left = cov_u + two_m * two_m
    for j in range(m):
        value = _theta0(theta, j)
        for i in range(1, min(j, m) + 1):
            value = value + phi[i - 1] * psi[j - i]
        psi[j] = value
    for k in range((m + 1) * (m + 1)):
        system[k] = 0.0
    for k in range(m + 1):
        system[k * (m + 1) + k] += 1.0
        for i in range(1, m + 1):
            system[k * (m + 1) + (k - i if k >= i else i - k)] -= phi[i - 1]
        total = 0.0
        for j in range(k, m):
            total = total + _theta0(theta, j) * psi[j - k]
        gamma[k] = total
    _solve_in_place(system, gamma, m + 1)
    for k in range(m * two_m):
        A[k] = 0.0
    A[0] = 1.0
    for i in range(1, m):
        for j in range(m - i):
            A[i * two_m + 1 + j] = phi[i + j]
            A[i * two_m + m + j] = _theta0(theta, i + j)
    for k in range(two_m * two_m):
        cov_u[k] = 0.0
    for a in range(m):
        for b in range(m):
            cov_u[a * two_m + b] = gamma[a - b if a >= b else b - a]
            if b >= a:
                cov_u[a * two_m + m + b] = psi[b - a]
                cov_u[(m + b) * two_m + a] = psi[b - a]
        cov_u[(m + a) * two_m + m + a] = 1.0
    for i in range(m):
        for j in range(two_m):
            total = 0.0
            for k in range(two_m):
                total = total + A[i * two_m + k] * cov_u[k * two_m + j]
            left[i * two_m + j] = total
    for i in range(m):
        for j in range(m):
            total = 0.0
            for k in range(two_m):
                total = total + left[i * two_m + k] * A[j * two_m + k]
            out_cov[i * m + j] = total


cdef void _filter(const double[::1] w, const double[::1] intercept, const double[::1] phi,
                  const double[::1] theta, const double[::1] a0, double* out_v, double* out_F,
                  double* state, double* cov, double* gain, double* work) noexcept nogil:
    """Structured Kalman filter; state / cov (row-major) hold the running a_t / P_t.

    Only the upper triangle of P is updated (it is symmetric); the lower one
    is filled in at the end. work holds _work_size(m) doubles: P0's work,
    then the selection vector R and the scaled gain K / F.
    """
    cdef intp_t m = phi.shape[0]
    cdef intp_t n = w.shape[0]
    cdef intp_t t, i, j
    cdef double v, F, next_value, r_i
    cdef double* selection = work + _p0_work_size(m)
    cdef double* scaled = selection + m
    _stationary_cov(phi, theta, cov, work)
    for i in range(m):
        selection[i] = _theta0(theta, i)
        state[i] = a0[i]
    for t in range(n):
        v = w[t] - state[0]
        F = cov[0]
        out_v[t] = v
        out_F[t] = F
        for i in range(m):
            gain[i] = cov[i]
            scaled[i] = gain[i] / F
        for i in range(m):
            next_value = 0.0
            if i + 1 < m:
                next_value = state[i + 1] + gain[i + 1] * (v / F)
            state[i] = phi[i] * w[t] + next_value
        state[0] = state[0] + intercept[t]
        for i in range(m - 1):
            r_i = selection[i]
            for j in range(i, m - 1):
                cov[i * m + j] = r_i * selection[j] + (cov[(i + 1) * m + j + 1]
                                                       - gain[i + 1] * scaled[j + 1])
            cov[i * m + m - 1] = r_i * selection[m - 1]
        cov[m * m - 1] = selection[m - 1] * selection[m - 1]
    for i in range(m):
        for j in range(i):
            cov[i * m + j] = cov[j * m + i]


cdef inline intp_t _p0_work_size(intp_t m) noexcept nogil:
    return 9 * m * m + 4 * m + 2


cdef inline intp_t _work_size(intp_t m) noexcept nogil:
    """Doubles of _filter's work: P0's work, then two m-vectors."""
    return _p0_work_size(m) + 2 * m


def arima_kalman_filter(const double[::1] w, const double[::1] intercept,           # IN
                        const double[::1] phi, const double[::1] theta,             # IN
                        const double[::1] a0,                                       # IN
                        double[::1] out_v, double[::1] out_F,                       # OUT
                        double[::1] out_state, double[:, ::1] out_cov,              # OUT
                        int n_threads):
    """Kalman filter of one ARMA model (see :mod:`arima_numpy`)."""
    cdef intp_t m = phi.shape[0]
    cdef double* gain = <double*> malloc(m * sizeof(double))
    cdef double* work = <double*> malloc(_work_size(m) * sizeof(double))
    with nogil:
        _filter(w, intercept, phi, theta, a0, &out_v[0], &out_F[0], &out_state[0],
                &out_cov[0, 0], gain, work)
    free(gain)
    free(work)


def arima_kalman_loglike(const double[:, ::1] w, const double[:, ::1] intercept,    # IN
                         const double[:, ::1] phi, const double[:, ::1] theta,      # IN
                         const double[:, ::1] a0,                                   # IN
                         double[::1] out_sum_log_F, double[::1] out_sum_squares,    # OUT
                         int n_threads):
    """Likelihood pieces of a batch of ARMA models, in parallel (see :mod:`arima_numpy`)."""
    cdef intp_t n = w.shape[1]
    cdef intp_t n_models = phi.shape[0]
    cdef intp_t m = phi.shape[1]
    cdef intp_t b, t
    cdef double sum_log_F, sum_squares
    cdef double* buffer
    cdef double* v
    cdef double* F
    with nogil, parallel(num_threads=n_threads):
        # Thread-local buffers, allocated once per thread.
        buffer = <double*> malloc((2 * n + m + m * m + m + _work_size(m)) * sizeof(double))
        v = buffer
        F = v + n
        for b in prange(n_models, schedule="static"):
            _filter(w[b], intercept[b], phi[b], theta[b], a0[b], v, F, F + n, F + n + m,
                    F + n + m + m * m, F + n + 2 * m + m * m)
            sum_log_F = 0.0
            sum_squares = 0.0
            for t in range(n):
                sum_log_F = sum_log_F + log(F[t])
                sum_squares = sum_squares + v[t] * v[t] / F[t]
            out_sum_log_F[b] = sum_log_F
            out_sum_squares[b] = sum_squares
        free(buffer)


cdef void _apply_transition(const double* x, const double[::1] phi, const double[::1] delta,
                            double* out) noexcept nogil:
    """out = T x for the augmented state (alpha, y_{t-1}, ..., y_{t-k}); O(m + k)."""
    cdef intp_t m = phi.shape[0]
    cdef intp_t k = delta.shape[0]
    cdef intp_t i, j
    cdef double x0 = x[0]
    cdef double value
    for i in range(m - 1):
        out[i] = phi[i] * x0 + x[i + 1]
    out[m - 1] = phi[m - 1] * x0
    if k > 0:
        value = x0
        for j in range(k):
            value = value - delta[j] * x[m + j]
        out[m] = value
        for j in range(1, k):
            out[m + j] = x[m + j - 1]


cdef inline intp_t _missing_work_size(intp_t m, intp_t k) noexcept nogil:
    """Doubles of _filter_missing's work: P0 work, T P, two vectors, P Z'."""
    return _work_size(m) + m * m + (m + k) * (m + k) + 3 * (m + k)


cdef void _filter_missing(const double[::1] y, const double[::1] lags0, const double[::1] delta,
                          const double[::1] intercept, const double[::1] phi,
                          const double[::1] theta, const double[::1] a0, double* out_pred,
                          double* out_F, double* state, double* cov,
                          double* work) noexcept nogil:
    """Augmented-state filter, NaN skipped; state / cov (row-major) hold a_t / P_t."""
    cdef intp_t m = phi.shape[0]
    cdef intp_t k = delta.shape[0]
    cdef intp_t dim = m + k
    cdef intp_t n = y.shape[0]
    cdef intp_t t, i, j, c, r
    cdef double prediction, value, F, scaled, r_i
    cdef double* p0 = work + _work_size(m)
    cdef double* moved_cov = p0 + m * m
    cdef double* column = moved_cov + dim * dim
    cdef double* moved = column + dim
    cdef double* pz = moved + dim
    _stationary_cov(phi, theta, p0, work)
    for i in range(dim):
        state[i] = a0[i] if i < m else lags0[i - m]
        for j in range(dim):
            cov[i * dim + j] = p0[i * m + j] if (i < m and j < m) else 0.0
    for t in range(n):
        prediction = state[0]
        for j in range(k):
            prediction = prediction - delta[j] * state[m + j]
        for i in range(dim):
            value = cov[i * dim]
            for j in range(k):
                value = value - delta[j] * cov[i * dim + m + j]
            pz[i] = value
        F = pz[0]
        for j in range(k):
            F = F - delta[j] * pz[m + j]
        out_pred[t] = prediction
        out_F[t] = F
        if not isnan(y[t]):
            scaled = (y[t] - prediction) / F
            for i in range(dim):
                state[i] = state[i] + pz[i] * scaled
            for i in range(dim):
                for j in range(dim):
                    cov[i * dim + j] = cov[i * dim + j] - pz[i] * pz[j] / F
        _apply_transition(state, phi, delta, moved)
        for i in range(dim):
            state[i] = moved[i]
        state[0] = state[0] + intercept[t]
        for c in range(dim):
            for i in range(dim):
                column[i] = cov[i * dim + c]
            _apply_transition(column, phi, delta, moved)
            for i in range(dim):
                moved_cov[i * dim + c] = moved[i]
        for r in range(dim):
            _apply_transition(moved_cov + r * dim, phi, delta, moved)
            for i in range(dim):
                cov[i * dim + r] = moved[i]
        for i in range(m):
            r_i = _theta0(theta, i)
            for j in range(m):
                cov[i * dim + j] = cov[i * dim + j] + r_i * _theta0(theta, j)


def arima_kalman_filter_missing(const double[::1] y, const double[::1] lags0,        # IN
                                const double[::1] delta, const double[::1] intercept,  # IN
                                const double[::1] phi, const double[::1] theta,        # IN
                                const double[::1] a0,                                  # IN
                                double[::1] out_pred, double[::1] out_F,               # OUT
                                double[::1] out_state, double[:, ::1] out_cov,         # OUT
                                int n_threads):
    """Augmented-state Kalman filter, NaN skipped (see :mod:`arima_numpy`)."""
    cdef intp_t m = phi.shape[0]
    cdef intp_t k = delta.shape[0]
    cdef double* work = <double*> malloc(_missing_work_size(m, k) * sizeof(double))
    with nogil:
        _filter_missing(y, lags0, delta, intercept, phi, theta, a0, &out_pred[0], &out_F[0],
                        &out_state[0], &out_cov[0, 0], work)
    free(work)


def arima_kalman_loglike_missing(const double[:, ::1] y, const double[:, ::1] lags0,  # IN
                                 const double[::1] delta,                            # IN
                                 const double[:, ::1] intercept,                     # IN
                                 const double[:, ::1] phi, const double[:, ::1] theta,  # IN
                                 const double[:, ::1] a0,                            # IN
                                 double[::1] out_sum_log_F,                          # OUT
                                 double[::1] out_sum_squares,                        # OUT
                                 int n_threads):
    """Likelihood pieces of a batch of models on series with NaN (see :mod:`arima_numpy`)."""
    cdef intp_t n = y.shape[1]
    cdef intp_t n_models = phi.shape[0]
    cdef intp_t m = phi.shape[1]
    cdef intp_t k = delta.shape[0]
    cdef intp_t dim = m + k
    cdef intp_t b, t
    cdef double sum_log_F, sum_squares, v
    cdef double* buffer
    cdef double* pred
    cdef double* F
    with nogil, parallel(num_threads=n_threads):
        buffer = <double*> malloc((2 * n + dim + dim * dim + _missing_work_size(m, k))
                                  * sizeof(double))
        pred = buffer
        F = pred + n
        for b in prange(n_models, schedule="static"):
            _filter_missing(y[b], lags0[b], delta, intercept[b], phi[b], theta[b], a0[b], pred,
                            F, F + n, F + n + dim, F + n + dim + dim * dim)
            sum_log_F = 0.0
            sum_squares = 0.0
            for t in range(n):
                if not isnan(y[b, t]):
                    v = y[b, t] - pred[t]
                    sum_log_F = sum_log_F + log(F[t])
                    sum_squares = sum_squares + v * v / F[t]
            out_sum_log_F[b] = sum_log_F
            out_sum_squares[b] = sum_squares
        free(buffer)


def arima_css_residuals(const double[::1] w, const double[::1] intercept,           # IN
                        const double[::1] phi, const double[::1] theta,             # IN
                        double[::1] out_resid,                                      # OUT
                        int n_threads):
    """Conditional-sum-of-squares residuals (see :mod:`arima_numpy`)."""
    cdef intp_t n = w.shape[0]
    cdef intp_t p = phi.shape[0]
    cdef intp_t q = theta.shape[0]
    cdef intp_t t, i, j
    cdef double value
    with nogil:
        for t in range(min(p, n)):
            out_resid[t] = 0.0
        for t in range(p, n):
            value = w[t] - intercept[t]
            for i in range(p):
                value = value - phi[i] * w[t - 1 - i]
            for j in range(min(q, t)):
                value = value - theta[j] * out_resid[t - 1 - j]
            out_resid[t] = value
