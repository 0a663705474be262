/* kernels_avx512.c — the AVX-512 level: F/BW/VL/DQ + VNNI (vpdpbusd).
 * Compiled with -mavx512f ... (Makefile ISA_FLAGS); kernels.c calls it only
 * after checking the CPU. Scalar twins: the *_scalar functions of kernels_scalar.c.
 *
 * Quantized weights (Q8_0, Q4_0): two blocks of 32 fill a 512-bit register.
 * vpdpbusd multiplies unsigned by signed bytes, so the weights are made
 * unsigned — Q8_0 by flipping the sign bit (w + 128), Q4_0 nibbles are
 * already 0..15 (w + 8) — and the excess 128 * sum(qx) or 8 * sum(qx) is
 * subtracted by starting the integer accumulator at minus that. The block's
 * dot is then exact in 8 int32 lanes, converted to F32 and scaled by
 * d_w * d_x.
 *
 * Prefill (n_tok > 1) runs like a GEMM: a 4-row x 4-token register tile,
 * each weight register used by 4 tokens; the activation tile is first packed
 * (bytes of two blocks, the correction and the scales, each as a ready 512-bit
 * vector) into a stack buffer that stays in L1, and rows are walked in
 * blocks of 64 whose weights stay in L2 while every token tile passes.
 * Decode (n_tok == 1) is the same code with 1-token tiles: it streams the
 * weights once, one row at a time (Q8_0, floats) or four (Q4_0, whose
 * decoding needs the parallel chains), prefetching PF_BYTES ahead: a single
 * sequential stream with software prefetch measured fastest from DRAM.
 * The pack lives on the stack (36 KiB): callers' threads need that much. */
#include "engine/kernels_impl.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__AVX512VNNI__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

const int qc_avx512_built = 1;

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum {
    RT = 4,             /* rows per register tile */
    TT = 4,             /* tokens per register tile */
    RB = 64,            /* rows per L2 block */
    PACK_BYTES = 36864, /* packed activation tile (L1 is 32-48 KiB) */
#ifndef PF_BYTES
    /* decode prefetch distance, measured on Zen 5 */
    PF_BYTES = 12288,
#endif
#ifndef DEC_R
    DEC_R = 1 /* rows per decode tile (Q8_0 and float; Q4_0 uses RT) */
#endif
};

/* ==== small helpers ==== */

/* Lanes 0-7 = half h0, lanes 8-15 = half h1, as F32. */
ALWAYS_INLINE __m512 pair_scales(uint16_t h0, uint16_t h1) {
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | (uint32_t)h1 << 16)));
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

/* ==== packed activations ==== */

/* One token's share of a pair of blocks, ready for the inner loop. */
typedef struct {
    __m512i xq;   /* the 64 quants of blocks 2p, 2p+1 */
    __m512i corr; /* lane 0: -k * sum(block 2p), lane 8: -k * sum(block 2p+1) */
    __m512 dx;    /* lanes 0-7: d of block 2p, lanes 8-15: d of block 2p+1 */
} xpack_t;

/* Packs blocks [b0, b1) of nt tokens (rows of act with nb blocks each,
 * starting at token t0) as pairs: out[p * nt + t]. An odd last block is
 * paired with zeros. k is the unsigned-weight excess: 128 (Q8_0) or 8 (Q4_0). */
static void pack_act(const qc_block_q8_act *act, int64_t nb, int t0, int nt, int64_t b0, int64_t b1, int k,
                     xpack_t *out) {
    for (int64_t b = b0, p = 0; b < b1; b += 2, p++) {
        const int two = b + 1 < b1;
        for (int t = 0; t < nt; t++) {
            const qc_block_q8_act *a = act + (size_t)(t0 + t) * (size_t)nb + (size_t)b;
            const __m256i lo = _mm256_loadu_si256((const __m256i *)a[0].qs);
            const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)a[1].qs) : _mm256_setzero_si256();
            xpack_t *o = out + p * nt + t;
            o->xq = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            const int c1 = two ? -k * a[1].sum : 0;
            o->corr = _mm512_setr_epi32(-k * a[0].sum, 0, 0, 0, 0, 0, 0, 0, c1, 0, 0, 0, 0, 0, 0, 0);
            o->dx = _mm512_insertf32x8(_mm512_set1_ps(a[0].d), _mm256_set1_ps(two ? a[1].d : 0.0f), 1);
        }
    }
}

