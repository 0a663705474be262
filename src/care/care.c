/* care.c — the care pipeline: set-up, the reply, conversations.
 *
 * Emotion is label scoring (judge.c) with the analyst prompt (prompts.c):
 * its prefix is computed once in qc_care_new and shared read-only by every
 * judgment, so a message costs its own tokens only. The reply is the
 * adviser prompt told the emotion; a conversation keeps its KV state
 * between turns within a memory budget. */
#include "care/care.h"
#include "base/base.h"

#include "care/prompts.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SESSIONS 4096 /* default of qc_care_opts_t.max_sessions */
#define TURN_ROOM_DIV 8   /* a turn keeps n_ctx / this tokens free for its reply, dropping old turns if needed */

/* One conversation. The tokens of every forward call made for it are kept
 * (ids, and the end of each call in spans), so a session whose KV state was
 * evicted is rebuilt by making the same calls again: the same batches give
 * bit-identical KV state, so eviction never changes an answer. */
struct session {
    char *id;
    qc_ctx_t *ctx;     /* NULL while evicted */
    int32_t *ids;      /* every token of the conversation, in order */
    size_t n_ids, cap_ids;
    size_t *spans;     /* end (in ids) of each forward call */
    size_t n_spans, cap_spans;
    size_t n_evaluated; /* ids[0 .. n_evaluated) are in the KV state */
    size_t n_head;      /* ids[0 .. n_head): the system prompt, kept when old turns are dropped */
    size_t *turns;      /* where each turn's own tokens start in ids (after the previous reply's end) */
    size_t n_turns, cap_turns;
    uint64_t last_used;
    int busy;           /* a turn is in progress (qc_care_turn_begin): never evicted or dropped */
};

/* ==== token helpers ==== */

qc_status care_append_ids(const qc_tokenizer_t *tok, const char *text, size_t len, int special, int32_t **ids,
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

/* ==== pipeline ==== */

qc_status qc_care_new(qc_model_t *m, const qc_care_opts_t *opts, qc_care_t **out, char *err, size_t err_size) {
    *out = NULL;
    /* every care prompt is ChatML: without these special tokens its markers
     * would be read as plain text and the model would see no turns */
    static const char *const chatml[] = {"<|im_start|>", "<|im_end|>"};
    for (int i = 0; i < 2; i++)
        if (qc_tokenizer_find(qc_model_tokenizer(m), chatml[i]) < 0)
            return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                             "the tokenizer has no %s token: the care prompts are ChatML (an instruction-tuned "
                             "Qwen model has it)",
                             chatml[i]);
    qc_care_t *c = calloc(1, sizeof *c);
    if (!c) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    c->m = m;
    c->tok = qc_model_tokenizer(m);
    c->qwen3 = qc_model_arch(m) == QC_ARCH_QWEN3;
    c->opts = opts ? *opts : (qc_care_opts_t){.use_prefix_cache = 1};
    if (c->opts.n_ctx <= 0) c->opts.n_ctx = 2048;
    if (c->opts.max_sessions <= 0) c->opts.max_sessions = MAX_SESSIONS;
    if (c->opts.session_budget == 0) c->opts.session_budget = (size_t)512 << 20;
    qc_status st = QC_ERR_NOMEM;
    if (!(c->gen = qc_ctx_new(m, c->opts.n_ctx, NULL))) {
        qc_seterr(err, err_size, st, "out of memory");
        goto fail;
    }
    if ((st = care_judges_init(c, err, err_size))) goto fail;
    *out = c;
    return QC_OK;
fail:
    qc_care_free(c);
    return st;
}

static void session_free(session_t *s) {
    if (!s) return;
    qc_ctx_free(s->ctx);
    free(s->id);
    free(s->ids);
    free(s->spans);
    free(s->turns);
    free(s);
}

void qc_care_free(qc_care_t *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_sessions; i++) session_free(c->sessions[i]);
    free(c->sessions);
    qc_ctx_free(c->gen);
    care_judges_free(c);
    free(c);
}

