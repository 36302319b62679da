"""Gradient boosting on Dask: the workers' per-node histograms summed, each split chosen once."""

import dask
import dask.array as da
import numpy as np
from sklearn.utils import check_random_state

from .. import boosting as _boosting
from .._backend import resolve_kernel
from ..boosting.binning import BinMapper
from ..boosting.grower import TreeGrower
from ..boosting.loss import OBJECTIVES
from ..boosting.predictor import Forest
from ..boosting.training import BoostResult, Training
from ._common import (
    _aligned,
    _blocks,
    _checked_X,
    _classes_and_codes,
    _DaskPredictMixin,
    _delayed,
    _numeric_target,
    _set_feature_names,
    _ShapeOnly,
    _sum_combine,
    _task_threads,
    _tree_reduce,
    is_dask_collection,
)


def _bin_block(X, binner):
    return binner.transform(np.ascontiguousarray(X, dtype=np.float32))


def _boost_gradients(loss, y, raw, weights):
    """Gradients and hessians (n_groups, n) of one block at its margins ``raw`` (n_groups, n)."""
    gradients = np.empty(raw.shape, dtype=np.float32)
    hessians = np.empty(raw.shape, dtype=np.float32)
    if raw.shape[0] == 1:
        loss.gradients(y, raw[0], weights, gradients[0], hessians[0])
    else:
        loss.gradients(y, raw, weights, gradients, hessians)
    return gradients, hessians


def _boost_raw(n_rows, base_margin):
    raw = np.empty((base_margin.shape[0], n_rows), dtype=np.float32)
    raw[:] = base_margin[:, None]
    return raw


def _any_nan(X):
    return np.array([bool(np.isnan(X).any())])


def _class_weight_totals(codes, weights, n_classes):
    return (np.bincount(codes, weights=weights, minlength=n_classes).astype(np.float64),)


def _local_segments(segments, keys, n_lefts, n_rows):
    """Local ``(starts, stops)`` in one block of the nodes ``keys`` (see :class:`_DaskTreeGrower`)."""
    def one(key):
        parent = segments[key]
        if parent is None:
            return 0, n_rows
        parent_key, level, j, side = parent
        start, stop = one(parent_key)
        middle = start + int(n_lefts[level][j])
        return (start, middle) if side == 0 else (middle, stop)

    pairs = [one(key) for key in keys]
    return (np.array([p[0] for p in pairs], dtype=np.intp),
            np.array([p[1] for p in pairs], dtype=np.intp))


def _boost_partition(binned, rows, n_lefts, segments, keys, features, split_bins, default_lefts,
                     n_bins, backend, n_threads):
    """One block's rows of the splitting nodes, partitioned left then right; and the left counts."""
    kernel, _ = resolve_kernel("partition_rows", backend)
    starts, stops = _local_segments(segments, keys, n_lefts, rows.shape[0])
    rows = rows.copy()
    n_left = np.empty(starts.shape[0], dtype=np.intp)
    kernel(binned, rows, starts, stops, features, split_bins, default_lefts, n_bins,
           np.empty(rows.shape[0], dtype=np.intp), n_left, n_threads)
    return rows, n_left


def _boost_histograms(binned, rows, n_lefts, segments, keys, gradients_hessians, group, n_slots,
                      backend, n_threads):
    """One block's histograms (float64) of the nodes ``keys``."""
    kernel, _ = resolve_kernel("build_histograms", backend)
    starts, stops = _local_segments(segments, keys, n_lefts, rows.shape[0])
    out = np.empty((starts.shape[0], binned.shape[1], n_slots, 2), dtype=np.float64)
    kernel(binned, rows, starts, stops, gradients_hessians[0][group],
           gradients_hessians[1][group], out, n_threads)
    return out


