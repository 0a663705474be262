/* backend.h — what a records backend provides (SQLite in sqlite.c,
 * PostgreSQL in pg.c), and the helpers every backend shares so that both
 * store the same bytes. Internal to src/records/.
 *
 * A backend hands out connections. The store (store.c) keeps a small pool
 * of them for readers and one for the writer thread; a connection is used by
 * one thread at a time. Every function returns a qc_status and writes its
 * message into err. */
#ifndef QC_RECORDS_BACKEND_H
#define QC_RECORDS_BACKEND_H

#include "base/base.h"
#include "records/records.h"

typedef struct qc_rec_conn qc_rec_conn_t;

/* The columns of table turns but seq, in qc_rec_turn_t's order: the same
 * in every backend. */
#define QC_REC_TURN_FIELDS                                                                                      \
    "id, session_id, patient_id, ts_ms, message, emotion, p_positive, p_negative, p_neutral, calibrated,"     \
    " urgent, urgent_kind, urgent_rule, reply, finish, model_name, model_hash, weight_type, prompt_tokens,"  \
    " completion_tokens, emotion_ms, ttft_ms, total_ms, prompt_ids, reply_ids, prompt_version, safety_version," \
    " model_urgent_p, dropped_turns"

/* Where a page of sessions starts: after the session with this sort key
 * (order=risk: risk, last_ms, session_id descending; order=recent: last_ms,
 * session_id descending). */
typedef struct {
    int64_t risk, last_ms;
    const char *session_id;
} qc_rec_key_t;

typedef struct {
    const char *name;
    /* Opens a connection to path (creating and migrating the store as
     * o->read_only allows). */
    qc_status (*conn_open)(const char *path, const qc_store_opts_t *o, qc_rec_conn_t **out, char *err,
                           size_t err_size);
    void (*conn_close)(qc_rec_conn_t *c);
    /* Writes n turns (ids and times assigned) and their sessions' summaries
     * in one transaction; fail (the test hook) makes it roll back at the end
     * as a failed commit would. */
    qc_status (*insert)(qc_rec_conn_t *c, const qc_rec_turn_t *const *t, size_t n, int fail, char *err,
                        size_t err_size);
    /* Up to limit sessions matching q, after `after` (NULL: from the start). */
    qc_status (*sessions)(qc_rec_conn_t *c, const qc_rec_query_t *q, const qc_rec_key_t *after, int limit,
                          qc_rec_session_fn fn, void *user, char *err, size_t err_size);
    /* The turns of session_id (non-NULL), or else every turn in
     * [since_ms, until_ms) (0: unbounded), oldest first, in one snapshot. */
    qc_status (*turns)(qc_rec_conn_t *c, const char *session_id, int64_t since_ms, int64_t until_ms,
                       qc_rec_turn_fn fn, void *user, int64_t *n, char *err, size_t err_size);
    qc_status (*tombstone)(qc_rec_conn_t *c, const char *session_id, int64_t *erased_ms, char *err,
                           size_t err_size);
    /* qc_store_head: the summary's turn count and the newest turn's id, in
     * one statement over the primary key and the turns_session index. */
    qc_status (*head)(qc_rec_conn_t *c, const char *session_id, qc_rec_head_t *out, char *err, size_t err_size);
    qc_status (*erase)(qc_rec_conn_t *c, const char *session_id, int64_t now_ms, int64_t *n, char *err,
                       size_t err_size);
    /* Deletes at most batch turns before before_ms in one transaction. */
    qc_status (*purge_batch)(qc_rec_conn_t *c, int64_t before_ms, int batch, int64_t *n, char *err,
                             size_t err_size);
    /* Moves everything into the main file and empties the log; *complete 0
     * when a reader kept it from finishing. */
    qc_status (*checkpoint)(qc_rec_conn_t *c, int *complete, char *err, size_t err_size);
    /* Whether c can still be used: 0 once its server went away (the store
     * then closes it and opens another, with backoff). NULL: always. */
    int (*conn_usable)(qc_rec_conn_t *c);
    /* A round trip that tells whether the store answers (the writer's idle
     * probe); NULL: a usable connection is enough. */
    qc_status (*ping)(qc_rec_conn_t *c, char *err, size_t err_size);
} qc_rec_backend_t;

extern const qc_rec_backend_t qc_rec_sqlite;
extern const qc_rec_backend_t qc_rec_pg;

/* ==== shared encodings (records.c) ==== */

/* What a connection reuses for every turn it writes or reads: the token
 * ids as blobs (prompt, reply) and decoded. */
typedef struct {
    qc_buf_t blob[2];
    qc_ids_t ids[2];
} qc_rec_scratch_t;

void qc_rec_scratch_free(qc_rec_scratch_t *s);

/* Token ids as unsigned LEB128 varints (1-3 bytes for a Qwen vocabulary of
 * 152k), appended to out. -1 for a negative id or out of memory. */
int qc_rec_ids_encode(const int32_t *ids, size_t n, qc_buf_t *out);
/* Decodes a blob of qc_rec_ids_encode into out (emptied first). -1 when it
 * is malformed (truncated, over 5 bytes, above INT32_MAX) or out of memory. */
int qc_rec_ids_decode(const void *p, size_t n, qc_ids_t *out);

/* A summary's recent P(negative) values as little-endian float32s, oldest
 * first (4 * n_recent bytes into out); and back (-1 when the blob's size is
 * not a multiple of 4 or over QC_REC_TREND_TURNS values). */
size_t qc_rec_recent_encode(const qc_rec_summary_t *s, uint8_t out[4 * QC_REC_TREND_TURNS]);
int qc_rec_recent_decode(const void *p, size_t n, qc_rec_summary_t *s);

/* Lower-case hex of n bytes into out (2n chars and a NUL); and back from
 * n hex digits (either case) into n/2 bytes (-1 on a non-hex digit). */
void qc_rec_hex_encode(const void *p, size_t n, char *out);
int qc_rec_hex_decode(const char *hex, size_t n, uint8_t *out);

/* Every turn in [since_ms, until_ms) through fn, oldest first, in one
 * snapshot (store.c; for export.c). */
qc_status qc_store_turns_range(qc_store_t *s, int64_t since_ms, int64_t until_ms, qc_rec_turn_fn fn, void *user,
                               char *err, size_t err_size);

/* s[0..n) as valid UTF-8: 0 when it already is (out untouched), else 1
 * with a copy in out (emptied first) where each byte that starts no valid
 * sequence is U+FFFD, and so is each NUL unless keep_nul; -1 when out of
 * memory. (JSON needs UTF-8; PostgreSQL text also refuses NUL.) */
int qc_rec_utf8_clean(const char *s, size_t n, int keep_nul, qc_buf_t *out);

/* "positive", "negative", "neutral" (NULL for others); and back (-1). */
const char *qc_rec_emotion_name(int label);
int qc_rec_emotion_parse(const char *s);

#endif
