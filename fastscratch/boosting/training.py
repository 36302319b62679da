"""The boosting loop: rounds of gradients, trees, margins, evaluation and early stopping.

:meth:`_XGBModel._prepare_training <fastscratch.boosting.sklearn._XGBModel._prepare_training>`
checks the inputs and computes, once, what every round reads (a
:class:`Training`); :func:`boost` runs the rounds and returns a
:class:`BoostResult`, which ``_set_fitted`` turns into the fitted attributes.

One round, for a model with ``K`` output groups (classes of ``multi:softprob``,
else 1):

1. the gradients and hessians of every group from the margins at the start
   of the round (:mod:`.loss`);
2. with ``K > 1`` and no row sampling, the roots of the round's ``K`` trees in
   one pass over the binned data (``build_class_histograms``);
3. per group, a tree (:class:`~.grower.TreeGrower`), its leaf values added
   to the training margins (through the rows of each leaf, or by walking
   the tree for every row when rows were sampled); with ``K > 1``, several
   threads and no sampling, the ``K`` trees grow side by side, one per
   thread (:class:`_ClassTreePool`), with the same results;
4. the eval sets' margins, metrics and the early-stopping count.
"""

import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from .grower import HistogramBuffers, TreeGrower
from .predictor import Forest
from .quantized import QuantizedTreeGrower

# Histogram buffers the concurrently growing class trees may hold together (1 GiB): fewer
# trees grow at once when deep trees would need more, and one at a time below two.
POOL_HISTOGRAM_BYTES = 1 << 30

KERNELS = ("build_histograms", "build_class_histograms", "subtract_histograms",
           "find_best_splits", "find_best_splits_monotone", "partition_rows", "add_leaf_values")


@dataclass
class Training:
    """What every boosting round reads, prepared once per fit.

    Attributes
    ----------
    loss : objective object of :mod:`.loss` (``n_groups`` output groups)
    y : ndarray of shape (n,), float32
    weights : ndarray of shape (n,), float32, or None
        Sample weights with ``scale_pos_weight`` folded in.
    binner : BinMapper
    binned : ndarray of shape (n, d), uint8, row-major
    binned_columns : ndarray of shape (n, d), uint8, column-major
        The same codes, read by the partitions.
    has_missing : bool
    base_score : float
    base_margin : ndarray of shape (n_groups,), float32
    kernels : dict
        Kernel functions by name (:data:`KERNELS`).
    params : ndarray of shape (4,), float64
        ``[reg_lambda, reg_alpha, min_child_weight, max_delta_step]``.
    n_threads : int
    evals : list of (name, X, y)
    metrics : list of (name, function, maximize)
        From :func:`.loss.get_metric`: ``function(y, prediction, weight)``.
    constraints : TreeConstraints or None
        Monotone and interaction constraints (:mod:`.constraints`).
    init_margin : ndarray of shape (n_groups, n), float32, or None
        Margins the training rows start from (xgboost's ``base_margin``, or a
        continued model's predictions); None: ``base_margin`` for every row.
    eval_weights, eval_margins : list or None
        Per eval set: its weights (or None) and starting margins (or None).
    forest : Forest or None
        The trees of a continued model (``xgb_model``), which new rounds extend.
    """

    loss: object
    y: np.ndarray
    weights: object
    binner: object
    binned: np.ndarray
    binned_columns: np.ndarray
    has_missing: bool
    base_score: float
    base_margin: np.ndarray
    kernels: dict
    params: np.ndarray
    n_threads: int
    evals: list
    metrics: list
    constraints: object = None
    categorical: object = None  # CategoricalSplits, or None: every feature numeric
    init_margin: object = None
    eval_weights: list = None
    eval_margins: list = None
    forest: object = None
    sparse: object = None  # SparseTable (.sparse): trees grown from stored entries; None: dense
    quantizer: object = None  # GradientQuantizer (.quantized): integer histograms; None: exact


@dataclass
class BoostResult:
    """The trees and the evaluation history of a finished :func:`boost` run."""

    forest: Forest
    history: dict
    best_iteration: object = None  # int, with early stopping
    best_score: object = None


