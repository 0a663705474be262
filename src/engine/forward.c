/* forward.c — the forward pass of the fast path, and qc_ctx_eval.
 *
 * The pass reads top to bottom like llama2.c's: embed, then per layer
 * RMSNorm → q/k/v (+bias, + per-head q/k RMSNorm for Qwen3) → NeoX RoPE →
 * grouped-query attention over the KV cache → o_proj → residual → RMSNorm →
 * SwiGLU MLP → residual; final RMSNorm and lm_head. All arithmetic is F32;
 * the kernels of kernels.c multiply the weights in whatever type the model
 * keeps them (see weights.c), quantizing the activations to 8 bits for
 * Q8_0/Q4_0 weights. Matrix products, attention and the lm_head are split
 * over the model's thread pool. One pass may carry runs of several
 * sequences (batch.c); each token's result is what it would be alone.
 * forward_ref.c is the same model written plainly, and its oracle. */
#include "engine/model_impl.h"
#include "engine/kernels.h"
#include "engine/threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ==== parallel pieces of the forward pass ==== */

/* Up to three matrix products sharing one input (q/k/v, gate/up), split by
 * rows over the pool: y_i[t][r] = W_i[r] . x[t]. */
typedef struct {
    const qc_tensor_t *w[3];
    float *y[3];
    int n_w;
    const float *x;     /* [n_tok][cols] */
    const void *act[3]; /* x quantized for w[i], when it is quantized */
    int n_tok;
} mm_job_t;

static void mm_task(void *arg, int ith, int nth) {
    mm_job_t *j = arg;
    long total = 0;
    for (int i = 0; i < j->n_w; i++) total += (long)j->w[i]->rows;
    long lo, hi, base = 0;
    qc_split(total, ith, nth, 16, &lo, &hi);
    for (int i = 0; i < j->n_w; i++) {
        long rows = (long)j->w[i]->rows, a = lo > base ? lo : base, b = hi < base + rows ? hi : base + rows;
        if (a < b) qc_matmul(j->w[i], j->x, j->act[i], j->n_tok, j->y[i], rows, a - base, b - base);
        base += rows;
    }
}

/* The activation quantizations of a job's products (one per format the
 * weights need), its tokens split over the pool. */
typedef struct {
    const mm_job_t *j;
    int first[3]; /* 1: w[i] is the first of the job to need its format */
} quant_job_t;

static void quant_task(void *arg, int ith, int nth) {
    const quant_job_t *q = arg;
    const mm_job_t *j = q->j;
    long lo, hi;
    qc_split(j->n_tok, ith, nth, 1, &lo, &hi);
    for (int i = 0; i < j->n_w; i++)
        if (q->first[i] && lo < hi)
            qc_act_quantize(j->w[i]->dtype, j->x, j->w[i]->cols, (int)lo, (int)hi, (void *)j->act[i]);
}

/* Runs the products of job on the pool, quantizing x first (into the slot
 * of w->act its weights' activation format has: a mixed file's q/k/v may
 * need two or three formats) if needed. A batch's tokens are quantized on
 * the pool too (each row alone, so the same bytes as on one thread): on
 * one thread the others would wait (Q8_K: ~9 ms a layer for 512 tokens). */
static void matmuls(const qc_model_t *m, qc_work_t *w, mm_job_t *j) {
    int done = 0; /* slots filled */
    quant_job_t q = {.j = j};
    for (int i = 0; i < j->n_w; i++) {
        const int s = qc_act_slot(j->w[i]->dtype);
        j->act[i] = NULL;
        if (s < 0) continue;
        unsigned char *a = (unsigned char *)w->act + (size_t)s * w->act_slot;
        q.first[i] = !(done & 1 << s);
        done |= 1 << s;
        j->act[i] = a;
    }
    if (done && j->n_tok > 1 && qc_pool_size(m->pool) > 1) {
        qc_pool_run(m->pool, quant_task, &q);
    } else if (done) {
        quant_task(&q, 0, 1);
    }
    qc_pool_run(m->pool, mm_task, j);
}

static void matmul1(const qc_model_t *m, qc_work_t *w, const qc_tensor_t *t, const float *in, int n_tok, float *y) {
    mm_job_t j = {.w = {t}, .y = {y}, .n_w = 1, .x = in, .n_tok = n_tok};
    matmuls(m, w, &j);
}

/* out = x / sqrt(mean(x^2) + eps) * w, over n elements (sum in double). */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

typedef struct {
    float *out;
    const float *in;
    const float *w;
    int n, n_tok;
    float eps;
} norm_job_t;

