/* base.h — the few helpers every module of qcare uses: one growable byte
 * buffer, one growable array of token ids, one monotonic clock, one error
 * setter, log-probabilities from a row of logits. Internal (not part of the public API); lives in libqcare.a, so the
 * engine, the care library, the server and the CLI all share these copies. */
#ifndef QC_BASE_H
#define QC_BASE_H

#include "qcare.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ==== errors ==== */

/* printf into err (if err and err_size > 0); returns `status` so callers can
 * write `return qc_seterr(err, n, QC_ERR_FORMAT, "...")`. */
qc_status qc_seterr(char *err, size_t err_size, qc_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same as "PATH: message", from a va_list (for readers that keep the
 * path of the file they read). */
qc_status qc_vseterr_at(char *err, size_t err_size, qc_status status, const char *path, const char *fmt,
                        va_list ap) __attribute__((format(printf, 5, 0)));

/* ==== clock ==== */

/* Seconds / milliseconds on CLOCK_MONOTONIC (for durations only). */
double qc_now_s(void);
double qc_now_ms(void);

/* ==== numbers in JSON answers ==== */

/* JSON answers print reals with 9 significant digits (enough to give back
 * a float exactly: the logits' precision), not jansson's 17; what a
 * reader takes as a probability or a time is rounded further, to 6. */
#define QC_JSON_REAL JSON_REAL_PRECISION(9)
/* x rounded to 6 significant digits (as "%.6g" prints it). */
double qc_round6(double x);

/* ==== growable byte buffer ==== */

/* p[0..n) holds the bytes, always followed by a NUL once anything was
 * added; cap is the allocation. A zeroed qc_buf_t is empty and valid.
 * `failed` latches an allocation failure: later appends do nothing, so a
 * caller may append freely and check once at the end. */
typedef struct {
    char *p;
    size_t n, cap;
    int failed;
} qc_buf_t;

/* Room for `extra` more bytes plus the NUL. 0, or -1 on OOM / size overflow
 * (and `failed` set). */
int qc_buf_reserve(qc_buf_t *b, size_t extra);
/* Appends n bytes of s (s may be NULL when n is 0). 0 or -1. */
int qc_buf_add(qc_buf_t *b, const void *s, size_t n);
/* Appends a NUL-terminated string. 0 or -1. */
int qc_buf_puts(qc_buf_t *b, const char *s);
/* Appends printf output. 0 or -1. */
int qc_buf_printf(qc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands over the bytes (NUL-terminated, "" for an empty buffer; NULL when
 * an append failed): the caller frees them; the buffer is left empty. */
char *qc_buf_take(qc_buf_t *b);
/* Frees the bytes and empties the buffer (NULL is a no-op). */
void qc_buf_free(qc_buf_t *b);

/* ==== growable array of token ids ==== */

typedef struct {
    int32_t *p;
    size_t n, cap;
} qc_ids_t;

/* Appends one id / k ids. 0, or -1 on OOM (the array is unchanged). */
int qc_ids_push(qc_ids_t *v, int32_t id);
int qc_ids_add(qc_ids_t *v, const int32_t *ids, size_t k);
void qc_ids_free(qc_ids_t *v);

/* ==== log-probabilities from logits ==== */

/* log(sum_i exp(row[i])) over n >= 1 logits, in double (max-shifted, so
 * it never overflows): the log-probability of token id is
 * row[id] - qc_logsumexp(row, n). */
double qc_logsumexp(const float *row, int32_t n);
/* The k highest of row[0..n) into ids[k] and vals[k], best first, ties to
 * the lower id; returns how many (min(k, n), 0 for k <= 0). No allocation;
 * O(n k) worst case, about O(n) for small k. */
int qc_top_k(const float *row, int32_t n, int k, int32_t *ids, float *vals);

#endif
