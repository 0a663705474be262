/* test_gguf.c — the GGUF reader.
 *
 * 1. The fixture GGUFs written by llama.cpp's tools give llama.cpp's logits:
 *    tiny-qwen3.f16.gguf (weights in place, F16 computed in F32) against the
 *    F32 goldens (every listed logit within 3e-3, >= 90% within 1e-3,
 *    greedy tokens identical: the F16 rounding of the F32 weights, plus the
 *    summation order; the share within 1e-3 over all the goldens measured
 *    2026-12-02: avx512 99.9%, avx2 98.5%, scalar 94.2%, every ARM level
 *    93.4% under qemu, max 0.0029); the Q8_0 and Q4_0
 *    files (their blocks used in place) against llama.cpp's own quantized
 *    runs with test_quant's tolerance and reason (>= 50% of positions within
 *    2.5e-3 until an 8-bit activation rounding tie flips, all within 0.25).
 * 2. The tokenizer built from the GGUF metadata gives the same ids as the
 *    tokenizer.json one (and as Hugging Face) on every golden and
 *    differential line.
 * 3. Qwen2.5-style metadata (GQA, separate output.weight) and Qwen1.5-style
 *    (no GQA, no head_count_kv key, tied output, qkv bias), written here from
 *    the tiny-qwen2 safetensors, load and give the folder's logits.
 * 4. Hostile files: each malformed case llama.cpp's GGUF tests build is
 *    rejected with a message, and so is every truncation of a valid file.
 * 5. Q4_K / Q6_K dequantization against blocks built by hand from ggml's
 *    block layout, with expected values from the format's formula.
 *
 * Env: QC_FIXTURES, QC_MODELS (tiny-qwen2 from `qcare mkmodel`), QC_BUILD
 * (scratch files), QC_TOKDIFF. */
#include "engine/engine.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/vocab.h"
#include "test.h"
#include "golden.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_tmp[4096];

/* ==== a small GGUF writer for the tests ==== */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} mb_t;

static void mb_put(mb_t *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n) c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p) abort();
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void mb_u32(mb_t *b, uint32_t v) { mb_put(b, &v, 4); }
static void mb_u64(mb_t *b, uint64_t v) { mb_put(b, &v, 8); }
static void mb_str(mb_t *b, const char *s) {
    mb_u64(b, strlen(s));
    mb_put(b, s, strlen(s));
}
static void mb_pad(mb_t *b, size_t align) {
    static const unsigned char zero[64];
    while (b->n % align) mb_put(b, zero, 1);
}

static void kv_str(mb_t *b, const char *k, const char *v) {
    mb_str(b, k);
    mb_u32(b, QC_GGUF_STRING);
    mb_str(b, v);
}
static void kv_u32(mb_t *b, const char *k, uint32_t v) {
    mb_str(b, k);
    mb_u32(b, QC_GGUF_UINT32);
    mb_u32(b, v);
}
static void kv_f32(mb_t *b, const char *k, float v) {
    mb_str(b, k);
    mb_u32(b, QC_GGUF_FLOAT32);
    mb_put(b, &v, 4);
}
/* Copies a metadata entry of another file as it is stored. */
static void kv_raw(mb_t *b, const qc_gguf_kv_t *kv) {
    mb_str(b, kv->key);
    mb_u32(b, kv->type);
    size_t head = kv->type == QC_GGUF_ARRAY ? 12 : 0;
    mb_put(b, kv->data - head, kv->nbytes + head);
}

typedef struct {
    char name[96];
    uint32_t type;
    int nd;
    int64_t ne[2];
    const void *data;
    size_t nbytes;
} wt_t;

/* Writes a GGUF v3 file: kvs (n_kv entries, already encoded), tensors. */
static int write_gguf(const char *path, const mb_t *kvs, size_t n_kv, const wt_t *ts, size_t nt) {
    mb_t b = {0};
    mb_put(&b, "GGUF", 4);
    mb_u32(&b, 3);
    mb_u64(&b, nt);
    mb_u64(&b, n_kv);
    mb_put(&b, kvs->p, kvs->n);
    uint64_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        mb_str(&b, ts[i].name);
        mb_u32(&b, (uint32_t)ts[i].nd);
        for (int d = 0; d < ts[i].nd; d++) mb_u64(&b, (uint64_t)ts[i].ne[d]);
        mb_u32(&b, ts[i].type);
        mb_u64(&b, off);
        off += (ts[i].nbytes + 31) / 32 * 32;
    }
    mb_pad(&b, 32);
    FILE *f = fopen(path, "wb");
    int bad = !f || fwrite(b.p, 1, b.n, f) != b.n;
    for (size_t i = 0; f && i < nt; i++) {
        static const unsigned char zero[32];
        bad |= fwrite(ts[i].data, 1, ts[i].nbytes, f) != ts[i].nbytes;
        if (i + 1 < nt) bad |= fwrite(zero, 1, (32 - ts[i].nbytes % 32) % 32, f) != (32 - ts[i].nbytes % 32) % 32;
    }
    if (f) bad |= fclose(f) != 0;
    free(b.p);
    return bad ? -1 : 0;
}

static char *tmp_path(const char *name) {
    char *p = qc_path_join(g_tmp, name);
    if (!p) abort();
    return p;
}

/* Whether p lies inside the model's GGUF mapping (used in place). */
static int in_map(const qc_model_t *m, const void *p) {
    const unsigned char *b = m->gguf->map;
    return (const unsigned char *)p >= b && (const unsigned char *)p < b + m->gguf->size;
}

