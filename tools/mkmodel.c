/* mkmodel.c — the fixture-model generator (see mkmodel.h).
 *
 * Every weight is a pure function of (tensor name, element index, model
 * seed), computed with integer arithmetic only and exactly representable in
 * BF16, so this writer and the independent Python one behind
 * ../shared/fixtures/models/NAME.manifest.json produce identical bytes. The
 * tensors are generated and written a chunk at a time: the 0.93 GB bench
 * model never sits in memory. */
#include "mkmodel.h"

#include "engine/engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ==== presets (../shared/fixtures/README.md, "Fixture models") ==== */

typedef struct {
    const char *name;
    qc_arch_t arch;
    int hidden, inter, layers, heads, kv_heads, head_dim;
    int qkv_bias, qk_norm, tie;
    uint64_t seed;
    int max_pos; /* max_position_embeddings */
} preset_t;

static const preset_t PRESETS[] = {
    {"tiny-qwen2", QC_ARCH_QWEN2, 64, 160, 2, 4, 2, 16, 1, 0, 0, 1, 4096},
    {"tiny-qwen3", QC_ARCH_QWEN3, 64, 160, 2, 4, 2, 32, 0, 1, 1, 2, 4096},
    {"bench-qwen1.5-0.5b", QC_ARCH_QWEN2, 1024, 2816, 24, 16, 16, 64, 1, 0, 1, 3, 4096},
    {"qwen2.5-0.5b", QC_ARCH_QWEN2, 896, 4864, 24, 14, 2, 64, 1, 0, 1, 4, 32768},
    {"qwen3-0.6b", QC_ARCH_QWEN3, 1024, 3072, 28, 16, 8, 128, 0, 1, 1, 5, 40960},
    /* the sources of the K-quant fixture GGUFs (models/kq-*.gguf) */
    {"kq-qwen2", QC_ARCH_QWEN2, 256, 768, 4, 4, 2, 64, 1, 0, 1, 6, 4096},
    {"kq-qwen2-odd", QC_ARCH_QWEN2, 320, 864, 2, 5, 1, 64, 1, 0, 1, 7, 4096},
};
#define N_PRESETS (sizeof PRESETS / sizeof PRESETS[0])

#define VOCAB 151936
#define BOS_ID 151643
#define EOS_ID 151645

const char *const *qc_mkmodel_presets(void) {
    static const char *const names[] = {"tiny-qwen2", "tiny-qwen3", "bench-qwen1.5-0.5b",
                                        "qwen2.5-0.5b", "qwen3-0.6b", "kq-qwen2",
                                        "kq-qwen2-odd", NULL};
    return names;
}

/* ==== the value generator ==== */

static uint64_t fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

/* The i-th (0-based) output of splitmix64 seeded with `seed`. */
static inline uint64_t splitmix_at(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* BF16 bits of a float that BF16 holds exactly (so truncation is exact). */
static uint16_t bf16_exact(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)(u >> 16);
}

enum { KIND_NORM, KIND_EMBED, KIND_BIAS, KIND_MATRIX };

typedef struct {
    char name[96];
    int64_t rows; /* 0 for a vector */
    int64_t cols;
    int kind;
    uint64_t offset; /* byte offset in the data region */
} spec_t;

/* e of the README: 6 + ceil(log2(fan_in) / 2), i.e. 6 + the least k with
 * 4^k >= fan_in (exact in integers, unlike a floating log2). */
static int matrix_exp(int64_t fan_in) {
    int k = 0;
    for (uint64_t p = 1; p < (uint64_t)fan_in; p *= 4) k++;
    return 6 + k;
}

/* The 256 possible BF16 values of a tensor, indexed by the top byte of x_i
 * (norm weights use only its top 7 bits, so both halves repeat). */
static void value_table(const spec_t *t, uint16_t lut[256]) {
    for (int b = 0; b < 256; b++) {
        if (t->kind == KIND_NORM) {
            lut[b] = bf16_exact((float)(64 + (b >> 1)) / 128.0f);
        } else {
            int e = t->kind == KIND_EMBED ? 8 : t->kind == KIND_BIAS ? 9 : matrix_exp(t->cols);
            lut[b] = bf16_exact((float)(b - 128) * (1.0f / (float)(1u << e)));
        }
    }
}

/* ==== tensor list ==== */

static int cmp_spec(const void *a, const void *b) {
    return strcmp(((const spec_t *)a)->name, ((const spec_t *)b)->name);
}

