/* weights.c — the model's weights: binds the tensors of a safetensors set
 * (or of a GGUF file, through a name-mapping lookup) to the model's weight
 * slots by their Hugging Face names, checking each one's presence and shape
 * against the configuration before the forward pass may touch it; then
 * keeps them as stored or converts them, once at load, to a type asked for. */
#include "engine/model_impl.h"
#include "engine/kernels.h"
#include "engine/kernels_impl.h"
#include "engine/threads.h"

#include <sys/mman.h>
#include <unistd.h>

#include <stdatomic.h>
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

/* ==== weight conversion at load ==== */

typedef struct {
    const qc_tensor_t *src;
    qc_dtype_t to;
    void *dst;
    size_t row_bytes;
    long r0, r1;     /* rows of this pass */
    atomic_int nomem; /* a worker could not allocate its row buffer: its rows are not written */
} convert_job_t;

/* Tests: the next n row buffers of the conversion workers are not
 * allocated (qc_weights_test_fail_rows). */
static atomic_int fail_rows;

void qc_weights_test_fail_rows(int n) { atomic_store(&fail_rows, n); }

static float *row_alloc(size_t n) {
    int k = atomic_load(&fail_rows);
    while (k > 0 && !atomic_compare_exchange_weak(&fail_rows, &k, k - 1)) {}
    return k > 0 ? NULL : malloc(n);
}

static void convert_task(void *arg, int ith, int nth) {
    convert_job_t *j = arg;
    long lo, hi;
    qc_split(j->r1 - j->r0, ith, nth, 64, &lo, &hi);
    lo += j->r0;
    hi += j->r0;
    if (lo >= hi) return;
    float *row = row_alloc((size_t)j->src->cols * sizeof *row);
    if (!row) { /* convert_tensor fails the load */
        atomic_store(&j->nomem, 1);
        return;
    }
    for (long r = lo; r < hi; r++) {
        qc_dequantize_row(j->src, r, row);
        char *d = (char *)j->dst + (size_t)r * j->row_bytes;
        if (j->to == QC_DTYPE_F32) {
            memcpy(d, row, (size_t)j->src->cols * sizeof *row);
        } else if (j->to == QC_DTYPE_BF16 || j->to == QC_DTYPE_F16) {
            for (int64_t c = 0; c < j->src->cols; c++) {
                const uint16_t h = j->to == QC_DTYPE_BF16 ? qc_f32_to_bf16(row[c]) : qc_f32_to_f16(row[c]);
                memcpy(d + 2 * c, &h, 2);
            }
        } else {
            qc_quantize_row(j->to, row, d, j->src->cols);
        }
    }
    free(row);
}

void qc_drop_pages(const void *p, size_t n) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), b = ((uintptr_t)p + page - 1) & ~(page - 1),
              e = ((uintptr_t)p + n) & ~(page - 1);
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}

/* Converts tensor *t to type `to` into a new buffer owned by the model, in
 * passes of a few thousand rows, dropping each pass's mmapped source pages
 * so that peak memory stays near the converted size (the embedding alone is
 * 300 MB in BF16 for a 0.5B model). Tensors whose rows do not fit the block
 * size stay as they are. */
static qc_status convert_tensor(qc_model_t *m, qc_tensor_t *t, qc_dtype_t to, char *err, size_t err_size) {
    if (t->dtype == to) return QC_OK;
    size_t rb = qc_row_bytes(to, t->cols);
    if (rb == 0) return QC_OK; /* e.g. cols % 32 != 0: keep the original */
    if (m->n_owned == QC_MAX_OWNED)
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "too many converted tensors");
    void *buf = NULL;
    if (posix_memalign(&buf, 64, rb * (size_t)t->rows) != 0)
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory converting weights to %s", qc_dtype_name(to));
    size_t src_rb = qc_row_bytes(t->dtype, t->cols);
    const long pass = 4096;
    for (long r = 0; r < (long)t->rows; r += pass) {
        convert_job_t j = {t, to, buf, rb, r, r + pass < (long)t->rows ? r + pass : (long)t->rows, 0};
        qc_pool_run(m->pool, convert_task, &j);
        if (atomic_load(&j.nomem)) { /* rows left unwritten: the model must not load */
            free(buf);
            return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory converting weights to %s",
                             qc_dtype_name(to));
        }
        qc_drop_pages((const char *)t->data + (size_t)j.r0 * src_rb, (size_t)(j.r1 - j.r0) * src_rb);
    }
    m->owned[m->n_owned++] = buf;
    t->data = buf;
    t->dtype = to;
    return QC_OK;
}

/* A vector already F32 in the mapping (a GGUF's norms and biases) copied
 * into a buffer of the model's, its pages dropped: read at every step, a
 * few KB each, they would otherwise keep mapped whatever the file system
 * maps with them (whole 2 MiB folios of the weights next to them, ~100 MB
 * of a 0.5B model after its matrices went to panels). */
static qc_status own_vector(qc_model_t *m, qc_tensor_t *t, char *err, size_t err_size) {
    for (int k = 0; k < m->n_owned; k++)
        if (m->owned[k] == t->data) return QC_OK;
    if (m->n_owned == QC_MAX_OWNED) return qc_seterr(err, err_size, QC_ERR_NOMEM, "too many weight buffers");
    const size_t n = qc_row_bytes(t->dtype, t->cols) * (size_t)t->rows;
    void *buf = NULL;
    if (posix_memalign(&buf, 64, n ? n : 64) != 0) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    memcpy(buf, t->data, n);
    qc_drop_pages(t->data, n);
    m->owned[m->n_owned++] = buf;
    t->data = buf;
    return QC_OK;
}

