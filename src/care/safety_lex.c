/* safety_lex.c — the safety net's second reader: a weighted lexicon of word
 * and character n-grams (a multinomial logistic regression over the notice
 * kinds), read after the rules when none of them matched. Where the rules
 * need a phrase of a family they hold, the lexicon adds up the evidence of
 * every word of the message ("the pills", "saved up", "tonight", "goodbye"
 * each weigh a little), so wordings no rule foresaw can still reach the
 * threshold. It needs no model and no network: the weights are data
 * (data/safety-lex.txt, compiled into the library like the rules, written
 * by `qcare safety-train` from labelled messages; docs/safety.md).
 *
 * Features, on the text as the rules read it (sf_normalize: NFKC, case,
 * invisible characters, traditional as simplified, spelled-out letters):
 * tokens are English words, single Chinese characters and numbers (a
 * number is its size class: "#1" for 1-2, "#3" for 3-9, "#10", "#100",
 * "#1000"), cut into clauses at punctuation; each token ("1|pills"), each
 * pair of neighbours in a clause ("2|saved up", "2|吃 了"), each three
 * neighbours of Chinese characters and numbers ("3|安 眠 药"), and each
 * English word's first five letters when it is longer ("p|breat"). A
 * feature counts once per message.
 *
 * File format (UTF-8 text, one statement a line, '#' comments):
 *   qcare-safety-lex 1
 *   threshold P          urgent when 1 - p(none) >= P (0 < P < 1)
 *   min-tokens N         messages of fewer tokens are not weighed (optional, default 0)
 *   classes NAME...      "none" first, then notice kinds (qc_urgent_name)
 *   bias W...            one weight per class
 *   f<TAB>FEATURE<TAB>K:W K:W ...   a feature's weights for classes K (0-based)
 */
#include "care/safety.h"
#include "base/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

struct sf_lex {
    double threshold;
    int min_tokens; /* fewer tokens than this: not weighed (left to the rules) */
    int n_class;
    qc_urgent_t kind[SF_LEX_CLASSES];
    float bias[SF_LEX_CLASSES];
    /* features: an open-addressing table of their hashes (0 = empty) */
    uint64_t *hash;
    uint32_t *first; /* per slot: its weights' first index in cls/w */
    uint16_t *count; /* per slot: how many */
    char **name;     /* per slot: the feature as written (for the result's term) */
    size_t cap;      /* slots, a power of two */
    size_t n_feat;
    uint8_t *cls;
    float *w;
    size_t n_w, cap_w;
};

/* ==== features ==== */

uint64_t sf_lex_hash(const char *s, size_t k) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < k; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ? h : 1;
}

static int is_word(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

static int is_cjk(utf8proc_int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x3134F);
}

enum { TOK_MAX = 64 };
typedef struct {
    char s[TOK_MAX];
    size_t k;
    int cjk; /* a Chinese character or a number: joins three-grams */
} tok_t;

static void emit2(sf_lex_feat_fn fn, void *user, const char *tag, const tok_t *a, const tok_t *b, const tok_t *c) {
    char f[3 + 3 * TOK_MAX + 2];
    size_t k = strlen(tag);
    memcpy(f, tag, k);
    memcpy(f + k, a->s, a->k), k += a->k;
    if (b) f[k++] = ' ', memcpy(f + k, b->s, b->k), k += b->k;
    if (c) f[k++] = ' ', memcpy(f + k, c->s, c->k), k += c->k;
    fn(user, f, k);
}

static void number_class(tok_t *t, const char *digits, size_t k) {
    while (k > 1 && *digits == '0') digits++, k--;
    const char *c = k >= 4 ? "#1000" : k == 3 ? "#100" : k == 2 ? "#10" : (*digits >= '3' ? "#3" : "#1");
    t->k = strlen(c);
    memcpy(t->s, c, t->k + 1);
    t->cjk = 1;
}

