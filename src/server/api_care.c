/* api_care.c — the care endpoints: POST /api/emotion (the emotion of a
 * message) and POST /api/analyze (emotion, safety notice and reply, as JSON
 * or as Server-Sent Events: [notice,] emotion, [risk, notice,] chunk...,
 * done or error; in a conversation when "session" is given).
 *
 * The safety check runs here, on the connection's thread, as soon as the
 * body is read: before any field is checked, so an error answer carries
 * the notice too (notice.c), and a stream sends it before anything else
 * (notice, emotion, ...). The emotion and the reply come from the scheduler (QS_EMOTION,
 * QS_ANALYZE) through this file's callbacks. With --risk-model on the
 * model's urgency opinion (label scoring, qc_care_risk_labels) is judged
 * after the emotion: the rules stay the floor (their notice first and
 * unchanged), and the model's notice follows its `risk` event when only it
 * says urgent.
 *
 * Records. Every judged turn becomes a record (records_hook.c). A turn
 * without a "session" gets a server-made one (128 random bits), returned in
 * the answer. The scheduler's on_done submits the record (a copy, queued
 * for the store's writer thread, so the model never waits for the disk);
 * the call is done only in the commit callback, so the JSON body (built by
 * the answer function once the call is done) or the stream's `done` event
 * (its record appended by the commit callback) is sent after the commit. A
 * record that cannot be written fails the request: 503 with a JSON error,
 * or a stream that ends with `event: error` and no `done`. */
#include "server/srv.h"

#include "records/ident.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QS_PROMPT_RESERVE 512 /* tokens of the context kept for the care prompts and the reply */

/* A care request's call: its text, the safety result and the answer. */
typedef struct {
    qs_call_t c;
    char *text, *session, *patient; /* session: the client's, or one made here */
    int conversation;               /* the client named the session: the reply continues it */
    int held;                       /* qs_records_hold'ed (released in care_end, or care_clear when never submitted) */
    int64_t ts_ms;                  /* arrival, UTC ms */
    qc_emotion_t e;
    int judged;                     /* e is set: the turn is recorded */
    qc_safety_result_t sr;
    char notice[2048];
    int has_risk, model_urgent; /* the model's opinion came / says urgent */
    double p_urgent;
    qc_buf_t reply;
    qc_ids_t prompt_ids, reply_ids;
    qs_history_t history; /* the conversation's past turns, when this process's state may not be theirs */
    int keeps_basis;      /* the turn leaves the conversation as the store will have it (qs_records_basis_add) */
    int n_pieces;
    size_t n_out;
    char record[QC_REC_ID_STRLEN + 1]; /* the committed record's id ("" when none) */
} care_call_t;

static void care_clear(qs_call_t *c) {
    care_call_t *k = (care_call_t *)c;
    if (k->held) qs_records_release(c->s->rec, k->session);
    free(k->text);
    free(k->session);
    free(k->patient);
    qc_buf_free(&k->reply);
    qc_ids_free(&k->prompt_ids);
    qc_ids_free(&k->reply_ids);
    qs_history_free(&k->history);
}

static json_t *emotion_json(const qc_emotion_t *e) {
    return json_pack("{s:s, s:{s:f, s:f, s:f}}", "label", qc_emotion_name(e->label), "probs", "positive",
                     qc_round6(e->probs[0]), "negative", qc_round6(e->probs[1]), "neutral", qc_round6(e->probs[2]));
}

/* ==== the scheduler's callbacks ==== */

/* A stream's records (qs_call_event), formatted by care_format. */
enum { EV_EMOTION = 'e', EV_RISK = 'r', EV_CHUNK = 'c', EV_DONE = 'd', EV_ERROR = 'x' };

static void on_emotion(void *user, const qc_emotion_t *e) {
    care_call_t *k = user;
    qs_call_t *c = &k->c;
    pthread_mutex_lock(&c->mu);
    k->e = *e;
    k->judged = 1;
    if (c->streamed) qs_call_event(c, EV_EMOTION, e, sizeof *e);
    pthread_mutex_unlock(&c->mu);
}

/* The model's urgency opinion (label 0 "urgent"). Streamed, a record for
 * care_format, which writes its event and then its notice when the rules
 * had none; the notice text is made on the connection's thread (k->notice
 * is the reader's). */
typedef struct {
    int urgent;
    double p;
} risk_rec_t;

