# Helpers shared by the gradient-boosting Cython kernels (histogram, splitting,
# partition, tree_predict, categorical), pulled in with `include "_boosting_common.pxi"`
# after `_common.pxi`.

from libc.stdint cimport uint8_t

# xgboost's leaf weight, node score and split gain (splitting_numpy's math), read by the
# numeric split search (splitting_cython) and the categorical one (categorical_cython).
# params = [reg_lambda, reg_alpha, min_child_weight, max_delta_step].
cdef inline double threshold_l1(double g, double alpha) noexcept nogil:
    if g > alpha:
        return g - alpha
    if g < -alpha:
        return g + alpha
    return 0.0


cdef inline float leaf_weight(double g, double h, const double* params) noexcept nogil:
    cdef double w
    if h < params[2] or h <= 0.0:
        return 0.0
    w = -threshold_l1(g, params[1]) / (h + params[0])
    if params[3] != 0.0 and (w if w > 0 else -w) > params[3]:
        w = params[3] if w > 0 else -params[3]
    return <float> w


cdef inline float node_score(double g, double h, const double* params) noexcept nogil:
    cdef double t, w
    if h <= 0.0:
        return 0.0
    if params[3] == 0.0:
        t = threshold_l1(g, params[1])
        return <float> (t * t / (h + params[0]))
    w = <double> leaf_weight(g, h, params)
    return <float> (-(2.0 * g * w + (h + params[0]) * (w * w)))


cdef inline double split_gain(double left_g, double left_h, double right_g, double right_h,
                              double parent_score, const double* params) noexcept nogil:
    """A split's gain, -inf when a child is lighter than min_child_weight."""
    if left_h < params[2] or right_h < params[2]:
        return -INFINITY
    return <double> (<float> (<double> node_score(left_g, left_h, params)
                              + <double> node_score(right_g, right_h, params) - parent_score))