static void test_fixture_ggufs(void) {
    static const struct {
        const char *file, *dtype, *golden;
        int quant;
        qc_dtype_t want; /* how the layer matrices must be kept */
    } cases[] = {
        {"tiny-qwen3.f16.gguf", "f16", "tiny-qwen3", 0, QC_DTYPE_F16},
        {"tiny-qwen3.q8_0.gguf", "q8_0", "tiny-qwen3-q8_0", 1, QC_DTYPE_Q8_0},
        {"tiny-qwen3.q4_0.gguf", "q4_0", "tiny-qwen3-q4_0", 1, QC_DTYPE_Q4_0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (!test_case((long)c)) continue; /* QC_TEST_CASES */
        char path[1024], golden[1024], err[512];
        snprintf(path, sizeof path, "%s/models/%s", fixtures(), cases[c].file);
        snprintf(golden, sizeof golden, "%s/golden/%s.jsonl", fixtures(), cases[c].golden);
        qc_model_opts_t o = {.dtype = cases[c].dtype};
        qc_model_t *m = NULL;
        double t0 = qc_now_s();
        qc_status st = qc_model_load(path, &o, &m, err, sizeof err);
        CHECK(st == QC_OK, "load %s: %s", path, err);
        if (st) continue;
        double t_load = qc_now_s() - t0;
        CHECK(qc_model_arch(m) == QC_ARCH_QWEN3 && m->cfg.n_head_kv == 2 && m->cfg.head_dim == 32 &&
                  m->cfg.n_vocab == 151936 && m->cfg.qk_norm && !m->cfg.qkv_bias && m->lm_head.data == m->tok_embd.data,
              "%s: configuration from metadata", cases[c].file);
        /* the file's blocks are used where they lie: nothing copied */
        CHECK(m->layers[0].wq.dtype == cases[c].want && in_map(m, m->layers[1].w_down.data) && in_map(m, m->tok_embd.data),
              "%s: matrices in place as %s", cases[c].file, qc_dtype_name(cases[c].want));
        /* nothing converted; the only buffers are the level's weight panels
         * (the file's blocks rearranged, kernels_impl.h), if it has them,
         * and the copies of the norms and biases */
        int n_panel = 0;
        for (int l = 0; l < m->cfg.n_layer; l++) {
            const qc_layer_t *L = &m->layers[l];
            const qc_tensor_t *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (int i = 0; i < 7; i++) n_panel += mats[i]->panel != NULL;
        }
        const int n_vec = golden_n_vectors(m);
        CHECK(qc_model_n_converted(m) == 0 && m->n_owned == n_panel + n_vec,
              "%s: %d tensors converted, %d buffers for %d panels and %d vectors, expected none converted",
              cases[c].file, qc_model_n_converted(m), m->n_owned, n_panel, n_vec);
        golden_stats_t s = {0};
        golden_run(m, golden, &s);
        printf("%s as %s vs %s: max |logit diff| %.4g, %ld/%ld logits within 1e-3, %ld/%ld positions within "
               "2.5e-3, greedy %ld/%ld (load %.2f s)\n",
               cases[c].file, cases[c].dtype, cases[c].golden, s.max_diff, s.within_tol, s.n, s.tight, s.positions,
               s.greedy_same, s.greedy_total, t_load);
        CHECK(s.n > (test_cases_all() ? 1000 : 150), "%s: %ld logits compared", cases[c].file, s.n);
        if (!cases[c].quant) {
            CHECK(s.max_diff <= 3e-3, "%s: max diff %g > 3e-3", cases[c].file, s.max_diff);
            CHECK(s.within_tol >= 0.90 * s.n, "%s: %ld/%ld within 1e-3", cases[c].file, s.within_tol, s.n);
            CHECK(s.greedy_same == s.greedy_total, "%s: greedy %ld/%ld", cases[c].file, s.greedy_same, s.greedy_total);
        } else {
            CHECK(s.max_diff <= 0.25, "%s: max diff %g > 0.25", cases[c].file, s.max_diff);
            CHECK(s.tight * 2 >= s.positions, "%s: %ld/%ld positions within 2.5e-3", cases[c].file, s.tight,
                  s.positions);
        }
        qc_model_free(m);
    }
}

/* ==== the tokenizer from metadata ==== */

static int ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* Every line of a JSONL file: both tokenizers give the line's ids (special
 * tokens parsed) and agree with each other without parsing them. */
static long compare_tokenizers(const qc_tokenizer_t *tj, const qc_tokenizer_t *tg, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    long n = 0, bad = 0;
    ssize_t r;
    while ((r = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)r, JSON_ALLOW_NUL, NULL);
        json_t *jt = o ? json_object_get(o, "text") : NULL, *jids = o ? json_object_get(o, "ids") : NULL;
        if (!json_is_string(jt)) {
            json_decref(o);
            continue;
        }
        n++;
        const char *text = json_string_value(jt);
        size_t len = json_string_length(jt), na, nb, nc, nd;
        int32_t *a = NULL, *b = NULL, *c = NULL, *d = NULL;
        int ok = qc_tokenizer_encode(tg, text, len, QC_TOK_PARSE_SPECIAL, &a, &na) == QC_OK &&
                 qc_tokenizer_encode(tj, text, len, QC_TOK_PARSE_SPECIAL, &b, &nb) == QC_OK &&
                 qc_tokenizer_encode(tg, text, len, 0, &c, &nc) == QC_OK &&
                 qc_tokenizer_encode(tj, text, len, 0, &d, &nd) == QC_OK;
        ok = ok && ids_equal(a, na, b, nb) && ids_equal(c, nc, d, nd) && na == json_array_size(jids);
        for (size_t i = 0; ok && i < na; i++) ok = a[i] == json_integer_value(json_array_get(jids, i));
        char *dg = NULL, *dj = NULL;
        size_t lg = 0, lj = 0;
        ok = ok && qc_tokenizer_decode(tg, a, na, &dg, &lg) == QC_OK && qc_tokenizer_decode(tj, a, na, &dj, &lj) == QC_OK &&
             lg == lj && memcmp(dg, dj, lg) == 0;
        if (!ok && ++bad <= 10) CHECK(0, "%s:%ld: GGUF tokenizer differs on '%.60s'", path, n, text);
        free(a), free(b), free(c), free(d), free(dg), free(dj);
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (bad > 10) test_failed += (int)(bad - 10);
    test_passed += (int)(n - bad);
    return n;
}

