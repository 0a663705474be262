/* sqlite.c — the SQLite backend of the records store (backend.h): one file
 * in WAL mode (readers never block the writer, nor it them), created 0600,
 * secure_delete on, the schema versioned in table qcare_schema and brought
 * forward at open.
 *
 * Schema history (each step in migrations[] below; a new step is only ever
 * appended):
 *   v1  turns: one row per turn (the record of the first records issue).
 *   v2  turns gain the fields for later issues (token ids, prompt and safety
 *       versions, the model's urgency, dropped turns); sessions: one summary
 *       row per session, kept by every write, so that pages ordered by risk
 *       or recency are index scans (backfilled from the turns); erased: the
 *       tombstones of erased sessions. */
#include "records/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCHEMA_VERSION 2

struct qc_rec_conn {
    sqlite3 *db;
    char *path;
    int busy_ms;
    double busy_since; /* qc_now_ms() of the first retry of the current wait */
    sqlite3_stmt *ins, *sum_get, *sum_put; /* the writer's, prepared at its first insert */
    qc_rec_scratch_t row;                  /* token ids of the turn being written or read */
};

/* ==== errors ==== */

static qc_status status_of(int rc) {
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return QC_ERR_BUSY;
    case SQLITE_NOMEM: return QC_ERR_NOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT: return QC_ERR_FORMAT;
    default: return QC_ERR_IO;
    }
}

/* "PATH: WHAT: sqlite's message (a hint)"; returns the matching status. */
static qc_status fail(qc_rec_conn_t *c, int rc, const char *what, char *err, size_t err_size) {
    const char *hint = "";
    switch (rc & 0xff) {
    case SQLITE_FULL: hint = " (the disk is full)"; break;
    case SQLITE_READONLY: hint = " (the file or its folder is read-only)"; break;
    case SQLITE_BUSY: hint = " (another connection held the lock past the busy timeout)"; break;
    case SQLITE_NOTADB: hint = " (not an SQLite file)"; break;
    }
    const char *msg = c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
    return qc_seterr(err, err_size, status_of(rc), "%s: %s: %s%s", c->path, what, msg, hint);
}

/* Rolls back an open transaction after a failure (the message is already
 * written: ROLLBACK would replace sqlite's). */
