/* gguf_write.c — writes a Hugging Face Qwen folder as a GGUF v3 file that
 * llama.cpp loads and computes the same logits from.
 *
 * The layout copies what llama.cpp's own tools write for these models (the
 * fixture GGUFs in ../shared/fixtures/models are the reference, and the tests
 * compare against them key by key and byte by byte):
 *
 *   "GGUF" u32 version=3 u64 n_tensors u64 n_kv
 *   n_kv × (string key, u32 value type, value)
 *   n_tensors × (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 *                u64 offset into the data section)
 *   zero padding to 32 bytes, then each tensor's data, each padded to 32.
 *
 * Strings are u64 length + bytes (no NUL); everything little-endian, which is
 * what the host is (x86-64, like everything qcare runs on). ne[0] is the
 * innermost dimension: a Hugging Face weight [rows][cols] becomes
 * ne = {cols, rows}.
 *
 * Metadata order and content follow the fixtures: general.*, the {arch}.*
 * hyper-parameters, the tokenizer, then general.quantization_version and
 * general.file_type (llama-quantize appends those two last). No
 * general.alignment key: llama.cpp's files rely on the default of 32. */
#include "engine/gguf_write.h"
#include "engine/gguf.h"
#include "engine/kernels.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* llama.cpp's token types (llama_token_type). */
enum { TOK_NORMAL = 1, TOK_CONTROL = 3, TOK_USER_DEFINED = 4, TOK_UNUSED = 5 };

#define QUANT_VERSION 2 /* GGML_QNT_VERSION */

uint32_t qc_gguf_file_type(qc_dtype_t type) {
    switch (type) {
    case QC_DTYPE_F32: return 0;
    case QC_DTYPE_F16: return 1;
    case QC_DTYPE_Q4_0: return 2;
    case QC_DTYPE_Q8_0: return 7;
    case QC_DTYPE_BF16: return 32;
    default: return 0; /* not a type the writer produces */
    }
}

/* ==== output stream ==== */

/* A buffered file that remembers its position and its first write error, so
 * the header writers need no error handling of their own. */
typedef struct {
    FILE *f;
    uint64_t pos; /* bytes written so far */
    int err;      /* errno of the first failed write, 0 if none */
} out_t;