void sf_lex_features(const char *t, size_t n, sf_lex_feat_fn fn, void *user) {
    tok_t win[3];
    int have = 0; /* tokens of this clause in win (the last three) */
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)t[i];
        tok_t cur = {{0}, 0, 0};
        if (is_word(c)) {
            size_t j = i;
            while (j < n && is_word((unsigned char)t[j])) j++;
            size_t k = j - i, digits = 0;
            while (digits < k && t[i + digits] >= '0' && t[i + digits] <= '9') digits++;
            if (digits == k) number_class(&cur, t + i, k);
            else {
                cur.k = k < TOK_MAX - 1 ? k : TOK_MAX - 1;
                memcpy(cur.s, t + i, cur.k);
                if (k > 5) {
                    char p[2 + 5] = {'p', '|'};
                    memcpy(p + 2, t + i, 5);
                    fn(user, p, sizeof p);
                }
            }
            i = j;
        } else {
            utf8proc_int32_t cp;
            utf8proc_ssize_t len = utf8proc_iterate((const utf8proc_uint8_t *)t + i, (utf8proc_ssize_t)(n - i), &cp);
            if (len <= 0) len = 1, cp = -1;
            if (is_cjk(cp)) {
                memcpy(cur.s, t + i, (size_t)len);
                cur.k = (size_t)len;
                cur.cjk = 1;
            } else if (c != ' ') {
                have = 0; /* punctuation ends a clause; a space only a word */
            }
            i += (size_t)len;
            if (!cur.k) continue;
        }
        if (have == 3) win[0] = win[1], win[1] = win[2], have = 2;
        win[have++] = cur;
        emit2(fn, user, "1|", &win[have - 1], NULL, NULL);
        if (have >= 2) emit2(fn, user, "2|", &win[have - 2], &win[have - 1], NULL);
        if (have == 3 && win[0].cjk && win[1].cjk && win[2].cjk) emit2(fn, user, "3|", &win[0], &win[1], &win[2]);
    }
}

/* ==== the weights file ==== */

void sf_lex_free(sf_lex_t *x) {
    if (!x) return;
    for (size_t i = 0; i < x->cap; i++) free(x->name ? x->name[i] : NULL);
    free(x->hash);
    free(x->first);
    free(x->count);
    free(x->name);
    free(x->cls);
    free(x->w);
    free(x);
}

static qc_urgent_t kind_named(const char *s, size_t k) {
    for (int u = QC_URGENT_NONE; u < QC_URGENT_MODEL; u++) {
        const char *nm = qc_urgent_name((qc_urgent_t)u);
        if (strlen(nm) == k && !memcmp(nm, s, k)) return (qc_urgent_t)u;
    }
    return QC_URGENT_MODEL; /* not a kind the lexicon may give */
}

/* The slot of hash h: where it is, or the empty one where it would go. */
static size_t slot_of(const sf_lex_t *x, uint64_t h) {
    size_t i = (size_t)h & (x->cap - 1);
    while (x->hash[i] && x->hash[i] != h) i = (i + 1) & (x->cap - 1);
    return i;
}

/* Reads the floats of "W W ..." (n of them) from p; the count read. */
static int read_floats(const char *p, const char *end, float *out, int n) {
    int got = 0;
    while (p < end && got <= n) {
        while (p < end && *p == ' ') p++;
        if (p >= end) break;
        char *e;
        double v = strtod(p, &e);
        if (e == p || e > end || !isfinite(v)) return -1;
        if (got < n) out[got] = (float)v;
        got++;
        p = e;
    }
    return got;
}