static void rollback(qc_rec_conn_t *c) {
    if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static qc_status exec(qc_rec_conn_t *c, const char *sql, const char *what, char *err, size_t err_size) {
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? QC_OK : fail(c, rc, what, err, err_size);
}

/* The busy handler: retries every millisecond (so a writer gets in during
 * the short pauses between a purge's transactions) up to busy_ms. */
static int busy_wait(void *user, int count) {
    qc_rec_conn_t *c = user;
    if (count == 0) c->busy_since = qc_now_ms();
    if (qc_now_ms() - c->busy_since >= c->busy_ms) return 0;
    usleep(1000);
    return 1;
}

/* ==== statement helpers ==== */

static int bind_text(sqlite3_stmt *st, int i, const char *s) {
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static const char *col_text(sqlite3_stmt *st, int i) { return (const char *)sqlite3_column_text(st, i); }

/* Prepares sql once into *st. */
static qc_status prepare(qc_rec_conn_t *c, sqlite3_stmt **st, const char *sql, char *err, size_t err_size) {
    if (*st) return QC_OK;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return rc == SQLITE_OK ? QC_OK : fail(c, rc, "prepare", err, err_size);
}

/* Steps a statement that returns no row, then resets it. */
static int step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ==== session summaries ==== */

static const char sum_get_sql[] =
    "SELECT patient_id, first_ms, last_ms, turns, urgent_count, last_emotion, neg_streak, recent "
    "FROM sessions WHERE session_id = ?1";
static const char sum_put_sql[] =
    "INSERT INTO sessions(session_id, patient_id, first_ms, last_ms, turns, urgent_count, last_emotion, "
    "last_negative, neg_streak, recent, trend, risk) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
    "ON CONFLICT(session_id) DO UPDATE SET patient_id = excluded.patient_id, first_ms = excluded.first_ms, "
    "last_ms = excluded.last_ms, turns = excluded.turns, urgent_count = excluded.urgent_count, "
    "last_emotion = excluded.last_emotion, last_negative = excluded.last_negative, "
    "neg_streak = excluded.neg_streak, recent = excluded.recent, trend = excluded.trend, risk = excluded.risk";

/* Writes the summary row of session sid (patient may be NULL). */
static int sum_put(sqlite3_stmt *st, const char *sid, const char *patient, const qc_rec_summary_t *s) {
    uint8_t recent[4 * QC_REC_TREND_TURNS];
    size_t nr = qc_rec_recent_encode(s, recent);
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    bind_text(st, 2, patient);
    sqlite3_bind_int64(st, 3, s->first_ms);
    sqlite3_bind_int64(st, 4, s->last_ms);
    sqlite3_bind_int64(st, 5, s->turns);
    sqlite3_bind_int64(st, 6, s->urgent_count);
    sqlite3_bind_int(st, 7, s->last_emotion);
    sqlite3_bind_double(st, 8, s->n_recent ? s->recent[s->n_recent - 1] : 0);
    sqlite3_bind_int(st, 9, s->neg_streak);
    sqlite3_bind_blob(st, 10, recent, (int)nr, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 11, qc_rec_summary_trend(s));
    sqlite3_bind_int64(st, 12, qc_rec_summary_risk(s));
    return step_done(st);
}

/* Recomputes the summaries of session sid (NULL: of every session) from
 * their turns, and drops the summary of a session left without turns. */
static qc_status resummarize(qc_rec_conn_t *c, const char *sid, char *err, size_t err_size) {
    sqlite3_stmt *q = NULL, *put = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                sid ? "SELECT session_id, patient_id, ts_ms, emotion, p_negative, urgent FROM turns "
                                      "WHERE session_id = ?1 ORDER BY ts_ms, seq"
                                    : "SELECT session_id, patient_id, ts_ms, emotion, p_negative, urgent FROM turns "
                                      "ORDER BY session_id, ts_ms, seq",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(c->db, sum_put_sql, -1, &put, NULL);
    if (rc == SQLITE_OK && sid) rc = sqlite3_bind_text(q, 1, sid, -1, SQLITE_STATIC);
    char cur[QC_REC_SESSION_MAX + 1] = "", patient[QC_REC_SESSION_MAX + 1];
    int has_patient = 0, n_rows = 0;
    qc_rec_summary_t s = {0};
    while (rc == SQLITE_OK) {
        int step = sqlite3_step(q);
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            rc = step;
            break;
        }
        const char *row_sid = step == SQLITE_ROW ? col_text(q, 0) : NULL;
        if (s.turns && (!row_sid || strcmp(row_sid, cur))) {
            if ((rc = sum_put(put, cur, has_patient ? patient : NULL, &s)) != SQLITE_OK) break;
            memset(&s, 0, sizeof s);
            has_patient = 0;
        }
        if (!row_sid) break;
        n_rows++;
        snprintf(cur, sizeof cur, "%s", row_sid);
        if (col_text(q, 1)) {
            snprintf(patient, sizeof patient, "%s", col_text(q, 1));
            has_patient = 1;
        }
        qc_rec_summary_add(&s, sqlite3_column_int64(q, 2), sqlite3_column_int(q, 3),
                           (float)sqlite3_column_double(q, 4), sqlite3_column_int(q, 5));
    }
    sqlite3_finalize(q);
    sqlite3_finalize(put);
    if (rc == SQLITE_OK && sid && n_rows == 0) {
        sqlite3_stmt *del = NULL;
        rc = sqlite3_prepare_v2(c->db, "DELETE FROM sessions WHERE session_id = ?1", -1, &del, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(del, 1, sid, -1, SQLITE_STATIC);
            rc = step_done(del);
        }
        sqlite3_finalize(del);
    }
    return rc == SQLITE_OK ? QC_OK : fail(c, rc, "summarize sessions", err, err_size);
}

/* ==== schema and migrations ==== */

static const char v1_sql[] =
    "CREATE TABLE qcare_schema(version INTEGER NOT NULL);"
    "INSERT INTO qcare_schema VALUES (1);"
    "CREATE TABLE turns("
    "  seq INTEGER PRIMARY KEY,"           /* insertion order, the tie-break of equal times */
    "  id BLOB NOT NULL UNIQUE,"           /* UUIDv7, 16 bytes */
    "  session_id TEXT NOT NULL,"
    "  patient_id TEXT,"
    "  ts_ms INTEGER NOT NULL,"            /* UTC ms since the epoch */
    "  message TEXT NOT NULL,"
    "  emotion INTEGER NOT NULL,"          /* 0 positive, 1 negative, 2 neutral */
    "  p_positive REAL NOT NULL, p_negative REAL NOT NULL, p_neutral REAL NOT NULL,"
    "  calibrated INTEGER NOT NULL,"
    "  urgent INTEGER NOT NULL, urgent_kind TEXT, urgent_rule TEXT,"
    "  reply TEXT NOT NULL,"
    "  finish TEXT NOT NULL,"              /* stop, length, cancelled, error */
    "  model_name TEXT, model_hash TEXT, weight_type TEXT,"
    "  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    "  emotion_ms REAL NOT NULL, ttft_ms REAL NOT NULL, total_ms REAL NOT NULL);"
    "CREATE INDEX turns_session ON turns(session_id, ts_ms);"
    "CREATE INDEX turns_time ON turns(ts_ms);";

