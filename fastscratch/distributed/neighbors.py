"""k-nearest neighbours on Dask: the training set stays partitioned; local top-k merged into the global top-k."""

import dask
import dask.array as da
import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import assert_all_finite

from .. import neighbors as _neighbors
from ._common import (
    _aligned,
    _as_dask_array,
    _blocks,
    _checked_X,
    _classes_and_codes,
    _delayed,
    _finite,
    _float_dtype,
    _moments_block,
    _moments_combine,
    _numeric_target,
    _set_feature_names,
    _task_threads,
    _tree_reduce,
    is_dask_collection,
)


def _knn_fit_partition(template, X, y, shift):
    """The in-memory estimator fitted on one partition, searching with the global ``shift``.

    The in-memory estimator centres data far from the origin on their mean
    before a euclidean search; every partition uses the mean of the whole
    training set, so the kernels rank the same numbers as in memory.
    """
    model = clone(template)
    model.fit(np.asarray(X), np.asarray(y))
    model.use_search_shift(shift)
    return model


def _knn_local_topk(model, targets, queries, n_neighbors, offset, n_threads):
    """A partition's top-k: ``(ranking keys, global indices, targets, float64 distances)``.

    The keys are what the in-memory search sorts by (the kernel's reduced
    distances), so that the merge reproduces its order exactly.
    """
    keys, indices, distances = model.ranked_neighbors(queries, n_neighbors, n_threads)
    return keys, indices + offset, np.asarray(targets)[indices], distances


def _knn_merge(parts, n_neighbors):
    """Global top-k of partial top-k lists: by ranking key, ties to the smaller global index."""
    joined = [np.concatenate(values, axis=1) for values in zip(*parts)]
    order = np.lexsort((joined[1], joined[0]), axis=1)[:, :n_neighbors]
    return tuple(np.take_along_axis(values, order, axis=1) for values in joined)


def _knn_classify(merged, weights, n_classes, classes, proba):
    _, _, labels, distances = merged
    w = _neighbors.neighbor_weights(distances, weights)
    if w is None:
        w = np.ones(labels.shape)
    elif np.any(np.all(w == 0, axis=1)):
        raise ValueError("All neighbours of some sample get zero weight; change the callable "
                         "passed as weights so that every row has a positive weight.")
    out = np.zeros((labels.shape[0], n_classes))
    rows = np.arange(labels.shape[0])
    for i, label in enumerate(labels.T):  # neighbour order, as the in-memory estimator
        out[rows, label] += w[:, i]
    out /= out.sum(axis=1)[:, np.newaxis]
    return out if proba else classes.take(np.argmax(out, axis=1))


def _knn_regress(merged, weights):
    _, _, targets, distances = merged
    w = _neighbors.neighbor_weights(distances, weights)
    if w is None:
        return np.mean(targets, axis=1)
    return np.sum(targets * w, axis=1) / np.sum(w, axis=1)


