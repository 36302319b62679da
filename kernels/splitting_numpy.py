r"""Best split of a tree node from its gradient histogram: the readable reference.

XGBoost's second-order objective. With :math:`G, H` the gradient and hessian
sums of a node, :math:`\lambda` = ``reg_lambda``, :math:`\alpha` = ``reg_alpha``
and :math:`T_\alpha(G) = \operatorname{sign}(G)\max(|G| - \alpha, 0)` the L1
soft threshold, the optimal leaf weight and the loss it removes are

.. math::

    w^* = -\frac{T_\alpha(G)}{H + \lambda}, \qquad
    \text{score}(G, H) = \frac{T_\alpha(G)^2}{H + \lambda}

(with ``max_delta_step`` :math:`\delta > 0`, :math:`w^*` is clipped to
:math:`[-\delta, \delta]` and the score is
:math:`-(2 G w^* + (H + \lambda) {w^*}^2)`). Splitting a node into left and
right children gains

.. math::

    \text{gain} = \text{score}(G_L, H_L) + \text{score}(G_R, H_R) - \text{score}(G, H)

(the 1/2 and the :math:`\gamma` of the textbook form are applied by the grower:
xgboost compares this gain with ``gamma``). A candidate is valid when both
children have a hessian sum of at least ``min_child_weight``.

For feature ``f`` with ``n_bins[f]`` bins, the candidates are "bins
``<= b`` go left" for every ``b``: a prefix sum over the histogram (forward
scan; rows with a missing value, kept in slot ``n_bins[f]``, go right). When
the node has rows with missing values in ``f``, a backward scan (suffix sums)
tries the same thresholds with the missing rows sent left; it replaces the
forward winner only if strictly better, as in xgboost.

Rounding follows xgboost's CPU ``hist`` evaluator: children scores and the
parent score are rounded to float32 and the gain to float32, so that equal
trees come out of equal data. Ties go to the smaller bin (forward scan), then
to the smaller feature (the caller's ``argmax``).

``params`` is the float64 array ``[reg_lambda, reg_alpha, min_child_weight,
max_delta_step]`` (each rounded to float32 first, as xgboost stores them).
"""

import numpy as np

# Fastest first, as measured by benchmarks/test_bench_boosting.py (2 cores).
AUTO_BACKEND_ORDER = {
    "find_best_splits": ("numba", "cython", "numpy"),
}

REG_LAMBDA, REG_ALPHA, MIN_CHILD_WEIGHT, MAX_DELTA_STEP = range(4)


def threshold_l1(g, alpha):
    """L1 soft threshold :math:`T_\\alpha(g)` (elementwise)."""
    return np.where(g > alpha, g - alpha, np.where(g < -alpha, g + alpha, 0.0))


