/* model.c — loading a Qwen model and running its forward pass.
 *
 * The forward pass reads top to bottom like llama2.c's: embed, then per layer
 * RMSNorm → q/k/v (+bias, + per-head q/k RMSNorm for Qwen3) → NeoX RoPE →
 * grouped-query attention over the KV cache → o_proj → residual → RMSNorm →
 * SwiGLU MLP → residual; final RMSNorm and lm_head. All arithmetic is F32;
 * weights stay in their file format (BF16/F16/F32) and are converted row by
 * row inside the matrix products. Every buffer is allocated in qc_ctx_new. */
#include "engine/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== model loading ==== */

/* Adds id to the model's end-of-generation list unless present or negative. */
static void add_eog(qc_model_t *m, int32_t id) {
    if (id < 0) return;
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return;
    if (m->n_eog < QC_MAX_EOG) m->eog[m->n_eog++] = id;
}

qc_status qc_model_load(const char *dir, const qc_model_opts_t *opts, qc_model_t **out,
                        char *err, size_t err_size) {
    (void)opts;
    *out = NULL;
    qc_status st = QC_ERR_NOMEM;
    char *path = NULL;
    qc_model_t *m = calloc(1, sizeof *m);
    if (!m) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");

    if (!(path = qc_path_join(dir, "config.json"))) goto oom;
    if ((st = qc_config_load(path, &m->cfg, err, err_size))) goto fail;
    free(path);
    if (!(path = qc_path_join(dir, "generation_config.json"))) goto oom;
    if ((st = qc_genconfig_load(path, &m->gen, err, err_size))) goto fail;
    free(path);
    path = NULL;

    if ((st = qc_st_open_dir(dir, &m->st, err, err_size))) goto fail;
    if ((st = qc_weights_bind(m, m->st, err, err_size))) goto fail;

    if (!(path = qc_path_join(dir, "tokenizer.json"))) goto oom;
    if ((st = qc_tokenizer_load(path, &m->tok, err, err_size))) goto fail;
    free(path);
    path = NULL;
    if (qc_tokenizer_n_tokens(m->tok) > m->cfg.n_vocab) {
        st = qc_seterr(err, err_size, QC_ERR_FORMAT,
                       "%s: tokenizer has %d tokens but config.json vocab_size is %d", dir,
                       (int)qc_tokenizer_n_tokens(m->tok), m->cfg.n_vocab);
        goto fail;
    }

    add_eog(m, qc_tokenizer_find(m->tok, "<|im_end|>"));
    add_eog(m, qc_tokenizer_find(m->tok, "<|endoftext|>"));
    for (int i = 0; i < m->cfg.n_eos; i++) add_eog(m, m->cfg.eos_ids[i]);
    for (int i = 0; i < m->gen.n_eos; i++) add_eog(m, m->gen.eos_ids[i]);
    *out = m;
    return QC_OK;

oom:
    st = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory loading %s", dir);
fail:
    free(path);
    qc_model_free(m);
    return st;
}

void qc_model_free(qc_model_t *m) {
    if (!m) return;
    qc_tokenizer_free(m->tok);
    qc_st_close(m->st);
    free(m->layers);
    free(m);
}

const qc_tokenizer_t *qc_model_tokenizer(const qc_model_t *m) { return m->tok; }
int32_t qc_model_n_vocab(const qc_model_t *m) { return m->cfg.n_vocab; }
int qc_model_n_ctx_train(const qc_model_t *m) { return m->cfg.n_ctx_train; }
qc_arch_t qc_model_arch(const qc_model_t *m) { return m->cfg.arch; }
int64_t qc_model_n_params(const qc_model_t *m) { return m->n_params; }
int64_t qc_model_weight_bytes(const qc_model_t *m) { return m->weight_bytes; }

int qc_model_is_eog(const qc_model_t *m, int32_t id) {
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return 1;
    return 0;
}

void qc_model_sampling_defaults(const qc_model_t *m, qc_sampling_t *out) { *out = m->gen.sampling; }

/* ==== kernels ==== */

