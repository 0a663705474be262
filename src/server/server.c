/* server.c — `qcare serve`: the HTTP API on libmicrohttpd.
 *
 * One connection = one thread (MHD_USE_THREAD_PER_CONNECTION). Every request
 * body is gathered (at most QS_MAX_BODY bytes), then routed. Model work (the
 * care pipeline and /v1/chat/completions) goes to the scheduler (sched.c),
 * which batches every active request into each pass of the model; a full
 * queue is answered 503 with Retry-After.
 *
 * A request's "call" carries its callbacks: the scheduler writes the result
 * (or, streamed, Server-Sent Events into a byte buffer that MHD's content
 * reader drains). When a client goes away MHD frees the response, which
 * cancels the request: its slot is freed at the scheduler's next pass.
 * Connections idle longer than the timeout (slow clients) are closed. */
#include "server/server.h"

#include "server/sched.h"

#include "base/base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QS_MAX_BODY (1u << 20)   /* bytes of a request body */
#define QS_MAX_TOKENS_DEF 256    /* reply tokens when max_tokens is absent */
#define QS_PROMPT_RESERVE 512    /* tokens of the context kept for the care prompts and the reply */
#define QS_MAX_STOP 4            /* stop strings of a chat completion */
#define QS_MAX_SESSION 128       /* bytes of a session id */

/* The routes; metrics are kept per route. */
enum { R_HEALTH, R_PAGE, R_EMOTION, R_ANALYZE, R_MODELS, R_CHAT, R_METRICS, R_OTHER, N_ROUTES };
static const char *const route_path[N_ROUTES] = {"/health",    "/",           "/api/emotion", "/api/analyze",
                                                 "/v1/models", "/v1/chat/completions", "/metrics", "other"};
/* Status codes counted one by one (others as "other"). */
static const int status_codes[] = {200, 400, 401, 404, 405, 409, 413, 500, 503};
#define N_CODES (int)(sizeof status_codes / sizeof status_codes[0] + 1)
/* Upper bounds (seconds) of the latency histograms' buckets. */
static const double lat_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
#define N_BOUNDS (int)(sizeof lat_bounds / sizeof lat_bounds[0])

typedef struct {
    unsigned long long bucket[N_BOUNDS + 1], count;
    double sum;
} hist_t;

struct qc_server {
    struct MHD_Daemon *d;
    qc_model_t *m;
    const qc_tokenizer_t *tok;
    qc_care_t *care;
    qs_sched_t *sched;
    char *api_key, *model_name;
    int n_ctx, quiet, qwen3, parallel, queue;
    int keepalive_ms; /* a stream with nothing to send for this long sends an SSE comment */
    atomic_ulong n_completions, n_prompt_tokens, n_reply_tokens, n_streams_cancelled;
    pthread_mutex_t mmu; /* the metrics below */
    unsigned long long requests[N_ROUTES][N_CODES];
    hist_t latency[N_ROUTES], first_token;
    double t_start;
};

/* ==== requests and replies ==== */

typedef struct {
    qc_buf_t body;
    int too_big, status, route;
    double t0;
    char method[16], path[256];
} req_t;

/* Queues an answer of len bytes with its Content-Type, and one more header
 * when `header` is set. With MHD_RESPMEM_MUST_FREE, data is freed here on
 * failure too. */
