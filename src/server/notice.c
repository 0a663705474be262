/* notice.c — the urgent-care notice of a patient's text on every answer,
 * errors included (issue 16: the notice never depends on the model).
 *
 * A route that takes a patient's text (qs_route_t.patient) has that text
 * checked against the safety rules as soon as the body is read, before
 * any other field, its length or the queue is looked at; an urgent result
 * stays on the request (qs_req_t.sr, .notice) and every error answer of
 * the request carries it:
 *
 *   {"error": ..., "urgent": true, "urgent_kind": K, "presentation": P, "notice": N}
 *
 * (400 for a bad field or a text too long for the context, 413, 415, 503
 * for a full queue or a stopping server, and the failures of the call).
 * A body that is not JSON, or larger than the limit, has its first
 * QS_MAX_BODY bytes scanned as text with JSON's string escapes decoded.
 * The rules need no model and read the whole text. */
#include "server/srv.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

void qs_req_scan(qs_req_t *r, const char *text, size_t len) {
    if (r->sr.kind) return; /* the first urgent text decides */
    r->sr = qc_safety_check(text, len);
    if (!r->sr.kind) return;
    char buf[2048];
    qc_safety_notice_for(NULL, &r->sr, buf, sizeof buf);
    r->notice = strdup(buf); /* out of memory: the error answers go out without it */
}

static int hex4(const char *p, const char *end, uint32_t *out) {
    if (end - p < 4) return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* The body as text: JSON string escapes decoded (\uXXXX with surrogate
 * pairs to UTF-8, \n \t \r \b \f to a space), every other byte as it is
 * (the keys and punctuation are harmless to the rules). */
void qs_req_scan_body(qs_req_t *r) {
    const char *p = r->body.p, *end = p ? p + r->body.n : NULL;
    if (!p || !r->body.n) return;
    char *t = malloc(r->body.n + 1); /* never longer than the body: each escape is at least as long as its UTF-8 */
    if (!t) return;
    size_t n = 0;
    while (p < end) {
        if (*p != '\\' || end - p < 2) {
            t[n++] = *p++;
            continue;
        }
        char e = p[1];
        uint32_t c, lo;
        if (e == 'u' && !hex4(p + 2, end, &c)) {
            p += 6;
            if (c >= 0xD800 && c < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' && !hex4(p + 2, end, &lo) &&
                lo >= 0xDC00 && lo < 0xE000) {
                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            if (c >= 0xD800 && c < 0xE000) continue; /* a lone surrogate */
            n += (size_t)utf8proc_encode_char((utf8proc_int32_t)c, (utf8proc_uint8_t *)t + n);
            continue;
        }
        t[n++] = e == 'n' || e == 't' || e == 'r' || e == 'b' || e == 'f' ? ' ' : e;
        p += 2;
    }
    qs_req_scan(r, t, n);
    free(t);
}

void qs_req_urgent_fields(const qs_req_t *r, json_t *o) {
    if (!r->sr.kind || !r->notice || !json_is_object(o)) return;
    json_object_set_new(o, "urgent", json_true());
    json_object_set_new(o, "urgent_kind", json_string(qc_urgent_name(r->sr.kind)));
    json_object_set_new(o, "presentation", r->sr.presentation ? json_string(r->sr.presentation) : json_null());
    json_object_set_new(o, "notice", json_string(r->notice));
}
