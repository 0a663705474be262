/* cmd_pull.c — `qcare pull`: fetch a model from the Hugging Face hub (or a
 * mirror) into the models folder. The transfers themselves (resume,
 * verification, skipping complete files) are in hub.c; this file chooses the
 * files and shows progress. */
#include "cli/cli.h"
#include "base/base.h"
#include "cli/hub.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define INDEX_NAME "model.safetensors.index.json"
#define INDEX_MAX (64 << 20) /* bytes; real indexes are well under 1 MB */

/* ==== progress ==== */

typedef struct {
    int tty;       /* stderr is a terminal: one bar redrawn in place */
    int midline;   /* the bar is on screen without its newline */
    double t0, t_drawn;
    int64_t start; /* bytes on disk when the transfer began (resumed) */
} view_t;

static void view_newline(view_t *v) {
    if (v->midline) fputc('\n', stderr);
    v->midline = 0;
}

/* name  45% [#########           ] 18.0/40.0 MB  12.3 MB/s  ETA 0:02 */
static void draw(view_t *v, const hub_progress_t *p, double t) {
    char done[32], total[32], eta[32] = "", bar[24];
    double dt = t - v->t0, speed = dt > 0.05 ? (double)(p->done - v->start) / dt : 0;
    hub_fmt_bytes(done, sizeof done, p->done);
    int pct = 0;
    if (p->total > 0) {
        pct = (int)(100.0 * (double)p->done / (double)p->total);
        hub_fmt_bytes(total, sizeof total, p->total);
        if (speed > 0 && p->done < p->total) {
            long s = (long)((double)(p->total - p->done) / speed + 0.5);
            snprintf(eta, sizeof eta, "  ETA %ld:%02ld", s / 60, s % 60);
        }
    } else {
        strcpy(total, "?");
    }
    int fill = pct * 20 / 100;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : ' ';
    bar[20] = 0;
    size_t n = strlen(p->file);
    fprintf(stderr, "\r%-24s %3d%% [%s] %s / %s  %.1f MB/s%s\033[K", n > 24 ? p->file + n - 24 : p->file, pct, bar,
            done, total, speed / 1e6, eta);
    fflush(stderr);
    v->midline = 1;
    v->t_drawn = t;
}

static void on_progress(void *user, const hub_progress_t *p) {
    view_t *v = user;
    double t = qc_now_s();
    char a[32], b[32];
    switch (p->event) {
    case HUB_EV_START:
        v->t0 = t;
        v->start = p->done;
        if (v->tty) {
            draw(v, p, t);
        } else {
            hub_fmt_bytes(a, sizeof a, p->total);
            hub_fmt_bytes(b, sizeof b, p->done);
            fprintf(stderr, "%s: downloading %s%s%s\n", p->file, p->total >= 0 ? a : "(size unknown)",
                    p->done ? ", resuming at " : "", p->done ? b : "");
        }
        break;
    case HUB_EV_DATA:
        if (v->tty && t - v->t_drawn >= 0.1) draw(v, p, t); /* at most ~10 redraws a second */
        break;
    case HUB_EV_DONE: {
        double dt = t - v->t0;
        if (v->tty) {
            draw(v, p, t);
            view_newline(v);
        } else {
            hub_fmt_bytes(a, sizeof a, p->done);
            fprintf(stderr, "%s: done, %s in %.1f s (%.1f MB/s), %s\n", p->file, a, dt,
                    dt > 0 ? (double)(p->done - v->start) / dt / 1e6 : 0.0,
                    p->verified_sha ? "SHA-256 verified" : "size verified");
        }
        break;
    }
    case HUB_EV_SKIP:
        view_newline(v);
        fprintf(stderr, "%s: already complete\n", p->file);
        break;
    case HUB_EV_NOTE:
        view_newline(v);
        fprintf(stderr, "%s: %s\n", p->file, p->note);
        break;
    }
}

/* ==== choosing the files ==== */

static int has(char **files, const char *name) {
    for (size_t i = 0; files[i]; i++)
        if (!strcmp(files[i], name)) return 1;
    return 0;
}

