/* gguf.c — the GGUF reader: maps a file, checks its whole header against
 * the file's real size before anything uses it, and turns a Qwen GGUF
 * (llama.cpp's names and metadata) into a qcare model.
 *
 * Every count, length, dimension and offset in the header is untrusted: each
 * is checked against the bytes that remain before it is used to allocate or
 * to loop, with overflow-safe arithmetic, so a hostile file costs at most a
 * walk over its own bytes and memory proportional to its entries. */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/quants.h"

#define MAX_NESTING 8     /* arrays inside arrays */
#define MAX_ALIGNMENT 65536
#define MIN_KV_BYTES 14   /* key length 8, key >= 1, type 4, value >= 1 */
#define MIN_TENSOR_BYTES 33 /* name length 8, name >= 1, n_dims 4, ne 8, type 4, offset 8 */

/* Bounds no real model reaches (as config.c's for config.json); they keep
 * every product of two of them far inside int64. */
#define MAX_LAYERS 1024
#define MAX_DIM (1 << 20)
#define MAX_VOCAB (1 << 24)
#define MAX_CTX (1 << 24)
/* Fewer positions than a ChatML turn with a short reply: such a context
 * length is a broken file, not a model. */
#define MIN_CTX 32

/* ==== types ==== */

size_t qc_gguf_type_size(uint32_t type) {
    switch (type) {
    case QC_GGUF_UINT8: case QC_GGUF_INT8: case QC_GGUF_BOOL: return 1;
    case QC_GGUF_UINT16: case QC_GGUF_INT16: return 2;
    case QC_GGUF_UINT32: case QC_GGUF_INT32: case QC_GGUF_FLOAT32: return 4;
    case QC_GGUF_UINT64: case QC_GGUF_INT64: case QC_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *qc_gguf_type_name(uint32_t type) {
    static const char *names[QC_GGUF_TYPE_COUNT] = {"uint8", "int8", "uint16", "int16", "uint32",
                                                    "int32", "float32", "bool", "string", "array",
                                                    "uint64", "int64", "float64"};
    return type < QC_GGUF_TYPE_COUNT ? names[type] : "?";
}

int qc_ggml_type_info(uint32_t ggml_type, qc_dtype_t *dtype, int64_t *block_elems, size_t *block_bytes) {
    static const struct { uint32_t id; qc_dtype_t dt; int64_t blck; size_t bytes; } types[] = {
        {QC_GGML_F32, QC_DTYPE_F32, 1, 4},
        {QC_GGML_F16, QC_DTYPE_F16, 1, 2},
        {QC_GGML_BF16, QC_DTYPE_BF16, 1, 2},
        {QC_GGML_Q8_0, QC_DTYPE_Q8_0, QC_QK, sizeof(qc_block_q8_0)},
        {QC_GGML_Q4_0, QC_DTYPE_Q4_0, QC_QK, sizeof(qc_block_q4_0)},
        {QC_GGML_Q4_1, QC_DTYPE_Q4_1, QC_QK, sizeof(qc_block_q4_1)},
        {QC_GGML_Q5_0, QC_DTYPE_Q5_0, QC_QK, sizeof(qc_block_q5_0)},
        {QC_GGML_Q5_1, QC_DTYPE_Q5_1, QC_QK, sizeof(qc_block_q5_1)},
        {QC_GGML_Q2_K, QC_DTYPE_Q2_K, QC_QK_K, sizeof(qc_block_q2_K)},
        {QC_GGML_Q3_K, QC_DTYPE_Q3_K, QC_QK_K, sizeof(qc_block_q3_K)},
        {QC_GGML_Q4_K, QC_DTYPE_Q4_K, QC_QK_K, sizeof(qc_block_q4_K)},
        {QC_GGML_Q5_K, QC_DTYPE_Q5_K, QC_QK_K, sizeof(qc_block_q5_K)},
        {QC_GGML_Q6_K, QC_DTYPE_Q6_K, QC_QK_K, sizeof(qc_block_q6_K)},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].id == ggml_type) {
            if (dtype) *dtype = types[i].dt;
            if (block_elems) *block_elems = types[i].blck;
            if (block_bytes) *block_bytes = types[i].bytes;
            return 1;
        }
    return 0;
}

uint32_t qc_ggml_type_of(qc_dtype_t t) {
    switch (t) {
    case QC_DTYPE_F32: return QC_GGML_F32;
    case QC_DTYPE_F16: return QC_GGML_F16;
    case QC_DTYPE_BF16: return QC_GGML_BF16;
    case QC_DTYPE_Q8_0: return QC_GGML_Q8_0;
    case QC_DTYPE_Q4_0: return QC_GGML_Q4_0;
    case QC_DTYPE_Q4_K: return QC_GGML_Q4_K;
    case QC_DTYPE_Q6_K: return QC_GGML_Q6_K;
    case QC_DTYPE_Q4_1: return QC_GGML_Q4_1;
    case QC_DTYPE_Q5_0: return QC_GGML_Q5_0;
    case QC_DTYPE_Q5_1: return QC_GGML_Q5_1;
    case QC_DTYPE_Q2_K: return QC_GGML_Q2_K;
    case QC_DTYPE_Q3_K: return QC_GGML_Q3_K;
    case QC_DTYPE_Q5_K: return QC_GGML_Q5_K;
    case QC_DTYPE_Q8_K: return QC_GGML_Q8_K;
    case QC_DTYPE_Q8_1: return QC_GGML_Q8_1;
    }
    return QC_GGML_F32;
}

const char *qc_ggml_type_name(uint32_t t) {
    /* ggml.c's type_traits names; 4, 5, 31..33 were removed from ggml */
    static const char *names[] = {
        "f32", "f16", "q4_0", "q4_1", NULL, NULL, "q5_0", "q5_1", "q8_0", "q8_1",
        "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s",
        "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m",
        "bf16", NULL, NULL, NULL, "tq1_0", "tq2_0", NULL, NULL, NULL, "mxfp4"};
    return t < sizeof names / sizeof names[0] ? names[t] : NULL;
}

/* ==== reading the header ==== */

typedef struct {
    const unsigned char *p;
    size_t size, pos;
    const char *path;
    char *err;
    size_t err_size;
} rd_t;

/* "PATH: message" into the reader's err; returns st. */
__attribute__((format(printf, 3, 4)))
static qc_status rerr(rd_t *r, qc_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    qc_vseterr_at(r->err, r->err_size, st, r->path, fmt, ap);
    va_end(ap);
    return st;
}

static size_t left(const rd_t *r) { return r->size - r->pos; }

/* Reads n (<= 8) little-endian bytes as an unsigned integer; 0 when the
 * file ends first (then *ok is cleared). */
static uint64_t rd_uint(rd_t *r, size_t n, int *ok) {
    if (left(r) < n) {
        *ok = 0;
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)r->p[r->pos + i] << (8 * i);
    r->pos += n;
    return v;
}

static uint64_t load_le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static qc_status truncated(rd_t *r, const char *what) {
    return rerr(r, QC_ERR_FORMAT, "file ends inside %s (at byte %zu of %zu)", what, r->pos, r->size);
}

/* Skips one value of `type` (nested to `depth`), checking it lies inside
 * the file. `what` names it for messages. */
static qc_status skip_value(rd_t *r, uint32_t type, int depth, const char *what) {
    int ok = 1;
    size_t es = qc_gguf_type_size(type);
    if (es) {
        if (left(r) < es) return truncated(r, what);
        r->pos += es;
        return QC_OK;
    }
    if (type == QC_GGUF_STRING) {
        uint64_t n = rd_uint(r, 8, &ok);
        if (!ok) return truncated(r, what);
        if (n > left(r))
            return rerr(r, QC_ERR_FORMAT, "%s: string of %llu bytes runs past the end of the file (%zu bytes left)",
                        what, (unsigned long long)n, left(r));
        r->pos += (size_t)n;
        return QC_OK;
    }
    if (type != QC_GGUF_ARRAY) return rerr(r, QC_ERR_FORMAT, "%s: unknown value type %u", what, type);
    if (depth >= MAX_NESTING)
        return rerr(r, QC_ERR_FORMAT, "%s: arrays nested deeper than %d", what, MAX_NESTING);
    uint32_t at = (uint32_t)rd_uint(r, 4, &ok);
    uint64_t n = rd_uint(r, 8, &ok);
    if (!ok) return truncated(r, what);
    if (at >= QC_GGUF_TYPE_COUNT)
        return rerr(r, QC_ERR_FORMAT, "%s: unknown array element type %u", what, at);
    /* the smallest an element can be: its fixed size, a string's length
     * field, an array's type and count */
    size_t min = qc_gguf_type_size(at) ? qc_gguf_type_size(at) : at == QC_GGUF_STRING ? 8 : 12;
    if (n > left(r) / min)
        return rerr(r, QC_ERR_FORMAT, "%s: array of %llu %s elements cannot fit in the %zu bytes left", what,
                    (unsigned long long)n, qc_gguf_type_name(at), left(r));
    if (qc_gguf_type_size(at)) {
        r->pos += (size_t)n * min;
        return QC_OK;
    }
    for (uint64_t i = 0; i < n; i++) {
        qc_status st = skip_value(r, at, depth + 1, what);
        if (st) return st;
    }
    return QC_OK;
}

/* Reads a u64-length string: non-empty, at most max bytes, without NUL
 * bytes. *s points into the mapping. */
static qc_status rd_name(rd_t *r, size_t max, const char **s, size_t *len, const char *what) {
    int ok = 1;
    uint64_t n = rd_uint(r, 8, &ok);
    if (!ok) return truncated(r, what);
    if (n == 0) return rerr(r, QC_ERR_FORMAT, "%s is empty", what);
    if (n > left(r))
        return rerr(r, QC_ERR_FORMAT, "%s: length %llu runs past the end of the file (%zu bytes left)", what,
                    (unsigned long long)n, left(r));
    if (n > max) return rerr(r, QC_ERR_FORMAT, "%s: length %llu exceeds %zu bytes", what, (unsigned long long)n, max);
    *s = (const char *)r->p + r->pos;
    *len = (size_t)n;
    if (memchr(*s, 0, *len)) return rerr(r, QC_ERR_FORMAT, "%s contains a NUL byte", what);
    r->pos += (size_t)n;
    return QC_OK;
}

/* ==== lookup tables ==== */

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint32_t *hash_new(size_t n, size_t *mask) {
    size_t cap = 16;
    while (cap < 2 * n + 16) cap *= 2;
    uint32_t *h = malloc(cap * sizeof *h);
    if (h) memset(h, 0xff, cap * sizeof *h);
    *mask = cap - 1;
    return h;
}

/* Inserts index i under name(i); returns the index already there under the
 * same name, or UINT32_MAX. */
static uint32_t hash_insert(uint32_t *h, size_t mask, const char *key, uint32_t i, const char *(*name)(const qc_gguf_t *, uint32_t),
                            const qc_gguf_t *g) {
    for (size_t k = hash_str(key) & mask;; k = (k + 1) & mask) {
        if (h[k] == UINT32_MAX) {
            h[k] = i;
            return UINT32_MAX;
        }
        if (!strcmp(name(g, h[k]), key)) return h[k];
    }
}

static uint32_t hash_find(const uint32_t *h, size_t mask, const char *key, const char *(*name)(const qc_gguf_t *, uint32_t),
                          const qc_gguf_t *g) {
    if (!h) return UINT32_MAX;
    for (size_t k = hash_str(key) & mask;; k = (k + 1) & mask) {
        if (h[k] == UINT32_MAX || !strcmp(name(g, h[k]), key)) return h[k];
    }
}

static const char *kv_name(const qc_gguf_t *g, uint32_t i) { return g->kv[i].key; }
static const char *t_name(const qc_gguf_t *g, uint32_t i) { return g->tensors[i].name; }

const qc_gguf_kv_t *qc_gguf_find(const qc_gguf_t *g, const char *key) {
    uint32_t i = g && key ? hash_find(g->kv_hash, g->kv_mask, key, kv_name, g) : UINT32_MAX;
    return i == UINT32_MAX ? NULL : &g->kv[i];
}

const qc_gguf_tensor_t *qc_gguf_tensor(const qc_gguf_t *g, const char *name) {
    uint32_t i = g && name ? hash_find(g->t_hash, g->t_mask, name, t_name, g) : UINT32_MAX;
    return i == UINT32_MAX ? NULL : &g->tensors[i];
}

/* ==== opening ==== */

/* Appends s[0..n) and a NUL to the names arena; *off gets its offset. */
static int arena_add(char **a, size_t *len, size_t *cap, const char *s, size_t n, size_t *off) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1) c *= 2;
        char *p = realloc(*a, c);
        if (!p) return -1;
        *a = p;
        *cap = c;
    }
    *off = *len;
    memcpy(*a + *len, s, n);
    (*a)[*len + n] = 0;
    *len += n + 1;
    return 0;
}

