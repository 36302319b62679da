# cython: language_level=3
r"""K-means iterations (Lloyd and Elkan): the Cython kernels.

Same arithmetic, stripes and Lloyd steps as :mod:`kmeans_numba` (read
:mod:`kmeans_numpy` for the math): OpenMP threads over stripes, thread-local
block buffers and GEMMs (``scipy.linalg.cython_blas``), float64 per-stripe
sums reduced in stripe order, so the result does not depend on the number of
threads.
"""

include "_common.pxi"

import numpy as np
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

from ._threads import blas_single_threaded
from .kmeans_numpy import (BLOCK_ROWS, RANK_DIRECT, RANK_EXACT, RANK_LANES, RANK_LANES_MAX_CLUSTERS,
                           RANK_ROWS, RANK_SIMD, RANK_SWITCH, RANK_TRANSPOSED, lloyd_state, n_stripes,
                           rank_path, ranking_margin, stripe_bounds)

DEF BLOCK = 256  # = kmeans_numpy.BLOCK_ROWS (checked at import below)
DEF SWITCH = 4  # = kmeans_numpy.RANK_SWITCH
DEF PATH_DIRECT = 1  # = kmeans_numpy.RANK_DIRECT
DEF PATH_TRANSPOSED = 2  # = kmeans_numpy.RANK_TRANSPOSED
DEF PATH_ROWS = 3  # = kmeans_numpy.RANK_ROWS
DEF PATH_SIMD = 4  # = kmeans_numpy.RANK_SIMD
DEF PATH_LANES = 5  # = kmeans_numpy.RANK_LANES
DEF LANES = 16  # = kmeans_numpy.RANK_LANES_MAX_CLUSTERS

if (BLOCK != BLOCK_ROWS or SWITCH != RANK_SWITCH or RANK_EXACT != 0 or PATH_DIRECT != RANK_DIRECT
        or PATH_TRANSPOSED != RANK_TRANSPOSED or PATH_ROWS != RANK_ROWS or PATH_SIMD != RANK_SIMD
        or PATH_LANES != RANK_LANES or LANES != RANK_LANES_MAX_CLUSTERS):
    raise ImportError("kmeans_cython was built with other block constants than kmeans_numpy's.")

cdef extern from *:
    """
    #define FASTSCRATCH_PREFETCH(address) __builtin_prefetch((address), 0, 3)
    """
    void prefetch "FASTSCRATCH_PREFETCH"(const void* address) noexcept nogil


