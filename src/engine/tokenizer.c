/* tokenizer.c — the tables of a Hugging Face byte-level BPE tokenizer, as
 * the Qwen family uses: built by one constructor, qc_tokenizer_from_vocab,
 * from a plain vocabulary description (vocab.h) that a tokenizer.json
 * (tokenizer_json.c) or a GGUF file's metadata (gguf_vocab.c) fills; the
 * lookups over them; and qc_tokenizer_free.
 *
 * Per id the tables keep the bytes the token stands for (the byte mapping
 * undone) and its byte-level string; a hash over the byte-level strings and
 * one over the merge pairs serve BPE (tokenizer_encode.c); the added tokens
 * are sorted for matching by first byte, longest first.
 *
 * The tokenizer is read-only after it is built, so threads may share it. */
#include "engine/tokenizer_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ==== building ==== */

typedef struct {
    qc_vocab_msg_t m; /* the description's path, the caller's err */
    const qc_vocab_desc_t *v;
    qc_tokenizer_t *t;
    qc_buf_t raw, bl, tmp;
    uint32_t b2u[256];
    int u2b[324]; /* inverse of b2u over U+0000..U+0143, -1 elsewhere */
} loader_t;

qc_status qc_vocab_err(const qc_vocab_msg_t *m, qc_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    qc_vseterr_at(m->err, m->err_size, st, m->path, fmt, ap);
    va_end(ap);
    return st;
}

static qc_status oom(loader_t *L) { return qc_vocab_err(&L->m, QC_ERR_NOMEM, "out of memory"); }

/* Appends s to an arena; *off gets its offset. The arena may not exceed 4 GiB
 * (offsets are 32-bit). */
static int arena_add(qc_buf_t *a, const char *s, size_t n, uint32_t *off) {
    if (a->n + n + 1 >= QC_TOK_NONE) return -1;
    *off = (uint32_t)a->n;
    if (qc_buf_add(a, s, n)) return -1;
    a->n++; /* keep the NUL qc_buf_add wrote */
    return 0;
}

/* Undoes the byte mapping of a vocabulary string into L->tmp. A string with
 * a character outside the mapping keeps its UTF-8 bytes, as Hugging Face's
 * ByteLevel decoder does. The string need not be UTF-8 (a GGUF file's
 * tokens are bytes): the length a lead byte announces is checked before the
 * character is read. */
static int unmap_bytes(loader_t *L, const char *s, size_t n) {
    L->tmp.n = 0;
    if (qc_buf_reserve(&L->tmp, n)) return -1;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = u[i] < 0x80 ? 1 : u[i] < 0xE0 ? 2 : u[i] < 0xF0 ? 3 : 4; /* as qc_tok_utf8_cp reads */
        uint32_t cp = k <= n - i ? qc_tok_utf8_cp(u + i, &k) : UINT32_MAX;
        if (cp >= 324 || L->u2b[cp] < 0) {
            memcpy(L->tmp.p, s, n);
            L->tmp.n = n;
            return 0;
        }
        L->tmp.p[L->tmp.n++] = (char)L->u2b[cp];
        i += k;
    }
    return 0;
}

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
    while (cap < nv + nv / 2 + 16) cap *= 2; /* load at most 2/3 (Qwen's 151,936: 1 MB) */
    t->vhash = malloc(cap * sizeof *t->vhash);
    if (!t->raw_off || !t->raw_len || !t->bl_off || !t->bl_len || !t->vhash) return oom(L);
    memset(t->raw_off, 0xff, n * sizeof(uint32_t));
    memset(t->bl_off, 0xff, n * sizeof(uint32_t));
    memset(t->vhash, 0xff, cap * sizeof *t->vhash);
    t->vhash_mask = cap - 1;
    return QC_OK;
}

/* Whether id is one of the description's (a broken promise of the reader
 * that filled it, not of the file). */
static qc_status check_id(loader_t *L, int32_t id, const char *what, const char *s, size_t n) {
    if (id >= 0 && id < L->v->n_tokens) return QC_OK;
    return qc_vocab_err(&L->m, QC_ERR_ARG, "%s[\"%.*s\"]: id %d is not in [0, %d)", what, (int)(n > 40 ? 40 : n), s,
                        id, L->v->n_tokens);
}

