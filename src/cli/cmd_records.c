/* cmd_records.c — `qcare records`: the consultation records of a store
 * (src/records/) from the terminal — sessions by risk, one session's turns,
 * export, purge. It opens its own connection, so it works while a server
 * writes the same file. */
#include "cli/cli.h"
#include "records/records.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help_text =
    "usage: qcare records list [options]      sessions, most at risk first\n"
    "       qcare records show SESSION        every turn of one session, in order\n"
    "       qcare records export [options]    every turn as CSV or JSON lines\n"
    "       qcare records purge --before DATE delete every turn before DATE\n"
    "\n"
    "  --records PATH      the store (default $QCARE_RECORDS); list, show and export\n"
    "                      open it read-only, so they never create or change a file\n"
    "list:\n"
    "  --order risk|recent most at risk first (default), or most recent first\n"
    "  --patient ID        only this patient's sessions\n"
    "  --urgent            only sessions with an urgent turn\n"
    "  --since DATE        only sessions with a turn at or after DATE\n"
    "  --until DATE        ... and one before DATE\n"
    "  --limit N           sessions per page, 1..1000 (default 50)\n"
    "  --cursor C          the page after the one that printed 'next page: --cursor C'\n"
    "  --json              one JSON object per line instead of the table\n"
    "show:\n"
    "  --json              one JSON object per turn (the export's fields)\n"
    "export:\n"
    "  --format csv|jsonl  CSV (RFC 4180, header row; default) or JSON lines\n"
    "  --since DATE        turns at or after DATE\n"
    "  --until DATE        turns before DATE\n"
    "  --output FILE       write to FILE (created 0600) instead of stdout\n"
    "\n"
    "DATE is YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.fff]][Z], in UTC.\n"
    "Risk = 100 when any turn was urgent + 50 x how fast P(negative) rose over the\n"
    "last 5 turns + 20 x the last P(negative) + 10 x the negative streak (of 5): an\n"
    "urgent session ranks above every other, a worsening one above a steady one.\n"
    "The commands work while `qcare serve` writes the same file; purge deletes in\n"
    "short transactions so the server's writes go on meanwhile.\n"
    "Exit status: 0 done, 1 an error, 2 bad usage.\n";

typedef struct {
    const char *records, *order, *patient, *since, *until, *limit, *cursor, *format, *output, *before;
    int urgent, json;
    const char *session;
} args_t;

/* A flag that a subcommand does not take: usage error. */
static int not_for(const char *cmd, const char *opt, int given) {
    if (given) fprintf(stderr, "qcare records %s: %s is not an option of %s (see qcare records --help)\n", cmd, opt, cmd);
    return given;
}

static int parse_date(const char *opt, const char *s, int64_t *ms) {
    if (!s) return 0;
    if (qc_rec_time_parse(s, ms)) {
        fprintf(stderr, "qcare records: %s: '%s' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z], UTC)\n", opt, s);
        return -1;
    }
    return 0;
}

/* Opens the store (read-only unless writable); NULL, message printed, on failure. */
static qc_store_t *open_records(const char *path, int writable) {
    qc_store_opts_t o = {.read_only = !writable};
    qc_store_t *s;
    char err[512];
    if (qc_store_open(path, &o, &s, err, sizeof err)) {
        fprintf(stderr, "qcare records: %s\n", err);
        return NULL;
    }
    return s;
}

static int to_file(void *user, const void *p, size_t n) { return fwrite(p, 1, n, user) != n; }

/* Prints s for a terminal: control characters (escape sequences a client
 * could have put in a message) become '?', newlines are indented. */
static void print_clean(const char *s, size_t n, const char *indent) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') printf("\n%s", indent);
        else if (c < 0x20 || c == 0x7f) putchar(c == '\t' ? '\t' : '?');
        else putchar(c);
    }
}

/* ==== list ==== */

typedef struct {
    int json, rows;
} list_t;

static int list_row(void *user, const qc_rec_session_t *ss) {
    list_t *l = user;
    l->rows++;
    if (l->json) return qc_rec_session_jsonl(ss, to_file, stdout) != QC_OK;
    char last[32];
    qc_rec_time_format(ss->last_ms, last);
    if (l->rows == 1)
        printf("%-24s %-16s %6s  %-24s %-8s %6s %6s %6s %7s %8s\n", "SESSION", "PATIENT", "TURNS", "LAST (UTC)",
               "EMOTION", "P(NEG)", "STREAK", "URGENT", "TREND", "RISK");
    print_clean(ss->session_id, strlen(ss->session_id), "");
    printf("%*s ", strlen(ss->session_id) < 24 ? (int)(24 - strlen(ss->session_id)) : 0, "");
    const char *pat = ss->patient_id ? ss->patient_id : "-";
    print_clean(pat, strlen(pat), "");
    printf("%*s %6lld  %-24s %-8s %6.2f %6d %6lld %+7.3f %8.2f\n", strlen(pat) < 16 ? (int)(16 - strlen(pat)) : 0,
           "", (long long)ss->turns, last,
           ss->last_emotion == 0 ? "positive" : ss->last_emotion == 1 ? "negative" : "neutral", ss->last_negative,
           ss->neg_streak, (long long)ss->urgent_count, ss->trend, ss->risk);
    return 0;
}

