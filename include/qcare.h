/* qcare.h — public C API of the qcare engine: load a small Qwen language
 * model, tokenize, evaluate, sample and generate on a CPU (model, context,
 * tokenizer, sampler, batch). The care pipeline is in qcare_care.h.
 *
 * Link: -lqcare -lpcre2-8 -lutf8proc -ljansson -lm -lpthread
 *
 * ==== Using it ====
 *
 *   char err[256];
 *   qc_model_t *m;
 *   if (qc_model_load("models/Qwen2.5-0.5B-Instruct", NULL, &m, err, sizeof err))
 *       { fprintf(stderr, "%s\n", err); return 1; }
 *   const qc_tokenizer_t *tok = qc_model_tokenizer(m);
 *   int32_t *ids; size_t n;
 *   qc_tokenizer_encode(tok, text, strlen(text), QC_TOK_PARSE_SPECIAL, &ids, &n);
 *   qc_ctx_t *ctx = qc_ctx_new(m, 4096, NULL);
 *   float *logits = malloc(qc_model_n_vocab(m) * sizeof(float));
 *   qc_ctx_eval(ctx, ids, n, logits, QC_LOGITS_LAST);   // next-token logits
 *   ...
 *   qc_ctx_free(ctx); qc_model_free(m); free(ids); free(logits);
 *
 * The care pipeline (emotion, safety net, replies, sessions) built on this
 * engine is declared in qcare_care.h; libqcare.a holds the engine only.
 *
 * ==== Conventions ====
 *
 * - Functions that can fail return qc_status (0 = QC_OK). Constructors that
 *   have no handle yet write a message into a caller buffer `err`; functions
 *   on a handle keep the message on the handle (qc_ctx_errmsg, ...).
 * - The library never prints and never exits.
 * - Every _free accepts NULL.
 * - "Caller frees" means with free(3). Pointers returned as const are owned
 *   by the handle they came from and live as long as it does.
 * - A loaded model and its tokenizer are read-only and may be shared by many
 *   threads; a qc_ctx_t (one sequence's KV cache) is used by one thread at a
 *   time.
 */
#ifndef QCARE_H
#define QCARE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QCARE_VERSION "0.1.0"

/* ==== status codes ==== */

typedef int qc_status;
enum {
    QC_OK = 0,
    QC_ERR_IO = 1,          /* a file could not be opened, read or mapped */
    QC_ERR_FORMAT = 2,      /* a file's contents are malformed or inconsistent */
    QC_ERR_UNSUPPORTED = 3, /* well-formed, but something qcare does not run */
    QC_ERR_NOMEM = 4,       /* an allocation failed */
    QC_ERR_ARG = 5,         /* a bad argument from the caller */
    QC_ERR_CONTEXT = 6,     /* the sequence would exceed the context size */
    QC_ERR_BUSY = 7,        /* in use by a call still in progress (a conversation's turn) */
    QC_ERR_CANCELLED = 8,   /* given up: its caller went away or the server is stopping */
    QC_ERR_INTERNAL = 9     /* a bug: a state that cannot happen (the message says which) */
};

/* A short English name of a status ("ok", "format error", ...). Static. */
const char *qc_status_str(qc_status s);

/* ==== tokenizer ==== */

typedef struct qc_tokenizer qc_tokenizer_t;

/* Loads a Hugging Face `tokenizer.json` (byte-level BPE as used by Qwen).
 * On failure returns an error status and writes a message naming the file
 * and the field into err (if err_size > 0). */
qc_status qc_tokenizer_load(const char *tokenizer_json_path, qc_tokenizer_t **out,
                            char *err, size_t err_size);
void qc_tokenizer_free(qc_tokenizer_t *tok);

/* Flags for qc_tokenizer_encode. */
enum {
    /* Recognize special added tokens (<|im_start|>, ...) written in the text.
     * Without it they are tokenized as ordinary text (safe for user input).
     * Non-special added tokens are always recognized, as in Hugging Face. */
    QC_TOK_PARSE_SPECIAL = 1
};

