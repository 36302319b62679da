r"""Categorical features: pandas category columns in, xgboost's categorical splits out.

Input (``enable_categorical=True``, as xgboost): every pandas ``category``
column is a categorical feature whose value is the category's code in the
column's ``categories`` (missing entries, code -1, become NaN); at predict
time the codes are re-coded by value to the training categories (so a frame
whose categories are ordered differently predicts the same), and a category
unseen in training is a ValueError, as xgboost 3 does. NumPy input may mark
features categorical with ``feature_types`` ("c"; values are the codes,
non-negative integers).

Binning: a categorical feature with largest code :math:`C - 1` gets the
:math:`C` bins :math:`0 .. C-1` (bin = code; xgboost's cuts are the codes
themselves), so at most 256 categories (255 with missing values).

Splits: :mod:`fastscratch.kernels.categorical_numpy` (one-hot below
``max_cat_to_onehot`` categories, else the best prefix of the categories
sorted by leaf weight, at most ``max_cat_threshold``); rows whose category is
in the split's set go right, as in xgboost.
"""

import numpy as np

from .._backend import resolve_kernel

MAX_CATEGORIES = 256


def is_pandas_frame(X):
    return hasattr(X, "dtypes") and hasattr(X, "columns") and hasattr(X, "iloc")


def categorical_columns(X):
    """Indices of a pandas frame's ``category`` columns (empty for anything else)."""
    if not is_pandas_frame(X):
        return np.empty(0, dtype=np.intp)
    return np.array([i for i, dtype in enumerate(X.dtypes) if str(dtype) == "category"],
                    dtype=np.intp)


def check_feature_types(feature_types, n_features):
    """Boolean mask of the features marked "c" in ``feature_types`` (None: none)."""
    if feature_types is None:
        return np.zeros(n_features, dtype=bool)
    types = list(feature_types)
    if len(types) != n_features:
        raise ValueError(f"feature_types has {len(types)} entries, X has {n_features} features; "
                         "give one type per feature ('q' numeric, 'c' categorical).")
    unknown = sorted({t for t in types if t not in ("q", "c", "float", "int", "i")}, key=str)
    if unknown:
        raise ValueError(f"feature_types has unknown types {unknown}; use 'q' (numeric) or "
                         "'c' (categorical).")
    return np.array([t == "c" for t in types], dtype=bool)


def encode_frame(X, enable_categorical, training_categories=None):
    """A pandas frame with category columns as float codes; returns (X, categories).

    Parameters
    ----------
    X : DataFrame or array-like
    enable_categorical : bool
    training_categories : dict or None
        ``{column index: categories}`` seen in fit; None when fitting.

    Returns
    -------
    X : DataFrame of float64 codes (same columns and index), or ``X`` unchanged when it
        has no category column
    categories : dict
        ``{column index: pandas Index of categories}`` of the category columns.
    """
    columns = categorical_columns(X)
    if columns.size == 0:  # NumPy data (categories as codes), or a frame without categories
        return X, {}
    if not enable_categorical:
        names = [str(X.columns[i]) for i in columns[:5]]
        raise ValueError(f"X has pandas category columns {names}; pass "
                         "enable_categorical=True to use them as categorical features (or "
                         "convert them to numbers first).")
    import pandas as pd

    out = np.empty(X.shape, dtype=np.float64)
    categories = {}
    for i in range(X.shape[1]):
        column = X.iloc[:, i]
        if i not in columns:
            out[:, i] = pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64,
                                                                         na_value=np.nan)
            continue
        if training_categories is not None and i not in training_categories:
            raise ValueError(f"column {X.columns[i]!r} is categorical here but was numeric in "
                             "fit.")
        if training_categories is None or training_categories[i] is None:
            # Fitting, or a model read without xgboost's category table: the codes as given.
            known = column.cat.categories
            codes = column.cat.codes.to_numpy()
        else:
            known = training_categories[i]
            unseen = ~column.cat.categories.isin(known)
            present = column.cat.categories[unseen][
                np.isin(np.flatnonzero(unseen), column.cat.codes.to_numpy())]
            if present.size:
                raise ValueError(f"column {X.columns[i]!r} has categories not seen in fit: "
                                 f"{list(present[:5])}; map them to a known category or "
                                 "to NaN first (xgboost refuses them too).")
            codes = pd.Categorical(column, categories=known).codes
        if known.size > MAX_CATEGORIES:
            raise ValueError(f"column {X.columns[i]!r} has {known.size} categories; at most "
                             f"{MAX_CATEGORIES} are supported (bin codes are uint8).")
        out[:, i] = np.where(codes < 0, np.nan, codes)
        categories[i] = known if training_categories is None else training_categories[i]
    if training_categories is not None:
        numeric_now = sorted(set(training_categories) - set(categories))
        if numeric_now:
            raise ValueError(f"columns {numeric_now} were categorical in fit but are not "
                             "category columns here.")
    return pd.DataFrame(out, columns=X.columns, index=X.index), categories


