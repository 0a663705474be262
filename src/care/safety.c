/* safety.c — the deterministic safety net: the matcher that reads a
 * compiled rule set (safety_rules.c reads the rules file,
 * data/safety-rules.txt, compiled in at build time; docs/safety.md).
 *
 * A message is urgent when one rule matches. A rule names a presentation
 * and up to four terms: a trigger and its co-signs; it matches when every
 * term is found in the text. A term is a group of phrases (any one will
 * do), or two groups whose phrases must meet in one clause ("medicine" with
 * "a whole bottle", "left side" with "weak"). Rules are checked in file
 * order, which settles the kind when several match: self-harm first (its
 * notice carries the crisis lines), then the specific emergencies before
 * the general ones.
 *
 * Phrases. English phrases match whole words ("son" is not in "reason"); a
 * trailing '*' lets a part be a word's beginning ("allerg*": allergy,
 * allergic); '~' joins parts that must follow each other in one clause with
 * at most GAP bytes between ("嘴~歪": 嘴角歪, 嘴也有点歪). Phrases are written
 * by family (face, speech, one side, call-and-no-answer, ingest-and-
 * chemical), not by sentence, so new wordings of the same sign are caught.
 *
 * Text. It is normalized first (safety_text.c: NFKC, case, invisible
 * characters, traditional characters, spelled-out letters, digits for
 * letters, hyphens; phrases the same way), then cut at three levels:
 *   1. clauses, at punctuation and at a space next to Chinese text;
 *   2. stretches, also at contrast and time-shift words (but, now, today, 但,
 *      可是, 不过, 只是, 现在, 今天, 这次);
 *   3. spans, also at joining words (and, also, then, 也, 还, 而且, 然后).
 *
 * Context. A phrase found in the text does not count when:
 *   - it is negated: one of 没/不/无/未 right before it, or a negation cue
 *     (no, not, never, don't, isn't, hasn't, without; 没有, 不是, 并不, 没想,
 *     从没, 不会, 不想 ...) at most 3 words / 4 Chinese characters before it
 *     in its span ("I don't want to hurt myself", "我不是想伤害自己", "hasn't
 *     had a seizure in three years"). A cue inside a wider expression is no
 *     negation ("是不是中风", "会不会", "没有任何征兆", "don't know", "no idea").
 *     Negation inside a phrase is part of the phrase ("I don't want to live",
 *     "not breathing", "叫不醒"), so it is never undone by this rule; but
 *     the later part of a '~' phrase is negated by a cue in the gap before
 *     it ("face isn't drooping" for face~droop*, "脸没歪" for 脸~歪);
 *   - its stretch speaks of the past or of recovery (used to, years ago, last
 *     year, as a teenager, improved, doing well; 以前, 曾经, 小时候, 去年, 有过,
 *     后遗症, 好多了, 就好了): "I used to self-harm as a teenager", "slurred
 *     speech after his stroke has improved", "我以前有过轻生的念头";
 *   - its stretch asks about a risk or a general case rather than reporting
 *     one (risk, side effect, warning signs, what to do if, asked if, can an;
 *     风险, 副作用, 说明书, 倾向, 怎么处理, 听说): "会增加自杀风险吗",
 *     "Does sertraline increase suicide risk?".
 *   - (for the rules that ask for it) the message is a joke or a figure of
 *     speech: "lol", "haha", "开玩笑" anywhere in it ("my boss is going to
 *     kill me lol"). Self-harm rules never ask: a joke about suicide is
 *     still answered with the crisis line.
 * A rule may keep only some of these checks (`context` in the file). An
 * `unless` group of a rule (accidental wording for a deliberate overdose, a
 * leg cramp for a child's 抽筋) is looked up without context. The cue lists
 * are the file's `cue` statements.
 *
 * The rules aim at what a triage nurse would send to emergency care at once,
 * and deliberately need a warning sign where a symptom alone is common and
 * usually benign: chest pain needs a warning sign (radiating pain, sweating,
 * pallor, breathlessness, crushing pressure); an allergy needs the throat,
 * tongue or breathing involved; slurred speech or a weak arm needs a sudden
 * onset or a second sign; a seizure needs to be a child's or happening now;
 * 抽筋 counts only for a child and not as a leg cramp; pills need an amount
 * ("a whole bottle", "吃了三遍") and chemicals a swallowing verb. Ordinary
 * worry ("I have a mild headache", "最近总是失眠", "胸口有点闷") matches nothing.
 * tests/test_safety.c lists messages each rule must and must not catch, and
 * measures the rules on data/safety-eval.jsonl and data/safety-holdout.jsonl. */
