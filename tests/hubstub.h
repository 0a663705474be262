/* hubstub.h — a stand-in for the Hugging Face hub, for test_pull: serves
 * folders from disk on 127.0.0.1 (a free port) in the hub's URL layout, on
 * libmicrohttpd's own thread in the test's process, with switches for the
 * failures a download has to survive and counters of what it served.
 *
 *   GET  /api/models/{repo}/revision/{rev}   {"id", "sha", "siblings": [{"rfilename"}]}
 *   HEAD|GET /{repo}/resolve/{rev}/{file}     small files: 200, ETag = git blob SHA-1;
 *        *.safetensors and *.gguf ("LFS"): 302 to http://localhost:PORT/cdn/{repo}/{file}
 *        with X-Linked-Etag = SHA-256 and X-Linked-Size, as the hub redirects to
 *        its CDN (another host name, so a client must not send its token there)
 *   HEAD|GET /cdn/{repo}/{file}               the bytes; Range "bytes=N-[M]" gives
 *        206 + Content-Range, past the end 416
 * Errors as the hub sends them: 404 (X-Error-Code RepoNotFound / EntryNotFound),
 * 401 for a repository with a token when "Authorization: Bearer TOKEN" is missing
 * or wrong (X-Error-Code GatedRepo). Included by one test file only. */
#ifndef QC_HUBSTUB_H
#define QC_HUBSTUB_H

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STUB_MAX_REPOS 16

typedef struct {
    const char *name;     /* "owner/name" */
    const char *dir;      /* its files: the regular files (or links to them) of this folder */
    const char *token;    /* required bearer token (401 without it), or NULL */
    const char *extra[4]; /* names added to the listing (unsafe ones, or missing files) */
    const char *listing;  /* served instead of the listing, when set */
    const char *moved_to; /* a renamed repository: 307 with a relative Location to this one */
} stub_repo_t;

typedef struct {
    struct MHD_Daemon *d;
    int port;
    stub_repo_t repos[STUB_MAX_REPOS];
    int n_repos;
    pthread_mutex_t mu; /* guards everything below: the test sets, the server thread reads */
    /* switches */
    char cut_file[256]; /* GETs of this file that cover byte cut_at end there (connection */
    long long cut_at;   /* closed), cut_count times */
    int cut_count;
    char corrupt_file[256]; /* served with its middle byte flipped */
    int ignore_range;       /* answer Range requests with 200 and the whole file */
    /* counters */
    long long bytes;          /* file bytes sent (GET bodies) */
    int lists, heads, gets;   /* listing requests, HEADs and GETs of files */
    int cdn_auth, hub_auth;   /* requests carrying an Authorization header: to the CDN / to the hub */
    int cdn_heads;            /* HEADs sent to the CDN (a client needs none) */
    struct {
        char path[512];
        long long size, mtime;
        char hex[65];
        int sha256;
    } cache[32]; /* file hashes, computed once */
    int n_cache;
} stub_t;

static void stub_reset(stub_t *s) {
    pthread_mutex_lock(&s->mu);
    s->cut_file[0] = s->corrupt_file[0] = 0;
    s->cut_at = s->cut_count = s->ignore_range = 0;
    s->bytes = s->lists = s->heads = s->gets = s->cdn_auth = s->hub_auth = s->cdn_heads = 0;
    pthread_mutex_unlock(&s->mu);
}

/* ==== files ==== */

static int stub_is_lfs(const char *file) {
    size_t n = strlen(file);
    return (n > 12 && !strcmp(file + n - 12, ".safetensors")) || (n > 5 && !strcmp(file + n - 5, ".gguf"));
}

/* The hub's ETag for path: SHA-256 of an LFS file, else the git blob SHA-1
 * ("blob SIZE\0" + content). Called with s->mu held. */
static const char *stub_etag(stub_t *s, const char *path, int lfs) {
    struct stat st;
    if (stat(path, &st)) return "";
    for (int i = 0; i < s->n_cache; i++)
        if (!strcmp(s->cache[i].path, path) && s->cache[i].size == st.st_size && s->cache[i].mtime == st.st_mtime &&
            s->cache[i].sha256 == lfs)
            return s->cache[i].hex;
    int slot = s->n_cache < 32 ? s->n_cache++ : 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, lfs ? EVP_sha256() : EVP_sha1(), NULL);
    if (!lfs) {
        char head[64];
        int n = snprintf(head, sizeof head, "blob %lld", (long long)st.st_size);
        EVP_DigestUpdate(ctx, head, (size_t)n + 1);
    }
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t r;
    while (f && (r = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, r);
    if (f) fclose(f);
    unsigned char d[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, d, &len);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < len; i++) sprintf(s->cache[slot].hex + 2 * i, "%02x", d[i]);
    snprintf(s->cache[slot].path, sizeof s->cache[slot].path, "%s", path);
    s->cache[slot].size = st.st_size;
    s->cache[slot].mtime = st.st_mtime;
    s->cache[slot].sha256 = lfs;
    return s->cache[slot].hex;
}

