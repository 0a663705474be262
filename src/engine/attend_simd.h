/* attend_simd.h — the body of qc_attend for one SIMD level, included by
 * kernels_avx2.c and kernels_avx512.c after they define:
 *   ATT_NAME        the function's name
 *   ATT_W           floats per vector; vec_t, v_load, v_store, v_add, v_mul,
 *                   v_fmadd, v_hsum, v_set1, v_zero, v_load_h (ATT_W halves
 *                   widened), v_round_h (round to half and back, F16C),
 *                   v_sub, v_pow2_magic (2^n from t = n + QC_EXP_MAGIC, by
 *                   integer operations on t's bits), v_zero_below (y where
 *                   x < a, else y; NaN x keeps y)
 * The arithmetic is that of qc_attend_scalar step by step (products and sums
 * in the same order, no fused multiply-add; F16C's conversion is the same
 * rounding as qc_round_f16), so only the dot products q . k differ between
 * levels (their summation order), as qc_dot_f32 does. */

/* q . k, k in halves, hd a multiple of ATT_W: two accumulators. */
static inline float att_dot_h(const float *q, const uint16_t *k, int hd) {
    vec_t s0 = v_zero(), s1 = v_zero();
    int i = 0;
    for (; i + 2 * ATT_W <= hd; i += 2 * ATT_W) {
        s0 = v_fmadd(v_load(q + i), v_load_h(k + i), s0);
        s1 = v_fmadd(v_load(q + i + ATT_W), v_load_h(k + i + ATT_W), s1);
    }
    if (i < hd) s0 = v_fmadd(v_load(q + i), v_load_h(k + i), s0);
    return v_hsum(v_add(s0, s1));
}

/* qc_exp_neg lane by lane: the same operations in the same order. */
ALWAYS_INLINE vec_t v_exp_neg(vec_t x) {
    vec_t t = v_add(v_mul(x, v_set1(QC_EXP_LOG2E)), v_set1(QC_EXP_MAGIC));
    vec_t n = v_sub(t, v_set1(QC_EXP_MAGIC));
    vec_t r = v_sub(v_sub(x, v_mul(n, v_set1(QC_EXP_C1))), v_mul(n, v_set1(QC_EXP_C2)));
    vec_t p = v_add(v_mul(v_set1(QC_EXP_P0), r), v_set1(QC_EXP_P1));
    p = v_add(v_mul(p, r), v_set1(QC_EXP_P2));
    p = v_add(v_mul(p, r), v_set1(QC_EXP_P3));
    p = v_add(v_mul(p, r), v_set1(QC_EXP_P4));
    p = v_add(v_mul(p, r), v_set1(QC_EXP_P5));
    p = v_add(v_add(v_mul(p, v_mul(r, r)), r), v_set1(1.0f));
    return v_zero_below(x, QC_EXP_MIN, v_mul(p, v_pow2_magic(t)));
}

/* qc_softmax_exp with the exponentials ATT_W at a time. */
static inline float att_softmax(float *scores, int n, float mx) {
    const vec_t m = v_set1(mx);
    int i = 0;
    for (; i + ATT_W <= n; i += ATT_W) v_store(scores + i, v_exp_neg(v_sub(v_load(scores + i), m)));
    for (; i < n; i++) scores[i] = qc_exp_neg(scores[i] - mx);
    return (float)(1.0 / qc_softmax_sum(scores, n));
}

/* The F32 softmax's second half: scores[0, n) (their maximum mx) to
 * weights, and their sum of the V rows into o. */
ALWAYS_INLINE void att_f32_out(const qc_kv_rows_t *r, int n, float *scores, float mx, float *o, const int nv) {
    float inv = att_softmax(scores, n, mx);
    vec_t acc[512 / ATT_W];
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) acc[j] = v_zero();
    for (int i = 0; i < n; i++) {
        const vec_t p = v_set1(scores[i] * inv);
        const uint16_t *v = qc_v_row(r, i);
#pragma GCC unroll 16
        for (int j = 0; j < nv; j++) acc[j] = v_add(acc[j], v_mul(p, v_load_h(v + j * ATT_W)));
    }
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) v_store(o + j * ATT_W, acc[j]);
}

/* The half-precision online softmax over scores[0, n) (q16 . k * scale):
 * the running maximum's rescalings and the weighted V rows in half
 * precision, every update rounded, as llama.cpp's CPU flash attention. */
ALWAYS_INLINE void att_f16_out(const qc_kv_rows_t *r, int n, const float *scores, float *o, const int nv) {
    vec_t acc[512 / ATT_W];
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) acc[j] = v_zero();
    float S = 0, M = -INFINITY;
    for (int i = 0; i < n; i++) {
        const uint16_t *v = qc_v_row(r, i);
        float s = scores[i], ms = 1, vs = 1;
        if (s > M) {
            float old = M;
            M = s;
            ms = qc_exp_neg(old - M);
            const vec_t m = v_set1(ms);
#pragma GCC unroll 16
            for (int j = 0; j < nv; j++) acc[j] = v_round_h(v_mul(acc[j], m));
        } else {
            vs = qc_exp_neg(s - M);
        }
        const vec_t w = v_set1(vs);
#pragma GCC unroll 16
        for (int j = 0; j < nv; j++) acc[j] = v_round_h(v_add(acc[j], v_mul(v_load_h(v + j * ATT_W), w)));
        S = S * ms + vs;
    }
    const vec_t inv = v_set1(S == 0 ? 0 : 1.0f / S);
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) v_store(o + j * ATT_W, v_mul(acc[j], inv));
}

/* The body, for nv vectors per row; inlined with nv a constant for the
 * common head sizes, so that the accumulators stay in registers (a loop
 * over a runtime nv keeps them in memory, one store-to-load chain per key). */
ALWAYS_INLINE void att_run(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                           float *scores, float *o, const int nv) {
    if (f16_acc) {
        _Alignas(64) float q16[512];
#pragma GCC unroll 16
        for (int j = 0; j < nv; j++) v_store(q16 + j * ATT_W, v_round_h(v_load(q + j * ATT_W)));
        for (int i = 0; i < n; i++) scores[i] = att_dot_h(q16, qc_k_row(r, i), hd) * scale;
        att_f16_out(r, n, scores, o, nv);
        return;
    }
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        float s = att_dot_h(q, qc_k_row(r, i), hd) * scale;
        scores[i] = s;
        if (s > mx) mx = s;
    }
    att_f32_out(r, n, scores, mx, o, nv);
}

void ATT_NAME(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc, float *scores,
              float *o) {
    if (hd % ATT_W || hd > 512) {
        qc_attend_scalar(q, r, n, hd, scale, f16_acc, scores, o);
        return;
    }
    switch (hd / ATT_W) { /* Qwen's heads: 64 and 128 */
    case 64 / ATT_W: att_run(q, r, n, hd, scale, f16_acc, scores, o, 64 / ATT_W); break;
    case 128 / ATT_W: att_run(q, r, n, hd, scale, f16_acc, scores, o, 128 / ATT_W); break;
    default: att_run(q, r, n, hd, scale, f16_acc, scores, o, hd / ATT_W); break;
    }
}
