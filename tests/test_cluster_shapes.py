"""KMeans against scikit-learn on the shapes that take each Lloyd ranking path (kmeans_numpy.rank_path)."""

from functools import lru_cache

import numpy as np
import pytest
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import load_digits, load_iris, make_blobs
from threadpoolctl import threadpool_limits

from fastscratch import KMeans
from fastscratch.kernels.kmeans_numpy import (RANK_DIRECT, RANK_EXACT, RANK_ROWS, RANK_TRANSPOSED,
                                              rank_path)

RTOL = {np.float64: 1e-10, np.float32: 1e-5}

# name -> (data, n_clusters, the path the Cython kernel takes)
CASES = {
    "iris_2_features": (lambda: load_iris().data[:, 2:], 5, RANK_DIRECT),
    "blobs_2_features": (lambda: make_blobs(6000, 2, centers=12, cluster_std=2.0, random_state=0)[0],
                         12, RANK_DIRECT),
    "digits_16_features": (lambda: load_digits().data[:, 20:36], 30, RANK_ROWS),
    "digits_16_features_k70": (lambda: load_digits().data[:, 20:36], 70, RANK_ROWS),
    "digits_64_features_k10": (lambda: load_digits().data, 10, RANK_EXACT),
    "digits_64_features_k70": (lambda: load_digits().data, 70, RANK_ROWS),
    "blobs_200_features": (lambda: make_blobs(2000, 200, centers=80, cluster_std=8.0,
                                              random_state=1)[0], 80, RANK_ROWS),
}


@lru_cache(maxsize=None)
def sklearn_fit(name, dtype):
    make, k, _ = CASES[name]
    X = make().astype(dtype)
    with threadpool_limits(limits=1, user_api="openmp"):
        ref = SKKMeans(k, n_init=1, random_state=0).fit(X)
    return X, k, ref


@pytest.mark.parametrize("name", list(CASES))
def test_case_takes_its_path(name):
    make, k, path = CASES[name]
    assert rank_path(make().shape[1], k) == path
    if make().shape[1] > 2 and k < 64:  # float32 data with fewer than 64 centres: the exact path
        assert rank_path(make().shape[1], k, np.float32) == RANK_EXACT
    if name == "digits_16_features_k70":  # float32, 16 features, many centres: transposed block
        assert rank_path(make().shape[1], k, np.float32) == RANK_TRANSPOSED


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CASES))
def test_lloyd_same_as_sklearn_on_each_path(backend, name, dtype):
    X, k, ref = sklearn_fit(name, dtype)
    ours = KMeans(k, n_init=1, random_state=0, backend=backend).fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    scale = np.abs(ref.cluster_centers_).max()
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * scale)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=RTOL[dtype])
    np.testing.assert_array_equal(ours.predict(X[::7]), ref.predict(X[::7]))
