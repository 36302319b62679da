r"""xgboost's own model format: write our fitted models in it, and read xgboost's files.

:func:`to_xgboost_json` turns a fitted :class:`~fastscratch.XGBClassifier` or
:class:`~fastscratch.XGBRegressor` into the document that xgboost's
``Booster.save_model("model.json")`` writes (schema of xgboost 3.x), so that
``xgboost.Booster(model_file=path)`` loads it and predicts the same margins to
float32 rounding. :func:`from_xgboost_json` reads xgboost's JSON and UBJSON
model files (``.json`` / ``.ubj``, xgboost >= 2) into our estimators, so an
xgboost model gets our predictor and our TreeSHAP.

The two tree formats are one: in both, a split sends a row left when
``x < split_condition`` (float32 comparison), a missing value (NaN) follows
``default_left``, a leaf's value (learning rate applied) sits in
``split_conditions``, and ``sum_hessian`` is the node cover that TreeSHAP
weights by. xgboost numbers the nodes of each tree from 0 with free child
indices; we store them flat with ``right == left + 1`` (trees whose children
are not adjacent are renumbered breadth-first on reading).

What the conversion does where xgboost's schema and ours differ:

- ``base_score``: xgboost stores the score before its link (a probability for
  ``binary:logistic`` and ``reg:logistic``; for ``multi:softprob`` the per-class
  margins); it is written as one value (a list for several classes), which
  xgboost >= 3.1 reads.
- ``base_weights`` (xgboost's unscaled node weights) are not kept by our
  trees: leaves get their value, split nodes the cover-weighted mean of their
  leaves. Predictions and SHAP values do not read them.
- A custom objective is written as ``reg:squarederror`` (regressor),
  ``binary:logistic`` (two classes, base margin 0) or ``multi:softprob``
  (more): the margins, and the transforms our custom-objective estimators
  apply, are the same.
- A multi-label classifier (one ``binary:logistic`` tree per label per round)
  is ``num_target`` labels with ``num_class`` 0, both ways, as xgboost's.
- Categorical splits (``split_type`` 1): the categories that go right are
  listed per node in ``categories`` (segments ``categories_segments`` /
  ``categories_sizes`` of the nodes ``categories_nodes``); ``split_conditions``
  holds xgboost's placeholder. The pandas categories of a model fitted on a
  frame go to ``cats`` (xgboost's re-coding table: UTF-8 bytes with offsets
  for strings, ``{"type", "values"}`` for numbers) when they are all strings;
  otherwise ``cats`` stays empty and both libraries read category codes.
- Reading: multi-target trees with vector leaves, ``num_parallel_tree > 1``
  and objectives other than ``reg:squarederror``, ``reg:logistic``,
  ``count:poisson``, ``reg:gamma``, ``reg:tweedie``, ``reg:pseudohubererror``,
  ``binary:logistic``, ``binary:hinge``, ``multi:softprob`` and
  ``multi:softmax`` are refused with a ValueError. The objectives' own
  parameters (``max_delta_step`` of Poisson, ``tweedie_variance_power``,
  ``huber_slope``) are written and read under xgboost's parameter blocks. Our bin cuts are rebuilt from the split thresholds (so
  the model also saves in our own format); training parameters are not in
  xgboost's model file and keep their defaults.
"""

import json
import os
import struct

import numpy as np

from .binning import MAX_BIN, BinMapper
from .predictor import Forest

XGBOOST_VERSION = [3, 2, 0]  # the schema written (checked against xgboost 3.2.0)
_ROOT_PARENT = 2147483647     # xgboost's parent of a root (int32 max)
_CLASSIFIER_OBJECTIVES = ("binary:logistic", "multi:softprob", "multi:softmax", "binary:hinge")
_REGRESSOR_OBJECTIVES = ("reg:squarederror", "reg:logistic", "count:poisson", "reg:gamma",
                         "reg:tweedie", "reg:pseudohubererror", "reg:absoluteerror",
                         "reg:quantileerror")
