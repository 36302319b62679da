"""LloydState, the k-means core of KMeans and the Dask KMeans, against its definitions in NumPy."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from fastscratch.kernels import get_kernel
from fastscratch.kmeans_core import LloydState


def _iris(dtype):
    X = load_iris().data.astype(dtype)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0]).astype(dtype)
    return X - X.mean(axis=0), weights, X[[0, 60, 120]].copy() - X.mean(axis=0)


def _nearest(X, centers):
    """Labels by the definition: argmin_j ||x_i - c_j||^2 in float64 (iris has no near ties here)."""
    X, centers = X.astype(np.float64), centers.astype(np.float64)
    return ((X[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pass_gives_labels_sums_and_weights_of_the_definition(backend, dtype):
    X, w, centers = _iris(dtype)
    kernel = get_kernel("kmeans_lloyd_iter", backend)
    state = LloydState(X.shape[0], 3, X.shape[1]).lloyd_pass(kernel, X, w, centers, True, 2)
    labels = _nearest(X, centers)
    np.testing.assert_array_equal(state.labels, labels)
    assert state.n_changed == X.shape[0]  # every label was -1
    w64 = w.astype(np.float64)
    np.testing.assert_allclose(state.weights, np.bincount(labels, weights=w64, minlength=3), rtol=1e-12)
    sums = np.stack([(X[labels == j].astype(np.float64) * w64[labels == j, None]).sum(axis=0)
                     for j in range(3)])
    np.testing.assert_allclose(state.sums, sums, rtol=1e-12, atol=1e-12)
    inertia = (w64 * ((X.astype(np.float64) - centers.astype(np.float64)[labels]) ** 2).sum(axis=1)).sum()
    assert state.inertia == pytest.approx(inertia, rel=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(state.centers(centers, dtype), sums / state.weights[:, None],
                               rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert state.centers(centers, dtype).dtype == dtype
    # The next pass from the new centres moves only the rows that change cluster.
    new_centers = state.centers(centers, dtype)
    moved = int(np.count_nonzero(_nearest(X, new_centers) != labels))
    assert state.lloyd_pass(kernel, X, w, new_centers, False, 1).n_changed == moved
    assert state.inertia == 0.0


def test_block_totals_give_the_whole_pass(backend):
    """The Dask fit's contract: states of row blocks, summed (from_totals), give the centres of one state on all rows."""
    X, w, centers = _iris(np.float64)
    kernel = get_kernel("kmeans_lloyd_iter", backend)
    whole = LloydState(X.shape[0], 3, X.shape[1]).lloyd_pass(kernel, X, w, centers, True, 1)
    blocks = [LloydState(50, 3, X.shape[1]).lloyd_pass(kernel, X[s:s + 50], w[s:s + 50], centers, True, 1)
              for s in range(0, 150, 50)]
    total = LloydState.from_totals(sum(b.sums for b in blocks), sum(b.weights for b in blocks),
                                   sum(b.inertia for b in blocks), sum(b.n_changed for b in blocks))
    np.testing.assert_array_equal(np.concatenate([b.labels for b in blocks]), whole.labels)
    assert total.n_changed == whole.n_changed == 150
    assert total.inertia == pytest.approx(whole.inertia, rel=1e-12)
    np.testing.assert_allclose(total.centers(centers, X.dtype), whole.centers(centers, X.dtype), rtol=1e-12)


def test_empty_cluster_takes_the_farthest_row():
    sums = np.array([[6.0, 0.0], [0.0, 0.0], [30.0, 3.0]])
    weights = np.array([3.0, 0.0, 3.0])
    state = LloydState.from_totals(sums.copy(), weights.copy())
    asked = []

    def farthest(m):
        asked.append(m)
        # row [12, 3] (weight 2) of cluster 2, 25 from its centre
        return np.array([25.0]), np.array([[12.0, 3.0]]), np.array([2.0]), np.array([2])

    state.relocate_empty(farthest)
    assert asked == [1]
    np.testing.assert_array_equal(state.weights, [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(state.sums, [[6.0, 0.0], [24.0, 6.0], [6.0, -3.0]])
    np.testing.assert_array_equal(state.centers(np.zeros((3, 2)), np.float64),
                                  [[2.0, 0.0], [12.0, 3.0], [6.0, -3.0]])
    # Nothing empty: farthest is not called; every row on its centre: nothing moves.
    state.relocate_empty(lambda m: pytest.fail("farthest called with no empty cluster"))
    still = LloydState.from_totals(sums.copy(), weights.copy())
    still.relocate_empty(lambda m: (np.zeros(m), np.zeros((m, 2)), np.ones(m), np.zeros(m, dtype=int)))
    np.testing.assert_array_equal(still.weights, weights)


def test_cluster_still_empty_goes_where_scikit_learn_puts_it():
    """More clusters than distinct rows: an empty j takes the heaviest cluster's centre (if
    that one comes before j) or its raw sum, as scikit-learn's loop over j leaves it."""
    state = LloydState.from_totals(np.array([[0.0, 0.0], [8.0, 4.0], [0.0, 0.0]]), np.array([0.0, 4.0, 0.0]))
    centers = state.centers(np.zeros((3, 2)), np.float64)
    np.testing.assert_array_equal(centers, [[8.0, 4.0], [2.0, 1.0], [2.0, 1.0]])
