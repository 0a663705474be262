/* test_ops.c — running qcare behind a balancer (issue 14), with real
 * `qcare serve` processes (tests/serverproc.h):
 *   - X-Session-Id: alone it names the conversation, equal to the body's
 *     "session" it is accepted, different (or malformed) it is 400; on
 *     /api/analyze, /api/emotion and /v1/chat/completions;
 *   - /metrics: the vllm:* gauges with HELP and TYPE; waiting and running
 *     rise while requests are in flight; the KV usage in (0, 1] with a
 *     conversation and consistent with qcare_sessions_kv_bytes and the
 *     model's config.json; cache_config_info;
 *   - /health, /ready and /metrics open with --api-key; --metrics-key;
 *   - /health 503 while the scheduler is stalled (QCARE_TEST_STALL_MS,
 *     --watchdog 1), 200 again after;
 *   - SIGTERM drains: /ready 503, new requests 503 with Retry-After and a
 *     JSON error, the stream in flight ends with its done, exit 0 and the
 *     log's two lines; a second SIGTERM exits 1 at once; --drain-timeout 1
 *     cuts a long stream with event: error and a plain answer with 503.
 *
 * Long generations are made long by QCARE_TEST_STALL_MS (each scheduler
 * loop, one token, sleeps first), never by timing assertions: every wait
 * polls with a generous deadline. */
#include "serverproc.h"

#include <jansson.h>
#include <pthread.h>

#define DEADLINE_S 120.0 /* every poll gives up after this long (the sanitizer build is slow) */

static char log_dir[256];

/* ==== requests ==== */

/* One request with extra header lines (NULL-terminated; NULL: none). */
static long req(const sp_server_t *s, const char *path, const char *body, const char *const *headers,
                const char *key, sp_reply_t *r) {
    sp_request_t q = {.path = path, .body = body, .headers = headers, .api_key = key, .timeout_s = 300};
    return sp_request(s->port, &q, r);
}

/* The value of one sample of GET /metrics (-1 when absent or no answer). */
static double metric(const sp_server_t *s, const char *name) {
    sp_reply_t r;
    double v = req(s, "/metrics", NULL, NULL, NULL, &r) == 200 ? sp_metric(r.body, name) : -1;
    sp_reply_free(&r);
    return v;
}

/* A request running on its own thread. */
typedef struct {
    int port;
    sp_request_t q;
    sp_reply_t r;
    pthread_t th;
} job_t;

static void *job_main(void *arg) {
    job_t *j = arg;
    sp_request(j->port, &j->q, &j->r);
    return NULL;
}

static void job_start(job_t *j, const sp_server_t *s, const char *path, const char *body, const char *key) {
    memset(j, 0, sizeof *j);
    j->port = s->port;
    j->q = (sp_request_t){.path = path, .body = body, .api_key = key, .timeout_s = 300};
    pthread_create(&j->th, NULL, job_main, j);
}

/* Polls until metric `name` is at least want; its last value. */
static double wait_metric(const sp_server_t *s, const char *name, double want) {
    double v = -1;
    for (double t0 = qc_now_s(); qc_now_s() - t0 < DEADLINE_S; usleep(20000))
        if ((v = metric(s, name)) >= want) break;
    return v;
}

/* Polls until path answers want; the last status. */
static long wait_status(const sp_server_t *s, const char *path, long want) {
    long st = 0;
    for (double t0 = qc_now_s(); qc_now_s() - t0 < DEADLINE_S; usleep(20000)) {
        sp_reply_t r;
        st = req(s, path, NULL, NULL, NULL, &r);
        sp_reply_free(&r);
        if (st == want) break;
    }
    return st;
}

/* Waits up to timeout_s for the server process to exit (without a signal
 * of ours); 0 with its wait status, -1 when it did not (then killed). */
static int wait_exit(sp_server_t *s, double timeout_s, int *status) {
    for (double t0 = qc_now_s(); qc_now_s() - t0 < timeout_s; usleep(20000))
        if (waitpid(s->pid, status, WNOHANG) == s->pid) {
            s->pid = 0;
            return 0;
        }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, status, 0);
    s->pid = 0;
    return -1;
}