static void put(out_t *o, const void *p, size_t n) {
    if (!o->err && n && fwrite(p, 1, n, o->f) != n) o->err = errno ? errno : EIO;
    o->pos += n;
}
static void put_u32(out_t *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(out_t *o, uint64_t v) { put(o, &v, 8); }
static void put_str(out_t *o, const char *s, size_t len) {
    put_u64(o, len);
    put(o, s, len);
}
static void put_cstr(out_t *o, const char *s) { put_str(o, s, strlen(s)); }

/* Zeros up to the next multiple of QC_GGUF_DEFAULT_ALIGNMENT. */
static void put_pad(out_t *o) {
    static const char zeros[QC_GGUF_DEFAULT_ALIGNMENT];
    put(o, zeros, (size_t)((QC_GGUF_DEFAULT_ALIGNMENT - o->pos % QC_GGUF_DEFAULT_ALIGNMENT) % QC_GGUF_DEFAULT_ALIGNMENT));
}

static void kv_u32(out_t *o, const char *key, uint32_t v) {
    put_cstr(o, key);
    put_u32(o, QC_GGUF_UINT32);
    put_u32(o, v);
}
static void kv_f32(out_t *o, const char *key, float v) {
    put_cstr(o, key);
    put_u32(o, QC_GGUF_FLOAT32);
    put(o, &v, 4);
}
static void kv_bool(out_t *o, const char *key, int v) {
    uint8_t b = v != 0;
    put_cstr(o, key);
    put_u32(o, QC_GGUF_BOOL);
    put(o, &b, 1);
}
static void kv_str(out_t *o, const char *key, const char *v) {
    put_cstr(o, key);
    put_u32(o, QC_GGUF_STRING);
    put_cstr(o, v);
}
static void kv_arr_head(out_t *o, const char *key, uint32_t elem_type, uint64_t n) {
    put_cstr(o, key);
    put_u32(o, QC_GGUF_ARRAY);
    put_u32(o, elem_type);
    put_u64(o, n);
}

/* ==== the tokenizer (tokenizer.json, tokenizer_config.json) ==== */

/* Special-token kinds written, in this order (as the fixtures have them). */
enum { SP_BOS, SP_EOS, SP_PAD, SP_COUNT };
static const char *const sp_names[SP_COUNT] = {"bos", "eos", "pad"};
static const char *const sp_keys[SP_COUNT] = {
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.padding_token_id"};

typedef struct {
    json_t *tok;         /* tokenizer.json (owned) */
    json_t *tcfg;        /* tokenizer_config.json (owned; NULL when absent) */
    int32_t n;           /* tokens = config vocab_size */
    const char **text;   /* [n] each token's GGUF text (borrowed from tok or pad_buf) */
    size_t *len;         /* [n] its length in bytes */
    int32_t *type;       /* [n] llama.cpp token type */
    char *pad_buf;       /* storage of the "[PAD<id>]" names */
    json_t *merges;      /* borrowed from tok: "a b" strings or ["a", "b"] pairs */
    int special[SP_COUNT]; /* ids, -1 when unknown */
    int add_bos, add_eos;  /* from tokenizer_config.json; -1 when absent */
    const char *chat_template; /* borrowed from tcfg or template_buf; NULL if none */
    char *template_buf;
} vocab_t;

static void vocab_free(vocab_t *v) {
    json_decref(v->tok);
    json_decref(v->tcfg);
    free(v->text);
    free(v->len);
    free(v->type);
    free(v->pad_buf);
    free(v->template_buf);
    memset(v, 0, sizeof *v);
}

/* Parses a JSON file into an object. *out = NULL and QC_OK when the file
 * does not exist and `optional`. */
static qc_status load_json_obj(const char *path, int optional, json_t **out, char *err,
                               size_t err_size) {
    *out = NULL;
    if (optional && access(path, F_OK) != 0) return QC_OK;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (access(path, R_OK) != 0)
            return qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", path, strerror(errno));
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s:%d:%d: malformed JSON: %s", path,
                         je.line, je.column, je.text);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: top level is not a JSON object", path);
    }
    *out = root;
    return QC_OK;
}

/* The merge at index i as its two halves; 0 when it is neither "a b" nor a
 * pair of strings. */
static int merge_parts(json_t *m, const char **a, size_t *la, const char **b, size_t *lb) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (!sp || sp == s || !sp[1]) return 0;
        *a = s, *la = (size_t)(sp - s), *b = sp + 1, *lb = strlen(sp + 1);
        return 1;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *la = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *lb = json_string_length(json_array_get(m, 1));
        return 1;
    }
    return 0;
}

/* The id of the added token whose content is `content`, or -1. */
static int added_id(json_t *added, const char *content) {
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *c = json_object_get(a, "content"), *id = json_object_get(a, "id");
        if (json_is_string(c) && json_is_integer(id) && !strcmp(json_string_value(c), content))
            return (int)json_integer_value(id);
    }
    return -1;
}

/* Special ids as gguf-py's SpecialVocab finds them: tokenizer_config.json's
 * "<kind>_token" (a string or {"content": ...}) looked up among the added
 * tokens, else config.json's "<kind>_token_id" (the first of a list). Ids
 * outside the vocabulary are dropped, as gguf-py does. */
static void find_specials(vocab_t *v, json_t *added, json_t *config) {
    for (int k = 0; k < SP_COUNT; k++) {
        char key[32];
        int id = -1;
        snprintf(key, sizeof key, "%s_token", sp_names[k]);
        json_t *e = v->tcfg ? json_object_get(v->tcfg, key) : NULL;
        if (json_is_object(e)) e = json_object_get(e, "content");
        if (json_is_string(e)) id = added_id(added, json_string_value(e));
        if (id < 0 && config) {
            snprintf(key, sizeof key, "%s_token_id", sp_names[k]);
            e = json_object_get(config, key);
            if (json_is_array(e)) e = json_array_get(e, 0);
            if (json_is_integer(e) && json_integer_value(e) >= 0 &&
                json_integer_value(e) < INT32_MAX)
                id = (int)json_integer_value(e);
        }
        v->special[k] = id >= 0 && id < v->n ? id : -1;
    }
}

