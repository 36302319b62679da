r"""Naive Bayes joint log-likelihoods and their normalisation: the readable reference.

Every naive Bayes model scores a sample :math:`x` against class :math:`c` by its
joint log-likelihood :math:`\log P(c) + \log P(x \mid c)`, a matrix ``out`` of
shape (n_samples, n_classes). The estimators reduce each model to one of four
kernels:

``gaussian_joint_log_likelihood``
    .. math::

        \mathrm{out}_{ic} = \mathrm{class\_const}_c - \tfrac12 \sum_j
            (x_{ij} - \mathrm{mean\_t}_{jc})^2 \, \mathrm{inv\_var\_t}_{jc}

    with ``class_const[c] = log prior_c - 0.5 * sum_j log(2 pi var_cj)``.
    This reference evaluates the direct form. The compiled backends use the
    expanded form as two GEMMs per block of rows, after centring every
    feature on ``shift_j`` (the mean of the class means):

    .. math::

        S_{ic} = \underbrace{\sum_j x'^2_{ij}\, v_{jc}}_{A_{ic}}
               - 2 \sum_j x'_{ij}\, m'_{jc} v_{jc}
               + \underbrace{\sum_j m'^2_{jc}\, v_{jc}}_{K_c},
        \qquad x' = x - \mathrm{shift},\ m' = \mathrm{mean\_t} - \mathrm{shift},\
        v = \mathrm{inv\_var\_t},

    which cancels when a sample is near a class mean that lies far from the
    shift compared with its spread. Its rounding error on the joint
    log-likelihood is at most ``E_ic = (n_features + 8) * 2**-53 * (A_ic + K_c)``
    (first order; the cross term is bounded by :math:`A + K`), so every row
    where some class has ``E_ic > GAUSSIAN_TOL_ABS + GAUSSIAN_TOL_REL *
    (max_c' out_ic' - out_ic)`` is recomputed in the direct form. Hence the
    backends agree with this reference to 1e-10 absolute on the classes that
    carry probability and to 1e-13 relative to the gap on the others.
``discrete_joint_log_likelihood_dense`` / ``_csr``
    A linear model: :math:`\mathrm{out}_{ic} = \sum_j v(x_{ij})\,
    \mathrm{weights\_t}_{jc} + \mathrm{class\_const}_c`, where
    :math:`v(x) = x`, or :math:`v(x) = [x > t]` for Bernoulli's binarisation
    threshold ``t`` (``binarize_threshold``; NaN means no binarisation).
    Multinomial, Bernoulli and Complement NB differ only in ``weights_t`` and
    ``class_const``. The CSR kernel visits only the stored entries.
``categorical_joint_log_likelihood``
    :math:`\mathrm{out}_{ic} = \sum_j \mathrm{log\_prob}_{o_j + x_{ij},\,c}
    + \mathrm{class\_const}_c`: a table look-up per feature, where the
    per-feature tables are stacked in ``log_prob`` and ``o = offsets``.
``gaussian_class_moments`` (fit)
    Per class :math:`c`, the weight :math:`W_c = \sum_{y_i = c} w_i`, the mean
    :math:`\bar x_{cj} = \sum_{y_i = c} w_i x_{ij} / W_c` and the centred sum of
    squares :math:`M_{cj} = \sum_{y_i = c} w_i (x_{ij} - \bar x_{cj})^2`, in one
    pass over ``X``. The compiled kernels split the rows into ``n_chunks``
    fixed chunks (a function of the shape only, see :func:`fit_partition`),
    each chunk into blocks of ``block_rows`` rows; a block's moments are
    computed in two passes over the block while it is in cache (its mean, then
    the squares about that mean, as NumPy's ``var``), and merged into the
    chunk's by the pairwise update of Chan, Golub and LeVeque (1979),

    .. math::

        W = W_a + W_b,\quad \delta = \bar x_b - \bar x_a,\quad
        \bar x = \bar x_a + \delta \frac{W_b}{W},\quad
        M = M_a + M_b + \delta^2 \frac{W_a W_b}{W};

    the chunks are then merged in chunk order. The sums are taken of
    :math:`x_{ij} - s_{cj}`, with :math:`s_c` the first row of class :math:`c`,
    so the means merged are small numbers even for data far from the origin;
    no sum of squares is ever formed about the origin, so there is no
    cancellation, and the order of every sum is fixed whatever the number of
    threads.
``class_feature_sums_dense`` / ``_csr`` (fit)
    :math:`\mathrm{out}_{cj} = \sum_{y_i = c} w_i\, v(x_{ij})`, the
    ``feature_count_`` of the discrete models (``Y^T v(X)`` with ``Y`` the
    weighted one-hot labels), in one pass over ``X``: each row adds into the
    row of its own class only, so the cost is that of reading ``X``
    (``nnz`` entries for CSR, never densified), not ``n_classes`` times it.
    The compiled kernels sum fixed row chunks into partial tables and add
    the tables in chunk order.
``categorical_class_counts`` (fit)
    :math:`\mathrm{out}_{o_j + x_{ij},\, y_i} \mathrel{+}= w_i` for every row
    and feature: CategoricalNB's ``category_count_``, the per-feature tables
    stacked as in ``categorical_joint_log_likelihood`` (transposed), in one
    pass over ``X``; chunked as the other fit kernels.
``nb_normalize``
    Log-sum-exp normalisation of each row, in log space:
    :math:`\log P(c \mid x) = \mathrm{jll}_c - m - \operatorname{log1p}
    \sum_{c' \ne c^*} e^{\mathrm{jll}_{c'} - m}` with :math:`m` the row maximum
    reached first at :math:`c^*`; optionally exponentiated.

Conventions: ``X`` is float32 or float64 and is never copied to float64 as a
whole (the reference converts blocks of ``ROW_BLOCK`` rows); the model
parameters and ``out`` are float64, and every sum is accumulated in float64.
Sums over features run in the order of the features (j = 0, 1, ...), then
``class_const`` is added, as in scikit-learn. ``n_threads`` is ignored here.
"""

