/* hf_names.h — GGUF tensor names to Hugging Face ones, for the tests that
 * compare a GGUF with a safetensors folder (test_convert, test_kquants). */
#ifndef QC_TEST_HF_NAMES_H
#define QC_TEST_HF_NAMES_H

#include <stdio.h>
#include <string.h>

/* The Hugging Face name of a GGUF tensor of a Qwen2/Qwen3 model ("?" when
 * unknown), written independently of the writer's and the reader's tables. */
static inline void test_hf_name(const char *gguf, char *out, size_t cap) {
    static const char *const map[][2] = {
        {"token_embd.weight", "model.embed_tokens.weight"}, {"output_norm.weight", "model.norm.weight"},
        {"output.weight", "lm_head.weight"},                {"attn_norm.weight", "input_layernorm.weight"},
        {"attn_q.weight", "self_attn.q_proj.weight"},       {"attn_k.weight", "self_attn.k_proj.weight"},
        {"attn_v.weight", "self_attn.v_proj.weight"},       {"attn_q.bias", "self_attn.q_proj.bias"},
        {"attn_k.bias", "self_attn.k_proj.bias"},           {"attn_v.bias", "self_attn.v_proj.bias"},
        {"attn_output.weight", "self_attn.o_proj.weight"},  {"ffn_norm.weight", "post_attention_layernorm.weight"},
        {"ffn_gate.weight", "mlp.gate_proj.weight"},        {"ffn_up.weight", "mlp.up_proj.weight"},
        {"ffn_down.weight", "mlp.down_proj.weight"},        {"attn_q_norm.weight", "self_attn.q_norm.weight"},
        {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    };
    int layer = -1, off = 0;
    const char *rest = gguf;
    if (sscanf(gguf, "blk.%d.%n", &layer, &off) == 1 && off > 0) rest = gguf + off;
    snprintf(out, cap, "?");
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(rest, map[i][0])) {
            if (layer >= 0) snprintf(out, cap, "model.layers.%d.%s", layer, map[i][1]);
            else snprintf(out, cap, "%s", map[i][1]);
        }
}

#endif