# xgboost's parameter block of an objective, and its keys (ours: the estimator's names).
_OBJECTIVE_PARAMS = {
    "count:poisson": ("poisson_regression_param", {"max_delta_step": "max_delta_step"}),
    "reg:tweedie": ("tweedie_regression_param",
                    {"tweedie_variance_power": "tweedie_variance_power"}),
    "reg:pseudohubererror": ("pseudo_huber_param", {"huber_slope": "huber_slope"}),
    "reg:quantileerror": ("quantile_loss_param", {"quantile_alpha": "quantile_alpha"}),
}


# ----------------------------------------------------------------------------- writing
def _float32_list(values):
    """float32 values as Python floats (their shortest repr reads back to the same float32)."""
    return np.asarray(values, dtype=np.float32).astype(np.float64).tolist()


def _number_string(value):
    """xgboost writes its parameters as strings: 9 significant digits round-trip a float32."""
    return f"{float(np.float32(value)):.9E}"


_CATEGORICAL_CONDITION = float(np.float32(1e-45))  # xgboost's split_condition of a category set


def _categorical_fields(node_categories, root, stop):
    """xgboost's ``split_type`` and category lists of the nodes ``root:stop``."""
    split_type = np.zeros(stop - root, dtype=int)
    fields = {"categories": [], "categories_nodes": [], "categories_segments": [],
              "categories_sizes": []}
    for k in range(root, stop):
        codes = node_categories(k)
        if codes is None:
            continue
        split_type[k - root] = 1
        fields["categories_nodes"].append(k - root)
        fields["categories_segments"].append(len(fields["categories"]))
        fields["categories_sizes"].append(int(codes.shape[0]))
        fields["categories"] += [int(c) for c in codes]
    return split_type, fields


def _cats_document(model, n_features):
    """xgboost's ``cats`` (category re-coding table) of a model fitted on a pandas frame."""
    categories = getattr(model, "_categories", None) or {}
    empty = {"enc": [], "feature_segments": [], "sorted_idx": []}
    if not categories or any(index is None or not all(isinstance(v, str) for v in index)
                             for index in categories.values()):
        return empty
    enc, segments, sorted_idx = [], [0], []
    for f in range(n_features):
        values = list(categories.get(f, []))
        encoded = [v.encode("utf-8") for v in values]
        offsets = np.concatenate([[0], np.cumsum([len(b) for b in encoded])]).astype(int)
        enc.append({"offsets": offsets.tolist() if values else [],
                    "values": list(b"".join(encoded))})
        segments.append(segments[-1] + len(values))
        sorted_idx += sorted(range(len(values)), key=lambda i: encoded[i])
    return {"enc": enc, "feature_segments": segments, "sorted_idx": sorted_idx}


def _tree_document(nodes, root, stop, tree_id, n_features, means, node_categories=None):
    """One tree of the forest (nodes ``root:stop``) in xgboost's schema."""
    left = nodes["left"][root:stop]
    internal = left != -1
    local_left = np.where(internal, left - root, -1)
    local_right = np.where(internal, left + 1 - root, -1)
    n = stop - root
    parents = np.full(n, _ROOT_PARENT, dtype=np.int64)
    parents[local_left[internal]] = np.flatnonzero(internal)
    parents[local_right[internal]] = np.flatnonzero(internal)
    value = nodes["value"][root:stop]
    split_type, categorical = _categorical_fields(node_categories or (lambda k: None), root, stop)
    condition = np.where(internal, nodes["threshold"][root:stop], value)
    condition = np.where(split_type == 1, _CATEGORICAL_CONDITION, condition)
    return {
        "base_weights": _float32_list(np.where(internal, means[root:stop], value)),
        **categorical,
        "default_left": np.where(internal, nodes["default_left"][root:stop], 0).astype(int)
        .tolist(),
        "id": tree_id,
        "left_children": local_left.tolist(),
        "loss_changes": _float32_list(np.where(internal, nodes["gain"][root:stop], 0.0)),
        "parents": parents.tolist(),
        "right_children": local_right.tolist(),
        "split_conditions": _float32_list(condition),
        "split_indices": np.where(internal, nodes["feature"][root:stop], 0).astype(int).tolist(),
        "split_type": split_type.tolist(),
        "sum_hessian": _float32_list(nodes["cover"][root:stop]),
        "tree_param": {"num_deleted": "0", "num_feature": str(n_features),
                       "num_nodes": str(n), "size_leaf_vector": "1"},
    }


