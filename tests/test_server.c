/* test_server.c — `qcare serve` end to end: starts the real server on a free
 * loopback port with the fixture model tiny-qwen2 and talks to it with
 * libcurl: every endpoint (JSON and Server-Sent Events), every bad-input
 * case (400, 413, 404, 405), the API key (401, /health open) and a clean
 * shutdown on SIGTERM (exit 0: no sanitizer or leak report in the debug
 * build). QC_SERVER_SHOW=1 prints the server's log. */
#include "serverproc.h"

#include <jansson.h>
#include <math.h>
#include "qcare_care.h"

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

/* A number of at most 6 significant digits (probabilities and times are
 * rounded so, not printed with 17). */
static int is_round6(json_t *v) {
    char s[32];
    snprintf(s, sizeof s, "%.6g", json_number_value(v));
    return json_is_number(v) && strtod(s, NULL) == json_number_value(v);
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
    CHECK(st == 200 && strstr(out, "<html") && strstr(out, "fixture-banner") && strstr(out, "/api/info"),
          "GET /: %ld, a page with the fixture banner", st);
    /* web/theme.css put in place by tools/embed.c, the include line gone */
    CHECK(out && strstr(out, "--accent: #0b6e69;") && strstr(out, "prefers-color-scheme: dark") &&
              !strstr(out, "/* @include"),
          "GET /: the shared theme is inside the page");
    free(out);
    /* the model is tiny-qwen2 from qcare mkmodel: a fixture, said so */
    st = http(NULL, "/api/info", NULL, 0, NULL, &out);
    json_t *info = json_loads(out, 0, NULL);
    CHECK(st == 200 && json_is_true(json_object_get(info, "fixture")) &&
              !strcmp(json_string_value(json_object_get(info, "model")) ?: "", "tiny-qwen2"),
          "/api/info: the mkmodel model is a fixture: %ld %s", st, out);
    json_decref(info);
    free(out);
    json_t *j = post_json("/api/emotion", "{\"text\": \"I feel so sad and alone today\"}", NULL, &st);
    CHECK(st == 200 && is_label(json_object_get(j, "label")) && is_probs(json_object_get(j, "probs")) &&
              json_is_false(json_object_get(j, "urgent")) && !json_object_get(j, "notice"),
          "/api/emotion shape (%ld)", st);
    json_decref(j);
    j = post_json("/api/emotion", "{\"text\": \"I have crushing chest pain and my left arm is numb\"}", NULL, &st);
    CHECK(st == 200 && json_is_true(json_object_get(j, "urgent")) &&
              strstr(json_string_value(json_object_get(j, "notice")) ?: "", "URGENT") &&
              json_is_string(json_object_get(j, "presentation")),
          "/api/emotion urgent, with the notice (%ld)", st);
    json_t *pr = json_object_get(j, "probs");
    CHECK(is_round6(json_object_get(pr, "positive")) && is_round6(json_object_get(pr, "negative")) &&
              is_round6(json_object_get(pr, "neutral")) && is_round6(json_object_get(j, "ms")),
          "/api/emotion: probabilities and ms to 6 significant digits");
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

/* POSTs a streamed /api/analyze and checks the events: the notice first
 * when urgent, then emotion, chunks, done last; every data line is JSON. */
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
    /* [n(otice)] e(motion) c(hunk)* d(one) */
    const char *p = order;
    int ok = 1;
    if (urgent) ok = *p++ == 'n';
    ok = ok && *p++ == 'e';
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

/* A whole command's stdout (caller frees); NULL when it fails. */
static char *run_capture(const char *cmd) {
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    qc_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) qc_buf_add(&b, chunk, n);
    int st = pclose(f);
    if (st) {
        qc_buf_free(&b);
        return NULL;
    }
    return qc_buf_take(&b);
}

/* ==== log-probabilities ==== */

static qc_tokenizer_t *fixture_tok;

/* The text of token id, as the server writes it. */
static char *tok_text(int32_t id) {
    char *t = NULL;
    if (qc_tokenizer_decode(fixture_tok, &id, 1, &t, NULL)) return strdup("");
    return t;
}

/* /v1/completions with echo gives the prompt tokens' log-probabilities:
 * they agree with `qcare logits` for the same text (fewer than 64 tokens,
 * so exactly: compared here through differences of logits, to the 6
 * decimals it prints). */
