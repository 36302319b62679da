# cython: language_level=3
r"""Best split of a tree node from its gradient histogram: the Cython kernel.

The loops of :func:`splitting_numpy._find_best_splits_naive` (forward scan,
then backward scan when the node has missing values), with the same float32
roundings as xgboost, OpenMP threads over the (node, feature) pairs of a tree
level (each scan is independent, so the thread count cannot change the answer).
An empty bin (gradient and hessian sums both 0) leaves the running sums, so the
gain, as they were: the scans skip it after their first bin (its gain is never
strictly above the one before). Deep levels hold many nodes of few rows whose
bins are mostly empty; there the gains' two divisions per bin were the cost.

``find_best_splits_monotone``: the same scans with xgboost's monotone gain
(:func:`splitting_numpy.find_best_splits_monotone`): weights clipped to the
node's bounds, scores in float32 arithmetic (compiled without contraction),
order checked on constrained features.
"""

include "_common.pxi"
include "_boosting_common.pxi"

from cython.parallel cimport prange

from ._constants import THRESHOLDS
from ._threads import parallel_minimum  # 8 times more on a shared machine

# Histogram slots (nodes x features x bins) of a level below which one thread
# searches: about 0.25 ms of serial work. Each (node, feature) is its own task, so
# the answer does not depend on the threads; at 10k rows and depth 6 a second
# thread from the fourth level on makes the fit 0.92x xgboost's instead of 1.18x
# (idle machine, 2 threads).
PARALLEL_MIN_WORK = THRESHOLDS["splitting"]["PARALLEL_MIN_WORK"]


# Bins per block of the forward scan's branch-free path (see _forward_scan_blocks).
DEF SCAN_BLOCK = 64


cdef void _forward_scan_blocks(const double* hist, intp_t nb, double sum_gradient,
                               double sum_hessian, double parent_score, const double* params,
                               double* best_gain, intp_t* best_bin, double* best_g,
                               double* best_h) noexcept nogil:
    """The forward scan without L1 (alpha) or max_delta_step, in blocks of bins.

    Per block: the running sums (one dependent chain of additions), then the
    two scores' divisions of every bin in a loop without branches (which the
    compiler vectorises: the divisions were the scan's cost), then each bin's
    gain (:func:`split_gain`'s roundings and tests), then the first strictly
    larger gain. Empty bins
    are not skipped: they repeat the running sums exactly (x + 0.0 == x), so
    their gain equals the one before and never wins; the result is bit for bit
    that of the scalar loop in _best_split.
    """
    cdef double lg[SCAN_BLOCK]
    cdef double lh[SCAN_BLOCK]
    cdef double gains[SCAN_BLOCK]
    cdef double score_l[SCAN_BLOCK]
    cdef double score_r[SCAN_BLOCK]
    cdef double left_g = 0.0, left_h = 0.0, rg, rh, gain
    cdef double reg_lambda = params[0], min_child_weight = params[2]
    cdef intp_t start, i, m
    for start in range(0, nb, SCAN_BLOCK):
        m = nb - start if nb - start < SCAN_BLOCK else SCAN_BLOCK
        for i in range(m):
            left_g = left_g + hist[2 * (start + i)]
            left_h = left_h + hist[2 * (start + i) + 1]
            lg[i] = left_g
            lh[i] = left_h
        for i in range(m):  # no branches: the compiler vectorises the two divisions
            rh = sum_hessian - lh[i]
            rg = sum_gradient - lg[i]
            score_l[i] = lg[i] * lg[i] / (lh[i] + reg_lambda)
            score_r[i] = rg * rg / (rh + reg_lambda)
        for i in range(m):
            rh = sum_hessian - lh[i]
            gain = <double> (<float> ((0.0 if lh[i] <= 0.0 else <double> (<float> score_l[i]))
                                      + (0.0 if rh <= 0.0 else <double> (<float> score_r[i]))
                                      - parent_score))
            gains[i] = -INFINITY if (lh[i] < min_child_weight or rh < min_child_weight) \
                else gain
        for i in range(m):
            if gains[i] > best_gain[0]:
                best_gain[0] = gains[i]
                best_bin[0] = start + i
                best_g[0] = lg[i]
                best_h[0] = lh[i]


