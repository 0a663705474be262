/* cmd_safety_eval.c — `qcare eval --task safety`: the urgent-care rules
 * (qc_safety_check, no model) scored on a labelled set of messages. */
#include "cli/cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 64

/* ==== the safety options (shared with serve, ask and chat) ==== */

int cli_safety_opt(int argc, char **argv, int *i, cli_safety_args_t *a, int *bad) {
    return cli_opt(argc, argv, i, "--safety-rules", &a->rules, bad) || cli_opt(argc, argv, i, "--region", &a->region, bad) ||
           cli_opt(argc, argv, i, "--emergency-numbers", &a->numbers, bad);
}

qc_safety_t *cli_safety_open(const char *cmd, const cli_safety_args_t *a) {
    qc_safety_config_t cfg = {.rules_path = a->rules, .region = a->region, .numbers = a->numbers};
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
    long urgent, caught, benign, alarms;
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

/* Lines {"text", "urgent": bool, "presentation" or "category"}. Prints
 * recall and false alarms overall and per presentation; each miss and false
 * alarm with its line number unless counts_only (a set kept unseen must
 * stay unseen). Returns the exit status. */
static int safety_eval(const qc_safety_t *rules, const char *path, int json, int counts_only) {
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        perror(path);
        return 1;
    }
    group_t g[MAX_GROUPS];
    int ng = 0, rc = 0;
    long urgent = 0, caught = 0, benign = 0, alarms = 0;
    char *line = NULL;
    size_t cap = 0;
    for (size_t no = 1; getline(&line, &cap, f) > 0; no++) {
        if (strspn(line, " \t\r\n") == strlen(line)) continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        const char *text = json_string_value(json_object_get(j, "text"));
        json_t *u = json_object_get(j, "urgent");
        if (!text || !json_is_boolean(u)) {
            if (j) fprintf(stderr, "%s:%zu: expected {\"text\": string, \"urgent\": true|false}\n", path, no);
            else fprintf(stderr, "%s:%zu: not valid JSON (at column %d)\n", path, no, je.column);
            json_decref(j);
            rc = 1;
            continue;
        }
        const char *pres = json_string_value(json_object_get(j, "presentation"));
        if (!pres) pres = json_string_value(json_object_get(j, "category"));
        group_t *gr = group_of(g, &ng, pres ? pres : "-");
        qc_safety_result_t r = qc_safety_match(rules, text, strlen(text));
        int said = r.kind != QC_URGENT_NONE;
        if (json_is_true(u)) {
            urgent++, gr->urgent++;
            caught += said, gr->caught += said;
            if (!said && !counts_only) printf("miss  %s:%zu [%s] %s\n", path, no, gr->name, text);
        } else {
            benign++, gr->benign++;
            alarms += said, gr->alarms += said;
            if (said && !counts_only)
                printf("alarm %s:%zu [%s -> %s] %s\n", path, no, gr->name, qc_urgent_name(r.kind), text);
        }
        json_decref(j);
    }
    free(line);
    if (f != stdin) fclose(f);
    printf("urgent %ld: caught %ld (recall %.1f%%)   not urgent %ld: false alarms %ld (%.1f%%)\n", urgent, caught,
           urgent ? 100.0 * caught / urgent : 0, benign, alarms, benign ? 100.0 * alarms / benign : 0);
    for (int i = 0; i < ng; i++)
        printf("  %-20s urgent %3ld caught %3ld   not urgent %3ld alarms %3ld\n", g[i].name, g[i].urgent, g[i].caught,
               g[i].benign, g[i].alarms);
    if (json)
        printf("{\"urgent\": %ld, \"caught\": %ld, \"recall\": %.4f, \"not_urgent\": %ld, \"false_alarms\": %ld, "
               "\"false_alarm_rate\": %.4f}\n",
               urgent, caught, urgent ? (double)caught / urgent : 0, benign, alarms, benign ? (double)alarms / benign : 0);
    return rc;
}

int cmd_eval_safety(int argc, char **argv) {
    const char *data = NULL;
    cli_safety_args_t sa = {0};
    int json = 0, counts_only = 0, bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare eval --task safety --data FILE.jsonl [--counts-only] [--json] [--safety-rules F]\n\n"
                   "Scores the urgent-care rules (no model needed) on {\"text\", \"urgent\": bool,\n"
                   "\"presentation\"} lines: recall and false alarms, overall and per presentation,\n"
                   "and each miss and false alarm with its line. --counts-only prints the counts alone\n"
                   "(for a held-out set that must stay unseen); with --json the last line holds them.\n"
                   "  --safety-rules F  score the rules of file F instead of the built-in ones\n");
            return 0;
        }
        if (!strcmp(argv[i], "--task")) {
            i++; /* already known to be "safety" */
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--counts-only")) {
            counts_only = 1;
        } else if (cli_safety_opt(argc, argv, &i, &sa, &bad)) {
            continue;
        } else {
            fprintf(stderr, "qcare eval: unknown argument '%s' (see qcare eval --task safety --help)\n", argv[i]);
            return 2;
        }
    }
    if (bad) return 2;
    if (!data) {
        fprintf(stderr, "qcare eval --task safety: --data FILE.jsonl is required\n");
        return 2;
    }
    qc_safety_t *rules = cli_safety_open("eval", &sa);
    if (!rules) return 1;
    int rc = safety_eval(rules, data, json, counts_only);
    qc_safety_use(NULL);
    qc_safety_free(rules);
    return rc;
}
