/* quants.c — ggml's block formats: row dequantization, the activation
 * quantizers (bit-exact with ggml's quantize_row_q8_K_ref / q8_0_ref /
 * q8_1_ref) and the scalar dot products of a weight row with a quantized
 * activation row (ggml's generic vec_dot code: the same integers, the same
 * float operations in the same order), behind one table (quants.h).
 *
 * Each format is first unpacked block by block into plain integers (the
 * quants exactly as ggml's vec_dot uses them, and the sub-block scales and
 * mins); dequantization and the dot product then share one loop per family
 * (32-weight legacy blocks, 256-weight K-quant super-blocks). Every element's
 * float arithmetic is ggml's, so the results are too.
 *
 * Compiled for baseline x86-64 and without FMA contraction (ISO C mode), as
 * the reference must be. */
#include "engine/quants.h"

#include "engine/kernels_impl.h"

#include <math.h>
#include <string.h>

static inline float half_at(const void *p) { return qc_f16_to_f32(qc_load_u16(p)); }

static inline void put_half(unsigned char *p, float f) {
    const uint16_t h = qc_f32_to_f16(f);
    p[0] = (unsigned char)(h & 0xff);
    p[1] = (unsigned char)(h >> 8);
}

static inline uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ==== legacy formats: 32 weights a block ==== */

/* One block unpacked: the integer quants as the dot product multiplies them
 * (offset already applied for Q4_0/Q5_0), the scale, and the offset (Q4_1/Q5_1). */
typedef struct {
    int q[QC_QK];
    float d, m;
} legacy_blk_t;

typedef struct {
    void (*unpack)(const unsigned char *x, legacy_blk_t *b);
    int bytes;      /* of one block */
    int with_min;   /* w = d * q + m, and the activations are Q8_1 (their s carries the sum) */
    int sumi_first; /* ggml's Q4_0 vec_dot scales as (sumi * d_w) * d_a; the others as (d_w * d_a) * sumi */
} legacy_t;

static void unpack_q8_0(const unsigned char *x, legacy_blk_t *b) {
    b->d = half_at(x);
    for (int j = 0; j < QC_QK; j++) b->q[j] = (int8_t)x[2 + j];
}

static void unpack_q4_0(const unsigned char *x, legacy_blk_t *b) {
    b->d = half_at(x);
    for (int j = 0; j < QC_QK / 2; j++) {
        b->q[j] = (x[2 + j] & 0x0F) - 8;
        b->q[j + QC_QK / 2] = (x[2 + j] >> 4) - 8;
    }
}

static void unpack_q4_1(const unsigned char *x, legacy_blk_t *b) {
    const qc_block_q4_1 *k = (const qc_block_q4_1 *)x; /* byte fields: any alignment */
    b->d = half_at(k->d);
    b->m = half_at(k->m);
    for (int j = 0; j < QC_QK / 2; j++) {
        b->q[j] = k->qs[j] & 0x0F;
        b->q[j + QC_QK / 2] = k->qs[j] >> 4;
    }
}

