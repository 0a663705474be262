/* api_openai.c — the OpenAI-compatible endpoints: POST /v1/chat/completions
 * (JSON, or Server-Sent Events of chat.completion.chunk objects ending with
 * "data: [DONE]"), POST /v1/completions (text_completion objects, JSON or
 * the same kind of stream) and GET /v1/models.
 *
 * A chat completion's messages are rendered in ChatML here (their content
 * never parsed for special tokens); a completion's prompt is taken as
 * given: a string (special tokens in it recognized, as `qcare generate`
 * and `qcare logits` read text) or token ids. The scheduler generates
 * (QS_COMPLETION) with the request's sampling; this file's callbacks cut
 * the text at a stop string and stream the rest, with each token's
 * log-probability when asked: chat's logprobs.content entries, or the
 * completions' legacy arrays (tokens, token_logprobs, top_logprobs,
 * text_offset), the prompt's own with echo. Log-probabilities are the
 * model's (raw logits, natural log), whatever the sampling settings.
 *
 * Streamed, the callbacks append raw records (the text and the entries of
 * its tokens) and job_format turns them into chunk objects on the
 * connection's thread. */
#include "server/srv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QS_MAX_STOP 4            /* stop strings of a completion */
#define QS_LEGACY_MAX_LOGPROBS 5 /* /v1/completions' logprobs: alternatives per token */
#define QS_LEGACY_MAX_TOKENS 16  /* /v1/completions' max_tokens when absent (OpenAI's) */

/* One token's log-probability, as the scheduler reported it. */
typedef struct {
    int32_t id;
    int has;       /* 0: the prompt's first token, which has none */
    int prompt;    /* a prompt token (echo) */
    double logprob;
    int n_top;
    int32_t top_id[QS_TOP_LOGPROBS];
    double top_lp[QS_TOP_LOGPROBS];
    size_t start, end; /* prompt: byte offset in the prompt; generated: its text in out (end SIZE_MAX until it came) */
} lp_t;

/* A completion's call: the prompt ids, the sampling, the stop strings,
 * the text generated so far and its log-probabilities. */
typedef struct {
    qs_call_t c;
    qc_ids_t ids;
    size_t n_out;
    qc_generate_opts_t go;
    char *stop[QS_MAX_STOP];
    int n_stop, stopped, hit_max;
    size_t max_stop, emitted; /* the longest stop string; bytes of out already streamed */
    qc_buf_t out;
    char id[48];
    long long created;
    int legacy;             /* /v1/completions: text_completion objects */
    int logprobs, top;      /* report log-probabilities, with this many alternatives */
    int echo, echo_sent;    /* /v1/completions: the prompt's text (and log-probabilities) first */
    char *echo_text;        /* the prompt decoded */
    lp_t *lp;               /* [cap_lp], n_lp reported, sent_lp of them streamed */
    size_t n_lp, cap_lp, sent_lp, prompt_off;
    qc_buf_t rec;           /* the scheduler's: a stream's record being built (reused) */
} job_t;

static void job_clear(qs_call_t *c) {
    job_t *j = (job_t *)c;
    qc_ids_free(&j->ids);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    qc_buf_free(&j->out);
    free(j->echo_text);
    free(j->lp);
    qc_buf_free(&j->rec);
}

/* ==== log-probabilities as JSON ==== */

/* A token's text: its bytes, with any that are not valid UTF-8 on their
 * own as U+FFFD (so it is a JSON string; "bytes" keeps them exactly). */
static json_t *token_text(const qc_tokenizer_t *tok, int32_t id) {
    char *t = NULL;
    size_t n = 0;
    json_t *s = qc_tokenizer_decode(tok, &id, 1, &t, &n) ? json_string("") : json_stringn(t, n);
    free(t);
    return s;
}

static size_t token_len(const qc_tokenizer_t *tok, int32_t id) {
    size_t n = 0;
    return qc_tokenizer_token_bytes(tok, id, &n) ? n : 0;
}

/* {"token", "logprob", "bytes"} of chat's logprobs. */
static json_t *chat_token(const qc_tokenizer_t *tok, int32_t id, double lp) {
    size_t n = 0;
    const char *b = qc_tokenizer_token_bytes(tok, id, &n);
    json_t *bytes = json_array();
    for (size_t i = 0; b && bytes && i < n; i++) json_array_append_new(bytes, json_integer((unsigned char)b[i]));
    return json_pack("{s:o, s:f, s:o}", "token", token_text(tok, id), "logprob", lp, "bytes", bytes);
}

