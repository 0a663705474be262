/* records_hook.c — the server's side of the consultation records
 * (src/records/records.h): the store it writes, the model's identity each
 * record carries, the calls that keep a session from being erased under
 * them, erasure (the conversation's KV state too) and retention.
 *
 * The durability contract lives in api_care.c's callbacks: a judged turn is
 * submitted from the scheduler's on_done (a copy is queued; the model goes
 * on at once) and its call ends only in the store's commit callback, on
 * the writer's thread. Here is what those callbacks need, and the count of
 * commits not yet told that lets the server stop only once every waiting
 * answer could be sent (qs_records_drain). */
#include "server/srv.h"

#include "records/ident.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETAIN_EVERY_S 3600 /* how often retention runs */
#define SEEN_SLOTS 8192     /* sessions whose conversation state this process knows the basis of */
#define PROBE_MS 1000       /* a shared store idle this long is probed (for /ready) */

/* Upper bounds (seconds) of the commit-latency histogram's buckets. */
static const double commit_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};
#define N_COMMIT (int)(sizeof commit_bounds / sizeof commit_bounds[0])

/* A session some call is about, or that is being erased. */
typedef struct live {
    struct live *next;
    int pending; /* calls about it, from their start to their freeing */
    int erasing;
    char id[];
} live_t;

struct qs_records {
    qc_store_t *store;
    char model_hash[QC_REC_HASH_LEN + 1];
    const char *model_name, *weight_type; /* the server's, for its lifetime */
    int quiet;

    pthread_mutex_t mu; /* live, the histogram, the counter, in_flight */
    live_t *live;
    int in_flight;        /* submitted turns whose callback has not returned */
    int export_waits;     /* exports whose connection is suspended for want of bytes */
    pthread_cond_t idle;  /* in_flight or export_waits reached 0 */
    atomic_int stopping_http; /* qs_records_drain began: no export may suspend its connection */
    unsigned long long submit_errors; /* failures the store did not count itself */
    unsigned long long commit_bucket[N_COMMIT + 1], commit_count;
    double commit_sum;
    double writer_cpu_s; /* CPU time of the store's writer thread so far (its whole cost) */

    int retain_days; /* > 0: the retention thread runs */
    pthread_t retain_th;
    int retain_started, stopping;
    pthread_cond_t retain_cv;

    /* (mu) what this process's conversations were built from, direct-mapped
     * by the session's hash (0: an empty slot); a session whose slot another
     * took is rebuilt at its next turn */
    struct {
        uint64_t h;
        qc_rec_head_t head;
    } seen[SEEN_SLOTS];
};

/* ==== retention ==== */

static void *retain_main(void *arg) {
    qs_records_t *rec = arg;
    pthread_mutex_lock(&rec->mu);
    while (!rec->stopping) {
        pthread_mutex_unlock(&rec->mu);
        char err[512];
        int64_t n = 0, before = qc_rec_now_ms() - (int64_t)rec->retain_days * 86400000;
        qc_status st = qc_store_purge(rec->store, before, &n, err, sizeof err);
        if (st) fprintf(stderr, "qcare: retention: %s\n", err);
        else if (n && !rec->quiet)
            fprintf(stderr, "qcare: retention: removed %lld turns older than %d days\n", (long long)n, rec->retain_days);
        pthread_mutex_lock(&rec->mu);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += RETAIN_EVERY_S;
        while (!rec->stopping && pthread_cond_timedwait(&rec->retain_cv, &rec->mu, &dl) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&rec->mu);
    return NULL;
}

/* ==== open and close ==== */

qc_status qs_records_open(qc_server_t *s, const qc_server_opts_t *o, char *err, size_t err_size) {
    s->rec = NULL;
    if (!o->records) return QC_OK;
    qs_records_t *rec = calloc(1, sizeof *rec);
    if (!rec) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&rec->mu, NULL);
    pthread_cond_init(&rec->retain_cv, NULL);
    pthread_cond_init(&rec->idle, NULL);
    rec->model_name = s->model_name;
    rec->weight_type = qc_model_dtype(s->m);
    rec->quiet = o->quiet;
    rec->retain_days = o->retain_days;
    s->rec = rec;
    if (qc_rec_model_hash(s->m, rec->model_hash))
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: cannot hash the model's identity");
    /* a shared database can go away while nobody writes: /ready should know */
    qc_store_opts_t so = {.sync_full = o->records_sync_full, .probe_ms = qc_store_path_is_url(o->records) ? PROBE_MS : 0};
    qc_status st = qc_store_open(o->records, &so, &rec->store, err, err_size);
    if (st) return st;
    if (o->records_fail_writes > 0) qc_store_test_fail_writes(rec->store, o->records_fail_writes);
    if (rec->retain_days > 0) {
        if (pthread_create(&rec->retain_th, NULL, retain_main, rec))
            return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: cannot start the retention thread");
        rec->retain_started = 1;
    }
    return QC_OK;
}