static void on_risk(void *user, const qc_scores_t *sc) {
    care_call_t *k = user;
    qs_call_t *c = &k->c;
    pthread_mutex_lock(&c->mu);
    k->has_risk = 1;
    k->model_urgent = sc->top == 0;
    k->p_urgent = sc->label[0].prob;
    if (c->streamed) {
        risk_rec_t rec = {k->model_urgent, k->p_urgent};
        qs_call_event(c, EV_RISK, &rec, sizeof rec);
    }
    pthread_mutex_unlock(&c->mu);
}

static int on_reply_piece(void *user, const char *piece, size_t len) {
    care_call_t *k = user;
    qs_call_t *c = &k->c;
    pthread_mutex_lock(&c->mu);
    qs_call_first(c);
    if (!c->failed && qc_buf_add(&k->reply, piece, len)) c->failed = 1;
    int stop = c->failed;
    if (!stop && c->streamed && len) qs_call_event(c, EV_CHUNK, piece, len);
    k->n_pieces++;
    pthread_mutex_unlock(&c->mu);
    return stop || atomic_load(&c->rq.cancel);
}

/* A stream's end (EV_DONE): the counts and the record's id. */
typedef struct {
    size_t chunks, tokens, dropped;
    char record[QC_REC_ID_STRLEN + 1];
    int rebuilt; /* past turns replayed into the conversation (0: none) */
    double rebuild_ms;
} done_rec_t;

/* A rebuilt conversation's note in an answer: how many past turns were
 * replayed from the records and what it cost (KV state included). */
static void add_rebuilt(json_t *o, int turns, double ms) {
    if (o && turns) json_object_set_new(o, "rebuilt", json_pack("{s:i, s:f}", "turns", turns, "ms", ms));
}

/* The record could not be written: the request fails with 503 (mu held). */
static void record_failed(care_call_t *k, const char *why) {
    qs_call_t *c = &k->c;
    if (!c->st) c->st = QC_ERR_IO;
    c->http_status = 503;
    char esc[256];
    snprintf(c->msg, sizeof c->msg, "the consultation record could not be written, so this answer was not kept: %s",
             qs_escape(why ? why : "unknown error", esc, sizeof esc));
}

/* The end of the call (mu held): a stream's last record; then c is done.
 * A plain call's answer is built by its answer function once it is. The
 * session is let go here, not when c is freed: the client may see its
 * answer (and ask for an erasure) before the last owner lets go of c. */
static void care_end(care_call_t *k) {
    qs_call_t *c = &k->c;
    if (k->held) {
        qs_records_release(c->s->rec, k->session);
        k->held = 0;
    }
    if (c->streamed) {
        if (c->st) {
            qs_call_event(c, EV_ERROR, c->msg, strlen(c->msg));
        } else {
            done_rec_t d = {(size_t)k->n_pieces, k->n_out, (size_t)c->rq.dropped_turns, "", c->rq.rebuilt,
                            c->rq.rebuild_ms};
            memcpy(d.record, k->record, sizeof d.record);
            qs_call_event(c, EV_DONE, &d, sizeof d);
        }
    }
    qs_call_finish(c);
}

/* The store's callback, on its writer thread: the turn is committed (or
 * not); now the call may end. */
static void on_committed(void *user, qc_status st, const qc_rec_id_t *id, const char *err) {
    care_call_t *k = user;
    pthread_mutex_lock(&k->c.mu);
    if (st) record_failed(k, err);
    else qc_rec_id_format(id, k->record);
    /* the conversation state goes on from this commit, or from the store
     * at its next turn when it may have gone another way */
    if (!st && k->keeps_basis && k->c.rq.reset) { /* rebuilt from the history, then this turn */
        qc_rec_head_t h = k->history.head;
        h.turns++;
        h.last = *id;
        qs_records_set_basis(k->c.s->rec, k->session, &h);
    } else if (!st && k->keeps_basis) {
        qs_records_basis_add(k->c.s->rec, k->session, id);
    } else {
        qs_records_set_basis(k->c.s->rec, k->session, NULL);
    }
    care_end(k);
}

