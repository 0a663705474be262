/* base.c — the shared buffer, id array, clock, error setter and
 * log-probability helpers (base.h). */
#include "base/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ==== errors ==== */

qc_status qc_seterr(char *err, size_t err_size, qc_status status, const char *fmt, ...) {
    if (err && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return status;
}

qc_status qc_vseterr_at(char *err, size_t err_size, qc_status status, const char *path, const char *fmt,
                        va_list ap) {
    if (err && err_size > 0) {
        int k = snprintf(err, err_size, "%s: ", path);
        if (k >= 0 && (size_t)k < err_size) vsnprintf(err + k, err_size - (size_t)k, fmt, ap);
    }
    return status;
}

/* ==== clock ==== */

double qc_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double qc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ==== numbers in JSON answers ==== */

double qc_round6(double x) {
    char s[32];
    snprintf(s, sizeof s, "%.6g", x);
    return strtod(s, NULL);
}

/* ==== growable byte buffer ==== */

int qc_buf_reserve(qc_buf_t *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > SIZE_MAX / 2 - b->n) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->n + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int qc_buf_add(qc_buf_t *b, const void *s, size_t n) {
    if (qc_buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

int qc_buf_puts(qc_buf_t *b, const char *s) { return qc_buf_add(b, s, strlen(s)); }

int qc_buf_printf(qc_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || qc_buf_reserve(b, (size_t)k)) {
        b->failed = 1;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
    return 0;
}

char *qc_buf_take(qc_buf_t *b) {
    if (b->failed) {
        qc_buf_free(b);
        return NULL;
    }
    char *p = b->p;
    if (!p) p = calloc(1, 1);
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

void qc_buf_free(qc_buf_t *b) {
    if (!b) return;
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->failed = 0;
}

/* ==== growable array of token ids ==== */

int qc_ids_add(qc_ids_t *v, const int32_t *ids, size_t k) {
    if (k > SIZE_MAX / sizeof(int32_t) / 2 - v->n) return -1;
    if (v->n + k > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->n + k) cap *= 2;
        int32_t *p = realloc(v->p, cap * sizeof *p);
        if (!p) return -1;
        v->p = p;
        v->cap = cap;
    }
    if (k) memcpy(v->p + v->n, ids, k * sizeof *ids);
    v->n += k;
    return 0;
}

int qc_ids_push(qc_ids_t *v, int32_t id) { return qc_ids_add(v, &id, 1); }

void qc_ids_free(qc_ids_t *v) {
    if (!v) return;
    free(v->p);
    v->p = NULL;
    v->n = v->cap = 0;
}

/* ==== log-probabilities from logits ==== */

double qc_logsumexp(const float *row, int32_t n) {
    float mx = row[0];
    for (int32_t i = 1; i < n; i++)
        if (row[i] > mx) mx = row[i];
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += exp((double)row[i] - mx);
    return mx + log(s);
}

int qc_top_k(const float *row, int32_t n, int k, int32_t *ids, float *vals) {
    if (k > n) k = (int)n;
    /* insertion into the sorted list of the k best so far: a value enters
     * only when it beats the k-th, which soon becomes rare */
    int have = 0;
    for (int32_t id = 0; id < n && k > 0; id++) {
        float v = row[id];
        if (have == k && !(v > vals[k - 1])) continue;
        int j = have < k ? have++ : k - 1;
        while (j > 0 && v > vals[j - 1]) {
            vals[j] = vals[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        vals[j] = v;
        ids[j] = id;
    }
    return have;
}
