r"""Quantized-gradient training (LightGBM 4's ``use_quantized_grad``), opt-in.

Each round, :class:`GradientQuantizer` rounds every row's gradient and
hessian to a few integer levels (``num_grad_quant_bins``), with stochastic
rounding seeded from ``random_state``; :class:`QuantizedTreeGrower` then
grows the round's tree from integer histograms (one int64 addition per
(row, feature), the subtraction trick on integers) and hands the split
search float sums, the integers times the round's scales. The math and the
packing are in :mod:`fastscratch.kernels.quantized_histogram_numpy`.

What is exact and what is approximate:

- exact: the integer histograms, their subtraction, the partition of the
  rows, and the leaf values with ``quant_train_renew_leaf=True`` (from the
  float gradient and hessian sums of each leaf's rows, LightGBM's
  ``quant_train_renew_leaf``), which also makes every node's ``cover`` the
  true hessian sum;
- approximate: the split gains, and so the chosen splits, and, without
  renewal, the leaf values and covers, all computed from the quantized
  sums :math:`G \approx s_g Q^g`, :math:`H \approx s_h Q^h`.

The trees are therefore not xgboost's; the test suite bounds their held-out
metrics against xgboost's on real data (``tests/test_boosting_quantized.py``).
"""

import numbers

import numpy as np

from .._backend import resolve_kernel
from .grower import TreeGrower

KERNELS = ("gradient_ranges", "quantize_gradients", "build_quantized_histograms",
           "subtract_quantized_histograms", "dequantize_histograms", "segment_sums")
HESSIAN_BITS = 32
HESSIAN_MASK = (1 << HESSIAN_BITS) - 1
MAX_BINS = 1 << 15  # largest num_grad_quant_bins accepted
MAX_PACKED_SUM = 1 << 31  # rows x (num_grad_quant_bins + 1) must stay below: see check_fits


def check_fits(n_rows, num_grad_quant_bins):
    """ValueError when a node's integer sums could overflow their 32-bit halves.

    A row's levels are at most ``B // 2 + 1`` (gradient, in absolute value)
    and ``B + 1`` (hessian), so every sum stays below ``2**31`` when
    ``n_rows * (B + 1) < 2**31``.
    """
    if n_rows * (num_grad_quant_bins + 1) >= MAX_PACKED_SUM:
        most = MAX_PACKED_SUM // n_rows - 2
        raise ValueError(
            f"num_grad_quant_bins={num_grad_quant_bins} is too large for {n_rows} rows: the "
            "integer histogram sums (32 bits each) could overflow; use num_grad_quant_bins <= "
            f"{max(most, 0)}, fewer rows, or use_quantized_grad=False.")


def _generator(random_state):
    """The quantizer's own generator: seeded from ``random_state`` (an int or a RandomState),
    apart from the row and column samplers' stream."""
    if isinstance(random_state, numbers.Integral):
        return np.random.default_rng([int(random_state) & 0xFFFFFFFF, 19])
    return np.random.default_rng(random_state.randint(0, 2 ** 32, dtype=np.uint64))


class GradientQuantizer:
    """A fit's quantization state: the random table, the round's packed levels and scales.

    Parameters
    ----------
    n_rows : int
    num_grad_quant_bins : int
        :math:`B`: the gradients take levels in :math:`[-\\lfloor B/2 \\rfloor,
        \\lfloor B/2 \\rfloor]` (one more with stochastic rounding), the
        hessians in :math:`[0, B]`.
    stochastic_rounding : bool
        Round each value up with probability equal to its fractional part
        (unbiased), from a table of uniform draws made once per fit and read
        from a new random offset each round (LightGBM's scheme); False: round
        to nearest.
    renew_leaf : bool
        Leaf values (and covers) from the float sums of each node's rows.
    random_state : int or RandomState
    backend : str
    n_threads : int
    """

    def __init__(self, n_rows, num_grad_quant_bins, stochastic_rounding, renew_leaf,
                 random_state, backend, n_threads):
        check_fits(n_rows, num_grad_quant_bins)
        self.num_grad_quant_bins = int(num_grad_quant_bins)
        self.stochastic_rounding = bool(stochastic_rounding)
        self.renew_leaf = bool(renew_leaf)
        self.n_threads = n_threads
        self.kernels = {name: resolve_kernel(name, backend)[0] for name in KERNELS}
        self.rng = _generator(random_state)
        self.random_values = (self.rng.random((2, n_rows), dtype=np.float32)
                              if self.stochastic_rounding else np.zeros((2, 1), dtype=np.float32))
        self.packed = np.empty(n_rows, dtype=np.int64)
        self.scales = np.zeros(2, dtype=np.float64)
        self._buffers = [np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)]

    def quantize(self, gradients, hessians):
        """This round's levels (``self.packed``) and scales (``self.scales``: :math:`s_g, s_h`)."""
        ranges = np.empty(3, dtype=np.float64)
        self.kernels["gradient_ranges"](gradients, hessians, ranges, self.n_threads)
        g_max, h_max, h_min = ranges
        constant_hessian = h_max == h_min
        half = self.num_grad_quant_bins // 2
        self.scales[0] = g_max / half
        self.scales[1] = h_max if constant_hessian else h_max / self.num_grad_quant_bins
        inverse = np.array([1.0 / s if s > 0.0 else 0.0 for s in self.scales])
        n = gradients.shape[0]
        offset = int(self.rng.integers(0, n)) if self.stochastic_rounding else 0
        flags = np.array([self.stochastic_rounding, constant_hessian], dtype=np.intp)
        self.kernels["quantize_gradients"](gradients, hessians, self.random_values, offset,
                                           inverse, flags, self.packed, self.n_threads)

    def take(self, which, shape):
        """An int64 array of ``shape`` in buffer ``which`` (0 or 1), not zeroed, reused
        tree after tree (as :class:`~.grower.HistogramBuffers`)."""
        size = int(np.prod(shape))
        if self._buffers[which].shape[0] < size:
            self._buffers[which] = None
            self._buffers[which] = np.empty(size, dtype=np.int64)
        return self._buffers[which][:size].reshape(shape)

    def sums(self, packed_total):
        """``(G, H)`` of a packed integer sum: its halves times the round's scales."""
        packed_total = int(packed_total)
        return ((packed_total >> HESSIAN_BITS) * float(self.scales[0]),
                (packed_total & HESSIAN_MASK) * float(self.scales[1]))


