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

The fit kernels (``gaussian_class_moments``, ``class_feature_sums_dense`` /
``_csr``) run one OpenMP thread per fixed row chunk of
:func:`naive_bayes_numpy.fit_partition` into the chunk's own tables, then
merge (or add) the tables in chunk order, as the Numba kernels do.
"""

include "_common.pxi"
include "_constants_naive_bayes.pxi"  # shared with naive_bayes_numba (kernels/_constants.py)

from cython.parallel cimport parallel, prange
from libc.math cimport exp, log, log1p, isnan, isfinite
from libc.string cimport memset

import numpy as np
from scipy.linalg.cython_blas cimport dgemm

from ._threads import blas_single_threaded
from .naive_bayes_numpy import (
    GAUSSIAN_TOL_ABS,
    GAUSSIAN_TOL_REL,
    fit_partition,
    gaussian_expanded_terms,
)


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


# ---------------------------------------------------------------------------------------------
# Fits
# ---------------------------------------------------------------------------------------------


cdef inline void merge_class_moments(double* weight, double* mean, double* m2, intp_t n_features,
                                     double weight_b, const double* mean_b,
                                     const double* m2_b) noexcept nogil:
    """Merge the moments ``(weight_b, mean_b, m2_b)`` of new rows into one class's."""
    cdef intp_t j
    cdef double total, share, cross, delta
    if weight[0] == 0.0:
        weight[0] = weight_b
        for j in range(n_features):
            mean[j] = mean_b[j]
            m2[j] = m2_b[j]
        return
    total = weight[0] + weight_b
    share = weight_b / total
    cross = weight[0] * weight_b / total
    for j in range(n_features):
        delta = mean_b[j] - mean[j]
        mean[j] = mean[j] + delta * share
        m2[j] = m2[j] + m2_b[j] + delta * delta * cross
    weight[0] = total


cdef void moments_of_rows(const floating[:, ::1] X, const intp_t[::1] y_index,
                          const double[::1] sample_weight, const double* shift,
                          intp_t start, intp_t stop,
                          intp_t block_rows, intp_t n_classes,
                          double* weight, double* mean, double* m2,
                          double* block_weight, double* block_mean, double* block_m2,
                          char* seen, intp_t* present) noexcept nogil:
    """Moments of rows ``start:stop`` into ``(weight, mean, m2)``, block by block in order.

    The means are kept relative to ``shift`` (a row of each class), so they are
    small numbers whose differences in the merges lose nothing.
    """
    cdef intp_t n_features = X.shape[1]
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef intp_t block_start, block_stop, i, j, c, p, n_present
    cdef double w, diff
    cdef double* row_mean
    cdef double* row_m2
    cdef const double* row_shift
    cdef const floating* x
    block_start = start
    while block_start < stop:
        block_stop = min(block_start + block_rows, stop)
        n_present = 0
        # Pass 1: weights and weighted sums of the block's classes.
        for i in range(block_start, block_stop):
            c = y_index[i]
            row_mean = &block_mean[c * n_features]
            if not seen[c]:
                seen[c] = 1
                present[n_present] = c
                n_present = n_present + 1
                block_weight[c] = 0.0
                memset(row_mean, 0, n_features * sizeof(double))
                memset(&block_m2[c * n_features], 0, n_features * sizeof(double))
            w = sample_weight[i] if weighted else 1.0
            block_weight[c] = block_weight[c] + w
            row_shift = &shift[c * n_features]
            x = &X[i, 0]
            for j in range(n_features):
                row_mean[j] = row_mean[j] + w * (<double> x[j] - row_shift[j])
        for p in range(n_present):
            c = present[p]
            seen[c] = 0
            if block_weight[c] != 0.0:
                row_mean = &block_mean[c * n_features]
                for j in range(n_features):
                    row_mean[j] = row_mean[j] / block_weight[c]
        # Pass 2: squared deviations from the block's class means (rows still in cache).
        for i in range(block_start, block_stop):
            c = y_index[i]
            if block_weight[c] == 0.0:
                continue
            w = sample_weight[i] if weighted else 1.0
            row_mean = &block_mean[c * n_features]
            row_m2 = &block_m2[c * n_features]
            row_shift = &shift[c * n_features]
            x = &X[i, 0]
            for j in range(n_features):
                diff = (<double> x[j] - row_shift[j]) - row_mean[j]
                row_m2[j] = row_m2[j] + w * diff * diff
        for p in range(n_present):
            c = present[p]
            if block_weight[c] != 0.0:
                merge_class_moments(&weight[c], &mean[c * n_features], &m2[c * n_features],
                                    n_features, block_weight[c], &block_mean[c * n_features],
                                    &block_m2[c * n_features])
        block_start = block_stop


