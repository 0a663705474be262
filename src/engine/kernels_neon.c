/* kernels_neon.c — the ARM64 levels, three kernel sets in one file:
 *   neon     Advanced SIMD of ARMv8.0, which every ARM64 CPU has (Cortex-A53
 *            and up): the baseline, built without any -march flag
 *   dotprod  + the ARMv8.2 dot product (sdot) for the int8 products
 *   i8mm     + the int8 matrix multiply (smmla) for prefill's token tiles
 * The dotprod and i8mm functions are compiled for those extensions by GCC
 * target pragmas around them (so the file needs no flags and the rest of it
 * runs on ARMv8.0); kernels.c calls them only after getauxval(AT_HWCAP)
 * HWCAP_ASIMDDP / getauxval(AT_HWCAP2) HWCAP2_I8MM. Clang 14 (Debian 12's)
 * has no such intrinsics outside the -march that enables them: there the
 * two levels exist only when the compiler flags enable them.
 *
 * A deliberate per-level twin of the scalar micro-kernels (kernels_scalar.c),
 * the same shapes of code as kernels_avx2.c; matmul.c's driver walks the
 * tiles (kernels_impl.h); test_kernels compares every function here with
 * its scalar twin, under qemu (make emu-test) at each level.
 *
 * Quantized weights (Q8_0, Q4_0, Q5_0; activations QC_ACT_Q8): each block's
 * integer dot is exact — NEON: vmull_s8 / vmlal_high_s8 pairs (|w x| <=
 * 128 * 127, two of them fit int16) widened into int32 lanes; dotprod: two
 * sdot; i8mm: four smmla, each a 2 rows x 2 tokens x 8 bytes product. Q4_0
 * nibbles are made signed (q - 8) first, Q5_0's (5th bit from qh) q - 16,
 * so no correction term is needed; Q4_1/Q5_1 (on ggml's Q8_1 activations)
 * keep their unsigned quants and add the offset's term m_w * s_x per block
 * as the scalar does. The K-quants (Q2_K .. Q6_K on Q8_K activations)
 * keep the scalar reference's integer sums per super-block (eight, or
 * Q2_K's one; see their section), the same at every ARM level.
 * The block's lanes are then summed as integers and scaled and added in
 * F32 exactly as the scalar tile does (sum += (float)isum * (d_w * d_x),
 * block after block, no fused multiply-add), so every ARM level's quantized
 * products are bit-identical to the scalar reference, in every tile shape.
 *
 * Tiles: quantized 2 rows x 4 tokens (NEON, dotprod; 4 rows x 4 tokens of
 * smmla for i8mm), 4 x 1 for decode; float weights 4 x 4, 4 x 1 for decode,
 * products accumulated in F32 by fused multiply-add four columns at a time. */
#include "engine/kernels_impl.h"
#include "engine/quants.h"

#if defined(__aarch64__) && defined(__ARM_NEON)

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Which extension levels this compiler can build here (see the top). */
#if defined(__GNUC__) && !defined(__clang__)
#define NEON_DOTPROD 1
#define NEON_I8MM (__GNUC__ >= 10)
#define BEGIN_DOTPROD _Pragma("GCC push_options") _Pragma("GCC target(\"arch=armv8.2-a+dotprod\")")
#define BEGIN_I8MM _Pragma("GCC push_options") _Pragma("GCC target(\"arch=armv8.2-a+dotprod+i8mm\")")
#define END_TARGET _Pragma("GCC pop_options")
#else
#if defined(__ARM_FEATURE_DOTPROD)
#define NEON_DOTPROD 1
#else
#define NEON_DOTPROD 0
#endif
#if defined(__ARM_FEATURE_DOTPROD) && defined(__ARM_FEATURE_MATMUL_INT8)
#define NEON_I8MM 1
#else
#define NEON_I8MM 0
#endif
#define BEGIN_DOTPROD
#define BEGIN_I8MM
#define END_TARGET
#endif

/* RB rows per L2 block; quantized tiles QR x QT (QR1 x 1 for decode), i8mm
 * tiles MR x MT; K-quant tiles KR x KT (KR x 1); float tiles FR x FT (FR x 1). */
enum { RB = 64, QR = 2, QT = 4, QR1 = 4, MR = 4, MT = 4, KR = 2, KT = 4, FR = 4, FT = 4 };

/* ==== small helpers ==== */

ALWAYS_INLINE float half_at(const unsigned char *p) {
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

/* 16 bytes at any address, as int8 lanes. */
ALWAYS_INLINE int8x16_t load_s8(const void *p) { return vreinterpretq_s8_u8(vld1q_u8((const uint8_t *)p)); }

/* Legacy block kinds: 0 Q8_0, 1 Q4_0, 2 Q5_0 (on the kernels' Q8 blocks),
 * 3 Q4_1, 4 Q5_1 (on ggml's Q8_1 blocks). */
#define KIND_Q8_1(kind) ((kind) >= 3)

/* Bytes of a legacy block of a kind. */
ALWAYS_INLINE size_t legacy_bytes(const int kind) {
    static const size_t bytes[5] = {QC_Q8_0_BYTES, QC_Q4_0_BYTES, sizeof(qc_block_q5_0), sizeof(qc_block_q4_1),
                                    sizeof(qc_block_q5_1)};
    return bytes[kind];
}

/* The 16 bits of qh at p as 16 bytes, 0x10 where the bit is set (byte k:
 * bit k): Q5_0's 5th bits of 16 elements. */
ALWAYS_INLINE uint8x16_t bits_to_16s(const uint8_t *p) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t v = vcombine_u8(vdup_n_u8(p[0]), vdup_n_u8(p[1]));
    return vandq_u8(vtstq_u8(v, vld1q_u8(bit)), vdupq_n_u8(0x10));
}

/* The two 16-weight halves of a block of a kind at p, as int8: elements
 * 0-15 and 16-31. Q4_0's nibbles less 8, Q5_0's (with the 5th bit of
 * element j from bit j of qh) less 16, as the scalar tile takes them;
 * Q4_1's and Q5_1's as they are (0..31, the offset m apart). */
