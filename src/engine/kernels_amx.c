/* kernels_amx.c — the AMX level: AVX-512's kernels (kernels_avx512.c), with
 * the weight panels' prefill products on AMX int8 tiles. Built with
 * -mamx-tile -mamx-int8 and the AVX-512 flags (Makefile ISA_FLAGS);
 * kernels.c selects the level only on a CPU with AMX-TILE and AMX-INT8
 * whose OS saves tile state, after the process got the permission to use
 * tiles (arch_prctl), and then calls qc_amx_init.
 *
 * The panels are AVX-512's, unchanged (panels_avx512.h): a panel block's
 * 8 vectors of 64 bytes, lane i = row i's 4 consecutive weights, are
 * exactly an AMX B tile of K = 32 (8 rows of 16 columns x 4 bytes). Each
 * panel chunk is unpacked once into such tiles of signed bytes (the excess
 * taken off: Q8_0's 128, Q4_0's 8, Q5_0's 16, Q6_K's 32; Q4_K/Q5_K stay
 * unsigned, their mins apart), with the blocks' scale vectors. The
 * activations of whole 16-token tiles are packed once per call (per
 * thread) so that each A tile is 512 contiguous bytes. One TDPBSSD
 * (TDPBSUD for Q4_K/Q5_K) gives a block's (sub-block's) exact int32 dots
 * for 16 tokens x 16 rows; the tile is stored and AVX-512 applies the
 * scales exactly as the VNNI tile does for the same (token, row, block),
 * in the same order: the AMX products are AVX-512's panels' products bit
 * for bit (and, for the legacy types, the scalar level's). Q6_K's
 * 16-weight sub-blocks use the same K = 32 tiles, an A tile per pair of
 * them and each one's B tile zero in the other's half (so no faster than
 * VNNI per product).
 *
 * Small calls (up to Q8D_MAX tokens: a turn after a cached prefix, an
 * emotion verdict) of Q8_0 take its panels' unsigned blocks as B tiles as
 * they are (TDPBSUD), the excess corrected in int32 per row, exactly as
 * the VNNI tile starts its sum at -128 times the activations' sum: one
 * more vector addition per row instead of unpacking a chunk that a single
 * token tile would use once. Whole tiles of 16 tokens run here, and the
 * tokens left over when there are enough of them (PAD_MIN) in one more
 * tile padded with zeros; the others (and decode, and Q6_K's small calls)
 * go to AVX-512's panel product, where AMX does not help. One tile
 * configuration serves every type; each thread loads it once, on its first
 * product. */
#include "engine/kernels_impl.h"

#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__) && defined(__AVX512DQ__) && defined(__AVX512VNNI__)

#include "engine/panels_avx512.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum {
    AT = 16,   /* tokens per tile (A's rows) */
    CB = 1024, /* one stored C tile: 16 tokens x 16 rows of int32 */
    /* the unpacked panel chunk: bytes per unit and units per chunk */
    UL = 576,  /* legacy block: 16 F32 scales, then the B tile */
    UK = 4928, /* Q4_K/Q5_K super-block: 8 B tiles, 8 scale vectors, 4 min vectors, dmin */
    UK_S = 4096, UK_MN = 4608, UK_DMIN = 4864,
    U6 = 9216, /* Q6_K super-block: 16 B tiles (half zero), 16 scale vectors */
    U6_S = 8192,
    CH_L = 64, CH_K = 8, CH_6 = 4,
    UB_BYTES = CH_K * UK
};
_Static_assert(CH_L * UL <= UB_BYTES && CH_6 * U6 <= UB_BYTES, "unpacked chunk buffer");

/* kinds: 0 Q8_0, 1 Q4_0, 2 Q5_0 (pan_kind's), 3 Q4_K, 4 Q5_K, 5 Q6_K; and
 * Q8D, Q8_0 read straight from the panels (below) */
