/* srv.h — what the files of `qcare serve` share (internal to src/server/).
 *
 *   http.c        libmicrohttpd: request state and body, replies, the JSON
 *                 body's fields, the route table, the API key, start/stop
 *   call.c        calls: one request's model work handed to the scheduler
 *                 (sched.h), answered whole or streamed as Server-Sent Events
 *   conn.c        connections: limits (total, per client), the header
 *                 timeout, the watch on suspended connections' sockets (a
 *                 client that hangs up cancels its call; keep-alives)
 *   api_care.c    the care endpoints: /api/emotion, /api/analyze
 *   api_openai.c  the OpenAI-compatible ones: /v1/chat/completions, /v1/completions, /v1/models
 *   api_classify.c  /v1/classify: label scoring for caller-given labels
 *   notice.c      the urgent notice of a patient's text, on every answer
 *                 of its request (errors included)
 *   metrics.c     the counters and latency histograms, /metrics
 *   records_hook.c  the consultation records: the store, a turn's record
 *                 committed before its answer completes, erasure, retention
 *   api_records.c the follow-up view: /dashboard and /api/records/... (admin key)
 *
 * An endpoint group is one file exporting its routes (a qs_route_t array
 * ended by {0}), declared at the end of this header and listed once in
 * http.c's route table; its handlers stay static in its file. A handler
 * answers through the qs_reply_* helpers (each queues exactly one answer
 * and records its status for the metrics); model work goes through a call.
 * No handler may block: libmicrohttpd runs every connection on a small pool
 * of threads (epoll), so a call suspends its connection instead of waiting. */
#ifndef QC_SERVER_SRV_H
#define QC_SERVER_SRV_H

#include "server/server.h"

#include "base/base.h"
#include "records/records.h"
#include "server/sched.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#define QS_MAX_TOKENS_DEF 256 /* reply tokens when max_tokens is absent */
#define QS_MAX_ROUTES 32      /* routes of every group together */

typedef struct qs_metrics qs_metrics_t;
typedef struct qs_route qs_route_t;
typedef struct qs_call qs_call_t;
typedef struct qs_conns qs_conns_t;
typedef struct qs_records qs_records_t;

struct qc_server {
    struct MHD_Daemon *d;
    qc_model_t *m;
    const qc_tokenizer_t *tok;
    qc_care_t *care;
    qs_sched_t *sched;
    qs_metrics_t *metrics;
    qs_conns_t *conns;
    const qs_route_t *routes[QS_MAX_ROUTES]; /* every group's routes, in the route table's order */
    int n_routes;                            /* a request matching none is counted at index n_routes */
    qs_records_t *rec;                       /* NULL: no records kept */
    char *api_key, *model_name;
    char **origins; /* --allow-origin, without a trailing '/' */
    int n_origins;
    char *admin_key;                         /* NULL: the follow-up view is off */
    int n_ctx, quiet, qwen3, parallel, queue;
    int risk_model;             /* /api/analyze asks the model's urgency opinion too */
    int fixture;                /* a random-weight fixture model (GET /api/info) */
    int keepalive_ms;           /* a stream with nothing to send for this long sends an SSE comment */
    atomic_ulong n_completions; /* chat completions so far (their ids) */
    /* operations (issue 14): probes, the watchdog, the drain */
    char *metrics_key;          /* when set, /metrics needs it (or the API key) as a Bearer token */
    int watchdog_s;             /* /health is 503 when the scheduler has not finished a loop for this long */
    int (*ready_check)(void *user, char *why, size_t n); /* /ready's own condition (NULL: none) */
    void *ready_user;
    size_t kv_budget_tokens;    /* the KV budget, in tokens (vllm:kv_cache_usage_perc's denominator) */
    atomic_int draining;        /* SIGTERM came: /ready and new requests are 503 */
    atomic_int n_inflight;      /* requests received and not yet completely answered */
};

/* ==== requests and replies (http.c) ==== */

