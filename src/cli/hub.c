/* hub.c — the Hugging Face hub client behind `qcare pull` (see hub.h): the
 * file listing, downloads that resume and verify, the models folder, and
 * cli_resolve_model. */
#include "cli/hub.h"
#include "cli/cli.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LISTING_MAX (16 << 20) /* bytes; the hub's largest listings are a few MB */
#define MAX_ATTEMPTS 5         /* transfers of one file, as long as each one makes progress */
#define SIDECAR_DIR ".qcare-pull"

struct hub {
    char *endpoint;              /* without trailing '/' */
    struct curl_slist *headers;  /* the Authorization header, if any */
    int has_token;
    hub_progress_fn progress;
    void *user;
    int64_t downloaded;          /* body bytes written to disk, all files */
    char err[1536];
};

/* ==== small helpers ==== */

static char *aprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int fail(hub_t *h, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->err, sizeof h->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* Copies s for a message: at most cap-1 bytes, control characters as '?'
 * (names and headers come from the server). */
static void printable(char *dst, size_t cap, const char *s) {
    size_t i = 0;
    for (; s && s[i] && i + 1 < cap; i++) dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    dst[i] = 0;
}

static void emit(hub_t *h, hub_progress_t *p, int event) {
    p->event = event;
    if (h->progress) h->progress(h->user, p);
}

static void note(hub_t *h, const char *file, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hub_progress_t p = {.file = file, .total = -1, .note = msg};
    emit(h, &p, HUB_EV_NOTE);
}

/* Percent-encodes s for a URL path; '/' is kept when keep_slash. */
static char *url_escape(const char *s, int keep_slash) {
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (!out) return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) *o++ = (char)c;
        else o += sprintf(o, "%%%02X", c);
    }
    *o = 0;
    return out;
}

int hub_mkdirs(const char *path) {
    char *p = strdup(path);
    if (!p) return -1;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        struct stat st;
        if (mkdir(p, 0755) && (errno != EEXIST || stat(p, &st) || !S_ISDIR(st.st_mode))) {
            if (errno == EEXIST) errno = ENOTDIR;
            free(p);
            return -1;
        }
        if (!(*s = c)) break;
    }
    free(p);
    return 0;
}

/* mkdir -p of the folder holding path. */
static int mkdirs_parent(const char *path) {
    char *p = strdup(path);
    if (!p) return -1;
    char *slash = strrchr(p, '/');
    int rc = 0;
    if (slash && slash != p) {
        *slash = 0;
        rc = hub_mkdirs(p);
    }
    free(p);
    return rc;
}

static int is_sha256(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n])) return 0;
    return n == 64;
}

static void sha_hex(EVP_MD_CTX *sha, char hex[65]) {
    unsigned char d[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(sha, d, &len);
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", d[i]);
}

/* Feeds the first `len` bytes of path (-1: all of it) to sha. */
static int sha_file(const char *path, int64_t len, EVP_MD_CTX *sha) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    int64_t left = len;
    int rc = buf ? 0 : -1;
    while (!rc && left != 0) {
        size_t want = left < 0 || left > CHUNK ? CHUNK : (size_t)left;
        ssize_t r = read(fd, buf, want);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || (r == 0 && left > 0)) rc = -1;
        if (r <= 0) break;
        EVP_DigestUpdate(sha, buf, (size_t)r);
        if (left > 0) left -= r;
    }
    free(buf);
    close(fd);
    return rc;
}

/* ==== HTTP ==== */

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
} resp_t;

static void resp_init(resp_t *r) {
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
    printable(dst, cap, dst);
}

static size_t on_header(char *buf, size_t size, size_t nmemb, void *user) {
    resp_t *r = user;
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
    else if (!strcasecmp(line, "x-error-code")) printable(r->error_code, sizeof r->error_code, v);
    else if (!strcasecmp(line, "x-error-message")) printable(r->error_msg, sizeof r->error_msg, v);
    return size * nmemb;
}

