/* gguf_vocab.c — the tokenizer of a GGUF file: its tokenizer.ggml.* metadata
 * (model "gpt2", pre "qwen2"; tokens in byte-level form with their llama.cpp
 * token types; merges "a b") read into a vocabulary description (vocab.h),
 * from which qc_tokenizer_from_vocab builds the tokenizer as it does from a
 * tokenizer.json, so both give the same ids. The strings stay in the mapping. */
#include "engine/gguf.h"
#include "engine/vocab.h"

#include <stdlib.h>
#include <string.h>

/* Qwen's pre-tokenizer regex (the Split step of its tokenizer.json), used
 * for GGUF files whose tokenizer.ggml.pre is "qwen2". */
static const char QWEN2_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* llama.cpp's token types (tokenizer.ggml.token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* A string metadata value that must be present, into s/n. */
static qc_status need_str(const qc_vocab_msg_t *m, const qc_gguf_t *g, const char *key, const char **s, size_t *n) {
    qc_status st = qc_gguf_get_str(g, key, s, n, m->err, m->err_size);
    if (st == QC_ERR_ARG)
        return qc_vocab_err(m, QC_ERR_FORMAT, "metadata '%s' is missing (no tokenizer in this file?)", key);
    return st;
}

static int str_is(const char *s, size_t n, const char *lit) { return n == strlen(lit) && !memcmp(s, lit, n); }

/* The description's arrays (owned). */
typedef struct {
    qc_vocab_token_t *tokens;
    qc_vocab_added_t *added;
    qc_vocab_merge_t *merges;
} arrays_t;