/* One HTTP request, from its first call by MHD to its completion. */
typedef struct {
    qc_buf_t body; /* at most QS_MAX_BODY bytes (when too_big: the first QS_MAX_BODY, scanned for the notice) */
    int too_big;
    int patient;   /* the route takes a patient's text (qs_route_t.patient) */
    qc_safety_result_t sr; /* that text's safety result (notice.c); zero: not read yet */
    char *notice;          /* its notice when urgent (owned) */
    int status;    /* the answer's status, for the log and the metrics */
    int route;     /* index into qc_server.routes (n_routes: none) */
    double t0;     /* arrival, ms on qc_now_ms's clock */
    qs_call_t *call; /* a plain call waiting for the scheduler (the connection suspended) */
    char cors[256];  /* an allowed cross origin, echoed in Access-Control-Allow-Origin ("": none) */
    char method[16], path[512]; /* room for a route's prefix and a 256-byte id */
    atomic_int *draining; /* the server's: while it drains, every answer closes its connection */
} qs_req_t;

#define QS_JSON_TYPE "application/json; charset=utf-8"
#define QS_MAX_SESSION 128 /* bytes of a session id (the body's "session", the X-Session-Id header) */

/* Queues an answer of len bytes with its Content-Type, and one more header
 * when `header` is set. With MHD_RESPMEM_MUST_FREE, data is freed here on
 * failure too. */
enum MHD_Result qs_reply_bytes(struct MHD_Connection *con, qs_req_t *r, unsigned status, const void *data, size_t len,
                               enum MHD_ResponseMemoryMode mode, const char *type, const char *header,
                               const char *value);
/* Queues a JSON reply (takes the reference to j; NULL j: MHD_NO). An
 * error (status >= 400) of a request whose patient text is urgent carries
 * its notice (qs_req_urgent_fields). */
enum MHD_Result qs_reply_json(struct MHD_Connection *con, qs_req_t *r, unsigned status, json_t *j);
/* Queues {"error": MESSAGE} (the message escaped as qs_escape does, at
 * most 511 bytes): it may quote the request. */