static CURL *easy_new(hub_t *h, const char *url, resp_t *r, char *errbuf) {
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

static int curl_fail(hub_t *h, const char *url, CURLcode cc, const char *errbuf) {
    return fail(h, "cannot reach %s: %s (no network? a mirror can be set with HF_ENDPOINT)", url,
                errbuf[0] ? errbuf : curl_easy_strerror(cc));
}

/* The message for an HTTP error status; `what` names the repository or file. */
static int http_fail(hub_t *h, const resp_t *r, const char *what, const char *rev, const char *url) {
    char says[320] = "";
    if (r->error_msg[0]) snprintf(says, sizeof says, " (the hub says: %s)", r->error_msg);
    if (r->status == 404 && !strcmp(r->error_code, "RevisionNotFound"))
        return fail(h, "revision %s of %s not found at %s: 404%s", rev, what, url, says);
    if (r->status == 404) return fail(h, "%s not found at %s: 404%s", what, url, says);
    if (r->status == 401 || r->status == 403)
        return fail(h, "%s: access denied at %s: %ld%s. The repository is gated or private (or does not exist); %s", what,
                    url, r->status, says,
                    h->has_token ? "HF_TOKEN was sent and refused: check the token, and accept the model's terms on its page"
                                 : "set HF_TOKEN to an access token that can read it (https://huggingface.co/settings/tokens)");
    return fail(h, "%s: %s answered HTTP %ld%s", what, url, r->status, says);
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
static int head_meta(hub_t *h, const char *url0, const char *what, const char *rev, resp_t *r) {
    char errbuf[CURL_ERROR_SIZE];
    char *url = strdup(url0);
    size_t own = origin_len(h->endpoint);
    for (int hops = 0; url; hops++) {
        CURL *c = easy_new(h, url, r, errbuf);
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
        if (cc != CURLE_OK) rc = curl_fail(h, url, cc, errbuf);
        else if (!next && r->status != 200 && !(redirect && r->linked_etag[0])) rc = http_fail(h, r, what, rev, url);
        free(url);
        if (!next) return rc;
        url = next;
    }
    return fail(h, "out of memory");
}

/* ==== client ==== */

hub_t *hub_new(const char *endpoint, const char *token) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) return NULL;
    hub_t *h = calloc(1, sizeof *h);
    if (!h || !(h->endpoint = strdup(endpoint))) goto fail;
    size_t n = strlen(h->endpoint);
    while (n && h->endpoint[n - 1] == '/') h->endpoint[--n] = 0;
    if (token && *token) {
        char *line = aprintf("Authorization: Bearer %s", token);
        h->headers = line ? curl_slist_append(NULL, line) : NULL;
        free(line);
        if (!h->headers) goto fail;
        h->has_token = 1;
    }
    return h;
fail:
    hub_free(h);
    if (!h) curl_global_cleanup();
    return NULL;
}

void hub_free(hub_t *h) {
    if (!h) return;
    curl_slist_free_all(h->headers);
    free(h->endpoint);
    free(h);
    curl_global_cleanup();
}

const char *hub_errmsg(const hub_t *h) { return h->err; }

void hub_set_progress(hub_t *h, hub_progress_fn fn, void *user) {
    h->progress = fn;
    h->user = user;
}

int64_t hub_bytes_downloaded(const hub_t *h) { return h->downloaded; }

/* ==== names ==== */

static int repo_part_valid(const char *s, size_t n) {
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') return 0;
        if (c == '.' && i + 1 < n && s[i + 1] == '.') return 0;
    }
    return 1;
}

int hub_repo_valid(const char *repo) {
    const char *slash = repo ? strchr(repo, '/') : NULL;
    if (!slash || strchr(slash + 1, '/')) return 0;
    return repo_part_valid(repo, (size_t)(slash - repo)) && repo_part_valid(slash + 1, strlen(slash + 1));
}

int hub_file_valid(const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 255 || name[0] == '/') return 0;
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\') return 0;
    for (const char *seg = name;;) { /* every component: not empty, not "." or ".." */
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) return 0;
        if (!end) return 1;
        seg = end + 1;
    }
}

/* ==== listing ==== */

