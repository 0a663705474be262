/* records.h — the consultation record: one turn per judged message, kept in a
 * store behind one interface: SQLite (a file) or PostgreSQL (a database
 * several processes share), behind the same calls and the same ids.
 *
 * Writing: a store has one writer thread. A caller submits a finished turn
 * and is told, through a callback on the writer thread, once it is committed
 * (or why it was not). Turns that are waiting together go into one
 * transaction. A failure (disk full, read-only file, lock timeout) is
 * reported to every affected submitter and counted (qc_store_stats); the
 * writer goes on with the next turns.
 *
 *   qc_store_t *st;
 *   char err[256];
 *   if (qc_store_open("/var/lib/qcare/records.db", NULL, &st, err, sizeof err)) die(err);
 *   qc_rec_turn_t t = {.session_id = "s1", .message = msg, .message_len = n, ...};
 *   qc_store_submit(st, &t, on_committed, req, err, sizeof err);   // copies t
 *   ...
 *   qc_store_close(st);   // commits what is queued, then frees
 *
 * Reading: qc_store_sessions (a page of sessions, most at risk or most recent
 * first, with an opaque cursor), qc_store_turns (a session's turns in order),
 * qc_store_export (CSV or JSON lines through a callback, constant memory),
 * qc_store_erase (a session, leaving a tombstone), qc_store_purge (turns
 * before a date). Readers use their own connections, so they run while the
 * writer writes, in the same process or in another one (`qcare records`).
 *
 * Threads: every call may be made from any thread, concurrently. Errors are
 * written into the caller's err buffer (err_size bytes, may be NULL/0) rather
 * than kept on the shared handle, so concurrent callers do not overwrite each
 * other's message. Internal to the qcare binary (not part of include/). */
#ifndef QC_RECORDS_H
#define QC_RECORDS_H

#include "qcare.h"

#include <stddef.h>
#include <stdint.h>

/* ==== record ids: UUIDv7 (RFC 9562) ====
 * 48 bits of Unix time in ms, a 12-bit counter (so ids made in the same ms
 * still sort in order of creation), 62 random bits. Byte order = time order. */

typedef struct {
    uint8_t b[16];
} qc_rec_id_t;

#define QC_REC_ID_STRLEN 36 /* "0190c0de-..." without the NUL */

/* A new id; strictly greater than every id made before in this process
 * (also when the clock stalls or steps back). Thread-safe. */
void qc_rec_id_new(qc_rec_id_t *out);
/* The canonical lower-case text form into out (37 bytes with the NUL). */
void qc_rec_id_format(const qc_rec_id_t *id, char out[QC_REC_ID_STRLEN + 1]);
/* Parses the text form (either case). 0, or -1 when s is not one. */
int qc_rec_id_parse(const char *s, qc_rec_id_t *out);
/* Whether id is all zero (the "assign one for me" value). */
int qc_rec_id_is_nil(const qc_rec_id_t *id);
/* The Unix time in ms an id was made at. */
int64_t qc_rec_id_ms(const qc_rec_id_t *id);

/* ==== time: UTC milliseconds since the Unix epoch ==== */

int64_t qc_rec_now_ms(void);
/* "2026-01-02T03:04:05.678Z" into out (at least 32 bytes). */
void qc_rec_time_format(int64_t ms, char out[32]);
/* Parses YYYY-MM-DD, or YYYY-MM-DD(T| )HH:MM[:SS[.fff]] with an optional
 * trailing Z; always UTC. 0, or -1 when s is none of these. */
int qc_rec_time_parse(const char *s, int64_t *ms);

/* ==== a turn ==== */

typedef enum {
    QC_FINISH_STOP = 0,  /* the model ended its reply */
    QC_FINISH_LENGTH,    /* max_tokens or the context ran out */
    QC_FINISH_CANCELLED, /* the client went away or cancelled */
    QC_FINISH_ERROR      /* the reply failed */
} qc_finish_t;

/* "stop", "length", "cancelled", "error"; and back (-1 for unknown names). */
const char *qc_finish_name(qc_finish_t f);
int qc_finish_parse(const char *s);

#define QC_REC_SESSION_MAX 256 /* bytes of a session or patient id */

/* One judged message and its reply. Strings are UTF-8, NUL-terminated; NULL
 * is allowed for the optional ones (and read back as NULL). When submitting,
 * the caller keeps ownership (everything is copied). When reading, every
 * pointer is the store's and valid only during the callback. */