enum { Q8D = 6, Q8D_PF = 12288 };
static int amx_kind(qc_dtype_t dt) {
    switch (dt) {
    case QC_DTYPE_Q8_0: return 0;
    case QC_DTYPE_Q4_0: return 1;
    case QC_DTYPE_Q5_0: return 2;
    case QC_DTYPE_Q4_K: return 3;
    case QC_DTYPE_Q5_K: return 4;
    case QC_DTYPE_Q6_K: return 5;
    default: return -1;
    }
}

/* Palette 1: tiles 0-3 C (16 x 64 bytes), 4-5 A (16 tokens x 32 bytes),
 * 6-7 B (8 x 64 bytes). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_cfg_t;
_Static_assert(sizeof(tile_cfg_t) == 64, "LDTILECFG's 64-byte operand");

static __thread int tiles_configured;

static void tiles_configure(void) {
    _Alignas(64) tile_cfg_t c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 4; t++) c.rows[t] = 16, c.colsb[t] = 64;
    for (int t = 4; t < 6; t++) c.rows[t] = AT, c.colsb[t] = 32;
    for (int t = 6; t < 8; t++) c.rows[t] = 8, c.colsb[t] = 64;
    _tile_loadconfig(&c);
    tiles_configured = 1;
}

ALWAYS_INLINE int legacy(const int kind) { return kind < 3 || kind == Q8D; }
ALWAYS_INLINE int64_t chunk_units(const int kind) { return legacy(kind) ? CH_L : kind < 5 ? CH_K : CH_6; }
ALWAYS_INLINE size_t unit_bytes(const int kind) { return legacy(kind) ? UL : kind < 5 ? UK : U6; }
ALWAYS_INLINE size_t panel_unit(const int kind) {
    return kind == Q8D ? pan_block(0) : kind < 3 ? pan_block(kind) : kind == 3 ? KPB : kind == 4 ? K5PB : K6PB;
}
ALWAYS_INLINE int subs(const int kind) { return legacy(kind) ? 1 : kind < 5 ? 8 : 16; }
/* A tiles per unit: one per sub-block, but one per pair of Q6_K's, whose
 * two B tiles hold one sub-block each, in the half of K it occupies */
ALWAYS_INLINE int asubs(const int kind) { return kind == 5 ? 8 : subs(kind); }
ALWAYS_INLINE size_t act_unit(const int kind) {
    return legacy(kind) ? sizeof(qc_block_q8_act) : sizeof(qc_block_q8_K);
}

/* Units [0, nu) of one panel (pw: the first's panel block) into ub: the
 * B tiles the products read, signed (the excess taken off) but Q4_K/Q5_K's,
 * and each unit's scale vectors as the VNNI tiles compute them. */
ALWAYS_INLINE void unpack(const int kind, const unsigned char *pw, int64_t nu, unsigned char *ub) {
    if (kind == Q8D) return; /* nothing to unpack */
    const size_t pu = panel_unit(kind);
    for (int64_t b = 0; b < nu; b++, pw += pu, ub += unit_bytes(kind)) {
        if (kind < 3) {
            const size_t dof = pan_qbytes(kind) + (kind == 2 ? 64 : 0);
            _mm512_store_ps(ub, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pw + dof))));
            __m512i w[8];
            pan_weights(kind, pw, w);
            const __m512i excess = _mm512_set1_epi8((char)(kind == 0 ? 128 : kind == 1 ? 8 : 16));
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) _mm512_store_si512(ub + 64 + 64 * g, _mm512_sub_epi8(w[g], excess));
        } else if (kind < 5) {
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pw + KP_D)));
#pragma GCC unroll 1
            for (int jj = 0; jj < 4; jj++) {
                __m512i lo[8], hi[8];
                kpan_quants(kind == 4, pw, jj, lo, hi);
#pragma GCC unroll 8
                for (int g = 0; g < 8; g++) {
                    _mm512_store_si512(ub + (size_t)(2 * jj) * 512 + 64 * g, lo[g]);
                    _mm512_store_si512(ub + (size_t)(2 * jj + 1) * 512 + 64 * g, hi[g]);
                }
            }
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                _mm512_store_ps(ub + UK_S + 64 * j,
                                _mm512_mul_ps(dw, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                                                      _mm_loadu_si128((const __m128i *)(pw + KP_SC + 16 * j))))));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                _mm512_store_si512(ub + UK_MN + 64 * k,
                                   _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(pw + KP_MN + 32 * k))));
            _mm512_store_ps(ub + UK_DMIN, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pw + KP_DMIN))));
        } else {
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pw + K6_D)));
#pragma GCC unroll 1
            for (int G = 0; G < 8; G++) {
                __m512i q[8];
                k6pan_group(pw, G, q);
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    unsigned char *bt = ub + (size_t)(2 * G + h) * 512;
#pragma GCC unroll 4
                    for (int g = 0; g < 4; g++) {
                        _mm512_store_si512(bt + 256 * h + 64 * g, _mm512_sub_epi8(q[4 * h + g], _mm512_set1_epi8(32)));
                        _mm512_store_si512(bt + 256 * (1 - h) + 64 * g, _mm512_setzero_si512());
                    }
                }
            }
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++)
                _mm512_store_ps(ub + U6_S + 64 * j,
                                _mm512_mul_ps(dw, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                      _mm_loadu_si128((const __m128i *)(pw + K6_SC + 16 * j))))));
        }
    }
}