/* Prints up to a few of the repository's .gguf files, as a hint. */
static void hint_gguf(char **files) {
    int shown = 0;
    for (size_t i = 0; files[i] && shown < 6; i++) {
        size_t n = strlen(files[i]);
        if (n > 5 && !strcmp(files[i] + n - 5, ".gguf"))
            fprintf(stderr, "%s%s", shown++ ? ", " : "qcare pull: its GGUF files (pick one with --file): ", files[i]);
    }
    if (shown) fputc('\n', stderr);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The shards the downloaded index names (sorted, each once), every one a
 * safe name present in the listing. NULL with a message printed otherwise. */
static char **index_shards(const char *dir, char **files, size_t *n_out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, INDEX_NAME);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *map = json_object_get(root, "weight_map");
    char **v = NULL;
    size_t n = 0;
    if (!root) {
        fprintf(stderr, "qcare pull: %s is not valid JSON: %s (line %d)\n", path, jerr.text, jerr.line);
        goto fail;
    }
    if (!json_is_object(map) || json_object_size(map) == 0) {
        fprintf(stderr, "qcare pull: %s has no \"weight_map\" object naming the shards\n", path);
        goto fail;
    }
    if (!(v = calloc(json_object_size(map) + 1, sizeof *v))) goto oom;
    const char *key;
    json_t *val;
    json_object_foreach(map, key, val) {
        const char *s = json_string_value(val);
        if (!json_is_string(val) || strlen(s) != json_string_length(val) || !hub_file_valid(s)) {
            fprintf(stderr, "qcare pull: %s: weight_map[\"%.100s\"] is not a safe file name\n", path, key);
            goto fail;
        }
        if (!has(files, s)) {
            fprintf(stderr, "qcare pull: %s names shard '%.200s', which is not in the repository\n", path, s);
            goto fail;
        }
        if (!(v[n++] = strdup(s))) goto oom;
    }
    qsort(v, n, sizeof *v, cmp_str);
    size_t k = 0; /* drop repeats: many tensors share a shard */
    for (size_t i = 0; i < n; i++) {
        if (k && !strcmp(v[k - 1], v[i])) free(v[i]);
        else v[k++] = v[i];
    }
    v[k] = NULL;
    json_decref(root);
    *n_out = k;
    return v;
oom:
    fprintf(stderr, "qcare pull: out of memory\n");
fail:
    json_decref(root);
    hub_strv_free(v);
    return NULL;
}

/* ==== the command ==== */

static const char *help_text =
    "usage: qcare pull [REPO] [--revision REV] [--dir DIR] [--file NAME.gguf]\n\n"
    "Downloads a model from the Hugging Face hub into the models folder and prints\n"
    "the folder. Fetched: config.json, generation_config.json, tokenizer.json,\n"
    "tokenizer_config.json and model.safetensors (or model.safetensors.index.json and\n"
    "every shard it names); with --file, only that file.\n\n"
    "  REPO              owner/name on the hub. Default: " HUB_DEFAULT_REPO ",\n"
    "                    the strongest small Qwen chat model (0.5 B parameters, ~1 GB\n"
    "                    in BF16, good Chinese and English) that runs well on a CPU\n"
    "  --revision REV    branch, tag or commit (default main)\n"
    "  --dir DIR         put the files in DIR instead of MODELS/owner/name\n"
    "  --file NAME       download only this file of the repository (e.g. a .gguf)\n\n"
    "MODELS is $QCARE_MODELS, else $XDG_DATA_HOME/qcare/models, else\n"
    "~/.local/share/qcare/models.\n"
    "Environment: HF_ENDPOINT (default https://huggingface.co; or a mirror such as\n"
    "https://hf-mirror.com), HF_TOKEN (an access token, for gated or private models).\n\n"
    "Files are written as NAME.part and renamed once verified (SHA-256 for large\n"
    "files, size for small ones). An interrupted pull resumes where it stopped when\n"
    "run again; pulling a complete model again downloads nothing.\n";