typedef struct {
    qc_rec_id_t id;         /* nil: assigned at submit (qc_rec_id_new) */
    const char *session_id; /* required: 1..QC_REC_SESSION_MAX bytes */
    const char *patient_id; /* optional, opaque, at most QC_REC_SESSION_MAX bytes */
    int64_t ts_ms;          /* UTC ms when the message arrived; 0: now, at submit */

    const char *message; /* the patient's message, message_len bytes */
    size_t message_len;

    int emotion;      /* 0 positive, 1 negative, 2 neutral (qc_emotion_t.label) */
    float probs[3];   /* P(positive), P(negative), P(neutral) */
    int calibrated;   /* 1 when the prior was divided out (--calibrate) */

    int urgent;              /* the safety net fired */
    const char *urgent_kind; /* qc_urgent_name(): "cardiac", ...; NULL when not urgent */
    const char *urgent_rule; /* the presentation / phrase that matched, NULL when none */

    const char *reply; /* the reply as sent (notice excluded), reply_len bytes */
    size_t reply_len;
    qc_finish_t finish;

    const char *model_name;  /* e.g. "Qwen/Qwen2.5-0.5B-Instruct" */
    const char *model_hash;  /* content hash of the weights (hex) */
    const char *weight_type; /* "q8_0", "bf16", ... */
    int prompt_tokens, completion_tokens;
    double emotion_ms, ttft_ms, total_ms; /* judgment, time to first token, whole turn */

    /* For later issues: the turn's own prompt part and the reply, as token
     * ids (each id >= 0; stored as compact varint blobs). */
    const int32_t *prompt_ids;
    size_t n_prompt_ids;
    const int32_t *reply_ids;
    size_t n_reply_ids;
    const char *prompt_version; /* which system/analyst prompt text */
    const char *safety_version; /* which safety rule set */
    double model_urgent_p;      /* the model's own P(urgent); NAN when not judged (NULL) */
    int dropped_turns;          /* history turns left out of the prompt to fit the context */
} qc_rec_turn_t;

/* ==== a session's summary (kept up to date at every write) ==== */

#define QC_REC_TREND_TURNS 5 /* the trend is over this many last turns */

typedef struct {
    const char *session_id;
    const char *patient_id; /* the last one given; NULL when never given */
    int64_t first_ms, last_ms;
    int64_t turns;
    int last_emotion;     /* label of the last turn */
    float last_negative;  /* its P(negative) */
    int neg_streak;       /* how many of the last turns in a row were negative */
    int64_t urgent_count; /* urgent turns */
    double trend;         /* least-squares slope of P(negative) per turn, last <= 5 turns */
    double risk;          /* the score of qc_rec_summary_risk (records.c) */
} qc_rec_session_t;

/* ==== the store ==== */

typedef struct qc_store qc_store_t;

typedef struct {
    int sync_full;       /* 1: synchronous=FULL (each commit survives power loss); default NORMAL
                            (survives a crash of qcare; a power cut may lose the last commits) */
    int busy_timeout_ms; /* how long to wait for another writer's lock; 0 = 5000 */
    int read_only;       /* open only to read: no file created, no migration, no submit */
    int max_batch;       /* most turns in one transaction; 0 = 256 */
    int max_queue;       /* most turns waiting; beyond, submit fails with QC_ERR_BUSY; 0 = 4096 */
    int probe_ms;        /* > 0: the writer runs from the open and, idle this long, checks that the store
                            answers (reconnecting as a write would), so qc_store_reachable follows an idle
                            store too; 0: no probes (the writer starts at the first submit) */
} qc_store_opts_t;

/* Opens (creating it, mode 0600, when absent and not read_only) the store at
 * path: a file name means SQLite; a postgresql:// (or postgres://) URL
 * means a PostgreSQL database (libpq's URL form; tables created in the
 * connection's current schema), the store several qcare processes share.
 * Its writer reconnects by itself when the server goes away and comes back
 * (waiting 0.1 s, doubling up to 2 s, between tries): while it is away,
 * every write fails with QC_ERR_IO ("unreachable"), which the server turns
 * into 503; a turn reported committed was committed. The schema is brought to this qcare's
 * version (forward migrations, in one transaction); a file written by a
 * newer qcare is refused (QC_ERR_UNSUPPORTED). opts may be NULL. *out is the
 * caller's, freed with qc_store_close. */