/* tokenizer.chat_template: tokenizer_config.json's "chat_template" (a string,
 * or a list of {name, template} whose "default" entry is taken), else the
 * chat_template.jinja file newer Hugging Face folders carry. */
static qc_status find_template(vocab_t *v, const char *dir, char *err, size_t err_size) {
    json_t *t = v->tcfg ? json_object_get(v->tcfg, "chat_template") : NULL;
    if (json_is_string(t)) {
        v->chat_template = json_string_value(t);
        return QC_OK;
    }
    if (json_is_array(t)) {
        size_t i;
        json_t *e;
        json_array_foreach(t, i, e) {
            json_t *name = json_object_get(e, "name"), *tpl = json_object_get(e, "template");
            if (json_is_string(name) && json_is_string(tpl) &&
                !strcmp(json_string_value(name), "default"))
                v->chat_template = json_string_value(tpl);
        }
        return QC_OK;
    }
    char *path = qc_path_join(dir, "chat_template.jinja");
    if (!path) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    if (access(path, F_OK) == 0) {
        size_t len;
        v->template_buf = qc_read_file(path, &len, err, err_size);
        if (!v->template_buf) {
            free(path);
            return QC_ERR_IO;
        }
        v->chat_template = v->template_buf;
    }
    free(path);
    return QC_OK;
}

/* Reads the folder's tokenizer into v: every id 0..n-1 gets a text and a
 * type (vocabulary entries NORMAL; added tokens CONTROL when special,
 * USER_DEFINED otherwise; ids nobody uses "[PAD<id>]" UNUSED, as llama.cpp's
 * converter pads Qwen's 151,669 tokens up to the 151,936 embedding rows). */
