/* sampler.c — choosing the next token from logits, with Hugging Face
 * transformers' semantics: RepetitionPenaltyLogitsProcessor, then the warpers
 * Temperature → TopK → TopP → MinP, then a draw from the softmax. The random
 * generator is xoshiro256** seeded through splitmix64, so a seed repeats a run
 * exactly on every machine. */
#include "engine/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float logit;
    int32_t id;
} cand_t;

struct qc_sampler {
    int32_t n_vocab;
    qc_sampling_t p;
    uint64_t rng[4];
    cand_t *cand;     /* [n_vocab] */
    uint8_t *seen;    /* [n_vocab] marks for the repetition penalty */
};

/* ==== random numbers ==== */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* A uniform double in [0, 1) with 53 random bits. */
static double uniform(uint64_t s[4]) { return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53; }

/* ==== sampler ==== */

qc_sampler_t *qc_sampler_new(int32_t n_vocab, const qc_sampling_t *params) {
    if (n_vocab <= 0 || !params) return NULL;
    qc_sampler_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_vocab = n_vocab;
    s->p = *params;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->seen = calloc((size_t)n_vocab, 1);
    if (!s->cand || !s->seen) {
        qc_sampler_free(s);
        return NULL;
    }
    uint64_t seed = params->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&seed);
    return s;
}

void qc_sampler_free(qc_sampler_t *s) {
    if (!s) return;
    free(s->cand);
    free(s->seen);
    free(s);
}

/* Sorts candidates by logit, highest first; equal logits by lower id. */
static int cand_cmp(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Restores the min-heap h[0..k) below position i. */
static void sift_down(float *h, size_t k, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && h[l] < h[m]) m = l;
        if (r < k && h[r] < h[m]) m = r;
        if (m == i) return;
        float t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* The k-th largest of v[0..n) (1 <= k <= n): a min-heap of the k largest
 * seen so far, in heap (k floats); one comparison for most elements. */
static float kth_largest(const float *v, int32_t n, size_t k, float *heap) {
    memcpy(heap, v, k * sizeof *heap);
    for (size_t i = k / 2; i-- > 0;) sift_down(heap, k, i);
    for (int32_t i = (int32_t)k; i < n; i++)
        if (v[i] > heap[0]) {
            heap[0] = v[i];
            sift_down(heap, k, 0);
        }
    return heap[0];
}

int32_t qc_sampler_sample(qc_sampler_t *s, float *logits, const int32_t *history, size_t n_history) {
    const qc_sampling_t *p = &s->p;
    int32_t n = s->n_vocab;

    if (p->repetition_penalty > 0 && p->repetition_penalty != 1.0f && history) {
        /* Each distinct id is penalized once, as torch.gather/scatter does. */
        for (size_t i = 0; i < n_history; i++) {
            int32_t id = history[i];
            if (id < 0 || id >= n || s->seen[id]) continue;
            s->seen[id] = 1;
            float l = logits[id];
            logits[id] = l < 0 ? l * p->repetition_penalty : l / p->repetition_penalty;
        }
        for (size_t i = 0; i < n_history; i++)
            if (history[i] >= 0 && history[i] < n) s->seen[history[i]] = 0;
    }

    if (!(p->temperature > 0)) { /* greedy */
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    for (int32_t i = 0; i < n; i++) logits[i] /= p->temperature;
    size_t m = 0;
    if (p->top_k > 0 && p->top_k < n) {
        /* HF keeps every token whose logit equals the k-th largest too. The
         * candidates' memory holds the heap until they are written. */
        float kth = kth_largest(logits, n, (size_t)p->top_k, (float *)s->cand);
        for (int32_t i = 0; i < n; i++)
            if (logits[i] >= kth) s->cand[m++] = (cand_t){logits[i], i};
    } else {
        for (int32_t i = 0; i < n; i++) s->cand[m++] = (cand_t){logits[i], i};
    }
    qsort(s->cand, m, sizeof *s->cand, cand_cmp);

    /* Softmax over the survivors (probabilities kept in .logit from here). */
    float mx = s->cand[0].logit;
    double sum = 0;
    for (size_t i = 0; i < m; i++) sum += exp((double)s->cand[i].logit - mx);
    for (size_t i = 0; i < m; i++) s->cand[i].logit = (float)(exp((double)s->cand[i].logit - mx) / sum);

    if (p->top_p > 0 && p->top_p < 1) {
        /* HF removes the tokens whose ascending cumulative probability is
         * <= 1 - top_p; i.e. it keeps the smallest head whose tail mass left
         * out is below 1 - top_p. Walk from the least likely. */
        double cum = 0;
        size_t keep = m;
        for (size_t i = m; i-- > 1;) {
            cum += s->cand[i].logit;
            if (cum <= 1.0 - p->top_p) keep = i;
            else break;
        }
        m = keep;
    }
    if (p->min_p > 0 && p->min_p <= 1) {
        float thr = p->min_p * s->cand[0].logit;
        size_t keep = 1;
        while (keep < m && s->cand[keep].logit >= thr) keep++;
        m = keep;
    }

    double total = 0;
    for (size_t i = 0; i < m; i++) total += s->cand[i].logit;
    double r = uniform(s->rng) * total, acc = 0;
    for (size_t i = 0; i < m; i++) {
        acc += s->cand[i].logit;
        if (r < acc) return s->cand[i].id;
    }
    return s->cand[m - 1].id;
}
