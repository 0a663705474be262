/* test_sampler.c — the sampler against the definitions it implements
 * (Hugging Face's logits processors and warpers), checked on small logit
 * vectors whose answers follow from the math, plus seeded reproducibility. */
#include "engine/engine.h"
#include "test.h"

#include <math.h>
#include <string.h>

#define N 5

/* Frequencies of each id over `draws` samples of the same logits. */
static void frequencies(const qc_sampling_t *p, const float *logits, int draws, double *freq) {
    qc_sampler_t *s = qc_sampler_new(N, p);
    float buf[N];
    memset(freq, 0, N * sizeof *freq);
    for (int i = 0; i < draws; i++) {
        memcpy(buf, logits, sizeof buf);
        freq[qc_sampler_sample(s, buf, NULL, 0)] += 1.0 / draws;
    }
    qc_sampler_free(s);
}

int main(void) {
    /* probabilities 0.5, 0.3, 0.15, 0.05, 0 (practically) */
    const float lg[N] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f), -1e30f};
    qc_sampling_t base = {.temperature = 1, .top_k = 0, .top_p = 1, .min_p = 0, .repetition_penalty = 1, .seed = 7};
    double f[N];
    const int draws = 40000;
    const double tol = 0.012; /* > 4 standard deviations at 40000 draws */

    /* greedy: argmax, lowest id on ties */
    qc_sampling_t g = base;
    g.temperature = 0;
    qc_sampler_t *s = qc_sampler_new(N, &g);
    float tie[N] = {1, 3, 3, 2, 0};
    CHECK(qc_sampler_sample(s, tie, NULL, 0) == 1, "greedy takes the lowest id among equal maxima");

    /* repetition penalty (HF): positive logits divided, negative multiplied,
     * once per distinct id however often it occurs */
    qc_sampler_free(s);
    g.repetition_penalty = 2;
    s = qc_sampler_new(N, &g);
    float rp[N] = {2, -2, 1, 4, 0};
    int32_t hist[] = {0, 1, 0, 0, 3};
    int32_t id = qc_sampler_sample(s, rp, hist, 5);
    CHECK(rp[0] == 1 && rp[1] == -4 && rp[2] == 1 && rp[3] == 2 && rp[4] == 0,
          "repetition penalty: got %g %g %g %g %g", rp[0], rp[1], rp[2], rp[3], rp[4]);
    CHECK(id == 3, "greedy after the penalty picks id 3, got %d", id);
    qc_sampler_free(s);

    /* plain sampling follows the softmax */
    frequencies(&base, lg, draws, f);
    CHECK(fabs(f[0] - 0.5) < tol && fabs(f[1] - 0.3) < tol && fabs(f[2] - 0.15) < tol && fabs(f[3] - 0.05) < tol,
          "softmax frequencies %.3f %.3f %.3f %.3f", f[0], f[1], f[2], f[3]);

    /* temperature 0.5 squares and renormalizes the probabilities */
    qc_sampling_t t = base;
    t.temperature = 0.5f;
    frequencies(&t, lg, draws, f);
    double z = 0.25 + 0.09 + 0.0225 + 0.0025;
    CHECK(fabs(f[0] - 0.25 / z) < tol && fabs(f[1] - 0.09 / z) < tol, "temperature 0.5: %.3f %.3f", f[0], f[1]);

    /* top-k 2 keeps 0.5 and 0.3, renormalized */
    qc_sampling_t k = base;
    k.top_k = 2;
    frequencies(&k, lg, draws, f);
    CHECK(fabs(f[0] - 0.625) < tol && fabs(f[1] - 0.375) < tol && f[2] == 0 && f[3] == 0,
          "top-k 2: %.3f %.3f %.3f %.3f", f[0], f[1], f[2], f[3]);

    /* top-k over a large vocabulary: the k largest of 50,000 shuffled
     * logits, plus every logit equal to the k-th (HF keeps ties) */
    {
        enum { V = 50000, K = 20 };
        float *big = malloc(V * sizeof *big), *work = malloc(V * sizeof *work);
        uint64_t r = 12345;
        for (int i = 0; i < V; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            big[i] = (float)((r >> 33) % 1000) / 100.0f - 20.0f; /* below -10 */
        }
        /* 18 distinct high logits, then 3 equal to the 19th = k-th... */
        int top[K + 1];
        for (int j = 0; j < K + 1; j++) {
            top[j] = (int)((j * 2654435761u) % V);
            big[top[j]] = j < 18 ? 5.0f - 0.1f * j : 2.0f; /* ranks 19, 20 and a tie at 21 */
        }
        qc_sampling_t tk = base;
        tk.top_k = K;
        qc_sampler_t *ss = qc_sampler_new(V, &tk);
        int outside = 0, seen_tie = 0;
        for (int d = 0; d < 20000; d++) {
            memcpy(work, big, V * sizeof *work);
            int32_t got = qc_sampler_sample(ss, work, NULL, 0);
            int in = 0;
            for (int j = 0; j < K + 1; j++) in |= got == top[j];
            outside += !in;
            seen_tie |= got == top[K];
        }
        CHECK(outside == 0 && seen_tie, "top-k %d of %d: %d draws outside the top, tie at the k-th %s", K, V, outside,
              seen_tie ? "kept" : "dropped");
        qc_sampler_free(ss);
        free(big);
        free(work);
    }

    /* top-p 0.75: ascending cumulative mass 0.05, 0.20, 0.50, 1.0; HF removes
     * the ids whose cumulative mass is <= 0.25, i.e. ids 3 and 2 */
    qc_sampling_t p = base;
    p.top_p = 0.75f;
    frequencies(&p, lg, draws, f);
    CHECK(fabs(f[0] - 0.625) < tol && fabs(f[1] - 0.375) < tol && f[2] == 0 && f[3] == 0,
          "top-p 0.75: %.3f %.3f %.3f %.3f", f[0], f[1], f[2], f[3]);
    /* top-p 0.81 must keep id 2 too (0.2 > 0.19) */
    p.top_p = 0.81f;
    frequencies(&p, lg, draws, f);
    CHECK(f[2] > 0.1 && f[3] == 0, "top-p 0.81 keeps id 2: %.3f %.3f", f[2], f[3]);

    /* min-p 0.2: threshold 0.1 drops ids 3 and 4 */
    qc_sampling_t mp = base;
    mp.min_p = 0.2f;
    frequencies(&mp, lg, draws, f);
    CHECK(fabs(f[0] - 0.5 / 0.95) < tol && f[3] == 0 && f[4] == 0, "min-p 0.2: %.3f %.3f", f[0], f[3]);

    /* the same seed repeats a run exactly; another seed does not */
    int32_t a[64], b[64], c[64];
    for (int r = 0; r < 3; r++) {
        qc_sampling_t q = base;
        q.seed = r == 2 ? 8 : 7;
        qc_sampler_t *x = qc_sampler_new(N, &q);
        for (int i = 0; i < 64; i++) {
            float buf[N];
            memcpy(buf, lg, sizeof buf);
            (r == 0 ? a : r == 1 ? b : c)[i] = qc_sampler_sample(x, buf, NULL, 0);
        }
        qc_sampler_free(x);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, same tokens");
    CHECK(memcmp(a, c, sizeof a) != 0, "another seed, other tokens");

    qc_sampler_free(NULL);
    return test_done("test_sampler");
}