class QuantizedTreeGrower(TreeGrower):
    """:class:`~.grower.TreeGrower` on integer histograms (depth-wise, dense, numeric).

    Takes the grower's arguments and ``quantizer``, a :class:`GradientQuantizer`
    holding the round's levels of ``gradients`` and ``hessians``. Each level's
    packed integer histograms are kept (``int_hists``) for the subtraction
    trick of the next; the split search reads their float sums.
    """

    def __init__(self, *args, quantizer, **kwargs):
        super().__init__(*args, **kwargs)
        self.quantizer = quantizer
        self.int_hists = None
        self._shape = (self.binned.shape[1], self.n_slots)

    def _build_int(self, nodes, out):
        starts = np.array([node.start for node in nodes], dtype=np.intp)
        stops = np.array([node.stop for node in nodes], dtype=np.intp)
        self.quantizer.kernels["build_quantized_histograms"](
            self.binned, self.rows, starts, stops, self.quantizer.packed, out, self.n_threads)

    def _dequantize(self, int_hists, out):
        self.quantizer.kernels["dequantize_histograms"](int_hists, self.quantizer.scales, out,
                                                        self.n_threads)

    def _build(self, nodes, out):
        """Any node set's float histograms through a temporary integer one (depth-wise growth
        builds through _root_histogram and _children_histograms, which keep theirs)."""
        ints = np.empty((len(nodes),) + self._shape, dtype=np.int64)
        self._build_int(nodes, ints)
        self._dequantize(ints, out)

    def _root_histogram(self, root, depth=None):
        ints = self.quantizer.take(0, (1,) + self._shape)
        self._build_int([root], ints)
        hists = self._hists(1, 0)
        self._dequantize(ints, hists)
        self.int_hists = ints
        root.g, root.h = self._root_sums(hists)
        return hists

    def _root_sums(self, hists):
        """The root's sums from its integer histogram (every row is in one slot of feature 0,
        missing slot included), so that they agree with the histograms the split search reads."""
        return self.quantizer.sums(self.int_hists[0, 0, : int(self.n_bins[0]) + 1].sum())

    def _children_histograms(self, hists, parent_index, built, depth):
        m = len(built)
        ints = self.quantizer.take(depth % 2, (2 * m,) + self._shape)
        self._build_int(built, ints[:m])
        self.quantizer.kernels["subtract_quantized_histograms"](
            self.int_hists, np.array(parent_index, dtype=np.intp), ints[:m], ints[m:],
            self.n_threads)
        self.int_hists = ints
        new_hists = self._hists(2 * m, depth)
        self._dequantize(ints, new_hists)
        return new_hists

    def _flatten(self, nodes):
        if self.quantizer.renew_leaf:
            # Each leaf's float sums over its rows (rows[start:stop]), then every split node's
            # as the sum of its children's (nodes[i].id == i; children come after parents).
            leaves = [node for node in nodes if node.children is None]
            sums = np.empty((len(leaves), 2), dtype=np.float64)
            self.quantizer.kernels["segment_sums"](
                self.rows, np.array([node.start for node in leaves], dtype=np.intp),
                np.array([node.stop for node in leaves], dtype=np.intp), self.gradients,
                self.hessians, sums, self.n_threads)
            for node, (g, h) in zip(leaves, sums.tolist()):
                node.g, node.h = g, h
            for node in reversed(nodes):
                if node.children is not None:
                    left, right = (nodes[i] for i in node.children)
                    node.g, node.h = left.g + right.g, left.h + right.h
        return super()._flatten(nodes)
