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
- ``count:poisson``: log link, :math:`\mu = e^F`, :math:`g = \mu - y`,
  :math:`h = e^{F + \delta}` with :math:`\delta` = ``max_delta_step``
  (0.7 unless given, as xgboost, which also clips the leaf values with it).
- ``reg:gamma``: log link, :math:`g = 1 - y e^{-F}`, :math:`h = y e^{-F}`.
- ``reg:tweedie`` (variance power :math:`\rho \in (1, 2)`): log link,
  :math:`g = -y e^{(1-\rho)F} + e^{(2-\rho)F}`,
  :math:`h = -y (1-\rho) e^{(1-\rho)F} + (2-\rho) e^{(2-\rho)F}`.
  The base score of these three is the weighted mean of :math:`y` (xgboost 3),
  the base margin its log.
- ``reg:pseudohubererror`` (slope :math:`\delta`): :math:`z = F - y`,
  :math:`g = z / \sqrt{1 + z^2/\delta^2}`,
  :math:`h = \delta^2 / ((\delta^2 + z^2)\sqrt{1 + z^2/\delta^2})`; base
  score: one unregularised Newton step from margin 0,
  :math:`-\sum g / \sum h` (xgboost's ``FitIntercept``).
- ``binary:hinge``: :math:`y' = 2y - 1`; :math:`g = -y'`, :math:`h = 1` where
  :math:`F y' < 1`, else :math:`g = 0`, :math:`h` = the smallest normal
  float32. Predictions are :math:`[F > 0]`; the base score is that transform
  of the Newton step from 0 (xgboost's ``FitIntercept``): 1 when the
  weighted mean of :math:`y'` is positive, else 0.
- ``multi:softmax``: the gradients of ``multi:softprob``, base margins 0 (no
  estimation, as xgboost); predictions are labels.
- ``reg:quantileerror`` (:math:`\alpha` = ``quantile_alpha``):
  :math:`g = 1 - \alpha` where :math:`F \ge y`, else :math:`-\alpha`;
  ``reg:absoluteerror``: :math:`g = \mathrm{sign}(F - y)`; :math:`h = 1`. After
  growth each leaf is re-set to the (weighted) :math:`\alpha`-quantile (median)
  of its rows' residuals :math:`y - F`, times the learning rate (xgboost's
  adaptive leaves); base score: the quantile of y.
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


class CustomSoftmaxObjective(CustomObjective):
    """A user's objective for :class:`XGBClassifier` with ``n_classes > 2``, as xgboost's.

    xgboost trains "multi:softprob" with the gradients from ``func(y_true,
    margin)``, ``margin`` of shape (n, n_classes), ``y_true`` the class
    indices; gradients and hessians come back as (n, n_classes) (or flat). The
    base score is 0.5 for every class, taken as the margin (no estimation), and
    probabilities are the softmax of the margins.
    """

    default_metric = "mlogloss"

    def __init__(self, func, n_classes):
        super().__init__(func)
        self.n_groups = int(n_classes)

    def score_to_margin(self, base_score):
        return np.broadcast_to(np.asarray(base_score, dtype=np.float32), (self.n_groups,)).copy()

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        """``raw``, ``out_gradients``, ``out_hessians``: (n_classes, n) float32."""
        gradient, hessian = self.func(y, np.ascontiguousarray(raw.T))
        shape = (raw.shape[1], self.n_groups)
        for name, values, out in (("gradient", gradient, out_gradients),
                                  ("hessian", hessian, out_hessians)):
            values = np.asarray(values, dtype=np.float32)
            if values.size != out.size:
                raise ValueError(f"the custom objective returned a {name} of shape "
                                 f"{values.shape}; it must be {shape} (rows, classes).")
            out[:] = values.reshape(shape).T

    def loss(self, y, raw, sample_weight=None):
        """Mean multiclass log loss; ``raw`` is (n_classes, n)."""
        return _mlogloss(y, self.transform(raw.T), sample_weight)

    def transform(self, raw):
        """Class probabilities (n, n_classes) from margins (n, n_classes)."""
        return Softmax.transform(self, raw)


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


class _LogLink:
    """Shared parts of the log-link objectives: base score the weighted mean of y."""

    n_groups = 1
    params = None  # the objective's own parameters, by xgboost's names

    def base_score(self, y, sample_weight):
        return float(np.float32(np.average(y, weights=sample_weight)))

    def score_to_margin(self, base_score):
        return np.float32(np.log(max(float(base_score), 1e-16)))

    def transform(self, raw):
        return np.exp(raw.astype(np.float64))

    def loss(self, y, raw, sample_weight=None):
        return METRICS[self.default_metric][0](y, self.transform(raw), sample_weight)

    def _weighted(self, sample_weight, out_gradients, out_hessians):
        if sample_weight is not None:
            out_gradients *= sample_weight
            out_hessians *= sample_weight


class Poisson(_LogLink):
    """``count:poisson``: see the module docstring; ``max_delta_step`` enters the hessian."""

    name = "count:poisson"
    default_metric = "poisson-nloglik"

    def __init__(self, max_delta_step=0.7):
        self.max_delta_step = float(np.float32(max_delta_step))
        self.params = {"max_delta_step": self.max_delta_step}

    def check_target(self, y):
        if np.any(y < 0):
            raise ValueError("objective='count:poisson' needs counts y >= 0; y has negative "
                             "values.")

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        np.exp(raw, out=out_gradients)
        out_gradients -= y
        np.add(raw, np.float32(self.max_delta_step), out=out_hessians)
        np.exp(out_hessians, out=out_hessians)
        self._weighted(sample_weight, out_gradients, out_hessians)


class Gamma(_LogLink):
    """``reg:gamma``: see the module docstring."""

    name = "reg:gamma"
    default_metric = "gamma-deviance"

    def check_target(self, y):
        if np.any(y <= 0):
            raise ValueError("objective='reg:gamma' needs targets y > 0; y has values <= 0.")

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        np.exp(raw, out=out_hessians)
        np.divide(y, out_hessians, out=out_hessians)           # y / e^F
        np.subtract(np.float32(1.0), out_hessians, out=out_gradients)
        self._weighted(sample_weight, out_gradients, out_hessians)


class Tweedie(_LogLink):
    """``reg:tweedie`` with variance power ``rho`` in (1, 2): see the module docstring."""

    name = "reg:tweedie"

    def __init__(self, rho=1.5):
        self.rho = float(np.float32(rho))
        self.params = {"tweedie_variance_power": self.rho}
        self.default_metric = f"tweedie-nloglik@{_metric_number(self.rho)}"

    def check_target(self, y):
        if np.any(y < 0):
            raise ValueError("objective='reg:tweedie' needs targets y >= 0; y has negative "
                             "values.")

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        rho = np.float32(self.rho)
        a = np.exp((np.float32(1.0) - rho) * raw)
        b = np.exp((np.float32(2.0) - rho) * raw)
        np.subtract(b, y * a, out=out_gradients)
        np.subtract((np.float32(2.0) - rho) * b, y * (np.float32(1.0) - rho) * a,
                    out=out_hessians)
        self._weighted(sample_weight, out_gradients, out_hessians)


class PseudoHuber:
    """``reg:pseudohubererror`` with ``huber_slope``: see the module docstring."""

    name = "reg:pseudohubererror"
    default_metric = "mphe"
    n_groups = 1

    def __init__(self, slope=1.0):
        self.slope = float(np.float32(slope))
        self.params = {"huber_slope": self.slope}

    def _gradients(self, y, raw):
        slope2 = np.float32(self.slope) ** 2
        z = (raw - y).astype(np.float32)
        scale_sqrt = np.sqrt(np.float32(1.0) + z * z / slope2)
        return z / scale_sqrt, slope2 / ((slope2 + z * z) * scale_sqrt)

    def base_score(self, y, sample_weight):
        g, h = self._gradients(np.asarray(y, dtype=np.float32), np.zeros(len(y), np.float32))
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        return float(np.float32(-np.sum(w * g) / np.sum(w * h)))

    def score_to_margin(self, base_score):
        return np.float32(base_score)

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        out_gradients[:], out_hessians[:] = self._gradients(y, raw)
        if sample_weight is not None:
            out_gradients *= sample_weight
            out_hessians *= sample_weight

    def loss(self, y, raw, sample_weight=None):
        return _mphe(y, raw, sample_weight, self.slope)

    def transform(self, raw):
        return raw


class Hinge:
    """``binary:hinge``: see the module docstring. Predictions are 0 or 1."""

    name = "binary:hinge"
    default_metric = "error"
    n_groups = 1
    params = None

    def base_score(self, y, sample_weight):
        step = np.average(2.0 * np.asarray(y, np.float64) - 1.0, weights=sample_weight)
        return 1.0 if step > 0 else 0.0

    def score_to_margin(self, base_score):
        return np.float32(base_score)

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        signed = np.float32(2.0) * y - np.float32(1.0)
        active = raw * signed < np.float32(1.0)
        np.copyto(out_gradients, np.where(active, -signed, np.float32(0.0)))
        np.copyto(out_hessians, np.where(active, np.float32(1.0),
                                         np.finfo(np.float32).tiny))
        if sample_weight is not None:
            out_gradients *= sample_weight
            out_hessians *= sample_weight

    def loss(self, y, raw, sample_weight=None):
        return _error(y, self.transform(raw), sample_weight)

    def transform(self, raw):
        return (np.asarray(raw) > 0).astype(np.float64)


def xgboost_quantile(alpha, values, weights=None):
    """xgboost's ``common::Quantile`` / ``WeightedQuantile`` of ``values``; NaN when empty.

    Unweighted: with the sorted values :math:`v_{(1)} \\le \\dots \\le v_{(n)}` and
    :math:`x = \\alpha (n + 1)`, :math:`k = \\lfloor x \\rfloor`: :math:`v_{(1)}` if
    :math:`\\alpha \\le 1/(n+1)`, :math:`v_{(n)}` if :math:`\\alpha \\ge n/(n+1)`, else
    :math:`v_{(k)} + (x - k)(v_{(k+1)} - v_{(k)})`. Weighted: the first sorted value
    whose cumulative weight reaches :math:`\\alpha \\sum w`.
    """
    n = values.shape[0]
    if n == 0:
        return np.nan
    order = np.argsort(values, kind="stable")
    ordered = values[order].astype(np.float64)
    if weights is None:
        if alpha <= 1.0 / (n + 1):
            return float(ordered[0])
        if alpha >= n / (n + 1):
            return float(ordered[-1])
        x = alpha * (n + 1)
        k = int(np.floor(x)) - 1
        d = (x - 1) - k
        return float(ordered[k] + d * (ordered[k + 1] - ordered[k]))
    cdf = np.cumsum(weights[order].astype(np.float32), dtype=np.float32)
    index = min(int(np.searchsorted(cdf, np.float32(cdf[-1] * np.float32(alpha)), side="left")),
                n - 1)
    return float(ordered[index])


class QuantileError:
    """``reg:quantileerror`` (pinball loss at ``quantile_alpha``) with xgboost's adaptive leaves.

    :math:`g = (1 - \\alpha)` where :math:`F \\ge y`, else :math:`-\\alpha`; :math:`h = 1`
    (times the sample weights). The gradients only choose the splits: after a tree
    is grown, each leaf's value is re-set to the (weighted) :math:`\\alpha`-quantile
    of the residuals :math:`y - F` of its rows, times the learning rate, as
    xgboost's ``UpdateTreeLeaf``. Base score: the :math:`\\alpha`-quantile of y.
    """

    name = "reg:quantileerror"
    default_metric = "quantile"
    n_groups = 1

    def __init__(self, alpha=0.5):
        self.alpha = float(np.float32(alpha))
        self.params = {"quantile_alpha": self.alpha}

    def base_score(self, y, sample_weight):
        return float(np.float32(xgboost_quantile(self.alpha, np.asarray(y, np.float32),
                                                 sample_weight)))

    def score_to_margin(self, base_score):
        return np.float32(base_score)

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        above = raw >= y
        np.copyto(out_gradients, np.where(above, np.float32(1.0 - self.alpha),
                                          np.float32(-self.alpha)))
        if sample_weight is None:
            out_hessians.fill(1.0)
        else:
            out_gradients *= sample_weight
            out_hessians[:] = sample_weight

    def adapt_leaves(self, tree, rows, y, raw, sample_weight, learning_rate):
        """Re-set every leaf of ``tree`` to the quantile of its rows' residuals (in place)."""
        starts, stops, values = tree["leaf_segments"]
        leaves = np.flatnonzero(tree["left"] == -1)
        if leaves.shape[0] != starts.shape[0]:
            raise RuntimeError("leaf segments do not match the tree's leaves")
        for j, (leaf, start, stop) in enumerate(zip(leaves, starts, stops)):
            members = rows[start:stop]
            residuals = (y[members] - raw[members]).astype(np.float32)
            weights = None if sample_weight is None else sample_weight[members]
            q = xgboost_quantile(self.alpha, residuals, weights)
            if np.isnan(q):  # no rows (sampled out): keep the Newton value
                continue
            values[j] = np.float32(q) * np.float32(learning_rate)
            tree["value"][leaf] = values[j]

    def loss(self, y, raw, sample_weight=None):
        return _quantile(self.alpha)(y, raw, sample_weight)

    def transform(self, raw):
        return raw


class AbsoluteError(QuantileError):
    """``reg:absoluteerror``: :class:`QuantileError` at the median, with :math:`g = \\mathrm{sign}(F - y)`.

    The median's leaves and base score; metric "mae".
    """

    name = "reg:absoluteerror"
    default_metric = "mae"

    def __init__(self):
        super().__init__(0.5)
        self.params = {}

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        np.sign(raw - y, out=out_gradients)
        if sample_weight is None:
            out_hessians.fill(1.0)
        else:
            out_gradients *= sample_weight
            out_hessians[:] = sample_weight

    def loss(self, y, raw, sample_weight=None):
        return _mae(y, raw, sample_weight)


class SoftmaxLabels(Softmax):
    """``multi:softmax``: ``multi:softprob``'s trees, base margins 0; the classifier predicts labels.

    ``predict_proba`` gives the softmax of the margins, as xgboost's.
    """

    name = "multi:softmax"

    def base_score(self, y, sample_weight):
        return np.zeros(self.n_groups, dtype=np.float32)


OBJECTIVES = {"reg:squarederror": SquaredError, "binary:logistic": BinaryLogistic,
              "multi:softprob": Softmax, "reg:logistic": RegressionLogistic,
              "count:poisson": Poisson, "reg:gamma": Gamma, "reg:tweedie": Tweedie,
              "reg:pseudohubererror": PseudoHuber, "binary:hinge": Hinge,
              "multi:softmax": SoftmaxLabels, "reg:absoluteerror": AbsoluteError,
              "reg:quantileerror": QuantileError}


def make_objective(name, n_classes=None, *, max_delta_step=None, tweedie_variance_power=None,
                   huber_slope=None, quantile_alpha=None):
    """The objective object of ``name``, its parameters checked (None: xgboost's defaults)."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective={name!r} is not one of {sorted(OBJECTIVES)}.")
    if name in ("multi:softprob", "multi:softmax"):
        return OBJECTIVES[name](n_classes)
    if name == "count:poisson":
        return Poisson(0.7 if max_delta_step is None else max_delta_step)
    if name == "reg:tweedie":
        rho = 1.5 if tweedie_variance_power is None else tweedie_variance_power
        if isinstance(rho, bool) or not isinstance(rho, (int, float, np.number)) \
                or not 1.0 < float(rho) < 2.0:
            raise ValueError(f"tweedie_variance_power={rho!r} must be a number in the open "
                             "interval (1, 2) (1: Poisson, 2: gamma; use those objectives).")
        return Tweedie(rho)
    if name == "reg:pseudohubererror":
        slope = 1.0 if huber_slope is None else huber_slope
        if isinstance(slope, bool) or not isinstance(slope, (int, float, np.number)) \
                or not float(slope) > 0:
            raise ValueError(f"huber_slope={slope!r} must be a number > 0.")
        return PseudoHuber(slope)
    if name == "reg:quantileerror":
        if quantile_alpha is None:  # as xgboost, which has no default
            raise ValueError("objective='reg:quantileerror' needs quantile_alpha, the quantile "
                             "in (0, 1) to fit (e.g. quantile_alpha=0.5 for the median).")
        alpha = quantile_alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) \
                or not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"quantile_alpha={alpha!r} must be a number in the open interval "
                             "(0, 1) (one quantile; several at once are not supported).")
        return QuantileError(alpha)
    return OBJECTIVES[name]()


def _metric_number(value):
    return "%g" % float(value)


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


def _poisson_nloglik(y, prediction, weight):
    from scipy.special import gammaln

    p = np.maximum(prediction.astype(np.float64), 1e-16)
    return float(np.average(gammaln(y + 1.0) + p - np.log(p) * y, weights=weight))


def _gamma_deviance(y, prediction, weight):
    ratio = (y + 1e-6) / (prediction.astype(np.float64) + 1e-6)
    return float(2.0 * np.average(ratio - np.log(ratio) - 1.0, weights=weight))


def _tweedie_nloglik(rho):
    def metric(y, prediction, weight):
        p = prediction.astype(np.float64)
        a = y * np.exp((1.0 - rho) * np.log(p)) / (1.0 - rho)
        b = np.exp((2.0 - rho) * np.log(p)) / (2.0 - rho)
        return float(np.average(-a + b, weights=weight))
    return metric


def _quantile(alpha):
    def metric(y, prediction, weight):
        d = y - prediction.astype(np.float64)
        return float(np.average(np.where(d >= 0, alpha * d, (alpha - 1.0) * d), weights=weight))
    return metric


def _mphe(y, prediction, weight, slope=1.0):
    z = prediction.astype(np.float64) - y
    return float(np.average(slope ** 2 * (np.sqrt(1.0 + (z / slope) ** 2) - 1.0), weights=weight))


def get_metric(metric):
    """``(function(y, prediction, weight), maximize, name)`` of a metric name or callable.

    A callable has the scikit-learn signature ``metric(y_true, y_pred) -> float``
    (xgboost >= 1.6): it is named by its ``__name__`` and minimised.
    """
    if callable(metric):
        def function(y, prediction, weight):
            if weight is None:
                return float(metric(y, prediction))
            return float(metric(y, prediction, sample_weight=weight))
        return function, False, getattr(metric, "__name__", type(metric).__name__)
    if isinstance(metric, str) and metric.startswith("tweedie-nloglik@"):
        try:
            rho = float(metric.split("@", 1)[1])
        except ValueError:
            rho = np.nan
        if not 1.0 < rho < 2.0:
            raise ValueError(f"eval_metric={metric!r}: the variance power after '@' must be "
                             "in (1, 2).")
        return _tweedie_nloglik(rho), False, metric
    if metric not in METRICS:
        raise ValueError(f"eval_metric={metric!r} is not one of {sorted(METRICS)}, "
                         "'tweedie-nloglik@<rho>' or a callable metric(y_true, y_pred).")
    return METRICS[metric][0], METRICS[metric][1], metric


METRICS = {  # name: (function, maximize)
    "mlogloss": (_mlogloss, False),
    "merror": (_merror, False),
    "rmse": (_rmse, False),
    "mae": (_mae, False),
    "logloss": (_logloss, False),
    "error": (_error, False),
    "auc": (_auc, True),
    "poisson-nloglik": (_poisson_nloglik, False),
    "gamma-deviance": (_gamma_deviance, False),
    "mphe": (_mphe, False),
    "quantile": (_quantile(0.5), False),
}
