/* test_golden.c — the forward pass against llama.cpp's logits.
 *
 * The goldens in ../shared/fixtures/golden/tiny-qwen{2,3}.jsonl were computed
 * by llama.cpp (F32 weights) on the same weights that `qcare mkmodel` writes
 * (the generator itself is checked tensor by tensor against the manifests in
 * test_loader). For every prompt this checks: the tokenization, the top-5
 * logits at every position, the top-50 and 64 probed logits at the last one
 * (all within 1e-3), the 24 greedy tokens, and that whole, chunked and
 * token-by-token prefill give the same logits. The same model re-saved with
 * F32 and F16 tensors must give the same answers.
 *
 * Tolerance. The goldens carry llama.cpp's default half-precision KV cache:
 * rounding V to half reproduces position 0 to 1e-6, and llama.cpp's own
 * logits for the same prefix differ by 1.1e-3 between golden lines of
 * different length (its CPU flash attention accumulates in half precision
 * below 64 queries per batch and in F32 above). qcare computes attention the
 * same way; what is left is half-precision rounding ties turned by 1e-7
 * differences in summation order (measured: max 2.7e-3 and 99.9% within 1e-3
 * with the AVX-512 kernels, 2.7e-3 and 97.1% with the scalar ones). So: every
 * listed logit within TOL_MAX, at least 95% within TOL, and the greedy tokens
 * identical. */
#include "engine/engine.h"
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#define TOL 1e-3
#define TOL_MAX 3e-3

/* Every compared logit: the largest |ours - llama.cpp|, and how many within TOL. */
static test_golden_t diffs = {.tol = TOL, .tol_max = TOL_MAX};

