/* cmd_safety_eval.c — `qcare eval --task safety`: the urgent-care rules
 * (qc_safety_check, no model) scored on a labelled set of messages; and
 * `qcare eval --task risk`: the same set read the same way, scoring the
 * model's urgency opinion (label scoring, qc_care_risk_labels) alone and
 * together with the rules (urgent when either says so). */
#include "cli/cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 64
#define N_SYSTEMS 3 /* the rules; the model; either */

static const char *const system_name[N_SYSTEMS] = {"rules", "model", "either"};

typedef struct {
    long urgent, caught, benign, alarms;
} tally_t;

/* ==== the safety options (shared with serve, ask and chat) ==== */

int cli_safety_opt(int argc, char **argv, int *i, cli_safety_args_t *a, int *bad) {
    return cli_opt(argc, argv, i, "--safety-rules", &a->rules, bad) ||
           cli_opt(argc, argv, i, "--safety-lexicon", &a->lexicon, bad) || cli_opt(argc, argv, i, "--region", &a->region, bad) ||
           cli_opt(argc, argv, i, "--emergency-numbers", &a->numbers, bad);
}

qc_safety_t *cli_safety_open(const char *cmd, const cli_safety_args_t *a) {
    qc_safety_config_t cfg = {.rules_path = a->rules, .lexicon_path = a->lexicon, .region = a->region,
                              .numbers = a->numbers};
    qc_safety_t *s;
    char err[512];
    if (qc_safety_new(&cfg, &s, err, sizeof err)) {
        fprintf(stderr, "qcare %s: %s\n", cmd, err);
        return NULL;
    }
    qc_safety_use(s);
    return s;
}

typedef struct {
    char name[48];
    tally_t t[N_SYSTEMS];
} group_t;

static group_t *group_of(group_t *g, int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(g[i].name, name)) return &g[i];
    if (*n == MAX_GROUPS) return &g[MAX_GROUPS - 1]; /* the rest share the last row */
    group_t *x = &g[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    return x;
}

/* What each system says of text: said[s] != 0 for urgent; *kind the rules'
 * verdict (for the report). 0, or -1 with the reason printed. */
typedef int (*verdict_fn)(void *user, const char *text, int said[N_SYSTEMS], qc_urgent_t *kind);

static int rules_verdict(void *user, const char *text, int said[N_SYSTEMS], qc_urgent_t *kind) {
    (void)user;
    *kind = qc_safety_check(text, strlen(text)).kind;
    said[0] = *kind != QC_URGENT_NONE;
    return 0;
}

static void tally(tally_t *t, int urgent, int said) {
    if (urgent) t->urgent++, t->caught += said;
    else t->benign++, t->alarms += said;
}

static void print_tally(const char *label, const tally_t *t) {
    printf("%surgent %ld: caught %ld (recall %.1f%%)   not urgent %ld: false alarms %ld (%.1f%%)\n", label, t->urgent,
           t->caught, t->urgent ? 100.0 * t->caught / t->urgent : 0, t->benign, t->alarms,
           t->benign ? 100.0 * t->alarms / t->benign : 0);
}

static void json_tally(const tally_t *t) {
    printf("{\"urgent\": %ld, \"caught\": %ld, \"recall\": %.4f, \"not_urgent\": %ld, \"false_alarms\": %ld, "
           "\"false_alarm_rate\": %.4f}",
           t->urgent, t->caught, t->urgent ? (double)t->caught / t->urgent : 0, t->benign, t->alarms,
           t->benign ? (double)t->alarms / t->benign : 0);
}

enum { EV_COUNTS_ONLY = 1, /* counts alone */
       EV_CALM = 2 };       /* every line read as not urgent, whatever it says (a set of ordinary messages) */

