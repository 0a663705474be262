/* model.c — loading a Qwen model and running its forward pass.
 *
 * The forward pass reads top to bottom like llama2.c's: embed, then per layer
 * RMSNorm → q/k/v (+bias, + per-head q/k RMSNorm for Qwen3) → NeoX RoPE →
 * grouped-query attention over the KV cache → o_proj → residual → RMSNorm →
 * SwiGLU MLP → residual; final RMSNorm and lm_head. All arithmetic is F32;
 * weights are kept as the file has them (BF16/F16/F32, or a GGUF's Q8_0/Q4_0,
 * used in place from the mmap) or converted once at load (F32, or quantized
 * to Q8_0/Q4_0; a GGUF's Q4_1/Q5_x/Q2_K..Q6_K always are), and the
 * kernels of kernels.c multiply them. Matrix products, attention and the
 * lm_head are split over the model's thread pool. qc_batch_eval runs the
 * same pass over several sequences at once (the server's batching). */
#include "engine/engine.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/threads.h"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ==== weight conversion at load ==== */

typedef struct {
    const qc_tensor_t *src;
    qc_dtype_t to;
    void *dst;
    size_t row_bytes;
    long r0, r1; /* rows of this pass */
} convert_job_t;

static void convert_task(void *arg, int ith, int nth) {
    convert_job_t *j = arg;
    long lo, hi;
    qc_split(j->r1 - j->r0, ith, nth, 64, &lo, &hi);
    lo += j->r0;
    hi += j->r0;
    float *row = malloc((size_t)j->src->cols * sizeof *row);
    if (!row) return; /* the caller checks the first bytes are written: see convert_tensor */
    for (long r = lo; r < hi; r++) {
        qc_dequantize_row(j->src, r, row);
        char *d = (char *)j->dst + (size_t)r * j->row_bytes;
        if (j->to == QC_DTYPE_F32) memcpy(d, row, (size_t)j->src->cols * sizeof *row);
        else qc_quantize_row(j->to, row, d, j->src->cols);
    }
    free(row);
}

/* Lets the kernel drop the mmapped pages of [p, p + n) (whole pages inside
 * it), so converted weights stop counting as resident memory. */
static void drop_pages(const void *p, size_t n) {
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
        convert_job_t j = {t, to, buf, rb, r, r + pass < (long)t->rows ? r + pass : (long)t->rows};
        qc_pool_run(m->pool, convert_task, &j);
        drop_pages((const char *)t->data + (size_t)j.r0 * src_rb, (size_t)(j.r1 - j.r0) * src_rb);
    }
    m->owned[m->n_owned++] = buf;
    t->data = buf;
    t->dtype = to;
    return QC_OK;
}

/* Parses a --dtype name: the type matrices are kept as. "bf16" keeps 16-bit
 * weights in place (BF16 or F16 as stored). */
static int parse_dtype(const char *s, qc_dtype_t *out) {
    static const struct { const char *name; qc_dtype_t t; } names[] = {
        {"f32", QC_DTYPE_F32}, {"bf16", QC_DTYPE_BF16}, {"q8_0", QC_DTYPE_Q8_0}, {"q4_0", QC_DTYPE_Q4_0}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name)) return *out = names[i].t, 1;
    return 0;
}

/* Whether the matrix kernels multiply this type: F32, F16, BF16, Q8_0, Q4_0
 * (the first five dtypes). A GGUF's other block types are only read. */
static int has_kernel(qc_dtype_t t) { return t <= QC_DTYPE_Q4_0; }

/* Brings every matrix to the requested type: all of them for f32; the layer
 * matrices to Q8_0/Q4_0 and the embedding/lm_head to Q8_0 for the quantized
 * types (the output layer is the most sensitive to 4 bits, as llama.cpp
 * also keeps it at higher precision); for bf16 ("as stored") only those
 * without a kernel (a GGUF's K-quants, Q4_1, Q5_x), to Q8_0. A tensor already of the
 * target type stays in place, so a GGUF's Q8_0/Q4_0 blocks are used as
 * llama.cpp wrote them. */
