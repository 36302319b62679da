"""The k-means core that :class:`fastscratch.KMeans` and its Dask version share.

One Lloyd iteration is: assign every row to its nearest centre and sum the
rows of each cluster (the pass, :meth:`LloydState.lloyd_pass`, the
``kmeans_lloyd_iter`` kernels), give every empty cluster one of the rows
farthest from their centres (:meth:`LloydState.relocate_empty`), then move
every centre to the mean of its rows (:meth:`LloydState.centers`); the run
stops when no label changed or the centres moved by at most the tolerance
(:func:`euclidean_rows`). :class:`LloydState` holds what these steps share: the
labels and the per-cluster sums. The in-memory estimator runs the pass on its
rows; the Dask one runs it on each block on the workers and gives the client's
state the blocks' totals (:meth:`LloydState.from_totals`). Data whose
magnitude would overflow or underflow the squared distances are clustered
divided by a power of two (:func:`scale_exponent`, :func:`ldexp`,
:func:`scaled_inertia`, :func:`scaled_callable`), which is exact.
"""

import math

import numpy as np
import scipy.sparse as sp

from .kernels.kmeans_numpy import lloyd_state

__all__ = ["SAFE_EXPONENT", "IterationProgress", "LloydState", "euclidean_rows", "ldexp",
           "max_abs_value", "scale_exponent", "scaled_callable", "scaled_inertia"]

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


class LloydState:
    r"""One k-means run's labels and cluster sums, and the three steps of a Lloyd iteration.

    Parameters
    ----------
    n_samples : int
        Rows the pass runs on (0 for a state that only receives totals,
        :meth:`from_totals`).
    n_clusters, n_features : int
    buffers : tuple, default=None
        ``(labels, stripe_sums, stripe_weights)`` for the pass, as
        ``kernels.kmeans_numpy.lloyd_state`` makes them (the default);
        CSR data pass their own (no per-stripe sums).

    Attributes
    ----------
    labels : ndarray of shape (n_samples,), intp
        Each row's cluster after the last pass (-1 before the first).
    sums : ndarray of shape (n_clusters, n_features), float64
        :math:`S_j`, the weighted sum of cluster :math:`j`'s rows.
    weights : ndarray of shape (n_clusters,), float64
        :math:`W_j`, the total weight of cluster :math:`j`'s rows.
    inertia : float
        Of the last pass, when it was asked for (else 0).
    n_changed : int
        Rows whose label the last pass changed.
    buffers : tuple
        ``(labels, stripe_sums, stripe_weights)``: the per-stripe sums kept
        between passes, so that a pass moves only the rows whose label
        changed (also handed to the Elkan kernels, whose passes keep them the
        same way).

    Notes
    -----
    With centres :math:`c_j` and weights :math:`w_i`, the pass sets

    .. math::

        \ell_i = \operatorname{argmin}_j \lVert c_j \rVert^2 - 2\, x_i \cdot c_j, \qquad
        S_j = \sum_{i: \ell_i = j} w_i x_i, \qquad W_j = \sum_{i: \ell_i = j} w_i,

    in float64, summed per stripe of rows and the stripes added in a fixed
    order (the same bits on any number of threads). A cluster left empty
    (:math:`W_j = 0`) takes one of the rows farthest from their centres,
    :math:`\lVert x_i - c_{\ell_i} \rVert^2` largest, as scikit-learn: row
    :math:`r` of cluster :math:`o` moves to the empty cluster :math:`e` with
    :math:`S_e = w_r x_r`, :math:`W_e = w_r`, and leaves :math:`S_o`,
    :math:`W_o` by as much. The new centres are then

    .. math::

        c_j^{new} = S_j \cdot \frac{1}{W_j},

    and a cluster still empty (more clusters than distinct rows) goes where
    scikit-learn puts it.

    Examples
    --------
    >>> import numpy as np
    >>> from fastscratch.kernels.kmeans_numpy import kmeans_lloyd_iter
    >>> X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
    >>> state = LloydState(4, 2, 2)
    >>> state.lloyd_pass(kmeans_lloyd_iter, X, np.ones(4), X[[0, 2]], True, 1).labels
    array([0, 0, 1, 1])
    >>> state.centers(X[[0, 2]], X.dtype)
    array([[ 0.,  1.],
           [10.,  1.]])
    """

    def __init__(self, n_samples, n_clusters, n_features, buffers=None):
        self.buffers = lloyd_state(n_samples, n_clusters, n_features) if buffers is None else buffers
        self.labels = self.buffers[0]
        self.sums = np.zeros((n_clusters, n_features))
        self.weights = np.zeros(n_clusters)
        self.inertia = 0.0
        self.n_changed = 0
        self._inertia = np.zeros(1)
        self._n_changed = np.zeros(1, dtype=np.intp)

    @classmethod
    def from_totals(cls, sums, weights, inertia=0.0, n_changed=0):
        """A state holding totals summed elsewhere (the Dask fit's reduction of its blocks' passes)."""
        state = cls(0, *sums.shape, buffers=(np.empty(0, dtype=np.intp), None, None))
        state.sums, state.weights = sums, weights
        state.inertia, state.n_changed = float(inertia), int(n_changed)
        return state

    def lloyd_pass(self, kernel, X, sample_weight, centers, with_inertia, n_threads, **copy):
        """One pass: labels, :math:`S_j`, :math:`W_j` (and the inertia if ``with_inertia``).

        ``kernel`` is a ``kmeans_lloyd_iter`` kernel (or CSR data's stand-in);
        ``copy`` its optional ``X_rank`` and ``x_sq_norms``. Returns self.
        """
        kernel(X, sample_weight, centers, np.einsum("ij,ij->i", centers, centers), bool(with_inertia),
               *self.buffers, self.sums, self.weights, self._inertia, self._n_changed, n_threads,
               **copy)
        self.inertia = float(self._inertia[0])
        self.n_changed = int(self._n_changed[0])
        return self

    def relocate_empty(self, farthest):
        """Give every empty cluster one of the rows farthest from their centres.

        Parameters
        ----------
        farthest : callable
            ``farthest(m)`` -> ``(sq_distances, rows, row_weights, row_labels)``
            of the ``m`` rows farthest from their centres, farthest first
            (rows and weights in float64). Called only when a cluster is
            empty; nothing moves when every row sits on its centre.
        """
        empty = np.flatnonzero(self.weights == 0)
        if not empty.size:
            return
        distances, rows, row_weights, row_labels = farthest(empty.size)
        if not (distances.size and np.max(distances) > 0):
            return
        for new_id, row, weight, old_id in zip(empty, rows, row_weights, row_labels):
            moved = row * weight
            self.sums[old_id] -= moved
            self.sums[new_id] = moved
            self.weights[new_id] = weight
            self.weights[old_id] -= weight

    def centers(self, centers_old, dtype):
        """:math:`c_j = S_j / W_j` in ``dtype``; a cluster still empty goes where scikit-learn puts it."""
        weights = self.weights
        centers = np.empty_like(centers_old)
        filled = weights > 0
        if filled.all():
            np.multiply(self.sums, (1.0 / weights)[:, None], out=centers)
            return centers.astype(dtype, copy=False)
        centers[filled] = self.sums[filled] * (1.0 / weights[filled])[:, None]
        heaviest = int(np.argmax(weights))
        for j in np.flatnonzero(~filled):
            # Still empty (more clusters than distinct samples): scikit-learn puts it on
            # the heaviest cluster, as that row stands at this point of its loop over j.
            centers[j] = centers[heaviest] if heaviest < j else self.sums[heaviest]
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
