/* test_records.c — the records store on real SQLite files in a temporary
 * folder: every field round trip, UUIDv7 order, WAL and 0600, migration and
 * refusal, risk order, cursor paging, CSV/JSONL export, erasure down to the
 * file bytes, purging, export during writes, write failures (a real full
 * disk on a private tmpfs when this process may mount one, a real lock
 * timeout, and the store's hook), batching.
 *
 * Then the same cases on a real PostgreSQL server that the test starts
 * itself (tests/pgserver.h; a counted SKIP where the server programs are
 * absent), one database per case, with what differs by backend checked for
 * each (the schema and its refusals, the lock timeout; file bytes and the
 * full disk are SQLite's), and two of PostgreSQL's own: several replicas
 * (processes and handles) writing one database at once, and the server
 * going away mid-run and coming back. */
#include "records/records.h"
#include "diskfull.h"
#include "test.h"
#include "pgserver.h"

#include <libpq-fe.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

/* dir/name into a static buffer (one of four, so a few can be live). */
static const char *path_in(const char *name) {
    static char bufs[4][320];
    static int k;
    char *p = bufs[k++ & 3];
    snprintf(p, 320, "%s/%s", dir, name);
    return p;
}

/* ==== the backend under test ==== */

static int pg_mode;   /* 1 while the cases run against PostgreSQL */
static test_pg_t pgs; /* its server */
static void test_cli(void);

/* Where the store called name lives: dir/name (SQLite), or a database of
 * the test server named after it (made at the first use) as a URL. */
static const char *store_path(const char *name) {
    if (!pg_mode) return path_in(name);
    static char made[64][64];
    static int n_made;
    static char bufs[4][320];
    static int k;
    char db[64];
    snprintf(db, sizeof db, "qc_%s", name);
    for (char *p = db; *p; p++)
        if (*p == '.') *p = '_';
    int known = 0;
    for (int i = 0; i < n_made && !known; i++) known = !strcmp(made[i], db);
    if (!known && strcmp(db, "qc_absent_db")) {
        CHECK(test_pg_createdb(&pgs, db) == 0, "createdb %s", db);
        if (n_made < 64) snprintf(made[n_made++], 64, "%s", db);
    }
    char *p = bufs[k++ & 3];
    test_pg_url(&pgs, db, p, 320);
    return p;
}

/* Runs sql on the store called name through its own libpq connection (the
 * test's view from outside); the first row's first value into out (may be
 * NULL). 0, or -1 with the error printed. */
static int pg_sql(const char *name, const char *sql, char *out, size_t n) {
    PGconn *db = PQconnectdb(store_path(name));
    PGresult *r = PQstatus(db) == CONNECTION_OK ? PQexec(db, sql) : NULL;
    int ok = r && (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK);
    if (!ok) fprintf(stderr, "pg_sql %s: %s", sql, PQerrorMessage(db));
    if (ok && out) snprintf(out, n, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(db);
    return ok ? 0 : -1;
}

static qc_store_t *open_store(const char *name, const qc_store_opts_t *o) {
    qc_store_t *s = NULL;
    char err[512];
    qc_status st = qc_store_open(store_path(name), o, &s, err, sizeof err);
    CHECK(st == QC_OK, "open %s: %s", name, err);
    return st ? NULL : s;
}

/* A plain turn of session sid at time ts. */
static qc_rec_turn_t turn(const char *sid, int64_t ts, int emotion, float pneg, int urgent) {
    float rest = (1 - pneg) / 2;
    return (qc_rec_turn_t){
        .session_id = sid,
        .ts_ms = ts,
        .message = "hello",
        .message_len = 5,
        .emotion = emotion,
        .probs = {rest, pneg, rest},
        .urgent = urgent,
        .urgent_kind = urgent ? "cardiac" : NULL,
        .reply = "hi",
        .reply_len = 2,
        .model_name = "tiny",
        .model_hash = "abc",
        .weight_type = "q8_0",
        .model_urgent_p = NAN,
    };
}

static qc_status write_turn(qc_store_t *s, const qc_rec_turn_t *t) {
    char err[512];
    qc_status st = qc_store_write(s, t, NULL, err, sizeof err);
    if (st) fprintf(stderr, "write: %s\n", err);
    return st;
}

/* ==== callbacks that count ==== */

typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    int done, ok, failed;
    qc_status last_st;
    char last_err[512];
} counter_t;

#define COUNTER_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, ""}

static void on_done(void *user, qc_status st, const qc_rec_id_t *id, const char *err) {
    (void)id;
    counter_t *k = user;
    pthread_mutex_lock(&k->m);
    k->done++;
    if (st) {
        k->failed++;
        k->last_st = st;
        snprintf(k->last_err, sizeof k->last_err, "%s", err ? err : "");
    } else {
        k->ok++;
    }
    pthread_cond_broadcast(&k->c);
    pthread_mutex_unlock(&k->m);
}

static void wait_done(counter_t *k, int n) {
    pthread_mutex_lock(&k->m);
    while (k->done < n) pthread_cond_wait(&k->c, &k->m);
    pthread_mutex_unlock(&k->m);
}

/* Collects turns / sessions into memory for checks. */
#define MAXC 512
typedef struct {
    int n;
    char sid[MAXC][64];
    double risk[MAXC];
    int64_t last_ms[MAXC];
    qc_rec_session_t s[MAXC]; /* strings not kept */
} sessions_t;

static int collect_session(void *user, const qc_rec_session_t *s) {
    sessions_t *c = user;
    if (c->n < MAXC) {
        snprintf(c->sid[c->n], 64, "%s", s->session_id);
        c->risk[c->n] = s->risk;
        c->last_ms[c->n] = s->last_ms;
        c->s[c->n] = *s;
        c->s[c->n].session_id = c->s[c->n].patient_id = NULL;
        c->n++;
    }
    return 0;
}

static int64_t n_turns_of(qc_store_t *s, const char *sid) {
    int64_t n = -1;
    char err[512];
    qc_status st = qc_store_turns(s, sid, NULL, NULL, &n, err, sizeof err);
    CHECK(st == QC_OK, "turns %s: %s", sid, err);
    return n;
}

static int list(qc_store_t *s, qc_rec_query_t *q, sessions_t *out, char *next) {
    char err[512], nb[QC_REC_CURSOR_MAX];
    memset(out, 0, sizeof *out);
    qc_status st = qc_store_sessions(s, q, collect_session, out, next ? next : nb, err, sizeof err);
    CHECK(st == QC_OK, "sessions: %s", err);
    return st;
}

/* A growing byte sink for exports. */
static int to_buf(void *user, const void *p, size_t n) { return qc_buf_add(user, p, n); }

/* ==== ids and time ==== */

typedef struct {
    qc_rec_id_t *ids;
    int n;
} idjob_t;

static void *make_ids(void *arg) {
    idjob_t *j = arg;
    for (int i = 0; i < j->n; i++) qc_rec_id_new(&j->ids[i]);
    return NULL;
}

static int cmp_id(const void *a, const void *b) { return memcmp(a, b, 16); }

static void test_ids(void) {
    enum { N = 100000, T = 4, NT = 20000 };
    qc_rec_id_t *ids = malloc(sizeof *ids * (N + T * NT));
    int64_t t0 = qc_rec_now_ms();
    for (int i = 0; i < N; i++) qc_rec_id_new(&ids[i]);
    int64_t t1 = qc_rec_now_ms();
    int ordered = 1, bits = 1, timed = 1;
    for (int i = 0; i < N; i++) {
        if (i && memcmp(&ids[i - 1], &ids[i], 16) >= 0) ordered = 0;
        if ((ids[i].b[6] >> 4) != 7 || (ids[i].b[8] >> 6) != 2) bits = 0;
        int64_t ms = qc_rec_id_ms(&ids[i]);
        if (ms < t0 || ms > t1 + 100) timed = 0;
    }
    CHECK(ordered, "ids strictly increasing in creation order");
    CHECK(bits, "version 7, variant 10");
    CHECK(timed, "id time within the creation window");
    /* Threads at once: no two equal. */
    pthread_t th[T];
    idjob_t jobs[T];
    for (int k = 0; k < T; k++) {
        jobs[k] = (idjob_t){ids + N + k * NT, NT};
        pthread_create(&th[k], NULL, make_ids, &jobs[k]);
    }
    for (int k = 0; k < T; k++) pthread_join(th[k], NULL);
    qsort(ids, N + T * NT, sizeof *ids, cmp_id);
    int unique = 1;
    for (int i = 1; i < N + T * NT; i++)
        if (!memcmp(&ids[i - 1], &ids[i], 16)) unique = 0;
    CHECK(unique, "%d ids from %d threads, all distinct", N + T * NT, T + 1);
    char txt[QC_REC_ID_STRLEN + 1];
    qc_rec_id_format(&ids[7], txt);
    qc_rec_id_t back;
    CHECK(strlen(txt) == 36 && txt[14] == '7' && !qc_rec_id_parse(txt, &back) && !memcmp(&back, &ids[7], 16),
          "text form round trip: %s", txt);
    CHECK(qc_rec_id_parse("0190c0de-0000-7000-8000-00000000000", &back) == -1 &&
              qc_rec_id_parse("0190c0de-0000-7000-8000-00000000000g", &back) == -1 &&
              qc_rec_id_parse("0190c0de00000-7000-8000-000000000000", &back) == -1,
          "malformed ids refused");
    free(ids);

    int64_t ms;
    char buf[32];
    CHECK(!qc_rec_time_parse("2026-03-04T05:06:07.089Z", &ms) && ms == 1772600767089LL, "time parse %lld",
          (long long)ms);
    qc_rec_time_format(ms, buf);
    CHECK(!strcmp(buf, "2026-03-04T05:06:07.089Z"), "time format %s", buf);
    CHECK(!qc_rec_time_parse("2026-03-04", &ms) && ms == 1772582400000LL, "date only");
    CHECK(!qc_rec_time_parse("2024-02-29 23:59", &ms), "leap day with a space");
    CHECK(qc_rec_time_parse("2023-02-29", &ms) && qc_rec_time_parse("2026-13-01", &ms) &&
              qc_rec_time_parse("2026-01-01T25:00", &ms) && qc_rec_time_parse("yesterday", &ms) &&
              qc_rec_time_parse("2026-01-01+08:00", &ms),
          "bad times refused");
}

/* ==== every field, back as written ==== */

