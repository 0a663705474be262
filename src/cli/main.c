/* main.c — the `qcare` command: dispatch to subcommands and the helpers
 * they share (option parsing, reading the text argument, JSON strings). */
#include "cli/cli.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ==== shared helpers ==== */

int cli_opt(int argc, char **argv, int *i, const char *name, const char **value, int *bad) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (!value) return a[n] == 0;
    if (a[n] == '=') { /* --opt=value */
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "qcare: option %s needs a value\n", name);
        *bad = 1;
        return 1;
    }
    *value = argv[++*i];
    return 1;
}

long cli_parse_long(const char *opt, const char *s, long lo, long hi, int *bad) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "qcare: %s: '%s' is not an integer in [%ld, %ld]\n", opt, s, lo, hi);
        *bad = 1;
        return lo;
    }
    return v;
}

unsigned long long cli_parse_u64(const char *opt, const char *s, int *bad) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    /* strtoull takes "-1" for 2^64 - 1: only digits are an integer here */
    if (errno || end == s || *end || s[strspn(s, "0123456789")]) {
        fprintf(stderr, "qcare: %s: '%s' is not an integer in [0, 18446744073709551615]\n", opt, s);
        *bad = 1;
        return 0;
    }
    return v;
}

double cli_parse_double(const char *opt, const char *s, double lo, double hi, int *bad) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "qcare: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
        *bad = 1;
        return lo;
    }
    return v;
}

char *cli_read_text(const char *arg, size_t *len) {
    if (strcmp(arg, "-") != 0) {
        char *s = strdup(arg);
        if (s) *len = strlen(s);
        return s;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) break;
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, stdin);
        n += r;
        if (r == 0) {
            buf[n] = 0;
            *len = n;
            return buf;
        }
    }
    free(buf);
    fprintf(stderr, "qcare: out of memory reading stdin\n");
    return NULL;
}

qc_model_t *cli_load_model(const char *dir, const char *dtype, int n_threads) {
    /* A misspelt --dtype is a usage error (exit 2, as documented), caught
     * before a model is looked for or read. */
    static const char *const dtypes[] = {"auto", "q8_0", "q4_0", "bf16", "f16", "f32"};
    int known = !dtype;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) known |= dtype && !strcmp(dtype, dtypes[i]);
    if (!known) {
        fprintf(stderr, "qcare: unknown --dtype '%s' (auto, q8_0, q4_0, bf16, f16 or f32)\n", dtype);
        exit(2);
    }
    /* --model is a folder, a .gguf file, or the name of a pulled repo; none
     * means the default model, when it has been pulled. */
    char *path = cli_resolve_model(dir);
    if (!path) return NULL; /* cli_resolve_model said why */
    char err[512];
    qc_model_t *m;
    qc_model_opts_t o = {.n_threads = n_threads, .dtype = dtype};
    qc_status st = qc_model_load(path, &o, &m, err, sizeof err);
    struct stat sb;
    const int gguf = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    free(path);
    if (st) {
        fprintf(stderr, "qcare: cannot load model: %s\n", err);
        return NULL;
    }
    /* an explicit --dtype that changes what a GGUF stores says so (a
     * safetensors folder is always converted, as documented) */
    if (gguf && dtype && strcmp(dtype, "auto") && qc_model_n_converted(m) > 0)
        fprintf(stderr, "qcare: --dtype %s: %d matrices converted from their stored type (now %s)\n", dtype,
                qc_model_n_converted(m), qc_model_dtype(m));
    return m;
}

int cli_on_piece(void *user, int32_t id, const char *piece, size_t len) {
    (void)id;
    cli_stream_t *c = user;
    if (c->stop && *c->stop) return 1;
    if (c->echo) {
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
    }
    return qc_buf_add(&c->text, piece, len) ? 1 : 0;
}

void cli_json_string(FILE *f, const char *s, size_t len) {
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
    }
    fputc('"', f);
}

/* ==== dispatch ==== */

static const struct {
    const char *name;
    cli_cmd_fn fn;
    const char *help;
} commands[] = {
    {"ask", cmd_ask, "judge a patient message's emotion, then stream a careful reply"},
    {"chat", cmd_chat, "talk in the terminal, emotion shown for every message"},
    {"serve", cmd_serve, "the HTTP API (analyze, emotion, OpenAI-compatible chat) on loopback"},
    {"classify", cmd_classify, "emotion labels for a JSONL file of messages"},
    {"eval", cmd_eval, "accuracy, macro-F1 and confusion matrix on a labelled JSONL file"},
    {"safety-train", cmd_safety_train, "the safety net's second reader: weights from labelled messages"},
    {"generate", cmd_generate, "continue a text (or a chat turn) with the model, streamed"},
    {"tokenize", cmd_tokenize, "text to token ids (JSON array), or back with --decode"},
    {"logits", cmd_logits, "next-token logits after every position, one JSON line each"},
    {"bench", cmd_bench, "prompt and generation speed (tokens/s) and peak memory"},
    {"pull", cmd_pull, "download a model from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN)"},
    {"mkmodel", cmd_mkmodel, "write a fixture model (random weights, real shapes)"},
    {"convert", cmd_convert, "convert a Hugging Face folder to a GGUF file (f16, q8_0, ...)"},
    {"records", cmd_records, "consultation records: sessions by risk, a session's turns, export, purge"},
};

static void usage(FILE *f) {
    fprintf(f, "qcare %s — an emotion-aware consultation assistant on one small Qwen model\n\n"
               "usage: qcare COMMAND [options] [TEXT | -]\n\ncommands:\n", QCARE_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`qcare COMMAND --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("qcare %s\n", QCARE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "qcare: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