static const char v2_sql[] =
    "ALTER TABLE turns ADD COLUMN prompt_ids BLOB;" /* varint token ids (backend.h) */
    "ALTER TABLE turns ADD COLUMN reply_ids BLOB;"
    "ALTER TABLE turns ADD COLUMN prompt_version TEXT;"
    "ALTER TABLE turns ADD COLUMN safety_version TEXT;"
    "ALTER TABLE turns ADD COLUMN model_urgent_p REAL;" /* NULL: not judged */
    "ALTER TABLE turns ADD COLUMN dropped_turns INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE sessions("
    "  session_id TEXT PRIMARY KEY, patient_id TEXT,"
    "  first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,"
    "  turns INTEGER NOT NULL, urgent_count INTEGER NOT NULL,"
    "  last_emotion INTEGER NOT NULL, last_negative REAL NOT NULL, neg_streak INTEGER NOT NULL,"
    "  recent BLOB NOT NULL," /* P(negative) of the last <= 5 turns, float32 LE, oldest first */
    "  trend REAL NOT NULL,"
    "  risk INTEGER NOT NULL);" /* qc_rec_summary_risk, millionths */
    "CREATE INDEX sessions_risk ON sessions(risk, last_ms, session_id);"
    "CREATE INDEX sessions_recent ON sessions(last_ms, session_id);"
    "CREATE INDEX sessions_patient ON sessions(patient_id, last_ms);"
    "CREATE TABLE erased(session_id TEXT PRIMARY KEY, erased_ms INTEGER NOT NULL);";

/* migrations[v] takes a file from version v to v + 1 (0: an empty file). */
static qc_status migrate_v1(qc_rec_conn_t *c, char *err, size_t err_size) {
    return exec(c, v1_sql, "create the schema", err, err_size);
}

static qc_status migrate_v2(qc_rec_conn_t *c, char *err, size_t err_size) {
    qc_status st = exec(c, v2_sql, "migrate to schema v2", err, err_size);
    return st ? st : resummarize(c, NULL, err, err_size);
}

static qc_status (*const migrations[SCHEMA_VERSION])(qc_rec_conn_t *, char *, size_t) = {migrate_v1, migrate_v2};

/* The file's schema version: 0 for a file without tables, -1 for an
 * SQLite file that is not a records store. An sqlite result code. */
static int read_version(qc_rec_conn_t *c, int *v) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table'),"
                                " (SELECT count(*) FROM sqlite_master WHERE name = 'qcare_schema')",
                                -1, &st, NULL);
    int tables = 0, ours = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        tables = sqlite3_column_int(st, 0);
        ours = sqlite3_column_int(st, 1);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    *v = tables == 0 ? 0 : -1;
    if (rc != SQLITE_OK || !ours) return rc;
    st = NULL;
    rc = sqlite3_prepare_v2(c->db, "SELECT max(version) FROM qcare_schema", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *v = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Checks the version against ours and, unless read_only, migrates forward
 * in one transaction (taken before the version is read again, so two
 * processes opening an old file at once migrate it once). */
static qc_status check_schema(qc_rec_conn_t *c, int read_only, char *err, size_t err_size) {
    int v, rc = read_version(c, &v);
    if (rc != SQLITE_OK) return fail(c, rc, "read the schema version", err, err_size);
    if (v == SCHEMA_VERSION) return QC_OK;
    if (read_only || v < 0 || v > SCHEMA_VERSION) goto refuse;
    qc_status st = exec(c, "BEGIN IMMEDIATE", "migrate", err, err_size);
    if (st) return st;
    if ((rc = read_version(c, &v)) != SQLITE_OK) {
        st = fail(c, rc, "read the schema version", err, err_size);
        rollback(c);
        return st;
    }
    if (v < 0 || v > SCHEMA_VERSION) {
        rollback(c);
        goto refuse;
    }
    for (; v < SCHEMA_VERSION && !st; v++) st = migrations[v](c, err, err_size);
    if (!st) {
        char sql[64];
        snprintf(sql, sizeof sql, "UPDATE qcare_schema SET version = %d", SCHEMA_VERSION);
        st = exec(c, sql, "migrate", err, err_size);
    }
    if (!st) st = exec(c, "COMMIT", "migrate", err, err_size);
    if (st) rollback(c);
    return st;
refuse:
    if (v < 0)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: an SQLite file, but not a qcare records store", c->path);
    if (v == 0)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: an empty file, not a records store (yet)", c->path);
    if (v > SCHEMA_VERSION)
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: records schema version %d was written by a newer qcare (this one reads up to %d): "
                         "upgrade qcare to open it",
                         c->path, v, SCHEMA_VERSION);
    return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                     "%s: records schema version %d needs migrating to %d, which a read-only open cannot do: "
                     "open it read-write once (qcare serve, qcare records purge)",
                     c->path, v, SCHEMA_VERSION);
}