/* Reads the name of entry i (a key or a tensor name) into the names arena
 * (*off: its offset there) and names the entry in `what` for later
 * messages: "metadata 'KEY'" / "tensor 'NAME'". */
static qc_status rd_entry_name(rd_t *r, const char *kind, size_t i, size_t max, char **arena, size_t *alen,
                               size_t *acap, size_t *off, char *what, size_t what_cap) {
    const char *name = NULL;
    size_t n = 0;
    snprintf(what, what_cap, "the name of %s entry %zu", kind, i);
    qc_status st = rd_name(r, max, &name, &n, what);
    if (st) return st;
    if (arena_add(arena, alen, acap, name, n, off)) return rerr(r, QC_ERR_NOMEM, "out of memory");
    snprintf(what, what_cap, "%s '%.*s'", kind, (int)(n > 60 ? 60 : n), name);
    return QC_OK;
}

/* Parses the metadata section. Key pointers hold arena offsets until
 * fix_names. */
static qc_status parse_kvs(rd_t *r, qc_gguf_t *g, char **arena, size_t *alen, size_t *acap) {
    char what[96];
    int ok = 1;
    for (size_t i = 0; i < g->n_kv; i++) {
        qc_gguf_kv_t *kv = &g->kv[i];
        size_t off;
        qc_status st = rd_entry_name(r, "metadata", i, QC_GGUF_MAX_KEY, arena, alen, acap, &off, what, sizeof what);
        if (st) return st;
        kv->key = (const char *)(uintptr_t)off;
        kv->type = (uint32_t)rd_uint(r, 4, &ok);
        if (!ok) return truncated(r, what);
        if (kv->type >= QC_GGUF_TYPE_COUNT) return rerr(r, QC_ERR_FORMAT, "%s: unknown value type %u", what, kv->type);
        kv->n = 1;
        size_t start = r->pos;
        if (kv->type == QC_GGUF_ARRAY) {
            /* type and count are checked again by skip_value */
            kv->arr_type = (uint32_t)load_le(r->p + r->pos, left(r) >= 4 ? 4 : 0);
            kv->n = left(r) >= 12 ? load_le(r->p + r->pos + 4, 8) : 0;
        }
        if ((st = skip_value(r, kv->type, 0, what))) return st;
        kv->data = r->p + start + (kv->type == QC_GGUF_ARRAY ? 12 : 0);
        kv->nbytes = r->pos - start - (kv->type == QC_GGUF_ARRAY ? 12 : 0);
    }
    return QC_OK;
}