/* ==== quantized weights ==== */

/* Unsigned weights of the pair of blocks at p (one block when half):
 * bytes 0-31 = block 0, 32-63 = block 1 (zeros when half). */
ALWAYS_INLINE __m512i load_w_q8(const unsigned char *p, int half) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(p + 2));
    const __m512i z = half ? _mm512_zextsi256_si512(b0)
                           : _mm512_inserti64x4(_mm512_castsi256_si512(b0),
                                                _mm256_loadu_si256((const __m256i *)(p + QC_Q8_0_BYTES + 2)), 1);
    return _mm512_xor_si512(z, _mm512_set1_epi8((char)0x80));
}

ALWAYS_INLINE __m512i load_w_q4(const unsigned char *p, int half) {
    const __m128i q0 = _mm_loadu_si128((const __m128i *)(p + 2));
    const __m256i v = half ? _mm256_zextsi128_si256(q0)
                           : _mm256_inserti128_si256(_mm256_castsi128_si256(q0),
                                                     _mm_loadu_si128((const __m128i *)(p + QC_Q4_0_BYTES + 2)), 1);
    /* [q0 q0 q1 q1] by 128-bit lanes, odd lanes shifted to their high nibbles */
    __m512i z = _mm512_shuffle_i64x2(_mm512_castsi256_si512(v), _mm512_castsi256_si512(v), 0x50);
    z = _mm512_mask_srli_epi16(z, 0xff00ff00u, z, 4);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0f));
}

/* One R x T tile over np pairs (plus a lone last block when tail): rows at
 * w0 + r * row_bytes (pointing at the first block of the chunk), packed
 * tokens px. Writes y[t * ldy + r] (adds to it when accumulate). */
ALWAYS_INLINE void tile_quant(const int q4, const int R, const int T, const unsigned char *w0, size_t row_bytes,
                              const xpack_t *px, int64_t np, int tail, float *y, int64_t ldy, int accumulate,
                              int pf) {
    const size_t bb = q4 ? QC_Q4_0_BYTES : QC_Q8_0_BYTES;
    __m512 acc[RT][TT];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();

    const int64_t steps = np + (tail ? 1 : 0);
    for (int64_t p = 0; p < steps; p++) {
        const int half = p == np;
        __m512i wv[RT];
        __m512 dw[RT];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const unsigned char *wp = w0 + (size_t)r * row_bytes + (size_t)p * 2 * bb;
            if (pf) { /* a Q8_0 pair (68 bytes) can touch 3 lines */
                _mm_prefetch((const char *)wp + PF_BYTES, _MM_HINT_T0);
                if (!q4) _mm_prefetch((const char *)wp + PF_BYTES + 2 * bb - 1, _MM_HINT_T0);
            }
            if (half) {
                wv[r] = q4 ? load_w_q4(wp, 1) : load_w_q8(wp, 1);
                dw[r] = pair_scales(qc_load_u16(wp), 0);
            } else {
                wv[r] = q4 ? load_w_q4(wp, 0) : load_w_q8(wp, 0);
                dw[r] = pair_scales(qc_load_u16(wp), qc_load_u16(wp + bb));
            }
        }
        const xpack_t *xp = px + p * T;
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const __m512i xq = xp[t].xq, corr = xp[t].corr;
            const __m512 dx = xp[t].dx;
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const __m512i dp = _mm512_dpbusd_epi32(corr, wv[r], xq);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_mul_ps(dw[r], dx), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const float s = _mm512_reduce_add_ps(acc[r][t]);
            float *o = y + (size_t)t * (size_t)ldy + r;
            *o = accumulate ? *o + s : s;
        }
}

/* Rows [r, re) of a packed chunk against T tokens: 4-row tiles, then single
 * rows. w0 points at row r's first block of the chunk. */
ALWAYS_INLINE void rows_quant(const int q4, const int T, const unsigned char *w0, size_t row_bytes, int64_t n_rows,
                              const xpack_t *px, int64_t np, int tail, float *y, int64_t ldy, int accumulate, int pf) {
    int64_t i = 0;
    const int R = T > 1 || q4 ? RT : DEC_R;
    for (; i + R <= n_rows; i += R)
        tile_quant(q4, R, T, w0 + (size_t)i * row_bytes, row_bytes, px, np, tail, y + i, ldy, accumulate, pf);
    for (; i < n_rows; i++)
        tile_quant(q4, 1, T, w0 + (size_t)i * row_bytes, row_bytes, px, np, tail, y + i, ldy, accumulate, pf);
}