/* Adds a vocabulary entry: its byte-level string and the bytes it stands for. */
static qc_status vocab_add(loader_t *L, const qc_vocab_token_t *tk) {
    qc_tokenizer_t *t = L->t;
    int32_t id = tk->id;
    const char *key = tk->text;
    size_t klen = tk->len;
    qc_status st = check_id(L, id, L->v->vocab_key, key, klen);
    if (st) return st;
    if (t->bl_off[id] != QC_TOK_NONE)
        return qc_vocab_err(&L->m, QC_ERR_FORMAT, "%s[\"%.*s\"]: id %d is used twice", L->v->vocab_key,
                            (int)(klen > 40 ? 40 : klen), key, id);
    if (arena_add(&L->bl, key, klen, &t->bl_off[id])) return oom(L);
    t->bl_len[id] = (uint32_t)klen;
    size_t i = qc_tok_hash_bytes(key, klen) & t->vhash_mask;
    while (t->vhash[i] >= 0) i = (i + 1) & t->vhash_mask;
    t->vhash[i] = id;
    /* qc_tok_vocab_find reads the arena: keep t->bl current */
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
        size_t k = qc_tok_utf8_put(L->b2u[b], s);
        t->byte_id[b] = qc_tok_vocab_find(t, s, k);
    }
    if (nm > INT32_MAX) return qc_vocab_err(&L->m, QC_ERR_FORMAT, "%s: too many merges", L->v->merges_key);
    size_t cap = 16;
    while (cap < nm + nm / 2 + 16) cap *= 2; /* load at most 2/3 (Qwen's 151,387 merges: 4 MB) */
    t->mhash = malloc(cap * sizeof *t->mhash);
    if (!t->mhash) return oom(L);
    for (size_t i = 0; i < cap; i++) t->mhash[i].key = UINT64_MAX;
    t->mhash_mask = cap - 1;
    t->n_merges = nm;
    return QC_OK;
}

/* The message for merge rank r naming a string s[0..n) (`what`: "token",
 * "merged token") that the vocabulary lacks. */
static qc_status not_in_vocab(loader_t *L, size_t r, const char *what, const char *s, size_t n) {
    return qc_vocab_err(&L->m, QC_ERR_FORMAT, "%s[%zu]: %s \"%.*s\" is not in the vocabulary", L->v->merges_key, r,
                        what, (int)(n > 40 ? 40 : n), s);
}

/* Adds merge rank r: a[0..na) + b[0..nb), byte-level strings of the
 * vocabulary. */
static qc_status merge_pair(loader_t *L, size_t r, const char *a, size_t na, const char *b, size_t nb) {
    qc_tokenizer_t *t = L->t;
    int32_t ia = qc_tok_vocab_find(t, a, na), ib = qc_tok_vocab_find(t, b, nb);
    if (ia < 0) return not_in_vocab(L, r, "token", a, na);
    if (ib < 0) return not_in_vocab(L, r, "token", b, nb);
    L->tmp.n = 0;
    if (qc_buf_add(&L->tmp, a, na) || qc_buf_add(&L->tmp, b, nb)) return oom(L);
    int32_t inew = qc_tok_vocab_find(t, L->tmp.p, L->tmp.n);
    if (inew < 0) return not_in_vocab(L, r, "merged token", L->tmp.p, L->tmp.n);
    /* a repeated pair takes the later rank, as a Rust HashMap collect does */
    uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
    size_t i = qc_tok_hash_pair(key) & t->mhash_mask;
    while (t->mhash[i].key != UINT64_MAX && t->mhash[i].key != key) i = (i + 1) & t->mhash_mask;
    t->mhash[i].key = key;
    t->mhash[i].rank = (int32_t)r;
    t->mhash[i].new_id = inew;
    return QC_OK;
}

/* Adds merge rank r. One written "a b" is split as Hugging Face does: on
 * ' ', into exactly two parts. */
static qc_status merge_add(loader_t *L, size_t r, const qc_vocab_merge_t *m) {
    if (m->b) return merge_pair(L, r, m->a, m->na, m->b, m->nb);
    const char *s = m->a, *sp = memchr(s, ' ', m->na);
    size_t n = m->na;
    if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
        return qc_vocab_err(&L->m, QC_ERR_FORMAT, "%s[%zu]: expected \"a b\", got \"%.*s\"", L->v->merges_key, r,
                            (int)(n > 40 ? 40 : n), s);
    size_t na = (size_t)(sp - s);
    return merge_pair(L, r, s, na, sp + 1, n - na - 1);
}

/* Room for n added tokens. */
static qc_status added_init(loader_t *L, size_t n) {
    if (n > QC_VOCAB_MAX_ADDED)
        return qc_vocab_err(&L->m, QC_ERR_UNSUPPORTED, "more than %d added tokens", QC_VOCAB_MAX_ADDED);
    if (n && !(L->t->added = calloc(n, sizeof *L->t->added))) return oom(L);
    return QC_OK;
}

