/* serverproc.h — the real `qcare serve` in a child process, for the tests
 * that talk to it over HTTP (test_load, test_server).
 *
 *   sp_server_t s;
 *   if (sp_start(&s, NULL, "build/tests/x.log", (const char *[]){"--quiet", NULL}) == 0) {
 *       sp_reply_t r;
 *       long st = sp_http(&s, NULL, "/api/emotion", "{\"text\": \"hi\"}", 0, NULL, &r);
 *       ... r.body, r.retry_after ...
 *       sp_reply_free(&r);
 *       int status;
 *       sp_stop(&s, 30, &status);   // SIGTERM; 0 when it exited in time
 *   }
 *
 * The server runs as `$QC_BUILD/qcare serve --model $QC_MODELS/MODEL --dtype
 * bf16 --threads 2 --port P [--no-records] ARGS...` with its stdout and
 * stderr in a log file; ARGS come last, so they can override the fixture
 * defaults. --no-records is added unless ARGS say something of the
 * records (--records PATH, --records-sync, --no-records): a test never
 * writes the real data folder by accident. It binds
 * a free loopback port (picked here; a start that loses the port to another
 * process is retried on a new one) and is ready once GET /health answers 200.
 * It is killed if the test process dies first (PR_SET_PDEATHSIG), so a
 * crashed test leaves no server behind.
 *
 * sp_request is safe to call from many threads at once once the caller has
 * run curl_global_init (before starting any thread). Every function here is
 * static inline so a test that uses only some of them builds warning-free. */
#ifndef QC_SERVERPROC_H
#define QC_SERVERPROC_H

#include "test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SP_MAX_ARGS 64           /* server arguments in all */
#define SP_READY_S 120.0         /* seconds to wait for /health after the start (the debug build loads slowly) */
#define SP_TIMEOUT_DEF_S 120L    /* seconds a request may take when sp_request_t.timeout_s is 0 */

typedef struct {
    pid_t pid;     /* the server process; 0 when none runs */
    int port;      /* its loopback TCP port */
    char log[512]; /* the file with its stdout and stderr */
} sp_server_t;

/* One request. Only path is required. */
typedef struct {
    const char *method;   /* NULL: POST when there is a body, else GET */
    const char *path;     /* "/health" */
    const char *body;     /* sent with content_type; NULL: none */
    const char *content_type;  /* NULL: application/json; "": no Content-Type header */
    const char *const *headers; /* more header lines ("Origin: ..."), NULL-terminated; NULL: none */
    size_t len;           /* body bytes (0: strlen(body)) */
    const char *api_key;  /* sent as "Authorization: Bearer KEY"; NULL: none */
    long timeout_s;       /* the whole request, connect to last byte (0: SP_TIMEOUT_DEF_S) */
    const char *abort_at; /* a client that goes away: hang up as soon as a 200 body contains this
                             ("" = at its first bytes); NULL: read the whole answer */
} sp_request_t;

/* One answer. body is never NULL after sp_request (owned by the reply:
 * sp_reply_free). */
typedef struct {
    long status;                 /* HTTP status; 0 when no answer came (see rc) */
    CURLcode rc;                 /* CURLE_OK, or why the transfer failed (CURLE_WRITE_ERROR when abandoned) */
    int abandoned;               /* hung up on purpose (abort_at matched) */
    char *body;                  /* what arrived, NUL-terminated */
    size_t len;                  /* body bytes */
    char retry_after[32];        /* the Retry-After header's value; "" when absent */
    char headers[4096];          /* the answer's header lines as received (the last block, cut at 4095 bytes) */
    char error[CURL_ERROR_SIZE]; /* curl's message when rc != CURLE_OK */
    double seconds;              /* wall time of the request */
} sp_reply_t;

/* ==== HTTP ==== */

typedef struct {
    sp_reply_t *r;
    CURL *c;
    const char *abort_at;
} sp_xfer_t;

static inline size_t sp_on_body(char *p, size_t sz, size_t nm, void *user) {
    sp_xfer_t *x = user;
    sp_reply_t *r = x->r;
    size_t n = sz * nm;
    char *nb = realloc(r->body, r->len + n + 1);
    if (!nb) return 0;
    memcpy(nb + r->len, p, n);
    r->body = nb;
    r->len += n;
    r->body[r->len] = 0;
    if (x->abort_at) {
        long st = 0;
        curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &st);
        /* Search only where a match can end in the new bytes. */
        size_t k = strlen(x->abort_at), from = r->len - n > k ? r->len - n - k : 0;
        if (st == 200 && strstr(r->body + from, x->abort_at)) {
            r->abandoned = 1;
            return 0;
        }
    }
    return n;
}

