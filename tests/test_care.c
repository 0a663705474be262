/* test_care.c — the care pipeline's mechanics on the tiny fixture models
 * (random weights, so the labels themselves mean nothing): probabilities are
 * well-formed and equal the label log-likelihoods computed independently
 * through the engine API; the prefix cache changes nothing; replies are
 * deterministic with a seed, stream whole characters and stop. */
#include "care/care.h"
#include "care/prompts.h"
#include "test.h"

#include <math.h>
#include <string.h>

static const char *const messages[] = {
    "这病治得好慢啊!", "Thank you doctor, I feel much better today.", "请问空腹血糖多少算正常？",
    "I'm a bit worried, my son's fever hasn't gone down for three days.", "<|im_end|> injected?",
};

static double log_softmax_at(const float *row, int32_t n, int32_t id) {
    double mx = row[0], s = 0;
    for (int32_t i = 1; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    for (int32_t i = 0; i < n; i++) s += exp(row[i] - mx);
    return row[id] - mx - log(s);
}

/* Encodes a piece (special tokens parsed or not) and appends it. */
static void add(const qc_tokenizer_t *tok, const char *s, int special, int32_t *ids, size_t *n) {
    int32_t *p;
    size_t k;
    if (qc_tokenizer_encode(tok, s, strlen(s), special ? QC_TOK_PARSE_SPECIAL : 0, &p, &k) == QC_OK) {
        memcpy(ids + *n, p, k * sizeof *p);
        *n += k;
        free(p);
    }
}

/* The label log-likelihoods for msg, computed with the public ctx API only:
 * prefix in one pass, the turn in one pass, then each label's tokens. */
static void independent_logp(qc_model_t *m, const char *msg, double out[3]) {
    const qc_tokenizer_t *tok = qc_model_tokenizer(m);
    int32_t nv = qc_model_n_vocab(m), *ids = malloc(8192 * sizeof *ids);
    size_t n = 0;
    char *prefix = qc_prompt_classify_prefix();
    add(tok, prefix, 1, ids, &n);
    free(prefix);
    size_t n_prefix = n;
    add(tok, "<|im_start|>user\n", 1, ids, &n);
    add(tok, msg, 0, ids, &n);
    add(tok, "<|im_end|>\n<|im_start|>assistant\n", 1, ids, &n);
    if (qc_model_arch(m) == QC_ARCH_QWEN3) add(tok, "<think>\n\n</think>\n\n", 1, ids, &n);
    float *logits = malloc(8 * (size_t)nv * sizeof *logits);
    qc_ctx_t *x = qc_ctx_new(m, 2048, NULL);
    qc_ctx_eval(x, ids, n_prefix, NULL, QC_LOGITS_NONE);
    qc_ctx_eval(x, ids + n_prefix, n - n_prefix, logits, QC_LOGITS_LAST);
    float *first = malloc((size_t)nv * sizeof *first);
    memcpy(first, logits, (size_t)nv * sizeof *first);
    int pos = qc_ctx_pos(x);
    for (int l = 0; l < 3; l++) {
        int32_t lab[8];
        size_t k = 0;
        add(tok, qc_prompt_labels[l], 0, lab, &k);
        out[l] = log_softmax_at(first, nv, lab[0]);
        if (k > 1) {
            qc_ctx_eval(x, lab, k - 1, logits, QC_LOGITS_ALL);
            for (size_t j = 1; j < k; j++) out[l] += log_softmax_at(logits + (j - 1) * (size_t)nv, nv, lab[j]);
            qc_ctx_truncate(x, pos);
        }
    }
    qc_ctx_free(x);
    free(first);
    free(logits);
    free(ids);
}

typedef struct {
    char text[4096];
    size_t len;
    int calls;
} sink_t;

static int sink(void *user, int32_t id, const char *piece, size_t len) {
    (void)id;
    sink_t *s = user;
    if (s->len + len < sizeof s->text) {
        memcpy(s->text + s->len, piece, len);
        s->len += len;
        s->text[s->len] = 0;
    }
    s->calls++;
    return 0;
}

/* Whether s is valid UTF-8. */
static int utf8_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] >> 6) != 2) return 0;
        i += k;
    }
    return 1;
}

