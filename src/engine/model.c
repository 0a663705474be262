/* model.c — loading a Qwen model: a GGUF file (gguf.c) or a Hugging Face
 * folder (config, weights, tokenizer), its weights then converted to the
 * requested type (weights.c); the model's accessors and its end-of-generation
 * ids. Weights are kept as a GGUF has them (any of its types, used in place
 * from the mmap: --dtype auto) or converted once at load (to F32, BF16 or
 * F16, or quantized to Q8_0/Q4_0; a safetensors folder's to Q8_0 under
 * auto). The forward
 * pass is in forward.c; the context in ctx.c. */
#include "engine/model_impl.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/threads.h"

#include <malloc.h>
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds id to the model's end-of-generation list unless present or negative. */
static void add_eog(qc_model_t *m, int32_t id) {
    if (id < 0) return;
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return;
    if (m->n_eog < QC_MAX_EOG) m->eog[m->n_eog++] = id;
}

/* Parses a --dtype name: the type matrices are converted to, or AUTO (as
 * stored for a GGUF, AS_STORED; Q8_0 for safetensors). Every other name
 * converts, "bf16" and "f16" included: a GGUF's Q4_K under --dtype bf16 is
 * converted to BF16, not kept. */
enum { AS_STORED = -1, AUTO = -2 };
static int parse_dtype(const char *s, int *out) {
    static const struct { const char *name; int t; } names[] = {
        {"auto", AUTO},           {"f32", QC_DTYPE_F32},    {"bf16", QC_DTYPE_BF16},
        {"f16", QC_DTYPE_F16},    {"q8_0", QC_DTYPE_Q8_0},  {"q4_0", QC_DTYPE_Q4_0}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name)) return *out = names[i].t, 1;
    return 0;
}

/* qc_model_dtype's text: the layer matrices' type when they share one
 * ("q8_0", "q4_0", "f32", "bf16", "f16", "q4_K", ...); for a mix, each type's
 * share of the layer matrices' bytes, largest first ("mixed: q4_K 60%,
 * q6_K 22%, q5_0 18%"). */
static void lower(char *s) {
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

static void describe_dtype(qc_model_t *m) {
    int64_t bytes[QC_DTYPE_Q8_1 + 1] = {0}, total = 0;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const qc_layer_t *L = &m->layers[l];
        const qc_tensor_t *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            const int64_t b = (int64_t)qc_row_bytes(mats[i]->dtype, mats[i]->cols) * mats[i]->rows;
            if ((unsigned)mats[i]->dtype <= QC_DTYPE_Q8_1) bytes[mats[i]->dtype] += b, total += b;
        }
    }
    int n_types = 0;
    for (int t = 0; t <= QC_DTYPE_Q8_1; t++) n_types += bytes[t] > 0;
    if (n_types <= 1) {
        snprintf(m->dtype_desc, sizeof m->dtype_desc, "%s", qc_dtype_name(m->layers[0].wq.dtype));
        lower(m->dtype_desc);
        return;
    }
    size_t k = (size_t)snprintf(m->dtype_desc, sizeof m->dtype_desc, "mixed:");
    for (int n = 0; n < n_types && k < sizeof m->dtype_desc; n++) {
        int best = -1;
        for (int t = 0; t <= QC_DTYPE_Q8_1; t++)
            if (bytes[t] > 0 && (best < 0 || bytes[t] > bytes[best])) best = t;
        k += (size_t)snprintf(m->dtype_desc + k, sizeof m->dtype_desc - k, "%s %s %.0f%%", n ? "," : "",
                              qc_dtype_name((qc_dtype_t)best), 100.0 * (double)bytes[best] / (double)total);
        bytes[best] = 0;
    }
    lower(m->dtype_desc);
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

/* The layer of a tensor name ("blk.N." in a GGUF, "model.layers.N." in
 * safetensors), or -1. */
static long tensor_layer(const char *name) {
    const char *p = !strncmp(name, "blk.", 4) ? name + 4 : !strncmp(name, "model.layers.", 13) ? name + 13 : NULL;
    if (!p || *p < '0' || *p > '9') return -1;
    char *end;
    long l = strtol(p, &end, 10);
    return *end == '.' ? l : -1;
}

/* Values the loaders accept one by one but that cannot be right together:
 * weights of more layers than the file says it has (block_count /
 * num_hidden_layers: the extra ones would be ignored silently), an end
 * token of generation_config.json outside the vocabulary, and no end
 * token at all (generation would never stop). */