qc_status qc_store_open(const char *path, const qc_store_opts_t *opts, qc_store_t **out, char *err,
                        size_t err_size);
/* Whether path is a PostgreSQL URL (not a file). */
int qc_store_path_is_url(const char *path);
/* Waits until every submitted turn is committed (or failed, and told),
 * stops the writer and frees the store. NULL is a no-op. */
void qc_store_close(qc_store_t *s);

/* Called once per submitted turn, on the writer thread, after its
 * transaction: st == QC_OK when it is committed, else the error (err, valid
 * during the call). id is the turn's id. Must return quickly and must not
 * wait for the writer (qc_store_write would deadlock); submitting is fine. */
typedef void (*qc_rec_done_fn)(void *user, qc_status st, const qc_rec_id_t *id, const char *err);

/* Queues a copy of t for the writer. QC_ERR_ARG for a malformed turn,
 * QC_ERR_BUSY when max_queue turns are waiting (counted as an error),
 * QC_ERR_NOMEM; in those cases done is not called. done may be NULL.
 * The assigned id is written to *id_out (may be NULL). */
qc_status qc_store_submit(qc_store_t *s, const qc_rec_turn_t *t, qc_rec_done_fn done, void *user,
                          qc_rec_id_t *id_out, char *err, size_t err_size);
/* Submits t and waits for its commit (for the CLI, tests and tools). */
qc_status qc_store_write(qc_store_t *s, const qc_rec_turn_t *t, qc_rec_id_t *id_out, char *err,
                         size_t err_size);

typedef struct {
    uint64_t committed;    /* turns committed */
    uint64_t transactions; /* write transactions committed */
    uint64_t errors;       /* turns that could not be committed (qcare_records_errors_total) */
    uint64_t queued;       /* turns waiting now */
} qc_store_stats_t;

void qc_store_stats(qc_store_t *s, qc_store_stats_t *out);
/* 0 while the writer's last try found the store unreachable (the
 * database went away: its turns failed, or its probe did), 1 otherwise,
 * again from the next commit or probe; a flag the writer keeps, so it
 * never blocks (for /ready). Without probe_ms an idle store is not
 * probed: it turns 0 only at the first write after a loss. */
int qc_store_reachable(qc_store_t *s);

/* ==== queries ==== */

typedef enum {
    QC_REC_ORDER_RISK = 0, /* highest risk first, then most recent */
    QC_REC_ORDER_RECENT    /* most recent last turn first */
} qc_rec_order_t;

#define QC_REC_CURSOR_MAX 640 /* bytes of a cursor, with the NUL */
#define QC_REC_LIMIT_MAX 1000

typedef struct {
    qc_rec_order_t order;
    const char *patient_id; /* only this patient's sessions; NULL: all */
    int urgent_only;        /* only sessions with an urgent turn */
    int64_t since_ms;       /* only sessions with a turn at or after since (0: no bound) */
    int64_t until_ms;       /* ... and one before until (0: no bound) */
    int limit;              /* 1..QC_REC_LIMIT_MAX; 0 = 50 */
    const char *cursor;     /* NULL or "": the first page; else a previous page's next */
} qc_rec_query_t;

/* Return nonzero to stop. */
typedef int (*qc_rec_session_fn)(void *user, const qc_rec_session_t *s);
typedef int (*qc_rec_turn_fn)(void *user, const qc_rec_turn_t *t);

/* One page of sessions through fn, in order. next (QC_REC_CURSOR_MAX bytes)
 * gets the cursor of the following page, "" when this one was the last; the
 * pages of unchanged data cover every session exactly once. A cursor from
 * another order, or a malformed one, gives QC_ERR_ARG. */
qc_status qc_store_sessions(qc_store_t *s, const qc_rec_query_t *q, qc_rec_session_fn fn, void *user,
                            char *next, char *err, size_t err_size);
/* The turns of a session, oldest first, through fn; *n_turns (may be NULL)
 * how many. An unknown session gives QC_OK with 0 turns. */
qc_status qc_store_turns(qc_store_t *s, const char *session_id, qc_rec_turn_fn fn, void *user,
                         int64_t *n_turns, char *err, size_t err_size);
/* Where a session's turns stand now: how many there are and the id of the
 * last one (in qc_store_turns' order). A process that keeps a
 * conversation's KV state as a cache of the records compares it with what
 * that state was built from, to see whether another process wrote turns
 * meanwhile (or erased the session: 0 turns and the nil id). */
