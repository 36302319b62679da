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

Monotone constraints (``find_best_splits_monotone``), as xgboost's
``TreeEvaluator``: feature ``f`` has :math:`c_f \in \{-1, 0, 1\}` and each node
bounds :math:`[l, u]` on its weights. A child's weight is
:math:`\tilde w = \min(\max(w^*, l), u)` (float32) and its score the loss its
weight removes, :math:`-(2 G \tilde w + (H + \lambda) \tilde w^2)`, computed in
float32 as xgboost does for every feature once any constraint is set. A split
on :math:`f` with :math:`c_f = 1` is valid only if
:math:`\tilde w_L \le \tilde w_R` (:math:`\ge` for :math:`c_f = -1`). When a
node splits on :math:`f` with :math:`c_f \ne 0`, its children inherit its
bounds, and the midpoint :math:`m = (\tilde w_L + \tilde w_R) / 2` becomes the
left child's upper and the right child's lower bound (the reverse for
:math:`c_f = -1`), so every leaf to the right of the split is at least every
leaf to its left: the model is monotone in :math:`x_f`.
"""

import numpy as np

# Fastest first, as measured by benchmarks/test_bench_boosting.py, default size
# (fit of 200k x 28, 100 trees of depth 6, 2 threads) on an otherwise idle
# 2-core machine: Cython 1.96 s, Numba 4.10 s (xgboost 1.65 s). Under heavy
# load from other processes the order flipped (OpenMP threads spin-waiting;
# OMP_WAIT_POLICY=passive helps). Issue 19 made the Cython kernels faster still
# (packed SSE2 histogram additions, prefetch, branch-free partition over a
# column-major copy) and small levels serial: 1M x 28, 20 trees, 2 threads, on
# a 2-core machine at load 15 from other processes, Cython 3.6 s CPU / 12 s wall
# against xgboost's 9.6 s CPU / 35 s wall.
AUTO_BACKEND_ORDER = {
    "find_best_splits": ("cython", "numba", "numpy"),
    # The same scans with one more weight clip and comparison per candidate
    # (not measured apart: same loops, same order).
    "find_best_splits_monotone": ("cython", "numba", "numpy"),
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


FLOAT32_MAX = float(np.finfo(np.float32).max)  # the unbounded node's bounds, as xgboost's


def bounded_weight(g, h, lower, upper, params):
    """xgboost's constrained ``CalcWeight``: :func:`leaf_weight` clipped to ``[lower, upper]``."""
    w = leaf_weight(g, h, params)
    lower, upper = np.float32(lower), np.float32(upper)
    return np.where(w < lower, lower, np.where(w > upper, upper, w)).astype(np.float32)


def score_given_weight(g, h, w, params):
    """xgboost's ``CalcGainGivenWeight`` in float32: :math:`-(2 G w + (H + \\lambda) w^2)`.

    0 where ``h <= 0``. The sums are rounded to float32 first and every
    operation is a float32 one, in xgboost's order.
    """
    g32 = np.asarray(g, dtype=np.float64).astype(np.float32)
    h = np.asarray(h, dtype=np.float64)
    w = np.asarray(w, dtype=np.float32)
    reg_lambda = np.float32(params[REG_LAMBDA])
    score = -(np.float32(2.0) * g32 * w + (h.astype(np.float32) + reg_lambda) * (w * w))
    return np.where(h > 0.0, score, np.float32(0.0)).astype(np.float32)


def bounded_node_score(g, h, lower, upper, params):
    """A node's score under bounds: :func:`score_given_weight` of its :func:`bounded_weight`."""
    return score_given_weight(g, h, bounded_weight(g, h, lower, upper, params), params)


def _candidate_gains(left_g, left_h, right_g, right_h, parent_score, params):
    gains = (node_score(left_g, left_h, params).astype(np.float64)
             + node_score(right_g, right_h, params).astype(np.float64)
             - np.float64(parent_score)).astype(np.float32).astype(np.float64)
    min_weight = params[MIN_CHILD_WEIGHT]
    valid = (left_h >= min_weight) & (right_h >= min_weight)
    return np.where(valid, gains, -np.inf)