static int do_list(const args_t *a) {
    qc_rec_query_t q = {.patient_id = a->patient, .urgent_only = a->urgent, .cursor = a->cursor};
    int bad = 0;
    if (a->order && !strcmp(a->order, "recent")) q.order = QC_REC_ORDER_RECENT;
    else if (a->order && strcmp(a->order, "risk")) {
        fprintf(stderr, "qcare records list: --order: '%s' is not risk or recent\n", a->order);
        return 2;
    }
    if (a->limit) q.limit = (int)cli_parse_long("--limit", a->limit, 1, QC_REC_LIMIT_MAX, &bad);
    if (bad || parse_date("--since", a->since, &q.since_ms) || parse_date("--until", a->until, &q.until_ms)) return 2;
    qc_store_t *s = open_records(a->records, 0);
    if (!s) return 1;
    list_t l = {.json = a->json};
    char next[QC_REC_CURSOR_MAX], err[512];
    qc_status st = qc_store_sessions(s, &q, list_row, &l, next, err, sizeof err);
    qc_store_close(s);
    if (st) {
        fprintf(stderr, "qcare records list: %s\n", err);
        return st == QC_ERR_ARG ? 2 : 1;
    }
    if (!l.rows && !l.json) printf("no sessions\n");
    if (*next) fprintf(stderr, "next page: --cursor %s\n", next);
    return fflush(stdout) ? 1 : 0;
}

/* ==== show ==== */

typedef struct {
    int json, n;
} show_t;

static int show_turn(void *user, const qc_rec_turn_t *t) {
    show_t *sh = user;
    if (sh->json) return qc_rec_turn_jsonl(t, to_file, stdout) != QC_OK;
    char id[QC_REC_ID_STRLEN + 1], tm[32];
    qc_rec_id_format(&t->id, id);
    qc_rec_time_format(t->ts_ms, tm);
    if (sh->n++ == 0) {
        printf("session ");
        print_clean(t->session_id, strlen(t->session_id), "");
        if (t->patient_id) {
            printf(", patient ");
            print_clean(t->patient_id, strlen(t->patient_id), "");
        }
        printf("\n");
    }
    printf("\n%s  %s  %s (positive %.2f, negative %.2f, neutral %.2f%s)", tm, id,
           t->emotion == 0 ? "positive" : t->emotion == 1 ? "negative" : "neutral", t->probs[0], t->probs[1],
           t->probs[2], t->calibrated ? ", calibrated" : "");
    if (t->urgent) {
        printf("  URGENT %s", t->urgent_kind ? t->urgent_kind : "");
        if (t->urgent_rule) {
            printf(" (");
            print_clean(t->urgent_rule, strlen(t->urgent_rule), "");
            printf(")");
        }
    }
    printf("\n  patient: ");
    print_clean(t->message, t->message_len, "           ");
    printf("\n  reply:   ");
    print_clean(t->reply, t->reply_len, "           ");
    printf("\n  %s; %s%s%s%s; %d + %d tokens; emotion %.0f ms, first token %.0f ms, total %.0f ms\n",
           qc_finish_name(t->finish), t->model_name ? t->model_name : "?", t->weight_type ? " " : "",
           t->weight_type ? t->weight_type : "", t->dropped_turns ? " (older turns dropped)" : "", t->prompt_tokens,
           t->completion_tokens, t->emotion_ms, t->ttft_ms, t->total_ms);
    return 0;
}

static int do_show(const args_t *a) {
    qc_store_t *s = open_records(a->records, 0);
    if (!s) return 1;
    show_t sh = {.json = a->json};
    int64_t n = 0, erased = 0;
    char err[512];
    qc_status st = qc_store_turns(s, a->session, show_turn, &sh, &n, err, sizeof err);
    if (!st && n == 0) st = qc_store_tombstone(s, a->session, &erased, err, sizeof err);
    qc_store_close(s);
    if (st) {
        fprintf(stderr, "qcare records show: %s\n", err);
        return 1;
    }
    if (n == 0) {
        char tm[32];
        qc_rec_time_format(erased, tm);
        if (erased) fprintf(stderr, "qcare records show: session '%s' was erased at %s\n", a->session, tm);
        else fprintf(stderr, "qcare records show: no session '%s' in %s\n", a->session, a->records);
        return 1;
    }
    return fflush(stdout) ? 1 : 0;
}

