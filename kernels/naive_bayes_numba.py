r"""Naive Bayes joint log-likelihoods and their normalisation: the Numba kernels.

The same sums as :mod:`naive_bayes_numpy` (see there for the formulas), with
threads over blocks of rows, so the result does not depend on the number of
threads:

- Gaussian: per block of rows, the centred rows and their squares go
  through two GEMMs (the expanded form, see :mod:`naive_bayes_numpy`); a row
  whose rounding-error bound exceeds the tolerance is recomputed in the
  direct form (an accumulator per class, updated feature by feature). Memory:
  three cache-sized buffers per thread, no (n_samples x n_classes x
  n_features) temporary.
- Discrete dense: each block of ``ROW_BLOCK`` rows is copied (and binarised
  if asked) into a float64 buffer of the thread, then one GEMM with
  ``weights_t``; float32 ``X`` is never copied as a whole.
- Discrete CSR: per row, the stored entries in storage order.
- Categorical: per row, one table look-up per feature.
- Normalisation: one pass per row (max, sum of exponentials, subtract);
  probabilities reuse the exponentials, ``exp(jll_c - max) / (1 + rest)``,
  one exponential per entry.
"""

import math

import numba
import numpy as np

from ._threads import blas_single_threaded, numba_threads
from .naive_bayes_numpy import GAUSSIAN_TOL_ABS, GAUSSIAN_TOL_REL, gaussian_expanded_terms

ROW_BLOCK = 256


@numba.njit(cache=True, nogil=True)
def _gaussian_row_direct(x, mean_t, inv_var_t, class_const, row):
    """One row in the direct form: accumulators per class, features in order."""
    n_classes = class_const.shape[0]
    for c in range(n_classes):
        row[c] = 0.0
    for j in range(x.shape[0]):
        value = np.float64(x[j])
        for c in range(n_classes):
            diff = value - mean_t[j, c]
            row[c] += diff * diff * inv_var_t[j, c]
    for c in range(n_classes):
        row[c] = -0.5 * row[c] + class_const[c]


