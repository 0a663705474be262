/* attend_simd.h — the bodies of qc_attend and qc_swiglu_row for one SIMD
 * level, included by kernels_avx2.c, kernels_avx512.c and kernels_neon.c after
 * they define:
 *   ATT_NAME        the function's name (SWIGLU_NAME, the other's)
 *   ATT_W           floats per vector; vec_t, v_load, v_store, v_add, v_mul,
 *                   v_fmadd, v_hsum, v_set1, v_zero, v_load_h (ATT_W halves
 *                   widened), v_round_h (round to half and back, F16C),
 *                   v_sub, v_pow2_magic (2^n from t = n + QC_EXP_MAGIC, by
 *                   integer operations on t's bits), v_zero_below (y where
 *                   x < a, else y; NaN x keeps y), v_div, v_neg_abs (-|x|,
 *                   the sign bit set), v_select_ge0 (a where x >= 0, else b)
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

/* qc_silu lane by lane. */
ALWAYS_INLINE vec_t v_silu(vec_t x) {
    const vec_t e = v_exp_neg(v_neg_abs(x)), d = v_add(v_set1(1.0f), e);
    return v_div(v_select_ge0(x, x, v_mul(x, e)), d);
}

static void SWIGLU_NAME(const float *g, const float *u, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + ATT_W <= n; i += ATT_W) v_store(out + i, v_mul(v_silu(v_load(g + i)), v_load(u + i)));
    for (; i < n; i++) out[i] = qc_silu(g[i]) * u[i];
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

/* The half-precision online softmax's weights for keys [0, m) of one
 * query (scores s, running maximum *M): ms[i] the rescaling where the
 * maximum rose at key i (bit of up[i] set), else 1; vs[i] the key's weight,
 * 1 where the maximum rose; the exponentials ATT_W at a time. */
#define ATT_CH 64
ALWAYS_INLINE void att_f16_weights(const float *s, int m, float *M, float *ms, float *vs, uint8_t *up, unsigned bit) {
    _Alignas(64) float cur[ATT_CH];
    float mx = *M;
    for (int i = 0; i < m; i++) {
        ms[i] = 1;
        if (s[i] > mx) {
            ms[i] = qc_exp_neg(mx - s[i]);
            mx = s[i];
            up[i] |= (uint8_t)bit;
        }
        cur[i] = mx;
    }
    *M = mx;
    int i = 0;
    for (; i + ATT_W <= m; i += ATT_W) v_store(vs + i, v_exp_neg(v_sub(v_load(s + i), v_load(cur + i))));
    for (; i < m; i++) vs[i] = qc_exp_neg(s[i] - cur[i]);
    for (i = 0; i < m; i++)
        if (up[i] & bit) vs[i] = 1;
}

/* One key of one query: its rescaling where its maximum rose, then the V
 * row vv weighted in, each update rounded to half. */
ALWAYS_INLINE void att_f16_step(vec_t *acc, const vec_t *vv, unsigned up, float ms, float vs, const int nv) {
    if (up) {
        const vec_t m = v_set1(ms);
#pragma GCC unroll 16
        for (int j = 0; j < nv; j++) acc[j] = v_round_h(v_mul(acc[j], m));
    }
    const vec_t w = v_set1(vs);
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) acc[j] = v_round_h(v_add(acc[j], v_mul(vv[j], w)));
}

/* The half-precision online softmax, as llama.cpp's CPU flash attention:
 * the running maximum's rescalings and the weighted V rows in half
 * precision, every update rounded. For the queries [q0, q0 + g) (g <= G)
 * of a block, query q0 + a seeing keys [0, n0 + q0 + a), its scores
 * (q16 . k * scale) at scores + (q0 + a) * nmax: each V row converted once
 * for the group and the g chains of updates interleaved (one query's chain
 * of an addition and two conversions per key leaves the core idle); each
 * query's operations are those it has alone, in the same order. */
ALWAYS_INLINE void att_f16_group(const qc_kv_rows_t *r, int n0, int nmax, const float *scores, int q0, int g,
                                 float *o, int64_t ldo, const int nv, const int G) {
    vec_t acc[4][512 / ATT_W], vv[512 / ATT_W];
    float M[4], S[4];
    _Alignas(64) float ms[4][ATT_CH], vs[4][ATT_CH];
    uint8_t up[ATT_CH];
#pragma GCC unroll 4
    for (int a = 0; a < G; a++) {
        M[a] = -INFINITY, S[a] = 0;
#pragma GCC unroll 16
        for (int j = 0; j < nv; j++) acc[a][j] = v_zero();
    }
    const int shared = n0 + q0; /* keys every query of the group sees */
    for (int c0 = 0; c0 < shared; c0 += ATT_CH) {
        const int m = shared - c0 < ATT_CH ? shared - c0 : ATT_CH;
        memset(up, 0, (size_t)m);
        for (int a = 0; a < g; a++)
            att_f16_weights(scores + (size_t)(q0 + a) * (size_t)nmax + c0, m, &M[a], ms[a], vs[a], up, 1u << a);
        for (int i = 0; i < m; i++) {
            const uint16_t *v = qc_v_row(r, c0 + i);
#pragma GCC unroll 16
            for (int j = 0; j < nv; j++) vv[j] = v_load_h(v + j * ATT_W);
#pragma GCC unroll 4
            for (int a = 0; a < G; a++) {
                if (a >= g) break;
                att_f16_step(acc[a], vv, up[i] >> a & 1, ms[a][i], vs[a][i], nv);
                S[a] = S[a] * ms[a][i] + vs[a][i];
            }
        }
    }
#pragma GCC unroll 4
    for (int a = 0; a < G; a++) {
        if (a >= g) break;
        const int tail = a; /* the keys [shared, shared + a) of query q0 + a */
        memset(up, 0, (size_t)tail);
        att_f16_weights(scores + (size_t)(q0 + a) * (size_t)nmax + shared, tail, &M[a], ms[0], vs[0], up, 1);
        for (int i = 0; i < tail; i++) {
            const uint16_t *v = qc_v_row(r, shared + i);
#pragma GCC unroll 16
            for (int j = 0; j < nv; j++) vv[j] = v_load_h(v + j * ATT_W);
            att_f16_step(acc[a], vv, up[i], ms[0][i], vs[0][i], nv);
            S[a] = S[a] * ms[0][i] + vs[0][i];
        }
        const vec_t inv = v_set1(S[a] == 0 ? 0 : 1.0f / S[a]);
#pragma GCC unroll 16
        for (int j = 0; j < nv; j++) v_store(o + (q0 + a) * ldo + j * ATT_W, v_mul(acc[a][j], inv));
    }
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
        att_f16_group(r, n, n, scores, 0, 1, o, 0, nv, 1);
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
