/* kernels_scalar.c — the scalar level: plain C micro-kernels for every
 * weight type, the reference every SIMD level is tested against
 * (tests/test_kernels.c), the level a CPU without AVX2 or NEON runs, and
 * what a SIMD level falls back to for a type it has no kernels for. Its matrix-product tiles are a single output
 * (1 row x 1 token), so each output is one straightforward dot product;
 * matmul.c's driver walks them like any level's.
 *
 * Compiled for the architecture's baseline (x86-64, ARMv8.0): nothing here
 * may use an instruction the CPU might lack. */
#include "engine/kernels_impl.h"
#include "engine/quants.h"

#include <math.h>
#include <string.h>

/* ==== activation quantization ==== */

/* Round to nearest, ties to even, by the float adder: exact for |v| <= 2^22
 * (activations reach at most 127), what _mm256_round_ps(v,
 * _MM_FROUND_TO_NEAREST_INT) gives; the SIMD levels use that, so all levels
 * agree bit for bit. */
static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

/* llama.cpp's x86 quantize_row_q8_0 (its AVX2 code, which its x86 builds
 * run for the activations; not ggml's reference quantizer, which divides
 * by d and rounds ties away from zero): id = 127 / amax, x * id rounded to
 * nearest even, d = amax / 127 stored as a half. */
void qc_act_row_scalar(const float *x, int64_t cols, qc_block_q8_act *out) {
    for (int64_t b = 0; b < cols / QC_QK; b++, x += QC_QK) {
        float amax = 0.0f;
        for (int j = 0; j < QC_QK; j++) {
            float a = fabsf(x[j]);
            amax = a > amax ? a : amax;
        }
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < QC_QK; j++) {
            int q = (int)round_even(clamp127(x[j] * id));
            out[b].qs[j] = (int8_t)q;
            sum += q;
        }
        /* The scale is kept at half precision, as ggml's block_q8_0 keeps it for
         * the activations, so the products equal llama.cpp's. */
        out[b].d = qc_f16_to_f32(qc_f32_to_f16(d));
        out[b].sum = sum;
    }
}

/* ==== matrix-product tiles ==== */

/* Float weights: products in F32 (exact in double), sums in double, so the
 * reference is as accurate as an F32 product allows. */
static inline void tile_float(const qc_dtype_t dt, const qc_mm_tile_t *a) {
    const unsigned char *p = a->w;
    const float *xt = a->x;
    double s = 0.0;
    switch (dt) {
    case QC_DTYPE_F32:
        for (int64_t c = 0; c < a->k; c++) {
            float wc;
            memcpy(&wc, p + 4 * c, 4);
            s += (double)(wc * xt[c]);
        }
        break;
    case QC_DTYPE_F16:
        for (int64_t c = 0; c < a->k; c++) s += (double)(qc_f16_to_f32(qc_load_u16(p + 2 * c)) * xt[c]);
        break;
    default: /* BF16 */
        for (int64_t c = 0; c < a->k; c++) s += (double)(qc_bf16_to_f32(qc_load_u16(p + 2 * c)) * xt[c]);
        break;
    }
    *a->y = (float)s;
}

/* Quantized weights: per block an exact integer dot, scaled by d_w * d_x
 * (F32) and summed in F32, block after block — as ggml's vec_dot does. */
static inline void tile_quant(const int q4, const qc_mm_tile_t *a) {
    const size_t bb = q4 ? QC_Q4_0_BYTES : QC_Q8_0_BYTES;
    const qc_block_q8_act *at = a->x;
    float sum = 0.0f;
    for (int64_t b = 0; b < a->k; b++) {
        const unsigned char *blk = a->w + (size_t)b * bb;
        const int8_t *xq = at[b].qs;
        int32_t isum = 0;
        if (q4) {
            for (int j = 0; j < QC_QK / 2; j++) {
                isum += ((blk[2 + j] & 0x0f) - 8) * xq[j];
                isum += ((blk[2 + j] >> 4) - 8) * xq[j + QC_QK / 2];
            }
        } else {
            const int8_t *wq = (const int8_t *)(blk + 2);
            for (int j = 0; j < QC_QK; j++) isum += wq[j] * xq[j];
        }
        sum += (float)isum * (qc_f16_to_f32(qc_load_u16(blk)) * at[b].d);
    }
    *a->y = sum;
}

/* Q5_0 on the same activations: ggml's integers (q - 16 with the 5th bit
 * from qh, element j's bit j) and its order, (d_w * d_x) * sumi per block
 * (quants.c's dot, on the kernels' activation blocks). */
static void tile_q5_0(const qc_mm_tile_t *a) {
    const qc_block_q8_act *at = a->x;
    float sum = 0.0f;
    for (int64_t b = 0; b < a->k; b++) {
        const qc_block_q5_0 *blk = (const qc_block_q5_0 *)(a->w + (size_t)b * sizeof(qc_block_q5_0));
        const uint32_t qh = (uint32_t)blk->qh[0] | (uint32_t)blk->qh[1] << 8 | (uint32_t)blk->qh[2] << 16 |
                            (uint32_t)blk->qh[3] << 24;
        const int8_t *xq = at[b].qs;
        int32_t isum = 0;
        for (int j = 0; j < QC_QK / 2; j++) {
            isum += (((blk->qs[j] & 0x0f) | (int)(((qh >> j) << 4) & 0x10)) - 16) * xq[j];
            isum += (((blk->qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10)) - 16) * xq[j + QC_QK / 2];
        }
        sum += (qc_f16_to_f32(qc_load_u16(blk->d)) * at[b].d) * (float)isum;
    }
    *a->y = sum;
}

