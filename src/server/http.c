/* http.c — `qcare serve`'s HTTP plumbing on libmicrohttpd: the request
 * state and its body, the reply helpers, the JSON body's fields, the route
 * table and the API key, the request log, starting and stopping.
 *
 * libmicrohttpd runs every connection on a small pool of threads, each with
 * its own epoll (MHD_USE_EPOLL_INTERNAL_THREAD, QS_HTTP_THREADS), so no
 * handler may block: a call to the model suspends its connection (call.c).
 * Every request body is gathered (at most QS_MAX_BODY bytes), then routed: the route
 * table lists the endpoint groups (api_care.c, api_openai.c, metrics.c,
 * api_records.c, the page and /health here), each a list of routes with its
 * handlers. The API key opens the API; the admin key opens it too, and
 * alone opens the records' routes (which do not exist without one). Model
 * work goes through calls (call.c) to the scheduler (sched.c), which
 * batches every active request into each pass of the model. Connections
 * idle longer than the timeout (slow clients) are closed, and conn.c
 * closes those whose headers take too long and refuses those over the
 * connection limits.
 *
 * Probes (routes marked QS_PROBE: /health, /ready, /metrics) answer
 * without the API key, /metrics with --metrics-key only with a key, and
 * they alone answer while the server drains (qc_server_drain): every other
 * request is then 503 with Retry-After. Every request is counted from its
 * first call to on_completed (qc_server_inflight), which the drain waits
 * for. */
#include "server/srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QS_MAX_BODY (1u << 20) /* bytes of a request body */
#define QS_HTTP_THREADS 4       /* libmicrohttpd's threads (I/O and JSON only: the model has its own) */
#define QS_SESSION_BUDGET ((size_t)512 << 20) /* KV bytes of all conversations (the care pipeline's LRU budget) */

/* ==== text for the log ==== */

const char *qs_escape(const char *in, char *out, size_t n) {
    size_t o = 0;
    if (!n) return out;
    const unsigned char *p = (const unsigned char *)(in ? in : "");
    while (*p && o + 5 < n) {
        unsigned c = *p;
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (c == 0xC0 || c == 0xC1 || c > 0xF4) k = 0; /* overlong or out of range */
        for (size_t i = 1; i < k; i++)
            if ((p[i] & 0xC0) != 0x80) k = 0;
        /* C1 controls (U+0080..U+009F) act on terminals too */
        int c1 = k == 2 && c == 0xC2 && p[1] < 0xA0;
        if (k == 1 && c >= 0x20 && c != 0x7F && c != '\\') {
            out[o++] = (char)c;
        } else if (c == '\\') {
            out[o++] = '\\', out[o++] = '\\';
        } else if (k > 1 && !c1 && o + k < n) {
            memcpy(out + o, p, k);
            o += k;
            p += k;
            continue;
        } else {
            o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
        }
        p++;
    }
    out[o] = 0;
    return out;
}

/* ==== replies ==== */

enum MHD_Result qs_reply_bytes(struct MHD_Connection *con, qs_req_t *r, unsigned status, const void *data, size_t len,
                               enum MHD_ResponseMemoryMode mode, const char *type, const char *header,
                               const char *value) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE) free((void *)data);
        return MHD_NO;
    }
    if (type) MHD_add_response_header(resp, "Content-Type", type);
    if (header) MHD_add_response_header(resp, header, value);
    return qs_queue(con, r, status, resp);
}

