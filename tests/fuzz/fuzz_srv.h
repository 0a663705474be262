/* fuzz_srv.h — what the server's fuzz targets (fuzz_api, fuzz_sse) share:
 * a qc_server_t with no daemon, no scheduler and no connections around the
 * fixture model models/tiny-qwen3.q8_0.gguf (the real Qwen tokenizer,
 * random weights: the bodies are only parsed, never run), enough for the
 * endpoints' parse functions (srv.h, qs_*_parse) and a call's callbacks and
 * format functions. Built with the server's files and the care library
 * (Makefile, FUZZ_SERVER). */
#ifndef QC_FUZZ_SRV_H
#define QC_FUZZ_SRV_H

#include "fuzz.h"
#include "server/srv.h"

#define FUZZ_N_CTX 1024 /* the context the bodies are checked against */

static qc_server_t *fuzz_server(void) {
    static qc_server_t s;
    static int ready;
    if (ready) return &s;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/tiny-qwen3.q8_0.gguf", fuzz_fixtures());
    qc_model_opts_t mo = {.n_threads = 1};
    FUZZ_CHECK(!qc_model_load(path, &mo, &s.m, err, sizeof err), "cannot load %s: %s", path, err);
    s.tok = qc_model_tokenizer(s.m);
    s.n_ctx = FUZZ_N_CTX;
    s.qwen3 = qc_model_arch(s.m) == QC_ARCH_QWEN3;
    s.model_name = "fuzz";
    s.parallel = 1;
    FUZZ_CHECK((s.metrics = qs_metrics_new()) != NULL, "out of memory");
    ready = 1;
    return &s;
}

/* Whether p[0..n) is valid UTF-8 (what jansson accepts in a string). */
static inline int fuzz_utf8(const char *p, size_t n) {
    json_t *j = json_stringn(p, n);
    json_decref(j);
    return j != NULL;
}

#endif