int cli_read_labelled(const char *path, int calm, int stop, int (*fn)(void *user, const cli_labelled_t *m),
                      void *user) {
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        perror(path);
        return -2;
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t no = 1; getline(&line, &cap, f) > 0 && !(rc && stop); no++) {
        if (strspn(line, " \t\r\n") == strlen(line)) continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        cli_labelled_t m = {path, json_string_value(json_object_get(j, "text")),
                            json_string_value(json_object_get(j, "presentation")), no, 0};
        if (!m.presentation) m.presentation = json_string_value(json_object_get(j, "category"));
        json_t *u = calm ? json_false() : json_object_get(j, "urgent");
        if (!m.text || !json_is_boolean(u)) {
            if (j) fprintf(stderr, "%s:%zu: expected {\"text\": string, \"urgent\": true|false, \"presentation\"}\n", path, no);
            else fprintf(stderr, "%s:%zu: not valid JSON (at column %d)\n", path, no, je.column);
            rc = -1;
        } else {
            m.urgent = json_is_true(u);
            if (fn(user, &m)) rc = -1;
        }
        json_decref(j);
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

typedef struct {
    int counts_only, n_sys, ng;
    verdict_fn fn;
    void *user;
    group_t g[MAX_GROUPS];
    tally_t all[N_SYSTEMS];
} eval_t;

static int eval_line(void *user, const cli_labelled_t *m) {
    eval_t *e = user;
    group_t *gr = group_of(e->g, &e->ng, m->presentation ? m->presentation : "-");
    int said[N_SYSTEMS] = {0}, last = e->n_sys - 1;
    qc_urgent_t kind = QC_URGENT_NONE;
    if (e->fn(e->user, m->text, said, &kind)) {
        fprintf(stderr, "%s:%zu: cannot be judged\n", m->path, m->line);
        return -1;
    }
    for (int s = 0; s < e->n_sys; s++) {
        tally(&e->all[s], m->urgent, said[s]);
        tally(&gr->t[s], m->urgent, said[s]);
    }
    if (m->urgent && !said[last] && !e->counts_only)
        printf("miss  %s:%zu [%s] %s\n", m->path, m->line, gr->name, m->text);
    if (!m->urgent && said[last] && !e->counts_only)
        printf("alarm %s:%zu [%s -> %s] %s\n", m->path, m->line, gr->name,
               kind ? qc_urgent_name(kind) : qc_urgent_name(QC_URGENT_MODEL), m->text);
    return 0;
}

/* Lines {"text", "urgent": bool, "presentation" or "category"}, judged by
 * n_sys systems through fn. Prints recall and false alarms overall and per
 * presentation for each; each miss and false alarm (of the last system)
 * with its line number unless EV_COUNTS_ONLY is in flags (a set kept unseen
 * must stay unseen). Returns the exit status. */
static int urgency_eval(const char *path, int json, int flags, int n_sys, verdict_fn fn, void *user) {
    eval_t *e = calloc(1, sizeof *e);
    if (!e) return 1;
    *e = (eval_t){.counts_only = flags & EV_COUNTS_ONLY, .n_sys = n_sys, .fn = fn, .user = user};
    int rc = cli_read_labelled(path, flags & EV_CALM, 0, eval_line, e);
    if (rc == -2) {
        free(e);
        return 1;
    }
    rc = rc ? 1 : 0;
    group_t *g = e->g;
    tally_t *all = e->all;
    int ng = e->ng;
    for (int s = 0; s < n_sys; s++) {
        char label[32] = "";
        if (n_sys > 1) snprintf(label, sizeof label, "%-7s", system_name[s]);
        print_tally(label, &all[s]);
    }
    for (int i = 0; i < ng; i++)
        for (int s = 0; s < n_sys; s++) {
            char label[32] = "";
            if (n_sys > 1) snprintf(label, sizeof label, "%-7s ", system_name[s]);
            printf("  %-20s %surgent %3ld caught %3ld   not urgent %3ld alarms %3ld\n", s ? "" : g[i].name, label,
                   g[i].t[s].urgent, g[i].t[s].caught, g[i].t[s].benign, g[i].t[s].alarms);
        }
    if (json && n_sys == 1) {
        json_tally(&all[0]);
        putchar('\n');
    } else if (json) {
        for (int s = 0; s < n_sys; s++) {
            printf("%s\"%s\": ", s ? ", " : "{", system_name[s]);
            json_tally(&all[s]);
        }
        printf("}\n");
    }
    free(e);
    return rc;
}

/* ==== the model's opinion ==== */

typedef struct {
    qc_care_t *c;
    double ms;
    long n;
} risk_t;

static int risk_verdict(void *user, const char *text, int said[N_SYSTEMS], qc_urgent_t *kind) {
    risk_t *r = user;
    rules_verdict(NULL, text, said, kind);
    qc_scores_t s;
    if (qc_care_classify(r->c, qc_care_risk_labels(r->c), text, strlen(text), &s)) {
        fprintf(stderr, "qcare eval: %s\n", qc_care_errmsg(r->c));
        return -1;
    }
    said[1] = s.top == 0; /* label 0: "urgent" */
    said[2] = said[0] || said[1];
    r->ms += s.ms;
    r->n++;
    return 0;
}

/* The model's opinion on path, alone and with the rules in use. */
static int risk_eval(const char *path, int json, int flags, const char *model, const char *dtype, int n_threads,
                     int n_ctx) {
    qc_model_t *m = cli_load_model(model, dtype, n_threads);
    if (!m) return 1;
    risk_t r = {0};
    char err[512];
    qc_care_opts_t o = {.use_prefix_cache = 1, .risk_model = 1, .n_ctx = n_ctx};
    if (qc_care_new(m, &o, &r.c, err, sizeof err)) {
        fprintf(stderr, "qcare eval: %s\n", err);
        qc_model_free(m);
        return 1;
    }
    int rc = urgency_eval(path, json, flags, N_SYSTEMS, risk_verdict, &r);
    if (r.n) fprintf(stderr, "qcare eval: the model's opinion took %.1f ms per message on average\n", r.ms / r.n);
    qc_care_free(r.c);
    qc_model_free(m);
    return rc;
}

int cmd_eval_safety(int argc, char **argv) {
    const char *data = NULL, *model = NULL, *dtype = NULL, *v;
    cli_safety_args_t sa = {0};
    int json = 0, flags = 0, risk = 0, n_threads = 0, n_ctx = 0, bad = 0;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--task")) risk = !strcmp(argv[i + 1], "risk");
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare eval --task safety --data FILE.jsonl [--counts-only] [--calm] [--json]\n"
                   "                          [--safety-rules F] [--safety-lexicon F|off]\n"
                   "       qcare eval --task risk --model M --data FILE.jsonl [--counts-only] [--json]\n\n"
                   "Scores urgency verdicts on {\"text\", \"urgent\": bool, \"presentation\"} lines: recall and\n"
                   "false alarms, overall and per presentation, and each miss and false alarm with its line.\n"
                   "--task safety: the urgent-care rules (no model needed). --task risk: the model's own\n"
                   "opinion (label scoring: \"urgent\" / \"not urgent\" after a bilingual few-shot prompt),\n"
                   "alone and together with the rules (urgent when either says so), as serve --risk-model on\n"
                   "decides; the misses and alarms listed are those of both together. --counts-only prints\n"
                   "the counts alone (for a held-out set that must stay unseen); with --json the last line\n"
                   "holds them. --calm reads every line as not urgent, whatever it says (a file of ordinary\n"
                   "messages such as data/emotion-eval.jsonl: its false alarms). The safety task reads the\n"
                   "rules and, where none matched, the lexicon (docs/safety.md). Measure the model on real weights and on data not used to tune the rules.\n\n"
                   "  --safety-rules F  score the rules of file F instead of the built-in ones\n"
                   "  --safety-lexicon F  the second reader's weights of file F; off: the rules alone\n"
                   "  --model M, --dtype T, --threads N, --ctx N   as for the other model commands (risk)\n");
            return 0;
        }
        if (!strcmp(argv[i], "--task") && i + 1 < argc) {
            i++; /* already known to be "safety" or "risk" */
        } else if (cli_opt(argc, argv, &i, "--data", &data, &bad)) {
        } else if (risk && (cli_opt(argc, argv, &i, "--model", &model, &bad) || cli_opt(argc, argv, &i, "-m", &model, &bad) ||
                            cli_opt(argc, argv, &i, "--dtype", &dtype, &bad))) {
        } else if (risk && (cli_opt(argc, argv, &i, "--threads", &v, &bad) || cli_opt(argc, argv, &i, "-t", &v, &bad))) {
            if (!bad) n_threads = (int)cli_parse_long("--threads", v, 1, 256, &bad);
        } else if (risk && cli_opt(argc, argv, &i, "--ctx", &v, &bad)) {
            if (!bad) n_ctx = (int)cli_parse_long("--ctx", v, 64, 1 << 20, &bad);
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--counts-only")) {
            flags |= EV_COUNTS_ONLY;
        } else if (!strcmp(argv[i], "--calm")) {
            flags |= EV_CALM;
        } else if (cli_safety_opt(argc, argv, &i, &sa, &bad)) {
            continue;
        } else {
            fprintf(stderr, "qcare eval: unknown argument '%s' (see qcare eval --task %s --help)\n", argv[i],
                    risk ? "risk" : "safety");
            return 2;
        }
    }
    if (bad) return 2;
    if (!data) {
        fprintf(stderr, "qcare eval --task %s: --data FILE.jsonl is required\n", risk ? "risk" : "safety");
        return 2;
    }
    qc_safety_t *rules = cli_safety_open("eval", &sa);
    if (!rules) return 1;
    int rc = risk ? risk_eval(data, json, flags, model, dtype, n_threads, n_ctx)
                  : urgency_eval(data, json, flags, 1, rules_verdict, NULL);
    qc_safety_use(NULL);
    qc_safety_free(rules);
    return rc;
}
