/* safety.h — the safety net's inside: a compiled rule set (qc_safety_t),
 * shared by the rules-file parser (safety_rules.c), the matcher (safety.c)
 * and the notices (safety_notice.c). The public API is in
 * include/qcare_care.h; the file format in docs/safety.md. */
#ifndef QC_SAFETY_H
#define QC_SAFETY_H

#include "qcare_care.h"

#include <stddef.h>
#include <stdint.h>

/* The rules compiled into the binary: data/safety-rules.txt, embedded by
 * tools/embed.c at build time (NUL-terminated; _len without the NUL). */
extern const unsigned char qc_safety_rules_txt[];
extern const unsigned long qc_safety_rules_txt_len;

enum {
    SF_PARTS = 4, /* most '~'-joined parts of a phrase */
    SF_PART = 48, /* longest part, in bytes, after normalization (with its NUL) */
    SF_TERMS = 4  /* a rule's trigger and at most three co-signs */
};

/* One part of a phrase, normalized as message text is. A number token in
 * the file ("{n}", "{n>=10}", "{n<=3}") is kept between two SF_NUM bytes:
 * the least value as text, or '<' and the greatest ("\x01" "10" "\x01"). */
#define SF_NUM '\x01'
typedef struct {
    const char *s; /* NUL-terminated */
    size_t k;      /* its length */
    int prefix;    /* it was written with a trailing '*': a word's beginning */
} sf_part_t;

typedef struct {
    sf_part_t part[SF_PARTS];
    int n;
    const char *text; /* as written in the file (reported as the result's term) */
} sf_phrase_t;

typedef struct {
    const char *name;
    sf_phrase_t *p;
    size_t n, cap;
    int line; /* where it was first defined */
} sf_group_t;

/* The context cue lists (`cue KIND` in the file). */
enum {
    SF_CUE_NEGATION_NEXT, /* negate the phrase right after them */
    SF_CUE_NEGATION,      /* negate a phrase a few words after them in its span */
    SF_CUE_NOT_NEGATION,  /* wider expressions a negation cue may sit in without negating */
    SF_CUE_PAST,          /* the stretch tells of the past or a recovery */
    SF_CUE_NOT_PAST,      /* wider expressions a past cue may sit in */
    SF_CUE_HYPOTHETICAL,  /* the stretch asks about a risk or a general case */
    SF_CUE_NOT_HYPOTHETICAL, /* wider expressions a hypothetical cue may sit in ("not sure if my") */
    SF_CUE_STRETCH_CUT,   /* words that end a stretch */
    SF_CUE_SPAN_CUT,      /* words that end a span */
    SF_CUE_CHILD,         /* the message is about a child */
    SF_CUE_FIGURATIVE,    /* the message is a joke or a figure of speech ("lol", "开玩笑") */
    SF_CUE_COUNT
};

/* The context checks a rule applies (`context` in the file). */
enum { SF_CTX_NEGATION = 1, SF_CTX_PAST = 2, SF_CTX_HYPOTHETICAL = 4, SF_CTX_FIGURATIVE = 8,
       SF_CTX_DEFAULT = 7 /* figurative only where a rule asks for it */ };

enum { SF_LANG_ANY, SF_LANG_EN, SF_LANG_ZH };

typedef struct {
    int any, with; /* a phrase of group `any` ... and, when with >= 0, one of group `with` in its clause */
} sf_term_t;

typedef struct {
    int pres;       /* index into presentations */
    qc_urgent_t kind;
    int lang;       /* SF_LANG_* */
    sf_term_t need[SF_TERMS];
    int n_need;     /* need[0] is the trigger, the rest co-signs; all must match */
    int unless;     /* a group (found without context) that stops the rule, or -1 */
    unsigned ctx;   /* SF_CTX_* */
    int child;      /* the rule is about a child */
    int line;
} sf_rule_t;

typedef struct {
    const char *id, *title;
    qc_urgent_t kind;
    const char *sources; /* source ids, space-separated */
    int line;
} sf_pres_t;

typedef struct {
    const char *id, *text;
    int line;
} sf_source_t;

typedef struct {
    const char *a, *b; /* a phrase ending in a does not end where the text goes on with b */
    size_t ka, kb;
} sf_compound_t;

typedef struct {
    uint32_t from, to; /* code points: a character read as another (traditional as simplified) */
    int script;        /* a traditional-to-simplified fold (counts for zh-Hant), not a dialect's word */
} sf_fold_t;

typedef struct sf_chunk sf_chunk_t;