int cmd_pull(int argc, char **argv) {
    const char *repo = NULL, *rev = "main", *dir_opt = NULL, *file_opt = NULL;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help_text, stdout);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--revision", &rev, &bad) || cli_opt(argc, argv, &i, "-r", &rev, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--dir", &dir_opt, &bad)) {}
        else if (cli_opt(argc, argv, &i, "--file", &file_opt, &bad)) {}
        else if (argv[i][0] == '-') {
            fprintf(stderr, "qcare pull: unknown option '%s' (see qcare pull --help)\n", argv[i]);
            return 2;
        } else if (repo) {
            fprintf(stderr, "qcare pull: one REPO expected, got '%s' and '%s'\n", repo, argv[i]);
            return 2;
        } else {
            repo = argv[i];
        }
    }
    if (bad) return 2;
    if (!repo) repo = HUB_DEFAULT_REPO;
    if (!hub_repo_valid(repo)) {
        fprintf(stderr, "qcare pull: '%s' is not a repository name: owner/name, with letters, digits, '.', '_', '-'\n", repo);
        return 2;
    }
    size_t rl = strlen(rev);
    for (size_t i = 0; i < rl; i++)
        if ((unsigned char)rev[i] <= 0x20 || rev[i] == 0x7f) rl = 0;
    if (rl == 0 || rl > 255) {
        fprintf(stderr, "qcare pull: --revision: '%s' is not a branch, tag or commit name\n", rev);
        return 2;
    }
    if (file_opt && !hub_file_valid(file_opt)) {
        fprintf(stderr, "qcare pull: --file: '%s' is not a file name of a repository\n", file_opt);
        return 2;
    }
    const char *endpoint = getenv("HF_ENDPOINT"), *token = getenv("HF_TOKEN");
    if (!endpoint || !*endpoint) endpoint = "https://huggingface.co";
    if (strncmp(endpoint, "http://", 7) && strncmp(endpoint, "https://", 8)) {
        fprintf(stderr, "qcare pull: HF_ENDPOINT='%s' is not an http:// or https:// URL\n", endpoint);
        return 1;
    }
    for (const char *t = token; t && *t; t++)
        if ((unsigned char)*t <= 0x20 || *t == 0x7f) {
            fprintf(stderr, "qcare pull: HF_TOKEN contains a space or a control character\n");
            return 1;
        }

    int rc = 1;
    char *dir = NULL, **files = NULL, **shards = NULL;
    size_t n_files = 0, n_shards = 0;
    hub_t *h = NULL;
    if (dir_opt) {
        dir = strdup(dir_opt);
    } else {
        char *models = hub_models_dir();
        if (!models) {
            fprintf(stderr, "qcare pull: no models folder: set QCARE_MODELS (or HOME), or use --dir\n");
            return 1;
        }
        if ((dir = malloc(strlen(models) + strlen(repo) + 2))) sprintf(dir, "%s/%s", models, repo);
        free(models);
    }
    if (!dir || !(h = hub_new(endpoint, token))) {
        fprintf(stderr, "qcare pull: out of memory\n");
        goto done;
    }
    view_t view = {.tty = isatty(2)};
    hub_set_progress(h, on_progress, &view);
    fprintf(stderr, "pulling %s (revision %s) from %s into %s\n", repo, rev, endpoint, dir);
    if (hub_list(h, repo, rev, &files, &n_files)) {
        fprintf(stderr, "qcare pull: %s\n", hub_errmsg(h));
        goto done;
    }

    /* The files, small ones first so that a problem shows before the long
     * transfer. */
    const char *want[6];
    size_t n_want = 0;
    if (file_opt) {
        if (!has(files, file_opt)) {
            fprintf(stderr, "qcare pull: %s (revision %s) has no file '%s'\n", repo, rev, file_opt);
            hint_gguf(files);
            goto done;
        }
        want[n_want++] = file_opt;
    } else {
        static const char *const required[] = {"config.json", "tokenizer.json"};
        for (size_t i = 0; i < 2; i++)
            if (!has(files, required[i])) {
                fprintf(stderr, "qcare pull: %s (revision %s) has no %s: not a Hugging Face transformers model\n", repo,
                        rev, required[i]);
                hint_gguf(files);
                goto done;
            }
        static const char *const names[] = {"config.json", "generation_config.json", "tokenizer.json",
                                            "tokenizer_config.json"};
        for (size_t i = 0; i < 4; i++)
            if (has(files, names[i])) want[n_want++] = names[i];
        if (has(files, "model.safetensors")) want[n_want++] = "model.safetensors";
        else if (has(files, INDEX_NAME)) want[n_want++] = INDEX_NAME;
        else {
            fprintf(stderr, "qcare pull: %s (revision %s) has neither model.safetensors nor %s: qcare reads safetensors "
                            "weights\n", repo, rev, INDEX_NAME);
            hint_gguf(files);
            goto done;
        }
    }
    if (hub_mkdirs(dir)) {
        fprintf(stderr, "qcare pull: cannot create %s: %s\n", dir, strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < n_want; i++)
        if (hub_fetch(h, repo, rev, want[i], dir)) goto fetch_failed;
    if (!file_opt && !strcmp(want[n_want - 1], INDEX_NAME)) {
        if (!(shards = index_shards(dir, files, &n_shards))) goto done;
        for (size_t i = 0; i < n_shards; i++)
            if (hub_fetch(h, repo, rev, shards[i], dir)) goto fetch_failed;
    }
    char got[32];
    hub_fmt_bytes(got, sizeof got, hub_bytes_downloaded(h));
    fprintf(stderr, "pulled %s: %zu file%s in %s (%s downloaded)\n", repo, n_want + n_shards,
            n_want + n_shards == 1 ? "" : "s", dir, got);
    printf("%s\n", dir);
    rc = 0;
    goto done;
fetch_failed:
    view_newline(&view);
    fprintf(stderr, "qcare pull: %s\n", hub_errmsg(h));
done:
    hub_strv_free(shards);
    hub_strv_free(files);
    hub_free(h);
    free(dir);
    return rc;
}
