/* pg.c — the PostgreSQL backend of the records store (backend.h), through
 * libpq: the shared store of several qcare processes ("replicas") writing
 * one database. The path is a libpq URL, postgresql://[user[:password]@]
 * host[:port]/dbname[?param=value...]; the tables live in the connection's
 * current schema (set search_path in the URL, options=-csearch_path%3Dqcare,
 * to keep them apart from other tables).
 *
 * The same tables and columns as sqlite.c (types adapted: uuid ids, bytea
 * blobs, boolean flags, session ids in the "C" collation so that pages sort
 * as bytes, as in SQLite), versioned in qcare_schema. A commit is acknowledged
 * by the server before the store reports it (synchronous_commit = on, whatever
 * the server's default). Writes from several processes are safe:
 *   - ids are UUIDv7 made by each writer (48-bit ms time, 74 random or
 *     counter bits): unique across processes without coordination, and
 *     turns.id is UNIQUE;
 *   - a session's summary row is locked (INSERT ... ON CONFLICT DO UPDATE)
 *     before it is read and rewritten, and the sessions of a batch are locked
 *     in session-id order, so two writers never deadlock on each other;
 *   - a turn is inserted with ON CONFLICT (id) DO NOTHING and counted in its
 *     summary only when it went in, so a batch resent after a connection
 *     broke during its COMMIT (the outcome unknown) is not counted twice.
 * PostgreSQL text must be valid UTF-8 without NUL: other bytes are stored as
 * U+FFFD (the JSON export shows them so anyway). Reads stream rows in
 * single-row mode (constant memory, one statement = one snapshot).
 *
 * Schema history (in steps[] below; only ever appended, SCHEMA_VERSION as
 * in sqlite.c):
 *   v2  the first PostgreSQL schema (SQLite's v2: turns, sessions, erased);
 *       an empty database is created at v2. */
#include "records/backend.h"

#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 2
#define ERASE_BATCH 500 /* turns per erasure transaction */
#define MIGRATE_LOCK 0x71636172 /* pg_advisory_xact_lock key ("qcar") of migrations */

struct qc_rec_conn {
    PGconn *db;
    char *shown;      /* the URL without its password, for messages */
    int prepared;     /* bit i: statement i of prepare() is */
    int broken;       /* its replies went out of step: to be closed */
    qc_buf_t text[4];     /* cleaned copies of texts being sent */
    qc_rec_scratch_t row; /* token ids of the turn being written, or read */
};

/* ==== errors ==== */

/* Whether the connection itself is gone (server stopped, network down). */
static int pg_lost(qc_rec_conn_t *c) { return !c->db || PQstatus(c->db) != CONNECTION_OK; }

/* The status and a hint for a failed result (r may be NULL). */
static qc_status status_of(qc_rec_conn_t *c, const PGresult *r, const char **hint) {
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    *hint = "";
    if (pg_lost(c) || (state && !strncmp(state, "08", 2)) || (state && !strncmp(state, "57P0", 4))) {
        *hint = " (the database is unreachable; writes fail until it is back)";
        return QC_ERR_IO;
    }
    if (!state) return QC_ERR_IO;
    if (!strcmp(state, "55P03") || !strcmp(state, "57014") || !strcmp(state, "40001") || !strcmp(state, "40P01")) {
        *hint = " (another connection held a lock past the timeout)";
        return QC_ERR_BUSY;
    }
    if (!strcmp(state, "53100")) *hint = " (the disk is full)";
    if (!strcmp(state, "25006")) *hint = " (the store was opened read-only)";
    if (!strncmp(state, "53", 2)) return QC_ERR_IO;
    if (!strncmp(state, "22", 2)) return QC_ERR_ARG;
    return QC_ERR_IO;
}

/* "URL: WHAT: libpq's message (a hint)"; r (may be NULL) is not cleared. */
static qc_status fail(qc_rec_conn_t *c, const PGresult *r, const char *what, char *err, size_t err_size) {
    const char *hint, *msg = r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r)
                             : c->db                      ? PQerrorMessage(c->db)
                                                          : "out of memory";
    qc_status st = status_of(c, r, &hint);
    /* libpq's messages run over lines ("...\n\tThis probably means..."):
     * one line, for logs and JSON errors. */
    char one[400];
    size_t n = 0;
    for (const char *p = msg; *p && n + 1 < sizeof one; p++) {
        int space = *p == '\n' || *p == '\t' || *p == ' ';
        if (!space) one[n++] = *p;
        else if (n && one[n - 1] != ' ') one[n++] = ' ';
    }
    while (n && one[n - 1] == ' ') n--;
    one[n] = 0;
    return qc_seterr(err, err_size, st, "%s: %s: %s%s", c->shown, what, one, hint);
}

/* Rolls back an open transaction after a failure. */
static void rollback(qc_rec_conn_t *c) {
    if (c->db && PQtransactionStatus(c->db) != PQTRANS_IDLE) PQclear(PQexec(c->db, "ROLLBACK"));
}

/* Runs sql (no parameters, no rows wanted). */
static qc_status exec(qc_rec_conn_t *c, const char *sql, const char *what, char *err, size_t err_size) {
    PGresult *r = PQexec(c->db, sql);
    ExecStatusType t = PQresultStatus(r);
    qc_status st = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK ? QC_OK : fail(c, r, what, err, err_size);
    PQclear(r);
    return st;
}

/* Ends the open transaction: COMMIT when st is QC_OK, else (or when the
 * COMMIT fails) ROLLBACK; the outcome. */
static qc_status finish(qc_rec_conn_t *c, qc_status st, const char *what, char *err, size_t err_size) {
    if (!st) st = exec(c, "COMMIT", what, err, err_size);
    if (st) rollback(c);
    return st;
}

/* Runs sql with n text parameters; *out the result (caller clears) when it
 * succeeded, else NULL and the error. */