ALWAYS_INLINE void load_w_block(const int kind, const unsigned char *p, int8x16_t *w0, int8x16_t *w1) {
    if (KIND_Q8_1(kind)) {
        const uint8x16_t q = vld1q_u8(p + (kind == 4 ? 8 : 4));
        uint8x16_t lo = vandq_u8(q, vdupq_n_u8(0x0f)), hi = vshrq_n_u8(q, 4);
        if (kind == 4) {
            lo = vorrq_u8(lo, bits_to_16s(p + 4));
            hi = vorrq_u8(hi, bits_to_16s(p + 6));
        }
        *w0 = vreinterpretq_s8_u8(lo);
        *w1 = vreinterpretq_s8_u8(hi);
    } else if (kind == 2) {
        const qc_block_q5_0 *b5 = (const qc_block_q5_0 *)p;
        const uint8x16_t q = vld1q_u8(b5->qs);
        const int8x16_t sixteen = vdupq_n_s8(16);
        *w0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0f)), bits_to_16s(b5->qh))), sixteen);
        *w1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q, 4), bits_to_16s(b5->qh + 2))), sixteen);
    } else if (kind) {
        const uint8x16_t q = vld1q_u8(p + 2);
        const int8x16_t eight = vdupq_n_s8(8);
        *w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f))), eight);
        *w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
    } else {
        *w0 = load_s8(p + 2);
        *w1 = load_s8(p + 18);
    }
}

/* A block's dot in four int32 lanes, ARMv8.0: products of two lanes summed
 * in int16 (each |w x| <= 128 * 127: a hostile file's -128 weight times a
 * clamped activation), then widened pairwise. */
ALWAYS_INLINE int32x4_t dot_block_neon(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
    const int16x8_t a = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), w0, x0);
    const int16x8_t b = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(x1)), w1, x1);
    return vpadalq_s16(vpaddlq_s16(a), b);
}

/* Lane i = the sum of v[i]'s lanes, for n <= 4 vectors (the others 0). */
ALWAYS_INLINE int32x4_t hsum4_s32(const int n, const int32x4_t *v) {
    const int32x4_t z = vdupq_n_s32(0);
    const int32x4_t s01 = vpaddq_s32(v[0], n > 1 ? v[1] : z);
    const int32x4_t s23 = vpaddq_s32(n > 2 ? v[2] : z, n > 3 ? v[3] : z);
    return vpaddq_s32(s01, s23);
}

/* ==== quantized weights: the scaling every ARM tile shares ==== */

/* The scalar tile's sum += (float)isum * (d_w * d_x), on four outputs at
 * once (lanes), without fusing: the same two roundings per block. */
ALWAYS_INLINE float32x4_t scale_add(float32x4_t sum, int32x4_t isum, float32x4_t dw, float32x4_t dx) {
    return vaddq_f32(sum, vmulq_f32(vcvtq_f32_s32(isum), vmulq_f32(dw, dx)));
}

/* Q4_1/Q5_1 on Q8_1 (quants.c's dot_legacy): the scalar's
 * sumf += (d_w * d_x) * (float)isum + m_w * s_x, in lanes, unfused. */
ALWAYS_INLINE float32x4_t scale_add_m(float32x4_t sum, int32x4_t isum, float32x4_t dw, float32x4_t dx,
                                      float32x4_t mw, float32x4_t sx) {
    return vaddq_f32(sum, vaddq_f32(vmulq_f32(vmulq_f32(dw, dx), vcvtq_f32_s32(isum)), vmulq_f32(mw, sx)));
}

/* Stores an R x T tile's F32 sums: lanes are tokens per row (T > 1,
 * s[r]) or rows (T == 1, s[0]). */
ALWAYS_INLINE void store_tile(const int R, const int T, const float32x4_t *s, const qc_mm_tile_t *a) {
    float o[4][4];
    for (int r = 0; r < (T == 1 ? 1 : R); r++) vst1q_f32(o[r], s[r]);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) a->y[(size_t)t * (size_t)a->ldy + r] = T == 1 ? o[0][r] : o[r][t];
}

/* One R x T tile (R, T <= 4; see qc_mm_tile_t) over a->k blocks, the
 * block dot given by DOT (dot_block_neon, dot_block_dp): per block, per
 * row and token, an int32x4 of partial sums, reduced to one int per output
 * and scaled in lanes (tokens, or rows when T == 1). */
