/* fuzz_gguf.c — the GGUF reader on any bytes: qc_gguf_open, then every
 * metadata value and tensor it accepted read back in full (each typed
 * getter, every element of every array, every tensor's data), the tokenizer
 * from the metadata (qc_tokenizer_from_gguf, whatever the tensors), and the
 * whole qc_model_load (configuration, weight binding and conversion); a
 * model that loads also evaluates one token. The input is the file. */
#include "fuzz.h"

#include "engine/gguf.h"

/* Every value of kv read as the getters and array walkers hand it out. */
static void read_kv(const qc_gguf_t *g, const qc_gguf_kv_t *kv) {
    char err[256];
    int64_t i;
    double f;
    const char *s;
    size_t n;
    const qc_gguf_kv_t *arr;
    FUZZ_CHECK(kv->data >= g->map && kv->data + kv->nbytes <= g->map + g->size, "kv '%s' outside the file", kv->key);
    fuzz_touch(kv->data, kv->nbytes);
    FUZZ_CHECK(qc_gguf_find(g, kv->key) == kv, "kv '%s' not found by its key", kv->key);
    (void)qc_gguf_get_int(g, kv->key, &i, err, sizeof err);
    (void)qc_gguf_get_float(g, kv->key, &f, err, sizeof err);
    if (!qc_gguf_get_str(g, kv->key, &s, &n, err, sizeof err)) {
        FUZZ_CHECK(n + 8 == kv->nbytes, "string '%s': %zu bytes in %zu", kv->key, n, kv->nbytes);
        fuzz_touch(s, n);
    }
    if (kv->type != QC_GGUF_ARRAY) return;
    FUZZ_CHECK(!qc_gguf_get_array(g, kv->key, kv->arr_type, &arr, err, sizeof err) && arr == kv, "array '%s'",
               kv->key);
    if (kv->arr_type == QC_GGUF_STRING) {
        size_t pos = 0;
        for (uint64_t k = 0; k < kv->n; k++) {
            s = qc_gguf_arr_str(kv, &pos, &n);
            FUZZ_CHECK(pos <= kv->nbytes, "array '%s'[%llu] ends at %zu of %zu", kv->key, (unsigned long long)k, pos,
                       kv->nbytes);
            fuzz_touch(s, n);
        }
    } else if (qc_gguf_type_size(kv->arr_type)) {
        FUZZ_CHECK(kv->n * qc_gguf_type_size(kv->arr_type) == kv->nbytes, "array '%s' size", kv->key);
        for (uint64_t k = 0; k < kv->n; k++) (void)qc_gguf_arr_int(kv, k);
    }
}

static void read_file(const qc_gguf_t *g) {
    for (size_t k = 0; k < g->n_kv; k++) read_kv(g, &g->kv[k]);
    for (size_t k = 0; k < g->n_tensors; k++) {
        const qc_gguf_tensor_t *t = &g->tensors[k];
        const unsigned char *d = t->data;
        FUZZ_CHECK(d >= g->map && t->nbytes <= g->size && d - g->map <= (ptrdiff_t)(g->size - t->nbytes),
                   "tensor '%s' outside the file", t->name);
        FUZZ_CHECK(qc_gguf_tensor(g, t->name) == t, "tensor '%s' not found by its name", t->name);
        fuzz_touch(d, t->nbytes);
    }
}

/* A loaded model answers and evaluates one token (ids 0 and the last). */
static void run_model(qc_model_t *m) {
    int32_t nv = qc_model_n_vocab(m);
    FUZZ_CHECK(nv > 0 && qc_tokenizer_n_tokens(qc_model_tokenizer(m)) <= nv, "vocab %d", nv);
    qc_ctx_opts_t co = {.n_batch = 2};
    qc_ctx_t *ctx = qc_ctx_new(m, 4, &co);
    float *logits = malloc((size_t)nv * sizeof *logits);
    if (ctx && logits) {
        int32_t ids[2] = {0, nv - 1};
        qc_status st = qc_ctx_eval(ctx, ids, 2, logits, QC_LOGITS_LAST);
        FUZZ_CHECK(st == QC_OK, "eval: %s", qc_ctx_errmsg(ctx));
    }
    free(logits);
    qc_ctx_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    char err[512];
    qc_gguf_t *g = NULL;
    if (qc_gguf_open(path, &g, err, sizeof err) == QC_OK) {
        read_file(g);
        qc_tokenizer_t *tok = NULL;
        if (qc_tokenizer_from_gguf(g, &tok, err, sizeof err) == QC_OK) {
            static const char text[] = "<|im_start|>user\nHello, wörld 123!<|im_end|>";
            int32_t *ids = NULL;
            size_t n = 0;
            if (qc_tokenizer_encode(tok, text, sizeof text - 1, QC_TOK_PARSE_SPECIAL, &ids, &n) == QC_OK) {
                char *back = NULL;
                FUZZ_CHECK(qc_tokenizer_decode(tok, ids, n, &back, NULL) == QC_OK, "encode gave unknown ids");
                free(back);
            }
            free(ids);
        }
        qc_tokenizer_free(tok);
        qc_gguf_close(g);
    } else {
        FUZZ_CHECK(g == NULL, "a failed open left a handle");
    }
    /* the whole load; the weight type from the input, so every conversion runs */
    static const char *const dtypes[] = {"bf16", "q8_0", "q4_0", "f32"};
    qc_model_opts_t mo = {.n_threads = 1, .dtype = dtypes[size % 4]};
    qc_model_t *m = NULL;
    if (qc_model_load(path, &mo, &m, err, sizeof err) == QC_OK) run_model(m);
    else FUZZ_CHECK(m == NULL && err[0], "a failed load left a model or no message");
    qc_model_free(m);
    return 0;
}
