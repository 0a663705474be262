/* cmd_safety_train.c — `qcare safety-train`: the weights of the safety
 * net's second reader (src/care/safety_lex.c) from labelled messages
 * ({"text", "urgent": bool, "presentation"} lines, as `qcare eval --task
 * safety` reads): a multinomial logistic regression over "none" and the
 * notice kinds (the kind of a message is its presentation's in the rules),
 * trained with AdaGrad in a fixed order, so the same data and options give
 * the same file. With --folds K it first reports K-fold cross-validated
 * recall and false alarms at a range of thresholds, for the lexicon alone
 * and together with the rules, and (without --threshold) picks the lowest
 * threshold at which the cross-validated false alarms the lexicon adds to
 * the rules' stay within --max-alarms in every file. */
#include "cli/cli.h"
#include "care/safety.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N_CLASS = QC_URGENT_ABUSE + 1 }; /* none and the kinds the rules give */

typedef struct {
    uint64_t *f; /* its distinct features' hashes */
    size_t nf;
    int y;       /* class: 0 none, else a qc_urgent_t */
    int rules;   /* the rules alone call it urgent */
    int zh;      /* written in Chinese */
    int tokens;  /* its token occurrences ("1|" features before dedupe) */
    int file;    /* the --data file it came from */
} ex_t;

typedef struct {
    ex_t *ex;
    size_t n, cap;
    /* every feature seen: hash and its text (for the file) */
    uint64_t *h;
    char **name;
    size_t nh, caph;
    size_t cur_nf, cur_cap;
    uint64_t *cur;
    int cur_tokens;
} set_t;

/* A training run holds its whole data set in memory: without it, it stops. */
static _Noreturn void out_of_memory(void) {
    fputs("qcare safety-train: out of memory\n", stderr);
    exit(1);
}

/* ==== reading ==== */

static void add_feat(void *user, const char *f, size_t k) {
    set_t *d = user;
    uint64_t h = sf_lex_hash(f, k);
    d->cur_tokens += k > 2 && f[0] == '1' && f[1] == '|';
    for (size_t i = 0; i < d->cur_nf; i++)
        if (d->cur[i] == h) return;
    if (d->cur_nf == d->cur_cap) {
        d->cur_cap = d->cur_cap ? 2 * d->cur_cap : 256;
        d->cur = realloc(d->cur, d->cur_cap * sizeof *d->cur);
        if (!d->cur) out_of_memory();
    }
    d->cur[d->cur_nf++] = h;
    /* remember the text of a new hash (linear probing over a table kept at most half full) */
    if (2 * (d->nh + 1) > d->caph) {
        size_t nc = d->caph ? 2 * d->caph : 1 << 16;
        uint64_t *nh = calloc(nc, sizeof *nh);
        char **nn = calloc(nc, sizeof *nn);
        if (!nh || !nn) out_of_memory();
        for (size_t i = 0; i < d->caph; i++)
            if (d->h[i]) {
                size_t j = (size_t)d->h[i] & (nc - 1);
                while (nh[j]) j = (j + 1) & (nc - 1);
                nh[j] = d->h[i], nn[j] = d->name[i];
            }
        free(d->h);
        free(d->name);
        d->h = nh, d->name = nn, d->caph = nc;
    }
    size_t j = (size_t)h & (d->caph - 1);
    while (d->h[j] && d->h[j] != h) j = (j + 1) & (d->caph - 1);
    if (!d->h[j]) {
        d->h[j] = h;
        d->name[j] = strndup(f, k);
        if (!d->name[j]) out_of_memory();
        d->nh++;
    }
}

static const char *name_of(const set_t *d, uint64_t h) {
    size_t j = (size_t)h & (d->caph - 1);
    while (d->h[j] && d->h[j] != h) j = (j + 1) & (d->caph - 1);
    return d->name[j];
}

/* The class of a presentation id ("cardiac.acs"), a group ("cardiac") or
 * the id's second part ("thunderclap", as the first blind set wrote it). */
