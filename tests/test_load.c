/* test_load.c — `qcare serve` under load: QC_LOAD_CLIENTS client threads
 * (default 32) send a fixed, seeded mix of requests for QC_LOAD_SECONDS
 * (default 60) to the real server (fixture model tiny-qwen2) started with
 * QC_LOAD_ARGS (default "--parallel 4 --queue 8"; set but empty: none).
 *
 * Every request must be answered: 200 with a well-formed body (JSON that
 * parses; an event stream that ends with `event: done` or `data: [DONE]`),
 * 503 with Retry-After when the queue is full (the client then backs off
 * 50-200 ms), or 400 for the malformed bodies of the mix. Streams that the
 * client hangs up on mid-way count as abandoned. Anything else — a transport
 * error, a timeout (120 s), a 500, a truncated 200 — is lost, and one lost
 * request fails the test. At the end the server must still answer, its
 * resident memory must have grown at most QC_LOAD_RSS_MIB (256) MiB past the
 * sample taken after a 5 s warm-up, and it must exit 0 within 30 s of
 * SIGTERM (the debug build exits non-zero on a sanitizer or leak report).
 *
 * QC_LOAD_SEED picks the mix (default 1); QC_SERVER_SHOW=1 prints the
 * server's log. */
#include "serverproc.h"
#include "test.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define MAX_CLIENTS 1024
#define MAX_LOST_SHOWN 10
#define MAX_ARGS 32
#define TURNS_PER_SESSION 3 /* streamed /api/analyze turns of one conversation */
#define WARMUP_S 5.0        /* the RSS baseline is taken this long after the load starts */

/* ==== the mix ==== */

typedef enum {
    K_ANALYZE,        /* POST /api/analyze, JSON */
    K_ANALYZE_STREAM, /* POST /api/analyze, streamed, in a session */
    K_EMOTION,        /* POST /api/emotion */
    K_CHAT,           /* POST /v1/chat/completions, JSON */
    K_CHAT_STREAM,    /* POST /v1/chat/completions, streamed */
    K_HEALTH,         /* GET /health */
    K_METRICS,        /* GET /metrics (Prometheus text; 404 accepted until it exists) */
    K_MALFORMED,      /* a bad body: must get 400 */
    K_ABANDON,        /* a stream the client hangs up on */
    K_N
} kind_t;

static const struct {
    const char *name;
    int weight; /* out of the sum of all weights */
} kinds[K_N] = {
    [K_ANALYZE] = {"analyze", 14},
    [K_ANALYZE_STREAM] = {"analyze-stream", 14},
    [K_EMOTION] = {"emotion", 14},
    [K_CHAT] = {"chat", 12},
    [K_CHAT_STREAM] = {"chat-stream", 12},
    [K_HEALTH] = {"health", 8},
    [K_METRICS] = {"metrics", 6},
    [K_MALFORMED] = {"malformed", 10},
    [K_ABANDON] = {"abandon", 10},
};

static const char *const texts[] = {
    "I feel so anxious about my surgery tomorrow.",
    "Thank you, the new medicine is helping a lot!",
    "I have crushing chest pain and my left arm is numb",
    "My back has been aching for two weeks, what should I do?",
    "Can I take ibuprofen together with my blood pressure pills?",
    "医生，我最近总是失眠，白天头疼，有点担心。",
    "今天心情不错，谢谢你们的照顾。",
    "我的孩子发烧三天了，我很着急。",
    "吃完药以后胃有点不舒服。",
    "我一个人住，常常觉得很孤单。",
};
#define N_TEXTS (int)(sizeof texts / sizeof texts[0])
#define URGENT_TEXT 2 /* must come back urgent */

