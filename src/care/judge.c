/* judge.c — label scoring: a task (labels, instruction, few-shot
 * examples) becomes a ChatML prefix whose KV state is computed once and
 * cached; a text becomes a user turn after it; each label is scored by the
 * log-probability of its tokens where the answer begins. Emotion and the
 * urgency opinion are built-in tasks. The prompt layout, the tokenization
 * at the answer boundary and the normalizations are described in
 * include/qcare_care.h ("label scoring").
 *
 * Exactness. A judgment's forward calls have a fixed shape wherever it
 * runs (qc_care_classify here, or the server's batched passes through
 * qc_care_classify_begin): the prefix in one qc_ctx_eval call (computed
 * once for the cache, or in the judgment's own context without it), the
 * turn in runs of QC_JUDGE_CHUNK tokens, each label's later tokens in runs
 * of at most QC_CARE_LABEL_ROWS. Because the engine gives the same logits
 * for the same calls (and qc_batch_eval the same as each sequence alone),
 * cached = uncached and batched = alone, bit for bit (test_classify).
 *
 * The prefix cache holds each prefix's KV state in a context of exactly
 * its length, trimmed of work buffers. An entry in use by a judgment holds
 * a reference and is never evicted; the built-in tasks' entries are
 * pinned and not counted against the budget. */
#include "care/care.h"
#include "base/base.h"

#include "care/prompts.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CF_MEMO 16                   /* tasks whose content-free scores are remembered */
#define PREFIX_BUDGET_DEF (64u << 20) /* bytes of caller prefixes' KV state */

struct qc_labels {
    const qc_model_t *m;
    const qc_tokenizer_t *tok;
    int qwen3, calibrate, mean, n_ctx;
    size_t n;
    char *name[QC_LABELS_MAX];
    int32_t *ids[QC_LABELS_MAX]; /* each label's tokens */
    size_t n_ids[QC_LABELS_MAX], max_ids;
    int32_t *prefix;
    size_t n_prefix;
    uint64_t key;    /* hash of the prefix's tokens */
    uint64_t cf_key; /* hash of the prefix's and the labels' tokens */
};

struct prefix {
    uint64_t key;
    int32_t *ids; /* compared in full on a hit */
    size_t n;
    qc_ctx_t *ctx;
    int refs, pinned;
    uint64_t used;
};

struct cf_memo {
    uint64_t key;
    size_t n;
    double loglik[QC_LABELS_MAX];
};

/* ==== tasks ==== */

/* FNV-1a over bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

/* Characters (code points) of UTF-8 s, or -1 when it is not valid UTF-8
 * (the tokenizer rejects it too; this only counts). */
static long utf8_chars(const char *s, size_t len) {
    long n = 0;
    for (size_t i = 0; i < len; n++) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > len) return -1;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] >> 6) != 2) return -1;
        i += k;
    }
    return n;
}

/* The fixed ChatML pieces (special tokens parsed) and the caller's text
 * (never parsed) of the prompt, appended to *ids. */
static qc_status add_fixed(const qc_labels_t *t, const char *s, int32_t **ids, size_t *n) {
    return care_append_ids(t->tok, s, strlen(s), 1, ids, n);
}
static qc_status add_text(const qc_labels_t *t, const char *s, int32_t **ids, size_t *n) {
    return care_append_ids(t->tok, s, strlen(s), 0, ids, n);
}

/* The prefix: the system turn, then each example as a user turn answered
 * with its label. 0, or the failing status with the reason in err. */
