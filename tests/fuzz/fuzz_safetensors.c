/* fuzz_safetensors.c — the safetensors reader: one file, or a sharded set.
 *
 * Input: byte 0 picks the mode. Even: the rest is one .safetensors file
 * (qc_st_open_file). Odd: the rest, up to its first NUL byte, is
 * model.safetensors.index.json, and what follows the NUL is the shard
 * "fuzz.safetensors"; the index's folder also holds two fixed valid shards
 * (shard-a.safetensors: "a.weight" F32 [2, 3] and "b" BF16 [4];
 * shard-b.safetensors: "c" F16 [1, 2, 2]) that an index may name
 * (qc_st_open_dir).
 *
 * Every tensor handed out must be findable by its name, have a byte size
 * that matches its dtype and shape, and data that can be read in full. */
#include "fuzz.h"

#include "engine/engine.h"

#include <sys/stat.h>

static char dir[64];

/* Writes a whole file; aborts on failure. */
static void put_file(const char *name, const void *p, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f && fwrite(p, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

/* A safetensors file: header JSON `hdr`, then n data bytes of value 0x3c. */
static void put_shard(const char *name, const char *hdr, size_t n) {
    size_t h = strlen(hdr), total = 8 + h + n;
    unsigned char *b = malloc(total);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    memset(b + 8 + h, 0x3c, n);
    put_file(name, b, total);
    free(b);
}

static void cleanup(void) {
    static const char *const names[] = {"shard-a.safetensors", "shard-b.safetensors", "fuzz.safetensors",
                                        "model.safetensors.index.json"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(dir, sizeof dir, "/dev/shm/qcare-fuzz-st-%d", (int)getpid());
    if (mkdir(dir, 0700) != 0) snprintf(dir, sizeof dir, "/tmp/qcare-fuzz-st-%d", (int)getpid()), mkdir(dir, 0700);
    put_shard("shard-a.safetensors",
              "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
              "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]}}",
              32);
    put_shard("shard-b.safetensors",
              "{\"__metadata__\":{\"format\":\"pt\"},\"c\":{\"dtype\":\"F16\",\"shape\":[1,2,2],"
              "\"data_offsets\":[0,8]}}",
              8);
    atexit(cleanup);
    return 0;
}

static void check_set(const qc_st_t *st) {
    size_t n = qc_st_count(st);
    for (size_t i = 0; i < n; i++) {
        const qc_st_tensor_t *t = qc_st_at(st, i);
        FUZZ_CHECK(t && t->name && qc_st_find(st, t->name) == t, "tensor %zu not found by its name", i);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= 4, "tensor %s: %d dims", t->name, t->ndim);
        uint64_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_CHECK(t->shape[d] >= 0, "tensor %s: negative dimension", t->name);
            count *= (uint64_t)t->shape[d];
        }
        FUZZ_CHECK(count * qc_dtype_size(t->dtype) == t->nbytes, "tensor %s: %zu bytes for %llu %s values", t->name,
                   t->nbytes, (unsigned long long)count, qc_dtype_name(t->dtype));
        FUZZ_CHECK(!t->nbytes || (uintptr_t)t->data % qc_dtype_size(t->dtype) == 0, "tensor %s: misaligned",
                   t->name);
        fuzz_touch(t->data, t->nbytes);
    }
    FUZZ_CHECK(qc_st_at(st, n) == NULL, "qc_st_at past the end");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    char err[512] = "";
    qc_st_t *st = (qc_st_t *)1;
    qc_status s;
    if (!(data[0] & 1)) {
        s = qc_st_open_file(fuzz_file(0, data + 1, size - 1), &st, err, sizeof err);
    } else {
        const uint8_t *nul = memchr(data + 1, 0, size - 1);
        size_t ni = nul ? (size_t)(nul - (data + 1)) : size - 1;
        put_file("model.safetensors.index.json", data + 1, ni);
        put_file("fuzz.safetensors", nul ? nul + 1 : data, nul ? size - 2 - ni : 0);
        s = qc_st_open_dir(dir, &st, err, sizeof err);
    }
    if (s == QC_OK) check_set(st);
    else FUZZ_CHECK(st == NULL && err[0], "a failed open left a set or no message");
    qc_st_close(st == (qc_st_t *)1 ? NULL : st);
    return 0;
}
