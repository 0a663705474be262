/* test_kernels.c — weight formats and matrix kernels: half conversion and
 * quantization bit for bit against hand-worked cases, dequantization error
 * bounds, activation quantization identical at every level, and every SIMD
 * level's qc_matmul against the scalar reference (itself checked against a
 * double-precision product) over weight types, token counts, row ranges,
 * row lengths and misaligned data, for every GGUF block type too (random
 * blocks, against ggml's dot products in quants.c and a double-precision
 * product); and the one matrix-product driver's walk
 * (row blocks, chunks, token tiles, edges, prefetch) with a test level. */
#include "engine/kernels_impl.h"
#include "engine/quants.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ==== helpers ==== */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) */
static float rng_unit(void) { return (float)((double)(rng_next() >> 11) * 0x1.0p-52 - 1.0); }

/* The SIMD levels this CPU runs: those of the build's architecture (x86-64
 * AVX2, AVX-512; ARM64 NEON, dot product, i8mm) up to the CPU's best. */
#define FOR_SIMD_LEVELS(l)                          \
    for (int l = QC_CPU_SCALAR + 1; l < QC_CPU_LEVELS; l++) \
        if (qc_cpu_has((qc_cpu_t)l))
#define level_name(l) qc_cpu_name((qc_cpu_t)(l))

/* The ARM levels scale each block's exact integer dot as the scalar tile
 * does, so their quantized products are the scalar ones bit for bit. */
static int bit_exact_quant(int l) { return l >= QC_CPU_NEON; }

/* ==== SwiGLU ==== */

/* a[0, n) equal b's bit for bit, NaN equal to any NaN: which operand's NaN
 * an operation returns (its sign) is the compiler's order of a commutative
 * product, which differs between -O1 and -O2. */
static int same_floats(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!(isnan(a[i]) && isnan(b[i])) && memcmp(&a[i], &b[i], sizeof(float))) return 0;
    return 1;
}

/* Every level's swiglu against qc_silu(g) * u, bit for bit (random values
 * over many exponents, both signs, zeros, infinities, NaN, values past
 * qc_exp_neg's range; lengths off the vector widths; out = g in place),
 * and qc_silu itself against silu in double precision. */
static void test_swiglu(void) {
    enum { N = 4096 + 13 };
    float *g = malloc(sizeof(float) * N), *u = malloc(sizeof(float) * N), *want = malloc(sizeof(float) * N),
          *got = malloc(sizeof(float) * N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        uint32_t b = (uint32_t)rng_next();
        b = (b & 0x807fffffu) | (uint32_t)(100 + i % 40) << 23; /* |g| from 2^-27 to 2^12 */
        if (i % 97 == 1) b = (b & 0x80000000u) | 0x7f800000u;    /* inf */
        if (i % 89 == 3) b = (b & 0x80000000u);                  /* zeros */
        if (i % 83 == 5) b = 0x7fc00000u;                        /* NaN */
        memcpy(&g[i], &b, 4);
        if (i % 61 == 7) g[i] = (i % 2 ? 1 : -1) * (87 + (float)(i % 13)); /* around qc_exp_neg's -87 */
        u[i] = rng_unit() * 4;
        want[i] = qc_silu(g[i]) * u[i];
        if (isfinite(g[i]) && fabsf(g[i]) < 80) {
            const double x = g[i], e = x / (1 + exp(-x)), r = fabs((double)qc_silu(g[i]) - e) / fmax(fabs(e), 1e-30);
            if (r > worst) worst = r;
        }
    }
    CHECK(worst < 8 * 0x1p-24, "qc_silu: relative error %.3g against double precision", worst);
    int runs = 0;
    FOR_SIMD_LEVELS(l) {
        const qc_kernel_set_t *k = qc_kernels_for((qc_cpu_t)l);
        if (!k->swiglu) continue;
        for (int n = N; n >= N - 20; n -= 7) {
            memcpy(got, g, sizeof(float) * N);
            k->swiglu(got, u, got, n);
            CHECK(same_floats(got, want, n), "swiglu %s n %d: not bit-identical to qc_silu",
                  level_name(l), n);
            runs++;
        }
    }
    qc_swiglu_row(g, u, got, N);
    CHECK(same_floats(got, want, N), "qc_swiglu_row differs from qc_silu");
    printf("test_kernels: swiglu: %d level runs against qc_silu (its error against double %.2g)\n", runs, worst);
    free(g), free(u), free(want), free(got);
}

/* ==== half precision ==== */

/* Every level's f16_row against qc_f32_to_f16, bit for bit: the cases
 * below, every exponent with random mantissas and signs, NaNs with
 * payloads, infinities, subnormals; lengths off the vector widths. */
static void test_f16_row(void) {
    enum { N = 4096 + 13 };
    float *x = malloc(sizeof(float) * N);
    uint16_t *want = malloc(2 * N), *got = malloc(2 * N);
    for (int i = 0; i < N; i++) {
        uint32_t u = (uint32_t)rng_next();
        if (i % 7 == 0) u = (u & 0x807fffffu) | (uint32_t)(100 + i % 60) << 23; /* around half's range */
        if (i % 97 == 1) u = (u & 0x80000000u) | 0x7f800000u | (uint32_t)(1 + i);  /* NaN, a payload */
        if (i % 101 == 2) u = (u & 0x80000000u) | 0x7f800000u;                    /* inf */
        memcpy(&x[i], &u, 4);
        want[i] = qc_f32_to_f16(x[i]);
    }
    int runs = 0;
    FOR_SIMD_LEVELS(l) {
        const qc_kernel_set_t *k = qc_kernels_for((qc_cpu_t)l);
        if (!k->f16_row) continue;
        for (int n = N; n >= N - 20; n -= 7) {
            memset(got, 0, 2 * N);
            k->f16_row(x, got, n);
            int differ = 0;
            for (int i = 0; i < n; i++) differ += got[i] != want[i];
            CHECK(!differ, "f16_row %s n %d: %d values differ from qc_f32_to_f16", level_name(l), n, differ);
            runs++;
        }
    }
    memset(got, 0, 2 * N);
    qc_f32_to_f16_row(x, got, N);
    CHECK(!memcmp(got, want, 2 * N), "qc_f32_to_f16_row differs from qc_f32_to_f16");
    printf("test_kernels: f16_row: %d level runs against qc_f32_to_f16\n", runs);
    free(x), free(want), free(got);
}

static void test_f16(void) {
    static const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {0.5f, 0x3800},
        {0.1f, 0x2e66},
        {0.33333334f, 0x3555},
        {65504.0f, 0x7bff},             /* largest half */
        {65519.996f, 0x7bff},           /* just under the tie with 65536 */
        {65520.0f, 0x7c00},             /* tie: rounds to even, which is inf */
        {1e6f, 0x7c00},                 /* overflow */
        {-1e6f, 0xfc00},
        {1.0f + 0x1.0p-11f, 0x3c00},    /* tie between 0x3c00 and 0x3c01: even */
        {1.0f + 0x3.0p-11f, 0x3c02},    /* tie between 0x3c01 and 0x3c02: even */
        {1.0f + 0x1.0p-11f + 0x1.0p-20f, 0x3c01},
        {0x1.0p-14f, 0x0400},           /* smallest normal */
        {0x1.0p-24f, 0x0001},           /* smallest subnormal */
        {0x1.0p-25f, 0x0000},           /* tie between 0 and 1 ulp: even */
        {0x3.0p-25f, 0x0002},           /* tie between 1 and 2 ulps: even */
        {0x1.0p-25f + 0x1.0p-40f, 0x0001},
        {1023.5f * 0x1.0p-24f, 0x0400}, /* tie between largest subnormal and smallest normal */
        {1e-10f, 0x0000},               /* underflow */
        {-0x1.0p-24f, 0x8001},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = qc_f32_to_f16(cases[i].f);
        CHECK(h == cases[i].h, "f32_to_f16(%a) = 0x%04x, want 0x%04x", (double)cases[i].f, h, cases[i].h);
    }
    CHECK(qc_f32_to_f16(INFINITY) == 0x7c00, "f16(inf)");
    CHECK(qc_f32_to_f16(-INFINITY) == 0xfc00, "f16(-inf)");
    CHECK((qc_f32_to_f16(NAN) & 0x7fff) == 0x7e00, "f16(nan) = 0x%04x", qc_f32_to_f16(NAN));
    /* every non-NaN half survives half -> float -> half */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        if (qc_f32_to_f16(qc_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);
}

/* ==== quantization, hand-worked ==== */

static void test_quantize_q8_0(void) {
    float x[4 * 32] = {0};
    /* block 0: amax 127, so d = 1 and qs = roundf(x) (halves away from 0) */
    const float b0[10] = {127.0f, -127.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49999997f, 100.4f, -100.6f};
    const int8_t q0[10] = {127, -127, 1, -1, 2, 3, -3, 0, 100, -101};
    memcpy(x, b0, sizeof b0);
    for (int j = 10; j < 32; j++) x[j] = (float)(j - 16);
    /* block 1: amax 63.5, d = 0.5, id = 2 */
    x[32] = 63.5f;
    x[33] = 0.25f;  /* 0.5 -> 1 */
    x[34] = -0.75f; /* -1.5 -> -2 */
    x[35] = 10.1f;  /* 20.2 -> 20 */
    /* block 2: all zeros: d = 0, id = 0 */
    /* block 3: amax 1, d = 1/127 -> half 0x2008 */
    x[96] = 1.0f;
    x[97] = -1.0f;
    x[98] = 0.3f; /* 38.1 */
    qc_block_q8_0 y[4];
    memset(y, 0x55, sizeof y);
    qc_quantize_row(QC_DTYPE_Q8_0, x, y, 4 * 32);
    CHECK(y[0].d == 0x3c00, "q8_0 block 0 d = 0x%04x", y[0].d);
    for (int j = 0; j < 32; j++) {
        int want = j < 10 ? q0[j] : j - 16;
        CHECK(y[0].qs[j] == want, "q8_0 block 0 qs[%d] = %d, want %d", j, y[0].qs[j], want);
    }
    CHECK(y[1].d == 0x3800, "q8_0 block 1 d = 0x%04x", y[1].d);
    CHECK(y[1].qs[0] == 127 && y[1].qs[1] == 1 && y[1].qs[2] == -2 && y[1].qs[3] == 20 && y[1].qs[4] == 0,
          "q8_0 block 1 qs = %d %d %d %d %d", y[1].qs[0], y[1].qs[1], y[1].qs[2], y[1].qs[3], y[1].qs[4]);
    int zero = y[2].d == 0;
    for (int j = 0; j < 32; j++) zero &= y[2].qs[j] == 0;
    CHECK(zero, "q8_0 zero block");
    CHECK(y[3].d == 0x2008, "q8_0 block 3 d = 0x%04x", y[3].d);
    CHECK(y[3].qs[0] == 127 && y[3].qs[1] == -127 && y[3].qs[2] == 38 && y[3].qs[3] == 0, "q8_0 block 3 qs");
}

