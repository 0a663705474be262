/* cmd_bench.c — `qcare bench`: prompt-processing and generation speed in
 * tokens/s, measured like llama-bench (pp: one batch of P tokens into an empty
 * cache; tg: N single-token steps from an empty cache; a warm-up run first;
 * mean ± sd over repetitions), and the process's peak resident memory.
 * Before the run a short probe measures the machine's read bandwidth with
 * the same number of threads, so that each decode rate can be shown as
 * weight bytes read per second and as a share of what the memory gives. */
#include "cli/cli.h"
#include "base/base.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

static void mean_sd(const double *v, int n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

/* Seconds for one pp run (P tokens, one eval call) or one tg run (N steps). */
static int run_once(qc_ctx_t *x, const int32_t *ids, int n, int one_by_one, float *logits, double *secs) {
    qc_ctx_truncate(x, 0);
    double t0 = qc_now_s();
    if (one_by_one) {
        for (int i = 0; i < n; i++)
            if (qc_ctx_eval(x, &ids[i], 1, logits, QC_LOGITS_LAST)) return 1;
    } else if (qc_ctx_eval(x, ids, (size_t)n, logits, QC_LOGITS_LAST)) {
        return 1;
    }
    *secs = qc_now_s() - t0;
    return 0;
}

/* ==== read-bandwidth probe ====
 * Every thread sums its slice of one buffer far larger than the caches
 * (four accumulators, so the loads, not the adds, set the pace); the best
 * of PROBE_PASSES passes counts. */
#define PROBE_BYTES ((size_t)512 << 20)
#define PROBE_PASSES 5

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} probe_part_t;

static void *probe_read(void *arg) {
    probe_part_t *a = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= a->n; i += 4) {
        s0 += a->p[i];
        s1 += a->p[i + 1];
        s2 += a->p[i + 2];
        s3 += a->p[i + 3];
    }
    a->sum = s0 + s1 + s2 + s3;
    return NULL;
}

/* The read bandwidth in GB/s with n_threads threads; 0 when it cannot be
 * measured (no memory). */
static double probe_bandwidth(int n_threads) {
    uint64_t *buf = malloc(PROBE_BYTES);
    if (!buf) return 0;
    memset(buf, 1, PROBE_BYTES);
    size_t words = PROBE_BYTES / sizeof *buf, per = words / (size_t)n_threads;
    pthread_t th[256];
    probe_part_t part[256];
    double best = 0;
    volatile uint64_t sink = 0;
    for (int pass = 0; pass < PROBE_PASSES; pass++) {
        double t0 = qc_now_s();
        int started = 0;
        for (int t = 0; t < n_threads; t++) {
            part[t] = (probe_part_t){buf + (size_t)t * per, per, 0};
            if (t > 0 && pthread_create(&th[t], NULL, probe_read, &part[t]) == 0) started = t;
            else if (t > 0) break;
        }
        probe_read(&part[0]);
        for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
        double secs = qc_now_s() - t0, gbs = (double)per * sizeof *buf * (started + 1) / secs / 1e9;
        for (int t = 0; t <= started; t++) sink += part[t].sum;
        if (gbs > best) best = gbs;
    }
    (void)sink;
    free(buf);
    return best;
}

/* probe_bandwidth in a child process, so that its buffer never counts in
 * this process's peak resident memory; 0 when it cannot run. */