static int argmax(const float *row, int32_t n) {
    int best = 0;
    for (int32_t i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

/* Runs every golden line of one model directory. */
static void check_model(const char *dir, const char *golden_path, const char *label) {
    char err[512];
    qc_model_t *m = NULL;
    qc_model_opts_t mo = {.dtype = "bf16"}; /* weights as stored: exact */
    qc_status st = qc_model_load(dir, &mo, &m, err, sizeof err);
    CHECK(st == QC_OK, "%s: load %s: %s", label, dir, err);
    if (st) return;
    json_error_t je;
    json_t *lines = NULL;
    FILE *f = fopen(golden_path, "r");
    CHECK(f != NULL, "cannot open %s", golden_path);
    if (!f) goto done;
    int32_t nv = qc_model_n_vocab(m);
    char *line = NULL;
    size_t cap = 0;
    const long longest = test_golden_longest(golden_path);
    for (long li = 0; getline(&line, &cap, f) > 0; li++) {
        if (!test_golden_case(li, longest)) continue; /* QC_TEST_CASES */
        json_t *g = json_loads(line, 0, &je);
        CHECK(g != NULL, "%s: bad golden line: %s", golden_path, je.text);
        if (!g) continue;
        const char *prompt = json_string_value(json_object_get(g, "prompt"));
        json_t *tokens = json_object_get(g, "tokens");
        int32_t *ids = NULL;
        size_t n = 0;
        st = qc_tokenizer_encode(qc_model_tokenizer(m), prompt, strlen(prompt), QC_TOK_PARSE_SPECIAL, &ids, &n);
        int same = st == QC_OK && n == json_array_size(tokens);
        for (size_t i = 0; same && i < n; i++) same = ids[i] == json_integer_value(json_array_get(tokens, i));
        CHECK(same, "%s: tokens of '%.40s' differ from llama.cpp's", label, prompt);
        if (!same) goto next;

        /* Whole prompt in one pass, all logits. */
        float *all = malloc(n * (size_t)nv * sizeof(float));
        float *one = malloc((size_t)nv * sizeof(float));
        qc_ctx_opts_t big = {.n_batch = 512}, small = {.n_batch = 3};
        qc_ctx_t *x = qc_ctx_new(m, 256, &big);
        CHECK(all && one && x, "out of memory");
        if (!all || !one || !x) goto free_run;
        CHECK(qc_ctx_eval(x, ids, n, all, QC_LOGITS_ALL) == QC_OK, "eval: %s", qc_ctx_errmsg(x));
        test_golden_logits(&diffs, g, all, n, nv, label);
        const float *last = all + (n - 1) * nv;

        /* Chunked (3 tokens a pass) and token-by-token prefill agree. */
        qc_ctx_t *xc = qc_ctx_new(m, 256, &small);
        float *chunked = malloc(n * (size_t)nv * sizeof(float));
        double dc = 0, dt = 0, dct = 0;
        if (xc && chunked && qc_ctx_eval(xc, ids, n, chunked, QC_LOGITS_ALL) == QC_OK) {
            for (size_t i = 0; i < n * (size_t)nv; i++) dc = fmax(dc, fabs(chunked[i] - all[i]));
        } else {
            dc = INFINITY;
        }
        qc_ctx_truncate(xc, 0);
        for (size_t p = 0; p < n && xc; p++) {
            if (qc_ctx_eval(xc, &ids[p], 1, one, QC_LOGITS_LAST)) { dt = INFINITY; break; }
            for (int32_t i = 0; i < nv; i++) {
                dt = fmax(dt, fabs(one[i] - all[p * nv + i]));
                if (chunked) dct = fmax(dct, fabs(one[i] - chunked[p * nv + i]));
            }
        }
        CHECK(dct <= 1e-6, "%s: 3-token chunks and token-by-token differ by %g", label, dct);
        /* Below 64 tokens a batch runs the same attention numerics as single
         * steps, so the three agree exactly; a batch of 64 or more switches to
         * the F32 (tiled) numerics, as llama.cpp does, and differs by the
         * half-precision accumulation of the single steps. */
        if (n < 64) {
            CHECK(dc <= 1e-6, "%s: chunked prefill differs from whole prefill by %g", label, dc);
            CHECK(dt <= 1e-6, "%s: token-by-token differs from whole prefill by %g", label, dt);
        } else {
            CHECK(dt <= 0.05, "%s: %zu-token prefill and token-by-token differ by %g", label, n, dt);
            printf("%s: %zu-token prompt: whole prefill vs token-by-token max |diff| %.4f\n", label, n, dt);
        }
        qc_ctx_free(xc);
        free(chunked);

        /* 24 greedy tokens, one decode step each, from the whole-prompt cache. */
        json_t *greedy = json_object_get(g, "greedy"), *margins = json_object_get(g, "greedy_logit_and_margin");
        memcpy(one, last, (size_t)nv * sizeof(float));
        int greedy_ok = 1;
        double worst = 0;
        for (size_t i = 0; i < json_array_size(greedy); i++) {
            int32_t id = argmax(one, nv);
            int want = (int)json_integer_value(json_array_get(greedy, i));
            double wl = json_number_value(json_array_get(json_array_get(margins, i), 0));
            test_golden_note(&diffs, fabs(one[want] - wl));
            worst = fmax(worst, fabs(one[want] - wl));
            if (id != want) {
                fprintf(stderr, "  %s greedy step %zu: %d (%.6f) vs llama.cpp %d (%.6f)\n", label, i, id, one[id], want, wl);
                greedy_ok = 0;
                break;
            }
            if (qc_ctx_eval(x, &id, 1, one, QC_LOGITS_LAST)) { greedy_ok = 0; break; }
        }
        CHECK(worst <= TOL_MAX, "%s '%.30s': greedy winning logits within %g (worst %g)", label, prompt, TOL_MAX, worst);
        CHECK(greedy_ok, "%s '%.30s': 24 greedy tokens equal llama.cpp's", label, prompt);
    free_run:
        qc_ctx_free(x);
        free(all);
        free(one);
    next:
        free(ids);
        json_decref(g);
    }
    free(line);
    fclose(f);
done:
    json_decref(lines);
    qc_model_free(m);
}

/* ==== the same weights stored as F32 / F16 ==== */

/* Writes a safetensors file holding every tensor of src converted to dtype
 * (values are exact in both, the fixture recipe guarantees it). */
static int write_converted(const qc_st_t *src, qc_dtype_t dtype, const char *path) {
    json_t *hdr = json_object();
    size_t off = 0, es = qc_dtype_size(dtype);
    for (size_t i = 0; i < qc_st_count(src); i++) {
        const qc_st_tensor_t *t = qc_st_at(src, i);
        size_t n = t->nbytes / qc_dtype_size(t->dtype);
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(hdr, t->name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", qc_dtype_name(dtype), "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + n * es)));
        off += n * es;
    }
    char *h = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    FILE *f = fopen(path, "wb");
    if (!f || !h) {
        free(h);
        if (f) fclose(f);
        return 1;
    }
    uint64_t hl = strlen(h);
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, hl, f);
    free(h);
    for (size_t i = 0; i < qc_st_count(src); i++) {
        const qc_st_tensor_t *t = qc_st_at(src, i);
        size_t n = t->nbytes / qc_dtype_size(t->dtype);
        const uint16_t *s = t->data;
        for (size_t j = 0; j < n; j++) {
            float v = qc_bf16_to_f32(s[j]);
            if (dtype == QC_DTYPE_F32) {
                fwrite(&v, 4, 1, f);
            } else { /* exact: every fixture value has <= 8 significant bits and a small exponent */
                union { float f; uint32_t u; } b = {v};
                uint32_t sign = (b.u >> 16) & 0x8000, e = (b.u >> 23) & 0xff;
                uint16_t h16 = v == 0 ? (uint16_t)sign
                                      : (uint16_t)(sign | ((e - 127 + 15) << 10) | ((b.u >> 13) & 0x3ff));
                fwrite(&h16, 2, 1, f);
            }
        }
    }
    return fclose(f) != 0;
}