static qc_status build_prefix(qc_labels_t *t, const qc_labels_spec_t *sp, char *err, size_t en) {
    qc_buf_t def = {0};
    const char *instr = sp->instruction;
    if (!instr) {
        qc_buf_puts(&def, "Classify the user's message. Answer with exactly one of these labels: ");
        for (size_t i = 0; i < t->n; i++) qc_buf_printf(&def, "%s%s", i ? ", " : "", t->name[i]);
        qc_buf_puts(&def, ".");
        if (def.failed) return qc_seterr(err, en, QC_ERR_NOMEM, "out of memory");
        instr = def.p;
    }
    qc_status st = add_fixed(t, "<|im_start|>system\n", &t->prefix, &t->n_prefix);
    if (!st && (st = add_text(t, instr, &t->prefix, &t->n_prefix)))
        qc_seterr(err, en, st, "the instruction is not valid UTF-8");
    if (!st) st = add_fixed(t, "<|im_end|>\n", &t->prefix, &t->n_prefix);
    qc_buf_free(&def);
    for (size_t i = 0; !st && i < sp->n_examples; i++) {
        const qc_example_t *e = &sp->examples[i];
        if (!e->text || !e->label) return qc_seterr(err, en, QC_ERR_ARG, "examples[%zu] needs a text and a label", i);
        size_t l = 0;
        while (l < t->n && strcmp(t->name[l], e->label)) l++;
        if (l == t->n)
            return qc_seterr(err, en, QC_ERR_ARG, "examples[%zu].label \"%.80s\" is not one of the labels", i, e->label);
        if ((st = add_fixed(t, "<|im_start|>user\n", &t->prefix, &t->n_prefix))) break;
        if ((st = add_text(t, e->text, &t->prefix, &t->n_prefix)))
            return qc_seterr(err, en, st, "examples[%zu].text is not valid UTF-8", i);
        if ((st = add_fixed(t, "<|im_end|>\n<|im_start|>assistant\n", &t->prefix, &t->n_prefix)) ||
            (st = care_append_ids(t->tok, e->label, strlen(e->label), 0, &t->prefix, &t->n_prefix)) ||
            (st = add_fixed(t, "<|im_end|>\n", &t->prefix, &t->n_prefix)))
            break;
    }
    if (st && err && !*err) qc_seterr(err, en, st, "cannot tokenize the prompt");
    return st;
}

qc_status qc_labels_new(const qc_model_t *m, const qc_labels_spec_t *sp, int n_ctx, qc_labels_t **out, char *err,
                        size_t en) {
    *out = NULL;
    if (err && en) *err = 0;
    if (!sp || !sp->labels || sp->n_labels < 2 || sp->n_labels > QC_LABELS_MAX)
        return qc_seterr(err, en, QC_ERR_ARG, "2 to %d labels are needed (got %zu)", QC_LABELS_MAX,
                         sp && sp->labels ? sp->n_labels : 0);
    qc_labels_t *t = calloc(1, sizeof *t);
    if (!t) return qc_seterr(err, en, QC_ERR_NOMEM, "out of memory");
    t->m = m;
    t->tok = qc_model_tokenizer(m);
    t->qwen3 = qc_model_arch(m) == QC_ARCH_QWEN3;
    t->calibrate = sp->calibrate;
    t->mean = sp->mean;
    t->n_ctx = n_ctx > 0 ? n_ctx : 2048;
    qc_status st = QC_OK;
    for (size_t i = 0; i < sp->n_labels && !st; i++) {
        const char *l = sp->labels[i];
        long chars = l ? utf8_chars(l, strlen(l)) : -1;
        if (chars < 1 || chars > QC_LABEL_MAX_CHARS) {
            st = qc_seterr(err, en, QC_ERR_ARG, "labels[%zu] must be 1 to %d characters of UTF-8 text", i,
                           QC_LABEL_MAX_CHARS);
            break;
        }
        for (size_t j = 0; j < i && !st; j++)
            if (!strcmp(t->name[j], l)) st = qc_seterr(err, en, QC_ERR_ARG, "the label \"%s\" is given twice", l);
        if (st) break;
        if (!(t->name[i] = strdup(l))) st = qc_seterr(err, en, QC_ERR_NOMEM, "out of memory");
        else if ((st = care_append_ids(t->tok, l, strlen(l), 0, &t->ids[i], &t->n_ids[i])))
            qc_seterr(err, en, st, "cannot tokenize labels[%zu]", i);
        t->n = i + 1;
        if (t->n_ids[i] > t->max_ids) t->max_ids = t->n_ids[i];
    }
    if (!st) st = build_prefix(t, sp, err, en);
    if (!st) {
        /* the smallest turn (an empty text) and the longest label must fit after the prefix */
        int32_t *turn = NULL;
        size_t n_turn = 0;
        st = qc_labels_turn(t, " ", 1, 0, &turn, &n_turn, NULL, 0);
        free(turn);
        if (st == QC_ERR_CONTEXT)
            qc_seterr(err, en, st,
                      "the instruction and examples are %zu tokens: with the longest label (%zu tokens) they leave "
                      "no room for a text in the context (%d tokens)",
                      t->n_prefix, t->max_ids, t->n_ctx);
        else if (st)
            qc_seterr(err, en, st, "cannot tokenize the prompt");
    }
    if (st) {
        qc_labels_free(t);
        return st;
    }
    t->key = fnv(FNV0, t->prefix, t->n_prefix * sizeof *t->prefix);
    t->cf_key = t->key;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t k = t->n_ids[i];
        t->cf_key = fnv(fnv(t->cf_key, &k, sizeof k), t->ids[i], t->n_ids[i] * sizeof *t->ids[i]);
    }
    *out = t;
    return QC_OK;
}