cdef extern from *:
    r"""
    /* Dot products of a block of rows with every centre, in the data's dtype, by vector
       code of our own (RANK_SIMD, kmeans_numpy.rank_path): out[i * k + j] = x_i . c_j and
       x_sq_norms[i] = ||x_i||^2. The features run along the vector lanes: each (row,
       centre) pair has its own accumulator, a tile of ROWS rows and COLS centres shares
       each load, the lanes are added at the end, then the last d % LANES features one by
       one. A fixed order for each row, whatever the thread or the block: the labels do
       not depend on the thread count, and the margin test (ranking_margin) holds for
       any summation order.
       Tiles of 4 x 4 with AVX-512 (16 accumulators of 32 registers), 3 x 4 with AVX2 (12
       of 16): at d = 256, k = 16 on a block in cache, 74 GFLOP/s on one Zen 5 core, near
       its peak; software prefetching of the next rows measured slower. */
    #define FS_DOTS_TILE(T, VEC, LANES, ZERO, LOAD, FMA, HSUM, ROWS, COLS)                      \
        {                                                                                       \
            VEC acc[ROWS][COLS];                                                                \
            VEC xv[ROWS];                                                                       \
            VEC cv;                                                                             \
            int r, q;                                                                           \
            ptrdiff_t l;                                                                        \
            T s;                                                                                \
            for (r = 0; r < ROWS; r++)                                                          \
                for (q = 0; q < COLS; q++) acc[r][q] = ZERO();                                  \
            for (l = 0; l + LANES <= d; l += LANES) {                                           \
                for (r = 0; r < ROWS; r++) xv[r] = LOAD(x + (i + r) * d + l);                   \
                for (q = 0; q < COLS; q++) {                                                    \
                    cv = LOAD(c + (j + q) * d + l);                                             \
                    for (r = 0; r < ROWS; r++) acc[r][q] = FMA(xv[r], cv, acc[r][q]);           \
                }                                                                               \
            }                                                                                   \
            for (r = 0; r < ROWS; r++)                                                          \
                for (q = 0; q < COLS; q++) {                                                    \
                    s = HSUM(acc[r][q]);                                                        \
                    for (l = d - d % LANES; l < d; l++)                                         \
                        s = s + x[(i + r) * d + l] * c[(j + q) * d + l];                        \
                    out[(i + r) * k + j + q] = s;                                               \
                }                                                                               \
        }

    #define FS_DEFINE_DOTS(NAME, ATTRIBUTE, T, VEC, LANES, ZERO, LOAD, FMA, HSUM, ROWS, COLS)   \
        ATTRIBUTE                                                                               \
        static void NAME(const T* x, ptrdiff_t n_rows, const T* c, ptrdiff_t k, ptrdiff_t d,    \
                         T* out, double* x_sq_norms) {                                          \
            ptrdiff_t i, j;                                                                     \
            /* ||x_i||^2 (for the margin test only), in the data's dtype: this first read of    \
               the block, in order, brings it into cache faster than the tiles would. */        \
            for (i = 0; i < n_rows; i++) {                                                      \
                const T* row = x + i * d;                                                       \
                VEC a0 = ZERO(), a1 = ZERO(), v;                                                \
                ptrdiff_t l = 0;                                                                \
                T s;                                                                            \
                for (; l + 2 * LANES <= d; l += 2 * LANES) {                                    \
                    v = LOAD(row + l);                                                          \
                    a0 = FMA(v, v, a0);                                                         \
                    v = LOAD(row + l + LANES);                                                  \
                    a1 = FMA(v, v, a1);                                                         \
                }                                                                               \
                for (; l + LANES <= d; l += LANES) {                                            \
                    v = LOAD(row + l);                                                          \
                    a0 = FMA(v, v, a0);                                                         \
                }                                                                               \
                s = HSUM(a0) + HSUM(a1);                                                        \
                for (; l < d; l++) s = s + row[l] * row[l];                                     \
                x_sq_norms[i] = (double) s;                                                     \
            }                                                                                   \
            for (i = 0; i + ROWS <= n_rows; i += ROWS) {                                        \
                for (j = 0; j + COLS <= k; j += COLS)                                           \
                    FS_DOTS_TILE(T, VEC, LANES, ZERO, LOAD, FMA, HSUM, ROWS, COLS)              \
                for (; j < k; j++) FS_DOTS_TILE(T, VEC, LANES, ZERO, LOAD, FMA, HSUM, ROWS, 1)  \
            }                                                                                   \
            for (; i < n_rows; i++) {                                                           \
                for (j = 0; j + COLS <= k; j += COLS)                                           \
                    FS_DOTS_TILE(T, VEC, LANES, ZERO, LOAD, FMA, HSUM, 1, COLS)                 \
                for (; j < k; j++) FS_DOTS_TILE(T, VEC, LANES, ZERO, LOAD, FMA, HSUM, 1, 1)     \
            }                                                                                   \
        }

    /* The plain C loop (no vector unit): the same code, one lane. */
    #define FS_SCALAR_ZERO() 0
    #define FS_SCALAR_LOAD(p) (*(p))
    #define FS_SCALAR_FMA(a, b, acc) ((acc) + (a) * (b))
    #define FS_SCALAR_HSUM(v) (v)
    FS_DEFINE_DOTS(fs_dots_f64_scalar, , double, double, 1, FS_SCALAR_ZERO, FS_SCALAR_LOAD,
                   FS_SCALAR_FMA, FS_SCALAR_HSUM, 2, 4)
    FS_DEFINE_DOTS(fs_dots_f32_scalar, , float, float, 1, FS_SCALAR_ZERO, FS_SCALAR_LOAD,
                   FS_SCALAR_FMA, FS_SCALAR_HSUM, 2, 4)

    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    /* 2: AVX-512F, 1: AVX2 and FMA, 0: neither (the plain loop). */
    static int fs_kmeans_simd_level(void) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) return 2;
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
    }
    __attribute__((target("avx2,fma")))
    static inline double fs_hsum_pd256(__m256d v) {
        __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    }
    __attribute__((target("avx2,fma")))
    static inline float fs_hsum_ps256(__m256 v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
    }
    FS_DEFINE_DOTS(fs_dots_f64_avx512, __attribute__((target("avx512f"))), double, __m512d, 8,
                   _mm512_setzero_pd, _mm512_loadu_pd, _mm512_fmadd_pd, _mm512_reduce_add_pd, 4, 4)
    FS_DEFINE_DOTS(fs_dots_f32_avx512, __attribute__((target("avx512f"))), float, __m512, 16,
                   _mm512_setzero_ps, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_reduce_add_ps, 4, 4)
    FS_DEFINE_DOTS(fs_dots_f64_avx2, __attribute__((target("avx2,fma"))), double, __m256d, 4,
                   _mm256_setzero_pd, _mm256_loadu_pd, _mm256_fmadd_pd, fs_hsum_pd256, 3, 4)
    FS_DEFINE_DOTS(fs_dots_f32_avx2, __attribute__((target("avx2,fma"))), float, __m256, 8,
                   _mm256_setzero_ps, _mm256_loadu_ps, _mm256_fmadd_ps, fs_hsum_ps256, 3, 4)
    #else
    static int fs_kmeans_simd_level(void) { return 0; }
    #define fs_dots_f64_avx512 fs_dots_f64_scalar
    #define fs_dots_f32_avx512 fs_dots_f32_scalar
    #define fs_dots_f64_avx2 fs_dots_f64_scalar
    #define fs_dots_f32_avx2 fs_dots_f32_scalar
    #endif

    /* fs_dots_* at the given level (SIMD_LEVEL or lower). */
    static void fs_kmeans_dots_f64(int level, const double* x, ptrdiff_t n_rows, const double* c,
                                   ptrdiff_t k, ptrdiff_t d, double* out,
                                   double* x_sq_norms) {
        if (level >= 2) fs_dots_f64_avx512(x, n_rows, c, k, d, out, x_sq_norms);
        else if (level == 1) fs_dots_f64_avx2(x, n_rows, c, k, d, out, x_sq_norms);
        else fs_dots_f64_scalar(x, n_rows, c, k, d, out, x_sq_norms);
    }
    static void fs_kmeans_dots_f32(int level, const float* x, ptrdiff_t n_rows, const float* c,
                                   ptrdiff_t k, ptrdiff_t d, float* out,
                                   double* x_sq_norms) {
        if (level >= 2) fs_dots_f32_avx512(x, n_rows, c, k, d, out, x_sq_norms);
        else if (level == 1) fs_dots_f32_avx2(x, n_rows, c, k, d, out, x_sq_norms);
        else fs_dots_f32_scalar(x, n_rows, c, k, d, out, x_sq_norms);
    }

    /* Elkan's distances to LANES centres at once, lanes along the centres: out[q] =
       sqrt(sum_l (x_l - ct[l * stride + q])^2) for q < LANES, ct the centres transposed
       (features x centres, ``stride`` centres per feature, padded). Each lane does
       scikit-learn's _euclidean_dense_dense step for step in the data's dtype (groups of
       four features ((t0 + t1) + t2) + t3 added to the running total, then the last
       features one by one, no FMA), so every distance is bit for bit the scalar one; the
       lanes only run LANES of those dependency chains side by side. */
    #define FS_DEFINE_ELKAN(NAME, ATTRIBUTE, T, VEC, SET1, LOAD, STORE, SUB, MUL, ADD, SQRT, ZERO) \
        ATTRIBUTE                                                                               \
        static void NAME(const T* x, const T* ct, ptrdiff_t stride, ptrdiff_t d, T* out) {      \
            VEC result = ZERO(), a, g;                                                          \
            ptrdiff_t l;                                                                        \
            for (l = 0; l + 4 <= d; l += 4) {                                                   \
                a = SUB(SET1(x[l]), LOAD(ct + l * stride));                                     \
                g = MUL(a, a);                                                                  \
                a = SUB(SET1(x[l + 1]), LOAD(ct + (l + 1) * stride));                           \
                g = ADD(g, MUL(a, a));                                                          \
                a = SUB(SET1(x[l + 2]), LOAD(ct + (l + 2) * stride));                           \
                g = ADD(g, MUL(a, a));                                                          \
                a = SUB(SET1(x[l + 3]), LOAD(ct + (l + 3) * stride));                           \
                g = ADD(g, MUL(a, a));                                                          \
                result = ADD(result, g);                                                        \
            }                                                                                   \
            for (; l < d; l++) {                                                                \
                a = SUB(SET1(x[l]), LOAD(ct + l * stride));                                     \
                result = ADD(result, MUL(a, a));                                                \
            }                                                                                   \
            STORE(out, SQRT(result));                                                           \
        }

    #define FS_S_SET1(v) (v)
    #define FS_S_LOAD(p) (*(p))
    #define FS_S_STORE(p, v) (*(p) = (v))
    #define FS_S_SUB(a, b) ((a) - (b))
    #define FS_S_MUL(a, b) ((a) * (b))
    #define FS_S_ADD(a, b) ((a) + (b))
    #define FS_S_ZERO() 0
    FS_DEFINE_ELKAN(fs_elkan_f64_scalar, , double, double, FS_S_SET1, FS_S_LOAD, FS_S_STORE,
                    FS_S_SUB, FS_S_MUL, FS_S_ADD, sqrt, FS_S_ZERO)
    FS_DEFINE_ELKAN(fs_elkan_f32_scalar, , float, float, FS_S_SET1, FS_S_LOAD, FS_S_STORE,
                    FS_S_SUB, FS_S_MUL, FS_S_ADD, sqrtf, FS_S_ZERO)

    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    FS_DEFINE_ELKAN(fs_elkan_f64_avx512, __attribute__((target("avx512f"))), double, __m512d,
                    _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_sub_pd,
                    _mm512_mul_pd, _mm512_add_pd, _mm512_sqrt_pd, _mm512_setzero_pd)
    FS_DEFINE_ELKAN(fs_elkan_f32_avx512, __attribute__((target("avx512f"))), float, __m512,
                    _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_sub_ps,
                    _mm512_mul_ps, _mm512_add_ps, _mm512_sqrt_ps, _mm512_setzero_ps)
    FS_DEFINE_ELKAN(fs_elkan_f64_avx2, __attribute__((target("avx2,fma"))), double, __m256d,
                    _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_sub_pd,
                    _mm256_mul_pd, _mm256_add_pd, _mm256_sqrt_pd, _mm256_setzero_pd)
    FS_DEFINE_ELKAN(fs_elkan_f32_avx2, __attribute__((target("avx2,fma"))), float, __m256,
                    _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_sub_ps,
                    _mm256_mul_ps, _mm256_add_ps, _mm256_sqrt_ps, _mm256_setzero_ps)
    #else
    #define fs_elkan_f64_avx512 fs_elkan_f64_scalar
    #define fs_elkan_f32_avx512 fs_elkan_f32_scalar
    #define fs_elkan_f64_avx2 fs_elkan_f64_scalar
    #define fs_elkan_f32_avx2 fs_elkan_f32_scalar
    #endif

    /* Centres per call of fs_elkan_* at this level and dtype (the lanes of one vector). */
    static ptrdiff_t fs_elkan_lanes(int level, int is_float32) {
        #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        if (level >= 2) return is_float32 ? 16 : 8;
        if (level == 1) return is_float32 ? 8 : 4;
        #endif
        return 1;
    }
    static void fs_elkan_block_f64(int level, const double* x, const double* ct, ptrdiff_t stride,
                                   ptrdiff_t d, double* out) {
        if (level >= 2) fs_elkan_f64_avx512(x, ct, stride, d, out);
        else if (level == 1) fs_elkan_f64_avx2(x, ct, stride, d, out);
        else fs_elkan_f64_scalar(x, ct, stride, d, out);
    }
    static void fs_elkan_block_f32(int level, const float* x, const float* ct, ptrdiff_t stride,
                                   ptrdiff_t d, float* out) {
        if (level >= 2) fs_elkan_f32_avx512(x, ct, stride, d, out);
        else if (level == 1) fs_elkan_f32_avx2(x, ct, stride, d, out);
        else fs_elkan_f32_scalar(x, ct, stride, d, out);
    }

    /* RANK_LANES (kmeans_numpy.rank_path): a row's float32 ranking values for up to 16
       centres at once, the centres along the lanes. ct holds the centres transposed (d x 16,
       zero-padded), norms16 their float32 squared norms (+inf on padded lanes). For each row:
       p_j = sum_l x_l c_jl by FMA in feature order from 0, v_j = norms16[j] - (p_j + p_j), as
       best_and_second's values; labels[i] the first j of the minimum, best[i] that minimum,
       second[i] the least of the other lanes (the minimum again on a tie). Every level runs the
       same FMAs in the same order, so the same bits; the margin test (ranking_margin) holds for
       any summation order. A row whose values are not comparable (NaN) gets label 0: its
       margin test fails, and the exact path decides it. */
    static void fs_rank_lanes_scalar(const float* x, ptrdiff_t n_rows, ptrdiff_t d,
                                     const float* ct, const float* norms16, int* labels,
                                     float* best, float* second) {
        ptrdiff_t i, j, l;
        float v, p, b, r;
        int label;
        for (i = 0; i < n_rows; i++) {
            b = INFINITY; r = INFINITY; label = 0;
            for (j = 0; j < 16; j++) {
                p = 0.0f;
                for (l = 0; l < d; l++) p = fmaf(x[i * d + l], ct[l * 16 + j], p);
                v = norms16[j] - (p + p);
                if (v < b) { r = b; b = v; label = (int) j; }
                else if (v < r) r = v;
            }
            labels[i] = label; best[i] = b; second[i] = r;
        }
    }

    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* One row's ranking from its 16 products (see fs_rank_lanes_scalar). */
    __attribute__((target("avx512f")))
    static inline void fs_rank_lanes_finish512(__m512 products, __m512 norms, int* label_out,
                                               float* best_out, float* second_out) {
        __m512 v = _mm512_sub_ps(norms, _mm512_add_ps(products, products));
        float b = _mm512_reduce_min_ps(v);
        unsigned int mask = (unsigned int) _mm512_cmp_ps_mask(v, _mm512_set1_ps(b), _CMP_EQ_OQ);
        int label = mask ? __builtin_ctz(mask) : 0;
        *label_out = label;
        *best_out = b;
        *second_out = _mm512_reduce_min_ps(
            _mm512_mask_mov_ps(v, (__mmask16) (1u << label), _mm512_set1_ps(INFINITY)));
    }

    /* Four rows at a time: four independent FMA chains hide the FMA latency (each row's
       chain, and so its bits, is the one-row loop's). */
    __attribute__((target("avx512f")))
    static void fs_rank_lanes_avx512(const float* x, ptrdiff_t n_rows, ptrdiff_t d,
                                     const float* ct, const float* norms16, int* labels,
                                     float* best, float* second) {
        __m512 norms = _mm512_loadu_ps(norms16), a0, a1, a2, a3, c;
        ptrdiff_t i, l;
        const float *r0, *r1, *r2, *r3;
        for (i = 0; i + 4 <= n_rows; i += 4) {
            r0 = x + i * d; r1 = r0 + d; r2 = r1 + d; r3 = r2 + d;
            a0 = _mm512_setzero_ps(); a1 = _mm512_setzero_ps();
            a2 = _mm512_setzero_ps(); a3 = _mm512_setzero_ps();
            for (l = 0; l < d; l++) {
                c = _mm512_loadu_ps(ct + l * 16);
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(r0[l]), c, a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(r1[l]), c, a1);
                a2 = _mm512_fmadd_ps(_mm512_set1_ps(r2[l]), c, a2);
                a3 = _mm512_fmadd_ps(_mm512_set1_ps(r3[l]), c, a3);
            }
            fs_rank_lanes_finish512(a0, norms, labels + i, best + i, second + i);
            fs_rank_lanes_finish512(a1, norms, labels + i + 1, best + i + 1, second + i + 1);
            fs_rank_lanes_finish512(a2, norms, labels + i + 2, best + i + 2, second + i + 2);
            fs_rank_lanes_finish512(a3, norms, labels + i + 3, best + i + 3, second + i + 3);
        }
        for (; i < n_rows; i++) {
            r0 = x + i * d;
            a0 = _mm512_setzero_ps();
            for (l = 0; l < d; l++)
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(r0[l]), _mm512_loadu_ps(ct + l * 16), a0);
            fs_rank_lanes_finish512(a0, norms, labels + i, best + i, second + i);
        }
    }

    __attribute__((target("avx2,fma")))
    static inline float fs_hmin_ps256(__m256 v) {
        __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        m = _mm_min_ps(m, _mm_movehl_ps(m, m));
        m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
        return _mm_cvtss_f32(m);
    }

    __attribute__((target("avx2,fma")))
    static void fs_rank_lanes_avx2(const float* x, ptrdiff_t n_rows, ptrdiff_t d,
                                   const float* ct, const float* norms16, int* labels,
                                   float* best, float* second) {
        __m256 norms_lo = _mm256_loadu_ps(norms16), norms_hi = _mm256_loadu_ps(norms16 + 8);
        __m256 lo, hi, xl, value;
        ptrdiff_t i, l;
        const float* row;
        float b, values[16];
        unsigned int mask;
        int label;
        for (i = 0; i < n_rows; i++) {
            row = x + i * d;
            lo = _mm256_setzero_ps();
            hi = _mm256_setzero_ps();
            for (l = 0; l < d; l++) {
                xl = _mm256_set1_ps(row[l]);
                lo = _mm256_fmadd_ps(xl, _mm256_loadu_ps(ct + l * 16), lo);
                hi = _mm256_fmadd_ps(xl, _mm256_loadu_ps(ct + l * 16 + 8), hi);
            }
            lo = _mm256_sub_ps(norms_lo, _mm256_add_ps(lo, lo));
            hi = _mm256_sub_ps(norms_hi, _mm256_add_ps(hi, hi));
            b = fs_hmin_ps256(_mm256_min_ps(lo, hi));
            value = _mm256_set1_ps(b);
            mask = (unsigned int) _mm256_movemask_ps(_mm256_cmp_ps(lo, value, _CMP_EQ_OQ))
                   | ((unsigned int) _mm256_movemask_ps(_mm256_cmp_ps(hi, value, _CMP_EQ_OQ)) << 8);
            label = mask ? __builtin_ctz(mask) : 0;
            _mm256_storeu_ps(values, lo);
            _mm256_storeu_ps(values + 8, hi);
            values[label] = INFINITY;
            labels[i] = label;
            best[i] = b;
            second[i] = fs_hmin_ps256(_mm256_min_ps(_mm256_loadu_ps(values), _mm256_loadu_ps(values + 8)));
        }
    }
    #else
    #define fs_rank_lanes_avx512 fs_rank_lanes_scalar
    #define fs_rank_lanes_avx2 fs_rank_lanes_scalar
    #endif

    static void fs_rank_lanes(int level, const float* x, ptrdiff_t n_rows, ptrdiff_t d,
                              const float* ct, const float* norms16, int* labels, float* best,
                              float* second) {
        if (level >= 2) fs_rank_lanes_avx512(x, n_rows, d, ct, norms16, labels, best, second);
        else if (level == 1) fs_rank_lanes_avx2(x, n_rows, d, ct, norms16, labels, best, second);
        else fs_rank_lanes_scalar(x, n_rows, d, ct, norms16, labels, best, second);
    }
    """
    int fs_kmeans_simd_level() noexcept nogil
    void fs_kmeans_dots_f64(int level, const double* x, intp_t n_rows, const double* c,
                            intp_t k, intp_t d, double* out, double* x_sq_norms) noexcept nogil
    void fs_kmeans_dots_f32(int level, const float* x, intp_t n_rows, const float* c,
                            intp_t k, intp_t d, float* out, double* x_sq_norms) noexcept nogil
    intp_t fs_elkan_lanes(int level, int is_float32) noexcept nogil
    void fs_elkan_block_f64(int level, const double* x, const double* ct, intp_t stride, intp_t d,
                            double* out) noexcept nogil
    void fs_elkan_block_f32(int level, const float* x, const float* ct, intp_t stride, intp_t d,
                            float* out) noexcept nogil
    void fs_rank_lanes(int level, const float* x, intp_t n_rows, intp_t d, const float* ct,
                       const float* norms16, int* labels, float* best, float* second) noexcept nogil