static qc_status query(qc_rec_conn_t *c, const char *sql, int n, const char *const *v, PGresult **out,
                       const char *what, char *err, size_t err_size) {
    PGresult *r = PQexecParams(c->db, sql, n, NULL, v, NULL, NULL, 0);
    ExecStatusType t = PQresultStatus(r);
    *out = NULL;
    if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK) {
        *out = r;
        return QC_OK;
    }
    qc_status st = fail(c, r, what, err, err_size);
    PQclear(r);
    return st;
}

/* s[0..n) as PostgreSQL text: s itself when it is valid UTF-8 without NUL
 * (and NUL-terminated at n), else a cleaned copy in c->text[slot]; NULL
 * stays NULL. Out of memory latches text[slot].failed (text_failed). */
static const char *pg_text(qc_rec_conn_t *c, int slot, const char *s, size_t n) {
    if (!s) return NULL;
    qc_buf_t *b = &c->text[slot];
    int k = qc_rec_utf8_clean(s, n, 0, b);
    if (k == 0 && s[n] == 0) return s;
    if (k == 0) {
        b->n = 0;
        qc_buf_add(b, s, n);
    }
    return b->failed ? "" : b->p;
}

/* Whether a pg_text ran out of memory (the buffers are then reset). */
static int text_failed(qc_rec_conn_t *c) {
    int failed = 0;
    for (int i = 0; i < 4; i++) failed |= c->text[i].failed;
    if (failed)
        for (int i = 0; i < 4; i++) qc_buf_free(&c->text[i]);
    return failed;
}

static int64_t col_int(const PGresult *r, int row, int col) { return strtoll(PQgetvalue(r, row, col), NULL, 10); }
static double col_real(const PGresult *r, int row, int col) { return strtod(PQgetvalue(r, row, col), NULL); }
static const char *text_or_null(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* A bytea in text form ("\x0a0b...") into b; -1 when malformed. */
static int bytea_decode(const char *s, qc_buf_t *b) {
    size_t n = strlen(s);
    b->n = 0;
    if (n < 2 || s[0] != '\\' || s[1] != 'x' || n % 2 || qc_buf_reserve(b, (n - 2) / 2)) return -1;
    if (qc_rec_hex_decode(s + 2, n - 2, (uint8_t *)b->p)) return -1;
    b->n = (n - 2) / 2;
    return 0;
}

/* ==== schema ==== */

static const char v2_sql[] =
    "CREATE TABLE qcare_schema(version integer NOT NULL);"
    "INSERT INTO qcare_schema VALUES (0);"
    "CREATE TABLE turns("
    "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," /* insertion order, the tie-break of equal times */
    "  id uuid NOT NULL UNIQUE,"                              /* UUIDv7 */
    "  session_id text COLLATE \"C\" NOT NULL,"
    "  patient_id text COLLATE \"C\","
    "  ts_ms bigint NOT NULL," /* UTC ms since the epoch */
    "  message text NOT NULL,"
    "  emotion smallint NOT NULL," /* 0 positive, 1 negative, 2 neutral */
    "  p_positive double precision NOT NULL, p_negative double precision NOT NULL,"
    "  p_neutral double precision NOT NULL,"
    "  calibrated boolean NOT NULL,"
    "  urgent boolean NOT NULL, urgent_kind text, urgent_rule text,"
    "  reply text NOT NULL,"
    "  finish text NOT NULL," /* stop, length, cancelled, error */
    "  model_name text, model_hash text, weight_type text,"
    "  prompt_tokens integer NOT NULL, completion_tokens integer NOT NULL,"
    "  emotion_ms double precision NOT NULL, ttft_ms double precision NOT NULL, total_ms double precision NOT NULL,"
    "  prompt_ids bytea, reply_ids bytea," /* varint token ids (backend.h) */
    "  prompt_version text, safety_version text,"
    "  model_urgent_p double precision," /* NULL: not judged */
    "  dropped_turns integer NOT NULL DEFAULT 0);"
    "CREATE INDEX turns_session ON turns(session_id, ts_ms);"
    "CREATE INDEX turns_time ON turns(ts_ms);"
    "CREATE TABLE sessions("
    "  session_id text COLLATE \"C\" PRIMARY KEY, patient_id text COLLATE \"C\","
    "  first_ms bigint NOT NULL, last_ms bigint NOT NULL,"
    "  turns bigint NOT NULL, urgent_count bigint NOT NULL,"
    "  last_emotion smallint NOT NULL, last_negative double precision NOT NULL, neg_streak integer NOT NULL,"
    "  recent bytea NOT NULL," /* P(negative) of the last <= 5 turns, float32 LE, oldest first */
    "  trend double precision NOT NULL,"
    "  risk bigint NOT NULL);" /* qc_rec_summary_risk, millionths */
    "CREATE INDEX sessions_risk ON sessions(risk, last_ms, session_id);"
    "CREATE INDEX sessions_recent ON sessions(last_ms, session_id);"
    "CREATE INDEX sessions_patient ON sessions(patient_id, last_ms);"
    "CREATE TABLE erased(session_id text COLLATE \"C\" PRIMARY KEY, erased_ms bigint NOT NULL);";

/* steps[i] takes a database from version from to version to. */
static const struct {
    int from, to;
    const char *sql;
} steps[] = {{0, 2, v2_sql}};

/* The database's schema version: 0 when the current schema has no tables,
 * -1 when it has tables but not ours. */
static qc_status read_version(qc_rec_conn_t *c, int *v, char *err, size_t err_size) {
    PGresult *r;
    qc_status st = query(c,
                         "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()),"
                         " to_regclass('qcare_schema') IS NOT NULL",
                         0, NULL, &r, "read the schema version", err, err_size);
    if (st) return st;
    int tables = (int)col_int(r, 0, 0), ours = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    *v = tables ? -1 : 0;
    if (!ours) return QC_OK;
    if ((st = query(c, "SELECT max(version) FROM qcare_schema", 0, NULL, &r, "read the schema version", err,
                    err_size)))
        return st;
    *v = (int)col_int(r, 0, 0);
    PQclear(r);
    return QC_OK;
}

/* Checks the version against ours and, unless read_only, migrates forward
 * in one transaction under an advisory lock (so several replicas opening
 * an old or empty database at once migrate it once). */
static qc_status check_schema(qc_rec_conn_t *c, int read_only, char *err, size_t err_size) {
    int v;
    qc_status st = read_version(c, &v, err, err_size);
    if (st || v == SCHEMA_VERSION) return st;
    if (read_only || v < 0 || v > SCHEMA_VERSION) goto refuse;
    char sql[96];
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d)", MIGRATE_LOCK);
    if ((st = exec(c, sql, "migrate", err, err_size)) || (st = read_version(c, &v, err, err_size))) goto fail;
    if (v < 0 || v > SCHEMA_VERSION) {
        rollback(c);
        goto refuse;
    }
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && !st; i++)
        if (steps[i].from == v && (st = exec(c, steps[i].sql, "migrate", err, err_size)) == QC_OK) v = steps[i].to;
    if (st) goto fail;
    if (v != SCHEMA_VERSION) {
        rollback(c);
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED, "%s: no migration from records schema version %d",
                         c->shown, v);
    }
    snprintf(sql, sizeof sql, "UPDATE qcare_schema SET version = %d; COMMIT", SCHEMA_VERSION);
    if ((st = exec(c, sql, "migrate", err, err_size))) goto fail;
    return QC_OK;