def _class_labels_meta(classes):
    """The class labels for the file's ``scikit_learn`` attribute, when they are not
    xgboost's own ``0..K-1``: ``{"classes_": [...], "classes_dtype": "..."}``.

    xgboost's scikit-learn wrapper writes only ``_estimator_type`` there and ignores other
    keys when it loads; :func:`from_xgboost_json` reads the labels back, so that a model
    trained on string (or other non-index) labels predicts the same labels after a round
    trip.
    """
    classes = np.asarray(classes)
    if classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(classes.shape[0])):
        return {}
    labels = [value.item() if isinstance(value, np.generic) else value for value in classes]
    if not all(isinstance(value, (str, int, float, bool)) for value in labels):
        kinds = sorted({type(value).__name__ for value in labels})
        raise ValueError(f"class labels of type {kinds} cannot be written in xgboost's model "
                         "schema; save with format='fastscratch' (or pickle the estimator).")
    return {"classes_": labels, "classes_dtype": classes.dtype.str if classes.dtype.kind != "O"
            else "object"}


def _class_labels_from_meta(meta, n_classes):
    """The class labels written by :func:`_class_labels_meta`, or None."""
    if "classes_" not in meta:
        return None
    labels = meta["classes_"]
    if not isinstance(labels, list) or len(labels) != n_classes:
        raise ValueError(f"the model file's class labels ({labels!r}) do not match its "
                         f"{n_classes} classes.")
    dtype = meta.get("classes_dtype", "object")
    return np.array(labels, dtype=object if dtype == "object" else np.dtype(dtype))


def to_xgboost_json(model):
    """The fitted ``model`` as xgboost's JSON model document (a dict).

    ``json.dump(to_xgboost_json(model), open("model.json", "w"))`` writes a
    file that ``xgboost.Booster(model_file="model.json")`` (xgboost >= 3.1)
    and ``xgboost.XGBClassifier().load_model(...)`` load.

    Parameters
    ----------
    model : XGBClassifier or XGBRegressor
        Fitted.

    Returns
    -------
    document : dict
        ``{"learner": {...}, "version": [3, 2, 0]}``.
    """
    from sklearn.utils.validation import check_is_fitted

    from ._treeshap import node_mean_values, tree_structure

    check_is_fitted(model, "_forest")
    forest = model._forest
    nodes, roots, groups = forest.arrays()
    n_nodes = nodes["left"].shape[0]
    stops = np.append(roots[1:], n_nodes)
    node_tree, node_depth = tree_structure(nodes["left"], roots)
    if np.any(stops <= roots) or roots[0] != 0 or np.any(
            node_tree != np.repeat(np.arange(roots.shape[0]), stops - roots)):
        raise ValueError("the forest's trees are not stored one after the other; "
                         "it cannot be written in xgboost's format.")
    means = node_mean_values(nodes["left"], nodes["value"], nodes["cover"].astype(np.float64),
                             node_depth)
    d = int(model.n_features_in_)
    n_groups = forest.n_groups
    multilabel = type(model._loss).__name__ == "MultiLabel"  # one binary output per label
    trees = [_tree_document(nodes, int(root), int(stop), t, d, means, forest.node_categories)
             for t, (root, stop) in enumerate(zip(roots, stops))]
    categorical = np.zeros(d, dtype=bool)
    categorical[nodes["feature"][[k for k in getattr(forest, "_categories", {})]]] = True
    categorical[list(getattr(model, "_categories", None) or {})] = True

    name = model._loss.name
    is_classifier = hasattr(model, "classes_")
    margin = np.asarray(model._base_margin, dtype=np.float64).reshape(-1)
    if name == "custom" and is_classifier and n_groups > 1:  # xgboost trains multi:softprob
        name, base_score = "multi:softprob", margin.tolist()
    elif name == "custom":
        name = "binary:logistic" if is_classifier else "reg:squarederror"
        base_score = [0.5] if is_classifier else margin.tolist()
    elif name in ("multi:softprob", "multi:softmax"):
        base_score = margin.tolist()
    else:
        base_score = np.asarray(model.base_score_, dtype=np.float64).reshape(-1).tolist()
    if name in ("multi:softprob", "multi:softmax"):
        objective = {"name": name, "softmax_multiclass_param": {"num_class": str(n_groups)}}
    elif name == "reg:quantileerror":  # xgboost writes a list of quantiles
        objective = {"name": name, "quantile_loss_param": {
            "quantile_alpha": "[" + _number_string(model._loss.alpha) + "]"}}
    elif name in ("binary:hinge", "reg:absoluteerror"):
        objective = {"name": name}
    elif name in _OBJECTIVE_PARAMS:
        block, keys = _OBJECTIVE_PARAMS[name]
        objective = {"name": name, block: {key: _number_string(model._loss.params[key])
                                           for key in keys}}
    else:
        objective = {"name": name, "reg_loss_param": {
            "scale_pos_weight": _number_string(getattr(model, "scale_pos_weight", 1.0))}}
    meta = {"_estimator_type": "classifier" if is_classifier else "regressor"}
    if is_classifier and not multilabel:
        meta.update(_class_labels_meta(model.classes_))
    attributes = {"scikit_learn": json.dumps(meta)}
    if getattr(model, "best_iteration", None) is not None:
        attributes["best_iteration"] = str(int(model.best_iteration))
        attributes["best_score"] = repr(float(model.best_score))
    names = getattr(model, "feature_names_in_", None)
    return {
        "learner": {
            "attributes": attributes,
            "feature_names": [] if names is None else [str(v) for v in names],
            "feature_types": ([] if names is None and not categorical.any() else
                              ["c" if c else "float" for c in categorical]),
            "gradient_booster": {
                "model": {
                    "cats": _cats_document(model, d),
                    "gbtree_model_param": {"num_parallel_tree": "1",
                                           "num_trees": str(len(trees))},
                    "iteration_indptr": list(range(0, len(trees) + 1, n_groups)),
                    "tree_info": groups.astype(int).tolist(),
                    "trees": trees,
                },
                "name": "gbtree",
            },
            "learner_model_param": {
                "base_score": "[" + ",".join(_number_string(v) for v in base_score) + "]",
                "boost_from_average": "1",
                "num_class": str(n_groups if n_groups > 1 and not multilabel else 0),
                "num_feature": str(d),
                "num_target": str(n_groups if multilabel else 1),
            },
            "objective": objective,
        },
        "version": list(XGBOOST_VERSION),
    }


