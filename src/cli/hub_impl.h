/* hub_impl.h — internal to the files of the hub client (hub.h):
 *
 *   hub.c        the client handle, name checks, the file listing, the
 *                models folder and cli_resolve_model
 *   hub_http.c   HTTP over libcurl: one request's setup, the response
 *                headers, the messages for failures, HEAD with redirects
 *   hub_fetch.c  downloads: resume into FILE.part, SHA-256 or size
 *                verification, the ETag sidecar
 *
 * tests/test_pull.c compiles these three files into itself. */
#ifndef QC_HUB_IMPL_H
#define QC_HUB_IMPL_H

#include "base/base.h"
#include "cli/hub.h"

#include <curl/curl.h>

struct hub {
    char *endpoint;              /* without trailing '/' */
    struct curl_slist *headers;  /* the Authorization header, if any */
    int has_token;
    hub_progress_fn progress;
    void *user;
    int64_t downloaded;          /* body bytes written to disk, all files */
    char err[1536];
};

/* ==== helpers (hub.c) ==== */

/* Gives -1, the hub functions' failure (st, qc_seterr's, is dropped). */
static inline int hub_failed(qc_status st) {
    (void)st;
    return -1;
}

/* printf into h's message (hub_errmsg); evaluates to -1. */
#define hub_fail(h, ...) hub_failed(qc_seterr((h)->err, sizeof (h)->err, QC_ERR_IO, __VA_ARGS__))

/* A malloc'd printf; NULL when out of memory. */
char *hub_aprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies s for a message: at most cap-1 bytes, control characters as '?'
 * (names and headers come from the server). */
void hub_printable(char *dst, size_t cap, const char *s);

/* Percent-encodes s for a URL path ('/' kept when keep_slash); malloc'd,
 * NULL when out of memory. */
char *hub_url_escape(const char *s, int keep_slash);

/* ==== HTTP (hub_http.c) ==== */

/* What the response headers of one request said. With redirects followed,
 * the per-response fields describe the last response, while the X-Linked-*
 * ones are kept from the first response carrying them: the hub's redirect to
 * its CDN, not the CDN's own answer. */
typedef struct {
    long status;
    char etag[160];
    char linked_etag[160];
    int64_t length, linked_size; /* Content-Length / X-Linked-Size, -1 unknown */
    int64_t range_start;         /* Content-Range's first byte, -1 none */
    char error_code[64], error_msg[256]; /* the hub's X-Error-Code / X-Error-Message */
} hub_resp_t;

/* A GET of url with h's headers, its response headers parsed into *r, its
 * libcurl message into errbuf (CURL_ERROR_SIZE bytes); NULL when out of
 * memory. The caller sets the body's handling and frees the handle. */
CURL *hub_easy_new(hub_t *h, const char *url, hub_resp_t *r, char *errbuf);

/* The message for a failed transfer (no network, ...); -1. */
int hub_curl_fail(hub_t *h, const char *url, CURLcode cc, const char *errbuf);

/* The message for an HTTP error status; `what` names the repository or
 * file. -1. */
int hub_http_fail(hub_t *h, const hub_resp_t *r, const char *what, const char *rev, const char *url);

/* HEAD of a resolve URL into *r (see hub_http.c for the redirects). 0 or -1. */
int hub_head_meta(hub_t *h, const char *url, const char *what, const char *rev, hub_resp_t *r);

#endif
