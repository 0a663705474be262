/* tokenizer.c — Hugging Face byte-level BPE tokenizer (tokenizer.json), as
 * used by the Qwen family.
 *
 * Encoding follows the Hugging Face `tokenizers` pipeline:
 *   1. added tokens are split out of the raw text (leftmost, longest match;
 *      special ones only when asked to), those with normalized=false first;
 *   2. the remaining text is NFC-normalized (when the normalizer says so) and
 *      the added tokens with normalized=true are split out of it;
 *   3. each remaining segment is cut into pieces by the pre-tokenizer's
 *      regexes (Split, behavior Isolated: matches and the gaps between them
 *      are pieces);
 *   4. each piece's bytes become the single-byte tokens of the GPT-2
 *      bytes_to_unicode table and are merged by BPE, lowest merge rank first,
 *      leftmost on ties, with a heap over a linked list (O(n log n), since
 *      one piece may be a 100k-letter word).
 * The tables are built by one set of functions from either source: a
 * tokenizer.json (qc_tokenizer_load) or a GGUF file's tokenizer.ggml.*
 * metadata (qc_tokenizer_from_gguf).
 * Decoding undoes the byte mapping and replaces invalid UTF-8 the way Rust's
 * String::from_utf8_lossy does (one U+FFFD per maximal subpart).
 *
 * The tokenizer is read-only after loading; encode keeps all its scratch
 * state on the stack or in per-call allocations, so threads may share it. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/engine.h"
#include "engine/gguf.h"

#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define TOK_MAX_ID (1 << 24)   /* ids beyond this are rejected as malformed */
#define TOK_MAX_STAGES 8       /* regex Split steps in one pre-tokenizer */
#define TOK_NONE UINT32_MAX    /* offset of an id that names no token */
#define JIT_STACK_MAX (64u << 20) /* bytes; the largest JIT stack tried */

/* Qwen's pre-tokenizer regex (the Split step of its tokenizer.json), used
 * for GGUF files whose tokenizer.ggml.pre is "qwen2". */
static const char QWEN2_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* GPT-2's ByteLevel regex, used when ByteLevel.use_regex is true. */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ==== small growable buffers ==== */

typedef struct {
    char *p;
    size_t n, cap;
} buf_t;

typedef struct {
    int32_t *p;
    size_t n, cap;
} ivec_t;

/* Makes room for `extra` more bytes plus a NUL. 0 on success, -1 on OOM or
 * size overflow. */