static int class_of(const qc_safety_t *s, const char *pres) {
    size_t k = strlen(pres);
    for (size_t i = 0; i < s->n_pres; i++)
        if (!strcmp(s->pres[i].id, pres)) return (int)s->pres[i].kind;
    for (size_t i = 0; i < s->n_pres; i++)
        if (!strncmp(s->pres[i].id, pres, k) && s->pres[i].id[k] == '.') return (int)s->pres[i].kind;
    for (int u = 1; u < N_CLASS; u++)
        if (!strcmp(qc_urgent_name((qc_urgent_t)u), pres)) return u;
    for (size_t i = 0; i < s->n_pres; i++) { /* the part after the dot: "thunderclap" */
        const char *dot = strchr(s->pres[i].id, '.');
        if (dot && !strcmp(dot + 1, pres)) return (int)s->pres[i].kind;
    }
    return -1;
}

typedef struct {
    set_t *d;
    int file;
    const qc_safety_t *rules, *norm;
} reading_t;

/* Adds one labelled message to the set being read; 0, or -1 with the reason printed. */
static int add_message(void *user, const cli_labelled_t *m) {
    reading_t *r = user;
    set_t *d = r->d;
    int y = 0;
    if (m->urgent && (!m->presentation || (y = class_of(r->rules, m->presentation)) < 0)) {
        fprintf(stderr, "%s:%zu: urgent, but presentation '%s' is not one of the rules' (docs/safety.md)\n", m->path,
                m->line, m->presentation ? m->presentation : "");
        return -1;
    }
    size_t n, len = strlen(m->text);
    char *t = sf_normalize(r->norm, m->text, len, &n);
    if (!t) out_of_memory();
    d->cur_nf = 0;
    d->cur_tokens = 0;
    sf_features(r->norm, t, n, add_feat, d);
    free(t);
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 1024;
        d->ex = realloc(d->ex, d->cap * sizeof *d->ex);
        if (!d->ex) out_of_memory();
    }
    ex_t *e = &d->ex[d->n++];
    e->nf = d->cur_nf;
    e->f = malloc((e->nf ? e->nf : 1) * sizeof *e->f);
    if (!e->f) out_of_memory();
    memcpy(e->f, d->cur, e->nf * sizeof *e->f);
    e->y = y;
    e->tokens = d->cur_tokens;
    e->file = r->file;
    e->rules = qc_safety_match(r->rules, m->text, len).kind != QC_URGENT_NONE;
    e->zh = strncmp(sf_language(r->rules, m->text, len), "zh", 2) == 0;
    return 0;
}

/* Adds the messages of path to d; 0, or -1 with the reason printed. */
static int read_set(set_t *d, const char *path, int file, const qc_safety_t *rules, const qc_safety_t *norm) {
    reading_t r = {d, file, rules, norm};
    return cli_read_labelled(path, 0, 1, add_message, &r) ? -1 : 0;
}

/* ==== training ==== */

typedef struct {
    uint64_t *h; /* feature hashes, a table at most half full; slot index = weight row */
    size_t cap;
    float *w, *g2; /* [cap][N_CLASS] weights and AdaGrad sums */
    float *l2;     /* [cap] each row's L2 penalty (the n-grams' and the rules' groups' differ) */
    float b[N_CLASS], gb[N_CLASS];
} model_t;

static long row_of(const model_t *m, uint64_t h) {
    size_t j = (size_t)h & (m->cap - 1);
    while (m->h[j] && m->h[j] != h) j = (j + 1) & (m->cap - 1);
    return m->h[j] ? (long)j : -1;
}

static void model_free(model_t *m) {
    free(m->h);
    free(m->w);
    free(m->g2);
    free(m->l2);
}

typedef struct {
    int epochs, min_count;
    double lr, l2, ngram_l2; /* L2 of the rules' groups and cues; of the n-grams */
} opts_t;