/* ==== export, purge ==== */

static int do_export(const args_t *a) {
    qc_rec_format_t fmt = QC_REC_CSV;
    int64_t since = 0, until = 0;
    if (a->format && !strcmp(a->format, "jsonl")) fmt = QC_REC_JSONL;
    else if (a->format && strcmp(a->format, "csv")) {
        fprintf(stderr, "qcare records export: --format: '%s' is not csv or jsonl\n", a->format);
        return 2;
    }
    if (parse_date("--since", a->since, &since) || parse_date("--until", a->until, &until)) return 2;
    qc_store_t *s = open_records(a->records, 0);
    if (!s) return 1;
    FILE *f = stdout;
    if (a->output) {
        /* The export holds patients' words: readable by its owner only. */
        int fd = open(a->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || !(f = fdopen(fd, "wb"))) {
            perror(a->output);
            if (fd >= 0) close(fd);
            qc_store_close(s);
            return 1;
        }
    }
    char err[512];
    qc_status st = qc_store_export(s, fmt, since, until, to_file, f, err, sizeof err);
    qc_store_close(s);
    int werr = f == stdout ? fflush(f) : fclose(f);
    if (st || werr) {
        fprintf(stderr, "qcare records export: %s\n", st ? err : "cannot write the output");
        return 1;
    }
    return 0;
}

static int do_purge(const args_t *a) {
    int64_t before;
    if (!a->before) {
        fprintf(stderr, "qcare records purge: --before DATE is required\n");
        return 2;
    }
    if (parse_date("--before", a->before, &before)) return 2;
    if (!qc_store_path_is_url(a->records) && access(a->records, F_OK)) { /* a mistyped path must not become a new, empty store */
        perror(a->records);
        return 1;
    }
    qc_store_t *s = open_records(a->records, 1);
    if (!s) return 1;
    int64_t n = 0;
    char err[512], tm[32];
    qc_status st = qc_store_purge(s, before, &n, err, sizeof err);
    qc_store_close(s);
    qc_rec_time_format(before, tm);
    if (st) {
        fprintf(stderr, "qcare records purge: %s (%lld turns purged before the error)\n", err, (long long)n);
        return 1;
    }
    printf("purged %lld turns before %s\n", (long long)n, tm);
    return 0;
}

/* ==== the command ==== */

int cmd_records(int argc, char **argv) {
    args_t a = {0};
    const char *cmd = NULL;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(help_text, stdout);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--records", &a.records, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--order", &a.order, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--patient", &a.patient, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--since", &a.since, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--until", &a.until, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--limit", &a.limit, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--cursor", &a.cursor, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--format", &a.format, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--output", &a.output, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--before", &a.before, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--urgent", NULL, &bad)) a.urgent = 1;
        else if (cli_opt(argc, argv, &i, "--json", NULL, &bad)) a.json = 1;
        else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "qcare records: unknown option '%s' (see qcare records --help)\n", o);
            return 2;
        } else if (!cmd) {
            cmd = o;
        } else if (!strcmp(cmd, "show") && !a.session) {
            a.session = o;
        } else {
            fprintf(stderr, "qcare records: unexpected argument '%s' (see qcare records --help)\n", o);
            return 2;
        }
    }
    if (bad) return 2;
    if (!cmd) {
        fprintf(stderr, "qcare records: which command: list, show, export or purge? (see qcare records --help)\n");
        return 2;
    }
    if (!a.records) a.records = getenv("QCARE_RECORDS");
    if (!a.records || !*a.records) {
        fprintf(stderr, "qcare records %s: --records PATH is required (or set QCARE_RECORDS)\n", cmd);
        return 2;
    }
    int list_opts = a.order || a.patient || a.urgent || a.limit || a.cursor;
    int range_opts = a.since || a.until;
    if (!strcmp(cmd, "list")) {
        if (not_for(cmd, "--format/--output", a.format || a.output) || not_for(cmd, "--before", !!a.before)) return 2;
        return do_list(&a);
    }
    if (!strcmp(cmd, "show")) {
        if (!a.session) {
            fprintf(stderr, "qcare records show: which SESSION?\n");
            return 2;
        }
        if (not_for(cmd, "a list, export or purge option", list_opts || range_opts || a.format || a.output || a.before))
            return 2;
        return do_show(&a);
    }
    if (!strcmp(cmd, "export")) {
        if (not_for(cmd, "a list option", list_opts || a.json) || not_for(cmd, "--before", !!a.before)) return 2;
        return do_export(&a);
    }
    if (!strcmp(cmd, "purge")) {
        if (not_for(cmd, "a list or export option", list_opts || range_opts || a.json || a.format || a.output))
            return 2;
        return do_purge(&a);
    }
    fprintf(stderr, "qcare records: unknown command '%s': list, show, export or purge\n", cmd);
    return 2;
}