static void link_file(const char *from_dir, const char *to_dir, const char *name) {
    char a[4200], b[4200], abs_from[PATH_MAX];
    if (!realpath(from_dir, abs_from)) return;
    snprintf(a, sizeof a, "%s/%s", abs_from, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    unlink(b);
    if (symlink(a, b)) perror("symlink");
}

static void check_other_dtypes(const char *dir, const char *golden, const char *name) {
    char err[512], tmpl[1024];
    qc_st_t *st = NULL;
    if (qc_st_open_dir(dir, &st, err, sizeof err)) {
        CHECK(0, "open %s: %s", dir, err);
        return;
    }
    for (int k = 0; k < 2; k++) {
        if (!test_case(k)) continue; /* QC_TEST_CASES */
        qc_dtype_t dt = k ? QC_DTYPE_F32 : QC_DTYPE_F16;
        snprintf(tmpl, sizeof tmpl, "%s/%s-%s-XXXXXX", test_env("QC_MODELS", "/tmp"), name, qc_dtype_name(dt));
        if (!mkdtemp(tmpl)) {
            CHECK(0, "mkdtemp %s", tmpl);
            continue;
        }
        char path[1100], label[64];
        snprintf(path, sizeof path, "%s/model.safetensors", tmpl);
        CHECK(write_converted(st, dt, path) == 0, "write %s", path);
        link_file(dir, tmpl, "config.json");
        link_file(dir, tmpl, "generation_config.json");
        link_file(dir, tmpl, "tokenizer.json");
        snprintf(label, sizeof label, "%s/%s", name, qc_dtype_name(dt));
        check_model(tmpl, golden, label);
        unlink(path);
        snprintf(path, sizeof path, "rm -rf '%s'", tmpl);
        if (system(path)) fprintf(stderr, "cleanup of %s failed\n", tmpl);
    }
    qc_st_close(st);
}

int main(void) {
    const char *models = test_env("QC_MODELS", "build/models");
    const char *names[] = {"tiny-qwen2", "tiny-qwen3"};
    for (int i = 0; i < 2; i++) {
        char dir[1024], golden[1024];
        snprintf(dir, sizeof dir, "%s/%s", models, names[i]);
        snprintf(golden, sizeof golden, "%s/golden/%s.jsonl", fixtures(), names[i]);
        check_model(dir, golden, names[i]);
        check_other_dtypes(dir, golden, names[i]);
    }
    printf("max |logit - llama.cpp| = %.3g; %ld of %ld logits (%.2f%%) within %g\n", diffs.max_diff,
           diffs.n_within, diffs.n_compared, 100.0 * diffs.n_within / (diffs.n_compared ? diffs.n_compared : 1), TOL);
    /* a statistic of the whole golden set: a subset's share differs (the
     * first prompt alone: 94%) */
    if (test_cases_all()) CHECK(diffs.n_within >= 0.95 * diffs.n_compared, "at least 95%% of logits within %g", TOL);
    else SKIP("the share of logits within %g is checked on every golden prompt only (QC_TEST_CASES)", TOL);
    return test_done("test_golden");
}