# ----------------------------------------------------------------------------- UBJSON
_UBJ_NUMBERS = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q", b"d": ">f",
                b"D": ">d"}


class _UBJReader:
    """A small reader of Universal Binary JSON (ubjson.org), enough for xgboost's ``.ubj``.

    Containers may be typed and counted (``[$d#L<n>`` then n big-endian
    float32): read into NumPy arrays at once, as xgboost writes its node arrays.
    """

    def __init__(self, data):
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("the UBJSON data ends early")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def _marker(self):
        marker = bytes(self._take(1))
        while marker == b"N":  # no-op
            marker = bytes(self._take(1))
        return marker

    def _number(self, marker):
        fmt = _UBJ_NUMBERS[marker]
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def _count(self):
        count = self._number(self._marker())
        if count < 0:
            raise ValueError("negative UBJSON length")
        return count

    def _string(self):
        return bytes(self._take(self._count())).decode("utf-8")

    def value(self, marker=None):
        marker = marker or self._marker()
        if marker in _UBJ_NUMBERS:
            return self._number(marker)
        if marker == b"S":
            return self._string()
        if marker == b"C":
            return bytes(self._take(1)).decode("utf-8")
        if marker == b"H":  # high-precision number, as a string
            return float(self._string())
        if marker in (b"T", b"F"):
            return marker == b"T"
        if marker == b"Z":
            return None
        if marker == b"[":
            return self._array()
        if marker == b"{":
            return self._object()
        raise ValueError(f"unknown UBJSON marker {marker!r} at byte {self.pos - 1}")

    def _container_header(self):
        """(element type or None, count or None) of an optimised container."""
        kind = count = None
        if bytes(self.data[self.pos:self.pos + 1]) == b"$":
            self.pos += 1
            kind = self._marker()
            if self._marker() != b"#":
                raise ValueError("a typed UBJSON container needs a count")
            count = self._count()
        elif bytes(self.data[self.pos:self.pos + 1]) == b"#":
            self.pos += 1
            count = self._count()
        return kind, count

    def _array(self):
        kind, count = self._container_header()
        if kind in _UBJ_NUMBERS:
            dtype = np.dtype(_UBJ_NUMBERS[kind])
            raw = self._take(count * dtype.itemsize)
            return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
        items = []
        if count is not None:
            for _ in range(count):
                items.append(self.value(kind))
            return items
        while True:
            marker = self._marker()
            if marker == b"]":
                return items
            items.append(self.value(marker))

    def _object(self):
        kind, count = self._container_header()
        result = {}
        if count is not None:
            for _ in range(count):
                key = self._string()
                result[key] = self.value(kind)
            return result
        while True:
            if bytes(self.data[self.pos:self.pos + 1]) == b"}":
                self.pos += 1
                return result
            key = self._string()
            result[key] = self.value()


