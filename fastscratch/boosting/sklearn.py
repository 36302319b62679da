r"""XGBRegressor and XGBClassifier: xgboost's algorithm and scikit-learn API, from scratch."""

import json
import numbers
import os
import tempfile

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import type_of_target
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from sklearn.utils.validation import _check_sample_weight

from .._backend import effective_n_threads, resolve_kernel
from .._labels import check_label_kinds
from .binning import MAX_BIN, BinMapper, canonical_csr, dense_rows, sparse_block_rows
from .binning import sparse_has_missing
from .sparse import SparseTable, use_sparse_path
from .categorical import CategoricalSplits, check_feature_types, encode_frame
from .booster import Booster, feature_scores, text_tree
from .constraints import parse_constraints
from .loss import (METRICS, CustomBinaryObjective, CustomObjective, CustomSoftmaxObjective,
                   get_metric, make_objective)
from .loss import _quantile as quantile_metric
from .multilabel import MultiLabel, per_entry
from .quantized import MAX_BINS as QUANT_MAX_BINS
from .quantized import GradientQuantizer
from .training import KERNELS, Training, boost

# Rows per block of prediction: each block is cast to float32 on its own, so predicting
# float64 data never holds a float32 copy of the whole of X (float32 data go in one call).
PREDICT_BLOCK_ROWS = 1 << 16

_NOTES = r"""
    Notes
    -----
    Second-order boosting (Chen and Guestrin, 2016). The model is the margin

    .. math:: F(x) = F_0 + \sum_{t=1}^{T} \eta\, f_t(x),

    with :math:`F_0` the base margin (``base_score``), :math:`\eta` =
    ``learning_rate`` and :math:`f_t` a regression tree. Tree :math:`t` is fit
    to the gradients :math:`g_i` and hessians :math:`h_i` of the loss at
    :math:`F_{t-1}(x_i)` (:mod:`fastscratch.boosting.loss`). For a node with
    sums :math:`G = \sum g_i`, :math:`H = \sum h_i`, the leaf weight and score
    are

    .. math::

        w^* = -\frac{T_\alpha(G)}{H + \lambda}, \qquad
        \text{score} = \frac{T_\alpha(G)^2}{H + \lambda},

    with :math:`\lambda` = ``reg_lambda``, :math:`\alpha` = ``reg_alpha`` and
    :math:`T_\alpha` the L1 soft threshold. A node is split on the feature and
    bin that maximise
    :math:`\text{gain} = \text{score}_L + \text{score}_R - \text{score}`
    over candidates whose children each have :math:`H \ge` ``min_child_weight``;
    it stays a leaf when the best gain is below ``gamma`` (or 1e-6) or at
    ``max_depth``. Features are first binned into at most ``max_bin`` quantile
    bins (:mod:`fastscratch.boosting.binning`); a node's split search reads its
    gradient histogram, built for the smaller child and obtained for its
    sibling by subtraction from the parent. Rows go left when
    ``x < split_condition``, as in xgboost, whose ``tree_method="hist"`` trees
    these are (same splits and leaf values to float32 rounding when given
    xgboost's cut points).

    With ``monotone_constraints`` :math:`c_f \in \{-1, 0, 1\}`, each node
    carries bounds :math:`[l, u]`: a child's weight is
    :math:`\min(\max(w^*, l), u)`, a split on :math:`f` is kept only if
    :math:`c_f (w_R - w_L) \ge 0`, and the children's bounds meet at
    :math:`(w_L + w_R) / 2`. With ``interaction_constraints``, a node whose
    path used the features :math:`P` may split on :math:`P` and on every
    given set that contains :math:`P` (:mod:`fastscratch.boosting.constraints`).

    With ``use_quantized_grad`` (Shi et al., 2022; LightGBM's
    ``GradientDiscretizer``), each round scales the gradients by
    :math:`s_g = \max_i |g_i| / \lfloor B/2 \rfloor` and the hessians by
    :math:`s_h = \max_i h_i / B` (:math:`s_h = h` when every hessian is the
    same :math:`h`, each row's level then 1) and rounds them to integers
    :math:`q^g_i, q^h_i` (stochastically, or to nearest). Histograms hold the
    exact integer sums :math:`Q^g, Q^h`, and the split search reads
    :math:`G \approx s_g Q^g`, :math:`H \approx s_h Q^h`: the gains, and so
    the splits, are approximate, as are the leaf values and covers unless
    ``quant_train_renew_leaf`` recomputes them from the float sums of each
    leaf's rows (exact). The trees then differ from xgboost's; the held-out
    metric stays close (measured in ``tests/test_boosting_quantized.py``).
"""