/* Bodies that must get 400 with {"error": ...}. */
static const struct {
    const char *path, *body;
} malformed[] = {
    {"/api/emotion", "{\"text\": "},
    {"/api/emotion", "{\"text\": \"\xff\xfe\"}"},
    {"/api/emotion", "{\"txt\": \"hi\"}"},
    {"/api/analyze", "[1, 2]"},
    {"/api/analyze", "{}"},
    {"/api/analyze", "{\"text\": \"hi\", \"max_tokens\": 0}"},
    {"/api/analyze", "{\"text\": \"hi\", \"stream\": 1}"},
    {"/api/analyze", "{\"text\": \"hi\", \"stream\": true, \"session\": \"\"}"},
    {"/v1/chat/completions", "{\"messages\": []}"},
    {"/v1/chat/completions", "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}"},
    {"/v1/chat/completions",
     "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": true, \"temperature\": 9}"},
};
#define N_MALFORMED (int)(sizeof malformed / sizeof malformed[0])

/* ==== outcomes ==== */

typedef enum { O_OK, O_400, O_404, O_503, O_ABANDONED, O_LOST, O_N } outcome_t;
static const char *const outcome_names[O_N] = {"200", "400", "404", "503", "abandoned", "lost"};

typedef struct {
    long n[O_N];
    double sum_s, max_s; /* latency of the answered requests, seconds */
    long tokens;         /* reply tokens the server reported (usage, done.chunks) */
} kstats_t;

typedef struct {
    int id;
    uint64_t rng;
    int n_session_turns;
    kstats_t st[K_N];
    long by_status[600]; /* index: HTTP status (0: no answer) */
} client_t;

