/* store.c — the store handle over a backend: the pool of reader
 * connections, the writer thread and its queue, pages of sessions with
 * their cursors, erasure and purging (records.h). Nothing here knows SQL. */
#include "records/backend.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 4          /* idle reader connections kept open */
#define PURGE_BATCH 500     /* turns per purge transaction (a few ms of lock) */
#define PURGE_PAUSE_US 2000 /* between purge transactions: room for the writer */
#define RETRY_MIN_MS 100    /* first wait before connecting again to a store that went away */
#define RETRY_MAX_MS 2000   /* the longest wait (doubling from RETRY_MIN_MS) */

/* A submitted turn: a deep copy of the caller's (strings and ids follow the
 * struct in the same allocation). */
typedef struct job {
    struct job *next;
    qc_rec_turn_t t;
    qc_rec_done_fn done;
    void *user;
} job_t;

struct qc_store {
    const qc_rec_backend_t *be;
    char *path;
    qc_store_opts_t opts;

    pthread_mutex_t lock; /* guards everything below */
    qc_rec_conn_t *idle[POOL_MAX];
    int n_idle;

    pthread_t writer;
    int writer_started, stopping, hold, fail_writes;
    pthread_cond_t wake;
    job_t *head, *tail;
    const qc_rec_turn_t **batch; /* max_batch slots, the writer's */
    job_t **batch_jobs;
    qc_store_stats_t stats;

    /* The writer's reconnection backoff (its own fields, no lock). */
    double retry_at_ms; /* qc_now_ms() before which no new connection is tried */
    int backoff_ms;     /* the wait after the next failed try */
    char down_err[512]; /* why the last try failed */
    atomic_int unreachable; /* the writer's last try found the store away (cleared by its next commit or probe) */
};

static qc_status writer_start(qc_store_t *s, char *err, size_t err_size);

/* ==== connections ==== */

static int conn_usable(qc_store_t *s, qc_rec_conn_t *c) {
    return !s->be->conn_usable || s->be->conn_usable(c);
}

/* An idle connection that still works (those whose server went away are
 * closed), or a new one. */
static qc_status conn_get(qc_store_t *s, qc_rec_conn_t **c, char *err, size_t err_size) {
    for (;;) {
        pthread_mutex_lock(&s->lock);
        *c = s->n_idle ? s->idle[--s->n_idle] : NULL;
        pthread_mutex_unlock(&s->lock);
        if (!*c) return s->be->conn_open(s->path, &s->opts, c, err, err_size);
        if (conn_usable(s, *c)) return QC_OK;
        s->be->conn_close(*c);
    }
}

static void conn_put(qc_store_t *s, qc_rec_conn_t *c) {
    pthread_mutex_lock(&s->lock);
    if (s->n_idle < POOL_MAX && conn_usable(s, c)) {
        s->idle[s->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (c) s->be->conn_close(c);
}

/* ==== open / close ==== */

int qc_store_path_is_url(const char *path) {
    return path && (!strncmp(path, "postgres://", 11) || !strncmp(path, "postgresql://", 13));
}

qc_status qc_store_open(const char *path, const qc_store_opts_t *opts, qc_store_t **out, char *err,
                        size_t err_size) {
    *out = NULL;
    if (!path || !*path) return qc_seterr(err, err_size, QC_ERR_ARG, "records: no store path given");
    qc_store_t *s = calloc(1, sizeof *s);
    if (!s) return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: out of memory");
    s->be = qc_store_path_is_url(path) ? &qc_rec_pg : &qc_rec_sqlite;
    if (opts) s->opts = *opts;
    if (s->opts.busy_timeout_ms <= 0) s->opts.busy_timeout_ms = 5000;
    if (s->opts.max_batch <= 0) s->opts.max_batch = 256;
    if (s->opts.max_queue <= 0) s->opts.max_queue = 4096;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    qc_status st = QC_ERR_NOMEM;
    s->path = strdup(path);
    s->batch = malloc((size_t)s->opts.max_batch * sizeof *s->batch);
    s->batch_jobs = malloc((size_t)s->opts.max_batch * sizeof *s->batch_jobs);
    if (!s->path || !s->batch || !s->batch_jobs) {
        qc_seterr(err, err_size, st, "records: out of memory");
        goto fail;
    }
    /* The first connection creates and migrates the file, so that a bad
     * path or a newer schema is reported here, not at the first write. */
    qc_rec_conn_t *c;
    if ((st = s->be->conn_open(path, &s->opts, &c, err, err_size))) goto fail;
    conn_put(s, c);
    if (s->opts.probe_ms > 0 && !s->opts.read_only) { /* the probes run on the writer, idle or not */
        pthread_mutex_lock(&s->lock);
        st = writer_start(s, err, err_size);
        pthread_mutex_unlock(&s->lock);
        if (st) goto fail;
    }
    *out = s;
    return QC_OK;
fail:
    qc_store_close(s);
    return st;
}

void qc_store_close(qc_store_t *s) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    s->hold = 0;
    pthread_cond_broadcast(&s->wake);
    int started = s->writer_started;
    pthread_mutex_unlock(&s->lock);
    if (started) pthread_join(s->writer, NULL);
    for (int i = 0; i < s->n_idle; i++) s->be->conn_close(s->idle[i]);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s->batch);
    free(s->batch_jobs);
    free(s->path);
    free(s);
}

