/* safety_notice.c — the urgent-care notice: what to do now, for the kind
 * of presentation, in the message's language, with the numbers of the
 * deployment's region (docs/safety.md cites each default).
 *
 *   emergency kinds   call the emergency number or go to the emergency
 *                     department now; for a child, do not wait and watch;
 *   self-harm         the crisis line first, the emergency number if hurt
 *                     or in danger;
 *   poisoning         the emergency number when unconscious, fitting or
 *                     not breathing well, otherwise the poison centre
 *                     where the region has one; keep the packet;
 *   abuse             the police when in danger now, a safe place, the
 *                     support line where the region has one. */
#include "care/safety.h"
#include "base/base.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

/* ==== the message's language ==== */

/* zh-Hant when it has more traditional characters (the sources of the
 * rules' folds) than characters only simplified writing uses (their
 * targets); zh-Hans for other Chinese text; en otherwise. */
const char *sf_language(const qc_safety_t *s, const char *text, size_t len) {
    size_t cjk = 0, trad = 0, simp = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0) {
            i++;
            continue;
        }
        i += (size_t)k;
        if (c < 0x3400 || c > 0x9FFF) continue;
        cjk++;
        for (size_t f = 0; s && f < s->n_folds; f++) {
            if (!s->folds[f].script) continue;
            if (s->folds[f].from == (uint32_t)c) {
                trad++;
                break;
            }
            if (s->folds[f].to == (uint32_t)c) {
                simp++;
                break;
            }
        }
    }
    if (!cjk) return "en";
    return trad > simp ? "zh-Hant" : "zh-Hans";
}

/* ==== numbers ==== */

typedef struct {
    const char *region, *emergency, *police, *crisis, *poison, *abuse;
} region_t;

/* The documented defaults (docs/safety.md, "Numbers"). NULL: the region
 * has no such public line; the notice then says what to do without it. */
static const region_t regions[] = {
    {"CN", "120", "110", "12356（全国心理援助热线）、010-82951332（北京心理危机研究与干预中心）", NULL,
     "12338（全国妇联妇女维权公益服务热线）"},
    {"HK", "999", "999", "The Samaritans 2896 0000, Samaritan Befrienders Hong Kong 2389 2222", NULL,
     "2343 2255 (Social Welfare Department hotline)"},
    {"TW", "119", "110", "1925（安心專線）、1995（生命線）", "02-2871-7121（臺北榮總毒藥物防治諮詢中心）", "113（保護專線）"},
    {"US", "911", "911", "988 (Suicide & Crisis Lifeline, call or text)", "1-800-222-1222 (Poison Help)",
     "1-800-799-7233 (National Domestic Violence Hotline)"},
    {"EU", "112", "112", "116 123 (emotional support, where available)", NULL, NULL},
    {"UK", "999", "999", "Samaritans 116 123", "NHS 111", "0808 2000 247 (National Domestic Abuse Helpline)"},
};

/* Without a region: the bilingual numbers the safety net always had. */
static const char *const default_emergency = "120 (China), 911 (US), 112 (EU) or your local emergency number";
static const char *const default_police = "110 (China), 911 (US), 112 (EU) or your local police";
static const char *const default_crisis =
    "全国心理援助热线 12356 / 400-161-9995, 北京心理危机干预中心 010-82951332, US 988";

