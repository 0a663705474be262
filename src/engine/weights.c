/* weights.c — binds the tensors of a safetensors set (or of a GGUF file,
 * through a name-mapping lookup) to the model's weight slots by their Hugging
 * Face names, checking each one's presence and shape against the
 * configuration before the forward pass may touch it. */
#include "engine/engine.h"
#include "engine/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== one tensor ==== */

static void fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* Finds `name` and checks it is [rows, cols] (or [cols] when rows == 0, a
 * vector) and that its rows fill whole blocks of its type. Fills *out;
 * vectors get rows = 1. Adds to the model's counts. */
static qc_status bind_one(qc_model_t *m, qc_tensor_find_fn find, const void *src, const char *name,
                          int64_t rows, int64_t cols, qc_tensor_t *out, char *err, size_t err_size) {
    qc_st_tensor_t buf;
    char label[160];
    snprintf(label, sizeof label, "%s", name);
    const qc_st_tensor_t *t = find(src, name, &buf, label, sizeof label);
    int ndim = rows ? 2 : 1;
    int64_t want[2] = {rows ? rows : cols, cols};
    char ws[64], hs[96];
    fmt_shape(ws, sizeof ws, ndim, want);
    if (!t) return qc_seterr(err, err_size, QC_ERR_FORMAT, "tensor %s %s is missing", label, ws);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        fmt_shape(hs, sizeof hs, t->ndim, t->shape);
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "tensor %s has shape %s, expected %s",
                         label, hs, ws);
    }
    if (qc_row_bytes(t->dtype, cols) == 0)
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "tensor %s: rows of %lld %s values do not fill whole blocks", label,
                         (long long)cols, qc_dtype_name(t->dtype));
    out->data = t->data;
    out->dtype = t->dtype;
    out->rows = rows ? rows : 1;
    out->cols = cols;
    /* shapes are bounded by the config (dims <= 2^24), so no overflow */
    m->n_params += out->rows * out->cols;
    m->weight_bytes += (int64_t)t->nbytes;
    return QC_OK;
}

static const qc_st_tensor_t *st_find(const void *src, const char *name, qc_st_tensor_t *buf, char *label,
                                     size_t label_cap) {
    (void)buf, (void)label, (void)label_cap;
    return qc_st_find(src, name);
}

/* ==== the whole model ==== */

qc_status qc_weights_bind(qc_model_t *m, const qc_st_t *st, char *err, size_t err_size) {
    return qc_weights_bind_from(m, st_find, st, err, err_size);
}

qc_status qc_weights_bind_from(qc_model_t *m, qc_tensor_find_fn find, const void *st, char *err,
                               size_t err_size) {
    if (!m || !st) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_weights_bind: NULL argument");
    const qc_config_t *c = &m->cfg;
    if (c->n_layer <= 0 || c->n_embd <= 0 || c->n_vocab <= 0)
        return qc_seterr(err, err_size, QC_ERR_ARG, "qc_weights_bind: configuration not loaded");
    const int64_t E = c->n_embd, F = c->n_ff, V = c->n_vocab;
    const int64_t Q = (int64_t)c->n_head * c->head_dim, KV = (int64_t)c->n_head_kv * c->head_dim;
    const int64_t D = c->head_dim;
    qc_status s = QC_OK;
    char name[128];

    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory for layers");
    m->n_params = 0;
    m->weight_bytes = 0;

#define BIND(nm, r, cl, dst)                                               \
    do {                                                                   \
        s = bind_one(m, find, st, (nm), (r), (cl), (dst), err, err_size);  \
        if (s) goto fail;                                                  \
    } while (0)
#define BIND_L(suffix, r, cl, dst)                                         \
    do {                                                                   \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, (suffix));    \
        BIND(name, r, cl, dst);                                            \
    } while (0)

    BIND("model.embed_tokens.weight", V, E, &m->tok_embd);
    for (int l = 0; l < c->n_layer; l++) {
        qc_layer_t *L = &m->layers[l];
        BIND_L("input_layernorm.weight", 0, E, &L->attn_norm);
        BIND_L("self_attn.q_proj.weight", Q, E, &L->wq);
        BIND_L("self_attn.k_proj.weight", KV, E, &L->wk);
        BIND_L("self_attn.v_proj.weight", KV, E, &L->wv);
        if (c->qkv_bias) {
            BIND_L("self_attn.q_proj.bias", 0, Q, &L->bq);
            BIND_L("self_attn.k_proj.bias", 0, KV, &L->bk);
            BIND_L("self_attn.v_proj.bias", 0, KV, &L->bv);
        }
        if (c->qk_norm) {
            BIND_L("self_attn.q_norm.weight", 0, D, &L->q_norm);
            BIND_L("self_attn.k_norm.weight", 0, D, &L->k_norm);
        }
        BIND_L("self_attn.o_proj.weight", E, Q, &L->wo);
        BIND_L("post_attention_layernorm.weight", 0, E, &L->ffn_norm);
        BIND_L("mlp.gate_proj.weight", F, E, &L->w_gate);
        BIND_L("mlp.up_proj.weight", F, E, &L->w_up);
        BIND_L("mlp.down_proj.weight", E, F, &L->w_down);
    }
    BIND("model.norm.weight", 0, E, &m->out_norm);
    /* A separate lm_head wins even when the config says tied (transformers
     * would load it too); without one the embedding is reused. */
    qc_st_tensor_t buf;
    char label[160];
    if (find(st, "lm_head.weight", &buf, label, sizeof label)) {
        BIND("lm_head.weight", V, E, &m->lm_head);
    } else {
        m->lm_head = m->tok_embd;
    }
#undef BIND_L
#undef BIND
    return QC_OK;
fail:
    free(m->layers);
    m->layers = NULL;
    memset(&m->tok_embd, 0, sizeof m->tok_embd);
    memset(&m->out_norm, 0, sizeof m->out_norm);
    memset(&m->lm_head, 0, sizeof m->lm_head);
    m->n_params = 0;
    m->weight_bytes = 0;
    return s;
}
