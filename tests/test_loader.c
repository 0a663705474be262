/* test_loader.c — model-file loading: the fixture generator against the
 * independent Python manifests, config.json / generation_config.json parsing,
 * the safetensors reader on hostile files, and weight binding (including a
 * sharded set).
 *
 * Env: QC_FIXTURES (default ../shared/fixtures), QC_BUILD (scratch folders go
 * there, default /tmp), QC_TEST_BENCH=1 to also generate and check the 0.93 GB
 * bench-qwen1.5-0.5b model. */
#include "engine/engine.h"
#include "engine/gguf.h"
#include "engine/model_impl.h"
#include "mkmodel.h"
#include "qcare_care.h"
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_tmp[4096]; /* this run's scratch folder */
static volatile unsigned g_sink;

/* ==== helpers ==== */

static char *path2(const char *a, const char *b) {
    char *p = qc_path_join(a, b);
    if (!p) abort();
    return p;
}

/* Removes a folder of plain files (one level of subfolders). */
static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = path2(dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_tree(p);
        else unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static char *mk_subdir(const char *name) {
    char *p = path2(g_tmp, name);
    mkdir(p, 0777);
    return p;
}

static int write_bytes(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int bad = fwrite(buf, 1, len, f) != len;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

static int write_text(const char *path, const char *s) { return write_bytes(path, s, strlen(s)); }

/* Writes a safetensors file: the given header length (or strlen(header) when
 * hlen_override is 0), the header, then `data`. */
static void write_st_raw(const char *path, const char *header, uint64_t hlen_override,
                         const void *data, size_t dlen) {
    size_t hl = strlen(header);
    uint64_t n = hlen_override ? hlen_override : hl;
    size_t total = 8 + hl + dlen;
    unsigned char *buf = malloc(total);
    if (!buf) abort();
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (dlen) memcpy(buf + 8 + hl, data, dlen);
    if (write_bytes(path, buf, total) != 0) abort();
    free(buf);
}

/* Header text padded with spaces to a multiple of 8 (as HF does). */
static char *pad8(const char *h) {
    size_t n = strlen(h), m = (n + 7) / 8 * 8;
    char *p = malloc(m + 1);
    if (!p) abort();
    memcpy(p, h, n);
    memset(p + n, ' ', m - n);
    p[m] = 0;
    return p;
}

static void write_st(const char *path, const char *header, const void *data, size_t dlen) {
    char *h = pad8(header);
    write_st_raw(path, h, 0, data, dlen);
    free(h);
}

static void sha256_hex(const void *data, size_t n, char out[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    if (!EVP_Digest(data, n, md, &len, EVP_sha256(), NULL)) abort();
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ==== (a) generator vs. the independent manifests ==== */

/* Checks every tensor of models/NAME.manifest.json against st. */
static void check_manifest(const char *preset, const qc_st_t *st) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s.manifest.json", preset);
    char *mpath = path2(fixtures(), rel);
    json_error_t jerr;
    json_t *man = json_load_file(mpath, 0, &jerr);
    CHECK(man != NULL, "%s: %s", mpath, man ? "" : jerr.text);
    free(mpath);
    if (!man) return;
    json_t *tensors = json_object_get(man, "tensors");
    CHECK(json_is_object(tensors), "%s: manifest has no tensors", preset);
    CHECK(qc_st_count(st) == json_object_size(tensors), "%s: %zu tensors, manifest has %zu",
          preset, qc_st_count(st), json_object_size(tensors));
    const char *name;
    json_t *v;
    int mismatches = 0;
    json_object_foreach(tensors, name, v) {
        const qc_st_tensor_t *t = qc_st_find(st, name);
        if (!t) {
            CHECK(0, "%s: tensor %s missing", preset, name);
            mismatches++;
            continue;
        }
        json_t *shape = json_object_get(v, "shape");
        int ok = t->dtype == QC_DTYPE_BF16 && (size_t)t->ndim == json_array_size(shape);
        for (int i = 0; ok && i < t->ndim; i++)
            ok = t->shape[i] == json_integer_value(json_array_get(shape, (size_t)i));
        char hex[65];
        sha256_hex(t->data, t->nbytes, hex);
        const char *want = json_string_value(json_object_get(v, "sha256_bf16_le"));
        ok = ok && want && strcmp(hex, want) == 0;
        if (!ok) {
            mismatches++;
            fprintf(stderr, "  %s: %s: sha %s want %s\n", preset, name, hex, want ? want : "?");
        }
    }
    CHECK(mismatches == 0, "%s: %d tensors differ from the manifest", preset, mismatches);
    json_decref(man);
}

static void test_generator(const char *preset) {
    char err[512] = "";
    char *dir = mk_subdir(preset);
    char *tokdir = path2(fixtures(), "tokenizer");
    double t0 = qc_now_s();
    qc_status s = qc_mkmodel(preset, dir, tokdir, 0, err, sizeof err);
    double dt = qc_now_s() - t0;
    CHECK(s == QC_OK, "mkmodel %s: %s", preset, err);
    printf("mkmodel %s: %.2f s\n", preset, dt);

    qc_st_t *st = NULL;
    s = qc_st_open_dir(dir, &st, err, sizeof err);
    CHECK(s == QC_OK && st, "open %s: %s", preset, err);
    if (st) check_manifest(preset, st);

    char *cpath = path2(dir, "config.json");
    struct qc_model m;
    memset(&m, 0, sizeof m);
    s = qc_config_load(cpath, &m.cfg, err, sizeof err);
    CHECK(s == QC_OK, "config %s: %s", preset, err);
    int q3 = strstr(preset, "qwen3") != NULL;
    CHECK(m.cfg.arch == (q3 ? QC_ARCH_QWEN3 : QC_ARCH_QWEN2), "%s: arch", preset);
    CHECK(m.cfg.qk_norm == q3 && m.cfg.qkv_bias == !q3, "%s: bias/norm flags", preset);
    CHECK(m.cfg.n_vocab == 151936 && m.cfg.bos_id == 151643 && m.cfg.n_eos == 1 &&
              m.cfg.eos_ids[0] == 151645,
          "%s: vocab/bos/eos", preset);
    CHECK(m.cfg.rope_theta == 1e6f && m.cfg.rms_eps == 1e-6f && m.cfg.n_ctx_train == 4096,
          "%s: theta/eps/ctx", preset);
    if (strcmp(preset, "tiny-qwen3") == 0)
        CHECK(m.cfg.head_dim == 32 && m.cfg.n_head == 4 && m.cfg.n_head_kv == 2 &&
                  m.cfg.tie_embeddings == 1,
              "tiny-qwen3: head_dim %d", m.cfg.head_dim);
    if (strcmp(preset, "tiny-qwen2") == 0)
        CHECK(m.cfg.head_dim == 16 && m.cfg.tie_embeddings == 0 && m.cfg.n_ff == 160,
              "tiny-qwen2: head_dim %d", m.cfg.head_dim);

    if (st && s == QC_OK) {
        s = qc_weights_bind(&m, st, err, sizeof err);
        CHECK(s == QC_OK, "bind %s: %s", preset, err);
        if (s == QC_OK) {
            int tied = m.lm_head.data == m.tok_embd.data;
            CHECK(tied == (qc_st_find(st, "lm_head.weight") == NULL), "%s: lm_head tie", preset);
            /* every tensor is bound exactly once, lm_head only when separate */
            int64_t params = 0, bytes = 0;
            for (size_t i = 0; i < qc_st_count(st); i++) {
                const qc_st_tensor_t *t = qc_st_at(st, i);
                int64_t n = 1;
                for (int k = 0; k < t->ndim; k++) n *= t->shape[k];
                params += n;
                bytes += (int64_t)t->nbytes;
            }
            CHECK(m.n_params == params && m.weight_bytes == bytes,
                  "%s: n_params %lld (want %lld)", preset, (long long)m.n_params,
                  (long long)params);
            if (strcmp(preset, "bench-qwen1.5-0.5b") == 0)
                CHECK(m.n_params == 463987712, "bench params %lld", (long long)m.n_params);
            qc_tensor_t *wq = &m.layers[1].wq;
            CHECK(wq->rows == (int64_t)m.cfg.n_head * m.cfg.head_dim &&
                      wq->cols == m.cfg.n_embd && wq->dtype == QC_DTYPE_BF16,
                  "%s: wq shape", preset);
            CHECK(m.out_norm.rows == 1 && m.out_norm.cols == m.cfg.n_embd, "%s: norm", preset);
            /* a norm weight in [0.5, 1.5), as the generator defines */
            float w = qc_bf16_to_f32(((const uint16_t *)m.out_norm.data)[0]);
            CHECK(w >= 0.5f && w < 1.5f, "%s: norm value %g", preset, w);
        }
        free(m.layers);
    }
    free(cpath);

    /* generation_config.json: Qwen2.5-Instruct's values */
    qc_genconfig_t g;
    char *gpath = path2(dir, "generation_config.json");
    s = qc_genconfig_load(gpath, &g, err, sizeof err);
    CHECK(s == QC_OK, "genconfig %s: %s", preset, err);
    CHECK(g.sampling.temperature == 0.7f && g.sampling.top_k == 20 && g.sampling.top_p == 0.8f &&
              g.sampling.repetition_penalty == 1.05f && g.sampling.min_p == 0.0f,
          "%s: sampling %g %d %g %g", preset, g.sampling.temperature, g.sampling.top_k,
          g.sampling.top_p, g.sampling.repetition_penalty);
    CHECK(g.n_eos == 2 && g.eos_ids[0] == 151645 && g.eos_ids[1] == 151643, "%s: gen eos",
          preset);
    free(gpath);

    char *tj = path2(dir, "tokenizer.json");
    CHECK(access(tj, R_OK) == 0, "%s: tokenizer.json copied", preset);
    free(tj);
    qc_st_close(st);
    rm_tree(dir);
    free(dir);
    free(tokdir);
}

/* ==== (b) hostile safetensors files ==== */

/* Opens path, which must fail with `want` (or any error when want < 0), a
 * message, and no handle; `needle`, when given, must appear in the message. */
static void expect_st_fail(const char *label, const char *path, int want, const char *needle) {
    char err[512] = "";
    qc_st_t *st = (qc_st_t *)1;
    qc_status s = qc_st_open_file(path, &st, err, sizeof err);
    CHECK(s != QC_OK && st == NULL, "%s: expected failure, got %d", label, s);
    CHECK(want < 0 || s == want, "%s: status %d, expected %d (%s)", label, s, want, err);
    CHECK(err[0] != 0, "%s: empty message", label);
    CHECK(!needle || strstr(err, needle), "%s: message \"%s\" lacks \"%s\"", label, err, needle);
    if (s == QC_OK) qc_st_close(st);
}

static void test_bad_safetensors(void) {
    char *dir = mk_subdir("bad-st");
    char *p = path2(dir, "x.safetensors");
    char err[512];

    /* a valid two-tensor file first: a [2,3] F32, b [4] BF16 */
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t b[4] = {0x3f80, 0x4000, 0xbf80, 0};
    unsigned char data[32];
    memcpy(data, a, 24);
    memcpy(data + 24, b, 8);
    const char *good = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
    write_st(p, good, data, sizeof data);
    qc_st_t *st = NULL;
    qc_status s = qc_st_open_file(p, &st, err, sizeof err);
    CHECK(s == QC_OK, "good file: %s", err);
    if (st) {
        CHECK(qc_st_count(st) == 2, "good file: count");
        const qc_st_tensor_t *ta = qc_st_find(st, "a"), *tb = qc_st_find(st, "b");
        CHECK(ta && ta->dtype == QC_DTYPE_F32 && ta->ndim == 2 && ta->shape[0] == 2 &&
                  ta->shape[1] == 3 && ta->nbytes == 24 && ((const float *)ta->data)[5] == 6.0f,
              "good file: a");
        CHECK(tb && tb->dtype == QC_DTYPE_BF16 && tb->nbytes == 8 &&
                  qc_bf16_to_f32(((const uint16_t *)tb->data)[2]) == -1.0f,
              "good file: b");
        CHECK(qc_st_find(st, "c") == NULL && qc_st_find(st, "__metadata__") == NULL,
              "good file: find absent");
        CHECK(qc_st_at(st, 0) && !strcmp(qc_st_at(st, 0)->name, "a") && qc_st_at(st, 2) == NULL,
              "good file: at");
        qc_st_close(st);
    }

    /* random byte mutations of the header: any outcome but a crash is fine;
     * a file that still opens must describe readable tensors */
    {
        size_t hl0 = (strlen(good) + 7) / 8 * 8, tot = 8 + hl0 + sizeof data;
        unsigned char *orig = malloc(tot), *mut = malloc(tot);
        FILE *g = fopen(p, "rb");
        CHECK(g && orig && mut && fread(orig, 1, tot, g) == tot, "read good file");
        if (g) fclose(g);
        uint64_t rng = 42;
        int opened = 0, crashed = 0;
        const char alphabet[] = "{}[]\",:0123456789-eE.aAbF1BX ";
        for (int it = 0; it < 2000 && orig && mut; it++) {
            memcpy(mut, orig, tot);
            int k = 1 + (int)(rng % 3);
            for (int j = 0; j < k; j++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                size_t at = (size_t)(rng >> 33) % (8 + hl0);
                mut[at] = (rng >> 20) & 1 ? (unsigned char)alphabet[(rng >> 40) % (sizeof alphabet - 1)]
                                          : (unsigned char)(rng >> 24);
            }
            write_bytes(p, mut, tot);
            qc_st_t *fz = NULL;
            err[0] = 0;
            if (qc_st_open_file(p, &fz, err, sizeof err) == QC_OK) {
                opened++;
                for (size_t i = 0; i < qc_st_count(fz); i++) {
                    const qc_st_tensor_t *t = qc_st_at(fz, i);
                    unsigned sum = 0;
                    for (size_t b2 = 0; b2 < t->nbytes; b2++) sum += ((const unsigned char *)t->data)[b2];
                    g_sink += sum; /* touch every byte: a bad bound would fault */
                    crashed += t->nbytes > sizeof data;
                }
                qc_st_close(fz);
            } else {
                crashed += err[0] == 0;
            }
        }
        CHECK(crashed == 0, "mutations: %d bad outcomes (%d opened)", crashed, opened);
        printf("header mutations: %d of 2000 still open\n", opened);
        free(orig);
        free(mut);
    }

    /* truncated copies: inside the length, the header, the data */
    size_t hl = (strlen(good) + 7) / 8 * 8, total = 8 + hl + sizeof data;
    size_t cuts[] = {0, 4, 7, 8, 8 + 10, 8 + hl - 1, 8 + hl, 8 + hl + 10, total - 1};
    unsigned char *full = malloc(total);
    FILE *f = fopen(p, "rb");
    CHECK(f && fread(full, 1, total, f) == total, "read back");
    if (f) fclose(f);
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "truncated at %zu of %zu", cuts[i], total);
        write_bytes(p, full, cuts[i]);
        expect_st_fail(label, p, -1, NULL);
    }
    free(full);

    write_st_raw(p, "{}      ", (uint64_t)1 << 40, NULL, 0);
    expect_st_fail("header length > file", p, QC_ERR_FORMAT, "header length");
    write_st_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 1000, NULL, 0);
    expect_st_fail("header length slightly > file", p, QC_ERR_FORMAT, "header length");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 4);
    expect_st_fail("offsets past end", p, QC_ERR_FORMAT, "past the end");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", data, 16);
    expect_st_fail("begin > end", p, QC_ERR_FORMAT, "begin");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data, 16);
    expect_st_fail("nbytes != shape", p, QC_ERR_FORMAT, "shape needs");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", data, 16);
    expect_st_fail("nbytes < shape", p, QC_ERR_FORMAT, "a");
    const char *dtypes[] = {"XYZ", "I8", "F8_E4M3", "F64"};
    for (int i = 0; i < 4; i++) {
        char h[256], label[64];
        snprintf(h, sizeof h,
                 "{\"w.weight\":{\"dtype\":\"%s\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                 dtypes[i]);
        snprintf(label, sizeof label, "dtype %s", dtypes[i]);
        write_st(p, h, data, 16);
        expect_st_fail(label, p, QC_ERR_UNSUPPORTED, dtypes[i]);
        expect_st_fail(label, p, QC_ERR_UNSUPPORTED, "w.weight");
    }
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
                "\"data_offsets\":[0,0]}}", data, 16);
    expect_st_fail("shape overflow", p, QC_ERR_FORMAT, "overflow");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                "\"data_offsets\":[0,0]}}", data, 16);
    expect_st_fail("byte size overflow", p, QC_ERR_FORMAT, "overflow");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
                "\"data_offsets\":[0,4]}}", data, 16);
    expect_st_fail("integer too big for JSON parser", p, QC_ERR_FORMAT, NULL);
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data, 16);
    expect_st_fail("negative dim", p, QC_ERR_FORMAT, "shape");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", data, 16);
    expect_st_fail("negative offset", p, QC_ERR_FORMAT, "data_offsets");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", data, 16);
    expect_st_fail("one offset", p, QC_ERR_FORMAT, "data_offsets");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", data, 16);
    expect_st_fail("5 dims", p, QC_ERR_UNSUPPORTED, "dimensions");
    /* misaligned data is valid: the reader hands out an aligned copy */
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[2,10]},"
                "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[11,13]}}", data, 16);
    s = qc_st_open_file(p, &st, err, sizeof err);
    CHECK(s == QC_OK, "misaligned tensors: %s", err);
    if (st) {
        const qc_st_tensor_t *ta = qc_st_find(st, "a"), *tb = qc_st_find(st, "b");
        float want[2];
        uint16_t wb;
        memcpy(want, data + 2, 8);
        memcpy(&wb, data + 11, 2);
        CHECK(ta && (uintptr_t)ta->data % 4 == 0 && ((const float *)ta->data)[1] == want[1],
              "misaligned F32 copied");
        CHECK(tb && (uintptr_t)tb->data % 2 == 0 && ((const uint16_t *)tb->data)[0] == wb,
              "misaligned BF16 copied");
        qc_st_close(st);
    }
    write_st(p, "hello, I am not JSON at all", data, 16);
    expect_st_fail("header not JSON", p, QC_ERR_FORMAT, "JSON");
    write_st(p, "[1,2,3]", data, 16);
    expect_st_fail("header an array", p, QC_ERR_FORMAT, NULL);
    write_st(p, "{\"a\":7}", data, 16);
    expect_st_fail("entry not an object", p, QC_ERR_FORMAT, NULL);
    write_st_raw(p, "", 0, NULL, 0);
    expect_st_fail("header length 0", p, QC_ERR_FORMAT, NULL);
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data, 16);
    expect_st_fail("duplicate name", p, QC_ERR_FORMAT, "duplicate");
    write_bytes(p, "", 0);
    expect_st_fail("empty file", p, QC_ERR_FORMAT, NULL);
    char *missing = path2(dir, "nope.safetensors");
    expect_st_fail("missing file", missing, QC_ERR_IO, "nope.safetensors");
    free(missing);
    expect_st_fail("a folder", dir, QC_ERR_IO, NULL);

    /* an empty header {} is a valid file with no tensors */
    write_st(p, "{}", NULL, 0);
    s = qc_st_open_file(p, &st, err, sizeof err);
    CHECK(s == QC_OK && qc_st_count(st) == 0 && qc_st_find(st, "a") == NULL, "empty set: %s", err);
    qc_st_close(st);
    qc_st_close(NULL); /* a no-op */
    CHECK(qc_st_count(NULL) == 0 && qc_st_find(NULL, "a") == NULL && qc_st_at(NULL, 0) == NULL,
          "NULL handle accessors");

    st = (qc_st_t *)1;
    s = qc_st_open_dir(dir, &st, err, sizeof err);
    CHECK(s != QC_OK && st == NULL && err[0], "dir without model: %d", s);
    free(p);
    rm_tree(dir);
    free(dir);
}

