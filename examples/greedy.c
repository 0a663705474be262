/* greedy.c — the engine alone: load a model, greedy-decode 8 tokens. */
#include <qcare.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    char err[256];
    qc_model_t *m;
    qc_model_opts_t o = {.dtype = argc > 3 ? argv[3] : NULL}; /* NULL: the default */
    if (argc < 3 || qc_model_load(argv[1], &o, &m, err, sizeof err)) return fprintf(stderr, "%s\n", argc < 3 ? "usage: greedy MODEL PROMPT [DTYPE]" : err), 1;
    int32_t *ids, nv = qc_model_n_vocab(m);
    size_t n;
    qc_tokenizer_encode(qc_model_tokenizer(m), argv[2], strlen(argv[2]), QC_TOK_PARSE_SPECIAL, &ids, &n);
    qc_ctx_t *ctx = qc_ctx_new(m, 512, NULL);
    float *logits = malloc(nv * sizeof *logits);
    for (int step = 0; step < 8 && !qc_ctx_eval(ctx, ids, n, logits, QC_LOGITS_LAST); step++) {
        int32_t best = 0;
        for (int32_t i = 1; i < nv; i++) if (logits[i] > logits[best]) best = i;
        printf("%d ", best); /* the next token; feed it back in */
        ids[0] = best, n = 1;
    }
    printf("\n");
    qc_ctx_free(ctx), qc_model_free(m), free(ids), free(logits);
}