static qc_status vocab_load(vocab_t *v, const char *dir, int32_t n_vocab, char *err,
                            size_t err_size) {
    memset(v, 0, sizeof *v);
    v->add_bos = v->add_eos = -1;
    qc_status s = QC_OK;
    json_t *config = NULL;
    char *p_tok = qc_path_join(dir, "tokenizer.json");
    char *p_cfg = qc_path_join(dir, "tokenizer_config.json");
    char *p_model = qc_path_join(dir, "config.json");
    if (!p_tok || !p_cfg || !p_model) {
        s = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((s = load_json_obj(p_tok, 0, &v->tok, err, err_size))) goto done;
    if ((s = load_json_obj(p_cfg, 1, &v->tcfg, err, err_size))) goto done;
    if ((s = load_json_obj(p_model, 0, &config, err, err_size))) goto done;

    json_t *model = json_object_get(v->tok, "model");
    json_t *type = json_object_get(model, "type");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *added = json_object_get(v->tok, "added_tokens");
    v->merges = json_object_get(model, "merges");
    if (!json_is_string(type) || strcmp(json_string_value(type), "BPE") != 0) {
        s = qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                      "%s: model.type is not \"BPE\" (only byte-level BPE tokenizers convert)",
                      p_tok);
        goto done;
    }
    if (!json_is_object(vocab) || !json_is_array(v->merges) || (added && !json_is_array(added))) {
        s = qc_seterr(err, err_size, QC_ERR_FORMAT,
                      "%s: model.vocab, model.merges or added_tokens is missing or malformed",
                      p_tok);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(v->merges); i++) {
        const char *a, *b;
        size_t la, lb;
        if (!merge_parts(json_array_get(v->merges, i), &a, &la, &b, &lb)) {
            s = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: model.merges[%zu] is malformed",
                          p_tok, i);
            goto done;
        }
    }

    v->n = n_vocab;
    v->text = calloc((size_t)n_vocab, sizeof *v->text);
    v->len = calloc((size_t)n_vocab, sizeof *v->len);
    v->type = calloc((size_t)n_vocab, sizeof *v->type);
    if (!v->text || !v->len || !v->type) {
        s = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory for %d tokens", n_vocab);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || id >= n_vocab) {
            s = qc_seterr(err, err_size, QC_ERR_FORMAT,
                          "%s: model.vocab[\"%.40s\"] is not an id below vocab_size %d", p_tok,
                          key, n_vocab);
            goto done;
        }
        if (v->text[id]) {
            s = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: id %lld appears twice in model.vocab",
                          p_tok, (long long)id);
            goto done;
        }
        v->text[id] = key;
        v->len[id] = strlen(key);
        v->type[id] = TOK_NORMAL;
    }
    size_t i;
    json_array_foreach(added, i, val) {
        json_t *id_j = json_object_get(val, "id"), *content = json_object_get(val, "content");
        json_int_t id = json_is_integer(id_j) ? json_integer_value(id_j) : -1;
        if (id < 0 || id >= n_vocab || !json_is_string(content) ||
            !json_string_length(content)) {
            s = qc_seterr(err, err_size, QC_ERR_FORMAT,
                          "%s: added_tokens[%zu] has no content or an id outside [0, %d)", p_tok,
                          i, n_vocab);
            goto done;
        }
        v->text[id] = json_string_value(content);
        v->len[id] = json_string_length(content);
        v->type[id] = json_is_true(json_object_get(val, "special")) ? TOK_CONTROL
                                                                    : TOK_USER_DEFINED;
    }
    int32_t n_pad = 0;
    for (int32_t id = 0; id < n_vocab; id++) n_pad += !v->text[id];
    if (n_pad) {
        const size_t slot = 24; /* "[PAD" + 10 digits + "]" + NUL */
        v->pad_buf = malloc((size_t)n_pad * slot);
        if (!v->pad_buf) {
            s = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
            goto done;
        }
        char *q = v->pad_buf;
        for (int32_t id = 0; id < n_vocab; id++) {
            if (v->text[id]) continue;
            v->len[id] = (size_t)snprintf(q, slot, "[PAD%d]", (int)id);
            v->text[id] = q;
            v->type[id] = TOK_UNUSED;
            q += slot;
        }
    }

    find_specials(v, added, config);
    json_t *ab = v->tcfg ? json_object_get(v->tcfg, "add_bos_token") : NULL;
    json_t *ae = v->tcfg ? json_object_get(v->tcfg, "add_eos_token") : NULL;
    if (json_is_boolean(ab)) v->add_bos = json_is_true(ab);
    if (json_is_boolean(ae)) v->add_eos = json_is_true(ae);
    s = find_template(v, dir, err, err_size);
done:
    json_decref(config);
    free(p_tok);
    free(p_cfg);
    free(p_model);
    if (s) vocab_free(v);
    return s;
}

/* ==== the tensor plan ==== */

typedef struct {
    char name[64];  /* GGUF name */
    qc_tensor_t src; /* the Hugging Face tensor, [rows][cols] (rows 1 for vectors) */
    int n_dims;
    qc_dtype_t type; /* written as */
    uint64_t offset; /* within the data section */
    uint64_t nbytes;
} plan_t;

/* llama-quantize's order (llama_model_loader's weight_name_comparer): by
 * layer number, tensors outside the layers first, then by name. */