static void test_quantize_q4_0(void) {
    float x[3 * 32] = {0};
    /* block 0: the largest magnitude is -8, so d = 1, id = 1, q = (int)(x + 8.5) */
    x[0] = -8.0f;  /* 0.5 -> 0 */
    x[1] = 7.0f;   /* 15.5 -> 15 */
    x[2] = 0.0f;   /* 8 */
    x[3] = 3.4f;   /* 11.9 -> 11 */
    x[4] = -3.6f;  /* 4.9 -> 4 */
    x[5] = 7.6f;   /* 16.1 -> 16, clamped to 15 */
    x[16] = -0.5f; /* 8.0 -> 8 */
    x[17] = 0.49f; /* 8.99 -> 8 */
    x[18] = -7.9f; /* 0.6 -> 0 */
    /* block 1: largest is +4, d = -0.5, id = -2: x = -4 gives 16.5 -> 15 */
    x[32] = 4.0f;
    x[33] = -4.0f;
    x[34] = 1.0f; /* -2 + 8.5 = 6.5 -> 6 */
    /* block 2: |-2| == |2|: the first one sets the sign, d = 0.25 */
    x[64] = -2.0f;
    x[65] = 2.0f;
    qc_block_q4_0 y[3];
    memset(y, 0x55, sizeof y);
    qc_quantize_row(QC_DTYPE_Q4_0, x, y, 3 * 32);
    /* qs[j] = element j (low nibble) | element j + 16 (high nibble) */
    const uint8_t want0[16] = {0x80, 0x8f, 0x08, 0x8b, 0x84, 0x8f, 0x88, 0x88,
                               0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};
    const uint8_t want1[16] = {0x80, 0x8f, 0x86, 0x88, 0x88, 0x88, 0x88, 0x88,
                               0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};
    const uint8_t want2[16] = {0x80, 0x8f, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
                               0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};
    CHECK(y[0].d == 0x3c00, "q4_0 block 0 d = 0x%04x", y[0].d);
    CHECK(!memcmp(y[0].qs, want0, 16), "q4_0 block 0 nibbles");
    CHECK(y[1].d == 0xb800, "q4_0 block 1 d = 0x%04x", y[1].d);
    CHECK(!memcmp(y[1].qs, want1, 16), "q4_0 block 1 nibbles");
    CHECK(y[2].d == 0x3400, "q4_0 block 2 d = 0x%04x", y[2].d);
    CHECK(!memcmp(y[2].qs, want2, 16), "q4_0 block 2 nibbles");
    /* dequantization reads the same layout back */
    qc_tensor_t t = {.data = y, .dtype = QC_DTYPE_Q4_0, .rows = 1, .cols = 96};
    float d[96];
    qc_dequantize_row(&t, 0, d);
    CHECK(d[0] == -8.0f && d[1] == 7.0f && d[3] == 3.0f && d[5] == 7.0f && d[16] == 0.0f && d[18] == -8.0f,
          "q4_0 dequant block 0: %g %g %g %g %g %g", d[0], d[1], d[3], d[5], d[16], d[18]);
    CHECK(d[32] == 4.0f && d[33] == -3.5f && d[34] == 1.0f, "q4_0 dequant block 1: %g %g %g", d[32], d[33], d[34]);
}

/* Random rows: dequantize(quantize(x)) stays within the bound of each
 * format. With d the exact F32 scale of the block:
 *   Q8_0: |x - q d| <= |d| / 2.
 *   Q4_0: |x - (q - 8) d| <= |d| / 2, except values whose x / d rounds to
 *         +8, which the clamp to 15 leaves up to |d| away.
 * The stored scale is fp16(d), and the dequantized value q * fp16(d) is
 * within 127 |d - fp16(d)| more. */
static void test_roundtrip(void) {
    enum { N = 32 * 64 };
    float x[N], y[N];
    qc_block_q8_0 q8[N / 32];
    qc_block_q4_0 q4[N / 32];
    for (int i = 0; i < N; i++) x[i] = rng_unit() * (i % 7 == 0 ? 50.0f : 1.0f) * (float)(1 + i / 512);
    int bad8 = 0, bad4 = 0, clamped = 0;
    qc_quantize_row(QC_DTYPE_Q8_0, x, q8, N);
    qc_tensor_t t8 = {.data = q8, .dtype = QC_DTYPE_Q8_0, .rows = 1, .cols = N};
    qc_dequantize_row(&t8, 0, y);
    for (int b = 0; b < N / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        const float d = amax / 127.0f, d16 = qc_f16_to_f32(q8[b].d);
        bad8 += q8[b].d != qc_f32_to_f16(d);
        for (int j = 0; j < 32; j++) {
            const float xi = x[b * 32 + j];
            bad8 += fabsf(xi - (float)q8[b].qs[j] * d) > d / 2 * (1 + 1e-6f);
            bad8 += fabsf(xi - y[b * 32 + j]) > d / 2 * (1 + 1e-6f) + 127 * fabsf(d - d16);
            bad8 += y[b * 32 + j] != (float)q8[b].qs[j] * d16;
        }
    }
    CHECK(bad8 == 0, "q8_0 round trip: %d elements out of bounds", bad8);

    qc_quantize_row(QC_DTYPE_Q4_0, x, q4, N);
    qc_tensor_t t4 = {.data = q4, .dtype = QC_DTYPE_Q4_0, .rows = 1, .cols = N};
    qc_dequantize_row(&t4, 0, y);
    for (int b = 0; b < N / 32; b++) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[b * 32 + j])) {
                amax = fabsf(x[b * 32 + j]);
                max = x[b * 32 + j];
            }
        const float d = max / -8.0f, d16 = qc_f16_to_f32(q4[b].d);
        bad4 += q4[b].d != qc_f32_to_f16(d);
        for (int j = 0; j < 32; j++) {
            const float xi = x[b * 32 + j];
            const int q = j < 16 ? q4[b].qs[j] & 15 : q4[b].qs[j - 16] >> 4;
            const int clamp = xi / d > 7.5f;
            clamped += clamp;
            const float bound = fabsf(d) * (clamp ? 1.0f : 0.5f) * (1 + 1e-6f);
            bad4 += fabsf(xi - (float)(q - 8) * d) > bound;
            bad4 += fabsf(xi - y[b * 32 + j]) > bound + 8 * fabsf(d - d16);
        }
    }
    CHECK(bad4 == 0, "q4_0 round trip: %d elements out of bounds", bad4);
    CHECK(clamped > 0, "q4_0 round trip exercised no clamped value");
}

/* ==== activation quantization ==== */

