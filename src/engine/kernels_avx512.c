/* kernels_avx512.c — the AVX-512 level: F/BW/VL/DQ + VNNI (vpdpbusd).
 * Compiled with -mavx512f ... (Makefile ISA_FLAGS); kernels.c selects it
 * only after checking the CPU.
 *
 * A deliberate per-level twin of the scalar micro-kernels (kernels_scalar.c):
 * the same tiles, activation quantization, dot product and attention, in
 * AVX-512; matmul.c's driver walks the tiles (kernels_impl.h), packing each
 * token tile's activations with pack_act first. test_kernels compares every
 * function here with its scalar twin on a CPU that has AVX-512.
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
 * vector) into the driver's stack buffer, which stays in L1, and rows are
 * walked in blocks of 64 whose weights stay in L2 while every token tile
 * passes. Decode (n_tok == 1) is the same code with 1-token tiles: it streams
 * the weights once, one row at a time (Q8_0, floats) or four (Q4_0, whose
 * decoding needs the parallel chains), prefetching PF_BYTES ahead: a single
 * sequential stream with software prefetch measured fastest from DRAM.
 *
 * K-quants (Q2_K .. Q6_K on Q8_K activations): AVX2's tiles (kernels_avx2.c)
 * at twice the width, 64 quants a register, with vpdpwssd adding the
 * sub-block-scaled pairs into the int32 sums (one instruction where AVX2
 * needs vpmaddwd and vpaddd); Q2_K's and Q3_K's tile sums eight (row,
 * token) pairs' blocks at once (decode: eight rows). Q5_0 is Q4_0 with
 * the 5th bit (vpmovm2b from qh) and an excess of 16; Q4_1 and Q5_1 run
 * AVX2's kernels. */
#include "engine/kernels_impl.h"
#include "engine/quants.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__AVX512VNNI__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#include "engine/kquant_x86.h"
#include "engine/panels_avx512.h"
#include <math.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum {
    RT = 4,             /* rows per register tile */
    TT = 4,             /* tokens per register tile */
    RB = 64,            /* rows per L2 block */
    PACK_BYTES = QC_MM_PACK_BYTES, /* packed activation tile (L1 is 32-48 KiB) */
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
    __m512i corr; /* lane i: -k * the sum of the 4 quants lane i multiplies */
    __m512 dx;    /* lanes 0-7: d of block 2p, lanes 8-15: d of block 2p+1 */
} xpack_t;

/* Packs blocks [0, nbk) of nt tokens (token t's blocks at x + t * x_stride)
 * as pairs: out[p * nt + t]. An odd last block is paired with zeros. k is the
 * unsigned-weight excess: 128 (Q8_0) or 8 (Q4_0). */
static void pack_act(const unsigned char *x, size_t x_stride, int nt, int64_t nbk, int k, xpack_t *out) {
    for (int64_t b = 0, p = 0; b < nbk; b += 2, p++) {
        const int two = b + 1 < nbk;
        for (int t = 0; t < nt; t++) {
            const qc_block_q8_act *a = (const qc_block_q8_act *)(x + (size_t)t * x_stride) + b;
            const __m256i lo = _mm256_loadu_si256((const __m256i *)a[0].qs);
            const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)a[1].qs) : _mm256_setzero_si256();
            xpack_t *o = out + p * nt + t;
            o->xq = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            /* lane i: -k times the sum of the 4 activations it multiplies, so
             * that each lane of the block dot is its own exact signed share
             * (no lane carries the whole block's excess) */
            o->corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                       _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)k), o->xq));
            o->dx = _mm512_insertf32x8(_mm512_set1_ps(a[0].d), _mm256_set1_ps(two ? a[1].d : 0.0f), 1);
        }
    }
}

static void pack_q8_0(const void *x, size_t x_stride, int nt, int64_t k, void *pack) {
    pack_act(x, x_stride, nt, k, 128, pack);
}

static void pack_q4_0(const void *x, size_t x_stride, int nt, int64_t k, void *pack) {
    pack_act(x, x_stride, nt, k, 8, pack);
}

static void pack_q5_0(const void *x, size_t x_stride, int nt, int64_t k, void *pack) {
    pack_act(x, x_stride, nt, k, 16, pack);
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

/* Q4_0's nibbles (at offset qo of blocks of bb bytes: Q4_0 2 and 18, Q5_0
 * 6 and 22) as bytes 0..15 of each block, 0..31 of a pair. */
ALWAYS_INLINE __m512i load_w_nib(const unsigned char *p, int half, size_t qo, size_t bb) {
    const __m128i q0 = _mm_loadu_si128((const __m128i *)(p + qo));
    const __m256i v = half ? _mm256_zextsi128_si256(q0)
                           : _mm256_inserti128_si256(_mm256_castsi128_si256(q0),
                                                     _mm_loadu_si128((const __m128i *)(p + bb + qo)), 1);
    /* [q0 q0 q1 q1] by 128-bit lanes, odd lanes shifted to their high nibbles */
    __m512i z = _mm512_shuffle_i64x2(_mm512_castsi256_si512(v), _mm512_castsi256_si512(v), 0x50);
    z = _mm512_mask_srli_epi16(z, 0xff00ff00u, z, 4);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0f));
}

ALWAYS_INLINE __m512i load_w_q4(const unsigned char *p, int half) { return load_w_nib(p, half, 2, QC_Q4_0_BYTES); }

/* Q5_0: the nibbles with the 5th bit of element j (bit j of qh) as 16:
 * 0..31 (w + 16). */
ALWAYS_INLINE __m512i load_w_q5(const unsigned char *p, int half) {
    const size_t bb = sizeof(qc_block_q5_0);
    uint32_t h0, h1 = 0;
    memcpy(&h0, p + 2, 4);
    if (!half) memcpy(&h1, p + bb + 2, 4);
    const __mmask64 hm = (__mmask64)h0 | (__mmask64)h1 << 32;
    return _mm512_or_si512(load_w_nib(p, half, 6, bb), _mm512_maskz_mov_epi8(hm, _mm512_set1_epi8(0x10)));
}

/* One R x T tile (see qc_mm_tile_t) over the chunk's a->k blocks: np pairs
 * (plus a lone last block when tail), the tokens packed by pack_act at
 * a->x. Writes y[t * ldy + r] (adds to it when accumulate). */
ALWAYS_INLINE void tile_quant(const int kind, const int R, const int T, const qc_mm_tile_t *a) {
    const int q4 = kind != 0; /* 1 Q4_0, 2 Q5_0: unsigned nibbles (and a 5th bit) */
    const unsigned char *w0 = a->w;
    const size_t row_bytes = a->w_stride;
    const xpack_t *px = a->x;
    const int64_t np = a->k / 2, ldy = a->ldy;
    const int tail = (int)(a->k & 1), accumulate = a->accumulate, pf = a->prefetch;
    float *y = a->y;
    const size_t bb = kind == 2 ? sizeof(qc_block_q5_0) : q4 ? QC_Q4_0_BYTES : QC_Q8_0_BYTES;
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
                if (kind != 1) _mm_prefetch((const char *)wp + PF_BYTES + 2 * bb - 1, _MM_HINT_T0);
            }
            if (half) {
                wv[r] = kind == 2 ? load_w_q5(wp, 1) : q4 ? load_w_q4(wp, 1) : load_w_q8(wp, 1);
                dw[r] = pair_scales(qc_load_u16(wp), 0);
            } else {
                wv[r] = kind == 2 ? load_w_q5(wp, 0) : q4 ? load_w_q4(wp, 0) : load_w_q8(wp, 0);
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

/* ==== K-quants: 256-weight super-blocks on Q8_K activations ==== */

enum { KR = 2, KT = 4 }; /* K-quant tile: rows x tokens (decode KR x 1) */

/* 32 bytes at a in the low half, 32 at b in the high half. */
ALWAYS_INLINE __m512i ld2x32(const void *a, const void *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* A half to float by F16C (tile_k8's block scales). tile_kq keeps
 * qc_f16_to_f32's call: with F16C inlined there, a Q4_K_M file's decode
 * (its Q6_K output matrix runs tile_kq) measured 55.6-59.0 t/s against
 * 60.1-63.4 with the call (qcare bench, runs alternated), for a reason
 * not found; tile_k8's Q2_K file decode is 2-5% faster with it. */
ALWAYS_INLINE float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

/* The 32 bytes at a in both halves: one broadcast load (no shuffle, as
 * ld2x32's insert is). */
ALWAYS_INLINE __m512i bc32(const void *a) { return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)a)); }