def find_best_splits(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                     out_gain, out_bin, out_default_left, out_left_sums, n_threads):
    """Best split of each node (one tree level) along each feature.

    Parameters
    ----------
    hists : ndarray of shape (k, d, n_slots, 2), float64
        The nodes' histograms (:mod:`histogram_numpy`); slot ``n_bins[f]`` of
        feature ``f`` holds its missing values.
    n_bins : ndarray of shape (d,), intp
        Number of bins of each feature (``n_bins[f] < n_slots``).
    node_sums : ndarray of shape (k, 2), float64
        Each node's gradient and hessian sums.
    parent_scores : ndarray of shape (k,), float64
        ``node_score`` of each node (a float32 value).
    params : ndarray of shape (4,), float64
        ``[reg_lambda, reg_alpha, min_child_weight, max_delta_step]``.
    allowed_features : ndarray of shape (k, d), uint8
        Features with 0 are skipped in that node (column sampling).
    out_gain : ndarray of shape (k, d), float64
        Written: the best gain of each feature, -inf when it has no valid split.
    out_bin : ndarray of shape (k, d), intp
        Written: rows with bin ``<= out_bin`` go left (-1: only the missing
        rows go left).
    out_default_left : ndarray of shape (k, d), uint8
        Written: 1 if rows with a missing value go left.
    out_left_sums : ndarray of shape (k, d, 2), float64
        Written: gradient and hessian sums of the left child.
    n_threads : int
        Ignored.
    """
    for j in range(hists.shape[0]):
        sum_gradient, sum_hessian = node_sums[j]
        for f in range(hists.shape[1]):
            out_gain[j, f] = -np.inf
            out_bin[j, f] = -1
            out_default_left[j, f] = 0
            out_left_sums[j, f] = 0.0
            if not allowed_features[j, f]:
                continue
            nb = n_bins[f]
            bins = hists[j, f, :nb]
            # Forward scan: bins 0..b go left, missing rows go right.
            left_g = np.cumsum(bins[:, 0])
            left_h = np.cumsum(bins[:, 1])
            gains = _candidate_gains(left_g, left_h, sum_gradient - left_g, sum_hessian - left_h,
                                     parent_scores[j], params)
            b = int(np.argmax(gains))  # first maximum: ties to the smaller bin
            if gains[b] > out_gain[j, f]:
                out_gain[j, f] = gains[b]
                out_bin[j, f] = b
                out_left_sums[j, f] = left_g[b], left_h[b]
            missing = hists[j, f, nb]
            if missing[0] == 0.0 and missing[1] == 0.0:
                continue
            # Backward scan: bins i..nb-1 go right, missing rows go left, i = nb-1 .. 0.
            right_g = np.cumsum(bins[::-1, 0])
            right_h = np.cumsum(bins[::-1, 1])
            left_g = sum_gradient - right_g
            left_h = sum_hessian - right_h
            gains = _candidate_gains(left_g, left_h, right_g, right_h, parent_scores[j], params)
            k = int(np.argmax(gains))
            if gains[k] > out_gain[j, f]:
                out_gain[j, f] = gains[k]
                out_bin[j, f] = nb - 2 - k
                out_default_left[j, f] = 1
                out_left_sums[j, f] = left_g[k], left_h[k]


def _monotone_gains(left_g, left_h, right_g, right_h, parent_score, lower, upper, constraint,
                    params):
    """Loss changes of candidate splits under monotone bounds (xgboost's ``CalcSplitGain``)."""
    w_left = bounded_weight(left_g, left_h, lower, upper, params)
    w_right = bounded_weight(right_g, right_h, lower, upper, params)
    gains = (score_given_weight(left_g, left_h, w_left, params)
             + score_given_weight(right_g, right_h, w_right, params))  # float32 sum
    if constraint > 0:
        gains = np.where(w_left <= w_right, gains, np.float32(-np.inf))
    elif constraint < 0:
        gains = np.where(w_left >= w_right, gains, np.float32(-np.inf))
    gains = (gains - np.float32(parent_score)).astype(np.float32).astype(np.float64)
    min_weight = params[MIN_CHILD_WEIGHT]
    valid = (left_h >= min_weight) & (right_h >= min_weight)
    return np.where(valid, gains, -np.inf)


