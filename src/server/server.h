/* server.h — `qcare serve`: the HTTP API on libmicrohttpd.
 *
 * Endpoints: GET /health, GET / (the chat page), POST /api/emotion,
 * POST /api/analyze (JSON or Server-Sent Events), POST /v1/classify,
 * GET /v1/models, POST /v1/chat/completions and /v1/completions
 * (OpenAI-compatible, JSON or SSE), GET /metrics (Prometheus), GET /api/info
 * (the model's name and whether it is a fixture, for the page); with an
 * admin key, GET /dashboard and /api/records/... (the consultation
 * records, api_records.c).
 *
 * One model and one care pipeline are shared by every connection; the
 * scheduler (sched.h) batches the requests' model work. */
#ifndef QC_SERVER_H
#define QC_SERVER_H

#include "qcare_care.h"

typedef struct qc_server qc_server_t;

typedef struct {
    const char *host;       /* address to bind (NULL: 127.0.0.1) */
    int port;               /* TCP port (0: 8080) */
    const char *api_key;    /* when set, the API needs "Authorization: Bearer KEY" (/health and / stay open;
                               the scheme's case does not matter) */
    const char *model_name; /* the id /v1/models reports (NULL: "qcare") */
    int n_ctx;              /* context of each request in tokens (0: 2048) */
    int quiet;              /* no per-request log lines */
    int parallel;           /* requests generating at once (0: 4) */
    int queue;              /* requests that may wait for a slot before 503 (0: 4 x parallel, < 0: none) */
    int timeout_s;          /* idle connections (slow clients) closed after this (0: 60 s) */
    int prefix_cache_mb;    /* MiB of KV state of cached /v1/classify prefixes (0: 64) */
    int risk_model;         /* /api/analyze also asks the model whether the message is urgent */
    int max_sessions;       /* conversations kept (0: 4096); beyond, the least recently used idle one is dropped */
    int header_timeout_s;   /* a request's headers must be complete this long after the connection opened or
                               its previous answer, or it is closed (0: 10 s) */
    int max_connections;    /* open connections in all (0: 1000) */
    int max_client_connections;        /* open connections from one client address (0: 64) */
    const char *const *trusted_proxies; /* addresses exempt from the per-client limit (NULL-terminated; NULL: none) */
    int fixture;            /* the model is a random-weight fixture (qcare mkmodel): GET /api/info says so and
                               the page shows a banner */
    const char *const *allow_origins;   /* origins (scheme://host[:port]) whose pages may call the API besides the
                                           page's own ("*": any); NULL-terminated; NULL: the same origin only */
    /* Consultation records (src/records/): every judged turn of /api/emotion
     * and /api/analyze is committed to the store at this path before its
     * answer completes. NULL: none kept. */
    const char *records;
    int records_sync_full;   /* synchronous=FULL: each commit survives a power cut (default NORMAL) */
    int retain_days;         /* > 0: turns older than this are removed, at start and then hourly */
    const char *admin_key;   /* opens the follow-up view (/dashboard, /api/records/...) and every
                                endpoint; NULL: the view is off (404) */
    int records_fail_writes; /* test hook: the first N write transactions of the store fail */
    /* Operations: /health, /ready and /metrics answer without the API key. */
    int watchdog_s;          /* /health answers 503 when the scheduler has not finished a loop for this long while
                                work waits (0: 30 s) */
    const char *metrics_key; /* when set, /metrics needs "Authorization: Bearer KEY" (the API key opens it too) */
    /* /ready's own condition besides "the model is loaded and the server is
     * not draining" (the records store reachable): 1 ready, 0 not, with a
     * short reason in why[n]. Called on the HTTP threads, concurrently and
     * on every probe: it must be thread-safe and must not block. NULL: none. */
    int (*ready_check)(void *user, char *why, size_t n);
    void *ready_user;
    int test_stall_ms;       /* test hook (QCARE_TEST_STALL_MS): each scheduler loop with work sleeps this long */
} qc_server_opts_t;

/* Starts serving on its own threads. The model must outlive the server.
 * On failure returns a status and writes a message into err. */
qc_status qc_server_start(qc_model_t *m, const qc_server_opts_t *opts, qc_server_t **out, char *err,
                          size_t err_size);

/* Graceful drain, in steps (cmd_serve.c on SIGTERM / SIGINT):
 *   qc_server_drain     /ready turns 503 and every new request but the
 *                       probes gets 503 with Retry-After; what is in
 *                       flight goes on
 *   qc_server_inflight  requests received and not yet completely answered
 *                       (probes included): the drain is done at 0
 *   qc_server_cut       ends what is still in flight (the drain timeout):
 *                       streams end with their error event, waiting plain
 *                       answers are 503; then wait for qc_server_inflight
 *                       to reach 0 (the last answers being sent) before
 *                       qc_server_stop. */
void qc_server_drain(qc_server_t *s);
int qc_server_inflight(qc_server_t *s);
void qc_server_cut(qc_server_t *s);

/* Stops accepting, waits for the connections to finish, frees everything.
 * NULL is a no-op. */
void qc_server_stop(qc_server_t *s);

#endif