static void test_act_quantize(void) {
    /* hand-worked: amax 127 makes d = 1 and id = 1, so qs = x rounded to
     * nearest, ties to even (llama.cpp's x86 activation quantizer) */
    float x[64] = {127.0f, 0.5f, -0.5f, 2.5f, -1.5f, 0.49999997f, -126.5f, 3.0f};
    qc_block_q8_act a[2];
    qc_act_row_scalar(x, 64, a);
    const int8_t want[8] = {127, 0, 0, 2, -2, 0, -126, 3};
    CHECK(a[0].d == 1.0f && !memcmp(a[0].qs, want, 8), "act block: d %g qs %d %d %d %d %d %d %d %d", a[0].d,
          a[0].qs[0], a[0].qs[1], a[0].qs[2], a[0].qs[3], a[0].qs[4], a[0].qs[5], a[0].qs[6], a[0].qs[7]);
    CHECK(a[0].sum == 127 + 0 + 0 + 2 - 2 + 0 - 126 + 3, "act block sum %d", a[0].sum);
    /* id = 127 / amax, not 1 / (amax / 127): amax 22, x 11 gives
     * 11 * (127 / 22) = 63.5000038 in F32 (64), where 11 * (1 / (22 / 127))
     * is 63.4999962 (63) */
    float y[32] = {22.0f, 11.0f};
    qc_act_row_scalar(y, 32, a);
    CHECK(a[0].qs[0] == 127 && a[0].qs[1] == 64, "act block: id = 127 / amax (%d)", a[0].qs[1]);
    CHECK(a[1].d == 0.0f && a[1].sum == 0, "act zero block");

    /* every level gives the same bytes (ties included: rows scaled so that
     * d = 1 and the values sit on .5) */
    enum { COLS = 32 * 40 };
    static float xr[COLS];
    static qc_block_q8_act ref[COLS / 32], got[COLS / 32];
    for (int i = 0; i < COLS; i++) {
        int b = i / 32;
        if (b % 4 == 0) xr[i] = (float)((int)(rng_next() % 254) - 127) + 0.5f * (float)(rng_next() % 2);
        else if (b % 4 == 1) xr[i] = 0.0f;
        else xr[i] = rng_unit() * (float)(b + 1) * 0.37f;
        if (b % 4 == 0 && i % 32 == 0) xr[i] = 127.0f;
    }
    qc_act_row_scalar(xr, COLS, ref);
    FOR_SIMD_LEVELS(l) {
        memset(got, 0x55, sizeof got);
        qc_kernels_for((qc_cpu_t)l)->act_row(xr, COLS, got);
        CHECK(!memcmp(ref, got, sizeof ref), "act quantize %s differs from scalar", level_name(l));
    }
    /* the Q8_K activations (K-quant weights): a level's own quantizer gives
     * the reference's bytes; blocks of ties (values on .5 after scaling by
     * 127 / 127), zeros, a largest magnitude reached twice with both signs
     * (the first wins), infinities, NaNs, and plain random values */
    {
        enum { KB = 12, KC = 256 * KB };
        static float xk[KC];
        static qc_block_q8_K kref[KB], kgot[KB];
        for (int i = 0; i < KC; i++) {
            int b = i / 256;
            xk[i] = b % 6 == 0 ? (float)((int)(rng_next() % 254) - 127) + 0.5f * (float)(rng_next() % 2)
                    : b % 6 == 1 ? 0.0f
                                 : rng_unit() * (float)(b + 1) * 0.37f;
        }
        xk[0] = 127.0f;                             /* ties block: d = -1 */
        xk[2 * 256 + 7] = 50, xk[2 * 256 + 9] = -50; /* first of equal magnitudes */
        xk[3 * 256 + 11] = -50, xk[3 * 256 + 3] = 50;
        xk[4 * 256 + 5] = INFINITY, xk[5 * 256 + 200] = -INFINITY;
        xk[8 * 256 + 17] = NAN, xk[9 * 256] = NAN, xk[9 * 256 + 255] = -NAN;
        for (int i = 10 * 256; i < 11 * 256; i++) xk[i] = NAN; /* all NaN: amax 0 */
        qc_qtype(QC_DTYPE_Q8_K)->quantize(xk, kref, KC);
        int any = 0;
        FOR_SIMD_LEVELS(l) {
            if (!qc_kernels_for((qc_cpu_t)l)->act_row_k) continue;
            any = 1;
            memset(kgot, 0x55, sizeof kgot);
            qc_kernels_for((qc_cpu_t)l)->act_row_k(xk, KC, kgot);
            for (int b = 0; b < KB; b++)
                CHECK(!memcmp(&kref[b], &kgot[b], sizeof kref[b]), "Q8_K act quantize %s block %d differs from the reference",
                      level_name(l), b);
        }
        if (!any) SKIP("Q8_K act quantize: no level of this CPU has its own (the reference serves)");
    }
    /* qc_act_quantize lays tokens out [n_tok][cols/32] and writes only [t0, t1) */
    static qc_block_q8_act act[3 * COLS / 32];
    memset(act, 0x55, sizeof act);
    CHECK(qc_act_bytes(QC_DTYPE_Q8_0, 3, COLS) == sizeof act, "qc_act_bytes");
    CHECK(qc_act_bytes(QC_DTYPE_BF16, 3, COLS) == 0, "qc_act_bytes float");
    float *x3 = malloc(3 * COLS * sizeof(float));
    for (int t = 0; t < 3; t++) memcpy(x3 + t * COLS, xr, sizeof xr);
    qc_act_quantize(QC_DTYPE_Q4_0, x3, COLS, 1, 3, act);
    CHECK(!memcmp(act + COLS / 32, ref, sizeof ref) && !memcmp(act + 2 * COLS / 32, ref, sizeof ref),
          "qc_act_quantize rows");
    const unsigned char *p = (const unsigned char *)act;
    int untouched = 1;
    for (size_t i = 0; i < sizeof ref; i++) untouched &= p[i] == 0x55;
    CHECK(untouched, "qc_act_quantize wrote outside [t0, t1)");
    free(x3);
}

/* ==== matrix products ==== */

typedef struct {
    qc_dtype_t dt;
    int64_t rows, cols;
    void *buf;     /* allocation */
    qc_tensor_t w; /* data misaligned inside buf */
    float *deq;    /* [rows][cols] dequantized */
    float *dw;     /* [rows][cols/32] block scales (quantized types) */
} wmat_t;

static void wmat_make(wmat_t *m, qc_dtype_t dt, int64_t rows, int64_t cols, size_t misalign) {
    m->dt = dt;
    m->rows = rows;
    m->cols = cols;
    const size_t rb = qc_row_bytes(dt, cols);
    m->buf = aligned_alloc(64, (rb * (size_t)rows + misalign + 63) / 64 * 64);
    unsigned char *data = (unsigned char *)m->buf + misalign;
    float *row = malloc((size_t)cols * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            row[c] = rng_unit() * (c % 97 == 5 ? 8.0f : 1.0f) * (1.0f + (float)(r % 5));
        unsigned char *o = data + (size_t)r * rb;
        switch (dt) {
        case QC_DTYPE_F32: memcpy(o, row, (size_t)cols * 4); break;
        case QC_DTYPE_F16:
            for (int64_t c = 0; c < cols; c++) {
                uint16_t h = qc_f32_to_f16(row[c]);
                memcpy(o + 2 * c, &h, 2);
            }
            break;
        case QC_DTYPE_BF16:
            for (int64_t c = 0; c < cols; c++) {
                uint16_t h = qc_f32_to_bf16(row[c]);
                memcpy(o + 2 * c, &h, 2);
            }
            break;
        default: qc_quantize_row(dt, row, o, cols); break;
        }
    }
    free(row);
    m->w = (qc_tensor_t){.data = data, .dtype = dt, .rows = rows, .cols = cols};
    m->deq = malloc((size_t)(rows * cols) * sizeof(float));
    m->dw = malloc((size_t)(rows * (cols / 32 + 1)) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        qc_dequantize_row(&m->w, r, m->deq + r * cols);
        if (dt == QC_DTYPE_Q8_0 || dt == QC_DTYPE_Q4_0)
            for (int64_t b = 0; b < cols / 32; b++) {
                uint16_t h;
                memcpy(&h, data + (size_t)r * rb + (size_t)b * qc_row_bytes(dt, 32), 2);
                m->dw[r * (cols / 32) + b] = qc_f16_to_f32(h);
            }
    }
}

static void wmat_free(wmat_t *m) {
    free(m->buf);
    free(m->deq);
    free(m->dw);
}

/* Per output: the double-precision value from dequantized operands, and the
 * scale its error is measured against (see kernels_impl.h's contract). */
static void reference(const wmat_t *m, const float *x, const qc_block_q8_act *act, int n_tok, int64_t r0,
                      int64_t r1, double *exact, double *scale) {
    const int64_t n = m->cols, nb = n / 32;
    const int quant = m->dt == QC_DTYPE_Q8_0 || m->dt == QC_DTYPE_Q4_0;
    for (int t = 0; t < n_tok; t++)
        for (int64_t r = r0; r < r1; r++) {
            const float *wr = m->deq + r * n;
            double s = 0, a = 0;
            if (quant) {
                for (int64_t b = 0; b < nb; b++) {
                    const qc_block_q8_act *ab = act + t * nb + b;
                    double sx = 0;
                    for (int j = 0; j < 32; j++) {
                        double xv = (double)ab->d * ab->qs[j];
                        s += (double)wr[b * 32 + j] * xv;
                        a += fabs((double)wr[b * 32 + j] * xv);
                        sx += abs(ab->qs[j]);
                    }
                    a += 128.0 * fabs((double)m->dw[r * nb + b] * ab->d) * sx;
                }
            } else {
                for (int64_t c = 0; c < n; c++) {
                    s += (double)wr[c] * x[t * n + c];
                    a += fabs((double)wr[c] * x[t * n + c]);
                }
            }
            exact[t * (r1 - r0) + (r - r0)] = s;
            scale[t * (r1 - r0) + (r - r0)] = a + 1e-30;
        }
}

static const float SENTINEL = 12345.0f;

/* One configuration: every level (and the double reference) on rows
 * [r0, r1) of a rows x cols matrix of type dt, n_tok tokens. */
static void check_matmul(qc_dtype_t dt, int n_tok, int64_t cols, int64_t rows, int64_t r0, int64_t r1,
                         size_t misalign, int *n_levels_run) {
    wmat_t m;
    wmat_make(&m, dt, rows, cols, misalign);
    const int quant = dt == QC_DTYPE_Q8_0 || dt == QC_DTYPE_Q4_0;
    /* x misaligned by one float */
    float *xbuf = malloc(((size_t)n_tok * (size_t)cols + 1) * sizeof(float));
    float *x = xbuf + 1;
    for (int64_t i = 0; i < n_tok * cols; i++)
        x[i] = rng_unit() * (i % 61 == 3 ? 20.0f : 1.0f) * (1.0f + (float)(i / cols % 3));
    qc_block_q8_act *act = NULL;
    if (quant) {
        act = malloc(qc_act_bytes(dt, n_tok, cols));
        for (int t = 0; t < n_tok; t++) qc_act_row_scalar(x + t * cols, cols, act + t * (cols / 32));
    }
    const int64_t ldy = rows + 3, nr = r1 - r0;
    const size_t ny = (size_t)n_tok * (size_t)ldy;
    float *yref = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float));
    double *exact = malloc((size_t)(n_tok * nr) * sizeof(double));
    double *scale = malloc((size_t)(n_tok * nr) * sizeof(double));
    reference(&m, x, act, n_tok, r0, r1, exact, scale);

    for (size_t i = 0; i < ny; i++) yref[i] = SENTINEL;
    qc_matmul_level(QC_CPU_SCALAR, &m.w, x, act, n_tok, yref, ldy, r0, r1);
    /* the scalar reference against double precision */
    const double tol_ref = quant ? 1e-5 : 1e-6, tol_simd = quant ? 1e-5 : 2e-6;
    double worst = 0;
    for (int t = 0; t < n_tok; t++)
        for (int64_t r = r0; r < r1; r++) {
            double e = fabs(yref[t * ldy + r] - exact[t * nr + r - r0]) / scale[t * nr + r - r0];
            if (!(e <= worst)) worst = e;
        }
    CHECK(worst <= tol_ref, "%s scalar vs double: n_tok %d cols %lld rows [%lld,%lld): error %.3g of sum|terms|",
          qc_dtype_name(dt), n_tok, (long long)cols, (long long)r0, (long long)r1, worst);

    FOR_SIMD_LEVELS(l) {
        n_levels_run[l]++;
        for (size_t i = 0; i < ny; i++) y[i] = SENTINEL;
        qc_matmul_level((qc_cpu_t)l, &m.w, x, act, n_tok, y, ldy, r0, r1);
        double w2 = 0;
        int outside = 0, differ = 0;
        for (int t = 0; t < n_tok; t++)
            for (int64_t r = 0; r < ldy; r++) {
                const float v = y[t * ldy + r];
                if (r < r0 || r >= r1) {
                    outside += v != SENTINEL;
                    continue;
                }
                double e = fabs((double)v - yref[t * ldy + r]) / scale[t * nr + r - r0];
                if (!(e <= w2)) w2 = e;
                differ += memcmp(&v, &yref[t * ldy + r], sizeof v) != 0;
            }
        if (quant && bit_exact_quant(l))
            CHECK(!differ, "%s %s vs scalar: n_tok %d cols %lld rows [%lld,%lld): %d outputs not bit-identical",
                  qc_dtype_name(dt), level_name(l), n_tok, (long long)cols, (long long)r0, (long long)r1, differ);
        CHECK(w2 <= tol_simd && !outside,
              "%s %s vs scalar: n_tok %d cols %lld rows [%lld,%lld) misalign %zu: error %.3g of sum|terms|, "
              "%d writes outside",
              qc_dtype_name(dt), level_name(l), n_tok, (long long)cols, (long long)r0, (long long)r1, misalign, w2,
              outside);
    }
    /* the dispatching entry point is the chosen level's kernel */
    for (size_t i = 0; i < ny; i++) y[i] = SENTINEL;
    qc_matmul(&m.w, x, act, n_tok, y, ldy, r0, r1);
    float *yl = malloc(ny * sizeof(float));
    for (size_t i = 0; i < ny; i++) yl[i] = SENTINEL;
    qc_matmul_level(qc_cpu_level(), &m.w, x, act, n_tok, yl, ldy, r0, r1);
    CHECK(!memcmp(y, yl, ny * sizeof(float)), "qc_matmul differs from its level's kernel");
    free(yl);
    free(xbuf);
    free(act);
    free(yref);
    free(y);
    free(exact);
    free(scale);
    wmat_free(&m);
}