fail:
    rollback(c);
    return st;
refuse:
    if (v < 0)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: the database's schema has tables, but not a qcare records store",
                         c->shown);
    if (v > SCHEMA_VERSION)
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: records schema version %d was written by a newer qcare (this one reads up to %d): "
                         "upgrade qcare to open it",
                         c->shown, v, SCHEMA_VERSION);
    return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                     "%s: records schema version %d needs creating or migrating to %d, which a read-only open cannot "
                     "do: open it read-write once (qcare serve, qcare records purge)",
                     c->shown, v, SCHEMA_VERSION);
}

/* ==== connections ==== */

/* The URL with its password (between "user:" and "@") replaced by ***, and
 * any password=... parameter cut off. */
static char *redact(const char *url) {
    qc_buf_t b = {0};
    const char *at = strchr(url, '@'), *scheme = strstr(url, "://");
    const char *colon = scheme && at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon && at > colon && !memchr(scheme + 3, '/', (size_t)(at - scheme - 3))) {
        qc_buf_add(&b, url, (size_t)(colon - url + 1));
        qc_buf_puts(&b, "***");
        qc_buf_puts(&b, at);
    } else {
        qc_buf_puts(&b, url);
    }
    char *s = qc_buf_take(&b);
    char *pw = s ? strstr(s, "password=") : NULL;
    if (pw) strcpy(pw, "password=***");
    return s;
}

static void pg_close(qc_rec_conn_t *c) {
    if (!c) return;
    PQfinish(c->db);
    for (int i = 0; i < 4; i++) qc_buf_free(&c->text[i]);
    qc_rec_scratch_free(&c->row);
    free(c->shown);
    free(c);
}

static qc_status pg_open(const char *path, const qc_store_opts_t *o, qc_rec_conn_t **out, char *err,
                         size_t err_size) {
    qc_rec_conn_t *c = calloc(1, sizeof *c);
    *out = NULL;
    if (c) c->shown = redact(path);
    if (!c || !c->shown) {
        pg_close(c);
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: out of memory");
    }
    /* Ours come first: what the URL says overrides them. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"5", "qcare", path, NULL};
    c->db = PQconnectdbParams(keys, vals, 1);
    qc_status st;
    if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
        st = fail(c, NULL, "cannot open", err, err_size);
        goto fail;
    }
    char sql[200];
    snprintf(sql, sizeof sql,
             "SET synchronous_commit = on; SET lock_timeout = %d; SET client_encoding = 'UTF8';"
             " SET default_transaction_read_only = %s",
             o->busy_timeout_ms, o->read_only ? "on" : "off");
    if ((st = exec(c, sql, "set up", err, err_size))) goto fail;
    if ((st = check_schema(c, o->read_only, err, err_size))) goto fail;
    *out = c;
    return QC_OK;
fail:
    pg_close(c);
    return st;
}

/* Reads what the server sent meanwhile: a server that went away has sent
 * its goodbye or closed the socket, which marks the connection bad. */
static int pg_usable(qc_rec_conn_t *c) {
    if (pg_lost(c) || c->broken) return 0;
    if (PQtransactionStatus(c->db) != PQTRANS_IDLE) return 0;
    if (!PQconsumeInput(c->db)) return 0;
    return PQstatus(c->db) == CONNECTION_OK;
}

/* ==== writing ==== */

static const char insert_sql[] =
    "INSERT INTO turns(" QC_REC_TURN_FIELDS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
    " $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)"
    " ON CONFLICT (id) DO NOTHING RETURNING seq";
/* Locks the summary row (creating an empty one) and reads it. */
static const char sum_lock_sql[] =
    "INSERT INTO sessions(session_id, patient_id, first_ms, last_ms, turns, urgent_count, last_emotion,"
    " last_negative, neg_streak, recent, trend, risk) VALUES ($1, NULL, 0, 0, 0, 0, 0, 0, 0, '', 0, 0)"
    " ON CONFLICT (session_id) DO UPDATE SET turns = sessions.turns"
    " RETURNING patient_id, first_ms, last_ms, turns, urgent_count, last_emotion, neg_streak, recent";
static const char sum_put_sql[] =
    "UPDATE sessions SET patient_id = $2, first_ms = $3, last_ms = $4, turns = $5, urgent_count = $6,"
    " last_emotion = $7, last_negative = $8, neg_streak = $9, recent = $10, trend = $11, risk = $12"
    " WHERE session_id = $1";

static qc_status prepare(qc_rec_conn_t *c, char *err, size_t err_size) {
    static const struct {
        const char *name, *sql;
    } ps[] = {{"ins", insert_sql}, {"sum_lock", sum_lock_sql}, {"sum_put", sum_put_sql}};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        if (c->prepared & 1 << i) continue;
        PGresult *r = PQprepare(c->db, ps[i].name, ps[i].sql, 0, NULL);
        qc_status st = PQresultStatus(r) == PGRES_COMMAND_OK ? QC_OK : fail(c, r, "prepare", err, err_size);
        PQclear(r);
        if (st) return st;
        c->prepared |= 1 << i;
    }
    return QC_OK;
}

