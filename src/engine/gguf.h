/* gguf.h — reading GGUF files (llama.cpp's model format), internal.
 *
 * A GGUF file is: magic "GGUF", version (u32), tensor count (u64), metadata
 * count (u64); the metadata key/value pairs (key: u64 length + bytes; value
 * type: u32; value); the tensor infos (name; n_dims: u32; ne[n_dims]: u64,
 * ne[0] the innermost, contiguous dimension; ggml type: u32; offset: u64
 * from the data section); padding to `general.alignment` (default 32); the
 * tensor data. Everything is little-endian.
 *
 * qc_gguf_open maps a file read-only and checks every byte of the header
 * before anything may use it (see gguf.c for the list); afterwards the
 * metadata and tensor tables below can be read without further bounds
 * checks. The enums and sizes here are shared with the writer. */
#ifndef QC_GGUF_H
#define QC_GGUF_H

#include "engine/engine.h"

#define QC_GGUF_MAGIC "GGUF"
#define QC_GGUF_VERSION 3            /* what the writer writes; 2 is read too */
#define QC_GGUF_DEFAULT_ALIGNMENT 32 /* bytes, when general.alignment is absent */
#define QC_GGUF_MAX_DIMS 4
#define QC_GGUF_MAX_NAME 255         /* bytes of a tensor name (llama.cpp: < 64) */
#define QC_GGUF_MAX_KEY 65535        /* bytes of a metadata key */

/* Metadata value types (gguf_type). */
typedef enum {
    QC_GGUF_UINT8 = 0,
    QC_GGUF_INT8 = 1,
    QC_GGUF_UINT16 = 2,
    QC_GGUF_INT16 = 3,
    QC_GGUF_UINT32 = 4,
    QC_GGUF_INT32 = 5,
    QC_GGUF_FLOAT32 = 6,
    QC_GGUF_BOOL = 7,
    QC_GGUF_STRING = 8,  /* u64 length + bytes (not NUL-terminated) */
    QC_GGUF_ARRAY = 9,   /* u32 element type + u64 count + elements */
    QC_GGUF_UINT64 = 10,
    QC_GGUF_INT64 = 11,
    QC_GGUF_FLOAT64 = 12,
    QC_GGUF_TYPE_COUNT = 13
} qc_gguf_type_t;

/* Size in bytes of one value of a fixed-size type; 0 for STRING and ARRAY
 * (and for unknown types). */
size_t qc_gguf_type_size(uint32_t type);
/* "uint8", ..., "float64"; "?" for unknown. Static. */
const char *qc_gguf_type_name(uint32_t type);

/* ggml tensor types that qcare reads or writes (ggml_type ids). */
typedef enum {
    QC_GGML_F32 = 0,
    QC_GGML_F16 = 1,
    QC_GGML_Q4_0 = 2,
    QC_GGML_Q4_1 = 3,
    QC_GGML_Q5_0 = 6,
    QC_GGML_Q5_1 = 7,
    QC_GGML_Q8_0 = 8,
    QC_GGML_Q8_1 = 9,
    QC_GGML_Q2_K = 10,
    QC_GGML_Q3_K = 11,
    QC_GGML_Q4_K = 12,
    QC_GGML_Q5_K = 13,
    QC_GGML_Q6_K = 14,
    QC_GGML_Q8_K = 15,
    QC_GGML_BF16 = 30
} qc_ggml_type_t;

/* For a ggml type id: its qcare dtype, elements per block and bytes per
 * block. Returns 1 for the weight types above (not the activation formats
 * Q8_1/Q8_K), 0 for any other id. */
int qc_ggml_type_info(uint32_t ggml_type, qc_dtype_t *dtype, int64_t *block_elems, size_t *block_bytes);
/* The ggml type id of a qcare dtype. */
uint32_t qc_ggml_type_of(qc_dtype_t t);
/* ggml's name of a type id ("q4_K", "iq2_xxs", ...), also for those qcare
 * does not read; NULL for ids ggml does not define. Static. */
const char *qc_ggml_type_name(uint32_t ggml_type);

/* ==== a parsed file ==== */

typedef struct {
    const char *key;           /* NUL-terminated copy */
    uint32_t type;             /* qc_gguf_type_t */
    uint32_t arr_type;         /* element type, for ARRAY */
    uint64_t n;                /* elements, for ARRAY; 1 otherwise */
    const unsigned char *data; /* the value in the mapping (for STRING: its
                                * length field; for ARRAY: the first element) */
    size_t nbytes;             /* bytes of the value as stored (without the
                                * type and, for arrays, the type/count fields) */
} qc_gguf_kv_t;

typedef struct {
    const char *name;      /* NUL-terminated copy */
    uint32_t ggml_type;    /* qc_ggml_type_t */
    qc_dtype_t dtype;      /* the same, as qcare names it */
    int n_dims;            /* 1..4 */
    int64_t ne[QC_GGUF_MAX_DIMS]; /* ne[0] innermost; unused dims 1 */
    int64_t n_elems;
    uint64_t offset;       /* from the start of the data section */
    size_t nbytes;
    const void *data;      /* inside the mapping */
} qc_gguf_tensor_t;

