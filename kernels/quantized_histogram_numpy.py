r"""Quantized-gradient histograms (LightGBM 4's ``use_quantized_grad``): the readable reference.

Each boosting round, the float gradients and hessians are rounded to a few
integer levels (Shi et al., 2022, "Quantized Training of Gradient Boosting
Decision Trees"; LightGBM's ``GradientDiscretizer``). With ``B`` =
``num_grad_quant_bins``, the per-round scales are

.. math::

    s_g = \frac{\max_i |g_i|}{\lfloor B / 2 \rfloor}, \qquad
    s_h = \frac{\max_i h_i}{B} \quad (s_h = h \text{ when every } h_i \text{ is the same } h),

and each row's integers are, with :math:`u_i \in [0, 1)` a uniform draw
(stochastic rounding, unbiased: :math:`E[q] = g / s_g`) or :math:`u_i = 1/2`
(round to nearest),

.. math::

    q^g_i = \operatorname{sign}(g_i) \lfloor |g_i| / s_g + u_i \rfloor, \qquad
    q^h_i = \lfloor h_i / s_h + u'_i \rfloor \quad (q^h_i = 1 \text{ for constant } h),

so :math:`|q^g_i| \le \lfloor B/2 \rfloor + 1` and :math:`0 \le q^h_i \le B + 1`.
A node's histogram then holds integer sums per (feature, bin),

.. math::

    Q^g_{fb} = \sum_{i \in \text{node},\; X^{bin}_{if} = b} q^g_i, \qquad
    Q^h_{fb} = \sum_{i \in \text{node},\; X^{bin}_{if} = b} q^h_i ,

and the split search reads :math:`G_{fb} \approx s_g Q^g_{fb}`,
:math:`H_{fb} \approx s_h Q^h_{fb}` (:func:`dequantize_histograms`).

Packing: a row's two integers travel as one int64,
``packed = q_g * 2**32 + q_h``, and a histogram bin is the int64 sum of its
rows' packed values: the low 32 bits hold :math:`Q^h` (non-negative, below
``2**32`` while ``rows x (B + 1) < 2**31``, which the caller checks) and the
high 32 bits :math:`Q^g` (two's complement; the low half never carries). One
integer addition per (row, feature) replaces two float64 additions, and the
histogram is half the memory. The subtraction trick is exact on packed bins:
a child's :math:`Q^h` never exceeds its parent's, so the low half never
borrows.

Integer additions are associative: every backend gives the same bits
whatever the order of the rows or the number of threads.

What is exact and what is not: the integer sums and their subtraction are
exact; the histograms, and so the splits, approximate the float ones by the
rounding of each row's gradient to a multiple of :math:`s_g` (an error of at
most one level per row, zero on average with stochastic rounding).
"""

import numpy as np

# Fastest first, measured one thread (CPU time, 1M x 28 codes, 256 bins): packed histograms of
# the root Cython 8.3 ms, Numba 17.1 ms (float64 histograms: 12.0 ms, 21.9 ms); of 16 nodes
# holding half the rows 4.7 ms, 9.5 ms; quantize_gradients 1M rows Cython 1.19 ms, Numba
# 1.26 ms, NumPy 22 ms.
AUTO_BACKEND_ORDER = {
    "gradient_ranges": ("cython", "numba", "numpy"),
    "quantize_gradients": ("cython", "numba", "numpy"),
    "build_quantized_histograms": ("cython", "numba", "numpy"),
    "subtract_quantized_histograms": ("cython", "numba", "numpy"),
    "dequantize_histograms": ("cython", "numba", "numpy"),
    "segment_sums": ("cython", "numba", "numpy"),
}

HESSIAN_BITS = 32  # the packed hessian sum's width: packed = q_g << 32 | q_h
HESSIAN_MASK = (1 << HESSIAN_BITS) - 1


def gradient_ranges(gradients, hessians, out_ranges, n_threads):
    """What the per-round scales need: ``[max |g|, max h, min h]``.

    Parameters
    ----------
    gradients, hessians : ndarray of shape (n,), float32, n >= 1
    out_ranges : ndarray of shape (3,), float64
        Overwritten with :math:`\\max_i |g_i|`, :math:`\\max_i h_i`,
        :math:`\\min_i h_i` (maxima and minima are exact in any order).
    n_threads : int
        Ignored.
    """
    out_ranges[0] = np.max(np.abs(gradients))
    out_ranges[1] = np.max(hessians)
    out_ranges[2] = np.min(hessians)