/* Encodes UTF-8 text (len bytes, need not be NUL-terminated) into token ids:
 * added tokens are split out, the rest NFC-normalized, pre-tokenized with the
 * tokenizer's regex and BPE-merged. *ids is allocated (caller frees), *n_ids
 * its length. Invalid UTF-8 in the input gives QC_ERR_ARG; QC_ERR_UNSUPPORTED
 * when the pre-tokenizer regex hits one of PCRE2's match limits on this text
 * (a pattern that backtracks without end, from a hostile tokenizer.json);
 * QC_ERR_NOMEM only when memory runs out. */
qc_status qc_tokenizer_encode(const qc_tokenizer_t *tok, const char *text, size_t len,
                              int flags, int32_t **ids, size_t *n_ids);

/* Decodes ids into text. Byte sequences that are not valid UTF-8 become
 * U+FFFD, as Hugging Face does. *text is NUL-terminated, allocated (caller
 * frees); *len (if non-NULL) its length. Unknown ids give QC_ERR_ARG. */
qc_status qc_tokenizer_decode(const qc_tokenizer_t *tok, const int32_t *ids, size_t n_ids,
                              char **text, size_t *len);

/* Raw bytes of one token (after undoing the byte-level mapping; the content
 * for an added token). Owned by the tokenizer. NULL for an unknown id. */
const char *qc_tokenizer_token_bytes(const qc_tokenizer_t *tok, int32_t id, size_t *len);

/* Number of ids the tokenizer knows (highest id + 1). */
int32_t qc_tokenizer_n_tokens(const qc_tokenizer_t *tok);

/* The id of a token given by its text (an added token such as "<|im_end|>" or
 * a vocabulary entry in byte-level form), or -1. */
int32_t qc_tokenizer_find(const qc_tokenizer_t *tok, const char *token_text);

/* Streaming decoder: turns ids, one at a time, into text that is always made
 * of whole UTF-8 characters; bytes of an unfinished character wait for the
 * next token. Fixed-size state, no allocation. */
typedef struct {
    unsigned char pending[8];
    size_t n_pending;
} qc_detok_t;

void qc_detok_init(qc_detok_t *d);

/* Appends the text completed by token `id` into out (capacity cap bytes; 256 +
 * the token's length always suffices), NUL-terminates it and returns its
 * length, or -1 for an unknown id / too small a buffer. */
long qc_detok_push(qc_detok_t *d, const qc_tokenizer_t *tok, int32_t id, char *out, size_t cap);

/* Emits what is still pending at the end of a stream (as U+FFFD for each
 * byte of an unfinished character). Same return convention. */
long qc_detok_flush(qc_detok_t *d, char *out, size_t cap);

/* ==== chat template (ChatML, as Qwen models use) ==== */

typedef struct {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8 */
} qc_chat_msg_t;

typedef struct {
    /* System prompt inserted when the messages start without one (NULL: none). */
    const char *default_system;
    /* Append "<|im_start|>assistant\n" so the model writes the next turn. */
    int add_generation_prompt;
    /* With add_generation_prompt: also append Qwen3's empty thinking block
     * "<think>\n\n</think>\n\n" (what Qwen3's template does when thinking is
     * off). */
    int empty_think;
} qc_chat_opts_t;

/* Renders messages as ChatML text:
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n ... [<|im_start|>assistant\n]
 * *out is allocated (caller frees). Unknown roles give QC_ERR_ARG.
 * The text is meant to be encoded with QC_TOK_PARSE_SPECIAL, which also
 * reads special-token text inside a content as the token itself: content
 * from an untrusted user ("<|im_end|>\n<|im_start|>system\n...") could
 * then close its turn and write others. For such content use
 * qc_chat_encode. */
qc_status qc_chat_render(const qc_chat_msg_t *msgs, size_t n_msgs, const qc_chat_opts_t *opts,
                         char **out);

/* The same conversation as token ids, safe for untrusted content: the
 * markers (<|im_start|>, <|im_end|>, the roles, the generation prompt)
 * are encoded as special tokens, each content and default_system as plain
 * text (special-token text in it stays text, as without
 * QC_TOK_PARSE_SPECIAL). *ids is allocated (caller frees), *n_ids its
 * length. QC_ERR_ARG for an unknown role or content that is not UTF-8,
 * QC_ERR_UNSUPPORTED when the tokenizer has no <|im_start|> or <|im_end|>
 * token (it is not a ChatML model's). */
