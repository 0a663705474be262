/* test_server.c — `qcare serve` end to end: starts the real server on a free
 * loopback port with the fixture model tiny-qwen2 and talks to it with
 * libcurl: every endpoint (JSON and Server-Sent Events), every bad-input
 * case (400, 413, 404, 405), the API key (401, /health open) and a clean
 * shutdown on SIGTERM (exit 0: no sanitizer or leak report in the debug
 * build). QC_SERVER_SHOW=1 prints the server's log. */
#include "serverproc.h"

#include <jansson.h>

static sp_server_t srv;

/* One request; returns the status (0 on a transport error) and the body in
 * *out (caller frees). body NULL: GET (or `method`). */
static long http(const char *method, const char *path, const char *body, size_t len, const char *key, char **out) {
    sp_reply_t r;
    long st = sp_http(&srv, method, path, body, len, key, &r);
    *out = r.body;
    return st;
}

static long post(const char *path, const char *body, const char *key, char **out) {
    return http(NULL, path, body, strlen(body), key, out);
}

/* POSTs body and parses the JSON answer (NULL when it is not JSON). */
static json_t *post_json(const char *path, const char *body, const char *key, long *status) {
    char *out;
    *status = post(path, body, key, &out);
    json_t *j = json_loads(out, 0, NULL);
    if (!j) fprintf(stderr, "not JSON from %s (%ld): %s\n", path, *status, out);
    free(out);
    return j;
}

/* A 4xx answer with a JSON {"error": "..."}; the message contains want (if
 * given). len 0: strlen(body). */
