/* util.c — error messages, file helpers and number conversions shared by the
 * engine. */
#include "engine/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *qc_status_str(qc_status s) {
    switch (s) {
    case QC_OK: return "ok";
    case QC_ERR_IO: return "i/o error";
    case QC_ERR_FORMAT: return "format error";
    case QC_ERR_UNSUPPORTED: return "unsupported";
    case QC_ERR_NOMEM: return "out of memory";
    case QC_ERR_ARG: return "bad argument";
    case QC_ERR_CONTEXT: return "context full";
    case QC_ERR_BUSY: return "busy";
    case QC_ERR_CANCELLED: return "cancelled";
    case QC_ERR_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}

char *qc_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

char *qc_read_file(const char *path, size_t *len, char *err, size_t err_size) {
    /* O_NONBLOCK: opening a FIFO must not hang; the regular-file check
     * below refuses it (and devices such as /dev/zero or /dev/urandom,
     * which would otherwise be read forever). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: not a regular file", path);
        return NULL;
    }
    if (sb.st_size > QC_READ_FILE_MAX) {
        close(fd);
        qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: %lld bytes, more than the %d MiB such a file may have", path,
                  (long long)sb.st_size, QC_READ_FILE_MAX >> 20);
        return NULL;
    }
    /* Read up to one byte past the limit: a file that grew meanwhile is
     * refused too, so memory stays bounded by the limit. */
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            if (cap > QC_READ_FILE_MAX) break;
            size_t ncap = cap * 2 > (size_t)QC_READ_FILE_MAX + 1 ? (size_t)QC_READ_FILE_MAX + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", path);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            qc_seterr(err, err_size, QC_ERR_IO, "%s: read error: %s", path, strerror(e));
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n > QC_READ_FILE_MAX) {
        free(buf);
        qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: more than the %d MiB such a file may have", path,
                  QC_READ_FILE_MAX >> 20);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

float qc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    union { uint32_t u; float f; } v = {bits};
    return v.f;
}

uint16_t qc_f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40); /* quiet NaN */
    uint32_t round = 0x7fffu + ((v.u >> 16) & 1);
    return (uint16_t)((v.u + round) >> 16);
}

size_t qc_dtype_size(qc_dtype_t t) {
    switch (t) {
    case QC_DTYPE_F32: return 4;
    case QC_DTYPE_F16: return 2;
    case QC_DTYPE_BF16: return 2;
    case QC_DTYPE_Q8_0: /* block types: see qc_row_bytes */
    case QC_DTYPE_Q4_0:
    case QC_DTYPE_Q4_K:
    case QC_DTYPE_Q6_K:
    case QC_DTYPE_Q4_1:
    case QC_DTYPE_Q5_0:
    case QC_DTYPE_Q5_1:
    case QC_DTYPE_Q2_K:
    case QC_DTYPE_Q3_K:
    case QC_DTYPE_Q5_K:
    case QC_DTYPE_Q8_K:
    case QC_DTYPE_Q8_1: return 0;
    }
    return 0;
}

const char *qc_dtype_name(qc_dtype_t t) {
    switch (t) {
    case QC_DTYPE_F32: return "F32";
    case QC_DTYPE_F16: return "F16";
    case QC_DTYPE_BF16: return "BF16";
    case QC_DTYPE_Q8_0: return "Q8_0";
    case QC_DTYPE_Q4_0: return "Q4_0";
    case QC_DTYPE_Q4_K: return "Q4_K";
    case QC_DTYPE_Q6_K: return "Q6_K";
    case QC_DTYPE_Q4_1: return "Q4_1";
    case QC_DTYPE_Q5_0: return "Q5_0";
    case QC_DTYPE_Q5_1: return "Q5_1";
    case QC_DTYPE_Q2_K: return "Q2_K";
    case QC_DTYPE_Q3_K: return "Q3_K";
    case QC_DTYPE_Q5_K: return "Q5_K";
    case QC_DTYPE_Q8_K: return "Q8_K";
    case QC_DTYPE_Q8_1: return "Q8_1";
    }
    return "?";
}