import numpy as np
import scipy.sparse

# Fastest first, as measured by benchmarks/test_bench_naive_bayes.py
# (GaussianNB predict_proba 1,000,000 x 50 float64, 10 classes; MultinomialNB
# predict_proba on CSR 100k x 20k at 1 % density; 2 cores).
AUTO_BACKEND_ORDER = {
    "gaussian_joint_log_likelihood": ("cython", "numba", "numpy"),
    "discrete_joint_log_likelihood_dense": ("cython", "numba", "numpy"),
    "discrete_joint_log_likelihood_csr": ("cython", "numba", "numpy"),
    "categorical_joint_log_likelihood": ("cython", "numba", "numpy"),
    "nb_normalize": ("cython", "numba", "numpy"),
    # Fits: kernels alone, one thread, minimum of 7-9 runs on a shared 2-core machine.
    # Moments: Cython 4.1 ms vs Numba 15 ms at 1M x 4, 3 classes; even at 100k x 50,
    # 100 classes; Numba 38 ms vs Cython 57 ms at 100k x 200 (its loops use AVX, the
    # portable Cython build SSE2), so Cython, which also needs no compilation.
    # Feature sums: CSR 20k x 10k at 1 % Cython 2.0 ms vs Numba 2.9 ms; dense 200k x 64
    # 3.1 ms vs 7.2 ms. Categorical counts, 200k x 64: Numba 9.8 ms vs Cython 17.6 ms.
    "gaussian_class_moments": ("cython", "numba", "numpy"),
    "class_feature_sums_dense": ("cython", "numba", "numpy"),
    "class_feature_sums_csr": ("cython", "numba", "numpy"),
    "categorical_class_counts": ("numba", "cython", "numpy"),
}

ROW_BLOCK = 4096

# Accuracy the compiled Gaussian kernels guarantee (see the module docstring).
GAUSSIAN_TOL_ABS = 1e-10
GAUSSIAN_TOL_REL = 1e-13
UNIT_ROUNDOFF = 2.0 ** -53


def gaussian_expanded_terms(mean_t, inv_var_t):
    """Model-side terms of the expanded Gaussian form, for the compiled kernels.

    Returns
    -------
    shift : ndarray of shape (n_features,)
        Mean of the class means of each feature.
    weighted_mean_t : ndarray of shape (n_features, n_classes)
        ``-2 * (mean_t - shift) * inv_var_t``.
    centred_norm : ndarray of shape (n_classes,)
        ``K_c = sum_j (mean_t - shift)**2 * inv_var_t``.
    error_factor : float
        ``(n_features + 8) * 2**-53``: the error bound is ``error_factor * (A + K)``.
    """
    shift = mean_t.mean(axis=1)
    centred = mean_t - shift[:, None]
    weighted_mean_t = np.ascontiguousarray(-2.0 * centred * inv_var_t)
    centred_norm = np.ascontiguousarray((centred ** 2 * inv_var_t).sum(axis=0))
    error_factor = (mean_t.shape[0] + 8) * UNIT_ROUNDOFF
    return np.ascontiguousarray(shift), weighted_mean_t, centred_norm, error_factor