typedef struct qc_gguf {
    char *path;
    const unsigned char *map; /* the whole file, read-only */
    size_t size;
    uint32_t version;
    uint32_t alignment;
    size_t data_offset;       /* start of the data section in the file */
    qc_gguf_kv_t *kv;
    size_t n_kv;
    qc_gguf_tensor_t *tensors;
    size_t n_tensors;
    char *names;              /* arena of the keys and tensor names */
    uint32_t *kv_hash, *t_hash; /* open addressing over indices, UINT32_MAX empty */
    size_t kv_mask, t_mask;
} qc_gguf_t;

/* Maps `path` and checks its header: magic, version (2 or 3), counts within
 * what the file size allows, every key (non-empty, <= 65535 bytes, unique),
 * every value (known type, strings and arrays - nested ones too, to depth 8 -
 * inside the file), general.alignment (a u32 power of two, <= 65536), every
 * tensor info (unique name, 1-4 dimensions each >= 1, element count and byte
 * size without overflow, a type qcare reads, rows that fill whole blocks,
 * offset aligned, data inside the file). A bad file gives QC_ERR_FORMAT (or
 * QC_ERR_UNSUPPORTED for a valid feature qcare lacks, such as version 1 or a
 * tensor type like IQ2_XXS) and a message naming the file and what is wrong.
 * Memory allocated is proportional to the entries actually present. */
qc_status qc_gguf_open(const char *path, qc_gguf_t **out, char *err, size_t err_size);
void qc_gguf_close(qc_gguf_t *g);

const qc_gguf_kv_t *qc_gguf_find(const qc_gguf_t *g, const char *key);
const qc_gguf_tensor_t *qc_gguf_tensor(const qc_gguf_t *g, const char *name);

/* Typed getters. Each returns QC_OK and the value; QC_ERR_ARG when the key
 * is absent (out untouched, no message); QC_ERR_FORMAT with a message naming
 * the file and key when it has another type. get_int accepts every integer
 * type (and bool), get_float FLOAT32 and FLOAT64, get_str a STRING (*s points
 * into the mapping, not NUL-terminated, *len bytes). */
qc_status qc_gguf_get_int(const qc_gguf_t *g, const char *key, int64_t *out, char *err, size_t err_size);
qc_status qc_gguf_get_float(const qc_gguf_t *g, const char *key, double *out, char *err, size_t err_size);
qc_status qc_gguf_get_str(const qc_gguf_t *g, const char *key, const char **s, size_t *len, char *err,
                          size_t err_size);
/* An array of `elem_type` elements: *kv on success. */
qc_status qc_gguf_get_array(const qc_gguf_t *g, const char *key, uint32_t elem_type, const qc_gguf_kv_t **kv,
                            char *err, size_t err_size);

/* Reads the next string of a string array: *pos is a byte offset into
 * kv->data, starting at 0 (checked at open, so no bounds to check here).
 * Returns the string (not NUL-terminated) and its length in *len. */
const char *qc_gguf_arr_str(const qc_gguf_kv_t *kv, size_t *pos, size_t *len);
/* Element i of an integer array, as int64 (uint64 values above INT64_MAX
 * come back negative). */
int64_t qc_gguf_arr_int(const qc_gguf_kv_t *kv, uint64_t i);

/* ==== models ==== */

/* The GGUF (llama.cpp) name of a Hugging Face tensor name of a Qwen model:
 * "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight",
 * "model.embed_tokens.weight" -> "token_embd.weight", "lm_head.weight" ->
 * "output.weight", ... Returns 0 and writes a NUL-terminated name into out,
 * or -1 for a name without a counterpart or too long for cap. */
int qc_gguf_tensor_name(const char *hf_name, char *out, size_t cap);

/* Builds the tokenizer of a GGUF file from its tokenizer.ggml.* metadata
 * (gguf_vocab.c: model "gpt2", pre "qwen2": the Qwen regex and NFC, as
 * tokenizer.json says; tokens in byte-level form; token types 1 normal,
 * 3 control = special added token, 4 user-defined = added token, 5 unused =
 * skipped; merges "a b"), through the same constructor as qc_tokenizer_load
 * (vocab.h), so both give the same ids. Messages name the file and the key. */
qc_status qc_tokenizer_from_gguf(const qc_gguf_t *g, qc_tokenizer_t **out, char *err, size_t err_size);

/* Fills m->cfg, m->gen, the weights (in place from the mapping), m->tok and
 * m->gguf from the GGUF file at path. On failure the model may hold part of
 * that; qc_model_free releases it. */
qc_status qc_gguf_model_init(qc_model_t *m, const char *path, char *err, size_t err_size);

#endif
