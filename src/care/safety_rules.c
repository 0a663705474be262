/* safety_rules.c — the rules file: reads it into a compiled rule set
 * (qc_safety_t, safety.h), refusing a malformed file with its line and the
 * reason. The format is described in docs/safety.md and at the top of
 * data/safety-rules.txt (the rules compiled into the binary); in short:
 *
 *   qcare-safety-rules 1            first statement: the format and its version
 *   use builtin                     (optional, second) start from the compiled-in rules
 *   source ID                       a citation; body: its text
 *   presentation ID                 body: kind KIND, source ID..., title TEXT
 *   group NAME                      body: phrases, '|' between them; @NAME adds a group
 *   cue KIND                        a context list (negation, past, ...): phrases
 *   compound                        body: A + B: a phrase ending in A does not end before B
 *   fold                            body: X=Y: character X is read as Y
 *   rule PRESENTATION               body: trigger T, cosign T, unless GROUP, lang L,
 *                                   context C..., kind KIND, child
 *
 * A statement starts in the first column; its body lines are indented;
 * blank lines and lines starting with '#' are ignored. */
#include "care/safety.h"
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

enum { RULES_MAX = 4 << 20 }; /* the largest rules file read, in bytes */

char *sf_read_file(const char *path, size_t *len, char *err, size_t err_size) {
    /* O_NONBLOCK: a FIFO must not hang the start; it is refused below. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > RULES_MAX) {
        qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", path,
                  !S_ISREG(sb.st_mode) ? "not a regular file" : "larger than the 4 MiB a rules file may have");
        close(fd);
        return NULL;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    char *buf = malloc(n + 1);
    while (buf && got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (!buf || got != n) {
        qc_seterr(err, err_size, buf ? QC_ERR_IO : QC_ERR_NOMEM, "%s: %s", path, buf ? "short read" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ==== the arena: every string of a rule set, freed at once ==== */

struct sf_chunk {
    sf_chunk_t *next;
    size_t used, cap;
    char data[];
};

static void *arena_alloc(qc_safety_t *s, size_t n) {
    sf_chunk_t *c = s->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 60000 ? n : 60000;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = s->arena;
        s->arena = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *sf_strndup(qc_safety_t *s, const char *p, size_t n) {
    char *q = arena_alloc(s, n + 1);
    if (!q) return NULL;
    memcpy(q, p, n);
    q[n] = 0;
    return q;
}

void sf_clear(qc_safety_t *s) {
    if (!s) return;
    while (s->arena) {
        sf_chunk_t *n = s->arena->next;
        free(s->arena);
        s->arena = n;
    }
    for (size_t i = 0; i < s->n_groups; i++) free(s->groups[i].p);
    for (int i = 0; i < SF_CUE_COUNT; i++) free(s->cue[i].p);
    free(s->groups);
    free(s->compounds);
    free(s->folds);
    free(s->pres);
    free(s->sources);
    free(s->rules);
    memset(s, 0, sizeof *s);
}

/* Room for one more element of an array (*p, *n used of *cap). 0 or -1. */
static int grow(void **p, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, c * size);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}
#define GROW(s, arr, n, cap) grow((void **)&(s)->arr, &(s)->cap, (s)->n, sizeof *(s)->arr)

/* ==== the parser's state ==== */

enum { B_NONE, B_SOURCE, B_PRES, B_GROUP, B_CUE, B_COMPOUND, B_FOLD, B_RULE };

typedef struct {
    qc_safety_t *s;
    const char *name; /* the file, for messages */
    int line;
    int block;        /* B_*: what the body lines belong to */
    size_t index;     /* which source, presentation, group, rule (or cue kind) */
    int statements;   /* statements read so far */
    char *err;
    size_t err_size;
    /* rules' group names, resolved when the whole file is read */
    struct pending {
        size_t rule;
        int term; /* 0..SF_TERMS-1: need[term].any, +SF_TERMS: .with, -1: unless */
        const char *name;
        int line;
    } *refs;
    size_t n_refs, cap_refs;
    const char **pres_names; /* each rule's presentation id, resolved at the end */
    size_t first_rule;       /* this file's first rule (after `use builtin`'s) */
    int dialect;             /* the fold block being read is `fold dialect` */
    int nested;              /* the built-in rules read for a file's `use builtin` */
} parser_t;

static qc_status compile(qc_safety_t *s, const char *text, size_t len, const char *name, int nested, char *err,
                         size_t err_size);

static qc_status fail(parser_t *p, qc_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static qc_status fail(parser_t *p, qc_status st, const char *fmt, ...) {
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (p->line > 0) return qc_seterr(p->err, p->err_size, st, "%s:%d: %s", p->name, p->line, why);
    return qc_seterr(p->err, p->err_size, st, "%s: %s", p->name, why);
}
#define NOMEM(p) fail(p, QC_ERR_NOMEM, "out of memory")

static const char *const cue_names[SF_CUE_COUNT] = {"negation-next", "negation",    "not-negation",
                                                    "past",          "not-past",    "hypothetical",
                                                    "not-hypothetical", "stretch-cut", "span-cut", "child", "figurative"};

/* The urgent kind named name, or -1 (QC_URGENT_MODEL is the model's
 * opinion, never a rule's kind). */
static int kind_of(const char *name) {
    for (int k = QC_URGENT_NONE + 1; k < QC_URGENT_MODEL; k++)
        if (!strcmp(qc_urgent_name((qc_urgent_t)k), name)) return k;
    return -1;
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* Copies word w (up to the next blank) of *line into buf; advances *line.
 * 0 when there is none or it is too long. */
static int next_word(const char **line, char *buf, size_t cap) {
    const char *l = *line;
    while (is_space(*l)) l++;
    size_t k = 0;
    while (*l && !is_space(*l)) {
        if (k + 1 >= cap) return 0;
        buf[k++] = *l++;
    }
    buf[k] = 0;
    while (is_space(*l)) l++;
    *line = l;
    return k > 0;
}

/* Whether name is a valid group, presentation or source id: letters,
 * digits, '-', '_' and '.'. */
static int valid_id(const char *name) {
    if (!*name) return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
              *c == '_' || *c == '.'))
            return 0;
    return 1;
}

static int group_find(const qc_safety_t *s, const char *name) {
    for (size_t i = 0; i < s->n_groups; i++)
        if (!strcmp(s->groups[i].name, name)) return (int)i;
    return -1;
}

/* ==== phrases ==== */

/* Compiles one part of a phrase (raw bytes [a, b), without '~') into pt:
 * a trailing '*' makes it a prefix; "{n}" / "{n>=K}" become number tokens;
 * then it is normalized as message text is. */
static qc_status part_compile(parser_t *p, const char *a, const char *b, sf_part_t *pt) {
    char raw[4 * SF_PART];
    size_t k = 0;
    pt->prefix = b > a && b[-1] == '*';
    if (pt->prefix) b--;
    for (const char *c = a; c < b;) {
        if (*c == '{') {
            const char *close = memchr(c, '}', (size_t)(b - c));
            long bound = 0;
            int most = 0;
            static const char *const form = "a number token is {n}, {n>=K} or {n<=K} (K from 0 to 99999999)";
            if (!close || c[1] != 'n') return fail(p, QC_ERR_FORMAT, "%s", form);
            if (close - c > 2) {
                char *end;
                if (strncmp(c, "{n>=", 4) && strncmp(c, "{n<=", 4)) return fail(p, QC_ERR_FORMAT, "%s", form);
                most = c[2] == '<';
                bound = strtol(c + 4, &end, 10);
                if (end != close || c + 4 == close || bound < 0 || bound > 99999999)
                    return fail(p, QC_ERR_FORMAT, "%s", form);
            }
            if (k + 12 >= sizeof raw) return fail(p, QC_ERR_FORMAT, "a phrase part is longer than %d bytes", SF_PART - 1);
            k += (size_t)snprintf(raw + k, sizeof raw - k, "%c%s%ld%c", SF_NUM, most ? "<" : "", bound, SF_NUM);
            c = close + 1;
            continue;
        }
        if (*c == '*' || *c == '|' || *c == '@' || *c == '}')
            return fail(p, QC_ERR_FORMAT, "'%c' may not stand inside a phrase ('*' only at the end of a part)", *c);
        if (k + 1 >= sizeof raw) return fail(p, QC_ERR_FORMAT, "a phrase part is longer than %d bytes", SF_PART - 1);
        raw[k++] = *c++;
    }
    size_t n;
    char *norm = sf_normalize(p->s, raw, k, &n);
    if (!norm) return NOMEM(p);
    while (n > 0 && norm[n - 1] == ' ') norm[--n] = 0; /* "word *" */
    size_t lead = norm[0] == ' ';
    if (n - lead == 0) {
        free(norm);
        return fail(p, QC_ERR_FORMAT, "a phrase has an empty part (around '~' or '*')");
    }
    if (n - lead >= SF_PART) {
        free(norm);
        return fail(p, QC_ERR_FORMAT, "a phrase part is longer than %d bytes", SF_PART - 1);
    }
    pt->s = sf_strndup(p->s, norm + lead, n - lead);
    pt->k = n - lead;
    free(norm);
    return pt->s ? 0 : NOMEM(p);
}

/* Compiles phrase [a, b) (trimmed, non-empty) and adds it to g. */
static qc_status phrase_add(parser_t *p, sf_group_t *g, const char *a, const char *b) {
    sf_phrase_t ph = {.n = 0};
    if (!(ph.text = sf_strndup(p->s, a, (size_t)(b - a)))) return NOMEM(p);
    for (const char *c = a;;) {
        const char *t = memchr(c, '~', (size_t)(b - c));
        if (!t) t = b;
        if (ph.n == SF_PARTS) return fail(p, QC_ERR_FORMAT, "a phrase has more than %d parts joined by '~'", SF_PARTS);
        qc_status st = part_compile(p, c, t, &ph.part[ph.n]);
        if (st) return st;
        ph.n++;
        if (t == b) break;
        c = t + 1;
    }
    if (grow((void **)&g->p, &g->cap, g->n, sizeof *g->p)) return NOMEM(p);
    g->p[g->n++] = ph;
    /* Run together: an English part of several words is also looked for
     * without its spaces ("chest pain": "chestpain"). */
    sf_phrase_t run = ph;
    int changed = 0;
    for (int j = 0; j < ph.n; j++) {
        const char *q = ph.part[j].s;
        if (!strchr(q, ' ') || strchr(q, SF_NUM)) continue;
        int ascii = 1;
        for (const char *c = q; *c; c++) ascii &= (unsigned char)*c < 0x80;
        if (!ascii) continue;
        char buf[SF_PART];
        size_t k = 0;
        for (const char *c = q; *c; c++)
            if (*c != ' ') buf[k++] = *c;
        if (!(run.part[j].s = sf_strndup(p->s, buf, k))) return NOMEM(p);
        run.part[j].k = k;
        changed = 1;
    }
    if (!changed) return 0;
    if (grow((void **)&g->p, &g->cap, g->n, sizeof *g->p)) return NOMEM(p);
    g->p[g->n++] = run;
    return 0;
}

/* A body line of phrases into g: '|' between them (one may begin or end
 * the line, which continues the list), @NAME for the phrases of a group
 * defined above. */
static qc_status phrases_line(parser_t *p, sf_group_t *g, const char *l) {
    if (*l == '|') l++;
    size_t n = strlen(l);
    while (n > 0 && is_space(l[n - 1])) n--;
    int open_end = n > 0 && l[n - 1] == '|';
    const char *stop = l + n - (size_t)open_end;
    for (;;) {
        const char *bar = memchr(l, '|', (size_t)(stop - l));
        const char *e = bar ? bar : stop;
        const char *a = l, *b = e;
        while (a < b && is_space(*a)) a++;
        while (b > a && is_space(b[-1])) b--;
        if (a == b) return fail(p, QC_ERR_FORMAT, "an empty phrase (two '|' with nothing between)");
        if (*a == '@') {
            char name[128];
            if ((size_t)(b - a) >= sizeof name) return fail(p, QC_ERR_FORMAT, "a group name is too long");
            memcpy(name, a + 1, (size_t)(b - a - 1));
            name[b - a - 1] = 0;
            int gi = group_find(p->s, name);
            if (gi < 0) return fail(p, QC_ERR_FORMAT, "@%s: no such group above this line", name);
            sf_group_t *src = &p->s->groups[gi];
            if (src == g) return fail(p, QC_ERR_FORMAT, "@%s: a group cannot include itself", name);
            for (size_t i = 0; i < src->n; i++) {
                if (grow((void **)&g->p, &g->cap, g->n, sizeof *g->p)) return NOMEM(p);
                g->p[g->n++] = src->p[i];
            }
        } else {
            qc_status st = phrase_add(p, g, a, b);
            if (st) return st;
        }
        if (!bar) break;
        l = bar + 1;
    }
    return 0;
}

/* ==== statements ==== */

static qc_status header(parser_t *p, const char *l) {
    char kw[64], arg[128], extra[8];
    if (!next_word(&l, kw, sizeof kw)) return fail(p, QC_ERR_FORMAT, "a statement word is too long");
    int has_arg = next_word(&l, arg, sizeof arg);
    if (!has_arg && *l) return fail(p, QC_ERR_FORMAT, "a name is too long (at most %zu bytes)", sizeof arg - 1);
    int more = next_word(&l, extra, sizeof extra) || *l;
    qc_safety_t *s = p->s;
    p->statements++;
    if (p->statements == 1) {
        if (strcmp(kw, "qcare-safety-rules")) return fail(p, QC_ERR_FORMAT, "not a rules file: the first statement must be 'qcare-safety-rules 1'");
        if (!has_arg || strcmp(arg, "1") || more)
            return fail(p, QC_ERR_UNSUPPORTED, "only version 1 of the rules format is known (qcare-safety-rules 1)");
        p->block = B_NONE;
        return 0;
    }
    if (!strcmp(kw, "use")) {
        if (!has_arg || strcmp(arg, "builtin") || more) return fail(p, QC_ERR_FORMAT, "'use' takes one word: use builtin");
        if (p->statements != 2) return fail(p, QC_ERR_FORMAT, "'use builtin' must come right after the first line");
        if (s->n_rules || s->n_groups) return fail(p, QC_ERR_FORMAT, "'use builtin' in the built-in rules");
        /* The compiled-in rules first, then this file's additions. */
        p->block = B_NONE;
        qc_status st = compile(s, (const char *)qc_safety_rules_txt, qc_safety_rules_txt_len, "builtin rules", 1,
                               p->err, p->err_size);
        p->first_rule = s->n_rules;
        if (!st && s->cap_rules) {
            const char **names = realloc(p->pres_names, s->cap_rules * sizeof *names);
            if (!names) return NOMEM(p);
            p->pres_names = names;
        }
        return st;
    }
    if (!strcmp(kw, "compound") || !strcmp(kw, "fold")) {
        /* `fold dialect`: words of a dialect (written Cantonese), read as
         * Mandarin but no sign of traditional script */
        if (has_arg && (strcmp(kw, "fold") || strcmp(arg, "dialect") || more))
            return fail(p, QC_ERR_FORMAT, "'%s' takes no name (only `fold dialect`): its pairs go on the lines below", kw);
        p->block = !strcmp(kw, "fold") ? B_FOLD : B_COMPOUND;
        return 0;
    }
    if (!has_arg) return fail(p, QC_ERR_FORMAT, "'%s' needs a name", kw);
    if (more) return fail(p, QC_ERR_FORMAT, "'%s %s' takes one name; what follows goes on indented lines", kw, arg);
    if (!strcmp(kw, "cue")) {
        for (int c = 0; c < SF_CUE_COUNT; c++)
            if (!strcmp(arg, cue_names[c])) {
                p->block = B_CUE;
                p->index = (size_t)c;
                return 0;
            }
        return fail(p, QC_ERR_FORMAT, "unknown cue list '%s' (negation-next, negation, not-negation, past, not-past, "
                    "hypothetical, not-hypothetical, stretch-cut, span-cut, child, figurative)", arg);
    }
    if (!valid_id(arg)) return fail(p, QC_ERR_FORMAT, "'%s': a name has only letters, digits, '-', '_' and '.'", arg);
    if (!strcmp(kw, "group")) {
        int g = group_find(s, arg);
        if (g < 0) { /* a group named again gets more phrases */
            if (GROW(s, groups, n_groups, cap_groups)) return NOMEM(p);
            g = (int)s->n_groups++;
            s->groups[g] = (sf_group_t){.name = sf_strndup(s, arg, strlen(arg)), .line = p->line};
            if (!s->groups[g].name) return NOMEM(p);
        }
        p->block = B_GROUP;
        p->index = (size_t)g;
        return 0;
    }
    if (!strcmp(kw, "source")) {
        for (size_t i = 0; i < s->n_sources; i++)
            if (!strcmp(s->sources[i].id, arg))
                return fail(p, QC_ERR_FORMAT, "source '%s' is defined twice (first on line %d)", arg, s->sources[i].line);
        if (GROW(s, sources, n_sources, cap_sources)) return NOMEM(p);
        s->sources[s->n_sources] = (sf_source_t){.id = sf_strndup(s, arg, strlen(arg)), .text = NULL, .line = p->line};
        if (!s->sources[s->n_sources].id) return NOMEM(p);
        p->block = B_SOURCE;
        p->index = s->n_sources++;
        return 0;
    }
    if (!strcmp(kw, "presentation")) {
        for (size_t i = 0; i < s->n_pres; i++)
            if (!strcmp(s->pres[i].id, arg))
                return fail(p, QC_ERR_FORMAT, "presentation '%s' is defined twice (first on line %d)", arg, s->pres[i].line);
        if (GROW(s, pres, n_pres, cap_pres)) return NOMEM(p);
        s->pres[s->n_pres] = (sf_pres_t){.id = sf_strndup(s, arg, strlen(arg)), .kind = QC_URGENT_NONE, .line = p->line};
        if (!s->pres[s->n_pres].id) return NOMEM(p);
        p->block = B_PRES;
        p->index = s->n_pres++;
        return 0;
    }
    if (!strcmp(kw, "rule")) {
        if (GROW(s, rules, n_rules, cap_rules)) return NOMEM(p);
        size_t cap = s->cap_rules;
        const char **names = realloc(p->pres_names, cap * sizeof *names);
        if (!names) return NOMEM(p);
        p->pres_names = names;
        s->rules[s->n_rules] = (sf_rule_t){.pres = -1, .kind = QC_URGENT_NONE, .lang = SF_LANG_ANY, .unless = -1,
                                           .ctx = SF_CTX_DEFAULT, .line = p->line};
        if (!(names[s->n_rules] = sf_strndup(s, arg, strlen(arg)))) return NOMEM(p);
        p->block = B_RULE;
        p->index = s->n_rules++;
        return 0;
    }
    return fail(p, QC_ERR_FORMAT, "unknown statement '%s' (source, presentation, group, cue, compound, fold, rule)", kw);
}

/* Notes a group name for term `term` of the rule being read. */
static qc_status ref_add(parser_t *p, int term, const char *name) {
    if (!valid_id(name)) return fail(p, QC_ERR_FORMAT, "'%s' is not a group name", name);
    if (grow((void **)&p->refs, &p->cap_refs, p->n_refs, sizeof *p->refs)) return NOMEM(p);
    const char *n = sf_strndup(p->s, name, strlen(name));
    if (!n) return NOMEM(p);
    p->refs[p->n_refs++] = (struct pending){p->index, term, n, p->line};
    return 0;
}

static qc_status rule_line(parser_t *p, const char *l) {
    sf_rule_t *r = &p->s->rules[p->index];
    char kw[32], a[128], w[128], b[128];
    if (!next_word(&l, kw, sizeof kw)) return fail(p, QC_ERR_FORMAT, "unknown rule field");
    if (!strcmp(kw, "trigger") || !strcmp(kw, "cosign")) {
        int trig = kw[0] == 't';
        if (trig && r->n_need > 0) return fail(p, QC_ERR_FORMAT, "a rule has one trigger (more terms are cosigns)");
        if (!trig && r->n_need == 0) return fail(p, QC_ERR_FORMAT, "'cosign' before the rule's 'trigger'");
        if (r->n_need == SF_TERMS) return fail(p, QC_ERR_FORMAT, "a rule has at most %d cosigns", SF_TERMS - 1);
        if (!next_word(&l, a, sizeof a)) return fail(p, QC_ERR_FORMAT, "'%s' needs a group: %s GROUP [with GROUP]", kw, kw);
        int term = r->n_need;
        qc_status st = ref_add(p, term, a);
        if (st) return st;
        r->need[term] = (sf_term_t){-1, -1};
        if (*l) {
            if (!next_word(&l, w, sizeof w) || strcmp(w, "with") || !next_word(&l, b, sizeof b) || *l)
                return fail(p, QC_ERR_FORMAT, "'%s' takes GROUP or GROUP with GROUP", kw);
            if ((st = ref_add(p, term + SF_TERMS, b))) return st;
            r->need[term].with = -2; /* resolved at the end */
        }
        r->n_need++;
        return 0;
    }
    if (!strcmp(kw, "unless")) {
        if (!next_word(&l, a, sizeof a) || *l) return fail(p, QC_ERR_FORMAT, "'unless' takes one group");
        if (r->unless != -1) return fail(p, QC_ERR_FORMAT, "a rule has at most one 'unless' group");
        r->unless = -2;
        return ref_add(p, -1, a);
    }
    if (!strcmp(kw, "lang")) {
        if (!next_word(&l, a, sizeof a) || *l) return fail(p, QC_ERR_FORMAT, "'lang' takes one of any, en, zh");
        if (!strcmp(a, "any")) r->lang = SF_LANG_ANY;
        else if (!strcmp(a, "en")) r->lang = SF_LANG_EN;
        else if (!strcmp(a, "zh")) r->lang = SF_LANG_ZH;
        else return fail(p, QC_ERR_FORMAT, "unknown language '%s' (any, en, zh)", a);
        return 0;
    }
    if (!strcmp(kw, "context")) {
        unsigned ctx = 0;
        int n = 0;
        while (next_word(&l, a, sizeof a)) {
            n++;
            if (!strcmp(a, "negation")) ctx |= SF_CTX_NEGATION;
            else if (!strcmp(a, "past")) ctx |= SF_CTX_PAST;
            else if (!strcmp(a, "hypothetical")) ctx |= SF_CTX_HYPOTHETICAL;
            else if (!strcmp(a, "figurative")) ctx |= SF_CTX_FIGURATIVE;
            else if (!strcmp(a, "none") && n == 1 && !*l) ctx = 0;
            else return fail(p, QC_ERR_FORMAT, "unknown context '%s' (negation, past, hypothetical, figurative, or none alone)", a);
        }
        if (!n || *l) return fail(p, QC_ERR_FORMAT, "'context' takes negation, past, hypothetical, figurative, or none");
        r->ctx = ctx;
        return 0;
    }
    if (!strcmp(kw, "kind")) {
        int k;
        if (!next_word(&l, a, sizeof a) || *l || (k = kind_of(a)) < 0)
            return fail(p, QC_ERR_FORMAT, "'kind' takes one notice kind (cardiac, stroke, ..., self-harm, emergency, child, abuse)");
        r->kind = (qc_urgent_t)k;
        return 0;
    }
    if (!strcmp(kw, "child")) {
        if (*l) return fail(p, QC_ERR_FORMAT, "'child' takes nothing");
        r->child = 1;
        return 0;
    }
    return fail(p, QC_ERR_FORMAT, "unknown rule field '%s' (trigger, cosign, unless, lang, context, kind, child)", kw);
}

static qc_status pres_line(parser_t *p, const char *l) {
    qc_safety_t *s = p->s;
    sf_pres_t *pr = &s->pres[p->index];
    char kw[32], a[128];
    if (!next_word(&l, kw, sizeof kw)) return fail(p, QC_ERR_FORMAT, "unknown presentation field");
    if (!strcmp(kw, "kind")) {
        int k;
        if (!next_word(&l, a, sizeof a) || *l || (k = kind_of(a)) < 0)
            return fail(p, QC_ERR_FORMAT, "'kind' takes one notice kind (cardiac, stroke, ..., self-harm, emergency, child, abuse)");
        pr->kind = (qc_urgent_t)k;
        return 0;
    }
    if (!strcmp(kw, "source")) {
        if (!*l) return fail(p, QC_ERR_FORMAT, "'source' takes one or more source ids");
        const char *ids = l;
        while (next_word(&l, a, sizeof a)) {
            size_t i = 0;
            while (i < s->n_sources && strcmp(s->sources[i].id, a)) i++;
            if (i == s->n_sources) return fail(p, QC_ERR_FORMAT, "unknown source '%s' (define it with 'source %s' above)", a, a);
        }
        if (*l) return fail(p, QC_ERR_FORMAT, "a source id is too long");
        return (pr->sources = sf_strndup(s, ids, strlen(ids))) ? 0 : NOMEM(p);
    }
    if (!strcmp(kw, "title")) {
        if (!*l) return fail(p, QC_ERR_FORMAT, "'title' takes a text");
        return (pr->title = sf_strndup(s, l, strlen(l))) ? 0 : NOMEM(p);
    }
    return fail(p, QC_ERR_FORMAT, "unknown presentation field '%s' (kind, source, title)", kw);
}

/* "A + B | C + D": pairs of a compound body line. */
static qc_status compound_line(parser_t *p, const char *l) {
    qc_safety_t *s = p->s;
    while (*l) {
        const char *bar = strchr(l, '|'), *e = bar ? bar : l + strlen(l);
        const char *plus = memchr(l, '+', (size_t)(e - l));
        if (!plus) return fail(p, QC_ERR_FORMAT, "a compound is written A + B");
        const char *a = l, *ae = plus, *b = plus + 1, *be = e;
        while (a < ae && is_space(*a)) a++;
        while (ae > a && is_space(ae[-1])) ae--;
        while (b < be && is_space(*b)) b++;
        while (be > b && is_space(be[-1])) be--;
        if (a == ae || b == be) return fail(p, QC_ERR_FORMAT, "a compound needs text on both sides of '+'");
        size_t ka, kb;
        char *na = sf_normalize(s, a, (size_t)(ae - a), &ka), *nb = sf_normalize(s, b, (size_t)(be - b), &kb);
        if (!na || !nb || GROW(s, compounds, n_compounds, cap_compounds)) {
            free(na), free(nb);
            return NOMEM(p);
        }
        /* Two words are apart by a space in the text; Chinese runs on. */
        int ascii = (unsigned char)na[ka - 1] < 0x80 && (unsigned char)nb[0] < 0x80;
        sf_compound_t *c = &s->compounds[s->n_compounds];
        c->a = sf_strndup(s, na, ka);
        char *bb = arena_alloc(s, kb + 2);
        if (bb) {
            size_t o = 0;
            if (ascii) bb[o++] = ' ';
            memcpy(bb + o, nb, kb + 1);
        }
        c->b = bb;
        c->ka = ka;
        c->kb = kb + (size_t)ascii;
        free(na), free(nb);
        if (!c->a || !c->b) return NOMEM(p);
        s->n_compounds++;
        if (!bar) break;
        l = bar + 1;
    }
    return 0;
}

static int fold_cmp(const void *a, const void *b) {
    const sf_fold_t *x = a, *y = b;
    return x->from < y->from ? -1 : x->from > y->from;
}

/* "X=Y X=Y ...": one character read as another. */
static qc_status fold_line(parser_t *p, const char *l) {
    qc_safety_t *s = p->s;
    char pair[32];
    while (next_word(&l, pair, sizeof pair)) {
        utf8proc_int32_t x, y;
        const utf8proc_uint8_t *q = (const utf8proc_uint8_t *)pair;
        utf8proc_ssize_t n = (utf8proc_ssize_t)strlen(pair);
        utf8proc_ssize_t kx = utf8proc_iterate(q, n, &x);
        if (kx <= 0 || kx >= n || pair[kx] != '=') return fail(p, QC_ERR_FORMAT, "a fold is written X=Y (one character each)");
        utf8proc_ssize_t ky = utf8proc_iterate(q + kx + 1, n - kx - 1, &y);
        if (ky <= 0 || kx + 1 + ky != n) return fail(p, QC_ERR_FORMAT, "a fold is written X=Y (one character each)");
        if (x == y || x < 0x80) return fail(p, QC_ERR_FORMAT, "a fold maps a non-ASCII character to another one");
        if (GROW(s, folds, n_folds, cap_folds)) return NOMEM(p);
        s->folds[s->n_folds++] = (sf_fold_t){(uint32_t)x, (uint32_t)y, !p->dialect};
    }
    if (*l) return fail(p, QC_ERR_FORMAT, "a fold is written X=Y (one character each)");
    return 0;
}

static qc_status body(parser_t *p, const char *l) {
    qc_safety_t *s = p->s;
    switch (p->block) {
    case B_SOURCE: {
        sf_source_t *src = &s->sources[p->index];
        size_t a = src->text ? strlen(src->text) : 0, b = strlen(l);
        char *t = arena_alloc(s, a + b + 2);
        if (!t) return NOMEM(p);
        if (a) memcpy(t, src->text, a), t[a++] = ' ';
        memcpy(t + a, l, b + 1);
        src->text = t;
        return 0;
    }
    case B_PRES: return pres_line(p, l);
    case B_GROUP: return phrases_line(p, &s->groups[p->index], l);
    case B_CUE: return phrases_line(p, &s->cue[p->index], l);
    case B_COMPOUND: return compound_line(p, l);
    case B_FOLD: return fold_line(p, l);
    case B_RULE: return rule_line(p, l);
    default: return fail(p, QC_ERR_FORMAT, "an indented line outside any statement");
    }
}

/* Resolves the rules' group and presentation names; checks what only the
 * whole file tells. */
static qc_status finish(parser_t *p) {
    qc_safety_t *s = p->s;
    if (p->statements == 0) return fail(p, QC_ERR_FORMAT, "empty: not a rules file (it starts with 'qcare-safety-rules 1')");
    for (size_t i = p->first_rule; i < s->n_rules; i++) {
        sf_rule_t *r = &s->rules[i];
        p->line = r->line;
        if (!r->n_need) return fail(p, QC_ERR_FORMAT, "a rule needs a 'trigger'");
        size_t k = 0;
        while (k < s->n_pres && strcmp(s->pres[k].id, p->pres_names[i])) k++;
        if (k == s->n_pres)
            return fail(p, QC_ERR_FORMAT, "unknown presentation '%s' (each rule names a presentation defined with its source)",
                        p->pres_names[i]);
        r->pres = (int)k;
        if (!r->kind) r->kind = s->pres[k].kind;
    }
    for (size_t i = 0; i < p->n_refs; i++) {
        struct pending *f = &p->refs[i];
        int g = group_find(s, f->name);
        p->line = f->line;
        if (g < 0) return fail(p, QC_ERR_FORMAT, "unknown group '%s'", f->name);
        if (!s->groups[g].n) return fail(p, QC_ERR_FORMAT, "group '%s' has no phrases", f->name);
        sf_rule_t *r = &s->rules[f->rule];
        if (f->term < 0) r->unless = g;
        else if (f->term < SF_TERMS) r->need[f->term].any = g;
        else r->need[f->term - SF_TERMS].with = g;
    }
    for (size_t i = 0; i < s->n_pres; i++) {
        p->line = s->pres[i].line;
        if (!s->pres[i].kind) return fail(p, QC_ERR_FORMAT, "presentation '%s' has no 'kind'", s->pres[i].id);
        if (!s->pres[i].sources) return fail(p, QC_ERR_FORMAT, "presentation '%s' has no 'source'", s->pres[i].id);
    }
    for (size_t i = 0; i < s->n_sources; i++) {
        p->line = s->sources[i].line;
        if (!s->sources[i].text) return fail(p, QC_ERR_FORMAT, "source '%s' has no text", s->sources[i].id);
    }
    p->line = 0;
    if (!s->n_rules) return fail(p, QC_ERR_FORMAT, "no rules");
    if (s->n_folds) qsort(s->folds, s->n_folds, sizeof *s->folds, fold_cmp);
    /* The folds of a file that uses the built-in rules were read (its first
     * pass) before them: a clash is the file's, told under its name. */
    for (size_t i = 1; i < s->n_folds && !p->nested; i++)
        if (s->folds[i].from == s->folds[i - 1].from && s->folds[i].to != s->folds[i - 1].to)
            return fail(p, QC_ERR_FORMAT, "a character is folded two ways (U+%04X)", (unsigned)s->folds[i].from);
    return 0;
}

qc_status sf_compile(qc_safety_t *s, const char *text, size_t len, const char *name, char *err, size_t err_size) {
    return compile(s, text, len, name, 0, err, err_size);
}

static qc_status compile(qc_safety_t *s, const char *text, size_t len, const char *name, int nested, char *err,
                         size_t err_size) {
    parser_t p = {.s = s, .name = name, .err = err, .err_size = err_size, .first_rule = s->n_rules, .nested = nested};
    qc_status st = 0;
    /* Folds apply to phrases too, so they are read before anything else. */
    for (int pass = 0; pass < 2 && !st; pass++) {
        p.line = 0;
        p.block = B_NONE;
        p.statements = 0;
        const char *l = text, *end = text + len;
        while (l < end && !st) {
            const char *e = memchr(l, '\n', (size_t)(end - l));
            if (!e) e = end;
            p.line++;
            size_t n = (size_t)(e - l);
            while (n > 0 && (l[n - 1] == '\r' || is_space(l[n - 1]))) n--;
            char *line = malloc(n + 1);
            if (!line) {
                st = NOMEM(&p);
                break;
            }
            memcpy(line, l, n);
            line[n] = 0;
            const char *c = line;
            while (is_space(*c)) c++;
            if (memchr(line, 0, n) != NULL) st = fail(&p, QC_ERR_FORMAT, "a NUL byte");
            else if (utf8proc_decompose((const utf8proc_uint8_t *)line, (utf8proc_ssize_t)n, NULL, 0, 0) < 0)
                st = fail(&p, QC_ERR_FORMAT, "not valid UTF-8");
            else if (*c && *c != '#') {
                int indented = c != line;
                if (pass == 0) { /* only the fold blocks */
                    if (!indented) {
                        p.block = !strncmp(c, "fold", 4) && (!c[4] || is_space(c[4])) ? B_FOLD : B_NONE;
                        p.dialect = p.block == B_FOLD && strstr(c, "dialect") != NULL;
                    } else if (p.block == B_FOLD) {
                        st = fold_line(&p, c);
                    }
                } else {
                    if (!indented) st = header(&p, c);
                    else if (p.block == B_FOLD) st = 0; /* read in the first pass */
                    else st = body(&p, c);
                }
            }
            free(line);
            l = e + 1;
        }
        if (!st && pass == 0 && s->n_folds) qsort(s->folds, s->n_folds, sizeof *s->folds, fold_cmp);
    }
    if (!st) st = finish(&p);
    free(p.refs);
    free(p.pres_names);
    return st;
}