void qc_labels_free(qc_labels_t *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->name[i]);
        free(t->ids[i]);
    }
    free(t->prefix);
    free(t);
}

size_t qc_labels_count(const qc_labels_t *t) { return t->n; }
const char *qc_labels_name(const qc_labels_t *t, size_t i) { return i < t->n ? t->name[i] : NULL; }
int qc_labels_calibrated(const qc_labels_t *t) { return t->calibrate; }
int qc_labels_mean(const qc_labels_t *t) { return t->mean; }

size_t qc_labels_tokens(const qc_labels_t *t, size_t i, const int32_t **ids) {
    *ids = i < t->n ? t->ids[i] : NULL;
    return i < t->n ? t->n_ids[i] : 0;
}

size_t qc_labels_prefix(const qc_labels_t *t, const int32_t **ids) {
    *ids = t->prefix;
    return t->n_prefix;
}

qc_status qc_labels_turn(const qc_labels_t *t, const char *text, size_t len, int n_ctx, int32_t **ids, size_t *n,
                         char *err, size_t en) {
    *ids = NULL;
    *n = 0;
    if (!text || len == 0) return qc_seterr(err, en, QC_ERR_ARG, "the text is empty");
    qc_status st = add_fixed(t, "<|im_start|>user\n", ids, n);
    if (!st && (st = care_append_ids(t->tok, text, len, 0, ids, n)))
        qc_seterr(err, en, st, "the text is not valid UTF-8");
    if (!st) st = add_fixed(t, "<|im_end|>\n<|im_start|>assistant\n", ids, n);
    if (!st && t->qwen3) st = add_fixed(t, "<think>\n\n</think>\n\n", ids, n);
    if (st) {
        if (err && en && st == QC_ERR_NOMEM) qc_seterr(err, en, st, "out of memory");
        free(*ids);
        *ids = NULL;
        *n = 0;
        return st;
    }
    size_t room = (size_t)(n_ctx > 0 ? n_ctx : t->n_ctx);
    if (t->n_prefix + *n + t->max_ids > room) {
        st = qc_seterr(err, en, QC_ERR_CONTEXT,
                       "the text is %zu tokens: with the instruction and examples (%zu) and the longest label (%zu) "
                       "it is longer than the context (%zu tokens)",
                       *n, t->n_prefix, t->max_ids, room);
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}

/* ==== the prefix cache ==== */

static size_t prefix_bytes(const qc_care_t *c, const prefix_t *p) {
    return p->n * qc_model_kv_bytes_per_token(c->m);
}

static void prefix_drop(qc_care_t *c, size_t i) {
    prefix_t *p = c->prefixes[i];
    if (!p->pinned) {
        c->prefix_stats.entries--;
        c->prefix_stats.bytes -= prefix_bytes(c, p);
    }
    qc_ctx_free(p->ctx);
    free(p->ids);
    free(p);
    c->prefixes[i] = c->prefixes[--c->n_prefixes];
}

/* Evicts unused caller prefixes, least recently used first, until they fit the budget. */
static void prefix_evict(qc_care_t *c) {
    while (c->prefix_stats.bytes > c->prefix_stats.budget) {
        size_t lru = c->n_prefixes;
        for (size_t i = 0; i < c->n_prefixes; i++) {
            const prefix_t *p = c->prefixes[i];
            if (!p->pinned && !p->refs && (lru == c->n_prefixes || p->used < c->prefixes[lru]->used)) lru = i;
        }
        if (lru == c->n_prefixes) return; /* all in use: they go when released */
        prefix_drop(c, lru);
        c->prefix_stats.evictions++;
    }
}

/* t's prefix with its KV state, computed when not cached; the reference
 * is the caller's (prefix_release). *hit says whether it was cached. */
static qc_status prefix_acquire(qc_care_t *c, const qc_labels_t *t, prefix_t **out, int *hit) {
    *out = NULL;
    for (size_t i = 0; i < c->n_prefixes; i++) {
        prefix_t *p = c->prefixes[i];
        if (p->key == t->key && p->n == t->n_prefix && !memcmp(p->ids, t->prefix, p->n * sizeof *p->ids)) {
            p->refs++;
            p->used = ++c->prefix_clock;
            c->prefix_stats.hits++;
            if (hit) *hit = 1;
            *out = p;
            return QC_OK;
        }
    }
    if (hit) *hit = 0;
    c->prefix_stats.misses++;
    if (c->n_prefixes == c->cap_prefixes) {
        size_t cap = c->cap_prefixes ? c->cap_prefixes * 2 : 8;
        prefix_t **g = realloc(c->prefixes, cap * sizeof *g);
        if (!g) return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
        c->prefixes = g;
        c->cap_prefixes = cap;
    }
    prefix_t *p = calloc(1, sizeof *p);
    if (!p || !(p->ids = malloc(t->n_prefix * sizeof *p->ids)) || !(p->ctx = qc_ctx_new(c->m, (int)t->n_prefix, NULL))) {
        if (p) free(p->ids);
        free(p);
        return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory for a prompt prefix");
    }
    memcpy(p->ids, t->prefix, t->n_prefix * sizeof *p->ids);
    p->key = t->key;
    p->n = t->n_prefix;
    qc_status st = qc_ctx_eval(p->ctx, p->ids, p->n, NULL, QC_LOGITS_NONE);
    if (st) {
        qc_seterr(c->err, sizeof c->err, st, "prompt prefix: %s", qc_ctx_errmsg(p->ctx));
        qc_ctx_free(p->ctx);
        free(p->ids);
        free(p);
        return st;
    }
    qc_ctx_trim(p->ctx); /* only its KV state is read from now on */
    p->refs = 1;
    p->used = ++c->prefix_clock;
    c->prefixes[c->n_prefixes++] = p;
    c->prefix_stats.entries++;
    c->prefix_stats.bytes += prefix_bytes(c, p);
    prefix_evict(c);
    *out = p;
    return QC_OK;
}

static void prefix_release(qc_care_t *c, prefix_t *p) {
    if (!p) return;
    p->refs--;
    prefix_evict(c);
}

void qc_care_prefix_stats(const qc_care_t *c, qc_prefix_stats_t *out) { *out = c->prefix_stats; }

/* ==== scoring ==== */

/* Each label's log-likelihood after the turn run in x, whose next-token
 * logits are `last`: the first token's from them, the others by running
 * the label's tokens in x (then cut off again). */
static qc_status labels_loglik(qc_care_t *c, const qc_labels_t *t, qc_ctx_t *x, const float *last, double *ll) {
    int32_t nv = qc_model_n_vocab(c->m);
    double lse = qc_logsumexp(last, nv);
    int end = qc_ctx_pos(x);
    for (size_t l = 0; l < t->n; l++) {
        const int32_t *ids = t->ids[l];
        size_t k = t->n_ids[l];
        ll[l] = (double)last[ids[0]] - lse;
        for (size_t done = 0; done + 1 < k;) { /* token done+1+j is read from the row after token done+j */
            size_t run = k - 1 - done < QC_CARE_LABEL_ROWS ? k - 1 - done : QC_CARE_LABEL_ROWS;
            qc_status st = qc_ctx_eval(x, ids + done, run, c->rows, QC_LOGITS_ALL);
            if (st) return qc_seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(x));
            for (size_t j = 0; j < run; j++) {
                const float *row = c->rows + j * (size_t)nv;
                ll[l] += (double)row[ids[done + 1 + j]] - qc_logsumexp(row, nv);
            }
            done += run;
        }
        if (k > 1) qc_ctx_truncate(x, end);
    }
    return QC_OK;
}