/* The turn as the store keeps it (pointers into k; the store copies). */
static void turn_record(care_call_t *k, qc_status st, int hit_max, size_t n_prompt, qc_rec_turn_t *t) {
    qs_call_t *c = &k->c;
    qc_finish_t fin = QC_FINISH_STOP;
    if (st) fin = st == QC_ERR_CANCELLED || atomic_load(&c->rq.cancel) || c->rq.stopped ? QC_FINISH_CANCELLED
                                                                                        : QC_FINISH_ERROR;
    else if (hit_max) fin = QC_FINISH_LENGTH;
    int analyze = c->rq.kind == QS_ANALYZE;
    *t = (qc_rec_turn_t){
        .session_id = k->session,
        .patient_id = k->patient,
        .ts_ms = k->ts_ms,
        .message = k->text,
        .message_len = strlen(k->text),
        .emotion = k->e.label,
        .probs = {k->e.probs[0], k->e.probs[1], k->e.probs[2]},
        .urgent = k->sr.kind != 0,
        .urgent_kind = k->sr.kind ? qc_urgent_name(k->sr.kind) : NULL,
        .urgent_rule = k->sr.kind ? k->sr.term : NULL,
        .reply = analyze ? (k->reply.p ? k->reply.p : "") : NULL,
        .reply_len = analyze ? k->reply.n : 0,
        .finish = fin,
        .prompt_tokens = (int)n_prompt,
        .completion_tokens = (int)k->n_out,
        .emotion_ms = k->e.ms,
        .ttft_ms = c->t_first > 0 ? c->t_first - c->t0 : 0, /* 0: no reply text came */
        .total_ms = qc_now_ms() - c->t0,
        .prompt_ids = k->prompt_ids.p,
        .n_prompt_ids = k->prompt_ids.n,
        .reply_ids = k->reply_ids.p,
        .n_reply_ids = k->reply_ids.n,
        .model_urgent_p = k->has_risk ? k->p_urgent : NAN,
        .dropped_turns = c->rq.dropped_turns,
    };
}

static void on_care_done(void *user, qc_status st, const char *msg, size_t n_prompt, size_t n_out, int hit_max) {
    care_call_t *k = user;
    qs_call_t *c = &k->c;
    qs_records_t *rec = c->s->rec;
    st = qs_call_end(c, st, &msg, n_prompt, n_out);
    k->n_out = n_out;
    if (c->rq.rebuilt && !c->s->quiet)
        fprintf(stderr, "qcare: session %s rebuilt from %d recorded turns (%d skipped) in %.1f ms\n", k->session,
                c->rq.rebuilt, c->rq.rebuild_skipped, c->rq.rebuild_ms);
    if (rec && k->judged) { /* a turn that was never judged (cancelled in the queue, refused) is not one */
        qc_rec_turn_t t;
        turn_record(k, st, hit_max, n_prompt, &t);
        /* a kept reply or an emotion-only turn; a failed or cancelled one
         * may have left the conversation other than the store has it */
        k->keeps_basis = !k->conversation || t.finish == QC_FINISH_STOP || t.finish == QC_FINISH_LENGTH;
        char err[256];
        if (qs_records_submit(rec, &t, on_committed, k, err, sizeof err) == QC_OK) {
            pthread_mutex_unlock(&c->mu); /* the call ends in on_committed */
            return;
        }
        record_failed(k, err);
        qs_records_set_basis(rec, k->session, NULL); /* a turn the store lacks may be in the state */
    }
    care_end(k);
}

/* ==== the stream's events (the connection's thread) ==== */

/* The notice of kind (the rules' or QC_URGENT_MODEL) as an event. */
static void notice_event(care_call_t *k, qc_urgent_t kind) {
    qs_call_sse(&k->c, "notice", json_pack("{s:s, s:s?, s:s}", "kind", qc_urgent_name(kind), "presentation",
                                           kind == k->sr.kind ? k->sr.presentation : NULL, "text", k->notice));
}

/* The model's notice (kind unknown: the emergency number and the crisis
 * line), in the message's language, into k->notice. */
static void model_notice(care_call_t *k) {
    qc_safety_result_t m = {.kind = QC_URGENT_MODEL, .lang = k->sr.lang};
    qc_safety_notice_for(NULL, &m, k->notice, sizeof k->notice);
}

/* [notice (the rules', sent by api_analyze before the call is queued),]
 * emotion, [risk, notice (when only the model says urgent),] chunk...,
 * then done or error. */