def _gaussian_moments(const floating[:, ::1] X,                 # IN
                      const intp_t[::1] y_index,                # IN
                      const double[::1] sample_weight,          # IN (empty: unit weights)
                      intp_t block_rows,                        # IN
                      double[:, ::1] shift,                     # OUT (scratch)
                      double[:, ::1] chunk_weight,              # OUT (scratch, zeros)
                      double[:, :, ::1] chunk_mean,             # OUT (scratch, zeros)
                      double[:, :, ::1] chunk_m2,               # OUT (scratch, zeros)
                      double[::1] class_weight,                 # OUT
                      double[:, ::1] mean,                      # OUT
                      double[:, ::1] m2,                        # OUT
                      int n_threads):
    cdef intp_t n_samples = X.shape[0]
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_classes = class_weight.shape[0]
    cdef intp_t n_chunks = chunk_weight.shape[0]
    cdef intp_t chunk_rows = (n_samples + n_chunks - 1) // n_chunks
    cdef intp_t chunk, c, i, j, start, stop, found = 0
    cdef double* block_weight = NULL
    cdef double* block_mean = NULL
    cdef double* block_m2 = NULL
    cdef char* seen = NULL
    cdef char* class_seen = NULL
    cdef intp_t* present = NULL

    class_weight[:] = 0.0
    mean[:, :] = 0.0
    m2[:, :] = 0.0
    if n_samples == 0 or n_features == 0:
        return
    with nogil:
        # shift[c] = the first row of class c (0 for a class with no row).
        class_seen = <char*> malloc(n_classes * sizeof(char))
        memset(class_seen, 0, n_classes * sizeof(char))
        shift[:, :] = 0.0
        for i in range(n_samples):
            c = y_index[i]
            if not class_seen[c]:
                class_seen[c] = 1
                for j in range(n_features):
                    shift[c, j] = <double> X[i, j]
                found = found + 1
                if found == n_classes:
                    break
        free(class_seen)
    with nogil, parallel(num_threads=n_threads):
        # Thread-local block buffers, reused by every chunk of the thread.
        block_weight = <double*> malloc(n_classes * sizeof(double))
        block_mean = <double*> malloc(n_classes * n_features * sizeof(double))
        block_m2 = <double*> malloc(n_classes * n_features * sizeof(double))
        seen = <char*> malloc(n_classes * sizeof(char))
        present = <intp_t*> malloc(n_classes * sizeof(intp_t))
        memset(seen, 0, n_classes * sizeof(char))
        for chunk in prange(n_chunks, schedule="dynamic"):
            start = chunk * chunk_rows
            stop = min(start + chunk_rows, n_samples)
            moments_of_rows(X, y_index, sample_weight, &shift[0, 0], start, stop, block_rows,
                            n_classes,
                            &chunk_weight[chunk, 0], &chunk_mean[chunk, 0, 0],
                            &chunk_m2[chunk, 0, 0], block_weight, block_mean, block_m2,
                            seen, present)
        free(block_weight)
        free(block_mean)
        free(block_m2)
        free(seen)
        free(present)
    with nogil:
        for chunk in range(n_chunks):  # in chunk order, whatever the threads did
            for c in range(n_classes):
                if chunk_weight[chunk, c] != 0.0:
                    merge_class_moments(&class_weight[c], &mean[c, 0], &m2[c, 0], n_features,
                                        chunk_weight[chunk, c], &chunk_mean[chunk, c, 0],
                                        &chunk_m2[chunk, c, 0])
        for c in range(n_classes):
            if class_weight[c] != 0.0:
                for j in range(n_features):
                    mean[c, j] = mean[c, j] + shift[c, j]


def gaussian_class_moments(X, y_index, sample_weight, class_weight, mean, m2, n_threads):
    """Per-class weight, mean and centred sum of squares (see :mod:`naive_bayes_numpy`)."""
    n_classes, n_features = mean.shape
    n_chunks, block_rows = fit_partition(X.shape[0], n_features, n_classes)
    chunk_weight = np.zeros((n_chunks, n_classes))
    chunk_mean = np.zeros((n_chunks, n_classes, n_features))
    chunk_m2 = np.zeros((n_chunks, n_classes, n_features))
    _gaussian_moments(X, y_index, sample_weight, block_rows, np.empty((n_classes, n_features)),
                      chunk_weight, chunk_mean, chunk_m2, class_weight, mean, m2, n_threads)


cdef void add_chunks(const double[:, :, ::1] partial, double[:, ::1] out) noexcept nogil:
    """``out = partial[0] + partial[1] + ...``, in chunk order."""
    cdef intp_t chunk, c, j
    for c in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[c, j] = partial[0, c, j]
    for chunk in range(1, partial.shape[0]):
        for c in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[c, j] = out[c, j] + partial[chunk, c, j]


def _sums_dense(const floating[:, ::1] X,                       # IN
                const intp_t[::1] y_index,                      # IN
                const double[::1] sample_weight,                # IN (empty: unit weights)
                double binarize_threshold,                      # IN
                double[:, :, ::1] partial,                      # OUT (scratch, zeros)
                double[:, ::1] out,                             # OUT
                int n_threads):
    cdef intp_t n_samples = X.shape[0]
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_chunks = partial.shape[0]
    cdef intp_t chunk_rows = (n_samples + n_chunks - 1) // n_chunks
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef bint binarize = not isnan(binarize_threshold)
    cdef intp_t chunk, i, j
    cdef double w
    cdef double* row
    cdef const floating* x

    with nogil:
        for chunk in prange(n_chunks, num_threads=n_threads, schedule="dynamic"):
            for i in range(chunk * chunk_rows, min((chunk + 1) * chunk_rows, n_samples)):
                row = &partial[chunk, y_index[i], 0]
                w = sample_weight[i] if weighted else 1.0
                x = &X[i, 0]
                if binarize:  # branch-free: the comparison is unpredictable
                    for j in range(n_features):
                        row[j] = row[j] + (w if x[j] > binarize_threshold else 0.0)
                else:
                    for j in range(n_features):
                        row[j] = row[j] + w * <double> x[j]
        add_chunks(partial, out)