/* Q5_0/Q5_1: the 5th bit of element j is bit j of qh (little-endian). */
static void unpack_5bit(const uint8_t *qh4, const uint8_t *qs, int offset, int *q) {
    const uint32_t qh = load_u32(qh4);
    for (int j = 0; j < QC_QK / 2; j++) {
        q[j] = ((qs[j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10)) - offset;
        q[j + QC_QK / 2] = ((qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10)) - offset;
    }
}

static void unpack_q5_0(const unsigned char *x, legacy_blk_t *b) {
    const qc_block_q5_0 *k = (const qc_block_q5_0 *)x;
    b->d = half_at(k->d);
    unpack_5bit(k->qh, k->qs, 16, b->q);
}

static void unpack_q5_1(const unsigned char *x, legacy_blk_t *b) {
    const qc_block_q5_1 *k = (const qc_block_q5_1 *)x;
    b->d = half_at(k->d);
    b->m = half_at(k->m);
    unpack_5bit(k->qh, k->qs, 0, b->q);
}

static const legacy_t L_Q8_0 = {unpack_q8_0, QC_Q8_0_BYTES, 0, 0};
static const legacy_t L_Q4_0 = {unpack_q4_0, QC_Q4_0_BYTES, 0, 1};
static const legacy_t L_Q4_1 = {unpack_q4_1, sizeof(qc_block_q4_1), 1, 0};
static const legacy_t L_Q5_0 = {unpack_q5_0, sizeof(qc_block_q5_0), 0, 0};
static const legacy_t L_Q5_1 = {unpack_q5_1, sizeof(qc_block_q5_1), 1, 0};

/* ggml's dequantize_row_q{4,5,8}_{0,1}: x0 * d (+ m). */
static void dequant_legacy(const legacy_t *t, const void *vx, float *y, int64_t n) {
    const unsigned char *x = vx;
    legacy_blk_t b;
    for (int64_t i = 0; i < n / QC_QK; i++, x += t->bytes, y += QC_QK) {
        t->unpack(x, &b);
        for (int j = 0; j < QC_QK; j++) y[j] = t->with_min ? b.q[j] * b.d + b.m : b.q[j] * b.d;
    }
}

/* ggml's ggml_vec_dot_q{4,5,8}_{0,1}_q8_{0,1}_generic: an exact integer sum
 * per block, scaled and added to one F32 sum block after block. Q8_0
 * activation blocks: half d, 32 int8; Q8_1: half d, half s, 32 int8. */
static float dot_legacy(const legacy_t *t, const void *vw, const void *va, int64_t n) {
    const unsigned char *x = vw, *y = va;
    const int ab = t->with_min ? (int)sizeof(qc_block_q8_1) : QC_Q8_0_BYTES, aq = t->with_min ? 4 : 2;
    legacy_blk_t b;
    float sumf = 0;
    for (int64_t i = 0; i < n / QC_QK; i++, x += t->bytes, y += ab) {
        t->unpack(x, &b);
        const int8_t *q8 = (const int8_t *)(y + aq);
        int sumi = 0;
        for (int j = 0; j < QC_QK; j++) sumi += b.q[j] * q8[j];
        const float dy = half_at(y);
        if (t->with_min) sumf += (b.d * dy) * (float)sumi + b.m * half_at(y + 2);
        else if (t->sumi_first) sumf += (float)sumi * b.d * dy;
        else sumf += (b.d * dy) * (float)sumi;
    }
    return sumf;
}

/* ==== K-quants: 256-weight super-blocks ==== */

/* One super-block unpacked: the quants as ggml's vec_dot multiplies them
 * (Q3_K in [-4, 3], Q6_K in [-32, 31], the others unsigned), the scale and
 * min of each sub-block (Q3_K's scales already less 32), the half scales. */
typedef struct {
    int8_t q[QC_QK_K];
    int sc[16], mn[16];
    float d, dmin;
} kquant_blk_t;

typedef struct {
    void (*unpack)(const unsigned char *x, kquant_blk_t *k);
    int bytes;    /* of one super-block */
    int sub_log2; /* log2 of the weights per sub-block scale: 4 (16) or 5 (32) */
    int with_min; /* w = d * sc * q - dmin * mn */
    int one_sum;  /* ggml's Q2_K vec_dot keeps one integer sum per block, the others eight F32 lanes */
} kquant_t;

/* Q2_K: element e = 128n + 32g + l takes bits 2g..2g+1 of qs[32n + l]. */
static void unpack_q2_K(const unsigned char *x, kquant_blk_t *k) {
    const qc_block_q2_K *b = (const qc_block_q2_K *)x;
    k->d = half_at(b->d);
    k->dmin = half_at(b->dmin);
    for (int j = 0; j < 16; j++) k->sc[j] = b->scales[j] & 0xF, k->mn[j] = b->scales[j] >> 4;
    for (int e = 0; e < QC_QK_K; e++) k->q[e] = (int8_t)((b->qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3);
}

/* Q3_K: the scales of qc_q3_K_scales. */
static void unpack_q3_K(const unsigned char *x, kquant_blk_t *k) {
    const qc_block_q3_K *b = (const qc_block_q3_K *)x;
    k->d = half_at(b->d);
    k->dmin = 0;
    int16_t sc[16];
    qc_q3_K_scales(b->scales, sc);
    for (int s = 0; s < 16; s++) k->sc[s] = sc[s], k->mn[s] = 0;
    /* low 2 bits as Q2_K; a clear high bit (bit e/32 of hmask[e%32]) subtracts 4 */
    for (int e = 0; e < QC_QK_K; e++) {
        const int lo = (b->qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
        k->q[e] = (int8_t)(lo - ((b->hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4));
    }
}

/* ggml's get_scale_min_k4: sub-block j's 6-bit scale and min. Sub-blocks
 * 0..3 keep them in the low 6 bits of scales[j] and scales[j + 4]; 4..7 put
 * their low 4 bits in scales[j + 4] and their top 2 bits in the spare top
 * bits of scales[j - 4] (scale) and scales[j] (min). */
static void scale_min_k4(const uint8_t *q, kquant_blk_t *k) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            k->sc[j] = q[j] & 63;
            k->mn[j] = q[j + 4] & 63;
        } else {
            k->sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            k->mn[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
}

/* Q4_K/Q5_K low nibbles: sub-blocks 2i and 2i+1 share qs[32i..32i+32), the
 * first the low nibbles, the second the high ones. */
static void unpack_nibbles_k(const uint8_t *qs, int8_t *q) {
    for (int e = 0; e < QC_QK_K; e++) {
        const uint8_t v = qs[32 * (e / 64) + e % 32];
        q[e] = (int8_t)(e / 32 % 2 ? v >> 4 : v & 0xF);
    }
}

static void unpack_q4_K(const unsigned char *x, kquant_blk_t *k) {
    const qc_block_q4_K *b = (const qc_block_q4_K *)x;
    k->d = half_at(b->d);
    k->dmin = half_at(b->dmin);
    scale_min_k4(b->scales, k);
    unpack_nibbles_k(b->qs, k->q);
}

/* Q5_K: Q4_K plus a 5th bit, bit e/32 of qh[e%32]. */
static void unpack_q5_K(const unsigned char *x, kquant_blk_t *k) {
    const qc_block_q5_K *b = (const qc_block_q5_K *)x;
    k->d = half_at(b->d);
    k->dmin = half_at(b->dmin);
    scale_min_k4(b->scales, k);
    unpack_nibbles_k(b->qs, k->q);
    for (int e = 0; e < QC_QK_K; e++) k->q[e] = (int8_t)(k->q[e] + ((b->qh[e % 32] >> (e / 32)) & 1) * 16);
}

/* Q6_K: per 128 weights, element 128n + 32g + l takes its low nibble from
 * ql[64n + l + 32 (g odd)] (the high nibble for g >= 2) and its top 2 bits
 * from bits 2g..2g+1 of qh[32n + l]; q - 32 signed; int8 scale per 16. */
static void unpack_q6_K(const unsigned char *x, kquant_blk_t *k) {
    const qc_block_q6_K *b = (const qc_block_q6_K *)x;
    k->d = half_at(b->d);
    k->dmin = 0;
    for (int s = 0; s < 16; s++) k->sc[s] = b->scales[s], k->mn[s] = 0;
    for (int e = 0; e < QC_QK_K; e++) {
        const int n = e / 128, g = e % 128 / 32, l = e % 32;
        const uint8_t lo = b->ql[64 * n + l + 32 * (g % 2)];
        const int v = (g >= 2 ? lo >> 4 : lo & 0xF) | ((b->qh[32 * n + l] >> (2 * g)) & 3) << 4;
        k->q[e] = (int8_t)(v - 32);
    }
}

static const kquant_t K_Q2_K = {unpack_q2_K, sizeof(qc_block_q2_K), 4, 1, 1};
static const kquant_t K_Q3_K = {unpack_q3_K, sizeof(qc_block_q3_K), 4, 0, 0};
static const kquant_t K_Q4_K = {unpack_q4_K, sizeof(qc_block_q4_K), 5, 1, 0};
static const kquant_t K_Q5_K = {unpack_q5_K, sizeof(qc_block_q5_K), 5, 1, 0};
static const kquant_t K_Q6_K = {unpack_q6_K, sizeof(qc_block_q6_K), 4, 0, 0};

/* ggml's dequantize_row_q{2..6}_K: (d * sc) * q, less dmin * mn. */
static void dequant_kquant(const kquant_t *t, const void *vx, float *y, int64_t n) {
    const unsigned char *x = vx;
    kquant_blk_t k;
    for (int64_t i = 0; i < n / QC_QK_K; i++, x += t->bytes, y += QC_QK_K) {
        t->unpack(x, &k);
        for (int e = 0; e < QC_QK_K; e++) {
            const int s = e >> t->sub_log2;
            const float v = (k.d * (float)k.sc[s]) * (float)k.q[e];
            y[e] = t->with_min ? v - k.dmin * (float)k.mn[s] : v;
        }
    }
}

/* ggml's ggml_vec_dot_q{2..6}_K_q8_K_generic. Q2_K: per block one integer
 * sum, sumf += dall * isum - dmin * summs. The others: integer sums in eight
 * lanes (element e in lane e % 8), each lane scaled by d_w * d_a into its
 * own F32 sum that runs over the whole row; the mins' term leaves sumf per
 * block; the lanes join sumf at the end, lane 0 first. */
static float dot_kquant(const kquant_t *t, const void *vw, const void *va, int64_t n) {
    const unsigned char *x = vw;
    const qc_block_q8_K *y = va;
    kquant_blk_t k;
    float sums[8] = {0}, sumf = 0;
    for (int64_t i = 0; i < n / QC_QK_K; i++, x += t->bytes, y++) {
        t->unpack(x, &k);
        int summs = 0; /* sum of the activation sums times the mins */
        if (t->with_min)
            for (int j = 0; j < QC_QK_K / 16; j++) summs += y->bsums[j] * k.mn[j >> (t->sub_log2 - 4)];
        if (t->one_sum) {
            int isum = 0;
            for (int e = 0; e < QC_QK_K; e++) isum += k.sc[e >> t->sub_log2] * (k.q[e] * y->qs[e]);
            const float dall = y->d * k.d, dmin = y->d * k.dmin;
            sumf += dall * (float)isum - dmin * (float)summs;
            continue;
        }
        int32_t aux[8] = {0};
        for (int e = 0; e < QC_QK_K; e++) aux[e & 7] += k.sc[e >> t->sub_log2] * (k.q[e] * y->qs[e]);
        const float d = k.d * y->d;
        for (int l = 0; l < 8; l++) sums[l] += d * (float)aux[l];
        if (t->with_min) {
            const float dmin = k.dmin * y->d;
            sumf -= dmin * (float)summs;
        }
    }
    if (!t->one_sum)
        for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

/* ==== activation formats ==== */

/* ggml's nearest_int: round to nearest, ties to even, by the float adder
 * (|f| <= 2^22). */
static inline int nearest_int(float f) {
    const float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* ggml's quantize_row_q8_K_ref: the value of largest magnitude (first one
 * on ties, sign kept) maps to -127, d = 1 / iscale (negative when that value
 * is positive); an all-zero block gets d = 0 (and, unlike ggml, whose bsums
 * are then left as they were, zero sums). */
static void quant_q8_K(const float *x, void *vy, int64_t n) {
    qc_block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QC_QK_K; i++, x += QC_QK_K, y++) {
        float max = 0, amax = 0;
        for (int j = 0; j < QC_QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) amax = ax, max = x[j];
        }
        if (!amax) {
            memset(y, 0, sizeof *y);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QC_QK_K; j++) {
            const int v = nearest_int(iscale * x[j]);
            y->qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QC_QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y->qs[16 * j + l];
            y->bsums[j] = (int16_t)sum;
        }
        y->d = 1 / iscale;
    }
}

/* ggml's quantize_row_q8_0_ref (kernels.c has it for the weights too). */
static void quant_q8_0(const float *x, void *y, int64_t n) { qc_quantize_row(QC_DTYPE_Q8_0, x, y, n); }

/* ggml's quantize_row_q8_1_ref: Q8_0's d and rounding (roundf: ties away
 * from zero), and s = sum(qs) * d with the F32 d, as a half. */
static void quant_q8_1(const float *x, void *vy, int64_t n) {
    unsigned char *y = vy;
    for (int64_t i = 0; i < n / QC_QK; i++, x += QC_QK, y += sizeof(qc_block_q8_1)) {
        float amax = 0.0f;
        for (int j = 0; j < QC_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_half(y, d);
        int sum = 0;
        for (int j = 0; j < QC_QK; j++) {
            const int8_t q = (int8_t)roundf(x[j] * id);
            y[4 + j] = (unsigned char)q;
            sum += q;
        }
        put_half(y + 2, (float)sum * d);
    }
}

static void dequant_q8_K(const void *vx, float *y, int64_t n) {
    const qc_block_q8_K *x = vx;
    for (int64_t i = 0; i < n / QC_QK_K; i++, x++, y += QC_QK_K)
        for (int j = 0; j < QC_QK_K; j++) y[j] = x->d * x->qs[j];
}

static void dequant_q8_1(const void *vx, float *y, int64_t n) {
    const unsigned char *x = vx;
    for (int64_t i = 0; i < n / QC_QK; i++, x += sizeof(qc_block_q8_1), y += QC_QK) {
        const float d = half_at(x);
        for (int j = 0; j < QC_QK; j++) y[j] = (int8_t)x[4 + j] * d;
    }
}

/* ==== the table ==== */

#define LEGACY_FNS(name, desc)                                                                                   \
    static void dequant_##name(const void *x, float *y, int64_t n) { dequant_legacy(&desc, x, y, n); }         \
    static float dot_##name(const void *w, const void *a, int64_t n) { return dot_legacy(&desc, w, a, n); }
#define KQUANT_FNS(name, desc)                                                                                   \
    static void dequant_##name(const void *x, float *y, int64_t n) { dequant_kquant(&desc, x, y, n); }         \
    static float dot_##name(const void *w, const void *a, int64_t n) { return dot_kquant(&desc, w, a, n); }

LEGACY_FNS(q8_0, L_Q8_0)
LEGACY_FNS(q4_0, L_Q4_0)
LEGACY_FNS(q4_1, L_Q4_1)
LEGACY_FNS(q5_0, L_Q5_0)
LEGACY_FNS(q5_1, L_Q5_1)
KQUANT_FNS(q2_K, K_Q2_K)
KQUANT_FNS(q3_K, K_Q3_K)
KQUANT_FNS(q4_K, K_Q4_K)
KQUANT_FNS(q5_K, K_Q5_K)
KQUANT_FNS(q6_K, K_Q6_K)

static const qc_qtype_t qtypes[] = {
    [QC_DTYPE_Q8_0] = {"q8_0", QC_QK, QC_Q8_0_BYTES, QC_DTYPE_Q8_0, dequant_q8_0, dot_q8_0, quant_q8_0},
    [QC_DTYPE_Q4_0] = {"q4_0", QC_QK, QC_Q4_0_BYTES, QC_DTYPE_Q8_0, dequant_q4_0, dot_q4_0, NULL},
    [QC_DTYPE_Q4_1] = {"q4_1", QC_QK, sizeof(qc_block_q4_1), QC_DTYPE_Q8_1, dequant_q4_1, dot_q4_1, NULL},
    [QC_DTYPE_Q5_0] = {"q5_0", QC_QK, sizeof(qc_block_q5_0), QC_DTYPE_Q8_0, dequant_q5_0, dot_q5_0, NULL},
    [QC_DTYPE_Q5_1] = {"q5_1", QC_QK, sizeof(qc_block_q5_1), QC_DTYPE_Q8_1, dequant_q5_1, dot_q5_1, NULL},
    [QC_DTYPE_Q2_K] = {"q2_K", QC_QK_K, sizeof(qc_block_q2_K), QC_DTYPE_Q8_K, dequant_q2_K, dot_q2_K, NULL},
    [QC_DTYPE_Q3_K] = {"q3_K", QC_QK_K, sizeof(qc_block_q3_K), QC_DTYPE_Q8_K, dequant_q3_K, dot_q3_K, NULL},
    [QC_DTYPE_Q4_K] = {"q4_K", QC_QK_K, sizeof(qc_block_q4_K), QC_DTYPE_Q8_K, dequant_q4_K, dot_q4_K, NULL},
    [QC_DTYPE_Q5_K] = {"q5_K", QC_QK_K, sizeof(qc_block_q5_K), QC_DTYPE_Q8_K, dequant_q5_K, dot_q5_K, NULL},
    [QC_DTYPE_Q6_K] = {"q6_K", QC_QK_K, sizeof(qc_block_q6_K), QC_DTYPE_Q8_K, dequant_q6_K, dot_q6_K, NULL},
    [QC_DTYPE_Q8_K] = {"q8_K", QC_QK_K, sizeof(qc_block_q8_K), QC_DTYPE_Q8_K, dequant_q8_K, NULL, quant_q8_K},
    [QC_DTYPE_Q8_1] = {"q8_1", QC_QK, sizeof(qc_block_q8_1), QC_DTYPE_Q8_1, dequant_q8_1, NULL, quant_q8_1},
};

const qc_qtype_t *qc_qtype(qc_dtype_t t) {
    if ((unsigned)t >= sizeof qtypes / sizeof qtypes[0] || !qtypes[t].name) return NULL;
    return &qtypes[t];
}