#define TILE_QUANT_BODY(DOT, kind, R, T, a)                                                                  \
    do {                                                                                                    \
        const unsigned char *w0_ = (a)->w, *x0_ = (a)->x;                                                   \
        const size_t bb_ = legacy_bytes(kind);                                                              \
        float32x4_t sum_[4];                                                                                \
        for (int r = 0; r < 4; r++) sum_[r] = vdupq_n_f32(0.0f);                                            \
        for (int64_t b = 0; b < (a)->k; b++) {                                                              \
            int8x16_t wl_[4], wh_[4];                                                                       \
            float dwf_[4] = {0, 0, 0, 0}, dxf_[4] = {0, 0, 0, 0}, mwf_[4] = {0, 0, 0, 0}, sxf_[4] = {0, 0, 0, 0}; \
            _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++) {                                         \
                const unsigned char *p = w0_ + (size_t)r * (a)->w_stride + (size_t)b * bb_;                 \
                load_w_block((kind), p, &wl_[r], &wh_[r]);                                                  \
                dwf_[r] = half_at(p);                                                                       \
                if (KIND_Q8_1(kind)) mwf_[r] = half_at(p + 2);                                              \
            }                                                                                               \
            int32x4_t acc_[4][4];                                                                           \
            _Pragma("GCC unroll 4") for (int t = 0; t < (T); t++) {                                         \
                const unsigned char *xt_ = x0_ + (size_t)t * (a)->x_stride;                                 \
                const int8_t *xq_;                                                                          \
                if (KIND_Q8_1(kind)) {                                                                      \
                    const qc_block_q8_1 *ab = (const qc_block_q8_1 *)xt_ + b;                               \
                    xq_ = ab->qs;                                                                           \
                    dxf_[t] = half_at(ab->d);                                                               \
                    sxf_[t] = half_at(ab->s);                                                               \
                } else {                                                                                    \
                    const qc_block_q8_act *ab = (const qc_block_q8_act *)xt_ + b;                           \
                    xq_ = ab->qs;                                                                           \
                    dxf_[t] = ab->d;                                                                        \
                }                                                                                           \
                const int8x16_t xl = vld1q_s8(xq_), xh = vld1q_s8(xq_ + 16);                                \
                _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++) acc_[r][t] = DOT(wl_[r], wh_[r], xl, xh); \
            }                                                                                               \
            if ((T) == 1) {                                                                                 \
                int32x4_t col_[4];                                                                          \
                _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++) col_[r] = acc_[r][0];                 \
                const int32x4_t is_ = hsum4_s32((R), col_);                                                 \
                const float32x4_t dx_ = vdupq_n_f32(dxf_[0]);                                               \
                sum_[0] = KIND_Q8_1(kind) ? scale_add_m(sum_[0], is_, vld1q_f32(dwf_), dx_, vld1q_f32(mwf_),    \
                                                        vdupq_n_f32(sxf_[0]))                               \
                                          : scale_add(sum_[0], is_, vld1q_f32(dwf_), dx_);                  \
            } else {                                                                                        \
                const float32x4_t dx_ = vld1q_f32(dxf_), sx_ = vld1q_f32(sxf_);                             \
                _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++) {                                     \
                    const int32x4_t is_ = hsum4_s32((T), acc_[r]);                                          \
                    sum_[r] = KIND_Q8_1(kind) ? scale_add_m(sum_[r], is_, vdupq_n_f32(dwf_[r]), dx_,        \
                                                            vdupq_n_f32(mwf_[r]), sx_)                      \
                                              : scale_add(sum_[r], is_, vdupq_n_f32(dwf_[r]), dx_);         \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
        store_tile((R), (T), sum_, (a));                                                                    \
    } while (0)

ALWAYS_INLINE void tile_quant_neon(const int kind, const int R, const int T, const qc_mm_tile_t *a) {
    TILE_QUANT_BODY(dot_block_neon, kind, R, T, a);
}

/* ==== K-quants: 256-weight super-blocks on Q8_K activations ====
 *
 * The scalar reference (quants.c's dot_kquant, ggml's generic vec_dot)
 * keeps eight integer sums per super-block, element e in sum e % 8, each
 * scaled by d_w * d_x into its own F32 sum over the row; the mins' term
 * (dmin_w d_x sum_j mn bsum_j) leaves a separate F32 sum per super-block;
 * at the end the eight sums join that one, sum 0 first. The tiles here
 * compute those eight integers exactly (vmull_s8 products of 8 consecutive
 * elements, lane i holding element 8m + i, so lane i is sum i) and repeat
 * the F32 steps in that order: the scalar results bit for bit. */

/* Per row and super-block: the 256 quants as int8 in element order
 * (q[v] = elements 16v .. 16v + 15; Q2_K 0..3, Q3_K -4..3, Q4_K 0..15,
 * Q5_K 0..31, Q6_K -32..31), the sub-block scales (8 of 32 elements, or 16
 * of 16 for Q2_K, Q3_K and Q6_K), the mins (Q2_K's 16, Q4_K/Q5_K's 8), d
 * and dmin. */
typedef struct {
    int8x16_t q[16];
    int16_t sc[16], mn[16];
    float d, dmin;
} kq_row_t;

/* The types whose sub-blocks are 16 weights (Q4_K/Q5_K: 32). */
ALWAYS_INLINE int kq_sub16(const qc_dtype_t kt) {
    return kt == QC_DTYPE_Q2_K || kt == QC_DTYPE_Q3_K || kt == QC_DTYPE_Q6_K;
}

/* Q4_K/Q5_K's 8 sub-block scales and mins (6 bits each), as quants.c's
 * scale_min_k4. */
ALWAYS_INLINE void kq_scales_k4(const uint8_t *q, kq_row_t *k) {
    for (int j = 0; j < 4; j++) {
        k->sc[j] = q[j] & 63;
        k->mn[j] = q[j + 4] & 63;
        k->sc[j + 4] = (int16_t)((q[j + 8] & 0xF) | ((q[j] >> 6) << 4));
        k->mn[j + 4] = (int16_t)((q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4));
    }
}

/* The dot-product order of 32 elements (v0: 0-15, v1: 16-31): bytes 4c ..
 * 4c + 3 of *a are elements c, c + 8, c + 16, c + 24 (c = 0..3), those of *b
 * the same from c + 4; each int32 lane of an sdot then adds to one of the
 * scalar's eight sums (a: sums 0-3, b: 4-7). */
ALWAYS_INLINE void kq_perm32(uint8x16_t v0, uint8x16_t v1, uint8x16_t *a, uint8x16_t *b) {
    static const uint8_t idx[16] = {0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27};
    const uint8x16x2_t t = {{v0, v1}};
    const uint8x16_t i = vld1q_u8(idx);
    *a = vqtbl2q_u8(t, i);
    *b = vqtbl2q_u8(t, vaddq_u8(i, vdupq_n_u8(4)));
}

/* perm (Q4_K/Q5_K): each sub-block's 32 quants in kq_perm32's order, for
 * the dot-product tiles. */