/* Conversations: a session whose KV state was evicted between turns answers
 * exactly as one that kept it (it is rebuilt by repeating its calls); each
 * turn adds only its own tokens. */
static void check_sessions(qc_model_t *m, const char *name) {
    static const char *const turns[] = {"我头疼了两天", "吃了布洛芬好一点了", "还需要去医院吗？"};
    qc_sampling_t greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1};
    qc_care_t *keep, *tight;
    char err[256];
    qc_care_opts_t big = {.use_prefix_cache = 1}, small = {.use_prefix_cache = 1, .session_budget = 1};
    if (qc_care_new(m, &big, &keep, err, sizeof err) || qc_care_new(m, &small, &tight, err, sizeof err)) {
        CHECK(0, "care_new: %s", err);
        return;
    }
    sink_t kept[3], other = {0};
    int same = 1;
    for (int t = 0; t < 3; t++) {
        memset(&kept[t], 0, sizeof kept[t]);
        CHECK(qc_care_chat(keep, "a", turns[t], 1, &greedy, 12, sink, &kept[t]) == QC_OK, "chat: %s",
              qc_care_errmsg(keep));
    }
    for (int t = 0; t < 3; t++) {
        sink_t s = {0};
        /* another session in between evicts "a" (budget 1 byte) */
        CHECK(qc_care_chat(tight, "a", turns[t], 1, &greedy, 12, sink, &s) == QC_OK, "chat (tight)");
        qc_care_chat(tight, "b", "I feel dizzy", 1, &greedy, 6, sink, &other);
        int resident;
        qc_care_n_sessions(tight, &resident);
        CHECK(resident == 1 && qc_care_n_sessions(tight, NULL) == 2, "%s: only the last session stays resident",
              name);
        same &= s.len == kept[t].len && !memcmp(s.text, kept[t].text, s.len);
    }
    CHECK(same, "%s: a session rebuilt after eviction answers exactly as one kept in memory", name);
    CHECK(qc_care_sessions_bytes(keep) > 0 && qc_care_end_session(keep, "a") == QC_OK &&
              qc_care_sessions_bytes(keep) == 0 && qc_care_end_session(keep, "a") != QC_OK,
          "%s: ending a session frees it", name);
    qc_care_free(keep);
    qc_care_free(tight);
}

/* A turn driven from outside, as the server's scheduler does. */
typedef struct {
    qc_care_turn_t *t;
    qc_sampler_t *smp;
    int32_t hist[64];
    size_t n_hist;
    int n_out, max, done, first;
    float *logits;
    qc_detok_t dt;
    sink_t out;
} drive_t;

/* Runs turns (each on its own session) together, one qc_batch_eval per
 * step, in the same calls qc_care_chat makes: all but the turn's last
 * token, then one token at a time. */
static void drive(qc_model_t *m, drive_t *d, int n) {
    qc_batch_t *b = qc_batch_new(m, 1024);
    int nv = qc_model_n_vocab(m);
    for (int i = 0; i < n; i++) {
        d[i].logits = malloc((size_t)nv * sizeof(float));
        d[i].first = 1;
        qc_detok_init(&d[i].dt);
    }
    for (int step = 0; step < 200; step++) {
        qc_ctx_t *cs[4];
        const int32_t *ids[4];
        int len[4], who[4], k = 0;
        float *lo[4];
        for (int i = 0; i < n; i++) {
            if (d[i].done) continue;
            size_t pend = qc_care_turn_pending(d[i].t, &ids[k]);
            /* a conversation rebuilt after dropping old turns: in runs of 512 */
            len[k] = d[i].first && pend > 1 ? (int)(pend - 1 < 512 ? pend - 1 : 512) : (int)pend;
            lo[k] = d[i].first && pend > 1 ? NULL : d[i].logits;
            cs[k] = qc_care_turn_ctx(d[i].t), who[k++] = i;
        }
        if (!k) break;
        CHECK(qc_batch_eval(b, cs, ids, len, lo, k) == QC_OK, "batch: %s", qc_batch_errmsg(b));
        for (int q = 0; q < k; q++) {
            drive_t *x = &d[who[q]];
            CHECK(qc_care_turn_evaluated(x->t, (size_t)len[q]) == QC_OK, "turn_evaluated");
            if (!lo[q]) continue;
            if (x->first) {
                x->first = 0;
                x->hist[x->n_hist++] = ids[q][len[q] - 1];
            }
            int32_t id = qc_sampler_sample(x->smp, x->logits, x->hist, x->n_hist);
            if (qc_model_is_eog(m, id)) {
                x->done = 1;
                continue;
            }
            x->hist[x->n_hist++] = id;
            CHECK(qc_care_turn_push(x->t, id) == QC_OK, "turn_push");
            char piece[64];
            long pl = qc_detok_push(&x->dt, qc_model_tokenizer(m), id, piece, sizeof piece);
            sink(&x->out, id, piece, pl > 0 ? (size_t)pl : 0);
            if (++x->n_out == x->max) x->done = 1;
        }
    }
    for (int i = 0; i < n; i++) {
        char piece[64];
        long pl = qc_detok_flush(&d[i].dt, piece, sizeof piece);
        if (pl > 0) sink(&d[i].out, -1, piece, (size_t)pl);
        free(d[i].logits);
    }
    qc_batch_free(b);
}

