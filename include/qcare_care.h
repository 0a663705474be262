/* qcare_care.h — public C API of qcare's care pipeline, on top of the engine
 * (qcare.h): emotion by label scoring, the safety net's urgent-care notice,
 * careful streamed replies, conversations, label scoring for any labels
 * (classification), evaluation metrics.
 *
 * Link: -lqcare_care -lqcare -lpcre2-8 -lutf8proc -ljansson -lm -lpthread
 *
 * ==== Using it ====
 *
 *   qc_care_t *care;
 *   qc_care_new(m, NULL, &care, err, sizeof err);      // m: a loaded qc_model_t
 *   qc_emotion_t e;
 *   qc_care_emotion(care, msg, strlen(msg), &e);        // e.label, e.probs[3]
 *   qc_safety_result_t s = qc_safety_check(msg, strlen(msg));
 *   if (s.kind) { qc_safety_notice_for(NULL, &s, buf, sizeof buf); puts(buf); }
 *   qc_care_chat(care, "session-1", msg, e.label, NULL, 256, on_token, user);
 *   qc_care_free(care);
 *
 * The conventions of qcare.h hold here too.
 */
#ifndef QCARE_CARE_H
#define QCARE_CARE_H

#include "qcare.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== safety net (src/care/safety*.c, data/safety-rules.txt) ====
 * A deterministic rule set (Chinese and English) that recognizes messages
 * describing an emergency or self-harm, so an urgent-care notice can be shown
 * before any model text, and a second reader after it: a lexicon of weights
 * (an n-gram logistic regression over the notice kinds) that weighs every
 * word of a message no rule matched. Neither uses the model. Both are data:
 * text files (formats in docs/safety.md) compiled into the library at build
 * time and replaceable at run time (qc_safety_new; `qcare safety-train`
 * writes the weights). */

/* The kind of notice a message needs. A small fixed set: the presentation
 * (which red flag of which guideline) is the result's `presentation`. */
typedef enum {
    QC_URGENT_NONE = 0,
    QC_URGENT_CARDIAC,     /* chest pain with warning signs */
    QC_URGENT_STROKE,      /* face drooping, slurred speech, one-sided weakness */
    QC_URGENT_BLEEDING,    /* severe or uncontrolled bleeding */
    QC_URGENT_BREATHING,   /* cannot breathe, choking, blue lips */
    QC_URGENT_ANAPHYLAXIS, /* allergic reaction with swelling / breathing trouble */
    QC_URGENT_POISONING,   /* overdose, swallowed poison or chemicals: the poison centre where one is configured */
    QC_URGENT_SEIZURE,     /* a seizure happening now, or a child's */
    QC_URGENT_UNCONSCIOUS, /* unresponsive, not breathing */
    QC_URGENT_SELF_HARM,   /* suicidal intent or self-harm: the crisis line first */
    /* added with the rules file (2026-12) */
    QC_URGENT_EMERGENCY,   /* another emergency presentation (thunderclap headache, sepsis, DKA, ...) */
    QC_URGENT_CHILD,       /* a baby's or child's danger signs */
    QC_URGENT_ABUSE,       /* violence or abuse disclosed: safety now, police, support lines */
    QC_URGENT_MODEL        /* never from the rules: the model's urgency opinion, kind unknown (its notice
                            * gives the emergency numbers and the crisis lines) */
} qc_urgent_t;

typedef struct {
    qc_urgent_t kind;
    const char *term;         /* the phrase that decided it, NULL when none */
    const char *presentation; /* the rule's presentation id ("cardiac.acs", ...), NULL when none */
    const char *lang;         /* the message's language: "en", "zh-Hans" or "zh-Hant" (never NULL) */
    int child;                /* the message is about a baby or child */
} qc_safety_result_t;
/* term and presentation belong to the rule set that gave them (static for
 * the compiled-in rules). */