static void test_matmul(void) {
    static const qc_dtype_t types[] = {QC_DTYPE_F32, QC_DTYPE_F16, QC_DTYPE_BF16, QC_DTYPE_Q8_0, QC_DTYPE_Q4_0};
    static const int toks[] = {1, 2, 3, 4, 5, 7, 8, 13, 64};
    /* 4192 = 131 blocks: odd, and longer than the AVX-512 kernel's packed
     * chunk, so it also runs the chunked path */
    static const int64_t colss[] = {32, 64, 96, 1024, 2816, 4192};
    int n_levels_run[QC_CPU_LEVELS] = {0};
    int cfg = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const qc_dtype_t dt = types[ti];
        const int quant = dt == QC_DTYPE_Q8_0 || dt == QC_DTYPE_Q4_0;
        for (size_t ni = 0; ni < sizeof toks / sizeof toks[0]; ni++)
            for (size_t ci = 0; ci < sizeof colss / sizeof colss[0]; ci++, cfg++) {
                const int64_t cols = colss[ci];
                const int n_tok = toks[ni];
                /* rows beyond one 64-row block for short rows; ranges that
                 * start and end off the 4-row tile */
                const int64_t rows = cols <= 1024 && n_tok <= 13 ? 75 : 23;
                const int64_t r0 = rows == 75 ? 3 : 1, r1 = rows == 75 ? 74 : 22;
                const size_t misalign = quant ? (size_t)(1 + cfg % 63) : dt == QC_DTYPE_F32 ? 4 : 2;
                check_matmul(dt, n_tok, cols, rows, r0, r1, misalign, n_levels_run);
            }
        /* the whole matrix, and a single row */
        check_matmul(dt, 6, 96, 9, 0, 9, quant ? 7 : 2, n_levels_run);
        check_matmul(dt, 5, 1024, 9, 4, 5, quant ? 33 : 2, n_levels_run);
    }
    for (int l = QC_CPU_SCALAR + 1; l < QC_CPU_LEVELS; l++) {
        if (!qc_cpu_built((qc_cpu_t)l)) continue; /* another architecture's */
        if (n_levels_run[l]) printf("test_kernels: %s: %d matmul configurations checked against scalar\n",
                                    level_name(l), n_levels_run[l]);
        else SKIP("%s kernels not checked: not supported by this CPU or build", level_name(l));
    }
}

/* Non-finite values — a hostile model's NaN or inf weights, activations
 * that overflowed — quantize to in-range quants at every level, and each
 * activation block's sum is the sum of its stored quants (the Q4_0 kernels
 * subtract 8 * sum: a sum from unclamped NaN lanes overflowed there). The
 * float-to-int conversions themselves are checked by UBSan in `make debug`
 * and in the fuzz build (tests/fuzz/regressions/fuzz_gguf/). */
static void test_nonfinite(void) {
    enum { NB = 6 };
    static float x[NB * 32];
    for (int i = 0; i < NB * 32; i++) x[i] = rng_unit();
    x[0] = NAN;                                      /* a NaN among finite values */
    for (int j = 0; j < 32; j++) x[32 + j] = NAN;    /* all NaN */
    x[64 + 3] = INFINITY, x[64 + 9] = -INFINITY;     /* inf among finite values */
    x[96] = 3e38f, x[97] = -3e38f;                   /* the largest finite ones */
    x[128 + 5] = -INFINITY, x[128 + 6] = NAN;        /* both */
    for (int l = QC_CPU_SCALAR; l < QC_CPU_LEVELS; l++) {
        if (!qc_cpu_has((qc_cpu_t)l)) continue;
        qc_block_q8_act a[NB];
        qc_kernels_for((qc_cpu_t)l)->act_row(x, NB * 32, a);
        for (int b = 0; b < NB; b++) {
            int32_t sum = 0, lo = 0;
            for (int j = 0; j < 32; j++) {
                sum += a[b].qs[j];
                lo = a[b].qs[j] < lo ? a[b].qs[j] : lo;
            }
            CHECK(a[b].sum == sum && lo >= -127, "act %s block %d: sum %d of quants summing to %d (lowest %d)",
                  level_name(l), b, (int)a[b].sum, (int)sum, (int)lo);
        }
    }
    /* the weight quantizers of the load-time conversion: the finite block
     * comes out as it does alone, whatever its neighbours hold */
    static unsigned char q8[NB * QC_Q8_0_BYTES], q4[NB * QC_Q4_0_BYTES], one8[QC_Q8_0_BYTES], one4[QC_Q4_0_BYTES];
    qc_quantize_row(QC_DTYPE_Q8_0, x, q8, NB * 32);
    qc_quantize_row(QC_DTYPE_Q4_0, x, q4, NB * 32);
    qc_quantize_row(QC_DTYPE_Q8_0, x + 5 * 32, one8, 32);
    qc_quantize_row(QC_DTYPE_Q4_0, x + 5 * 32, one4, 32);
    CHECK(!memcmp(q8 + 5 * QC_Q8_0_BYTES, one8, sizeof one8) && !memcmp(q4 + 5 * QC_Q4_0_BYTES, one4, sizeof one4),
          "quantizing a finite block next to non-finite ones");
}

/* ==== the driver, with a test level ==== */

/* A level of plain C tiles with shapes no real level has (3 x 3 quantized
 * tiles reading a pack of one block per step, in chunks of a few blocks; 2 x 4
 * float tiles with a 3-row decode tile), so qc_matmul_set's walk — row blocks,
 * chunks, token tiles, edges, prefetch, the tile's indexes — is checked on any
 * CPU (the AVX-512 level, the only one that packs, may not run here). */
enum { DRV_PACK_BYTES = 3 * 4 * (int)sizeof(qc_block_q8_act) };

/* ==== the GGUF block types (quants.h) ==== */

/* Per type: where its half scales sit, and the bytes that hold quants.
 * Zeroing those gives a block whose every weight is its "offset" w0 (Q4_1's
 * m, Q4_K's -dmin * mn, Q6_K's -32 d sc, ...): the term a kernel may compute
 * apart, whose size enters the error bound. */
static const struct {
    qc_dtype_t t;
    int half[2]; /* offsets of the half scales (-1: none) */
    int q0, q1;  /* quant bytes [q0, q1) */
} gguf_types[] = {
    {QC_DTYPE_Q8_0, {0, -1}, 2, 34},   {QC_DTYPE_Q4_0, {0, -1}, 2, 18},   {QC_DTYPE_Q4_1, {0, 2}, 4, 20},    {QC_DTYPE_Q5_0, {0, -1}, 2, 22},   {QC_DTYPE_Q5_1, {0, 2}, 4, 24},
    {QC_DTYPE_Q2_K, {80, 82}, 16, 80}, {QC_DTYPE_Q3_K, {108, -1}, 0, 96}, {QC_DTYPE_Q4_K, {0, 2}, 16, 144},
    {QC_DTYPE_Q5_K, {0, 2}, 16, 176},  {QC_DTYPE_Q6_K, {208, -1}, 0, 192},
};

/* One configuration of a GGUF type: rows x cols of random blocks at
 * data + misalign, n_tok tokens quantized by qc_act_quantize, rows [r0, r1).
 * The scalar level against double precision over the dequantized operands
 * (for Q4_1/Q5_1 with the Q8_1 blocks' s as ggml uses it), every SIMD level
 * against the scalar one, each within 2 (nb + 16) u of
 * M = sum_e (|w_e| + 2 |w0_e|) |a_e| (nb blocks, u = 2^-24): the blocks'
 * scaled sums added in another order (kernels_impl.h's contract). */
static int n_panels_run[QC_CPU_LEVELS];

/* y against yref on rows [r0, r1) of n_tok tokens (ldy apart): the largest
 * difference relative to mag (per token and row of the range), the writes
 * outside the range (y holds SENTINEL there), the outputs not bit-identical. */