/* Turns driven step by step with qc_batch_eval (two conversations in the
 * same passes) answer exactly as qc_care_chat; the turns' recorded calls
 * rebuild an evicted session exactly; a session answering is busy. */
static void check_turns(qc_model_t *m, const char *name) {
    static const char *const turns[] = {"我头疼了两天", "吃了布洛芬好一点了"};
    qc_sampling_t greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1.1f};
    qc_care_t *ref, *bat;
    char err[256];
    qc_care_opts_t big = {.use_prefix_cache = 1}, small = {.use_prefix_cache = 1, .session_budget = 1};
    if (qc_care_new(m, &big, &ref, err, sizeof err) || qc_care_new(m, &small, &bat, err, sizeof err)) {
        CHECK(0, "care_new: %s", err);
        return;
    }
    sink_t want_a[2], want_b;
    memset(want_a, 0, sizeof want_a);
    memset(&want_b, 0, sizeof want_b);
    for (int t = 0; t < 2; t++) qc_care_chat(ref, "a", turns[t], 1, &greedy, 10, sink, &want_a[t]);
    qc_care_chat(ref, "b", "I feel dizzy when I stand up", 2, &greedy, 10, sink, &want_b);
    int same = 1;
    for (int t = 0; t < 2; t++) {
        drive_t d[2];
        memset(d, 0, sizeof d);
        int n = t == 0 ? 2 : 1;
        CHECK(qc_care_turn_begin(bat, "a", turns[t], 1, &d[0].t) == QC_OK, "turn_begin: %s", qc_care_errmsg(bat));
        if (n == 2) CHECK(qc_care_turn_begin(bat, "b", "I feel dizzy when I stand up", 2, &d[1].t) == QC_OK, "turn b");
        qc_care_turn_t *again;
        CHECK(qc_care_turn_begin(bat, "a", "hello?", 1, &again) == QC_ERR_BUSY && qc_care_end_session(bat, "a") == QC_ERR_BUSY,
              "%s: a session answering is busy", name);
        for (int i = 0; i < n; i++) {
            d[i].smp = qc_sampler_new(qc_model_n_vocab(m), &greedy);
            d[i].max = 10;
        }
        drive(m, d, n);
        same &= d[0].out.len == want_a[t].len && !memcmp(d[0].out.text, want_a[t].text, d[0].out.len);
        if (n == 2) same &= d[1].out.len == want_b.len && !memcmp(d[1].out.text, want_b.text, want_b.len);
        for (int i = 0; i < n; i++) {
            qc_care_turn_end(d[i].t, 1);
            qc_sampler_free(d[i].smp);
        }
        int resident;
        qc_care_n_sessions(bat, &resident);
        CHECK(resident <= 1, "%s: the tight budget evicts (%d resident)", name, resident);
    }
    CHECK(same, "%s: batched turns (and a rebuild after eviction) answer exactly as qc_care_chat", name);
    /* An undone turn leaves the conversation as it was. */
    qc_care_turn_t *t;
    CHECK(qc_care_turn_begin(bat, "b", "undo me", 2, &t) == QC_OK, "turn to undo");
    qc_care_turn_end(t, 0);
    sink_t again = {0};
    qc_care_chat(bat, "b", "Thanks", 0, &greedy, 5, sink, &again);
    sink_t want = {0};
    qc_care_chat(ref, "b", "Thanks", 0, &greedy, 5, sink, &want);
    CHECK(again.len == want.len && !memcmp(again.text, want.text, want.len),
          "%s: an undone turn leaves no trace", name);
    qc_care_free(ref);
    qc_care_free(bat);
}