qc_status sf_set_numbers(qc_safety_t *s, const char *region, const char *numbers, char *err, size_t err_size) {
    if (region) {
        const region_t *r = NULL;
        for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++)
            if (!strcasecmp(regions[i].region, region)) r = &regions[i];
        if (!r) return qc_seterr(err, err_size, QC_ERR_ARG, "unknown region '%s' (CN, HK, TW, US, EU or UK)", region);
        s->region = r->region;
        s->emergency = r->emergency, s->police = r->police, s->crisis = r->crisis;
        s->poison = r->poison, s->abuse = r->abuse;
    }
    if (!numbers) return 0;
    /* key=value pairs; a value runs to the next ",key=" (so it may hold
     * commas of its own: "crisis=12356, 010-82951332"). */
    static const char *const keys[] = {"emergency", "police", "crisis", "poison", "abuse"};
    const char *p = numbers;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *eq = strchr(p, '=');
        int key = -1;
        for (int k = 0; eq && k < 5; k++)
            if ((size_t)(eq - p) == strlen(keys[k]) && !strncmp(p, keys[k], (size_t)(eq - p))) key = k;
        if (key < 0)
            return qc_seterr(err, err_size, QC_ERR_ARG,
                             "emergency numbers: '%.*s' is not KEY=NUMBER with KEY one of emergency, police, crisis, "
                             "poison, abuse", (int)strcspn(p, ","), p);
        const char *v = eq + 1, *end = v;
        for (;;) { /* the value ends before a ",key=" */
            const char *c = strchr(end, ',');
            if (!c) {
                end = v + strlen(v);
                break;
            }
            const char *n = c + 1;
            while (*n == ' ') n++;
            int next = 0;
            for (int k = 0; k < 5; k++)
                if (!strncmp(n, keys[k], strlen(keys[k])) && n[strlen(keys[k])] == '=') next = 1;
            if (next) {
                end = c;
                break;
            }
            end = c + 1;
        }
        while (*v == ' ') v++;
        size_t n = (size_t)(end - v);
        while (n > 0 && v[n - 1] == ' ') n--;
        if (!n) return qc_seterr(err, err_size, QC_ERR_ARG, "emergency numbers: %s= has no number", keys[key]);
        char *val = sf_strndup(s, v, n);
        if (!val) return qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
        const char **slot[] = {&s->emergency, &s->police, &s->crisis, &s->poison, &s->abuse};
        *slot[key] = val;
        p = end;
    }
    return 0;
}

/* ==== the notice ==== */

typedef struct {
    const char *emergency,       /* the urgent notice */
        *child_kind,             /* a baby's or child's danger signs */
        *child_note,             /* added when an emergency concerns a child */
        *self_harm,              /* crisis, emergency */
        *poison_centre,          /* emergency, poison centre */
        *poison_none,            /* emergency */
        *abuse_line,             /* police, abuse line */
        *abuse_none,             /* police */
        *model;                  /* the model's opinion, kind unknown: emergency, crisis */
} texts_t;

static const texts_t en = {
    "⚠️ URGENT: what you describe may be a medical emergency. Call %s now or go to the nearest emergency "
    "department. Do not wait for an online reply.",
    "⚠️ URGENT: a baby or child with these signs needs to be seen now. Call %s or go to the nearest emergency "
    "department. Do not wait for an online reply.",
    " A child can get worse quickly: go now, do not wait and watch.",
    "⚠️ URGENT: if you are thinking of harming yourself, please contact a crisis line now: %s. If you have "
    "already hurt yourself or are in danger, call %s. You are not alone; stay with someone you trust.",
    "⚠️ URGENT: this may be poisoning or an overdose. If the person is unconscious, fitting or struggling to "
    "breathe, call %s now. Otherwise call the poison centre now: %s. Keep the packet or bottle with you and do "
    "not wait for symptoms.",
    "⚠️ URGENT: this may be poisoning or an overdose. Call %s now or go to the nearest emergency department, "
    "and take the packet or bottle with you. Do not wait for symptoms.",
    "⚠️ URGENT: if you or a child are in danger now, call %s (police). Get to a safe place if you can, and call "
    "%s for confidential support. Anyone who is hurt needs emergency care.",
    "⚠️ URGENT: if you or a child are in danger now, call %s (police). Get to a safe place if you can. Anyone "
    "who is hurt needs emergency care.",
    "⚠️ URGENT: what you describe may be an emergency. Call %s now or go to the nearest emergency department; "
    "if you are thinking of harming yourself, contact a crisis line: %s. Do not wait for an online reply.",
};

