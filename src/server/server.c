/* server.c — `qcare serve`: the HTTP API on libmicrohttpd.
 *
 * One connection = one thread (MHD_USE_THREAD_PER_CONNECTION). Every request
 * body is gathered (at most QS_MAX_BODY bytes), then routed. Model work (the
 * care pipeline and /v1/chat/completions) is serialized by one mutex: a
 * request runs alone on the model. Continuous batching (one scheduler that
 * puts the next token of every active request into one forward pass) is a
 * later step and will replace this mutex.
 *
 * Streams (Server-Sent Events) are made by a producer thread per request
 * that writes events into a byte queue; MHD's content reader blocks on the
 * queue. When the client goes away MHD frees the response, which cancels
 * the producer (its token callback returns non-zero) and joins it. */
#include "server/server.h"

#include <arpa/inet.h>
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

struct qc_server {
    struct MHD_Daemon *d;
    qc_model_t *m;
    const qc_tokenizer_t *tok;
    qc_care_t *care;
    qc_ctx_t *gen; /* the sequence of /v1/chat/completions */
    pthread_mutex_t mu; /* held for all model work (see the top of the file) */
    char *api_key, *model_name;
    int n_ctx, quiet, qwen3;
    atomic_ulong n_completions;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ==== requests and replies ==== */

/* A growing NUL-terminated text (a request body, a generated reply). */
typedef struct {
    char *text;
    size_t len, cap;
} text_t;

static int text_add(text_t *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t nc = (t->len + n + 1) * 2;
        char *nb = realloc(t->text, nc);
        if (!nb) return -1;
        t->text = nb;
        t->cap = nc;
    }
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = 0;
    return 0;
}


typedef struct {
    text_t body;
    int too_big, status;
    double t0;
    char method[16], path[256];
} req_t;