/* ==== the writer ==== */

/* The writer's connection in *c: kept while it works, else a new one. A
 * store that went away is tried again after RETRY_MIN_MS, doubling up to
 * RETRY_MAX_MS while it stays away; until then the writes fail at once
 * (QC_ERR_IO: the server answers 503), none waits or is dropped. */
static qc_status writer_conn(qc_store_t *s, qc_rec_conn_t **c, char *err, size_t err_size) {
    if (*c && conn_usable(s, *c)) return QC_OK;
    if (*c) s->be->conn_close(*c);
    *c = NULL;
    double now = qc_now_ms();
    if (now < s->retry_at_ms)
        return qc_seterr(err, err_size, QC_ERR_IO, "records: the store is unreachable (next try in %.0f ms): %s",
                         s->retry_at_ms - now, s->down_err);
    qc_status st = s->be->conn_open(s->path, &s->opts, c, err, err_size);
    if (!st) {
        s->backoff_ms = 0;
        s->retry_at_ms = 0;
        return QC_OK;
    }
    s->backoff_ms = s->backoff_ms ? (s->backoff_ms * 2 < RETRY_MAX_MS ? s->backoff_ms * 2 : RETRY_MAX_MS) : RETRY_MIN_MS;
    s->retry_at_ms = now + s->backoff_ms;
    snprintf(s->down_err, sizeof s->down_err, "%s", err ? err : "");
    return st;
}

/* The idle writer's probe (opts.probe_ms): its connection, made again as
 * a write would (with the same backoff), and a round trip on it; the
 * outcome is what qc_store_reachable says until the next write or probe. */
static void writer_probe(qc_store_t *s, qc_rec_conn_t **c) {
    char err[512];
    qc_status st = writer_conn(s, c, err, sizeof err);
    if (!st && s->be->ping) st = s->be->ping(*c, err, sizeof err);
    if (st && *c && !conn_usable(s, *c)) {
        s->be->conn_close(*c);
        *c = NULL;
    }
    atomic_store(&s->unreachable, st != QC_OK);
}

/* Waits (lock held) until there is work or a stop; with probe_ms, probes
 * the store each time it has been idle that long. */
