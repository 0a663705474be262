/* model.c — loading a Qwen model: a GGUF file (gguf.c) or a Hugging Face
 * folder (config, weights, tokenizer), its weights then converted to the
 * requested type (weights.c); the model's accessors and its end-of-generation
 * ids. Weights are kept as the file has them (BF16/F16/F32, or a GGUF's
 * Q8_0/Q4_0, used in place from the mmap) or converted once at load (F32,
 * or quantized to Q8_0/Q4_0; a GGUF's Q4_1/Q5_x/Q2_K..Q6_K always are). The forward
 * pass is in forward.c; the context in ctx.c. */
#include "engine/model_impl.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/threads.h"

#include <malloc.h>
#include <sys/stat.h>

#include <stdlib.h>
#include <string.h>

/* Adds id to the model's end-of-generation list unless present or negative. */
static void add_eog(qc_model_t *m, int32_t id) {
    if (id < 0) return;
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return;
    if (m->n_eog < QC_MAX_EOG) m->eog[m->n_eog++] = id;
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

/* The parts of a Hugging Face folder: configuration, weights, tokenizer. */
static qc_status load_folder(qc_model_t *m, const char *dir, char *err, size_t err_size) {
    qc_status st = QC_ERR_NOMEM;
    char *path = NULL;
    if (!(path = qc_path_join(dir, "config.json"))) goto oom;
    if ((st = qc_config_load(path, &m->cfg, err, err_size))) goto done;
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
    if ((st = qc_weights_convert(m, dtype, err, err_size))) goto fail;

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

int qc_model_is_eog(const qc_model_t *m, int32_t id) {
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return 1;
    return 0;
}

void qc_model_sampling_defaults(const qc_model_t *m, qc_sampling_t *out) { *out = m->gen.sampling; }
