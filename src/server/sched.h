/* sched.h — the server's model scheduler (continuous batching).
 *
 * One thread owns the model. Requests wait in a bounded queue; up to
 * `parallel` of them generate at once: every pass of the model runs the next
 * token of each generating request together with chunks of new requests'
 * prompts (qc_batch_eval), so the weights are read once per pass for all of
 * them. Judgments (emotion, labels) ride in the same passes. */
#ifndef QC_SERVER_SCHED_H
#define QC_SERVER_SCHED_H

#include "qcare_care.h"

#include "base/base.h"

#include <stdatomic.h>

typedef struct qs_sched qs_sched_t;

#define QS_TOP_LOGPROBS 20 /* most alternatives reported per token */

/* One token's log-probability under the model: from its raw next-token
 * logits, before any sampling setting (temperature, top-k, penalty)
 * changes them; natural log. */
typedef struct {
    int32_t id;
    double logprob;
    int n_top;                           /* the most probable tokens there, best first */
    int32_t top_id[QS_TOP_LOGPROBS];
    double top_logprob[QS_TOP_LOGPROBS];
} qs_logprob_t;

enum {
    QS_EMOTION,    /* judge the emotion of text */
    QS_ANALYZE,    /* emotion [, the urgency opinion], then the reply (in the conversation `session` when given) */
    QS_COMPLETION, /* generate after the prompt ids */
    QS_CLASSIFY,   /* score the labels of `labels` after text */
    QS_END_SESSION /* drop the conversation `session` (its KV state and tokens); no model work.
                      on_done: QC_OK (also when there was none), or QC_ERR_BUSY mid-turn */
};

/* One request. The caller fills the inputs and the callbacks, submits it,
 * and keeps it alive until on_done has been called (always exactly once,
 * also when it is cancelled or the server stops). The callbacks run on the
 * scheduler's thread. */
typedef struct qs_request {
    int kind;
    const char *text;      /* QS_EMOTION, QS_ANALYZE: the message (UTF-8, NUL-terminated) */
    const char *session;   /* QS_ANALYZE: conversation id, or NULL for a one-off reply */
    const qc_labels_t *labels; /* QS_CLASSIFY: the task (kept alive by the caller) */
    const qc_labels_t *risk;   /* QS_ANALYZE: also judge this task (the urgency opinion) after the emotion; NULL: not */
    const int32_t *ids;    /* QS_COMPLETION: the prompt */
    size_t n_ids;
    qc_sampling_t sampling; /* generation (the model's defaults when use_sampling is 0) */
    int use_sampling;
    int max_tokens;         /* QS_COMPLETION may ask 0: the prompt alone (for prompt_logprobs) */
    int logprobs;           /* QS_COMPLETION: each generated token's log-probability to on_logprob */
    int prompt_logprobs;    /* QS_COMPLETION: also each prompt token's after the first (its prompt then
                             * runs alone on this thread, in the chunks a batched prefill uses) */
    int top_logprobs;       /* alternatives with them (0..QS_TOP_LOGPROBS) */
    /* When set, the tokens of the reply's prompt (a conversation's turn: the
     * ones this turn added; QS_EMOTION: the judged turn) and the generated
     * ones are appended here, for the records. An allocation failure leaves
     * them short; it never fails the request. */
    qc_ids_t *prompt_ids, *reply_ids;
    /* QS_ANALYZE in a session: its past turns from the records, oldest
     * first (kept alive by the caller), replayed into the conversation when
     * this process does not hold it (qc_care_session_replay), before the
     * turn; ignored when it does, unless reset: then the conversation it
     * holds is dropped first (the records moved on without it), and the
     * history (maybe empty: an erased session) is all of it. */
    const qc_care_past_t *history;
    size_t n_history;
    int reset;
    int rebuilt, rebuild_skipped; /* set by the scheduler: past turns replayed / not continuing it */
    double rebuild_ms;            /* and the time it took, the KV state's rebuild included */
    void *user;
    /* The emotion (QS_EMOTION, QS_ANALYZE), before any reply text. */
    void (*on_emotion)(void *user, const qc_emotion_t *e);
    /* The scores of `labels` (QS_CLASSIFY) or of `risk` (QS_ANALYZE, after on_emotion). */
    void (*on_scores)(void *user, const qc_scores_t *s);
    /* A token's log-probability (logprobs, prompt_logprobs): the prompt's
     * tokens 1..n_ids-1 in order (prompt = 1), then each generated token
     * just before its on_piece. */
    void (*on_logprob)(void *user, int prompt, const qs_logprob_t *lp);
    /* Reply text in whole UTF-8 characters; non-zero ends the generation. */
    int (*on_piece)(void *user, const char *piece, size_t len);
    /* The end: st QC_OK or the error (message in msg); n_prompt / n_out
     * tokens; hit_max when it stopped at max_tokens or the context's end. */
    void (*on_done)(void *user, qc_status st, const char *msg, size_t n_prompt, size_t n_out, int hit_max);
    atomic_int cancel;     /* set by the caller (client gone): the slot is freed at the next pass, a queued
                              request leaves the queue at the next admission */
    int stopped;           /* set by the scheduler: ended because the server is stopping */
    int dropped_turns;     /* set by the scheduler (QS_ANALYZE in a session): old turns the conversation forgot
                              to make room for this one */
    /* the scheduler's */
    struct qs_request *next;
} qs_request_t;