/* Parses the tensor infos (names as arena offsets until fix_names). */
static qc_status parse_tensors(rd_t *r, qc_gguf_t *g, char **arena, size_t *alen, size_t *acap) {
    char what[96];
    int ok = 1;
    for (size_t i = 0; i < g->n_tensors; i++) {
        qc_gguf_tensor_t *t = &g->tensors[i];
        size_t off;
        qc_status st = rd_entry_name(r, "tensor", i, QC_GGUF_MAX_NAME, arena, alen, acap, &off, what, sizeof what);
        if (st) return st;
        t->name = (const char *)(uintptr_t)off;
        uint32_t nd = (uint32_t)rd_uint(r, 4, &ok);
        if (!ok) return truncated(r, what);
        if (nd < 1 || nd > QC_GGUF_MAX_DIMS)
            return rerr(r, QC_ERR_FORMAT, "%s has %u dimensions (1 to %d are allowed)", what, nd, QC_GGUF_MAX_DIMS);
        t->n_dims = (int)nd;
        t->n_elems = 1;
        for (int d = 0; d < QC_GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d >= t->n_dims) continue;
            uint64_t ne = rd_uint(r, 8, &ok);
            if (!ok) return truncated(r, what);
            if (ne == 0) return rerr(r, QC_ERR_FORMAT, "%s: dimension %d is 0", what, d);
            if (ne > (uint64_t)INT64_MAX / (uint64_t)t->n_elems)
                return rerr(r, QC_ERR_FORMAT, "%s: the element count overflows 64 bits (dimension %d is %llu)", what,
                            d, (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
            t->n_elems *= (int64_t)ne;
        }
        t->ggml_type = (uint32_t)rd_uint(r, 4, &ok);
        t->offset = rd_uint(r, 8, &ok);
        if (!ok) return truncated(r, what);
        int64_t blck;
        size_t bb;
        if (!qc_ggml_type_info(t->ggml_type, &t->dtype, &blck, &bb)) {
            const char *tn = qc_ggml_type_name(t->ggml_type);
            if (tn)
                return rerr(r, QC_ERR_UNSUPPORTED,
                            "%s has type %s, which qcare does not read (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, "
                            "Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)",
                            what, tn);
            return rerr(r, QC_ERR_FORMAT, "%s has unknown tensor type %u", what, t->ggml_type);
        }
        if (t->ne[0] % blck)
            return rerr(r, QC_ERR_FORMAT, "%s: ne[0] = %lld is not a multiple of the %s block size %lld", what,
                        (long long)t->ne[0], qc_ggml_type_name(t->ggml_type), (long long)blck);
        uint64_t blocks = (uint64_t)(t->n_elems / blck);
        if (blocks > (SIZE_MAX / 2) / bb)
            return rerr(r, QC_ERR_FORMAT, "%s: the byte size (%llu blocks of %zu bytes) overflows", what,
                        (unsigned long long)blocks, bb);
        t->nbytes = (size_t)blocks * bb;
    }
    return QC_OK;
}

/* Turns the arena offsets of keys and names into pointers. */
static void fix_names(qc_gguf_t *g) {
    for (size_t i = 0; i < g->n_kv; i++) g->kv[i].key = g->names + (uintptr_t)g->kv[i].key;
    for (size_t i = 0; i < g->n_tensors; i++) g->tensors[i].name = g->names + (uintptr_t)g->tensors[i].name;
}

/* Checks general.alignment, the tensor offsets and sizes, and the names'
 * uniqueness (the tables are built on the way). */
static qc_status check_layout(rd_t *r, qc_gguf_t *g) {
    if (!(g->kv_hash = hash_new(g->n_kv, &g->kv_mask)) || !(g->t_hash = hash_new(g->n_tensors, &g->t_mask)))
        return rerr(r, QC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_kv; i++)
        if (hash_insert(g->kv_hash, g->kv_mask, g->kv[i].key, (uint32_t)i, kv_name, g) != UINT32_MAX)
            return rerr(r, QC_ERR_FORMAT, "metadata key '%.80s' appears twice", g->kv[i].key);
    for (size_t i = 0; i < g->n_tensors; i++)
        if (hash_insert(g->t_hash, g->t_mask, g->tensors[i].name, (uint32_t)i, t_name, g) != UINT32_MAX)
            return rerr(r, QC_ERR_FORMAT, "tensor name '%s' appears twice", g->tensors[i].name);

    g->alignment = QC_GGUF_DEFAULT_ALIGNMENT;
    const qc_gguf_kv_t *al = qc_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != QC_GGUF_UINT32)
            return rerr(r, QC_ERR_FORMAT, "general.alignment has type %s, expected uint32", qc_gguf_type_name(al->type));
        uint32_t a = (uint32_t)load_le(al->data, 4);
        if (a == 0 || (a & (a - 1)) || a > MAX_ALIGNMENT)
            return rerr(r, QC_ERR_FORMAT, "general.alignment = %u is not a power of two in [1, %d]", a, MAX_ALIGNMENT);
        g->alignment = a;
    }
    /* r->pos <= size, and size is far below SIZE_MAX - alignment */
    g->data_offset = (r->pos + g->alignment - 1) / g->alignment * g->alignment;
    for (size_t i = 0; i < g->n_tensors; i++) {
        qc_gguf_tensor_t *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return rerr(r, QC_ERR_FORMAT, "tensor '%s': offset %llu is not a multiple of the alignment %u", t->name,
                        (unsigned long long)t->offset, g->alignment);
        size_t room = g->data_offset <= r->size ? r->size - g->data_offset : 0;
        if (t->offset > room || t->nbytes > room - (size_t)t->offset) {
            unsigned long long b = (unsigned long long)g->data_offset + t->offset;
            return rerr(r, QC_ERR_FORMAT, "tensor '%s': data [%llu, %llu) extends past the end of the file (size %zu)",
                        t->name, b, b + t->nbytes, r->size);
        }
        t->data = r->p + g->data_offset + t->offset;
    }
    return QC_OK;
}

