/* panels_avx512.h — the layouts of the AVX-512 level's weight panels and
 * the AVX-512 code that unpacks their quants, shared by the two files that
 * read them: kernels_avx512.c (which makes them and multiplies with
 * VNNI) and kernels_amx.c (AMX tiles for prefill). Include only from files
 * built with the AVX-512 flags. */
#ifndef QC_PANELS_AVX512_H
#define QC_PANELS_AVX512_H

#include "engine/kernels_impl.h"
#include "engine/quants.h"

#include <immintrin.h>

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

/* ==== weight panels (Q8_0, Q4_0, Q5_0) ====
 *
 * A panel is 16 rows; per 32-weight block it holds (PB bytes, blocks of a
 * panel one after the other, panels one after the other):
 *   quants  Q8_0: 8 vectors of 64 bytes, vector g lane i (4 bytes) = row
 *           i's weights 4g .. 4g + 3 plus 128 (unsigned); Q4_0 and Q5_0: 4
 *           vectors, vector h lane i = row i's qs[4h .. 4h + 3], so the low
 *           nibbles are weights 4h .. 4h + 3 and the high ones 16 + 4h ..
 *   qh      Q5_0 only: 16 words, row i's qh (bit c: weight c's 5th bit)
 *   d       16 halves, row i's scale
 * — the file's bytes rearranged (as large as the file). Each vpdpbusd then
 * multiplies 4 weights of 16 rows by the same 4 activations (broadcast), so
 * a block's dot for 16 rows accumulates in one register, in exact int32,
 * and is scaled and added in F32 for 16 outputs at once: no horizontal
 * sums, and one conversion, multiply and add per 16 rows and block where
 * the file layout's tiles need them per row. Each output adds its blocks
 * in order with the scalar tile's roundings ((float)sumi * (d_w * d_x),
 * then the sum), so the panels' products are the scalar level's bit for
 * bit. */

enum { QC_PR = 16 }; /* rows per panel */

static inline int pan_kind(qc_dtype_t dt) { return dt == QC_DTYPE_Q8_0 ? 0 : dt == QC_DTYPE_Q4_0 ? 1 : 2; }
static inline size_t pan_qbytes(int kind) { return kind == 0 ? 8 * 64 : 4 * 64; }
static inline size_t pan_block(int kind) { return pan_qbytes(kind) + (kind == 2 ? 64 : 0) + 32; }
static inline size_t file_block(int kind) {
    return kind == 0 ? QC_Q8_0_BYTES : kind == 1 ? QC_Q4_0_BYTES : sizeof(qc_block_q5_0);
}

/* The 8 weight vectors of one panel block, unsigned (excess 128, 8, 16). */
ALWAYS_INLINE void pan_weights(const int kind, const unsigned char *pb, __m512i w[8]) {
    if (kind == 0) {
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) w[g] = _mm512_loadu_si512((const void *)(pb + 64 * g));
        return;
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++) {
        const __m512i v = _mm512_loadu_si512((const void *)(pb + 64 * h));
        w[h] = _mm512_and_si512(v, m4);
        w[h + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    }
    if (kind == 2) {
        /* group g's 5th bits: bits 4g .. 4g + 3 of each lane's qh, as 0x10
         * in bytes 0..3 (vpermd looks the 4 bits up in a 16-word table) */
        const __m512i lut = _mm512_setr_epi32(0, 0x10, 0x1000, 0x1010, 0x100000, 0x100010, 0x101000, 0x101010,
                                              0x10000000, 0x10000010, 0x10001000, 0x10001010, 0x10100000,
                                              0x10100010, 0x10101000, 0x10101010);
        const __m512i qh = _mm512_loadu_si512((const void *)(pb + 4 * 64));
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++)
            w[g] = _mm512_or_si512(w[g], _mm512_permutexvar_epi32(_mm512_srli_epi32(qh, 4 * g), lut));
    }
}