static void matmul_quant(const qc_tensor_t *w, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0,
                         int64_t r1) {
    const int q4 = w->dtype == QC_DTYPE_Q4_0;
    const size_t bb = q4 ? QC_Q4_0_BYTES : QC_Q8_0_BYTES;
    const int64_t nb = w->cols / QC_QK;
    const size_t row_bytes = (size_t)nb * bb;
    const unsigned char *wd = w->data;
    _Alignas(64) xpack_t pack[PACK_BYTES / sizeof(xpack_t)];
    const int tt = n_tok < TT ? n_tok : TT;
    /* the first token tile of a row block streams its weights from memory:
     * prefetched as in decode (the later tiles find them in L2) */
    int pf;
    /* blocks per chunk: as many pairs as the pack holds for a full tile */
    const int64_t chunk = 2 * (int64_t)(PACK_BYTES / sizeof(xpack_t) / (size_t)tt);

    for (int64_t rb = r0; rb < r1; rb += RB) {
        const int64_t re = rb + RB < r1 ? rb + RB : r1;
        for (int64_t b0 = 0; b0 < nb; b0 += chunk) {
            const int64_t b1 = b0 + chunk < nb ? b0 + chunk : nb;
            const int64_t np = (b1 - b0) / 2;
            const int tail = (int)((b1 - b0) & 1);
            const int accumulate = b0 > 0;
            const unsigned char *w0 = wd + (size_t)rb * row_bytes + (size_t)b0 * bb;
            for (int t0 = 0; t0 < n_tok; t0 += TT) {
                const int nt = n_tok - t0 < TT ? n_tok - t0 : TT;
                pf = t0 == 0;
                pack_act(act, nb, t0, nt, b0, b1, q4 ? 8 : 128, pack);
                float *yt = y + (size_t)t0 * (size_t)ldy + rb;
                if (q4) {
                    switch (nt) {
                    case 4: rows_quant(1, 4, w0, row_bytes, re - rb, pack, np, tail, yt, ldy, accumulate, pf); break;
                    case 3: rows_quant(1, 3, w0, row_bytes, re - rb, pack, np, tail, yt, ldy, accumulate, pf); break;
                    case 2: rows_quant(1, 2, w0, row_bytes, re - rb, pack, np, tail, yt, ldy, accumulate, pf); break;
                    default: rows_quant(1, 1, w0, row_bytes, re - rb, pack, np, tail, yt, ldy, accumulate, pf); break;
                    }
                } else {
                    switch (nt) {
                    case 4: rows_quant(0, 4, w0, row_bytes, re - rb, pack, np, tail, yt, ldy, accumulate, pf); break;
                    case 3: rows_quant(0, 3, w0, row_bytes, re - rb, pack, np, tail, yt, ldy, accumulate, pf); break;
                    case 2: rows_quant(0, 2, w0, row_bytes, re - rb, pack, np, tail, yt, ldy, accumulate, pf); break;
                    default: rows_quant(0, 1, w0, row_bytes, re - rb, pack, np, tail, yt, ldy, accumulate, pf); break;
                    }
                }
            }
        }
    }
}

/* ==== float weights ==== */

/* 16 weights from p (element c0 on), widened to F32; only the first n
 * (n < 16 with the mask) when partial. */