const char *qc_care_errmsg(const qc_care_t *c) { return c->err; }

qc_status qc_care_reply_ids(qc_care_t *c, const char *text, int emotion, int32_t **out, size_t *n_out) {
    static const char tail[] = "<|im_end|>\n<|im_start|>assistant\n", think[] = "<think>\n\n</think>\n\n";
    *out = NULL;
    *n_out = 0;
    char *sys = qc_prompt_reply_system(emotion);
    if (!sys) return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
    size_t hl = strlen(sys) + 64;
    char *head = malloc(hl);
    int32_t *ids = NULL;
    size_t n = 0;
    qc_status st = QC_ERR_NOMEM;
    if (head) {
        snprintf(head, hl, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n", sys);
        if (!(st = care_append_ids(c->tok, head, strlen(head), 1, &ids, &n)) &&
            !(st = care_append_ids(c->tok, text, strlen(text), 0, &ids, &n)) &&
            !(st = care_append_ids(c->tok, tail, sizeof tail - 1, 1, &ids, &n)) && c->qwen3)
            st = care_append_ids(c->tok, think, sizeof think - 1, 1, &ids, &n);
    }
    free(sys);
    free(head);
    if (st) {
        free(ids);
        return qc_seterr(c->err, sizeof c->err, st, "cannot tokenize the message (is it UTF-8?)");
    }
    if (n >= (size_t)c->opts.n_ctx) {
        free(ids);
        return qc_seterr(c->err, sizeof c->err, QC_ERR_CONTEXT, "the message is longer than the context (%d tokens)",
                      c->opts.n_ctx);
    }
    *out = ids;
    *n_out = n;
    return QC_OK;
}

qc_status qc_care_reply(qc_care_t *c, const char *text, int emotion, const qc_sampling_t *sampling,
                        int max_tokens, qc_token_cb cb, void *user) {
    int32_t *ids;
    size_t n;
    qc_status st = qc_care_reply_ids(c, text, emotion, &ids, &n);
    if (st) return st;
    qc_generate_opts_t go = {.max_tokens = max_tokens};
    if (sampling) go.sampling = *sampling;
    else qc_model_sampling_defaults(c->m, &go.sampling);
    qc_ctx_truncate(c->gen, 0);
    size_t n_out = 0;
    st = qc_generate(c->gen, ids, n, &go, cb, user, NULL, &n_out);
    free(ids);
    if (st) return qc_seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(c->gen));
    return QC_OK;
}

/* ==== conversations ==== */

/* KV bytes a session's context holds now (the positions it uses). */
static size_t session_bytes(const qc_care_t *c, const session_t *s) {
    return s->ctx ? (size_t)qc_ctx_pos(s->ctx) * qc_model_kv_bytes_per_token(c->m) : 0;
}

size_t qc_care_sessions_bytes(const qc_care_t *c) {
    size_t b = 0;
    for (size_t i = 0; i < c->n_sessions; i++) b += session_bytes(c, c->sessions[i]);
    return b;
}

int qc_care_n_sessions(const qc_care_t *c, int *resident) {
    int r = 0;
    for (size_t i = 0; i < c->n_sessions; i++) r += c->sessions[i]->ctx != NULL;
    if (resident) *resident = r;
    return (int)c->n_sessions;
}

/* Frees the KV state of least recently used sessions (never `keep` or a
 * busy one) until the resident total fits the budget. */
static void evict(qc_care_t *c, const session_t *keep) {
    while (qc_care_sessions_bytes(c) > c->opts.session_budget) {
        session_t *lru = NULL;
        for (size_t i = 0; i < c->n_sessions; i++) {
            session_t *s = c->sessions[i];
            if (s != keep && !s->busy && s->ctx && (!lru || s->last_used < lru->last_used)) lru = s;
        }
        if (!lru) return;
        qc_ctx_free(lru->ctx);
        lru->ctx = NULL;
        lru->n_evaluated = 0;
    }
}

