/* cmd_care.c — the product commands: ask, chat, classify, eval. */
#include "care/care.h"
#include "care/eval.h"
#include "cli/cli.h"
#include "records/ident.h"
#include "records/records.h"

#include <editline/readline.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ==== shared ==== */

typedef struct {
    const char *model, *dtype, *text;
    int n_threads, n_max, json, calibrate, no_cache, n_ctx;
    const char *input, *output, *report;
    cli_safety_args_t safety;
    const char *records; /* ask, chat: the store each turn is written to (NULL: none) */
} care_args_t;

static const char *const emoji[3] = {"😊", "😟", "😐"};

/* Parses the options every care command shares; 0 = ok, 2 = usage error,
 * -1 = an option this command does not know. */
static int care_opt(int argc, char **argv, int *i, care_args_t *a, int *bad) {
    const char *v;
    if (cli_opt(argc, argv, i, "--model", &a->model, bad) || cli_opt(argc, argv, i, "-m", &a->model, bad) ||
        cli_opt(argc, argv, i, "--dtype", &a->dtype, bad))
        return 1;
    if (cli_opt(argc, argv, i, "--threads", &v, bad) || cli_opt(argc, argv, i, "-t", &v, bad)) {
        if (!*bad) a->n_threads = (int)cli_parse_long("--threads", v, 1, 256, bad);
        return 1;
    }
    if (cli_opt(argc, argv, i, "--ctx", &v, bad)) {
        if (!*bad) a->n_ctx = (int)cli_parse_long("--ctx", v, 64, 1 << 20, bad);
        return 1;
    }
    if (cli_opt(argc, argv, i, "-n", &v, bad) || cli_opt(argc, argv, i, "--max-tokens", &v, bad)) {
        if (!*bad) a->n_max = (int)cli_parse_long("-n", v, 1, 1 << 16, bad);
        return 1;
    }
    if (cli_safety_opt(argc, argv, i, &a->safety, bad)) return 1;
    if (cli_opt(argc, argv, i, "--json", NULL, bad)) return a->json = 1;
    if (cli_opt(argc, argv, i, "--calibrate", NULL, bad)) return a->calibrate = 1;
    if (cli_opt(argc, argv, i, "--no-cache", NULL, bad)) return a->no_cache = 1;
    if (cli_opt(argc, argv, i, "--input", &a->input, bad) || cli_opt(argc, argv, i, "--data", &a->input, bad) ||
        cli_opt(argc, argv, i, "--output", &a->output, bad) || cli_opt(argc, argv, i, "--report", &a->report, bad))
        return 1;
    if (argv[*i][0] != '-' || !strcmp(argv[*i], "-")) {
        if (a->text) {
            fprintf(stderr, "qcare: one TEXT argument expected (quote the text)\n");
            *bad = 1;
        }
        a->text = argv[*i];
        return 1;
    }
    return 0;
}

#define CARE_HELP \
    "  --model M         the model: a Hugging Face folder, a .gguf file or a pulled name\n" \
    "  --ctx N           context of each message or conversation in tokens (default 2048)\n" \
    "  --dtype T         weights: auto (default: a GGUF as stored, else q8_0); converted: q8_0, q4_0, bf16, f16, f32\n" \
    "  --threads N       threads (default: one per core)\n" \
    "  --calibrate       divide out the label prior measured on an empty input\n" \
    "  --no-cache        recompute the analyst prompt for every message (for comparison)\n" CLI_SAFETY_HELP

/* Loads the model and the pipeline; prints the reason on failure. */
static qc_care_t *open_care(const care_args_t *a, qc_model_t **m) {
    *m = cli_load_model(a->model, a->dtype, a->n_threads);
    if (!*m) return NULL;
    qc_care_opts_t o = {.use_prefix_cache = !a->no_cache, .calibrate = a->calibrate, .n_ctx = a->n_ctx};
    qc_care_t *c;
    char err[512];
    if (qc_care_new(*m, &o, &c, err, sizeof err)) {
        fprintf(stderr, "qcare: %s\n", err);
        qc_model_free(*m);
        *m = NULL;
        return NULL;
    }
    return c;
}

/* ==== records (ask and chat with --records) ==== */

/* What a turn's record needs besides the turn: the store, the session, the
 * model's identity. */