/* Numbers shown in the notice; NULL fields take the defaults (120 / 911 /
 * 112 for emergencies; the Chinese national psychological assistance line
 * 400-161-9995, Beijing crisis line 010-82951332 and US 988 for crises). */
typedef struct {
    const char *emergency_numbers;
    const char *crisis_lines;
} qc_safety_opts_t;

/* A compiled rule set and the numbers its notices carry. Read-only once
 * made: any number of threads may check messages against one at once. */
typedef struct qc_safety qc_safety_t;

typedef struct {
    const char *rules_path; /* a rules file; NULL: the rules compiled into the library */
    const char *rules_text; /* or the rules themselves (rules_len bytes), named rules_path or "rules" in errors */
    size_t rules_len;
    const char *lexicon_path; /* the second reader's weights (docs/safety.md); NULL: those compiled into the
                                 library; "off": none (the rules alone) */
    const char *region;     /* "CN", "HK", "TW", "US", "EU" or "UK": that region's emergency, crisis and
                               poison numbers (docs/safety.md); NULL: the bilingual CN/US/EU defaults */
    const char *numbers;    /* overrides, "emergency=120,police=110,crisis=12356,poison=...,abuse=..."; NULL: none */
} qc_safety_config_t;

/* Compiles a rule set (cfg NULL: the compiled-in rules, default numbers).
 * A malformed rules file gives QC_ERR_FORMAT (or QC_ERR_UNSUPPORTED for an
 * unknown format version) and "FILE:LINE: reason" in err; an unknown region
 * or a malformed number list QC_ERR_ARG. *out: free with qc_safety_free. */
qc_status qc_safety_new(const qc_safety_config_t *cfg, qc_safety_t **out, char *err, size_t err_size);
void qc_safety_free(qc_safety_t *s);

/* Makes s the set qc_safety_check (and so the server and the CLI) uses;
 * NULL goes back to the compiled-in rules. s must outlive its use; call it
 * at start, before other threads check messages. */
void qc_safety_use(const qc_safety_t *s);

/* The set in use (never NULL unless out of memory). */
const qc_safety_t *qc_safety_current(void);

/* Number of rules in s. */
size_t qc_safety_rule_count(const qc_safety_t *s);

/* Checks UTF-8 text (len bytes) against the rules of s (NULL: the set in
 * use). Case, full-width forms, apostrophes and spacing do not matter; a
 * phrase does not count when it is negated a few words before ("no chest
 * pain", "没有胸痛", "I don't want to hurt myself", "我不是想伤害自己"), told as
 * past or recovered ("I used to self-harm", "以前中过风"), or asked about as a
 * risk ("会增加自杀风险吗"). The context machinery is described at the top of
 * safety.c, the rules in data/safety-rules.txt and docs/safety.md. When no
 * rule matches, the set's lexicon (if any) decides: its verdicts have the
 * presentation "lexicon.KIND" and, as term, the feature that weighed most. */
qc_safety_result_t qc_safety_match(const qc_safety_t *s, const char *text, size_t len);

/* qc_safety_match with the set in use. */
qc_safety_result_t qc_safety_check(const char *text, size_t len);

/* "cardiac", "stroke", ... ("none" for QC_URGENT_NONE, "unknown" past the last). */
const char *qc_urgent_name(qc_urgent_t kind);

/* Writes the notice a result needs into out (NUL-terminated, truncated to
 * cap), marked "⚠️ 紧急" / "⚠️ URGENT", in the message's language: what to do
 * now (call the emergency number; for self-harm the crisis line first; for
 * poisoning the poison centre where s has one; for abuse safety and the
 * police; for a child it says so), with the numbers of s (NULL: the set in
 * use). Returns the length it needs (like snprintf); 0 when not urgent. */
size_t qc_safety_notice_for(const qc_safety_t *s, const qc_safety_result_t *r, char *out, size_t cap);

/* The older notice by kind alone: bilingual, the numbers of opts (NULL
 * fields: those of the set in use, else the defaults above). 0 for
 * QC_URGENT_NONE. */