/* The session named id, created when new (the least recently used idle one
 * is dropped when there are max_sessions); NULL when out of memory. */
static session_t *session_get(qc_care_t *c, const char *id) {
    for (size_t i = 0; i < c->n_sessions; i++)
        if (!strcmp(c->sessions[i]->id, id)) return c->sessions[i];
    if (c->n_sessions >= (size_t)c->opts.max_sessions) {
        size_t old = c->n_sessions;
        for (size_t i = 0; i < c->n_sessions; i++)
            if (!c->sessions[i]->busy && (old == c->n_sessions || c->sessions[i]->last_used < c->sessions[old]->last_used))
                old = i;
        if (old == c->n_sessions) return NULL;
        if (c->opts.on_session_drop) c->opts.on_session_drop(c->opts.drop_user, c->sessions[old]->id);
        session_free(c->sessions[old]);
        c->sessions[old] = c->sessions[--c->n_sessions];
    }
    if (c->n_sessions == c->cap_sessions) {
        size_t cap = c->cap_sessions ? c->cap_sessions * 2 : 16;
        session_t **p = realloc(c->sessions, cap * sizeof *p);
        if (!p) return NULL;
        c->sessions = p;
        c->cap_sessions = cap;
    }
    session_t *s = calloc(1, sizeof *s);
    if (!s || !(s->id = strdup(id))) {
        free(s);
        return NULL;
    }
    c->sessions[c->n_sessions++] = s;
    return s;
}

/* Appends ids to the session's token list. */
static int session_push(session_t *s, const int32_t *ids, size_t n) {
    if (s->n_ids + n > s->cap_ids) {
        size_t cap = (s->n_ids + n) * 2;
        int32_t *p = realloc(s->ids, cap * sizeof *p);
        if (!p) return -1;
        s->ids = p;
        s->cap_ids = cap;
    }
    memcpy(s->ids + s->n_ids, ids, n * sizeof *ids);
    s->n_ids += n;
    return 0;
}

/* Records that a forward call ended at ids[end]. */
static qc_status span_push(qc_care_t *c, session_t *s, size_t end) {
    if (s->n_spans == s->cap_spans) {
        size_t cap = s->cap_spans ? s->cap_spans * 2 : 32;
        size_t *p = realloc(s->spans, cap * sizeof *p);
        if (!p) return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
        s->spans = p;
        s->cap_spans = cap;
    }
    s->spans[s->n_spans++] = end;
    return QC_OK;
}

/* Runs ids[n_evaluated .. end) as one forward call and records it. */
static qc_status session_eval(qc_care_t *c, session_t *s, size_t end) {
    if (end <= s->n_evaluated) return QC_OK;
    qc_status st = qc_ctx_eval(s->ctx, s->ids + s->n_evaluated, end - s->n_evaluated, NULL, QC_LOGITS_NONE);
    if (st) return qc_seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(s->ctx));
    if ((st = span_push(c, s, end))) return st;
    s->n_evaluated = end;
    return QC_OK;
}

/* Gives an evicted session its KV state back by repeating its calls. */
static qc_status session_restore(qc_care_t *c, session_t *s) {
    if (s->ctx) return QC_OK;
    qc_ctx_opts_t o = {.n_batch = 64};
    if (!(s->ctx = qc_ctx_new(c->m, c->opts.n_ctx, &o)))
        return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory for a conversation");
    size_t start = 0;
    for (size_t i = 0; i < s->n_spans; i++) {
        qc_status st = qc_ctx_eval(s->ctx, s->ids + start, s->spans[i] - start, NULL, QC_LOGITS_NONE);
        if (st) { /* no half-built state: the next turn tries the whole rebuild again */
            qc_seterr(c->err, sizeof c->err, st, "%s", qc_ctx_errmsg(s->ctx));
            qc_ctx_free(s->ctx);
            s->ctx = NULL;
            return st;
        }
        start = s->spans[i];
    }
    s->n_evaluated = start;
    qc_ctx_trim(s->ctx); /* a session keeps its KV state, not a rebuild's work buffers */
    return QC_OK;
}