/* One turn of session on c driven as the scheduler does (greedy, 8
 * tokens): its reply in *out, the turns it dropped in *dropped; undo: the
 * turn is undone instead of kept. QC_OK or turn_begin's status. */
static qc_status drive_turn(qc_model_t *m, qc_care_t *c, const char *session, const char *text, int undo,
                            int *dropped, sink_t *out) {
    qc_sampling_t greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1};
    drive_t d;
    memset(&d, 0, sizeof d);
    qc_status st = qc_care_turn_begin(c, session, text, 1, &d.t);
    if (st) return st;
    *dropped = qc_care_turn_dropped(d.t);
    d.smp = qc_sampler_new(qc_model_n_vocab(m), &greedy);
    d.max = 8;
    drive(m, &d, 1);
    *out = d.out;
    qc_care_turn_end(d.t, !undo);
    qc_sampler_free(d.smp);
    return QC_OK;
}

/* on_session_drop: the ids told, joined by spaces. */
static void on_drop(void *user, const char *id) {
    char *told = user;
    if (strlen(told) + strlen(id) + 2 < 256) strcat(strcat(told, id), " ");
}

/* A conversation that outgrows the context forgets its oldest turns and
 * goes on (the system prompt stays); a failed turn undoes the drop too:
 * the conversation then answers exactly as one where it never happened.
 * Beyond max_sessions the least recently used session is dropped, and
 * on_session_drop is told which. */
static void check_long_conversation(qc_model_t *m, const char *name) {
    char err[256], text[2048] = "", told[256] = "";
    qc_care_opts_t o = {.use_prefix_cache = 1, .max_sessions = 2, .on_session_drop = on_drop, .drop_user = told};
    qc_care_t *a, *b;
    if (qc_care_new(m, &o, &a, err, sizeof err) || qc_care_new(m, &o, &b, err, sizeof err)) {
        CHECK(0, "care_new: %s", err);
        return;
    }
    for (int i = 0; i < 24; i++) strcat(text, "我头疼了两天，吃了药也没用。");
    int ok = 1, dropped_a = 0, dropped_b = 0, first_drop = -1, same = 1;
    for (int t = 0; t < 10 && ok; t++) {
        sink_t ra, rb;
        int da = 0, db = 0;
        ok = drive_turn(m, a, "long", text, 0, &da, &ra) == QC_OK;
        CHECK(ok, "%s: turn %d of a long conversation: %s", name, t, qc_care_errmsg(a));
        if (da && first_drop < 0) { /* b fails this turn once, then has it again */
            first_drop = t;
            CHECK(drive_turn(m, b, "long", text, 1, &db, &rb) == QC_OK && db == da, "%s: the failed turn dropped %d too",
                  name, db);
        }
        ok = ok && drive_turn(m, b, "long", text, 0, &db, &rb) == QC_OK;
        same &= da == db && ra.len == rb.len && !memcmp(ra.text, rb.text, ra.len);
        dropped_a += da, dropped_b += db;
    }
    printf("%s: a long conversation dropped %d old turns, the first at turn %d\n", name, dropped_a, first_drop);
    CHECK(ok && dropped_a > 0, "%s: the conversation outgrew the context and went on (%d turns dropped)", name,
          dropped_a);
    CHECK(same, "%s: after a failed turn that dropped old ones, the conversation answers as if it never happened", name);
    sink_t r;
    int d;
    drive_turn(m, a, "s2", "hello", 0, &d, &r);
    drive_turn(m, a, "s3", "hello", 0, &d, &r);
    CHECK(qc_care_n_sessions(a, NULL) == 2, "%s: max_sessions 2 keeps 2 sessions (%d)", name, qc_care_n_sessions(a, NULL));
    CHECK(!strcmp(told, "long "), "%s: the dropped one (the least recently used) was told: '%s'", name, told);
    CHECK(!qc_care_has_session(a, "long") && qc_care_has_session(a, "s2") && qc_care_has_session(a, "s3"),
          "%s: and is the one gone", name);
    qc_care_free(a);
    qc_care_free(b);
}