static qc_status check_plausible(qc_model_t *m, const char *path, char *err, size_t err_size) {
    long top = -1;
    size_t n = m->gguf ? m->gguf->n_tensors : qc_st_count(m->st);
    for (size_t i = 0; i < n; i++) {
        long l = tensor_layer(m->gguf ? m->gguf->tensors[i].name : qc_st_at(m->st, i)->name);
        if (l > top) top = l;
    }
    if (top >= m->cfg.n_layer)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: %s is %d, but the weights hold layer %ld", path,
                         m->gguf ? "block_count" : "num_hidden_layers", m->cfg.n_layer, top);
    for (int i = 0; i < m->gen.n_eos; i++)
        if (m->gen.eos_ids[i] >= m->cfg.n_vocab)
            return qc_seterr(err, err_size, QC_ERR_FORMAT,
                             "%s: generation_config.json: eos_token_id holds %d, outside the vocabulary [0, %d)", path,
                             m->gen.eos_ids[i], m->cfg.n_vocab);
    if (m->n_eog == 0)
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: no end-of-sequence token: eos_token_id is empty and the tokenizer has neither "
                         "<|im_end|> nor <|endoftext|>", path);
    return QC_OK;
}

qc_status qc_model_load(const char *path, const qc_model_opts_t *opts, qc_model_t **out,
                        char *err, size_t err_size) {
    *out = NULL;
    int dtype = AUTO;
    if (opts && opts->dtype && !parse_dtype(opts->dtype, &dtype))
        return qc_seterr(err, err_size, QC_ERR_ARG, "unknown weight type '%s' (auto, f32, bf16, f16, q8_0 or q4_0)",
                         opts->dtype);
    if (!path) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_model_load: NULL path");
    /* a kernel level asked for and not there: said, rather than silently
     * measuring or testing another one */
    const char *cpu_err = qc_cpu_request_error();
    if (cpu_err) return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED, "%s", cpu_err);
    qc_status st = QC_ERR_NOMEM;
    qc_model_t *m = calloc(1, sizeof *m);
    if (!m) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");

    /* A regular file is a GGUF; anything else is taken for a folder. The
     * tokenizer is built before the weights are converted: parsing
     * tokenizer.json builds a large transient JSON tree, and giving that
     * memory back before the converted weights arrive keeps the peak
     * resident size down. */
    struct stat sb;
    const int gguf = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    if (gguf) st = qc_gguf_model_init(m, path, err, err_size);
    else st = load_folder(m, path, err, err_size);
    if (dtype == AUTO) dtype = gguf ? AS_STORED : QC_DTYPE_Q8_0;
    if (st) goto fail;
    malloc_trim(0);
    if (qc_tokenizer_n_tokens(m->tok) > m->cfg.n_vocab) {
        st = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: tokenizer has %d tokens but the model's vocabulary is %d",
                       path, (int)qc_tokenizer_n_tokens(m->tok), m->cfg.n_vocab);
        goto fail;
    }

    if (!(m->pool = qc_pool_new(opts ? opts->n_threads : 0))) goto oom;
    if ((st = qc_weights_convert(m, dtype, err, err_size))) goto fail;
    describe_dtype(m);
    if ((st = qc_weights_panel(m, err, err_size))) goto fail;
    /* a GGUF's header (metadata, vocabulary: ~7 MB for Qwen's) has been
     * read into the tokenizer and the configuration */
    if (m->gguf) qc_drop_pages(m->gguf->map, m->gguf->data_offset);

    add_eog(m, qc_tokenizer_find(m->tok, "<|im_end|>"));
    add_eog(m, qc_tokenizer_find(m->tok, "<|endoftext|>"));
    for (int i = 0; i < m->cfg.n_eos; i++) add_eog(m, m->cfg.eos_ids[i]);
    for (int i = 0; i < m->gen.n_eos; i++) add_eog(m, m->gen.eos_ids[i]);
    if ((st = check_plausible(m, path, err, err_size))) goto fail;
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
int64_t qc_model_step_bytes(const qc_model_t *m) {
    if (m->lm_head.data == m->tok_embd.data) return m->weight_bytes;
    /* An untied embedding table is read one row a token, not streamed. */
    return m->weight_bytes - (int64_t)(qc_row_bytes(m->tok_embd.dtype, m->tok_embd.cols) * m->tok_embd.rows);
}
int qc_model_n_threads(const qc_model_t *m) { return qc_pool_size(m->pool); }
size_t qc_model_kv_bytes_per_token(const qc_model_t *m) {
    return (size_t)m->cfg.n_layer * m->cfg.n_head_kv * m->cfg.head_dim * 2 * sizeof(uint16_t);
}
const char *qc_model_dtype(const qc_model_t *m) { return m->dtype_desc; }
const char *qc_model_cpu(const qc_model_t *m) {
    (void)m;
    return qc_cpu_name(qc_cpu_level());
}
int qc_model_n_converted(const qc_model_t *m) { return m->n_converted; }

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