static void test_prompt_logprobs(void) {
    const char *text = "Hello world, my head hurts since yesterday.";
    char body[512];
    snprintf(body, sizeof body, "{\"prompt\": \"%s\", \"max_tokens\": 0, \"echo\": true, \"logprobs\": 5}", text);
    long st;
    json_t *j = post_json("/v1/completions", body, NULL, &st);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0), *lp = json_object_get(ch, "logprobs");
    json_t *tokens = json_object_get(lp, "tokens"), *tlp = json_object_get(lp, "token_logprobs"),
           *top = json_object_get(lp, "top_logprobs"), *off = json_object_get(lp, "text_offset");
    size_t n = json_array_size(tokens);
    CHECK(st == 200 && n > 3 && json_array_size(tlp) == n && json_array_size(top) == n && json_array_size(off) == n &&
              json_is_null(json_array_get(tlp, 0)) && json_is_null(json_array_get(top, 0)) &&
              !strcmp(json_string_value(json_object_get(ch, "text")) ?: "", text) &&
              !strcmp(json_string_value(json_object_get(ch, "finish_reason")) ?: "", "length") &&
              json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")) == 0,
          "/v1/completions echo, max_tokens 0 (%ld): %s", st, json_dumps(j, JSON_COMPACT) ?: "");
    char dir[512], cmd[1024];
    snprintf(dir, sizeof dir, "%s/tiny-qwen2", test_env("QC_MODELS", "build/models"));
    snprintf(cmd, sizeof cmd, "%s/qcare logits --model %s --dtype bf16 --threads 2 --top 5 '%s' 2>/dev/null",
             test_env("QC_BUILD", "build"), dir, text);
    char *lines = run_capture(cmd);
    size_t rows = 0;
    double worst = 0;
    int same_tokens = 1, keys = 1;
    for (char *line = lines ? strtok(lines, "\n") : NULL; line; line = strtok(NULL, "\n"), rows++) {
        json_t *l = json_loads(line, 0, NULL);
        size_t pos = (size_t)json_integer_value(json_object_get(l, "pos"));
        char *t = tok_text((int32_t)json_integer_value(json_object_get(l, "id")));
        same_tokens &= pos < n && !strcmp(t, json_string_value(json_array_get(tokens, pos)) ?: "");
        free(t);
        json_t *want = json_object_get(l, "top"), *got = json_array_get(top, pos + 1);
        if (pos + 1 < n) { /* the row after token pos gives token pos+1's alternatives */
            char *t0 = tok_text((int32_t)json_integer_value(json_array_get(json_array_get(want, 0), 0)));
            double l0 = json_real_value(json_array_get(json_array_get(want, 0), 1));
            json_t *g0 = json_object_get(got, t0);
            keys &= g0 != NULL && json_object_size(got) <= 5;
            for (size_t k = 1; g0 && k < json_array_size(want); k++) {
                char *tk = tok_text((int32_t)json_integer_value(json_array_get(json_array_get(want, k), 0)));
                json_t *gk = json_object_get(got, tk);
                double lk = json_real_value(json_array_get(json_array_get(want, k), 1));
                if (gk) worst = fmax(worst, fabs((json_real_value(gk) - json_real_value(g0)) - (lk - l0)));
                else if (strcmp(tk, t0)) keys = 0; /* two ids with one text share a key */
                free(tk);
            }
            double actual = json_real_value(json_array_get(tlp, pos + 1)), best = json_real_value(g0);
            keys &= actual <= best + 1e-12;
            free(t0);
        }
        json_decref(l);
    }
    printf("echo logprobs vs qcare logits: %zu positions, worst |difference of differences| %.2g\n", rows, worst);
    CHECK(rows == n && same_tokens && keys && worst < 2e-6,
          "/v1/completions echo logprobs = qcare logits (%zu rows for %zu tokens, worst %g)", rows, n, worst);
    free(lines);

    /* the same prompt as token ids, and as an array of one string: the same numbers */
    qc_buf_t ids = {0};
    int32_t *tid;
    size_t nt;
    qc_tokenizer_encode(fixture_tok, text, strlen(text), QC_TOK_PARSE_SPECIAL, &tid, &nt);
    qc_buf_puts(&ids, "{\"prompt\": [");
    for (size_t i = 0; i < nt; i++) qc_buf_printf(&ids, "%s%d", i ? ", " : "", (int)tid[i]);
    qc_buf_puts(&ids, "], \"max_tokens\": 0, \"echo\": true, \"logprobs\": 5}");
    free(tid);
    json_t *k = post_json("/v1/completions", ids.p, NULL, &st);
    snprintf(body, sizeof body, "{\"prompt\": [\"%s\"], \"max_tokens\": 0, \"echo\": true, \"logprobs\": 5}", text);
    json_t *one = post_json("/v1/completions", body, NULL, &st);
    json_t *lk = json_object_get(json_array_get(json_object_get(k, "choices"), 0), "logprobs"),
           *lo = json_object_get(json_array_get(json_object_get(one, "choices"), 0), "logprobs");
    CHECK(json_equal(lk, lp) && json_equal(lo, lp), "a prompt of token ids / of one string: the same logprobs");
    qc_buf_free(&ids);
    json_decref(k);
    json_decref(one);

    /* echo with generation: the continuation is the one without echo; the
     * generated tokens' log-probabilities follow the prompt's */
    snprintf(body, sizeof body, "{\"prompt\": \"%s\", \"max_tokens\": 4, \"temperature\": 0}", text);
    json_t *plain = post_json("/v1/completions", body, NULL, &st);
    snprintf(body, sizeof body,
             "{\"prompt\": \"%s\", \"max_tokens\": 4, \"temperature\": 0, \"echo\": true, \"logprobs\": 1}", text);
    json_t *echoed = post_json("/v1/completions", body, NULL, &st);
    const char *pt = json_string_value(json_object_get(json_array_get(json_object_get(plain, "choices"), 0), "text"));
    const char *et = json_string_value(json_object_get(json_array_get(json_object_get(echoed, "choices"), 0), "text"));
    json_t *elp = json_object_get(json_array_get(json_object_get(echoed, "choices"), 0), "logprobs");
    size_t ne = json_array_size(json_object_get(elp, "tokens"));
    CHECK(pt && et && strlen(et) == strlen(text) + strlen(pt) && !strncmp(et, text, strlen(text)) &&
              !strcmp(et + strlen(text), pt) && ne == n + (size_t)json_integer_value(json_object_get(
                                                          json_object_get(echoed, "usage"), "completion_tokens")),
          "echo + generation: '%s' then '%s' (%zu logprobs)", et ?: "", pt ?: "", ne);
    json_decref(plain);
    json_decref(echoed);
    json_decref(j);
}