/* Chat's logprobs object for entries lp[0, n): {"content": [...], "refusal": null}. */
static json_t *chat_logprobs(const job_t *j, const lp_t *lp, size_t n) {
    const qc_tokenizer_t *tok = j->c.s->tok;
    json_t *content = json_array();
    for (size_t i = 0; content && i < n; i++) {
        const lp_t *e = &lp[i];
        json_t *t = chat_token(tok, e->id, e->logprob), *top = json_array();
        for (int k = 0; top && k < e->n_top; k++) json_array_append_new(top, chat_token(tok, e->top_id[k], e->top_lp[k]));
        if (t) json_object_set_new(t, "top_logprobs", top);
        else json_decref(top);
        json_array_append_new(content, t);
    }
    return json_pack("{s:o, s:n}", "content", content, "refusal");
}

/* The completions' logprobs object for entries lp[0, n): tokens,
 * token_logprobs (null for the prompt's first), top_logprobs ({token:
 * logprob}, null for the first), text_offset (bytes into the answer's
 * text, the echoed prompt included). */
static json_t *legacy_logprobs(const job_t *j, const lp_t *lp, size_t n) {
    const qc_tokenizer_t *tok = j->c.s->tok;
    size_t echo_len = j->echo && j->echo_text ? strlen(j->echo_text) : 0;
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    for (size_t i = 0; i < n; i++) {
        const lp_t *e = &lp[i];
        json_array_append_new(tokens, token_text(tok, e->id));
        json_array_append_new(lps, e->has ? json_real(e->logprob) : json_null());
        json_t *top = e->has ? json_object() : json_null();
        for (int k = 0; e->has && k < e->n_top; k++) {
            json_t *key = token_text(tok, e->top_id[k]);
            const char *ks = json_string_value(key);
            if (ks && !json_object_get(top, ks)) json_object_set_new(top, ks, json_real(e->top_lp[k]));
            json_decref(key);
        }
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer((json_int_t)(e->prompt ? e->start : echo_len + e->start)));
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs", tops,
                     "text_offset", offs);
}

/* Reads only what stays fixed once the call is submitted (legacy, echo,
 * echo_text, logprobs), so the stream's format function may call it. */
static json_t *job_logprobs(const job_t *j, const lp_t *lp, size_t n) {
    if (!j->logprobs) return json_null();
    return j->legacy ? legacy_logprobs(j, lp, n) : chat_logprobs(j, lp, n);
}

/* The log-probability entries that belong to the text out[0, limit): the
 * prompt's, and the generated tokens whose text ended there (final: began
 * there, so a token cut by a stop string still counts). Returns the end. */
static size_t lp_upto(const job_t *j, size_t from, size_t limit, int final) {
    size_t e = from;
    while (e < j->n_lp && (j->lp[e].prompt || j->lp[e].end <= limit || (final && j->lp[e].start < limit))) e++;
    return e;
}

/* ==== the scheduler's callbacks ==== */

/* A stream's records (qs_call_event), formatted by job_format. EV_CHUNK:
 * a chunk_head_t, the text's bytes, then the entries (lp_t) of its tokens. */
enum { EV_CHUNK = 'c', EV_END = 'f', EV_ERROR = 'x' };

typedef struct {
    size_t text_n, n_lp;
    int echo; /* the prompt's text comes first */
} chunk_head_t;

/* Streams job text [emitted, limit) moved back to a UTF-8 character start,
 * with its log-probabilities, as one EV_CHUNK record (mu held). final:
 * the last text. */