static int got_turns;
static qc_rec_turn_t got;
static char got_msg[8192], got_reply[8192], got_sid[64], got_pat[64], got_kind[64], got_rule[64], got_model[64],
    got_hash[80], got_wt[16], got_pv[32], got_sv[32];
static int32_t got_pids[16], got_rids[16];
static int got_null_patient, got_null_rule, got_null_pv;

/* Deep-copies the first turn seen (the callback's pointers die with it). */
static int keep_turn(void *user, const qc_rec_turn_t *t) {
    (void)user;
    if (got_turns++) return 0;
    got = *t;
#define KEEP(f, buf)                                                                                              \
    do {                                                                                                          \
        if (t->f) snprintf(buf, sizeof buf, "%s", t->f);                                                         \
    } while (0)
    KEEP(session_id, got_sid);
    KEEP(patient_id, got_pat);
    KEEP(urgent_kind, got_kind);
    KEEP(urgent_rule, got_rule);
    KEEP(model_name, got_model);
    KEEP(model_hash, got_hash);
    KEEP(weight_type, got_wt);
    KEEP(prompt_version, got_pv);
    KEEP(safety_version, got_sv);
    got_null_patient = !t->patient_id;
    got_null_rule = !t->urgent_rule;
    got_null_pv = !t->prompt_version;
    memcpy(got_msg, t->message, t->message_len < sizeof got_msg ? t->message_len : sizeof got_msg);
    memcpy(got_reply, t->reply, t->reply_len < sizeof got_reply ? t->reply_len : sizeof got_reply);
    if (t->n_prompt_ids && t->n_prompt_ids <= 16) memcpy(got_pids, t->prompt_ids, t->n_prompt_ids * 4);
    if (t->n_reply_ids && t->n_reply_ids <= 16) memcpy(got_rids, t->reply_ids, t->n_reply_ids * 4);
    return 0;
}

static void test_roundtrip(void) {
    qc_store_t *s = open_store("rt.db", NULL);
    if (!s) return;
    static const char msg[] = "医生，我胸口很痛, \"and\"\nit spreads to my arm";
    static const char reply[] = "⚠️ 请立即拨打 120。\r\nPlease call now.";
    static const int32_t pids[] = {151644, 0, 127, 128, 16383, 16384, 2097151, 2097152, INT32_MAX};
    static const int32_t rids[] = {9707, 11, 151645};
    qc_rec_turn_t t = {
        .session_id = "sess-α",
        .patient_id = "patient/42",
        .ts_ms = 1772600767089LL,
        .message = msg,
        .message_len = sizeof msg - 1,
        .emotion = 1,
        .probs = {0.05f, 0.9f, 0.05f},
        .calibrated = 1,
        .urgent = 1,
        .urgent_kind = "cardiac",
        .urgent_rule = "chest pain + arm",
        .reply = reply,
        .reply_len = sizeof reply - 1,
        .finish = QC_FINISH_LENGTH,
        .model_name = "Qwen/Qwen2.5-0.5B-Instruct",
        .model_hash = "sha256:0123456789abcdef",
        .weight_type = "q4_0",
        .prompt_tokens = 321,
        .completion_tokens = 64,
        .emotion_ms = 71.5,
        .ttft_ms = 120.25,
        .total_ms = 2048.125,
        .prompt_ids = pids,
        .n_prompt_ids = sizeof pids / sizeof pids[0],
        .reply_ids = rids,
        .n_reply_ids = 3,
        .prompt_version = "care-2026-11",
        .safety_version = "safety-7",
        .model_urgent_p = 0.875,
        .dropped_turns = 3,
    };
    qc_rec_id_t id;
    char err[512];
    CHECK(qc_store_write(s, &t, &id, err, sizeof err) == QC_OK, "write: %s", err);
    got_turns = 0;
    CHECK(qc_store_turns(s, "sess-α", keep_turn, NULL, NULL, err, sizeof err) == QC_OK, "%s", err);
    CHECK(got_turns == 1, "one turn back (%d)", got_turns);
    CHECK(!memcmp(&got.id, &id, 16) && !qc_rec_id_is_nil(&id), "id");
    CHECK(!strcmp(got_sid, "sess-α") && !strcmp(got_pat, "patient/42"), "session and patient ids");
    CHECK(got.ts_ms == t.ts_ms, "time");
    CHECK(got.message_len == t.message_len && !memcmp(got_msg, msg, t.message_len), "message");
    CHECK(got.emotion == 1 && got.probs[0] == 0.05f && got.probs[1] == 0.9f && got.probs[2] == 0.05f &&
              got.calibrated == 1,
          "emotion and its probabilities");
    CHECK(got.urgent == 1 && !strcmp(got_kind, "cardiac") && !strcmp(got_rule, "chest pain + arm"), "urgency");
    CHECK(got.reply_len == t.reply_len && !memcmp(got_reply, reply, t.reply_len), "reply");
    CHECK(got.finish == QC_FINISH_LENGTH, "finish reason");
    CHECK(!strcmp(got_model, t.model_name) && !strcmp(got_hash, t.model_hash) && !strcmp(got_wt, "q4_0"),
          "model identity and weight type");
    CHECK(got.prompt_tokens == 321 && got.completion_tokens == 64, "token counts");
    CHECK(got.emotion_ms == 71.5 && got.ttft_ms == 120.25 && got.total_ms == 2048.125, "timings");
    CHECK(got.n_prompt_ids == t.n_prompt_ids && !memcmp(got_pids, pids, sizeof pids), "prompt token ids");
    CHECK(got.n_reply_ids == 3 && !memcmp(got_rids, rids, sizeof rids), "reply token ids");
    CHECK(!strcmp(got_pv, "care-2026-11") && !strcmp(got_sv, "safety-7"), "prompt and safety versions");
    CHECK(got.model_urgent_p == 0.875 && got.dropped_turns == 3, "model urgency and dropped turns");

    /* The optional fields left out come back as NULL / NAN / empty. */
    qc_rec_turn_t bare = turn("bare", 0, 2, 0.1f, 0);
    bare.message = NULL;
    bare.message_len = 0;
    bare.finish = QC_FINISH_CANCELLED;
    CHECK(write_turn(s, &bare) == QC_OK, "bare turn");
    got_turns = 0;
    memset(got_pv, 0, sizeof got_pv);
    qc_store_turns(s, "bare", keep_turn, NULL, NULL, err, sizeof err);
    CHECK(got_turns == 1 && got_null_patient && got_null_rule && got_null_pv && isnan(got.model_urgent_p) &&
              got.n_prompt_ids == 0 && got.prompt_ids == NULL && got.message_len == 0 &&
              got.finish == QC_FINISH_CANCELLED,
          "absent optional fields");
    int64_t now = qc_rec_now_ms();
    CHECK(got.ts_ms > now - 60000 && got.ts_ms <= now, "time 0 means now");

    /* Malformed turns are refused at submit. */
    qc_rec_turn_t badt = turn("", 1, 0, 0.1f, 0);
    CHECK(qc_store_submit(s, &badt, NULL, NULL, NULL, err, sizeof err) == QC_ERR_ARG, "empty session refused");
    badt = turn("x", 1, 3, 0.1f, 0);
    CHECK(qc_store_submit(s, &badt, NULL, NULL, NULL, err, sizeof err) == QC_ERR_ARG, "emotion 3 refused");
    badt = turn("x", 1, 0, 0.1f, 0);
    badt.probs[0] = NAN;
    CHECK(qc_store_submit(s, &badt, NULL, NULL, NULL, err, sizeof err) == QC_ERR_ARG, "NAN probability refused");
    int32_t neg = -1;
    badt = turn("x", 1, 0, 0.1f, 0);
    badt.reply_ids = &neg;
    badt.n_reply_ids = 1;
    CHECK(qc_store_submit(s, &badt, NULL, NULL, NULL, err, sizeof err) == QC_ERR_ARG, "negative token id refused");
    qc_store_close(s);
}

/* ==== the file: WAL, 0600, versions ==== */

static void sql_exec(sqlite3 *db, const char *sql) {
    char *e = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &e);
    CHECK(rc == SQLITE_OK, "sql %.40s: %s", sql, e ? e : "");
    sqlite3_free(e);
}

