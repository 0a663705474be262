/* prompts.c — the text of qcare's prompts.
 *
 * The analyst prompt is a cold, exact instruction plus balanced few-shot
 * turns in a fixed order (Chinese and English; sarcasm, politely phrased
 * worry, mixed feelings, negation, plain questions), so that the model's
 * next word after "<|im_start|>assistant\n" is one of three labels. The
 * label's log-probability is read from the model; nothing is generated. */
#include "care/prompts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const qc_prompt_labels[3] = {"positive", "negative", "neutral"};

static const char analyst_system[] =
    "You are an emotion analyst for messages that patients send to an online doctor. "
    "Read the patient's message and answer with exactly one word: positive, negative or neutral.\n"
    "- positive: relief, gratitude, satisfaction, hope, good news.\n"
    "- negative: worry, fear, pain, frustration, sadness, anger, disappointment — also when it is phrased "
    "politely or as sarcasm (\"这病治得好慢啊!\" is negative).\n"
    "- neutral: factual statements and plain questions without a clear feeling.\n"
    "For mixed feelings, answer with the feeling that dominates the end of the message.\n"
    "你是患者情绪分析员：只回答一个词 positive、negative 或 neutral。";

/* Balanced (4 of each label), alternating labels and languages. */
static const struct {
    const char *text;
    int label;
} examples[] = {
    {"手术很成功，终于可以回家了，谢谢医生！", 0},
    {"吃了三天药还是烧得厉害，我好担心孩子。", 1},
    {"请问做胃镜之前需要空腹多久？", 2},
    {"Thank you so much, my blood pressure is finally back to normal.", 0},
    {"这病治得好慢啊!都快两个月了。", 1},
    {"What is the normal range for fasting blood sugar?", 2},
    {"虽然还有点咳嗽，但比上周好多了，挺欣慰的。", 0},
    {"Sorry to bother you again, but I'm still not sure whether this lump is serious...", 1},
    {"我的化验单上甘油三酯是2.1，这个数值正常吗？", 2},
    {"The pain is not bad at all today, I slept through the night!", 0},
    {"医生说没什么大问题，可我还是睡不着，总觉得不对劲。", 1},
    {"I am 34 weeks pregnant and would like to know when to pack my hospital bag.", 2},
};

size_t qc_prompt_n_examples(void) { return sizeof examples / sizeof examples[0]; }

const char *qc_prompt_analyst_system(void) { return analyst_system; }

/* ==== the urgency rater ====
 * Written for this prompt, not taken from data/safety-*.jsonl (those sets
 * measure the rules and this opinion; tuning on them would hide misses).
 * Balanced, alternating labels and languages; the "not urgent" turns are
 * the hard ones: a past event, a question about a risk, a symptom that is
 * unpleasant but not dangerous, worry without warning signs. */

const char *const qc_prompt_risk_labels[2] = {"urgent", "not urgent"};

static const char risk_system[] =
    "You are a triage nurse reading messages that patients send to an online doctor. Decide whether the "
    "message describes an emergency happening now that needs emergency care at once (for example chest pain "
    "with sweating or breathlessness, stroke signs, severe bleeding, trouble breathing, a severe allergic "
    "reaction, poisoning or an overdose, a seizure, someone unresponsive, or thoughts of suicide or "
    "self-harm). Answer with exactly \"urgent\" or \"not urgent\". Questions about risks, past events that "
    "are over, and ordinary symptoms are not urgent.\n"
    "你是分诊护士：判断消息是否描述正在发生、需要立即急诊的紧急情况，只回答 urgent 或 not urgent。";

static const struct {
    const char *text;
    int label;
} risk_examples[] = {
    {"我爸刚才突然说话含糊，右边胳膊抬不起来了，怎么办？", 0},
    {"去年做过心脏支架，现在每天吃阿司匹林，需要一直吃吗？", 1},
    {"My daughter swallowed a handful of my sleeping pills about ten minutes ago.", 0},
    {"I've had a runny nose and a mild sore throat since Monday.", 1},
    {"被蜜蜂蛰了以后嘴唇和喉咙都肿起来了，呼吸有点费劲。", 0},
    {"孕妇可以吃布洛芬吗？听说会增加风险。", 1},
    {"I don't see the point anymore and I've been thinking about ending my life tonight.", 0},
    {"I fainted once last month after standing up too fast; I've been fine since.", 1},
};