#include "care/safety.h"
#include "base/base.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ==== the text ==== */

enum { GAP = 30,                 /* most bytes between the parts of a '~' phrase */
       NEG_WORDS = 3, NEG_CHARS = 4 }; /* how far before a phrase a negation cue reaches */

typedef struct {
    const qc_safety_t *s;
    char *t;      /* normalized text */
    size_t n;     /* its length in bytes */
    unsigned *id; /* 3 × (n + 1): clause, stretch and span number of each byte */
} msg_t;

static int is_word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Whether word w (ASCII) or string w (Chinese) starts at t + i. */
static int word_at(const msg_t *m, size_t i, const char *w) {
    size_t k = strlen(w);
    if (i + k > m->n || memcmp(m->t + i, w, k)) return 0;
    if (!is_word_char(w[0])) return 1;
    return (i == 0 || !is_word_char(m->t[i - 1])) && !is_word_char(m->t[i + k]);
}

/* The level (1 clause, 2 stretch, 3 span) of a cut starting at t + i and its
 * length in *k, or 0 when none starts there. */
static int cut_at(const msg_t *m, size_t i, size_t *k) {
    const unsigned char *t = (const unsigned char *)m->t;
    unsigned char c = t[i];
    *k = 1;
    if (c && strchr(",!?;:()[]\"\n", c)) return 1;
    if (c == '.') return i > 0 && is_digit(t[i - 1]) && is_digit(t[i + 1]) ? 0 : 1;
    if (c == ' ') return (i > 0 && t[i - 1] >= 0x80) || t[i + 1] >= 0x80 ? 1 : 0;
    static const char *const marks[] = {"。", "、", "…", "—", "“", "”", "「", "」", "《", "》", NULL};
    for (const char *const *p = marks; *p; p++)
        if (!strncmp((const char *)t + i, *p, strlen(*p))) {
            *k = strlen(*p);
            return 1;
        }
    for (int level = 2; level <= 3; level++) {
        const sf_group_t *g = &m->s->cue[level == 2 ? SF_CUE_STRETCH_CUT : SF_CUE_SPAN_CUT];
        for (size_t w = 0; w < g->n; w++)
            if (word_at(m, i, g->p[w].part[0].s)) {
                *k = g->p[w].part[0].k;
                return level;
            }
    }
    return 0;
}

/* Cuts m->t into clauses, stretches and spans (m->id). -1 when out of memory. */
static int msg_cut(msg_t *m) {
    m->id = malloc(3 * (m->n + 1) * sizeof *m->id);
    if (!m->id) return -1;
    unsigned count[3] = {0, 0, 0};
    for (size_t i = 0, k; i <= m->n; i += k) {
        int level = i < m->n ? cut_at(m, i, &k) : (k = 1, 0);
        if (!level) k = 1;
        for (int l = level ? level : 4; l <= 3; l++) count[l - 1]++;
        for (size_t j = i; j < i + k && j <= m->n; j++)
            for (int l = 0; l < 3; l++) m->id[l * (m->n + 1) + j] = count[l];
    }
    return 0;
}

/* The first and one-past-last byte of the region (1 clause, 2 stretch,
 * 3 span) that holds byte i. */