static int sql_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    int v = -999;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Opens one store (for test_pg_schema's racing opens). */
static void *open_close(void *arg) {
    char err[512];
    qc_store_t *s = NULL;
    *(qc_status *)arg = qc_store_open(store_path("race"), NULL, &s, err, sizeof err);
    if (*(qc_status *)arg) fprintf(stderr, "racing open: %s\n", err);
    qc_store_close(s);
    return NULL;
}

/* PostgreSQL's side of test_file and test_migration: the version table,
 * read-only opens, refusals, a password kept out of messages, and several
 * processes creating the schema at once. */
static void test_pg_schema(void) {
    qc_store_opts_t o = {.sync_full = 1};
    qc_store_t *s = open_store("file", &o);
    if (!s) return;
    qc_rec_turn_t t = turn("f", 1000, 0, 0.1f, 0);
    write_turn(s, &t);
    qc_store_close(s);
    char v[64] = "";
    CHECK(!pg_sql("file", "SELECT version FROM qcare_schema", v, sizeof v) && !strcmp(v, "2"), "schema version 2 (%s)", v);
    CHECK(!pg_sql("file", "SELECT collation_name FROM information_schema.columns WHERE table_name = 'sessions'"
                          " AND column_name = 'session_id'", v, sizeof v) && !strcmp(v, "C"),
          "session ids compare as bytes (collation %s)", v);

    char err[512];
    qc_store_t *r = NULL;
    o = (qc_store_opts_t){.read_only = 1};
    CHECK(qc_store_open(store_path("empty"), &o, &r, err, sizeof err) == QC_ERR_UNSUPPORTED && !r &&
              strstr(err, "read-only"),
          "read-only open of an empty database refused: %s", err);
    CHECK(!pg_sql("empty", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", v, sizeof v) &&
              !strcmp(v, "0"),
          "... and no table made (%s)", v);
    CHECK(qc_store_open(store_path("file"), &o, &r, err, sizeof err) == QC_OK, "read-only open: %s", err);
    CHECK(r && qc_store_submit(r, &t, NULL, NULL, NULL, err, sizeof err) == QC_ERR_ARG, "no submit when read-only");
    CHECK(r && n_turns_of(r, "f") == 1, "read-only reads");
    qc_store_close(r);

    r = NULL;
    pg_sql("other", "CREATE TABLE notes(x int)", NULL, 0);
    CHECK(qc_store_open(store_path("other"), NULL, &r, err, sizeof err) == QC_ERR_FORMAT &&
              strstr(err, "not a qcare records store"),
          "a foreign database refused: %s", err);
    pg_sql("file", "UPDATE qcare_schema SET version = 3", NULL, 0);
    CHECK(qc_store_open(store_path("file"), NULL, &r, err, sizeof err) == QC_ERR_UNSUPPORTED && !r &&
              strstr(err, "newer qcare"),
          "newer schema refused: %s", err);
    char url[400];
    snprintf(url, sizeof url, "postgresql://qcare:s3cret-pw@127.0.0.1:%d/qc_nowhere", pgs.port);
    CHECK(qc_store_open(url, NULL, &r, err, sizeof err) == QC_ERR_IO && !strstr(err, "s3cret") &&
              strstr(err, "qcare:***@127.0.0.1"),
          "an absent database: an error without the password: %s", err);

    /* Replicas starting together on an empty database: one creates the
     * schema (an advisory lock), the others wait and use it. */
    enum { R = 4 };
    pthread_t th[R];
    qc_status st[R];
    for (int i = 0; i < R; i++) pthread_create(&th[i], NULL, open_close, &st[i]);
    int all = 1;
    for (int i = 0; i < R; i++) {
        pthread_join(th[i], NULL);
        all &= st[i] == QC_OK;
    }
    CHECK(all && !pg_sql("race", "SELECT count(*) FROM qcare_schema", v, sizeof v) && !strcmp(v, "1"),
          "%d stores opening an empty database at once: all open, one version row (%s)", R, v);
}

static void test_file(void) {
    if (pg_mode) {
        test_pg_schema();
        return;
    }
    umask(022);
    qc_store_opts_t o = {.sync_full = 1};
    qc_store_t *s = open_store("file.db", &o);
    if (!s) return;
    qc_rec_turn_t t = turn("f", 1000, 0, 0.1f, 0);
    write_turn(s, &t);
    struct stat sb;
    CHECK(stat(path_in("file.db"), &sb) == 0 && (sb.st_mode & 0777) == 0600, "db mode %o", sb.st_mode & 0777);
    CHECK(stat(path_in("file.db-wal"), &sb) == 0 && (sb.st_mode & 0777) == 0600, "-wal mode %o",
          sb.st_mode & 0777);
    CHECK(stat(path_in("file.db-shm"), &sb) == 0 && (sb.st_mode & 0777) == 0600, "-shm mode %o",
          sb.st_mode & 0777);
    sqlite3 *db;
    sqlite3_open(path_in("file.db"), &db);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "wal"),
          "journal mode is WAL");
    sqlite3_finalize(st);
    CHECK(sql_int(db, "SELECT version FROM qcare_schema") == 2, "schema version 2");
    sqlite3_close(db);
    qc_store_close(s);

    /* Read-only: no file made, no submit. */
    char err[512];
    qc_store_t *r = NULL;
    o = (qc_store_opts_t){.read_only = 1};
    CHECK(qc_store_open(path_in("absent.db"), &o, &r, err, sizeof err) != QC_OK && !r &&
              access(path_in("absent.db"), F_OK) != 0,
          "read-only open of a missing file fails without creating it");
    CHECK(qc_store_open(path_in("file.db"), &o, &r, err, sizeof err) == QC_OK, "read-only open: %s", err);
    CHECK(r && qc_store_submit(r, &t, NULL, NULL, NULL, err, sizeof err) == QC_ERR_ARG, "no submit when read-only");
    CHECK(r && n_turns_of(r, "f") == 1, "read-only reads");
    qc_store_close(r);

    /* Not a records store. */
    FILE *f = fopen(path_in("junk.db"), "wb");
    fputs("this is not a database, just some text that is long enough to be read as a header....", f);
    fclose(f);
    CHECK(qc_store_open(path_in("junk.db"), NULL, &r, err, sizeof err) == QC_ERR_FORMAT, "junk refused: %s", err);
    sqlite3_open(path_in("other.db"), &db);
    sql_exec(db, "CREATE TABLE notes(x)");
    sqlite3_close(db);
    CHECK(qc_store_open(path_in("other.db"), NULL, &r, err, sizeof err) == QC_ERR_FORMAT &&
              strstr(err, "not a qcare records store"),
          "a foreign SQLite file refused: %s", err);
}

/* The v1 layout as the first records code wrote it, typed in by hand. */
static const char v1_schema[] =
    "CREATE TABLE qcare_schema(version INTEGER NOT NULL); INSERT INTO qcare_schema VALUES (1);"
    "CREATE TABLE turns(seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, session_id TEXT NOT NULL,"
    " patient_id TEXT, ts_ms INTEGER NOT NULL, message TEXT NOT NULL, emotion INTEGER NOT NULL,"
    " p_positive REAL NOT NULL, p_negative REAL NOT NULL, p_neutral REAL NOT NULL, calibrated INTEGER NOT NULL,"
    " urgent INTEGER NOT NULL, urgent_kind TEXT, urgent_rule TEXT, reply TEXT NOT NULL, finish TEXT NOT NULL,"
    " model_name TEXT, model_hash TEXT, weight_type TEXT, prompt_tokens INTEGER NOT NULL,"
    " completion_tokens INTEGER NOT NULL, emotion_ms REAL NOT NULL, ttft_ms REAL NOT NULL, total_ms REAL NOT NULL);"
    "CREATE INDEX turns_session ON turns(session_id, ts_ms); CREATE INDEX turns_time ON turns(ts_ms);";

static void test_migration(void) {
    if (pg_mode) return; /* no PostgreSQL store was ever at v1; its refusals are in test_pg_schema */
    sqlite3 *db;
    sqlite3_open(path_in("v1.db"), &db);
    sql_exec(db, v1_schema);
    sql_exec(db,
             "INSERT INTO turns(id, session_id, patient_id, ts_ms, message, emotion, p_positive, p_negative,"
             " p_neutral, calibrated, urgent, urgent_kind, urgent_rule, reply, finish, model_name, model_hash,"
             " weight_type, prompt_tokens, completion_tokens, emotion_ms, ttft_ms, total_ms) VALUES"
             " (x'0190000000007000800000000000000a', 'a', 'p1', 1000, 'm1', 2, .2, .3, .5, 0, 0, NULL, NULL,"
             "  'r1', 'stop', 'm', 'h', 'q8_0', 10, 5, 1, 2, 3),"
             " (x'0190000000007000800000000000000b', 'a', NULL, 2000, 'm2', 1, .1, .8, .1, 0, 1, 'self-harm',"
             "  'want to die', 'r2', 'stop', 'm', 'h', 'q8_0', 10, 5, 1, 2, 3),"
             " (x'0190000000007000800000000000000c', 'b', NULL, 1500, 'm3', 0, .8, .1, .1, 1, 0, NULL, NULL,"
             "  'r3', 'length', 'm', 'h', 'q8_0', 10, 5, 1, 2, 3)");
    sqlite3_close(db);

    char err[512];
    qc_store_t *r = NULL;
    qc_store_opts_t ro = {.read_only = 1};
    CHECK(qc_store_open(path_in("v1.db"), &ro, &r, err, sizeof err) == QC_ERR_UNSUPPORTED && strstr(err, "migrat"),
          "read-only open of a v1 file asks for a migration: %s", err);
    qc_store_t *s = open_store("v1.db", NULL);
    if (!s) return;
    sqlite3_open(path_in("v1.db"), &db);
    CHECK(sql_int(db, "SELECT version FROM qcare_schema") == 2, "migrated to v2");
    CHECK(sql_int(db, "SELECT count(*) FROM turns") == 3, "turns kept");
    sqlite3_close(db);
    got_turns = 0;
    qc_store_turns(s, "b", keep_turn, NULL, NULL, err, sizeof err);
    CHECK(got_turns == 1 && got.finish == QC_FINISH_LENGTH && got.calibrated && isnan(got.model_urgent_p) &&
              got.n_prompt_ids == 0 && got.dropped_turns == 0 && got_null_pv,
          "an old turn reads with the new fields empty");
    sessions_t c;
    qc_rec_query_t q = {.order = QC_REC_ORDER_RISK};
    list(s, &q, &c, NULL);
    CHECK(c.n == 2 && !strcmp(c.sid[0], "a") && !strcmp(c.sid[1], "b"), "summaries backfilled (%d)", c.n);
    CHECK(c.n == 2 && c.s[0].turns == 2 && c.s[0].urgent_count == 1 && c.s[0].neg_streak == 1 &&
              c.s[0].first_ms == 1000 && c.s[0].last_ms == 2000 && c.s[0].last_emotion == 1 &&
              fabs(c.s[0].trend - 0.5) < 1e-6,
          "backfilled summary of a");
    qc_rec_turn_t t = turn("a", 3000, 1, 0.9f, 0);
    CHECK(write_turn(s, &t) == QC_OK && n_turns_of(s, "a") == 3, "a migrated file takes new turns");
    qc_store_close(s);

    /* A file from a newer qcare. */
    sqlite3_open(path_in("v1.db"), &db);
    sql_exec(db, "UPDATE qcare_schema SET version = 3");
    sqlite3_close(db);
    s = NULL;
    qc_status st = qc_store_open(path_in("v1.db"), NULL, &s, err, sizeof err);
    CHECK(st == QC_ERR_UNSUPPORTED && !s && strstr(err, "newer qcare"), "newer schema refused: %s", err);
    fprintf(stderr, "  (refusal reads: %s)\n", err);
}

/* ==== risk order, filters, cursors ==== */

static void add_history(qc_store_t *s, const char *sid, const char *patient, int64_t t0, const float *pneg,
                        const int *labels, int n, int urgent_at) {
    for (int i = 0; i < n; i++) {
        qc_rec_turn_t t = turn(sid, t0 + i * 1000, labels[i], pneg[i], i == urgent_at);
        t.patient_id = patient;
        if (write_turn(s, &t)) return;
    }
}

static int index_of(const sessions_t *c, const char *sid) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->sid[i], sid)) return i;
    return -1;
}