size_t qc_safety_notice(qc_urgent_t kind, const qc_safety_opts_t *opts, char *out, size_t cap);

/* ==== care pipeline (src/care/care.c) ====
 * Emotion by label scoring (the analyst prompt's fixed prefix computed once
 * and shared), the streamed reply told the emotion, and conversations. */

typedef struct qc_care qc_care_t;

typedef struct {
    int n_ctx;              /* context of each request (0 = 2048) */
    int use_prefix_cache;   /* 1 (default when opts is NULL): keep prompt prefixes' KV state (see below) */
    int calibrate;          /* emotion: divide out the content-free label prior (see label scoring) */
    size_t session_budget;  /* KV bytes of all conversations (0 = 512 MiB); LRU eviction beyond */
    size_t prefix_budget;   /* KV bytes of cached caller prefixes (qc_care_classify; 0 = 64 MiB) */
    int risk_model;         /* also prepare the model's urgency opinion (qc_care_risk_labels) */
    int max_sessions;       /* conversations kept (0 = 4096); a new one beyond drops the least recently used
                               idle one, its history and all */
    /* Told the id of each conversation dropped that way (on the thread
     * whose call dropped it, before the call goes on), e.g. so that a
     * cache of what the pipeline holds forgets it; NULL: not told. */
    void (*on_session_drop)(void *user, const char *session_id);
    void *drop_user;
    qc_safety_opts_t safety;
} qc_care_opts_t;

typedef struct {
    int label;          /* 0 positive, 1 negative, 2 neutral */
    float probs[3];     /* normalized over the three labels */
    double logp[3];     /* log-likelihood of each label's tokens */
    double ms;          /* wall time of the judgment */
} qc_emotion_t;

/* Prepares the pipeline: tokenizes the label words and prefills the analyst
 * prefix once. The model must outlive the pipeline. */
qc_status qc_care_new(qc_model_t *m, const qc_care_opts_t *opts, qc_care_t **out, char *err, size_t err_size);
void qc_care_free(qc_care_t *c);
const char *qc_care_errmsg(const qc_care_t *c);

/* Judges the emotion of text (UTF-8, len bytes). Special-token text in the
 * message is not interpreted. Not thread-safe (one request at a time). */
qc_status qc_care_emotion(qc_care_t *c, const char *text, size_t len, qc_emotion_t *out);

/* Writes the reply to text, told the emotion, streamed through cb in whole
 * UTF-8 characters; sampling from the model's generation_config.json unless
 * sampling is given. max_tokens > 0. */
qc_status qc_care_reply(qc_care_t *c, const char *text, int emotion, const qc_sampling_t *sampling,
                        int max_tokens, qc_token_cb cb, void *user);

/* One turn of the conversation session_id (created on first use): the
 * reply to text, told its emotion, streamed through cb. A session keeps its
 * KV state between turns, so a turn costs its new tokens; when all sessions
 * exceed the memory budget the least recently used lose their KV state and
 * get it back on their next turn by repeating the same forward calls, which
 * gives exactly the same result. A conversation that would leave less than
 * n_ctx / 8 tokens for the reply forgets its oldest turns (the system prompt
 * stays; qc_care_turn_dropped says how many); QC_ERR_CONTEXT only when the
 * new message alone does not fit. A failed turn undoes that too. */
qc_status qc_care_chat(qc_care_t *c, const char *session_id, const char *text, int emotion,
                       const qc_sampling_t *sampling, int max_tokens, qc_token_cb cb, void *user);
qc_status qc_care_end_session(qc_care_t *c, const char *session_id);

/* The emotion judgment driven step by step by the caller (the server's
 * scheduler runs many in one forward pass with other requests): the
 * emotion task's qc_care_classify_begin / qc_care_judge_scores below, with
 *   qc_care_judge_begin   = qc_care_classify_begin(c, qc_care_emotion_labels(c), ...)
 *   qc_care_judge_end     = qc_care_judge_scores, as a qc_emotion_t (frees j). */