/* ==== synthetic models: binding and shards ==== */

/* A small Qwen2 shape: vocab 32, hidden 8, ff 16, 2 layers, 2 heads, 1 kv
 * head, head_dim 4. */
static const char *SMALL_CONFIG =
    "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":16,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
    "\"vocab_size\":32,\"max_position_embeddings\":128,\"rope_theta\":10000,"
    "\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":true,\"bos_token_id\":1,"
    "\"eos_token_id\":[2,3]}";

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    const char *dtype;
    size_t esize;
} syn_t;

static void syn_add(syn_t *v, int *n, const char *name, int64_t r, int64_t c, const char *dt,
                    size_t es) {
    syn_t *t = &v[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = r ? 2 : 1;
    t->shape[0] = r ? r : c;
    t->shape[1] = c;
    t->dtype = dt;
    t->esize = es;
}

/* The tensors of SMALL_CONFIG, in mixed dtypes (norms F32, biases F16,
 * matrices BF16). */
static int syn_list(syn_t *v) {
    int n = 0;
    char nm[96];
    syn_add(v, &n, "model.embed_tokens.weight", 32, 8, "BF16", 2);
    syn_add(v, &n, "model.norm.weight", 0, 8, "F32", 4);
    for (int l = 0; l < 2; l++) {
#define A(s, r, c, dt, es)                                                 \
    snprintf(nm, sizeof nm, "model.layers.%d.%s", l, s);                 \
    syn_add(v, &n, nm, r, c, dt, es)
        A("input_layernorm.weight", 0, 8, "F32", 4);
        A("post_attention_layernorm.weight", 0, 8, "F32", 4);
        A("self_attn.q_proj.weight", 8, 8, "BF16", 2);
        A("self_attn.k_proj.weight", 4, 8, "BF16", 2);
        A("self_attn.v_proj.weight", 4, 8, "BF16", 2);
        A("self_attn.o_proj.weight", 8, 8, "BF16", 2);
        A("self_attn.q_proj.bias", 0, 8, "F16", 2);
        A("self_attn.k_proj.bias", 0, 4, "F16", 2);
        A("self_attn.v_proj.bias", 0, 4, "F16", 2);
        A("mlp.gate_proj.weight", 16, 8, "BF16", 2);
        A("mlp.up_proj.weight", 16, 8, "BF16", 2);
        A("mlp.down_proj.weight", 8, 16, "BF16", 2);
#undef A
    }
    return n;
}

/* Writes tensors v[from..to) (skipping `skip`) as one safetensors file, with
 * data filled with zero bytes and each tensor 8-byte aligned. */
static void syn_write(const char *path, const syn_t *v, int from, int to, const char *skip) {
    size_t cap = 64 + (size_t)(to - from) * 200, len = 0;
    char *h = malloc(cap);
    if (!h) abort();
    len += (size_t)snprintf(h, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int i = from; i < to; i++) {
        if (skip && !strcmp(skip, v[i].name)) continue;
        size_t nb = v[i].esize * (size_t)v[i].shape[0] * (v[i].ndim == 2 ? (size_t)v[i].shape[1] : 1);
        char shape[64];
        if (v[i].ndim == 2)
            snprintf(shape, sizeof shape, "[%lld,%lld]", (long long)v[i].shape[0],
                     (long long)v[i].shape[1]);
        else
            snprintf(shape, sizeof shape, "[%lld]", (long long)v[i].shape[0]);
        len += (size_t)snprintf(h + len, cap - len,
                                ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                                v[i].name, v[i].dtype, shape, off, off + nb);
        off = (off + nb + 7) / 8 * 8;
    }
    snprintf(h + len, cap - len, "}");
    unsigned char *data = calloc(1, off + 1);
    if (!data) abort();
    write_st(path, h, data, off);
    free(data);
    free(h);
}

/* Loads dir's config.json and safetensors and binds; returns the status, the
 * message in err. */
static qc_status load_and_bind(const char *dir, struct qc_model *m, char *err, size_t n) {
    memset(m, 0, sizeof *m);
    char *c = path2(dir, "config.json");
    qc_status s = qc_config_load(c, &m->cfg, err, n);
    free(c);
    if (s) return s;
    qc_st_t *st = NULL;
    s = qc_st_open_dir(dir, &st, err, n);
    if (s) return s;
    s = qc_weights_bind(m, st, err, n);
    CHECK(s == QC_OK || m->layers == NULL, "failed bind leaves no layers");
    free(m->layers);
    m->layers = NULL;
    qc_st_close(st);
    return s;
}

static void test_bind(void) {
    syn_t v[64];
    int n = syn_list(v);
    char err[512] = "";
    struct qc_model m;
    char *dir = mk_subdir("small");
    char *cfg = path2(dir, "config.json"), *stp = path2(dir, "model.safetensors");
    write_text(cfg, SMALL_CONFIG);

    syn_write(stp, v, 0, n, NULL);
    qc_status s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_OK, "small model binds: %s", err);
    CHECK(m.cfg.n_eos == 2 && m.cfg.eos_ids[1] == 3 && m.cfg.bos_id == 1 &&
              m.cfg.rms_eps == 1e-5f && m.cfg.rope_theta == 10000.0f && m.cfg.head_dim == 4,
          "small config values");
    /* 32*8 + 8 + 2 * (8+8 + 64+32+32+64 + 8+4+4 + 128*3) */
    CHECK(m.n_params == 256 + 8 + 2 * (16 + 192 + 16 + 384), "small n_params %lld",
          (long long)m.n_params);

    /* missing tensor */
    syn_write(stp, v, 0, n, "model.layers.1.self_attn.k_proj.bias");
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "model.layers.1.self_attn.k_proj.bias"),
          "missing tensor: %d %s", s, err);

    /* wrong shape: q_proj [9, 8] instead of [8, 8] */
    syn_t w[64];
    memcpy(w, v, sizeof w);
    for (int i = 0; i < n; i++)
        if (!strcmp(w[i].name, "model.layers.0.self_attn.q_proj.weight")) w[i].shape[0] = 9;
    syn_write(stp, w, 0, n, NULL);
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "model.layers.0.self_attn.q_proj.weight") &&
              strstr(err, "[9, 8]") && strstr(err, "[8, 8]"),
          "wrong q_proj shape: %d %s", s, err);
    /* wrong rank: a norm stored as [1, 8] */
    memcpy(w, v, sizeof w);
    for (int i = 0; i < n; i++)
        if (!strcmp(w[i].name, "model.norm.weight")) {
            w[i].ndim = 2;
            w[i].shape[0] = 1;
            w[i].shape[1] = 8;
        }
    syn_write(stp, w, 0, n, NULL);
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "model.norm.weight"), "norm rank: %s", err);

    /* a separate lm_head is used even when config says tied */
    memcpy(w, v, sizeof w);
    syn_add(w, &n, "lm_head.weight", 32, 8, "F32", 4);
    syn_write(stp, w, 0, n, NULL);
    memset(&m, 0, sizeof m);
    qc_config_load(cfg, &m.cfg, err, sizeof err);
    qc_st_t *st = NULL;
    s = qc_st_open_dir(dir, &st, err, sizeof err);
    CHECK(s == QC_OK, "with lm_head: %s", err);
    if (st) {
        s = qc_weights_bind(&m, st, err, sizeof err);
        CHECK(s == QC_OK && m.lm_head.dtype == QC_DTYPE_F32 && m.lm_head.data != m.tok_embd.data,
              "separate lm_head bound: %s", err);
        CHECK(m.n_params == 256 + 8 + 2 * (16 + 192 + 16 + 384) + 256, "params with lm_head");
        free(m.layers);
        qc_st_close(st);
    }
    n--;

    /* sharded: two shards + index, no model.safetensors */
    unlink(stp);
    char *s1 = path2(dir, "model-00001-of-00002.safetensors");
    char *s2 = path2(dir, "model-00002-of-00002.safetensors");
    char *ip = path2(dir, "model.safetensors.index.json");
    int half = n / 2;
    syn_write(s1, v, 0, half, NULL);
    syn_write(s2, v, half, n, NULL);
    size_t cap = 16384, len = 0;
    char *idx = malloc(cap);
    len += (size_t)snprintf(idx, cap, "{\"metadata\":{\"total_size\":1},\"weight_map\":{");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(idx + len, cap - len, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"",
                                i ? "," : "", v[i].name, i < half ? 1 : 2);
    snprintf(idx + len, cap - len, "}}");
    write_text(ip, idx);
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_OK, "sharded model binds: %s", err);
    st = NULL;
    s = qc_st_open_dir(dir, &st, err, sizeof err);
    CHECK(s == QC_OK && qc_st_count(st) == (size_t)n, "sharded count");
    CHECK(qc_st_find(st, v[0].name) && qc_st_find(st, v[n - 1].name), "found across shards");
    qc_st_close(st);

    /* an index entry pointing at the wrong shard */
    char *bad = strdup(idx);
    char *hit = strstr(bad, "model-00002-of");
    if (hit) hit[10] = '1';
    write_text(ip, bad);
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "weight_map"), "tensor in wrong shard: %d %s", s, err);
    free(bad);

    /* a tensor in both shards */
    syn_write(s2, v, half - 1, n, NULL);
    write_text(ip, idx);
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "twice"), "duplicate across shards: %d %s", s, err);
    syn_write(s2, v, half, n, NULL);

    /* index naming a missing shard */
    unlink(s2);
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_IO && strstr(err, "model-00002-of-00002.safetensors"),
          "missing shard: %d %s", s, err);

    /* shard names that leave the folder */
    write_text(ip, "{\"weight_map\":{\"a\":\"../x.safetensors\"}}");
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && err[0], "shard with ..: %d %s", s, err);
    write_text(ip, "{\"weight_map\":{\"a\":\"/etc/passwd\"}}");
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && err[0], "absolute shard: %d %s", s, err);
    write_text(ip, "{\"weight_map\":{\"a\":5}}");
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT, "shard not a string: %d", s);
    write_text(ip, "{\"weight_map\": [");
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "index.json"), "malformed index: %d %s", s, err);
    write_text(ip, "{\"metadata\":{}}");
    s = load_and_bind(dir, &m, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "weight_map"), "index without weight_map: %s", err);

    free(idx);
    free(s1);
    free(s2);
    free(ip);
    free(cfg);
    free(stp);
    rm_tree(dir);
    free(dir);
}