ALWAYS_INLINE void kq_unpack(const qc_dtype_t kt, const int perm, const unsigned char *p, kq_row_t *k) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    if (kt == QC_DTYPE_Q2_K || kt == QC_DTYPE_Q3_K) {
        /* element 128n + 32g + l: bits 2g of qs[32n + l]; Q3_K less 4 where
         * bit 4n + g of hmask[l] is clear (quants.c's unpack_q3_K) */
        const uint8_t *qs = kt == QC_DTYPE_Q2_K ? ((const qc_block_q2_K *)p)->qs : ((const qc_block_q3_K *)p)->qs;
        const uint8x16_t m2 = vdupq_n_u8(0x03), one = vdupq_n_u8(1);
        uint8x16_t hm[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};
        if (kt == QC_DTYPE_Q2_K) {
            const qc_block_q2_K *b = (const qc_block_q2_K *)p;
            k->d = half_at(b->d);
            k->dmin = half_at(b->dmin);
            for (int s = 0; s < 16; s++) k->sc[s] = b->scales[s] & 0xF, k->mn[s] = b->scales[s] >> 4;
        } else {
            const qc_block_q3_K *b = (const qc_block_q3_K *)p;
            k->d = half_at(b->d);
            k->dmin = 0.0f;
            qc_q3_K_scales(b->scales, k->sc);
            hm[0] = vld1q_u8(b->hmask);
            hm[1] = vld1q_u8(b->hmask + 16);
        }
        for (int n = 0; n < 2; n++)
            for (int h = 0; h < 2; h++) {
                const uint8x16_t v = vld1q_u8(qs + 32 * n + 16 * h);
                const uint8x16_t q[4] = {vandq_u8(v, m2), vandq_u8(vshrq_n_u8(v, 2), m2), vandq_u8(vshrq_n_u8(v, 4), m2),
                                         vshrq_n_u8(v, 6)};
                for (int g = 0; g < 4; g++) {
                    int8x16_t e = vreinterpretq_s8_u8(q[g]);
                    if (kt == QC_DTYPE_Q3_K) {
                        const uint8x16_t hb = vandq_u8(vshlq_u8(hm[h], vdupq_n_s8((int8_t)-(4 * n + g))), one);
                        e = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(q[g], vshlq_n_u8(hb, 2))), vdupq_n_s8(4));
                    }
                    k->q[8 * n + 2 * g + h] = e;
                }
            }
        return;
    }
    if (kt == QC_DTYPE_Q6_K) {
        const qc_block_q6_K *b = (const qc_block_q6_K *)p;
        const uint8x16_t m2 = vdupq_n_u8(0x03);
        const int8x16_t off = vdupq_n_s8(32);
        k->d = half_at(b->d);
        for (int s = 0; s < 16; s++) k->sc[s] = b->scales[s];
        /* element 128n + 32g + l: low nibble of ql[64n + l + 32 (g odd)]
         * (high nibble for g >= 2), top bits 2g.. of qh[32n + l] */
        for (int n = 0; n < 2; n++)
            for (int h = 0; h < 2; h++) {
                const uint8x16_t l0 = vld1q_u8(b->ql + 64 * n + 16 * h), l1 = vld1q_u8(b->ql + 64 * n + 32 + 16 * h);
                const uint8x16_t qh = vld1q_u8(b->qh + 32 * n + 16 * h);
                const uint8x16_t v[4] = {
                    vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(qh, m2), 4)),
                    vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), m2), 4)),
                    vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), m2), 4)),
                    vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4)),
                };
                for (int g = 0; g < 4; g++) k->q[8 * n + 2 * g + h] = vsubq_s8(vreinterpretq_s8_u8(v[g]), off);
            }
        return;
    }
    /* Q4_K / Q5_K: d, dmin and scales at the same offsets; sub-blocks 2j
     * and 2j + 1 are the low and high nibbles of qs[32j .. 32j + 32) */
    const qc_block_q4_K *b = (const qc_block_q4_K *)p;
    const uint8_t *qs = kt == QC_DTYPE_Q4_K ? b->qs : ((const qc_block_q5_K *)p)->qs;
    k->d = half_at(b->d);
    k->dmin = half_at(b->dmin);
    kq_scales_k4(b->scales, k);
    uint8x16_t h0 = vdupq_n_u8(0), h1 = h0;
    if (kt == QC_DTYPE_Q5_K) {
        const uint8_t *qh = ((const qc_block_q5_K *)p)->qh;
        h0 = vld1q_u8(qh);
        h1 = vld1q_u8(qh + 16);
        if (perm) kq_perm32(h0, h1, &h0, &h1);
    }
    const uint8x16_t b16 = vdupq_n_u8(16);
    for (int j = 0; j < 4; j++) {
        uint8x16_t r0 = vld1q_u8(qs + 32 * j), r1 = vld1q_u8(qs + 32 * j + 16);
        if (perm) kq_perm32(r0, r1, &r0, &r1);
        uint8x16_t v[4] = {vandq_u8(r0, m4), vandq_u8(r1, m4), vshrq_n_u8(r0, 4), vshrq_n_u8(r1, 4)};
        if (kt == QC_DTYPE_Q5_K) {
            /* the 5th bit of sub-block s's element l: bit s of qh[l] */
            const uint8x16_t blo = vdupq_n_u8((uint8_t)(1u << (2 * j))), bhi = vdupq_n_u8((uint8_t)(2u << (2 * j)));
            v[0] = vorrq_u8(v[0], vandq_u8(vtstq_u8(h0, blo), b16));
            v[1] = vorrq_u8(v[1], vandq_u8(vtstq_u8(h1, blo), b16));
            v[2] = vorrq_u8(v[2], vandq_u8(vtstq_u8(h0, bhi), b16));
            v[3] = vorrq_u8(v[3], vandq_u8(vtstq_u8(h1, bhi), b16));
        }
        for (int i = 0; i < 4; i++) k->q[4 * j + i] = vreinterpretq_s8_u8(v[i]);
    }
}

/* The eight integer sums of a super-block (lanes of lo: sums 0-3, hi:
 * 4-7), ARMv8.0: per sub-block, products summed in int16 lanes (Q6_K 2 per
 * lane, |q x| <= 32 * 128; Q4_K/Q5_K 4, <= 31 * 128), then times the scale
 * into int32. */
