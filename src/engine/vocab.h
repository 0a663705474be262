/* vocab.h — the plain description of a byte-level BPE vocabulary, and the
 * one constructor that builds a tokenizer from it. Internal to the engine.
 *
 * Each source of a tokenizer fills a qc_vocab_desc_t and calls
 * qc_tokenizer_from_vocab: tokenizer_json.c from a Hugging Face
 * tokenizer.json, gguf_vocab.c from a GGUF file's tokenizer.ggml.* metadata.
 * The tokenizer knows nothing of either format, and the readers nothing of
 * the tokenizer's tables; both readers go through the same tables and code,
 * so they give the same ids for the same vocabulary.
 *
 * Every pointer in a description is borrowed (from the JSON tree, from the
 * GGUF mapping) and needs to live only during the constructor call, which
 * copies what it keeps. Strings are counted, not NUL-terminated, unless said
 * otherwise. */
#ifndef QC_VOCAB_H
#define QC_VOCAB_H

#include "qcare.h"

#include <stddef.h>
#include <stdint.h>

#define QC_VOCAB_MAX_ID (1 << 24) /* ids are in [0, QC_VOCAB_MAX_ID) */
#define QC_VOCAB_MAX_SPLITS 8     /* regex steps of one pre-tokenizer */
#define QC_VOCAB_MAX_ADDED 65535  /* added tokens of one tokenizer */

/* A token of the BPE vocabulary: its id and its byte-level string (each
 * byte written as its GPT-2 bytes_to_unicode character, "Ġ" for a space). */
typedef struct {
    int32_t id;
    const char *text;
    size_t len;
} qc_vocab_token_t;

/* An added token: split out of the text before pre-tokenization, standing
 * for its content as it is (the flags are tokenizer.json's added_tokens'). */
typedef struct {
    int32_t id;
    const char *content; /* not empty */
    size_t len;
    int special;     /* matched only with QC_TOK_PARSE_SPECIAL */
    int lstrip;      /* absorbs the white space before it */
    int rstrip;      /* absorbs the white space after it */
    int single_word; /* not matched inside a word */
    int normalized;  /* matched in the NFC-normalized text (else in the raw text) */
} qc_vocab_added_t;

/* A merge of two vocabulary strings: a + b; or, with b NULL, the one string
 * a[0..na) written "a b" (split at its only space, as Hugging Face does). */
typedef struct {
    const char *a;
    size_t na;
    const char *b;
    size_t nb;
} qc_vocab_merge_t;

/* A pre-tokenizer step: Split with behavior Isolated (every match and every
 * gap between matches is a piece). A regex's \s and \S mean Unicode
 * White_Space, as in the Oniguruma / Rust regexes Hugging Face uses. */
typedef struct {
    const char *pattern;
    size_t len;
    int literal;    /* a plain string, not a regex */
    char where[64]; /* the step, for messages ("pre_tokenizer.pretokenizers[0]") */
} qc_vocab_split_t;

typedef struct {
    const char *path;       /* the file, for messages */
    const char *merges_key; /* where the merges come from, for messages ("model.merges") */
    const char *vocab_key;  /* where the tokens come from, for messages ("model.vocab") */
    int32_t n_tokens;       /* ids in use: every id below is < n_tokens (<= QC_VOCAB_MAX_ID) */

    const qc_vocab_token_t *tokens; /* [n_vocab]: the BPE vocabulary, each id once */
    size_t n_vocab;
    const qc_vocab_merge_t *merges; /* [n_merges]: index = rank, lowest merges first */
    size_t n_merges;
    const qc_vocab_added_t *added;  /* [n_added]; an id may also be in `tokens` */
    size_t n_added;

    /* The unknown token (what a byte without a token of its own becomes):
     * unk_id, or -1; or, when unk_text is set (NUL-terminated, unk_len
     * bytes), the vocabulary string unk_text, else the added token whose
     * content it is. */
    int32_t unk_id;
    const char *unk_text;
    size_t unk_len;

    int ignore_merges; /* a whole piece that is a token is not merged */
    int nfc;           /* the normalizer: NFC (1) or none (0) */
    qc_vocab_split_t splits[QC_VOCAB_MAX_SPLITS]; /* the pre-tokenizer, in order */
    int n_splits;
} qc_vocab_desc_t;

/* Builds the tokenizer *out (caller frees with qc_tokenizer_free) from v.
 * Checks what the tables rely on — ids used once, every merge's parts and
 * result in the vocabulary, regexes that compile, limits — and fails with
 * a message naming v->path and the field (v->vocab_key[...],
 * v->merges_key[rank], splits[].where). */
qc_status qc_tokenizer_from_vocab(const qc_vocab_desc_t *v, qc_tokenizer_t **out, char *err, size_t err_size);

/* Where the messages of a tokenizer source go: "PATH: message" into err. */
typedef struct {
    const char *path;
    char *err;
    size_t err_size;
} qc_vocab_msg_t;

/* Writes "PATH: message" into m's err (as qc_vseterr_at); returns st. */
qc_status qc_vocab_err(const qc_vocab_msg_t *m, qc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
