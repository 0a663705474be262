/* export.c — turns as RFC 4180 CSV or JSON lines, streamed (records.h).
 * Both formats come from one list of columns (turn_fields), so they always
 * carry the same fields under the same names. */
#include "records/backend.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ==== the columns ==== */

enum { F_NULL, F_STR, F_INT, F_REAL, F_BOOL };

typedef struct {
    int kind;
    const char *s; /* F_STR: s[0..n) */
    size_t n;
    int64_t i;     /* F_INT, F_BOOL */
    double d;      /* F_REAL */
} field_t;

static const char *const columns[] = {
    "id",           "session_id",     "patient_id",     "time",          "message",    "emotion",
    "p_positive",   "p_negative",     "p_neutral",      "calibrated",    "urgent",     "urgent_kind",
    "urgent_rule",  "reply",          "finish",         "model",         "model_hash", "weight_type",
    "prompt_tokens", "completion_tokens", "emotion_ms", "ttft_ms",       "total_ms",   "prompt_version",
    "safety_version", "model_urgent_p", "dropped_turns"};
enum { NCOL = sizeof columns / sizeof columns[0] };

static field_t fstr(const char *s) { return s ? (field_t){.kind = F_STR, .s = s, .n = strlen(s)} : (field_t){0}; }
static field_t fint(int64_t i) { return (field_t){.kind = F_INT, .i = i}; }
static field_t freal(double d) { return isnan(d) ? (field_t){0} : (field_t){.kind = F_REAL, .d = d}; }
static field_t fbool(int b) { return (field_t){.kind = F_BOOL, .i = b != 0}; }

/* The columns of t, in the order of columns[]; id and time are written
 * into the caller's buffers. */
static void turn_fields(const qc_rec_turn_t *t, field_t f[NCOL], char id[QC_REC_ID_STRLEN + 1], char tm[32]) {
    qc_rec_id_format(&t->id, id);
    qc_rec_time_format(t->ts_ms, tm);
    int k = 0;
    f[k++] = fstr(id);
    f[k++] = fstr(t->session_id);
    f[k++] = fstr(t->patient_id);
    f[k++] = fstr(tm);
    f[k++] = (field_t){.kind = F_STR, .s = t->message ? t->message : "", .n = t->message ? t->message_len : 0};
    f[k++] = fstr(qc_rec_emotion_name(t->emotion));
    for (int i = 0; i < 3; i++) f[k++] = freal(t->probs[i]);
    f[k++] = fbool(t->calibrated);
    f[k++] = fbool(t->urgent);
    f[k++] = fstr(t->urgent_kind);
    f[k++] = fstr(t->urgent_rule);
    f[k++] = (field_t){.kind = F_STR, .s = t->reply ? t->reply : "", .n = t->reply ? t->reply_len : 0};
    f[k++] = fstr(qc_finish_name(t->finish));
    f[k++] = fstr(t->model_name);
    f[k++] = fstr(t->model_hash);
    f[k++] = fstr(t->weight_type);
    f[k++] = fint(t->prompt_tokens);
    f[k++] = fint(t->completion_tokens);
    f[k++] = freal(t->emotion_ms);
    f[k++] = freal(t->ttft_ms);
    f[k++] = freal(t->total_ms);
    f[k++] = fstr(t->prompt_version);
    f[k++] = fstr(t->safety_version);
    f[k++] = freal(t->model_urgent_p);
    f[k++] = fint(t->dropped_turns);
}

/* ==== CSV ==== */

/* One field, quoted when it holds a comma, a quote, CR or LF (quotes
 * doubled); NULL is the empty field. */
static void csv_field(qc_buf_t *b, const field_t *f) {
    switch (f->kind) {
    case F_STR:
        if (!memchr(f->s, ',', f->n) && !memchr(f->s, '"', f->n) && !memchr(f->s, '\r', f->n) &&
            !memchr(f->s, '\n', f->n)) {
            qc_buf_add(b, f->s, f->n);
            break;
        }
        qc_buf_add(b, "\"", 1);
        for (const char *p = f->s, *e = f->s + f->n; p < e;) {
            const char *q = memchr(p, '"', (size_t)(e - p));
            size_t run = q ? (size_t)(q - p + 1) : (size_t)(e - p);
            qc_buf_add(b, p, run);
            if (q) qc_buf_add(b, "\"", 1);
            p += run;
        }
        qc_buf_add(b, "\"", 1);
        break;
    case F_INT: qc_buf_printf(b, "%lld", (long long)f->i); break;
    case F_REAL: qc_buf_printf(b, "%.6g", f->d); break;
    case F_BOOL: qc_buf_puts(b, f->i ? "true" : "false"); break;
    default: break;
    }
}

static void csv_row(qc_buf_t *b, const qc_rec_turn_t *t) {
    field_t f[NCOL];
    char id[QC_REC_ID_STRLEN + 1], tm[32];
    turn_fields(t, f, id, tm);
    for (int i = 0; i < NCOL; i++) {
        if (i) qc_buf_add(b, ",", 1);
        csv_field(b, &f[i]);
    }
    qc_buf_add(b, "\r\n", 2);
}

/* ==== JSON lines ==== */

/* A JSON string of s[0..n); bytes that are not UTF-8 become U+FFFD (the
 * store keeps the bytes as given, but JSON must be UTF-8). */
static json_t *json_str(const char *s, size_t n, qc_buf_t *tmp) {
    json_t *j = json_stringn(s, n);
    if (j) return j;
    if (qc_rec_utf8_clean(s, n, 1, tmp) < 0) return NULL;
    return json_stringn(tmp->p ? tmp->p : "", tmp->n);
}