/* Converts n elements of a weight row (any dtype) to F32. */
static void row_to_f32(const qc_tensor_t *w, int64_t row, float *dst) {
    int64_t n = w->cols;
    switch (w->dtype) {
    case QC_DTYPE_F32:
        memcpy(dst, (const float *)w->data + row * n, (size_t)n * sizeof(float));
        break;
    case QC_DTYPE_BF16: {
        const uint16_t *s = (const uint16_t *)w->data + row * n;
        for (int64_t i = 0; i < n; i++) dst[i] = qc_bf16_to_f32(s[i]);
        break;
    }
    case QC_DTYPE_F16: {
        const uint16_t *s = (const uint16_t *)w->data + row * n;
        for (int64_t i = 0; i < n; i++) dst[i] = qc_f16_to_f32(s[i]);
        break;
    }
    default:
        break;
    }
}

/* Dot product with eight partial sums (so the compiler can vectorize it). */
static float dot_f32(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tok, r < rows.
 * x: [n_tok][ldx], y: [n_tok][ldy]. Each weight row is converted once and
 * used for every token, so prefill reads the weights once per chunk.
 * rowbuf: scratch of w->cols floats. */
static void matmul(const qc_tensor_t *w, const float *x, int64_t ldx, int n_tok, float *y,
                   int64_t ldy, float *rowbuf) {
    for (int64_t r = 0; r < w->rows; r++) {
        const float *wr;
        if (w->dtype == QC_DTYPE_F32) {
            wr = (const float *)w->data + r * w->cols;
        } else {
            row_to_f32(w, r, rowbuf);
            wr = rowbuf;
        }
        for (int t = 0; t < n_tok; t++) y[t * ldy + r] = dot_f32(wr, x + t * ldx, w->cols);
    }
}

/* out = x / sqrt(mean(x^2) + eps) * weight, over n elements (sum in double). */
static void rmsnorm(float *out, const float *x, const qc_tensor_t *weight, int n, float eps,
                    float *wbuf) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    row_to_f32(weight, 0, wbuf);
    for (int i = 0; i < n; i++) out[i] = (x[i] * scale) * wbuf[i];
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

static float silu(float x) { return x / (1.0f + expf(-x)); }

/* ==== context ==== */

struct qc_ctx {
    const qc_model_t *m;
    int n_ctx, n_batch, pos;
    int q_dim, kv_dim;
    float *k_cache, *v_cache; /* [n_layer][n_ctx][kv_dim] */
    float *x, *xb;            /* [n_batch][n_embd] */
    float *q;                 /* [n_batch][q_dim] */
    float *k, *v;             /* [n_batch][kv_dim] */
    float *att_out;           /* [n_batch][q_dim] */
    float *hb, *hb2;          /* [n_batch][n_ff] */
    float *scores;            /* [n_ctx] */
    float *rowbuf;            /* [max(n_embd, n_ff, q_dim)] */
    float *normw;             /* [max(n_embd, head_dim)] */
    float *cos_t, *sin_t;     /* [n_batch][head_dim/2] */
    double *inv_freq;         /* [head_dim/2] */
    float *logits;            /* [n_vocab], for qc_generate */
    char err[256];
};

qc_ctx_t *qc_ctx_new(const qc_model_t *m, int n_ctx, const qc_ctx_opts_t *opts) {
    const qc_config_t *c = &m->cfg;
    if (n_ctx <= 0) n_ctx = c->n_ctx_train < 4096 ? c->n_ctx_train : 4096;
    int n_batch = opts && opts->n_batch > 0 ? opts->n_batch : 64;
    qc_ctx_t *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->m = m;
    x->n_ctx = n_ctx;
    x->n_batch = n_batch;
    x->q_dim = c->n_head * c->head_dim;
    x->kv_dim = c->n_head_kv * c->head_dim;
    size_t cache = (size_t)c->n_layer * n_ctx * x->kv_dim;
    int widest = c->n_embd > c->n_ff ? c->n_embd : c->n_ff;
    if (x->q_dim > widest) widest = x->q_dim;
    int half = c->head_dim / 2;
    /* calloc'd pages stay untouched until used, so a large n_ctx costs
     * address space, not memory, until the sequence grows. */
    x->k_cache = calloc(cache, sizeof(float));
    x->v_cache = calloc(cache, sizeof(float));
    x->x = calloc((size_t)n_batch * c->n_embd, sizeof(float));
    x->xb = calloc((size_t)n_batch * c->n_embd, sizeof(float));
    x->q = calloc((size_t)n_batch * x->q_dim, sizeof(float));
    x->k = calloc((size_t)n_batch * x->kv_dim, sizeof(float));
    x->v = calloc((size_t)n_batch * x->kv_dim, sizeof(float));
    x->att_out = calloc((size_t)n_batch * x->q_dim, sizeof(float));
    x->hb = calloc((size_t)n_batch * c->n_ff, sizeof(float));
    x->hb2 = calloc((size_t)n_batch * c->n_ff, sizeof(float));
    x->scores = calloc((size_t)n_ctx, sizeof(float));
    x->rowbuf = calloc((size_t)widest, sizeof(float));
    x->normw = calloc((size_t)(c->n_embd > c->head_dim ? c->n_embd : c->head_dim), sizeof(float));
    x->cos_t = calloc((size_t)n_batch * half, sizeof(float));
    x->sin_t = calloc((size_t)n_batch * half, sizeof(float));
    x->inv_freq = calloc((size_t)half, sizeof(double));
    x->logits = calloc((size_t)c->n_vocab, sizeof(float));
    if (!x->k_cache || !x->v_cache || !x->x || !x->xb || !x->q || !x->k || !x->v ||
        !x->att_out || !x->hb || !x->hb2 || !x->scores || !x->rowbuf || !x->normw ||
        !x->cos_t || !x->sin_t || !x->inv_freq || !x->logits) {
        qc_ctx_free(x);
        return NULL;
    }
    for (int i = 0; i < half; i++)
        x->inv_freq[i] = pow((double)c->rope_theta, -2.0 * i / c->head_dim);
    return x;
}

void qc_ctx_free(qc_ctx_t *x) {
    if (!x) return;
    free(x->k_cache); free(x->v_cache);
    free(x->x); free(x->xb); free(x->q); free(x->k); free(x->v); free(x->att_out);
    free(x->hb); free(x->hb2); free(x->scores); free(x->rowbuf); free(x->normw);
    free(x->cos_t); free(x->sin_t); free(x->inv_freq); free(x->logits);
    free(x);
}

int qc_ctx_pos(const qc_ctx_t *x) { return x->pos; }
int qc_ctx_size(const qc_ctx_t *x) { return x->n_ctx; }
const char *qc_ctx_errmsg(const qc_ctx_t *x) { return x->err; }

qc_status qc_ctx_truncate(qc_ctx_t *x, int n) {
    if (n < 0 || n > x->pos)
        return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "truncate to %d: sequence has %d tokens", n, x->pos);
    x->pos = n;
    return QC_OK;
}

