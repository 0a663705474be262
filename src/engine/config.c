/* config.c — reads a Hugging Face model's config.json and
 * generation_config.json into qc_config_t / qc_genconfig_t.
 *
 * Both files are untrusted input: every number is type- and range-checked, and
 * a bad file gives a message naming the file and the field (or, for broken
 * JSON, the line and column). Defaults follow transformers' Qwen2Config /
 * Qwen3Config and GenerationConfig. */
#include "engine/engine.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Bounds that no real model reaches; they keep every later product of two of
 * these values (e.g. vocab * hidden) far inside int64. */
#define MAX_LAYERS 1024
#define MAX_DIM (1 << 20)
#define MAX_VOCAB (1 << 24)
#define MAX_CTX (1 << 24)
/* Fewer positions than a ChatML turn with a short reply: such a context
 * length is a broken file, not a model. */
#define MIN_CTX 32

/* ==== JSON helpers ==== */

/* Parses the file at `path` into *out (a JSON object). Broken JSON gives
 * QC_ERR_FORMAT with "path:line:column: reason". */
static qc_status load_json(const char *path, json_t **out, char *err, size_t err_size) {
    *out = NULL;
    size_t len = 0;
    char *text = qc_read_file(path, &len, err, err_size);
    if (!text) return errno == ENOMEM ? QC_ERR_NOMEM : QC_ERR_IO;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s:%d:%d: malformed JSON: %s", path,
                         jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: top level is not a JSON object",
                         path);
    }
    *out = root;
    return QC_OK;
}

/* Reads integer field `key` into *out, which must lie in [lo, hi]. An absent
 * (or null) field gives `def`, or an error when `required`. */
static qc_status get_int(const char *path, json_t *obj, const char *key, int required, int def,
                         long long lo, long long hi, int *out, char *err, size_t err_size) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: missing field \"%s\"", path, key);
        *out = def;
        return QC_OK;
    }
    if (!json_is_integer(v))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: field \"%s\" is not an integer", path,
                         key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: field \"%s\" = %lld is out of range [%lld, %lld]", path, key,
                         (long long)x, lo, hi);
    *out = (int)x;
    return QC_OK;
}

/* Reads number field `key` (integer or real) into *out, which must be finite
 * and lie in [lo, hi]. Absent or null gives `def`. */
static qc_status get_num(const char *path, json_t *obj, const char *key, double def, double lo,
                         double hi, double *out, char *err, size_t err_size) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return QC_OK;
    }
    if (!json_is_number(v))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: field \"%s\" is not a number", path,
                         key);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: field \"%s\" = %g is out of range [%g, %g]", path, key, x, lo, hi);
    *out = x;
    return QC_OK;
}

/* Reads boolean field `key`; absent or null gives `def`. */
static qc_status get_bool(const char *path, json_t *obj, const char *key, int def, int *out,
                          char *err, size_t err_size) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return QC_OK;
    }
    if (!json_is_boolean(v))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: field \"%s\" is not a boolean", path,
                         key);
    *out = json_is_true(v);
    return QC_OK;
}

/* Reads eos_token_id, an integer or a list of integers (null/absent: none),
 * each in [0, max_id]. Appends to ids[*n], skipping duplicates. */
static qc_status get_eos(const char *path, json_t *obj, const char *key, long long max_id,
                         int *ids, int *n, char *err, size_t err_size) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return QC_OK;
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_integer(v))
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: field \"%s\" is neither an integer nor a list of integers", path,
                         key);
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_integer(e))
            return qc_seterr(err, err_size, QC_ERR_FORMAT,
                             "%s: field \"%s\" holds a non-integer entry", path, key);
        json_int_t x = json_integer_value(e);
        if (x < 0 || x > max_id)
            return qc_seterr(err, err_size, QC_ERR_FORMAT,
                             "%s: field \"%s\" holds %lld, out of range [0, %lld]", path, key,
                             (long long)x, max_id);
        int dup = 0;
        for (int k = 0; k < *n; k++) dup |= ids[k] == (int)x;
        if (dup) continue;
        if (*n >= QC_MAX_EOS)
            return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                             "%s: field \"%s\" lists more than %d ids", path, key, QC_MAX_EOS);
        ids[(*n)++] = (int)x;
    }
    return QC_OK;
}

/* ==== config.json ==== */

/* Picks the architecture from the "architectures" list (its first entry, as
 * transformers does). */
