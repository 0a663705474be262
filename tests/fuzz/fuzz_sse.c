/* fuzz_sse.c — the Server-Sent Events writer of a streamed call and its
 * UTF-8 splitter: a streamed chat completion, completion or
 * /api/analyze call (made by the endpoint's parse function) driven
 * through its scheduler callbacks with reply pieces from the input, its
 * records formatted into events (qs_call_drain) now and then, as the
 * connection's reader does.
 *
 * Input: byte 0 the kind (bits 0-1: chat, completions, analyze; bit 2
 * logprobs; bit 3 echo; bits 4-6 alternatives), then stop strings
 * separated by 0x01 up to a 0x00, then the reply pieces separated by
 * 0xFF; byte values of a piece also pick when the records are formatted.
 *
 * Checks: the events are exactly "[event: NAME\n]data: JSON\n\n" with JSON
 * that parses; the stream ends with [DONE] (completions) or a done event
 * (analyze); when every piece is valid UTF-8, nothing fails and the text
 * of the chunks, put together, is the reply: for analyze all of it; for
 * completions a prefix of it that holds no stop string, and what was cut
 * starts with one (echo: after the prompt's text); log-probability
 * entries never outnumber the tokens. */
#include "fuzz_srv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_server();
    return 0;
}

#define PROMPT "Hello world"

/* The body of the request kind asks for; NULL when a stop string is not
 * valid UTF-8 (no JSON could carry it). */