static qc_status convert_weights(qc_model_t *m, qc_dtype_t to, char *err, size_t err_size) {
    qc_status st;
    /* Norm weights and biases (small vectors) are read as F32 by the forward
     * pass whatever the matrices are. */
    if ((st = convert_tensor(m, &m->out_norm, QC_DTYPE_F32, err, err_size))) return st;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        qc_layer_t *L = &m->layers[l];
        qc_tensor_t *vecs[] = {&L->attn_norm, &L->ffn_norm, &L->bq, &L->bk, &L->bv, &L->q_norm, &L->k_norm};
        for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
            if (vecs[i]->data && (st = convert_tensor(m, vecs[i], QC_DTYPE_F32, err, err_size))) return st;
    }
    int keep = to == QC_DTYPE_BF16, converted = 0;
    int tied = m->lm_head.data == m->tok_embd.data;
    qc_dtype_t outer = to == QC_DTYPE_F32 ? QC_DTYPE_F32 : QC_DTYPE_Q8_0;
    qc_tensor_t *outs[] = {&m->tok_embd, &m->lm_head};
    for (int i = 0; i < 2 - tied; i++) {
        if (keep && has_kernel(outs[i]->dtype)) continue;
        if ((st = convert_tensor(m, outs[i], outer, err, err_size))) return st;
        converted = 1;
    }
    if (tied) m->lm_head = m->tok_embd;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        qc_layer_t *L = &m->layers[l];
        qc_tensor_t *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            if (keep && has_kernel(mats[i]->dtype)) continue;
            if ((st = convert_tensor(m, mats[i], keep ? QC_DTYPE_Q8_0 : to, err, err_size))) return st;
            converted = 1;
        }
    }
    if (!converted) return QC_OK;
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

/* The parts of a Hugging Face folder: configuration, weights, tokenizer. */
static qc_status load_folder(qc_model_t *m, const char *dir, char *err, size_t err_size) {
    qc_status st = QC_ERR_NOMEM;
    char *path = NULL;
    if (!(path = qc_path_join(dir, "config.json"))) goto oom;
    if ((st = qc_config_load(path, &m->cfg, err, err_size))) goto done;
    if (!(m->config_json = qc_read_file(path, &m->config_len, err, err_size))) {
        st = QC_ERR_IO;
        goto done;
    }
    free(path);
    if (!(path = qc_path_join(dir, "generation_config.json"))) goto oom;
    if ((st = qc_genconfig_load(path, &m->gen, err, err_size))) goto done;
    free(path);
    path = NULL;

    if ((st = qc_st_open_dir(dir, &m->st, err, err_size))) goto done;
    if ((st = qc_weights_bind(m, m->st, err, err_size))) goto done;

    if (!(path = qc_path_join(dir, "tokenizer.json"))) goto oom;
    st = qc_tokenizer_load(path, &m->tok, err, err_size);
    goto done;
oom:
    st = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory loading %s", dir);
done:
    free(path);
    return st;
}

qc_status qc_model_load(const char *path, const qc_model_opts_t *opts, qc_model_t **out,
                        char *err, size_t err_size) {
    *out = NULL;
    qc_dtype_t dtype = QC_DTYPE_Q8_0;
    if (opts && opts->dtype && !parse_dtype(opts->dtype, &dtype))
        return qc_seterr(err, err_size, QC_ERR_ARG, "unknown weight type '%s' (f32, bf16, q8_0 or q4_0)", opts->dtype);
    if (!path) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_model_load: NULL path");
    qc_status st = QC_ERR_NOMEM;
    qc_model_t *m = calloc(1, sizeof *m);
    if (!m) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");

    /* A regular file is a GGUF; anything else is taken for a folder. The
     * tokenizer is built before the weights are converted: parsing
     * tokenizer.json builds a large transient JSON tree, and giving that
     * memory back before the converted weights arrive keeps the peak
     * resident size down. */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) st = qc_gguf_model_init(m, path, err, err_size);
    else st = load_folder(m, path, err, err_size);
    if (st) goto fail;
    malloc_trim(0);
    if (qc_tokenizer_n_tokens(m->tok) > m->cfg.n_vocab) {
        st = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: tokenizer has %d tokens but the model's vocabulary is %d",
                       path, (int)qc_tokenizer_n_tokens(m->tok), m->cfg.n_vocab);
        goto fail;
    }

    if (!(m->pool = qc_pool_new(opts ? opts->n_threads : 0))) goto oom;
    if ((st = convert_weights(m, dtype, err, err_size))) goto fail;

    add_eog(m, qc_tokenizer_find(m->tok, "<|im_end|>"));
    add_eog(m, qc_tokenizer_find(m->tok, "<|endoftext|>"));
    for (int i = 0; i < m->cfg.n_eos; i++) add_eog(m, m->cfg.eos_ids[i]);
    for (int i = 0; i < m->gen.n_eos; i++) add_eog(m, m->gen.eos_ids[i]);
    *out = m;
    return QC_OK;