ALWAYS_INLINE __m512 load_w_f(const qc_dtype_t dt, const unsigned char *p, __mmask16 m, int partial) {
    switch (dt) {
    case QC_DTYPE_F16: {
        const __m256i h = partial ? _mm256_maskz_loadu_epi16(m, p) : _mm256_loadu_si256((const __m256i *)p);
        return _mm512_cvtph_ps(h);
    }
    case QC_DTYPE_BF16: {
        const __m256i h = partial ? _mm256_maskz_loadu_epi16(m, p) : _mm256_loadu_si256((const __m256i *)p);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    default: return partial ? _mm512_maskz_loadu_ps(m, p) : _mm512_loadu_ps(p);
    }
}

/* One R x T tile of float weights: rows at w0 + r * row_bytes, tokens
 * x0 + t * n. Writes y[t * ldy + r]. */
ALWAYS_INLINE void tile_float(const qc_dtype_t dt, const int R, const int T, const unsigned char *w0,
                              size_t row_bytes, const float *x0, int64_t n, float *y, int64_t ldy, int pf) {
    const size_t es = dt == QC_DTYPE_F32 ? 4 : 2;
    __m512 acc[RT][TT];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) {
        __m512 wv[RT];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const unsigned char *wp = w0 + (size_t)r * row_bytes + (size_t)c * es;
            if (pf) _mm_prefetch((const char *)wp + PF_BYTES, _MM_HINT_T0);
            wv[r] = load_w_f(dt, wp, 0, 0);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const __m512 xv = _mm512_loadu_ps(x0 + (size_t)t * (size_t)n + c);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    if (c < n) {
        const __mmask16 m = (__mmask16)((1u << (n - c)) - 1);
        __m512 wv[RT];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) wv[r] = load_w_f(dt, w0 + (size_t)r * row_bytes + (size_t)c * es, m, 1);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, x0 + (size_t)t * (size_t)n + c);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) y[(size_t)t * (size_t)ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

ALWAYS_INLINE void rows_float(const qc_dtype_t dt, const int T, const unsigned char *w0, size_t row_bytes,
                              int64_t n_rows, const float *x0, int64_t n, float *y, int64_t ldy, int pf) {
    int64_t i = 0;
    const int R = T == 1 ? DEC_R : RT;
    for (; i + R <= n_rows; i += R) tile_float(dt, R, T, w0 + (size_t)i * row_bytes, row_bytes, x0, n, y + i, ldy, pf);
    for (; i < n_rows; i++) tile_float(dt, 1, T, w0 + (size_t)i * row_bytes, row_bytes, x0, n, y + i, ldy, pf);
}

/* One weight type's driver, instantiated per type so every tile is
 * specialized. */
ALWAYS_INLINE void matmul_float_dt(const qc_dtype_t dt, const qc_tensor_t *w, const float *x, int n_tok, float *y,
                                   int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t n = w->cols;
    const size_t row_bytes = (size_t)n * (dt == QC_DTYPE_F32 ? 4 : 2);
    const unsigned char *wd = w->data;
    for (int64_t rb = r0; rb < r1; rb += RB) {
        const int64_t re = rb + RB < r1 ? rb + RB : r1;
        const unsigned char *w0 = wd + (size_t)rb * row_bytes;
        for (int t0 = 0; t0 < n_tok; t0 += TT) {
            const int nt = n_tok - t0 < TT ? n_tok - t0 : TT;
            const float *x0 = x + (size_t)t0 * (size_t)n;
            float *yt = y + (size_t)t0 * (size_t)ldy + rb;
            switch (nt) {
            case 4: rows_float(dt, 4, w0, row_bytes, re - rb, x0, n, yt, ldy, t0 == 0); break;
            case 3: rows_float(dt, 3, w0, row_bytes, re - rb, x0, n, yt, ldy, t0 == 0); break;
            case 2: rows_float(dt, 2, w0, row_bytes, re - rb, x0, n, yt, ldy, t0 == 0); break;
            default: rows_float(dt, 1, w0, row_bytes, re - rb, x0, n, yt, ldy, t0 == 0); break;
            }
        }
    }
}

static void matmul_f32(const qc_tensor_t *w, const float *x, int n_tok, float *y, int64_t ldy, int64_t r0,
                       int64_t r1) {
    matmul_float_dt(QC_DTYPE_F32, w, x, n_tok, y, ldy, r0, r1);
}

static void matmul_f16(const qc_tensor_t *w, const float *x, int n_tok, float *y, int64_t ldy, int64_t r0,
                       int64_t r1) {
    matmul_float_dt(QC_DTYPE_F16, w, x, n_tok, y, ldy, r0, r1);
}

static void matmul_bf16(const qc_tensor_t *w, const float *x, int n_tok, float *y, int64_t ldy, int64_t r0,
                        int64_t r1) {
    matmul_float_dt(QC_DTYPE_BF16, w, x, n_tok, y, ldy, r0, r1);
}

/* ==== entry points ==== */

void qc_matmul_avx512(const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y, int64_t ldy,
                      int64_t r0, int64_t r1) {
    if (n_tok <= 0 || r0 >= r1) return;
    switch (w->dtype) {
    case QC_DTYPE_F32: matmul_f32(w, x, n_tok, y, ldy, r0, r1); break;
    case QC_DTYPE_F16: matmul_f16(w, x, n_tok, y, ldy, r0, r1); break;
    case QC_DTYPE_BF16: matmul_bf16(w, x, n_tok, y, ldy, r0, r1); break;
    case QC_DTYPE_Q8_0:
    case QC_DTYPE_Q4_0: matmul_quant(w, act, n_tok, y, ldy, r0, r1); break;
    default: break; /* Q4_K/Q6_K: converted at load, never multiplied */
    }
}

float qc_dot_f32_avx512(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* Same steps as kernels_scalar.c's round_half_away, 16 lanes at a time. */
void qc_act_row_avx512(const float *x, int64_t cols, qc_block_q8_act *out) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    for (int64_t b = 0; b < cols / QC_QK; b++, x += QC_QK) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        const __m512 m = _mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask));
        const float amax = _mm512_reduce_max_ps(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m512 vid = _mm512_set1_ps(id);
        __m512i q[2];
        for (int h = 0; h < 2; h++) {
            const __m512 v = _mm512_mul_ps(h ? v1 : v0, vid);
            __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m512 f = _mm512_sub_ps(v, t);
            t = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(f, half, _CMP_GE_OQ), t, one);
            t = _mm512_mask_sub_ps(t, _mm512_cmp_ps_mask(f, _mm512_sub_ps(_mm512_setzero_ps(), half), _CMP_LE_OQ), t,
                                   one);
            q[h] = _mm512_cvttps_epi32(t);
        }
        _mm_storeu_si128((__m128i *)out[b].qs, _mm512_cvtepi32_epi8(q[0]));
        _mm_storeu_si128((__m128i *)(out[b].qs + 16), _mm512_cvtepi32_epi8(q[1]));
        /* The scale is kept at half precision, as ggml's block_q8_0 keeps it for
         * the activations, so the products equal llama.cpp's. */
        out[b].d = qc_f16_to_f32(qc_f32_to_f16(d));
        out[b].sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q[0], q[1]));
    }
}