/* The 16-bit lanes of v's low half shifted right by a, of its high half by b. */
ALWAYS_INLINE __m512i srl2(__m512i v, int a, int b) {
    return _mm512_srlv_epi16(v, _mm512_inserti64x4(_mm512_set1_epi16((short)a), _mm256_set1_epi16((short)b), 1));
}

/* Groups 2h and 2h + 1 of half n (elements 128n + 64h .. + 63: sub-blocks
 * 8n + 4h .. 8n + 4h + 3, a 128-bit lane each) of a Q2_K, Q3_K or Q6_K
 * super-block as unsigned bytes, as kernels_avx2.c's kq16_half makes its
 * groups: Q2_K 0..3, Q3_K 0..7 (q + 4), Q6_K 0..63 (q + 32). */
ALWAYS_INLINE __m512i kq16_pair(const qc_dtype_t kt, const unsigned char *p, const int n, const int h) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x03);
    if (kt == QC_DTYPE_Q6_K) {
        /* group g: the low (g < 2) or high nibbles of ql[64n + 32 (g odd) + l],
         * bits 2g.. of qh[32n + l] */
        const qc_block_q6_K *k6 = (const qc_block_q6_K *)p;
        const __m512i l = _mm512_loadu_si512((const void *)(k6->ql + 64 * n));
        const __m512i qh = bc32(k6->qh + 32 * n);
        const __m512i lo = h ? _mm512_and_si512(_mm512_srli_epi16(l, 4), m4) : _mm512_and_si512(l, m4);
        return _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(srl2(qh, 4 * h, 4 * h + 2), m2), 4));
    }
    /* group g: bits 2g of qs[32n + l]; Q3_K's high bit: bit 4n + g of hmask[l] */
    const uint8_t *qs = kt == QC_DTYPE_Q2_K ? ((const qc_block_q2_K *)p)->qs : ((const qc_block_q3_K *)p)->qs;
    __m512i q = _mm512_and_si512(srl2(bc32(qs + 32 * n), 4 * h, 4 * h + 2), m2);
    if (kt == QC_DTYPE_Q3_K) {
        const uint8_t *hm = ((const qc_block_q3_K *)p)->hmask;
        const __m512i hb = srl2(bc32(hm), 4 * n + 2 * h, 4 * n + 2 * h + 1);
        q = _mm512_or_si512(q, _mm512_slli_epi16(_mm512_and_si512(hb, _mm512_set1_epi8(1)), 2));
    }
    return q;
}

/* The vpermw index that puts sub-block 8n + 4h + k's scale (of 16 int16)
 * in every int16 of 128-bit lane k: the scales of kq16_pair(n, h)'s lanes. */
ALWAYS_INLINE __m512i sub16_index(const int n, const int h) {
    const short s0 = (short)(8 * n + 4 * h);
    return _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16((short)(s0 + 1)), _mm_set1_epi16(s0))),
        _mm256_set_m128i(_mm_set1_epi16((short)(s0 + 3)), _mm_set1_epi16((short)(s0 + 2))), 1);
}

/* One R x T tile of Q4_K, Q5_K or Q6_K weights over a->k super-blocks
 * (Q2_K and Q3_K: tile_k8 below): the exact integer sums of
 * kernels_avx2.c's tile_kq (the same corrections: Q6_K's excess, the mins
 * of Q4_K/Q5_K apart), 16 lanes wide, then its F32 steps. */
ALWAYS_INLINE void tile_kq(const qc_dtype_t kt, const int R, const int T, const qc_mm_tile_t *a) {
    const unsigned char *w0 = a->w, *x0 = a->x;
    const size_t row_bytes = a->w_stride, x_stride = a->x_stride;
    const int64_t nb = a->k, ldy = a->ldy;
    const int pf = a->prefetch;
    const size_t bb = qc_kquant_block_bytes(kt);
    const int sub16 = kt == QC_DTYPE_Q6_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[KR][KT];
    float m[KR][KT];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps(), m[r][t] = 0.0f;

    for (int64_t b = 0; b < nb; b++) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const unsigned char *p = w0 + (size_t)r * row_bytes + (size_t)b * bb;
            if (pf)
                for (size_t o = 0; o < bb; o += 64) _mm_prefetch((const char *)p + PF_BYTES + o, _MM_HINT_T0);
            /* two sums per token, so that the vpdpwssd chains are short (decode) */
            __m512i isum[KT], isum2[KT];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) isum[t] = isum2[t] = _mm512_setzero_si512();
            __m256i sc16, mn16 = _mm256_setzero_si256();
            float d, dmin = 0.0f;
            if (sub16) {
                sc16 = kq16_scales(kt, p, &mn16);
                const __m512i scz = _mm512_castsi256_si512(sc16);
#pragma GCC unroll 2
                for (int n = 0; n < 2; n++)
#pragma GCC unroll 2
                    for (int h = 0; h < 2; h++) {
                        const __m512i vs = _mm512_permutexvar_epi16(sub16_index(n, h), scz);
                        const __m512i q = kq16_pair(kt, p, n, h);
#pragma GCC unroll 4
                        for (int t = 0; t < T; t++) {
                            const qc_block_q8_K *xb = (const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b;
                            const __m512i xv = _mm512_loadu_si512((const void *)(xb->qs + 128 * n + 64 * h));
                            if (h) isum2[t] = _mm512_dpwssd_epi32(isum2[t], _mm512_maddubs_epi16(q, xv), vs);
                            else isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(q, xv), vs);
                        }
                    }
                d = qc_f16_to_f32(qc_load_u16(((const qc_block_q6_K *)p)->d));
            } else {
                /* Q4_K / Q5_K: d, dmin, scales at the same offsets; sub-blocks
                 * 2j (low nibbles) and 2j + 1 (high) share qs[32j .. 32j + 32) */
                const qc_block_q4_K *k4 = (const qc_block_q4_K *)p;
                const uint8_t *qs = kt == QC_DTYPE_Q4_K ? k4->qs : ((const qc_block_q5_K *)p)->qs;
                uint32_t w4[4];
                qc_k4_scale_words(k4->scales, w4);
                const __m128i scmn = _mm_loadu_si128((const __m128i *)w4), sc8 = _mm_cvtepu8_epi16(scmn);
                sc16 = _mm256_broadcastsi128_si256(sc8);
                mn16 = _mm256_cvtepu8_epi16(
                    _mm_shuffle_epi8(scmn, _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)));
                const __m512i scz = _mm512_broadcast_i32x4(sc8);
                const uint8_t *qh = kt == QC_DTYPE_Q5_K ? ((const qc_block_q5_K *)p)->qh : NULL;