def read_ubjson(data):
    """Decode UBJSON ``data`` (bytes); numeric typed arrays come back as NumPy arrays."""
    return _UBJReader(data).value()


# ----------------------------------------------------------------------------- reading
def _load_document(source):
    if isinstance(source, dict):
        return source, "the model document"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), "the model bytes"
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            data = handle.read()
        where = os.fspath(source)
    else:
        raise TypeError(f"path_or_dict must be a path, bytes or a dict, got "
                        f"{type(source).__name__}.")
    stripped = data.lstrip()
    try:
        if stripped[:1] == b"{" and stripped[1:].lstrip()[:1] in (b'"', b"}"):
            return json.loads(data.decode("utf-8")), where
        return read_ubjson(data), where
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, KeyError,
            struct.error) as exc:
        raise ValueError(f"{where} is neither an xgboost JSON nor a UBJSON model file "
                         f"({exc}).") from exc


def _parse_base_score(text):
    text = str(text).strip()
    if text.startswith("["):
        text = text[1:-1]
    return np.array([float(v) for v in text.split(",") if v.strip()], dtype=np.float64)


def _renumbered(left, right):
    """Breadth-first order of the nodes reachable from 0, children adjacent (right = left + 1).

    Returns ``(order, new_left)``: old node ids in the new order, and the new
    left child of each new node (-1 on leaves).
    """
    order, new_left = [0], []
    position = 0
    while position < len(order):
        k = order[position]
        if left[k] == -1:
            new_left.append(-1)
        else:
            new_left.append(len(order))
            order += [int(left[k]), int(right[k])]
        position += 1
    return np.array(order, dtype=np.intp), np.array(new_left, dtype=np.intp)