static void test_risk(void) {
    qc_store_t *s = open_store("risk.db", NULL);
    if (!s) return;
    static const float worse[] = {0.2f, 0.4f, 0.6f, 0.8f, 0.9f}, steady_neg[] = {0.7f, 0.7f, 0.7f, 0.7f, 0.7f},
                       steady[] = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f}, better[] = {0.9f, 0.7f, 0.5f, 0.3f, 0.1f},
                       calm[] = {0.1f, 0.1f, 0.1f};
    static const int l_worse[] = {2, 2, 1, 1, 1}, l_neg[] = {1, 1, 1, 1, 1}, l_neu[] = {2, 2, 2, 2, 2},
                     l_better[] = {1, 1, 2, 2, 0}, l_calm[] = {0, 2, 0};
    /* The urgent one is calm and the oldest: urgency alone must put it first. */
    add_history(s, "urgent", "p2", 1000, calm, l_calm, 3, 1);
    add_history(s, "worsening", "p1", 50000, worse, l_worse, 5, -1);
    add_history(s, "steady-negative", "p1", 60000, steady_neg, l_neg, 5, -1);
    add_history(s, "steady", "p3", 70000, steady, l_neu, 5, -1);
    add_history(s, "improving", "p1", 80000, better, l_better, 5, -1);
    sessions_t c;
    qc_rec_query_t q = {.order = QC_REC_ORDER_RISK};
    list(s, &q, &c, NULL);
    static const char *const want[] = {"urgent", "worsening", "steady-negative", "steady", "improving"};
    int ok = c.n == 5;
    for (int i = 0; ok && i < 5; i++) ok = !strcmp(c.sid[i], want[i]);
    CHECK(ok, "risk order: urgent, worsening, steady-negative, steady, improving (got %s %s %s %s %s)", c.sid[0],
          c.sid[1], c.sid[2], c.sid[3], c.sid[4]);
    for (int i = 0; i < c.n; i++) fprintf(stderr, "  risk %-16s %7.3f trend %+.3f\n", c.sid[i], c.risk[i], c.s[i].trend);
    int w = index_of(&c, "worsening"), b = index_of(&c, "improving"), u = index_of(&c, "urgent");
    CHECK(w >= 0 && fabs(c.s[w].trend - 0.18) < 1e-6 && c.s[w].neg_streak == 3 && c.s[w].turns == 5 &&
              c.s[w].first_ms == 50000 && c.s[w].last_ms == 54000 && fabs(c.s[w].last_negative - 0.9) < 1e-6,
          "worsening summary");
    CHECK(b >= 0 && c.s[b].trend < 0 && c.s[b].neg_streak == 0 && c.s[b].last_emotion == 0, "improving summary");
    CHECK(u >= 0 && c.s[u].urgent_count == 1 && c.risk[u] >= 100, "urgent summary");

    q = (qc_rec_query_t){.order = QC_REC_ORDER_RECENT};
    list(s, &q, &c, NULL);
    CHECK(c.n == 5 && !strcmp(c.sid[0], "improving") && !strcmp(c.sid[4], "urgent"), "recent order");
    q = (qc_rec_query_t){.urgent_only = 1};
    list(s, &q, &c, NULL);
    CHECK(c.n == 1 && !strcmp(c.sid[0], "urgent"), "urgent only");
    q = (qc_rec_query_t){.patient_id = "p1"};
    list(s, &q, &c, NULL);
    CHECK(c.n == 3 && !strcmp(c.sid[0], "worsening") && !strcmp(c.sid[2], "improving"), "a patient's sessions");
    q = (qc_rec_query_t){.since_ms = 60000, .until_ms = 75000};
    list(s, &q, &c, NULL);
    CHECK(c.n == 2 && index_of(&c, "steady-negative") >= 0 && index_of(&c, "steady") >= 0, "since/until (%d)", c.n);
    qc_store_close(s);
}

static void test_cursor(void) {
    enum { N = 237 };
    qc_store_t *s = open_store("pages.db", NULL);
    if (!s) return;
    counter_t k = COUNTER_INIT;
    char err[512], sid[32];
    for (int i = 0; i < N; i++) {
        /* Few distinct risks and times, so pages split inside ties. */
        snprintf(sid, sizeof sid, "s%03d", (i * 37) % N);
        qc_rec_turn_t t = turn(sid, 1000 + (i % 7) * 1000, i % 3 == 0 ? 1 : 2, (float)(i % 4) / 4, i % 11 == 0);
        qc_store_submit(s, &t, on_done, &k, NULL, err, sizeof err);
    }
    wait_done(&k, N);
    CHECK(k.ok == N, "%d sessions written", k.ok);
    for (int order = 0; order < 2; order++) {
        static int seen[N];
        memset(seen, 0, sizeof seen);
        char cur[QC_REC_CURSOR_MAX] = "", next[QC_REC_CURSOR_MAX], first_next[QC_REC_CURSOR_MAX] = "";
        int total = 0, pages = 0, sorted = 1;
        double prev_risk = 1e9;
        int64_t prev_last = INT64_MAX;
        char prev_sid[64] = "\x7f";
        do {
            sessions_t c;
            qc_rec_query_t q = {.order = (qc_rec_order_t)order, .limit = 10, .cursor = cur};
            if (list(s, &q, &c, next)) break;
            if (pages == 0) snprintf(first_next, sizeof first_next, "%s", next);
            for (int i = 0; i < c.n; i++) {
                int id = atoi(c.sid[i] + 1);
                if (id >= 0 && id < N) seen[id]++;
                /* The keys never go up across pages. */
                int cmp = order == QC_REC_ORDER_RISK && c.risk[i] != prev_risk ? (c.risk[i] < prev_risk ? -1 : 1)
                          : c.last_ms[i] != prev_last                          ? (c.last_ms[i] < prev_last ? -1 : 1)
                                                                               : strcmp(c.sid[i], prev_sid);
                if (cmp >= 0) sorted = 0;
                prev_risk = c.risk[i];
                prev_last = c.last_ms[i];
                snprintf(prev_sid, sizeof prev_sid, "%s", c.sid[i]);
            }
            total += c.n;
            pages++;
            snprintf(cur, sizeof cur, "%s", next);
        } while (*cur && pages < 100);
        int once = 1;
        for (int i = 0; i < N; i++) once &= seen[i] == 1;
        CHECK(total == N && once && pages == 24, "order %d: %d sessions in %d pages, each once", order, total, pages);
        CHECK(sorted, "order %d: pages continue each other in order", order);
        /* The same cursor gives the same page. */
        sessions_t a, b;
        qc_rec_query_t q = {.order = (qc_rec_order_t)order, .limit = 10, .cursor = first_next};
        list(s, &q, &a, NULL);
        list(s, &q, &b, NULL);
        CHECK(a.n == 10 && b.n == 10 && !memcmp(a.sid, b.sid, sizeof a.sid), "a cursor is stable");
    }
    sessions_t c;
    char next[QC_REC_CURSOR_MAX];
    qc_rec_query_t q = {.order = QC_REC_ORDER_RISK, .limit = 5};
    list(s, &q, &c, next);
    q = (qc_rec_query_t){.order = QC_REC_ORDER_RECENT, .cursor = next};
    CHECK(qc_store_sessions(s, &q, collect_session, &c, NULL, err, sizeof err) == QC_ERR_ARG,
          "a risk cursor is refused for order=recent");
    static const char *const bad[] = {"r.1.2", "r.x.2.73", "r.1.2.7", "r.1.2.0073", "zzz", "r.1.2.7g"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        q = (qc_rec_query_t){.order = QC_REC_ORDER_RISK, .cursor = bad[i]};
        CHECK(qc_store_sessions(s, &q, collect_session, &c, NULL, err, sizeof err) == QC_ERR_ARG,
              "malformed cursor '%s' refused", bad[i]);
    }
    q = (qc_rec_query_t){.limit = 1001};
    CHECK(qc_store_sessions(s, &q, collect_session, &c, NULL, err, sizeof err) == QC_ERR_ARG, "limit over 1000");
    qc_store_close(s);
}

/* ==== export ==== */

/* Splits RFC 4180 text into rows of fields (NUL-terminated, in place);
 * returns the number of rows, -1 when malformed. */
