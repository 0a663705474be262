/* records_bench.c — how fast the records store is (not a test):
 *   1. commit latency of one turn (submit to "committed" callback), p50 and
 *      p95, one writer at a time and eight at once, synchronous=NORMAL and
 *      FULL;
 *   2. filling a store with SESSIONS sessions of TURNS turns each (default
 *      100,000 x 10 = 1,000,000 turns) through the writer;
 *   3. on that store: a risk-ordered page of 50 (first page and deep pages
 *      through the cursor), order=recent, urgent only, one patient's
 *      sessions; a session's turns; and a full CSV export (rate, peak RSS).
 *
 *   make build/records_bench && build/records_bench [--dir DIR] [--sessions N]
 *        [--turns N] [--latency N] [--keep] [--pg URL | --pg-temp]
 *
 * --pg URL runs it on PostgreSQL instead: URL is a database the bench may
 * empty (it drops the store's tables first and last); --pg-temp starts a
 * throwaway server for it (tests/pg.sh, fsync on, from the repository
 * root). There sync=NORMAL/FULL is the server's own (one row each).
 */
#include "records/records.h"

#include "base/base.h"
#include "pgserver.h"

#include <libpq-fe.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *pg_url; /* NULL: SQLite files in --dir */

/* The store called name: dir/name, or the PostgreSQL database. */
static const char *store_at(const char *dir, const char *name) {
    static char path[512];
    if (pg_url) return pg_url;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Runs sql on the PostgreSQL database; the first value as a number. */
static double pg_value(const char *sql) {
    PGconn *db = PQconnectdb(pg_url);
    PGresult *r = PQexec(db, sql);
    double v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? atof(PQgetvalue(r, 0, 0)) : -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "records_bench: %s: %s", sql, PQerrorMessage(db));
    PQclear(r);
    PQfinish(db);
    return v;
}