/* ==== connections ==== */

static void sq_close(qc_rec_conn_t *c) {
    if (!c) return;
    sqlite3_finalize(c->ins);
    sqlite3_finalize(c->sum_get);
    sqlite3_finalize(c->sum_put);
    sqlite3_close(c->db);
    qc_rec_scratch_free(&c->row);
    free(c->path);
    free(c);
}

static qc_status sq_open(const char *path, const qc_store_opts_t *o, qc_rec_conn_t **out, char *err,
                         size_t err_size) {
    *out = NULL;
    qc_rec_conn_t *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: out of memory");
    }
    qc_status st;
    c->busy_ms = o->busy_timeout_ms;
    if (!o->read_only) {
        /* Created here, not by sqlite (0644), so that no one else may read
         * it; the -wal and -shm files take the same mode. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            st = qc_seterr(err, err_size, QC_ERR_IO, "%s: cannot open or create: %s", path, strerror(errno));
            goto fail;
        }
        close(fd);
    }
    int rc = sqlite3_open_v2(path, &c->db,
                             (o->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        st = fail(c, rc, "cannot open", err, err_size);
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_handler(c->db, busy_wait, c);
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA secure_delete = ON; PRAGMA trusted_schema = OFF; PRAGMA synchronous = %s;"
             " PRAGMA journal_size_limit = 67108864;",
             o->sync_full ? "FULL" : "NORMAL");
    if ((st = exec(c, pragmas, "set up", err, err_size))) goto fail;
    if (!o->read_only) {
        sqlite3_stmt *wal = NULL;
        rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &wal, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(wal);
        int is_wal = rc == SQLITE_ROW && col_text(wal, 0) && !strcmp(col_text(wal, 0), "wal");
        sqlite3_finalize(wal);
        if (rc != SQLITE_ROW) {
            st = fail(c, rc, "switch to WAL", err, err_size);
            goto fail;
        }
        if (!is_wal) {
            st = qc_seterr(err, err_size, QC_ERR_IO, "%s: the file system does not allow WAL mode", path);
            goto fail;
        }
    }
    if ((st = check_schema(c, o->read_only, err, err_size))) goto fail;
    *out = c;
    return QC_OK;
fail:
    sq_close(c);
    return st;
}

/* ==== writing ==== */

static const char insert_sql[] =
    "INSERT INTO turns(" QC_REC_TURN_FIELDS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
    " ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)";

/* Binds the turn's token ids (varint blob, or NULL when there are none). */
static int bind_ids(sqlite3_stmt *st, int i, qc_buf_t *b, const int32_t *ids, size_t n) {
    if (!n) return sqlite3_bind_null(st, i);
    b->n = 0;
    if (qc_rec_ids_encode(ids, n, b) || b->n > INT32_MAX) return SQLITE_NOMEM;
    return sqlite3_bind_blob(st, i, b->p, (int)b->n, SQLITE_STATIC);
}

static int insert_turn(qc_rec_conn_t *c, const qc_rec_turn_t *t) {
    sqlite3_stmt *st = c->ins;
    int rc = SQLITE_OK;
    if (t->message_len > INT32_MAX || t->reply_len > INT32_MAX) return SQLITE_TOOBIG;
    sqlite3_bind_blob(st, 1, t->id.b, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->session_id, -1, SQLITE_STATIC);
    bind_text(st, 3, t->patient_id);
    sqlite3_bind_int64(st, 4, t->ts_ms);
    sqlite3_bind_text(st, 5, t->message, (int)t->message_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, t->emotion);
    for (int i = 0; i < 3; i++) sqlite3_bind_double(st, 7 + i, t->probs[i]);
    sqlite3_bind_int(st, 10, t->calibrated);
    sqlite3_bind_int(st, 11, t->urgent != 0);
    bind_text(st, 12, t->urgent_kind);
    bind_text(st, 13, t->urgent_rule);
    sqlite3_bind_text(st, 14, t->reply, (int)t->reply_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 15, qc_finish_name(t->finish), -1, SQLITE_STATIC);
    bind_text(st, 16, t->model_name);
    bind_text(st, 17, t->model_hash);
    bind_text(st, 18, t->weight_type);
    sqlite3_bind_int(st, 19, t->prompt_tokens);
    sqlite3_bind_int(st, 20, t->completion_tokens);
    sqlite3_bind_double(st, 21, t->emotion_ms);
    sqlite3_bind_double(st, 22, t->ttft_ms);
    sqlite3_bind_double(st, 23, t->total_ms);
    if ((rc = bind_ids(st, 24, &c->row.blob[0], t->prompt_ids, t->n_prompt_ids)) != SQLITE_OK ||
        (rc = bind_ids(st, 25, &c->row.blob[1], t->reply_ids, t->n_reply_ids)) != SQLITE_OK) {
        sqlite3_clear_bindings(st);
        return rc;
    }
    bind_text(st, 26, t->prompt_version);
    bind_text(st, 27, t->safety_version);
    if (isnan(t->model_urgent_p)) sqlite3_bind_null(st, 28);
    else sqlite3_bind_double(st, 28, t->model_urgent_p);
    sqlite3_bind_int(st, 29, t->dropped_turns);
    return step_done(st);
}

/* Adds turn t to its session's summary row. */
static int update_summary(qc_rec_conn_t *c, const qc_rec_turn_t *t) {
    sqlite3_stmt *g = c->sum_get;
    qc_rec_summary_t s = {0};
    char patient[QC_REC_SESSION_MAX + 1];
    const char *pat = t->patient_id;
    sqlite3_bind_text(g, 1, t->session_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(g);
    if (rc == SQLITE_ROW) {
        if (!pat && col_text(g, 0)) {
            snprintf(patient, sizeof patient, "%s", col_text(g, 0));
            pat = patient;
        }
        s.first_ms = sqlite3_column_int64(g, 1);
        s.last_ms = sqlite3_column_int64(g, 2);
        s.turns = sqlite3_column_int64(g, 3);
        s.urgent_count = sqlite3_column_int64(g, 4);
        s.last_emotion = sqlite3_column_int(g, 5);
        s.neg_streak = sqlite3_column_int(g, 6);
        if (qc_rec_recent_decode(sqlite3_column_blob(g, 7), (size_t)sqlite3_column_bytes(g, 7), &s)) rc = SQLITE_CORRUPT;
    }
    sqlite3_reset(g);
    sqlite3_clear_bindings(g);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return rc;
    qc_rec_summary_add(&s, t->ts_ms, t->emotion, t->probs[1], t->urgent);
    return sum_put(c->sum_put, t->session_id, pat, &s);
}

static qc_status sq_insert(qc_rec_conn_t *c, const qc_rec_turn_t *const *t, size_t n, int fail_it, char *err,
                           size_t err_size) {
    qc_status st;
    if ((st = prepare(c, &c->ins, insert_sql, err, err_size)) ||
        (st = prepare(c, &c->sum_get, sum_get_sql, err, err_size)) ||
        (st = prepare(c, &c->sum_put, sum_put_sql, err, err_size)))
        return st;
    if ((st = exec(c, "BEGIN IMMEDIATE", "begin a write", err, err_size))) return st;
    for (size_t i = 0; i < n; i++) {
        int rc = insert_turn(c, t[i]);
        if (rc == SQLITE_OK) rc = update_summary(c, t[i]);
        if (rc != SQLITE_OK) {
            st = fail(c, rc, "write a turn", err, err_size);
            rollback(c);
            return st;
        }
    }
    if (fail_it) {
        st = qc_seterr(err, err_size, QC_ERR_IO, "%s: commit: database or disk is full (test hook)", c->path);
        rollback(c);
        return st;
    }
    if ((st = exec(c, "COMMIT", "commit", err, err_size))) rollback(c);
    return st;
}

/* ==== reading ==== */

#define TURN_COLUMNS "seq, " QC_REC_TURN_FIELDS

/* Fills t from a row of TURN_COLUMNS, checking what could crash a reader
 * (the file may have been edited by hand). */
static qc_status row_turn(qc_rec_conn_t *c, sqlite3_stmt *q, qc_rec_turn_t *t, char *err, size_t err_size) {
    long long seq = sqlite3_column_int64(q, 0);
    memset(t, 0, sizeof *t);
    const char *bad = NULL;
    if (sqlite3_column_bytes(q, 1) != 16 || !sqlite3_column_blob(q, 1)) bad = "id is not 16 bytes";
    else memcpy(t->id.b, sqlite3_column_blob(q, 1), 16);
    t->session_id = col_text(q, 2);
    t->patient_id = col_text(q, 3);
    t->ts_ms = sqlite3_column_int64(q, 4);
    t->message = col_text(q, 5);
    t->message_len = (size_t)sqlite3_column_bytes(q, 5);
    t->emotion = sqlite3_column_int(q, 6);
    for (int i = 0; i < 3; i++) t->probs[i] = (float)sqlite3_column_double(q, 7 + i);
    t->calibrated = sqlite3_column_int(q, 10);
    t->urgent = sqlite3_column_int(q, 11);
    t->urgent_kind = col_text(q, 12);
    t->urgent_rule = col_text(q, 13);
    t->reply = col_text(q, 14);
    t->reply_len = (size_t)sqlite3_column_bytes(q, 14);
    int fin = qc_finish_parse(col_text(q, 15));
    t->finish = fin < 0 ? QC_FINISH_ERROR : (qc_finish_t)fin;
    t->model_name = col_text(q, 16);
    t->model_hash = col_text(q, 17);
    t->weight_type = col_text(q, 18);
    t->prompt_tokens = sqlite3_column_int(q, 19);
    t->completion_tokens = sqlite3_column_int(q, 20);
    t->emotion_ms = sqlite3_column_double(q, 21);
    t->ttft_ms = sqlite3_column_double(q, 22);
    t->total_ms = sqlite3_column_double(q, 23);
    for (int k = 0; k < 2 && !bad; k++) {
        if (qc_rec_ids_decode(sqlite3_column_blob(q, 24 + k), (size_t)sqlite3_column_bytes(q, 24 + k), &c->row.ids[k]))
            bad = k ? "reply_ids is malformed" : "prompt_ids is malformed";
    }
    t->prompt_ids = c->row.ids[0].n ? c->row.ids[0].p : NULL;
    t->n_prompt_ids = c->row.ids[0].n;
    t->reply_ids = c->row.ids[1].n ? c->row.ids[1].p : NULL;
    t->n_reply_ids = c->row.ids[1].n;
    t->prompt_version = col_text(q, 26);
    t->safety_version = col_text(q, 27);
    t->model_urgent_p = sqlite3_column_type(q, 28) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 28);
    t->dropped_turns = sqlite3_column_int(q, 29);
    if (!bad && (!t->session_id || !t->message || !t->reply)) bad = "a required text is NULL";
    if (!bad && (unsigned)t->emotion > 2) bad = "emotion is not 0..2";
    if (!bad && fin < 0) bad = "unknown finish reason";
    if (bad) return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: turn %lld: %s", c->path, seq, bad);
    return QC_OK;
}

static qc_status sq_turns(qc_rec_conn_t *c, const char *sid, int64_t since_ms, int64_t until_ms, qc_rec_turn_fn fn,
                          void *user, int64_t *n, char *err, size_t err_size) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                sid ? "SELECT " TURN_COLUMNS " FROM turns WHERE session_id = ?1 ORDER BY ts_ms, seq"
                                    : "SELECT " TURN_COLUMNS
                                      " FROM turns WHERE ts_ms >= ?1 AND ts_ms < ?2 ORDER BY ts_ms, seq",
                                -1, &q, NULL);
    if (rc != SQLITE_OK) return fail(c, rc, "read turns", err, err_size);
    if (sid) {
        sqlite3_bind_text(q, 1, sid, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_int64(q, 1, since_ms ? since_ms : INT64_MIN);
        sqlite3_bind_int64(q, 2, until_ms ? until_ms : INT64_MAX);
    }
    qc_status st = QC_OK;
    int64_t count = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        qc_rec_turn_t t;
        if ((st = row_turn(c, q, &t, err, err_size))) break;
        count++;
        if (fn && fn(user, &t)) break;
    }
    if (!st && rc != SQLITE_ROW && rc != SQLITE_DONE) st = fail(c, rc, "read turns", err, err_size);
    sqlite3_finalize(q);
    if (n) *n = count;
    return st;
}

