"""Binning: map every feature value to a small integer before growing trees.

Histogram-based boosting (xgboost ``tree_method="hist"``, LightGBM,
scikit-learn's ``HistGradientBoosting*``) replaces each value by the index of
the quantile bin it falls in, once, before training. Trees then split on bin
indices, and a node's split search reads a histogram of at most ``max_bin``
entries per feature instead of sorting its rows.

Cut points follow xgboost's conventions, so that xgboost's own cuts
(``xgboost.QuantileDMatrix(X, max_bin=...).get_quantile_cut()``) can be fed to
:class:`BinMapper` and give the same bins:

- feature ``f`` has increasing cut points ``c_0 < c_1 < ... < c_{k-1}``,
  ``k <= max_bin``; the last one lies above the feature's maximum
  (``max + |max| + 1e-5``);
- value ``x`` falls in bin ``b`` with ``c_{b-1} <= x < c_b`` (an
  ``upper_bound`` search), so the split "bins ``<= b`` go left" is the test
  ``x < c_b`` on raw data, xgboost's ``split_condition``;
- ``min_values[f] = min - (|min| + 1e-5)`` is the threshold of a split that
  sends every non-missing value right;
- a missing value (NaN) gets the code ``k`` (one past the last bin): the
  feature's *missing slot* in the histograms; so a feature with missing
  values has at most 255 bins (256 with xgboost's cuts raise an error);
- in a scipy sparse matrix (CSR or CSC), an absent entry is missing, as in
  xgboost (a stored 0 is the value 0). Sparse data are never densified
  whole: cut points come from each column's stored values, and bin codes are
  written a block of rows at a time (:func:`dense_rows`).

Our own cut points are quantiles of each feature computed on at most
``subsample`` rows (xgboost and LightGBM sketch or sample too): with at most
``max_bin`` distinct values, every distinct value but the smallest is a cut
point (xgboost does the same); otherwise the ``i / max_bin`` quantiles.
"""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from .._backend import effective_n_threads, resolve_kernel
from .categorical import category_cuts as _category_cuts

MAX_BIN = 256
SPARSE_BLOCK_BYTES = 1 << 23
"""Size of the float32 block that rows of a sparse matrix are densified into (8 MB)."""