# The vector instructions RANK_SIMD uses: 2 AVX-512, 1 AVX2 and FMA, 0 neither (then
# rank_path never picks RANK_SIMD); the CPU's best, asked at import. Tests lower it to
# check that every level gives scikit-learn's labels.
SIMD_LEVEL = fs_kmeans_simd_level()



cdef inline void partial_distances(int n_rows, int n_clusters, int n_features,
                                   const floating* x, const floating* centers,
                                   const floating* centers_sq_norms, floating* out) noexcept nogil:
    """out (n_rows x n_clusters, row-major) = ||c_j||^2 - 2 x_i . c_j.

    One GEMM with alpha = -2 and beta = 1 on a buffer pre-filled with the
    norms: the same BLAS call as scikit-learn's, hence the same rounding.
    In BLAS's column-major terms, out^T = -2 centers x^T + out^T.
    """
    cdef char trans_a = b"T"
    cdef char trans_b = b"N"
    cdef floating alpha = -2.0
    cdef floating beta = 1.0
    cdef intp_t i
    for i in range(n_rows):
        memcpy(out + i * n_clusters, centers_sq_norms, n_clusters * sizeof(floating))
    if floating is float:
        sgemm(&trans_a, &trans_b, &n_clusters, &n_rows, &n_features, &alpha,
              <float*> centers, &n_features, <float*> x, &n_features, &beta, out, &n_clusters)
    else:
        dgemm(&trans_a, &trans_b, &n_clusters, &n_rows, &n_features, &alpha,
              <double*> centers, &n_features, <double*> x, &n_features, &beta, out, &n_clusters)