oom:
    st = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory loading %s", path);
fail:
    qc_model_free(m);
    return st;
}

void qc_model_free(qc_model_t *m) {
    if (!m) return;
    qc_tokenizer_free(m->tok);
    qc_pool_free(m->pool);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    qc_st_close(m->st);
    qc_gguf_close(m->gguf);
    free(m->config_json);
    free(m->layers);
    free(m);
}

const qc_tokenizer_t *qc_model_tokenizer(const qc_model_t *m) { return m->tok; }
int32_t qc_model_n_vocab(const qc_model_t *m) { return m->cfg.n_vocab; }
int qc_model_n_ctx_train(const qc_model_t *m) { return m->cfg.n_ctx_train; }
qc_arch_t qc_model_arch(const qc_model_t *m) { return m->cfg.arch; }
int64_t qc_model_n_params(const qc_model_t *m) { return m->n_params; }
int64_t qc_model_weight_bytes(const qc_model_t *m) { return m->weight_bytes; }
int qc_model_n_threads(const qc_model_t *m) { return qc_pool_size(m->pool); }
size_t qc_model_kv_bytes_per_token(const qc_model_t *m) {
    return (size_t)m->cfg.n_layer * m->cfg.n_head_kv * m->cfg.head_dim * 2 * sizeof(uint16_t);
}
const char *qc_model_dtype(const qc_model_t *m) {
    switch (m->layers[0].wq.dtype) {
    case QC_DTYPE_F32: return "f32";
    case QC_DTYPE_Q8_0: return "q8_0";
    case QC_DTYPE_Q4_0: return "q4_0";
    default: return "bf16";
    }
}

void qc_model_identity(const qc_model_t *m, void (*fn)(void *user, const void *p, size_t n), void *user) {
    if (m->gguf) {
        fn(user, m->gguf->map, m->gguf->data_offset);
        return;
    }
    if (m->config_json) fn(user, m->config_json, m->config_len);
    for (size_t i = 0; i < qc_st_n_files(m->st); i++) {
        size_t n;
        const void *h = qc_st_header(m->st, i, &n);
        if (h) fn(user, h, n);
    }
}

int qc_model_is_eog(const qc_model_t *m, int32_t id) {
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return 1;
    return 0;
}

void qc_model_sampling_defaults(const qc_model_t *m, qc_sampling_t *out) { *out = m->gen.sampling; }

/* ==== context ==== */

/* The scratch buffers of a forward pass over up to n_batch tokens: a
 * context's own, or a qc_batch_t's for several sequences at once. */
typedef struct {
    int n_batch, n_scores;
    float *x, *xb;            /* [n_batch][n_embd] */
    float *q;                 /* [n_batch][q_dim] */
    float *k, *v;             /* [n_batch][kv_dim] */
    float *att_out;           /* [n_batch][q_dim] */
    float *hb, *hb2;          /* [n_batch][n_ff] */
    float *scores;            /* [n_threads][n_scores]: n_scores >= every sequence's n_ctx */
    void *act;                /* quantized activations, [n_batch][widest/32] blocks */
    float *cos_t, *sin_t;     /* [n_batch][head_dim/2] */
} work_t;

struct qc_ctx {
    const qc_model_t *m;
    int n_ctx, n_batch, pos;
    int q_dim, kv_dim;
    uint16_t *k_cache, *v_cache; /* [n_layer][n_head_kv][n_ctx][head_dim] IEEE halves (llama.cpp's
                                  * default F16 cache), mmapped: pages exist once written. Head-major,
                                  * so attention reads each head's rows in one sequential run. */
    size_t cache_bytes;       /* of each */
    work_t w;                 /* allocated by the first qc_ctx_eval; qc_ctx_trim frees it */
    float *logits;            /* [n_vocab], for qc_generate (allocated there) */
    const struct qc_ctx *prefix; /* shared, read-only: positions [0, n_prefix) */
    int n_prefix;
    char err[256];
};

/* A run of n_tok tokens of one sequence in a forward pass: workspace rows
 * [t0, t0 + n_tok) at positions pos0.. of context x. */
typedef struct {
    qc_ctx_t *x;
    int t0, n_tok, pos0;
} seg_t;

/* ==== parallel pieces of the forward pass ==== */

/* Up to three matrix products sharing one input (q/k/v, gate/up), split by
 * rows over the pool: y_i[t][r] = W_i[r] . x[t]. */
