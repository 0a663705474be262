/* call.c — calls: one request's model work, handed to the scheduler
 * (sched.c) and answered whole or streamed as Server-Sent Events.
 *
 * The endpoint sets the scheduler's callbacks; they write the result into
 * the call (or, streamed, events into a byte buffer that MHD's content
 * reader drains). A plain call's connection thread waits for the end; a
 * streamed call belongs to its MHD response. When a client goes away MHD
 * frees the response, which cancels the request: its slot is freed at the
 * scheduler's next pass. A full queue is answered 503 with Retry-After. */
#include "server/srv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

qs_call_t *qs_call_new(qc_server_t *s, size_t size, void (*clear)(qs_call_t *c), int kind, int streamed) {
    qs_call_t *c = calloc(1, size);
    if (!c) return NULL;
    c->s = s;
    c->rq.kind = kind;
    c->rq.user = c;
    c->streamed = streamed;
    c->clear = clear;
    c->t0 = qc_now_ms();
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

void qs_call_free(qs_call_t *c) {
    if (!c) return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    qc_buf_free(&c->ev);
    if (c->clear) c->clear(c);
    free(c);
}

/* ==== writing: the scheduler's thread ==== */

void qs_call_push(qs_call_t *c, const char *data, size_t n) {
    if (c->failed) return;
    if (qc_buf_add(&c->ev, data, n)) {
        c->failed = 1;
        atomic_store(&c->rq.cancel, 1);
        return;
    }
    pthread_cond_signal(&c->cv);
}

void qs_call_sse(qs_call_t *c, const char *name, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        c->failed = 1;
        atomic_store(&c->rq.cancel, 1);
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

void qs_call_first(qs_call_t *c) {
    if (c->t_first == 0) c->t_first = qc_now_ms();
}

qc_status qs_call_end(qs_call_t *c, qc_status st, const char **msg, size_t n_prompt, size_t n_out) {
    qs_metrics_call(c->s->metrics, n_prompt, n_out, c->t_first > 0 ? (c->t_first - c->t0) / 1e3 : -1);
    pthread_mutex_lock(&c->mu);
    if (!st && c->failed) st = QC_ERR_NOMEM, *msg = "out of memory";
    c->st = st;
    snprintf(c->msg, sizeof c->msg, "%s", *msg);
    return st;
}

void qs_call_finish(qs_call_t *c) {
    c->done = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ==== reading: the connection's thread ==== */

/* Waits until the scheduler is done with c. */
static void call_wait(qs_call_t *c) {
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
    qs_call_t *c = cls;
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
    qs_call_t *c = cls;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    int finished = c->done && c->ev.n == c->off; /* everything sent, or the client left early */
    pthread_mutex_unlock(&c->mu);
    atomic_store(&c->rq.cancel, 1);
    call_wait(c);
    if (!finished) qs_metrics_cancelled(c->s->metrics);
    qs_call_free(c);
}

/* The HTTP status of a failed call. */
static unsigned call_status(qc_status st) {
    return st == QC_ERR_CONTEXT || st == QC_ERR_ARG ? 400 : st == QC_ERR_BUSY ? 409 : 500;
}

int qs_call_submit(struct MHD_Connection *con, qs_req_t *r, qs_call_t *c, enum MHD_Result *ret) {
    qc_status st = qs_submit(c->s->sched, &c->rq);
    if (st) {
        qs_call_free(c);
        *ret = st == QC_ERR_BUSY ? qs_reply_busy(con, r) : qs_reply_error(con, r, 503, "the server is stopping");
        return -1;
    }
    if (!c->streamed) {
        call_wait(c);
        if (!c->st) return 0;
        *ret = qs_reply_error(con, r, c->http_status ? c->http_status : c->rq.stopped ? 503 : call_status(c->st), "%s",
                              c->msg);
        qs_call_free(c);
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
