"""Growing one tree from gradients and hessians, level by level (xgboost ``depthwise``).

The grower owns the loop; the kernels do the work:

1. the root's histogram over all rows (``build_histograms``);
2. for all nodes of the current level at once, the best split of every
   feature (``find_best_splits``), then each node's best feature (ties to the
   smaller index);
3. a node is split when its gain is above xgboost's ``kRtEps`` (1e-6) and at
   least ``gamma``, both children have a positive hessian sum, and its depth
   is below ``max_depth``; its rows are then partitioned (``partition_rows``);
4. the children's histograms: the child with the smaller hessian sum is
   built from its rows (``build_histograms``), the other one is the parent's
   minus it (``subtract_histograms``), as in xgboost;
5. at the end, each leaf's value :math:`\\eta\\, w^*` is added to the training
   margins of its rows (``add_leaf_values``).

Each kernel call covers a whole level, so a tree of depth 6 costs at most
about 25 parallel regions, not hundreds (thread wake-ups dominate small
nodes); the kernels run small levels on one thread (on an idle machine,
histograms below 2**14 rows and partitions below 2**17 rows, about 0.25 ms of
work each; split searches below 2**15 histogram slots), and the histograms and
partitions do so up to 8 times larger sizes while other processes share the
cores, where a parallel region waits longer for its second thread than the
work takes (``kernels._threads.parallel_minimum``). The partitions read a
column-major copy of the bins (``binned_columns``).

Nodes are numbered as xgboost numbers them (children get consecutive ids when
their parent is split, the level's nodes in order), so a tree can be compared
with xgboost's JSON dump node by node. A node being grown is a :class:`TreeNode`,
its best split a :class:`SplitCandidate`; :meth:`TreeGrower.grow` returns the
tree as flat arrays.
"""

import heapq
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from ..kernels.splitting_numpy import (FLOAT32_MAX, bounded_node_score, bounded_weight,
                                       leaf_weight, node_score)
from .constraints import TreeConstraints, allowed_after

K_RT_EPS = 1e-6  # xgboost's kRtEps: a split must gain more than this


class SplitCandidate(NamedTuple):
    """The best split of a node: rows with ``binned[:, feature] <= bin`` go left."""

    feature: int
    bin: int
    default_left: int  # 1: rows with a missing value go left
    gain: float
    left_sums: tuple  # (G, H) of the left child
    right_sums: tuple  # (G, H) of the right child
    categories: object = None  # categorical split: uint8 mask of the categories going right


@dataclass(slots=True, eq=False)
class TreeNode:
    """A node of the tree being grown.

    Its rows are ``rows[start:stop]`` of the grower's work array (for a
    :class:`TreeGrower` ``source``, a range that only names the node). Two
    nodes are equal only when they are the same object.

    Attributes
    ----------
    id : int
        xgboost's node number (children numbered when their parent splits).
    start, stop : int
        The node's segment of ``rows``.
    depth : int
        0 at the root.
    g, h : float
        Sums of the gradients and hessians of its rows (float64; the root's are
        set once its histogram is built).
    split : SplitCandidate or None
        Its best split once evaluated; None: a leaf (no split worth making).
    children : tuple of (int, int) or None
        The ids of its left and right children once it is split; None: a leaf.
    n_left : int or None
        Rows going left, set by the partition: the left child owns
        ``rows[start:start + n_left]``.
    weight : float or None
        Its weight clipped to its bounds when its parent split under monotone
        constraints; None: the unconstrained leaf weight.
    bounds : tuple of (float, float)
        Lower and upper bound of its weight (monotone constraints); unbounded
        by default.
    used : frozenset of int
        Features split on along its path (interaction constraints).
    child_weights : tuple of (float, float) or None
        Its best split's children's weights within its bounds (monotone
        constraints), from its evaluation until it splits.
    hist : ndarray of shape (d, n_slots, 2) or None
        Its histogram while it waits to split (``lossguide`` growth).

    Notes
    -----
    A node's leaf weight is :math:`w^* = -T_\\alpha(G) / (H + \\lambda)`
    (clipped to ``max_delta_step`` and, with monotone constraints, to
    ``bounds``), with :math:`G` = ``g``, :math:`H` = ``h`` and :math:`T_\\alpha`
    the soft threshold of ``reg_alpha`` (:mod:`fastscratch.kernels.splitting_numpy`).
    """

    id: int
    start: int
    stop: int
    depth: int
    g: float = 0.0
    h: float = 0.0
    split: Optional[SplitCandidate] = None
    children: Optional[tuple] = None
    n_left: Optional[int] = None
    weight: Optional[float] = None
    bounds: tuple = (-FLOAT32_MAX, FLOAT32_MAX)
    used: frozenset = frozenset()
    child_weights: Optional[tuple] = None
    hist: Optional[np.ndarray] = None