typedef struct {
    stub_t *s;
    int fd;
    long long start, cut, corrupt; /* absolute offsets; -1 none */
} stub_body_t;

static ssize_t stub_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stub_body_t *b = cls;
    long long at = b->start + (long long)pos;
    if (b->cut >= 0 && at >= b->cut) return MHD_CONTENT_READER_END_WITH_ERROR; /* drop the connection */
    if (b->cut >= 0 && at + (long long)max > b->cut) max = (size_t)(b->cut - at);
    ssize_t n = pread(b->fd, buf, max, at);
    if (n <= 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (b->corrupt >= at && b->corrupt < at + n) buf[b->corrupt - at] ^= 0x5a;
    pthread_mutex_lock(&b->s->mu);
    b->s->bytes += n;
    pthread_mutex_unlock(&b->s->mu);
    return n;
}

static void stub_body_free(void *cls) {
    stub_body_t *b = cls;
    close(b->fd);
    free(b);
}

/* ==== responses ==== */

static enum MHD_Result stub_send(struct MHD_Connection *c, unsigned status, const char *body, const char *code,
                                 const char *msg) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (code) MHD_add_response_header(r, "X-Error-Code", code);
    if (msg) MHD_add_response_header(r, "X-Error-Message", msg);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result stub_send_file(stub_t *s, struct MHD_Connection *c, const char *path, const char *file,
                                      int head) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        if (fd >= 0) close(fd);
        return stub_send(c, 404, "{\"error\":\"Entry not found\"}", "EntryNotFound", "Entry not found");
    }
    long long size = st.st_size, start = 0, end = size - 1;
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    pthread_mutex_lock(&s->mu);
    int partial = range && !s->ignore_range && !strncmp(range, "bytes=", 6);
    const char *etag = stub_etag(s, path, stub_is_lfs(file));
    char etag_q[80];
    snprintf(etag_q, sizeof etag_q, "\"%s\"", etag);
    if (partial) {
        char *e;
        start = strtoll(range + 6, &e, 10);
        if (*e == '-' && e[1]) end = strtoll(e + 1, NULL, 10);
        if (end >= size) end = size - 1;
    }
    if (partial && start >= size) {
        pthread_mutex_unlock(&s->mu);
        close(fd);
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%lld", size);
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Content-Range", cr);
        enum MHD_Result ret = MHD_queue_response(c, 416, r);
        MHD_destroy_response(r);
        return ret;
    }
    stub_body_t *b = malloc(sizeof *b);
    *b = (stub_body_t){s, fd, start, -1, -1};
    if (head) {
        s->heads++;
    } else {
        s->gets++;
        if (!strcmp(file, s->cut_file) && s->cut_count > 0 && start <= s->cut_at && s->cut_at <= end) {
            b->cut = s->cut_at;
            s->cut_count--;
        }
        if (!strcmp(file, s->corrupt_file)) b->corrupt = size / 2;
    }
    pthread_mutex_unlock(&s->mu);
    struct MHD_Response *r = MHD_create_response_from_callback((uint64_t)(end - start + 1), 65536, stub_read, b,
                                                               stub_body_free);
    MHD_add_response_header(r, "ETag", etag_q);
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    if (partial) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", start, end, size);
        MHD_add_response_header(r, "Content-Range", cr);
    }
    enum MHD_Result ret = MHD_queue_response(c, partial ? 206 : 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result stub_listing(stub_t *s, struct MHD_Connection *c, const stub_repo_t *repo) {
    pthread_mutex_lock(&s->mu);
    s->lists++;
    pthread_mutex_unlock(&s->mu);
    if (repo->listing) return stub_send(c, 200, repo->listing, NULL, NULL);
    json_t *sib = json_array();
    DIR *d = opendir(repo->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", repo->dir, e->d_name);
        if (e->d_name[0] != '.' && !stat(p, &st) && S_ISREG(st.st_mode))
            json_array_append_new(sib, json_pack("{s:s}", "rfilename", e->d_name));
    }
    if (d) closedir(d);
    for (int i = 0; i < 4 && repo->extra[i]; i++) json_array_append_new(sib, json_pack("{s:s}", "rfilename", repo->extra[i]));
    json_t *root = json_pack("{s:s, s:s, s:o}", "id", repo->name, "sha", "0123456789abcdef0123456789abcdef01234567",
                             "siblings", sib);
    char *body = json_dumps(root, JSON_COMPACT);
    enum MHD_Result ret = stub_send(c, 200, body, NULL, NULL);
    free(body);
    json_decref(root);
    return ret;
}

/* The repository named by the two path segments at p; *rest points after them. */
static const stub_repo_t *stub_find(stub_t *s, const char *p, const char **rest) {
    const char *slash = strchr(p, '/');
    slash = slash ? strchr(slash + 1, '/') : NULL;
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    *rest = p + n;
    for (int i = 0; i < s->n_repos; i++)
        if (strlen(s->repos[i].name) == n && !strncmp(s->repos[i].name, p, n)) return &s->repos[i];
    return NULL;
}

static enum MHD_Result stub_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                   const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version, (void)upload, (void)upload_size, (void)con_cls;
    stub_t *s = cls;
    int head = !strcmp(method, "HEAD");
    if (!head && strcmp(method, "GET")) return stub_send(c, 405, "{}", NULL, NULL);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), *rest;
    int cdn = !strncmp(url, "/cdn/", 5), api = !strncmp(url, "/api/models/", 12);
    pthread_mutex_lock(&s->mu);
    if (auth && cdn) s->cdn_auth++;
    if (auth && !cdn) s->hub_auth++;
    if (head && cdn) s->cdn_heads++;
    pthread_mutex_unlock(&s->mu);
    const stub_repo_t *repo = stub_find(s, url + (cdn ? 5 : api ? 12 : 1), &rest);
    if (!repo) return stub_send(c, 404, "{\"error\":\"Repository not found\"}", "RepoNotFound", "Repository not found");
    char path[1024];
    if (repo->moved_to) { /* as the hub answers for a renamed repository */
        snprintf(path, sizeof path, "%s%s%s", api ? "/api/models/" : "/", repo->moved_to, rest);
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Location", path);
        enum MHD_Result ret = MHD_queue_response(c, 307, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (cdn) { /* the CDN: signed URLs on the real one, no token */
        snprintf(path, sizeof path, "%s%s", repo->dir, rest);
        return stub_send_file(s, c, path, rest + 1, head);
    }
    if (repo->token) {
        char want[256];
        snprintf(want, sizeof want, "Bearer %s", repo->token);
        if (!auth || strcmp(auth, want))
            return stub_send(c, 401, "{\"error\":\"Access to this model is restricted\"}", "GatedRepo",
                             "Access to this model is restricted. You must have access to it and be authenticated.");
    }
    if (api) {
        if (strncmp(rest, "/revision/", 10)) return stub_send(c, 404, "{}", NULL, NULL);
        if (strcmp(rest + 10, "main"))
            return stub_send(c, 404, "{\"error\":\"Invalid rev id\"}", "RevisionNotFound", "Invalid rev id");
        return stub_listing(s, c, repo);
    }
    if (strncmp(rest, "/resolve/main/", 14)) return stub_send(c, 404, "{}", NULL, NULL);
    const char *file = rest + 14;
    snprintf(path, sizeof path, "%s/%s", repo->dir, file);
    struct stat st;
    if (!stub_is_lfs(file) || stat(path, &st)) return stub_send_file(s, c, path, file, head);
    /* LFS: the hub answers with a redirect carrying the file's identity. */
    char loc[1024], etag[80], size[32];
    pthread_mutex_lock(&s->mu);
    snprintf(etag, sizeof etag, "\"%s\"", stub_etag(s, path, 1));
    pthread_mutex_unlock(&s->mu);
    snprintf(loc, sizeof loc, "http://localhost:%d/cdn/%s/%s", s->port, repo->name, file);
    snprintf(size, sizeof size, "%lld", (long long)st.st_size);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Location", loc);
    MHD_add_response_header(r, "X-Linked-Etag", etag);
    MHD_add_response_header(r, "X-Linked-Size", size);
    MHD_add_response_header(r, "ETag", etag);
    enum MHD_Result ret = MHD_queue_response(c, 302, r);
    MHD_destroy_response(r);
    return ret;
}

/* Starts the server on 127.0.0.1 and a free port (s->port); 0 on success.
 * Fill s->repos before or after: the table is read on each request. */
static int stub_start(stub_t *s) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    pthread_mutex_init(&s->mu, NULL);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, stub_handle, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                            MHD_OPTION_END);
    const union MHD_DaemonInfo *info = s->d ? MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    s->port = info ? info->port : 0;
    return s->port ? 0 : -1;
}

static void stub_stop(stub_t *s) {
    if (s->d) MHD_stop_daemon(s->d);
    s->d = NULL;
    pthread_mutex_destroy(&s->mu);
}

#endif
