/* test_batch.c — several sequences in one forward pass (qc_batch_eval, the
 * engine side of the server's continuous batching) against each sequence
 * run alone with qc_ctx_eval: staggered starts, prefill in chunks mixed with
 * other sequences' decode steps, a run long enough (>= 64 tokens) for the
 * F32 attention path, a sequence on a shared prefix; every dtype and both
 * architectures. Also the rejected calls, which must change nothing. */
#include "test.h"

#include "qcare.h"

#include <math.h>
#include <string.h>

#define N_SEQ 5
#define N_GEN 10
#define CHUNK 16

static const int prompt_len[N_SEQ] = {3, 29, 1, 70, 12};
static const int start_step[N_SEQ] = {0, 0, 1, 2, 4};

typedef struct {
    int32_t ids[128];
    int n_ids, n_done, n_gen, step0, use_prefix;
    int32_t gen[N_GEN];
    float *logits[N_GEN + 1]; /* after the prompt, then after each generated token */
    int n_logits;
} seq_t;

static int32_t argmax(const float *v, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* Next run of tokens of s: a prompt chunk (the 70-token prompt in one run)
 * or its last generated token. 0 when finished. */
static int next_run(const seq_t *s, const int32_t **ids) {
    if (s->n_done < s->n_ids) {
        int left = s->n_ids - s->n_done, n = s->n_ids >= 64 ? left : (left < CHUNK ? left : CHUNK);
        *ids = s->ids + s->n_done;
        return n;
    }
    if (s->n_gen == 0 || s->n_gen == N_GEN) return 0;
    *ids = &s->gen[s->n_gen - 1];
    return 1;
}

/* Records the logits after a run and, when the prompt is done, the greedy
 * token they give. */
static void after_run(seq_t *s, int n, const float *logits, int n_vocab) {
    if (s->n_done < s->n_ids) s->n_done += n;
    if (s->n_done < s->n_ids) return;
    s->logits[s->n_logits] = malloc((size_t)n_vocab * sizeof(float));
    memcpy(s->logits[s->n_logits++], logits, (size_t)n_vocab * sizeof(float));
    if (s->n_gen < N_GEN) s->gen[s->n_gen++] = argmax(logits, n_vocab);
}

static void seq_reset(seq_t *s) {
    for (int i = 0; i < s->n_logits; i++) free(s->logits[i]);
    s->n_logits = s->n_done = s->n_gen = 0;
}

static void check_model(const char *name, const char *dtype) {
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/%s", test_env("QC_MODELS", "build/models"), name);
    qc_model_opts_t mo = {.dtype = dtype, .n_threads = 2};
    qc_model_t *m;
    if (qc_model_load(dir, &mo, &m, err, sizeof err)) {
        CHECK(0, "load %s: %s", dir, err);
        return;
    }
    int nv = qc_model_n_vocab(m);
    float *lg = malloc((size_t)nv * sizeof(float));
    seq_t seq[N_SEQ], ref[N_SEQ];
    uint64_t r = 0x9e3779b97f4a7c15ull;
    memset(seq, 0, sizeof seq);
    for (int i = 0; i < N_SEQ; i++) {
        seq[i].n_ids = prompt_len[i];
        seq[i].step0 = start_step[i];
        seq[i].use_prefix = i == 4;
        for (int k = 0; k < prompt_len[i]; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            seq[i].ids[k] = (int32_t)((r >> 33) % 1000);
        }
        ref[i] = seq[i];
    }
    /* A shared prefix (as the care pipeline's analyst prompt). */
    qc_ctx_t *prefix = qc_ctx_new(m, 256, NULL);
    int32_t pre[20];
    for (int k = 0; k < 20; k++) pre[k] = 100 + 7 * k;
    CHECK(qc_ctx_eval(prefix, pre, 20, NULL, QC_LOGITS_NONE) == QC_OK, "prefix");

    /* Each sequence alone, in the same runs. */
    for (int i = 0; i < N_SEQ; i++) {
        qc_ctx_t *x = qc_ctx_new(m, 256, NULL);
        if (ref[i].use_prefix) qc_ctx_set_prefix(x, prefix);
        const int32_t *ids;
        int n;
        while ((n = next_run(&ref[i], &ids)) > 0) {
            CHECK(qc_ctx_eval(x, ids, (size_t)n, lg, QC_LOGITS_LAST) == QC_OK, "solo eval: %s", qc_ctx_errmsg(x));
            after_run(&ref[i], n, lg, nv);
        }
        qc_ctx_free(x);
    }

    /* All together: each step runs every started, unfinished sequence's next
     * run in one pass. */
    qc_batch_t *b = qc_batch_new(m, 128);
    qc_ctx_t *ctx[N_SEQ];
    for (int i = 0; i < N_SEQ; i++) {
        ctx[i] = qc_ctx_new(m, 256, &(qc_ctx_opts_t){.n_batch = 8});
        if (seq[i].use_prefix) qc_ctx_set_prefix(ctx[i], prefix);
    }
    float *out[N_SEQ];
    for (int i = 0; i < N_SEQ; i++) out[i] = malloc((size_t)nv * sizeof(float));
    int max_width = 0, passes = 0;
    for (int step = 0; step < 100; step++) {
        qc_ctx_t *cs[N_SEQ];
        const int32_t *ids[N_SEQ];
        int n[N_SEQ], who[N_SEQ], k = 0;
        float *lo[N_SEQ];
        for (int i = 0; i < N_SEQ; i++) {
            if (step < seq[i].step0) continue;
            int len = next_run(&seq[i], &ids[k]);
            if (!len) continue;
            cs[k] = ctx[i], n[k] = len, lo[k] = out[i], who[k++] = i;
        }
        if (!k) break;
        qc_status st = qc_batch_eval(b, cs, ids, n, lo, k);
        CHECK(st == QC_OK, "batch eval: %s", qc_batch_errmsg(b));
        if (st) break;
        passes++;
        if (k > max_width) max_width = k;
        for (int q = 0; q < k; q++) after_run(&seq[who[q]], n[q], out[who[q]], nv);
    }
    double worst = 0;
    int same_tokens = 1, same_count = 1;
    for (int i = 0; i < N_SEQ; i++) {
        same_count &= seq[i].n_logits == ref[i].n_logits && seq[i].n_gen == N_GEN;
        for (int g = 0; g < seq[i].n_gen && g < ref[i].n_gen; g++) same_tokens &= seq[i].gen[g] == ref[i].gen[g];
        for (int l = 0; l < seq[i].n_logits && l < ref[i].n_logits; l++)
            for (int v = 0; v < nv; v++) {
                double d = fabs((double)seq[i].logits[l][v] - ref[i].logits[l][v]);
                if (d > worst) worst = d;
            }
        CHECK(qc_ctx_pos(ctx[i]) == (seq[i].use_prefix ? 20 : 0) + prompt_len[i] + N_GEN - 1,
              "%s %s: sequence %d at %d", name, dtype, i, qc_ctx_pos(ctx[i]));
    }
    printf("%s %s: %d passes, up to %d sequences per pass, max |batched - alone| = %g\n", name, dtype, passes,
           max_width, worst);
    CHECK(max_width == N_SEQ, "%s %s: all sequences shared a pass (%d)", name, dtype, max_width);
    CHECK(same_count, "%s %s: every sequence produced its logits", name, dtype);
    CHECK(same_tokens, "%s %s: greedy tokens batched = alone", name, dtype);
    CHECK(worst == 0, "%s %s: batched logits equal the ones alone (max diff %g)", name, dtype, worst);

    /* Rejected calls change nothing. */
    int p0 = qc_ctx_pos(ctx[0]), p1 = qc_ctx_pos(ctx[1]);
    int32_t one = 5, bad = nv, many[200] = {0};
    qc_ctx_t *two[2] = {ctx[0], ctx[0]}, *pair[2] = {ctx[0], ctx[1]};
    const int32_t *i2[2] = {&one, &one}, *ibad[2] = {&one, &bad}, *imany[2] = {&one, many};
    int n11[2] = {1, 1}, n1big[2] = {1, 200}, n10[2] = {1, 0};
    CHECK(qc_batch_eval(b, two, i2, n11, NULL, 2) == QC_ERR_ARG, "the same context twice");
    CHECK(qc_batch_eval(b, pair, ibad, n11, NULL, 2) == QC_ERR_ARG, "token id out of range: %s", qc_batch_errmsg(b));
    CHECK(qc_batch_eval(b, pair, imany, n1big, NULL, 2) != QC_OK, "more tokens than the batch holds");
    CHECK(qc_batch_eval(b, pair, i2, n10, NULL, 2) == QC_ERR_ARG, "a sequence without tokens");
    CHECK(qc_batch_eval(b, pair, i2, n11, NULL, 0) == QC_ERR_ARG, "no sequences");
    qc_ctx_t *small = qc_ctx_new(m, 4, NULL);
    qc_ctx_t *full[2] = {ctx[0], small};
    const int32_t *ifull[2] = {&one, many};
    int nfull[2] = {1, 5};
    CHECK(qc_batch_eval(b, full, ifull, nfull, NULL, 2) == QC_ERR_CONTEXT, "past the context: %s",
          qc_batch_errmsg(b));
    CHECK(qc_ctx_pos(ctx[0]) == p0 && qc_ctx_pos(ctx[1]) == p1 && qc_ctx_pos(small) == 0,
          "rejected calls moved no sequence");
    CHECK(qc_batch_new(m, 0) == NULL, "a batch of 0 tokens is refused");

    qc_ctx_free(small);
    for (int i = 0; i < N_SEQ; i++) {
        qc_ctx_free(ctx[i]);
        free(out[i]);
        seq_reset(&seq[i]);
        seq_reset(&ref[i]);
    }
    qc_batch_free(b);
    qc_ctx_free(prefix);
    free(lg);
    qc_model_free(m);
}

int main(void) {
    /* every weight type on each model; ordered so that the first cases
     * (QC_TEST_CASES under emulation) take the int8 kernels and both models */
    static const char *const cases[][2] = {
        {"tiny-qwen2", "q8_0"}, {"tiny-qwen3", "q4_0"}, {"tiny-qwen3", "bf16"}, {"tiny-qwen2", "f32"},
        {"tiny-qwen3", "q8_0"}, {"tiny-qwen2", "q4_0"}, {"tiny-qwen2", "bf16"}, {"tiny-qwen3", "f32"},
    };
    for (int i = 0; i < 8; i++)
        if (test_case(i)) check_model(cases[i][0], cases[i][1]);
    return test_done("test_batch");
}
