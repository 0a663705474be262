/* attend_simd.h — the body of qc_attend for one SIMD level, included by
 * kernels_avx2.c and kernels_avx512.c after they define:
 *   ATT_NAME        the function's name
 *   ATT_W           floats per vector; vec_t, v_load, v_store, v_add, v_mul,
 *                   v_fmadd, v_hsum, v_set1, v_zero, v_load_h (ATT_W halves
 *                   widened), v_round_h (round to half and back, F16C)
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

void ATT_NAME(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc, float *scores,
              float *o) {
    if (hd % ATT_W || hd > 512) {
        qc_attend_scalar(q, r, n, hd, scale, f16_acc, scores, o);
        return;
    }
    const int nv = hd / ATT_W;
    if (f16_acc) {
        _Alignas(64) float q16[512];
        vec_t acc[512 / ATT_W];
        for (int j = 0; j < nv; j++) {
            v_store(q16 + j * ATT_W, v_round_h(v_load(q + j * ATT_W)));
            acc[j] = v_zero();
        }
        float S = 0, M = -INFINITY;
        for (int i = 0; i < n; i++) {
            const uint16_t *k = qc_k_row(r, i), *v = qc_v_row(r, i);
            float s = att_dot_h(q16, k, hd) * scale, ms = 1, vs = 1;
            if (s > M) {
                float old = M;
                M = s;
                ms = expf(old - M);
                const vec_t m = v_set1(ms);
                for (int j = 0; j < nv; j++) acc[j] = v_round_h(v_mul(acc[j], m));
            } else {
                vs = expf(s - M);
            }
            const vec_t w = v_set1(vs);
            for (int j = 0; j < nv; j++) acc[j] = v_round_h(v_add(acc[j], v_mul(v_load_h(v + j * ATT_W), w)));
            S = S * ms + vs;
        }
        const vec_t inv = v_set1(S == 0 ? 0 : 1.0f / S);
        for (int j = 0; j < nv; j++) v_store(o + j * ATT_W, v_mul(acc[j], inv));
        return;
    }
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        float s = att_dot_h(q, qc_k_row(r, i), hd) * scale;
        scores[i] = s;
        if (s > mx) mx = s;
    }
    float inv = qc_softmax_exp(scores, n, mx);
    vec_t acc[512 / ATT_W];
    for (int j = 0; j < nv; j++) acc[j] = v_zero();
    for (int i = 0; i < n; i++) {
        const vec_t p = v_set1(scores[i] * inv);
        const uint16_t *v = qc_v_row(r, i);
        for (int j = 0; j < nv; j++) acc[j] = v_add(acc[j], v_mul(p, v_load_h(v + j * ATT_W)));
    }
    for (int j = 0; j < nv; j++) v_store(o + j * ATT_W, acc[j]);
}