/* The probabilities from the log-likelihoods ll (and the content-free
 * ones cf, when calibrating). */
static void scores_finish(const qc_labels_t *t, const double *ll, const double *cf, qc_scores_t *out) {
    double z[QC_LABELS_MAX], mx = -INFINITY, sum = 0;
    out->n = t->n;
    out->calibrated = cf != NULL;
    for (size_t l = 0; l < t->n; l++) {
        double k = t->mean ? (double)t->n_ids[l] : 1;
        out->label[l].loglik = ll[l];
        out->label[l].tokens = (int)t->n_ids[l];
        if (cf) out->cf_loglik[l] = cf[l];
        z[l] = (ll[l] - (cf ? cf[l] : 0)) / k;
        if (z[l] > mx) mx = z[l];
    }
    for (size_t l = 0; l < t->n; l++) sum += exp(z[l] - mx);
    out->top = 0;
    for (size_t l = 0; l < t->n; l++) {
        out->label[l].prob = exp(z[l] - mx) / sum;
        if (out->label[l].prob > out->label[out->top].prob) out->top = (int)l;
    }
}

/* Runs the turn ids[0..n) in x in calls of QC_JUDGE_CHUNK tokens; the
 * logits after the last into c->logits. */
static qc_status run_turn(qc_care_t *c, qc_ctx_t *x, const int32_t *ids, size_t n) {
    for (size_t off = 0; off < n; off += QC_JUDGE_CHUNK) {
        size_t k = n - off < QC_JUDGE_CHUNK ? n - off : QC_JUDGE_CHUNK;
        qc_status st = qc_ctx_eval(x, ids + off, k, off + k == n ? c->logits : NULL,
                                   off + k == n ? QC_LOGITS_LAST : QC_LOGITS_NONE);
        if (st) return qc_seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(x));
    }
    return QC_OK;
}

