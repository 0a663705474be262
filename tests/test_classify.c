/* test_classify.c — label scoring for caller-given labels (judge.c) on the
 * tiny fixture models (random weights: the labels chosen mean nothing, the
 * arithmetic is what is checked):
 *   - probabilities = softmax of label log-likelihoods computed here,
 *     independently, through the engine API (qc_ctx_eval with
 *     QC_LOGITS_ALL over prefix + turn + label tokens), for sum and mean
 *     normalization and with calibration;
 *   - the prefix cache = no cache, and batched judgments = alone, bit for
 *     bit; the cache's LRU budget, hits, and a prefix in use never evicted;
 *   - emotion is the same mechanism (its task scores = qc_care_emotion);
 *   - the answer boundary's tokenization as documented in qcare_care.h;
 *   - every bad task and text is refused with a reason. */
#include "care/care.h"
#include "care/prompts.h"
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

static qc_model_t *model;
static const qc_tokenizer_t *tok;
static int qwen3;

/* ==== the independent computation ==== */

/* Appends the tokens of s (special tokens parsed or not) to ids. */
static void add(const char *s, int special, qc_ids_t *ids) {
    int32_t *p;
    size_t k;
    if (qc_tokenizer_encode(tok, s, strlen(s), special ? QC_TOK_PARSE_SPECIAL : 0, &p, &k) == QC_OK) {
        qc_ids_add(ids, p, k);
        free(p);
    }
}

/* The prompt of qcare_care.h's layout: system turn, example turns, then
 * the user turn of text; the caller's parts as plain text. */
static void render(const char *instruction, const qc_example_t *ex, size_t n_ex, const char *text, qc_ids_t *prefix,
                   qc_ids_t *turn) {
    add("<|im_start|>system\n", 1, prefix);
    add(instruction, 0, prefix);
    add("<|im_end|>\n", 1, prefix);
    for (size_t i = 0; i < n_ex; i++) {
        add("<|im_start|>user\n", 1, prefix);
        add(ex[i].text, 0, prefix);
        add("<|im_end|>\n<|im_start|>assistant\n", 1, prefix);
        add(ex[i].label, 0, prefix);
        add("<|im_end|>\n", 1, prefix);
    }
    add("<|im_start|>user\n", 1, turn);
    add(text, 0, turn);
    add("<|im_end|>\n<|im_start|>assistant\n", 1, turn);
    if (qwen3) add("<think>\n\n</think>\n\n", 1, turn);
}