typedef struct {
    const qc_tensor_t *w[3];
    float *y[3];
    int n_w;
    const float *x;  /* [n_tok][cols] */
    const void *act; /* x quantized, when a weight is quantized */
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
        if (a < b) qc_matmul(j->w[i], j->x, j->act, j->n_tok, j->y[i], rows, a - base, b - base);
        base += rows;
    }
}

static int is_quantized(qc_dtype_t t) { return t == QC_DTYPE_Q8_0 || t == QC_DTYPE_Q4_0; }

/* Runs the products of job on the pool, quantizing x first (into w->act)
 * if needed. */
static void matmuls(const qc_model_t *m, work_t *w, mm_job_t *j) {
    j->act = NULL;
    for (int i = 0; i < j->n_w; i++)
        if (is_quantized(j->w[i]->dtype)) {
            qc_act_quantize(j->w[i]->dtype, j->x, j->w[i]->cols, 0, j->n_tok, w->act);
            j->act = w->act;
            break;
        }
    qc_pool_run(m->pool, mm_task, j);
}

static void matmul1(const qc_model_t *m, work_t *w, const qc_tensor_t *t, const float *in, int n_tok, float *y) {
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

static float silu(float x) { return x / (1.0f + expf(-x)); }

static void work_free(work_t *w) {
    free(w->x); free(w->xb); free(w->q); free(w->k); free(w->v); free(w->att_out);
    free(w->hb); free(w->hb2); free(w->scores); free(w->act);
    free(w->cos_t); free(w->sin_t);
    memset(w, 0, sizeof *w);
}

/* Allocates the buffers of passes over up to n_batch tokens of sequences
 * of up to n_scores positions. 0, or -1 when out of memory (w freed). */
static int work_init(work_t *w, const qc_model_t *m, int n_batch, int n_scores) {
    const qc_config_t *c = &m->cfg;
    int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim, half = c->head_dim / 2;
    int widest = c->n_embd > c->n_ff ? c->n_embd : c->n_ff;
    if (q_dim > widest) widest = q_dim;
    memset(w, 0, sizeof *w);
    w->n_batch = n_batch;
    w->n_scores = n_scores;
    w->x = calloc((size_t)n_batch * c->n_embd, sizeof(float));
    w->xb = calloc((size_t)n_batch * c->n_embd, sizeof(float));
    w->q = calloc((size_t)n_batch * q_dim, sizeof(float));
    w->k = calloc((size_t)n_batch * kv_dim, sizeof(float));
    w->v = calloc((size_t)n_batch * kv_dim, sizeof(float));
    w->att_out = calloc((size_t)n_batch * q_dim, sizeof(float));
    w->hb = calloc((size_t)n_batch * c->n_ff, sizeof(float));
    w->hb2 = calloc((size_t)n_batch * c->n_ff, sizeof(float));
    w->scores = calloc((size_t)qc_pool_size(m->pool) * n_scores, sizeof(float));
    w->act = calloc(qc_act_bytes(QC_DTYPE_Q8_0, n_batch, widest) + 64, 1);
    w->cos_t = calloc((size_t)n_batch * half, sizeof(float));
    w->sin_t = calloc((size_t)n_batch * half, sizeof(float));
    if (!w->x || !w->xb || !w->q || !w->k || !w->v || !w->att_out || !w->hb || !w->hb2 || !w->scores || !w->act ||
        !w->cos_t || !w->sin_t) {
        work_free(w);
        return -1;
    }
    return 0;
}

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
    work_free(&x->w);
    free(x);
}

