r"""Monotone and interaction constraints of the boosting trees, as xgboost reads them.

``monotone_constraints`` (xgboost's ``TreeEvaluator``): feature :math:`f` has
:math:`c_f \in \{-1, 0, 1\}`; the model is non-decreasing in :math:`x_f` when
:math:`c_f = 1`, non-increasing when :math:`c_f = -1`. Each node carries bounds
:math:`[l, u]` on its weight; a split is kept only if its children's clipped
weights are ordered as :math:`c_f` asks, and the children's bounds meet at the
midpoint of their weights (see :mod:`fastscratch.kernels.splitting_numpy`).

``interaction_constraints`` (xgboost's ``FeatureInteractionConstraintHost``):
sets :math:`S_1, \dots, S_m` of features allowed to interact. The root may
split on any feature. A node whose path from the root used the features
:math:`P` may split on :math:`P` and on every :math:`S_i \supseteq P`.

Accepted forms, as xgboost's:

- monotone: a tuple or list of -1/0/1 (shorter than the number of features:
  the rest are 0, as xgboost), the string ``"(1,0,-1)"``, or a dict
  ``{feature name: -1/0/1}`` (names of a pandas frame's columns);
- interaction: a list of lists of feature indices or names, or its string
  form ``"[[0, 1], [2, 3]]"``.
"""

import json
import numbers
from typing import NamedTuple

import numpy as np


class TreeConstraints(NamedTuple):
    """The parsed constraints a :class:`~.grower.TreeGrower` honours.

    ``monotone``: int8 array of shape (d,), or None when no feature is
    constrained; ``interaction_sets``: tuple of frozensets of feature indices,
    or None when interactions are free.
    """

    monotone: object = None
    interaction_sets: object = None

    @property
    def active(self):
        return self.monotone is not None or self.interaction_sets is not None


def _feature_index(name, n_features, feature_names, parameter):
    """Index of a feature given by index or by name."""
    if isinstance(name, numbers.Integral) and not isinstance(name, bool):
        if not 0 <= int(name) < n_features:
            raise ValueError(f"{parameter}: feature index {name} is out of range for "
                             f"{n_features} features; use indices 0..{n_features - 1}.")
        return int(name)
    if isinstance(name, str):
        if feature_names is None or name not in feature_names:
            known = ("X has no feature names (fit a pandas DataFrame to use names)"
                     if feature_names is None else f"the features are {list(feature_names)}")
            raise ValueError(f"{parameter}: {name!r} is not a feature name of X; {known}.")
        return list(feature_names).index(name)
    raise TypeError(f"{parameter}: a feature must be an int index or a str name, got {name!r}.")


def parse_monotone(value, n_features, feature_names=None):
    """``monotone_constraints`` as an int8 array of shape (d,), or None if all 0.

    Raises ValueError/TypeError naming the parameter for a vector longer than
    the number of features, values other than -1/0/1, or unknown names.
    """
    if value is None:
        return None
    parameter = "monotone_constraints"
    if isinstance(value, str):
        text = value.strip()
        if not (text.startswith("(") and text.endswith(")")):
            raise ValueError(f"{parameter}={value!r}: the string form is '(1,0,-1)', one "
                             "-1/0/1 per feature in parentheses.")
        items = [item.strip() for item in text[1:-1].split(",") if item.strip()]
        try:
            value = [int(item) for item in items]
        except ValueError:
            raise ValueError(f"{parameter}={value!r}: the string form is '(1,0,-1)', one "
                             "-1/0/1 per feature in parentheses.") from None
    if isinstance(value, dict):
        constraints = np.zeros(n_features, dtype=np.int8)
        for name, direction in value.items():
            constraints[_feature_index(name, n_features, feature_names, parameter)] = \
                _direction(direction, parameter)
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else list(value)
        if len(items) > n_features:
            raise ValueError(f"{parameter} has {len(items)} entries but X has {n_features} "
                             f"features; give at most one -1/0/1 per feature (missing ones "
                             "are 0).")
        constraints = np.zeros(n_features, dtype=np.int8)
        constraints[:len(items)] = [_direction(item, parameter) for item in items]
    else:
        raise TypeError(f"{parameter} must be a tuple/list of -1/0/1, a string such as "
                        f"'(1,0,-1)' or a dict by feature name, got {type(value).__name__}.")
    return constraints if constraints.any() else None


def _direction(value, parameter):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or int(value) not in (-1, 0, 1):
        raise ValueError(f"{parameter}: {value!r} is not a direction; use 1 (increasing), "
                         "-1 (decreasing) or 0 (none).")
    return int(value)


def parse_interaction(value, n_features, feature_names=None):
    """``interaction_constraints`` as a tuple of frozensets of indices, or None.

    An empty list (or ``"[]"``) means no constraint, as in xgboost.
    """
    if value is None:
        return None
    parameter = "interaction_constraints"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{parameter}={value!r} is not a nested list such as "
                             "'[[0, 1], [2, 3]]'.") from None
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(group, (list, tuple, set, frozenset)) for group in value):
        raise TypeError(f"{parameter} must be a list of lists of feature indices or names "
                        f"(e.g. [[0, 1], [2, 3]]), got {value!r}.")
    if not value:
        return None
    return tuple(frozenset(_feature_index(f, n_features, feature_names, parameter)
                           for f in group) for group in value)


def parse_constraints(model, n_features, feature_names=None):
    """The :class:`TreeConstraints` of an estimator's two parameters."""
    return TreeConstraints(
        parse_monotone(getattr(model, "monotone_constraints", None), n_features, feature_names),
        parse_interaction(getattr(model, "interaction_constraints", None), n_features,
                          feature_names))


def allowed_after(used, interaction_sets, n_features):
    """Features a node may split on, given the features ``used`` on its path (uint8 mask).

    xgboost's ``FeatureInteractionConstraintHost::SplitImpl``: the features
    used so far, plus every constraint set that holds all of them.
    """
    allowed = np.zeros(n_features, dtype=np.uint8)
    allowed[list(used)] = 1
    for group in interaction_sets:
        if used <= group:
            allowed[list(group)] = 1
    return allowed


def to_json_value(value):
    """A constraint parameter as JSON (tuples become lists), for the model file."""
    if isinstance(value, dict):
        return {str(k): int(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_json_value(v) if isinstance(v, (list, tuple, set, frozenset, np.ndarray))
                else (v.item() if isinstance(v, np.generic) else v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(to_json_value(list(value)), key=str)
    return value


def from_json_value(name, value):
    """The inverse of :func:`to_json_value` for ``name`` (monotone lists come back as tuples)."""
    if name == "monotone_constraints" and isinstance(value, list):
        return tuple(value)
    return value