static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) l = -1;
    return l;
}
static int cmp_plan(const void *pa, const void *pb) {
    const plan_t *a = pa, *b = pb;
    int la = layer_of(a->name), lb = layer_of(b->name);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* The type a tensor is written as. 1-D tensors stay F32 (llama.cpp never
 * quantizes them). With Q8_0/Q4_0, the output matrix — output.weight, or the
 * tied token_embd.weight that serves as output — follows llama-quantize's
 * rule for it: Q6_K when the columns fill 256-weight blocks, else Q8_0;
 * qcare writes Q8_0 in both cases (it has no Q6_K quantizer). */
static qc_dtype_t choose_type(const char *name, int n_dims, int has_output, qc_dtype_t type) {
    if (n_dims == 1) return QC_DTYPE_F32;
    if (type != QC_DTYPE_Q8_0 && type != QC_DTYPE_Q4_0) return type;
    int is_output = !strcmp(name, "output.weight") ||
                    (!has_output && !strcmp(name, "token_embd.weight"));
    return is_output ? QC_DTYPE_Q8_0 : type;
}

/* Lists the tensors to write from the bound weights, with types, sizes and
 * offsets. */
static qc_status plan_build(const qc_model_t *m, int has_output, qc_dtype_t type, plan_t *pl,
                            size_t *n_out, uint64_t *data_bytes, char *err, size_t err_size) {
    size_t n = 0;
    const qc_config_t *c = &m->cfg;
#define ADD(t, dims, fmt, ...)                                                    \
    do {                                                                          \
        snprintf(pl[n].name, sizeof pl[n].name, fmt, __VA_ARGS__);               \
        pl[n].src = (t);                                                          \
        pl[n].n_dims = (dims);                                                    \
        n++;                                                                      \
    } while (0)
    ADD(m->tok_embd, 2, "%s", "token_embd.weight");
    ADD(m->out_norm, 1, "%s", "output_norm.weight");
    if (has_output) ADD(m->lm_head, 2, "%s", "output.weight");
    for (int l = 0; l < c->n_layer; l++) {
        const qc_layer_t *L = &m->layers[l];
        ADD(L->attn_norm, 1, "blk.%d.attn_norm.weight", l);
        ADD(L->wq, 2, "blk.%d.attn_q.weight", l);
        ADD(L->wk, 2, "blk.%d.attn_k.weight", l);
        ADD(L->wv, 2, "blk.%d.attn_v.weight", l);
        if (c->qkv_bias) {
            ADD(L->bq, 1, "blk.%d.attn_q.bias", l);
            ADD(L->bk, 1, "blk.%d.attn_k.bias", l);
            ADD(L->bv, 1, "blk.%d.attn_v.bias", l);
        }
        if (c->qk_norm) {
            ADD(L->q_norm, 1, "blk.%d.attn_q_norm.weight", l);
            ADD(L->k_norm, 1, "blk.%d.attn_k_norm.weight", l);
        }
        ADD(L->wo, 2, "blk.%d.attn_output.weight", l);
        ADD(L->ffn_norm, 1, "blk.%d.ffn_norm.weight", l);
        ADD(L->w_gate, 2, "blk.%d.ffn_gate.weight", l);
        ADD(L->w_up, 2, "blk.%d.ffn_up.weight", l);
        ADD(L->w_down, 2, "blk.%d.ffn_down.weight", l);
    }
#undef ADD
    qsort(pl, n, sizeof *pl, cmp_plan);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        plan_t *t = &pl[i];
        t->type = choose_type(t->name, t->n_dims, has_output, type);
        size_t row = qc_row_bytes(t->type, t->src.cols);
        if (!row)
            return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                             "tensor %s: %lld columns do not fill %s's 32-weight blocks", t->name,
                             (long long)t->src.cols, qc_dtype_name(t->type));
        /* shapes are bounded by the config (dims <= 2^24): no overflow */
        t->nbytes = (uint64_t)row * (uint64_t)t->src.rows;
        t->offset = off;
        off += (t->nbytes + QC_GGUF_DEFAULT_ALIGNMENT - 1) / QC_GGUF_DEFAULT_ALIGNMENT * QC_GGUF_DEFAULT_ALIGNMENT;
    }
    *n_out = n;
    *data_bytes = off;
    return QC_OK;
}

/* ==== writing ==== */

/* llama.cpp's converter writes {arch}.attention.key_length/value_length when
 * config.json has head_dim (Qwen3 always); for Qwen2 they would equal
 * llama.cpp's default, embedding / heads, and are left out unless they
 * differ. */
static int writes_head_dim(const qc_config_t *c) {
    return c->arch == QC_ARCH_QWEN3 || c->head_dim * c->n_head != c->n_embd;
}