static struct {
    int port;
    double t_end;
    atomic_long lost;
    pthread_mutex_t mu; /* guards lost_shown */
    char lost_shown[MAX_LOST_SHOWN][1024];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int rng_below(uint64_t *s, int n) { return (int)(rng_next(s) % (uint64_t)n); }

static kind_t pick_kind(client_t *c) {
    int total = 0;
    for (int k = 0; k < K_N; k++) total += kinds[k].weight;
    int x = rng_below(&c->rng, total);
    for (int k = 0; k < K_N; k++) {
        if (x < kinds[k].weight) return (kind_t)k;
        x -= kinds[k].weight;
    }
    return K_HEALTH;
}

/* Records one lost request: printed now when among the first few. */
static void lost(client_t *c, kind_t k, const sp_request_t *q, const sp_reply_t *r, const char *why) {
    long n = atomic_fetch_add(&g.lost, 1);
    if (n >= MAX_LOST_SHOWN) return;
    pthread_mutex_lock(&g.mu);
    snprintf(g.lost_shown[n], sizeof g.lost_shown[n],
             "client %d, %s %s %.120s: %s (status %ld, curl %d '%s', %.2f s, %zu bytes: %.300s)", c->id,
             kinds[k].name, q->path, q->body ? q->body : "", why, r->status, (int)r->rc, r->error, r->seconds, r->len,
             r->body ? r->body : "");
    pthread_mutex_unlock(&g.mu);
}

/* ==== checking the answers ==== */

static int is_label(json_t *v) {
    const char *s = json_string_value(v);
    return s && (!strcmp(s, "positive") || !strcmp(s, "negative") || !strcmp(s, "neutral"));
}

/* A {"error": "..."} body. */
static int is_error_json(const char *body) {
    json_t *j = json_loads(body, 0, NULL);
    int ok = json_is_string(json_object_get(j, "error"));
    json_decref(j);
    return ok;
}

/* /api/analyze as JSON; NULL when well-formed, else what is wrong. */
static const char *check_analyze(const char *body, int urgent, const char *session) {
    json_t *j = json_loads(body, 0, NULL);
    const char *why = NULL;
    if (!j) why = "not JSON";
    else if (!is_label(json_object_get(json_object_get(j, "emotion"), "label"))) why = "no emotion.label";
    else if (!json_is_string(json_object_get(j, "reply"))) why = "no reply";
    else if (urgent && (!json_is_true(json_object_get(j, "urgent")) || !json_is_string(json_object_get(j, "notice"))))
        why = "the urgent message is not flagged urgent with a notice";
    else if (session && strcmp(json_string_value(json_object_get(j, "session")) ?: "", session)) why = "wrong session";
    json_decref(j);
    return why;
}

static const char *check_emotion(const char *body, int urgent) {
    json_t *j = json_loads(body, 0, NULL);
    const char *why = NULL;
    if (!j) why = "not JSON";
    else if (!is_label(json_object_get(j, "label")) || !json_is_object(json_object_get(j, "probs"))) why = "no label/probs";
    else if (urgent && !json_is_true(json_object_get(j, "urgent"))) why = "the urgent message is not flagged urgent";
    json_decref(j);
    return why;
}

static const char *check_chat(const char *body, long *tokens) {
    json_t *j = json_loads(body, 0, NULL);
    const char *why = NULL;
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    json_t *ct = json_object_get(json_object_get(j, "usage"), "completion_tokens");
    if (!j) why = "not JSON";
    else if (strcmp(json_string_value(json_object_get(j, "object")) ?: "", "chat.completion")) why = "object is not chat.completion";
    else if (!json_is_string(json_object_get(json_object_get(ch, "message"), "content"))) why = "no message.content";
    else if (!json_is_integer(ct) || json_integer_value(ct) < 0 || json_integer_value(ct) > 16) why = "bad usage.completion_tokens";
    else *tokens += (long)json_integer_value(ct);
    json_decref(j);
    return why;
}

/* The events of a streamed /api/analyze: [notice], emotion, chunk*, done
 * (the rules' notice comes before anything else) —
 * each "event: NAME\ndata: JSON\n\n", the stream ending right after done.
 * Abandoned (a cut stream): only the whole events before the cut count. */
static const char *check_analyze_sse(char *body, int urgent, int abandoned, long *tokens) {
    char order[8] = "";
    size_t n = 0;
    for (char *blk = body; *blk;) {
        char *end = strstr(blk, "\n\n");
        if (!end) return abandoned ? NULL : "the stream does not end with a whole event";
        *end = 0;
        if (strncmp(blk, "event: ", 7)) return "an event without its name line";
        char *data = strstr(blk, "\ndata: ");
        if (!data) return "an event without data";
        *data = 0;
        const char *name = blk + 7;
        json_t *j = json_loads(data + 7, 0, NULL);
        if (!j) return "an event whose data is not JSON";
        char c = !strcmp(name, "emotion") ? 'e' : !strcmp(name, "notice") ? 'n' : !strcmp(name, "chunk") ? 'c'
                 : !strcmp(name, "done") ? 'd' : 'x';
        if (c == 'd' && json_is_integer(json_object_get(j, "chunks")))
            *tokens += (long)json_integer_value(json_object_get(j, "chunks"));
        json_decref(j);
        if (c == 'x') return "an unexpected event (error?)";
        /* The order, with runs of chunks folded into one 'c'. */
        if (!(c == 'c' && n && order[n - 1] == 'c')) {
            if (n + 1 >= sizeof order) return "too many kinds of events";
            order[n++] = c;
            order[n] = 0;
        }
        blk = end + 2;
    }
    if (abandoned) return NULL;
    const char *want = urgent ? "necd" : "ecd", *want_empty = urgent ? "ned" : "ed";
    if (strcmp(order, want) && strcmp(order, want_empty)) return urgent ? "events are not notice, emotion, chunk*, done"
                                                                        : "events are not emotion, chunk*, done";
    return NULL;
}

/* The lines of a streamed completion: "data: JSON" chunks, then "data: [DONE]". */
static const char *check_chat_sse(char *body, int abandoned, long *tokens) {
    int done = 0, chunks = 0;
    for (char *line = body; *line;) {
        char *end = strchr(line, '\n');
        if (!end) return abandoned ? NULL : "a cut line at the end";
        *end = 0;
        if (*line) {
            if (done) return "data after [DONE]";
            if (strncmp(line, "data: ", 6)) return "a line that is not data";
            if (!strcmp(line + 6, "[DONE]")) {
                done = 1;
            } else {
                json_t *j = json_loads(line + 6, 0, NULL);
                if (!j) return "a data line that is not JSON";
                int ok = !strcmp(json_string_value(json_object_get(j, "object")) ?: "", "chat.completion.chunk");
                json_t *ct = json_object_get(json_object_get(j, "usage"), "completion_tokens");
                if (json_is_integer(ct)) *tokens += (long)json_integer_value(ct);
                json_decref(j);
                if (!ok) return "a chunk that is not chat.completion.chunk (an error?)";
                chunks++;
            }
        }
        line = end + 1;
    }
    if (abandoned) return NULL;
    if (!done) return "no data: [DONE]";
    if (chunks < 2) return "fewer than two chunks (role and finish)";
    return NULL;
}

/* Prometheus text: "# ..." comments and "name[{labels}] value" samples. */
static const char *check_metrics(const char *body) {
    int samples = 0;
    for (const char *line = body; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) return "the last line is not ended";
        if (end > line && *line != '#') {
            const char *sp = memchr(line, ' ', (size_t)(end - line));
            const char *br = memchr(line, '}', (size_t)(end - line));
            if (br && (!sp || br > sp)) sp = memchr(br, ' ', (size_t)(end - br));
            char *num_end;
            if (!sp) return "a sample without a value";
            strtod(sp + 1, &num_end);
            if (num_end == sp + 1) return "a sample whose value is not a number";
            samples++;
        }
        line = end + 1;
    }
    return samples ? NULL : "no samples";
}