static void test_tokenizer(void) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/tiny-qwen3.f16.gguf", fixtures());
    qc_gguf_t *g = NULL;
    qc_tokenizer_t *tg = NULL, *tj = NULL;
    CHECK(qc_gguf_open(path, &g, err, sizeof err) == QC_OK, "open %s: %s", path, err);
    if (!g) return;
    double t0 = qc_now_s();
    CHECK(qc_tokenizer_from_gguf(g, &tg, err, sizeof err) == QC_OK, "tokenizer from %s: %s", path, err);
    double t1 = qc_now_s();
    snprintf(path, sizeof path, "%s/tokenizer/tokenizer.json", fixtures());
    CHECK(qc_tokenizer_load(path, &tj, err, sizeof err) == QC_OK, "load %s: %s", path, err);
    if (tg && tj) {
        printf("tokenizer from GGUF metadata: %.3f s\n", t1 - t0);
        CHECK(qc_tokenizer_n_tokens(tg) == qc_tokenizer_n_tokens(tj), "token counts %d vs %d",
              (int)qc_tokenizer_n_tokens(tg), (int)qc_tokenizer_n_tokens(tj));
        long diff = 0;
        for (int32_t id = 0; id < qc_tokenizer_n_tokens(tj); id++) {
            size_t la, lb;
            const char *a = qc_tokenizer_token_bytes(tg, id, &la), *b = qc_tokenizer_token_bytes(tj, id, &lb);
            diff += !a || !b || la != lb || memcmp(a, b, la);
        }
        CHECK(diff == 0, "%ld token byte strings differ", diff);
        CHECK(qc_tokenizer_find(tg, "<|im_end|>") == 151645 && qc_tokenizer_find(tg, "<think>") == 151667,
              "added tokens by name");
        snprintf(path, sizeof path, "%s/golden/tokenizer.jsonl", fixtures());
        long n = compare_tokenizers(tj, tg, path);
        CHECK(n >= 40, "%s: %ld lines", path, n);
        const char *dpath = test_env("QC_TOKDIFF", "tests/data/tokdiff.jsonl");
        n = compare_tokenizers(tj, tg, dpath);
        CHECK(n > 10000, "%s: %ld lines", dpath, n);
        printf("tokenizer: GGUF and tokenizer.json agree on the golden and %ld differential lines\n", n);
    }
    qc_tokenizer_free(tg);
    qc_tokenizer_free(tj);
    qc_gguf_close(g);
}

/* ==== Qwen1.5- and Qwen2.5-style files from the tiny-qwen2 folder ==== */

enum { STYLE_QWEN25, STYLE_QWEN15, STYLE_EXPLICIT };

/* Writes tiny-qwen2 (folder st) as a qwen2 GGUF, with the tokenizer
 * metadata of tok. STYLE_QWEN25: as stored (GQA, output.weight).
 * STYLE_QWEN15: K/V heads repeated up to the query heads (no GQA, no
 * head_count_kv key), no output.weight (tied to the embedding).
 * STYLE_EXPLICIT: GQA, output.weight a copy of the embedding (the same
 * model as STYLE_QWEN15). Tensor `drop` is left out. Matrices BF16, vectors
 * F32. */