/* Queues t's INSERT (the connection is in pipeline mode). */
static qc_status send_turn(qc_rec_conn_t *c, const qc_rec_turn_t *t, char *err, size_t err_size) {
    char id[QC_REC_ID_STRLEN + 1], num[13][32];
    const char *v[29];
    int len[29] = {0}, fmt[29] = {0};
    qc_rec_id_format(&t->id, id);
    v[0] = id;
    v[1] = pg_text(c, 0, t->session_id, strlen(t->session_id));
    v[2] = t->patient_id ? pg_text(c, 1, t->patient_id, strlen(t->patient_id)) : NULL;
    snprintf(num[0], 32, "%lld", (long long)t->ts_ms);
    v[3] = num[0];
    v[4] = pg_text(c, 2, t->message ? t->message : "", t->message_len);
    snprintf(num[1], 32, "%d", t->emotion);
    v[5] = num[1];
    for (int i = 0; i < 3; i++) {
        snprintf(num[2 + i], 32, "%.17g", (double)t->probs[i]);
        v[6 + i] = num[2 + i];
    }
    v[9] = t->calibrated ? "t" : "f";
    v[10] = t->urgent ? "t" : "f";
    v[11] = t->urgent_kind;
    v[12] = t->urgent_rule;
    v[13] = pg_text(c, 3, t->reply ? t->reply : "", t->reply_len);
    v[14] = qc_finish_name(t->finish);
    v[15] = t->model_name;
    v[16] = t->model_hash;
    v[17] = t->weight_type;
    snprintf(num[5], 32, "%d", t->prompt_tokens);
    snprintf(num[6], 32, "%d", t->completion_tokens);
    snprintf(num[7], 32, "%.17g", t->emotion_ms);
    snprintf(num[8], 32, "%.17g", t->ttft_ms);
    snprintf(num[9], 32, "%.17g", t->total_ms);
    for (int i = 0; i < 5; i++) v[18 + i] = num[5 + i];
    const int32_t *ids[2] = {t->prompt_ids, t->reply_ids};
    size_t n_ids[2] = {t->n_prompt_ids, t->n_reply_ids};
    for (int k = 0; k < 2; k++) {
        v[23 + k] = NULL;
        if (!n_ids[k]) continue;
        c->row.blob[k].n = 0;
        if (qc_rec_ids_encode(ids[k], n_ids[k], &c->row.blob[k]) || c->row.blob[k].n > INT32_MAX)
            return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory encoding token ids", c->shown);
        v[23 + k] = c->row.blob[k].p;
        len[23 + k] = (int)c->row.blob[k].n;
        fmt[23 + k] = 1;
    }
    v[25] = t->prompt_version;
    v[26] = t->safety_version;
    v[27] = NULL;
    if (!isnan(t->model_urgent_p)) {
        snprintf(num[10], 32, "%.17g", t->model_urgent_p);
        v[27] = num[10];
    }
    snprintf(num[11], 32, "%d", t->dropped_turns);
    v[28] = num[11];
    if (text_failed(c)) return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", c->shown);
    return PQsendQueryPrepared(c->db, "ins", 29, v, len, fmt, 0) ? QC_OK : fail(c, NULL, "write a turn", err, err_size);
}

/* Queues the UPDATE of session sid's summary to s (patient may be NULL). */
static qc_status send_summary(qc_rec_conn_t *c, const char *sid, const char *patient, const qc_rec_summary_t *s,
                              char *err, size_t err_size) {
    uint8_t recent[4 * QC_REC_TREND_TURNS];
    char num[10][32];
    const char *v[12] = {sid, patient};
    int len[12] = {0}, fmt[12] = {0};
    snprintf(num[0], 32, "%lld", (long long)s->first_ms);
    snprintf(num[1], 32, "%lld", (long long)s->last_ms);
    snprintf(num[2], 32, "%lld", (long long)s->turns);
    snprintf(num[3], 32, "%lld", (long long)s->urgent_count);
    snprintf(num[4], 32, "%d", s->last_emotion);
    snprintf(num[5], 32, "%.17g", s->n_recent ? (double)s->recent[s->n_recent - 1] : 0.0);
    snprintf(num[6], 32, "%d", s->neg_streak);
    snprintf(num[7], 32, "%.17g", qc_rec_summary_trend(s));
    snprintf(num[8], 32, "%lld", (long long)qc_rec_summary_risk(s));
    for (int i = 0; i < 7; i++) v[2 + i] = num[i];
    len[9] = (int)qc_rec_recent_encode(s, recent);
    v[9] = (const char *)recent;
    fmt[9] = 1;
    v[10] = num[7];
    v[11] = num[8];
    return PQsendQueryPrepared(c->db, "sum_put", 12, v, len, fmt, 0) ? QC_OK
                                                                    : fail(c, NULL, "write a summary", err, err_size);
}

/* Reads the results of k queued statements into res[0..k) (the caller
 * clears them) and, in pipeline mode, the sync point after them. QC_OK
 * when each succeeded, else the first failure (err may be NULL). A
 * connection whose replies are not as expected is marked broken. */
