/* api_records.c — the follow-up view over the consultation records, behind
 * the admin key (routes with QS_ADMIN: 404 while no key is set, 401 for a
 * missing or wrong one):
 *
 *   GET    /dashboard                  the page (web/dashboard.html; it asks for the key)
 *   GET    /api/records/sessions       ?order=risk|recent&patient=&urgent=1&min_streak=N
 *                                      &since=&until=&limit=&cursor= -> {"sessions", "next_cursor"}
 *   GET    /api/records/sessions/{id}  one session: its summary and every turn
 *   DELETE /api/records/sessions/{id}  erasure (a tombstone stays; the conversation is dropped)
 *   GET    /api/records/patients/{id}  one patient's sessions, most recent first
 *   GET    /api/records/export         ?format=csv|jsonl&since=&until=, streamed
 *
 * Dates are YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.fff]][Z] (UTC); a malformed
 * date, cursor or number is a 400. Reads use the store's own reader
 * connections, so they never hold up the writer. The export runs on its
 * own thread, writing into a small ring that MHD's content reader drains:
 * memory stays constant, and a client that leaves stops it. */
#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX 10000      /* sessions a min_streak page may look at before it returns what it found */
#define EXPORT_RING (64 << 10) /* bytes of an export in flight */

/* The follow-up page (web/dashboard.html, embedded by tools/embed.c). */
extern const unsigned char qc_web_dashboard[];
extern const unsigned long qc_web_dashboard_len;

/* ==== helpers ==== */

/* A GET argument through get: NULL when absent or empty. */
static const char *arg(qs_arg_fn get, void *user, const char *name) {
    const char *v = get(user, name);
    return v && *v ? v : NULL;
}

/* The connection's GET arguments (MHD decodes them), for the handlers. */
static const char *con_arg(void *con, const char *name) {
    return MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, name);
}

/* An optional date argument: 0 (with *ms, 0 when absent), or -1 with the reason in msg. */
static int arg_date(qs_arg_fn get, void *user, const char *name, int64_t *ms, char *msg, size_t n) {
    const char *v = arg(get, user, name);
    *ms = 0;
    if (!v) return 0;
    if (qc_rec_time_parse(v, ms)) {
        snprintf(msg, n, "\"%s\" must be a date: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z] (UTC), not '%.60s'", name, v);
        return -1;
    }
    return 0;
}