size_t qc_prompt_n_risk_examples(void) { return sizeof risk_examples / sizeof risk_examples[0]; }

void qc_prompt_risk_example(size_t i, const char **text, int *label) {
    *text = risk_examples[i].text;
    *label = risk_examples[i].label;
}

const char *qc_prompt_risk_system(void) { return risk_system; }

void qc_prompt_example(size_t i, const char **text, int *label) {
    *text = examples[i].text;
    *label = examples[i].label;
}

/* Appends s to the growing buffer *b (length *n, capacity *cap); -1 on OOM. */
static int append(char **b, size_t *n, size_t *cap, const char *s) {
    size_t k = strlen(s);
    if (*n + k + 1 > *cap) {
        size_t nc = (*n + k + 1) * 2;
        char *nb = realloc(*b, nc);
        if (!nb) return -1;
        *b = nb;
        *cap = nc;
    }
    memcpy(*b + *n, s, k + 1);
    *n += k;
    return 0;
}

char *qc_prompt_classify_prefix(void) {
    char *b = NULL;
    size_t n = 0, cap = 0;
    int bad = append(&b, &n, &cap, "<|im_start|>system\n") || append(&b, &n, &cap, analyst_system) ||
              append(&b, &n, &cap, "<|im_end|>\n");
    for (size_t i = 0; i < qc_prompt_n_examples() && !bad; i++)
        bad = append(&b, &n, &cap, "<|im_start|>user\n") || append(&b, &n, &cap, examples[i].text) ||
              append(&b, &n, &cap, "<|im_end|>\n<|im_start|>assistant\n") ||
              append(&b, &n, &cap, qc_prompt_labels[examples[i].label]) || append(&b, &n, &cap, "<|im_end|>\n");
    if (bad) {
        free(b);
        return NULL;
    }
    return b;
}

char *qc_prompt_classify_turn(const char *message, int qwen3) {
    char *b = NULL;
    size_t n = 0, cap = 0;
    if (append(&b, &n, &cap, "<|im_start|>user\n") || append(&b, &n, &cap, message) ||
        append(&b, &n, &cap, "<|im_end|>\n<|im_start|>assistant\n") ||
        (qwen3 && append(&b, &n, &cap, "<think>\n\n</think>\n\n"))) {
        free(b);
        return NULL;
    }
    return b;
}

/* The tone hint for an emotion (static; "" when unknown). */
const char *qc_prompt_reply_tone(int emotion) {
    static const char *const tone[] = {
        "The patient sounds positive (relieved or grateful): share their good news warmly and keep it brief. "
        "患者情绪积极：真诚地为他们高兴，简短回应。",
        "The patient sounds worried, upset or in pain: acknowledge the feeling first, calmly and kindly, then "
        "help. 患者情绪消极：先体谅和安抚情绪，再给出建议。",
        "The patient asks plainly: answer clearly and to the point. 患者语气平和：清楚、直接地回答。",
    };
    return emotion >= 0 && emotion < 3 ? tone[emotion] : "";
}

char *qc_prompt_reply_system(int emotion) {
    const char *base =
        "You are a warm, professional and concise health adviser replying to a patient online. "
        "Reply in the patient's language. Give practical, safe general advice; do not make a diagnosis or "
        "prescribe; recommend seeing a doctor in person when symptoms are serious, persistent or unclear, and "
        "emergency care for warning signs. Keep the reply under 150 words.\n"
        "你是一位温暖、专业、简洁的健康顾问。用患者的语言回答，给出安全实用的一般建议，不做诊断、不开处方；"
        "症状严重、持续或不明确时建议线下就医，出现危险信号时建议立即急诊。\n";
    const char *t = qc_prompt_reply_tone(emotion);
    size_t len = strlen(base) + strlen(t) + 1;
    char *s = malloc(len);
    if (s) snprintf(s, len, "%s%s", base, t);
    return s;
}
