r"""K-means iterations (Lloyd and Elkan): the readable reference.

Notation, as in the code: ``X`` (n x d) the samples, ``sample_weight`` the
weights :math:`w_i`, ``centers`` (k x d) the centres :math:`c_j`.

Lloyd (:func:`kmeans_lloyd_iter`): one fused pass that assigns every sample to
its nearest centre and accumulates what the M-step needs,

.. math::

    \ell_i = \operatorname{argmin}_j \; \lVert c_j \rVert^2 - 2\, x_i \cdot c_j ,
    \qquad
    S_j = \sum_{i:\ell_i=j} w_i x_i , \quad W_j = \sum_{i:\ell_i=j} w_i ,
    \qquad
    \text{inertia} = \sum_i w_i \lVert x_i - c_{\ell_i} \rVert^2 .

The ranking drops :math:`\lVert x_i \rVert^2` (the same for every centre) and
computes :math:`x_i \cdot c_j` with one BLAS GEMM, in the input dtype, exactly
as scikit-learn does: on a near-tie, the rounding of that product decides the
label, and the same BLAS gives the same rounding, hence the same labels. Ties
go to the smaller index. Sums, weights and inertia are accumulated in float64;
the inertia uses the direct form :math:`\sum_l (x_{il} - c_{\ell_i l})^2`.

The sums are kept per stripe (below) between passes, with the labels they
were made from: after the first passes few labels change, so the compiled
kernels only move the rows whose label changed, :math:`S_{old} \mathrel{-}=
w_i x_i`, :math:`S_{new} \mathrel{+}= w_i x_i` (this reference recomputes
them, the same sums up to rounding). :func:`lloyd_state` makes the empty
state: every label -1, every sum 0.

Elkan (:func:`kmeans_elkan_init`, :func:`kmeans_elkan_iter`): the same
assignment, but each sample keeps an upper bound :math:`u_i \ge \lVert x_i -
c_{\ell_i}\rVert` and lower bounds :math:`l_{ij} \le \lVert x_i - c_j\rVert`;
with :math:`h_{jj'} = \tfrac12 \lVert c_j - c_{j'} \rVert` and :math:`s_j =
\min_{j' \ne j} h_{jj'}`, a centre :math:`j` is skipped when :math:`u_i \le
l_{ij}` or :math:`u_i \le h_{\ell_i j}` (triangle inequality), and a sample is
skipped entirely when :math:`u_i \le s_{\ell_i}`. After the centres move by
:math:`\delta_j`, :math:`u_i \mathrel{+}= \delta_{\ell_i}` and
:math:`l_{ij} \leftarrow \max(l_{ij} - \delta_j, 0)`. Distances are the direct
:math:`\sqrt{\sum_l (x_{il} - c_{jl})^2}` in the input dtype, summed four
features at a time in scikit-learn's order, so that labels agree on ties. (The
Cython kernels compute them a vector of centres at a time, each lane in that
order: the same bits.)

How the compiled Lloyd kernels rank quickly and still give those labels
(:func:`ranking_margin`): scanning a row of the GEMM output for its minimum is
as slow as the GEMM itself, so they rank a block of rows at once, rows along
the vector lanes (``products_t`` is k x rows), in float32 (twice the lanes of
float64; the test below says when that is not precise enough), and keep the
best and second-best values of each row. The rank values :math:`\tilde d_{ij}` and
scikit-learn's :math:`d_{ij}` are both within a rounding bound :math:`E_i` of
the same exact value, so when the gap between second and best exceeds
:math:`2 E_i` of each side the label is certain. Rows that fail that test (a
few per million on typical data; every exact tie) get the exact values from
scikit-learn's own GEMM on the block and its first-minimum scan. The labels
are therefore scikit-learn's, whatever the ranking precision. The exact path
costs scikit-learn's GEMM on the whole block, so a stripe where more than half
of the first ``RANK_SWITCH`` or more blocks needed it (data far from the
origin, many features, centres float32 cannot separate) takes the exact path
for every row from then on, as it does from the start where ranking cannot
pay (:func:`rank_path`, which also picks how a block is ranked, by shape).
At 128 features and more with few centres, the Cython kernel ranks float64
data in float64 with dot products of its own vector code instead
(``RANK_SIMD``; the same margin test with float64's rounding).

Every backend splits the samples into ``n_stripes(n, k, d)`` contiguous stripes
(a number that depends on the data shape only, never on the thread count),
accumulates each stripe in its own float64 buffer, and adds the stripes in
order: the results do not depend on the number of threads.

This reference builds (n x k) distance matrices; the Numba and Cython kernels
work in blocks of ``BLOCK_ROWS`` samples and never hold more than a block.
"""

import numpy as np

