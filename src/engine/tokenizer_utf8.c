/* tokenizer_utf8.c — UTF-8 for the tokenizer: well-formed sequences
 * (Unicode Table 3-7), the lossy conversion of Rust's
 * String::from_utf8_lossy (one U+FFFD per maximal subpart of an invalid
 * sequence), and the two decoders built on it: qc_tokenizer_decode and the
 * streaming qc_detok_* (which hold back an unfinished character). */
#include "engine/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

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

int qc_tok_utf8_valid(const unsigned char *s, size_t n) {
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

/* ==== decoding ==== */

qc_status qc_tokenizer_decode(const qc_tokenizer_t *tok, const int32_t *ids, size_t n_ids,
                              char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!tok || !text || (!ids && n_ids)) return QC_ERR_ARG;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (!qc_tok_known(tok, ids[i])) return QC_ERR_ARG;
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
    if (!d || !out || cap == 0 || !qc_tok_known(tok, id) || d->n_pending > 3) return -1;
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
