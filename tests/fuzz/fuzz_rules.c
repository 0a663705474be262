/* fuzz_rules.c — the input as a safety rules file (`--safety-rules FILE`:
 * qc_safety_new with a rules path, so sf_read_file and sf_compile of
 * src/care/safety_rules.c read it as the server does). A set that compiles
 * is then matched (qc_safety_match, src/care/safety.c) against a few fixed
 * messages (English, Chinese, negated, folded, a number) and one made of its
 * own first rule's phrases, and its notices are written into buffers too
 * small now and then.
 *
 * Checks: a refused file gives QC_ERR_FORMAT / QC_ERR_UNSUPPORTED (or
 * QC_ERR_NOMEM) with "FILE:..." in the message and no set; a compiled set
 * has at least one rule; a match gives a kind of the rules (never
 * QC_URGENT_MODEL), a term and a presentation exactly when it fired, a
 * presentation the set defines, one of the three languages; a notice is
 * empty exactly when nothing fired, NUL-terminated inside its buffer, and
 * as long as the call says. */
#include "fuzz_safety.h"

static const char *const texts[] = {
    "I have crushing chest pain and my left arm is numb",
    "no chest pain, I used to self-harm but I'm fine now lol",
    "my baby is not breathing and her lips are blue",
    "我想自杀，吃了20片安眠药",
    "他說話不清楚，嘴歪了", /* traditional characters: folds */
    "zebra stripes and a fever of 40",
};

static void check_result(const qc_safety_t *s, const qc_safety_result_t *r) {
    FUZZ_CHECK(r->kind >= QC_URGENT_NONE && r->kind < QC_URGENT_MODEL, "kind %d", (int)r->kind);
    FUZZ_CHECK(!r->kind == !r->term && !r->kind == !r->presentation, "kind %d with term %p presentation %p",
               (int)r->kind, (const void *)r->term, (const void *)r->presentation);
    FUZZ_CHECK(r->lang && (!strcmp(r->lang, "en") || !strcmp(r->lang, "zh-Hans") || !strcmp(r->lang, "zh-Hant")),
               "language %s", r->lang ? r->lang : "(null)");
    if (r->presentation) {
        size_t k = 0;
        while (k < s->n_pres && strcmp(s->pres[k].id, r->presentation)) k++;
        FUZZ_CHECK(k < s->n_pres, "presentation '%s' is not the set's", r->presentation);
        fuzz_touch(r->term, strlen(r->term));
    }
    static const size_t caps[] = {0, 1, 7, 64, 4096};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        char out[4096];
        size_t cap = caps[i];
        memset(out, 'x', sizeof out);
        size_t n = qc_safety_notice_for(s, r, out, cap);
        FUZZ_CHECK(!n == !r->kind, "notice of %zu bytes for kind %d", n, (int)r->kind);
        if (cap) FUZZ_CHECK(strlen(out) == (n < cap ? n : cap - 1), "notice %zu bytes, said %zu (cap %zu)", strlen(out),
                            n, cap);
    }
}

/* The first phrase of each of the first rule's groups, one after the other. */
static size_t own_text(const qc_safety_t *s, char *out, size_t cap) {
    size_t n = 0;
    const sf_rule_t *r = &s->rules[0];
    for (int t = 0; t < r->n_need; t++) {
        int gs[2] = {r->need[t].any, r->need[t].with};
        for (int j = 0; j < 2; j++) {
            if (gs[j] < 0 || (size_t)gs[j] >= s->n_groups || !s->groups[gs[j]].n) continue;
            const sf_phrase_t *p = &s->groups[gs[j]].p[0];
            for (int k = 0; k < p->n; k++) {
                size_t len = strlen(p->part[k].s);
                FUZZ_CHECK(len == p->part[k].k, "part length %zu, said %zu", len, p->part[k].k);
                if (n + len + 2 > cap) return n;
                memcpy(out + n, p->part[k].s, len);
                n += len;
                out[n++] = ' ';
            }
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    qc_safety_config_t cfg = {.rules_path = path, .lexicon_path = "off"}; /* the rules alone: fuzz_lex reads the lexicon */
    qc_safety_t *s = fuzz_safety_open(&cfg, path);
    if (!s) return 0;
    FUZZ_CHECK(s && qc_safety_rule_count(s) >= 1, "a set without rules");
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        qc_safety_result_t r = qc_safety_match(s, texts[i], strlen(texts[i]));
        check_result(s, &r);
    }
    char own[512];
    size_t n = own_text(s, own, sizeof own);
    qc_safety_result_t r = qc_safety_match(s, own, n);
    check_result(s, &r);
    qc_safety_free(s);
    return 0;
}