/* Scores t's labels after text in c->req: the prefix from the cache (or
 * run here), the turn, the labels. */
static qc_status score_alone(qc_care_t *c, const qc_labels_t *t, const char *text, size_t len, double *ll,
                             qc_scores_t *info) {
    int32_t *ids;
    size_t n;
    qc_status st = qc_labels_turn(t, text, len, c->opts.n_ctx, &ids, &n, c->err, sizeof c->err);
    if (st) return st;
    prefix_t *p = NULL;
    int hit = 0;
    if (c->opts.use_prefix_cache) {
        if (!(st = prefix_acquire(c, t, &p, &hit))) st = qc_ctx_set_prefix(c->req, p->ctx);
    } else {
        qc_ctx_set_prefix(c->req, NULL);
        st = qc_ctx_eval(c->req, t->prefix, t->n_prefix, NULL, QC_LOGITS_NONE);
    }
    if (st && !*c->err) qc_seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(c->req));
    if (!st) st = run_turn(c, c->req, ids, n);
    if (!st) st = labels_loglik(c, t, c->req, c->logits, ll);
    qc_ctx_set_prefix(c->req, NULL); /* let go of the entry before it may be evicted */
    prefix_release(c, p);
    free(ids);
    if (info) {
        info->prefix_cached = hit;
        info->text_tokens = (int)n;
    }
    return st;
}