/* ==== forward pass ==== */

/* Attention of n_tok new tokens (at positions pos0..) of one layer: their
 * k/v are already in the cache; each token sees the cache up to itself. */
static void attention(qc_ctx_t *x, int layer, int n_tok, int pos0) {
    const qc_config_t *c = &x->m->cfg;
    int hd = c->head_dim, group = c->n_head / c->n_head_kv;
    const float *kc = x->k_cache + (size_t)layer * x->n_ctx * x->kv_dim;
    const float *vc = x->v_cache + (size_t)layer * x->n_ctx * x->kv_dim;
    float scale = 1.0f / sqrtf((float)hd);
    for (int t = 0; t < n_tok; t++) {
        int n_seen = pos0 + t + 1;
        for (int h = 0; h < c->n_head; h++) {
            const float *q = x->q + (size_t)t * x->q_dim + h * hd;
            int kvh = h / group;
            float mx = -INFINITY;
            for (int j = 0; j < n_seen; j++) {
                float s = dot_f32(q, kc + (size_t)j * x->kv_dim + kvh * hd, hd) * scale;
                x->scores[j] = s;
                if (s > mx) mx = s;
            }
            double sum = 0;
            for (int j = 0; j < n_seen; j++) {
                x->scores[j] = expf(x->scores[j] - mx);
                sum += x->scores[j];
            }
            float inv = (float)(1.0 / sum);
            float *o = x->att_out + (size_t)t * x->q_dim + h * hd;
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int j = 0; j < n_seen; j++) {
                float p = x->scores[j] * inv;
                const float *v = vc + (size_t)j * x->kv_dim + kvh * hd;
                for (int i = 0; i < hd; i++) o[i] += p * v[i];
            }
        }
    }
}

