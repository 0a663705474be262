/* prompts.h — the prompts qcare gives its one model: the emotion analyst
 * and the urgency rater (classification by label scoring, judge.c) and the
 * health adviser (reply). */
#ifndef QC_PROMPTS_H
#define QC_PROMPTS_H

#include "qcare_care.h"

/* The classification prompt is split where the cacheable part ends:
 *   prefix (system + few-shot turns, identical for every message)
 *   + "<|im_start|>user\n" + MESSAGE + "<|im_end|>\n<|im_start|>assistant\n"
 *   [+ "<think>\n\n</think>\n\n" for Qwen3] + LABEL
 * qc_prompt_classify_prefix renders the prefix; qc_prompt_classify_turn the
 * per-message part (both ChatML text with special tokens, caller frees). */
char *qc_prompt_classify_prefix(void);
char *qc_prompt_classify_turn(const char *message, int qwen3);

/* The label words the analyst writes, in qc_emotion_name order, and its
 * instruction (the system turn of the prefix above; static). */
extern const char *const qc_prompt_labels[3];
const char *qc_prompt_analyst_system(void);

/* The urgency rater (the model's second opinion beside the safety rules):
 * its labels (0 "urgent", 1 "not urgent"), its instruction (static) and
 * its bilingual few-shot examples, in the same prompt layout. */
extern const char *const qc_prompt_risk_labels[2];
const char *qc_prompt_risk_system(void);
size_t qc_prompt_n_risk_examples(void);
void qc_prompt_risk_example(size_t i, const char **text, int *label);

/* The reply's system prompt, told the detected emotion (0 positive,
 * 1 negative, 2 neutral; -1 unknown). Caller frees. */
char *qc_prompt_reply_system(int emotion);
/* Just the tone hint for an emotion (static; "" for -1), as used in later
 * turns of a conversation. */
const char *qc_prompt_reply_tone(int emotion);

/* Number of few-shot examples and one of them (for tests: balance, order). */
size_t qc_prompt_n_examples(void);
void qc_prompt_example(size_t i, const char **text, int *label);

#endif