static void add_spec(spec_t *v, size_t *n, const char *name, int64_t rows, int64_t cols,
                     int kind) {
    spec_t *t = &v[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->kind = kind;
}

/* Fills v (room for 3 + 14 per layer) with the preset's tensors, sorted by
 * name, and returns how many. */
static size_t list_tensors(const preset_t *p, spec_t *v) {
    size_t n = 0;
    char nm[96];
    const int64_t E = p->hidden, F = p->inter, Q = (int64_t)p->heads * p->head_dim,
                  KV = (int64_t)p->kv_heads * p->head_dim, D = p->head_dim;
    add_spec(v, &n, "model.embed_tokens.weight", VOCAB, E, KIND_EMBED);
    add_spec(v, &n, "model.norm.weight", 0, E, KIND_NORM);
    if (!p->tie) add_spec(v, &n, "lm_head.weight", VOCAB, E, KIND_EMBED);
#define L(suffix, r, c, k)                                                   \
    do {                                                                     \
        snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix);            \
        add_spec(v, &n, nm, r, c, k);                                        \
    } while (0)
    for (int l = 0; l < p->layers; l++) {
        L("input_layernorm.weight", 0, E, KIND_NORM);
        L("post_attention_layernorm.weight", 0, E, KIND_NORM);
        L("self_attn.q_proj.weight", Q, E, KIND_MATRIX);
        L("self_attn.k_proj.weight", KV, E, KIND_MATRIX);
        L("self_attn.v_proj.weight", KV, E, KIND_MATRIX);
        L("self_attn.o_proj.weight", E, Q, KIND_MATRIX);
        if (p->qkv_bias) {
            L("self_attn.q_proj.bias", 0, Q, KIND_BIAS);
            L("self_attn.k_proj.bias", 0, KV, KIND_BIAS);
            L("self_attn.v_proj.bias", 0, KV, KIND_BIAS);
        }
        if (p->qk_norm) {
            L("self_attn.q_norm.weight", 0, D, KIND_NORM);
            L("self_attn.k_norm.weight", 0, D, KIND_NORM);
        }
        L("mlp.gate_proj.weight", F, E, KIND_MATRIX);
        L("mlp.up_proj.weight", F, E, KIND_MATRIX);
        L("mlp.down_proj.weight", E, F, KIND_MATRIX);
    }
#undef L
    qsort(v, n, sizeof *v, cmp_spec);
    return n;
}

static uint64_t n_elems(const spec_t *t) { return (uint64_t)(t->rows ? t->rows : 1) * (uint64_t)t->cols; }

/* ==== files ==== */

/* mkdir -p. */
static int make_dirs(const char *path) {
    char *p = strdup(path);
    if (!p) return -1;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) rc = -1;
            *s = c;
            if (rc || c == 0) break;
        }
    }
    free(p);
    return rc;
}

/* Temporary name for `final` in the same folder (so rename is atomic). */
static char *tmp_name(const char *final) {
    size_t n = strlen(final) + 32;
    char *t = malloc(n);
    if (t) snprintf(t, n, "%s.tmp%ld", final, (long)getpid());
    return t;
}

/* Closes f (written to tmp; `bad` if a write failed) and renames tmp to
 * final, or removes tmp and reports the failure. */
static qc_status finish_file(FILE *f, int bad, const char *tmp, const char *final, char *err, size_t err_size) {
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, final) != 0) {
        unlink(tmp);
        return qc_seterr(err, err_size, QC_ERR_IO, "%s: write failed: %s", final, strerror(errno));
    }
    return QC_OK;
}

