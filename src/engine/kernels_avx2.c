/* kernels_avx2.c — the AVX2 level: AVX2 + FMA + F16C. Compiled with -mavx2
 * -mfma -mf16c (Makefile ISA_FLAGS); kernels.c selects it only after
 * checking the CPU.
 *
 * A deliberate per-level twin of the scalar micro-kernels (kernels_scalar.c):
 * the same tiles, activation quantization, dot product and attention, in
 * AVX2; matmul.c's driver walks the tiles (kernels_impl.h). test_kernels
 * compares every function here with its scalar twin.
 *
 * Quantized weights, one block of 32 per 256-bit register, as ggml does:
 * vpmaddubsw (unsigned x signed bytes -> pairs summed in int16) then vpmaddwd
 * by ones (-> int32).
 *   Q8_0: both operands are signed, so the sign trick: |x| (unsigned) times
 *         w with x's sign moved onto it. 2 * 127 * 127 fits int16.
 *   Q4_0: nibbles are unsigned already (w + 8); the excess 8 * sum(qx) is
 *         added back as an integer, exact. 2 * 15 * 127 fits int16.
 * Tiles of 2 rows x 4 tokens (16 ymm registers), 4 x 1 for decode; float
 * weights use 4 rows x 2 tokens of FMA accumulators, 4 x 1 for decode. Rows
 * go in blocks of 64 that stay in L2 while every token tile passes over
 * them. */
#include "engine/kernels_impl.h"
#include "engine/quants.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#include "engine/kquant_x86.h"
#include <math.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* RB rows per L2 block; quantized tiles QR rows x QT tokens (decode: QR1
 * rows, four weight streams at once: ~10% more GB/s from memory than two
 * for Q8_0 here), K-quant tiles KR x KT, float tiles FR x FT; decode
 * prefetches PF_BYTES ahead (see kernels_avx512.c). */
enum { RB = 64, QR = 2, QT = 4, QR1 = 4, KR = 2, KT = 4, FR = 4, FT = 2, PF_BYTES = 12288 };

/* ==== small helpers ==== */

ALWAYS_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

ALWAYS_INLINE float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

/* ==== quantized weights ==== */

/* The 32 bits of x as 32 bytes, 0xff where the bit is set (byte k: bit k),
 * as ggml's bytes_from_bits_32. */
ALWAYS_INLINE __m256i bits_to_bytes(uint32_t x) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i b = _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf),
                                      _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

/* One R x T tile (see qc_mm_tile_t) over a->k blocks: token t's blocks at
 * a->x + t * a->x_stride. kind: 0 Q8_0, 1 Q4_0, 2 Q5_0 (Q4_0's nibbles with
 * a 5th bit from qh, unsigned like Q4_0's, the excess 16 * sum(qx)). */
ALWAYS_INLINE void tile_quant(const int kind, const int R, const int T, const qc_mm_tile_t *a) {
    const int q4 = kind != 0; /* unsigned weights less an offset */
    const unsigned char *w0 = a->w, *x0 = a->x;
    const size_t row_bytes = a->w_stride, x_stride = a->x_stride;
    const int64_t nb = a->k, ldy = a->ldy;
    float *y = a->y;
    const int pf = a->prefetch;
    const size_t bb = kind == 2 ? sizeof(qc_block_q5_0) : q4 ? QC_Q4_0_BYTES : QC_Q8_0_BYTES;
    const int offset = kind == 2 ? 16 : 8;
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256 acc[QR1 > QR ? QR1 : QR][QT];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();

    for (int64_t b = 0; b < nb; b++) {
        __m256i wv[QR1 > QR ? QR1 : QR];
        __m256 dw[QR1 > QR ? QR1 : QR];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const unsigned char *p = w0 + (size_t)r * row_bytes + (size_t)b * bb;
            if (pf) _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
            if (kind == 2) {
                const qc_block_q5_0 *b5 = (const qc_block_q5_0 *)p;
                const __m128i q = _mm_loadu_si128((const __m128i *)b5->qs);
                const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
                uint32_t qh;
                __builtin_memcpy(&qh, b5->qh, 4);
                wv[r] = _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi8(0x0f)),
                                        _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
            } else if (q4) {
                const __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
                const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
                wv[r] = _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
            } else {
                wv[r] = _mm256_loadu_si256((const __m256i *)(p + 2));
            }
            dw[r] = _mm256_set1_ps(f16_to_f32(qc_load_u16(p)));
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const qc_block_q8_act *ab = (const qc_block_q8_act *)(x0 + (size_t)t * x_stride) + b;
            const __m256i xq = _mm256_loadu_si256((const __m256i *)ab->qs);
            const __m256 dx = _mm256_set1_ps(ab->d);
            if (q4) {
                const __m256i corr = _mm256_setr_epi32(-offset * ab->sum, 0, 0, 0, 0, 0, 0, 0);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    __m256i dp = _mm256_madd_epi16(_mm256_maddubs_epi16(wv[r], xq), ones16);
                    dp = _mm256_add_epi32(dp, corr);
                    acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp), _mm256_mul_ps(dw[r], dx), acc[r][t]);
                }
            } else {
                const __m256i ax = _mm256_sign_epi8(xq, xq);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    const __m256i sw = _mm256_sign_epi8(wv[r], xq);
                    const __m256i dp = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sw), ones16);
                    acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp), _mm256_mul_ps(dw[r], dx), acc[r][t]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) y[(size_t)t * (size_t)ldy + r] = hsum8(acc[r][t]);
}

