/* care.h — the care pipeline's state, shared by its files (internal):
 * care.c (the pipeline, replies, conversations) and judge.c (label
 * scoring, the prefix cache). The API is in include/qcare_care.h. */
#ifndef QC_CARE_H
#define QC_CARE_H

#include "qcare_care.h"

#include <stdint.h>

typedef struct session session_t; /* a conversation (care.c) */
typedef struct prefix prefix_t;   /* a cached prefix's KV state (judge.c) */

struct qc_care {
    qc_model_t *m;
    const qc_tokenizer_t *tok;
    qc_care_opts_t opts;
    int qwen3;
    qc_ctx_t *gen; /* the reply */
    session_t **sessions; /* pointers: a turn in progress keeps its session's address */
    size_t n_sessions, cap_sessions;
    uint64_t clock; /* bumped on every turn, for LRU */

    /* label scoring (judge.c) */
    qc_labels_t *emotion;  /* the analyst prompt's task */
    qc_labels_t *risk;     /* the urgency opinion's (opts.risk_model), else NULL */
    qc_ctx_t *req;         /* one standalone judgment at a time */
    float *logits;         /* [n_vocab] */
    float *rows;           /* [QC_CARE_LABEL_ROWS][n_vocab]: logits after a label's tokens */
    prefix_t **prefixes;   /* the prefix cache */
    size_t n_prefixes, cap_prefixes;
    uint64_t prefix_clock; /* bumped on every use, for LRU */
    qc_prefix_stats_t prefix_stats;
    struct cf_memo *cf;    /* content-free scores, by task (calibration) */
    size_t n_cf, next_cf;

    char err[256];
};

/* Label tokens run per forward call (rows of logits read after them). */
#define QC_CARE_LABEL_ROWS 8

/* Appends the ids of text (special tokens parsed or not) to *ids (*n of
 * them, realloc'd). */
qc_status care_append_ids(const qc_tokenizer_t *tok, const char *text, size_t len, int special, int32_t **ids,
                          size_t *n);

/* judge.c: the tasks, cache and buffers of label scoring, set up by
 * qc_care_new (the emotion task's prefix computed and kept), freed by
 * qc_care_free. The message of a failure goes into err. */
qc_status care_judges_init(qc_care_t *c, char *err, size_t err_size);
void care_judges_free(qc_care_t *c);

#endif