cdef void _best_split(const double* hist, intp_t nb, double sum_gradient, double sum_hessian,
                      double parent_score, const double* params, double* out_gain,
                      intp_t* out_bin, uint8_t* out_default_left,
                      double* out_left_sums) noexcept nogil:
    cdef double best_gain = -INFINITY, best_g = 0.0, best_h = 0.0, gain
    cdef double left_g = 0.0, left_h = 0.0, right_g = 0.0, right_h = 0.0
    cdef intp_t best_bin = -1, b
    cdef intp_t nb_forward
    cdef uint8_t best_default_left = 0
    if params[1] == 0.0 and params[3] == 0.0:
        _forward_scan_blocks(hist, nb, sum_gradient, sum_hessian, parent_score, params,
                             &best_gain, &best_bin, &best_g, &best_h)
        nb_forward = 0
    else:
        nb_forward = nb
    for b in range(nb_forward):
        if b > 0 and hist[2 * b] == 0.0 and hist[2 * b + 1] == 0.0:
            continue  # an empty bin: the same sums, the same gain, never strictly better
        left_g += hist[2 * b]
        left_h += hist[2 * b + 1]
        gain = split_gain(left_g, left_h, sum_gradient - left_g, sum_hessian - left_h,
                          parent_score, params)
        if gain > best_gain:
            best_gain = gain
            best_bin = b
            best_g = left_g
            best_h = left_h
    if hist[2 * nb] != 0.0 or hist[2 * nb + 1] != 0.0:
        b = nb - 1
        while b >= 0:
            if b < nb - 1 and hist[2 * b] == 0.0 and hist[2 * b + 1] == 0.0:
                b -= 1
                continue
            right_g += hist[2 * b]
            right_h += hist[2 * b + 1]
            left_g = sum_gradient - right_g
            left_h = sum_hessian - right_h
            gain = split_gain(left_g, left_h, right_g, right_h, parent_score, params)
            if gain > best_gain:
                best_gain = gain
                best_bin = b - 1
                best_default_left = 1
                best_g = left_g
                best_h = left_h
            b -= 1
    out_gain[0] = best_gain
    out_bin[0] = best_bin
    out_default_left[0] = best_default_left
    out_left_sums[0] = best_g
    out_left_sums[1] = best_h


cdef inline float bounded_weight(double g, double h, float lower, float upper,
                                 const double* params) noexcept nogil:
    cdef float w = leaf_weight(g, h, params)
    if w < lower:
        return lower
    if w > upper:
        return upper
    return w


cdef inline float score_given_weight(double g, double h, float w,
                                     float reg_lambda) noexcept nogil:
    # float32 operations in xgboost's order (CalcGainGivenWeight<float>)
    if h <= 0.0:
        return 0.0
    return -(<float> 2.0 * <float> g * w + (<float> h + reg_lambda) * (w * w))


cdef inline double monotone_gain(double left_g, double left_h, double right_g, double right_h,
                                 float parent_score, float lower, float upper,
                                 signed char constraint, const double* params) noexcept nogil:
    cdef float w_left, w_right, gain
    cdef float reg_lambda = <float> params[0]
    if left_h < params[2] or right_h < params[2]:
        return -INFINITY
    w_left = bounded_weight(left_g, left_h, lower, upper, params)
    w_right = bounded_weight(right_g, right_h, lower, upper, params)
    if (constraint > 0 and not w_left <= w_right) or (constraint < 0 and not w_left >= w_right):
        return -INFINITY
    gain = (score_given_weight(left_g, left_h, w_left, reg_lambda)
            + score_given_weight(right_g, right_h, w_right, reg_lambda))
    gain = gain - parent_score
    return <double> gain


cdef void _best_split_monotone(const double* hist, intp_t nb, double sum_gradient,
                               double sum_hessian, float parent_score, float lower, float upper,
                               signed char constraint, const double* params, double* out_gain,
                               intp_t* out_bin, uint8_t* out_default_left,
                               double* out_left_sums) noexcept nogil:
    cdef double best_gain = -INFINITY, best_g = 0.0, best_h = 0.0, gain
    cdef double left_g = 0.0, left_h = 0.0, right_g = 0.0, right_h = 0.0
    cdef intp_t best_bin = -1, b
    cdef uint8_t best_default_left = 0
    for b in range(nb):
        if b > 0 and hist[2 * b] == 0.0 and hist[2 * b + 1] == 0.0:
            continue
        left_g += hist[2 * b]
        left_h += hist[2 * b + 1]
        gain = monotone_gain(left_g, left_h, sum_gradient - left_g, sum_hessian - left_h,
                             parent_score, lower, upper, constraint, params)
        if gain > best_gain:
            best_gain = gain
            best_bin = b
            best_g = left_g
            best_h = left_h
    if hist[2 * nb] != 0.0 or hist[2 * nb + 1] != 0.0:
        b = nb - 1
        while b >= 0:
            if b < nb - 1 and hist[2 * b] == 0.0 and hist[2 * b + 1] == 0.0:
                b -= 1
                continue
            right_g += hist[2 * b]
            right_h += hist[2 * b + 1]
            left_g = sum_gradient - right_g
            left_h = sum_hessian - right_h
            gain = monotone_gain(left_g, left_h, right_g, right_h, parent_score, lower, upper,
                                 constraint, params)
            if gain > best_gain:
                best_gain = gain
                best_bin = b - 1
                best_default_left = 1
                best_g = left_g
                best_h = left_h
            b -= 1
    out_gain[0] = best_gain
    out_bin[0] = best_bin
    out_default_left[0] = best_default_left
    out_left_sums[0] = best_g
    out_left_sums[1] = best_h


