/* forward_ref.c — the reference forward pass: the whole model, written to be
 * read top to bottom. Start reading the engine here.
 *
 * One sequence, one token at a time, scalar F32, no threads, no SIMD: every
 * weight row is dequantized to F32 (qc_dequantize_row, any dtype) right
 * before it is used, and the KV cache is F32. The fast path (forward.c)
 * computes the same function with quantized activations for Q8_0/Q4_0
 * weights, an F16 KV cache, threads and batches; tests/test_ref.c compares
 * the two, and this one against llama.cpp's goldens. Nothing in the
 * product calls it, so it is written for clarity, not speed.
 *
 * The model (Qwen2 / Qwen3, dense), for one token at position pos:
 *   x = embed[token]
 *   per layer:  h = RMSNorm(x)
 *               q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)     (Qwen2: bias)
 *               q, k = RMSNorm of each head of q and k            (Qwen3 only)
 *               q, k = RoPE(q, pos), RoPE(k, pos); k, v -> cache[pos]
 *               a = softmax(q . K^T / sqrt(head_dim)) V           (per head, GQA)
 *               x = x + Wo a
 *               x = x + Wdown(silu(Wgate RMSNorm(x)) * Wup RMSNorm(x))
 *   logits = lm_head RMSNorm(x)                 (lm_head = embed when tied) */
#include "engine/model_impl.h"
#include "engine/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ==== building blocks ==== */

/* y = W x: W [rows][cols] of any dtype, x [cols], y [rows]. Each row of W is
 * dequantized into row [cols] first. */
static void matvec(float *y, const qc_tensor_t *W, const float *x, float *row) {
    for (int64_t r = 0; r < W->rows; r++) {
        qc_dequantize_row(W, r, row);
        float sum = 0.0f;
        for (int64_t c = 0; c < W->cols; c++) sum += row[c] * x[c];
        y[r] = sum;
    }
}

/* y += b: b a vector [n] of any dtype (a bias), y [n]. */
static void add_vec(float *y, const qc_tensor_t *b, float *row) {
    qc_dequantize_row(b, 0, row);
    for (int64_t i = 0; i < b->cols; i++) y[i] += row[i];
}

/* out = x / sqrt(mean(x^2) + eps) * w: x, out [n] (may be the same), w a
 * vector [n]. The weight multiplies the normalized value afterwards. */
static void rmsnorm(float *out, const float *x, const qc_tensor_t *w, float eps, float *row) {
    int64_t n = w->cols;
    float ss = 0.0f;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    qc_dequantize_row(w, 0, row);
    for (int64_t i = 0; i < n; i++) out[i] = (x[i] * scale) * row[i];
}

/* RoPE, NeoX ("rotate_half") form, on one head v [hd] at position pos: the
 * pair (v[i], v[i + hd/2]) turns by pos * inv_freq[i], with
 * inv_freq[i] = theta^(-2i/hd). */
static void rope(float *v, int hd, int pos, float theta) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * powf(theta, -2.0f * (float)i / (float)hd);
        float c = cosf(angle), s = sinf(angle), a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

/* x [n] = exp(x - max) / sum, in place. */
static void softmax(float *x, int n) {
    float mx = x[0], sum = 0.0f;
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) sum += x[i] = expf(x[i] - mx);
    for (int i = 0; i < n; i++) x[i] /= sum;
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

/* ==== the state of one sequence ==== */

qc_status qc_ref_state_init(qc_ref_state_t *s, const qc_model_t *m, int n_ctx) {
    const qc_config_t *c = &m->cfg;
    int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim;
    int widest = c->n_embd > c->n_ff ? c->n_embd : c->n_ff; /* the longest weight row */
    if (q_dim > widest) widest = q_dim;
    memset(s, 0, sizeof *s);
    if (n_ctx <= 0) return QC_ERR_ARG;
    s->m = m;
    s->n_ctx = n_ctx;
    size_t cache = (size_t)c->n_layer * n_ctx * kv_dim;
    s->k_cache = calloc(cache, sizeof(float));
    s->v_cache = calloc(cache, sizeof(float));
    s->x = calloc((size_t)c->n_embd, sizeof(float));
    s->xb = calloc((size_t)c->n_embd, sizeof(float));
    s->q = calloc((size_t)q_dim, sizeof(float));
    s->att_out = calloc((size_t)q_dim, sizeof(float));
    s->att = calloc((size_t)n_ctx, sizeof(float));
    s->hb = calloc((size_t)c->n_ff, sizeof(float));
    s->hb2 = calloc((size_t)c->n_ff, sizeof(float));
    s->row = calloc((size_t)widest, sizeof(float));
    if (!s->k_cache || !s->v_cache || !s->x || !s->xb || !s->q || !s->att_out || !s->att || !s->hb || !s->hb2 ||
        !s->row) {
        qc_ref_state_free(s);
        return QC_ERR_NOMEM;
    }
    return QC_OK;
}