/* ==== config.json and generation_config.json ==== */

/* Writes `text` as a config file and loads it, expecting status `want` and
 * `needle` in the message. */
static void expect_config(const char *label, const char *text, int want, const char *needle) {
    char *p = path2(g_tmp, "config.json");
    write_text(p, text);
    qc_config_t c;
    char err[512] = "";
    qc_status s = qc_config_load(p, &c, err, sizeof err);
    CHECK(s == want, "%s: status %d, expected %d (%s)", label, s, want, err);
    if (want != QC_OK) {
        CHECK(err[0] != 0, "%s: empty message", label);
        CHECK(strstr(err, "config.json") != NULL, "%s: message lacks the file: %s", label, err);
    }
    CHECK(!needle || strstr(err, needle), "%s: message \"%s\" lacks \"%s\"", label, err, needle);
    free(p);
}

/* SMALL_CONFIG with `from` replaced by `to`. */
static char *config_with(const char *from, const char *to) {
    const char *at = strstr(SMALL_CONFIG, from);
    if (!at) abort();
    size_t a = (size_t)(at - SMALL_CONFIG), n = strlen(SMALL_CONFIG) - strlen(from) + strlen(to);
    char *r = malloc(n + 1);
    if (!r) abort();
    memcpy(r, SMALL_CONFIG, a);
    strcpy(r + a, to);
    strcat(r, at + strlen(from));
    return r;
}