typedef struct {
    qc_store_t *store;
    char session[QC_REC_SESSION_NEW_LEN + 1];
    char hash[QC_REC_HASH_LEN + 1];
    const char *model_name, *weight_type;
    int calibrated;
} recorder_t;

/* Opens a.records for m (a new session id); 0, or 1 with the reason printed. */
static int recorder_open(recorder_t *r, const care_args_t *a, const qc_model_t *m) {
    memset(r, 0, sizeof *r);
    if (!a->records) return 0;
    char err[512];
    const char *name = a->model ? a->model : "qcare", *slash = strrchr(name, '/');
    if (slash && slash[1]) name = slash + 1;
    r->model_name = name;
    r->weight_type = qc_model_dtype(m);
    r->calibrated = a->calibrate;
    if (qc_rec_session_new(r->session) || qc_rec_model_hash(m, r->hash)) {
        fprintf(stderr, "qcare: records: no random bytes or no hash\n");
        return 1;
    }
    if (qc_store_open(a->records, NULL, &r->store, err, sizeof err)) {
        fprintf(stderr, "qcare: %s\n", err);
        return 1;
    }
    return 0;
}

/* The reply's pieces through cli_on_piece, with its token ids and the time
 * of its first text kept for the record. */
typedef struct {
    cli_stream_t *out;
    qc_ids_t ids;
    double t_first;
} rec_stream_t;

static int rec_on_piece(void *user, int32_t id, const char *piece, size_t len) {
    rec_stream_t *r = user;
    if (id >= 0) qc_ids_push(&r->ids, id);
    if (len && !r->t_first) r->t_first = qc_now_ms();
    return cli_on_piece(r->out, id, piece, len);
}

static void print_emotion(const qc_emotion_t *e) {
    printf("%s %s  (positive %.2f · negative %.2f · neutral %.2f)\n", emoji[e->label],
           qc_emotion_name(e->label), e->probs[0], e->probs[1], e->probs[2]);
}

/* Writes the turn to rec's store and waits for its commit; 0, or 1 with the
 * reason printed. prompt: the reply's prompt ids (NULL for a conversation's
 * turn, whose part of the conversation qc_care_chat keeps to itself). */
static int record_turn(const recorder_t *rec, const char *text, const qc_emotion_t *e, qc_safety_result_t s,
                       const cli_stream_t *reply, const rec_stream_t *rs, const int32_t *prompt, size_t n_prompt,
                       qc_finish_t fin, double t0) {
    qc_rec_turn_t t = {
        .session_id = rec->session,
        .ts_ms = qc_rec_now_ms() - (int64_t)(qc_now_ms() - t0),
        .message = text,
        .message_len = strlen(text),
        .emotion = e->label,
        .probs = {e->probs[0], e->probs[1], e->probs[2]},
        .calibrated = rec->calibrated,
        .urgent = s.kind != 0,
        .urgent_kind = s.kind ? qc_urgent_name(s.kind) : NULL,
        .urgent_rule = s.kind ? s.term : NULL,
        .reply = reply->text.p ? reply->text.p : "",
        .reply_len = reply->text.n,
        .finish = fin,
        .model_name = rec->model_name,
        .model_hash = rec->hash,
        .weight_type = rec->weight_type,
        .prompt_tokens = (int)n_prompt,
        .completion_tokens = (int)rs->ids.n,
        .emotion_ms = e->ms,
        .ttft_ms = rs->t_first ? rs->t_first - t0 : 0,
        .total_ms = qc_now_ms() - t0,
        .prompt_ids = prompt,
        .n_prompt_ids = prompt ? n_prompt : 0,
        .reply_ids = rs->ids.p,
        .n_reply_ids = rs->ids.n,
        .model_urgent_p = NAN,
    };
    char err[512];
    if (qc_store_write(rec->store, &t, NULL, err, sizeof err)) {
        fprintf(stderr, "qcare: the record could not be written: %s\n", err);
        return 1;
    }
    return 0;
}

/* Judges, checks safety, and streams the reply for one message (a turn of
 * conversation `session` when not NULL); then writes its record when rec
 * has a store. */
