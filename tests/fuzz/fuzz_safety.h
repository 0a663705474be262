/* fuzz_safety.h — what fuzz_rules and fuzz_lex share: a safety set made
 * from a fuzzed file, with the checks a refusal must pass. */
#ifndef QC_FUZZ_SAFETY_H
#define QC_FUZZ_SAFETY_H

#include "fuzz.h"

#include "care/safety.h"

/* qc_safety_new(cfg): the set, or NULL when it refused the file at path —
 * then with QC_ERR_FORMAT / QC_ERR_UNSUPPORTED (or out of memory), no set,
 * and "PATH:" leading the message (aborts otherwise). */
static inline qc_safety_t *fuzz_safety_open(const qc_safety_config_t *cfg, const char *path) {
    qc_safety_t *s = (qc_safety_t *)1;
    char err[512] = "";
    qc_status st = qc_safety_new(cfg, &s, err, sizeof err);
    if (!st) return s;
    FUZZ_CHECK(!s, "a refused file left a set");
    FUZZ_CHECK(st == QC_ERR_FORMAT || st == QC_ERR_UNSUPPORTED || st == QC_ERR_NOMEM, "status %d (%s)", st, err);
    FUZZ_CHECK(!strncmp(err, path, strlen(path)) && err[strlen(path)] == ':', "message '%s'", err);
    return NULL;
}

#endif