_TREE_PARAMS = r"""    n_estimators : int or None, default=None
        Number of boosting rounds (trees; None: 100, as xgboost).
    learning_rate : float or None, default=None
        Shrinkage :math:`\eta` of every tree's leaf values (> 0; None: 0.3; alias ``eta``).
    max_depth : int or None, default=None
        Maximum depth of a tree (0: no limit, as xgboost; None: 6).
    min_child_weight : float or None, default=None
        Minimum hessian sum of a child (None: 1).
    reg_lambda : float or None, default=None
        L2 penalty :math:`\lambda` on leaf weights (None: 1; alias ``lambda``).
    reg_alpha : float or None, default=None
        L1 penalty :math:`\alpha` on leaf weights (None: 0; alias ``alpha``).
    gamma : float or None, default=None
        Minimum loss reduction to split a node (None: 0; alias ``min_split_loss``).
    max_delta_step : float or None, default=None
        If > 0, leaf weights are clipped to ``[-max_delta_step, max_delta_step]``
        (None: 0.7 for "count:poisson", whose hessians it also enters, else 0,
        as xgboost).
    max_bin : int or None, default=None
        Maximum number of bins per feature, in [2, 256] (None: 256).
"""
_RUN_PARAMS = r"""    tree_method : {"hist", "auto"} or None, default=None
        xgboost's ``hist`` ("auto" and None are "hist", as in xgboost 3).
    missing : float, default=np.nan
        The value that marks a missing entry; NaN only (xgboost's default).
    booster : {"gbtree"} or None, default=None
        Accepted as xgboost's (None is "gbtree"); other boosters are refused.
    device : {"cpu"} or None, default=None
        Accepted as xgboost's; the kernels run on the CPU.
    validate_parameters : bool or None, default=None
        Accepted as xgboost's; parameters are always checked here.
    random_state : int or None, default=None
        Seeds row and column subsampling and the binning subsample (data over
        200k rows). None is seed 0, as xgboost's, so that two fits with the
        defaults give the same model (alias ``seed``).
    n_jobs : int or None, default=None
        Threads (None: all cores, or the global setting; alias ``nthread``).
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel backend.
"""
_EXTRA_PARAMS = r"""    grow_policy : {"depthwise", "lossguide"} or None, default=None
        Split a whole level at a time, or always the open node of largest gain
        (None: "depthwise").
    max_leaves : int or None, default=None
        Maximum number of leaves of a tree (0: no limit); "lossguide" only
        (with "depthwise", a value > 0 is a ValueError).
    scale_pos_weight : float or None, default=None
        Weight of the positive class's rows (binary:logistic only; None: 1).
    subsample : float or None, default=None
        Fraction of the rows each tree is grown on (in (0, 1]; None: 1).
    colsample_bytree, colsample_bylevel, colsample_bynode : float or None, default=None
        Fraction of the features each tree, level, node may split on (nested;
        None: 1).
    importance_type : {"gain", "weight", "total_gain", "cover", "total_cover"} or None
        What ``feature_importances_`` measures (None: "gain").
    early_stopping_rounds : int or None, default=None
        Stop when the last ``eval_metric`` on the last ``eval_set`` has not
        improved for this many rounds; predictions then use the best round.
    eval_metric : str, list of str, callable or None, default=None
        Metrics of ``eval_set``: "rmse", "mae", "logloss", "error", "auc",
        "mlogloss", "merror", "poisson-nloglik", "gamma-deviance",
        "tweedie-nloglik@<rho>", "mphe" (None: the objective's own). A callable
        ``metric(y_true, y_pred) -> float`` (scikit-learn's signature; ``y_pred``
        the predictions, probabilities for a classifier) is computed after the
        objective's own metric, recorded under its ``__name__`` and minimised
        by early stopping, as xgboost >= 1.6.
    tweedie_variance_power : float or None, default=None
        :math:`\rho \in (1, 2)` of "reg:tweedie" (None: 1.5).
    huber_slope : float or None, default=None
        :math:`\delta > 0` of "reg:pseudohubererror" (None: 1).
    quantile_alpha : float or None, default=None
        The quantile :math:`\alpha \in (0, 1)` of "reg:quantileerror" (required
        with it, as in xgboost; one quantile only).
    monotone_constraints : tuple, list, str, dict or None, default=None
        Per feature 1 (prediction non-decreasing in it), -1 (non-increasing)
        or 0: a tuple/list (missing trailing entries are 0), the string
        ``"(1,0,-1)"`` or a dict by feature name. xgboost's bounds on the
        leaf weights (:mod:`fastscratch.boosting.constraints`).
    interaction_constraints : list of lists, str or None, default=None
        Groups of features (indices or names) that may appear together on a
        path from the root, e.g. ``[[0, 1], [2, 3]]`` or its string form.
    enable_categorical : bool, default=False
        Use pandas ``category`` columns as categorical features (their codes;
        at predict time re-coded by value to the fit's categories, an unseen
        category a ValueError, as xgboost 3). Rows of a split's category set
        go right (:mod:`fastscratch.boosting.categorical`).
    feature_types : list of str or None, default=None
        Per feature "q" (numeric) or "c" (categorical: non-negative integer
        codes, NaN missing), for NumPy input; needs ``enable_categorical``.
    max_cat_to_onehot : int or None, default=None
        A categorical feature with fewer categories is split one category
        against the rest; else by the best prefix of its categories sorted by
        gradient / hessian (None: 4, as xgboost).
    max_cat_threshold : int or None, default=None
        Most categories a partition scan puts on one side (None: 64).
    use_quantized_grad : bool, default=False
        Opt-in, LightGBM 4's name: grow each tree from gradients and hessians
        rounded to ``num_grad_quant_bins`` integer levels, with integer
        histograms (:mod:`fastscratch.boosting.quantized`). Faster histograms,
        approximate splits (see Notes); False: exact, xgboost's trees. Binary
        and regression objectives, depth-wise growth, dense or NaN-holding
        numeric data, in memory; a ValueError otherwise.
    num_grad_quant_bins : int, default=4
        :math:`B`, the levels of the quantized gradients (LightGBM's default;
        2 to 32768, and rows x (B + 1) below 2**31). More levels: closer to
        the exact fit.
    stochastic_rounding : bool, default=True
        Round each scaled gradient up with probability equal to its fractional
        part (unbiased; draws seeded from ``random_state``, so the same seed
        gives the same model), else to the nearest level.
    quant_train_renew_leaf : bool, default=False
        Leaf values (and covers) from the float gradient and hessian sums of
        each leaf's rows instead of the quantized ones (LightGBM's
        ``quant_train_renew_leaf``).
    num_parallel_tree, sampling_method, multi_strategy : None, default=None
        Accepted with xgboost's defaults only (1, "uniform",
        "one_output_per_tree"); other values are ValueErrors.
    callbacks, feature_weights : None, default=None
        Not supported; anything but None is a ValueError.
    **kwargs
        xgboost's native names of the parameters above, as xgboost's
        scikit-learn API passes them on: ``eta`` (``learning_rate``),
        ``min_split_loss`` (``gamma``), ``lambda`` (``reg_lambda``), ``alpha``
        (``reg_alpha``), ``seed`` (``random_state``), ``nthread``
        (``n_jobs``). Reported by ``get_params`` under the name given. Any
        other name is a ValueError at ``fit`` (xgboost warns and ignores it).
"""
_PREDICT_PARAMS = r"""        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        iteration_range : (int, int) or None
            Rounds whose trees predict (None: all, or up to the best iteration
            after early stopping).
        output_margin, pred_leaf, pred_contribs, pred_interactions : bool, default=False
            As xgboost's ``Booster.predict``: the raw margin; the leaf of every
            tree (:meth:`apply`); SHAP contributions ``(n_samples, n_features + 1)``
            with the bias last; SHAP interaction values
            ``(n_samples, n_features + 1, n_features + 1)`` (multiclass: a class
            axis after the rows). At most one.
        base_margin : array-like of shape (n_samples,) or (n_samples, n_classes), or None
            Margins the trees are added to instead of the base score's, as
            xgboost's (for ``pred_contribs``, in the bias term).
"""
"""The parameters of both estimators' ``predict`` (filled in by :func:`_predict_doc`)."""
_DOC_PARTS = {"_TREE_PARAMS": _TREE_PARAMS, "_RUN_PARAMS": _RUN_PARAMS,
              "_EXTRA_PARAMS": _EXTRA_PARAMS, "_NOTES": _NOTES}


def _predict_doc(method):
    """Fill ``{_PREDICT_PARAMS}`` in a ``predict`` docstring."""
    method.__doc__ = method.__doc__.replace("{_PREDICT_PARAMS}", _PREDICT_PARAMS)
    return method


def _check_float32_underflow(original, converted, name="X", row_offset=0):
    """Refuse nonzero values that the cast to float32 turned into 0 (below ~1.4e-45).

    The trees compare float32 values, as xgboost's; a column of values near
    1e-300 would become constant zeros and the model silently constant.
    """
    if sp.issparse(original) and sp.issparse(converted) and original.dtype.itemsize > 4 \
            and original.format == converted.format and original.nnz == converted.nnz:
        lost = (converted.data == 0) & (original.data != 0)
        if lost.any():
            raise ValueError(
                f"{name} has a stored value {original.data[np.flatnonzero(lost)[0]]!r} that "
                "underflows to 0 in float32, the precision the trees compare in (as "
                "xgboost's); rescale the feature before fitting.")
        return
    if not isinstance(original, np.ndarray) or original.dtype.itemsize <= 4 \
            or original.dtype.kind != "f" or original.shape != converted.shape:
        return
    for first in range(0, original.shape[0], PREDICT_BLOCK_ROWS):
        block = slice(first, first + PREDICT_BLOCK_ROWS)
        lost = (converted[block] == 0) & (original[block] != 0)
        if lost.any():
            row, column = np.argwhere(lost)[0]
            raise ValueError(
                f"{name}[{row_offset + first + row}, {column}] = {original[first + row, column]!r} "
                "underflows to "
                "0 in float32, the precision the trees compare in (as xgboost's); rescale the "
                "feature (e.g. multiply the column by a power of ten) before fitting.")


SPARSE_FORMATS = ("csr", "csc")


def _series_as_frame(X):
    """A 1-D pandas Series as X is one feature (a one-column frame), as xgboost reads it."""
    if getattr(X, "ndim", None) == 1 and hasattr(X, "to_frame"):
        return X.to_frame()
    return X


def _margin_rows(base_margin, n_rows, n_groups, name):
    """xgboost's ``base_margin`` ((n,) or (n, K) margins) as (K, n) float32, or None."""
    if base_margin is None:
        return None
    margin = np.asarray(base_margin, dtype=np.float64)
    if margin.ndim == 1 and n_groups == 1:
        margin = margin[:, None]
    if margin.shape != (n_rows, n_groups):
        expected = f"({n_rows},)" if n_groups == 1 else f"({n_rows}, {n_groups})"
        raise ValueError(f"{name} has shape {np.shape(base_margin)}; it must be {expected}: "
                         "one margin per row" + (" and class" if n_groups > 1 else "") + ".")
    if not np.all(np.isfinite(margin)):
        raise ValueError(f"{name} contains NaN or infinity; margins must be finite.")
    return np.ascontiguousarray(margin.T, dtype=np.float32)


def _validated(model, X, y="no_validation", *, reset, dtype=np.float32, **kwargs):
    """scikit-learn's ``validate_data`` with the inputs xgboost takes; returns X or (X, y).

    A 1-D pandas Series is one feature; a scipy CSR or CSC matrix becomes a
    canonical float32 CSR matrix, never dense (absent entries are missing, as
    xgboost's); values that underflow to 0 in float32 are refused.
    """
    original = model._encode_categorical(_series_as_frame(X), reset=reset)
    out = validate_data(model, original, y, reset=reset, dtype=dtype, order="C",
                        accept_sparse=SPARSE_FORMATS, ensure_all_finite="allow-nan", **kwargs)
    fitting = not (isinstance(y, str) and y == "no_validation")
    X = out[0] if fitting else out
    if sp.issparse(X):
        converted = X.astype(np.float32, copy=False)
        _check_float32_underflow(X if X.dtype != np.float32 else original, converted)
        X = canonical_csr(converted)
    elif X.dtype == np.float32:
        _check_float32_underflow(original, X)
    return (X, out[1]) if fitting else X