static void care_format(qs_call_t *c, int kind, const char *data, size_t n) {
    care_call_t *k = (care_call_t *)c;
    if (kind == EV_EMOTION && n == sizeof(qc_emotion_t)) {
        qc_emotion_t e;
        memcpy(&e, data, sizeof e);
        qs_call_sse(c, "emotion",
                    json_pack("{s:o, s:b, s:s, s:s}", "emotion", emotion_json(&e), "urgent", k->sr.kind != 0,
                              "urgent_kind", qc_urgent_name(k->sr.kind), "session", k->session));
    } else if (kind == EV_RISK && n == sizeof(risk_rec_t)) {
        risk_rec_t rec;
        memcpy(&rec, data, sizeof rec);
        qs_call_sse(c, "risk", json_pack("{s:b, s:f, s:b}", "urgent", rec.urgent, "probability", qc_round6(rec.p),
                                         "rules_urgent", k->sr.kind != 0));
        if (rec.urgent && !k->sr.kind) {
            model_notice(k);
            notice_event(k, QC_URGENT_MODEL);
        }
    } else if (kind == EV_CHUNK) {
        qs_call_sse(c, "chunk", json_pack("{s:s%}", "text", data, n));
    } else if (kind == EV_DONE && n == sizeof(done_rec_t)) {
        done_rec_t d;
        memcpy(&d, data, sizeof d);
        json_t *o = json_pack("{s:i, s:I, s:s}", "chunks", (int)d.chunks, "tokens", (json_int_t)d.tokens, "session",
                              k->session);
        if (o && d.dropped) json_object_set_new(o, "dropped_turns", json_integer((json_int_t)d.dropped));
        if (o && d.record[0]) json_object_set_new(o, "record", json_string(d.record));
        add_rebuilt(o, d.rebuilt, d.rebuild_ms);
        qs_call_sse(c, "done", o);
    } else if (kind == EV_ERROR) {
        qs_call_sse(c, "error", json_pack("{s:s%}", "error", data, n));
    }
}

/* ==== the requests ==== */

/* 0 when text fits the context with room for the prompts and the reply;
 * else the reason in msg. */
static int check_length(qc_server_t *s, const char *what, const char *text, size_t len, char *msg, size_t n) {
    int32_t *ids = NULL;
    size_t k = 0;
    if (qc_tokenizer_encode(s->tok, text, len, 0, &ids, &k)) {
        snprintf(msg, n, "%s is not valid UTF-8", what);
        return -1;
    }
    free(ids);
    if (k + QS_PROMPT_RESERVE > (size_t)s->n_ctx) {
        snprintf(msg, n, "%s is %zu tokens, longer than the context allows (%d tokens, %d kept for the prompt and reply)",
                 what, k, s->n_ctx, QS_PROMPT_RESERVE);
        return -1;
    }
    return 0;
}

/* The text of a care request, checked; 0 or -1 with the reason in msg. */
static int care_text(qc_server_t *s, json_t *j, const char **text, size_t *len, char *msg, size_t n) {
    int has = qs_get_string(j, "text", text, len, msg, n);
    if (has <= 0) {
        if (!has) snprintf(msg, n, "\"text\" (a string) is required");
        return -1;
    }
    if (!(*text)[strspn(*text, " \t\r\n")]) {
        snprintf(msg, n, "\"text\" must not be empty");
        return -1;
    }
    return check_length(s, "\"text\"", *text, *len, msg, n);
}

/* The patient's text of a care request, checked by the rules before
 * anything else (when it is a string at all). */
static void scan_text(qs_req_t *r, json_t *j) {
    json_t *t = json_object_get(j, "text");
    if (json_is_string(t)) qs_req_scan(r, json_string_value(t), json_string_length(t));
}

/* The optional "session" and "patient" fields: 0, or -1 with the reason in msg. */
static int care_ids(json_t *j, const char **session, const char **patient, char *msg, size_t n) {
    size_t slen = 0, plen = 0;
    *session = *patient = NULL;
    if (qs_get_string(j, "session", session, &slen, msg, n) < 0 || qs_get_string(j, "patient", patient, &plen, msg, n) < 0)
        return -1;
    if (*session && (slen == 0 || slen > QS_MAX_SESSION || strlen(*session) != slen)) {
        snprintf(msg, n, "\"session\" must be 1 to %d bytes", QS_MAX_SESSION);
        return -1;
    }
    if (*patient && (plen == 0 || plen > QC_REC_SESSION_MAX || strlen(*patient) != plen)) {
        snprintf(msg, n, "\"patient\" must be 1 to %d bytes", QC_REC_SESSION_MAX);
        return -1;
    }
    return 0;
}