def gaussian_joint_log_likelihood(X, mean_t, inv_var_t, class_const, out, n_threads):
    """Gaussian joint log-likelihood, direct form.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
    mean_t : ndarray of shape (n_features, n_classes), float64
        Class means, transposed (``theta_.T``).
    inv_var_t : ndarray of shape (n_features, n_classes), float64
        Reciprocal class variances, transposed (``1 / var_.T``).
    class_const : ndarray of shape (n_classes,), float64
    out : ndarray of shape (n_samples, n_classes), float64
        Written: the joint log-likelihood.
    n_threads : int
        Ignored.

    Notes
    -----
    This reference holds one (ROW_BLOCK x n_features) float64 block per class.
    """
    n_classes = class_const.shape[0]
    for start in range(0, X.shape[0], ROW_BLOCK):
        block = X[start:start + ROW_BLOCK].astype(np.float64)
        for c in range(n_classes):
            squared = (block - mean_t[:, c]) ** 2 * inv_var_t[:, c]
            # np.cumsum sums left to right (np.sum would sum pairwise).
            out[start:start + ROW_BLOCK, c] = -0.5 * np.cumsum(squared, axis=1)[:, -1]
        out[start:start + ROW_BLOCK] += class_const


def _values(block, binarize_threshold):
    """``v(x)``: the values themselves, or 0/1 after binarisation, as float64."""
    if np.isnan(binarize_threshold):
        return block.astype(np.float64)
    return (block > binarize_threshold).astype(np.float64)


def discrete_joint_log_likelihood_dense(X, weights_t, class_const, binarize_threshold, out, n_threads):
    """Linear joint log-likelihood of the discrete models on dense ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
    weights_t : ndarray of shape (n_features, n_classes), float64
    class_const : ndarray of shape (n_classes,), float64
    binarize_threshold : float
        NaN: use ``X`` as it is; else use ``X > binarize_threshold`` (0 or 1).
    out : ndarray of shape (n_samples, n_classes), float64
        Written: ``v(X) @ weights_t + class_const``.
    n_threads : int
        Ignored (NumPy runs its own BLAS threads).
    """
    for start in range(0, X.shape[0], ROW_BLOCK):
        block = _values(X[start:start + ROW_BLOCK], binarize_threshold)
        out[start:start + ROW_BLOCK] = block @ weights_t
        out[start:start + ROW_BLOCK] += class_const


def discrete_joint_log_likelihood_csr(data, indices, indptr, weights_t, class_const,
                                      binarize_threshold, out, n_threads):
    """Linear joint log-likelihood of the discrete models on a CSR matrix.

    Parameters
    ----------
    data : ndarray of shape (nnz,), float32 or float64
    indices : ndarray of shape (nnz,), int32 or int64
    indptr : ndarray of shape (n_samples + 1,), same integer type as ``indices``
        The three arrays of a CSR matrix (duplicates allowed, any order).
    weights_t, class_const, binarize_threshold, out, n_threads
        As in :func:`discrete_joint_log_likelihood_dense`.

    Notes
    -----
    Only stored entries are visited (v(0) = 0 since the threshold is >= 0):
    for row i, ``out[i] = sum_k v(data[k]) * weights_t[indices[k]]`` over
    ``k in [indptr[i], indptr[i + 1])``, in storage order.
    """
    n_samples = indptr.shape[0] - 1
    n_features = weights_t.shape[0]
    for start in range(0, n_samples, ROW_BLOCK):
        stop = min(start + ROW_BLOCK, n_samples)
        first, last = indptr[start], indptr[stop]
        # scipy's CSR product accumulates each row in storage order, from 0.
        block = scipy.sparse.csr_matrix(
            (_values(data[first:last], binarize_threshold), indices[first:last],
             indptr[start:stop + 1] - first), shape=(stop - start, n_features))
        out[start:stop] = block @ weights_t
        out[start:stop] += class_const


