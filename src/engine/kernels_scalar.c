/* kernels_scalar.c — the scalar level: plain C kernels, the reference
 * every SIMD level is tested against (tests/test_kernels.c), and the level
 * a CPU without AVX2 runs.
 *
 * Compiled for baseline x86-64: nothing here may use an instruction the CPU
 * might lack. */
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
            int q = (int)round_half_away(x[j] * id);
            out[b].qs[j] = (int8_t)q;
            sum += q;
        }
        /* The scale is kept at half precision, as ggml's block_q8_0 keeps it for
         * the activations, so the products equal llama.cpp's. */
        out[b].d = qc_f16_to_f32(qc_f32_to_f16(d));
        out[b].sum = sum;
    }
}

/* ==== scalar reference kernels ==== */

/* Float weights: products in F32 (exact in double), sums in double, so the
 * reference is as accurate as an F32 product allows. */
static void matmul_float_scalar(const qc_tensor_t *w, const float *x, int n_tok, float *y, int64_t ldy,
                                int64_t r0, int64_t r1) {
    const int64_t n = w->cols;
    const size_t rb = qc_row_bytes(w->dtype, n);
    for (int64_t r = r0; r < r1; r++) {
        const unsigned char *p = (const unsigned char *)w->data + (size_t)r * rb;
        for (int t = 0; t < n_tok; t++) {
            const float *xt = x + (size_t)t * n;
            double s = 0.0;
            switch (w->dtype) {
            case QC_DTYPE_F32:
                for (int64_t c = 0; c < n; c++) {
                    float wc;
                    memcpy(&wc, p + 4 * c, 4);
                    s += (double)(wc * xt[c]);
                }
                break;
            case QC_DTYPE_F16:
                for (int64_t c = 0; c < n; c++) s += (double)(qc_f16_to_f32(qc_load_u16(p + 2 * c)) * xt[c]);
                break;
            case QC_DTYPE_BF16:
                for (int64_t c = 0; c < n; c++) s += (double)(qc_bf16_to_f32(qc_load_u16(p + 2 * c)) * xt[c]);
                break;
            default: break;
            }
            y[(size_t)t * ldy + r] = (float)s;
        }
    }
}

/* Quantized weights: per block an exact integer dot, scaled by d_w * d_x
 * (F32) and summed in F32, block after block — as ggml's vec_dot does. */
static void matmul_quant_scalar(const qc_tensor_t *w, const void *act, int n_tok, float *y, int64_t ldy,
                                int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / QC_QK;
    const int q4 = w->dtype == QC_DTYPE_Q4_0;
    const size_t bb = q4 ? QC_Q4_0_BYTES : QC_Q8_0_BYTES;
    const qc_block_q8_act *a = act;
    for (int64_t r = r0; r < r1; r++) {
        const unsigned char *row = (const unsigned char *)w->data + (size_t)r * (size_t)nb * bb;
        for (int t = 0; t < n_tok; t++) {
            const qc_block_q8_act *at = a + (size_t)t * (size_t)nb;
            float sum = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const unsigned char *blk = row + (size_t)b * bb;
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
            y[(size_t)t * ldy + r] = sum;
        }
    }
}

void qc_matmul_scalar(const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y,
                      int64_t ldy, int64_t r0, int64_t r1) {
    if (n_tok <= 0 || r0 >= r1) return;
    if (w->dtype == QC_DTYPE_Q8_0 || w->dtype == QC_DTYPE_Q4_0)
        matmul_quant_scalar(w, act, n_tok, y, ldy, r0, r1);
    else
        matmul_float_scalar(w, x, n_tok, y, ldy, r0, r1);
}

float qc_dot_f32_scalar(const float *a, const float *b, int64_t n) {
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

/* ==== attention (scalar reference) ==== */

/* q . k for k in halves, with qc_dot_f32_scalar's four partial sums. */
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