/* Starts a server whose scheduler sleeps stall_ms per loop (0: none). */
static int start(sp_server_t *s, const char *name, int stall_ms, const char *const *args) {
    char log[512], v[32];
    snprintf(log, sizeof log, "%s/ops-%s.log", log_dir, name);
    snprintf(v, sizeof v, "%d", stall_ms);
    if (stall_ms) setenv("QCARE_TEST_STALL_MS", v, 1);
    int rc = sp_start(s, NULL, log, args);
    unsetenv("QCARE_TEST_STALL_MS");
    CHECK(rc == 0, "server %s did not start (log %s)", name, log);
    return rc == 0;
}

/* No sanitizer report in the server's log (the ASan build). */
static void check_log(const sp_server_t *s) {
    char *t = test_slurp(s->log, NULL);
    CHECK(!sp_log_has_sanitizer_report(t), "a sanitizer report in %s", s->log);
    free(t);
}

/* Stops a server with SIGTERM (it drains, with nothing in flight). */
static void stop(sp_server_t *s) {
    int status = -1;
    CHECK(sp_stop(s, 60, &status) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit 0 on SIGTERM (%#x)",
          status);
    check_log(s);
}

/* ==== X-Session-Id ==== */

static const char *json_str(json_t *j, const char *key) { return json_string_value(json_object_get(j, key)); }

static void test_session_header(const sp_server_t *s) {
    const char *h1[] = {"X-Session-Id: conv-h1", NULL};
    sp_reply_t r;
    double n0 = metric(s, "qcare_sessions");
    long st = req(s, "/api/analyze", "{\"text\": \"我头疼\", \"max_tokens\": 3}", h1, NULL, &r);
    json_t *j = json_loads(r.body, 0, NULL);
    CHECK(st == 200 && json_str(j, "session") && !strcmp(json_str(j, "session"), "conv-h1"),
          "the header alone names the conversation: %ld %s", st, r.body);
    json_decref(j);
    sp_reply_free(&r);
    CHECK(metric(s, "qcare_sessions") == n0 + 1, "the header's conversation is kept (qcare_sessions %g -> %g)", n0,
          metric(s, "qcare_sessions"));
    st = req(s, "/api/analyze", "{\"text\": \"还是疼\", \"session\": \"conv-h1\", \"max_tokens\": 3}", h1, NULL, &r);
    j = json_loads(r.body, 0, NULL);
    CHECK(st == 200 && json_str(j, "session") && !strcmp(json_str(j, "session"), "conv-h1"),
          "header and body equal: %ld %s", st, r.body);
    json_decref(j);
    sp_reply_free(&r);
    CHECK(metric(s, "qcare_sessions") == n0 + 1, "the same conversation, its second turn");
    st = req(s, "/api/analyze", "{\"text\": \"hi\", \"session\": \"other\", \"max_tokens\": 3}", h1, NULL, &r);
    j = json_loads(r.body, 0, NULL);
    CHECK(st == 400 && json_str(j, "error") && strstr(json_str(j, "error"), "X-Session-Id"),
          "header and body differ: %ld %s", st, r.body);
    json_decref(j);
    sp_reply_free(&r);
    st = req(s, "/api/analyze", "{\"text\": \"hi\", \"session\": \"other\", \"max_tokens\": 3, \"stream\": true}", h1,
             NULL, &r);
    CHECK(st == 400 && strstr(r.body, "\"error\""), "differ, streamed: %ld %s", st, r.body);
    sp_reply_free(&r);
    /* checked like a body session: 1 to 128 bytes of UTF-8 */
    char longh[200];
    snprintf(longh, sizeof longh, "X-Session-Id: %0129d", 7);
    const char *empty[] = {"X-Session-Id;", NULL}, *toolong[] = {longh, NULL},
               *notutf8[] = {"X-Session-Id: ab\xff\xfe", NULL};
    const char *const *bad[] = {empty, toolong, notutf8};
    for (int i = 0; i < 3; i++) {
        st = req(s, "/api/analyze", "{\"text\": \"hi\", \"max_tokens\": 3}", bad[i], NULL, &r);
        CHECK(st == 400 && strstr(r.body, "X-Session-Id"), "a malformed header (%d): %ld %s", i, st, r.body);
        sp_reply_free(&r);
    }
    char exact[200];
    snprintf(exact, sizeof exact, "X-Session-Id: %0128d", 7);
    const char *h128[] = {exact, NULL};
    st = req(s, "/api/analyze", "{\"text\": \"hi\", \"max_tokens\": 2}", h128, NULL, &r);
    CHECK(st == 200, "a 128-byte header: %ld %s", st, r.body);
    sp_reply_free(&r);
    /* the other session-aware endpoints */
    st = req(s, "/api/emotion", "{\"text\": \"I feel fine\"}", h1, NULL, &r);
    CHECK(st == 200 && strstr(r.body, "\"label\""), "/api/emotion with the header: %ld %s", st, r.body);
    sp_reply_free(&r);
    st = req(s, "/api/emotion", "{\"text\": \"I feel fine\", \"session\": \"x\"}", h1, NULL, &r);
    CHECK(st == 400 && strstr(r.body, "X-Session-Id"), "/api/emotion, header and body differ: %ld %s", st, r.body);
    sp_reply_free(&r);
    const char *chat = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2}";
    st = req(s, "/v1/chat/completions", chat, h1, NULL, &r);
    CHECK(st == 200 && strstr(r.body, "chat.completion"), "/v1/chat/completions with the header: %ld %s", st, r.body);
    sp_reply_free(&r);
    st = req(s, "/v1/chat/completions", chat, empty, NULL, &r);
    CHECK(st == 400 && strstr(r.body, "X-Session-Id"), "/v1/chat/completions, a malformed header: %ld %s", st, r.body);
    sp_reply_free(&r);
}

