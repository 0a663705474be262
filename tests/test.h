/* test.h — the tiny harness every test program uses: CHECK counts passes
 * and failures, SKIP counts (and says) what could not be checked here,
 * test_done prints the closing line `NAME: N passed, N failed, N skipped`
 * and returns the exit code; and the readers of llama.cpp's logits goldens
 * (test_golden_*). */
#ifndef QC_TEST_H
#define QC_TEST_H
#include "base/base.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int test_passed, test_failed, test_skipped;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            test_passed++;                                                     \
        } else {                                                               \
            test_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* One check that cannot run here (a CPU level this machine lacks, ...):
 * counted, and its reason printed as a line starting "SKIP", which the
 * runner repeats in its summary, so a skip is never silent. */
#define SKIP(...)                                                              \
    do {                                                                       \
        test_skipped++;                                                        \
        printf("SKIP %s:%d: ", __FILE__, __LINE__);                            \
        printf(__VA_ARGS__);                                                   \
        putchar('\n');                                                         \
    } while (0)

/* The value of environment variable `name`, or def when unset or empty. */
static inline const char *test_env(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* ==== a subset of the cases (QC_TEST_CASES) ====
 * Under emulation (make emu-test runs the ARM64 build under qemu, tens of
 * times slower than native) the tests with long case lists — golden
 * prompts, model x weight-type pairs — run a subset: QC_TEST_CASES=N takes
 * the first N cases of each list a test passes through test_case. What is
 * left out is counted and reported by test_done as one SKIP, so a subset
 * run never reads as the whole test. Unset or empty: every case. */
static long test_cases_left_out;

/* Whether every case runs (no QC_TEST_CASES). */
static inline int test_cases_all(void) {
    const char *v = getenv("QC_TEST_CASES");
    return !v || !*v;
}

/* Whether case i (0-based) of a case list runs. */
static inline int test_case(long i) {
    if (test_cases_all() || i < atol(getenv("QC_TEST_CASES"))) return 1;
    test_cases_left_out++;
    return 0;
}

/* The golden file's line (0-based) with the most tokens, when only a
 * subset runs (QC_TEST_CASES; otherwise -1): its prompt is the one that
 * reaches the batched prefill (64 tokens or more: the tiled attention, the
 * int8 matrix-multiply token tiles), which the first prompts are too short
 * for, so a subset run also checks that path against llama.cpp. */
static inline long test_golden_longest(const char *golden) {
    if (test_cases_all()) return -1;
    FILE *f = fopen(golden, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0, most = 0;
    long best = -1;
    for (long li = 0; getline(&line, &cap, f) > 0; li++) {
        json_t *g = json_loads(line, 0, NULL);
        const size_t n = json_array_size(json_object_get(g, "tokens"));
        if (n > most) most = n, best = li;
        json_decref(g);
    }
    free(line);
    fclose(f);
    return best;
}

/* Whether golden line li runs: one of the first QC_TEST_CASES, or the
 * longest (test_golden_longest's `longest`). */
static inline int test_golden_case(long li, long longest) { return li == longest || test_case(li); }

/* The fixtures folder: $QC_FIXTURES or ../shared/fixtures. */
static inline const char *fixtures(void) { return test_env("QC_FIXTURES", "../shared/fixtures"); }

/* A whole file, NUL-terminated (caller frees); its length in *len if given.
 * NULL when it cannot be opened. */
static inline char *test_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (s && n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n > 0 ? n : 0] = 0;
    if (len) *len = (size_t)(n > 0 ? n : 0);
    fclose(f);
    return s;
}

/* ==== llama.cpp's logits goldens (golden/<model>.jsonl) ==== */

/* Differences from a golden file so far: every listed logit must be within
 * tol_max; those within tol are counted. */
typedef struct {
    double tol, tol_max;
    double max_diff;
    long n_compared, n_within;
} test_golden_t;

static inline void test_golden_note(test_golden_t *g, double d) {
    if (d > g->max_diff) g->max_diff = d;
    g->n_compared++;
    g->n_within += d <= g->tol;
}

/* Checks [[id, logit], ...] pairs against a row of logits (prints the first
 * miss). */
static inline int test_golden_pairs(test_golden_t *g, const json_t *pairs, const float *row, const char *what,
                                    size_t pos) {
    size_t i;
    json_t *p;
    int ok = 1;
    json_array_foreach(pairs, i, p) {
        int id = (int)json_integer_value(json_array_get(p, 0));
        double want = json_number_value(json_array_get(p, 1));
        double d = fabs(row[id] - want);
        test_golden_note(g, d);
        if (d > g->tol_max) {
            if (ok) fprintf(stderr, "  %s pos %zu id %d: %.6f vs llama.cpp %.6f\n", what, pos, id, row[id], want);
            ok = 0;
        }
    }
    return ok;
}

/* Whether the k best ids of row are the golden's (as sets, since the golden
 * may order near-ties differently by < tol). */
static inline int test_golden_top_ids(const test_golden_t *g, const json_t *pairs, const float *row,
                                      int32_t n_vocab) {
    size_t k = json_array_size(pairs);
    double kth = INFINITY;
    for (size_t i = 0; i < k; i++) {
        double v = json_number_value(json_array_get(json_array_get(pairs, i), 1));
        if (v < kth) kth = v;
    }
    /* No id outside the golden list may beat its weakest entry by > tol_max. */
    for (int32_t id = 0; id < n_vocab; id++) {
        if (row[id] <= kth + g->tol_max) continue;
        int listed = 0;
        for (size_t i = 0; i < k && !listed; i++)
            listed = json_integer_value(json_array_get(json_array_get(pairs, i), 0)) == id;
        if (!listed) {
            fprintf(stderr, "  id %d (%.6f) beats the golden top-%zu (weakest %.6f)\n", id, row[id], k, kth);
            return 0;
        }
    }
    return 1;
}

/* The logits checks of one golden line on all [n][n_vocab], the logits of
 * its n tokens: the top-5 at every position (values and ids), the top-50
 * and the 64 probed logits at the last. */
static inline void test_golden_logits(test_golden_t *g, const json_t *line, const float *all, size_t n,
                                      int32_t nv, const char *label) {
    const char *prompt = json_string_value(json_object_get(line, "prompt"));
    json_t *top5 = json_object_get(line, "top5_per_position");
    int ok_pairs = 1, ok_ids = 1;
    for (size_t p = 0; p < n; p++) {
        const float *row = all + p * nv;
        ok_pairs &= test_golden_pairs(g, json_array_get(top5, p), row, label, p);
        ok_ids &= test_golden_top_ids(g, json_array_get(top5, p), row, nv);
    }
    CHECK(ok_pairs, "%s '%.30s': top-5 logits within %g at every position", label, prompt, g->tol_max);
    CHECK(ok_ids, "%s '%.30s': same top-5 ids at every position", label, prompt);
    const float *last = all + (n - 1) * nv;
    CHECK(test_golden_pairs(g, json_object_get(line, "last_top50"), last, "top50", n - 1) &&
              test_golden_top_ids(g, json_object_get(line, "last_top50"), last, nv),
          "%s '%.30s': last-position top-50", label, prompt);
    CHECK(test_golden_pairs(g, json_object_get(line, "last_probe"), last, "probe", n - 1),
          "%s '%.30s': 64 probed logits", label, prompt);
}

/* Every line of a golden .jsonl file, as one JSON array (the caller
 * json_decref's it); NULL, after a failed CHECK, when it cannot be read. */
static inline json_t *test_golden_read(const char *path) {
    json_t *lines = NULL;
    json_error_t je;
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return NULL;
    char *line = NULL;
    size_t cap = 0;
    lines = json_array();
    while (getline(&line, &cap, f) > 0) {
        json_t *g = json_loads(line, 0, &je);
        CHECK(g != NULL, "%s: bad golden line: %s", path, je.text);
        if (g) json_array_append_new(lines, g);
    }
    free(line);
    fclose(f);
    return lines;
}

static inline int test_done(const char *name) {
    if (test_cases_left_out)
        SKIP("%ld cases not run: QC_TEST_CASES=%s runs the first cases of each list only", test_cases_left_out,
             getenv("QC_TEST_CASES"));
    printf("%s: %d passed, %d failed, %d skipped\n", name, test_passed, test_failed, test_skipped);
    return test_failed ? 1 : 0;
}
#endif
