/* kernels_impl.h — internal to the kernel files: the one signature every CPU
 * level implements, so kernels.c can pick a level at one place.
 *
 *   kernels.c         dispatch, weight formats, quantization
 *   kernels_scalar.c  scalar reference (plain C)
 *   kernels_avx2.c    AVX2 + FMA + F16C           (built with -mavx2 ...)
 *   kernels_avx512.c  AVX-512 F/BW/VL/DQ + VNNI   (built with -mavx512f ...)
 *
 * Accuracy contract of every SIMD level against the scalar reference:
 * - float weights (F32/F16/BF16): products and sums in F32; results differ
 *   only by summation order: |y - y_ref| <= ~1e-6 * sum_c |w_c * x_c|.
 * - quantized weights: each block's integer dot is exact; the scaled block
 *   sums are added in another order, and the unsigned-operand correction
 *   (128 * sum(qx) for Q8_0, 8 * sum(qx) for Q4_0) passes through F32 lanes,
 *   so |y - y_ref| <= ~1e-5 * sum_b |d_w d_x| (sum_i |qw_i qx_i| + 128 sum_i |qx_i|).
 * - activation quantization is bit-exact across levels. */
#ifndef QC_KERNELS_IMPL_H
#define QC_KERNELS_IMPL_H

#include "engine/kernels.h"

#include <math.h>

/* ==== one level's kernels ==== */

/* Same contract as qc_matmul (kernels.h), for every weight type. */
typedef void (*qc_matmul_fn)(const qc_tensor_t *w, const float *x, const void *act, int n_tok,
                             float *y, int64_t ldy, int64_t r0, int64_t r1);
/* Same contract as qc_dot_f32. */
typedef float (*qc_dot_fn)(const float *a, const float *b, int64_t n);
/* Quantizes one activation row of cols floats (cols % 32 == 0) into cols/32
 * blocks: d = amax / 127, id = d ? 1 / d : 0, qs = round-half-away(x * id),
 * sum = sum of qs. Bit-exact with the scalar one at every level. */
typedef void (*qc_act_row_fn)(const float *x, int64_t cols, qc_block_q8_act *out);

/* Same contract as qc_attend. */
typedef void (*qc_attend_fn)(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                             float *scores, float *o);

typedef struct {
    qc_matmul_fn matmul;
    qc_dot_fn dot_f32;
    qc_act_row_fn act_row;
    qc_attend_fn attend;
} qc_kernel_set_t;

void qc_matmul_scalar(const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y,
                      int64_t ldy, int64_t r0, int64_t r1);
float qc_dot_f32_scalar(const float *a, const float *b, int64_t n);
void qc_act_row_scalar(const float *x, int64_t cols, qc_block_q8_act *out);
void qc_attend_scalar(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                      float *scores, float *o);

void qc_matmul_avx2(const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y,
                    int64_t ldy, int64_t r0, int64_t r1);
float qc_dot_f32_avx2(const float *a, const float *b, int64_t n);
void qc_act_row_avx2(const float *x, int64_t cols, qc_block_q8_act *out);
void qc_attend_avx2(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                    float *scores, float *o);

void qc_matmul_avx512(const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y,
                      int64_t ldy, int64_t r0, int64_t r1);
float qc_dot_f32_avx512(const float *a, const float *b, int64_t n);
void qc_act_row_avx512(const float *x, int64_t cols, qc_block_q8_act *out);
void qc_attend_avx512(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                      float *scores, float *o);

/* 1 when the file was compiled with its instruction set (the Makefile's
 * ISA_FLAGS); 0 when built without them, in which case its functions forward
 * to the scalar ones and the level is never selected. */
extern const int qc_avx2_built, qc_avx512_built;

/* The kernel set of a level, clamped to what this CPU (and build) supports. */
const qc_kernel_set_t *qc_kernels_for(qc_cpu_t level);
/* The best level this CPU and build support, whatever QCARE_CPU says. */
qc_cpu_t qc_cpu_max(void);

/* ==== helpers shared by the levels ==== */

/* The F32 attention's softmax: scores[i] = exp(scores[i] - mx) in place
 * (mx their maximum); returns 1 / their sum (summed in double). */
static inline float qc_softmax_exp(float *scores, int n, float mx) {
    double sum = 0;
    for (int i = 0; i < n; i++) {
        scores[i] = expf(scores[i] - mx);
        sum += scores[i];
    }
    return (float)(1.0 / sum);
}

static inline const uint16_t *qc_k_row(const qc_kv_rows_t *r, int i) {
    return (i < r->n_pre ? r->kp : r->kc) + (size_t)i * (size_t)r->stride;
}
static inline const uint16_t *qc_v_row(const qc_kv_rows_t *r, int i) {
    return (i < r->n_pre ? r->vp : r->vc) + (size_t)i * (size_t)r->stride;
}

/* Bytes of one weight block (Q8_0 / Q4_0). */
#define QC_Q8_0_BYTES 34
#define QC_Q4_0_BYTES 18

static inline uint16_t qc_load_u16(const void *p) {
    const unsigned char *b = (const unsigned char *)p;
    return (uint16_t)(b[0] | b[1] << 8);
}

#endif