class Sampler:
    """Row and column subsampling, drawn from one generator in a fixed order.

    ``subsample``: each tree's root keeps each row with that probability;
    ``colsample_bytree``, ``colsample_bylevel``, ``colsample_bynode``: nested
    random subsets of ``max(1, round(fraction * n))`` features per tree, per
    level, per node, as in xgboost. The draws never depend on the thread count.
    The Dask fit draws from it on the client, tree after tree as here, and sends
    each worker its slice of :meth:`row_mask`.
    """

    def __init__(self, model, n_rows, n_features):
        self.rng = check_random_state(model._resolved("random_state"))
        self.subsample = model._resolved("subsample")
        self.fractions = tuple(model._resolved(name) for name in (
            "colsample_bytree", "colsample_bylevel", "colsample_bynode"))
        self.n_rows, self.n_features = n_rows, n_features

    def _subset(self, features, fraction):
        if fraction >= 1.0:
            return features
        keep = max(1, int(round(fraction * features.shape[0])))
        return np.sort(self.rng.choice(features, keep, replace=False))

    def row_mask(self):
        """The rows the next tree keeps (bool, ``(n_rows,)``), or None without row subsampling."""
        if self.subsample >= 1.0:
            return None
        return self.rng.random_sample(self.n_rows) < self.subsample

    def sample_rows(self, rows, identity):
        """Fill ``rows`` (sampled rows first); returns how many were sampled."""
        chosen = self.row_mask()
        if chosen is None:
            np.copyto(rows, identity)
            return self.n_rows
        m = int(np.count_nonzero(chosen))
        rows[:m] = identity[chosen]
        rows[m:] = identity[~chosen]
        return m

    def feature_sampler(self):
        if all(fraction >= 1.0 for fraction in self.fractions):
            return None
        tree_features = self._subset(np.arange(self.n_features), self.fractions[0])
        by_level = {}

        def allowed(depth, n_nodes):
            if depth not in by_level:
                by_level[depth] = self._subset(tree_features, self.fractions[1])
            mask = np.zeros((n_nodes, self.n_features), dtype=np.uint8)
            for j in range(n_nodes):
                mask[j, self._subset(by_level[depth], self.fractions[2])] = 1
            return mask
        return allowed


def _add_tree_to_margins(training, tree, thresholds, rows, n_root_rows, margins, backend):
    """``margins += tree(x)`` for every training row (float32, as xgboost's prediction cache)."""
    if n_root_rows == margins.shape[0]:
        # Every row is in one leaf's segment of ``rows``.
        training.kernels["add_leaf_values"](rows, *tree["leaf_segments"], margins,
                                            training.n_threads)
    else:  # rows left out of the sample: walk the tree for every row
        single = Forest(n_groups=1)
        single.add_tree(tree, thresholds)
        margins += single.predict_binned(training.binned, training.binner.n_bins_, 0.0, backend,
                                         training.n_threads)[:, 0].astype(np.float32)


def _thresholds(binner, tree):
    """Each split node's threshold in feature units (0 for leaves), float32."""
    split = tree["left"] >= 0
    thresholds = np.zeros(split.shape[0], dtype=np.float32)
    thresholds[split] = binner.thresholds(tree["feature"][split], tree["bin"][split])
    return thresholds


