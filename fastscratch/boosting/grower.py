"""Growing one tree from gradients and hessians, level by level (xgboost ``depthwise``).

The grower owns the loop; the kernels do the work:

1. the root's histogram over all rows (``build_histogram_root``);
2. for each node of the current level, the best split of every feature
   (``find_best_splits``), and the best feature (ties to the smaller index);
3. a node is split when its gain is above xgboost's ``kRtEps`` (1e-6) and at
   least ``gamma``, both children have a positive hessian sum, and its depth
   is below ``max_depth``; its rows are then partitioned (``partition_rows``);
4. the children's histograms: the child with the smaller hessian sum is
   built from its rows (``build_histogram``), the other one is the parent's
   minus it (``subtract_histograms``), as in xgboost;
5. at the end, each leaf's value :math:`\\eta\\, w^*` is added to the training
   margins of its rows (``add_leaf_values``).

Nodes are numbered as xgboost numbers them (children get consecutive ids when
their parent is split, the level's nodes in order), so a tree can be compared
with xgboost's JSON dump node by node.
"""

import numpy as np

from ..kernels.splitting_numpy import leaf_weight, node_score

K_RT_EPS = 1e-6  # xgboost's kRtEps: a split must gain more than this


class TreeGrower:
    """Depth-wise growth of one regression tree on binned data.

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
    """

    def __init__(self, binned, n_bins, gradients, hessians, rows, scratch, params, max_depth,
                 gamma, learning_rate, kernels, n_threads, allowed_features=None):
        self.binned = binned
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
        n_features = binned.shape[1]
        self.allowed_features = (np.ones(n_features, dtype=np.uint8) if allowed_features is None
                                 else allowed_features)
        self._gain = np.empty(n_features, dtype=np.float64)
        self._bin = np.empty(n_features, dtype=np.intp)
        self._default_left = np.empty(n_features, dtype=np.uint8)
        self._left_sums = np.empty((n_features, 2), dtype=np.float64)
        self._n_left = np.empty(1, dtype=np.intp)

    def _new_hist(self):
        return np.empty((self.binned.shape[1], self.n_slots, 2), dtype=np.float64)

    def _evaluate(self, node):
        """Best split of ``node`` (sets node["split"] or leaves it None)."""
        node["split"] = None
        if node["depth"] >= self.max_depth:
            return
        score = node_score(node["g"], node["h"], self.params)
        self.kernels["find_best_splits"](
            node["hist"], self.n_bins, node["g"], node["h"], float(score), self.params,
            self.allowed_features, self._gain, self._bin, self._default_left, self._left_sums,
            self.n_threads)
        feature = int(np.argmax(self._gain))  # ties to the smaller feature
        gain = self._gain[feature]
        left_g, left_h = self._left_sums[feature]
        right_g, right_h = node["g"] - left_g, node["h"] - left_h
        if not (gain > K_RT_EPS) or gain < self.gamma or left_h == 0.0 or right_h == 0.0:
            return
        node["split"] = (feature, int(self._bin[feature]), int(self._default_left[feature]),
                         float(gain), (left_g, left_h), (right_g, right_h))

    def grow(self):
        """Grow the tree; returns a dict of flat node arrays (xgboost's numbering).

        Keys: ``feature``, ``bin``, ``default_left``, ``left``, ``right``,
        ``value`` (leaf value with the learning rate, float32), ``gain``,
        ``cover`` (hessian sum), and ``leaf_segments`` (start, stop, value) of
        ``rows`` per leaf.
        """
        n_rows = self.binned.shape[0]
        k = self.kernels
        root_hist = self._new_hist()
        k["build_histogram_root"](self.binned, self.gradients, self.hessians, root_hist,
                                  self.n_threads)
        # xgboost takes the root's sums from the first feature's histogram, in bin order.
        sums = np.add.accumulate(root_hist[0, : int(self.n_bins[0]) + 1], axis=0)[-1]
        root = {"id": 0, "start": 0, "stop": n_rows, "depth": 0, "g": float(sums[0]),
                "h": float(sums[1]), "hist": root_hist}
        nodes = [root]
        level = [root]
        while level:
            for node in level:
                self._evaluate(node)
            next_level = []
            for node in level:
                split = node["split"]
                hist = node.pop("hist", None)
                if split is None:
                    continue
                feature, split_bin, default_left, _, left_sums, right_sums = split
                segment = self.rows[node["start"]:node["stop"]]
                k["partition_rows"](self.binned, feature, split_bin, int(self.n_bins[feature]),
                                    default_left, segment, self.scratch, self._n_left,
                                    self.n_threads)
                middle = node["start"] + int(self._n_left[0])
                depth = node["depth"] + 1
                left = {"id": len(nodes), "start": node["start"], "stop": middle, "depth": depth,
                        "g": left_sums[0], "h": left_sums[1]}
                right = {"id": len(nodes) + 1, "start": middle, "stop": node["stop"],
                         "depth": depth, "g": right_sums[0], "h": right_sums[1]}
                node["children"] = (left["id"], right["id"])
                nodes += [left, right]
                if depth < self.max_depth:
                    build, other = (right, left) if right["h"] < left["h"] else (left, right)
                    build["hist"] = self._new_hist()
                    k["build_histogram"](self.binned, self.rows[build["start"]:build["stop"]],
                                         self.gradients, self.hessians, build["hist"],
                                         self.n_threads)
                    other["hist"] = self._new_hist()
                    k["subtract_histograms"](hist, build["hist"], other["hist"], self.n_threads)
                next_level += [left, right]
            level = next_level
        return self._flatten(nodes)

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
            "cover": np.array([node["h"] for node in nodes], dtype=np.float32),
        }
        segments = []
        for node in nodes:
            i = node["id"]
            if "children" in node:
                feature, split_bin, default_left, gain, _, _ = node["split"]
                tree["feature"][i] = feature
                tree["bin"][i] = split_bin
                tree["default_left"][i] = default_left
                tree["gain"][i] = gain
                tree["left"][i], tree["right"][i] = node["children"]
            else:
                weight = leaf_weight(node["g"], node["h"], self.params)
                value = np.float32(weight * self.learning_rate)
                tree["value"][i] = value
                segments.append((node["start"], node["stop"], value))
        starts, stops, values = zip(*segments)
        tree["leaf_segments"] = (np.array(starts, dtype=np.intp), np.array(stops, dtype=np.intp),
                                 np.array(values, dtype=np.float32))
        return tree
