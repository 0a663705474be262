/* test_sched.c — the server's continuous batching, end to end with the real
 * `qcare serve` (tests/serverproc.h):
 *   - a seeded completion gives the same text alone and while three other
 *     requests share its passes (batching never changes an answer), and the
 *     passes did carry several requests at once (/metrics);
 *   - GET /metrics in Prometheus text format with the counts of what was sent;
 *   - a full queue answers 503 with Retry-After, the rest complete;
 *   - a client that hangs up mid-stream frees its slot at once, and a
 *     conversation turn it abandoned leaves no trace;
 *   - a slow client (a request that never finishes arriving) is cut off
 *     after --timeout;
 *   - a conversation that outgrows the context drops its oldest turns and
 *     says so ("dropped_turns"), streamed or not; --max-sessions. */
#include "serverproc.h"

#include <jansson.h>
#include <pthread.h>

static sp_server_t srv;

typedef struct {
    const char *path, *body, *abort_at;
    sp_reply_t r;
} job_t;

static void *run_job(void *arg) {
    job_t *j = arg;
    sp_request_t q = {.path = j->path, .body = j->body, .abort_at = j->abort_at, .timeout_s = 300};
    sp_request(srv.port, &q, &j->r);
    return NULL;
}

/* Runs n requests at once; waits for all. */
static void run_parallel(job_t *jobs, int n) {
    pthread_t th[16];
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, run_job, &jobs[i]);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}

static char *get_metrics(void) {
    sp_reply_t r;
    long st = sp_http(&srv, NULL, "/metrics", NULL, 0, NULL, &r);
    CHECK(st == 200, "/metrics: %ld", st);
    return r.body;
}