/* Whole-file reads (config.json, tokenizer.json, ...) take regular files
 * of bounded size only: before, config.json symlinked to /dev/zero grew to
 * 11 GB resident in 10 s, and /dev/urandom or a FIFO hung. */
static void test_special_files(void) {
    char *p = path2(g_tmp, "config.json"), err[512];
    qc_config_t c;
    const char *devs[] = {"/dev/zero", "/dev/urandom"};
    for (int i = 0; i < 2; i++) {
        unlink(p);
        if (symlink(devs[i], p) != 0) {
            CHECK(0, "symlink %s", devs[i]);
            continue;
        }
        double t0 = qc_now_s();
        err[0] = 0;
        qc_status s = qc_config_load(p, &c, err, sizeof err);
        CHECK(s != QC_OK && strstr(err, "not a regular file") && qc_now_s() - t0 < 5,
              "config.json -> %s refused at once: status %d, '%s'", devs[i], s, err);
    }
    unlink(p);
    CHECK(mkfifo(p, 0600) == 0, "mkfifo");
    err[0] = 0;
    qc_status s = qc_config_load(p, &c, err, sizeof err);
    CHECK(s != QC_OK && strstr(err, "not a regular file"), "config.json a FIFO refused: '%s'", err);
    unlink(p);
    /* a sparse file just over the limit: refused from its size, unread */
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)QC_READ_FILE_MAX + 1) == 0, "sparse file");
    if (fd >= 0) close(fd);
    err[0] = 0;
    s = qc_config_load(p, &c, err, sizeof err);
    CHECK(s != QC_OK && strstr(err, "MiB"), "config.json over %d MiB refused: '%s'", QC_READ_FILE_MAX >> 20, err);
    unlink(p);
    free(p);

    /* The mapped files too: model.safetensors (or a shard) or a GGUF that is
     * a FIFO is refused at once, not waited on for a writer (open() used to
     * block there; the alarm ends this test instead of hanging it). */
    char *dir = path2(g_tmp, "fifo-model");
    mkdir(dir, 0700);
    char *st = path2(dir, "model.safetensors");
    CHECK(mkfifo(st, 0600) == 0, "mkfifo");
    alarm(20);
    qc_st_t *set = NULL;
    err[0] = 0;
    s = qc_st_open_dir(dir, &set, err, sizeof err);
    CHECK(s == QC_ERR_IO && !set && strstr(err, "not a regular file"), "model.safetensors a FIFO: %d '%s'", s, err);
    qc_gguf_t *g = NULL;
    err[0] = 0;
    s = qc_gguf_open(st, &g, err, sizeof err);
    CHECK(s == QC_ERR_IO && !g && strstr(err, "not a regular file"), "a GGUF that is a FIFO: %d '%s'", s, err);
    alarm(0);
    unlink(st);
    rmdir(dir);
    free(st);
    free(dir);
}

