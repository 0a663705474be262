/* ident.c — made session ids, the model's content hash and the default
 * store path (ident.h). */
#include "records/ident.h"

#include "base/base.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

static void to_hex(const unsigned char *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

int qc_rec_session_new(char out[QC_REC_SESSION_NEW_LEN + 1]) {
    unsigned char b[QC_REC_SESSION_NEW_LEN / 2];
    size_t got = 0;
    out[0] = 0;
    while (got < sizeof b) {
        ssize_t k = getrandom(b + got, sizeof b - got, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    to_hex(b, sizeof b, out);
    return 0;
}

static void feed(void *user, const void *p, size_t n) {
    EVP_MD_CTX *c = user;
    if (c) EVP_DigestUpdate(c, p, n);
}

int qc_rec_model_hash(const qc_model_t *m, char out[QC_REC_HASH_LEN + 1]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    if (ok) qc_model_identity(m, feed, c);
    ok = ok && EVP_DigestFinal_ex(c, md, &n) && n * 2 == QC_REC_HASH_LEN;
    EVP_MD_CTX_free(c);
    if (!ok) return -1;
    to_hex(md, n, out);
    return 0;
}

/* mkdir -p with mode 0700 for every folder it creates; 0 or -1 (errno). */
static int make_dirs(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0700);
        *p = '/';
        if (r && errno != EEXIST) return -1;
    }
    return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

qc_status qc_rec_default_path(char *out, size_t size, char *err, size_t err_size) {
    const char *data = getenv("QCARE_DATA"), *home = getenv("HOME");
    char dir[4096];
    int n;
    if (data && *data) n = snprintf(dir, sizeof dir, "%s", data);
    else if (home && *home) n = snprintf(dir, sizeof dir, "%s/.local/share/qcare", home);
    else return qc_seterr(err, err_size, QC_ERR_ARG, "records: neither $QCARE_DATA nor $HOME is set (give --records PATH)");
    if (n < 0 || (size_t)n >= sizeof dir) return qc_seterr(err, err_size, QC_ERR_ARG, "records: the data folder's path is too long");
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;
    if (make_dirs(dir))
        return qc_seterr(err, err_size, QC_ERR_IO, "records: cannot create %s: %s", dir, strerror(errno));
    n = snprintf(out, size, "%s/records.db", dir);
    if (n < 0 || (size_t)n >= size) return qc_seterr(err, err_size, QC_ERR_ARG, "records: the store's path is too long");
    return QC_OK;
}