def sparse_block_rows(n_features):
    """Rows per densified block of a sparse matrix with ``n_features`` columns."""
    return max(1, SPARSE_BLOCK_BYTES // (4 * max(1, int(n_features))))


def dense_rows(X, start, stop):
    """Rows ``start:stop`` of the CSR matrix ``X`` as dense float32, absent entries NaN.

    xgboost's reading of sparse input: an entry that is not stored is missing.
    ``X`` must be in canonical format (no duplicate entries).
    """
    stop = min(stop, X.shape[0])
    first, last = X.indptr[start], X.indptr[stop]
    out = np.full((stop - start, X.shape[1]), np.nan, dtype=np.float32)
    # Flat positions row * n_columns + column of the stored entries (no scipy row slice).
    rows = np.repeat(np.arange(stop - start, dtype=np.intp) * X.shape[1],
                     np.diff(X.indptr[start:stop + 1]))
    out.reshape(-1)[rows + X.indices[first:last]] = X.data[first:last]
    return out


def canonical_csr(X):
    """``X`` (scipy sparse) as CSR without duplicate entries, copied only when needed."""
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def sparse_has_missing(X):
    """Whether the sparse matrix ``X`` has an absent entry or a stored NaN."""
    return X.nnz < X.shape[0] * X.shape[1] or bool(np.isnan(X.data).any())


def _feature_cuts(column, max_bin, absent=False):
    """Cut points (float32, increasing) and min value of one feature's non-missing values.

    A feature with missing values (NaN in ``column``, or ``absent``: entries
    not stored in a sparse column) gets at most 255 bins, so that its missing
    code (the number of bins) still fits in uint8.
    """
    missing = np.isnan(column)
    if missing.any() or absent:
        column = column[~missing]
        max_bin = min(max_bin, MAX_BIN - 1)
    if column.size == 0:
        return np.array([np.float32(np.inf)], dtype=np.float32), np.float32(0.0)
    distinct = np.unique(column)
    low, high = distinct[0], distinct[-1]
    # xgboost computes both in double from the float32 extremes.
    sentinel = np.float32(np.float64(high) + (abs(np.float64(high)) + 1e-5))
    min_value = np.float32(np.float64(low) - (abs(np.float64(low)) + 1e-5))
    if distinct.size <= max_bin:
        inner = distinct[1:]
    else:
        levels = np.arange(1, max_bin) / max_bin
        sorted_column = np.sort(column)
        inner = np.unique(np.quantile(sorted_column, levels, method="lower").astype(np.float32))
        inner = inner[inner > low]
        # At most max_bin - 1 inner cuts, plus the sentinel.
        inner = inner[: max_bin - 1]
    if inner.size and inner[-1] >= sentinel:
        inner = inner[inner < sentinel]
    cuts = np.concatenate([inner, [sentinel]]).astype(np.float32)
    return cuts, min_value


class BinMapper:
    """Quantile binning of a float matrix into uint8 codes (xgboost's cut convention).

    Parameters
    ----------
    max_bin : int, default=256
        Maximum number of bins per feature, in [2, 256].
    subsample : int or None, default=200_000
        Rows used to find the quantiles (None: all rows).
    random_state : int, RandomState or None
        Picks the subsample.
    backend : str, default="auto"
        Backend of the ``map_to_bins`` kernel.
    n_threads : int, default=1
    categorical : ndarray of shape (d,), bool, or None
        Categorical features (:mod:`.categorical`): bin ``c`` is code ``c``,
        cut points ``1, 2, ..., C`` from all rows; None: none.

    Attributes
    ----------
    cut_values_ : ndarray of float32
        All features' cut points, feature ``f`` in ``cut_values_[cut_ptr_[f]:cut_ptr_[f+1]]``.
    cut_ptr_ : ndarray of shape (n_features + 1,), intp
    n_bins_ : ndarray of shape (n_features,), intp
        Bins per feature; also the code of a missing value.
    min_values_ : ndarray of shape (n_features,), float32
    """

    def __init__(self, max_bin=MAX_BIN, subsample=200_000, random_state=None, backend="auto",
                 n_threads=1, categorical=None):
        self.categorical = categorical
        self.max_bin = max_bin
        self.subsample = subsample
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    def fit(self, X, sample_weight=None, category_cuts=None):
        """Find each feature's cut points on (a subsample of) ``X`` (float32, (n, d)).

        Rows of zero ``sample_weight`` are left out (as in xgboost's weighted sketch).
        ``X`` may be a scipy sparse matrix: each column's cuts are those of its
        stored values, its absent entries being missing. ``category_cuts``:
        the categorical features' ``(cuts, min)`` found on every row elsewhere
        (the Dask fit, whose ``X`` here is the sample of rows); None: from ``X``.
        """
        self._check_params()
        if not sp.issparse(X):
            X = np.asarray(X, dtype=np.float32)
        categorical = self._categorical_mask(X.shape[1])
        if categorical.any() and sp.issparse(X):
            raise ValueError("categorical features need dense input (a NumPy array or a pandas "
                             "frame), not a sparse matrix.")
        # A categorical feature's bins are all its codes: found on every row.
        if category_cuts is None:
            category_cuts = {f: _category_cuts(X[:, f]) for f in np.flatnonzero(categorical)}
        if sample_weight is not None and np.any(sample_weight == 0) and np.any(sample_weight > 0):
            X = X[np.asarray(sample_weight) > 0]
        if self.subsample is not None and X.shape[0] > self.subsample:
            rng = check_random_state(self.random_state)
            subset = np.sort(rng.choice(X.shape[0], self.subsample, replace=False))
            X = X[subset]
        if sp.issparse(X):
            columns = X.tocsc(copy=True)
            columns.sum_duplicates()
            n_rows = X.shape[0]
            cuts, mins = zip(*(
                _feature_cuts(columns.data[columns.indptr[f]:columns.indptr[f + 1]]
                              .astype(np.float32), self.max_bin,
                              absent=columns.indptr[f + 1] - columns.indptr[f] < n_rows)
                for f in range(X.shape[1])))
        else:
            cuts, mins = zip(*(category_cuts[f] if categorical[f] else
                               _feature_cuts(X[:, f], self.max_bin) for f in range(X.shape[1])))
        return self._set_cuts(list(cuts), np.array(mins, dtype=np.float32))

    def _categorical_mask(self, n_features):
        if self.categorical is None:
            return np.zeros(n_features, dtype=bool)
        mask = np.asarray(self.categorical, dtype=bool)
        if mask.shape != (n_features,):
            raise ValueError(f"categorical has {mask.shape} entries, X has {n_features} features.")
        return mask

    def _check_params(self):
        """``max_bin`` and ``subsample`` checked before anything is allocated from them."""
        for name, low, high in (("max_bin", 2, MAX_BIN), ("subsample", 1, None)):
            value = getattr(self, name)
            if name == "subsample" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {value!r}.")
            if value < low or (high is not None and value > high):
                raise ValueError(f"{name}={value!r} is out of range: it must be >= {low}"
                                 + (f" and <= {high} (bin codes are uint8)" if high else "")
                                 + ".")

    def set_xgboost_cuts(self, cut_ptr, cut_values):
        """Use xgboost's cut points: ``QuantileDMatrix(X, max_bin=...).get_quantile_cut()``.

        xgboost returns, per numeric feature, its min value followed by its cut points;
        per categorical feature, its codes ``0, 1, ..., C - 1`` (here the cuts ``1, ..., C``).
        """
        cut_ptr = np.asarray(cut_ptr, dtype=np.intp)
        cut_values = np.asarray(cut_values, dtype=np.float32)
        categorical = self._categorical_mask(cut_ptr.shape[0] - 1)
        cuts = [cut_values[cut_ptr[f]:cut_ptr[f + 1]] + np.float32(1.0) if categorical[f]
                else cut_values[cut_ptr[f] + 1:cut_ptr[f + 1]] for f in range(cut_ptr.shape[0] - 1)]
        mins = np.where(categorical, np.float32(0.0), cut_values[cut_ptr[:-1]])
        return self._set_cuts(cuts, mins)

    def _set_cuts(self, cuts, mins):
        sizes = np.array([c.shape[0] for c in cuts], dtype=np.intp)
        if np.any(sizes < 1) or np.any(sizes > MAX_BIN):
            raise ValueError(f"each feature needs between 1 and {MAX_BIN} cut points; got "
                             f"{sizes.min()}..{sizes.max()}.")
        self.cut_ptr_ = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        self.cut_values_ = np.ascontiguousarray(np.concatenate(cuts), dtype=np.float32)
        self.n_bins_ = sizes
        self.min_values_ = np.asarray(mins, dtype=np.float32)
        return self

    def transform(self, X):
        """uint8 bin codes of ``X`` (float32, (n, d), C-contiguous, or scipy sparse).

        A sparse ``X`` is binned a block of rows at a time (:func:`dense_rows`,
        absent entries missing) into the one (n, d) uint8 matrix of codes.
        """
        kernel, _ = resolve_kernel("map_to_bins", self.backend)
        n_threads = effective_n_threads(self.n_threads)
        if sp.issparse(X):
            X = canonical_csr(X)
            binned = np.empty(X.shape, dtype=np.uint8)
            step = sparse_block_rows(X.shape[1])
            for first in range(0, X.shape[0], step):
                block = dense_rows(X, first, first + step)
                self._check_missing_fits(block)
                kernel(block, self.cut_values_, self.cut_ptr_,
                       binned[first:first + block.shape[0]], n_threads)
            return binned
        X = np.ascontiguousarray(X, dtype=np.float32)
        self._check_missing_fits(X)
        binned = np.empty(X.shape, dtype=np.uint8)
        kernel(X, self.cut_values_, self.cut_ptr_, binned, n_threads)
        return binned

    def transform_sparse(self, X):
        """A CSR table of bin codes of the sparse ``X``, never densified (:class:`SparseBins`).

        Absent entries and stored NaN get no code (both are missing); the
        other stored values get the codes :meth:`transform` gives them.
        """
        kernel, _ = resolve_kernel("map_sparse_to_bins", self.backend)
        X = canonical_csr(X)
        data = X.data.astype(np.float32, copy=False)
        indptr, indices = X.indptr, X.indices
        if np.isnan(data).any():  # a stored NaN is missing, as an absent entry
            keep = ~np.isnan(data)
            owner = np.repeat(np.arange(X.shape[0]), np.diff(indptr))
            indptr = np.concatenate([[0], np.cumsum(np.bincount(owner[keep],
                                                                minlength=X.shape[0]))])
            data, indices = data[keep], indices[keep]
        indptr = indptr.astype(np.intp)
        indices = np.ascontiguousarray(indices, dtype=np.int32)
        stored = np.bincount(indices, minlength=X.shape[1])
        full = (self.n_bins_ >= MAX_BIN) & (stored < X.shape[0])
        if full.any():
            raise ValueError(
                f"features {np.flatnonzero(full)[:10].tolist()} have {MAX_BIN} bins "
                "and missing values, whose code would not fit in uint8; use max_bin <= 255 "
                "for data with missing values.")
        codes = np.empty(data.shape[0], dtype=np.uint8)
        kernel(np.ascontiguousarray(data), indices, self.cut_values_, self.cut_ptr_, codes,
               effective_n_threads(self.n_threads))
        return SparseBins(X.shape, indptr, indices, codes)

    def _check_missing_fits(self, X):
        """A feature of 256 bins cannot have missing values (their code would be 256)."""
        full = self.n_bins_ >= MAX_BIN
        if full.any():
            with_missing = full & np.isnan(X).any(axis=0)
            if with_missing.any():
                raise ValueError(
                    f"features {np.flatnonzero(with_missing)[:10].tolist()} have {MAX_BIN} bins "
                    "and missing values, whose code would not fit in uint8; use max_bin <= 255 "
                    "for data with missing values.")

    def thresholds(self, features, bins):
        """Raw-value thresholds ``x < t`` of splits given as (feature, bin); bin -1 is the min."""
        features = np.asarray(features, dtype=np.intp)
        bins = np.asarray(bins, dtype=np.intp)
        out = self.cut_values_[self.cut_ptr_[features] + np.maximum(bins, 0)]
        return np.where(bins < 0, self.min_values_[features], out).astype(np.float32)


class SparseBins:
    """Bin codes of a sparse matrix's stored entries, by row (CSR) and by column (CSC).

    Parameters
    ----------
    shape : (n, d)
    indptr : ndarray of shape (n + 1,), intp
    indices : ndarray of shape (nnz,), int32
        Sorted within each row.
    codes : ndarray of shape (nnz,), uint8
        Each stored value's bin; an absent entry is missing (no code).

    Attributes
    ----------
    col_ptr : ndarray of shape (d + 1,), intp
    col_rows : ndarray of shape (nnz,), int32
    col_codes : ndarray of shape (nnz,), uint8
        The same table by column, read by the partitions (a split reads one feature).
    """

    def __init__(self, shape, indptr, indices, codes):
        self.shape = tuple(shape)
        self.indptr, self.indices, self.codes = indptr, indices, codes
        # scipy's CSR to CSC keeps every stored entry (a code 0 too), rows increasing.
        columns = sp.csr_matrix((codes, indices, indptr), shape=self.shape).tocsc()
        self.col_ptr = columns.indptr.astype(np.intp)
        self.col_rows = np.ascontiguousarray(columns.indices, dtype=np.int32)
        self.col_codes = np.ascontiguousarray(columns.data, dtype=np.uint8)

    @property
    def density(self):
        """Stored entries over ``n * d``."""
        return self.codes.shape[0] / max(1, self.shape[0] * self.shape[1])
