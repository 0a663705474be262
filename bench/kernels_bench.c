/* kernels_bench.c — single-thread timing of qc_matmul on the matrix shapes
 * of Qwen1.5-0.5B (hidden 1024, FFN 2816, vocabulary 151936).
 *
 *   decode  (n_tok = 1): GB/s of weights streamed. "cold" cycles through
 *           enough copies of the matrix (>= 96 MiB) that it comes from DRAM,
 *           as in a real forward pass; "hot" repeats one copy (L2/L3).
 *   prefill (n_tok = 64, 512, or --tokens N,N,...): GMAC/s (rows x cols x
 *           n_tok per second), hot and cold as for decode,
 *           activation quantization not included (its cost is printed once).
 * Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not the wall
 * clock, so other processes sharing the cores slow a run down less (they
 * still share caches and memory bandwidth: compare binaries side by side).
 *
 * Build:  make build/kernels_bench
 * Run:    build/kernels_bench [--tokens N,N,...] [q8_0|q4_0|q5_0|q4_K|q6_K|bf16|f32 ...]
 *         (also q4_1, q5_1, q2_K, q3_K, q5_K, f16; QCARE_CPU picks the level) */
#include "engine/kernels_impl.h"
#include "engine/quants.h"
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 88172645463325252ull;
static float rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

/* A rows x cols matrix of type dt: 64 distinct random rows, repeated (the
 * values do not change the speed), in `copies` separate copies. */
static unsigned char *make_matrix(qc_dtype_t dt, int64_t rows, int64_t cols, int copies, size_t *bytes) {
    const size_t rb = qc_row_bytes(dt, cols);
    *bytes = rb * (size_t)rows;
    unsigned char *m = aligned_alloc(64, (*bytes * (size_t)copies + 63) / 64 * 64);
    if (!m) return NULL;
    float *row = malloc((size_t)cols * sizeof(float));
    for (int64_t r = 0; r < rows && r < 64; r++) {
        for (int64_t c = 0; c < cols; c++) row[c] = rnd();
        unsigned char *o = m + (size_t)r * rb;
        if (dt == QC_DTYPE_Q8_0 || dt == QC_DTYPE_Q4_0) {
            qc_quantize_row(dt, row, o, cols);
        } else if (qc_qtype(dt)) {
            /* other quantized types: random bytes, each block's halves
             * (its first 2 or 4 bytes; Q2_K's last 4, Q3_K's and Q6_K's
             * last 2) a small finite scale */
            const qc_qtype_t *q = qc_qtype(dt);
            const size_t bb = (size_t)q->block_bytes;
            const int two = dt == QC_DTYPE_Q4_1 || dt == QC_DTYPE_Q5_1 || dt == QC_DTYPE_Q2_K || dt == QC_DTYPE_Q4_K ||
                            dt == QC_DTYPE_Q5_K;
            const size_t at = dt == QC_DTYPE_Q6_K || dt == QC_DTYPE_Q3_K ? bb - 2 : dt == QC_DTYPE_Q2_K ? bb - 4 : 0;
            for (size_t i = 0; i < rb; i++) o[i] = (unsigned char)(rnd() * 127.0f + 128.0f);
            for (size_t b = 0; b < rb; b += bb) {
                static const unsigned char h[4] = {0x00, 0x20, 0x00, 0x18};
                memcpy(o + b + at, h, two ? 4 : 2);
            }
        } else {
            for (int64_t c = 0; c < cols; c++) {
                if (dt == QC_DTYPE_F32) {
                    memcpy(o + 4 * c, &row[c], 4);
                } else {
                    uint16_t h = dt == QC_DTYPE_BF16 ? qc_f32_to_bf16(row[c]) : qc_f32_to_f16(row[c]);
                    memcpy(o + 2 * c, &h, 2);
                }
            }
        }
    }
    for (int64_t r = 64; r < rows; r++) memcpy(m + (size_t)r * rb, m + (size_t)(r % 64) * rb, rb);
    for (int k = 1; k < copies; k++) memcpy(m + (size_t)k * *bytes, m, *bytes);
    free(row);
    return m;
}

typedef struct {
    const char *name;
    int64_t rows, cols; /* out, in */
} shape_t;

static const shape_t shapes[] = {
    {"attn 1024->1024", 1024, 1024},
    {"ffn up 1024->2816", 2816, 1024},
    {"ffn down 2816->1024", 1024, 2816},
    {"lm_head 1024->151936", 151936, 1024},
};

/* This thread's CPU time, seconds. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per call of qc_matmul over `copies` matrices in turn (best of a
 * few rounds of at least min_s each). */
static double time_matmul(qc_dtype_t dt, const unsigned char *m, size_t bytes, const unsigned char *pan,
                          size_t pbytes, int copies, int64_t rows, int64_t cols, const float *x, const void *act,
                          int n_tok, float *y, double min_s) {
    double best = 1e30;
    for (int round = 0; round < 3; round++) {
        int calls = 0;
        const double t0 = cpu_s();
        double t;
        do {
            qc_tensor_t w = {.data = m + (size_t)(calls % copies) * bytes, .dtype = dt, .rows = rows, .cols = cols};
            if (pan) {
                w.panel = (void *)(pan + (size_t)(calls % copies) * pbytes);
                w.panel_ops = qc_kernels_for(qc_cpu_level())->panel;
            }
            qc_matmul(&w, x, act, n_tok, y, rows, 0, rows);
            calls++;
        } while ((t = cpu_s() - t0) < min_s);
        if (t / calls < best) best = t / calls;
    }
    return best;
}

