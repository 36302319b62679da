# cython: language_level=3
r"""Naive Bayes joint log-likelihoods and their normalisation: the Cython kernels.

Same loops as :mod:`naive_bayes_numba` (see :mod:`naive_bayes_numpy` for the
formulas): OpenMP threads over blocks of rows, float64 accumulators, sums over
features in feature order. The Gaussian kernel centres each block of rows
into thread-local buffers and calls ``dgemm`` twice (the expanded form), then
recomputes in the direct form every row whose rounding-error bound exceeds
the tolerance; the dense discrete kernel copies
(and binarises if asked) each block of rows into a thread-local float64 buffer
and calls BLAS ``dgemm`` from ``scipy.linalg.cython_blas`` (float64 ``X``
without binarisation goes to ``dgemm`` directly, no copy).
"""

include "_common.pxi"

from cython.parallel cimport parallel, prange
from libc.math cimport exp, log, log1p, isnan, isfinite
from scipy.linalg.cython_blas cimport dgemm

from ._threads import blas_single_threaded
from .naive_bayes_numpy import GAUSSIAN_TOL_ABS, GAUSSIAN_TOL_REL, gaussian_expanded_terms

DEF ROW_BLOCK = 256

ctypedef fused index_t:
    int
    long long


cdef inline void gemm_block(int n_rows, int n_features, int n_classes, const double* values,
                            const double* weights_t, double* out) noexcept nogil:
    """out (n_rows x n_classes) = values (n_rows x n_features) @ weights_t, all row-major.

    Column-major view: out^T = weights_t^T values^T, i.e. dgemm("N", "N").
    """
    cdef char no_trans = b"N"
    cdef double one = 1.0
    cdef double zero = 0.0
    dgemm(&no_trans, &no_trans, &n_classes, &n_rows, &n_features, &one,
          <double*> weights_t, &n_classes, <double*> values, &n_features, &zero, out, &n_classes)


cdef inline void gaussian_row_direct(const floating* x, intp_t n_features, intp_t n_classes,
                                     const double* mean_t, const double* inv_var_t,
                                     const double* class_const, double* row) noexcept nogil:
    """One row in the direct form: accumulators per class, features in order."""
    cdef intp_t j, c
    cdef double value, diff
    for c in range(n_classes):
        row[c] = 0.0
    for j in range(n_features):
        value = <double> x[j]
        for c in range(n_classes):
            diff = value - mean_t[j * n_classes + c]
            row[c] = row[c] + diff * diff * inv_var_t[j * n_classes + c]
    for c in range(n_classes):
        row[c] = -0.5 * row[c] + class_const[c]


