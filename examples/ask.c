/* ask.c — the care pipeline alone, as `qcare ask` runs it: the emotion, the
 * urgent-care notice when the message needs one, then a short streamed reply. */
#include <qcare_care.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int on_piece(void *user, int32_t id, const char *piece, size_t len) {
    (void)user, (void)id;
    fwrite(piece, 1, len, stdout);
    return 0; /* non-zero stops the reply */
}

int main(int argc, char **argv) {
    char err[256], notice[2048];
    qc_model_t *m;
    qc_care_t *care;
    qc_model_opts_t o = {.n_threads = argc > 3 ? atoi(argv[3]) : 0}; /* 0: one per core */
    if (argc < 3 || qc_model_load(argv[1], &o, &m, err, sizeof err)) return fprintf(stderr, "%s\n", argc < 3 ? "usage: ask MODEL TEXT [THREADS]" : err), 1;
    if (qc_care_new(m, NULL, &care, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    const char *msg = argv[2];
    qc_emotion_t e;
    if (qc_care_emotion(care, msg, strlen(msg), &e)) return fprintf(stderr, "%s\n", qc_care_errmsg(care)), 1;
    printf("emotion: %s (positive %.2f, negative %.2f, neutral %.2f)\n", qc_emotion_name(e.label), e.probs[0], e.probs[1], e.probs[2]);
    qc_safety_result_t s = qc_safety_check(msg, strlen(msg));
    if (s.kind) qc_safety_notice_for(NULL, &s, notice, sizeof notice), printf("%s\n", notice); /* before any model text */
    int rc = qc_care_reply(care, msg, e.label, NULL, 16, on_piece, NULL) != QC_OK;
    printf("\n");
    qc_care_free(care), qc_model_free(m);
    return rc;
}
