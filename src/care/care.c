/* care.c — the care pipeline: emotion by label scoring and the reply.
 *
 * Emotion. The analyst prompt (prompts.c) is prefix + turn + label. The
 * prefix's KV state is computed once in qc_care_new; each request continues
 * from it (qc_ctx_set_prefix: the prefix cache is read, never written), so a
 * request costs its own tokens only. For every label, the log-probability of
 * all of its tokens is summed: the first token's from the logits after the
 * turn, the others by running the label's tokens and reading the logits
 * after each. The three log-likelihoods are normalized into probabilities;
 * nothing is generated or parsed.
 *
 * Calibration (opt-in). "Content-free" calibration divides each label's
 * probability by the one the model gives for an empty input ("N/A"), to
 * remove the prompt's bias toward some label. Whether it helps can only be
 * measured with a real model on data/emotion-eval.jsonl (`qcare eval
 * --calibrate`), so it is off by default. */
#include "care/care.h"

#include "care/prompts.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LABEL_TOKENS 8

struct qc_care {
    qc_model_t *m;
    const qc_tokenizer_t *tok;
    qc_care_opts_t opts;
    int qwen3;
    int32_t *prefix_ids;
    size_t n_prefix;
    qc_ctx_t *prefix; /* the analyst prefix, computed once, then read-only */
    qc_ctx_t *req;    /* one classification request at a time */
    qc_ctx_t *gen;    /* the reply */
    int32_t label_ids[3][MAX_LABEL_TOKENS];
    size_t label_len[3];
    float *logits;    /* [n_vocab] */
    float *rows;      /* [MAX_LABEL_TOKENS][n_vocab] */
    double cf[3];     /* content-free label log-likelihoods (calibration) */
    char err[256];
};

/* printf into a handle's error buffer (or a caller's); returns st. */
static qc_status seterr(char *buf, size_t size, qc_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static qc_status seterr(char *buf, size_t size, qc_status st, const char *fmt, ...) {
    if (buf && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, size, fmt, ap);
        va_end(ap);
    }
    return st;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ==== token helpers ==== */

/* Appends the ids of text (special tokens parsed or not) to *ids. */
static qc_status append_ids(const qc_tokenizer_t *tok, const char *text, size_t len, int special, int32_t **ids,
                            size_t *n) {
    int32_t *add = NULL;
    size_t k = 0;
    qc_status st = qc_tokenizer_encode(tok, text, len, special ? QC_TOK_PARSE_SPECIAL : 0, &add, &k);
    if (st) return st;
    int32_t *grown = realloc(*ids, (*n + k + 1) * sizeof **ids);
    if (!grown) {
        free(add);
        return QC_ERR_NOMEM;
    }
    memcpy(grown + *n, add, k * sizeof *add);
    *ids = grown;
    *n += k;
    free(add);
    return QC_OK;
}

/* The ids of one user turn of the analyst prompt: the message is tokenized
 * as plain text, so "<|im_end|>" typed by a user stays text. */
static qc_status turn_ids(const qc_care_t *c, const char *text, size_t len, int32_t **ids, size_t *n) {
    static const char head[] = "<|im_start|>user\n", tail[] = "<|im_end|>\n<|im_start|>assistant\n",
                      think[] = "<think>\n\n</think>\n\n";
    qc_status st;
    *ids = NULL;
    *n = 0;
    if ((st = append_ids(c->tok, head, sizeof head - 1, 1, ids, n)) ||
        (st = append_ids(c->tok, text, len, 0, ids, n)) ||
        (st = append_ids(c->tok, tail, sizeof tail - 1, 1, ids, n)) ||
        (c->qwen3 && (st = append_ids(c->tok, think, sizeof think - 1, 1, ids, n)))) {
        free(*ids);
        *ids = NULL;
    }
    return st;
}

/* log p(id) from one row of logits: logit - logsumexp(row), in double. */
static double log_prob(const float *row, int32_t n_vocab, int32_t id) {
    float mx = row[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (row[i] > mx) mx = row[i];
    double s = 0;
    for (int32_t i = 0; i < n_vocab; i++) s += exp((double)row[i] - mx);
    return (double)row[id] - mx - log(s);
}

/* ==== label scoring ==== */

/* Runs one analyst turn for text in c->req and fills logp[3] with each
 * label's log-likelihood. */
static qc_status score_labels(qc_care_t *c, const char *text, size_t len, double logp[3]) {
    int32_t *ids = NULL;
    size_t n = 0;
    int32_t nv = qc_model_n_vocab(c->m);
    qc_status st = turn_ids(c, text, len, &ids, &n);
    if (st) return seterr(c->err, sizeof c->err, st, "cannot tokenize the message (is it UTF-8?)");
    if (c->opts.use_prefix_cache) {
        st = qc_ctx_set_prefix(c->req, c->prefix);
    } else {
        qc_ctx_truncate(c->req, 0);
        st = qc_ctx_eval(c->req, c->prefix_ids, c->n_prefix, NULL, QC_LOGITS_NONE);
    }
    if (!st) st = qc_ctx_eval(c->req, ids, n, c->logits, QC_LOGITS_LAST);
    free(ids);
    if (st) return seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(c->req));
    int turn_end = qc_ctx_pos(c->req);
    for (int l = 0; l < 3; l++) {
        size_t k = c->label_len[l];
        logp[l] = log_prob(c->logits, nv, c->label_ids[l][0]);
        if (k > 1) { /* the label's other tokens, each given the ones before */
            if ((st = qc_ctx_eval(c->req, c->label_ids[l], k - 1, c->rows, QC_LOGITS_ALL)))
                return seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(c->req));
            for (size_t j = 1; j < k; j++) logp[l] += log_prob(c->rows + (j - 1) * (size_t)nv, nv, c->label_ids[l][j]);
            qc_ctx_truncate(c->req, turn_end);
        }
    }
    return QC_OK;
}