static int answer(qc_care_t *c, const char *session, const char *text, int n_max, int json, cli_stream_t *reply,
                  const recorder_t *rec) {
    double t0 = qc_now_ms();
    qc_emotion_t e;
    if (qc_care_emotion(c, text, strlen(text), &e)) {
        fprintf(stderr, "qcare: %s\n", qc_care_errmsg(c));
        return 1;
    }
    qc_safety_result_t s = qc_safety_check(text, strlen(text));
    if (!json) print_emotion(&e);
    if (s.kind && !json) {
        char notice[2048];
        qc_safety_notice_for(NULL, &s, notice, sizeof notice);
        printf("\n%s\n\n", notice);
    }
    reply->echo = !json;
    rec_stream_t rs = {.out = reply};
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    if (rec->store && !session && qc_care_reply_ids(c, text, e.label, &prompt, &n_prompt)) prompt = NULL, n_prompt = 0;
    qc_status st = session ? qc_care_chat(c, session, text, e.label, NULL, n_max, rec_on_piece, &rs)
                           : qc_care_reply(c, text, e.label, NULL, n_max, rec_on_piece, &rs);
    if (st) fprintf(stderr, "\nqcare: %s\n", qc_care_errmsg(c));
    int rc = st ? 1 : 0;
    if (rec->store) {
        int stopped = reply->stop && *reply->stop;
        qc_finish_t fin = stopped ? QC_FINISH_CANCELLED : st ? QC_FINISH_ERROR
                        : rs.ids.n >= (size_t)n_max ? QC_FINISH_LENGTH : QC_FINISH_STOP;
        if (record_turn(rec, text, &e, s, reply, &rs, prompt, n_prompt, fin, t0)) rc = 1;
    }
    free(prompt);
    qc_ids_free(&rs.ids);
    if (st) return rc;
    if (!json) putchar('\n');
    if (json) {
        printf("{\"emotion\": {\"label\": \"%s\", \"probs\": {\"positive\": %.4f, \"negative\": %.4f, \"neutral\": "
               "%.4f}}, \"urgent\": %s, \"urgent_kind\": \"%s\", \"reply\": ",
               qc_emotion_name(e.label), e.probs[0], e.probs[1], e.probs[2], s.kind ? "true" : "false",
               qc_urgent_name(s.kind));
        cli_json_string(stdout, reply->text.p ? reply->text.p : "", reply->text.n);
        if (rec->store) printf(", \"session\": \"%s\"", rec->session);
        printf("}\n");
    }
    return rc;
}

/* ==== ask ==== */