static void job_emit(job_t *j, size_t limit, int final) {
    if (!j->c.streamed) return;
    while (limit > j->emitted && limit < j->out.n && ((unsigned char)j->out.p[limit] & 0xC0) == 0x80) limit--;
    if (limit < j->emitted) limit = j->emitted;
    size_t lp_end = lp_upto(j, j->sent_lp, limit, final);
    int echo = j->echo && !j->echo_sent;
    if (limit == j->emitted && lp_end == j->sent_lp && !echo) return;
    chunk_head_t h = {limit - j->emitted, lp_end - j->sent_lp, echo};
    j->rec.n = 0;
    qc_buf_add(&j->rec, &h, sizeof h);
    if (h.text_n) qc_buf_add(&j->rec, j->out.p + j->emitted, h.text_n);
    if (h.n_lp) qc_buf_add(&j->rec, j->lp + j->sent_lp, h.n_lp * sizeof *j->lp);
    if (j->rec.failed) {
        j->c.failed = 1;
        atomic_store(&j->c.rq.cancel, 1);
        return;
    }
    qs_call_event(&j->c, EV_CHUNK, j->rec.p, j->rec.n);
    j->emitted = limit;
    j->sent_lp = lp_end;
    j->echo_sent = 1;
}

static void on_job_logprob(void *user, int prompt, const qs_logprob_t *lp) {
    job_t *j = user;
    pthread_mutex_lock(&j->c.mu);
    if (j->n_lp < j->cap_lp) {
        lp_t *e = &j->lp[j->n_lp++];
        e->id = lp->id;
        e->has = 1;
        e->prompt = prompt;
        e->logprob = lp->logprob;
        e->n_top = lp->n_top < j->top ? lp->n_top : j->top;
        memcpy(e->top_id, lp->top_id, (size_t)e->n_top * sizeof *e->top_id);
        memcpy(e->top_lp, lp->top_logprob, (size_t)e->n_top * sizeof *e->top_lp);
        if (prompt) {
            e->start = e->end = j->prompt_off;
            j->prompt_off += token_len(j->c.s->tok, lp->id);
        } else {
            e->start = j->out.n;
            e->end = SIZE_MAX; /* its piece comes next */
        }
    }
    pthread_mutex_unlock(&j->c.mu);
}

/* A completion's text: collected, ended at a stop string (cut from the
 * text), streamed up to what could still become a stop string. */
static int on_job_piece(void *user, const char *piece, size_t len) {
    job_t *j = user;
    qs_call_t *c = &j->c;
    pthread_mutex_lock(&c->mu);
    if (j->stopped) { /* already cut at a stop string: nothing more (the detokenizer's flush) */
        pthread_mutex_unlock(&c->mu);
        return 1;
    }
    qs_call_first(c);
    size_t from = j->out.n > j->max_stop ? j->out.n - j->max_stop : 0;
    if (!c->failed && qc_buf_add(&j->out, piece, len)) c->failed = 1;
    if (j->n_lp && !j->lp[j->n_lp - 1].prompt && j->lp[j->n_lp - 1].end == SIZE_MAX) j->lp[j->n_lp - 1].end = j->out.n;
    int stop = c->failed;
    for (int i = 0; !stop && i < j->n_stop; i++) {
        char *at = memmem(j->out.p + from, j->out.n - from, j->stop[i], strlen(j->stop[i]));
        if (at) {
            j->out.n = (size_t)(at - j->out.p);
            j->out.p[j->out.n] = 0;
            j->stopped = 1;
        }
    }
    if (j->stopped) job_emit(j, j->out.n, 1);
    else if (!stop) job_emit(j, j->out.n > j->max_stop ? j->out.n - j->max_stop + (j->max_stop ? 1 : 0) : 0, 0);
    pthread_mutex_unlock(&c->mu);
    return stop || j->stopped || atomic_load(&c->rq.cancel);
}

static const char *job_finish(const job_t *j) { return !j->stopped && j->hit_max ? "length" : "stop"; }

static json_t *usage_json(const job_t *j) {
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)j->ids.n, "completion_tokens",
                     (json_int_t)j->n_out, "total_tokens", (json_int_t)(j->ids.n + j->n_out));
}

static void on_job_done(void *user, qc_status st, const char *msg, size_t n_prompt, size_t n_out, int hit_max) {
    job_t *j = user;
    qs_call_t *c = &j->c;
    st = qs_call_end(c, st, &msg, n_prompt, n_out);
    j->n_out = n_out;
    j->hit_max = hit_max;
    if (c->streamed) {
        if (st) qs_call_event(c, EV_ERROR, msg, strlen(msg));
        else job_emit(j, j->out.n, 1), qs_call_event(c, EV_END, NULL, 0);
    }
    qs_call_finish(c);
}

/* ==== the stream's events (the connection's thread) ==== */

/* One chunk object: the text (after the prompt's with echo) and its
 * entries. */