enum MHD_Result qs_queue(struct MHD_Connection *con, qs_req_t *r, unsigned status, struct MHD_Response *resp) {
    /* a balancer's idle keep-alive connection to a draining server would
     * otherwise carry a request into the moment the process exits (502) */
    if (r->draining && atomic_load(r->draining)) MHD_add_response_header(resp, "Connection", "close");
    if (r->cors[0]) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    r->status = (int)status;
    enum MHD_Result ret = MHD_queue_response(con, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* qs_reply_json with one more header. */
static enum MHD_Result reply_json_with(struct MHD_Connection *con, qs_req_t *r, unsigned status, json_t *j,
                                       const char *header, const char *value) {
    if (status >= 400) qs_req_urgent_fields(r, j);
    char *s = j ? json_dumps(j, JSON_COMPACT | QC_JSON_REAL) : NULL;
    json_decref(j);
    if (!s) return MHD_NO;
    return qs_reply_bytes(con, r, status, s, strlen(s), MHD_RESPMEM_MUST_FREE, QS_JSON_TYPE, header, value);
}

enum MHD_Result qs_reply_json(struct MHD_Connection *con, qs_req_t *r, unsigned status, json_t *j) {
    return reply_json_with(con, r, status, j, status == MHD_HTTP_UNAUTHORIZED ? "WWW-Authenticate" : NULL, "Bearer");
}

enum MHD_Result qs_reply_error(struct MHD_Connection *con, qs_req_t *r, unsigned status, const char *fmt, ...) {
    char msg[512], esc[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qs_reply_json(con, r, status, json_pack("{s:s}", "error", qs_escape(msg, esc, sizeof esc)));
}

enum MHD_Result qs_reply_busy(struct MHD_Connection *con, qs_req_t *r) {
    static const char body[] = "{\"error\":\"the server is busy: every slot and the queue are full; retry later\"}";
    if (r->sr.kind)
        return reply_json_with(con, r, 503,
                               json_pack("{s:s}", "error", "the server is busy: every slot and the queue are full; retry later"),
                               "Retry-After", "1");
    return qs_reply_bytes(con, r, 503, body, sizeof body - 1, MHD_RESPMEM_PERSISTENT, QS_JSON_TYPE, "Retry-After",
                          "1");
}

/* A new request while the server drains (SIGTERM): a balancer or client
 * retries elsewhere. An urgent patient's message still gets its notice. */
static enum MHD_Result reply_draining(struct MHD_Connection *con, qs_req_t *r) {
    if (r->patient) qs_req_scan_body(r);
    return reply_json_with(con, r, 503,
                           json_pack("{s:s}", "error", "the server is shutting down (draining); retry on another replica"),
                           "Retry-After", "1");
}

static enum MHD_Result reply_405(struct MHD_Connection *con, qs_req_t *r, const char *allow) {
    static const char body[] = "{\"error\":\"method not allowed\"}";
    return qs_reply_bytes(con, r, 405, body, sizeof body - 1, MHD_RESPMEM_PERSISTENT, QS_JSON_TYPE, "Allow", allow);
}

/* ==== the JSON body ==== */

uint64_t qs_random_u64(void) {
    uint64_t v;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v) return v;
    /* no entropy (cannot happen on Linux >= 3.17): still different per call */
    static atomic_ulong n;
    return ((uint64_t)time(NULL) << 20 ^ (uint64_t)(qc_now_ms() * 1e3)) * 0x9E3779B97F4A7C15ull ^
           (uint64_t)atomic_fetch_add(&n, 1);
}

json_t *qs_parse_body(qs_req_t *r, char *msg, size_t n) {
    json_error_t je;
    /* a key given twice is refused: a checker that reads the first and a
     * reader that takes the last would see different messages */
    json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.n, JSON_REJECT_DUPLICATES, &je);
    if (!j) { /* in qcare's words: jansson's quote the body and name its own internals */
        if (r->patient) qs_req_scan_body(r);
        enum json_error_code e = json_error_code(&je);
        snprintf(msg, n, "malformed JSON at line %d, column %d: %s", je.line, je.column,
                 e == json_error_premature_end_of_input ? "the body ends inside a value"
                 : e == json_error_end_of_input_expected ? "more follows the JSON value"
                 : e == json_error_invalid_utf8          ? "the body is not valid UTF-8"
                 : e == json_error_null_character || e == json_error_null_byte_in_key ? "\\u0000 in a string"
                 : e == json_error_duplicate_key    ? "a key is given twice in one object (duplicate)"
                 : e == json_error_numeric_overflow ? "a number is too large (integers must be at most 9223372036854775807)"
                 : e == json_error_stack_overflow   ? "arrays and objects nest too deeply"
                 : e == json_error_out_of_memory    ? "out of memory"
                                                    : "not valid JSON");
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        if (r->patient) qs_req_scan_body(r);
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

int qs_header_session(struct MHD_Connection *con, const char **session, char *msg, size_t n) {
    const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Session-Id");
    if (!h) return 0;
    size_t len = strlen(h);
    json_t *utf8 = json_stringn(h, len); /* NULL for bytes that are not UTF-8, as the body's are refused */
    json_decref(utf8);
    if (len == 0 || len > QS_MAX_SESSION || !utf8) {
        snprintf(msg, n, "the X-Session-Id header must be 1 to %d bytes of UTF-8", QS_MAX_SESSION);
        return -1;
    }
    if (*session && strcmp(*session, h)) {
        snprintf(msg, n, "the X-Session-Id header and the body's \"session\" differ");
        return -1;
    }
    *session = h;
    return 0;
}

/* ==== the page and the probes ==== */

/* The chat page (web/index.html, embedded by tools/embed.c). */
extern const unsigned char qc_web_index[];
extern const unsigned long qc_web_index_len;

/* Liveness: 503 when the scheduler has been in one loop for --watchdog
 * seconds while work waits (a restart is the cure); draining is alive. */
static enum MHD_Result health(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    double stall = qs_sched_stall_s(s->sched);
    if (stall >= s->watchdog_s)
        return qs_reply_json(con, r, 503,
                             json_pack("{s:s, s:s, s:f}", "status", "stalled", "error",
                                       "the scheduler has not finished a loop within --watchdog while work waits",
                                       "stalled_s", stall));
    return qs_reply_json(con, r, 200, json_pack("{s:s}", "status", "ok"));
}

/* Readiness: 200 only when the model is loaded (it is before the server
 * listens), the server does not drain, the scheduler is not stalled, the
 * records store was reachable at its last write (qc_store_reachable) and
 * the embedder's ready_check agrees. */
static enum MHD_Result ready(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    char why[256] = "";
    const char *status = NULL;
    if (atomic_load(&s->draining)) status = "draining";
    else if (qs_sched_stall_s(s->sched) >= s->watchdog_s) status = "stalled";
    else if (s->rec && !qc_store_reachable(qs_records_store(s->rec))) {
        status = "not ready";
        snprintf(why, sizeof why, "the records store is unreachable (turns get 503 until it is back)");
    } else if (s->ready_check && !s->ready_check(s->ready_user, why, sizeof why)) status = "not ready";
    if (!status) return qs_reply_json(con, r, 200, json_pack("{s:s}", "status", "ready"));
    char esc[512];
    json_t *j = json_pack("{s:s}", "status", status);
    if (j && why[0]) json_object_set_new(j, "error", json_string(qs_escape(why, esc, sizeof esc)));
    return qs_reply_json(con, r, 503, j);
}

/* What the page shows besides the chat: the model and whether it is a
 * random-weight fixture (a banner). Open, as /health: nothing secret. */
static enum MHD_Result info(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    return qs_reply_json(con, r, 200, json_pack("{s:s, s:b}", "model", s->model_name, "fixture", s->fixture));
}

static enum MHD_Result page(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    (void)s;
    return qs_reply_bytes(con, r, 200, qc_web_index, qc_web_index_len, MHD_RESPMEM_PERSISTENT,
                          "text/html; charset=utf-8", "Cache-Control", "no-cache");
}

static const qs_route_t page_routes[] = {
    {"/health", "GET", QS_PROBE, health, 0},
    {"/ready", "GET", QS_PROBE, ready, 0},
    {"/api/info", "GET", 1, info, 0},
    {"/", "GET", 1, page, 0},
    {0},
};

/* ==== routing ==== */

/* The route table: every endpoint group, in the order /metrics lists its
 * paths. A new group is its file, its declaration in srv.h and one line
 * here. */
static const qs_route_t *const route_table[] = {
    page_routes,      /* /health, /ready, / */
    qs_care_routes,   /* /api/emotion, /api/analyze */
    qs_openai_routes, /* /v1/models, /v1/chat/completions, /v1/completions */
    qs_classify_routes, /* /v1/classify */
    qs_metrics_routes, /* /metrics */
    qs_records_routes /* /dashboard, /api/records/... */
};

/* Constant-time comparison of the Authorization header with "Bearer KEY"
 * (the scheme in any case, RFC 9110 §11.1); 0 when key is NULL. */
static int authorized(const char *key, struct MHD_Connection *con) {
    const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!key || !h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    while (*h == ' ') h++;
    size_t a = strlen(h), b = strlen(key);
    unsigned char diff = a != b;
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)(h[i] ^ key[i % (b ? b : 1)]);
    return diff == 0;
}

/* ==== cross-site requests ==== */

/* Whether a Content-Type is application/json (parameters such as charset
 * allowed). A page on another site may POST text/plain without asking;
 * application/json makes its browser ask first (a CORS preflight). */
static int is_json_type(const char *t) {
    if (!t) return 0;
    while (*t == ' ' || *t == '\t') t++;
    if (strncasecmp(t, "application/json", 16)) return 0;
    for (t += 16; *t == ' ' || *t == '\t'; t++) {}
    return !*t || *t == ';';
}

/* Whether a request with this Origin may go on: none (curl, SDKs), the
 * page's own (the Host header's origin, http or https: a proxy may have
 * ended TLS) or one of --allow-origin, which is then echoed in r->cors. */
static int origin_allowed(const qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    const char *o = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Origin");
    if (!o) return 1;
    const char *host = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *rest = !strncasecmp(o, "http://", 7) ? o + 7 : !strncasecmp(o, "https://", 8) ? o + 8 : NULL;
    if (rest && host && *host && !strcasecmp(rest, host)) return 1;
    for (int i = 0; i < s->n_origins; i++)
        if ((!strcmp(s->origins[i], "*") || !strcasecmp(s->origins[i], o)) && strlen(o) < sizeof r->cors) {
            snprintf(r->cors, sizeof r->cors, "%s", o);
            return 1;
        }
    return 0;
}

/* The answer to a CORS preflight (OPTIONS) from an allowed origin. */
static enum MHD_Result preflight(struct MHD_Connection *con, qs_req_t *r, const char *allow) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    char methods[80];
    snprintf(methods, sizeof methods, "%s, OPTIONS", allow);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", methods);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    return qs_queue(con, r, 204, resp);
}

/* ==== matching ==== */

static int path_matches(const char *pattern, const char *url) {
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*') return !strncmp(url, pattern, n - 1) && url[n - 1];
    return !strcmp(url, pattern);
}

static int method_matches(const qs_route_t *rt, const char *method) {
    return !strcmp(method, rt->method) || (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"));
}

/* The methods of the routes with routes[first]'s path, for Allow. */
static void path_methods(const qc_server_t *s, int first, char *allow, size_t n) {
    allow[0] = 0;
    for (int i = first; i < s->n_routes; i++)
        if (!strcmp(s->routes[i]->path, s->routes[first]->path))
            snprintf(allow + strlen(allow), n - strlen(allow), "%s%s", *allow ? ", " : "", s->routes[i]->method);
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
    if (k == s->n_routes) r->route = first; /* the path exists, not with this method: counted there */
    const qs_route_t *rt = s->routes[r->route];
    r->patient = rt->patient;
    if (!origin_allowed(s, con, r))
        return qs_reply_error(con, r, 403, "requests from another site's page are refused (its Origin is not in "
                                           "--allow-origin)");
    char allow[64];
    path_methods(s, first, allow, sizeof allow);
    if (!strcmp(method, "OPTIONS") && r->cors[0]) return preflight(con, r, allow);
    if (k == s->n_routes) return reply_405(con, r, allow);
    if (atomic_load(&s->draining) && rt->open != QS_PROBE) return reply_draining(con, r);
    if (rt->open == QS_ADMIN && !authorized(s->admin_key, con))
        return qs_reply_error(con, r, 401, "the admin key is required (Authorization: Bearer KEY)");
    if (s->api_key && !rt->open && !authorized(s->api_key, con) && !authorized(s->admin_key, con))
        return qs_reply_error(con, r, 401, "a valid API key is required (Authorization: Bearer KEY)");
    if (s->metrics_key && !strcmp(rt->path, "/metrics") && !authorized(s->metrics_key, con) &&
        !authorized(s->api_key, con) && !authorized(s->admin_key, con))
        return qs_reply_error(con, r, 401, "the metrics key is required (Authorization: Bearer KEY)");
    int bad_type = !strcmp(rt->method, "POST") &&
                   !is_json_type(MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
    if ((r->too_big || bad_type) && r->patient) qs_req_scan_body(r);
    if (r->too_big) return qs_reply_error(con, r, 413, "the request body is larger than %u bytes", QS_MAX_BODY);
    if (bad_type) return qs_reply_error(con, r, 415, "the body must be sent as Content-Type: application/json");
    return rt->serve(s, con, r);
}

/* ==== framing ==== */

typedef struct {
    int n_len, n_te;
    const char *te;
} framing_t;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    framing_t *f = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) f->n_len++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) f->n_te++, f->te = value;
    return MHD_YES;
}

