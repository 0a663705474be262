/* api_openai.c — the OpenAI-compatible endpoints: POST /v1/chat/completions
 * (JSON, or Server-Sent Events of chat.completion.chunk objects ending with
 * "data: [DONE]") and GET /v1/models.
 *
 * A completion's messages are rendered in ChatML here (their content never
 * parsed for special tokens), with the sampling and stop strings of the
 * request; the scheduler generates (QS_COMPLETION) and this file's
 * callbacks cut the text at a stop string and stream the rest. */
#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QS_MAX_STOP 4 /* stop strings of a chat completion */

/* A chat completion's call: the prompt ids, the sampling, the stop strings
 * and the text generated so far. */
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
} job_t;

static void job_clear(qs_call_t *c) {
    job_t *j = (job_t *)c;
    qc_ids_free(&j->ids);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    qc_buf_free(&j->out);
}

/* ==== the scheduler's callbacks ==== */

/* A stream's records (qs_call_event), formatted by job_format. */
enum { EV_CHUNK = 'c', EV_END = 'f', EV_ERROR = 'x' };

/* Emits job text [emitted, limit) moved back to a UTF-8 character start
 * (mu held). */
static void job_emit(job_t *j, size_t limit) {
    while (limit > j->emitted && limit < j->out.n && ((unsigned char)j->out.p[limit] & 0xC0) == 0x80) limit--;
    if (limit <= j->emitted || !j->c.streamed) return;
    qs_call_event(&j->c, EV_CHUNK, j->out.p + j->emitted, limit - j->emitted);
    j->emitted = limit;
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
    int stop = c->failed;
    for (int i = 0; !stop && i < j->n_stop; i++) {
        char *at = memmem(j->out.p + from, j->out.n - from, j->stop[i], strlen(j->stop[i]));
        if (at) {
            j->out.n = (size_t)(at - j->out.p);
            j->out.p[j->out.n] = 0;
            j->stopped = 1;
        }
    }
    if (j->stopped) job_emit(j, j->out.n);
    else if (!stop) job_emit(j, j->out.n > j->max_stop ? j->out.n - j->max_stop + (j->max_stop ? 1 : 0) : 0);
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
        else job_emit(j, j->out.n), qs_call_event(c, EV_END, NULL, 0);
    }
    qs_call_finish(c);
}

/* ==== the stream's events (the connection's thread) ==== */

/* chat.completion.chunk objects: the text, then the finish reason and
 * usage (or an error), then [DONE]. n_out, stopped and hit_max were set
 * before the last record, under mu. */
static void job_format(qs_call_t *c, int kind, const char *data, size_t n) {
    job_t *j = (job_t *)c;
    if (kind == EV_CHUNK)
        qs_call_sse(c, NULL,
                    json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s%}, s:n}]}", "id", j->id, "object",
                              "chat.completion.chunk", "created", (json_int_t)j->created, "model", c->s->model_name,
                              "choices", "index", 0, "delta", "content", data, n, "finish_reason"));
    if (kind == EV_END)
        qs_call_sse(c, NULL,
                    json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{}, s:s}], s:o}", "id", j->id, "object",
                              "chat.completion.chunk", "created", (json_int_t)j->created, "model", c->s->model_name,
                              "choices", "index", 0, "delta", "finish_reason", job_finish(j), "usage", usage_json(j)));
    if (kind == EV_ERROR)
        qs_call_sse(c, NULL, json_pack("{s:{s:s%, s:s}}", "error", "message", data, n, "type", "server_error"));
    if (kind == EV_END || kind == EV_ERROR) qs_call_push(c, "data: [DONE]\n\n", 14);
}

/* ==== the request ==== */

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

/* Reads the request into j: the messages in ChatML (their content as plain
 * text, never parsed for special tokens), sampling and stop strings. 0, or
 * -1 with the reason in msg. */