/* ==== /metrics ==== */

/* KV bytes per token from the model's config.json: K and V of every
 * layer's kv heads, 16-bit (the engine's KV cache type). 0 when unknown. */
static double kv_bytes_per_token(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tiny-qwen2/config.json", test_env("QC_MODELS", "build/models"));
    json_t *c = json_load_file(path, 0, NULL);
    double L = (double)json_integer_value(json_object_get(c, "num_hidden_layers"));
    double kvh = (double)json_integer_value(json_object_get(c, "num_key_value_heads"));
    double heads = (double)json_integer_value(json_object_get(c, "num_attention_heads"));
    double hd = json_object_get(c, "head_dim") ? (double)json_integer_value(json_object_get(c, "head_dim"))
                : heads > 0 ? (double)json_integer_value(json_object_get(c, "hidden_size")) / heads
                            : 0;
    json_decref(c);
    return L * kvh * hd * 2 * 2;
}

static void test_metrics_text(const sp_server_t *s) {
    sp_reply_t r;
    long st = req(s, "/metrics", NULL, NULL, NULL, &r);
    CHECK(st == 200, "/metrics: %ld", st);
    const char *names[] = {"vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc",
                           "vllm:cache_config_info"};
    for (int i = 0; i < 4; i++) {
        char help[128], type[128];
        snprintf(help, sizeof help, "# HELP %s ", names[i]);
        snprintf(type, sizeof type, "# TYPE %s gauge\n", names[i]);
        CHECK(strstr(r.body, help) && strstr(r.body, type), "%s has its HELP and TYPE lines", names[i]);
    }
    CHECK(sp_metric(r.body, "vllm:num_requests_waiting") == 0 && sp_metric(r.body, "vllm:num_requests_running") == 0,
          "idle: nothing waits or runs");
    /* the budget: block_size 16, blocks covering at least one context per slot (--parallel 2, --ctx 2048) */
    const char *info = strstr(r.body, "\nvllm:cache_config_info{");
    int bs = 0;
    unsigned long long blocks = 0;
    char tail[16] = "";
    CHECK(info && sscanf(info, "\nvllm:cache_config_info{block_size=\"%d\",num_gpu_blocks=\"%llu\"} %15s", &bs, &blocks,
                         tail) == 3,
          "cache_config_info's labels: %.80s", info ? info : "(none)");
    CHECK(bs == 16 && blocks * 16 >= 2 * 2048 && !strcmp(tail, "1"), "block_size %d, num_gpu_blocks %llu, value %s",
          bs, blocks, tail);
    sp_reply_free(&r);
    /* a conversation holds KV state: the usage is its bytes over the budget,
     * once the turn has settled (a snapshot taken while the finished turn's
     * state moves from its slot to the session may see the two apart: one
     * CI run read 105,728 session bytes beside a usage of 108,032) */
    double kv = -1, bytes = -1, want = -1, bpt = kv_bytes_per_token();
    for (double t0 = qc_now_s(); qc_now_s() - t0 < DEADLINE_S; usleep(20000)) {
        st = req(s, "/metrics", NULL, NULL, NULL, &r);
        kv = sp_metric(r.body, "vllm:kv_cache_usage_perc");
        bytes = sp_metric(r.body, "qcare_sessions_kv_bytes");
        double run = sp_metric(r.body, "vllm:num_requests_running");
        sp_reply_free(&r);
        want = bpt > 0 && blocks ? bytes / (bpt * 16 * (double)blocks) : -1;
        if (run == 0 && bytes > 0 && want > 0 && fabs(kv - want) <= 1e-3 * want) break;
    }
    CHECK(kv > 0 && kv <= 1, "vllm:kv_cache_usage_perc with a conversation: %g", kv);
    CHECK(want > 0 && fabs(kv - want) <= 1e-3 * want,
          "the usage is the conversations' KV bytes over the budget: %g, want %g (%g bytes, %g per token)", kv, want,
          bytes, bpt);
}