class _ClassTreePool:
    """The ``K`` class trees of a multiclass round grown at the same time, one per thread.

    A round's class trees are independent once its gradients are known: each
    reads the binned data and its own class's gradients and writes its own
    row of margins. With ``n_threads`` threads, ``m = min(n_threads, K)``
    trees grow at once, each with kernels on ``n_threads // m`` threads (one
    with 2 threads and 10 classes; the kernels release the GIL), instead of
    one tree at a time whose small levels and Python steps leave the other
    threads idle. Each running tree takes a work set (``rows``, ``scratch``,
    histogram buffers) from a queue. The kernels give the same bits on any
    thread count, so the trees equal those grown one after another.

    Used when nothing draws random numbers per tree (no row or column
    sampling, whose draws must come in class order), for depth-wise growth
    of dense data without categorical features or leaf adaptation, and when
    no kernel is Numba's (its default threading layer aborts on calls from
    two threads).
    """

    def __init__(self, n_threads, tree_threads, n, grow_tree, kernels, identity):
        self.n_threads, self.tree_threads = n_threads, tree_threads
        self.work_sets = queue.SimpleQueue()
        for _ in range(n_threads):
            self.work_sets.put((np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp),
                                HistogramBuffers()))
        self.n, self.grow_tree, self.kernels, self.identity = n, grow_tree, kernels, identity

    @classmethod
    def create(cls, model, training, sampler, n, grow_tree):
        """A pool when the fit qualifies (see the class docstring), else None."""
        K = training.loss.n_groups
        if (K < 2 or training.n_threads < 2 or sampler.subsample < 1.0
                or any(fraction < 1.0 for fraction in sampler.fractions)
                or model._resolved("grow_policy") != "depthwise"
                or training.categorical is not None or training.sparse is not None
                or hasattr(training.loss, "adapt_leaves")
                or any(getattr(kernel, "__module__", "").endswith("_numba")
                       for kernel in training.kernels.values())):
            return None
        n_trees_at_once = min(training.n_threads, K,
                              POOL_HISTOGRAM_BYTES // cls.histogram_bytes(model, training, n))
        if n_trees_at_once < 2:
            return None
        return cls(n_trees_at_once, training.n_threads // n_trees_at_once, n, grow_tree,
                   training.kernels, np.arange(n, dtype=np.intp))

    @staticmethod
    def histogram_bytes(model, training, n):
        """Most bytes one growing tree's two histogram buffers reach: its deepest level's
        nodes (``2**(max_depth - 1)``, at most ``n``) x features x bin slots x (g, h) float64."""
        max_depth = model._resolved("max_depth")
        widest_level = n if max_depth <= 0 else min(n, 2 ** (max_depth - 1))
        n_slots = int(training.binner.n_bins_.max()) + 1
        return 2 * widest_level * training.binned.shape[1] * n_slots * 2 * 8

    def _grow(self, k, root_histogram, margins):
        rows, scratch, buffers = work = self.work_sets.get()
        try:
            np.copyto(rows, self.identity)
            tree = self.grow_tree(k, rows, scratch, buffers, self.n, None, root_histogram,
                                  self.tree_threads)
            self.kernels["add_leaf_values"](rows, *tree["leaf_segments"], margins,
                                            self.tree_threads)
            return tree
        finally:
            self.work_sets.put(work)

    def round(self, root_hists, raw):
        """The round's trees in class order; each tree's values are added to ``raw[k]``."""
        # Threads started per round (tens of microseconds against a round's tens of
        # milliseconds), so no pool outlives the fit.
        with ThreadPoolExecutor(max_workers=self.n_threads,
                                thread_name_prefix="fastscratch-class-trees") as executor:
            return list(executor.map(lambda k: self._grow(k, root_hists[k], raw[k]),
                                     range(raw.shape[0])))


def boost(model, training, verbose=True):
    """Run ``model.n_estimators`` boosting rounds (fewer with early stopping).

    Parameters
    ----------
    model : _XGBModel
        Read for its parameters only.
    training : Training
    verbose : bool or int
        Print the eval metrics every round (True) or every ``verbose`` rounds.

    Returns
    -------
    BoostResult
    """
    loss, binner, binned = training.loss, training.binner, training.binned
    kernels = training.kernels
    evals, metrics, n_threads = training.evals, training.metrics, training.n_threads
    K = loss.n_groups
    n = binned.shape[0]
    raw = np.empty((K, n), dtype=np.float32)  # one row of margins per group
    raw[:] = (training.base_margin[:, None] if training.init_margin is None
              else training.init_margin)
    gradients = np.empty((K, n), dtype=np.float32)
    hessians = np.empty((K, n), dtype=np.float32)
    identity = np.arange(n, dtype=np.intp)
    rows = np.empty(n, dtype=np.intp)
    scratch = np.empty(n, dtype=np.intp)
    n_slots = int(binner.n_bins_.max()) + 1
    forest = Forest(n_groups=K) if training.forest is None else training.forest
    first_round = forest.n_trees // K  # rounds of a continued model, before these
    progress = None
    if model._resolved("verbosity") > 0:
        from tqdm.auto import tqdm
        progress = tqdm(total=model._resolved("n_estimators"), desc=type(model).__name__)
    history = {name: {metric: [] for metric, _, _ in metrics} for name, _, _ in evals}
    eval_margins = [np.repeat(training.base_margin[:, None], X_eval.shape[0], axis=1)
                    if given is None else given.copy()
                    for (_, X_eval, _), given in zip(evals, training.eval_margins
                                                     or [None] * len(evals))]
    eval_weights = training.eval_weights or [None] * len(evals)
    sampler = Sampler(model, n, binned.shape[1])
    histogram_buffers = HistogramBuffers()  # every tree's levels, reused

    # Quantized gradients (opt-in): the same growth on integer histograms (.quantized).
    grower_class, quantized = TreeGrower, {}
    if training.quantizer is not None:
        grower_class, quantized = QuantizedTreeGrower, {"quantizer": training.quantizer}

    def grow_tree(k, rows, scratch, buffers, n_root_rows, feature_sampler, root_histogram,
                  tree_threads):
        return grower_class(binned, binner.n_bins_, gradients[k], hessians[k], rows, scratch,
                            training.params, model._resolved("max_depth"),
                            float(np.float32(model._resolved("gamma"))),
                            model._resolved("learning_rate"), kernels,
                            tree_threads, has_missing=training.has_missing,
                            n_root_rows=n_root_rows, feature_sampler=feature_sampler,
                            grow_policy=model._resolved("grow_policy"),
                            max_leaves=model._resolved("max_leaves"),
                            binned_columns=training.binned_columns,
                            root_histogram=root_histogram, histogram_buffers=buffers,
                            constraints=training.constraints,
                            categorical=training.categorical,
                            source=None if training.sparse is None else training.sparse.source(
                                rows, scratch, gradients[k], hessians[k], n_root_rows),
                            **quantized).grow()

    class_pool = _ClassTreePool.create(model, training, sampler, n, grow_tree)
    best_score, best_iteration, stale = None, None, 0
    for iteration in range(model._resolved("n_estimators")):
        # Gradients of every group from the margins at the start of the round.
        if K == 1:
            loss.gradients(training.y, raw[0], training.weights, gradients[0], hessians[0])
        else:
            loss.gradients(training.y, raw, training.weights, gradients, hessians)
        if training.quantizer is not None:  # one output group (refused otherwise at fit)
            training.quantizer.quantize(gradients[0], hessians[0])
        new_trees = Forest(n_groups=K)
        root_hists = None
        if K > 1 and sampler.subsample >= 1.0 and training.sparse is None:
            # Every class's tree starts from all the rows: one pass builds all the roots.
            root_hists = np.empty((K, binned.shape[1], n_slots, 2))
            kernels["build_class_histograms"](binned, identity, 0, n, gradients, hessians,
                                              root_hists, n_threads)
        class_trees = None if class_pool is None else class_pool.round(root_hists, raw)
        for k in range(K):
            if class_trees is not None:  # grown, and added to raw[k], by the pool
                tree = class_trees[k]
                thresholds = _thresholds(binner, tree)
                forest.add_tree(tree, thresholds, group=k)
                new_trees.add_tree(tree, thresholds, group=k)
                continue
            n_root_rows = sampler.sample_rows(rows, identity)
            tree = grow_tree(k, rows, scratch, histogram_buffers, n_root_rows,
                             sampler.feature_sampler(),
                             None if root_hists is None else root_hists[k], n_threads)
            if hasattr(loss, "adapt_leaves"):  # reg:absoluteerror, reg:quantileerror
                loss.adapt_leaves(tree, rows[:n_root_rows], training.y, raw[k], training.weights,
                                  model._resolved("learning_rate"))
            thresholds = _thresholds(binner, tree)
            forest.add_tree(tree, thresholds, group=k)
            new_trees.add_tree(tree, thresholds, group=k)
            _add_tree_to_margins(training, tree, thresholds, rows, n_root_rows, raw[k],
                                 model.backend)
        line = []
        for (name, X_eval, y_eval), margin, w_eval in zip(evals, eval_margins, eval_weights):
            # The new trees' values, added in float32 as xgboost's prediction cache.
            margin += new_trees.predict_raw(X_eval, 0.0, model.backend,
                                            n_threads).T.astype(np.float32)
            prediction = loss.transform(margin[0] if K == 1 else margin.T)
            for metric, function, _ in metrics:
                value = function(y_eval, prediction, w_eval)
                history[name][metric].append(value)
                line.append(f"{name}-{metric}:{value:.5f}")
        if line and verbose and (verbose is True or iteration % int(verbose) == 0):
            print(f"[{iteration}]\t" + "\t".join(line))
        if model.early_stopping_rounds is not None:
            score = history[evals[-1][0]][metrics[-1][0]][-1]
            maximize = metrics[-1][2]
            if best_score is None or (score > best_score if maximize else score < best_score):
                best_score, best_iteration, stale = score, iteration, 0
            else:
                stale += 1
                if stale >= model.early_stopping_rounds:
                    break
        if progress is not None:
            progress.set_postfix({f"train-{loss.default_metric}":
                                  loss.loss(training.y, raw[0] if K == 1 else raw,
                                            training.weights)})
            progress.update()
    if progress is not None:
        progress.close()
    if best_iteration is not None:
        best_iteration += first_round  # counted over every round, as xgboost's
    return BoostResult(forest, history, best_iteration, best_score)
