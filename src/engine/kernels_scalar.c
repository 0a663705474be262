/* kernels_scalar.c — the scalar level: plain C micro-kernels, the reference
 * every SIMD level is tested against (tests/test_kernels.c), and the level
 * a CPU without AVX2 (or an ARM64 build without NEON) runs. Its matrix-product tiles are a single output
 * (1 row x 1 token), so each output is one straightforward dot product;
 * matmul.c's driver walks them like any level's.
 *
 * Compiled for the architecture's baseline (x86-64, ARMv8.0): nothing here
 * may use an instruction the CPU might lack. */
#include "engine/kernels_impl.h"

#include <math.h>
#include <string.h>

/* ==== activation quantization ==== */

/* roundf without the libm call: truncate, then step away from zero when the
 * dropped fraction is at least one half. Exact for |v| < 2^23 (v - t is
 * then exact); activations reach at most 127. The SIMD levels do the same
 * steps, so all levels agree bit for bit. */
static inline float round_half_away(float v) {
    float t = (float)(int32_t)v;
    float f = v - t;
    if (f >= 0.5f) t += 1.0f;
    else if (f <= -0.5f) t -= 1.0f;
    return t;
}

void qc_act_row_scalar(const float *x, int64_t cols, qc_block_q8_act *out) {
    for (int64_t b = 0; b < cols / QC_QK; b++, x += QC_QK) {
        float amax = 0.0f;
        for (int j = 0; j < QC_QK; j++) {
            float a = fabsf(x[j]);
            amax = a > amax ? a : amax;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < QC_QK; j++) {
            int q = (int)round_half_away(clamp127(x[j] * id));
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
                ms = expf(old - M);
                for (int e = 0; e < hd; e++) acc[e] = qc_round_f16(acc[e] * ms);
            } else {
                vs = expf(s - M);
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

static const qc_kernel_set_t scalar_set = {{QC_MM_COMMON_TYPES}, dot_f32_scalar, qc_act_row_scalar, qc_attend_scalar};
const qc_kernel_set_t *const qc_level_scalar = &scalar_set;