XGB_DEFAULTS = {"n_estimators": 100, "learning_rate": 0.3, "max_depth": 6, "max_bin": 256,
                "min_child_weight": 1.0, "reg_lambda": 1.0, "reg_alpha": 0.0, "gamma": 0.0,
                "subsample": 1.0, "colsample_bytree": 1.0, "colsample_bylevel": 1.0,
                "colsample_bynode": 1.0, "scale_pos_weight": 1.0, "grow_policy": "depthwise",
                "max_leaves": 0, "tree_method": "hist", "verbosity": 0,
                "max_cat_to_onehot": 4, "max_cat_threshold": 64, "random_state": 0}
"""xgboost's values of the parameters its scikit-learn API leaves None (``verbosity``: 0, no
progress bar, where xgboost's 1 prints warnings; ``random_state``: seed 0, so that two fits
with the defaults give the same model, as xgboost's)."""

XGB_ALIASES = {"eta": "learning_rate", "min_split_loss": "gamma", "lambda": "reg_lambda",
               "alpha": "reg_alpha", "seed": "random_state", "nthread": "n_jobs"}
"""xgboost's native names (keyword arguments of its scikit-learn API) of our parameters."""

# Parameters of xgboost's scikit-learn wrapper that its native learner never sees
# (``XGBModel._wrapper_params``), and ours that xgboost does not have.
_WRAPPER_PARAMS = {"importance_type", "kwargs", "missing", "n_estimators", "enable_categorical",
                   "early_stopping_rounds", "callbacks", "feature_types", "feature_weights"}
_OWN_PARAMS = {"backend", "use_quantized_grad", "num_grad_quant_bins", "stochastic_rounding",
               "quant_train_renew_leaf"}  # the last four: LightGBM's names
_OWN_IF_SET = {"tweedie_variance_power", "huber_slope", "quantile_alpha"}  # kwargs in xgboost

# Parameters accepted with the one value we implement (None is xgboost's default, the same).
_ONLY_VALUES = {"num_parallel_tree": (1,), "sampling_method": ("uniform",),
                "multi_strategy": ("one_output_per_tree",), "callbacks": (), "feature_weights": ()}