static char *make_body(int kind, int lp, int echo, int top, json_t *stops) {
    json_t *b;
    if (kind == 0)
        b = json_pack("{s:[{s:s, s:s}], s:b, s:i}", "messages", "role", "user", "content", "hi", "stream", 1,
                      "max_tokens", 200);
    else if (kind == 1)
        b = json_pack("{s:s, s:b, s:b, s:i}", "prompt", PROMPT, "stream", 1, "echo", echo, "max_tokens", 200);
    else
        b = json_pack("{s:s, s:b}", "text", "I feel a bit worried today.", "stream", 1);
    FUZZ_CHECK(b, "json_pack failed");
    if (kind == 0 && lp) {
        json_object_set_new(b, "logprobs", json_true());
        json_object_set_new(b, "top_logprobs", json_integer(top));
    }
    if (kind == 1 && lp) json_object_set_new(b, "logprobs", json_integer(top > 5 ? 5 : top));
    if (kind != 2 && json_array_size(stops)) json_object_set(b, "stop", stops);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

/* Splits the events of ev[0..n) and collects the text of the chunks;
 * returns the log-probability entries seen. *last: the last data line. */
static size_t read_events(int kind, const char *p, size_t n, qc_buf_t *text, char *last, size_t last_n) {
    const char *end = p + n;
    size_t n_lp = 0;
    *last = 0;
    while (p < end) {
        char name[32] = "";
        if (end - p > 7 && !memcmp(p, "event: ", 7)) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            FUZZ_CHECK(nl && nl - p - 7 < (long)sizeof name, "event line");
            memcpy(name, p + 7, (size_t)(nl - p - 7));
            name[nl - p - 7] = 0;
            p = nl + 1;
        }
        FUZZ_CHECK(end - p > 8 && !memcmp(p, "data: ", 6), "an event without data: %.20s", p);
        p += 6;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        FUZZ_CHECK(nl && nl + 1 < end && nl[1] == '\n', "data line not ended by a blank line");
        snprintf(last, last_n, "%.*s", (int)(nl - p), p);
        if (!(nl - p == 6 && !memcmp(p, "[DONE]", 6))) {
            json_error_t je;
            json_t *j = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &je); /* a token may be a NUL byte */
            FUZZ_CHECK(j, "data is not JSON: %s", je.text);
            json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
            json_t *t = kind == 0   ? json_object_get(json_object_get(ch, "delta"), "content")
                        : kind == 1 ? json_object_get(ch, "text")
                        : !strcmp(name, "chunk") ? json_object_get(j, "text")
                                                 : NULL;
            if (t) qc_buf_add(text, json_string_value(t), json_string_length(t));
            json_t *lp = json_object_get(ch, "logprobs");
            n_lp += kind == 0 ? json_array_size(json_object_get(lp, "content"))
                              : json_array_size(json_object_get(lp, "tokens"));
            json_decref(j);
        }
        p = nl + 2;
    }
    return n_lp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    qc_server_t *s = fuzz_server();
    int kind = data[0] & 3, lp = data[0] >> 2 & 1, echo = data[0] >> 3 & 1, top = data[0] >> 4 & 7;
    if (kind == 3) return 0;
    const uint8_t *p = data + 1, *end = data + size;
    json_t *stops = json_array();
    const uint8_t *z = memchr(p, 0, (size_t)(end - p));
    const uint8_t *stop_end = z ? z : p;
    for (const uint8_t *q = p; q < stop_end;) {
        const uint8_t *sep = memchr(q, 1, (size_t)(stop_end - q));
        const uint8_t *e = sep ? sep : stop_end;
        json_t *one = json_stringn((const char *)q, (size_t)(e - q));
        if (!one) {
            json_decref(stops);
            return 0;
        }
        json_array_append_new(stops, one);
        q = e + 1;
    }
    if (z) p = z + 1;
    if (kind == 2) json_array_clear(stops); /* analyze has no stop strings */
    char *body = make_body(kind, lp, echo, top, stops);
    qs_req_t r = {0};
    r.body.p = body;
    r.body.n = strlen(body);
    char msg[512];
    int status;
    qs_call_t *c = kind == 2 ? qs_care_parse(s, NULL, &r, 1, &status, msg, sizeof msg)
                             : qs_completion_parse(s, &r, kind == 1, &status, msg, sizeof msg);
    free(body);
    if (!c) { /* stop strings the endpoint refuses (empty, too long, too many) */
        FUZZ_CHECK(status == 400, "status %d: %s", status, msg);
        json_decref(stops);
        return 0;
    }
    FUZZ_CHECK(c->streamed, "not a stream");
    atomic_fetch_add(&c->refs, 1); /* the scheduler's reference, let go in on_done */
    qs_request_t *q = &c->rq;
    qs_logprob_t l = {.id = 0, .logprob = -1.5, .n_top = QS_TOP_LOGPROBS};
    for (int k = 0; k < QS_TOP_LOGPROBS; k++) l.top_id[k] = k * 7 + 3, l.top_logprob[k] = -2.0 - k;
    if (kind == 2) {
        qc_emotion_t e = {.label = 2, .probs = {0.25f, 0.25f, 0.5f}};
        q->on_emotion(q->user, &e);
    }
    if (q->prompt_logprobs)
        for (size_t i = 1; i < q->n_ids; i++) l.id = q->ids[i], q->on_logprob(q->user, 1, &l);
    qc_buf_t full = {0};
    size_t n_out = 0;
    int valid = 1, ended = 0;
    while (p < end && !ended && n_out < (size_t)q->max_tokens) {
        const uint8_t *sep = memchr(p, 0xFF, (size_t)(end - p));
        const uint8_t *e = sep ? sep : end;
        size_t len = (size_t)(e - p);
        if (!fuzz_utf8((const char *)p, len)) valid = 0;
        if (q->logprobs) l.id = (int32_t)((len * 31 + n_out) % (size_t)qc_model_n_vocab(s->m)), q->on_logprob(q->user, 0, &l);
        qc_buf_add(&full, p, len);
        ended = q->on_piece(q->user, (const char *)p, len);
        n_out++;
        if (len && p[0] % 3 == 0) qs_call_drain(c);
        p = sep ? sep + 1 : end;
    }
    q->on_done(q->user, QC_OK, "", q->n_ids, n_out, !ended);
    qs_call_drain(c);

    qc_buf_t got = {0};
    char last[512];
    size_t n_lp = read_events(kind, c->ev.p ? c->ev.p : "", c->ev.n, &got, last, sizeof last);
    if (valid) {
        FUZZ_CHECK(!c->ev_failed && !c->failed, "formatting failed on valid UTF-8");
        FUZZ_CHECK(kind == 2 ? !strncmp(last, "{\"chunks\"", 9) : !strcmp(last, "[DONE]"), "stream ends with %s", last);
        const char *g = got.p ? got.p : "";
        size_t gn = got.n;
        if (kind == 1 && echo) {
            FUZZ_CHECK(gn >= strlen(PROMPT) && !memcmp(g, PROMPT, strlen(PROMPT)), "echo missing");
            g += strlen(PROMPT), gn -= strlen(PROMPT);
        }
        const char *f = full.p ? full.p : "";
        FUZZ_CHECK(gn <= full.n && !memcmp(g, f, gn), "streamed text is not the reply's start");
        if (kind == 2) FUZZ_CHECK(gn == full.n, "analyze streamed %zu of %zu bytes", gn, full.n);
        int cut_ok = gn == full.n;
        for (size_t i = 0; i < json_array_size(stops); i++) {
            json_t *sv = json_array_get(stops, i);
            const char *st = json_string_value(sv);
            size_t sl = json_string_length(sv);
            FUZZ_CHECK(!memmem(g, gn, st, sl), "stop string %zu left in the text", i);
            if (full.n - gn >= sl && !memcmp(f + gn, st, sl)) cut_ok = 1;
        }
        FUZZ_CHECK(cut_ok, "text cut at %zu of %zu bytes, not at a stop string", gn, full.n);
        FUZZ_CHECK(n_lp <= n_out + (kind == 1 && echo ? q->n_ids : 0), "%zu log-probability entries for %zu tokens",
                   n_lp, n_out);
    }
    qc_buf_free(&full);
    qc_buf_free(&got);
    json_decref(stops);
    qs_call_free(c);
    return 0;
}
