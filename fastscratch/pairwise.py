"""Validated entry points to the distance kernels.

Kernels trust their input; these functions are the Python layer that checks
it: 2-D finite float arrays (float32 stays float32, anything else becomes
float64), C-contiguous copies where needed, matching feature counts, and
``1 <= k <= n_reference``.
"""

import numbers

import numpy as np
from sklearn.utils.validation import check_array

from ._backend import effective_n_threads, resolve_kernel


def check_pair(queries, reference):
    """Validate and convert ``queries`` and ``reference`` to one float dtype, C order."""
    reference = check_array(reference, dtype=[np.float64, np.float32], order="C",
                            input_name="reference", estimator="sqeuclidean_topk")
    queries = check_array(queries, dtype=reference.dtype, order="C", input_name="queries",
                          estimator="sqeuclidean_topk")
    if queries.shape[1] != reference.shape[1]:
        raise ValueError(
            f"queries has {queries.shape[1]} features but reference has {reference.shape[1]}; "
            "pass arrays with the same number of columns."
        )
    return queries, reference


def sqeuclidean_topk(queries, reference, k, *, backend="auto", n_jobs=None):
    """The k nearest reference points of each query, by squared euclidean distance.

    Parameters
    ----------
    queries : array-like of shape (m, d)
    reference : array-like of shape (n, d)
    k : int
        Number of neighbours, ``1 <= k <= n``.
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
    n_jobs : int, default=None
        Threads (None: the global setting, else every core).

    Returns
    -------
    distances : ndarray of shape (m, k)
        Squared distances, ascending, in the dtype of the input (float32 or float64).
    indices : ndarray of shape (m, k), intp
        Rows of ``reference``; equal distances are ordered by index.
    """
    queries, reference = check_pair(queries, reference)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, got {type(k).__name__}.")
    if not 1 <= k <= reference.shape[0]:
        raise ValueError(
            f"k={k} must be between 1 and the number of reference points ({reference.shape[0]})."
        )
    kernel, _ = resolve_kernel("sqeuclidean_topk", backend)
    distances = np.empty((queries.shape[0], k), dtype=queries.dtype)
    indices = np.empty((queries.shape[0], k), dtype=np.intp)
    kernel(queries, reference, distances, indices, effective_n_threads(n_jobs))
    return distances, indices


def sqeuclidean_argmin(queries, reference, *, backend="auto", n_jobs=None):
    """Nearest reference point of each query: ``(squared distances, indices)``, 1-D."""
    queries, reference = check_pair(queries, reference)
    kernel, _ = resolve_kernel("sqeuclidean_argmin", backend)
    distances = np.empty(queries.shape[0], dtype=queries.dtype)
    indices = np.empty(queries.shape[0], dtype=np.intp)
    kernel(queries, reference, distances, indices, effective_n_threads(n_jobs))
    return distances, indices