@numba.njit(parallel=True, cache=True, nogil=True)
def _gaussian(X, mean_t, inv_var_t, class_const, shift, weighted_mean_t, centred_norm,
              error_factor, tol_abs, tol_rel, out):
    n_samples, n_features = X.shape
    n_classes = class_const.shape[0]
    block_rows = max(8, min(ROW_BLOCK, 32768 // max(n_features, 1)))
    n_blocks = (n_samples + block_rows - 1) // block_rows
    for block in numba.prange(n_blocks):
        start = block * block_rows
        stop = min(start + block_rows, n_samples)
        n_rows = stop - start
        # Per-thread buffers: centred rows, their squares, and A = squares @ inv_var_t.
        centred = np.empty((n_rows, n_features), dtype=np.float64)
        squares = np.empty((n_rows, n_features), dtype=np.float64)
        quadratic = np.empty((n_rows, n_classes), dtype=np.float64)
        for i in range(n_rows):
            for j in range(n_features):
                value = np.float64(X[start + i, j]) - shift[j]
                centred[i, j] = value
                squares[i, j] = value * value
        out_block = out[start:stop]
        np.dot(squares, inv_var_t, quadratic)
        np.dot(centred, weighted_mean_t, out_block)
        for i in range(n_rows):
            row = out_block[i]
            row_max = -np.inf
            for c in range(n_classes):
                row[c] = -0.5 * (quadratic[i, c] + row[c] + centred_norm[c]) + class_const[c]
                if row[c] > row_max:
                    row_max = row[c]
            exact_enough = True
            for c in range(n_classes):
                bound = error_factor * (quadratic[i, c] + centred_norm[c])
                if not bound <= tol_abs + tol_rel * (row_max - row[c]):
                    exact_enough = False
            if not exact_enough:
                _gaussian_row_direct(X[start + i], mean_t, inv_var_t, class_const, row)


def gaussian_joint_log_likelihood(X, mean_t, inv_var_t, class_const, out, n_threads):
    """Gaussian joint log-likelihood: expanded form by GEMMs, rows past the error bound
    recomputed in the direct form (see :mod:`naive_bayes_numpy`)."""
    shift, weighted_mean_t, centred_norm, error_factor = gaussian_expanded_terms(mean_t, inv_var_t)
    with numba_threads(n_threads), blas_single_threaded():
        _gaussian(X, mean_t, inv_var_t, class_const, shift, weighted_mean_t, centred_norm,
                  error_factor, GAUSSIAN_TOL_ABS, GAUSSIAN_TOL_REL, out)


@numba.njit(parallel=True, cache=True, nogil=True)
def _discrete_dense(X, weights_t, class_const, binarize_threshold, out):
    n_samples, n_features = X.shape
    n_classes = class_const.shape[0]
    binarize = not math.isnan(binarize_threshold)
    n_blocks = (n_samples + ROW_BLOCK - 1) // ROW_BLOCK
    for block in numba.prange(n_blocks):
        start = block * ROW_BLOCK
        stop = min(start + ROW_BLOCK, n_samples)
        values = np.empty((stop - start, n_features), dtype=np.float64)
        for i in range(start, stop):
            for j in range(n_features):
                x = np.float64(X[i, j])
                if binarize:
                    x = 1.0 if x > binarize_threshold else 0.0
                values[i - start, j] = x
        np.dot(values, weights_t, out[start:stop])
        for i in range(start, stop):
            for c in range(n_classes):
                out[i, c] += class_const[c]


def discrete_joint_log_likelihood_dense(X, weights_t, class_const, binarize_threshold, out, n_threads):
    """``v(X) @ weights_t + class_const`` in row blocks (see :mod:`naive_bayes_numpy`)."""
    with numba_threads(n_threads), blas_single_threaded():
        _discrete_dense(X, weights_t, class_const, float(binarize_threshold), out)


@numba.njit(parallel=True, cache=True, nogil=True)
def _discrete_csr(data, indices, indptr, weights_t, class_const, binarize_threshold, out):
    n_samples = indptr.shape[0] - 1
    n_classes = class_const.shape[0]
    binarize = not math.isnan(binarize_threshold)
    n_blocks = (n_samples + ROW_BLOCK - 1) // ROW_BLOCK
    for block in numba.prange(n_blocks):
        start = block * ROW_BLOCK
        stop = min(start + ROW_BLOCK, n_samples)
        for i in range(start, stop):
            row = out[i]
            for c in range(n_classes):
                row[c] = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                value = np.float64(data[k])
                if binarize:
                    value = 1.0 if value > binarize_threshold else 0.0
                weights_row = weights_t[indices[k]]
                for c in range(n_classes):
                    row[c] += value * weights_row[c]
            for c in range(n_classes):
                row[c] += class_const[c]


def discrete_joint_log_likelihood_csr(data, indices, indptr, weights_t, class_const,
                                      binarize_threshold, out, n_threads):
    """Linear joint log-likelihood over the stored entries of a CSR matrix."""
    with numba_threads(n_threads):
        _discrete_csr(data, indices, indptr, weights_t, class_const, float(binarize_threshold), out)


@numba.njit(parallel=True, cache=True, nogil=True)
def _categorical(X, offsets, log_prob, class_const, out):
    n_samples, n_features = X.shape
    n_classes = class_const.shape[0]
    n_blocks = (n_samples + ROW_BLOCK - 1) // ROW_BLOCK
    for block in numba.prange(n_blocks):
        start = block * ROW_BLOCK
        stop = min(start + ROW_BLOCK, n_samples)
        for i in range(start, stop):
            row = out[i]
            for c in range(n_classes):
                row[c] = 0.0
            for j in range(n_features):
                table_row = log_prob[offsets[j] + X[i, j]]
                for c in range(n_classes):
                    row[c] += table_row[c]
            for c in range(n_classes):
                row[c] += class_const[c]


def categorical_joint_log_likelihood(X, offsets, log_prob, class_const, out, n_threads):
    """Categorical joint log-likelihood (see :mod:`naive_bayes_numpy`)."""
    with numba_threads(n_threads):
        _categorical(X, offsets, log_prob, class_const, out)


@numba.njit(parallel=True, cache=True, nogil=True)
def _normalize(jll, exponentiate, out):
    n_samples, n_classes = jll.shape
    n_blocks = (n_samples + ROW_BLOCK - 1) // ROW_BLOCK
    for block in numba.prange(n_blocks):
        start = block * ROW_BLOCK
        stop = min(start + ROW_BLOCK, n_samples)
        for i in range(start, stop):
            first_max = 0
            row_max = jll[i, 0]
            for c in range(1, n_classes):
                if jll[i, c] > row_max:
                    row_max = jll[i, c]
                    first_max = c
            if math.isfinite(row_max):
                # exp(jll_c - max), kept in out when probabilities are asked for.
                rest = 0.0
                for c in range(n_classes):
                    term = 1.0 if c == first_max else math.exp(jll[i, c] - row_max)
                    if c != first_max:
                        rest += term
                    if exponentiate:
                        out[i, c] = term
                if exponentiate:
                    scale = 1.0 / (1.0 + rest)
                    for c in range(n_classes):
                        out[i, c] *= scale
                else:
                    log_norm = row_max + math.log1p(rest)
                    for c in range(n_classes):
                        out[i, c] = jll[i, c] - log_norm
            else:
                total = 0.0
                for c in range(n_classes):
                    total += math.exp(jll[i, c])
                log_norm = math.log(total) if total > 0 else -math.inf
                for c in range(n_classes):
                    value = jll[i, c] - log_norm
                    out[i, c] = math.exp(value) if exponentiate else value


def nb_normalize(jll, exponentiate, out, n_threads):
    """Row-wise log-sum-exp normalisation (see :mod:`naive_bayes_numpy`)."""
    with numba_threads(n_threads):
        _normalize(jll, bool(exponentiate), out)