static size_t region_start(const msg_t *m, int level, size_t i) {
    const unsigned *id = m->id + (size_t)(level - 1) * (m->n + 1);
    while (i > 0 && id[i - 1] == id[i]) i--;
    return i;
}
static size_t region_end(const msg_t *m, int level, size_t i) {
    const unsigned *id = m->id + (size_t)(level - 1) * (m->n + 1);
    size_t e = i;
    while (e < m->n && id[e] == id[i]) e++;
    return e;
}

/* ==== matching ==== */

/* Whether a unit of measure or time starts at t + i: a number a phrase
 * ends with counts things, so "took 10mg" or "took 12 hours" is no "took
 * {n>=8}". */
static int unit_at(const msg_t *m, size_t i) {
    static const char *const units[] = {
        "mg", "mcg", "ug", "ml", "g", "gram", "grams", "kg", "kgs", "lb", "lbs", "iu", "am", "pm", "hour",
        "hours", "hr", "hrs", "h", "min", "mins", "minute", "minutes", "sec", "secs", "seconds", "day", "days",
        "week", "weeks", "wk", "wks", "month", "months", "year", "years", "yr", "yrs", "yo", "times", "毫克",
        "毫升", "克", "公斤", "斤", "点", "岁", "天", "小时", "分钟", "次", "周", "个月", "年", "号", "pounds", "quid",
        "dollars", "euros", "bucks", "yuan", "元", "块", "steps", "calories", "kcal", NULL};
    for (const char *const *u = units; *u; u++) {
        size_t k = strlen(*u);
        if (i + k <= m->n && !memcmp(m->t + i, *u, k) && (!is_word_char((*u)[0]) || !is_word_char(m->t[i + k])))
            return 1;
    }
    return 0;
}

/* Whether part p matches at t + at, its end in *end. Bytes match
 * themselves; a number token a number of at least (or at most) its value
 * (digits, Chinese numerals or English number words), a space after it
 * optional; a part that ends with a number does not match a measure. */
static int part_at(const msg_t *m, const sf_part_t *p, size_t at, size_t *end) {
    size_t i = at;
    for (const char *s = p->s; *s;) {
        if (*s == SF_NUM) {
            char *close;
            int most = s[1] == '<';
            long bound = strtol(s + 1 + most, &close, 10), v;
            size_t e;
            s = close + 1;
            if ((v = sf_number_at(m->t, m->n, i, &e)) < 0 || (most ? v > bound : v < bound)) return 0;
            i = e;
            if (!*s && unit_at(m, i + (i < m->n && m->t[i] == ' '))) return 0;
            if (*s == ' ') s++;
            if (*s && i < m->n && m->t[i] == ' ') i++;
            continue;
        }
        if (i >= m->n || m->t[i] != *s) return 0;
        i++, s++;
    }
    *end = i;
    return 1;
}

/* The first place at or after `from` where part p matches: *at, *end. */
static int part_find(const msg_t *m, const sf_part_t *p, size_t from, size_t *at, size_t *end) {
    if (from > m->n) return 0;
    size_t lit = strcspn(p->s, "\x01");
    if (lit == p->k) {
        const char *q = strstr(m->t + from, p->s);
        if (!q) return 0;
        *at = (size_t)(q - m->t);
        *end = *at + p->k;
        return 1;
    }
    if (lit) {
        char pre[SF_PART];
        memcpy(pre, p->s, lit);
        pre[lit] = 0;
        for (const char *q = strstr(m->t + from, pre); q; q = strstr(q + 1, pre))
            if (part_at(m, p, (size_t)(q - m->t), end)) {
                *at = (size_t)(q - m->t);
                return 1;
            }
        return 0;
    }
    for (size_t i = from; i < m->n; i++)
        if (part_at(m, p, i, end)) {
            *at = i;
            return 1;
        }
    return 0;
}

/* Whether part p found at t[at, end) may stand there: whole words for
 * ASCII, and not the start of a longer compound ("blood" + " test"). */
