r"""Objectives: gradients, hessians and base scores, computed as xgboost does.

xgboost's second-order boosting fits each tree to the gradient :math:`g_i` and
hessian :math:`h_i` of the loss at the current margin :math:`F(x_i)`. Both are
float32 (as xgboost's ``GradientPair``); the margins of the training rows are
float32 too (xgboost's prediction cache), so that the same data grow the same
trees. With sample weights :math:`s_i`, both are multiplied by :math:`s_i`.

- ``reg:squarederror``: :math:`\ell = \tfrac12 (F - y)^2`, :math:`g = F - y`,
  :math:`h = 1`; base score: the weighted mean of :math:`y`.
- ``binary:logistic``: :math:`p = \sigma(F)`,
  :math:`\ell = -y \log p - (1 - y)\log(1 - p)`, :math:`g = p - y`,
  :math:`h = \max(p (1 - p), 10^{-16})`; base score: the weighted positive
  rate :math:`\bar y` (xgboost 3), i.e. the base margin
  :math:`\log(\bar y / (1 - \bar y))`.
"""

import numpy as np


class SquaredError:
    name = "reg:squarederror"
    default_metric = "rmse"
    n_groups = 1

    def base_score(self, y, sample_weight):
        return float(np.float32(np.average(y, weights=sample_weight)))

    def score_to_margin(self, base_score):
        return np.float32(base_score)

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        """Write g and h (float32) of every row; ``raw`` and ``y`` are float32."""
        np.subtract(raw, y, out=out_gradients)
        if sample_weight is None:
            out_hessians.fill(1.0)
        else:
            np.multiply(out_gradients, sample_weight, out=out_gradients)
            out_hessians[:] = sample_weight

    def loss(self, y, raw, sample_weight=None):
        """Root mean squared error of the margins (xgboost's "rmse")."""
        error = (raw.astype(np.float64) - y) ** 2
        return float(np.sqrt(np.average(error, weights=sample_weight)))

    def transform(self, raw):
        return raw


class CustomObjective:
    """A user's objective: ``func(y_true, margin) -> (gradient, hessian)`` (xgboost's sklearn API).

    As xgboost: the base score is 0.5 (no estimation), predictions are margins,
    and the gradients are used as returned (sample weights are not applied).
    """

    name = "custom"
    default_metric = "rmse"
    n_groups = 1

    def __init__(self, func):
        self.func = func

    def base_score(self, y, sample_weight):
        return 0.5

    def score_to_margin(self, base_score):
        return np.float32(base_score)

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        gradient, hessian = self.func(y, raw.copy())
        out_gradients[:] = np.asarray(gradient, dtype=np.float32).reshape(-1)
        out_hessians[:] = np.asarray(hessian, dtype=np.float32).reshape(-1)

    def loss(self, y, raw, sample_weight=None):
        error = (raw.astype(np.float64) - y) ** 2
        return float(np.sqrt(np.average(error, weights=sample_weight)))

    def transform(self, raw):
        return raw


def sigmoid(raw):
    return 1.0 / (1.0 + np.exp(-raw))


class CustomBinaryObjective(CustomObjective):
    """A user's objective for :class:`XGBClassifier` with two classes, as xgboost's.

    xgboost keeps "binary:logistic" as the learner's objective and only takes
    the gradients from ``func``: the base score is 0.5 (a margin of 0, no
    estimation) and probabilities are the sigmoid of the margin.
    """

    default_metric = "logloss"

    def score_to_margin(self, base_score):
        return np.float32(0.0)  # logit(0.5)

    def loss(self, y, raw, sample_weight=None):
        p = np.clip(sigmoid(raw.astype(np.float64)), 1e-16, 1.0 - 1e-16)
        return float(-np.average(y * np.log(p) + (1.0 - y) * np.log1p(-p), weights=sample_weight))

    def transform(self, raw):
        return sigmoid(raw)


class BinaryLogistic:
    name = "binary:logistic"
    default_metric = "logloss"
    n_groups = 1

    def base_score(self, y, sample_weight):
        return float(np.float32(np.average(y, weights=sample_weight)))

    def newton_base_score(self, y, sample_weight):
        """One Newton step from margin 0: xgboost 3's estimate with ``scale_pos_weight``."""
        w = np.ones_like(y, dtype=np.float64) if sample_weight is None else sample_weight
        step = np.sum(w * (y - 0.5)) / (0.25 * np.sum(w))
        return float(np.float32(1.0 / (1.0 + np.exp(-step))))

    def score_to_margin(self, base_score):
        # A one-class (weighted) target would give an infinite margin: stay finite.
        p = np.clip(np.float64(base_score), 1e-7, 1.0 - 1e-7)
        return np.float32(np.log(p / (1.0 - p)))

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        # p = 1 / (1 + exp(-raw)) in float32, then g = p - y, h = max(p (1 - p), 1e-16).
        np.negative(raw, out=out_hessians)
        np.exp(out_hessians, out=out_hessians)
        out_hessians += np.float32(1.0)
        np.reciprocal(out_hessians, out=out_hessians)      # p
        np.subtract(out_hessians, y, out=out_gradients)    # p - y
        out_hessians *= np.float32(1.0) - out_hessians     # p (1 - p)
        np.maximum(out_hessians, np.float32(1e-16), out=out_hessians)
        if sample_weight is not None:
            out_gradients *= sample_weight
            out_hessians *= sample_weight

    def loss(self, y, raw, sample_weight=None):
        """Mean log loss (xgboost's "logloss")."""
        raw = raw.astype(np.float64)
        # log(1 + exp(-|F|)) + max(F, 0) - y F, a stable form of the log loss.
        per_row = np.logaddexp(0.0, raw) - y * raw
        return float(np.average(per_row, weights=sample_weight))

    def transform(self, raw):
        return sigmoid(raw)