/* Parses the mapped file r->p[0..size) into g. */
static qc_status parse(rd_t *r, qc_gguf_t *g) {
    int ok = 1;
    if (r->size < 4 || memcmp(r->p, QC_GGUF_MAGIC, 4) != 0) {
        unsigned char m[4] = {0};
        memcpy(m, r->p, r->size < 4 ? r->size : 4);
        return rerr(r, QC_ERR_FORMAT, "not a GGUF file (starts with %02x %02x %02x %02x, expected \"GGUF\")", m[0], m[1],
                    m[2], m[3]);
    }
    r->pos = 4;
    g->version = (uint32_t)rd_uint(r, 4, &ok);
    if (!ok) return truncated(r, "the header");
    if (g->version == 1) return rerr(r, QC_ERR_UNSUPPORTED, "GGUF version 1 is not supported (only 2 and 3)");
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return rerr(r, QC_ERR_UNSUPPORTED, "big-endian GGUF files are not supported");
    if (g->version != 2 && g->version != 3)
        return rerr(r, QC_ERR_UNSUPPORTED, "unknown GGUF version %u (only 2 and 3 are read)", g->version);
    uint64_t nt = rd_uint(r, 8, &ok), nkv = rd_uint(r, 8, &ok);
    if (!ok) return truncated(r, "the header");
    /* every entry takes at least MIN_*_BYTES of what follows */
    if (nt > left(r) / MIN_TENSOR_BYTES || nt >= UINT32_MAX)
        return rerr(r, QC_ERR_FORMAT, "tensor count %llu is impossible in a file of %zu bytes",
                    (unsigned long long)nt, r->size);
    if (nkv > (left(r) - nt * MIN_TENSOR_BYTES) / MIN_KV_BYTES || nkv >= UINT32_MAX)
        return rerr(r, QC_ERR_FORMAT, "metadata count %llu is impossible in a file of %zu bytes",
                    (unsigned long long)nkv, r->size);
    g->n_tensors = (size_t)nt;
    g->n_kv = (size_t)nkv;
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return rerr(r, QC_ERR_NOMEM, "out of memory");
    size_t alen = 0, acap = 0;
    qc_status st = parse_kvs(r, g, &g->names, &alen, &acap);
    if (!st) st = parse_tensors(r, g, &g->names, &alen, &acap);
    if (st) {
        /* keys and names are still offsets: forget them before close */
        g->n_kv = g->n_tensors = 0;
        return st;
    }
    if (!g->names && !(g->names = malloc(1))) return rerr(r, QC_ERR_NOMEM, "out of memory");
    fix_names(g);
    return check_layout(r, g);
}

