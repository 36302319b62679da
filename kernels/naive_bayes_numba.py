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
- Gaussian fit (``gaussian_class_moments``): threads over the fixed row
  chunks of :func:`naive_bayes_numpy.fit_partition`; within a chunk, blocks
  of rows in order, each block's per-class moments in two passes while it is
  in cache, merged into the chunk's by Chan et al.'s update; chunks merged
  in order at the end. Sums and means are taken of ``x - shift_c``, the
  first row of the class, so data far from the origin lose no digits in the
  merges.
- Discrete fit (``class_feature_sums_dense`` / ``_csr``): each chunk adds its
  rows into its own (n_classes, n_features) table, row by row into the row
  of the sample's class; the tables are added in chunk order.
- Categorical fit (``categorical_class_counts``): the same chunks, each row
  adding its weight to one entry per feature of the chunk's stacked table.
- Normalisation: one pass per row (max, sum of exponentials, subtract);
  probabilities reuse the exponentials, ``exp(jll_c - max) / (1 + rest)``,
  one exponential per entry.
"""

import math

import numba
import numpy as np

from ._constants import FAMILIES
from ._threads import blas_single_threaded, numba_threads
from .naive_bayes_numpy import (
    GAUSSIAN_TOL_ABS,
    GAUSSIAN_TOL_REL,
    fit_partition,
    gaussian_expanded_terms,
)

_SHARED = FAMILIES["naive_bayes"]  # shared with naive_bayes_cython
ROW_BLOCK = _SHARED["ROW_BLOCK"]


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


# ---------------------------------------------------------------------------------------------
# Fits
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _merge_class_moments(weight, mean, m2, c, weight_b, mean_b, m2_b):
    """Merge the moments ``(weight_b, mean_b, m2_b)`` of new rows into class ``c``."""
    if weight[c] == 0.0:
        weight[c] = weight_b
        for j in range(mean.shape[1]):
            mean[c, j] = mean_b[j]
            m2[c, j] = m2_b[j]
        return
    total = weight[c] + weight_b
    share = weight_b / total
    cross = weight[c] * weight_b / total
    for j in range(mean.shape[1]):
        delta = mean_b[j] - mean[c, j]
        mean[c, j] += delta * share
        m2[c, j] += m2_b[j] + delta * delta * cross
    weight[c] = total


@numba.njit(cache=True, nogil=True)
def _moments_of_rows(X, y_index, sample_weight, shift, start, stop, block_rows, weight, mean, m2):
    """Moments of rows ``start:stop`` into ``(weight, mean, m2)``, block by block in order.

    The means are kept relative to ``shift`` (a row of each class), so they are
    small numbers whose differences in the merges lose nothing.
    """
    n_features = X.shape[1]
    n_classes = weight.shape[0]
    weighted = sample_weight.shape[0] > 0
    block_weight = np.zeros(n_classes)
    block_mean = np.zeros((n_classes, n_features))
    block_m2 = np.zeros((n_classes, n_features))
    seen = np.zeros(n_classes, dtype=np.bool_)
    present = np.empty(n_classes, dtype=np.intp)
    for block_start in range(start, stop, block_rows):
        block_stop = min(block_start + block_rows, stop)
        n_present = 0
        # Pass 1: weights and weighted sums of the block's classes.
        for i in range(block_start, block_stop):
            c = y_index[i]
            if not seen[c]:
                seen[c] = True
                present[n_present] = c
                n_present += 1
                block_weight[c] = 0.0
                block_mean[c, :] = 0.0
                block_m2[c, :] = 0.0
            w = sample_weight[i] if weighted else 1.0
            block_weight[c] += w
            for j in range(n_features):
                block_mean[c, j] += w * (np.float64(X[i, j]) - shift[c, j])
        for p in range(n_present):
            c = present[p]
            seen[c] = False
            if block_weight[c] != 0.0:
                for j in range(n_features):
                    block_mean[c, j] /= block_weight[c]
        # Pass 2: squared deviations from the block's class means (rows still in cache).
        for i in range(block_start, block_stop):
            c = y_index[i]
            if block_weight[c] == 0.0:
                continue
            w = sample_weight[i] if weighted else 1.0
            for j in range(n_features):
                diff = (np.float64(X[i, j]) - shift[c, j]) - block_mean[c, j]
                block_m2[c, j] += w * diff * diff
        for p in range(n_present):
            c = present[p]
            if block_weight[c] != 0.0:
                _merge_class_moments(weight, mean, m2, c, block_weight[c], block_mean[c],
                                     block_m2[c])


@numba.njit(cache=True, nogil=True)
def _class_shift(X, y_index, shift):
    """``shift[c]`` = the first row of class ``c`` (0 for a class with no row)."""
    n_classes = shift.shape[0]
    found = 0
    seen = np.zeros(n_classes, dtype=np.bool_)
    shift[:] = 0.0
    for i in range(X.shape[0]):
        c = y_index[i]
        if not seen[c]:
            seen[c] = True
            for j in range(X.shape[1]):
                shift[c, j] = X[i, j]
            found += 1
            if found == n_classes:
                break


@numba.njit(parallel=True, cache=True, nogil=True)
def _gaussian_moments(X, y_index, sample_weight, block_rows, chunk_weight, chunk_mean, chunk_m2,
                      class_weight, mean, m2):
    n_samples = X.shape[0]
    n_chunks = chunk_weight.shape[0]
    chunk_rows = (n_samples + n_chunks - 1) // n_chunks
    shift = np.empty(mean.shape)
    _class_shift(X, y_index, shift)
    for chunk in numba.prange(n_chunks):
        start = chunk * chunk_rows
        stop = min(start + chunk_rows, n_samples)
        _moments_of_rows(X, y_index, sample_weight, shift, start, stop, block_rows,
                         chunk_weight[chunk], chunk_mean[chunk], chunk_m2[chunk])
    class_weight[:] = 0.0
    mean[:] = 0.0
    m2[:] = 0.0
    for chunk in range(n_chunks):  # in chunk order, whatever the threads did
        for c in range(class_weight.shape[0]):
            if chunk_weight[chunk, c] != 0.0:
                _merge_class_moments(class_weight, mean, m2, c, chunk_weight[chunk, c],
                                     chunk_mean[chunk, c], chunk_m2[chunk, c])
    for c in range(class_weight.shape[0]):
        if class_weight[c] != 0.0:
            for j in range(mean.shape[1]):
                mean[c, j] += shift[c, j]


def gaussian_class_moments(X, y_index, sample_weight, class_weight, mean, m2, n_threads):
    """Per-class weight, mean and centred sum of squares (see :mod:`naive_bayes_numpy`)."""
    n_classes, n_features = mean.shape
    n_chunks, block_rows = fit_partition(X.shape[0], n_features, n_classes)
    chunk_weight = np.zeros((n_chunks, n_classes))
    chunk_mean = np.zeros((n_chunks, n_classes, n_features))
    chunk_m2 = np.zeros((n_chunks, n_classes, n_features))
    with numba_threads(n_threads):
        _gaussian_moments(X, y_index, sample_weight, block_rows, chunk_weight, chunk_mean,
                          chunk_m2, class_weight, mean, m2)


@numba.njit(cache=True, nogil=True)
def _add_chunks(partial, out):
    """``out = partial[0] + partial[1] + ...``, in chunk order."""
    out[:] = partial[0]
    for chunk in range(1, partial.shape[0]):
        for c in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[c, j] += partial[chunk, c, j]


@numba.njit(parallel=True, cache=True, nogil=True)
def _sums_dense(X, y_index, sample_weight, binarize_threshold, partial):
    n_samples, n_features = X.shape
    n_chunks = partial.shape[0]
    chunk_rows = (n_samples + n_chunks - 1) // n_chunks
    weighted = sample_weight.shape[0] > 0
    binarize = not math.isnan(binarize_threshold)
    for chunk in numba.prange(n_chunks):
        table = partial[chunk]
        for i in range(chunk * chunk_rows, min((chunk + 1) * chunk_rows, n_samples)):
            row = table[y_index[i]]
            w = sample_weight[i] if weighted else 1.0
            if binarize:
                for j in range(n_features):
                    if X[i, j] > binarize_threshold:
                        row[j] += w
            else:
                for j in range(n_features):
                    row[j] += w * np.float64(X[i, j])


def class_feature_sums_dense(X, y_index, sample_weight, binarize_threshold, out, n_threads):
    """Weighted per-class feature sums of dense ``X`` (see :mod:`naive_bayes_numpy`)."""
    n_chunks, _ = fit_partition(X.shape[0], out.shape[1], out.shape[0])
    partial = np.zeros((n_chunks,) + out.shape)
    with numba_threads(n_threads):
        _sums_dense(X, y_index, sample_weight, float(binarize_threshold), partial)
    _add_chunks(partial, out)


@numba.njit(parallel=True, cache=True, nogil=True)
def _sums_csr(data, indices, indptr, y_index, sample_weight, binarize_threshold, partial):
    n_samples = indptr.shape[0] - 1
    n_chunks = partial.shape[0]
    chunk_rows = (n_samples + n_chunks - 1) // n_chunks
    weighted = sample_weight.shape[0] > 0
    binarize = not math.isnan(binarize_threshold)
    for chunk in numba.prange(n_chunks):
        table = partial[chunk]
        for i in range(chunk * chunk_rows, min((chunk + 1) * chunk_rows, n_samples)):
            row = table[y_index[i]]
            w = sample_weight[i] if weighted else 1.0
            for k in range(indptr[i], indptr[i + 1]):
                if binarize:
                    if data[k] > binarize_threshold:
                        row[indices[k]] += w
                else:
                    row[indices[k]] += w * np.float64(data[k])


def class_feature_sums_csr(data, indices, indptr, y_index, sample_weight, binarize_threshold,
                           out, n_threads):
    """Weighted per-class feature sums over the stored entries of a CSR matrix."""
    n_chunks, _ = fit_partition(indptr.shape[0] - 1, out.shape[1], out.shape[0])
    partial = np.zeros((n_chunks,) + out.shape)
    with numba_threads(n_threads):
        _sums_csr(data, indices, indptr, y_index, sample_weight, float(binarize_threshold),
                  partial)
    _add_chunks(partial, out)


@numba.njit(parallel=True, cache=True, nogil=True)
def _categorical_counts(X, y_index, sample_weight, offsets, partial):
    n_samples, n_features = X.shape
    n_chunks = partial.shape[0]
    chunk_rows = (n_samples + n_chunks - 1) // n_chunks
    weighted = sample_weight.shape[0] > 0
    for chunk in numba.prange(n_chunks):
        table = partial[chunk]
        for i in range(chunk * chunk_rows, min((chunk + 1) * chunk_rows, n_samples)):
            c = y_index[i]
            w = sample_weight[i] if weighted else 1.0
            for j in range(n_features):
                table[offsets[j] + X[i, j], c] += w


def categorical_class_counts(X, y_index, sample_weight, offsets, out, n_threads):
    """Weighted (feature, category, class) counts, stacked (see :mod:`naive_bayes_numpy`)."""
    n_chunks, _ = fit_partition(X.shape[0], out.shape[0], out.shape[1])
    partial = np.zeros((n_chunks,) + out.shape)
    with numba_threads(n_threads):
        _categorical_counts(X, y_index, sample_weight, offsets, partial)
    _add_chunks(partial, out)
