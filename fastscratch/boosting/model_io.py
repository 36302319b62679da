"""Saving and loading fitted boosting models as JSON.

The file is one JSON object::

    {
      "format": "fastscratch.boosting",      # identifies the file
      "version": 1,
      "estimator": "XGBClassifier",          # or "XGBRegressor"
      "params": {...},                       # get_params(), JSON-safe values only
      "objective": "binary:logistic",
      "base_score": 0.627...,                # as estimated or given (a list: multiclass)
      "base_margin": [0.521...],             # float32 initial margin of each tree group
      "n_features_in": 30,
      "classes": [0, 1],                     # classifiers only
      "best_iteration": 41, "best_score": 0.05,  # after early stopping only
      "cuts": {"cut_values": [...], "cut_ptr": [...], "min_values": [...]},
      "forest": {"n_groups": 1, "tree_roots": [...], "tree_groups": [...],
                 "nodes": {"feature": [...], "threshold": [...], "bin": [...],
                           "default_left": [...], "left": [...], "right": [...],
                           "value": [...], "gain": [...], "cover": [...]},
                 "categorical": {"nodes": [...], "categories": [[...], ...]}},
      "pandas_categories": {"4": ["lo", "mid", "hi"], ...}  # enable_categorical fits
    }

A categorical split (``forest.categorical``, absent without them) sends the
rows whose category code is in its list right; ``pandas_categories`` maps a
column index to the categories its codes stand for (predict re-codes by
value).

Nodes are listed flat over all trees (see :mod:`fastscratch.kernels.tree_predict_numpy`);
a node's children are ``left`` and ``right == left + 1`` (-1 on leaves), its
test is ``x < threshold`` (missing values follow ``default_left``). float32
values are written as the shortest decimal of their float64 value, so loading
gives back the same bits and the same predictions.
"""

import json

import numpy as np

from .binning import BinMapper
from .constraints import from_json_value, to_json_value
from .loss import OBJECTIVES
from .predictor import _DTYPES, NODE_FIELDS, Forest

FORMAT = "fastscratch.boosting"
VERSION = 1


CONSTRAINT_PARAMS = ("monotone_constraints", "interaction_constraints")


