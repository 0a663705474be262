/* safety.c — the deterministic safety net.
 *
 * A message is urgent when one rule matches. A rule is a category and up to
 * three groups of phrases; it matches when every group has a phrase in the
 * text that is not directly negated. Rules are checked in table order (self-
 * harm first: its notice carries the crisis lines). English phrases match
 * whole words ("son" is not in "reason"); a trailing '*' lets a phrase be a
 * word's beginning ("allerg*": allergy, allergic). The text is normalized
 * first: NFKC (full-width letters become ASCII), case folded, curly
 * apostrophes made straight, whitespace runs made one space.
 *
 * The rules aim at what a triage nurse would send to emergency care at once,
 * and deliberately need a warning sign where a symptom alone is common and
 * usually benign: chest pain needs a warning sign (radiating pain, sweating,
 * breathlessness, fainting, crushing pressure); an allergy needs swelling of
 * the throat/tongue/face or trouble breathing; a seizure needs to be a
 * child's or happening now, and not be described as past. Ordinary worry
 * ("I have a mild headache", "最近总是失眠", "胸口有点闷") matches nothing.
 * tests/test_safety.c lists the messages each rule must and must not catch. */
#include "care/safety.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ==== phrases ==== */

static const char *const self_harm[] = {
    "kill myself", "killing myself", "end my life", "ending my life", "take my own life", "suicid*", "want to die", "wanna die", "don't want to live", "do not want to live", "no reason to live",
    "better off dead", "hurt myself", "harm myself", "self-harm", "self harm", "cut myself", "cutting myself",
    "自杀", "想死", "不想活", "活不下去", "活着没意思", "活着没有意义", "结束自己", "结束生命", "轻生", "割腕",
    "跳楼", "伤害自己", "自残", "了结自己", "寻死", NULL};

static const char *const chest[] = {
    "chest pain*", "chest pressure", "chest tightness", "pain in my chest", "pain in the chest", "chest hurts",
    "heart attack", "胸痛", "胸口痛", "胸口疼", "心口痛", "心口疼", "胸部疼", "胸部痛", "胸闷", "胸口闷",
    "胸口压", "胸口", "胸部", "心口", "心梗", "心肌梗", "心脏病发作", NULL};

static const char *const cardiac_warning[] = {
    "left arm", "my arm", "his arm", "her arm", "jaw", "sweat*", "short of breath", "shortness of breath",
    "can't breathe", "cannot breathe", "hard to breathe", "nausea", "vomit*", "faint*", "passed out", "dizzy",
    "crushing", "squeezing", "radiat*", "spreading", "severe", "冷汗", "出汗", "大汗", "左臂", "手臂", "胳膊",
    "下巴", "后背", "呼吸困难", "喘不上气", "喘不过气", "恶心", "呕吐", "头晕", "晕倒", "昏倒", "压榨", "放射",
    "濒死", "剧烈", "剧痛", NULL};

static const char *const stroke_signs[] = {
    "face drooping", "face is drooping", "drooping face", "face droop", "slurred speech", "slurring",
    "speech is slurred", "can't speak", "cannot speak", "can't talk", "trouble speaking", "one side of",
    "one-sided weakness", "sudden numbness", "sudden weakness", "arm weakness", "口眼歪斜", "嘴歪", "口角歪斜",
    "说话不清", "口齿不清", "说不出话", "一侧无力", "一侧麻木", "半身不遂", "半边身子", "一边手脚", "偏瘫",
    "突然看不见", NULL};

static const char *const stroke_word[] = {"stroke", "中风", "脑卒中", NULL};
static const char *const acute[] = {"sudden", "right now", "just now", "happening", "突然", "刚刚", "刚才",
                                    "现在", "正在", NULL};

static const char *const bleeding[] = {
    "bleeding heavily", "heavy bleeding", "won't stop bleeding", "can't stop the bleeding",
    "bleeding won't stop", "bleeding that won't stop", "severe bleeding", "spurting", "lot of blood",
    "vomiting blood", "coughing up blood", "大出血", "血流不止", "止不住血", "血止不住", "喷血", "大量出血",
    "流了很多血", "吐血", "呕血", "咳血", NULL};

