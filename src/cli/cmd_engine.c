/* cmd_engine.c — the engine-level commands: tokenize, logits, generate,
 * mkmodel. */
#include "cli/cli.h"
#include "base/base.h"
#include "mkmodel.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>

/* ==== options shared by the model commands ==== */

typedef struct {
    const char *model;
    const char *text; /* the last non-option argument */
    const char *dtype;
    int n_ctx, n_batch, n_threads;
} common_t;

/* Consumes argv[*i] if it is a common option or the text; returns 0 if it is
 * none of them (an unknown option). */
static int common_opt(int argc, char **argv, int *i, common_t *c, int *bad) {
    const char *v;
    if (cli_opt(argc, argv, i, "--model", &c->model, bad) || cli_opt(argc, argv, i, "-m", &c->model, bad))
        return 1;
    if (cli_opt(argc, argv, i, "--ctx", &v, bad)) {
        if (!*bad) c->n_ctx = (int)cli_parse_long("--ctx", v, 1, 1 << 20, bad);
        return 1;
    }
    if (cli_opt(argc, argv, i, "--batch", &v, bad)) {
        if (!*bad) c->n_batch = (int)cli_parse_long("--batch", v, 1, 4096, bad);
        return 1;
    }
    if (cli_opt(argc, argv, i, "--threads", &v, bad) || cli_opt(argc, argv, i, "-t", &v, bad)) {
        if (!*bad) c->n_threads = (int)cli_parse_long("--threads", v, 1, 256, bad);
        return 1;
    }
    if (cli_opt(argc, argv, i, "--dtype", &c->dtype, bad)) return 1;
    if (argv[*i][0] != '-' || !strcmp(argv[*i], "-")) {
        if (c->text) {
            fprintf(stderr, "qcare: one TEXT argument expected, got '%s' and '%s' (quote the text)\n", c->text, argv[*i]);
            *bad = 1;
        }
        c->text = argv[*i];
        return 1;
    }
    return 0;
}

static int unknown_opt(const char *cmd, const char *opt) {
    fprintf(stderr, "qcare %s: unknown option '%s' (see qcare %s --help)\n", cmd, opt, cmd);
    return 2;
}

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

#define COMMON_HELP \
    "  --model M         a Hugging Face folder (config.json, model.safetensors, tokenizer.json),\n" \
    "                    a .gguf file, or the name of a pulled model\n" \
    "  --ctx N           context size in tokens (default: the model's, at most 4096)\n" \
    "  --batch N         tokens per forward pass during prefill (default 512)\n" \
    "  --dtype T         weights: auto (default: a GGUF as stored, else q8_0); converted: q8_0, q4_0, bf16, f16, f32\n" \
    "  --threads N       threads (default: one per CPU core)\n" \
    "  TEXT              the text, or - to read it from stdin; special tokens such as\n" \
    "                    <|im_start|> in it are recognized\n"

/* Loads the model and encodes the text argument (special tokens parsed). */
static qc_model_t *load_and_encode(const common_t *c, int32_t **ids, size_t *n) {
    if (!c->text) {
        fprintf(stderr, "qcare: TEXT (or - for stdin) is required\n");
        return NULL;
    }
    qc_model_t *m = cli_load_model(c->model, c->dtype, c->n_threads);
    if (!m) return NULL;
    size_t len;
    char *text = cli_read_text(c->text, &len);
    if (!text) goto fail;
    qc_status st = qc_tokenizer_encode(qc_model_tokenizer(m), text, len, QC_TOK_PARSE_SPECIAL, ids, n);
    free(text);
    if (st) {
        fprintf(stderr, "qcare: cannot tokenize the text: %s (is it UTF-8?)\n", qc_status_str(st));
        goto fail;
    }
    return m;
fail:
    qc_model_free(m);
    return NULL;
}

static qc_ctx_t *new_ctx(const qc_model_t *m, const common_t *c) {
    qc_ctx_opts_t o = {.n_batch = c->n_batch};
    qc_ctx_t *x = qc_ctx_new(m, c->n_ctx, &o);
    if (!x) fprintf(stderr, "qcare: out of memory for a %d-token context\n", c->n_ctx);
    return x;
}