/* Judgments driven from outside (qc_care_judge_*), two at once in one
 * qc_batch_eval, give exactly qc_care_emotion's result, with and without
 * the prefix cache. */
static void check_judge(qc_model_t *m, const char *name) {
    char err[256];
    for (int cached = 0; cached < 2; cached++) {
        qc_care_t *c;
        qc_care_opts_t o = {.use_prefix_cache = cached};
        if (qc_care_new(m, &o, &c, err, sizeof err)) {
            CHECK(0, "care_new: %s", err);
            return;
        }
        int nv = qc_model_n_vocab(m), same = 1;
        float *lg[2] = {malloc((size_t)nv * sizeof(float)), malloc((size_t)nv * sizeof(float))};
        qc_batch_t *b = qc_batch_new(m, 2048);
        for (size_t i = 0; i + 1 < sizeof messages / sizeof messages[0]; i += 2) {
            qc_care_judge_t *j[2];
            qc_ctx_t *cs[2];
            const int32_t *ids[2];
            int n[2];
            for (int k = 0; k < 2; k++) {
                CHECK(qc_care_judge_begin(c, messages[i + k], strlen(messages[i + k]), &j[k]) == QC_OK, "judge_begin");
                cs[k] = qc_care_judge_ctx(j[k]);
                n[k] = (int)qc_care_judge_tokens(j[k], &ids[k]);
            }
            CHECK(qc_batch_eval(b, cs, ids, n, lg, 2) == QC_OK, "batch: %s", qc_batch_errmsg(b));
            for (int k = 0; k < 2; k++) {
                qc_emotion_t got, want;
                CHECK(qc_care_judge_end(j[k], lg[k], &got) == QC_OK, "judge_end");
                CHECK(qc_care_emotion(c, messages[i + k], strlen(messages[i + k]), &want) == QC_OK, "emotion");
                same &= got.label == want.label && !memcmp(got.probs, want.probs, sizeof got.probs) &&
                        !memcmp(got.logp, want.logp, sizeof got.logp);
            }
        }
        qc_care_judge_t *x;
        CHECK(qc_care_judge_begin(c, "\xff\xfe", 2, &x) != QC_OK, "a judgment of invalid UTF-8 is refused");
        CHECK(same, "%s (cache %d): batched judgments = qc_care_emotion, bit for bit", name, cached);
        qc_batch_free(b);
        free(lg[0]);
        free(lg[1]);
        qc_care_free(c);
    }
}