cdef inline double sq_distance(const floating* x, const floating* c, intp_t n_features) noexcept nogil:
    """sum_l (x_l - c_l)^2 in float64 (four running sums: no long dependency chain)."""
    cdef double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0, d0, d1, d2, d3
    cdef intp_t l = 0
    while l + 4 <= n_features:
        d0 = <double> x[l] - <double> c[l]
        d1 = <double> x[l + 1] - <double> c[l + 1]
        d2 = <double> x[l + 2] - <double> c[l + 2]
        d3 = <double> x[l + 3] - <double> c[l + 3]
        t0 = t0 + d0 * d0
        t1 = t1 + d1 * d1
        t2 = t2 + d2 * d2
        t3 = t3 + d3 * d3
        l = l + 4
    while l < n_features:
        d0 = <double> x[l] - <double> c[l]
        t0 = t0 + d0 * d0
        l = l + 1
    return (t0 + t1) + (t2 + t3)


cdef inline floating elkan_distance(const floating* x, const floating* c, intp_t n_features) noexcept nogil:
    """scikit-learn's _euclidean_dense_dense: input dtype, four features at a time."""
    cdef floating result = 0
    cdef intp_t l, n_groups = n_features // 4
    for l in range(0, 4 * n_groups, 4):
        result = result + ((((x[l] - c[l]) * (x[l] - c[l]) + (x[l + 1] - c[l + 1]) * (x[l + 1] - c[l + 1]))
                            + (x[l + 2] - c[l + 2]) * (x[l + 2] - c[l + 2]))
                           + (x[l + 3] - c[l + 3]) * (x[l + 3] - c[l + 3]))
    for l in range(4 * n_groups, n_features):
        result = result + (x[l] - c[l]) * (x[l] - c[l])
    return sqrt(result)


cdef inline void accumulate_sample(const floating* x, double w, intp_t label, intp_t n_features,
                                   double* sums) noexcept nogil:
    """sums[label] += w x (float64)."""
    cdef double* row = sums + label * n_features
    cdef intp_t l
    for l in range(n_features):
        row[l] = row[l] + w * <double> x[l]


cdef void reduce_stripes(double[:, :, ::1] stripe_sums, double[:, ::1] stripe_weights,
                         double[::1] out_sums_flat, double[::1] out_weights) noexcept nogil:
    """Add the stripes in order (thread-count independent)."""
    cdef intp_t s, j, n_stripes_ = stripe_sums.shape[0]
    cdef intp_t n_clusters = stripe_sums.shape[1], n_features = stripe_sums.shape[2]
    for j in range(n_clusters * n_features):
        out_sums_flat[j] = 0.0
    for j in range(n_clusters):
        out_weights[j] = 0.0
    for s in range(n_stripes_):
        for j in range(n_clusters * n_features):
            out_sums_flat[j] = out_sums_flat[j] + (&stripe_sums[s, 0, 0])[j]
        for j in range(n_clusters):
            out_weights[j] = out_weights[j] + stripe_weights[s, j]


cdef inline void load_block(const floating* x, intp_t n_features, intp_t n_rows,
                            intp_t n_prefetch, float* xt, double* x_sq_norms) noexcept nogil:
    """xt[l, i] = x[i, l] in float32 (features x rows), and each row's squared norm.

    Also prefetches the ``n_prefetch`` rows after the block, one per row copied.
    """
    cdef intp_t i, l
    cdef intp_t row_bytes = n_features * <intp_t> sizeof(floating)
    cdef const floating* row
    cdef const char* next_row
    cdef double v0, v1, v2, v3, t0, t1, t2, t3
    for i in range(n_rows):
        if i < n_prefetch:
            next_row = <const char*> (x + (n_rows + i) * n_features)
            for l in range(0, row_bytes, 64):
                prefetch(next_row + l)
        row = x + i * n_features
        t0 = t1 = t2 = t3 = 0.0  # four running sums: no long dependency chain
        l = 0
        while l + 4 <= n_features:
            v0 = row[l]
            v1 = row[l + 1]
            v2 = row[l + 2]
            v3 = row[l + 3]
            xt[l * n_rows + i] = <float> v0
            xt[(l + 1) * n_rows + i] = <float> v1
            xt[(l + 2) * n_rows + i] = <float> v2
            xt[(l + 3) * n_rows + i] = <float> v3
            t0 = t0 + v0 * v0
            t1 = t1 + v1 * v1
            t2 = t2 + v2 * v2
            t3 = t3 + v3 * v3
            l = l + 4
        while l < n_features:
            v0 = row[l]
            xt[l * n_rows + i] = <float> v0
            t0 = t0 + v0 * v0
            l = l + 1
        x_sq_norms[i] = (t0 + t1) + (t2 + t3)