/* The accumulators of an R x T tile whose blocks have two terms with their
 * own F32 scales: 8 lanes of the quants' term, one float of the offsets'
 * (Q4_1/Q5_1's m * s, the K-quants' mins) per output. */
typedef struct {
    __m256 v[2][4];
    float m[2][4];
} acc2_t;
_Static_assert(QR <= 2 && QT <= 4 && KR <= 2 && KT <= 4, "acc2_t holds the tiles");

ALWAYS_INLINE void acc2_zero(acc2_t *c, const int R, const int T) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) c->v[r][t] = _mm256_setzero_ps(), c->m[r][t] = 0.0f;
}

/* y[t * ldy + r] = the lanes' sum + the offsets' term */
ALWAYS_INLINE void acc2_store(const acc2_t *c, const int R, const int T, float *y, int64_t ldy) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) y[(size_t)t * (size_t)ldy + r] = hsum8(c->v[r][t]) + c->m[r][t];
}

/* One R x T tile of Q4_1 (kind 0) or Q5_1 (kind 1) weights on ggml's Q8_1
 * activations: the unsigned quants (Q5_1's 5th bit from qh, as Q5_0's)
 * times the activations, an exact integer per block scaled by d_w * d_x,
 * plus the offset's term m_w * s_x (s: the half d * sum(qx) of the block),
 * as ggml's vec_dot. */
ALWAYS_INLINE void tile_q8_1(const int kind, const int R, const int T, const qc_mm_tile_t *a) {
    const unsigned char *w0 = a->w, *x0 = a->x;
    const size_t row_bytes = a->w_stride, x_stride = a->x_stride;
    const int64_t nb = a->k, ldy = a->ldy;
    const int pf = a->prefetch;
    const size_t bb = kind ? sizeof(qc_block_q5_1) : sizeof(qc_block_q4_1);
    const __m256i ones16 = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0f);
    acc2_t c;
    acc2_zero(&c, R, T);
    for (int64_t b = 0; b < nb; b++) {
        __m256i wv[QR];
        float dw[QR], mw[QR];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const unsigned char *p = w0 + (size_t)r * row_bytes + (size_t)b * bb;
            if (pf) _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
            const __m128i q = _mm_loadu_si128((const __m128i *)(p + (kind ? 8 : 4)));
            wv[r] = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1), m4);
            if (kind) {
                uint32_t qh;
                __builtin_memcpy(&qh, p + 4, 4);
                wv[r] = _mm256_or_si256(wv[r], _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
            }
            dw[r] = f16_to_f32(qc_load_u16(p));
            mw[r] = f16_to_f32(qc_load_u16(p + 2));
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const qc_block_q8_1 *ab = (const qc_block_q8_1 *)(x0 + (size_t)t * x_stride) + b;
            const __m256i xq = _mm256_loadu_si256((const __m256i *)ab->qs);
            const float dx = f16_to_f32(qc_load_u16(ab->d)), sx = f16_to_f32(qc_load_u16(ab->s));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const __m256i dp = _mm256_madd_epi16(_mm256_maddubs_epi16(wv[r], xq), ones16);
                c.v[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp), _mm256_set1_ps(dw[r] * dx), c.v[r][t]);
                c.m[r][t] += mw[r] * sx;
            }
        }
    }
    acc2_store(&c, R, T, a->y, ldy);
}