static void format_chunk(job_t *j, const char *data, size_t n) {
    qs_call_t *c = &j->c;
    chunk_head_t h;
    if (n < sizeof h) return;
    memcpy(&h, data, sizeof h);
    if (h.text_n > n - sizeof h || h.n_lp > (n - sizeof h - h.text_n) / sizeof(lp_t)) return;
    const char *t = data + sizeof h;
    lp_t *lp = NULL; /* the record's bytes are not aligned for lp_t */
    if (h.n_lp && !(lp = malloc(h.n_lp * sizeof *lp))) {
        c->ev_failed = 1;
        return;
    }
    if (h.n_lp) memcpy(lp, t + h.text_n, h.n_lp * sizeof *lp);
    qc_buf_t text = {0};
    if (h.echo) qc_buf_puts(&text, j->echo_text ? j->echo_text : "");
    qc_buf_add(&text, t, h.text_n);
    json_t *lpj = job_logprobs(j, lp, h.n_lp), *o;
    if (j->legacy)
        o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:s%, s:i, s:o, s:n}]}", "id", j->id, "object", "text_completion",
                      "created", (json_int_t)j->created, "model", c->s->model_name, "choices", "text",
                      text.p ? text.p : "", text.n, "index", 0, "logprobs", lpj, "finish_reason");
    else
        o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s%}, s:o, s:n}]}", "id", j->id, "object",
                      "chat.completion.chunk", "created", (json_int_t)j->created, "model", c->s->model_name,
                      "choices", "index", 0, "delta", "content", text.p ? text.p : "", text.n, "logprobs", lpj,
                      "finish_reason");
    if (text.failed) json_decref(o), o = NULL;
    qc_buf_free(&text);
    free(lp);
    qs_call_sse(c, NULL, o);
}

/* chat.completion.chunk or text_completion objects: the text, then the
 * finish reason and usage (or an error), then [DONE]. n_out, stopped and
 * hit_max were set before the last record, under mu. */
static void job_format(qs_call_t *c, int kind, const char *data, size_t n) {
    job_t *j = (job_t *)c;
    if (kind == EV_CHUNK) format_chunk(j, data, n);
    if (kind == EV_END && j->legacy)
        qs_call_sse(c, NULL,
                    json_pack("{s:s, s:s, s:I, s:s, s:[{s:s, s:i, s:n, s:s}], s:o}", "id", j->id, "object",
                              "text_completion", "created", (json_int_t)j->created, "model", c->s->model_name,
                              "choices", "text", "", "index", 0, "logprobs", "finish_reason", job_finish(j), "usage",
                              usage_json(j)));
    else if (kind == EV_END)
        qs_call_sse(c, NULL,
                    json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{}, s:n, s:s}], s:o}", "id", j->id, "object",
                              "chat.completion.chunk", "created", (json_int_t)j->created, "model", c->s->model_name,
                              "choices", "index", 0, "delta", "logprobs", "finish_reason", job_finish(j), "usage",
                              usage_json(j)));
    if (kind == EV_ERROR)
        qs_call_sse(c, NULL, json_pack("{s:{s:s%, s:s}}", "error", "message", data, n, "type", "server_error"));
    if (kind == EV_END || kind == EV_ERROR) qs_call_push(c, "data: [DONE]\n\n", 14);
}

/* ==== the requests ==== */

/* Appends the ids of text (special tokens parsed or not). */
static qc_status add_ids(const qc_tokenizer_t *tok, const char *text, size_t len, int special, job_t *j) {
    int32_t *add = NULL;
    size_t k = 0;
    qc_status st = qc_tokenizer_encode(tok, text, len, special ? QC_TOK_PARSE_SPECIAL : 0, &add, &k);
    if (st) return st;
    st = qc_ids_add(&j->ids, add, k) ? QC_ERR_NOMEM : QC_OK;
    free(add);
    return st;
}

/* Appends a message's content: a string, or an array of text parts
 * ({"type": "text", "text": ...}, joined as they are, then tokenized as
 * one text). 0, or -1 with the reason in msg. */