static int write_qwen2(const char *path, const qc_st_t *st, const qc_gguf_t *tok, int style, const char *drop) {
    mb_t kv = {0};
    size_t n_kv = 0;
    kv_str(&kv, "general.architecture", "qwen2"), n_kv++;
    kv_u32(&kv, "qwen2.context_length", 4096), n_kv++;
    kv_u32(&kv, "qwen2.embedding_length", 64), n_kv++;
    kv_u32(&kv, "qwen2.block_count", 2), n_kv++;
    kv_u32(&kv, "qwen2.feed_forward_length", 160), n_kv++;
    kv_u32(&kv, "qwen2.attention.head_count", 4), n_kv++;
    if (style != STYLE_QWEN15) kv_u32(&kv, "qwen2.attention.head_count_kv", 2), n_kv++;
    kv_f32(&kv, "qwen2.rope.freq_base", 1e6f), n_kv++;
    kv_f32(&kv, "qwen2.attention.layer_norm_rms_epsilon", 1e-6f), n_kv++;
    for (size_t i = 0; i < tok->n_kv; i++)
        if (!strncmp(tok->kv[i].key, "tokenizer.", 10)) kv_raw(&kv, &tok->kv[i]), n_kv++;

    size_t nt = 0, n_bufs = 0;
    wt_t ts[64];
    void *bufs[64];
    const qc_st_tensor_t *embed = qc_st_find(st, "model.embed_tokens.weight");
    for (size_t i = 0; i < qc_st_count(st) && nt < 64; i++) {
        const qc_st_tensor_t *t = qc_st_at(st, i);
        wt_t *w = &ts[nt];
        if (qc_gguf_tensor_name(t->name, w->name, sizeof w->name)) return -1;
        if (drop && !strcmp(w->name, drop)) continue;
        if (style == STYLE_QWEN15 && !strcmp(w->name, "output.weight")) continue;
        const qc_st_tensor_t *src = style == STYLE_EXPLICIT && !strcmp(w->name, "output.weight") ? embed : t;
        const uint16_t *bf = src->data;
        w->nd = t->ndim;
        w->ne[0] = t->shape[t->ndim - 1];
        w->ne[1] = t->ndim == 2 ? t->shape[0] : 1;
        if (t->ndim == 1) { /* vectors are F32 in GGUF */
            float *v = malloc((size_t)w->ne[0] * sizeof *v);
            for (int64_t j = 0; j < w->ne[0]; j++) v[j] = qc_bf16_to_f32(bf[j]);
            w->type = QC_GGML_F32, w->data = bufs[n_bufs++] = v, w->nbytes = (size_t)w->ne[0] * 4;
        } else {
            w->type = QC_GGML_BF16, w->data = bf, w->nbytes = src->nbytes;
        }
        int kv_tensor = strstr(w->name, "attn_k.") || strstr(w->name, "attn_v.");
        if (style == STYLE_QWEN15 && kv_tensor) { /* kv head h/2 serves query head h: repeat each */
            size_t row = t->ndim == 2 ? (size_t)w->ne[0] : 1, elem = t->ndim == 2 ? 2 : 4, hd = 16;
            size_t head_bytes = hd * row * elem;
            unsigned char *e = malloc(2 * w->nbytes);
            for (int h = 0; h < 4; h++) memcpy(e + h * head_bytes, (const unsigned char *)w->data + (h / 2) * head_bytes, head_bytes);
            if (t->ndim == 2) w->ne[1] *= 2;
            else w->ne[0] *= 2;
            w->data = bufs[n_bufs++] = e;
            w->nbytes *= 2;
        }
        nt++;
    }
    int rc = write_gguf(path, &kv, n_kv, ts, nt);
    for (size_t i = 0; i < n_bufs; i++) free(bufs[i]);
    free(kv.p);
    return rc;
}

/* Max |difference| of all logits of two models over a prompt. */
static double logits_diff(qc_model_t *a, qc_model_t *b, const char *prompt) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (qc_tokenizer_encode(qc_model_tokenizer(a), prompt, strlen(prompt), QC_TOK_PARSE_SPECIAL, &ids, &n)) return INFINITY;
    int32_t nv = qc_model_n_vocab(a);
    float *la = malloc(n * (size_t)nv * sizeof(float)), *lb = malloc(n * (size_t)nv * sizeof(float));
    qc_ctx_t *xa = qc_ctx_new(a, 64, NULL), *xb = qc_ctx_new(b, 64, NULL);
    double d = INFINITY;
    if (la && lb && xa && xb && qc_model_n_vocab(b) == nv && qc_ctx_eval(xa, ids, n, la, QC_LOGITS_ALL) == QC_OK &&
        qc_ctx_eval(xb, ids, n, lb, QC_LOGITS_ALL) == QC_OK) {
        d = 0;
        for (size_t i = 0; i < n * (size_t)nv; i++) d = fmax(d, fabs(la[i] - lb[i]));
    }
    qc_ctx_free(xa);
    qc_ctx_free(xb);
    free(la);
    free(lb);
    free(ids);
    return d;
}

static qc_model_t *load(const char *path, const char *dtype) {
    char err[512];
    qc_model_opts_t o = {.dtype = dtype};
    qc_model_t *m = NULL;
    CHECK(qc_model_load(path, &o, &m, err, sizeof err) == QC_OK, "load %s as %s: %s", path, dtype, err);
    return m;
}