/* Why the request's body framing is ambiguous or unsupported, or NULL.
 * Behind a proxy that reads the framing differently, an ambiguous request
 * smuggles a second one in its body (RFC 9112 §6.3): both Content-Length
 * and Transfer-Encoding, Content-Length twice, or a Transfer-Encoding
 * other than one "chunked" (which libmicrohttpd would read as a body
 * lasting until the connection closes). */
static const char *bad_framing(struct MHD_Connection *con, const char *version) {
    framing_t f = {0};
    MHD_get_connection_values(con, MHD_HEADER_KIND, count_framing, &f);
    if (f.n_len && f.n_te) return "a request must not have both Content-Length and Transfer-Encoding";
    if (f.n_len > 1) return "a request must not have more than one Content-Length";
    if (!f.n_te) return NULL;
    if (strcmp(version, MHD_HTTP_VERSION_1_1)) return "Transfer-Encoding needs HTTP/1.1";
    const char *v = f.te;
    while (*v == ' ' || *v == '\t') v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    if (f.n_te > 1 || n != 7 || strncasecmp(v, "chunked", 7))
        return "the only Transfer-Encoding accepted is a single \"chunked\"";
    return NULL;
}

/* 400 before the body is read: MHD then closes the connection after the
 * answer (nothing after it on the connection is read as a request). */