def categorical_joint_log_likelihood(X, offsets, log_prob, class_const, out, n_threads):
    """Categorical joint log-likelihood: one table look-up per feature.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), intp, C-contiguous
        Category codes, ``0 <= X[:, j] < n_categories_j`` (checked by the caller).
    offsets : ndarray of shape (n_features,), intp
        First row of feature j's table in ``log_prob``.
    log_prob : ndarray of shape (sum of n_categories_j, n_classes), float64
        ``log_prob[offsets[j] + k, c] = log P(x_j = k | c)``.
    class_const : ndarray of shape (n_classes,), float64
    out : ndarray of shape (n_samples, n_classes), float64
    n_threads : int
        Ignored.
    """
    out[:] = 0.0
    for j in range(X.shape[1]):
        out += log_prob[offsets[j] + X[:, j]]
    out += class_const


def nb_normalize(jll, exponentiate, out, n_threads):
    """Normalise joint log-likelihoods row by row (log-sum-exp).

    Parameters
    ----------
    jll : ndarray of shape (n_samples, n_classes), float64
    exponentiate : bool
        False: write log-probabilities; True: write probabilities.
    out : ndarray of shape (n_samples, n_classes), float64
        May be ``jll`` itself.
    n_threads : int
        Ignored.

    Notes
    -----
    With ``m`` the row maximum, reached first at column ``c*``, the log
    normaliser is ``m + log1p(sum_{c != c*} exp(jll_c - m))`` (scikit-learn's
    form). A row whose maximum is not finite uses the shift 0 instead of ``m``,
    so an all ``-inf`` row gives NaN, as in scikit-learn.
    """
    for start in range(0, jll.shape[0], ROW_BLOCK):
        block = jll[start:start + ROW_BLOCK]
        first_max = np.argmax(block, axis=1)
        row_max = np.take_along_axis(block, first_max[:, None], axis=1)
        shift = np.where(np.isfinite(row_max), row_max, 0.0)
        terms = np.exp(block - shift)
        np.put_along_axis(terms, first_max[:, None], 0.0, axis=1)
        rest = np.cumsum(terms, axis=1)[:, -1:]
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            log_norm = np.where(np.isfinite(row_max), row_max + np.log1p(rest),
                                np.log(rest + np.exp(row_max)))
        with np.errstate(invalid="ignore"):  # -inf - (-inf): NaN, as scikit-learn
            result = block - log_norm
        if exponentiate:
            np.exp(result, out=result)
        out[start:start + ROW_BLOCK] = result


# ---------------------------------------------------------------------------------------------
# Fits
# ---------------------------------------------------------------------------------------------

# The row partition of the compiled fit kernels depends on the shape only (never on the
# number of threads), so their sums are added in the same order on any machine.
FIT_MAX_CHUNKS = 32
FIT_MIN_CHUNK_ROWS = 4096
FIT_PARTIAL_BUDGET = 1 << 20  # float64 entries of one (n_chunks, n_classes, n_features) table


