/* hub_fetch.c — downloading one file of a repository (hub_fetch): what the
 * hub says the file is (HEAD), whether the copy on disk already is that
 * file (size and the ETag sidecar, or its SHA-256), the transfer into
 * FILE.part resumed with Range requests, and the verification before the
 * .part becomes the file. */
#include "cli/hub_impl.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ATTEMPTS 5 /* transfers of one file, as long as each one makes progress */
#define SIDECAR_DIR ".qcare-pull"

/* ==== progress ==== */

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

/* ==== files ==== */

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

/* ==== downloads ==== */

/* One GET of a file into its .part. */
typedef struct {
    hub_t *h;
    hub_resp_t r;
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
    char *tmp = hub_aprintf("%s.tmp", path);
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
    if (!hub_file_valid(file)) return hub_fail(h, "unsafe file name '%.300s'", file);
    snprintf(what, sizeof what, "file %s of %s (revision %s)", file, repo, rev);
    int rc = -1, fd = -1;
    char *erev = hub_url_escape(rev, 0), *efile = hub_url_escape(file, 1);
    char *url = erev && efile ? hub_aprintf("%s/%s/resolve/%s/%s", h->endpoint, repo, erev, efile) : NULL;
    char *final = hub_aprintf("%s/%s", dir, file), *part = hub_aprintf("%s/%s.part", dir, file);
    char *side = hub_aprintf("%s/" SIDECAR_DIR "/%s.etag", dir, file);
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    if (!url || !final || !part || !side || !sha) {
        hub_fail(h, "out of memory");
        goto done;
    }

    /* 1. What the hub says the file is. */
    hub_resp_t r;
    if (hub_head_meta(h, url, what, rev, &r)) goto done;
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
        hub_fail(h, "cannot create the folder for %s: %s", part, strerror(errno));
        goto done;
    }
    /* A .part left by an earlier run is resumed only when the result can be
     * checked by its SHA-256: a small git file's .part may hold the start of
     * an older version, which a size check would not notice. */
    if (!lfs && unlink(part) && errno != ENOENT) {
        hub_fail(h, "cannot remove %s: %s", part, strerror(errno));
        goto done;
    }
    int attempts = 0, restarted = 0;
    for (;;) {
        if (fd >= 0) close(fd);
        if ((fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
            hub_fail(h, "cannot write %s: %s", part, strerror(errno));
            goto done;
        }
        struct stat st;
        int64_t offset = fstat(fd, &st) || !S_ISREG(st.st_mode) ? 0 : st.st_size;
        if (size >= 0 && offset > size) { /* longer than the file: not a prefix of it */
            if (ftruncate(fd, 0)) {
                hub_fail(h, "cannot write %s: %s", part, strerror(errno));
                goto done;
            }
            offset = 0;
        }
        EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
        if (offset > 0 && sha_file(part, offset, sha)) {
            hub_fail(h, "cannot read %s: %s", part, strerror(errno));
            goto done;
        }
        p.done = p.resumed = offset;
        emit(h, &p, HUB_EV_START);
        xfer_t x = {.h = h, .fd = fd, .offset = offset, .sha = sha, .p = &p};
        if (!(c = hub_easy_new(h, url, &x.r, errbuf))) {
            hub_fail(h, "out of memory");
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
            hub_fail(h, "cannot write %s: %s%s", part, strerror(x.write_errno),
                 x.write_errno == ENOSPC ? " (the disk is full: free some space, then run the same command again to resume)" : "");
            goto done;
        }
        if (x.bad_range) {
            hub_fail(h, "%s: asked for bytes from %lld on, %s sent a range starting at %lld", what, (long long)x.offset, url,
                     (long long)x.r.range_start);
            goto done;
        }
        if (cc != CURLE_OK) {
            const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
            if (x.got > 0 && ++attempts < MAX_ATTEMPTS) {
                note(h, file, "interrupted at %s (%s); resuming", hub_fmt_bytes(b1, sizeof b1, x.offset + x.got), why);
                continue;
            }
            hub_fail(h, "download of %s interrupted at %s of %s: %s. The bytes so far are kept in %s: run the same command "
                        "again to resume",
                     what, hub_fmt_bytes(b1, sizeof b1, x.offset + x.got), hub_fmt_bytes(b2, sizeof b2, size), why, part);
            goto done;
        }
        if (!(x.r.status == 416 && offset > 0) && x.r.status != 200 && x.r.status != 206) {
            hub_http_fail(h, &x.r, what, rev, url);
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
                hub_fail(h, "%s: got %lld bytes, the hub says %lld; deleted %s", what, (long long)have, (long long)size, part);
            else
                hub_fail(h, "%s: SHA-256 mismatch: the hub says %s, the downloaded file has %s; deleted %s (run the command "
                            "again)",
                         what, etag, hex, part);
            goto done;
        }
        if (fsync(fd) && errno != EINVAL) {
            hub_fail(h, "cannot write %s: %s", part, strerror(errno));
            goto done;
        }
        close(fd);
        fd = -1;
        if (rename(part, final)) {
            hub_fail(h, "cannot rename %s to %s: %s", part, final, strerror(errno));
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