cdef inline void load_rows(const floating* x, intp_t n_features, intp_t n_rows, float* xr,
                           double* x_sq_norms) noexcept nogil:
    """xr = x in float32, rows as stored (rows x features; float64 input only), and each row's squared norm."""
    cdef intp_t i, l
    cdef const floating* row
    cdef float* out
    cdef double v0, v1, v2, v3, t0, t1, t2, t3
    for i in range(n_rows):
        row = x + i * n_features
        out = xr + i * n_features
        t0 = t1 = t2 = t3 = 0.0  # four running sums: no long dependency chain
        l = 0
        while l + 4 <= n_features:
            v0 = row[l]
            v1 = row[l + 1]
            v2 = row[l + 2]
            v3 = row[l + 3]
            if floating is double:
                out[l] = <float> v0
                out[l + 1] = <float> v1
                out[l + 2] = <float> v2
                out[l + 3] = <float> v3
            t0 = t0 + v0 * v0
            t1 = t1 + v1 * v1
            t2 = t2 + v2 * v2
            t3 = t3 + v3 * v3
            l = l + 4
        while l < n_features:
            v0 = row[l]
            if floating is double:
                out[l] = <float> v0
            t0 = t0 + v0 * v0
            l = l + 1
        x_sq_norms[i] = (t0 + t1) + (t2 + t3)


cdef void best_and_second_direct(const float* xt, const float* centers_rank,
                                 const float* norms_rank, intp_t n_rows, intp_t n_clusters,
                                 intp_t n_features, float* acc, int* labels, float* best,
                                 float* second) noexcept nogil:
    """best_and_second without a GEMM (few features): each centre's products in a block-long buffer.

    acc[i] = sum_l c_jl xt[l, i], feature after feature, rows along the vector lanes.
    """
    cdef intp_t i, j, l
    cdef int label, previous
    cdef float c, norm, value, current, runner_up
    cdef const float* column
    cdef bint closer
    for j in range(n_clusters):
        c = centers_rank[j * n_features]
        for i in range(n_rows):
            acc[i] = c * xt[i]
        for l in range(1, n_features):
            c = centers_rank[j * n_features + l]
            column = xt + l * n_rows
            for i in range(n_rows):
                acc[i] = acc[i] + c * column[i]
        norm = norms_rank[j]
        if j == 0:
            for i in range(n_rows):
                best[i] = norm - (acc[i] + acc[i])
                second[i] = INFINITY
                labels[i] = 0
            continue
        label = <int> j
        for i in range(n_rows):  # selects, not branches: the compiler vectorises this loop
            value = norm - (acc[i] + acc[i])
            current = best[i]
            runner_up = second[i]
            previous = labels[i]
            runner_up = value if value < runner_up else runner_up
            closer = value < current
            second[i] = current if closer else runner_up
            best[i] = value if closer else current
            labels[i] = label if closer else previous


cdef void best_and_second(const float* products_t, const float* norms_rank, intp_t n_rows,
                          intp_t n_clusters, int* labels, float* best,
                          float* second) noexcept nogil:
    """Per row i: the first j minimising norms_rank[j] - 2 products_t[j, i], its value, the runner-up.

    Rows along the vector lanes: no data-dependent branch, no dependency between rows.
    """
    cdef intp_t i, j
    cdef int label, previous
    cdef float norm, value, current, runner_up
    cdef const float* products
    cdef bint closer
    norm = norms_rank[0]
    for i in range(n_rows):
        best[i] = norm - (products_t[i] + products_t[i])
        second[i] = INFINITY
        labels[i] = 0
    for j in range(1, n_clusters):
        norm = norms_rank[j]
        label = <int> j
        products = products_t + j * n_rows
        for i in range(n_rows):  # selects, not branches: the compiler vectorises this loop
            value = norm - (products[i] + products[i])
            current = best[i]
            runner_up = second[i]
            previous = labels[i]
            runner_up = value if value < runner_up else runner_up
            closer = value < current
            second[i] = current if closer else runner_up
            best[i] = value if closer else current
            labels[i] = label if closer else previous


cdef intp_t rank_block(int path, const floating* x, intp_t n_features, intp_t n_rows,
                       intp_t n_prefetch, const float* centers_rank, const float* norms_rank,
                       intp_t n_clusters, const double* margins, float* xt, float* products_t,
                       int* labels, float* best, float* second, double* x_sq_norms,
                       intp_t* uncertain, const float* x_rank, int x_rank_stride,
                       const double* x_rank_sq_norms, int simd_level, const float* lanes_centers,
                       const float* lanes_norms) noexcept nogil:
    """Steps 1-2 and the test of step 3 for one block; returns the number of uncertain rows.

    ``labels`` gets the first minimum of ``norms_rank[j] - 2 x_i . c_j`` in
    the ranking dtype; ``uncertain[:count]`` the rows to redo exactly.
    ``path`` (:func:`kmeans_numpy.rank_path`): PATH_DIRECT, the transposed
    block without a GEMM; PATH_TRANSPOSED, the transposed block and one GEMM;
    PATH_ROWS, one GEMM on the rows as stored (a float32 copy of float64 data,
    or, when ``x_rank`` is not NULL, the block's rows of the caller's float32
    copy, ``x_rank_stride`` floats apart, with their squared norms
    ``x_rank_sq_norms``: nothing to convert); PATH_LANES, the rows as stored and the centres
    along the vector lanes (``fs_rank_lanes`` at ``simd_level``, ``lanes_centers`` d x 16 and
    ``lanes_norms``; the caller's float32 copy when there is one), no GEMM and no products buffer.
    """
    cdef char no_trans = b"N"
    cdef char trans = b"T"
    cdef float one = 1.0, zero = 0.0
    cdef int m = <int> n_rows, n = <int> n_clusters, k = <int> n_features
    cdef int lda = k
    cdef intp_t i, count = 0
    cdef double excess
    cdef float* rows
    if path == PATH_LANES:
        if x_rank != NULL:  # the caller's float32 copy (rows n_features apart): nothing to convert
            rows = <float*> x_rank
            memcpy(x_sq_norms, x_rank_sq_norms, n_rows * sizeof(double))
        else:
            load_rows(x, n_features, n_rows, xt, x_sq_norms)
            rows = <float*> x if floating is float else xt
        fs_rank_lanes(simd_level, rows, n_rows, n_features, lanes_centers, lanes_norms, labels, best,
                      second)
    elif path == PATH_DIRECT:
        load_block(x, n_features, n_rows, n_prefetch, xt, x_sq_norms)
        best_and_second_direct(xt, centers_rank, norms_rank, n_rows, n_clusters, n_features,
                               products_t, labels, best, second)
    else:
        if path == PATH_ROWS and x_rank != NULL:
            rows = <float*> x_rank
            lda = x_rank_stride
            memcpy(x_sq_norms, x_rank_sq_norms, n_rows * sizeof(double))
        elif path == PATH_ROWS:
            load_rows(x, n_features, n_rows, xt, x_sq_norms)
            rows = <float*> x if floating is float else xt
        if path == PATH_ROWS:
            # products_t^T (rows x k, column-major) = x (rows x d) centers_rank^T (d x k),
            # x being, in column-major terms, the d x rows matrix of its rows.
            sgemm(&trans, &no_trans, &m, &n, &k, &one, rows, &lda, <float*> centers_rank, &k,
                  &zero, products_t, &m)
        else:
            load_block(x, n_features, n_rows, n_prefetch, xt, x_sq_norms)
            # products_t (k x rows, row-major) = centers_rank @ xt; in BLAS's column-major
            # terms, products_t^T (rows x k) = xt^T (rows x d) centers_rank^T (d x k).
            sgemm(&no_trans, &no_trans, &m, &n, &k, &one, xt, &m, <float*> centers_rank, &k,
                  &zero, products_t, &m)
        best_and_second(products_t, norms_rank, n_rows, n_clusters, labels, best, second)
    for i in range(n_rows):
        # certain when gap > a ||x|| + b, that is gap - b > 0 and (gap - b)^2 > a^2 ||x||^2
        excess = <double> second[i] - <double> best[i] - margins[1]
        if not (excess > 0 and excess * excess > margins[0] * margins[0] * x_sq_norms[i]
                and second[i] < INFINITY and x_sq_norms[i] <= margins[2]):
            uncertain[count] = i
            count = count + 1
    return count


