/* sched.c — continuous batching: one thread runs the model for every
 * request (see sched.h).
 *
 * A pass: every generating request puts in its next token (decode), then the
 * requests still reading their prompt put in a chunk of it (at most
 * QS_CHUNK tokens each, while the pass has room for QS_PASS_TOKENS), and
 * qc_batch_eval runs them all at once. After the pass each request whose
 * prompt is done samples its next token. Because qc_batch_eval gives each
 * sequence exactly what it would get alone, batching never changes a reply:
 * a seeded request answers the same at any load.
 *
 * A judgment (QS_EMOTION, QS_ANALYZE before its reply, QS_CLASSIFY) is a
 * prefill of the message on a cached task prefix (qc_care_classify_begin):
 * it rides in the passes like a prompt, in the runs of QC_JUDGE_CHUNK
 * tokens qc_care_classify makes, so the scores are the same. QS_ANALYZE
 * with a `risk` task judges it too, after the emotion. Between
 * passes the thread admits queued requests (up to `parallel` at once).
 * Conversations keep their KV state in the care pipeline's sessions; the
 * scheduler drives their turns with qc_care_turn_*.
 *
 * Heartbeat: the thread notes when each loop (admission, then one pass)
 * begins; qs_sched_stall_s is the time since, while work waits or runs
 * (the server's /health watchdog). After each pass it notes the KV state
 * in use for /metrics (note_kv). */
#include "server/sched.h"

#include "base/base.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QS_CHUNK 32         /* prompt tokens of one request per pass (< 64: llama.cpp's small-batch attention) */
#define QS_JUDGE_RUN QC_JUDGE_CHUNK /* a judgment's tokens per pass: the runs qc_care_classify makes */
#define QS_PASS_TOKENS 256  /* tokens of one pass */

/* A request that is generating. */
typedef struct {
    qs_request_t *r;
    qc_ctx_t *ctx;
    int slot;                /* its context from the pool, or -1 (a conversation's own) */
    qc_care_turn_t *turn;    /* a conversation's turn */
    qc_care_judge_t *judge;  /* the judgment (emotion, urgency, labels), before any reply */
    int judging_risk;        /* judge is r->risk's, after the emotion's */
    int emotion;             /* the emotion judged, for the reply */
    int32_t *own;            /* prompt tokens owned here (a one-off reply) */
    const int32_t *prompt;
    size_t n_prompt, off;    /* prompt tokens, those run so far */
    int32_t next;            /* the sampled token, run in the next pass */
    qc_sampler_t *smp;
    int32_t *hist;
    size_t n_hist, cap_hist;
    qc_detok_t dt;
    size_t n_out;
    float *logits;           /* [n_vocab] */
    float *raw;              /* [n_vocab] the logits before sampling changes them (logprobs), or NULL */
    qc_ctx_t *own_ctx;       /* a context of its own (prompt_logprobs: its prompt runs alone), or NULL */
    int run;                 /* tokens it put into the current pass */
} gen_t;

struct qs_sched {
    qc_model_t *m;
    qc_care_t *care;
    const qc_tokenizer_t *tok;
    int parallel, queue_max, n_vocab;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qs_request_t *head, *tail; /* the queue */
    int n_queued, n_active, stopping;
    /* the thread's own */
    gen_t *gen;                /* [parallel] */
    qc_ctx_t **slots;          /* [parallel] contexts for one-off replies and completions */
    int *slot_used;
    qc_batch_t *batch;
    qs_stats_t st;             /* under mu */
    /* the watchdog's heartbeat (/health), under mu: the start of the
     * thread's current loop, and whether it waits for work */
    double beat_ms;
    int idle;
    atomic_int stall_ms;       /* the test hook's sleep per loop (qs_sched_test_stall) */
};

/* ==== the queue ==== */