static void norm_task(void *arg, int ith, int nth) {
    norm_job_t *j = arg;
    long lo, hi;
    qc_split(j->n_tok, ith, nth, 1, &lo, &hi);
    for (long t = lo; t < hi; t++) rmsnorm(j->out + t * j->n, j->in + t * j->n, j->w, j->n, j->eps);
}

/* RMSNorm of n_tok rows of n values, split over the pool for a batch. */
static void rmsnorm_rows(const qc_model_t *m, float *out, const float *in, const qc_tensor_t *w, int n, int n_tok) {
    norm_job_t j = {out, in, (const float *)w->data, n, n_tok, m->cfg.rms_eps};
    if (n_tok == 1) norm_task(&j, 0, 1);
    else qc_pool_run(m->pool, norm_task, &j);
}

/* NeoX RoPE on one head of head_dim values: element i pairs with i + d/2. */
static void rope(float *v, int head_dim, const float *cos_t, const float *sin_t) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * cos_t[i] - b * sin_t[i];
        v[i + half] = b * cos_t[i] + a * sin_t[i];
    }
}

/* ==== forward pass ==== */

/* One layer's work on the pass's tokens, for the pool: the attention
 * (attention_task) and the element-wise steps (step_task, by step). */
typedef struct {
    const qc_model_t *m;
    qc_work_t *w;
    const qc_seg_t *seg; /* the runs, in token order */
    int layer, n_tok, step;
} layer_job_t;

/* Attention numerics. The cache holds K and V at half precision. A batch of
 * fewer than QC_ATTN_TILE_MIN tokens (every decode step) runs the
 * one-query-at-a-time online softmax of llama.cpp's CPU flash attention: Q
 * rounded to half, and the weighted sum of V accumulated in half precision.
 * Larger batches run a plain F32 softmax over the half-precision K/V, as
 * llama.cpp's tiled kernel does for 64 queries or more. Matching llama.cpp
 * here is what lets qcare reproduce its logits to ~1e-3 (see tests/). */
#define QC_ATTN_TILE_MIN 64

/* Attention of the pass's new tokens in one layer, dealt over (block of
 * tokens, head) items: their k/v are already in their sequences' caches;
 * each token sees its own sequence up to itself. The numerics follow the
 * size of the token's run (its sequence's tokens in this pass), as if it
 * ran alone: a run of QC_ATTN_TILE_MIN or more takes the F32 softmax, a
 * shorter one the half-precision online one, both in blocks of QC_ATT_QB
 * consecutive tokens (which share their K and V rows; each token's result
 * is what it gets alone). */
static void attention_task(void *arg, int ith, int nth) {
    const layer_job_t *j = arg;
    const qc_config_t *c = &j->m->cfg;
    int hd = c->head_dim, group = c->n_head / c->n_head_kv, q_dim = c->n_head * hd;
    float scale = 1.0f / sqrtf((float)hd), *scores = j->w->scores + (size_t)ith * j->w->n_scores;
    /* dealt round, not in ranges: a token's cost grows with its position
     * (a range split of a 512-token prompt gave the last thread 3/4) */
    long item = 0; /* items of the runs before g; thread ith takes every nth of them all */
    int done = 0; /* the runs cover the pass's tokens in order */
    for (const qc_seg_t *g = j->seg; done < j->n_tok; done += g->n_tok, g++) {
        const int tiled = g->n_tok >= QC_ATTN_TILE_MIN, qb = QC_ATT_QB;
        const long blocks = (g->n_tok + qb - 1) / qb, n_items = blocks * c->n_head;
        const qc_ctx_t *x = g->x, *p = x->prefix;
        for (long it = ((ith - item) % nth + nth) % nth; it < n_items; it += nth) {
            int b = (int)(it / c->n_head), h = (int)(it % c->n_head), kvh = h / group;
            int t = g->t0 + b * qb, nq = g->n_tok - b * qb < qb ? g->n_tok - b * qb : qb;
            size_t lh = (size_t)j->layer * c->n_head_kv + kvh, lk = lh * x->n_ctx * hd,
                   lp = p ? lh * p->n_ctx * hd : 0;
            qc_kv_rows_t rows = {p ? p->k_cache + lp : NULL, p ? p->v_cache + lp : NULL, x->k_cache + lk,
                                 x->v_cache + lk, x->n_prefix, hd};
            const float *q = j->w->q + (size_t)t * q_dim + h * hd;
            float *o = j->w->att_out + (size_t)t * q_dim + h * hd;
            qc_attend_block(q, q_dim, nq, &rows, g->pos0 + (t - g->t0) + 1, hd, scale, !tiled, scores, o, q_dim);
        }
        item += n_items;
    }
}

