/* test_convert.c — the GGUF writer and `qcare convert`.
 *
 * The reference is what llama.cpp's own tools wrote for tiny-qwen3
 * (../shared/fixtures/models/tiny-qwen3.{f16,q8_0,q4_0}.gguf, made from the
 * same weights that `qcare mkmodel` generates): our conversion of the
 * tiny-qwen3 folder must have the same metadata (keys, order, types, values),
 * the same tensors (names, order, shapes, types, offsets) and byte-identical
 * tensor data. Keys allowed to differ: general.name only (qcare writes the
 * folder's name; tests/run.sh names the folder tiny-qwen3, as the fixture is
 * named, so here the whole files are identical too).
 *
 * Also: tiny-qwen2 (untied output, biases) in every type, read back with an
 * independent minimal GGUF parser below and compared with the safetensors
 * source; failures (missing folder, broken tokenizer, unwritable output) leave
 * no file behind; the progress callback; the `qcare convert` command; and,
 * once the GGUF reader is linked into the library, logits from the converted
 * file equal to those from the folder.
 *
 * Env: QC_FIXTURES, QC_MODELS (the generated tiny models, default
 * build/models), QC_BUILD (for the qcare binary, default build). */
#include "engine/engine.h"
#include "engine/gguf_write.h"
#include "engine/kernels.h"
#include "test.h"
#include "hf_names.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_tmp[4096]; /* this run's scratch folder */

/* ==== a minimal GGUF parser, independent of the engine's ==== */

enum { T_STRING = 8, T_ARRAY = 9 };
enum { G_F32 = 0, G_F16 = 1, G_Q4_0 = 2, G_Q8_0 = 8, G_BF16 = 30 };

typedef struct {
    char key[256];
    uint32_t type;
    const unsigned char *val; /* the value's bytes as stored */
    size_t len;
} tkv_t;

typedef struct {
    char name[256];
    uint32_t n_dims, type;
    uint64_t ne[4], off;
} tti_t;

typedef struct {
    unsigned char *buf;
    size_t size;
    uint32_t version;
    uint64_t n_kv, n_t;
    tkv_t *kv;
    tti_t *t;
    size_t data; /* start of the data section */
} tgguf_t;

static int rd(const unsigned char **p, const unsigned char *end, void *out, size_t n) {
    if ((size_t)(end - *p) < n) return 0;
    memcpy(out, *p, n);
    *p += n;
    return 1;
}

static size_t fixed_size(uint32_t type) {
    static const size_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < 13 ? sz[type] : 0;
}

/* Skips one value of `type`; 0 on a malformed one. */
static int skip_value(const unsigned char **p, const unsigned char *end, uint32_t type, int depth) {
    uint64_t n;
    if (type == T_STRING) {
        if (!rd(p, end, &n, 8) || n > (uint64_t)(end - *p)) return 0;
        *p += n;
        return 1;
    }
    if (type == T_ARRAY) {
        uint32_t et;
        if (depth > 4 || !rd(p, end, &et, 4) || !rd(p, end, &n, 8)) return 0;
        if (fixed_size(et)) {
            if (n > (uint64_t)(end - *p) / fixed_size(et)) return 0;
            *p += n * fixed_size(et);
            return 1;
        }
        for (uint64_t i = 0; i < n; i++)
            if (!skip_value(p, end, et, depth + 1)) return 0;
        return 1;
    }
    if (!fixed_size(type) || fixed_size(type) > (size_t)(end - *p)) return 0;
    *p += fixed_size(type);
    return 1;
}

static int read_name(const unsigned char **p, const unsigned char *end, char *out, size_t cap) {
    uint64_t n;
    if (!rd(p, end, &n, 8) || n >= cap || n > (uint64_t)(end - *p)) return 0;
    memcpy(out, *p, n);
    out[n] = 0;
    *p += n;
    return 1;
}

static void tg_free(tgguf_t *g) {
    free(g->buf);
    free(g->kv);
    free(g->t);
    memset(g, 0, sizeof *g);
}