/* Chat logprobs: every generated token's, top_logprobs sorted, the sampled
 * token's consistent with them (greedy: the first), streamed = not. */
static void test_chat_logprobs(void) {
    const char *body = "{\"messages\": [{\"role\": \"user\", \"content\": \"I have a headache\"}], \"max_tokens\": 6, "
                       "\"temperature\": 0, \"logprobs\": true, \"top_logprobs\": 3%s}";
    char b[512];
    snprintf(b, sizeof b, body, "");
    long st;
    json_t *j = post_json("/v1/chat/completions", b, NULL, &st);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    json_t *content = json_object_get(json_object_get(ch, "logprobs"), "content");
    const char *text = json_string_value(json_object_get(json_object_get(ch, "message"), "content"));
    size_t n = json_array_size(content);
    int sorted = 1, greedy = 1;
    qc_buf_t joined = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(content, i), *top = json_object_get(e, "top_logprobs");
        json_t *bytes = json_object_get(e, "bytes");
        for (size_t k = 0; k < json_array_size(bytes); k++) {
            char c = (char)json_integer_value(json_array_get(bytes, k));
            qc_buf_add(&joined, &c, 1);
        }
        sorted &= json_array_size(top) == 3;
        for (size_t k = 1; k < json_array_size(top); k++)
            sorted &= json_real_value(json_object_get(json_array_get(top, k), "logprob")) <=
                      json_real_value(json_object_get(json_array_get(top, k - 1), "logprob"));
        json_t *t0 = json_array_get(top, 0);
        greedy &= json_real_value(json_object_get(t0, "logprob")) == json_real_value(json_object_get(e, "logprob")) &&
                  json_equal(json_object_get(t0, "bytes"), bytes) && json_real_value(json_object_get(e, "logprob")) <= 0;
    }
    CHECK(st == 200 && n == (size_t)json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")) &&
              n > 0 && sorted && greedy && text && joined.p && !strcmp(joined.p, text),
          "chat logprobs: %zu entries, sorted %d, greedy = top %d, bytes make the text %d", n, sorted, greedy,
          joined.p && text && !strcmp(joined.p, text));
    qc_buf_free(&joined);

    /* streamed: the same entries, chunk by chunk */
    snprintf(b, sizeof b, body, ", \"stream\": true");
    char *out;
    st = post("/v1/chat/completions", b, NULL, &out);
    json_t *all = json_array();
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "data: {", 7)) continue;
        json_t *c = json_loads(line + 6, 0, NULL);
        json_t *lc = json_object_get(json_object_get(json_array_get(json_object_get(c, "choices"), 0), "logprobs"), "content");
        if (lc) json_array_extend(all, lc);
        json_decref(c);
    }
    CHECK(st == 200 && json_equal(all, content), "streamed chat logprobs = not streamed (%zu vs %zu)", json_array_size(all), n);
    json_decref(all);
    free(out);
    json_decref(j);

    /* sampled: the chosen token's log-probability never beats the best, and equals its entry when listed */
    j = post_json("/v1/chat/completions",
                  "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 8, \"temperature\": 1.5, "
                  "\"seed\": 3, \"logprobs\": true, \"top_logprobs\": 20, \"top_k\": 40}",
                  NULL, &st);
    content = json_object_get(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "logprobs"), "content");
    int consistent = json_array_size(content) > 0;
    for (size_t i = 0; i < json_array_size(content); i++) {
        json_t *e = json_array_get(content, i), *top = json_object_get(e, "top_logprobs");
        double lp = json_real_value(json_object_get(e, "logprob"));
        consistent &= json_array_size(top) == 20 && lp <= json_real_value(json_object_get(json_array_get(top, 0), "logprob"));
        for (size_t k = 0; k < json_array_size(top); k++)
            if (json_equal(json_object_get(json_array_get(top, k), "bytes"), json_object_get(e, "bytes")))
                consistent &= json_real_value(json_object_get(json_array_get(top, k), "logprob")) == lp;
    }
    CHECK(st == 200 && consistent, "sampled tokens' logprobs consistent with top_logprobs (%ld)", st);
    json_decref(j);
}

