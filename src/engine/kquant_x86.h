/* kquant_x86.h — the AVX2 pieces of the K-quant tiles that the AVX2 and
 * AVX-512 levels share (both files are compiled with the AVX2 flags):
 * included by kernels_avx2.c and kernels_avx512.c only. */
#ifndef QC_KQUANT_X86_H
#define QC_KQUANT_X86_H

#include "engine/quants.h"

#include <immintrin.h>
#include <string.h>

/* The sum of v's 8 int32 lanes (exact). */
static inline __attribute__((always_inline)) int32_t kq_hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* qc_q3_K_scales in vectors: sub-block s's low 4 bits are b[s]'s low
 * nibble (s < 8) or b[s - 8]'s high one, its top 2 bits bits 2 (s / 4) of
 * b[8 + s % 4], which is lane s / 4 of b[8..11] broadcast to four 32-bit
 * lanes, shifted right by 2 (s / 4) (the bits that cross into a byte from
 * the next are masked off with the rest). Reads the 12 bytes only (the
 * last block of a tensor may end after them). */
static inline __attribute__((always_inline)) __m256i q3k_scales(const uint8_t b[12]) {
    int32_t w;
    memcpy(&w, b + 8, 4);
    const __m128i lo8 = _mm_loadl_epi64((const __m128i *)(const void *)b), m4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(_mm_unpacklo_epi64(lo8, _mm_srli_epi16(lo8, 4)), m4);
    const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(w), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
    const __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
    return _mm256_cvtepi8_epi16(sc);
}

/* The 16 sub-block scales of a Q2_K, Q3_K or Q6_K super-block as int16
 * (0..7 in the low 128-bit lane, 8..15 the high), and Q2_K's 16 mins in
 * *mn16: Q2_K's 4-bit nibbles, Q3_K's 6 bits less 32 (qc_q3_K_scales),
 * Q6_K's int8. */
static inline __attribute__((always_inline)) __m256i kq16_scales(const qc_dtype_t kt, const unsigned char *p,
                                                                 __m256i *mn16) {
    if (kt == QC_DTYPE_Q6_K)
        return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)((const qc_block_q6_K *)p)->scales));
    if (kt == QC_DTYPE_Q2_K) {
        const __m128i s = _mm_loadu_si128((const __m128i *)((const qc_block_q2_K *)p)->scales), m4 = _mm_set1_epi8(0x0f);
        *mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
        return _mm256_cvtepu8_epi16(_mm_and_si128(s, m4));
    }
    return q3k_scales(((const qc_block_q3_K *)p)->scales);
}

#endif
