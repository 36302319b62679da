r"""``get_booster()``: the methods of ``xgboost.Booster`` that users call, on our trees.

:class:`Booster` is a view of a fitted :class:`~fastscratch.XGBRegressor` or
:class:`~fastscratch.XGBClassifier` (no copy of the trees): ``predict`` on
NumPy or pandas data (no DMatrix), ``get_dump``, ``get_score``,
``trees_to_dataframe`` and ``save_model`` (xgboost's JSON schema), each
giving what ``xgboost.Booster`` gives on the same trees.

Notes
-----
Feature importances (``get_score``) over the split nodes :math:`s` on feature
:math:`j`: "weight" :math:`= |\{s\}|`, "total_gain" :math:`= \sum_s
\Delta\mathcal{L}_s` (the split's loss reduction), "total_cover" :math:`=
\sum_s H_s` (the node's hessian sum); "gain" and "cover" are these totals
divided by "weight". Features never split on are absent, as in xgboost.
"""

import json

import numpy as np

IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")


def _number(value):
    """A float32 as xgboost prints it in its dumps (9 significant digits)."""
    return "%.9g" % float(np.float32(value))


def feature_scores(nodes, n_features, importance_type):
    """Per-feature importance of the flat forest ``nodes`` (see the module Notes).

    Returns ``(scores, weight)``, both float64 of shape (n_features,):
    the ``importance_type`` score and the number of splits on each feature.
    """
    split = nodes["left"] >= 0
    features = nodes["feature"][split]
    weight = np.bincount(features, minlength=n_features).astype(np.float64)
    if importance_type == "weight":
        return weight, weight
    column = "gain" if "gain" in importance_type else "cover"
    scores = np.bincount(features, weights=nodes[column][split].astype(np.float64),
                         minlength=n_features)
    if not importance_type.startswith("total"):
        scores = np.divide(scores, weight, out=np.zeros(n_features), where=weight > 0)
    return scores, weight


def text_tree(nodes, root, with_stats, feature_name, categories=None):
    """One tree of the flat forest ``nodes`` as xgboost's text dump.

    ``0:[f8<-0.00330083817] yes=1,no=2,missing=2`` for a split (rows with
    ``x < threshold`` go to ``yes``), ``3:leaf=-16.6496964`` for a leaf, one tab
    of indentation per level; ``with_stats`` adds ``gain`` and ``cover``.
    ``feature_name(j)`` names feature ``j`` (``f8`` or a column name).
    ``categories(k)``: the categories of node ``k``'s categorical split (None:
    numeric), written as xgboost's ``1:[c25:{1,9,10}] yes=4,no=3,missing=3``
    (rows of those categories go to ``yes``, the right child).
    """
    lines, stack = [], [(root, 0)]
    while stack:
        k, depth = stack.pop()
        i = k - root
        if nodes["left"][k] == -1:
            line = f"{i}:leaf={_number(nodes['value'][k])}"
            if with_stats:
                line += f",cover={_number(nodes['cover'][k])}"
        else:
            yes, no = nodes["left"][k] - root, nodes["right"][k] - root
            missing = yes if nodes["default_left"][k] else no
            codes = None if categories is None else categories(k)
            if codes is None:
                test = f"<{_number(nodes['threshold'][k])}"
            else:  # in the set: right, xgboost's "yes"
                test = ":{" + ",".join(str(int(c)) for c in codes) + "}"
                yes, no = no, yes
            line = (f"{i}:[{feature_name(nodes['feature'][k])}{test}] "
                    f"yes={yes},no={no},missing={missing}")
            if with_stats:
                line += f",gain={_number(nodes['gain'][k])},cover={_number(nodes['cover'][k])}"
            stack += [(nodes["right"][k], depth + 1), (nodes["left"][k], depth + 1)]
        lines.append("\t" * depth + line + "\n")
    return "".join(lines)