/* ==== tokenize ==== */

/* Parses a list of ids written as a JSON array or separated by spaces/commas. */
static int parse_ids(const char *s, int32_t **out, size_t *n) {
    size_t cap = 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    *n = 0;
    while (ids) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == ',' || *s == '[' || *s == ']') s++;
        if (!*s) {
            *out = ids;
            return 0;
        }
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "qcare tokenize --decode: expected token ids, got '%.20s'\n", s);
            break;
        }
        if (*n == cap) {
            int32_t *nb = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!nb) break;
            ids = nb;
        }
        ids[(*n)++] = (int32_t)v;
        s = end;
    }
    free(ids);
    return 1;
}

int cmd_tokenize(int argc, char **argv) {
    common_t c = {0};
    int bad = 0, decode = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (is_help(argv[i])) {
            printf("usage: qcare tokenize --model DIR [--decode] TEXT|-\n\n"
                   "Prints the token ids of TEXT as one JSON array. With --decode, TEXT is a list of\n"
                   "ids (a JSON array or numbers separated by spaces) and the decoded text is printed.\n\n" COMMON_HELP);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--decode", NULL, &bad)) decode = 1;
        else if (!common_opt(argc, argv, &i, &c, &bad)) return unknown_opt("tokenize", argv[i]);
    }
    if (bad) return 2;
    if (!c.text) {
        fprintf(stderr, "qcare tokenize: TEXT (or - for stdin) is required\n");
        return 2;
    }
    /* A folder needs only its tokenizer.json; a .gguf file carries the
     * tokenizer in its metadata, so the model is loaded. */
    char err[512], *dir = cli_resolve_model(c.model), *path = NULL;
    qc_tokenizer_t *tok = NULL;
    qc_model_t *model = NULL;
    struct stat sb;
    if (!dir) return 1;
    qc_status st = QC_ERR_NOMEM;
    if (!stat(dir, &sb) && S_ISDIR(sb.st_mode)) {
        if ((path = malloc(strlen(dir) + 32))) {
            sprintf(path, "%s/tokenizer.json", dir);
            st = qc_tokenizer_load(path, &tok, err, sizeof err);
        }
    } else {
        qc_model_opts_t mo = {.n_threads = 1, .dtype = "bf16"};
        st = qc_model_load(dir, &mo, &model, err, sizeof err);
    }
    free(path);
    free(dir);
    if (st) {
        fprintf(stderr, "qcare tokenize: %s\n", err);
        return 1;
    }
    const qc_tokenizer_t *tk = tok ? tok : qc_model_tokenizer(model);
    size_t len, n = 0;
    int32_t *ids = NULL;
    char *text = cli_read_text(c.text, &len);
    int rc = 1;
    if (!text) goto done;
    if (decode) {
        char *out;
        size_t olen;
        if (parse_ids(text, &ids, &n)) goto done;
        if ((st = qc_tokenizer_decode(tk, ids, n, &out, &olen))) {
            fprintf(stderr, "qcare tokenize --decode: %s (an id outside the vocabulary?)\n", qc_status_str(st));
            goto done;
        }
        fwrite(out, 1, olen, stdout);
        putchar('\n');
        free(out);
    } else {
        if ((st = qc_tokenizer_encode(tk, text, len, QC_TOK_PARSE_SPECIAL, &ids, &n))) {
            fprintf(stderr, "qcare tokenize: %s\n",
                    st == QC_ERR_ARG           ? "the text is not valid UTF-8"
                    : st == QC_ERR_UNSUPPORTED ? "the tokenizer's pre-tokenizer regex hit PCRE2's match limit on this text"
                                               : qc_status_str(st));
            goto done;
        }
        putchar('[');
        for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", (int)ids[i]);
        printf("]\n");
    }
    rc = 0;
done:
    free(text);
    free(ids);
    qc_tokenizer_free(tok);
    qc_model_free(model);
    return rc;
}