static int job_parse(qc_server_t *s, json_t *b, job_t *j, int *stream, char *msg, size_t n) {
    json_t *msgs = json_object_get(b, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        snprintf(msg, n, "\"messages\" (a non-empty array) is required");
        return -1;
    }
    size_t i;
    json_t *mv;
    json_array_foreach(msgs, i, mv) {
        const char *role = json_string_value(json_object_get(mv, "role"));
        json_t *c = json_object_get(mv, "content");
        if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))) {
            snprintf(msg, n, "messages[%zu].role must be \"system\", \"user\" or \"assistant\"", i);
            return -1;
        }
        if (!json_is_string(c)) {
            snprintf(msg, n, "messages[%zu].content must be a string", i);
            return -1;
        }
        char head[32];
        snprintf(head, sizeof head, "<|im_start|>%s\n", role);
        if (add_ids(s->tok, head, strlen(head), 1, j) ||
            add_ids(s->tok, json_string_value(c), json_string_length(c), 0, j) ||
            add_ids(s->tok, "<|im_end|>\n", 11, 1, j)) {
            snprintf(msg, n, "messages[%zu].content is not valid UTF-8", i);
            return -1;
        }
    }
    if (add_ids(s->tok, "<|im_start|>assistant\n", 22, 1, j) ||
        (s->qwen3 && add_ids(s->tok, "<think>\n\n</think>\n\n", 19, 1, j))) {
        snprintf(msg, n, "out of memory");
        return -1;
    }
    if (j->ids.n >= (size_t)s->n_ctx) {
        snprintf(msg, n, "the messages are %zu tokens, longer than the context (%d tokens)", j->ids.n, s->n_ctx);
        return -1;
    }
    long long max_tokens = QS_MAX_TOKENS_DEF, seed = 0;
    double temp = 0, top_p = 1;
    qc_model_sampling_defaults(s->m, &j->go.sampling);
    int has_seed;
    if (qs_get_int(b, "max_tokens", 1, 1 << 20, &max_tokens, msg, n) < 0 ||
        qs_get_int(b, "max_completion_tokens", 1, 1 << 20, &max_tokens, msg, n) < 0 ||
        qs_get_bool(b, "stream", stream, msg, n) < 0 ||
        (has_seed = qs_get_int(b, "seed", 0, INT64_MAX, &seed, msg, n)) < 0)
        return -1;
    switch (qs_get_number(b, "temperature", 0, 2, &temp, msg, n)) {
    case -1: return -1;
    case 1: j->go.sampling.temperature = (float)temp; break;
    }
    switch (qs_get_number(b, "top_p", 0, 1, &top_p, msg, n)) {
    case -1: return -1;
    case 1: j->go.sampling.top_p = top_p > 0 ? (float)top_p : 1e-6f; break;
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
    return 0;
}

static enum MHD_Result chat_answer(qs_call_t *c, struct MHD_Connection *con, qs_req_t *r) {
    job_t *j = (job_t *)c;
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:o}", "id", j->id, "object",
                          "chat.completion", "created", (json_int_t)j->created, "model", c->s->model_name, "choices",
                          "index", 0, "message", "role", "assistant", "content", j->out.p ? j->out.p : "",
                          "finish_reason", job_finish(j), "usage", usage_json(j));
    return qs_reply_json(con, r, 200, o);
}

static enum MHD_Result v1_chat(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    char msg[512];
    json_t *b = qs_parse_body(r, msg, sizeof msg);
    if (!b) return qs_reply_error(con, r, 400, "%s", msg);
    qs_call_t *c = qs_call_new(s, sizeof(job_t), job_clear, QS_COMPLETION, 0);
    if (!c) {
        json_decref(b);
        return qs_reply_error(con, r, 500, "out of memory");
    }
    job_t *j = (job_t *)c;
    j->created = (long long)time(NULL);
    snprintf(j->id, sizeof j->id, "chatcmpl-%lu", (unsigned long)atomic_fetch_add(&s->n_completions, 1) + 1);
    int stream = 0;
    int bad = job_parse(s, b, j, &stream, msg, sizeof msg);
    json_decref(b);
    if (bad) {
        qs_call_free(c);
        return qs_reply_error(con, r, 400, "%s", msg);
    }
    c->streamed = stream;
    c->rq.ids = j->ids.p;
    c->rq.n_ids = j->ids.n;
    c->rq.sampling = j->go.sampling;
    c->rq.use_sampling = 1;
    c->rq.max_tokens = j->go.max_tokens;
    c->rq.on_piece = on_job_piece;
    c->rq.on_done = on_job_done;
    c->format = job_format;
    if (stream)
        qs_call_sse(c, NULL,
                    json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:n}]}", "id", j->id, "object",
                              "chat.completion.chunk", "created", (json_int_t)j->created, "model", s->model_name,
                              "choices", "index", 0, "delta", "role", "assistant", "content", "", "finish_reason"));
    return qs_call_submit(con, r, c, chat_answer);
}

static enum MHD_Result v1_models(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    return qs_reply_json(con, r, 200,
                         json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id", s->model_name,
                                   "object", "model", "created", 0, "owned_by", "qcare"));
}

const qs_route_t qs_openai_routes[] = {
    {"/v1/models", "GET", 0, v1_models},
    {"/v1/chat/completions", "POST", 0, v1_chat},
    {0},
};