static void write_metadata(out_t *o, const qc_config_t *c, const char *name, const vocab_t *v,
                           qc_dtype_t type) {
    const char *arch = c->arch == QC_ARCH_QWEN3 ? "qwen3" : "qwen2";
    char key[96];
#define ARCH_KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    kv_str(o, "general.architecture", arch);
    kv_str(o, "general.name", name);
    kv_u32(o, ARCH_KEY("context_length"), (uint32_t)c->n_ctx_train);
    kv_u32(o, ARCH_KEY("embedding_length"), (uint32_t)c->n_embd);
    kv_u32(o, ARCH_KEY("block_count"), (uint32_t)c->n_layer);
    kv_u32(o, ARCH_KEY("feed_forward_length"), (uint32_t)c->n_ff);
    kv_u32(o, ARCH_KEY("attention.head_count"), (uint32_t)c->n_head);
    kv_u32(o, ARCH_KEY("attention.head_count_kv"), (uint32_t)c->n_head_kv);
    if (writes_head_dim(c)) {
        kv_u32(o, ARCH_KEY("attention.key_length"), (uint32_t)c->head_dim);
        kv_u32(o, ARCH_KEY("attention.value_length"), (uint32_t)c->head_dim);
    }
    kv_f32(o, ARCH_KEY("rope.freq_base"), c->rope_theta);
    kv_f32(o, ARCH_KEY("attention.layer_norm_rms_epsilon"), c->rms_eps);
#undef ARCH_KEY

    kv_str(o, "tokenizer.ggml.model", "gpt2");
    kv_str(o, "tokenizer.ggml.pre", "qwen2");
    kv_arr_head(o, "tokenizer.ggml.tokens", QC_GGUF_STRING, (uint64_t)v->n);
    for (int32_t i = 0; i < v->n; i++) put_str(o, v->text[i], v->len[i]);
    kv_arr_head(o, "tokenizer.ggml.token_type", QC_GGUF_INT32, (uint64_t)v->n);
    put(o, v->type, (size_t)v->n * sizeof *v->type);
    size_t n_merges = json_array_size(v->merges);
    kv_arr_head(o, "tokenizer.ggml.merges", QC_GGUF_STRING, n_merges);
    for (size_t i = 0; i < n_merges; i++) {
        const char *a, *b;
        size_t la, lb;
        merge_parts(json_array_get(v->merges, i), &a, &la, &b, &lb); /* checked at load */
        put_u64(o, la + 1 + lb);
        put(o, a, la);
        put(o, " ", 1);
        put(o, b, lb);
    }
    for (int k = 0; k < SP_COUNT; k++)
        if (v->special[k] >= 0) kv_u32(o, sp_keys[k], (uint32_t)v->special[k]);
    /* Qwen's tokenizers never add a BOS; llama.cpp would otherwise decide by
     * itself, so the flag is always written. */
    kv_bool(o, "tokenizer.ggml.add_bos_token", v->add_bos > 0);
    if (v->add_eos >= 0) kv_bool(o, "tokenizer.ggml.add_eos_token", v->add_eos);
    if (v->chat_template) kv_str(o, "tokenizer.chat_template", v->chat_template);

    kv_u32(o, "general.quantization_version", QUANT_VERSION);
    kv_u32(o, "general.file_type", qc_gguf_file_type(type));
}

static size_t count_kv(const qc_config_t *c, const vocab_t *v) {
    size_t n = 2 + 8 + 5 + 1 + 2; /* general, arch, tokenizer (+add_bos), quant/file type */
    n += 2 * writes_head_dim(c);
    for (int k = 0; k < SP_COUNT; k++) n += v->special[k] >= 0;
    n += v->add_eos >= 0;
    n += v->chat_template != NULL;
    return n;
}