static void test_styles(void) {
    char dir[1024], tokpath[1024], err[512];
    snprintf(dir, sizeof dir, "%s/tiny-qwen2", test_env("QC_MODELS", "build/models"));
    snprintf(tokpath, sizeof tokpath, "%s/models/tiny-qwen3.f16.gguf", fixtures());
    qc_st_t *st = NULL;
    qc_gguf_t *tok = NULL;
    CHECK(qc_st_open_dir(dir, &st, err, sizeof err) == QC_OK, "open %s: %s", dir, err);
    CHECK(qc_gguf_open(tokpath, &tok, err, sizeof err) == QC_OK, "open %s: %s", tokpath, err);
    char *p25 = tmp_path("qwen25.gguf"), *p15 = tmp_path("qwen15.gguf"), *pex = tmp_path("explicit.gguf"),
         *pbad = tmp_path("missing.gguf");
    if (!st || !tok || write_qwen2(p25, st, tok, STYLE_QWEN25, NULL) || write_qwen2(p15, st, tok, STYLE_QWEN15, NULL) ||
        write_qwen2(pex, st, tok, STYLE_EXPLICIT, NULL) || write_qwen2(pbad, st, tok, STYLE_QWEN25, "blk.1.ffn_up.weight")) {
        CHECK(0, "writing the qwen2 GGUFs");
        goto done;
    }
    const char *prompts[] = {"<|im_start|>user\n我最近总是失眠，怎么办？<|im_end|>\n<|im_start|>assistant\n",
                             "Hello world, this is a test of the GGUF reader."};
    const char *dtypes[] = {"bf16", "q8_0", "q4_0", "f32"};
    for (int k = 0; k < 4; k++) {
        qc_model_t *folder = load(dir, dtypes[k]), *g25 = load(p25, dtypes[k]);
        qc_model_t *g15 = load(p15, dtypes[k]), *gex = load(pex, dtypes[k]);
        if (folder && g25 && g15 && gex) {
            CHECK(g25->cfg.arch == QC_ARCH_QWEN2 && g25->cfg.n_head_kv == 2 && g25->cfg.qkv_bias &&
                      g25->lm_head.data != g25->tok_embd.data,
                  "Qwen2.5-style configuration");
            CHECK(g15->cfg.n_head_kv == 4 && g15->cfg.qkv_bias && g15->lm_head.data == g15->tok_embd.data,
                  "Qwen1.5-style configuration (no GQA, tied)");
            for (int i = 0; i < 2; i++) {
                double d = logits_diff(folder, g25, prompts[i]);
                CHECK(d == 0, "%s: Qwen2.5-style GGUF vs folder: max |diff| %g", dtypes[k], d);
                d = logits_diff(gex, g15, prompts[i]);
                CHECK(d <= 1e-5, "%s: Qwen1.5-style GGUF vs the same weights with GQA: max |diff| %g", dtypes[k], d);
            }
        }
        qc_model_free(folder), qc_model_free(g25), qc_model_free(g15), qc_model_free(gex);
    }
    qc_model_t *m = NULL;
    qc_status s = qc_model_load(pbad, NULL, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "blk.1.ffn_up.weight") && strstr(err, "missing.gguf"),
          "missing tensor named: %s", err);
done:
    unlink(p25), unlink(p15), unlink(pex), unlink(pbad);
    free(p25), free(p15), free(pex), free(pbad);
    qc_st_close(st);
    qc_gguf_close(tok);
}

/* ==== hostile files ==== */

enum {
    H_VALID, H_MAGIC, H_V1, H_V99, H_NT_HUGE, H_NKV_HUGE, H_KEY_EMPTY, H_KEY_PAST_EOF, H_KEY_TOO_LONG, H_STR_HUGE,
    H_DUP_KEY, H_DUP_TENSOR, H_VTYPE, H_ARR_VTYPE, H_ARR_HUGE, H_NEST_DEEP, H_TTYPE_UNKNOWN, H_TTYPE_UNSUPPORTED,
    H_ALIGN0, H_ALIGN3, H_ALIGN_TYPE, H_NDIMS0, H_NDIMS5, H_DIM0, H_DIM_OVERFLOW, H_BYTES_OVERFLOW, H_BLOCKS,
    H_OFF_UNALIGNED, H_PAST_EOF, H_NAME_EMPTY, H_NAME_LONG, H_COUNT
};

/* A small GGUF: 3 metadata entries (architecture, alignment, a nested
 * array), tensors "a" F32 [32] and "b" Q8_0 [32 x 2]; case c breaks one
 * thing. */
static void build_small(mb_t *b, int c) {
    mb_put(b, c == H_MAGIC ? "GGUX" : "GGUF", 4);
    mb_u32(b, c == H_V1 ? 1 : c == H_V99 ? 99 : 3);
    mb_u64(b, c == H_NT_HUGE ? 1ull << 60 : 2);
    mb_u64(b, c == H_NKV_HUGE ? 1ull << 60 : 3);
    /* kv 0: general.architecture = "qwen3" */
    if (c == H_KEY_EMPTY) mb_str(b, "");
    else if (c == H_KEY_PAST_EOF) mb_u64(b, 1ull << 40), mb_put(b, "general", 7);
    else if (c == H_KEY_TOO_LONG) {
        char *k = malloc(70001);
        memset(k, 'k', 70000);
        k[70000] = 0;
        mb_str(b, k);
        free(k);
    } else mb_str(b, "general.architecture");
    mb_u32(b, c == H_VTYPE ? 77 : QC_GGUF_STRING);
    if (c == H_STR_HUGE) mb_u64(b, 1ull << 50), mb_put(b, "qwen3", 5);
    else mb_str(b, "qwen3");
    /* kv 1: general.alignment = 32 */
    mb_str(b, c == H_DUP_KEY ? "general.architecture" : "general.alignment");
    if (c == H_ALIGN_TYPE) mb_u32(b, QC_GGUF_UINT64), mb_u64(b, 32);
    else mb_u32(b, QC_GGUF_UINT32), mb_u32(b, c == H_ALIGN0 ? 0 : c == H_ALIGN3 ? 3 : 32);
    /* kv 2: an array of arrays of int8 ([[1, 2], [3]]), or nested deeper */
    mb_str(b, "test.nested");
    mb_u32(b, QC_GGUF_ARRAY);
    if (c == H_NEST_DEEP) {
        for (int d = 0; d < 12; d++) mb_u32(b, QC_GGUF_ARRAY), mb_u64(b, 1);
        mb_u32(b, QC_GGUF_INT8), mb_u64(b, 1), mb_put(b, "\1", 1);
    } else {
        mb_u32(b, c == H_ARR_VTYPE ? 13 : QC_GGUF_ARRAY);
        mb_u64(b, c == H_ARR_HUGE ? 1ull << 59 : 2);
        mb_u32(b, QC_GGUF_INT8), mb_u64(b, 2), mb_put(b, "\1\2", 2);
        mb_u32(b, QC_GGUF_INT8), mb_u64(b, 1), mb_put(b, "\3", 1);
    }
    /* tensor "a": F32 [32] at 0 */
    if (c == H_NAME_EMPTY) mb_str(b, "");
    else if (c == H_NAME_LONG) {
        char n[300];
        memset(n, 'n', 299);
        n[299] = 0;
        mb_str(b, n);
    } else mb_str(b, "a");
    if (c == H_NDIMS0) mb_u32(b, 0);
    else if (c == H_NDIMS5) mb_u32(b, 5), mb_u64(b, 32), mb_u64(b, 1), mb_u64(b, 1), mb_u64(b, 1), mb_u64(b, 1);
    else if (c == H_DIM0) mb_u32(b, 2), mb_u64(b, 32), mb_u64(b, 0);
    else if (c == H_DIM_OVERFLOW) mb_u32(b, 3), mb_u64(b, 1ull << 30), mb_u64(b, 1ull << 30), mb_u64(b, 1ull << 30);
    else if (c == H_BYTES_OVERFLOW) mb_u32(b, 2), mb_u64(b, 1ull << 31), mb_u64(b, 1ull << 31);
    else mb_u32(b, 1), mb_u64(b, 32);
    mb_u32(b, c == H_TTYPE_UNKNOWN ? 77 : c == H_TTYPE_UNSUPPORTED ? 16 /* iq2_xxs */ : QC_GGML_F32);
    mb_u64(b, 0);
    /* tensor "b": Q8_0 [32 x 2] at 128 */
    mb_str(b, c == H_DUP_TENSOR ? "a" : "b");
    mb_u32(b, 2), mb_u64(b, c == H_BLOCKS ? 33 : 32), mb_u64(b, 2);
    mb_u32(b, QC_GGML_Q8_0);
    mb_u64(b, c == H_OFF_UNALIGNED ? 130 : c == H_PAST_EOF ? 1u << 20 : 128);
    mb_pad(b, 32);
    unsigned char data[128 + 68];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7);
    mb_put(b, data, sizeof data);
}

