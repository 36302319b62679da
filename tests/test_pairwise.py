"""The validated Python layer in front of the distance kernels."""

import numpy as np
import pytest

from fastscratch.pairwise import sqeuclidean_argmin, sqeuclidean_topk


def test_non_contiguous_and_integer_input_are_copied(backend, rng):
    reference = rng.standard_normal((60, 10))
    queries = rng.standard_normal((20, 10))
    expected = sqeuclidean_topk(queries[:, ::2].copy(), reference[:, ::2].copy(), 3, backend="numpy")
    result = sqeuclidean_topk(queries[:, ::2], reference[:, ::2], 3, backend=backend)
    np.testing.assert_array_equal(result[1], expected[1])
    ints = sqeuclidean_topk(np.arange(6).reshape(3, 2), np.arange(8).reshape(4, 2), 2, backend=backend)
    assert ints[0].dtype == np.float64
    np.testing.assert_array_equal(ints[1], [[0, 1], [1, 0], [2, 1]])


def test_float32_stays_float32(backend, rng):
    reference = rng.standard_normal((30, 4)).astype(np.float32)
    distances, _ = sqeuclidean_topk(reference[:5], reference, 2, backend=backend)
    assert distances.dtype == np.float32
    np.testing.assert_array_equal(distances[:, 0], 0)
    distances, indices = sqeuclidean_argmin(reference[:5], reference, backend=backend)
    assert distances.dtype == np.float32 and distances.shape == (5,)
    np.testing.assert_array_equal(indices, np.arange(5))


@pytest.mark.parametrize("k, error, match", [
    (0, ValueError, "k=0 must be between 1"),
    (31, ValueError, "k=31 must be between 1"),
    (2.5, TypeError, "k must be an integer"),
])
def test_bad_k(k, error, match, rng):
    reference = rng.standard_normal((30, 4))
    with pytest.raises(error, match=match):
        sqeuclidean_topk(reference, reference, k)


def test_bad_arrays(rng):
    reference = rng.standard_normal((30, 4))
    with pytest.raises(ValueError, match="same number of columns"):
        sqeuclidean_topk(reference[:, :3], reference, 2)
    with pytest.raises(ValueError, match="NaN"):
        sqeuclidean_topk(np.full((2, 4), np.nan), reference, 2)
    with pytest.raises(ValueError, match="infinity"):
        sqeuclidean_topk(reference, np.full((3, 4), np.inf), 2)
    with pytest.raises(ValueError, match="0 sample"):
        sqeuclidean_topk(np.empty((0, 4)), reference, 2)
    with pytest.raises(ValueError, match="2D array"):
        sqeuclidean_topk(reference[0], reference, 2)