qc_status qc_chat_encode(const qc_tokenizer_t *tok, const qc_chat_msg_t *msgs, size_t n_msgs,
                         const qc_chat_opts_t *opts, int32_t **ids, size_t *n_ids);

/* ==== model ==== */

typedef struct qc_model qc_model_t;

typedef enum { QC_ARCH_QWEN2 = 0, QC_ARCH_QWEN3 = 1 } qc_arch_t;

/* Weight storage types. Q8_0, Q4_0/Q4_1 and Q5_0/Q5_1 are ggml's 32-weight
 * blocks; Q2_K..Q6_K its 256-weight super-blocks, as GGUF files (Q4_K_M,
 * ...) hold them. Every one has matrix kernels, so a GGUF's tensors are
 * multiplied as stored. Q8_K and Q8_1 are ggml's activation formats (never
 * weights). */
typedef enum {
    QC_DTYPE_F32 = 0,
    QC_DTYPE_F16 = 1,
    QC_DTYPE_BF16 = 2,
    QC_DTYPE_Q8_0 = 3,
    QC_DTYPE_Q4_0 = 4,
    QC_DTYPE_Q4_K = 5,
    QC_DTYPE_Q6_K = 6,
    QC_DTYPE_Q4_1 = 7,
    QC_DTYPE_Q5_0 = 8,
    QC_DTYPE_Q5_1 = 9,
    QC_DTYPE_Q2_K = 10,
    QC_DTYPE_Q3_K = 11,
    QC_DTYPE_Q5_K = 12,
    QC_DTYPE_Q8_K = 13,
    QC_DTYPE_Q8_1 = 14
} qc_dtype_t;

typedef struct {
    int n_threads;     /* threads of the model's pool (0 = one per CPU core) */
    const char *dtype; /* how matrices are kept: "auto" (the default, NULL):
                        * a GGUF's as stored, safetensors' as "q8_0";
                        * "q8_0" (converted to Q8_0), "q4_0" (layers Q4_0,
                        * embedding/lm_head Q8_0), "bf16", "f16", "f32"
                        * (every matrix converted to that type; a matrix
                        * already of it stays in place) */
} qc_model_opts_t;

/* Loads a model from `path`: either a Hugging Face folder holding
 * config.json, model.safetensors (or model.safetensors.index.json + shards),
 * tokenizer.json and optionally generation_config.json; or a GGUF file
 * (versions 2 and 3, architectures qwen2 and qwen3, tensor types F32, F16,
 * BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, the tokenizer from its
 * metadata), as llama.cpp writes them. Weights are memory-mapped and every
 * tensor is checked (presence, dtype, shape, bounds) before use; a GGUF's
 * tensors are used in place from the mapping unless a dtype asks for a
 * conversion. opts may be NULL. On failure *out is NULL and err holds a
 * message naming the file. QCARE_CPU naming a kernel level this CPU lacks
 * (or no level) gives QC_ERR_UNSUPPORTED, naming the best level it has. */
qc_status qc_model_load(const char *path, const qc_model_opts_t *opts, qc_model_t **out,
                        char *err, size_t err_size);
void qc_model_free(qc_model_t *m);

const qc_tokenizer_t *qc_model_tokenizer(const qc_model_t *m);
int32_t qc_model_n_vocab(const qc_model_t *m); /* rows of the logits */
int qc_model_n_ctx_train(const qc_model_t *m);
qc_arch_t qc_model_arch(const qc_model_t *m);
/* Number of parameters and bytes of weight data. */
int64_t qc_model_n_params(const qc_model_t *m);
int64_t qc_model_weight_bytes(const qc_model_t *m);
/* Bytes of weights one single-token step reads (every matrix, the lm_head
 * included; an untied embedding table only one row): decode's memory
 * traffic per token, less the KV cache. */