/* A call for the care pipeline on text (a copy): its callbacks, the safety
 * result of the request (qs_req_scan) with its notice, its session (made when session is NULL; a
 * conversation when given to QS_ANALYZE). NULL when out of memory or
 * without randomness (500), or (*erasing set) when the session is being
 * erased (409). */
static care_call_t *care_call(qc_server_t *s, const qs_req_t *r, int kind, int streamed, const char *text,
                              const char *session, const char *patient, int *erasing) {
    char made[QC_REC_SESSION_NEW_LEN + 1];
    *erasing = 0;
    if (!session && qc_rec_session_new(made)) return NULL;
    qs_call_t *c = qs_call_new(s, sizeof(care_call_t), care_clear, kind, streamed);
    care_call_t *k = (care_call_t *)c;
    if (!c || !(k->text = strdup(text)) || !(k->session = strdup(session ? session : made)) ||
        (patient && !(k->patient = strdup(patient)))) {
        qs_call_free(c);
        return NULL;
    }
    if (qs_records_hold(s->rec, k->session)) {
        *erasing = 1;
        qs_call_free(c);
        return NULL;
    }
    k->held = 1;
    k->ts_ms = qc_rec_now_ms();
    k->conversation = session && kind == QS_ANALYZE;
    k->c.rq.text = k->text;
    k->c.rq.session = k->conversation ? k->session : NULL;
    k->c.rq.on_emotion = on_emotion;
    k->c.rq.on_piece = on_reply_piece;
    if (kind == QS_ANALYZE && s->risk_model) {
        k->c.rq.risk = qc_care_risk_labels(s->care); /* made once at start-up, read-only since */
        k->c.rq.on_scores = on_risk;
    }
    k->c.rq.on_done = on_care_done;
    if (s->rec) {
        k->c.rq.prompt_ids = &k->prompt_ids;
        k->c.rq.reply_ids = &k->reply_ids;
    }
    k->c.format = care_format;
    k->sr = r->sr;
    if (k->sr.kind) qc_safety_notice_for(NULL, &k->sr, k->notice, sizeof k->notice);
    return k;
}

/* The session and the record's id (when records are kept) in a plain answer. */
static void add_ids(json_t *o, const care_call_t *k) {
    if (!o) return;
    json_object_set_new(o, "session", json_string(k->session));
    if (k->record[0]) json_object_set_new(o, "record", json_string(k->record));
}

static enum MHD_Result emotion_answer(qs_call_t *c, struct MHD_Connection *con, qs_req_t *r) {
    care_call_t *k = (care_call_t *)c;
    json_t *o = emotion_json(&k->e);
    if (o) {
        json_object_set_new(o, "urgent", json_boolean(k->sr.kind != 0));
        json_object_set_new(o, "urgent_kind", json_string(qc_urgent_name(k->sr.kind)));
        if (k->sr.kind && k->sr.presentation) json_object_set_new(o, "presentation", json_string(k->sr.presentation));
        if (k->sr.kind) json_object_set_new(o, "notice", json_string(k->notice));
        json_object_set_new(o, "ms", json_real(qc_round6(k->e.ms)));
    }
    add_ids(o, k);
    return qs_reply_json(con, r, 200, o);
}

static enum MHD_Result analyze_answer(qs_call_t *c, struct MHD_Connection *con, qs_req_t *r) {
    care_call_t *k = (care_call_t *)c;
    int model_only = k->model_urgent && !k->sr.kind;
    if (model_only) model_notice(k);
    json_t *o = json_pack("{s:o, s:b, s:s, s:s}", "emotion", emotion_json(&k->e), "urgent", k->sr.kind || model_only,
                          "urgent_kind", qc_urgent_name(model_only ? QC_URGENT_MODEL : k->sr.kind), "reply",
                          k->reply.p ? k->reply.p : "");
    if (o && k->sr.kind && k->sr.presentation)
        json_object_set_new(o, "presentation", json_string(k->sr.presentation));
    if (o && (k->sr.kind || model_only)) json_object_set_new(o, "notice", json_string(k->notice));
    if (o && k->has_risk)
        json_object_set_new(o, "risk", json_pack("{s:b, s:f, s:b}", "urgent", k->model_urgent, "probability",
                                                 qc_round6(k->p_urgent), "rules_urgent", k->sr.kind != 0));
    add_ids(o, k);
    if (o && c->rq.dropped_turns) json_object_set_new(o, "dropped_turns", json_integer(c->rq.dropped_turns));
    add_rebuilt(o, c->rq.rebuilt, c->rq.rebuild_ms);
    return qs_reply_json(con, r, 200, o);
}