/* Queues a JSON reply (takes the reference to j). */
static enum MHD_Result reply_json(struct MHD_Connection *con, req_t *r, unsigned status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    if (status == MHD_HTTP_UNAUTHORIZED) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    r->status = (int)status;
    enum MHD_Result ret = MHD_queue_response(con, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *con, req_t *r, unsigned status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reply_json(con, r, status, json_pack("{s:s}", "error", msg));
}

static enum MHD_Result reply_405(struct MHD_Connection *con, req_t *r, const char *allow) {
    char *s = strdup("{\"error\":\"method not allowed\"}");
    struct MHD_Response *resp = s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(resp, "Allow", allow);
    r->status = 405;
    enum MHD_Result ret = MHD_queue_response(con, 405, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The body as a JSON object, or NULL with the reason in msg. jansson
 * rejects invalid UTF-8 and "\u0000" in strings. */
static json_t *parse_body(const req_t *r, char *msg, size_t n) {
    json_error_t je;
    json_t *j = json_loadb(r->body.text ? r->body.text : "", r->body.len, 0, &je);
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

/* ==== streams (Server-Sent Events) ==== */

typedef struct stream stream_t;

/* One chat completion: the prompt ids, the sampling, the stop strings and
 * the text generated so far. */
typedef struct {
    int32_t *ids;
    size_t n_ids, n_out;
    qc_generate_opts_t go;
    char *stop[QS_MAX_STOP];
    int n_stop, stopped;
    size_t max_stop, emitted;
    text_t out;
    stream_t *st; /* NULL: not streamed */
    char id[48];
    long long created;
} job_t;

struct stream {
    qc_server_t *s;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf;
    size_t len, cap, off;
    int done;
    atomic_int cancel; /* the client is gone */
    void (*run)(stream_t *);
    /* /api/analyze */
    char *text, *session;
    int max_tokens;
    /* /v1/chat/completions */
    job_t job;
};

static void job_clear(job_t *j) {
    free(j->ids);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->out.text);
    memset(j, 0, sizeof *j);
}

static void stream_push(stream_t *st, const char *data, size_t n) {
    pthread_mutex_lock(&st->mu);
    if (st->len + n > st->cap) {
        size_t nc = (st->len + n) * 2;
        char *nb = realloc(st->buf, nc);
        if (!nb) {
            atomic_store(&st->cancel, 1);
            pthread_mutex_unlock(&st->mu);
            return;
        }
        st->buf = nb;
        st->cap = nc;
    }
    memcpy(st->buf + st->len, data, n);
    st->len += n;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* Writes one event: "event: NAME\n" (when name) then "data: JSON\n\n".
 * Takes the reference to j. */
static void stream_sse(stream_t *st, const char *name, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        atomic_store(&st->cancel, 1);
        return;
    }
    if (name) {
        stream_push(st, "event: ", 7);
        stream_push(st, name, strlen(name));
        stream_push(st, "\n", 1);
    }
    stream_push(st, "data: ", 6);
    stream_push(st, s, strlen(s));
    stream_push(st, "\n\n", 2);
    free(s);
}

static void *stream_main(void *arg) {
    stream_t *st = arg;
    st->run(st);
    pthread_mutex_lock(&st->mu);
    st->done = 1;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* MHD's content reader: blocks until the producer wrote something. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_t *st = cls;
    pthread_mutex_lock(&st->mu);
    while (st->off == st->len && !st->done) pthread_cond_wait(&st->cv, &st->mu);
    ssize_t n;
    if (st->off < st->len) {
        size_t k = st->len - st->off < max ? st->len - st->off : max;
        memcpy(buf, st->buf + st->off, k);
        st->off += k;
        if (st->off == st->len) st->off = st->len = 0;
        n = (ssize_t)k;
    } else {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

/* MHD frees the response (stream finished or client gone): stop the
 * producer and free everything. */
static void stream_free(void *cls) {
    stream_t *st = cls;
    if (!st) return;
    atomic_store(&st->cancel, 1);
    if (st->started) pthread_join(st->th, NULL);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st->buf);
    free(st->text);
    free(st->session);
    job_clear(&st->job);
    free(st);
}

static stream_t *stream_new(qc_server_t *s, void (*run)(stream_t *)) {
    stream_t *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->s = s;
    st->run = run;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    return st;
}

/* Starts the producer and queues the event-stream response; on failure
 * frees st and replies 500. */
static enum MHD_Result stream_start(struct MHD_Connection *con, req_t *r, stream_t *st) {
    if (pthread_create(&st->th, NULL, stream_main, st)) {
        stream_free(st);
        return reply_error(con, r, 500, "cannot start a thread");
    }
    st->started = 1;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
    if (!resp) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    r->status = 200;
    enum MHD_Result ret = MHD_queue_response(con, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ==== the care endpoints ==== */

static json_t *emotion_json(const qc_emotion_t *e) {
    return json_pack("{s:s, s:{s:f, s:f, s:f}}", "label", qc_emotion_name(e->label), "probs", "positive",
                     (double)e->probs[0], "negative", (double)e->probs[1], "neutral", (double)e->probs[2]);
}

static unsigned care_status(qc_status st) { return st == QC_ERR_CONTEXT || st == QC_ERR_ARG ? 400 : 500; }

typedef struct {
    text_t reply;
    stream_t *st;
    int n_pieces;
} piece_sink_t;

static int on_reply_piece(void *user, int32_t id, const char *piece, size_t len) {
    (void)id;
    piece_sink_t *k = user;
    if (k->st && atomic_load(&k->st->cancel)) return 1;
    if (text_add(&k->reply, piece, len)) return 1;
    if (k->st && len) stream_sse(k->st, "chunk", json_pack("{s:s%}", "text", piece, len));
    k->n_pieces++;
    return 0;
}

/* Emotion, safety check and reply for one message; streamed into st when
 * given, else the JSON answer in *out. Returns the HTTP status (errors:
 * message in msg). */
static unsigned analyze(qc_server_t *s, const char *text, const char *session, int max_tokens, stream_t *st,
                        json_t **out, char *msg, size_t n) {
    piece_sink_t k = {.st = st};
    qc_emotion_t e;
    unsigned status = 200;
    char notice[2048] = "";
    size_t len = strlen(text);
    pthread_mutex_lock(&s->mu);
    qc_status rc = qc_care_emotion(s->care, text, len, &e);
    qc_safety_result_t sr = qc_safety_check(text, len);
    if (!rc) {
        if (sr.kind) qc_safety_notice(sr.kind, NULL, notice, sizeof notice);
        if (st) {
            json_t *ev = json_pack("{s:o, s:b, s:s}", "emotion", emotion_json(&e), "urgent", sr.kind != 0,
                                   "urgent_kind", qc_urgent_name(sr.kind));
            stream_sse(st, "emotion", ev);
            if (sr.kind)
                stream_sse(st, "notice", json_pack("{s:s, s:s}", "kind", qc_urgent_name(sr.kind), "text", notice));
        }
        rc = session ? qc_care_chat(s->care, session, text, e.label, NULL, max_tokens, on_reply_piece, &k)
                     : qc_care_reply(s->care, text, e.label, NULL, max_tokens, on_reply_piece, &k);
    }
    if (rc) {
        status = care_status(rc);
        snprintf(msg, n, "%s", qc_care_errmsg(s->care));
    }
    pthread_mutex_unlock(&s->mu);
    if (st) {
        if (status != 200) stream_sse(st, "error", json_pack("{s:s}", "error", msg));
        else stream_sse(st, "done", json_pack("{s:i}", "chunks", k.n_pieces));
    } else if (status == 200) {
        json_t *j = json_pack("{s:o, s:b, s:s, s:s}", "emotion", emotion_json(&e), "urgent", sr.kind != 0,
                              "urgent_kind", qc_urgent_name(sr.kind), "reply", k.reply.text ? k.reply.text : "");
        if (j && sr.kind) json_object_set_new(j, "notice", json_string(notice));
        if (session && j) json_object_set_new(j, "session", json_string(session));
        *out = j;
        if (!j) status = 500, snprintf(msg, n, "out of memory");
    }
    free(k.reply.text);
    return status;
}

static void analyze_stream(stream_t *st) {
    char msg[512];
    json_t *unused = NULL;
    analyze(st->s, st->text, st->session, st->max_tokens, st, &unused, msg, sizeof msg);
    json_decref(unused);
}

static enum MHD_Result api_emotion(qc_server_t *s, struct MHD_Connection *con, req_t *r) {
    char msg[512];
    json_t *j = parse_body(r, msg, sizeof msg);
    if (!j) return reply_error(con, r, 400, "%s", msg);
    const char *text;
    size_t len;
    int has = get_string(j, "text", &text, &len, msg, sizeof msg);
    if (has <= 0) {
        json_decref(j);
        return reply_error(con, r, 400, "%s", has < 0 ? msg : "\"text\" (a string) is required");
    }
    if (check_length(s, "\"text\"", text, len, msg, sizeof msg)) {
        json_decref(j);
        return reply_error(con, r, 400, "%s", msg);
    }
    qc_emotion_t e;
    pthread_mutex_lock(&s->mu);
    qc_status rc = qc_care_emotion(s->care, text, len, &e);
    if (rc) snprintf(msg, sizeof msg, "%s", qc_care_errmsg(s->care));
    pthread_mutex_unlock(&s->mu);
    qc_safety_result_t sr = qc_safety_check(text, len);
    json_decref(j);
    if (rc) return reply_error(con, r, care_status(rc), "%s", msg);
    json_t *o = emotion_json(&e);
    if (o) {
        json_object_set_new(o, "urgent", json_boolean(sr.kind != 0));
        json_object_set_new(o, "urgent_kind", json_string(qc_urgent_name(sr.kind)));
        json_object_set_new(o, "ms", json_real(e.ms));
    }
    return reply_json(con, r, 200, o);
}

static enum MHD_Result api_analyze(qc_server_t *s, struct MHD_Connection *con, req_t *r) {
    char msg[512];
    json_t *j = parse_body(r, msg, sizeof msg);
    if (!j) return reply_error(con, r, 400, "%s", msg);
    const char *text = NULL, *session = NULL;
    size_t len = 0, slen = 0;
    long long max_tokens = QS_MAX_TOKENS_DEF;
    int stream = 0, has;
    if ((has = get_string(j, "text", &text, &len, msg, sizeof msg)) <= 0) {
        if (!has) snprintf(msg, sizeof msg, "\"text\" (a string) is required");
        goto bad;
    }
    if (get_string(j, "session", &session, &slen, msg, sizeof msg) < 0 ||
        get_int(j, "max_tokens", 1, s->n_ctx, &max_tokens, msg, sizeof msg) < 0 ||
        get_bool(j, "stream", &stream, msg, sizeof msg) < 0)
        goto bad;
    if (session && (slen == 0 || slen > QS_MAX_SESSION)) {
        snprintf(msg, sizeof msg, "\"session\" must be 1 to %d bytes", QS_MAX_SESSION);
        goto bad;
    }
    if (check_length(s, "\"text\"", text, len, msg, sizeof msg)) goto bad;
    if (stream) {
        stream_t *st = stream_new(s, analyze_stream);
        if (!st || !(st->text = strdup(text)) || (session && !(st->session = strdup(session)))) {
            stream_free(st);
            json_decref(j);
            return reply_error(con, r, 500, "out of memory");
        }
        st->max_tokens = (int)max_tokens;
        json_decref(j);
        return stream_start(con, r, st);
    }
    json_t *out = NULL;
    unsigned status = analyze(s, text, session, (int)max_tokens, NULL, &out, msg, sizeof msg);
    json_decref(j);
    if (status != 200) return reply_error(con, r, status, "%s", msg);
    return reply_json(con, r, 200, out);
bad:
    json_decref(j);
    return reply_error(con, r, 400, "%s", msg);
}

/* ==== OpenAI-compatible endpoints ==== */

/* Emits job text [emitted, limit) moved back to a UTF-8 character start. */
static void job_emit(job_t *j, size_t limit) {
    while (limit > j->emitted && limit < j->out.len && ((unsigned char)j->out.text[limit] & 0xC0) == 0x80) limit--;
    if (limit <= j->emitted || !j->st) return;
    stream_sse(j->st, NULL,
               json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s%}, s:n}]}", "id", j->id, "object",
                         "chat.completion.chunk", "created", (json_int_t)j->created, "model", j->st->s->model_name,
                         "choices", "index", 0, "delta", "content", j->out.text + j->emitted, limit - j->emitted,
                         "finish_reason"));
    j->emitted = limit;
}

/* Token callback of a completion: collects the text, ends at a stop string
 * (cut from the text), streams what can no longer become a stop string. */
static int job_token(void *user, int32_t id, const char *piece, size_t len) {
    (void)id;
    job_t *j = user;
    if (j->st && atomic_load(&j->st->cancel)) return 1;
    size_t from = j->out.len > j->max_stop ? j->out.len - j->max_stop : 0;
    if (text_add(&j->out, piece, len)) return 1;
    for (int i = 0; i < j->n_stop; i++) {
        char *at = memmem(j->out.text + from, j->out.len - from, j->stop[i], strlen(j->stop[i]));
        if (at) {
            j->out.len = (size_t)(at - j->out.text);
            j->out.text[j->out.len] = 0;
            j->stopped = 1;
        }
    }
    if (j->stopped) {
        job_emit(j, j->out.len);
        return 1;
    }
    job_emit(j, j->out.len > j->max_stop ? j->out.len - j->max_stop + (j->max_stop ? 1 : 0) : 0);
    return 0;
}

/* Runs the completion on the shared sequence. */
static qc_status job_run(qc_server_t *s, job_t *j, char *msg, size_t n) {
    pthread_mutex_lock(&s->mu);
    qc_ctx_truncate(s->gen, 0);
    qc_status st = qc_generate(s->gen, j->ids, j->n_ids, &j->go, job_token, j, NULL, &j->n_out);
    if (st) snprintf(msg, n, "%s", qc_ctx_errmsg(s->gen));
    pthread_mutex_unlock(&s->mu);
    return st;
}

static const char *job_finish(const job_t *j) {
    return !j->stopped && j->n_out >= (size_t)j->go.max_tokens ? "length" : "stop";
}

static json_t *usage_json(const job_t *j) {
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)j->n_ids, "completion_tokens",
                     (json_int_t)j->n_out, "total_tokens", (json_int_t)(j->n_ids + j->n_out));
}