/* Trains on the examples i with use(i) (fold k of K left out; K = 0: all). */
static void train(model_t *m, const set_t *d, int k, int K, const opts_t *o) {
    /* features seen in at least min_count training messages */
    size_t cap = 1 << 16;
    while (cap < 4 * d->nh) cap *= 2;
    uint64_t *ch = calloc(cap, sizeof *ch);
    int *cn = calloc(cap, sizeof *cn);
    if (!ch || !cn) out_of_memory();
    size_t kept = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (K && (int)(i % (size_t)K) == k) continue;
        for (size_t a = 0; a < d->ex[i].nf; a++) {
            uint64_t h = d->ex[i].f[a];
            size_t j = (size_t)h & (cap - 1);
            while (ch[j] && ch[j] != h) j = (j + 1) & (cap - 1);
            ch[j] = h;
            if (++cn[j] == o->min_count) kept++;
        }
    }
    memset(m, 0, sizeof *m);
    m->cap = 16;
    while (m->cap < 2 * kept + 2) m->cap *= 2;
    m->h = calloc(m->cap, sizeof *m->h);
    m->w = calloc(m->cap * N_CLASS, sizeof *m->w);
    m->g2 = calloc(m->cap * N_CLASS, sizeof *m->g2);
    m->l2 = calloc(m->cap, sizeof *m->l2);
    if (!m->h || !m->w || !m->g2 || !m->l2) out_of_memory();
    for (size_t j = 0; j < cap; j++)
        if (ch[j] && cn[j] >= o->min_count) {
            size_t r = (size_t)ch[j] & (m->cap - 1);
            while (m->h[r]) r = (r + 1) & (m->cap - 1);
            m->h[r] = ch[j];
            const char *nm = name_of(d, ch[j]);
            m->l2[r] = (float)(strchr("Ggc", nm[0]) && nm[1] == '|' ? o->l2 : o->ngram_l2);
        }
    free(ch);
    free(cn);
    /* a fixed order: the indices shuffled by a seeded generator, anew each epoch */
    long *rows = malloc(4096 * sizeof *rows);
    size_t *order = malloc(d->n * sizeof *order);
    if (!rows || !order) out_of_memory();
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int ep = 0; ep < o->epochs; ep++) {
        for (size_t t = d->n; t > 1; t--) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t j = (size_t)((rng >> 33) % t), tmp = order[t - 1];
            order[t - 1] = order[j], order[j] = tmp;
        }
        for (size_t t = 0; t < d->n; t++) {
            size_t i = order[t];
            if (K && (int)(i % (size_t)K) == k) continue;
            const ex_t *e = &d->ex[i];
            size_t nr = 0;
            for (size_t a = 0; a < e->nf && nr < 4096; a++) {
                long r = row_of(m, e->f[a]);
                if (r >= 0) rows[nr++] = r;
            }
            double z[N_CLASS], mx = -1e300, sum = 0;
            for (int c = 0; c < N_CLASS; c++) {
                z[c] = m->b[c];
                for (size_t a = 0; a < nr; a++) z[c] += m->w[rows[a] * N_CLASS + c];
                mx = z[c] > mx ? z[c] : mx;
            }
            for (int c = 0; c < N_CLASS; c++) sum += (z[c] = exp(z[c] - mx));
            for (int c = 0; c < N_CLASS; c++) {
                float g = (float)(z[c] / sum - (c == e->y));
                m->gb[c] += g * g;
                m->b[c] -= (float)(o->lr * g / sqrt(m->gb[c] + 1e-8));
                for (size_t a = 0; a < nr; a++) {
                    float *w = &m->w[rows[a] * N_CLASS + c], *g2 = &m->g2[rows[a] * N_CLASS + c];
                    float gw = g + m->l2[rows[a]] * *w;
                    *g2 += gw * gw;
                    *w -= (float)(o->lr * gw / sqrt(*g2 + 1e-8));
                }
            }
        }
    }
    free(rows);
    free(order);
}

/* 1 - p(none) of example e. */
static double p_urgent(const model_t *m, const ex_t *e) {
    double z[N_CLASS], mx = -1e300, sum = 0;
    for (int c = 0; c < N_CLASS; c++) z[c] = m->b[c];
    for (size_t a = 0; a < e->nf; a++) {
        long r = row_of(m, e->f[a]);
        if (r >= 0)
            for (int c = 0; c < N_CLASS; c++) z[c] += m->w[r * N_CLASS + c];
    }
    for (int c = 0; c < N_CLASS; c++) mx = z[c] > mx ? z[c] : mx;
    for (int c = 0; c < N_CLASS; c++) sum += exp(z[c] - mx);
    return 1 - exp(z[0] - mx) / sum;
}