void qs_records_close(qs_records_t *rec) {
    if (!rec) return;
    pthread_mutex_lock(&rec->mu);
    rec->stopping = 1;
    pthread_cond_broadcast(&rec->retain_cv);
    pthread_mutex_unlock(&rec->mu);
    if (rec->retain_started) pthread_join(rec->retain_th, NULL);
    qc_store_close(rec->store);
    for (live_t *l = rec->live, *next; l; l = next) {
        next = l->next;
        free(l);
    }
    pthread_cond_destroy(&rec->retain_cv);
    pthread_cond_destroy(&rec->idle);
    pthread_mutex_destroy(&rec->mu);
    free(rec);
}

qc_store_t *qs_records_store(const qs_records_t *rec) { return rec ? rec->store : NULL; }

/* ==== sessions in use ==== */

/* The entry of id (mu held), created when `make`; NULL when absent or out of memory. */
static live_t *live_get(qs_records_t *rec, const char *id, int make) {
    for (live_t *l = rec->live; l; l = l->next)
        if (!strcmp(l->id, id)) return l;
    if (!make) return NULL;
    size_t n = strlen(id) + 1;
    live_t *l = calloc(1, sizeof *l + n);
    if (!l) return NULL;
    memcpy(l->id, id, n);
    l->next = rec->live;
    rec->live = l;
    return l;
}

/* Unlinks and frees l when nothing refers to it any more (mu held). */
static void live_drop(qs_records_t *rec, live_t *l) {
    if (l->pending || l->erasing) return;
    for (live_t **p = &rec->live; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            free(l);
            return;
        }
}

int qs_records_hold(qs_records_t *rec, const char *session) {
    if (!rec) return 0;
    pthread_mutex_lock(&rec->mu);
    live_t *l = live_get(rec, session, 1);
    int ok = l && !l->erasing;
    if (ok) l->pending++;
    else if (l) live_drop(rec, l);
    pthread_mutex_unlock(&rec->mu);
    return ok ? 0 : -1;
}

void qs_records_release(qs_records_t *rec, const char *session) {
    if (!rec) return;
    pthread_mutex_lock(&rec->mu);
    live_t *l = live_get(rec, session, 0);
    if (l && l->pending > 0) {
        l->pending--;
        live_drop(rec, l);
    }
    pthread_mutex_unlock(&rec->mu);
}

/* ==== writing ==== */

/* One submitted turn: the caller's callback and when it was submitted. */
typedef struct {
    qs_records_t *rec;
    qc_rec_done_fn done;
    void *user;
    double t_submit; /* ms on qc_now_ms's clock */
} pending_t;

/* The commit's time (from submission) into the histogram, and the writer
 * thread's CPU time so far (this runs on it, whatever the machine's load). */