static int part_fits(const msg_t *m, const sf_part_t *p, size_t at, size_t end) {
    const char *s = p->s;
    size_t k = p->k;
    if (is_word_char(s[0]) && at > 0 && is_word_char(m->t[at - 1])) return 0;
    if (p->prefix) return 1;
    if (is_word_char(s[k - 1]) && is_word_char(m->t[end])) return 0;
    for (size_t c = 0; c < m->s->n_compounds; c++) {
        const sf_compound_t *cp = &m->s->compounds[c];
        if (k >= cp->ka && !memcmp(s + k - cp->ka, cp->a, cp->ka) && !strncmp(m->t + end, cp->b, cp->kb))
            return 0;
    }
    return 1;
}

/* The first occurrence of ph that starts at or after `from` and ends by hi:
 * its start in *at, its end in *end, and (when parts is not NULL) where each
 * part starts and ends in parts[2j], parts[2j + 1]. Later parts follow the one before them
 * in the same clause, at most GAP bytes after it. */
static int next_match_at(const msg_t *m, const sf_phrase_t *ph, size_t from, size_t hi, size_t *at, size_t *end,
                         size_t *parts) {
    const unsigned *clause = m->id;
    const sf_part_t *pt = ph->part;
    size_t a, e;
    for (size_t f = from; part_find(m, &pt[0], f, &a, &e); f = a + 1) {
        if (e > hi) return 0;
        if (!part_fits(m, &pt[0], a, e)) continue;
        size_t e0 = e;
        int j = 1;
        for (; j < ph->n; j++) {
            size_t qa, qe, g = e;
            int found;
            while ((found = part_find(m, &pt[j], g, &qa, &qe)) && qa <= e + GAP && !part_fits(m, &pt[j], qa, qe))
                g = qa + 1;
            if (!found || qa > e + GAP || qe > hi || clause[qa] != clause[a]) break;
            if (parts) parts[2 * j] = qa, parts[2 * j + 1] = qe;
            e = qe;
        }
        if (j < ph->n) continue;
        if (parts) parts[0] = a, parts[1] = e0;
        *at = a;
        *end = e;
        return 1;
    }
    return 0;
}

static int next_match(const msg_t *m, const sf_phrase_t *ph, size_t from, size_t hi, size_t *at, size_t *end) {
    return next_match_at(m, ph, from, hi, at, end, NULL);
}

/* Whether the cue found at t + at (cue text c) sits inside one of the wider
 * expressions of `within` (NULL: none). */
static int inside(const msg_t *m, size_t at, const char *c, const sf_group_t *within) {
    for (size_t w = 0; within && w < within->n; w++) {
        const sf_part_t *e = &within->p[w].part[0];
        for (const char *o = strstr(e->s, c); o; o = strstr(o + 1, c)) {
            size_t off = (size_t)(o - e->s);
            if (at >= off && at - off + e->k <= m->n && !memcmp(m->t + at - off, e->s, e->k)) return 1;
        }
    }
    return 0;
}

/* Words (ASCII) and Chinese characters in t[a, b). */
static size_t units(const msg_t *m, size_t a, size_t b) {
    size_t u = 0;
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)m->t[i];
        if (c >= 0xC0 || (is_word_char((char)c) && (i == 0 || !is_word_char(m->t[i - 1])))) u++;
    }
    return u;
}

/* Whether a cue of the list occurs in t[lo, hi), not inside an `except`
 * expression; with near_at set, only a cue ending at most NEG_WORDS words /
 * NEG_CHARS characters before near_at counts. */
static int cue_in(const msg_t *m, const sf_group_t *cues, const sf_group_t *except, size_t lo, size_t hi,
                  const size_t *near_at) {
    for (size_t c = 0; c < cues->n; c++) {
        const sf_phrase_t *ph = &cues->p[c];
        size_t a, e;
        for (size_t from = lo; next_match(m, ph, from, hi, &a, &e); from = a + 1) {
            if (inside(m, a, ph->part[0].s, except)) continue;
            if (near_at && units(m, e, *near_at) > (is_word_char(ph->part[0].s[0]) ? NEG_WORDS : NEG_CHARS))
                continue;
            return 1;
        }
    }
    return 0;
}