qc_status qc_gguf_open(const char *path, qc_gguf_t **out, char *err, size_t err_size) {
    if (!path || !out) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_gguf_open: NULL argument");
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO must not hang (fstat below refuses it) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return qc_seterr(err, err_size, QC_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: empty file", path);
    }
    qc_gguf_t *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        close(fd);
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", path);
    }
    g->size = (size_t)sb.st_size;
    void *map = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        qc_status st = qc_seterr(err, err_size, QC_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        qc_gguf_close(g);
        return st;
    }
    g->map = map;
    rd_t r = {.p = g->map, .size = g->size, .path = path, .err = err, .err_size = err_size};
    qc_status st = parse(&r, g);
    if (st) {
        qc_gguf_close(g);
        return st;
    }
    *out = g;
    return QC_OK;
}

void qc_gguf_close(qc_gguf_t *g) {
    if (!g) return;
    if (g->map) munmap((void *)g->map, g->size);
    free(g->kv);
    free(g->tensors);
    free(g->names);
    free(g->kv_hash);
    free(g->t_hash);
    free(g->path);
    free(g);
}

/* ==== typed getters ==== */

static qc_status wrong_type(const qc_gguf_t *g, const qc_gguf_kv_t *kv, const char *want, char *err, size_t err_size) {
    return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: metadata '%s' has type %s, expected %s", g->path, kv->key,
                     qc_gguf_type_name(kv->type), want);
}