class _DaskKNeighborsMixin:
    """Fit on a Dask collection: one in-memory estimator per training partition, on the workers."""

    def fit(self, X, y):
        """Store the training data: in memory, or partitioned on the workers for Dask input.

        Parameters
        ----------
        X : array-like, dask array or dask dataframe of shape (n_samples, n_features)
        y : array-like or dask array of shape (n_samples,)

        Returns
        -------
        self
        """
        self._partitions = None
        if not is_dask_collection(X):
            return super().fit(X, y)
        metric, p = self._check_params()
        X, columns = _checked_X(X, self)
        (y,) = _aligned(X, y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D for a partitioned fit, got shape {y.shape}; fit "
                             "one estimator per output.")
        if self._is_classifier:
            self.classes_, targets = _classes_and_codes(y)
            self.outputs_2d_ = False
        else:
            targets = _finite(_numeric_target(y).astype(np.float64), "y")
        template = self._in_memory_type(**self.get_params())
        shift = None
        if metric in ("euclidean", "sqeuclidean") and X.shape[0] > 1:
            # The in-memory rule (neighbors._fit_search_structure), on the whole training set.
            moments = [_delayed(_moments_block, pure=True)(b) for b in _blocks(X)]
            n, mean, m2 = _tree_reduce(moments, _moments_combine).compute()
            if mean @ mean > (m2 / n).sum():
                shift = mean.astype(_float_dtype(X))
        self._shift = shift
        models = [_delayed(_knn_fit_partition, pure=True)(template, xb, yb, shift)
                  for xb, yb in zip(_blocks(X), _blocks(y))]
        *persisted, = dask.persist(*models, *_blocks(targets))
        n_parts = len(models)
        self._partitions = list(zip(persisted[:n_parts], persisted[n_parts:]))
        self._offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.intp)
        self.effective_metric_ = metric
        self.effective_metric_params_ = {} if p is None else {"p": p}
        self.n_samples_fit_ = int(X.shape[0])
        self._fit_dtype = _float_dtype(X)
        _set_feature_names(self, columns, X.shape[1])
        return self

    def _merged_blocks(self, X, n_neighbors):
        """Per query block, the delayed merged top-k ``(distances, indices, targets)``."""
        if X is None:
            raise ValueError("X=None (the training points) is not supported when the training "
                             "set is partitioned; pass the queries.")
        dask_input = is_dask_collection(X)
        if dask_input:
            X, _ = _as_dask_array(X, "X", ndim=(2,))
            X = _finite(X)
        else:
            X = np.asarray(X)
            assert_all_finite(X, input_name="X")
            X = da.from_array(X, chunks=(max(1, X.shape[0]),) + X.shape[1:])
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has shape {X.shape} but the model was fitted with "
                             f"{self.n_features_in_} features; pass the same columns.")
        n_neighbors = self._check_n_neighbors(n_neighbors, False, X.shape[0])
        merged = []
        for qb in _blocks(X):
            local = [_delayed(_knn_local_topk, pure=True)(model, targets, qb, n_neighbors, int(o),
                                                              _task_threads(self.n_jobs))
                     for (model, targets), o in zip(self._partitions, self._offsets)]
            merged.append(_tree_reduce(local, lambda p, k=n_neighbors: _knn_merge(p, k)))
        return merged, X.chunks[0], n_neighbors, dask_input

    @staticmethod
    def _assemble(blocks, sizes, trailing, dtype, dask_input):
        arrays = [da.from_delayed(b, shape=(s,) + trailing, dtype=dtype) for b, s in zip(blocks, sizes)]
        out = da.concatenate(arrays)
        return out if dask_input else out.compute()

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        if getattr(self, "_partitions", None) is None:
            return super().kneighbors(X, n_neighbors, return_distance)
        merged, sizes, k, dask_input = self._merged_blocks(X, n_neighbors)
        distances = self._assemble([dask.delayed(lambda m: m[3])(m) for m in merged], sizes,
                                   (k,), np.float64, dask_input)
        indices = self._assemble([dask.delayed(lambda m: m[1])(m) for m in merged], sizes,
                                 (k,), np.intp, dask_input)
        return (distances, indices) if return_distance else indices

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        if getattr(self, "_partitions", None) is not None and is_dask_collection(X):
            raise TypeError("kneighbors_graph returns an in-memory sparse matrix; pass "
                            "X.compute() or use kneighbors.")
        return super().kneighbors_graph(X, n_neighbors, mode)


class KNeighborsClassifier(_DaskKNeighborsMixin, _neighbors.KNeighborsClassifier):
    """k-nearest-neighbour classifier with the training set partitioned on Dask workers.

    :class:`fastscratch.KNeighborsClassifier` whose ``fit`` also takes a Dask
    array or dataframe (1-D ``y``): each block of training rows is fitted, as
    an in-memory estimator, on a worker and stays there. A query block is sent
    to every partition, each answers with its local top-k (float64 distances,
    indices shifted to global row numbers, labels), and the answers are merged
    in a tree reduction into the global top-k, sorted by distance with ties to
    the smaller global index: the in-memory order, so ``kneighbors``,
    ``predict`` and ``predict_proba`` equal the in-memory estimator's. Dask
    queries give Dask arrays; NumPy queries give NumPy arrays. ``X=None``
    (leave-one-out on the training set) needs the in-memory estimator.
    Parameters and attributes: those of :class:`fastscratch.KNeighborsClassifier`.
    """

    _is_classifier = True
    _in_memory_type = _neighbors.KNeighborsClassifier

    def predict_proba(self, X):
        if getattr(self, "_partitions", None) is None:
            return super().predict_proba(X)
        merged, sizes, _, dask_input = self._merged_blocks(X, None)
        n_classes = len(self.classes_)
        blocks = [_delayed(_knn_classify, pure=True)(m, self.weights, n_classes, self.classes_, True)
                  for m in merged]
        return self._assemble(blocks, sizes, (n_classes,), np.float64, dask_input)

    def predict(self, X):
        if getattr(self, "_partitions", None) is None:
            return super().predict(X)
        merged, sizes, _, dask_input = self._merged_blocks(X, None)
        blocks = [_delayed(_knn_classify, pure=True)(m, self.weights, len(self.classes_),
                                                          self.classes_, False) for m in merged]
        return self._assemble(blocks, sizes, (), self.classes_.dtype, dask_input)


class KNeighborsRegressor(_DaskKNeighborsMixin, _neighbors.KNeighborsRegressor):
    """k-nearest-neighbour regressor with the training set partitioned on Dask workers.

    As :class:`KNeighborsClassifier` (local top-k per partition, merged by
    distance then global index), predicting the (weighted) mean target of the
    merged neighbours, summed in neighbour order as the in-memory
    :class:`fastscratch.KNeighborsRegressor`.
    """

    _is_classifier = False
    _in_memory_type = _neighbors.KNeighborsRegressor

    def predict(self, X):
        if getattr(self, "_partitions", None) is None:
            return super().predict(X)
        merged, sizes, _, dask_input = self._merged_blocks(X, None)
        blocks = [_delayed(_knn_regress, pure=True)(m, self.weights) for m in merged]
        return self._assemble(blocks, sizes, (), np.float64, dask_input)