/* Q4_K panels: per 16 rows and 256-weight super-block (KPB bytes):
 *   quants  32 vectors of 64 bytes, vector 8jj + g lane i = row i's
 *           qs[32jj + 4g .. + 3] (low nibbles: sub-block 2jj, weights 4g ..
 *           4g + 3; high nibbles: sub-block 2jj + 1)
 *   sc      8 x 16 bytes, [j][i] = row i's 6-bit scale of sub-block j
 *   mins    4 x 32 bytes, [k][2i + e] = row i's min m_2k+e (widened to
 *           int16 pairs once per super-block)
 *   d, dmin 16 halves each
 * (2368 bytes where the file has 2304). Per sub-block, 8 vpdpbusd give
 * its exact dot for 16 rows (unsigned nibbles, signed Q8_K activations,
 * no excess), converted and scaled by d sc_j d_x in F32; the mins' term
 * is exact in int32 (4 vpdpwssd on the activations' pair-summed bsums) and
 * scaled by dmin d_x once per super-block.
 * Q5_K panels (kind 1) are Q4_K's followed by the 5th bits:
 *   qh      8 vectors, vector g lane i = row i's qh[4g .. 4g + 3] (bit j of
 *           byte l: weight 32j + l's)
 * (2880 bytes where the file has 2816); the tile ORs each sub-block's bit
 * into its nibbles as 16 (unsigned 0..31), the rest as Q4_K. */
enum { KPB = 2368, KP_SC = 2048, KP_MN = 2176, KP_D = 2304, KP_DMIN = 2336, K5PB = KPB + 512, K5_QH = KPB };

/* Sub-blocks 2jj (lo) and 2jj + 1 (hi) of a Q4_K (five = 0) or Q5_K panel
 * block: 8 vectors each, lane i = row i's 4 quants, unsigned (0..15, or
 * 0..31 with the 5th bit ORed in as 16). */
ALWAYS_INLINE void kpan_quants(const int five, const unsigned char *pw, int jj, __m512i lo[8], __m512i hi[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), one = _mm512_set1_epi8(1);
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        const __m512i v = _mm512_loadu_si512((const void *)(pw + (size_t)(8 * jj + g) * 64));
        lo[g] = _mm512_and_si512(v, m4);
        hi[g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        if (five) { /* bits 2jj and 2jj + 1 of each qh byte, as 16 (16-bit shifts: each byte's own) */
            const __m512i h = _mm512_loadu_si512((const void *)(pw + K5_QH + (size_t)g * 64));
            lo[g] = _mm512_or_si512(lo[g], _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 2 * jj), one), 4));
            hi[g] = _mm512_or_si512(hi[g], _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 2 * jj + 1), one), 4));
        }
    }
}

/* Q6_K panels: per 16 rows and super-block (the file's 3360 bytes):
 *   ql  32 vectors, vector 16n + 8h + g lane i = row i's ql[64n + 32h + 4g .. + 3]
 *   qh  16 vectors, vector 8n + g lane i = row i's qh[32n + 4g .. + 3]
 *   sc  16 x 16 bytes, [j][i] = row i's scale of 16-weight sub-block j
 *   d   16 halves
 * Group G = 4n + s (weights 128n + 32s + l) is ql's nibble s / 2 of half
 * s % 2 with qh's bits 2s as bits 4-5: unsigned 0..63 (q + 32) in bytes, 4
 * weights of 16 rows a vector. Each 16-weight sub-block's dot for 16 rows
 * is 4 vpdpbusd started at -32 times its bsum (the excess, exact), then
 * scaled by d sc_j d_x in F32. */
enum { K6PB = 3360, K6_QH = 2048, K6_SC = 3072, K6_D = 3328 };

/* Group G's 8 vectors of unsigned 6-bit quants (G = 4n + s). */
ALWAYS_INLINE void k6pan_group(const unsigned char *pw, const int G, __m512i q[8]) {
    const int n = G / 4, s = G % 4;
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        const __m512i l = _mm512_loadu_si512((const void *)(pw + (size_t)(16 * n + 8 * (s % 2) + g) * 64));
        const __m512i h = _mm512_loadu_si512((const void *)(pw + K6_QH + (size_t)(8 * n + g) * 64));
        const __m512i lo = _mm512_and_si512(s / 2 ? _mm512_srli_epi16(l, 4) : l, m4);
        /* bits 2s, 2s + 1 of each byte to bits 4, 5 (16-bit shifts: what
         * crosses into the next byte lands outside 0x30) */
        const __m512i hb = s == 0   ? _mm512_slli_epi16(h, 4)
                           : s == 1 ? _mm512_slli_epi16(h, 2)
                           : s == 2 ? h
                                    : _mm512_srli_epi16(h, 2);
        q[g] = _mm512_or_si512(lo, _mm512_and_si512(hb, m30));
    }
}

#endif
