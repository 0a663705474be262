/* kernels.h — weight formats and the matrix products of the forward pass,
 * with one implementation per CPU level (scalar reference, AVX2+FMA,
 * AVX-512 with VNNI/BF16; ARM64 NEON, dot product, i8mm), chosen once at
 * run time.
 *
 * Quantized formats use ggml's block layouts, so GGUF tensors are used in
 * place: Q8_0 and Q4_0 here (32 weights per block, an IEEE half scale first),
 *   Q8_0: w = d * qs[i],            qs signed bytes in [-127, 127]
 *   Q4_0: w = d * (nibble_i - 8),   qs[j] holds element j (low nibble) and
 *                                   element j + 16 (high nibble)
 * and every other GGUF type in quants.h (Q4_1, Q5_0, Q5_1, Q2_K..Q6_K).
 * For quantized weights the activations are quantized to 8 bits too, as
 * llama.cpp does for that type (Q8_0, Q8_1 or Q8_K blocks), so the inner
 * products run on integers. */
#ifndef QC_KERNELS_H
#define QC_KERNELS_H

#include "engine/engine.h"

#define QC_QK 32 /* weights per block */

typedef struct {
    uint16_t d;          /* scale, IEEE half */
    int8_t qs[QC_QK];
} qc_block_q8_0;
_Static_assert(sizeof(qc_block_q8_0) == 34, "ggml block_q8_0 layout");

typedef struct {
    uint16_t d;             /* scale, IEEE half */
    uint8_t qs[QC_QK / 2];  /* nibbles: element j low, element j + 16 high */
} qc_block_q4_0;
_Static_assert(sizeof(qc_block_q4_0) == 18, "ggml block_q4_0 layout");

/* ggml's k-quant super-blocks of QC_QK_K weights (GGUF types Q4_K, Q6_K;
 * the others are in quants.h). Every field is bytes, so a block may sit at
 * any address in a mapping. */
#define QC_QK_K 256

typedef struct {
    uint8_t d[2], dmin[2];   /* IEEE half: scale of the scales, scale of the mins */
    uint8_t scales[12];      /* 8 sub-blocks' 6-bit scales and mins (see scale_min_k4) */
    uint8_t qs[QC_QK_K / 2]; /* 4-bit quants */
} qc_block_q4_K;
_Static_assert(sizeof(qc_block_q4_K) == 144, "ggml block_q4_K layout");

typedef struct {
    uint8_t ql[QC_QK_K / 2];     /* low 4 bits of the quants */
    uint8_t qh[QC_QK_K / 4];     /* high 2 bits */
    int8_t scales[QC_QK_K / 16]; /* per 16 weights, 8-bit */
    uint8_t d[2];                /* IEEE half super-block scale */
} qc_block_q6_K;
_Static_assert(sizeof(qc_block_q6_K) == 210, "ggml block_q6_K layout");

/* One block of quantized activations (the kernels' own format, not ggml's:
 * an F32 scale and the sum of the quants, which the integer kernels need to
 * correct for unsigned operands). */
typedef struct {
    float d;             /* scale */
    int32_t sum;         /* sum of qs */
    int8_t qs[QC_QK];
} qc_block_q8_act;
_Static_assert(sizeof(qc_block_q8_act) == 40, "activation block layout");

/* ==== CPU levels ==== */

/* Each architecture's levels in increasing order (a CPU with one has the
 * ones below it): x86-64 AVX2 < AVX-512 < AMX (AVX-512's kernels, with
 * AMX int8 tiles for prefill); ARM64 NEON < dot product < i8mm. */
typedef enum {
    QC_CPU_SCALAR = 0,
    QC_CPU_AVX2 = 1,
    QC_CPU_AVX512 = 2,
    QC_CPU_AMX = 3,
    QC_CPU_NEON = 4,
    QC_CPU_DOTPROD = 5,
    QC_CPU_I8MM = 6,
    QC_CPU_LEVELS = 7 /* how many */
} qc_cpu_t;

/* The best level this CPU supports, or the one QCARE_CPU=scalar|avx2|avx512|amx
 * (x86-64) or scalar|neon|dotprod|i8mm (ARM64) asks for (never above what
 * the CPU supports: qc_cpu_request_error says when it asked for more).
 * Decided once per process. */
qc_cpu_t qc_cpu_level(void);
const char *qc_cpu_name(qc_cpu_t level);
/* NULL when QCARE_CPU is unset, empty or names a level this CPU and build
 * have; otherwise a message saying what it asked for and what this CPU's
 * best level is (static storage). qc_model_load refuses to load then. */
const char *qc_cpu_request_error(void);

/* ==== weight formats ==== */

/* Bytes of one row of n elements of type t (n a multiple of 32 for the
 * legacy block types, of 256 for the K-quants); 0 when n does not fit. */
size_t qc_row_bytes(qc_dtype_t t, int64_t n);

/* Half-precision conversion, round to nearest even (as ggml's). */
uint16_t qc_f32_to_f16(float f);
/* y[i] = qc_f32_to_f16(x[i]) for i < n, bit for bit (F16C where the level
 * has it, NaN made qc_f32_to_f16's 0x7e00 with the sign). */
void qc_f32_to_f16_row(const float *x, uint16_t *y, int64_t n);

/* out[i] = silu(g[i]) * u[i] for i < n (SwiGLU), silu qc_silu's
 * (kernels_impl.h), the same bits at every level; out may be g. */
void qc_swiglu_row(const float *g, const float *u, float *out, int64_t n);

/* Quantizes n floats (n % 32 == 0) to Q8_0 or Q4_0 blocks, bit-exactly as
 * ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref do. */