enum MHD_Result qs_reply_error(struct MHD_Connection *con, qs_req_t *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 503 with Retry-After, for a full queue (with the notice, as errors are). */
enum MHD_Result qs_reply_busy(struct MHD_Connection *con, qs_req_t *r);
/* Queues resp as r's answer with status, adding the headers every answer
 * carries (CORS for an allowed cross origin), and releases resp. */
enum MHD_Result qs_queue(struct MHD_Connection *con, qs_req_t *r, unsigned status, struct MHD_Response *resp);

/* The body as a JSON object, or NULL with the reason in msg (and, on a
 * patient route, the raw body scanned for the notice). jansson
 * rejects invalid UTF-8, "\u0000" in strings and a key twice in an object. */
json_t *qs_parse_body(qs_req_t *r, char *msg, size_t n);
/* 64 random bits (getrandom): the seed of a request that gives none, so
 * two requests never share one by arriving in the same second. */
uint64_t qs_random_u64(void);
/* Field getters (integers exactly, in the whole int64 range): 1 with *out set, 0 when absent or null, -1 when of the
 * wrong type or out of [lo, hi] (the reason in msg). *out points into j. */
int qs_get_string(json_t *j, const char *name, const char **out, size_t *len, char *msg, size_t n);
int qs_get_int(json_t *j, const char *name, long long lo, long long hi, long long *out, char *msg, size_t n);
int qs_get_number(json_t *j, const char *name, double lo, double hi, double *out, char *msg, size_t n);
int qs_get_bool(json_t *j, const char *name, int *out, char *msg, size_t n);
/* The X-Session-Id header (set by clients so that a balancer can hash on
 * it without reading bodies), checked like a body "session": 1 to
 * QS_MAX_SESSION bytes of UTF-8. *session holds the body's session (NULL:
 * none); the header, when present, must equal it, or becomes it when there
 * is none. 0, or -1 (answer 400) with the reason in msg. *session then
 * points into the body or the connection's headers. */
int qs_header_session(struct MHD_Connection *con, const char **session, char *msg, size_t n);

/* Text from a client made safe for the log: control characters (C0, DEL,
 * C1), backslashes and bytes that are not UTF-8 become \xHH (\\); cut to
 * fit out[n]. Returns out. */
const char *qs_escape(const char *in, char *out, size_t n);

/* ==== each endpoint's body, parsed without a connection ==== */

/* What a POST endpoint's handler does before it submits: r's body parsed
 * and checked, and the call made for the scheduler (not submitted; the
 * caller owns it: qs_call_submit, or qs_call_free). NULL with *status
 * (400, or 500 when out of memory) and the reason in msg. Callable with
 * no running server (tests/fuzz): s needs m, tok, n_ctx, qwen3,
 * model_name, and care with risk_model. */
qs_call_t *qs_care_parse(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r, int analyze, int *status,
                         char *msg, size_t n); /* api_care.c: /api/emotion (analyze 0), /api/analyze */
qs_call_t *qs_completion_parse(qc_server_t *s, qs_req_t *r, int legacy, int *status, char *msg,
                               size_t n); /* api_openai.c: /v1/chat/completions, /v1/completions (legacy) */
qs_call_t *qs_classify_parse(qc_server_t *s, qs_req_t *r, int *status, char *msg,
                             size_t n); /* api_classify.c: /v1/classify */

/* The query arguments of /api/records/... (api_records.c), read through
 * get (a connection's GET arguments; NULL or "" when absent), so that they
 * parse without a connection (tests/fuzz): 0, or -1 with the reason (a
 * 400) in msg. The lists' order, limit, urgent, min_streak, since, until,
 * cursor and (when q->patient_id is NULL) patient; the export's format,
 * since and until. */
typedef const char *(*qs_arg_fn)(void *user, const char *name);
int qs_records_list_args(qs_arg_fn get, void *user, qc_rec_query_t *q, int *min_streak, char *msg, size_t n);
int qs_records_export_args(qs_arg_fn get, void *user, qc_rec_format_t *fmt, int64_t *since, int64_t *until,
                           char *msg, size_t n);

/* ==== routes (http.c) ==== */

/* Answers one request whose path, method and key were checked. */
typedef enum MHD_Result (*qs_handler_fn)(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r);

#define QS_ADMIN 2 /* qs_route.open: only with the admin key; 404 while none is set */

struct qs_route {
    const char *path;   /* matched whole; one ending in '*' matches every longer path with that start */
    const char *method; /* "GET" (HEAD is served too), "POST" or "DELETE"; a path may have several routes */
    int open;           /* 1: served without the API key; QS_ADMIN: see above */
    qs_handler_fn serve;
    int patient;        /* its body holds a patient's text: its errors carry the urgent notice (notice.c) */
};

#define QS_PROBE 3 /* qs_route.open: a probe (/health, /ready, /metrics): served without the API key, and while
                      the server drains */

/* ==== the urgent notice of a patient's text (notice.c) ==== */

/* Checks text (len bytes, read whole) against the safety rules in use
 * into r->sr; when urgent, r keeps it and its notice for every answer (a
 * later text checked no longer changes it). */
void qs_req_scan(qs_req_t *r, const char *text, size_t len);
/* qs_req_scan on r's raw body, JSON string escapes decoded: for a body
 * that is not JSON or was cut at QS_MAX_BODY. */
void qs_req_scan_body(qs_req_t *r);
/* Adds "urgent", "urgent_kind", "presentation" and "notice" to object o
 * when r's patient text is urgent. */
void qs_req_urgent_fields(const qs_req_t *r, json_t *o);

/* ==== calls (call.c) ==== */

/* Builds a plain call's answer once the scheduler is done with c (c->st
 * is QC_OK); called on the connection's thread. c stays the caller's. */
typedef enum MHD_Result (*qs_answer_fn)(qs_call_t *c, struct MHD_Connection *con, qs_req_t *r);

/* One request handed to the scheduler. The scheduler's callbacks write
 * into it (under mu); the connection's thread reads: a streamed call's
 * events through MHD's content reader, a plain call's result once done.
 * An endpoint keeps its own state in a struct that starts with a
 * qs_call_t (the callbacks' `user` points to both). */
struct qs_call {
    qs_request_t rq; /* rq.user is the call */
    qc_server_t *s;
    int streamed;
    pthread_mutex_t mu; /* the fields below and the endpoint's */
    atomic_int refs;    /* owners: the scheduler, the connection, the watcher (call.c) */
    struct MHD_Connection *con; /* NULL once the connection let go */
    int fd;                     /* its socket */
    int suspended, gone, keepalive_due; /* MHD is not processing con; the client hung up; a stream's keep-alive is due */
    int watch, watch_fd;        /* conn.c's slot (-1: not watched) and the socket it watches; under conn.c's lock */
    qs_answer_fn answer;
    /* Streamed: formats one record (kind, data[0..n)) into events with
     * qs_call_sse / qs_call_push, on the connection's thread. */
    void (*format)(qs_call_t *c, int kind, const char *data, size_t n);
    qc_buf_t raw;  /* records from the scheduler not yet formatted (mu) */
    qc_buf_t rd;   /* the reader's: records being formatted */
    qc_buf_t ev;   /* Server-Sent Events: [off, ev.n) not yet sent; the reader's once submitted */
    size_t off;
    int ev_failed; /* the reader's: out of memory formatting */
    int done, failed; /* failed: out of memory (the request is cancelled) */
    qc_status st;     /* the scheduler's result, its message in msg */
    char msg[512];
    double t0, t_first;          /* ms: the call's start, its first reply text (0: none yet) */
    unsigned http_status;        /* a failed call's HTTP status when set (503: its record was not written) */
    void (*clear)(qs_call_t *c); /* frees what the endpoint's part holds (NULL: nothing) */
};

/* A zeroed call of `size` bytes (>= sizeof(qs_call_t): the endpoint's
 * struct) for a scheduler request of `kind`; NULL when out of memory. */
qs_call_t *qs_call_new(qc_server_t *s, size_t size, void (*clear)(qs_call_t *c), int kind, int streamed);
/* Frees a call that was never submitted (clear first); NULL is a no-op. */
void qs_call_free(qs_call_t *c);
/* The scheduler's side of a stream (mu held): appends one record for the
 * format function; out of memory cancels the call. */
void qs_call_event(qs_call_t *c, int kind, const void *data, size_t n);
/* The reader's side, in the format function (or in the handler before
 * submitting): appends bytes to the events / writes one event, "event:
 * NAME\n" (when name) then "data: JSON\n\n" (takes the reference to j). */
void qs_call_push(qs_call_t *c, const char *data, size_t n);
void qs_call_sse(qs_call_t *c, const char *name, json_t *j);
/* Formats every record waiting in c (qs_call_event) into events, as the
 * content reader does before sending (tests/fuzz drive a stream with it;
 * the caller is the reader). */
void qs_call_drain(qs_call_t *c);
/* Notes the time of the first reply text (mu held). */
void qs_call_first(qs_call_t *c);
/* The start of an on_done callback: counts the tokens and the time to
 * first text, takes mu, keeps st and *msg in c (escaped as qs_escape does;
 * *msg then points to c's copy; a reply cut short by running out of memory
 * becomes an error); returns the status kept. */
qc_status qs_call_end(qs_call_t *c, qc_status st, const char **msg, size_t n_prompt, size_t n_out);
/* The end of an on_done callback: c is done, its connection resumed, mu
 * released; c may be freed here. */
void qs_call_finish(qs_call_t *c);
/* Hands c to the scheduler; the handler returns what this returns, and c
 * is no longer the handler's. Streamed: queues the event-stream response.
 * Not streamed: suspends the connection; once the scheduler is done, MHD
 * calls the handler again and qs_call_answer answers: a failure with its
 * status, a success through `answer`. A full queue is answered 503 with
 * Retry-After at once. */
enum MHD_Result qs_call_submit(struct MHD_Connection *con, qs_req_t *r, qs_call_t *c, qs_answer_fn answer);
/* The answer of r->call, on the handler's next call after qs_call_submit
 * (499 when the client hung up meanwhile); r->call is released. */
enum MHD_Result qs_call_answer(struct MHD_Connection *con, qs_req_t *r);
/* The connection closed while r->call waited: the call is cancelled and
 * released. */
void qs_call_drop(qs_req_t *r);
/* conn.c's watcher, holding a reference to c: the client hung up (hangup)
 * or a stream's keep-alive is due. Releases the reference. */
void qs_call_watched(qs_call_t *c, int hangup);

/* ==== connections (conn.c) ==== */

typedef struct {
    int max_conns, max_client;   /* connections in all, from one client address */
    const char *const *trusted;  /* addresses exempt from max_client (NULL-terminated; NULL: none) */
    double header_ms;            /* a request's headers must be complete this long after the connection opened
                                    or its previous answer */
} qs_conns_opts_t;

/* Starts the watcher thread; NULL with the reason in err (a bad
 * --trusted-proxy, out of memory). */
qs_conns_t *qs_conns_new(qc_server_t *s, const qs_conns_opts_t *o, char *err, size_t err_size);
/* MHD's accept policy (cls: the qs_conns_t): MHD_NO for a connection over
 * a limit (logged). */
enum MHD_Result qs_conns_accept(void *cls, const struct sockaddr *addr, socklen_t len);
/* MHD_OPTION_NOTIFY_CONNECTION (cls: the qs_conns_t): counts connections,
 * closes one over a limit at once. */
void qs_conns_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);
/* A request's headers are complete (begins 1) / it was answered (0): the
 * header timeout stops / starts again. */
