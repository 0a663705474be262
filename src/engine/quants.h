/* quants.h — every ggml block format qcare reads, as ggml lays it out, and
 * per format: row dequantization, and the scalar dot product of one weight
 * row with one row of quantized activations, with the integer arithmetic and
 * the order of float operations of ggml's generic (non-SIMD) vec_dot code,
 * so a matrix product built on them reproduces llama.cpp's logits on the same
 * file. The activations are quantized as ggml quantizes them for each weight
 * type (quantize_row_q8_K_ref for the K-quants, q8_0_ref / q8_1_ref for the
 * legacy types), bit for bit.
 *
 * Formats (w = one weight; d, dmin, m: IEEE halves; sc, mn: small integers):
 *   Q8_0  32 per block   w = d * q                       q int8
 *   Q4_0  32             w = d * (q - 8)                 q 4 bits
 *   Q4_1  32             w = d * q + m                   q 4 bits
 *   Q5_0  32             w = d * (q - 16)                q 5 bits (4 + 1 in qh)
 *   Q5_1  32             w = d * q + m                   q 5 bits
 *   Q2_K  256 = 16 x 16  w = d * sc * q - dmin * mn      q 2 bits, sc/mn 4 bits
 *   Q3_K  256 = 16 x 16  w = d * (sc - 32) * (q - 4)     q 3 bits (2 + 1 in hmask), sc 6 bits
 *   Q4_K  256 = 8 x 32   w = d * sc * q - dmin * mn      q 4 bits, sc/mn 6 bits
 *   Q5_K  256 = 8 x 32   w = d * sc * q - dmin * mn      q 5 bits (4 + 1 in qh)
 *   Q6_K  256 = 16 x 16  w = d * sc * (q - 32)           q 6 bits (4 + 2 in qh), sc int8
 * and the activation formats
 *   Q8_K  256            x = d * q, d an F32, with the sums of each 16 q (bsums)
 *   Q8_1  32             x = d * q, with s = d * sum(q) as a half
 * (Q8_0 serves both as weights and as activations.)
 *
 * Every weight block's fields are bytes, so a block may sit at any address
 * of a mapping (a GGUF tensor is aligned only to its file offset). Q8_K is
 * never read from a file: it holds an F32 and int16s, and its size keeps an
 * array of them aligned. */
#ifndef QC_QUANTS_H
#define QC_QUANTS_H

#include "engine/kernels.h"

/* ==== block layouts (ggml-common.h) ==== */

typedef struct {
    uint8_t d[2], m[2];     /* IEEE half: scale, offset */
    uint8_t qs[QC_QK / 2];  /* nibbles: element j low, element j + 16 high */
} qc_block_q4_1;
_Static_assert(sizeof(qc_block_q4_1) == 20, "ggml block_q4_1 layout");

typedef struct {
    uint8_t d[2];           /* IEEE half scale */
    uint8_t qh[4];          /* bit j (little-endian u32): 5th bit of element j */
    uint8_t qs[QC_QK / 2];  /* low nibbles, as Q4_0 */
} qc_block_q5_0;
_Static_assert(sizeof(qc_block_q5_0) == 22, "ggml block_q5_0 layout");

typedef struct {
    uint8_t d[2], m[2];     /* IEEE half: scale, offset */
    uint8_t qh[4];          /* as Q5_0 */
    uint8_t qs[QC_QK / 2];
} qc_block_q5_1;
_Static_assert(sizeof(qc_block_q5_1) == 24, "ggml block_q5_1 layout");

typedef struct {
    uint8_t d[2], s[2];     /* IEEE half: scale, and d * sum(qs) */
    int8_t qs[QC_QK];
} qc_block_q8_1;
_Static_assert(sizeof(qc_block_q8_1) == 36, "ggml block_q8_1 layout");

typedef struct {
    uint8_t scales[QC_QK_K / 16]; /* per 16 weights: scale low nibble, min high nibble */
    uint8_t qs[QC_QK_K / 4];      /* 2-bit quants, four per byte */
    uint8_t d[2], dmin[2];        /* IEEE half: scale of the scales, of the mins */
} qc_block_q2_K;
_Static_assert(sizeof(qc_block_q2_K) == 84, "ggml block_q2_K layout");

typedef struct {
    uint8_t hmask[QC_QK_K / 8];   /* high bit of each quant: element e is bit e / 32 of byte e % 32 */
    uint8_t qs[QC_QK_K / 4];      /* low 2 bits, four per byte */
    uint8_t scales[12];           /* 16 6-bit scales (see q3_K_scales in quants.c) */
    uint8_t d[2];                 /* IEEE half super-block scale */
} qc_block_q3_K;
_Static_assert(sizeof(qc_block_q3_K) == 110, "ggml block_q3_K layout");