static qc_status read_results(qc_rec_conn_t *c, PGresult **res, size_t k, const char *what, char *err,
                              size_t err_size) {
    qc_status st = QC_OK;
    int pipe = PQpipelineStatus(c->db) != PQ_PIPELINE_OFF;
    memset(res, 0, k * sizeof *res);
    if (pipe && !PQpipelineSync(c->db)) c->broken = 1;
    for (size_t i = 0; i < k && !c->broken; i++) {
        PGresult *r = res[i] = PQgetResult(c->db), *extra;
        while ((extra = PQgetResult(c->db))) PQclear(extra); /* the NULL that ends a statement's results */
        ExecStatusType t = PQresultStatus(r);
        if (!r) c->broken = 1;
        else if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK && !st) st = fail(c, r, what, err, err_size);
    }
    if (pipe && !c->broken) {
        PGresult *r = PQgetResult(c->db);
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) c->broken = 1;
        PQclear(r);
    }
    if (c->broken && !st) st = fail(c, NULL, what, err, err_size);
    return st;
}

/* One turn of a batch, for taking its session's lock in order. */
typedef struct {
    const qc_rec_turn_t *t;
    size_t i;
    int inserted;
} slot_t;

static int slot_cmp(const void *a, const void *b) {
    const slot_t *x = a, *y = b;
    int d = strcmp(x->t->session_id, y->t->session_id);
    return d ? d : (x->i > y->i) - (x->i < y->i);
}

/* The end of the run of w[i..n) with w[i]'s session. */
static size_t group_end(const slot_t *w, size_t i, size_t n) {
    size_t j = i + 1;
    while (j < n && !strcmp(w[j].t->session_id, w[i].t->session_id)) j++;
    return j;
}

/* Queues the UPDATE of one session's summary: lock is its row as locked
 * (sum_lock), w[0..n) its turns of the batch, in order; *sent 1 when it
 * did (none when none of them went in and the row is new). */
static qc_status send_group(qc_rec_conn_t *c, const PGresult *lock, const slot_t *w, size_t n, size_t *sent,
                            char *err, size_t err_size) {
    const char *sid = pg_text(c, 0, w[0].t->session_id, strlen(w[0].t->session_id));
    if (PQntuples(lock) != 1)
        return qc_seterr(err, err_size, QC_ERR_INTERNAL, "%s: session %s: its summary row was not locked", c->shown, sid);
    qc_rec_summary_t s = {0};
    const char *patient = text_or_null(lock, 0, 0);
    s.first_ms = col_int(lock, 0, 1);
    s.last_ms = col_int(lock, 0, 2);
    s.turns = col_int(lock, 0, 3);
    s.urgent_count = col_int(lock, 0, 4);
    s.last_emotion = (int)col_int(lock, 0, 5);
    s.neg_streak = (int)col_int(lock, 0, 6);
    if (bytea_decode(PQgetvalue(lock, 0, 7), &c->row.blob[0]) ||
        qc_rec_recent_decode(c->row.blob[0].p, c->row.blob[0].n, &s))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: session %s: a malformed summary", c->shown, sid);
    for (size_t i = 0; i < n; i++) {
        const qc_rec_turn_t *t = w[i].t;
        if (!w[i].inserted) continue;
        if (t->patient_id) patient = pg_text(c, 1, t->patient_id, strlen(t->patient_id));
        qc_rec_summary_add(&s, t->ts_ms, t->emotion, t->probs[1], t->urgent);
    }
    if (text_failed(c)) return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", c->shown);
    if (!s.turns) return QC_OK;
    qc_status st = send_summary(c, sid, patient, &s, err, err_size);
    *sent += st == QC_OK;
    return st;
}

/* One write transaction in two pipelined round trips: BEGIN, the turns'
 * INSERTs and the summaries' locks; then the summaries' UPDATEs and
 * COMMIT. res has room for their 3 * n + 2 results. */