int cmd_ask(int argc, char **argv) {
    care_args_t a = {.n_max = 256};
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare ask --model M [--json] [-n MAX_TOKENS] [--records PATH] TEXT|-\n\n"
                   "Judges the emotion of a patient's message (emoji, label, probabilities), shows an\n"
                   "urgent-care notice for emergencies, then streams a reply. With --json only one line:\n"
                   "{\"emotion\": {\"label\", \"probs\"}, \"urgent\": bool, \"reply\": \"...\"}.\n\n" CARE_HELP
                   "  -n N              most reply tokens (default 256)\n"
                   "  --records PATH    write the turn to this records store (default: none)\n");
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--records", &a.records, &bad)) continue;
        if (!care_opt(argc, argv, &i, &a, &bad)) {
            fprintf(stderr, "qcare ask: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (bad) return 2;
    if (!a.text) {
        fprintf(stderr, "qcare ask: TEXT (or - for stdin) is required\n");
        return 2;
    }
    qc_safety_t *rules = cli_safety_open("ask", &a.safety);
    if (!rules) return 1;
    size_t len;
    char *text = cli_read_text(a.text, &len);
    if (!text) {
        qc_safety_free(rules);
        return 1;
    }
    qc_model_t *m;
    qc_care_t *c = open_care(&a, &m);
    cli_stream_t reply = {0};
    recorder_t rec = {0};
    int rc = !c || recorder_open(&rec, &a, m) ? 1 : answer(c, NULL, text, a.n_max, a.json, &reply, &rec);
    qc_store_close(rec.store);
    qc_buf_free(&reply.text);
    free(text);
    qc_care_free(c);
    qc_model_free(m);
    qc_safety_use(NULL);
    qc_safety_free(rules);
    return rc;
}

/* ==== chat ==== */

/* Set by Ctrl-C while a reply streams: that reply stops, the chat goes on. */
static volatile sig_atomic_t chat_stop;
static void on_sigint(int sig) {
    (void)sig;
    chat_stop = 1;
}

/* One line of input without its newline (caller frees), or NULL at the
 * end. On a terminal through libedit: arrow keys, editing and an
 * in-memory history (never written to a file: it holds patients' words). */
static char *chat_read(int tty) {
    if (tty) {
        char *l = readline("> ");
        if (l && *l) add_history(l);
        return l;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n <= 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    return line;
}

int cmd_chat(int argc, char **argv) {
    care_args_t a = {.n_max = 256};
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare chat --model M [-n MAX_TOKENS] [--records PATH]\n\n"
                   "Talks in the terminal: type a message and press Enter; the emotion is shown for every\n"
                   "message, then the reply streams, remembering the conversation. Arrow keys edit the\n"
                   "line and recall earlier ones (kept in memory only, never written to disk). Ctrl-C\n"
                   "stops a reply; end of input (Ctrl-D) ends the chat; empty lines are ignored.\n\n" CARE_HELP
                   "  --records PATH    write every turn to this records store, as one session\n"
                   "                    (default: none: nothing of the chat is written)\n");
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--records", &a.records, &bad)) continue;
        if (!care_opt(argc, argv, &i, &a, &bad) || a.text) {
            fprintf(stderr, "qcare chat: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (bad) return 2;
    qc_safety_t *rules = cli_safety_open("chat", &a.safety);
    if (!rules) return 1;
    int tty = isatty(0) && isatty(1);
    if (tty) fprintf(stderr, "qcare chat: loading %s ...\n", a.model ? a.model : "the default model");
    qc_model_t *m;
    qc_care_t *c = open_care(&a, &m);
    if (!c) {
        qc_safety_free(rules);
        return 1;
    }
    recorder_t rec;
    if (recorder_open(&rec, &a, m)) {
        qc_care_free(c);
        qc_model_free(m);
        qc_safety_free(rules);
        return 1;
    }
    if (rec.store) fprintf(stderr, "qcare chat: recording to %s as session %s\n", a.records, rec.session);
    if (tty)
        fprintf(stderr, "qcare chat: %s weights ready. Type a message and press Enter; Ctrl-C stops a reply, "
                        "Ctrl-D ends.\n\n", qc_model_dtype(m));
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    for (char *line; (line = chat_read(tty));) {
        if (!line[strspn(line, " \t")]) { /* an empty line ends nothing */
            free(line);
            continue;
        }
        cli_stream_t reply = {.stop = &chat_stop};
        chat_stop = 0;
        sigaction(SIGINT, &sa, &old); /* only while the reply streams */
        answer(c, "terminal", line, a.n_max, 0, &reply, &rec);
        sigaction(SIGINT, &old, NULL);
        if (chat_stop) fprintf(stderr, "\n(reply stopped)\n");
        if (tty) putchar('\n');
        qc_buf_free(&reply.text);
        free(line);
    }
    qc_store_close(rec.store);
    qc_care_free(c);
    qc_model_free(m);
    qc_safety_use(NULL);
    qc_safety_free(rules);
    return 0;
}

/* ==== classify and eval ==== */

/* Reads a JSONL file of {"text": ..., "label"?: ...}; calls fn per line.
 * Prints a progress bar on a terminal. A bad line (or one fn fails on) is
 * reported with its number and skipped; the result is then 1. */
typedef int (*row_fn)(void *user, size_t line_no, const char *text, const char *label);

static int for_each_row(const char *path, row_fn fn, void *user) {
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        perror(path);
        return 1;
    }
    size_t total = 0, done = 0, cap = 0;
    char *line = NULL;
    if (f != stdin) {
        while (getline(&line, &cap, f) > 0) total++;
        rewind(f);
    }
    int tty = isatty(2), rc = 0;
    for (size_t no = 1; getline(&line, &cap, f) > 0; no++) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        const char *text = j ? json_string_value(json_object_get(j, "text")) : NULL;
        if (!text) {
            if (j) fprintf(stderr, "%s:%zu: expected a JSON object with a \"text\" string\n", path, no);
            else fprintf(stderr, "%s:%zu: not valid JSON (at column %d)\n", path, no, je.column);
            json_decref(j);
            rc = 1; /* reported; the other lines still count */
            continue;
        }
        if (fn(user, no, text, json_string_value(json_object_get(j, "label")))) rc = 1;
        json_decref(j);
        done++;
        if (tty && total) {
            int w = 30, fill = (int)(w * done / total);
            fprintf(stderr, "\r[%.*s%*s] %zu/%zu", fill, "##############################", w - fill, "", done, total);
        }
    }
    if (tty && total) fputc('\n', stderr);
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

typedef struct {
    qc_care_t *c;
    FILE *out;
    qc_eval_t ev;
    const char *path;
} run_t;

static int classify_row(void *user, size_t no, const char *text, const char *label) {
    (void)label;
    run_t *r = user;
    qc_emotion_t e;
    if (qc_care_emotion(r->c, text, strlen(text), &e)) {
        fprintf(stderr, "%s:%zu: %s\n", r->path, no, qc_care_errmsg(r->c));
        return 1;
    }
    fprintf(r->out, "{\"text\": ");
    cli_json_string(r->out, text, strlen(text));
    fprintf(r->out, ", \"label\": \"%s\", \"probs\": {\"positive\": %.4f, \"negative\": %.4f, \"neutral\": %.4f}}\n",
            qc_emotion_name(e.label), e.probs[0], e.probs[1], e.probs[2]);
    return 0;
}

static int eval_row(void *user, size_t no, const char *text, const char *label) {
    run_t *r = user;
    int truth = qc_emotion_index(label);
    if (truth < 0) {
        fprintf(stderr, "%s:%zu: \"label\" must be positive, negative or neutral\n", r->path, no);
        return 1;
    }
    qc_emotion_t e;
    if (qc_care_emotion(r->c, text, strlen(text), &e)) {
        fprintf(stderr, "%s:%zu: %s\n", r->path, no, qc_care_errmsg(r->c));
        return 1;
    }
    return qc_eval_add(&r->ev, truth, e.label, e.ms) ? 1 : 0;
}

/* ==== classify --labels: label scoring for the caller's labels ==== */

typedef struct {
    char **labels;       /* owned */
    size_t n_labels;
    qc_example_t *ex;    /* texts and labels owned */
    size_t n_ex, cap_ex;
    const char *path;
    qc_care_t *c;
    qc_labels_t *t;
    FILE *out;
} labels_run_t;

static void labels_run_free(labels_run_t *r) {
    for (size_t i = 0; i < r->n_labels; i++) free(r->labels[i]);
    free(r->labels);
    for (size_t i = 0; i < r->n_ex; i++) {
        free((char *)r->ex[i].text);
        free((char *)r->ex[i].label);
    }
    free(r->ex);
    qc_labels_free(r->t);
}

static int add_label(labels_run_t *r, const char *s, size_t n) {
    char **g = realloc(r->labels, (r->n_labels + 1) * sizeof *g);
    if (!g) return -1;
    r->labels = g;
    if (!(r->labels[r->n_labels] = strndup(s, n))) return -1;
    r->n_labels++;
    return 0;
}

/* --labels: a file with one label per line (empty lines skipped), or else
 * a comma-separated list (each item without its surrounding spaces). */
static int read_labels(labels_run_t *r, const char *arg) {
    FILE *f = fopen(arg, "r");
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        int rc = 0;
        while (!rc && (n = getline(&line, &cap, f)) > 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
            if (n > 0) rc = add_label(r, line, (size_t)n);
        }
        free(line);
        fclose(f);
        return rc;
    }
    for (const char *p = arg;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && *p == ' ') p++, n--;
        while (n && p[n - 1] == ' ') n--;
        if (add_label(r, p, n)) return -1;
        if (!end) return 0;
        p = end + 1;
    }
}