/* ==== the file ==== */

typedef struct {
    const char *name;
    long row;
} fname_t;

static int cmp_fname(const void *a, const void *b) {
    return strcmp(((const fname_t *)a)->name, ((const fname_t *)b)->name);
}

static int write_model(const char *path, const model_t *m, const set_t *d, double thr, int min_tokens, double prune,
                       int argc, char **argv) {
    FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!f) {
        perror(path);
        return -1;
    }
    fprintf(f, "qcare-safety-lex 1\n# Written by:");
    for (int i = 0; i < argc; i++) fprintf(f, " %s", argv[i]);
    fprintf(f, "\n# %zu messages. Format: src/care/safety_lex.c; how it is made and measured: docs/safety.md.\n",
            d->n);
    fprintf(f, "threshold %.4f\nmin-tokens %d\nclasses", thr, min_tokens);
    for (int c = 0; c < N_CLASS; c++) fprintf(f, " %s", qc_urgent_name((qc_urgent_t)c));
    fprintf(f, "\nbias");
    for (int c = 0; c < N_CLASS; c++) fprintf(f, " %.4f", m->b[c]);
    fputc('\n', f);
    fname_t *names = malloc((m->cap ? m->cap : 1) * sizeof *names);
    if (!names) out_of_memory();
    size_t n = 0;
    for (size_t r = 0; r < m->cap; r++) {
        if (!m->h[r]) continue;
        int any = 0;
        for (int c = 0; c < N_CLASS; c++) any |= fabsf(m->w[r * N_CLASS + c]) >= prune;
        if (any) names[n].name = name_of(d, m->h[r]), names[n++].row = (long)r;
    }
    qsort(names, n, sizeof *names, cmp_fname);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "f\t%s\t", names[i].name);
        int first = 1;
        for (int c = 0; c < N_CLASS; c++) {
            float w = m->w[names[i].row * N_CLASS + c];
            if (fabsf(w) < prune) continue;
            fprintf(f, "%s%d:%.4f", first ? "" : " ", c, w);
            first = 0;
        }
        fputc('\n', f);
    }
    free(names);
    int bad = ferror(f);
    if (f != stdout) bad |= fclose(f) != 0;
    if (bad) fprintf(stderr, "qcare safety-train: %s: write failed\n", path);
    fprintf(stderr, "qcare safety-train: %zu features written to %s\n", n, path);
    return bad ? -1 : 0;
}

/* ==== cross-validation ==== */

typedef struct {
    long urgent, caught, benign, alarms;
} count_t;

static void count_add(count_t *c, int urgent, int said) {
    if (urgent) c->urgent++, c->caught += said;
    else c->benign++, c->alarms += said;
}

static void count_print(const char *label, const count_t *c) {
    printf("  %-8s recall %5.1f%% (%ld/%ld)  false alarms %5.1f%% (%ld/%ld)", label,
           c->urgent ? 100.0 * c->caught / c->urgent : 0, c->caught, c->urgent,
           c->benign ? 100.0 * c->alarms / c->benign : 0, c->alarms, c->benign);
}

enum { MIN_CALM = 50 }; /* a file's false alarms count for the threshold from this many calm messages */

/* Prints the cross-validated table; returns the threshold to use: the
 * lowest of the grid at which, in every file of at least MIN_CALM calm
 * messages, the false alarms the lexicon adds to the rules' stay within
 * max_alarms (each file on its own, so that a file of easy calm messages
 * cannot buy alarms on a hard one; the rules' own alarms are not the
 * lexicon's to trade); the highest of the grid if none. */