#pragma GCC unroll 2
                for (int jj = 0; jj < 2; jj++) {
                    /* j = 2jj in the low half, 2jj + 1 in the high one */
                    const __m512i q = _mm512_loadu_si512((const void *)(qs + 64 * jj));
                    __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
                    if (qh) {
                        /* the 5th bit of sub-block 2j is bit 2j of qh, of 2j + 1 bit 2j + 1 */
                        const __m512i hb = srl2(bc32(qh), 4 * jj, 4 * jj + 2), one = _mm512_set1_epi8(1);
                        lo = _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(hb, one), 4));
                        hi = _mm512_or_si512(hi, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hb, 1), one), 4));
                    }
                    /* scale 2j (2j + 1) in every int16 of each half */
                    const __m512i clo = _mm512_inserti64x4(_mm512_set1_epi16((short)(0x0100 + 0x0404 * (2 * jj))),
                                                           _mm256_set1_epi16((short)(0x0100 + 0x0404 * (2 * jj + 1))), 1);
                    const __m512i vlo = _mm512_shuffle_epi8(scz, clo);
                    const __m512i vhi = _mm512_shuffle_epi8(scz, _mm512_add_epi16(clo, _mm512_set1_epi16(0x0202)));
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++) {
                        const qc_block_q8_K *xb = (const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b;
                        const int8_t *xq = xb->qs + 128 * jj;
                        isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(lo, ld2x32(xq, xq + 64)), vlo);
                        isum2[t] = _mm512_dpwssd_epi32(isum2[t], _mm512_maddubs_epi16(hi, ld2x32(xq + 32, xq + 96)), vhi);
                    }
                }
                d = qc_f16_to_f32(qc_load_u16(k4->d));
                dmin = qc_f16_to_f32(qc_load_u16(k4->dmin));
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const qc_block_q8_K *xb = (const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b;
                const __m256i bs = _mm256_loadu_si256((const __m256i *)xb->bsums);
                isum[t] = _mm512_add_epi32(isum[t], isum2[t]);
                __m512i is = isum[t];
                if (sub16) {
                    const int32_t corr = kq_hsum_i32(_mm256_madd_epi16(bs, sc16)) * -32;
                    is = _mm512_add_epi32(is, _mm512_zextsi128_si512(_mm_cvtsi32_si128(corr)));
                } else {
                    m[r][t] -= (dmin * xb->d) * (float)kq_hsum_i32(_mm256_madd_epi16(bs, mn16));
                }
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(d * xb->d), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) a->y[(size_t)t * (size_t)ldy + r] = _mm512_reduce_add_ps(acc[r][t]) + m[r][t];
}

/* ==== Q2_K and Q3_K: eight (row, token) pairs' sums at once ====
 *
 * ggml's Q2_K dot keeps one integer per super-block, so tile_kq pays two
 * horizontal sums and a chain of scalar F32 steps per block and pair;
 * its Q3_K pays one horizontal sum (the excess's correction) per block
 * and pair. Here the R x T <= 8 pairs of a tile (lane r T + t; decode: 8
 * rows) have those sums folded together (a tree of exact additions, any
 * order the same). Q2_K's F32 steps, sumf += (d_x d) isum - (d_x dmin)
 * summs, then run in 8 lanes, each lane its pair's scalar operations in
 * order: bit for bit the scalar level's. Q3_K's correction goes into
 * lane 0 of its pair's 16 sums and the F32 steps are tile_kq's: bit for
 * bit tile_kq's Q3_K. */

enum { K8R1 = 8 }; /* rows per decode tile */

/* Lane k: the sum of w[k]'s 8 int32 lanes. */
ALWAYS_INLINE __m256i sum8x8(const __m256i w[8]) {
    const __m256i a0 = _mm256_hadd_epi32(w[0], w[1]), a1 = _mm256_hadd_epi32(w[2], w[3]);
    const __m256i a2 = _mm256_hadd_epi32(w[4], w[5]), a3 = _mm256_hadd_epi32(w[6], w[7]);
    /* b0: each 128-bit half's sums of w[0..3] (low half, high half) */
    const __m256i b0 = _mm256_hadd_epi32(a0, a1), b1 = _mm256_hadd_epi32(a2, a3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(b0, b1, 0x20), _mm256_permute2x128_si256(b0, b1, 0x31));
}

ALWAYS_INLINE void tile_k8(const qc_dtype_t kt, const int R, const int T, const qc_mm_tile_t *a) {
    const unsigned char *w0 = a->w, *x0 = a->x;
    const int q2 = kt == QC_DTYPE_Q2_K;
    const size_t row_bytes = a->w_stride, x_stride = a->x_stride, bb = qc_kquant_block_bytes(kt);
    const int64_t nb = a->k, ldy = a->ldy;
    const int pf = a->prefetch;
    __m256 m = _mm256_setzero_ps(); /* Q2_K */
    __m512 acc[8];                  /* Q3_K */
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i isum[8];
        __m256i mn[8], sc[8];
        float d[8], dm[8], xd[4];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) isum[k] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const unsigned char *p = w0 + (size_t)r * row_bytes + (size_t)b * bb;
            if (pf) {
                _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)p + PF_BYTES + 64, _MM_HINT_T0);
            }
            sc[r] = kq16_scales(kt, p, &mn[r]);
            if (q2) {
                d[r] = h2f(qc_load_u16(((const qc_block_q2_K *)p)->d));
                dm[r] = h2f(qc_load_u16(((const qc_block_q2_K *)p)->dmin));
            } else {
                d[r] = h2f(qc_load_u16(((const qc_block_q3_K *)p)->d));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) xd[t] = ((const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b)->d;
#pragma GCC unroll 2
        for (int n = 0; n < 2; n++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const __m512i idx = sub16_index(n, h);
                __m512i xv[4];
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    xv[t] = _mm512_loadu_si512(
                        (const void *)(((const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b)->qs + 128 * n + 64 * h));
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) {
                    const unsigned char *p = w0 + (size_t)r * row_bytes + (size_t)b * bb;
                    const __m512i vs = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sc[r]));
                    const __m512i q = kq16_pair(kt, p, n, h);
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++)
                        isum[r * T + t] = _mm512_dpwssd_epi32(isum[r * T + t], _mm512_maddubs_epi16(q, xv[t]), vs);
                }
            }
        /* the pairs' sums of bsums x mins (Q2_K) or x scales (Q3_K's excess) */
        __m256i wi[8], ws[8];
        float dl[8], dml[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            if (k < R * T) {
                const int r = k / T, t = k % T;
                const __m256i bs = _mm256_loadu_si256(
                    (const __m256i *)((const qc_block_q8_K *)(x0 + (size_t)t * x_stride) + b)->bsums);
                ws[k] = _mm256_madd_epi16(bs, q2 ? mn[r] : sc[r]);
                if (q2) {
                    wi[k] = _mm256_add_epi32(_mm512_castsi512_si256(isum[k]), _mm512_extracti64x4_epi64(isum[k], 1));
                    dl[k] = xd[t] * d[r];
                    dml[k] = xd[t] * dm[r];
                }
            } else {
                wi[k] = ws[k] = _mm256_setzero_si256();
                dl[k] = dml[k] = 0.0f;
            }
        }
        if (q2) {
            const __m256 fi = _mm256_cvtepi32_ps(sum8x8(wi)), fs = _mm256_cvtepi32_ps(sum8x8(ws));
            const __m256 vd = _mm256_setr_ps(dl[0], dl[1], dl[2], dl[3], dl[4], dl[5], dl[6], dl[7]);
            const __m256 vdm = _mm256_setr_ps(dml[0], dml[1], dml[2], dml[3], dml[4], dml[5], dml[6], dml[7]);
            m = _mm256_add_ps(m, _mm256_sub_ps(_mm256_mul_ps(vd, fi), _mm256_mul_ps(vdm, fs)));
            continue;
        }
        const __m512i corr = _mm512_castsi256_si512(_mm256_mullo_epi32(sum8x8(ws), _mm256_set1_epi32(-4)));
#pragma GCC unroll 8
        for (int k = 0; k < R * T; k++) {
            /* lane 0: pair k's correction, the others 0 */
            const __m512i is = _mm512_add_epi32(isum[k], _mm512_maskz_permutexvar_epi32(1, _mm512_set1_epi32(k), corr));
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(d[k / T] * xd[k % T]), acc[k]);
        }
    }
    float out[8];
    _mm256_storeu_ps(out, m);
#pragma GCC unroll 8
    for (int k = 0; k < R * T; k++)
        a->y[(size_t)(k % T) * (size_t)ldy + k / T] = q2 ? out[k] : _mm512_reduce_add_ps(acc[k]) + 0.0f;
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

/* One R x T tile of float weights (see qc_mm_tile_t) over a->k columns.
 * Writes y[t * ldy + r]. */