def _running_sums(previous, gradients_hessians, group):
    """``previous`` (gradient, hessian sums, float64) plus this block's, added one row at a time.

    Chained block after block, this is the in-memory grower's root sum with
    missing values, ``np.add.accumulate(g, dtype=float64)[-1]`` over all rows in
    order, to the same bits.
    """
    return np.array([np.add.accumulate(np.concatenate([[previous[i]], part[group].astype(np.float64)]))[-1]
                     for i, part in enumerate(gradients_hessians)])


def _add_arrays(parts):
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def _boost_add_leaves(rows, n_lefts, segments, keys, values, raw, group, backend, n_threads):
    kernel, _ = resolve_kernel("add_leaf_values", backend)
    starts, stops = _local_segments(segments, keys, n_lefts, rows.shape[0])
    raw = raw.copy()
    kernel(rows, starts, stops, values, raw[group], n_threads)
    return raw


def _take_rows(X, indices):
    return np.asarray(X)[indices]


def _gather_rows(blocks, sizes, indices):
    """Rows ``indices`` (sorted, global) of a blocked array, in memory."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    owner = np.searchsorted(offsets, indices, side="right") - 1
    parts = [_delayed(_take_rows, pure=True)(blocks[o], indices[owner == o] - offsets[o])
             for o in np.unique(owner)]
    return np.concatenate(dask.compute(*parts))


class _DaskTreeGrower(TreeGrower):
    """The in-memory grower with its two data passes (histograms, partitions) run on Dask.

    Every block keeps its own ``rows`` array, partitioned level by level on
    its worker. The parent grower places nodes in a global row layout
    ``[start, stop)``; here that layout is virtual (the root spans ``2**62``
    and a split node's children its two halves), and ``segments`` maps each
    node to how its local segment follows from its parent's on every block:
    ``(parent, level, j, side)``, the left counts of partition ``level``
    being computed on the workers. So a level costs one wait (the summed
    histograms), the partitions running on the workers in between. Split
    finding, the subtraction trick, node numbering and leaf values are the
    parent's, on the summed histograms.
    """

    VIRTUAL_ROWS = 1 << 62

    def __init__(self, blocks, block_rows, gradients_hessians, group, n_features, n_bins, params,
                 max_depth, gamma, learning_rate, kernels, backend, n_threads, has_missing,
                 grow_policy="depthwise", max_leaves=0):
        super().__init__(_ShapeOnly((self.VIRTUAL_ROWS, n_features)), n_bins, None, None, None,
                         None, params, max_depth, gamma, learning_rate, kernels, 1,
                         has_missing=has_missing, grow_policy=grow_policy, max_leaves=max_leaves)
        self.group = group
        self.blocks = blocks
        self.block_rows = list(block_rows)
        self.n_lefts = [[] for _ in blocks]
        self.gradients_hessians = gradients_hessians
        self.backend = backend
        self.task_threads = n_threads
        self.segments = {(0, self.VIRTUAL_ROWS): None}
        self.level = 0

    @staticmethod
    def _keys(nodes):
        return [(int(node["start"]), int(node["stop"])) for node in nodes]

    def _build(self, nodes, out):
        keys, segments = self._keys(nodes), dict(self.segments)
        parts = [_delayed(_boost_histograms, pure=True)(
                     binned, rows, n_lefts, segments, keys, gh, self.group, self.n_slots,
                     self.backend, self.task_threads)
                 for binned, rows, n_lefts, gh in zip(self.blocks, self.block_rows, self.n_lefts,
                                                      self.gradients_hessians)]
        out[...] = _tree_reduce(parts, _add_arrays).compute()

    def _partition(self, splitting):
        keys, segments = self._keys(splitting), dict(self.segments)
        features = np.array([node["split"][0] for node in splitting], dtype=np.intp)
        split_bins = np.array([node["split"][1] for node in splitting], dtype=np.intp)
        default_lefts = np.array([node["split"][2] for node in splitting], dtype=np.uint8)
        results = [_delayed(_boost_partition, pure=True, nout=2)(
                       binned, rows, n_lefts, segments, keys, features, split_bins, default_lefts,
                       self.n_bins, self.backend, self.task_threads)
                   for binned, rows, n_lefts in zip(self.blocks, self.block_rows, self.n_lefts)]
        results = dask.persist(*results)  # no wait: the next level's tasks depend on them
        for b, result in enumerate(results):
            self.block_rows[b] = result[0]
            self.n_lefts[b] = self.n_lefts[b] + [result[1]]
        for j, (node, key) in enumerate(zip(splitting, keys)):
            half = (key[1] - key[0]) // 2
            node["n_left"] = half
            middle = key[0] + half
            self.segments[(key[0], middle)] = (key, self.level, j, 0)
            self.segments[(middle, key[1])] = (key, self.level, j, 1)
        self.level += 1

    def _root_sums(self, hists):
        """The root's gradient sums; with missing values, the in-memory row-order sums.

        xgboost then sums every row's gradient in row order; the blocks hold the
        rows in order, so the running sum passes from block to block.
        """
        if not self.has_missing:
            return super()._root_sums(hists)
        sums = np.zeros(2)
        for gh in self.gradients_hessians:
            sums = _delayed(_running_sums, pure=True)(sums, gh, self.group)
        return sums.compute()

    def add_leaves(self, tree, raw):
        """Each block's margins plus the tree's leaf values (delayed, one per block)."""
        starts, stops, values = tree["leaf_segments"]
        keys = [(int(a), int(b)) for a, b in zip(starts, stops)]
        segments = dict(self.segments)
        return [_delayed(_boost_add_leaves, pure=True)(
                    rows, n_lefts, segments, keys, values, raw_b, self.group, self.backend,
                    self.task_threads)
                for rows, n_lefts, raw_b in zip(self.block_rows, self.n_lefts, raw)]


class _DaskBoostingMixin(_DaskPredictMixin):
    """``fit`` of a Dask collection: data-parallel histograms (xgboost.dask, LightGBM data-parallel)."""

    def fit(self, X, y, sample_weight=None, eval_set=None, verbose=True, cuts=None):
        """The in-memory ``fit``, or, for a Dask collection X, the data-parallel one."""
        if not is_dask_collection(X):
            return super().fit(X, y, sample_weight=sample_weight, eval_set=eval_set,
                               verbose=verbose, cuts=cuts)
        _no_eval_set(eval_set)
        X, y, sample_weight = self._dask_inputs(X, y, sample_weight)
        return self._fit_dask_target(X, y, sample_weight, cuts)

    # Parameters whose in-memory meaning the Dask fit does not implement, with their neutral value.
    _IN_MEMORY_ONLY = {"subsample": 1.0, "colsample_bytree": 1.0, "colsample_bylevel": 1.0,
                       "colsample_bynode": 1.0, "scale_pos_weight": 1.0,
                       "monotone_constraints": None, "interaction_constraints": None}

    def _fit_dask(self, X, y32, sample_weight, cuts, objective=None, n_classes=None):
        self._check_params()
        for name, neutral in self._IN_MEMORY_ONLY.items():
            if self._resolved(name) != neutral:
                raise ValueError(f"{name}={getattr(self, name)!r} is not supported on Dask input; "
                                 f"leave it at {neutral} or fit in memory (X.compute()).")
        if callable(self.objective):
            raise ValueError("a callable objective is not supported on Dask input; use a named "
                             "objective or fit in memory (X.compute()).")
        objective = objective or self.objective or self._objectives[0]
        self._check_objective(objective)
        n_threads = _task_threads(self.n_jobs)
        loss = (OBJECTIVES[objective](n_classes) if objective == "multi:softprob"
                else OBJECTIVES[objective]())
        K = loss.n_groups
        sizes = X.chunks[0]
        n_samples, n_features = int(X.shape[0]), int(X.shape[1])
        x_blocks = _blocks(X)
        weights = None
        if sample_weight is not None:
            weights = sample_weight.astype(np.float32)
            if bool((weights < 0).any().compute()):
                raise ValueError("sample_weight must be non-negative.")

        binner = BinMapper(self._resolved("max_bin"), random_state=self.random_state, backend=self.backend,
                           n_threads=n_threads)
        if cuts is None:
            # The rows the in-memory BinMapper would sample (same random_state, same rows).
            candidates = np.arange(n_samples)
            if weights is not None:
                w_all = np.asarray(weights.compute())
                if np.any(w_all == 0) and np.any(w_all > 0):
                    candidates = np.flatnonzero(w_all > 0)
            if binner.subsample is not None and candidates.shape[0] > binner.subsample:
                rng = check_random_state(self.random_state)
                candidates = candidates[np.sort(rng.choice(candidates.shape[0], binner.subsample,
                                                           replace=False))]
            binner.fit(_gather_rows(x_blocks, sizes, candidates))
        else:
            cut_ptr, cut_values = cuts
            if len(cut_ptr) != n_features + 1:
                raise ValueError(f"cuts has {len(cut_ptr) - 1} features, X has {n_features}.")
            binner.set_xgboost_cuts(cut_ptr, cut_values)
        binned = list(dask.persist(*[_delayed(_bin_block, pure=True)(b, binner)
                                     for b in x_blocks]))
        y_blocks = list(dask.persist(*_blocks(y32)))
        w_blocks = (list(dask.persist(*_blocks(weights))) if weights is not None
                    else [None] * len(x_blocks))
        nan_parts = [_delayed(_any_nan, pure=True)(b) for b in x_blocks]
        has_missing = bool(_tree_reduce(nan_parts, _add_arrays).compute()[0])

        if self.base_score is not None:
            base_score = float(self.base_score)
        elif objective == "multi:softprob":
            # Class weight totals, then the loss's own formula (a bincount of one row per class).
            parts = [_delayed(_class_weight_totals, pure=True)(yb, wb, K)
                     for yb, wb in zip(_blocks(y32.astype(np.intp)), w_blocks)]
            (totals,) = _tree_reduce(parts, _sum_combine).compute()
            base_score = loss.base_score(np.arange(K, dtype=np.float32), totals)
        else:
            if weights is None:
                total, count = y32.astype(np.float64).sum().compute(), n_samples
            else:
                total, count = dask.compute((y32.astype(np.float64) * weights).sum(),
                                            weights.astype(np.float64).sum())
            base_score = loss.base_score(np.array([total / count], dtype=np.float32), None)
        base_margin = np.broadcast_to(loss.score_to_margin(base_score), (K,)).astype(np.float32)
        kernels = {name: resolve_kernel(name, self.backend)[0]
                   for name in ("find_best_splits", "subtract_histograms")}
        params = self._train_params()
        raw = [_delayed(_boost_raw, pure=True)(n, base_margin) for n in sizes]
        identity = [_delayed(np.arange, pure=True)(n, dtype=np.intp) for n in sizes]
        forest = Forest(n_groups=K)
        progress = None
        if self._resolved("verbosity") > 0:
            from tqdm.auto import tqdm
            progress = tqdm(total=self._resolved("n_estimators"), desc=type(self).__name__)
        for _ in range(self._resolved("n_estimators")):
            gradients = list(dask.persist(*[
                _delayed(_boost_gradients, pure=True)(loss, yb, rb, wb)
                for yb, rb, wb in zip(y_blocks, raw, w_blocks)]))
            for k in range(K):
                grower = _DaskTreeGrower(binned, identity, gradients, k, n_features,
                                         binner.n_bins_, params, self._resolved("max_depth"),
                                         float(np.float32(self._resolved("gamma"))), self._resolved("learning_rate"),
                                         kernels, self.backend, n_threads, has_missing,
                                         grow_policy=self._resolved("grow_policy"),
                                         max_leaves=self._resolved("max_leaves"))
                tree = grower.grow()
                raw = list(dask.persist(*grower.add_leaves(tree, raw)))
                split = tree["left"] >= 0
                thresholds = np.zeros(split.shape[0], dtype=np.float32)
                thresholds[split] = binner.thresholds(tree["feature"][split], tree["bin"][split])
                forest.add_tree(tree, thresholds, group=k)
            if progress is not None:
                progress.update()
        if progress is not None:
            progress.close()
        # The in-memory estimator's own _set_fitted; the rows stay on the workers, so the
        # training record holds their shape only.
        training = Training(loss=loss, y=None, weights=None, binner=binner,
                            binned=_ShapeOnly((n_samples, n_features)), binned_columns=None,
                            has_missing=has_missing, base_score=base_score, base_margin=base_margin,
                            kernels=kernels, params=params, n_threads=n_threads, evals=[], metrics=[])
        return self._set_fitted(training, BoostResult(forest=forest, history={}))

    def _dask_inputs(self, X, y, sample_weight):
        X, columns = _checked_X(X, self, allow_nan=True, as_dtype=np.float32)  # NaN is a missing value, infinity an error
        X = X.astype(np.float32)
        y, sample_weight = _aligned(X, y, sample_weight)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}; pass y.ravel().")
        _set_feature_names(self, columns, X.shape[1])
        return X, y, sample_weight


_BOOST_DOC = """{name} on Dask: :class:`fastscratch.{name}` whose ``fit`` also takes Dask
    arrays and dataframes, data-parallel as xgboost.dask and LightGBM's
    data-parallel mode.

    The rows stay in their blocks on the workers, binned once with cut points
    from ``cuts`` (xgboost's format) or from the rows the in-memory
    :class:`~fastscratch.boosting.binning.BinMapper` would sample (the same
    rows for the same ``random_state``). For every tree, each worker computes
    its rows' gradients, and for every level it builds the histograms of its
    rows of the nodes to build (our ``build_histograms`` kernel); the client
    sums them (tree reduction), chooses the splits once with the in-memory
    grower (``find_best_splits``, the subtraction trick, xgboost's node
    numbering) and broadcasts them; each worker partitions its rows
    (``partition_rows``) and, at the end of the tree, adds the leaf values to
    its margins. With the same cut points the trees equal the in-memory ones
    (up to the rounding of the summed float64 histograms). ``predict*`` of a
    Dask collection returns Dask arrays (one task per block).
    Parameters and attributes: those of :class:`fastscratch.{name}`.
"""


def _no_eval_set(eval_set):
    if eval_set is not None:
        raise TypeError("eval_set is not supported with Dask input; evaluate the fitted model "
                        "with predict on the evaluation data.")


class XGBRegressor(_DaskBoostingMixin, _boosting.XGBRegressor):
    __doc__ = _BOOST_DOC.format(name="XGBRegressor")

    def _fit_dask_target(self, X, y, sample_weight, cuts):
        y = _numeric_target(y)
        if not bool(da.isfinite(y).all().compute()):
            raise ValueError("y contains NaN or infinity; remove or impute those targets.")
        return self._fit_dask(X, y.astype(np.float32), sample_weight, cuts)


class XGBClassifier(_DaskBoostingMixin, _boosting.XGBClassifier):
    __doc__ = _BOOST_DOC.format(name="XGBClassifier")

    def _fit_dask_target(self, X, y, sample_weight, cuts):
        classes, codes = _classes_and_codes(y)
        n_classes = classes.shape[0]
        if n_classes < 2:
            raise ValueError(f"y has one class ({classes[0]!r}); a classifier needs at least two.")
        objective = self._classifier_objective(n_classes)
        if objective == "binary:logistic" and n_classes > 2:
            raise ValueError(f"objective='binary:logistic' needs exactly two classes in y, got "
                             f"{n_classes}; use objective='multi:softprob' (or None).")
        self.classes_ = classes
        self.n_classes_ = n_classes
        return self._fit_dask(X, codes.astype(np.float32), sample_weight, cuts, objective,
                              n_classes)