static int add_content(const qc_tokenizer_t *tok, json_t *c, size_t i, job_t *j, char *msg, size_t n) {
    if (!json_is_string(c) && !json_is_array(c)) {
        snprintf(msg, n, "messages[%zu].content must be a string or an array of text parts", i);
        return -1;
    }
    qc_buf_t text = {0};
    size_t k;
    json_t *part;
    if (json_is_string(c)) qc_buf_add(&text, json_string_value(c), json_string_length(c));
    json_array_foreach(c, k, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *t = json_object_get(part, "text");
        if (!type || strcmp(type, "text") || !json_is_string(t)) {
            snprintf(msg, n, "messages[%zu].content[%zu]: only {\"type\": \"text\", \"text\": \"...\"} parts are supported",
                     i, k);
            qc_buf_free(&text);
            return -1;
        }
        qc_buf_add(&text, json_string_value(t), json_string_length(t));
    }
    int bad = text.failed || add_ids(tok, text.p ? text.p : "", text.n, 0, j);
    if (bad) snprintf(msg, n, text.failed ? "out of memory" : "messages[%zu].content is not valid UTF-8", i);
    qc_buf_free(&text);
    return bad ? -1 : 0;
}

/* The messages in ChatML (their content as plain text, never parsed for
 * special tokens; "developer" is a system turn). 0, or -1 with the reason
 * in msg. */
static int chat_prompt(qc_server_t *s, json_t *b, job_t *j, char *msg, size_t n) {
    json_t *msgs = json_object_get(b, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        snprintf(msg, n, "\"messages\" (a non-empty array) is required");
        return -1;
    }
    size_t i;
    json_t *mv;
    json_array_foreach(msgs, i, mv) {
        const char *role = json_string_value(json_object_get(mv, "role"));
        if (role && (!strcmp(role, "tool") || !strcmp(role, "function"))) {
            snprintf(msg, n, "messages[%zu].role \"%s\": tool messages are not supported (qcare does no tool calling)",
                     i, role);
            return -1;
        }
        if (role && !strcmp(role, "developer")) role = "system";
        if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))) {
            snprintf(msg, n, "messages[%zu].role must be \"system\", \"developer\", \"user\" or \"assistant\"", i);
            return -1;
        }
        char head[32];
        snprintf(head, sizeof head, "<|im_start|>%s\n", role);
        if (add_ids(s->tok, head, strlen(head), 1, j) || add_content(s->tok, json_object_get(mv, "content"), i, j, msg, n) ||
            add_ids(s->tok, "<|im_end|>\n", 11, 1, j)) {
            if (!*msg) snprintf(msg, n, "out of memory");
            return -1;
        }
    }
    if (add_ids(s->tok, "<|im_start|>assistant\n", 22, 1, j) ||
        (s->qwen3 && add_ids(s->tok, "<think>\n\n</think>\n\n", 19, 1, j))) {
        snprintf(msg, n, "out of memory");
        return -1;
    }
    json_t *tools = json_object_get(b, "tools");
    if (tools && !json_is_null(tools) && !(json_is_array(tools) && json_array_size(tools) == 0)) {
        snprintf(msg, n, "\"tools\" are not supported (qcare does no tool calling)");
        return -1;
    }
    long long top = -1;
    int lp = 0;
    if (qs_get_bool(b, "logprobs", &lp, msg, n) < 0 ||
        qs_get_int(b, "top_logprobs", 0, QS_TOP_LOGPROBS, &top, msg, n) < 0)
        return -1;
    if (top >= 0 && !lp) {
        snprintf(msg, n, "\"top_logprobs\" needs \"logprobs\": true");
        return -1;
    }
    j->logprobs = lp;
    j->top = top > 0 ? (int)top : 0;
    return 0;
}

/* The completion's prompt: a string (special tokens recognized), an array
 * of token ids, or an array of one string; its echo and logprobs. 0, or
 * -1 with the reason in msg. */