/* Adds a bias vector (F32) to a row of width n. */
static void add_bias(float *y, int n, const qc_tensor_t *b) {
    const float *bias = b->data;
    for (int i = 0; i < n; i++) y[i] += bias[i];
}

/* The element-wise steps between the products, the pass's tokens split
 * over the pool (a token's arithmetic is the same on any thread; on one
 * thread the others would wait: the SwiGLU of 512 tokens is 1.4 million
 * exponentials a layer). */
enum { STEP_QKV,      /* biases, Qwen3's q/k norms, RoPE; k and v into the caches */
       STEP_RESIDUAL, /* x += xb */
       STEP_SWIGLU }; /* hb = silu(hb) * hb2 */

static void qkv_token(const layer_job_t *j, const qc_seg_t *g, int t) {
    const qc_config_t *c = &j->m->cfg;
    const qc_layer_t *L = &j->m->layers[j->layer];
    qc_work_t *w = j->w;
    const int hd = c->head_dim, half = hd / 2, q_dim = c->n_head * hd, kv_dim = c->n_head_kv * hd;
    float *qt = w->q + (size_t)t * q_dim, *kt = w->k + (size_t)t * kv_dim, *vt = w->v + (size_t)t * kv_dim;
    if (c->qkv_bias) {
        add_bias(qt, q_dim, &L->bq);
        add_bias(kt, kv_dim, &L->bk);
        add_bias(vt, kv_dim, &L->bv);
    }
    const float *ct = w->cos_t + t * half, *st = w->sin_t + t * half;
    for (int h = 0; h < c->n_head; h++) {
        float *q = qt + h * hd;
        if (c->qk_norm) rmsnorm(q, q, L->q_norm.data, hd, c->rms_eps);
        rope(q, hd, ct, st);
    }
    for (int h = 0; h < c->n_head_kv; h++) {
        float *k = kt + h * hd;
        if (c->qk_norm) rmsnorm(k, k, L->k_norm.data, hd, c->rms_eps);
        rope(k, hd, ct, st);
    }
    qc_ctx_t *x = g->x;
    for (int h = 0; h < c->n_head_kv; h++) {
        size_t off = (((size_t)j->layer * c->n_head_kv + h) * x->n_ctx + g->pos0 + t - g->t0) * hd;
        const float *k = kt + h * hd, *v = vt + h * hd;
        qc_f32_to_f16_row(k, x->k_cache + off, hd);
        qc_f32_to_f16_row(v, x->v_cache + off, hd);
    }
}

static void step_task(void *arg, int ith, int nth) {
    const layer_job_t *j = arg;
    const qc_config_t *c = &j->m->cfg;
    qc_work_t *w = j->w;
    long lo, hi;
    qc_split(j->n_tok, ith, nth, 1, &lo, &hi);
    if (j->step == STEP_QKV) {
        int si = 0;
        for (long t = lo; t < hi; t++) {
            while (t >= j->seg[si].t0 + j->seg[si].n_tok) si++;
            qkv_token(j, &j->seg[si], (int)t);
        }
    } else if (j->step == STEP_RESIDUAL) {
        for (size_t i = (size_t)lo * c->n_embd; i < (size_t)hi * c->n_embd; i++) w->x[i] += w->xb[i];
    } else {
        const size_t o = (size_t)lo * c->n_ff;
        qc_swiglu_row(w->hb + o, w->hb2 + o, w->hb + o, (int64_t)(hi - lo) * c->n_ff);
    }
}

static void run_step(const qc_model_t *m, qc_work_t *w, const qc_seg_t *seg, int layer, int n_tok, int step) {
    layer_job_t j = {m, w, seg, layer, n_tok, step};
    if (n_tok == 1) step_task(&j, 0, 1);
    else qc_pool_run(m->pool, step_task, &j);
}