qc_status sf_lex_parse(const char *text, size_t len, const char *name, sf_lex_t **out, char *err, size_t err_size) {
    *out = NULL;
    sf_lex_t *x = calloc(1, sizeof *x);
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    if (!x) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
    x->cap = 16;
    while (x->cap < 2 * lines) x->cap *= 2;
    x->hash = calloc(x->cap, sizeof *x->hash);
    x->first = calloc(x->cap, sizeof *x->first);
    x->count = calloc(x->cap, sizeof *x->count);
    x->name = calloc(x->cap, sizeof *x->name);
    qc_status st = 0;
    int line = 0, seen_magic = 0, seen_thr = 0, seen_bias = 0;
    if (!x->hash || !x->first || !x->count || !x->name) {
        st = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *q = p;
        p = nl ? nl + 1 : end;
        if (le > q && le[-1] == '\r') le--;
        if (q == le || *q == '#') continue;
#define BAD(...)                                                                                                \
    do {                                                                                                        \
        char why_[200];                                                                                         \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                                               \
        st = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s:%d: %s", name, line, why_);                            \
        goto fail;                                                                                              \
    } while (0)
        size_t k = (size_t)(le - q);
        if (!seen_magic) {
            if (k == 18 && !memcmp(q, "qcare-safety-lex 1", 18)) {
                seen_magic = 1;
                continue;
            }
            if (k > 17 && !memcmp(q, "qcare-safety-lex ", 17)) {
                st = qc_seterr(err, err_size, QC_ERR_UNSUPPORTED, "%s:%d: format version %.*s is not 1", name, line,
                               (int)(k - 17), q + 17);
                goto fail;
            }
            BAD("expected \"qcare-safety-lex 1\" first");
        }
        if (k > 10 && !memcmp(q, "threshold ", 10)) {
            char *e;
            double v = strtod(q + 10, &e);
            if (e != le || !(v > 0 && v < 1)) BAD("threshold: a number between 0 and 1 expected");
            x->threshold = v;
            seen_thr = 1;
        } else if (k > 11 && !memcmp(q, "min-tokens ", 11)) {
            char *e;
            long v = strtol(q + 11, &e, 10);
            if (e != le || v < 0 || v > 1000) BAD("min-tokens: a count from 0 to 1000 expected");
            x->min_tokens = (int)v;
        } else if (k > 8 && !memcmp(q, "classes ", 8)) {
            if (x->n_class) BAD("classes given twice");
            for (const char *c = q + 8; c < le;) {
                while (c < le && *c == ' ') c++;
                const char *ce = c;
                while (ce < le && *ce != ' ') ce++;
                if (ce == c) break;
                qc_urgent_t u = kind_named(c, (size_t)(ce - c));
                if (u == QC_URGENT_MODEL) BAD("unknown class '%.*s'", (int)(ce - c), c);
                if (x->n_class == SF_LEX_CLASSES) BAD("more than %d classes", SF_LEX_CLASSES);
                if ((x->n_class == 0) != (u == QC_URGENT_NONE)) BAD("\"none\" must be the first class, and only it");
                x->kind[x->n_class++] = u;
                c = ce;
            }
            if (x->n_class < 2) BAD("classes: \"none\" and at least one kind expected");
        } else if (k > 5 && !memcmp(q, "bias ", 5)) {
            if (!x->n_class) BAD("bias before classes");
            if (read_floats(q + 5, le, x->bias, x->n_class) != x->n_class) BAD("bias: %d numbers expected", x->n_class);
            seen_bias = 1;
        } else if (k > 2 && q[0] == 'f' && q[1] == '\t') {
            if (!x->n_class) BAD("a feature before classes");
            const char *fe = memchr(q + 2, '\t', (size_t)(le - q - 2));
            if (!fe || fe == q + 2) BAD("f<TAB>FEATURE<TAB>K:W ... expected");
            uint64_t h = sf_lex_hash(q + 2, (size_t)(fe - q - 2));
            size_t s = slot_of(x, h);
            if (x->hash[s]) BAD("feature given twice");
            x->hash[s] = h;
            x->first[s] = (uint32_t)x->n_w;
            x->name[s] = strndup(q + 2, (size_t)(fe - q - 2));
            if (!x->name[s]) {
                st = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
                goto fail;
            }
            x->n_feat++;
            for (const char *c = fe + 1; c < le;) {
                while (c < le && *c == ' ') c++;
                if (c >= le) break;
                char *e;
                long cls = strtol(c, &e, 10);
                if (e == c || e >= le || *e != ':' || cls < 0 || cls >= x->n_class) BAD("K:W with K a class index expected");
                const char *ws = e + 1;
                double v = strtod(ws, &e);
                if (e == ws || *ws == ' ' || e > le || (e < le && *e != ' ') || !isfinite(v)) BAD("K:W: a weight expected");
                if (x->n_w == x->cap_w) {
                    size_t nc = x->cap_w ? 2 * x->cap_w : 1024;
                    uint8_t *a = realloc(x->cls, nc);
                    if (a) x->cls = a;
                    float *b = a ? realloc(x->w, nc * sizeof *b) : NULL;
                    if (!b) {
                        st = qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
                        goto fail;
                    }
                    x->w = b;
                    x->cap_w = nc;
                }
                x->cls[x->n_w] = (uint8_t)cls;
                x->w[x->n_w++] = (float)v;
                if (++x->count[s] == 0) BAD("too many weights");
                c = e;
            }
        } else {
            BAD("unknown statement '%.*s'", (int)(k < 40 ? k : 40), q);
        }
#undef BAD
    }
    if (!seen_magic || !seen_thr || !x->n_class || !seen_bias) {
        st = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: %s missing", name,
                       !seen_magic ? "the first line \"qcare-safety-lex 1\"" : !seen_thr ? "threshold" :
                       !x->n_class ? "classes" : "bias");
        goto fail;
    }
    *out = x;
    return 0;
fail:
    sf_lex_free(x);
    return st;
}