def leaf_weight(g, h, params):
    """xgboost's ``CalcWeight``: :math:`w^*`, 0 when ``h < min_child_weight`` or ``h <= 0``."""
    g = np.asarray(g, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    valid = (h >= params[MIN_CHILD_WEIGHT]) & (h > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = -threshold_l1(g, params[REG_ALPHA]) / (h + params[REG_LAMBDA])
    delta = params[MAX_DELTA_STEP]
    if delta != 0.0:
        w = np.where(np.abs(w) > delta, np.copysign(delta, w), w)
    return np.where(valid, w, 0.0).astype(np.float32)


def node_score(g, h, params):
    """xgboost's ``CalcGainGivenWeight`` (float32): the loss reduction of a leaf."""
    g = np.asarray(g, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if params[MAX_DELTA_STEP] == 0.0:
            t = threshold_l1(g, params[REG_ALPHA])
            score = t * t / (h + params[REG_LAMBDA])
        else:
            w = leaf_weight(g, h, params).astype(np.float64)
            score = -(2.0 * g * w + (h + params[REG_LAMBDA]) * (w * w))
    return np.where(h > 0.0, score, 0.0).astype(np.float32)


def _candidate_gains(left_g, left_h, right_g, right_h, parent_score, params):
    gains = (node_score(left_g, left_h, params).astype(np.float64)
             + node_score(right_g, right_h, params).astype(np.float64)
             - np.float64(parent_score)).astype(np.float32).astype(np.float64)
    min_weight = params[MIN_CHILD_WEIGHT]
    valid = (left_h >= min_weight) & (right_h >= min_weight)
    return np.where(valid, gains, -np.inf)


def find_best_splits(hist, n_bins, sum_gradient, sum_hessian, parent_score, params,
                     allowed_features, out_gain, out_bin, out_default_left, out_left_sums,
                     n_threads):
    """Best split of one node along each feature.

    Parameters
    ----------
    hist : ndarray of shape (d, n_slots, 2), float64
        The node's histogram (:mod:`histogram_numpy`); slot ``n_bins[f]`` of
        feature ``f`` holds its missing values.
    n_bins : ndarray of shape (d,), intp
        Number of bins of each feature (``n_bins[f] < n_slots``).
    sum_gradient, sum_hessian : float
        The node's gradient and hessian sums.
    parent_score : float
        ``node_score(sum_gradient, sum_hessian)`` (float32).
    params : ndarray of shape (4,), float64
        ``[reg_lambda, reg_alpha, min_child_weight, max_delta_step]``.
    allowed_features : ndarray of shape (d,), uint8
        Features with 0 are skipped (column sampling).
    out_gain : ndarray of shape (d,), float64
        Written: the best gain of each feature, -inf when it has no valid split.
    out_bin : ndarray of shape (d,), intp
        Written: rows with bin ``<= out_bin[f]`` go left (-1: only the missing
        rows go left).
    out_default_left : ndarray of shape (d,), uint8
        Written: 1 if rows with a missing value go left.
    out_left_sums : ndarray of shape (d, 2), float64
        Written: gradient and hessian sums of the left child.
    n_threads : int
        Ignored.
    """
    for f in range(hist.shape[0]):
        out_gain[f] = -np.inf
        out_bin[f] = -1
        out_default_left[f] = 0
        out_left_sums[f] = 0.0
        if not allowed_features[f]:
            continue
        nb = n_bins[f]
        bins = hist[f, :nb]
        # Forward scan: bins 0..b go left, missing rows go right.
        left_g = np.cumsum(bins[:, 0])
        left_h = np.cumsum(bins[:, 1])
        right_g = sum_gradient - left_g
        right_h = sum_hessian - left_h
        gains = _candidate_gains(left_g, left_h, right_g, right_h, parent_score, params)
        b = int(np.argmax(gains))  # first maximum: ties to the smaller bin
        if gains[b] > out_gain[f]:
            out_gain[f] = gains[b]
            out_bin[f] = b
            out_left_sums[f] = left_g[b], left_h[b]
        missing = hist[f, nb]
        if missing[0] == 0.0 and missing[1] == 0.0:
            continue
        # Backward scan: bins i..nb-1 go right, missing rows go left, i = nb-1 .. 0.
        right_g = np.cumsum(bins[::-1, 0])
        right_h = np.cumsum(bins[::-1, 1])
        left_g = sum_gradient - right_g
        left_h = sum_hessian - right_h
        gains = _candidate_gains(left_g, left_h, right_g, right_h, parent_score, params)
        k = int(np.argmax(gains))
        if gains[k] > out_gain[f]:
            out_gain[f] = gains[k]
            out_bin[f] = nb - 1 - k - 1
            out_default_left[f] = 1
            out_left_sums[f] = left_g[k], left_h[k]


def _find_best_splits_naive(hist, n_bins, sum_gradient, sum_hessian, parent_score, params,
                            allowed_features, out_gain, out_bin, out_default_left,
                            out_left_sums, n_threads):
    """Loop twin of :func:`find_best_splits`: try every threshold, both directions."""
    def gain(lg, lh):
        rg, rh = sum_gradient - lg, sum_hessian - lh
        if lh < params[MIN_CHILD_WEIGHT] or rh < params[MIN_CHILD_WEIGHT]:
            return -np.inf
        total = (float(node_score(lg, lh, params)) + float(node_score(rg, rh, params))
                 - float(parent_score))
        return float(np.float32(total))

    for f in range(hist.shape[0]):
        out_gain[f], out_bin[f], out_default_left[f] = -np.inf, -1, 0
        out_left_sums[f] = 0.0
        if not allowed_features[f]:
            continue
        nb = n_bins[f]
        lg = lh = 0.0
        for b in range(nb):
            lg += hist[f, b, 0]
            lh += hist[f, b, 1]
            g = gain(lg, lh)
            if g > out_gain[f]:
                out_gain[f], out_bin[f], out_left_sums[f] = g, b, (lg, lh)
        if hist[f, nb, 0] == 0.0 and hist[f, nb, 1] == 0.0:
            continue
        rg = rh = 0.0
        for b in range(nb - 1, -1, -1):
            rg += hist[f, b, 0]
            rh += hist[f, b, 1]
            g = gain(sum_gradient - rg, sum_hessian - rh)
            if g > out_gain[f]:
                out_gain[f], out_bin[f], out_default_left[f] = g, b - 1, 1
                out_left_sums[f] = (sum_gradient - rg, sum_hessian - rh)