/* The content-free log-likelihoods of t (the text "N/A"), remembered. */
static qc_status content_free(qc_care_t *c, const qc_labels_t *t, double *cf) {
    for (size_t i = 0; i < c->n_cf; i++)
        if (c->cf[i].key == t->cf_key && c->cf[i].n == t->n) {
            memcpy(cf, c->cf[i].loglik, t->n * sizeof *cf);
            return QC_OK;
        }
    qc_status st = score_alone(c, t, "N/A", 3, cf, NULL);
    if (st) return st;
    struct cf_memo *m = &c->cf[c->n_cf < CF_MEMO ? c->n_cf++ : c->next_cf++ % CF_MEMO];
    m->key = t->cf_key;
    m->n = t->n;
    memcpy(m->loglik, cf, t->n * sizeof *cf);
    return QC_OK;
}

qc_status qc_care_classify(qc_care_t *c, const qc_labels_t *t, const char *text, size_t len, qc_scores_t *out) {
    double t0 = qc_now_ms(), ll[QC_LABELS_MAX], cf[QC_LABELS_MAX];
    memset(out, 0, sizeof *out);
    *c->err = 0;
    if (!t || t->m != c->m) return qc_seterr(c->err, sizeof c->err, QC_ERR_ARG, "the task is for another model");
    qc_status st = t->calibrate ? content_free(c, t, cf) : QC_OK;
    if (!st) st = score_alone(c, t, text, len, ll, out);
    if (st) return st;
    scores_finish(t, ll, t->calibrate ? cf : NULL, out);
    out->ms = qc_now_ms() - t0;
    return QC_OK;
}

/* ==== a judgment driven from outside (the server's batching scheduler) ==== */

struct qc_care_judge {
    qc_care_t *c;
    const qc_labels_t *t;
    prefix_t *p;  /* the cache entry its context continues (NULL without the cache) */
    qc_ctx_t *ctx;
    int32_t *ids; /* what the caller runs: the turn */
    size_t n;
    int hit;
    double t0, cf[QC_LABELS_MAX];
};

qc_status qc_care_classify_begin(qc_care_t *c, const qc_labels_t *t, const char *text, size_t len,
                                 qc_care_judge_t **out) {
    *out = NULL;
    *c->err = 0;
    if (!t || t->m != c->m) return qc_seterr(c->err, sizeof c->err, QC_ERR_ARG, "the task is for another model");
    qc_care_judge_t *j = calloc(1, sizeof *j);
    if (!j) return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
    j->c = c;
    j->t = t;
    j->t0 = qc_now_ms();
    qc_status st = t->calibrate ? content_free(c, t, j->cf) : QC_OK;
    if (!st) st = qc_labels_turn(t, text, len, c->opts.n_ctx, &j->ids, &j->n, c->err, sizeof c->err);
    /* its own work buffers serve the labels' tokens (and, without the
     * cache, the prefix, run here in one call as qc_care_classify does) */
    qc_ctx_opts_t o = {.n_batch = c->opts.use_prefix_cache ? QC_CARE_LABEL_ROWS : 0};
    if (!st && !(j->ctx = qc_ctx_new(c->m, c->opts.n_ctx, &o)))
        st = qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
    if (!st && c->opts.use_prefix_cache) {
        if (!(st = prefix_acquire(c, t, &j->p, &j->hit))) st = qc_ctx_set_prefix(j->ctx, j->p->ctx);
    } else if (!st) {
        st = qc_ctx_eval(j->ctx, t->prefix, t->n_prefix, NULL, QC_LOGITS_NONE);
    }
    if (st && !*c->err) qc_seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(j->ctx));
    if (st) {
        qc_care_judge_free(j);
        return st;
    }
    *out = j;
    return QC_OK;
}