static const char *const breathing[] = {
    "can't breathe", "cannot breathe", "can not breathe", "unable to breathe", "struggling to breathe",
    "gasping for air", "choking", "lips are blue", "lips turning blue", "turning blue", "喘不上气",
    "喘不过气", "无法呼吸", "不能呼吸", "窒息", "嘴唇发紫", "嘴唇青紫", "噎住", "憋得喘不", NULL};

static const char *const allergy[] = {"allerg*", "bee sting", "stung", "过敏", "蜂蛰", "蜂蜇", NULL};
static const char *const allergy_warning[] = {
    "throat is closing", "throat closing", "throat swelling", "swollen throat", "throat is swelling",
    "tongue swelling", "swollen tongue", "face swelling", "face is swelling", "swollen face", "lips swelling",
    "trouble breathing", "difficulty breathing", "hard to breathe", "can't breathe", "cannot breathe",
    "喉咙肿", "喉头水肿", "嗓子肿", "舌头肿", "脸肿", "嘴唇肿", "呼吸困难", "喘不上气", "喘不过气", NULL};
static const char *const anaphylaxis[] = {"anaphyla*", "过敏性休克", NULL};

static const char *const poisoning[] = {
    "overdose", "overdosed", "too many pills", "whole bottle", "drank bleach", "swallowed bleach",
    "rat poison", "pesticide", "antifreeze", "swallowed a battery", "误服", "吞服", "吃了一整瓶", "一整瓶",
    "过量服用", "吃多了药", "吃了很多药", "吃了很多安眠药", "农药", "敌敌畏", "百草枯", "老鼠药", "喝了消毒液",
    "喝了漂白", "吞了电池", NULL};

static const char *const seizure[] = {"seizure*", "convuls*", "惊厥", "抽搐", "抽风",
                                      "癫痫发作", NULL};
static const char *const seizure_now_or_child[] = {
    "child", "kid", "baby", "son", "daughter", "toddler", "won't stop", "not stopping", "right now", "still",
    "unconscious", "孩子", "小孩", "宝宝", "儿子", "女儿", "婴儿", "不停", "还在", "一直", "昏迷", "现在",
    "正在", NULL};
static const char *const past[] = {"last year", "last month", "years ago", "when i was", "history of",
                                   "去年", "上个月", "以前", "小时候", "几年前", NULL};

static const char *const unconscious[] = {
    "unconscious", "won't wake up", "not waking up", "unresponsive", "not breathing", "no pulse",
    "stopped breathing", "昏迷", "叫不醒", "没有意识", "失去意识", "没有呼吸", "没呼吸了", "心跳停", NULL};

/* ==== rules ==== */

typedef struct {
    qc_urgent_t kind;
    const char *const *need[3]; /* every group must match */
    const char *const *unless;  /* no match when one of these is present */
} rule_t;

static const rule_t rules[] = {
    {QC_URGENT_SELF_HARM, {self_harm}, NULL},
    {QC_URGENT_UNCONSCIOUS, {unconscious}, NULL},
    {QC_URGENT_CARDIAC, {chest, cardiac_warning}, NULL},
    {QC_URGENT_STROKE, {stroke_signs}, NULL},
    {QC_URGENT_STROKE, {stroke_word, acute}, past},
    {QC_URGENT_ANAPHYLAXIS, {anaphylaxis}, NULL},
    {QC_URGENT_ANAPHYLAXIS, {allergy, allergy_warning}, NULL},
    {QC_URGENT_BREATHING, {breathing}, NULL},
    {QC_URGENT_BLEEDING, {bleeding}, NULL},
    {QC_URGENT_POISONING, {poisoning}, NULL},
    {QC_URGENT_SEIZURE, {seizure, seizure_now_or_child}, past},
};

/* Words that negate the phrase right after them. */
static const char *const negations[] = {"no ", "not ", "don't ", "didn't ", "without ", "never ", "没有",
                                        "没", "不", "无", "未", NULL};

/* ==== matching ==== */

/* Whether the phrase at text + at is directly preceded by a negation. */
static int negated(const char *text, size_t at) {
    for (const char *const *n = negations; *n; n++) {
        size_t k = strlen(*n);
        if (at >= k && !memcmp(text + at - k, *n, k)) return 1;
    }
    return 0;
}

static int is_word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* Whether phrase p (possibly ending in '*') occurs at text + at as a whole
 * word (ASCII phrases) and is not negated. */
