/* fuzz_tokenizer_json.c — qc_tokenizer_load on any bytes (the input is the
 * tokenizer.json). A tokenizer that loads is then used: the input itself
 * (when it is UTF-8, as JSON is) and a fixed ChatML line are encoded with and
 * without special tokens, every id must be one the tokenizer knows (decode
 * accepts it), and the stream decoder must give decode's text. */
#include "fuzz.h"

#include "qcare.h"

/* Encodes text[0..n), decodes the ids at once and one by one, compares. */
static void use(const qc_tokenizer_t *tok, const char *text, size_t n, int flags) {
    int32_t *ids = NULL;
    size_t n_ids = 0;
    qc_status st = qc_tokenizer_encode(tok, text, n, flags, &ids, &n_ids);
    FUZZ_CHECK(st == QC_OK || st == QC_ERR_ARG || st == QC_ERR_NOMEM, "encode: status %d", st);
    if (st) return;
    char *all = NULL;
    size_t len = 0;
    FUZZ_CHECK(qc_tokenizer_decode(tok, ids, n_ids, &all, &len) == QC_OK, "encode gave an id decode refuses");
    char *piece = malloc(len + 8 + 256 * 4); /* the stream never outgrows decode's text */
    size_t o = 0;
    qc_detok_t d;
    qc_detok_init(&d);
    for (size_t i = 0; i < n_ids && piece; i++) {
        size_t tl = 0;
        FUZZ_CHECK(qc_tokenizer_token_bytes(tok, ids[i], &tl) != NULL, "id %d has no bytes", (int)ids[i]);
        char buf[2048];
        long k = tl + 256 <= sizeof buf ? qc_detok_push(&d, tok, ids[i], buf, sizeof buf) : -2;
        if (k == -2) break; /* a token too long for this buffer: not compared */
        FUZZ_CHECK(k >= 0 && o + (size_t)k <= len, "detok_push %ld (at %zu of %zu)", k, o, len);
        memcpy(piece + o, buf, (size_t)k);
        o += (size_t)k;
        if (i + 1 == n_ids) {
            k = qc_detok_flush(&d, buf, sizeof buf);
            FUZZ_CHECK(k >= 0 && o + (size_t)k <= len, "detok_flush %ld", k);
            memcpy(piece + o, buf, (size_t)k);
            o += (size_t)k;
            FUZZ_CHECK(o == len && !memcmp(piece, all, len), "stream decode differs from decode");
        }
    }
    free(piece);
    free(all);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    char err[512] = "";
    qc_tokenizer_t *tok = (qc_tokenizer_t *)1;
    qc_status st = qc_tokenizer_load(path, &tok, err, sizeof err);
    if (st) {
        FUZZ_CHECK(tok == NULL && err[0], "a failed load left a tokenizer or no message");
        return 0;
    }
    static const char line[] = "<|im_start|>user\nI feel   awful, 37.5°C — can't sleep!<|im_end|>\n";
    for (int flags = 0; flags <= QC_TOK_PARSE_SPECIAL; flags++) {
        use(tok, line, sizeof line - 1, flags);
        use(tok, (const char *)data, size < 4096 ? size : 4096, flags);
    }
    int32_t n = qc_tokenizer_n_tokens(tok);
    FUZZ_CHECK(n > 0, "%d tokens", (int)n);
    char *text = NULL;
    int32_t unknown[2] = {n, -1};
    st = qc_tokenizer_decode(tok, unknown, 2, &text, NULL);
    FUZZ_CHECK(st == QC_ERR_ARG && !text, "decode of unknown ids: %d", st);
    free(text);
    qc_tokenizer_free(tok);
    return 0;
}
