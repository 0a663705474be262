/* hub.c — the Hugging Face hub client behind `qcare pull` (see hub.h): the
 * client handle, the checks of repository and file names, the file
 * listing, the models folder, and cli_resolve_model. HTTP is in
 * hub_http.c, downloads in hub_fetch.c (hub_impl.h lists the files). */
#include "cli/hub_impl.h"
#include "cli/cli.h"

#include <ctype.h>
#include <jansson.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LISTING_MAX (16 << 20) /* bytes; the hub's largest listings are a few MB */

/* ==== small helpers ==== */

char *hub_aprintf(const char *fmt, ...) {
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

/* Copies s for a message: at most cap-1 bytes, control characters as '?'
 * (names and headers come from the server). */
void hub_printable(char *dst, size_t cap, const char *s) {
    size_t i = 0;
    for (; s && s[i] && i + 1 < cap; i++) dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    dst[i] = 0;
}

/* Percent-encodes s for a URL path; '/' is kept when keep_slash. */
char *hub_url_escape(const char *s, int keep_slash) {
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

/* ==== client ==== */

hub_t *hub_new(const char *endpoint, const char *token) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) return NULL;
    hub_t *h = calloc(1, sizeof *h);
    if (!h || !(h->endpoint = strdup(endpoint))) goto fail;
    size_t n = strlen(h->endpoint);
    while (n && h->endpoint[n - 1] == '/') h->endpoint[--n] = 0;
    if (token && *token) {
        char *line = hub_aprintf("Authorization: Bearer %s", token);
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

/* The listing's body, capped at LISTING_MAX bytes. */
typedef struct {
    qc_buf_t b;
    int too_big;
} listing_t;

static size_t on_body_mem(char *data, size_t size, size_t nmemb, void *user) {
    listing_t *m = user;
    size_t len = size * nmemb;
    if (m->b.n + len + 1 > LISTING_MAX) {
        m->too_big = 1;
        return 0;
    }
    return qc_buf_add(&m->b, data, len) ? 0 : len;
}

void hub_strv_free(char **v) {
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

int hub_list(hub_t *h, const char *repo, const char *rev, char ***files, size_t *n) {
    char errbuf[CURL_ERROR_SIZE], name[300];
    hub_resp_t r;
    listing_t m = {0};
    json_t *root = NULL;
    char **v = NULL;
    int rc = -1;
    char *erev = hub_url_escape(rev, 0);
    char *url = erev ? hub_aprintf("%s/api/models/%s/revision/%s", h->endpoint, repo, erev) : NULL;
    CURL *c = url ? hub_easy_new(h, url, &r, errbuf) : NULL;
    *files = NULL;
    *n = 0;
    if (!c) {
        hub_fail(h, "out of memory");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_mem);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* JSON compresses well */
    CURLcode cc = curl_easy_perform(c);
    if (m.too_big) {
        hub_fail(h, "the file listing at %s is larger than %d MB: refusing it", url, LISTING_MAX >> 20);
        goto done;
    }
    if (cc != CURLE_OK) {
        hub_curl_fail(h, url, cc, errbuf);
        goto done;
    }
    if (r.status != 200) {
        char what[200];
        snprintf(what, sizeof what, "repository %s", repo);
        hub_http_fail(h, &r, what, rev, url);
        goto done;
    }
    json_error_t jerr;
    root = json_loadb(m.b.p ? m.b.p : "", m.b.n, JSON_REJECT_DUPLICATES, &jerr);
    json_t *sib = json_is_object(root) ? json_object_get(root, "siblings") : NULL;
    if (!root) {
        hub_fail(h, "the file listing at %s is not valid JSON: %s (line %d)", url, jerr.text, jerr.line);
        goto done;
    }
    if (!json_is_array(sib)) {
        hub_fail(h, "the file listing at %s has no \"siblings\" array", url);
        goto done;
    }
    size_t count = json_array_size(sib);
    if (!(v = calloc(count + 1, sizeof *v))) {
        hub_fail(h, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(sib, i), *f = json_is_object(e) ? json_object_get(e, "rfilename") : NULL;
        if (!json_is_string(f)) {
            hub_fail(h, "the file listing at %s: siblings[%zu] has no \"rfilename\" string", url, i);
            goto done;
        }
        const char *s = json_string_value(f);
        if (strlen(s) != json_string_length(f) || !hub_file_valid(s)) {
            hub_printable(name, sizeof name, s);
            hub_fail(h, "the file listing at %s names an unsafe file '%s' (absolute, \"..\" or a backslash): refusing it", url,
                     name);
            goto done;
        }
        if (!(v[i] = strdup(s))) {
            hub_fail(h, "out of memory");
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
    qc_buf_free(&m.b);
    free(url);
    free(erev);
    return rc;
}

/* ==== the models folder ==== */

char *hub_models_dir(void) {
    const char *v = getenv("QCARE_MODELS");
    if (v && *v) return strdup(v);
    v = getenv("XDG_DATA_HOME");
    if (v && *v == '/') return hub_aprintf("%s/qcare/models", v); /* relative values are invalid per the XDG spec */
    v = getenv("HOME");
    if (!v || !*v) {
        struct passwd *pw = getpwuid(getuid());
        v = pw ? pw->pw_dir : NULL;
    }
    return v && *v ? hub_aprintf("%s/.local/share/qcare/models", v) : NULL;
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
    char *dir = hub_models_dir(), *path = dir ? hub_aprintf("%s/%s", dir, name) : NULL;
    free(dir);
    if (path && !stat(path, &st) && S_ISDIR(st.st_mode)) return path;
    if (!arg) /* one message for both ways out, not two that disagree */
        fprintf(stderr,
                "qcare: no model: give --model PATH (a folder or a .gguf file), or get the default model %s with: "
                "qcare pull (it is not in %s)\n",
                name, path ? path : "the models folder: set QCARE_MODELS");
    else
        fprintf(stderr, "qcare: '%s' is neither a folder nor a pulled model (no %s); get it with: qcare pull %s\n",
                name, path ? path : "models folder: set QCARE_MODELS", name);
    free(path);
    return NULL;
}