def quantize_gradients(gradients, hessians, random_values, offset, inverse_scales, flags,
                       out_packed, n_threads):
    """Each row's gradient and hessian rounded to integer levels, packed in one int64.

    Parameters
    ----------
    gradients, hessians : ndarray of shape (n,), float32
    random_values : ndarray of shape (2, n), float32
        Uniform draws in [0, 1), made once per fit: row ``i`` of a round uses
        ``random_values[:, (i + offset) % n]`` (LightGBM's table, read from a
        new offset each round, instead of ``2 n`` new draws per round).
    offset : int
        This round's start in the table, in ``[0, n)``.
    inverse_scales : ndarray of shape (2,), float64
        :math:`1 / s_g`, :math:`1 / s_h`.
    flags : ndarray of shape (2,), intp
        ``[stochastic, constant_hessian]``: ``stochastic`` 1 draws
        :math:`u` from the table, 0 rounds to nearest (:math:`u = 1/2`);
        ``constant_hessian`` 1 gives every row :math:`q^h = 1`.
    out_packed : ndarray of shape (n,), int64
        Overwritten: ``q_g * 2**32 + q_h``.
    n_threads : int
        Ignored.

    Notes
    -----
    In float64, as LightGBM: ``t = g * (1 / s_g)``, then ``q_g = trunc(t + u)``
    for ``g >= 0`` and ``trunc(t - u)`` below (truncation toward zero), and
    ``q_h = trunc(h * (1 / s_h) + u')``.
    """
    n = gradients.shape[0]
    stochastic, constant_hessian = int(flags[0]), int(flags[1])
    if stochastic:
        position = (np.arange(n) + offset) % n
        u_g = random_values[0, position].astype(np.float64)
        u_h = random_values[1, position].astype(np.float64)
    else:
        u_g = u_h = np.full(n, 0.5)
    scaled = gradients.astype(np.float64) * inverse_scales[0]
    q_g = np.trunc(np.where(gradients >= 0, scaled + u_g, scaled - u_g)).astype(np.int64)
    if constant_hessian:
        q_h = np.ones(n, dtype=np.int64)
    else:
        q_h = np.trunc(hessians.astype(np.float64) * inverse_scales[1] + u_h).astype(np.int64)
    out_packed[:] = (q_g << HESSIAN_BITS) + q_h


def build_quantized_histograms(binned, rows, node_starts, node_stops, packed, out_hists,
                               n_threads):
    """Packed integer sums per (feature, bin) of several nodes (one tree level).

    Parameters
    ----------
    binned : ndarray of shape (n, d), uint8, C-contiguous
    rows : ndarray of shape (n,), intp
        Node ``j`` owns ``rows[node_starts[j]:node_stops[j]]``.
    node_starts, node_stops : ndarray of shape (k,), intp
    packed : ndarray of shape (n,), int64
        From :func:`quantize_gradients`.
    out_hists : ndarray of shape (k, d, n_slots), int64
        Overwritten: ``[j, f, b]`` the sum of ``packed`` over node ``j``'s rows
        whose feature ``f`` is in bin ``b`` (:math:`Q^g \\cdot 2^{32} + Q^h`).
    n_threads : int
        Ignored.
    """
    for j in range(node_starts.shape[0]):
        node_rows = rows[node_starts[j]:node_stops[j]]
        node_packed = packed[node_rows]
        for f in range(binned.shape[1]):
            out_hists[j, f] = 0
            np.add.at(out_hists[j, f], binned[node_rows, f], node_packed)


def subtract_quantized_histograms(parent_hists, parent_index, child_hists, out_hists, n_threads):
    """Siblings' packed histograms: ``out_hists[j] = parent_hists[parent_index[j]] - child_hists[j]``.

    Exact (integers); see the module docstring for why the packed halves do not borrow.
    """
    np.subtract(parent_hists[parent_index], child_hists, out=out_hists)


def dequantize_histograms(int_hists, scales, out_hists, n_threads):
    """Float sums for the split search: ``G = s_g Q^g``, ``H = s_h Q^h``.

    Parameters
    ----------
    int_hists : ndarray of shape (k, d, n_slots), int64
        Packed sums (:func:`build_quantized_histograms`).
    scales : ndarray of shape (2,), float64
        :math:`s_g`, :math:`s_h`.
    out_hists : ndarray of shape (k, d, n_slots, 2), float64
        Overwritten: ``[..., 0]`` :math:`s_g Q^g`, ``[..., 1]`` :math:`s_h Q^h`
        (each one product of an exact integer, below 2**53, and a scale).
    n_threads : int
        Ignored.
    """
    out_hists[..., 0] = (int_hists >> HESSIAN_BITS).astype(np.float64) * scales[0]
    out_hists[..., 1] = (int_hists & HESSIAN_MASK).astype(np.float64) * scales[1]


def segment_sums(rows, starts, stops, gradients, hessians, out_sums, n_threads):
    """Float sums of the true gradients and hessians of several nodes (the leaf renewal).

    Parameters
    ----------
    rows : ndarray of shape (n,), intp
    starts, stops : ndarray of shape (k,), intp
        Node ``j`` owns ``rows[starts[j]:stops[j]]``.
    gradients, hessians : ndarray of shape (n,), float32
    out_sums : ndarray of shape (k, 2), float64
        Overwritten: :math:`\\sum g_i`, :math:`\\sum h_i` over node ``j``'s rows,
        added in float64 in the order of ``rows`` (0 for an empty node).
    n_threads : int
        Ignored.
    """
    for j in range(starts.shape[0]):
        node_rows = rows[starts[j]:stops[j]]
        for column, values in enumerate((gradients, hessians)):
            # accumulate adds in order (np.sum's pairwise order would differ from the loops').
            running = np.add.accumulate(values[node_rows], dtype=np.float64)
            out_sums[j, column] = running[-1] if running.shape[0] else 0.0


# Readable loop twin, the definition the tests check every backend against.

def _build_quantized_histograms_naive(binned, rows, node_starts, node_stops, packed, out_hists,
                                      n_threads):
    out_hists[:] = 0
    for j in range(len(node_starts)):
        for i in rows[node_starts[j]:node_stops[j]]:
            q_g, q_h = int(packed[i]) >> HESSIAN_BITS, int(packed[i]) & HESSIAN_MASK
            for f in range(binned.shape[1]):
                # Python integers: the two sums kept apart, then packed again.
                bin_value = int(out_hists[j, f, binned[i, f]])
                g_sum = (bin_value >> HESSIAN_BITS) + q_g
                h_sum = (bin_value & HESSIAN_MASK) + q_h
                out_hists[j, f, binned[i, f]] = (g_sum << HESSIAN_BITS) + h_sum