static qc_status parse_arch(const char *path, json_t *root, qc_config_t *cfg, char *err,
                            size_t err_size) {
    json_t *a = json_object_get(root, "architectures");
    if (!a || json_is_null(a))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: missing field \"architectures\"",
                         path);
    json_t *first = json_is_array(a) ? json_array_get(a, 0) : NULL;
    if (!json_is_string(first))
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: field \"architectures\" is not a non-empty list of strings", path);
    const char *name = json_string_value(first);
    if (strcmp(name, "Qwen2ForCausalLM") == 0) {
        cfg->arch = QC_ARCH_QWEN2;
    } else if (strcmp(name, "Qwen3ForCausalLM") == 0) {
        cfg->arch = QC_ARCH_QWEN3;
    } else {
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: unsupported architecture \"%.100s\" (qcare runs Qwen2ForCausalLM "
                         "and Qwen3ForCausalLM)",
                         path, name);
    }
    /* model_type, when given, must name the same family: a file that says
     * both is contradicting itself (absent: transformers infers it) */
    json_t *mt = json_object_get(root, "model_type");
    const char *want = cfg->arch == QC_ARCH_QWEN2 ? "qwen2" : "qwen3";
    if (mt && !json_is_null(mt) && !(json_is_string(mt) && !strcmp(json_string_value(mt), want)))
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: field \"model_type\" is %s%.60s%s, but architectures[0] %s has model_type \"%s\"",
                         path, json_is_string(mt) ? "\"" : "", json_is_string(mt) ? json_string_value(mt) : "not a string",
                         json_is_string(mt) ? "\"" : "", name, want);
    return QC_OK;
}

/* Rejects settings that change the computation in ways qcare does not
 * implement, rather than silently computing something else. */
static qc_status check_unsupported(const char *path, json_t *root, char *err, size_t err_size) {
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        json_t *type = json_is_object(rs) ? json_object_get(rs, "rope_type") : NULL;
        if (!type && json_is_object(rs)) type = json_object_get(rs, "type");
        /* transformers itself treats {"rope_type": "default"} as no scaling */
        if (!(json_is_string(type) && strcmp(json_string_value(type), "default") == 0))
            return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                             "%s: rope_scaling (%.40s) is not supported", path,
                             json_is_string(type) ? json_string_value(type) : "set");
    }
    json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) &&
        !(json_is_string(act) && strcmp(json_string_value(act), "silu") == 0))
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: hidden_act %.40s is not supported (only \"silu\")", path,
                         json_is_string(act) ? json_string_value(act) : "(not a string)");
    int sw = 0;
    qc_status st = get_bool(path, root, "use_sliding_window", 0, &sw, err, err_size);
    if (st) return st;
    if (sw)
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: use_sliding_window true is not supported", path);
    return QC_OK;
}

/* The checks of the head layout every source of a configuration needs
 * (config.json or GGUF metadata): head_dim <= 512 and even, the query width
 * bounded, whole query groups per KV head. */
qc_status qc_config_check(const char *path, const qc_config_t *cfg, char *err, size_t err_size) {
    qc_status st = QC_OK;
    if (cfg->head_dim > 512) {
        st = qc_seterr(err, err_size, QC_ERR_UNSUPPORTED, "%s: head_dim %d is larger than 512", path, cfg->head_dim);
        return st;
    }
    if (cfg->head_dim % 2 != 0) {
        st = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: head_dim %d is odd (RoPE needs pairs)",
                       path, cfg->head_dim);
        return st;
    }
    if ((long long)cfg->n_head * cfg->head_dim > MAX_DIM) {
        st = qc_seterr(err, err_size, QC_ERR_FORMAT,
                       "%s: num_attention_heads * head_dim = %lld is too large", path,
                       (long long)cfg->n_head * cfg->head_dim);
        return st;
    }
    if (cfg->n_head_kv > cfg->n_head || cfg->n_head % cfg->n_head_kv != 0) {
        st = qc_seterr(err, err_size, QC_ERR_FORMAT,
                       "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       path, cfg->n_head, cfg->n_head_kv);
        return st;
    }

    return st;
}