static const texts_t zh_hans = {
    "⚠️ 紧急：您描述的情况可能危及生命，请立即拨打急救电话 %s，或尽快前往最近的急诊。不要等待线上回复。",
    "⚠️ 紧急：宝宝或孩子出现这些危险信号，需要立即就医。请拨打急救电话 %s，或马上去最近的急诊（儿科急诊）。"
    "不要等待线上回复。",
    "孩子的情况变化很快，请现在就去医院，不要在家观察等待。",
    "⚠️ 紧急：如果您有伤害自己的想法，请现在就联系心理危机热线：%s；如果已经伤害了自己或有生命危险，请立即拨打 "
    "%s。您并不孤单，请找身边信任的人陪着您。",
    "⚠️ 紧急：可能是中毒或药物过量。如果人已昏迷、抽搐或呼吸困难，请立即拨打急救电话 %s；否则请马上拨打中毒"
    "咨询电话 %s。把药盒或瓶子带在身边，不要等症状出现。",
    "⚠️ 紧急：可能是中毒或药物过量。请立即拨打急救电话 %s 或马上去最近的急诊，并带上药盒或瓶子。不要等症状出现。",
    "⚠️ 紧急：如果您或孩子现在有危险，请立即报警（%s）。尽量先到安全的地方，也可以拨打 %s 寻求帮助。"
    "有人受伤需要马上急救。",
    "⚠️ 紧急：如果您或孩子现在有危险，请立即报警（%s）。尽量先到安全的地方。有人受伤需要马上急救。",
    "⚠️ 紧急：您描述的情况可能需要紧急处理，请立即拨打急救电话 %s 或前往最近的急诊；如果您有伤害自己的想法，"
    "请联系心理危机热线：%s。不要等待线上回复。",
};

static const texts_t zh_hant = {
    "⚠️ 緊急：您描述的情況可能危及生命，請立即撥打急救電話 %s，或盡快前往最近的急診。不要等待線上回覆。",
    "⚠️ 緊急：寶寶或孩子出現這些危險徵象，需要立即就醫。請撥打急救電話 %s，或馬上前往最近的急診（兒科急診）。"
    "不要等待線上回覆。",
    "孩子的情況變化很快，請現在就去醫院，不要在家觀察等待。",
    "⚠️ 緊急：如果您有傷害自己的想法，請現在就聯絡心理危機專線：%s；如果已經傷害了自己或有生命危險，請立即撥打 "
    "%s。您並不孤單，請找身邊信任的人陪著您。",
    "⚠️ 緊急：可能是中毒或藥物過量。如果人已昏迷、抽搐或呼吸困難，請立即撥打急救電話 %s；否則請馬上撥打毒物"
    "諮詢電話 %s。把藥盒或瓶子帶在身邊，不要等症狀出現。",
    "⚠️ 緊急：可能是中毒或藥物過量。請立即撥打急救電話 %s 或馬上前往最近的急診，並帶上藥盒或瓶子。不要等症狀出現。",
    "⚠️ 緊急：如果您或孩子現在有危險，請立即報警（%s）。盡量先到安全的地方，也可以撥打 %s 尋求協助。"
    "有人受傷需要馬上急救。",
    "⚠️ 緊急：如果您或孩子現在有危險，請立即報警（%s）。盡量先到安全的地方。有人受傷需要馬上急救。",
    "⚠️ 緊急：您描述的情況可能需要緊急處理，請立即撥打急救電話 %s 或前往最近的急診；如果您有傷害自己的想法，"
    "請聯絡心理危機專線：%s。不要等待線上回覆。",
};

static size_t finish(int n) { return n < 0 ? 0 : (size_t)n; }