# Fastest first, as measured by benchmarks/test_bench_kmeans.py
# (1,000,000 x 16 blobs, 16 centres, 20 iterations, 2 cores, idle machine,
# median fit of 5): lloyd float64 numba 0.365 s, cython 0.415 s; float32 numba
# 0.302 s, cython 0.319 s; elkan float64 numba 0.829 s, cython 0.922 s.
#
# The Lloyd pass, off that point (issue 21; fit of 20 iterations from the same
# init, 2 threads, median of 3 rounds interleaved with scikit-learn, machine
# shared with other jobs, ratio to scikit-learn float64 / float32): 500,000 x 2,
# k=8: cython 0.82 / 0.69, numba 1.31 / 1.51; 200,000 x 64, k=8: 0.85 / 0.69,
# 1.08 / 1.12; 100,000 x 128, k=64: 0.63 / 0.87, 0.81 / 1.15; 200,000 x 16,
# k=256: 0.51 / 0.70, 0.54 / 0.70; and 1,000,000 x 16, k=16 (float64): 0.83,
# 0.96. Cython is first: never slower there, and at most 12% slower at the
# benchmark point on the idle machine. How each backend ranks a block depends
# on the shape: rank_path below, with its measurements. Elkan the same way (fit
# of 20 iterations, ratio float64 / float32): 200,000 x 2, k=8: cython 0.92 /
# 0.77, numba 14.6 / 3.9; 100,000 x 64, k=8: 0.85 / 0.76, 1.47 / 1.57;
# 100,000 x 16, k=64: 0.80 / 0.88, 1.85 / 2.57 (Numba's threads suffer most
# from a busy machine): Cython first as well. At 128 features and more with fewer
# than 64 centres, float64 Lloyd passes in the Cython kernel rank with vector code of
# their own (RANK_SIMD, issue 21: 50,000 x 256, k=16, 0.67x scikit-learn's fit
# against 0.93x before, 1 thread): the rule and its measurements are rank_path's.
# Elkan in Cython computes a row's distances a vector of centres at a time (8 float64
# or 16 float32 with AVX-512, each lane scikit-learn's scalar arithmetic, so the same
# bits) when the first of them is needed. Fits of 10 iterations from the first k
# rows, 1 thread, CPU time, median of 4, machine shared, ratio to scikit-learn with /
# without: 50,000 x 256, k=16: 0.92 / 1.17 (float64), 1.00 / 1.35 (float32); 50,000 x
# 64, k=16: 0.83 / 1.04, 0.84 / 1.08; 200,000 x 2, k=8: 0.92 / 0.97, 0.86 / 0.91;
# 50,000 x 16, k=128: 0.89 / 1.04, 0.82 / 0.98. Its passes then keep per-stripe sums
# with their labels (kmeans_elkan_iter's ``state``) and move only the changed rows, so the
# rows the bounds skip are not read at all: 50,000 x 256, k=16: 0.67 (float64) and 0.72
# (float32); 50,000 x 64, k=16: 0.84, 0.87; 200,000 x 2, k=8: 0.90, 0.84; 50,000 x 16,
# k=128: 0.94, 0.84 (same conditions). With up to 127 features and 8 to 16 centres
# (float32 data: up to 32 features, 12 to 16 centres) and AVX-512, Cython's Lloyd passes
# rank with the centres along the lanes of one vector, no GEMM (RANK_LANES, issue 21's sweep:
# whole fits 0.50x-0.59x scikit-learn's at d = 16 in float64, 0.67x in float32, 0.56x at
# d = 64, against 0.72x-0.85x before, 1 thread): the rule and its measurements are rank_path's.
AUTO_BACKEND_ORDER = {
    "kmeans_lloyd_iter": ("cython", "numba", "numpy"),
    "kmeans_elkan_init": ("cython", "numba", "numpy"),
    "kmeans_elkan_iter": ("cython", "numba", "numpy"),
    # (16 features, k=16, 1 thread, CPU time, median, machine shared: 10,000 rows cython 36 us,
    # numba 95 us; 50,000: 157 / 437; 200,000: 1.06 / 1.95 ms; 1,000,000: 4.2 / 8.6 ms;
    # 2 threads, wall, OMP_WAIT_POLICY=passive: 43 / 108 us, 187 / 611 us, 3.7 / 8.4 ms,
    # 20 / 32 ms. Same arithmetic, so the same bits. The fit calls it once, after
    # converging; issue 21's small-n points.)
    "kmeans_inertia": ("cython", "numba", "numpy"),
    # (1,000,000 x 16 float64, centring with the variances: numba 39 ms, cython 46 ms,
    # numpy 187 ms; without: 31 ms, 25 ms, 73 ms)
    "kmeans_center": ("numba", "cython", "numpy"),
}

# The compiled kernels take these constants at build time (Cython checks them at import);
# Numba's cache keys on kmeans_numba.py only: touch it after changing one here.
BLOCK_ROWS = 256            # samples per GEMM block (scikit-learn's chunk) in the compiled kernels
RANK_SWITCH = 4             # blocks ranked before a stripe may give up ranking
RANK_MAX_FEATURES = 32      # more features: no transposed ranking (see rank_path)
# How the Cython Lloyd kernel ranks a block (rank_path): not at all (the exact path),
# products without a GEMM, transposed block and one GEMM, rows as stored and one GEMM,
# products in the data's dtype by vector code of our own (AVX2 or AVX-512, no BLAS), or
# float32 products with the centres along the lanes of one AVX-512 vector (RANK_LANES below).
RANK_EXACT, RANK_DIRECT, RANK_TRANSPOSED, RANK_ROWS, RANK_SIMD = 0, 1, 2, 3, 4
RANK_DIRECT_MAX_FEATURES = 2   # this many features or fewer: RANK_DIRECT
RANK_ROWS_MIN_CLUSTERS = 64    # more than RANK_MAX_FEATURES features: RANK_ROWS from this many centres
RANK_COPY_MAX_FEATURES = 128   # float64 fits: a float32 copy of X for RANK_ROWS below this (rank_path)
RANK_MIN_CLUSTERS = 16         # more than RANK_DIRECT_MAX_FEATURES features, fewer centres: exact path
RANK_SIMD_MIN_FEATURES = 128   # this many features or more, fewer than RANK_ROWS_MIN_CLUSTERS centres: RANK_SIMD
RANK_LANES = 5                 # float32 products by vector code with the centres along the lanes (rank_path)
RANK_LANES_MAX_CLUSTERS = 16   # the lanes of one AVX-512 float32 vector (Cython's LANES)
RANK_LANES_MIN_CLUSTERS = 8    # RANK_LANES from this many centres (fewer: the exact path, see rank_path)
RANK_LANES_F32_MIN_CLUSTERS = 12  # the same for float32 data
RANK_LANES_MAX_FEATURES = 127  # and with up to this many features (from 128, RANK_SIMD)
RANK_LANES_F32_MAX_FEATURES = 32  # the same for float32 data
MAX_STRIPES = 64            # float64 partial-sum buffers per call, at most
STRIPE_BUFFER_BYTES = 1 << 26  # and at most this much memory for them