/* An optional integer argument in [lo, hi]: 0, or -1 with the reason in msg. */
static int arg_int(qs_arg_fn get, void *user, const char *name, long lo, long hi, long *out, char *msg, size_t n) {
    const char *v = arg(get, user, name);
    if (!v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < lo || x > hi) {
        snprintf(msg, n, "\"%s\" must be an integer in [%ld, %ld], not '%.60s'", name, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* The store, or an answer when records are off. */
static qc_store_t *store_or_404(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r, enum MHD_Result *ret) {
    qc_store_t *st = qs_records_store(s->rec);
    if (!st) *ret = qs_reply_error(con, r, 404, "records are off on this server (--no-records)");
    return st;
}

/* A store error: a bad cursor or argument is the client's (400); the rest is ours. */
static enum MHD_Result store_error(struct MHD_Connection *con, qs_req_t *r, qc_status st, const char *err) {
    return qs_reply_error(con, r, st == QC_ERR_ARG ? 400 : st == QC_ERR_BUSY || st == QC_ERR_IO ? 503 : 500, "%s",
                          err);
}

static json_t *time_json(int64_t ms) {
    char t[32];
    qc_rec_time_format(ms, t);
    return json_string(t);
}

static json_t *session_json(const qc_rec_session_t *ss) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "session", json_string(ss->session_id));
    json_object_set_new(o, "patient", ss->patient_id ? json_string(ss->patient_id) : json_null());
    json_object_set_new(o, "first", time_json(ss->first_ms));
    json_object_set_new(o, "last", time_json(ss->last_ms));
    json_object_set_new(o, "turns", json_integer(ss->turns));
    json_object_set_new(o, "last_emotion", json_string(qc_emotion_name(ss->last_emotion) ?: "neutral"));
    json_object_set_new(o, "last_negative", json_real(ss->last_negative));
    json_object_set_new(o, "negative_streak", json_integer(ss->neg_streak));
    json_object_set_new(o, "urgent_count", json_integer(ss->urgent_count));
    json_object_set_new(o, "trend", json_real(ss->trend));
    json_object_set_new(o, "trend_turns", json_integer(QC_REC_TREND_TURNS));
    json_object_set_new(o, "risk", json_real(ss->risk));
    return o;
}

/* ==== pages of sessions ==== */

typedef struct {
    json_t *list;
    int min_streak, found;
    long scanned;
} page_t;

static int page_row(void *user, const qc_rec_session_t *ss) {
    page_t *p = user;
    p->scanned++;
    if (ss->neg_streak < p->min_streak) return 0;
    json_t *o = session_json(ss);
    if (!o || json_array_append_new(p->list, o)) return 1;
    p->found++;
    return 0;
}

/* One page of q (limit sessions of at least min_streak negative turns in a
 * row) as {"sessions": [...], "next_cursor": C|null}. A filtered page asks
 * the store for as many as are still missing, so it never holds more than
 * the limit and its cursor stays the store's; it may come back short
 * (with a cursor) after SCAN_MAX sessions. */
static enum MHD_Result reply_page(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r, qc_rec_query_t q,
                                  int min_streak, const char *field, const char *value) {
    enum MHD_Result ret;
    qc_store_t *st = store_or_404(s, con, r, &ret);
    if (!st) return ret;
    page_t p = {.list = json_array(), .min_streak = min_streak};
    char next[QC_REC_CURSOR_MAX] = "", cursor[QC_REC_CURSOR_MAX], err[512];
    int limit = q.limit ? q.limit : 50;
    if (q.cursor) snprintf(cursor, sizeof cursor, "%s", q.cursor);
    else cursor[0] = 0;
    qc_status rc = QC_OK;
    while (p.list) {
        q.limit = limit - p.found;
        q.cursor = cursor;
        if ((rc = qc_store_sessions(st, &q, page_row, &p, next, err, sizeof err))) break;
        if (!next[0] || p.found >= limit || p.scanned >= SCAN_MAX) break;
        memcpy(cursor, next, sizeof cursor);
    }
    if (rc) {
        json_decref(p.list);
        return store_error(con, r, rc, err);
    }
    if (!p.list) return qs_reply_error(con, r, 500, "out of memory");
    json_t *o = json_pack("{s:o, s:o}", "sessions", p.list, "next_cursor", next[0] ? json_string(next) : json_null());
    if (o && field) json_object_set_new(o, field, json_string(value));
    return qs_reply_json(con, r, 200, o);
}

/* The query arguments every list takes (srv.h). */
int qs_records_list_args(qs_arg_fn get, void *user, qc_rec_query_t *q, int *min_streak, char *msg, size_t n) {
    long limit = 50, urgent = 0, streak = 0;
    const char *order = arg(get, user, "order"), *cursor = arg(get, user, "cursor");
    if (order && strcmp(order, "risk") && strcmp(order, "recent")) {
        snprintf(msg, n, "\"order\" must be risk or recent, not '%.40s'", order);
        return -1;
    }
    if (cursor && strlen(cursor) >= QC_REC_CURSOR_MAX) {
        snprintf(msg, n, "\"cursor\" is malformed");
        return -1;
    }
    if (arg_int(get, user, "limit", 1, QC_REC_LIMIT_MAX, &limit, msg, n) ||
        arg_int(get, user, "urgent", 0, 1, &urgent, msg, n) ||
        arg_int(get, user, "min_streak", 0, 1000000, &streak, msg, n) ||
        arg_date(get, user, "since", &q->since_ms, msg, n) || arg_date(get, user, "until", &q->until_ms, msg, n))
        return -1;
    if (!q->patient_id) q->patient_id = arg(get, user, "patient");
    q->order = order && !strcmp(order, "recent") ? QC_REC_ORDER_RECENT : q->order;
    q->limit = (int)limit;
    q->urgent_only = (int)urgent;
    q->cursor = cursor;
    *min_streak = (int)streak;
    return 0;
}

static enum MHD_Result list_sessions(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    char msg[512];
    qc_rec_query_t q = {.order = QC_REC_ORDER_RISK};
    int min_streak;
    if (qs_records_list_args(con_arg, con, &q, &min_streak, msg, sizeof msg))
        return qs_reply_error(con, r, 400, "%s", msg);
    return reply_page(s, con, r, q, min_streak, NULL, NULL);
}

static int page_any(void *user, const qc_rec_session_t *ss) {
    (void)ss;
    *(int *)user = 1;
    return 1;
}

/* The id after a route's prefix: NULL (answered 404) when it is too long to be one. */
static const char *path_id(struct MHD_Connection *con, qs_req_t *r, const char *prefix, enum MHD_Result *ret) {
    const char *id = r->path + strlen(prefix);
    if (strlen(id) <= QC_REC_SESSION_MAX) return id;
    *ret = qs_reply_error(con, r, 404, "no such id: ids are at most %d bytes", QC_REC_SESSION_MAX);
    return NULL;
}

static enum MHD_Result get_patient(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    enum MHD_Result ret;
    const char *patient = path_id(con, r, "/api/records/patients/", &ret);
    if (!patient) return ret;
    char msg[512];
    qc_rec_query_t q = {.order = QC_REC_ORDER_RECENT, .patient_id = patient};
    int min_streak;
    if (qs_records_list_args(con_arg, con, &q, &min_streak, msg, sizeof msg))
        return qs_reply_error(con, r, 400, "%s", msg);
    if (!q.cursor) { /* a patient nobody recorded is not there */
        qc_store_t *st = store_or_404(s, con, r, &ret);
        if (!st) return ret;
        int any = 0;
        char next[QC_REC_CURSOR_MAX], err[512];
        qc_rec_query_t one = {.order = QC_REC_ORDER_RECENT, .patient_id = patient, .limit = 1};
        qc_status rc = qc_store_sessions(st, &one, page_any, &any, next, err, sizeof err);
        if (rc) return store_error(con, r, rc, err);
        if (!any) return qs_reply_error(con, r, 404, "no sessions of patient '%.200s'", patient);
    }
    return reply_page(s, con, r, q, min_streak, "patient", patient);
}

/* ==== one session ==== */

typedef struct {
    qc_buf_t body;
    qc_rec_summary_t sum;
    char *patient; /* the last one given */
    int n;
} turns_t;

static int buf_write(void *user, const void *p, size_t n) { return qc_buf_add(user, p, n); }

static int turn_row(void *user, const qc_rec_turn_t *t) {
    turns_t *x = user;
    if (x->n++) qc_buf_add(&x->body, ",", 1);
    size_t at = x->body.n;
    if (qc_rec_turn_jsonl(t, buf_write, &x->body)) return 1;
    if (x->body.n > at && x->body.p[x->body.n - 1] == '\n') x->body.p[--x->body.n] = 0; /* a line, in an array */
    qc_rec_summary_add(&x->sum, t->ts_ms, t->emotion, t->probs[1], t->urgent);
    if (t->patient_id) {
        free(x->patient);
        x->patient = strdup(t->patient_id);
    }
    return x->body.failed;
}

static enum MHD_Result get_session(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    enum MHD_Result ret;
    const char *id = path_id(con, r, "/api/records/sessions/", &ret);
    if (!id) return ret;
    qc_store_t *st = store_or_404(s, con, r, &ret);
    if (!st) return ret;
    turns_t x = {0};
    char err[512];
    int64_t n = 0;
    json_t *head = json_pack("{s:s}", "session", id);
    char *h = head ? json_dumps(head, JSON_COMPACT) : NULL;
    json_decref(head);
    if (!h) return qs_reply_error(con, r, 500, "out of memory");
    qc_buf_add(&x.body, h, strlen(h) - 1); /* {"session":"ID" ... */
    free(h);
    qc_buf_puts(&x.body, ",\"turns\":[");
    qc_status rc = qc_store_turns(st, id, turn_row, &x, &n, err, sizeof err);
    if (!rc && n == 0) {
        qc_buf_free(&x.body);
        free(x.patient);
        int64_t erased = 0;
        if (!qc_store_tombstone(st, id, &erased, err, sizeof err) && erased) {
            char t[32];
            qc_rec_time_format(erased, t);
            return qs_reply_error(con, r, 404, "session '%.200s' was erased at %s", id, t);
        }
        return qs_reply_error(con, r, 404, "no session '%.200s'", id);
    }
    if (rc) {
        qc_buf_free(&x.body);
        free(x.patient);
        return store_error(con, r, rc, err);
    }
    qc_rec_session_t ss = {
        .session_id = id,
        .patient_id = x.patient,
        .first_ms = x.sum.first_ms,
        .last_ms = x.sum.last_ms,
        .turns = x.sum.turns,
        .last_emotion = x.sum.last_emotion,
        .last_negative = x.sum.n_recent ? x.sum.recent[x.sum.n_recent - 1] : 0,
        .neg_streak = x.sum.neg_streak,
        .urgent_count = x.sum.urgent_count,
        .trend = qc_rec_summary_trend(&x.sum),
        .risk = (double)qc_rec_summary_risk(&x.sum) / 1e6,
    };
    json_t *sj = session_json(&ss);
    char *sums = sj ? json_dumps(sj, JSON_COMPACT) : NULL;
    json_decref(sj);
    free(x.patient);
    qc_buf_puts(&x.body, "],\"summary\":");
    qc_buf_puts(&x.body, sums ? sums : "null");
    qc_buf_puts(&x.body, "}");
    free(sums);
    size_t len = x.body.n;
    char *body = qc_buf_take(&x.body);
    if (!body) return qs_reply_error(con, r, 500, "out of memory");
    return qs_reply_bytes(con, r, 200, body, len, MHD_RESPMEM_MUST_FREE, QS_JSON_TYPE, "Cache-Control", "no-store");
}

/* An erasure: the scheduler drops the conversation (QS_END_SESSION), then
 * the answer function erases the turns; the session is refused to new
 * calls from the handler until the erasure ended or failed (before its
 * answer is sent, so a turn sent once the client has it is not refused). */
typedef struct {
    qs_call_t c;
    char *session;
    int begun; /* qs_records_erase_begin'ed and not ended yet */
} erase_call_t;

static void erase_stop(erase_call_t *x) {
    if (x->begun) qs_records_erase_end(x->c.s->rec, x->session);
    x->begun = 0;
}

static void erase_clear(qs_call_t *c) {
    erase_stop((erase_call_t *)c);
    free(((erase_call_t *)c)->session);
}

static void on_end_done(void *user, qc_status st, const char *msg, size_t n_prompt, size_t n_out, int hit_max) {
    (void)hit_max;
    qs_call_t *c = user;
    st = qs_call_end(c, st, &msg, n_prompt, n_out);
    if (st && st != QC_ERR_BUSY && st != QC_ERR_CANCELLED) c->http_status = 503;
    if (st) erase_stop((erase_call_t *)c); /* answered with the error: nothing more is erased */
    qs_call_finish(c);
}

/* The store's part, on the connection's thread once the conversation is gone. */
static enum MHD_Result erase_answer(qs_call_t *c, struct MHD_Connection *con, qs_req_t *r) {
    erase_call_t *x = (erase_call_t *)c;
    int64_t n = 0;
    int checkpointed = 0;
    char err[512];
    qc_status rc = qc_store_erase(qs_records_store(c->s->rec), x->session, &n, &checkpointed, err, sizeof err);
    erase_stop(x);
    if (rc) return store_error(con, r, rc, err);
    if (!n) return qs_reply_error(con, r, 404, "no session '%.200s'", x->session);
    return qs_reply_json(con, r, 200, json_pack("{s:s, s:I, s:b}", "erased", x->session, "turns", (json_int_t)n,
                                                "checkpointed", checkpointed));
}

static enum MHD_Result delete_session(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    enum MHD_Result ret;
    const char *id = path_id(con, r, "/api/records/sessions/", &ret);
    if (!id) return ret;
    if (!store_or_404(s, con, r, &ret)) return ret;
    qs_call_t *c = qs_call_new(s, sizeof(erase_call_t), erase_clear, QS_END_SESSION, 0);
    erase_call_t *x = (erase_call_t *)c;
    if (!c || !(x->session = strdup(id))) {
        qs_call_free(c);
        return qs_reply_error(con, r, 500, "out of memory");
    }
    char err[512];
    qc_status rc = qs_records_erase_begin(s->rec, id, err, sizeof err);
    if (rc) {
        qs_call_free(c);
        return rc == QC_ERR_BUSY ? qs_reply_error(con, r, 409, "%s", err) : qs_reply_error(con, r, 500, "%s", err);
    }
    x->begun = 1;
    c->rq.session = x->session;
    c->rq.on_done = on_end_done;
    return qs_call_submit(con, r, c, erase_answer);
}

/* ==== the export ==== */

/* An export in flight: the store's thread fills the ring, MHD's content
 * reader empties it. The reader never waits: with nothing to send it
 * suspends the connection, and the export's thread resumes it. */
typedef struct {
    qc_store_t *st;
    qs_records_t *rec; /* counts the suspended exports, says when the server stops */
    struct MHD_Connection *con;
    qc_rec_format_t fmt;
    int64_t since, until;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char ring[EXPORT_RING];
    size_t head, len; /* the bytes waiting: ring[head .. head + len) mod EXPORT_RING */
    int done, gone;   /* the export ended; the client left */
    int suspended;    /* the reader suspended con for want of bytes */
    qc_status rc;
} export_t;

/* Resumes the reader's connection when it waits (mu held). */
static void export_wake(export_t *x) {
    if (!x->suspended) return;
    x->suspended = 0;
    MHD_resume_connection(x->con);
    qs_records_export_waits(x->rec, -1);
}

/* The export's writer (its thread): blocks while the ring is full; nonzero stops the export. */
static int export_write(void *user, const void *p, size_t n) {
    export_t *x = user;
    const char *b = p;
    if (qs_records_stopping(x->rec)) return 1; /* the connection will be cut: its file is not whole */
    pthread_mutex_lock(&x->mu);
    while (n && !x->gone) {
        while (x->len == EXPORT_RING && !x->gone) pthread_cond_wait(&x->cv, &x->mu);
        if (x->gone) break;
        size_t tail = (x->head + x->len) % EXPORT_RING, room = EXPORT_RING - x->len;
        size_t k = n < room ? n : room;
        if (k > EXPORT_RING - tail) k = EXPORT_RING - tail; /* up to the ring's end; the rest next time round */
        memcpy(x->ring + tail, b, k);
        x->len += k;
        b += k;
        n -= k;
        export_wake(x);
    }
    int gone = x->gone;
    pthread_mutex_unlock(&x->mu);
    return gone;
}

static void *export_main(void *arg) {
    export_t *x = arg;
    char err[512];
    qc_status rc = qc_store_export(x->st, x->fmt, x->since, x->until, export_write, x, err, sizeof err);
    pthread_mutex_lock(&x->mu);
    x->rc = rc;
    x->done = 1;
    export_wake(x);
    pthread_mutex_unlock(&x->mu);
    if (rc && rc != QC_ERR_IO) fprintf(stderr, "qcare: export: %s\n", err);
    return NULL;
}

static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    export_t *x = cls;
    pthread_mutex_lock(&x->mu);
    ssize_t n;
    if (!x->len && !x->done) { /* nothing yet: the export's thread resumes the connection */
        if (qs_records_export_waits(x->rec, 1)) {
            n = MHD_CONTENT_READER_END_WITH_ERROR; /* the server is stopping: MHD must not stop with it suspended */
        } else {
            x->suspended = 1;
            MHD_suspend_connection(x->con);
            n = 0;
        }
    } else if (x->len) {
        size_t k = x->len < max ? x->len : max;
        if (k > EXPORT_RING - x->head) k = EXPORT_RING - x->head;
        memcpy(buf, x->ring + x->head, k);
        x->head = (x->head + k) % EXPORT_RING;
        x->len -= k;
        pthread_cond_broadcast(&x->cv);
        n = (ssize_t)k;
    } else {
        /* a store error mid-way: the connection is cut, so the file is not taken for whole */
        n = x->rc ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&x->mu);
    return n;
}