static void test_config(void) {
    test_special_files();
    expect_config("small", SMALL_CONFIG, QC_OK, NULL);
    char *t;
#define CASE(label, from, to, want, needle)       \
    t = config_with(from, to);                    \
    expect_config(label, t, want, needle);        \
    free(t)
    CASE("llama", "Qwen2ForCausalLM", "LlamaForCausalLM", QC_ERR_UNSUPPORTED, "LlamaForCausalLM");
    CASE("missing hidden_size", "\"hidden_size\":8,", "", QC_ERR_FORMAT, "hidden_size");
    CASE("hidden_size string", "\"hidden_size\":8", "\"hidden_size\":\"8\"", QC_ERR_FORMAT,
         "hidden_size");
    CASE("hidden_size 0", "\"hidden_size\":8", "\"hidden_size\":0", QC_ERR_FORMAT, "hidden_size");
    CASE("hidden_size huge", "\"hidden_size\":8", "\"hidden_size\":99999999999", QC_ERR_FORMAT,
         "hidden_size");
    CASE("layers huge", "\"num_hidden_layers\":2", "\"num_hidden_layers\":5000", QC_ERR_FORMAT,
         "num_hidden_layers");
    CASE("heads not multiple of kv", "\"num_key_value_heads\":1", "\"num_key_value_heads\":3",
         QC_ERR_FORMAT, "num_key_value_heads");
    CASE("hidden not divisible", "\"num_attention_heads\":2", "\"num_attention_heads\":3",
         QC_ERR_FORMAT, "divisible");
    CASE("odd head_dim", "\"num_attention_heads\":2", "\"num_attention_heads\":8", QC_ERR_FORMAT,
         "head_dim");
    CASE("rope_scaling", "\"rope_theta\":10000", "\"rope_theta\":10000,\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}",
         QC_ERR_UNSUPPORTED, "rope_scaling");
    CASE("rope_scaling null", "\"rope_theta\":10000", "\"rope_theta\":10000,\"rope_scaling\":null",
         QC_OK, NULL);
    CASE("sliding window", "\"rope_theta\":10000", "\"rope_theta\":10000,\"use_sliding_window\":true",
         QC_ERR_UNSUPPORTED, "sliding");
    CASE("gelu", "\"rope_theta\":10000", "\"rope_theta\":10000,\"hidden_act\":\"gelu\"",
         QC_ERR_UNSUPPORTED, "gelu");
    CASE("architectures not a list", "[\"Qwen2ForCausalLM\"]", "\"Qwen2ForCausalLM\"",
         QC_ERR_FORMAT, "architectures");
    CASE("architectures empty", "[\"Qwen2ForCausalLM\"]", "[]", QC_ERR_FORMAT, "architectures");
    CASE("eos out of range", "[2,3]", "[2,300]", QC_ERR_FORMAT, "eos_token_id");
    CASE("eos not int", "[2,3]", "[2,\"x\"]", QC_ERR_FORMAT, "eos_token_id");
    CASE("eos int", "[2,3]", "2", QC_OK, NULL);
    CASE("eps negative", "1e-5", "-1e-5", QC_ERR_FORMAT, "rms_norm_eps");
    CASE("tie not bool", "\"tie_word_embeddings\":true", "\"tie_word_embeddings\":1",
         QC_ERR_FORMAT, "tie_word_embeddings");
#undef CASE
    expect_config("malformed", "{\n  \"architectures\": [\"Qwen2ForCausalLM\"],\n  \"hidden_size\": 8,,\n}",
                  QC_ERR_FORMAT, "config.json:3:");
    expect_config("truncated", "{\"architectures\": [\"Qwen2ForCausalLM\"", QC_ERR_FORMAT,
                  "malformed JSON");
    expect_config("empty", "", QC_ERR_FORMAT, NULL);
    expect_config("not an object", "[1]", QC_ERR_FORMAT, NULL);
    expect_config("duplicate key", "{\"hidden_size\":8,\"hidden_size\":9}", QC_ERR_FORMAT,
                  "duplicate");

    /* Qwen3 defaults: qk_norm on, no bias unless attention_bias; head_dim given */
    char *p = path2(g_tmp, "config.json");
    qc_config_t c;
    char err[512] = "";
    t = config_with("Qwen2ForCausalLM", "Qwen3ForCausalLM\"],\"head_dim\":6,\"x\":[\"");
    write_text(p, t);
    free(t);
    qc_status s = qc_config_load(p, &c, err, sizeof err);
    CHECK(s == QC_OK && c.arch == QC_ARCH_QWEN3 && c.qk_norm == 1 && c.qkv_bias == 0 &&
              c.head_dim == 6 && c.n_head_kv == 1,
          "qwen3 config: %s", err);
    t = config_with("Qwen2ForCausalLM", "Qwen3ForCausalLM\"],\"attention_bias\":true,\"x\":[\"");
    write_text(p, t);
    free(t);
    s = qc_config_load(p, &c, err, sizeof err);
    CHECK(s == QC_OK && c.qkv_bias == 1, "qwen3 attention_bias: %s", err);
    /* defaults when optional fields are absent */
    write_text(p, "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
                  "\"intermediate_size\":128,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
                  "\"vocab_size\":100}");
    s = qc_config_load(p, &c, err, sizeof err);
    CHECK(s == QC_OK && c.n_head_kv == 4 && c.head_dim == 16 && c.rope_theta == 10000.0f &&
              c.rms_eps == 1e-6f && c.tie_embeddings == 0 && c.bos_id == -1 && c.n_eos == 0 &&
              c.n_ctx_train == 32768,
          "config defaults: %s", err);
    unlink(p);
    s = qc_config_load(p, &c, err, sizeof err);
    CHECK(s == QC_ERR_IO && strstr(err, "config.json"), "missing config: %d %s", s, err);
    free(p);

    /* generation_config.json */
    qc_genconfig_t g;
    p = path2(g_tmp, "generation_config.json");
    unlink(p);
    s = qc_genconfig_load(p, &g, err, sizeof err);
    CHECK(s == QC_OK && g.sampling.temperature == 0.0f && g.sampling.top_k == 50 &&
              g.sampling.top_p == 1.0f && g.sampling.repetition_penalty == 1.0f && g.n_eos == 0,
          "missing genconfig gives defaults");
    write_text(p, "{\"do_sample\":false,\"temperature\":0.6,\"top_k\":5,\"eos_token_id\":7}");
    s = qc_genconfig_load(p, &g, err, sizeof err);
    CHECK(s == QC_OK && g.sampling.temperature == 0.0f && g.sampling.top_k == 5 && g.n_eos == 1 &&
              g.eos_ids[0] == 7,
          "do_sample false is greedy: %s", err);
    write_text(p, "{\"do_sample\":true,\"min_p\":0.05,\"top_p\":null}");
    s = qc_genconfig_load(p, &g, err, sizeof err);
    CHECK(s == QC_OK && g.sampling.temperature == 1.0f && g.sampling.min_p == 0.05f &&
              g.sampling.top_p == 1.0f,
          "do_sample true, defaults: %s", err);
    write_text(p, "{\"do_sample\":true,\"top_p\":2}");
    s = qc_genconfig_load(p, &g, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "top_p"), "top_p out of range: %s", err);
    write_text(p, "{\"do_sample\":tru}");
    s = qc_genconfig_load(p, &g, err, sizeof err);
    CHECK(s == QC_ERR_FORMAT && strstr(err, "generation_config.json:1:"), "malformed genconfig: %s",
          err);
    unlink(p);
    free(p);
}

