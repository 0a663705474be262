/* gguf_write.h — converting a Hugging Face Qwen folder to a GGUF file that
 * llama.cpp loads (internal; used by `qcare convert` and the tests). */
#ifndef QC_GGUF_WRITE_H
#define QC_GGUF_WRITE_H

#include "engine/engine.h"

/* Called as the tensor data is written: fraction in [0, 1], non-decreasing,
 * 1 exactly once at the end; at most a few hundred calls per file. */
typedef void (*qc_progress_fn)(void *user, double fraction);

/* Converts the Hugging Face folder hf_dir (config.json, model.safetensors or
 * an index + shards, tokenizer.json, optionally tokenizer_config.json) into a
 * GGUF v3 file at out_path, laid out as llama.cpp's converter and
 * llama-quantize write it:
 *
 * - metadata: general.architecture ("qwen2"/"qwen3"), general.name (the
 *   folder's name), the {arch}.* hyper-parameters, the gpt2/qwen2 tokenizer
 *   (tokens, token types, merges, special ids, add_bos_token, chat template),
 *   general.quantization_version, general.file_type;
 * - tensors in llama-quantize's order (global ones, then layer by layer, each
 *   group sorted by name), data aligned to 32 bytes;
 * - type: 1-D tensors (norms, biases) F32, matrices `type`; with Q8_0/Q4_0
 *   the output matrix (output.weight, or token_embd.weight when the embedding
 *   is tied) is Q8_0, as llama-quantize makes it when its columns do not fill
 *   Q6_K blocks (when they do, llama-quantize writes Q6_K, which qcare cannot
 *   quantize: Q8_0 is kept, larger and more exact).
 *
 * The weights are streamed one row at a time (memory stays at the size of
 * the tokenizer, not the model) into a temporary file next to out_path that
 * is renamed to out_path once complete; on any failure it is removed and
 * out_path is left untouched. progress may be NULL. */
qc_status qc_gguf_convert(const char *hf_dir, const char *out_path, qc_dtype_t type,
                          qc_progress_fn progress, void *user, char *err, size_t err_size);

/* llama.cpp's LLAMA_FTYPE value for a file whose matrices are `type`
 * (ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_BF16 32). */
uint32_t qc_gguf_file_type(qc_dtype_t type);

#endif