static double cross_validate(const set_t *d, int K, const opts_t *o, double max_alarms, int min_tokens, int nfiles,
                             const char *const *files) {
    double *p = malloc(d->n * sizeof *p);
    if (!p) out_of_memory();
    for (int k = 0; k < K; k++) {
        model_t m;
        train(&m, d, k, K, o);
        for (size_t i = (size_t)k; i < d->n; i += (size_t)K)
            p[i] = d->ex[i].tokens < min_tokens ? 0 : p_urgent(&m, &d->ex[i]);
        model_free(&m);
        fprintf(stderr, "qcare safety-train: fold %d of %d done\n", k + 1, K);
    }
    count_t rules = {0};
    for (size_t i = 0; i < d->n; i++) count_add(&rules, d->ex[i].y != 0, d->ex[i].rules);
    printf("%d-fold cross-validation on %zu messages (the rules alone:", K, d->n);
    count_print("", &rules);
    printf(")\n");
    double pick = 0.95;
    int picked = 0;
    for (int g = 0; g <= 15; g++) {
        double thr = 0.20 + 0.05 * g;
        count_t lex = {0}, either = {0}, en = {0}, zh = {0}, per[64] = {{0}};
        for (size_t i = 0; i < d->n; i++) {
            int u = d->ex[i].y != 0, l = p[i] >= thr, e = l || d->ex[i].rules;
            count_add(&lex, u, l);
            count_add(&either, u, e);
            count_add(d->ex[i].zh ? &zh : &en, u, e);
            count_add(&per[d->ex[i].file], u, u ? l : l && !d->ex[i].rules); /* what the lexicon catches, adds */
        }
        int worst = 0;
        double worst_rate = 0;
        for (int f = 0; f < nfiles; f++) {
            double r = per[f].benign >= MIN_CALM ? (double)per[f].alarms / per[f].benign : 0;
            if (r > worst_rate) worst = f, worst_rate = r;
        }
        printf("threshold %.2f:", thr);
        count_print("lexicon", &lex);
        printf("\n               ");
        count_print("either", &either);
        printf("\n               ");
        count_print("en", &en);
        count_print("zh", &zh);
        printf("\n               most false alarms added to the rules': %5.1f%% (%ld/%ld) in %s\n", 100 * worst_rate,
               per[worst].alarms, per[worst].benign, files[worst]);
        if (!picked && worst_rate <= max_alarms) pick = thr, picked = 1;
        if (picked && pick == thr)
            for (int f = 0; f < nfiles; f++)
                printf("               %-44s urgent %4ld caught by the lexicon %4ld   calm %4ld alarms it adds %3ld\n",
                       files[f], per[f].urgent, per[f].caught, per[f].benign, per[f].alarms);
    }
    free(p);
    return pick;
}