typedef struct {
    int queued, active;        /* waiting, generating */
    int sessions, resident;    /* conversations, those holding KV state */
    size_t session_bytes;
    unsigned long long passes, pass_tokens, decode_tokens, prompt_tokens;
    double busy_s;             /* time spent in model passes and judgments */
    double decode_s;           /* time spent in passes without prompt tokens (steady decoding) */
    unsigned long long decode_pass_tokens; /* the tokens of those passes */
    unsigned long long cancelled; /* requests ended because they were cancelled (client gone), queued or running */
    unsigned long long rebuilds, rebuilt_turns; /* conversations rebuilt from recorded turns, and those turns */
    double rebuild_s;                           /* the time those rebuilds took, their KV state included */
    unsigned long long stale_drops; /* held conversations dropped because the records had moved on (reset) */
    size_t kv_tokens;          /* tokens in the KV state of the requests generating outside conversations now (their
                                  pooled contexts; conversations count in session_bytes), as of the last pass */
} qs_stats_t;

/* Starts the scheduler thread. care comes from the same model; the
 * scheduler uses both only from its thread. */
qs_sched_t *qs_sched_new(qc_model_t *m, qc_care_t *care, int parallel, int queue, int n_ctx, char *err,
                         size_t err_size);
/* Queues r: QC_ERR_BUSY when every slot is taken and `queue` requests
 * already wait, QC_ERR_CANCELLED when stopping. on_done gets QC_ERR_CANCELLED
 * for a cancelled request or one ended by the stop, QC_ERR_INTERNAL for a
 * scheduler bug. */
qc_status qs_submit(qs_sched_t *s, qs_request_t *r);
void qs_stats(qs_sched_t *s, qs_stats_t *out);
/* The watchdog's measure: seconds since the thread last began a loop
 * (admission and one pass) while work waits or runs; 0 when it is idle. */
double qs_sched_stall_s(qs_sched_t *s);
/* A test hook (QCARE_TEST_STALL_MS): every loop that has work sleeps ms
 * first, like a scheduler stuck in a long pass. 0: none. */
void qs_sched_test_stall(qs_sched_t *s, int ms);
/* Ends every request (on_done with an error) and refuses new ones. */
void qs_sched_stop(qs_sched_t *s);
/* Stops (if not yet) and frees. */
void qs_sched_free(qs_sched_t *s);

#endif