typedef struct qc_care_judge qc_care_judge_t;
qc_status qc_care_judge_begin(qc_care_t *c, const char *text, size_t len, qc_care_judge_t **out);
qc_status qc_care_judge_end(qc_care_judge_t *j, const float *logits, qc_emotion_t *out);

/* The tokens of qc_care_reply's prompt for text told the emotion (*ids
 * allocated, caller frees). QC_ERR_CONTEXT when longer than the context. */
qc_status qc_care_reply_ids(qc_care_t *c, const char *text, int emotion, int32_t **ids, size_t *n);

/* A conversation turn driven step by step by the caller, who runs the
 * model (the server's scheduler batches many turns into one forward pass):
 *   qc_care_turn_begin   opens the turn as qc_care_chat does; the session is
 *                        busy (never evicted; a second turn gets QC_ERR_BUSY)
 *   qc_care_turn_pending the tokens not yet in qc_care_turn_ctx's KV state
 *   qc_care_turn_evaluated  after each forward call on that context: it ran
 *                        the next n pending tokens (recorded for an exact
 *                        rebuild after eviction)
 *   qc_care_turn_push    a generated token joins the conversation
 *   qc_care_turn_end     ok = 1 keeps the turn, 0 undoes it; frees t.
 * Not thread-safe, like the rest of qc_care_t. */
typedef struct qc_care_turn qc_care_turn_t;
qc_status qc_care_turn_begin(qc_care_t *c, const char *session_id, const char *text, int emotion,
                             qc_care_turn_t **out);
qc_ctx_t *qc_care_turn_ctx(const qc_care_turn_t *t);
size_t qc_care_turn_pending(const qc_care_turn_t *t, const int32_t **ids);
qc_status qc_care_turn_evaluated(qc_care_turn_t *t, size_t n);
qc_status qc_care_turn_push(qc_care_turn_t *t, int32_t id);
void qc_care_turn_end(qc_care_turn_t *t, int ok);
/* The oldest turns t's conversation forgot to make room for it (0: none). */
int qc_care_turn_dropped(const qc_care_turn_t *t);
/* Whether this pipeline holds the conversation session_id (its tokens;
 * its KV state may be evicted). */
int qc_care_has_session(const qc_care_t *c, const char *session_id);

/* A past turn of a conversation as its record keeps it, to rebuild the
 * conversation in a process that never saw it (the records store is the
 * truth, the KV state a cache of it). */
typedef struct {
    const char *text;      /* the patient's message */
    int emotion;           /* the label the reply was told */
    const int32_t *prompt; /* the tokens the turn ran before its reply (qc_care_turn_pending at its start) */
    size_t n_prompt;
    const int32_t *reply;  /* the reply's tokens as generated (the end token excluded) */
    size_t n_reply;
    int last_run;          /* the reply's last token was run too (it ended on the model's end token, not
                              at max_tokens) */
    int dropped;           /* the oldest turns it dropped to fit the context (qc_care_turn_dropped) */
} qc_care_past_t;

/* Appends past turn p to session_id (created when new), oldest first,
 * without model work: the turn is made again from its text and emotion,
 * and must be the one the record ran (the same prompt tokens, the same
 * dropped turns), else QC_ERR_ARG and the session is as before (a one-off
 * or emotion-only turn, or one whose predecessors are gone, does not
 * continue the conversation). The calls the turn made (its prompt in runs
 * of `chunk` tokens, as the server's scheduler runs them, then one per
 * reply token) are recorded, so the next turn gets the KV state those
 * calls give, bit for bit. QC_ERR_BUSY when the session holds KV state. */
qc_status qc_care_session_replay(qc_care_t *c, const char *session_id, const qc_care_past_t *p, size_t chunk);

/* Number of sessions (and, in *resident, those holding KV state now). */
int qc_care_n_sessions(const qc_care_t *c, int *resident);
/* KV bytes held by the sessions now. */
size_t qc_care_sessions_bytes(const qc_care_t *c);