/* ==== the activations of whole token tiles, packed once per call ====
 *
 * Per thread (both threads of a product read every token): per tile of 16
 * tokens and sub-unit, the A tile (16 x 32 bytes, 512 contiguous bytes: a
 * strided load of the activation blocks themselves costs more than the
 * product); per tile and unit the 16 tokens' scales (dx) and, for
 * Q4_K/Q5_K, their 4 bsum pairs each (cx: kpan_prep's words, for the mins'
 * term), for Q8D the excess's correction, -128 times the block's sum (the
 * other types' B tiles are signed). Tokens from n_tok on (a tile padded
 * to 16) are zeros. */
typedef struct {
    unsigned char *a;
    float *dx;
    int32_t *cx;
    int64_t nb, ns; /* units, sub-units per row */
} apack_t;

ALWAYS_INLINE int cx_per_unit(const int kind) { return kind == 3 || kind == 4 ? 64 : kind == Q8D ? AT : 0; }

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static __thread unsigned char *scratch;
static __thread size_t scratch_cap;
static void scratch_key_make(void) { (void)pthread_key_create(&scratch_key, free); }

/* This thread's pack buffer of at least n bytes (freed when the thread
 * ends), or NULL when memory is short. */
static unsigned char *scratch_get(size_t n) {
    if (n <= scratch_cap) return scratch;
    pthread_once(&scratch_once, scratch_key_make);
    free(scratch);
    scratch = aligned_alloc(64, (n + 63) / 64 * 64);
    scratch_cap = scratch ? n : 0;
    (void)pthread_setspecific(scratch_key, scratch);
    return scratch;
}

static size_t pack_bytes(const int kind, int nt, int64_t nb) {
    const size_t tiles = (size_t)(nt / AT), ns = (size_t)nb * (size_t)asubs(kind);
    return tiles * (ns * 512 + (size_t)nb * 64 + (size_t)nb * (size_t)cx_per_unit(kind) * 4);
}