/* ==== pipeline ==== */

qc_status qc_care_new(qc_model_t *m, const qc_care_opts_t *opts, qc_care_t **out, char *err, size_t err_size) {
    *out = NULL;
    qc_status st = QC_ERR_NOMEM;
    qc_care_t *c = calloc(1, sizeof *c);
    if (!c) return seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    c->m = m;
    c->tok = qc_model_tokenizer(m);
    c->qwen3 = qc_model_arch(m) == QC_ARCH_QWEN3;
    c->opts = opts ? *opts : (qc_care_opts_t){.use_prefix_cache = 1};
    if (c->opts.n_ctx <= 0) c->opts.n_ctx = 2048;
    int32_t nv = qc_model_n_vocab(m);
    char *prefix = qc_prompt_classify_prefix();
    c->logits = malloc((size_t)nv * sizeof *c->logits);
    c->rows = malloc((size_t)MAX_LABEL_TOKENS * nv * sizeof *c->rows);
    c->prefix = qc_ctx_new(m, c->opts.n_ctx, NULL);
    c->req = qc_ctx_new(m, c->opts.n_ctx, NULL);
    c->gen = qc_ctx_new(m, c->opts.n_ctx, NULL);
    if (!prefix || !c->logits || !c->rows || !c->prefix || !c->req || !c->gen) goto oom;
    if ((st = append_ids(c->tok, prefix, strlen(prefix), 1, &c->prefix_ids, &c->n_prefix))) goto fail_msg;
    for (int l = 0; l < 3; l++) {
        int32_t *ids = NULL;
        size_t k = 0;
        if ((st = append_ids(c->tok, qc_prompt_labels[l], strlen(qc_prompt_labels[l]), 0, &ids, &k))) goto fail_msg;
        if (k == 0 || k > MAX_LABEL_TOKENS) {
            free(ids);
            st = seterr(err, err_size, QC_ERR_UNSUPPORTED, "label '%s' is %zu tokens", qc_prompt_labels[l], k);
            goto fail;
        }
        memcpy(c->label_ids[l], ids, k * sizeof *ids);
        c->label_len[l] = k;
        free(ids);
    }
    if ((st = qc_ctx_eval(c->prefix, c->prefix_ids, c->n_prefix, NULL, QC_LOGITS_NONE))) {
        seterr(err, err_size, st, "analyst prefix: %s", qc_ctx_errmsg(c->prefix));
        goto fail;
    }
    if (c->opts.calibrate && (st = score_labels(c, "N/A", 3, c->cf))) {
        seterr(err, err_size, st, "calibration: %s", c->err);
        goto fail;
    }
    free(prefix);
    *out = c;
    return QC_OK;
oom:
    st = seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    goto fail;
fail_msg:
    seterr(err, err_size, st, "cannot tokenize the analyst prompt");
fail:
    free(prefix);
    qc_care_free(c);
    return st;
}