/* Number of tokens of the analyst prefix. */
int qc_care_prefix_tokens(const qc_care_t *c);

/* ==== label scoring (src/care/judge.c) ====
 * Classification by label scoring over a cached few-shot prefix. The
 * caller's instruction and examples form a ChatML prefix, the text a user
 * turn, and each label is scored by the log-probability of its tokens
 * where the assistant's answer begins; nothing is generated or parsed.
 * Emotion (qc_care_emotion) and the model's urgency opinion are two
 * instances of it.
 *
 * The prompt as tokens. Only the fixed parts hold special tokens; the
 * instruction, the examples, the text and the labels are tokenized as
 * plain text, so "<|im_end|>" written in them stays text:
 *
 *   <|im_start|>system\n INSTRUCTION <|im_end|>\n            }  the prefix:
 *   <|im_start|>user\n EXAMPLE <|im_end|>\n                  }  computed once
 *   <|im_start|>assistant\n ITS LABEL <|im_end|>\n  ...      }  and cached
 *   <|im_start|>user\n TEXT <|im_end|>\n<|im_start|>assistant\n     the turn
 *   [<think>\n\n</think>\n\n]      Qwen3 only: its template's empty thinking block
 *   LABEL                                                  scored
 *
 * The boundary. The answer position is right after the turn's last "\n".
 * A label's tokens are the label text tokenized on its own, as plain text,
 * appended to the turn's tokens as they are: the prompt is never
 * re-tokenized across the boundary. For a label that starts with a letter,
 * a digit, punctuation or a space this is exactly how the tokenizer splits
 * the whole prompt too (Qwen's pre-tokenizer never joins a newline to a
 * following letter, digit, punctuation mark or space-led word); a label
 * that starts with a newline or tab would be joined to the "\n" in running
 * text, and is still scored as its own tokens (test_classify checks both).
 *
 * Scores. A label's log-likelihood is the sum over its tokens of
 * log p(token | everything before it); the probabilities are the softmax
 * over the labels of these sums (normalize "sum"), or of the mean per
 * token (mean). Summing is biased against long labels: every extra token
 * can only lower the sum. The mean removes that but favours labels whose
 * later tokens are near-certain once the first is chosen; pick per label
 * set, and prefer labels whose first tokens differ (then the first token
 * decides and both agree more often). With calibrate, each label's score
 * has the score of the content-free text "N/A" under the same prompt
 * subtracted first ("contextual calibration", Zhao et al. 2021), which
 * removes the prompt's prior toward some labels; the content-free scores
 * are computed once per task and remembered.
 *
 * The prefix cache. A prefix's KV state is computed the first time it is
 * used and kept, keyed by a hash of its tokens (compared in full on a
 * hit), so later calls cost only the turn and the labels. Caller prefixes
 * share opts.prefix_budget bytes, least recently used evicted first; a
 * prefix in use by a judgment is never evicted, and the budget is apart
 * from the conversations' (a conversation's KV state is never evicted for
 * a prefix). The built-in prompts' prefixes (emotion, urgency) are kept
 * for the pipeline's life. With use_prefix_cache 0 every judgment
 * computes its prefix itself (for comparison); the answers are identical
 * bit for bit.
 *
 * Every forward call of a judgment has a fixed shape, so the same text
 * gets the same scores however it is run: the prefix in one call, the turn
 * in calls of QC_JUDGE_CHUNK tokens, each label's tokens after the first
 * in calls of at most 8. */

#define QC_LABELS_MAX 32      /* labels of one task */
#define QC_LABEL_MAX_CHARS 64 /* characters (code points) of one label */
#define QC_JUDGE_CHUNK 256    /* most tokens of the turn per forward call (longer turns take several) */

typedef struct {
    const char *text;  /* a user message */
    const char *label; /* its answer: one of the task's labels */
} qc_example_t;