/* ==== logits ==== */

int cmd_logits(int argc, char **argv) {
    common_t c = {0};
    int bad = 0, k = 5;
    const char *v;
    for (int i = 1; i < argc && !bad; i++) {
        if (is_help(argv[i])) {
            printf("usage: qcare logits --model DIR [--top K] TEXT|-\n\n"
                   "Runs the model over TEXT and prints, for every position, one JSON line\n"
                   "  {\"pos\": i, \"id\": token_id, \"top\": [[id, logit], ...]}\n"
                   "with the K (default 5) highest next-token logits after that token, best first.\n\n" COMMON_HELP);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--top", &v, &bad)) {
            if (!bad) k = (int)cli_parse_long("--top", v, 1, 1000, &bad);
        } else if (!common_opt(argc, argv, &i, &c, &bad)) {
            return unknown_opt("logits", argv[i]);
        }
    }
    if (bad) return 2;
    int32_t *ids = NULL;
    size_t n = 0;
    qc_model_t *m = load_and_encode(&c, &ids, &n);
    if (!m) return 1;
    int rc = 1;
    int32_t nv = qc_model_n_vocab(m);
    /* The prompt runs in chunks of --batch tokens, each in one forward pass,
     * as llama.cpp runs a prompt (its numerics depend on the batch size). */
    size_t chunk = c.n_batch > 0 ? (size_t)c.n_batch : 512;
    if (chunk > n) chunk = n;
    float *logits = malloc(chunk * (size_t)nv * sizeof *logits);
    int32_t *top = malloc((size_t)k * sizeof *top);
    float *topv = malloc((size_t)k * sizeof *topv);
    qc_ctx_t *x = new_ctx(m, &c);
    if (!logits || !top || !topv || !x) {
        fprintf(stderr, "qcare logits: out of memory (try a smaller --batch)\n");
        goto done;
    }
    if (n == 0) {
        fprintf(stderr, "qcare logits: the text has no tokens\n");
        goto done;
    }
    for (size_t p0 = 0; p0 < n; p0 += chunk) {
        size_t len = n - p0 < chunk ? n - p0 : chunk;
        if (qc_ctx_eval(x, ids + p0, len, logits, QC_LOGITS_ALL)) {
            fprintf(stderr, "qcare logits: %s\n", qc_ctx_errmsg(x));
            goto done;
        }
        for (size_t p = p0; p < p0 + len; p++) {
            int got = qc_top_k(logits + (p - p0) * nv, nv, k, top, topv);
            printf("{\"pos\": %zu, \"id\": %d, \"top\": [", p, (int)ids[p]);
            for (int j = 0; j < got; j++) printf(j ? ", [%d, %.6f]" : "[%d, %.6f]", (int)top[j], topv[j]);
            printf("]}\n");
        }
    }
    rc = 0;
done:
    qc_ctx_free(x);
    free(top);
    free(topv);
    free(logits);
    free(ids);
    qc_model_free(m);
    return rc;
}

/* ==== generate ==== */