static void compare_out(const float *y, const float *yref, const double *mag, int n_tok, int64_t ldy, int64_t r0,
                        int64_t r1, double *worst, int *outside, int *differ) {
    const int64_t nr = r1 - r0;
    double w2 = 0;
    int out = 0, diff = 0;
    for (int t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < ldy; r++) {
            if (r < r0 || r >= r1) {
                out += y[t * ldy + r] != SENTINEL;
                continue;
            }
            const double e = fabs((double)y[t * ldy + r] - yref[t * ldy + r]) / mag[t * nr + r - r0];
            if (!(e <= w2)) w2 = e;
            diff += memcmp(&y[t * ldy + r], &yref[t * ldy + r], sizeof(float)) != 0;
        }
    *worst = w2;
    *outside = out;
    *differ = diff;
}

static void check_gguf(size_t ti, int n_tok, int64_t cols, int64_t rows, int64_t r0, int64_t r1, size_t misalign,
                       int *n_levels_run) {
    const qc_dtype_t dt = gguf_types[ti].t;
    const qc_qtype_t *q = qc_qtype(dt);
    const size_t rb = qc_row_bytes(dt, cols), bb = (size_t)q->block_bytes;
    const int64_t nb = cols / q->block;
    unsigned char *buf = malloc(rb * (size_t)rows + misalign), *data = buf + misalign;
    unsigned char *zero = malloc(rb);
    for (size_t i = 0; i < rb * (size_t)rows; i++) data[i] = (unsigned char)rng_next();
    /* Q8_0 quants are -127..127 (ggml's quantizer never writes -128, and
     * the AVX2 sign trick relies on it) */
    if (dt == QC_DTYPE_Q8_0)
        for (size_t i = 0; i < rb * (size_t)rows; i++)
            if (i % bb >= 2 && data[i] == 0x80) data[i] = 0x81;
    for (int64_t b = 0; b < rows * nb; b++)
        for (int h = 0; h < 2; h++) {
            if (gguf_types[ti].half[h] < 0) continue;
            /* a finite half of magnitude 2^-9 .. 2^-4, either sign */
            const uint64_t r = rng_next();
            const uint16_t v = (uint16_t)((r & 0x3ff) | (uint16_t)(6 + (r >> 10) % 6) << 10 | ((r >> 20) & 1) << 15);
            memcpy(data + (size_t)b * bb + gguf_types[ti].half[h], &v, 2);
        }
    const qc_tensor_t w = {.data = data, .dtype = dt, .rows = rows, .cols = cols};
    float *x = malloc((size_t)(n_tok * cols) * sizeof(float));
    for (int64_t i = 0; i < n_tok * cols; i++) x[i] = rng_unit() * (i % 61 == 3 ? 20.0f : 1.0f);
    const size_t ab = qc_act_bytes(dt, n_tok, cols);
    void *act = aligned_alloc(64, (ab + 63) / 64 * 64);
    qc_act_quantize(dt, x, cols, 0, n_tok, act);
    /* the activations as the kernels see them */
    const int fmt = qc_act_slot(dt) + 1;
    float *a = malloc((size_t)(n_tok * cols) * sizeof(float));
    double *s_q81 = calloc((size_t)(n_tok * (cols / 32)), sizeof(double)); /* Q8_1's s */
    for (int t = 0; t < n_tok; t++) {
        const unsigned char *at = (const unsigned char *)act + (size_t)t * (ab / (size_t)n_tok);
        if (fmt == QC_ACT_Q8) {
            const qc_block_q8_act *blk = (const qc_block_q8_act *)at;
            for (int64_t c = 0; c < cols; c++) a[t * cols + c] = blk[c / 32].d * blk[c / 32].qs[c % 32];
        } else {
            qc_qtype(fmt == QC_ACT_Q8_1 ? QC_DTYPE_Q8_1 : QC_DTYPE_Q8_K)->dequantize(at, a + t * cols, cols);
        }
        if (fmt == QC_ACT_Q8_1)
            for (int64_t b = 0; b < cols / 32; b++)
                s_q81[t * (cols / 32) + b] = qc_f16_to_f32(qc_load_u16(at + (size_t)b * sizeof(qc_block_q8_1) + 2));
    }
    float *wd = malloc((size_t)cols * sizeof(float)), *w0 = malloc((size_t)cols * sizeof(float));
    const int64_t nr = r1 - r0, ldy = rows + 3;
    double *exact = malloc((size_t)(n_tok * nr) * sizeof(double)), *mag = malloc((size_t)(n_tok * nr) * sizeof(double));
    for (int64_t r = r0; r < r1; r++) {
        qc_dequantize_row(&w, r, wd);
        memcpy(zero, data + (size_t)r * rb, rb);
        for (int64_t b = 0; b < nb; b++) memset(zero + (size_t)b * bb + gguf_types[ti].q0, 0, (size_t)(gguf_types[ti].q1 - gguf_types[ti].q0));
        const qc_tensor_t wz = {.data = zero, .dtype = dt, .rows = 1, .cols = cols};
        qc_dequantize_row(&wz, 0, w0);
        for (int t = 0; t < n_tok; t++) {
            double e = 0, m = 0;
            for (int64_t c = 0; c < cols; c++) {
                const double av = a[t * cols + c];
                e += fmt == QC_ACT_Q8_1 ? ((double)wd[c] - w0[c]) * av : (double)wd[c] * av;
                m += (fabs(wd[c]) + 2 * fabs(w0[c])) * fabs(av);
            }
            if (fmt == QC_ACT_Q8_1)
                for (int64_t b = 0; b < cols / 32; b++) e += (double)w0[b * 32] * s_q81[t * (cols / 32) + b];
            exact[t * nr + r - r0] = e;
            mag[t * nr + r - r0] = m + 1e-30;
        }
    }
    const double tol = 2.0 * (double)(nb + 16) * 0x1p-24;
    const size_t ny = (size_t)n_tok * (size_t)ldy;
    float *yref = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float));
    for (size_t i = 0; i < ny; i++) yref[i] = SENTINEL;
    qc_matmul_level(QC_CPU_SCALAR, &w, x, act, n_tok, yref, ldy, r0, r1);
    double worst = 0;
    for (int t = 0; t < n_tok; t++)
        for (int64_t r = r0; r < r1; r++) {
            const double e = fabs(yref[t * ldy + r] - exact[t * nr + r - r0]) / mag[t * nr + r - r0];
            if (!(e <= worst)) worst = e;
        }
    CHECK(worst <= tol, "%s scalar vs double: n_tok %d cols %lld rows [%lld,%lld): error %.3g of M (tolerance %.3g)",
          q->name, n_tok, (long long)cols, (long long)r0, (long long)r1, worst, tol);
    FOR_SIMD_LEVELS(l) {
        const int own = qc_kernels_for((qc_cpu_t)l)->matmul[dt] != NULL;
        n_levels_run[l] += own;
        for (size_t i = 0; i < ny; i++) y[i] = SENTINEL;
        qc_matmul_level((qc_cpu_t)l, &w, x, act, n_tok, y, ldy, r0, r1);
        double w2;
        int outside, differ;
        compare_out(y, yref, mag, n_tok, ldy, r0, r1, &w2, &outside, &differ);
        /* Q2_K keeps ggml's one integer per block and F32 steps at every
         * level (the x86 tiles too), so it is held to the bit */
        if (own && (bit_exact_quant(l) || dt == QC_DTYPE_Q2_K))
            CHECK(!differ, "%s %s vs scalar: n_tok %d cols %lld rows [%lld,%lld) misalign %zu: %d outputs not bit-identical",
                  q->name, level_name(l), n_tok, (long long)cols, (long long)r0, (long long)r1, misalign, differ);
        CHECK(w2 <= tol && !outside,
              "%s %s vs scalar: n_tok %d cols %lld rows [%lld,%lld) misalign %zu: error %.3g of M, %d writes outside",
              q->name, level_name(l), n_tok, (long long)cols, (long long)r0, (long long)r1, misalign, w2, outside);
    }
    /* the levels' weight panels of w (when its rows fill them): the same
     * contract against the scalar level, no write outside [r0, r1), each
     * token's outputs those it gets alone, each row dequantized as from
     * the file layout, bit for bit */
    FOR_SIMD_LEVELS(l) {
        const qc_panel_ops_t *ops = qc_kernels_for((qc_cpu_t)l)->panel;
        const size_t pbytes = ops ? ops->bytes(&w) : 0;
        if (!pbytes) continue;
        n_panels_run[l]++;
        void *pan = aligned_alloc(64, (pbytes + 63) / 64 * 64);
        ops->make(&w, pan, 0, rows / ops->rows);
        qc_tensor_t wp = w;
        wp.panel = pan;
        wp.panel_ops = ops;
        for (size_t i = 0; i < ny; i++) y[i] = SENTINEL;
        qc_matmul_level(QC_CPU_SCALAR, &wp, x, act, n_tok, y, ldy, r0, r1); /* the panel's kernels, whatever level */
        double w2;
        int outside, differ, alone = 0, rows_differ = 0;
        compare_out(y, yref, mag, n_tok, ldy, r0, r1, &w2, &outside, &differ);
        /* the legacy types' panels keep the scalar tile's order and roundings */
        if (qc_qtype(dt)->block == QC_QK)
            CHECK(!differ, "%s %s panels vs scalar: n_tok %d cols %lld rows [%lld,%lld): %d outputs not bit-identical",
                  q->name, level_name(l), n_tok, (long long)cols, (long long)r0, (long long)r1, differ);
        float *y1 = malloc((size_t)ldy * sizeof(float));
        for (int t = 0; t < n_tok; t++) {
            for (int64_t r = 0; r < ldy; r++) y1[r] = SENTINEL;
            qc_matmul(&wp, x + t * cols, (const unsigned char *)act + (size_t)t * (ab / (size_t)n_tok), 1, y1, ldy, r0,
                      r1);
            alone += memcmp(y1 + r0, y + t * ldy + r0, (size_t)nr * sizeof(float)) != 0;
        }
        free(y1);
        for (int64_t r = r0; r < r1; r++) {
            qc_dequantize_row(&w, r, wd);
            qc_dequantize_row(&wp, r, w0);
            rows_differ += memcmp(wd, w0, (size_t)cols * sizeof(float)) != 0;
        }
        CHECK(w2 <= tol && !outside && !alone && !rows_differ,
              "%s %s panels vs scalar: n_tok %d cols %lld rows [%lld,%lld) of %lld: error %.3g of M, %d writes outside, "
              "%d tokens differ alone, %d rows dequantized differently",
              q->name, level_name(l), n_tok, (long long)cols, (long long)r0, (long long)r1, (long long)rows, w2,
              outside, alone, rows_differ);
        free(pan);
    }
    free(buf);
    free(zero);
    free(x);
    free(act);
    free(a);
    free(s_q81);
    free(wd);
    free(w0);
    free(exact);
    free(mag);
    free(yref);
    free(y);
}