void qc_quantize_row(qc_dtype_t t, const float *src, void *dst, int64_t n);

/* Row `row` of w, converted to n = w->cols floats (any dtype). */
void qc_dequantize_row(const qc_tensor_t *w, int64_t row, float *dst);

/* ==== matrix products ==== */

/* Bytes of the activation buffer the kernels for weight type t need for
 * n_tok rows of cols values (0 for F32/F16/BF16 weights, which read the F32
 * activations directly, and when cols does not fill the format's blocks). */
size_t qc_act_bytes(qc_dtype_t t, int n_tok, int64_t cols);

/* Weight types whose kernels read different activation formats need their
 * own quantized copy of x: one of QC_ACT_SLOTS slots, each of
 * qc_act_slot_bytes (enough for any format). qc_act_slot: the slot of type
 * t (types sharing a format share it), -1 for the float types. */
#define QC_ACT_SLOTS 3
int qc_act_slot(qc_dtype_t t);
size_t qc_act_slot_bytes(int n_tok, int64_t cols);

/* Quantizes activation rows [t0, t1) of x ([n_tok][cols] F32) into act (laid
 * out [n_tok][cols / block] blocks of the format of type t's kernels) for
 * weights of type t; nothing for float weight types. */
void qc_act_quantize(qc_dtype_t t, const float *x, int64_t cols, int t0, int t1, void *act);

/* y[t * ldy + r] = sum_c W[r][c] * x[t][c] for r in [r0, r1), t < n_tok.
 * x: [n_tok][w->cols] F32; act: what qc_act_quantize made of x (for the
 * quantized types). Uses the qc_cpu_level() implementation. Rows are
 * independent, so threads call it on disjoint [r0, r1). */
void qc_matmul(const qc_tensor_t *w, const float *x, const void *act, int n_tok, float *y,
               int64_t ldy, int64_t r0, int64_t r1);

/* The same with a chosen level (for tests comparing each SIMD level with the
 * scalar reference); a level above the CPU's falls back to the CPU's. */
void qc_matmul_level(qc_cpu_t level, const qc_tensor_t *w, const float *x, const void *act,
                     int n_tok, float *y, int64_t ldy, int64_t r0, int64_t r1);

/* Whether some level multiplies weights of type t (the scalar level has
 * every type a GGUF may hold). */
int qc_matmul_has(qc_dtype_t t);

/* F32 dot product of n values at the chosen level (attention uses it). */
float qc_dot_f32(const float *a, const float *b, int64_t n);

/* ==== attention ==== */

/* x rounded to the nearest IEEE half value (ties to even), kept as a float:
 * what storing it as a half and reading it back gives (F16C's conversion,
 * ggml's qc_f32_to_f16), including half subnormals and +-inf beyond 65504.
 * The small-batch attention keeps its sums at half precision this way, as
 * llama.cpp's flash attention does. */
static inline float qc_round_f16(float x) {
    union { float f; uint32_t u; } v = {x};
    const uint32_t a = v.u & 0x7fffffffu, sign = v.u & 0x80000000u;
    /* |x| >= 2^-14, a normal half: keep 10 mantissa bits (ties to even) */
    union { float f; uint32_t u; } n = {.u = (v.u + 0xfffu + ((v.u >> 13) & 1u)) & ~0x1fffu};
    /* smaller, a subnormal half: a multiple of 2^-24; adding 0.5 to |x|
     * leaves exactly that precision (ties to even); the sign comes back */
    union { float f; uint32_t u; } sub = {.f = ((v.f < 0 ? -v.f : v.f) + 0.5f) - 0.5f};
    sub.u |= sign;
    union { float f; uint32_t u; } inf = {.u = sign | 0x7f800000u};
    return a >= 0x477ff000u ? inf.f : a >= 0x38800000u ? n.f : sub.f; /* 65520 and up round to inf */
}

/* The cached K/V rows one attention head reads, IEEE halves (the KV cache
 * is F16, as llama.cpp's default): rows [0, n_pre) at kp/vp (a shared
 * prefix's cache), the others at kc/vc; row i at base + i * stride. */
typedef struct {
    const uint16_t *kp, *vp, *kc, *vc;
    int n_pre;
    int64_t stride;
} qc_kv_rows_t;

/* One query row q (hd <= 512 values, roped) against rows [0, n) of r, with
 * scale 1/sqrt(hd): softmax(q . k * scale) . v into o (hd floats).
 * f16_acc: llama.cpp's CPU flash attention for small batches (q rounded to
 * half; online softmax; the weighted sum of V kept in half precision, every
 * update rounded; its exponentials qc_exp_neg). Otherwise a plain F32
 * softmax. scores: n floats of scratch (both). At the chosen level; each
 * level uses its own qc_dot_f32, and the rest is bit-identical across
 * levels. */
void qc_attend(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc, float *scores,
               float *o);

/* Queries per qc_attend_block call at the most. */
#define QC_ATT_QB 8

/* qc_attend for nq <= QC_ATT_QB consecutive queries of one head: query i
 * (at q + i * ldq) sees rows [0, n0 + i) of r (causal), its result at
 * o + i * ldo, bit for bit what qc_attend gives it alone with the same
 * f16_acc (a level may share the converted K and V rows among the
 * queries). scores: nq * (n0 + nq - 1) floats of scratch. */
void qc_attend_block(const float *q, int64_t ldq, int nq, const qc_kv_rows_t *r, int n0, int hd, float scale,
                     int f16_acc, float *scores, float *o, int64_t ldo);

#endif
