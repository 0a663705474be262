/* eval.c — classifier metrics and the HTML report (see eval.h). */
#include "care/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[QC_N_EMOTIONS] = {"positive", "negative", "neutral"};

const char *qc_emotion_name(int label) { return label >= 0 && label < QC_N_EMOTIONS ? names[label] : NULL; }

int qc_emotion_index(const char *name) {
    for (int i = 0; i < QC_N_EMOTIONS; i++)
        if (name && !strcmp(name, names[i])) return i;
    return -1;
}

void qc_eval_init(qc_eval_t *e) { memset(e, 0, sizeof *e); }

void qc_eval_free(qc_eval_t *e) {
    if (!e) return;
    free(e->latency_ms);
    memset(e, 0, sizeof *e);
}

int qc_eval_add(qc_eval_t *e, int truth, int predicted, double latency_ms) {
    if (truth < 0 || truth >= QC_N_EMOTIONS || predicted < 0 || predicted >= QC_N_EMOTIONS) return -1;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        double *p = realloc(e->latency_ms, cap * sizeof *p);
        if (!p) return -1;
        e->latency_ms = p;
        e->cap = cap;
    }
    e->latency_ms[e->n++] = latency_ms;
    e->cm[truth][predicted]++;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile q (0..1) of sorted v[0..n). */
static double percentile(const double *v, size_t n, double q) {
    if (n == 0) return 0;
    size_t rank = (size_t)ceil(q * (double)n);
    return v[rank > 0 ? rank - 1 : 0];
}

void qc_eval_summarize(const qc_eval_t *e, qc_eval_summary_t *s) {
    memset(s, 0, sizeof *s);
    long correct = 0;
    for (int t = 0; t < QC_N_EMOTIONS; t++)
        for (int p = 0; p < QC_N_EMOTIONS; p++) {
            s->n += e->cm[t][p];
            if (t == p) correct += e->cm[t][p];
        }
    s->accuracy = s->n ? (double)correct / s->n : 0;
    for (int c = 0; c < QC_N_EMOTIONS; c++) {
        long tp = e->cm[c][c], pred = 0, actual = 0;
        for (int k = 0; k < QC_N_EMOTIONS; k++) {
            pred += e->cm[k][c];
            actual += e->cm[c][k];
        }
        s->support[c] = actual;
        s->precision[c] = pred ? (double)tp / pred : 0;
        s->recall[c] = actual ? (double)tp / actual : 0;
        double pr = s->precision[c] + s->recall[c];
        s->f1[c] = pr > 0 ? 2 * s->precision[c] * s->recall[c] / pr : 0;
        s->macro_f1 += s->f1[c] / QC_N_EMOTIONS;
    }
    double *sorted = e->n ? malloc(e->n * sizeof *sorted) : NULL;
    if (sorted) {
        memcpy(sorted, e->latency_ms, e->n * sizeof *sorted);
        qsort(sorted, e->n, sizeof *sorted, cmp_double);
        s->p50_ms = percentile(sorted, e->n, 0.50);
        s->p95_ms = percentile(sorted, e->n, 0.95);
        free(sorted);
    }
}

void qc_eval_write_json(FILE *f, const qc_eval_t *e, const qc_eval_summary_t *s) {
    fprintf(f, "{\"n\": %ld, \"accuracy\": %.4f, \"macro_f1\": %.4f, \"per_class\": {", s->n, s->accuracy,
            s->macro_f1);
    for (int c = 0; c < QC_N_EMOTIONS; c++)
        fprintf(f, "%s\"%s\": {\"precision\": %.4f, \"recall\": %.4f, \"f1\": %.4f, \"support\": %ld}",
                c ? ", " : "", names[c], s->precision[c], s->recall[c], s->f1[c], s->support[c]);
    fprintf(f, "}, \"labels\": [\"positive\", \"negative\", \"neutral\"], \"confusion\": [");
    for (int t = 0; t < QC_N_EMOTIONS; t++)
        fprintf(f, "%s[%ld, %ld, %ld]", t ? ", " : "", e->cm[t][0], e->cm[t][1], e->cm[t][2]);
    fprintf(f, "], \"latency_ms\": {\"p50\": %.2f, \"p95\": %.2f}}", s->p50_ms, s->p95_ms);
}

static void html_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

int qc_eval_write_html(const char *path, const char *title, const qc_eval_t *e, const qc_eval_summary_t *s) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", f);
    html_escape(f, title);
    fputs("</title>\n<style>body{font-family:system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em;"
          "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.35em .7em;"
          "text-align:right}th{background:#f4f4f4}</style></head><body>\n<h1>",
          f);
    html_escape(f, title);
    fprintf(f, "</h1>\n<p>%ld messages &middot; accuracy <b>%.1f%%</b> &middot; macro-F1 <b>%.3f</b> &middot; "
               "latency p50 %.1f ms, p95 %.1f ms</p>\n",
            s->n, 100 * s->accuracy, s->macro_f1, s->p50_ms, s->p95_ms);
    fputs("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>\n", f);
    for (int c = 0; c < QC_N_EMOTIONS; c++)
        fprintf(f, "<tr><th>%s</th><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%ld</td></tr>\n", names[c],
                s->precision[c], s->recall[c], s->f1[c], s->support[c]);
    fputs("</table>\n<h2>Confusion matrix</h2>\n<p>Rows: true label; columns: predicted. Colour: share of the "
          "row.</p>\n",
          f);
    const int cell = 110, left = 110, top = 40;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" "
               "aria-label=\"confusion matrix\" font-family=\"system-ui,sans-serif\">\n",
            left + 3 * cell + 10, top + 3 * cell + 40);
    for (int c = 0; c < QC_N_EMOTIONS; c++) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"14\">%s</text>\n",
                left + c * cell + cell / 2, top - 12, names[c]);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"14\">%s</text>\n", left - 10,
                top + c * cell + cell / 2 + 5, names[c]);
    }
    for (int t = 0; t < QC_N_EMOTIONS; t++) {
        long row = e->cm[t][0] + e->cm[t][1] + e->cm[t][2];
        for (int p = 0; p < QC_N_EMOTIONS; p++) {
            double share = row ? (double)e->cm[t][p] / row : 0;
            int shade = 255 - (int)lround(share * 200); /* white to deep blue */
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,255)\" "
                       "stroke=\"#fff\"/>\n",
                    left + p * cell, top + t * cell, cell, cell, shade, shade);
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"20\" fill=\"%s\">%ld</text>\n",
                    left + p * cell + cell / 2, top + t * cell + cell / 2 + 7, share > 0.6 ? "#fff" : "#222",
                    e->cm[t][p]);
        }
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">predicted</text>\n</svg>\n",
            left + 3 * cell / 2, top + 3 * cell + 28);
    fputs("</body></html>\n", f);
    return fclose(f) == 0 ? 0 : -1;
}
