/* cmd_convert.c — `qcare convert`: a Hugging Face folder to a GGUF file that
 * llama.cpp (and qcare) load, with no Python. */
#include "cli/cli.h"
#include "base/base.h"
#include "engine/gguf_write.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ==== progress ==== */

typedef struct {
    int tty;      /* stderr is a terminal: redraw one line */
    int shown;    /* last percentage (tty) or tenth (plain lines) shown */
    double t0;    /* start, seconds */
} progress_t;

/* On a terminal a bar redrawn in place at each whole percent; otherwise
 * (a log, a pipe) one plain line per 10%, so logs stay short. */
static void show_progress(void *user, double fraction) {
    progress_t *p = user;
    if (p->tty) {
        int pct = (int)(fraction * 100.0);
        if (pct == p->shown) return;
        p->shown = pct;
        char bar[41];
        int fill = (int)(fraction * 40.0);
        for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : '.';
        bar[40] = 0;
        fprintf(stderr, "\rconvert [%s] %3d%% %5.1fs", bar, pct, qc_now_s() - p->t0);
        if (fraction >= 1.0) fputc('\n', stderr);
    } else {
        int tenth = (int)(fraction * 10.0);
        if (tenth == p->shown) return;
        p->shown = tenth;
        fprintf(stderr, "convert: %d%%\n", tenth * 10);
    }
    fflush(stderr);
}

/* ==== the command ==== */

static const struct {
    const char *name;
    qc_dtype_t type;
} types[] = {
    {"f32", QC_DTYPE_F32},   {"f16", QC_DTYPE_F16},   {"bf16", QC_DTYPE_BF16},
    {"q8_0", QC_DTYPE_Q8_0}, {"q4_0", QC_DTYPE_Q4_0},
};

static void convert_help(void) {
    printf("usage: qcare convert HF_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0] [--force]\n\n"
           "Writes the Hugging Face Qwen model folder HF_DIR (config.json, model.safetensors\n"
           "or its shards, tokenizer.json, tokenizer_config.json) as a GGUF file that llama.cpp\n"
           "and qcare load: llama.cpp's tensor names, metadata and tokenizer, data aligned to\n"
           "32 bytes. The file appears only once complete.\n\n"
           "  --type T   how the weight matrices are stored (default f16, as llama.cpp's\n"
           "             converter): f32, f16, bf16 (exact for BF16 checkpoints), q8_0 or\n"
           "             q4_0 (bit-identical to llama-quantize; the output/embedding matrix\n"
           "             stays Q8_0). Norms and biases are always F32.\n"
           "  --force    replace OUT.gguf if it exists (only ever a regular file: a device,\n"
           "             a folder or a symbolic link is never written through or replaced)\n");
}

int cmd_convert(int argc, char **argv) {
    const char *args[2] = {NULL, NULL}, *type_name = "f16";
    int n_args = 0, bad = 0, force = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            convert_help();
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--type", &type_name, &bad)) continue;
        if (!strcmp(argv[i], "--force")) {
            force = 1;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "qcare convert: unknown option '%s' (see qcare convert --help)\n", argv[i]);
            return 2;
        }
        if (n_args == 2) {
            fprintf(stderr, "qcare convert: unexpected argument '%s' (HF_DIR OUT.gguf expected)\n", argv[i]);
            return 2;
        }
        args[n_args++] = argv[i];
    }
    if (bad) return 2;
    if (n_args != 2) {
        fprintf(stderr, "qcare convert: HF_DIR and OUT.gguf are required (see qcare convert --help)\n");
        return 2;
    }
    int found = -1;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(type_name, types[i].name)) found = (int)i;
    if (found < 0) {
        fprintf(stderr, "qcare convert: unknown --type '%s' (f32, f16, bf16, q8_0 or q4_0)\n", type_name);
        return 2;
    }

    /* The output: a new file, or (with --force) an existing regular file. */
    const char *out = args[1];
    size_t ol = strlen(out);
    struct stat ob;
    if (ol && out[ol - 1] == '/') {
        fprintf(stderr, "qcare convert: %s is a folder name; give the file to write (e.g. %smodel.gguf)\n", out,
                out);
        return 2;
    }
    if (lstat(out, &ob) == 0) {
        if (S_ISDIR(ob.st_mode)) {
            fprintf(stderr, "qcare convert: %s is a folder; give the file to write (e.g. %s/model.gguf)\n", out, out);
            return 2;
        }
        if (!S_ISREG(ob.st_mode)) {
            fprintf(stderr, "qcare convert: %s exists and is not a regular file (%s); refusing to replace it\n", out,
                    S_ISLNK(ob.st_mode) ? "a symbolic link" : "a device, socket or pipe");
            return 1;
        }
        if (!force) {
            fprintf(stderr, "qcare convert: %s exists; add --force to replace it\n", out);
            return 1;
        }
    }

    int tty = isatty(2);
    progress_t p = {.tty = tty, .shown = tty ? -1 : 0, .t0 = qc_now_s()}; /* plain: no "0%" line */
    char err[512];
    qc_status s = qc_gguf_convert(args[0], args[1], types[found].type, show_progress, &p, err, sizeof err);
    if (s) {
        if (p.tty && p.shown >= 0) fputc('\n', stderr);
        fprintf(stderr, "qcare convert: %s\n", err);
        return 1;
    }
    struct stat sb;
    double mib = stat(args[1], &sb) == 0 ? (double)sb.st_size / (1024.0 * 1024.0) : 0;
    printf("wrote %s (%s, %.1f MiB) in %.1f s\n", args[1], type_name, mib, qc_now_s() - p.t0);
    return 0;
}