static void test_matmul_gguf(void) {
    static const int toks[] = {1, 2, 3, 4, 5, 7, 8, 13};
    static const int64_t cols_legacy[] = {32, 96, 320, 896, 4864}, cols_k[] = {256, 768, 2816};
    int n_levels_run[QC_CPU_LEVELS] = {0}, cfg = 0;
    for (size_t ti = 0; ti < sizeof gguf_types / sizeof gguf_types[0]; ti++) {
        const int k = qc_qtype(gguf_types[ti].t)->block == QC_QK_K;
        const int64_t *colss = k ? cols_k : cols_legacy;
        const size_t n_cols = k ? sizeof cols_k / sizeof cols_k[0] : sizeof cols_legacy / sizeof cols_legacy[0];
        for (size_t ni = 0; ni < sizeof toks / sizeof toks[0]; ni++)
            for (size_t ci = 0; ci < n_cols; ci++, cfg++) {
                const int64_t cols = colss[ci];
                /* rows beyond one 64-row block for short rows; ranges that
                 * start and end off the tiles */
                const int64_t rows = cols <= 1024 ? 75 : 23;
                const int64_t r0 = rows == 75 ? 3 : 1, r1 = rows == 75 ? 74 : 22;
                check_gguf(ti, toks[ni], cols, rows, r0, r1, (size_t)(1 + cfg % 63), n_levels_run);
            }
        /* the whole matrix, and a single row */
        check_gguf(ti, 6, k ? 512 : 96, 9, 0, 9, 7, n_levels_run);
        check_gguf(ti, 5, k ? 1024 : 1024, 9, 4, 5, 33, n_levels_run);
        /* rows that fill 16-row panels: whole, and ranges off the panels */
        /* (the amx level: 13 and 29 pad a tile, 35 does not, 61 and 77 are
         * past its small calls' Q8_0 and Q6_K limits) */
        static const int ptoks[] = {1, 2, 7, 8, 9, 13, 16, 17, 29, 35, 61, 77};
        for (size_t ni = 0; ni < sizeof ptoks / sizeof ptoks[0]; ni++, cfg++) {
            check_gguf(ti, ptoks[ni], k ? 512 : 96, 48, 0, 48, (size_t)(1 + cfg % 63), n_levels_run);
            check_gguf(ti, ptoks[ni], k ? 768 : 896, 80, 5, 67, (size_t)(1 + cfg % 63), n_levels_run);
            check_gguf(ti, ptoks[ni], k ? 2816 : 4864, 32, 16, 31, (size_t)(1 + cfg % 63), n_levels_run);
        }
    }
    FOR_SIMD_LEVELS(l) {
        const qc_panel_ops_t *ops = qc_kernels_for((qc_cpu_t)l)->panel;
        if (!ops) continue;
        char own[128] = "";
        for (size_t ti = 0; ti < sizeof gguf_types / sizeof gguf_types[0]; ti++) {
            const qc_tensor_t probe = {.dtype = gguf_types[ti].t, .rows = ops->rows, .cols = QC_QK_K};
            if (ops->bytes(&probe))
                snprintf(own + strlen(own), sizeof own - strlen(own), "%s%s", *own ? " " : "",
                         qc_qtype(gguf_types[ti].t)->name);
        }
        CHECK(n_panels_run[l] > 0, "%s has panels but none was checked", level_name(l));
        printf("test_kernels: %s: %d configurations of its %d-row weight panels (%s) checked\n", level_name(l),
               n_panels_run[l], ops->rows, own);
    }
    for (int l = QC_CPU_SCALAR + 1; l < QC_CPU_LEVELS; l++) {
        if (!qc_cpu_built((qc_cpu_t)l)) continue; /* another architecture's */
        if (n_levels_run[l]) {
            char own[128] = "";
            for (size_t ti = 0; ti < sizeof gguf_types / sizeof gguf_types[0]; ti++)
                if (qc_kernels_for((qc_cpu_t)l)->matmul[gguf_types[ti].t])
                    snprintf(own + strlen(own), sizeof own - strlen(own), "%s%s", *own ? " " : "",
                             qc_qtype(gguf_types[ti].t)->name);
            printf("test_kernels: %s: %d GGUF-type configurations of its own kernels (%s) checked%s\n", level_name(l),
                   n_levels_run[l], own, bit_exact_quant(l) ? ", bit-identical to scalar" : "");
        }
        else if (qc_cpu_has((qc_cpu_t)l)) SKIP("%s has no GGUF-type kernels of its own (the level below's run)", level_name(l));
        else SKIP("%s GGUF-type kernels not checked: not supported by this CPU or build", level_name(l));
    }
}

typedef struct {
    const qc_tensor_t *w;
    const float *y0; /* the y the driver was given */
    int64_t ldy;
    int *writes;     /* per output: tiles that wrote it */
    int bad;         /* tile arguments that break the contract */
    int full[2];     /* full tiles of the `many`, `one` shapes */
} drv_state_t;
static drv_state_t drv;

/* Checks what every tile is told, and counts its writes. */
static void drv_note(const qc_mm_tile_t *a, int nr, int nt, size_t unit_bytes) {
    const int64_t off = a->y - drv.y0, t0 = off / drv.ldy, r = off % drv.ldy;
    drv.bad += a->m != drv.w || a->row != r || a->prefetch != (t0 == 0) || a->accumulate != (a->unit > 0);
    drv.bad += a->w != (const unsigned char *)drv.w->data + (size_t)a->row * a->w_stride + (size_t)a->unit * unit_bytes;
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < nr; i++) drv.writes[(t0 + t) * drv.ldy + r + i]++;
}

/* Q8_0 tiles: token t's blocks at pack[u * nt + t]. */
static void drv_quant(const qc_mm_tile_t *a, int nr, int nt) {
    drv_note(a, nr, nt, QC_Q8_0_BYTES);
    const qc_block_q8_act *px = a->x;
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            float s = 0.0f;
            for (int64_t u = 0; u < a->k; u++) {
                const unsigned char *blk = a->w + (size_t)r * a->w_stride + (size_t)u * QC_Q8_0_BYTES;
                const qc_block_q8_act *xb = px + u * nt + t;
                int32_t isum = 0;
                for (int j = 0; j < 32; j++) isum += (int8_t)blk[2 + j] * xb->qs[j];
                s += (float)isum * (qc_f16_to_f32(qc_load_u16(blk)) * xb->d);
            }
            float *o = a->y + (size_t)t * (size_t)a->ldy + r;
            *o = a->accumulate ? *o + s : s;
        }
}

static void drv_pack(const void *x, size_t x_stride, int nt, int64_t k, void *pack) {
    drv.bad += (size_t)(nt * k) * sizeof(qc_block_q8_act) > DRV_PACK_BYTES;
    for (int64_t u = 0; u < k; u++)
        for (int t = 0; t < nt; t++)
            ((qc_block_q8_act *)pack)[u * nt + t] = ((const qc_block_q8_act *)((const char *)x + t * x_stride))[u];
}

/* F32 tiles: token t's row at x + t * x_stride. */
static void drv_float(const qc_mm_tile_t *a, int nr, int nt) {
    drv_note(a, nr, nt, 4);
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const float *xt = (const float *)((const char *)a->x + t * a->x_stride);
            const float *wr = (const float *)(a->w + (size_t)r * a->w_stride);
            float s = 0.0f;
            for (int64_t c = 0; c < a->k; c++) s += wr[c] * xt[c];
            a->y[(size_t)t * (size_t)a->ldy + r] = s;
        }
}

static void drv_q_many(const qc_mm_tile_t *a) { drv.full[0]++, drv_quant(a, 3, 3); }
static void drv_q_one(const qc_mm_tile_t *a) { drv.full[1]++, drv_quant(a, 2, 1); }
static void drv_f_many(const qc_mm_tile_t *a) { drv.full[0]++, drv_float(a, 2, 4); }
static void drv_f_one(const qc_mm_tile_t *a) { drv.full[1]++, drv_float(a, 3, 1); }

static const qc_mm_kernel_t drv_q8 = {QC_ACT_Q8, 6, {3, 3, drv_q_many, drv_quant}, {2, 1, drv_q_one, drv_quant},
                                      {drv_pack, 1, sizeof(qc_block_q8_act), DRV_PACK_BYTES}};
static const qc_mm_kernel_t drv_f32 = {QC_ACT_F32, 6, {2, 4, drv_f_many, drv_float}, {3, 1, drv_f_one, drv_float},
                                       {NULL}};
static const qc_kernel_set_t drv_level = {.matmul = {[QC_DTYPE_Q8_0] = &drv_q8, [QC_DTYPE_F32] = &drv_f32}};