/* Reads the whole file and parses its header; 0 with a message on failure. */
static int tg_load(const char *path, tgguf_t *g) {
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return 0;
    }
    fseek(f, 0, SEEK_END);
    g->size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g->buf = malloc(g->size ? g->size : 1);
    int ok = g->buf && fread(g->buf, 1, g->size, f) == g->size;
    fclose(f);
    const unsigned char *p = g->buf + 4, *end = g->buf + g->size;
    ok = ok && g->size >= 24 && !memcmp(g->buf, "GGUF", 4) && rd(&p, end, &g->version, 4) &&
         rd(&p, end, &g->n_t, 8) && rd(&p, end, &g->n_kv, 8) && g->n_kv < 100000 && g->n_t < 100000;
    if (ok) {
        g->kv = calloc(g->n_kv + 1, sizeof *g->kv);
        g->t = calloc(g->n_t + 1, sizeof *g->t);
        ok = g->kv && g->t;
    }
    uint32_t align = 32;
    for (uint64_t i = 0; ok && i < g->n_kv; i++) {
        tkv_t *kv = &g->kv[i];
        ok = read_name(&p, end, kv->key, sizeof kv->key) && rd(&p, end, &kv->type, 4);
        kv->val = p;
        ok = ok && skip_value(&p, end, kv->type, 0);
        kv->len = (size_t)(p - kv->val);
        if (ok && !strcmp(kv->key, "general.alignment") && kv->type == 4) memcpy(&align, kv->val, 4);
    }
    for (uint64_t i = 0; ok && i < g->n_t; i++) {
        tti_t *t = &g->t[i];
        ok = read_name(&p, end, t->name, sizeof t->name) && rd(&p, end, &t->n_dims, 4) &&
             t->n_dims >= 1 && t->n_dims <= 4;
        for (uint32_t d = 0; ok && d < t->n_dims; d++) ok = rd(&p, end, &t->ne[d], 8);
        ok = ok && rd(&p, end, &t->type, 4) && rd(&p, end, &t->off, 8);
    }
    g->data = ((size_t)(p - g->buf) + align - 1) / align * align;
    ok = ok && g->data <= g->size;
    if (!ok) {
        fprintf(stderr, "%s: malformed GGUF header\n", path);
        tg_free(g);
    }
    return ok;
}