int cmd_generate(int argc, char **argv) {
    common_t c = {0};
    int bad = 0, greedy = 0, chat = 0, json = 0, n_max = 128, quiet = 0;
    const char *v, *system = NULL;
    double temp = -1, top_p = -1, min_p = -1, rep = -1;
    long top_k_opt = -1;
    unsigned long long seed = 0;
    int have_seed = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (is_help(argv[i])) {
            printf("usage: qcare generate --model DIR [options] TEXT|-\n\n"
                   "Continues TEXT with the model and streams the new text to stdout.\n\n"
                   "  -n N              most tokens to generate (default 128)\n"
                   "  --greedy          always take the most likely token (no repetition penalty)\n"
                   "  --temp T          sampling temperature (default: generation_config.json)\n"
                   "  --top-k K         keep the K most likely tokens (0 = off)\n"
                   "  --top-p P         nucleus sampling mass (1 = off)\n"
                   "  --min-p P         drop tokens below P x the best probability (0 = off)\n"
                   "  --repeat-penalty R  Hugging Face repetition penalty (1 = off)\n"
                   "  --seed S          random seed, an integer 0..2^64-1 (default 0); the same seed repeats a run\n"
                   "  --chat            wrap TEXT as a user turn of a ChatML conversation\n"
                   "  --system TEXT     with --chat: the system prompt\n"
                   "  --json            finish with a line {\"ids\": [...], \"text\": \"...\"}\n"
                   "  --quiet           no timing line on stderr\n" COMMON_HELP);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "-n", &v, &bad) || cli_opt(argc, argv, &i, "--max-tokens", &v, &bad)) {
            if (!bad) n_max = (int)cli_parse_long("-n", v, 1, 1 << 20, &bad);
        } else if (cli_opt(argc, argv, &i, "--greedy", NULL, &bad)) greedy = 1;
        else if (cli_opt(argc, argv, &i, "--chat", NULL, &bad)) chat = 1;
        else if (cli_opt(argc, argv, &i, "--json", NULL, &bad)) json = 1;
        else if (cli_opt(argc, argv, &i, "--quiet", NULL, &bad)) quiet = 1;
        else if (cli_opt(argc, argv, &i, "--system", &system, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--temp", &v, &bad)) { if (!bad) temp = cli_parse_double("--temp", v, 0, 100, &bad); }
        else if (cli_opt(argc, argv, &i, "--top-p", &v, &bad)) { if (!bad) top_p = cli_parse_double("--top-p", v, 0, 1, &bad); }
        else if (cli_opt(argc, argv, &i, "--min-p", &v, &bad)) { if (!bad) min_p = cli_parse_double("--min-p", v, 0, 1, &bad); }
        else if (cli_opt(argc, argv, &i, "--repeat-penalty", &v, &bad)) { if (!bad) rep = cli_parse_double("--repeat-penalty", v, 0.01, 100, &bad); }
        else if (cli_opt(argc, argv, &i, "--top-k", &v, &bad)) { if (!bad) top_k_opt = cli_parse_long("--top-k", v, 0, 1 << 20, &bad); }
        else if (cli_opt(argc, argv, &i, "--seed", &v, &bad)) {
            if (!bad) seed = cli_parse_u64("--seed", v, &bad);
            have_seed = 1;
        } else if (!common_opt(argc, argv, &i, &c, &bad)) return unknown_opt("generate", argv[i]);
    }
    if (bad) return 2;
    if (!c.text) {
        fprintf(stderr, "qcare generate: TEXT (or - for stdin) is required\n");
        return 2;
    }
    if (system && !chat) {
        fprintf(stderr, "qcare generate: --system needs --chat (a plain prompt has no system turn)\n");
        return 2;
    }
    qc_model_t *m = cli_load_model(c.model, c.dtype, c.n_threads);
    if (!m) return 1;
    int rc = 1;
    int32_t *ids = NULL, *out = NULL;
    size_t n = 0, n_out = 0, len;
    char *text = cli_read_text(c.text, &len), *prompt = NULL;
    cli_stream_t s = {.echo = 1};
    qc_ctx_t *x = NULL;
    if (!text) goto done;
    if (chat && qc_tokenizer_find(qc_model_tokenizer(m), "<|im_start|>") < 0) {
        /* the markers would be tokenized as plain text: no turns at all */
        fprintf(stderr, "qcare generate: --chat needs a ChatML tokenizer; this one has no <|im_start|> token\n");
        goto done;
    }
    if (chat) {
        qc_chat_msg_t msgs[2];
        size_t nm = 0;
        if (system) msgs[nm++] = (qc_chat_msg_t){"system", system};
        msgs[nm++] = (qc_chat_msg_t){"user", text};
        qc_chat_opts_t co = {.add_generation_prompt = 1, .empty_think = qc_model_arch(m) == QC_ARCH_QWEN3};
        if (qc_chat_render(msgs, nm, &co, &prompt)) goto done;
    }
    const char *p = prompt ? prompt : text;
    if (qc_tokenizer_encode(qc_model_tokenizer(m), p, strlen(p), QC_TOK_PARSE_SPECIAL, &ids, &n)) {
        fprintf(stderr, "qcare generate: cannot tokenize the text (is it UTF-8?)\n");
        goto done;
    }
    if (n == 0) {
        fprintf(stderr, "qcare generate: the text has no tokens\n");
        goto done;
    }
    qc_generate_opts_t go = {.max_tokens = n_max};
    qc_model_sampling_defaults(m, &go.sampling);
    if (greedy) { /* plain argmax, no penalty: what "greedy" means in llama.cpp and HF */
        go.sampling.temperature = 0;
        go.sampling.repetition_penalty = 1;
    }
    if (temp >= 0) go.sampling.temperature = (float)temp;
    if (top_p >= 0) go.sampling.top_p = (float)top_p;
    if (min_p >= 0) go.sampling.min_p = (float)min_p;
    if (rep >= 0) go.sampling.repetition_penalty = (float)rep;
    if (top_k_opt >= 0) go.sampling.top_k = (int)top_k_opt;
    if (have_seed) go.sampling.seed = seed;
    if (!(x = new_ctx(m, &c)) || !(out = malloc((size_t)n_max * sizeof *out))) goto done;
    double t0 = qc_now_s();
    qc_status st = qc_generate(x, ids, n, &go, cli_on_piece, &s, out, &n_out);
    double t1 = qc_now_s();
    if (st) {
        fprintf(stderr, "\nqcare generate: %s\n", qc_ctx_errmsg(x));
        goto done;
    }
    putchar('\n');
    if (n_out < (size_t)n_max && qc_ctx_pos(x) >= qc_ctx_size(x) && !(n_out && qc_model_is_eog(m, out[n_out - 1])))
        fprintf(stderr, "qcare generate: stopped at the end of the context (%d tokens; --ctx sets it)\n",
                qc_ctx_size(x));
    if (json) {
        printf("{\"ids\": [");
        for (size_t i = 0; i < n_out; i++) printf(i ? ", %d" : "%d", (int)out[i]);
        printf("], \"text\": ");
        cli_json_string(stdout, s.text.p ? s.text.p : "", s.text.n);
        printf("}\n");
    }
    fflush(stdout); /* the text ends before the timing line starts, even in one file */
    if (!quiet)
        fprintf(stderr, "[%zu prompt + %zu generated tokens in %.2f s: %.2f tokens/s overall]\n", n, n_out,
                t1 - t0, (double)(n + n_out) / (t1 - t0));
    rc = 0;
done:
    qc_ctx_free(x);
    qc_buf_free(&s.text);
    free(out);
    free(ids);
    free(prompt);
    free(text);
    qc_model_free(m);
    return rc;
}