static qc_status insert_batch(qc_rec_conn_t *c, slot_t *w, size_t n, int fail_it, PGresult **res, char *err,
                              size_t err_size) {
    size_t k = 0, k2 = 0;
    qc_status st = PQenterPipelineMode(c->db) ? QC_OK : fail(c, NULL, "begin a write", err, err_size);
    if (!st) st = PQsendQueryParams(c->db, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ? QC_OK
                                                                                 : fail(c, NULL, "begin", err, err_size);
    if (!st) k++;
    for (size_t i = 0; i < n && !st; i++)
        if (!(st = send_turn(c, w[i].t, err, err_size))) k++;
    for (size_t i = 0; i < n && !st; i = group_end(w, i, n)) {
        const char *sid = pg_text(c, 0, w[i].t->session_id, strlen(w[i].t->session_id));
        if (!PQsendQueryPrepared(c->db, "sum_lock", 1, &sid, NULL, NULL, 0))
            st = fail(c, NULL, "lock a summary", err, err_size);
        else k++;
    }
    qc_status rst = read_results(c, res, k, "write turns", st ? NULL : err, st ? 0 : err_size);
    if (!st) st = rst;
    for (size_t i = 0; i < n && !st; i++) w[i].inserted = PQntuples(res[1 + i]) == 1;
    PGresult **res2 = res + k;
    for (size_t i = 0, g = 0; i < n && !st; i = group_end(w, i, n), g++)
        st = send_group(c, res[1 + n + g], w + i, group_end(w, i, n) - i, &k2, err, err_size);
    if (!st && !fail_it) {
        if (PQsendQueryParams(c->db, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) k2++;
        else st = fail(c, NULL, "commit", err, err_size);
    }
    rst = read_results(c, res2, k2, "commit", st ? NULL : err, st ? 0 : err_size);
    if (!st) st = rst;
    if (!c->broken && !PQexitPipelineMode(c->db)) c->broken = 1;
    for (size_t i = 0; i < k + k2; i++) PQclear(res[i]);
    if (!st && fail_it) st = qc_seterr(err, err_size, QC_ERR_IO, "%s: commit: the disk is full (test hook)", c->shown);
    if (st && !c->broken) rollback(c);
    return st;
}

static qc_status pg_insert(qc_rec_conn_t *c, const qc_rec_turn_t *const *t, size_t n, int fail_it, char *err,
                           size_t err_size) {
    qc_status st = prepare(c, err, err_size);
    if (st) return st;
    slot_t *w = malloc((n ? n : 1) * sizeof *w);
    PGresult **res = calloc(3 * n + 2, sizeof *res);
    if (!w || !res) {
        free(w);
        free(res);
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: out of memory");
    }
    for (size_t i = 0; i < n; i++) w[i] = (slot_t){t[i], i, 0};
    qsort(w, n, sizeof *w, slot_cmp);
    /* A deadlock with a purge or a serialization failure: the server chose
     * this transaction to undo; the next try normally goes through. */
    for (int attempt = 0; attempt < 3; attempt++) {
        st = insert_batch(c, w, n, fail_it, res, err, err_size);
        if (st != QC_ERR_BUSY || !strstr(err, "deadlock")) break;
    }
    free(w);
    free(res);
    return st;
}

/* ==== reading ==== */

#define TURN_COLUMNS "seq, " QC_REC_TURN_FIELDS

/* Fills t from row 0 of r (TURN_COLUMNS), checking what could crash a
 * reader. */
static qc_status row_turn(qc_rec_conn_t *c, const PGresult *r, qc_rec_turn_t *t, char *err, size_t err_size) {
    memset(t, 0, sizeof *t);
    const char *bad = NULL;
    if (qc_rec_id_parse(PQgetvalue(r, 0, 1), &t->id)) bad = "id is not a UUID";
    t->session_id = PQgetvalue(r, 0, 2);
    t->patient_id = text_or_null(r, 0, 3);
    t->ts_ms = col_int(r, 0, 4);
    t->message = PQgetvalue(r, 0, 5);
    t->message_len = (size_t)PQgetlength(r, 0, 5);
    t->emotion = (int)col_int(r, 0, 6);
    for (int i = 0; i < 3; i++) t->probs[i] = (float)col_real(r, 0, 7 + i);
    t->calibrated = PQgetvalue(r, 0, 10)[0] == 't';
    t->urgent = PQgetvalue(r, 0, 11)[0] == 't';
    t->urgent_kind = text_or_null(r, 0, 12);
    t->urgent_rule = text_or_null(r, 0, 13);
    t->reply = PQgetvalue(r, 0, 14);
    t->reply_len = (size_t)PQgetlength(r, 0, 14);
    int fin = qc_finish_parse(PQgetvalue(r, 0, 15));
    t->finish = fin < 0 ? QC_FINISH_ERROR : (qc_finish_t)fin;
    t->model_name = text_or_null(r, 0, 16);
    t->model_hash = text_or_null(r, 0, 17);
    t->weight_type = text_or_null(r, 0, 18);
    t->prompt_tokens = (int)col_int(r, 0, 19);
    t->completion_tokens = (int)col_int(r, 0, 20);
    t->emotion_ms = col_real(r, 0, 21);
    t->ttft_ms = col_real(r, 0, 22);
    t->total_ms = col_real(r, 0, 23);
    for (int k = 0; k < 2 && !bad; k++) {
        c->row.ids[k].n = 0;
        if (PQgetisnull(r, 0, 24 + k)) continue;
        if (bytea_decode(PQgetvalue(r, 0, 24 + k), &c->row.blob[k]) ||
            qc_rec_ids_decode(c->row.blob[k].p, c->row.blob[k].n, &c->row.ids[k]))
            bad = k ? "reply_ids is malformed" : "prompt_ids is malformed";
    }
    t->prompt_ids = c->row.ids[0].n ? c->row.ids[0].p : NULL;
    t->n_prompt_ids = c->row.ids[0].n;
    t->reply_ids = c->row.ids[1].n ? c->row.ids[1].p : NULL;
    t->n_reply_ids = c->row.ids[1].n;
    t->prompt_version = text_or_null(r, 0, 26);
    t->safety_version = text_or_null(r, 0, 27);
    t->model_urgent_p = PQgetisnull(r, 0, 28) ? NAN : col_real(r, 0, 28);
    t->dropped_turns = (int)col_int(r, 0, 29);
    if (!bad && (unsigned)t->emotion > 2) bad = "emotion is not 0..2";
    if (!bad && fin < 0) bad = "unknown finish reason";
    if (bad) return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: turn %s: %s", c->shown, PQgetvalue(r, 0, 0), bad);
    return QC_OK;
}

/* Stops a query whose rows are no longer wanted and reads what is left. */
static void abandon(qc_rec_conn_t *c) {
    PGcancel *k = PQgetCancel(c->db);
    char buf[256];
    if (k) {
        PQcancel(k, buf, sizeof buf);
        PQfreeCancel(k);
    }
    for (PGresult *r; (r = PQgetResult(c->db));) PQclear(r);
}

static qc_status pg_turns(qc_rec_conn_t *c, const char *sid, int64_t since_ms, int64_t until_ms, qc_rec_turn_fn fn,
                          void *user, int64_t *n, char *err, size_t err_size) {
    char a[32], b[32];
    const char *v[2];
    int nv;
    if (sid) {
        v[0] = pg_text(c, 0, sid, strlen(sid));
        nv = 1;
    } else {
        snprintf(a, sizeof a, "%lld", (long long)(since_ms ? since_ms : INT64_MIN));
        snprintf(b, sizeof b, "%lld", (long long)(until_ms ? until_ms : INT64_MAX));
        v[0] = a, v[1] = b, nv = 2;
    }
    const char *sql = sid ? "SELECT " TURN_COLUMNS " FROM turns WHERE session_id = $1 ORDER BY ts_ms, seq"
                          : "SELECT " TURN_COLUMNS " FROM turns WHERE ts_ms >= $1 AND ts_ms < $2 ORDER BY ts_ms, seq";
    int64_t count = 0;
    if (n) *n = 0;
    if (!PQsendQueryParams(c->db, sql, nv, NULL, v, NULL, NULL, 0) || !PQsetSingleRowMode(c->db)) {
        qc_status st = fail(c, NULL, "read turns", err, err_size);
        for (PGresult *r; (r = PQgetResult(c->db));) PQclear(r);
        return st;
    }
    qc_status st = QC_OK;
    for (PGresult *r; (r = PQgetResult(c->db));) {
        ExecStatusType t = PQresultStatus(r);
        if (t == PGRES_SINGLE_TUPLE) {
            qc_rec_turn_t turn;
            int stop = (st = row_turn(c, r, &turn, err, err_size)) != QC_OK;
            if (!stop) {
                count++;
                stop = fn && fn(user, &turn);
            }
            PQclear(r);
            if (stop) {
                abandon(c);
                break;
            }
            continue;
        }
        if (t != PGRES_TUPLES_OK && !st) st = fail(c, r, "read turns", err, err_size);
        PQclear(r);
    }
    if (n) *n = count;
    return st;
}

static qc_status pg_sessions(qc_rec_conn_t *c, const qc_rec_query_t *qq, const qc_rec_key_t *after, int limit,
                             qc_rec_session_fn fn, void *user, char *err, size_t err_size) {
    int risk = qq->order == QC_REC_ORDER_RISK, k = 0;
    char num[5][32];
    const char *v[7];
    qc_buf_t sql = {0};
    qc_buf_puts(&sql, "SELECT session_id, patient_id, first_ms, last_ms, turns, urgent_count, last_emotion,"
                      " last_negative, neg_streak, trend, risk FROM sessions WHERE turns > 0");
    if (qq->patient_id) {
        v[k++] = pg_text(c, 1, qq->patient_id, strlen(qq->patient_id));
        qc_buf_printf(&sql, " AND patient_id = $%d", k);
    }
    if (qq->urgent_only) qc_buf_puts(&sql, " AND urgent_count > 0");
    if (qq->since_ms) {
        snprintf(num[0], 32, "%lld", (long long)qq->since_ms);
        v[k++] = num[0];
        qc_buf_printf(&sql, " AND last_ms >= $%d", k);
    }
    if (qq->until_ms) {
        snprintf(num[1], 32, "%lld", (long long)qq->until_ms);
        v[k++] = num[1];
        qc_buf_printf(&sql, " AND first_ms < $%d", k);
    }
    if (after) {
        snprintf(num[2], 32, "%lld", (long long)after->risk);
        snprintf(num[3], 32, "%lld", (long long)after->last_ms);
        if (risk) {
            v[k++] = num[2];
            qc_buf_printf(&sql, " AND (risk, last_ms, session_id) < ($%d::bigint, $%d::bigint, $%d)", k, k + 1, k + 2);
        } else {
            qc_buf_printf(&sql, " AND (last_ms, session_id) < ($%d::bigint, $%d)", k + 1, k + 2);
        }
        v[k++] = num[3];
        v[k++] = pg_text(c, 0, after->session_id, strlen(after->session_id));
    }
    snprintf(num[4], 32, "%d", limit);
    v[k++] = num[4];
    qc_buf_printf(&sql, risk ? " ORDER BY risk DESC, last_ms DESC, session_id DESC LIMIT $%d"
                             : " ORDER BY last_ms DESC, session_id DESC LIMIT $%d",
                  k);
    if (sql.failed) {
        qc_buf_free(&sql);
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "records: out of memory");
    }
    PGresult *r;
    qc_status st = query(c, sql.p, k, v, &r, "list sessions", err, err_size);
    qc_buf_free(&sql);
    if (st) return st;
    for (int i = 0; i < PQntuples(r); i++) {
        qc_rec_session_t s = {
            .session_id = PQgetvalue(r, i, 0),
            .patient_id = text_or_null(r, i, 1),
            .first_ms = col_int(r, i, 2),
            .last_ms = col_int(r, i, 3),
            .turns = col_int(r, i, 4),
            .urgent_count = col_int(r, i, 5),
            .last_emotion = (int)col_int(r, i, 6),
            .last_negative = (float)col_real(r, i, 7),
            .neg_streak = (int)col_int(r, i, 8),
            .trend = col_real(r, i, 9),
            .risk = (double)col_int(r, i, 10) / 1e6,
        };
        if ((unsigned)s.last_emotion > 2) {
            st = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: a malformed session summary", c->shown);
            break;
        }
        if (fn(user, &s)) break;
    }
    PQclear(r);
    return st;
}

static qc_status pg_tombstone(qc_rec_conn_t *c, const char *sid, int64_t *erased_ms, char *err, size_t err_size) {
    const char *v = pg_text(c, 0, sid, strlen(sid));
    PGresult *r;
    qc_status st = query(c, "SELECT erased_ms FROM erased WHERE session_id = $1", 1, &v, &r, "read a tombstone", err,
                         err_size);
    if (st) return st;
    *erased_ms = PQntuples(r) ? col_int(r, 0, 0) : 0;
    PQclear(r);
    return QC_OK;
}

static qc_status pg_head(qc_rec_conn_t *c, const char *sid, qc_rec_head_t *out, char *err, size_t err_size) {
    const char *v = pg_text(c, 0, sid, strlen(sid));
    PGresult *r;
    *out = (qc_rec_head_t){0};
    qc_status st = query(c,
                         "SELECT s.turns, (SELECT t.id FROM turns t WHERE t.session_id = $1"
                         " ORDER BY t.ts_ms DESC, t.seq DESC LIMIT 1) FROM sessions s WHERE s.session_id = $1",
                         1, &v, &r, "read a session's head", err, err_size);
    if (st) return st;
    if (PQntuples(r)) {
        out->turns = col_int(r, 0, 0);
        if (!PQgetisnull(r, 0, 1) && qc_rec_id_parse(PQgetvalue(r, 0, 1), &out->last))
            st = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: a turn id is not a UUID", c->shown);
    }
    PQclear(r);
    return st;
}

static qc_status pg_ping(qc_rec_conn_t *c, char *err, size_t err_size) {
    return exec(c, "SELECT 1", "probe the database", err, err_size);
}

/* ==== erasure and purging ==== */

/* Runs sql with parameters v[0..n); *changed (may be NULL) the rows it
 * changed. */
static qc_status run(qc_rec_conn_t *c, const char *sql, int n, const char *const *v, int64_t *changed,
                     const char *what, char *err, size_t err_size) {
    PGresult *r;
    qc_status st = query(c, sql, n, v, &r, what, err, err_size);
    if (st) return st;
    if (changed) *changed = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return QC_OK;
}

/* Recomputes the summary of session sid from its turns (locking its row
 * first, as a writer would), or drops it when none are left. */
static qc_status resummarize(qc_rec_conn_t *c, const char *sid, char *err, size_t err_size) {
    PGresult *r;
    qc_status st = run(c, "SELECT 1 FROM sessions WHERE session_id = $1 FOR UPDATE", 1, &sid, NULL, "purge", err,
                       err_size);
    if (!st)
        st = query(c, "SELECT patient_id, ts_ms, emotion, p_negative, urgent FROM turns WHERE session_id = $1"
                      " ORDER BY ts_ms, seq",
                   1, &sid, &r, "purge", err, err_size);
    if (st) return st;
    qc_rec_summary_t s = {0};
    const char *patient = NULL;
    for (int i = 0; i < PQntuples(r); i++) {
        if (!PQgetisnull(r, i, 0)) patient = PQgetvalue(r, i, 0);
        qc_rec_summary_add(&s, col_int(r, i, 1), (int)col_int(r, i, 2), (float)col_real(r, i, 3), PQgetvalue(r, i, 4)[0] == 't');
    }
    if (s.turns && !(st = prepare(c, err, err_size)) && !(st = send_summary(c, sid, patient, &s, err, err_size))) {
        PGresult *u = NULL;
        st = read_results(c, &u, 1, "purge", err, err_size);
        PQclear(u);
    } else if (!s.turns) {
        st = run(c, "DELETE FROM sessions WHERE session_id = $1", 1, &sid, NULL, "purge", err, err_size);
    }
    PQclear(r);
    return st;
}

/* Erases in transactions of ERASE_BATCH turns (none holds locks long),
 * then the summary, the rest and the tombstone together: a turn a writer
 * commits meanwhile goes with the last one; one it commits after starts the
 * session anew. */
static qc_status pg_erase(qc_rec_conn_t *c, const char *sid, int64_t now_ms, int64_t *n, char *err,
                          size_t err_size) {
    char limit[16], when[32];
    snprintf(limit, sizeof limit, "%d", ERASE_BATCH);
    snprintf(when, sizeof when, "%lld", (long long)now_ms);
    const char *v[2] = {pg_text(c, 0, sid, strlen(sid)), limit};
    qc_status st;
    int64_t k;
    *n = 0;
    do {
        st = run(c, "DELETE FROM turns WHERE seq IN (SELECT seq FROM turns WHERE session_id = $1 LIMIT $2)", 2, v, &k,
                 "erase", err, err_size);
        if (!st) *n += k;
    } while (!st && k == ERASE_BATCH);
    /* The summary row first: its lock waits for a writer adding a turn to
     * this session, so the DELETE of turns after it sees that turn. */
    if (!st) st = exec(c, "BEGIN", "erase", err, err_size);
    if (!st) st = run(c, "DELETE FROM sessions WHERE session_id = $1", 1, v, NULL, "erase", err, err_size);
    if (!st) st = run(c, "DELETE FROM turns WHERE session_id = $1", 1, v, &k, "erase", err, err_size);
    if (!st) *n += k;
    v[1] = when;
    if (!st && *n)
        st = run(c, "INSERT INTO erased(session_id, erased_ms) VALUES ($1, $2) ON CONFLICT (session_id)"
                    " DO UPDATE SET erased_ms = excluded.erased_ms",
                 2, v, NULL, "erase", err, err_size);
    return finish(c, st, "erase", err, err_size);
}

static qc_status pg_purge_batch(qc_rec_conn_t *c, int64_t before_ms, int batch, int64_t *n, char *err,
                                size_t err_size) {
    char a[32], b[16];
    snprintf(a, sizeof a, "%lld", (long long)before_ms);
    snprintf(b, sizeof b, "%d", batch);
    const char *v[2] = {a, b};
    PGresult *r = NULL;
    *n = 0;
    qc_status st = exec(c, "BEGIN", "purge", err, err_size);
    /* The sessions it touched, in order (the writer's lock order). */
    if (!st)
        st = query(c, "WITH gone AS (DELETE FROM turns WHERE seq IN (SELECT seq FROM turns WHERE ts_ms < $1"
                      " ORDER BY ts_ms, seq LIMIT $2) RETURNING session_id)"
                      " SELECT session_id, count(*) FROM gone GROUP BY session_id ORDER BY session_id",
                   2, v, &r, "purge", err, err_size);
    for (int i = 0; !st && i < PQntuples(r); i++) {
        *n += col_int(r, i, 1);
        st = resummarize(c, PQgetvalue(r, i, 0), err, err_size);
    }
    PQclear(r);
    if ((st = finish(c, st, "purge", err, err_size))) *n = 0;
    return st;
}

/* PostgreSQL has no secure_delete: a VACUUM frees the dead rows' space for
 * reuse (their bytes stay until overwritten, and in the server's WAL until
 * it is recycled; the README says so). */
static qc_status pg_checkpoint(qc_rec_conn_t *c, int *complete, char *err, size_t err_size) {
    qc_status st = exec(c, "VACUUM turns, sessions", "vacuum", err, err_size);
    *complete = st == QC_OK;
    return st;
}

const qc_rec_backend_t qc_rec_pg = {
    .name = "postgresql",
    .conn_open = pg_open,
    .conn_close = pg_close,
    .insert = pg_insert,
    .sessions = pg_sessions,
    .turns = pg_turns,
    .tombstone = pg_tombstone,
    .head = pg_head,
    .erase = pg_erase,
    .purge_batch = pg_purge_batch,
    .checkpoint = pg_checkpoint,
    .conn_usable = pg_usable,
    .ping = pg_ping,
};