static double log_softmax_at(const float *row, int32_t n, int32_t id) {
    double mx = row[0], s = 0;
    for (int32_t i = 1; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    for (int32_t i = 0; i < n; i++) s += exp(row[i] - mx);
    return row[id] - mx - log(s);
}

/* Each label's log-likelihood after prefix + turn: for every label a fresh
 * context, the prefix in one call, then the turn in calls of
 * QC_JUDGE_CHUNK with the label's tokens (all but the last) joined to the
 * last call, QC_LOGITS_ALL, and the label tokens' log-probabilities read
 * off the rows. (Calls below 64 tokens give the same logits however they
 * are cut, so this matches the pipeline's separate label calls exactly.) */
static void independent(const qc_ids_t *prefix, const qc_ids_t *turn, const char *const *labels, size_t n_labels,
                        double *ll, int *n_tokens) {
    int32_t nv = qc_model_n_vocab(model);
    for (size_t l = 0; l < n_labels; l++) {
        qc_ids_t lab = {0}, tail = {0};
        add(labels[l], 0, &lab);
        qc_ctx_t *x = qc_ctx_new(model, 2048, NULL);
        qc_ctx_eval(x, prefix->p, prefix->n, NULL, QC_LOGITS_NONE);
        size_t last = (turn->n - 1) / QC_JUDGE_CHUNK * QC_JUDGE_CHUNK;
        if (last) qc_ctx_eval(x, turn->p, last, NULL, QC_LOGITS_NONE);
        qc_ids_add(&tail, turn->p + last, turn->n - last);
        qc_ids_add(&tail, lab.p, lab.n - 1);
        float *rows = malloc(tail.n * (size_t)nv * sizeof *rows);
        CHECK(qc_ctx_eval(x, tail.p, tail.n, rows, QC_LOGITS_ALL) == QC_OK, "independent eval");
        size_t first = turn->n - last - 1; /* the row after the turn's last token */
        ll[l] = 0;
        for (size_t j = 0; j < lab.n; j++) ll[l] += log_softmax_at(rows + (first + j) * (size_t)nv, nv, lab.p[j]);
        n_tokens[l] = (int)lab.n;
        free(rows);
        qc_ctx_free(x);
        qc_ids_free(&lab);
        qc_ids_free(&tail);
    }
}

/* softmax(z) over n into p. */
static void softmax(const double *z, size_t n, double *p) {
    double mx = -INFINITY, s = 0;
    for (size_t i = 0; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    for (size_t i = 0; i < n; i++) s += exp(z[i] - mx);
    for (size_t i = 0; i < n; i++) p[i] = exp(z[i] - mx) / s;
}

/* ==== helpers ==== */

static qc_care_t *care(int cache, size_t prefix_budget) {
    qc_care_opts_t o = {.use_prefix_cache = cache, .prefix_budget = prefix_budget, .risk_model = 1};
    qc_care_t *c;
    char err[256];
    if (qc_care_new(model, &o, &c, err, sizeof err)) {
        CHECK(0, "care_new: %s", err);
        return NULL;
    }
    return c;
}

static qc_labels_t *task(const qc_labels_spec_t *sp) {
    qc_labels_t *t;
    char err[256];
    if (qc_labels_new(model, sp, 2048, &t, err, sizeof err)) {
        CHECK(0, "labels_new: %s", err);
        return NULL;
    }
    return t;
}

/* Two scores equal bit for bit (their timing aside). */
static int same_scores(qc_scores_t a, qc_scores_t b) {
    a.ms = b.ms = 0;
    a.prefix_cached = b.prefix_cached = 0;
    return !memcmp(&a, &b, sizeof a);
}

static const char *const labels4[] = {"billing question", "appointment", "medical symptom",
                                      "one two three four five six seven eight nine ten eleven twelve"};
static const qc_example_t examples4[] = {
    {"Why was I charged twice for my last visit?", "billing question"},
    {"Can I move my check-up to Friday?", "appointment"},
    {"My knee has been swollen for three days.", "medical symptom"},
};
static const char instruction4[] = "Sort the message into one of four queues.";

/* A text of more than QC_JUDGE_CHUNK tokens (several runs). */
static char *long_text(void) {
    qc_buf_t b = {0};
    for (int i = 0; i < 70; i++) qc_buf_printf(&b, "word%d and ", i);
    qc_buf_puts(&b, "what is this about?");
    return qc_buf_take(&b);
}

/* ==== checks ==== */

/* Probabilities = softmax of the independent log-likelihoods: sum, mean,
 * calibrated; the cache and no cache agree bit for bit. */
static void check_scores(const char *name) {
    char *lt = long_text();
    const char *texts[] = {"I was billed for a test I never had.", "明天下午可以改约吗？", lt};
    qc_care_t *cached = care(1, 0), *uncached = care(0, 0);
    if (!cached || !uncached) return;
    for (int mode = 0; mode < 3; mode++) { /* sum, mean, calibrated sum */
        qc_labels_spec_t sp = {.labels = labels4, .n_labels = 4, .instruction = instruction4, .examples = examples4,
                               .n_examples = 3, .mean = mode == 1, .calibrate = mode == 2};
        qc_labels_t *t = task(&sp);
        if (!t) return;
        double worst = 0, worst_p = 0;
        int same = 1, toks = 1;
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            qc_scores_t a, b;
            CHECK(qc_care_classify(cached, t, texts[i], strlen(texts[i]), &a) == QC_OK, "classify: %s",
                  qc_care_errmsg(cached));
            CHECK(qc_care_classify(uncached, t, texts[i], strlen(texts[i]), &b) == QC_OK, "classify (no cache): %s",
                  qc_care_errmsg(uncached));
            same &= same_scores(a, b);
            qc_ids_t prefix = {0}, turn = {0};
            render(instruction4, examples4, 3, texts[i], &prefix, &turn);
            double ll[4], z[4], p[4], cf[4];
            int nt[4];
            independent(&prefix, &turn, labels4, 4, ll, nt);
            if (mode == 2) {
                qc_ids_t cp = {0}, ct = {0};
                render(instruction4, examples4, 3, "N/A", &cp, &ct);
                independent(&cp, &ct, labels4, 4, cf, nt);
                qc_ids_free(&cp);
                qc_ids_free(&ct);
                CHECK(a.calibrated, "calibrated");
            }
            for (int l = 0; l < 4; l++) {
                z[l] = (ll[l] - (mode == 2 ? cf[l] : 0)) / (mode == 1 ? nt[l] : 1);
                worst = fmax(worst, fabs(a.label[l].loglik - ll[l]));
                if (mode == 2) worst = fmax(worst, fabs(a.cf_loglik[l] - cf[l]));
                toks &= a.label[l].tokens == nt[l];
            }
            softmax(z, 4, p);
            int top = 0;
            for (int l = 0; l < 4; l++) {
                worst_p = fmax(worst_p, fabs(a.label[l].prob - p[l]));
                if (p[l] > p[top]) top = l;
            }
            CHECK(a.top == top && a.n == 4, "%s mode %d: top %d, want %d", name, mode, a.top, top);
            CHECK(a.text_tokens == (int)turn.n, "text_tokens %d, turn %zu", a.text_tokens, turn.n);
            qc_ids_free(&prefix);
            qc_ids_free(&turn);
        }
        printf("%s mode %d: |loglik - independent| %.3g, |p - softmax| %.3g\n", name, mode, worst, worst_p);
        CHECK(worst <= 1e-9 && worst_p <= 1e-12, "%s mode %d: differs from the independent computation (%g, %g)", name,
              mode, worst, worst_p);
        CHECK(toks, "%s: label token counts", name);
        CHECK(same, "%s mode %d: cached prefix = no cache, bit for bit", name, mode);
        qc_labels_free(t);
    }
    qc_care_free(cached);
    qc_care_free(uncached);
    free(lt);
}

/* Judgments driven from outside, three in one qc_batch_eval per pass (in
 * runs of QC_JUDGE_CHUNK, as the scheduler runs them), with the emotion
 * judgment among them: exactly what qc_care_classify gives alone. */
static void check_batched(const char *name) {
    char *lt = long_text();
    const char *texts[] = {"My card was charged twice.", lt, "今天心情不错，谢谢医生"};
    for (int cached = 0; cached < 2; cached++) {
        qc_care_t *c = care(cached, 0);
        qc_labels_spec_t sp = {.labels = labels4, .n_labels = 4, .examples = examples4, .n_examples = 3,
                               .calibrate = 1};
        qc_labels_t *t = task(&sp);
        if (!c || !t) return;
        int nv = qc_model_n_vocab(model), same = 1;
        qc_batch_t *b = qc_batch_new(model, 3 * QC_JUDGE_CHUNK);
        qc_care_judge_t *j[3];
        const int32_t *ids[3];
        size_t n[3], off[3] = {0};
        float *lg[3];
        for (int k = 0; k < 3; k++) {
            const qc_labels_t *tk = k == 2 ? qc_care_emotion_labels(c) : t;
            CHECK(qc_care_classify_begin(c, tk, texts[k], strlen(texts[k]), &j[k]) == QC_OK, "begin: %s",
                  qc_care_errmsg(c));
            n[k] = qc_care_judge_tokens(j[k], &ids[k]);
            lg[k] = malloc((size_t)nv * sizeof(float));
        }
        for (int left = 3; left > 0;) {
            qc_ctx_t *cs[3];
            const int32_t *pi[3];
            int pn[3], who[3], q = 0;
            float *po[3];
            for (int k = 0; k < 3; k++) {
                if (off[k] >= n[k]) continue;
                size_t run = n[k] - off[k] < QC_JUDGE_CHUNK ? n[k] - off[k] : QC_JUDGE_CHUNK;
                cs[q] = qc_care_judge_ctx(j[k]), pi[q] = ids[k] + off[k], pn[q] = (int)run;
                po[q] = off[k] + run == n[k] ? lg[k] : NULL;
                who[q++] = k;
                off[k] += run;
            }
            CHECK(qc_batch_eval(b, cs, pi, pn, po, q) == QC_OK, "batch: %s", qc_batch_errmsg(b));
            for (int i = 0; i < q; i++) {
                int k = who[i];
                if (off[k] < n[k]) continue;
                qc_scores_t got, want;
                CHECK(qc_care_judge_scores(j[k], lg[k], &got) == QC_OK, "judge_scores");
                const qc_labels_t *tk = k == 2 ? qc_care_emotion_labels(c) : t;
                CHECK(qc_care_classify(c, tk, texts[k], strlen(texts[k]), &want) == QC_OK, "classify");
                same &= same_scores(got, want);
                if (k == 2) { /* and the emotion API reads the same judgment */
                    qc_emotion_t e;
                    qc_care_emotion(c, texts[k], strlen(texts[k]), &e);
                    for (int l = 0; l < 3; l++) same &= e.logp[l] == want.label[l].loglik;
                    same &= e.label == want.top;
                }
                left--;
            }
        }
        CHECK(same, "%s (cache %d): batched judgments = qc_care_classify alone, bit for bit", name, cached);
        for (int k = 0; k < 3; k++) free(lg[k]);
        qc_batch_free(b);
        qc_labels_free(t);
        qc_care_free(c);
    }
    free(lt);
}

/* The cache: a repeated prefix is a hit; beyond the budget the least
 * recently used unused prefix goes; one in use by a judgment stays. */
static void check_cache(const char *name) {
    qc_labels_spec_t a = {.labels = labels4, .n_labels = 4, .instruction = "queue A"},
                     b = {.labels = labels4, .n_labels = 4, .instruction = "queue B"};
    qc_labels_t *ta = task(&a), *tb = task(&b);
    qc_care_t *c = care(1, 1); /* one byte: at most the prefixes in use stay */
    qc_care_t *roomy = care(1, 0);
    if (!ta || !tb || !c || !roomy) return;
    qc_scores_t s1, s2, s3;
    qc_prefix_stats_t st;
    CHECK(qc_care_classify(roomy, ta, "hello", 5, &s1) == QC_OK && !s1.prefix_cached, "first use computes");
    CHECK(qc_care_classify(roomy, ta, "hello", 5, &s2) == QC_OK && s2.prefix_cached, "second use is cached");
    qc_care_prefix_stats(roomy, &st);
    CHECK(st.hits == 1 && st.misses == 1 && st.entries == 1 && st.bytes > 0 && st.budget == 64u << 20,
          "%s: stats %llu hits %llu misses %zu entries", name, st.hits, st.misses, st.entries);
    CHECK(same_scores(s1, s2), "%s: a cached prefix scores as a new one", name);

    qc_care_judge_t *j;
    CHECK(qc_care_classify_begin(c, ta, "hello", 5, &j) == QC_OK, "begin");
    CHECK(qc_care_classify(c, tb, "hello", 5, &s3) == QC_OK, "classify B");
    qc_care_prefix_stats(c, &st);
    CHECK(st.entries == 1 && st.evictions == 1, "%s: B evicted when released, A kept while in use (%zu, %llu)", name,
          st.entries, st.evictions);
    int nv = qc_model_n_vocab(model);
    float *lg = malloc((size_t)nv * sizeof *lg);
    const int32_t *ids;
    size_t n = qc_care_judge_tokens(j, &ids);
    qc_ctx_eval(qc_care_judge_ctx(j), ids, n, lg, QC_LOGITS_LAST); /* fewer than 64 tokens: as a batch would */
    CHECK(qc_care_judge_scores(j, lg, &s2) == QC_OK && same_scores(s1, s2), "%s: the kept prefix still scores", name);
    qc_care_prefix_stats(c, &st);
    CHECK(st.entries == 0 && st.evictions == 2, "%s: released, A goes too (%zu)", name, st.entries);
    CHECK(qc_care_classify(c, ta, "hello", 5, &s3) == QC_OK && !s3.prefix_cached && same_scores(s1, s3),
          "%s: an evicted prefix recomputed scores the same", name);
    /* the built-in prefixes are kept apart from the budget */
    qc_emotion_t e;
    CHECK(qc_care_emotion(c, "hello", 5, &e) == QC_OK, "emotion after evictions");
    qc_scores_t r;
    CHECK(qc_care_risk_labels(c) && qc_care_classify(c, qc_care_risk_labels(c), "I can't breathe", 15, &r) == QC_OK &&
              r.prefix_cached && r.n == 2 && !strcmp(qc_labels_name(qc_care_risk_labels(c), 0), "urgent"),
          "%s: the urgency task is built in and cached", name);
    free(lg);
    qc_labels_free(ta);
    qc_labels_free(tb);
    qc_care_free(c);
    qc_care_free(roomy);
}

/* Emotion is a built-in task: its prefix is the analyst prompt's text
 * tokenized whole (so pieces = whole here), its scores qc_care_emotion's. */
static void check_emotion(const char *name) {
    qc_care_t *c = care(1, 0);
    if (!c) return;
    const qc_labels_t *t = qc_care_emotion_labels(c);
    char *text = qc_prompt_classify_prefix();
    int32_t *whole;
    size_t n;
    qc_tokenizer_encode(tok, text, strlen(text), QC_TOK_PARSE_SPECIAL, &whole, &n);
    const int32_t *ids;
    size_t np = qc_labels_prefix(t, &ids);
    CHECK(np == n && !memcmp(ids, whole, n * sizeof *ids), "%s: the emotion prefix's tokens (%zu vs %zu)", name, np, n);
    CHECK(qc_labels_count(t) == 3 && !strcmp(qc_labels_name(t, 1), "negative"), "emotion labels");
    free(whole);
    free(text);
    qc_care_free(c);
}

/* The boundary: a label's tokens are its own; for labels starting with a
 * letter, digit, punctuation or a space they equal the whole prompt's
 * tokenization; one starting with a newline is the documented exception. */
static void check_boundary(const char *name) {
    const char *const ok[] = {"urgent", "not urgent", " billing", "账单问题", "Yes!", "42", "(a)", "Ünïcode"};
    int same = 1;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        qc_ids_t prefix = {0}, turn = {0}, lab = {0}, whole = {0};
        render("x", NULL, 0, "hello", &prefix, &turn);
        add(ok[i], 0, &lab);
        char full[256];
        snprintf(full, sizeof full, "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n%s%s",
                 qwen3 ? "<think>\n\n</think>\n\n" : "", ok[i]);
        add(full, 1, &whole);
        int eq = whole.n == turn.n + lab.n && !memcmp(whole.p, turn.p, turn.n * sizeof *turn.p) &&
                 !memcmp(whole.p + turn.n, lab.p, lab.n * sizeof *lab.p);
        if (!eq) fprintf(stderr, "%s: label '%s' tokenizes differently in running text\n", name, ok[i]);
        same &= eq;
        qc_ids_free(&prefix);
        qc_ids_free(&turn);
        qc_ids_free(&lab);
        qc_ids_free(&whole);
    }
    CHECK(same, "%s: labels tokenize the same on their own and after the answer position", name);
    const char *const nl[] = {"\nfoo", "yes"};
    qc_labels_spec_t sp = {.labels = nl, .n_labels = 2};
    qc_labels_t *t = task(&sp);
    const int32_t *ids;
    qc_ids_t want = {0};
    add("\nfoo", 0, &want);
    size_t k = t ? qc_labels_tokens(t, 0, &ids) : 0;
    CHECK(k == want.n && k && !memcmp(ids, want.p, k * sizeof *ids), "%s: a newline-led label keeps its own tokens",
          name);
    qc_ids_free(&want);
    qc_labels_free(t);
}