qc_status qc_config_load(const char *path, qc_config_t *cfg, char *err, size_t err_size) {
    if (!path || !cfg) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_config_load: NULL argument");
    memset(cfg, 0, sizeof *cfg);
    json_t *root = NULL;
    qc_status st = load_json(path, &root, err, err_size);
    if (st) return st;

#define TRY(call)          \
    do {                   \
        st = (call);       \
        if (st) goto fail; \
    } while (0)

    TRY(parse_arch(path, root, cfg, err, err_size));
    TRY(check_unsupported(path, root, err, err_size));

    TRY(get_int(path, root, "hidden_size", 1, 0, 1, MAX_DIM, &cfg->n_embd, err, err_size));
    TRY(get_int(path, root, "intermediate_size", 1, 0, 1, MAX_DIM, &cfg->n_ff, err, err_size));
    TRY(get_int(path, root, "num_hidden_layers", 1, 0, 1, MAX_LAYERS, &cfg->n_layer, err,
                err_size));
    TRY(get_int(path, root, "num_attention_heads", 1, 0, 1, MAX_DIM, &cfg->n_head, err,
                err_size));
    TRY(get_int(path, root, "num_key_value_heads", 0, cfg->n_head, 1, MAX_DIM, &cfg->n_head_kv,
                err, err_size));
    TRY(get_int(path, root, "vocab_size", 1, 0, 1, MAX_VOCAB, &cfg->n_vocab, err, err_size));
    /* transformers' default for both Qwen2Config and Qwen3Config */
    TRY(get_int(path, root, "max_position_embeddings", 0, 32768, MIN_CTX, MAX_CTX, &cfg->n_ctx_train,
                err, err_size));

    /* head_dim: given explicitly by Qwen3 configs (heads * head_dim may differ
     * from hidden); otherwise hidden / heads, which must then divide evenly. */
    json_t *hd = json_object_get(root, "head_dim");
    if (hd && !json_is_null(hd)) {
        TRY(get_int(path, root, "head_dim", 1, 0, 1, MAX_DIM, &cfg->head_dim, err, err_size));
    } else {
        if (cfg->n_embd % cfg->n_head != 0) {
            st = qc_seterr(err, err_size, QC_ERR_FORMAT,
                           "%s: hidden_size %d is not divisible by num_attention_heads %d (and "
                           "no head_dim is given)",
                           path, cfg->n_embd, cfg->n_head);
            goto fail;
        }
        cfg->head_dim = cfg->n_embd / cfg->n_head;
    }
    TRY(qc_config_check(path, cfg, err, err_size));

    double theta, eps;
    TRY(get_num(path, root, "rope_theta", 10000.0, 1e-3, 1e12, &theta, err, err_size));
    TRY(get_num(path, root, "rms_norm_eps", 1e-6, 1e-30, 1.0, &eps, err, err_size));
    cfg->rope_theta = (float)theta;
    cfg->rms_eps = (float)eps;

    TRY(get_bool(path, root, "tie_word_embeddings", 0, &cfg->tie_embeddings, err, err_size));
    if (cfg->arch == QC_ARCH_QWEN2) {
        cfg->qkv_bias = 1;
        cfg->qk_norm = 0;
    } else {
        TRY(get_bool(path, root, "attention_bias", 0, &cfg->qkv_bias, err, err_size));
        cfg->qk_norm = 1;
    }

    TRY(get_int(path, root, "bos_token_id", 0, -1, 0, (long long)cfg->n_vocab - 1, &cfg->bos_id,
                err, err_size));
    TRY(get_eos(path, root, "eos_token_id", (long long)cfg->n_vocab - 1, cfg->eos_ids,
                &cfg->n_eos, err, err_size));
#undef TRY
    json_decref(root);
    return QC_OK;
fail:
    json_decref(root);
    memset(cfg, 0, sizeof *cfg);
    return st;
}

/* ==== generation_config.json ==== */

void qc_genconfig_defaults(qc_genconfig_t *gen) {
    memset(gen, 0, sizeof *gen);
    /* GenerationConfig defaults: do_sample=False means greedy decoding */
    gen->sampling.temperature = 0.0f;
    gen->sampling.top_k = 50;
    gen->sampling.top_p = 1.0f;
    gen->sampling.min_p = 0.0f;
    gen->sampling.repetition_penalty = 1.0f;
    gen->sampling.seed = 0;
}

qc_status qc_genconfig_load(const char *path, qc_genconfig_t *gen, char *err, size_t err_size) {
    if (!path || !gen)
        return qc_seterr(err, err_size, QC_ERR_ARG, "qc_genconfig_load: NULL argument");
    qc_genconfig_defaults(gen);
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) return QC_OK;

    json_t *root = NULL;
    qc_status st = load_json(path, &root, err, err_size);
    if (st) return st;
    int do_sample = 0, top_k = 50;
    double temp, top_p, min_p, rep;
#define TRY(call)          \
    do {                   \
        st = (call);       \
        if (st) goto fail; \
    } while (0)
    TRY(get_bool(path, root, "do_sample", 0, &do_sample, err, err_size));
    TRY(get_num(path, root, "temperature", 1.0, 0.0, 1e6, &temp, err, err_size));
    TRY(get_int(path, root, "top_k", 0, 50, 0, 1LL << 30, &top_k, err, err_size));
    TRY(get_num(path, root, "top_p", 1.0, 0.0, 1.0, &top_p, err, err_size));
    TRY(get_num(path, root, "min_p", 0.0, 0.0, 1.0, &min_p, err, err_size));
    TRY(get_num(path, root, "repetition_penalty", 1.0, 1e-6, 1e6, &rep, err, err_size));
    TRY(get_eos(path, root, "eos_token_id", 0x7fffffffLL, gen->eos_ids, &gen->n_eos, err,
                err_size));
#undef TRY
    gen->sampling.temperature = do_sample ? (float)temp : 0.0f;
    gen->sampling.top_k = top_k;
    gen->sampling.top_p = (float)top_p;
    gen->sampling.min_p = (float)min_p;
    gen->sampling.repetition_penalty = (float)rep;
    json_decref(root);
    return QC_OK;
fail:
    json_decref(root);
    qc_genconfig_defaults(gen);
    return st;
}