static void check_error(const char *path, const char *body, size_t len, long want_status, const char *want) {
    char *out;
    if (!len) len = strlen(body);
    long st = http(NULL, path, body, len, NULL, &out);
    json_t *j = json_loads(out, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    CHECK(st == want_status && msg && (!want || strstr(msg, want)), "%s %.60s: want %ld with an error%s%s, got %ld %s",
          path, body, want_status, want ? " containing " : "", want ? want : "", st, out);
    json_decref(j);
    free(out);
}

/* Starts `qcare serve` (tests/serverproc.h), with an API key if given. */
static int start_server(const char *log, const char *api_key) {
    const char *args[] = {"--api-key", api_key, "--allow-origin", "https://app.example/", NULL};
    return sp_start(&srv, NULL, log, api_key ? args : NULL) == 0;
}

/* SIGTERM, then the exit status must be 0 and the log free of sanitizer reports. */
static void stop_server(void) {
    int st = 0;
    int rc = sp_stop(&srv, 30, &st);
    char *text = test_slurp(srv.log, NULL);
    CHECK(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "server exit status %d after SIGTERM:\n%s", st,
          text ? text : "");
    CHECK(!sp_log_has_sanitizer_report(text), "sanitizer report:\n%s", text ? text : "");
    CHECK(text && strstr(text, "GET /health 200"), "one log line per request:\n%s", text ? text : "");
    CHECK(text && !strstr(text, "libmicrohttpd: MHD_OPTION"), "no libmicrohttpd option warning:\n%s", text ? text : "");
    if (getenv("QC_SERVER_SHOW")) fprintf(stderr, "%s", text ? text : "");
    free(text);
}

/* ==== the care endpoints ==== */

static int is_probs(json_t *probs) {
    double sum = 0;
    const char *k[3] = {"positive", "negative", "neutral"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(probs, k[i]);
        if (!json_is_number(v)) return 0;
        sum += json_number_value(v);
    }
    return sum > 0.99 && sum < 1.01;
}

static int is_label(json_t *v) {
    const char *s = json_string_value(v);
    return s && (!strcmp(s, "positive") || !strcmp(s, "negative") || !strcmp(s, "neutral"));
}

static void test_basic(void) {
    char *out;
    long st = http(NULL, "/health", NULL, 0, NULL, &out);
    CHECK(st == 200 && !strcmp(out, "{\"status\":\"ok\"}"), "/health: %ld %s", st, out);
    free(out);
    st = http(NULL, "/", NULL, 0, NULL, &out);
    CHECK(st == 200 && strstr(out, "<html"), "GET /: %ld", st);
    free(out);
    json_t *j = post_json("/api/emotion", "{\"text\": \"I feel so sad and alone today\"}", NULL, &st);
    CHECK(st == 200 && is_label(json_object_get(j, "label")) && is_probs(json_object_get(j, "probs")) &&
              json_is_false(json_object_get(j, "urgent")),
          "/api/emotion shape (%ld)", st);
    json_decref(j);
    j = post_json("/api/emotion", "{\"text\": \"I have crushing chest pain and my left arm is numb\"}", NULL, &st);
    CHECK(st == 200 && json_is_true(json_object_get(j, "urgent")), "/api/emotion urgent (%ld)", st);
    json_decref(j);

    j = post_json("/api/analyze", "{\"text\": \"医生，我最近总是失眠\", \"max_tokens\": 8}", NULL, &st);
    json_t *e = json_object_get(j, "emotion");
    CHECK(st == 200 && is_label(json_object_get(e, "label")) && is_probs(json_object_get(e, "probs")) &&
              json_is_false(json_object_get(j, "urgent")) && json_is_string(json_object_get(j, "reply")) &&
              !json_object_get(j, "notice"),
          "/api/analyze shape (%ld)", st);
    json_decref(j);
    j = post_json("/api/analyze", "{\"text\": \"I have crushing chest pain\", \"max_tokens\": 4}", NULL, &st);
    const char *notice = json_string_value(json_object_get(j, "notice"));
    CHECK(st == 200 && json_is_true(json_object_get(j, "urgent")) && notice && strstr(notice, "URGENT"),
          "/api/analyze urgent notice (%ld)", st);
    json_decref(j);

    /* A conversation: two turns of one session. */
    for (int turn = 0; turn < 2; turn++) {
        j = post_json("/api/analyze",
                      turn ? "{\"text\": \"还是睡不着\", \"session\": \"s1\", \"max_tokens\": 4}"
                           : "{\"text\": \"我失眠了\", \"session\": \"s1\", \"max_tokens\": 4}",
                      NULL, &st);
        CHECK(st == 200 && json_is_string(json_object_get(j, "reply")) &&
                  !strcmp(json_string_value(json_object_get(j, "session")), "s1"),
              "session turn %d (%ld)", turn, st);
        json_decref(j);
    }
}

/* POSTs a streamed /api/analyze and checks the events: emotion first, the
 * notice when urgent, chunks, done last; every data line is JSON. */
static void test_analyze_stream(const char *text, int urgent) {
    char body[512], *out;
    snprintf(body, sizeof body, "{\"text\": \"%s\", \"max_tokens\": 6, \"stream\": true}", text);
    long st = post("/api/analyze", body, NULL, &out);
    char *raw = strdup(out); /* the loop below cuts out into its events */
    char order[256] = "";
    size_t n = 0;
    int bad_json = 0;
    char reply[4096] = "";
    for (char *blk = out; blk && *blk && n + 1 < sizeof order;) {
        char *end = strstr(blk, "\n\n");
        if (end) *end = 0;
        char *ev = strstr(blk, "event: "), *data = strstr(blk, "data: ");
        if (ev && data) {
            char name = ev[7];
            order[n++] = name;
            order[n] = 0;
            json_t *j = json_loads(data + 6, 0, NULL);
            if (!j) bad_json++;
            if (name == 'c' && json_string_value(json_object_get(j, "text")))
                strncat(reply, json_string_value(json_object_get(j, "text")), sizeof reply - strlen(reply) - 1);
            if (name == 'e') CHECK(is_label(json_object_get(json_object_get(j, "emotion"), "label")), "emotion event");
            json_decref(j);
        }
        blk = end ? end + 2 : NULL;
    }
    /* e(motion) [n(otice)] c(hunk)* d(one) */
    const char *p = order;
    int ok = *p++ == 'e';
    if (urgent) ok = ok && *p++ == 'n';
    while (*p == 'c') p++;
    ok = ok && *p == 'd' && p[1] == 0;
    CHECK(st == 200 && ok && !bad_json, "SSE order for '%s': %s (status %ld, %d bad data)\n%s", text, order, st,
          bad_json, out);
    CHECK(strlen(order) > (size_t)(2 + urgent) && reply[0], "some chunks streamed: %s", order);
    /* the events carry exactly the answer's text, one chunk per piece,
     * every object compact with its keys in the documented order */
    char *done = strstr(raw, "event: done\ndata: ");
    json_t *d = done ? json_loads(done + 18, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    CHECK(json_integer_value(json_object_get(d, "chunks")) == (json_int_t)(strlen(order) - 2 - urgent),
          "done.chunks is the number of chunk events: %s", done ? done : "(none)");
    json_decref(d);
    CHECK(strstr(raw, "event: emotion\ndata: {\"emotion\":{\"label\":\"") && strstr(raw, "\"urgent\":") &&
              strstr(raw, "event: chunk\ndata: {\"text\":\"") && strstr(raw, "event: done\ndata: {\"chunks\":") &&
              (!urgent || strstr(raw, "event: notice\ndata: {\"kind\":\"")),
          "event formats:\n%s", raw);
    snprintf(body, sizeof body, "{\"text\": \"%s\", \"max_tokens\": 6}", text);
    long st2;
    json_t *whole = post_json("/api/analyze", body, NULL, &st2);
    const char *want = json_string_value(json_object_get(whole, "reply"));
    CHECK(st2 == 200 && want && !strcmp(want, reply), "streamed text '%s' != the answer's '%s'", reply, want ? want : "");
    json_decref(whole);
    free(raw);
    free(out);
}

/* A client that goes away after the first chunk: the server cancels the
 * reply and keeps serving. */
static void test_disconnect(void) {
    sp_request_t q = {.path = "/api/analyze",
                      .body = "{\"text\": \"hello\", \"max_tokens\": 1500, \"stream\": true}",
                      .abort_at = "event: chunk"};
    sp_reply_t r;
    sp_request(srv.port, &q, &r);
    CHECK(r.abandoned && r.rc == CURLE_WRITE_ERROR && strstr(r.body, "event: emotion"), "client abort mid-stream: %d",
          (int)r.rc);
    sp_reply_free(&r);
    long st;
    json_t *j = post_json("/api/emotion", "{\"text\": \"still there?\"}", NULL, &st);
    CHECK(st == 200 && is_label(json_object_get(j, "label")), "served after a client left (%ld)", st);
    json_decref(j);
}

/* ==== OpenAI-compatible ==== */

static char *completion(const char *extra, long *st, json_t **usage, const char **finish) {
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\": \"x\", \"messages\": [{\"role\": \"system\", \"content\": \"Be kind.\"}, "
             "{\"role\": \"user\", \"content\": \"Hello <|im_end|> there\"}]%s}",
             extra);
    json_t *j = post_json("/v1/chat/completions", body, NULL, st);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    const char *c = json_string_value(json_object_get(json_object_get(ch, "message"), "content"));
    char *r = c ? strdup(c) : NULL;
    static char fin[32];
    snprintf(fin, sizeof fin, "%s", json_string_value(json_object_get(ch, "finish_reason")) ?: "");
    if (finish) *finish = fin;
    if (usage) *usage = json_incref(json_object_get(j, "usage"));
    CHECK(!strcmp(json_string_value(json_object_get(j, "object")) ?: "", "chat.completion"), "object field");
    json_decref(j);
    return r;
}

static void test_openai(void) {
    char *out;
    long st = http(NULL, "/v1/models", NULL, 0, NULL, &out);
    json_t *j = json_loads(out, 0, NULL);
    CHECK(st == 200 && json_is_string(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id")),
          "/v1/models: %ld %s", st, out);
    json_decref(j);
    free(out);

    json_t *usage = NULL;
    const char *fin;
    char *greedy = completion(", \"max_tokens\": 8, \"temperature\": 0", &st, &usage, &fin);
    json_int_t pt = json_integer_value(json_object_get(usage, "prompt_tokens")),
               ct = json_integer_value(json_object_get(usage, "completion_tokens")),
               tt = json_integer_value(json_object_get(usage, "total_tokens"));
    CHECK(st == 200 && greedy && pt > 10 && ct >= 1 && ct <= 8 && tt == pt + ct, "usage %lld %lld %lld (%ld)",
          (long long)pt, (long long)ct, (long long)tt, st);
    CHECK(!strcmp(fin, "length") || !strcmp(fin, "stop"), "finish_reason '%s'", fin);
    json_decref(usage);

    /* The same seed gives the same text. */
    char *a = completion(", \"max_tokens\": 6, \"temperature\": 1.0, \"top_p\": 0.9, \"seed\": 7", &st, NULL, NULL);
    char *b = completion(", \"max_tokens\": 6, \"temperature\": 1.0, \"top_p\": 0.9, \"seed\": 7", &st, NULL, NULL);
    CHECK(a && b && !strcmp(a, b), "seeded runs differ: '%s' vs '%s'", a ? a : "", b ? b : "");
    free(a);
    free(b);

    /* Without a seed two requests differ even within the same second;
     * seeds are integers, exact beyond 2^53. */
    char *u[3];
    for (int i = 0; i < 3; i++) u[i] = completion(", \"max_tokens\": 8, \"temperature\": 1.0", &st, NULL, NULL);
    CHECK(u[0] && u[1] && u[2] && (strcmp(u[0], u[1]) || strcmp(u[1], u[2])), "unseeded replies all the same: '%s'",
          u[0] ? u[0] : "");
    for (int i = 0; i < 3; i++) free(u[i]);
    char *p53 = completion(", \"max_tokens\": 8, \"temperature\": 1.0, \"seed\": 9007199254740992", &st, NULL, NULL),
         *q53 = completion(", \"max_tokens\": 8, \"temperature\": 1.0, \"seed\": 9007199254740993", &st, NULL, NULL),
         *r53 = completion(", \"max_tokens\": 8, \"temperature\": 1.0, \"seed\": 9007199254740993", &st, NULL, NULL);
    CHECK(p53 && q53 && r53 && strcmp(p53, q53) && !strcmp(q53, r53), "seeds 2^53 and 2^53 + 1 are told apart: '%s' '%s' '%s'",
          p53 ? p53 : "", q53 ? q53 : "", r53 ? r53 : "");
    free(p53);
    free(q53);
    free(r53);

    /* A stop string: the text ends just before it. */
    if (greedy && strlen(greedy) > 2) {
        size_t p = strlen(greedy) / 2;
        while (p > 1 && ((unsigned char)greedy[p] & 0xC0) == 0x80) p--;
        json_t *stop = json_string(greedy + p);
        char *sj = json_dumps(stop, JSON_ENCODE_ANY), extra[512];
        snprintf(extra, sizeof extra, ", \"max_tokens\": 8, \"temperature\": 0, \"stop\": [%s]", sj);
        char *cut = completion(extra, &st, NULL, &fin);
        size_t want = (size_t)(strstr(greedy, greedy + p) - greedy);
        CHECK(cut && strlen(cut) == want && !strncmp(cut, greedy, want) && !strcmp(fin, "stop"),
              "stop '%s' in '%s': got '%s' (%s)", greedy + p, greedy, cut ? cut : "(null)", fin);
        free(cut);
        free(sj);
        json_decref(stop);
    }

    /* Streamed: the same greedy text in chunks, then [DONE]. */
    const char *body = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be kind.\"}, {\"role\": \"user\", "
                       "\"content\": \"Hello <|im_end|> there\"}], \"max_tokens\": 8, \"temperature\": 0, \"stream\": true}";
    st = post("/v1/chat/completions", body, NULL, &out);
    char text[4096] = "";
    int chunks = 0, done = 0, bad = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "data: ", 6)) continue;
        if (!strcmp(line + 6, "[DONE]")) {
            done++;
            continue;
        }
        json_t *c = json_loads(line + 6, 0, NULL);
        if (!c || strcmp(json_string_value(json_object_get(c, "object")) ?: "", "chat.completion.chunk")) bad++;
        const char *piece = json_string_value(
            json_object_get(json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta"), "content"));
        if (piece) strncat(text, piece, sizeof text - strlen(text) - 1);
        chunks++;
        json_decref(c);
    }
    CHECK(st == 200 && done == 1 && !bad && chunks >= 3, "streamed completion: %ld, %d chunks, %d done, %d bad", st,
          chunks, done, bad);
    CHECK(greedy && !strcmp(text, greedy), "streamed text '%s' != '%s'", text, greedy ? greedy : "");
    free(out);
    free(greedy);
}

/* ==== bad input ==== */

static void test_bad_input(void) {
    check_error("/api/emotion", "{\"text\": ", 0, 400, "malformed JSON");
    check_error("/api/emotion", "{\"text\": \"\xff\xfe\"}", 0, 400, NULL);
    check_error("/api/analyze", "[1, 2]", 0, 400, "object");
    check_error("/api/analyze", "{}", 0, 400, "\"text\"");
    check_error("/api/analyze", "{\"text\": 5}", 0, 400, "\"text\"");
    check_error("/api/emotion", "{\"txt\": \"hi\"}", 0, 400, "\"text\"");
    check_error("/api/emotion", "{\"text\": \"\"}", 0, 400, "empty");
    check_error("/api/analyze", "{\"text\": \"\"}", 0, 400, "empty");
    check_error("/api/analyze", "{\"text\": \" \\n\\t \", \"stream\": true}", 0, 400, "empty");
    check_error("/v1/chat/completions",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"seed\": 9223372036854775808}", 0, 400,
                "at most 9223372036854775807");
    /* a key twice: the last would win in jansson, the first in other readers */
    check_error("/api/analyze", "{\"text\": \"hi\", \"text\": \"I have crushing chest pain\"}", 0, 400, "duplicate");
    check_error("/v1/chat/completions",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"a\", \"content\": \"b\"}]}", 0, 400, "duplicate");
    check_error("/api/analyze", "{\"text\": \"hi\", \"max_tokens\": \"9\"}", 0, 400, "max_tokens");
    check_error("/api/analyze", "{\"text\": \"hi\", \"max_tokens\": 0}", 0, 400, "max_tokens");
    check_error("/api/analyze", "{\"text\": \"hi\", \"stream\": 1}", 0, 400, "stream");
    check_error("/api/analyze", "{\"text\": \"hi\", \"session\": 3}", 0, 400, "session");
    check_error("/v1/chat/completions", "{}", 0, 400, "messages");
    check_error("/v1/chat/completions", "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", 0, 400, "role");
    check_error("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 1}]}", 0, 400, "content");
    check_error("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": 9}",
                0, 400, "temperature");
    check_error("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": [1]}", 0,
                400, "stop");

    /* Longer than the context, and over the body limit. */
    size_t n = 3000 * 6 + 32;
    char *big = malloc(n);
    strcpy(big, "{\"text\": \"");
    for (int i = 0; i < 3000; i++) strcat(big, " hello");
    strcat(big, "\"}");
    check_error("/api/analyze", big, strlen(big), 400, "context");
    check_error("/api/emotion", big, strlen(big), 400, "context");
    free(big);
    n = (1u << 20) + 100;
    big = malloc(n);
    memset(big, ' ', n);
    memcpy(big, "{\"text\": \"", 10);
    memcpy(big + n - 2, "\"}", 2);
    check_error("/api/analyze", big, n, 413, "larger");
    free(big);

    char *out;
    long st = http(NULL, "/nowhere", NULL, 0, NULL, &out);
    CHECK(st == 404 && strstr(out, "\"error\""), "404: %ld %s", st, out);
    free(out);
    st = http(NULL, "/api/analyze", NULL, 0, NULL, &out);
    CHECK(st == 405 && strstr(out, "\"error\""), "GET /api/analyze: %ld %s", st, out);
    free(out);
    st = http("DELETE", "/health", NULL, 0, NULL, &out);
    CHECK(st == 405, "DELETE /health: %ld", st);
    free(out);
}

