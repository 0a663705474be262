/* safetensors.c — memory-mapped, bounds-checked reader of .safetensors files
 * and of sharded sets (model.safetensors.index.json + shards).
 *
 * File layout: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}), then the data region; offsets are relative to its
 * start. Everything in a file is untrusted: each tensor is checked against the
 * real file size before a pointer into the mapping is handed out. */
#include "engine/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Far above any real header (Qwen's are ~30 KB), low enough that a hostile
 * length cannot make us parse gigabytes. */
#define MAX_HEADER_BYTES ((uint64_t)100 << 20)
#define MAX_SHARDS 4096

typedef struct {
    void *map;   /* whole file, read-only */
    size_t size; /* bytes */
} st_file_t;

struct qc_st {
    st_file_t *files; /* [n_files] */
    size_t n_files;
    qc_st_tensor_t *tensors; /* [n_tensors], sorted by name once loading ends */
    size_t n_tensors, cap_tensors;
    void **copies; /* [n_copies] aligned copies of misaligned tensors */
    size_t n_copies;
};

/* ==== building the set ==== */

static void st_free_contents(qc_st_t *st) {
    for (size_t i = 0; i < st->n_files; i++)
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].size);
    for (size_t i = 0; i < st->n_tensors; i++) free((char *)st->tensors[i].name);
    for (size_t i = 0; i < st->n_copies; i++) free(st->copies[i]);
    free(st->copies);
    free(st->files);
    free(st->tensors);
}

void qc_st_close(qc_st_t *st) {
    if (!st) return;
    st_free_contents(st);
    free(st);
}

size_t qc_st_n_files(const qc_st_t *st) { return st ? st->n_files : 0; }

const void *qc_st_header(const qc_st_t *st, size_t i, size_t *len) {
    *len = 0;
    if (!st || i >= st->n_files || st->files[i].size < 8) return NULL;
    const unsigned char *p = st->files[i].map;
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--) n = n << 8 | p[b];
    *len = 8 + (size_t)n; /* load_header checked n against the file size */
    return p;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const qc_st_tensor_t *)a)->name, ((const qc_st_tensor_t *)b)->name);
}

/* Maps `path` read-only and appends it to st->files. */
static qc_status map_file(qc_st_t *st, const char *path, st_file_t **out, char *err,
                          size_t err_size) {
    st_file_t *nf = realloc(st->files, (st->n_files + 1) * sizeof *nf);
    if (!nf) return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", path);
    st->files = nf;
    /* O_NONBLOCK: opening a FIFO must not hang (fstat below refuses it) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return qc_seterr(err, err_size, QC_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return qc_seterr(err, err_size, QC_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 8) {
        close(fd);
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: %lld bytes is too short for a safetensors file", path,
                         (long long)sb.st_size);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return qc_seterr(err, err_size, QC_ERR_IO, "%s: too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping stays valid */
    if (map == MAP_FAILED) return qc_seterr(err, err_size, QC_ERR_IO, "%s: mmap: %s", path, strerror(e));
    st_file_t *f = &st->files[st->n_files++];
    f->map = map;
    f->size = size;
    *out = f;
    return QC_OK;
}

static qc_status push_tensor(qc_st_t *st, const qc_st_tensor_t *t, const char *path, char *err,
                             size_t err_size) {
    if (st->n_tensors == st->cap_tensors) {
        size_t ncap = st->cap_tensors ? st->cap_tensors * 2 : 512;
        qc_st_tensor_t *nt = realloc(st->tensors, ncap * sizeof *nt);
        if (!nt) return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", path);
        st->tensors = nt;
        st->cap_tensors = ncap;
    }
    st->tensors[st->n_tensors++] = *t;
    return QC_OK;
}

static int parse_dtype(const char *s, qc_dtype_t *out) {
    if (strcmp(s, "F32") == 0) *out = QC_DTYPE_F32;
    else if (strcmp(s, "F16") == 0) *out = QC_DTYPE_F16;
    else if (strcmp(s, "BF16") == 0) *out = QC_DTYPE_BF16;
    else return 0;
    return 1;
}