/* ==== K-quants: 256-weight super-blocks on Q8_K activations ==== */

/* Q4_K/Q5_K's 8 sub-block scales and mins (qc_k4_scale_words) as 16 bytes. */
ALWAYS_INLINE __m128i scales_k4(const uint8_t *q) {
    uint32_t w[4];
    qc_k4_scale_words(q, w);
    return _mm_loadu_si128((const __m128i *)w);
}

/* The quants of half n (elements 128n .. 128n + 127) of a super-block with
 * 16-weight sub-blocks, as unsigned bytes, group g (elements 128n + 32g +
 * l, l = 0..31, sub-blocks 8n + 2g and 8n + 2g + 1) in q[g]: Q2_K 0..3 (bits
 * 2g of qs[32n + l]), Q3_K 0..7 (those and 4 times bit 4n + g of hmask[l]:
 * the scalar's q + 4), Q6_K 0..63 (the scalar's q + 32). The 16-bit shifts
 * take no bit across a byte: at most bit 7 is shifted to bit 0. */
ALWAYS_INLINE void kq16_half(const qc_dtype_t kt, const unsigned char *p, const int n, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
    if (kt == QC_DTYPE_Q6_K) {
        const qc_block_q6_K *k6 = (const qc_block_q6_K *)p;
        const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(k6->ql + 64 * n));
        const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(k6->ql + 64 * n + 32));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(k6->qh + 32 * n));
        q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
        return;
    }
    const uint8_t *qs = kt == QC_DTYPE_Q2_K ? ((const qc_block_q2_K *)p)->qs : ((const qc_block_q3_K *)p)->qs;
    const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * n));
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) q[g] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * g), m2);
    if (kt == QC_DTYPE_Q3_K) {
        const __m256i hm = _mm256_loadu_si256((const __m256i *)((const qc_block_q3_K *)p)->hmask);
        const __m256i one = _mm256_set1_epi8(1);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++)
            q[g] = _mm256_or_si256(q[g], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * n + g), one), 2));
    }
}

/* One R x T tile of K-quant weights over a->k super-blocks. Per row and
 * super-block the quants are unpacked to unsigned bytes (Q2_K 0..3, Q3_K
 * 0..7, Q4_K 0..15, Q5_K 0..31, Q6_K 0..63), multiplied with the
 * activations by vpmaddubsw (2 * 63 * 128 fits int16), scaled per sub-block
 * by vpmaddwd into int32 lanes: one exact integer per token and
 * super-block. Q3_K's and Q6_K's excess (4 or 32) * sum_s sc_s bsum_s is an
 * exact integer too; the mins' term of Q2_K/Q4_K/Q5_K (dmin * mn * bsum)
 * has its own F32 scale and is kept apart. The sub-block scales reach the
 * lanes by vpshufb from one register per row and super-block, and both
 * corrections are vpmaddwd of the activations' 16 bsums by the scales
 * (mins) summed across lanes: the same integers as the scalar sums, so the
 * float steps are unchanged. Q2_K takes the scalar's steps exactly (one
 * integer per super-block: sumf += dall * isum - dmin * summs). */
