/* fuzz_api.c — each POST endpoint's body, parsed as its handler parses it
 * (srv.h, qs_care_parse / qs_completion_parse / qs_classify_parse), with
 * no running server: byte 0 picks the endpoint (/api/emotion,
 * /api/analyze, /v1/chat/completions, /v1/completions, /v1/classify), the
 * rest is the body.
 *
 * Checks: a refused body gives 400 (or 500 "out of memory") and a message;
 * an accepted one gives a call that holds what the scheduler relies on:
 * care text that is NUL-terminated valid UTF-8 and fits the context with
 * room for the prompts; a session id of 1 to 128 bytes; prompt ids inside
 * the vocabulary, prompt plus max_tokens inside the context, sampling in
 * range, at most QS_TOP_LOGPROBS alternatives; a classify task. A stream's
 * first event (chat's role chunk) is one well-formed Server-Sent Event. */
#include "fuzz_srv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_server();
    return 0;
}

static void check_care(const qc_server_t *s, const qs_call_t *c, int analyze) {
    const qs_request_t *q = &c->rq;
    FUZZ_CHECK(q->kind == (analyze ? QS_ANALYZE : QS_EMOTION), "kind %d", q->kind);
    FUZZ_CHECK(q->text && fuzz_utf8(q->text, strlen(q->text)), "care text missing or not UTF-8");
    FUZZ_CHECK(q->text[strspn(q->text, " \t\r\n")], "blank text accepted");
    int32_t *ids = NULL;
    size_t n = 0;
    FUZZ_CHECK(!qc_tokenizer_encode(s->tok, q->text, strlen(q->text), 0, &ids, &n), "text does not encode");
    free(ids);
    FUZZ_CHECK(n + 512 <= (size_t)s->n_ctx, "text of %zu tokens accepted", n);
    if (q->session) FUZZ_CHECK(*q->session && strlen(q->session) <= 128, "session of %zu bytes", strlen(q->session));
    if (analyze) FUZZ_CHECK(q->max_tokens >= 1 && q->max_tokens <= s->n_ctx, "max_tokens %d", q->max_tokens);
}

static void check_completion(const qc_server_t *s, const qs_call_t *c) {
    const qs_request_t *q = &c->rq;
    FUZZ_CHECK(q->kind == QS_COMPLETION && q->use_sampling, "kind %d", q->kind);
    FUZZ_CHECK(q->n_ids >= 1 && q->n_ids < (size_t)s->n_ctx, "%zu prompt ids", q->n_ids);
    for (size_t i = 0; i < q->n_ids; i++)
        FUZZ_CHECK(q->ids[i] >= 0 && q->ids[i] < qc_model_n_vocab(s->m), "prompt id %d", q->ids[i]);
    FUZZ_CHECK(q->max_tokens >= 0 && q->n_ids + (size_t)q->max_tokens <= (size_t)s->n_ctx, "max_tokens %d after %zu",
               q->max_tokens, q->n_ids);
    const qc_sampling_t *sp = &q->sampling;
    FUZZ_CHECK(sp->temperature >= 0 && sp->temperature <= 2, "temperature %g", sp->temperature);
    FUZZ_CHECK(sp->top_p > 0 && sp->top_p <= 1, "top_p %g", sp->top_p);
    FUZZ_CHECK(sp->top_k >= 0 && sp->top_k <= qc_model_n_vocab(s->m), "top_k %d", sp->top_k);
    FUZZ_CHECK(q->top_logprobs >= 0 && q->top_logprobs <= QS_TOP_LOGPROBS, "top_logprobs %d", q->top_logprobs);
    FUZZ_CHECK(!q->prompt_logprobs || q->logprobs, "prompt logprobs without logprobs");
    /* a chat stream's first event, made before submitting */
    if (c->ev.n) {
        FUZZ_CHECK(c->ev.n > 8 && !memcmp(c->ev.p, "data: ", 6) && !memcmp(c->ev.p + c->ev.n - 2, "\n\n", 2),
                   "first event malformed");
        json_t *j = json_loadb(c->ev.p + 6, c->ev.n - 8, 0, NULL);
        FUZZ_CHECK(j, "first event's data is not JSON");
        json_decref(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    qc_server_t *s = fuzz_server();
    int which = data[0] % 5;
    qs_req_t r = {0};
    r.body.p = (char *)data + 1;
    r.body.n = size - 1;
    char msg[512] = "x";
    int status = 0;
    qs_call_t *c = which < 2    ? qs_care_parse(s, NULL, &r, which == 1, &status, msg, sizeof msg)
                   : which < 4  ? qs_completion_parse(s, &r, which == 3, &status, msg, sizeof msg)
                                : qs_classify_parse(s, &r, &status, msg, sizeof msg);
    if (!c) {
        FUZZ_CHECK(status == 400 || (status == 500 && !strcmp(msg, "out of memory")), "status %d (%s)", status, msg);
        FUZZ_CHECK(*msg && strlen(msg) < sizeof msg, "refused without a message");
    } else {
        if (which < 2) check_care(s, c, which == 1);
        else if (which < 4) check_completion(s, c);
        else FUZZ_CHECK(c->rq.kind == QS_CLASSIFY && c->rq.labels && c->rq.text, "classify call incomplete");
        qs_call_free(c);
    }
    /* an urgent text's notice stays on the request, freed with it (http.c) */
    FUZZ_CHECK(!r.sr.kind == !r.notice, "urgent %d, notice %p", (int)r.sr.kind, (void *)r.notice);
    free(r.notice);
    return 0;
}
