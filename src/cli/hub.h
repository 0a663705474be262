/* hub.h — a client for the Hugging Face hub's HTTP API, as `qcare pull`
 * uses it: list a repository's files, download one with resume and
 * verification, and where pulled models live.
 *
 * URLs (the public hub and its mirrors, e.g. HF_ENDPOINT=https://hf-mirror.com):
 *   {endpoint}/api/models/{repo}/revision/{rev}   JSON, `siblings: [{rfilename}]`
 *   {endpoint}/{repo}/resolve/{rev}/{file}        the file; large (LFS) files
 *       answer 302 to a CDN, with X-Linked-Etag (their SHA-256) and
 *       X-Linked-Size on the redirect
 *
 * Every function returns 0 on success and -1 on failure with a sentence for
 * the user in hub_errmsg(). Everything the server sends is untrusted: names
 * are validated before they become paths, bodies are size-capped. */
#ifndef QC_HUB_H
#define QC_HUB_H

#include <stddef.h>
#include <stdint.h>

/* The model `qcare pull` fetches when none is named: the strongest small Qwen
 * chat model qcare runs (0.5 B parameters, ~1 GB of BF16 weights). */
#define HUB_DEFAULT_REPO "Qwen/Qwen2.5-0.5B-Instruct"

typedef struct hub hub_t;

/* What hub_fetch reports while it works. */
enum {
    HUB_EV_START,  /* a transfer begins: done = bytes already in FILE.part (resumed) */
    HUB_EV_DATA,   /* bytes arrived (called per received chunk; throttle yourself) */
    HUB_EV_DONE,   /* the file is complete, verified and in place */
    HUB_EV_SKIP,   /* the file was already complete: nothing downloaded */
    HUB_EV_NOTE,   /* a sentence in `note` (a retry, a restart) */
};

typedef struct {
    int event;        /* HUB_EV_* */
    const char *file; /* the repository file name */
    int64_t done;     /* bytes of the file on disk so far */
    int64_t total;    /* the file's size in bytes; -1 when the server did not say */
    int64_t resumed;  /* bytes that were already in FILE.part when the transfer began */
    int verified_sha; /* HUB_EV_DONE/SKIP: checked against the hub's SHA-256 (else: by size) */
    const char *note; /* HUB_EV_NOTE only */
} hub_progress_t;

typedef void (*hub_progress_fn)(void *user, const hub_progress_t *p);

/* A client for `endpoint` (no trailing slash needed) sending `token` (may be
 * NULL) as "Authorization: Bearer" — to the endpoint's host only, never to a
 * host it redirects to. NULL when out of memory or libcurl fails to start.
 * hub_free(NULL) is a no-op. */
hub_t *hub_new(const char *endpoint, const char *token);
void hub_free(hub_t *h);
const char *hub_errmsg(const hub_t *h);
void hub_set_progress(hub_t *h, hub_progress_fn fn, void *user);

/* Bytes received over the network by this client so far (bodies of files). */
int64_t hub_bytes_downloaded(const hub_t *h);

/* Whether repo is "owner/name" as the hub allows it: [A-Za-z0-9._-], no
 * "..", "--" is fine, neither part starts or ends with '.' or '-', at most 96
 * characters per part. */
int hub_repo_valid(const char *repo);

/* Whether a repository file name is safe to use as a relative path: not
 * empty, not absolute, no backslash, no control character, no empty, "." or
 * ".." component, at most 255 bytes. */
int hub_file_valid(const char *name);

/* The repository's file names at rev: *files is a malloc'd NULL-terminated
 * array of malloc'd names (free with hub_strv_free), *n their count. Fails on
 * HTTP errors (404, 401/403 with a word about HF_TOKEN), a malformed listing,
 * or an unsafe file name in it. */
int hub_list(hub_t *h, const char *repo, const char *rev, char ***files, size_t *n);
void hub_strv_free(char **v);

/* Downloads `file` of repo@rev to dir/file (parent folders created):
 * - nothing is transferred when dir/file is already complete (see hub.c for
 *   the rule: same size as the hub says and a sidecar with the same ETag, or
 *   for an LFS file without the sidecar, the same SHA-256);
 * - bytes go to dir/file.part first; an existing .part of an LFS file is
 *   resumed with an HTTP Range request (a small git file starts again), and
 *   a transfer cut off after making progress is resumed automatically (a
 *   few times);
 * - the .part is renamed to dir/file only once verified: SHA-256 against the
 *   hub's ETag for LFS files, the size for small git files. A file that fails
 *   verification is deleted. */
int hub_fetch(hub_t *h, const char *repo, const char *rev, const char *file, const char *dir);

/* The models folder: $QCARE_MODELS, else $XDG_DATA_HOME/qcare/models, else
 * $HOME/.local/share/qcare/models. Caller frees; NULL when none of these is
 * set (or out of memory). */
char *hub_models_dir(void);

/* n bytes for people: "512 B", "12.3 kB", "39.1 MB", "1.23 GB" ("?" when
 * negative) in buf (at least 16 bytes); returns buf. */
const char *hub_fmt_bytes(char *buf, size_t cap, int64_t n);

/* mkdir -p: creates path and its missing parents (0755). 0 or -1 (errno). */
int hub_mkdirs(const char *path);

#endif