typedef struct {
    session_t *s;
    qc_token_cb cb;
    void *user;
    int failed;
} turn_t;

/* Records each generated token in the session, then passes it on. */
static int on_turn_token(void *user, int32_t id, const char *piece, size_t len) {
    turn_t *t = user;
    if (id >= 0 && session_push(t->s, &id, 1)) {
        t->failed = 1;
        return 1;
    }
    return t->cb ? t->cb(t->user, id, piece, len) : 0;
}

/* What a turn changed, to undo it: the conversation's length before it
 * and, when it dropped old turns, the arrays as they were. */
typedef struct {
    size_t ids0, spans0, turns0;
    int dropped; /* oldest turns dropped to fit the context */
    int32_t *ids;
    size_t *spans, *turns;
    size_t n_ids, cap_ids, n_spans, cap_spans, n_turns, cap_turns;
} undo_t;

/* Undoes a failed turn: the conversation goes back to how it was before it
 * and its KV state is dropped, to be rebuilt exactly. */
static qc_status rollback(session_t *s, undo_t *u, qc_status st) {
    if (u->dropped) {
        free(s->ids);
        free(s->spans);
        free(s->turns);
        s->ids = u->ids, s->cap_ids = u->cap_ids;
        s->spans = u->spans, s->cap_spans = u->cap_spans;
        s->turns = u->turns, s->cap_turns = u->cap_turns;
        u->dropped = 0;
    }
    s->n_ids = u->ids0;
    s->n_spans = u->spans0;
    s->n_turns = u->turns0;
    qc_ctx_free(s->ctx);
    s->ctx = NULL;
    s->n_evaluated = 0;
    return st;
}

/* A turn that succeeded: the arrays from before a drop are freed. */
static void undo_commit(undo_t *u) {
    if (!u->dropped) return;
    free(u->ids);
    free(u->spans);
    free(u->turns);
}

/* Drops the oldest turns (keeping the system prompt) until the
 * conversation leaves n_ctx / TURN_ROOM_DIV tokens for the reply, or only
 * the newest turn is left; the old arrays go to u for a rollback and the
 * KV state starts over (the positions changed). QC_ERR_CONTEXT when even
 * the newest turn alone does not fit. */
static qc_status drop_old_turns(qc_care_t *c, session_t *s, undo_t *u) {
    size_t n_ctx = (size_t)c->opts.n_ctx, room = n_ctx / TURN_ROOM_DIV, k = 0;
    if (s->n_ids + room <= n_ctx) return QC_OK;
    while (k + 1 < s->n_turns && s->n_head + (s->n_ids - s->turns[k]) + room > n_ctx) k++;
    size_t cut = s->turns[k] - s->n_head, n = s->n_ids - cut;
    if (k == 0 || n >= n_ctx)
        return s->n_ids < n_ctx ? QC_OK
                                : qc_seterr(c->err, sizeof c->err, QC_ERR_CONTEXT,
                                            "the message is longer than the conversation's context (%zu tokens)", n_ctx);
    int32_t *ids = malloc(n * sizeof *ids);
    size_t *turns = malloc((s->n_turns - k) * sizeof *turns);
    if (!ids || !turns) {
        free(ids);
        free(turns);
        return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
    }
    memcpy(ids, s->ids, s->n_head * sizeof *ids);
    memcpy(ids + s->n_head, s->ids + s->turns[k], (s->n_ids - s->turns[k]) * sizeof *ids);
    for (size_t i = k; i < s->n_turns; i++) turns[i - k] = s->turns[i] - cut;
    *u = (undo_t){u->ids0, u->spans0, u->turns0, (int)k, s->ids, s->spans, s->turns,
                  s->n_ids, s->cap_ids, s->n_spans, s->cap_spans, s->n_turns, s->cap_turns};
    s->ids = ids, s->n_ids = s->cap_ids = n;
    s->turns = turns, s->n_turns = s->cap_turns = s->n_turns - k;
    s->spans = NULL, s->n_spans = s->cap_spans = 0;
    s->n_evaluated = 0;
    if (s->ctx) qc_ctx_truncate(s->ctx, 0);
    return QC_OK;
}

