/* fuzz_tokenize.c — the Qwen tokenizer (the fixture tokenizer.json, loaded
 * once) on any input. The first byte picks what the rest is:
 *
 *   mode & 3 == 0  text, encoded as it is (invalid UTF-8 must give QC_ERR_ARG)
 *   mode & 3 == 1  text made valid UTF-8 first (each bad byte becomes U+FFFD)
 *   mode & 3 == 2  little-endian int32 ids, decoded as they are (any value)
 *   mode & 3 == 3  the same ids folded into [-8, n_tokens + 8): mostly known
 *   mode & 4       QC_TOK_PARSE_SPECIAL when encoding
 *
 * Checks: encode accepts exactly the valid UTF-8 inputs; its ids decode back
 * to the NFC form of the text (every byte has a token, so nothing is lost);
 * decode refuses exactly the id lists holding an unknown id; the streaming
 * decoder, also with buffers too small now and then (a refused push must
 * leave its state as it was), gives decode's text. */
#include "fuzz.h"

#include "qcare.h"

#include <utf8proc.h>

static qc_tokenizer_t *tok;
static int32_t n_tokens;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/tokenizer/tokenizer.json", fuzz_fixtures());
    if (qc_tokenizer_load(path, &tok, err, sizeof err)) {
        fprintf(stderr, "fuzz_tokenize: %s (set QC_FIXTURES)\n", err);
        exit(1);
    }
    n_tokens = qc_tokenizer_n_tokens(tok);
    return 0;
}

/* Whether s[0..n) is well-formed UTF-8 (utf8proc's view, independent of
 * the tokenizer's own check). */
static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* s[0..n) with every byte that does not start a valid sequence replaced by
 * U+FFFD; malloc'd, *out_n its length. */
static char *make_valid(const uint8_t *s, size_t n, size_t *out_n) {
    char *o = malloc(3 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t m = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (m > 0) {
            memcpy(o + k, s + i, (size_t)m);
            k += (size_t)m;
            i += (size_t)m;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    *out_n = k;
    return o;
}

/* Decodes ids[0..n) at once and as a stream; both must agree. */
static void decode_both(const int32_t *ids, size_t n) {
    int known = 1;
    for (size_t i = 0; i < n; i++) known &= qc_tokenizer_token_bytes(tok, ids[i], NULL) != NULL;
    char *all = NULL;
    size_t len = 0;
    qc_status st = qc_tokenizer_decode(tok, ids, n, &all, &len);
    FUZZ_CHECK(known ? st == QC_OK : st == QC_ERR_ARG && !all, "decode status %d (all known: %d)", st, known);
    if (st) return;
    FUZZ_CHECK(strlen(all) <= len && all[len] == 0, "decode's text is not NUL-terminated at its length");
    char *stream = malloc(len + 1);
    size_t o = 0;
    qc_detok_t d;
    qc_detok_init(&d);
    char buf[1024];
    for (size_t i = 0; i < n; i++) {
        if (i % 3 == 1) { /* a buffer that may be too small: refused, state kept */
            size_t cap = 1 + (size_t)(ids[i] & 15);
            long k = qc_detok_push(&d, tok, ids[i], buf, cap);
            if (k >= 0) {
                FUZZ_CHECK((size_t)k < cap && o + (size_t)k <= len, "push %ld into %zu", k, cap);
                memcpy(stream + o, buf, (size_t)k);
                o += (size_t)k;
                continue;
            }
        }
        long k = qc_detok_push(&d, tok, ids[i], buf, sizeof buf);
        FUZZ_CHECK(k >= 0 && o + (size_t)k <= len, "push %ld at %zu of %zu", k, o, len);
        memcpy(stream + o, buf, (size_t)k);
        o += (size_t)k;
    }
    long k = qc_detok_flush(&d, buf, sizeof buf);
    FUZZ_CHECK(k >= 0 && o + (size_t)k <= len, "flush %ld", k);
    memcpy(stream + o, buf, (size_t)k);
    o += (size_t)k;
    FUZZ_CHECK(o == len && !memcmp(stream, all, len), "stream decode (%zu bytes) differs from decode (%zu)", o, len);
    free(stream);
    free(all);
}

static void encode(const char *text, size_t n, int flags) {
    int32_t *ids = NULL;
    size_t n_ids = 0;
    qc_status st = qc_tokenizer_encode(tok, text, n, flags, &ids, &n_ids);
    int valid = valid_utf8((const uint8_t *)text, n);
    FUZZ_CHECK(valid ? st == QC_OK : st == QC_ERR_ARG, "encode status %d for %s UTF-8", st,
               valid ? "valid" : "invalid");
    if (st) {
        FUZZ_CHECK(!ids && !n_ids, "a refused encode left ids");
        return;
    }
    FUZZ_CHECK(ids != NULL, "no ids array");
    char *back = NULL;
    size_t blen = 0;
    FUZZ_CHECK(qc_tokenizer_decode(tok, ids, n_ids, &back, &blen) == QC_OK, "encode gave an unknown id");
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t nl = n ? utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)n, &nfc,
                                           UTF8PROC_STABLE | UTF8PROC_COMPOSE)
                            : 0;
    if (nl >= 0)
        FUZZ_CHECK((size_t)nl == blen && (!nl || !memcmp(nfc, back, blen)),
                   "decode(encode(text)) is not NFC(text): %zu bytes, expected %zd", blen, nl);
    free(nfc);
    free(back);
    decode_both(ids, n_ids);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int mode = data[0], flags = mode & 4 ? QC_TOK_PARSE_SPECIAL : 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (mode & 3) {
    case 0:
        encode((const char *)p, n, flags);
        break;
    case 1: {
        size_t vn;
        char *v = make_valid(p, n, &vn);
        encode(v, vn, flags);
        free(v);
        break;
    }
    default: {
        size_t k = n / 4;
        int32_t *ids = malloc((k ? k : 1) * sizeof *ids);
        for (size_t i = 0; i < k; i++) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            ids[i] = (mode & 3) == 2 ? (int32_t)u : (int32_t)(u % (uint32_t)(n_tokens + 16)) - 8;
        }
        decode_both(ids, k);
        free(ids);
    }
    }
    return 0;
}