/* Checks one header entry `name` -> `v` of a file whose data region is
 * [data, data + data_size) and fills *t (name not yet copied). */
static qc_status parse_entry(const char *path, const char *name, json_t *v,
                             const unsigned char *data, uint64_t data_size, qc_st_tensor_t *t,
                             char *err, size_t err_size) {
    memset(t, 0, sizeof *t);
    if (!json_is_object(v))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: tensor %s: entry is not an object",
                         path, name);
    json_t *jd = json_object_get(v, "dtype");
    json_t *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: tensor %s: missing dtype", path, name);
    if (!parse_dtype(json_string_value(jd), &t->dtype))
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: tensor %s: dtype %.32s is not supported (F32, F16, BF16 are)", path,
                         name, json_string_value(jd));
    if (!json_is_array(js))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: tensor %s: missing shape", path, name);
    size_t ndim = json_array_size(js);
    if (ndim > 4)
        return qc_seterr(err, err_size, QC_ERR_UNSUPPORTED,
                         "%s: tensor %s: %zu dimensions (at most 4 supported)", path, name, ndim);
    uint64_t count = 1;
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return qc_seterr(err, err_size, QC_ERR_FORMAT,
                             "%s: tensor %s: shape[%zu] is not a non-negative integer", path, name,
                             i);
        uint64_t dim = (uint64_t)json_integer_value(d);
        if (__builtin_mul_overflow(count, dim, &count))
            return qc_seterr(err, err_size, QC_ERR_FORMAT,
                             "%s: tensor %s: shape's element count overflows", path, name);
        t->shape[i] = (int64_t)dim;
    }
    t->ndim = (int)ndim;
    uint64_t nbytes;
    if (__builtin_mul_overflow(count, (uint64_t)qc_dtype_size(t->dtype), &nbytes))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: tensor %s: byte size overflows", path,
                         name);

    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        !json_is_integer(json_array_get(jo, 0)) || !json_is_integer(json_array_get(jo, 1)) ||
        json_integer_value(json_array_get(jo, 0)) < 0 ||
        json_integer_value(json_array_get(jo, 1)) < 0)
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: tensor %s: data_offsets is not two non-negative integers", path,
                         name);
    uint64_t begin = (uint64_t)json_integer_value(json_array_get(jo, 0));
    uint64_t end = (uint64_t)json_integer_value(json_array_get(jo, 1));
    if (begin > end)
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: tensor %s: data_offsets begin %llu > end %llu", path, name,
                         (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: tensor %s: data_offsets end %llu is past the end of the data (%llu "
                         "bytes; file truncated?)",
                         path, name, (unsigned long long)end, (unsigned long long)data_size);
    if (end - begin != nbytes)
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: tensor %s: data_offsets span %llu bytes but the shape needs %llu",
                         path, name, (unsigned long long)(end - begin),
                         (unsigned long long)nbytes);
    t->data = data + begin;
    t->nbytes = (size_t)nbytes;
    return QC_OK;
}

/* The format does not require aligned data (Hugging Face pads the header so
 * that it is, but other writers may not), and typed loads from a misaligned
 * address are undefined: such a tensor is copied into malloc'd memory, which
 * is aligned for every dtype. */
static qc_status align_tensor(qc_st_t *st, qc_st_tensor_t *t, const char *path, char *err,
                              size_t err_size) {
    if (t->nbytes == 0 || (uintptr_t)t->data % qc_dtype_size(t->dtype) == 0) return QC_OK;
    void **nc = realloc(st->copies, (st->n_copies + 1) * sizeof *nc);
    if (!nc) return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", path);
    st->copies = nc;
    void *copy = malloc(t->nbytes);
    if (!copy)
        return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory copying tensor %s", path,
                         t->name);
    memcpy(copy, t->data, t->nbytes);
    st->copies[st->n_copies++] = copy;
    t->data = copy;
    return QC_OK;
}