/* ==== the second reader (safety_lex.c) ====
 * A weighted lexicon of n-grams over the notice kinds, read when no rule
 * matched: urgent when its probability of "some kind" reaches the file's
 * threshold. */
enum { SF_LEX_CLASSES = 16 };
typedef struct sf_lex sf_lex_t;

/* The compiled-in weights: data/safety-lex.txt (embedded like the rules). */
extern const unsigned char qc_safety_lex_txt[];
extern const unsigned long qc_safety_lex_txt_len;

/* Calls fn once for each feature occurrence of normalized text t (n bytes;
 * a feature may come more than once). */
typedef void (*sf_lex_feat_fn)(void *user, const char *f, size_t k);
void sf_lex_features(const char *t, size_t n, sf_lex_feat_fn fn, void *user);
/* The 64-bit hash a feature is known by (never 0). */
uint64_t sf_lex_hash(const char *s, size_t k);
/* Parses a weights file (format at the top of safety_lex.c); 0, or a status
 * with "NAME:LINE: reason" in err. *out: free with sf_lex_free. */
qc_status sf_lex_parse(const char *text, size_t len, const char *name, sf_lex_t **out, char *err, size_t err_size);
void sf_lex_free(sf_lex_t *x);
/* Every feature the second reader weighs in normalized text t: its n-grams
 * (sf_lex_features) and what the rules of s find in it (safety.c). */
void sf_features(const qc_safety_t *s, const char *t, size_t n, sf_lex_feat_fn fn, void *user);
/* The probability that a message is urgent, from the features that
 * produce(msg, ...) gives; *kind the kind when it reaches the threshold
 * (else QC_URGENT_NONE) and *why (may be NULL) the feature that weighed
 * most for it, owned by x. */
typedef void (*sf_lex_source_fn)(const void *msg, sf_lex_feat_fn fn, void *user);
double sf_lex_score(const sf_lex_t *x, const void *msg, sf_lex_source_fn produce, qc_urgent_t *kind,
                    const char **why);
double sf_lex_threshold(const sf_lex_t *x);

struct qc_safety {
    sf_chunk_t *arena; /* every string of the set */
    sf_group_t *groups;
    size_t n_groups, cap_groups;
    sf_group_t cue[SF_CUE_COUNT];
    sf_compound_t *compounds;
    size_t n_compounds, cap_compounds;
    sf_fold_t *folds; /* sorted by from */
    size_t n_folds, cap_folds;
    sf_pres_t *pres;
    size_t n_pres, cap_pres;
    sf_source_t *sources;
    size_t n_sources, cap_sources;
    sf_rule_t *rules;
    size_t n_rules, cap_rules;
    const sf_lex_t *lex; /* the second reader; NULL: none */
    sf_lex_t *lex_own;   /* lex when this set loaded it (else the shared compiled-in one) */
    /* the numbers of the notices (safety_notice.c); NULL: not configured */
    const char *emergency, *police, *crisis, *poison, *abuse, *region;
};

/* Compiles rules text (len bytes, named `name` in messages) into s, which
 * must be zeroed; `builtin` says whether `use builtin` may appear. 0, or a
 * status with "NAME:LINE: reason" in err. s is left for sf_clear either way. */
qc_status sf_compile(qc_safety_t *s, const char *text, size_t len, const char *name, char *err, size_t err_size);
/* Frees what s holds (not s). */
void sf_clear(qc_safety_t *s);
/* A copy of n bytes of p (NUL added) in s's arena; NULL when out of memory. */
char *sf_strndup(qc_safety_t *s, const char *p, size_t n);

/* Reads a whole regular file of at most 4 MiB (NUL-terminated, caller
 * frees); NULL with the reason in err. */
char *sf_read_file(const char *path, size_t *len, char *err, size_t err_size);

/* Normalizes text as the matcher reads it (see safety.c): a fresh string
 * (caller frees) and its length, or NULL when out of memory. */
char *sf_normalize(const qc_safety_t *s, const char *text, size_t len, size_t *out_len);

/* The value of the number that starts at t + i (ASCII digits, Chinese
 * numerals, English number words), its end in *end; -1 when none starts
 * there. */
long sf_number_at(const char *t, size_t n, size_t i, size_t *end);

/* The message's language for its notice: "en", "zh-Hans" or "zh-Hant". */
const char *sf_language(const qc_safety_t *s, const char *text, size_t len);

/* Sets the notice numbers of s from a region and an override list
 * (safety_notice.c). 0, or QC_ERR_ARG with the reason in err. */
qc_status sf_set_numbers(qc_safety_t *s, const char *region, const char *numbers, char *err, size_t err_size);

#endif
