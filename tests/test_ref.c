/* test_ref.c — the fast forward pass against the reference one.
 *
 * forward_ref.c is the model written plainly: scalar F32, one token at a
 * time, an F32 KV cache, every weight row dequantized right before use.
 * 1. The fast path (qc_ctx_eval through the public API: the whole prompt in
 *    one pass, and token by token) against the reference on the same loaded
 *    weights, over every logit at every position of the prompts of
 *    golden/tiny-qwen{2,3}.jsonl: both fixture models loaded as f32, bf16,
 *    q8_0 and q4_0, and the fixture GGUFs tiny-qwen3.{f16,q8_0,q4_0}.gguf as
 *    stored. Loads whose weights dequantize to the same values (checked)
 *    share one reference run.
 * 2. The reference against llama.cpp (the same golden files, F32 weights):
 *    top-5 logits at every position, top-50 and 64 probed logits at the last.
 *
 * Tolerances (measured on the fixtures with the AVX2 and the scalar
 * kernels, QCARE_CPU=scalar; README.md's Accuracy section has the table):
 * - Fast vs reference. The fast path keeps K/V at half precision, and below
 *   64 tokens a pass accumulates attention in half precision as llama.cpp
 *   does; the reference does neither. Float weights (F32, BF16, F16): max
 *   0.020 whole prompt, 0.035 token by token -> TOL_FLOAT 0.05. For Q8_0
 *   and Q4_0 weights the fast path also quantizes the activations to 8 bits
 *   (the reference multiplies the same dequantized weights by F32
 *   activations): Q8_0 max 0.385 -> TOL_Q8 0.5; Q4_0 max 0.523 -> TOL_Q4
 *   0.75.
 * - Reference vs llama.cpp. The goldens carry llama.cpp's F16 KV cache and
 *   its half-precision attention sums, so the F32 reference cannot meet the
 *   fixtures' 1e-3 (which holds for an engine that computes attention as
 *   llama.cpp does): already at position 0, where attention returns V
 *   itself, V's rounding to half moves the logits by 1.4e-3. Measured: max
 *   0.0114, 52% of the 3,010 listed logits within 1e-3 -> TOL_LLAMA 0.02.
 *   (With K/V rounded to half, a temporary change, the reference met 1e-3
 *   at every position of the 95-token prompt, the one llama.cpp ran with
 *   F32 attention sums.)
 */
#include "engine/kernels.h"
#include "engine/model_impl.h"
#include "test.h"

#include <stddef.h>
#include <string.h>

#define TOL_FLOAT 0.05
#define TOL_Q8 0.5
#define TOL_Q4 0.75
#define TOL_LLAMA 0.02

#define MAX_LOADS 3
#define MAX_TOKENS 256

/* Loads of one model whose weights dequantize to the same values, with the
 * prompts of golden/<golden>.jsonl. */
typedef struct {
    const char *golden;
    double tol;   /* max |fast - reference| over every logit */
    int vs_llama; /* also check the reference against the golden values */
    struct {
        const char *name;  /* a folder under QC_MODELS, or a .gguf in the fixtures' models/ */
        const char *dtype; /* qc_model_opts_t.dtype */
    } loads[MAX_LOADS];
} group_t;

/* ==== the same weights ==== */

/* Whether a and b hold the same values, row by row (both absent counts). */
static int same_tensor(const qc_tensor_t *a, const qc_tensor_t *b) {
    /* a converted matrix in panels keeps no data: it is there if either is */
    const int ha = a->data || a->panel, hb = b->data || b->panel;
    if (!ha || !hb) return !ha && !hb;
    if (a->rows != b->rows || a->cols != b->cols) return 0;
    float *ra = malloc((size_t)a->cols * sizeof *ra), *rb = malloc((size_t)a->cols * sizeof *rb);
    int same = ra && rb;
    for (int64_t r = 0; same && r < a->rows; r++) {
        qc_dequantize_row(a, r, ra);
        qc_dequantize_row(b, r, rb);
        same = !memcmp(ra, rb, (size_t)a->cols * sizeof *ra);
    }
    free(ra);
    free(rb);
    return same;
}

/* Whether qc_forward_ref sees the same model in a and b: the same shapes
 * and constants, every weight the same values. */
