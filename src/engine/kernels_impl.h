/* kernels_impl.h — internal to the kernel files: what one CPU level provides
 * (its micro-kernels, gathered in a qc_kernel_set_t) and the one driver that
 * runs the micro-kernels of any level (qc_matmul_set).
 *
 *   kernels.c         CPU detection and the level choice, weight formats
 *   matmul.c          the matrix-product driver, activation quantization
 *   kernels_scalar.c  the scalar level (plain C): the reference
 *   kernels_avx2.c    AVX2 + FMA + F16C           (built with -mavx2 ...)
 *   kernels_avx512.c  AVX-512 F/BW/VL/DQ + VNNI   (built with -mavx512f ...)
 *   kernels_amx.c     AMX int8 tiles for prefill (-mamx-tile -mamx-int8 ...)
 *   kernels_neon.c    ARM64 NEON, dot product, i8mm (target pragmas)
 *
 * Accuracy contract of every SIMD level against the scalar reference:
 * - float weights (F32/F16/BF16): products and sums in F32; results differ
 *   only by summation order: |y - y_ref| <= ~1e-6 * sum_c |w_c * x_c|.
 * - quantized weights: each block's integer dot is exact; the scaled block
 *   sums are added in another order, and the unsigned-operand correction
 *   (128 * sum(qx) for Q8_0, 8 * sum(qx) for Q4_0) passes through F32 lanes,
 *   so |y - y_ref| <= ~1e-5 * sum_b |d_w d_x| (sum_i |qw_i qx_i| + 128 sum_i |qx_i|).
 *   The K-quants and Q4_1/Q5_1 likewise, with the mins' (offsets') term
 *   sum |dmin_w d_x mn bsum| (|m_w s_x|) added to that magnitude.
 * - activation quantization is bit-exact across levels.
 * Within a level, an output does not depend on the tile it was computed in
 * (each accumulates its units in the same order in every tile shape), so
 * the same row gives the same value alone or batched with other tokens. */
#ifndef QC_KERNELS_IMPL_H
#define QC_KERNELS_IMPL_H

#include "engine/kernels.h"

#include <math.h>
#include <string.h>

/* ==== matrix-product micro-kernels ====
 *
 * qc_matmul (y[t * ldy + r] = W[r] . x[t], rows [r0, r1), tokens [0, n_tok))
 * is one driver for every level (matmul.c). It walks the product as
 *
 *   for each block of block_rows rows of [r0, r1)       (its weights stay in L2)
 *     for each chunk of the reduction                    (the whole row unless
 *                                                         the level packs)
 *       for each token tile of many.toks tokens          (a tile of a single
 *                                                         token uses `one`)
 *         pack the tile's activations                    (levels with pack)
 *         every `rows` rows: tile() — a full rows x toks tile; what is left
 *         (fewer rows, or fewer tokens in the last tile): edge(nr, nt)
 *
 * and asks the first token tile of each row block to prefetch: it streams the
 * weights from memory, the later tiles find them in L2. Threads are not the
 * driver's business: callers split [r0, r1) over the pool (model.c).
 *
 * A level supplies, per weight type, a qc_mm_kernel_t: its tile shapes (R
 * rows x T tokens, chosen per level and type: register budget, whether decode
 * wants one stream or several), the activation format its tiles read, and
 * optionally a pack function that rearranges a token tile's activations
 * (for the chunk being multiplied) into a buffer the tiles then read instead.
 * A new level (AMX tiles, ARM NEON / dotprod / i8mm) is a file of such
 * micro-kernels and one qc_kernel_set_t: no other driver.
 *
 * Units: the reduction runs over units, one column of a float weight type,
 * one block of a quantized one (its qc_qtype_t's block: 32 weights, or 256
 * for the K-quants' super-blocks). Chunks and the tile arguments count units.
 *
 * Weight layout: tiles are given the tile's first row and the chunk's first
 * unit both as indexes (row, unit, and the tensor m) and as a pointer w into
 * the tensor in its file layout (row r at data + r * w_stride, unit u at
 * u * the type's block bytes). Every tile reads w. A level that
 * rearranges weights at load does it with panels (qc_panel_ops_t below),
 * which bypass the tiles: AVX-512's for Q8_0, Q4_0, Q5_0, Q4_K, Q6_K. */