class HistogramBuffers:
    """Two float64 buffers for the histograms of consecutive levels, reused tree after tree.

    A level's histograms take ``nodes x features x (max_bin + 1) x 2`` float64
    (59 MB for 512 nodes of 28 features and 256 bins); allocated afresh at
    every level, each is new memory whose pages the system must map and zero
    on first touch, which cost more than the histograms on deep trees of few
    rows. :class:`TreeGrower` takes level ``L``'s histograms from buffer
    ``L % 2`` (it reads the parent level's while it fills the children's);
    a buffer only grows.
    """

    def __init__(self):
        self._buffers = [np.empty(0), np.empty(0)]

    def take(self, which, shape):
        """A C-contiguous float64 array of ``shape`` in buffer ``which`` (0 or 1), not zeroed."""
        size = int(np.prod(shape))
        if self._buffers[which].shape[0] < size:
            self._buffers[which] = None  # free the smaller one first
            self._buffers[which] = np.empty(size, dtype=np.float64)
        return self._buffers[which][:size].reshape(shape)


class TreeGrower:
    """Depth-wise growth of one regression tree on binned data, a level per kernel call.

    Parameters
    ----------
    binned : ndarray of shape (n, d), uint8
    n_bins : ndarray of shape (d,), intp
        Bins per feature (also each feature's missing code).
    gradients, hessians : ndarray of shape (n,), float32
    rows : ndarray of shape (n,), intp
        Work array, reordered in place: the segments of the leaves at the end.
    scratch : ndarray of shape (n,), intp
        Work array of the partitions.
    params : ndarray of shape (4,), float64
        ``[reg_lambda, reg_alpha, min_child_weight, max_delta_step]``.
    max_depth, gamma, learning_rate : numbers
    kernels : dict
        Kernel functions by name.
    n_threads : int
    allowed_features : ndarray of shape (d,), uint8 or None
        Features the tree may split on (None: all).
    has_missing : bool
        Whether the data have missing values (changes how xgboost sums the root).
    n_root_rows : int or None
        The root owns ``rows[:n_root_rows]`` (row subsampling); None: all rows.
    feature_sampler : callable or None
        ``feature_sampler(depth, n_nodes)`` returns the (n_nodes, d) uint8 mask of
        the features each node of a level may split on (column subsampling).
    grow_policy : {"depthwise", "lossguide"}
    max_leaves : int
    binned_columns : ndarray of shape (n, d), uint8, column-major, or None
        The same codes as ``binned`` stored feature by feature (``np.asfortranarray``),
        read by the partitions: a split reads one feature of each row, and one
        column (n bytes) stays in cache where the rows (n x d bytes) do not.
        None: the partitions read ``binned``.
    root_histogram : ndarray of shape (d, n_slots, 2), float64, or None
        The root's histogram when the caller built it already (a multiclass
        round builds the roots of all its trees in one pass); None: built here.
    histogram_buffers : HistogramBuffers or None
        Where depth-wise growth keeps its levels' histograms (the boosting
        loop passes one for all its trees); None: allocated at every level.
    constraints : TreeConstraints or None
        Monotone and interaction constraints (:mod:`.constraints`), as
        xgboost's: each node keeps its weight bounds (``TreeNode.bounds``) and the
        features its path used (``TreeNode.used``); the monotone split search is
        ``find_best_splits_monotone`` and a child's weight is clipped to its
        parent's bounds.
    source : object or None
        Where the rows are when they are not here (the Dask fit's workers,
        :class:`fastscratch.distributed.boosting.ShardedRows`); None: the local
        ``binned``, ``gradients``, ``hessians`` and ``rows``. A source has
        ``build_histograms(nodes, out)`` (the nodes' histograms, summed over
        its rows, into ``out``), ``partition(nodes)`` (each split node's rows
        left then right; sets ``node.n_left``, which places the children in
        ``[start, stop)``) and ``row_order_sums()`` (the root's gradient and
        hessian sums over the rows in order, float64, used with missing
        values). ``binned`` then gives the shape only. The split search, the
        subtraction trick, node numbering and leaf values stay here.
    categorical : CategoricalSplits or None
        The categorical features and their kernels (:mod:`.categorical`);
        None: every feature is numeric.
    """

    def __init__(self, binned, n_bins, gradients, hessians, rows, scratch, params, max_depth,
                 gamma, learning_rate, kernels, n_threads, allowed_features=None,
                 has_missing=False, n_root_rows=None, feature_sampler=None,
                 grow_policy="depthwise", max_leaves=0, binned_columns=None,
                 root_histogram=None, histogram_buffers=None, constraints=None,
                 source=None, categorical=None):
        self.binned = binned
        self.categorical = categorical
        constraints = constraints or TreeConstraints()
        self.monotone = constraints.monotone  # int8 (d,) or None
        self.interaction_sets = constraints.interaction_sets
        self.source = source
        self.histogram_buffers = histogram_buffers
        self.binned_columns = binned if binned_columns is None else binned_columns
        self.root_histogram = root_histogram
        self.n_bins = n_bins
        self.n_slots = int(n_bins.max()) + 1
        self.gradients = gradients
        self.hessians = hessians
        self.rows = rows
        self.scratch = scratch
        self.params = params
        self.max_depth = max_depth
        self.gamma = gamma
        self.learning_rate = np.float32(learning_rate)
        self.kernels = kernels
        self.n_threads = n_threads
        self.has_missing = has_missing
        self.n_root_rows = binned.shape[0] if n_root_rows is None else int(n_root_rows)
        self.feature_sampler = feature_sampler
        self.grow_policy = grow_policy
        self.max_leaves = int(max_leaves)
        n_features = binned.shape[1]
        self.allowed_features = (np.ones(n_features, dtype=np.uint8) if allowed_features is None
                                 else np.asarray(allowed_features, dtype=np.uint8))

    def _hists(self, k, depth=None):
        """Room for ``k`` nodes' histograms (of level ``depth`` when buffers are reused)."""
        shape = (k, self.binned.shape[1], self.n_slots, 2)
        if depth is None or self.histogram_buffers is None:
            return np.empty(shape, dtype=np.float64)
        return self.histogram_buffers.take(depth % 2, shape)

    def _build(self, nodes, out):
        if self.source is not None:
            return self.source.build_histograms(nodes, out)
        starts = np.array([node.start for node in nodes], dtype=np.intp)
        stops = np.array([node.stop for node in nodes], dtype=np.intp)
        self.kernels["build_histograms"](self.binned, self.rows, starts, stops, self.gradients,
                                         self.hessians, out, self.n_threads)

    def _evaluate(self, level, hists):
        """Best split of each node of ``level`` (its histograms in ``hists``, same order)."""
        k, d = len(level), self.binned.shape[1]
        sums = np.array([(node.g, node.h) for node in level], dtype=np.float64)
        if self.monotone is not None:
            bounds = np.array([node.bounds for node in level], dtype=np.float64)
            scores = bounded_node_score(sums[:, 0], sums[:, 1], bounds[:, 0].astype(np.float32),
                                        bounds[:, 1].astype(np.float32),
                                        self.params).astype(np.float64)
        else:
            scores = node_score(sums[:, 0], sums[:, 1], self.params).astype(np.float64)
        gain = np.empty((k, d), dtype=np.float64)
        split_bin = np.empty((k, d), dtype=np.intp)
        default_left = np.empty((k, d), dtype=np.uint8)
        left_sums = np.empty((k, d, 2), dtype=np.float64)
        if self.feature_sampler is not None:
            allowed = self.feature_sampler(level[0].depth, k)
        else:
            allowed = np.empty((k, d), dtype=np.uint8)
            allowed[:] = self.allowed_features
        if self.interaction_sets is not None:
            for j, node in enumerate(level):
                if node.used:  # the root may split on any feature
                    allowed[j] &= allowed_after(node.used, self.interaction_sets, d)
        # Categorical features are searched by their own kernel, after the numeric ones.
        numeric = allowed if self.categorical is None else self.categorical.numeric_only(allowed)
        if self.monotone is not None:
            self.kernels["find_best_splits_monotone"](
                hists, self.n_bins, sums, scores, self.params, numeric, self.monotone, bounds,
                gain, split_bin, default_left, left_sums, self.n_threads)
        else:
            self.kernels["find_best_splits"](hists, self.n_bins, sums, scores, self.params,
                                             numeric, gain, split_bin, default_left, left_sums,
                                             self.n_threads)
        categories = None
        if self.categorical is not None:
            categories = self.categorical.find_splits(self, hists, sums, scores, allowed, gain,
                                                      split_bin, default_left, left_sums)
        best = np.argmax(gain, axis=1)  # first maximum: ties to the smaller feature
        if self.monotone is not None:
            # The children's weights of each node's best split, clipped to the node's
            # bounds (for the whole level at once; read by _constrain_children).
            chosen = left_sums[np.arange(k), best]
            child_weights = np.stack([
                bounded_weight(g, h, bounds[:, 0], bounds[:, 1], self.params)
                for g, h in ((chosen[:, 0], chosen[:, 1]),
                             (sums[:, 0] - chosen[:, 0], sums[:, 1] - chosen[:, 1]))], axis=1)
        # Each node's best split as Python numbers, gathered once for the level (the
        # same float64 values; reading numpy scalars node by node cost more).
        nodes_index = np.arange(k)
        best_gain = gain[nodes_index, best].tolist()
        best_bin = split_bin[nodes_index, best].tolist()
        best_default_left = default_left[nodes_index, best].tolist()
        best_left_sums = left_sums[nodes_index, best].tolist()
        for j, (node, f) in enumerate(zip(level, best.tolist())):
            node_gain = best_gain[j]
            left_g, left_h = best_left_sums[j]
            right_g, right_h = node.g - left_g, node.h - left_h
            node.split = None
            if not (node_gain > K_RT_EPS) or node_gain < self.gamma or left_h == 0.0 \
                    or right_h == 0.0:
                continue
            node.split = SplitCandidate(f, best_bin[j], best_default_left[j], node_gain,
                                           (left_g, left_h), (right_g, right_h),
                                           None if categories is None else categories(j, f))
            if self.monotone is not None:
                node.child_weights = (child_weights[j, 0], child_weights[j, 1])

    def grow(self):
        """Grow the tree; returns a dict of flat node arrays (xgboost's numbering).

        Keys: ``feature``, ``bin``, ``default_left``, ``left``, ``right``,
        ``value`` (leaf value with the learning rate, float32), ``gain``,
        ``cover`` (hessian sum), and ``leaf_segments`` (starts, stops, values)
        of ``rows`` per leaf.
        """
        root = TreeNode(id=0, start=0, stop=self.n_root_rows, depth=0)
        nodes = [root]
        if self.grow_policy == "lossguide":
            return self._grow_lossguide(root, nodes)
        hists = self._root_histogram(root, depth=0)
        level = [root]  # nodes whose histograms are hists[0..k), in order
        while level:
            self._evaluate(level, hists)
            splitting = [(j, node) for j, node in enumerate(level) if node.split is not None]
            if not splitting:
                break
            splitting.sort(key=lambda item: item[1].id)  # xgboost numbers children in id order
            self._partition([node for _, node in splitting])
            built, subtracted, parent_index = [], [], []
            for j, node in splitting:
                left, right = self._split(node, len(nodes))
                nodes += [left, right]
                # Build the child with the smaller hessian sum; subtract for its sibling.
                small, large = (right, left) if right.h < left.h else (left, right)
                built.append(small)
                subtracted.append(large)
                parent_index.append(j)
            children_depth = level[0].depth + 1
            if self.max_depth > 0 and children_depth >= self.max_depth:  # 0: no limit, as xgboost
                break
            hists = self._children_histograms(hists, parent_index, built, children_depth)
            level = built + subtracted
        return self._flatten(nodes)

    def _children_histograms(self, hists, parent_index, built, depth):
        """The next level's histograms: ``built`` from their rows, then their siblings as
        ``hists[parent_index[j]]`` minus ``built[j]``'s (in that order, ``2 len(built)``)."""
        m = len(built)
        new_hists = self._hists(2 * m, depth)
        self._build(built, new_hists[:m])
        self.kernels["subtract_histograms"](hists, np.array(parent_index, dtype=np.intp),
                                            new_hists[:m], new_hists[m:], self.n_threads)
        return new_hists

    def _root_histogram(self, root, depth=None):
        """The root's histogram, shape (1, d, n_slots, 2), and its sums in ``root``."""
        if self.root_histogram is not None:
            hists = self.root_histogram[None]
        else:
            hists = self._hists(1, depth)
            self._build([root], hists)
        root.g, root.h = (float(value) for value in self._root_sums(hists))
        return hists

    def _root_sums(self, hists):
        """The root's (gradient, hessian) sums, as xgboost takes them."""
        if self.has_missing and self.source is not None:
            return self.source.row_order_sums()
        if self.has_missing:
            # xgboost sums the gradients of all rows in order (float64) for sparse data...
            sampled = self.rows[:self.n_root_rows]
            return (np.add.accumulate(self.gradients[sampled], dtype=np.float64)[-1],
                    np.add.accumulate(self.hessians[sampled], dtype=np.float64)[-1])
        # ... and takes them from the first feature's histogram, in bin order, for dense data.
        return np.add.accumulate(hists[0, 0, : int(self.n_bins[0]) + 1], axis=0)[-1]

    def _grow_lossguide(self, root, nodes):
        """xgboost's ``lossguide``: always split the open node of largest gain.

        Ties go to the node opened first; growth stops at ``max_leaves`` leaves
        (0: no limit) and children are not opened at ``max_depth`` (0: no limit).
        """
        heap, opened = [], 0
        root.hist = self._root_histogram(root)[0]
        self._evaluate([root], root.hist[None])
        if root.split is not None:
            heapq.heappush(heap, (-root.split.gain, opened, root))
            opened += 1
        n_leaves = 1
        while heap and not (self.max_leaves > 0 and n_leaves >= self.max_leaves):
            _, _, node = heapq.heappop(heap)
            self._partition([node])
            left, right = self._split(node, len(nodes))
            nodes += [left, right]
            n_leaves += 1
            parent_hist, node.hist = node.hist, None
            if self.max_depth > 0 and left.depth >= self.max_depth:
                continue
            small, large = (right, left) if right.h < left.h else (left, right)
            hists = self._hists(2)
            self._build([small], hists[:1])
            self.kernels["subtract_histograms"](parent_hist[None], np.zeros(1, dtype=np.intp),
                                                hists[:1], hists[1:], self.n_threads)
            small.hist, large.hist = hists[0], hists[1]
            children = [left, right]
            self._evaluate(children, np.stack([left.hist, right.hist]))
            for child in children:
                if child.split is not None:
                    heapq.heappush(heap, (-child.split.gain, opened, child))
                    opened += 1
                else:
                    child.hist = None
        return self._flatten(nodes)

    def _split(self, node, first_id):
        """The two children of ``node`` (partitioned already), numbered ``first_id`` and
        ``first_id + 1``; ``node.children`` is set."""
        split = node.split
        middle = node.start + node.n_left
        depth = node.depth + 1
        left = TreeNode(id=first_id, start=node.start, stop=middle, depth=depth,
                        g=split.left_sums[0], h=split.left_sums[1])
        right = TreeNode(id=first_id + 1, start=middle, stop=node.stop, depth=depth,
                         g=split.right_sums[0], h=split.right_sums[1])
        node.children = (left.id, right.id)
        self._constrain_children(node, left, right)
        return left, right

    def _constrain_children(self, node, left, right):
        """The children's weights, bounds and used features (xgboost's ``AddSplit``).

        Their weights are clipped to the parent's bounds; they inherit those
        bounds, and with a monotone feature the midpoint of the two weights
        becomes the upper bound of the child that must stay below (the left
        one for :math:`c_f = 1`) and the lower bound of the other.
        """
        split = node.split
        if self.monotone is not None:
            lower, upper = node.bounds
            (w_left, w_right), node.child_weights = node.child_weights, None
            left.weight, right.weight = w_left, w_right
            middle = np.float32((w_left + w_right) / np.float32(2.0))
            left.bounds, right.bounds = (lower, upper), (lower, upper)
            if self.monotone[split.feature] > 0:
                left.bounds, right.bounds = (lower, middle), (middle, upper)
            elif self.monotone[split.feature] < 0:
                left.bounds, right.bounds = (middle, upper), (lower, middle)
        if self.interaction_sets is not None:
            left.used = right.used = node.used | {split.feature}

    def _partition(self, splitting):
        if self.source is not None:
            return self.source.partition(splitting)
        if self.categorical is not None:
            splitting = self.categorical.partition(self, splitting)
        if not splitting:
            return
        k = len(splitting)
        starts = np.array([node.start for node in splitting], dtype=np.intp)
        stops = np.array([node.stop for node in splitting], dtype=np.intp)
        features = np.array([node.split.feature for node in splitting], dtype=np.intp)
        split_bins = np.array([node.split.bin for node in splitting], dtype=np.intp)
        default_lefts = np.array([node.split.default_left for node in splitting], dtype=np.uint8)
        n_left = np.empty(k, dtype=np.intp)
        self.kernels["partition_rows"](self.binned_columns, self.rows, starts, stops, features,
                                       split_bins, default_lefts, self.n_bins, self.scratch,
                                       n_left, self.n_threads)
        for node, count in zip(splitting, n_left):
            node.n_left = int(count)

    def _flatten(self, nodes):
        n = len(nodes)
        tree = {
            "feature": np.full(n, -1, dtype=np.intp),
            "bin": np.full(n, -1, dtype=np.intp),
            "default_left": np.zeros(n, dtype=np.uint8),
            "left": np.full(n, -1, dtype=np.intp),
            "right": np.full(n, -1, dtype=np.intp),
            "value": np.zeros(n, dtype=np.float32),
            "gain": np.zeros(n, dtype=np.float32),
            "cover": np.array([node.h for node in nodes], dtype=np.float32),
            "categories": [None] * n,  # categorical splits: the categories going right
        }
        leaves = []
        for node in nodes:
            i = node.id
            if node.children is not None:
                split = node.split
                tree["feature"][i] = split.feature
                tree["bin"][i] = split.bin
                tree["default_left"][i] = split.default_left
                tree["gain"][i] = split.gain
                tree["left"][i], tree["right"][i] = node.children
                tree["categories"][i] = split.categories
            else:
                leaves.append(node)
        # All leaves' weights in one call (the same float32 values as one by one).
        weights = leaf_weight(np.array([node.g for node in leaves]),
                              np.array([node.h for node in leaves]), self.params)
        for j, node in enumerate(leaves):
            if node.weight is not None:  # clipped to its bounds when its parent split
                weights[j] = node.weight
        values = (weights * self.learning_rate).astype(np.float32)
        ids = np.array([node.id for node in leaves], dtype=np.intp)
        tree["value"][ids] = values
        tree["leaf_segments"] = (np.array([node.start for node in leaves], dtype=np.intp),
                                 np.array([node.stop for node in leaves], dtype=np.intp),
                                 values)
        return tree
