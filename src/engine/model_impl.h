/* model_impl.h — what the files of the model share inside the engine: the
 * context (struct qc_ctx: KV cache, scratch buffers; ctx.c), the forward pass
 * over runs of several sequences (forward.c, used by ctx.c's eval and
 * batch.c), the conversion of weights at load (weights.c, used by model.c),
 * and the reference forward pass (forward_ref.c, used only by tests). Not
 * part of the public API. */
#ifndef QC_MODEL_IMPL_H
#define QC_MODEL_IMPL_H

#include "engine/engine.h"

/* ==== context (ctx.c) ==== */

/* The scratch buffers of a forward pass over up to n_batch tokens: a
 * context's own, or a qc_batch_t's for several sequences at once. */
typedef struct {
    int n_batch, n_scores;
    float *x, *xb;            /* [n_batch][n_embd] */
    float *q;                 /* [n_batch][q_dim] */
    float *k, *v;             /* [n_batch][kv_dim] */
    float *att_out;           /* [n_batch][q_dim], in hb where n_ff >= q_dim */
    float *hb, *hb2;          /* [n_batch][n_ff] */
    float *scores;            /* [n_threads][n_scores]: n_scores >= every sequence's n_ctx */
    void *act;                /* quantized activations: QC_ACT_SLOTS slots (kernels.h) */
    size_t act_slot;          /* bytes of one slot */
    float *cos_t, *sin_t;     /* [n_batch][head_dim/2] */
} qc_work_t;

struct qc_ctx {
    const qc_model_t *m;
    int n_ctx, n_batch, pos;
    int q_dim, kv_dim;
    uint16_t *k_cache, *v_cache; /* [n_layer][n_head_kv][n_ctx][head_dim] IEEE halves (llama.cpp's
                                  * default F16 cache), mmapped: pages exist once written. Head-major,
                                  * so attention reads each head's rows in one sequential run. */
    size_t cache_bytes;       /* of each */
    qc_work_t w;              /* allocated by the first qc_ctx_eval; qc_ctx_trim frees it */
    float *logits;            /* [n_vocab], for qc_generate (allocated there) */
    const struct qc_ctx *prefix; /* shared, read-only: positions [0, n_prefix) */
    int n_prefix;
    char err[256];
};

/* A run of n_tok tokens of one sequence in a forward pass: workspace rows
 * [t0, t0 + n_tok) at positions pos0.. of context x. */
typedef struct {
    qc_ctx_t *x;
    int t0, n_tok, pos0;
} qc_seg_t;

/* Allocates the buffers of passes over up to n_batch tokens of sequences
 * of up to n_scores positions. 0, or -1 when out of memory (w freed). */
int qc_work_init(qc_work_t *w, const qc_model_t *m, int n_batch, int n_scores);
/* Frees w's buffers and zeroes it (a zeroed w is a no-op). */
void qc_work_free(qc_work_t *w);

/* ==== forward pass (forward.c) ==== */

/* Runs n_tok (<= w->n_batch) tokens through the model: the runs of seg
 * (in order, covering rows 0..n_tok), each at its sequence's positions.
 * Leaves the final hidden states, normalized, in w->xb; advances every
 * sequence. Each token's result is the same as when its run is alone in a
 * pass: products are per token row, attention per sequence. Never
 * allocates; the ids and positions must have been checked
 * (qc_ctx_check_ids). */
void qc_forward(const qc_model_t *m, qc_work_t *w, const qc_seg_t *seg, int n_seg, const int32_t *ids, int n_tok);

/* logits[t][n_vocab] = lm_head . h[t] for n_tok (<= w->n_batch) rows of
 * final hidden states h ([n_tok][n_embd]), split over the model's pool. */
void qc_forward_logits(const qc_model_t *m, qc_work_t *w, const float *h, int n_tok, float *logits);

/* The checks of an eval of n_ids tokens on x: they fit its context and
 * every id is in the vocabulary (errors on x). */
qc_status qc_ctx_check_ids(qc_ctx_t *x, const int32_t *ids, size_t n_ids);

/* ==== weight conversion at load (weights.c) ==== */

/* Brings every matrix to type `to` (see weights.c for which get what) and
 * every norm weight and bias to F32, into buffers the model owns;
 * recomputes m->weight_bytes when anything changed. */
qc_status qc_weights_convert(qc_model_t *m, int to_type, char *err, size_t err_size);
/* Gives the layer matrices the chosen level's panels (kernels_impl.h), when
 * it has them and QCARE_PANELS is not 0. After qc_weights_convert. */
qc_status qc_weights_panel(qc_model_t *m, char *err, size_t err_size);
/* Lets the kernel drop the mmapped pages of [p, p + n) (whole pages inside
 * it), so that what was copied out stops counting as resident memory; the
 * pages stay readable (faulted in again from the file if touched). */
void qc_drop_pages(const void *p, size_t n);

/* Tests: the next n row buffers the conversion's workers ask for are not
 * allocated (as when malloc fails), so the load fails with QC_ERR_NOMEM. */
void qc_weights_test_fail_rows(int n);

/* ==== reference forward pass (forward_ref.c) ==== */

/* One sequence's state in the reference pass: its own F32 KV cache and the
 * activations of one token. Allocated by qc_ref_state_init, never during a
 * pass. */
typedef struct {
    const qc_model_t *m;
    int n_ctx;
    float *k_cache, *v_cache; /* [n_layer][n_ctx][n_head_kv*head_dim] */
    float *x, *xb;            /* [n_embd]: the residual stream; a normed x or a product */
    float *q, *att_out;       /* [n_head*head_dim]: the roped query; the attention output */
    float *att;               /* [n_ctx]: one head's attention weights */
    float *hb, *hb2;          /* [n_ff]: gate, up */
    float *row;               /* [max(n_embd, n_ff, n_head*head_dim)]: one weight row in F32 */
} qc_ref_state_t;

/* Prepares s for up to n_ctx positions of model m (which must outlive it).
 * QC_OK, QC_ERR_ARG (n_ctx <= 0) or QC_ERR_NOMEM (s then freed). */
qc_status qc_ref_state_init(qc_ref_state_t *s, const qc_model_t *m, int n_ctx);
/* Frees s's buffers and zeroes it (NULL and a zeroed s are no-ops). */
void qc_ref_state_free(qc_ref_state_t *s);

/* Runs tokens ids[0..n) at positions pos[0..n), in order, through the
 * model: token i's K/V go to cache row pos[i] and it attends to rows
 * 0..pos[i], so every earlier position must have been run on s (running
 * from position p again overwrites from p). logits: [n][n_vocab], or NULL
 * to fill the cache only. QC_ERR_ARG (nothing run) for an id outside the
 * vocabulary or a position outside [0, n_ctx). Scalar F32, for tests: the
 * oracle of qc_forward. */
qc_status qc_forward_ref(qc_ref_state_t *s, const int32_t *ids, const int *pos, int n, float *logits);

#endif