size_t qc_safety_notice_for(const qc_safety_t *s, const qc_safety_result_t *r, char *out, size_t cap) {
    if (!r || r->kind == QC_URGENT_NONE) {
        if (cap) out[0] = 0;
        return 0;
    }
    if (!s) s = qc_safety_current();
    const char *em = s && s->emergency ? s->emergency : default_emergency;
    const char *police = s && s->police ? s->police : default_police;
    const char *crisis = s && s->crisis ? s->crisis : default_crisis;
    const char *poison = s ? s->poison : NULL, *abuse = s ? s->abuse : NULL;
    const texts_t *t = r->lang && !strcmp(r->lang, "zh-Hant") ? &zh_hant
                       : r->lang && !strncmp(r->lang, "zh", 2) ? &zh_hans
                                                              : &en;
    int n;
    switch (r->kind) {
    case QC_URGENT_SELF_HARM: return finish(snprintf(out, cap, t->self_harm, crisis, em));
    case QC_URGENT_MODEL: return finish(snprintf(out, cap, t->model, em, crisis));
    case QC_URGENT_ABUSE:
        return finish(abuse ? snprintf(out, cap, t->abuse_line, police, abuse) : snprintf(out, cap, t->abuse_none, police));
    case QC_URGENT_CHILD: return finish(snprintf(out, cap, t->child_kind, em));
    case QC_URGENT_POISONING:
        n = poison ? snprintf(out, cap, t->poison_centre, em, poison) : snprintf(out, cap, t->poison_none, em);
        break;
    default: n = snprintf(out, cap, t->emergency, em); break;
    }
    if (n < 0 || !r->child) return finish(n);
    size_t used = (size_t)n < cap ? (size_t)n : (cap ? cap - 1 : 0);
    int m = snprintf(out + used, cap > used ? cap - used : 0, "%s", t->child_note);
    return m < 0 ? (size_t)n : (size_t)n + (size_t)m;
}

/* The older notice by kind alone: bilingual, as before. */
size_t qc_safety_notice(qc_urgent_t kind, const qc_safety_opts_t *opts, char *out, size_t cap) {
    if (kind == QC_URGENT_NONE) {
        if (cap) out[0] = 0;
        return 0;
    }
    const qc_safety_t *s = qc_safety_current();
    const char *em = opts && opts->emergency_numbers ? opts->emergency_numbers
                     : s && s->emergency             ? s->emergency
                                                     : default_emergency;
    const char *crisis = opts && opts->crisis_lines ? opts->crisis_lines : s && s->crisis ? s->crisis : default_crisis;
    if (kind == QC_URGENT_MODEL) /* no kind known: both the emergency numbers and the crisis lines */
        return finish(snprintf(out, cap,
                               "⚠️ 紧急 / URGENT: 您描述的情况可能需要紧急处理，请立即拨打急救电话 %s 或前往最近的急诊；"
                               "如果您有伤害自己的想法，请联系心理危机热线：%s。不要等待线上回复。 What you describe may "
                               "be an emergency: call %s now or go to the nearest emergency department; if you are "
                               "thinking of harming yourself, contact a crisis line (%s). Do not wait for an online "
                               "reply.",
                               em, crisis, em, crisis));
    if (kind == QC_URGENT_SELF_HARM)
        return finish(snprintf(out, cap,
                               "⚠️ 紧急 / URGENT: 如果您有伤害自己的想法，请立即联系心理危机热线：%s；如有生命危险请拨打 %s。"
                               "您并不孤单，现在就找身边信任的人陪着您。 If you are thinking of harming yourself, please "
                               "contact a crisis line now (%s) or call %s. You are not alone.",
                               crisis, em, crisis, em));
    return finish(snprintf(out, cap,
                           "⚠️ 紧急 / URGENT: 您描述的情况可能危及生命，请立即拨打急救电话 %s，或尽快前往最近的急诊。"
                           "不要等待线上回复。 What you describe may be a medical emergency: call %s now or go to the "
                           "nearest emergency department. Do not wait for an online reply.",
                           em, em));
}
