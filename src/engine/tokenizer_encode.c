/* tokenizer_encode.c — text to ids, as Hugging Face's `tokenizers` does it:
 *   1. added tokens are split out of the raw text (leftmost, longest match;
 *      special ones only when asked to), those with normalized=false first;
 *   2. the remaining text is NFC-normalized (when the normalizer says so) and
 *      the added tokens with normalized=true are split out of it;
 *   3. each remaining segment is cut into pieces by the pre-tokenizer
 *      (tokenizer_pretok.c);
 *   4. each piece's bytes become the single-byte tokens of the GPT-2
 *      bytes_to_unicode table and are merged by BPE, lowest merge rank first,
 *      leftmost on ties, with a heap over a linked list (O(n log n), since
 *      one piece may be a 100k-letter word).
 * All scratch state is per call (qc_tok_enc_t), so threads may share the
 * tokenizer. */
#include "engine/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ==== BPE ==== */

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
static qc_status enc_grow(qc_tok_enc_t *E, size_t n) {
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
static void push_pair(qc_tok_enc_t *E, size_t *nh, int32_t k, int32_t a, int32_t b) {
    const qc_tok_merge_t *m = qc_tok_merge_find(E->t, a, b);
    if (m) heap_push(E->heap, nh, (uint64_t)(uint32_t)m->rank << 32 | (uint32_t)k);
}

/* BPE over one pre-tokenized piece (raw bytes p[0..n)): appends its ids. */
qc_status qc_tok_bpe_piece(qc_tok_enc_t *E, const unsigned char *p, size_t n) {
    const qc_tokenizer_t *t = E->t;
    if (n == 0) return QC_OK;
    if (n == 1 && t->byte_id[p[0]] >= 0) return qc_ids_push(&E->out, t->byte_id[p[0]]) ? QC_ERR_NOMEM : QC_OK;
    if (t->ignore_merges) {
        /* the whole piece, in byte-level form, may be a token */
        char s[4];
        E->tmp.n = 0;
        for (size_t i = 0; i < n; i++)
            if (qc_buf_add(&E->tmp, s, qc_tok_utf8_put(t->b2u[p[i]], s))) return QC_ERR_NOMEM;
        int32_t id = qc_tok_vocab_find(t, E->tmp.p, E->tmp.n);
        if (id >= 0) return qc_ids_push(&E->out, id) ? QC_ERR_NOMEM : QC_OK;
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
        const qc_tok_merge_t *ms = qc_tok_merge_find(t, E->sym[k], E->sym[j]);
        if (!ms || ms->rank != rank) continue; /* stale: a side changed */
        E->sym[k] = ms->new_id;
        E->sym[j] = -1;
        E->nxt[k] = E->nxt[j];
        if (E->nxt[j] >= 0) E->prv[E->nxt[j]] = k;
        if (E->prv[k] >= 0) push_pair(E, &nh, E->prv[k], E->sym[E->prv[k]], E->sym[k]);
        if (E->nxt[k] >= 0) push_pair(E, &nh, k, E->sym[k], E->sym[E->nxt[k]]);
    }
    for (int32_t k = m ? 0 : -1; k >= 0; k = E->nxt[k])
        if (qc_ids_push(&E->out, E->sym[k])) return QC_ERR_NOMEM;
    return QC_OK;
}

/* ==== added tokens and the normalizer ==== */

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

static int is_ascii(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] & 0x80) return 0;
    return 1;
}

static qc_status split_added(qc_tok_enc_t *E, const unsigned char *s, size_t n, int normalized_pass);

/* Text between the raw-text added tokens: NFC-normalize it, then split out
 * the normalized added tokens. */
static qc_status normalize_segment(qc_tok_enc_t *E, const unsigned char *s, size_t n) {
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
 * between them goes on to normalize_segment (first pass) or the pre-tokenizer. */
static qc_status split_added(qc_tok_enc_t *E, const unsigned char *s, size_t n, int normalized_pass) {
    const qc_tokenizer_t *t = E->t;
    size_t seg = 0; /* start of the text not yet handed on */
    qc_status st;
    for (size_t i = 0; i < n; i++) {
        unsigned char f = s[i];
        if (!t->first_n[f]) continue;
        const qc_tok_added_t *hit = NULL;
        for (size_t k = t->first_lo[f], e = k + t->first_n[f]; k < e; k++) {
            const qc_tok_added_t *a = &t->added[k];
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
                before = is_word_cp(qc_tok_utf8_cp(s + b, &cl));
            }
            if (stop < n) after = is_word_cp(qc_tok_utf8_cp(s + stop, &cl));
            if (before || after) {
                i = stop - 1;
                continue;
            }
        }
        if (hit->lstrip) {
            while (start > seg) {
                size_t b = start - 1;
                while (b > seg && (s[b] & 0xC0) == 0x80) b--;
                if (!is_space_cp(qc_tok_utf8_cp(s + b, &cl))) break;
                start = b;
            }
        }
        if (hit->rstrip) {
            while (stop < n && is_space_cp(qc_tok_utf8_cp(s + stop, &cl))) stop += cl;
        }
        if (start > seg) {
            st = normalized_pass ? qc_tok_pretok(E, 0, s + seg, start - seg)
                                 : normalize_segment(E, s + seg, start - seg);
            if (st) return st;
        }
        if (qc_ids_push(&E->out, hit->id)) return QC_ERR_NOMEM;
        seg = stop;
        i = stop - 1;
    }
    if (seg < n)
        return normalized_pass ? qc_tok_pretok(E, 0, s + seg, n - seg) : normalize_segment(E, s + seg, n - seg);
    return QC_OK;
}

qc_status qc_tokenizer_encode(const qc_tokenizer_t *tok, const char *text, size_t len, int flags,
                              int32_t **ids, size_t *n_ids) {
    if (ids) *ids = NULL;
    if (n_ids) *n_ids = 0;
    if (!tok || !ids || !n_ids || (!text && len)) return QC_ERR_ARG;
    if (len > INT32_MAX) return QC_ERR_ARG; /* symbol indices are 32-bit */
    const unsigned char *s = (const unsigned char *)text;
    if (len && !qc_tok_utf8_valid(s, len)) return QC_ERR_ARG;

    qc_tok_enc_t E = {.t = tok, .flags = flags};
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
    qc_buf_free(&E.tmp);
    if (st) {
        free(E.out.p);
        return st;
    }
    *ids = E.out.p;
    *n_ids = E.out.n;
    return QC_OK;
}