ALWAYS_INLINE void kq_sums_neon(const qc_dtype_t kt, const kq_row_t *k, const int8_t *xq, int32x4_t *lo,
                                int32x4_t *hi) {
    int32x4_t l = vdupq_n_s32(0), h = l;
    if (kq_sub16(kt)) {
        for (int s = 0; s < 16; s++) {
            const int8x16_t x = vld1q_s8(xq + 16 * s);
            const int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(k->q[s]), vget_low_s8(x)), k->q[s], x);
            l = vmlal_n_s16(l, vget_low_s16(p), k->sc[s]);
            h = vmlal_high_n_s16(h, p, k->sc[s]);
        }
    } else {
        for (int s = 0; s < 8; s++) {
            const int8x16_t x0 = vld1q_s8(xq + 32 * s), x1 = vld1q_s8(xq + 32 * s + 16);
            int16x8_t p = vmull_s8(vget_low_s8(k->q[2 * s]), vget_low_s8(x0));
            p = vmlal_high_s8(p, k->q[2 * s], x0);
            p = vmlal_s8(p, vget_low_s8(k->q[2 * s + 1]), vget_low_s8(x1));
            p = vmlal_high_s8(p, k->q[2 * s + 1], x1);
            l = vmlal_n_s16(l, vget_low_s16(p), k->sc[s]);
            h = vmlal_high_n_s16(h, p, k->sc[s]);
        }
    }
    *lo = l;
    *hi = h;
}

/* One output's accumulators: the eight F32 sums (lanes), the mins' sum. */
typedef struct {
    float32x4_t lo, hi;
    float m;
} kq_acc_t;

/* Adds one super-block of token xb to an output: the scalar's
 * sums[l] += (d_w * d_x) * (float)aux[l] and sumf -= (dmin_w * d_x) * summs;
 * Q2_K's one sum: sumf += (d_x * d_w) * isum - (d_x * dmin_w) * summs (its
 * lanes stay 0). */
ALWAYS_INLINE void kq_acc_add(const qc_dtype_t kt, kq_acc_t *c, const kq_row_t *k, const qc_block_q8_K *xb,
                              int32x4_t lo, int32x4_t hi) {
    if (kt == QC_DTYPE_Q2_K) {
        int32_t summs = 0;
        for (int j = 0; j < 16; j++) summs += xb->bsums[j] * k->mn[j];
        const int32_t isum = vaddvq_s32(vaddq_s32(lo, hi));
        c->m += (xb->d * k->d) * (float)isum - (xb->d * k->dmin) * (float)summs;
        return;
    }
    const float32x4_t d = vdupq_n_f32(k->d * xb->d);
    c->lo = vaddq_f32(c->lo, vmulq_f32(d, vcvtq_f32_s32(lo)));
    c->hi = vaddq_f32(c->hi, vmulq_f32(d, vcvtq_f32_s32(hi)));
    if (!kq_sub16(kt)) {
        int32_t summs = 0;
        for (int j = 0; j < 16; j++) summs += xb->bsums[j] * k->mn[j >> 1];
        c->m -= (k->dmin * xb->d) * (float)summs;
    }
}

/* The scalar's last step: sumf += sums[0], ..., sums[7]. */
ALWAYS_INLINE float kq_acc_sum(const kq_acc_t *c) {
    float l[8];
    vst1q_f32(l, c->lo);
    vst1q_f32(l + 4, c->hi);
    float s = c->m;
    for (int i = 0; i < 8; i++) s += l[i];
    return s;
}

/* One R x T tile of K-quant weights over a->k super-blocks,
 * the super-block's sums given by SUMS (kq_sums_neon_x, kq_sums_dp) on the
 * weights unpacked (kq_unpack's perm: PERM) once per super-block and row
 * for the T tokens. */
#define TILE_KQ_BODY(SUMS, PERM, kt, R, T, a)                                                                \
    do {                                                                                                    \
        const size_t bb_ = qc_kquant_block_bytes(kt);                                                                    \
        kq_acc_t c_[KR][KT];                                                                                \
        _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++)                                               \
            _Pragma("GCC unroll 4") for (int t = 0; t < (T); t++) c_[r][t] =                                \
                (kq_acc_t){vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), 0.0f};                                     \
        for (int64_t b = 0; b < (a)->k; b++) {                                                              \
            _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++) {                                         \
                kq_row_t k_;                                                                                \
                kq_unpack((kt), (PERM), (a)->w + (size_t)r * (a)->w_stride + (size_t)b * bb_, &k_);        \
                _Pragma("GCC unroll 4") for (int t = 0; t < (T); t++) {                                     \
                    const qc_block_q8_K *xb_ =                                                              \
                        (const qc_block_q8_K *)((const unsigned char *)(a)->x + (size_t)t * (a)->x_stride) + b; \
                    int32x4_t lo_, hi_;                                                                     \
                    SUMS((kt), &k_, xb_, &lo_, &hi_);                                                       \
                    kq_acc_add((kt), &c_[r][t], &k_, xb_, lo_, hi_);                                        \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
        _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++)                                               \
            _Pragma("GCC unroll 4") for (int t = 0; t < (T); t++)                                           \
                (a)->y[(size_t)t * (size_t)(a)->ldy + r] = kq_acc_sum(&c_[r][t]);                           \
    } while (0)

ALWAYS_INLINE void kq_sums_neon_x(const qc_dtype_t kt, const kq_row_t *k, const qc_block_q8_K *xb, int32x4_t *lo,
                                  int32x4_t *hi) {
    kq_sums_neon(kt, k, xb->qs, lo, hi);
}

ALWAYS_INLINE void tile_kq_neon(const qc_dtype_t kt, const int R, const int T, const qc_mm_tile_t *a) {
    TILE_KQ_BODY(kq_sums_neon_x, 0, kt, R, T, a);
}

/* ==== float weights ==== */

/* Four weights at p as F32. */
ALWAYS_INLINE float32x4_t load_w4(const qc_dtype_t dt, const unsigned char *p) {
    switch (dt) {
    case QC_DTYPE_F16: return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
    case QC_DTYPE_BF16: return vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8(p)), 16));
    default: return vreinterpretq_f32_u8(vld1q_u8(p));
    }
}