/* Opens a turn of session_id: restores its KV state and appends the turn's
 * tokens (the previous reply's end, the tone for this message's emotion as
 * a system note, the user's text (never parsed for special tokens), the
 * assistant's start; the first turn opens with the adviser's system
 * prompt). When the conversation would leave too little room for the
 * reply, its oldest turns are dropped (drop_old_turns). What to undo is in
 * *u. */
static qc_status turn_open(qc_care_t *c, const char *session_id, const char *text, int emotion, session_t **out,
                           undo_t *u, int restore) {
    static const char tail[] = "<|im_end|>\n<|im_start|>assistant\n", think[] = "<think>\n\n</think>\n\n",
                      end_turn[] = "<|im_end|>\n";
    if (!session_id || !text) return qc_seterr(c->err, sizeof c->err, QC_ERR_ARG, "bad arguments");
    session_t *s = session_get(c, session_id);
    if (!s) return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
    if (s->busy) return qc_seterr(c->err, sizeof c->err, QC_ERR_BUSY, "session '%s' is answering a message", session_id);
    s->last_used = ++c->clock;
    qc_status st = restore ? session_restore(c, s) : QC_OK;
    if (st) return st;

    int32_t *ids = NULL;
    size_t n = 0, own; /* own: where the turn's own tokens start in ids */
    char *head = NULL;
    if (s->n_ids == 0) {
        char *sys = qc_prompt_reply_system(-1);
        size_t hl = sys ? strlen(sys) + 64 : 0;
        if (sys && (head = malloc(hl))) snprintf(head, hl, "<|im_start|>system\n%s<|im_end|>\n", sys);
        free(sys);
        if (!head) return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
        st = care_append_ids(c->tok, head, strlen(head), 1, &ids, &n);
        free(head);
    } else {
        st = care_append_ids(c->tok, end_turn, sizeof end_turn - 1, 1, &ids, &n);
    }
    own = n;
    const char *tone = qc_prompt_reply_tone(emotion);
    if (!st && *tone) {
        size_t tl = strlen(tone) + 64;
        char *note = malloc(tl);
        if (!note) st = QC_ERR_NOMEM;
        else {
            snprintf(note, tl, "<|im_start|>system\n%s<|im_end|>\n", tone);
            st = care_append_ids(c->tok, note, strlen(note), 1, &ids, &n);
            free(note);
        }
    }
    if (!st) st = care_append_ids(c->tok, "<|im_start|>user\n", 17, 1, &ids, &n);
    if (!st) st = care_append_ids(c->tok, text, strlen(text), 0, &ids, &n);
    if (!st) st = care_append_ids(c->tok, tail, sizeof tail - 1, 1, &ids, &n);
    if (!st && c->qwen3) st = care_append_ids(c->tok, think, sizeof think - 1, 1, &ids, &n);
    *u = (undo_t){.ids0 = s->n_ids, .spans0 = s->n_spans, .turns0 = s->n_turns};
    if (!st && s->n_turns == s->cap_turns) {
        size_t cap = s->cap_turns ? s->cap_turns * 2 : 8;
        size_t *p = realloc(s->turns, cap * sizeof *p);
        if (p) s->turns = p, s->cap_turns = cap;
        else st = QC_ERR_NOMEM;
    }
    if (st || session_push(s, ids, n)) {
        free(ids);
        s->n_ids = u->ids0;
        return qc_seterr(c->err, sizeof c->err, st ? st : QC_ERR_NOMEM, "cannot tokenize the message (is it UTF-8?)");
    }
    free(ids);
    if (!u->ids0) s->n_head = own;
    s->turns[s->n_turns++] = u->ids0 + own;
    if ((st = drop_old_turns(c, s, u))) {
        s->n_ids = u->ids0;
        s->n_turns = u->turns0;
        return st;
    }
    *out = s;
    return QC_OK;
}