static void writer_wait(qc_store_t *s, qc_rec_conn_t **c) {
    while (!s->stopping && (!s->head || s->hold)) {
        if (s->opts.probe_ms <= 0) {
            pthread_cond_wait(&s->wake, &s->lock);
            continue;
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += s->opts.probe_ms / 1000;
        dl.tv_nsec += (long)(s->opts.probe_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
        if (pthread_cond_timedwait(&s->wake, &s->lock, &dl) == ETIMEDOUT && !s->stopping && !s->head) {
            pthread_mutex_unlock(&s->lock);
            writer_probe(s, c);
            pthread_mutex_lock(&s->lock);
        }
    }
}

/* Takes everything queued (up to max_batch) into one transaction, tells
 * each submitter, and goes on; on stop, drains the queue first. */
static void *writer_main(void *arg) {
    qc_store_t *s = arg;
    qc_rec_conn_t *c = NULL;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        writer_wait(s, &c);
        if (!s->head) break;
        size_t k = 0;
        while (s->head && k < (size_t)s->opts.max_batch) {
            job_t *j = s->head;
            s->head = j->next;
            s->batch_jobs[k] = j;
            s->batch[k++] = &j->t;
        }
        if (!s->head) s->tail = NULL;
        s->stats.queued -= k;
        int fail = s->fail_writes > 0;
        if (fail) s->fail_writes--;
        pthread_mutex_unlock(&s->lock);

        char err[512] = "";
        qc_status st = writer_conn(s, &c, err, sizeof err);
        if (!st) st = s->be->insert(c, s->batch, k, fail, err, sizeof err);
        if (st && c && !conn_usable(s, c)) {
            /* The connection broke (the server restarted, a network blip):
             * once more on a new one. A batch whose COMMIT was lost may be
             * in already; the backend skips turns whose ids are there. */
            s->be->conn_close(c);
            c = NULL;
            char err2[512];
            if (!writer_conn(s, &c, err2, sizeof err2)) st = s->be->insert(c, s->batch, k, fail, err, sizeof err);
        }

        /* reachability for /ready: lost with the connection, back with a commit */
        if (st && (!c || !conn_usable(s, c))) atomic_store(&s->unreachable, 1);
        else if (!st) atomic_store(&s->unreachable, 0);
        pthread_mutex_lock(&s->lock);
        if (st) {
            s->stats.errors += k;
        } else {
            s->stats.committed += k;
            s->stats.transactions++;
        }
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < k; i++) {
            job_t *j = s->batch_jobs[i];
            if (j->done) j->done(j->user, st, &j->t.id, st ? err : NULL);
            free(j);
        }
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    if (c) s->be->conn_close(c);
    return NULL;
}

int qc_store_reachable(qc_store_t *s) { return s && !atomic_load(&s->unreachable); }

/* Room for a string of n bytes and its NUL, overflow-checked: 0 or -1. */
static int add_size(size_t *total, const char *str, size_t n) {
    if (!str) return 0;
    if (n >= SIZE_MAX - *total) return -1;
    *total += n + 1;
    return 0;
}

/* Copies n bytes of str (NULL stays NULL) to *p, NUL-terminated. */
static const char *put_str(char **p, const char *str, size_t n) {
    if (!str) return NULL;
    char *d = *p;
    memcpy(d, str, n);
    d[n] = 0;
    *p += n + 1;
    return d;
}

static qc_status check_turn(const qc_rec_turn_t *t, char *err, size_t err_size) {
    size_t sl = t->session_id ? strlen(t->session_id) : 0;
    if (sl == 0 || sl > QC_REC_SESSION_MAX)
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: session id must be 1..%d bytes", QC_REC_SESSION_MAX);
    if (t->patient_id && strlen(t->patient_id) > QC_REC_SESSION_MAX)
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: patient id over %d bytes", QC_REC_SESSION_MAX);
    if ((!t->message && t->message_len) || (!t->reply && t->reply_len) ||
        (!t->prompt_ids && t->n_prompt_ids) || (!t->reply_ids && t->n_reply_ids))
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: a length without its data");
    if ((unsigned)t->emotion > 2)
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: emotion %d is not 0..2", t->emotion);
    for (int i = 0; i < 3; i++)
        if (!(t->probs[i] >= 0 && t->probs[i] <= 1))
            return qc_seterr(err, err_size, QC_ERR_ARG, "records: probability %d is not in [0, 1]", i);
    if ((unsigned)t->finish > QC_FINISH_ERROR)
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: finish reason %d unknown", (int)t->finish);
    if (!isnan(t->model_urgent_p) && !(t->model_urgent_p >= 0 && t->model_urgent_p <= 1))
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: model urgency is not in [0, 1] or NAN");
    if (t->prompt_tokens < 0 || t->completion_tokens < 0 || t->dropped_turns < 0)
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: a negative count");
    for (size_t i = 0; i < t->n_prompt_ids; i++)
        if (t->prompt_ids[i] < 0) return qc_seterr(err, err_size, QC_ERR_ARG, "records: a negative prompt id");
    for (size_t i = 0; i < t->n_reply_ids; i++)
        if (t->reply_ids[i] < 0) return qc_seterr(err, err_size, QC_ERR_ARG, "records: a negative reply id");
    return QC_OK;
}

/* One allocation holding the job, its ids and its strings. */
static job_t *job_copy(const qc_rec_turn_t *t) {
    const char *const strs[] = {t->session_id, t->patient_id, t->urgent_kind, t->urgent_rule, t->model_name,
                                t->model_hash, t->weight_type, t->prompt_version, t->safety_version};
    enum { NSTR = sizeof strs / sizeof strs[0] };
    size_t lens[NSTR];
    size_t n_ids = t->n_prompt_ids + t->n_reply_ids;
    if (n_ids < t->n_prompt_ids || n_ids > (SIZE_MAX - sizeof(job_t)) / 8) return NULL;
    size_t total = sizeof(job_t) + n_ids * sizeof(int32_t);
    for (int i = 0; i < NSTR; i++) {
        lens[i] = strs[i] ? strlen(strs[i]) : 0;
        if (add_size(&total, strs[i], lens[i])) return NULL;
    }
    if (add_size(&total, "", t->message_len) || add_size(&total, "", t->reply_len)) return NULL;
    job_t *j = malloc(total);
    if (!j) return NULL;
    j->t = *t;
    int32_t *ids = (int32_t *)(j + 1);
    if (t->n_prompt_ids) memcpy(ids, t->prompt_ids, t->n_prompt_ids * sizeof *ids);
    if (t->n_reply_ids) memcpy(ids + t->n_prompt_ids, t->reply_ids, t->n_reply_ids * sizeof *ids);
    j->t.prompt_ids = t->n_prompt_ids ? ids : NULL;
    j->t.reply_ids = t->n_reply_ids ? ids + t->n_prompt_ids : NULL;
    char *p = (char *)(ids + n_ids);
    const char **dst[NSTR] = {&j->t.session_id,  &j->t.patient_id,  &j->t.urgent_kind,
                              &j->t.urgent_rule, &j->t.model_name,  &j->t.model_hash,
                              &j->t.weight_type, &j->t.prompt_version, &j->t.safety_version};
    for (int i = 0; i < NSTR; i++) *dst[i] = put_str(&p, strs[i], lens[i]);
    j->t.message = put_str(&p, t->message ? t->message : "", t->message_len);
    j->t.reply = put_str(&p, t->reply ? t->reply : "", t->reply_len);
    return j;
}

/* Starts the writer thread unless it runs (lock held). */
static qc_status writer_start(qc_store_t *s, char *err, size_t err_size) {
    if (s->writer_started) return QC_OK;
    if (pthread_create(&s->writer, NULL, writer_main, s))
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: cannot start the writer thread");
    s->writer_started = 1;
    return QC_OK;
}

qc_status qc_store_submit(qc_store_t *s, const qc_rec_turn_t *t, qc_rec_done_fn done, void *user,
                          qc_rec_id_t *id_out, char *err, size_t err_size) {
    if (s->opts.read_only) return qc_seterr(err, err_size, QC_ERR_ARG, "records: the store was opened read-only");
    qc_status st = check_turn(t, err, err_size);
    if (st) return st;
    job_t *j = job_copy(t);
    if (!j) return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: out of memory copying a turn");
    j->next = NULL;
    j->done = done;
    j->user = user;
    if (qc_rec_id_is_nil(&j->t.id)) qc_rec_id_new(&j->t.id);
    if (!j->t.ts_ms) j->t.ts_ms = qc_rec_now_ms();
    if (id_out) *id_out = j->t.id;

    pthread_mutex_lock(&s->lock);
    if (s->stats.queued >= (uint64_t)s->opts.max_queue) {
        st = qc_seterr(err, err_size, QC_ERR_BUSY, "records: %d turns already wait for the writer",
                       s->opts.max_queue);
    } else {
        st = writer_start(s, err, err_size);
    }
    if (st) {
        s->stats.errors++;
        pthread_mutex_unlock(&s->lock);
        free(j);
        return st;
    }
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->stats.queued++;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return QC_OK;
}

/* qc_store_write waits on one of these. */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    int done;
    qc_status st;
    char *err;
    size_t err_size;
} waiter_t;