static enum MHD_Result reply_bytes(struct MHD_Connection *con, req_t *r, unsigned status, const void *data,
                                   size_t len, enum MHD_ResponseMemoryMode mode, const char *type, const char *header,
                                   const char *value) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE) free((void *)data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    if (header) MHD_add_response_header(resp, header, value);
    r->status = (int)status;
    enum MHD_Result ret = MHD_queue_response(con, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

#define JSON_TYPE "application/json; charset=utf-8"

/* Queues a JSON reply (takes the reference to j). */
static enum MHD_Result reply_json(struct MHD_Connection *con, req_t *r, unsigned status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return MHD_NO;
    return reply_bytes(con, r, status, s, strlen(s), MHD_RESPMEM_MUST_FREE, JSON_TYPE,
                       status == MHD_HTTP_UNAUTHORIZED ? "WWW-Authenticate" : NULL, "Bearer");
}

static enum MHD_Result reply_error(struct MHD_Connection *con, req_t *r, unsigned status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reply_json(con, r, status, json_pack("{s:s}", "error", msg));
}

/* 503 for a full queue. */
static enum MHD_Result reply_busy(struct MHD_Connection *con, req_t *r) {
    static const char body[] = "{\"error\":\"the server is busy: every slot and the queue are full; retry later\"}";
    return reply_bytes(con, r, 503, body, sizeof body - 1, MHD_RESPMEM_PERSISTENT, JSON_TYPE, "Retry-After", "1");
}

static enum MHD_Result reply_405(struct MHD_Connection *con, req_t *r, const char *allow) {
    static const char body[] = "{\"error\":\"method not allowed\"}";
    return reply_bytes(con, r, 405, body, sizeof body - 1, MHD_RESPMEM_PERSISTENT, JSON_TYPE, "Allow", allow);
}

/* The body as a JSON object, or NULL with the reason in msg. jansson
 * rejects invalid UTF-8 and "\u0000" in strings. */
static json_t *parse_body(const req_t *r, char *msg, size_t n) {
    json_error_t je;
    json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.n, 0, &je);
    if (!j) {
        snprintf(msg, n, "malformed JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(msg, n, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Whether the string field `name` of j is present: 1 with *out set, 0
 * absent, -1 of the wrong type (message in msg). */
static int get_string(json_t *j, const char *name, const char **out, size_t *len, char *msg, size_t n) {
    json_t *v = json_object_get(j, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        snprintf(msg, n, "\"%s\" must be a string", name);
        return -1;
    }
    *out = json_string_value(v);
    if (len) *len = json_string_length(v);
    return 1;
}

static int get_int(json_t *j, const char *name, long long lo, long long hi, long long *out, char *msg, size_t n) {
    json_t *v = json_object_get(j, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(msg, n, "\"%s\" must be an integer in [%lld, %lld]", name, lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 1;
}

static int get_number(json_t *j, const char *name, double lo, double hi, double *out, char *msg, size_t n) {
    json_t *v = json_object_get(j, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        snprintf(msg, n, "\"%s\" must be a number in [%g, %g]", name, lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 1;
}

static int get_bool(json_t *j, const char *name, int *out, char *msg, size_t n) {
    json_t *v = json_object_get(j, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        snprintf(msg, n, "\"%s\" must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

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

/* ==== calls: one request's model work, streamed or not ==== */

/* A chat completion's state: the prompt ids, the sampling, the stop strings
 * and the text generated so far. */
typedef struct {
    qc_ids_t ids;
    size_t n_out;
    qc_generate_opts_t go;
    char *stop[QS_MAX_STOP];
    int n_stop, stopped, hit_max;
    size_t max_stop, emitted;
    qc_buf_t out;
    char id[48];
    long long created;
} job_t;

/* One request handed to the scheduler. The scheduler's callbacks write
 * into it (under mu); the connection's thread reads: a streamed call's
 * events through MHD's content reader, a plain call's result once done. */
typedef struct {
    qs_request_t rq;
    qc_server_t *s;
    int streamed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qc_buf_t ev; /* Server-Sent Events: [off, ev.n) not yet sent */
    size_t off;
    int done, failed;
    char *text, *session;
    qc_emotion_t e;
    qc_safety_result_t sr;
    char notice[2048];
    qc_buf_t reply;
    int n_pieces;
    qc_status st;
    char msg[512];
    double t0, t_first;
    job_t job;
} call_t;

static void job_clear(job_t *j) {
    qc_ids_free(&j->ids);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    qc_buf_free(&j->out);
    memset(j, 0, sizeof *j);
}

static call_t *call_new(qc_server_t *s, int kind, int streamed) {
    call_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->s = s;
    c->rq.kind = kind;
    c->rq.user = c;
    c->streamed = streamed;
    c->t0 = qc_now_ms();
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

static void call_free(call_t *c) {
    if (!c) return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    qc_buf_free(&c->ev);
    free(c->text);
    free(c->session);
    qc_buf_free(&c->reply);
    job_clear(&c->job);
    free(c);
}

/* Appends to the event buffer (mu held). */
static void call_push(call_t *c, const char *data, size_t n) {
    if (c->failed) return;
    if (qc_buf_add(&c->ev, data, n)) {
        c->failed = 1;
        atomic_store(&c->rq.cancel, 1);
        return;
    }
    pthread_cond_signal(&c->cv);
}

/* Writes one event: "event: NAME\n" (when name) then "data: JSON\n\n".
 * Takes the reference to j. mu held. */
static void call_sse(call_t *c, const char *name, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        c->failed = 1;
        atomic_store(&c->rq.cancel, 1);
        return;
    }
    if (name) {
        call_push(c, "event: ", 7);
        call_push(c, name, strlen(name));
        call_push(c, "\n", 1);
    }
    call_push(c, "data: ", 6);
    call_push(c, s, strlen(s));
    call_push(c, "\n\n", 2);
    free(s);
}

/* Waits until the scheduler is done with c. */
static void call_wait(call_t *c) {
    pthread_mutex_lock(&c->mu);
    while (!c->done) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* MHD's content reader: blocks until the scheduler wrote something. A
 * stream that waits (queued, or behind a long prompt) sends an SSE comment
 * line every keepalive_ms, which clients ignore, so the connection is not
 * closed as idle by the slow-client timeout. Events are written whole under
 * mu, so an empty buffer is always at an event boundary. */
static ssize_t call_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    static const char keepalive[] = ": keep-alive\n\n";
    call_t *c = cls;
    pthread_mutex_lock(&c->mu);
    while (c->off == c->ev.n && !c->done) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        long ns = dl.tv_nsec + (long)c->s->keepalive_ms % 1000 * 1000000L;
        dl.tv_sec += c->s->keepalive_ms / 1000 + ns / 1000000000L;
        dl.tv_nsec = ns % 1000000000L;
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT && c->off == c->ev.n && !c->done &&
            max >= sizeof keepalive - 1) {
            memcpy(buf, keepalive, sizeof keepalive - 1);
            pthread_mutex_unlock(&c->mu);
            return (ssize_t)(sizeof keepalive - 1);
        }
    }
    ssize_t n;
    if (c->off < c->ev.n) {
        size_t k = c->ev.n - c->off < max ? c->ev.n - c->off : max;
        memcpy(buf, c->ev.p + c->off, k);
        c->off += k;
        if (c->off == c->ev.n) c->off = c->ev.n = 0;
        n = (ssize_t)k;
    } else {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* MHD frees the response (stream finished or client gone): the request is
 * cancelled (its slot freed at the scheduler's next pass), then freed. */
static void call_release(void *cls) {
    call_t *c = cls;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    int finished = c->done && c->ev.n == c->off; /* everything sent, or the client left early */
    pthread_mutex_unlock(&c->mu);
    atomic_store(&c->rq.cancel, 1);
    call_wait(c);
    if (!finished) atomic_fetch_add(&c->s->n_streams_cancelled, 1);
    call_free(c);
}

static unsigned care_status(qc_status st);

/* Hands c to the scheduler. Streamed: queues the event-stream response
 * (the call is then MHD's). Not streamed: waits for the end; a failure is
 * answered with its status (c freed); on success the caller builds the
 * answer and frees c. A full queue is answered 503 with Retry-After (c
 * freed). Returns -1 when the answer is already queued (in *ret). */
static int call_submit(struct MHD_Connection *con, req_t *r, call_t *c, enum MHD_Result *ret) {
    qc_status st = qs_submit(c->s->sched, &c->rq);
    if (st) {
        call_free(c);
        *ret = st == QC_ERR_BUSY ? reply_busy(con, r)
                                 : reply_error(con, r, 503, "the server is stopping");
        return -1;
    }
    if (!c->streamed) {
        call_wait(c);
        if (!c->st) return 0;
        *ret = reply_error(con, r, c->rq.stopped ? 503 : care_status(c->st), "%s", c->msg);
        call_free(c);
        return -1;
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, call_read, c, call_release);
    if (!resp) {
        call_release(c);
        *ret = MHD_NO;
        return -1;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    r->status = 200;
    *ret = MHD_queue_response(con, 200, resp);
    MHD_destroy_response(resp);
    return -1;
}

static void note_first(call_t *c) {
    if (c->t_first == 0) c->t_first = qc_now_ms();
}

static void hist_add(hist_t *h, double v);

/* At the end of a call: its tokens and time to first text in the metrics. */
static void call_metrics(call_t *c, size_t n_prompt, size_t n_out) {
    qc_server_t *s = c->s;
    atomic_fetch_add(&s->n_prompt_tokens, n_prompt);
    atomic_fetch_add(&s->n_reply_tokens, n_out);
    if (c->t_first > 0) {
        pthread_mutex_lock(&s->mmu);
        hist_add(&s->first_token, (c->t_first - c->t0) / 1e3);
        pthread_mutex_unlock(&s->mmu);
    }
}

/* ==== the care endpoints ==== */

static json_t *emotion_json(const qc_emotion_t *e) {
    return json_pack("{s:s, s:{s:f, s:f, s:f}}", "label", qc_emotion_name(e->label), "probs", "positive",
                     (double)e->probs[0], "negative", (double)e->probs[1], "neutral", (double)e->probs[2]);
}

static unsigned care_status(qc_status st) {
    return st == QC_ERR_CONTEXT || st == QC_ERR_ARG ? 400 : st == QC_ERR_BUSY ? 409 : 500;
}

/* A reply cut short by running out of memory ends as an error, not a 200. */
static void call_end(call_t *c, qc_status *st, const char **msg) {
    if (!*st && c->failed) *st = QC_ERR_NOMEM, *msg = "out of memory";
}

static void on_emotion(void *user, const qc_emotion_t *e) {
    call_t *c = user;
    pthread_mutex_lock(&c->mu);
    c->e = *e;
    if (c->streamed) {
        call_sse(c, "emotion",
                 json_pack("{s:o, s:b, s:s}", "emotion", emotion_json(e), "urgent", c->sr.kind != 0, "urgent_kind",
                           qc_urgent_name(c->sr.kind)));
        if (c->sr.kind)
            call_sse(c, "notice", json_pack("{s:s, s:s}", "kind", qc_urgent_name(c->sr.kind), "text", c->notice));
    }
    pthread_mutex_unlock(&c->mu);
}

static int on_reply_piece(void *user, const char *piece, size_t len) {
    call_t *c = user;
    pthread_mutex_lock(&c->mu);
    note_first(c);
    if (!c->failed && qc_buf_add(&c->reply, piece, len)) c->failed = 1;
    int stop = c->failed;
    if (!stop && c->streamed && len) call_sse(c, "chunk", json_pack("{s:s%}", "text", piece, len));
    c->n_pieces++;
    pthread_mutex_unlock(&c->mu);
    return stop || atomic_load(&c->rq.cancel);
}

static void on_care_done(void *user, qc_status st, const char *msg, size_t n_prompt, size_t n_out, int hit_max) {
    (void)hit_max;
    call_t *c = user;
    call_metrics(c, n_prompt, n_out);
    pthread_mutex_lock(&c->mu);
    call_end(c, &st, &msg);
    c->st = st;
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    if (c->streamed) {
        if (st) call_sse(c, "error", json_pack("{s:s}", "error", msg));
        else call_sse(c, "done", json_pack("{s:i, s:I}", "chunks", c->n_pieces, "tokens", (json_int_t)n_out));
    }
    c->done = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* The text of a care request, checked; 0 or -1 with the reason in msg. */
static int care_text(qc_server_t *s, json_t *j, const char **text, size_t *len, char *msg, size_t n) {
    int has = get_string(j, "text", text, len, msg, n);
    if (has <= 0) {
        if (!has) snprintf(msg, n, "\"text\" (a string) is required");
        return -1;
    }
    return check_length(s, "\"text\"", *text, *len, msg, n);
}

/* A call for the care pipeline on text (a copy): its callbacks, and the
 * safety check with its notice. NULL when out of memory. */
static call_t *care_call(qc_server_t *s, int kind, int streamed, const char *text, const char *session) {
    call_t *c = call_new(s, kind, streamed);
    if (!c || !(c->text = strdup(text)) || (session && !(c->session = strdup(session)))) {
        call_free(c);
        return NULL;
    }
    c->rq.text = c->text;
    c->rq.session = c->session;
    c->rq.on_emotion = on_emotion;
    c->rq.on_piece = on_reply_piece;
    c->rq.on_done = on_care_done;
    c->sr = qc_safety_check(c->text, strlen(c->text));
    if (c->sr.kind) qc_safety_notice(c->sr.kind, NULL, c->notice, sizeof c->notice);
    return c;
}

static enum MHD_Result api_emotion(qc_server_t *s, struct MHD_Connection *con, req_t *r) {
    char msg[512];
    json_t *j = parse_body(r, msg, sizeof msg);
    if (!j) return reply_error(con, r, 400, "%s", msg);
    const char *text;
    size_t len;
    if (care_text(s, j, &text, &len, msg, sizeof msg)) {
        json_decref(j);
        return reply_error(con, r, 400, "%s", msg);
    }
    call_t *c = care_call(s, QS_EMOTION, 0, text, NULL);
    json_decref(j);
    if (!c) return reply_error(con, r, 500, "out of memory");
    enum MHD_Result ret;
    if (call_submit(con, r, c, &ret)) return ret;
    json_t *o = emotion_json(&c->e);
    if (o) {
        json_object_set_new(o, "urgent", json_boolean(c->sr.kind != 0));
        json_object_set_new(o, "urgent_kind", json_string(qc_urgent_name(c->sr.kind)));
        json_object_set_new(o, "ms", json_real(c->e.ms));
    }
    call_free(c);
    return reply_json(con, r, 200, o);
}

static enum MHD_Result api_analyze(qc_server_t *s, struct MHD_Connection *con, req_t *r) {
    char msg[512];
    json_t *j = parse_body(r, msg, sizeof msg);
    if (!j) return reply_error(con, r, 400, "%s", msg);
    const char *text = NULL, *session = NULL;
    size_t len = 0, slen = 0;
    long long max_tokens = QS_MAX_TOKENS_DEF;
    int stream = 0;
    if (care_text(s, j, &text, &len, msg, sizeof msg) ||
        get_string(j, "session", &session, &slen, msg, sizeof msg) < 0 ||
        get_int(j, "max_tokens", 1, s->n_ctx, &max_tokens, msg, sizeof msg) < 0 ||
        get_bool(j, "stream", &stream, msg, sizeof msg) < 0)
        goto bad;
    if (session && (slen == 0 || slen > QS_MAX_SESSION || strlen(session) != slen)) {
        snprintf(msg, sizeof msg, "\"session\" must be 1 to %d bytes", QS_MAX_SESSION);
        goto bad;
    }
    call_t *c = care_call(s, QS_ANALYZE, stream, text, session);
    json_decref(j);
    if (!c) return reply_error(con, r, 500, "out of memory");
    c->rq.max_tokens = (int)max_tokens;
    enum MHD_Result ret;
    if (call_submit(con, r, c, &ret)) return ret;
    json_t *o = json_pack("{s:o, s:b, s:s, s:s}", "emotion", emotion_json(&c->e), "urgent", c->sr.kind != 0,
                          "urgent_kind", qc_urgent_name(c->sr.kind), "reply", c->reply.p ? c->reply.p : "");
    if (o && c->sr.kind) json_object_set_new(o, "notice", json_string(c->notice));
    if (o && c->session) json_object_set_new(o, "session", json_string(c->session));
    call_free(c);
    return reply_json(con, r, 200, o);
bad:
    json_decref(j);
    return reply_error(con, r, 400, "%s", msg);
}

/* ==== OpenAI-compatible endpoints ==== */

/* Emits job text [emitted, limit) moved back to a UTF-8 character start
 * (mu held). */
static void job_emit(call_t *c, size_t limit) {
    job_t *j = &c->job;
    while (limit > j->emitted && limit < j->out.n && ((unsigned char)j->out.p[limit] & 0xC0) == 0x80) limit--;
    if (limit <= j->emitted || !c->streamed) return;
    call_sse(c, NULL,
             json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s%}, s:n}]}", "id", j->id, "object",
                       "chat.completion.chunk", "created", (json_int_t)j->created, "model", c->s->model_name,
                       "choices", "index", 0, "delta", "content", j->out.p + j->emitted, limit - j->emitted,
                       "finish_reason"));
    j->emitted = limit;
}

/* A completion's text: collected, ended at a stop string (cut from the
 * text), streamed up to what could still become a stop string. */
static int on_job_piece(void *user, const char *piece, size_t len) {
    call_t *c = user;
    job_t *j = &c->job;
    pthread_mutex_lock(&c->mu);
    if (j->stopped) { /* already cut at a stop string: nothing more (the detokenizer's flush) */
        pthread_mutex_unlock(&c->mu);
        return 1;
    }
    note_first(c);
    size_t from = j->out.n > j->max_stop ? j->out.n - j->max_stop : 0;
    if (!c->failed && qc_buf_add(&j->out, piece, len)) c->failed = 1;
    int stop = c->failed;
    for (int i = 0; !stop && i < j->n_stop; i++) {
        char *at = memmem(j->out.p + from, j->out.n - from, j->stop[i], strlen(j->stop[i]));
        if (at) {
            j->out.n = (size_t)(at - j->out.p);
            j->out.p[j->out.n] = 0;
            j->stopped = 1;
        }
    }
    if (j->stopped) job_emit(c, j->out.n);
    else if (!stop) job_emit(c, j->out.n > j->max_stop ? j->out.n - j->max_stop + (j->max_stop ? 1 : 0) : 0);
    pthread_mutex_unlock(&c->mu);
    return stop || j->stopped || atomic_load(&c->rq.cancel);
}

static const char *job_finish(const job_t *j) { return !j->stopped && j->hit_max ? "length" : "stop"; }

static json_t *usage_json(const job_t *j) {
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)j->ids.n, "completion_tokens",
                     (json_int_t)j->n_out, "total_tokens", (json_int_t)(j->ids.n + j->n_out));
}

static void on_job_done(void *user, qc_status st, const char *msg, size_t n_prompt, size_t n_out, int hit_max) {
    call_t *c = user;
    job_t *j = &c->job;
    call_metrics(c, n_prompt, n_out);
    pthread_mutex_lock(&c->mu);
    call_end(c, &st, &msg);
    c->st = st;
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    j->n_out = n_out;
    j->hit_max = hit_max;
    if (c->streamed) {
        if (st) {
            call_sse(c, NULL, json_pack("{s:{s:s, s:s}}", "error", "message", msg, "type", "server_error"));
        } else {
            job_emit(c, j->out.n);
            call_sse(c, NULL,
                     json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{}, s:s}], s:o}", "id", j->id, "object",
                               "chat.completion.chunk", "created", (json_int_t)j->created, "model", c->s->model_name,
                               "choices", "index", 0, "delta", "finish_reason", job_finish(j), "usage",
                               usage_json(j)));
        }
        call_push(c, "data: [DONE]\n\n", 14);
    }
    c->done = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Appends the ids of text (special tokens parsed or not). */
static qc_status add_ids(const qc_tokenizer_t *tok, const char *text, size_t len, int special, job_t *j) {
    int32_t *add = NULL;
    size_t k = 0;
    qc_status st = qc_tokenizer_encode(tok, text, len, special ? QC_TOK_PARSE_SPECIAL : 0, &add, &k);
    if (st) return st;
    st = qc_ids_add(&j->ids, add, k) ? QC_ERR_NOMEM : QC_OK;
    free(add);
    return st;
}

/* Reads the request into j: the messages in ChatML (their content as plain
 * text, never parsed for special tokens), sampling and stop strings. 0, or
 * -1 with the reason in msg. */
static int job_parse(qc_server_t *s, json_t *b, job_t *j, int *stream, char *msg, size_t n) {
    json_t *msgs = json_object_get(b, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        snprintf(msg, n, "\"messages\" (a non-empty array) is required");
        return -1;
    }
    size_t i;
    json_t *mv;
    json_array_foreach(msgs, i, mv) {
        const char *role = json_string_value(json_object_get(mv, "role"));
        json_t *c = json_object_get(mv, "content");
        if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))) {
            snprintf(msg, n, "messages[%zu].role must be \"system\", \"user\" or \"assistant\"", i);
            return -1;
        }
        if (!json_is_string(c)) {
            snprintf(msg, n, "messages[%zu].content must be a string", i);
            return -1;
        }
        char head[32];
        snprintf(head, sizeof head, "<|im_start|>%s\n", role);
        if (add_ids(s->tok, head, strlen(head), 1, j) ||
            add_ids(s->tok, json_string_value(c), json_string_length(c), 0, j) ||
            add_ids(s->tok, "<|im_end|>\n", 11, 1, j)) {
            snprintf(msg, n, "messages[%zu].content is not valid UTF-8", i);
            return -1;
        }
    }
    if (add_ids(s->tok, "<|im_start|>assistant\n", 22, 1, j) ||
        (s->qwen3 && add_ids(s->tok, "<think>\n\n</think>\n\n", 19, 1, j))) {
        snprintf(msg, n, "out of memory");
        return -1;
    }
    if (j->ids.n >= (size_t)s->n_ctx) {
        snprintf(msg, n, "the messages are %zu tokens, longer than the context (%d tokens)", j->ids.n, s->n_ctx);
        return -1;
    }
    long long max_tokens = QS_MAX_TOKENS_DEF, seed = 0;
    double temp = 0, top_p = 1;
    qc_model_sampling_defaults(s->m, &j->go.sampling);
    int has_seed;
    if (get_int(b, "max_tokens", 1, 1 << 20, &max_tokens, msg, n) < 0 ||
        get_int(b, "max_completion_tokens", 1, 1 << 20, &max_tokens, msg, n) < 0 ||
        get_bool(b, "stream", stream, msg, n) < 0 || (has_seed = get_int(b, "seed", 0, INT64_MAX, &seed, msg, n)) < 0)
        return -1;
    switch (get_number(b, "temperature", 0, 2, &temp, msg, n)) {
    case -1: return -1;
    case 1: j->go.sampling.temperature = (float)temp; break;
    }
    switch (get_number(b, "top_p", 0, 1, &top_p, msg, n)) {
    case -1: return -1;
    case 1: j->go.sampling.top_p = top_p > 0 ? (float)top_p : 1e-6f; break;
    }
    j->go.sampling.seed = has_seed ? (uint64_t)seed : (uint64_t)time(NULL) ^ (uint64_t)j->created * 2654435761u;
    size_t room = (size_t)s->n_ctx - j->ids.n;
    j->go.max_tokens = (int)((size_t)max_tokens < room ? (size_t)max_tokens : room);

    json_t *stop = json_object_get(b, "stop");
    if (stop && !json_is_null(stop)) {
        json_t *one = json_is_string(stop) ? stop : NULL;
        size_t k = one ? 1 : json_is_array(stop) ? json_array_size(stop) : 0;
        if (!one && (!json_is_array(stop) || k > QS_MAX_STOP)) {
            snprintf(msg, n, "\"stop\" must be a string or an array of at most %d strings", QS_MAX_STOP);
            return -1;
        }
        for (size_t q = 0; q < k; q++) {
            json_t *sv = one ? one : json_array_get(stop, q);
            if (!json_is_string(sv) || json_string_length(sv) == 0 || json_string_length(sv) > 256) {
                snprintf(msg, n, "each \"stop\" string must be 1 to 256 bytes");
                return -1;
            }
            if (!(j->stop[j->n_stop] = strdup(json_string_value(sv)))) {
                snprintf(msg, n, "out of memory");
                return -1;
            }
            size_t l = json_string_length(sv);
            if (l > j->max_stop) j->max_stop = l;
            j->n_stop++;
        }
    }
    return 0;
}

static enum MHD_Result v1_chat(qc_server_t *s, struct MHD_Connection *con, req_t *r) {
    char msg[512];
    json_t *b = parse_body(r, msg, sizeof msg);
    if (!b) return reply_error(con, r, 400, "%s", msg);
    call_t *c = call_new(s, QS_COMPLETION, 0);
    if (!c) {
        json_decref(b);
        return reply_error(con, r, 500, "out of memory");
    }
    job_t *j = &c->job;
    j->created = (long long)time(NULL);
    snprintf(j->id, sizeof j->id, "chatcmpl-%lu", (unsigned long)atomic_fetch_add(&s->n_completions, 1) + 1);
    int stream = 0;
    int bad = job_parse(s, b, j, &stream, msg, sizeof msg);
    json_decref(b);
    if (bad) {
        call_free(c);
        return reply_error(con, r, 400, "%s", msg);
    }
    c->streamed = stream;
    c->rq.ids = j->ids.p;
    c->rq.n_ids = j->ids.n;
    c->rq.sampling = j->go.sampling;
    c->rq.use_sampling = 1;
    c->rq.max_tokens = j->go.max_tokens;
    c->rq.on_piece = on_job_piece;
    c->rq.on_done = on_job_done;
    if (stream)
        call_sse(c, NULL,
                 json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:n}]}", "id", j->id, "object",
                           "chat.completion.chunk", "created", (json_int_t)j->created, "model", s->model_name,
                           "choices", "index", 0, "delta", "role", "assistant", "content", "", "finish_reason"));
    enum MHD_Result ret;
    if (call_submit(con, r, c, &ret)) return ret;
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:o}", "id", j->id, "object",
                          "chat.completion", "created", (json_int_t)j->created, "model", s->model_name, "choices",
                          "index", 0, "message", "role", "assistant", "content", j->out.p ? j->out.p : "",
                          "finish_reason", job_finish(j), "usage", usage_json(j));
    call_free(c);
    return reply_json(con, r, 200, o);
}