static void chat_stream(stream_t *st) {
    job_t *j = &st->job;
    char msg[512];
    stream_sse(st, NULL,
               json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:n}]}", "id", j->id, "object",
                         "chat.completion.chunk", "created", (json_int_t)j->created, "model", st->s->model_name,
                         "choices", "index", 0, "delta", "role", "assistant", "content", "", "finish_reason"));
    if (job_run(st->s, j, msg, sizeof msg)) {
        stream_sse(st, NULL, json_pack("{s:{s:s, s:s}}", "error", "message", msg, "type", "server_error"));
    } else {
        job_emit(j, j->out.len);
        stream_sse(st, NULL,
                   json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{}, s:s}], s:o}", "id", j->id, "object",
                             "chat.completion.chunk", "created", (json_int_t)j->created, "model", st->s->model_name,
                             "choices", "index", 0, "delta", "finish_reason", job_finish(j), "usage", usage_json(j)));
    }
    stream_push(st, "data: [DONE]\n\n", 14);
}

/* Appends the ids of text (special tokens parsed or not). */
static qc_status add_ids(const qc_tokenizer_t *tok, const char *text, size_t len, int special, job_t *j) {
    int32_t *add = NULL;
    size_t k = 0;
    qc_status st = qc_tokenizer_encode(tok, text, len, special ? QC_TOK_PARSE_SPECIAL : 0, &add, &k);
    if (st) return st;
    int32_t *grown = realloc(j->ids, (j->n_ids + k + 1) * sizeof *grown);
    if (!grown) {
        free(add);
        return QC_ERR_NOMEM;
    }
    if (k) memcpy(grown + j->n_ids, add, k * sizeof *add);
    j->ids = grown;
    j->n_ids += k;
    free(add);
    return QC_OK;
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
    if (j->n_ids >= (size_t)s->n_ctx) {
        snprintf(msg, n, "the messages are %zu tokens, longer than the context (%d tokens)", j->n_ids, s->n_ctx);
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
    size_t room = (size_t)s->n_ctx - j->n_ids;
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
    stream_t *st = stream_new(s, chat_stream);
    if (!st) {
        json_decref(b);
        return reply_error(con, r, 500, "out of memory");
    }
    job_t *j = &st->job;
    j->created = (long long)time(NULL);
    snprintf(j->id, sizeof j->id, "chatcmpl-%lu", (unsigned long)atomic_fetch_add(&s->n_completions, 1) + 1);
    int stream = 0;
    int bad = job_parse(s, b, j, &stream, msg, sizeof msg);
    json_decref(b);
    if (bad) {
        stream_free(st);
        return reply_error(con, r, 400, "%s", msg);
    }
    if (stream) {
        j->st = st;
        return stream_start(con, r, st);
    }
    if (job_run(s, j, msg, sizeof msg)) {
        stream_free(st);
        return reply_error(con, r, 500, "%s", msg);
    }
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:o}", "id", j->id, "object",
                          "chat.completion", "created", (json_int_t)j->created, "model", s->model_name, "choices",
                          "index", 0, "message", "role", "assistant", "content", j->out.text ? j->out.text : "",
                          "finish_reason", job_finish(j), "usage", usage_json(j));
    stream_free(st);
    return reply_json(con, r, 200, o);
}

