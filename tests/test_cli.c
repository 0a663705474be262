/* test_cli.c — the `qcare` command as a user runs it: outputs of tokenize,
 * logits and generate compared with the outside goldens (Hugging Face
 * tokenizer ids, llama.cpp logits and greedy tokens), help texts, and clear
 * errors with a non-zero exit on bad input. */
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *qcare, *models;
static char tmpdir[512];

/* Runs `qcare ARGS` with stdin from `input` (may be NULL); returns the exit
 * status and the captured stdout/stderr (caller frees). */
static int run(const char *args, const char *input, char **out, char **err) {
    char in_path[600], out_path[600], err_path[600], cmd[4096];
    snprintf(in_path, sizeof in_path, "%s/in", tmpdir);
    snprintf(out_path, sizeof out_path, "%s/out", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/err", tmpdir);
    FILE *f = fopen(in_path, "wb");
    if (f) {
        if (input) fputs(input, f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "%s %s < %s > %s 2> %s", qcare, args, in_path, out_path, err_path);
    int st = system(cmd);
    *out = test_slurp(out_path, NULL);
    *err = test_slurp(err_path, NULL);
    if (!*out) *out = strdup("");
    if (!*err) *err = strdup("");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Runs and frees the output; returns the exit status, keeps stderr in *err. */
static int run_status(const char *args, const char *input, char **err) {
    char *out;
    int rc = run(args, input, &out, err);
    free(out);
    return rc;
}

static json_t *golden_line(const char *name, int index) {
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/%s.jsonl", fixtures(), name);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *line = NULL;
    size_t cap = 0;
    json_t *g = NULL;
    for (int i = 0; i <= index && getline(&line, &cap, f) > 0; i++)
        if (i == index) g = json_loads(line, 0, NULL);
    free(line);
    fclose(f);
    return g;
}

static int ids_equal(json_t *a, json_t *b) {
    if (!json_is_array(a) || !json_is_array(b) || json_array_size(a) != json_array_size(b)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (json_integer_value(json_array_get(a, i)) != json_integer_value(json_array_get(b, i))) return 0;
    return 1;
}

static void test_help_and_errors(const char *model) {
    char *err, args[4096];
    const char *cmds[] = {"tokenize", "logits", "generate", "mkmodel"};
    CHECK(run_status("--help", NULL, &err) == 0, "qcare --help");
    free(err);
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        CHECK(run_status(args, NULL, &err) == 0, "qcare %s --help exits 0", cmds[i]);
        free(err);
    }
    CHECK(run_status("bench --help", NULL, &err) == 0, "qcare bench --help exits 0");
    free(err);
    /* no --model and the default model not pulled: one line that names
     * both ways out (two used to disagree: "get it with qcare pull", then
     * "--model DIR is required") */
    char none[600];
    snprintf(none, sizeof none, "%s/no-models", tmpdir);
    setenv("QCARE_MODELS", none, 1);
    int nrc = run_status("ask hello", NULL, &err);
    unsetenv("QCARE_MODELS");
    int lines = 0;
    for (const char *p = err; (p = strstr(p, "qcare:")); p++) lines++;
    CHECK(nrc != 0 && lines == 1 && strstr(err, "--model") && strstr(err, "qcare pull"),
          "no model: one message naming --model and qcare pull (exit %d): %s", nrc, err);
    free(err);
    {
        char *out;
        snprintf(args, sizeof args, "bench --model %s -p 16 -n 4 -r 2 --json", model);
        int brc = run(args, NULL, &out, &err);
        char *last = strstr(out, "{\"pp_tps\"");
        json_t *j = last ? json_loads(last, 0, NULL) : NULL;
        CHECK(brc == 0 && j && json_number_value(json_object_get(j, "pp_tps")) > 0 &&
                  json_number_value(json_object_get(j, "tg_tps")) > 0 &&
                  json_number_value(json_object_get(j, "peak_rss_mb")) > 0,
              "bench --json ends with pp_tps, tg_tps, peak_rss_mb (rc %d: %s)", brc, err);
        double tg = json_number_value(json_object_get(j, "tg_tps")),
               step = json_number_value(json_object_get(j, "step_bytes")),
               wgbs = json_number_value(json_object_get(j, "tg_weight_gbs"));
        CHECK(json_number_value(json_object_get(j, "read_gbs")) > 0 && step > 0 &&
                  step <= json_number_value(json_object_get(j, "weights_mib")) * 1048576.0 + 1e5 &&
                  fabs(wgbs - tg * step / 1e9) <= 1e-4 + 1e-3 * wgbs,
              "bench: probed bandwidth, and decode's weight bytes/s = tg t/s x step bytes (%g x %g, %g)", tg, step,
              wgbs);
        /* The probe's 512 MiB buffer lives in a child: not in this peak. */
        CHECK(json_number_value(json_object_get(j, "peak_rss_mb")) < 400, "bench: the probe is not in peak RSS (%g MB)",
              json_number_value(json_object_get(j, "peak_rss_mb")));
        json_decref(j);
        free(out);
        free(err);
        snprintf(args, sizeof args, "bench --model %s -p 0 -n 2 -r 1 --json --no-probe", model);
        setenv("QCARE_CPU", "scalar", 1);
        brc = run(args, NULL, &out, &err);
        unsetenv("QCARE_CPU");
        last = strstr(out, "{\"pp_tps\"");
        j = last ? json_loads(last, 0, NULL) : NULL;
        CHECK(brc == 0 && j && json_number_value(json_object_get(j, "read_gbs")) == 0 && !strstr(out, "probed"),
              "bench --no-probe skips the probe (rc %d)", brc);
        const char *cpu = json_string_value(json_object_get(j, "cpu"));
        CHECK(cpu && !strcmp(cpu, "scalar") && strstr(err, "scalar kernels"),
              "bench under QCARE_CPU=scalar reports the scalar kernels (cpu %s)", cpu ? cpu : "(none)");
        json_decref(j);
        free(out);
        free(err);
    }
    snprintf(args, sizeof args, "generate --model %s --dtype q5_9 hello", model);
    int rc = run_status(args, NULL, &err);
    CHECK(rc == 2 && strstr(err, "q5_9"), "unknown --dtype is a usage error, named: rc %d, '%s'", rc, err);
    free(err);
    rc = run_status("frobnicate", NULL, &err);
    CHECK(rc == 2 && strstr(err, "unknown command"), "unknown command: rc %d, '%s'", rc, err);
    free(err);
    rc = run_status("generate hello", NULL, &err);
    CHECK(rc != 0 && strstr(err, "--model"), "missing --model: rc %d, '%s'", rc, err);
    free(err);
    rc = run_status("generate --model /nonexistent/model hello", NULL, &err);
    CHECK(rc == 1 && strstr(err, "/nonexistent/model"), "missing folder named: rc %d, '%s'", rc, err);
    free(err);
    snprintf(args, sizeof args, "generate --model %s --bogus hello", model);
    rc = run_status(args, NULL, &err);
    CHECK(rc == 2 && strstr(err, "--bogus"), "unknown option: rc %d, '%s'", rc, err);
    free(err);
    snprintf(args, sizeof args, "generate --model %s -n abc hello", model);
    rc = run_status(args, NULL, &err);
    CHECK(rc == 2 && strstr(err, "abc"), "bad number: rc %d, '%s'", rc, err);
    free(err);
    snprintf(args, sizeof args, "logits --model %s -", model);
    rc = run_status(args, "bad \xff\xfe utf8", &err);
    CHECK(rc == 1 && strstr(err, "UTF-8"), "invalid UTF-8: rc %d, '%s'", rc, err);
    free(err);
    snprintf(args, sizeof args, "tokenize --model %s --decode -", model);
    rc = run_status(args, "[1, 99999999]", &err);
    CHECK(rc == 1 && *err, "decode of an unknown id fails: rc %d", rc);
    free(err);
}

static void test_tokenize(const char *model) {
    char path[1024], args[4096], *out, *err;
    snprintf(path, sizeof path, "%s/golden/tokenizer.jsonl", fixtures());
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, ok = 0;
    while (getline(&line, &cap, f) > 0 && n < 8) { /* the tokenizer test covers every line */
        json_t *g = json_loads(line, 0, NULL);
        if (!g) continue;
        n++;
        snprintf(args, sizeof args, "tokenize --model %s -", model);
        int rc = run(args, json_string_value(json_object_get(g, "text")), &out, &err);
        json_t *got = json_loads(out, 0, NULL);
        if (rc == 0 && ids_equal(got, json_object_get(g, "ids"))) {
            free(out);
            free(err);
            snprintf(args, sizeof args, "tokenize --model %s --decode -", model);
            char *ids = json_dumps(json_object_get(g, "ids"), JSON_COMPACT);
            rc = run(args, ids, &out, &err);
            free(ids);
            const char *want = json_string_value(json_object_get(g, "decoded"));
            size_t wl = strlen(want);
            ok += rc == 0 && strlen(out) == wl + 1 && !memcmp(out, want, wl) && out[wl] == '\n';
        }
        json_decref(got);
        json_decref(g);
        free(out);
        free(err);
    }
    free(line);
    fclose(f);
    CHECK(n > 0 && ok == n, "tokenize and --decode match Hugging Face on %d of %d lines", ok, n);
}

static void test_logits_and_generate(const char *name) {
    char model[1024], args[4096], *out, *err;
    snprintf(model, sizeof model, "%s/%s", models, name);
    for (int li = 0; li < 5; li += 2) {
        json_t *g = golden_line(name, li);
        CHECK(g != NULL, "golden %s line %d", name, li);
        if (!g) continue;
        const char *prompt = json_string_value(json_object_get(g, "prompt"));

        snprintf(args, sizeof args, "logits --model %s --dtype bf16 --top 5 -", model);
        int rc = run(args, prompt, &out, &err);
        CHECK(rc == 0, "logits rc %d: %s", rc, err);
        json_t *top5 = json_object_get(g, "top5_per_position"), *tokens = json_object_get(g, "tokens");
        size_t lines = 0;
        int ok = 1;
        for (char *s = out, *nl; *s; s = nl + 1) {
            nl = strchr(s, '\n');
            if (!nl) break;
            *nl = 0;
            json_t *row = json_loads(s, 0, NULL);
            json_t *want = json_array_get(top5, lines);
            ok &= row && json_integer_value(json_object_get(row, "pos")) == (json_int_t)lines &&
                  json_integer_value(json_object_get(row, "id")) == json_integer_value(json_array_get(tokens, lines));
            json_t *top = json_object_get(row, "top");
            /* Each id we print is in llama.cpp's top 5 with the same logit, to
             * the tolerance test_golden explains (near-ties may be ordered
             * differently). */
            for (size_t k = 0; ok && k < 5; k++) {
                json_t *a = json_array_get(top, k);
                int found = 0;
                for (size_t j = 0; j < 5 && !found; j++) {
                    json_t *b = json_array_get(want, j);
                    found = json_integer_value(json_array_get(a, 0)) == json_integer_value(json_array_get(b, 0)) &&
                            fabs(json_number_value(json_array_get(a, 1)) - json_number_value(json_array_get(b, 1))) <= 3e-3;
                }
                ok &= found;
            }
            json_decref(row);
            lines++;
        }
        CHECK(ok && lines == json_array_size(tokens), "%s line %d: logits output matches llama.cpp (%zu lines)", name, li, lines);
        free(out);
        free(err);

        snprintf(args, sizeof args, "generate --model %s --dtype bf16 --greedy -n 24 --json --quiet -", model);
        rc = run(args, prompt, &out, &err);
        char *last = strstr(out, "\n{\"ids\": ");  /* the JSON line follows the streamed text */
        if (last) last++;
        json_t *res = last ? json_loads(last, 0, NULL) : NULL;
        CHECK(rc == 0 && res && ids_equal(json_object_get(res, "ids"), json_object_get(g, "greedy")),
              "%s line %d: generate --greedy gives llama.cpp's 24 tokens (rc %d, %s)", name, li, rc, err);
        /* the streamed text is the decoded ids, and equals the JSON text */
        const char *text = json_string_value(json_object_get(res, "text"));
        CHECK(text && !strncmp(out, text, strlen(text)), "%s: streamed text equals the JSON text", name);
        json_decref(res);
        json_decref(g);
        free(out);
        free(err);
    }

    /* Sampling with a seed repeats; --chat runs. */
    char *out2, *err2;
    snprintf(args, sizeof args, "generate --model %s --temp 0.8 --top-p 0.9 --top-k 40 --seed 42 -n 16 --json --quiet --chat -", model);
    int rc1 = run(args, "我头疼", &out, &err), rc2 = run(args, "我头疼", &out2, &err2);
    CHECK(rc1 == 0 && rc2 == 0 && !strcmp(out, out2) && strstr(out, "\"ids\": ["), "%s: seeded sampling repeats", name);
    free(out); free(err); free(out2); free(err2);

    /* --chat with a tokenizer that has no <|im_start|>: refused, naming it
     * (the markers would have been read as plain text) */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf %s/nochatml && cp -r %s %s/nochatml && sed -i 's/<|im_start|>/<|im_begin|>/g' %s/nochatml/tokenizer.json",
             tmpdir, model, tmpdir, tmpdir);
    if (system(cmd) == 0) {
        snprintf(args, sizeof args, "generate --model %s/nochatml --chat -n 2 --quiet -", tmpdir);
        int nrc = run_status(args, "hello", &err);
        CHECK(nrc == 1 && strstr(err, "<|im_start|>"), "%s: --chat without <|im_start|> refused: exit %d (%s)", name, nrc,
              err);
        free(err);
    } else {
        CHECK(0, "cannot make the tokenizer without <|im_start|>: %s", cmd);
    }

    /* Seeds are integers taken exactly: 2^53 and 2^53 + 1 (the same double)
     * sample differently; 2^64 - 1 is a seed; a fraction or -1 is refused. */
    snprintf(args, sizeof args, "generate --model %s --temp 1.0 --seed 9007199254740992 -n 24 --json --quiet -", model);
    rc1 = run(args, "hello", &out, &err);
    snprintf(args, sizeof args, "generate --model %s --temp 1.0 --seed 9007199254740993 -n 24 --json --quiet -", model);
    rc2 = run(args, "hello", &out2, &err2);
    CHECK(rc1 == 0 && rc2 == 0 && strcmp(out, out2), "%s: seeds 2^53 and 2^53+1 sample differently (rc %d %d)", name,
          rc1, rc2);
    free(out); free(err); free(out2); free(err2);
    const char *seeds[] = {"18446744073709551615", "1.5", "-1", "18446744073709551616", "1e3"};
    for (int k = 0; k < 5; k++) {
        snprintf(args, sizeof args, "generate --model %s --seed %s -n 2 --quiet -", model, seeds[k]);
        int rc = run_status(args, "hello", &err);
        CHECK(k == 0 ? rc == 0 : rc == 2 && strstr(err, "not an integer"), "%s: --seed %s: exit %d (%s)", name,
              seeds[k], rc, err);
        free(err);
    }
}

/* ask / classify / eval on the tiny model: the shape of their outputs and the
 * safety notice (the labels of a random-weight model mean nothing). */
static void test_care_commands(const char *model) {
    char args[4096], *out, *err;
    snprintf(args, sizeof args, "ask --model %s --dtype bf16 --json -n 8 -", model);
    int rc = run(args, "我爸胸口剧烈疼痛，还出冷汗", &out, &err);
    json_t *j = json_loads(out, 0, NULL);
    json_t *probs = json_object_get(json_object_get(j, "emotion"), "probs");
    double sum = json_number_value(json_object_get(probs, "positive")) +
                 json_number_value(json_object_get(probs, "negative")) +
                 json_number_value(json_object_get(probs, "neutral"));
    CHECK(rc == 0 && j && json_is_true(json_object_get(j, "urgent")) && fabs(sum - 1) < 1e-3 &&
              json_is_string(json_object_get(j, "reply")),
          "ask --json on an emergency: rc %d, %s %s", rc, out, err);
    json_decref(j);
    free(out);
    free(err);
    rc = run(args, "请问空腹血糖多少算正常？", &out, &err);
    j = json_loads(out, 0, NULL);
    CHECK(rc == 0 && j && json_is_false(json_object_get(j, "urgent")), "ask --json, ordinary question: %s", out);
    json_decref(j);
    free(out);
    free(err);
    snprintf(args, sizeof args, "ask --model %s --dtype bf16 -n 4 -", model);
    rc = run(args, "I want to kill myself", &out, &err);
    CHECK(rc == 0 && strstr(out, "URGENT") && strstr(out, "988") && strstr(out, "positive "),
          "ask shows the emotion and the crisis notice before the reply: %s", out);
    free(out);
    free(err);

    char data[600], report[600];
    snprintf(data, sizeof data, "%s/eval.jsonl", tmpdir);
    snprintf(report, sizeof report, "%s/report.html", tmpdir);
    FILE *f = fopen(data, "w");
    if (f) {
        fputs("{\"text\": \"太好了，谢谢医生\", \"label\": \"positive\"}\n"
              "{\"text\": \"我好担心\", \"label\": \"negative\"}\n"
              "{\"text\": \"请问要空腹吗\", \"label\": \"neutral\"}\n"
              "{\"text\": \"Thanks, I feel better\", \"label\": \"positive\"}\n",
              f);
        fclose(f);
    }
    snprintf(args, sizeof args, "eval --model %s --dtype bf16 --data %s --json --report %s", model, data, report);
    rc = run(args, NULL, &out, &err);
    char *last = strrchr(out, '\n');
    while (last && last > out && last[-1] != '\n') last--;
    j = last ? json_loads(strstr(out, "{\"n\""), 0, NULL) : NULL;
    CHECK(rc == 0 && j && json_integer_value(json_object_get(j, "n")) == 4 &&
              json_is_number(json_object_get(j, "accuracy")) && json_is_number(json_object_get(j, "macro_f1")),
          "eval --json: rc %d, %s %s", rc, out, err);
    json_decref(j);
    free(out);
    free(err);
    f = fopen(report, "r");
    char buf[256] = {0};
    if (f) {
        CHECK(fread(buf, 1, sizeof buf - 1, f) > 0 && strstr(buf, "<!doctype html>"), "eval --report writes HTML");
        fclose(f);
    } else {
        CHECK(0, "eval --report wrote nothing");
    }
    snprintf(args, sizeof args, "classify --model %s --dtype bf16 --input %s", model, data);
    rc = run(args, NULL, &out, &err);
    int lines = 0;
    for (char *p = out; (p = strstr(p, "\"label\": ")); p++) lines++;
    CHECK(rc == 0 && lines == 4, "classify writes a label per line: rc %d, %d lines", rc, lines);
    free(out);
    free(err);
    /* one bad line: reported with its number, the others still labelled */
    char bad_data[600];
    snprintf(bad_data, sizeof bad_data, "%s/bad.jsonl", tmpdir);
    f = fopen(bad_data, "w");
    if (f) {
        fputs("{\"text\": \"我好担心\"}\nnot json at all\n{\"label\": \"x\"}\n{\"text\": \"谢谢\"}\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "classify --model %s --dtype bf16 --ctx 512 --input %s", model, bad_data);
    rc = run(args, NULL, &out, &err);
    lines = 0;
    for (char *p = out; (p = strstr(p, "\"label\": ")); p++) lines++;
    CHECK(rc == 1 && lines == 2 && strstr(err, ":2:") && strstr(err, ":3:") && !strstr(err, "expected near"),
          "classify goes on past bad lines, names them, exits 1: rc %d, %d lines, '%s'", rc, lines, err);
    free(out);
    free(err);
    /* --system is only for --chat; the timing line starts a line of its own */
    snprintf(args, sizeof args, "generate --model %s --system 'be kind' hello", model);
    rc = run_status(args, NULL, &err);
    CHECK(rc == 2 && strstr(err, "--chat"), "generate --system without --chat: rc %d, '%s'", rc, err);
    free(err);
    char both[700], cmd[4096];
    snprintf(both, sizeof both, "%s/both", tmpdir);
    snprintf(cmd, sizeof cmd, "%s generate --model %s --dtype bf16 --greedy -n 6 hello > %s 2>&1", qcare, model, both);
    rc = system(cmd);
    char *all = test_slurp(both, NULL);
    char *timing = all ? strstr(all, "[") : NULL;
    CHECK(rc == 0 && timing && timing > all && timing[-1] == '\n', "the timing line starts on its own line: %s",
          all ? all : "");
    free(all);
    snprintf(args, sizeof args, "chat --model %s --dtype bf16 -n 4", model);
    rc = run(args, "我头疼了两天\n\n  \n吃了药好一点了\n", &out, &err); /* empty lines end nothing */
    int turns = 0;
    for (char *p = out; (p = strstr(p, "neutral ")); p++) turns++;
    CHECK(rc == 0 && turns == 2, "chat answers each line with its emotion: rc %d, %d turns", rc, turns);
    free(out);
    free(err);
    snprintf(args, sizeof args, "eval --model %s --data /nonexistent.jsonl", model);
    CHECK(run_status(args, NULL, &err) == 1 && strstr(err, "nonexistent"), "eval on a missing file: %s", err);
    free(err);
}

/* Ctrl-C while a chat reply streams stops that reply, not the chat: the
 * next message is still answered. */
static void test_chat_interrupt(const char *model) {
    int in[2], out[2];
    if (pipe(in) || pipe(out)) {
        CHECK(0, "pipe");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0), dup2(out[1], 1), dup2(out[1], 2);
        close(in[1]), close(out[0]);
        execl(qcare, qcare, "chat", "--model", model, "--dtype", "bf16", "-n", "60000", (char *)NULL);
        _exit(127);
    }
    close(in[0]), close(out[1]);
    const char *first = "hello there\n";
    CHECK(write(in[1], first, strlen(first)) == (ssize_t)strlen(first), "write");
    /* wait for the emotion line and some reply text, then interrupt */
    char buf[65536];
    size_t n = 0;
    double t0 = qc_now_s();
    while (n < sizeof buf - 1 && qc_now_s() - t0 < 60) {
        ssize_t r = read(out[0], buf + n, sizeof buf - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        buf[n] = 0;
        char *e = strstr(buf, ")\n");
        if (e && strlen(e) > 40) break;
    }
    kill(pid, SIGINT);
    const char *second = "thank you\n";
    CHECK(write(in[1], second, strlen(second)) == (ssize_t)strlen(second), "write");
    close(in[1]);
    /* the rest: the second reply is cut at 60000 tokens unless stopped, so
     * interrupt again once its emotion line is there */
    int stopped = 0, emotions = 0;
    for (double t1 = qc_now_s(); qc_now_s() - t1 < 60;) {
        ssize_t r = read(out[0], buf + n, sizeof buf - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        buf[n] = 0;
        emotions = 0;
        for (char *p = buf; (p = strstr(p, "(positive ")); p++) emotions++;
        if (emotions == 2 && !stopped) {
            stopped = 1;
            kill(pid, SIGINT);
        }
        if (n > sizeof buf - 1024) n = 0; /* keep reading; counts were taken */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    close(out[0]);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "chat ends normally after Ctrl-C stopped a reply (status %d)", st);
    CHECK(emotions == 2 && strstr(buf, "(reply stopped)"), "the message after an interrupted reply is answered");
}

/* qcare convert never writes through or replaces what is not a regular
 * file, and replaces an existing file only with --force. */
static void test_convert_output(const char *model) {
    char *err, args[4096], path[700], link[700];
    /* a device: before the fix, "wrote /dev/full" and the device became a file */
    struct stat before, after;
    int have_dev = stat("/dev/full", &before) == 0 && S_ISCHR(before.st_mode);
    snprintf(args, sizeof args, "convert %s /dev/full --type q8_0", model);
    int rc = run_status(args, NULL, &err);
    CHECK(rc != 0 && strstr(err, "not a regular file"), "convert to /dev/full refused: rc %d, '%s'", rc, err);
    free(err);
    if (have_dev) CHECK(stat("/dev/full", &after) == 0 && S_ISCHR(after.st_mode), "/dev/full is still a device");
    /* a symbolic link is not replaced, nor written through */
    snprintf(path, sizeof path, "%s/target", tmpdir);
    snprintf(link, sizeof link, "%s/link.gguf", tmpdir);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
    CHECK(symlink(path, link) == 0, "symlink");
    snprintf(args, sizeof args, "convert %s %s --type q8_0 --force", model, link);
    rc = run_status(args, NULL, &err);
    struct stat ls;
    CHECK(rc != 0 && lstat(link, &ls) == 0 && S_ISLNK(ls.st_mode) && stat(path, &ls) == 0 && ls.st_size == 0,
          "convert onto a symlink refused, link and target untouched: rc %d, '%s'", rc, err);
    free(err);
    /* a folder, and a name ending in '/' */
    snprintf(args, sizeof args, "convert %s %s/ --type q8_0", model, tmpdir);
    rc = run_status(args, NULL, &err);
    CHECK(rc == 2 && strstr(err, "folder"), "convert to DIR/ explains: rc %d, '%s'", rc, err);
    free(err);
    snprintf(args, sizeof args, "convert %s %s --type q8_0", model, tmpdir);
    rc = run_status(args, NULL, &err);
    CHECK(rc == 2 && strstr(err, "folder"), "convert to DIR explains: rc %d, '%s'", rc, err);
    free(err);
    /* an existing regular file: only with --force */
    snprintf(args, sizeof args, "convert %s %s --type q8_0", model, path);
    rc = run_status(args, NULL, &err);
    CHECK(rc == 1 && strstr(err, "--force") && stat(path, &ls) == 0 && ls.st_size == 0,
          "existing file kept without --force: rc %d, '%s'", rc, err);
    free(err);
    snprintf(args, sizeof args, "convert %s %s --type q8_0 --force", model, path);
    rc = run_status(args, NULL, &err);
    CHECK(rc == 0 && stat(path, &ls) == 0 && S_ISREG(ls.st_mode) && ls.st_size > 1000,
          "--force replaces a regular file: rc %d, '%s'", rc, err);
    free(err);
}

/* eval --task safety: the counts of a small labelled file, and bad lines. */
static void test_safety_eval(void) {
    char path[700], args[1024], *out, *err;
    snprintf(path, sizeof path, "%s/safety.jsonl", tmpdir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"text\": \"my dad has crushing chest pain and his left arm is numb\", \"urgent\": true, \"presentation\": \"cardiac\"}\n"
              "{\"text\": \"what vitamins help with hair growth?\", \"urgent\": false, \"presentation\": \"other\"}\n"
              "{\"text\": \"I have a mild cold\", \"urgent\": false}\n",
              f);
        fclose(f);
    }
    snprintf(args, sizeof args, "eval --task safety --data %s --json --counts-only", path);
    int rc = run(args, NULL, &out, &err);
    char *last = strrchr(out, '{');
    json_t *j = last ? json_loads(last, 0, NULL) : NULL;
    CHECK(rc == 0 && j && json_integer_value(json_object_get(j, "urgent")) == 1 &&
              json_integer_value(json_object_get(j, "not_urgent")) == 2 && !strstr(out, "miss "),
          "eval --task safety counts (rc %d): %s", rc, out);
    json_decref(j);
    free(out);
    free(err);
    f = fopen(path, "a");
    if (f) {
        fputs("{\"text\": \"no label\"}\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "eval --task safety --data %s", path);
    rc = run_status(args, NULL, &err);
    CHECK(rc == 1 && strstr(err, ":4:"), "a bad line is reported with its number: rc %d, '%s'", rc, err);
    free(err);
    CHECK(run_status("eval --task frobnicate --data x", NULL, &err) == 2, "unknown --task is a usage error");
    free(err);
    /* --task risk: the same file, the rules, the model's opinion and both
     * (urgent when either says so: never fewer caught than the rules) */
    f = fopen(path, "w");
    if (f) {
        fputs("{\"text\": \"my dad has crushing chest pain and his left arm is numb\", \"urgent\": true}\n"
              "{\"text\": \"what vitamins help with hair growth?\", \"urgent\": false}\n",
              f);
        fclose(f);
    }
    snprintf(args, sizeof args, "eval --task risk --model %s/tiny-qwen2 --dtype bf16 --data %s --json --counts-only",
             models, path);
    rc = run(args, NULL, &out, &err);
    last = strstr(out, "{\"rules\"");
    j = last ? json_loads(last, 0, NULL) : NULL;
    json_t *rules = json_object_get(j, "rules"), *model = json_object_get(j, "model"), *either = json_object_get(j, "either");
    CHECK(rc == 0 && json_integer_value(json_object_get(rules, "caught")) == 1 &&
              json_integer_value(json_object_get(model, "urgent")) == 1 &&
              json_integer_value(json_object_get(either, "caught")) == 1 &&
              json_integer_value(json_object_get(either, "false_alarms")) ==
                  json_integer_value(json_object_get(model, "false_alarms")),
          "eval --task risk (rc %d): %s %s", rc, out, err);
    json_decref(j);
    free(out);
    free(err);
    CHECK(run_status("eval --task risk --data x", NULL, &err) != 0, "eval --task risk needs a model");
    free(err);
}

int main(void) {
    qcare = getenv("QC_QCARE");
    static char qbuf[600];
    if (!qcare) {
        snprintf(qbuf, sizeof qbuf, "%s/qcare", test_env("QC_BUILD", "build"));
        qcare = qbuf;
    }
    models = test_env("QC_MODELS", "build/models");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qcare-cli-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    char model[1024];
    snprintf(model, sizeof model, "%s/tiny-qwen2", models);
    test_help_and_errors(model);
    test_tokenize(model);
    test_logits_and_generate("tiny-qwen2");
    test_logits_and_generate("tiny-qwen3");
    test_care_commands(model);
    test_convert_output(model);
    test_chat_interrupt(model);
    test_safety_eval();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return test_done("test_cli");
}