class Booster:
    """xgboost's ``Booster`` methods on a fitted estimator's trees.

    Parameters
    ----------
    model : XGBRegressor or XGBClassifier
        Fitted; read, never modified.

    Attributes
    ----------
    feature_names : list of str or None
        The training frame's column names (None for NumPy data); dumps and
        scores name features by them, else ``f0``, ``f1``, ...
    """

    def __init__(self, model):
        self._model = model
        names = getattr(model, "feature_names_in_", None)
        self.feature_names = None if names is None else [str(v) for v in names]

    def _name(self, feature):
        return self.feature_names[feature] if self.feature_names else f"f{feature}"

    def num_boosted_rounds(self):
        """Number of boosting rounds (trees per class per round)."""
        forest = self._model._forest
        return forest.n_trees // forest.n_groups

    def num_features(self):
        return int(self._model.n_features_in_)

    # ----------------------------------------------------------------- predict
    def predict(self, X, output_margin=False, pred_leaf=False, pred_contribs=False,
                pred_interactions=False, iteration_range=(0, 0)):
        """Predictions as ``xgboost.Booster.predict`` returns them, from NumPy or pandas data.

        Parameters
        ----------
        X : array-like or pandas DataFrame of shape (n_samples, n_features)
        output_margin, pred_leaf, pred_contribs, pred_interactions : bool
            At most one; see the estimator's ``predict``.
        iteration_range : (int, int), default=(0, 0)
            Rounds whose trees predict; (0, 0): every round (as the Booster,
            which, unlike the estimator, ignores ``best_iteration``).

        Returns
        -------
        ndarray
            Transformed predictions (float32): values for regression,
            probabilities of the positive class (``binary:logistic``), class
            probabilities ``(n, n_classes)`` (``multi:softprob``), class indices
            (``multi:softmax``), 0/1 (``binary:hinge``).
        """
        model = self._model
        start, stop = (int(v) for v in iteration_range)
        if (start, stop) == (0, 0):
            stop = self.num_boosted_rounds()
        rounds = (start, stop)
        other = model._predict_other(X, rounds, output_margin, pred_leaf, pred_contribs,
                                     pred_interactions)
        if other is not None:
            return other if pred_leaf else np.asarray(other, dtype=np.float32)
        raw = model._raw_predict(X, rounds)
        if raw.shape[1] == 1:
            return np.asarray(model._loss.transform(raw[:, 0]), dtype=np.float32)
        probabilities = model._loss.transform(raw)
        if model._loss.name == "multi:softmax":
            return np.argmax(probabilities, axis=1).astype(np.float32)
        return np.asarray(probabilities, dtype=np.float32)

    # -------------------------------------------------------------- inspection
    def _trees(self):
        """Per tree: (root, nodes) with nodes the forest's flat arrays."""
        nodes, roots, _ = self._model._forest.arrays()
        return nodes, roots

    def get_dump(self, fmap="", with_stats=False, dump_format="text"):
        """The trees as strings, one per tree, as ``xgboost.Booster.get_dump``.

        Parameters
        ----------
        fmap : str, default=""
            Not supported (a feature map file); must be "".
        with_stats : bool, default=False
            Add each node's gain and cover.
        dump_format : {"text", "json"}, default="text"
        """
        if fmap:
            raise ValueError("fmap (a feature map file) is not supported; pass fmap=''. "
                             "Features are named by feature_names.")
        if dump_format not in ("text", "json"):
            raise ValueError(f"dump_format={dump_format!r} is not 'text' or 'json'.")
        nodes, roots = self._trees()
        dumps = []
        for root in roots:
            if dump_format == "text":
                dumps.append(text_tree(nodes, int(root), with_stats, self._name,
                                       self._model._forest.node_categories))
            else:
                dumps.append(json.dumps(self._json_node(nodes, int(root), int(root), 0,
                                                        with_stats)))
        return dumps

    def _json_node(self, nodes, root, k, depth, with_stats):
        if nodes["left"][k] == -1:
            node = {"nodeid": int(k - root), "leaf": float(_number(nodes["value"][k]))}
            if with_stats:
                node["cover"] = float(_number(nodes["cover"][k]))
            return node
        yes, no = int(nodes["left"][k] - root), int(nodes["right"][k] - root)
        missing = yes if nodes["default_left"][k] else no
        codes = self._model._forest.node_categories(k)
        condition = (float(_number(nodes["threshold"][k])) if codes is None
                     else [int(c) for c in codes])
        if codes is not None:  # rows of the categories go right: xgboost's "yes"
            yes, no = no, yes
        node = {"nodeid": int(k - root), "depth": depth,
                "split": self._name(nodes["feature"][k]), "split_condition": condition,
                "yes": yes, "no": no, "missing": missing}
        if with_stats:
            node["gain"] = float(_number(nodes["gain"][k]))
            node["cover"] = float(_number(nodes["cover"][k]))
        node["children"] = [self._json_node(nodes, root, int(nodes[side][k]), depth + 1, with_stats)
                            for side in ("left", "right")]
        return node

    def get_score(self, fmap="", importance_type="weight"):
        """Importance of every feature used in a split, as ``xgboost.Booster.get_score``.

        Returns
        -------
        dict
            Feature name (``f0``, ... or the column name) to its score; see
            the module Notes. Features without splits are absent.
        """
        if fmap:
            raise ValueError("fmap (a feature map file) is not supported; pass fmap=''.")
        if importance_type not in IMPORTANCE_TYPES:
            raise ValueError(f"importance_type={importance_type!r} is not one of "
                             f"{IMPORTANCE_TYPES}.")
        nodes, _ = self._trees()
        d = self.num_features()
        scores, weight = feature_scores(nodes, d, importance_type)
        return {self._name(j): float(scores[j]) for j in range(d) if weight[j] > 0}

    def trees_to_dataframe(self, fmap=""):
        """Every node of every tree as a row of a pandas DataFrame, as xgboost's.

        Columns: Tree, Node, ID (``"tree-node"``), Feature (``"Leaf"`` for a
        leaf), Split (threshold; rows with ``x < Split`` go to Yes), Yes, No,
        Missing (IDs), Gain (the split's gain, or the leaf's value), Cover,
        Category (NaN: no categorical splits). Sorted by Tree, then Node.
        """
        import pandas as pd

        if fmap:
            raise ValueError("fmap (a feature map file) is not supported; pass fmap=''.")
        nodes, roots = self._trees()
        rows = []
        stops = list(roots[1:]) + [nodes["left"].shape[0]]
        for t, (root, stop) in enumerate(zip(roots, stops)):
            root = int(root)
            for k in range(root, int(stop)):
                i = k - root
                if nodes["left"][k] == -1:
                    rows.append((t, i, f"{t}-{i}", "Leaf", np.nan, np.nan, np.nan, np.nan,
                                 float(_number(nodes["value"][k])),
                                 float(_number(nodes["cover"][k])), np.nan))
                else:
                    yes, no = nodes["left"][k] - root, nodes["right"][k] - root
                    missing = yes if nodes["default_left"][k] else no
                    codes = self._model._forest.node_categories(k)
                    split = np.nan if codes is not None else float(_number(nodes["threshold"][k]))
                    if codes is not None:  # rows of the categories go right ("Yes")
                        yes, no = no, yes
                    rows.append((t, i, f"{t}-{i}", self._name(nodes["feature"][k]),
                                 split, f"{t}-{yes}", f"{t}-{no}", f"{t}-{missing}",
                                 float(_number(nodes["gain"][k])),
                                 float(_number(nodes["cover"][k])),
                                 # xgboost: the categories as strings; None on numeric
                                 # splits of a model with categorical ones, else NaN.
                                 [str(int(c)) for c in codes] if codes is not None
                                 else None if self._model._forest.has_categorical else np.nan))
        columns = ["Tree", "Node", "ID", "Feature", "Split", "Yes", "No", "Missing", "Gain",
                   "Cover", "Category"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.sort_values(["Tree", "Node"]).reset_index(drop=True)

    def save_model(self, fname):
        """Write xgboost's JSON model (``xgboost.Booster(model_file=fname)`` loads it)."""
        self._model.save_model(fname, format="xgboost")