/* Converts and writes each tensor's rows, then its padding. */
static qc_status write_tensors(out_t *o, const plan_t *pl, size_t n, uint64_t data_bytes,
                               qc_progress_fn progress, void *user, char *err, size_t err_size) {
    int64_t max_cols = 0;
    for (size_t i = 0; i < n; i++)
        if (pl[i].src.cols > max_cols) max_cols = pl[i].src.cols;
    float *row = malloc((size_t)max_cols * sizeof *row);
    void *conv = malloc((size_t)max_cols * 4);
    if (!row || !conv) {
        free(row);
        free(conv);
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    }
    const uint64_t base = o->pos;
    double reported = 0;
    for (size_t i = 0; i < n && !o->err; i++) {
        const plan_t *t = &pl[i];
        const int64_t cols = t->src.cols;
        for (int64_t r = 0; r < t->src.rows && !o->err; r++) {
            qc_dequantize_row(&t->src, r, row);
            switch (t->type) {
            case QC_DTYPE_F32: put(o, row, (size_t)cols * 4); break;
            case QC_DTYPE_F16:
            case QC_DTYPE_BF16: {
                uint16_t *h = conv;
                for (int64_t k = 0; k < cols; k++)
                    h[k] = t->type == QC_DTYPE_F16 ? qc_f32_to_f16(row[k]) : qc_f32_to_bf16(row[k]);
                put(o, h, (size_t)cols * 2);
                break;
            }
            case QC_DTYPE_Q8_0:
            case QC_DTYPE_Q4_0:
                qc_quantize_row(t->type, row, conv, cols);
                put(o, conv, qc_row_bytes(t->type, cols));
                break;
            default: break; /* choose_type gives only the types above */
            }
            double f = data_bytes ? (double)(o->pos - base) / (double)data_bytes : 1.0;
            if (progress && f - reported >= 0.002 && f < 1.0) {
                progress(user, f);
                reported = f;
            }
        }
        put_pad(o);
    }
    free(row);
    free(conv);
    if (o->err) return QC_OK; /* reported by the caller, which knows the path */
    if (o->pos - base != data_bytes)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "internal error: %llu data bytes, planned %llu",
                         (unsigned long long)(o->pos - base), (unsigned long long)data_bytes);
    if (progress) progress(user, 1.0);
    return QC_OK;
}

/* general.name: the folder's last component ("tiny-qwen3" for
 * "models/tiny-qwen3/"). */
static void folder_name(const char *dir, char *out, size_t cap) {
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/') start--;
    size_t len = end - start;
    if (len == 0 || (len == 1 && dir[start] == '/') || (len == 1 && dir[start] == '.') ||
        (len == 2 && !strncmp(dir + start, "..", 2))) {
        snprintf(out, cap, "model");
        return;
    }
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), dir + start);
}