qc_ctx_t *qc_care_judge_ctx(const qc_care_judge_t *j) { return j->ctx; }

size_t qc_care_judge_tokens(const qc_care_judge_t *j, const int32_t **ids) {
    *ids = j->ids;
    return j->n;
}

qc_status qc_care_judge_scores(qc_care_judge_t *j, const float *logits, qc_scores_t *out) {
    qc_care_t *c = j->c;
    double ll[QC_LABELS_MAX];
    memset(out, 0, sizeof *out);
    qc_status st = labels_loglik(c, j->t, j->ctx, logits, ll);
    if (!st) {
        scores_finish(j->t, ll, j->t->calibrate ? j->cf : NULL, out);
        out->prefix_cached = j->hit;
        out->text_tokens = (int)j->n;
        out->ms = qc_now_ms() - j->t0;
    }
    qc_care_judge_free(j);
    return st;
}

void qc_care_judge_free(qc_care_judge_t *j) {
    if (!j) return;
    qc_ctx_free(j->ctx); /* first: it reads the entry's KV state */
    prefix_release(j->c, j->p);
    free(j->ids);
    free(j);
}

/* ==== the built-in tasks ==== */

static void emotion_from(const qc_scores_t *s, qc_emotion_t *out) {
    out->label = s->top;
    for (int l = 0; l < 3; l++) {
        out->probs[l] = (float)s->label[l].prob;
        out->logp[l] = s->label[l].loglik;
    }
    out->ms = s->ms;
}

qc_status qc_care_emotion(qc_care_t *c, const char *text, size_t len, qc_emotion_t *out) {
    qc_scores_t s;
    qc_status st = qc_care_classify(c, c->emotion, text, len, &s);
    if (!st) emotion_from(&s, out);
    return st;
}

qc_status qc_care_judge_begin(qc_care_t *c, const char *text, size_t len, qc_care_judge_t **out) {
    return qc_care_classify_begin(c, c->emotion, text, len, out);
}

qc_status qc_care_judge_end(qc_care_judge_t *j, const float *logits, qc_emotion_t *out) {
    qc_scores_t s;
    qc_status st = qc_care_judge_scores(j, logits, &s);
    if (!st) emotion_from(&s, out);
    return st;
}

const qc_labels_t *qc_care_emotion_labels(const qc_care_t *c) { return c->emotion; }
const qc_labels_t *qc_care_risk_labels(const qc_care_t *c) { return c->risk; }
int qc_care_prefix_tokens(const qc_care_t *c) { return (int)c->emotion->n_prefix; }

/* A built-in task from prompts.c: its labels, instruction and examples
 * (example i: text and label index from get(i)), its prefix pinned in the
 * cache. */