def _tree_arrays(tree, n_features):
    """Our node arrays (local indices) of one xgboost tree document."""
    get = lambda name, dtype: np.asarray(tree[name], dtype=dtype)
    left = get("left_children", np.intp)
    right = get("right_children", np.intp)
    n = left.shape[0]
    if str(tree.get("tree_param", {}).get("size_leaf_vector", "1")) not in ("0", "1"):
        raise ValueError("multi-target trees (vector leaves) are not supported.")
    split_type = get("split_type", np.intp) if len(tree.get("split_type", [])) else \
        np.zeros(n, dtype=np.intp)
    if split_type.shape != (n,) or np.any((split_type != 0) & (split_type != 1)):
        raise ValueError("split_type must hold 0 (numeric) or 1 (categorical) per node")
    categories = [None] * n
    all_codes = get("categories", np.int64) if len(tree.get("categories", [])) else \
        np.zeros(0, dtype=np.int64)
    for k, start, size in zip(tree.get("categories_nodes", []),
                              tree.get("categories_segments", []),
                              tree.get("categories_sizes", []), strict=True):
        codes = all_codes[int(start):int(start) + int(size)]
        if not 0 <= int(k) < n or split_type[int(k)] != 1 or codes.shape[0] != int(size) \
                or (codes.size and (codes.min() < 0 or codes.max() >= 1 << 24)):
            raise ValueError("inconsistent categorical split")
        mask = np.zeros(int(codes.max(initial=-1)) + 1, dtype=np.uint8)
        mask[codes] = 1
        categories[int(k)] = mask
    if any(split_type[k] == 1 and categories[k] is None for k in range(n)):
        raise ValueError("a categorical split without categories")
    if (np.any(left >= n) or np.any(right >= n) or np.any((left == -1) != (right == -1))
            or np.any(left == 0) or np.any(right == 0)):
        raise ValueError("inconsistent children in a tree")
    condition = get("split_conditions", np.float32)
    fields = {
        "feature": get("split_indices", np.intp), "threshold": condition,
        "default_left": get("default_left", np.uint8),
        "gain": get("loss_changes", np.float32), "cover": get("sum_hessian", np.float32),
    }
    if any(array.shape != (n,) for array in fields.values()) or right.shape != (n,):
        raise ValueError("node arrays of different lengths in a tree")
    internal = left != -1
    if np.any(fields["feature"][internal] < 0) or np.any(fields["feature"][internal] >= n_features):
        raise ValueError("a split feature index is out of range")
    reachable_adjacent = np.all(right[internal] == left[internal] + 1)
    order, new_left = _renumbered(left, right)
    if order.shape[0] > n:
        raise ValueError("a tree's children form a cycle")
    if reachable_adjacent and order.shape[0] == n and np.all(np.sort(order) == np.arange(n)):
        order, new_left = np.arange(n), left  # every node used, children adjacent: keep the ids
    internal = new_left != -1
    tree_arrays = {name: array[order] for name, array in fields.items()}
    tree_arrays["feature"] = np.where(internal, tree_arrays["feature"], -1)
    tree_arrays["default_left"] = np.where(internal, tree_arrays["default_left"], 0)
    tree_arrays["value"] = np.where(internal, 0.0, condition[order]).astype(np.float32)
    tree_arrays["threshold"] = np.where(internal, tree_arrays["threshold"], 0.0).astype(
        np.float32)
    tree_arrays["gain"] = np.where(internal, tree_arrays["gain"], 0.0).astype(np.float32)
    tree_arrays["left"] = new_left
    tree_arrays["right"] = np.where(internal, new_left + 1, -1)
    tree_arrays["categories"] = [categories[k] if internal[i] else None
                                 for i, k in enumerate(order)]
    tree_arrays["threshold"] = np.where(
        [c is not None for c in tree_arrays["categories"]], np.float32(np.nan),
        tree_arrays["threshold"]).astype(np.float32)
    return tree_arrays


def _binner_from_thresholds(trees, n_features, backend):
    """Bin cuts made of the split thresholds of each feature, and each split's bin.

    With cuts = the sorted distinct thresholds, ``x < cut[b]`` is
    ``bin(x) <= b``: the binned and raw predictions agree. None when a feature
    has more than ``MAX_BIN`` distinct thresholds.
    """
    cuts = []
    categorical = _categorical_features(trees, n_features)
    for f in range(n_features):
        if categorical[f]:  # bin c is category c: cuts 1..C (see .categorical)
            n_categories = max(mask.shape[0] for t in trees for k, mask in
                               enumerate(t["categories"]) if mask is not None
                               and t["feature"][k] == f)
            cuts.append(np.arange(1, n_categories + 1, dtype=np.float32))
            continue
        values = [t["threshold"][(t["feature"] == f) & ~np.isnan(t["threshold"])] for t in trees]
        values = np.unique(np.concatenate(values)) if values else np.empty(0, np.float32)
        cuts.append(values.astype(np.float32) if values.size else
                    np.array([np.inf], dtype=np.float32))
    if any(c.shape[0] > MAX_BIN for c in cuts):
        for tree in trees:
            tree["bin"] = np.full(tree["feature"].shape[0], -1, dtype=np.intp)
        return None
    for tree in trees:
        bins = np.full(tree["feature"].shape[0], -1, dtype=np.intp)
        for k in np.flatnonzero(tree["feature"] >= 0):
            if tree["categories"][k] is None:
                bins[k] = np.searchsorted(cuts[tree["feature"][k]], tree["threshold"][k])
        tree["bin"] = bins
    binner = BinMapper(MAX_BIN, backend=backend, categorical=categorical)
    return binner._set_cuts(cuts, np.array([0.0 if is_cat else c[0] for c, is_cat in
                                            zip(cuts, categorical)], dtype=np.float32))