qc_status qc_gguf_convert(const char *hf_dir, const char *out_path, qc_dtype_t type,
                          qc_progress_fn progress, void *user, char *err, size_t err_size) {
    if (!hf_dir || !out_path || !*out_path)
        return qc_seterr(err, err_size, QC_ERR_ARG, "qc_gguf_convert: NULL argument");
    if (type != QC_DTYPE_F32 && type != QC_DTYPE_F16 && type != QC_DTYPE_BF16 &&
        type != QC_DTYPE_Q8_0 && type != QC_DTYPE_Q4_0)
        return qc_seterr(err, err_size, QC_ERR_ARG, "qc_gguf_convert: unknown type %d", (int)type);
    struct stat sb;
    if (stat(hf_dir, &sb) != 0)
        return qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", hf_dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return qc_seterr(err, err_size, QC_ERR_ARG,
                         "%s: not a folder (expected a Hugging Face model folder)", hf_dir);
    if (lstat(out_path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return qc_seterr(err, err_size, QC_ERR_ARG, "%s: exists and is not a regular file; not replaced", out_path);

    qc_status s = QC_OK;
    qc_model_t *m = calloc(1, sizeof *m);
    qc_st_t *st = NULL;
    vocab_t v = {0};
    plan_t *pl = NULL;
    char *cfg_path = qc_path_join(hf_dir, "config.json");
    char *tmp = NULL;
    FILE *f = NULL;
    int fd = -1;
    if (!m || !cfg_path) {
        s = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((s = qc_config_load(cfg_path, &m->cfg, err, err_size))) goto fail;
    const qc_config_t *c = &m->cfg;
    if (c->arch == QC_ARCH_QWEN3 && c->qkv_bias) {
        s = qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                      "%s: attention_bias is true, but llama.cpp's qwen3 architecture has no "
                      "attention biases",
                      cfg_path);
        goto fail;
    }
    if ((s = qc_st_open_dir(hf_dir, &st, err, err_size))) goto fail;
    if ((s = qc_weights_bind(m, st, err, err_size))) goto fail;
    const int has_output = qc_st_find(st, "lm_head.weight") != NULL;
    if ((s = vocab_load(&v, hf_dir, c->n_vocab, err, err_size))) goto fail;

    size_t n_tensors = 0;
    uint64_t data_bytes = 0;
    pl = calloc((size_t)(3 + 14 * c->n_layer), sizeof *pl);
    if (!pl) {
        s = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((s = plan_build(m, has_output, type, pl, &n_tensors, &data_bytes, err, err_size)))
        goto fail;

    /* A temporary file in the destination's folder, so the rename is atomic
     * and a reader never sees half a file. */
    size_t tn = strlen(out_path) + 32;
    tmp = malloc(tn);
    if (!tmp) {
        s = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    snprintf(tmp, tn, "%s.tmp%ld", out_path, (long)getpid());
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0 || !(f = fdopen(fd, "wb"))) {
        s = qc_seterr(err, err_size, QC_ERR_IO, "%s: cannot write: %s", out_path, strerror(errno));
        goto fail;
    }
    fd = -1; /* owned by f now */
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    out_t o = {.f = f};

    char name[256];
    folder_name(hf_dir, name, sizeof name);
    put(&o, "GGUF", 4);
    put_u32(&o, QC_GGUF_VERSION);
    put_u64(&o, n_tensors);
    put_u64(&o, count_kv(c, &v));
    write_metadata(&o, c, name, &v, type);
    for (size_t i = 0; i < n_tensors; i++) {
        const plan_t *t = &pl[i];
        put_cstr(&o, t->name);
        put_u32(&o, (uint32_t)t->n_dims);
        put_u64(&o, (uint64_t)t->src.cols);
        if (t->n_dims == 2) put_u64(&o, (uint64_t)t->src.rows);
        put_u32(&o, qc_ggml_type_of(t->type));
        put_u64(&o, t->offset);
    }
    put_pad(&o);
    vocab_free(&v); /* the tokenizer's memory is not needed while the weights stream */
    if ((s = write_tensors(&o, pl, n_tensors, data_bytes, progress, user, err, err_size)))
        goto fail;
    if (!o.err && fflush(f) != 0) o.err = errno;
    if (!o.err && fsync(fileno(f)) != 0 && errno != EINVAL) o.err = errno;
    int close_err = fclose(f) != 0 ? errno : 0;
    f = NULL;
    if (!o.err) o.err = close_err;
    if (o.err) {
        s = qc_seterr(err, err_size, QC_ERR_IO, "%s: write failed: %s", out_path, strerror(o.err));
        goto fail;
    }
    /* Never replace what is not a regular file (a device, a folder, a
     * symbolic link): the caller asked for a file. */
    struct stat ob;
    if (lstat(out_path, &ob) == 0 && !S_ISREG(ob.st_mode)) {
        s = qc_seterr(err, err_size, QC_ERR_ARG, "%s: exists and is not a regular file; not replaced", out_path);
        goto fail;
    }
    if (rename(tmp, out_path) != 0) {
        s = qc_seterr(err, err_size, QC_ERR_IO, "%s: cannot write: %s", out_path, strerror(errno));
        goto fail;
    }
    goto done;
fail:
    if (f) fclose(f);
    if (fd >= 0) close(fd);
    if (tmp) unlink(tmp);
done:
    free(tmp);
    free(pl);
    vocab_free(&v);
    qc_st_close(st);
    if (m) free(m->layers);
    free(m);
    free(cfg_path);
    return s;
}