void qc_care_free(qc_care_t *c) {
    if (!c) return;
    qc_ctx_free(c->req);
    qc_ctx_free(c->gen);
    qc_ctx_free(c->prefix);
    free(c->prefix_ids);
    free(c->logits);
    free(c->rows);
    free(c);
}

const char *qc_care_errmsg(const qc_care_t *c) { return c->err; }
int qc_care_prefix_tokens(const qc_care_t *c) { return (int)c->n_prefix; }

qc_status qc_care_emotion(qc_care_t *c, const char *text, size_t len, qc_emotion_t *out) {
    double t0 = now_ms();
    qc_status st = score_labels(c, text, len, out->logp);
    if (st) return st;
    double z[3], mx = -INFINITY, sum = 0;
    for (int l = 0; l < 3; l++) {
        z[l] = out->logp[l] - (c->opts.calibrate ? c->cf[l] : 0);
        if (z[l] > mx) mx = z[l];
    }
    for (int l = 0; l < 3; l++) sum += exp(z[l] - mx);
    out->label = 0;
    for (int l = 0; l < 3; l++) {
        out->probs[l] = (float)(exp(z[l] - mx) / sum);
        if (out->probs[l] > out->probs[out->label]) out->label = l;
    }
    out->ms = now_ms() - t0;
    return QC_OK;
}

qc_status qc_care_reply(qc_care_t *c, const char *text, int emotion, const qc_sampling_t *sampling,
                        int max_tokens, qc_token_cb cb, void *user) {
    static const char tail[] = "<|im_end|>\n<|im_start|>assistant\n", think[] = "<think>\n\n</think>\n\n";
    char *sys = qc_prompt_reply_system(emotion);
    if (!sys) return seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
    size_t hl = strlen(sys) + 64;
    char *head = malloc(hl);
    int32_t *ids = NULL;
    size_t n = 0;
    qc_status st = QC_ERR_NOMEM;
    if (head) {
        snprintf(head, hl, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n", sys);
        if (!(st = append_ids(c->tok, head, strlen(head), 1, &ids, &n)) &&
            !(st = append_ids(c->tok, text, strlen(text), 0, &ids, &n)) &&
            !(st = append_ids(c->tok, tail, sizeof tail - 1, 1, &ids, &n)) && c->qwen3)
            st = append_ids(c->tok, think, sizeof think - 1, 1, &ids, &n);
    }
    free(sys);
    free(head);
    if (st) {
        free(ids);
        return seterr(c->err, sizeof c->err, st, "cannot tokenize the message (is it UTF-8?)");
    }
    qc_generate_opts_t go = {.max_tokens = max_tokens};
    if (sampling) go.sampling = *sampling;
    else qc_model_sampling_defaults(c->m, &go.sampling);
    qc_ctx_truncate(c->gen, 0);
    size_t n_out = 0;
    st = qc_generate(c->gen, ids, n, &go, cb, user, NULL, &n_out);
    free(ids);
    if (st) return seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(c->gen));
    return QC_OK;
}