/* ==== mkmodel arguments ==== */

/* ==== values that cannot be right together ==== */

/* Replaces every `from` in the file at path by `to`; the number replaced. */
static int edit_file(const char *path, const char *from, const char *to) {
    size_t n = 0;
    char *s = test_slurp(path, &n);
    if (!s) return 0;
    qc_buf_t o = {0};
    int k = 0;
    for (const char *p = s, *at; *p; p = at + strlen(from), k++) {
        if (!(at = strstr(p, from))) {
            qc_buf_puts(&o, p);
            break;
        }
        qc_buf_add(&o, p, (size_t)(at - p));
        qc_buf_puts(&o, to);
    }
    write_bytes(path, o.p ? o.p : "", o.n);
    qc_buf_free(&o);
    free(s);
    return k;
}

/* Loads dir (whole, as qcare does) and expects a refusal naming `needle`
 * (NULL: success). */
static void expect_load(const char *label, const char *path, const char *needle) {
    char err[512] = "";
    qc_model_t *m = NULL;
    qc_model_opts_t mo = {.n_threads = 1, .dtype = "bf16"};
    qc_status s = qc_model_load(path, &mo, &m, err, sizeof err);
    if (!needle) CHECK(s == QC_OK && m, "%s: loads: %s", label, err);
    else CHECK(s != QC_OK && !m && strstr(err, needle), "%s: refused naming %s: %d '%s'", label, needle, s, err);
    qc_model_free(m);
}