static int example_row(void *user, size_t no, const char *text, const char *label) {
    labels_run_t *r = user;
    if (!label) {
        fprintf(stderr, "%s:%zu: an example needs a \"label\" string\n", r->path, no);
        return 1;
    }
    if (r->n_ex == r->cap_ex) {
        size_t cap = r->cap_ex ? 2 * r->cap_ex : 16;
        qc_example_t *g = realloc(r->ex, cap * sizeof *g);
        if (!g) return 1;
        r->ex = g;
        r->cap_ex = cap;
    }
    r->ex[r->n_ex].text = strdup(text);
    r->ex[r->n_ex].label = strdup(label);
    r->n_ex++;
    return 0;
}

/* Scores one text; prints the answer (with the text first when `with_text`). */
static int labels_one(labels_run_t *r, const char *text, int with_text) {
    qc_scores_t s;
    if (qc_care_classify(r->c, r->t, text, strlen(text), &s)) {
        fprintf(stderr, "qcare classify: %s\n", qc_care_errmsg(r->c));
        return 1;
    }
    char *js = qc_scores_json(r->t, &s);
    if (!js) return 1;
    if (with_text) {
        fprintf(r->out, "{\"text\": ");
        cli_json_string(r->out, text, strlen(text));
        fprintf(r->out, ", %s\n", js + 1); /* the answer's fields after it */
    } else {
        fprintf(r->out, "%s\n", js);
    }
    free(js);
    return 0;
}