qc_status qc_care_chat(qc_care_t *c, const char *session_id, const char *text, int emotion,
                       const qc_sampling_t *sampling, int max_tokens, qc_token_cb cb, void *user) {
    if (max_tokens <= 0) return qc_seterr(c->err, sizeof c->err, QC_ERR_ARG, "bad arguments");
    session_t *s;
    undo_t u;
    qc_status st = turn_open(c, session_id, text, emotion, &s, &u, 1);
    if (st) return st;

    /* Everything not yet in the KV state but the turn's last token goes in
     * one call; qc_generate then runs that token and one call per reply
     * token, which the spans record for an exact rebuild. */
    if ((st = session_eval(c, s, s->n_ids - 1))) return rollback(s, &u, st);
    qc_generate_opts_t go = {.max_tokens = max_tokens};
    if (sampling) go.sampling = *sampling;
    else qc_model_sampling_defaults(c->m, &go.sampling);
    turn_t t = {s, cb, user, 0};
    size_t before = s->n_ids, n_out = 0;
    int32_t last = s->ids[s->n_ids - 1];
    st = qc_generate(s->ctx, &last, 1, &go, on_turn_token, &t, NULL, &n_out);
    if (st || t.failed) {
        qc_seterr(c->err, sizeof c->err, st ? st : QC_ERR_NOMEM, "%s", st ? qc_ctx_errmsg(s->ctx) : "out of memory");
        return rollback(s, &u, st ? st : QC_ERR_NOMEM);
    }
    /* Record qc_generate's calls: the turn's last token, then each reply
     * token it ran (all but the last when it stopped at max_tokens). */
    size_t evaluated = (size_t)qc_ctx_pos(s->ctx);
    for (size_t e = before; e <= evaluated && e <= s->n_ids; e++)
        if ((st = span_push(c, s, e))) return rollback(s, &u, st);
    s->n_evaluated = evaluated;
    undo_commit(&u);
    qc_ctx_trim(s->ctx);
    evict(c, s);
    return QC_OK;
}

/* ==== a turn driven from outside (the server's batching scheduler) ==== */

struct qc_care_turn {
    qc_care_t *c;
    session_t *s;
    undo_t u;
    int failed;
};

int qc_care_turn_dropped(const qc_care_turn_t *t) { return t->u.dropped; }

qc_status qc_care_turn_begin(qc_care_t *c, const char *session_id, const char *text, int emotion,
                             qc_care_turn_t **out) {
    *out = NULL;
    qc_care_turn_t *t = calloc(1, sizeof *t);
    if (!t) return qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
    qc_status st = turn_open(c, session_id, text, emotion, &t->s, &t->u, 1);
    if (st) {
        free(t);
        return st;
    }
    t->c = c;
    t->s->busy = 1;
    *out = t;
    return QC_OK;
}

qc_ctx_t *qc_care_turn_ctx(const qc_care_turn_t *t) { return t->s->ctx; }

size_t qc_care_turn_pending(const qc_care_turn_t *t, const int32_t **ids) {
    *ids = t->s->ids + t->s->n_evaluated;
    return t->s->n_ids - t->s->n_evaluated;
}

qc_status qc_care_turn_evaluated(qc_care_turn_t *t, size_t n) {
    session_t *s = t->s;
    if (n == 0 || n > s->n_ids - s->n_evaluated) {
        t->failed = 1;
        return qc_seterr(t->c->err, sizeof t->c->err, QC_ERR_ARG, "%zu tokens evaluated, %zu pending", n,
                      s->n_ids - s->n_evaluated);
    }
    qc_status st = span_push(t->c, s, s->n_evaluated + n);
    if (st) t->failed = 1;
    else s->n_evaluated += n;
    return st;
}