/* Three long streams on --parallel 2: two run, one waits. */
static void test_metrics_in_flight(const sp_server_t *s) {
    job_t j[3];
    const char *body = "{\"text\": \"tell me about sleep\", \"max_tokens\": 150, \"stream\": true}";
    for (int i = 0; i < 3; i++) job_start(&j[i], s, "/api/analyze", body, NULL);
    double run = wait_metric(s, "vllm:num_requests_running", 2), wait = wait_metric(s, "vllm:num_requests_waiting", 1);
    CHECK(run == 2, "vllm:num_requests_running reached 2: %g", run);
    CHECK(wait == 1, "vllm:num_requests_waiting reached 1: %g", wait);
    double kv = wait_metric(s, "vllm:kv_cache_usage_perc", 1e-12); /* once a reply fills its slot's context */
    CHECK(kv > 0 && kv <= 1, "vllm:kv_cache_usage_perc while generating: %g", kv);
    for (int i = 0; i < 3; i++) {
        pthread_join(j[i].th, NULL);
        CHECK(j[i].r.status == 200 && strstr(j[i].r.body, "event: done"), "stream %d: %ld", i, j[i].r.status);
        sp_reply_free(&j[i].r);
    }
    run = metric(s, "vllm:num_requests_running");
    wait = metric(s, "vllm:num_requests_waiting");
    CHECK(run == 0 && wait == 0, "after them: running %g, waiting %g", run, wait);
}

/* ==== keys ==== */

static void test_keys(void) {
    sp_server_t s;
    const char *args[] = {"--api-key", "api-k", "--metrics-key", "met-k", NULL};
    if (!start(&s, "keys", 0, args)) return;
    sp_reply_t r;
    CHECK(req(&s, "/health", NULL, NULL, NULL, &r) == 200, "/health without a key");
    sp_reply_free(&r);
    CHECK(req(&s, "/ready", NULL, NULL, NULL, &r) == 200, "/ready without a key: %s", r.body);
    sp_reply_free(&r);
    CHECK(req(&s, "/metrics", NULL, NULL, NULL, &r) == 401, "/metrics without the metrics key");
    sp_reply_free(&r);
    CHECK(req(&s, "/metrics", NULL, NULL, "wrong", &r) == 401, "/metrics with a wrong key");
    sp_reply_free(&r);
    CHECK(req(&s, "/metrics", NULL, NULL, "met-k", &r) == 200 && strstr(r.body, "vllm:num_requests_running"),
          "/metrics with the metrics key");
    sp_reply_free(&r);
    CHECK(req(&s, "/metrics", NULL, NULL, "api-k", &r) == 200, "/metrics with the API key");
    sp_reply_free(&r);
    CHECK(req(&s, "/api/emotion", "{\"text\": \"hi\"}", NULL, "met-k", &r) == 401,
          "the metrics key does not open the API");
    sp_reply_free(&r);
    stop(&s);
    /* without --metrics-key, /metrics is open beside an API key */
    const char *args2[] = {"--api-key", "api-k", NULL};
    if (!start(&s, "keys2", 0, args2)) return;
    CHECK(req(&s, "/metrics", NULL, NULL, NULL, &r) == 200, "/metrics open with only --api-key: %ld", r.status);
    sp_reply_free(&r);
    CHECK(req(&s, "/api/emotion", "{\"text\": \"hi\"}", NULL, NULL, &r) == 401, "the API still needs its key");
    sp_reply_free(&r);
    stop(&s);
}

/* ==== the watchdog ==== */