static int buf_reserve(buf_t *b, size_t extra) {
    if (extra > SIZE_MAX / 2 - b->n) return -1;
    size_t need = b->n + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_add(buf_t *b, const void *s, size_t n) {
    if (buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static int ivec_push(ivec_t *v, int32_t x) {
    if (v->n == v->cap) {
        if (v->cap > SIZE_MAX / 2 / sizeof(int32_t)) return -1;
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->p, cap * sizeof *p);
        if (!p) return -1;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return 0;
}

/* ==== UTF-8 ==== */

/* Length of the well-formed UTF-8 sequence at s[0..n) (Unicode Table 3-7),
 * or 0 when it is not one: *sub then says how many bytes form the maximal
 * subpart to replace by one U+FFFD (>= 1), and *trunc whether those bytes
 * are a valid prefix cut short by the end of the input. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *sub, int *trunc) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
    *trunc = 0;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *sub = 1;
        return 0;
    }
    size_t k = 1;
    for (; k < need; k++) {
        if (k >= n) {
            *sub = k;
            *trunc = 1;
            return 0;
        }
        unsigned b = s[k];
        unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) break;
    }
    if (k == need) return need;
    *sub = k;
    return 0;
}

static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0, sub;
    int trunc;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t k = utf8_seq(s + i, n - i, &sub, &trunc);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* Decodes the (valid) character at s; *len gets its byte length. */
static uint32_t utf8_cp(const unsigned char *s, size_t *len) {
    unsigned c = s[0];
    if (c < 0x80) { *len = 1; return c; }
    if (c < 0xE0) { *len = 2; return (c & 0x1F) << 6 | (s[1] & 0x3F); }
    if (c < 0xF0) { *len = 3; return (c & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F); }
    *len = 4;
    return (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (s[2] & 0x3F) << 6 |
           (s[3] & 0x3F);
}

static size_t utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unicode White_Space (Rust's char::is_whitespace), for lstrip/rstrip. */
static int is_space_cp(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Letters and numbers (Rust's char::is_alphanumeric, near enough), for
 * single_word added tokens. */
static int is_word_cp(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

/* Converts bytes into text, replacing each maximal subpart of an invalid
 * sequence by U+FFFD like Rust's String::from_utf8_lossy. The input is the
 * concatenation a[0..na) b[0..nb) (so the streaming decoder needs no copy).
 * With final == 0 an incomplete but so far valid sequence at the end is not
 * converted: *used says how many input bytes were consumed. Writes at most
 * cap bytes to out (no NUL); returns the length written, or -1 when out is
 * too small. */
static long utf8_lossy(const unsigned char *a, size_t na, const unsigned char *b, size_t nb,
                       int final, char *out, size_t cap, size_t *used) {
    size_t n = na + nb, i = 0, o = 0;
    unsigned char w[4];
    while (i < n) {
        /* a window of up to 4 bytes across the two parts */
        size_t m = 0;
        for (; m < 4 && i + m < n; m++) w[m] = i + m < na ? a[i + m] : b[i + m - na];
        size_t sub;
        int trunc;
        size_t k = utf8_seq(w, m, &sub, &trunc);
        if (k) {
            if (o + k > cap) return -1;
            memcpy(out + o, w, k);
            o += k;
            i += k;
            continue;
        }
        if (trunc && !final) break;
        if (o + 3 > cap) return -1;
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += sub;
    }
    if (used) *used = i;
    return (long)o;
}

/* ==== hash tables ==== */

typedef struct {
    uint64_t key; /* left id << 32 | right id; UINT64_MAX: empty */
    int32_t rank;
    int32_t new_id;
} merge_slot_t;

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    unsigned char special, lstrip, rstrip, single_word, normalized;
} added_t;

struct qc_tokenizer {
    int32_t n_tokens; /* highest id + 1 */

    /* per id: bytes the token stands for (byte mapping undone; an added
     * token's content), in the arena `raw`, NUL after each */
    uint32_t *raw_off, *raw_len; /* [n_tokens]; TOK_NONE: no token */
    char *raw;

    /* per id: the vocabulary's byte-level string, in the arena `bl` */
    uint32_t *bl_off, *bl_len; /* [n_tokens]; TOK_NONE: not in model.vocab */
    char *bl;
    int32_t *vhash; /* open addressing over ids, -1 empty */
    size_t vhash_mask;

    merge_slot_t *mhash;
    size_t mhash_mask;
    size_t n_merges;

    uint32_t b2u[256];    /* GPT-2 bytes_to_unicode */
    int32_t byte_id[256]; /* the single-byte token of each byte, -1 if none */
    int32_t unk_id;       /* -1 if none */
    int ignore_merges;

    added_t *added; /* sorted by first byte, then longest first */
    size_t n_added;
    uint16_t first_lo[256], first_n[256]; /* range of `added` per first byte */

    int nfc;
    pcre2_code *re[TOK_MAX_STAGES];
    int n_re;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t k) {
    k *= 0x9E3779B97F4A7C15ull;
    return k ^ (k >> 31);
}

/* The vocabulary id of byte-level string s[0..n), or -1. */
static int32_t vocab_find(const qc_tokenizer_t *t, const char *s, size_t n) {
    if (!t->vhash) return -1;
    for (size_t i = hash_bytes(s, n) & t->vhash_mask;; i = (i + 1) & t->vhash_mask) {
        int32_t id = t->vhash[i];
        if (id < 0) return -1;
        if (t->bl_len[id] == n && memcmp(t->bl + t->bl_off[id], s, n) == 0) return id;
    }
}

static const merge_slot_t *merge_find(const qc_tokenizer_t *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = hash_pair(key) & t->mhash_mask;; i = (i + 1) & t->mhash_mask) {
        const merge_slot_t *s = &t->mhash[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

/* ==== GPT-2 byte mapping ==== */

/* bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68
 * to U+0100 upwards, in byte order. */
static void byte_map(uint32_t b2u[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        b2u[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
    }
}

/* ==== loading ==== */

typedef struct {
    const char *path;
    char *err;
    size_t err_size;
    qc_tokenizer_t *t;
    buf_t raw, bl, tmp;
    uint32_t b2u[256];
    int u2b[324]; /* inverse of b2u over U+0000..U+0143, -1 elsewhere */
    const char *vocab_what, *merges_what; /* where the vocabulary / merges come from, for messages */
} loader_t;

/* Writes "PATH: message" into the loader's err and returns st. */
__attribute__((format(printf, 3, 4)))
static qc_status lerr(loader_t *L, qc_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    qc_vseterr_at(L->err, L->err_size, st, L->path, fmt, ap);
    va_end(ap);
    return st;
}

static qc_status oom(loader_t *L) { return lerr(L, QC_ERR_NOMEM, "out of memory"); }

/* The id of a JSON integer in [0, TOK_MAX_ID), or -1. */
static int32_t json_id(const json_t *v) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x >= 0 && x < TOK_MAX_ID ? (int32_t)x : -1;
}

/* A boolean member of an added token (absent: def); -1 for a wrong type. */
static int json_flag(const json_t *obj, const char *key, int def) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return def;
    if (!json_is_boolean(v)) return -1;
    return json_is_true(v);
}

/* Appends s to an arena; *off gets its offset. The arena may not exceed 4 GiB
 * (offsets are 32-bit). */
static int arena_add(buf_t *a, const char *s, size_t n, uint32_t *off) {
    if (a->n + n + 1 >= TOK_NONE) return -1;
    *off = (uint32_t)a->n;
    if (buf_add(a, s, n)) return -1;
    a->n++; /* keep the NUL buf_add wrote */
    return 0;
}

/* Undoes the byte mapping of a vocabulary string into L->tmp. A string with
 * a character outside the mapping keeps its UTF-8 bytes, as Hugging Face's
 * ByteLevel decoder does. */
static int unmap_bytes(loader_t *L, const char *s, size_t n) {
    L->tmp.n = 0;
    if (buf_reserve(&L->tmp, n)) return -1;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k;
        uint32_t cp = utf8_cp(u + i, &k);
        if (k > n - i || cp >= 324 || L->u2b[cp] < 0) {
            memcpy(L->tmp.p, s, n);
            L->tmp.n = n;
            return 0;
        }
        L->tmp.p[L->tmp.n++] = (char)L->u2b[cp];
        i += k;
    }
    return 0;
}

/* ==== building the tables (shared by tokenizer.json and GGUF) ==== */

/* Allocates the per-id tables of n_tokens ids and the vocabulary hash for
 * up to nv entries. */
static qc_status tables_init(loader_t *L, int32_t n_tokens, size_t nv) {
    qc_tokenizer_t *t = L->t;
    t->n_tokens = n_tokens;
    size_t n = (size_t)n_tokens;
    t->raw_off = malloc(n * sizeof(uint32_t));
    t->raw_len = calloc(n, sizeof(uint32_t));
    t->bl_off = malloc(n * sizeof(uint32_t));
    t->bl_len = calloc(n, sizeof(uint32_t));
    size_t cap = 16;
    while (cap < 2 * nv + 16) cap *= 2;
    t->vhash = malloc(cap * sizeof *t->vhash);
    if (!t->raw_off || !t->raw_len || !t->bl_off || !t->bl_len || !t->vhash) return oom(L);
    memset(t->raw_off, 0xff, n * sizeof(uint32_t));
    memset(t->bl_off, 0xff, n * sizeof(uint32_t));
    memset(t->vhash, 0xff, cap * sizeof *t->vhash);
    t->vhash_mask = cap - 1;
    return QC_OK;
}

/* Adds vocabulary entry `id` (< n_tokens) with byte-level string key. */
static qc_status vocab_add(loader_t *L, int32_t id, const char *key, size_t klen) {
    qc_tokenizer_t *t = L->t;
    if (t->bl_off[id] != TOK_NONE)
        return lerr(L, QC_ERR_FORMAT, "%s[\"%.40s\"]: id %d is used twice", L->vocab_what, key, id);
    if (arena_add(&L->bl, key, klen, &t->bl_off[id])) return oom(L);
    t->bl_len[id] = (uint32_t)klen;
    size_t i = hash_bytes(key, klen) & t->vhash_mask;
    while (t->vhash[i] >= 0) i = (i + 1) & t->vhash_mask;
    t->vhash[i] = id;
    /* vocab_find reads the arena: keep t->bl current */
    t->bl = L->bl.p;
    if (unmap_bytes(L, key, klen)) return oom(L);
    if (arena_add(&L->raw, L->tmp.p, L->tmp.n, &t->raw_off[id])) return oom(L);
    t->raw_len[id] = (uint32_t)L->tmp.n;
    return QC_OK;
}

/* After the vocabulary: the single-byte token of each byte, and the merge
 * table for nm merges. */
static qc_status vocab_done(loader_t *L, size_t nm) {
    qc_tokenizer_t *t = L->t;
    for (int b = 0; b < 256; b++) {
        char s[4];
        size_t k = utf8_put(L->b2u[b], s);
        t->byte_id[b] = vocab_find(t, s, k);
    }
    if (nm > INT32_MAX) return lerr(L, QC_ERR_FORMAT, "%s: too many merges", L->merges_what);
    size_t cap = 16;
    while (cap < 2 * nm + 16) cap *= 2;
    t->mhash = malloc(cap * sizeof *t->mhash);
    if (!t->mhash) return oom(L);
    for (size_t i = 0; i < cap; i++) t->mhash[i].key = UINT64_MAX;
    t->mhash_mask = cap - 1;
    t->n_merges = nm;
    return QC_OK;
}

/* Adds merge rank r: a[0..na) + b[0..nb), byte-level strings of the
 * vocabulary. */
static qc_status merge_add(loader_t *L, size_t r, const char *a, size_t na, const char *b, size_t nb) {
    qc_tokenizer_t *t = L->t;
    int32_t ia = vocab_find(t, a, na), ib = vocab_find(t, b, nb);
    if (ia < 0)
        return lerr(L, QC_ERR_FORMAT, "%s[%zu]: token \"%.*s\" is not in the vocabulary", L->merges_what, r,
                    (int)(na > 40 ? 40 : na), a);
    if (ib < 0)
        return lerr(L, QC_ERR_FORMAT, "%s[%zu]: token \"%.*s\" is not in the vocabulary", L->merges_what, r,
                    (int)(nb > 40 ? 40 : nb), b);
    L->tmp.n = 0;
    if (buf_add(&L->tmp, a, na) || buf_add(&L->tmp, b, nb)) return oom(L);
    int32_t inew = vocab_find(t, L->tmp.p, L->tmp.n);
    if (inew < 0)
        return lerr(L, QC_ERR_FORMAT, "%s[%zu]: merged token \"%.*s\" is not in the vocabulary", L->merges_what,
                    r, (int)(L->tmp.n > 40 ? 40 : L->tmp.n), L->tmp.p);
    /* a repeated pair takes the later rank, as a Rust HashMap collect does */
    uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
    size_t i = hash_pair(key) & t->mhash_mask;
    while (t->mhash[i].key != UINT64_MAX && t->mhash[i].key != key) i = (i + 1) & t->mhash_mask;
    t->mhash[i].key = key;
    t->mhash[i].rank = (int32_t)r;
    t->mhash[i].new_id = inew;
    return QC_OK;
}

/* A merge written "a b": Hugging Face splits on ' ' and wants exactly two
 * parts. */
static qc_status merge_add_str(loader_t *L, size_t r, const char *s, size_t n) {
    const char *sp = memchr(s, ' ', n);
    if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
        return lerr(L, QC_ERR_FORMAT, "%s[%zu]: expected \"a b\", got \"%.*s\"", L->merges_what, r,
                    (int)(n > 40 ? 40 : n), s);
    size_t na = (size_t)(sp - s);
    return merge_add(L, r, s, na, sp + 1, n - na - 1);
}

/* Room for n added tokens. */
static qc_status added_init(loader_t *L, size_t n) {
    if (n > 65535) return lerr(L, QC_ERR_UNSUPPORTED, "more than 65535 added tokens");
    if (n && !(L->t->added = calloc(n, sizeof *L->t->added))) return oom(L);
    return QC_OK;
}

/* Adds an added token (its content replaces the bytes of its id); the flags
 * mean what they mean in tokenizer.json's added_tokens. */
static qc_status added_add(loader_t *L, int32_t id, const char *content, size_t len, int special, int lstrip,
                           int rstrip, int single_word, int normalized) {
    qc_tokenizer_t *t = L->t;
    added_t *d = &t->added[t->n_added];
    if (len == 0) return lerr(L, QC_ERR_FORMAT, "added token %d: empty content", id);
    d->id = id;
    d->len = len;
    if (!(d->content = malloc(len + 1))) return oom(L);
    memcpy(d->content, content, len);
    d->content[len] = 0;
    t->n_added++;
    d->special = (unsigned char)special;
    d->lstrip = (unsigned char)lstrip;
    d->rstrip = (unsigned char)rstrip;
    d->single_word = (unsigned char)single_word;
    d->normalized = (unsigned char)normalized;
    if (arena_add(&L->raw, d->content, d->len, &t->raw_off[d->id])) return oom(L);
    t->raw_len[d->id] = (uint32_t)d->len;
    return QC_OK;
}

static int added_cmp(const void *x, const void *y) {
    const added_t *a = x, *b = y;
    unsigned char fa = (unsigned char)a->content[0], fb = (unsigned char)b->content[0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Sorts the added tokens for matching: by first byte, longest first. */
static void added_done(loader_t *L) {
    qc_tokenizer_t *t = L->t;
    if (!t->n_added) return;
    qsort(t->added, t->n_added, sizeof *t->added, added_cmp);
    for (size_t i = 0; i < t->n_added; i++) {
        unsigned char f = (unsigned char)t->added[i].content[0];
        if (t->first_n[f] == 0) t->first_lo[f] = (uint16_t)i;
        t->first_n[f]++;
    }
}

/* Starts a tokenizer: the byte mapping and its inverse. */
static qc_status loader_begin(loader_t *L) {
    if (!(L->t = calloc(1, sizeof *L->t))) return oom(L);
    L->t->unk_id = -1;
    byte_map(L->b2u);
    memcpy(L->t->b2u, L->b2u, sizeof L->t->b2u);
    for (int i = 0; i < 324; i++) L->u2b[i] = -1;
    for (int b = 0; b < 256; b++) L->u2b[L->b2u[b]] = b;
    return QC_OK;
}

/* Hands the finished tokenizer over (the arenas move into it). */
static void loader_finish(loader_t *L, qc_tokenizer_t **out) {
    L->t->raw = L->raw.p;
    L->t->bl = L->bl.p;
    L->raw.p = L->bl.p = NULL;
    free(L->tmp.p);
    *out = L->t;
}

static void loader_fail(loader_t *L) {
    if (L->t) {
        L->t->raw = NULL; /* the arenas are still in L */
        L->t->bl = NULL;
        qc_tokenizer_free(L->t);
    }
    free(L->raw.p);
    free(L->bl.p);
    free(L->tmp.p);
}

/* ==== tokenizer.json ==== */

/* Reads model.vocab and model.merges. */
static qc_status load_bpe(loader_t *L, json_t *model) {
    json_t *vocab = json_object_get(model, "vocab");
    qc_status st;
    for (void *it = json_object_iter(vocab); it; it = json_object_iter_next(vocab, it)) {
        const char *key = json_object_iter_key(it);
        int32_t id = json_id(json_object_iter_value(it));
        if (id < 0)
            return lerr(L, QC_ERR_FORMAT, "model.vocab[\"%.40s\"]: expected an integer id in [0, %d)",
                        key, TOK_MAX_ID);
        if ((st = vocab_add(L, id, key, json_object_iter_key_len(it)))) return st;
    }
    json_t *merges = json_object_get(model, "merges");
    size_t nm = json_array_size(merges);
    if ((st = vocab_done(L, nm))) return st;
    for (size_t r = 0; r < nm; r++) {
        json_t *m = json_array_get(merges, r);
        if (json_is_string(m)) {
            st = merge_add_str(L, r, json_string_value(m), json_string_length(m));
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            st = merge_add(L, r, json_string_value(a), json_string_length(a), json_string_value(b),
                           json_string_length(b));
        } else {
            return lerr(L, QC_ERR_FORMAT,
                        "model.merges[%zu]: expected a string \"a b\" or an array of two strings", r);
        }
        if (st) return st;
    }
    return QC_OK;
}

/* Finds the largest id of the vocabulary and of added_tokens, checking the
 * types on the way. */
static qc_status scan_ids(loader_t *L, json_t *vocab, json_t *added, int32_t *n_tokens) {
    int32_t top = -1;
    for (void *it = json_object_iter(vocab); it; it = json_object_iter_next(vocab, it)) {
        int32_t id = json_id(json_object_iter_value(it));
        if (id < 0)
            return lerr(L, QC_ERR_FORMAT, "model.vocab[\"%.40s\"]: expected an integer id in [0, %d)",
                        json_object_iter_key(it), TOK_MAX_ID);
        if (id > top) top = id;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *a = json_array_get(added, i);
        if (!json_is_object(a))
            return lerr(L, QC_ERR_FORMAT, "added_tokens[%zu]: expected an object", i);
        int32_t id = json_id(json_object_get(a, "id"));
        if (id < 0)
            return lerr(L, QC_ERR_FORMAT, "added_tokens[%zu].id: expected an integer in [0, %d)", i,
                        TOK_MAX_ID);
        if (id > top) top = id;
    }
    *n_tokens = top + 1;
    return QC_OK;
}

/* Reads added_tokens. */
static qc_status load_added(loader_t *L, json_t *added) {
    size_t n = json_array_size(added);
    qc_status st = added_init(L, n);
    for (size_t i = 0; !st && i < n; i++) {
        json_t *a = json_array_get(added, i);
        json_t *c = json_object_get(a, "content");
        if (!json_is_string(c) || json_string_length(c) == 0)
            return lerr(L, QC_ERR_FORMAT, "added_tokens[%zu].content: expected a non-empty string", i);
        int sp = json_flag(a, "special", 0), ls = json_flag(a, "lstrip", 0),
            rs = json_flag(a, "rstrip", 0), sw = json_flag(a, "single_word", 0),
            nz = json_flag(a, "normalized", !sp);
        if (sp < 0 || ls < 0 || rs < 0 || sw < 0 || nz < 0)
            return lerr(L, QC_ERR_FORMAT,
                        "added_tokens[%zu]: special, lstrip, rstrip, single_word and normalized must "
                        "be booleans", i);
        st = added_add(L, json_id(json_object_get(a, "id")), json_string_value(c), json_string_length(c), sp, ls,
                       rs, sw, nz);
    }
    if (!st) added_done(L);
    return st;
}

static qc_status load_normalizer(loader_t *L, json_t *nz) {
    if (!nz || json_is_null(nz)) return QC_OK;
    const char *type = json_string_value(json_object_get(nz, "type"));
    if (!type) return lerr(L, QC_ERR_FORMAT, "normalizer.type: expected a string");
    if (strcmp(type, "NFC") == 0) {
        L->t->nfc = 1;
        return QC_OK;
    }
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(nz, "normalizers");
        if (!json_is_array(list))
            return lerr(L, QC_ERR_FORMAT, "normalizer.normalizers: expected an array");
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *ty = json_string_value(json_object_get(json_array_get(list, i), "type"));
            if (!ty || strcmp(ty, "NFC") != 0)
                return lerr(L, QC_ERR_UNSUPPORTED,
                            "normalizer.normalizers[%zu].type \"%s\" is not supported (only NFC)", i,
                            ty ? ty : "?");
            L->t->nfc = 1;
        }
        return QC_OK;
    }
    return lerr(L, QC_ERR_UNSUPPORTED, "normalizer.type \"%s\" is not supported (only NFC or null)",
                type);
}

/* Unicode White_Space, the \s of Oniguruma and Rust's regex, which Hugging
 * Face uses. PCRE2's \s (UCP) also takes U+180E, which has not been
 * White_Space since Unicode 6.3. */
#define WS_RANGES "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

/* Copies a regex into out with \s and \S spelled as White_Space classes (\S
 * inside a bracket class is left as it is: it cannot be spelled there). */
static int rewrite_ws(const char *p, size_t n, buf_t *out) {
    int in_class = 0;
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[i + 1];
            const char *rep = NULL;
            if (e == 's') rep = in_class ? WS_RANGES : "[" WS_RANGES "]";
            else if (e == 'S' && !in_class) rep = "[^" WS_RANGES "]";
            else if (e == 'Q') { /* literal up to \E */
                const char *end = NULL;
                for (size_t k = i + 2; k + 1 < n; k++)
                    if (p[k] == '\\' && p[k + 1] == 'E') { end = p + k + 2; break; }
                size_t m = end ? (size_t)(end - (p + i)) : n - i;
                if (buf_add(out, p + i, m)) return -1;
                i += m - 1;
                continue;
            }
            if (rep ? buf_add(out, rep, strlen(rep)) : buf_add(out, p + i, 2)) return -1;
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            size_t k = i + 1; /* a ']' first in the class is literal */
            if (k < n && p[k] == '^') k++;
            if (k < n && p[k] == ']') k++;
            if (buf_add(out, p + i, k - i)) return -1;
            i = k - 1;
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') { /* [:alpha:] */
            const char *e = NULL;
            for (size_t k = i + 2; k + 1 < n; k++)
                if (p[k] == ':' && p[k + 1] == ']') { e = p + k + 2; break; }
            if (e) {
                if (buf_add(out, p + i, (size_t)(e - (p + i)))) return -1;
                i = (size_t)(e - p) - 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = 0;
        if (buf_add(out, &c, 1)) return -1;
    }
    return 0;
}

static qc_status add_regex(loader_t *L, const char *pat, size_t len, int literal, const char *where) {
    qc_tokenizer_t *t = L->t;
    if (t->n_re == TOK_MAX_STAGES)
        return lerr(L, QC_ERR_UNSUPPORTED, "%s: more than %d Split steps", where, TOK_MAX_STAGES);
    int ec;
    PCRE2_SIZE eo;
    uint32_t opt = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    const char *src = pat;
    size_t srclen = len;
    if (!literal) {
        if (rewrite_ws(pat, len, &L->tmp)) return oom(L);
        src = L->tmp.n ? L->tmp.p : "";
        srclen = L->tmp.n;
    }
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, srclen, opt, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        (void)eo; /* an offset into the rewritten pattern would mislead */
        return lerr(L, QC_ERR_FORMAT, "%s: regex does not compile: %s", where, (const char *)msg);
    }
    /* JIT is an optimisation: without it pcre2_match interprets */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    t->re[t->n_re++] = re;
    return QC_OK;
}

/* One step of the pre-tokenizer: Split (regex, Isolated) or ByteLevel. */
static qc_status load_pretok_step(loader_t *L, json_t *p, const char *where, int last) {
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return lerr(L, QC_ERR_FORMAT, "%s.type: expected a string", where);
    if (strcmp(type, "Split") == 0) {
        const char *beh = json_string_value(json_object_get(p, "behavior"));
        if (!beh || strcmp(beh, "Isolated") != 0)
            return lerr(L, QC_ERR_UNSUPPORTED, "%s.behavior \"%s\" is not supported (only Isolated)",
                        where, beh ? beh : "?");
        if (json_flag(p, "invert", 0) != 0)
            return lerr(L, QC_ERR_UNSUPPORTED, "%s.invert: only false is supported", where);
        json_t *pat = json_object_get(p, "pattern");
        json_t *re = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
        if (json_is_string(re))
            return add_regex(L, json_string_value(re), json_string_length(re), 0, where);
        if (json_is_string(str))
            return add_regex(L, json_string_value(str), json_string_length(str), 1, where);
        return lerr(L, QC_ERR_FORMAT, "%s.pattern: expected {\"Regex\": ...} or {\"String\": ...}",
                    where);
    }
    if (strcmp(type, "ByteLevel") == 0) {
        if (!last)
            return lerr(L, QC_ERR_UNSUPPORTED, "%s: ByteLevel must be the last pre-tokenizer", where);
        int aps = json_flag(p, "add_prefix_space", 0), ur = json_flag(p, "use_regex", 1);
        if (aps < 0 || ur < 0)
            return lerr(L, QC_ERR_FORMAT, "%s: add_prefix_space and use_regex must be booleans",
                        where);
        if (aps)
            return lerr(L, QC_ERR_UNSUPPORTED, "%s.add_prefix_space: only false is supported", where);
        if (ur) return add_regex(L, GPT2_REGEX, sizeof GPT2_REGEX - 1, 0, where);
        return QC_OK;
    }
    return lerr(L, QC_ERR_UNSUPPORTED,
                "%s.type \"%s\" is not supported (only Split and ByteLevel)", where, type);
}

static qc_status load_pretok(loader_t *L, json_t *pt) {
    if (!json_is_object(pt))
        return lerr(L, QC_ERR_UNSUPPORTED,
                    "pre_tokenizer: missing; only byte-level BPE (ByteLevel pre-tokenizer) is supported");
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (type && strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(pt, "pretokenizers");
        if (!json_is_array(list) || json_array_size(list) == 0)
            return lerr(L, QC_ERR_FORMAT, "pre_tokenizer.pretokenizers: expected a non-empty array");
        size_t n = json_array_size(list);
        const char *lt = json_string_value(json_object_get(json_array_get(list, n - 1), "type"));
        if (!lt || strcmp(lt, "ByteLevel") != 0)
            return lerr(L, QC_ERR_UNSUPPORTED,
                        "pre_tokenizer.pretokenizers: the last step must be ByteLevel");
        for (size_t i = 0; i < n; i++) {
            char where[64];
            snprintf(where, sizeof where, "pre_tokenizer.pretokenizers[%zu]", i);
            qc_status st = load_pretok_step(L, json_array_get(list, i), where, i + 1 == n);
            if (st) return st;
        }
        return QC_OK;
    }
    if (type && strcmp(type, "ByteLevel") == 0) return load_pretok_step(L, pt, "pre_tokenizer", 1);
    return lerr(L, QC_ERR_UNSUPPORTED,
                "pre_tokenizer.type \"%s\" is not supported (only ByteLevel or a Sequence ending in "
                "ByteLevel)", type ? type : "?");
}

/* Checks the model section's scalar settings. */
static qc_status check_model(loader_t *L, json_t *model) {
    if (!json_is_object(model)) return lerr(L, QC_ERR_FORMAT, "model: missing or not an object");
    json_t *ty = json_object_get(model, "type");
    if (ty && !json_is_string(ty)) return lerr(L, QC_ERR_FORMAT, "model.type: expected a string");
    if (ty && strcmp(json_string_value(ty), "BPE") != 0)
        return lerr(L, QC_ERR_UNSUPPORTED, "model.type \"%s\" is not supported (only BPE)",
                    json_string_value(ty));
    if (!json_is_object(json_object_get(model, "vocab")))
        return lerr(L, QC_ERR_FORMAT, "model.vocab: missing or not an object");
    if (!json_is_array(json_object_get(model, "merges")))
        return lerr(L, QC_ERR_FORMAT, "model.merges: missing or not an array");
    json_t *d = json_object_get(model, "dropout");
    if (d && !json_is_null(d) && !(json_is_number(d) && json_number_value(d) == 0))
        return lerr(L, QC_ERR_UNSUPPORTED, "model.dropout: only null is supported");
    static const char *empty_keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(model, empty_keys[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return lerr(L, QC_ERR_UNSUPPORTED, "model.%s: only \"\" or null is supported",
                        empty_keys[i]);
    }
    if (json_flag(model, "byte_fallback", 0) != 0)
        return lerr(L, QC_ERR_UNSUPPORTED, "model.byte_fallback: only false is supported");
    int im = json_flag(model, "ignore_merges", 0);
    if (im < 0) return lerr(L, QC_ERR_FORMAT, "model.ignore_merges: expected a boolean");
    L->t->ignore_merges = im;
    return QC_OK;
}

/* Parses the file with jansson, checks every section it relies on (model,
 * added_tokens, normalizer, pre_tokenizer, decoder) before building the
 * tables; the JSON tree is freed before returning. */
qc_status qc_tokenizer_load(const char *path, qc_tokenizer_t **out, char *err, size_t err_size) {
    loader_t L = {.path = path ? path : "(null)", .err = err, .err_size = err_size,
                  .vocab_what = "model.vocab", .merges_what = "model.merges"};
    json_t *root = NULL;
    char *text = NULL;
    qc_status st;
    if (err && err_size) err[0] = 0;
    if (!out || !path) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_tokenizer_load: NULL argument");
    *out = NULL;

    size_t len;
    text = qc_read_file(path, &len, err, err_size);
    if (!text) return QC_ERR_IO;
    json_error_t je;
    root = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    free(text);
    text = NULL;
    if (!root) {
        st = lerr(&L, QC_ERR_FORMAT, "not valid JSON (line %d, column %d): %s", je.line, je.column,
                  je.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        st = lerr(&L, QC_ERR_FORMAT, "expected a JSON object at the top level");
        goto fail;
    }

    if ((st = loader_begin(&L))) goto fail;
    qc_tokenizer_t *t = L.t;

    json_t *model = json_object_get(root, "model");
    if ((st = check_model(&L, model))) goto fail;
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_null(added) && !json_is_array(added)) {
        st = lerr(&L, QC_ERR_FORMAT, "added_tokens: expected an array");
        goto fail;
    }
    json_t *dec = json_object_get(root, "decoder");
    if (dec && !json_is_null(dec)) {
        const char *ty = json_string_value(json_object_get(dec, "type"));
        if (!ty || strcmp(ty, "ByteLevel") != 0) {
            st = lerr(&L, QC_ERR_UNSUPPORTED, "decoder.type \"%s\" is not supported (only ByteLevel)",
                      ty ? ty : "?");
            goto fail;
        }
    }
    if ((st = load_normalizer(&L, json_object_get(root, "normalizer")))) goto fail;
    if ((st = load_pretok(&L, json_object_get(root, "pre_tokenizer")))) goto fail;

    int32_t n_tokens = 0;
    if ((st = scan_ids(&L, json_object_get(model, "vocab"), added, &n_tokens))) goto fail;
    if (n_tokens == 0) {
        st = lerr(&L, QC_ERR_FORMAT, "model.vocab: empty");
        goto fail;
    }
    if ((st = tables_init(&L, n_tokens, json_object_size(json_object_get(model, "vocab"))))) goto fail;

    if ((st = load_bpe(&L, model))) goto fail;
    if ((st = load_added(&L, added))) goto fail;

    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) {
        t->unk_id = vocab_find(t, json_string_value(unk), json_string_length(unk));
        for (size_t i = 0; t->unk_id < 0 && i < t->n_added; i++)
            if (strcmp(t->added[i].content, json_string_value(unk)) == 0) t->unk_id = t->added[i].id;
    }

    loader_finish(&L, out);
    json_decref(root);
    return QC_OK;

fail:
    loader_fail(&L);
    json_decref(root);
    return st;
}

void qc_tokenizer_free(qc_tokenizer_t *t) {
    if (!t) return;
    free(t->raw_off);
    free(t->raw_len);
    free(t->raw);
    free(t->bl_off);
    free(t->bl_len);
    free(t->bl);
    free(t->vhash);
    free(t->mhash);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    free(t);
}

/* ==== GGUF metadata ==== */

/* llama.cpp's token types (tokenizer.ggml.token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* A string metadata value that must be present, into s/n. */
static qc_status gguf_need_str(loader_t *L, const qc_gguf_t *g, const char *key, const char **s, size_t *n) {
    qc_status st = qc_gguf_get_str(g, key, s, n, L->err, L->err_size);
    if (st == QC_ERR_ARG) return lerr(L, QC_ERR_FORMAT, "metadata '%s' is missing (no tokenizer in this file?)", key);
    return st;
}

static int str_is(const char *s, size_t n, const char *lit) { return n == strlen(lit) && !memcmp(s, lit, n); }

qc_status qc_tokenizer_from_gguf(const qc_gguf_t *g, qc_tokenizer_t **out, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!g || !out) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_tokenizer_from_gguf: NULL argument");
    *out = NULL;
    loader_t L = {.path = g->path, .err = err, .err_size = err_size, .vocab_what = "tokenizer.ggml.tokens",
                  .merges_what = "tokenizer.ggml.merges"};
    const char *s;
    size_t n;
    const qc_gguf_kv_t *tokens = NULL, *types = NULL, *merges = NULL;
    qc_status st;
    if ((st = gguf_need_str(&L, g, "tokenizer.ggml.model", &s, &n))) return st;
    if (!str_is(s, n, "gpt2"))
        return lerr(&L, QC_ERR_UNSUPPORTED, "tokenizer.ggml.model '%.*s' is not supported (only gpt2, byte-level BPE)",
                    (int)(n > 40 ? 40 : n), s);
    if ((st = gguf_need_str(&L, g, "tokenizer.ggml.pre", &s, &n))) return st;
    if (!str_is(s, n, "qwen2"))
        return lerr(&L, QC_ERR_UNSUPPORTED, "tokenizer.ggml.pre '%.*s' is not supported (only qwen2)",
                    (int)(n > 40 ? 40 : n), s);
    if ((st = qc_gguf_get_array(g, "tokenizer.ggml.tokens", QC_GGUF_STRING, &tokens, err, err_size)) ||
        (st = qc_gguf_get_array(g, "tokenizer.ggml.merges", QC_GGUF_STRING, &merges, err, err_size)))
        return st == QC_ERR_ARG ? lerr(&L, QC_ERR_FORMAT, "metadata '%s' is missing",
                                       tokens ? "tokenizer.ggml.merges" : "tokenizer.ggml.tokens")
                                : st;
    st = qc_gguf_get_array(g, "tokenizer.ggml.token_type", QC_GGUF_INT32, &types, err, err_size);
    if (st && st != QC_ERR_ARG) return st;
    if (tokens->n == 0 || tokens->n > TOK_MAX_ID)
        return lerr(&L, QC_ERR_FORMAT, "tokenizer.ggml.tokens: %llu tokens (1 to %d are read)",
                    (unsigned long long)tokens->n, TOK_MAX_ID);
    if (types && types->n != tokens->n)
        return lerr(&L, QC_ERR_FORMAT, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
                    (unsigned long long)types->n, (unsigned long long)tokens->n);

    /* First pass: the types, how many of each, the highest id in use. */
    int32_t n_tokens = 0;
    size_t n_vocab = 0, n_added = 0;
    for (int32_t i = 0; i < (int32_t)tokens->n; i++) {
        int64_t ty = types ? qc_gguf_arr_int(types, (uint64_t)i) : TT_NORMAL;
        if (ty < TT_NORMAL || ty > TT_BYTE)
            return lerr(&L, QC_ERR_FORMAT, "tokenizer.ggml.token_type[%d] = %lld is not a token type (1 to 6)", i,
                        (long long)ty);
        if (ty == TT_UNUSED) continue;
        n_tokens = i + 1;
        if (ty == TT_CONTROL || ty == TT_USER_DEFINED) n_added++;
        else n_vocab++;
    }
    if ((st = loader_begin(&L))) goto fail;
    /* pre "qwen2": the Qwen regex, after the NFC normalizer, as Qwen's
     * tokenizer.json says */
    L.t->nfc = 1;
    if ((st = add_regex(&L, QWEN2_REGEX, sizeof QWEN2_REGEX - 1, 0, "tokenizer.ggml.pre"))) goto fail;
    if ((st = tables_init(&L, n_tokens, n_vocab)) || (st = added_init(&L, n_added))) goto fail;

    size_t pos = 0;
    for (int32_t i = 0; i < n_tokens; i++) {
        int64_t ty = types ? qc_gguf_arr_int(types, (uint64_t)i) : TT_NORMAL;
        s = qc_gguf_arr_str(tokens, &pos, &n);
        if (n >= TOK_NONE) {
            st = lerr(&L, QC_ERR_FORMAT, "tokenizer.ggml.tokens[%d]: %zu bytes", i, n);
            goto fail;
        }
        /* Control tokens are special added tokens, user-defined ones added
         * tokens matched even in plain text; both stand for their text as it
         * is (llama.cpp's converter stores them that way). */
        if (ty == TT_CONTROL || ty == TT_USER_DEFINED) st = added_add(&L, i, s, n, ty == TT_CONTROL, 0, 0, 0, 0);
        else if (ty != TT_UNUSED) st = vocab_add(&L, i, s, n);
        if (st) goto fail;
        if (ty == TT_UNKNOWN) L.t->unk_id = i;
    }
    added_done(&L);
    if ((st = vocab_done(&L, (size_t)merges->n))) goto fail;
    pos = 0;
    for (size_t r = 0; r < merges->n; r++) {
        s = qc_gguf_arr_str(merges, &pos, &n);
        if ((st = merge_add_str(&L, r, s, n))) goto fail;
    }
    loader_finish(&L, out);
    return QC_OK;
fail:
    loader_fail(&L);
    return st;
}

/* ==== encoding ==== */

/* Per-call state of one encode. */
typedef struct {
    const qc_tokenizer_t *t;
    int flags;
    ivec_t out;
    /* BPE work arrays, grown to the longest piece */
    int32_t *sym, *prv, *nxt; /* [cap] */
    uint64_t *heap;           /* [3 * cap]: rank << 32 | left symbol index */
    size_t cap;
    buf_t tmp;
    /* regex matching */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    size_t jstack_size;
} enc_t;

/* Min-heap of merge candidates keyed rank << 32 | position, so the lowest
 * rank wins and the leftmost pair breaks ties. */
static void heap_push(uint64_t *h, size_t *n, uint64_t x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= x) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

/* Removes and returns the smallest entry (the heap must not be empty). */
static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], x = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (x <= h[c]) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = x;
    return top;
}

/* Grows the BPE work arrays to hold a piece of n bytes. */
static qc_status enc_grow(enc_t *E, size_t n) {
    if (n <= E->cap) return QC_OK;
    size_t cap = E->cap ? E->cap : 64;
    while (cap < n) cap *= 2;
    int32_t *a = realloc(E->sym, cap * sizeof *a);
    if (a) E->sym = a;
    int32_t *b = realloc(E->prv, cap * sizeof *b);
    if (b) E->prv = b;
    int32_t *c = realloc(E->nxt, cap * sizeof *c);
    if (c) E->nxt = c;
    uint64_t *h = realloc(E->heap, 3 * cap * sizeof *h);
    if (h) E->heap = h;
    if (!a || !b || !c || !h) return QC_ERR_NOMEM;
    E->cap = cap;
    return QC_OK;
}

/* If merge (a, b) exists, pushes it for the pair whose left symbol is k. */
static void push_pair(enc_t *E, size_t *nh, int32_t k, int32_t a, int32_t b) {
    const merge_slot_t *m = merge_find(E->t, a, b);
    if (m) heap_push(E->heap, nh, (uint64_t)(uint32_t)m->rank << 32 | (uint32_t)k);
}

/* BPE over one pre-tokenized piece (raw bytes p[0..n)): appends its ids. */
static qc_status bpe_piece(enc_t *E, const unsigned char *p, size_t n) {
    const qc_tokenizer_t *t = E->t;
    if (n == 0) return QC_OK;
    if (n == 1 && t->byte_id[p[0]] >= 0) return ivec_push(&E->out, t->byte_id[p[0]]) ? QC_ERR_NOMEM : QC_OK;
    if (t->ignore_merges) {
        /* the whole piece, in byte-level form, may be a token */
        char s[4];
        E->tmp.n = 0;
        for (size_t i = 0; i < n; i++)
            if (buf_add(&E->tmp, s, utf8_put(t->b2u[p[i]], s))) return QC_ERR_NOMEM;
        int32_t id = vocab_find(t, E->tmp.p, E->tmp.n);
        if (id >= 0) return ivec_push(&E->out, id) ? QC_ERR_NOMEM : QC_OK;
    }
    if (enc_grow(E, n)) return QC_ERR_NOMEM;
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[p[i]];
        if (id < 0) id = t->unk_id;
        if (id < 0) continue; /* Hugging Face drops what it cannot represent */
        E->sym[m++] = id;
    }
    for (int32_t k = 0; k < m; k++) {
        E->prv[k] = k - 1;
        E->nxt[k] = k + 1 < m ? k + 1 : -1;
    }
    size_t nh = 0;
    for (int32_t k = 0; k + 1 < m; k++) push_pair(E, &nh, k, E->sym[k], E->sym[k + 1]);
    while (nh) {
        uint64_t top = heap_pop(E->heap, &nh);
        int32_t k = (int32_t)(uint32_t)top, rank = (int32_t)(top >> 32);
        if (E->sym[k] < 0) continue; /* merged into its left neighbour */
        int32_t j = E->nxt[k];
        if (j < 0) continue;
        const merge_slot_t *ms = merge_find(t, E->sym[k], E->sym[j]);
        if (!ms || ms->rank != rank) continue; /* stale: a side changed */
        E->sym[k] = ms->new_id;
        E->sym[j] = -1;
        E->nxt[k] = E->nxt[j];
        if (E->nxt[j] >= 0) E->prv[E->nxt[j]] = k;
        if (E->prv[k] >= 0) push_pair(E, &nh, E->prv[k], E->sym[E->prv[k]], E->sym[k]);
        if (E->nxt[k] >= 0) push_pair(E, &nh, k, E->sym[k], E->sym[E->nxt[k]]);
    }
    for (int32_t k = m ? 0 : -1; k >= 0; k = E->nxt[k])
        if (ivec_push(&E->out, E->sym[k])) return QC_ERR_NOMEM;
    return QC_OK;
}

/* Finds the next match of regex `re` in s[0..n) from `start`: 1 with the
 * match in *ms..*me, 0 for none, or a negative error status. A JIT stack
 * overflow is retried with larger stacks, then by the interpreter (which
 * keeps its backtracking state on the heap, not the C stack). */
static int re_next(enc_t *E, const pcre2_code *re, const unsigned char *s, size_t n, size_t start,
                   size_t *ms, size_t *me) {
    int rc = pcre2_match(re, s, n, start, PCRE2_NO_UTF_CHECK, E->md, E->mctx);
    while (rc == PCRE2_ERROR_JIT_STACKLIMIT && E->jstack_size < JIT_STACK_MAX) {
        size_t size = E->jstack_size ? E->jstack_size * 4 : (1u << 20);
        pcre2_jit_stack_free(E->jstack);
        E->jstack = pcre2_jit_stack_create(32 * 1024, size, NULL);
        E->jstack_size = size;
        if (!E->jstack) break;
        pcre2_jit_stack_assign(E->mctx, NULL, E->jstack);
        rc = pcre2_match(re, s, n, start, PCRE2_NO_UTF_CHECK, E->md, E->mctx);
    }
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_NOMEMORY)
        rc = pcre2_match(re, s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, E->md, E->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(E->md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

/* Pre-tokenizer step `stage` over s[0..n): every match of its regex and
 * every gap between matches is a piece, handed to the next step (the last
 * step hands pieces to BPE). Recursion depth is bounded by TOK_MAX_STAGES. */
static qc_status pretok(enc_t *E, int stage, const unsigned char *s, size_t n) {
    if (n == 0) return QC_OK;
    if (stage == E->t->n_re) return bpe_piece(E, s, n);
    const pcre2_code *re = E->t->re[stage];
    size_t prev = 0, pos = 0, ms, me;
    qc_status st;
    while (pos <= n) {
        int r = re_next(E, re, s, n, pos, &ms, &me);
        if (r < 0) return QC_ERR_NOMEM; /* limits exhausted: treat as resource failure */
        if (r == 0) break;
        if (ms > prev && (st = pretok(E, stage + 1, s + prev, ms - prev))) return st;
        prev = ms;
        if (me == ms) { /* empty match: no piece; step past one character */
            if (ms >= n) break;
            size_t k;
            utf8_cp(s + ms, &k);
            pos = ms + k;
            continue;
        }
        if ((st = pretok(E, stage + 1, s + ms, me - ms))) return st;
        prev = pos = me;
    }
    if (prev < n) return pretok(E, stage + 1, s + prev, n - prev);
    return QC_OK;
}

static int is_ascii(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] & 0x80) return 0;
    return 1;
}

static qc_status split_added(enc_t *E, const unsigned char *s, size_t n, int normalized_pass);

/* Text between the raw-text added tokens: NFC-normalize it, then split out
 * the normalized added tokens. */
static qc_status normalize_segment(enc_t *E, const unsigned char *s, size_t n) {
    if (n == 0) return QC_OK;
    if (!E->t->nfc || is_ascii(s, n)) return split_added(E, s, n, 1);
    utf8proc_uint8_t *norm = NULL;
    utf8proc_ssize_t k =
        utf8proc_map(s, (utf8proc_ssize_t)n, &norm, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (k < 0) {
        free(norm);
        return k == UTF8PROC_ERROR_NOMEM ? QC_ERR_NOMEM : QC_ERR_ARG;
    }
    qc_status st = split_added(E, norm, (size_t)k, 1);
    free(norm);
    return st;
}

/* Splits out of s[0..n) the added tokens whose `normalized` flag equals
 * normalized_pass (special ones only with QC_TOK_PARSE_SPECIAL): leftmost
 * match first, longest at that position. Their ids are appended; the text
 * between them goes on to normalize_segment (first pass) or pretok. */
static qc_status split_added(enc_t *E, const unsigned char *s, size_t n, int normalized_pass) {
    const qc_tokenizer_t *t = E->t;
    size_t seg = 0; /* start of the text not yet handed on */
    qc_status st;
    for (size_t i = 0; i < n; i++) {
        unsigned char f = s[i];
        if (!t->first_n[f]) continue;
        const added_t *hit = NULL;
        for (size_t k = t->first_lo[f], e = k + t->first_n[f]; k < e; k++) {
            const added_t *a = &t->added[k];
            if (a->normalized != normalized_pass) continue;
            if (a->special && !(E->flags & QC_TOK_PARSE_SPECIAL)) continue;
            if (a->len > n - i || memcmp(s + i, a->content, a->len) != 0) continue;
            hit = a; /* longest first */
            break;
        }
        if (!hit) continue;
        size_t start = i, stop = i + hit->len, cl;
        if (hit->single_word) {
            int before = 0, after = 0;
            if (start > 0) { /* the character ending at start */
                size_t b = start - 1;
                while (b > 0 && (s[b] & 0xC0) == 0x80) b--;
                before = is_word_cp(utf8_cp(s + b, &cl));
            }
            if (stop < n) after = is_word_cp(utf8_cp(s + stop, &cl));
            if (before || after) {
                i = stop - 1;
                continue;
            }
        }
        if (hit->lstrip) {
            while (start > seg) {
                size_t b = start - 1;
                while (b > seg && (s[b] & 0xC0) == 0x80) b--;
                if (!is_space_cp(utf8_cp(s + b, &cl))) break;
                start = b;
            }
        }
        if (hit->rstrip) {
            while (stop < n && is_space_cp(utf8_cp(s + stop, &cl))) stop += cl;
        }
        if (start > seg) {
            st = normalized_pass ? pretok(E, 0, s + seg, start - seg)
                                 : normalize_segment(E, s + seg, start - seg);
            if (st) return st;
        }
        if (ivec_push(&E->out, hit->id)) return QC_ERR_NOMEM;
        seg = stop;
        i = stop - 1;
    }
    if (seg < n)
        return normalized_pass ? pretok(E, 0, s + seg, n - seg) : normalize_segment(E, s + seg, n - seg);
    return QC_OK;
}

qc_status qc_tokenizer_encode(const qc_tokenizer_t *tok, const char *text, size_t len, int flags,
                              int32_t **ids, size_t *n_ids) {
    if (ids) *ids = NULL;
    if (n_ids) *n_ids = 0;
    if (!tok || !ids || !n_ids || (!text && len)) return QC_ERR_ARG;
    if (len > INT32_MAX) return QC_ERR_ARG; /* symbol indices are 32-bit */
    const unsigned char *s = (const unsigned char *)text;
    if (len && !utf8_valid(s, len)) return QC_ERR_ARG;

    enc_t E = {.t = tok, .flags = flags};
    qc_status st = QC_OK;
    if (tok->n_re) {
        E.md = pcre2_match_data_create(1, NULL);
        E.mctx = pcre2_match_context_create(NULL);
        if (!E.md || !E.mctx) { st = QC_ERR_NOMEM; goto done; }
    }
    if (len) st = split_added(&E, s, len, 0);
    if (!st && !E.out.p) { /* an empty result is still an allocation */
        E.out.p = malloc(sizeof(int32_t));
        if (!E.out.p) st = QC_ERR_NOMEM;
    }
done:
    pcre2_match_data_free(E.md);
    pcre2_match_context_free(E.mctx);
    pcre2_jit_stack_free(E.jstack);
    free(E.sym);
    free(E.prv);
    free(E.nxt);
    free(E.heap);
    free(E.tmp.p);
    if (st) {
        free(E.out.p);
        return st;
    }
    *ids = E.out.p;
    *n_ids = E.out.n;
    return QC_OK;
}

/* ==== decoding ==== */

static int known(const qc_tokenizer_t *t, int32_t id) {
    return t && id >= 0 && id < t->n_tokens && t->raw_off[id] != TOK_NONE;
}

const char *qc_tokenizer_token_bytes(const qc_tokenizer_t *tok, int32_t id, size_t *len) {
    if (!known(tok, id)) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = tok->raw_len[id];
    return tok->raw + tok->raw_off[id];
}

int32_t qc_tokenizer_n_tokens(const qc_tokenizer_t *tok) { return tok ? tok->n_tokens : 0; }

int32_t qc_tokenizer_find(const qc_tokenizer_t *tok, const char *token_text) {
    if (!tok || !token_text) return -1;
    size_t n = strlen(token_text);
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == n && memcmp(tok->added[i].content, token_text, n) == 0)
            return tok->added[i].id;
    return vocab_find(tok, token_text, n);
}

qc_status qc_tokenizer_decode(const qc_tokenizer_t *tok, const int32_t *ids, size_t n_ids,
                              char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!tok || !text || (!ids && n_ids)) return QC_ERR_ARG;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (!known(tok, ids[i])) return QC_ERR_ARG;
        total += tok->raw_len[ids[i]];
    }
    if (total > (SIZE_MAX - 1) / 3) return QC_ERR_NOMEM;
    unsigned char *bytes = malloc(total ? total : 1);
    char *out = malloc(3 * total + 1); /* each byte at worst one U+FFFD */
    if (!bytes || !out) {
        free(bytes);
        free(out);
        return QC_ERR_NOMEM;
    }
    size_t o = 0;
    for (size_t i = 0; i < n_ids; i++) {
        memcpy(bytes + o, tok->raw + tok->raw_off[ids[i]], tok->raw_len[ids[i]]);
        o += tok->raw_len[ids[i]];
    }
    long k = utf8_lossy(bytes, total, NULL, 0, 1, out, 3 * total, NULL);
    free(bytes);
    out[k] = 0;
    *text = out;
    if (len) *len = (size_t)k;
    return QC_OK;
}