ALWAYS_INLINE void pack(const int kind, const unsigned char *act, size_t xs, int nt, int n_tok, int64_t nb,
                        unsigned char *buf, apack_t *p) {
    const int64_t tiles = nt / AT, ns = nb * asubs(kind);
    p->nb = nb, p->ns = ns;
    p->a = buf;
    p->dx = (float *)(buf + (size_t)(tiles * ns) * 512);
    p->cx = (int32_t *)((unsigned char *)p->dx + (size_t)(tiles * nb) * 64);
    for (int64_t T = 0; T < tiles; T++)
        for (int m = 0; m < AT; m++) {
            const unsigned char *row = act + (size_t)(T * AT + m) * xs;
            if (T * AT + m >= n_tok) { /* padding */
                for (int64_t b = 0; b < nb; b++) {
                    const size_t tu = (size_t)(T * nb + b);
                    for (int j = 0; j < asubs(kind); j++)
                        memset(p->a + ((size_t)(T * ns + b * asubs(kind) + j) * AT + (size_t)m) * 32, 0, 32);
                    p->dx[tu * AT + (size_t)m] = 0;
                    const int cu = cx_per_unit(kind), per = cu / AT;
                    if (cu) memset(p->cx + tu * (size_t)cu + (size_t)(m * per), 0, (size_t)per * 4);
                }
                continue;
            }
            for (int64_t b = 0; b < nb; b++) {
                unsigned char *a = p->a + ((size_t)(T * ns + b * asubs(kind)) * AT + (size_t)m) * 32;
                const size_t tu = (size_t)(T * nb + b);
                int32_t *cx = p->cx + tu * (size_t)cx_per_unit(kind);
                if (legacy(kind)) {
                    const qc_block_q8_act *xa = (const qc_block_q8_act *)row + b;
                    memcpy(a, xa->qs, 32);
                    p->dx[tu * AT + (size_t)m] = xa->d;
                    if (kind == Q8D) cx[m] = -128 * xa->sum;
                    continue;
                }
                const qc_block_q8_K *xb = (const qc_block_q8_K *)row + b;
                p->dx[tu * AT + (size_t)m] = xb->d;
                for (int j = 0; j < 8; j++) memcpy(a + (size_t)j * AT * 32, xb->qs + 32 * j, 32);
                if (kind < 5)
                    for (int k = 0; k < 4; k++) {
                        const int32_t e = xb->bsums[4 * k] + xb->bsums[4 * k + 1];
                        const int32_t o = xb->bsums[4 * k + 2] + xb->bsums[4 * k + 3];
                        cx[m * 4 + k] = (int32_t)((uint32_t)(uint16_t)e | (uint32_t)(uint16_t)o << 16);
                    }
            }
        }
}

/* Sub-unit s of the chunk (unit s / subs, sub-block s % subs): its B tile
 * (Q8D's: the panel block's quants, unsigned, as they are). */
ALWAYS_INLINE const unsigned char *b_tile(const int kind, const unsigned char *pw, const unsigned char *ub,
                                          int64_t s) {
    const int64_t b = s / subs(kind), j = s % subs(kind);
    if (kind == Q8D) return pw + (size_t)b * pan_block(0);
    if (kind < 3) return ub + (size_t)b * UL + 64;
    return ub + (size_t)b * unit_bytes(kind) + (size_t)j * 512;
}

/* Adds sub-unit s's stored products c (16 tokens x 16 rows) into acc, as
 * the VNNI tile does; dx, cx: the tile's at the chunk's first unit. */
ALWAYS_INLINE void scale(const int kind, const float *dx, const int32_t *cx, const unsigned char *pw,
                         const unsigned char *ub, int64_t s, const int32_t *c, __m512 acc[AT]) {
    const int64_t b = s / subs(kind), j = s % subs(kind);
    const unsigned char *u = ub + (size_t)b * unit_bytes(kind);
    dx += b * AT;
    cx += b * cx_per_unit(kind);
    if (kind == Q8D) { /* the excess taken off in int32, exact: pan_tile's integer */
        const unsigned char *d = pw + (size_t)b * pan_block(0) + pan_qbytes(0);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d));
#pragma GCC unroll 16
        for (int m = 0; m < AT; m++) {
            const __m512i is = _mm512_add_epi32(_mm512_load_si512(c + 16 * m), _mm512_set1_epi32(cx[m]));
            acc[m] = _mm512_add_ps(acc[m],
                                   _mm512_mul_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dw, _mm512_set1_ps(dx[m]))));
        }
        return;
    }
    if (kind < 3) {
        const __m512 dw = _mm512_load_ps(u);
#pragma GCC unroll 16
        for (int m = 0; m < AT; m++) {
            const __m512i is = _mm512_load_si512(c + 16 * m);
            acc[m] = _mm512_add_ps(acc[m], _mm512_mul_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dw, _mm512_set1_ps(dx[m]))));
        }
        return;
    }
    const __m512 sj = _mm512_load_ps(u + (kind < 5 ? UK_S : U6_S) + 64 * (size_t)j);