cdef intp_t rank_block_simd(int simd_level, const floating* x, intp_t n_features, intp_t n_rows,
                            const floating* centers, const floating* centers_sq_norms,
                            intp_t n_clusters, const double* margins, floating* products,
                            int* labels, double* x_sq_norms, intp_t* uncertain) noexcept nogil:
    """Steps 1-2 and the test of step 3 for one block on ``RANK_SIMD``; returns the number of uncertain rows.

    Ranks in the data's dtype: ``products`` (rows x k) from ``fs_kmeans_dots``
    (vector code of our own, ``simd_level`` as ``SIMD_LEVEL``), then each row's
    first minimum of ``||c_j||^2 - 2 x_i . c_j`` and its runner-up; ``margins``
    are :func:`kmeans_numpy.ranking_margin`'s for the data's dtype.
    """
    cdef intp_t i, j, count = 0
    cdef int label
    cdef floating value, best, second
    cdef const floating* p
    cdef double excess
    if floating is double:
        fs_kmeans_dots_f64(simd_level, x, n_rows, centers, n_clusters, n_features, products, x_sq_norms)
    else:
        fs_kmeans_dots_f32(simd_level, x, n_rows, centers, n_clusters, n_features, products, x_sq_norms)
    for i in range(n_rows):
        p = products + i * n_clusters
        best = centers_sq_norms[0] - (p[0] + p[0])
        second = INFINITY
        label = 0
        for j in range(1, n_clusters):
            value = centers_sq_norms[j] - (p[j] + p[j])
            if value < best:
                second = best
                best = value
                label = <int> j
            elif value < second:
                second = value
        labels[i] = label
        # certain when gap > a ||x|| + b, as in rank_block
        excess = <double> second - <double> best - margins[1]
        if not (excess > 0 and excess * excess > margins[0] * margins[0] * x_sq_norms[i]
                and second < INFINITY and x_sq_norms[i] <= margins[2]):
            uncertain[count] = i
            count = count + 1
    return count


def _simd_dots(const floating[:, ::1] X, const floating[:, ::1] centers, int simd_level,  # IN
               floating[:, ::1] out_products, double[::1] out_x_sq_norms):                    # OUT
    """``X @ centers.T`` and the rows' squared norms by ``fs_kmeans_dots`` at ``simd_level`` (for the tests)."""
    with nogil:
        if X.shape[0] > 0 and centers.shape[0] > 0 and X.shape[1] > 0:
            if floating is double:
                fs_kmeans_dots_f64(simd_level, &X[0, 0], X.shape[0], &centers[0, 0], centers.shape[0],
                                   X.shape[1], &out_products[0, 0], &out_x_sq_norms[0])
            else:
                fs_kmeans_dots_f32(simd_level, &X[0, 0], X.shape[0], &centers[0, 0], centers.shape[0],
                                   X.shape[1], &out_products[0, 0], &out_x_sq_norms[0])