def class_feature_sums_dense(X, y_index, sample_weight, binarize_threshold, out, n_threads):
    """Weighted per-class feature sums of dense ``X`` (see :mod:`naive_bayes_numpy`)."""
    n_chunks, _ = fit_partition(X.shape[0], out.shape[1], out.shape[0])
    partial = np.zeros((n_chunks,) + out.shape)
    if X.shape[0] == 0 or out.shape[1] == 0:
        out[:] = 0.0
        return
    _sums_dense(X, y_index, sample_weight, float(binarize_threshold), partial, out, n_threads)


def _sums_csr(const floating[::1] data,                         # IN
              const index_t[::1] indices,                       # IN
              const index_t[::1] indptr,                        # IN
              const intp_t[::1] y_index,                        # IN
              const double[::1] sample_weight,                  # IN (empty: unit weights)
              double binarize_threshold,                        # IN
              double[:, :, ::1] partial,                        # OUT (scratch, zeros)
              double[:, ::1] out,                               # OUT
              int n_threads):
    cdef intp_t n_samples = indptr.shape[0] - 1
    cdef intp_t n_chunks = partial.shape[0]
    cdef intp_t chunk_rows = (n_samples + n_chunks - 1) // n_chunks
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef bint binarize = not isnan(binarize_threshold)
    cdef intp_t chunk, i, k
    cdef double w
    cdef double* row

    with nogil:
        for chunk in prange(n_chunks, num_threads=n_threads, schedule="dynamic"):
            for i in range(chunk * chunk_rows, min((chunk + 1) * chunk_rows, n_samples)):
                row = &partial[chunk, y_index[i], 0]
                w = sample_weight[i] if weighted else 1.0
                if binarize:  # branch-free: the comparison is unpredictable
                    for k in range(indptr[i], indptr[i + 1]):
                        row[indices[k]] = row[indices[k]] + (w if data[k] > binarize_threshold
                                                             else 0.0)
                else:
                    for k in range(indptr[i], indptr[i + 1]):
                        row[indices[k]] = row[indices[k]] + w * <double> data[k]
        add_chunks(partial, out)


def class_feature_sums_csr(data, indices, indptr, y_index, sample_weight, binarize_threshold,
                           out, n_threads):
    """Weighted per-class feature sums over the stored entries of a CSR matrix."""
    n_chunks, _ = fit_partition(indptr.shape[0] - 1, out.shape[1], out.shape[0])
    partial = np.zeros((n_chunks,) + out.shape)
    if indptr.shape[0] <= 1 or out.shape[1] == 0 or data.shape[0] == 0:
        out[:] = 0.0
        return
    _sums_csr(data, indices, indptr, y_index, sample_weight, float(binarize_threshold), partial,
              out, n_threads)


def _categorical_counts(const intp_t[:, ::1] X,                 # IN
                        const intp_t[::1] y_index,              # IN
                        const double[::1] sample_weight,        # IN (empty: unit weights)
                        const intp_t[::1] offsets,              # IN
                        double[:, :, ::1] partial,              # OUT (scratch, zeros)
                        double[:, ::1] out,                     # OUT
                        int n_threads):
    cdef intp_t n_samples = X.shape[0]
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_classes = out.shape[1]
    cdef intp_t n_chunks = partial.shape[0]
    cdef intp_t chunk_rows = (n_samples + n_chunks - 1) // n_chunks
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef intp_t chunk, i, j, c
    cdef double w
    cdef double* table
    cdef const intp_t* x

    with nogil:
        for chunk in prange(n_chunks, num_threads=n_threads, schedule="dynamic"):
            table = &partial[chunk, 0, 0]
            for i in range(chunk * chunk_rows, min((chunk + 1) * chunk_rows, n_samples)):
                c = y_index[i]
                w = sample_weight[i] if weighted else 1.0
                x = &X[i, 0]
                for j in range(n_features):
                    table[(offsets[j] + x[j]) * n_classes + c] += w
        add_chunks(partial, out)


def categorical_class_counts(X, y_index, sample_weight, offsets, out, n_threads):
    """Weighted (feature, category, class) counts, stacked (see :mod:`naive_bayes_numpy`)."""
    n_chunks, _ = fit_partition(X.shape[0], out.shape[0], out.shape[1])
    partial = np.zeros((n_chunks,) + out.shape)
    if X.shape[0] == 0 or X.shape[1] == 0 or out.shape[0] == 0:
        out[:] = 0.0
        return
    _categorical_counts(X, y_index, sample_weight, offsets, partial, out, n_threads)