/* Adds a bias vector to n_tok rows of width n. */
static void add_bias(float *y, int n_tok, int n, const qc_tensor_t *b, float *buf) {
    row_to_f32(b, 0, buf);
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += buf[i];
}

/* Runs n_tok (<= n_batch) tokens through the model at positions pos..,
 * leaving the final hidden states, normalized, in x->xb. */
static void forward_chunk(qc_ctx_t *x, const int32_t *ids, int n_tok) {
    const qc_model_t *m = x->m;
    const qc_config_t *c = &m->cfg;
    int d = c->n_embd, hd = c->head_dim, half = hd / 2, pos0 = x->pos;

    for (int t = 0; t < n_tok; t++) row_to_f32(&m->tok_embd, ids[t], x->x + (size_t)t * d);
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < half; i++) {
            double a = (double)(pos0 + t) * x->inv_freq[i];
            x->cos_t[t * half + i] = (float)cos(a);
            x->sin_t[t * half + i] = (float)sin(a);
        }

    for (int l = 0; l < c->n_layer; l++) {
        const qc_layer_t *L = &m->layers[l];
        for (int t = 0; t < n_tok; t++)
            rmsnorm(x->xb + (size_t)t * d, x->x + (size_t)t * d, &L->attn_norm, d, c->rms_eps, x->normw);
        matmul(&L->wq, x->xb, d, n_tok, x->q, x->q_dim, x->rowbuf);
        matmul(&L->wk, x->xb, d, n_tok, x->k, x->kv_dim, x->rowbuf);
        matmul(&L->wv, x->xb, d, n_tok, x->v, x->kv_dim, x->rowbuf);
        if (c->qkv_bias) {
            add_bias(x->q, n_tok, x->q_dim, &L->bq, x->rowbuf);
            add_bias(x->k, n_tok, x->kv_dim, &L->bk, x->rowbuf);
            add_bias(x->v, n_tok, x->kv_dim, &L->bv, x->rowbuf);
        }
        for (int t = 0; t < n_tok; t++) {
            const float *ct = x->cos_t + t * half, *st = x->sin_t + t * half;
            for (int h = 0; h < c->n_head; h++) {
                float *q = x->q + (size_t)t * x->q_dim + h * hd;
                if (c->qk_norm) rmsnorm(q, q, &L->q_norm, hd, c->rms_eps, x->normw);
                rope(q, hd, ct, st);
            }
            for (int h = 0; h < c->n_head_kv; h++) {
                float *k = x->k + (size_t)t * x->kv_dim + h * hd;
                if (c->qk_norm) rmsnorm(k, k, &L->k_norm, hd, c->rms_eps, x->normw);
                rope(k, hd, ct, st);
            }
            size_t off = ((size_t)l * x->n_ctx + pos0 + t) * x->kv_dim;
            memcpy(x->k_cache + off, x->k + (size_t)t * x->kv_dim, (size_t)x->kv_dim * sizeof(float));
            memcpy(x->v_cache + off, x->v + (size_t)t * x->kv_dim, (size_t)x->kv_dim * sizeof(float));
        }
        attention(x, l, n_tok, pos0);
        matmul(&L->wo, x->att_out, x->q_dim, n_tok, x->xb, d, x->rowbuf);
        for (size_t i = 0; i < (size_t)n_tok * d; i++) x->x[i] += x->xb[i];

        for (int t = 0; t < n_tok; t++)
            rmsnorm(x->xb + (size_t)t * d, x->x + (size_t)t * d, &L->ffn_norm, d, c->rms_eps, x->normw);
        matmul(&L->w_gate, x->xb, d, n_tok, x->hb, c->n_ff, x->rowbuf);
        matmul(&L->w_up, x->xb, d, n_tok, x->hb2, c->n_ff, x->rowbuf);
        for (size_t i = 0; i < (size_t)n_tok * c->n_ff; i++) x->hb[i] = silu(x->hb[i]) * x->hb2[i];
        matmul(&L->w_down, x->hb, c->n_ff, n_tok, x->xb, d, x->rowbuf);
        for (size_t i = 0; i < (size_t)n_tok * d; i++) x->x[i] += x->xb[i];
    }
    for (int t = 0; t < n_tok; t++)
        rmsnorm(x->xb + (size_t)t * d, x->x + (size_t)t * d, &m->out_norm, d, c->rms_eps, x->normw);
    x->pos += n_tok;
}