qc_status qc_care_turn_push(qc_care_turn_t *t, int32_t id) {
    if (session_push(t->s, &id, 1)) {
        t->failed = 1;
        return qc_seterr(t->c->err, sizeof t->c->err, QC_ERR_NOMEM, "out of memory");
    }
    return QC_OK;
}

void qc_care_turn_end(qc_care_turn_t *t, int ok) {
    if (!t) return;
    session_t *s = t->s;
    s->busy = 0;
    if (!ok || t->failed) {
        rollback(s, &t->u, QC_OK);
    } else {
        undo_commit(&t->u);
        evict(t->c, s);
    }
    free(t);
}

/* ==== a conversation rebuilt from its record ==== */

int qc_care_has_session(const qc_care_t *c, const char *session_id) {
    for (size_t i = 0; i < c->n_sessions; i++)
        if (!strcmp(c->sessions[i]->id, session_id)) return 1;
    return 0;
}

/* The turn is opened as a live one would be (the same tokens from its text
 * and emotion, the same dropping of old turns), then compared with what the
 * record says that turn ran; the forward calls it made are recorded as
 * spans without running them, so the session is left evicted and its next
 * turn rebuilds its KV state by making those calls (session_restore). */
qc_status qc_care_session_replay(qc_care_t *c, const char *session_id, const qc_care_past_t *p, size_t chunk) {
    if (!session_id || !p || !p->text || !chunk || (p->n_prompt && !p->prompt) || (p->n_reply && !p->reply))
        return qc_seterr(c->err, sizeof c->err, QC_ERR_ARG, "bad arguments");
    for (size_t i = 0; i < c->n_sessions; i++)
        if (!strcmp(c->sessions[i]->id, session_id) && (c->sessions[i]->ctx || c->sessions[i]->busy))
            return qc_seterr(c->err, sizeof c->err, QC_ERR_BUSY, "session '%s' holds its KV state", session_id);
    session_t *s;
    undo_t u;
    qc_status st = turn_open(c, session_id, p->text, p->emotion, &s, &u, 0);
    if (st) return st;
    size_t from = s->n_spans ? s->spans[s->n_spans - 1] : 0; /* what a restore leaves in the KV state */
    if (u.dropped != p->dropped || s->n_ids - from != p->n_prompt ||
        memcmp(s->ids + from, p->prompt, p->n_prompt * sizeof *p->prompt)) {
        rollback(s, &u, QC_OK);
        return qc_seterr(c->err, sizeof c->err, QC_ERR_ARG, "the recorded turn does not continue the conversation");
    }
    for (size_t e = from; e < s->n_ids && !st;) {
        e += s->n_ids - e < chunk ? s->n_ids - e : chunk;
        st = span_push(c, s, e);
    }
    size_t run = p->n_reply ? p->n_reply - (p->last_run ? 0 : 1) : 0, at = s->n_ids;
    if (!st && session_push(s, p->reply, p->n_reply))
        st = qc_seterr(c->err, sizeof c->err, QC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < run && !st; i++) st = span_push(c, s, at + i + 1);
    if (st) return rollback(s, &u, st);
    undo_commit(&u);
    s->n_evaluated = 0;
    return QC_OK;
}

qc_status qc_care_end_session(qc_care_t *c, const char *session_id) {
    for (size_t i = 0; i < c->n_sessions; i++)
        if (!strcmp(c->sessions[i]->id, session_id)) {
            if (c->sessions[i]->busy)
                return qc_seterr(c->err, sizeof c->err, QC_ERR_BUSY, "session '%s' is answering a message", session_id);
            session_free(c->sessions[i]);
            c->sessions[i] = c->sessions[--c->n_sessions];
            return QC_OK;
        }
    return qc_seterr(c->err, sizeof c->err, QC_ERR_ARG, "no session '%s'", session_id);
}