/* Brings every matrix to the requested type. As stored (to < 0: a GGUF's
 * default): every matrix stays in the mapping, in its file's type, which
 * the kernels multiply as it is. Otherwise: all of them for the float types
 * (F32, BF16, F16); the layer matrices to Q8_0/Q4_0 and the embedding/lm_head
 * to Q8_0 for the quantized types (the output layer is the most sensitive
 * to 4 bits, as llama.cpp also keeps it at higher precision). A tensor
 * already of the target type stays in place. m->n_converted counts the
 * matrices whose type changed. */
qc_status qc_weights_convert(qc_model_t *m, int to_type, char *err, size_t err_size) {
    qc_status st;
    /* Norm weights and biases (small vectors) are read as F32 by the forward
     * pass whatever the matrices are. */
    if ((st = convert_tensor(m, &m->out_norm, QC_DTYPE_F32, err, err_size)) ||
        (st = own_vector(m, &m->out_norm, err, err_size)))
        return st;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        qc_layer_t *L = &m->layers[l];
        qc_tensor_t *vecs[] = {&L->attn_norm, &L->ffn_norm, &L->bq, &L->bk, &L->bv, &L->q_norm, &L->k_norm};
        for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
            if (vecs[i]->data && ((st = convert_tensor(m, vecs[i], QC_DTYPE_F32, err, err_size)) ||
                                  (st = own_vector(m, vecs[i], err, err_size))))
                return st;
    }
    m->n_converted = 0;
    if (to_type < 0) return QC_OK;
    const qc_dtype_t to = (qc_dtype_t)to_type;
    int tied = m->lm_head.data == m->tok_embd.data;
    const int is_float = to == QC_DTYPE_F32 || to == QC_DTYPE_BF16 || to == QC_DTYPE_F16;
    qc_dtype_t outer = is_float ? to : QC_DTYPE_Q8_0;
    qc_tensor_t *outs[] = {&m->tok_embd, &m->lm_head};
    for (int i = 0; i < 2 - tied; i++) {
        const qc_dtype_t was = outs[i]->dtype;
        if ((st = convert_tensor(m, outs[i], outer, err, err_size))) return st;
        m->n_converted += outs[i]->dtype != was;
    }
    if (tied) m->lm_head = m->tok_embd;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        qc_layer_t *L = &m->layers[l];
        qc_tensor_t *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            const qc_dtype_t was = mats[i]->dtype;
            if ((st = convert_tensor(m, mats[i], to, err, err_size))) return st;
            m->n_converted += mats[i]->dtype != was;
        }
    }
    if (!m->n_converted) return QC_OK;
    m->weight_bytes = 0;
    m->weight_bytes += (int64_t)(qc_row_bytes(m->tok_embd.dtype, m->tok_embd.cols) * m->tok_embd.rows);
    if (!tied) m->weight_bytes += (int64_t)(qc_row_bytes(m->lm_head.dtype, m->lm_head.cols) * m->lm_head.rows);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const qc_layer_t *L = &m->layers[l];
        const qc_tensor_t *all[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->bq, &L->bk, &L->bv, &L->q_norm,
                                    &L->k_norm, &L->wo, &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            if (all[i]->data) m->weight_bytes += (int64_t)(qc_row_bytes(all[i]->dtype, all[i]->cols) * all[i]->rows);
    }
    return QC_OK;
}

/* ==== panels ==== */

typedef struct {
    const qc_panel_ops_t *ops;
    const qc_tensor_t *t;
    void *out;
} panel_job_t;

static void panel_task(void *arg, int ith, int nth) {
    const panel_job_t *j = arg;
    long lo, hi;
    qc_split((long)(j->t->rows / j->ops->rows), ith, nth, 1, &lo, &hi);
    if (lo < hi) j->ops->make(j->t, j->out, lo, hi);
}

qc_status qc_weights_panel(qc_model_t *m, char *err, size_t err_size) {
    const qc_panel_ops_t *ops = qc_kernels_for(qc_cpu_level())->panel;
    const char *env = getenv("QCARE_PANELS");
    if (!ops || (env && !strcmp(env, "0"))) return QC_OK;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        qc_layer_t *L = &m->layers[l];
        qc_tensor_t *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            qc_tensor_t *t = mats[i];
            const size_t n = ops->bytes(t);
            if (!n) continue;
            if (m->n_owned == QC_MAX_OWNED) return qc_seterr(err, err_size, QC_ERR_NOMEM, "too many weight buffers");
            void *buf = NULL;
            if (posix_memalign(&buf, 64, n) != 0)
                return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory rearranging the weights");
            panel_job_t j = {ops, t, buf};
            qc_pool_run(m->pool, panel_task, &j);
            /* the source: a converted buffer is freed; mapped file pages are
             * dropped (they stay readable, faulted in again if touched) */
            int owned = -1;
            for (int k = 0; k < m->n_owned; k++)
                if (m->owned[k] == t->data) owned = k;
            if (owned >= 0) {
                free(m->owned[owned]);
                m->owned[owned] = buf;
                t->data = NULL;
            } else {
                qc_drop_pages(t->data, qc_row_bytes(t->dtype, t->cols) * (size_t)t->rows);
                m->owned[m->n_owned++] = buf;
            }
            t->panel = buf;
            t->panel_ops = ops;
        }
    }
    return QC_OK;
}