typedef struct {
    qc_rec_write_fn out;
    void *user;
} sink_t;

static int sink_dump(const char *buf, size_t n, void *data) {
    sink_t *k = data;
    return k->out(k->user, buf, n) ? -1 : 0;
}

/* Dumps o (consumed) as one JSON line through out. */
static qc_status dump_line(json_t *o, qc_rec_write_fn out, void *user) {
    sink_t k = {out, user};
    int rc = json_dump_callback(o, sink_dump, &k, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    return rc || out(user, "\n", 1) ? QC_ERR_IO : QC_OK;
}

/* A JSON value of f; NULL when out of memory. */
static json_t *json_field(const field_t *f, qc_buf_t *tmp) {
    switch (f->kind) {
    case F_STR: return json_str(f->s, f->n, tmp);
    case F_INT: return json_integer(f->i);
    case F_REAL: return json_real(f->d);
    case F_BOOL: return json_boolean(f->i);
    default: return json_null();
    }
}

/* An object of n named fields; NULL when out of memory. */
static json_t *json_fields(const char *const *names, const field_t *f, int n, qc_buf_t *tmp) {
    json_t *o = json_object();
    for (int i = 0; o && i < n; i++) {
        json_t *v = json_field(&f[i], tmp);
        if (!v || json_object_set_new(o, names[i], v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Writes t as one JSON line through out; tmp is scratch. QC_ERR_NOMEM, or
 * QC_ERR_IO when out refused the bytes. */
static qc_status jsonl_row(const qc_rec_turn_t *t, qc_buf_t *tmp, qc_rec_write_fn out, void *user) {
    field_t f[NCOL];
    char id[QC_REC_ID_STRLEN + 1], tm[32];
    turn_fields(t, f, id, tm);
    json_t *o = json_fields(columns, f, NCOL, tmp);
    return o ? dump_line(o, out, user) : QC_ERR_NOMEM;
}

qc_status qc_rec_session_jsonl(const qc_rec_session_t *s, qc_rec_write_fn out, void *user) {
    static const char *const names[] = {"session_id",    "patient_id", "first",        "last",
                                        "turns",         "last_emotion", "last_negative", "neg_streak",
                                        "urgent_count",  "trend",      "risk"};
    char first[32], last[32];
    qc_rec_time_format(s->first_ms, first);
    qc_rec_time_format(s->last_ms, last);
    field_t f[] = {fstr(s->session_id), fstr(s->patient_id), fstr(first),           fstr(last),
                   fint(s->turns),      fstr(qc_rec_emotion_name(s->last_emotion)), freal(s->last_negative),
                   fint(s->neg_streak), fint(s->urgent_count), freal(s->trend),     freal(s->risk)};
    _Static_assert(sizeof f / sizeof f[0] == sizeof names / sizeof names[0], "one name per field");
    qc_buf_t tmp = {0};
    json_t *o = json_fields(names, f, (int)(sizeof f / sizeof f[0]), &tmp);
    qc_buf_free(&tmp);
    return o ? dump_line(o, out, user) : QC_ERR_NOMEM;
}

qc_status qc_rec_turn_jsonl(const qc_rec_turn_t *t, qc_rec_write_fn out, void *user) {
    qc_buf_t tmp = {0};
    qc_status st = jsonl_row(t, &tmp, out, user);
    qc_buf_free(&tmp);
    return st;
}

/* ==== the export ==== */

typedef struct {
    qc_rec_format_t fmt;
    qc_rec_write_fn out;
    void *user;
    qc_buf_t row, tmp; /* reused for every row: memory stays at the largest row */
    qc_status st;
} export_t;

static int export_row(void *user, const qc_rec_turn_t *t) {
    export_t *x = user;
    if (x->fmt == QC_REC_JSONL) {
        x->st = jsonl_row(t, &x->tmp, x->out, x->user);
        return x->st != QC_OK;
    }
    x->row.n = 0;
    csv_row(&x->row, t);
    if (x->row.failed) x->st = QC_ERR_NOMEM;
    else if (x->out(x->user, x->row.p, x->row.n)) x->st = QC_ERR_IO;
    return x->st != QC_OK;
}

qc_status qc_store_export(qc_store_t *s, qc_rec_format_t fmt, int64_t since_ms, int64_t until_ms,
                          qc_rec_write_fn out, void *user, char *err, size_t err_size) {
    if (fmt != QC_REC_CSV && fmt != QC_REC_JSONL)
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: unknown export format %d", (int)fmt);
    export_t x = {.fmt = fmt, .out = out, .user = user};
    if (fmt == QC_REC_CSV) {
        for (int i = 0; i < NCOL; i++) qc_buf_printf(&x.row, "%s%s", i ? "," : "", columns[i]);
        qc_buf_add(&x.row, "\r\n", 2);
        if (x.row.failed) x.st = QC_ERR_NOMEM;
        else if (out(user, x.row.p, x.row.n)) x.st = QC_ERR_IO;
    }
    qc_status st = x.st ? x.st : qc_store_turns_range(s, since_ms, until_ms, export_row, &x, err, err_size);
    if (!st && x.st) st = x.st;
    if (x.st == QC_ERR_IO) qc_seterr(err, err_size, st, "records: export: the output stopped taking bytes");
    if (x.st == QC_ERR_NOMEM) qc_seterr(err, err_size, st, "records: export: out of memory");
    qc_buf_free(&x.row);
    qc_buf_free(&x.tmp);
    return st;
}