ALWAYS_INLINE float load_w1(const qc_dtype_t dt, const unsigned char *p) {
    switch (dt) {
    case QC_DTYPE_F16: return half_at(p);
    case QC_DTYPE_BF16: return qc_bf16_to_f32(qc_load_u16(p));
    default: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    }
}

/* One R x T tile of float weights over a->k columns: per output one F32x4
 * accumulator over four columns at a time (the same order in every tile
 * shape), the last k % 4 columns in scalar F32. */
ALWAYS_INLINE void tile_float(const qc_dtype_t dt, const int R, const int T, const qc_mm_tile_t *a) {
    const unsigned char *w0 = a->w, *xb = a->x;
    const int64_t n = a->k;
    const size_t es = dt == QC_DTYPE_F32 ? 4 : 2;
    float32x4_t acc[FR][FT];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = vdupq_n_f32(0.0f);
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) {
        float32x4_t wv[FR];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) wv[r] = load_w4(dt, w0 + (size_t)r * a->w_stride + (size_t)c * es);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const float32x4_t xv = vreinterpretq_f32_u8(vld1q_u8(xb + (size_t)t * a->x_stride + (size_t)c * 4));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][t] = vfmaq_f32(acc[r][t], wv[r], xv);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const float *xt = (const float *)(xb + (size_t)t * a->x_stride);
            float s = vaddvq_f32(acc[r][t]);
            for (int64_t k = c; k < n; k++) s += load_w1(dt, w0 + (size_t)r * a->w_stride + (size_t)k * es) * xt[k];
            a->y[(size_t)t * (size_t)a->ldy + r] = s;
        }
}

/* ==== the NEON level's micro-kernels ==== */

QC_MM_KERNEL(mm_q8_0, tile_quant_neon, 0, QC_ACT_Q8, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_0, tile_quant_neon, 1, QC_ACT_Q8, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_0, tile_quant_neon, 2, QC_ACT_Q8, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_1, tile_quant_neon, 3, QC_ACT_Q8_1, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_1, tile_quant_neon, 4, QC_ACT_Q8_1, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_K, tile_kq_neon, QC_DTYPE_Q4_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_K, tile_kq_neon, QC_DTYPE_Q5_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q6_K, tile_kq_neon, QC_DTYPE_Q6_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q2_K, tile_kq_neon, QC_DTYPE_Q2_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q3_K, tile_kq_neon, QC_DTYPE_Q3_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_f32, tile_float, QC_DTYPE_F32, QC_ACT_F32, RB, FR, FT, FR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_f16, tile_float, QC_DTYPE_F16, QC_ACT_F32, RB, FR, FT, FR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_bf16, tile_float, QC_DTYPE_BF16, QC_ACT_F32, RB, FR, FT, FR, QC_MM_NO_PACK);

/* ==== dot product, activation quantization ==== */

static float dot_f32_neon(const float *a, const float *b, int64_t n) {
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* qc_act_row_scalar's steps, 4 lanes at a time: the maximum with maxnm
 * (which, like the scalar comparison, passes over a NaN), id = 127 / amax,
 * the clamp with maxnm / minnm (NaN becomes -127, as clamp127 makes it),
 * and round to nearest even (frintn: the scalar's round_even). Bit-exact
 * with the scalar one. */
static void act_row_neon(const float *x, int64_t cols, qc_block_q8_act *out) {
    const float32x4_t lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
    for (int64_t b = 0; b < cols / QC_QK; b++, x += QC_QK) {
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = vmaxnmq_f32(m, vabsq_f32(v[k]));
        }
        const float amax = vmaxnmvq_f32(m);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32x4_t q[8], s = vdupq_n_s32(0);
        for (int k = 0; k < 8; k++) {
            const float32x4_t c = vminnmq_f32(vmaxnmq_f32(vmulq_n_f32(v[k], id), lo), hi);
            q[k] = vcvtq_s32_f32(vrndnq_f32(c));
            s = vaddq_s32(s, q[k]);
        }
        for (int k = 0; k < 8; k += 2) {
            const int16x8_t h = vcombine_s16(vmovn_s32(q[k]), vmovn_s32(q[k + 1]));
            vst1_s8(out[b].qs + 4 * k, vmovn_s16(h));
        }
        /* The scale is kept at half precision, as ggml's block_q8_0 keeps it for
         * the activations, so the products equal llama.cpp's. */
        out[b].d = qc_f16_to_f32(qc_f32_to_f16(d));
        out[b].sum = vaddvq_s32(s);
    }
}

/* ==== attention ==== */

typedef float32x4_t vec_t;
#define ATT_NAME attend_neon
#define SWIGLU_NAME swiglu_neon
/* declared static first, so attend_simd.h's definition is this file's own */
static void attend_neon(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                        float *scores, float *o);
#define ATT_W 4
ALWAYS_INLINE vec_t v_load(const float *p) { return vld1q_f32(p); }
ALWAYS_INLINE void v_store(float *p, vec_t v) { vst1q_f32(p, v); }
ALWAYS_INLINE vec_t v_add(vec_t a, vec_t b) { return vaddq_f32(a, b); }
ALWAYS_INLINE vec_t v_mul(vec_t a, vec_t b) { return vmulq_f32(a, b); }
ALWAYS_INLINE vec_t v_set1(float x) { return vdupq_n_f32(x); }
ALWAYS_INLINE vec_t v_zero(void) { return vdupq_n_f32(0.0f); }
ALWAYS_INLINE vec_t v_fmadd(vec_t a, vec_t b, vec_t c) { return vfmaq_f32(c, a, b); }
ALWAYS_INLINE float v_hsum(vec_t a) { return vaddvq_f32(a); }
ALWAYS_INLINE vec_t v_load_h(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
/* fcvtn / fcvtl round to nearest even, subnormal halves kept (FPCR.FZ16
 * is clear under Linux): qc_round_f16's rounding */
ALWAYS_INLINE vec_t v_round_h(vec_t x) { return vcvt_f32_f16(vcvt_f16_f32(x)); }
ALWAYS_INLINE vec_t v_sub(vec_t a, vec_t b) { return vsubq_f32(a, b); }
ALWAYS_INLINE vec_t v_pow2_magic(vec_t t) {
    const uint32x4_t e = vaddq_u32(vreinterpretq_u32_f32(t), vdupq_n_u32(127u - 0x4B400000u));
    return vreinterpretq_f32_u32(vshlq_n_u32(e, 23));
}
ALWAYS_INLINE vec_t v_zero_below(vec_t x, float a, vec_t y) {
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), vcltq_f32(x, vdupq_n_f32(a))));
}
ALWAYS_INLINE vec_t v_div(vec_t a, vec_t b) { return vdivq_f32(a, b); }
ALWAYS_INLINE vec_t v_neg_abs(vec_t x) {
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u)));
}
/* a where x >= 0, else b (NaN x: b, as the x86 levels' ordered compare) */
ALWAYS_INLINE vec_t v_select_ge0(vec_t x, vec_t a, vec_t b) { return vbslq_f32(vcgezq_f32(x), a, b); }
#include "engine/attend_simd.h"

