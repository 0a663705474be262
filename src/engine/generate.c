/* generate.c — qc_generate: a prompt, then sampled tokens one decode step
 * at a time on one context, streamed to a callback as whole UTF-8 pieces
 * until an end-of-generation token, max_tokens or the end of the context. */
#include "engine/model_impl.h"

#include <stdlib.h>
#include <string.h>

qc_status qc_generate(qc_ctx_t *x, const int32_t *prompt, size_t n_prompt,
                      const qc_generate_opts_t *opts, qc_token_cb cb, void *user,
                      int32_t *out_ids, size_t *n_out) {
    const qc_model_t *m = x->m;
    *n_out = 0;
    if (opts->max_tokens <= 0) return qc_seterr(x->err, sizeof x->err, QC_ERR_ARG, "max_tokens must be > 0");
    qc_status st;
    size_t n_hist = 0, cap = n_prompt + (size_t)opts->max_tokens;
    int32_t *hist = malloc(cap * sizeof *hist);
    qc_sampler_t *s = qc_sampler_new(m->cfg.n_vocab, &opts->sampling);
    if (!x->logits) x->logits = malloc((size_t)m->cfg.n_vocab * sizeof(float));
    if (!hist || !s || !x->logits) {
        st = qc_seterr(x->err, sizeof x->err, QC_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(hist, prompt, n_prompt * sizeof *hist);
    n_hist = n_prompt;
    if ((st = qc_ctx_eval(x, prompt, n_prompt, x->logits, QC_LOGITS_LAST))) goto done;

    qc_detok_t dt;
    qc_detok_init(&dt);
    char piece[512];
    for (int i = 0; i < opts->max_tokens; i++) {
        int32_t id = qc_sampler_sample(s, x->logits, hist, n_hist);
        if (qc_model_is_eog(m, id)) break;
        hist[n_hist++] = id;
        if (out_ids) out_ids[*n_out] = id;
        (*n_out)++;
        long len = qc_detok_push(&dt, m->tok, id, piece, sizeof piece);
        if (len < 0) len = 0, piece[0] = 0;
        if (cb && cb(user, id, piece, (size_t)len)) break;
        if (i + 1 == opts->max_tokens || x->pos >= x->n_ctx) break;
        if ((st = qc_ctx_eval(x, &id, 1, x->logits, QC_LOGITS_LAST))) goto done;
    }
    long len = qc_detok_flush(&dt, piece, sizeof piece);
    if (len > 0 && cb) cb(user, -1, piece, (size_t)len);
    st = QC_OK;
done:
    qc_sampler_free(s);
    free(hist);
    return st;
}