/* ==== streaming decoder ==== */

void qc_detok_init(qc_detok_t *d) {
    if (d) memset(d, 0, sizeof *d);
}

/* The pending bytes and the token's are read as one stream without copying;
 * what stays unconverted is a valid but unfinished character (<= 3 bytes).
 * On failure the state is left as it was. The flush emits one U+FFFD for
 * that unfinished character, as from_utf8_lossy (and so decode) does. */
long qc_detok_push(qc_detok_t *d, const qc_tokenizer_t *tok, int32_t id, char *out, size_t cap) {
    if (!d || !out || cap == 0 || !known(tok, id) || d->n_pending > 3) return -1;
    const unsigned char *b = (const unsigned char *)tok->raw + tok->raw_off[id];
    size_t nb = tok->raw_len[id], used;
    long k = utf8_lossy(d->pending, d->n_pending, b, nb, 0, out, cap - 1, &used);
    if (k < 0) return -1;
    /* what was not used is an unfinished character (at most 3 bytes) */
    size_t total = d->n_pending + nb, rest = total - used;
    unsigned char keep[4];
    for (size_t i = 0; i < rest; i++) {
        size_t j = used + i;
        keep[i] = j < d->n_pending ? d->pending[j] : b[j - d->n_pending];
    }
    memcpy(d->pending, keep, rest);
    d->n_pending = rest;
    out[k] = 0;
    return k;
}

long qc_detok_flush(qc_detok_t *d, char *out, size_t cap) {
    if (!d || !out || cap == 0) return -1;
    long k = utf8_lossy(d->pending, d->n_pending, NULL, 0, 1, out, cap - 1, NULL);
    if (k < 0) return -1;
    d->n_pending = 0;
    out[k] = 0;
    return k;
}