static qc_status sq_sessions(qc_rec_conn_t *c, const qc_rec_query_t *qq, const qc_rec_key_t *after, int limit,
                             qc_rec_session_fn fn, void *user, char *err, size_t err_size) {
    int risk = qq->order == QC_REC_ORDER_RISK;
    qc_buf_t sql = {0};
    qc_buf_puts(&sql, "SELECT session_id, patient_id, first_ms, last_ms, turns, urgent_count, last_emotion,"
                      " last_negative, neg_streak, trend, risk FROM sessions WHERE 1");
    if (qq->patient_id) qc_buf_puts(&sql, " AND patient_id = ?1");
    if (qq->urgent_only) qc_buf_puts(&sql, " AND urgent_count > 0");
    if (qq->since_ms) qc_buf_puts(&sql, " AND last_ms >= ?2");
    if (qq->until_ms) qc_buf_puts(&sql, " AND first_ms < ?3");
    if (after) qc_buf_puts(&sql, risk ? " AND (risk, last_ms, session_id) < (?4, ?5, ?6)" : " AND (last_ms, session_id) < (?5, ?6)");
    qc_buf_puts(&sql, risk ? " ORDER BY risk DESC, last_ms DESC, session_id DESC LIMIT ?7"
                           : " ORDER BY last_ms DESC, session_id DESC LIMIT ?7");
    if (sql.failed) {
        qc_buf_free(&sql);
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: out of memory");
    }
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql.p, -1, &q, NULL);
    qc_buf_free(&sql);
    if (rc != SQLITE_OK) return fail(c, rc, "list sessions", err, err_size);
    if (qq->patient_id) sqlite3_bind_text(q, 1, qq->patient_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, qq->since_ms);
    sqlite3_bind_int64(q, 3, qq->until_ms);
    if (after) {
        sqlite3_bind_int64(q, 4, after->risk);
        sqlite3_bind_int64(q, 5, after->last_ms);
        sqlite3_bind_text(q, 6, after->session_id, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int(q, 7, limit);
    qc_status st = QC_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        qc_rec_session_t s = {
            .session_id = col_text(q, 0),
            .patient_id = col_text(q, 1),
            .first_ms = sqlite3_column_int64(q, 2),
            .last_ms = sqlite3_column_int64(q, 3),
            .turns = sqlite3_column_int64(q, 4),
            .urgent_count = sqlite3_column_int64(q, 5),
            .last_emotion = sqlite3_column_int(q, 6),
            .last_negative = (float)sqlite3_column_double(q, 7),
            .neg_streak = sqlite3_column_int(q, 8),
            .trend = sqlite3_column_double(q, 9),
            .risk = (double)sqlite3_column_int64(q, 10) / 1e6,
        };
        if (!s.session_id || (unsigned)s.last_emotion > 2) {
            st = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: a malformed session summary", c->path);
            break;
        }
        if (fn(user, &s)) break;
    }
    if (!st && rc != SQLITE_ROW && rc != SQLITE_DONE) st = fail(c, rc, "list sessions", err, err_size);
    sqlite3_finalize(q);
    return st;
}

