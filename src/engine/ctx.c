/* ctx.c — a sequence's context: its KV cache (F16, mmapped so that pages
 * exist only once written), its view of a shared prefix, truncation, and the
 * scratch buffers of the forward pass (qc_work_t, also used by batch.c).
 * Evaluation is in forward.c. */
#include "engine/model_impl.h"
#include "engine/kernels.h"
#include "engine/threads.h"

#include <sys/mman.h>

#include <stdlib.h>
#include <string.h>

/* ==== scratch buffers ==== */

void qc_work_free(qc_work_t *w) {
    if (w->att_out != w->hb) free(w->att_out);
    free(w->x); free(w->xb); free(w->q); free(w->k); free(w->v);
    free(w->hb); free(w->hb2); free(w->scores); free(w->act);
    free(w->cos_t); free(w->sin_t);
    memset(w, 0, sizeof *w);
}

int qc_work_init(qc_work_t *w, const qc_model_t *m, int n_batch, int n_scores) {
    const qc_config_t *c = &m->cfg;
    int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim, half = c->head_dim / 2;
    int widest = c->n_embd > c->n_ff ? c->n_embd : c->n_ff;
    if (q_dim > widest) widest = q_dim;
    memset(w, 0, sizeof *w);
    w->n_batch = n_batch;
    w->n_scores = n_scores * QC_ATT_QB; /* a block of queries' scores */
    w->x = calloc((size_t)n_batch * c->n_embd, sizeof(float));
    w->xb = calloc((size_t)n_batch * c->n_embd, sizeof(float));
    w->q = calloc((size_t)n_batch * q_dim, sizeof(float));
    w->k = calloc((size_t)n_batch * kv_dim, sizeof(float));
    w->v = calloc((size_t)n_batch * kv_dim, sizeof(float));
    w->hb = calloc((size_t)n_batch * c->n_ff, sizeof(float));
    /* the attention's output lives in hb where it fits: hb is free from
     * the FFN's last product to the next one's first, and the output
     * projection reads att_out before the gate writes hb (2 MB of a
     * 512-token batch of Qwen1.5-0.5B) */
    w->att_out = c->n_ff >= q_dim ? w->hb : calloc((size_t)n_batch * q_dim, sizeof(float));
    w->hb2 = calloc((size_t)n_batch * c->n_ff, sizeof(float));
    w->scores = calloc((size_t)qc_pool_size(m->pool) * w->n_scores, sizeof(float));
    /* calloc'd (mapped untouched) beyond a small size: a slot no weight
     * type of the model uses costs no memory */
    w->act_slot = qc_act_slot_bytes(n_batch, widest);
    w->act = calloc(QC_ACT_SLOTS * w->act_slot + 64, 1);
    w->cos_t = calloc((size_t)n_batch * half, sizeof(float));
    w->sin_t = calloc((size_t)n_batch * half, sizeof(float));
    if (!w->x || !w->xb || !w->q || !w->k || !w->v || !w->att_out || !w->hb || !w->hb2 || !w->scores || !w->act ||
        !w->cos_t || !w->sin_t) {
        qc_work_free(w);
        return -1;
    }
    return 0;
}

/* ==== the context ==== */

/* Zeroed memory of n bytes mapped straight from the kernel: its pages exist
 * only once written, so a large n_ctx costs address space, not memory,
 * until the sequence grows (malloc would not promise that once its mmap
 * threshold has grown in a long-running process). NULL on failure. */
static uint16_t *cache_map(size_t n) {
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

qc_ctx_t *qc_ctx_new(const qc_model_t *m, int n_ctx, const qc_ctx_opts_t *opts) {
    const qc_config_t *c = &m->cfg;
    if (n_ctx <= 0) n_ctx = c->n_ctx_train < 4096 ? c->n_ctx_train : 4096;
    qc_ctx_t *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->m = m;
    x->n_ctx = n_ctx;
    x->n_batch = opts && opts->n_batch > 0 ? opts->n_batch : 512;
    x->q_dim = c->n_head * c->head_dim;
    x->kv_dim = c->n_head_kv * c->head_dim;
    x->cache_bytes = (size_t)c->n_layer * n_ctx * x->kv_dim * sizeof(uint16_t);
    x->k_cache = cache_map(x->cache_bytes);
    x->v_cache = cache_map(x->cache_bytes);
    if (!x->k_cache || !x->v_cache) {
        qc_ctx_free(x);
        return NULL;
    }
    return x;
}

void qc_ctx_free(qc_ctx_t *x) {
    if (!x) return;
    if (x->k_cache) munmap(x->k_cache, x->cache_bytes ? x->cache_bytes : 1);
    if (x->v_cache) munmap(x->v_cache, x->cache_bytes ? x->cache_bytes : 1);
    free(x->logits);
    qc_work_free(&x->w);
    free(x);
}

void qc_ctx_trim(qc_ctx_t *x) {
    qc_work_free(&x->w);
    free(x->logits);
    x->logits = NULL;
}

int qc_ctx_pos(const qc_ctx_t *x) { return x->pos; }
int qc_ctx_size(const qc_ctx_t *x) { return x->n_ctx; }
const char *qc_ctx_errmsg(const qc_ctx_t *x) { return x->err; }

qc_status qc_ctx_truncate(qc_ctx_t *x, int n) {
    if (n < 0 || n > x->pos)
        return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "truncate to %d: sequence has %d tokens", n, x->pos);
    if (n < x->n_prefix) { /* cut into the shared prefix: keep a private copy of what remains */
        const qc_config_t *c = &x->m->cfg;
        for (int lh = 0; lh < c->n_layer * c->n_head_kv; lh++) {
            size_t src = (size_t)lh * x->prefix->n_ctx * c->head_dim, dst = (size_t)lh * x->n_ctx * c->head_dim;
            memcpy(x->k_cache + dst, x->prefix->k_cache + src, (size_t)n * c->head_dim * sizeof(uint16_t));
            memcpy(x->v_cache + dst, x->prefix->v_cache + src, (size_t)n * c->head_dim * sizeof(uint16_t));
        }
        x->prefix = NULL;
        x->n_prefix = 0;
    }
    x->pos = n;
    return QC_OK;
}

qc_status qc_ctx_set_prefix(qc_ctx_t *x, const qc_ctx_t *prefix) {
    if (!prefix) {
        x->prefix = NULL;
        x->n_prefix = 0;
        x->pos = 0;
        return QC_OK;
    }
    if (prefix->m != x->m || prefix->prefix || prefix->pos > x->n_ctx)
        return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG,
                         "a prefix must come from the same model, have no prefix itself and fit the context");
    x->prefix = prefix;
    x->n_prefix = prefix->pos;
    x->pos = prefix->pos;
    return QC_OK;
}