static int same_weights(const qc_model_t *a, const qc_model_t *b) {
    static const size_t layer_tensors[] = {
        offsetof(qc_layer_t, attn_norm), offsetof(qc_layer_t, wq),     offsetof(qc_layer_t, wk),
        offsetof(qc_layer_t, wv),        offsetof(qc_layer_t, bq),     offsetof(qc_layer_t, bk),
        offsetof(qc_layer_t, bv),        offsetof(qc_layer_t, q_norm), offsetof(qc_layer_t, k_norm),
        offsetof(qc_layer_t, wo),        offsetof(qc_layer_t, ffn_norm), offsetof(qc_layer_t, w_gate),
        offsetof(qc_layer_t, w_up),      offsetof(qc_layer_t, w_down)};
    const qc_config_t *x = &a->cfg, *y = &b->cfg;
    if (x->n_embd != y->n_embd || x->n_ff != y->n_ff || x->n_layer != y->n_layer || x->n_head != y->n_head ||
        x->n_head_kv != y->n_head_kv || x->head_dim != y->head_dim || x->n_vocab != y->n_vocab ||
        x->qkv_bias != y->qkv_bias || x->qk_norm != y->qk_norm || x->rope_theta != y->rope_theta ||
        x->rms_eps != y->rms_eps)
        return 0;
    int same = same_tensor(&a->tok_embd, &b->tok_embd) && same_tensor(&a->out_norm, &b->out_norm) &&
               same_tensor(&a->lm_head, &b->lm_head);
    for (int l = 0; same && l < x->n_layer; l++)
        for (size_t i = 0; same && i < sizeof layer_tensors / sizeof layer_tensors[0]; i++)
            same = same_tensor((const qc_tensor_t *)((const char *)&a->layers[l] + layer_tensors[i]),
                               (const qc_tensor_t *)((const char *)&b->layers[l] + layer_tensors[i]));
    return same;
}

/* ==== fast vs reference ==== */

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* The fast path's logits for ids[0..n) on m, whole and token by token,
 * against ref [n][n_vocab]; raises *whole and *steps to the max |diff|.
 * fast: [n][n_vocab] of scratch. */
static void fast_vs_ref(qc_model_t *m, const int32_t *ids, int n, const float *ref, float *fast, double *whole,
                        double *steps) {
    int32_t nv = qc_model_n_vocab(m);
    qc_ctx_t *x = qc_ctx_new(m, n, NULL);
    CHECK(x != NULL, "out of memory");
    if (!x) return;
    CHECK(qc_ctx_eval(x, ids, (size_t)n, fast, QC_LOGITS_ALL) == QC_OK, "eval: %s", qc_ctx_errmsg(x));
    *whole = fmax(*whole, max_abs_diff(fast, ref, (size_t)n * nv));
    qc_ctx_truncate(x, 0);
    for (int i = 0; i < n; i++) {
        CHECK(qc_ctx_eval(x, &ids[i], 1, fast, QC_LOGITS_LAST) == QC_OK, "eval: %s", qc_ctx_errmsg(x));
        *steps = fmax(*steps, max_abs_diff(fast, ref + (size_t)i * nv, (size_t)nv));
    }
    qc_ctx_free(x);
}

static qc_model_t *load(const char *name, const char *dtype) {
    char path[1024], err[512];
    if (strstr(name, ".gguf")) snprintf(path, sizeof path, "%s/models/%s", fixtures(), name);
    else snprintf(path, sizeof path, "%s/%s", test_env("QC_MODELS", "build/models"), name);
    qc_model_opts_t mo = {.dtype = dtype};
    qc_model_t *m = NULL;
    CHECK(qc_model_load(path, &mo, &m, err, sizeof err) == QC_OK, "load %s as %s: %s", path, dtype, err);
    return m;
}

/* Every prompt of the group's golden file: the reference once on the first
 * load, then the fast path of every load against it. */
