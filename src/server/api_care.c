/* api_care.c — the care endpoints: POST /api/emotion (the emotion of a
 * message) and POST /api/analyze (emotion, safety notice and reply, as JSON
 * or as Server-Sent Events: emotion, notice, [risk, notice,] chunk...,
 * done or error; in a conversation when "session" is given).
 *
 * The safety check runs here, on the connection's thread, before the call
 * is queued; the emotion and the reply come from the scheduler (QS_EMOTION,
 * QS_ANALYZE) through this file's callbacks. With --risk-model on the
 * model's urgency opinion (label scoring, qc_care_risk_labels) is judged
 * after the emotion: the rules stay the floor (their notice first and
 * unchanged), and the model's notice follows its `risk` event when only it
 * says urgent. */
#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QS_PROMPT_RESERVE 512 /* tokens of the context kept for the care prompts and the reply */
#define QS_MAX_SESSION 128    /* bytes of a session id */

/* A care request's call: its text, the safety result and the answer. */
typedef struct {
    qs_call_t c;
    char *text, *session;
    qc_emotion_t e;
    qc_safety_result_t sr;
    char notice[2048];
    int has_risk, model_urgent; /* the model's opinion came / says urgent */
    double p_urgent;
    qc_buf_t reply;
    int n_pieces;
} care_call_t;

