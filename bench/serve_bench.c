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
 * (bench/run.sh generates it).
 *
 *   build/serve_bench --records [--model NAME] [--dtype T] [--clients N] [--turns N]
 *                     [--rounds N] [--tokens N]
 *
 * What the consultation records cost a turn: two servers on the same
 * model, one with --no-records, one writing a fresh store, both idle but
 * for the round being measured; rounds alternate between them (off, on,
 * off, on, ...) so a drift of the machine's speed hits both alike. Each
 * round, N clients (default 4, --parallel 4) send TURNS turns each
 * (default 8) of /api/analyze in their own sessions, plain and streamed in
 * turn, TOKENS reply tokens each (default 32). Per server: the turn
 * latency p50/p95 as the clients see it, turns and tokens per second of
 * wall time; and, from the recording server's /metrics, the commit wait
 * (qcare_records_commit_seconds: what the records add before an answer
 * may end) and the CPU time of the store's writer thread per turn
 * (qcare_records_writer_cpu_seconds_total: what they cost, whatever the
 * machine's load). */
#include "streams.h"

#include <jansson.h>
#include <pthread.h>

static sp_server_t srv;
static int max_tokens = 128;

/* A counter from the /metrics of s. */
static double metric_of(const sp_server_t *s, const char *name) {
    sp_reply_t r;
    double v = sp_http(s, NULL, "/metrics", NULL, 0, "bench", &r) == 200 ? sp_metric(r.body, name) : -1;
    sp_reply_free(&r);
    return v;
}

static double metric(const char *name) { return metric_of(&srv, name); }

/* N streams at once: generated tokens per second, all together. */
static double run(int n, long *tokens) { return bench_streams(srv.port, n, max_tokens, tokens); }

/* ==== records on and off ==== */

typedef struct {
    int port, id, turns, tokens, round;
    double *lat; /* [turns] seconds */
    long ok, reply_tokens;
} rclient_t;

static void *rclient(void *arg) {
    rclient_t *c = arg;
    for (int k = 0; k < c->turns; k++) {
        char body[512];
        int stream = (k + c->id) % 2;
        snprintf(body, sizeof body,
                 "{\"text\": \"Patient %d, visit %d: my headache has lasted %d days and I am worried.\", "
                 "\"session\": \"bench-%d-%d\", \"max_tokens\": %d, \"stream\": %s}",
                 c->id, k, k + 2, c->round, c->id, c->tokens, stream ? "true" : "false");
        sp_request_t q = {.path = "/api/analyze", .body = body, .timeout_s = 600};
        sp_reply_t r;
        double t0 = qc_now_s();
        long st = sp_request(c->port, &q, &r);
        c->lat[k] = qc_now_s() - t0;
        if (st == 200 && (!stream || strstr(r.body, "event: done"))) c->ok++;
        else fprintf(stderr, "turn %d of client %d: HTTP %ld %.200s\n", k, c->id, st, r.body);
        sp_reply_free(&r);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of a histogram on /metrics (linear within its bucket). */
static double hist_quantile(const char *text, const char *name, double q) {
    static const char *les[] = {"0.0005", "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "1", "5", "+Inf"};
    char key[160];
    snprintf(key, sizeof key, "%s_count", name);
    double n = sp_metric(text, key), prev_le = 0, prev_c = 0;
    for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
        snprintf(key, sizeof key, "%s_bucket{le=\"%s\"}", name, les[i]);
        double c = sp_metric(text, key), le = strcmp(les[i], "+Inf") ? atof(les[i]) : prev_le;
        if (c >= q * n && c > prev_c) return prev_le + (le - prev_le) * (q * n - prev_c) / (c - prev_c);
        prev_le = le, prev_c = c;
    }
    return prev_le;
}

static int records_bench(int argc, char **argv) {
    const char *model = "bench-qwen1.5-0.5b", *dtype = "q8_0";
    int clients = 4, turns = 8, rounds = 3, tokens = 32;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--dtype")) dtype = argv[i + 1];
        else if (!strcmp(argv[i], "--clients")) clients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--turns")) turns = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens")) tokens = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "serve_bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (clients < 1 || clients > 64 || turns < 1 || rounds < 1 || tokens < 1) {
        fprintf(stderr, "serve_bench: --clients 1..64, --turns, --rounds, --tokens >= 1\n");
        return 2;
    }
    if (strncmp(model, "bench", 5)) setenv("QC_MODELS", "build/models", 1);
    char db[] = "/tmp/qc-serve-bench-XXXXXX", store[64];
    if (!mkdtemp(db)) return perror("mkdtemp"), 1;
    snprintf(store, sizeof store, "%s/records.db", db);
    sp_server_t srv2[2];
    const char *names[2] = {"records off", "records on"};
    char par[16];
    snprintf(par, sizeof par, "%d", clients);
    const char *off_args[] = {"--dtype", dtype, "--parallel", par, "--quiet", "--no-records", "--admin-key", "bench", NULL};
    const char *on_args[] = {"--dtype", dtype, "--parallel", par, "--quiet", "--records", store, "--admin-key", "bench", NULL};
    if (sp_start(&srv2[0], model, "build/bench/serve_bench-off.log", off_args) ||
        sp_start(&srv2[1], model, "build/bench/serve_bench-on.log", on_args)) {
        fprintf(stderr, "serve_bench: a server did not start (see build/bench/serve_bench-*.log)\n");
        return 1;
    }
    size_t n_lat = (size_t)rounds * (size_t)clients * (size_t)turns;
    double *lat[2] = {calloc(n_lat, sizeof(double)), calloc(n_lat, sizeof(double))}, wall[2] = {0}, toks[2] = {0};
    long ok[2] = {0};
    size_t at[2] = {0};
    rclient_t c[64];
    pthread_t th[64];
    for (int warm = 0; warm < 2; warm++) { /* one turn each first: page faults, first allocations */
        double ignored;
        c[0] = (rclient_t){.port = srv2[warm].port, .id = 99, .turns = 1, .tokens = tokens, .round = -1, .lat = &ignored};
        rclient(&c[0]);
    }
    for (int round = 0; round < 2 * rounds; round++) {
        int w = round % 2;
        double g0 = metric_of(&srv2[w], "qcare_generated_tokens_total"), t0 = qc_now_s();
        for (int i = 0; i < clients; i++) {
            c[i] = (rclient_t){.port = srv2[w].port, .id = i, .turns = turns, .tokens = tokens, .round = round,
                               .lat = lat[w] + at[w] + (size_t)i * (size_t)turns};
            pthread_create(&th[i], NULL, rclient, &c[i]);
        }
        for (int i = 0; i < clients; i++) {
            pthread_join(th[i], NULL);
            ok[w] += c[i].ok;
        }
        wall[w] += qc_now_s() - t0;
        toks[w] += metric_of(&srv2[w], "qcare_generated_tokens_total") - g0;
        at[w] += (size_t)clients * (size_t)turns;
        fprintf(stderr, "round %d (%s): %.1f s\n", round + 1, names[w], qc_now_s() - t0);
    }
    printf("| server | turns | turn p50 ms | turn p95 ms | turns/s | reply tokens/s |\n|---|---|---|---|---|---|\n");
    double p95[2], tps[2];
    for (int w = 0; w < 2; w++) {
        qsort(lat[w], at[w], sizeof(double), cmp_double);
        double p50 = lat[w][(at[w] - 1) / 2] * 1e3;
        p95[w] = lat[w][(size_t)((double)(at[w] - 1) * 0.95 + 0.5)] * 1e3;
        tps[w] = (double)ok[w] / wall[w];
        printf("| %s | %ld | %.1f | %.1f | %.3f | %.1f |\n", names[w], ok[w], p50, p95[w], tps[w], toks[w] / wall[w]);
    }
    sp_reply_t r;
    double wait_p50 = -1, wait_p95 = -1, wait_mean = -1, committed = -1, errors = -1, cpu = -1;
    if (sp_http(&srv2[1], NULL, "/metrics", NULL, 0, "bench", &r) == 200) {
        wait_p50 = hist_quantile(r.body, "qcare_records_commit_seconds", 0.5) * 1e3;
        wait_p95 = hist_quantile(r.body, "qcare_records_commit_seconds", 0.95) * 1e3;
        wait_mean = sp_metric(r.body, "qcare_records_commit_seconds_sum") / sp_metric(r.body, "qcare_records_commit_seconds_count") * 1e3;
        committed = sp_metric(r.body, "qcare_records_committed_total");
        errors = sp_metric(r.body, "qcare_records_errors_total");
        cpu = sp_metric(r.body, "qcare_records_writer_cpu_seconds_total");
    }
    sp_reply_free(&r);
    printf("\nrecords on vs off: turn p95 %+.1f ms, throughput %+.1f%% (turns/s)\n", p95[1] - p95[0],
           (tps[1] / tps[0] - 1) * 100);
    printf("commit wait per turn (qcare_records_commit_seconds): mean %.3f ms, p50 %.3f ms, p95 %.3f ms; %g committed, %g errors\n",
           wait_mean, wait_p50, wait_p95, committed, errors);
    printf("writer thread CPU per turn: %.3f ms\n", committed > 0 ? cpu / committed * 1e3 : -1);
    double la[3];
    if (getloadavg(la, 3) == 3) printf("load average at the end: %.1f %.1f %.1f\n", la[0], la[1], la[2]);
    printf("%s %s, %d clients x %d turns x %d rounds per server, %d reply tokens, --parallel %d, 2 threads\n", model,
           dtype, clients, turns, rounds, tokens, clients);
    sp_stop(&srv2[0], 30, NULL);
    sp_stop(&srv2[1], 30, NULL);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", db);
    if (system(rm)) fprintf(stderr, "serve_bench: could not remove %s\n", db);
    free(lat[0]);
    free(lat[1]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--records")) {
        setenv("QC_MODELS", "build/bench", 0);
        curl_global_init(CURL_GLOBAL_ALL);
        int rc = records_bench(argc, argv);
        curl_global_cleanup();
        return rc;
    }
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