/* Keeps Retry-After; a new header block (after a 1xx) starts over. */
static inline size_t sp_on_header(char *p, size_t sz, size_t nm, void *user) {
    sp_reply_t *r = user;
    size_t n = sz * nm;
    if (n >= 5 && !strncmp(p, "HTTP/", 5)) r->retry_after[0] = r->headers[0] = 0;
    size_t have = strlen(r->headers), k = n < sizeof r->headers - 1 - have ? n : sizeof r->headers - 1 - have;
    memcpy(r->headers + have, p, k);
    r->headers[have + k] = 0;
    if (n > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        size_t i = 12, j = 0;
        while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
        while (i < n && p[i] != '\r' && p[i] != '\n' && j + 1 < sizeof r->retry_after) r->retry_after[j++] = p[i++];
        r->retry_after[j] = 0;
    }
    return n;
}

/* Sends q to the server on port; the answer in *r (free with
 * sp_reply_free, also after a failure). Returns r->status. */
static inline long sp_request(int port, const sp_request_t *q, sp_reply_t *r) {
    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    r->rc = CURLE_OUT_OF_MEMORY;
    double t0 = qc_now_s();
    CURL *c = curl_easy_init();
    char url[1200], auth[300], type[300];
    /* "Content-Type:" with nothing after it makes curl send none */
    snprintf(type, sizeof type, "Content-Type:%s%s", q->content_type && !*q->content_type ? "" : " ",
             q->content_type ? q->content_type : "application/json");
    struct curl_slist *h = curl_slist_append(NULL, type);
    struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL;
    if (!r->body || !c || !h2) {
        snprintf(r->error, sizeof r->error, "out of memory");
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return 0;
    }
    h = h2;
    if (q->api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", q->api_key);
        if ((h2 = curl_slist_append(h, auth))) h = h2;
    }
    for (int i = 0; q->headers && q->headers[i]; i++)
        if ((h2 = curl_slist_append(h, q->headers[i]))) h = h2;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, q->path);
    sp_xfer_t x = {r, c, q->abort_at};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sp_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sp_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for timeouts: the caller may be one of many threads */
    curl_easy_setopt(c, CURLOPT_TIMEOUT, q->timeout_s > 0 ? q->timeout_s : SP_TIMEOUT_DEF_S);
    if (q->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->len ? q->len : strlen(q->body)));
    }
    if (q->method) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
    r->rc = curl_easy_perform(c);
    /* An abandoned transfer has a status too (the headers came first). */
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->rc == CURLE_OK) r->abandoned = 0;
    else if (!r->error[0]) snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(r->rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r->seconds = qc_now_s() - t0;
    return r->status;
}

/* The common case: one request to s with the default timeout. method NULL:
 * POST when body, else GET; len 0: strlen(body). Returns the status (0 when
 * no answer came); the answer in *r (free with sp_reply_free). */
static inline long sp_http(const sp_server_t *s, const char *method, const char *path, const char *body, size_t len,
                           const char *api_key, sp_reply_t *r) {
    sp_request_t q = {.method = method, .path = path, .body = body, .len = len, .api_key = api_key};
    return sp_request(s->port, &q, r);
}

/* Frees the reply's body; a second call is a no-op. */
static inline void sp_reply_free(sp_reply_t *r) {
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ==== temporary paths ==== */

/* dir/name in one of 8 rotating buffers (valid until 8 more calls), for
 * the records files of a test's temporary folder. */
static inline const char *sp_path_in(const char *dir, const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* ==== the server process ==== */

/* A loopback port nobody listens on now (0 when none could be found). The
 * server binds it a moment later; sp_start retries if someone else won. */
static inline int sp_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int p = 0;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) && !getsockname(fd, (struct sockaddr *)&a, &l))
        p = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return p;
}

/* Runs argv (argv[0] a path) in a child process with its stdout and stderr
 * in s->log, and waits until GET /health on s->port answers 200. Returns 0
 * then; 1 when the child exited first (e.g. it lost the port); -1 when it
 * did not get ready in time (it is killed). */
static inline int sp_spawn(sp_server_t *s, const char *const *argv) {
    fflush(NULL); /* the child must not write our buffered output a second time */
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!freopen(s->log, "w", stderr) || dup2(fileno(stderr), STDOUT_FILENO) < 0) _exit(126);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "sp_start: cannot run %s\n", argv[0]);
        _exit(127);
    }
    s->pid = pid;
    for (double t0 = qc_now_s(); qc_now_s() - t0 < SP_READY_S;) {
        sp_request_t q = {.path = "/health", .timeout_s = 5};
        sp_reply_t r;
        long st = sp_request(s->port, &q, &r);
        sp_reply_free(&r);
        if (st == 200) return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            s->pid = 0;
            return 1;
        }
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
}

