/* peer_bench.c — qcare serve and llama-server side by side, on the same
 * GGUF file, in the same run, on the same machine:
 *
 *   make build/peer_bench
 *   build/peer_bench --gguf FILE --llama-server BIN [--parallel 8] [--tokens 128]
 *                    [--texts 40] [--threads 2] [-- QCARE_SERVE_ARGS...]
 *
 * Both servers are started on loopback (2 threads each, --parallel P) and
 * measured in turns, never at the same time:
 *
 *   1. serving: 1, 4 and 8 chat completions at once (/v1/chat/completions,
 *      max_tokens T, the same messages and seeds), aggregate completion
 *      tokens per second of wall time; qcare and llama-server alternate;
 *   2. label scoring, 4 single-token labels with a cached prefix: qcare's
 *      POST /v1/classify against llama-server's POST /completion given the
 *      exact same token ids (the prefix qcare builds + the turn), with
 *      n_predict 1, n_probs 4 and cache_prompt, so both evaluate only the
 *      turn's tokens and read one next-token distribution: the same work
 *      for labels of one token each (the program checks that they are);
 *   3. the emotion verdict: qcare's POST /api/emotion against the same
 *      /completion request built from qcare's own emotion prompt.
 *
 * Latencies are client-side (request sent to last byte), p50 and p95 over
 * --texts distinct patient messages, after 3 warm-up requests each. The
 * token ids for llama-server come from this process loading the same file
 * (libqcare), so both engines see identical prompts. */
#include "qcare.h"
#include "qcare_care.h"
#include "streams.h"

#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>

static int n_parallel = 8, max_tokens = 128, n_texts = 40, n_threads = 2;

/* n streams at once on port: generated tokens per second, all together. */
static double streams(int port, int n, long *tokens) { return bench_streams(port, n, max_tokens, tokens); }

/* llama-server in a child process, ready once GET /health is 200. */
static int start_llama(sp_server_t *s, const char *bin, const char *gguf, const char *log) {
    memset(s, 0, sizeof *s);
    snprintf(s->log, sizeof s->log, "%s", log);
    if (!(s->port = sp_free_port())) return -1;
    char port[16], threads[16], par[16], ctx[16];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(threads, sizeof threads, "%d", n_threads);
    snprintf(par, sizeof par, "%d", n_parallel);
    snprintf(ctx, sizeof ctx, "%d", 1024 * n_parallel);
    const char *argv[] = {bin, "-m", gguf, "-t", threads, "-tb", threads, "--parallel", par, "-c", ctx,
                          "--host", "127.0.0.1", "--port", port, "--no-webui", NULL};
    return sp_spawn(s, argv) ? -1 : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(p * n) - 1;
    return v[i < 0 ? 0 : i];
}

/* The i-th patient message of the latency runs. Each begins with its own
 * word, so that no engine can reuse more of an earlier prompt than the
 * fixed prefix (llama-server's cache_prompt reuses the longest common
 * prefix with what a slot held last; qcare caches only the fixed prefix);
 * the run also checks what llama-server evaluated (timings.prompt_n). */
static void patient_text(int i, char *out, size_t n) {
    static const char *const open[] = {
        "Yesterday", "Tonight", "Recently", "Doctor,", "Hi,", "Hello,", "Morning:", "Excuse me,", "Sorry,", "Please,",
        "My", "Our", "Since", "After", "Before", "Lately", "Sometimes", "Every", "Last", "This", "Today", "Honestly,",
        "Quick", "Question:", "Help,", "Dear", "Um,", "Well,", "So", "Hey", "Greetings,", "Thanks", "Evening:", "Can",
        "Could", "Would", "Should", "Is", "Why", "When"};
    static const char *const what[] = {"a headache", "a sore throat", "back pain", "a rash on my arm",
                                       "trouble sleeping", "a cough", "stomach cramps", "a swollen ankle"};
    static const char *const since[] = {"since yesterday", "for three days", "for a week", "on and off for a month",
                                        "since this morning"};
    const int n_open = (int)(sizeof open / sizeof open[0]);
    snprintf(out, n, "%s I am %d years old and I have had %s %s. Should I be worried?", open[i % n_open], 20 + i % 60,
             what[i % 8], since[(i / 8) % 5]);
}

/* One request's wall time in ms; -1 when it did not answer 200. With
 * prompt_n, the tokens llama-server says it evaluated (timings.prompt_n). */