static void commit_time(qs_records_t *rec, double seconds) {
    int i = 0;
    while (i < N_COMMIT && seconds > commit_bounds[i]) i++;
    struct timespec cpu;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    pthread_mutex_lock(&rec->mu);
    rec->writer_cpu_s = (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
    rec->commit_bucket[i]++;
    rec->commit_count++;
    rec->commit_sum += seconds;
    pthread_mutex_unlock(&rec->mu);
}

/* The store's callback (writer thread): times it, tells the caller, then
 * counts it out. */
static void on_stored(void *user, qc_status st, const qc_rec_id_t *id, const char *err) {
    pending_t *p = user;
    qs_records_t *rec = p->rec;
    commit_time(rec, (qc_now_ms() - p->t_submit) / 1e3);
    p->done(p->user, st, id, err);
    free(p);
    pthread_mutex_lock(&rec->mu);
    if (--rec->in_flight == 0) pthread_cond_broadcast(&rec->idle);
    pthread_mutex_unlock(&rec->mu);
}

qc_status qs_records_submit(qs_records_t *rec, qc_rec_turn_t *t, qc_rec_done_fn done, void *user, char *err,
                            size_t err_size) {
    t->model_name = rec->model_name;
    t->model_hash = rec->model_hash;
    t->weight_type = rec->weight_type;
    pending_t *p = malloc(sizeof *p);
    qc_status st = QC_ERR_NOMEM;
    if (p) {
        *p = (pending_t){rec, done, user, qc_now_ms()};
        pthread_mutex_lock(&rec->mu);
        rec->in_flight++; /* before the writer can call back */
        pthread_mutex_unlock(&rec->mu);
        st = qc_store_submit(rec->store, t, on_stored, p, NULL, err, err_size);
    } else {
        qc_seterr(err, err_size, st, "out of memory");
    }
    if (st) {
        pthread_mutex_lock(&rec->mu);
        if (p && --rec->in_flight == 0) pthread_cond_broadcast(&rec->idle);
        if (st != QC_ERR_BUSY) rec->submit_errors++; /* the store counts a full queue itself */
        pthread_mutex_unlock(&rec->mu);
        free(p);
    }
    return st;
}

void qs_records_drain(qs_records_t *rec) {
    if (!rec) return;
    pthread_mutex_lock(&rec->mu);
    atomic_store(&rec->stopping_http, 1);
    while (rec->in_flight || rec->export_waits) pthread_cond_wait(&rec->idle, &rec->mu);
    pthread_mutex_unlock(&rec->mu);
}

int qs_records_stopping(const qs_records_t *rec) { return atomic_load(&rec->stopping_http); }

int qs_records_export_waits(qs_records_t *rec, int delta) {
    pthread_mutex_lock(&rec->mu);
    int refused = delta > 0 && atomic_load(&rec->stopping_http);
    if (!refused) rec->export_waits += delta;
    if (rec->export_waits == 0) pthread_cond_broadcast(&rec->idle);
    pthread_mutex_unlock(&rec->mu);
    return refused ? -1 : 0;
}

/* ==== erasure ==== */

qc_status qs_records_erase_begin(qs_records_t *rec, const char *session, char *err, size_t err_size) {
    pthread_mutex_lock(&rec->mu);
    live_t *l = live_get(rec, session, 1);
    if (!l || l->pending || l->erasing) {
        if (l) live_drop(rec, l);
        pthread_mutex_unlock(&rec->mu);
        return l ? qc_seterr(err, err_size, QC_ERR_BUSY, "a message of this session is being answered; retry once it is")
                 : qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    }
    l->erasing = 1; /* from here no call about it starts: the erasure cannot race a turn */
    pthread_mutex_unlock(&rec->mu);
    return QC_OK;
}

void qs_records_erase_end(qs_records_t *rec, const char *session) {
    qs_records_set_basis(rec, session, NULL); /* its conversation is gone here (QS_END_SESSION) */
    pthread_mutex_lock(&rec->mu);
    live_t *l = live_get(rec, session, 0);
    if (l) {
        l->erasing = 0;
        live_drop(rec, l);
    }
    pthread_mutex_unlock(&rec->mu);
}

/* ==== conversations rebuilt from the records ==== */

/* FNV-1a, never 0 (the empty slot). */
static uint64_t seen_hash(const char *id) {
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return h ? h : 1;
}

int qs_records_basis(qs_records_t *rec, const char *session, qc_rec_head_t *out) {
    uint64_t h = seen_hash(session);
    pthread_mutex_lock(&rec->mu);
    int known = rec->seen[h % SEEN_SLOTS].h == h;
    if (known) *out = rec->seen[h % SEEN_SLOTS].head;
    pthread_mutex_unlock(&rec->mu);
    return known;
}

void qs_records_set_basis(qs_records_t *rec, const char *session, const qc_rec_head_t *head) {
    uint64_t h = seen_hash(session);
    pthread_mutex_lock(&rec->mu);
    if (head) rec->seen[h % SEEN_SLOTS].h = h, rec->seen[h % SEEN_SLOTS].head = *head;
    else if (rec->seen[h % SEEN_SLOTS].h == h) rec->seen[h % SEEN_SLOTS].h = 0;
    pthread_mutex_unlock(&rec->mu);
}

void qs_records_basis_add(qs_records_t *rec, const char *session, const qc_rec_id_t *id) {
    uint64_t h = seen_hash(session);
    pthread_mutex_lock(&rec->mu);
    if (rec->seen[h % SEEN_SLOTS].h == h) {
        rec->seen[h % SEEN_SLOTS].head.turns++;
        rec->seen[h % SEEN_SLOTS].head.last = *id;
    }
    pthread_mutex_unlock(&rec->mu);
}

int qs_records_head_same(const qc_rec_head_t *a, const qc_rec_head_t *b) {
    return a->turns == b->turns && !memcmp(a->last.b, b->last.b, sizeof a->last.b);
}

void qs_history_free(qs_history_t *h) {
    if (!h) return;
    for (size_t i = 0; i < h->n; i++) {
        free((char *)h->turns[i].text);
        free((int32_t *)h->turns[i].prompt);
        free((int32_t *)h->turns[i].reply);
    }
    free(h->turns);
    *h = (qs_history_t){0};
}

static int32_t *ids_copy(const int32_t *p, size_t n) {
    int32_t *q = malloc((n ? n : 1) * sizeof *q);
    if (q && n) memcpy(q, p, n * sizeof *q);
    return q;
}

/* One turn of qc_store_turns into the history; an allocation failure stops it. */
static int history_add(void *user, const qc_rec_turn_t *t) {
    qs_history_t *h = user;
    h->head.last = t->id; /* every turn counts in the head, replayed or not */
    /* cancelled and failed turns left the conversation as it was; an
     * emotion-only turn (no reply) was never in it */
    if ((t->finish != QC_FINISH_STOP && t->finish != QC_FINISH_LENGTH) || !t->reply) return 0;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        qc_care_past_t *p = realloc(h->turns, cap * sizeof *p);
        if (!p) return h->oom = 1;
        h->turns = p, h->cap = cap;
    }
    qc_care_past_t *p = &h->turns[h->n];
    *p = (qc_care_past_t){.emotion = t->emotion, .n_prompt = t->n_prompt_ids, .n_reply = t->n_reply_ids,
                          .last_run = t->finish == QC_FINISH_STOP, .dropped = t->dropped_turns};
    char *text = malloc(t->message_len + 1);
    if (text) memcpy(text, t->message, t->message_len), text[t->message_len] = 0;
    p->text = text;
    p->prompt = ids_copy(t->prompt_ids, t->n_prompt_ids);
    p->reply = ids_copy(t->reply_ids, t->n_reply_ids);
    h->n++; /* freed by qs_history_free even when a copy failed */
    return h->oom = !text || !p->prompt || !p->reply;
}

