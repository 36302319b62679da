"""k-means on Dask: Lloyd iterations as a map and a tree reduction, k-means|| initialisation."""

import numbers

import dask
import dask.array as da
import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from .. import cluster as _cluster
from .._backend import resolve_kernel
from ..kmeans_core import (
    IterationProgress,
    LloydState,
    euclidean_rows,
    ldexp,
    scale_exponent,
    scaled_callable,
    scaled_inertia,
)
from ._common import (
    _aligned,
    _as_dask_array,
    _blocks,
    _checked_X,
    _DaskPredictMixin,
    _delayed,
    _float_dtype,
    _moments_block,
    _moments_combine,
    _set_feature_names,
    _ShapeOnly,
    _sum_combine,
    _task_threads,
    _tree_reduce,
    is_dask_collection,
)


def _center_block(X, mean, dtype):
    """``X - mean`` in ``dtype`` (the in-memory fit's ``X -= X.mean(axis=0)``)."""
    out = np.array(X, dtype=dtype, order="C")
    out -= mean
    return out


def _weights_of(X, weights):
    return np.ones(X.shape[0], dtype=X.dtype) if weights is None else np.asarray(weights, dtype=X.dtype)


def _lloyd_block(X, weights, centers, with_inertia, backend, n_threads):
    """One fused Lloyd pass on a block (:meth:`LloydState.lloyd_pass`): ``(labels, (sums, weights, inertia))``.

    The inertia is computed only ``with_inertia`` (else it is 0).
    """
    kernel, _ = resolve_kernel("kmeans_lloyd_iter", backend)
    state = LloydState(X.shape[0], centers.shape[0], X.shape[1]).lloyd_pass(
        kernel, X, _weights_of(X, weights), centers, with_inertia, n_threads)
    return state.labels, (state.sums, state.weights, np.array([state.inertia]))


def _lloyd_stats(result, labels_old):
    """The block's M-step statistics and its number of changed labels."""
    labels, (sums, weights, inertia) = result
    changed = labels.shape[0] if labels_old is None else int(np.count_nonzero(labels != labels_old))
    return sums, weights, inertia, np.array([changed])


def _labels_of(result):
    return result[0]


def _inertia_block(X, weights, centers, labels, backend, n_threads):
    kernel, _ = resolve_kernel("kmeans_inertia", backend)
    inertia = np.empty(1)
    kernel(X, _weights_of(X, weights), centers, labels, inertia, n_threads)
    return (inertia,)


def _farthest_block(X, weights, centers, labels, offset, n_far):
    """The ``n_far`` samples of a block farthest from their centres (for empty clusters)."""
    distances = ((X - centers[labels]) ** 2).sum(axis=1)
    order = np.lexsort((np.arange(X.shape[0]), -distances))[:n_far]
    return (distances[order], order + offset, X[order].astype(np.float64),
            _weights_of(X, weights)[order].astype(np.float64), labels[order])


def _farthest_combine(parts, n_far=None):
    joined = [np.concatenate(values) for values in zip(*parts)]
    order = np.lexsort((joined[1], -joined[0]))
    if n_far is not None:
        order = order[:n_far]
    return tuple(values[order] for values in joined)


_DISTANCE_ROWS = 1 << 14  # rows of a block per float64 distance chunk (k-means||)