static enum MHD_Result v1_models(qc_server_t *s, struct MHD_Connection *con, req_t *r) {
    return reply_json(con, r, 200,
                      json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id", s->model_name,
                                "object", "model", "created", 0, "owned_by", "qcare"));
}

/* ==== the page and the metrics ==== */

/* The chat page (web/index.html, embedded by tools/embed.c). */
extern const unsigned char qc_web_index[];
extern const unsigned long qc_web_index_len;

static void hist_add(hist_t *h, double v) {
    int i = 0;
    while (i < N_BOUNDS && v > lat_bounds[i]) i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

/* One histogram in Prometheus' text format (labels: "" or `k="v",`). */
static void hist_print(qc_buf_t *t, const char *name, const char *labels, const hist_t *h) {
    unsigned long long cum = 0;
    for (int i = 0; i <= N_BOUNDS; i++) {
        cum += h->bucket[i];
        char le[32];
        if (i < N_BOUNDS) snprintf(le, sizeof le, "%g", lat_bounds[i]);
        else snprintf(le, sizeof le, "+Inf");
        qc_buf_printf(t, "%s_bucket{%sle=\"%s\"} %llu\n", name, labels, le, cum);
    }
    size_t ll = strlen(labels);
    char lab[128] = "";
    if (ll) snprintf(lab, sizeof lab, "{%.*s}", (int)(ll - 1), labels); /* without the trailing comma */
    qc_buf_printf(t, "%s_sum%s %.6f\n%s_count%s %llu\n", name, lab, h->sum, name, lab, h->count);
}

/* GET /metrics: Prometheus text exposition format 0.0.4. */
static enum MHD_Result reply_metrics(qc_server_t *s, struct MHD_Connection *con, req_t *r) {
    qs_stats_t st;
    qs_stats(s->sched, &st);
    qc_buf_t t = {0};
    qc_buf_printf(&t, "# HELP qcare_requests_total HTTP requests answered, by path and status.\n"
                "# TYPE qcare_requests_total counter\n");
    pthread_mutex_lock(&s->mmu);
    for (int k = 0; k < N_ROUTES; k++)
        for (int c = 0; c < N_CODES; c++)
            if (s->requests[k][c]) {
                char code[8];
                if (c < N_CODES - 1) snprintf(code, sizeof code, "%d", status_codes[c]);
                else snprintf(code, sizeof code, "other");
                qc_buf_printf(&t, "qcare_requests_total{path=\"%s\",code=\"%s\"} %llu\n", route_path[k], code,
                        s->requests[k][c]);
            }
    qc_buf_printf(&t, "# HELP qcare_request_duration_seconds Time from a request's arrival to its last byte.\n"
                "# TYPE qcare_request_duration_seconds histogram\n");
    for (int k = 0; k < N_ROUTES; k++)
        if (s->latency[k].count) {
            char lab[64];
            snprintf(lab, sizeof lab, "path=\"%s\",", route_path[k]);
            hist_print(&t, "qcare_request_duration_seconds", lab, &s->latency[k]);
        }
    qc_buf_printf(&t, "# HELP qcare_time_to_first_token_seconds Time from a request's arrival to its first reply text.\n"
                "# TYPE qcare_time_to_first_token_seconds histogram\n");
    hist_print(&t, "qcare_time_to_first_token_seconds", "", &s->first_token);
    pthread_mutex_unlock(&s->mmu);
    qc_buf_printf(&t,
            "# HELP qcare_prompt_tokens_total Prompt tokens of finished requests.\n"
            "# TYPE qcare_prompt_tokens_total counter\nqcare_prompt_tokens_total %lu\n"
            "# HELP qcare_generated_tokens_total Tokens generated for finished requests.\n"
            "# TYPE qcare_generated_tokens_total counter\nqcare_generated_tokens_total %lu\n"
            "# HELP qcare_streams_cancelled_total Streams ended early (client gone or error).\n"
            "# TYPE qcare_streams_cancelled_total counter\nqcare_streams_cancelled_total %lu\n",
            (unsigned long)atomic_load(&s->n_prompt_tokens), (unsigned long)atomic_load(&s->n_reply_tokens),
            (unsigned long)atomic_load(&s->n_streams_cancelled));
    qc_buf_printf(&t,
            "# HELP qcare_batch_passes_total Forward passes of the model (each batches every active request).\n"
            "# TYPE qcare_batch_passes_total counter\nqcare_batch_passes_total %llu\n"
            "# HELP qcare_batch_tokens_total Tokens run in those passes (decode and prompt).\n"
            "# TYPE qcare_batch_tokens_total counter\nqcare_batch_tokens_total %llu\n"
            "# HELP qcare_decode_tokens_total Decode tokens run in those passes.\n"
            "# TYPE qcare_decode_tokens_total counter\nqcare_decode_tokens_total %llu\n"
            "# HELP qcare_model_busy_seconds_total Time the model spent in passes and emotion judgments.\n"
            "# TYPE qcare_model_busy_seconds_total counter\nqcare_model_busy_seconds_total %.3f\n"
            "# HELP qcare_decode_only_seconds_total Time in passes without prompt tokens (steady decoding).\n"
            "# TYPE qcare_decode_only_seconds_total counter\nqcare_decode_only_seconds_total %.3f\n"
            "# HELP qcare_decode_only_tokens_total Tokens of those passes.\n"
            "# TYPE qcare_decode_only_tokens_total counter\nqcare_decode_only_tokens_total %llu\n",
            st.passes, st.pass_tokens, st.decode_tokens, st.busy_s, st.decode_s, st.decode_pass_tokens);
    qc_buf_printf(&t,
            "# HELP qcare_queue_depth Requests waiting for a slot.\n# TYPE qcare_queue_depth gauge\n"
            "qcare_queue_depth %d\n"
            "# HELP qcare_queue_capacity Requests that may wait before 503.\n# TYPE qcare_queue_capacity gauge\n"
            "qcare_queue_capacity %d\n"
            "# HELP qcare_active_requests Requests generating now.\n# TYPE qcare_active_requests gauge\n"
            "qcare_active_requests %d\n"
            "# HELP qcare_parallel_slots Requests that may generate at once.\n# TYPE qcare_parallel_slots gauge\n"
            "qcare_parallel_slots %d\n",
            st.queued, s->queue, st.active, s->parallel);
    qc_buf_printf(&t,
            "# HELP qcare_sessions Conversations kept.\n# TYPE qcare_sessions gauge\nqcare_sessions %d\n"
            "# HELP qcare_sessions_resident Conversations holding their KV state in memory.\n"
            "# TYPE qcare_sessions_resident gauge\nqcare_sessions_resident %d\n"
            "# HELP qcare_sessions_kv_bytes KV cache bytes held by conversations.\n"
            "# TYPE qcare_sessions_kv_bytes gauge\nqcare_sessions_kv_bytes %zu\n"
            "# HELP qcare_uptime_seconds Seconds since the server started.\n# TYPE qcare_uptime_seconds gauge\n"
            "qcare_uptime_seconds %.1f\n",
            st.sessions, st.resident, st.session_bytes, (qc_now_ms() - s->t_start) / 1e3);
    size_t len = t.n;
    char *text = qc_buf_take(&t);
    if (!text) return reply_error(con, r, 500, "out of memory");
    return reply_bytes(con, r, 200, text, len, MHD_RESPMEM_MUST_FREE, "text/plain; version=0.0.4; charset=utf-8",
                       "Cache-Control", "no-cache");
}

/* ==== routing ==== */

/* Constant-time comparison of the Authorization header with "Bearer KEY". */
static int authorized(const qc_server_t *s, struct MHD_Connection *con) {
    const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(s->api_key);
    unsigned char diff = a != b;
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)(h[i] ^ s->api_key[i % (b ? b : 1)]);
    return diff == 0;
}