void qc_ctx_trim(qc_ctx_t *x) {
    work_free(&x->w);
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

/* ==== forward pass ==== */

typedef struct {
    const qc_model_t *m;
    work_t *w;
    const seg_t *seg;
    int n_seg, layer, n_tok;
} attn_job_t;


/* Attention numerics. The cache holds K and V at half precision. A batch of
 * fewer than QC_ATTN_TILE_MIN tokens (every decode step) runs the
 * one-query-at-a-time online softmax of llama.cpp's CPU flash attention: Q
 * rounded to half, and the weighted sum of V accumulated in half precision.
 * Larger batches run a plain F32 softmax over the half-precision K/V, as
 * llama.cpp's tiled kernel does for 64 queries or more. Matching llama.cpp
 * here is what lets qcare reproduce its logits to ~1e-3 (see tests/). */
#define QC_ATTN_TILE_MIN 64

/* Attention of the pass's new tokens in one layer, split over (token,
 * head) pairs: their k/v are already in their sequences' caches; each token
 * sees its own sequence up to itself. The numerics follow the size of the
 * token's run (its sequence's tokens in this pass), as if it ran alone. */
static void attention_task(void *arg, int ith, int nth) {
    attn_job_t *j = arg;
    const qc_config_t *c = &j->m->cfg;
    int hd = c->head_dim, group = c->n_head / c->n_head_kv, q_dim = c->n_head * hd;
    float scale = 1.0f / sqrtf((float)hd), *scores = j->w->scores + (size_t)ith * j->w->n_scores;
    long lo, hi;
    qc_split((long)j->n_tok * c->n_head, ith, nth, 1, &lo, &hi);
    int si = 0;
    for (long th = lo; th < hi; th++) {
        int t = (int)(th / c->n_head), h = (int)(th % c->n_head), kvh = h / group;
        while (t >= j->seg[si].t0 + j->seg[si].n_tok) si++;
        const seg_t *g = &j->seg[si];
        const qc_ctx_t *x = g->x, *p = x->prefix;
        size_t lh = (size_t)j->layer * c->n_head_kv + kvh, lk = lh * x->n_ctx * hd, lp = p ? lh * p->n_ctx * hd : 0;
        qc_kv_rows_t rows = {p ? p->k_cache + lp : NULL, p ? p->v_cache + lp : NULL, x->k_cache + lk,
                             x->v_cache + lk, x->n_prefix, hd};
        qc_attend(j->w->q + (size_t)t * q_dim + h * hd, &rows, g->pos0 + (t - g->t0) + 1, hd, scale,
                  g->n_tok < QC_ATTN_TILE_MIN, scores, j->w->att_out + (size_t)t * q_dim + h * hd);
    }
}

/* Adds a bias vector (F32) to n_tok rows of width n. */
static void add_bias(float *y, int n_tok, int n, const qc_tensor_t *b) {
    const float *bias = b->data;
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += bias[i];
}

/* Runs n_tok (<= w->n_batch) tokens through the model: the runs of seg
 * (in order, covering rows 0..n_tok), each at its sequence's positions.
 * Leaves the final hidden states, normalized, in w->xb; advances every
 * sequence. Each token's result is the same as when its run is alone in a
 * pass: products are per token row, attention per sequence. */
static void forward(const qc_model_t *m, work_t *w, const seg_t *seg, int n_seg, const int32_t *ids, int n_tok) {
    const qc_config_t *c = &m->cfg;
    int d = c->n_embd, hd = c->head_dim, half = hd / 2;
    int q_dim = c->n_head * hd, kv_dim = c->n_head_kv * hd;

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
        if (c->qkv_bias) {
            add_bias(w->q, n_tok, q_dim, &L->bq);
            add_bias(w->k, n_tok, kv_dim, &L->bk);
            add_bias(w->v, n_tok, kv_dim, &L->bv);
        }
        for (int g = 0; g < n_seg; g++) {
            qc_ctx_t *x = seg[g].x;
            for (int t = seg[g].t0; t < seg[g].t0 + seg[g].n_tok; t++) {
                const float *ct = w->cos_t + t * half, *st = w->sin_t + t * half;
                for (int h = 0; h < c->n_head; h++) {
                    float *q = w->q + (size_t)t * q_dim + h * hd;
                    if (c->qk_norm) rmsnorm(q, q, L->q_norm.data, hd, c->rms_eps);
                    rope(q, hd, ct, st);
                }
                for (int h = 0; h < c->n_head_kv; h++) {
                    float *k = w->k + (size_t)t * kv_dim + h * hd;
                    if (c->qk_norm) rmsnorm(k, k, L->k_norm.data, hd, c->rms_eps);
                    rope(k, hd, ct, st);
                }
                for (int h = 0; h < c->n_head_kv; h++) {
                    size_t off = (((size_t)l * c->n_head_kv + h) * x->n_ctx + seg[g].pos0 + t - seg[g].t0) * hd;
                    const float *k = w->k + (size_t)t * kv_dim + h * hd, *v = w->v + (size_t)t * kv_dim + h * hd;
                    for (int i = 0; i < hd; i++) {
                        x->k_cache[off + i] = qc_f32_to_f16(k[i]);
                        x->v_cache[off + i] = qc_f32_to_f16(v[i]);
                    }
                }
            }
        }
        attn_job_t aj = {m, w, seg, n_seg, l, n_tok};
        qc_pool_run(m->pool, attention_task, &aj);
        matmul1(m, w, &L->wo, w->att_out, n_tok, w->xb);
        for (size_t i = 0; i < (size_t)n_tok * d; i++) w->x[i] += w->xb[i];

        rmsnorm_rows(m, w->xb, w->x, &L->ffn_norm, d, n_tok);
        mm_job_t gu = {.w = {&L->w_gate, &L->w_up}, .y = {w->hb, w->hb2}, .n_w = 2, .x = w->xb, .n_tok = n_tok};
        matmuls(m, w, &gu);
        for (size_t i = 0; i < (size_t)n_tok * c->n_ff; i++) w->hb[i] = silu(w->hb[i]) * w->hb2[i];
        matmul1(m, w, &L->w_down, w->hb, n_tok, w->xb);
        for (size_t i = 0; i < (size_t)n_tok * d; i++) w->x[i] += w->xb[i];
    }
    rmsnorm_rows(m, w->xb, w->x, &m->out_norm, d, n_tok);
    for (int g = 0; g < n_seg; g++) seg[g].x->pos += seg[g].n_tok;
}

