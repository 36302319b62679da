# cython: language_level=3
r"""Prediction of a forest of binary trees: the Cython kernels.

As :mod:`tree_predict_numba`: rows in blocks of ``BLOCK``, OpenMP threads over
blocks; each block meets every tree in order, and each row's output is summed
over the trees in order, so the result does not depend on the number of
threads. The two children of a node are stored next to each other
(``right == left + 1``), so a step down the tree is ``left + (not go_left)``.
For raw data, the rows of a block walk down a tree in lockstep, one level per
pass (independent chains of loads that the CPU overlaps), and the nodes are
packed into 16-byte records: about 25% faster than one row at a time.

``predict_complete`` reads the complete layout of :mod:`tree_predict_numpy`
(slot ``k`` has children ``2k + 1`` and ``2k + 2``, a row goes right when
``x >= threshold`` or when ``x`` is NaN and bit 31 of the split is set): every
row of a block takes exactly the tree's depth in steps, with no child index to
load and no branch. Where the CPU has AVX-512 or AVX2 (asked at run time; the
module is built for any x86-64), 16 or 8 rows step at once: the splits and
thresholds of a tree's top levels (63 or 7 slots) sit in registers and are
picked by permutation, deeper ones and the rows' values are gathered
(``fs_complete_block_avx512``, ``fs_complete_block_avx2``); elsewhere, and for
the last, short block, the same steps run one row at a time. Each lane makes
the same comparisons and the same float64 additions in the same tree order as
the one-row loop, so every path gives the same bits.
"""

include "_common.pxi"
include "_boosting_common.pxi"
include "_constants_tree_predict.pxi"  # shared with tree_predict_numba (kernels/_constants.py)

import numpy as np
from cython.parallel cimport prange
from libc.math cimport isnan
from libc.stdint cimport int32_t


cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    #define FS_COMPLETE_BLOCK 64

    /* out[i * out_stride] += leaf value reached by row i of X (n <= 64 rows, row stride d)
       in one tree of the complete layout (split, threshold: its 2^depth - 1 internal slots;
       leaf: its 2^depth leaf slots). */
    static void fs_complete_block(const float* X, ptrdiff_t d, ptrdiff_t n,
                                  const int32_t* split, const float* threshold,
                                  const float* leaf, int depth,
                                  double* out, ptrdiff_t out_stride) {
        int32_t position[FS_COMPLETE_BLOCK];
        ptrdiff_t i;
        int level;
        for (i = 0; i < n; i++) position[i] = 0;
        for (level = 0; level < depth; level++) {
            for (i = 0; i < n; i++) {
                int32_t k = position[i];
                int32_t s = split[k];
                float x = X[i * d + (s & 0x7FFFFFFF)];
                int32_t right = (x >= threshold[k]) | ((x != x) & (s < 0));
                position[i] = 2 * k + 1 + right;
            }
        }
        leaf -= ((int32_t) 1 << depth) - 1;
        for (i = 0; i < n; i++) out[i * out_stride] += (double) leaf[position[i]];
    }

    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    /* 2: AVX-512 (F and DQ), 1: AVX2, 0: neither (the one-row loop). */
    static int fs_simd_level(void) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return 2;
        return __builtin_cpu_supports("avx2") ? 1 : 0;
    }

    /* fs_complete_block for a full block of 64 rows, eight rows per AVX2 vector; the eight
       vectors step through a level together (independent chains). The top three levels
       (slots 0-6) are read from one register by permutation, the deeper ones gathered. */
    __attribute__((target("avx2")))
    static void fs_complete_block_avx2(const float* X, ptrdiff_t d,
                                       const int32_t* split, const float* threshold,
                                       const float* leaf, int depth,
                                       double* out, ptrdiff_t out_stride) {
        __m256i position[8], row_offset[8];
        const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i feature_mask = _mm256_set1_epi32(0x7FFFFFFF);
        const __m256i one = _mm256_set1_epi32(1);
        int32_t n_internal = ((int32_t) 1 << depth) - 1;
        __m256i top = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_internal < 8 ? n_internal : 8), lanes);
        __m256i top_split = _mm256_maskload_epi32((const int*) split, top);
        __m256 top_threshold = _mm256_maskload_ps(threshold, top);
        int v, level, i;
        for (v = 0; v < 8; v++) {
            position[v] = _mm256_setzero_si256();
            row_offset[v] = _mm256_mullo_epi32(_mm256_add_epi32(lanes, _mm256_set1_epi32(8 * v)),
                                               _mm256_set1_epi32((int32_t) d));
        }
        for (level = 0; level < depth; level++) {
            for (v = 0; v < 8; v++) {
                __m256i k = position[v], s;
                __m256 t;
                if (level < 3) {
                    s = _mm256_permutevar8x32_epi32(top_split, k);
                    t = _mm256_permutevar8x32_ps(top_threshold, k);
                } else {
                    s = _mm256_i32gather_epi32((const int*) split, k, 4);
                    t = _mm256_i32gather_ps(threshold, k, 4);
                }
                __m256 x = _mm256_i32gather_ps(
                    X, _mm256_add_epi32(row_offset[v], _mm256_and_si256(s, feature_mask)), 4);
                __m256i ge = _mm256_castps_si256(_mm256_cmp_ps(x, t, _CMP_GE_OQ));
                __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
                /* -1 where the row goes right: x >= t, or NaN and bit 31 of the split */
                __m256i right = _mm256_or_si256(ge, _mm256_and_si256(nan, _mm256_srai_epi32(s, 31)));
                position[v] = _mm256_sub_epi32(_mm256_add_epi32(_mm256_add_epi32(k, k), one), right);
            }
        }
        leaf -= n_internal;
        for (v = 0; v < 8; v++) {
            __m256 value = _mm256_i32gather_ps(leaf, position[v], 4);
            double* o = out + 8 * v * out_stride;
            if (out_stride == 1) {
                _mm256_storeu_pd(o, _mm256_add_pd(_mm256_loadu_pd(o),
                                 _mm256_cvtps_pd(_mm256_castps256_ps128(value))));
                _mm256_storeu_pd(o + 4, _mm256_add_pd(_mm256_loadu_pd(o + 4),
                                 _mm256_cvtps_pd(_mm256_extractf128_ps(value, 1))));
            } else {
                float values[8];
                _mm256_storeu_ps(values, value);
                for (i = 0; i < 8; i++) o[i * out_stride] += (double) values[i];
            }
        }
    }

    /* Entry k (0 <= k < 64) of a 64-entry table held in four registers. */
    __attribute__((target("avx512f,avx512dq")))
    static inline __m512i fs_table64_epi32(__m512i t0, __m512i t1, __m512i t2, __m512i t3,
                                           __m512i k) {
        __m512i low = _mm512_permutex2var_epi32(t0, k, t1);  /* bits 0-4 of k */
        __m512i high = _mm512_permutex2var_epi32(t2, k, t3);
        return _mm512_mask_blend_epi32(_mm512_test_epi32_mask(k, _mm512_set1_epi32(32)),
                                       low, high);
    }

    /* Entries [first, first + n) of a table, 64 at most, into four registers (zeros past n). */
    __attribute__((target("avx512f,avx512dq")))
    static inline void fs_load_table64(const int32_t* first, int32_t n, __m512i* table) {
        int q;
        for (q = 0; q < 4; q++) {
            int32_t m = n - 16 * q;
            m = m < 0 ? 0 : (m > 16 ? 16 : m);
            table[q] = _mm512_maskz_loadu_epi32((__mmask16) ((1u << m) - 1u), first + 16 * q);
        }
    }

    /* The same with AVX-512: sixteen rows per vector, four vectors per block; the top six
       levels (slots 0-62) are read from registers by permutation, and so are the leaves of
       trees of depth <= 6: a tree of depth 6 gathers only the rows' values. */
    __attribute__((target("avx512f,avx512dq")))
    static void fs_complete_block_avx512(const float* X, ptrdiff_t d,
                                         const int32_t* split, const float* threshold,
                                         const float* leaf, int depth,
                                         double* out, ptrdiff_t out_stride) {
        __m512i position[4], row_offset[4], split_table[4], threshold_table[4], leaf_table[4];
        const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                14, 15);
        const __m512i feature_mask = _mm512_set1_epi32(0x7FFFFFFF);
        const __m512i one = _mm512_set1_epi32(1);
        int32_t n_internal = ((int32_t) 1 << depth) - 1;
        int32_t n_leaves = n_internal + 1;
        int v, level, i;
        fs_load_table64(split, n_internal, split_table);
        fs_load_table64((const int32_t*) threshold, n_internal, threshold_table);
        if (n_leaves <= 64) fs_load_table64((const int32_t*) leaf, n_leaves, leaf_table);
        for (v = 0; v < 4; v++) {
            position[v] = _mm512_setzero_si512();
            row_offset[v] = _mm512_mullo_epi32(_mm512_add_epi32(lanes, _mm512_set1_epi32(16 * v)),
                                               _mm512_set1_epi32((int32_t) d));
        }
        for (level = 0; level < depth; level++) {
            for (v = 0; v < 4; v++) {
                __m512i k = position[v], s;
                __m512 t;
                if (level < 5) {  /* slots 0-30: two registers */
                    s = _mm512_permutex2var_epi32(split_table[0], k, split_table[1]);
                    t = _mm512_castsi512_ps(_mm512_permutex2var_epi32(threshold_table[0], k,
                                                                      threshold_table[1]));
                } else if (level == 5) {  /* slots 31-62: four */
                    s = fs_table64_epi32(split_table[0], split_table[1], split_table[2],
                                         split_table[3], k);
                    t = _mm512_castsi512_ps(fs_table64_epi32(
                        threshold_table[0], threshold_table[1], threshold_table[2],
                        threshold_table[3], k));
                } else {
                    s = _mm512_i32gather_epi32(k, split, 4);
                    t = _mm512_i32gather_ps(k, threshold, 4);
                }
                __m512 x = _mm512_i32gather_ps(
                    _mm512_add_epi32(row_offset[v], _mm512_and_si512(s, feature_mask)), X, 4);
                __mmask16 right = _mm512_cmp_ps_mask(x, t, _CMP_GE_OQ)
                    | (_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q) & _mm512_movepi32_mask(s));
                __m512i child = _mm512_add_epi32(_mm512_add_epi32(k, k), one);
                position[v] = _mm512_mask_add_epi32(child, right, child, one);
            }
        }
        for (v = 0; v < 4; v++) {
            __m512i slot = _mm512_sub_epi32(position[v], _mm512_set1_epi32(n_internal));
            __m512 value = n_leaves <= 64
                ? _mm512_castsi512_ps(fs_table64_epi32(leaf_table[0], leaf_table[1],
                                                       leaf_table[2], leaf_table[3], slot))
                : _mm512_i32gather_ps(slot, leaf, 4);
            double* o = out + 16 * v * out_stride;
            if (out_stride == 1) {
                _mm512_storeu_pd(o, _mm512_add_pd(_mm512_loadu_pd(o),
                                 _mm512_cvtps_pd(_mm512_castps512_ps256(value))));
                _mm512_storeu_pd(o + 8, _mm512_add_pd(_mm512_loadu_pd(o + 8),
                                 _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
                                     _mm512_castps_pd(value), 1)))));
            } else {
                float values[16];
                _mm512_storeu_ps(values, value);
                for (i = 0; i < 16; i++) o[i * out_stride] += (double) values[i];
            }
        }
    }
    #else
    static int fs_simd_level(void) { return 0; }
    static void fs_complete_block_avx2(const float* X, ptrdiff_t d,
                                       const int32_t* split, const float* threshold,
                                       const float* leaf, int depth,
                                       double* out, ptrdiff_t out_stride) {
        fs_complete_block(X, d, FS_COMPLETE_BLOCK, split, threshold, leaf, depth, out, out_stride);
    }
    static void fs_complete_block_avx512(const float* X, ptrdiff_t d,
                                         const int32_t* split, const float* threshold,
                                         const float* leaf, int depth,
                                         double* out, ptrdiff_t out_stride) {
        fs_complete_block(X, d, FS_COMPLETE_BLOCK, split, threshold, leaf, depth, out, out_stride);
    }
    #endif
    """
    int fs_simd_level() noexcept nogil
    void fs_complete_block(const float* X, intp_t d, intp_t n, const int32_t* split,
                           const float* threshold, const float* leaf, int depth,
                           double* out, intp_t out_stride) noexcept nogil
    void fs_complete_block_avx2(const float* X, intp_t d, const int32_t* split,
                                const float* threshold, const float* leaf, int depth,
                                double* out, intp_t out_stride) noexcept nogil
    void fs_complete_block_avx512(const float* X, intp_t d, const int32_t* split,
                                  const float* threshold, const float* leaf, int depth,
                                  double* out, intp_t out_stride) noexcept nogil

# The vector instructions predict_complete uses: 2 AVX-512, 1 AVX2, 0 none (the one-row
# loop); the CPU's best, asked at import. Tests lower it to check every path gives the
# same bits.
SIMD_LEVEL = fs_simd_level()


cdef void _predict_raw_block(const float[:, ::1] X, const int* nodes, const float[::1] value,
                             const intp_t[::1] tree_roots, const intp_t[::1] tree_depths,
                             const intp_t[::1] tree_groups, double[:, ::1] out,
                             intp_t start, intp_t stop) noexcept nogil:
    """All trees for rows start:stop, the rows of the block walking down in lockstep
    (independent chains of loads the CPU overlaps), exactly ``depth`` steps per tree:
    leaves are packed as absorbing nodes (see :func:`predict_raw`), so the loop has
    no branch on whether a row has reached its leaf."""
    cdef intp_t position[BLOCK]
    cdef intp_t t, i, k, level, n = stop - start
    cdef const int* node
    cdef float x
    for t in range(tree_roots.shape[0]):
        for i in range(n):
            position[i] = tree_roots[t]
        for level in range(tree_depths[t]):
            for i in range(n):
                node = nodes + 4 * position[i]
                x = X[start + i, node[1]]
                if x != x:  # missing: the learned default direction
                    position[i] = node[0] + (0 if node[3] != 0 else 1)
                else:  # NaN threshold (a leaf): x >= NaN is false, the row stays
                    position[i] = node[0] + (1 if x >= (<const float*> (node + 2))[0] else 0)
        for i in range(n):
            out[start + i, tree_groups[t]] += value[position[i]]


def _predict_raw(const float[:, ::1] X,                                               # IN
                 const int[:, ::1] packed, const float[::1] value,                    # IN
                 const intp_t[::1] tree_roots, const intp_t[::1] tree_depths,         # IN
                 const intp_t[::1] tree_groups,                                       # IN
                 double[:, ::1] out,                                                  # IN/OUT
                 int n_threads):
    """``packed[k] = (left, feature, threshold bits, default_left)``: one 16-byte node."""
    cdef intp_t n_rows = X.shape[0]
    cdef intp_t n_blocks = (n_rows + BLOCK - 1) // BLOCK
    cdef intp_t block, start
    cdef const int* nodes = &packed[0, 0]
    for block in prange(n_blocks, num_threads=n_threads, schedule="static", nogil=True):
        start = block * BLOCK
        _predict_raw_block(X, nodes, value, tree_roots, tree_depths, tree_groups, out, start,
                           min(start + BLOCK, n_rows))


def _predict_binned(const uint8_t[:, ::1] binned, const intp_t[::1] feature,           # IN
                    const intp_t[::1] bin_threshold, const uint8_t[::1] default_left,  # IN
                    const intp_t[::1] left, const float[::1] value,                    # IN
                    const intp_t[::1] missing_bin,                                     # IN
                    const intp_t[::1] tree_roots, const intp_t[::1] tree_groups,       # IN
                    double[:, ::1] out,                                                # IN/OUT
                    int n_threads):
    cdef intp_t n_rows = binned.shape[0]
    cdef intp_t n_blocks = (n_rows + BLOCK - 1) // BLOCK
    cdef intp_t block, start, stop, t, i, k, group, f, b
    cdef bint go_left
    for block in prange(n_blocks, num_threads=n_threads, schedule="static", nogil=True):
        start = block * BLOCK
        stop = min(start + BLOCK, n_rows)
        for t in range(tree_roots.shape[0]):
            group = tree_groups[t]
            for i in range(start, stop):
                k = tree_roots[t]
                while left[k] != -1:
                    f = feature[k]
                    b = binned[i, f]
                    if b == missing_bin[f]:
                        go_left = default_left[k] != 0
                    else:
                        go_left = b <= bin_threshold[k]
                    k = left[k] + (0 if go_left else 1)
                out[i, group] += value[k]


def _predict_complete(const float[:, ::1] X,                                           # IN
                      const int32_t[::1] node_split, const float[::1] node_threshold,   # IN
                      const float[::1] leaf_value,                                      # IN
                      const intp_t[::1] tree_node_starts, const intp_t[::1] tree_leaf_starts,  # IN
                      const intp_t[::1] tree_depths, const intp_t[::1] tree_groups,     # IN
                      double[:, ::1] out,                                               # IN/OUT
                      int simd, int n_threads):
    cdef intp_t n_rows = X.shape[0], d = X.shape[1], n_groups = out.shape[1]
    cdef intp_t n_blocks = (n_rows + BLOCK - 1) // BLOCK
    cdef intp_t block, start, n, t
    cdef const int32_t* splits = &node_split[0] if node_split.shape[0] else NULL
    cdef const float* thresholds = &node_threshold[0] if node_threshold.shape[0] else NULL
    # Gather offsets are int32: a block of rows must span fewer than 2**31 floats.
    if BLOCK * d >= 2147483647:
        simd = 0
    # Dynamic: a thread paused by the OS on a shared machine does not hold up the others
    # (each block writes only its own rows, whichever thread runs it).
    for block in prange(n_blocks, num_threads=n_threads, schedule="dynamic", chunksize=4,
                        nogil=True):
        start = block * BLOCK
        n = min(start + BLOCK, n_rows) - start
        for t in range(tree_node_starts.shape[0]):
            if simd == 2 and n == BLOCK:
                fs_complete_block_avx512(&X[start, 0], d, splits + tree_node_starts[t],
                                         thresholds + tree_node_starts[t],
                                         &leaf_value[tree_leaf_starts[t]], tree_depths[t],
                                         &out[start, tree_groups[t]], n_groups)
            elif simd == 1 and n == BLOCK:
                fs_complete_block_avx2(&X[start, 0], d, splits + tree_node_starts[t],
                                       thresholds + tree_node_starts[t],
                                       &leaf_value[tree_leaf_starts[t]], tree_depths[t],
                                       &out[start, tree_groups[t]], n_groups)
            else:
                fs_complete_block(&X[start, 0], d, n, splits + tree_node_starts[t],
                                  thresholds + tree_node_starts[t],
                                  &leaf_value[tree_leaf_starts[t]], tree_depths[t],
                                  &out[start, tree_groups[t]], n_groups)


def _tree_depths(left, right, tree_roots):
    """Depth of each tree (edges on its longest root-to-leaf path), one level at a time."""
    depths = np.zeros(tree_roots.shape[0], dtype=np.intp)
    nodes = np.asarray(tree_roots, dtype=np.intp)
    trees = np.arange(tree_roots.shape[0], dtype=np.intp)
    level = 0
    while nodes.size:
        split = left[nodes] != -1
        nodes, trees = nodes[split], trees[split]
        level += 1
        depths[trees] = level
        nodes, trees = np.concatenate([left[nodes], right[nodes]]), np.concatenate([trees, trees])
    return depths


def predict_raw(X, feature, threshold, default_left, left, right, value, tree_roots,
                tree_groups, out, n_threads):
    """Add the forest's leaf values for raw rows (see :func:`tree_predict_numpy.predict_raw`).

    The node fields are first packed into one int32 row per node (left child,
    feature, threshold bits, default direction), so a step down the tree
    touches one 16-byte record instead of four arrays. A leaf is packed as a
    node that points to itself with a NaN threshold and "missing goes left",
    so every row can take exactly the tree's depth in steps.
    """
    leaves = np.asarray(left) == -1
    packed = np.empty((feature.shape[0], 4), dtype=np.int32)
    packed[:, 0] = np.where(leaves, np.arange(feature.shape[0]), left)
    packed[:, 1] = np.where(leaves, 0, feature)
    packed[:, 2] = np.where(leaves, np.float32(np.nan), np.asarray(threshold, dtype=np.float32)).view(np.int32)
    packed[:, 3] = np.where(leaves, 1, default_left)
    depths = _tree_depths(np.asarray(left, dtype=np.intp), np.asarray(right, dtype=np.intp),
                          np.asarray(tree_roots, dtype=np.intp))
    _predict_raw(X, packed, value, tree_roots, depths, tree_groups, out, max(1, int(n_threads)))


def predict_binned(binned, feature, bin_threshold, default_left, left, right, value, missing_bin,
                   tree_roots, tree_groups, out, n_threads):
    """Add the forest's leaf values for binned rows."""
    _predict_binned(binned, feature, bin_threshold, default_left, left, value, missing_bin,
                    tree_roots, tree_groups, out, max(1, int(n_threads)))


def predict_complete(X, node_split, node_threshold, leaf_value, tree_node_starts,
                     tree_leaf_starts, tree_depths, tree_groups, out, n_threads):
    """Add the forest's leaf values for raw rows, complete layout
    (see :func:`tree_predict_numpy.predict_complete`); vector instructions up to
    :data:`SIMD_LEVEL`."""
    if X.shape[0] == 0 or tree_node_starts.shape[0] == 0:
        return
    _predict_complete(X, node_split, node_threshold, leaf_value, tree_node_starts,
                      tree_leaf_starts, tree_depths, tree_groups, out, SIMD_LEVEL,
                      max(1, int(n_threads)))