def _categorical_features(trees, n_features):
    """Features split on category sets somewhere in ``trees`` (bool mask)."""
    categorical = np.zeros(n_features, dtype=bool)
    for tree in trees:
        for k, mask in enumerate(tree["categories"]):
            if mask is not None:
                categorical[tree["feature"][k]] = True
    return categorical


def _read_cats(cats, n_features):
    """xgboost's ``cats`` table: ``{feature: pandas Index of its categories}`` ({} if empty)."""
    import pandas as pd

    encodings = list((cats or {}).get("enc", []))
    if not encodings:
        return {}
    if len(encodings) != n_features:
        raise ValueError("cats.enc does not have one entry per feature")
    categories = {}
    for f, enc in enumerate(encodings):
        if "offsets" in enc:  # strings: UTF-8 bytes cut at the offsets
            offsets = [int(v) for v in np.asarray(enc.get("offsets", []), dtype=np.int64)]
            data = bytes(np.asarray(enc.get("values", []), dtype=np.int64).astype(np.uint8))
            if offsets:
                categories[f] = pd.Index([data[a:b].decode("utf-8")
                                          for a, b in zip(offsets[:-1], offsets[1:])])
        elif enc.get("values") is not None and len(enc["values"]):
            categories[f] = pd.Index(np.asarray(enc["values"]).tolist())
    return categories