/* One request with a given Content-Type and more header lines; the
 * answer in *r (free with sp_reply_free). */
static long send_with(const char *method, const char *path, const char *body, const char *type,
                      const char *const *headers, sp_reply_t *r) {
    sp_request_t q = {.method = method, .path = path, .body = body, .content_type = type, .headers = headers};
    return sp_request(srv.port, &q, r);
}

/* POST bodies must be application/json (a page on another site can send
 * text/plain without a preflight); parameters and case do not matter. */
static void test_content_type(void) {
    const char *body = "{\"text\": \"hello\"}";
    const char *bad[] = {"text/plain", "", "application/x-www-form-urlencoded", "application/jsonx"};
    for (int i = 0; i < 4; i++) {
        sp_reply_t r;
        long st = send_with(NULL, "/api/emotion", body, bad[i], NULL, &r);
        CHECK(st == 415 && strstr(r.body, "application/json"), "Content-Type '%s': want 415, got %ld %s", bad[i], st,
              r.body);
        sp_reply_free(&r);
    }
    const char *good[] = {"application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"};
    for (int i = 0; i < 3; i++) {
        sp_reply_t r;
        long st = send_with(NULL, "/api/emotion", body, good[i], NULL, &r);
        CHECK(st == 200, "Content-Type '%s': want 200, got %ld %s", good[i], st, r.body);
        sp_reply_free(&r);
    }
}