/* ==== one client ==== */

static char *dumps(json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

static json_t *chat_body(const char *text, int stream, int max_tokens, double temperature) {
    return json_pack("{s:[{s:s, s:s}, {s:s, s:s}], s:i, s:f, s:b}", "messages", "role", "system", "content",
                     "You are a caring assistant.", "role", "user", "content", text, "max_tokens", max_tokens,
                     "temperature", temperature, "stream", stream);
}

/* One request of kind k: sends it, judges the answer, counts it. Returns
 * the outcome. */
static outcome_t one_request(client_t *c, kind_t k) {
    int ti = rng_below(&c->rng, N_TEXTS), urgent = ti == URGENT_TEXT;
    const char *text = texts[ti];
    char session[64] = "";
    char *body = NULL;
    sp_request_t q = {.timeout_s = 120};
    switch (k) {
    case K_ANALYZE:
        q.path = "/api/analyze";
        body = dumps(json_pack("{s:s, s:i}", "text", text, "max_tokens", 16));
        break;
    case K_ANALYZE_STREAM:
        q.path = "/api/analyze";
        snprintf(session, sizeof session, "load-%d-%d", c->id, c->n_session_turns / TURNS_PER_SESSION);
        body = dumps(json_pack("{s:s, s:i, s:b, s:s}", "text", text, "max_tokens", 16, "stream", 1, "session", session));
        break;
    case K_EMOTION:
        q.path = "/api/emotion";
        body = dumps(json_pack("{s:s}", "text", text));
        break;
    case K_CHAT:
    case K_CHAT_STREAM:
        q.path = "/v1/chat/completions";
        body = dumps(chat_body(text, k == K_CHAT_STREAM, 16, rng_below(&c->rng, 2) ? 0.7 : 0.0));
        break;
    case K_HEALTH: q.path = "/health"; break;
    case K_METRICS: q.path = "/metrics"; break;
    case K_MALFORMED: {
        int m = rng_below(&c->rng, N_MALFORMED);
        q.path = malformed[m].path;
        body = strdup(malformed[m].body);
        break;
    }
    default: /* K_ABANDON: a long reply the client leaves at its first bytes or its first token */
        if (rng_below(&c->rng, 2)) {
            q.path = "/api/analyze";
            q.abort_at = rng_below(&c->rng, 2) ? "event: chunk" : "";
            body = dumps(json_pack("{s:s, s:i, s:b}", "text", text, "max_tokens", 256, "stream", 1));
        } else {
            q.path = "/v1/chat/completions";
            q.abort_at = "";
            body = dumps(chat_body(text, 1, 256, 0.7));
        }
        break;
    }
    q.body = body;
    if (k != K_HEALTH && k != K_METRICS && !body) {
        fprintf(stderr, "test_load: out of memory\n");
        abort();
    }
    sp_reply_t r;
    sp_request(g.port, &q, &r);
    kstats_t *s = &c->st[k];
    c->by_status[r.status >= 0 && r.status < 600 ? r.status : 0]++;
    const char *why = NULL;
    outcome_t o = O_LOST;
    long tokens = 0;
    if (r.rc != CURLE_OK && !r.abandoned) {
        why = r.rc == CURLE_OPERATION_TIMEDOUT ? "timed out" : "transport error";
    } else if (r.status == 503) {
        if (!r.retry_after[0] || atoi(r.retry_after) < 0) why = "503 without Retry-After";
        else if (!is_error_json(r.body)) why = "503 without a JSON error";
        else o = O_503;
    } else if (k == K_MALFORMED) {
        if (r.status != 400) why = "a malformed body not answered 400";
        else if (!is_error_json(r.body)) why = "400 without a JSON error";
        else o = O_400;
    } else if (k == K_METRICS && r.status == 404) {
        o = O_404;
    } else if (r.status != 200) {
        why = "unexpected status";
    } else {
        switch (k) {
        case K_ANALYZE: why = check_analyze(r.body, urgent, NULL); break;
        case K_ANALYZE_STREAM: why = check_analyze_sse(r.body, urgent, 0, &tokens); break;
        case K_EMOTION: why = check_emotion(r.body, urgent); break;
        case K_CHAT: why = check_chat(r.body, &tokens); break;
        case K_CHAT_STREAM: why = check_chat_sse(r.body, 0, &tokens); break;
        case K_HEALTH: why = strcmp(r.body, "{\"status\":\"ok\"}") ? "not {\"status\":\"ok\"}" : NULL; break;
        case K_METRICS: why = check_metrics(r.body); break;
        default: /* K_ABANDON: what came before the hang-up must be well-formed too */
            why = !strcmp(q.path, "/api/analyze") ? check_analyze_sse(r.body, urgent, r.abandoned, &tokens)
                                                  : check_chat_sse(r.body, r.abandoned, &tokens);
            break;
        }
        if (!why) o = r.abandoned ? O_ABANDONED : O_OK;
    }
    if (o == O_LOST) lost(c, k, &q, &r, why);
    /* A turn that got 503 is retried in the same conversation. */
    if (k == K_ANALYZE_STREAM && o == O_OK) c->n_session_turns++;
    s->n[o]++;
    s->tokens += tokens;
    if (o != O_LOST) {
        s->sum_s += r.seconds;
        if (r.seconds > s->max_s) s->max_s = r.seconds;
    }
    sp_reply_free(&r);
    free(body);
    return o;
}

static void *client_main(void *arg) {
    client_t *c = arg;
    while (qc_now_s() < g.t_end)
        if (one_request(c, pick_kind(c)) == O_503) usleep((useconds_t)(50000 + rng_below(&c->rng, 150001)));
    return NULL;
}

/* ==== main ==== */

/* Splits s at spaces into out (at most max - 1 words, then NULL); the
 * words point into s. Returns the count. */
static int split_args(char *s, const char **out, int max) {
    int n = 0;
    for (char *w = strtok(s, " \t"); w && n + 1 < max; w = strtok(NULL, " \t")) out[n++] = w;
    out[n] = NULL;
    return n;
}

static void print_log_tail(const char *text, size_t lines) {
    if (!text) return;
    const char *p = text + strlen(text);
    for (size_t n = 0; p > text && n <= lines; p--)
        if (p[-1] == '\n') n++;
    fprintf(stderr, "---- server log (end) ----\n%s----\n", p);
}

int main(void) {
    double seconds = atof(test_env("QC_LOAD_SECONDS", "60"));
    int n_clients = atoi(test_env("QC_LOAD_CLIENTS", "32"));
    uint64_t seed = strtoull(test_env("QC_LOAD_SEED", "1"), NULL, 10);
    long rss_slack_mib = atol(test_env("QC_LOAD_RSS_MIB", "256"));
    /* Set but empty means no extra arguments (a server without --parallel). */
    const char *extra = getenv("QC_LOAD_ARGS");
    char extra_buf[1024];
    snprintf(extra_buf, sizeof extra_buf, "%s", extra ? extra : "--parallel 4 --queue 8");
    if (seconds <= 0 || n_clients < 1 || n_clients > MAX_CLIENTS) {
        fprintf(stderr, "test_load: QC_LOAD_SECONDS must be > 0 and QC_LOAD_CLIENTS in [1, %d]\n", MAX_CLIENTS);
        return 2;
    }
    const char *args[MAX_ARGS] = {"--quiet"};
    split_args(extra_buf, args + 1, MAX_ARGS - 1);

    curl_global_init(CURL_GLOBAL_ALL);
    char log[512];
    snprintf(log, sizeof log, "%s/tests/load-server.log", test_env("QC_BUILD", "build"));
    sp_server_t srv;
    printf("test_load: %d clients for %.0f s, server args:", n_clients, seconds);
    for (int i = 0; args[i]; i++) printf(" %s", args[i]);
    printf(" (log %s)\n", log);
    if (sp_start(&srv, "tiny-qwen2", log, args)) {
        char *text = test_slurp(log, NULL);
        CHECK(0, "the server did not start:\n%s", text ? text : "(no log)");
        free(text);
        curl_global_cleanup();
        return test_done("test_load");
    }
    g.port = srv.port;
    long rss_start = sp_rss_kib(srv.pid);

    client_t *cl = calloc((size_t)n_clients, sizeof *cl);
    pthread_t *th = calloc((size_t)n_clients, sizeof *th);
    if (!cl || !th) return 2;
    double t0 = qc_now_s();
    g.t_end = t0 + seconds;
    int started = 0;
    for (int i = 0; i < n_clients; i++) {
        cl[i].id = i;
        cl[i].rng = seed * 0x100000001B3ull + (uint64_t)i;
        if (pthread_create(&th[i], NULL, client_main, &cl[i])) break;
        started++;
    }
    CHECK(started == n_clients, "started %d of %d client threads", started, n_clients);

    /* RSS: the baseline after the warm-up, the peak on the way. */
    double warm_at = seconds > 2 * WARMUP_S ? WARMUP_S : seconds / 2;
    long rss_warm = -1, rss_peak = rss_start;
    for (double t; (t = qc_now_s() - t0) < seconds;) {
        long r = sp_rss_kib(srv.pid);
        if (r > rss_peak) rss_peak = r;
        if (rss_warm < 0 && t >= warm_at) rss_warm = r;
        usleep(200000);
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    double wall = qc_now_s() - t0;
    long rss_end = sp_rss_kib(srv.pid);
    if (rss_end > rss_peak) rss_peak = rss_end;
    if (rss_warm < 0) rss_warm = rss_end;

    /* ---- the numbers ---- */
    kstats_t tot[K_N] = {0};
    long by_status[600] = {0}, all = 0, n_ok = 0, n_model_ok = 0;
    for (int i = 0; i < started; i++) {
        for (int k = 0; k < K_N; k++) {
            for (int o = 0; o < O_N; o++) tot[k].n[o] += cl[i].st[k].n[o];
            tot[k].sum_s += cl[i].st[k].sum_s;
            tot[k].tokens += cl[i].st[k].tokens;
            if (cl[i].st[k].max_s > tot[k].max_s) tot[k].max_s = cl[i].st[k].max_s;
        }
        for (int s = 0; s < 600; s++) by_status[s] += cl[i].by_status[s];
    }
    printf("%-15s", "kind");
    for (int o = 0; o < O_N; o++) printf(" %9s", outcome_names[o]);
    printf(" %8s %8s %7s\n", "avg s", "max s", "tokens");
    for (int k = 0; k < K_N; k++) {
        long n = 0;
        printf("%-15s", kinds[k].name);
        for (int o = 0; o < O_N; o++) {
            printf(" %9ld", tot[k].n[o]);
            n += tot[k].n[o];
        }
        long answered = n - tot[k].n[O_LOST];
        printf(" %8.3f %8.3f %7ld\n", answered ? tot[k].sum_s / (double)answered : 0.0, tot[k].max_s, tot[k].tokens);
        all += n;
        n_ok += tot[k].n[O_OK];
        if (k <= K_CHAT_STREAM) n_model_ok += tot[k].n[O_OK];
    }
    printf("HTTP statuses:");
    for (int s = 0; s < 600; s++)
        if (by_status[s]) printf(" %d:%ld", s, by_status[s]);
    printf(" (0 = no status: transport error or hung up before the headers)\n");
    long n_lost = atomic_load(&g.lost), tokens = 0;
    for (int k = 0; k < K_N; k++) tokens += tot[k].tokens;
    printf("%ld requests in %.1f s (%.1f/s), %ld reply tokens reported (%.1f/s), %ld lost\n", all, wall,
           (double)all / wall, tokens, (double)tokens / wall, n_lost);
    printf("server RSS: start %.1f MiB, after %.0f s warm-up %.1f MiB, peak %.1f MiB, end %.1f MiB\n",
           rss_start / 1024.0, warm_at, rss_warm / 1024.0, rss_peak / 1024.0, rss_end / 1024.0);

    /* ---- the checks ---- */
    for (long i = 0; i < n_lost && i < MAX_LOST_SHOWN; i++) CHECK(0, "lost: %s", g.lost_shown[i]);
    CHECK(n_lost == 0, "%ld of %ld requests lost (the first %d shown above)", n_lost, all, MAX_LOST_SHOWN);
    CHECK(n_ok > 0 && n_model_ok > 0, "no 200 answers (%ld in all, %ld from the model endpoints)", n_ok, n_model_ok);
    CHECK(rss_warm > 0 && rss_end > 0 && rss_end <= rss_warm + rss_slack_mib * 1024,
          "server RSS grew from %ld KiB (after the warm-up) to %ld KiB: more than %ld MiB", rss_warm, rss_end,
          rss_slack_mib);

    /* Still serving, the model included, once the load is gone. */
    sp_reply_t r;
    long st = sp_http(&srv, NULL, "/health", NULL, 0, NULL, &r);
    CHECK(st == 200 && !strcmp(r.body, "{\"status\":\"ok\"}"), "/health after the load: %ld %s (%s)", st, r.body,
          r.error);
    sp_reply_free(&r);
    st = sp_http(&srv, NULL, "/api/emotion", "{\"text\": \"Are you still there?\"}", 0, NULL, &r);
    CHECK(st == 200 && !check_emotion(r.body, 0), "/api/emotion after the load: %ld %s (%s)", st, r.body, r.error);
    sp_reply_free(&r);

    int status = 0;
    double t_stop = qc_now_s();
    int stopped = sp_stop(&srv, 30, &status);
    char *text = test_slurp(log, NULL);
    CHECK(stopped == 0, "the server did not exit within 30 s of SIGTERM (killed)");
    CHECK(stopped != 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
          "the server exited with status %d (signal %d) after SIGTERM", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    CHECK(!sp_log_has_sanitizer_report(text), "a sanitizer report in the server log %s", log);
    printf("server stopped in %.2f s\n", qc_now_s() - t_stop);
    if (test_failed) print_log_tail(text, 60);
    if (getenv("QC_SERVER_SHOW")) fprintf(stderr, "%s", text ? text : "");
    free(text);
    free(cl);
    free(th);
    curl_global_cleanup();
    return test_done("test_load");
}
