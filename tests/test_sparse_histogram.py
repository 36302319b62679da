"""Boosting on sparse input from its stored entries only (kernels/sparse_histogram_*).

The kernels of every backend against the NumPy reference and against the dense
kernels on the same data dense with NaN, bit for bit, on 1 and 2 threads; fits
through the sparse path give the trees of the dense-with-NaN fit (which
tests/test_boosting_api.py compares with xgboost's given its cuts).
"""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal

from fastscratch import XGBClassifier, XGBRegressor
from fastscratch.boosting import sparse as sparse_module
from fastscratch.boosting.binning import BinMapper
from fastscratch.kernels import available_backends, get_kernel

BACKENDS = available_backends()


@pytest.fixture(scope="module")
def counts():
    """A term-count matrix (3% dense, Poisson counts: some stored zeros), one stored NaN,
    a linear target, and the same data dense with NaN for absent entries."""
    rng = np.random.default_rng(0)
    n, d = 2000, 300
    X = sp.random(n, d, density=0.03, format="csr", random_state=2,
                  data_rvs=lambda k: rng.poisson(2.0, k).astype(np.float32)).astype(np.float32)
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    X.data[5] = np.nan  # a stored NaN is missing, as an absent entry
    dense = np.full(X.shape, np.nan, dtype=np.float32)
    coo = X.tocoo()
    dense[coo.row, coo.col] = coo.data
    return X, y, dense


def _level(n, rng):
    """Rows in a random order split into 5 nodes (one empty)."""
    rows = rng.permutation(n).astype(np.intp)
    cuts = np.sort(rng.choice(n, 4, replace=False))
    starts = np.array([0, *cuts], dtype=np.intp)
    stops = np.array([*cuts, n], dtype=np.intp)
    stops[2] = starts[2]  # an empty node
    return rows, starts, stops