def n_stripes(n_samples, n_clusters, n_features):
    """Number of partial-sum stripes: a function of the data shape only.

    Each stripe owns a (k x d) float64 sum buffer; stripes are reduced in
    order, so the floating-point result is the same whatever the number of
    threads that processed them.
    """
    n_blocks = max(1, -(-n_samples // BLOCK_ROWS))
    by_memory = max(1, STRIPE_BUFFER_BYTES // (8 * (n_clusters * (n_features + 1) + 1)))
    return int(min(n_blocks, MAX_STRIPES, by_memory))


def stripe_bounds(n_samples, n_stripes_):
    """Start of each stripe (length ``n_stripes_ + 1``), aligned on ``BLOCK_ROWS``."""
    n_blocks = max(1, -(-n_samples // BLOCK_ROWS))
    block_starts = (np.arange(n_stripes_ + 1) * n_blocks) // n_stripes_
    return np.minimum(block_starts * BLOCK_ROWS, n_samples).astype(np.intp)


def rank_copy_pays(n_features, n_clusters, dtype):
    """Whether ``fit`` hands the compiled Lloyd kernels a float32 copy of X (see :func:`rank_path`)."""
    return (np.dtype(dtype) == np.float64 and RANK_MAX_FEATURES < n_features
            and (n_features < RANK_COPY_MAX_FEATURES or n_clusters >= RANK_ROWS_MIN_CLUSTERS))


def simd_pays(n_features, n_clusters, dtype=np.float64):
    """Whether the Cython Lloyd kernel ranks on ``RANK_SIMD`` when the CPU has AVX2 or AVX-512 (see :func:`rank_path`)."""
    if n_features < RANK_SIMD_MIN_FEATURES or n_clusters >= RANK_ROWS_MIN_CLUSTERS:
        return False
    return np.dtype(dtype) == np.float64


def lanes_pays(n_features, n_clusters, dtype=np.float64):
    """Whether the Cython Lloyd kernel ranks on ``RANK_LANES`` when the CPU has AVX-512 (see :func:`rank_path`)."""
    if np.dtype(dtype) == np.float32:
        fewest, widest = RANK_LANES_F32_MIN_CLUSTERS, RANK_LANES_F32_MAX_FEATURES
    else:
        fewest, widest = RANK_LANES_MIN_CLUSTERS, RANK_LANES_MAX_FEATURES
    return n_features <= widest and fewest <= n_clusters <= RANK_LANES_MAX_CLUSTERS


def rank_path(n_features, n_clusters, dtype=np.float64, with_copy=False, simd=False, lanes=False):
    """How the compiled Lloyd kernels rank a block: the shape rule, from measurement.

    Ranking saves scikit-learn's row-by-row scan of the centres; it costs a
    float32 copy of each block (transposed: about a cycle per feature and
    row) and its margin grows with the number of features. Measured before
    per pass (2 threads, one float32 rank against the exact path): 0.4-0.8x
    the time with 2 to 32 features, 1.3-3.9x with 64 to 300 and the
    transposed copy, whence ``RANK_MAX_FEATURES``.

    Whatever the path, the labels are scikit-learn's (the margin test of
    :func:`ranking_margin` holds for any summation order); only the time
    differs. One Lloyd pass with the labels already settled, one thread, best
    of 15 to 21 runs, time over scikit-learn's ``lloyd_iter_chunked_dense``
    (machine shared with other jobs, float64 / float32):

    - d = 2: products without a GEMM (``RANK_DIRECT``) 1.01 / 0.95 (k=8),
      0.55 (k=64), 0.38 (k=256); the transposed block and a GEMM 1.14 / 1.09,
      0.55, 0.46. With 4 and 8 features the GEMM is as fast or faster
      (d=4, k=128: 0.55 against 0.40; d=8, k=32: 0.96 against 0.73).
    - 2 < d <= 32: ``RANK_TRANSPOSED`` (d=8, k=64: 0.68 / 0.86; d=16, k=16:
      0.94 against 0.99 exact), as measured before.
    - d > 32: ranking pays only with many centres, and then without the
      transposed copy (``RANK_ROWS``): d=128, k=64: 0.08 / 0.12 against 0.46 /
      0.11 exact; d=256, k=256: 0.27 / 0.31 against 0.47 / 0.29; but d=64,
      k=16: 0.90 / 1.48 against 0.85 / 0.87, d=128, k=8: 0.94 / 1.79 against
      0.71 / 0.76: the exact path below ``RANK_ROWS_MIN_CLUSTERS`` centres.

    - float32 data, more than 2 features, fewer than ``RANK_ROWS_MIN_CLUSTERS``
      centres: the exact path (its GEMM is float32 already; ranking only
      saves the scan). Whole fits, 20 iterations, 2 threads, median of 3-5:
      1,000,000 x 16, k=16: exact 0.81, transposed 0.94, rows 0.94; 300,000 x
      8, k=8: 0.50, 0.67, 0.74; 300,000 x 4, k=32: 0.67, 0.73; but 200,000 x
      16, k=64: 0.85, 0.74, 0.87; 100,000 x 16, k=256: 0.60, 0.57; and at
      d=2 (500,000 x 2, k=8) direct 0.76 against exact 0.83.

    - float64 data with more than ``RANK_MAX_FEATURES`` features, when
      ``fit`` hands the kernels a float32 copy of X made once
      (``with_copy``, :func:`rank_copy_pays`): ``RANK_ROWS`` on the copy
      (half the bytes per pass, nothing converted per block) below
      ``RANK_COPY_MAX_FEATURES`` features, and from ``RANK_ROWS_MIN_CLUSTERS``
      centres at any width. One pass, labels settled, 1 thread, CPU time
      (machine shared), median of 7, 50,000 blobs, over scikit-learn's pass:
      k=16: d=64 0.62 (copy) against 0.88-0.92 (exact) and 0.71 (rows
      converted per block); d=96 0.56 / 0.89 / 0.70; d=160 0.73 / 0.90 /
      0.81; but d=128 0.90 / 0.90 / 0.92 and d=256 1.21 / 0.88 / 1.19 (the
      float32 GEMM is no faster there in either orientation, padded rows or
      not): the exact path at 128 features and more with few centres. k=128:
      d=64 0.55 / 0.95 / 0.58, d=256 0.74 / 0.96 / 0.78. The copy costs a
      read of X and 4 bytes per value (fit only; predict converts per block).

    - float64, 2 < d <= 32, from ``RANK_MIN_CLUSTERS`` centres:
      ``RANK_ROWS`` (the block converted to float32 as stored, one GEMM)
      rather than ``RANK_TRANSPOSED``. Per pass (1 thread, CPU time, median of
      9, two runs each, rows / transposed): 50,000 x 16, k=16: 0.87-0.88 /
      0.98-0.99; 10,000 x 16, k=16: 0.91 / 0.96-0.98; 50,000 x 4, k=16:
      0.82-0.85 / 0.86-0.87; 50,000 x 32, k=16: 0.89 / 0.92; equal at k=64
      to 1024 (d=8, k=64: 0.62 / 0.63; d=16, k=128: 0.57 / 0.58; k=1024:
      0.47 / 0.47); 200,000 x 16, k=16: 0.77-0.80 / 0.74-0.76. Float32 data
      keep the transposed block (not measured again).
    - fewer than ``RANK_MIN_CLUSTERS`` centres (more than 2 features): the
      exact path; the scan it saves is a few values per row and the float32
      block costs more. Per pass as above (1 thread, CPU time, median of 7):
      d=16: k=2 exact 0.81 against transposed 1.10, k=4 0.87 / 1.28, k=8
      0.90 / 1.13, but k=16 0.88 / 0.90 and k=32 0.98 / 0.75; d=32: k=8
      0.82 / 0.91, k=16 0.90 / 0.79; d=8, k=8 and d=4, k=2: equal within
      the noise (1.00 / 1.04, 1.08 / 1.04).

    - float64 data with ``RANK_SIMD_MIN_FEATURES`` (128) features or more and
      fewer than ``RANK_ROWS_MIN_CLUSTERS`` centres, when the CPU has AVX2 or
      AVX-512 (``simd``; the Cython kernel's ``SIMD_LEVEL``): ``RANK_SIMD``,
      the products in float64 by vector code of our own (no BLAS, no copy;
      the margin test of :func:`ranking_margin` in float64 sends only exact
      and near ties to the exact GEMM). Why: at d = 256, k = 16 (issue 21's
      sweep point, 50,000 blobs) a float64 pass reads 102 MB (2.6 ms at the
      39 GB/s one Zen 5 core streams) and does 0.41 GFLOP (5.5 ms at 74
      GFLOP/s, our AVX-512 tiles on a block in cache), but OpenBLAS picks its
      Haswell (AVX2) kernels on this CPU and packs each 256-row block of X
      before a GEMM whose other side has only k = 16 columns: scikit-learn's
      pass took 16.6 ms, the exact path 14.5 ms (1 thread, wall, machine
      shared), compute-bound, not memory-bound. X is read from memory once
      per pass either way (the GEMM's packing, then the scan and the sums of
      changed rows on the block while it is in L2: a 256 x 256 float64 block
      is 512 kB, half of L2). Reading each block in order first (the rows'
      norms) before the 4 x 4 tiles: 8.3 ms against 11.3 ms when the tiles
      read it from memory; software prefetching was slower. Per pass, labels
      settled, 1 thread, CPU time, min of 9, exact against ``RANK_SIMD``:
      d=256: k=2 10.0 / 5.3 ms, k=8 11.2 / 6.6, k=32 21.4 / 13.9, k=48
      27.2 / 18.4; d=128: k=2 5.4 / 2.8, k=8 6.5 / 4.1, k=32 11.9 / 9.4,
      k=48 15.1 / 13.3; d=64: k=8 3.6 / 2.9, k=48 9.4 / 9.7. Whole fits (10
      iterations from the first 16 rows, 50,000 blobs, k=16, 1 thread, CPU
      time, median of 5, over scikit-learn's): d=256 0.67 against 0.93
      before, d=128 0.69 against 0.92; at d=64 the float32 copy
      (``RANK_ROWS``) stays: 0.70, where RANK_SIMD measured 0.89 against its
      0.68 (2 threads, wall, busy machine). Float32 data keep the exact path:
      fits at d=64/128/256 took 1.0x/1.01x/1.06x scikit-learn's with
      RANK_SIMD against 0.95x/0.95x/0.96x exact; float32's margin is wide
      enough that two centres in one blob leave uncertain rows in nearly
      every block, which then pay for both the ranking and the GEMM.

    - Float64 data with up to ``RANK_LANES_MAX_FEATURES`` (127) features
      and ``RANK_LANES_MIN_CLUSTERS`` (8) to 16 centres, float32 data with up
      to ``RANK_LANES_F32_MAX_FEATURES`` (32) and
      ``RANK_LANES_F32_MIN_CLUSTERS`` (12) to 16, when the CPU has AVX-512
      (``lanes``; the Cython kernel's ``SIMD_LEVEL`` 2): ``RANK_LANES``, the
      float32 products by vector code of our own with the 16 centres along
      the lanes of one register (four rows at a time), fused with the
      ranking: no GEMM, no products buffer (float64 blocks converted to
      float32 as for ``RANK_ROWS``, or read from the fit's float32 copy when
      :func:`rank_copy_pays`). Why: at d = 16, k = 16 (issue 21's sweep base
      point) about a quarter of a ``RANK_ROWS`` pass went into OpenBLAS's
      sgemm on each 256-row block, half of it packing (``perf``), and 12%
      into the scan of its products.

      Per pass, labels settled, 1 thread, CPU time, median of 30, two runs,
      ``RANK_LANES`` over the path before (machine shared). Float64: d=16,
      k=16 0.58-0.59 (10,000 rows) and 0.53-0.54 (50,000; ``RANK_ROWS``
      before); 50,000 rows: d=4, k=16 0.63-0.65; d=8, k=16 0.56; d=32, k=16
      0.53-0.55; d=16, k=12 0.66 (the exact path before); k=8: d=4 0.74, d=8
      0.77-0.78, d=16 0.81, d=32 0.66-0.69; but d=16, k=4 1.05-1.06. With 1
      or 2 features, against ``RANK_DIRECT``: d=2, k=16 0.58-0.61; d=2, k=8
      0.83-0.84; d=1, k=16 0.64-0.67 (float32: 0.60; k=12 0.71-0.72; d=1
      0.67), so ``RANK_DIRECT`` keeps only more than 16 centres. Float32 data
      (their exact path is a float32 GEMM already): d=16, k=16 0.76-0.78;
      d=4, k=16 0.63-0.64; d=32, k=16 0.88-0.90; d=16, k=12 0.53-0.80; but
      d=8, k=8 0.99-1.01. The AVX2 version (two 8-lane registers, one row at
      a time) measured 0.75-0.88 at d=16, k=16 but 0.95-1.40 elsewhere:
      AVX-512 only.

      Whole fits (10 iterations from the first k rows, 1 thread, CPU time,
      median of 5-7, 50,000 rows unless stated, over scikit-learn's, before
      / now): k=16: float64 d=16 0.85 / 0.50, 10,000 x 16 0.83 / 0.58,
      200,000 x 16 0.71 / 0.49, d=4 0.69 / 0.53; float32 d=16 0.83 / 0.67;
      float64 on the fit's float32 copy (``RANK_ROWS`` on it before): d=64
      0.72 / 0.53, d=96 0.76 / 0.62, d=127 0.85 / 0.75; k=8 (the exact path
      before): d=64 0.83 / 0.73, d=96 0.91 / 0.80. Labels equal the NumPy
      reference's and scikit-learn's in every case measured.

    The Numba kernel takes the same paths except ``RANK_SIMD`` and
    ``RANK_LANES`` (it calls this with ``simd=False``, ``lanes=False``);
    measured the same way it agrees
    (d=2, k=256: 0.22 / 0.23 direct against 0.19 / 0.28; d=256, k=256:
    0.20 against 0.35 exact in float64), within the noise elsewhere.
    """
    if n_clusters <= 1:
        return RANK_EXACT
    if simd and simd_pays(n_features, n_clusters, dtype):
        return RANK_SIMD
    if lanes and lanes_pays(n_features, n_clusters, dtype):
        return RANK_LANES
    if with_copy and rank_copy_pays(n_features, n_clusters, dtype):
        return RANK_ROWS
    if n_features <= RANK_DIRECT_MAX_FEATURES:
        return RANK_DIRECT
    if n_clusters < RANK_MIN_CLUSTERS:
        return RANK_EXACT  # a short scan: too little for ranking to save
    if np.dtype(dtype) == np.float32 and n_clusters < RANK_ROWS_MIN_CLUSTERS:
        return RANK_EXACT  # float32 data: the exact GEMM is float32 already
    if n_features <= RANK_MAX_FEATURES:
        # float64: the rows converted as stored (no transposition) rank faster, see above
        return RANK_ROWS if np.dtype(dtype) == np.float64 else RANK_TRANSPOSED
    return RANK_ROWS if n_clusters >= RANK_ROWS_MIN_CLUSTERS else RANK_EXACT


def ranking_margin(n_features, centers_sq_norms, dtype=np.float32):
    r"""Coefficients ``(a, b, x_sq_limit)``: a row's label is certain when its gap exceeds ``a ||x|| + b``.

    The compiled Lloyd kernels rank with :math:`\tilde d_j = \tilde N_j - 2
    \tilde p_j` computed in float32 (unit roundoff :math:`u = 2^{-24}`, data
    and centres rounded to it, any summation order), scikit-learn with
    :math:`d_j = N_j - 2 p_j` in the data dtype (unit roundoff at most
    :math:`u`). With :math:`C^2 = \max_j N_j` and :math:`S_j = \sum_l |x_l
    c_{jl}| \le \lVert x \rVert C`, the standard dot-product bound gives,
    against the exact :math:`N_j - 2 x \cdot c_j`,

    .. math::

        |\tilde d_j - e_j| \le u (2 N_j + (2d + 6) S_j), \qquad
        |d_j - e_j| \le u (N_j + (2d + 2) S_j).

    If the computed second-best minus best exceeds the sum of both bounds for
    the two centres, :math:`u (6 C^2 + (8d + 16) \lVert x \rVert C)`, every
    other centre is strictly farther in scikit-learn's arithmetic too. The
    margin returned is 4/3 of that (for the second-order terms and the
    rounding of the norms themselves), plus a term for gradual underflow
    (absolute error of the smallest subnormal per rounding).

    ``x_sq_limit``: rows with :math:`\lVert x \rVert^2` above it (or centres
    with norms above its root) could overflow float32; they always
    take the exact path (``a = inf`` for huge centres).

    ``dtype`` is the ranking dtype: float32 for the float32 ranking paths;
    float64 for ``RANK_SIMD`` on float64 data, where :math:`u = 2^{-53}` on
    both sides (scikit-learn's float64 GEMM and our float64 dot products)
    and the overflow limit is 1e100.
    """
    info = np.finfo(dtype)
    unit = float(info.eps) / 2
    subnormal = float(info.smallest_subnormal)
    # |x|, |c| below it: products and sums stay far from float32's 3.4e38 (float64's 1.8e308)
    limit = 1e15 if info.bits == 32 else 1e100
    c_max = float(np.sqrt(max(float(np.max(centers_sq_norms)), 0.0)))
    if not c_max <= limit:
        return np.inf, np.inf, 0.0
    roundings = 16 * n_features + 16
    a = unit * (12 * n_features + 24) * c_max + roundings * subnormal
    b = unit * 8 * c_max * c_max + roundings * subnormal * (1 + c_max)
    return a, b, limit * limit


def lloyd_state(n_samples, n_clusters, n_features):
    """The empty Lloyd state: ``(labels, stripe_sums, stripe_weights)``, labels -1 and sums 0."""
    stripes = n_stripes(n_samples, n_clusters, n_features)
    return (np.full(n_samples, -1, dtype=np.intp), np.zeros((stripes, n_clusters, n_features)),
            np.zeros((stripes, n_clusters)))


def _accumulate(X, sample_weight, labels, starts, n_clusters, out_stripe_sums, out_stripe_weights):
    """S_j and W_j (float64) of each stripe."""
    for s in range(starts.shape[0] - 1):
        rows = slice(starts[s], starts[s + 1])
        weights = sample_weight[rows].astype(np.float64)
        out_stripe_weights[s] = np.bincount(labels[rows], weights=weights, minlength=n_clusters)
        for l in range(X.shape[1]):
            out_stripe_sums[s, :, l] = np.bincount(labels[rows], weights=weights * X[rows, l],
                                                   minlength=n_clusters)


def _reduce_stripes(stripe_sums, stripe_weights, out_sums, out_weights):
    """Add the stripes in order (the result does not depend on the thread count)."""
    out_sums[:] = 0.0
    out_weights[:] = 0.0
    for s in range(stripe_sums.shape[0]):
        out_sums += stripe_sums[s]
        out_weights += stripe_weights[s]


def _weighted_inertia(X, sample_weight, centers, labels, starts):
    """sum_i w_i ||x_i - c_{l_i}||^2 in float64, stripe by stripe."""
    diff = X.astype(np.float64) - centers.astype(np.float64)[labels]
    per_sample = np.einsum("ij,ij->i", diff, diff) * sample_weight
    return sum(per_sample[starts[s]:starts[s + 1]].sum() for s in range(starts.shape[0] - 1))


def kmeans_lloyd_iter(X, sample_weight, centers, centers_sq_norms, with_inertia, labels,
                      stripe_sums, stripe_weights, out_sums, out_weights, out_inertia,
                      out_n_changed, n_threads, X_rank=None, x_sq_norms=None):
    r"""One fused Lloyd pass: labels, per-cluster weighted sums and weights, inertia.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous
    sample_weight : ndarray of shape (n,), same dtype
    centers : ndarray of shape (k, d), same dtype
    centers_sq_norms : ndarray of shape (k,), same dtype
        ``np.einsum("ij,ij->i", centers, centers)`` (as scikit-learn's row_norms).
    with_inertia : bool
        Whether to compute the inertia (one distance per sample).
    labels : ndarray of shape (n,), intp
        Read (the labels of the previous pass, -1 where none), then written:
        index of the nearest centre (ties to the smaller index).
    stripe_sums : ndarray of shape (n_stripes(n, k, d), k, d), float64
        Read and written: :math:`S_j` of each stripe for ``labels`` (on entry,
        the sums of the labels on entry: all zeros when they are all -1, as
        :func:`lloyd_state` makes them).
    stripe_weights : ndarray of shape (n_stripes(n, k, d), k), float64
        Read and written: :math:`W_j` of each stripe, likewise.
    out_sums : ndarray of shape (k, d), float64
        Written: :math:`S_j = \sum_{\ell_i = j} w_i x_i`.
    out_weights : ndarray of shape (k,), float64
        Written: :math:`W_j = \sum_{\ell_i = j} w_i`.
    out_inertia : ndarray of shape (1,), float64
        Written: :math:`\sum_i w_i \lVert x_i - c_{\ell_i} \rVert^2`, or 0 if not
        ``with_inertia``.
    out_n_changed : ndarray of shape (1,), intp
        Written: how many labels differ from ``labels`` on entry (the caller's
        test of strict convergence, without a second pass).
    n_threads : int
        Ignored (NumPy runs its own BLAS threads).
    X_rank : ndarray of shape (n, d), float32, optional
        ``X.astype(np.float32)``, made once per fit where :func:`rank_copy_pays`
        (float64 data, more than ``RANK_MAX_FEATURES`` features): the compiled
        kernels then rank on it (``RANK_ROWS``) without converting a block per
        pass. Ignored here (the reference computes every value exactly).
    x_sq_norms : ndarray of shape (n,), float64, optional
        :math:`\lVert x_i \rVert^2`, given with ``X_rank`` (for the margin test).
    """
    n_clusters = centers.shape[0]
    # The (n x k) matrix ||c_j||^2 - 2 x_i . c_j (the reference may build it), one GEMM
    # per BLOCK_ROWS rows as scikit-learn: BLAS may sum a product in another order when the
    # matrices are larger (float32 digits: 9 labels of 1797 differed with one GEMM).
    products = np.empty((X.shape[0], n_clusters), dtype=X.dtype)
    for start in range(0, X.shape[0], BLOCK_ROWS):
        np.matmul(X[start:start + BLOCK_ROWS], centers.T, out=products[start:start + BLOCK_ROWS])
    partial_distances = centers_sq_norms[None, :] - 2 * products
    nearest = np.argmin(partial_distances, axis=1)  # first minimum: smaller index
    out_n_changed[0] = np.count_nonzero(nearest != labels)
    labels[:] = nearest
    starts = stripe_bounds(X.shape[0], stripe_sums.shape[0])
    _accumulate(X, sample_weight, labels, starts, n_clusters, stripe_sums, stripe_weights)
    _reduce_stripes(stripe_sums, stripe_weights, out_sums, out_weights)
    out_inertia[0] = _weighted_inertia(X, sample_weight, centers, labels, starts) if with_inertia else 0.0


def kmeans_center(X, with_variance, out_centred, out_mean, out_variance, n_threads):
    r"""Column means, the centred data and (optionally) the column variances, as NumPy computes them.

    ``fit`` centres the data before iterating, as scikit-learn does, and its
    tolerance is relative to the mean column variance; the labels must be
    those of scikit-learn on the *same* centred numbers, so the compiled
    kernels reproduce NumPy's arithmetic bit for bit:

    .. math::

        \bar x_l = \Big(\sum_{i=1}^{n} x_{il}\Big) / n, \qquad
        x_{il} \leftarrow x_{il} - \bar x_l, \qquad
        \sigma_l^2 = \Big(\sum_{i=1}^{n} (x_{il} - \bar x_l)^2\Big) / n,

    each sum accumulated row after row in the input dtype (NumPy's reduction
    over axis 0 of a C-ordered array), which is what ``X.mean(axis=0)`` and
    ``np.var(X, axis=0)`` return.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous
    with_variance : bool
        Whether to compute ``out_variance`` (else it is left as it is).
    out_centred : ndarray of shape (n, d), same dtype
        Written: ``X - out_mean``. May be ``X`` itself (centring in place).
    out_mean : ndarray of shape (d,), same dtype
    out_variance : ndarray of shape (d,), same dtype
    n_threads : int
        Ignored.
    """
    out_mean[:] = X.mean(axis=0)
    if with_variance:
        out_variance[:] = np.var(X, axis=0)  # before X may be overwritten
    np.subtract(X, out_mean, out=out_centred)


def kmeans_inertia(X, sample_weight, centers, labels, out_inertia, n_threads):
    r"""Inertia of given labels: :math:`\sum_i w_i \lVert x_i - c_{\ell_i} \rVert^2` (float64).

    Parameters
    ----------
    X, sample_weight, centers : as :func:`kmeans_lloyd_iter`
    labels : ndarray of shape (n,), intp
    out_inertia : ndarray of shape (1,), float64
    n_threads : int
        Ignored.
    """
    starts = stripe_bounds(X.shape[0], n_stripes(X.shape[0], centers.shape[0], X.shape[1]))
    out_inertia[0] = _weighted_inertia(X, sample_weight, centers, labels, starts)


def elkan_distances(X, centers):
    r"""Direct distances :math:`\sqrt{\sum_l (x_{il} - c_{jl})^2}` (n x k), input dtype.

    Summed as scikit-learn's ``_euclidean_dense_dense``: groups of four
    features ``((t_0 + t_1) + t_2) + t_3`` added to the running total in
    order, then the remaining features one by one. One centre at a time
    (an n x d temporary).
    """
    n_features = X.shape[1]
    n_groups = n_features // 4
    distances = np.empty((X.shape[0], centers.shape[0]), dtype=X.dtype)
    for j in range(centers.shape[0]):
        squares = (X - centers[j]) ** 2
        total = np.zeros(X.shape[0], dtype=X.dtype)
        for g in range(n_groups):
            t = squares[:, 4 * g:4 * g + 4]
            total += ((t[:, 0] + t[:, 1]) + t[:, 2]) + t[:, 3]
        for l in range(4 * n_groups, n_features):
            total += squares[:, l]
        distances[:, j] = np.sqrt(total)
    return distances


def kmeans_elkan_init(X, centers, center_half_distances, out_labels, out_upper, out_lower, n_threads):
    """Initial Elkan assignment and bounds.

    Scans the centres in order, computing the distance to centre j only when
    the current best distance exceeds :math:`h_{best,j}`; computed distances
    are the lower bounds, the best one the upper bound.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
    centers : ndarray of shape (k, d), same dtype
    center_half_distances : ndarray of shape (k, k), same dtype
    out_labels : ndarray of shape (n,), intp
    out_upper : ndarray of shape (n,), same dtype as X
    out_lower : ndarray of shape (n, k), same dtype as X
        Written where a distance was computed; the caller zeroes it first.
    n_threads : int
        Ignored.
    """
    distances = elkan_distances(X, centers)  # all of them; only some are "computed"
    best = np.zeros(X.shape[0], dtype=np.intp)
    min_dist = distances[:, 0].copy()
    out_lower[:, 0] = min_dist
    for j in range(1, centers.shape[0]):
        computed = min_dist > center_half_distances[best, j]
        out_lower[computed, j] = distances[computed, j]
        closer = computed & (distances[:, j] < min_dist)
        min_dist[closer] = distances[closer, j]
        best[closer] = j
    out_labels[:] = best
    out_upper[:] = min_dist


def elkan_reassign(distances, center_half_distances, distance_next_center, center_shift, labels,
                   upper, lower):
    """Elkan's bound tests and reassignment, given every exact sample-centre distance.

    Shifts the bounds by the centres' last move, then, where the bounds cannot
    rule a centre out, tightens the upper bound once and compares; writes
    ``labels``, ``upper`` and ``lower`` in place. The readable reference of the
    dense and the sparse Elkan passes (which differ only in how ``distances``
    are computed); the compiled kernels compute a distance only when a test
    needs it.
    """
    # Bound update for the centres' last move (before this pass).
    upper += center_shift[labels]
    lower -= center_shift[None, :]
    np.maximum(lower, lower.dtype.type(0), out=lower)

    rows = np.arange(distances.shape[0])
    label = labels.copy()
    bound = upper.copy()
    # Samples whose nearest other centre may be closer than the assigned one.
    active = ~(distance_next_center[label] >= bound)
    tight = np.zeros(distances.shape[0], dtype=bool)
    for j in range(distances.shape[1]):
        candidate = (active & (j != label) & (bound > lower[:, j])
                     & (bound > center_half_distances[label, j]))
        # Tighten the upper bound (once per sample) with the exact distance.
        tighten = candidate & ~tight
        bound[tighten] = distances[rows[tighten], label[tighten]]
        lower[rows[tighten], label[tighten]] = bound[tighten]
        tight |= tighten
        compute = candidate & ((bound > lower[:, j]) | (bound > center_half_distances[label, j]))
        lower[compute, j] = distances[compute, j]
        closer = compute & (distances[:, j] < bound)
        label[closer] = j
        bound[closer] = distances[closer, j]
    labels[active] = label[active]
    upper[active] = bound[active]


def kmeans_elkan_iter(X, sample_weight, centers, center_half_distances, distance_next_center,
                      center_shift, labels, upper, lower, out_sums, out_weights, n_threads,
                      state=None):
    r"""One Elkan pass: shift the bounds, reassign where the bounds allow, accumulate.

    Parameters
    ----------
    X, sample_weight, centers : as :func:`kmeans_lloyd_iter`
    center_half_distances : ndarray of shape (k, k), same dtype
        :math:`h_{jj'}` for the current ``centers``.
    distance_next_center : ndarray of shape (k,), same dtype
        :math:`s_j`, the smallest :math:`h_{jj'}` over :math:`j' \ne j`.
    center_shift : ndarray of shape (k,), same dtype
        :math:`\delta_j`, how far each centre moved since the bounds were last
        updated (zeros on the first pass); applied to the bounds first.
    labels : ndarray of shape (n,), intp
        Read and written.
    upper : ndarray of shape (n,), same dtype
        Read and written.
    lower : ndarray of shape (n, k), same dtype
        Read and written.
    out_sums, out_weights : as :func:`kmeans_lloyd_iter`
    n_threads : int
        Ignored.
    state : tuple ``(sum_labels, stripe_sums, stripe_weights)``, optional
        Read and written, as :func:`lloyd_state` makes it: the per-stripe
        sums and weights kept between passes with the labels they were made
        from (-1: none). The compiled kernels then move only the rows whose
        label changed (most rows' bounds skip them, so their rows of X are
        not even read); this reference recomputes the sums and records the
        labels. Without it every pass sums every row.
    """
    n_clusters = centers.shape[0]
    elkan_reassign(elkan_distances(X, centers), center_half_distances, distance_next_center,
                   center_shift, labels, upper, lower)
    stripes = n_stripes(X.shape[0], n_clusters, X.shape[1])
    if state is None:
        stripe_sums, stripe_weights = np.empty((stripes, n_clusters, X.shape[1])), np.empty((stripes, n_clusters))
    else:
        sum_labels, stripe_sums, stripe_weights = state
        sum_labels[:] = labels
    _accumulate(X, sample_weight, labels, stripe_bounds(X.shape[0], stripes), n_clusters,
                stripe_sums, stripe_weights)
    _reduce_stripes(stripe_sums, stripe_weights, out_sums, out_weights)