/* Parses the header of mapped file f and appends its tensors. */
static qc_status load_header(qc_st_t *st, const char *path, const st_file_t *f, char *err,
                             size_t err_size) {
    const unsigned char *base = f->map;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | base[i];
    uint64_t avail = (uint64_t)f->size - 8;
    if (n > avail)
        return qc_seterr(err, err_size, QC_ERR_FORMAT,
                         "%s: header length %llu is larger than the file (%llu bytes after the "
                         "length; file truncated?)",
                         path, (unsigned long long)n, (unsigned long long)avail);
    if (n > MAX_HEADER_BYTES)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: header length %llu exceeds %llu",
                         path, (unsigned long long)n, (unsigned long long)MAX_HEADER_BYTES);
    if (n < 2)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: header is empty", path);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)base + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: header is not valid JSON: %s (column %d)",
                         path, jerr.text, jerr.column);
    qc_status s = QC_OK;
    if (!json_is_object(root)) {
        s = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    const unsigned char *data = base + 8 + n;
    uint64_t data_size = avail - n;
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        if (strcmp(name, "__metadata__") == 0) continue;
        qc_st_tensor_t t;
        s = parse_entry(path, name, v, data, data_size, &t, err, err_size);
        if (s) goto done;
        t.name = strdup(name);
        if (!t.name) {
            s = qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        s = align_tensor(st, &t, path, err, err_size);
        if (!s) s = push_tensor(st, &t, path, err, err_size);
        if (s) {
            free((char *)t.name);
            goto done;
        }
    }
done:
    json_decref(root);
    return s;
}

/* Sorts the tensors for qc_st_find and rejects a name held twice (possible
 * only across the shards of a set). */
static qc_status finish(qc_st_t *st, const char *what, char *err, size_t err_size) {
    if (st->n_tensors > 1) qsort(st->tensors, st->n_tensors, sizeof *st->tensors, cmp_tensor);
    for (size_t i = 1; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: tensor %s appears twice", what,
                             st->tensors[i].name);
    return QC_OK;
}

/* Maps one file and adds its tensors to st. */
static qc_status add_file(qc_st_t *st, const char *path, char *err, size_t err_size) {
    st_file_t *f = NULL;
    qc_status s = map_file(st, path, &f, err, err_size);
    if (s) return s;
    return load_header(st, path, f, err, err_size);
}

/* ==== opening ==== */

qc_status qc_st_open_file(const char *path, qc_st_t **out, char *err, size_t err_size) {
    if (!out) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_st_open_file: NULL out");
    *out = NULL;
    if (!path) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_st_open_file: NULL path");
    qc_st_t *st = calloc(1, sizeof *st);
    if (!st) return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", path);
    qc_status s = add_file(st, path, err, err_size);
    if (s) goto fail;
    s = finish(st, path, err, err_size);
    if (s) goto fail;
    *out = st;
    return QC_OK;
fail:
    qc_st_close(st);
    return s;
}

/* A shard name from an index must be a plain file name in the same folder. */
static int shard_name_ok(const char *s) {
    return s[0] != 0 && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, "..");
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Opens the shards that index.json (already parsed as `root`) names, each
 * once, and checks that every weight_map entry lies in its shard. */