static enum MHD_Result v1_models(qc_server_t *s, struct MHD_Connection *con, req_t *r) {
    return reply_json(con, r, 200,
                      json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id", s->model_name,
                                "object", "model", "created", 0, "owned_by", "qcare"));
}

/* ==== routing ==== */

/* The chat page (web/index.html, embedded by tools/embed.c). */
extern const unsigned char qc_web_index[];
extern const unsigned long qc_web_index_len;

static enum MHD_Result reply_page(struct MHD_Connection *con, req_t *r) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(qc_web_index_len, (void *)qc_web_index, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    r->status = 200;
    enum MHD_Result ret = MHD_queue_response(con, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

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
        const char *path, *method;
        int open; /* served without the API key */
    } routes[] = {
        {"/health", "GET", 1}, {"/", "GET", 1}, {"/api/emotion", "POST", 0}, {"/api/analyze", "POST", 0},
        {"/v1/models", "GET", 0}, {"/v1/chat/completions", "POST", 0},
    };
    size_t k = 0, n = sizeof routes / sizeof routes[0];
    while (k < n && strcmp(url, routes[k].path)) k++;
    if (k == n) return reply_error(con, r, 404, "no such path: %.200s", url);
    int is_head = !strcmp(method, "HEAD") && !strcmp(routes[k].method, "GET");
    if (strcmp(method, routes[k].method) && !is_head) return reply_405(con, r, routes[k].method);
    if (s->api_key && !routes[k].open && !authorized(s, con))
        return reply_error(con, r, 401, "a valid API key is required (Authorization: Bearer KEY)");
    if (r->too_big) return reply_error(con, r, 413, "the request body is larger than %u bytes", QS_MAX_BODY);
    switch (k) {
    case 0: return reply_json(con, r, 200, json_pack("{s:s}", "status", "ok"));
    case 1: return reply_page(con, r);
    case 2: return api_emotion(s, con, r);
    case 3: return api_analyze(s, con, r);
    case 4: return v1_models(s, con, r);
    default: return v1_chat(s, con, r);
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
        r->t0 = now_ms();
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Past the limit the rest is read and dropped, then answered 413. */
        if (!r->too_big && r->body.len + *upload_size > QS_MAX_BODY) {
            r->too_big = 1;
            free(r->body.text);
            r->body = (text_t){0};
        }
        if (!r->too_big && text_add(&r->body, upload_data, *upload_size)) return MHD_NO;
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
    if (!s->quiet)
        fprintf(stderr, "%s %s %d %.1f ms%s\n", r->method, r->path, r->status, now_ms() - r->t0,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed)");
    free(r->body.text);
    free(r);
    *con_cls = NULL;
}

/* ==== start and stop ==== */

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
    pthread_mutex_init(&s->mu, NULL);
    s->m = m;
    s->tok = qc_model_tokenizer(m);
    s->n_ctx = o.n_ctx > 0 ? o.n_ctx : 2048;
    s->quiet = o.quiet;
    s->qwen3 = qc_model_arch(m) == QC_ARCH_QWEN3;
    qc_status st = QC_ERR_NOMEM;
    if (!(s->model_name = strdup(o.model_name ? o.model_name : "qcare")) ||
        (o.api_key && !(s->api_key = strdup(o.api_key))) || !(s->gen = qc_ctx_new(m, s->n_ctx, NULL))) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    qc_care_opts_t co = {.n_ctx = s->n_ctx, .use_prefix_cache = 1};
    if ((st = qc_care_new(m, &co, &s->care, err, err_size))) goto fail;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
                                (v6 ? MHD_USE_IPv6 : 0),
                            0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                            v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
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
    if (s->d) MHD_stop_daemon(s->d);
    qc_care_free(s->care);
    qc_ctx_free(s->gen);
    free(s->api_key);
    free(s->model_name);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