static const tkv_t *tg_kv(const tgguf_t *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

static const tti_t *tg_tensor(const tgguf_t *g, const char *name) {
    for (uint64_t i = 0; i < g->n_t; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

/* A string value as a fresh C string (caller frees); NULL if not a string. */
static char *tg_str(const tgguf_t *g, const char *key) {
    const tkv_t *kv = tg_kv(g, key);
    if (!kv || kv->type != T_STRING) return NULL;
    uint64_t n;
    memcpy(&n, kv->val, 8);
    char *s = malloc(n + 1);
    memcpy(s, kv->val + 8, n);
    s[n] = 0;
    return s;
}

static int64_t tg_u32(const tgguf_t *g, const char *key) {
    const tkv_t *kv = tg_kv(g, key);
    uint32_t v;
    if (!kv || kv->type != 4) return -1;
    memcpy(&v, kv->val, 4);
    return v;
}

static size_t type_row_bytes(uint32_t type, uint64_t cols) {
    switch (type) {
    case G_F32: return cols * 4;
    case G_F16:
    case G_BF16: return cols * 2;
    case G_Q8_0: return cols / 32 * 34;
    case G_Q4_0: return cols / 32 * 18;
    }
    return 0;
}

static size_t tensor_bytes(const tti_t *t) {
    size_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) rows *= t->ne[d];
    return type_row_bytes(t->type, t->ne[0]) * rows;
}

/* ==== helpers ==== */

static char *path2(const char *a, const char *b) {
    char *p = qc_path_join(a, b);
    if (!p) abort();
    return p;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* Files in g_tmp whose name contains ".tmp" (a leftover temporary file). */
static int count_leftovers(void) {
    DIR *d = opendir(g_tmp);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    return n;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT;
}

/* Removes the scratch folder and everything in it (links, not their targets). */
static void rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

static const char *type_names[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
static const qc_dtype_t type_vals[] = {QC_DTYPE_F32, QC_DTYPE_F16, QC_DTYPE_BF16, QC_DTYPE_Q8_0,
                                       QC_DTYPE_Q4_0};

/* Converts folder `model` to g_tmp/<stem>.<type>.gguf; returns the path
 * (caller frees) or NULL. */
static char *convert(const char *model, const char *stem, int ti) {
    char name[128], err[512];
    snprintf(name, sizeof name, "%s.%s.gguf", stem, type_names[ti]);
    char *out = path2(g_tmp, name);
    qc_status s = qc_gguf_convert(model, out, type_vals[ti], NULL, NULL, err, sizeof err);
    CHECK(s == QC_OK, "convert %s to %s: %s", model, type_names[ti], err);
    if (s) {
        free(out);
        return NULL;
    }
    return out;
}

/* ==== against llama.cpp's files ==== */

static void check_against_fixture(const char *model, int ti) {
    char fix[4096];
    snprintf(fix, sizeof fix, "%s/models/tiny-qwen3.%s.gguf", fixtures(), type_names[ti]);
    char *out = convert(model, "tiny-qwen3", ti);
    tgguf_t a, b;
    if (!out) return;
    if (!tg_load(fix, &a)) {
        CHECK(0, "cannot read fixture %s", fix);
        free(out);
        return;
    }
    if (!tg_load(out, &b)) {
        CHECK(0, "cannot read our %s", out);
        tg_free(&a);
        free(out);
        return;
    }
    const char *tn = type_names[ti];
    CHECK(b.version == 3 && a.version == b.version, "%s: version %u, llama.cpp's %u", tn, b.version, a.version);
    CHECK(a.n_kv == b.n_kv, "%s: %llu metadata keys, llama.cpp's %llu", tn, (unsigned long long)b.n_kv,
          (unsigned long long)a.n_kv);
    int kv_ok = 1;
    for (uint64_t i = 0; i < a.n_kv && i < b.n_kv; i++) {
        const tkv_t *x = &a.kv[i], *y = &b.kv[i];
        int same_key = !strcmp(x->key, y->key) && x->type == y->type;
        int same_val = x->len == y->len && !memcmp(x->val, y->val, x->len);
        if (!same_key || (!same_val && strcmp(x->key, "general.name") != 0)) {
            CHECK(0, "%s: key %llu is %s (type %u, %zu bytes), llama.cpp's %s (type %u, %zu bytes)", tn,
                  (unsigned long long)i, y->key, y->type, y->len, x->key, x->type, x->len);
            kv_ok = 0;
        }
    }
    CHECK(kv_ok, "%s: metadata differs", tn);
    CHECK(a.n_t == b.n_t, "%s: %llu tensors, llama.cpp's %llu", tn, (unsigned long long)b.n_t,
          (unsigned long long)a.n_t);
    CHECK(a.data == b.data, "%s: data section at %zu, llama.cpp's at %zu", tn, b.data, a.data);
    int t_ok = 1, d_ok = 1;
    for (uint64_t i = 0; i < a.n_t && i < b.n_t; i++) {
        const tti_t *x = &a.t[i], *y = &b.t[i];
        int same = !strcmp(x->name, y->name) && x->n_dims == y->n_dims && x->type == y->type &&
                   x->off == y->off && !memcmp(x->ne, y->ne, sizeof x->ne);
        if (!same) {
            CHECK(0, "%s: tensor %llu is %s type %u [%llu, %llu] at %llu; llama.cpp's %s type %u [%llu, %llu] at %llu",
                  tn, (unsigned long long)i, y->name, y->type, (unsigned long long)y->ne[0],
                  (unsigned long long)y->ne[1], (unsigned long long)y->off, x->name, x->type,
                  (unsigned long long)x->ne[0], (unsigned long long)x->ne[1], (unsigned long long)x->off);
            t_ok = 0;
            continue;
        }
        size_t nb = tensor_bytes(x);
        if (a.data + x->off + nb > a.size || b.data + y->off + nb > b.size ||
            memcmp(a.buf + a.data + x->off, b.buf + b.data + y->off, nb) != 0) {
            CHECK(0, "%s: data of %s differs from llama.cpp's", tn, x->name);
            d_ok = 0;
        }
    }
    CHECK(t_ok, "%s: tensor table differs", tn);
    CHECK(d_ok, "%s: tensor data differs", tn);
    CHECK(a.size == b.size, "%s: %zu bytes, llama.cpp's %zu", tn, b.size, a.size);
    /* general.name equal here (the folder is named like the fixture), so
     * nothing at all may differ */
    char *na = tg_str(&a, "general.name"), *nb = tg_str(&b, "general.name");
    CHECK(na && nb && !strcmp(na, nb), "%s: general.name %s, llama.cpp's %s", tn, nb ? nb : "?", na ? na : "?");
    if (na && nb && !strcmp(na, nb)) CHECK(files_equal(fix, out), "%s: files differ", tn);
    free(na);
    free(nb);
    tg_free(&a);
    tg_free(&b);
    free(out);
}

/* ==== tiny-qwen2: untied output, biases, every type ==== */

static float src_value(const qc_st_tensor_t *s, size_t i) {
    uint16_t h;
    float f;
    switch (s->dtype) {
    case QC_DTYPE_BF16: memcpy(&h, (const char *)s->data + 2 * i, 2); return qc_bf16_to_f32(h);
    case QC_DTYPE_F16: memcpy(&h, (const char *)s->data + 2 * i, 2); return qc_f16_to_f32(h);
    default: memcpy(&f, (const char *)s->data + 4 * i, 4); return f;
    }
}

/* Every tensor of the file against the safetensors source: exact for the
 * float types, within the quantization error for Q8_0 (half a step of
 * d = amax/127 per block, plus up to 127 times the half-precision rounding of
 * d, 2^-11 d) and Q4_0 (at most d = amax/8, where the clamp to 15 bites). */
static void check_data(const tgguf_t *g, const qc_st_t *st, const char *tn) {
    float *row = NULL;
    size_t row_cap = 0;
    int bad = 0;
    for (uint64_t i = 0; i < g->n_t && bad < 3; i++) {
        const tti_t *t = &g->t[i];
        char hf[256];
        test_hf_name(t->name, hf, sizeof hf);
        const qc_st_tensor_t *s = qc_st_find(st, hf);
        if (!s) {
            CHECK(0, "%s: no source tensor %s for %s", tn, hf, t->name);
            bad++;
            continue;
        }
        uint64_t cols = t->ne[0], rows = t->n_dims == 2 ? t->ne[1] : 1;
        int shape_ok = s->ndim == (int)t->n_dims && (uint64_t)s->shape[s->ndim - 1] == cols &&
                       (t->n_dims == 1 || (uint64_t)s->shape[0] == rows);
        CHECK(shape_ok, "%s: %s has ne [%llu, %llu], source shape differs", tn, t->name,
              (unsigned long long)cols, (unsigned long long)rows);
        if (!shape_ok || g->data + t->off + tensor_bytes(t) > g->size) {
            bad++;
            continue;
        }
        if (cols > row_cap) {
            free(row);
            row = malloc(cols * sizeof *row);
            row_cap = cols;
        }
        qc_dtype_t dt = t->type == G_F32 ? QC_DTYPE_F32 : t->type == G_F16 ? QC_DTYPE_F16
                      : t->type == G_BF16 ? QC_DTYPE_BF16 : t->type == G_Q8_0 ? QC_DTYPE_Q8_0
                                                                               : QC_DTYPE_Q4_0;
        qc_tensor_t w = {.data = g->buf + g->data + t->off, .dtype = dt, .rows = (int64_t)rows, .cols = (int64_t)cols};
        double worst = 0; /* error / allowed, over all blocks */
        for (uint64_t r = 0; r < rows; r++) {
            qc_dequantize_row(&w, (int64_t)r, row);
            for (uint64_t b = 0; b < cols; b += 32) {
                float amax = 0;
                for (uint64_t k = b; k < b + 32 && k < cols; k++) amax = fmaxf(amax, fabsf(src_value(s, r * cols + k)));
                double allowed = t->type == G_Q8_0 ? amax / 127.0 * (0.5 + 127.0 / 2048.0) * 1.01 + 1e-12
                               : t->type == G_Q4_0 ? amax / 8.0 * 1.01 + 1e-12 : 0.0;
                for (uint64_t k = b; k < b + 32 && k < cols; k++) {
                    double e = fabs((double)row[k] - (double)src_value(s, r * cols + k));
                    if (allowed == 0 ? e != 0 : e / allowed > worst) worst = allowed == 0 ? 2 : e / allowed;
                }
            }
        }
        CHECK(worst <= 1.0, "%s: %s differs from the source (error %.3g of the allowed)", tn, t->name, worst);
        bad += worst > 1.0;
    }
    free(row);
}

static void check_qwen2(const char *model) {
    char err[512];
    qc_st_t *st = NULL;
    CHECK(qc_st_open_dir(model, &st, err, sizeof err) == QC_OK, "open %s: %s", model, err);
    if (!st) return;
    char fix[4096];
    snprintf(fix, sizeof fix, "%s/models/tiny-qwen3.f16.gguf", fixtures());
    tgguf_t ref;
    int have_ref = tg_load(fix, &ref);
    CHECK(have_ref, "cannot read %s", fix);
    for (int ti = 0; ti < 5; ti++) {
        const char *tn = type_names[ti];
        char *out = convert(model, "tiny-qwen2", ti);
        tgguf_t g;
        if (!out) continue;
        if (!tg_load(out, &g)) {
            CHECK(0, "%s: our file does not parse", tn);
            free(out);
            continue;
        }
        char *arch = tg_str(&g, "general.architecture");
        CHECK(arch && !strcmp(arch, "qwen2"), "%s: architecture %s", tn, arch ? arch : "(none)");
        free(arch);
        CHECK(g.version == 3, "%s: version %u", tn, g.version);
        CHECK(tg_u32(&g, "general.file_type") == (int64_t)qc_gguf_file_type(type_vals[ti]),
              "%s: file_type %lld", tn, (long long)tg_u32(&g, "general.file_type"));
        CHECK(tg_u32(&g, "qwen2.embedding_length") == 64 && tg_u32(&g, "qwen2.block_count") == 2 &&
                  tg_u32(&g, "qwen2.feed_forward_length") == 160 && tg_u32(&g, "qwen2.attention.head_count") == 4 &&
                  tg_u32(&g, "qwen2.attention.head_count_kv") == 2 && tg_u32(&g, "qwen2.context_length") == 4096,
              "%s: qwen2 hyper-parameters", tn);
        /* llama.cpp's converter writes key_length only when config.json has
         * head_dim, which Qwen2 configs lack */
        CHECK(!tg_kv(&g, "qwen2.attention.key_length") && !tg_kv(&g, "qwen3.attention.key_length"),
              "%s: unexpected key_length", tn);
        /* the tokenizer is the fixture's (same tokenizer.json) */
        if (have_ref) {
            int tok_ok = 1;
            for (uint64_t i = 0; i < ref.n_kv; i++) {
                const tkv_t *x = &ref.kv[i], *y = tg_kv(&g, x->key);
                if (strncmp(x->key, "tokenizer.", 10) != 0) continue;
                tok_ok &= y && y->type == x->type && y->len == x->len && !memcmp(x->val, y->val, x->len);
            }
            CHECK(tok_ok, "%s: tokenizer metadata differs from llama.cpp's", tn);
        }
        CHECK(g.n_t == 3 + 2 * 12, "%s: %llu tensors, expected 27", tn, (unsigned long long)g.n_t);
        const tti_t *emb = tg_tensor(&g, "token_embd.weight"), *outw = tg_tensor(&g, "output.weight");
        CHECK(emb && outw, "%s: token_embd.weight / output.weight missing", tn);
        if (emb && outw) {
            CHECK(outw->n_dims == 2 && outw->ne[0] == 64 && outw->ne[1] == 151936, "%s: output.weight shape", tn);
            /* llama-quantize: output Q8_0 (64 columns do not fill Q6_K),
             * token_embd the file's type when the output is separate */
            uint32_t want_out = ti == 0 ? G_F32 : ti == 1 ? G_F16 : ti == 2 ? G_BF16 : G_Q8_0;
            uint32_t want_emb = ti == 4 ? G_Q4_0 : want_out;
            CHECK(outw->type == want_out && emb->type == want_emb, "%s: output type %u, token_embd %u", tn,
                  outw->type, emb->type);
        }
        int vec_ok = 1, order_ok = 1, align_ok = 1;
        uint64_t end = 0;
        for (uint64_t i = 0; i < g.n_t; i++) {
            const tti_t *t = &g.t[i];
            int is_vec = strstr(t->name, "norm") || strstr(t->name, ".bias");
            if (is_vec) vec_ok &= t->n_dims == 1 && t->type == G_F32;
            align_ok &= t->off % 32 == 0 && t->off >= end;
            end = t->off + tensor_bytes(t);
            if (i > 0) {
                int la = -1, lb = -1;
                sscanf(g.t[i - 1].name, "blk.%d.", &la);
                sscanf(t->name, "blk.%d.", &lb);
                order_ok &= la < lb || (la == lb && strcmp(g.t[i - 1].name, t->name) < 0);
            }
        }
        const tti_t *bq = tg_tensor(&g, "blk.1.attn_q.bias"), *bk = tg_tensor(&g, "blk.1.attn_k.bias");
        CHECK(bq && bk && bq->ne[0] == 64 && bk->ne[0] == 32, "%s: biases missing or wrong size", tn);
        CHECK(vec_ok, "%s: norms and biases must be 1-D F32", tn);
        CHECK(order_ok, "%s: tensors not in llama-quantize's order", tn);
        CHECK(align_ok, "%s: tensor offsets not 32-aligned and increasing", tn);
        CHECK(g.data % 32 == 0 && g.data + (end + 31) / 32 * 32 == g.size, "%s: data section %zu + %llu != file size %zu",
              tn, g.data, (unsigned long long)end, g.size);
        check_data(&g, st, tn);
        tg_free(&g);
        free(out);
    }
    if (have_ref) tg_free(&ref);
    qc_st_close(st);
}

/* ==== progress and failures ==== */

typedef struct {
    int calls, ones, decreasing;
    double last;
} prog_t;

static void on_progress(void *user, double f) {
    prog_t *p = user;
    p->calls++;
    p->ones += f == 1.0;
    p->decreasing |= f < p->last;
    p->last = f;
}

static void check_progress(const char *model) {
    char err[512];
    char *out = path2(g_tmp, "progress.gguf");
    prog_t p = {0};
    qc_status s = qc_gguf_convert(model, out, QC_DTYPE_Q8_0, on_progress, &p, err, sizeof err);
    CHECK(s == QC_OK, "convert with progress: %s", err);
    CHECK(p.calls >= 10 && p.calls <= 1000, "progress called %d times", p.calls);
    CHECK(p.ones == 1 && p.last == 1.0 && !p.decreasing, "progress: %d calls at 1, last %g, decreasing %d", p.ones,
          p.last, p.decreasing);
    unlink(out);
    free(out);
}

/* A copy of `model` (symlinks) whose file `broken` is replaced by `text`
 * (NULL: removed). */
static char *variant(const char *model, const char *name, const char *broken, const char *text) {
    static const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                  "generation_config.json"};
    char *dir = path2(g_tmp, name);
    mkdir(dir, 0777);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *dst = path2(dir, files[i]);
        if (!strcmp(files[i], broken)) {
            if (text) {
                FILE *f = fopen(dst, "wb");
                if (f) {
                    fputs(text, f);
                    fclose(f);
                }
            }
        } else {
            char *src = path2(model, files[i]);
            char abs[4096];
            if (realpath(src, abs) && symlink(abs, dst) != 0) perror("symlink");
            free(src);
        }
        free(dst);
    }
    return dir;
}

static void check_failure(const char *what, const char *model, const char *out, qc_dtype_t type,
                          const char *must_mention) {
    char err[512] = "";
    qc_status s = qc_gguf_convert(model, out, type, NULL, NULL, err, sizeof err);
    CHECK(s != QC_OK, "%s: conversion succeeded", what);
    CHECK(strstr(err, must_mention) != NULL, "%s: message '%s' does not mention '%s'", what, err, must_mention);
    CHECK(count_leftovers() == 0, "%s: a temporary file was left behind", what);
}

static void check_failures(const char *model) {
    char *out = path2(g_tmp, "fail.gguf");
    char *missing = path2(g_tmp, "no-such-model");
    check_failure("missing folder", missing, out, QC_DTYPE_F16, "no-such-model");
    CHECK(!exists(out), "missing folder: output created");

    char *bad_tok = variant(model, "bad-tokenizer", "tokenizer.json", "{\"model\": {\"type\": \"BPE\", ");
    check_failure("malformed tokenizer.json", bad_tok, out, QC_DTYPE_F16, "tokenizer.json");
    char *no_tok = variant(model, "no-tokenizer", "tokenizer.json", NULL);
    check_failure("missing tokenizer.json", no_tok, out, QC_DTYPE_F16, "tokenizer.json");
    char *no_w = variant(model, "no-weights", "model.safetensors", NULL);
    check_failure("missing weights", no_w, out, QC_DTYPE_F16, "model.safetensors");
    char *bad_cfg = variant(model, "bad-config", "config.json", "{\"architectures\": [\"LlamaForCausalLM\"]}");
    check_failure("unsupported architecture", bad_cfg, out, QC_DTYPE_F16, "LlamaForCausalLM");
    CHECK(!exists(out), "failed conversions created the output");

    /* a failure leaves an existing output untouched */
    FILE *f = fopen(out, "wb");
    if (f) {
        fputs("old", f);
        fclose(f);
    }
    check_failure("failure over an existing file", bad_tok, out, QC_DTYPE_F16, "tokenizer.json");
    char buf[8] = "";
    f = fopen(out, "rb");
    if (f) {
        if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
        fclose(f);
    }
    CHECK(!strcmp(buf, "old"), "failed conversion replaced the existing file");
    unlink(out);

    char *unwritable = path2(g_tmp, "no-such-dir/out.gguf");
    check_failure("unwritable output", model, unwritable, QC_DTYPE_F16, "no-such-dir/out.gguf");
    /* the output is a folder: everything is written, the rename fails */
    char *dir_out = path2(g_tmp, "a-folder");
    mkdir(dir_out, 0777);
    check_failure("output is a folder", model, dir_out, QC_DTYPE_Q4_0, "a-folder");
    free(dir_out);
    free(unwritable);
    free(bad_tok);
    free(no_tok);
    free(no_w);
    free(bad_cfg);
    free(missing);
    free(out);
}

/* ==== the command ==== */

/* Runs a shell command; its exit status (-1 if it did not exit). */
static int run(const char *cmd) {
    int rc = system(cmd);
    return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int count_lines(const char *path, const char *must_contain, int *has) {
    FILE *f = fopen(path, "rb");
    int n = 0;
    char line[1024];
    *has = 0;
    while (f && fgets(line, sizeof line, f)) {
        n++;
        if (must_contain && strstr(line, must_contain)) *has = 1;
    }
    if (f) fclose(f);
    return n;
}

static void check_cli(const char *model) {
    char qcare[4096], cmd[16384];
    snprintf(qcare, sizeof qcare, "%s/qcare", test_env("QC_BUILD", "build"));
    if (!exists(qcare)) {
        CHECK(0, "%s not found (set QC_BUILD)", qcare);
        return;
    }
    char *out = path2(g_tmp, "cli.gguf"), *log = path2(g_tmp, "cli.log"), *ref = convert(model, "cli-ref", 3);
    int has;
    snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s' --type q8_0 >'%s' 2>&1 </dev/null", qcare, model, out, log);
    CHECK(run(cmd) == 0, "qcare convert failed: %s", cmd);
    CHECK(ref && files_equal(out, ref), "qcare convert's file differs from the library's");
    /* stderr is a file here: a few plain lines, not a redrawn bar */
    int n = count_lines(log, "wrote", &has);
    CHECK(has && n >= 2 && n <= 12, "qcare convert printed %d lines (wrote: %d)", n, has);

    snprintf(cmd, sizeof cmd, "'%s' convert --help >'%s' 2>&1", qcare, log);
    CHECK(run(cmd) == 0, "qcare convert --help failed");
    count_lines(log, "--type", &has);
    CHECK(has, "qcare convert --help does not describe --type");

    char *out2 = path2(g_tmp, "cli2.gguf");
    snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s' --type q5_k >'%s' 2>&1", qcare, model, out2, log);
    CHECK(run(cmd) == 2, "unknown --type: exit status not 2");
    count_lines(log, "q5_k", &has);
    CHECK(has && !exists(out2), "unknown --type: no clear message, or output created");

    snprintf(cmd, sizeof cmd, "'%s' convert '%s' >'%s' 2>&1", qcare, model, log);
    CHECK(run(cmd) == 2, "missing OUT.gguf: exit status not 2");

    snprintf(cmd, sizeof cmd, "'%s' convert '%s/no-such-model' '%s' >'%s' 2>&1", qcare, g_tmp, out2, log);
    CHECK(run(cmd) == 1, "missing folder: exit status not 1");
    count_lines(log, "no-such-model", &has);
    CHECK(has && !exists(out2), "missing folder: no clear message, or output created");
    CHECK(count_leftovers() == 0, "qcare convert left a temporary file");
    unlink(out);
    unlink(log);
    if (ref) unlink(ref);
    free(out);
    free(out2);
    free(log);
    free(ref);
}

/* ==== logits from the converted file (needs the GGUF reader) ==== */

static float *logits_of(const char *path, const char *dtype, const int32_t *ids, size_t n, int32_t *n_vocab) {
    char err[512];
    qc_model_t *m = NULL;
    qc_model_opts_t o = {.n_threads = 2, .dtype = dtype};
    if (qc_model_load(path, &o, &m, err, sizeof err)) {
        CHECK(0, "load %s: %s", path, err);
        return NULL;
    }
    *n_vocab = qc_model_n_vocab(m);
    float *lg = malloc(n * (size_t)*n_vocab * sizeof *lg);
    qc_ctx_t *ctx = qc_ctx_new(m, 64, NULL);
    qc_status s = ctx && lg ? qc_ctx_eval(ctx, ids, n, lg, QC_LOGITS_ALL) : QC_ERR_NOMEM;
    CHECK(s == QC_OK, "eval %s failed", path);
    qc_ctx_free(ctx);
    qc_model_free(m);
    if (s) {
        free(lg);
        return NULL;
    }
    return lg;
}

static void check_logits(const char *model) {
    static const int32_t ids[] = {151644, 872, 198, 108386, 151645, 198, 151644, 77091, 198};
    const size_t n = sizeof ids / sizeof ids[0];
    static const struct {
        int ti;
        const char *dtype;
        double tol;
    } cases[] = {{0, "bf16", 1e-4}, {2, "bf16", 1e-4}, {1, "bf16", 1e-4}, {3, "q8_0", 1e-4}};
    int32_t nv_ref = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *ref = logits_of(model, cases[c].dtype, ids, n, &nv_ref);
        char *out = convert(model, "logits", cases[c].ti);
        int32_t nv = 0;
        float *got = out ? logits_of(out, cases[c].dtype, ids, n, &nv) : NULL;
        if (ref && got) {
            double worst = nv == nv_ref ? 0 : INFINITY;
            for (size_t i = 0; nv == nv_ref && i < n * (size_t)nv; i++)
                worst = fmax(worst, fabs((double)got[i] - (double)ref[i]));
            CHECK(worst <= cases[c].tol, "%s GGUF (--dtype %s): logits differ from the folder's by %g",
                  type_names[cases[c].ti], cases[c].dtype, worst);
            printf("logits of the %s GGUF (--dtype %s) vs the folder: max |diff| %g\n", type_names[cases[c].ti],
                   cases[c].dtype, worst);
        }
        if (out) unlink(out);
        free(out);
        free(ref);
        free(got);
    }
}

/* --dtype on a GGUF (the decision): auto keeps the stored types;
 * bf16, f16, f32, q8_0 convert every matrix (bf16 used to mean "as
 * stored"), the embedding/lm_head included for the float types; a name
 * that is no type is refused. */
static void check_dtypes(const char *model) {
    static const struct {
        int ti;            /* the GGUF's type (type_names) */
        const char *dtype; /* asked for */
        const char *want;  /* qc_model_dtype */
        int converted;     /* whether matrices are converted */
        int bytes_per_w;   /* every matrix of the float type: bytes per weight; 0: not checked */
    } cases[] = {
        {3, "auto", "q8_0", 0, 0}, {3, "bf16", "bf16", 1, 2}, {3, "f16", "f16", 1, 2}, {3, "f32", "f32", 1, 4},
        {0, "auto", "f32", 0, 4},  {0, "bf16", "bf16", 1, 2}, {0, "q8_0", "q8_0", 1, 0}, {2, "bf16", "bf16", 0, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *gguf = convert(model, "dtypes", cases[c].ti);
        if (!gguf) continue;
        char err[512];
        qc_model_t *m = NULL;
        qc_model_opts_t o = {.n_threads = 2, .dtype = cases[c].dtype};
        qc_status st = qc_model_load(gguf, &o, &m, err, sizeof err);
        CHECK(st == QC_OK, "%s GGUF, --dtype %s: %s", type_names[cases[c].ti], cases[c].dtype, st ? err : "");
        if (m) {
            CHECK(!strcmp(qc_model_dtype(m), cases[c].want), "%s GGUF, --dtype %s: kept as %s, want %s",
                  type_names[cases[c].ti], cases[c].dtype, qc_model_dtype(m), cases[c].want);
            CHECK((qc_model_n_converted(m) > 0) == cases[c].converted, "%s GGUF, --dtype %s: %d matrices converted",
                  type_names[cases[c].ti], cases[c].dtype, qc_model_n_converted(m));
            /* the norms and biases are F32 whatever the matrices: a few
             * thousand weights, under 1% of the tiny models' */
            const double per_w = (double)qc_model_weight_bytes(m) / (double)qc_model_n_params(m);
            if (cases[c].bytes_per_w)
                CHECK(per_w > cases[c].bytes_per_w * 0.99 && per_w < cases[c].bytes_per_w * 1.01,
                      "%s GGUF, --dtype %s: %.3f bytes per weight, want %d (embedding and lm_head too)",
                      type_names[cases[c].ti], cases[c].dtype, per_w, cases[c].bytes_per_w);
        }
        qc_model_free(m);
        unlink(gguf);
        free(gguf);
    }
    char *gguf = convert(model, "dtypes", 3);
    if (gguf) {
        char err[512];
        qc_model_t *m = NULL;
        qc_model_opts_t o = {.n_threads = 1, .dtype = "f8"};
        const qc_status st = qc_model_load(gguf, &o, &m, err, sizeof err);
        CHECK(st == QC_ERR_ARG && !m && strstr(err, "'f8'") && strstr(err, "f16"),
              "--dtype f8: status %d, '%s' (want the name refused and the types listed)", st, err);
        unlink(gguf);
        free(gguf);
    }
}

int main(void) {
    const char *models = test_env("QC_MODELS", "build/models");
    char q3[4096], q2[4096];
    snprintf(q3, sizeof q3, "%s/tiny-qwen3", models);
    snprintf(q2, sizeof q2, "%s/tiny-qwen2", models);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/qc_convert_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    for (int ti = 1; ti <= 4; ti++)
        if (ti != 2) check_against_fixture(q3, ti); /* f16, q8_0, q4_0 */
    check_qwen2(q2);
    check_progress(q2);
    check_failures(q2);
    check_cli(q3);
    check_logits(q2);
    check_dtypes(q2);
    rm_tree(g_tmp);
    return test_done("test_convert");
}