/* Whether the phrase found at t[at, end) counts under the context checks
 * ctx: not negated, and its stretch neither past nor hypothetical (see the
 * header). */
/* Whether the text at t + at is negated: one of the negation-next cues right
 * before it, or a negation cue at most a few words before it since lo. */
static int negated_at(const msg_t *m, size_t lo, size_t at) {
    const sf_group_t *cue = m->s->cue;
    const sf_group_t *next = &cue[SF_CUE_NEGATION_NEXT];
    for (size_t i = 0; i < next->n; i++) {
        const char *n = next->p[i].part[0].s;
        size_t k = next->p[i].part[0].k;
        if (at >= k && !memcmp(m->t + at - k, n, k) && !inside(m, at - k, n, &cue[SF_CUE_NOT_NEGATION])) return 1;
    }
    return cue_in(m, &cue[SF_CUE_NEGATION], &cue[SF_CUE_NOT_NEGATION], lo, at, &at);
}

/* ph found at t[at, end), its parts where `parts` says (next_match_at;
 * NULL: not looked at): whether it counts under ctx. Under negation, a later
 * part of a '~' phrase must not be negated in the gap before it ("face
 * isn't drooping", "脸没歪"). */
static int counts(const msg_t *m, size_t at, size_t end, unsigned ctx, const sf_phrase_t *ph,
                  const size_t *parts) {
    const sf_group_t *cue = m->s->cue;
    if (ctx & SF_CTX_NEGATION) {
        if (negated_at(m, region_start(m, 3, at), at)) return 0;
        for (int j = 1; parts && j < ph->n; j++)
            if (negated_at(m, parts[2 * j - 1], parts[2 * j])) return 0;
    }
    size_t lo = region_start(m, 2, at), hi = region_end(m, 2, end - 1);
    if ((ctx & SF_CTX_PAST) && cue_in(m, &cue[SF_CUE_PAST], &cue[SF_CUE_NOT_PAST], lo, hi, NULL)) return 0;
    if ((ctx & SF_CTX_FIGURATIVE) && cue_in(m, &cue[SF_CUE_FIGURATIVE], NULL, 0, m->n, NULL)) return 0;
    if ((ctx & SF_CTX_HYPOTHETICAL) &&
        cue_in(m, &cue[SF_CUE_HYPOTHETICAL], &cue[SF_CUE_NOT_HYPOTHETICAL], lo, hi, NULL))
        return 0;
    return 1;
}

/* The first phrase of g found in t[lo, hi) that counts under ctx (0: any
 * occurrence), or NULL. */
static const sf_phrase_t *find_any(const msg_t *m, const sf_group_t *g, size_t lo, size_t hi, unsigned ctx,
                                   int use_ctx) {
    for (size_t p = 0; p < g->n; p++) {
        size_t a, e, st[2 * SF_PARTS];
        for (size_t from = lo; next_match_at(m, &g->p[p], from, hi, &a, &e, st); from = a + 1)
            if (!use_ctx || counts(m, a, e, ctx, &g->p[p], st)) return &g->p[p];
    }
    return NULL;
}

/* The phrase that satisfies term, or NULL. */
static const sf_phrase_t *term_find(const msg_t *m, const sf_term_t *term, unsigned ctx) {
    const sf_group_t *any = &m->s->groups[term->any];
    if (term->with < 0) return find_any(m, any, 0, m->n, ctx, 1);
    const sf_group_t *with = &m->s->groups[term->with];
    for (size_t p = 0; p < any->n; p++) {
        size_t a, e, st[2 * SF_PARTS];
        for (size_t from = 0; next_match_at(m, &any->p[p], from, m->n, &a, &e, st); from = a + 1)
            if (counts(m, a, e, ctx, &any->p[p], st) && find_any(m, with, region_start(m, 1, a), region_end(m, 1, e - 1), ctx, 1))
                return &any->p[p];
    }
    return NULL;
}