/* Activation formats (what qc_act_quantize writes for the tiles), as ggml
 * pairs them with each weight type: Q8_0 for Q8_0/Q4_0/Q5_0 (in the
 * kernels' own qc_block_q8_act, which carries the same d and quants), Q8_1
 * for Q4_1/Q5_1, Q8_K for the K-quants. Every level reads the same format
 * for a type, so one quantization serves them all. */
typedef enum {
    QC_ACT_F32 = 0,  /* the F32 rows of x themselves, nothing to quantize */
    QC_ACT_Q8 = 1,   /* qc_block_q8_act per 32 columns (qc_act_row_fn) */
    QC_ACT_Q8_1 = 2, /* ggml's block_q8_1 per 32 columns (quants.h) */
    QC_ACT_Q8_K = 3  /* ggml's block_q8_K per 256 columns (quants.h) */
} qc_act_fmt_t;

/* What a tile function is told: one tile of rows [row, row + R) and tokens
 * [t0, t0 + T) of the product, over the chunk of units [unit, unit + k). */
typedef struct {
    const qc_tensor_t *m;   /* the weight matrix */
    int64_t row;            /* the tile's first row */
    int64_t unit;           /* the chunk's first unit */
    const unsigned char *w; /* row `row`, unit `unit` of m (file layout) */
    size_t w_stride;        /* bytes from one weight row to the next */
    const void *x;          /* the tile's first token at unit `unit` (in the
                               level's activation format), or the pack */
    size_t x_stride;        /* bytes from one token's activations to the
                               next's; not for packed activations */
    int64_t k;              /* units in the chunk */
    float *y;               /* y[t * ldy + r]: the tile's row r, token t */
    int64_t ldy;
    int accumulate;         /* add to y (a later chunk) instead of storing;
                               only levels that pack have several chunks */
    int prefetch;           /* the first token tile of a row block */
} qc_mm_tile_t;

/* A full R x T tile. */
typedef void (*qc_mm_tile_fn)(const qc_mm_tile_t *a);
/* nr rows x nt tokens, nr <= R, nt <= T, smaller than the full tile: the
 * rows left at the end of a row block, the short last token tile. */
typedef void (*qc_mm_edge_fn)(const qc_mm_tile_t *a, int nr, int nt);
/* Rearranges nt tokens' activations (token t at x + t * x_stride) for
 * k units into pack, which the tiles then read as their x. */
typedef void (*qc_mm_pack_fn)(const void *x, size_t x_stride, int nt, int64_t k, void *pack);

typedef struct {
    int rows, toks;     /* R x T */
    qc_mm_tile_fn tile;
    qc_mm_edge_fn edge; /* NULL when R = T = 1 (never needed) */
} qc_mm_shape_t;

/* The driver's stack buffer for packed activations (fits L1 with the tile's
 * weights; callers' threads need that much stack). */
#define QC_MM_PACK_BYTES 36864

/* How a level packs activations. A chunk of the reduction is as many
 * steps as fit `bytes` for min(n_tok, T) tokens. */
typedef struct {
    qc_mm_pack_fn fn;  /* NULL: the tiles read x in place, one chunk per row */
    int step;          /* units per packed step */
    size_t step_bytes; /* bytes of one token's step */
    size_t bytes;      /* <= QC_MM_PACK_BYTES */
} qc_mm_pack_t;

/* No packing: the tiles read x in place. */
#define QC_MM_NO_PACK {NULL, 0, 0, 0}

/* One level's matrix product for one weight type. */
typedef struct {
    qc_act_fmt_t act;   /* what the tiles read as x (before packing) */
    int block_rows;     /* rows per L2 block, a multiple of the shapes' rows */
    qc_mm_shape_t many; /* token tiles of 2 or more tokens; T = many.toks */
    qc_mm_shape_t one;  /* a single token (decode): toks = 1 */
    qc_mm_pack_t pack;
} qc_mm_kernel_t;

/* A weight type's qc_mm_kernel_t `name` from a level's tile template
 * TILE(kind, R, T, args), whose R and T are compile-time (so every shape is
 * specialized): full tiles of R x T (many) and R1 x 1 (one), the edge
 * QC_MM_EDGE_FN makes, then the qc_mm_pack_t initializer (QC_MM_NO_PACK: none). */