static void check_group(const group_t *g, test_golden_t *gd) {
    qc_model_t *m[MAX_LOADS] = {0};
    int n_loads = 0;
    char path[1024];
    while (n_loads < MAX_LOADS && g->loads[n_loads].name) {
        m[n_loads] = load(g->loads[n_loads].name, g->loads[n_loads].dtype);
        n_loads++;
    }
    for (int i = 1; i < n_loads; i++)
        CHECK(m[0] && m[i] && same_weights(m[0], m[i]), "%s as %s: the same values as %s as %s",
              g->loads[i].name, g->loads[i].dtype, g->loads[0].name, g->loads[0].dtype);
    snprintf(path, sizeof path, "%s/golden/%s.jsonl", fixtures(), g->golden);
    json_t *lines = m[0] ? test_golden_read(path) : NULL, *line;
    double whole[MAX_LOADS] = {0}, steps[MAX_LOADS] = {0};
    size_t li;
    json_array_foreach(lines, li, line) {
        json_t *tokens = json_object_get(line, "tokens");
        int n = (int)json_array_size(tokens), pos[MAX_TOKENS];
        int32_t ids[MAX_TOKENS], nv = qc_model_n_vocab(m[0]);
        CHECK(n > 0 && n <= MAX_TOKENS, "%s: line %zu has %d tokens", path, li, n);
        if (n <= 0 || n > MAX_TOKENS) continue;
        for (int i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(tokens, i)), pos[i] = i;
        float *ref = malloc((size_t)n * nv * sizeof(float)), *fast = malloc((size_t)n * nv * sizeof(float));
        qc_ref_state_t s;
        int ok = ref && fast && qc_ref_state_init(&s, m[0], n) == QC_OK;
        CHECK(ok, "out of memory");
        if (ok) {
            CHECK(qc_forward_ref(&s, ids, pos, n, ref) == QC_OK, "reference pass");
            qc_ref_state_free(&s);
            if (g->vs_llama) test_golden_logits(gd, line, ref, (size_t)n, nv, g->golden);
            for (int i = 0; i < n_loads; i++)
                if (m[i]) fast_vs_ref(m[i], ids, n, ref, fast, &whole[i], &steps[i]);
        }
        free(ref);
        free(fast);
    }
    for (int i = 0; i < n_loads && lines; i++) {
        char label[128];
        snprintf(label, sizeof label, "%s as %s", g->loads[i].name, g->loads[i].dtype);
        printf("%-28s max |fast - reference|: whole prompt %.3g, token by token %.3g\n", label, whole[i], steps[i]);
        CHECK(whole[i] <= g->tol, "%s: whole-prompt logits within %g of the reference (%g)", label, g->tol, whole[i]);
        CHECK(steps[i] <= g->tol, "%s: token-by-token logits within %g of the reference (%g)", label, g->tol,
              steps[i]);
    }
    json_decref(lines);
    for (int i = 0; i < n_loads; i++) qc_model_free(m[i]);
}

/* ==== the reference's own contract ==== */

/* Bad arguments are refused with nothing run; a cache-only pass works. */
static void check_args(void) {
    qc_model_t *m = load("tiny-qwen2", "f32");
    if (!m) return;
    qc_ref_state_t s;
    CHECK(qc_ref_state_init(&s, m, 0) == QC_ERR_ARG, "n_ctx 0 refused");
    qc_ref_state_free(&s);
    qc_ref_state_free(NULL);
    CHECK(qc_ref_state_init(&s, m, 4) == QC_OK, "init");
    int32_t bad_id = qc_model_n_vocab(m), neg_id = -1, id = 1;
    int p0 = 0, p4 = 4, neg = -1;
    CHECK(qc_forward_ref(&s, &bad_id, &p0, 1, NULL) == QC_ERR_ARG, "id n_vocab refused");
    CHECK(qc_forward_ref(&s, &neg_id, &p0, 1, NULL) == QC_ERR_ARG, "id -1 refused");
    CHECK(qc_forward_ref(&s, &id, &p4, 1, NULL) == QC_ERR_ARG, "position n_ctx refused");
    CHECK(qc_forward_ref(&s, &id, &neg, 1, NULL) == QC_ERR_ARG, "position -1 refused");
    CHECK(qc_forward_ref(&s, &id, &p0, 1, NULL) == QC_OK, "a pass that only fills the cache");
    qc_ref_state_free(&s);
    qc_model_free(m);
}

int main(void) {
    static const group_t groups[] = {
        {"tiny-qwen2", TOL_FLOAT, 1, {{"tiny-qwen2", "f32"}, {"tiny-qwen2", "bf16"}}},
        {"tiny-qwen2", TOL_Q8, 0, {{"tiny-qwen2", "q8_0"}}},
        {"tiny-qwen2", TOL_Q4, 0, {{"tiny-qwen2", "q4_0"}}},
        {"tiny-qwen3", TOL_FLOAT, 1, {{"tiny-qwen3", "f32"}, {"tiny-qwen3", "bf16"}, {"tiny-qwen3.f16.gguf", "f16"}}},
        {"tiny-qwen3", TOL_Q8, 0, {{"tiny-qwen3", "q8_0"}, {"tiny-qwen3.q8_0.gguf", "q8_0"}}},
        {"tiny-qwen3", TOL_Q4, 0, {{"tiny-qwen3", "q4_0"}, {"tiny-qwen3.q4_0.gguf", "q4_0"}}},
    };
    test_golden_t gd = {.tol = 1e-3, .tol_max = TOL_LLAMA};
    check_args();
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) check_group(&groups[i], &gd);
    printf("reference vs llama.cpp: max |diff| %.3g; %ld of %ld listed logits (%.1f%%) within %g\n", gd.max_diff,
           gd.n_within, gd.n_compared, 100.0 * gd.n_within / (gd.n_compared ? gd.n_compared : 1), gd.tol);
    return test_done("test_ref");
}