/* Sets the UINT32 value of GGUF key `key` in g[0..n) (a copy of a file);
 * returns the old value, or -1 when the key is not a u32 there. */
static long gguf_set_u32(unsigned char *g, size_t n, const char *key, uint32_t v) {
    size_t kl = strlen(key);
    for (size_t i = 8; i + kl + 8 <= n; i++) {
        uint64_t len;
        memcpy(&len, g + i - 8, 8);
        uint32_t type;
        if (len != kl || memcmp(g + i, key, kl)) continue;
        memcpy(&type, g + i + kl, 4);
        if (type != 4) return -1;
        uint32_t old;
        memcpy(&old, g + i + kl + 4, 4);
        memcpy(g + i + kl + 4, &v, 4);
        return old;
    }
    return -1;
}

/* Files whose values each pass alone but cannot be right: more layers of
 * weights than the count says (the extra ones were ignored), an end token
 * outside the vocabulary or none at all (generation never stops), a
 * context of 1, a model_type of another family, a tokenizer without
 * <|im_start|> under the ChatML care prompts. Made at test time from a
 * mkmodel folder and a copy of the fixture GGUF. */
static void test_implausible(void) {
    char err[512] = "";
    char *dir = mk_subdir("implausible"), *tokdir = path2(fixtures(), "tokenizer");
    CHECK(qc_mkmodel("tiny-qwen2", dir, tokdir, 0, err, sizeof err) == QC_OK, "mkmodel: %s", err);
    char *cfg = path2(dir, "config.json"), *gen = path2(dir, "generation_config.json"),
         *tj = path2(dir, "tokenizer.json");
    expect_load("tiny-qwen2 as made", dir, NULL);
    CHECK(edit_file(cfg, "\"num_hidden_layers\": 2,", "\"num_hidden_layers\": 1,") == 1, "config edited");
    expect_load("num_hidden_layers 1 of 2", dir, "num_hidden_layers");
    edit_file(cfg, "\"num_hidden_layers\": 1,", "\"num_hidden_layers\": 2,");
    CHECK(edit_file(cfg, "\"max_position_embeddings\": 4096,", "\"max_position_embeddings\": 1,") == 1, "config edited");
    expect_load("max_position_embeddings 1", dir, "max_position_embeddings");
    edit_file(cfg, "\"max_position_embeddings\": 1,", "\"max_position_embeddings\": 4096,");
    CHECK(edit_file(cfg, "\"model_type\": \"qwen2\"", "\"model_type\": \"llama\"") == 1, "config edited");
    expect_load("model_type llama", dir, "model_type");
    edit_file(cfg, "\"model_type\": \"llama\"", "\"model_type\": \"qwen2\"");
    expect_load("model_type qwen2", dir, NULL);
    CHECK(edit_file(gen, "151645,", "999999,") == 1, "generation_config edited");
    expect_load("generation eos 999999", dir, "eos_token_id");
    edit_file(gen, "999999,", "151645,");

    /* no end token at all: eos_token_id empty in both files, the tokenizer's
     * end tokens renamed */
    edit_file(cfg, "\"eos_token_id\": 151645,", "\"eos_token_id\": [],");
    edit_file(gen, "\"eos_token_id\": [\n    151645,\n    151643\n  ],", "\"eos_token_id\": [],");
    CHECK(edit_file(tj, "<|im_end|>", "<|im_fin|>") > 0 && edit_file(tj, "<|endoftext|>", "<|endoftxt|>") > 0,
          "tokenizer edited");
    expect_load("no end token", dir, "no end-of-sequence token");
    edit_file(tj, "<|im_fin|>", "<|im_end|>");
    edit_file(tj, "<|endoftxt|>", "<|endoftext|>");
    expect_load("end tokens back in the tokenizer", dir, NULL);

    /* ChatML without <|im_start|>: the model loads, the care pipeline refuses */
    CHECK(edit_file(tj, "<|im_start|>", "<|im_begin|>") > 0, "tokenizer edited");
    qc_model_t *m = NULL;
    qc_model_opts_t mo = {.n_threads = 1, .dtype = "bf16"};
    CHECK(qc_model_load(dir, &mo, &m, err, sizeof err) == QC_OK, "loads without <|im_start|>: %s", err);
    qc_care_t *care = NULL;
    qc_status s = m ? qc_care_new(m, NULL, &care, err, sizeof err) : QC_ERR_ARG;
    CHECK(s == QC_ERR_UNSUPPORTED && !care && strstr(err, "<|im_start|>"), "care refuses a tokenizer without "
          "<|im_start|>: %d '%s'", s, err);
    qc_care_free(care);
    qc_model_free(m);

    /* GGUF metadata: block_count below the layers present, context_length
     * 1, an eos_token_id outside the vocabulary */
    char *src = path2(fixtures(), "models/tiny-qwen3.q8_0.gguf"), *dst = path2(dir, "m.gguf");
    size_t n = 0;
    unsigned char *g = (unsigned char *)test_slurp(src, &n);
    CHECK(g != NULL, "read %s", src);
    static const struct { const char *key, *needle; uint32_t v; } cases[] = {
        {"qwen3.block_count", "block_count", 1},
        {"qwen3.context_length", "context_length", 1},
        {"tokenizer.ggml.eos_token_id", "eos_token_id", 999999},
    };
    for (size_t i = 0; g && i < sizeof cases / sizeof *cases; i++) {
        long old = gguf_set_u32(g, n, cases[i].key, cases[i].v);
        CHECK(old >= 0, "%s is a u32 in the fixture", cases[i].key);
        write_bytes(dst, g, n);
        expect_load(cases[i].key, dst, cases[i].needle);
        if (old >= 0) gguf_set_u32(g, n, cases[i].key, (uint32_t)old);
    }
    if (g) write_bytes(dst, g, n), expect_load("the fixture GGUF as it is", dst, NULL);
    /* F16 weights kept in place are reported as f16 (they were "bf16");
     * --dtype bf16 converts them (it no longer means "as stored") */
    char *f16 = path2(fixtures(), "models/tiny-qwen3.f16.gguf");
    static const char *const f16_as[][2] = {{"auto", "f16"}, {"bf16", "bf16"}};
    for (size_t i = 0; i < sizeof f16_as / sizeof f16_as[0]; i++) {
        qc_model_opts_t fo = {.n_threads = 1, .dtype = f16_as[i][0]};
        m = NULL;
        CHECK(qc_model_load(f16, &fo, &m, err, sizeof err) == QC_OK && !strcmp(qc_model_dtype(m), f16_as[i][1]),
              "an F16 GGUF with --dtype %s reports %s, want %s: %s", f16_as[i][0], m ? qc_model_dtype(m) : "(none)",
              f16_as[i][1], err);
        qc_model_free(m);
    }
    free(f16);
    free(g);
    free(src);
    free(dst);
    free(cfg);
    free(gen);
    free(tj);
    free(tokdir);
    free(dir);
}