int cmd_safety_train(int argc, char **argv) {
    const char *files[64], *out = NULL, *rules_path = NULL, *v;
    int nfiles = 0, K = 0, bad = 0, min_tokens = 6;
    double thr = -1, max_alarms = 0.05, prune = 0.01;
    opts_t o = {.epochs = 30, .min_count = 2, .lr = 0.3, .l2 = 1e-4, .ngram_l2 = -1};
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare safety-train --data FILE.jsonl [--data FILE.jsonl ...] --out FILE [options]\n\n"
                   "Writes the weights of the safety net's second reader (docs/safety.md), read by the urgent-care\n"
                   "check when no rule matched, from labelled {\"text\", \"urgent\", \"presentation\"} lines. The same\n"
                   "data and options give the same file. --out - writes to stdout.\n\n"
                   "  --folds K        first report K-fold cross-validated recall and false alarms (the\n"
                   "                   lexicon alone and with the rules) at thresholds 0.20 to 0.95\n"
                   "  --threshold P    urgent when the lexicon's probability reaches P (default: with --folds,\n"
                   "                   the lowest threshold at which the cross-validated false alarms the lexicon\n"
                   "                   adds to the rules' are at most --max-alarms of the calm messages, in every\n"
                   "                   file of 50 or more; without, 0.5)\n"
                   "  --max-alarms R   that share (default 0.05)\n"
                   "  --epochs N (30), --lr X (0.3), --l2 X (0.0001), --min-count N (2): the training\n"
                   "  --ngram-l2 X     the n-grams' own L2 (default --l2's; the rules' groups and cues keep --l2)\n"
                   "  --prune X        weights below X in magnitude are not written (default 0.01)\n"
                   "  --min-tokens N   messages of fewer tokens (words, Chinese characters, numbers) are left\n"
                   "                   to the rules (default 6: a few words give too little to weigh)\n"
                   "  --safety-rules F the rules whose presentations give the kinds (default: built-in)\n");
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--data", &v, &bad)) {
            if (!bad && nfiles == 64) fprintf(stderr, "qcare safety-train: at most 64 --data files\n"), bad = 1;
            if (!bad) files[nfiles++] = v;
        } else if (cli_opt(argc, argv, &i, "--out", &out, &bad)) {
        } else if (cli_opt(argc, argv, &i, "--folds", &v, &bad)) {
            if (!bad) K = (int)cli_parse_long("--folds", v, 2, 50, &bad);
        } else if (cli_opt(argc, argv, &i, "--threshold", &v, &bad)) {
            if (!bad) thr = cli_parse_double("--threshold", v, 0.01, 0.99, &bad);
        } else if (cli_opt(argc, argv, &i, "--max-alarms", &v, &bad)) {
            if (!bad) max_alarms = cli_parse_double("--max-alarms", v, 0, 1, &bad);
        } else if (cli_opt(argc, argv, &i, "--epochs", &v, &bad)) {
            if (!bad) o.epochs = (int)cli_parse_long("--epochs", v, 1, 1000, &bad);
        } else if (cli_opt(argc, argv, &i, "--lr", &v, &bad)) {
            if (!bad) o.lr = cli_parse_double("--lr", v, 1e-4, 10, &bad);
        } else if (cli_opt(argc, argv, &i, "--l2", &v, &bad)) {
            if (!bad) o.l2 = cli_parse_double("--l2", v, 0, 1, &bad);
        } else if (cli_opt(argc, argv, &i, "--ngram-l2", &v, &bad)) {
            if (!bad) o.ngram_l2 = cli_parse_double("--ngram-l2", v, 0, 1, &bad);
        } else if (cli_opt(argc, argv, &i, "--min-count", &v, &bad)) {
            if (!bad) o.min_count = (int)cli_parse_long("--min-count", v, 1, 1000, &bad);
        } else if (cli_opt(argc, argv, &i, "--min-tokens", &v, &bad)) {
            if (!bad) min_tokens = (int)cli_parse_long("--min-tokens", v, 0, 1000, &bad);
        } else if (cli_opt(argc, argv, &i, "--prune", &v, &bad)) {
            if (!bad) prune = cli_parse_double("--prune", v, 0, 10, &bad);
        } else if (cli_opt(argc, argv, &i, "--safety-rules", &rules_path, &bad)) {
        } else {
            fprintf(stderr, "qcare safety-train: unknown argument '%s' (see qcare safety-train --help)\n", argv[i]);
            return 2;
        }
    }
    if (bad) return 2;
    if (o.ngram_l2 < 0) o.ngram_l2 = o.l2;
    if (!nfiles || !out) {
        fprintf(stderr, "qcare safety-train: --data FILE and --out FILE are required (see --help)\n");
        return 2;
    }
    /* the rules alone: their verdicts for the cross-validation, their presentations' kinds */
    qc_safety_config_t cfg = {.rules_path = rules_path, .lexicon_path = "off"};
    qc_safety_t *rules;
    char err[512];
    if (qc_safety_new(&cfg, &rules, err, sizeof err)) {
        fprintf(stderr, "qcare safety-train: %s\n", err);
        return 1;
    }
    set_t d = {0};
    int rc = 0;
    for (int i = 0; i < nfiles && !rc; i++) rc = read_set(&d, files[i], i, rules, rules) ? 1 : 0;
    if (!rc && d.n < 10) {
        fprintf(stderr, "qcare safety-train: %zu messages: too few to train on\n", d.n);
        rc = 1;
    }
    if (!rc) {
        if (K) {
            double pick = cross_validate(&d, K, &o, max_alarms, min_tokens, nfiles, files);
            if (thr < 0) thr = pick;
        }
        if (thr < 0) thr = 0.5;
        model_t m;
        train(&m, &d, 0, 0, &o);
        rc = write_model(out, &m, &d, thr, min_tokens, prune, argc, argv) ? 1 : 0;
        model_free(&m);
    }
    for (size_t i = 0; i < d.n; i++) free(d.ex[i].f);
    free(d.ex);
    for (size_t i = 0; i < d.caph; i++) free(d.name[i]);
    free(d.h);
    free(d.name);
    free(d.cur);
    qc_safety_free(rules);
    return rc;
}