typedef struct {
    int64_t turns;    /* the session's turns (every kind: emotion-only, cancelled, ...) */
    qc_rec_id_t last; /* nil when it has none */
} qc_rec_head_t;

/* The head of session_id into *out (zero for an unknown, erased or purged
 * session): one indexed lookup (the summary's row and the newest turn by
 * the session's index), cheap enough for every turn. */
qc_status qc_store_head(qc_store_t *s, const char *session_id, qc_rec_head_t *out, char *err, size_t err_size);
/* When session_id was erased: its time into *erased_ms, or 0 when it was
 * not (or not since the last purge of tombstones). */
qc_status qc_store_tombstone(qc_store_t *s, const char *session_id, int64_t *erased_ms, char *err,
                             size_t err_size);

/* ==== export ==== */

typedef enum {
    QC_REC_CSV = 0, /* RFC 4180: header row, CRLF, quoted where needed */
    QC_REC_JSONL    /* one JSON object per line */
} qc_rec_format_t;

/* Receives the export's bytes; return nonzero to stop (e.g. the client left). */
typedef int (*qc_rec_write_fn)(void *user, const void *p, size_t n);

/* Every turn with since_ms <= ts < until_ms (0: no bound), oldest first,
 * streamed through out in constant memory; one consistent snapshot, so
 * writes during the export do not tear it. The columns are those of
 * qc_rec_turn_t but the token ids. QC_ERR_IO when out stopped it. */
qc_status qc_store_export(qc_store_t *s, qc_rec_format_t fmt, int64_t since_ms, int64_t until_ms,
                          qc_rec_write_fn out, void *user, char *err, size_t err_size);
/* One turn as one JSON line (with its "\n"), the export's JSONL form. */
qc_status qc_rec_turn_jsonl(const qc_rec_turn_t *t, qc_rec_write_fn out, void *user);
/* One session summary as one JSON line: session_id, patient_id, first,
 * last (ISO 8601 UTC), turns, last_emotion, last_negative, neg_streak,
 * urgent_count, trend, risk. QC_ERR_NOMEM, or QC_ERR_IO when out refused. */
qc_status qc_rec_session_jsonl(const qc_rec_session_t *s, qc_rec_write_fn out, void *user);

/* ==== erasure and retention ==== */

/* Deletes every turn and the summary of session_id, leaving a tombstone
 * (session id, time of erasure), then checkpoints the WAL so the text leaves
 * the files' bytes (deleted content is overwritten: secure_delete).
 * *n_turns (may be NULL): how many turns went (0 and no tombstone when the
 * session had none). *checkpointed (may be NULL): 0 when a reader kept the
 * checkpoint from finishing — the text then leaves at the next one. */
qc_status qc_store_erase(qc_store_t *s, const char *session_id, int64_t *n_turns, int *checkpointed,
                         char *err, size_t err_size);
/* Deletes every turn before before_ms, in short transactions of a few
 * hundred turns (the writer is never held up long), updating the summaries
 * and dropping the sessions left empty; then checkpoints. *n_turns: how many. */
qc_status qc_store_purge(qc_store_t *s, int64_t before_ms, int64_t *n_turns, char *err, size_t err_size);

/* ==== summaries and risk (also used by every backend) ==== */

typedef struct {
    int64_t turns, urgent_count, first_ms, last_ms;
    int last_emotion, neg_streak;
    int n_recent;
    float recent[QC_REC_TREND_TURNS]; /* P(negative) of the last n_recent turns, oldest first */
} qc_rec_summary_t;

/* Adds the next turn of a session (turns come in order) to s (zeroed first). */
void qc_rec_summary_add(qc_rec_summary_t *s, int64_t ts_ms, int emotion, float p_negative, int urgent);
double qc_rec_summary_trend(const qc_rec_summary_t *s);
/* The risk score, in millionths (an integer, so pages compare exactly). */
int64_t qc_rec_summary_risk(const qc_rec_summary_t *s);

/* ==== test hooks ==== */

/* The next n write transactions fail after their rows are written (rolled
 * back; reported and counted like a real failure): for tests where the file
 * system cannot be made to fail. */
void qc_store_test_fail_writes(qc_store_t *s, int n);
/* hold = 1 keeps the writer from starting its next transaction (turns queue
 * up); 0 lets it go. */
void qc_store_test_hold(qc_store_t *s, int hold);

#endif