qc_status qs_submit(qs_sched_t *s, qs_request_t *r) {
    pthread_mutex_lock(&s->mu);
    qc_status st = QC_OK;
    /* waiting beyond the free slots is what the queue limits */
    int free_slots = s->parallel - s->n_active > 0 ? s->parallel - s->n_active : 0;
    int waiting = s->n_queued;
    if (waiting >= s->queue_max + free_slots) /* cancelled ones (clients gone) leave at the next admission */
        for (const qs_request_t *q = s->head; q; q = q->next) waiting -= atomic_load(&q->cancel) != 0;
    if (s->stopping) st = QC_ERR_CANCELLED;
    else if (waiting >= s->queue_max + free_slots) st = QC_ERR_BUSY;
    else {
        r->next = NULL;
        if (s->tail) s->tail->next = r;
        else s->head = r;
        s->tail = r;
        s->n_queued++;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

double qs_sched_stall_s(qs_sched_t *s) {
    pthread_mutex_lock(&s->mu);
    /* idle: waiting on cv, maybe just signalled (the wake-up is not a stall) */
    int waits = !s->idle && (s->head || s->n_active);
    double v = waits ? (qc_now_ms() - s->beat_ms) / 1e3 : 0;
    pthread_mutex_unlock(&s->mu);
    return v > 0 ? v : 0;
}

void qs_sched_test_stall(qs_sched_t *s, int ms) { atomic_store(&s->stall_ms, ms > 0 ? ms : 0); }

void qs_stats(qs_sched_t *s, qs_stats_t *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->queued = s->n_queued;
    out->active = s->n_active;
    pthread_mutex_unlock(&s->mu);
}

/* ==== one request's life on the thread ==== */

static void update_sessions(qs_sched_t *s) {
    int resident = 0, n = qc_care_n_sessions(s->care, &resident);
    size_t bytes = qc_care_sessions_bytes(s->care);
    pthread_mutex_lock(&s->mu);
    s->st.sessions = n;
    s->st.resident = resident;
    s->st.session_bytes = bytes;
    pthread_mutex_unlock(&s->mu);
}

/* Ends a generating request: the rest of its text, its turn kept (st ==
 * QC_OK) or undone, its slot freed, then on_done (after which r may be
 * gone). */
static void finish(qs_sched_t *s, gen_t *g, qc_status st, const char *msg, int hit_max) {
    qs_request_t *r = g->r;
    if (st == QC_OK) {
        char piece[64];
        long len = qc_detok_flush(&g->dt, piece, sizeof piece);
        if (len > 0) r->on_piece(r->user, piece, (size_t)len);
    }
    if (g->turn) qc_care_turn_end(g->turn, st == QC_OK);
    qc_care_judge_free(g->judge);
    if (g->slot >= 0) s->slot_used[g->slot] = 0;
    qc_sampler_free(g->smp);
    qc_ctx_free(g->own_ctx);
    free(g->hist);
    free(g->own);
    free(g->logits);
    free(g->raw);
    size_t n_prompt = g->n_prompt, n_out = g->n_out;
    int had_turn = g->turn != NULL;
    memset(g, 0, sizeof *g);
    pthread_mutex_lock(&s->mu);
    s->n_active--;
    if (st == QC_ERR_CANCELLED && !r->stopped) s->st.cancelled++;
    pthread_mutex_unlock(&s->mu);
    if (had_turn) update_sessions(s);
    r->on_done(r->user, st, msg, n_prompt, n_out, hit_max);
}

/* The log-probability of token id and the k best from row, the raw
 * next-token logits. */
static void logprob_of(const float *row, int32_t nv, int32_t id, int k, qs_logprob_t *lp) {
    double lse = qc_logsumexp(row, nv);
    float v[QS_TOP_LOGPROBS];
    lp->id = id;
    lp->logprob = (double)row[id] - lse;
    lp->n_top = qc_top_k(row, nv, k < QS_TOP_LOGPROBS ? k : QS_TOP_LOGPROBS, lp->top_id, v);
    for (int i = 0; i < lp->n_top; i++) lp->top_logprob[i] = (double)v[i] - lse;
}

static void advance(qs_sched_t *s, gen_t *g);

/* Runs g's whole prompt on its own context in chunks of QS_CHUNK tokens
 * (the cuts of a batched prefill, so its KV state and the first sampled
 * token are the same as without), reporting each prompt token's
 * log-probability from the row before it; then samples (or ends, for
 * max_tokens 0). On this thread, not batched: the other requests wait. */
static void prompt_alone(qs_sched_t *s, gen_t *g) {
    qs_request_t *r = g->r;
    size_t nv = (size_t)s->n_vocab;
    float *rows = malloc(QS_CHUNK * nv * sizeof *rows);
    if (!rows) {
        finish(s, g, QC_ERR_NOMEM, "out of memory", 0);
        return;
    }
    double t0 = qc_now_s();
    qc_status st = QC_OK;
    for (size_t off = 0; off < g->n_prompt && !st; off += QS_CHUNK) {
        size_t k = g->n_prompt - off < QS_CHUNK ? g->n_prompt - off : QS_CHUNK;
        if ((st = qc_ctx_eval(g->ctx, g->prompt + off, k, rows, QC_LOGITS_ALL))) break;
        for (size_t j = 0; j < k && off + j + 1 < g->n_prompt; j++) {
            qs_logprob_t lp;
            logprob_of(rows + j * nv, s->n_vocab, g->prompt[off + j + 1], r->top_logprobs, &lp);
            r->on_logprob(r->user, 1, &lp);
        }
        if (off + k == g->n_prompt) memcpy(g->logits, rows + (k - 1) * nv, nv * sizeof *rows);
    }
    free(rows);
    pthread_mutex_lock(&s->mu);
    s->st.busy_s += qc_now_s() - t0;
    s->st.prompt_tokens += g->n_prompt;
    pthread_mutex_unlock(&s->mu);
    if (st) {
        finish(s, g, st, qc_ctx_errmsg(g->ctx), 0);
        return;
    }
    g->off = g->n_prompt;
    if (r->max_tokens == 0) finish(s, g, QC_OK, "", 1);
    else advance(s, g);
}

/* The reply phase of g (QS_ANALYZE once its emotion is known, at once for
 * QS_COMPLETION): its context, prompt and sampler. */
static void start_reply(qs_sched_t *s, gen_t *g, int emotion) {
    qs_request_t *r = g->r;
    qc_status st = QC_OK;
    g->off = 0;
    if (r->kind == QS_ANALYZE && r->session) {
        double t0 = qc_now_ms();
        int held = qc_care_has_session(s->care, r->session);
        if (held && r->reset) { /* a stale cache of the records: the history is the conversation */
            if ((st = qc_care_end_session(s->care, r->session))) { /* busy: a turn of it runs */
                finish(s, g, st, qc_care_errmsg(s->care), 0);
                return;
            }
            held = 0;
            pthread_mutex_lock(&s->mu);
            s->st.stale_drops++;
            pthread_mutex_unlock(&s->mu);
        }
        int rebuild = r->n_history && !held;
        for (size_t i = 0; rebuild && i < r->n_history; i++) {
            qc_status rs = qc_care_session_replay(s->care, r->session, &r->history[i], QS_CHUNK);
            if (rs == QC_OK) r->rebuilt++;
            else if (rs == QC_ERR_ARG) r->rebuild_skipped++; /* a turn that did not continue it */
            else { /* no half-rebuilt conversation: the next turn tries again */
                finish(s, g, rs, qc_care_errmsg(s->care), 0);
                qc_care_end_session(s->care, r->session);
                return;
            }
        }
        st = qc_care_turn_begin(s->care, r->session, r->text, emotion, &g->turn); /* the KV state rebuilt here */
        if (rebuild) {
            r->rebuild_ms = qc_now_ms() - t0;
            pthread_mutex_lock(&s->mu);
            s->st.rebuilds += r->rebuilt > 0;
            s->st.rebuilt_turns += (unsigned)r->rebuilt;
            s->st.rebuild_s += r->rebuild_ms / 1000;
            pthread_mutex_unlock(&s->mu);
        }
        if (st) {
            finish(s, g, st, qc_care_errmsg(s->care), 0);
            return;
        }
        g->ctx = qc_care_turn_ctx(g->turn);
        g->n_prompt = qc_care_turn_pending(g->turn, &g->prompt);
        r->dropped_turns = qc_care_turn_dropped(g->turn);
    } else {
        if (r->kind == QS_ANALYZE) {
            if ((st = qc_care_reply_ids(s->care, r->text, emotion, &g->own, &g->n_prompt))) {
                finish(s, g, st, qc_care_errmsg(s->care), 0);
                return;
            }
            g->prompt = g->own;
        } else {
            g->prompt = r->ids;
            g->n_prompt = r->n_ids;
        }
        if (r->prompt_logprobs) { /* every prompt row's logits are wanted: a context with its own buffers */
            qc_ctx_opts_t o = {.n_batch = QS_CHUNK};
            if (!(g->own_ctx = qc_ctx_new(s->m, qc_ctx_size(s->slots[0]), &o))) {
                finish(s, g, QC_ERR_NOMEM, "out of memory", 0);
                return;
            }
            g->ctx = g->own_ctx;
        } else {
            for (int i = 0; i < s->parallel && g->slot < 0; i++)
                if (!s->slot_used[i]) g->slot = i;
            if (g->slot < 0) { /* cannot happen: a generation entry is free, so is a context */
                finish(s, g, QC_ERR_INTERNAL, "internal error: no free context", 0);
                return;
            }
            s->slot_used[g->slot] = 1;
            g->ctx = s->slots[g->slot];
            qc_ctx_truncate(g->ctx, 0);
        }
    }
    qc_sampling_t sp;
    if (r->use_sampling) sp = r->sampling;
    else qc_model_sampling_defaults(s->m, &sp);
    /* The sampler's history as qc_generate keeps it: the prompt it was
     * given (a conversation's turn: qc_care_chat gives its last token). */
    size_t hist0 = g->turn ? 1 : g->n_prompt;
    g->cap_hist = hist0 + (size_t)r->max_tokens + 1;
    g->hist = malloc(g->cap_hist * sizeof *g->hist);
    g->smp = qc_sampler_new(s->n_vocab, &sp);
    if (!g->hist || !g->smp || !g->n_prompt) {
        finish(s, g, g->n_prompt ? QC_ERR_NOMEM : QC_ERR_ARG, g->n_prompt ? "out of memory" : "an empty prompt", 0);
        return;
    }
    memcpy(g->hist, g->prompt + g->n_prompt - hist0, hist0 * sizeof *g->hist);
    g->n_hist = hist0;
    if (r->prompt_ids) {
        r->prompt_ids->n = 0;
        qc_ids_add(r->prompt_ids, g->prompt, g->n_prompt);
    }
    qc_ids_t *out = r->reply_ids; /* room for the whole reply now: nothing is allocated per token */
    if (out && out->cap - out->n < (size_t)r->max_tokens) {
        int32_t *p = realloc(out->p, (out->n + (size_t)r->max_tokens) * sizeof *p);
        if (p) out->p = p, out->cap = out->n + (size_t)r->max_tokens;
    }
    if (r->logprobs && !(g->raw = malloc((size_t)s->n_vocab * sizeof *g->raw))) {
        finish(s, g, QC_ERR_NOMEM, "out of memory", 0);
        return;
    }
    if (r->prompt_logprobs) prompt_alone(s, g);
    else if (r->max_tokens == 0) finish(s, g, QC_OK, "", 1);
}

/* Begins g's judgment of task t on its text, run in the passes like a
 * prompt. */
static void judge(qs_sched_t *s, gen_t *g, const qc_labels_t *t) {
    qs_request_t *r = g->r;
    qc_status st = qc_care_classify_begin(s->care, t, r->text, strlen(r->text), &g->judge);
    if (st) {
        finish(s, g, st, qc_care_errmsg(s->care), 0);
        return;
    }
    g->ctx = qc_care_judge_ctx(g->judge);
    g->n_prompt = qc_care_judge_tokens(g->judge, &g->prompt);
    g->off = 0;
    if (r->kind == QS_EMOTION && r->prompt_ids) qc_ids_add(r->prompt_ids, g->prompt, g->n_prompt);
}

/* Starts r in a free generation entry (admission keeps one for it): the
 * emotion judgment first (QS_EMOTION, QS_ANALYZE), run in the passes like
 * a prompt, or the reply at once (QS_COMPLETION). */
static void start(qs_sched_t *s, qs_request_t *r) {
    if (atomic_load(&r->cancel)) {
        pthread_mutex_lock(&s->mu);
        s->st.cancelled++;
        pthread_mutex_unlock(&s->mu);
        r->on_done(r->user, QC_ERR_CANCELLED, "cancelled", 0, 0, 0);
        return;
    }
    if (r->kind == QS_END_SESSION) { /* the care pipeline is this thread's: dropped here, between passes */
        qc_status st = qc_care_end_session(s->care, r->session);
        if (st == QC_ERR_ARG) st = QC_OK; /* no such conversation: nothing to drop */
        update_sessions(s);
        r->on_done(r->user, st, st ? qc_care_errmsg(s->care) : "", 0, 0, 0);
        return;
    }
    gen_t *g = NULL;
    for (int i = 0; i < s->parallel && !g; i++)
        if (!s->gen[i].r) g = &s->gen[i];
    if (!g) { /* cannot happen: admission counts the entries */
        r->on_done(r->user, QC_ERR_INTERNAL, "internal error: no free generation entry", 0, 0, 0);
        return;
    }
    memset(g, 0, sizeof *g);
    g->slot = -1;
    g->r = r;
    qc_detok_init(&g->dt);
    pthread_mutex_lock(&s->mu);
    s->n_active++;
    pthread_mutex_unlock(&s->mu);
    if (!(g->logits = malloc((size_t)s->n_vocab * sizeof(float)))) {
        finish(s, g, QC_ERR_NOMEM, "out of memory", 0);
        return;
    }
    if (r->kind == QS_COMPLETION) {
        start_reply(s, g, 0);
        return;
    }
    const qc_labels_t *t = r->kind == QS_CLASSIFY ? r->labels : qc_care_emotion_labels(s->care);
    judge(s, g, t);
}

/* After the pass that ran a judgment's last tokens: the emotion (then the
 * urgency opinion when asked, then the reply for QS_ANALYZE) or the
 * scores (QS_CLASSIFY). */
static void judged(qs_sched_t *s, gen_t *g) {
    qs_request_t *r = g->r;
    qc_emotion_t e;
    qc_scores_t sc;
    int scores = r->kind == QS_CLASSIFY || g->judging_risk;
    double t0 = qc_now_s();
    qc_status st = scores ? qc_care_judge_scores(g->judge, g->logits, &sc) : qc_care_judge_end(g->judge, g->logits, &e);
    g->judge = NULL;
    pthread_mutex_lock(&s->mu);
    s->st.busy_s += qc_now_s() - t0;
    pthread_mutex_unlock(&s->mu);
    if (st) {
        finish(s, g, st, qc_care_errmsg(s->care), 0);
        return;
    }
    if (scores) {
        r->on_scores(r->user, &sc);
    } else {
        r->on_emotion(r->user, &e);
        g->emotion = e.label;
    }
    if (r->kind != QS_ANALYZE) {
        finish(s, g, QC_OK, "", 0);
    } else if (r->risk && !g->judging_risk) {
        g->judging_risk = 1;
        judge(s, g, r->risk);
    } else {
        start_reply(s, g, g->emotion);
    }
}

/* After a pass: g's logits are ready. Samples, streams and decides whether
 * g goes on. */
static void advance(qs_sched_t *s, gen_t *g) {
    qs_request_t *r = g->r;
    if (g->raw) memcpy(g->raw, g->logits, (size_t)s->n_vocab * sizeof *g->raw);
    int32_t id = qc_sampler_sample(g->smp, g->logits, g->hist, g->n_hist);
    if (qc_model_is_eog(s->m, id)) {
        finish(s, g, QC_OK, "", 0);
        return;
    }
    g->hist[g->n_hist++] = id;
    g->n_out++;
    if (r->reply_ids && r->reply_ids->n < r->reply_ids->cap) r->reply_ids->p[r->reply_ids->n++] = id;
    if (g->turn && qc_care_turn_push(g->turn, id)) {
        finish(s, g, QC_ERR_NOMEM, "out of memory", 0);
        return;
    }
    if (g->raw) {
        qs_logprob_t lp;
        logprob_of(g->raw, s->n_vocab, id, r->top_logprobs, &lp);
        r->on_logprob(r->user, 0, &lp);
    }
    char piece[512];
    long len = qc_detok_push(&g->dt, s->tok, id, piece, sizeof piece);
    if (len < 0) len = 0, piece[0] = 0;
    if (r->on_piece(r->user, piece, (size_t)len)) { /* a stop string, or the client is gone */
        int gone = atomic_load(&r->cancel);
        finish(s, g, gone ? QC_ERR_CANCELLED : QC_OK, gone ? "cancelled" : "", 0);
        return;
    }
    if (g->n_out >= (size_t)r->max_tokens || qc_ctx_pos(g->ctx) >= qc_ctx_size(g->ctx)) {
        finish(s, g, QC_OK, "", 1);
        return;
    }
    g->next = id;
}

/* One pass of the model over every generating request. */
static void pass(qs_sched_t *s) {
    int P = s->parallel, k = 0, budget = QS_PASS_TOKENS + P;
    qc_ctx_t *cs[P];
    const int32_t *ids[P];
    int n[P];
    float *lo[P];
    gen_t *who[P];
    for (int i = 0; i < P; i++) {
        gen_t *g = &s->gen[i];
        if (g->r && atomic_load(&g->r->cancel)) finish(s, g, QC_ERR_CANCELLED, "cancelled", 0);
    }
    unsigned long long dec = 0, pre = 0;
    /* the next token of every request past its prompt, then emotion
     * judgments' tokens, then prompt chunks; runs of a fixed size (never cut
     * by the room left, so a request's passes do not depend on the load) */
    for (int phase = 0; phase < 3; phase++)
        for (int i = 0; i < P; i++) {
            gen_t *g = &s->gen[i];
            int prefill = g->r && g->off < g->n_prompt;
            if (!g->r || prefill != (phase > 0) || (phase == 1) != (g->judge != NULL)) continue;
            const int32_t *t;
            int len;
            size_t left = g->n_prompt - g->off, run = g->judge ? QS_JUDGE_RUN : QS_CHUNK;
            if (g->turn) {
                size_t pend = qc_care_turn_pending(g->turn, &t);
                len = (int)(pend < QS_CHUNK ? pend : QS_CHUNK);
            } else if (phase) {
                t = g->prompt + g->off;
                len = (int)(left < run ? left : run);
            } else {
                t = &g->next;
                len = 1;
            }
            if (len > budget) continue;
            budget -= len;
            g->run = len;
            cs[k] = g->ctx, ids[k] = t, n[k] = len, who[k] = g;
            lo[k] = !phase || g->off + (size_t)len == g->n_prompt ? g->logits : NULL;
            if (phase) pre += (unsigned long long)len;
            else dec++;
            k++;
        }
    if (!k) return;
    double t0 = qc_now_s();
    qc_status st = qc_batch_eval(s->batch, cs, ids, n, lo, k);
    double dt = qc_now_s() - t0;
    pthread_mutex_lock(&s->mu);
    s->st.passes++;
    s->st.pass_tokens += dec + pre;
    s->st.decode_tokens += dec;
    s->st.prompt_tokens += pre;
    s->st.busy_s += dt;
    if (!pre) {
        s->st.decode_s += dt;
        s->st.decode_pass_tokens += dec;
    }
    pthread_mutex_unlock(&s->mu);
    for (int q = 0; q < k; q++) {
        gen_t *g = who[q];
        if (st) { /* the scheduler's own arguments were refused: an internal error */
            char msg[300];
            snprintf(msg, sizeof msg, "internal error: %s", qc_batch_errmsg(s->batch));
            finish(s, g, QC_ERR_INTERNAL, msg, 0);
            continue;
        }
        if (g->turn && qc_care_turn_evaluated(g->turn, (size_t)g->run)) {
            finish(s, g, QC_ERR_NOMEM, qc_care_errmsg(s->care), 0);
            continue;
        }
        if (g->off < g->n_prompt) {
            g->off += (size_t)g->run;
            if (g->off < g->n_prompt) continue;
        }
        if (g->judge) judged(s, g);
        else advance(s, g);
    }
}

/* The KV state in use outside conversations (the pooled contexts of the
 * requests generating now), and the conversations' own while a turn runs,
 * for /metrics' vllm:kv_cache_usage_perc. */
static void note_kv(qs_sched_t *s) {
    size_t kv = 0;
    int turns = 0;
    for (int i = 0; i < s->parallel; i++) {
        const gen_t *g = &s->gen[i];
        if (g->r && g->slot >= 0) kv += (size_t)qc_ctx_pos(g->ctx);
        turns |= g->r && g->turn;
    }
    pthread_mutex_lock(&s->mu);
    s->st.kv_tokens = kv;
    pthread_mutex_unlock(&s->mu);
    if (turns) update_sessions(s); /* a conversation grows during its turn; O(sessions), small beside a pass */
}

/* Sleeps ms milliseconds (the test hook). */
static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

static void *sched_main(void *arg) {
    qs_sched_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && !s->head && !s->n_active) {
            s->idle = 1;
            pthread_cond_wait(&s->cv, &s->mu);
        }
        s->idle = 0;
        s->beat_ms = qc_now_ms(); /* a loop begins: the previous one is complete */
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        /* admit while a generation entry is free; cancelled requests (their
         * clients gone) leave the queue at once and never take an entry */
        qs_request_t *admit = NULL, **at = &admit, **pp = &s->head, *kept = NULL;
        int room = s->parallel - s->n_active;
        while (*pp) {
            qs_request_t *r = *pp;
            int gone = atomic_load(&r->cancel);
            if (!gone && room == 0) {
                kept = r;
                pp = &r->next;
                continue;
            }
            *pp = r->next;
            s->n_queued--;
            if (!gone) room--;
            r->next = NULL;
            *at = r;
            at = &r->next;
        }
        s->tail = kept;
        pthread_mutex_unlock(&s->mu);
        while (admit) {
            qs_request_t *r = admit;
            admit = r->next;
            start(s, r);
        }
        int stall = atomic_load(&s->stall_ms);
        if (stall) sleep_ms(stall); /* after start(): the admitted requests count as work waiting */
        pass(s);
        note_kv(s);
    }
    for (int i = 0; i < s->parallel; i++)
        if (s->gen[i].r) {
            s->gen[i].r->stopped = 1;
            finish(s, &s->gen[i], QC_ERR_CANCELLED, "the server is stopping", 0);
        }
    pthread_mutex_lock(&s->mu);
    qs_request_t *r = s->head;
    s->head = s->tail = NULL;
    s->n_queued = 0;
    pthread_mutex_unlock(&s->mu);
    while (r) {
        qs_request_t *next = r->next;
        r->stopped = 1;
        r->on_done(r->user, QC_ERR_CANCELLED, "the server is stopping", 0, 0, 0);
        r = next;
    }
    return NULL;
}

