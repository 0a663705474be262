/* cli.h — pieces shared by the `qcare` subcommands. */
#ifndef QC_CLI_H
#define QC_CLI_H

#include "qcare_care.h"
#include "base/base.h"

#include <signal.h>

#include <stdio.h>

/* A subcommand: argc/argv start at the subcommand's own name. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

/* Whether argv[*i] is option `name`; if it takes a value (want_value), the
 * value is stored in *value and *i advanced (error printed and exit status 2
 * via *bad when it is missing). */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **value, int *bad);

/* Parses an int/float option value; prints an error naming opt and sets *bad
 * on garbage. */
long cli_parse_long(const char *opt, const char *s, long lo, long hi, int *bad);
/* A whole decimal number in [0, 2^64 - 1], exactly (a seed). */
unsigned long long cli_parse_u64(const char *opt, const char *s, int *bad);
double cli_parse_double(const char *opt, const char *s, double lo, double hi, int *bad);

/* The text argument: the literal string, or all of stdin for "-". Caller frees.
 * NULL (message printed) on failure. */
char *cli_read_text(const char *arg, size_t *len);

/* Loads --model with --dtype / --threads (message printed on failure). */
qc_model_t *cli_load_model(const char *dir, const char *dtype, int n_threads);

/* --model's value: arg if it is an existing path, else the folder of a pulled repo "owner/name" (NULL: the
 * default model) in the models folder. Caller frees; NULL, message printed, when there is neither. */
char *cli_resolve_model(const char *arg);

/* Streamed model text: echoed to stdout as it comes (when echo) and kept
 * whole in text (text.p NUL-terminated, text.n bytes; qc_buf_free it).
 * Generation stops when *stop (if set) becomes non-zero, e.g. from a
 * SIGINT handler. */
typedef struct {
    qc_buf_t text;
    int echo;
    volatile sig_atomic_t *stop;
} cli_stream_t;

/* A qc_token_cb for cli_stream_t (user): echoes and keeps each piece;
 * stops generation when out of memory or asked to. */
int cli_on_piece(void *user, int32_t id, const char *piece, size_t len);

/* Prints s as a JSON string literal (with quotes) to f. */
void cli_json_string(FILE *f, const char *s, size_t len);

/* The safety net's options of serve, ask, chat and eval --task safety. */
typedef struct {
    const char *rules, *region, *numbers; /* --safety-rules FILE, --region R, --emergency-numbers LIST */
    const char *lexicon;                  /* --safety-lexicon FILE|off */
} cli_safety_args_t;
#define CLI_SAFETY_HELP \
    "  --safety-rules F  the safety net's rules from file F instead of the built-in ones\n" \
    "                    (format: docs/safety.md; a malformed file is refused with its line)\n" \
    "  --safety-lexicon F  the second reader's weights from file F (qcare safety-train), or \"off\":\n" \
    "                    the rules alone\n" \
    "  --region R        numbers in the urgent notice: CN, HK, TW, US, EU or UK\n" \
    "  --emergency-numbers \"emergency=120,crisis=...,poison=...,abuse=...\"  (override the region's)\n"
/* Whether argv[*i] is one of those options (value stored, *i advanced). */
int cli_safety_opt(int argc, char **argv, int *i, cli_safety_args_t *a, int *bad);
/* Compiles the rule set they name and makes it the one in use
 * (qc_safety_use); NULL, reason printed as "qcare CMD: ...", on failure.
 * With no option given it still checks the built-in rules. Free with
 * qc_safety_free after the last check. */
qc_safety_t *cli_safety_open(const char *cmd, const cli_safety_args_t *a);

/* One line of a labelled set of messages. */
typedef struct {
    const char *path, *text, *presentation; /* presentation (or "category"), NULL when absent */
    size_t line;
    int urgent;
} cli_labelled_t;
/* Calls fn on each line {"text": string, "urgent": true|false, "presentation"}
 * of path ("-": stdin), blank lines skipped; with calm every line is taken
 * as not urgent whatever it says. A malformed line is reported as
 * PATH:LINE, and fn returns nonzero for a line it refuses (its reason
 * printed); the reading goes on after either unless stop is set. 0; -1
 * when a line was malformed or refused; -2 (perror'd) when path cannot be
 * opened. */
int cli_read_labelled(const char *path, int calm, int stop, int (*fn)(void *user, const cli_labelled_t *m),
                      void *user);

int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_ask(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_safety_train(int argc, char **argv);
int cmd_eval_safety(int argc, char **argv); /* eval --task safety | risk */
int cmd_pull(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_records(int argc, char **argv);

#endif