ALWAYS_INLINE void tile_kq(const qc_dtype_t kt, const int R, const int T, const qc_mm_tile_t *a) {
    const unsigned char *w0 = a->w, *x0 = a->x;
    const size_t row_bytes = a->w_stride, x_stride = a->x_stride;
    const int64_t nb = a->k, ldy = a->ldy;
    const int pf = a->prefetch;
    const size_t bb = qc_kquant_block_bytes(kt);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    acc2_t c;
    acc2_zero(&c, R, T);

    for (int64_t b = 0; b < nb; b++) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const unsigned char *p = w0 + (size_t)r * row_bytes + (size_t)b * bb;
            if (pf)
                for (size_t o = 0; o < bb; o += 64) _mm_prefetch((const char *)p + PF_BYTES + o, _MM_HINT_T0);
            __m256i isum[KT];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) isum[t] = _mm256_setzero_si256();
            if (kt == QC_DTYPE_Q2_K || kt == QC_DTYPE_Q3_K || kt == QC_DTYPE_Q6_K) {
                __m256i mn16 = _mm256_setzero_si256();
                const __m256i sc16 = kq16_scales(kt, p, &mn16);
#pragma GCC unroll 2
                for (int n = 0; n < 2; n++) {
                    /* scales 8n..8n+7 in both lanes */
                    const __m256i scn = n ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
                    __m256i q[4];
                    kq16_half(kt, p, n, q);
#pragma GCC unroll 4
                    for (int g = 0; g < 4; g++) {
                        /* elements 0..15 of the group take scale 8n + 2g, 16..31 the next */
                        const __m256i vs = _mm256_shuffle_epi8(
                            scn, _mm256_set_m128i(_mm_set1_epi16((short)(0x0302 + 0x0404 * g)),
                                                  _mm_set1_epi16((short)(0x0100 + 0x0404 * g))));
#pragma GCC unroll 4
                        for (int t = 0; t < T; t++) {
                            const qc_block_q8_K *xb = (const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b;
                            const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb->qs + 128 * n + 32 * g));
                            isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[g], xv), vs));
                        }
                    }
                }
                /* d and dmin: Q2_K's at 80, 82; Q3_K's d at 108; Q6_K's at 208 */
                const float d = f16_to_f32(qc_load_u16(kt == QC_DTYPE_Q2_K   ? ((const qc_block_q2_K *)p)->d
                                                       : kt == QC_DTYPE_Q3_K ? ((const qc_block_q3_K *)p)->d
                                                                             : ((const qc_block_q6_K *)p)->d));
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    const qc_block_q8_K *xb = (const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b;
                    const __m256i bs = _mm256_loadu_si256((const __m256i *)xb->bsums);
                    if (kt == QC_DTYPE_Q2_K) {
                        const float dmin = f16_to_f32(qc_load_u16(((const qc_block_q2_K *)p)->dmin));
                        const int32_t summs = kq_hsum_i32(_mm256_madd_epi16(bs, mn16));
                        c.m[r][t] += (xb->d * d) * (float)kq_hsum_i32(isum[t]) - (xb->d * dmin) * (float)summs;
                        continue;
                    }
                    const int32_t corr = kq_hsum_i32(_mm256_madd_epi16(bs, sc16)) * (kt == QC_DTYPE_Q3_K ? -4 : -32);
                    const __m256i is = _mm256_add_epi32(isum[t], _mm256_setr_epi32(corr, 0, 0, 0, 0, 0, 0, 0));
                    c.v[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(d * xb->d), c.v[r][t]);
                }
            } else {
                /* Q4_K / Q5_K: d, dmin, scales at the same offsets */
                const qc_block_q4_K *k4 = (const qc_block_q4_K *)p;
                const uint8_t *qs = kt == QC_DTYPE_Q4_K ? k4->qs : ((const qc_block_q5_K *)p)->qs;
                const __m128i scmn = scales_k4(k4->scales);
                /* the 8 scales as int16 in both lanes; min j for bsums 2j and 2j + 1 */
                const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scmn));
                const __m256i mn16 = _mm256_cvtepu8_epi16(
                    _mm_shuffle_epi8(scmn, _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)));
                __m256i hb = _mm256_setzero_si256();
                if (kt == QC_DTYPE_Q5_K) hb = _mm256_loadu_si256((const __m256i *)((const qc_block_q5_K *)p)->qh);
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
                    __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                    if (kt == QC_DTYPE_Q5_K) {
                        /* the 5th bit of sub-block 2j is bit 2j of qh, of 2j+1 bit 2j+1 */
                        const __m256i one = _mm256_set1_epi8(1);
                        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4));
                        hi = _mm256_or_si256(hi,
                                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4));
                    }
                    /* scale 2j (2j + 1) in every int16 */
                    const __m256i slo = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(0x0100 + 0x0404 * j)));
                    const __m256i shi = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(0x0302 + 0x0404 * j)));
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++) {
                        const qc_block_q8_K *xb = (const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b;
                        const __m256i xl = _mm256_loadu_si256((const __m256i *)(xb->qs + 64 * j));
                        const __m256i xh = _mm256_loadu_si256((const __m256i *)(xb->qs + 64 * j + 32));
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xl), slo));
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xh), shi));
                    }
                }
                const float d = f16_to_f32(qc_load_u16(k4->d)), dmin = f16_to_f32(qc_load_u16(k4->dmin));
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    const qc_block_q8_K *xb = (const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b;
                    const int32_t summs =
                        kq_hsum_i32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xb->bsums), mn16));
                    c.v[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * xb->d), c.v[r][t]);
                    c.m[r][t] -= (dmin * xb->d) * (float)summs;
                }
            }
        }
    }
    acc2_store(&c, R, T, a->y, ldy);
}