static void export_free(void *cls) {
    export_t *x = cls;
    pthread_mutex_lock(&x->mu);
    x->gone = 1;
    if (x->suspended) qs_records_export_waits(x->rec, -1);
    x->suspended = 0; /* the connection is going: nothing may resume it */
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->th, NULL);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

int qs_records_export_args(qs_arg_fn get, void *user, qc_rec_format_t *fmt, int64_t *since, int64_t *until,
                           char *msg, size_t n) {
    const char *format = arg(get, user, "format");
    *fmt = QC_REC_CSV;
    if (format && strcmp(format, "csv") && strcmp(format, "jsonl")) {
        snprintf(msg, n, "\"format\" must be csv or jsonl, not '%.40s'", format);
        *since = *until = 0;
        return -1;
    }
    if (format && !strcmp(format, "jsonl")) *fmt = QC_REC_JSONL;
    *until = 0;
    return arg_date(get, user, "since", since, msg, n) || arg_date(get, user, "until", until, msg, n) ? -1 : 0;
}

static enum MHD_Result export_turns(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    char msg[512];
    qc_rec_format_t fmt;
    int64_t since, until;
    if (qs_records_export_args(con_arg, con, &fmt, &since, &until, msg, sizeof msg))
        return qs_reply_error(con, r, 400, "%s", msg);
    enum MHD_Result ret;
    qc_store_t *st = store_or_404(s, con, r, &ret);
    if (!st) return ret;
    int jsonl = fmt == QC_REC_JSONL;
    export_t *x = calloc(1, sizeof *x);
    if (!x) return qs_reply_error(con, r, 500, "out of memory");
    x->st = st; /* field by field: a compound literal would put the ring on the stack */
    x->con = con;
    x->rec = s->rec;
    x->fmt = fmt;
    x->since = since;
    x->until = until;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    if (pthread_create(&x->th, NULL, export_main, x)) {
        pthread_cond_destroy(&x->cv);
        pthread_mutex_destroy(&x->mu);
        free(x);
        return qs_reply_error(con, r, 500, "cannot start the export");
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, export_read, x, export_free);
    if (!resp) {
        export_free(x);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", jsonl ? "application/x-ndjson; charset=utf-8" : "text/csv; charset=utf-8");
    MHD_add_response_header(resp, "Content-Disposition",
                            jsonl ? "attachment; filename=\"qcare-records.jsonl\"" : "attachment; filename=\"qcare-records.csv\"");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    return qs_queue(con, r, 200, resp);
}

/* ==== the page ==== */

static enum MHD_Result dashboard(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    if (!s->admin_key) return qs_reply_error(con, r, 404, "no such path: /dashboard");
    return qs_reply_bytes(con, r, 200, qc_web_dashboard, qc_web_dashboard_len, MHD_RESPMEM_PERSISTENT,
                          "text/html; charset=utf-8", "Cache-Control", "no-cache");
}

const qs_route_t qs_records_routes[] = {
    {"/dashboard", "GET", 1, dashboard, 0}, /* the page holds no data: its calls need the key */
    {"/api/records/sessions", "GET", QS_ADMIN, list_sessions, 0},
    {"/api/records/sessions/*", "GET", QS_ADMIN, get_session, 0},
    {"/api/records/sessions/*", "DELETE", QS_ADMIN, delete_session, 0},
    {"/api/records/patients/*", "GET", QS_ADMIN, get_patient, 0},
    {"/api/records/export", "GET", QS_ADMIN, export_turns, 0},
    {0},
};