/* Q4_K/Q5_K's 8 sub-block scales and mins (6 bits each, quants.c's
 * scale_min_k4) as 16 bytes in 4 words: scales in bytes 0..7, mins in 8..15.
 * The 12 packed bytes as 3 little-endian words a, b, c: byte j of a (b)
 * holds scale (min) j in its low 6 bits and the top 2 bits of scale (min)
 * j + 4; byte j of c the low 4 bits of scale j + 4 and of min j + 4. */
static inline void qc_k4_scale_words(const uint8_t q[12], uint32_t w[4]) {
    uint32_t a = 0, b = 0, c = 0;
    for (int i = 3; i >= 0; i--) a = a << 8 | q[i], b = b << 8 | q[4 + i], c = c << 8 | q[8 + i];
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    w[0] = a & m6;
    w[1] = (c & m4) | ((a >> 6) & m2) << 4;
    w[2] = b & m6;
    w[3] = ((c >> 4) & m4) | ((b >> 6) & m2) << 4;
}

/* Q3_K's 16 6-bit scales, less 32: the low 4 bits in the nibbles of
 * scales[0..8) (scales 0..7 the low nibbles, 8..15 the high ones), the top
 * 2 bits of scale s in bits 2(s/4).. of scales[8 + s%4]. ggml reshuffles
 * them as 32-bit words; the bytes come out the same. */
static inline void qc_q3_K_scales(const uint8_t b[12], int16_t sc[16]) {
    for (int s = 0; s < 16; s++) {
        const int lo = s < 8 ? b[s] & 0xF : b[s - 8] >> 4;
        sc[s] = (int16_t)((lo | ((b[8 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32);
    }
}

typedef struct {
    uint8_t d[2], dmin[2];        /* IEEE half: scale of the scales, of the mins */
    uint8_t scales[12];           /* 8 6-bit scales and mins, packed as Q4_K's */
    uint8_t qh[QC_QK_K / 8];      /* 5th bit: element e is bit e / 32 of byte e % 32 */
    uint8_t qs[QC_QK_K / 2];      /* low nibbles, as Q4_K */
} qc_block_q5_K;
_Static_assert(sizeof(qc_block_q5_K) == 176, "ggml block_q5_K layout");

/* The bytes of one super-block of K-quant type kt (a constant where kt
 * is, as in the kernels' tiles). */
static inline size_t qc_kquant_block_bytes(qc_dtype_t kt) {
    switch (kt) {
    case QC_DTYPE_Q2_K: return sizeof(qc_block_q2_K);
    case QC_DTYPE_Q3_K: return sizeof(qc_block_q3_K);
    case QC_DTYPE_Q4_K: return sizeof(qc_block_q4_K);
    case QC_DTYPE_Q5_K: return sizeof(qc_block_q5_K);
    default: return sizeof(qc_block_q6_K);
    }
}

typedef struct {
    float d;                      /* scale */
    int8_t qs[QC_QK_K];
    int16_t bsums[QC_QK_K / 16];  /* sum of each 16 qs */
} qc_block_q8_K;
_Static_assert(sizeof(qc_block_q8_K) == 292, "ggml block_q8_K layout");

/* ==== one table entry per quantized dtype ==== */

/* y[0..n) = the n weights of row x (n a multiple of the block size). */
typedef void (*qc_dequant_fn)(const void *x, float *y, int64_t n);
/* The dot product of n weights at w with n quantized activations at a (in
 * the entry's act format; Q8_K blocks aligned as qc_block_q8_K), as ggml's
 * generic vec_dot computes it. */
typedef float (*qc_qdot_fn)(const void *w, const void *a, int64_t n);
/* Quantizes n floats (n a multiple of the block size) into blocks at y, bit
 * for bit as ggml's reference quantizer for that format. */
typedef void (*qc_quant_fn)(const float *x, void *y, int64_t n);

typedef struct {
    const char *name;         /* ggml's: "q4_K", "q8_0", ... */
    int32_t block;            /* weights per block */
    int32_t block_bytes;      /* bytes per block */
    qc_dtype_t act;           /* the activation format dot() pairs with this type */
    qc_dequant_fn dequantize;
    qc_qdot_fn dot;           /* NULL for the activation-only formats Q8_K, Q8_1 */
    qc_quant_fn quantize;     /* the activation formats' quantizer (Q8_K, Q8_0, Q8_1); NULL otherwise */
} qc_qtype_t;

/* The entry of a quantized dtype; NULL for F32/F16/BF16 (and any other
 * value). Static. */
const qc_qtype_t *qc_qtype(qc_dtype_t t);

#endif