def _min_sq_distances(X, candidates):
    """Float64 squared distance from each row of X to its nearest candidate, and its index.

    Expanded form ``||x||^2 - 2 x.c + ||c||^2`` in float64, clipped at 0, over
    chunks of rows: never more than a (chunk x candidates) matrix.
    """
    candidates = np.asarray(candidates, dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", candidates, candidates)
    closest = np.empty(X.shape[0])
    nearest = np.empty(X.shape[0], dtype=np.intp)
    for start in range(0, X.shape[0], _DISTANCE_ROWS):
        chunk = np.asarray(X[start:start + _DISTANCE_ROWS], dtype=np.float64)
        sq = chunk @ candidates.T
        sq *= -2
        sq += c_sq[None, :]
        sq += np.einsum("ij,ij->i", chunk, chunk)[:, None]
        np.maximum(sq, 0, out=sq)
        nearest[start:start + chunk.shape[0]] = sq.argmin(axis=1)
        closest[start:start + chunk.shape[0]] = sq[np.arange(chunk.shape[0]),
                                                    nearest[start:start + chunk.shape[0]]]
    return closest, nearest


def _kmeans_parallel_cost(X, weights, candidates):
    closest, _ = _min_sq_distances(X, candidates)
    return (np.array([closest @ _weights_of(X, weights).astype(np.float64)]),)


def _kmeans_parallel_sample(X, weights, candidates, cost, oversampling, seed):
    """Rows kept by one k-means|| round: independently, with probability min(1, l w D^2 / phi)."""
    closest, _ = _min_sq_distances(X, candidates)
    w = _weights_of(X, weights).astype(np.float64)
    probability = np.minimum(1.0, oversampling * w * closest / cost)
    keep = np.random.default_rng(seed).uniform(size=X.shape[0]) < probability
    return X[keep]


def _kmeans_parallel_counts(X, weights, candidates):
    """Total weight of the samples nearest to each candidate."""
    _, nearest = _min_sq_distances(X, candidates)
    return (np.bincount(nearest, weights=_weights_of(X, weights).astype(np.float64),
                        minlength=candidates.shape[0]),)


def _ldexp_block(block, exponent):
    return np.ldexp(block, exponent).astype(block.dtype, copy=False)


class KMeans(_DaskPredictMixin, _cluster.KMeans):
    r"""K-means on Dask: :class:`fastscratch.KMeans` whose ``fit`` also takes Dask arrays.

    Given NumPy data, exactly the parent estimator. Given a Dask array or
    dataframe, each Lloyd iteration is one map over the blocks (our
    ``kmeans_lloyd_iter`` kernel: labels, per-cluster float64 weighted sums
    and weights, inertia) and one tree reduction of the (k x d) statistics;
    the M-step, the convergence tests (labels unchanged, or centre shift at
    most ``tol`` times the mean feature variance) and the final E-step are
    the parent's. The data are centred first and the centred blocks persisted
    on the workers (one copy of X in the cluster's memory). With the same
    initial centres (an array ``init``) the labels and iteration count equal
    the in-memory fit's, and the centres and inertia agree to rounding.

    Parameters
    ----------
    n_clusters, n_init, max_iter, tol, verbose, random_state, copy_x, n_jobs, backend
        As :class:`fastscratch.KMeans` (``n_jobs``: kernel threads per Dask
        task; None means 1, since Dask runs one task per worker thread).
        ``n_init`` > 1 reruns the whole distributed fit and keeps the lowest
        inertia.
    init : {"k-means||", "k-means++", "random"}, callable or array-like, default="k-means||"
        "k-means||" (Dask input only; Bahmani et al., see the module Notes);
        "random": ``n_clusters`` distinct samples drawn uniformly (weights
        ignored); an array: the initial centres. "k-means++" and a callable
        load X into memory (the parent's seeding) and warn. With NumPy input,
        "k-means||" means the parent's "k-means++".
    algorithm : {"lloyd"}, default="lloyd"
        Dask input runs Lloyd's algorithm ("elkan" is used only with NumPy input).
    oversampling_factor : float, default=2
        k-means||: expected samples kept per round, in units of ``n_clusters``.
    init_max_iter : int, default=None
        k-means|| rounds; None means 5 (Bahmani et al. find 5 rounds enough).

    Attributes
    ----------
    cluster_centers_, inertia_, n_iter_, n_features_in_, feature_names_in_, backend_
        As :class:`fastscratch.KMeans`.
    labels_ : dask array of shape (n_samples,), int32, or ndarray
        Persisted on the workers for Dask input.
    """

    def __init__(self, n_clusters=8, *, init="k-means||", n_init="auto", max_iter=300, tol=1e-4,
                 verbose=0, random_state=None, copy_x=True, algorithm="lloyd", n_jobs=None,
                 backend="auto", oversampling_factor=2, init_max_iter=None):
        super().__init__(n_clusters=n_clusters, init=init, n_init=n_init, max_iter=max_iter,
                         tol=tol, verbose=verbose, random_state=random_state, copy_x=copy_x,
                         algorithm=algorithm, n_jobs=n_jobs, backend=backend)
        self.oversampling_factor = oversampling_factor
        self.init_max_iter = init_max_iter

    def _in_memory(self):
        params = {k: v for k, v in self.get_params().items()
                  if k not in ("oversampling_factor", "init_max_iter")}
        if isinstance(params["init"], str) and params["init"] == "k-means||":
            params["init"] = "k-means++"
        return _cluster.KMeans(**params)

    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering (see the class docstring).

        Parameters
        ----------
        X : array-like, dask array or dask dataframe of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like or dask array of shape (n_samples,), default=None

        Returns
        -------
        self : KMeans
        """
        if not is_dask_collection(X):
            fitted = self._in_memory().fit(X, sample_weight=sample_weight)
            self.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")
                                  or k == "_n_features_out"})
            if not hasattr(fitted, "feature_names_in_") and hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return self
        return self._fit_dask(X, sample_weight)

    # --------------------------------------------------------------- Dask fit
    def _check_dask_params(self, X):
        if self.algorithm != "lloyd":
            raise ValueError(f"algorithm={self.algorithm!r}: Dask input runs 'lloyd' only; "
                             "pass algorithm='lloyd'.")
        if (isinstance(self.oversampling_factor, bool)
                or not isinstance(self.oversampling_factor, numbers.Real)
                or not self.oversampling_factor > 0):
            raise ValueError(f"oversampling_factor must be a positive number, got "
                             f"{self.oversampling_factor!r}.")
        if self.init_max_iter is not None and (
                isinstance(self.init_max_iter, bool)
                or not isinstance(self.init_max_iter, numbers.Integral) or self.init_max_iter < 1):
            raise ValueError(f"init_max_iter must be a positive int or None, got "
                             f"{self.init_max_iter!r}.")
        probe = self._in_memory()
        n_init, _, init_is_array = _cluster.KMeans._check_params(probe, _ShapeOnly(X.shape))
        return n_init, init_is_array

    def _fit_dask(self, X, sample_weight):
        X, columns = _checked_X(X, self)
        dtype = _float_dtype(X)
        (sample_weight,) = _aligned(X, sample_weight)
        n_init, init_is_array = self._check_dask_params(X)
        random_state = check_random_state(self.random_state)
        _, self.backend_ = self._in_memory()._kernels()
        n_threads = _task_threads(self.n_jobs)
        x_blocks = _blocks(X)
        w_blocks = _blocks(sample_weight) or [None] * len(x_blocks)
        if sample_weight is not None:
            total_weight = float(sample_weight.sum().compute())
            if not total_weight > 0 or bool((sample_weight < 0).any().compute()):
                raise ValueError("sample_weight must be non-negative and sum to a positive "
                                 "number; give at least one sample a positive weight.")

        # Mean and mean variance of the features (float64, pairwise merge), as the parent;
        # in the same pass the largest |value|, for the parent's rescaling rule.
        moments = [_delayed(_moments_block, pure=True)(b) for b in x_blocks]
        (n, mean, m2), max_abs = dask.compute(_tree_reduce(moments, _moments_combine),
                                              da.absolute(X).max())
        exponent = scale_exponent(float(max_abs), dtype)
        if exponent:
            return self._fit_scaled(X, sample_weight, exponent, columns)
        variance = m2 / n
        tol = float(np.mean(variance) * self.tol) if self.tol != 0 else 0
        X_mean = mean.astype(dtype)
        centred = [_delayed(_center_block, pure=True)(b, X_mean, dtype) for b in x_blocks]
        centred = list(dask.persist(*centred))
        sizes = X.chunks[0]

        init = None
        if init_is_array:
            init = self._check_init_array(_ShapeOnly(X.shape, dtype)) - X_mean
        best = None
        for _ in range(n_init):
            centers = self._dask_init(centred, w_blocks, sizes, init, random_state, dtype)
            labels, inertia, centers, n_iter = self._dask_lloyd(
                centred, w_blocks, sizes, centers, tol, n_threads)
            if best is None or inertia < best[1]:
                best = (labels, inertia, centers, n_iter)
        labels, inertia, centers, n_iter = best
        centers = centers + X_mean
        label_arrays = [da.from_delayed(dask.delayed(np.asarray)(part, np.int32), shape=(size,),
                                        dtype=np.int32) for part, size in zip(labels, sizes)]
        self.labels_ = da.concatenate(label_arrays).persist()
        self.cluster_centers_ = centers.astype(dtype, copy=False)
        self._n_features_out = centers.shape[0]
        self.inertia_ = float(inertia)
        self.n_iter_ = n_iter
        _set_feature_names(self, columns, X.shape[1])
        return self

    def _fit_scaled(self, X, sample_weight, exponent, columns):
        """The fit of ``X / 2**e`` (data near 1e300 or 1e-300), in X's units, as the parent.

        Division by a power of two is exact: the labels are X's, the centres are
        scaled back by ``2**e`` and the inertia by ``4**e`` (a ValueError naming the
        overflow when float64 cannot hold it, the parent's message).
        """
        inner = clone(self)
        if callable(self.init):
            inner.set_params(init=scaled_callable(self.init, exponent))
        elif not isinstance(self.init, str):
            inner.set_params(init=np.ldexp(np.asarray(self.init, dtype=np.float64), -exponent))
        scaled = X.map_blocks(_ldexp_block, -exponent, dtype=X.dtype, meta=X._meta)
        inner._fit_dask(scaled, sample_weight)
        inertia = scaled_inertia(inner.inertia_, exponent)
        self.__dict__.update({k: v for k, v in inner.__dict__.items()
                              if k.endswith("_") or k == "_n_features_out"})
        self.cluster_centers_ = ldexp(inner.cluster_centers_, exponent)
        self.inertia_ = inertia
        _set_feature_names(self, columns, X.shape[1])
        return self

    def _dask_init(self, centred, w_blocks, sizes, init, random_state, dtype):
        if init is not None:
            return init.copy()
        n_samples = int(sum(sizes))
        if callable(self.init) or self.init == "k-means++":
            import warnings

            warnings.warn(f"init={self.init!r} loads X into memory for the seeding; use "
                          "init='k-means||' for data that do not fit.", UserWarning, stacklevel=4)
            data = np.concatenate(dask.compute(*centred))
            weights = (np.concatenate(dask.compute(*w_blocks)).astype(dtype)
                       if w_blocks[0] is not None else np.ones(n_samples, dtype=dtype))
            return self._init_centroids(data, self.init, random_state, weights)
        if self.init == "random":
            chosen = np.sort(random_state.choice(n_samples, size=self.n_clusters, replace=False))
            return self._rows(centred, sizes, chosen, dtype)
        return self._kmeans_parallel(centred, w_blocks, sizes, random_state, dtype)

    @staticmethod
    def _rows(blocks, sizes, indices, dtype):
        """Rows ``indices`` (global, any order) of the blocked data."""
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        owner = np.searchsorted(offsets, indices, side="right") - 1
        parts = [dask.delayed(lambda b, i: np.asarray(b)[i])(blocks[o], indices[owner == o] - offsets[o])
                 for o in np.unique(owner)]
        rows = np.concatenate(dask.compute(*parts))
        order = np.concatenate([np.flatnonzero(owner == o) for o in np.unique(owner)])
        out = np.empty((len(indices), rows.shape[1]), dtype=dtype)
        out[order] = rows
        return out

    def _kmeans_parallel(self, centred, w_blocks, sizes, random_state, dtype):
        """k-means|| (Bahmani et al., 2012): oversample in rounds, recluster the candidates."""
        n_samples = int(sum(sizes))
        first = random_state.randint(n_samples)
        candidates = self._rows(centred, sizes, np.array([first]), dtype)
        oversampling = self.oversampling_factor * self.n_clusters
        rounds = 5 if self.init_max_iter is None else self.init_max_iter
        for _ in range(rounds):
            costs = [_delayed(_kmeans_parallel_cost, pure=True)(b, w, candidates)
                     for b, w in zip(centred, w_blocks)]
            (cost,) = _tree_reduce(costs, _sum_combine).compute()
            if not cost[0] > 0:
                break  # every sample is a candidate already
            seeds = random_state.randint(np.iinfo(np.int32).max, size=len(centred))
            kept = [_delayed(_kmeans_parallel_sample, pure=True)(b, w, candidates, cost[0],
                                                                     oversampling, int(s))
                    for b, w, s in zip(centred, w_blocks, seeds)]
            candidates = np.concatenate([candidates, *dask.compute(*kept)]).astype(dtype)
        if candidates.shape[0] < self.n_clusters:
            extra = random_state.choice(n_samples, size=self.n_clusters, replace=False)
            candidates = np.concatenate([candidates, self._rows(centred, sizes, extra, dtype)])
            distinct = np.unique(candidates, axis=0)
            # Fewer distinct points than clusters (duplicated rows): keep repeats, as the
            # in-memory k-means++ would, so that n_clusters seeds exist.
            candidates = distinct if distinct.shape[0] >= self.n_clusters else candidates
        counts = [_delayed(_kmeans_parallel_counts, pure=True)(b, w, candidates)
                  for b, w in zip(centred, w_blocks)]
        (weights,) = _tree_reduce(counts, _sum_combine).compute()
        if np.count_nonzero(weights) < self.n_clusters:
            weights = weights + 1e-12 * max(weights.max(), 1)  # keep k distinct seeds possible
        reclustered = _cluster.KMeans(
            n_clusters=self.n_clusters, init="k-means++", n_init=1, max_iter=self.max_iter,
            tol=self.tol, random_state=random_state, backend=self.backend,
            n_jobs=self.n_jobs).fit(candidates, sample_weight=weights.astype(dtype))
        return np.ascontiguousarray(reclustered.cluster_centers_, dtype=dtype)

    def _dask_lloyd(self, centred, w_blocks, sizes, centers, tol, n_threads):
        """Lloyd iterations, as the parent's ``_run_lloyd``, one map/reduce per iteration."""
        stats_of = _delayed(_lloyd_stats, pure=True)
        labels_old = [None] * len(centred)
        strict = False
        with IterationProgress(self.verbose, self.max_iter) as progress:
            for i in range(self.max_iter):
                results = [_delayed(_lloyd_block, pure=True)(b, w, centers, bool(self.verbose),
                                                                 self.backend, n_threads)
                           for b, w in zip(centred, w_blocks)]
                labels = [_delayed(_labels_of, pure=True)(r) for r in results]
                stats = [stats_of(r, old) for r, old in zip(results, labels_old)]
                *labels, total = dask.persist(*labels, _tree_reduce(stats, _sum_combine))
                sums, weights, inertia, changed = total.compute()
                state = LloydState.from_totals(sums, weights, inertia[0], changed[0])
                state.relocate_empty(self._dask_farthest(centred, w_blocks, sizes, centers, labels))
                centers_new = state.centers(centers, centers.dtype)
                shift = euclidean_rows(centers_new, centers)
                centers = centers_new
                progress(state.inertia)
                if state.n_changed == 0:
                    strict = True
                    break
                if (shift ** 2).sum() <= tol:
                    break
                labels_old = labels
        if strict:
            parts = [_delayed(_inertia_block, pure=True)(b, w, centers, lab, self.backend, n_threads)
                     for b, w, lab in zip(centred, w_blocks, labels)]
            final_inertia = _tree_reduce(parts, _sum_combine).compute()[0][0]
        else:
            results = [_delayed(_lloyd_block, pure=True)(b, w, centers, True, self.backend,
                                                             n_threads)
                       for b, w in zip(centred, w_blocks)]
            labels = [_delayed(_labels_of, pure=True)(r) for r in results]
            stats = [stats_of(r, None) for r in results]
            *labels, total = dask.persist(*labels, _tree_reduce(stats, _sum_combine))
            final_inertia = total.compute()[2][0]
        return labels, final_inertia, centers, i + 1

    @staticmethod
    def _dask_farthest(centred, w_blocks, sizes, centers_old, labels):
        """:meth:`LloydState.relocate_empty`'s ``farthest``: each block's farthest rows, one tree reduction."""
        def farthest(m):
            offsets = np.concatenate([[0], np.cumsum(sizes)])
            parts = [_delayed(_farthest_block, pure=True)(b, w, centers_old, lab, int(o), m)
                     for b, w, lab, o in zip(centred, w_blocks, labels, offsets)]
            distances, _, rows, row_weights, row_labels = _tree_reduce(
                parts, lambda p: _farthest_combine(p, m)).compute()
            return distances, rows, row_weights, row_labels
        return farthest

    def transform(self, X):
        if is_dask_collection(X):
            X, _ = _as_dask_array(X, "X", ndim=(2,))
            return self._postfit().transform(X)
        return super().transform(X)

    def score(self, X, y=None, sample_weight=None):
        if is_dask_collection(X):
            raise TypeError("score takes in-memory data; for a Dask array, use "
                            "-(estimator.transform(X).min(axis=1) ** 2).sum().")
        return super().score(X, y, sample_weight)