/* A scalar integer (or bool) value at p, as int64; 0 with *ok cleared for
 * other types or a uint64 beyond INT64_MAX. */
static int64_t load_int(const unsigned char *p, uint32_t type, int *ok) {
    size_t n = qc_gguf_type_size(type);
    uint64_t u = n ? load_le(p, n) : 0;
    switch (type) {
    case QC_GGUF_UINT8: case QC_GGUF_UINT16: case QC_GGUF_UINT32: case QC_GGUF_BOOL: return (int64_t)u;
    case QC_GGUF_INT8: return (int8_t)u;
    case QC_GGUF_INT16: return (int16_t)u;
    case QC_GGUF_INT32: return (int32_t)u;
    case QC_GGUF_INT64: return (int64_t)u;
    case QC_GGUF_UINT64:
        if (u <= (uint64_t)INT64_MAX) return (int64_t)u;
        break;
    default: break;
    }
    *ok = 0;
    return 0;
}

qc_status qc_gguf_get_int(const qc_gguf_t *g, const char *key, int64_t *out, char *err, size_t err_size) {
    const qc_gguf_kv_t *kv = qc_gguf_find(g, key);
    if (!kv) return QC_ERR_ARG;
    int ok = 1;
    int64_t v = load_int(kv->data, kv->type, &ok);
    if (!ok) return wrong_type(g, kv, "an integer (within int64)", err, err_size);
    *out = v;
    return QC_OK;
}

qc_status qc_gguf_get_float(const qc_gguf_t *g, const char *key, double *out, char *err, size_t err_size) {
    const qc_gguf_kv_t *kv = qc_gguf_find(g, key);
    if (!kv) return QC_ERR_ARG;
    if (kv->type == QC_GGUF_FLOAT32) {
        uint32_t u = (uint32_t)load_le(kv->data, 4);
        float f;
        memcpy(&f, &u, 4);
        *out = f;
    } else if (kv->type == QC_GGUF_FLOAT64) {
        uint64_t u = load_le(kv->data, 8);
        memcpy(out, &u, 8);
    } else {
        return wrong_type(g, kv, "float32", err, err_size);
    }
    return QC_OK;
}

qc_status qc_gguf_get_str(const qc_gguf_t *g, const char *key, const char **s, size_t *len, char *err,
                          size_t err_size) {
    const qc_gguf_kv_t *kv = qc_gguf_find(g, key);
    if (!kv) return QC_ERR_ARG;
    if (kv->type != QC_GGUF_STRING) return wrong_type(g, kv, "string", err, err_size);
    *len = (size_t)load_le(kv->data, 8);
    *s = (const char *)kv->data + 8;
    return QC_OK;
}