static void test_driver(void) {
    enum { ROWS = 23, NB = 11, COLS = NB * 32, MAXT = 8 };
    static const int toks[] = {1, 2, 3, 4, 5, 7, 8};
    static const int64_t ranges[][2] = {{0, ROWS}, {1, 20}, {5, 6}, {7, 13}};
    float *x = malloc(MAXT * COLS * sizeof(float)), *wf = malloc(ROWS * COLS * sizeof(float));
    unsigned char *wq = malloc(ROWS * qc_row_bytes(QC_DTYPE_Q8_0, COLS));
    qc_block_q8_act *act = malloc(MAXT * NB * sizeof *act);
    for (int i = 0; i < MAXT * COLS; i++) x[i] = rng_unit();
    for (int i = 0; i < ROWS * COLS; i++) wf[i] = rng_unit();
    for (int r = 0; r < ROWS; r++) qc_quantize_row(QC_DTYPE_Q8_0, wf + r * COLS, wq + r * NB * QC_Q8_0_BYTES, COLS);
    for (int t = 0; t < MAXT; t++) qc_act_row_scalar(x + t * COLS, COLS, act + t * NB);
    const qc_tensor_t mq = {.data = wq, .dtype = QC_DTYPE_Q8_0, .rows = ROWS, .cols = COLS}, mf = {.data = wf, .dtype = QC_DTYPE_F32, .rows = ROWS, .cols = COLS};
    const int64_t ldy = ROWS + 2;
    static float y[MAXT * (ROWS + 2)], want[MAXT * (ROWS + 2)];
    static int writes[MAXT * (ROWS + 2)];
    for (size_t ti = 0; ti < sizeof toks / sizeof toks[0]; ti++)
        for (size_t ri = 0; ri < sizeof ranges / sizeof ranges[0]; ri++)
            for (int quant = 0; quant < 2; quant++) {
                const int n_tok = toks[ti];
                const int64_t r0 = ranges[ri][0], r1 = ranges[ri][1];
                /* chunks of 12 / min(n_tok, 3) blocks: what the pack holds */
                const int64_t chunk = quant ? 12 / (n_tok < 3 ? n_tok : 3) : COLS;
                int bad_writes = 0, bad_values = 0;
                for (int i = 0; i < MAXT * ldy; i++) y[i] = want[i] = SENTINEL, writes[i] = 0;
                for (int t = 0; t < n_tok; t++)
                    for (int64_t r = r0; r < r1; r++) {
                        float v = 0.0f;
                        for (int64_t c0 = 0; c0 < (quant ? NB : COLS); c0 += chunk) {
                            float s = 0.0f;
                            for (int64_t u = c0; u < c0 + chunk && u < (quant ? NB : COLS); u++) {
                                if (quant) {
                                    const unsigned char *blk = wq + (r * NB + u) * QC_Q8_0_BYTES;
                                    const qc_block_q8_act *xb = act + t * NB + u;
                                    int32_t isum = 0;
                                    for (int j = 0; j < 32; j++) isum += (int8_t)blk[2 + j] * xb->qs[j];
                                    s += (float)isum * (qc_f16_to_f32(qc_load_u16(blk)) * xb->d);
                                } else {
                                    s += wf[r * COLS + u] * x[t * COLS + u];
                                }
                            }
                            v = c0 ? v + s : s;
                        }
                        want[t * ldy + r] = v;
                    }
                drv = (drv_state_t){quant ? &mq : &mf, y, ldy, writes, 0, {0, 0}};
                qc_matmul_set(&drv_level, quant ? &mq : &mf, x, act, n_tok, y, ldy, r0, r1);
                const int n_chunks = quant ? (int)((NB + chunk - 1) / chunk) : 1;
                for (int t = 0; t < MAXT; t++)
                    for (int64_t r = 0; r < ldy; r++) {
                        const int inside = t < n_tok && r >= r0 && r < r1;
                        bad_writes += writes[t * ldy + r] != (inside ? n_chunks : 0);
                        bad_values += memcmp(&y[t * ldy + r], &want[t * ldy + r], sizeof(float)) != 0;
                    }
                /* decode runs the `one` shape only */
                const int shapes_ok = n_tok > 1 || (drv.full[0] == 0 && (r1 - r0 < 2 || drv.full[1] > 0));
                CHECK(!drv.bad && !bad_writes && !bad_values && shapes_ok,
                      "driver %s n_tok %d rows [%lld,%lld): %d bad tile arguments, %d outputs written wrongly, "
                      "%d values differ, full tiles %d many %d one",
                      quant ? "q8_0" : "f32", n_tok, (long long)r0, (long long)r1, drv.bad, bad_writes, bad_values,
                      drv.full[0], drv.full[1]);
            }
    /* a type no level has kernels for (an activation format): nothing
     * happens; types a SIMD level leaves out run on the scalar level's
     * (test_matmul_gguf) */
    const qc_tensor_t m4 = {.data = wq, .dtype = QC_DTYPE_Q8_K, .rows = ROWS, .cols = COLS};
    for (int i = 0; i < MAXT * ldy; i++) y[i] = SENTINEL;
    qc_matmul_set(&drv_level, &m4, x, act, 2, y, ldy, 0, ROWS);
    int touched = 0;
    for (int i = 0; i < MAXT * ldy; i++) touched += y[i] != SENTINEL;
    CHECK(!touched, "driver: a type without kernels wrote %d outputs", touched);
    free(x);
    free(wf);
    free(wq);
    free(act);
}

static void test_dot(void) {
    float a[1000], b[1000];
    for (int i = 0; i < 1000; i++) {
        a[i] = rng_unit();
        b[i] = rng_unit();
    }
    static const int ns[] = {0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 999, 1000};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        const int n = ns[k];
        double s = 0, sa = 0;
        for (int i = 0; i < n; i++) {
            s += (double)a[i] * b[i];
            sa += fabs((double)a[i] * b[i]);
        }
        for (int l = QC_CPU_SCALAR; l < QC_CPU_LEVELS; l++) {
            if (!qc_cpu_has((qc_cpu_t)l)) continue;
            float got = qc_kernels_for((qc_cpu_t)l)->dot_f32(a + 1, b + 1, n > 0 ? n - 1 : 0);
            double want = s - (n > 0 ? (double)a[0] * b[0] : 0), base = sa + 1e-30;
            CHECK(fabs(got - want) <= 2e-6 * base, "dot_f32 %s n %d: %g vs %g", level_name(l), n, got, want);
        }
        float got = qc_dot_f32(a, b, n);
        CHECK(fabs(got - s) <= 2e-6 * (sa + 1e-30), "qc_dot_f32 n %d", n);
    }
}

/* ==== attention ==== */

/* qc_round_f16 is storing as a half and reading back: against ggml's
 * portable conversion (qc_f32_to_f16, tested above) on random floats of
 * every magnitude (subnormal halves, ties, overflow to infinity). */
static void test_round_f16(void) {
    int bad = 0;
    float worst = 0;
    for (int i = 0; i < 2000000 && bad < 5; i++) {
        uint32_t u = (uint32_t)rng_next();
        /* exponents from half-subnormal to beyond the half range */
        u = (u & 0x807fffffu) | ((uint32_t)(100 + rng_next() % 45) << 23);
        if (i % 7 == 0) u &= ~0xfffu; /* many exact ties */
        float x;
        memcpy(&x, &u, 4);
        float want = qc_f16_to_f32(qc_f32_to_f16(x)), got = qc_round_f16(x);
        if (memcmp(&want, &got, 4)) {
            bad++;
            worst = x;
            fprintf(stderr, "round_f16(%a) = %a, want %a\n", x, got, want);
        }
    }
    CHECK(bad == 0, "qc_round_f16 = f16 round trip (first mismatch at %a)", worst);
}

/* The softmax's exponential against libm's exp in double: within 3e-7
 * relative where the result is a normal float, 0 below -87, the edges
 * (0, -0, -87, -inf, NaN). (The SIMD levels' exponentials against it:
 * test_attend's exact case, whose scale 4 spreads the scores over the
 * whole range.) */
static void test_exp_neg(void) {
    double worst = 0;
    float at = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = i == 0 ? 0.0f : -(float)(rng_unit() * 87.0);
        if (i % 5 == 0) x = -(float)i * (87.0f / 2000000); /* a sweep, -87 at the end */
        double want = exp((double)x), d = fabs(qc_exp_neg(x) - want) / want;
        if (d > worst) worst = d, at = x;
    }
    CHECK(worst <= 3e-7, "qc_exp_neg within 3e-7 of exp (worst %g at %a)", worst, at);
    CHECK(qc_exp_neg(-0.0f) == 1.0f && qc_exp_neg(0.0f) == 1.0f, "exp(0) = 1");
    CHECK(qc_exp_neg(-87.5f) == 0 && qc_exp_neg(-1000.0f) == 0 && qc_exp_neg(-INFINITY) == 0, "0 below -87");
    CHECK(isnan(qc_exp_neg(NAN)), "NaN kept");
}

/* qc_attend_block (each level's, and the dispatching one) against the
 * level's qc_attend query by query, bit for bit: head widths 64 and 128,
 * blocks of 1 to QC_ATT_QB queries starting on and off the 16-key groups,
 * the rows split between a prefix and the sequence's cache. */
static void test_attend_block(void) {
    enum { N = 300, PRE = 23 };
    static const int hds[] = {64, 128}, n0s[] = {1, 2, 15, 16, 17, 40, 100, 250};
    int runs = 0, bad = 0;
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
        const int hd = hds[hi];
        uint16_t *kp = malloc(2 * (size_t)(N * hd)), *vp = malloc(2 * (size_t)(N * hd));
        uint16_t *kc = malloc(2 * (size_t)(N * hd)), *vc = malloc(2 * (size_t)(N * hd));
        float *q = malloc(sizeof(float) * (size_t)(QC_ATT_QB * hd)), *scores = malloc(sizeof(float) * QC_ATT_QB * N);
        float *want = malloc(sizeof(float) * (size_t)(QC_ATT_QB * hd)), *got = malloc(sizeof(float) * (size_t)(QC_ATT_QB * hd));
        for (int i = 0; i < N * hd; i++) {
            kp[i] = qc_f32_to_f16(rng_unit());
            kc[i] = qc_f32_to_f16(rng_unit());
            vp[i] = qc_f32_to_f16(rng_unit() * 3);
            vc[i] = qc_f32_to_f16(rng_unit() * 3);
        }
        for (int i = 0; i < QC_ATT_QB * hd; i++) q[i] = rng_unit() * 4;
        const qc_kv_rows_t r = {kp, vp, kc, vc, PRE, hd};
        const float scale = 1.0f / sqrtf((float)hd);
        for (size_t ni = 0; ni < sizeof n0s / sizeof n0s[0]; ni++)
            for (int nq = 1; nq <= QC_ATT_QB; nq++)
                for (int l = QC_CPU_SCALAR; l < QC_CPU_LEVELS; l++) {
                    if (!qc_cpu_has((qc_cpu_t)l)) continue;
                    const qc_kernel_set_t *k = qc_kernels_for((qc_cpu_t)l);
                    const int n0 = n0s[ni];
                  for (int f16 = 0; f16 < 2; f16++) {
                    for (int i = 0; i < nq; i++) k->attend(q + i * hd, &r, n0 + i, hd, scale, f16, scores, want + i * hd);
                    for (int way = 0; way < 2; way++) {
                        if (way == 0 && !k->attend_block) continue;
                        memset(got, 0xff, sizeof(float) * (size_t)(nq * hd));
                        if (way == 0) k->attend_block(q, hd, nq, &r, n0, hd, scale, f16, scores, got, hd);
                        else if (l == (int)qc_cpu_level()) qc_attend_block(q, hd, nq, &r, n0, hd, scale, f16, scores, got, hd);
                        else continue;
                        runs++;
                        if (memcmp(got, want, sizeof(float) * (size_t)(nq * hd))) {
                            bad++;
                            CHECK(0, "attend_block %s (%s) hd %d n0 %d nq %d f16 %d: not bit-identical to attend",
                                  level_name(l), way ? "qc_attend_block" : "the level's", hd, n0, nq, f16);
                        }
                    }
                  }
                }
        free(kp), free(vp), free(kc), free(vc), free(q), free(scores), free(want), free(got);
    }
    CHECK(runs > 0, "attend_block: nothing run");
    printf("test_kernels: attend_block: %d block configurations against attend query by query, %d differ\n", runs, bad);
}