#pragma GCC unroll 16
    for (int m = 0; m < AT; m++) {
        const __m512i is = _mm512_load_si512(c + 16 * m);
        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(sj, _mm512_set1_ps(dx[m])), acc[m]);
    }
    if (kind == 5 || j != 7) return;
    /* the super-block's mins, after its 8 sub-blocks (kpan_tile's order) */
    const __m512 dmn = _mm512_load_ps(u + UK_DMIN);
    const __m512i m0 = _mm512_load_si512(u + UK_MN), m1 = _mm512_load_si512(u + UK_MN + 64);
    const __m512i m2 = _mm512_load_si512(u + UK_MN + 128), m3 = _mm512_load_si512(u + UK_MN + 192);
#pragma GCC unroll 16
    for (int m = 0; m < AT; m++) {
        const int32_t *w = cx + 4 * m;
        __m512i im = _mm512_dpwssd_epi32(_mm512_setzero_si512(), m0, _mm512_set1_epi32(w[0]));
        im = _mm512_dpwssd_epi32(im, m1, _mm512_set1_epi32(w[1]));
        im = _mm512_dpwssd_epi32(im, m2, _mm512_set1_epi32(w[2]));
        im = _mm512_dpwssd_epi32(im, m3, _mm512_set1_epi32(w[3]));
        acc[m] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(im), _mm512_mul_ps(dmn, _mm512_set1_ps(dx[m])), acc[m]);
    }
}

/* Sub-unit s's product into C tile c (A tile a, B tile bt), and the
 * store of C tile c to cb[c]. */
#define AMX_DP(c, a, bt, s)                                        \
    do {                                                           \
        _tile_zero(c);                                             \
        _tile_loadd(a, a0 + (size_t)((s) / (subs(kind) / asubs(kind))) * 512, 32); \
        _tile_loadd(bt, b_tile(kind, pw, ub, s), 64);              \
        if (kind == 3 || kind == 4 || kind == Q8D)                 \
            _tile_dpbsud(c, a, bt);                                \
        else _tile_dpbssd(c, a, bt);                               \
    } while (0)
/* sub-unit s on C tile s % 4, A and B tiles s % 2 */
#define AMX_DP_RING(s)                                             \
    do {                                                           \
        switch ((s) & 3) {                                         \
        case 0: AMX_DP(0, 4, 6, s); break;                         \
        case 1: AMX_DP(1, 5, 7, s); break;                         \
        case 2: AMX_DP(2, 4, 6, s); break;                         \
        default: AMX_DP(3, 5, 7, s); break;                        \
        }                                                          \
    } while (0)
#define AMX_STORE_RING(s)                                          \
    do {                                                           \
        switch ((s) & 3) {                                         \
        case 0: _tile_stored(0, cb[0], 64); break;                 \
        case 1: _tile_stored(1, cb[1], 64); break;                 \
        case 2: _tile_stored(2, cb[2], 64); break;                 \
        default: _tile_stored(3, cb[3], 64); break;                \
        }                                                          \
    } while (0)

/* Token tile T x one panel's chunk (units [u0, u0 + nu): pw, ub) into acc.
 * A tile product takes tens of cycles to complete, and a tile store waits
 * for it, so the products run three sub-units ahead of their scaling and
 * their stores one (four C tiles in a ring). */
