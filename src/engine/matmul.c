/* matmul.c — the one matrix-product driver: row blocks x reduction chunks x
 * token tiles, prefetch on the first token tile of each row block, calling
 * the chosen level's micro-kernels (kernels_impl.h describes them); and the
 * activation quantization the quantized tiles read.
 *
 * Compiled for the architecture's baseline (x86-64, ARMv8.0): the
 * instructions beyond it are all in the levels' files, reached through
 * their function pointers. */
#include "engine/kernels_impl.h"

/* ==== activations ==== */

/* Columns per unit of the reduction: one block of a quantized type, one
 * column of a float one. */
static int64_t unit_cols(qc_dtype_t t) { return t == QC_DTYPE_Q8_0 || t == QC_DTYPE_Q4_0 ? QC_QK : 1; }

/* Bytes one token's activations take per unit of `unit` columns. */
static size_t act_unit_bytes(qc_act_fmt_t f, int64_t unit) {
    return f == QC_ACT_Q8 ? (size_t)(unit / QC_QK) * sizeof(qc_block_q8_act) : (size_t)unit * sizeof(float);
}

/* Set k's kernels for weights of type t (NULL: none). */
static const qc_mm_kernel_t *kernel_for(const qc_kernel_set_t *k, qc_dtype_t t) {
    return (unsigned)t < QC_MM_TYPES ? k->matmul[t] : NULL;
}

size_t qc_act_bytes(qc_dtype_t t, int n_tok, int64_t cols) {
    const qc_mm_kernel_t *k = kernel_for(qc_kernels_for(qc_cpu_level()), t);
    if (!k || k->act == QC_ACT_F32) return 0;
    if (n_tok <= 0 || cols <= 0 || cols % QC_QK) return 0;
    return (size_t)n_tok * (size_t)(cols / QC_QK) * act_unit_bytes(k->act, QC_QK);
}

void qc_act_quantize(qc_dtype_t t, const float *x, int64_t cols, int t0, int t1, void *act) {
    const qc_kernel_set_t *ks = qc_kernels_for(qc_cpu_level());
    const qc_mm_kernel_t *k = kernel_for(ks, t);
    if (!k || k->act != QC_ACT_Q8) return;
    if (cols <= 0 || cols % QC_QK) return;
    qc_block_q8_act *a = act;
    for (int i = t0; i < t1; i++) ks->act_row(x + (size_t)i * cols, cols, a + (size_t)i * (cols / QC_QK));
}

/* ==== the driver ==== */

/* Rows [rb, re) of one token tile of nt tokens in shape s: full tiles,
 * then an edge for what is left. a holds the chunk's and the tile's fixed
 * arguments; w: row rb at the chunk's first unit; y: row 0 of the tile's
 * first token. */
static void row_tiles(const qc_mm_shape_t *s, qc_mm_tile_t *a, int64_t rb, int64_t re, int nt,
                      const unsigned char *w, float *y) {
    const int full = nt == s->toks;
    int64_t r = rb;
    a->row = rb;
    a->w = w;
    a->y = y + rb;
    for (; r + s->rows <= re; r += s->rows) {
        if (full) s->tile(a);
        else s->edge(a, s->rows, nt);
        a->row += s->rows;
        a->w += (size_t)s->rows * a->w_stride;
        a->y += s->rows;
    }
    if (r < re) s->edge(a, (int)(re - r), nt);
}

void qc_matmul_set(const qc_kernel_set_t *ks, const qc_tensor_t *w, const float *x, const void *act, int n_tok,
                   float *y, int64_t ldy, int64_t r0, int64_t r1) {
    const qc_mm_kernel_t *k = kernel_for(ks, w->dtype);
    if (!k || n_tok <= 0 || r0 >= r1) return;
    const int64_t uc = unit_cols(w->dtype), nu = w->cols / uc;
    const size_t w_unit = qc_row_bytes(w->dtype, uc), x_unit = act_unit_bytes(k->act, uc);
    const unsigned char *wd = w->data;
    const unsigned char *xd = k->act == QC_ACT_F32 ? (const void *)x : act;
    const int T = k->many.toks;
    /* chunks: as many pack steps as the pack holds for a full token tile */
    const size_t tt = (size_t)(n_tok < T ? n_tok : T);
    const int64_t chunk = k->pack.fn ? k->pack.step * (int64_t)(k->pack.bytes / k->pack.step_bytes / tt) : nu;
    _Alignas(64) unsigned char pack[QC_MM_PACK_BYTES];
    qc_mm_tile_t a = {.m = w, .w_stride = (size_t)nu * w_unit, .x_stride = (size_t)nu * x_unit, .ldy = ldy};

    for (int64_t rb = r0; rb < r1; rb += k->block_rows) {
        const int64_t re = rb + k->block_rows < r1 ? rb + k->block_rows : r1;
        for (int64_t u0 = 0; u0 < nu; u0 += chunk) {
            a.unit = u0;
            a.k = (u0 + chunk < nu ? u0 + chunk : nu) - u0;
            a.accumulate = u0 > 0;
            const unsigned char *wu = wd + (size_t)u0 * w_unit;
            for (int t0 = 0; t0 < n_tok; t0 += T) {
                const int nt = n_tok - t0 < T ? n_tok - t0 : T;
                const unsigned char *xt = xd + (size_t)t0 * a.x_stride + (size_t)u0 * x_unit;
                if (k->pack.fn) {
                    k->pack.fn(xt, a.x_stride, nt, a.k, pack);
                    a.x = pack;
                } else {
                    a.x = xt;
                }
                a.prefetch = t0 == 0;
                row_tiles(nt == 1 ? &k->one : &k->many, &a, rb, re, nt, wu + (size_t)rb * a.w_stride,
                          y + (size_t)t0 * (size_t)ldy);
            }
        }
    }
}

void qc_matmul(const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0,
               int64_t r1) {
    qc_matmul_set(qc_kernels_for(qc_cpu_level()), w, x, act, n_tok, y, ldy, r0, r1);
}

void qc_matmul_level(qc_cpu_t level, const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y,
                     int64_t ldy, int64_t r0, int64_t r1) {
    qc_matmul_set(qc_kernels_for(level), w, x, act, n_tok, y, ldy, r0, r1);
}