static qc_status open_sharded(qc_st_t *st, const char *dir, const char *ipath, json_t *root,
                              char *err, size_t err_size) {
    json_t *map = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(map))
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: missing object \"weight_map\"", ipath);
    size_t n_entries = json_object_size(map);
    if (n_entries == 0)
        return qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: weight_map is empty", ipath);
    const char **names = calloc(n_entries, sizeof *names);
    if (!names) return qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", ipath);
    qc_status s = QC_OK;
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        if (!json_is_string(v) || !shard_name_ok(json_string_value(v))) {
            s = qc_seterr(err, err_size, QC_ERR_FORMAT,
                          "%s: weight_map[\"%.200s\"] is not a plain file name in the folder",
                          ipath, key);
            goto done;
        }
        names[n++] = json_string_value(v);
    }
    qsort(names, n, sizeof *names, cmp_str);
    size_t n_unique = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0) names[n_unique++] = names[i];
    if (n_unique > MAX_SHARDS) {
        s = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s: %zu shards is too many", ipath, n_unique);
        goto done;
    }
    for (size_t i = 0; i < n_unique; i++) {
        char *p = qc_path_join(dir, names[i]);
        if (!p) {
            s = qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", ipath);
            goto done;
        }
        s = add_file(st, p, err, err_size);
        free(p);
        if (s) goto done;
    }
    s = finish(st, ipath, err, err_size);
    if (s) goto done;
    /* st->files[i] is the shard names[i] (opened in that order) */
    json_object_foreach(map, key, v) {
        const qc_st_tensor_t *t = qc_st_find(st, key);
        const char *sv = json_string_value(v);
        const char **hit = bsearch(&sv, names, n_unique, sizeof *names, cmp_str);
        const st_file_t *f = hit ? &st->files[hit - names] : NULL;
        uintptr_t lo = f ? (uintptr_t)f->map : 0, at = t ? (uintptr_t)t->data : 0;
        if (!t || !f || at < lo || at - lo > f->size) {
            s = qc_seterr(err, err_size, QC_ERR_FORMAT,
                          "%s: tensor %.200s is listed in weight_map but not found in %.200s",
                          ipath, key, json_string_value(v));
            goto done;
        }
    }
done:
    free(names);
    return s;
}

qc_status qc_st_open_dir(const char *dir, qc_st_t **out, char *err, size_t err_size) {
    if (!out) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_st_open_dir: NULL out");
    *out = NULL;
    if (!dir) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_st_open_dir: NULL dir");
    qc_status s = QC_OK;
    qc_st_t *st = NULL;
    json_t *root = NULL;
    char *single = qc_path_join(dir, "model.safetensors");
    char *ipath = qc_path_join(dir, "model.safetensors.index.json");
    if (!single || !ipath) {
        s = qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    if (access(single, F_OK) == 0) {
        s = qc_st_open_file(single, &st, err, err_size);
        if (s) goto fail;
    } else if (access(ipath, F_OK) == 0) {
        size_t len;
        char *text = qc_read_file(ipath, &len, err, err_size);
        if (!text) {
            s = QC_ERR_IO;
            goto fail;
        }
        json_error_t jerr;
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        free(text);
        if (!root) {
            s = qc_seterr(err, err_size, QC_ERR_FORMAT, "%s:%d:%d: malformed JSON: %s", ipath,
                          jerr.line, jerr.column, jerr.text);
            goto fail;
        }
        st = calloc(1, sizeof *st);
        if (!st) {
            s = qc_seterr(err, err_size, QC_ERR_NOMEM, "%s: out of memory", ipath);
            goto fail;
        }
        s = open_sharded(st, dir, ipath, root, err, err_size);
        if (s) goto fail;
    } else {
        s = qc_seterr(err, err_size, QC_ERR_IO,
                      "%s: neither model.safetensors nor model.safetensors.index.json found", dir);
        goto fail;
    }
    json_decref(root);
    free(single);
    free(ipath);
    *out = st;
    return QC_OK;
fail:
    json_decref(root);
    qc_st_close(st);
    free(single);
    free(ipath);
    return s;
}

/* ==== lookup ==== */

const qc_st_tensor_t *qc_st_find(const qc_st_t *st, const char *name) {
    if (!st || !name || st->n_tensors == 0) return NULL;
    qc_st_tensor_t key;
    memset(&key, 0, sizeof key);
    key.name = name;
    return bsearch(&key, st->tensors, st->n_tensors, sizeof *st->tensors, cmp_tensor);
}

size_t qc_st_count(const qc_st_t *st) { return st ? st->n_tensors : 0; }

const qc_st_tensor_t *qc_st_at(const qc_st_t *st, size_t i) {
    return st && i < st->n_tensors ? &st->tensors[i] : NULL;
}