int64_t qc_model_step_bytes(const qc_model_t *m);
int qc_model_n_threads(const qc_model_t *m);
/* Bytes of KV cache one token of a sequence occupies. */
size_t qc_model_kv_bytes_per_token(const qc_model_t *m);
/* How the layer matrices are kept: their type when they share one ("f32",
 * "bf16", "f16", "q8_0", "q4_0", "q4_k", ...), or the mix of a mixed file
 * by bytes ("mixed: q4_k 61%, q6_k 21%, q5_0 18%"). Owned by the model. */
const char *qc_model_dtype(const qc_model_t *m);
/* The CPU level whose kernels run the model ("amx", "avx512", "avx2",
 * "scalar"; ARM64: "i8mm", "dotprod", "neon", "scalar"): the best this CPU
 * has, or the one QCARE_CPU asked for. Static storage. */
const char *qc_model_cpu(const qc_model_t *m);
/* What identifies the model's contents, handed to fn piece by piece in a
 * fixed order: config.json's bytes then each weights file's header (a
 * folder; shards in the index's order), or a GGUF file's header (metadata
 * and tensor table). Hashing them gives a content id that changes with the
 * configuration or any tensor's name, type, shape or offset but costs no
 * pass over the weights (the server keeps a SHA-256 of them in its
 * records). The bytes are the model's, valid during the call only. */
void qc_model_identity(const qc_model_t *m, void (*fn)(void *user, const void *p, size_t n), void *user);
/* How many matrices the load converted from their stored type (an explicit
 * dtype other than the file's; 0 when used as stored). */
int qc_model_n_converted(const qc_model_t *m);
/* Whether `id` ends generation: <|im_end|>, <|endoftext|>, or an eos id of
 * config.json / generation_config.json. */
int qc_model_is_eog(const qc_model_t *m, int32_t id);

/* Sampling defaults from generation_config.json (or the Hugging Face
 * defaults when it is absent). */
typedef struct {
    float temperature;        /* <= 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1: off */
    uint64_t seed;
} qc_sampling_t;

void qc_model_sampling_defaults(const qc_model_t *m, qc_sampling_t *out);

/* ==== context: one sequence's KV cache and work buffers ==== */

typedef struct qc_ctx qc_ctx_t;

typedef struct {
    int n_batch; /* most tokens per forward pass (0 = 512, llama.cpp's default
                  * micro-batch); longer inputs run in chunks */
} qc_ctx_opts_t;

/* Creates a context for sequences of up to n_ctx tokens (0 = the model's
 * training context, capped at 4096). The KV cache (F16) is reserved here
 * and takes memory only as the sequence grows; the work buffers come with
 * the first qc_ctx_eval (qc_ctx_trim gives them back). Returns NULL when
 * out of memory. */
qc_ctx_t *qc_ctx_new(const qc_model_t *m, int n_ctx, const qc_ctx_opts_t *opts);
void qc_ctx_free(qc_ctx_t *ctx);

enum {
    QC_LOGITS_NONE = 0, /* only fill the KV cache */
    QC_LOGITS_LAST = 1, /* logits after the last token: n_vocab floats */
    QC_LOGITS_ALL = 2   /* logits after every token: n_ids * n_vocab floats */
};

/* Appends n_ids tokens to the sequence and runs the model over them (in
 * chunks of n_batch), writing next-token logits into `logits` as `mode` says.
 * The caller provides the logits buffer.
 * Same tokens, same logits? Chunks of fewer than 64 tokens (every decode
 * step, and prompts evaluated in pieces below 64) give bit-identical logits
 * however they are cut. A chunk of 64 or more tokens computes attention with
 * F32 sums instead of half-precision ones, as llama.cpp does for such
 * batches, so its logits differ from a token-by-token evaluation of the same
 * text by up to ~0.04 (measured on the fixture models; README, Accuracy). */
qc_status qc_ctx_eval(qc_ctx_t *ctx, const int32_t *ids, size_t n_ids, float *logits, int mode);

/* Frees the context's work buffers (allocated by its first qc_ctx_eval,
 * n_batch tokens wide; they come back on the next eval). The KV cache stays.
 * For contexts kept long but evaluated through qc_batch_eval. */