qc_status qc_ctx_eval(qc_ctx_t *x, const int32_t *ids, size_t n_ids, float *logits, int mode) {
    const qc_config_t *c = &x->m->cfg;
    if (mode != QC_LOGITS_NONE && mode != QC_LOGITS_LAST && mode != QC_LOGITS_ALL)
        return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "bad logits mode %d", mode);
    if (mode != QC_LOGITS_NONE && !logits)
        return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "no logits buffer");
    if (n_ids == 0) return mode == QC_LOGITS_NONE ? QC_OK : qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "no tokens to evaluate");
    if (n_ids > (size_t)(x->n_ctx - x->pos))
        return qc_seterr(x->err, sizeof x->err, QC_ERR_CONTEXT,
                         "%zu tokens do not fit: %d of %d context positions used", n_ids, x->pos, x->n_ctx);
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= c->n_vocab)
            return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "token id %d out of range [0, %d)", (int)ids[i], c->n_vocab);

    for (size_t done = 0; done < n_ids;) {
        int n = (int)(n_ids - done < (size_t)x->n_batch ? n_ids - done : (size_t)x->n_batch);
        forward_chunk(x, ids + done, n);
        if (mode == QC_LOGITS_ALL) {
            matmul(&x->m->lm_head, x->xb, c->n_embd, n, logits + done * c->n_vocab, c->n_vocab, x->rowbuf);
        } else if (mode == QC_LOGITS_LAST && done + n == n_ids) {
            matmul(&x->m->lm_head, x->xb + (size_t)(n - 1) * c->n_embd, c->n_embd, 1, logits, c->n_vocab, x->rowbuf);
        }
        done += n;
    }
    return QC_OK;
}

/* ==== generation ==== */

qc_status qc_generate(qc_ctx_t *x, const int32_t *prompt, size_t n_prompt,
                      const qc_generate_opts_t *opts, qc_token_cb cb, void *user,
                      int32_t *out_ids, size_t *n_out) {
    const qc_model_t *m = x->m;
    *n_out = 0;
    if (opts->max_tokens <= 0) return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "max_tokens must be > 0");
    qc_status st;
    size_t n_hist = 0, cap = n_prompt + (size_t)opts->max_tokens;
    int32_t *hist = malloc(cap * sizeof *hist);
    qc_sampler_t *s = qc_sampler_new(m->cfg.n_vocab, &opts->sampling);
    if (!hist || !s) {
        st = qc_seterr(x->err, sizeof x->err, QC_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(hist, prompt, n_prompt * sizeof *hist);
    n_hist = n_prompt;
    if ((st = qc_ctx_eval(x, prompt, n_prompt, x->logits, QC_LOGITS_LAST))) goto done;

    qc_detok_t dt;
    qc_detok_init(&dt);
    char piece[512];
    for (int i = 0; i < opts->max_tokens; i++) {
        int32_t id = qc_sampler_sample(s, x->logits, hist, n_hist);
        if (qc_model_is_eog(m, id)) break;
        hist[n_hist++] = id;
        if (out_ids) out_ids[*n_out] = id;
        (*n_out)++;
        long len = qc_detok_push(&dt, m->tok, id, piece, sizeof piece);
        if (len < 0) len = 0, piece[0] = 0;
        if (cb && cb(user, id, piece, (size_t)len)) break;
        if (i + 1 == opts->max_tokens || x->pos >= x->n_ctx) break;
        if ((st = qc_ctx_eval(x, &id, 1, x->logits, QC_LOGITS_LAST))) goto done;
    }
    long len = qc_detok_flush(&dt, piece, sizeof piece);
    if (len > 0 && cb) cb(user, -1, piece, (size_t)len);
    st = QC_OK;
done:
    qc_sampler_free(s);
    free(hist);
    return st;
}