void qs_conns_request(qs_conns_t *w, struct MHD_Connection *con, int begins);
/* Stops the thread and frees (nothing may be watched any more); NULL is a
 * no-op. */
void qs_conns_free(qs_conns_t *w);
/* Watches c's socket fd while c's connection is suspended (c->mu held):
 * a hang-up, or the time due_ms on qc_now_ms's clock (0: none), is passed
 * to qs_call_watched. A failure leaves c unwatched. */
void qs_watch_add(qs_conns_t *w, qs_call_t *c, int fd, double due_ms);
/* Stops watching c (c->mu held); a no-op when it is not watched. */
void qs_watch_del(qs_conns_t *w, qs_call_t *c);

/* ==== metrics (metrics.c) ==== */

/* NULL when out of memory. The uptime counts from here. */
qs_metrics_t *qs_metrics_new(void);
void qs_metrics_free(qs_metrics_t *m);
/* One answered request: its route index (qs_req_t.route), status and
 * duration in seconds. */
void qs_metrics_request(qs_metrics_t *m, int route, int status, double seconds);
/* One finished call: its tokens, and its time to first text in seconds
 * (< 0: it had none). */
void qs_metrics_call(qs_metrics_t *m, size_t n_prompt, size_t n_out, double first_s);
/* One stream ended early (client gone or error). */
void qs_metrics_cancelled(qs_metrics_t *m);