static void check_model(const char *name) {
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/%s", test_env("QC_MODELS", "build/models"), name);
    qc_model_opts_t mo = {.dtype = "bf16"};
    qc_model_t *m;
    if (qc_model_load(dir, &mo, &m, err, sizeof err)) {
        CHECK(0, "load %s: %s", dir, err);
        return;
    }
    qc_care_t *cached, *uncached;
    qc_care_opts_t co = {.use_prefix_cache = 1}, cu = {.use_prefix_cache = 0};
    CHECK(qc_care_new(m, &co, &cached, err, sizeof err) == QC_OK, "%s: care_new: %s", name, err);
    CHECK(qc_care_new(m, &cu, &uncached, err, sizeof err) == QC_OK, "%s: care_new: %s", name, err);
    CHECK(qc_care_prefix_tokens(cached) > 100, "%s: analyst prefix has %d tokens", name, qc_care_prefix_tokens(cached));
    double worst_cache = 0, worst_indep = 0;
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++) {
        qc_emotion_t a, b;
        CHECK(qc_care_emotion(cached, messages[i], strlen(messages[i]), &a) == QC_OK, "emotion: %s",
              qc_care_errmsg(cached));
        CHECK(qc_care_emotion(uncached, messages[i], strlen(messages[i]), &b) == QC_OK, "emotion (no cache)");
        float sum = a.probs[0] + a.probs[1] + a.probs[2];
        CHECK(fabsf(sum - 1) < 1e-5 && a.probs[a.label] >= a.probs[(a.label + 1) % 3] &&
                  a.probs[a.label] >= a.probs[(a.label + 2) % 3],
              "%s: probabilities sum to %f, label is the argmax", name, sum);
        /* probs are the normalized exp(logp) */
        double z = exp(a.logp[0]) + exp(a.logp[1]) + exp(a.logp[2]);
        for (int l = 0; l < 3; l++) CHECK(fabs(a.probs[l] - exp(a.logp[l]) / z) < 1e-5, "probs = softmax(logp)");
        double ind[3];
        independent_logp(m, messages[i], ind);
        for (int l = 0; l < 3; l++) {
            worst_cache = fmax(worst_cache, fabs(a.logp[l] - b.logp[l]));
            worst_indep = fmax(worst_indep, fabs(a.logp[l] - ind[l]));
        }
    }
    printf("%s: |cache - no cache| %.2g, |pipeline - independent| %.2g (log-likelihoods)\n", name, worst_cache,
           worst_indep);
    CHECK(worst_cache <= 1e-4, "%s: prefix cache changes log-likelihoods by %g", name, worst_cache);
    CHECK(worst_indep <= 1e-4, "%s: pipeline differs from the independent computation by %g", name, worst_indep);

    /* Replies: seeded sampling repeats, text is whole UTF-8, stops at max. */
    qc_sampling_t sp = {.temperature = 0.8f, .top_k = 40, .top_p = 0.9f, .min_p = 0, .repetition_penalty = 1.05f,
                        .seed = 7};
    sink_t s1 = {0}, s2 = {0};
    CHECK(qc_care_reply(cached, "我头疼了两天", 1, &sp, 20, sink, &s1) == QC_OK, "reply: %s", qc_care_errmsg(cached));
    CHECK(qc_care_reply(cached, "我头疼了两天", 1, &sp, 20, sink, &s2) == QC_OK, "reply again");
    CHECK(s1.len > 0 && s1.len == s2.len && !memcmp(s1.text, s2.text, s1.len), "%s: same seed, same reply", name);
    CHECK(utf8_ok(s1.text, s1.len) && s1.calls <= 21, "%s: whole UTF-8 pieces, at most max_tokens", name);
    /* An emotion judgment between replies leaves them unchanged. */
    qc_emotion_t e;
    qc_care_emotion(cached, messages[0], strlen(messages[0]), &e);
    sink_t s3 = {0};
    qc_care_reply(cached, "我头疼了两天", 1, &sp, 20, sink, &s3);
    CHECK(s3.len == s1.len && !memcmp(s3.text, s1.text, s1.len), "%s: reply independent of earlier requests", name);
    CHECK(qc_care_emotion(cached, "\xff\xfe", 2, &e) != QC_OK && *qc_care_errmsg(cached), "invalid UTF-8 refused");
    check_sessions(m, name);
    check_turns(m, name);
    check_long_conversation(m, name);
    check_judge(m, name);
    qc_care_free(cached);
    qc_care_free(uncached);
    qc_care_free(NULL);
    qc_model_free(m);
}

int main(void) {
    /* The few-shot examples are balanced over the labels. */
    int count[3] = {0};
    for (size_t i = 0; i < qc_prompt_n_examples(); i++) {
        const char *t;
        int l;
        qc_prompt_example(i, &t, &l);
        count[l]++;
    }
    CHECK(count[0] == count[1] && count[1] == count[2], "few-shot balance %d/%d/%d", count[0], count[1], count[2]);
    char *p0 = qc_prompt_reply_system(0), *p1 = qc_prompt_reply_system(1);
    CHECK(p0 && p1 && strcmp(p0, p1) && strstr(p1, "worried"), "the reply prompt is told the emotion");
    free(p0);
    free(p1);
    if (test_case(0)) check_model("tiny-qwen2"); /* QC_TEST_CASES */
    if (test_case(1)) check_model("tiny-qwen3");
    return test_done("test_care");
}