#define QC_MM_KERNEL(name, TILE, kind, act_fmt, block_rows, R, T, R1, ...)                                 \
    static void name##_many(const qc_mm_tile_t *a) { TILE(kind, R, T, a); }                                 \
    static void name##_one(const qc_mm_tile_t *a) { TILE(kind, R1, 1, a); }                                 \
    QC_MM_EDGE_FN(name##_edge, TILE, kind, R, T)                                                            \
    static const qc_mm_kernel_t name = {act_fmt, block_rows, {R, T, name##_many, name##_edge},              \
                                        {R1, 1, name##_one, name##_edge}, __VA_ARGS__}

/* The edge function QC_MM_KERNEL gives a level: nr == R rows as one tile of
 * nt tokens, otherwise nr single rows of nt tokens (the shapes the SIMD
 * levels have always used). T <= 4. */
#define QC_MM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define QC_MM_EDGE_FN(name, TILE, kind, R, T)                                                                \
    static void name(const qc_mm_tile_t *a, int nr, int nt) {                                               \
        _Static_assert((T) >= 1 && (T) <= 4, "edge shapes up to 4 tokens");                                 \
        if (nr == (R)) {                                                                                    \
            switch (nt) {                                                                                   \
            case 4: TILE(kind, R, QC_MM_MIN(4, T), a); break;                                               \
            case 3: TILE(kind, R, QC_MM_MIN(3, T), a); break;                                               \
            case 2: TILE(kind, R, QC_MM_MIN(2, T), a); break;                                               \
            default: TILE(kind, R, 1, a); break;                                                            \
            }                                                                                               \
            return;                                                                                         \
        }                                                                                                   \
        qc_mm_tile_t b = *a;                                                                                \
        for (int i = 0; i < nr; i++, b.row++, b.w += b.w_stride, b.y++) {                                   \
            switch (nt) {                                                                                   \
            case 4: TILE(kind, 1, QC_MM_MIN(4, T), &b); break;                                              \
            case 3: TILE(kind, 1, QC_MM_MIN(3, T), &b); break;                                              \
            case 2: TILE(kind, 1, QC_MM_MIN(2, T), &b); break;                                              \
            default: TILE(kind, 1, 1, &b); break;                                                           \
            }                                                                                               \
        }                                                                                                   \
    }

/* ==== one level's kernels ==== */

/* Same contract as qc_dot_f32. */
typedef float (*qc_dot_fn)(const float *a, const float *b, int64_t n);
/* Quantizes one activation row of cols floats (cols % 32 == 0) into cols/32
 * blocks (QC_ACT_Q8), as llama.cpp's x86 builds quantize activations to
 * Q8_0: d = amax / 127 (kept as a half), id = amax ? 127 / amax : 0,
 * qs = x * id rounded to nearest even, sum = sum of qs. Bit-exact with the
 * scalar one at every level. */
typedef void (*qc_act_row_fn)(const float *x, int64_t cols, qc_block_q8_act *out);
/* Same contract as qc_attend. */
typedef void (*qc_attend_fn)(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                             float *scores, float *o);

/* Weight types a level can describe (above every qc_dtype_t value). */
#define QC_MM_TYPES 16

/* Weight panels: a level may rearrange a layer matrix once at load into a
 * layout of its own (16 rows interleaved per block, say, so that one
 * register holds a block's quants of 16 rows and the products land as 16
 * outputs in one register: no horizontal sums), when the matrix's rows are
 * a multiple of `rows`. A matrix with a panel is multiplied and
 * dequantized through these functions only, whatever level is asked
 * (qc_matmul_set, qc_dequantize_row); its results follow the kernels'
 * accuracy contract, and an output does not depend on how many tokens or
 * rows were computed with it. weights.c builds the panels. */
typedef struct qc_panel_ops {
    int rows; /* rows per panel */
    /* bytes of t's panels; 0: this level has no panel for t */
    size_t (*bytes)(const qc_tensor_t *t);
    /* writes panels [p0, p1) of t (rows [p0 * rows, p1 * rows)) into out,
     * the start of the whole panel buffer, from t->data */
    void (*make)(const qc_tensor_t *t, void *out, int64_t p0, int64_t p1);
    /* qc_matmul's contract, reading t->panel and act (the activation format
     * of t's type); rows [r0, r1) may start and end anywhere */
    void (*matmul)(const qc_tensor_t *t, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0,
                   int64_t r1);
    /* row r of t as F32, exactly as qc_dequantize_row gives it from data */
    void (*row)(const qc_tensor_t *t, int64_t r, float *dst);
} qc_panel_ops_t;

typedef struct {
    const qc_mm_kernel_t *matmul[QC_MM_TYPES]; /* by weight type; NULL: none
                                                  the driver then takes the
                                                  level below's: AVX-512's
                                                  AVX2's, the others scalar's */
    qc_dot_fn dot_f32;
    qc_act_row_fn act_row;
    qc_attend_fn attend;
    const qc_panel_ops_t *panel; /* NULL: the level multiplies the file layout only */
    /* a row of cols (a multiple of 256) as Q8_K blocks, the bytes of ggml's
     * quantize_row_q8_K_ref (quants.c's); NULL: that one */
    void (*act_row_k)(const float *x, int64_t cols, void *out);
    /* qc_f32_to_f16_row's contract; NULL: qc_f32_to_f16 one by one */
    void (*f16_row)(const float *x, uint16_t *y, int64_t n);
    /* qc_attend_block's contract; NULL: attend query by query */
    void (*attend_block)(const float *q, int64_t ldq, int nq, const qc_kv_rows_t *r, int n0, int hd, float scale,
                         int f16_acc, float *scores, float *o, int64_t ldo);
    /* qc_swiglu_row's contract; NULL: qc_silu one by one */
    void (*swiglu)(const float *g, const float *u, float *out, int64_t n);
} qc_kernel_set_t;

/* The matmul entries of a level whose kernels for the types every level
 * has are named mm_f32, mm_f16, mm_bf16, mm_q8_0, mm_q4_0. */
#define QC_MM_COMMON_TYPES                                                                                   \
    [QC_DTYPE_F32] = &mm_f32, [QC_DTYPE_F16] = &mm_f16, [QC_DTYPE_BF16] = &mm_bf16, [QC_DTYPE_Q8_0] = &mm_q8_0, \
    [QC_DTYPE_Q4_0] = &mm_q4_0

/* Each level's set; the SIMD ones are NULL when their file was built
 * without its instruction set (the Makefile's ISA_FLAGS), and the level is
 * then never selected. */
extern const qc_kernel_set_t *const qc_level_scalar, *const qc_level_avx2, *const qc_level_avx512;
/* AVX-512's set with AMX panel products (kernels_amx.c), complete once
 * qc_amx_init has run: kernels.c calls it when it picks the level. */
extern const qc_kernel_set_t *const qc_level_amx;
void qc_amx_init(void);
extern const qc_kernel_set_t *const qc_level_neon, *const qc_level_dotprod, *const qc_level_i8mm;

/* The scalar reference pieces the tests and the SIMD levels' fallbacks call. */
void qc_act_row_scalar(const float *x, int64_t cols, qc_block_q8_act *out);
void qc_attend_scalar(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc,
                      float *scores, float *o);

/* The kernel set of a level, clamped to what this CPU (and build) supports. */
const qc_kernel_set_t *qc_kernels_for(qc_cpu_t level);
/* The best level this CPU and build support, whatever QCARE_CPU says. */
qc_cpu_t qc_cpu_max(void);
/* Whether this build has the level's kernels (those of the architecture it
 * was built for), and whether this CPU can also run them. */
int qc_cpu_built(qc_cpu_t level);
int qc_cpu_has(qc_cpu_t level);

/* qc_matmul with the micro-kernels of set k: the driver. */
void qc_matmul_set(const qc_kernel_set_t *k, const qc_tensor_t *w, const float *x, const void *act, int n_tok,
                   float *y, int64_t ldy, int64_t r0, int64_t r1);

/* ==== helpers shared by the levels ==== */

/* exp(x) for x <= 0 (a softmax's shifted scores): x = n ln2 + r, |r| <=
 * ln2 / 2, n found by adding QC_EXP_MAGIC (1.5 * 2^23: the sum rounds to
 * an integer, held in its low bits, from which 2^n is built); exp(r) by
 * Cephes' expf polynomial; 0 below -87 (where 2^n would leave the normal
 * floats), NaN kept. Within ~2 ulp of expf. One multiply or add per
 * statement, no fused multiply-add: the SIMD levels (attend_simd.h) do
 * the same operations lane by lane, so their results are bit-identical. */
#define QC_EXP_MAGIC 12582912.0f
#define QC_EXP_LOG2E 1.44269504088896341f
#define QC_EXP_C1 0.693359375f /* ln2 = C1 - C2, C1 exact in 9 bits */
#define QC_EXP_C2 (-2.12194440e-4f)
#define QC_EXP_P0 1.9875691500e-4f
#define QC_EXP_P1 1.3981999507e-3f
#define QC_EXP_P2 8.3334519073e-3f
#define QC_EXP_P3 4.1665795894e-2f
#define QC_EXP_P4 1.6666665459e-1f
#define QC_EXP_P5 5.0000001201e-1f
#define QC_EXP_MIN (-87.0f)
static inline float qc_exp_neg(float x) {
    float t = x * QC_EXP_LOG2E;
    t = t + QC_EXP_MAGIC;
    float n = t - QC_EXP_MAGIC, a = n * QC_EXP_C1, b = n * QC_EXP_C2;
    float r = x - a;
    r = r - b;
    float p = QC_EXP_P0 * r;
    p = p + QC_EXP_P1;
    p = p * r;
    p = p + QC_EXP_P2;
    p = p * r;
    p = p + QC_EXP_P3;
    p = p * r;
    p = p + QC_EXP_P4;
    p = p * r;
    p = p + QC_EXP_P5;
    float r2 = r * r;
    p = p * r2;
    p = p + r;
    p = p + 1.0f;
    uint32_t tb, e;
    memcpy(&tb, &t, 4);
    e = (tb - 0x4B400000u + 127u) << 23;
    float s;
    memcpy(&s, &e, 4);
    float y = p * s;
    return x < QC_EXP_MIN ? 0.0f : y;
}

/* silu(x) = x / (1 + e^-x) with qc_exp_neg: e = e^-|x|, then x / (1 + e)
 * for x >= 0 and x e / (1 + e) below (the same value, without e^|x|'s
 * overflow): one division, the operations in this order at every level
 * (attend_simd.h's v_silu), so the levels agree bit for bit. Within a few
 * ulp of libm's x / (1 + expf(-x)), which it replaces (8% of a prefill,
 * one element at a time). */
static inline float qc_silu(float x) {
    const float e = qc_exp_neg(-fabsf(x)), d = 1.0f + e;
    const float num = x >= 0 ? x : x * e;
    return num / d;
}

/* The F32 softmax's sum of its n weights, in double: eight partial sums
 * (weight i into partial i % 8, in order), then (p0 + p4) + (p2 + p6) and
 * (p1 + p5) + (p3 + p7) added. Only additions, the same at every level
 * (each compiles it to its own vectors); one sum in order was a chain of
 * dependent additions, 3% of a prefill. */
static inline double qc_softmax_sum(const float *w, int n) {
    double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) p[j] += w[i + j];
    for (int j = 0; i + j < n; j++) p[j] += w[i + j];
    return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

/* The F32 attention's softmax: scores[i] = exp(scores[i] - mx) in place
 * (mx their maximum); returns 1 / their sum (qc_softmax_sum). */
static inline float qc_softmax_exp(float *scores, int n, float mx) {
    for (int i = 0; i < n; i++) scores[i] = qc_exp_neg(scores[i] - mx);
    return (float)(1.0 / qc_softmax_sum(scores, n));
}

static inline const uint16_t *qc_k_row(const qc_kv_rows_t *r, int i) {
    return (i < r->n_pre ? r->kp : r->kc) + (size_t)i * (size_t)r->stride;
}
static inline const uint16_t *qc_v_row(const qc_kv_rows_t *r, int i) {
    return (i < r->n_pre ? r->vp : r->vc) + (size_t)i * (size_t)r->stride;
}

/* Bytes of one weight block (Q8_0 / Q4_0). */
#define QC_Q8_0_BYTES 34
#define QC_Q4_0_BYTES 18

static inline uint16_t qc_load_u16(const void *p) {
    const unsigned char *b = (const unsigned char *)p;
    return (uint16_t)(b[0] | b[1] << 8);
}

/* v within [-127, 127], where a finite block's scaled values already are. A
 * non-finite value (NaN, or inf times the scale 0 of a block holding inf; a
 * hostile model's weights produce them, in the weights and then in the
 * activations) gives -127 instead of an undefined float-to-int conversion.
 * The SIMD activation quantizers clamp the same way (their max returns its
 * second operand for NaN), so an activation block's sum stays the sum of
 * its stored quants at every level. */
static inline float clamp127(float v) { return v >= -127.0f ? (v <= 127.0f ? v : 127.0f) : -127.0f; }

#endif