static qc_status sq_tombstone(qc_rec_conn_t *c, const char *sid, int64_t *erased_ms, char *err, size_t err_size) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(c->db, "SELECT erased_ms FROM erased WHERE session_id = ?1", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sid, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        *erased_ms = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    }
    qc_status st = rc == SQLITE_ROW || rc == SQLITE_DONE ? QC_OK : fail(c, rc, "read a tombstone", err, err_size);
    sqlite3_finalize(q);
    return st;
}

/* turns_session is (session_id, ts_ms) and holds the rowid (seq), so the
 * newest turn is the index's last entry for the session. */
static qc_status sq_head(qc_rec_conn_t *c, const char *sid, qc_rec_head_t *out, char *err, size_t err_size) {
    sqlite3_stmt *q = NULL;
    *out = (qc_rec_head_t){0};
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT s.turns, (SELECT t.id FROM turns t WHERE t.session_id = ?1"
                                " ORDER BY t.ts_ms DESC, t.seq DESC LIMIT 1) FROM sessions s WHERE s.session_id = ?1",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sid, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            out->turns = sqlite3_column_int64(q, 0);
            if (sqlite3_column_bytes(q, 1) == 16) memcpy(out->last.b, sqlite3_column_blob(q, 1), 16);
        }
    }
    qc_status st = rc == SQLITE_ROW || rc == SQLITE_DONE ? QC_OK : fail(c, rc, "read a session's head", err, err_size);
    sqlite3_finalize(q);
    return st;
}