def _lloyd_iter(const floating[:, ::1] X, const floating[::1] sample_weight,      # IN
                const floating[:, ::1] centers, const floating[::1] centers_sq_norms,  # IN
                const float[:, ::1] centers_f32, const float[::1] norms_f32,      # IN
                const double[::1] margins, int path, int simd_level,              # IN
                const float[:, ::1] X_rank, const double[::1] x_sq_norms_rank,    # IN
                const intp_t[::1] starts, bint with_inertia,                      # IN
                intp_t[::1] labels, double[:, :, ::1] stripe_sums,                # INOUT
                double[:, ::1] stripe_weights,                                    # INOUT
                double[:, ::1] out_sums, double[::1] out_weights,                 # OUT
                double[::1] out_inertia, intp_t[::1] out_n_changed,               # OUT
                int n_threads):
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_clusters = centers.shape[0]
    cdef intp_t n_stripes_ = starts.shape[0] - 1
    cdef double[::1] stripe_inertia = np.zeros(n_stripes_)
    cdef intp_t[::1] stripe_changed = np.zeros(n_stripes_, dtype=np.intp)
    cdef intp_t s, start, stop, n_rows, n_uncertain, u, i, j, row, label, previous
    cdef intp_t changed, blocks_ranked, blocks_exact
    cdef bint ranking
    cdef bint has_copy = X_rank.shape[0] == X.shape[0] and X.shape[0] > 0
    cdef floating best_value
    cdef double inertia, total, w
    # Thread-local buffers: the float32 ranking, then the exact GEMM.
    cdef float* xt
    cdef float* products_t
    cdef float* best
    cdef float* second
    cdef double* x_sq_norms
    cdef floating* exact
    cdef floating* p
    cdef int* nearest
    cdef intp_t* uncertain
    # PATH_LANES: the centres transposed and zero-padded to 16 lanes, +inf norms on the padding.
    cdef float* lanes_centers = NULL
    cdef float lanes_norms[LANES]
    for j in range(LANES):
        lanes_norms[j] = INFINITY
    if path == PATH_LANES:
        lanes_centers = <float*> malloc(max(1, n_features * LANES) * sizeof(float))
        for i in range(n_features * LANES):
            lanes_centers[i] = 0.0
        for j in range(n_clusters):
            lanes_norms[j] = norms_f32[j]
            for i in range(n_features):
                lanes_centers[i * LANES + j] = centers_f32[j, i]

    with nogil, parallel(num_threads=n_threads):
        xt = <float*> malloc(BLOCK * n_features * sizeof(float))
        products_t = <float*> malloc(BLOCK * n_clusters * sizeof(float))
        best = <float*> malloc(BLOCK * sizeof(float))
        second = <float*> malloc(BLOCK * sizeof(float))
        x_sq_norms = <double*> malloc(BLOCK * sizeof(double))
        exact = <floating*> malloc(BLOCK * n_clusters * sizeof(floating))
        nearest = <int*> malloc(BLOCK * sizeof(int))
        uncertain = <intp_t*> malloc(BLOCK * sizeof(intp_t))
        for s in prange(n_stripes_, schedule="dynamic"):
            inertia = 0.0
            changed = 0
            ranking = path != 0 and n_clusters > 1
            blocks_ranked = 0
            blocks_exact = 0
            start = starts[s]
            while start < starts[s + 1]:
                stop = min(start + BLOCK, starts[s + 1])
                n_rows = stop - start
                n_uncertain = 0
                for i in range(n_rows):
                    nearest[i] = 0
                if ranking and path == PATH_SIMD:
                    n_uncertain = rank_block_simd(simd_level, &X[start, 0], n_features, n_rows,
                                                  &centers[0, 0], &centers_sq_norms[0], n_clusters,
                                                  &margins[0], exact, nearest, x_sq_norms, uncertain)
                elif ranking:
                    n_uncertain = rank_block(path, &X[start, 0], n_features, n_rows,
                                             min(BLOCK, starts[s + 1] - stop), &centers_f32[0, 0],
                                             &norms_f32[0], n_clusters, &margins[0], xt, products_t,
                                             nearest, best, second, x_sq_norms, uncertain,
                                             &X_rank[start, 0] if has_copy else NULL,
                                             <int> X_rank.shape[1],
                                             &x_sq_norms_rank[start] if has_copy else NULL,
                                             simd_level, lanes_centers, &lanes_norms[0])
                if ranking:
                    # Float32 cannot separate these centres here: the exact path for every row from now on.
                    blocks_ranked = blocks_ranked + 1
                    if n_uncertain > 0:
                        blocks_exact = blocks_exact + 1
                    ranking = blocks_ranked < SWITCH or 2 * blocks_exact <= blocks_ranked
                elif n_clusters > 1:
                    for i in range(n_rows):
                        uncertain[i] = i
                    n_uncertain = n_rows
                if n_uncertain > 0:
                    # scikit-learn's own GEMM on its own 256-row chunk, then its scan.
                    partial_distances(<int> n_rows, <int> n_clusters, <int> n_features,
                                      &X[start, 0], &centers[0, 0], &centers_sq_norms[0], exact)
                    for u in range(n_uncertain):
                        i = uncertain[u]
                        p = exact + i * n_clusters
                        best_value = p[0]
                        label = 0
                        for j in range(1, n_clusters):
                            if p[j] < best_value:
                                best_value = p[j]
                                label = j
                        nearest[i] = <int> label
                # Step 4: only the rows whose label changed move between the stripe's sums.
                for i in range(n_rows):
                    row = start + i
                    label = nearest[i]
                    previous = labels[row]
                    w = sample_weight[row]
                    if with_inertia:
                        inertia = inertia + w * sq_distance(&X[row, 0], &centers[label, 0], n_features)
                    if label != previous:
                        changed = changed + 1
                        labels[row] = label
                        if previous >= 0:
                            stripe_weights[s, previous] = stripe_weights[s, previous] - w
                            accumulate_sample(&X[row, 0], -w, previous, n_features, &stripe_sums[s, 0, 0])
                        stripe_weights[s, label] = stripe_weights[s, label] + w
                        accumulate_sample(&X[row, 0], w, label, n_features, &stripe_sums[s, 0, 0])
                start = stop
            stripe_inertia[s] = inertia
            stripe_changed[s] = changed
        free(xt)
        free(products_t)
        free(best)
        free(second)
        free(x_sq_norms)
        free(exact)
        free(nearest)
        free(uncertain)
    free(lanes_centers)
    # (with_inertia False: out_inertia is 0)

    reduce_stripes(stripe_sums, stripe_weights, np.asarray(out_sums).reshape(-1), out_weights)
    total = 0.0
    changed = 0
    for s in range(n_stripes_):
        total = total + stripe_inertia[s]
        changed = changed + stripe_changed[s]
    out_inertia[0] = total
    out_n_changed[0] = changed


def _inertia(const floating[:, ::1] X, const floating[::1] sample_weight,   # IN
             const floating[:, ::1] centers, const intp_t[::1] labels,      # IN
             const intp_t[::1] starts,                                      # IN
             double[::1] out_inertia,                                       # OUT
             int n_threads):
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_stripes_ = starts.shape[0] - 1
    cdef double[::1] stripe_inertia = np.zeros(n_stripes_)
    cdef intp_t s, row
    cdef double inertia, total = 0.0
    with nogil:
        for s in prange(n_stripes_, num_threads=n_threads, schedule="dynamic"):
            inertia = 0.0
            for row in range(starts[s], starts[s + 1]):
                inertia = inertia + <double> sample_weight[row] * sq_distance(
                    &X[row, 0], &centers[labels[row], 0], n_features)
            stripe_inertia[s] = inertia
        for s in range(n_stripes_):
            total = total + stripe_inertia[s]
    out_inertia[0] = total


cdef inline floating elkan_lazy(int simd_level, const floating* x, const floating* centers_t,
                                intp_t stride, intp_t n_features, intp_t j, intp_t lanes,
                                floating* distances, char* computed) noexcept nogil:
    """||x - c_j|| (scikit-learn's arithmetic) from this row's cache, its block of ``lanes`` centres computed on first use."""
    cdef intp_t block = j // lanes
    if not computed[block]:
        if floating is double:
            fs_elkan_block_f64(simd_level, x, centers_t + block * lanes, stride, n_features,
                               distances + block * lanes)
        else:
            fs_elkan_block_f32(simd_level, x, centers_t + block * lanes, stride, n_features,
                               distances + block * lanes)
        computed[block] = 1
    return distances[j]