/* The other OpenAI request shapes chat completions accept. */
static void test_openai_shapes(void) {
    long st;
    const char *plain = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be kind.\"}, {\"role\": \"user\", "
                        "\"content\": \"Hello there\"}], \"max_tokens\": 5, \"temperature\": 0}";
    const char *parts = "{\"messages\": [{\"role\": \"developer\", \"content\": [{\"type\": \"text\", \"text\": \"Be \"}, "
                        "{\"type\": \"text\", \"text\": \"kind.\"}]}, {\"role\": \"user\", \"content\": [{\"type\": "
                        "\"text\", \"text\": \"Hello there\"}]}], \"max_tokens\": 5, \"temperature\": 0, \"top_k\": 1, "
                        "\"n\": 1, \"tools\": []}";
    json_t *a = post_json("/v1/chat/completions", plain, NULL, &st);
    long st2;
    json_t *b = post_json("/v1/chat/completions", parts, NULL, &st2);
    json_t *ma = json_object_get(json_array_get(json_object_get(a, "choices"), 0), "message"),
           *mb = json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message");
    CHECK(st == 200 && st2 == 200 && json_equal(ma, mb) &&
              json_equal(json_object_get(a, "usage"), json_object_get(b, "usage")) &&
              json_is_null(json_object_get(json_array_get(json_object_get(a, "choices"), 0), "logprobs")),
          "content parts + developer role = strings + system role (%ld, %ld)", st, st2);
    json_decref(a);
    json_decref(b);
    a = post_json("/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 0}", NULL, &st);
    json_t *c0 = json_array_get(json_object_get(a, "choices"), 0);
    CHECK(st == 200 && !strcmp(json_string_value(json_object_get(c0, "text")) ?: "x", "") &&
              json_is_null(json_object_get(c0, "logprobs")) &&
              !strcmp(json_string_value(json_object_get(a, "object")) ?: "", "text_completion"),
          "/v1/completions max_tokens 0 (%ld)", st);
    json_decref(a);
    a = post_json("/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 3, \"n\": 1, \"best_of\": 1, \"suffix\": null}",
                  NULL, &st);
    CHECK(st == 200 && json_integer_value(json_object_get(json_object_get(a, "usage"), "completion_tokens")) >= 1,
          "/v1/completions defaults (%ld)", st);
    json_decref(a);
}

static void test_openai_bad(void) {
    static const char *const chat[][2] = {
        {"{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}", "tool messages are not supported"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 2}", "\"n\""},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"function\"}]}", "tools"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {}}]}]}",
         "text"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [\"x\"]}]}", "content[0]"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}", "logprobs"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": true, \"top_logprobs\": 21}",
         "top_logprobs"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": 1}", "logprobs"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_k\": \"5\"}", "top_k"},
    };
    for (size_t i = 0; i < sizeof chat / sizeof chat[0]; i++) check_error("/v1/chat/completions", chat[i][0], 0, 400, chat[i][1]);
    static const char *const legacy[][2] = {
        {"{}", "prompt"},
        {"{\"prompt\": \"\"}", "no tokens"},
        {"{\"prompt\": []}", "no tokens"},
        {"{\"prompt\": [\"a\", \"b\"]}", "several prompts"},
        {"{\"prompt\": [[1, 2], [3]]}", "several prompts"},
        {"{\"prompt\": [1, -2]}", "prompt[1]"},
        {"{\"prompt\": [1, 99999999]}", "prompt[1]"},
        {"{\"prompt\": 5}", "prompt"},
        {"{\"prompt\": \"x\", \"n\": 3}", "\"n\""},
        {"{\"prompt\": \"x\", \"best_of\": 2}", "best_of"},
        {"{\"prompt\": \"x\", \"suffix\": \"end\"}", "suffix"},
        {"{\"prompt\": \"x\", \"logprobs\": 6}", "logprobs"},
        {"{\"prompt\": \"x\", \"logprobs\": true}", "logprobs"},
        {"{\"prompt\": \"x\", \"echo\": 1}", "echo"},
        {"{\"prompt\": \"x\", \"max_tokens\": -1}", "max_tokens"},
    };
    for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++) check_error("/v1/completions", legacy[i][0], 0, 400, legacy[i][1]);
}