def category_cuts(column):
    """Cut points of a categorical feature (our convention: bin = code) and its min value.

    ``column`` holds non-negative integer codes (NaN missing). The cuts
    ``1, 2, ..., C`` put code ``c`` in bin ``c`` (:mod:`.binning`'s
    ``c_{b-1} <= x < c_b``).
    """
    present = column[~np.isnan(column)]
    if present.size and (np.any(present < 0) or np.any(present != np.floor(present))):
        raise ValueError("a categorical feature must hold non-negative integer codes "
                         f"(got e.g. {present[(present < 0) | (present != np.floor(present))][0]!r})"
                         "; encode the categories as 0, 1, 2, ... (NaN for missing).")
    n_categories = int(present.max()) + 1 if present.size else 1
    limit = MAX_CATEGORIES - (1 if present.size < column.size else 0)
    if n_categories > limit:
        raise ValueError(f"a categorical feature has codes up to {n_categories - 1}; at most "
                         f"{limit} categories are supported (codes 0..{limit - 1}; bin codes are "
                         "uint8, and the missing value takes one).")
    return np.arange(1, n_categories + 1, dtype=np.float32), np.float32(0.0)


class CategoricalSplits:
    """What the grower needs for categorical features: their split search and partition.

    Parameters
    ----------
    mask : ndarray of shape (d,), bool
        The categorical features.
    max_cat_to_onehot, max_cat_threshold : int
    backend : str
    """

    def __init__(self, mask, max_cat_to_onehot=4, max_cat_threshold=64, backend="auto"):
        self.mask = np.asarray(mask, dtype=bool)
        self.features = np.flatnonzero(self.mask).astype(np.intp)
        self.position = {int(f): i for i, f in enumerate(self.features)}
        self.max_cat_to_onehot = int(max_cat_to_onehot)
        self.max_cat_threshold = int(max_cat_threshold)
        self.find_kernel = resolve_kernel("find_categorical_splits", backend)[0]
        self.partition_kernel = resolve_kernel("partition_rows_categorical", backend)[0]

    def numeric_only(self, allowed):
        """``allowed`` (k, d) with the categorical features masked out (for the numeric search)."""
        numeric = np.array(allowed, dtype=np.uint8, copy=True)
        numeric[:, self.features] = 0
        return numeric

    def find_splits(self, grower, hists, sums, scores, allowed, gain, split_bin, default_left,
                    left_sums):
        """The categorical features' best splits, written into the numeric search's outputs.

        Returns ``categories(j, f)``: the mask of categories going right of node ``j``'s
        split on categorical feature ``f`` (None for a numeric ``f``).
        """
        k = hists.shape[0]
        out = np.empty((k, self.features.shape[0], hists.shape[2]), dtype=np.uint8)
        self.find_kernel(hists, grower.n_bins, self.features, sums, scores, grower.params,
                         np.ascontiguousarray(allowed), self.max_cat_to_onehot,
                         self.max_cat_threshold, gain, default_left, left_sums, out,
                         grower.n_threads)
        split_bin[:, self.features] = -1

        def categories(j, f):
            i = self.position.get(int(f))
            return None if i is None else out[j, i, :grower.n_bins[f]].copy()
        return categories

    def partition(self, grower, splitting):
        """Partition the rows of the nodes split on a category set; returns the other nodes."""
        chosen = [node for node in splitting if node.split.categories is not None]
        if not chosen:
            return splitting
        k = len(chosen)
        sets = np.zeros((k, grower.n_slots), dtype=np.uint8)
        for j, node in enumerate(chosen):
            mask = node.split.categories
            sets[j, :mask.shape[0]] = mask
        n_left = np.empty(k, dtype=np.intp)
        self.partition_kernel(
            grower.binned_columns, grower.rows,
            np.array([node.start for node in chosen], dtype=np.intp),
            np.array([node.stop for node in chosen], dtype=np.intp),
            np.array([node.split.feature for node in chosen], dtype=np.intp), sets,
            np.array([node.split.default_left for node in chosen], dtype=np.uint8),
            grower.n_bins, grower.scratch, n_left, grower.n_threads)
        for node, count in zip(chosen, n_left):
            node.n_left = int(count)
        return [node for node in splitting if node.split.categories is None]
