/* test_pull.c — `qcare pull` against a stand-in hub on loopback (hubstub.h)
 * serving the fixture model tiny-qwen2: a full download byte for byte, resume
 * after a cut connection (in the same run and in a second run), nothing
 * transferred the second time, a corrupted file caught, 404/401 and network
 * errors, a full disk, a sharded model, --file, unsafe names in the listing;
 * then cli_resolve_model, the name checks and the models folder directly
 * (the hub client's hub*.c are compiled into this program). QC_PULL_SHOW=1
 * prints the stderr of every run. */
#include "test.h"
#include "hubstub.h"

#include "../src/cli/hub.c"
#include "../src/cli/hub_fetch.c"
#include "../src/cli/hub_http.c"

#include <sys/wait.h>

static const char *qcare;
static char tmp[256], src[512];
static stub_t stub;
static char *out_s, *err_s; /* the last run's stdout / stderr */

/* Runs `[env] qcare pull ARGS`, keeps stdout/stderr in out_s/err_s; returns
 * the exit status. */
static int pull(const char *env, const char *args) {
    char cmd[2048], o[300], e[300];
    snprintf(o, sizeof o, "%s/out", tmp);
    snprintf(e, sizeof e, "%s/err", tmp);
    snprintf(cmd, sizeof cmd, "%s %s pull %s > %s 2> %s", env ? env : "", qcare, args, o, e);
    int st = system(cmd);
    free(out_s);
    free(err_s);
    out_s = test_slurp(o, NULL);
    err_s = test_slurp(e, NULL);
    if (!out_s) out_s = strdup("");
    if (!err_s) err_s = strdup("");
    CHECK(!strstr(err_s, "Sanitizer") && !strstr(err_s, "runtime error:"), "sanitizer report in pull %s:\n%s", args,
          err_s);
    if (getenv("QC_PULL_SHOW")) fprintf(stderr, "---- qcare pull %s -> %d\n%s", args, WIFEXITED(st) ? WEXITSTATUS(st) : 128, err_s);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = test_slurp(a, &na), *y = test_slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static int exists(const char *path) {
    struct stat st;
    return !lstat(path, &st);
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_size;
}

static const char *const model_files[] = {"config.json", "generation_config.json", "tokenizer.json",
                                          "tokenizer_config.json", "model.safetensors"};

/* Every fixture file is in dir, identical, with no .part left. */
static int model_complete(const char *dir) {
    for (int i = 0; i < 5; i++) {
        char a[1024], b[1024], p[1100];
        snprintf(a, sizeof a, "%s/%s", src, model_files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, model_files[i]);
        snprintf(p, sizeof p, "%s.part", b);
        if (!same_file(a, b) || exists(p)) return 0;
    }
    return 1;
}

static long long model_bytes(void) {
    long long n = 0;
    for (int i = 0; i < 5; i++) {
        char a[1024];
        snprintf(a, sizeof a, "%s/%s", src, model_files[i]);
        n += file_size(a);
    }
    return n;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static long long stub_bytes(void) {
    pthread_mutex_lock(&stub.mu);
    long long n = stub.bytes;
    pthread_mutex_unlock(&stub.mu);
    return n;
}

/* ==== downloads ==== */

static void test_full_and_again(void) {
    char dir[512], side[1024];
    snprintf(dir, sizeof dir, "%s/models/tiny/qwen2", tmp);
    stub_reset(&stub);
    CHECK(pull(NULL, "tiny/qwen2") == 0, "full pull failed: %s", err_s);
    CHECK(model_complete(dir), "the pulled files differ from the source");
    CHECK(!strncmp(out_s, dir, strlen(dir)) && out_s[strlen(dir)] == '\n', "stdout is the folder, got '%s'", out_s);
    CHECK(stub_bytes() == model_bytes(), "full pull: served %lld bytes, the model has %lld", stub_bytes(), model_bytes());
    CHECK(strstr(err_s, "model.safetensors: done") && strstr(err_s, "SHA-256 verified"), "plain progress lines: %s",
          err_s);
    CHECK(stub.hub_auth == 0 && stub.cdn_auth == 0, "no token set, none sent");
    CHECK(stub.cdn_heads == 0, "the CDN is asked only for bytes (%d HEADs)", stub.cdn_heads);

    /* Again: nothing transferred, only the listing and HEADs. */
    stub_reset(&stub);
    CHECK(pull(NULL, "tiny/qwen2") == 0, "second pull failed: %s", err_s);
    CHECK(stub_bytes() == 0 && stub.gets == 0, "second pull: %lld bytes in %d GETs", stub_bytes(), stub.gets);
    CHECK(strstr(err_s, "model.safetensors: already complete") != NULL, "second pull says so: %s", err_s);
    CHECK(model_complete(dir), "files intact after the second pull");

    /* Without the sidecars (a copied folder): checked locally, still nothing transferred. */
    snprintf(side, sizeof side, "rm -rf '%s/.qcare-pull'", dir);
    CHECK(system(side) == 0, "rm sidecars");
    stub_reset(&stub);
    CHECK(pull(NULL, "tiny/qwen2") == 0 && stub_bytes() == 0, "pull without sidecars: rc, %lld bytes: %s",
          stub_bytes(), err_s);
    snprintf(side, sizeof side, "%s/.qcare-pull/model.safetensors.etag", dir);
    CHECK(exists(side), "the sidecar is written again");

    /* A file changed upstream (other sidecar ETag) is fetched again. */
    write_file(side, "0000\n", 5);
    stub_reset(&stub);
    CHECK(pull(NULL, "tiny/qwen2") == 0, "pull after a change: %s", err_s);
    snprintf(side, sizeof side, "%s/model.safetensors", src);
    CHECK(stub_bytes() == file_size(side) && stub.gets == 1, "only the changed file is fetched: %lld bytes, %d GETs",
          stub_bytes(), stub.gets);
    CHECK(model_complete(dir), "files intact after a refetch");
}

static void test_resume(void) {
    char args[2048], part[1024], final[1024];
    long long size = file_size(strcat(strcpy(part, src), "/model.safetensors")), half = size / 2;

    /* Cut once: resumed within the same run, no byte sent twice. */
    stub_reset(&stub);
    snprintf(stub.cut_file, sizeof stub.cut_file, "model.safetensors");
    stub.cut_at = half;
    stub.cut_count = 1;
    snprintf(args, sizeof args, "tiny/qwen2 --dir %s/resume1", tmp);
    CHECK(pull(NULL, args) == 0, "pull with one cut: %s", err_s);
    CHECK(strstr(err_s, "resuming") != NULL, "the retry is reported: %s", err_s);
    CHECK(stub_bytes() == model_bytes(), "one cut: served %lld bytes, expected %lld", stub_bytes(), model_bytes());
    snprintf(args, sizeof args, "%s/resume1", tmp);
    CHECK(model_complete(args), "files complete after an in-run resume");

    /* Cut, then the server stops making progress: the run fails and keeps
     * the .part; the next run fetches only the rest. */
    stub_reset(&stub);
    snprintf(stub.cut_file, sizeof stub.cut_file, "model.safetensors");
    stub.cut_at = half;
    stub.cut_count = 2;
    snprintf(args, sizeof args, "tiny/qwen2 --dir %s/resume2", tmp);
    CHECK(pull(NULL, args) == 1, "a stalled download fails");
    CHECK(strstr(err_s, "interrupted") && strstr(err_s, "run the same command again"), "interruption message: %s",
          err_s);
    snprintf(part, sizeof part, "%s/resume2/model.safetensors.part", tmp);
    snprintf(final, sizeof final, "%s/resume2/model.safetensors", tmp);
    CHECK(file_size(part) == half && !exists(final), "the .part holds %lld bytes (want %lld), no final file",
          file_size(part), half);
    stub_reset(&stub);
    CHECK(pull(NULL, args) == 0, "resumed pull failed: %s", err_s);
    CHECK(stub_bytes() == size - half, "the second run fetched %lld bytes, the rest is %lld", stub_bytes(), size - half);
    CHECK(strstr(err_s, "resuming at") != NULL, "resume reported: %s", err_s);
    snprintf(args, sizeof args, "%s/resume2", tmp);
    CHECK(model_complete(args), "files complete after resuming in a second run");

    /* A server that ignores Range (200): the .part starts again from zero. */
    stub_reset(&stub);
    stub.ignore_range = 1;
    snprintf(args, sizeof args, "mkdir -p %s/norange && head -c 1000 /dev/urandom > %s/norange/model.safetensors.part",
             tmp, tmp);
    CHECK(system(args) == 0, "setup");
    snprintf(args, sizeof args, "tiny/qwen2 --dir %s/norange", tmp);
    CHECK(pull(NULL, args) == 0, "pull from a server without ranges: %s", err_s);
    snprintf(args, sizeof args, "%s/norange", tmp);
    CHECK(model_complete(args), "a 200 answer to a Range request restarts the file");

    /* A complete .part: 416 to the Range request, verified and kept. */
    stub_reset(&stub);
    snprintf(args, sizeof args, "mkdir -p %s/r416 && cp %s/model.safetensors %s/r416/model.safetensors.part", tmp, src,
             tmp);
    CHECK(system(args) == 0, "setup");
    snprintf(args, sizeof args, "tiny/qwen2 --dir %s/r416", tmp);
    CHECK(pull(NULL, args) == 0, "pull with a complete .part: %s", err_s);
    CHECK(stub_bytes() == model_bytes() - size, "complete .part: %lld bytes served", stub_bytes());
    snprintf(args, sizeof args, "%s/r416", tmp);
    CHECK(model_complete(args), "a complete .part is verified and renamed");

    /* A .part of other bytes (an older version): resumed, fails to verify,
     * fetched again whole; a small file's .part is not resumed at all. */
    stub_reset(&stub);
    snprintf(args, sizeof args,
             "mkdir -p %s/stale && head -c %lld /dev/urandom > %s/stale/model.safetensors.part &&"
             "head -c 300 /dev/urandom > %s/stale/config.json.part",
             tmp, half, tmp, tmp);
    CHECK(system(args) == 0, "setup");
    snprintf(args, sizeof args, "tiny/qwen2 --dir %s/stale", tmp);
    CHECK(pull(NULL, args) == 0, "pull with a stale .part: %s", err_s);
    CHECK(strstr(err_s, "does not verify") != NULL, "restart reported: %s", err_s);
    snprintf(args, sizeof args, "%s/stale", tmp);
    CHECK(model_complete(args), "a stale .part is replaced");
}

static void test_errors(void) {
    char args[2048], env[300], path[1024];
    stub_reset(&stub);
    CHECK(pull(NULL, "tiny/nope") == 1, "unknown repo fails");
    snprintf(path, sizeof path, "repository tiny/nope not found at http://127.0.0.1:%d/api/models/tiny/nope", stub.port);
    CHECK(strstr(err_s, path) && strstr(err_s, ": 404"), "404 message: %s", err_s);
    CHECK(pull(NULL, "tiny/qwen2 --revision nope") == 1 && strstr(err_s, "revision nope"), "unknown revision: %s",
          err_s);

    /* A file the listing names but the hub does not have. */
    snprintf(args, sizeof args, "tiny/ghost --file ghost.gguf --dir %s/ghost", tmp);
    CHECK(pull(NULL, args) == 1 && strstr(err_s, "ghost.gguf") && strstr(err_s, "not found") &&
              strstr(err_s, "404"),
          "missing file: %s", err_s);
    snprintf(args, sizeof args, "tiny/qwen2 --file nothere.gguf --dir %s/ghost", tmp);
    CHECK(pull(NULL, args) == 1 && strstr(err_s, "has no file 'nothere.gguf'"), "--file not listed: %s", err_s);

    /* Gated: 401 without a token or with a wrong one; the right one works
     * and never reaches the CDN's host. */
    snprintf(args, sizeof args, "tiny/gated --dir %s/gated", tmp);
    CHECK(pull(NULL, args) == 1 && strstr(err_s, "401") && strstr(err_s, "HF_TOKEN") && strstr(err_s, "gated"),
          "401 message: %s", err_s);
    CHECK(pull("HF_TOKEN=wrong", args) == 1 && strstr(err_s, "refused"), "wrong token: %s", err_s);
    stub_reset(&stub);
    CHECK(pull("HF_TOKEN=s3cret", args) == 0, "gated pull with the token: %s", err_s);
    CHECK(stub.hub_auth > 0 && stub.cdn_auth == 0, "token to the hub (%d) and never to the CDN (%d)", stub.hub_auth,
          stub.cdn_auth);

    /* No server. */
    snprintf(args, sizeof args, "tiny/qwen2 --dir %s/nonet", tmp);
    CHECK(pull("HF_ENDPOINT=http://127.0.0.1:1", args) == 1 && strstr(err_s, "cannot reach http://127.0.0.1:1/"),
          "no network: %s", err_s);

    /* A full disk: the .part is /dev/full. */
    snprintf(path, sizeof path, "%s/full", tmp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/full/model.safetensors.part", tmp);
    if (symlink("/dev/full", path) == 0) {
        snprintf(args, sizeof args, "tiny/qwen2 --dir %s/full", tmp);
        CHECK(pull(NULL, args) == 1 && strstr(err_s, "No space left on device") && strstr(err_s, "disk is full"),
              "ENOSPC: %s", err_s);
    }

    /* Corrupted bytes: the SHA-256 check deletes the file. */
    stub_reset(&stub);
    snprintf(stub.corrupt_file, sizeof stub.corrupt_file, "model-00002-of-00002.safetensors");
    snprintf(args, sizeof args, "tiny/sharded --dir %s/corrupt", tmp);
    CHECK(pull(NULL, args) == 1, "a corrupted download fails");
    CHECK(strstr(err_s, "SHA-256 mismatch") && strstr(err_s, "model-00002-of-00002.safetensors"),
          "mismatch message: %s", err_s);
    pthread_mutex_lock(&stub.mu);
    snprintf(path, sizeof path, "%s/sharded/model-00002-of-00002.safetensors", tmp);
    const char *want = stub_etag(&stub, path, 1);
    CHECK(strstr(err_s, want) != NULL, "the message names the expected hash %s", want);
    pthread_mutex_unlock(&stub.mu);
    snprintf(path, sizeof path, "%s/corrupt/model-00002-of-00002.safetensors", tmp);
    CHECK(!exists(path), "no final file after a mismatch");
    strcat(path, ".part");
    CHECK(!exists(path), "the .part is deleted after a mismatch");
    stub_reset(&stub);

    /* Unsafe names from the server. */
    const char *evil[] = {"tiny/evil1", "tiny/evil2", "tiny/evil3"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "%s --dir %s/evil/x", evil[i], tmp);
        CHECK(pull(NULL, args) == 1 && strstr(err_s, "unsafe file"), "%s: %s", evil[i], err_s);
    }
    snprintf(path, sizeof path, "%s/evil/evil.json", tmp);
    CHECK(!exists(path), "nothing written outside the folder");
    snprintf(args, sizeof args, "tiny/evilindex --dir %s/evilidx-out", tmp);
    CHECK(pull(NULL, args) == 1 && strstr(err_s, "not a safe file name"), "unsafe shard name: %s", err_s);
    snprintf(args, sizeof args, "tiny/badlisting --dir %s/bad", tmp);
    CHECK(pull(NULL, args) == 1 && strstr(err_s, "siblings"), "malformed listing: %s", err_s);
    snprintf(args, sizeof args, "tiny/gguf --dir %s/nosafet", tmp);
    CHECK(pull(NULL, args) == 1 && strstr(err_s, "no config.json") && strstr(err_s, "x.gguf"),
          "not a transformers folder, GGUF hint: %s", err_s);

    /* Usage errors: exit status 2. */
    CHECK(pull(NULL, "a/b/c") == 2, "a/b/c is not a repo");
    CHECK(pull(NULL, "../x") == 2, "../x is not a repo");
    CHECK(pull(NULL, "tiny/qwen2 --file ../x.gguf") == 2, "--file ../x.gguf");
    CHECK(pull(NULL, "tiny/qwen2 --bogus") == 2, "unknown option");
    CHECK(pull(NULL, "tiny/qwen2 other/repo") == 2, "two repos");
    CHECK(pull(NULL, "--help") == 0 && strstr(out_s, "Qwen/Qwen2.5-0.5B-Instruct") && strstr(out_s, "HF_ENDPOINT"),
          "--help names the default model");
    snprintf(env, sizeof env, "HF_ENDPOINT=ftp://x");
    CHECK(pull(env, "tiny/qwen2") == 1 && strstr(err_s, "HF_ENDPOINT"), "bad endpoint: %s", err_s);
}

static void test_renamed(void) {
    char args[2048];
    stub_reset(&stub);
    snprintf(args, sizeof args, "tiny/renamed --dir %s/renamed", tmp);
    CHECK(pull(NULL, args) == 0, "a renamed repository (relative redirects): %s", err_s);
    snprintf(args, sizeof args, "%s/renamed", tmp);
    CHECK(model_complete(args), "renamed: files complete");
}

static void test_sharded_and_gguf(void) {
    char args[2048], a[1024], b[1024];
    const char *names[] = {"model.safetensors.index.json", "model-00001-of-00002.safetensors",
                           "model-00002-of-00002.safetensors", "config.json", "tokenizer.json"};
    stub_reset(&stub);
    snprintf(args, sizeof args, "tiny/sharded --dir %s/sharded-out", tmp);
    CHECK(pull(NULL, args) == 0, "sharded pull: %s", err_s);
    for (int i = 0; i < 5; i++) {
        snprintf(a, sizeof a, "%s/sharded/%s", tmp, names[i]);
        snprintf(b, sizeof b, "%s/sharded-out/%s", tmp, names[i]);
        CHECK(same_file(a, b), "sharded: %s differs", names[i]);
    }
    stub_reset(&stub);
    CHECK(pull(NULL, args) == 0 && stub_bytes() == 0, "sharded again: %lld bytes", stub_bytes());

    stub_reset(&stub);
    snprintf(args, sizeof args, "tiny/gguf --file x.gguf --dir %s/gguf-out", tmp);
    CHECK(pull(NULL, args) == 0, "--file pull: %s", err_s);
    snprintf(a, sizeof a, "%s/gguf/x.gguf", tmp);
    snprintf(b, sizeof b, "%s/gguf-out/x.gguf", tmp);
    CHECK(same_file(a, b), "x.gguf identical");
    snprintf(b, sizeof b, "%s/gguf-out/README.md", tmp);
    CHECK(!exists(b) && stub.gets == 1, "--file fetches that file only (%d GETs)", stub.gets);
}

/* ==== in-process: names, models folder, cli_resolve_model ==== */

static void test_names(void) {
    const char *good[] = {"Qwen/Qwen2.5-0.5B-Instruct", "a/b", "owner_1/x--y.z"};
    const char *bad[] = {"", "x", "a/b/c", "/a/b", "a/", "/b", "../x", "a/..", "a/b..c", ".a/b", "a/b-", "a/b c",
                         "a\\b/c", "a/b?x=1"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) CHECK(hub_repo_valid(good[i]), "repo '%s' valid", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(!hub_repo_valid(bad[i]), "repo '%s' invalid", bad[i]);
    CHECK(!hub_repo_valid(NULL), "NULL repo invalid");
    const char *okf[] = {"config.json", "sub/dir/x.gguf", "a..b.json", ".gitattributes"};
    const char *badf[] = {"", "/etc/passwd", "../x", "a/../b", "a/..", "..", "./x", "a//b", "a\\b", "a/", "x\n"};
    for (size_t i = 0; i < sizeof okf / sizeof *okf; i++) CHECK(hub_file_valid(okf[i]), "file '%s' valid", okf[i]);
    for (size_t i = 0; i < sizeof badf / sizeof *badf; i++) CHECK(!hub_file_valid(badf[i]), "file '%s' invalid", badf[i]);
}

static void check_dir(const char *want) {
    char *d = hub_models_dir();
    CHECK(d && !strcmp(d, want), "models folder '%s', want '%s'", d ? d : "(null)", want);
    free(d);
}

static void test_resolve(void) {
    char models[600], path[1024];
    const char *home = getenv("HOME");
    char *saved_home = home ? strdup(home) : NULL;
    setenv("QCARE_MODELS", "/m", 1);
    check_dir("/m");
    unsetenv("QCARE_MODELS");
    setenv("XDG_DATA_HOME", "/xdg", 1);
    check_dir("/xdg/qcare/models");
    setenv("XDG_DATA_HOME", "relative", 1); /* invalid per the spec: ignored */
    setenv("HOME", "/home/u", 1);
    check_dir("/home/u/.local/share/qcare/models");
    unsetenv("XDG_DATA_HOME");
    check_dir("/home/u/.local/share/qcare/models");
    if (saved_home) setenv("HOME", saved_home, 1);
    free(saved_home);

    snprintf(models, sizeof models, "%s/models", tmp);
    setenv("QCARE_MODELS", models, 1);
    char *r = cli_resolve_model("tiny/qwen2"); /* pulled by test_full_and_again */
    snprintf(path, sizeof path, "%s/tiny/qwen2", models);
    CHECK(r && !strcmp(r, path), "resolve tiny/qwen2 -> %s", r ? r : "(null)");
    free(r);
    r = cli_resolve_model(src); /* an existing path wins */
    CHECK(r && !strcmp(r, src), "an existing path is kept");
    free(r);
    fprintf(stderr, "(expected messages follow)\n");
    r = cli_resolve_model("tiny/notpulled");
    CHECK(!r, "a repo not pulled: NULL");
    r = cli_resolve_model("/no/such/folder");
    CHECK(!r, "a missing folder: NULL");
    r = cli_resolve_model(NULL); /* the default model, not pulled here */
    CHECK(!r, "default model not pulled: NULL");
    snprintf(path, sizeof path, "%s/" HUB_DEFAULT_REPO, models);
    CHECK(hub_mkdirs(path) == 0, "mkdirs %s", path);
    r = cli_resolve_model(NULL);
    CHECK(r && !strcmp(r, path), "NULL resolves to the default model's folder, got %s", r ? r : "(null)");
    free(r);
}

/* ==== setup ==== */

static void make_sources(void) {
    char cmd[4096];
    /* sharded: index + two shards; config and tokenizer linked from the fixture */
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; mkdir sharded gguf evilidx;"
             "head -c 300000 /dev/urandom > sharded/model-00001-of-00002.safetensors;"
             "head -c 200000 /dev/urandom > sharded/model-00002-of-00002.safetensors;"
             "printf '%%s' '{\"metadata\": {\"total_size\": 500000}, \"weight_map\": {\"a\": "
             "\"model-00001-of-00002.safetensors\", \"b\": \"model-00002-of-00002.safetensors\", \"c\": "
             "\"model-00001-of-00002.safetensors\"}}' > sharded/model.safetensors.index.json;"
             "for f in config.json tokenizer.json; do ln -s %s/$f sharded/$f; ln -s %s/$f evilidx/$f; done;"
             "printf '%%s' '{\"weight_map\": {\"a\": \"../escape.safetensors\"}}' > evilidx/model.safetensors.index.json;"
             "head -c 50000 /dev/urandom > gguf/x.gguf; echo hi > gguf/README.md",
             tmp, src, src);
    CHECK(system(cmd) == 0, "making the source folders");
}

static void add_repo(const char *name, const char *dir, const char *token, const char *extra, const char *listing) {
    stub_repo_t *r = &stub.repos[stub.n_repos++];
    *r = (stub_repo_t){.name = name, .dir = strdup(dir), .token = token, .listing = listing};
    r->extra[0] = extra;
}

int main(void) {
    qcare = NULL;
    static char qpath[512], d[1024];
    snprintf(qpath, sizeof qpath, "%s/qcare", test_env("QC_BUILD", "build"));
    qcare = qpath;
    snprintf(src, sizeof src, "%s/tiny-qwen2", test_env("QC_MODELS", "build/models"));
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/model.safetensors", src);
    if (!exists(probe) || !exists(qcare)) {
        fprintf(stderr, "test_pull: needs %s and %s (tests/run.sh makes them)\n", probe, qcare);
        return 1;
    }
    if (src[0] != '/') { /* the stub and qcare both need absolute paths */
        char cwd[512];
        CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
        snprintf(d, sizeof d, "%s/%s", cwd, src);
        if (strlen(d) >= sizeof src) return 1;
        memcpy(src, d, strlen(d) + 1);
    }
    snprintf(tmp, sizeof tmp, "/tmp/qc_pull_XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    make_sources();

    add_repo("tiny/qwen2", src, NULL, NULL, NULL);
    add_repo("tiny/gated", src, "s3cret", NULL, NULL);
    snprintf(d, sizeof d, "%s/sharded", tmp);
    add_repo("tiny/sharded", d, NULL, NULL, NULL);
    snprintf(d, sizeof d, "%s/gguf", tmp);
    add_repo("tiny/gguf", d, NULL, NULL, NULL);
    add_repo("tiny/ghost", d, NULL, "ghost.gguf", NULL);
    add_repo("tiny/evil1", src, NULL, "../evil.json", NULL);
    add_repo("tiny/evil2", src, NULL, "/etc/passwd", NULL);
    add_repo("tiny/evil3", src, NULL, "a\\b.json", NULL);
    snprintf(d, sizeof d, "%s/evilidx", tmp);
    add_repo("tiny/evilindex", d, NULL, NULL, NULL);
    add_repo("tiny/badlisting", src, NULL, NULL, "{\"siblings\": {\"rfilename\": \"config.json\"}}");
    add_repo("tiny/renamed", src, NULL, NULL, NULL);
    stub.repos[stub.n_repos - 1].moved_to = "tiny/qwen2";
    if (stub_start(&stub)) {
        fprintf(stderr, "test_pull: cannot start the stand-in hub\n");
        return 1;
    }
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", stub.port);
    setenv("HF_ENDPOINT", endpoint, 1);
    snprintf(d, sizeof d, "%s/models", tmp);
    setenv("QCARE_MODELS", d, 1);
    unsetenv("HF_TOKEN");

    double t0 = qc_now_s();
    test_names();
    test_full_and_again();
    test_resume();
    test_renamed();
    test_sharded_and_gguf();
    test_errors();
    test_resolve();
    printf("test_pull: %.1f s\n", qc_now_s() - t0);

    stub_stop(&stub);
    for (int i = 0; i < stub.n_repos; i++) free((char *)stub.repos[i].dir);
    free(out_s);
    free(err_s);
    snprintf(d, sizeof d, "rm -rf '%s'", tmp);
    if (!test_failed && system(d)) fprintf(stderr, "test_pull: could not remove %s\n", tmp);
    return test_done("test_pull");
}