static qc_status open_bytes(const char *name, const void *p, size_t n, char *err, size_t err_size) {
    char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    if (f) fwrite(p, 1, n, f), fclose(f);
    qc_gguf_t *g = NULL;
    qc_status st = qc_gguf_open(path, &g, err, err_size);
    if (st == QC_OK && g->n_tensors == 2) { /* read what was parsed, for the sanitizers */
        volatile unsigned sum = 0;
        for (size_t i = 0; i < g->n_tensors; i++)
            for (size_t j = 0; j < g->tensors[i].nbytes; j++) sum += ((const unsigned char *)g->tensors[i].data)[j];
    }
    qc_gguf_close(g);
    unlink(path);
    free(path);
    return st;
}

/* A GGUF's token strings are bytes, not checked UTF-8: a token that ends in
 * the lead byte of a longer character is kept as its bytes, and building
 * the tables reads none past it (the tokenizer used to decode the whole
 * character first: up to 3 bytes beyond a token at the end of the mapping;
 * the strings here are heap blocks of their exact size, for ASan). */
static void test_token_bytes(void) {
    static const char *const texts[] = {"a", "\xf0", "b\xe2", "\xc3", "\xe2\x82", "\xc4\xa0"};
    enum { N = sizeof texts / sizeof texts[0] };
    qc_vocab_token_t toks[N];
    char *bufs[N];
    for (int i = 0; i < N; i++) {
        size_t n = strlen(texts[i]);
        bufs[i] = malloc(n);
        memcpy(bufs[i], texts[i], n);
        toks[i] = (qc_vocab_token_t){i, bufs[i], n};
    }
    qc_vocab_desc_t v = {.path = "bytes.gguf", .vocab_key = "tokenizer.ggml.tokens", .merges_key = "tokenizer.ggml.merges",
                         .n_tokens = N, .tokens = toks, .n_vocab = N, .unk_id = -1};
    char err[256] = "";
    qc_tokenizer_t *t = NULL;
    CHECK(qc_tokenizer_from_vocab(&v, &t, err, sizeof err) == QC_OK, "token bytes: %s", err);
    for (int i = 0; t && i < N; i++) {
        size_t n = 0;
        const char *b = qc_tokenizer_token_bytes(t, i, &n);
        /* "\xc4\xa0" is the byte-level form of a space; the others stand for themselves */
        const char *want = i == N - 1 ? " " : texts[i];
        CHECK(b && n == strlen(want) && !memcmp(b, want, n), "token %d: %zu bytes", i, n);
    }
    qc_tokenizer_free(t);
    for (int i = 0; i < N; i++) free(bufs[i]);
}

