/* fuzz_hub.c — the hub client's listing (hub_list in src/cli/hub.c) and the
 * response-header parsing under it (src/cli/hub_http.c), on any server
 * answer. Both files are compiled into this program (as tests/test_pull.c
 * does), with libcurl's easy calls replaced by a stand-in that "receives"
 * the input: the header lines up to the first empty line, then the body in
 * pieces of varying size, as libcurl hands them to the callbacks. An input
 * without an empty line is all body, after "HTTP/1.1 200 OK".
 *
 * Checks: a listing is accepted only with status 200, and then holds only
 * names hub_file_valid accepts, NULL-terminated; a refused one leaves a
 * message and nothing allocated. The name checks (hub_repo_valid,
 * hub_file_valid) are also run on the body itself against the rules hub.h
 * states, written out again here. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ==== the stand-in for libcurl's easy interface ==== */

typedef size_t (*fake_cb)(char *, size_t, size_t, void *);

static struct {
    fake_cb write_fn, header_fn;
    void *write_data, *header_data;
    const unsigned char *in;
    size_t n;
} fake;

static CURL *fake_init(void) { return (CURL *)&fake; }
static void fake_cleanup(CURL *c) { (void)c; }
static CURLcode fake_setopt(CURL *c, CURLoption opt, uintptr_t v) {
    (void)c;
    if (opt == CURLOPT_WRITEFUNCTION) fake.write_fn = (fake_cb)v;
    else if (opt == CURLOPT_WRITEDATA) fake.write_data = (void *)v;
    else if (opt == CURLOPT_HEADERFUNCTION) fake.header_fn = (fake_cb)v;
    else if (opt == CURLOPT_HEADERDATA) fake.header_data = (void *)v;
    return CURLE_OK;
}

/* Hands one header line (with its line end) to the header callback in a
 * buffer of its own, as libcurl does. */
static int fake_header(const unsigned char *p, size_t n) {
    if (!fake.header_fn) return 0;
    char *line = malloc(n ? n : 1);
    memcpy(line, p, n);
    size_t r = fake.header_fn(line, 1, n, fake.header_data);
    free(line);
    return r == n ? 0 : -1;
}

static CURLcode fake_perform(CURL *c) {
    (void)c;
    const unsigned char *p = fake.in, *end = fake.in + fake.n, *body = p;
    const unsigned char *sep = memmem(p, fake.n, "\r\n\r\n", 4);
    if (sep) {
        for (const unsigned char *q = p; q < sep + 2;) {
            const unsigned char *nl = memchr(q, '\n', (size_t)(sep + 2 - q));
            size_t len = (size_t)(nl + 1 - q);
            if (fake_header(q, len)) return CURLE_WRITE_ERROR;
            q += len;
        }
        body = sep + 4;
    } else if (fake_header((const unsigned char *)"HTTP/1.1 200 OK\r\n", 17)) {
        return CURLE_WRITE_ERROR;
    }
    if (fake_header((const unsigned char *)"\r\n", 2)) return CURLE_WRITE_ERROR;
    /* the body in pieces of 1 to 4096 bytes, sized from its first byte */
    size_t piece = body < end ? 1 + (size_t)(*body * 16) : 1;
    for (const unsigned char *q = body; q < end;) {
        size_t len = (size_t)(end - q) < piece ? (size_t)(end - q) : piece;
        char *chunk = malloc(len);
        memcpy(chunk, q, len);
        size_t r = fake.write_fn ? fake.write_fn(chunk, 1, len, fake.write_data) : len;
        free(chunk);
        if (r != len) return CURLE_WRITE_ERROR;
        q += len;
    }
    return CURLE_OK;
}

#define curl_easy_init() fake_init()
#define curl_easy_cleanup(c) fake_cleanup(c)
#define curl_easy_perform(c) fake_perform(c)
#undef curl_easy_setopt
#define curl_easy_setopt(c, opt, v) fake_setopt((c), (opt), (uintptr_t)(v))

#include "../../src/cli/hub.c"
#include "../../src/cli/hub_http.c"

#include "fuzz.h"

/* ==== the name rules of hub.h, again ==== */

static int file_rule(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '/') return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\') return 0;
    /* no empty, "." or ".." component */
    for (size_t a = 0; a <= n;) {
        size_t b = a;
        while (b < n && s[b] != '/') b++;
        size_t len = b - a;
        if (len == 0 || (len == 1 && s[a] == '.') || (len == 2 && s[a] == '.' && s[a + 1] == '.')) return 0;
        a = b + 1;
    }
    return 1;
}

static int part_rule(const char *s, size_t n) {
    if (n == 0 || n > 96 || strchr(".-", s[0]) || strchr(".-", s[n - 1])) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == '-';
        if (!ok || (c == '.' && i + 1 < n && s[i + 1] == '.')) return 0;
    }
    return 1;
}

static int repo_rule(const char *s) {
    const char *sl = strchr(s, '/');
    if (!sl || strchr(sl + 1, '/')) return 0;
    return part_rule(s, (size_t)(sl - s)) && part_rule(sl + 1, strlen(sl + 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the names: the body's first line as a C string */
    char name[512];
    size_t k = 0;
    while (k < size && k + 1 < sizeof name && data[k] != '\n' && data[k]) name[k] = (char)data[k], k++;
    name[k] = 0;
    FUZZ_CHECK(hub_file_valid(name) == file_rule(name), "hub_file_valid(\"%s\")", name);
    FUZZ_CHECK(hub_repo_valid(name) == repo_rule(name), "hub_repo_valid(\"%s\")", name);
    char *esc = hub_url_escape(name, k & 1);
    FUZZ_CHECK(esc && strlen(esc) <= 3 * k, "hub_url_escape");
    free(esc);

    /* the listing */
    hub_t h = {.endpoint = "https://hub.invalid"};
    fake.in = data;
    fake.n = size;
    char **files = (char **)1;
    size_t n = 99;
    int rc = hub_list(&h, "owner/name", "main", &files, &n);
    if (rc == 0) {
        FUZZ_CHECK(files != NULL, "no list");
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(files[i] && file_rule(files[i]), "unsafe name %zu", i);
        FUZZ_CHECK(files[n] == NULL, "list not NULL-terminated");
        hub_strv_free(files);
    } else {
        FUZZ_CHECK(rc == -1 && files == NULL && n == 0 && h.err[0], "a refused listing left a list or no message");
    }
    return 0;
}