/* ==== the dot-product level (ARMv8.2 sdot) ==== */

#if NEON_DOTPROD
BEGIN_DOTPROD

/* A block's dot in four int32 lanes: two sdot. */
ALWAYS_INLINE int32x4_t dot_block_dp(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
}

ALWAYS_INLINE void tile_quant_dp(const int kind, const int R, const int T, const qc_mm_tile_t *a) {
    TILE_QUANT_BODY(dot_block_dp, kind, R, T, a);
}

QC_MM_KERNEL(mm_q8_0_dp, tile_quant_dp, 0, QC_ACT_Q8, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_0_dp, tile_quant_dp, 1, QC_ACT_Q8, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_0_dp, tile_quant_dp, 2, QC_ACT_Q8, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_1_dp, tile_quant_dp, 3, QC_ACT_Q8_1, RB, QR, QT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_1_dp, tile_quant_dp, 4, QC_ACT_Q8_1, RB, QR, QT, QR1, QC_MM_NO_PACK);

/* Q4_K/Q5_K's eight sums of a super-block with sdot: per sub-block of 32,
 * the weights (unpacked in kq_perm32's order) and the token's activations
 * (put in that order here) in two sdot, lane c of the first the scalar's
 * sum c, of the second sum c + 4; times the sub-block's scale. Q2_K keeps
 * one sum, so its lanes may hold any part of it: one sdot per sub-block of
 * 16 in element order. Q3_K's and Q6_K's sub-blocks of 16 hold only two
 * elements of each of the eight sums, half an sdot's four: they keep the
 * NEON tiles. */
ALWAYS_INLINE void kq_sums_dp(const qc_dtype_t kt, const kq_row_t *k, const qc_block_q8_K *xb, int32x4_t *lo,
                              int32x4_t *hi) {
    const int32x4_t z = vdupq_n_s32(0);
    int32x4_t l = z, h = z;
    if (kt == QC_DTYPE_Q2_K) {
        for (int s = 0; s < 16; s += 2) {
            l = vmlaq_n_s32(l, vdotq_s32(z, k->q[s], vld1q_s8(xb->qs + 16 * s)), k->sc[s]);
            h = vmlaq_n_s32(h, vdotq_s32(z, k->q[s + 1], vld1q_s8(xb->qs + 16 * s + 16)), k->sc[s + 1]);
        }
        *lo = l;
        *hi = h;
        return;
    }
    for (int s = 0; s < 8; s++) {
        uint8x16_t xa, xc;
        kq_perm32(vld1q_u8((const uint8_t *)xb->qs + 32 * s), vld1q_u8((const uint8_t *)xb->qs + 32 * s + 16), &xa, &xc);
        l = vmlaq_n_s32(l, vdotq_s32(z, k->q[2 * s], vreinterpretq_s8_u8(xa)), k->sc[s]);
        h = vmlaq_n_s32(h, vdotq_s32(z, k->q[2 * s + 1], vreinterpretq_s8_u8(xc)), k->sc[s]);
    }
    *lo = l;
    *hi = h;
}

ALWAYS_INLINE void tile_kq_dp(const qc_dtype_t kt, const int R, const int T, const qc_mm_tile_t *a) {
    TILE_KQ_BODY(kq_sums_dp, 1, kt, R, T, a);
}

QC_MM_KERNEL(mm_q4_K_dp, tile_kq_dp, QC_DTYPE_Q4_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_K_dp, tile_kq_dp, QC_DTYPE_Q5_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q2_K_dp, tile_kq_dp, QC_DTYPE_Q2_K, QC_ACT_Q8_K, RB, KR, KT, KR, QC_MM_NO_PACK);

END_TARGET
#endif

/* ==== the int8 matrix-multiply level (i8mm smmla) ==== */

#if NEON_I8MM
BEGIN_I8MM

/* Rows (or tokens) i and i + 1 of a tile, 8 bytes of each: the operand of
 * smmla for bytes [8c, 8c + 8) of the block, from their two halves. */
ALWAYS_INLINE int8x16_t pair8(const int8x16_t *h0, const int8x16_t *h1, int c) {
    const int64x2_t a = vreinterpretq_s64_s8(c < 2 ? h0[0] : h0[1]), b = vreinterpretq_s64_s8(c < 2 ? h1[0] : h1[1]);
    return vreinterpretq_s8_s64(c % 2 ? vzip2q_s64(a, b) : vzip1q_s64(a, b));
}

/* An R x T tile with R and T even: per block, per pair of rows and pair of
 * tokens, four smmla give the 2 x 2 exact block dots as lanes [r0 t0, r0 t1,
 * r1 t0, r1 t1], scaled by the same lanes of d_w * d_x. Odd shapes (edges,
 * decode) are the dot-product tiles: the same integers and F32 steps, so
 * the same bits. */
