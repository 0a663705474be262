/* api_classify.c — POST /v1/classify: label scoring for caller-given
 * labels (qcare_care.h, "label scoring").
 *
 *   {"text": T, "labels": [L, ...], "instruction"?: S,
 *    "examples"?: [{"text": T, "label": L}, ...], "calibrate"?: bool,
 *    "normalize"?: "sum" | "mean"}
 *   -> {"labels": [{"label", "probability", "loglik", "tokens"}, ...], "top": L, ...}
 *
 * The request is checked and tokenized here, on the connection's thread
 * (qc_labels_new and qc_labels_turn use only the tokenizer), so every bad
 * input is a 400 before anything is queued; the judgment itself rides in
 * the scheduler's passes (QS_CLASSIFY), its prefix cached across calls. */
#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    qs_call_t c;
    char *text;
    qc_labels_t *t;
    qc_scores_t sc;
} classify_call_t;

static void classify_clear(qs_call_t *c) {
    classify_call_t *k = (classify_call_t *)c;
    free(k->text);
    qc_labels_free(k->t);
}

static void on_scores(void *user, const qc_scores_t *sc) {
    classify_call_t *k = user;
    pthread_mutex_lock(&k->c.mu);
    k->sc = *sc;
    pthread_mutex_unlock(&k->c.mu);
}

static void on_classify_done(void *user, qc_status st, const char *msg, size_t n_prompt, size_t n_out, int hit_max) {
    (void)hit_max;
    qs_call_t *c = user;
    qs_call_end(c, st, &msg, n_prompt, n_out);
    qs_call_finish(c);
}

static enum MHD_Result classify_answer(qs_call_t *c, struct MHD_Connection *con, qs_req_t *r) {
    classify_call_t *k = (classify_call_t *)c;
    char *js = qc_scores_json(k->t, &k->sc);
    if (!js) return qs_reply_error(con, r, 500, "out of memory");
    return qs_reply_bytes(con, r, 200, js, strlen(js), MHD_RESPMEM_MUST_FREE, QS_JSON_TYPE, NULL, NULL);
}

/* The task of the request: labels, instruction, examples, calibrate,
 * normalize, checked and tokenized. NULL with the reason in msg. */
static qc_labels_t *parse_task(qc_server_t *s, json_t *b, char *msg, size_t n) {
    json_t *labels = json_object_get(b, "labels"), *examples = json_object_get(b, "examples");
    const char *names[QC_LABELS_MAX], *instruction = NULL, *norm = NULL;
    size_t nl = json_is_array(labels) ? json_array_size(labels) : 0;
    if (!json_is_array(labels) || nl < 2 || nl > QC_LABELS_MAX) {
        snprintf(msg, n, "\"labels\" must be an array of 2 to %d strings", QC_LABELS_MAX);
        return NULL;
    }
    for (size_t i = 0; i < nl; i++)
        if (!(names[i] = json_string_value(json_array_get(labels, i)))) {
            snprintf(msg, n, "labels[%zu] must be a string", i);
            return NULL;
        }
    qc_labels_spec_t sp = {.labels = names, .n_labels = nl};
    if (qs_get_string(b, "instruction", &instruction, NULL, msg, n) < 0 ||
        qs_get_bool(b, "calibrate", &sp.calibrate, msg, n) < 0 || qs_get_string(b, "normalize", &norm, NULL, msg, n) < 0)
        return NULL;
    if (norm && strcmp(norm, "sum") && strcmp(norm, "mean")) {
        snprintf(msg, n, "\"normalize\" must be \"sum\" or \"mean\"");
        return NULL;
    }
    sp.instruction = instruction;
    sp.mean = norm && !strcmp(norm, "mean");
    if (examples && !json_is_null(examples) && !json_is_array(examples)) {
        snprintf(msg, n, "\"examples\" must be an array of {\"text\", \"label\"} objects");
        return NULL;
    }
    sp.n_examples = json_is_array(examples) ? json_array_size(examples) : 0;
    qc_example_t *ex = sp.n_examples ? calloc(sp.n_examples, sizeof *ex) : NULL;
    if (sp.n_examples && !ex) {
        snprintf(msg, n, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < sp.n_examples; i++) {
        json_t *e = json_array_get(examples, i);
        ex[i].text = json_string_value(json_object_get(e, "text"));
        ex[i].label = json_string_value(json_object_get(e, "label"));
        if (!ex[i].text || !ex[i].label) {
            snprintf(msg, n, "examples[%zu] must be an object with \"text\" and \"label\" strings", i);
            free(ex);
            return NULL;
        }
    }
    sp.examples = ex;
    qc_labels_t *t = NULL;
    qc_labels_new(s->m, &sp, s->n_ctx, &t, msg, n);
    free(ex);
    return t;
}

qs_call_t *qs_classify_parse(qc_server_t *s, qs_req_t *r, int *status, char *msg, size_t n) {
    *status = 400;
    json_t *b = qs_parse_body(r, msg, n);
    if (!b) return NULL;
    const char *text = NULL;
    size_t len = 0, n_ids = 0;
    int has = qs_get_string(b, "text", &text, &len, msg, n);
    qc_labels_t *t = NULL;
    int32_t *ids = NULL;
    qs_call_t *c = NULL;
    if (has <= 0 || len == 0) {
        if (has >= 0) snprintf(msg, n, "\"text\" (a non-empty string) is required");
        goto done;
    }
    if (!(t = parse_task(s, b, msg, n)) || qc_labels_turn(t, text, len, s->n_ctx, &ids, &n_ids, msg, n)) goto done;
    c = qs_call_new(s, sizeof(classify_call_t), classify_clear, QS_CLASSIFY, 0);
    classify_call_t *k = (classify_call_t *)c;
    if (!c || !(k->text = strndup(text, len))) {
        qs_call_free(c);
        c = NULL;
        *status = 500;
        snprintf(msg, n, "out of memory");
        goto done;
    }
    k->t = t;
    t = NULL;
    c->rq.text = k->text;
    c->rq.labels = k->t;
    c->rq.on_scores = on_scores;
    c->rq.on_done = on_classify_done;
done:
    free(ids);
    qc_labels_free(t);
    json_decref(b);
    return c;
}

static enum MHD_Result v1_classify(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    char msg[512];
    int status;
    qs_call_t *c = qs_classify_parse(s, r, &status, msg, sizeof msg);
    if (!c) return qs_reply_error(con, r, (unsigned)status, "%s", msg);
    return qs_call_submit(con, r, c, classify_answer);
}

const qs_route_t qs_classify_routes[] = {
    {"/v1/classify", "POST", 0, v1_classify, 0},
    {0},
};