ALWAYS_INLINE void tile_float(const qc_dtype_t dt, const int R, const int T, const qc_mm_tile_t *a) {
    const unsigned char *w0 = a->w, *xb = a->x;
    const int64_t n = a->k; /* columns */
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
            const unsigned char *wp = w0 + (size_t)r * a->w_stride + (size_t)c * es;
            if (a->prefetch) _mm_prefetch((const char *)wp + PF_BYTES, _MM_HINT_T0);
            wv[r] = load_w_f(dt, wp, 0, 0);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const __m512 xv = _mm512_loadu_ps((const float *)(xb + (size_t)t * a->x_stride) + c);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    if (c < n) {
        const __mmask16 m = (__mmask16)((1u << (n - c)) - 1);
        __m512 wv[RT];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) wv[r] = load_w_f(dt, w0 + (size_t)r * a->w_stride + (size_t)c * es, m, 1);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, (const float *)(xb + (size_t)t * a->x_stride) + c);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) a->y[(size_t)t * (size_t)a->ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* ==== the level's micro-kernels ==== */

/* Decode tiles (one token): DEC_R rows, four for Q4_0; the quantized types
 * pack pairs of blocks. */
#define PACK_PAIRS(fn) {fn, 2, sizeof(xpack_t), PACK_BYTES}
QC_MM_KERNEL(mm_q8_0, tile_quant, 0, QC_ACT_Q8, RB, RT, TT, DEC_R, PACK_PAIRS(pack_q8_0));
QC_MM_KERNEL(mm_q4_0, tile_quant, 1, QC_ACT_Q8, RB, RT, TT, RT, PACK_PAIRS(pack_q4_0));
QC_MM_KERNEL(mm_q5_0, tile_quant, 2, QC_ACT_Q8, RB, RT, TT, RT, PACK_PAIRS(pack_q5_0));
QC_MM_KERNEL(mm_f32, tile_float, QC_DTYPE_F32, QC_ACT_F32, RB, RT, TT, DEC_R, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_f16, tile_float, QC_DTYPE_F16, QC_ACT_F32, RB, RT, TT, DEC_R, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_bf16, tile_float, QC_DTYPE_BF16, QC_ACT_F32, RB, RT, TT, DEC_R, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q2_K, tile_k8, QC_DTYPE_Q2_K, QC_ACT_Q8_K, RB, KR, KT, K8R1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q3_K, tile_k8, QC_DTYPE_Q3_K, QC_ACT_Q8_K, RB, KR, KT, K8R1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_K, tile_kq, QC_DTYPE_Q4_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_K, tile_kq, QC_DTYPE_Q5_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q6_K, tile_kq, QC_DTYPE_Q6_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);

/* ==== weight panels (panels_avx512.h has their layouts) ==== */

enum { PR = QC_PR, PT = 8, PRB = 64 }; /* rows per panel, tokens per tile, rows per L2 block */
static size_t panel_bytes(const qc_tensor_t *t) {
    if ((t->dtype != QC_DTYPE_Q8_0 && t->dtype != QC_DTYPE_Q4_0 && t->dtype != QC_DTYPE_Q5_0) || t->rows % PR ||
        t->cols % QC_QK || t->rows <= 0)
        return 0;
    return (size_t)(t->rows / PR) * (size_t)(t->cols / QC_QK) * pan_block(pan_kind(t->dtype));
}

/* One file block (fb) <-> lane i of one panel block (pb); to_panel picks the direction. */
static void pan_lane(int kind, unsigned char *pb, int i, unsigned char *fb, int to_panel) {
    const size_t qb = pan_qbytes(kind), qo = kind == 0 ? 2 : kind == 1 ? 2 : 6;
    for (int g = 0; g < (kind == 0 ? 8 : 4); g++)
        for (int j = 0; j < 4; j++) {
            unsigned char *pv = pb + (size_t)g * 64 + (size_t)i * 4 + (size_t)j, *fv = fb + qo + 4 * g + j;
            if (kind == 0) {
                if (to_panel) *pv = (unsigned char)(*fv ^ 0x80);
                else *fv = (unsigned char)(*pv ^ 0x80);
            } else if (to_panel) {
                *pv = *fv;
            } else {
                *fv = *pv;
            }
        }
    if (kind == 2) {
        if (to_panel) memcpy(pb + qb + (size_t)i * 4, fb + 2, 4);
        else memcpy(fb + 2, pb + qb + (size_t)i * 4, 4);
    }
    unsigned char *pd = pb + qb + (kind == 2 ? 64 : 0) + (size_t)i * 2;
    if (to_panel) memcpy(pd, fb, 2);
    else memcpy(fb, pd, 2);
}

/* nt (<= PT) tokens x one panel (16 rows) over all nb blocks: y[t * ldy +
 * row0 + i] for the lanes i in mask. x: token 0's qc_block_q8_act row. */
ALWAYS_INLINE void pan_tile(const int kind, const int nt, const unsigned char *pw, int64_t nb,
                            const qc_block_q8_act *x, size_t x_stride, float *y, int64_t ldy, __mmask16 mask,
                            int pf) {
    const int k = kind == 0 ? 128 : kind == 1 ? 8 : 16;
    const size_t pbb = pan_block(kind), dof = pan_qbytes(kind) + (kind == 2 ? 64 : 0);
    __m512 acc[PT];
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, pw += pbb) {
        if (pf)
            for (size_t o = 0; o < pbb; o += 64) _mm_prefetch((const char *)pw + PF_BYTES + o, _MM_HINT_T0);
        __m512i w[8];
        pan_weights(kind, pw, w);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pw + dof)));
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            const qc_block_q8_act *xa = (const qc_block_q8_act *)((const unsigned char *)x + (size_t)t * x_stride) + b;
            __m512i is = _mm512_set1_epi32(-k * xa->sum);
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) {
                int32_t x4;
                memcpy(&x4, xa->qs + 4 * g, 4);
                is = _mm512_dpbusd_epi32(is, w[g], _mm512_set1_epi32(x4));
            }
            /* multiply, then add (no FMA): the scalar tile's roundings */
            acc[t] = _mm512_add_ps(acc[t],
                                   _mm512_mul_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dw, _mm512_set1_ps(xa->d))));
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) _mm512_mask_storeu_ps(y + (size_t)t * (size_t)ldy, mask, acc[t]);
}

/* One call's panel walk: rows [r0, r1) in blocks of PRB rows whose panels
 * stay in L2 while every token tile of PT passes (the first tile
 * prefetches them), each panel's stores masked to the rows asked for. prep
 * (may be NULL) runs once per token tile of a row block; tile multiplies
 * nt tokens (their activations at x) by the panel at pw into yo. */
typedef struct {
    const qc_tensor_t *t;
    size_t pstride, x_stride; /* bytes per panel, per token's activations */
    int64_t nb;               /* blocks (super-blocks) per row */
    void *scratch;            /* prep's output for the tile */
} pan_call_t;
typedef void (*pan_prep_fn)(const pan_call_t *c, int nt, const void *x);
typedef void (*pan_tile_fn)(const pan_call_t *c, int nt, const unsigned char *pw, const void *x, float *yo,
                            int64_t ldy, __mmask16 mask, int pf);

static void pan_walk(const pan_call_t *c, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0, int64_t r1,
                     pan_prep_fn prep, pan_tile_fn tile) {
    const unsigned char *base = c->t->panel;
    for (int64_t rb = r0 - r0 % PR; rb < r1; rb += PRB) {
        const int64_t re = rb + PRB < r1 ? rb + PRB : r1;
        for (int t0 = 0; t0 < n_tok; t0 += PT) {
            const int nt = n_tok - t0 < PT ? n_tok - t0 : PT;
            const void *x = (const unsigned char *)act + (size_t)t0 * c->x_stride;
            if (prep) prep(c, nt, x);
            for (int64_t p = rb; p < re; p += PR) {
                const int lo = p < r0 ? (int)(r0 - p) : 0, hi = p + PR > r1 ? (int)(r1 - p) : PR;
                const __mmask16 mask = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
                tile(c, nt, base + (size_t)(p / PR) * c->pstride, x, y + (size_t)t0 * (size_t)ldy + p, ldy, mask,
                     t0 == 0);
            }
        }
    }
}

/* pan_tile specialized by kind and token count */
#define PAN_SWITCH(call)                                                                                  \
    switch (nt) {                                                                                         \
    case 8: call(8); break;                                                                               \
    case 7: call(7); break;                                                                               \
    case 6: call(6); break;                                                                               \
    case 5: call(5); break;                                                                               \
    case 4: call(4); break;                                                                               \
    case 3: call(3); break;                                                                               \
    case 2: call(2); break;                                                                               \
    default: call(1); break;                                                                              \
    }