def fit_partition(n_samples, n_features, n_classes):
    """Fixed row partition of the compiled fit kernels.

    Returns
    -------
    n_chunks : int
        Chunks of ``ceil(n_samples / n_chunks)`` consecutive rows, each summed
        by one thread into its own table; at most ``FIT_MAX_CHUNKS``, at least
        ``FIT_MIN_CHUNK_ROWS`` rows each, and with the partial tables within
        ``FIT_PARTIAL_BUDGET`` entries (one chunk, serial, beyond).
    block_rows : int
        Rows per block of :func:`gaussian_class_moments` (about 256 KiB of
        float64 rows, so a block is still in cache for its second pass).
    """
    block_rows = max(64, min(4096, 32768 // max(n_features, 1)))
    by_rows = -(-n_samples // FIT_MIN_CHUNK_ROWS)
    by_memory = FIT_PARTIAL_BUDGET // max(1, n_classes * n_features)
    return max(1, min(FIT_MAX_CHUNKS, by_rows, by_memory)), block_rows


def gaussian_class_moments(X, y_index, sample_weight, class_weight, mean, m2, n_threads):
    r"""Per-class weight, mean and centred sum of squares of the rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
    y_index : ndarray of shape (n_samples,), intp
        Class of each row, ``0 <= y_index[i] < n_classes``.
    sample_weight : ndarray of shape (n_samples,) or (0,), float64
        Weight of each row; an empty array means every weight is 1.
    class_weight : ndarray of shape (n_classes,), float64
        Written: :math:`W_c`, the summed weight (the row count if unweighted).
    mean : ndarray of shape (n_classes, n_features), float64
        Written: the weighted mean of each class (0 where :math:`W_c = 0`).
    m2 : ndarray of shape (n_classes, n_features), float64
        Written: :math:`M_{cj} = \sum_{y_i = c} w_i (x_{ij} - \bar x_{cj})^2`
        (so the biased variance is ``m2 / class_weight``; 0 where
        :math:`W_c = 0`).
    n_threads : int
        Ignored.

    Notes
    -----
    Scikit-learn's computation, class by class: ``np.mean`` and the mean of
    the squared deviations (``np.average`` with weights). This reference
    copies the rows of each class to float64.
    """
    weighted = sample_weight.shape[0] > 0
    for c in range(class_weight.shape[0]):
        rows = y_index == c
        X_c = X[rows].astype(np.float64)
        w = sample_weight[rows] if weighted else None
        total = float(w.sum()) if weighted else float(X_c.shape[0])
        class_weight[c] = total
        if X_c.shape[0] == 0 or total == 0.0:
            mean[c] = 0.0
            m2[c] = 0.0
            continue
        mean[c] = (w @ X_c) / total if weighted else X_c.mean(axis=0)
        squares = (X_c - mean[c]) ** 2
        m2[c] = w @ squares if weighted else squares.sum(axis=0)


def class_feature_sums_dense(X, y_index, sample_weight, binarize_threshold, out, n_threads):
    r"""Weighted per-class sums of the (binarised) features of dense ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
    y_index : ndarray of shape (n_samples,), intp
    sample_weight : ndarray of shape (n_samples,) or (0,), float64
        Empty: every weight is 1.
    binarize_threshold : float
        NaN: sum ``X`` as it is; else sum ``X > binarize_threshold`` (0 or 1).
    out : ndarray of shape (n_classes, n_features), float64
        Written: :math:`\sum_{y_i = c} w_i v(x_{ij})`.
    n_threads : int
        Ignored.

    Notes
    -----
    Scikit-learn's product ``Y.T @ v(X)`` with the one-hot, weighted ``Y``,
    written as one sum per class over its rows. This reference copies the
    rows of each class to float64.
    """
    weights = sample_weight if sample_weight.shape[0] > 0 else np.ones(X.shape[0])
    for c in range(out.shape[0]):
        rows = y_index == c
        values = _values(X[rows], binarize_threshold)
        out[c] = (weights[rows, None] * values).sum(axis=0)


def class_feature_sums_csr(data, indices, indptr, y_index, sample_weight, binarize_threshold,
                           out, n_threads):
    """Weighted per-class sums of the (binarised) features of a CSR matrix.

    Parameters
    ----------
    data, indices, indptr : ndarray
        The three arrays of a CSR matrix with ``out.shape[1]`` columns (any
        order of the indices, duplicates allowed; checked by the caller).
    y_index, sample_weight, binarize_threshold, out, n_threads
        As in :func:`class_feature_sums_dense`.

    Notes
    -----
    Only the stored entries are visited (``v(0) = 0``): one ``np.add.at``
    of ``w_i v(data[k])`` at ``(y_index[i], indices[k])``. The reference
    expands the row of each stored entry (an ``nnz`` array).
    """
    weights = sample_weight if sample_weight.shape[0] > 0 else np.ones(indptr.shape[0] - 1)
    rows = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
    first = indptr[0]
    values = _values(data[first:first + rows.shape[0]], binarize_threshold) * weights[rows]
    out[:] = 0.0
    np.add.at(out, (y_index[rows], indices[first:first + rows.shape[0]]), values)


def categorical_class_counts(X, y_index, sample_weight, offsets, out, n_threads):
    """Weighted counts of each (feature, category, class), the tables stacked.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), intp, C-contiguous
        Category codes, ``0 <= X[:, j] < n_categories_j`` (checked by the caller).
    y_index : ndarray of shape (n_samples,), intp
    sample_weight : ndarray of shape (n_samples,) or (0,), float64
        Empty: every weight is 1.
    offsets : ndarray of shape (n_features,), intp
        First row of feature j's table in ``out``.
    out : ndarray of shape (sum of n_categories_j, n_classes), float64
        Written: ``out[offsets[j] + k, c]`` = the summed weight of the rows of
        class c whose feature j is k.
    n_threads : int
        Ignored.

    Notes
    -----
    Scikit-learn's ``np.bincount`` per feature and class; here one
    ``np.add.at`` per feature, in row order.
    """
    weights = sample_weight if sample_weight.shape[0] > 0 else np.ones(X.shape[0])
    out[:] = 0.0
    for j in range(X.shape[1]):
        np.add.at(out, (offsets[j] + X[:, j], y_index), weights)
