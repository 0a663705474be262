/* fuzz_lex.c — the input as the safety net's second reader's weights
 * (`--safety-lexicon FILE`: qc_safety_new with a lexicon path, so
 * sf_read_file and sf_lex_parse of src/care/safety_lex.c read it as the
 * server does), on top of a small rules file of one rule (the built-in
 * rules take a tenth of a second to compile: a few runs a second). A file
 * that parses is then
 * used on a few fixed messages no rule matches (English, Chinese, numbers,
 * a long one read in windows) and on the input itself as a message.
 *
 * Checks: a refused file gives QC_ERR_FORMAT / QC_ERR_UNSUPPORTED (or
 * QC_ERR_NOMEM) with "FILE:" leading the message and no set; a result's
 * kind is one of the rules' kinds (never QC_URGENT_MODEL), with a term and
 * a presentation exactly when it fired, and a lexicon verdict's
 * presentation is "lexicon." and its kind's name. */
#include "fuzz_safety.h"

static const char rules[] = "qcare-safety-rules 1\nsource clinic\n    A clinic's protocol.\n"
                            "presentation clinic.purple\n    kind emergency\n    source clinic\n    title Zebra stripes\n"
                            "group purple\n    zebra stripe* | 斑马纹\ngroup fever\n    fever | 发烧\n"
                            "cue past\n    last year\nrule clinic.purple\n    trigger purple with fever\n";

static const char *const texts[] = {
    "my appointment is on tuesday, can I bring my son along",
    "孩子今天有点咳嗽，还能去上学吗",
    "took 2 of my 500mg tablets at 3pm, is that fine with 10 units of insulin",
    "zebra crossing near the 10楼 clinic, a fever last year",
};

static void check_result(const qc_safety_result_t *r) {
    FUZZ_CHECK(r->kind >= QC_URGENT_NONE && r->kind < QC_URGENT_MODEL, "kind %d", (int)r->kind);
    FUZZ_CHECK(!r->kind == !r->presentation, "kind %d with presentation %p", (int)r->kind, (const void *)r->presentation);
    if (r->presentation && !strncmp(r->presentation, "lexicon.", 8)) {
        FUZZ_CHECK(!strcmp(r->presentation + 8, qc_urgent_name(r->kind)), "presentation %s for kind %s",
                   r->presentation, qc_urgent_name(r->kind));
        if (r->term) fuzz_touch(r->term, strlen(r->term));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    qc_safety_config_t cfg = {.rules_text = rules, .rules_len = sizeof rules - 1, .lexicon_path = path};
    qc_safety_t *s = fuzz_safety_open(&cfg, path);
    if (!s) return 0;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        qc_safety_result_t r = qc_safety_match(s, texts[i], strlen(texts[i]));
        check_result(&r);
    }
    /* a long message: several windows */
    static char longer[6000];
    for (size_t i = 0; i + 1 < sizeof longer; i++) longer[i] = "the clinic on the second floor. zebra "[i % 38];
    qc_safety_result_t r = qc_safety_match(s, longer, sizeof longer - 1);
    check_result(&r);
    r = qc_safety_match(s, (const char *)data, size < 4096 ? size : 4096);
    check_result(&r);
    qc_safety_free(s);
    return 0;
}