/* ==== records (records_hook.c) ==== */

/* Opens s->rec when o->records is set (the store, the model's identity,
 * the retention thread); leaves it NULL otherwise. The reason in err. */
qc_status qs_records_open(qc_server_t *s, const qc_server_opts_t *o, char *err, size_t err_size);
/* Commits what is queued (each waiting answer is told), then frees. NULL is a no-op. */
void qs_records_close(qs_records_t *rec);
/* A call about session starts (0), or is refused because the session is
 * being erased (-1). Every 0 is paired with one qs_records_release. */
int qs_records_hold(qs_records_t *rec, const char *session);
void qs_records_release(qs_records_t *rec, const char *session);
/* Fills t's model fields and queues it for the writer; done is called on
 * the writer's thread once it is committed or failed (not when this
 * returns an error, which is counted in qcare_records_errors_total). */
qc_status qs_records_submit(qs_records_t *rec, qc_rec_turn_t *t, qc_rec_done_fn done, void *user, char *err,
                            size_t err_size);
/* Waits until every submitted turn's done has returned (the scheduler
 * stopped first, so no more come) and no export's connection is
 * suspended, refusing new suspensions: MHD can then stop. NULL is a no-op. */
void qs_records_drain(qs_records_t *rec);
/* An export's side of that: whether the server is stopping (the export
 * gives up), and its connection suspended (delta 1; -1 when the server is
 * stopping: do not) or resumed (-1). */