static void care_clear(qs_call_t *c) {
    care_call_t *k = (care_call_t *)c;
    free(k->text);
    free(k->session);
    qc_buf_free(&k->reply);
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

static void on_care_done(void *user, qc_status st, const char *msg, size_t n_prompt, size_t n_out, int hit_max) {
    (void)hit_max;
    care_call_t *k = user;
    qs_call_t *c = &k->c;
    st = qs_call_end(c, st, &msg, n_prompt, n_out);
    if (c->streamed) {
        size_t done[3] = {(size_t)k->n_pieces, n_out, (size_t)c->rq.dropped_turns};
        if (st) qs_call_event(c, EV_ERROR, msg, strlen(msg));
        else qs_call_event(c, EV_DONE, done, sizeof done);
    }
    qs_call_finish(c);
}

/* ==== the stream's events (the connection's thread) ==== */

/* emotion, notice (when the rules say urgent), [risk, notice (when only
 * the model says urgent),] chunk..., then done or error. */
static void care_format(qs_call_t *c, int kind, const char *data, size_t n) {
    care_call_t *k = (care_call_t *)c;
    if (kind == EV_EMOTION && n == sizeof(qc_emotion_t)) {
        qc_emotion_t e;
        memcpy(&e, data, sizeof e);
        qs_call_sse(c, "emotion",
                    json_pack("{s:o, s:b, s:s}", "emotion", emotion_json(&e), "urgent", k->sr.kind != 0,
                              "urgent_kind", qc_urgent_name(k->sr.kind)));
        if (k->sr.kind)
            qs_call_sse(c, "notice", json_pack("{s:s, s:s}", "kind", qc_urgent_name(k->sr.kind), "text", k->notice));
    } else if (kind == EV_RISK && n == sizeof(risk_rec_t)) {
        risk_rec_t rec;
        memcpy(&rec, data, sizeof rec);
        qs_call_sse(c, "risk", json_pack("{s:b, s:f, s:b}", "urgent", rec.urgent, "probability", qc_round6(rec.p),
                                         "rules_urgent", k->sr.kind != 0));
        if (rec.urgent && !k->sr.kind) {
            qc_safety_notice(QC_URGENT_MODEL, NULL, k->notice, sizeof k->notice);
            qs_call_sse(c, "notice", json_pack("{s:s, s:s}", "kind", qc_urgent_name(QC_URGENT_MODEL), "text", k->notice));
        }
    } else if (kind == EV_CHUNK) {
        qs_call_sse(c, "chunk", json_pack("{s:s%}", "text", data, n));
    } else if (kind == EV_DONE && n == 3 * sizeof(size_t)) {
        size_t done[3];
        memcpy(done, data, sizeof done);
        json_t *o = json_pack("{s:i, s:I}", "chunks", (int)done[0], "tokens", (json_int_t)done[1]);
        if (o && done[2]) json_object_set_new(o, "dropped_turns", json_integer((json_int_t)done[2]));
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

/* A call for the care pipeline on text (a copy): its callbacks, and the
 * safety check with its notice. NULL when out of memory. */
static care_call_t *care_call(qc_server_t *s, int kind, int streamed, const char *text, const char *session) {
    qs_call_t *c = qs_call_new(s, sizeof(care_call_t), care_clear, kind, streamed);
    care_call_t *k = (care_call_t *)c;
    if (!c || !(k->text = strdup(text)) || (session && !(k->session = strdup(session)))) {
        qs_call_free(c);
        return NULL;
    }
    k->c.rq.text = k->text;
    k->c.rq.session = k->session;
    k->c.rq.on_emotion = on_emotion;
    k->c.rq.on_piece = on_reply_piece;
    if (kind == QS_ANALYZE && s->risk_model) {
        k->c.rq.risk = qc_care_risk_labels(s->care); /* made once at start-up, read-only since */
        k->c.rq.on_scores = on_risk;
    }
    k->c.rq.on_done = on_care_done;
    k->c.format = care_format;
    k->sr = qc_safety_check(k->text, strlen(k->text));
    if (k->sr.kind) qc_safety_notice(k->sr.kind, NULL, k->notice, sizeof k->notice);
    return k;
}

static enum MHD_Result emotion_answer(qs_call_t *c, struct MHD_Connection *con, qs_req_t *r) {
    care_call_t *k = (care_call_t *)c;
    json_t *o = emotion_json(&k->e);
    if (o) {
        json_object_set_new(o, "urgent", json_boolean(k->sr.kind != 0));
        json_object_set_new(o, "urgent_kind", json_string(qc_urgent_name(k->sr.kind)));
        json_object_set_new(o, "ms", json_real(qc_round6(k->e.ms)));
    }
    return qs_reply_json(con, r, 200, o);
}

static enum MHD_Result analyze_answer(qs_call_t *c, struct MHD_Connection *con, qs_req_t *r) {
    care_call_t *k = (care_call_t *)c;
    int model_only = k->model_urgent && !k->sr.kind;
    if (model_only) qc_safety_notice(QC_URGENT_MODEL, NULL, k->notice, sizeof k->notice);
    json_t *o = json_pack("{s:o, s:b, s:s, s:s}", "emotion", emotion_json(&k->e), "urgent", k->sr.kind || model_only,
                          "urgent_kind", qc_urgent_name(model_only ? QC_URGENT_MODEL : k->sr.kind), "reply",
                          k->reply.p ? k->reply.p : "");
    if (o && (k->sr.kind || model_only)) json_object_set_new(o, "notice", json_string(k->notice));
    if (o && k->has_risk)
        json_object_set_new(o, "risk", json_pack("{s:b, s:f, s:b}", "urgent", k->model_urgent, "probability",
                                                 qc_round6(k->p_urgent), "rules_urgent", k->sr.kind != 0));
    if (o && k->session) json_object_set_new(o, "session", json_string(k->session));
    if (o && c->rq.dropped_turns) json_object_set_new(o, "dropped_turns", json_integer(c->rq.dropped_turns));
    return qs_reply_json(con, r, 200, o);
}

qs_call_t *qs_care_parse(qc_server_t *s, const qs_req_t *r, int analyze, int *status, char *msg, size_t n) {
    *status = 400;
    json_t *j = qs_parse_body(r, msg, n);
    if (!j) return NULL;
    const char *text = NULL, *session = NULL;
    size_t len = 0, slen = 0;
    long long max_tokens = QS_MAX_TOKENS_DEF;
    int stream = 0;
    care_call_t *k = NULL;
    if (care_text(s, j, &text, &len, msg, n)) goto done;
    if (analyze) {
        if (qs_get_string(j, "session", &session, &slen, msg, n) < 0 ||
            qs_get_int(j, "max_tokens", 1, s->n_ctx, &max_tokens, msg, n) < 0 ||
            qs_get_bool(j, "stream", &stream, msg, n) < 0)
            goto done;
        if (session && (slen == 0 || slen > QS_MAX_SESSION || strlen(session) != slen)) {
            snprintf(msg, n, "\"session\" must be 1 to %d bytes", QS_MAX_SESSION);
            goto done;
        }
    }
    if (!(k = care_call(s, analyze ? QS_ANALYZE : QS_EMOTION, stream, text, session))) {
        *status = 500;
        snprintf(msg, n, "out of memory");
        goto done;
    }
    if (analyze) k->c.rq.max_tokens = (int)max_tokens;
done:
    json_decref(j);
    return k ? &k->c : NULL;
}

static enum MHD_Result care_endpoint(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r, int analyze) {
    char msg[512];
    int status;
    qs_call_t *c = qs_care_parse(s, r, analyze, &status, msg, sizeof msg);
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
    {"/api/emotion", "POST", 0, api_emotion},
    {"/api/analyze", "POST", 0, api_analyze},
    {0},
};