/* A request with an Origin header must come from the server's own page
 * (or --allow-origin); requests without one (curl, SDKs) are fine. */
static void test_origin(void) {
    char own[64];
    snprintf(own, sizeof own, "Origin: http://127.0.0.1:%d", srv.port);
    const char *evil[] = {"Origin: http://evil.example", NULL}, *mine[] = {own, NULL};
    sp_reply_t r;
    long st = send_with(NULL, "/api/emotion", "{\"text\": \"hello\"}", NULL, evil, &r);
    CHECK(st == 403 && strstr(r.body, "--allow-origin"), "a cross-site POST: want 403, got %ld %s", st, r.body);
    sp_reply_free(&r);
    st = send_with(NULL, "/v1/models", NULL, NULL, evil, &r);
    CHECK(st == 403, "a cross-site GET /v1/models: want 403, got %ld", st);
    sp_reply_free(&r);
    st = send_with(NULL, "/api/emotion", "{\"text\": \"hello\"}", NULL, mine, &r);
    CHECK(st == 200 && !strstr(r.headers, "Access-Control-Allow-Origin"), "the page's own origin: want 200, got %ld %s",
          st, r.body);
    sp_reply_free(&r);
}

/* A path with a newline and an escape sequence (percent-encoded, which
 * the server decodes) cannot forge a log line or reach the terminal. */
