/* care.h — the care pipeline on one loaded model: emotion by label scoring
 * (with the analyst prompt's fixed prefix computed once and shared), the
 * safety net, and the streamed reply. */
#ifndef QC_CARE_H
#define QC_CARE_H

#include "care/safety.h"
#include "qcare.h"

typedef struct qc_care qc_care_t;

typedef struct {
    int n_ctx;              /* context of each request (0 = 2048) */
    int use_prefix_cache;   /* 1 (default when opts is NULL): share the analyst prefix's KV state */
    int calibrate;          /* divide out the content-free label prior (see care.c) */
    size_t session_budget;  /* KV bytes of all conversations (0 = 512 MiB); LRU eviction beyond */
    qc_safety_opts_t safety;
} qc_care_opts_t;

typedef struct {
    int label;          /* 0 positive, 1 negative, 2 neutral */
    float probs[3];     /* normalized over the three labels */
    double logp[3];     /* log-likelihood of each label's tokens */
    double ms;          /* wall time of the judgment */
} qc_emotion_t;

/* Prepares the pipeline: tokenizes the label words and prefills the analyst
 * prefix once. The model must outlive the pipeline. */
qc_status qc_care_new(qc_model_t *m, const qc_care_opts_t *opts, qc_care_t **out, char *err, size_t err_size);
void qc_care_free(qc_care_t *c);
const char *qc_care_errmsg(const qc_care_t *c);

/* Judges the emotion of text (UTF-8, len bytes). Special-token text in the
 * message is not interpreted. Not thread-safe (one request at a time). */
qc_status qc_care_emotion(qc_care_t *c, const char *text, size_t len, qc_emotion_t *out);

/* Writes the reply to text, told the emotion, streamed through cb in whole
 * UTF-8 characters; sampling from the model's generation_config.json unless
 * sampling is given. max_tokens > 0. */
qc_status qc_care_reply(qc_care_t *c, const char *text, int emotion, const qc_sampling_t *sampling,
                        int max_tokens, qc_token_cb cb, void *user);

/* One turn of the conversation session_id (created on first use): the
 * reply to text, told its emotion, streamed through cb. A session keeps its
 * KV state between turns, so a turn costs its new tokens; when all sessions
 * exceed the memory budget the least recently used lose their KV state and
 * get it back on their next turn by repeating the same forward calls, which
 * gives exactly the same result. */
qc_status qc_care_chat(qc_care_t *c, const char *session_id, const char *text, int emotion,
                       const qc_sampling_t *sampling, int max_tokens, qc_token_cb cb, void *user);
qc_status qc_care_end_session(qc_care_t *c, const char *session_id);
/* Number of sessions (and, in *resident, those holding KV state now). */
int qc_care_n_sessions(const qc_care_t *c, int *resident);
/* KV bytes held by the sessions now. */
size_t qc_care_sessions_bytes(const qc_care_t *c);

/* Number of tokens of the cached analyst prefix. */
int qc_care_prefix_tokens(const qc_care_t *c);

#endif