def test_codes_equal_dense_codes(counts):
    X, _, dense = counts
    mapper = BinMapper(max_bin=32).fit(X)
    expected = mapper.transform(dense)
    missing = mapper.n_bins_[None, :].repeat(X.shape[0], axis=0)
    for backend in BACKENDS:
        mapper.backend = backend
        bins = mapper.transform_sparse(X)
        table = np.broadcast_to(mapper.n_bins_, X.shape).astype(np.uint8).copy()
        rows = np.repeat(np.arange(X.shape[0]), np.diff(bins.indptr))
        table[rows, bins.indices] = bins.codes
        assert_array_equal(table, expected, err_msg=backend)
        assert bins.codes.shape[0] == X.nnz - 1  # the stored NaN has no code
        # The column copy holds the same entries.
        by_column = missing.astype(np.uint8)
        cols = np.repeat(np.arange(X.shape[1]), np.diff(bins.col_ptr))
        by_column[bins.col_rows, cols] = bins.col_codes
        assert_array_equal(by_column, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_histograms_equal_reference_and_dense(counts, backend):
    X, _, dense = counts
    rng = np.random.default_rng(1)
    mapper = BinMapper(max_bin=16).fit(X)
    bins = mapper.transform_sparse(X)
    binned = mapper.transform(dense)
    n, d = X.shape
    gradients = rng.normal(size=n).astype(np.float32)
    hessians = rng.uniform(0.1, 1.0, size=n).astype(np.float32)
    rows, starts, stops = _level(n, rng)
    n_slots = int(mapper.n_bins_.max()) + 1
    missing_bins = mapper.n_bins_.astype(np.intp)
    results = []
    for name, n_threads in (("numpy", 1), (backend, 1), (backend, 2)):
        out = np.full((len(starts), d, n_slots, 2), np.nan)
        get_kernel("build_sparse_histograms", name)(
            bins.indptr, bins.indices, bins.codes, rows, starts, stops, gradients, hessians,
            missing_bins, out, n_threads)
        results.append(out)
    assert_array_equal(results[1], results[0])
    assert_array_equal(results[2], results[0])
    # One node on 2 threads: its features split between the threads, the same bits.
    single = np.full((1, d, n_slots, 2), np.nan)
    get_kernel("build_sparse_histograms", backend)(
        bins.indptr, bins.indices, bins.codes, rows, starts[:1], stops[:1], gradients, hessians,
        missing_bins, single, 2)
    assert_array_equal(single, results[0][:1])
    dense_hists = np.zeros_like(results[0])
    get_kernel("build_histograms", "numpy")(binned, rows, starts, stops, gradients, hessians,
                                            dense_hists, 1)
    # Present bins: the dense kernels' bits; missing slots: the node's sums minus them.
    present = np.arange(n_slots)[None, :] < missing_bins[:, None]
    assert_array_equal(results[0][:, present], dense_hists[:, present])
    np.testing.assert_allclose(results[0], dense_hists, rtol=1e-9, atol=1e-9)
    # A feature stored for every row of a node has exactly 0 in its missing slot.
    full = np.isnan(dense[rows[starts[0]:stops[0]]]).sum(axis=0) == 0
    if full.any():
        assert np.all(results[0][0, full, missing_bins[full]] == 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_partition_equals_dense(counts, backend):
    X, _, dense = counts
    rng = np.random.default_rng(2)
    mapper = BinMapper(max_bin=16).fit(X)
    bins = mapper.transform_sparse(X)
    binned = np.asfortranarray(mapper.transform(dense))
    n = X.shape[0]
    rows, starts, stops = _level(n, rng)
    k = len(starts)
    features = rng.choice(X.shape[1], k).astype(np.intp)
    split_bins = np.array([rng.integers(-1, mapper.n_bins_[f]) for f in features], dtype=np.intp)
    default_lefts = rng.integers(0, 2, k).astype(np.uint8)
    expected_rows, expected_left = rows.copy(), np.empty(k, dtype=np.intp)
    get_kernel("partition_rows", "numpy")(binned, expected_rows, starts, stops, features,
                                          split_bins, default_lefts,
                                          mapper.n_bins_.astype(np.intp),
                                          np.empty(n, dtype=np.intp), expected_left, 1)
    for name, n_threads in (("numpy", 1), (backend, 1), (backend, 2)):
        got_rows, got_left = rows.copy(), np.empty(k, dtype=np.intp)
        marks = np.full(n, 3, dtype=np.intp)  # stale marks must not matter
        get_kernel("partition_sparse_rows", name)(
            bins.col_ptr, bins.col_rows, bins.col_codes, got_rows, starts, stops, features,
            split_bins, default_lefts, marks, np.zeros(n, dtype=np.uint8),
            np.empty(n, dtype=np.intp), got_left, n_threads)
        assert_array_equal(got_rows, expected_rows, err_msg=f"{name} {n_threads}")
        assert_array_equal(got_left, expected_left)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_equals_dense_with_nan(counts, backend, monkeypatch):
    X, y, dense = counts
    used = []
    original = sparse_module.SparseRows.build_histograms
    monkeypatch.setattr(sparse_module.SparseRows, "build_histograms",
                        lambda self, *args: used.append(1) or original(self, *args))
    for params in (dict(n_estimators=4, max_depth=5, max_bin=64),
                   dict(n_estimators=3, grow_policy="lossguide", max_leaves=16, max_depth=0)):
        ours = [XGBRegressor(backend=backend, n_jobs=t, **params).fit(X, y).predict(dense)
                for t in (1, 2)]
        reference = XGBRegressor(backend=backend, n_jobs=2, **params).fit(dense, y)
        assert_array_equal(ours[0], reference.predict(dense))
        assert_array_equal(ours[1], ours[0])
    assert used  # the fits went through the sparse path
    labels = np.digitize(y, np.quantile(y, [0.3, 0.7]))
    proba = XGBClassifier(n_estimators=3, max_depth=4, backend=backend).fit(X.tocsc(), labels)
    expected = XGBClassifier(n_estimators=3, max_depth=4, backend=backend).fit(dense, labels)
    assert_array_equal(proba.predict_proba(dense), expected.predict_proba(dense))


def test_dense_path_above_threshold_and_with_subsampling(counts):
    X, _, _ = counts
    assert sparse_module.use_sparse_path(X, 1.0, np.zeros(X.shape[1], dtype=bool))
    assert not sparse_module.use_sparse_path(X, 0.5, None)
    assert not sparse_module.use_sparse_path(X.toarray(), 1.0, None)
    dense_enough = sp.csr_matrix(np.ones((10, 10), dtype=np.float32))
    assert not sparse_module.use_sparse_path(dense_enough, 1.0, None)


def test_full_bins_with_absent_entries_are_refused():
    """256 bins leave no code for missing: xgboost's cuts of 256 bins on a column with
    absent entries get the same error as the dense path."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(2000, 3)).astype(np.float32)
    mapper = BinMapper().fit(values)  # no missing values: 256 bins
    assert mapper.n_bins_.max() == 256
    X = sp.csr_matrix(np.where(rng.random(values.shape) < 0.5, values, 0))  # zeros: absent
    with pytest.raises(ValueError, match="max_bin <= 255"):
        mapper.transform_sparse(X)