static int legacy_prompt(qc_server_t *s, json_t *b, job_t *j, char *msg, size_t n) {
    json_t *p = json_object_get(b, "prompt");
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
    if (json_is_string(p)) {
        if (add_ids(s->tok, json_string_value(p), json_string_length(p), 1, j)) {
            snprintf(msg, n, "\"prompt\" is not valid UTF-8");
            return -1;
        }
    } else if (json_is_array(p)) {
        size_t i;
        json_t *v;
        json_array_foreach(p, i, v) {
            if (json_is_string(v) || json_is_array(v)) {
                snprintf(msg, n, "\"prompt\": several prompts in one request are not supported");
                return -1;
            }
            json_int_t id = json_integer_value(v);
            if (!json_is_integer(v) || id < 0 || id >= qc_model_n_vocab(s->m)) {
                snprintf(msg, n, "prompt[%zu] must be a token id in [0, %d)", i, (int)qc_model_n_vocab(s->m));
                return -1;
            }
            if (qc_ids_push(&j->ids, (int32_t)id)) {
                snprintf(msg, n, "out of memory");
                return -1;
            }
        }
    } else {
        snprintf(msg, n, "\"prompt\" (a string, an array of token ids or an array of one string) is required");
        return -1;
    }
    if (j->ids.n == 0) {
        snprintf(msg, n, "\"prompt\" has no tokens");
        return -1;
    }
    long long lp = -1, best_of = 1;
    json_t *suffix = json_object_get(b, "suffix");
    if (qs_get_bool(b, "echo", &j->echo, msg, n) < 0 ||
        qs_get_int(b, "logprobs", 0, QS_LEGACY_MAX_LOGPROBS, &lp, msg, n) < 0 ||
        qs_get_int(b, "best_of", 1, 1 << 20, &best_of, msg, n) < 0)
        return -1;
    if (best_of != 1) {
        snprintf(msg, n, "\"best_of\" is not supported (one completion per request)");
        return -1;
    }
    if (suffix && !json_is_null(suffix)) {
        snprintf(msg, n, "\"suffix\" is not supported (no insertion)");
        return -1;
    }
    j->logprobs = lp >= 0;
    j->top = lp > 0 ? (int)lp : 0;
    if (j->echo && qc_tokenizer_decode(s->tok, j->ids.p, j->ids.n, &j->echo_text, NULL)) {
        snprintf(msg, n, "\"prompt\" holds an unknown token id");
        return -1;
    }
    return 0;
}

/* The fields both endpoints read: max tokens, stream, n, sampling, stop
 * strings. 0, or -1 with the reason in msg. */
static int job_common(qc_server_t *s, json_t *b, job_t *j, int *stream, char *msg, size_t n) {
    if (j->ids.n >= (size_t)s->n_ctx) {
        snprintf(msg, n, "the %s is %zu tokens, longer than the context (%d tokens)", j->legacy ? "prompt" : "messages",
                 j->ids.n, s->n_ctx);
        return -1;
    }
    long long max_tokens = j->legacy ? QS_LEGACY_MAX_TOKENS : QS_MAX_TOKENS_DEF, seed = 0, choices = 1, top_k = 0;
    double temp = 0, top_p = 1;
    qc_model_sampling_defaults(s->m, &j->go.sampling);
    int has_seed;
    if (qs_get_int(b, "max_tokens", j->legacy ? 0 : 1, 1 << 20, &max_tokens, msg, n) < 0 ||
        qs_get_int(b, "max_completion_tokens", 1, 1 << 20, &max_tokens, msg, n) < 0 ||
        qs_get_bool(b, "stream", stream, msg, n) < 0 || qs_get_int(b, "n", 1, 1 << 20, &choices, msg, n) < 0 ||
        (has_seed = qs_get_int(b, "seed", 0, INT64_MAX, &seed, msg, n)) < 0)
        return -1;
    if (choices > 1) {
        snprintf(msg, n, "\"n\" > 1 is not supported (one choice per request)");
        return -1;
    }
    switch (qs_get_number(b, "temperature", 0, 2, &temp, msg, n)) {
    case -1: return -1;
    case 1: j->go.sampling.temperature = (float)temp; break;
    }
    switch (qs_get_number(b, "top_p", 0, 1, &top_p, msg, n)) {
    case -1: return -1;
    case 1: j->go.sampling.top_p = top_p > 0 ? (float)top_p : 1e-6f; break;
    }
    switch (qs_get_int(b, "top_k", -1, qc_model_n_vocab(s->m), &top_k, msg, n)) {
    case -1: return -1;
    case 1: j->go.sampling.top_k = top_k > 0 ? (int)top_k : 0; break; /* 0 and -1: off */
    }
    j->go.sampling.seed = has_seed ? (uint64_t)seed : qs_random_u64();
    size_t room = (size_t)s->n_ctx - j->ids.n;
    j->go.max_tokens = (int)((size_t)max_tokens < room ? (size_t)max_tokens : room);

    json_t *stop = json_object_get(b, "stop");
    if (stop && !json_is_null(stop)) {
        json_t *one = json_is_string(stop) ? stop : NULL;
        size_t k = one ? 1 : json_is_array(stop) ? json_array_size(stop) : 0;
        if (!one && (!json_is_array(stop) || k > QS_MAX_STOP)) {
            snprintf(msg, n, "\"stop\" must be a string or an array of at most %d strings", QS_MAX_STOP);
            return -1;
        }
        for (size_t q = 0; q < k; q++) {
            json_t *sv = one ? one : json_array_get(stop, q);
            if (!json_is_string(sv) || json_string_length(sv) == 0 || json_string_length(sv) > 256) {
                snprintf(msg, n, "each \"stop\" string must be 1 to 256 bytes");
                return -1;
            }
            if (!(j->stop[j->n_stop] = strdup(json_string_value(sv)))) {
                snprintf(msg, n, "out of memory");
                return -1;
            }
            size_t l = json_string_length(sv);
            if (l > j->max_stop) j->max_stop = l;
            j->n_stop++;
        }
    }
    /* room for every log-probability: the prompt's (echo) and each token's */
    if (j->logprobs) {
        j->cap_lp = (j->echo ? j->ids.n : 0) + (size_t)j->go.max_tokens + 1;
        if (!(j->lp = calloc(j->cap_lp, sizeof *j->lp))) {
            snprintf(msg, n, "out of memory");
            return -1;
        }
        if (j->echo) { /* the prompt's first token: no log-probability */
            j->lp[0] = (lp_t){.id = j->ids.p[0], .prompt = 1};
            j->n_lp = 1;
            j->prompt_off = token_len(s->tok, j->ids.p[0]);
        }
    }
    return 0;
}

