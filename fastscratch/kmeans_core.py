"""The k-means core that :class:`fastscratch.KMeans` and its Dask version share.

One Lloyd iteration is: assign every row to its nearest centre (the
``kmeans_lloyd_iter`` kernels), then move every centre to the mean of its rows,
:math:`c_j = S_j / W_j` with :math:`S_j = \\sum_{i: l_i = j} w_i x_i` and
:math:`W_j = \\sum_{i: l_i = j} w_i` (:func:`centers_from_sums`), after giving
every empty cluster one of the rows farthest from their centres
(:func:`move_to_empty`); the run stops when the centres moved by at most the
tolerance (:func:`euclidean_rows`). Data whose magnitude would overflow or
underflow the squared distances are clustered divided by a power of two
(:func:`scale_exponent`, :func:`ldexp`, :func:`scaled_inertia`,
:func:`scaled_callable`), which is exact. The in-memory estimator runs these
on its rows; the Dask one on the sums and rows its workers send back.
"""

import math

import numpy as np
import scipy.sparse as sp

__all__ = ["SAFE_EXPONENT", "IterationProgress", "centers_from_sums", "euclidean_rows", "ldexp",
           "max_abs_value", "move_to_empty", "scale_exponent", "scaled_callable", "scaled_inertia"]

# Data whose largest |value| lies outside [2**-e, 2**e] (e per dtype) is divided by a power of
# two before the kernels see it (:func:`scale_exponent`): squared distances of data near 1e300
# overflow float64, those near 1e-300 underflow, and float32's range is far narrower.
SAFE_EXPONENT = {np.dtype(np.float64): 200, np.dtype(np.float32): 40}


def max_abs_value(X):
    """Largest |value| of a dense array or of a CSR matrix's stored values.

    Two reductions without a temporary and without BLAS (whose threads,
    woken for one dot product, would then compete with the kernels' own).
    """
    values = X.data if sp.issparse(X) else X
    if values.size == 0:
        return 0.0
    return float(max(values.max(), -values.min()))


def scale_exponent(max_abs, dtype):
    """e with ``max_abs / 2**e`` in [0.5, 1) when ``max_abs`` is outside the dtype's safe range, else 0.

    Dividing by a power of two is exact (short of subnormal numbers), so the
    clustering of ``X / 2**e`` is that of ``X``: same labels, centres and
    inertia scaled by ``2**e`` and ``4**e``.
    """
    limit = SAFE_EXPONENT[np.dtype(dtype)]
    if max_abs == 0 or not np.isfinite(max_abs) or 2.0 ** -limit <= max_abs <= 2.0 ** limit:
        return 0
    return math.frexp(max_abs)[1]


def ldexp(X, exponent):
    """``X * 2**exponent`` in X's dtype (a copy; CSR stays CSR)."""
    if sp.issparse(X):
        out = X.copy()
        out.data = np.ldexp(X.data, exponent).astype(X.dtype, copy=False)
        return out
    return np.ldexp(X, exponent).astype(X.dtype, copy=False)


def scaled_inertia(inertia, exponent):
    """``inertia * 4**exponent``, or a ValueError naming the overflow when float64 cannot hold it."""
    if not exponent:
        return float(inertia)
    try:
        value = math.ldexp(float(inertia), 2 * exponent)
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        decimal = math.log10(float(inertia)) + 2 * exponent * math.log10(2) if inertia > 0 else 0
        raise ValueError(
            f"X: the inertia (sum of squared distances to the centres) of data this large, about "
            f"1e{decimal:.0f}, overflows float64 (largest 1.8e308); divide X by a constant such as "
            f"its largest absolute value (about 1e{exponent * math.log10(2):.0f}), fit, and "
            "multiply cluster_centers_ back.")
    return value




def scaled_callable(init, exponent):
    """A callable init for X / 2**e: called on X's own scale, its centres divided by 2**e."""
    def scaled(X, n_clusters, random_state):
        return ldexp(np.asarray(init(ldexp(X, exponent), n_clusters, random_state=random_state),
                                 dtype=X.dtype), -exponent)
    return scaled


def euclidean_rows(a, b):
    """Row-wise ||a_j - b_j|| in the dtype of a, four features at a time (as scikit-learn)."""
    squares = (a - b) ** 2
    n_groups = a.shape[1] // 4
    t = squares[:, :4 * n_groups].reshape(a.shape[0], n_groups, 4)
    terms = np.concatenate([((t[..., 0] + t[..., 1]) + t[..., 2]) + t[..., 3],
                            squares[:, 4 * n_groups:]], axis=1)
    if terms.shape[1] == 0:
        return np.zeros(a.shape[0], dtype=a.dtype)
    # add.accumulate adds strictly left to right (a sum may pair terms up): the running total.
    return np.sqrt(np.add.accumulate(terms, axis=1)[:, -1])


def move_to_empty(sums, weights, new_id, old_id, moved, weight):
    """Give the empty cluster ``new_id`` one sample (``moved`` = its weighted row) of ``old_id``."""
    sums[old_id] -= moved
    sums[new_id] = moved
    weights[new_id] = weight
    weights[old_id] -= weight


def centers_from_sums(sums, weights, centers_old, dtype):
    """c_j = S_j / W_j; a cluster still empty goes where scikit-learn puts it."""
    centers = np.empty_like(centers_old)
    filled = weights > 0
    centers[filled] = sums[filled] * (1.0 / weights[filled])[:, None]
    empty = np.flatnonzero(~filled)
    if empty.size:
        heaviest = int(np.argmax(weights))
        for j in empty:
            # Still empty (more clusters than distinct samples): scikit-learn puts it on
            # the heaviest cluster, as that row stands at this point of its loop over j.
            centers[j] = centers[heaviest] if heaviest < j else sums[heaviest]
    return centers.astype(dtype, copy=False)




class IterationProgress:
    """tqdm bar over the iterations of one run when ``verbose``; a no-op otherwise."""

    def __init__(self, verbose, max_iter):
        self.bar = None
        if verbose:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max_iter, desc="k-means", unit="iter", leave=False)

    def __enter__(self):
        return self

    def __call__(self, inertia):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(inertia=f"{inertia:.6g}")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
