"""sparse_*_topk (CSR brute force): every backend against the NumPy reference and the dense answer."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import cdist

from fastscratch.kernels import get_kernel

KERNELS = {"sparse_sqeuclidean_topk": "sqeuclidean", "sparse_manhattan_topk": "cityblock",
           "sparse_cosine_topk": "cosine"}


def csr_arrays(matrix):
    matrix = sp.csr_matrix(matrix)
    matrix.sum_duplicates()
    return (matrix.data, matrix.indices.astype(np.intp), matrix.indptr.astype(np.intp))


def run_sparse(name, backend, queries, reference, k, n_threads=2):
    distances = np.empty((queries.shape[0], k))
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    reference = sp.csr_matrix(reference)
    get_kernel(name, backend)(*csr_arrays(queries), *csr_arrays(reference), *csr_arrays(reference.T),
                              distances, indices, n_threads)
    return distances, indices


def _sequential_sum(terms):
    """Sums along the last axis in feature order (the kernels' order), not NumPy's pairwise order."""
    return np.cumsum(terms, axis=-1)[..., -1]


def exact_dense(name, queries, reference):
    """Exact float64 kernel outputs for every pair, from the dense rows.

    Cosine uses the kernels' form 0.5 ||q/|q| - x/|x|||^2 summed in feature
    order: rows without a common feature all lie within rounding of 1, so
    their order is only defined by that exact form.
    """
    q = queries.toarray().astype(np.float64)
    x = reference.toarray().astype(np.float64)
    if name != "sparse_cosine_topk":
        return cdist(q, x, KERNELS[name])
    q_norms = np.sqrt(_sequential_sum(q * q))[:, None]
    x_norms = np.sqrt(_sequential_sum(x * x))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q_scaled = q * np.where(q_norms > 0, 1.0 / q_norms, 0.0)
        x_scaled = x * np.where(x_norms > 0, 1.0 / x_norms, 0.0)
    distances = np.minimum(0.5 * _sequential_sum((q_scaled[:, None, :] - x_scaled[None]) ** 2), 2.0)
    distances[(q_norms == 0)[:, 0]] = 1.0  # a zero row: distance 1, as scikit-learn
    distances[:, (x_norms == 0)[:, 0]] = 1.0
    return distances


def random_csr(rng, n_rows, n_features, density, dtype, integer=False):
    matrix = sp.random(n_rows, n_features, density=density, format="csr", random_state=rng,
                       data_rvs=(lambda n: rng.integers(1, 4, n)) if integer else None)
    return matrix.astype(dtype)


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(60, 800, 120, 0.05, 7), (9, 40, 3, 0.5, 40), (1, 5, 1, 1.0, 2)])
def test_sparse_matches_reference_and_dense(backend, name, dtype, shape, rng):
    n_queries, n_reference, n_features, density, k = shape
    reference = random_csr(rng, n_reference, n_features, density, dtype)
    queries = random_csr(rng, n_queries, n_features, density, dtype)
    result = run_sparse(name, backend, queries, reference, k)
    expected = run_sparse(name, "numpy", queries, reference, k)
    np.testing.assert_array_equal(result[1], expected[1])
    np.testing.assert_allclose(result[0], expected[0], rtol=1e-12, atol=1e-15)
    exact = exact_dense(name, queries, reference)
    order = np.argsort(exact, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(result[1], order)
    np.testing.assert_allclose(result[0], np.take_along_axis(exact, order, 1), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", KERNELS)
def test_sparse_ties_zero_rows_and_duplicates(backend, name, rng):
    # Small integer values: many exact ties; empty rows on both sides; duplicated rows.
    reference = random_csr(rng, 50, 6, 0.3, np.float64, integer=True).toarray()
    reference[[3, 17]] = 0.0
    reference = np.vstack([reference, reference[:10]])
    queries = np.vstack([np.zeros((1, 6)), reference[:4], random_csr(rng, 5, 6, 0.5, np.float64,
                                                                     integer=True).toarray()])
    result = run_sparse(name, backend, sp.csr_matrix(queries), sp.csr_matrix(reference), 60)
    exact = exact_dense(name, sp.csr_matrix(queries), sp.csr_matrix(reference))
    order = np.argsort(exact, axis=1, kind="stable")  # k = n: every row, ties by index
    np.testing.assert_array_equal(result[1], order)
    np.testing.assert_allclose(result[0], np.take_along_axis(exact, order, 1), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", KERNELS)
def test_sparse_one_and_two_threads(optimised_backend, name, rng):
    reference = random_csr(rng, 2000, 300, 0.02, np.float32)
    queries = random_csr(rng, 150, 300, 0.02, np.float32)
    one = run_sparse(name, optimised_backend, queries, reference, 5, n_threads=1)
    two = run_sparse(name, optimised_backend, queries, reference, 5, n_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