qc_status qs_records_history(qs_records_t *rec, const char *session, qs_history_t *h, char *err, size_t err_size) {
    qs_history_free(h);
    int64_t n = 0;
    qc_status st = qc_store_turns(rec->store, session, history_add, h, &n, err, err_size);
    h->head.turns = n;
    if (!st && h->oom)
        st = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory for the conversation's history");
    if (st) qs_history_free(h);
    return st;
}

/* ==== /metrics ==== */

void qs_records_metrics(qs_records_t *rec, qc_buf_t *t) {
    qc_store_stats_t st = {0};
    unsigned long long submit_errors = 0, bucket[N_COMMIT + 1] = {0}, count = 0;
    double sum = 0, cpu = 0;
    if (rec) {
        qc_store_stats(rec->store, &st);
        pthread_mutex_lock(&rec->mu);
        submit_errors = rec->submit_errors;
        memcpy(bucket, rec->commit_bucket, sizeof bucket);
        count = rec->commit_count;
        sum = rec->commit_sum;
        cpu = rec->writer_cpu_s;
        pthread_mutex_unlock(&rec->mu);
    }
    qc_buf_printf(t,
                  "# HELP qcare_records_enabled Whether consultation records are kept (1) or not (--no-records).\n"
                  "# TYPE qcare_records_enabled gauge\nqcare_records_enabled %d\n"
                  "# HELP qcare_records_committed_total Turns committed to the records store.\n"
                  "# TYPE qcare_records_committed_total counter\nqcare_records_committed_total %llu\n"
                  "# HELP qcare_records_errors_total Turns that could not be recorded (their requests failed with 503).\n"
                  "# TYPE qcare_records_errors_total counter\nqcare_records_errors_total %llu\n"
                  "# HELP qcare_records_queued Turns waiting for the records writer.\n"
                  "# TYPE qcare_records_queued gauge\nqcare_records_queued %llu\n"
                  "# HELP qcare_records_commit_seconds Time from a turn's end to its commit (what records add to an answer).\n"
                  "# TYPE qcare_records_commit_seconds histogram\n",
                  rec != NULL, (unsigned long long)st.committed, (unsigned long long)st.errors + submit_errors,
                  (unsigned long long)st.queued);
    unsigned long long cum = 0;
    for (int i = 0; i <= N_COMMIT; i++) {
        cum += bucket[i];
        if (i < N_COMMIT) qc_buf_printf(t, "qcare_records_commit_seconds_bucket{le=\"%g\"} %llu\n", commit_bounds[i], cum);
        else qc_buf_printf(t, "qcare_records_commit_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    qc_buf_printf(t, "qcare_records_commit_seconds_sum %.6f\nqcare_records_commit_seconds_count %llu\n", sum, count);
    qc_buf_printf(t, "# HELP qcare_records_writer_cpu_seconds_total CPU time of the records writer thread.\n"
                     "# TYPE qcare_records_writer_cpu_seconds_total counter\nqcare_records_writer_cpu_seconds_total %.6f\n",
                  cpu);
}