typedef struct {
    const char *const *labels;    /* 2..QC_LABELS_MAX distinct UTF-8 strings of 1..QC_LABEL_MAX_CHARS characters */
    size_t n_labels;
    const char *instruction;      /* the system turn; NULL: "Classify the user's message. Answer with exactly
                                   * one of these labels: L1, L2, ..." */
    const qc_example_t *examples; /* few-shot turns, in this order (may be NULL) */
    size_t n_examples;
    int calibrate;                /* subtract the content-free scores (above) */
    int mean;                     /* normalize the mean log-probability per token, not the sum */
} qc_labels_spec_t;

/* A prepared task: its prefix and label tokens. Immutable once made, so
 * it may be made and read on any thread (it uses only the tokenizer). */
typedef struct qc_labels qc_labels_t;

/* Checks spec and tokenizes it for model m and contexts of n_ctx tokens
 * (0 = 2048). QC_ERR_ARG with the reason in err for bad labels (too few or
 * many, duplicates, empty, longer than QC_LABEL_MAX_CHARS, not UTF-8) or
 * examples (a label not among the labels, text not UTF-8); QC_ERR_CONTEXT
 * when the prefix and the longest label leave no room for a text. */
qc_status qc_labels_new(const qc_model_t *m, const qc_labels_spec_t *spec, int n_ctx, qc_labels_t **out, char *err,
                        size_t err_size);
void qc_labels_free(qc_labels_t *t);
size_t qc_labels_count(const qc_labels_t *t);
const char *qc_labels_name(const qc_labels_t *t, size_t i); /* owned by t */
/* A label's tokens / the prefix's tokens (owned by t); returns how many. */
size_t qc_labels_tokens(const qc_labels_t *t, size_t i, const int32_t **ids);
size_t qc_labels_prefix(const qc_labels_t *t, const int32_t **ids);
int qc_labels_calibrated(const qc_labels_t *t);
int qc_labels_mean(const qc_labels_t *t);
/* The turn's tokens for text (*ids allocated, caller frees). QC_ERR_ARG
 * for an empty text or invalid UTF-8, QC_ERR_CONTEXT when prefix, turn and
 * the longest label do not fit n_ctx (0 = 2048); the reason in err. */
qc_status qc_labels_turn(const qc_labels_t *t, const char *text, size_t len, int n_ctx, int32_t **ids, size_t *n,
                         char *err, size_t err_size);

typedef struct {
    double loglik; /* sum of the label's tokens' log-probabilities (natural log) */
    double prob;   /* normalized over the labels (after calibration) */
    int tokens;    /* how many tokens the label has */
} qc_label_score_t;

typedef struct {
    size_t n;                        /* labels, in the task's order */
    int top;                         /* the most probable (the first of equals) */
    qc_label_score_t label[QC_LABELS_MAX];
    int calibrated;                  /* cf_loglik holds the content-free log-likelihoods */
    double cf_loglik[QC_LABELS_MAX];
    int prefix_cached;               /* the prefix's KV state was already cached */
    int text_tokens;                 /* tokens of the turn */
    double ms;                       /* wall time */
} qc_scores_t;

/* Scores every label of t after text (UTF-8, len bytes; special-token text
 * not interpreted). t must come from the same model. Not thread-safe. */
qc_status qc_care_classify(qc_care_t *c, const qc_labels_t *t, const char *text, size_t len, qc_scores_t *out);

/* The same judgment driven step by step by the caller:
 *   qc_care_classify_begin  tokenizes the turn (a new prefix is computed
 *                           here, once; with calibrate the content-free
 *                           scores too); its context continues the prefix
 *   qc_care_judge_tokens    the tokens the caller must run on
 *                           qc_care_judge_ctx, through qc_batch_eval, in
 *                           runs of QC_JUDGE_CHUNK (the last one shorter)
 *   qc_care_judge_scores    given the next-token logits after the last of
 *                           them: the scores (the labels' tokens run
 *                           here); frees j
 *   qc_care_judge_free      abandons j.
 * Gives exactly qc_care_classify's scores. t must outlive j. */
