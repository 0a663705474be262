/* http.c — `qcare serve`'s HTTP plumbing on libmicrohttpd: the request
 * state and its body, the reply helpers, the JSON body's fields, the route
 * table and the API key, the request log, starting and stopping.
 *
 * One connection = one thread (MHD_USE_THREAD_PER_CONNECTION). Every request
 * body is gathered (at most QS_MAX_BODY bytes), then routed: the route
 * table lists the endpoint groups (api_care.c, api_openai.c, metrics.c,
 * api_records.c, the page and /health here), each a list of routes with its
 * handlers. The API key opens the API; the admin key opens it too, and
 * alone opens the records' routes (which do not exist without one). Model
 * work goes through calls (call.c) to the scheduler (sched.c), which
 * batches every active request into each pass of the model. Connections
 * idle longer than the timeout (slow clients) are closed. */
#include "server/srv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QS_MAX_BODY (1u << 20) /* bytes of a request body */

/* ==== replies ==== */

enum MHD_Result qs_reply_bytes(struct MHD_Connection *con, qs_req_t *r, unsigned status, const void *data, size_t len,
                               enum MHD_ResponseMemoryMode mode, const char *type, const char *header,
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

enum MHD_Result qs_reply_json(struct MHD_Connection *con, qs_req_t *r, unsigned status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return MHD_NO;
    return qs_reply_bytes(con, r, status, s, strlen(s), MHD_RESPMEM_MUST_FREE, QS_JSON_TYPE,
                          status == MHD_HTTP_UNAUTHORIZED ? "WWW-Authenticate" : NULL, "Bearer");
}

enum MHD_Result qs_reply_error(struct MHD_Connection *con, qs_req_t *r, unsigned status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qs_reply_json(con, r, status, json_pack("{s:s}", "error", msg));
}

enum MHD_Result qs_reply_busy(struct MHD_Connection *con, qs_req_t *r) {
    static const char body[] = "{\"error\":\"the server is busy: every slot and the queue are full; retry later\"}";
    return qs_reply_bytes(con, r, 503, body, sizeof body - 1, MHD_RESPMEM_PERSISTENT, QS_JSON_TYPE, "Retry-After",
                          "1");
}

static enum MHD_Result reply_405(struct MHD_Connection *con, qs_req_t *r, const char *allow) {
    static const char body[] = "{\"error\":\"method not allowed\"}";
    return qs_reply_bytes(con, r, 405, body, sizeof body - 1, MHD_RESPMEM_PERSISTENT, QS_JSON_TYPE, "Allow", allow);
}

/* ==== the JSON body ==== */

json_t *qs_parse_body(const qs_req_t *r, char *msg, size_t n) {
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

int qs_get_string(json_t *j, const char *name, const char **out, size_t *len, char *msg, size_t n) {
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

int qs_get_int(json_t *j, const char *name, long long lo, long long hi, long long *out, char *msg, size_t n) {
    json_t *v = json_object_get(j, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(msg, n, "\"%s\" must be an integer in [%lld, %lld]", name, lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 1;
}

int qs_get_number(json_t *j, const char *name, double lo, double hi, double *out, char *msg, size_t n) {
    json_t *v = json_object_get(j, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        snprintf(msg, n, "\"%s\" must be a number in [%g, %g]", name, lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 1;
}

int qs_get_bool(json_t *j, const char *name, int *out, char *msg, size_t n) {
    json_t *v = json_object_get(j, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        snprintf(msg, n, "\"%s\" must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

/* ==== the page and /health ==== */

/* The chat page (web/index.html, embedded by tools/embed.c). */
extern const unsigned char qc_web_index[];
extern const unsigned long qc_web_index_len;

static enum MHD_Result health(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    (void)s;
    return qs_reply_json(con, r, 200, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result page(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    (void)s;
    return qs_reply_bytes(con, r, 200, qc_web_index, qc_web_index_len, MHD_RESPMEM_PERSISTENT,
                          "text/html; charset=utf-8", "Cache-Control", "no-cache");
}

static const qs_route_t page_routes[] = {
    {"/health", "GET", 1, health},
    {"/", "GET", 1, page},
    {0},
};

/* ==== routing ==== */

/* The route table: every endpoint group, in the order /metrics lists its
 * paths. A new group is its file, its declaration in srv.h and one line
 * here. */
static const qs_route_t *const route_table[] = {
    page_routes,      /* /health, / */
    qs_care_routes,   /* /api/emotion, /api/analyze */
    qs_openai_routes, /* /v1/models, /v1/chat/completions */
    qs_metrics_routes, /* /metrics */
    qs_records_routes /* /dashboard, /api/records/... */
};

/* Constant-time comparison of the Authorization header with "Bearer KEY". */
static int authorized(const char *key, struct MHD_Connection *con) {
    const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!key || !h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(key);
    unsigned char diff = a != b;
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)(h[i] ^ key[i % (b ? b : 1)]);
    return diff == 0;
}

static int path_matches(const char *pattern, const char *url) {
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*') return !strncmp(url, pattern, n - 1) && url[n - 1];
    return !strcmp(url, pattern);
}

static int method_matches(const qs_route_t *rt, const char *method) {
    return !strcmp(method, rt->method) || (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"));
}

static enum MHD_Result route(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r, const char *url,
                             const char *method) {
    int k, first = -1;
    for (k = 0; k < s->n_routes; k++)
        if (path_matches(s->routes[k]->path, url)) {
            if (first < 0) first = k;
            if (method_matches(s->routes[k], method)) break;
        }
    r->route = k;
    /* without an admin key, the admin paths do not exist */
    if (first < 0 || (s->routes[first]->open == QS_ADMIN && !s->admin_key)) {
        r->route = s->n_routes;
        return qs_reply_error(con, r, 404, "no such path: %.200s", url);
    }
    if (k == s->n_routes) {
        char allow[64] = "";
        for (int i = first; i < s->n_routes; i++)
            if (!strcmp(s->routes[i]->path, s->routes[first]->path))
                snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", *allow ? ", " : "",
                         s->routes[i]->method);
        r->route = first;
        return reply_405(con, r, allow);
    }
    const qs_route_t *rt = s->routes[k];
    if (rt->open == QS_ADMIN && !authorized(s->admin_key, con))
        return qs_reply_error(con, r, 401, "the admin key is required (Authorization: Bearer KEY)");
    if (s->api_key && !rt->open && !authorized(s->api_key, con) && !authorized(s->admin_key, con))
        return qs_reply_error(con, r, 401, "a valid API key is required (Authorization: Bearer KEY)");
    if (r->too_big) return qs_reply_error(con, r, 413, "the request body is larger than %u bytes", QS_MAX_BODY);
    return rt->serve(s, con, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls) {
    (void)version;
    qc_server_t *s = cls;
    qs_req_t *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->t0 = qc_now_ms();
        r->route = s->n_routes;
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
    qs_req_t *r = *con_cls;
    if (!r) return;
    double ms = qc_now_ms() - r->t0;
    qs_metrics_request(s->metrics, r->route, r->status, ms / 1e3);
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

/* Flattens the route table into s->routes. 0, or -1 when it holds more
 * than QS_MAX_ROUTES routes. */
static int collect_routes(qc_server_t *s) {
    for (size_t g = 0; g < sizeof route_table / sizeof route_table[0]; g++)
        for (const qs_route_t *rt = route_table[g]; rt->path; rt++) {
            if (s->n_routes == QS_MAX_ROUTES) return -1;
            s->routes[s->n_routes++] = rt;
        }
    return 0;
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
    if (port < 1 || port > 65535) return qc_seterr(err, err_size, QC_ERR_ARG, "port %d is out of range", port);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        v6 = 1;
    } else {
        return qc_seterr(err, err_size, QC_ERR_ARG, "--host '%s' is not an IPv4 or IPv6 address", host);
    }
    qc_server_t *s = calloc(1, sizeof *s);
    if (!s) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    s->m = m;
    s->tok = qc_model_tokenizer(m);
    s->n_ctx = o.n_ctx > 0 ? o.n_ctx : 2048;
    s->parallel = o.parallel > 0 ? o.parallel : 4;
    s->queue = o.queue > 0 ? o.queue : o.queue < 0 ? 0 : 4 * s->parallel;
    s->quiet = o.quiet;
    s->qwen3 = qc_model_arch(m) == QC_ARCH_QWEN3;
    qc_status st = QC_ERR_NOMEM;
    if (collect_routes(s)) {
        st = qc_seterr(err, err_size, QC_ERR_ARG, "more than %d routes", QS_MAX_ROUTES);
        goto fail;
    }
    if (!(s->metrics = qs_metrics_new()) || !(s->model_name = strdup(o.model_name ? o.model_name : "qcare")) ||
        (o.api_key && !(s->api_key = strdup(o.api_key))) || (o.admin_key && !(s->admin_key = strdup(o.admin_key)))) {
        qc_seterr(err, err_size, st, "out of memory");
        goto fail;
    }
    qc_care_opts_t co = {.n_ctx = s->n_ctx, .use_prefix_cache = 1};
    if ((st = qc_care_new(m, &co, &s->care, err, err_size))) goto fail;
    if ((st = qs_records_open(s, &o, err, err_size))) goto fail;
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
        st = qc_seterr(err, err_size, QC_ERR_IO, "cannot listen on %s port %d (in use?)", host, port);
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
    qs_records_close(s->rec); /* after MHD: answers that waited for their commit are sent */
    qc_care_free(s->care);
    qs_metrics_free(s->metrics);
    free(s->api_key);
    free(s->admin_key);
    free(s->model_name);
    free(s);
}