/* ==== float weights ==== */

ALWAYS_INLINE __m256 load_w_f(const qc_dtype_t dt, const unsigned char *p) {
    switch (dt) {
    case QC_DTYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    case QC_DTYPE_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    default: return _mm256_loadu_ps((const float *)p);
    }
}

ALWAYS_INLINE float load_w_1(const qc_dtype_t dt, const unsigned char *p) {
    switch (dt) {
    case QC_DTYPE_F16: return f16_to_f32(qc_load_u16(p));
    case QC_DTYPE_BF16: return qc_bf16_to_f32(qc_load_u16(p));
    default: {
        float f;
        __builtin_memcpy(&f, p, 4);
        return f;
    }
    }
}

/* One R x T tile of float weights over a->k columns; the last k % 8
 * columns in scalar F32. */
ALWAYS_INLINE void tile_float(const qc_dtype_t dt, const int R, const int T, const qc_mm_tile_t *a) {
    const unsigned char *w0 = a->w, *xb = a->x;
    const int64_t n = a->k; /* columns */
    const size_t es = dt == QC_DTYPE_F32 ? 4 : 2;
    __m256 acc[FR][FT];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256 wv[FR];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const unsigned char *wp = w0 + (size_t)r * a->w_stride + (size_t)c * es;
            if (a->prefetch && (c & 15) == 0) _mm_prefetch((const char *)wp + PF_BYTES, _MM_HINT_T0);
            wv[r] = load_w_f(dt, wp);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const __m256 xv = _mm256_loadu_ps((const float *)(xb + (size_t)t * a->x_stride) + c);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const float *xt = (const float *)(xb + (size_t)t * a->x_stride);
            float s = hsum8(acc[r][t]);
            for (int64_t k = c; k < n; k++) s += load_w_1(dt, w0 + (size_t)r * a->w_stride + (size_t)k * es) * xt[k];
            a->y[(size_t)t * (size_t)a->ldy + r] = s;
        }
}

/* ==== the level's micro-kernels ==== */

/* Decode tiles (one token) of Q8_0/Q4_0/Q5_0 take QR1 rows, the others
 * keep the prefill tile's rows. */
QC_MM_KERNEL(mm_q8_0, tile_quant, 0, QC_ACT_Q8, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_0, tile_quant, 1, QC_ACT_Q8, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_0, tile_quant, 2, QC_ACT_Q8, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_1, tile_q8_1, 0, QC_ACT_Q8_1, RB, QR, QT, QR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_1, tile_q8_1, 1, QC_ACT_Q8_1, RB, QR, QT, QR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_K, tile_kq, QC_DTYPE_Q4_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_K, tile_kq, QC_DTYPE_Q5_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q6_K, tile_kq, QC_DTYPE_Q6_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q2_K, tile_kq, QC_DTYPE_Q2_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q3_K, tile_kq, QC_DTYPE_Q3_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_f32, tile_float, QC_DTYPE_F32, QC_ACT_F32, RB, FR, FT, FR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_f16, tile_float, QC_DTYPE_F16, QC_ACT_F32, RB, FR, FT, FR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_bf16, tile_float, QC_DTYPE_BF16, QC_ACT_F32, RB, FR, FT, FR, QC_MM_NO_PACK);

/* ==== dot product, activation quantization ==== */

static float dot_f32_avx2(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Same steps as kernels_scalar.c's clamp127 and round_even, 8 lanes at a time. */
static void act_row_avx2(const float *x, int64_t cols, qc_block_q8_act *out) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    for (int64_t b = 0; b < cols / QC_QK; b++, x += QC_QK) {
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(m, _mm256_and_ps(v[k], absmask));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            /* max(NaN, lo) is lo, as clamp127 makes it */
            const __m256 s = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[k], vid), lo), hi);
            q[k] = _mm256_cvttps_epi32(_mm256_round_ps(s, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
        /* int32 -> int8 with saturating packs (values are within +-127);
         * the packs interleave 128-bit lanes, undone by the permute */
        const __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
        const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
        const __m256i ord = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out[b].qs, ord);
        const __m256i s4 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
        /* The scale is kept at half precision, as ggml's block_q8_0 keeps it for
         * the activations, so the products equal llama.cpp's. */
        out[b].d = qc_f16_to_f32(qc_f32_to_f16(d));
        out[b].sum = _mm_cvtsi128_si32(s);
    }
}

