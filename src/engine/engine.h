/* engine.h — internal interfaces shared by the files of src/engine/.
 * Not part of the public API; the CLI and tests may include it to reach
 * lower-level pieces (safetensors reader, config parser). */
#ifndef QC_ENGINE_H
#define QC_ENGINE_H

#include "qcare.h"
#include "base/base.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* errors (qc_seterr, qc_vseterr_at), the clock, buffers: base/base.h */

/* ==== model configuration (config.json + generation_config.json) ==== */

#define QC_MAX_EOS 8
#define QC_MAX_EOG 16
#define QC_MAX_OWNED 4096 /* converted tensors a model may own */

typedef struct {
    qc_arch_t arch;
    int n_embd;      /* hidden_size */
    int n_ff;        /* intermediate_size */
    int n_layer;     /* num_hidden_layers */
    int n_head;      /* num_attention_heads */
    int n_head_kv;   /* num_key_value_heads (defaults to n_head) */
    int head_dim;    /* head_dim (Qwen3) or n_embd / n_head */
    int n_vocab;     /* vocab_size */
    int n_ctx_train; /* max_position_embeddings */
    float rope_theta;
    float rms_eps;
    int tie_embeddings; /* tie_word_embeddings (lm_head used anyway when present) */
    int qkv_bias;       /* Qwen2: always; Qwen3: attention_bias */
    int qk_norm;        /* Qwen3 */
    int bos_id;         /* -1 when absent */
    int eos_ids[QC_MAX_EOS];
    int n_eos;
} qc_config_t;

/* Parses config.json. Fails with a message naming the file and field on
 * malformed JSON, a missing/invalid field, or an architecture other than
 * Qwen2ForCausalLM / Qwen3ForCausalLM (the message names it). */
qc_status qc_config_load(const char *path, qc_config_t *cfg, char *err, size_t err_size);

/* Checks the head layout of a filled configuration (head_dim even and <= 512,
 * heads * head_dim bounded, heads a multiple of KV heads); the message names
 * `path`. */
qc_status qc_config_check(const char *path, const qc_config_t *cfg, char *err, size_t err_size);

typedef struct {
    qc_sampling_t sampling;
    int eos_ids[QC_MAX_EOS];
    int n_eos;
} qc_genconfig_t;

/* Parses generation_config.json into gen. A missing file is not an error
 * (Hugging Face defaults: greedy unless do_sample, temperature 1, top_k 50,
 * top_p 1, repetition_penalty 1); a malformed one is. */
qc_status qc_genconfig_load(const char *path, qc_genconfig_t *gen, char *err, size_t err_size);
/* The Hugging Face defaults qc_genconfig_load uses when the file is absent. */
void qc_genconfig_defaults(qc_genconfig_t *gen);

/* ==== safetensors (memory-mapped, bounds-checked) ==== */

typedef struct {
    const char *name;
    qc_dtype_t dtype;
    int ndim;
    int64_t shape[4];
    const void *data; /* inside the mapping */
    size_t nbytes;
} qc_st_tensor_t;

typedef struct qc_st qc_st_t;

/* Opens the weights of a Hugging Face folder: model.safetensors, or
 * model.safetensors.index.json and every shard it names. Each file is mmapped
 * read-only; its JSON header is parsed and every tensor's dtype
 * (F32/F16/BF16; others rejected by name), shape, and data_offsets are
 * checked: begin <= end, end within the file, nbytes == product(shape) *
 * dtype size, with overflow-safe arithmetic. */
qc_status qc_st_open_dir(const char *dir, qc_st_t **out, char *err, size_t err_size);
/* Opens one .safetensors file (same checks). */
qc_status qc_st_open_file(const char *path, qc_st_t **out, char *err, size_t err_size);
void qc_st_close(qc_st_t *st);
const qc_st_tensor_t *qc_st_find(const qc_st_t *st, const char *name);
size_t qc_st_count(const qc_st_t *st);
const qc_st_tensor_t *qc_st_at(const qc_st_t *st, size_t i);
/* The files of the set (shards in the index's order) and the header of
 * file i: its first 8 + N bytes (the length, then the JSON), in the map. */
size_t qc_st_n_files(const qc_st_t *st);
const void *qc_st_header(const qc_st_t *st, size_t i, size_t *len);

/* ==== weights as the forward pass sees them ==== */

/* A 2-D weight [rows = out][cols = in] (row-major), or a vector (rows = 1).
 * A layer matrix may also have a panel: its weights rearranged at load for
 * the chosen CPU level (kernels_impl.h, qc_panel_ops_t), which then
 * multiplies and dequantizes it; data is NULL when the panel replaced a
 * converted buffer, and otherwise the file's mapping (its pages dropped). */