class _XGBModel(BaseEstimator):
    _objectives = ()

    def __init__(self, *, n_estimators=None, learning_rate=None, max_depth=None,
                 min_child_weight=None, reg_lambda=None, reg_alpha=None, gamma=None,
                 max_delta_step=None, max_bin=None, base_score=None, objective=None,
                 tree_method=None, random_state=None, n_jobs=None, backend="auto", verbosity=None,
                 importance_type=None, early_stopping_rounds=None, eval_metric=None,
                 subsample=None, colsample_bytree=None, colsample_bylevel=None,
                 colsample_bynode=None, scale_pos_weight=None, grow_policy=None, max_leaves=None,
                 tweedie_variance_power=None, huber_slope=None, quantile_alpha=None,
                 missing=np.nan, booster=None, device=None, validate_parameters=None,
                 num_parallel_tree=None, sampling_method=None, multi_strategy=None,
                 callbacks=None, feature_weights=None, monotone_constraints=None,
                 interaction_constraints=None, enable_categorical=False,
                 feature_types=None, max_cat_to_onehot=None, max_cat_threshold=None,
                 use_quantized_grad=False, num_grad_quant_bins=4, stochastic_rounding=True,
                 quant_train_renew_leaf=False, **kwargs):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.max_delta_step = max_delta_step
        self.max_bin = max_bin
        self.base_score = base_score
        self.objective = objective
        self.tree_method = tree_method
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.backend = backend
        self.verbosity = verbosity
        self.importance_type = importance_type
        self.early_stopping_rounds = early_stopping_rounds
        self.eval_metric = eval_metric
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.colsample_bylevel = colsample_bylevel
        self.colsample_bynode = colsample_bynode
        self.scale_pos_weight = scale_pos_weight
        self.grow_policy = grow_policy
        self.max_leaves = max_leaves
        self.tweedie_variance_power = tweedie_variance_power
        self.huber_slope = huber_slope
        self.quantile_alpha = quantile_alpha
        self.missing = missing
        self.booster = booster
        self.device = device
        self.validate_parameters = validate_parameters
        self.num_parallel_tree = num_parallel_tree
        self.sampling_method = sampling_method
        self.multi_strategy = multi_strategy
        self.callbacks = callbacks
        self.feature_weights = feature_weights
        self.monotone_constraints = monotone_constraints
        self.interaction_constraints = interaction_constraints
        self.enable_categorical = enable_categorical
        self.feature_types = feature_types
        self.max_cat_to_onehot = max_cat_to_onehot
        self.max_cat_threshold = max_cat_threshold
        self.use_quantized_grad = use_quantized_grad
        self.num_grad_quant_bins = num_grad_quant_bins
        self.stochastic_rounding = stochastic_rounding
        self.quant_train_renew_leaf = quant_train_renew_leaf
        if kwargs:  # xgboost's native parameters by name (``eta=``, ...): see _check_kwargs
            self.kwargs = kwargs

    # ------------------------------------------------------------------ checks
    def _resolved(self, name):
        """The parameter's value: given by name, else by its xgboost alias in ``**kwargs``
        (:data:`XGB_ALIASES`, ``eta=`` for ``learning_rate``), else xgboost's default
        (:data:`XGB_DEFAULTS`)."""
        value = getattr(self, name)
        if value is None:
            extra = getattr(self, "kwargs", None) or {}
            value = next((extra[alias] for alias, target in XGB_ALIASES.items()
                          if target == name and extra.get(alias) is not None), None)
        return XGB_DEFAULTS.get(name) if value is None else value

    # ------------------------------------------------------ xgboost's params API
    @classmethod
    def _get_param_names(cls):
        """The base class's parameters and the subclass's (``objective``'s default), as
        xgboost's ``get_params`` merges ``XGBRegressor.__init__`` and ``XGBModel.__init__``."""
        names = set(BaseEstimator._get_param_names.__func__(_XGBModel))
        if cls.__init__ is not _XGBModel.__init__:
            names |= set(BaseEstimator._get_param_names.__func__(cls))
        return sorted(names)

    def get_params(self, deep=True):
        """Parameters, with the ``**kwargs`` given to the constructor or ``set_params``
        (``eta=0.1`` is reported as ``eta``), as xgboost."""
        params = super().get_params(deep)
        params.update(getattr(self, "kwargs", None) or {})
        return params

    def set_params(self, **params):
        """Set parameters; a name that is not one (``eta``, ...) goes to ``**kwargs``, as
        xgboost. Checked at ``fit``."""
        names = set(self._get_param_names())
        for key, value in params.items():
            if key in names:
                setattr(self, key, value)
            else:
                if not hasattr(self, "kwargs"):
                    self.kwargs = {}
                self.kwargs[key] = value
        return self

    def get_xgb_params(self):
        """The parameters xgboost's native learner would get (``get_params`` without the
        wrapper's own ones and callables), as ``xgboost.XGBModel.get_xgb_params``."""
        return {key: value for key, value in self.get_params().items()
                if key not in _WRAPPER_PARAMS | _OWN_PARAMS and not callable(value)
                and not (key in _OWN_IF_SET and value is None)}

    def get_num_boosting_rounds(self):
        """Number of boosting rounds (``n_estimators``; None: 100), as xgboost."""
        return self._resolved("n_estimators")

    def _check_kwargs(self):
        """``**kwargs``: xgboost's aliases of our parameters, not given twice; anything else is
        a native xgboost parameter we do not implement (xgboost would warn and ignore an
        unknown one), refused by name."""
        extra = getattr(self, "kwargs", None) or {}
        for key, value in extra.items():
            if key in XGB_ALIASES:
                target = XGB_ALIASES[key]
                given = getattr(self, target)
                if given is not None and value is not None and given != value:
                    raise ValueError(f"{key}={value!r} is xgboost's name of {target}, which is "
                                     f"also given ({target}={given!r}); pass only one of them.")
                continue
            raise ValueError(f"parameter {key!r} is not supported: it is not an xgboost "
                             "parameter this implementation honours. Supported keyword aliases: "
                             f"{sorted(XGB_ALIASES)}; see the class docstring for the others.")
        for name, values in _ONLY_VALUES.items():
            value = getattr(self, name)
            if value is not None and value not in values:
                supported = f"{values[0]!r} or None" if values else "None only"
                raise ValueError(f"{name}={value!r} is not supported here ({supported}, "
                                 "xgboost's default).")

    def _check_params(self):
        """Every parameter's type and range, before ``fit`` converts or allocates anything.

        Sizes are checked against what the model can hold: ``max_bin`` at most
        256 (uint8 bin codes; xgboost, with wider codes, takes more), ``max_depth``
        and ``max_leaves`` within int32, as xgboost's parameters (a depth of 1000
        is accepted, as by xgboost: it is a limit, the trees stop where the data
        do, and no allocation depends on it).
        """
        def number(name, low, high=np.inf, low_open=False, integer=False, why=""):
            value = self._resolved(name)
            kind = numbers.Integral if integer else numbers.Real
            if isinstance(value, bool) or not isinstance(value, kind):
                raise TypeError(f"{name} must be {'an int' if integer else 'a number'}, "
                                f"got {value!r}.")
            # Integers compared as Python ints (no float conversion: 2**70 stays exact).
            out_of_range = not (value > low if low_open else value >= low) or value > high
            if out_of_range or (not integer and np.isnan(float(value))):
                bound = f"> {low}" if low_open else f">= {low}"
                raise ValueError(f"{name}={value!r} is out of range: it must be {bound}"
                                 + (f" and <= {high}" if np.isfinite(high) else "") + why + ".")
        number("n_estimators", 1, integer=True)
        number("learning_rate", 0, low_open=True)
        self._check_kwargs()
        if self._resolved("grow_policy") not in ("depthwise", "lossguide"):
            raise ValueError(f"grow_policy={self.grow_policy!r} is not 'depthwise' or "
                             "'lossguide'.")
        int32_max = int(np.iinfo(np.int32).max)
        number("max_depth", 0, int32_max, integer=True,
               why=" (an int32, as xgboost's; 0 is no limit)")
        number("max_leaves", 0, int32_max, integer=True, why=" (an int32, as xgboost's)")
        if self._resolved("grow_policy") == "depthwise" and self._resolved("max_leaves") > 0:
            raise ValueError(f"max_leaves={self.max_leaves} is supported with "
                             "grow_policy='lossguide' only; use grow_policy='lossguide' or "
                             "limit depthwise trees with max_depth.")
        number("min_child_weight", 0)
        number("reg_lambda", 0)
        number("reg_alpha", 0)
        number("gamma", 0)
        if self.max_delta_step is not None:
            number("max_delta_step", 0)
        number("scale_pos_weight", 0, low_open=True)
        number("max_bin", 2, MAX_BIN, integer=True,
               why=": bin codes are stored as uint8 (xgboost's wider codes are not supported)")
        number("verbosity", 0, integer=True)
        for name in ("subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode"):
            number(name, 0, 1, low_open=True)
        if not (isinstance(self.missing, numbers.Real) and not isinstance(self.missing, bool)
                and np.isnan(self.missing)):
            raise ValueError(f"missing={self.missing!r} is not supported: NaN is the missing value "
                             "(xgboost's default); replace those entries by np.nan first, e.g. "
                             "X = np.where(X == value, np.nan, X).")
        if self.booster not in (None, "gbtree"):
            raise ValueError(f"booster={self.booster!r} is not supported; trees are 'gbtree' "
                             "(or None), as xgboost's default.")
        if self.device is not None and str(self.device).split(":")[0] != "cpu":
            raise ValueError(f"device={self.device!r} is not supported: training and prediction "
                             "run on the CPU kernels; use device='cpu' (or None).")
        number("max_cat_to_onehot", 1, integer=True)
        number("max_cat_threshold", 1, integer=True)
        if self._resolved("tree_method") not in ("hist", "auto"):
            raise ValueError(f"tree_method={self.tree_method!r} is not supported; use 'hist'.")
        for name in ("use_quantized_grad", "stochastic_rounding", "quant_train_renew_leaf"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        number("num_grad_quant_bins", 2, QUANT_MAX_BINS, integer=True,
               why=" (levels of the quantized gradients; LightGBM's default is 4)")

    def _check_objective(self, objective):
        if objective not in self._objectives:
            raise ValueError(f"objective={objective!r} is not supported by "
                             f"{type(self).__name__}; use one of {self._objectives}.")

    def _make_loss(self, objective, n_groups=1):
        """The objective object of the name ``objective``, with this estimator's parameters."""
        return make_objective(objective, n_groups, max_delta_step=self.max_delta_step,
                              tweedie_variance_power=self.tweedie_variance_power,
                              huber_slope=self.huber_slope, quantile_alpha=self.quantile_alpha)

    def _train_params(self, loss=None):
        f32 = lambda v: float(np.float32(v))  # xgboost stores its parameters as float32
        max_delta_step = self.max_delta_step
        if max_delta_step is None:  # xgboost's default: 0.7 for count:poisson, else 0
            max_delta_step = getattr(loss, "max_delta_step", 0.0)
        return np.array([f32(self._resolved("reg_lambda")), f32(self._resolved("reg_alpha")),
                         f32(self._resolved("min_child_weight")),
                         f32(max_delta_step)], dtype=np.float64)

    # --------------------------------------------------------------------- fit
    def _prepare_evals(self, eval_set, loss, encode_y, sample_weight_eval_set=None,
                       base_margin_eval_set=None):
        """Validated eval sets (with their weights and base margins), metric names."""
        if self.early_stopping_rounds is not None:
            if isinstance(self.early_stopping_rounds, bool) or not isinstance(
                    self.early_stopping_rounds, numbers.Integral) or self.early_stopping_rounds < 1:
                raise ValueError(f"early_stopping_rounds={self.early_stopping_rounds!r} must be a "
                                 "positive int or None.")
            if not eval_set:
                raise ValueError("early_stopping_rounds needs at least one eval_set in fit().")
        metrics = self.eval_metric if self.eval_metric is not None else loss.default_metric
        if callable(metrics):  # as xgboost: the objective's metric, then the callable
            metrics = [loss.default_metric, metrics]
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        metrics = [get_metric(metric) for metric in metrics]
        slope, alpha = getattr(loss, "slope", None), getattr(loss, "alpha", None)
        bound = {}  # "mphe" and "quantile" with the objective's huber_slope / quantile_alpha
        if slope is not None:
            bound["mphe"] = lambda y, p, w, f=METRICS["mphe"][0]: f(y, p, w, slope)
        if alpha is not None:
            bound["quantile"] = quantile_metric(alpha)
        metrics = [(name, bound.get(name, function), maximize)
                   for function, maximize, name in metrics]
        evals = []
        for i, pair in enumerate(eval_set or []):
            if len(pair) != 2:
                raise ValueError("eval_set must be a list of (X, y) pairs.")
            X_eval = check_array(self._encode_categorical(_series_as_frame(pair[0])),
                                 dtype=np.float32, order="C",
                                 accept_sparse=SPARSE_FORMATS, ensure_all_finite="allow-nan")
            if sp.issparse(X_eval):
                X_eval = canonical_csr(X_eval)
            y_eval = np.asarray(encode_y(np.asarray(pair[1])), dtype=np.float64)
            if X_eval.shape[0] != y_eval.shape[0]:
                raise ValueError(f"eval_set[{i}]: X and y have different numbers of rows.")
            evals.append((f"validation_{i}", X_eval, y_eval))
        return evals, metrics, self._eval_extras(evals, loss, sample_weight_eval_set,
                                                 base_margin_eval_set)

    def _eval_extras(self, evals, loss, sample_weight_eval_set, base_margin_eval_set):
        """Per eval set: its weights (float64 or None) and starting margins (K, n) float32 or
        None, from xgboost's ``sample_weight_eval_set`` and ``base_margin_eval_set``."""
        extras = []
        for option, value in (("sample_weight_eval_set", sample_weight_eval_set),
                              ("base_margin_eval_set", base_margin_eval_set)):
            if value is not None and len(value) != len(evals):
                raise ValueError(f"{option} has {len(value)} entries, eval_set {len(evals)}; "
                                 "give one per eval set (None for none).")
            extras.append(list(value) if value is not None else [None] * len(evals))
        weights, margins = [], []
        for (name, X_eval, _), w, m in zip(evals, *extras):
            weights.append(None if w is None else _check_sample_weight(w, X_eval,
                                                                      dtype=np.float64))
            margins.append(_margin_rows(m, X_eval.shape[0], loss.n_groups,
                                        f"base_margin_eval_set ({name})"))
        return weights, margins

    def _prepare_training(self, X, y, sample_weight, cuts, eval_set=None, encode_y=None,
                          objective=None, n_classes=None, base_margin=None,
                          sample_weight_eval_set=None, base_margin_eval_set=None,
                          xgb_model=None, n_labels=None):
        """Everything the boosting loop needs, checked and computed once per fit.

        The objective (and its loss), eval sets and metrics, float32 targets
        and weights (``scale_pos_weight`` folded in), the bins (our quantiles
        or xgboost's ``cuts``), the base score and margin, the kernels and the
        split parameters. Returns a :class:`~.training.Training`.
        """
        self._check_params()
        objective = objective or self.objective or self._objectives[0]
        n_threads = effective_n_threads(self._resolved("n_jobs"))
        if callable(objective) and isinstance(self, RegressorMixin):
            loss = CustomObjective(objective)
        elif callable(objective) and n_classes > 2:
            loss = CustomSoftmaxObjective(objective, n_classes)
        elif callable(objective):
            loss = CustomBinaryObjective(objective)
        else:
            self._check_objective(objective)
            loss = self._make_loss(objective, n_classes)
        if n_labels is not None:  # y (n, n_labels) of 0/1: one logistic output per label
            loss = MultiLabel(loss, n_labels)
        init_margin = _margin_rows(base_margin, X.shape[0], loss.n_groups, "base_margin")
        evals, metrics, (eval_weights, eval_margins) = self._prepare_evals(
            eval_set, loss, encode_y or (lambda v: v), sample_weight_eval_set,
            base_margin_eval_set)
        if n_labels is not None:  # metrics over every (row, label) entry
            metrics = [(name, per_entry(function), maximize)
                       for name, function, maximize in metrics]
        for name, X_eval, _ in evals:
            if X_eval.shape[1] != X.shape[1]:
                raise ValueError(f"{name} has {X_eval.shape[1]} features, X has {X.shape[1]}.")
        y32 = np.ascontiguousarray(y, dtype=np.float32)
        if hasattr(loss, "check_target"):
            loss.check_target(y32)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
            if np.any(weights < 0):
                raise ValueError("sample_weight must be non-negative.")
            weights = np.ascontiguousarray(weights, dtype=np.float32)
        binning_weights = weights
        scale_pos_weight = float(np.float32(self._resolved("scale_pos_weight")))
        if objective == "binary:logistic" and scale_pos_weight != 1.0:
            # xgboost multiplies the positive rows' weights (gradients and hessians).
            weights = (np.ones(y32.shape[0], dtype=np.float32) if weights is None else weights)
            weights = np.where(y32 == 1, weights * np.float32(scale_pos_weight),
                               weights).astype(np.float32)

        categorical = self._categorical_mask(X.shape[1])
        binner = BinMapper(self._resolved("max_bin"), random_state=self._resolved("random_state"),
                           backend=self.backend,
                           n_threads=n_threads, categorical=categorical)
        if cuts is None:
            binner.fit(X, binning_weights)
        else:
            cut_ptr, cut_values = cuts
            if len(cut_ptr) != X.shape[1] + 1:
                raise ValueError(f"cuts has {len(cut_ptr) - 1} features, X has {X.shape[1]}.")
            binner.set_xgboost_cuts(cut_ptr, cut_values)
        sparse = None
        if use_sparse_path(X, self._resolved("subsample"), categorical):
            # Trees grown from the stored entries only (.sparse); no dense table of codes.
            sparse = SparseTable(binner.transform_sparse(X), binner.n_bins_, self.backend,
                                 n_threads)
            binned = sparse.shape_only
        else:
            binned = binner.transform(X)

        if self.base_score is None and weights is not binning_weights:
            base_score = loss.newton_base_score(y32.astype(np.float64), weights)
        elif self.base_score is None:
            base_score = loss.base_score(y32, weights)
        else:
            base_score = float(self.base_score)
        base_margin = np.broadcast_to(loss.score_to_margin(base_score),
                                      (loss.n_groups,)).astype(np.float32)
        forest = None
        if xgb_model is not None:
            base_score, base_margin, init_margin, eval_margins, forest = self._continuation(
                self._previous_model(xgb_model), X, init_margin, evals, eval_margins,
                loss.n_groups)
        constraints = parse_constraints(self, X.shape[1], getattr(self, "feature_names_in_", None))
        quantizer = self._quantizer(loss, X.shape[0], sparse, categorical, constraints, n_threads)
        return Training(
            loss=loss, y=y32, weights=weights, binner=binner, binned=binned,
            # Feature-major copy for the partitions (one column is read per split).
            binned_columns=binned if sparse is not None else np.asfortranarray(binned), sparse=sparse,
            has_missing=bool(
                sparse_has_missing(X) if sp.issparse(X) else np.isnan(X).any()),
            base_score=base_score, base_margin=base_margin,
            kernels={name: resolve_kernel(name, self.backend)[0] for name in KERNELS},
            params=self._train_params(loss), n_threads=n_threads, evals=evals, metrics=metrics,
            init_margin=init_margin,
            eval_weights=eval_weights, eval_margins=eval_margins, forest=forest,
            constraints=constraints,
            categorical=None if not categorical.any() else CategoricalSplits(
                categorical, self._resolved("max_cat_to_onehot"),
                self._resolved("max_cat_threshold"), self.backend), quantizer=quantizer)

    def _quantizer(self, loss, n_rows, sparse, categorical, constraints, n_threads):
        """The fit's :class:`~.quantized.GradientQuantizer` with ``use_quantized_grad``, else
        None; a ValueError where the quantized mode is not implemented."""
        if not self.use_quantized_grad:
            return None
        unsupported = [
            (loss.n_groups > 1, "more than one output (multiclass or multi-label)"),
            (self._resolved("grow_policy") != "depthwise", "grow_policy='lossguide'"),
            (sparse is not None, "sparse input grown from its stored entries (10 % density "
                                 "or less)"),
            (categorical.any(), "categorical features"),
            (constraints is not None and constraints.monotone is not None,
             "monotone_constraints"),
        ]
        for refused, what in unsupported:
            if refused:
                raise ValueError(f"use_quantized_grad=True is not supported with {what}; use "
                                 "use_quantized_grad=False (exact gradients).")
        return GradientQuantizer(n_rows, self.num_grad_quant_bins, self.stochastic_rounding,
                                 self.quant_train_renew_leaf, self._resolved("random_state"),
                                 self.backend, n_threads)

    def _encode_categorical(self, X, reset=False):
        """A pandas frame's category columns as codes (:func:`.categorical.encode_frame`).

        ``reset`` (fit): remember the categories; else re-code by value to them.
        """
        if reset:
            X, self._categories = encode_frame(X, self.enable_categorical)
            return X
        return encode_frame(X, True, getattr(self, "_categories", {}))[0]

    def _categorical_mask(self, n_features):
        """The categorical features: pandas category columns and ``feature_types`` "c"."""
        mask = check_feature_types(self.feature_types, n_features)
        mask[list(getattr(self, "_categories", {}))] = True
        if mask.any() and not self.enable_categorical:
            raise ValueError("feature_types marks categorical features; pass "
                             "enable_categorical=True to use them (as xgboost).")
        if mask.any() and getattr(self, "monotone_constraints", None) is not None:
            from .constraints import parse_monotone

            monotone = parse_monotone(self.monotone_constraints, n_features,
                                      getattr(self, "feature_names_in_", None))
            if monotone is not None and np.any(monotone != 0):
                raise ValueError("monotone_constraints together with categorical features are "
                                 "not supported; drop the constraints or encode the categories "
                                 "as numbers.")
        return mask

    def _previous_model(self, xgb_model):
        """The fitted model ``fit(..., xgb_model=)`` continues, as one of our estimators.

        Our fitted estimator or its ``get_booster()``; a model file (ours, or
        xgboost's JSON / UBJSON); an ``xgboost.Booster`` or xgboost estimator
        (read through its JSON).
        """
        if isinstance(xgb_model, Booster):
            xgb_model = xgb_model._model
        if isinstance(xgb_model, _XGBModel):
            check_is_fitted(xgb_model, "_forest")
            return xgb_model
        fresh = type(self)(backend=self.backend, n_jobs=self.n_jobs)
        if isinstance(xgb_model, (str, os.PathLike)):
            return fresh.load_model(xgb_model)
        if hasattr(xgb_model, "get_booster"):  # an xgboost estimator
            xgb_model = xgb_model.get_booster()
        if hasattr(xgb_model, "save_raw"):  # an xgboost.Booster
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "model.json")
                with open(path, "wb") as handle:
                    handle.write(bytes(xgb_model.save_raw(raw_format="json")))
                return fresh.load_model(path)
        raise TypeError(f"xgb_model={type(xgb_model).__name__} is not a fitted model: pass a "
                        "fitted XGBRegressor / XGBClassifier, its get_booster(), a model file "
                        "path, or an xgboost Booster.")

    def _continuation(self, previous, X, init_margin, evals, eval_margins, n_groups):
        """What training continued from ``previous`` starts from, as xgboost's ``xgb_model``.

        The previous model's base score and trees (copied; new trees are
        appended), and the training and eval rows' margins: the previous
        model's predictions (every round), from ``base_margin`` where given.
        Returns ``(base_score, base_margin, init_margin, eval_margins, forest)``.
        """
        if previous.n_features_in_ != X.shape[1]:
            raise ValueError(f"xgb_model has {previous.n_features_in_} features, X has "
                             f"{X.shape[1]}.")
        if previous._forest.n_groups != n_groups:
            raise ValueError(f"xgb_model has {previous._forest.n_groups} output groups (trees "
                             f"per round), this fit {n_groups}: continue with the same "
                             "objective and number of classes.")
        mine, theirs = (getattr(model, "_categories", {}) for model in (self, previous))
        if {k: list(v) for k, v in mine.items()} != {k: list(v) for k, v in theirs.items()}:
            raise ValueError("xgb_model was fitted with other categorical columns or categories "
                             "than X has; continue on data with the same categories.")
        n_threads = effective_n_threads(self._resolved("n_jobs"))

        def margins(rows, given):  # rows: validated (encoded float32, or CSR)
            raw = previous._forest.predict_raw(
                rows, previous._base_margin if given is None else 0.0, self.backend, n_threads)
            if given is not None:
                raw += given.T
            return np.ascontiguousarray(raw.T, dtype=np.float32)
        return (previous.base_score_, previous._base_margin.astype(np.float32),
                margins(X, init_margin),
                [margins(X_eval, given) for (_, X_eval, _), given in zip(evals, eval_margins)],
                previous._forest.copy())

    def _set_fitted(self, training, result):
        """The fitted attributes from a finished :func:`~.training.boost` run; returns self."""
        self._binner = training.binner
        self._forest = result.forest
        self.evals_result_ = result.history
        for attribute in ("best_iteration", "best_score"):
            if attribute in self.__dict__:
                delattr(self, attribute)
        if result.best_iteration is not None:
            self.best_iteration = result.best_iteration
            self.best_score = result.best_score
        self._loss = training.loss
        self.base_score_ = training.base_score
        self._base_margin = training.base_margin.astype(np.float64)
        self.n_features_in_ = training.binned.shape[1]
        return self

    def _fit(self, X, y, sample_weight, cuts, eval_set=None, verbose=True, encode_y=None,
             objective=None, n_classes=None, **options):
        """Train; ``options``: base_margin, sample_weight_eval_set, base_margin_eval_set,
        xgb_model."""
        training = self._prepare_training(X, y, sample_weight, cuts, eval_set, encode_y,
                                          objective, n_classes, **options)
        return self._set_fitted(training, boost(self, training, verbose))

    # ------------------------------------------------------------ inspection
    @property
    def feature_importances_(self):
        """Normalised feature importances (xgboost's ``feature_importances_``).

        ``importance_type`` (default "gain"): "weight" = number of splits on the
        feature, "total_gain" = sum of their gains, "gain" = total_gain / weight,
        "total_cover" / "cover" the same with the hessian sums of the split nodes.
        """
        check_is_fitted(self, "_forest")
        kind = self.importance_type or "gain"
        kinds = ("weight", "gain", "total_gain", "cover", "total_cover")
        if kind not in kinds:
            raise ValueError(f"importance_type={kind!r} is not one of {kinds}.")
        nodes, _, _ = self._forest.arrays()
        scores, _ = feature_scores(nodes, self.n_features_in_, kind)
        total = scores.sum()
        return (scores / total if total > 0 else scores).astype(np.float32)

    def apply(self, X, iteration_range=None):
        """Leaf reached in every tree, xgboost's node ids: shape (n_samples, n_trees).

        Uses the readable NumPy traversal (leaf ids are for inspection, not speed).
        """
        from ..kernels.tree_predict_numpy import _leaves

        check_is_fitted(self, "_forest")
        X = _validated(self, X, reset=False)
        if sp.issparse(X):  # a block of densified rows at a time
            step = sparse_block_rows(X.shape[1])
            return np.concatenate([self.apply(dense_rows(X, first, first + step),
                                              iteration_range)
                                   for first in range(0, max(X.shape[0], 1), step)])
        first, last = self._tree_range(iteration_range)
        nodes, roots, _ = self._forest.arrays()
        node_cat, cat_sets = self._forest.categorical()

        def go_left_of(rows, features, current):
            x = X[rows, features]
            # A categorical split sends the categories of its set right (xgboost's Decision).
            cat = node_cat[current]
            known = (x >= 0) & (x < cat_sets.shape[1])
            code = np.where(known, x, 0).astype(np.intp)
            in_set = known & (cat_sets[np.maximum(cat, 0), code] != 0)
            return np.where(np.isnan(x), nodes["default_left"][current] != 0,
                            np.where(cat >= 0, ~in_set, x < nodes["threshold"][current]))
        leaves = [_leaves(go_left_of, nodes["feature"], nodes["left"], nodes["right"], root,
                          X.shape[0]) - root for root in roots[first:last]]
        return np.stack(leaves, axis=1).astype(np.int32) if leaves else np.empty((X.shape[0], 0))

    def get_booster(self):
        """xgboost's ``Booster`` methods on the fitted trees (:class:`~.booster.Booster`).

        ``predict`` (NumPy or pandas data), ``get_dump``, ``get_score``,
        ``trees_to_dataframe``, ``save_model`` (xgboost's JSON), as
        ``xgboost.Booster`` gives them on the same trees.
        """
        check_is_fitted(self, "_forest")
        return Booster(self)

    def get_dump(self, with_stats=False):
        """The trees as text, one string per tree, in xgboost's ``get_dump()`` format.

        ``0:[f8<-0.00330083817] yes=1,no=2,missing=2`` for a split (rows with
        ``x < threshold`` go to ``yes``), ``3:leaf=-16.6496964`` for a leaf,
        one tab of indentation per level; ``with_stats`` adds ``gain`` and
        ``cover`` (hessian sum).
        """
        check_is_fitted(self, "_forest")
        nodes, roots, _ = self._forest.arrays()
        return [text_tree(nodes, int(root), with_stats, lambda j: f"f{j}",
                          self._forest.node_categories) for root in roots]

    # ------------------------------------------------------------- model I/O
    def save_model(self, path, *, format="xgboost"):
        """Write the fitted model to ``path`` as JSON.

        Parameters
        ----------
        path : str or path-like
        format : {"xgboost", "fastscratch"}, default="xgboost"
            "xgboost" writes xgboost's own JSON model schema
            (:func:`fastscratch.boosting._xgboost_json.to_xgboost_json`), as
            xgboost's ``save_model(".json")``: ``xgboost.Booster(model_file=path)``
            and ``xgboost.XGBClassifier().load_model(path)`` load it and predict
            the same to float32 rounding, and :meth:`load_model` reads it back
            here. Class labels other than ``0..K-1`` are kept in the file's
            ``scikit_learn`` attribute (xgboost ignores them); as with xgboost's
            files, the training parameters and the bin cuts are not kept, and a
            custom objective is written as xgboost's default objective of the
            task. "fastscratch" (:mod:`fastscratch.boosting.model_io`) keeps
            everything (parameters, class labels, bin cuts), so a loaded model
            is this one bit for bit.
        """
        check_is_fitted(self, "_forest")
        if format == "xgboost":
            from ._xgboost_json import to_xgboost_json

            if str(path).endswith(".ubj"):
                raise ValueError("save_model writes xgboost's JSON schema only; give the file a "
                                 ".json name (UBJSON files are read by load_model, not written).")
            document = to_xgboost_json(self)
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(document, handle)
        elif format == "fastscratch":
            from .model_io import save_model

            save_model(self, path)
        else:
            raise ValueError(f"format={format!r} is not 'xgboost' or 'fastscratch'.")

    def load_model(self, path):
        """Load a model into this estimator; returns self.

        Reads files written by :meth:`save_model` in either format, and
        xgboost's own model files (JSON or UBJSON, as ``Booster.save_model``
        writes them), which then predict with our kernels and explain with our
        TreeSHAP.
        """
        from ._xgboost_json import from_xgboost_json
        from .model_io import is_fastscratch_document, load_model

        with open(path, "rb") as handle:
            data = handle.read()
        if is_fastscratch_document(data):
            model = load_model(self, path)
        else:
            model = from_xgboost_json(path, backend=self.backend, n_jobs=self.n_jobs, into=self)
        loss = model._loss
        if loss.n_groups != model._forest.n_groups and loss.name == "binary:logistic":
            model._loss = MultiLabel(loss, model._forest.n_groups)  # a multi-label model
        return model

    def evals_result(self):
        """Metric history per eval set: ``{"validation_0": {"rmse": [...]}, ...}``."""
        check_is_fitted(self, "_forest")
        if not self.evals_result_:
            raise ValueError("No evaluation result: pass eval_set to fit().")
        return self.evals_result_

    def _tree_range(self, iteration_range):
        """First and last tree (exclusive) of the rounds ``iteration_range``.

        None or (0, 0): every round, or up to the best iteration after early
        stopping, as xgboost.
        """
        check_is_fitted(self, "_forest")
        K = self._forest.n_groups  # trees per round
        n_rounds = self._forest.n_trees // K
        if iteration_range is None or tuple(iteration_range) == (0, 0):
            best = getattr(self, "best_iteration", None)
            iteration_range = (0, best + 1) if best is not None else (0, n_rounds)
        start, stop = (int(v) for v in iteration_range)
        if not 0 <= start <= stop <= n_rounds:
            raise ValueError(f"iteration_range={iteration_range!r} is outside the "
                             f"{n_rounds} fitted rounds.")
        return start * K, stop * K

    def _raw_predict(self, X, iteration_range=None, base_margin=None):
        """Margins (n, K) float64: the base margin (``base_margin`` if given, as xgboost's,
        else the fitted base score's) plus the trees of ``iteration_range``."""
        check_is_fitted(self, "_forest")
        if base_margin is not None:
            X = _validated(self, X, reset=False, dtype=[np.float32, np.float64])
            margin = _margin_rows(base_margin, X.shape[0], self._forest.n_groups, "base_margin")
            saved = self._base_margin
            try:  # the trees from 0, then the given margins added
                self._base_margin = np.zeros_like(saved)
                raw = self._raw_predict(X, iteration_range)
            finally:
                self._base_margin = saved
            return raw + margin.T
        X = _validated(self, X, reset=False, dtype=[np.float32, np.float64])
        n_threads = effective_n_threads(self._resolved("n_jobs"))
        trees = self._tree_range(iteration_range)
        K = self._forest.n_groups
        if sp.issparse(X) or X.dtype == np.float32 and X.flags.c_contiguous:
            # Nothing to cast: one kernel call (one parallel region, not one per block).
            return self._forest.predict_raw(X, self._base_margin, self.backend, n_threads, trees)
        raw = np.empty((X.shape[0], K), dtype=np.float64)
        for first in range(0, X.shape[0], PREDICT_BLOCK_ROWS):
            block = np.ascontiguousarray(X[first:first + PREDICT_BLOCK_ROWS], dtype=np.float32)
            _check_float32_underflow(X[first:first + PREDICT_BLOCK_ROWS], block, row_offset=first)
            raw[first:first + block.shape[0]] = self._forest.predict_raw(
                block, self._base_margin, self.backend, n_threads, trees)
        return raw

    def _predict_other(self, X, iteration_range, output_margin, pred_leaf, pred_contribs,
                       pred_interactions, base_margin=None):
        """What ``predict`` returns for xgboost's ``Booster.predict`` options, or None.

        ``output_margin``: the raw margin, ``(n,)`` or ``(n, n_classes)``;
        ``pred_leaf``: :meth:`apply`; ``pred_contribs`` / ``pred_interactions``:
        exact TreeSHAP values (:func:`fastscratch.boosting._treeshap.tree_contributions`)
        in xgboost's layout.
        """
        chosen = [name for name, flag in (("output_margin", output_margin), ("pred_leaf", pred_leaf),
                                          ("pred_contribs", pred_contribs),
                                          ("pred_interactions", pred_interactions)) if flag]
        if len(chosen) > 1:
            raise ValueError(f"{' and '.join(chosen)} are exclusive; ask for one at a time.")
        if not chosen:
            return None
        if pred_leaf:
            return self.apply(X, iteration_range)
        if pred_contribs or pred_interactions:
            from ._treeshap import tree_contributions

            values = tree_contributions(self, X, interactions=pred_interactions,
                                        iteration_range=iteration_range)
            if base_margin is not None:  # the bias term holds the given margins, as xgboost's
                margin = _margin_rows(base_margin, values.shape[0], self._forest.n_groups,
                                      "base_margin").T - self._base_margin
                bias = (Ellipsis, -1, -1) if pred_interactions else (Ellipsis, -1)
                values[bias] += margin[:, 0] if values.ndim == 2 + pred_interactions else margin
            return values
        raw = self._raw_predict(X, iteration_range, base_margin)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True  # CSR / CSC, absent entries missing (as xgboost)
        return tags


