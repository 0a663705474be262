/* hub_http.c — HTTP for the hub client, over libcurl: the setup every
 * request shares (user agent, the token, redirects, timeouts), the response
 * headers the client reads (status, ETag, the hub's X-Linked-* and X-Error-*
 * headers, Content-Range), the messages for failed requests, and the HEAD
 * that finds out what a file is. */
#include "cli/hub_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ==== response headers ==== */

static void resp_init(hub_resp_t *r) {
    memset(r, 0, sizeof *r);
    r->length = r->linked_size = r->range_start = -1;
}

static int64_t parse_size(const char *s) {
    if (!isdigit((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || (*end && *end != '-' && *end != '/') ? -1 : (int64_t)v;
}

/* An ETag's value: W/ and quotes stripped, hex digits lowercased. */
static void copy_etag(char *dst, size_t cap, const char *v) {
    if (!strncmp(v, "W/", 2)) v += 2;
    size_t n = 0;
    for (; *v && n + 1 < cap; v++)
        if (*v != '"') dst[n++] = (char)tolower((unsigned char)*v);
    dst[n] = 0;
    hub_printable(dst, cap, dst);
}

static size_t on_header(char *buf, size_t size, size_t nmemb, void *user) {
    hub_resp_t *r = user;
    size_t len = size * nmemb;
    char line[512];
    if (len >= sizeof line) return len; /* no header read here is that long */
    memcpy(line, buf, len);
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' ')) len--;
    line[len] = 0;
    if (!strncmp(line, "HTTP/", 5)) { /* a new response in the chain */
        const char *sp = strchr(line, ' ');
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        r->etag[0] = 0;
        r->length = r->range_start = -1;
        return size * nmemb;
    }
    char *v = strchr(line, ':');
    if (!v) return size * nmemb;
    *v++ = 0;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(line, "etag")) copy_etag(r->etag, sizeof r->etag, v);
    else if (!strcasecmp(line, "x-linked-etag") && !r->linked_etag[0]) copy_etag(r->linked_etag, sizeof r->linked_etag, v);
    else if (!strcasecmp(line, "content-length")) r->length = parse_size(v);
    else if (!strcasecmp(line, "x-linked-size") && r->linked_size < 0) r->linked_size = parse_size(v);
    else if (!strcasecmp(line, "content-range") && !strncmp(v, "bytes ", 6)) r->range_start = parse_size(v + 6);
    else if (!strcasecmp(line, "x-error-code")) hub_printable(r->error_code, sizeof r->error_code, v);
    else if (!strcasecmp(line, "x-error-message")) hub_printable(r->error_msg, sizeof r->error_msg, v);
    return size * nmemb;
}

/* ==== requests ==== */

CURL *hub_easy_new(hub_t *h, const char *url, hub_resp_t *r, char *errbuf) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    errbuf[0] = 0;
    resp_init(r);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "qcare/" QCARE_VERSION);
    /* libcurl (>= 7.58) sends a custom Authorization header only to the
     * first host: the token never reaches the CDN the hub redirects to
     * (CURLOPT_UNRESTRICTED_AUTH stays off). */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled transfer (under 1 byte/s for 60 s) fails and can be resumed. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    return c;
}

/* ==== failures ==== */

int hub_curl_fail(hub_t *h, const char *url, CURLcode cc, const char *errbuf) {
    return hub_fail(h, "cannot reach %s: %s (no network? a mirror can be set with HF_ENDPOINT)", url,
                    errbuf[0] ? errbuf : curl_easy_strerror(cc));
}

int hub_http_fail(hub_t *h, const hub_resp_t *r, const char *what, const char *rev, const char *url) {
    char says[320] = "";
    if (r->error_msg[0]) snprintf(says, sizeof says, " (the hub says: %s)", r->error_msg);
    if (r->status == 404 && !strcmp(r->error_code, "RevisionNotFound"))
        return hub_fail(h, "revision %s of %s not found at %s: 404%s", rev, what, url, says);
    if (r->status == 404) return hub_fail(h, "%s not found at %s: 404%s", what, url, says);
    if (r->status == 401 || r->status == 403)
        return hub_fail(h, "%s: access denied at %s: %ld%s. The repository is gated or private (or does not exist); %s", what,
                        url, r->status, says,
                        h->has_token ? "HF_TOKEN was sent and refused: check the token, and accept the model's terms on its page"
                                     : "set HF_TOKEN to an access token that can read it (https://huggingface.co/settings/tokens)");
    return hub_fail(h, "%s: %s answered HTTP %ld%s", what, url, r->status, says);
}

/* The length of a URL's scheme://host:port part. */
static size_t origin_len(const char *url) {
    const char *p = strstr(url, "://");
    if (!p) return strlen(url);
    p += 3;
    return (size_t)(p - url) + strcspn(p, "/?#");
}

/* HEAD of a resolve URL into *r. Redirects are followed here, as
 * huggingface_hub does, and only until a response carries X-Linked-Etag:
 * that is the hub's redirect of an LFS file to its CDN, which holds the
 * file's SHA-256 and size; the CDN's signed URLs are meant for the GET. The
 * token goes only to the endpoint's own scheme, host and port. */
int hub_head_meta(hub_t *h, const char *url0, const char *what, const char *rev, hub_resp_t *r) {
    char errbuf[CURL_ERROR_SIZE];
    char *url = strdup(url0);
    size_t own = origin_len(h->endpoint);
    for (int hops = 0; url; hops++) {
        CURL *c = hub_easy_new(h, url, r, errbuf);
        if (!c) break;
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        if (origin_len(url) != own || strncasecmp(url, h->endpoint, own)) curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
        CURLcode cc = curl_easy_perform(c);
        char *next = NULL, *loc = NULL;
        int redirect = r->status >= 300 && r->status < 400;
        if (cc == CURLE_OK && redirect && !r->linked_etag[0] && hops < 10 &&
            curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc && !(next = strdup(loc)))
            cc = CURLE_OUT_OF_MEMORY;
        curl_easy_cleanup(c);
        int rc = 0;
        if (cc != CURLE_OK) rc = hub_curl_fail(h, url, cc, errbuf);
        else if (!next && r->status != 200 && !(redirect && r->linked_etag[0])) rc = hub_http_fail(h, r, what, rev, url);
        free(url);
        if (!next) return rc;
        url = next;
    }
    return hub_fail(h, "out of memory");
}
