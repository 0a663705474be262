/* streams.h — N chat completions at once against a server on a loopback
 * port (qcare serve or llama-server: both speak /v1/chat/completions),
 * for the serving benchmarks (serve_bench.c, peer_bench.c). Each stream
 * asks the same kind of question with its own seed; the result is the
 * completion tokens generated per second of wall time, all streams
 * together. Needs serverproc.h and curl_global_init before the first call. */
#ifndef QC_BENCH_STREAMS_H
#define QC_BENCH_STREAMS_H

#include "serverproc.h"

#include <jansson.h>
#include <pthread.h>

#define BENCH_MAX_STREAMS 64

typedef struct {
    int port, index, max_tokens;
    long tokens;
    long status;
} bench_stream_t;

static void *bench_one_stream(void *arg) {
    bench_stream_t *s = arg;
    char body[512];
    snprintf(body, sizeof body,
             "{\"messages\": [{\"role\": \"user\", \"content\": \"Patient %d: I have had a headache for three days, "
             "what should I do?\"}], \"max_tokens\": %d, \"seed\": %d}",
             s->index, s->max_tokens, s->index + 1);
    sp_request_t q = {.path = "/v1/chat/completions", .body = body, .timeout_s = 900};
    sp_reply_t r;
    s->status = sp_request(s->port, &q, &r);
    json_t *j = json_loads(r.body, 0, NULL);
    s->tokens = (long)json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens"));
    json_decref(j);
    sp_reply_free(&r);
    return NULL;
}

/* n (<= BENCH_MAX_STREAMS) streams of max_tokens each on port at once:
 * tokens per second, all together; the tokens generated in *tokens. */
static inline double bench_streams(int port, int n, int max_tokens, long *tokens) {
    pthread_t th[BENCH_MAX_STREAMS];
    bench_stream_t s[BENCH_MAX_STREAMS];
    double t0 = qc_now_s();
    int started = 0;
    for (; started < n && started < BENCH_MAX_STREAMS; started++) {
        s[started] = (bench_stream_t){.port = port, .index = started, .max_tokens = max_tokens};
        if (pthread_create(&th[started], NULL, bench_one_stream, &s[started])) break;
    }
    *tokens = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (s[i].status != 200) fprintf(stderr, "stream %d on port %d: HTTP %ld\n", i, port, s[i].status);
        *tokens += s[i].tokens;
    }
    return *tokens / (qc_now_s() - t0);
}

#endif
