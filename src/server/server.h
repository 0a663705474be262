/* server.h — `qcare serve`: the HTTP API on libmicrohttpd.
 *
 * Endpoints: GET /health, GET / (placeholder page), POST /api/emotion,
 * POST /api/analyze (JSON or Server-Sent Events), GET /v1/models and
 * POST /v1/chat/completions (OpenAI-compatible, JSON or SSE).
 *
 * One model and one care pipeline are shared by every connection; model work
 * is serialized by one mutex (continuous batching is a later step). */
#ifndef QC_SERVER_H
#define QC_SERVER_H

#include "qcare.h"

typedef struct qc_server qc_server_t;

typedef struct {
    const char *host;       /* address to bind (NULL: 127.0.0.1) */
    int port;               /* TCP port (0: 8080) */
    const char *api_key;    /* when set, the API needs "Authorization: Bearer KEY" (/health and / stay open) */
    const char *model_name; /* the id /v1/models reports (NULL: "qcare") */
    int n_ctx;              /* context of each request in tokens (0: 2048) */
    int quiet;              /* no per-request log lines */
} qc_server_opts_t;

/* Starts serving on its own threads. The model must outlive the server.
 * On failure returns a status and writes a message into err. */
qc_status qc_server_start(qc_model_t *m, const qc_server_opts_t *opts, qc_server_t **out, char *err,
                          size_t err_size);

/* Stops accepting, waits for the connections to finish, frees everything.
 * NULL is a no-op. */
void qc_server_stop(qc_server_t *s);

#endif
