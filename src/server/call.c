/* call.c — calls: one request's model work, handed to the scheduler
 * (sched.c) and answered whole or streamed as Server-Sent Events.
 *
 * The endpoint sets the scheduler's callbacks; they write the result into
 * the call or, streamed, raw records (qs_call_event: the text of a piece,
 * the emotion, the end) that MHD's content reader turns into Server-Sent
 * Events on the connection's thread (the endpoint's format function), so
 * the model never waits for JSON. Nothing here blocks a libmicrohttpd thread: a plain call
 * suspends its connection until on_done resumes it, and MHD then calls the
 * handler again, which answers through the endpoint's answer function
 * (qs_call_answer); a stream's content reader suspends the connection
 * whenever it has nothing to send, and the next event resumes it. MHD does
 * not watch a suspended connection's socket, so conn.c does: a client that
 * hangs up cancels its request, queued or running, streamed or not (its
 * slot is freed at the scheduler's next pass). A full queue is answered 503
 * with Retry-After.
 *
 * A call is freed by the last of its owners to let go (refs): the
 * scheduler, until on_done; the connection (a plain call's request state,
 * or a stream's MHD response); the watcher, while it acts on it. */
#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

qs_call_t *qs_call_new(qc_server_t *s, size_t size, void (*clear)(qs_call_t *c), int kind, int streamed) {
    qs_call_t *c = calloc(1, size);
    if (!c) return NULL;
    c->s = s;
    c->rq.kind = kind;
    c->rq.user = c;
    c->streamed = streamed;
    c->clear = clear;
    c->t0 = qc_now_ms();
    c->watch = -1;
    c->watch_fd = -1;
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void qs_call_free(qs_call_t *c) {
    if (!c) return;
    pthread_mutex_destroy(&c->mu);
    qc_buf_free(&c->ev);
    qc_buf_free(&c->raw);
    qc_buf_free(&c->rd);
    if (c->clear) c->clear(c);
    free(c);
}

static void call_unref(qs_call_t *c) {
    if (atomic_fetch_sub(&c->refs, 1) == 1) qs_call_free(c);
}

/* ==== suspending and resuming (mu held) ==== */

/* MHD stops processing the connection (called on its thread); the watcher
 * looks at its socket meanwhile. A suspended stream is woken for a
 * keep-alive after keepalive_ms. */
static void call_suspend(qs_call_t *c) {
    c->suspended = 1;
    MHD_suspend_connection(c->con);
    qs_watch_add(c->s->conns, c, c->fd, c->streamed ? qc_now_ms() + c->s->keepalive_ms : 0);
}

/* Resumes the connection if it is suspended: MHD calls the handler (a
 * plain call) or the content reader (a stream) again. */
static void call_wake(qs_call_t *c) {
    if (!c->suspended) return;
    qs_watch_del(c->s->conns, c);
    c->suspended = 0;
    MHD_resume_connection(c->con);
}

void qs_call_watched(qs_call_t *c, int hangup) {
    pthread_mutex_lock(&c->mu);
    if (hangup) {
        c->gone = 1;
        atomic_store(&c->rq.cancel, 1);
        if (c->streamed) call_wake(c); /* the reader ends the stream; a plain call waits for on_done */
    } else if (!c->done) {
        c->keepalive_due = 1;
        call_wake(c);
    }
    pthread_mutex_unlock(&c->mu);
    call_unref(c);
}

/* ==== writing: the scheduler's thread ==== */

void qs_call_event(qs_call_t *c, int kind, const void *data, size_t n) {
    if (c->failed) return;
    unsigned char head[5] = {(unsigned char)kind, (unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                             (unsigned char)(n >> 24)};
    if (n > 0xFFFFFFFFu || qc_buf_add(&c->raw, head, sizeof head) || qc_buf_add(&c->raw, data, n)) {
        c->failed = 1;
        atomic_store(&c->rq.cancel, 1);
        return;
    }
    call_wake(c);
}

/* ==== formatting: the connection's thread (or the handler before submit) ==== */

void qs_call_push(qs_call_t *c, const char *data, size_t n) {
    if (qc_buf_add(&c->ev, data, n)) c->ev_failed = 1;
}

void qs_call_sse(qs_call_t *c, const char *name, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT | QC_JSON_REAL) : NULL;
    json_decref(j);
    if (!s) {
        c->ev_failed = 1;
        return;
    }
    if (name) {
        qs_call_push(c, "event: ", 7);
        qs_call_push(c, name, strlen(name));
        qs_call_push(c, "\n", 1);
    }
    qs_call_push(c, "data: ", 6);
    qs_call_push(c, s, strlen(s));
    qs_call_push(c, "\n\n", 2);
    free(s);
}

/* Formats the records of c->rd into events (c->format), then empties rd. */
static void call_format(qs_call_t *c) {
    const unsigned char *p = (const unsigned char *)c->rd.p, *end = p ? p + c->rd.n : NULL; /* NULL + 0 is undefined */
    while (p && end - p >= 5) {
        size_t n = (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24;
        c->format(c, p[0], (const char *)p + 5, n);
        p += 5 + n;
    }
    c->rd.n = 0;
}

void qs_call_drain(qs_call_t *c) {
    pthread_mutex_lock(&c->mu);
    qc_buf_t t = c->rd;
    c->rd = c->raw;
    c->raw = t;
    pthread_mutex_unlock(&c->mu);
    call_format(c);
}

void qs_call_first(qs_call_t *c) {
    if (c->t_first == 0) c->t_first = qc_now_ms();
}

qc_status qs_call_end(qs_call_t *c, qc_status st, const char **msg, size_t n_prompt, size_t n_out) {
    qs_metrics_call(c->s->metrics, n_prompt, n_out, c->t_first > 0 ? (c->t_first - c->t0) / 1e3 : -1);
    pthread_mutex_lock(&c->mu);
    if (!st && c->failed) st = QC_ERR_NOMEM, *msg = "out of memory";
    c->st = st;
    qs_escape(*msg, c->msg, sizeof c->msg); /* it may quote the request (a session id) */
    *msg = c->msg;
    return st;
}

void qs_call_finish(qs_call_t *c) {
    c->done = 1;
    call_wake(c);
    pthread_mutex_unlock(&c->mu);
    call_unref(c); /* the scheduler's */
}

/* ==== reading: the connection's thread ==== */

/* MHD's content reader. With nothing to send it suspends the connection
 * (returning 0), and the next event, the end, a hang-up or the keep-alive
 * time resumes it. A stream that waits (queued, or behind a long prompt)
 * sends an SSE comment line every keepalive_ms, which clients ignore, so
 * proxies and clients do not give up on it. Events are written whole under
 * mu, so an empty buffer is always at an event boundary. */
static ssize_t call_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    static const char keepalive[] = ": keep-alive\n\n";
    qs_call_t *c = cls;
    for (;;) {
        if (c->ev_failed) { /* out of memory formatting: the stream cannot go on */
            atomic_store(&c->rq.cancel, 1);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (c->off < c->ev.n) { /* ev is the reader's own once the call is submitted */
            size_t k = c->ev.n - c->off < max ? c->ev.n - c->off : max;
            memcpy(buf, c->ev.p + c->off, k);
            c->off += k;
            return (ssize_t)k;
        }
        c->off = c->ev.n = 0;
        ssize_t n = 0;
        pthread_mutex_lock(&c->mu);
        if (c->gone) {
            n = MHD_CONTENT_READER_END_WITH_ERROR;
        } else if (c->raw.n) { /* take the records, format them outside mu */
            qc_buf_t t = c->rd;
            c->rd = c->raw;
            c->raw = t;
            pthread_mutex_unlock(&c->mu);
            call_format(c);
            continue;
        } else if (c->done) {
            n = MHD_CONTENT_READER_END_OF_STREAM;
        } else if (c->keepalive_due && max >= sizeof keepalive - 1) {
            c->keepalive_due = 0;
            memcpy(buf, keepalive, sizeof keepalive - 1);
            n = (ssize_t)(sizeof keepalive - 1);
        } else {
            call_suspend(c);
        }
        pthread_mutex_unlock(&c->mu);
        return n;
    }
}

/* MHD frees the response (stream finished or client gone): the request is
 * cancelled (its slot freed at the scheduler's next pass). */
static void call_release(void *cls) {
    qs_call_t *c = cls;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    int finished = c->done && c->ev.n == c->off && !c->raw.n; /* everything sent, or the client left early */
    qs_watch_del(c->s->conns, c);
    c->suspended = 0;
    c->con = NULL;
    pthread_mutex_unlock(&c->mu);
    atomic_store(&c->rq.cancel, 1);
    if (!finished) qs_metrics_cancelled(c->s->metrics);
    call_unref(c);
}

/* The HTTP status of a failed call. */
static unsigned call_status(qc_status st) {
    return st == QC_ERR_CONTEXT || st == QC_ERR_ARG ? 400 : st == QC_ERR_BUSY ? 409 : st == QC_ERR_CANCELLED ? 503 : 500;
}

/* A stream's response: MHD's content reader drains the events. */
static enum MHD_Result stream_start(struct MHD_Connection *con, qs_req_t *r, qs_call_t *c) {
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, call_read, c, call_release);
    if (!resp) {
        call_release(c);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return qs_queue(con, r, 200, resp);
}

enum MHD_Result qs_call_submit(struct MHD_Connection *con, qs_req_t *r, qs_call_t *c, qs_answer_fn answer) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    c->con = con;
    c->answer = answer;
    atomic_store(&c->refs, 2); /* the scheduler's and the connection's */
    /* mu keeps on_done from running before the connection is suspended */
    pthread_mutex_lock(&c->mu);
    qc_status st = qs_submit(c->s->sched, &c->rq);
    if (st) {
        pthread_mutex_unlock(&c->mu);
        qs_call_free(c);
        return st == QC_ERR_BUSY ? qs_reply_busy(con, r) : qs_reply_error(con, r, 503, "the server is stopping");
    }
    if (c->streamed) {
        pthread_mutex_unlock(&c->mu);
        return stream_start(con, r, c);
    }
    r->call = c;
    call_suspend(c);
    pthread_mutex_unlock(&c->mu);
    return MHD_YES;
}

enum MHD_Result qs_call_answer(struct MHD_Connection *con, qs_req_t *r) {
    qs_call_t *c = r->call;
    pthread_mutex_lock(&c->mu);
    if (!c->done) { /* not resumed by on_done: wait on */
        call_suspend(c);
        pthread_mutex_unlock(&c->mu);
        return MHD_YES;
    }
    int gone = c->gone;
    c->con = NULL;
    pthread_mutex_unlock(&c->mu);
    enum MHD_Result ret;
    if (gone) ret = qs_reply_error(con, r, 499, "the client closed the connection");
    else if (c->st) /* c->msg is escaped already */
        ret = qs_reply_json(con, r, c->http_status ? c->http_status : c->rq.stopped ? 503 : call_status(c->st),
                           json_pack("{s:s}", "error", c->msg));
    else ret = c->answer(c, con, r);
    r->call = NULL;
    call_unref(c);
    return ret;
}

void qs_call_drop(qs_req_t *r) {
    qs_call_t *c = r->call;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->con = NULL;
    pthread_mutex_unlock(&c->mu);
    atomic_store(&c->rq.cancel, 1);
    r->call = NULL;
    call_unref(c);
}