static int prefill_toks[16] = {64, 512}, n_prefill = 2;

static void bench_type(qc_dtype_t dt) {
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape_t *sh = &shapes[s];
        size_t bytes;
        const size_t one = qc_row_bytes(dt, sh->cols) * (size_t)sh->rows;
        const int copies = one >= (96u << 20) ? 1 : (int)((96u << 20) / one + 1);
        unsigned char *m = make_matrix(dt, sh->rows, sh->cols, copies, &bytes);
        const int max_tok = 512;
        float *x = malloc((size_t)max_tok * (size_t)sh->cols * sizeof(float));
        float *y = malloc((size_t)max_tok * (size_t)sh->rows * sizeof(float));
        void *act = NULL;
        if (!m || !x || !y) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        for (int64_t i = 0; i < (int64_t)max_tok * sh->cols; i++) x[i] = rnd();
        /* the level's weight panels, as a loaded model has them (one per copy) */
        const qc_panel_ops_t *ops = qc_kernels_for(qc_cpu_level())->panel;
        const qc_tensor_t w0 = {.data = m, .dtype = dt, .rows = sh->rows, .cols = sh->cols};
        const size_t pbytes = ops ? ops->bytes(&w0) : 0;
        unsigned char *pan = pbytes ? aligned_alloc(64, (pbytes * (size_t)copies + 63) / 64 * 64) : NULL;
        for (int k = 0; pan && k < copies; k++) {
            qc_tensor_t wk = w0;
            wk.data = m + (size_t)k * bytes;
            ops->make(&wk, pan + (size_t)k * pbytes, 0, sh->rows / ops->rows);
        }
        size_t ab = qc_act_bytes(dt, max_tok, sh->cols);
        if (ab) {
            act = malloc(ab);
            qc_act_quantize(dt, x, sh->cols, 0, max_tok, act); /* first touch */
            const double t0 = cpu_s();
            qc_act_quantize(dt, x, sh->cols, 0, max_tok, act);
            if (s == 2)
                printf("  act quantize %d x %lld: %.3f ms\n", max_tok, (long long)sh->cols, 1e3 * (cpu_s() - t0));
        }
        const double cold = time_matmul(dt, m, bytes, pan, pbytes, copies, sh->rows, sh->cols, x, act, 1, y, 0.3);
        const double hot = time_matmul(dt, m, bytes, pan, pbytes, 1, sh->rows, sh->cols, x, act, 1, y, 0.3);
        if (s == 0) printf("  (%s)\n", pan ? "weight panels" : "file layout");
        printf("  %-22s decode   %7.2f GB/s cold  %7.2f GB/s hot   (%.3f ms)\n", sh->name, (double)bytes / cold * 1e-9,
               (double)bytes / hot * 1e-9, cold * 1e3);
        for (int k = 0; k < n_prefill; k++) {
            const int nt = prefill_toks[k];
            const double macs = (double)sh->rows * (double)sh->cols * nt;
            const double min_s = macs > 2e10 ? 0.0 : 0.3;
            const double t = time_matmul(dt, m, bytes, pan, pbytes, 1, sh->rows, sh->cols, x, act, nt, y, min_s);
            /* and with the weights from DRAM, as in a forward pass of a small batch */
            const double tc = time_matmul(dt, m, bytes, pan, pbytes, copies, sh->rows, sh->cols, x, act, nt, y, min_s);
            printf("  %-22s prefill %3d tok %7.2f GMAC/s  (%.2f ms), cold %7.2f GMAC/s\n", sh->name, nt,
                   macs / t * 1e-9, t * 1e3, macs / tc * 1e-9);
        }
        free(m);
        free(pan);
        free(x);
        free(y);
        free(act);
    }
}

int main(int argc, char **argv) {
    printf("kernels_bench: level %s, 1 thread\n", qc_cpu_name(qc_cpu_level()));
    static const char *names[] = {"q8_0", "q4_0", "bf16"};
    static const qc_dtype_t types[] = {QC_DTYPE_Q8_0, QC_DTYPE_Q4_0, QC_DTYPE_BF16, QC_DTYPE_F32, QC_DTYPE_F16,
                                       QC_DTYPE_Q5_0, QC_DTYPE_Q4_1, QC_DTYPE_Q5_1, QC_DTYPE_Q2_K,
                                       QC_DTYPE_Q3_K, QC_DTYPE_Q4_K, QC_DTYPE_Q5_K, QC_DTYPE_Q6_K};
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "--tokens")) {
        n_prefill = 0;
        for (char *p = argv[2], *e; *p && n_prefill < 16; p = *e ? e + 1 : e) {
            long v = strtol(p, &e, 10);
            if (e == p || v < 1 || v > 512 || (*e && *e != ',')) {
                fprintf(stderr, "kernels_bench: --tokens wants counts 1-512 separated by commas\n");
                return 2;
            }
            prefill_toks[n_prefill++] = (int)v;
        }
        first = 3;
    }
    const int n = argc > first ? argc - first : 3;
    for (int i = 0; i < n; i++) {
        const char *want = argc > first ? argv[i + first] : names[i];
        int found = 0;
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            if (strcasecmp(want, qc_dtype_name(types[t]))) continue;
            printf("%s:\n", qc_dtype_name(types[t]));
            bench_type(types[t]);
            found = 1;
        }
        if (!found) fprintf(stderr, "unknown type %s\n", want);
    }
    return 0;
}