/* Every level's qc_attend against the scalar one: within the dot products'
 * rounding in general, and bit-identical when the dot products are exact
 * in any order (small multiples of 1/8), both numerics, with a prefix. */
static void test_attend(void) {
    enum { HD = 64, N = 300, PRE = 37 };
    uint16_t *kp = malloc(2 * N * HD), *vp = malloc(2 * N * HD), *kc = malloc(2 * N * HD), *vc = malloc(2 * N * HD);
    float q[HD], scores[N], want[HD], got[HD];
    for (int exact = 0; exact < 2; exact++) {
        for (int i = 0; i < N * HD; i++) {
            kp[i] = qc_f32_to_f16(exact ? (float)(int)(rng_unit() * 8) / 8 : rng_unit());
            kc[i] = qc_f32_to_f16(exact ? (float)(int)(rng_unit() * 8) / 8 : rng_unit());
            vp[i] = qc_f32_to_f16(rng_unit() * 3);
            vc[i] = qc_f32_to_f16(rng_unit() * 3);
        }
        for (int e = 0; e < HD; e++) q[e] = exact ? (float)(int)(rng_unit() * 16) / 8 : rng_unit() * 2;
        qc_kv_rows_t r = {kp, vp, kc, vc, PRE, HD};
        for (int f16 = 0; f16 < 2; f16++)
            for (int n = 1; n <= N; n += 59)
                for (float scale = 0.125f; scale <= 4; scale *= 32) { /* 4: scores over exp's whole range */
                    qc_attend_scalar(q, &r, n, HD, scale, f16, scores, want);
                    FOR_SIMD_LEVELS(l) {
                        qc_kernels_for((qc_cpu_t)l)->attend(q, &r, n, HD, scale, f16, scores, got);
                        double d = 0;
                        for (int e = 0; e < HD; e++) d = fmax(d, fabs((double)got[e] - want[e]));
                        if (exact)
                            CHECK(!memcmp(got, want, sizeof got),
                                  "attend %s f16=%d n=%d scale %g: not bit-identical (max diff %g)", level_name(l), f16,
                                  n, scale, d);
                        else if (scale < 1)
                            CHECK(d <= 4e-3, "attend %s f16=%d n=%d: max diff %g", level_name(l), f16, n, d);
                    }
                }
    }
    /* the F32 softmax against a double-precision one */
    qc_kv_rows_t r = {kp, vp, kc, vc, PRE, HD};
    qc_attend_scalar(q, &r, N, HD, 0.125f, 0, scores, got);
    double w[N], mx = -1e300, sum = 0, worst = 0;
    for (int i = 0; i < N; i++) {
        const uint16_t *k = i < PRE ? kp + i * HD : kc + i * HD;
        double s = 0;
        for (int e = 0; e < HD; e++) s += (double)q[e] * qc_f16_to_f32(k[e]);
        w[i] = s * 0.125;
        mx = fmax(mx, w[i]);
    }
    for (int i = 0; i < N; i++) sum += (w[i] = exp(w[i] - mx));
    for (int e = 0; e < HD; e++) {
        double o = 0;
        for (int i = 0; i < N; i++) o += w[i] / sum * qc_f16_to_f32((i < PRE ? vp : vc)[i * HD + e]);
        worst = fmax(worst, fabs(o - got[e]));
    }
    CHECK(worst < 1e-5, "F32 attention vs double: %g", worst);
    free(kp);
    free(vp);
    free(kc);
    free(vc);
}

static void test_formats(void) {
    CHECK(qc_row_bytes(QC_DTYPE_F32, 10) == 40, "row bytes f32");
    CHECK(qc_row_bytes(QC_DTYPE_BF16, 10) == 20, "row bytes bf16");
    CHECK(qc_row_bytes(QC_DTYPE_F16, 3) == 6, "row bytes f16");
    CHECK(qc_row_bytes(QC_DTYPE_Q8_0, 64) == 68, "row bytes q8_0");
    CHECK(qc_row_bytes(QC_DTYPE_Q4_0, 64) == 36, "row bytes q4_0");
    CHECK(qc_row_bytes(QC_DTYPE_Q8_0, 33) == 0 && qc_row_bytes(QC_DTYPE_Q4_0, 31) == 0, "row bytes misfit");
    CHECK(qc_row_bytes(QC_DTYPE_F32, -1) == 0 && qc_row_bytes(QC_DTYPE_F32, INT64_MAX) == 0, "row bytes overflow");
    const char *env = getenv("QCARE_CPU");
    printf("test_kernels: CPU level %s (best available %s, QCARE_CPU=%s)\n", qc_cpu_name(qc_cpu_level()),
           qc_cpu_name(qc_cpu_max()), env ? env : "unset");
    /* a level this CPU has is taken; any other value (a level it lacks, an
     * unknown name) gives the best level and a message */
    int named = -1;
    for (int l = QC_CPU_SCALAR; l < QC_CPU_LEVELS; l++)
        if (env && !strcmp(env, qc_cpu_name((qc_cpu_t)l))) named = l;
    if (named >= 0 && qc_cpu_has((qc_cpu_t)named)) {
        CHECK(qc_cpu_level() == (qc_cpu_t)named, "QCARE_CPU=%s gave %s", env, qc_cpu_name(qc_cpu_level()));
        CHECK(!qc_cpu_request_error(), "QCARE_CPU=%s, a level this CPU has: %s", env, qc_cpu_request_error());
    } else {
        CHECK(qc_cpu_level() == qc_cpu_max(), "default level is the best one");
        const char *e = qc_cpu_request_error();
        if (env && *env)
            CHECK(e && strstr(e, env) && strstr(e, qc_cpu_name(qc_cpu_max())),
                  "QCARE_CPU=%s, not a level of this CPU: message '%s'", env, e ? e : "(none)");
        else
            CHECK(!e, "QCARE_CPU unset or empty: message '%s'", e ? e : "");
    }
    /* the levels of one architecture are built, scalar everywhere, and the
     * CPU has each built level up to its best */
    CHECK(qc_cpu_built(QC_CPU_SCALAR) && qc_cpu_has(QC_CPU_SCALAR), "scalar level");
    CHECK(!(qc_cpu_built(QC_CPU_AVX2) && qc_cpu_built(QC_CPU_NEON)), "levels of two architectures built");
    for (int l = QC_CPU_SCALAR; l < QC_CPU_LEVELS; l++)
        CHECK(qc_cpu_has((qc_cpu_t)l) == (qc_cpu_built((qc_cpu_t)l) && l <= (int)qc_cpu_max()), "level %s",
              qc_cpu_name((qc_cpu_t)l));
}

/* The AMX level (AVX-512's kernels with AMX tiles for the panels' prefill
 * products): whether it runs here, or why not — the CPU (CPUID leaf 7:
 * AMX-TILE, AMX-INT8), the OS (XCR0 bits 17-18) or the build. The panel
 * checks above run it like any level where it runs: batched products of
 * 16 tokens or more on tiles, each token alone on VNNI, bit for bit. */
static void report_amx(void) {
#if defined(__x86_64__)
    unsigned a = 0, b = 0, c = 0, d = 0, lo = 0, hi = 0;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    const int cpu = (d >> 24 & 1) && (d >> 25 & 1);
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (c >> 27 & 1) __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const int os = (lo >> 17 & 3) == 3;
    if (qc_cpu_has(QC_CPU_AMX)) {
        CHECK(cpu && os, "amx level chosen on a CPU/OS without AMX (cpu %d, os %d)", cpu, os);
        CHECK(n_panels_run[QC_CPU_AMX] > 0, "amx level: no panel configuration checked");
        printf("test_kernels: amx level runs (AMX-TILE/AMX-INT8, tile state and permission): %d panel "
               "configurations checked\n", n_panels_run[QC_CPU_AMX]);
    } else {
        CHECK(!(cpu && os && qc_cpu_built(QC_CPU_AMX) && qc_cpu_has(QC_CPU_AVX512)),
              "this CPU and OS offer AMX and the build has it, but the level was not chosen (tile permission refused?)");
        SKIP("amx level: %s (this CPU %s AMX-TILE/AMX-INT8, the OS %s tile state)",
             qc_cpu_built(QC_CPU_AMX) ? "not run" : "not in this build", cpu ? "has" : "lacks",
             os ? "enables" : "does not enable");
    }
#endif
}

int main(void) {
    test_formats();
    test_f16();
    test_f16_row();
    test_quantize_q8_0();
    test_quantize_q4_0();
    test_roundtrip();
    test_act_quantize();
    test_nonfinite();
    test_dot();
    test_round_f16();
    test_exp_neg();
    test_attend();
    test_attend_block();
    test_swiglu();
    test_matmul();
    test_matmul_gguf();
    test_driver();
    report_amx();
    return test_done("test_kernels");
}