qc_status qc_care_classify_begin(qc_care_t *c, const qc_labels_t *t, const char *text, size_t len,
                                 qc_care_judge_t **out);
qc_ctx_t *qc_care_judge_ctx(const qc_care_judge_t *j);
size_t qc_care_judge_tokens(const qc_care_judge_t *j, const int32_t **ids);
qc_status qc_care_judge_scores(qc_care_judge_t *j, const float *logits, qc_scores_t *out);
void qc_care_judge_free(qc_care_judge_t *j);

/* The scores as one JSON object (caller frees; NULL when out of memory):
 *   {"labels": [{"label": L, "probability": p, "loglik": x, "tokens": n}, ...],
 *    "top": L, "normalize": "sum"|"mean", "calibrated": bool,
 *    ["content_free_loglik": [...],] "prefix_cached": bool, "text_tokens": n, "ms": t}
 * labels in the task's order; probabilities and ms rounded to 6 significant
 * digits, log-likelihoods printed with 9 (a float's precision). */
char *qc_scores_json(const qc_labels_t *t, const qc_scores_t *s);

/* The built-in tasks: emotion (labels positive, negative, neutral: the
 * analyst prompt) and the urgency opinion (labels "urgent", "not urgent":
 * its own bilingual few-shot prompt; NULL unless opts.risk_model). Owned
 * by c. */
const qc_labels_t *qc_care_emotion_labels(const qc_care_t *c);
const qc_labels_t *qc_care_risk_labels(const qc_care_t *c);

typedef struct {
    size_t entries, bytes;  /* cached caller prefixes and their KV bytes (the built-in ones not counted) */
    size_t budget;          /* opts.prefix_budget */
    unsigned long long hits, misses, evictions;
} qc_prefix_stats_t;
void qc_care_prefix_stats(const qc_care_t *c, qc_prefix_stats_t *out);

/* ==== evaluation metrics (src/care/eval.c) ==== */

#define QC_N_EMOTIONS 3 /* positive, negative, neutral: qc_emotion_name's order */

/* "positive", "negative", "neutral"; NULL outside [0, 3). */
const char *qc_emotion_name(int label);
/* The index of a label name, or -1. */
int qc_emotion_index(const char *name);

typedef struct {
    long cm[QC_N_EMOTIONS][QC_N_EMOTIONS]; /* [true label][predicted label] */
    double *latency_ms;                     /* one per example */
    size_t n, cap;
} qc_eval_t;

typedef struct {
    long n;
    double accuracy, macro_f1;
    double precision[QC_N_EMOTIONS], recall[QC_N_EMOTIONS], f1[QC_N_EMOTIONS];
    long support[QC_N_EMOTIONS];
    double p50_ms, p95_ms; /* nearest-rank percentiles */
} qc_eval_summary_t;

void qc_eval_init(qc_eval_t *e);
void qc_eval_free(qc_eval_t *e);
/* Records one example; -1 when out of memory or a label is out of range. */
int qc_eval_add(qc_eval_t *e, int truth, int predicted, double latency_ms);
/* Precision/recall/F1 of a class with no predictions / no examples are 0
 * (as scikit-learn's zero_division=0). */
void qc_eval_summarize(const qc_eval_t *e, qc_eval_summary_t *s);
/* One JSON object (no newline): n, accuracy, macro_f1, per_class, confusion,
 * latency_ms {p50, p95}. */
void qc_eval_write_json(FILE *f, const qc_eval_t *e, const qc_eval_summary_t *s);
/* A standalone HTML page: the metrics table and the confusion matrix as an
 * SVG heat map. title is HTML-escaped. 0 on success, -1 on a write error. */
int qc_eval_write_html(const char *path, const char *title, const qc_eval_t *e, const qc_eval_summary_t *s);

#ifdef __cplusplus
}
#endif
#endif