ALWAYS_INLINE void tile_chunk(const int kind, const apack_t *p, int64_t T, int64_t u0, const unsigned char *pw,
                              const unsigned char *ub, int64_t nu, __m512 acc[AT]) {
    _Alignas(64) int32_t cb[4][CB / 4];
    const unsigned char *a0 = p->a + (size_t)(T * p->ns + u0 * asubs(kind)) * 512;
    const float *dx = p->dx + (size_t)(T * p->nb + u0) * AT;
    const int32_t *cx = p->cx + (size_t)(T * p->nb + u0) * (size_t)cx_per_unit(kind);
    const int64_t ns = nu * subs(kind);
    for (int64_t s = 0; s < 3 && s < ns; s++) AMX_DP_RING(s);
    AMX_STORE_RING(0);
    for (int64_t s = 0; s < ns; s++) {
        /* Q8D's B tiles come from the panels themselves, at a small batch
         * from DRAM: the first token tile prefetches them (tile loads wait
         * for their lines), Q8D_PF bytes ahead as AVX-512's panels do */
        if (kind == Q8D && T == 0)
            for (size_t o = 0; o < pan_block(0); o += 64)
                _mm_prefetch((const char *)pw + (size_t)s * pan_block(0) + Q8D_PF + o, _MM_HINT_T0);
        if (s + 1 < ns) AMX_STORE_RING(s + 1);
        if (s + 3 < ns) AMX_DP_RING(s + 3);
        scale(kind, dx, cx, pw, ub, s, cb[s & 3], acc);
    }
}

/* Rows [r0, r1) x tokens [0, n_tok) in tiles of 16 (nt of them, the last
 * perhaps padded): panel by panel, chunk by chunk (unpacked once, then
 * every token tile passes). */
ALWAYS_INLINE void amx_panels(const int kind, const qc_tensor_t *t, const apack_t *ap, unsigned char *ub, int nt,
                              int n_tok, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = ap->nb, ch = chunk_units(kind);
    const size_t pstride = (size_t)nb * panel_unit(kind);
    for (int64_t p = r0 - r0 % QC_PR; p < r1; p += QC_PR) {
        const int lo = p < r0 ? (int)(r0 - p) : 0, hi = p + QC_PR > r1 ? (int)(r1 - p) : QC_PR;
        const __mmask16 mask = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
        const unsigned char *panel = (const unsigned char *)t->panel + (size_t)(p / QC_PR) * pstride;
        for (int64_t u0 = 0; u0 < nb; u0 += ch) {
            const int64_t nu = nb - u0 < ch ? nb - u0 : ch;
            const unsigned char *pw = panel + (size_t)u0 * panel_unit(kind);
            unpack(kind, pw, nu, ub);
            for (int64_t T = 0; T < nt / AT; T++) {
                float *yo = y + (size_t)(T * AT) * (size_t)ldy + p;
                const int rows = n_tok - T * AT < AT ? (int)(n_tok - T * AT) : AT; /* the padding not kept */
                __m512 acc[AT];
#pragma GCC unroll 16
                for (int m = 0; m < AT; m++)
                    acc[m] = u0 && m < rows ? _mm512_maskz_loadu_ps(mask, yo + (size_t)m * (size_t)ldy)
                                            : _mm512_setzero_ps();
                tile_chunk(kind, ap, T, u0, pw, ub, nu, acc);
#pragma GCC unroll 16
                for (int m = 0; m < AT; m++)
                    if (m < rows) _mm512_mask_storeu_ps(yo + (size_t)m * (size_t)ldy, mask, acc[m]);
            }
        }
    }
}

/* Tokens [0, n_tok) in nt / 16 tiles (nt >= n_tok, a multiple of 16). */
ALWAYS_INLINE int amx_kind_run(const int kind, const qc_tensor_t *t, const void *act, int nt, int n_tok, float *y,
                               int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = t->cols / (legacy(kind) ? QC_QK : QC_QK_K);
    /* the unpacked panel chunk first (UB_BYTES, 64-byte aligned), then the pack */
    unsigned char *buf = scratch_get(UB_BYTES + pack_bytes(kind, nt, nb));
    if (!buf) return 0;
    apack_t ap;
    pack(kind, act, (size_t)nb * act_unit(kind), nt, n_tok, nb, buf + UB_BYTES, &ap);
    amx_panels(kind, t, &ap, buf, nt, n_tok, y, ldy, r0, r1);
    return 1;
}