/* The last user message's text, checked by the safety rules before
 * anything else (notice.c): its notice goes with every answer. */
static void scan_last_user(qs_req_t *r, json_t *b) {
    json_t *msgs = json_object_get(b, "messages");
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        json_t *mv = json_array_get(msgs, i), *c = json_object_get(mv, "content"), *part;
        const char *role = json_string_value(json_object_get(mv, "role"));
        if (!role || strcmp(role, "user")) continue;
        if (json_is_string(c)) {
            qs_req_scan(r, json_string_value(c), json_string_length(c));
            return;
        }
        qc_buf_t text = {0};
        size_t k;
        json_array_foreach(c, k, part) {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t)) qc_buf_add(&text, json_string_value(t), json_string_length(t));
        }
        if (text.n && !text.failed) qs_req_scan(r, text.p, text.n);
        qc_buf_free(&text);
        return;
    }
}

/* A chat answer's own fields (ignored by OpenAI clients): "qcare_urgent",
 * and "qcare_urgent_kind", "qcare_presentation", "qcare_notice" when the
 * last user message is urgent. */
static void qcare_fields(const qs_req_t *r, json_t *o) {
    if (!o) return;
    json_object_set_new(o, "qcare_urgent", json_boolean(r->sr.kind && r->notice));
    if (!r->sr.kind || !r->notice) return;
    json_object_set_new(o, "qcare_urgent_kind", json_string(qc_urgent_name(r->sr.kind)));
    json_object_set_new(o, "qcare_presentation", r->sr.presentation ? json_string(r->sr.presentation) : json_null());
    json_object_set_new(o, "qcare_notice", json_string(r->notice));
}

/* A plain completion's answer, once the scheduler is done. */
static enum MHD_Result completion_answer(qs_call_t *c, struct MHD_Connection *con, qs_req_t *r) {
    job_t *j = (job_t *)c;
    size_t lp_end = lp_upto(j, 0, j->out.n, 1);
    json_t *o;
    if (j->legacy) {
        qc_buf_t text = {0};
        if (j->echo) qc_buf_puts(&text, j->echo_text ? j->echo_text : "");
        qc_buf_add(&text, j->out.p, j->out.n);
        o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:s%, s:i, s:o, s:s}], s:o}", "id", j->id, "object",
                      "text_completion", "created", (json_int_t)j->created, "model", c->s->model_name, "choices",
                      "text", text.p ? text.p : "", text.n, "index", 0, "logprobs", job_logprobs(j, j->lp, lp_end),
                      "finish_reason", job_finish(j), "usage", usage_json(j));
        if (text.failed) json_decref(o), o = NULL;
        qc_buf_free(&text);
    } else {
        o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:o, s:s}], s:o}", "id", j->id, "object",
                      "chat.completion", "created", (json_int_t)j->created, "model", c->s->model_name, "choices",
                      "index", 0, "message", "role", "assistant", "content", j->out.p ? j->out.p : "", "logprobs",
                      job_logprobs(j, j->lp, lp_end), "finish_reason", job_finish(j), "usage", usage_json(j));
        qcare_fields(r, o);
    }
    return qs_reply_json(con, r, 200, o);
}