static void test_watchdog(void) {
    sp_server_t s;
    const char *args[] = {"--watchdog", "1", NULL};
    if (!start(&s, "watchdog", 2500, args)) return;
    sp_reply_t r;
    CHECK(req(&s, "/health", NULL, NULL, NULL, &r) == 200, "idle, a stalling scheduler is not stalled: %s", r.body);
    sp_reply_free(&r);
    job_t j;
    job_start(&j, &s, "/api/emotion", "{\"text\": \"I am worried\"}", NULL);
    long st = wait_status(&s, "/health", 503);
    CHECK(st == 503, "/health while a loop takes 2.5 s (--watchdog 1): %ld", st);
    pthread_join(j.th, NULL);
    CHECK(j.r.status == 200, "the request still completes: %ld %s", j.r.status, j.r.body);
    sp_reply_free(&j.r);
    st = wait_status(&s, "/health", 200);
    CHECK(st == 200, "/health once the work is done: %ld", st);
    stop(&s);
}

/* ==== draining ==== */

static int log_has(const sp_server_t *s, const char *what) {
    char *t = test_slurp(s->log, NULL);
    int has = t && strstr(t, what);
    free(t);
    return has;
}

/* SIGTERM with a stream in flight: it finishes; the rest is refused. */
static void test_drain(void) {
    sp_server_t s;
    const char *args[] = {"--api-key", "k", "--drain-timeout", "100", NULL};
    if (!start(&s, "drain", 20, args)) return;
    sp_reply_t r;
    CHECK(req(&s, "/ready", NULL, NULL, NULL, &r) == 200 && strstr(r.body, "\"ready\""), "/ready before: %s", r.body);
    sp_reply_free(&r);
    job_t care, chat;
    job_start(&care, &s, "/api/analyze", "{\"text\": \"I cannot sleep\", \"max_tokens\": 250, \"stream\": true}", "k");
    job_start(&chat, &s, "/v1/chat/completions",
              "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 250, \"stream\": true}", "k");
    CHECK(wait_metric(&s, "vllm:num_requests_running", 2) == 2, "both streams run");
    kill(s.pid, SIGTERM);
    long st = wait_status(&s, "/ready", 503);
    CHECK(st == 503, "/ready while draining: %ld", st);
    st = req(&s, "/ready", NULL, NULL, NULL, &r);
    CHECK(st == 503 && strstr(r.body, "draining"), "/ready says why: %s", r.body);
    sp_reply_free(&r);
    st = req(&s, "/api/emotion", "{\"text\": \"hello\"}", NULL, "k", &r);
    json_t *j = json_loads(r.body, 0, NULL);
    CHECK(st == 503 && r.retry_after[0] && json_str(j, "error"), "a new request while draining: %ld, Retry-After '%s', %s",
          st, r.retry_after, r.body);
    CHECK(strcasestr(r.headers, "\nConnection: close"), "an answer while draining closes its connection: %s", r.headers);
    json_decref(j);
    sp_reply_free(&r);
    st = req(&s, "/api/analyze", "{\"text\": \"I have crushing chest pain\"}", NULL, "k", &r);
    CHECK(st == 503 && strstr(r.body, "\"notice\"") && strstr(r.body, "draining"),
          "an urgent message while draining: 503 with its notice: %ld %s", st, r.body);
    sp_reply_free(&r);
    CHECK(req(&s, "/health", NULL, NULL, NULL, &r) == 200, "/health stays 200 while draining: %s", r.body);
    sp_reply_free(&r);
    CHECK(metric(&s, "qcare_draining") == 1, "qcare_draining 1");
    pthread_join(care.th, NULL);
    pthread_join(chat.th, NULL);
    CHECK(care.r.status == 200 && strstr(care.r.body, "event: done") && !strstr(care.r.body, "event: error"),
          "the care stream in flight finishes with its done: %ld ...%s", care.r.status,
          care.r.len > 300 ? care.r.body + care.r.len - 300 : care.r.body);
    CHECK(chat.r.status == 200 && strstr(chat.r.body, "data: [DONE]") && strstr(chat.r.body, "\"finish_reason\":\"") &&
              !strstr(chat.r.body, "\"error\""),
          "the chat stream in flight finishes: %ld ...%s", chat.r.status,
          chat.r.len > 300 ? chat.r.body + chat.r.len - 300 : chat.r.body);
    sp_reply_free(&care.r);
    sp_reply_free(&chat.r);
    int status = -1;
    CHECK(wait_exit(&s, DEADLINE_S, &status) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the process exits 0 after the drain (status %#x)", status);
    CHECK(log_has(&s, "SIGTERM: draining") && log_has(&s, "drained in") && log_has(&s, "every request in flight finished"),
          "the log says when the drain began and ended (%s)", s.log);
    check_log(&s);
}

/* A second SIGTERM while draining stops at once, exit status 1. */
static void test_second_signal(void) {
    sp_server_t s;
    const char *args[] = {"--drain-timeout", "600", NULL};
    if (!start(&s, "second", 20, args)) return;
    job_t long_one;
    job_start(&long_one, &s, "/api/analyze", "{\"text\": \"hello\", \"max_tokens\": 2000, \"stream\": true}", NULL);
    CHECK(wait_metric(&s, "vllm:num_requests_running", 1) == 1, "the stream runs");
    kill(s.pid, SIGTERM);
    CHECK(wait_status(&s, "/ready", 503) == 503, "draining");
    kill(s.pid, SIGTERM);
    int status = -1;
    /* the stream has at least 2000 x 20 ms left; the drain would wait 600 s */
    CHECK(wait_exit(&s, 30, &status) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
          "a second SIGTERM exits 1 at once (status %#x)", status);
    pthread_join(long_one.th, NULL);
    CHECK(!strstr(long_one.r.body, "event: done"), "the stream did not finish");
    sp_reply_free(&long_one.r);
    CHECK(log_has(&s, "while draining: stopping at once"), "the log says so");
    check_log(&s);
}

/* --drain-timeout 1: what still runs then is cut, streamed or not; exit 0. */
static void test_drain_timeout(void) {
    sp_server_t s;
    const char *args[] = {"--drain-timeout", "1", "--parallel", "3", NULL};
    if (!start(&s, "cut", 20, args)) return;
    job_t st_job, plain, chat;
    job_start(&st_job, &s, "/api/analyze", "{\"text\": \"hello\", \"max_tokens\": 2000, \"stream\": true}", NULL);
    job_start(&plain, &s, "/api/analyze", "{\"text\": \"hello again\", \"max_tokens\": 2000}", NULL);
    job_start(&chat, &s, "/v1/chat/completions",
              "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2000, \"stream\": true}", NULL);
    CHECK(wait_metric(&s, "vllm:num_requests_running", 3) == 3, "all three run");
    kill(s.pid, SIGINT); /* SIGINT drains like SIGTERM */
    pthread_join(st_job.th, NULL);
    pthread_join(plain.th, NULL);
    pthread_join(chat.th, NULL);
    CHECK(chat.r.status == 200 && strstr(chat.r.body, "{\"error\":") && chat.r.len >= 14 &&
              !strcmp(chat.r.body + chat.r.len - 14, "data: [DONE]\n\n") && !strstr(chat.r.body, "\"finish_reason\":\""),
          "the chat stream past it ends with its error chunk and [DONE]: %ld ...%s", chat.r.status,
          chat.r.len > 200 ? chat.r.body + chat.r.len - 200 : chat.r.body);
    sp_reply_free(&chat.r);
    CHECK(st_job.r.status == 200 && strstr(st_job.r.body, "event: error") && !strstr(st_job.r.body, "event: done"),
          "the stream past --drain-timeout ends with event: error: %ld ...%s", st_job.r.status,
          st_job.r.len > 200 ? st_job.r.body + st_job.r.len - 200 : st_job.r.body);
    json_t *j = json_loads(plain.r.body, 0, NULL);
    CHECK(plain.r.status == 503 && json_str(j, "error"), "the plain answer past it is 503: %ld %s", plain.r.status,
          plain.r.body);
    json_decref(j);
    sp_reply_free(&st_job.r);
    sp_reply_free(&plain.r);
    int status = -1;
    CHECK(wait_exit(&s, DEADLINE_S, &status) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the process exits 0 (status %#x)", status);
    CHECK(log_has(&s, "SIGINT: draining") && log_has(&s, "3 requests still running at --drain-timeout were cut"),
          "the log counts the cut requests (%s)", s.log);
    check_log(&s);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    snprintf(log_dir, sizeof log_dir, "%s/tests", test_env("QC_BUILD", "build"));
    double t0 = qc_now_s();
    sp_server_t s;
    const char *args[] = {"--parallel", "2", "--queue", "4", NULL};
    if (start(&s, "main", 0, args)) {
        test_session_header(&s);
        test_metrics_text(&s);
        stop(&s);
    }
    if (start(&s, "flight", 20, args)) {
        test_metrics_in_flight(&s);
        stop(&s);
    }
    test_keys();
    test_watchdog();
    test_drain();
    test_second_signal();
    test_drain_timeout();
    printf("test_ops: %.1f s\n", qc_now_s() - t0);
    curl_global_cleanup();
    return test_done("test_ops");
}