/* ==== what the second reader sees ==== */

/* The rules' knowledge as features of m: each phrase group found where it
 * counts ("G|chest-pain") or only where it does not (negated, past,
 * hypothetical: "g|chest-pain"); each cue list found ("c|past"). (The
 * triggers of the rules as features, "this rule's trigger counts", were
 * tried: the same cross-validated recall and false alarms, 2026-12-03.) */
static void msg_features(const msg_t *m, sf_lex_feat_fn fn, void *user) {
    static const char *const cue_name[SF_CUE_COUNT] = {"negation-next", "negation", NULL, "past", NULL,
                                                       "hypothetical", NULL, NULL, NULL, "child", "figurative"};
    const qc_safety_t *s = m->s;
    char f[160];
    for (size_t g = 0; g < s->n_groups; g++) {
        if (!find_any(m, &s->groups[g], 0, m->n, 0, 0)) continue; /* most groups: one plain look */
        int counted = find_any(m, &s->groups[g], 0, m->n, SF_CTX_DEFAULT, 1) != NULL;
        int k = snprintf(f, sizeof f, "%c|%s", counted ? 'G' : 'g', s->groups[g].name);
        if (k > 0 && (size_t)k < sizeof f) fn(user, f, (size_t)k);
    }
    for (int c = 0; c < SF_CUE_COUNT; c++) {
        if (!cue_name[c] || !find_any(m, &s->cue[c], 0, m->n, 0, 0)) continue;
        int k = snprintf(f, sizeof f, "c|%s", cue_name[c]);
        fn(user, f, (size_t)k);
    }
}

void sf_features(const qc_safety_t *s, const char *t, size_t n, sf_lex_feat_fn fn, void *user) {
    sf_lex_features(t, n, fn, user);
    msg_t m = {s, (char *)t, n, NULL};
    if (!msg_cut(&m)) msg_features(&m, fn, user);
    free(m.id);
}

/* ==== the rule sets ==== */

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT, lex_once = PTHREAD_ONCE_INIT;
static sf_lex_t *builtin_lex; /* the compiled-in weights, shared by every set that uses them */
static qc_status builtin_lex_st;
static char builtin_lex_err[256];

static void builtin_lex_make(void) {
    builtin_lex_st = sf_lex_parse((const char *)qc_safety_lex_txt, qc_safety_lex_txt_len, "builtin lexicon",
                                  &builtin_lex, builtin_lex_err, sizeof builtin_lex_err);
}

/* Gives s its second reader: the compiled-in one, path's, or none ("off"). */
static qc_status lex_open(qc_safety_t *s, const char *path, char *err, size_t err_size) {
    if (path && !strcmp(path, "off")) return 0;
    if (!path) {
        pthread_once(&lex_once, builtin_lex_make);
        if (builtin_lex_st) return qc_seterr(err, err_size, builtin_lex_st, "%s", builtin_lex_err);
        s->lex = builtin_lex;
        return 0;
    }
    size_t n;
    char *text = sf_read_file(path, &n, err, err_size);
    if (!text) return err && err_size && *err ? QC_ERR_IO : qc_seterr(err, err_size, QC_ERR_IO, "%s: cannot be read", path);
    qc_status st = sf_lex_parse(text, n, path, &s->lex_own, err, err_size);
    free(text);
    s->lex = s->lex_own;
    return st;
}
static qc_safety_t *builtin;
static _Atomic(const qc_safety_t *) in_use;

static void builtin_make(void) {
    qc_safety_t *s;
    if (!qc_safety_new(NULL, &s, NULL, 0)) builtin = s;
}