/* ==== erasure and purging ==== */

/* Runs sql with ?1 = text a (and ?2 = integer b when has_b); *changes gets
 * the rows it changed. An sqlite result code. */
static int run1(qc_rec_conn_t *c, const char *sql, const char *a, int64_t b, int has_b, int64_t *changes) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK) {
        if (a) sqlite3_bind_text(q, 1, a, -1, SQLITE_STATIC);
        if (has_b) sqlite3_bind_int64(q, a ? 2 : 1, b);
        rc = step_done(q);
    }
    sqlite3_finalize(q);
    if (changes) *changes = sqlite3_changes64(c->db);
    return rc;
}

static qc_status sq_erase(qc_rec_conn_t *c, const char *sid, int64_t now_ms, int64_t *n, char *err,
                          size_t err_size) {
    qc_status st = exec(c, "BEGIN IMMEDIATE", "erase", err, err_size);
    if (st) return st;
    int rc = run1(c, "DELETE FROM turns WHERE session_id = ?1", sid, 0, 0, n);
    if (rc == SQLITE_OK) rc = run1(c, "DELETE FROM sessions WHERE session_id = ?1", sid, 0, 0, NULL);
    if (rc == SQLITE_OK && *n)
        rc = run1(c, "INSERT INTO erased(session_id, erased_ms) VALUES (?1, ?2) ON CONFLICT(session_id)"
                     " DO UPDATE SET erased_ms = excluded.erased_ms", sid, now_ms, 1, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st = fail(c, rc, "erase", err, err_size);
        rollback(c);
        *n = 0;
    }
    return st;
}