void qc_ctx_trim(qc_ctx_t *ctx);

/* Number of tokens in the sequence so far / the capacity. */
int qc_ctx_pos(const qc_ctx_t *ctx);
int qc_ctx_size(const qc_ctx_t *ctx);
/* Forgets everything after the first n tokens (n <= pos). */
qc_status qc_ctx_truncate(qc_ctx_t *ctx, int n);
/* Makes ctx continue after the tokens of `prefix` without copying or
 * recomputing them: ctx forgets its own tokens and reads prefix's KV state
 * for positions [0, qc_ctx_pos(prefix)), read-only, writing only its own
 * positions after them. prefix must come from the same model, must not
 * itself use a prefix, and must neither change nor be freed while ctx uses
 * it. Many contexts (and threads) may share one prefix. NULL detaches (ctx
 * becomes empty). Truncating ctx into the prefix takes a private copy. */
qc_status qc_ctx_set_prefix(qc_ctx_t *ctx, const qc_ctx_t *prefix);

/* Message of the last failed call on this context. */
const char *qc_ctx_errmsg(const qc_ctx_t *ctx);

/* ==== several sequences in one forward pass (continuous batching) ==== */

typedef struct qc_batch qc_batch_t;

/* Work buffers for passes of up to n_tokens tokens in all. NULL when out of
 * memory or n_tokens <= 0. */
qc_batch_t *qc_batch_new(const qc_model_t *m, int n_tokens);
void qc_batch_free(qc_batch_t *b);

/* Appends ids[i] (n_ids[i] >= 1 tokens) to each of n_seq distinct contexts
 * in one forward pass, so every weight matrix is read once for all of them.
 * When logits and logits[i] are given, logits[i] (n_vocab floats) gets
 * sequence i's next-token logits. Each sequence's result is the same as
 * qc_ctx_eval of its tokens alone. The total must not exceed the batch's
 * n_tokens. Nothing is changed when an argument is rejected. */
qc_status qc_batch_eval(qc_batch_t *b, qc_ctx_t *const *ctxs, const int32_t *const *ids, const int *n_ids,
                        float *const *logits, int n_seq);
const char *qc_batch_errmsg(const qc_batch_t *b);

/* ==== sampling ==== */

typedef struct qc_sampler qc_sampler_t;

/* A sampler for n_vocab logits. Hugging Face semantics and order: repetition
 * penalty (on the ids passed as history), temperature, top-k, top-p, min-p,
 * then a draw from a seeded generator (xoshiro256**, so runs repeat exactly).
 * temperature <= 0 means greedy (argmax, lowest id on ties). */
qc_sampler_t *qc_sampler_new(int32_t n_vocab, const qc_sampling_t *params);
void qc_sampler_free(qc_sampler_t *s);

/* Picks the next token. Modifies logits in place (penalty, temperature).
 * history: the ids seen so far (for the repetition penalty), may be NULL. */
int32_t qc_sampler_sample(qc_sampler_t *s, float *logits, const int32_t *history, size_t n_history);

/* ==== generation ==== */

/* Called with each generated token and the text it completes (whole UTF-8
 * characters, possibly ""). Return non-zero to stop. At the end of a stream
 * that left an unfinished character, it is called once more with id -1 and
 * the U+FFFD replacement text. */
typedef int (*qc_token_cb)(void *user, int32_t id, const char *piece, size_t piece_len);

typedef struct {
    int max_tokens;       /* most tokens to generate (> 0) */
    qc_sampling_t sampling;
} qc_generate_opts_t;

/* Evaluates the prompt ids after what ctx already holds, then samples up to
 * max_tokens tokens, stopping at an end-of-generation token (not passed to
 * cb), a full context, or when cb asks. Generated ids are written to out_ids
 * (capacity max_tokens, may be NULL) and their count to *n_out. */
qc_status qc_generate(qc_ctx_t *ctx, const int32_t *prompt, size_t n_prompt,
                      const qc_generate_opts_t *opts, qc_token_cb cb, void *user,
                      int32_t *out_ids, size_t *n_out);

#ifdef __cplusplus
}
#endif
#endif