static double probe_in_child(int n_threads) {
    int fd[2];
    double bw = 0;
    if (pipe(fd)) return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        bw = probe_bandwidth(n_threads);
        _exit(write(fd[1], &bw, sizeof bw) == (ssize_t)sizeof bw ? 0 : 1);
    }
    close(fd[1]);
    if (pid < 0 || read(fd[0], &bw, sizeof bw) != (ssize_t)sizeof bw) bw = 0;
    close(fd[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    return bw;
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL, *dtype = NULL, *v;
    int bad = 0, n_prompt = 512, n_gen = 128, threads = 0, reps = 3, json = 0, probe = 1;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare bench --model DIR [--dtype T] [-p 512] [-n 128] [-t THREADS] [-r 3] [--json]\n"
                   "                   [--no-probe]\n\n"
                   "Measures prompt processing (-p tokens in one batch) and generation (-n single-token\n"
                   "steps) in tokens/s, mean ± sd over -r repetitions after a warm-up, like llama-bench,\n"
                   "and the peak resident memory. -p 0 or -n 0 skips that test. With --json the last\n"
                   "line is {\"pp_tps\": x, \"tg_tps\": y, \"peak_rss_mb\": z, ...}.\n\n"
                   "Before the run a probe (~1 s, 512 MiB) measures the memory's read bandwidth with the\n"
                   "same threads; the decode line then shows the weight bytes read per second\n"
                   "(tg t/s x the bytes one step reads) and their share of the probe. --no-probe skips it.\n");
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--model", &model, &bad) || cli_opt(argc, argv, &i, "-m", &model, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--dtype", &dtype, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--json", NULL, &bad)) json = 1;
        else if (cli_opt(argc, argv, &i, "--no-probe", NULL, &bad)) probe = 0;
        else if (cli_opt(argc, argv, &i, "-p", &v, &bad)) { if (!bad) n_prompt = (int)cli_parse_long("-p", v, 0, 1 << 16, &bad); }
        else if (cli_opt(argc, argv, &i, "-n", &v, &bad)) { if (!bad) n_gen = (int)cli_parse_long("-n", v, 0, 1 << 16, &bad); }
        else if (cli_opt(argc, argv, &i, "-t", &v, &bad) || cli_opt(argc, argv, &i, "--threads", &v, &bad)) {
            if (!bad) threads = (int)cli_parse_long("-t", v, 1, 256, &bad);
        } else if (cli_opt(argc, argv, &i, "-r", &v, &bad)) { if (!bad) reps = (int)cli_parse_long("-r", v, 1, 1000, &bad); }
        else {
            fprintf(stderr, "qcare bench: unknown option '%s' (see qcare bench --help)\n", argv[i]);
            return 2;
        }
    }
    if (bad) return 2;
    double t_load = qc_now_s();
    qc_model_t *m = cli_load_model(model, dtype, threads);
    if (!m) return 1;
    t_load = qc_now_s() - t_load;
    int rc = 1, n_max = n_prompt > n_gen ? n_prompt : n_gen;
    int32_t nv = qc_model_n_vocab(m), *ids = malloc((size_t)(n_max > 0 ? n_max : 1) * sizeof *ids);
    float *logits = malloc((size_t)nv * sizeof *logits);
    double *pp = calloc((size_t)reps, sizeof *pp), *tg = calloc((size_t)reps, sizeof *tg), secs;
    qc_ctx_opts_t co = {.n_batch = n_prompt > 0 ? n_prompt : 1};
    qc_ctx_t *x = qc_ctx_new(m, n_max + 1, &co);
    if (!ids || !logits || !pp || !tg || !x) {
        fprintf(stderr, "qcare bench: out of memory\n");
        goto done;
    }
    /* Token ids drawn with a fixed LCG from the vocabulary the tokenizer
     * knows: the speed does not depend on which ids they are. */
    uint32_t s = 12345;
    int32_t ntok = qc_tokenizer_n_tokens(qc_model_tokenizer(m));
    for (int i = 0; i < n_max; i++) ids[i] = (int32_t)((s = s * 1664525u + 1013904223u) >> 8) % ntok;

    fprintf(stderr, "qcare bench: %s, %s weights (%.0f MiB), %d threads, %s kernels, loaded in %.2f s\n", model,
            qc_model_dtype(m), qc_model_weight_bytes(m) / 1048576.0, qc_model_n_threads(m), qc_model_cpu(m), t_load);
    double bw = probe && n_gen > 0 ? probe_in_child(qc_model_n_threads(m)) : 0;
    if (bw > 0) fprintf(stderr, "qcare bench: read bandwidth %.1f GB/s (%d threads, best of %d passes)\n", bw,
                        qc_model_n_threads(m), PROBE_PASSES);
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        if (n_prompt > 0) {
            if (run_once(x, ids, n_prompt, 0, logits, &secs)) goto eval_fail;
            if (r >= 0) pp[r] = n_prompt / secs;
        }
        if (n_gen > 0) {
            if (run_once(x, ids, n_gen, 1, logits, &secs)) goto eval_fail;
            if (r >= 0) tg[r] = n_gen / secs;
        }
        if (r >= 0) fprintf(stderr, "  run %d: pp%d %.2f t/s, tg%d %.2f t/s\n", r + 1, n_prompt, pp[r], n_gen, tg[r]);
    }
    double pm = 0, psd = 0, tm = 0, tsd = 0, rss = peak_rss_mb();
    mean_sd(pp, reps, &pm, &psd);
    mean_sd(tg, reps, &tm, &tsd);
    printf("| model | weights | size MiB | threads | test | t/s |\n|---|---|---|---|---|---|\n");
    if (n_prompt > 0)
        printf("| %s | %s | %.0f | %d | pp%d | %.2f ± %.2f |\n", model, qc_model_dtype(m),
               qc_model_weight_bytes(m) / 1048576.0, qc_model_n_threads(m), n_prompt, pm, psd);
    if (n_gen > 0)
        printf("| %s | %s | %.0f | %d | tg%d | %.2f ± %.2f |\n", model, qc_model_dtype(m),
               qc_model_weight_bytes(m) / 1048576.0, qc_model_n_threads(m), n_gen, tm, tsd);
    double wgbs = tm * (double)qc_model_step_bytes(m) / 1e9;
    if (n_gen > 0 && bw > 0)
        printf("decode reads %.1f GB/s of weights, %.0f%% of the probed %.1f GB/s\n", wgbs, 100 * wgbs / bw, bw);
    printf("peak RSS: %.0f MB\n", rss);
    if (json)
        printf("{\"pp_tps\": %.3f, \"pp_sd\": %.3f, \"tg_tps\": %.3f, \"tg_sd\": %.3f, \"peak_rss_mb\": %.1f, "
               "\"n_prompt\": %d, \"n_gen\": %d, \"threads\": %d, \"dtype\": \"%s\", \"weights_mib\": %.1f, "
               "\"load_s\": %.3f, \"reps\": %d, \"read_gbs\": %.2f, \"step_bytes\": %lld, \"tg_weight_gbs\": %.4f, "
               "\"cpu\": \"%s\"}\n",
               pm, psd, tm, tsd, rss, n_prompt, n_gen, qc_model_n_threads(m), qc_model_dtype(m),
               qc_model_weight_bytes(m) / 1048576.0, t_load, reps, bw, (long long)qc_model_step_bytes(m), n_gen > 0 ? wgbs : 0.0,
               qc_model_cpu(m));
    rc = 0;
    goto done;
eval_fail:
    fprintf(stderr, "qcare bench: %s\n", qc_ctx_errmsg(x));
done:
    qc_ctx_free(x);
    free(pp);
    free(tg);
    free(logits);
    free(ids);
    qc_model_free(m);
    return rc;
}