/* ==== attention ==== */

typedef __m512 vec_t;
#define ATT_NAME qc_attend_avx512
#define ATT_W 16
ALWAYS_INLINE vec_t v_load(const float *p) { return _mm512_loadu_ps(p); }
ALWAYS_INLINE void v_store(float *p, vec_t v) { _mm512_storeu_ps(p, v); }
ALWAYS_INLINE vec_t v_add(vec_t a, vec_t b) { return _mm512_add_ps(a, b); }
ALWAYS_INLINE vec_t v_mul(vec_t a, vec_t b) { return _mm512_mul_ps(a, b); }
ALWAYS_INLINE vec_t v_set1(float x) { return _mm512_set1_ps(x); }
ALWAYS_INLINE vec_t v_zero(void) { return _mm512_setzero_ps(); }
ALWAYS_INLINE vec_t v_fmadd(vec_t a, vec_t b, vec_t c) { return _mm512_fmadd_ps(a, b, c); }
ALWAYS_INLINE float v_hsum(vec_t a) { return _mm512_reduce_add_ps(a); }
ALWAYS_INLINE vec_t v_load_h(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
ALWAYS_INLINE vec_t v_round_h(vec_t x) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
#include "engine/attend_simd.h"

#else /* built without the AVX-512 flags: never selected */

const int qc_avx512_built = 0;

void qc_matmul_avx512(const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y, int64_t ldy,
                      int64_t r0, int64_t r1) {
    qc_matmul_scalar(w, x, act, n_tok, y, ldy, r0, r1);
}

float qc_dot_f32_avx512(const float *a, const float *b, int64_t n) { return qc_dot_f32_scalar(a, b, n); }

void qc_act_row_avx512(const float *x, int64_t cols, qc_block_q8_act *out) { qc_act_row_scalar(x, cols, out); }

void qc_attend_avx512(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                      float *scores, float *o) {
    qc_attend_scalar(q, r, n, hd, scale, f16_acc, scores, o);
}

#endif
