/* test_safety.c — the safety net's rules on messages a person wrote for each
 * case: emergencies and self-harm (Chinese and English) must be caught with
 * the right category; ordinary worried or factual messages must not be. */
#include "care/safety.h"
#include "test.h"

#include <string.h>

typedef struct {
    const char *text;
    qc_urgent_t want;
} case_t;

static const case_t urgent[] = {
    {"I have crushing chest pain and my left arm feels numb", QC_URGENT_CARDIAC},
    {"My dad has chest pain and is sweating a lot, he looks pale", QC_URGENT_CARDIAC},
    {"胸口剧烈疼痛，还出冷汗，喘不上气", QC_URGENT_CARDIAC},
    {"我爸胸痛，疼到后背和左臂", QC_URGENT_CARDIAC},
    {"My mother's face is drooping on one side and her speech is slurred", QC_URGENT_STROKE},
    {"奶奶突然口眼歪斜，说话不清楚", QC_URGENT_STROKE},
    {"爷爷刚才一侧无力，手抬不起来", QC_URGENT_STROKE},
    {"I think my husband is having a stroke right now", QC_URGENT_STROKE},
    {"I cut my hand deeply and it won't stop bleeding", QC_URGENT_BLEEDING},
    {"伤口血流不止，按了十分钟还在流", QC_URGENT_BLEEDING},
    {"他在吐血，吐了好几口", QC_URGENT_BLEEDING},
    {"My son is choking on a grape and can't breathe", QC_URGENT_BREATHING},
    {"孩子喘不上气，嘴唇发紫", QC_URGENT_BREATHING},
    {"I was stung by a bee and my throat is closing", QC_URGENT_ANAPHYLAXIS},
    {"吃了花生过敏，现在嘴唇肿、呼吸困难", QC_URGENT_ANAPHYLAXIS},
    {"I think she is in anaphylactic shock", QC_URGENT_ANAPHYLAXIS},
    {"My toddler swallowed a battery", QC_URGENT_POISONING},
    {"I took too many pills an hour ago", QC_URGENT_POISONING},
    {"老人误服了农药", QC_URGENT_POISONING},
    {"我吃了一整瓶安眠药", QC_URGENT_POISONING},
    {"My baby is having a seizure", QC_URGENT_SEIZURE},
    {"孩子发烧抽搐，叫他也没反应", QC_URGENT_SEIZURE},
    {"He collapsed and is unresponsive", QC_URGENT_UNCONSCIOUS},
    {"我妈晕倒了叫不醒", QC_URGENT_UNCONSCIOUS},
    {"I want to kill myself", QC_URGENT_SELF_HARM},
    {"I don't want to live anymore, everything is pointless", QC_URGENT_SELF_HARM},
    {"I’ve been thinking about suicide", QC_URGENT_SELF_HARM},
    {"病治不好，我真的不想活了", QC_URGENT_SELF_HARM},
    {"活着没意思，想结束自己的生命", QC_URGENT_SELF_HARM},
    {"我有时候会割腕", QC_URGENT_SELF_HARM},
    {"ＣＨＥＳＴ　ＰＡＩＮ and SWEATING", QC_URGENT_CARDIAC}, /* full-width letters and space */
};

static const char *const ordinary[] = {
    "I have a mild headache since this morning, should I take ibuprofen?",
    "最近总是失眠，吃药也没用，感觉身体越来越差。",
    "今天的检查结果出来了,医生说恢复得很好,太开心了!",
    "我昨天做了血常规检查,白细胞数值偏高。",
    "胸口有点闷，是不是焦虑引起的？",
    "I sometimes feel short of breath when I climb stairs quickly.",
    "My grandmother had a stroke last year, how can I help her recover?",
    "奶奶去年中风了，现在怎么做康复训练？",
    "I have seasonal allergies and a runny nose.",
    "我对花粉过敏，鼻子一直痒。",
    "My son had a febrile seizure last year; is he at risk again?",
    "我没有胸痛，只是有点咳嗽。",
    "I have no chest pain, just a cough and some nausea.",
    "What's the reason my kidney numbers are high?",
    "I'm afraid of dying from this disease, I don't want to die.",
    "我不想死，我想好好治病。",
    "这病治得好慢啊!",
    "医生，我孩子发烧39度，需要去医院吗？",
    "How much blood does a blood test take?",
    "I had food poisoning last week, now I feel fine.",
    "My leg cramps at night, 晚上小腿抽筋。",
    "Thank you doctor, the medicine works well!",
};

int main(void) {
    for (size_t i = 0; i < sizeof urgent / sizeof urgent[0]; i++) {
        qc_safety_result_t r = qc_safety_check(urgent[i].text, strlen(urgent[i].text));
        CHECK(r.kind == urgent[i].want, "'%s': got %s (%s), want %s", urgent[i].text, qc_urgent_name(r.kind),
              r.term ? r.term : "-", qc_urgent_name(urgent[i].want));
    }
    for (size_t i = 0; i < sizeof ordinary / sizeof ordinary[0]; i++) {
        qc_safety_result_t r = qc_safety_check(ordinary[i], strlen(ordinary[i]));
        CHECK(r.kind == QC_URGENT_NONE, "'%s' flagged as %s by '%s'", ordinary[i], qc_urgent_name(r.kind),
              r.term ? r.term : "-");
    }
    /* Notices: marked, carry the numbers, configurable, truncation-safe. */
    char buf[1024], small[16];
    size_t n = qc_safety_notice(QC_URGENT_CARDIAC, NULL, buf, sizeof buf);
    CHECK(n > 0 && n < sizeof buf && strstr(buf, "URGENT") && strstr(buf, "120"), "default emergency notice: %s", buf);
    n = qc_safety_notice(QC_URGENT_SELF_HARM, NULL, buf, sizeof buf);
    CHECK(strstr(buf, "400-161-9995") && strstr(buf, "988"), "crisis notice carries crisis lines: %s", buf);
    qc_safety_opts_t o = {.emergency_numbers = "999 (UK)", .crisis_lines = "Samaritans 116 123"};
    qc_safety_notice(QC_URGENT_STROKE, &o, buf, sizeof buf);
    CHECK(strstr(buf, "999 (UK)") && !strstr(buf, "120"), "configured emergency number: %s", buf);
    qc_safety_notice(QC_URGENT_SELF_HARM, &o, buf, sizeof buf);
    CHECK(strstr(buf, "Samaritans 116 123"), "configured crisis line");
    n = qc_safety_notice(QC_URGENT_BLEEDING, NULL, small, sizeof small);
    CHECK(n > sizeof small && strlen(small) == sizeof small - 1, "truncated notice is terminated");
    CHECK(qc_safety_notice(QC_URGENT_NONE, NULL, buf, sizeof buf) == 0 && buf[0] == 0, "no notice when not urgent");
    /* Invalid UTF-8 does not crash and still finds ASCII phrases. */
    const char bad[] = "\xff\xfe I want to kill myself \xc3";
    CHECK(qc_safety_check(bad, sizeof bad - 1).kind == QC_URGENT_SELF_HARM, "invalid UTF-8 input");
    CHECK(qc_safety_check("", 0).kind == QC_URGENT_NONE, "empty input");
    return test_done("test_safety");
}