/* ==== /v1/classify ==== */

/* Probabilities in the labels' order summing to 1 (each may be rounded to
 * 6 significant digits, by at most 5e-7), top their argmax. */
static int is_classify_answer(json_t *j, const char *const *labels, size_t n) {
    json_t *ls = json_object_get(j, "labels");
    double sum = 0, best = -1;
    const char *top = NULL;
    if (json_array_size(ls) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(ls, i);
        const char *name = json_string_value(json_object_get(l, "label"));
        double p = json_real_value(json_object_get(l, "probability"));
        if (!name || strcmp(name, labels[i]) || !json_is_real(json_object_get(l, "loglik")) ||
            json_integer_value(json_object_get(l, "tokens")) < 1 || p < 0 || p > 1)
            return 0;
        sum += p;
        if (p > best) best = p, top = name;
    }
    return fabs(sum - 1) <= (double)n * 5e-7 + 1e-12 && top && !strcmp(top, json_string_value(json_object_get(j, "top")) ?: "");
}

static void test_classify(void) {
    static const char *const labels[] = {"billing question", "appointment", "medical symptom", "其他"};
    const char *body = "{\"text\": \"I was charged twice for one visit\", \"labels\": [\"billing question\", "
                       "\"appointment\", \"medical symptom\", \"其他\"], \"instruction\": \"Sort the message.\", "
                       "\"examples\": [{\"text\": \"Can I come on Friday?\", \"label\": \"appointment\"}], "
                       "\"calibrate\": true}";
    long st;
    json_t *a = post_json("/v1/classify", body, NULL, &st);
    CHECK(st == 200 && is_classify_answer(a, labels, 4) && json_is_true(json_object_get(a, "calibrated")),
          "/v1/classify answer (%ld)", st);
    int r6 = is_round6(json_object_get(a, "ms"));
    for (size_t i = 0; i < 4; i++) r6 &= is_round6(json_object_get(json_array_get(json_object_get(a, "labels"), i), "probability"));
    CHECK(r6, "/v1/classify: probabilities and ms to 6 significant digits");
    json_t *b = post_json("/v1/classify", body, NULL, &st);
    int same = json_array_size(json_object_get(a, "labels")) == 4;
    for (size_t i = 0; i < 4; i++) {
        json_t *x = json_array_get(json_object_get(a, "labels"), i), *y = json_array_get(json_object_get(b, "labels"), i);
        same &= json_real_value(json_object_get(x, "probability")) == json_real_value(json_object_get(y, "probability"));
    }
    CHECK(st == 200 && same && json_is_true(json_object_get(b, "prefix_cached")),
          "/v1/classify again: the prefix cached, the same answer");

    /* The API = the CLI, to the last bit of every number. */
    char dir[512], ex[512], cmd[2048];
    snprintf(dir, sizeof dir, "%s/tiny-qwen2", test_env("QC_MODELS", "build/models"));
    snprintf(ex, sizeof ex, "%s/tests/classify-examples.jsonl", test_env("QC_BUILD", "build"));
    FILE *f = fopen(ex, "w");
    if (f) {
        fputs("{\"text\": \"Can I come on Friday?\", \"label\": \"appointment\"}\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd,
             "%s/qcare classify --model %s --dtype bf16 --threads 2 --labels 'billing question,appointment,medical "
             "symptom,其他' --instruction 'Sort the message.' --examples %s --calibrate 'I was charged twice for one "
             "visit' 2>/dev/null",
             test_env("QC_BUILD", "build"), dir, ex);
    char *cli = run_capture(cmd);
    json_t *c = cli ? json_loads(cli, 0, NULL) : NULL;
    int eq = c && is_classify_answer(c, labels, 4);
    for (size_t i = 0; eq && i < 4; i++) {
        json_t *x = json_array_get(json_object_get(a, "labels"), i), *y = json_array_get(json_object_get(c, "labels"), i);
        eq &= json_real_value(json_object_get(x, "probability")) == json_real_value(json_object_get(y, "probability")) &&
              json_real_value(json_object_get(x, "loglik")) == json_real_value(json_object_get(y, "loglik")) &&
              json_integer_value(json_object_get(x, "tokens")) == json_integer_value(json_object_get(y, "tokens"));
    }
    CHECK(eq, "/v1/classify = qcare classify --labels, bit for bit:\n%s\n%s", cli ? cli : "(failed)",
          json_dumps(a, JSON_COMPACT) ?: "");
    json_decref(c);
    free(cli);
    json_decref(a);
    json_decref(b);

    /* mean normalization; a streamed or not-JSON label list is refused below */
    a = post_json("/v1/classify", "{\"text\": \"hi\", \"labels\": [\"yes\", \"no thanks\"], \"normalize\": \"mean\"}",
                  NULL, &st);
    CHECK(st == 200 && !strcmp(json_string_value(json_object_get(a, "normalize")) ?: "", "mean"),
          "/v1/classify normalize mean (%ld)", st);
    json_decref(a);
}

/* Every bad /v1/classify request: 400 with a JSON error naming the problem. */
static void test_classify_bad(void) {
    char many[1024] = "{\"text\": \"x\", \"labels\": [";
    for (int i = 0; i < 33; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"l%d\"", i ? ", " : "", i);
    strcat(many, "]}");
    char l65[512];
    snprintf(l65, sizeof l65, "{\"text\": \"x\", \"labels\": [\"a\", \"%s\"]}",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    struct {
        const char *body, *want;
    } cases[] = {
        {"{\"text\": \"x\"}", "labels"},
        {"{\"text\": \"x\", \"labels\": []}", "labels"},
        {"{\"text\": \"x\", \"labels\": [\"a\"]}", "2 to 32"},
        {"{\"text\": \"x\", \"labels\": [\"a\", \"b\", \"a\"]}", "twice"},
        {many, "2 to 32"},
        {"{\"text\": \"x\", \"labels\": [\"a\", \"\"]}", "1 to 64"},
        {l65, "1 to 64"},
        {"{\"text\": \"x\", \"labels\": [\"a\", 2]}", "labels[1]"},
        {"{\"text\": \"x\", \"labels\": \"a,b\"}", "labels"},
        {"{\"text\": \"\", \"labels\": [\"a\", \"b\"]}", "text"},
        {"{\"labels\": [\"a\", \"b\"]}", "text"},
        {"{\"text\": 3, \"labels\": [\"a\", \"b\"]}", "text"},
        {"{\"text\": \"x\", \"labels\": [\"a\", \"b\"], \"normalize\": \"max\"}", "normalize"},
        {"{\"text\": \"x\", \"labels\": [\"a\", \"b\"], \"calibrate\": \"yes\"}", "calibrate"},
        {"{\"text\": \"x\", \"labels\": [\"a\", \"b\"], \"instruction\": 1}", "instruction"},
        {"{\"text\": \"x\", \"labels\": [\"a\", \"b\"], \"examples\": {}}", "examples"},
        {"{\"text\": \"x\", \"labels\": [\"a\", \"b\"], \"examples\": [{\"text\": \"y\"}]}", "examples[0]"},
        {"{\"text\": \"x\", \"labels\": [\"a\", \"b\"], \"examples\": [{\"text\": \"y\", \"label\": \"c\"}]}",
         "not one of the labels"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_error("/v1/classify", cases[i].body, 0, 400, cases[i].want);
    /* a text, and a prefix, beyond the context */
    qc_buf_t big = {0};
    qc_buf_puts(&big, "{\"labels\": [\"a\", \"b\"], \"text\": \"");
    for (int i = 0; i < 3000; i++) qc_buf_puts(&big, " hello");
    qc_buf_puts(&big, "\"}");
    check_error("/v1/classify", big.p, big.n, 400, "context");
    qc_buf_free(&big);
    qc_buf_puts(&big, "{\"labels\": [\"a\", \"b\"], \"text\": \"x\", \"instruction\": \"");
    for (int i = 0; i < 3000; i++) qc_buf_puts(&big, " hello");
    qc_buf_puts(&big, "\"}");
    check_error("/v1/classify", big.p, big.n, 400, "context");
    qc_buf_free(&big);
}

/* ==== the model's urgency opinion (--risk-model on) ==== */

/* /api/analyze gives both verdicts; urgent when either says so; streamed,
 * the rules' notice comes before the `risk` event, the model's after it. */
static void test_risk(void) {
    static const char *const texts[] = {"I have crushing chest pain", "今天心情不错", "my knee hurts a bit"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char body[512], *out;
        long st;
        snprintf(body, sizeof body, "{\"text\": \"%s\", \"max_tokens\": 2}", texts[i]);
        json_t *j = post_json("/api/analyze", body, NULL, &st);
        json_t *risk = json_object_get(j, "risk");
        int rules = qc_safety_check(texts[i], strlen(texts[i])).kind != 0, model = json_is_true(json_object_get(risk, "urgent"));
        double p = json_real_value(json_object_get(risk, "probability"));
        CHECK(st == 200 && json_is_boolean(json_object_get(risk, "urgent")) && p >= 0 && p <= 1 &&
                  json_is_true(json_object_get(risk, "rules_urgent")) == rules &&
                  json_is_true(json_object_get(j, "urgent")) == (rules || model) &&
                  (json_object_get(j, "notice") != NULL) == (rules || model) && model == (p > 0.5),
              "/api/analyze with the urgency opinion (%ld): %s", st, json_dumps(j, JSON_COMPACT) ?: "");
        json_decref(j);
        snprintf(body, sizeof body, "{\"text\": \"%s\", \"max_tokens\": 2, \"stream\": true}", texts[i]);
        st = post("/api/analyze", body, NULL, &out);
        char order[64] = "";
        for (char *e = out; (e = strstr(e, "event: ")) && strlen(order) < 60; e += 7) {
            size_t k = strlen(order);
            order[k] = e[7], order[k + 1] = 0; /* e(motion) n(otice) r(isk) c(hunk) d(one) */
        }
        char want[16];
        snprintf(want, sizeof want, "%ser%s", rules ? "n" : "", model && !rules ? "n" : "");
        CHECK(st == 200 && !strncmp(order, want, strlen(want)) &&
                  (strstr(out, "\"kind\":\"model\"") != NULL) == (model && !rules) && order[strlen(order) - 1] == 'd',
              "streamed events for '%s': %s (want %s...)", texts[i], order, want);
        free(out);
    }
}

/* ==== the notice on every answer (issue 16) ==== */

/* An error answer to body: want_status, and the urgent notice of kind
 * (NULL: none at all). */
static void check_error_notice(const char *path, const char *body, size_t len, long want_status, const char *kind,
                               const char *what) {
    char *out;
    long st = http(NULL, path, body, len ? len : strlen(body), NULL, &out);
    json_t *j = json_loads(out, 0, NULL);
    const char *notice = json_string_value(json_object_get(j, "notice"));
    const char *k = json_string_value(json_object_get(j, "urgent_kind"));
    if (kind)
        CHECK(st == want_status && json_string_value(json_object_get(j, "error")) &&
                  json_is_true(json_object_get(j, "urgent")) && k && !strcmp(k, kind) &&
                  json_string_value(json_object_get(j, "presentation")) && notice &&
                  (strstr(notice, "URGENT") || strstr(notice, "紧急")),
              "%s: want %ld with the %s notice, got %ld %.300s", what, want_status, kind, st, out);
    else
        CHECK(st == want_status && json_string_value(json_object_get(j, "error")) && !json_object_get(j, "urgent") &&
                  !notice,
              "%s: want %ld without a notice, got %ld %.300s", what, want_status, st, out);
    json_decref(j);
    free(out);
}

static void test_error_notices(void) {
    /* The case: a long message (about 3,000 tokens) describing
     * crushing chest pain and a numb left arm, too long for the context. */
    qc_buf_t b = {0};
    qc_buf_puts(&b, "{\"text\": \"");
    for (int i = 0; i < 3000; i++) qc_buf_puts(&b, " hello");
    qc_buf_puts(&b, " I have crushing chest pain and my left arm is numb\"");
    size_t head = b.n;
    qc_buf_puts(&b, "}");
    check_error_notice("/api/analyze", b.p, b.n, 400, "cardiac", "too long for the context");
    check_error_notice("/api/emotion", b.p, b.n, 400, "cardiac", "/api/emotion too long");
    b.n = head;
    qc_buf_puts(&b, ", \"stream\": true}");
    check_error_notice("/api/analyze", b.p, b.n, 400, "cardiac", "streamed, too long");
    qc_buf_free(&b);
    /* a bad field beside an urgent text; a body that is not JSON at all;
     * escapes decoded in a raw body (我不想活了) */
    check_error_notice("/api/analyze", "{\"text\": \"I have crushing chest pain\", \"max_tokens\": 0}", 0, 400,
                       "cardiac", "bad max_tokens");
    check_error_notice("/api/analyze", "{\"text\": \"I have crushing chest pain\", \"session\": 3}", 0, 400, "cardiac",
                       "bad session");
    check_error_notice("/api/analyze", "{\"text\": \"I have crushing chest pain\"", 0, 400, "cardiac", "malformed JSON");
    check_error_notice("/api/emotion", "{\"text\": \"\\u6211\\u4e0d\\u60f3\\u6d3b\\u4e86\", ", 0, 400, "self-harm",
                       "\\u escapes in a malformed body");
    check_error_notice("/api/analyze", "{\"text\": \"I have crushing chest pain\", \"text\": \"hi\"}", 0, 400,
                       "cardiac", "a key twice");
    /* not urgent: the error alone */
    check_error_notice("/api/analyze", "{\"text\": \"my knee hurts a bit\", \"max_tokens\": 0}", 0, 400, NULL,
                       "an ordinary text's error");
    check_error_notice("/v1/completions", "{\"prompt\": \"I want to kill myself\", \"max_tokens\": -1}", 0, 400, NULL,
                       "/v1/completions is not a patient's message");
    /* over the body limit: the first 1 MiB is scanned */
    size_t n = (1u << 20) + 100;
    char *big = malloc(n);
    memset(big, ' ', n);
    static const char start[] = "{\"text\": \"I want to kill myself";
    memcpy(big, start, sizeof start - 1);
    memcpy(big + n - 2, "\"}", 2);
    check_error_notice("/api/analyze", big, n, 413, "self-harm", "413");
    free(big);
    /* the Content-Type rule (415) */
    sp_reply_t r;
    sp_request_t q = {.path = "/api/analyze", .body = "{\"text\": \"I want to kill myself\"}",
                      .content_type = "text/plain"};
    sp_request(srv.port, &q, &r);
    json_t *j = json_loads(r.body, 0, NULL);
    CHECK(r.status == 415 && json_is_true(json_object_get(j, "urgent")) && json_object_get(j, "notice"),
          "415 with the notice: %ld %s", r.status, r.body);
    json_decref(j);
    sp_reply_free(&r);
    long st;

    /* /v1/chat/completions: the last user message; its own fields */
    j = post_json("/v1/chat/completions",
                  "{\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}, {\"role\": \"assistant\", \"content\": "
                  "\"hi\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"I want to kill \"}, "
                  "{\"type\": \"text\", \"text\": \"myself\"}]}], \"max_tokens\": 2}",
                  NULL, &st);
    const char *notice = json_string_value(json_object_get(j, "qcare_notice"));
    CHECK(st == 200 && json_is_true(json_object_get(j, "qcare_urgent")) && notice && strstr(notice, "crisis") &&
              !strcmp(json_string_value(json_object_get(j, "qcare_urgent_kind")) ?: "", "self-harm"),
          "chat completion of an urgent message: %ld qcare_notice %s", st, notice ? notice : "(none)");
    json_decref(j);
    j = post_json("/v1/chat/completions",
                  "{\"messages\": [{\"role\": \"user\", \"content\": \"I want to kill myself\"}, {\"role\": "
                  "\"assistant\", \"content\": \"...\"}, {\"role\": \"user\", \"content\": \"thanks, I feel safe now\"}], "
                  "\"max_tokens\": 2}",
                  NULL, &st);
    CHECK(st == 200 && json_is_false(json_object_get(j, "qcare_urgent")) && !json_object_get(j, "qcare_notice"),
          "the last user message decides: %ld", st);
    json_decref(j);
    char *out;
    st = post("/v1/chat/completions",
              "{\"messages\": [{\"role\": \"user\", \"content\": \"I have crushing chest pain\"}], \"max_tokens\": 2, "
              "\"stream\": true}",
              NULL, &out);
    char *first = strstr(out, "data: "), *qn = strstr(out, "\"qcare_notice\""), *second = first ? strstr(first + 6, "data: ") : NULL;
    CHECK(st == 200 && first && qn && (!second || qn < second), "a streamed chat's first chunk carries the notice: %.400s",
          out);
    free(out);
    check_error_notice("/v1/chat/completions",
                       "{\"messages\": [{\"role\": \"user\", \"content\": \"I have crushing chest pain\"}], \"temperature\": 9}",
                       0, 400, "cardiac", "a chat's error");
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
    /* the JSON library's own messages ("'[' or '{' expected near ...") are
     * not passed on: qcare says what is wrong */
    const char *broken[] = {"{\"text\": ", "{\"text\": \"a\"} x", "[", "{\"text\": tru}", "{\"a\":1,\"a\":2}",
                            "{\"text\": \"\xff\"}", "{\"n\": 99999999999999999999}", "{\"text\": \"a\\u0000\"}"};
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        char *out;
        long st = post("/api/emotion", broken[i], NULL, &out);
        json_t *j = json_loads(out, 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "error"));
        CHECK(st == 400 && msg && strstr(msg, "malformed JSON at line") && !strstr(msg, "near") &&
                  !strstr(msg, "expected") && !strstr(msg, "JSON_"),
              "%s: an error in qcare's words: %s", broken[i], out);
        json_decref(j);
        free(out);
    }
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
    char tj[512], terr[256];
    snprintf(tj, sizeof tj, "%s/tiny-qwen2/tokenizer.json", test_env("QC_MODELS", "build/models"));
    CHECK(qc_tokenizer_load(tj, &fixture_tok, terr, sizeof terr) == QC_OK, "tokenizer: %s", terr);
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
        test_prompt_logprobs();
        test_chat_logprobs();
        test_openai_shapes();
        test_openai_bad();
        test_classify();
        test_classify_bad();
        test_bad_input();
        test_error_notices();
        test_content_type();
        test_origin();
        test_log_injection();
        stop_server();
    }
    snprintf(log, sizeof log, "%s/tests/server-risk.log", test_env("QC_BUILD", "build"));
    const char *risk_args[] = {"--risk-model", "on", NULL};
    up = sp_start(&srv, NULL, log, risk_args) == 0;
    CHECK(up, "server with --risk-model on did not start");
    if (up) {
        test_risk();
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
    qc_tokenizer_free(fixture_tok);
    curl_global_cleanup();
    return test_done("test_server");
}
