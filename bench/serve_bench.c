/* serve_bench.c — aggregate decode speed of `qcare serve` with 1, 4 and 8
 * concurrent streams (continuous batching), on the bench model (the shapes
 * of Qwen1.5-0.5B, random weights).
 *
 *   make build/serve_bench && build/serve_bench [DTYPE] [TOKENS]
 *
 * Starts the server (--parallel 8, 2 threads), then for each stream count N
 * sends N chat completions at once (max_tokens TOKENS, default 128) and
 * reports the tokens generated per second of wall time, all streams
 * together (prompts, emotion-free chat completions, included), and the
 * speed-up over one stream; then the same for the passes that only decoded
 * (from the server's /metrics: qcare_decode_only_*), the rate once every
 * stream is past its prompt. Needs build/bench/bench-qwen1.5-0.5b
 * (bench/run.sh generates it). */
#include "serverproc.h"

#include <jansson.h>
#include <pthread.h>

static sp_server_t srv;
static int max_tokens = 128;

typedef struct {
    int index;
    long tokens;
    long status;
} stream_t;

static void *one_stream(void *arg) {
    stream_t *s = arg;
    char body[512];
    snprintf(body, sizeof body,
             "{\"messages\": [{\"role\": \"user\", \"content\": \"Patient %d: I have had a headache for three days, "
             "what should I do?\"}], \"max_tokens\": %d, \"seed\": %d}",
             s->index, max_tokens, s->index + 1);
    sp_request_t q = {.path = "/v1/chat/completions", .body = body, .timeout_s = 600};
    sp_reply_t r;
    s->status = sp_request(srv.port, &q, &r);
    json_t *j = json_loads(r.body, 0, NULL);
    s->tokens = (long)json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens"));
    json_decref(j);
    sp_reply_free(&r);
    return NULL;
}

/* A counter from /metrics. */
static double metric(const char *name) {
    sp_reply_t r;
    double v = sp_http(&srv, NULL, "/metrics", NULL, 0, NULL, &r) == 200 ? sp_metric(r.body, name) : -1;
    sp_reply_free(&r);
    return v;
}

/* N streams at once: generated tokens per second, all together. */
static double run(int n, long *tokens) {
    pthread_t th[8];
    stream_t s[8];
    double t0 = qc_now_s();
    for (int i = 0; i < n; i++) {
        s[i] = (stream_t){.index = i};
        pthread_create(&th[i], NULL, one_stream, &s[i]);
    }
    *tokens = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (s[i].status != 200) fprintf(stderr, "stream %d: HTTP %ld\n", i, s[i].status);
        *tokens += s[i].tokens;
    }
    return *tokens / (qc_now_s() - t0);
}

int main(int argc, char **argv) {
    const char *dtype = argc > 1 ? argv[1] : "q8_0";
    if (argc > 2) max_tokens = atoi(argv[2]);
    setenv("QC_MODELS", "build/bench", 0);
    curl_global_init(CURL_GLOBAL_ALL);
    if (sp_start(&srv, "bench-qwen1.5-0.5b", "build/bench/serve_bench.log",
                 (const char *[]){"--dtype", dtype, "--parallel", "8", "--quiet", NULL})) {
        fprintf(stderr, "serve_bench: the server did not start (see build/bench/serve_bench.log)\n");
        return 1;
    }
    long tok;
    run(1, &tok); /* warm-up */
    double base = 0, dbase = 0;
    printf("| concurrent streams | tokens | aggregate t/s, end to end | vs 1 stream | decode-only passes t/s | vs 1 "
           "stream |\n|---|---|---|---|---|---|\n");
    int counts[] = {1, 4, 8};
    for (int k = 0; k < 3; k++) {
        double s0 = metric("qcare_decode_only_seconds_total"), t0 = metric("qcare_decode_only_tokens_total");
        double tps = run(counts[k], &tok);
        double dtps = (metric("qcare_decode_only_tokens_total") - t0) / (metric("qcare_decode_only_seconds_total") - s0);
        if (k == 0) base = tps, dbase = dtps;
        printf("| %d | %ld | %.1f | %.2fx | %.1f | %.2fx |\n", counts[k], tok, tps, tps / base, dtps, dtps / dbase);
        fflush(stdout);
    }
    printf("\n%s weights, %d tokens per stream, --parallel 8, 2 threads\n", dtype, max_tokens);
    sp_stop(&srv, 30, NULL);
    curl_global_cleanup();
    return 0;
}