static void test_log_injection(void) {
    sp_reply_t r;
    long st = sp_http(&srv, NULL, "/x%0aGET%20/admin%20200%201.0%20ms%0a%1b%5b31mred%c2%9b", NULL, 0, NULL, &r);
    CHECK(st == 404 && strstr(r.body, "\\\\x0aGET /admin"), "404 echoes the path escaped: %ld %s", st, r.body);
    sp_reply_free(&r);
    usleep(200000); /* the line is written when the server is done with the request */
    char *log = test_slurp(srv.log, NULL);
    CHECK(log && strstr(log, "GET /x\\x0aGET /admin 200 1.0 ms\\x0a\\x1b[31mred\\xc2\\x9b 404"),
          "the path is logged escaped on one line:\n%s", log ? log : "");
    CHECK(log && !strstr(log, "\nGET /admin") && !strchr(log, 0x1b) && !strstr(log, "\xc2\x9b"),
          "no forged line, no escape byte in the log");
    free(log);
}

static void test_api_key(void) {
    char *out;
    long st = http(NULL, "/health", NULL, 0, NULL, &out);
    CHECK(st == 200, "/health stays open with a key: %ld", st);
    free(out);
    const char *body = "{\"text\": \"hello\"}";
    st = post("/api/emotion", body, NULL, &out);
    CHECK(st == 401 && strstr(out, "\"error\""), "no key: %ld %s", st, out);
    free(out);
    st = post("/api/emotion", body, "wrong", &out);
    CHECK(st == 401, "wrong key: %ld", st);
    free(out);
    st = post("/api/emotion", body, "s3cret-key", &out);
    CHECK(st == 200, "right key: %ld %s", st, out);
    free(out);
    st = http(NULL, "/v1/models", NULL, 0, NULL, &out);
    CHECK(st == 401, "/v1/models without a key: %ld", st);
    free(out);
    /* the scheme is case-insensitive */
    const char *lower[] = {"Authorization: bearer s3cret-key", NULL}, *upper[] = {"Authorization: BEARER s3cret-key", NULL};
    sp_reply_t r;
    st = send_with(NULL, "/api/emotion", body, NULL, lower, &r);
    CHECK(st == 200, "'bearer' in lower case: %ld %s", st, r.body);
    sp_reply_free(&r);
    st = send_with(NULL, "/api/emotion", body, NULL, upper, &r);
    CHECK(st == 200, "'BEARER': %ld %s", st, r.body);
    sp_reply_free(&r);
    /* --allow-origin https://app.example/: its pages may call, with CORS headers */
    const char *app[] = {"Origin: https://app.example", "Authorization: Bearer s3cret-key", NULL},
               *other[] = {"Origin: https://other.example", "Authorization: Bearer s3cret-key", NULL},
               *pre[] = {"Origin: https://app.example", "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: authorization, content-type", NULL};
    st = send_with(NULL, "/api/emotion", body, NULL, app, &r);
    CHECK(st == 200 && strstr(r.headers, "Access-Control-Allow-Origin: https://app.example"),
          "an allowed origin: %ld\n%s", st, r.headers);
    sp_reply_free(&r);
    st = send_with("OPTIONS", "/api/emotion", NULL, "", pre, &r);
    CHECK(st == 204 && strstr(r.headers, "Access-Control-Allow-Origin: https://app.example") &&
              strstr(r.headers, "Access-Control-Allow-Headers: Authorization, Content-Type"),
          "a preflight from an allowed origin: %ld\n%s", st, r.headers);
    sp_reply_free(&r);
    st = send_with(NULL, "/api/emotion", body, NULL, other, &r);
    CHECK(st == 403, "an origin not allowed: %ld", st);
    sp_reply_free(&r);
}

