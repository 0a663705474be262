/* matmul.c — the one matrix-product driver: row blocks x reduction chunks x
 * token tiles, prefetch on the first token tile of each row block, calling
 * the chosen level's micro-kernels (kernels_impl.h describes them); and the
 * activation quantization the quantized tiles read.
 *
 * Compiled for the architecture's baseline (x86-64, ARMv8.0): the
 * instructions beyond it are all in the levels' files, reached through
 * their function pointers. */
#include "engine/kernels_impl.h"
#include "engine/quants.h"

#include <math.h>
#include <string.h>

/* ==== activations ==== */

/* Columns per unit of the reduction: one block of a quantized type (32, or
 * 256 for a K-quant), one column of a float one. */
static int64_t unit_cols(qc_dtype_t t) {
    const qc_qtype_t *q = qc_qtype(t);
    return q ? q->block : 1;
}

/* Columns per block of an activation format (1 for F32), and its bytes. */
static int64_t act_block_cols(qc_act_fmt_t f) { return f == QC_ACT_F32 ? 1 : f == QC_ACT_Q8_K ? QC_QK_K : QC_QK; }
static size_t act_block_bytes(qc_act_fmt_t f) {
    switch (f) {
    case QC_ACT_Q8: return sizeof(qc_block_q8_act);
    case QC_ACT_Q8_1: return sizeof(qc_block_q8_1);
    case QC_ACT_Q8_K: return sizeof(qc_block_q8_K);
    default: return sizeof(float);
    }
}

/* Bytes one token's activations take per unit of `unit` columns. */
static size_t act_unit_bytes(qc_act_fmt_t f, int64_t unit) {
    return (size_t)(unit / act_block_cols(f)) * act_block_bytes(f);
}

/* The level a type falls back to when level k has no kernels for it: AMX
 * to AVX-512, AVX-512 to AVX2 (every such CPU has the level below), the
 * others to scalar. */
static const qc_kernel_set_t *level_below(const qc_kernel_set_t *k) {
    if (k == qc_level_scalar) return NULL;
    if (k == qc_level_amx && qc_level_avx512) return qc_level_avx512;
    return k == qc_level_avx512 && qc_level_avx2 ? qc_level_avx2 : qc_level_scalar;
}

/* Set k's kernels for weights of type t, or those of the first level below
 * it that has them (every level reads the same activation format for a
 * type). NULL: none. */
static const qc_mm_kernel_t *kernel_for(const qc_kernel_set_t *k, qc_dtype_t t) {
    if ((unsigned)t >= QC_MM_TYPES) return NULL;
    for (; k; k = level_below(k))
        if (k->matmul[t]) return k->matmul[t];
    return NULL;
}

/* The activation format the chosen level's kernels read for type t. */
static qc_act_fmt_t act_fmt(qc_dtype_t t) {
    const qc_mm_kernel_t *k = kernel_for(qc_kernels_for(qc_cpu_level()), t);
    return k ? k->act : QC_ACT_F32;
}

size_t qc_act_bytes(qc_dtype_t t, int n_tok, int64_t cols) {
    const qc_act_fmt_t f = act_fmt(t);
    if (f == QC_ACT_F32 || n_tok <= 0 || cols <= 0 || cols % act_block_cols(f)) return 0;
    return (size_t)n_tok * act_unit_bytes(f, cols);
}

int qc_act_slot(qc_dtype_t t) { return (int)act_fmt(t) - 1; }

size_t qc_act_slot_bytes(int n_tok, int64_t cols) {
    if (n_tok <= 0 || cols <= 0) return 0;
    /* the largest format per 32 columns is qc_block_q8_act's 40 bytes
     * (Q8_K: 36.5, Q8_1: 36); 64-byte multiples keep every slot aligned */
    const size_t b = (size_t)n_tok * (size_t)((cols + QC_QK - 1) / QC_QK) * sizeof(qc_block_q8_act);
    return (b + 63) & ~(size_t)63;
}

/* llama.cpp's x86 quantize_row_q8_1 (its AVX2 code): Q8_0's d, id and
 * rounding (see qc_act_row_scalar), and s = d * sum(qs) with the F32 d, as
 * a half. One implementation for every level. */
static void act_row_q8_1(const float *x, int64_t cols, qc_block_q8_1 *out) {
    qc_block_q8_act a;
    for (int64_t b = 0; b < cols / QC_QK; b++, x += QC_QK) {
        qc_act_row_scalar(x, QC_QK, &a);
        float amax = 0.0f;
        for (int j = 0; j < QC_QK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        const uint16_t d = qc_f32_to_f16(amax / 127.0f), s = qc_f32_to_f16(amax / 127.0f * (float)a.sum);
        memcpy(out[b].d, &d, 2);
        memcpy(out[b].s, &s, 2);
        memcpy(out[b].qs, a.qs, QC_QK);
    }
}

void qc_act_quantize(qc_dtype_t t, const float *x, int64_t cols, int t0, int t1, void *act) {
    const qc_kernel_set_t *ks = qc_kernels_for(qc_cpu_level());
    const qc_act_fmt_t f = act_fmt(t);
    if (f == QC_ACT_F32 || cols <= 0 || cols % act_block_cols(f)) return;
    const size_t row = act_unit_bytes(f, cols);
    for (int i = t0; i < t1; i++) {
        const float *xi = x + (size_t)i * (size_t)cols;
        void *ai = (unsigned char *)act + (size_t)i * row;
        if (f == QC_ACT_Q8) ks->act_row(xi, cols, ai);
        else if (f == QC_ACT_Q8_1) act_row_q8_1(xi, cols, ai);
        else if (ks->act_row_k) ks->act_row_k(xi, cols, ai);
        else qc_qtype(QC_DTYPE_Q8_K)->quantize(xi, ai, cols); /* llama.cpp's x86 builds use the reference one */
    }
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
    if (w->panel) { /* the layout of the level that made it, whatever ks is */
        if (n_tok > 0 && r0 < r1) w->panel_ops->matmul(w, act, n_tok, y, ldy, r0, r1);
        return;
    }
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

int qc_matmul_has(qc_dtype_t t) { return kernel_for(qc_level_scalar, t) != NULL; }

void qc_matmul(const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0,
               int64_t r1) {
    qc_matmul_set(qc_kernels_for(qc_cpu_level()), w, x, act, n_tok, y, ldy, r0, r1);
}

void qc_matmul_level(qc_cpu_t level, const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y,
                     int64_t ldy, int64_t r0, int64_t r1) {
    qc_matmul_set(qc_kernels_for(level), w, x, act, n_tok, y, ldy, r0, r1);
}