def _gaussian(const floating[:, ::1] X,                     # IN
              const double[:, ::1] mean_t,                  # IN
              const double[:, ::1] inv_var_t,               # IN
              const double[::1] class_const,                # IN
              const double[::1] shift,                      # IN
              const double[:, ::1] weighted_mean_t,         # IN
              const double[::1] centred_norm,               # IN
              double error_factor, double tol_abs, double tol_rel,  # IN
              double[:, ::1] out,                           # OUT
              int n_threads):
    cdef intp_t n_samples = X.shape[0]
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_classes = class_const.shape[0]
    cdef intp_t block_rows = max(8, min(ROW_BLOCK, 32768 // max(n_features, 1)))
    cdef intp_t n_blocks = (n_samples + block_rows - 1) // block_rows
    cdef intp_t block, i, j, c, start, stop, n_rows
    cdef double value, row_max, bound
    cdef bint exact_enough
    cdef double* centred = NULL
    cdef double* squares = NULL
    cdef double* quadratic = NULL
    cdef double* row

    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        # Thread-local buffers: centred rows, their squares, and A = squares @ inv_var_t.
        centred = <double*> malloc(block_rows * n_features * sizeof(double))
        squares = <double*> malloc(block_rows * n_features * sizeof(double))
        quadratic = <double*> malloc(block_rows * n_classes * sizeof(double))
        for block in prange(n_blocks, schedule="static"):
            start = block * block_rows
            stop = min(start + block_rows, n_samples)
            n_rows = stop - start
            for i in range(n_rows):
                for j in range(n_features):
                    value = <double> X[start + i, j] - shift[j]
                    centred[i * n_features + j] = value
                    squares[i * n_features + j] = value * value
            gemm_block(<int> n_rows, <int> n_features, <int> n_classes, squares,
                       &inv_var_t[0, 0], quadratic)
            gemm_block(<int> n_rows, <int> n_features, <int> n_classes, centred,
                       &weighted_mean_t[0, 0], &out[start, 0])
            for i in range(n_rows):
                row = &out[start + i, 0]
                row_max = -INFINITY
                for c in range(n_classes):
                    row[c] = -0.5 * (quadratic[i * n_classes + c] + row[c] + centred_norm[c]) \
                        + class_const[c]
                    if row[c] > row_max:
                        row_max = row[c]
                exact_enough = True
                for c in range(n_classes):
                    bound = error_factor * (quadratic[i * n_classes + c] + centred_norm[c])
                    if not bound <= tol_abs + tol_rel * (row_max - row[c]):
                        exact_enough = False
                if not exact_enough:
                    gaussian_row_direct(&X[start + i, 0], n_features, n_classes, &mean_t[0, 0],
                                        &inv_var_t[0, 0], &class_const[0], row)
        free(centred)
        free(squares)
        free(quadratic)


def gaussian_joint_log_likelihood(X, mean_t, inv_var_t, class_const, out, n_threads):
    """Gaussian joint log-likelihood: expanded form by GEMMs, rows past the error bound
    recomputed in the direct form (see :mod:`naive_bayes_numpy`)."""
    shift, weighted_mean_t, centred_norm, error_factor = gaussian_expanded_terms(mean_t, inv_var_t)
    with blas_single_threaded():
        _gaussian(X, mean_t, inv_var_t, class_const, shift, weighted_mean_t, centred_norm,
                  error_factor, GAUSSIAN_TOL_ABS, GAUSSIAN_TOL_REL, out, n_threads)


def _discrete_dense(const floating[:, ::1] X,                   # IN
                    const double[:, ::1] weights_t,             # IN
                    const double[::1] class_const,              # IN
                    double binarize_threshold,                  # IN
                    double[:, ::1] out,                         # OUT
                    int n_threads):
    cdef intp_t n_samples = X.shape[0]
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_classes = class_const.shape[0]
    cdef intp_t n_blocks = (n_samples + ROW_BLOCK - 1) // ROW_BLOCK
    cdef intp_t block, i, j, c, start, stop
    cdef bint binarize = not isnan(binarize_threshold)
    cdef bint direct = (floating is double) and not binarize
    cdef double x
    cdef double* values = NULL
    cdef const double* source

    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        if not direct:
            values = <double*> malloc(ROW_BLOCK * n_features * sizeof(double))
        for block in prange(n_blocks, schedule="static"):
            start = block * ROW_BLOCK
            stop = min(start + ROW_BLOCK, n_samples)
            if direct:
                source = <const double*> &X[start, 0]
            else:
                for i in range(start, stop):
                    for j in range(n_features):
                        x = <double> X[i, j]
                        if binarize:
                            x = 1.0 if x > binarize_threshold else 0.0
                        values[(i - start) * n_features + j] = x
                source = values
            gemm_block(<int> (stop - start), <int> n_features, <int> n_classes, source,
                       &weights_t[0, 0], &out[start, 0])
            for i in range(start, stop):
                for c in range(n_classes):
                    out[i, c] = out[i, c] + class_const[c]
        if not direct:
            free(values)


def discrete_joint_log_likelihood_dense(X, weights_t, class_const, binarize_threshold, out, n_threads):
    """``v(X) @ weights_t + class_const`` in row blocks (see :mod:`naive_bayes_numpy`)."""
    with blas_single_threaded():
        _discrete_dense(X, weights_t, class_const, float(binarize_threshold), out, n_threads)


def _discrete_csr(const floating[::1] data,                     # IN
                  const index_t[::1] indices,                   # IN
                  const index_t[::1] indptr,                    # IN
                  const double[:, ::1] weights_t,               # IN
                  const double[::1] class_const,                # IN
                  double binarize_threshold,                    # IN
                  double[:, ::1] out,                           # OUT
                  int n_threads):
    cdef intp_t n_samples = indptr.shape[0] - 1
    cdef intp_t n_classes = class_const.shape[0]
    cdef intp_t n_blocks = (n_samples + ROW_BLOCK - 1) // ROW_BLOCK
    cdef intp_t block, i, k, c, start, stop
    cdef bint binarize = not isnan(binarize_threshold)
    cdef double value
    cdef double* row
    cdef const double* weights_row

    with nogil:
        for block in prange(n_blocks, num_threads=n_threads, schedule="static"):
            start = block * ROW_BLOCK
            stop = min(start + ROW_BLOCK, n_samples)
            for i in range(start, stop):
                row = &out[i, 0]
                for c in range(n_classes):
                    row[c] = 0.0
                for k in range(indptr[i], indptr[i + 1]):
                    value = <double> data[k]
                    if binarize:
                        value = 1.0 if value > binarize_threshold else 0.0
                    weights_row = &weights_t[indices[k], 0]
                    for c in range(n_classes):
                        row[c] = row[c] + value * weights_row[c]
                for c in range(n_classes):
                    row[c] = row[c] + class_const[c]


def discrete_joint_log_likelihood_csr(data, indices, indptr, weights_t, class_const,
                                      binarize_threshold, out, n_threads):
    """Linear joint log-likelihood over the stored entries of a CSR matrix."""
    _discrete_csr(data, indices, indptr, weights_t, class_const, float(binarize_threshold),
                  out, n_threads)


def categorical_joint_log_likelihood(const intp_t[:, ::1] X,                 # IN
                                     const intp_t[::1] offsets,              # IN
                                     const double[:, ::1] log_prob,          # IN
                                     const double[::1] class_const,          # IN
                                     double[:, ::1] out,                     # OUT
                                     int n_threads):
    """Categorical joint log-likelihood (see :mod:`naive_bayes_numpy`)."""
    cdef intp_t n_samples = X.shape[0]
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_classes = class_const.shape[0]
    cdef intp_t n_blocks = (n_samples + ROW_BLOCK - 1) // ROW_BLOCK
    cdef intp_t block, i, j, c, start, stop
    cdef double* row
    cdef const double* table_row

    with nogil:
        for block in prange(n_blocks, num_threads=n_threads, schedule="static"):
            start = block * ROW_BLOCK
            stop = min(start + ROW_BLOCK, n_samples)
            for i in range(start, stop):
                row = &out[i, 0]
                for c in range(n_classes):
                    row[c] = 0.0
                for j in range(n_features):
                    table_row = &log_prob[offsets[j] + X[i, j], 0]
                    for c in range(n_classes):
                        row[c] = row[c] + table_row[c]
                for c in range(n_classes):
                    row[c] = row[c] + class_const[c]


def nb_normalize(const double[:, ::1] jll,                  # IN
                 bint exponentiate,                         # IN
                 double[:, ::1] out,                        # OUT (may be jll)
                 int n_threads):
    """Row-wise log-sum-exp normalisation (see :mod:`naive_bayes_numpy`)."""
    cdef intp_t n_samples = jll.shape[0]
    cdef intp_t n_classes = jll.shape[1]
    cdef intp_t n_blocks = (n_samples + ROW_BLOCK - 1) // ROW_BLOCK
    cdef intp_t block, i, c, start, stop, first_max
    cdef double row_max, rest, total, log_norm, value, term, scale

    with nogil:
        for block in prange(n_blocks, num_threads=n_threads, schedule="static"):
            start = block * ROW_BLOCK
            stop = min(start + ROW_BLOCK, n_samples)
            for i in range(start, stop):
                first_max = 0
                row_max = jll[i, 0]
                for c in range(1, n_classes):
                    if jll[i, c] > row_max:
                        row_max = jll[i, c]
                        first_max = c
                if isfinite(row_max):
                    # exp(jll_c - max), kept in out when probabilities are asked for.
                    rest = 0.0
                    for c in range(n_classes):
                        if c == first_max:
                            term = 1.0
                        else:
                            term = exp(jll[i, c] - row_max)
                            rest = rest + term
                        if exponentiate:
                            out[i, c] = term
                    if exponentiate:
                        scale = 1.0 / (1.0 + rest)
                        for c in range(n_classes):
                            out[i, c] = out[i, c] * scale
                    else:
                        log_norm = row_max + log1p(rest)
                        for c in range(n_classes):
                            out[i, c] = jll[i, c] - log_norm
                else:
                    total = 0.0
                    for c in range(n_classes):
                        total = total + exp(jll[i, c])
                    log_norm = log(total) if total > 0 else -INFINITY
                    for c in range(n_classes):
                        value = jll[i, c] - log_norm
                        out[i, c] = exp(value) if exponentiate else value