static void test_hostile(void) {
    static const struct { int c; qc_status st; const char *needle; } cases[] = {
        {H_MAGIC, QC_ERR_FORMAT, "not a GGUF"},          {H_V1, QC_ERR_UNSUPPORTED, "version 1"},
        {H_V99, QC_ERR_UNSUPPORTED, "version 99"},       {H_NT_HUGE, QC_ERR_FORMAT, "tensor count"},
        {H_NKV_HUGE, QC_ERR_FORMAT, "metadata count"},   {H_KEY_EMPTY, QC_ERR_FORMAT, "empty"},
        {H_KEY_PAST_EOF, QC_ERR_FORMAT, "past the end"}, {H_KEY_TOO_LONG, QC_ERR_FORMAT, "65535"},
        {H_STR_HUGE, QC_ERR_FORMAT, "general.architecture"}, {H_DUP_KEY, QC_ERR_FORMAT, "twice"},
        {H_DUP_TENSOR, QC_ERR_FORMAT, "tensor name 'a' appears twice"}, {H_VTYPE, QC_ERR_FORMAT, "type 77"},
        {H_ARR_VTYPE, QC_ERR_FORMAT, "element type 13"}, {H_ARR_HUGE, QC_ERR_FORMAT, "test.nested"},
        {H_NEST_DEEP, QC_ERR_FORMAT, "deeper"},          {H_TTYPE_UNKNOWN, QC_ERR_FORMAT, "tensor type 77"},
        {H_TTYPE_UNSUPPORTED, QC_ERR_UNSUPPORTED, "tensor 'a' has type iq2_xxs"}, {H_ALIGN0, QC_ERR_FORMAT, "general.alignment = 0"},
        {H_ALIGN3, QC_ERR_FORMAT, "general.alignment = 3"}, {H_ALIGN_TYPE, QC_ERR_FORMAT, "uint64"},
        {H_NDIMS0, QC_ERR_FORMAT, "0 dimensions"},       {H_NDIMS5, QC_ERR_FORMAT, "5 dimensions"},
        {H_DIM0, QC_ERR_FORMAT, "dimension 1 is 0"},     {H_DIM_OVERFLOW, QC_ERR_FORMAT, "overflows"},
        {H_BYTES_OVERFLOW, QC_ERR_FORMAT, "byte size"}, {H_BLOCKS, QC_ERR_FORMAT, "block size"},
        {H_OFF_UNALIGNED, QC_ERR_FORMAT, "not a multiple of the alignment"},
        {H_PAST_EOF, QC_ERR_FORMAT, "tensor 'b': data ["},
        {H_NAME_EMPTY, QC_ERR_FORMAT, "empty"},          {H_NAME_LONG, QC_ERR_FORMAT, "exceeds 255"},
    };
    char err[512];
    mb_t ok = {0};
    build_small(&ok, H_VALID);
    qc_gguf_t *g = NULL;
    char *vp = tmp_path("valid.gguf");
    FILE *f = fopen(vp, "wb");
    if (f) fwrite(ok.p, 1, ok.n, f), fclose(f);
    CHECK(qc_gguf_open(vp, &g, err, sizeof err) == QC_OK, "valid small file: %s", err);
    if (g) {
        const qc_gguf_tensor_t *b = qc_gguf_tensor(g, "b");
        const qc_gguf_kv_t *nested = qc_gguf_find(g, "test.nested");
        int64_t al = 0;
        CHECK(g->n_kv == 3 && g->n_tensors == 2 && g->alignment == 32 && b && b->ne[0] == 32 && b->ne[1] == 2 &&
                  b->nbytes == 68 && b->dtype == QC_DTYPE_Q8_0 && (const unsigned char *)b->data == g->map + g->data_offset + 128,
              "valid small file parsed");
        CHECK(nested && nested->type == QC_GGUF_ARRAY && nested->arr_type == QC_GGUF_ARRAY && nested->n == 2,
              "nested array");
        CHECK(qc_gguf_get_int(g, "general.alignment", &al, err, sizeof err) == QC_OK && al == 32, "get_int");
        CHECK(qc_gguf_get_int(g, "general.architecture", &al, err, sizeof err) == QC_ERR_FORMAT &&
                  strstr(err, "general.architecture") && strstr(err, "string"),
              "get_int on a string: %s", err);
        CHECK(qc_gguf_get_int(g, "no.such.key", &al, err, sizeof err) == QC_ERR_ARG, "absent key");
        qc_gguf_close(g);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mb_t b = {0};
        build_small(&b, cases[i].c);
        err[0] = 0;
        qc_status st = open_bytes("hostile.gguf", b.p, b.n, err, sizeof err);
        CHECK(st == cases[i].st && strstr(err, "hostile.gguf") && strstr(err, cases[i].needle),
              "hostile case %d: status %d (want %d), message '%s' (want '%s')", cases[i].c, st, cases[i].st, err,
              cases[i].needle);
        printf("  hostile %2d: %s\n", cases[i].c, err);
        free(b.p);
    }
    /* every truncation of the valid small file */
    int bad = 0;
    for (size_t n = 0; n < ok.n; n++) {
        err[0] = 0;
        qc_status st = open_bytes("cut.gguf", ok.p, n, err, sizeof err);
        if ((st != QC_ERR_FORMAT || !err[0]) && ++bad < 5) CHECK(0, "truncated at %zu: status %d, '%s'", n, st, err);
    }
    CHECK(bad == 0, "%d truncations of %zu accepted or unexplained", bad, ok.n);
    /* truncations of the real file: in the header, the tokens, the data */
    char path[1024];
    snprintf(path, sizeof path, "%s/models/tiny-qwen3.q4_0.gguf", fixtures());
    size_t len = 0;
    char *real = qc_read_file(path, &len, err, sizeof err);
    CHECK(real != NULL, "read %s", path);
    for (size_t n = 0; real && n < len; n += n < 4096 ? 97 : len / 23 + 97) {
        err[0] = 0;
        qc_status st = open_bytes("cut.gguf", real, n, err, sizeof err);
        CHECK(st == QC_ERR_FORMAT && err[0], "real file cut at %zu: status %d, '%s'", n, st, err);
    }
    free(real);
    /* models: unknown architecture, tokenizer */
    mb_t kv = {0};
    kv_str(&kv, "general.architecture", "llama");
    CHECK(write_gguf(vp, &kv, 1, NULL, 0) == 0, "write");
    qc_model_t *m = NULL;
    qc_status st = qc_model_load(vp, NULL, &m, err, sizeof err);
    CHECK(st == QC_ERR_UNSUPPORTED && strstr(err, "'llama'"), "architecture llama: %d '%s'", st, err);
    unlink(vp);
    free(vp);
    free(kv.p);
    free(ok.p);
}