struct qc_panel_ops;
typedef struct {
    const void *data;
    qc_dtype_t dtype;
    int64_t rows, cols;
    const void *panel;
    const struct qc_panel_ops *panel_ops;
} qc_tensor_t;

typedef struct {
    qc_tensor_t attn_norm;         /* [n_embd] */
    qc_tensor_t wq, wk, wv;        /* [n_head*head_dim][n_embd], [n_head_kv*head_dim][n_embd] x2 */
    qc_tensor_t bq, bk, bv;        /* [n_head*head_dim], [n_head_kv*head_dim] x2 (qkv_bias) */
    qc_tensor_t q_norm, k_norm;    /* [head_dim] (qk_norm) */
    qc_tensor_t wo;                /* [n_embd][n_head*head_dim] */
    qc_tensor_t ffn_norm;          /* [n_embd] */
    qc_tensor_t w_gate, w_up;      /* [n_ff][n_embd] */
    qc_tensor_t w_down;            /* [n_embd][n_ff] */
} qc_layer_t;

struct qc_model {
    qc_config_t cfg;
    qc_genconfig_t gen;
    qc_tensor_t tok_embd; /* [n_vocab][n_embd] */
    qc_tensor_t out_norm; /* [n_embd] */
    qc_tensor_t lm_head;  /* [n_vocab][n_embd]; the embedding when tied */
    qc_layer_t *layers;   /* [n_layer] */
    qc_st_t *st;             /* a Hugging Face folder's weights, or NULL */
    struct qc_gguf *gguf;    /* a GGUF file's mapping, or NULL */
    qc_tokenizer_t *tok;
    char *config_json;       /* config.json's bytes (a folder), for qc_model_identity; or NULL */
    size_t config_len;
    int64_t n_params;
    int64_t weight_bytes;
    int32_t eog[QC_MAX_EOG]; /* ids that end generation (filled by qc_model_load) */
    int n_eog;
    struct qc_pool *pool;    /* the threads every forward pass of this model uses */
    void *owned[QC_MAX_OWNED]; /* buffers of converted tensors */
    int n_owned;
    int n_converted;           /* matrices whose stored type was changed at load */
    char dtype_desc[160];      /* qc_model_dtype's text */
};

/* Fills m->tok_embd, m->out_norm, m->lm_head and m->layers (allocated) from
 * the safetensors set, checking each tensor's presence, dtype and shape
 * against m->cfg; the message names the tensor and both shapes. */
qc_status qc_weights_bind(qc_model_t *m, const qc_st_t *st, char *err, size_t err_size);

/* Where qc_weights_bind_from finds a tensor by its Hugging Face name: the
 * tensor (shape in Hugging Face order, [rows, cols]; may be built in *buf),
 * or NULL when absent. label (label_cap bytes, preset to the Hugging Face
 * name) may be given the name the file itself uses, for messages. */
typedef const qc_st_tensor_t *(*qc_tensor_find_fn)(const void *src, const char *hf_name, qc_st_tensor_t *buf,
                                                  char *label, size_t label_cap);

/* qc_weights_bind over any source: the same checks, and any dtype whose
 * rows fill whole blocks (a GGUF's block types, quants.h). */
qc_status qc_weights_bind_from(qc_model_t *m, qc_tensor_find_fn find, const void *src, char *err,
                               size_t err_size);

/* ==== numeric helpers ==== */

static inline float qc_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

/* IEEE half to float, exact for every value (subnormals, inf, nan). */
float qc_f16_to_f32(uint16_t h);
/* float to BF16 with round-to-nearest-even (NaN kept quiet). */
uint16_t qc_f32_to_bf16(float f);

/* Element size in bytes of a dtype (0 for the block types, quants.h). */
size_t qc_dtype_size(qc_dtype_t t);
const char *qc_dtype_name(qc_dtype_t t);

/* ==== small file helpers ==== */

/* The most a whole-file read takes: 64 MiB. The JSON files a model folder
 * holds (config.json, generation_config.json, tokenizer.json at ~7 MB,
 * tokenizer_config.json, model.safetensors.index.json) are far smaller. */
#define QC_READ_FILE_MAX (64 << 20)

/* Reads a whole regular file of at most QC_READ_FILE_MAX bytes
 * (NUL-terminated, caller frees); NULL with err on failure: missing,
 * unreadable, not a regular file (a device, FIFO or folder: refused without
 * reading), or too big. */
char *qc_read_file(const char *path, size_t *len, char *err, size_t err_size);
/* dir + "/" + name into a fresh string (caller frees); NULL on OOM. */
char *qc_path_join(const char *dir, const char *name);

#endif