/* The records are the conversation; this process's KV state is a cache
 * of them, which another process (or this one before a restart) may have
 * outdated: it answered turns of the session, or erased it. Unless the
 * state was built from the store's head as it is now, the past turns are
 * read, and the scheduler drops what it holds and replays them (reset).
 * One indexed lookup per turn when nothing changed. Without the records
 * no answer (-1, the reason in msg): it would forget the history. */
static int care_history(qc_server_t *s, care_call_t *k, char *msg, size_t n) {
    char err[300];
    qc_rec_head_t basis, now;
    if (qs_records_basis(s->rec, k->session, &basis)) {
        if (qc_store_head(qs_records_store(s->rec), k->session, &now, err, sizeof err)) {
            snprintf(msg, n, "the conversation's records cannot be read: %s", err);
            return -1;
        }
        if (qs_records_head_same(&basis, &now)) return 0;
    }
    if (qs_records_history(s->rec, k->session, &k->history, err, sizeof err)) {
        snprintf(msg, n, "the conversation's records cannot be read: %s", err);
        return -1;
    }
    k->c.rq.history = k->history.turns;
    k->c.rq.n_history = k->history.n;
    k->c.rq.reset = 1;
    return 0;
}

/* The body of /api/emotion (analyze 0) or /api/analyze as a call, or NULL
 * with the status and the reason in msg. The header X-Session-Id of con
 * (NULL: none, as for the fuzz targets) names the session too. */
qs_call_t *qs_care_parse(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r, int analyze, int *status,
                         char *msg, size_t n) {
    *status = 400;
    json_t *j = qs_parse_body(r, msg, n);
    if (!j) return NULL;
    scan_text(r, j);
    const char *text = NULL, *session = NULL, *patient = NULL;
    size_t len = 0;
    long long max_tokens = QS_MAX_TOKENS_DEF;
    int stream = 0, erasing = 0;
    care_call_t *k = NULL;
    if (care_text(s, j, &text, &len, msg, n) || care_ids(j, &session, &patient, msg, n)) goto done;
    if (analyze && (qs_get_int(j, "max_tokens", 1, s->n_ctx, &max_tokens, msg, n) < 0 ||
                    qs_get_bool(j, "stream", &stream, msg, n) < 0))
        goto done;
    if (con && qs_header_session(con, &session, msg, n)) goto done;
    if (!(k = care_call(s, r, analyze ? QS_ANALYZE : QS_EMOTION, stream, text, session, patient, &erasing))) {
        *status = erasing ? 409 : 500;
        snprintf(msg, n, erasing ? "this session is being erased" : "out of memory");
        goto done;
    }
    if (analyze) k->c.rq.max_tokens = (int)max_tokens;
    if (s->rec && k->conversation && care_history(s, k, msg, n)) {
        qs_call_free(&k->c);
        k = NULL;
        *status = 503;
        goto done;
    }
    if (stream && k->sr.kind) notice_event(k, k->sr.kind); /* before anything else; unsent if the queue is full */
done:
    json_decref(j);
    return k ? &k->c : NULL;
}

static enum MHD_Result care_endpoint(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r, int analyze) {
    char msg[512];
    int status;
    qs_call_t *c = qs_care_parse(s, con, r, analyze, &status, msg, sizeof msg);
    if (!c) return qs_reply_error(con, r, (unsigned)status, "%s", msg);
    return qs_call_submit(con, r, c, analyze ? analyze_answer : emotion_answer);
}

static enum MHD_Result api_emotion(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    return care_endpoint(s, con, r, 0);
}

static enum MHD_Result api_analyze(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    return care_endpoint(s, con, r, 1);
}

const qs_route_t qs_care_routes[] = {
    {"/api/emotion", "POST", 0, api_emotion, 1},
    {"/api/analyze", "POST", 0, api_analyze, 1},
    {0},
};