void qc_forward(const qc_model_t *m, qc_work_t *w, const qc_seg_t *seg, int n_seg, const int32_t *ids, int n_tok) {
    const qc_config_t *c = &m->cfg;
    int d = c->n_embd, hd = c->head_dim, half = hd / 2;

    for (int t = 0; t < n_tok; t++) qc_dequantize_row(&m->tok_embd, ids[t], w->x + (size_t)t * d);
    /* RoPE angles pos * theta^(-2i/d), built by repeated multiplication in
     * F32 as ggml does (the reference the goldens come from). */
    float theta_scale = powf(c->rope_theta, -2.0f / hd);
    for (int g = 0; g < n_seg; g++)
        for (int t = seg[g].t0; t < seg[g].t0 + seg[g].n_tok; t++) {
            float theta = (float)(seg[g].pos0 + t - seg[g].t0);
            for (int i = 0; i < half; i++) {
                w->cos_t[t * half + i] = cosf(theta);
                w->sin_t[t * half + i] = sinf(theta);
                theta *= theta_scale;
            }
        }

    for (int l = 0; l < c->n_layer; l++) {
        const qc_layer_t *L = &m->layers[l];
        rmsnorm_rows(m, w->xb, w->x, &L->attn_norm, d, n_tok);
        mm_job_t qkv = {.w = {&L->wq, &L->wk, &L->wv}, .y = {w->q, w->k, w->v}, .n_w = 3, .x = w->xb, .n_tok = n_tok};
        matmuls(m, w, &qkv);
        run_step(m, w, seg, l, n_tok, STEP_QKV);
        layer_job_t aj = {m, w, seg, l, n_tok, 0};
        qc_pool_run(m->pool, attention_task, &aj);
        matmul1(m, w, &L->wo, w->att_out, n_tok, w->xb);
        run_step(m, w, seg, l, n_tok, STEP_RESIDUAL);

        rmsnorm_rows(m, w->xb, w->x, &L->ffn_norm, d, n_tok);
        mm_job_t gu = {.w = {&L->w_gate, &L->w_up}, .y = {w->hb, w->hb2}, .n_w = 2, .x = w->xb, .n_tok = n_tok};
        matmuls(m, w, &gu);
        run_step(m, w, seg, l, n_tok, STEP_SWIGLU);
        matmul1(m, w, &L->w_down, w->hb, n_tok, w->xb);
        run_step(m, w, seg, l, n_tok, STEP_RESIDUAL);
    }
    rmsnorm_rows(m, w->xb, w->x, &m->out_norm, d, n_tok);
    for (int g = 0; g < n_seg; g++) seg[g].x->pos += seg[g].n_tok;
}

void qc_forward_logits(const qc_model_t *m, qc_work_t *w, const float *h, int n_tok, float *logits) {
    matmul1(m, w, &m->lm_head, h, n_tok, logits);
}

/* ==== evaluation of one context ==== */

qc_status qc_ctx_check_ids(qc_ctx_t *x, const int32_t *ids, size_t n_ids) {
    if (n_ids > (size_t)(x->n_ctx - x->pos))
        return qc_seterr(x->err, sizeof x->err, QC_ERR_CONTEXT,
                         "%zu tokens do not fit: %d of %d context positions used", n_ids, x->pos, x->n_ctx);
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= x->m->cfg.n_vocab)
            return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "token id %d out of range [0, %d)", (int)ids[i],
                             x->m->cfg.n_vocab);
    return QC_OK;
}

qc_status qc_ctx_eval(qc_ctx_t *x, const int32_t *ids, size_t n_ids, float *logits, int mode) {
    const qc_model_t *m = x->m;
    const qc_config_t *c = &m->cfg;
    if (mode != QC_LOGITS_NONE && mode != QC_LOGITS_LAST && mode != QC_LOGITS_ALL)
        return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "bad logits mode %d", mode);
    if (mode != QC_LOGITS_NONE && !logits)
        return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "no logits buffer");
    if (n_ids == 0) return mode == QC_LOGITS_NONE ? QC_OK : qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "no tokens to evaluate");
    qc_status st = qc_ctx_check_ids(x, ids, n_ids);
    if (st) return st;

    qc_work_t *w = &x->w;
    if (!w->x && qc_work_init(w, m, x->n_batch, x->n_ctx))
        return qc_seterr(x->err, sizeof x->err, QC_ERR_NOMEM, "out of memory for the work buffers");
    for (size_t done = 0; done < n_ids;) {
        int n = (int)(n_ids - done < (size_t)w->n_batch ? n_ids - done : (size_t)w->n_batch);
        qc_seg_t g = {x, 0, n, x->pos};
        qc_forward(m, w, &g, 1, ids + done, n);
        if (mode == QC_LOGITS_ALL)
            qc_forward_logits(m, w, w->xb, n, logits + done * c->n_vocab);
        else if (mode == QC_LOGITS_LAST && done + n == n_ids)
            qc_forward_logits(m, w, w->xb + (size_t)(n - 1) * c->n_embd, 1, logits);
        done += n;
    }
    return QC_OK;
}
