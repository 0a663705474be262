/* kquant_x86.h — the AVX2 pieces of the K-quant tiles that the AVX2 and
 * AVX-512 levels share (both files are compiled with the AVX2 flags):
 * included by kernels_avx2.c and kernels_avx512.c only. */
#ifndef QC_KQUANT_X86_H
#define QC_KQUANT_X86_H

#include "engine/quants.h"

#include <immintrin.h>

/* The sum of v's 8 int32 lanes (exact). */
static inline __attribute__((always_inline)) int32_t kq_hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
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
    int16_t sc[16];
    qc_q3_K_scales(((const qc_block_q3_K *)p)->scales, sc);
    return _mm256_loadu_si256((const __m256i *)sc);
}

#endif