const qc_safety_t *qc_safety_current(void) {
    const qc_safety_t *s = atomic_load(&in_use);
    if (s) return s;
    pthread_once(&builtin_once, builtin_make);
    return builtin;
}

void qc_safety_use(const qc_safety_t *s) { atomic_store(&in_use, s); }

qc_status qc_safety_new(const qc_safety_config_t *cfg, qc_safety_t **out, char *err, size_t err_size) {
    *out = NULL;
    qc_safety_t *s = calloc(1, sizeof *s);
    if (!s) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    qc_status st;
    const char *path = cfg ? cfg->rules_path : NULL;
    if (cfg && cfg->rules_text) {
        st = sf_compile(s, cfg->rules_text, cfg->rules_len, path ? path : "rules", err, err_size);
    } else if (path) {
        size_t n;
        char *text = sf_read_file(path, &n, err, err_size);
        st = text ? sf_compile(s, text, n, path, err, err_size) : QC_ERR_IO;
        if (!text && err && err_size && !*err) qc_seterr(err, err_size, QC_ERR_IO, "%s: cannot be read", path);
        free(text);
    } else {
        st = sf_compile(s, (const char *)qc_safety_rules_txt, qc_safety_rules_txt_len, "builtin rules", err,
                        err_size);
    }
    if (!st) st = lex_open(s, cfg ? cfg->lexicon_path : NULL, err, err_size);
    if (!st) st = sf_set_numbers(s, cfg ? cfg->region : NULL, cfg ? cfg->numbers : NULL, err, err_size);
    if (st) {
        qc_safety_free(s);
        return st;
    }
    *out = s;
    return 0;
}

void qc_safety_free(qc_safety_t *s) {
    if (!s) return;
    sf_lex_free(s->lex_own);
    sf_clear(s);
    free(s);
}

size_t qc_safety_rule_count(const qc_safety_t *s) { return s ? s->n_rules : 0; }

/* ==== checking ==== */

/* sf_lex_score's features of a message already cut (msg_t). */
static void lex_features(const void *msg, sf_lex_feat_fn fn, void *user) {
    const msg_t *m = msg;
    sf_lex_features(m->t, m->n, fn, user);
    msg_features(m, fn, user);
}

/* The presentation id of a verdict of the second reader: "lexicon.KIND". */
static const char *lex_presentation(qc_urgent_t kind) {
    static const char *const ids[] = {NULL, "lexicon.cardiac", "lexicon.stroke", "lexicon.bleeding",
                                      "lexicon.breathing", "lexicon.anaphylaxis", "lexicon.poisoning",
                                      "lexicon.seizure", "lexicon.unconscious", "lexicon.self-harm",
                                      "lexicon.emergency", "lexicon.child", "lexicon.abuse"};
    return (unsigned)kind < sizeof ids / sizeof ids[0] ? ids[kind] : "lexicon";
}

enum { LEX_WINDOW = 2048, /* bytes of normalized text the second reader weighs at once */
       LEX_WINDOWS = 32 };  /* the most windows it reads (at least the first 32 KiB; the rules read all) */

/* Where a window that may end at hi (< n) had better end: after the last
 * space or punctuation of its last 256 bytes, else at a character's start. */
static size_t window_end(const char *t, size_t lo, size_t hi) {
    for (size_t i = hi; i > lo + LEX_WINDOW / 2 && i + 256 > hi; i--) {
        unsigned char c = (unsigned char)t[i - 1];
        if (c == ' ' || c == '.' || c == ',' || c == '!' || c == '?' || c == ';' || c == '\n') return i;
    }
    while (hi > lo && ((unsigned char)t[hi] & 0xC0) == 0x80) hi--;
    return hi;
}

/* r's presentation and child flag once the second reader found r->kind in whole. */
static void lex_verdict(const msg_t *whole, qc_safety_result_t *r) {
    r->presentation = lex_presentation(r->kind);
    r->child = r->kind == QC_URGENT_CHILD || find_any(whole, &whole->s->cue[SF_CUE_CHILD], 0, whole->n, 0, 0) != NULL;
}