/* ==== k-quants ==== */

/* Q4_K: a 256-weight super-block, 8 sub-blocks of 32 with 6-bit scale sc_j
 * and min m_j; w = d * sc_j * q - dmin * m_j. Sub-blocks 2k and 2k+1 share
 * qs[32k..32k+32): low nibbles the first, high nibbles the second. Scales
 * 0..3: low 6 bits of scales[j] (scale) and scales[j+4] (min); 4..7: low
 * nibble (scale) and high nibble (min) of scales[j+4], top two bits in the
 * top bits of scales[j-4] (scale) and scales[j] (min). */
static void test_q4_K(void) {
    unsigned char blk[144] = {0};
    uint16_t d = qc_f32_to_f16(0.25f), dmin = qc_f32_to_f16(0.5f);
    memcpy(blk, &d, 2), memcpy(blk + 2, &dmin, 2);
    unsigned char *scales = blk + 4, *qs = blk + 16;
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (j * 23 + 5) % 64; /* 5, 28, 51, 10, 33, 56, 15, 38: some above 15 and 31 */
        mn[j] = 63 - j * 9;        /* 63, 54, ..., 0 */
        if (j < 4) {
            scales[j] |= (unsigned char)sc[j];
            scales[j + 4] |= (unsigned char)mn[j];
        } else {
            scales[j + 4] = (unsigned char)((sc[j] & 15) | (mn[j] & 15) << 4);
            scales[j - 4] |= (unsigned char)((sc[j] >> 4) << 6);
            scales[j] |= (unsigned char)((mn[j] >> 4) << 6);
        }
    }
    int q[256];
    for (int i = 0; i < 256; i++) {
        q[i] = (i * 7 + 3) % 16;
        int j = i / 32, k = j / 2, l = i % 32;
        qs[32 * k + l] |= (unsigned char)(j % 2 ? q[i] << 4 : q[i]);
    }
    float out[256];
    qc_tensor_t t = {.data = blk, .dtype = QC_DTYPE_Q4_K, .rows = 1, .cols = 256};
    qc_dequantize_row(&t, 0, out);
    int bad = 0;
    for (int i = 0; i < 256; i++) bad += out[i] != 0.25f * sc[i / 32] * q[i] - 0.5f * mn[i / 32];
    CHECK(bad == 0, "Q4_K: %d of 256 weights differ from d*sc*q - dmin*m", bad);
    CHECK(qc_row_bytes(QC_DTYPE_Q4_K, 512) == 288 && qc_row_bytes(QC_DTYPE_Q4_K, 128) == 0, "Q4_K row bytes");
}

/* Q6_K: ql[128] low nibbles, qh[64] 2-bit high parts, 16 signed 8-bit
 * scales, half d last. Weight e (e = 128n + 32g + l) takes its low nibble
 * from ql[64n + l + 32 (g odd)] (high nibble for g >= 2), its high bits from
 * bits 2g..2g+1 of qh[32n + l], its scale from scales[e / 16]; w = d * scale
 * * (q - 32). */
static void test_q6_K(void) {
    unsigned char blk[210] = {0};
    unsigned char *ql = blk, *qh = blk + 128;
    int8_t *scales = (int8_t *)(blk + 192);
    uint16_t d = qc_f32_to_f16(0.5f);
    memcpy(blk + 208, &d, 2);
    int v[256];
    for (int k = 0; k < 16; k++) scales[k] = (int8_t)((k * 13) % 31 - 15);
    for (int e = 0; e < 256; e++) {
        v[e] = (e * 37 + 11) % 64;
        int n = e / 128, g = (e % 128) / 32, l = e % 32;
        ql[64 * n + l + 32 * (g % 2)] |= (unsigned char)(g >= 2 ? (v[e] & 15) << 4 : v[e] & 15);
        qh[32 * n + l] |= (unsigned char)((v[e] >> 4) << (2 * g));
    }
    float out[512];
    unsigned char two[420];
    memcpy(two, blk, 210), memcpy(two + 210, blk, 210);
    qc_tensor_t t = {.data = two, .dtype = QC_DTYPE_Q6_K, .rows = 1, .cols = 512};
    qc_dequantize_row(&t, 0, out);
    int bad = 0;
    for (int e = 0; e < 512; e++) bad += out[e] != 0.5f * scales[(e % 256) / 16] * (v[e % 256] - 32);
    CHECK(bad == 0, "Q6_K: %d of 512 weights differ from d*scale*(q-32)", bad);
    CHECK(qc_row_bytes(QC_DTYPE_Q6_K, 256) == 210 && qc_row_bytes(QC_DTYPE_Q6_K, 64) == 0, "Q6_K row bytes");
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/gguf-XXXXXX", test_env("QC_BUILD", "/tmp"));
    if (!mkdtemp(g_tmp)) {
        perror(g_tmp);
        return 1;
    }
    test_q4_K();
    test_q6_K();
    test_hostile();
    test_token_bytes();
    test_tokenizer();
    test_fixture_ggufs();
    test_styles();
    rmdir(g_tmp);
    return test_done("test_gguf");
}