#define PAN_TILE_FN(name, kind)                                                                           \
    static void name(const pan_call_t *c, int nt, const unsigned char *pw, const void *x, float *yo,      \
                     int64_t ldy, __mmask16 mask, int pf) {                                               \
        _Static_assert(PT == 8, "PAN_SWITCH covers 1..8 tokens");                                          \
        const qc_block_q8_act *xa = x;                                                                     \
        PAN_SWITCH(PAN_CALL_##kind)                                                                        \
    }
#define PAN_CALL_0(n) pan_tile(0, n, pw, c->nb, xa, c->x_stride, yo, ldy, mask, pf)
#define PAN_CALL_1(n) pan_tile(1, n, pw, c->nb, xa, c->x_stride, yo, ldy, mask, pf)
#define PAN_CALL_2(n) pan_tile(2, n, pw, c->nb, xa, c->x_stride, yo, ldy, mask, pf)
PAN_TILE_FN(pan_tile_q8_0, 0)
PAN_TILE_FN(pan_tile_q4_0, 1)
PAN_TILE_FN(pan_tile_q5_0, 2)

static void panel_matmul(const qc_tensor_t *t, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0,
                         int64_t r1) {
    const int kind = pan_kind(t->dtype);
    const int64_t nb = t->cols / QC_QK;
    const pan_call_t c = {t, (size_t)nb * pan_block(kind), (size_t)nb * sizeof(qc_block_q8_act), nb, NULL};
    pan_walk(&c, act, n_tok, y, ldy, r0, r1, NULL,
             kind == 0 ? pan_tile_q8_0 : kind == 1 ? pan_tile_q4_0 : pan_tile_q5_0);
}

/* Q4_K (kind 0) and Q5_K (kind 1) share d, dmin and the 12 scale bytes at
 * the block's start (the static asserts of quants.h fix both layouts). */
static void kpan_lane(int kind, unsigned char *pb, int i, unsigned char *fb, int to_panel) {
    qc_block_q4_K *k = (qc_block_q4_K *)fb;
    unsigned char *qs = kind ? ((qc_block_q5_K *)fb)->qs : k->qs;
    for (int v = 0; v < 32; v++) {
        unsigned char *pv = pb + (size_t)v * 64 + (size_t)i * 4, *fv = qs + 32 * (v / 8) + 4 * (v % 8);
        if (to_panel) memcpy(pv, fv, 4);
        else memcpy(fv, pv, 4);
    }
    for (int g = 0; kind && g < 8; g++) {
        unsigned char *pv = pb + K5_QH + (size_t)g * 64 + (size_t)i * 4, *fv = ((qc_block_q5_K *)fb)->qh + 4 * g;
        if (to_panel) memcpy(pv, fv, 4);
        else memcpy(fv, pv, 4);
    }
    uint8_t *mn = pb + KP_MN;
    if (to_panel) {
        uint32_t w4[4];
        qc_k4_scale_words(k->scales, w4);
        const uint8_t *b = (const uint8_t *)w4; /* bytes 0..7 scales, 8..15 mins */
        for (int j = 0; j < 8; j++) {
            pb[KP_SC + j * 16 + i] = b[j];
            mn[(j / 2) * 32 + i * 2 + j % 2] = b[8 + j];
        }
        memcpy(pb + KP_D + i * 2, k->d, 2);
        memcpy(pb + KP_DMIN + i * 2, k->dmin, 2);
        return;
    }
    /* the 12 scale bytes back from the 6-bit values (every bit is one of them) */
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) sc[j] = pb[KP_SC + j * 16 + i], m[j] = mn[(j / 2) * 32 + i * 2 + j % 2];
    for (int j = 0; j < 4; j++) {
        k->scales[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        k->scales[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        k->scales[j + 8] = (uint8_t)((sc[j + 4] & 0x0f) | (m[j + 4] & 0x0f) << 4);
    }
    memcpy(k->d, pb + KP_D + i * 2, 2);
    memcpy(k->dmin, pb + KP_DMIN + i * 2, 2);
}

/* nt tokens x one Q4_K (five = 0) or Q5_K panel over nb super-blocks;
 * bp[t * nb * 4 + 4b + k]: token t's bsums of sub-blocks 2k and 2k + 1 as
 * an int16 pair. */
ALWAYS_INLINE void kpan_tile(const int five, const int nt, const unsigned char *pw, int64_t nb, const void *x,
                             size_t x_stride, const int32_t *bp, float *y, int64_t ldy, __mmask16 mask, int pf) {
    const size_t pbb = five ? K5PB : KPB;
    __m512 acc[PT];
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, pw += pbb) {
        if (pf)
            for (size_t o = 0; o < pbb; o += 64) _mm_prefetch((const char *)pw + PF_BYTES + o, _MM_HINT_T0);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pw + KP_D)));
#pragma GCC unroll 1
        for (int jj = 0; jj < 4; jj++) {
            __m512i lo[8], hi[8];
            kpan_quants(five, pw, jj, lo, hi);
            const __m512 s0 = _mm512_mul_ps(
                dw, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(pw + KP_SC + 32 * jj)))));
            const __m512 s1 = _mm512_mul_ps(
                dw,
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(pw + KP_SC + 32 * jj + 16)))));
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++) {
                const qc_block_q8_K *xb = (const qc_block_q8_K *)((const unsigned char *)x + (size_t)t * x_stride) + b;
                const int8_t *q = xb->qs + 64 * jj;
                __m512i i0 = _mm512_setzero_si512(), i1 = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int g = 0; g < 8; g++) {
                    int32_t a0, a1;
                    memcpy(&a0, q + 4 * g, 4);
                    memcpy(&a1, q + 32 + 4 * g, 4);
                    i0 = _mm512_dpbusd_epi32(i0, lo[g], _mm512_set1_epi32(a0));
                    i1 = _mm512_dpbusd_epi32(i1, hi[g], _mm512_set1_epi32(a1));
                }
                const __m512 dx = _mm512_set1_ps(xb->d);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0), _mm512_mul_ps(s0, dx), acc[t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), _mm512_mul_ps(s1, dx), acc[t]);
            }
        }
        const __m512 dmn = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pw + KP_DMIN)));
        __m512i mins[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) mins[k] = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(pw + KP_MN + 32 * k)));
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            const qc_block_q8_K *xb = (const qc_block_q8_K *)((const unsigned char *)x + (size_t)t * x_stride) + b;
            const int32_t *bt = bp + ((size_t)t * (size_t)nb + (size_t)b) * 4;
            __m512i im = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                im = _mm512_dpwssd_epi32(im, mins[k], _mm512_set1_epi32(bt[k]));
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(im), _mm512_mul_ps(dmn, _mm512_set1_ps(xb->d)), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) _mm512_mask_storeu_ps(y + (size_t)t * (size_t)ldy, mask, acc[t]);
}

/* Each token's bsums of sub-blocks 2k and 2k + 1 as an int16 pair:
 * scratch[t * nb * 4 + 4b + k] (pairs of sums of 32 int8: no overflow). */
static void kpan_prep(const pan_call_t *c, int nt, const void *x) {
    int32_t *bp = c->scratch;
    for (int t = 0; t < nt; t++)
        for (int64_t b = 0; b < c->nb; b++) {
            const int16_t *bs = ((const qc_block_q8_K *)((const unsigned char *)x + (size_t)t * c->x_stride) + b)->bsums;
            for (int k = 0; k < 4; k++) {
                const int32_t e = bs[4 * k] + bs[4 * k + 1], o = bs[4 * k + 2] + bs[4 * k + 3];
                bp[((size_t)t * (size_t)c->nb + (size_t)b) * 4 + (size_t)k] =
                    (int32_t)((uint32_t)(uint16_t)e | (uint32_t)(uint16_t)o << 16);
            }
        }
}