qc_status qc_gguf_get_array(const qc_gguf_t *g, const char *key, uint32_t elem_type, const qc_gguf_kv_t **out,
                            char *err, size_t err_size) {
    const qc_gguf_kv_t *kv = qc_gguf_find(g, key);
    if (!kv) return QC_ERR_ARG;
    if (kv->type != QC_GGUF_ARRAY || kv->arr_type != elem_type) {
        char want[48];
        snprintf(want, sizeof want, "an array of %s", qc_gguf_type_name(elem_type));
        if (kv->type == QC_GGUF_ARRAY)
            return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: metadata '%s' is an array of %s, expected %s", g->path,
                             kv->key, qc_gguf_type_name(kv->arr_type), want);
        return wrong_type(g, kv, want, err, err_size);
    }
    *out = kv;
    return QC_OK;
}

const char *qc_gguf_arr_str(const qc_gguf_kv_t *kv, size_t *pos, size_t *len) {
    *len = (size_t)load_le(kv->data + *pos, 8);
    const char *s = (const char *)kv->data + *pos + 8;
    *pos += 8 + *len;
    return s;
}

int64_t qc_gguf_arr_int(const qc_gguf_kv_t *kv, uint64_t i) {
    size_t n = qc_gguf_type_size(kv->arr_type);
    int ok = 1;
    int64_t v = load_int(kv->data + i * n, kv->arr_type, &ok);
    return ok ? v : (int64_t)load_le(kv->data + i * n, n);
}

/* ==== tensor names ==== */

int qc_gguf_tensor_name(const char *hf, char *out, size_t cap) {
    static const char *const global[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    static const char *const layer[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.q_norm.weight", "attn_q_norm.weight"},
        {"self_attn.k_norm.weight", "attn_k_norm.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    int k = -1;
    for (size_t i = 0; i < sizeof global / sizeof global[0]; i++)
        if (!strcmp(hf, global[i][0])) k = snprintf(out, cap, "%s", global[i][1]);
    const char *pre = "model.layers.";
    if (k < 0 && !strncmp(hf, pre, strlen(pre))) {
        char *end;
        errno = 0;
        unsigned long l = strtoul(hf + strlen(pre), &end, 10);
        if (end != hf + strlen(pre) && *end == '.' && !errno && l < 100000)
            for (size_t i = 0; i < sizeof layer / sizeof layer[0]; i++)
                if (!strcmp(end + 1, layer[i][0])) k = snprintf(out, cap, "blk.%lu.%s", l, layer[i][1]);
    }
    return k >= 0 && (size_t)k < cap ? 0 : -1;
}

/* ==== a Qwen model from a GGUF file ==== */

/* qc_tensor_find_fn over a GGUF file: the tensor under its llama.cpp name,
 * its shape reversed into Hugging Face order ([ne1, ne0] = [rows, cols]). */
static const qc_st_tensor_t *gguf_find(const void *src, const char *hf_name, qc_st_tensor_t *buf, char *label,
                                       size_t label_cap) {
    if (qc_gguf_tensor_name(hf_name, label, label_cap)) return NULL;
    const qc_gguf_tensor_t *t = qc_gguf_tensor(src, label);
    if (!t) return NULL;
    buf->name = t->name;
    buf->dtype = t->dtype;
    buf->ndim = t->n_dims;
    for (int d = 0; d < t->n_dims; d++) buf->shape[d] = t->ne[t->n_dims - 1 - d];
    buf->data = t->data;
    buf->nbytes = t->nbytes;
    return buf;
}

/* Reads integer metadata `{arch}.{suffix}` into *out within [lo, hi];
 * absent: def, or an error when required. */
static qc_status meta_int(const qc_gguf_t *g, const char *arch, const char *suffix, int required, int64_t def,
                          int64_t lo, int64_t hi, int *out, char *err, size_t err_size) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v = def;
    qc_status st = qc_gguf_get_int(g, key, &v, err, err_size);
    if (st == QC_ERR_ARG && required)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: metadata '%s' is missing", g->path, key);
    if (st && st != QC_ERR_ARG) return st;
    if (v < lo || v > hi)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: metadata '%s' = %lld is out of range [%lld, %lld]",
                         g->path, key, (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return QC_OK;
}

static qc_status meta_float(const qc_gguf_t *g, const char *arch, const char *suffix, double def, double lo,
                            double hi, float *out, char *err, size_t err_size) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double v = def;
    qc_status st = qc_gguf_get_float(g, key, &v, err, err_size);
    if (st && st != QC_ERR_ARG) return st;
    if (!(v >= lo && v <= hi))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: metadata '%s' = %g is out of range [%g, %g]", g->path,
                         key, v, lo, hi);
    *out = (float)v;
    return QC_OK;
}

/* The configuration from the {arch}.* metadata and the tensor table. */
static qc_status gguf_config(const qc_gguf_t *g, qc_config_t *c, char *err, size_t err_size) {
    const char *a;
    size_t alen;
    qc_status st = qc_gguf_get_str(g, "general.architecture", &a, &alen, err, err_size);
    if (st == QC_ERR_ARG)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: metadata 'general.architecture' is missing", g->path);
    if (st) return st;
    char arch[16];
    if (alen == 5 && !memcmp(a, "qwen2", 5)) c->arch = QC_ARCH_QWEN2;
    else if (alen == 5 && !memcmp(a, "qwen3", 5)) c->arch = QC_ARCH_QWEN3;
    else
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: architecture '%.*s' is not supported (only qwen2 and qwen3)", g->path,
                         (int)(alen > 60 ? 60 : alen), a);
    memcpy(arch, a, 5);
    arch[5] = 0;

#define TRY(call)                \
    do {                         \
        if ((st = (call))) return st; \
    } while (0)
    TRY(meta_int(g, arch, "embedding_length", 1, 0, 1, MAX_DIM, &c->n_embd, err, err_size));
    TRY(meta_int(g, arch, "feed_forward_length", 1, 0, 1, MAX_DIM, &c->n_ff, err, err_size));
    TRY(meta_int(g, arch, "block_count", 1, 0, 1, MAX_LAYERS, &c->n_layer, err, err_size));
    TRY(meta_int(g, arch, "attention.head_count", 1, 0, 1, MAX_DIM, &c->n_head, err, err_size));
    TRY(meta_int(g, arch, "attention.head_count_kv", 0, c->n_head, 1, MAX_DIM, &c->n_head_kv, err, err_size));
    TRY(meta_int(g, arch, "context_length", 1, 0, MIN_CTX, MAX_CTX, &c->n_ctx_train, err, err_size));
    /* head_dim: key_length, needed when heads do not divide the embedding */
    int even = c->n_embd % c->n_head == 0;
    TRY(meta_int(g, arch, "attention.key_length", !even, even ? c->n_embd / c->n_head : 0, 1, MAX_DIM,
                 &c->head_dim, err, err_size));
    int vlen;
    TRY(meta_int(g, arch, "attention.value_length", 0, c->head_dim, 1, MAX_DIM, &vlen, err, err_size));
    if (vlen != c->head_dim)
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: attention.value_length %d differs from key_length %d", g->path, vlen, c->head_dim);
    TRY(meta_float(g, arch, "rope.freq_base", 10000.0, 1e-3, 1e12, &c->rope_theta, err, err_size));
    TRY(meta_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-6, 1e-30, 1.0, &c->rms_eps, err, err_size));
    TRY(qc_config_check(g->path, c, err, err_size));