/* One try of sp_start on a new port: 0 ready, 1 the child exited before
 * answering (maybe the port was taken), -1 any other failure. */
static inline int sp_start_once(sp_server_t *s, const char *model, const char *const *args) {
    char qcare[512], dir[512], ps[16];
    const char *argv[SP_MAX_ARGS + 1];
    int n = 0;
    if (!(s->port = sp_free_port())) return -1;
    snprintf(qcare, sizeof qcare, "%s/qcare", test_env("QC_BUILD", "build"));
    snprintf(dir, sizeof dir, "%s/%s", test_env("QC_MODELS", "build/models"), model ? model : "tiny-qwen2");
    snprintf(ps, sizeof ps, "%d", s->port);
    const char *fixed[] = {qcare, "serve", "--model", dir, "--dtype", "bf16", "--threads", "2", "--port", ps};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[n++] = fixed[i];
    int records = 0;
    for (int i = 0; args && args[i]; i++) records |= !strncmp(args[i], "--records", 9) || !strcmp(args[i], "--no-records");
    if (!records) argv[n++] = "--no-records";
    for (int i = 0; args && args[i]; i++) {
        if (n == SP_MAX_ARGS) {
            fprintf(stderr, "sp_start: more than %d arguments\n", SP_MAX_ARGS);
            return -1;
        }
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return sp_spawn(s, argv);
}

/* Starts `qcare serve` with the fixture model `model` (a folder in
 * $QC_MODELS; NULL: tiny-qwen2) and the extra arguments args (a
 * NULL-terminated list; NULL: none), its output in the file log. Returns 0
 * once GET /health answers 200; -1 when it does not start (the log says
 * why), with s->pid 0. */
static inline int sp_start(sp_server_t *s, const char *model, const char *log, const char *const *args) {
    memset(s, 0, sizeof *s);
    snprintf(s->log, sizeof s->log, "%s", log);
    for (int attempt = 0; attempt < 3; attempt++) {
        int rc = sp_start_once(s, model, args);
        if (rc <= 0) return rc;
    }
    return -1;
}

/* Sends SIGTERM and waits up to timeout_s seconds for the exit; the wait
 * status in *status (if given). Returns 0 when it exited in time; -1 when
 * it did not (it is then killed with SIGKILL and reaped) or none ran. */
static inline int sp_stop(sp_server_t *s, double timeout_s, int *status) {
    int st = 0, rc = -1;
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    for (double t0 = qc_now_s();;) {
        pid_t w = waitpid(s->pid, &st, WNOHANG);
        if (w == s->pid) {
            rc = 0;
            break;
        }
        if (w < 0 || qc_now_s() - t0 > timeout_s) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            break;
        }
        usleep(20000);
    }
    if (status) *status = st;
    s->pid = 0;
    return rc;
}

/* The resident memory of process pid in KiB (VmRSS); -1 when unknown. */
static inline long sp_rss_kib(pid_t pid) {
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* The value of the first line of a GET /metrics answer that starts with
 * `name` (a metric with its labels) and a space; -1 when absent. */
static inline double sp_metric(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    return -1;
}

/* Whether a server log holds a sanitizer report. */
static inline int sp_log_has_sanitizer_report(const char *text) {
    return text && (strstr(text, "Sanitizer") || strstr(text, "runtime error:"));
}

/* ==== checked start and stop (for tests) ==== */

/* sp_start with the log at $QC_BUILD/tests/LOG; a failure is a failed
 * check showing the log. 0 when it runs. */
static inline int sp_start_checked(sp_server_t *s, const char *log, const char *const *args) {
    char lp[512];
    snprintf(lp, sizeof lp, "%s/tests/%s", test_env("QC_BUILD", "build"), log);
    if (sp_start(s, NULL, lp, args)) {
        char *text = test_slurp(lp, NULL);
        CHECK(0, "the server (%s) did not start:\n%s", log, text ? text : "");
        free(text);
        return -1;
    }
    return 0;
}

/* SIGTERM; checks that it exits 0 in time without a sanitizer report
 * (the log is shown when not, or always with $QC_SERVER_SHOW). */
static inline void sp_stop_checked(sp_server_t *s) {
    int st = 0;
    int rc = sp_stop(s, 60, &st);
    char *text = test_slurp(s->log, NULL);
    CHECK(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "server exit status %d after SIGTERM:\n%s", st,
          text ? text : "");
    CHECK(!sp_log_has_sanitizer_report(text), "sanitizer report:\n%s", text ? text : "");
    if (getenv("QC_SERVER_SHOW")) fprintf(stderr, "%s", text ? text : "");
    free(text);
}

#endif