static qc_status builtin(qc_care_t *c, const char *const *labels, size_t n_labels, const char *instruction,
                         size_t n_ex, void (*get)(size_t, const char **, int *), int calibrate, qc_labels_t **out,
                         char *err, size_t en) {
    qc_example_t ex[32];
    if (n_ex > sizeof ex / sizeof ex[0]) return qc_seterr(err, en, QC_ERR_ARG, "too many built-in examples");
    for (size_t i = 0; i < n_ex; i++) {
        int l;
        get(i, &ex[i].text, &l);
        ex[i].label = labels[l];
    }
    qc_labels_spec_t sp = {.labels = labels, .n_labels = n_labels, .instruction = instruction, .examples = ex,
                           .n_examples = n_ex, .calibrate = calibrate};
    qc_status st = qc_labels_new(c->m, &sp, c->opts.n_ctx, out, err, en);
    if (st || !c->opts.use_prefix_cache) return st;
    prefix_t *p;
    if ((st = prefix_acquire(c, *out, &p, NULL))) return qc_seterr(err, en, st, "%s", c->err);
    p->pinned = 1; /* its reference is never released: kept for the pipeline's life, outside the budget */
    c->prefix_stats.entries--;
    c->prefix_stats.bytes -= prefix_bytes(c, p);
    c->prefix_stats.misses--;
    return QC_OK;
}

qc_status care_judges_init(qc_care_t *c, char *err, size_t en) {
    int32_t nv = qc_model_n_vocab(c->m);
    c->prefix_stats.budget = c->opts.prefix_budget ? c->opts.prefix_budget : PREFIX_BUDGET_DEF;
    c->logits = malloc((size_t)nv * sizeof *c->logits);
    c->rows = malloc((size_t)QC_CARE_LABEL_ROWS * nv * sizeof *c->rows);
    c->cf = calloc(CF_MEMO, sizeof *c->cf);
    c->req = qc_ctx_new(c->m, c->opts.n_ctx, NULL);
    if (!c->logits || !c->rows || !c->cf || !c->req) return qc_seterr(err, en, QC_ERR_NOMEM, "out of memory");
    qc_status st = builtin(c, qc_prompt_labels, 3, qc_prompt_analyst_system(), qc_prompt_n_examples(),
                           qc_prompt_example, c->opts.calibrate, &c->emotion, err, en);
    if (st) return st;
    if (c->opts.risk_model &&
        (st = builtin(c, qc_prompt_risk_labels, 2, qc_prompt_risk_system(), qc_prompt_n_risk_examples(),
                      qc_prompt_risk_example, 0, &c->risk, err, en)))
        return st;
    double cf[QC_LABELS_MAX];
    if (c->opts.calibrate && (st = content_free(c, c->emotion, cf)))
        return qc_seterr(err, en, st, "calibration: %s", c->err);
    return QC_OK;
}

void care_judges_free(qc_care_t *c) {
    qc_ctx_free(c->req); /* it may still point at an entry */
    while (c->n_prefixes) prefix_drop(c, c->n_prefixes - 1);
    free(c->prefixes);
    qc_labels_free(c->emotion);
    qc_labels_free(c->risk);
    free(c->logits);
    free(c->rows);
    free(c->cf);
}

/* ==== the answer as JSON ==== */

char *qc_scores_json(const qc_labels_t *t, const qc_scores_t *s) {
    json_t *labels = json_array(), *o = NULL;
    for (size_t l = 0; labels && l < s->n && l < t->n; l++)
        json_array_append_new(labels, json_pack("{s:s, s:f, s:f, s:i}", "label", t->name[l], "probability",
                                                qc_round6(s->label[l].prob), "loglik", s->label[l].loglik, "tokens",
                                                s->label[l].tokens));
    if (labels)
        o = json_pack("{s:o, s:s, s:s, s:b, s:b, s:i, s:f}", "labels", labels, "top", t->name[s->top], "normalize",
                      t->mean ? "mean" : "sum", "calibrated", s->calibrated, "prefix_cached", s->prefix_cached,
                      "text_tokens", s->text_tokens, "ms", qc_round6(s->ms));
    if (o && s->calibrated) {
        json_t *cf = json_array();
        for (size_t l = 0; cf && l < s->n; l++) json_array_append_new(cf, json_real(s->cf_loglik[l]));
        json_object_set_new(o, "content_free_loglik", cf);
    }
    char *text = o ? json_dumps(o, JSON_COMPACT | QC_JSON_REAL) : NULL;
    json_decref(o);
    return text;
}
