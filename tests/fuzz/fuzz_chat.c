/* fuzz_chat.c — qc_chat_render on a message list built from the input,
 * against a plain reference rendering written here.
 *
 * Input: byte 0 holds the options (bit 0 a default system prompt, bit 1
 * add_generation_prompt, bit 2 empty_think, bit 3 NULL options); the rest is records separated
 * by NUL bytes, each a role byte and the content. Role byte % 6: 0 system,
 * 1 user, 2 assistant, 3 a NULL role, 4 a NULL content (role user), 5 the
 * role is the content up to its first '\n' (an unknown role unless it spells
 * a known one). With bit 0 the first record's content is the default system
 * prompt instead of a message. */
#include "fuzz.h"

#include "qcare.h"

#define MAX_MSGS 64

/* The rendering as qcare.h describes it, one snprintf-free append at a time. */
static size_t put(char *o, size_t k, const char *s) {
    size_t n = strlen(s);
    memcpy(o + k, s, n);
    return k + n;
}

static char *reference(const qc_chat_msg_t *m, size_t n, const qc_chat_opts_t *opts, size_t total) {
    char *o = malloc(total + 1);
    size_t k = 0;
    if (opts->default_system && (n == 0 || strcmp(m[0].role, "system") != 0)) {
        k = put(o, k, "<|im_start|>system\n");
        k = put(o, k, opts->default_system);
        k = put(o, k, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        k = put(o, k, "<|im_start|>");
        k = put(o, k, m[i].role);
        k = put(o, k, "\n");
        k = put(o, k, m[i].content);
        k = put(o, k, "<|im_end|>\n");
    }
    if (opts->add_generation_prompt) {
        k = put(o, k, "<|im_start|>assistant\n");
        if (opts->empty_think) k = put(o, k, "<think>\n\n</think>\n\n");
    }
    o[k] = 0;
    return o;
}

static int known_role(const char *r) {
    return r && (!strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    /* a NUL-terminated copy, so that every record is a C string */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    qc_chat_opts_t opts = {0};
    qc_chat_msg_t msgs[MAX_MSGS];
    size_t n = 0, total = 0;
    int valid = 1;
    char *p = buf + 1, *end = buf + size;
    int want_system = data[0] & 1;
    while (p <= end && n < MAX_MSGS) {
        char *rec = p;
        size_t len = strlen(rec);
        p += len + 1;
        if (len == 0) continue;
        char *content = rec + 1;
        if (want_system) {
            opts.default_system = content;
            want_system = 0;
            continue;
        }
        qc_chat_msg_t *m = &msgs[n++];
        static const char *const roles[] = {"system", "user", "assistant"};
        int r = (unsigned char)rec[0] % 6;
        m->content = content;
        if (r < 3) m->role = roles[r];
        else if (r == 3) m->role = NULL;
        else if (r == 4) m->role = "user", m->content = NULL;
        else {
            char *nl = strchr(content, '\n');
            m->role = content;
            m->content = nl ? nl + 1 : "";
            if (nl) *nl = 0;
        }
        valid &= known_role(m->role) && m->content;
    }
    opts.add_generation_prompt = (data[0] >> 1) & 1;
    opts.empty_think = (data[0] >> 2) & 1;
    int no_opts = (data[0] >> 3) & 1; /* NULL options: as all zero */
    if (no_opts) memset(&opts, 0, sizeof opts);
    char *out = (char *)1;
    qc_status st = qc_chat_render(msgs, n, no_opts ? NULL : &opts, &out);
    if (!valid) {
        FUZZ_CHECK(st == QC_ERR_ARG && out == NULL, "a bad role or content rendered (status %d)", st);
    } else {
        FUZZ_CHECK(st == QC_OK && out, "render failed: %d", st);
        total = size * 2 + 64 * (n + 2); /* the reference's bound: every piece is at most this */
        char *ref = reference(msgs, n, &opts, total);
        FUZZ_CHECK(!strcmp(out, ref), "render differs from the reference");
        free(ref);
    }
    free(out);
    /* NULL list, NULL out */
    FUZZ_CHECK(qc_chat_render(NULL, 1, &opts, &out) == QC_ERR_ARG && out == NULL, "NULL messages accepted");
    FUZZ_CHECK(qc_chat_render(msgs, n, &opts, NULL) == QC_ERR_ARG, "NULL out accepted");
    free(buf);
    return 0;
}
