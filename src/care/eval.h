/* eval.h — metrics of an emotion classifier over a labelled data set:
 * confusion matrix, accuracy, per-class precision/recall/F1, macro-F1,
 * latency percentiles, and a self-contained HTML report. */
#ifndef QC_EVAL_H
#define QC_EVAL_H

#include <stddef.h>
#include <stdio.h>

#define QC_N_EMOTIONS 3 /* positive, negative, neutral: qc_emotion_name's order */

/* "positive", "negative", "neutral"; NULL outside [0, 3). */
const char *qc_emotion_name(int label);
/* The index of a label name, or -1. */
int qc_emotion_index(const char *name);

typedef struct {
    long cm[QC_N_EMOTIONS][QC_N_EMOTIONS]; /* [true label][predicted label] */
    double *latency_ms;                     /* one per example */
    size_t n, cap;
} qc_eval_t;

typedef struct {
    long n;
    double accuracy, macro_f1;
    double precision[QC_N_EMOTIONS], recall[QC_N_EMOTIONS], f1[QC_N_EMOTIONS];
    long support[QC_N_EMOTIONS];
    double p50_ms, p95_ms; /* nearest-rank percentiles */
} qc_eval_summary_t;

void qc_eval_init(qc_eval_t *e);
void qc_eval_free(qc_eval_t *e);
/* Records one example; -1 when out of memory or a label is out of range. */
int qc_eval_add(qc_eval_t *e, int truth, int predicted, double latency_ms);
/* Precision/recall/F1 of a class with no predictions / no examples are 0
 * (as scikit-learn's zero_division=0). */
void qc_eval_summarize(const qc_eval_t *e, qc_eval_summary_t *s);
/* One JSON object (no newline): n, accuracy, macro_f1, per_class, confusion,
 * latency_ms {p50, p95}. */
void qc_eval_write_json(FILE *f, const qc_eval_t *e, const qc_eval_summary_t *s);
/* A standalone HTML page: the metrics table and the confusion matrix as an
 * SVG heat map. title is HTML-escaped. 0 on success, -1 on a write error. */
int qc_eval_write_html(const char *path, const char *title, const qc_eval_t *e, const qc_eval_summary_t *s);

#endif