def _find_best_splits(const double[:, :, :, ::1] hists, const intp_t[::1] n_bins,      # IN
                      const double[:, ::1] node_sums, const double[::1] parent_scores,   # IN
                      const double[::1] params, const uint8_t[:, ::1] allowed_features,  # IN
                      double[:, ::1] out_gain, intp_t[:, ::1] out_bin,                   # OUT
                      uint8_t[:, ::1] out_default_left, double[:, :, ::1] out_left_sums,  # OUT
                      int n_threads):
    cdef intp_t n_features = hists.shape[1]
    cdef intp_t task, j, f
    # Dynamic: a thread paused by the OS on a shared machine does not hold up the
    # level (each task writes only its own outputs, whichever thread runs it).
    for task in prange(hists.shape[0] * n_features, num_threads=n_threads, schedule="dynamic",
                       chunksize=8, nogil=True):
        j = task // n_features
        f = task % n_features
        if allowed_features[j, f]:
            _best_split(&hists[j, f, 0, 0], n_bins[f], node_sums[j, 0], node_sums[j, 1],
                        parent_scores[j], &params[0], &out_gain[j, f], &out_bin[j, f],
                        &out_default_left[j, f], &out_left_sums[j, f, 0])
        else:
            out_gain[j, f] = -INFINITY
            out_bin[j, f] = -1
            out_default_left[j, f] = 0
            out_left_sums[j, f, 0] = 0.0
            out_left_sums[j, f, 1] = 0.0


def find_best_splits(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                     out_gain, out_bin, out_default_left, out_left_sums, n_threads):
    """Best split per node and feature (see :func:`splitting_numpy.find_best_splits`)."""
    n_threads = max(1, int(n_threads))
    if hists.shape[0] * hists.shape[1] * hists.shape[2] < parallel_minimum(PARALLEL_MIN_WORK):
        n_threads = 1
    _find_best_splits(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                      out_gain, out_bin, out_default_left, out_left_sums, n_threads)


def _find_best_splits_monotone(
        const double[:, :, :, ::1] hists, const intp_t[::1] n_bins,                      # IN
        const double[:, ::1] node_sums, const double[::1] parent_scores,                   # IN
        const double[::1] params, const uint8_t[:, ::1] allowed_features,                  # IN
        const signed char[::1] monotone, const double[:, ::1] node_bounds,                 # IN
        double[:, ::1] out_gain, intp_t[:, ::1] out_bin,                                   # OUT
        uint8_t[:, ::1] out_default_left, double[:, :, ::1] out_left_sums,                 # OUT
        int n_threads):
    cdef intp_t n_features = hists.shape[1]
    cdef intp_t task, j, f
    for task in prange(hists.shape[0] * n_features, num_threads=n_threads, schedule="dynamic",
                       chunksize=8, nogil=True):
        j = task // n_features
        f = task % n_features
        if allowed_features[j, f]:
            _best_split_monotone(&hists[j, f, 0, 0], n_bins[f], node_sums[j, 0], node_sums[j, 1],
                                 <float> parent_scores[j], <float> node_bounds[j, 0],
                                 <float> node_bounds[j, 1], monotone[f], &params[0],
                                 &out_gain[j, f], &out_bin[j, f], &out_default_left[j, f],
                                 &out_left_sums[j, f, 0])
        else:
            out_gain[j, f] = -INFINITY
            out_bin[j, f] = -1
            out_default_left[j, f] = 0
            out_left_sums[j, f, 0] = 0.0
            out_left_sums[j, f, 1] = 0.0


def find_best_splits_monotone(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                              monotone, node_bounds, out_gain, out_bin, out_default_left,
                              out_left_sums, n_threads):
    """Best split per node and feature under monotone constraints.

    See :func:`splitting_numpy.find_best_splits_monotone`.
    """
    n_threads = max(1, int(n_threads))
    if hists.shape[0] * hists.shape[1] * hists.shape[2] < parallel_minimum(PARALLEL_MIN_WORK):
        n_threads = 1
    _find_best_splits_monotone(hists, n_bins, node_sums, parent_scores, params, allowed_features,
                               monotone, node_bounds, out_gain, out_bin, out_default_left,
                               out_left_sums, n_threads)