static qc_status sq_purge_batch(qc_rec_conn_t *c, int64_t before_ms, int batch, int64_t *n, char *err,
                                size_t err_size) {
    *n = 0;
    qc_status st = exec(c, "BEGIN IMMEDIATE", "purge", err, err_size);
    if (st) return st;
    /* The sessions this batch touches, to summarize again afterwards; the
     * same rows as the DELETE below picks (one total order, one snapshot). */
    sqlite3_stmt *q = NULL;
    char **sids = calloc((size_t)batch, sizeof *sids);
    int n_sids = 0;
    int rc = sids ? sqlite3_prepare_v2(c->db,
                                       "SELECT DISTINCT session_id FROM (SELECT session_id FROM turns"
                                       " WHERE ts_ms < ?1 ORDER BY ts_ms, seq LIMIT ?2)",
                                       -1, &q, NULL)
                  : SQLITE_NOMEM;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, before_ms);
        sqlite3_bind_int(q, 2, batch);
        while ((rc = sqlite3_step(q)) == SQLITE_ROW && n_sids < batch)
            if (!(sids[n_sids++] = strdup(col_text(q, 0) ? col_text(q, 0) : ""))) rc = SQLITE_NOMEM;
        if (rc == SQLITE_DONE || rc == SQLITE_ROW) rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_OK) {
        q = NULL;
        rc = sqlite3_prepare_v2(c->db,
                                "DELETE FROM turns WHERE seq IN (SELECT seq FROM turns WHERE ts_ms < ?1"
                                " ORDER BY ts_ms, seq LIMIT ?2)",
                                -1, &q, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(q, 1, before_ms);
            sqlite3_bind_int(q, 2, batch);
            rc = step_done(q);
            *n = sqlite3_changes64(c->db);
        }
        sqlite3_finalize(q);
    }
    if (rc != SQLITE_OK) st = fail(c, rc, "purge", err, err_size);
    for (int i = 0; i < n_sids && !st; i++) st = resummarize(c, sids[i], err, err_size);
    for (int i = 0; i < n_sids; i++) free(sids[i]);
    free(sids);
    if (!st) st = exec(c, "COMMIT", "purge", err, err_size);
    if (st) {
        rollback(c);
        *n = 0;
    }
    return st;
}

static qc_status sq_checkpoint(qc_rec_conn_t *c, int *complete, char *err, size_t err_size) {
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    *complete = rc == SQLITE_OK;
    return rc == SQLITE_OK || (rc & 0xff) == SQLITE_BUSY ? QC_OK : fail(c, rc, "checkpoint", err, err_size);
}

const qc_rec_backend_t qc_rec_sqlite = {
    .name = "sqlite",
    .conn_open = sq_open,
    .conn_close = sq_close,
    .insert = sq_insert,
    .sessions = sq_sessions,
    .turns = sq_turns,
    .tombstone = sq_tombstone,
    .head = sq_head,
    .erase = sq_erase,
    .purge_batch = sq_purge_batch,
    .checkpoint = sq_checkpoint,
};