static int labels_row(void *user, size_t no, const char *text, const char *label) {
    (void)no, (void)label;
    return labels_one(user, text, 1);
}

/* qcare classify --labels ...: the task from the options, then TEXT or
 * every line of --input. */
static int classify_labels(const care_args_t *a, const char *labels, const char *instruction, const char *examples,
                           int mean) {
    labels_run_t r = {.out = stdout};
    int rc = 1;
    char err[512];
    if (read_labels(&r, labels)) {
        fprintf(stderr, "qcare classify: out of memory\n");
        goto done;
    }
    if (examples && ((r.path = examples), for_each_row(examples, example_row, &r))) goto done;
    if (a->output && !(r.out = fopen(a->output, "w"))) {
        perror(a->output);
        goto done;
    }
    size_t len = 0;
    char *text = a->text ? cli_read_text(a->text, &len) : NULL;
    if (a->text && !text) goto done;
    qc_model_t *m = NULL;
    if ((r.c = open_care(a, &m))) {
        qc_labels_spec_t sp = {.labels = (const char *const *)r.labels, .n_labels = r.n_labels,
                               .instruction = instruction, .examples = r.ex, .n_examples = r.n_ex,
                               .calibrate = a->calibrate, .mean = mean};
        if (qc_labels_new(m, &sp, a->n_ctx, &r.t, err, sizeof err)) {
            fprintf(stderr, "qcare classify: %s\n", err);
        } else {
            r.path = a->input;
            rc = text ? labels_one(&r, text, 0) : for_each_row(a->input, labels_row, &r);
        }
        qc_care_free(r.c);
        qc_model_free(m);
    }
    free(text);
    if (r.out != stdout && fclose(r.out)) rc = 1;
done:
    labels_run_free(&r);
    return rc;
}