static void test_mkmodel_args(void) {
    char err[512] = "";
    const char *const *names = qc_mkmodel_presets();
    int n = 0;
    while (names[n]) n++;
    CHECK(n == 7, "7 presets, got %d", n);
    char *dir = path2(g_tmp, "never");
    qc_status s = qc_mkmodel("tiny-llama", dir, NULL, 0, err, sizeof err);
    CHECK(s == QC_ERR_ARG && strstr(err, "tiny-llama") && strstr(err, "tiny-qwen2"),
          "unknown preset: %s", err);
    CHECK(access(dir, F_OK) != 0, "nothing written for an unknown preset");
    char *tok = path2(g_tmp, "no-tokenizer-here");
    s = qc_mkmodel("tiny-qwen3", dir, tok, 0, err, sizeof err);
    CHECK(s == QC_ERR_IO && strstr(err, "tokenizer.json"), "missing tokenizer: %s", err);
    char *stp = path2(dir, "model.safetensors");
    CHECK(access(stp, F_OK) != 0, "no model.safetensors after a failure");
    rm_tree(dir);
    free(stp);
    free(tok);
    free(dir);
}

/* A conversion worker whose row buffer is not allocated (malloc failing)
 * leaves its rows unwritten: the load must fail with QC_ERR_NOMEM, not
 * give a model with garbage weights. The fixture Q8_0 GGUF loaded as F32
 * converts every matrix; with 1 and 2 threads (the failing worker being
 * the caller's or another one). */
static void test_convert_nomem(void) {
    char *path = path2(fixtures(), "models/tiny-qwen3.q8_0.gguf"), err[512];
    for (int threads = 1; threads <= 2; threads++) {
        qc_model_opts_t mo = {.n_threads = threads, .dtype = "f32"};
        for (int k = 1; k <= 2; k++) { /* the first buffer asked for, then the second */
            qc_model_t *m = NULL;
            err[0] = 0;
            qc_weights_test_fail_rows(k);
            qc_status s = qc_model_load(path, &mo, &m, err, sizeof err);
            qc_weights_test_fail_rows(0);
            CHECK(s == QC_ERR_NOMEM && !m && strstr(err, "out of memory"),
                  "%d threads, row buffer %d not allocated: status %d, '%s'", threads, k, s, err);
            qc_model_free(m);
        }
        qc_model_t *m = NULL;
        CHECK(qc_model_load(path, &mo, &m, err, sizeof err) == QC_OK && m, "%d threads: loads as f32: %s", threads, err);
        qc_model_free(m);
    }
    free(path);
}

int main(void) {
    const char *base = getenv("QC_BUILD");
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp-test-loader-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmp)) {
        perror(g_tmp);
        return 1;
    }
    test_config();
    test_bad_safetensors();
    test_bind();
    test_mkmodel_args();
    test_implausible();
    test_convert_nomem();
    test_generator("tiny-qwen2");
    test_generator("tiny-qwen3");
    const char *bench = getenv("QC_TEST_BENCH");
    if (bench && !strcmp(bench, "1")) test_generator("bench-qwen1.5-0.5b");
    rm_tree(g_tmp);
    return test_done("test_loader");
}