static int match_at(const char *text, size_t at, const char *p, size_t k, int prefix) {
    if (is_word_char(p[0]) && at > 0 && is_word_char(text[at - 1])) return 0;
    if (!prefix && is_word_char(p[k - 1]) && is_word_char(text[at + k])) return 0;
    return !negated(text, at);
}

/* The first phrase of group found un-negated in text, or NULL. */
static const char *find_any(const char *text, const char *const *group) {
    char buf[64];
    for (const char *const *p = group; *p; p++) {
        size_t k = strlen(*p);
        int prefix = k > 1 && (*p)[k - 1] == '*';
        if (prefix) k--;
        if (k >= sizeof buf) continue;
        memcpy(buf, *p, k);
        buf[k] = 0;
        for (const char *s = strstr(text, buf); s; s = strstr(s + 1, buf))
            if (match_at(text, (size_t)(s - text), buf, k, prefix)) return *p;
    }
    return NULL;
}

/* NFKC + case fold + straight apostrophes + single spaces. NULL when out of
 * memory; invalid UTF-8 is folded byte-wise (ASCII only) instead. */
static char *normalize(const char *text, size_t len) {
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &mapped,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
    const char *src = n >= 0 ? (const char *)mapped : text;
    size_t srclen = n >= 0 ? (size_t)n : len;
    char *out = malloc(srclen + 1);
    if (!out) {
        free(mapped);
        return NULL;
    }
    size_t o = 0;
    int space = 0;
    for (size_t i = 0; i < srclen; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == 0xE2 && i + 2 < srclen && (unsigned char)src[i + 1] == 0x80 &&
            ((unsigned char)src[i + 2] == 0x98 || (unsigned char)src[i + 2] == 0x99)) {
            c = '\''; /* U+2018 / U+2019 */
            i += 2;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (!space && o > 0) out[o++] = ' ';
            space = 1;
            continue;
        }
        space = 0;
        out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[o] = 0;
    free(mapped);
    return out;
}

qc_safety_result_t qc_safety_check(const char *text, size_t len) {
    qc_safety_result_t r = {QC_URGENT_NONE, NULL};
    char *t = normalize(text, len);
    if (!t) return r;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0] && !r.kind; i++) {
        const rule_t *rule = &rules[i];
        if (rule->unless && find_any(t, rule->unless)) continue;
        const char *first = NULL;
        int ok = 1;
        for (int g = 0; g < 3 && rule->need[g] && ok; g++) {
            const char *hit = find_any(t, rule->need[g]);
            if (!hit) ok = 0;
            else if (!first) first = hit;
        }
        if (ok) r = (qc_safety_result_t){rule->kind, first};
    }
    free(t);
    return r;
}

const char *qc_urgent_name(qc_urgent_t kind) {
    static const char *const names[] = {"none",        "cardiac",   "stroke",  "bleeding",    "breathing",
                                        "anaphylaxis", "poisoning", "seizure", "unconscious", "self-harm"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "unknown";
}

/* ==== the notice ==== */

size_t qc_safety_notice(qc_urgent_t kind, const qc_safety_opts_t *opts, char *out, size_t cap) {
    if (kind == QC_URGENT_NONE) {
        if (cap) out[0] = 0;
        return 0;
    }
    const char *em = opts && opts->emergency_numbers ? opts->emergency_numbers
                                                     : "120 (China), 911 (US), 112 (EU) or your local emergency number";
    const char *crisis = opts && opts->crisis_lines
                             ? opts->crisis_lines
                             : "全国心理援助热线 400-161-9995, 北京心理危机干预中心 010-82951332, US 988";
    int n;
    if (kind == QC_URGENT_SELF_HARM)
        n = snprintf(out, cap,
                     "⚠️ 紧急 / URGENT: 如果您有伤害自己的想法，请立即联系心理危机热线：%s；如有生命危险请拨打 %s。"
                     "您并不孤单，现在就找身边信任的人陪着您。 If you are thinking of harming yourself, please "
                     "contact a crisis line now (%s) or call %s. You are not alone.",
                     crisis, em, crisis, em);
    else
        n = snprintf(out, cap,
                     "⚠️ 紧急 / URGENT: 您描述的情况可能危及生命，请立即拨打急救电话 %s，或尽快前往最近的急诊。"
                     "不要等待线上回复。 What you describe may be a medical emergency: call %s now or go to the "
                     "nearest emergency department. Do not wait for an online reply.",
                     em, em);
    return n < 0 ? 0 : (size_t)n;
}