/* ==== mkmodel ==== */

int cmd_mkmodel(int argc, char **argv) {
    const char *preset = NULL, *out = NULL, *tokdir = NULL;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (is_help(argv[i])) {
            printf("usage: qcare mkmodel --preset NAME --out DIR --tokenizer DIR\n\n"
                   "Writes a Hugging Face model folder with deterministic random weights and real\n"
                   "Qwen shapes, bit-exactly as ../shared/fixtures/README.md specifies. Presets:");
            for (const char *const *p = qc_mkmodel_presets(); *p; p++) printf(" %s", *p);
            printf("\n  --tokenizer DIR   folder holding tokenizer.json (copied into the model)\n");
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--preset", &preset, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--out", &out, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--tokenizer", &tokdir, &bad)) {}
        else return unknown_opt("mkmodel", argv[i]);
    }
    if (bad) return 2;
    if (!preset || !out || !tokdir) {
        fprintf(stderr, "qcare mkmodel: --preset, --out and --tokenizer are required (see --help)\n");
        return 2;
    }
    char err[512];
    if (qc_mkmodel(preset, out, tokdir, 1, err, sizeof err)) {
        fprintf(stderr, "qcare mkmodel: %s\n", err);
        return 1;
    }
    printf("%s\n", out);
    return 0;
}