void qc_ref_state_free(qc_ref_state_t *s) {
    if (!s) return;
    free(s->k_cache); free(s->v_cache); free(s->x); free(s->xb); free(s->q);
    free(s->att_out); free(s->att); free(s->hb); free(s->hb2); free(s->row);
    memset(s, 0, sizeof *s);
}

/* ==== the forward pass ==== */

/* One token at position pos; logits [n_vocab] (or NULL: only the cache). */
static void forward_token(qc_ref_state_t *s, int32_t token, int pos, float *logits) {
    const qc_model_t *m = s->m;
    const qc_config_t *c = &m->cfg;
    int d = c->n_embd, hd = c->head_dim, kv_dim = c->n_head_kv * hd;
    int group = c->n_head / c->n_head_kv; /* query heads per KV head */
    float *row = s->row;

    qc_dequantize_row(&m->tok_embd, token, s->x); /* x [n_embd] */

    for (int l = 0; l < c->n_layer; l++) {
        const qc_layer_t *L = &m->layers[l];
        float *k_layer = s->k_cache + (size_t)l * s->n_ctx * kv_dim; /* [n_ctx][kv_dim] */
        float *v_layer = s->v_cache + (size_t)l * s->n_ctx * kv_dim;
        float *k = k_layer + (size_t)pos * kv_dim, *v = v_layer + (size_t)pos * kv_dim; /* [kv_dim] */

        /* q [n_head*hd], k, v [n_head_kv*hd] from the normed x; k and v go
         * straight to this position's cache row */
        rmsnorm(s->xb, s->x, &L->attn_norm, c->rms_eps, row);
        matvec(s->q, &L->wq, s->xb, row);
        matvec(k, &L->wk, s->xb, row);
        matvec(v, &L->wv, s->xb, row);
        if (c->qkv_bias) {
            add_vec(s->q, &L->bq, row);
            add_vec(k, &L->bk, row);
            add_vec(v, &L->bv, row);
        }
        for (int h = 0; h < c->n_head; h++) {
            if (c->qk_norm) rmsnorm(s->q + h * hd, s->q + h * hd, &L->q_norm, c->rms_eps, row);
            rope(s->q + h * hd, hd, pos, c->rope_theta);
        }
        for (int h = 0; h < c->n_head_kv; h++) {
            if (c->qk_norm) rmsnorm(k + h * hd, k + h * hd, &L->k_norm, c->rms_eps, row);
            rope(k + h * hd, hd, pos, c->rope_theta);
        }

        /* attention: query head h reads KV head h / group at positions 0..pos */
        for (int h = 0; h < c->n_head; h++) {
            const float *qh = s->q + h * hd;
            int kvh = h / group;
            for (int t = 0; t <= pos; t++) {
                const float *kt = k_layer + (size_t)t * kv_dim + kvh * hd;
                float score = 0.0f;
                for (int i = 0; i < hd; i++) score += qh[i] * kt[i];
                s->att[t] = score / sqrtf((float)hd);
            }
            softmax(s->att, pos + 1);
            float *out = s->att_out + h * hd; /* [hd] */
            memset(out, 0, (size_t)hd * sizeof *out);
            for (int t = 0; t <= pos; t++) {
                const float *vt = v_layer + (size_t)t * kv_dim + kvh * hd;
                for (int i = 0; i < hd; i++) out[i] += s->att[t] * vt[i];
            }
        }
        matvec(s->xb, &L->wo, s->att_out, row); /* [n_embd] */
        for (int i = 0; i < d; i++) s->x[i] += s->xb[i];

        /* SwiGLU MLP: down(silu(gate(xb)) * up(xb)), hb, hb2 [n_ff] */
        rmsnorm(s->xb, s->x, &L->ffn_norm, c->rms_eps, row);
        matvec(s->hb, &L->w_gate, s->xb, row);
        matvec(s->hb2, &L->w_up, s->xb, row);
        for (int i = 0; i < c->n_ff; i++) s->hb[i] = silu(s->hb[i]) * s->hb2[i];
        matvec(s->xb, &L->w_down, s->hb, row);
        for (int i = 0; i < d; i++) s->x[i] += s->xb[i];
    }

    rmsnorm(s->x, s->x, &m->out_norm, c->rms_eps, row);
    if (logits) matvec(logits, &m->lm_head, s->x, row); /* [n_vocab]; the loader ties it to the embedding */
}

qc_status qc_forward_ref(qc_ref_state_t *s, const int32_t *ids, const int *pos, int n, float *logits) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->m->cfg.n_vocab || pos[i] < 0 || pos[i] >= s->n_ctx) return QC_ERR_ARG;
    for (int i = 0; i < n; i++)
        forward_token(s, ids[i], pos[i], logits ? logits + (size_t)i * s->m->cfg.n_vocab : NULL);
    return QC_OK;
}