#define KPAN_CALL(n) kpan_tile(0, n, pw, c->nb, x, c->x_stride, c->scratch, yo, ldy, mask, pf)
#define K5PAN_CALL(n) kpan_tile(1, n, pw, c->nb, x, c->x_stride, c->scratch, yo, ldy, mask, pf)
static void kpan_tile_q4_K(const pan_call_t *c, int nt, const unsigned char *pw, const void *x, float *yo,
                           int64_t ldy, __mmask16 mask, int pf) {
    PAN_SWITCH(KPAN_CALL)
}
static void kpan_tile_q5_K(const pan_call_t *c, int nt, const unsigned char *pw, const void *x, float *yo,
                           int64_t ldy, __mmask16 mask, int pf) {
    PAN_SWITCH(K5PAN_CALL)
}

enum { KP_MAX_SB = 64 }; /* super-blocks per row a K-quant panel takes (16384 columns) */

static void kpanel_matmul(const qc_tensor_t *t, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0,
                          int64_t r1) {
    int32_t bp[PT * 4 * KP_MAX_SB];
    const int64_t nb = t->cols / QC_QK_K;
    const int five = t->dtype == QC_DTYPE_Q5_K;
    const pan_call_t c = {t, (size_t)nb * (five ? K5PB : KPB), (size_t)nb * sizeof(qc_block_q8_K), nb, bp};
    pan_walk(&c, act, n_tok, y, ldy, r0, r1, kpan_prep, five ? kpan_tile_q5_K : kpan_tile_q4_K);
}

static void k6pan_lane(int kind, unsigned char *pb, int i, unsigned char *fb, int to_panel) {
    (void)kind;
    qc_block_q6_K *k = (qc_block_q6_K *)fb;
    for (int v = 0; v < 48; v++) {
        unsigned char *pv = pb + (size_t)v * 64 + (size_t)i * 4;
        unsigned char *fv = v < 32 ? k->ql + 64 * (v / 16) + 32 * (v / 8 % 2) + 4 * (v % 8)
                                   : k->qh + 32 * ((v - 32) / 8) + 4 * (v % 8);
        if (to_panel) memcpy(pv, fv, 4);
        else memcpy(fv, pv, 4);
    }
    for (int j = 0; j < 16; j++) {
        if (to_panel) pb[K6_SC + j * 16 + i] = (unsigned char)k->scales[j];
        else k->scales[j] = (int8_t)pb[K6_SC + j * 16 + i];
    }
    if (to_panel) memcpy(pb + K6_D + i * 2, k->d, 2);
    else memcpy(k->d, pb + K6_D + i * 2, 2);
}

ALWAYS_INLINE void k6pan_tile(const int nt, const unsigned char *pw, int64_t nb, const void *x, size_t x_stride,
                              float *y, int64_t ldy, __mmask16 mask, int pf) {
    __m512 acc[PT];
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, pw += K6PB) {
        if (pf)
            for (size_t o = 0; o < K6PB; o += 64) _mm_prefetch((const char *)pw + PF_BYTES + o, _MM_HINT_T0);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pw + K6_D)));
#pragma GCC unroll 1
        for (int G = 0; G < 8; G++) {
            __m512i q[8];
            k6pan_group(pw, G, q);
            __m512 sc[2];
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++)
                sc[h] = _mm512_mul_ps(dw, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                              _mm_loadu_si128((const __m128i *)(pw + K6_SC + (2 * G + h) * 16)))));
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++) {
                const qc_block_q8_K *xb = (const qc_block_q8_K *)((const unsigned char *)x + (size_t)t * x_stride) + b;
                const __m512 dx = _mm512_set1_ps(xb->d);
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const int8_t *xq = xb->qs + 32 * G + 16 * h;
                    __m512i is = _mm512_set1_epi32(-32 * xb->bsums[2 * G + h]);
#pragma GCC unroll 4
                    for (int g = 0; g < 4; g++) {
                        int32_t a4;
                        memcpy(&a4, xq + 4 * g, 4);
                        is = _mm512_dpbusd_epi32(is, q[4 * h + g], _mm512_set1_epi32(a4));
                    }
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(sc[h], dx), acc[t]);
                }
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) _mm512_mask_storeu_ps(y + (size_t)t * (size_t)ldy, mask, acc[t]);
}

#define K6PAN_CALL(n) k6pan_tile(n, pw, c->nb, x, c->x_stride, yo, ldy, mask, pf)
static void k6pan_tile_q6_K(const pan_call_t *c, int nt, const unsigned char *pw, const void *x, float *yo,
                            int64_t ldy, __mmask16 mask, int pf) {
    PAN_SWITCH(K6PAN_CALL)
}

static void k6panel_matmul(const qc_tensor_t *t, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0,
                           int64_t r1) {
    const int64_t nb = t->cols / QC_QK_K;
    const pan_call_t c = {t, (size_t)nb * K6PB, (size_t)nb * sizeof(qc_block_q8_K), nb, NULL};
    pan_walk(&c, act, n_tok, y, ldy, r0, r1, NULL, k6pan_tile_q6_K);
}

/* ==== the panel functions, by type ==== */

typedef void (*pan_lane_fn)(int kind, unsigned char *pb, int i, unsigned char *fb, int to_panel);

/* What a type's panel is: its lane function (one row's file block <-> its
 * lane of a panel block), the weights per block and the bytes per file
 * block and per panel block (16 rows). */
typedef struct {
    pan_lane_fn lane;
    int kind; /* pan_lane's */
    int64_t block;
    size_t fbb, pbb;
} pan_fmt_t;

static pan_fmt_t pan_fmt(qc_dtype_t dt) {
    switch (dt) {
    case QC_DTYPE_Q4_K: return (pan_fmt_t){kpan_lane, 0, QC_QK_K, sizeof(qc_block_q4_K), KPB};
    case QC_DTYPE_Q5_K: return (pan_fmt_t){kpan_lane, 1, QC_QK_K, sizeof(qc_block_q5_K), K5PB};
    case QC_DTYPE_Q6_K: return (pan_fmt_t){k6pan_lane, 0, QC_QK_K, sizeof(qc_block_q6_K), K6PB};
    default: {
        const int kind = pan_kind(dt);
        return (pan_fmt_t){pan_lane, kind, QC_QK, file_block(kind), pan_block(kind)};
    }
    }
}

static void pan_make_any(const qc_tensor_t *t, void *out, int64_t p0, int64_t p1) {
    const pan_fmt_t f = pan_fmt(t->dtype);
    const int64_t nb = t->cols / f.block;
    const size_t row = (size_t)nb * f.fbb;
    for (int64_t p = p0; p < p1; p++)
        for (int64_t b = 0; b < nb; b++) {
            unsigned char *pb = (unsigned char *)out + ((size_t)p * (size_t)nb + (size_t)b) * f.pbb;
            for (int i = 0; i < PR; i++)
                f.lane(f.kind, pb, i, (unsigned char *)t->data + (size_t)(p * PR + i) * row + (size_t)b * f.fbb, 1);
        }
}

/* Row r rebuilt block by block in the file's layout, then dequantized as
 * the file's own bytes would be. */
static void pan_row_any(const qc_tensor_t *t, int64_t r, float *dst) {
    const pan_fmt_t f = pan_fmt(t->dtype);
    const int64_t nb = t->cols / f.block;
    _Alignas(8) unsigned char fb[sizeof(qc_block_q6_K)];
    for (int64_t b = 0; b < nb; b++) {
        unsigned char *pb = (unsigned char *)t->panel + ((size_t)(r / PR) * (size_t)nb + (size_t)b) * f.pbb;
        f.lane(f.kind, pb, (int)(r % PR), fb, 0);
        qc_qtype(t->dtype)->dequantize(fb, dst + b * f.block, f.block);
    }
}

