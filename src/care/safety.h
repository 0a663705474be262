/* safety.h — the safety net: a deterministic rule set (Chinese and English)
 * that recognizes messages describing an emergency or self-harm, so an
 * urgent-care notice can be shown before any model text. It does not use the
 * model; the rules are documented in safety.c. */
#ifndef QC_SAFETY_H
#define QC_SAFETY_H

#include <stddef.h>

typedef enum {
    QC_URGENT_NONE = 0,
    QC_URGENT_CARDIAC,     /* chest pain with warning signs */
    QC_URGENT_STROKE,      /* face drooping, slurred speech, one-sided weakness */
    QC_URGENT_BLEEDING,    /* severe or uncontrolled bleeding */
    QC_URGENT_BREATHING,   /* cannot breathe, choking, blue lips */
    QC_URGENT_ANAPHYLAXIS, /* allergic reaction with swelling / breathing trouble */
    QC_URGENT_POISONING,   /* overdose, swallowed poison or chemicals */
    QC_URGENT_SEIZURE,     /* a seizure happening now, or a child's */
    QC_URGENT_UNCONSCIOUS, /* unresponsive, not breathing */
    QC_URGENT_SELF_HARM    /* suicidal intent or self-harm */
} qc_urgent_t;

typedef struct {
    qc_urgent_t kind;
    const char *term; /* the phrase that decided it (static), NULL when none */
} qc_safety_result_t;

/* Numbers shown in the notice; NULL fields take the defaults (120 / 911 /
 * 112 for emergencies; the Chinese national psychological assistance line
 * 400-161-9995, Beijing crisis line 010-82951332 and US 988 for crises). */
typedef struct {
    const char *emergency_numbers;
    const char *crisis_lines;
} qc_safety_opts_t;

/* Checks UTF-8 text (len bytes) against the rules. Case, full-width forms,
 * apostrophes and spacing do not matter; a phrase does not count when it is
 * negated a few words before ("no chest pain", "没有胸痛", "I don't want to
 * hurt myself", "我不是想伤害自己"), told as past or recovered ("I used to
 * self-harm", "以前中过风"), or asked about as a risk ("会增加自杀风险吗").
 * The rules and these cue families are described at the top of safety.c. */
qc_safety_result_t qc_safety_check(const char *text, size_t len);

/* "cardiac", "stroke", ... ("none" for QC_URGENT_NONE). */
const char *qc_urgent_name(qc_urgent_t kind);

/* Writes the urgent notice for kind (bilingual, marked "⚠️ URGENT / 紧急")
 * into out (NUL-terminated, truncated to cap). Returns the length it needs
 * (like snprintf); 0 for QC_URGENT_NONE. opts may be NULL. */
size_t qc_safety_notice(qc_urgent_t kind, const qc_safety_opts_t *opts, char *out, size_t cap);

#endif
