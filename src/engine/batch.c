/* batch.c — several sequences in one forward pass (qc_batch_eval, the
 * engine side of the server's continuous batching): the sequences' new
 * tokens are laid side by side in one workspace, each run at its own
 * context's positions, and only the logits asked for are computed. */
#include "engine/model_impl.h"
#include "engine/kernels.h"
#include "engine/threads.h"

#include <stdlib.h>
#include <string.h>

struct qc_batch {
    const qc_model_t *m;
    qc_work_t w;
    int32_t *ids;  /* [n_batch] */
    qc_seg_t *seg;    /* [n_batch] */
    float *last;   /* [n_batch][n_embd]: the hidden states whose logits are wanted */
    float *out;    /* [out_rows][n_vocab], grown to the most logits one pass wanted */
    int out_rows;
    char err[256];
};

qc_batch_t *qc_batch_new(const qc_model_t *m, int n_tokens) {
    if (n_tokens <= 0) return NULL;
    qc_batch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->m = m;
    b->ids = malloc((size_t)n_tokens * sizeof *b->ids);
    b->seg = malloc((size_t)n_tokens * sizeof *b->seg);
    b->last = malloc((size_t)n_tokens * m->cfg.n_embd * sizeof(float));
    if (!b->ids || !b->seg || !b->last || qc_work_init(&b->w, m, n_tokens, 1)) {
        qc_batch_free(b);
        return NULL;
    }
    return b;
}

void qc_batch_free(qc_batch_t *b) {
    if (!b) return;
    qc_work_free(&b->w);
    free(b->ids); free(b->seg); free(b->last); free(b->out);
    free(b);
}

const char *qc_batch_errmsg(const qc_batch_t *b) { return b->err; }

qc_status qc_batch_eval(qc_batch_t *b, qc_ctx_t *const *ctxs, const int32_t *const *ids, const int *n_ids,
                        float *const *logits, int n_seq) {
    const qc_model_t *m = b->m;
    const qc_config_t *c = &m->cfg;
    int total = 0, n_scores = 1;
    if (n_seq <= 0) return qc_seterr(b->err, sizeof b->err, QC_ERR_ARG, "no sequences to evaluate");
    for (int i = 0; i < n_seq; i++) {
        qc_ctx_t *x = ctxs[i];
        if (!x || x->m != m || n_ids[i] <= 0)
            return qc_seterr(b->err, sizeof b->err, QC_ERR_ARG, "sequence %d: no tokens or another model", i);
        for (int k = 0; k < i; k++)
            if (ctxs[k] == x) return qc_seterr(b->err, sizeof b->err, QC_ERR_ARG, "sequence %d appears twice", i);
        qc_status st = qc_ctx_check_ids(x, ids[i], (size_t)n_ids[i]);
        if (st) return qc_seterr(b->err, sizeof b->err, st, "sequence %d: %s", i, x->err);
        if (n_ids[i] > b->w.n_batch - total)
            return qc_seterr(b->err, sizeof b->err, QC_ERR_ARG, "more than %d tokens in one batch", b->w.n_batch);
        b->seg[i] = (qc_seg_t){x, total, n_ids[i], x->pos};
        memcpy(b->ids + total, ids[i], (size_t)n_ids[i] * sizeof *b->ids);
        total += n_ids[i];
        if (x->n_ctx * QC_ATT_QB > n_scores) n_scores = x->n_ctx * QC_ATT_QB; /* a block of queries' scores */
    }
    if (n_scores > b->w.n_scores) { /* attention scores for the longest sequence */
        float *sc = calloc((size_t)qc_pool_size(m->pool) * n_scores, sizeof(float));
        if (!sc) return qc_seterr(b->err, sizeof b->err, QC_ERR_NOMEM, "out of memory");
        free(b->w.scores);
        b->w.scores = sc;
        b->w.n_scores = n_scores;
    }
    int want = 0;
    for (int i = 0; i < n_seq; i++) want += logits && logits[i];
    if (want > b->out_rows) {
        float *o = realloc(b->out, (size_t)want * c->n_vocab * sizeof(float));
        if (!o) return qc_seterr(b->err, sizeof b->err, QC_ERR_NOMEM, "out of memory");
        b->out = o;
        b->out_rows = want;
    }
    qc_forward(m, &b->w, b->seg, n_seq, b->ids, total);
    int n_out = 0;
    for (int i = 0; i < n_seq; i++)
        if (logits && logits[i])
            memcpy(b->last + (size_t)n_out++ * c->n_embd,
                   b->w.xb + (size_t)(b->seg[i].t0 + b->seg[i].n_tok - 1) * c->n_embd, c->n_embd * sizeof(float));
    if (n_out) {
        qc_forward_logits(m, &b->w, b->last, n_out, b->out);
        n_out = 0;
        for (int i = 0; i < n_seq; i++)
            if (logits && logits[i])
                memcpy(logits[i], b->out + (size_t)n_out++ * c->n_vocab, c->n_vocab * sizeof(float));
    }
    return QC_OK;
}