static enum MHD_Result reply_close(struct MHD_Connection *con, qs_req_t *r, const char *msg) {
    json_t *j = json_pack("{s:s}", "error", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return MHD_NO;
    return qs_reply_bytes(con, r, 400, s, strlen(s), MHD_RESPMEM_MUST_FREE, QS_JSON_TYPE, "Connection", "close");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls) {
    qc_server_t *s = cls;
    qs_req_t *r = *con_cls;
    if (r && r->call) return qs_call_answer(con, r); /* resumed: the scheduler is done */
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        atomic_fetch_add(&s->n_inflight, 1); /* until on_completed: the drain waits for it */
        r->t0 = qc_now_ms();
        r->draining = &s->draining;
        r->route = s->n_routes;
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        *con_cls = r;
        qs_conns_request(s->conns, con, 1); /* the headers are complete */
        const char *bad = bad_framing(con, version);
        return bad ? reply_close(con, r, bad) : MHD_YES;
    }
    if (*upload_size) {
        /* Past the limit the rest is read and dropped, then answered 413;
         * the first QS_MAX_BODY bytes stay, for the notice (notice.c). */
        if (!r->too_big) {
            size_t take = *upload_size;
            if (r->body.n + take > QS_MAX_BODY) r->too_big = 1, take = QS_MAX_BODY - r->body.n;
            if (qc_buf_add(&r->body, upload_data, take)) return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return route(s, con, r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode toe) {
    qc_server_t *s = cls;
    qs_req_t *r = *con_cls;
    if (!r) return;
    if (r->call && !r->status) r->status = 499; /* closed while its call waited: the client left */
    qs_call_drop(r);
    qs_conns_request(s->conns, con, 0);
    double ms = qc_now_ms() - r->t0;
    qs_metrics_request(s->metrics, r->route, r->status, ms / 1e3);
    if (!s->quiet) {
        /* the path comes from the client: %0a or an escape sequence in it
         * must not forge a log line or drive the terminal */
        char m[64], p[4 * sizeof r->path];
        fprintf(stderr, "%s %s %d %.1f ms%s\n", qs_escape(r->method, m, sizeof m), qs_escape(r->path, p, sizeof p),
                r->status, ms, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed)");
    }
    qc_buf_free(&r->body);
    free(r->notice);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->n_inflight, 1);
}

/* ==== start and stop ==== */

/* libmicrohttpd's own messages (e.g. a client gone mid-stream), silenced
 * by --quiet like the request log. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    const qc_server_t *s = cls;
    if (s->quiet) return;
    char msg[1024], esc[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    fprintf(stderr, "libmicrohttpd: %s\n", qs_escape(msg, esc, sizeof esc)); /* it may quote the request */
}

/* The listening socket on addr, bound here so that an error names the
 * address and the reason (MHD's own message says "port 0" when given an
 * address); -1 with the message in err. */
static int listen_on(const struct sockaddr *addr, socklen_t len, const char *host, int port, char *err,
                     size_t err_size) {
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    const char *what = "socket";
    if (fd < 0) goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    what = "bind";
    if (bind(fd, addr, len)) goto fail;
    what = "listen";
    if (listen(fd, SOMAXCONN)) goto fail;
    return fd;
fail:
    qc_seterr(err, err_size, QC_ERR_IO, "cannot listen on %s%s%s port %d: %s (%s)", strchr(host, ':') ? "[" : "",
              host, strchr(host, ':') ? "]" : "", port, strerror(errno), what);
    if (fd >= 0) close(fd);
    return -1;
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

/* The care pipeline dropped a conversation beyond --max-sessions (on the
 * scheduler's thread): what its KV state was built from is forgotten, so
 * its next turn is rebuilt from the records instead of starting anew. */
static void session_dropped(void *user, const char *session_id) {
    qc_server_t *s = user;
    if (s->rec) qs_records_set_basis(s->rec, session_id, NULL);
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
    s->risk_model = o.risk_model;
    s->watchdog_s = o.watchdog_s > 0 ? o.watchdog_s : 30;
    s->ready_check = o.ready_check;
    s->ready_user = o.ready_user;
    if (o.metrics_key && !(s->metrics_key = strdup(o.metrics_key))) {
        qc_seterr(err, err_size, st, "out of memory");
        goto fail;
    }
    s->fixture = o.fixture;
    for (int i = 0; o.allow_origins && o.allow_origins[i]; i++) {
        char **p = realloc(s->origins, (size_t)(s->n_origins + 1) * sizeof *p);
        if (!p || !(p[s->n_origins] = strdup(o.allow_origins[i]))) {
            if (p) s->origins = p;
            qc_seterr(err, err_size, st, "out of memory");
            goto fail;
        }
        s->origins = p;
        size_t n = strlen(p[s->n_origins]);
        if (n > 1 && p[s->n_origins][n - 1] == '/') p[s->n_origins][n - 1] = 0;
        s->n_origins++;
    }
    qc_care_opts_t co = {.n_ctx = s->n_ctx, .use_prefix_cache = 1, .risk_model = o.risk_model,
                         .prefix_budget = (size_t)(o.prefix_cache_mb > 0 ? o.prefix_cache_mb : 64) << 20,
                         .max_sessions = o.max_sessions, .on_session_drop = session_dropped, .drop_user = s};
    co.session_budget = QS_SESSION_BUDGET;
    /* the KV budget: the conversations' and one full context per slot */
    s->kv_budget_tokens = QS_SESSION_BUDGET / qc_model_kv_bytes_per_token(m) + (size_t)s->parallel * (size_t)s->n_ctx;
    if ((st = qc_care_new(m, &co, &s->care, err, err_size))) goto fail;
    if ((st = qs_records_open(s, &o, err, err_size))) goto fail;
    if (!(s->sched = qs_sched_new(m, s->care, s->parallel, s->queue, s->n_ctx, err, err_size))) {
        st = QC_ERR_NOMEM;
        goto fail;
    }
    qs_sched_test_stall(s->sched, o.test_stall_ms);
    unsigned timeout = o.timeout_s > 0 ? (unsigned)o.timeout_s : 60;
    s->keepalive_ms = timeout * 1000 / 3 < 15000 ? (int)(timeout * 1000 / 3) : 15000;
    qs_conns_opts_t co2 = {.max_conns = o.max_connections > 0 ? o.max_connections : 1000,
                           .max_client = o.max_client_connections > 0 ? o.max_client_connections : 64,
                           .trusted = o.trusted_proxies,
                           .header_ms = 1e3 * (o.header_timeout_s > 0 ? o.header_timeout_s : 10)};
    if (!(s->conns = qs_conns_new(s, &co2, err, err_size))) {
        st = QC_ERR_ARG;
        goto fail;
    }
    int lfd = listen_on(v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4, v6 ? sizeof a6 : sizeof a4, host, port,
                        err, err_size);
    if (lfd < 0) {
        st = QC_ERR_IO;
        goto fail;
    }
    /* MHD splits its own connection limit between its threads, which may
     * take unevenly: it is only a backstop above conn.c's exact one. */
    s->d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                                (v6 ? MHD_USE_IPv6 : 0),
                            (uint16_t)port, qs_conns_accept, s->conns, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_log, s, MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned)QS_HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)(2 * co2.max_conns + 4 * QS_HTTP_THREADS), MHD_OPTION_NOTIFY_CONNECTION,
                            qs_conns_notify, s->conns, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_END);
    if (!s->d) {
        close(lfd);
        st = qc_seterr(err, err_size, QC_ERR_IO, "cannot start the HTTP server on %s port %d", host, port);
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
    /* Requests still running end first (streams get their last event, plain
     * calls their answer, once their records are committed), which resumes
     * every suspended connection: MHD must not stop with one suspended. */
    qs_sched_stop(s->sched);
    qs_records_drain(s->rec); /* the answers that waited for their commit end too */
    if (s->d) MHD_stop_daemon(s->d);
    qs_conns_free(s->conns);
    qs_sched_free(s->sched);
    qs_records_close(s->rec);
    qc_care_free(s->care);
    qs_metrics_free(s->metrics);
    free(s->api_key);
    free(s->admin_key);
    free(s->metrics_key);
    free(s->model_name);
    for (int i = 0; i < s->n_origins; i++) free(s->origins[i]);
    free(s->origins);
    free(s);
}

/* ==== draining (SIGTERM) ==== */

void qc_server_drain(qc_server_t *s) { atomic_store(&s->draining, 1); }

int qc_server_inflight(qc_server_t *s) { return atomic_load(&s->n_inflight); }

/* The scheduler ends every request it holds (streams get their error
 * event, plain calls their 503) and refuses new ones; the connections stay
 * up until those answers are sent. */
void qc_server_cut(qc_server_t *s) { qs_sched_stop(s->sched); }
