/* tokenizer_impl.h — internal to the tokenizer's files: its tables, the
 * per-call state of an encode, and the helpers they share.
 *
 *   tokenizer.c         the tables, built from a vocabulary description
 *                       (vocab.h); lookups; free
 *   tokenizer_json.c    tokenizer.json -> vocabulary description
 *   tokenizer_encode.c  encoding: added tokens, NFC, BPE
 *   tokenizer_pretok.c  the pre-tokenizer: regexes compiled and matched the
 *                       way Hugging Face's are
 *   tokenizer_utf8.c    UTF-8 checks, lossy conversion, decode, streaming decode
 *
 * (gguf_vocab.c, outside, reads a GGUF file's vocabulary description.) */
#ifndef QC_TOKENIZER_IMPL_H
#define QC_TOKENIZER_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "base/base.h"
#include "engine/vocab.h"

#include <pcre2.h>
#include <string.h>

#define QC_TOK_NONE UINT32_MAX /* offset of an id that names no token */

/* ==== the tables ==== */

typedef struct {
    uint64_t key; /* left id << 32 | right id; UINT64_MAX: empty */
    int32_t rank;
    int32_t new_id;
} qc_tok_merge_t;

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    unsigned char special, lstrip, rstrip, single_word, normalized;
} qc_tok_added_t;

struct qc_tokenizer {
    int32_t n_tokens; /* highest id + 1 */

    /* per id: bytes the token stands for (byte mapping undone; an added
     * token's content), in the arena `raw`, NUL after each */
    uint32_t *raw_off, *raw_len; /* [n_tokens]; QC_TOK_NONE: no token */
    char *raw;

    /* per id: the vocabulary's byte-level string, in the arena `bl` */
    uint32_t *bl_off, *bl_len; /* [n_tokens]; QC_TOK_NONE: not in the vocabulary */
    char *bl;
    int32_t *vhash; /* open addressing over ids, -1 empty */
    size_t vhash_mask;

    qc_tok_merge_t *mhash;
    size_t mhash_mask;
    size_t n_merges;

    uint32_t b2u[256];    /* GPT-2 bytes_to_unicode */
    int32_t byte_id[256]; /* the single-byte token of each byte, -1 if none */
    int32_t unk_id;       /* -1 if none */
    int ignore_merges;

    qc_tok_added_t *added; /* sorted by first byte, then longest first */
    size_t n_added;
    uint16_t first_lo[256], first_n[256]; /* range of `added` per first byte */

    int nfc;
    pcre2_code *re[QC_VOCAB_MAX_SPLITS];
    int n_re;
};

static inline uint64_t qc_tok_hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static inline uint64_t qc_tok_hash_pair(uint64_t k) {
    k *= 0x9E3779B97F4A7C15ull;
    return k ^ (k >> 31);
}

/* The vocabulary id of byte-level string s[0..n), or -1. */
static inline int32_t qc_tok_vocab_find(const qc_tokenizer_t *t, const char *s, size_t n) {
    if (!t->vhash) return -1;
    for (size_t i = qc_tok_hash_bytes(s, n) & t->vhash_mask;; i = (i + 1) & t->vhash_mask) {
        int32_t id = t->vhash[i];
        if (id < 0) return -1;
        if (t->bl_len[id] == n && memcmp(t->bl + t->bl_off[id], s, n) == 0) return id;
    }
}

/* The merge of the pair (a, b), or NULL. */
static inline const qc_tok_merge_t *qc_tok_merge_find(const qc_tokenizer_t *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = qc_tok_hash_pair(key) & t->mhash_mask;; i = (i + 1) & t->mhash_mask) {
        const qc_tok_merge_t *s = &t->mhash[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

/* Whether id names a token (of the vocabulary or added). */
static inline int qc_tok_known(const qc_tokenizer_t *t, int32_t id) {
    return t && id >= 0 && id < t->n_tokens && t->raw_off[id] != QC_TOK_NONE;
}

/* ==== UTF-8 (tokenizer_utf8.c) ==== */

/* Whether s[0..n) is well-formed UTF-8. */
int qc_tok_utf8_valid(const unsigned char *s, size_t n);

/* Decodes the (valid) character at s; *len gets its byte length. */
static inline uint32_t qc_tok_utf8_cp(const unsigned char *s, size_t *len) {
    unsigned c = s[0];
    if (c < 0x80) { *len = 1; return c; }
    if (c < 0xE0) { *len = 2; return (c & 0x1F) << 6 | (s[1] & 0x3F); }
    if (c < 0xF0) { *len = 3; return (c & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F); }
    *len = 4;
    return (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (s[2] & 0x3F) << 6 |
           (s[3] & 0x3F);
}

/* Writes code point cp as UTF-8 into o (room for 4); returns its length. */
static inline size_t qc_tok_utf8_put(uint32_t cp, char *o) {
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

/* ==== one encode ==== */

/* Per-call state of one qc_tokenizer_encode (the tokenizer stays read-only,
 * so threads may share it). */
typedef struct {
    const qc_tokenizer_t *t;
    int flags;
    qc_ids_t out;
    /* BPE work arrays, grown to the longest piece */
    int32_t *sym, *prv, *nxt; /* [cap] */
    uint64_t *heap;           /* [3 * cap]: rank << 32 | left symbol index */
    size_t cap;
    qc_buf_t tmp;
    /* regex matching */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    size_t jstack_size;
} qc_tok_enc_t;

/* BPE over one pre-tokenized piece (raw bytes p[0..n)): appends its ids to
 * E->out (tokenizer_encode.c). */
qc_status qc_tok_bpe_piece(qc_tok_enc_t *E, const unsigned char *p, size_t n);

/* Runs the pre-tokenizer's steps from `stage` over s[0..n) and hands each
 * final piece to qc_tok_bpe_piece (tokenizer_pretok.c). */
qc_status qc_tok_pretok(qc_tok_enc_t *E, int stage, const unsigned char *s, size_t n);

/* Compiles a pre-tokenizer pattern (UTF, UCP; JIT when it can) into *re.
 * QC_ERR_NOMEM, or QC_ERR_FORMAT with PCRE2's reason in why
 * (tokenizer_pretok.c). */
qc_status qc_tok_regex_compile(const qc_vocab_split_t *sp, pcre2_code **re, char *why, size_t why_size);

#endif