int cmd_classify(int argc, char **argv) {
    care_args_t a = {0};
    const char *labels = NULL, *instruction = NULL, *examples = NULL, *norm = NULL;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare classify --model M --input FILE.jsonl [--output FILE]\n"
                   "       qcare classify --model M --labels FILE|a,b,c [--instruction TEXT] [--examples FILE.jsonl]\n"
                   "                      [--normalize sum|mean] [--calibrate] (TEXT|- | --input FILE.jsonl)\n\n"
                   "Without --labels: labels the emotion of every {\"text\": ...} line; writes {\"text\",\n"
                   "\"label\", \"probs\"} lines to --output (default stdout), with a progress bar on a terminal.\n\n"
                   "With --labels: scores the given labels (2 to 32, 1 to 64 characters each; a file with one\n"
                   "label per line, or a comma-separated list) after TEXT, or after every line of --input, and\n"
                   "prints the answer POST /v1/classify gives: {\"labels\": [{\"label\", \"probability\",\n"
                   "\"loglik\", \"tokens\"}, ...], \"top\", ...} (with \"text\" first for --input lines).\n"
                   "  --instruction T   the system turn (default: a sentence naming the labels)\n"
                   "  --examples F      few-shot examples: {\"text\", \"label\"} lines, in order\n"
                   "  --normalize N     sum (default) or mean: per-token mean log-probability\n\n" CARE_HELP);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--labels", &labels, &bad) ||
            cli_opt(argc, argv, &i, "--instruction", &instruction, &bad) ||
            cli_opt(argc, argv, &i, "--examples", &examples, &bad) || cli_opt(argc, argv, &i, "--normalize", &norm, &bad))
            continue;
        if (!care_opt(argc, argv, &i, &a, &bad) || (a.text && !labels)) {
            fprintf(stderr, "qcare classify: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (bad) return 2;
    if (!labels && (instruction || examples || norm)) {
        fprintf(stderr, "qcare classify: --instruction, --examples and --normalize need --labels\n");
        return 2;
    }
    if (norm && strcmp(norm, "sum") && strcmp(norm, "mean")) {
        fprintf(stderr, "qcare classify: --normalize must be sum or mean\n");
        return 2;
    }
    if (labels && !a.text == !a.input) {
        fprintf(stderr, "qcare classify: give either TEXT (or - for stdin) or --input FILE.jsonl\n");
        return 2;
    }
    if (labels) return classify_labels(&a, labels, instruction, examples, norm && !strcmp(norm, "mean"));
    if (!a.input) {
        fprintf(stderr, "qcare classify: --input FILE.jsonl is required\n");
        return 2;
    }
    run_t r = {.path = a.input, .out = stdout};
    if (a.output && !(r.out = fopen(a.output, "w"))) {
        perror(a.output);
        return 1;
    }
    qc_model_t *m;
    int rc = 1;
    if ((r.c = open_care(&a, &m))) {
        rc = for_each_row(a.input, classify_row, &r);
        qc_care_free(r.c);
        qc_model_free(m);
    }
    if (r.out != stdout && fclose(r.out)) rc = 1;
    return rc;
}

int cmd_eval(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--task")) {
            if (!strcmp(argv[i + 1], "safety") || !strcmp(argv[i + 1], "risk")) return cmd_eval_safety(argc, argv);
            if (strcmp(argv[i + 1], "emotion")) {
                fprintf(stderr, "qcare eval: --task must be emotion (the default), safety or risk\n");
                return 2;
            }
        }
    care_args_t a = {0};
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--task") && i + 1 < argc) { /* emotion */
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare eval --model M --data FILE.jsonl [--json] [--report FILE.html]\n"
                   "       qcare eval --task safety --data FILE.jsonl [--counts-only] [--json] [--safety-rules F]\n"
                   "       qcare eval --task risk --model M --data FILE.jsonl [--counts-only] [--json]\n\n"
                   "Classifies every {\"text\", \"label\"} line and reports accuracy, macro-F1, per-class\n"
                   "precision/recall/F1, the confusion matrix and latency p50/p95. --report writes an HTML\n"
                   "page with the confusion matrix drawn; with --json the last line holds the numbers.\n\n" CARE_HELP);
            return 0;
        }
        if (!care_opt(argc, argv, &i, &a, &bad) || a.text) {
            fprintf(stderr, "qcare eval: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (bad) return 2;
    if (!a.input) {
        fprintf(stderr, "qcare eval: --data FILE.jsonl is required\n");
        return 2;
    }
    run_t r = {.path = a.input};
    qc_eval_init(&r.ev);
    qc_model_t *m;
    int rc = 1;
    if ((r.c = open_care(&a, &m))) {
        rc = for_each_row(a.input, eval_row, &r);
        qc_care_free(r.c);
        qc_model_free(m);
    }
    if (r.ev.n > 0) { /* the lines that could be scored, even when some could not */
        qc_eval_summary_t s;
        qc_eval_summarize(&r.ev, &s);
        printf("n %ld  accuracy %.3f  macro-F1 %.3f  latency p50 %.1f ms  p95 %.1f ms\n", s.n, s.accuracy, s.macro_f1,
               s.p50_ms, s.p95_ms);
        for (int k = 0; k < 3; k++)
            printf("  %-8s P %.3f  R %.3f  F1 %.3f  (n %ld)   confusion: %ld %ld %ld\n", qc_emotion_name(k),
                   s.precision[k], s.recall[k], s.f1[k], s.support[k], r.ev.cm[k][0], r.ev.cm[k][1], r.ev.cm[k][2]);
        if (a.report && qc_eval_write_html(a.report, "qcare emotion evaluation", &r.ev, &s)) {
            perror(a.report);
            rc = 1;
        }
        if (a.json) {
            qc_eval_write_json(stdout, &r.ev, &s);
            putchar('\n');
        }
    }
    qc_eval_free(&r.ev);
    return rc;
}