#undef TRY

    const qc_gguf_tensor_t *emb = qc_gguf_tensor(g, "token_embd.weight");
    if (!emb) return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: tensor token_embd.weight is missing", g->path);
    if (emb->n_dims != 2 || emb->ne[1] > MAX_VOCAB)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: tensor token_embd.weight is not a [%d, n_vocab] matrix",
                         g->path, c->n_embd);
    c->n_vocab = (int)emb->ne[1];
    c->tie_embeddings = !qc_gguf_tensor(g, "output.weight");
    c->qkv_bias = qc_gguf_tensor(g, "blk.0.attn_q.bias") != NULL;
    c->qk_norm = c->arch == QC_ARCH_QWEN3;

    int64_t id;
    c->bos_id = -1;
    if (!qc_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &id, err, err_size) && id >= 0 && id < c->n_vocab)
        c->bos_id = (int)id;
    if (!qc_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &id, err, err_size)) {
        /* an end token outside the vocabulary never comes: generation would not stop there */
        if (id < 0 || id >= c->n_vocab)
            return qc_seterr(err, err_size, QC_ERR_FORMAT,
                             "%s: metadata 'tokenizer.ggml.eos_token_id' is %lld, outside the vocabulary [0, %d)",
                             g->path, (long long)id, c->n_vocab);
        c->eos_ids[c->n_eos++] = (int)id;
    }
    return QC_OK;
}

qc_status qc_gguf_model_init(qc_model_t *m, const char *path, char *err, size_t err_size) {
    qc_status st = qc_gguf_open(path, &m->gguf, err, err_size);
    if (st) return st;
    const qc_gguf_t *g = m->gguf;
    if ((st = gguf_config(g, &m->cfg, err, err_size))) return st;
    qc_genconfig_defaults(&m->gen);
    /* The forward pass reads F32 vectors in place: their data must be
     * 4-byte aligned, which an alignment that is a multiple of 4 gives
     * (the mapping itself starts on a page). */
    if (g->alignment % 4)
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: general.alignment %u: qcare needs tensor data aligned to 4 bytes or more", path,
                         g->alignment);
    char msg[256];
    if ((st = qc_weights_bind_from(m, gguf_find, g, msg, sizeof msg)))
        return qc_seterr(err, err_size, st, "%s: %s", path, msg);
    return qc_tokenizer_from_gguf(g, &m->tok, err, err_size);
}
