/* test_attack.c — the server against hostile or careless clients, with raw
 * sockets on loopback (the real `qcare serve`, tests/serverproc.h):
 *   - requests abandoned at once (the client closes right after sending):
 *     each is cancelled, queued or running, streamed or not, and a real
 *     request is still answered promptly. */
#include "serverproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>

static sp_server_t srv;

/* ==== raw sockets ==== */

/* A connection to the server from loopback address src (NULL: 127.0.0.1);
 * -1 on failure. */
static int raw_connect(const char *src) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (src) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &b.sin_addr);
        if (bind(fd, (struct sockaddr *)&b, sizeof b)) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int raw_send(int fd, const char *s) {
    size_t n = strlen(s);
    return write(fd, s, n) == (ssize_t)n ? 0 : -1;
}

/* A POST of body to path as one string (caller frees). */
static char *post_text(const char *path, const char *body) {
    size_t n = strlen(path) + strlen(body) + 256;
    char *s = malloc(n);
    snprintf(s, n,
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             path, strlen(body), body);
    return s;
}

static char *get_metrics(void) {
    sp_reply_t r;
    sp_http(&srv, NULL, "/metrics", NULL, 0, NULL, &r);
    return r.body;
}

/* ==== requests abandoned at once ==== */

/* n long requests (half of them streamed) sent and closed at once: they are
 * all cancelled, and a real request is answered well before they could
 * have run. */
static void test_abandoned(int n) {
    char *m0 = get_metrics();
    double c0 = sp_metric(m0, "qcare_requests_cancelled_total");
    free(m0);
    for (int i = 0; i < n; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a long story %d\"}], "
                 "\"max_tokens\": 2000, \"temperature\": 0%s}",
                 i, i % 2 ? ", \"stream\": true" : "");
        char *req = post_text("/v1/chat/completions", body);
        int fd = raw_connect(NULL);
        CHECK(fd >= 0 && raw_send(fd, req) == 0, "abandoned request %d sent", i);
        if (fd >= 0) close(fd);
        free(req);
    }
    /* a polite client: it retries after a 503 as Retry-After says */
    double t0 = qc_now_s();
    sp_request_t q = {.path = "/api/emotion", .body = "{\"text\": \"I am still here\"}", .timeout_s = 120};
    sp_reply_t r;
    long st;
    for (int tries = 0; (st = sp_request(srv.port, &q, &r)) == 503 && r.retry_after[0] && tries < 10; tries++) {
        sp_reply_free(&r);
        sleep((unsigned)atoi(r.retry_after));
    }
    double dt = qc_now_s() - t0;
    printf("%d abandoned requests of 2000 tokens: the next request answered in %.2f s\n", n, dt);
    CHECK(st == 200 && dt < 15, "a real request after %d abandoned ones: %ld after %.1f s", n, st, dt);
    sp_reply_free(&r);
    /* every abandoned request is counted once the scheduler let it go */
    double c1 = 0, active = -1, queued = -1;
    char *m = NULL;
    for (double t = qc_now_s(); qc_now_s() - t < 20;) {
        free(m);
        m = get_metrics();
        c1 = sp_metric(m, "qcare_requests_cancelled_total") - c0;
        active = sp_metric(m, "qcare_active_requests");
        queued = sp_metric(m, "qcare_queue_depth");
        if (c1 >= n && active == 0 && queued == 0) break;
        usleep(100000);
    }
    CHECK(c1 == n && active == 0 && queued == 0, "%d abandoned requests cancelled: %.0f (active %.0f, queued %.0f)\n%s", n,
          c1, active, queued, m);
    free(m);
}

static void stop_server(void) {
    int status = 0;
    CHECK(sp_stop(&srv, 30, &status) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "clean exit after SIGTERM (status %d)", status);
    char *log = test_slurp(srv.log, NULL);
    CHECK(!sp_log_has_sanitizer_report(log), "sanitizer report:\n%s", log ? log : "");
    if (getenv("QC_SERVER_SHOW")) fprintf(stderr, "%s", log ? log : "");
    free(log);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    char log[512];
    snprintf(log, sizeof log, "%s/tests/attack.log", test_env("QC_BUILD", "build"));
    if (sp_start(&srv, NULL, log, (const char *[]){"--parallel", "4", NULL}) == 0) {
        test_abandoned(20);
        stop_server();
    } else {
        CHECK(0, "server did not start (log %s)", log);
    }
    curl_global_cleanup();
    return test_done("test_attack");
}