/* The scheduler's statuses have their own names. */
static void test_status_names(void) {
    CHECK(!strcmp(qc_status_str(QC_ERR_CANCELLED), "cancelled") && !strcmp(qc_status_str(QC_ERR_INTERNAL), "internal error"),
          "status names: %s, %s", qc_status_str(QC_ERR_CANCELLED), qc_status_str(QC_ERR_INTERNAL));
}

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    test_status_names();
    char log[256];
    snprintf(log, sizeof log, "%s/tests/server.log", test_env("QC_BUILD", "build"));
    double t0 = qc_now_s();
    int up = start_server(log, NULL);
    CHECK(up, "server did not start (log %s)", log);
    if (up) {
        test_basic();
        test_analyze_stream("I have crushing chest pain", 1);
        test_analyze_stream("今天心情不错", 0);
        test_disconnect();
        test_openai();
        test_bad_input();
        test_content_type();
        test_origin();
        test_log_injection();
        stop_server();
    }
    snprintf(log, sizeof log, "%s/tests/server-key.log", test_env("QC_BUILD", "build"));
    up = start_server(log, "s3cret-key");
    CHECK(up, "server with --api-key did not start");
    if (up) {
        test_api_key();
        stop_server();
    }
    printf("test_server: %.1f s\n", qc_now_s() - t0);
    curl_global_cleanup();
    return test_done("test_server");
}