def from_xgboost_json(path_or_dict, *, backend="auto", n_jobs=None, into=None):
    """Read an xgboost model (JSON or UBJSON file, bytes, or the parsed dict) into our estimator.

    Parameters
    ----------
    path_or_dict : str, os.PathLike, bytes or dict
        A file written by xgboost's ``save_model`` (``.json`` or ``.ubj``), its
        bytes, or ``json.load`` of it (or :func:`to_xgboost_json` output).
    backend, n_jobs
        The returned estimator's parameters (ignored with ``into``).
    into : XGBClassifier, XGBRegressor or None, default=None
        Load into this estimator (its own ``load_model``): it must be of the
        class the objective calls for; its parameters other than
        ``n_estimators`` and ``objective`` are kept. None: a new estimator.

    Returns
    -------
    model : XGBClassifier or XGBRegressor
        Fitted: ``predict``, ``predict_proba``, ``apply``, ``get_dump`` and
        TreeSHAP (:func:`~fastscratch.boosting._treeshap.tree_contributions`)
        work; ``classes_`` is ``0..n_classes-1`` as in xgboost's sklearn
        wrapper, or the labels :func:`to_xgboost_json` wrote into the file's
        ``scikit_learn`` attribute.

    Raises
    ------
    ValueError
        Not an xgboost model, or a feature we do not support (see the module
        docstring).
    """
    from .sklearn import XGBClassifier, XGBRegressor

    document, where = _load_document(path_or_dict)
    try:
        learner = document["learner"]
        booster = learner["gradient_booster"]
        if booster.get("name") != "gbtree":
            raise ValueError(f"booster {booster.get('name')!r} is not supported (only 'gbtree').")
        gbtree = booster["model"]
        if int(gbtree["gbtree_model_param"].get("num_parallel_tree", 1)) != 1:
            raise ValueError("num_parallel_tree > 1 (random forests) is not supported.")
        objective = learner["objective"]["name"]
        if objective not in _CLASSIFIER_OBJECTIVES + _REGRESSOR_OBJECTIVES:
            raise ValueError(f"objective {objective!r} is not supported; supported: "
                             f"{_CLASSIFIER_OBJECTIVES + _REGRESSOR_OBJECTIVES}.")
        params = learner["learner_model_param"]
        n_features = int(params["num_feature"])
        num_class = int(params.get("num_class", 0))
        num_target = int(params.get("num_target", 1))  # > 1: multi-label, a tree per label
        if num_target != 1 and (objective != "binary:logistic" or num_class > 1):
            raise ValueError("multi-target models are not supported (but for multi-label "
                             "binary:logistic).")
        n_groups = max(num_class, num_target, 1)
        tree_docs = gbtree["trees"]
        tree_info = np.asarray(gbtree["tree_info"], dtype=np.intp).reshape(-1)
        if tree_info.shape[0] != len(tree_docs) or np.any(tree_info < 0) \
                or np.any(tree_info >= n_groups):
            raise ValueError("tree_info does not match the trees and classes")
        if len(tree_docs) % n_groups or np.any(
                tree_info != np.tile(np.arange(n_groups), len(tree_docs) // n_groups)):
            raise ValueError("trees are not one per class per round")
        trees = [_tree_arrays(tree, n_features) for tree in tree_docs]
        base_score = _parse_base_score(params["base_score"])
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"{where} is not an xgboost model document ({exc!r}).") from exc

    is_classifier = objective in _CLASSIFIER_OBJECTIVES
    estimator = XGBClassifier if is_classifier else XGBRegressor
    loss_name = objective
    objective_params = {}
    if objective in _OBJECTIVE_PARAMS:
        block, keys = _OBJECTIVE_PARAMS[objective]
        given = learner["objective"].get(block) or {}
        if "," in str(given.get("quantile_alpha", "")):
            raise ValueError("several quantiles (quantile_alpha with more than one value) are "
                             "not supported.")
        objective_params = {ours: float(str(given[key]).strip("[]")) for key, ours in keys.items()
                            if key in given}
    if is_classifier and num_target == 1 and \
            (n_groups > 1) != (loss_name in ("multi:softprob", "multi:softmax")):
        raise ValueError(f"objective {objective!r} with num_class={num_class} is inconsistent.")
    n_rounds = max(len(trees) // n_groups, 1)
    if into is None:
        model = estimator(n_estimators=n_rounds, objective=loss_name, backend=backend,
                          n_jobs=n_jobs, **objective_params)
    elif type(into) is not estimator:
        raise ValueError(f"{where} holds an xgboost {objective!r} model, which loads into an "
                         f"{estimator.__name__}, not an {type(into).__name__}.")
    else:
        model = into.set_params(n_estimators=n_rounds, objective=loss_name, **objective_params)
        for attribute in ("best_iteration", "best_score", "feature_names_in_", "classes_",
                          "n_classes_"):
            model.__dict__.pop(attribute, None)
    binner = _binner_from_thresholds(trees, n_features, backend)
    forest = Forest(n_groups=n_groups)
    for tree, group in zip(trees, tree_info):
        forest.add_tree(tree, tree["threshold"], int(group))
    model._forest = forest
    model._binner = binner
    model._loss = model._make_loss(loss_name, n_groups)
    if num_target > 1:
        from .multilabel import MultiLabel

        model._loss = MultiLabel(model._loss, num_target)
    if n_groups > 1:
        model.base_score_ = np.broadcast_to(base_score, (n_groups,)).copy()
    else:
        model.base_score_ = float(base_score[0])
    model._base_margin = np.broadcast_to(model._loss.score_to_margin(model.base_score_),
                                         (n_groups,)).astype(np.float64)
    model.n_features_in_ = n_features
    if forest.has_categorical:
        model.set_params(enable_categorical=True)
        categories = _read_cats(gbtree.get("cats"), n_features)
        # Without xgboost's table, a frame's category codes are used as they are.
        model._categories = categories or {
            int(f): None for f in np.flatnonzero(_categorical_features(trees, n_features))}
    else:
        model._categories = {}
    names = learner.get("feature_names") or []
    if len(names) == n_features:
        model.feature_names_in_ = np.asarray(names, dtype=object)
    model.evals_result_ = {}
    attributes = learner.get("attributes") or {}
    if "best_iteration" in attributes:
        model.best_iteration = int(attributes["best_iteration"])
        model.best_score = float(attributes.get("best_score", "nan"))
    if is_classifier:
        model.classes_ = np.arange(2 if num_target > 1 else max(n_groups, 2))
        try:
            meta = json.loads(attributes.get("scikit_learn") or "{}")
        except json.JSONDecodeError:
            meta = {}
        labels = _class_labels_from_meta(meta, model.classes_.shape[0]) if num_target <= 1 \
            else None
        if labels is not None:  # written by to_xgboost_json for non-index labels
            model.classes_ = labels
        model.n_classes_ = model.classes_.shape[0]
    return model