/* The second reader on m, in windows of LEX_WINDOW bytes, each starting
 * 1 to 1.5 KiB after the last (so that they overlap by a quarter or more;
 * a message as long as those it learned from is read whole; a longer
 * one is read piece by piece, so that its length alone neither dilutes
 * nor piles up the evidence): urgent when one window is. It stops after
 * LEX_WINDOWS windows: each costs about as much as the rules on it. */
static void lex_check(const msg_t *whole, qc_safety_result_t *r) {
    const qc_safety_t *s = whole->s;
    if (whole->n <= LEX_WINDOW) { /* most messages: one window, the text the rules have just cut */
        sf_lex_score(s->lex, whole, lex_features, &r->kind, &r->term);
        if (r->kind) lex_verdict(whole, r);
        return;
    }
    for (size_t lo = 0, n_win = 0; lo < whole->n && n_win < LEX_WINDOWS; n_win++) {
        size_t hi = whole->n - lo <= LEX_WINDOW ? whole->n : window_end(whole->t, lo, lo + LEX_WINDOW);
        msg_t w = {s, malloc(hi - lo + 1), hi - lo, NULL}; /* a copy: the text may hold NUL bytes */
        if (w.t) memcpy(w.t, whole->t + lo, hi - lo), w.t[hi - lo] = 0;
        if (!w.t || msg_cut(&w)) {
            free(w.t);
            free(w.id);
            return;
        }
        sf_lex_score(s->lex, &w, lex_features, &r->kind, &r->term);
        if (r->kind) lex_verdict(whole, r);
        free(w.t);
        free(w.id);
        if (r->kind || hi == whole->n) return;
        size_t next = window_end(whole->t, lo, lo + (hi - lo) / 2 + LEX_WINDOW / 4);
        lo = next > lo ? next : hi;
    }
}

qc_safety_result_t qc_safety_match(const qc_safety_t *s, const char *text, size_t len) {
    qc_safety_result_t r = {QC_URGENT_NONE, NULL, NULL, "en", 0};
    if (!s) s = qc_safety_current();
    if (!s) return r;
    r.lang = sf_language(s, text, len);
    msg_t m = {s, NULL, 0, NULL};
    m.t = sf_normalize(s, text, len, &m.n);
    if (!m.t || msg_cut(&m)) goto done;
    for (size_t i = 0; i < s->n_rules && !r.kind; i++) {
        const sf_rule_t *rule = &s->rules[i];
        if (rule->unless >= 0 && find_any(&m, &s->groups[rule->unless], 0, m.n, 0, 0)) continue;
        const sf_phrase_t *first = NULL;
        int ok = 1;
        for (int g = 0; g < rule->n_need && ok; g++) {
            const sf_phrase_t *hit = term_find(&m, &rule->need[g], rule->ctx);
            if (!hit) ok = 0;
            else if (!first) first = hit;
        }
        if (ok) {
            r.kind = rule->kind;
            r.term = first->text;
            r.presentation = s->pres[rule->pres].id;
            r.child = rule->child || find_any(&m, &s->cue[SF_CUE_CHILD], 0, m.n, 0, 0) != NULL;
        }
    }
    if (!r.kind && s->lex) lex_check(&m, &r); /* no rule matched: the second reader weighs every word */
done:
    free(m.id);
    free(m.t);
    return r;
}

qc_safety_result_t qc_safety_check(const char *text, size_t len) { return qc_safety_match(NULL, text, len); }

const char *qc_urgent_name(qc_urgent_t kind) {
    static const char *const names[] = {"none",    "cardiac",   "stroke",  "bleeding",    "breathing",
                                        "anaphylaxis", "poisoning", "seizure", "unconscious", "self-harm",
                                        "emergency",   "child",     "abuse",       "model"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "unknown";
}
