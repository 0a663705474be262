/* safety_notice.c — the urgent-care notice: what to do now, in the
 * message's language, with the numbers of the deployment's region. */
#include "care/safety.h"
#include "base/base.h"

#include <stdio.h>
#include <string.h>

/* ==== the message's language ==== */

const char *sf_language(const qc_safety_t *s, const char *text, size_t len) {
    (void)s;
    const unsigned char *t = (const unsigned char *)text;
    for (size_t i = 0; i + 2 < len; i++)
        if (t[i] >= 0xE3 && t[i] <= 0xE9) return "zh-Hans";
    return "en";
}

/* ==== numbers ==== */

qc_status sf_set_numbers(qc_safety_t *s, const char *region, const char *numbers, char *err, size_t err_size) {
    (void)s;
    if (region || numbers) return qc_seterr(err, err_size, QC_ERR_ARG, "regions and numbers are not known yet");
    return 0;
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

size_t qc_safety_notice_for(const qc_safety_t *s, const qc_safety_result_t *r, char *out, size_t cap) {
    (void)s;
    return qc_safety_notice(r ? r->kind : QC_URGENT_NONE, NULL, out, cap);
}