/* ==== start and stop ==== */

qs_sched_t *qs_sched_new(qc_model_t *m, qc_care_t *care, int parallel, int queue, int n_ctx, char *err,
                         size_t err_size) {
    qs_sched_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    s->m = m;
    s->care = care;
    s->tok = qc_model_tokenizer(m);
    s->parallel = parallel > 0 ? parallel : 1;
    s->queue_max = queue >= 0 ? queue : 0;
    s->n_vocab = qc_model_n_vocab(m);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->beat_ms = qc_now_ms();
    s->gen = calloc((size_t)s->parallel, sizeof *s->gen);
    s->slots = calloc((size_t)s->parallel, sizeof *s->slots);
    s->slot_used = calloc((size_t)s->parallel, sizeof *s->slot_used);
    s->batch = qc_batch_new(m, QS_PASS_TOKENS + s->parallel);
    int ok = s->gen && s->slots && s->slot_used && s->batch;
    /* The slots' own work buffers are unused (passes run in the batch's),
     * so they are made for one token. */
    for (int i = 0; ok && i < s->parallel; i++)
        ok = (s->slots[i] = qc_ctx_new(m, n_ctx, &(qc_ctx_opts_t){.n_batch = 1})) != NULL;
    if (!ok || pthread_create(&s->th, NULL, sched_main, s)) {
        snprintf(err, err_size, "out of memory for %d parallel requests", s->parallel);
        qs_sched_free(s);
        return NULL;
    }
    s->started = 1;
    return s;
}

void qs_sched_stop(qs_sched_t *s) {
    if (!s || !s->started) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    s->started = 0;
}

void qs_sched_free(qs_sched_t *s) {
    if (!s) return;
    qs_sched_stop(s);
    for (int i = 0; s->slots && i < s->parallel; i++) qc_ctx_free(s->slots[i]);
    free(s->slots);
    free(s->slot_used);
    free(s->gen);
    qc_batch_free(s->batch);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
