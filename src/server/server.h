/* server.h — `qcare serve`: the HTTP API on libmicrohttpd.
 *
 * Endpoints: GET /health, GET / (the chat page), POST /api/emotion,
 * POST /api/analyze (JSON or Server-Sent Events), POST /v1/classify,
 * GET /v1/models, POST /v1/chat/completions and /v1/completions
 * (OpenAI-compatible, JSON or SSE), GET /metrics (Prometheus), GET /api/info
 * (the model's name and whether it is a fixture, for the page).
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
} qc_server_opts_t;

/* Starts serving on its own threads. The model must outlive the server.
 * On failure returns a status and writes a message into err. */
qc_status qc_server_start(qc_model_t *m, const qc_server_opts_t *opts, qc_server_t **out, char *err,
                          size_t err_size);

/* Stops accepting, waits for the connections to finish, frees everything.
 * NULL is a no-op. */
void qc_server_stop(qc_server_t *s);

#endif