typedef struct {
    char *buf;
    size_t len, cap;
    int too_big;
} membuf_t;

static size_t on_body_mem(char *data, size_t size, size_t nmemb, void *user) {
    membuf_t *m = user;
    size_t len = size * nmemb;
    if (m->len + len + 1 > LISTING_MAX) {
        m->too_big = 1;
        return 0;
    }
    if (m->len + len + 1 > m->cap) {
        size_t cap = (m->len + len + 1) * 2;
        char *nb = realloc(m->buf, cap);
        if (!nb) return 0;
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, len);
    m->len += len;
    return len;
}

void hub_strv_free(char **v) {
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

int hub_list(hub_t *h, const char *repo, const char *rev, char ***files, size_t *n) {
    char errbuf[CURL_ERROR_SIZE], name[300];
    resp_t r;
    membuf_t m = {0};
    json_t *root = NULL;
    char **v = NULL;
    int rc = -1;
    char *erev = url_escape(rev, 0);
    char *url = erev ? aprintf("%s/api/models/%s/revision/%s", h->endpoint, repo, erev) : NULL;
    CURL *c = url ? easy_new(h, url, &r, errbuf) : NULL;
    *files = NULL;
    *n = 0;
    if (!c) {
        fail(h, "out of memory");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_mem);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* JSON compresses well */
    CURLcode cc = curl_easy_perform(c);
    if (m.too_big) {
        fail(h, "the file listing at %s is larger than %d MB: refusing it", url, LISTING_MAX >> 20);
        goto done;
    }
    if (cc != CURLE_OK) {
        curl_fail(h, url, cc, errbuf);
        goto done;
    }
    if (r.status != 200) {
        char what[200];
        snprintf(what, sizeof what, "repository %s", repo);
        http_fail(h, &r, what, rev, url);
        goto done;
    }
    json_error_t jerr;
    root = json_loadb(m.buf ? m.buf : "", m.len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *sib = json_is_object(root) ? json_object_get(root, "siblings") : NULL;
    if (!root) {
        fail(h, "the file listing at %s is not valid JSON: %s (line %d)", url, jerr.text, jerr.line);
        goto done;
    }
    if (!json_is_array(sib)) {
        fail(h, "the file listing at %s has no \"siblings\" array", url);
        goto done;
    }
    size_t count = json_array_size(sib);
    if (!(v = calloc(count + 1, sizeof *v))) {
        fail(h, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(sib, i), *f = json_is_object(e) ? json_object_get(e, "rfilename") : NULL;
        if (!json_is_string(f)) {
            fail(h, "the file listing at %s: siblings[%zu] has no \"rfilename\" string", url, i);
            goto done;
        }
        const char *s = json_string_value(f);
        if (strlen(s) != json_string_length(f) || !hub_file_valid(s)) {
            printable(name, sizeof name, s);
            fail(h, "the file listing at %s names an unsafe file '%s' (absolute, \"..\" or a backslash): refusing it", url,
                 name);
            goto done;
        }
        if (!(v[i] = strdup(s))) {
            fail(h, "out of memory");
            goto done;
        }
    }
    *files = v;
    *n = count;
    v = NULL;
    rc = 0;
done:
    hub_strv_free(v);
    json_decref(root);
    if (c) curl_easy_cleanup(c);
    free(m.buf);
    free(url);
    free(erev);
    return rc;
}

/* ==== downloads ==== */

/* One GET of a file into its .part. */
typedef struct {
    hub_t *h;
    resp_t r;
    int fd;
    int64_t offset; /* bytes in the .part before this response's body (0 after a restart) */
    int64_t got;    /* body bytes written by this request */
    int mode;       /* 0: undecided, 1: write the body, 2: discard it (an error status) */
    int write_errno, bad_range;
    EVP_MD_CTX *sha; /* of the .part's bytes so far */
    hub_progress_t *p;
} xfer_t;

static size_t on_body_file(char *data, size_t size, size_t nmemb, void *user) {
    xfer_t *x = user;
    size_t len = size * nmemb;
    if (!x->mode) { /* the final response's headers are in: decide */
        x->mode = 2;
        if (x->r.status == 200) {
            if (x->offset > 0) { /* the server ignored Range: start again from zero */
                if (ftruncate(x->fd, 0)) {
                    x->write_errno = errno;
                    return 0;
                }
                x->offset = x->p->resumed = 0;
                EVP_DigestInit_ex(x->sha, EVP_sha256(), NULL);
            }
            x->mode = 1;
        } else if (x->r.status == 206) {
            if (x->r.range_start != x->offset) {
                x->bad_range = 1;
                return 0;
            }
            x->mode = 1;
        }
    }
    if (x->mode == 2) return len;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(x->fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            x->write_errno = w < 0 ? errno : ENOSPC;
            return 0;
        }
        off += (size_t)w;
    }
    EVP_DigestUpdate(x->sha, data, len);
    x->got += (int64_t)len;
    x->h->downloaded += (int64_t)len;
    x->p->done = x->offset + x->got;
    emit(x->h, x->p, HUB_EV_DATA);
    return len;
}

/* The sidecar dir/.qcare-pull/FILE.etag holds the ETag a file was verified
 * against; NULL when there is none. */
static char *sidecar_read(const char *path) {
    char buf[200];
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *s = fgets(buf, sizeof buf, f) ? strdup(buf) : NULL;
    fclose(f);
    if (s) s[strcspn(s, "\r\n")] = 0;
    return s;
}

/* Best effort: without it the next pull checks the file by hash or size. */
static void sidecar_write(const char *path, const char *etag) {
    char *tmp = aprintf("%s.tmp", path);
    FILE *f = tmp && !mkdirs_parent(path) ? fopen(tmp, "w") : NULL;
    if (f) {
        int ok = fprintf(f, "%s\n", etag) > 0;
        if (!fclose(f) && ok) rename(tmp, path);
        else unlink(tmp);
    }
    free(tmp);
}

/* Whether the final file is already what the hub serves, so a second pull
 * transfers nothing. Rule: its size equals the hub's, and the sidecar holds
 * the ETag the hub sends now. Without a sidecar (a folder from `git clone`,
 * or the sidecar lost), an LFS file is hashed and compared with the ETag, and
 * a small git file is taken on its size alone; the sidecar is then written.
 * A different sidecar ETag means the file changed upstream: download again. */
static int already_complete(const char *final, const char *side, const char *etag, int64_t size, int lfs) {
    struct stat st;
    if (stat(final, &st) || !S_ISREG(st.st_mode) || (size >= 0 && st.st_size != size)) return 0;
    char *have = sidecar_read(side);
    int ok;
    if (have) {
        ok = etag[0] && !strcmp(have, etag);
    } else if (lfs) {
        char hex[65];
        EVP_MD_CTX *sha = EVP_MD_CTX_new();
        ok = sha && EVP_DigestInit_ex(sha, EVP_sha256(), NULL) && !sha_file(final, -1, sha);
        if (ok) sha_hex(sha, hex);
        ok = ok && !strcmp(hex, etag);
        EVP_MD_CTX_free(sha);
    } else {
        ok = 1;
    }
    if (ok && !have && etag[0]) sidecar_write(side, etag);
    free(have);
    return ok;
}

const char *hub_fmt_bytes(char *buf, size_t cap, int64_t n) {
    if (n < 0) snprintf(buf, cap, "?");
    else if (n < 1000) snprintf(buf, cap, "%d B", (int)n);
    else if (n < 1000000) snprintf(buf, cap, "%.1f kB", (double)n / 1e3);
    else if (n < 1000000000) snprintf(buf, cap, "%.1f MB", (double)n / 1e6);
    else snprintf(buf, cap, "%.2f GB", (double)n / 1e9);
    return buf;
}

int hub_fetch(hub_t *h, const char *repo, const char *rev, const char *file, const char *dir) {
    char errbuf[CURL_ERROR_SIZE], what[400], b1[32], b2[32];
    CURL *c;
    CURLcode cc;
    if (!hub_file_valid(file)) return fail(h, "unsafe file name '%.300s'", file);
    snprintf(what, sizeof what, "file %s of %s (revision %s)", file, repo, rev);
    int rc = -1, fd = -1;
    char *erev = url_escape(rev, 0), *efile = url_escape(file, 1);
    char *url = erev && efile ? aprintf("%s/%s/resolve/%s/%s", h->endpoint, repo, erev, efile) : NULL;
    char *final = aprintf("%s/%s", dir, file), *part = aprintf("%s/%s.part", dir, file);
    char *side = aprintf("%s/" SIDECAR_DIR "/%s.etag", dir, file);
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    if (!url || !final || !part || !side || !sha) {
        fail(h, "out of memory");
        goto done;
    }

    /* 1. What the hub says the file is. */
    resp_t r;
    if (head_meta(h, url, what, rev, &r)) goto done;
    char etag[160];
    int64_t size = r.linked_etag[0] ? r.linked_size : r.length;
    strcpy(etag, r.linked_etag[0] ? r.linked_etag : r.etag);
    /* A 64-hex-digit ETag is an LFS file's SHA-256, which the download is
     * checked against. A small file kept in git has the git blob hash as its
     * ETag instead (SHA-1 over a "blob N\0" header; mirrors need not follow
     * that), so it is checked by its size (X-Linked-Size/Content-Length),
     * while the transfer itself is checked by libcurl against the
     * response's Content-Length. */
    int lfs = is_sha256(etag);
    hub_progress_t p = {.file = file, .total = size};

    /* 2. Already there? */
    if (already_complete(final, side, etag, size, lfs)) {
        p.done = size;
        p.verified_sha = lfs;
        emit(h, &p, HUB_EV_SKIP);
        rc = 0;
        goto done;
    }

    /* 3. Download into FILE.part, resuming what is there. */
    if (mkdirs_parent(part)) {
        fail(h, "cannot create the folder for %s: %s", part, strerror(errno));
        goto done;
    }
    /* A .part left by an earlier run is resumed only when the result can be
     * checked by its SHA-256: a small git file's .part may hold the start of
     * an older version, which a size check would not notice. */
    if (!lfs && unlink(part) && errno != ENOENT) {
        fail(h, "cannot remove %s: %s", part, strerror(errno));
        goto done;
    }
    int attempts = 0, restarted = 0;
    for (;;) {
        if (fd >= 0) close(fd);
        if ((fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
            fail(h, "cannot write %s: %s", part, strerror(errno));
            goto done;
        }
        struct stat st;
        int64_t offset = fstat(fd, &st) || !S_ISREG(st.st_mode) ? 0 : st.st_size;
        if (size >= 0 && offset > size) { /* longer than the file: not a prefix of it */
            if (ftruncate(fd, 0)) {
                fail(h, "cannot write %s: %s", part, strerror(errno));
                goto done;
            }
            offset = 0;
        }
        EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
        if (offset > 0 && sha_file(part, offset, sha)) {
            fail(h, "cannot read %s: %s", part, strerror(errno));
            goto done;
        }
        p.done = p.resumed = offset;
        emit(h, &p, HUB_EV_START);
        xfer_t x = {.h = h, .fd = fd, .offset = offset, .sha = sha, .p = &p};
        if (!(c = easy_new(h, url, &x.r, errbuf))) {
            fail(h, "out of memory");
            goto done;
        }
        char range[32];
        snprintf(range, sizeof range, "%lld-", (long long)offset);
        if (offset > 0) curl_easy_setopt(c, CURLOPT_RANGE, range);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_file);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
        cc = curl_easy_perform(c);
        curl_easy_cleanup(c);
        if (x.write_errno) {
            fail(h, "cannot write %s: %s%s", part, strerror(x.write_errno),
                 x.write_errno == ENOSPC ? " (the disk is full: free some space, then run the same command again to resume)" : "");
            goto done;
        }
        if (x.bad_range) {
            fail(h, "%s: asked for bytes from %lld on, %s sent a range starting at %lld", what, (long long)x.offset, url,
                 (long long)x.r.range_start);
            goto done;
        }
        if (cc != CURLE_OK) {
            const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
            if (x.got > 0 && ++attempts < MAX_ATTEMPTS) {
                note(h, file, "interrupted at %s (%s); resuming", hub_fmt_bytes(b1, sizeof b1, x.offset + x.got), why);
                continue;
            }
            fail(h, "download of %s interrupted at %s of %s: %s. The bytes so far are kept in %s: run the same command "
                    "again to resume",
                 what, hub_fmt_bytes(b1, sizeof b1, x.offset + x.got), hub_fmt_bytes(b2, sizeof b2, size), why, part);
            goto done;
        }
        if (!(x.r.status == 416 && offset > 0) && x.r.status != 200 && x.r.status != 206) {
            http_fail(h, &x.r, what, rev, url);
            goto done;
        }
        /* 416 to a Range request: the .part already holds the whole file. */

        /* 4. Verify, then put it in place. */
        int64_t have = fstat(fd, &st) ? -1 : st.st_size;
        char hex[65] = "";
        if (lfs) sha_hex(sha, hex);
        int bad_size = size >= 0 && have != size, bad_sha = lfs && strcmp(hex, etag);
        if (bad_size || bad_sha) {
            unlink(part);
            if (x.offset > 0 && !restarted) { /* a stale .part from another version of the file? */
                restarted = 1;
                note(h, file, "the resumed download does not verify; downloading the whole file again");
                continue;
            }
            if (bad_size)
                fail(h, "%s: got %lld bytes, the hub says %lld; deleted %s", what, (long long)have, (long long)size, part);
            else
                fail(h, "%s: SHA-256 mismatch: the hub says %s, the downloaded file has %s; deleted %s (run the command "
                        "again)",
                     what, etag, hex, part);
            goto done;
        }
        if (fsync(fd) && errno != EINVAL) {
            fail(h, "cannot write %s: %s", part, strerror(errno));
            goto done;
        }
        close(fd);
        fd = -1;
        if (rename(part, final)) {
            fail(h, "cannot rename %s to %s: %s", part, final, strerror(errno));
            goto done;
        }
        if (etag[0]) sidecar_write(side, etag);
        p.done = have;
        p.verified_sha = lfs;
        emit(h, &p, HUB_EV_DONE);
        rc = 0;
        break;
    }
done:
    if (fd >= 0) close(fd);
    EVP_MD_CTX_free(sha);
    free(side);
    free(part);
    free(final);
    free(url);
    free(efile);
    free(erev);
    return rc;
}

/* ==== the models folder ==== */

char *hub_models_dir(void) {
    const char *v = getenv("QCARE_MODELS");
    if (v && *v) return strdup(v);
    v = getenv("XDG_DATA_HOME");
    if (v && *v == '/') return aprintf("%s/qcare/models", v); /* relative values are invalid per the XDG spec */
    v = getenv("HOME");
    if (!v || !*v) {
        struct passwd *pw = getpwuid(getuid());
        v = pw ? pw->pw_dir : NULL;
    }
    return v && *v ? aprintf("%s/.local/share/qcare/models", v) : NULL;
}

char *cli_resolve_model(const char *arg) {
    const char *name = arg ? arg : HUB_DEFAULT_REPO;
    struct stat st;
    if (arg && !stat(arg, &st)) {
        char *s = strdup(arg);
        if (!s) fprintf(stderr, "qcare: out of memory\n");
        return s;
    }
    if (!hub_repo_valid(name)) {
        fprintf(stderr, "qcare: model folder '%s' not found\n", name);
        return NULL;
    }
    char *dir = hub_models_dir(), *path = dir ? aprintf("%s/%s", dir, name) : NULL;
    free(dir);
    if (path && !stat(path, &st) && S_ISDIR(st.st_mode)) return path;
    fprintf(stderr, "qcare: '%s' is neither a folder nor a pulled model (no %s); get it with: qcare pull %s\n", name,
            path ? path : "models folder: set QCARE_MODELS", name);
    free(path);
    return NULL;
}