static size_t pan_bytes_any(const qc_tensor_t *t) {
    if (t->dtype == QC_DTYPE_Q4_K || t->dtype == QC_DTYPE_Q5_K || t->dtype == QC_DTYPE_Q6_K)
        return t->rows > 0 && t->rows % PR == 0 && t->cols % QC_QK_K == 0 && t->cols <= KP_MAX_SB * QC_QK_K
                   ? (size_t)(t->rows / PR) * (size_t)(t->cols / QC_QK_K) * pan_fmt(t->dtype).pbb
                   : 0;
    return panel_bytes(t);
}
static void pan_matmul_any(const qc_tensor_t *t, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0,
                           int64_t r1) {
    if (t->dtype == QC_DTYPE_Q4_K || t->dtype == QC_DTYPE_Q5_K) kpanel_matmul(t, act, n_tok, y, ldy, r0, r1);
    else if (t->dtype == QC_DTYPE_Q6_K) k6panel_matmul(t, act, n_tok, y, ldy, r0, r1);
    else panel_matmul(t, act, n_tok, y, ldy, r0, r1);
}

static const qc_panel_ops_t avx512_panel = {PR, pan_bytes_any, pan_make_any, pan_matmul_any, pan_row_any};

/* ==== dot product, activation quantization ==== */

static float dot_f32_avx512(const float *a, const float *b, int64_t n) {
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

/* Same steps as kernels_scalar.c's clamp127 and round_even, 16 lanes at a time. */
static void act_row_avx512(const float *x, int64_t cols, qc_block_q8_act *out) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (int64_t b = 0; b < cols / QC_QK; b++, x += QC_QK) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        const __m512 m = _mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask));
        const float amax = _mm512_reduce_max_ps(m);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const __m512 vid = _mm512_set1_ps(id);
        __m512i q[2];
        for (int h = 0; h < 2; h++) {
            /* max(NaN, lo) is lo, as clamp127 makes it */
            const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(h ? v1 : v0, vid), lo), hi);
            q[h] = _mm512_cvttps_epi32(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
        _mm_storeu_si128((__m128i *)out[b].qs, _mm512_cvtepi32_epi8(q[0]));
        _mm_storeu_si128((__m128i *)(out[b].qs + 16), _mm512_cvtepi32_epi8(q[1]));
        /* The scale is kept at half precision, as ggml's block_q8_0 keeps it for
         * the activations, so the products equal llama.cpp's. */
        out[b].d = qc_f16_to_f32(qc_f32_to_f16(d));
        out[b].sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q[0], q[1]));
    }
}

/* ggml's quantize_row_q8_K_ref (quants.c) 16 lanes at a time, the same
 * bytes: the first value of largest magnitude maps to -127 (a NaN never
 * wins: the comparison is ordered, as the reference's), the same products
 * rounded by the float adder (nearest_int), clamped at 127 and truncated to
 * bytes; bsums the sums of those bytes. */
static void act_row_k_avx512(const float *x, int64_t cols, void *out) {
    qc_block_q8_K *y = out;
    const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < cols / QC_QK_K; i++, x += QC_QK_K, y++) {
        __m512 am = _mm512_setzero_ps();
        for (int j = 0; j < QC_QK_K; j += 16) {
            const __m512 ax = _mm512_and_ps(_mm512_loadu_ps(x + j), abs_mask);
            am = _mm512_mask_mov_ps(am, _mm512_cmp_ps_mask(ax, am, _CMP_GT_OQ), ax);
        }
        const float amax = _mm512_reduce_max_ps(am);
        if (!amax) {
            memset(y, 0, sizeof *y);
            continue;
        }
        float max = amax;
        for (int j = 0; j < QC_QK_K; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        const __m512 vs = _mm512_set1_ps(iscale), magic = _mm512_set1_ps(12582912.f);
        for (int g = 0; g < QC_QK_K / 16; g++) {
            const __m512 t = _mm512_add_ps(_mm512_mul_ps(vs, _mm512_loadu_ps(x + 16 * g)), magic);
            __m512i v = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(t), _mm512_set1_epi32(0x007fffff)),
                                         _mm512_set1_epi32(0x00400000));
            const __m128i b = _mm512_cvtepi32_epi8(_mm512_min_epi32(v, _mm512_set1_epi32(127)));
            _mm_storeu_si128((__m128i *)(void *)(y->qs + 16 * g), b);
            y->bsums[g] = (int16_t)_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(b));
        }
        y->d = 1 / iscale;
    }
}

/* ==== attention ==== */

typedef __m512 vec_t;
#define ATT_NAME attend_avx512
#define SWIGLU_NAME swiglu_avx512
/* declared static first, so attend_simd.h's definition is this file's own */
static void attend_avx512(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                          float *scores, float *o);
#define ATT_W 16
ALWAYS_INLINE vec_t v_load(const float *p) { return _mm512_loadu_ps(p); }
ALWAYS_INLINE void v_store(float *p, vec_t v) { _mm512_storeu_ps(p, v); }
ALWAYS_INLINE vec_t v_add(vec_t a, vec_t b) { return _mm512_add_ps(a, b); }
ALWAYS_INLINE vec_t v_mul(vec_t a, vec_t b) { return _mm512_mul_ps(a, b); }
ALWAYS_INLINE vec_t v_set1(float x) { return _mm512_set1_ps(x); }
ALWAYS_INLINE vec_t v_zero(void) { return _mm512_setzero_ps(); }
ALWAYS_INLINE vec_t v_fmadd(vec_t a, vec_t b, vec_t c) { return _mm512_fmadd_ps(a, b, c); }
/* halves, quarters, then pairs (GCC's _mm512_reduce_add_ps order), written
 * out so that hsum16 below can repeat it for 16 vectors at once */
ALWAYS_INLINE float v_hsum(vec_t a) {
    const __m256 t3 = _mm256_add_ps(_mm512_extractf32x8_ps(a, 1), _mm512_castps512_ps256(a));
    const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    const __m128 t8 = _mm_add_ps(t6, _mm_movehl_ps(t6, t6));
    return _mm_cvtss_f32(_mm_add_ss(t8, _mm_movehdup_ps(t8)));
}
ALWAYS_INLINE vec_t v_load_h(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
ALWAYS_INLINE vec_t v_round_h(vec_t x) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
ALWAYS_INLINE vec_t v_sub(vec_t a, vec_t b) { return _mm512_sub_ps(a, b); }
ALWAYS_INLINE vec_t v_pow2_magic(vec_t t) {
    const __m512i e = _mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32((int)(127u - 0x4B400000u)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}
ALWAYS_INLINE vec_t v_zero_below(vec_t x, float a, vec_t y) {
    return _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(x, _mm512_set1_ps(a), _CMP_LT_OQ), y);
}
ALWAYS_INLINE vec_t v_div(vec_t a, vec_t b) { return _mm512_div_ps(a, b); }
ALWAYS_INLINE vec_t v_neg_abs(vec_t x) { return _mm512_or_ps(x, _mm512_set1_ps(-0.0f)); }
ALWAYS_INLINE vec_t v_select_ge0(vec_t x, vec_t a, vec_t b) {
    return _mm512_mask_mov_ps(b, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), a);
}
#include "engine/attend_simd.h"

/* Lane j = v_hsum(v[j]), the same additions in the same order: the halves
 * of pairs of vectors, then their quarters, pairs, and the final pairs,
 * which leave key q + 4m in lane 4q + m (put back in order at the end). */
ALWAYS_INLINE __m512 hsum16(const __m512 v[16]) {
    __m512 w[8], x[4], y[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xee),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0xdd),
                             _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0x88));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        y[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x[2 * i]), _mm512_castps_pd(x[2 * i + 1]))),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x[2 * i]), _mm512_castps_pd(x[2 * i + 1]))));
    const __m512 z = _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x88), _mm512_shuffle_ps(y[0], y[1], 0xdd));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), z);
}

/* The scores of nq queries (qc_attend_block's) 16 keys at a time: each
 * group of K rows converted once into kf for all the queries, each query's
 * 16 dots att_dot_h's operations (hsum16 for the 16 horizontal sums). */