ALWAYS_INLINE void tile_quant_mm(const int kind, const int R, const int T, const qc_mm_tile_t *a) {
    if (R % 2 || T % 2) {
        tile_quant_dp(kind, R, T, a);
        return;
    }
    const unsigned char *w0 = a->w, *x0 = a->x;
    const size_t bb = legacy_bytes(kind);
    float32x4_t sum[MR / 2][MT / 2];
#pragma GCC unroll 2
    for (int i = 0; i < R / 2; i++)
#pragma GCC unroll 2
        for (int j = 0; j < T / 2; j++) sum[i][j] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < a->k; b++) {
        int8x16_t wq[MR][2], xq[MT][2];
        float dw[MR], dx[MT];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const unsigned char *p = w0 + (size_t)r * a->w_stride + (size_t)b * bb;
            load_w_block(kind, p, &wq[r][0], &wq[r][1]);
            dw[r] = half_at(p);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const qc_block_q8_act *ab = (const qc_block_q8_act *)(x0 + (size_t)t * a->x_stride) + b;
            xq[t][0] = vld1q_s8(ab->qs);
            xq[t][1] = vld1q_s8(ab->qs + 16);
            dx[t] = ab->d;
        }
#pragma GCC unroll 2
        for (int j = 0; j < T / 2; j++) {
            int8x16_t xp[4];
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) xp[c] = pair8(xq[2 * j], xq[2 * j + 1], c);
            const float dxv[4] = {dx[2 * j], dx[2 * j + 1], dx[2 * j], dx[2 * j + 1]};
#pragma GCC unroll 2
            for (int i = 0; i < R / 2; i++) {
                int32x4_t acc = vdupq_n_s32(0);
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) acc = vmmlaq_s32(acc, pair8(wq[2 * i], wq[2 * i + 1], c), xp[c]);
                const float dwv[4] = {dw[2 * i], dw[2 * i], dw[2 * i + 1], dw[2 * i + 1]};
                sum[i][j] = scale_add(sum[i][j], acc, vld1q_f32(dwv), vld1q_f32(dxv));
            }
        }
    }
#pragma GCC unroll 2
    for (int i = 0; i < R / 2; i++)
#pragma GCC unroll 2
        for (int j = 0; j < T / 2; j++) {
            float o[4];
            vst1q_f32(o, sum[i][j]);
            float *y = a->y + (size_t)(2 * j) * (size_t)a->ldy + 2 * i;
            y[0] = o[0];
            y[a->ldy] = o[1];
            y[1] = o[2];
            y[a->ldy + 1] = o[3];
        }
}

/* Decode tiles (one token) are the dot-product level's. */
QC_MM_KERNEL(mm_q8_0_mm, tile_quant_mm, 0, QC_ACT_Q8, RB, MR, MT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q4_0_mm, tile_quant_mm, 1, QC_ACT_Q8, RB, MR, MT, QR1, QC_MM_NO_PACK);
QC_MM_KERNEL(mm_q5_0_mm, tile_quant_mm, 2, QC_ACT_Q8, RB, MR, MT, QR1, QC_MM_NO_PACK);

END_TARGET
#endif

/* ==== the levels ==== */

/* A set of this file's float, dot, activation and attention kernels with
 * the given legacy and K-quant ones (Q3_K and Q6_K: NEON's at every level). */
#define NEON_SET(q8, q4, q5, q41, q51, k2, k4, k5)                                                           \
    {{[QC_DTYPE_F32] = &mm_f32, [QC_DTYPE_F16] = &mm_f16, [QC_DTYPE_BF16] = &mm_bf16, [QC_DTYPE_Q8_0] = &q8, \
      [QC_DTYPE_Q4_0] = &q4, [QC_DTYPE_Q5_0] = &q5, [QC_DTYPE_Q4_1] = &q41, [QC_DTYPE_Q5_1] = &q51,          \
      [QC_DTYPE_Q2_K] = &k2, [QC_DTYPE_Q3_K] = &mm_q3_K, [QC_DTYPE_Q4_K] = &k4, [QC_DTYPE_Q5_K] = &k5,       \
      [QC_DTYPE_Q6_K] = &mm_q6_K},                                                                           \
     dot_f32_neon, act_row_neon, attend_neon, NULL, NULL, NULL, NULL, swiglu_neon}

static const qc_kernel_set_t neon_set =
    NEON_SET(mm_q8_0, mm_q4_0, mm_q5_0, mm_q4_1, mm_q5_1, mm_q2_K, mm_q4_K, mm_q5_K);
const qc_kernel_set_t *const qc_level_neon = &neon_set;

#if NEON_DOTPROD
static const qc_kernel_set_t dotprod_set =
    NEON_SET(mm_q8_0_dp, mm_q4_0_dp, mm_q5_0_dp, mm_q4_1_dp, mm_q5_1_dp, mm_q2_K_dp, mm_q4_K_dp, mm_q5_K_dp);
const qc_kernel_set_t *const qc_level_dotprod = &dotprod_set;
#else
const qc_kernel_set_t *const qc_level_dotprod = NULL;
#endif

#if NEON_I8MM
/* the tiles of Q4_1, Q5_1 and the K-quants are the dot-product level's */
static const qc_kernel_set_t i8mm_set = NEON_SET(mm_q8_0_mm, mm_q4_0_mm, mm_q5_0_mm, mm_q4_1_dp, mm_q5_1_dp, mm_q2_K_dp,
                                                 mm_q4_K_dp, mm_q5_K_dp);
const qc_kernel_set_t *const qc_level_i8mm = &i8mm_set;
#else
const qc_kernel_set_t *const qc_level_i8mm = NULL;
#endif

#else /* not ARM64: never selected */

const qc_kernel_set_t *const qc_level_neon = NULL, *const qc_level_dotprod = NULL, *const qc_level_i8mm = NULL;

#endif