static enum MHD_Result route(qc_server_t *s, struct MHD_Connection *con, req_t *r, const char *url,
                             const char *method) {
    static const struct {
        const char *method;
        int open; /* served without the API key */
    } routes[R_OTHER] = {
        [R_HEALTH] = {"GET", 1},  [R_PAGE] = {"GET", 1},  [R_EMOTION] = {"POST", 0}, [R_ANALYZE] = {"POST", 0},
        [R_MODELS] = {"GET", 0},  [R_CHAT] = {"POST", 0}, [R_METRICS] = {"GET", 0},
    };
    int k = 0;
    while (k < R_OTHER && strcmp(url, route_path[k])) k++;
    r->route = k;
    if (k == R_OTHER) return reply_error(con, r, 404, "no such path: %.200s", url);
    int is_head = !strcmp(method, "HEAD") && !strcmp(routes[k].method, "GET");
    if (strcmp(method, routes[k].method) && !is_head) return reply_405(con, r, routes[k].method);
    if (s->api_key && !routes[k].open && !authorized(s, con))
        return reply_error(con, r, 401, "a valid API key is required (Authorization: Bearer KEY)");
    if (r->too_big) return reply_error(con, r, 413, "the request body is larger than %u bytes", QS_MAX_BODY);
    switch (k) {
    case R_HEALTH: return reply_json(con, r, 200, json_pack("{s:s}", "status", "ok"));
    case R_PAGE:
        return reply_bytes(con, r, 200, qc_web_index, qc_web_index_len, MHD_RESPMEM_PERSISTENT,
                           "text/html; charset=utf-8", "Cache-Control", "no-cache");
    case R_EMOTION: return api_emotion(s, con, r);
    case R_ANALYZE: return api_analyze(s, con, r);
    case R_MODELS: return v1_models(s, con, r);
    case R_CHAT: return v1_chat(s, con, r);
    default: return reply_metrics(s, con, r);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls) {
    (void)version;
    qc_server_t *s = cls;
    req_t *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->t0 = qc_now_ms();
        r->route = R_OTHER;
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Past the limit the rest is read and dropped, then answered 413. */
        if (!r->too_big && r->body.n + *upload_size > QS_MAX_BODY) {
            r->too_big = 1;
            qc_buf_free(&r->body);
        }
        if (!r->too_big && qc_buf_add(&r->body, upload_data, *upload_size)) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    return route(s, con, r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)con;
    qc_server_t *s = cls;
    req_t *r = *con_cls;
    if (!r) return;
    double ms = qc_now_ms() - r->t0;
    int c = 0;
    while (c < N_CODES - 1 && status_codes[c] != r->status) c++;
    pthread_mutex_lock(&s->mmu);
    s->requests[r->route][c]++;
    hist_add(&s->latency[r->route], ms / 1e3);
    pthread_mutex_unlock(&s->mmu);
    if (!s->quiet)
        fprintf(stderr, "%s %s %d %.1f ms%s\n", r->method, r->path, r->status, ms,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed)");
    qc_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

/* ==== start and stop ==== */

/* libmicrohttpd's own messages (e.g. a client gone mid-stream), silenced
 * by --quiet like the request log. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    const qc_server_t *s = cls;
    if (s->quiet) return;
    fprintf(stderr, "libmicrohttpd: ");
    vfprintf(stderr, fmt, ap);
}

qc_status qc_server_start(qc_model_t *m, const qc_server_opts_t *opts, qc_server_t **out, char *err,
                          size_t err_size) {
    *out = NULL;
    qc_server_opts_t o = opts ? *opts : (qc_server_opts_t){0};
    const char *host = o.host ? o.host : "127.0.0.1";
    int port = o.port ? o.port : 8080;
    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    int v6 = 0;
    if (port < 1 || port > 65535) {
        snprintf(err, err_size, "port %d is out of range", port);
        return QC_ERR_ARG;
    }
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        v6 = 1;
    } else {
        snprintf(err, err_size, "--host '%s' is not an IPv4 or IPv6 address", host);
        return QC_ERR_ARG;
    }
    qc_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return QC_ERR_NOMEM;
    }
    pthread_mutex_init(&s->mmu, NULL);
    s->m = m;
    s->tok = qc_model_tokenizer(m);
    s->n_ctx = o.n_ctx > 0 ? o.n_ctx : 2048;
    s->parallel = o.parallel > 0 ? o.parallel : 4;
    s->queue = o.queue > 0 ? o.queue : o.queue < 0 ? 0 : 4 * s->parallel;
    s->quiet = o.quiet;
    s->qwen3 = qc_model_arch(m) == QC_ARCH_QWEN3;
    s->t_start = qc_now_ms();
    qc_status st = QC_ERR_NOMEM;
    if (!(s->model_name = strdup(o.model_name ? o.model_name : "qcare")) ||
        (o.api_key && !(s->api_key = strdup(o.api_key)))) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    qc_care_opts_t co = {.n_ctx = s->n_ctx, .use_prefix_cache = 1};
    if ((st = qc_care_new(m, &co, &s->care, err, err_size))) goto fail;
    if (!(s->sched = qs_sched_new(m, s->care, s->parallel, s->queue, s->n_ctx, err, err_size))) {
        st = QC_ERR_NOMEM;
        goto fail;
    }
    unsigned timeout = o.timeout_s > 0 ? (unsigned)o.timeout_s : 60;
    s->keepalive_ms = timeout * 1000 / 3 < 15000 ? (int)(timeout * 1000 / 3) : 15000;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
                                (v6 ? MHD_USE_IPv6 : 0),
                            0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                            v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_log, s, MHD_OPTION_END);
    if (!s->d) {
        st = QC_ERR_IO;
        snprintf(err, err_size, "cannot listen on %s port %d (in use?)", host, port);
        goto fail;
    }
    *out = s;
    return QC_OK;
fail:
    qc_server_stop(s);
    return st;
}

void qc_server_stop(qc_server_t *s) {
    if (!s) return;
    /* Requests still running end first (streams get their last event), so
     * no connection waits on the model while MHD stops. */
    qs_sched_stop(s->sched);
    if (s->d) MHD_stop_daemon(s->d);
    qs_sched_free(s->sched);
    qc_care_free(s->care);
    free(s->api_key);
    free(s->model_name);
    pthread_mutex_destroy(&s->mmu);
    free(s);
}