int qs_records_stopping(const qs_records_t *rec);
int qs_records_export_waits(qs_records_t *rec, int delta);
/* Erasure of session, in three steps that never block a connection's
 * thread on the scheduler: begin refuses (QC_ERR_BUSY) while a call about
 * it runs, and from then refuses new ones (qs_records_hold); the caller
 * then has the scheduler drop its conversation (QS_END_SESSION) and erases
 * its turns (qc_store_erase, a tombstone stays); end lifts the refusal. */
qc_status qs_records_erase_begin(qs_records_t *rec, const char *session, char *err, size_t err_size);
void qs_records_erase_end(qs_records_t *rec, const char *session);
qc_store_t *qs_records_store(const qs_records_t *rec);

/* A conversation's past turns from the store, for a process that does not
 * hold it (sched.h's history): those that may continue it (answered, not
 * cancelled or failed, with a reply), oldest first. Owned by the history. */
typedef struct {
    qc_care_past_t *turns;
    size_t n, cap;
    int oom;            /* a copy failed while reading */
    qc_rec_head_t head; /* the store's head as read: every turn, replayed or not */
} qs_history_t;
void qs_history_free(qs_history_t *h);
/* The KV state is a cache of the records. For each conversation this
 * process holds, the store's head (qc_store_head) its state was built
 * from: known (1, in *out) from the moment its history is read (set) and
 * kept up to date with every turn of it this process commits (add; a turn
 * whose conversation may have gone another way is forgotten: set NULL).
 * A turn whose basis is unknown, or no longer the store's head (another
 * process answered or erased meanwhile), reads the history again and has
 * the scheduler drop the held conversation and rebuild it. A bounded
 * table: a session it forgot is rebuilt, which costs a rebuild and
 * changes nothing else. */
int qs_records_basis(qs_records_t *rec, const char *session, qc_rec_head_t *out);
void qs_records_set_basis(qs_records_t *rec, const char *session, const qc_rec_head_t *head);
void qs_records_basis_add(qs_records_t *rec, const char *session, const qc_rec_id_t *id);
int qs_records_head_same(const qc_rec_head_t *a, const qc_rec_head_t *b);
/* Reads session's history into *h (emptied first): QC_OK (0 turns for a
 * new or erased session), or the store's error (the database is away). */
qc_status qs_records_history(qs_records_t *rec, const char *session, qs_history_t *h, char *err, size_t err_size);
/* The records' lines of /metrics (zeros when records are off). */
void qs_records_metrics(qs_records_t *rec, qc_buf_t *t);

/* ==== the endpoint groups (listed in http.c's route table) ==== */

extern const qs_route_t qs_care_routes[];    /* api_care.c */
extern const qs_route_t qs_openai_routes[];  /* api_openai.c */
extern const qs_route_t qs_classify_routes[]; /* api_classify.c */
extern const qs_route_t qs_metrics_routes[]; /* metrics.c */
extern const qs_route_t qs_records_routes[]; /* api_records.c */

#endif
