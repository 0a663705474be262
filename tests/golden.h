/* golden.h — runs a model over one of the fixtures' golden files of
 * llama.cpp's logits (golden/NAME.jsonl, one prompt a line) and gathers how far
 * its logits are: the listed top-5 at every position, the last position's
 * top-50 and probed logits where the file has them, and the greedy tokens up
 * to the first difference (after it the contexts differ). Include after
 * test.h. */
#ifndef QC_TEST_GOLDEN_H
#define QC_TEST_GOLDEN_H

#include "engine/engine.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The model's norm and bias vectors: a GGUF model owns a copy of each
 * (weights.c's own_vector), beside its panels. */
static inline int golden_n_vectors(const qc_model_t *m) {
    int n = m->out_norm.data != NULL;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const qc_layer_t *L = &m->layers[l];
        const qc_tensor_t *v[] = {&L->attn_norm, &L->ffn_norm, &L->bq, &L->bk, &L->bv, &L->q_norm, &L->k_norm};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) n += v[i]->data != NULL;
    }
    return n;
}

typedef struct {
    double max_diff;             /* over every listed logit */
    double sum_pos;              /* sum over positions of each position's largest top-5 difference */
    long n, within_tol;          /* listed logits compared, within 1e-3 */
    long positions, tight;       /* positions, those whose top-5 are within 2.5e-3 */
    long greedy_same, greedy_total;
    double greedy_gap;           /* where a greedy token first differs: how far below our best logit
                                  * ours of llama.cpp's token is (the largest over the prompts) */
} golden_stats_t;

static double golden_pairs(const json_t *pairs, const float *row, golden_stats_t *s) {
    size_t i;
    json_t *p;
    double worst = 0;
    json_array_foreach(pairs, i, p) {
        double d = fabs(row[json_integer_value(json_array_get(p, 0))] - json_number_value(json_array_get(p, 1)));
        worst = fmax(worst, d);
        s->n++;
        s->within_tol += d <= 1e-3;
    }
    s->max_diff = fmax(s->max_diff, worst);
    return worst;
}

static inline int golden_argmax(const float *row, int32_t n) {
    int best = 0;
    for (int32_t i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

/* Runs every line of a golden file (or the QC_TEST_CASES first and the
 * longest: test_golden_case) on model
 * m: tokens (a CHECK), top-5 at every position, last top-50 and probes,
 * greedy tokens; adds to *s. */
static void golden_run(qc_model_t *m, const char *golden, golden_stats_t *s) {
    FILE *f = fopen(golden, "r");
    CHECK(f != NULL, "open %s", golden);
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    int32_t nv = qc_model_n_vocab(m);
    const long longest = test_golden_longest(golden);
    for (long li = 0; getline(&line, &cap, f) > 0; li++) {
        if (!test_golden_case(li, longest)) continue;
        json_t *g = json_loads(line, 0, NULL);
        if (!g) continue;
        const char *prompt = json_string_value(json_object_get(g, "prompt"));
        json_t *tokens = json_object_get(g, "tokens");
        int32_t *ids = NULL;
        size_t n = 0;
        qc_status st = qc_tokenizer_encode(qc_model_tokenizer(m), prompt, strlen(prompt), QC_TOK_PARSE_SPECIAL, &ids, &n);
        int same = st == QC_OK && n == json_array_size(tokens);
        for (size_t i = 0; same && i < n; i++) same = ids[i] == json_integer_value(json_array_get(tokens, i));
        CHECK(same, "%s: tokens of '%.30s' differ from llama.cpp's", golden, prompt);
        float *all = same ? malloc(n * (size_t)nv * sizeof(float)) : NULL, *one = malloc((size_t)nv * sizeof(float));
        qc_ctx_t *x = same ? qc_ctx_new(m, 256, NULL) : NULL;
        if (all && one && x && qc_ctx_eval(x, ids, n, all, QC_LOGITS_ALL) == QC_OK) {
            json_t *top5 = json_object_get(g, "top5_per_position");
            for (size_t p = 0; p < n; p++) {
                const double d = golden_pairs(json_array_get(top5, p), all + p * nv, s);
                s->positions++;
                s->tight += d <= 2.5e-3;
                s->sum_pos += d;
            }
            golden_pairs(json_object_get(g, "last_top50"), all + (n - 1) * nv, s);
            golden_pairs(json_object_get(g, "last_probe"), all + (n - 1) * nv, s);
            json_t *greedy = json_object_get(g, "greedy");
            memcpy(one, all + (n - 1) * nv, (size_t)nv * sizeof(float));
            for (size_t i = 0; i < json_array_size(greedy); i++) {
                int32_t id = golden_argmax(one, nv);
                const json_int_t want = json_integer_value(json_array_get(greedy, i));
                if (id != want) {
                    if (want >= 0 && want < nv) s->greedy_gap = fmax(s->greedy_gap, one[id] - one[want]);
                    break;
                }
                s->greedy_same++;
                if (qc_ctx_eval(x, &id, 1, one, QC_LOGITS_LAST)) break;
            }
            s->greedy_total += (long)json_array_size(greedy);
        } else if (same) {
            CHECK(0, "%s: eval of '%.30s' failed", golden, prompt);
        }
        qc_ctx_free(x);
        free(all);
        free(one);
        free(ids);
        json_decref(g);
    }
    free(line);
    fclose(f);
}

#endif