class XGBRegressor(RegressorMixin, _XGBModel):
    __doc__ = r"""Gradient boosted trees for regression, xgboost's ``hist`` algorithm.

    Drop-in for ``xgboost.XGBRegressor`` (same parameter names and defaults).

    Parameters
    ----------
{_TREE_PARAMS}    base_score : float or None, default=None
        Initial prediction; None estimates it as xgboost 3 does (mean of y).
    objective : str, callable or None, default="reg:squarederror"
        "reg:squarederror" (also None), "reg:logistic" (the logistic loss for
        targets in [0, 1]; predicts probabilities), "count:poisson" (y >= 0),
        "reg:gamma" (y > 0), "reg:tweedie" (y >= 0; ``tweedie_variance_power``):
        log links, predicting :math:`e^F`; "reg:pseudohubererror"
        (``huber_slope``); "reg:absoluteerror" and "reg:quantileerror"
        (``quantile_alpha``), whose leaves are re-set to the quantile of their
        rows' residuals after growth, as xgboost. See
        :mod:`fastscratch.boosting.loss`.
        A callable ``objective(y_true, margin) -> (gradient, hessian)`` is a
        custom objective, as in xgboost (base score 0.5, margins predicted).
{_RUN_PARAMS}    verbosity : int or None, default=None
        > 0 shows a progress bar with the training RMSE.
{_EXTRA_PARAMS}
    Attributes
    ----------
    n_features_in_ : int
    base_score_ : float
        The base score used (estimated or given).
    {_NOTES}
    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from fastscratch import XGBRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = XGBRegressor(n_estimators=20, max_depth=3).fit(X, y)
    >>> model.predict(X[:2]).shape
    (2,)
    """
    for _key, _text in _DOC_PARTS.items():
        __doc__ = __doc__.replace("{" + _key + "}", _text)
    del _key, _text
    _objectives = ("reg:squarederror", "reg:logistic", "count:poisson", "reg:gamma",
                   "reg:tweedie", "reg:pseudohubererror", "reg:absoluteerror",
                   "reg:quantileerror")

    def __init__(self, *, objective="reg:squarederror", **kwargs):
        super().__init__(objective=objective, **kwargs)

    def fit(self, X, y, sample_weight=None, eval_set=None, verbose=True, cuts=None, *,
            base_margin=None, sample_weight_eval_set=None, base_margin_eval_set=None,
            xgb_model=None):
        """Fit the trees.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,) or None
        eval_set : list of (X, y) pairs or None
            Evaluated after every round with ``eval_metric`` (history in
            :meth:`evals_result`); the last pair and metric drive
            ``early_stopping_rounds``.
        verbose : bool or int, default=True
            Print the eval metrics every round (or every ``verbose`` rounds).
        cuts : tuple (cut_ptr, cut_values) or None
            Bin cut points in xgboost's format, e.g.
            ``xgboost.QuantileDMatrix(X, max_bin=...).get_quantile_cut()``;
            None computes them from X.
        base_margin : array-like of shape (n_samples,) or (n_samples, n_classes), or None
            Margins the rows start from instead of the base score's, as
            xgboost's (the base score is still estimated from y and used when
            ``predict`` gets no ``base_margin``).
        sample_weight_eval_set, base_margin_eval_set : list or None
            One entry (array or None) per ``eval_set`` pair: its rows' weights
            in the metrics, its starting margins.
        xgb_model : fitted estimator, Booster, path or None
            Continue training this model, as xgboost: its trees are kept (a
            copy) and ``n_estimators`` rounds are added, starting from its
            predictions with its base score. Our fitted estimator or its
            ``get_booster()``, a model file (ours or xgboost's JSON / UBJSON),
            or an ``xgboost.Booster``.

        Returns
        -------
        self
        """
        self._check_params()  # before X is converted (a float32 copy of it)
        X, y = _validated(self, X, y, reset=True, y_numeric=True)
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity; remove or impute those targets.")
        if np.any(np.abs(y) > np.finfo(np.float32).max):
            raise ValueError("y has values too large for float32.")
        if self.objective == "reg:logistic" and (np.any(y < 0) or np.any(y > 1)):
            raise ValueError("objective='reg:logistic' needs targets y in [0, 1].")
        return self._fit(X, y, sample_weight, cuts, eval_set, verbose, base_margin=base_margin,
                         sample_weight_eval_set=sample_weight_eval_set,
                         base_margin_eval_set=base_margin_eval_set, xgb_model=xgb_model)

    @_predict_doc
    def predict(self, X, iteration_range=None, *, output_margin=False, pred_leaf=False,
                pred_contribs=False, pred_interactions=False, base_margin=None):
        """Predicted values, shape (n_samples,); trees of rounds ``iteration_range`` only.

{_PREDICT_PARAMS}        """
        check_is_fitted(self, "_forest")
        other = self._predict_other(X, iteration_range, output_margin, pred_leaf, pred_contribs,
                                    pred_interactions, base_margin)
        if other is not None:
            return other
        return self._loss.transform(self._raw_predict(X, iteration_range, base_margin)[:, 0])