static int csv_parse(char *s, size_t n, char *fields[][32], int max_rows, int *n_fields) {
    int row = 0, col = 0;
    char *out = s, *e = s + n;
    char *p = s;
    while (p < e && row < max_rows) {
        char *start = out;
        if (*p == '"') {
            p++;
            for (;;) {
                if (p >= e) return -1;
                if (*p == '"') {
                    if (p + 1 < e && p[1] == '"') {
                        *out++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *out++ = *p++;
            }
        } else {
            while (p < e && *p != ',' && *p != '\r') {
                if (*p == '"' || *p == '\n') return -1;
                *out++ = *p++;
            }
        }
        if (col < 32) fields[row][col] = start;
        col++;
        if (p < e && *p == ',') {
            *out++ = 0;
            p++;
            continue;
        }
        if (p + 1 < e && p[0] == '\r' && p[1] == '\n') {
            *out++ = 0;
            n_fields[row++] = col;
            col = 0;
            p += 2;
            continue;
        }
        return -1;
    }
    return row;
}

static void test_export(void) {
    qc_store_t *s = open_store("export.db", NULL);
    if (!s) return;
    static const char *const msgs[] = {"plain", "a, comma", "say \"hi\"", "two\nlines", "crlf\r\nend",
                                       "中文，还有\"引号\"和逗号,", "", "\"", ",\",\n"};
    enum { NM = sizeof msgs / sizeof msgs[0] };
    for (int i = 0; i < NM; i++) {
        qc_rec_turn_t t = turn("e", 10000 + i, i % 3, 0.25f, 0);
        t.message = msgs[i];
        t.message_len = strlen(msgs[i]);
        t.reply = msgs[NM - 1 - i];
        t.reply_len = strlen(t.reply);
        write_turn(s, &t);
    }
    char err[512];
    qc_buf_t b = {0};
    CHECK(qc_store_export(s, QC_REC_CSV, 0, 0, to_buf, &b, err, sizeof err) == QC_OK, "csv: %s", err);
    static char *fields[16][32];
    int nf[16];
    const char *header = "id,session_id,patient_id,time,message,emotion,p_positive,p_negative,p_neutral,"
                         "calibrated,urgent,urgent_kind,urgent_rule,reply,finish,model,model_hash,weight_type,"
                         "prompt_tokens,completion_tokens,emotion_ms,ttft_ms,total_ms,prompt_version,"
                         "safety_version,model_urgent_p,dropped_turns\r\n";
    CHECK(b.p && !strncmp(b.p, header, strlen(header)), "csv header row");
    int rows = b.p ? csv_parse(b.p, b.n, fields, 16, nf) : -1;
    CHECK(rows == NM + 1, "csv parses as RFC 4180: %d rows", rows);
    int same = rows == NM + 1;
    for (int i = 0; same && i < NM; i++)
        same = nf[i + 1] == 27 && !strcmp(fields[i + 1][4], msgs[i]) && !strcmp(fields[i + 1][13], msgs[NM - 1 - i]) &&
               !strcmp(fields[i + 1][1], "e") && !strcmp(fields[i + 1][7], "0.25") && fields[i + 1][2][0] == 0;
    CHECK(same, "csv fields come back exactly (commas, quotes, newlines, Chinese)");
    CHECK(rows > 1 && !strcmp(fields[1][3], "1970-01-01T00:00:10.000Z") && !strcmp(fields[1][14], "stop") &&
              !strcmp(fields[1][5], "positive") && !strcmp(fields[1][10], "false") && fields[1][25][0] == 0,
          "csv time, finish, label, bool, null");
    qc_buf_free(&b);

    /* An empty range: the header alone. */
    CHECK(qc_store_export(s, QC_REC_CSV, 20000, 30000, to_buf, &b, err, sizeof err) == QC_OK && b.p &&
              !strcmp(b.p, header),
          "empty range: header only");
    qc_buf_free(&b);
    /* The range bounds: [10002, 10004) holds two turns. */
    qc_store_export(s, QC_REC_CSV, 10002, 10004, to_buf, &b, err, sizeof err);
    rows = b.p ? csv_parse(b.p, b.n, fields, 16, nf) : -1;
    CHECK(rows == 3 && !strcmp(fields[1][4], msgs[2]) && !strcmp(fields[2][4], msgs[3]), "since/until bounds");
    qc_buf_free(&b);

    /* JSON lines; a reply that is not UTF-8 still gives valid JSON. */
    qc_rec_turn_t t = turn("e", 10100, 1, 0.5f, 1);
    t.reply = "bad \xff\xfe byte";
    t.reply_len = strlen(t.reply);
    t.model_urgent_p = 0.25;
    write_turn(s, &t);
    CHECK(qc_store_export(s, QC_REC_JSONL, 0, 0, to_buf, &b, err, sizeof err) == QC_OK, "jsonl: %s", err);
    int lines = 0, good = 1;
    for (char *p = b.p, *nl; p && (nl = strchr(p, '\n')); p = nl + 1, lines++) {
        json_error_t je;
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, &je);
        if (!o) {
            good = 0;
            fprintf(stderr, "bad json line: %.*s (%s)\n", (int)(nl - p), p, je.text);
            continue;
        }
        const char *m = json_string_value(json_object_get(o, "message"));
        if (lines < NM && (!m || strcmp(m, msgs[lines]))) good = 0;
        if (lines == NM && (strcmp(json_string_value(json_object_get(o, "reply")), "bad \xef\xbf\xbd\xef\xbf\xbd byte") ||
                            json_real_value(json_object_get(o, "model_urgent_p")) != 0.25 ||
                            !json_is_true(json_object_get(o, "urgent"))))
            good = 0;
        if (json_object_size(o) != 27 || !json_is_null(json_object_get(o, "patient_id"))) good = 0;
        json_decref(o);
    }
    CHECK(lines == NM + 1 && good, "jsonl: %d valid lines, fields as written", lines);
    qc_buf_free(&b);
    qc_store_close(s);
}

/* ==== erasure, purging ==== */

/* Whether marker occurs in file path's bytes. */
static int file_has(const char *path, const char *marker) {
    size_t n;
    char *d = test_slurp(path, &n);
    int has = d && memmem(d, n, marker, strlen(marker)) != NULL;
    free(d);
    return has;
}

static void test_erase(void) {
    qc_store_t *s = open_store("erase.db", NULL);
    if (!s) return;
    static char big[6000];
    memset(big, 'x', sizeof big - 1);
    memcpy(big + 3000, "MARK-ERASE-f00d", 15); /* in an overflow page */
    qc_rec_turn_t t = turn("gone", 1000, 1, 0.8f, 0);
    t.message = "my secret MARK-ERASE-beef";
    t.message_len = strlen(t.message);
    t.patient_id = "MARK-ERASE-pat";
    write_turn(s, &t);
    t.message = big;
    t.message_len = strlen(big);
    t.reply = "reply MARK-ERASE-cafe";
    t.reply_len = strlen(t.reply);
    write_turn(s, &t);
    qc_rec_turn_t k = turn("kept", 1500, 0, 0.1f, 0);
    k.message = "MARK-KEEP-1234";
    k.message_len = strlen(k.message);
    write_turn(s, &k);
    if (!pg_mode) CHECK(file_has(path_in("erase.db-wal"), "MARK-ERASE-beef"), "the marker is in the WAL before erasing");

    char err[512];
    int64_t n = -1, when = 0;
    int ck = -1;
    int64_t t0 = qc_rec_now_ms();
    CHECK(qc_store_erase(s, "gone", &n, &ck, err, sizeof err) == QC_OK, "erase: %s", err);
    CHECK(n == 2 && ck == 1, "erased 2 turns (%lld), checkpointed (%d)", (long long)n, ck);
    CHECK(qc_store_tombstone(s, "gone", &when, err, sizeof err) == QC_OK && when >= t0 && when <= qc_rec_now_ms(),
          "tombstone with the time of erasure");
    CHECK(qc_store_tombstone(s, "kept", &when, err, sizeof err) == QC_OK && when == 0, "no tombstone for kept");
    CHECK(n_turns_of(s, "gone") == 0 && n_turns_of(s, "kept") == 1, "only the erased session's turns went");
    sessions_t c;
    qc_rec_query_t q = {0};
    list(s, &q, &c, NULL);
    CHECK(c.n == 1 && !strcmp(c.sid[0], "kept"), "erased session gone from the list");
    static const char *const marks[] = {"MARK-ERASE-beef", "MARK-ERASE-f00d", "MARK-ERASE-cafe", "MARK-ERASE-pat"};
    for (int i = 0; i < 4 && !pg_mode; i++)
        CHECK(!file_has(path_in("erase.db"), marks[i]) && !file_has(path_in("erase.db-wal"), marks[i]),
              "%s is gone from the db and -wal bytes", marks[i]);
    if (!pg_mode)
        CHECK(file_has(path_in("erase.db"), "MARK-KEEP-1234") || file_has(path_in("erase.db-wal"), "MARK-KEEP-1234"),
              "the kept text is still there (the grep works)");
    CHECK(qc_store_erase(s, "never", &n, &ck, err, sizeof err) == QC_OK && n == 0 &&
              qc_store_tombstone(s, "never", &when, err, sizeof err) == QC_OK && when == 0,
          "erasing an unknown session leaves no tombstone");
    qc_store_close(s);
}

/* The last turn qc_store_turns gives for sid (the head's ground truth). */
static int last_turn(void *user, const qc_rec_turn_t *t) {
    *(qc_rec_id_t *)user = t->id;
    return 0;
}

/* qc_store_head against qc_store_turns: the count of every turn (an
 * emotion-only one too) and the last in the turns' order, also when a turn
 * written later arrived earlier, or at the same ms; nothing after erasure. */
static void test_head(void) {
    qc_store_t *s = open_store("head.db", NULL);
    if (!s) return;
    char err[512];
    qc_rec_head_t h = {.turns = -1};
    CHECK(qc_store_head(s, "h-1", &h, err, sizeof err) == QC_OK && h.turns == 0 && qc_rec_id_is_nil(&h.last),
          "an unknown session's head is empty: %s", err);
    static const int64_t ts[] = {1000, 3000, 2000, 3000};
    qc_rec_id_t id[5], want;
    for (int i = 0; i < 4; i++) {
        qc_rec_turn_t t = turn("h-1", ts[i], 0, 0.1f, 0);
        qc_store_write(s, &t, &id[i], err, sizeof err);
    }
    qc_rec_turn_t other = turn("h-2", 9000, 1, 0.7f, 0);
    write_turn(s, &other);
    CHECK(qc_store_head(s, "h-1", &h, err, sizeof err) == QC_OK && h.turns == 4 &&
              !memcmp(&h.last, &id[3], 16),
          "the head: 4 turns, the last the later of the two at 3000 ms (%lld): %s", (long long)h.turns, err);
    memset(&want, 0, sizeof want);
    qc_store_turns(s, "h-1", last_turn, &want, NULL, err, sizeof err);
    CHECK(!memcmp(&h.last, &want, 16), "the head's last = the last of qc_store_turns");
    qc_rec_turn_t e = turn("h-1", 5000, 2, 0.2f, 0); /* an emotion-only turn: no reply */
    e.reply = NULL;
    e.reply_len = 0;
    qc_store_write(s, &e, &id[4], err, sizeof err);
    CHECK(qc_store_head(s, "h-1", &h, err, sizeof err) == QC_OK && h.turns == 5 && !memcmp(&h.last, &id[4], 16),
          "an emotion-only turn moves the head too (%lld)", (long long)h.turns);
    CHECK(qc_store_erase(s, "h-1", NULL, NULL, err, sizeof err) == QC_OK, "erase: %s", err);
    CHECK(qc_store_head(s, "h-1", &h, err, sizeof err) == QC_OK && h.turns == 0 && qc_rec_id_is_nil(&h.last),
          "an erased session's head is empty (%lld)", (long long)h.turns);
    CHECK(qc_store_head(s, "h-2", &h, err, sizeof err) == QC_OK && h.turns == 1, "the other session's is kept");
    qc_store_close(s);
}

static void test_purge(void) {
    qc_store_t *s = open_store("purge.db", NULL);
    if (!s) return;
    counter_t k = COUNTER_INIT;
    char err[512];
    int n = 0;
    /* "old": 1200 turns all before the cut (more than two purge batches);
     * "mixed": 5 before and 5 after; "new": 3 after. */
    for (int i = 0; i < 1200; i++, n++) {
        qc_rec_turn_t t = turn("old", 1000 + i, 1, 0.9f, i == 3);
        qc_store_submit(s, &t, on_done, &k, NULL, err, sizeof err);
    }
    for (int i = 0; i < 10; i++, n++) {
        qc_rec_turn_t t = turn("mixed", 100000 + i * 1000, i < 5 ? 1 : 2, i < 5 ? 0.9f : 0.2f, i == 1);
        qc_store_submit(s, &t, on_done, &k, NULL, err, sizeof err);
    }
    for (int i = 0; i < 3; i++, n++) {
        qc_rec_turn_t t = turn("new", 200000 + i, 0, 0.1f, 0);
        qc_store_submit(s, &t, on_done, &k, NULL, err, sizeof err);
    }
    wait_done(&k, n);
    int64_t purged = -1;
    CHECK(qc_store_purge(s, 105000, &purged, err, sizeof err) == QC_OK, "purge: %s", err);
    CHECK(purged == 1205, "purged %lld turns", (long long)purged);
    CHECK(n_turns_of(s, "old") == 0 && n_turns_of(s, "mixed") == 5 && n_turns_of(s, "new") == 3, "turns left");
    sessions_t c;
    qc_rec_query_t q = {.order = QC_REC_ORDER_RECENT};
    list(s, &q, &c, NULL);
    int m = index_of(&c, "mixed");
    CHECK(c.n == 2 && index_of(&c, "old") < 0, "an emptied session is dropped");
    CHECK(m >= 0 && c.s[m].turns == 5 && c.s[m].first_ms == 105000 && c.s[m].urgent_count == 0 &&
              c.s[m].neg_streak == 0 && fabs(c.s[m].trend) < 1e-6,
          "the summary of a partly purged session is recomputed");
    CHECK(qc_store_purge(s, 105000, &purged, err, sizeof err) == QC_OK && purged == 0, "purging again: nothing");
    qc_store_close(s);
}

/* ==== concurrency, failures, batching ==== */

typedef struct {
    qc_store_t *s;
    int n;
    volatile int done;
} writer_arg_t;

static void *keep_writing(void *arg) {
    writer_arg_t *w = arg;
    char sid[32];
    for (int i = 0; i < w->n; i++) {
        snprintf(sid, sizeof sid, "w%d", i % 50);
        qc_rec_turn_t t = turn(sid, 0, i % 3, 0.3f, 0);
        t.message = "concurrent, \"quoted\"\nmessage";
        t.message_len = strlen(t.message);
        write_turn(w->s, &t);
    }
    w->done = 1;
    return NULL;
}

static void test_concurrent_export(void) {
    qc_store_t *s = open_store("conc.db", NULL);
    if (!s) return;
    writer_arg_t w = {s, 1500, 0};
    pthread_t th;
    pthread_create(&th, NULL, keep_writing, &w);
    int exports = 0, well_formed = 1, monotone = 1, prev = 0, rows = 0;
    static char *fields[4096][32];
    static int nf[4096];
    char err[512];
    while (!w.done || exports < 2) {
        qc_buf_t b = {0};
        if (qc_store_export(s, QC_REC_CSV, 0, 0, to_buf, &b, err, sizeof err)) {
            well_formed = 0;
            fprintf(stderr, "export: %s\n", err);
            break;
        }
        rows = csv_parse(b.p, b.n, fields, 4096, nf) - 1;
        if (rows < 0) well_formed = 0;
        for (int i = 1; i <= rows; i++)
            if (nf[i] != 27 || strcmp(fields[i][4], "concurrent, \"quoted\"\nmessage")) well_formed = 0;
        if (rows < prev) monotone = 0;
        prev = rows;
        exports++;
        qc_buf_free(&b);
    }
    pthread_join(th, NULL);
    CHECK(well_formed, "%d exports during writes, each whole and well formed", exports);
    CHECK(monotone, "each export sees at least what the one before saw");
    qc_buf_t b = {0};
    qc_store_export(s, QC_REC_CSV, 0, 0, to_buf, &b, err, sizeof err);
    rows = b.p ? csv_parse(b.p, b.n, fields, 4096, nf) - 1 : -1;
    CHECK(rows == 1500, "final export has every turn (%d)", rows);
    qc_buf_free(&b);
    qc_store_close(s);
}

/* Checks in the done callback that the turn is already visible to a reader
 * on another connection: "told" means committed. */
typedef struct {
    qc_store_t *s;
    int seen, calls;
} visible_t;

static int find_id(void *user, const qc_rec_turn_t *t) {
    (void)t;
    ((visible_t *)user)->seen++;
    return 0;
}

static void check_visible(void *user, qc_status st, const qc_rec_id_t *id, const char *err) {
    (void)id;
    (void)err;
    visible_t *v = user;
    char e[256];
    if (!st) qc_store_turns(v->s, "vis", find_id, v, NULL, e, sizeof e);
    v->calls++;
}

static void test_batching(void) {
    qc_store_opts_t o = {.max_batch = 8};
    qc_store_t *s = open_store("batch.db", &o);
    if (!s) return;
    char err[512];
    qc_store_stats_t a, b;
    qc_rec_turn_t t = turn("b", 0, 0, 0.1f, 0);
    write_turn(s, &t);
    qc_store_stats(s, &a);
    /* Twenty turns finishing together: three transactions of at most 8. */
    counter_t k = COUNTER_INIT;
    qc_store_test_hold(s, 1);
    for (int i = 0; i < 20; i++) qc_store_submit(s, &t, on_done, &k, NULL, err, sizeof err);
    qc_store_stats(s, &b);
    CHECK(b.queued == 20, "20 queued while held (%llu)", (unsigned long long)b.queued);
    qc_store_test_hold(s, 0);
    wait_done(&k, 20);
    qc_store_stats(s, &b);
    CHECK(k.ok == 20 && b.committed - a.committed == 20 && b.transactions - a.transactions == 3,
          "20 turns in %llu transactions", (unsigned long long)(b.transactions - a.transactions));
    qc_store_close(s);

    s = open_store("batch.db", NULL);
    if (!s) return;
    qc_store_stats(s, &a);
    counter_t k2 = COUNTER_INIT;
    qc_store_test_hold(s, 1);
    for (int i = 0; i < 50; i++) qc_store_submit(s, &t, on_done, &k2, NULL, err, sizeof err);
    qc_store_test_hold(s, 0);
    wait_done(&k2, 50);
    qc_store_stats(s, &b);
    CHECK(b.transactions - a.transactions == 1 && b.committed - a.committed == 50, "50 together: one transaction");

    /* The callback comes after the commit. */
    visible_t v = {s, 0, 0};
    qc_rec_turn_t vt = turn("vis", 0, 0, 0.1f, 0);
    for (int i = 0; i < 5; i++) qc_store_submit(s, &vt, check_visible, &v, NULL, err, sizeof err);
    qc_store_close(s); /* drains the queue */
    CHECK(v.calls == 5 && v.seen >= 5, "each turn readable when its submitter is told (%d calls, %d seen)", v.calls,
          v.seen);

    /* Close commits what is still queued. */
    s = open_store("batch.db", NULL);
    counter_t k3 = COUNTER_INIT;
    qc_rec_turn_t d = turn("drain", 0, 0, 0.1f, 0);
    for (int i = 0; s && i < 40; i++) qc_store_submit(s, &d, on_done, &k3, NULL, err, sizeof err);
    qc_store_close(s);
    CHECK(k3.done == 40 && k3.ok == 40, "close waits for the queue (%d told)", k3.done);
    s = open_store("batch.db", NULL);
    CHECK(s && n_turns_of(s, "drain") == 40, "the drained turns are in the file");
    qc_store_close(s);
}

static int have_private_mounts;

static void test_failures(void) {
    char err[512];
    qc_store_stats_t st0, st1;
    /* 1. The hook: three turns in one failing transaction, then recovery. */
    qc_store_t *s = open_store("fail.db", NULL);
    if (!s) return;
    qc_rec_turn_t t = turn("f", 0, 0, 0.1f, 0);
    write_turn(s, &t);
    qc_store_stats(s, &st0);
    counter_t k = COUNTER_INIT;
    qc_store_test_hold(s, 1);
    qc_store_test_fail_writes(s, 1);
    for (int i = 0; i < 3; i++) qc_store_submit(s, &t, on_done, &k, NULL, err, sizeof err);
    qc_store_test_hold(s, 0);
    wait_done(&k, 3);
    qc_store_stats(s, &st1);
    CHECK(k.failed == 3 && k.last_st == QC_ERR_IO && strstr(k.last_err, "test hook"),
          "hook: each of the 3 submitters told (%d): %s", k.failed, k.last_err);
    CHECK(st1.errors - st0.errors == 3, "hook: errors counted (%llu)", (unsigned long long)(st1.errors - st0.errors));
    CHECK(write_turn(s, &t) == QC_OK && n_turns_of(s, "f") == 2, "hook: the writer goes on");

    /* 2. A real lock timeout: another connection holds the write lock. */
    qc_store_close(s);
    qc_store_opts_t o = {.busy_timeout_ms = 150};
    s = open_store("fail.db", &o);
    if (!s) return;
    sqlite3 *db = NULL;
    PGconn *pdb = NULL;
    if (pg_mode) {
        pdb = PQconnectdb(store_path("fail.db"));
        PQclear(PQexec(pdb, "BEGIN; LOCK TABLE sessions IN EXCLUSIVE MODE"));
    } else {
        sqlite3_open(path_in("fail.db"), &db);
        sql_exec(db, "BEGIN IMMEDIATE");
    }
    qc_store_stats(s, &st0);
    double t0 = qc_now_ms();
    qc_status r = qc_store_write(s, &t, NULL, err, sizeof err);
    double waited = qc_now_ms() - t0;
    CHECK(r == QC_ERR_BUSY && strstr(err, pg_mode ? "lock timeout" : "busy timeout"), "lock timeout reported: %s", err);
    CHECK(waited >= 140 && waited < 2000, "waited the busy timeout (%.0f ms)", waited);
    qc_store_stats(s, &st1);
    CHECK(st1.errors - st0.errors == 1, "lock timeout counted");
    if (pg_mode) {
        PQclear(PQexec(pdb, "COMMIT"));
        PQfinish(pdb);
    } else {
        sql_exec(db, "COMMIT");
        sqlite3_close(db);
    }
    CHECK(write_turn(s, &t) == QC_OK && n_turns_of(s, "f") == 3, "lock released: the writer goes on");
    qc_store_close(s);
    if (pg_mode) {
        SKIP("records (postgresql): no full-disk test: the server's disk is its own (the hook covers the path)");
        return;
    }

    /* 3. A real full disk: a 1 MiB tmpfs, mounted in this process's own
     * mount namespace (it vanishes with the process). */
    const char *mnt = path_in("tmpfs");
    mkdir(mnt, 0700);
    if (!have_private_mounts || mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700") != 0) {
        printf("test_records: full-disk test skipped: cannot mount a tmpfs here (%s); the hook covers it\n",
               have_private_mounts ? strerror(errno) : "no private mount namespace");
        rmdir(mnt);
        return;
    }
    char db_path[400], filler[400];
    snprintf(db_path, sizeof db_path, "%s/full.db", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    s = NULL;
    if (qc_store_open(db_path, NULL, &s, err, sizeof err) == QC_OK) {
        write_turn(s, &t);
        test_fill_disk(filler);
        static char big[65536];
        memset(big, 'y', sizeof big - 1);
        qc_rec_turn_t bt = turn("f", 0, 0, 0.1f, 0);
        bt.message = big;
        bt.message_len = sizeof big - 1;
        qc_store_stats(s, &st0);
        r = qc_store_write(s, &bt, NULL, err, sizeof err);
        qc_store_stats(s, &st1);
        CHECK(r == QC_ERR_IO && strstr(err, "disk is full"), "full disk reported to the submitter: %s", err);
        CHECK(st1.errors - st0.errors == 1, "full disk counted");
        unlink(filler);
        CHECK(qc_store_write(s, &bt, NULL, err, sizeof err) == QC_OK, "space again: the writer goes on (%s)", err);
        CHECK(n_turns_of(s, "f") == 2, "the failed turn is absent, the others there");
        qc_store_close(s);
        printf("test_records: full-disk test ran on a real 1 MiB tmpfs\n");
    } else {
        CHECK(0, "open on tmpfs: %s", err);
    }
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
}

/* ==== PostgreSQL: replicas, a server that goes away ==== */

/* Writes n turns over 20 sessions that every replica shares, submitted in
 * bursts of 25 (so they batch); how many were reported committed. */
static int replica_write(qc_store_t *s, const char *tag, int n) {
    counter_t k = COUNTER_INIT;
    char err[512], sid[32];
    int submitted = 0;
    for (int i = 0; i < n; i++) {
        snprintf(sid, sizeof sid, "shared-%02d", i % 20);
        qc_rec_turn_t t = turn(sid, 0, i % 3, (float)(i % 10) / 10, i % 17 == 0);
        t.patient_id = tag;
        if (qc_store_submit(s, &t, on_done, &k, NULL, err, sizeof err)) {
            fprintf(stderr, "replica %s: submit: %s\n", tag, err);
            break;
        }
        if (++submitted % 25 == 0) wait_done(&k, submitted);
    }
    wait_done(&k, submitted);
    if (k.failed) fprintf(stderr, "replica %s: %d failed: %s\n", tag, k.failed, k.last_err);
    return k.ok;
}

typedef struct {
    qc_store_t *s;
    const char *tag;
    int n, ok;
} replica_t;

static void *replica_main(void *arg) {
    replica_t *r = arg;
    r->ok = replica_write(r->s, r->tag, r->n);
    return NULL;
}

/* Three replicas write one database at once: a child process and two
 * store handles of this one (each with its writer and its connections). */
static void test_pg_replicas(void) {
    enum { N = 400 };
    store_path("replicas");
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        char err[512];
        qc_store_t *s = NULL;
        int ok = qc_store_open(store_path("replicas"), NULL, &s, err, sizeof err) == QC_OK &&
                 replica_write(s, "child", N) == N;
        qc_store_close(s);
        _exit(ok ? 0 : 1);
    }
    replica_t r[2] = {{open_store("replicas", NULL), "a", N, 0}, {open_store("replicas", NULL), "b", N, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        if (r[i].s) pthread_create(&th[i], NULL, replica_main, &r[i]);
    for (int i = 0; i < 2; i++)
        if (r[i].s) pthread_join(th[i], NULL);
    int cst = -1;
    if (child > 0) waitpid(child, &cst, 0);
    CHECK(child > 0 && WIFEXITED(cst) && WEXITSTATUS(cst) == 0, "the child replica wrote its %d turns", N);
    CHECK(r[0].ok == N && r[1].ok == N, "the two handles wrote theirs (%d, %d)", r[0].ok, r[1].ok);
    char v[64] = "";
    CHECK(!pg_sql("replicas", "SELECT count(*) || ' ' || count(DISTINCT id) FROM turns", v, sizeof v) &&
              !strcmp(v, "1200 1200"),
          "3 x %d turns, every id distinct (count, distinct: %s)", N, v);
    CHECK(!pg_sql("replicas", "SELECT count(*) || ' ' || sum(turns) FROM sessions", v, sizeof v) &&
              !strcmp(v, "20 1200"),
          "20 shared sessions whose summaries count every turn (%s)", v);
    CHECK(!pg_sql("replicas",
                  "SELECT count(*) FROM sessions s WHERE turns <> (SELECT count(*) FROM turns t WHERE t.session_id ="
                  " s.session_id) OR urgent_count <> (SELECT count(*) FROM turns t WHERE t.session_id = s.session_id"
                  " AND urgent)",
                  v, sizeof v) &&
              !strcmp(v, "0"),
          "each summary agrees with its session's turns (%s disagree)", v);
    CHECK(r[0].s && n_turns_of(r[0].s, "shared-07") == 60, "one session's turns from all three");
    for (int i = 0; i < 2; i++) qc_store_close(r[i].s);
}

static void *write_ew(void *arg) {
    qc_store_t *s = arg;
    for (int i = 0; i < 300; i++) {
        qc_rec_turn_t t = turn("ew", 0, i % 3, 0.5f, 0);
        write_turn(s, &t);
    }
    return NULL;
}

/* Erasing a session while a replica keeps writing to it: whatever
 * interleaving, its summary agrees with the turns left (none orphaned). */
static void test_pg_erase_race(void) {
    qc_store_t *w = open_store("erace", NULL), *e = open_store("erace", NULL);
    if (!w || !e) return;
    pthread_t th;
    pthread_create(&th, NULL, write_ew, w);
    char err[512], v[64] = "";
    int ok = 1;
    for (int i = 0; i < 10; i++) {
        usleep(20000);
        ok &= qc_store_erase(e, "ew", NULL, NULL, err, sizeof err) == QC_OK;
    }
    pthread_join(th, NULL);
    CHECK(ok, "10 erasures during the writes: %s", ok ? "ok" : err);
    CHECK(!pg_sql("erace",
                  "SELECT coalesce((SELECT turns FROM sessions WHERE session_id = 'ew'), 0) - (SELECT count(*) FROM"
                  " turns WHERE session_id = 'ew')",
                  v, sizeof v) &&
              !strcmp(v, "0"),
          "the summary counts exactly the turns left (off by %s)", v);
    qc_store_close(w);
    qc_store_close(e);
}

typedef struct {
    qc_store_t *s;
    volatile int stop;
    pthread_mutex_t m;
    int ok, failed, unreachable;
    qc_rec_id_t ids[8192];
} lost_t;

static void *lost_writer(void *arg) {
    lost_t *w = arg;
    char err[512];
    while (!w->stop && w->ok < 8192) {
        qc_rec_turn_t t = turn("lost", 0, 1, 0.6f, 0);
        qc_rec_id_t id;
        qc_status st = qc_store_write(w->s, &t, &id, err, sizeof err);
        pthread_mutex_lock(&w->m);
        if (!st) w->ids[w->ok++] = id;
        else w->failed++;
        if (st == QC_ERR_IO && strstr(err, "unreachable")) w->unreachable++;
        pthread_mutex_unlock(&w->m);
        if (st) usleep(5000);
    }
    return NULL;
}

/* Waits (polling) until the counter at *p reaches want; 0, or -1 after
 * 60 s (then the check that follows fails). */
static int wait_count(lost_t *w, const int *p, int want) {
    for (int i = 0; i < 6000; i++) {
        pthread_mutex_lock(&w->m);
        int v = *p;
        pthread_mutex_unlock(&w->m);
        if (v >= want) return 0;
        usleep(10000);
    }
    return -1;
}

typedef struct {
    qc_rec_id_t *ids;
    int n, max;
} idlist_t;

static int collect_id(void *user, const qc_rec_turn_t *t) {
    idlist_t *l = user;
    if (l->n < l->max) l->ids[l->n++] = t->id;
    return 0;
}

/* The server is stopped while a writer keeps writing, then started again. */
static void test_pg_lost(void) {
    static lost_t w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.m, NULL);
    if (!(w.s = open_store("lost", NULL))) return;
    /* a second handle that never writes: its probes follow the server */
    qc_store_t *idle = open_store("lost", &(qc_store_opts_t){.probe_ms = 100});
    pthread_t th;
    pthread_create(&th, NULL, lost_writer, &w);
    char err[512];
    CHECK(wait_count(&w, &w.ok, 50) == 0, "writes go through before the server stops");
    CHECK(idle && qc_store_reachable(idle), "an idle store with probes is reachable");
    CHECK(test_pg_stop(&pgs) == 0, "server stopped");
    int polls = 0;
    while (idle && qc_store_reachable(idle) && polls++ < 600) usleep(50000);
    CHECK(idle && !qc_store_reachable(idle), "the idle store's probe finds the server away (%d polls of 50 ms)", polls);
    qc_rec_turn_t t = turn("lost", 0, 2, 0.1f, 0);
    qc_store_stats_t a, b;
    qc_store_stats(w.s, &a);
    qc_status st = qc_store_write(w.s, &t, NULL, err, sizeof err);
    CHECK(st == QC_ERR_IO && strstr(err, "unreachable"), "a write while it is down fails with QC_ERR_IO: %s", err);
    fprintf(stderr, "  (while down: %s)\n", err);
    int64_t n = 0;
    CHECK(qc_store_turns(w.s, "lost", NULL, NULL, &n, err, sizeof err) == QC_ERR_IO, "a read fails too: %s", err);
    pthread_mutex_lock(&w.m);
    int failed0 = w.failed;
    pthread_mutex_unlock(&w.m);
    CHECK(wait_count(&w, &w.failed, failed0 + 5) == 0, "the writer's turns keep failing while it is down");
    pthread_mutex_lock(&w.m);
    int ok_down = w.ok;
    pthread_mutex_unlock(&w.m);
    CHECK(test_pg_start(&pgs) == 0, "server started again");
    CHECK(wait_count(&w, &w.ok, ok_down + 50) == 0, "writes go through again once it is back");
    polls = 0;
    while (idle && !qc_store_reachable(idle) && polls++ < 600) usleep(50000);
    CHECK(idle && qc_store_reachable(idle), "and the idle store's probe finds it back (%d polls of 50 ms)", polls);
    qc_store_close(idle);
    w.stop = 1;
    pthread_join(th, NULL);
    qc_store_stats(w.s, &b);
    CHECK(w.unreachable >= 5 && b.errors - a.errors >= (uint64_t)(w.failed - failed0) + 1,
          "failures said 'unreachable' (%d of %d) and were counted (%llu)", w.unreachable, w.failed,
          (unsigned long long)(b.errors - a.errors));
    CHECK(write_turn(w.s, &t) == QC_OK, "a write after the restart");

    /* Every turn reported committed is there, once; nothing else but
     * turns whose commit was under way when the server went (reported
     * failed: their outcome was unknown). */
    static qc_rec_id_t got_ids[16384];
    idlist_t l = {got_ids, 0, 16384};
    CHECK(qc_store_turns(w.s, "lost", collect_id, &l, NULL, err, sizeof err) == QC_OK, "read back: %s", err);
    qsort(got_ids, (size_t)l.n, sizeof got_ids[0], cmp_id);
    int missing = 0, dup = 0;
    for (int i = 1; i < l.n; i++) dup += !memcmp(&got_ids[i - 1], &got_ids[i], 16);
    for (int i = 0; i < w.ok; i++) missing += !bsearch(&w.ids[i], got_ids, (size_t)l.n, sizeof got_ids[0], cmp_id);
    CHECK(missing == 0 && dup == 0, "all %d turns reported committed are there, none twice (%d missing, %d twice)",
          w.ok, missing, dup);
    CHECK(l.n >= w.ok + 1 && l.n <= w.ok + 1 + w.failed, "no more turns than were written (%d stored, %d ok, %d failed)",
          l.n, w.ok, w.failed);
    sessions_t c;
    qc_rec_query_t q = {.patient_id = NULL, .order = QC_REC_ORDER_RECENT};
    list(w.s, &q, &c, NULL);
    int li = index_of(&c, "lost");
    CHECK(li >= 0 && c.s[li].turns == l.n, "the summary counts each stored turn once (%lld vs %d)",
          li >= 0 ? (long long)c.s[li].turns : -1LL, l.n);
    fprintf(stderr, "  (server away: %d turns failed, %d reported committed, %d stored)\n", w.failed, w.ok, l.n);
    qc_store_close(w.s);
    pthread_mutex_destroy(&w.m);
}

/* The cases of either backend (but the CLI's, which main runs last). */
static void test_cases(void) {
    test_roundtrip();
    test_file();
    test_migration();
    test_risk();
    test_cursor();
    test_export();
    test_erase();
    test_head();
    test_purge();
    test_concurrent_export();
    test_batching();
    test_failures();
}

/* The cases of main() again, on PostgreSQL. */
static void test_pg(void) {
    char why[512];
    if (test_pg_create(&pgs, 0, why, sizeof why)) {
        SKIP("records: the PostgreSQL cases did not run: %s", why);
        return;
    }
    printf("test_records: PostgreSQL cases on 127.0.0.1:%d (%s)\n", pgs.port, pgs.dir);
    fflush(stdout);
    pg_mode = 1;
    test_pg_replicas(); /* first: it forks, which wants no other thread */
    test_cases();
    test_cli();
    test_pg_erase_race();
    test_pg_lost();
    pg_mode = 0;
    test_pg_destroy(&pgs);
}

/* ==== the command: qcare records ==== */

static char qcare_bin[400];

/* Runs `qcare records ARGS`; returns the exit status; stdout and stderr
 * into *out and *err (caller frees). */
static int qrec(const char *args, char **out, char **err) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "env -u QCARE_RECORDS %s records %s > %s 2> %s", qcare_bin, args, path_in("cli.out"),
             path_in("cli.err"));
    int st = system(cmd);
    *out = test_slurp(path_in("cli.out"), NULL);
    *err = test_slurp(path_in("cli.err"), NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Runs `qcare records ARGS...` (printf-style) and checks the exit status
 * and that `want` (unless NULL) is in stdout or stderr. */
static void qrec_expect(int want_rc, const char *want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void qrec_expect(int want_rc, const char *want, const char *fmt, ...) {
    char args[1024], *out, *err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = qrec(args, &out, &err);
    int has = !want || (out && strstr(out, want)) || (err && strstr(err, want));
    CHECK(rc == want_rc && has, "qcare records %s: exit %d (want %d), '%s' %s; stderr: %s", args, rc, want_rc,
          want ? want : "", has ? "found" : "missing", err ? err : "");
    free(out);
    free(err);
}

static void test_cli(void) {
    snprintf(qcare_bin, sizeof qcare_bin, "%s/qcare", test_env("QC_BUILD", "build"));
    if (access(qcare_bin, X_OK)) {
        printf("test_records: CLI checks skipped: no %s (build it, or set QC_BUILD)\n", qcare_bin);
        return;
    }
    char a[1024], risk[400];
    snprintf(risk, sizeof risk, "%s", store_path("risk.db"));
    qrec_expect(0, "usage: qcare records list", "--help");
    qrec_expect(2, "which command", "%s", "");
    qrec_expect(2, "--records PATH is required", "list");
    qrec_expect(2, "unknown command", "frob --records %s", risk);
    qrec_expect(2, "not risk or recent", "list --records %s --order sideways", risk);
    qrec_expect(2, "not a date", "list --records %s --since yesterday", risk);
    qrec_expect(2, "--limit", "list --records %s --limit 0", risk);
    qrec_expect(2, "cursor", "list --records %s --cursor bogus", risk);
    qrec_expect(2, "not an option of list", "list --records %s --before 2026-01-01", risk);
    qrec_expect(1, "cannot open", "list --records %s", store_path("absent.db"));
    if (!pg_mode) CHECK(access(path_in("absent.db"), F_OK) != 0, "list does not create a file");

    char *out, *err;
    snprintf(a, sizeof a, "list --records %s", risk);
    int rc = qrec(a, &out, &err);
    const char *u = out ? strstr(out, "\nurgent ") : NULL, *w = out ? strstr(out, "\nworsening ") : NULL,
               *i = out ? strstr(out, "\nimproving ") : NULL;
    CHECK(rc == 0 && u && w && i && u < w && w < i && strstr(out, "RISK"), "list: a table in risk order:\n%s", out ? out : "");
    free(out);
    free(err);
    snprintf(a, sizeof a, "list --records %s --order recent --json --limit 2", risk);
    rc = qrec(a, &out, &err);
    json_t *j = out ? json_loads(out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    const char *first = j ? json_string_value(json_object_get(j, "session_id")) : NULL;
    CHECK(rc == 0 && first && !strcmp(first, "improving") && err && strstr(err, "next page: --cursor t."),
          "list --json --limit 2: JSON lines and a next cursor: %s / %s", out ? out : "", err ? err : "");
    json_decref(j);
    int lines = 0;
    for (char *p = out; p && (p = strchr(p, '\n')); p++) lines++;
    CHECK(lines == 2, "two sessions on the page (%d)", lines);
    free(out);
    free(err);

    snprintf(a, sizeof a, "show worsening --records %s", risk);
    rc = qrec(a, &out, &err);
    int turns = 0;
    for (char *p = out; p && (p = strstr(p, "  patient: ")); p++) turns++;
    CHECK(rc == 0 && turns == 5 && out && strstr(out, "session worsening, patient p1"), "show: 5 turns:\n%s", out ? out : "");
    free(out);
    free(err);
    qrec_expect(1, "no session 'nobody'", "show nobody --records %s", risk);
    qrec_expect(1, "was erased at", "show gone --records %s", store_path("erase.db"));
    qrec_expect(2, "which SESSION", "show --records %s", risk);
    qrec_expect(0, "\"session_id\":\"worsening\"", "show worsening --json --records %s", risk);

    qrec_expect(2, "not csv or jsonl", "export --records %s --format xml", risk);
    qrec_expect(0, "\r\n", "export --records %s --since 1970-01-01T00:01:00 --until 1970-01-01T00:01:10", risk);
    char *csv = test_slurp(path_in("cli.out"), NULL);
    int rows = 0;
    for (char *p = csv; p && (p = strstr(p, "\r\n")); p += 2) rows++;
    CHECK(rows == 1 + 5, "export --since --until: header and the 5 turns of steady-negative (%d rows)", rows);
    free(csv);
    qrec_expect(0, NULL, "export --records %s --format jsonl --output %s", risk, path_in("out.jsonl"));
    struct stat sb;
    CHECK(stat(path_in("out.jsonl"), &sb) == 0 && (sb.st_mode & 0777) == 0600 && sb.st_size > 1000,
          "export --output: a 0600 file");

    /* While this process writes the same file through its store. */
    qc_store_t *s = open_store("conc.db", NULL);
    if (s) {
        writer_arg_t wa = {s, 400, 0};
        pthread_t th;
        pthread_create(&th, NULL, keep_writing, &wa);
        int ok = 1, runs = 0;
        while (!wa.done || runs < 2) {
            snprintf(a, sizeof a, "export --records %s --format jsonl", store_path("conc.db"));
            rc = qrec(a, &out, &err);
            if (rc) {
                ok = 0;
                fprintf(stderr, "export during writes: %s\n", err);
            }
            free(out);
            free(err);
            runs++;
        }
        pthread_join(th, NULL);
        CHECK(ok, "%d CLI exports while the store writes", runs);
        qc_store_close(s);
    }

    qrec_expect(2, "--before DATE is required", "purge --records %s", risk);
    qrec_expect(1, pg_mode ? "does not exist" : "No such file", "purge --records %s --before 2026-01-01",
                store_path("absent.db"));
    if (!pg_mode) {
        CHECK(access(path_in("absent.db"), F_OK) != 0, "purge does not create a file");
        FILE *e = fopen(path_in("empty.db"), "w");
        if (e) fclose(e);
        qrec_expect(1, "empty file, not a records store", "list --records %s", path_in("empty.db"));
    }
    qrec_expect(0, "purged 5 turns before 1970-01-01T00:00:52.000Z", "purge --records %s --before 1970-01-01T00:00:52Z", risk);
}

int main(void) {
    /* A private mount namespace (root only), before any thread starts, so
     * the full-disk test can mount a tmpfs that no one else sees. */
    have_private_mounts = test_private_mounts();
    const char *tmp = test_env("TMPDIR", "/tmp");
    snprintf(dir, sizeof dir, "%s/qc_records_XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    double t0 = qc_now_ms();
    test_ids();
    test_pg();
    test_cases();
    test_cli();
    test_rm_tree(dir);
    printf("test_records: %.1f s\n", (qc_now_ms() - t0) / 1000);
    return test_done("test_records");
}