/* The content of a chat completion's answer (caller frees), NULL if none. */
static char *completion_text(const sp_reply_t *r) {
    json_t *j = json_loads(r->body, 0, NULL);
    const char *s = json_string_value(
        json_object_get(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"), "content"));
    char *out = s ? strdup(s) : NULL;
    json_decref(j);
    return out;
}

#define SEEDED                                                                                                  \
    "{\"messages\": [{\"role\": \"user\", \"content\": \"How should I take ibuprofen?\"}], \"max_tokens\": 40, " \
    "\"temperature\": 0.9, \"seed\": 1234}"

static void test_batching(void) {
    sp_reply_t alone;
    long st = sp_http(&srv, NULL, "/v1/chat/completions", SEEDED, 0, NULL, &alone);
    char *a = completion_text(&alone);
    CHECK(st == 200 && a && *a, "seeded completion alone: %ld %s", st, alone.body);
    sp_reply_free(&alone);

    char *m0 = get_metrics();
    job_t jobs[4] = {
        {"/v1/chat/completions", SEEDED, NULL, {0}},
        {"/v1/chat/completions",
         "{\"messages\": [{\"role\": \"user\", \"content\": \"Something else entirely, a longer question about "
         "sleep and headaches and what to do about them at night\"}], \"max_tokens\": 60, \"seed\": 5}",
         NULL, {0}},
        {"/api/analyze", "{\"text\": \"我头疼了三天，有点担心\", \"max_tokens\": 60, \"session\": \"sched-1\"}", NULL, {0}},
        {"/api/analyze", "{\"text\": \"Thank you, I feel much better now\", \"max_tokens\": 60, \"stream\": true}",
         NULL, {0}},
    };
    run_parallel(jobs, 4);
    char *m1 = get_metrics();
    for (int i = 0; i < 4; i++) CHECK(jobs[i].r.status == 200, "parallel request %d: %ld %s", i, jobs[i].r.status, jobs[i].r.body);
    char *b = completion_text(&jobs[0].r);
    CHECK(a && b && !strcmp(a, b), "the seeded completion is the same alone and batched:\n  alone:   %s\n  batched: %s",
          a ? a : "(none)", b ? b : "(none)");
    CHECK(strstr(jobs[3].r.body, "event: done"), "the streamed analyze ends with done");
    double passes = sp_metric(m1, "qcare_batch_passes_total") - sp_metric(m0, "qcare_batch_passes_total");
    double dec = sp_metric(m1, "qcare_decode_tokens_total") - sp_metric(m0, "qcare_decode_tokens_total");
    printf("4 parallel requests: %.0f decode tokens in %.0f passes (%.2f per pass)\n", dec, passes,
           passes > 0 ? dec / passes : 0);
    CHECK(passes > 0 && dec / passes > 1.5, "passes carried several requests' tokens (%.0f tokens, %.0f passes)", dec,
          passes);
    for (int i = 0; i < 4; i++) sp_reply_free(&jobs[i].r);
    free(a);
    free(b);
    free(m0);
    free(m1);
}

/* The "reply" of a non-streamed /api/analyze (caller frees). */
static char *analyze_reply(const char *body) {
    sp_reply_t r;
    sp_http(&srv, NULL, "/api/analyze", body, 0, NULL, &r);
    json_t *j = json_loads(r.body, 0, NULL);
    const char *t = json_string_value(json_object_get(j, "reply"));
    char *out = t ? strdup(t) : NULL;
    json_decref(j);
    sp_reply_free(&r);
    return out;
}

/* A conversation turn whose client hangs up mid-stream leaves no trace:
 * the next turn answers as in a conversation where it never happened. */
static void test_abandoned_turn(void) {
    char *a1 = analyze_reply("{\"text\": \"我咳嗽一周了\", \"session\": \"keep\", \"max_tokens\": 8}");
    char *b1 = analyze_reply("{\"text\": \"我咳嗽一周了\", \"session\": \"cut\", \"max_tokens\": 8}");
    sp_request_t q = {.path = "/api/analyze",
                      .body = "{\"text\": \"还有点发烧\", \"session\": \"cut\", \"max_tokens\": 1500, \"stream\": true}",
                      .abort_at = "event: chunk"};
    sp_reply_t r;
    sp_request(srv.port, &q, &r);
    CHECK(r.abandoned, "the turn was abandoned mid-stream");
    sp_reply_free(&r);
    usleep(200000); /* the scheduler drops it at its next pass */
    char *a2 = analyze_reply("{\"text\": \"还有点发烧\", \"session\": \"keep\", \"max_tokens\": 8}");
    char *b2 = analyze_reply("{\"text\": \"还有点发烧\", \"session\": \"cut\", \"max_tokens\": 8}");
    CHECK(a1 && b1 && !strcmp(a1, b1), "the same first turn gives the same reply");
    CHECK(a2 && b2 && !strcmp(a2, b2), "after an abandoned turn the conversation answers as if it never happened:\n"
          "  %s\n  %s", a2 ? a2 : "(none)", b2 ? b2 : "(none)");
    free(a1);
    free(b1);
    free(a2);
    free(b2);
}

static void test_metrics(void) {
    sp_reply_t r;
    for (int i = 0; i < 3; i++) {
        sp_http(&srv, NULL, "/api/emotion", "{\"text\": \"I am worried about my test results\"}", 0, NULL, &r);
        sp_reply_free(&r);
    }
    sp_http(&srv, NULL, "/api/emotion", "{\"text\": 1}", 0, NULL, &r);
    sp_reply_free(&r);
    /* a request is counted when its connection thread has finished with
     * it, which may be just after the client has the answer */
    char *m = get_metrics();
    for (double t0 = qc_now_s(); sp_metric(m, "qcare_request_duration_seconds_count{path=\"/api/emotion\"}") < 4 &&
                              qc_now_s() - t0 < 5;) {
        usleep(20000);
        free(m);
        m = get_metrics();
    }
    CHECK(sp_metric(m, "qcare_requests_total{path=\"/api/emotion\",code=\"200\"}") == 3, "3 emotion requests counted:\n%s", m);
    CHECK(sp_metric(m, "qcare_requests_total{path=\"/api/emotion\",code=\"400\"}") == 1, "1 bad request counted");
    CHECK(sp_metric(m, "qcare_request_duration_seconds_count{path=\"/api/emotion\"}") == 4, "latency histogram count");
    CHECK(sp_metric(m, "qcare_request_duration_seconds_bucket{path=\"/api/emotion\",le=\"+Inf\"}") == 4,
          "latency histogram +Inf bucket");
    CHECK(sp_metric(m, "qcare_queue_depth") == 0 && sp_metric(m, "qcare_active_requests") == 0, "idle gauges");
    CHECK(sp_metric(m, "qcare_sessions") >= 1, "the session of test_batching is counted");
    CHECK(sp_metric(m, "qcare_parallel_slots") == 4 && sp_metric(m, "qcare_queue_capacity") == 16 &&
              sp_metric(m, "qcare_model_busy_seconds_total") > 0 && sp_metric(m, "qcare_uptime_seconds") > 0 &&
              sp_metric(m, "qcare_sessions_kv_bytes") > 0 && sp_metric(m, "qcare_batch_tokens_total") > 0,
          "every gauge and counter is there:\n%s", m);
    /* Each HELP line is followed by its TYPE line and at least one sample. */
    int helps = 0, complete = 0;
    for (char *p = strstr(m, "# HELP "); p; p = strstr(p + 1, "# HELP ")) {
        char name[96];
        if (sscanf(p + 7, "%95s", name) != 1) continue;
        helps++;
        char type[128];
        snprintf(type, sizeof type, "# TYPE %s ", name);
        char *t = strstr(p, type), *nl = strchr(p, '\n');
        complete += t && nl && t == nl + 1 && strstr(t, "\nqcare_") != NULL;
    }
    CHECK(helps >= 15 && helps == complete, "%d of %d metrics complete", complete, helps);
    CHECK(sp_metric(m, "qcare_generated_tokens_total") > 0 && sp_metric(m, "qcare_prompt_tokens_total") > 0, "token counters");
    CHECK(sp_metric(m, "qcare_time_to_first_token_seconds_count") > 0, "time to first token observed");
    CHECK(strstr(m, "# TYPE qcare_requests_total counter") && strstr(m, "# TYPE qcare_queue_depth gauge") &&
              strstr(m, "# TYPE qcare_request_duration_seconds histogram"),
          "TYPE lines");
    /* Every line: a comment, or NAME{labels} VALUE with a number; the names
     * qcare's own or the vLLM ones the inference gateway reads (test_ops). */
    int bad = 0;
    for (char *p = m; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (*p == '#' || *p == '\n') continue;
        char *sp = strchr(p, ' '), *end;
        if (!sp || (strncmp(p, "qcare_", 6) && strncmp(p, "vllm:", 5))) bad++;
        else {
            strtod(sp + 1, &end);
            if (end == sp + 1 || (*end && *end != '\n')) bad++;
        }
    }
    CHECK(bad == 0, "%d malformed metrics lines", bad);
    free(m);
}

static void test_overload(void) {
    /* --parallel 1 --queue 1: one generates, one waits, the rest get 503;
     * a 503 to an urgent message carries its notice (issue 16). */
    job_t jobs[6];
    for (int i = 0; i < 6; i++)
        jobs[i] = (job_t){"/v1/chat/completions",
                          i % 2 ? "{\"messages\": [{\"role\": \"user\", \"content\": \"I have crushing chest pain, tell me "
                                  "everything\"}], \"max_tokens\": 600, \"stream\": true}"
                                : "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me everything about fevers\"}], "
                                  "\"max_tokens\": 600, \"stream\": true}",
                          NULL, {0}};
    run_parallel(jobs, 6);
    int ok = 0, busy = 0, other = 0, noticed = 0;
    for (int i = 0; i < 6; i++) {
        sp_reply_t *r = &jobs[i].r;
        if (r->status == 200 && strstr(r->body, "data: [DONE]")) ok++;
        else if (r->status == 503 && r->retry_after[0] && strstr(r->body, "\"error\"")) {
            busy++;
            int has = strstr(r->body, "\"urgent\":true") && strstr(r->body, "\"notice\":");
            CHECK(has == i % 2, "a 503 %s the notice of its %s message: %s", has ? "carries" : "lacks",
                  i % 2 ? "urgent" : "ordinary", r->body);
            noticed += has;
        } else {
            other++;
            fprintf(stderr, "overload: %ld %s\n", r->status, r->body);
        }
        sp_reply_free(r);
    }
    printf("6 requests on 1 slot + 1 queue place: %d answered, %d busy (503), %d of them with the notice\n", ok, busy,
           noticed);
    CHECK(ok >= 1 && busy >= 1 && other == 0, "full queue: %d ok, %d 503 with Retry-After, %d other", ok, busy, other);

    /* A client that hangs up at its first chunk frees the slot at once. */
    char *m0 = get_metrics();
    job_t gone = {"/api/analyze", "{\"text\": \"my knee hurts\", \"max_tokens\": 1500, \"stream\": true}",
                  "event: chunk", {0}};
    run_job(&gone);
    CHECK(gone.r.abandoned, "the client hung up mid-stream (%ld)", gone.r.status);
    sp_reply_free(&gone.r);
    double t0 = qc_now_s(), active = 1;
    char *m1 = NULL;
    while (qc_now_s() - t0 < 10) {
        free(m1);
        m1 = get_metrics();
        if ((active = sp_metric(m1, "qcare_active_requests")) == 0) break;
        usleep(20000);
    }
    double made = sp_metric(m1, "qcare_generated_tokens_total") - sp_metric(m0, "qcare_generated_tokens_total");
    printf("abandoned stream: slot free after %.3f s, %.0f of 1500 tokens generated\n", qc_now_s() - t0, made);
    CHECK(active == 0 && made < 1500, "the slot was freed (active %.0f, %.0f tokens made)", active, made);
    CHECK(sp_metric(m1, "qcare_streams_cancelled_total") >= 1, "counted as cancelled");
    sp_reply_t r;
    long st = sp_http(&srv, NULL, "/api/emotion", "{\"text\": \"still there?\"}", 0, NULL, &r);
    CHECK(st == 200, "the next request is served: %ld", st);
    sp_reply_free(&r);
    free(m0);
    free(m1);
}

/* A request whose body never finishes arriving is cut off after --timeout. */
static void test_slow_client(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect");
    const char *part = "POST /api/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 100\r\n\r\n{\"text\": ";
    CHECK(write(fd, part, strlen(part)) == (ssize_t)strlen(part), "write");
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    double t0 = qc_now_s();
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    double dt = qc_now_s() - t0;
    printf("slow client: connection closed after %.2f s (--timeout 2)\n", dt);
    CHECK(n <= 0 && dt >= 1.5 && dt < 9, "the server closed the stalled connection (read %zd after %.2f s)", n, dt);
    close(fd);
    sp_reply_t r;
    CHECK(sp_http(&srv, NULL, "/health", NULL, 0, NULL, &r) == 200, "still serving");
    sp_reply_free(&r);
}

/* --queue 0: no waiting, but a free slot still serves at once. */
static void test_no_queue(void) {
    for (int i = 0; i < 3; i++) {
        sp_reply_t r;
        long st = sp_http(&srv, NULL, i % 2 ? "/api/emotion" : "/v1/chat/completions",
                          i % 2 ? "{\"text\": \"hello\"}"
                                : "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 4}",
                          0, NULL, &r);
        CHECK(st == 200, "--queue 0, request %d on an idle server: %ld %s", i, st, r.body);
        sp_reply_free(&r);
    }
}

/* A conversation longer than the context goes on, forgetting its oldest
 * turns (400 on every later turn before); --max-sessions 3 keeps 3. */
static void test_long_conversation(void) {
    char text[1024] = "", body[1400];
    for (int i = 0; i < 24; i++) strcat(text, "我头疼了两天，吃了药也没用。");
    int ok = 0, dropped = 0, streamed_drop = 0, t;
    for (t = 0; t < 14 && !(dropped && streamed_drop); t++) {
        int stream = dropped > 0;
        snprintf(body, sizeof body, "{\"text\": \"%s\", \"session\": \"long\", \"max_tokens\": 8%s}", text,
                 stream ? ", \"stream\": true" : "");
        sp_reply_t r;
        long st = sp_http(&srv, NULL, "/api/analyze", body, 0, NULL, &r);
        ok += st == 200;
        if (!stream) {
            json_t *j = json_loads(r.body, 0, NULL);
            dropped += (int)json_integer_value(json_object_get(j, "dropped_turns"));
            json_decref(j);
        } else {
            char *d = strstr(r.body, "event: done\ndata: ");
            json_t *j = d ? json_loads(d + 18, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
            streamed_drop += (int)json_integer_value(json_object_get(j, "dropped_turns"));
            json_decref(j);
        }
        if (st != 200) fprintf(stderr, "turn %d: %ld %s\n", t, st, r.body);
        sp_reply_free(&r);
    }
    printf("a long conversation: %d turns answered, %d + %d old turns dropped\n", ok, dropped, streamed_drop);
    CHECK(ok == t && dropped > 0 && streamed_drop > 0, "every turn of a long conversation answered (%d of %d), "
          "saying it dropped old turns (%d, streamed %d)", ok, t, dropped, streamed_drop);
    for (int i = 0; i < 4; i++) {
        sp_reply_t r;
        snprintf(body, sizeof body, "{\"text\": \"hi\", \"session\": \"many-%d\", \"max_tokens\": 2}", i);
        sp_http(&srv, NULL, "/api/analyze", body, 0, NULL, &r);
        sp_reply_free(&r);
    }
    char *m = get_metrics();
    CHECK(sp_metric(m, "qcare_sessions") == 3, "--max-sessions 3 keeps 3 sessions: %.0f", sp_metric(m, "qcare_sessions"));
    free(m);
}

static void stop(void) {
    int status = 0;
    CHECK(sp_stop(&srv, 30, &status) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "clean exit after SIGTERM (status %d)", status);
    char *log = test_slurp(srv.log, NULL);
    CHECK(!sp_log_has_sanitizer_report(log), "sanitizer report:\n%s", log ? log : "");
    free(log);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    char log[512];
    snprintf(log, sizeof log, "%s/tests/sched.log", test_env("QC_BUILD", "build"));
    if (sp_start(&srv, NULL, log, (const char *[]){"--parallel", "4", "--quiet", NULL}) == 0) {
        test_batching();
        test_abandoned_turn();
        test_metrics();
        stop();
    } else {
        CHECK(0, "server did not start (log %s)", log);
    }
    snprintf(log, sizeof log, "%s/tests/sched-busy.log", test_env("QC_BUILD", "build"));
    if (sp_start(&srv, NULL, log, (const char *[]){"--parallel", "1", "--queue", "1", "--timeout", "2", "--quiet", NULL}) == 0) {
        test_overload();
        test_slow_client();
        stop();
    } else {
        CHECK(0, "server did not start (log %s)", log);
    }
    snprintf(log, sizeof log, "%s/tests/sched-noqueue.log", test_env("QC_BUILD", "build"));
    if (sp_start(&srv, NULL, log,
                 (const char *[]){"--parallel", "2", "--queue", "0", "--max-sessions", "3", "--quiet", NULL}) == 0) {
        test_no_queue();
        test_long_conversation();
        stop();
    } else {
        CHECK(0, "server did not start (log %s)", log);
    }
    curl_global_cleanup();
    return test_done("test_sched");
}