class Softmax:
    """``multi:softprob``: one margin per class, :math:`p_k = e^{F_k} / \\sum_j e^{F_j}`.

    :math:`g_{ik} = p_{ik} - [y_i = k]`, :math:`h_{ik} = \\max(2 p_{ik}(1 - p_{ik}), 10^{-16})`
    (xgboost's factor 2), one tree per class per round. Base margins (xgboost 3):
    the log class priors minus their mean.
    """

    name = "multi:softprob"
    default_metric = "mlogloss"

    def __init__(self, n_classes):
        self.n_groups = n_classes

    def base_score(self, y, sample_weight):
        priors = np.bincount(y.astype(np.intp), weights=sample_weight, minlength=self.n_groups)
        log_priors = np.log(np.maximum(priors / priors.sum(), 1e-16))
        return (log_priors - log_priors.mean()).astype(np.float32)

    def score_to_margin(self, base_score):
        return np.broadcast_to(np.asarray(base_score, dtype=np.float32), (self.n_groups,)).copy()

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        """``raw``, ``out_gradients``, ``out_hessians``: (n_classes, n) float32."""
        np.subtract(raw, raw.max(axis=0), out=out_gradients)
        np.exp(out_gradients, out=out_gradients)
        out_gradients /= out_gradients.sum(axis=0)                   # p
        np.subtract(np.float32(1.0), out_gradients, out=out_hessians)
        out_hessians *= out_gradients
        out_hessians *= np.float32(2.0)                              # 2 p (1 - p)
        out_gradients[y.astype(np.intp), np.arange(y.shape[0])] -= np.float32(1.0)
        if sample_weight is not None:
            out_gradients *= sample_weight
            out_hessians *= sample_weight
        np.maximum(out_hessians, np.float32(1e-16), out=out_hessians)

    def loss(self, y, raw, sample_weight=None):
        """Mean multiclass log loss; ``raw`` is (n_classes, n)."""
        return _mlogloss(y, self.transform(raw.T), sample_weight)

    def transform(self, raw):
        """Class probabilities (n, n_classes) from margins (n, n_classes)."""
        raw = raw.astype(np.float64)
        e = np.exp(raw - raw.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


class RegressionLogistic(BinaryLogistic):
    """``reg:logistic``: the logistic loss for targets in [0, 1]; predictions are probabilities."""

    name = "reg:logistic"
    default_metric = "rmse"


OBJECTIVES = {"reg:squarederror": SquaredError, "binary:logistic": BinaryLogistic,
              "multi:softprob": Softmax, "reg:logistic": RegressionLogistic}


# Evaluation metrics, as xgboost computes them from (float32) predictions.
# Each takes (y, prediction, sample_weight) with prediction already transformed
# (probabilities for binary:logistic); "maximize" says which way is better.

def _rmse(y, prediction, weight):
    return float(np.sqrt(np.average((prediction.astype(np.float64) - y) ** 2, weights=weight)))


def _mae(y, prediction, weight):
    return float(np.average(np.abs(prediction.astype(np.float64) - y), weights=weight))


def _logloss(y, prediction, weight):
    p = np.clip(prediction.astype(np.float64), 1e-16, 1.0 - 1e-16)
    return float(np.average(-(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)), weights=weight))


def _error(y, prediction, weight):
    return float(np.average((prediction > 0.5) != (y > 0.5), weights=weight))


def _auc(y, prediction, weight):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, prediction, sample_weight=weight))


def _mlogloss(y, prediction, weight):
    p = np.clip(prediction[np.arange(y.shape[0]), y.astype(np.intp)], 1e-16, 1.0 - 1e-16)
    return float(np.average(-np.log(p), weights=weight))


def _merror(y, prediction, weight):
    return float(np.average(np.argmax(prediction, axis=1) != y.astype(np.intp), weights=weight))


METRICS = {  # name: (function, maximize)
    "mlogloss": (_mlogloss, False),
    "merror": (_merror, False),
    "rmse": (_rmse, False),
    "mae": (_mae, False),
    "logloss": (_logloss, False),
    "error": (_error, False),
    "auc": (_auc, True),
}