static double timed(int port, const char *path, const char *body, long *prompt_n) {
    sp_request_t q = {.path = path, .body = body, .timeout_s = 120};
    sp_reply_t r;
    long st = sp_request(port, &q, &r);
    double ms = r.seconds * 1e3;
    if (st != 200) fprintf(stderr, "peer_bench: %s on port %d: HTTP %ld %.200s\n", path, port, st, r.body);
    if (prompt_n) {
        json_t *j = json_loads(r.body, 0, NULL);
        *prompt_n = (long)json_integer_value(json_object_get(json_object_get(j, "timings"), "prompt_n"));
        json_decref(j);
    }
    sp_reply_free(&r);
    return st == 200 ? ms : -1;
}

/* llama-server's /completion body for the ids prefix + turn. */
static char *completion_body(const int32_t *pre, size_t np, const int32_t *turn, size_t nt) {
    json_t *ids = json_array();
    for (size_t i = 0; i < np; i++) json_array_append_new(ids, json_integer(pre[i]));
    for (size_t i = 0; i < nt; i++) json_array_append_new(ids, json_integer(turn[i]));
    json_t *b = json_pack("{s:o, s:i, s:i, s:b, s:f}", "prompt", ids, "n_predict", 1, "n_probs", 4, "cache_prompt", 1,
                          "temperature", 0.0);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

/* Latencies of qcare (path, body from make_qcare) and of llama-server
 * (the same prompt as token ids), alternating text by text. */
typedef char *(*qcare_body_fn)(const char *text);

/* The classify task both engines score: four one-token labels. */
static const char *const cls_labels[4] = {"urgent", "routine", "question", "billing"};
static const char cls_instruction[] =
    "Classify the patient's message. Answer with exactly one of these labels: urgent, routine, question, billing.";

static char *classify_body(const char *text) {
    json_t *b = json_pack("{s:s, s:[s,s,s,s], s:s}", "text", text, "labels", cls_labels[0], cls_labels[1],
                          cls_labels[2], cls_labels[3], "instruction", cls_instruction);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

static char *emotion_body(const char *text) {
    json_t *b = json_pack("{s:s}", "text", text);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

static int latency_pair(const char *what, int qport, const char *qpath, qcare_body_fn qbody, int lport,
                        const qc_labels_t *t) {
    const int32_t *pre;
    size_t np = qc_labels_prefix(t, &pre);
    for (size_t i = 0; i < qc_labels_count(t); i++) {
        const int32_t *ids;
        if (qc_labels_tokens(t, i, &ids) != 1) {
            fprintf(stderr, "peer_bench: label \"%s\" is not one token: not the same work as n_probs\n",
                    qc_labels_name(t, i));
            return -1;
        }
    }
    double *qa = calloc((size_t)n_texts, sizeof *qa), *la = calloc((size_t)n_texts, sizeof *la);
    int bad = !qa || !la;
    long q_tok = 0, l_tok = 0; /* tokens each engine evaluated, all texts */
    for (int i = -3; i < n_texts && !bad; i++) {
        char text[256], err[256];
        patient_text(i < 0 ? 1000 + i : i, text, sizeof text);
        int32_t *turn = NULL;
        size_t nt = 0;
        if (qc_labels_turn(t, text, strlen(text), 0, &turn, &nt, err, sizeof err)) {
            fprintf(stderr, "peer_bench: %s\n", err);
            bad = 1;
            break;
        }
        char *qb = qbody(text), *lb = completion_body(pre, np, turn, nt);
        long pn = 0;
        double q = timed(qport, qpath, qb, NULL), l = timed(lport, "/completion", lb, &pn);
        free(qb);
        free(lb);
        free(turn);
        if (q < 0 || l < 0) bad = 1;
        else if (i >= 0) qa[i] = q, la[i] = l, q_tok += (long)nt, l_tok += pn;
    }
    if (!bad) {
        double q50 = pct(qa, n_texts, 0.5), q95 = pct(qa, n_texts, 0.95);
        double l50 = pct(la, n_texts, 0.5), l95 = pct(la, n_texts, 0.95);
        printf("| %s (prefix %zu tokens, cached; turn %.1f / %.1f tokens evaluated) | %.1f / %.1f | %.1f / %.1f | "
               "%.2fx / %.2fx |\n",
               what, np, (double)q_tok / n_texts, (double)l_tok / n_texts, q50, q95, l50, l95, l50 / q50, l95 / q95);
        fflush(stdout);
    }
    free(qa);
    free(la);
    return bad ? -1 : 0;
}

static int usage(int rc) {
    fprintf(rc ? stderr : stdout,
            "usage: peer_bench --gguf FILE --llama-server BIN [--parallel 8] [--tokens 128] [--texts 40]\n"
            "                  [--threads 2] [-- QCARE_SERVE_ARGS...]\n"
            "qcare serve and llama-server on the same GGUF file, measured in turns (see bench/peer_bench.c).\n");
    return rc;
}

int main(int argc, char **argv) {
    const char *gguf = NULL, *llama = NULL;
    const char *extra[SP_MAX_ARGS] = {0};
    int n_extra = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(0);
        if (!strcmp(a, "--")) {
            for (i++; i < argc && n_extra < SP_MAX_ARGS - 16; i++) extra[n_extra++] = argv[i];
            break;
        }
        if (i + 1 >= argc) return usage(2);
        if (!strcmp(a, "--gguf")) gguf = argv[++i];
        else if (!strcmp(a, "--llama-server")) llama = argv[++i];
        else if (!strcmp(a, "--parallel")) n_parallel = atoi(argv[++i]);
        else if (!strcmp(a, "--tokens")) max_tokens = atoi(argv[++i]);
        else if (!strcmp(a, "--texts")) n_texts = atoi(argv[++i]);
        else if (!strcmp(a, "--threads")) n_threads = atoi(argv[++i]);
        else return usage(2);
    }
    if (!gguf || !llama || n_parallel < 1 || n_parallel > 64 || max_tokens < 1 || n_texts < 1 || n_threads < 1)
        return usage(2);

    char err[512];
    qc_model_t *m = NULL;
    qc_care_t *care = NULL;
    qc_labels_t *cls = NULL;
    qc_model_opts_t mo = {.n_threads = 1};
    if (qc_model_load(gguf, &mo, &m, err, sizeof err) || qc_care_new(m, NULL, &care, err, sizeof err)) {
        fprintf(stderr, "peer_bench: %s\n", err);
        return 1;
    }
    qc_labels_spec_t ls = {.labels = cls_labels, .n_labels = 4, .instruction = cls_instruction};
    if (qc_labels_new(m, &ls, 0, &cls, err, sizeof err)) {
        fprintf(stderr, "peer_bench: %s\n", err);
        return 1;
    }

    curl_global_init(CURL_GLOBAL_ALL);
    char dir[1024], base[1024], threads[16], par[16];
    snprintf(dir, sizeof dir, "%s", gguf);
    snprintf(base, sizeof base, "%s", gguf);
    snprintf(threads, sizeof threads, "%d", n_threads);
    snprintf(par, sizeof par, "%d", n_parallel);
    setenv("QC_MODELS", dirname(dir), 1);
    const char *args[SP_MAX_ARGS] = {"--threads", threads, "--parallel", par, "--quiet"};
    int na = 5;
    for (int i = 0; i < n_extra; i++) args[na++] = extra[i];
    args[na] = NULL;
    sp_server_t q, l;
    if (sp_start(&q, basename(base), "build/bench/peer_bench.qcare.log", args)) {
        fprintf(stderr, "peer_bench: qcare serve did not start (build/bench/peer_bench.qcare.log)\n");
        return 1;
    }
    if (start_llama(&l, llama, gguf, "build/bench/peer_bench.llama.log")) {
        fprintf(stderr, "peer_bench: llama-server did not start (build/bench/peer_bench.llama.log)\n");
        sp_stop(&q, 30, NULL);
        return 1;
    }

    printf("Same file (%s), same machine, in turns; %d threads, --parallel %d each.\n\n", gguf, n_threads,
           n_parallel);
    printf("| concurrent streams | qcare t/s | llama-server t/s | ratio |\n|---|---|---|---|\n");
    long tok;
    streams(q.port, 1, &tok); /* warm-up */
    streams(l.port, 1, &tok);
    int counts[] = {1, 4, 8};
    for (int k = 0; k < 3 && counts[k] <= n_parallel; k++) {
        long qt, lt;
        double qs = streams(q.port, counts[k], &qt), ls2 = streams(l.port, counts[k], &lt);
        printf("| %d (%ld / %ld tokens) | %.1f | %.1f | %.2fx |\n", counts[k], qt, lt, qs, ls2, qs / ls2);
        fflush(stdout);
    }
    printf("\n| judgment | qcare p50 / p95 ms | llama-server p50 / p95 ms | ratio (llama / qcare) |\n"
           "|---|---|---|---|\n");
    int rc = latency_pair("classify, 4 labels", q.port, "/v1/classify", classify_body, l.port, cls);
    rc |= latency_pair("emotion verdict, 3 labels", q.port, "/api/emotion", emotion_body, l.port,
                       qc_care_emotion_labels(care));
    printf("\n%d texts; llama-server: /completion with the same token ids, n_predict 1, n_probs 4, cache_prompt.\n",
           n_texts);
    sp_stop(&q, 30, NULL);
    sp_stop(&l, 30, NULL);
    qc_labels_free(cls);
    qc_care_free(care);
    qc_model_free(m);
    curl_global_cleanup();
    return rc ? 1 : 0;
}