/* Removes the store at path (its file and logs; or its tables). */
static void remove_store(const char *path) {
    if (pg_url) {
        pg_value("SET client_min_messages = warning; DROP TABLE IF EXISTS turns, sessions, erased, qcare_schema");
        return;
    }
    char side[600];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* Bytes the store takes. */
static double store_bytes(const char *path) {
    struct stat sb;
    if (pg_url) return pg_value("SELECT pg_total_relation_size('turns') + pg_total_relation_size('sessions')");
    return stat(path, &sb) ? -1 : (double)sb.st_size;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v and returns its q-quantile. */
static double quantile(double *v, int n, double q) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static int32_t prompt_ids[40], reply_ids[120];
static const char message[] = "医生，我最近总是失眠，晚上睡不着，白天头疼。I keep waking up at 3am, what should I do?";
static char reply[400];

/* A realistic turn: ~100-byte message, ~400-byte reply, 40 + 120 token ids. */
static qc_rec_turn_t make_turn(const char *sid, const char *patient, int64_t ts) {
    int label = (int)(rnd() % 3);
    float pn = (float)(rnd() % 1000) / 1000.0f;
    qc_rec_turn_t t = {
        .session_id = sid,
        .patient_id = patient,
        .ts_ms = ts,
        .message = message,
        .message_len = sizeof message - 1,
        .emotion = label,
        .probs = {(1 - pn) / 2, pn, (1 - pn) / 2},
        .urgent = rnd() % 100 == 0,
        .reply = reply,
        .reply_len = sizeof reply - 1,
        .model_name = "Qwen/Qwen2.5-0.5B-Instruct",
        .model_hash = "sha256:5d1b9c0e7f1e4a2b8c3d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
        .weight_type = "q8_0",
        .prompt_tokens = 300,
        .completion_tokens = 120,
        .emotion_ms = 70,
        .ttft_ms = 110,
        .total_ms = 2400,
        .prompt_ids = prompt_ids,
        .n_prompt_ids = 40,
        .reply_ids = reply_ids,
        .n_reply_ids = 120,
        .prompt_version = "care-1",
        .safety_version = "safety-1",
        .model_urgent_p = NAN,
    };
    if (t.urgent) t.urgent_kind = "cardiac", t.urgent_rule = "chest pain";
    return t;
}

/* ==== 1. commit latency ==== */

typedef struct {
    qc_store_t *s;
    int n, id;
    double *lat;
} lat_arg_t;

static void *latency_worker(void *arg) {
    lat_arg_t *a = arg;
    char sid[32], err[256];
    snprintf(sid, sizeof sid, "lat-%d", a->id);
    for (int i = 0; i < a->n; i++) {
        qc_rec_turn_t t = make_turn(sid, NULL, 0);
        double t0 = qc_now_ms();
        if (qc_store_write(a->s, &t, NULL, err, sizeof err)) {
            fprintf(stderr, "write: %s\n", err);
            exit(1);
        }
        a->lat[i] = qc_now_ms() - t0;
    }
    return NULL;
}

static void latency(const char *dir, int sync_full, int threads, int n) {
    char name[64];
    snprintf(name, sizeof name, "latency-%d-%d.db", sync_full, threads);
    const char *path = store_at(dir, name);
    remove_store(path);
    qc_store_opts_t o = {.sync_full = sync_full};
    qc_store_t *s;
    char err[512];
    if (qc_store_open(path, &o, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    double *lat = malloc(sizeof *lat * (size_t)n);
    pthread_t th[16];
    lat_arg_t args[16];
    int per = n / threads;
    double t0 = qc_now_ms();
    for (int k = 0; k < threads; k++) {
        args[k] = (lat_arg_t){s, per, k, lat + k * per};
        pthread_create(&th[k], NULL, latency_worker, &args[k]);
    }
    for (int k = 0; k < threads; k++) pthread_join(th[k], NULL);
    double wall = qc_now_ms() - t0;
    qc_store_stats_t st;
    qc_store_stats(s, &st);
    qc_store_close(s);
    int m = per * threads;
    printf("commit latency  sync=%-6s writers=%d  turns=%d  p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  "
           "%.0f turns/s  %.1f turns/transaction\n",
           pg_url ? "server" : sync_full ? "FULL" : "NORMAL", threads, m, quantile(lat, m, 0.5), quantile(lat, m, 0.95),
           quantile(lat, m, 0.99), m / wall * 1000, (double)st.committed / (double)st.transactions);
    free(lat);
    remove_store(path);
}

/* ==== 2. filling ==== */

typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    long in_flight, failed;
} flow_t;

static void on_done(void *user, qc_status st, const qc_rec_id_t *id, const char *err) {
    (void)id;
    flow_t *f = user;
    pthread_mutex_lock(&f->m);
    f->in_flight--;
    if (st && f->failed++ == 0) fprintf(stderr, "write: %s\n", err);
    pthread_cond_signal(&f->c);
    pthread_mutex_unlock(&f->m);
}

/* ==== 3. queries ==== */

typedef struct {
    int n;
    char last_sid[64];
} page_t;

static int on_session(void *user, const qc_rec_session_t *s) {
    page_t *p = user;
    p->n++;
    snprintf(p->last_sid, sizeof p->last_sid, "%s", s->session_id);
    return 0;
}

/* Times `reps` runs of query q (p50, p95 in ms); the page size in *n. */
static void time_query(qc_store_t *s, const char *what, const qc_rec_query_t *q, int reps) {
    double *t = malloc(sizeof *t * (size_t)reps);
    char next[QC_REC_CURSOR_MAX], err[512];
    page_t p = {0};
    for (int i = 0; i < reps; i++) {
        p.n = 0;
        double t0 = qc_now_ms();
        if (qc_store_sessions(s, q, on_session, &p, next, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", what, err);
            exit(1);
        }
        t[i] = qc_now_ms() - t0;
    }
    printf("query %-34s %3d sessions  p50 %.3f ms  p95 %.3f ms\n", what, p.n, quantile(t, reps, 0.5),
           quantile(t, reps, 0.95));
    free(t);
}

static int count_bytes(void *user, const void *p, size_t n) {
    (void)p;
    *(uint64_t *)user += n;
    return 0;
}

static int count_turn(void *user, const qc_rec_turn_t *t) {
    (void)t;
    ++*(int *)user;
    return 0;
}

static long max_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv) {
    const char *dir = "/tmp";
    int sessions = 100000, turns = 10, lat_n = 2000, keep = 0, pg_temp = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--sessions") && i + 1 < argc) sessions = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--turns") && i + 1 < argc) turns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--latency") && i + 1 < argc) lat_n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep")) keep = 1;
        else if (!strcmp(argv[i], "--pg") && i + 1 < argc) pg_url = argv[++i];
        else if (!strcmp(argv[i], "--pg-temp")) pg_temp = 1;
        else {
            fprintf(stderr, "usage: records_bench [--dir DIR] [--sessions N] [--turns N] [--latency N] [--keep]"
                            " [--pg URL | --pg-temp]\n");
            return 2;
        }
    }
    test_pg_t pgs;
    static char url[256];
    if (pg_temp) {
        char why[512];
        if (test_pg_create(&pgs, 1, why, sizeof why) || test_pg_createdb(&pgs, "bench")) {
            fprintf(stderr, "records_bench: no PostgreSQL server: %s\n", why);
            return 1;
        }
        test_pg_url(&pgs, "bench", url, sizeof url);
        pg_url = url;
    }
    if (sessions < 1 || turns < 1 || lat_n < 8) return 2;
    for (int i = 0; i < 40; i++) prompt_ids[i] = (int32_t)(rnd() % 152000);
    for (int i = 0; i < 120; i++) reply_ids[i] = (int32_t)(rnd() % 152000);
    for (size_t i = 0; i + 1 < sizeof reply; i++) reply[i] = "abcdefghij klmnopqrst, uvwxyz.\n"[i % 31];

    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(la);
    }
    printf("records_bench: %ld CPUs online, load average %.2f, store %s\n", sysconf(_SC_NPROCESSORS_ONLN), load[0],
           pg_url ? pg_url : dir);

    /* 1. */
    latency(dir, 0, 1, lat_n);
    latency(dir, 0, 8, lat_n);
    if (!pg_url) {
        latency(dir, 1, 1, lat_n / 4);
        latency(dir, 1, 8, lat_n / 4);
    }

    /* 2. */
    char err[512];
    const char *path = store_at(dir, "records-bench.db");
    remove_store(path);
    qc_store_t *s;
    qc_store_opts_t o = {0};
    if (qc_store_open(path, &o, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    flow_t f = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    int64_t base = 1767225600000LL; /* 2026-01-01 */
    double t0 = qc_now_ms();
    char sid[32], pat[32];
    /* Many sessions at once, as a server sees them: turn j of every session,
     * then turn j + 1; one patient per 5 sessions. */
    for (int j = 0; j < turns; j++) {
        for (int i = 0; i < sessions; i++) {
            snprintf(sid, sizeof sid, "s%06d", i);
            snprintf(pat, sizeof pat, "p%05d", i / 5);
            qc_rec_turn_t t = make_turn(sid, pat, base + ((int64_t)j * sessions + i) * 10);
            pthread_mutex_lock(&f.m);
            while (f.in_flight >= 3000) pthread_cond_wait(&f.c, &f.m);
            f.in_flight++;
            pthread_mutex_unlock(&f.m);
            if (qc_store_submit(s, &t, on_done, &f, NULL, err, sizeof err)) {
                fprintf(stderr, "submit: %s\n", err);
                return 1;
            }
        }
    }
    pthread_mutex_lock(&f.m);
    while (f.in_flight) pthread_cond_wait(&f.c, &f.m);
    pthread_mutex_unlock(&f.m);
    double fill_ms = qc_now_ms() - t0;
    qc_store_stats_t st;
    qc_store_stats(s, &st);
    double size = store_bytes(path);
    long n_turns = (long)sessions * turns;
    printf("fill            %d sessions x %d turns = %ld turns in %.1f s: %.0f turns/s, %.0f turns/transaction, "
           "%ld failed, store %.0f MiB (%.0f bytes/turn)\n",
           sessions, turns, n_turns, fill_ms / 1000, n_turns / fill_ms * 1000,
           (double)st.committed / (double)st.transactions, f.failed, size / 1048576.0, size / (double)n_turns);

    /* 3. */
    qc_rec_query_t q = {.order = QC_REC_ORDER_RISK, .limit = 50};
    time_query(s, "risk, first page of 50", &q, 200);
    /* Deep pages: walk 200 pages of 50 through the cursor. */
    char cur[QC_REC_CURSOR_MAX] = "", next[QC_REC_CURSOR_MAX];
    double *pt = malloc(sizeof *pt * 200);
    int pages = 0;
    for (; pages < 200; pages++) {
        page_t p = {0};
        q.cursor = cur;
        double t1 = qc_now_ms();
        qc_store_sessions(s, &q, on_session, &p, next, err, sizeof err);
        pt[pages] = qc_now_ms() - t1;
        if (!*next) break;
        snprintf(cur, sizeof cur, "%s", next);
    }
    printf("query %-34s %3d pages     p50 %.3f ms  p95 %.3f ms\n", "risk, pages 1-200 by cursor", pages,
           quantile(pt, pages, 0.5), quantile(pt, pages, 0.95));
    free(pt);
    q = (qc_rec_query_t){.order = QC_REC_ORDER_RECENT, .limit = 50};
    time_query(s, "recent, first page of 50", &q, 200);
    q = (qc_rec_query_t){.order = QC_REC_ORDER_RISK, .limit = 50, .urgent_only = 1};
    time_query(s, "risk, urgent only, 50", &q, 200);
    q = (qc_rec_query_t){.order = QC_REC_ORDER_RISK, .limit = 50, .patient_id = "p01234"};
    time_query(s, "risk, one patient's sessions", &q, 200);
    q = (qc_rec_query_t){.order = QC_REC_ORDER_RISK, .limit = 50, .since_ms = base + (int64_t)n_turns * 9};
    time_query(s, "risk, since (last 10% of time), 50", &q, 50);

    double *tt = malloc(sizeof *tt * 200);
    for (int i = 0; i < 200; i++) {
        int n = 0;
        snprintf(sid, sizeof sid, "s%06d", (int)(rnd() % (uint32_t)sessions));
        double t1 = qc_now_ms();
        qc_store_turns(s, sid, count_turn, &n, NULL, err, sizeof err);
        tt[i] = qc_now_ms() - t1;
    }
    printf("query %-34s %3d turns     p50 %.3f ms  p95 %.3f ms\n", "a session's turns", turns, quantile(tt, 200, 0.5),
           quantile(tt, 200, 0.95));
    free(tt);

    long rss0 = max_rss_kb();
    uint64_t bytes = 0;
    t0 = qc_now_ms();
    if (qc_store_export(s, QC_REC_CSV, 0, 0, count_bytes, &bytes, err, sizeof err)) fprintf(stderr, "%s\n", err);
    double ex_ms = qc_now_ms() - t0;
    printf("export          CSV of %ld turns: %.0f MiB in %.1f s (%.0f turns/s); peak RSS %ld -> %ld KiB\n", n_turns,
           bytes / 1048576.0, ex_ms / 1000, n_turns / ex_ms * 1000, rss0, max_rss_kb());

    qc_store_close(s);
    if (!keep) remove_store(path);
    else printf("kept %s\n", path);
    if (pg_temp) test_pg_destroy(&pgs);
    return 0;
}