qs_call_t *qs_completion_parse(qc_server_t *s, qs_req_t *r, int legacy, int *status, char *msg, size_t n) {
    *status = 400;
    *msg = 0;
    json_t *b = qs_parse_body(r, msg, n);
    if (!b) return NULL;
    if (!legacy) scan_last_user(r, b);
    qs_call_t *c = qs_call_new(s, sizeof(job_t), job_clear, QS_COMPLETION, 0);
    if (!c) {
        json_decref(b);
        *status = 500;
        snprintf(msg, n, "out of memory");
        return NULL;
    }
    job_t *j = (job_t *)c;
    j->legacy = legacy;
    j->created = (long long)time(NULL);
    snprintf(j->id, sizeof j->id, "%s-%lu", legacy ? "cmpl" : "chatcmpl",
             (unsigned long)atomic_fetch_add(&s->n_completions, 1) + 1);
    int stream = 0;
    int bad = (legacy ? legacy_prompt(s, b, j, msg, n) : chat_prompt(s, b, j, msg, n)) ||
              job_common(s, b, j, &stream, msg, n);
    json_decref(b);
    if (bad) {
        qs_call_free(c);
        return NULL;
    }
    c->streamed = stream;
    c->rq.ids = j->ids.p;
    c->rq.n_ids = j->ids.n;
    c->rq.sampling = j->go.sampling;
    c->rq.use_sampling = 1;
    c->rq.max_tokens = j->go.max_tokens;
    c->rq.logprobs = j->logprobs;
    c->rq.prompt_logprobs = j->logprobs && j->echo;
    c->rq.top_logprobs = j->top;
    c->rq.on_logprob = on_job_logprob;
    c->rq.on_piece = on_job_piece;
    c->rq.on_done = on_job_done;
    c->format = job_format;
    if (stream && !legacy) { /* the first chunk carries the notice (qcare_fields) */
        json_t *first = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:n, s:n}]}", "id", j->id, "object",
                                  "chat.completion.chunk", "created", (json_int_t)j->created, "model", s->model_name,
                                  "choices", "index", 0, "delta", "role", "assistant", "content", "", "logprobs",
                                  "finish_reason");
        qcare_fields(r, first);
        qs_call_sse(c, NULL, first);
    }
    return c;
}

/* Both endpoints: the request read into a job, handed to the scheduler,
 * answered whole or streamed. */
static enum MHD_Result completion(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r, int legacy) {
    char msg[512];
    int status;
    qs_call_t *c = qs_completion_parse(s, r, legacy, &status, msg, sizeof msg);
    if (!c) return qs_reply_error(con, r, (unsigned)status, "%s", msg);
    const char *session = NULL; /* X-Session-Id is only checked here: the conversation is in the body */
    if (qs_header_session(con, &session, msg, sizeof msg)) {
        qs_call_free(c);
        return qs_reply_error(con, r, 400, "%s", msg);
    }
    return qs_call_submit(con, r, c, completion_answer);
}

static enum MHD_Result v1_chat(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    return completion(s, con, r, 0);
}

static enum MHD_Result v1_completions(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    return completion(s, con, r, 1);
}

static enum MHD_Result v1_models(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    return qs_reply_json(con, r, 200,
                         json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id", s->model_name,
                                   "object", "model", "created", 0, "owned_by", "qcare"));
}

const qs_route_t qs_openai_routes[] = {
    {"/v1/models", "GET", 0, v1_models, 0},
    {"/v1/chat/completions", "POST", 0, v1_chat, 1},
    {"/v1/completions", "POST", 0, v1_completions, 0},
    {0},
};