class XGBClassifier(ClassifierMixin, _XGBModel):
    __doc__ = r"""Gradient boosted trees for binary classification, xgboost's ``hist`` algorithm.

    Drop-in for ``xgboost.XGBClassifier`` (same parameter names and defaults).
    Labels may be any values; ``classes_`` holds them sorted (with two classes,
    the second one is the positive class).

    Parameters
    ----------
{_TREE_PARAMS}    base_score : float or None, default=None
        Initial probability; None uses the positive rate, as xgboost 3.
    objective : str, callable or None, default="binary:logistic"
        "binary:logistic" (also None) for two classes; with more, any named
        objective but "multi:softmax" trains "multi:softprob" (one tree per
        class per round, softmax probabilities), as xgboost. "binary:hinge"
        (two classes; ``predict_proba`` is 0 or 1, as xgboost), "multi:softmax"
        (``multi:softprob``'s trees with base margins 0; ``predict_proba`` the
        softmax of the margins, as xgboost). A callable
        ``objective(y_true, margin) -> (gradient, hessian)`` is a custom
        objective, as in xgboost: with two classes, base score 0.5 (margin 0),
        probabilities the sigmoid of the margin; with more, ``margin`` and the
        returned arrays are (n_samples, n_classes), every class's base margin
        is 0.5 and probabilities are the softmax of the margins.
{_RUN_PARAMS}    verbosity : int or None, default=None
        > 0 shows a progress bar with the training log loss.
{_EXTRA_PARAMS}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_classes_ : int
    n_features_in_ : int
    base_score_ : float
    {_NOTES}
    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from fastscratch import XGBClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
    >>> model.predict_proba(X[:2]).shape
    (2, 2)
    """
    for _key, _text in _DOC_PARTS.items():
        __doc__ = __doc__.replace("{" + _key + "}", _text)
    del _key, _text
    _objectives = ("binary:logistic", "multi:softprob", "multi:softmax", "binary:hinge")

    def __init__(self, *, objective="binary:logistic", **kwargs):
        super().__init__(objective=objective, **kwargs)

    def _classifier_objective(self, n_classes):
        """The objective trained for ``n_classes`` classes, as xgboost's ``XGBClassifier``:
        with more than two, any named objective but "multi:softmax" becomes
        "multi:softprob" (None: "binary:logistic" or "multi:softprob")."""
        objective = self.objective
        if objective is None:
            objective = "binary:logistic"
        if n_classes > 2 and not callable(objective) and objective != "multi:softmax":
            self._check_objective(objective)
            objective = "multi:softprob"
        return objective

    def fit(self, X, y, sample_weight=None, eval_set=None, verbose=True, cuts=None, *,
            base_margin=None, sample_weight_eval_set=None, base_margin_eval_set=None,
            xgb_model=None):
        """Fit the trees; see :meth:`XGBRegressor.fit`."""
        self._check_params()  # before X is converted (a float32 copy of it)
        X, y = _validated(self, X, y, reset=True, multi_output=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        fit_options = dict(base_margin=base_margin, sample_weight_eval_set=sample_weight_eval_set,
                           base_margin_eval_set=base_margin_eval_set, xgb_model=xgb_model)
        if y.ndim == 2:
            return self._fit_multilabel(X, y, sample_weight, cuts, eval_set, verbose,
                                        fit_options)
        check_label_kinds(y)
        target_type = type_of_target(y, input_name="y", raise_unknown=True)
        if target_type not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: y is {target_type!r}; XGBClassifier needs "
                             "class labels (use XGBRegressor for a continuous target).")
        encoder = LabelEncoder().fit(y)
        n_classes = encoder.classes_.shape[0]
        if n_classes < 2:
            raise ValueError(f"y has one class ({encoder.classes_[0]!r}); a classifier needs "
                             "at least two.")
        objective = self._classifier_objective(n_classes)
        self.classes_ = encoder.classes_
        self.n_classes_ = n_classes
        return self._fit(X, encoder.transform(y).astype(np.float32), sample_weight, cuts,
                         eval_set, verbose, encoder.transform, objective, n_classes,
                         **fit_options)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True  # y (n, n_labels) of 0/1, as xgboost
        return tags

    def _fit_multilabel(self, X, y, sample_weight, cuts, eval_set, verbose, fit_options):
        """Multi-label fit (:mod:`~fastscratch.boosting.multilabel`): y (n, n_labels) of 0/1,
        one tree per label per round, as xgboost's ``multi_strategy="one_output_per_tree"``."""
        target_type = type_of_target(y, input_name="y")
        if target_type != "multilabel-indicator":
            raise ValueError(f"a 2-D y must be a multi-label indicator matrix (0/1, one column "
                             f"per label); this y is {target_type!r}. Pass class labels as 1-D.")
        objective = "binary:logistic" if self.objective is None else self.objective
        if objective != "binary:logistic":
            raise ValueError(f"objective={objective!r} is not supported with a multi-label y "
                             "(2-D); multi-label trains 'binary:logistic' per label, as xgboost.")
        if float(self._resolved("scale_pos_weight")) != 1.0:
            raise ValueError("scale_pos_weight is not supported with a multi-label y (2-D); "
                             "leave it at 1 or weight the rows with sample_weight.")
        self.classes_ = np.array([0, 1])
        self.n_classes_ = 2
        return self._fit(X, y.astype(np.float32), sample_weight, cuts, eval_set, verbose,
                         lambda labels: np.asarray(labels, dtype=np.float64), objective, 2,
                         n_labels=y.shape[1], **fit_options)

    def _probabilities(self, raw):
        if raw.shape[1] > 1:
            return self._loss.transform(raw)
        positive = self._loss.transform(raw[:, 0])
        return np.column_stack([1.0 - positive, positive])

    def predict_proba(self, X, iteration_range=None, *, base_margin=None):
        """Class probabilities, shape (n_samples, n_classes) (``base_margin``: as
        :meth:`predict`)."""
        check_is_fitted(self, "_forest")
        return self._probabilities(self._raw_predict(X, iteration_range, base_margin))

    @_predict_doc
    def predict(self, X, iteration_range=None, *, output_margin=False, pred_leaf=False,
                pred_contribs=False, pred_interactions=False, base_margin=None):
        """Predicted class labels (the class of highest probability, the first on ties).

{_PREDICT_PARAMS}        """
        check_is_fitted(self, "_forest")
        other = self._predict_other(X, iteration_range, output_margin, pred_leaf, pred_contribs,
                                    pred_interactions, base_margin)
        if other is not None:
            return other
        raw = self._raw_predict(X, iteration_range, base_margin)
        if isinstance(self._loss, MultiLabel):  # a 0/1 column per label, as xgboost
            return (self._probabilities(raw) > 0.5).astype(self.classes_.dtype)
        labels = np.empty(raw.shape[0], dtype=self.classes_.dtype)
        for first in range(0, raw.shape[0], PREDICT_BLOCK_ROWS):  # no n x classes matrix
            block = raw[first:first + PREDICT_BLOCK_ROWS]
            labels[first:first + block.shape[0]] = self.classes_[np.argmax(self._probabilities(block), axis=1)]
        return labels