def _json_safe(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return None  # e.g. a RandomState: not stored


def is_fastscratch_document(data):
    """True when the bytes ``data`` are a JSON document of this format (not xgboost's)."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(document, dict) and document.get("format") == FORMAT


def save_model(model, path):
    if model._loss.name == "custom":
        raise ValueError("a model with a custom (callable) objective cannot be saved in the "
                         "fastscratch format (the callable is not JSON); save it with "
                         "save_model(path, format='xgboost') or pickle it.")
    nodes, roots, groups = model._forest.arrays()
    document = {
        "format": FORMAT,
        "version": VERSION,
        "estimator": type(model).__name__,
        "params": {k: to_json_value(v) if k in CONSTRAINT_PARAMS else _json_safe(v)
                   for k, v in model.get_params().items()},
        "objective": model._loss.name,
        "base_score": np.asarray(model.base_score_, dtype=np.float64).tolist(),
        "base_margin": np.asarray(model._base_margin, dtype=np.float64).tolist(),
        "n_features_in": int(model.n_features_in_),
        "cuts": {"cut_values": model._binner.cut_values_.astype(np.float64).tolist(),
                 "cut_ptr": model._binner.cut_ptr_.tolist(),
                 "min_values": model._binner.min_values_.astype(np.float64).tolist()},
        "forest": {"n_groups": int(model._forest.n_groups), "tree_roots": roots.tolist(),
                   "tree_groups": groups.tolist(),
                   "nodes": {name: nodes[name].tolist() for name in NODE_FIELDS}},
    }
    if model._forest.has_categorical:
        split_nodes = sorted(model._forest._categories)
        document["forest"]["categorical"] = {
            "nodes": [int(k) for k in split_nodes],
            "categories": [model._forest.node_categories(k).tolist() for k in split_nodes]}
    if getattr(model, "_categories", None):
        document["pandas_categories"] = {
            str(i): None if index is None else [_json_safe(v) for v in index]
            for i, index in model._categories.items()}
    if hasattr(model, "classes_"):
        document["classes"] = model.classes_.tolist()
    if hasattr(model, "best_iteration"):
        document["best_iteration"] = int(model.best_iteration)
        document["best_score"] = float(model.best_score)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)


def load_model(model, path):
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a JSON model file ({exc}).") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastscratch boosting model (no \"format\": "
                         f"\"{FORMAT}\"); models saved by xgboost itself cannot be loaded.")
    if document.get("version") != VERSION:
        raise ValueError(f"{path} has model format version {document.get('version')!r}; "
                         f"this fastscratch reads version {VERSION}.")
    if document.get("estimator") != type(model).__name__:
        raise ValueError(f"{path} holds a {document.get('estimator')}, not a "
                         f"{type(model).__name__}.")
    try:
        params = {k: v for k, v in document["params"].items() if v is not None
                  or k in ("base_score", "objective", "random_state", "n_jobs",
                           "importance_type")}
        for name in CONSTRAINT_PARAMS:
            if name in params:
                params[name] = from_json_value(name, params[name])
        if isinstance(params.get("missing"), float) and np.isnan(params["missing"]):
            del params["missing"]  # NaN, the only value allowed: keep the default's np.nan
        model.set_params(**params)
        cuts = document["cuts"]
        binner = BinMapper(model._resolved("max_bin"), backend=model.backend)
        cut_ptr = np.asarray(cuts["cut_ptr"], dtype=np.intp)
        cut_values = np.asarray(cuts["cut_values"], dtype=np.float32)
        binner._set_cuts([cut_values[cut_ptr[f]:cut_ptr[f + 1]] for f in range(len(cut_ptr) - 1)],
                         np.asarray(cuts["min_values"], dtype=np.float32))
        forest_doc = document["forest"]
        forest = Forest(n_groups=int(forest_doc["n_groups"]))
        nodes = {name: np.asarray(forest_doc["nodes"][name], dtype=_DTYPES[name])
                 for name in NODE_FIELDS}
        n_nodes = nodes["feature"].shape[0]
        if any(array.shape != (n_nodes,) for array in nodes.values()):
            raise ValueError("node arrays of different lengths")
        roots = np.asarray(forest_doc["tree_roots"], dtype=np.intp)
        groups = np.asarray(forest_doc["tree_groups"], dtype=np.intp)
        internal = nodes["left"] >= 0
        if (np.any(nodes["left"] >= n_nodes) or np.any(roots >= n_nodes) or np.any(roots < 0)
                or np.any(nodes["right"][internal] != nodes["left"][internal] + 1)
                or np.any(nodes["feature"][internal] >= document["n_features_in"])
                or np.any(nodes["feature"][internal] < 0)
                or np.any(groups >= forest.n_groups) or roots.shape != groups.shape):
            raise ValueError("inconsistent tree structure")
        forest._chunks = {name: [nodes[name]] for name in NODE_FIELDS}
        forest._roots = roots.tolist()
        forest._groups = groups.tolist()
        forest._n_nodes = n_nodes
        categorical = forest_doc.get("categorical", {"nodes": [], "categories": []})
        for k, codes in zip(categorical["nodes"], categorical["categories"], strict=True):
            if not (0 <= k < n_nodes and internal[k]) or min(codes, default=-1) < 0:
                raise ValueError("inconsistent categorical split")
            mask = np.zeros(max(codes) + 1, dtype=np.uint8)
            mask[codes] = 1
            forest._categories[int(k)] = mask
        if "pandas_categories" in document:
            import pandas as pd

            model._categories = {int(i): None if values is None else pd.Index(values)
                                 for i, values in document["pandas_categories"].items()}
        else:
            model._categories = {}
        model._binner = binner
        model._forest = forest
        objective = document["objective"]
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}")
        model._loss = model._make_loss(objective, forest.n_groups)
        model.base_score_ = (np.asarray(document["base_score"]) if forest.n_groups > 1
                             else float(document["base_score"]))
        model._base_margin = np.asarray(document["base_margin"], dtype=np.float64).reshape(-1)
        if model._base_margin.shape != (forest.n_groups,):
            raise ValueError("base_margin does not match the number of tree groups")
        model.n_features_in_ = int(document["n_features_in"])
        model.evals_result_ = {}
        for attribute in ("best_iteration", "best_score"):
            model.__dict__.pop(attribute, None)
        if "best_iteration" in document:
            model.best_iteration = int(document["best_iteration"])
            model.best_score = float(document["best_score"])
        if "classes" in document:
            model.classes_ = np.asarray(document["classes"])
            model.n_classes_ = model.classes_.shape[0]
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"{path} is a corrupted fastscratch boosting model: {exc}.") from exc
    return model