/* ==== scoring ==== */

typedef struct {
    const sf_lex_t *x;
    uint64_t *seen; /* the features already counted (a message counts each once): an open-addressed set */
    size_t n_seen, cap_seen; /* cap_seen a power of two, kept at most half full */
    double z[SF_LEX_CLASSES];
    float top[SF_LEX_CLASSES]; /* per class: the largest weight added, and its feature */
    const char *top_name[SF_LEX_CLASSES];
    int tokens; /* token occurrences seen (each gives one "1|" feature) */
    int oom;
} score_t;

/* Adds h (never 0, which marks an empty slot) to sc's set; 0 if it was
 * there already (or memory ran out). */
static size_t seen_slot(uint64_t h, size_t cap) { return (size_t)(h ^ h >> 31) & (cap - 1); }

static int seen_add(score_t *sc, uint64_t h) {
    if (2 * (sc->n_seen + 1) > sc->cap_seen) {
        size_t nc = sc->cap_seen ? 2 * sc->cap_seen : 512;
        uint64_t *p = calloc(nc, sizeof *p);
        if (!p) {
            sc->oom = 1;
            return 0;
        }
        for (size_t i = 0; i < sc->cap_seen; i++) {
            if (!sc->seen[i]) continue;
            size_t j = seen_slot(sc->seen[i], nc);
            while (p[j]) j = (j + 1) & (nc - 1);
            p[j] = sc->seen[i];
        }
        free(sc->seen);
        sc->seen = p, sc->cap_seen = nc;
    }
    size_t j = seen_slot(h, sc->cap_seen);
    for (; sc->seen[j]; j = (j + 1) & (sc->cap_seen - 1))
        if (sc->seen[j] == h) return 0;
    sc->seen[j] = h;
    sc->n_seen++;
    return 1;
}

static void score_feat(void *user, const char *f, size_t k) {
    score_t *sc = user;
    const sf_lex_t *x = sc->x;
    uint64_t h = sf_lex_hash(f, k);
    sc->tokens += k > 2 && f[0] == '1' && f[1] == '|';
    if (!seen_add(sc, h)) return;
    size_t s = slot_of(x, h);
    if (!x->hash[s]) return;
    for (size_t j = x->first[s]; j < x->first[s] + x->count[s]; j++) {
        sc->z[x->cls[j]] += x->w[j];
        if (x->w[j] > sc->top[x->cls[j]]) sc->top[x->cls[j]] = x->w[j], sc->top_name[x->cls[j]] = x->name[s];
    }
}

double sf_lex_score(const sf_lex_t *x, const void *msg, sf_lex_source_fn produce, qc_urgent_t *kind,
                    const char **why) {
    *kind = QC_URGENT_NONE;
    if (why) *why = NULL;
    if (!x) return 0;
    score_t sc = {.x = x};
    for (int c = 0; c < x->n_class; c++) sc.z[c] = x->bias[c];
    produce(msg, score_feat, &sc);
    free(sc.seen);
    if (sc.oom || sc.tokens < x->min_tokens) return 0; /* a few words are the rules' to judge */
    double mx = sc.z[0], sum = 0;
    for (int c = 1; c < x->n_class; c++) mx = sc.z[c] > mx ? sc.z[c] : mx;
    for (int c = 0; c < x->n_class; c++) sum += exp(sc.z[c] - mx);
    double p_urgent = 1 - exp(sc.z[0] - mx) / sum;
    int best = 1;
    for (int c = 2; c < x->n_class; c++)
        if (sc.z[c] > sc.z[best]) best = c;
    if (p_urgent >= x->threshold) {
        *kind = x->kind[best];
        if (why) *why = sc.top_name[best];
    }
    return p_urgent;
}

double sf_lex_threshold(const sf_lex_t *x) { return x ? x->threshold : 1; }