ALWAYS_INLINE void att_qk_block(const float *q, int64_t ldq, int nq, const qc_kv_rows_t *r, int n0, int hd,
                                float scale, float *scores, const int nv) {
    const int nmax = n0 + nq - 1;
    _Alignas(64) float kf[16 * 512];
    for (int i0 = 0; i0 < nmax; i0 += 16) {
        const int nk = nmax - i0 < 16 ? nmax - i0 : 16;
        for (int j = 0; j < 16; j++) {
            const uint16_t *k = j < nk ? qc_k_row(r, i0 + j) : NULL;
#pragma GCC unroll 8
            for (int c = 0; c < nv; c++) v_store(kf + j * hd + c * ATT_W, k ? v_load_h(k + c * ATT_W) : v_zero());
        }
        for (int qi = 0; qi < nq; qi++) {
            const int n = n0 + qi;
            if (n <= i0) continue;
            const float *qq = q + qi * ldq;
            __m512 v[16];
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) {
                const float *k = kf + j * hd;
                vec_t s0 = v_zero(), s1 = v_zero();
                int c = 0;
#pragma GCC unroll 8
                for (; c + 2 <= nv; c += 2) {
                    s0 = v_fmadd(v_load(qq + c * ATT_W), v_load(k + c * ATT_W), s0);
                    s1 = v_fmadd(v_load(qq + (c + 1) * ATT_W), v_load(k + (c + 1) * ATT_W), s1);
                }
                if (c < nv) s0 = v_fmadd(v_load(qq + c * ATT_W), v_load(k + c * ATT_W), s0);
                v[j] = v_add(s0, s1);
            }
            const int m = n - i0 < 16 ? n - i0 : 16;
            _mm512_mask_storeu_ps(scores + (size_t)qi * (size_t)nmax + i0, (__mmask16)((1u << m) - 1),
                                  v_mul(hsum16(v), v_set1(scale)));
        }
    }
}

/* The largest of s[0, n), as `if (s[i] > mx) mx = s[i]` from -inf finds
 * it (NaN passed over: vmaxps returns its second operand then); only the
 * sign of a zero maximum may differ, which no score minus it shows. */
static float att_max(const float *s, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(_mm512_loadu_ps(s + i), m);
    if (i < n) m = _mm512_mask_max_ps(m, (__mmask16)((1u << (n - i)) - 1), _mm512_maskz_loadu_ps((__mmask16)((1u << (n - i)) - 1), s + i), m);
    return _mm512_reduce_max_ps(m);
}

/* att_f32_out for the queries [q0, q0 + g) of a block (g <= 4 / 2 by nv),
 * their weights already in scores: each V row converted once for the
 * group, each query's sum the same additions in the same order (its keys
 * 0 .. n - 1; the last queries' extra keys after the shared ones). */
ALWAYS_INLINE void att_pv_group(const qc_kv_rows_t *r, int n0, int nmax, const float *scores, const float *inv, int q0,
                                int g, float *o, int64_t ldo, const int nv, const int G) {
    vec_t acc[4][8];
#pragma GCC unroll 4
    for (int a = 0; a < G; a++)
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++) acc[a][j] = v_zero();
    const int shared = n0 + q0; /* keys every query of the group sees */
    for (int i = 0; i < shared; i++) {
        const uint16_t *v = qc_v_row(r, i);
        vec_t vv[8];
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++) vv[j] = v_load_h(v + j * ATT_W);
#pragma GCC unroll 4
        for (int a = 0; a < G; a++) {
            if (a >= g) break;
            const vec_t p = v_set1(scores[(size_t)(q0 + a) * (size_t)nmax + i] * inv[q0 + a]);
#pragma GCC unroll 8
            for (int j = 0; j < nv; j++) acc[a][j] = v_add(acc[a][j], v_mul(p, vv[j]));
        }
    }
#pragma GCC unroll 4
    for (int a = 0; a < G; a++) {
        if (a >= g) break;
        for (int i = shared; i < n0 + q0 + a; i++) {
            const uint16_t *v = qc_v_row(r, i);
            const vec_t p = v_set1(scores[(size_t)(q0 + a) * (size_t)nmax + i] * inv[q0 + a]);
#pragma GCC unroll 8
            for (int j = 0; j < nv; j++) acc[a][j] = v_add(acc[a][j], v_mul(p, v_load_h(v + j * ATT_W)));
        }
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++) v_store(o + (q0 + a) * ldo + j * ATT_W, acc[a][j]);
    }
}

ALWAYS_INLINE void att_block_run(const float *q, int64_t ldq, int nq, const qc_kv_rows_t *r, int n0, int hd,
                                 float scale, int f16_acc, float *scores, float *o, int64_t ldo, const int nv) {
    const int nmax = n0 + nq - 1;
    if (f16_acc) { /* q rounded to half, the dots as att_run's, then its online softmax */
        _Alignas(64) float q16[QC_ATT_QB * 512];
        for (int qi = 0; qi < nq; qi++)
#pragma GCC unroll 8
            for (int j = 0; j < nv; j++) v_store(q16 + qi * hd + j * ATT_W, v_round_h(v_load(q + qi * ldq + j * ATT_W)));
        att_qk_block(q16, hd, nq, r, n0, hd, scale, scores, nv);
        const int G = nv <= 4 ? 4 : 2;
        for (int q0 = 0; q0 < nq; q0 += G)
            att_f16_group(r, n0, nmax, scores, q0, nq - q0 < G ? nq - q0 : G, o, ldo, nv, G);
        return;
    }
    att_qk_block(q, ldq, nq, r, n0, hd, scale, scores, nv);
    float inv[QC_ATT_QB];
    for (int qi = 0; qi < nq; qi++) {
        float *s = scores + (size_t)qi * (size_t)nmax;
        inv[qi] = att_softmax(s, n0 + qi, att_max(s, n0 + qi));
    }
    _Static_assert(512 / ATT_W >= 8, "att_pv_group's arrays");
    const int G = nv <= 4 ? 4 : 2;
    for (int q0 = 0; q0 < nq; q0 += G)
        att_pv_group(r, n0, nmax, scores, inv, q0, nq - q0 < G ? nq - q0 : G, o, ldo, nv, G);
}

static void attend_block_avx512(const float *q, int64_t ldq, int nq, const qc_kv_rows_t *r, int n0, int hd,
                                float scale, int f16_acc, float *scores, float *o, int64_t ldo) {
    /* Qwen's heads, 64 and 128 wide; any other query by query (the same
     * results, by qc_attend_block's contract) */
    if (n0 >= 1 && hd == 64) att_block_run(q, ldq, nq, r, n0, hd, scale, f16_acc, scores, o, ldo, 64 / ATT_W);
    else if (n0 >= 1 && hd == 128) att_block_run(q, ldq, nq, r, n0, hd, scale, f16_acc, scores, o, ldo, 128 / ATT_W);
    else
        for (int i = 0; i < nq; i++) attend_avx512(q + i * ldq, r, n0 + i, hd, scale, f16_acc, scores, o + i * ldo);
}

/* ==== half precision ==== */

/* kernels_avx2.c's f16_row_avx2, 16 at a time. */
static void f16_row_avx512(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m256i q = _mm512_cvtepi32_epi16(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(v), 16),
                                                                                  _mm512_set1_epi32(0x8000)),
                                                                 _mm512_set1_epi32(0x7e00)));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_mask_blend_epi16(nan, h, q));
    }
    for (; i < n; i++) y[i] = qc_f32_to_f16(x[i]);
}

/* ==== the level ==== */

/* Q4_1 and Q5_1 run on AVX2's kernels (matmul.c's level_below). */
static const qc_kernel_set_t avx512_set = {{QC_MM_COMMON_TYPES, [QC_DTYPE_Q5_0] = &mm_q5_0, [QC_DTYPE_Q2_K] = &mm_q2_K, [QC_DTYPE_Q3_K] = &mm_q3_K,
                                            [QC_DTYPE_Q4_K] = &mm_q4_K, [QC_DTYPE_Q5_K] = &mm_q5_K,
                                            [QC_DTYPE_Q6_K] = &mm_q6_K},
                                           dot_f32_avx512,
                                           act_row_avx512,
                                           attend_avx512,
                                           &avx512_panel,
                                           act_row_k_avx512,
                                           f16_row_avx512,
                                           attend_block_avx512,
                                           swiglu_avx512};
const qc_kernel_set_t *const qc_level_avx512 = &avx512_set;

#else /* built without the AVX-512 flags: never selected */

const qc_kernel_set_t *const qc_level_avx512 = NULL;

#endif