/* A call of up to Q8D_MAX tokens reads Q8_0's panels as they are (Q8D:
 * the excess corrected per row, a vector addition, where a larger call
 * repays unpacking the chunk once for all its tiles); tokens left over
 * after the whole tiles are padded to one more tile when there are at
 * least PAD_MIN of them (a tile costs about what 12 tokens cost on VNNI).
 * Q6_K's tiles, half zero, are no faster than VNNI, and slower in calls
 * of fewer than Q6_MIN tokens, which stay there. All three measured with
 * build/kernels_bench --tokens (bench/kernels_bench.c). */
enum { Q8D_MAX = 48, PAD_MIN = 12, Q6_MIN = 64 };

static void amx_matmul(const qc_tensor_t *t, const void *act, int n_tok, float *y, int64_t ldy, int64_t r0,
                       int64_t r1) {
    const qc_panel_ops_t *vnni = qc_level_avx512->panel;
    const int kind = amx_kind(t->dtype);
    int nt = kind == 5 && n_tok < Q6_MIN ? 0 : (n_tok + AT - PAD_MIN) / AT * AT; /* tiles, the last perhaps padded */
    const int na = nt < n_tok ? nt : n_tok;    /* the tokens they hold */
    if (kind >= 0 && nt > 0) {
        if (!tiles_configured) tiles_configure();
        int done;
        switch (kind) {
        case 0:
            done = n_tok <= Q8D_MAX ? amx_kind_run(Q8D, t, act, nt, na, y, ldy, r0, r1)
                                    : amx_kind_run(0, t, act, nt, na, y, ldy, r0, r1);
            break;
        case 1: done = amx_kind_run(1, t, act, nt, na, y, ldy, r0, r1); break;
        case 2: done = amx_kind_run(2, t, act, nt, na, y, ldy, r0, r1); break;
        case 3: done = amx_kind_run(3, t, act, nt, na, y, ldy, r0, r1); break;
        case 4: done = amx_kind_run(4, t, act, nt, na, y, ldy, r0, r1); break;
        default: done = amx_kind_run(5, t, act, nt, na, y, ldy, r0, r1); break;
        }
        nt = done ? na : 0; /* no memory for the pack: VNNI does it all */
    } else {
        nt = 0;
    }
    if (nt < n_tok) {
        const size_t xs = (size_t)(t->cols / (kind >= 0 && kind < 3 ? QC_QK : QC_QK_K)) * act_unit(kind < 0 ? 3 : kind);
        vnni->matmul(t, (const unsigned char *)act + (size_t)nt * xs, n_tok - nt, y + (size_t)nt * (size_t)ldy, ldy,
                     r0, r1);
    }
}

/* AVX-512's panels, made and read back by its own functions. */
static size_t amx_panel_bytes(const qc_tensor_t *t) { return qc_level_avx512->panel->bytes(t); }
static void amx_panel_make(const qc_tensor_t *t, void *out, int64_t p0, int64_t p1) {
    qc_level_avx512->panel->make(t, out, p0, p1);
}
static void amx_panel_row(const qc_tensor_t *t, int64_t r, float *dst) { qc_level_avx512->panel->row(t, r, dst); }

static const qc_panel_ops_t amx_panel = {QC_PR, amx_panel_bytes, amx_panel_make, amx_matmul, amx_panel_row};

static qc_kernel_set_t amx_set;
const qc_kernel_set_t *const qc_level_amx = &amx_set;

void qc_amx_init(void) {
    amx_set = *qc_level_avx512;
    amx_set.panel = &amx_panel;
}

#else /* built without the AMX flags, or for another architecture: never selected */

const qc_kernel_set_t *const qc_level_amx = NULL;
void qc_amx_init(void) {}

#endif