/* Fills v (and the arrays it points to) from g's metadata. */
static qc_status read_vocab(const qc_vocab_msg_t *m, const qc_gguf_t *g, qc_vocab_desc_t *v, arrays_t *a) {
    const char *s;
    size_t n;
    const qc_gguf_kv_t *tokens = NULL, *types = NULL, *merges = NULL;
    qc_status st;
    if ((st = need_str(m, g, "tokenizer.ggml.model", &s, &n))) return st;
    if (!str_is(s, n, "gpt2"))
        return qc_vocab_err(m, QC_ERR_UNSUPPORTED,
                            "tokenizer.ggml.model '%.*s' is not supported (only gpt2, byte-level BPE)",
                            (int)(n > 40 ? 40 : n), s);
    if ((st = need_str(m, g, "tokenizer.ggml.pre", &s, &n))) return st;
    if (!str_is(s, n, "qwen2"))
        return qc_vocab_err(m, QC_ERR_UNSUPPORTED, "tokenizer.ggml.pre '%.*s' is not supported (only qwen2)",
                            (int)(n > 40 ? 40 : n), s);
    if ((st = qc_gguf_get_array(g, "tokenizer.ggml.tokens", QC_GGUF_STRING, &tokens, m->err, m->err_size)) ||
        (st = qc_gguf_get_array(g, "tokenizer.ggml.merges", QC_GGUF_STRING, &merges, m->err, m->err_size)))
        return st == QC_ERR_ARG ? qc_vocab_err(m, QC_ERR_FORMAT, "metadata '%s' is missing",
                                               tokens ? "tokenizer.ggml.merges" : "tokenizer.ggml.tokens")
                                : st;
    st = qc_gguf_get_array(g, "tokenizer.ggml.token_type", QC_GGUF_INT32, &types, m->err, m->err_size);
    if (st && st != QC_ERR_ARG) return st;
    if (tokens->n == 0 || tokens->n > QC_VOCAB_MAX_ID)
        return qc_vocab_err(m, QC_ERR_FORMAT, "tokenizer.ggml.tokens: %llu tokens (1 to %d are read)",
                            (unsigned long long)tokens->n, QC_VOCAB_MAX_ID);
    if (types && types->n != tokens->n)
        return qc_vocab_err(m, QC_ERR_FORMAT, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
                            (unsigned long long)types->n, (unsigned long long)tokens->n);

    /* First pass: the types, how many of each, the highest id in use. */
    int32_t n_tokens = 0;
    size_t n_vocab = 0, n_added = 0;
    for (int32_t i = 0; i < (int32_t)tokens->n; i++) {
        int64_t ty = types ? qc_gguf_arr_int(types, (uint64_t)i) : TT_NORMAL;
        if (ty < TT_NORMAL || ty > TT_BYTE)
            return qc_vocab_err(m, QC_ERR_FORMAT,
                                "tokenizer.ggml.token_type[%d] = %lld is not a token type (1 to 6)", i,
                                (long long)ty);
        if (ty == TT_UNUSED) continue;
        n_tokens = i + 1;
        if (ty == TT_CONTROL || ty == TT_USER_DEFINED) n_added++;
        else n_vocab++;
    }
    a->tokens = malloc((n_vocab ? n_vocab : 1) * sizeof *a->tokens);
    a->added = malloc((n_added ? n_added : 1) * sizeof *a->added);
    a->merges = malloc((merges->n ? merges->n : 1) * sizeof *a->merges);
    if (!a->tokens || !a->added || !a->merges) return qc_vocab_err(m, QC_ERR_NOMEM, "out of memory");

    /* pre "qwen2": the Qwen regex, after the NFC normalizer, as Qwen's
     * tokenizer.json says */
    *v = (qc_vocab_desc_t){.path = g->path, .vocab_key = "tokenizer.ggml.tokens",
                           .merges_key = "tokenizer.ggml.merges", .n_tokens = n_tokens,
                           .tokens = a->tokens, .added = a->added, .merges = a->merges,
                           .unk_id = -1, .nfc = 1, .n_splits = 1};
    v->splits[0] = (qc_vocab_split_t){.pattern = QWEN2_REGEX, .len = sizeof QWEN2_REGEX - 1,
                                      .where = "tokenizer.ggml.pre"};
    size_t pos = 0;
    for (int32_t i = 0; i < n_tokens; i++) {
        int64_t ty = types ? qc_gguf_arr_int(types, (uint64_t)i) : TT_NORMAL;
        s = qc_gguf_arr_str(tokens, &pos, &n);
        if (n >= UINT32_MAX) return qc_vocab_err(m, QC_ERR_FORMAT, "tokenizer.ggml.tokens[%d]: %zu bytes", i, n);
        /* Control tokens are special added tokens, user-defined ones added
         * tokens matched even in plain text; both stand for their text as it
         * is (llama.cpp's converter stores them that way). */
        if (ty == TT_CONTROL || ty == TT_USER_DEFINED)
            a->added[v->n_added++] = (qc_vocab_added_t){.id = i, .content = s, .len = n, .special = ty == TT_CONTROL};
        else if (ty != TT_UNUSED)
            a->tokens[v->n_vocab++] = (qc_vocab_token_t){i, s, n};
        if (ty == TT_UNKNOWN) v->unk_id = i;
    }
    pos = 0;
    for (size_t r = 0; r < merges->n; r++) {
        s = qc_gguf_arr_str(merges, &pos, &n);
        a->merges[r] = (qc_vocab_merge_t){s, n, NULL, 0};
    }
    v->n_merges = (size_t)merges->n;
    return QC_OK;
}

qc_status qc_tokenizer_from_gguf(const qc_gguf_t *g, qc_tokenizer_t **out, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!g || !out) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_tokenizer_from_gguf: NULL argument");
    *out = NULL;
    qc_vocab_msg_t m = {.path = g->path, .err = err, .err_size = err_size};
    qc_vocab_desc_t v;
    arrays_t a = {0};
    qc_status st = read_vocab(&m, g, &v, &a);
    if (!st) st = qc_tokenizer_from_vocab(&v, out, err, err_size);
    free(a.tokens);
    free(a.added);
    free(a.merges);
    return st;
}