/* The checks of an eval of n_ids tokens on x (errors on x). */
static qc_status check_ids(qc_ctx_t *x, const int32_t *ids, size_t n_ids) {
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
    qc_status st = check_ids(x, ids, n_ids);
    if (st) return st;

    work_t *w = &x->w;
    if (!w->x && work_init(w, m, x->n_batch, x->n_ctx))
        return qc_seterr(x->err, sizeof x->err, QC_ERR_NOMEM, "out of memory for the work buffers");
    for (size_t done = 0; done < n_ids;) {
        int n = (int)(n_ids - done < (size_t)w->n_batch ? n_ids - done : (size_t)w->n_batch);
        seg_t g = {x, 0, n, x->pos};
        forward(m, w, &g, 1, ids + done, n);
        if (mode == QC_LOGITS_ALL)
            matmul1(m, w, &m->lm_head, w->xb, n, logits + done * c->n_vocab);
        else if (mode == QC_LOGITS_LAST && done + n == n_ids)
            matmul1(m, w, &m->lm_head, w->xb + (size_t)(n - 1) * c->n_embd, 1, logits);
        done += n;
    }
    return QC_OK;
}

/* ==== several sequences in one pass ==== */

struct qc_batch {
    const qc_model_t *m;
    work_t w;
    int32_t *ids;  /* [n_batch] */
    seg_t *seg;    /* [n_batch] */
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
    if (!b->ids || !b->seg || !b->last || work_init(&b->w, m, n_tokens, 1)) {
        qc_batch_free(b);
        return NULL;
    }
    return b;
}

void qc_batch_free(qc_batch_t *b) {
    if (!b) return;
    work_free(&b->w);
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
        qc_status st = check_ids(x, ids[i], (size_t)n_ids[i]);
        if (st) return qc_seterr(b->err, sizeof b->err, st, "sequence %d: %s", i, x->err);
        if (n_ids[i] > b->w.n_batch - total)
            return qc_seterr(b->err, sizeof b->err, QC_ERR_ARG, "more than %d tokens in one batch", b->w.n_batch);
        b->seg[i] = (seg_t){x, total, n_ids[i], x->pos};
        memcpy(b->ids + total, ids[i], (size_t)n_ids[i] * sizeof *b->ids);
        total += n_ids[i];
        if (x->n_ctx > n_scores) n_scores = x->n_ctx;
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
    forward(m, &b->w, b->seg, n_seq, b->ids, total);
    int n_out = 0;
    for (int i = 0; i < n_seq; i++)
        if (logits && logits[i])
            memcpy(b->last + (size_t)n_out++ * c->n_embd,
                   b->w.xb + (size_t)(b->seg[i].t0 + b->seg[i].n_tok - 1) * c->n_embd, c->n_embd * sizeof(float));
    if (n_out) {
        matmul1(m, &b->w, &m->lm_head, b->last, n_out, b->out);
        n_out = 0;
        for (int i = 0; i < n_seq; i++)
            if (logits && logits[i])
                memcpy(logits[i], b->out + (size_t)n_out++ * c->n_vocab, c->n_vocab * sizeof(float));
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
    if (!x->logits) x->logits = malloc((size_t)m->cfg.n_vocab * sizeof(float));
    if (!hist || !s || !x->logits) {
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