/* Writes len bytes to dir/name through a temporary file. */
static qc_status write_atomic(const char *dir, const char *name, const char *buf, size_t len,
                              char *err, size_t err_size) {
    qc_status s = QC_OK;
    char *final = qc_path_join(dir, name), *tmp = final ? tmp_name(final) : NULL;
    FILE *f = NULL;
    if (!tmp) {
        s = qc_seterr(err, err_size, QC_ERR_NOMEM, "mkmodel: out of memory");
        goto done;
    }
    f = fopen(tmp, "wb");
    if (!f) {
        s = qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    s = finish_file(f, fwrite(buf, 1, len, f) != len, tmp, final, err, err_size);
done:
    free(final);
    free(tmp);
    return s;
}

/* Copies tokenizer file `name` from src_dir to dst_dir; a missing optional
 * file is skipped. */
static qc_status copy_file(const char *src_dir, const char *dst_dir, const char *name,
                           int required, char *err, size_t err_size) {
    char *src = qc_path_join(src_dir, name);
    if (!src) return qc_seterr(err, err_size, QC_ERR_NOMEM, "mkmodel: out of memory");
    if (!required && access(src, F_OK) != 0) {
        free(src);
        return QC_OK;
    }
    size_t len;
    char *buf = qc_read_file(src, &len, err, err_size);
    free(src);
    if (!buf) return QC_ERR_IO;
    qc_status s = write_atomic(dst_dir, name, buf, len, err, err_size);
    free(buf);
    return s;
}

/* ==== config files ==== */

static qc_status write_configs(const preset_t *p, const char *dir, char *err, size_t err_size) {
    char cfg[2048], extra[256];
    const int q3 = p->arch == QC_ARCH_QWEN3;
    if (q3)
        snprintf(extra, sizeof extra, "  \"attention_bias\": false,\n  \"head_dim\": %d,\n",
                 p->head_dim);
    else
        extra[0] = 0;
    int n = snprintf(cfg, sizeof cfg,
                     "{\n"
                     "  \"architectures\": [\n    \"%s\"\n  ],\n"
                     "%s"
                     "  \"attention_dropout\": 0.0,\n"
                     "  \"bos_token_id\": %d,\n"
                     "  \"eos_token_id\": %d,\n"
                     "  \"hidden_act\": \"silu\",\n"
                     "  \"hidden_size\": %d,\n"
                     "  \"initializer_range\": 0.02,\n"
                     "  \"intermediate_size\": %d,\n"
                     "  \"max_position_embeddings\": %d,\n"
                     "  \"max_window_layers\": %d,\n"
                     "  \"model_type\": \"%s\",\n"
                     "  \"num_attention_heads\": %d,\n"
                     "  \"num_hidden_layers\": %d,\n"
                     "  \"num_key_value_heads\": %d,\n"
                     "  \"rms_norm_eps\": 1e-06,\n"
                     "  \"rope_scaling\": null,\n"
                     "  \"rope_theta\": 1000000.0,\n"
                     "  \"sliding_window\": %d,\n"
                     "  \"tie_word_embeddings\": %s,\n"
                     "  \"torch_dtype\": \"bfloat16\",\n"
                     "  \"transformers_version\": \"4.51.0\",\n"
                     "  \"use_cache\": true,\n"
                     "  \"use_sliding_window\": false,\n"
                     "  \"vocab_size\": %d\n"
                     "}\n",
                     q3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM", extra, BOS_ID, EOS_ID,
                     p->hidden, p->inter, p->max_pos, p->layers, q3 ? "qwen3" : "qwen2",
                     p->heads, p->layers, p->kv_heads, p->max_pos, p->tie ? "true" : "false",
                     VOCAB);
    if (n < 0 || (size_t)n >= sizeof cfg)
        return qc_seterr(err, err_size, QC_ERR_ARG, "mkmodel: config too long");
    qc_status s = write_atomic(dir, "config.json", cfg, (size_t)n, err, err_size);
    if (s) return s;
    /* Qwen2.5-Instruct's sampling settings */
    n = snprintf(cfg, sizeof cfg,
                 "{\n"
                 "  \"bos_token_id\": %d,\n"
                 "  \"pad_token_id\": %d,\n"
                 "  \"do_sample\": true,\n"
                 "  \"eos_token_id\": [\n    %d,\n    %d\n  ],\n"
                 "  \"repetition_penalty\": 1.05,\n"
                 "  \"temperature\": 0.7,\n"
                 "  \"top_p\": 0.8,\n"
                 "  \"top_k\": 20,\n"
                 "  \"transformers_version\": \"4.51.0\"\n"
                 "}\n",
                 BOS_ID, BOS_ID, EOS_ID, BOS_ID);
    return write_atomic(dir, "generation_config.json", cfg, (size_t)n, err, err_size);
}

/* ==== model.safetensors ==== */

/* Builds the JSON header (tensors in name order, their data back to back in
 * the same order), padded with spaces to a multiple of 8 bytes as Hugging
 * Face does, and sets each spec's offset. *out is allocated. */
static qc_status build_header(spec_t *v, size_t n, char **out, size_t *out_len, char *err,
                              size_t err_size) {
    size_t cap = 256 + n * 192, len = 0;
    char *h = malloc(cap);
    if (!h) return qc_seterr(err, err_size, QC_ERR_NOMEM, "mkmodel: out of memory");
    len += (size_t)snprintf(h, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        spec_t *t = &v[i];
        uint64_t bytes = n_elems(t) * 2;
        t->offset = off;
        char shape[64];
        if (t->rows)
            snprintf(shape, sizeof shape, "[%lld,%lld]", (long long)t->rows, (long long)t->cols);
        else
            snprintf(shape, sizeof shape, "[%lld]", (long long)t->cols);
        /* each entry is < 192 bytes: name < 96, numbers < 64 */
        len += (size_t)snprintf(h + len, cap - len,
                                ",\"%s\":{\"dtype\":\"BF16\",\"shape\":%s,\"data_offsets\":[%llu,%llu]}",
                                t->name, shape, (unsigned long long)off,
                                (unsigned long long)(off + bytes));
        off += bytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';
    *out = h;
    *out_len = len;
    return QC_OK;
}

#define CHUNK (1u << 20) /* elements generated per write */

static qc_status write_safetensors(const preset_t *p, const char *dir, int progress, char *err,
                                   size_t err_size) {
    size_t max_specs = 3 + 14 * (size_t)p->layers;
    spec_t *v = calloc(max_specs, sizeof *v);
    uint16_t *buf = malloc(CHUNK * sizeof *buf);
    char *hdr = NULL, *final = qc_path_join(dir, "model.safetensors");
    char *tmp = final ? tmp_name(final) : NULL;
    FILE *f = NULL;
    qc_status s = QC_OK;
    if (!v || !buf || !tmp) {
        s = qc_seterr(err, err_size, QC_ERR_NOMEM, "mkmodel: out of memory");
        goto done;
    }
    size_t n = list_tensors(p, v), hlen = 0;
    s = build_header(v, n, &hdr, &hlen, err, err_size);
    if (s) goto done;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += n_elems(&v[i]);

    f = fopen(tmp, "wb");
    if (!f) {
        s = qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = fwrite(len8, 1, 8, f) != 8 || fwrite(hdr, 1, hlen, f) != hlen;
    uint64_t done_elems = 0;
    int last_pct = -1;
    /* a percentage that rewrites itself on a terminal; one summary line in logs */
    const int tty = isatty(STDERR_FILENO);
    const double t0 = qc_now_s();
    for (size_t ti = 0; ti < n && !bad; ti++) {
        const spec_t *t = &v[ti];
        uint16_t lut[256];
        value_table(t, lut);
        uint64_t seed = fnv1a64(t->name) ^ p->seed, count = n_elems(t);
        for (uint64_t i0 = 0; i0 < count && !bad; i0 += CHUNK) {
            size_t m = count - i0 < CHUNK ? (size_t)(count - i0) : CHUNK;
            for (size_t j = 0; j < m; j++) {
                uint16_t x = lut[splitmix_at(seed, i0 + j) >> 56];
                /* safetensors is little-endian */
                unsigned char *b = (unsigned char *)&buf[j];
                b[0] = (unsigned char)x;
                b[1] = (unsigned char)(x >> 8);
            }
            bad = fwrite(buf, 2, m, f) != m;
            done_elems += m;
            int pct = (int)(done_elems * 100 / (total ? total : 1));
            if (progress && tty && pct != last_pct) {
                fprintf(stderr, "\rmkmodel %s: %3d%% of %.2f GB", p->name, pct,
                        (double)total * 2 / 1e9);
                last_pct = pct;
            }
        }
    }
    if (progress)
        fprintf(stderr, "%smkmodel %s: %zu tensors, %.2f GB in %.1f s\n", tty ? "\r" : "", p->name,
                n, (double)total * 2 / 1e9, qc_now_s() - t0);
    s = finish_file(f, bad, tmp, final, err, err_size);
    f = NULL;
done:
    if (f) {
        fclose(f);
        unlink(tmp);
    }
    free(v);
    free(buf);
    free(hdr);
    free(final);
    free(tmp);
    return s;
}

/* ==== entry point ==== */

qc_status qc_mkmodel(const char *preset, const char *out_dir, const char *tokenizer_dir,
                     int progress, char *err, size_t err_size) {
    if (!preset || !out_dir || !*out_dir)
        return qc_seterr(err, err_size, QC_ERR_ARG, "mkmodel: preset and output folder needed");
    const preset_t *p = NULL;
    for (size_t i = 0; i < N_PRESETS; i++)
        if (strcmp(PRESETS[i].name, preset) == 0) p = &PRESETS[i];
    if (!p) {
        char list[256] = "";
        for (const char *const *n = qc_mkmodel_presets(); *n; n++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     n == qc_mkmodel_presets() ? "" : ", ", *n);
        return qc_seterr(err, err_size, QC_ERR_ARG, "mkmodel: unknown preset \"%s\" (known: %s)",
                         preset, list);
    }
    if (make_dirs(out_dir) != 0)
        return qc_seterr(err, err_size, QC_ERR_IO, "%s: cannot create: %s", out_dir,
                         strerror(errno));
    qc_status s;
    if (tokenizer_dir) {
        static const char *const files[] = {"tokenizer.json", "tokenizer_config.json",
                                            "vocab.json", "merges.txt"};
        for (int i = 0; i < 4; i++)
            if ((s = copy_file(tokenizer_dir, out_dir, files[i], i < 2, err, err_size))) return s;
    }
    if ((s = write_configs(p, out_dir, err, err_size))) return s;
    char note[256];
    int nn = snprintf(note, sizeof note, "qcare mkmodel --preset %s: random weights, for tests; its replies are noise.\n",
                      p->name);
    if ((s = write_atomic(out_dir, QC_MKMODEL_MARKER, note, (size_t)nn, err, err_size))) return s;
    return write_safetensors(p, out_dir, progress, err, err_size);
}