/* The types on ggml's own activation blocks (Q8_1 for Q4_1/Q5_1, Q8_K for
 * the K-quants): quants.c's dot products, ggml's generic vec_dot. */
static void tile_ggml(const qc_mm_tile_t *a) {
    const qc_qtype_t *q = qc_qtype(a->m->dtype);
    *a->y = q->dot(a->w, a->x, a->k * q->block);
}

static void tile_f32(const qc_mm_tile_t *a) { tile_float(QC_DTYPE_F32, a); }
static void tile_f16(const qc_mm_tile_t *a) { tile_float(QC_DTYPE_F16, a); }
static void tile_bf16(const qc_mm_tile_t *a) { tile_float(QC_DTYPE_BF16, a); }
static void tile_q8_0(const qc_mm_tile_t *a) { tile_quant(0, a); }
static void tile_q4_0(const qc_mm_tile_t *a) { tile_quant(1, a); }

/* One output per tile, for prefill and decode alike. */
#define SCALAR_KERNEL(name, act_fmt, fn) \
    static const qc_mm_kernel_t name = {act_fmt, 64, {1, 1, fn, NULL}, {1, 1, fn, NULL}, QC_MM_NO_PACK}
SCALAR_KERNEL(mm_f32, QC_ACT_F32, tile_f32);
SCALAR_KERNEL(mm_f16, QC_ACT_F32, tile_f16);
SCALAR_KERNEL(mm_bf16, QC_ACT_F32, tile_bf16);
SCALAR_KERNEL(mm_q8_0, QC_ACT_Q8, tile_q8_0);
SCALAR_KERNEL(mm_q4_0, QC_ACT_Q8, tile_q4_0);
SCALAR_KERNEL(mm_q5_0, QC_ACT_Q8, tile_q5_0);
SCALAR_KERNEL(mm_q8_1_types, QC_ACT_Q8_1, tile_ggml);
SCALAR_KERNEL(mm_q8_K_types, QC_ACT_Q8_K, tile_ggml);

/* ==== dot product ==== */

static float dot_f32_scalar(const float *a, const float *b, int64_t n) {
    /* Four partial sums: as accurate as the SIMD levels, and it lets the
     * compiler keep several additions in flight. */
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* ==== attention ==== */

/* q . k for k in halves, with dot_f32_scalar's four partial sums. */
static float dot_f16_scalar(const float *q, const uint16_t *k, int n) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += q[i] * qc_f16_to_f32(k[i]);
        s1 += q[i + 1] * qc_f16_to_f32(k[i + 1]);
        s2 += q[i + 2] * qc_f16_to_f32(k[i + 2]);
        s3 += q[i + 3] * qc_f16_to_f32(k[i + 3]);
    }
    for (; i < n; i++) s0 += q[i] * qc_f16_to_f32(k[i]);
    return (s0 + s1) + (s2 + s3);
}

void qc_attend_scalar(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                      float *scores, float *o) {
    if (f16_acc) {
        float q16[512], acc[512];
        for (int e = 0; e < hd; e++) q16[e] = qc_round_f16(q[e]), acc[e] = 0;
        float S = 0, M = -INFINITY;
        for (int i = 0; i < n; i++) {
            const uint16_t *k = qc_k_row(r, i), *v = qc_v_row(r, i);
            float s = dot_f16_scalar(q16, k, hd) * scale, ms = 1, vs = 1;
            if (s > M) {
                float old = M;
                M = s;
                ms = qc_exp_neg(old - M);
                for (int e = 0; e < hd; e++) acc[e] = qc_round_f16(acc[e] * ms);
            } else {
                vs = qc_exp_neg(s - M);
            }
            for (int e = 0; e < hd; e++) acc[e] = qc_round_f16(acc[e] + qc_f16_to_f32(v[e]) * vs);
            S = S * ms + vs;
        }
        float inv = S == 0 ? 0 : 1.0f / S;
        for (int e = 0; e < hd; e++) o[e] = acc[e] * inv;
        return;
    }
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        float s = dot_f16_scalar(q, qc_k_row(r, i), hd) * scale;
        scores[i] = s;
        if (s > mx) mx = s;
    }
    float inv = qc_softmax_exp(scores, n, mx);
    memset(o, 0, (size_t)hd * sizeof(float));
    for (int i = 0; i < n; i++) {
        float p = scores[i] * inv;
        const uint16_t *v = qc_v_row(r, i);
        for (int e = 0; e < hd; e++) o[e] += p * qc_f16_to_f32(v[e]);
    }
}

/* ==== the level ==== */

/* Every type a GGUF may hold: the SIMD levels fall back to these for the
 * types they leave out. */
static const qc_kernel_set_t scalar_set = {{QC_MM_COMMON_TYPES, [QC_DTYPE_Q5_0] = &mm_q5_0,
                                            [QC_DTYPE_Q4_1] = &mm_q8_1_types, [QC_DTYPE_Q5_1] = &mm_q8_1_types,
                                            [QC_DTYPE_Q2_K] = &mm_q8_K_types, [QC_DTYPE_Q3_K] = &mm_q8_K_types,
                                            [QC_DTYPE_Q4_K] = &mm_q8_K_types, [QC_DTYPE_Q5_K] = &mm_q8_K_types,
                                            [QC_DTYPE_Q6_K] = &mm_q8_K_types},
                                           dot_f32_scalar,
                                           qc_act_row_scalar,
                                           qc_attend_scalar, NULL, NULL, NULL, NULL, NULL};
const qc_kernel_set_t *const qc_level_scalar = &scalar_set;