/* Adds an added token (its content replaces the bytes of its id). */
static qc_status added_add(loader_t *L, const qc_vocab_added_t *a) {
    qc_tokenizer_t *t = L->t;
    qc_tok_added_t *d = &t->added[t->n_added];
    qc_status st = check_id(L, a->id, "added tokens", a->content, a->len);
    if (st) return st;
    if (a->len == 0) return qc_vocab_err(&L->m, QC_ERR_FORMAT, "added token %d: empty content", a->id);
    d->id = a->id;
    d->len = a->len;
    if (!(d->content = malloc(a->len + 1))) return oom(L);
    memcpy(d->content, a->content, a->len);
    d->content[a->len] = 0;
    t->n_added++;
    d->special = a->special != 0;
    d->lstrip = a->lstrip != 0;
    d->rstrip = a->rstrip != 0;
    d->single_word = a->single_word != 0;
    d->normalized = a->normalized != 0;
    if (arena_add(&L->raw, d->content, d->len, &t->raw_off[d->id])) return oom(L);
    t->raw_len[d->id] = (uint32_t)d->len;
    return QC_OK;
}

static int added_cmp(const void *x, const void *y) {
    const qc_tok_added_t *a = x, *b = y;
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
    qc_buf_free(&L->tmp);
    *out = L->t;
}

static void loader_fail(loader_t *L) {
    if (L->t) {
        L->t->raw = NULL; /* the arenas are still in L */
        L->t->bl = NULL;
        qc_tokenizer_free(L->t);
    }
    qc_buf_free(&L->raw);
    qc_buf_free(&L->bl);
    qc_buf_free(&L->tmp);
}

/* Compiles pre-tokenizer step sp into the next regex slot. */
static qc_status add_regex(loader_t *L, const qc_vocab_split_t *sp) {
    char why[160];
    qc_status st = qc_tok_regex_compile(sp, &L->t->re[L->t->n_re], why, sizeof why);
    if (st == QC_ERR_NOMEM) return oom(L);
    if (st) return qc_vocab_err(&L->m, st, "%s: regex does not compile: %s", sp->where, why);
    L->t->n_re++;
    return QC_OK;
}

/* The unknown token's id: v->unk_id, or the one named by v->unk_text (a
 * vocabulary string first, then an added token's content). */
static int32_t find_unk(const qc_tokenizer_t *t, const qc_vocab_desc_t *v) {
    if (!v->unk_text) return v->unk_id;
    int32_t id = qc_tok_vocab_find(t, v->unk_text, v->unk_len);
    for (size_t i = 0; id < 0 && i < t->n_added; i++)
        if (strcmp(t->added[i].content, v->unk_text) == 0) id = t->added[i].id;
    return id;
}

/* ==== the constructor ==== */

/* In the order the tables need: the regexes, the vocabulary (which the
 * merges are looked up in), the merges, then the added tokens (whose
 * content replaces the bytes of an id they share with the vocabulary). */
qc_status qc_tokenizer_from_vocab(const qc_vocab_desc_t *v, qc_tokenizer_t **out, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!v || !out) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_tokenizer_from_vocab: NULL argument");
    *out = NULL;
    loader_t L = {.m = {.path = v->path ? v->path : "(null)", .err = err, .err_size = err_size}, .v = v};
    if (v->n_tokens < 0 || v->n_tokens > QC_VOCAB_MAX_ID || v->n_splits < 0 || v->n_splits > QC_VOCAB_MAX_SPLITS)
        return qc_vocab_err(&L.m, QC_ERR_ARG, "a vocabulary of %d ids with %d pre-tokenizer steps (at most %d and %d)",
                            (int)v->n_tokens, v->n_splits, QC_VOCAB_MAX_ID, QC_VOCAB_MAX_SPLITS);
    qc_status st;
    if ((st = loader_begin(&L))) goto fail;
    L.t->nfc = v->nfc != 0;
    L.t->ignore_merges = v->ignore_merges != 0;
    for (int i = 0; i < v->n_splits; i++)
        if ((st = add_regex(&L, &v->splits[i]))) goto fail;
    if ((st = tables_init(&L, v->n_tokens, v->n_vocab))) goto fail;
    for (size_t i = 0; i < v->n_vocab; i++)
        if ((st = vocab_add(&L, &v->tokens[i]))) goto fail;
    if ((st = vocab_done(&L, v->n_merges))) goto fail;
    for (size_t r = 0; r < v->n_merges; r++)
        if ((st = merge_add(&L, r, &v->merges[r]))) goto fail;
    if ((st = added_init(&L, v->n_added))) goto fail;
    for (size_t i = 0; i < v->n_added; i++)
        if ((st = added_add(&L, &v->added[i]))) goto fail;
    added_done(&L);
    L.t->unk_id = find_unk(L.t, v);
    loader_finish(&L, out);
    return QC_OK;
fail:
    loader_fail(&L);
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

/* ==== lookups ==== */

const char *qc_tokenizer_token_bytes(const qc_tokenizer_t *tok, int32_t id, size_t *len) {
    if (!qc_tok_known(tok, id)) {
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
    return qc_tok_vocab_find(tok, token_text, n);
}