/* ==== attention ==== */

typedef __m256 vec_t;
#define ATT_NAME attend_avx2
#define SWIGLU_NAME swiglu_avx2
/* declared static first, so attend_simd.h's definition is this file's own */
static void attend_avx2(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                        float *scores, float *o);
#define ATT_W 8
ALWAYS_INLINE vec_t v_load(const float *p) { return _mm256_loadu_ps(p); }
ALWAYS_INLINE void v_store(float *p, vec_t v) { _mm256_storeu_ps(p, v); }
ALWAYS_INLINE vec_t v_add(vec_t a, vec_t b) { return _mm256_add_ps(a, b); }
ALWAYS_INLINE vec_t v_mul(vec_t a, vec_t b) { return _mm256_mul_ps(a, b); }
ALWAYS_INLINE vec_t v_set1(float x) { return _mm256_set1_ps(x); }
ALWAYS_INLINE vec_t v_zero(void) { return _mm256_setzero_ps(); }
ALWAYS_INLINE vec_t v_fmadd(vec_t a, vec_t b, vec_t c) { return _mm256_fmadd_ps(a, b, c); }
ALWAYS_INLINE float v_hsum(vec_t a) { return hsum8(a); }
ALWAYS_INLINE vec_t v_load_h(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
ALWAYS_INLINE vec_t v_round_h(vec_t x) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
ALWAYS_INLINE vec_t v_sub(vec_t a, vec_t b) { return _mm256_sub_ps(a, b); }
ALWAYS_INLINE vec_t v_pow2_magic(vec_t t) {
    const __m256i e = _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32((int)(127u - 0x4B400000u)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}
ALWAYS_INLINE vec_t v_zero_below(vec_t x, float a, vec_t y) {
    return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(a), _CMP_LT_OQ), y);
}
ALWAYS_INLINE vec_t v_div(vec_t a, vec_t b) { return _mm256_div_ps(a, b); }
ALWAYS_INLINE vec_t v_neg_abs(vec_t x) { return _mm256_or_ps(x, _mm256_set1_ps(-0.0f)); }
ALWAYS_INLINE vec_t v_select_ge0(vec_t x, vec_t a, vec_t b) {
    return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
}
#include "engine/attend_simd.h"

/* ==== the level ==== */

/* qc_f32_to_f16_row with F16C, 8 at a time: its rounding (to nearest even,
 * subnormals and overflow to inf included) is qc_f32_to_f16's; only a NaN's
 * half differs (F16C keeps the payload's top bits), so NaN lanes are made
 * 0x7e00 with their sign. */
static void f16_row_avx2(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m128i nan = _mm_packs_epi32(_mm256_castsi256_si128(_mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))),
                                            _mm256_extracti128_si256(_mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)), 1));
        const __m128i sign = _mm_and_si128(_mm_packs_epi32(_mm_srai_epi32(_mm256_castsi256_si128(_mm256_castps_si256(v)), 16),
                                                           _mm_srai_epi32(_mm256_extracti128_si256(_mm256_castps_si256(v), 1), 16)),
                                           _mm_set1_epi16((short)0x8000));
        _mm_storeu_si128((__m128i *)(y + i), _mm_blendv_epi8(h, _mm_or_si128(sign, _mm_set1_epi16(0x7e00)), nan));
    }
    for (; i < n; i++) y[i] = qc_f32_to_f16(x[i]);
}

static const qc_kernel_set_t avx2_set = {{QC_MM_COMMON_TYPES, [QC_DTYPE_Q5_0] = &mm_q5_0, [QC_DTYPE_Q4_1] = &mm_q4_1,
                                          [QC_DTYPE_Q5_1] = &mm_q5_1, [QC_DTYPE_Q2_K] = &mm_q2_K,
                                          [QC_DTYPE_Q3_K] = &mm_q3_K, [QC_DTYPE_Q4_K] = &mm_q4_K,
                                          [QC_DTYPE_Q5_K] = &mm_q5_K, [QC_DTYPE_Q6_K] = &mm_q6_K},
                                         dot_f32_avx2,
                                         act_row_avx2,
                                         attend_avx2, NULL, NULL, f16_row_avx2, NULL, swiglu_avx2};
const qc_kernel_set_t *const qc_level_avx2 = &avx2_set;

#else /* built without the AVX2 flags: never selected */

const qc_kernel_set_t *const qc_level_avx2 = NULL;

#endif