/* Bad tasks and texts: refused with a message, nothing made. */
static void check_bad(const char *name) {
    char err[256];
    qc_labels_t *t = (qc_labels_t *)1;
    const char *one[] = {"a"}, *dup[] = {"a", "b", "a"}, *empty[] = {"a", ""}, *bad_utf8[] = {"a", "\xff"};
    const char *many[QC_LABELS_MAX + 1];
    char names[QC_LABELS_MAX + 1][16];
    for (unsigned i = 0; i <= QC_LABELS_MAX; i++) snprintf(names[i], sizeof names[i], "l%u", i), many[i] = names[i];
    char l64[200] = "", l65[256] = "";
    for (int i = 0; i < 64; i++) strcat(l64, "好"); /* 64 characters, 192 bytes: allowed */
    strcpy(l65, l64);
    strcat(l65, "x");
    const char *long_ok[] = {"a", l64}, *too_long[] = {"a", l65};
    struct {
        const char *const *labels;
        size_t n;
        const char *want;
    } cases[] = {
        {NULL, 0, "2 to 32"},  {one, 1, "2 to 32"},      {many, QC_LABELS_MAX + 1, "2 to 32"}, {dup, 3, "twice"},
        {empty, 2, "1 to 64"}, {too_long, 2, "1 to 64"}, {bad_utf8, 2, "1 to 64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qc_labels_spec_t sp = {.labels = cases[i].labels, .n_labels = cases[i].n};
        qc_status st = qc_labels_new(model, &sp, 2048, &t, err, sizeof err);
        CHECK(st == QC_ERR_ARG && !t && strstr(err, cases[i].want), "%s: bad case %zu: %d '%s'", name, i, st, err);
    }
    qc_labels_spec_t sp = {.labels = long_ok, .n_labels = 2};
    CHECK(qc_labels_new(model, &sp, 2048, &t, err, sizeof err) == QC_OK, "64 characters are allowed: %s", err);
    qc_labels_free(t);
    sp.labels = many, sp.n_labels = QC_LABELS_MAX;
    CHECK(qc_labels_new(model, &sp, 2048, &t, err, sizeof err) == QC_OK, "32 labels are allowed: %s", err);
    qc_labels_free(t);
    qc_example_t ex[] = {{"hi", "c"}}, ex2[] = {{"\xfe", "a"}};
    sp = (qc_labels_spec_t){.labels = dup, .n_labels = 2, .examples = ex, .n_examples = 1};
    CHECK(qc_labels_new(model, &sp, 2048, &t, err, sizeof err) == QC_ERR_ARG && strstr(err, "examples[0].label"),
          "an example's label must be a label: %s", err);
    sp.examples = ex2;
    CHECK(qc_labels_new(model, &sp, 2048, &t, err, sizeof err) == QC_ERR_ARG && strstr(err, "examples[0].text"),
          "an example's text must be UTF-8: %s", err);
    /* a prefix beyond the context; a text beyond it */
    char *lt = long_text();
    sp = (qc_labels_spec_t){.labels = dup, .n_labels = 2, .instruction = lt};
    CHECK(qc_labels_new(model, &sp, 128, &t, err, sizeof err) == QC_ERR_CONTEXT && strstr(err, "context"),
          "a prefix beyond the context: %s", err);
    sp.instruction = NULL;
    CHECK(qc_labels_new(model, &sp, 128, &t, err, sizeof err) == QC_OK, "a short task fits 128 tokens");
    int32_t *ids;
    size_t n;
    CHECK(qc_labels_turn(t, lt, strlen(lt), 128, &ids, &n, err, sizeof err) == QC_ERR_CONTEXT && strstr(err, "context"),
          "a text beyond the context: %s", err);
    CHECK(qc_labels_turn(t, "", 0, 128, &ids, &n, err, sizeof err) == QC_ERR_ARG && strstr(err, "empty"),
          "an empty text: %s", err);
    CHECK(qc_labels_turn(t, "\xff", 1, 128, &ids, &n, err, sizeof err) == QC_ERR_ARG && strstr(err, "UTF-8"),
          "invalid UTF-8: %s", err);
    qc_care_t *c = care(1, 0);
    qc_scores_t s;
    qc_care_judge_t *j;
    CHECK(c && qc_care_classify(c, t, "", 0, &s) == QC_ERR_ARG && strstr(qc_care_errmsg(c), "empty"),
          "classify refuses an empty text");
    CHECK(c && qc_care_classify_begin(c, t, "", 0, &j) == QC_ERR_ARG && !j, "begin refuses an empty text");
    CHECK(c && qc_care_classify(c, NULL, "hi", 2, &s) == QC_ERR_ARG, "classify refuses a missing task");
    /* the default instruction names the labels */
    const int32_t *pi;
    size_t np = qc_labels_prefix(t, &pi);
    char *pt = NULL;
    qc_tokenizer_decode(tok, pi, np, &pt, NULL);
    CHECK(pt && strstr(pt, "exactly one of these labels: a, b."), "the default instruction: %s", pt ? pt : "");
    /* the JSON answer */
    CHECK(qc_care_classify(c, t, "hi", 2, &s) == QC_OK, "classify");
    char *js = qc_scores_json(t, &s);
    json_t *o = json_loads(js ? js : "", 0, NULL);
    json_t *l0 = json_array_get(json_object_get(o, "labels"), 0);
    /* as printed: a probability to 6 significant digits (|error| <= 5e-7
     * below 1), a log-likelihood to 9 (relative error <= 5e-9) */
    double gp = json_real_value(json_object_get(l0, "probability")), gl = json_real_value(json_object_get(l0, "loglik"));
    CHECK(o && fabs(gp - s.label[0].prob) <= 5e-7 && fabs(gl - s.label[0].loglik) <= 1e-8 * fmax(1, fabs(s.label[0].loglik)) &&
              !strcmp(json_string_value(json_object_get(l0, "label")), "a") &&
              !strcmp(json_string_value(json_object_get(o, "top")), qc_labels_name(t, (size_t)s.top)),
          "the JSON answer reads back (to the digits printed): %s", js ? js : "");
    json_decref(o);
    free(js);
    free(pt);
    qc_care_free(c);
    qc_labels_free(t);
    free(lt);
}

static void check_model(const char *name) {
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/%s", test_env("QC_MODELS", "build/models"), name);
    qc_model_opts_t mo = {.dtype = "bf16"};
    if (qc_model_load(dir, &mo, &model, err, sizeof err)) {
        CHECK(0, "load %s: %s", dir, err);
        return;
    }
    tok = qc_model_tokenizer(model);
    qwen3 = qc_model_arch(model) == QC_ARCH_QWEN3;
    check_scores(name);
    check_batched(name);
    check_cache(name);
    check_emotion(name);
    check_boundary(name);
    check_bad(name);
    qc_model_free(model);
}

int main(void) {
    check_model("tiny-qwen2");
    check_model("tiny-qwen3");
    return test_done("test_classify");
}