def find_best_splits_monotone(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                              monotone, node_bounds, out_gain, out_bin, out_default_left,
                              out_left_sums, n_threads):
    """:func:`find_best_splits` under monotone constraints (xgboost's ``TreeEvaluator``).

    The same scans (forward, then backward when the node has missing values;
    ties to the smaller bin, a backward candidate only if strictly better)
    with the gain of the module docstring's constrained form.

    Parameters
    ----------
    hists, n_bins, node_sums, allowed_features, params
        As :func:`find_best_splits`.
    parent_scores : ndarray of shape (k,), float64
        :func:`bounded_node_score` of each node (a float32 value).
    monotone : ndarray of shape (d,), int8
        :math:`c_f`: 1 increasing, -1 decreasing, 0 unconstrained.
    node_bounds : ndarray of shape (k, 2), float64
        Each node's ``[lower, upper]`` weight bounds (float32 values;
        :data:`FLOAT32_MAX` for none).
    out_gain, out_bin, out_default_left, out_left_sums, n_threads
        As :func:`find_best_splits`.
    """
    for j in range(hists.shape[0]):
        sum_gradient, sum_hessian = node_sums[j]
        lower, upper = node_bounds[j]
        for f in range(hists.shape[1]):
            out_gain[j, f] = -np.inf
            out_bin[j, f] = -1
            out_default_left[j, f] = 0
            out_left_sums[j, f] = 0.0
            if not allowed_features[j, f]:
                continue
            nb = n_bins[f]
            bins = hists[j, f, :nb]
            left_g = np.cumsum(bins[:, 0])
            left_h = np.cumsum(bins[:, 1])
            gains = _monotone_gains(left_g, left_h, sum_gradient - left_g, sum_hessian - left_h,
                                    parent_scores[j], lower, upper, monotone[f], params)
            b = int(np.argmax(gains))
            if gains[b] > out_gain[j, f]:
                out_gain[j, f] = gains[b]
                out_bin[j, f] = b
                out_left_sums[j, f] = left_g[b], left_h[b]
            missing = hists[j, f, nb]
            if missing[0] == 0.0 and missing[1] == 0.0:
                continue
            right_g = np.cumsum(bins[::-1, 0])
            right_h = np.cumsum(bins[::-1, 1])
            left_g = sum_gradient - right_g
            left_h = sum_hessian - right_h
            gains = _monotone_gains(left_g, left_h, right_g, right_h, parent_scores[j], lower,
                                    upper, monotone[f], params)
            k = int(np.argmax(gains))
            if gains[k] > out_gain[j, f]:
                out_gain[j, f] = gains[k]
                out_bin[j, f] = nb - 2 - k
                out_default_left[j, f] = 1
                out_left_sums[j, f] = left_g[k], left_h[k]


def _find_best_splits_naive(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                            out_gain, out_bin, out_default_left, out_left_sums, n_threads):
    """Loop twin of :func:`find_best_splits`: try every threshold, both directions."""
    for j in range(hists.shape[0]):
        sum_gradient, sum_hessian = node_sums[j]

        def gain(lg, lh):
            rg, rh = sum_gradient - lg, sum_hessian - lh
            if lh < params[MIN_CHILD_WEIGHT] or rh < params[MIN_CHILD_WEIGHT]:
                return -np.inf
            total = (float(node_score(lg, lh, params)) + float(node_score(rg, rh, params))
                     - float(parent_scores[j]))
            return float(np.float32(total))

        for f in range(hists.shape[1]):
            out_gain[j, f], out_bin[j, f], out_default_left[j, f] = -np.inf, -1, 0
            out_left_sums[j, f] = 0.0
            if not allowed_features[j, f]:
                continue
            nb = n_bins[f]
            lg = lh = 0.0
            for b in range(nb):
                lg += hists[j, f, b, 0]
                lh += hists[j, f, b, 1]
                g = gain(lg, lh)
                if g > out_gain[j, f]:
                    out_gain[j, f], out_bin[j, f], out_left_sums[j, f] = g, b, (lg, lh)
            if hists[j, f, nb, 0] == 0.0 and hists[j, f, nb, 1] == 0.0:
                continue
            rg = rh = 0.0
            for b in range(nb - 1, -1, -1):
                rg += hists[j, f, b, 0]
                rh += hists[j, f, b, 1]
                g = gain(sum_gradient - rg, sum_hessian - rh)
                if g > out_gain[j, f]:
                    out_gain[j, f], out_bin[j, f], out_default_left[j, f] = g, b - 1, 1
                    out_left_sums[j, f] = (sum_gradient - rg, sum_hessian - rh)