static void on_written(void *user, qc_status st, const qc_rec_id_t *id, const char *err) {
    (void)id;
    waiter_t *w = user;
    pthread_mutex_lock(&w->m);
    w->st = st;
    if (st) qc_seterr(w->err, w->err_size, st, "%s", err);
    w->done = 1;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

qc_status qc_store_write(qc_store_t *s, const qc_rec_turn_t *t, qc_rec_id_t *id_out, char *err,
                         size_t err_size) {
    waiter_t w = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER, .err = err, .err_size = err_size};
    qc_status st = qc_store_submit(s, t, on_written, &w, id_out, err, err_size);
    if (st) return st;
    pthread_mutex_lock(&w.m);
    while (!w.done) pthread_cond_wait(&w.c, &w.m);
    pthread_mutex_unlock(&w.m);
    pthread_cond_destroy(&w.c);
    pthread_mutex_destroy(&w.m);
    return w.st;
}

void qc_store_stats(qc_store_t *s, qc_store_stats_t *out) {
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}

void qc_store_test_fail_writes(qc_store_t *s, int n) {
    pthread_mutex_lock(&s->lock);
    s->fail_writes = n;
    pthread_mutex_unlock(&s->lock);
}

void qc_store_test_hold(qc_store_t *s, int hold) {
    pthread_mutex_lock(&s->lock);
    s->hold = hold;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

/* ==== pages of sessions ==== */

/* A cursor is the sort key of the last session of a page:
 * "r.RISK.LAST_MS.HEX(session id)" for order=risk, "t.LAST_MS.HEX" for
 * order=recent. Opaque to clients; URL-safe. */
static void cursor_encode(qc_rec_order_t order, const qc_rec_key_t *k, char *out) {
    int n = order == QC_REC_ORDER_RISK
                ? snprintf(out, QC_REC_CURSOR_MAX, "r.%lld.%lld.", (long long)k->risk, (long long)k->last_ms)
                : snprintf(out, QC_REC_CURSOR_MAX, "t.%lld.", (long long)k->last_ms);
    qc_rec_hex_encode(k->session_id, strlen(k->session_id), out + n);
}

/* The decimal number at *p up to the next '.', advancing past it. */
static int cursor_num(const char **p, int64_t *v) {
    char *end;
    long long x = strtoll(*p, &end, 10);
    if (end == *p || *end != '.') return -1;
    *v = x;
    *p = end + 1;
    return 0;
}

static int cursor_decode(const char *c, qc_rec_order_t order, qc_rec_key_t *k,
                         char sid[QC_REC_SESSION_MAX + 1]) {
    const char *p = c;
    k->risk = 0;
    if (order == QC_REC_ORDER_RISK) {
        if (strncmp(p, "r.", 2)) return -1;
        p += 2;
        if (cursor_num(&p, &k->risk)) return -1;
    } else {
        if (strncmp(p, "t.", 2)) return -1;
        p += 2;
    }
    if (cursor_num(&p, &k->last_ms)) return -1;
    size_t n = strlen(p);
    if (n == 0 || n % 2 || n / 2 > QC_REC_SESSION_MAX || qc_rec_hex_decode(p, n, (uint8_t *)sid)) return -1;
    if (memchr(sid, 0, n / 2)) return -1;
    sid[n / 2] = 0;
    k->session_id = sid;
    return 0;
}

/* Passes the first `limit` sessions on and notes whether one more came. */
typedef struct {
    qc_rec_session_fn fn;
    void *user;
    int limit, delivered, more;
    int64_t risk, last_ms;
    char sid[QC_REC_SESSION_MAX + 1];
} page_t;

static int page_cb(void *user, const qc_rec_session_t *ss) {
    page_t *pg = user;
    if (pg->delivered == pg->limit) {
        pg->more = 1;
        return 1;
    }
    pg->delivered++;
    pg->risk = llround(ss->risk * 1e6);
    pg->last_ms = ss->last_ms;
    snprintf(pg->sid, sizeof pg->sid, "%s", ss->session_id);
    return pg->fn(pg->user, ss) != 0;
}

qc_status qc_store_sessions(qc_store_t *s, const qc_rec_query_t *q, qc_rec_session_fn fn, void *user,
                            char *next, char *err, size_t err_size) {
    if (next) next[0] = 0;
    int limit = q->limit ? q->limit : 50;
    if (limit < 1 || limit > QC_REC_LIMIT_MAX)
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: limit %d is not in 1..%d", q->limit, QC_REC_LIMIT_MAX);
    if (q->order != QC_REC_ORDER_RISK && q->order != QC_REC_ORDER_RECENT)
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: unknown order %d", (int)q->order);
    qc_rec_key_t key;
    char sid[QC_REC_SESSION_MAX + 1];
    int has_cursor = q->cursor && *q->cursor;
    if (has_cursor && cursor_decode(q->cursor, q->order, &key, sid))
        return qc_seterr(err, err_size, QC_ERR_ARG, "records: the cursor is malformed or for another order");
    qc_rec_conn_t *c;
    qc_status st = conn_get(s, &c, err, err_size);
    if (st) return st;
    page_t pg = {.fn = fn, .user = user, .limit = limit};
    st = s->be->sessions(c, q, has_cursor ? &key : NULL, limit + 1, page_cb, &pg, err, err_size);
    conn_put(s, c);
    if (!st && pg.more && next) {
        qc_rec_key_t last = {.risk = pg.risk, .last_ms = pg.last_ms, .session_id = pg.sid};
        cursor_encode(q->order, &last, next);
    }
    return st;
}

/* ==== turns, tombstones, erasure, purging ==== */

/* A pooled connection for a read about session_id (which must not be empty). */
static qc_status session_conn(qc_store_t *s, const char *session_id, qc_rec_conn_t **c, char *err, size_t err_size) {
    if (!session_id || !*session_id) return qc_seterr(err, err_size, QC_ERR_ARG, "records: no session id");
    return conn_get(s, c, err, err_size);
}

qc_status qc_store_turns(qc_store_t *s, const char *session_id, qc_rec_turn_fn fn, void *user,
                         int64_t *n_turns, char *err, size_t err_size) {
    if (n_turns) *n_turns = 0;
    qc_rec_conn_t *c;
    qc_status st = session_conn(s, session_id, &c, err, err_size);
    if (st) return st;
    st = s->be->turns(c, session_id, 0, 0, fn, user, n_turns, err, err_size);
    conn_put(s, c);
    return st;
}

qc_status qc_store_turns_range(qc_store_t *s, int64_t since_ms, int64_t until_ms, qc_rec_turn_fn fn, void *user,
                               char *err, size_t err_size) {
    qc_rec_conn_t *c;
    qc_status st = conn_get(s, &c, err, err_size);
    if (st) return st;
    st = s->be->turns(c, NULL, since_ms, until_ms, fn, user, NULL, err, err_size);
    conn_put(s, c);
    return st;
}

qc_status qc_store_tombstone(qc_store_t *s, const char *session_id, int64_t *erased_ms, char *err,
                             size_t err_size) {
    *erased_ms = 0;
    qc_rec_conn_t *c;
    qc_status st = session_conn(s, session_id, &c, err, err_size);
    if (st) return st;
    st = s->be->tombstone(c, session_id, erased_ms, err, err_size);
    conn_put(s, c);
    return st;
}

qc_status qc_store_head(qc_store_t *s, const char *session_id, qc_rec_head_t *out, char *err, size_t err_size) {
    *out = (qc_rec_head_t){0};
    qc_rec_conn_t *c;
    qc_status st = session_conn(s, session_id, &c, err, err_size);
    if (!st) {
        st = s->be->head(c, session_id, out, err, err_size);
        conn_put(s, c);
    }
    return st;
}

qc_status qc_store_erase(qc_store_t *s, const char *session_id, int64_t *n_turns, int *checkpointed,
                         char *err, size_t err_size) {
    int64_t n = 0;
    int done = 0;
    if (s->opts.read_only) return qc_seterr(err, err_size, QC_ERR_ARG, "records: the store was opened read-only");
    if (!session_id || !*session_id) return qc_seterr(err, err_size, QC_ERR_ARG, "records: no session id");
    qc_rec_conn_t *c;
    qc_status st = conn_get(s, &c, err, err_size);
    if (!st) {
        st = s->be->erase(c, session_id, qc_rec_now_ms(), &n, err, err_size);
        if (!st) st = s->be->checkpoint(c, &done, err, err_size);
        conn_put(s, c);
    }
    if (n_turns) *n_turns = n;
    if (checkpointed) *checkpointed = done;
    return st;
}

qc_status qc_store_purge(qc_store_t *s, int64_t before_ms, int64_t *n_turns, char *err, size_t err_size) {
    int64_t total = 0;
    if (s->opts.read_only) return qc_seterr(err, err_size, QC_ERR_ARG, "records: the store was opened read-only");
    qc_rec_conn_t *c;
    qc_status st = conn_get(s, &c, err, err_size);
    if (!st) {
        for (;;) {
            int64_t n = 0;
            if ((st = s->be->purge_batch(c, before_ms, PURGE_BATCH, &n, err, err_size))) break;
            total += n;
            if (n < PURGE_BATCH) break;
            usleep(PURGE_PAUSE_US);
        }
        int done;
        if (!st) st = s->be->checkpoint(c, &done, err, err_size);
        conn_put(s, c);
    }
    if (n_turns) *n_turns = total;
    return st;
}