def _elkan_init(const floating[:, ::1] X, const floating[:, ::1] centers,          # IN
                const floating[:, ::1] centers_t,                                  # IN
                const floating[:, ::1] center_half_distances,                      # IN
                intp_t[::1] out_labels, floating[::1] out_upper,                   # OUT
                floating[:, ::1] out_lower,                                        # OUT
                int simd_level, int n_threads):
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_clusters = centers.shape[0]
    cdef intp_t stride = centers_t.shape[1]
    cdef intp_t lanes = fs_elkan_lanes(simd_level, floating is float)
    cdef intp_t i, j, best
    cdef floating min_dist, dist
    cdef floating* distances
    cdef char* computed
    with nogil, parallel(num_threads=n_threads):
        distances = <floating*> malloc(stride * sizeof(floating))
        computed = <char*> malloc(stride // lanes)
        for i in prange(X.shape[0], schedule="static"):
            memset(computed, 0, stride // lanes)
            best = 0
            min_dist = elkan_lazy(simd_level, &X[i, 0], &centers_t[0, 0], stride, n_features, 0,
                                  lanes, distances, computed)
            out_lower[i, 0] = min_dist
            for j in range(1, n_clusters):
                if min_dist > center_half_distances[best, j]:
                    dist = elkan_lazy(simd_level, &X[i, 0], &centers_t[0, 0], stride, n_features, j,
                                      lanes, distances, computed)
                    out_lower[i, j] = dist
                    if dist < min_dist:
                        min_dist = dist
                        best = j
            out_labels[i] = best
            out_upper[i] = min_dist
        free(distances)
        free(computed)


def _elkan_iter(const floating[:, ::1] X, const floating[::1] sample_weight,          # IN
                const floating[:, ::1] centers, const floating[:, ::1] centers_t,     # IN
                const floating[:, ::1] center_half_distances,                         # IN
                const floating[::1] distance_next_center,                             # IN
                const floating[::1] center_shift, const intp_t[::1] starts,           # IN
                intp_t[::1] labels, floating[::1] upper, floating[:, ::1] lower,      # INOUT
                intp_t[::1] sum_labels, double[:, :, ::1] stripe_sums,                # INOUT
                double[:, ::1] stripe_weights,                                        # INOUT
                double[:, ::1] out_sums, double[::1] out_weights,                     # OUT
                int simd_level, int n_threads):
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_clusters = centers.shape[0]
    cdef intp_t n_stripes_ = starts.shape[0] - 1
    cdef intp_t stride = centers_t.shape[1]
    cdef intp_t lanes = fs_elkan_lanes(simd_level, floating is float)
    cdef intp_t s, i, j, label, previous
    cdef double w
    cdef floating upper_bound, bound, distance
    cdef bint tight
    cdef floating* distances
    cdef char* computed

    with nogil, parallel(num_threads=n_threads):
        distances = <floating*> malloc(stride * sizeof(floating))
        computed = <char*> malloc(stride // lanes)
        for s in prange(n_stripes_, schedule="dynamic"):
            for i in range(starts[s], starts[s + 1]):
                label = labels[i]
                # Bounds after the centres' last move.
                upper_bound = upper[i] + center_shift[label]
                for j in range(n_clusters):
                    bound = lower[i, j] - center_shift[j]
                    lower[i, j] = bound if bound > 0 else 0
                tight = False
                if not distance_next_center[label] >= upper_bound:
                    memset(computed, 0, stride // lanes)
                    for j in range(n_clusters):
                        if (j != label and upper_bound > lower[i, j]
                                and upper_bound > center_half_distances[label, j]):
                            if not tight:
                                upper_bound = elkan_lazy(simd_level, &X[i, 0], &centers_t[0, 0], stride,
                                                         n_features, label, lanes, distances, computed)
                                lower[i, label] = upper_bound
                                tight = True
                            if (upper_bound > lower[i, j]
                                    or upper_bound > center_half_distances[label, j]):
                                distance = elkan_lazy(simd_level, &X[i, 0], &centers_t[0, 0], stride,
                                                      n_features, j, lanes, distances, computed)
                                lower[i, j] = distance
                                if distance < upper_bound:
                                    label = j
                                    upper_bound = distance
                    labels[i] = label
                upper[i] = upper_bound
                # Only a row whose label changed moves between the stripe's sums (the rows
                # the bounds skip are not even read).
                previous = sum_labels[i]
                if label != previous:
                    w = sample_weight[i]
                    if previous >= 0:
                        stripe_weights[s, previous] = stripe_weights[s, previous] - w
                        accumulate_sample(&X[i, 0], -w, previous, n_features, &stripe_sums[s, 0, 0])
                    stripe_weights[s, label] = stripe_weights[s, label] + w
                    accumulate_sample(&X[i, 0], w, label, n_features, &stripe_sums[s, 0, 0])
                    sum_labels[i] = label
        free(distances)
        free(computed)
    reduce_stripes(stripe_sums, stripe_weights, np.asarray(out_sums).reshape(-1), out_weights)


def _center(const floating[:, ::1] X, bint with_variance,                  # IN
            floating[:, ::1] out_centred, floating[::1] out_mean,               # OUT
            floating[::1] out_variance, int n_threads):                         # OUT
    cdef intp_t n_samples = X.shape[0], n_features = X.shape[1], i, l
    cdef floating centred
    with nogil:
        # Sums row after row in X's dtype: NumPy's order over axis 0, hence its rounding.
        for l in range(n_features):
            out_mean[l] = 0
        for i in range(n_samples):
            for l in range(n_features):
                out_mean[l] = out_mean[l] + X[i, l]
        for l in range(n_features):
            out_mean[l] = out_mean[l] / <floating> n_samples
        if with_variance:
            for l in range(n_features):
                out_variance[l] = 0
            for i in range(n_samples):
                for l in range(n_features):
                    centred = X[i, l] - out_mean[l]
                    out_centred[i, l] = centred
                    out_variance[l] = out_variance[l] + centred * centred
            for l in range(n_features):
                out_variance[l] = out_variance[l] / <floating> n_samples
        else:
            for i in prange(n_samples, num_threads=n_threads, schedule="static"):
                for l in range(n_features):
                    out_centred[i, l] = X[i, l] - out_mean[l]


def _starts(X, centers):
    return stripe_bounds(X.shape[0], n_stripes(X.shape[0], centers.shape[0], X.shape[1]))


_NO_COPY = np.empty((0, 0), dtype=np.float32)
_NO_NORMS = np.empty(0)


def kmeans_lloyd_iter(X, sample_weight, centers, centers_sq_norms, with_inertia, labels,
                      stripe_sums, stripe_weights, out_sums, out_weights, out_inertia,
                      out_n_changed, n_threads, X_rank=None, x_sq_norms=None):
    """One fused Lloyd pass (see :func:`kmeans_numpy.kmeans_lloyd_iter`)."""
    has_copy = X_rank is not None
    path = rank_path(X.shape[1], centers.shape[0], X.dtype, has_copy, simd=SIMD_LEVEL > 0,
                     lanes=SIMD_LEVEL >= 2)
    margins = np.array(ranking_margin(X.shape[1], centers_sq_norms,
                                      X.dtype if path == RANK_SIMD else np.float32))
    with blas_single_threaded():
        _lloyd_iter(X, sample_weight, centers, centers_sq_norms, centers.astype(np.float32),
                    centers_sq_norms.astype(np.float32), margins, path, SIMD_LEVEL,
                    X_rank if has_copy else _NO_COPY, x_sq_norms if has_copy else _NO_NORMS,
                    stripe_bounds(X.shape[0], stripe_sums.shape[0]), with_inertia, labels,
                    stripe_sums, stripe_weights, out_sums, out_weights, out_inertia, out_n_changed,
                    n_threads)


def kmeans_center(X, with_variance, out_centred, out_mean, out_variance, n_threads):
    """Means, centred data and variances, bit for bit NumPy's (see :func:`kmeans_numpy.kmeans_center`)."""
    _center(X, with_variance, out_centred, out_mean, out_variance, n_threads)


def kmeans_inertia(X, sample_weight, centers, labels, out_inertia, n_threads):
    """Inertia of given labels (see :func:`kmeans_numpy.kmeans_inertia`)."""
    _inertia(X, sample_weight, centers, labels, _starts(X, centers), out_inertia, n_threads)


def _centers_transposed(centers):
    """The centres as features x centres, zero-padded to a multiple of 16 centres (whole vectors at any level)."""
    n_clusters, n_features = centers.shape
    out = np.zeros((n_features, -(-n_clusters // 16) * 16), dtype=centers.dtype)
    out[:, :n_clusters] = centers.T
    return out


def kmeans_elkan_init(X, centers, center_half_distances, out_labels, out_upper, out_lower, n_threads):
    """Initial Elkan assignment and bounds (see :func:`kmeans_numpy.kmeans_elkan_init`).

    A row's distances are computed a vector of centres at a time (``fs_elkan_*``,
    at ``SIMD_LEVEL``) when the first of them is needed, each bit for bit
    scikit-learn's; the bound tests decide which are used, as in the reference.
    """
    _elkan_init(X, centers, _centers_transposed(centers), center_half_distances, out_labels,
                out_upper, out_lower, SIMD_LEVEL, n_threads)


def kmeans_elkan_iter(X, sample_weight, centers, center_half_distances, distance_next_center,
                      center_shift, labels, upper, lower, out_sums, out_weights, n_threads,
                      state=None):
    """One Elkan pass (see :func:`kmeans_numpy.kmeans_elkan_iter`; distances as :func:`kmeans_elkan_init`).

    With ``state`` (``lloyd_state``'s arrays, kept between passes) only the
    rows whose label changed move between the per-stripe sums.
    """
    if state is None:
        state = lloyd_state(X.shape[0], centers.shape[0], X.shape[1])
    _elkan_iter(X, sample_weight, centers, _centers_transposed(centers), center_half_distances,
                distance_next_center, center_shift, _starts(X, centers), labels, upper, lower,
                *state, out_sums, out_weights, SIMD_LEVEL, n_threads)
