/* kernels.c — CPU level detection and the level choice (with the dispatch
 * of qc_dot_f32 and qc_attend), and the weight formats: quantization, half
 * conversion, dequantization. The levels' kernels are in kernels_scalar.c,
 * kernels_avx2.c, kernels_avx512.c and kernels_neon.c; the matrix-product
 * driver in matmul.c.
 *
 * This file is compiled for the baseline of its architecture (x86-64,
 * ARMv8.0): nothing here may use an instruction the CPU might lack. */
#include "engine/kernels_impl.h"
#include "engine/quants.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define QC_X86 1
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#define QC_ARM64_LINUX 1
/* the bits of <asm/hwcap.h>, for older headers */
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#endif

/* ==== CPU detection and dispatch ==== */

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static qc_cpu_t cpu_max;    /* the best level the CPU, OS and build support */
static qc_cpu_t cpu_chosen; /* cpu_max, or lower when QCARE_CPU asks */

#ifdef QC_X86
/* XCR0: which register states the OS saves on context switch. Without
 * them set the instructions fault even when CPUID lists them. */
static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (uint64_t)edx << 32 | eax;
}

/* Linux keeps AMX's tile data (8 KiB per thread) off until the process asks:
 * the first tile instruction of a process that has not raises SIGILL. The
 * permission covers every thread of the process, those running already
 * and those started later; it is asked here, in the level choice, before
 * any kernel (any pool worker) can touch a tile. 1: granted. */
static int amx_permission(void) {
    enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 0;
    unsigned long perm = 0;
    return syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm) == 0 && (perm >> XFEATURE_XTILEDATA & 1);
}
#endif

static qc_cpu_t cpu_detect(void) {
#ifdef QC_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return QC_CPU_SCALAR;
    uint64_t xcr0 = xgetbv0();
    int os_avx = (xcr0 & 0x6) == 0x6;        /* XMM + YMM state */
    int os_avx512 = (xcr0 & 0xe6) == 0xe6;   /* + opmask, ZMM_Hi256, Hi16_ZMM */
    __builtin_cpu_init();
    /* F16C from CPUID.1:ECX itself: clang (14) has no "f16c" for
     * __builtin_cpu_supports */
    int avx2 = os_avx && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && (c & bit_F16C) &&
               qc_level_avx2;
    if (!avx2) return QC_CPU_SCALAR;
    /* AVX-512 level: F/BW/VL/DQ for the loads, masks and conversions, VNNI
     * for vpdpbusd. (AVX512_BF16 is not used: BF16 weights are widened and
     * multiplied in F32.) */
    int avx512 = os_avx512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vnni") && qc_level_avx512;
    if (!avx512) return QC_CPU_AVX2;
    /* AMX level: CPUID.(7,0):EDX AMX-TILE (bit 24) and AMX-INT8 (25), the
     * OS saving tile state (XCR0 bits 17-18: XTILECFG, XTILEDATA), and the
     * process's permission to use it */
    unsigned a7, b7, c7, d7;
    const int amx = qc_level_amx && __get_cpuid_count(7, 0, &a7, &b7, &c7, &d7) && (d7 >> 24 & 1) &&
                    (d7 >> 25 & 1) && (xcr0 >> 17 & 3) == 3 && amx_permission();
    if (!amx) return QC_CPU_AVX512;
    qc_amx_init();
    return QC_CPU_AMX;
#elif defined(QC_ARM64_LINUX)
    /* The kernel's HWCAP bits say what the CPU has and EL0 may use. i8mm
     * CPUs (ARMv8.6) all have the dot product, which its level also uses. */
    const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    if (!(hw & HWCAP_ASIMD) || !qc_level_neon) return QC_CPU_SCALAR;
    if (!(hw & HWCAP_ASIMDDP) || !qc_level_dotprod) return QC_CPU_NEON;
    if (!(hw2 & HWCAP2_I8MM) || !qc_level_i8mm) return QC_CPU_DOTPROD;
    return QC_CPU_I8MM;
#elif defined(__aarch64__)
    /* no HWCAP to read: Advanced SIMD is part of every ARM64 CPU */
    return qc_level_neon ? QC_CPU_NEON : QC_CPU_SCALAR;
#else
    return QC_CPU_SCALAR;
#endif
}

static const qc_kernel_set_t *level_set(qc_cpu_t level) {
    switch (level) {
    case QC_CPU_SCALAR: return qc_level_scalar;
    case QC_CPU_AVX2: return qc_level_avx2;
    case QC_CPU_AVX512: return qc_level_avx512;
    case QC_CPU_AMX: return qc_level_amx;
    case QC_CPU_NEON: return qc_level_neon;
    case QC_CPU_DOTPROD: return qc_level_dotprod;
    case QC_CPU_I8MM: return qc_level_i8mm;
    case QC_CPU_LEVELS: break;
    }
    return NULL;
}

int qc_cpu_built(qc_cpu_t level) { return (unsigned)level < QC_CPU_LEVELS && level_set(level) != NULL; }

/* Only one architecture's levels are built, and each one's are ordered, so
 * a built level up to the best one is one the CPU has. */
int qc_cpu_has(qc_cpu_t level) { return qc_cpu_built(level) && level <= qc_cpu_max(); }

static char cpu_request_err[160]; /* qc_cpu_request_error's message, or "" */

static void cpu_init(void) {
    cpu_max = cpu_detect();
    cpu_chosen = cpu_max;
    const char *env = getenv("QCARE_CPU");
    if (!env || !*env) return;
    /* A level this CPU or build lacks, or an unknown value, runs the best
     * level (always a correct choice); the library never prints, so the
     * message waits for qc_cpu_request_error. */
    for (int l = QC_CPU_SCALAR; l < QC_CPU_LEVELS; l++) {
        if (strcmp(env, qc_cpu_name((qc_cpu_t)l))) continue;
        if ((qc_cpu_t)l <= cpu_max && qc_cpu_built((qc_cpu_t)l)) {
            cpu_chosen = (qc_cpu_t)l;
            return;
        }
        snprintf(cpu_request_err, sizeof cpu_request_err, "QCARE_CPU=%s: %s (the best level here is %s)", env,
                 qc_cpu_built((qc_cpu_t)l) ? "this CPU lacks that kernel level" : "a level of another architecture",
                 qc_cpu_name(cpu_max));
        return;
    }
    snprintf(cpu_request_err, sizeof cpu_request_err,
             "QCARE_CPU=%.40s: not a kernel level (scalar, avx2, avx512, amx, neon, dotprod, i8mm; the best here is %s)",
             env, qc_cpu_name(cpu_max));
}

const char *qc_cpu_request_error(void) {
    pthread_once(&cpu_once, cpu_init);
    return cpu_request_err[0] ? cpu_request_err : NULL;
}

qc_cpu_t qc_cpu_level(void) {
    pthread_once(&cpu_once, cpu_init);
    return cpu_chosen;
}

qc_cpu_t qc_cpu_max(void) {
    pthread_once(&cpu_once, cpu_init);
    return cpu_max;
}

const char *qc_cpu_name(qc_cpu_t level) {
    switch (level) {
    case QC_CPU_SCALAR: return "scalar";
    case QC_CPU_AVX2: return "avx2";
    case QC_CPU_AVX512: return "avx512";
    case QC_CPU_AMX: return "amx";
    case QC_CPU_NEON: return "neon";
    case QC_CPU_DOTPROD: return "dotprod";
    case QC_CPU_I8MM: return "i8mm";
    case QC_CPU_LEVELS: break;
    }
    return "?";
}

const qc_kernel_set_t *qc_kernels_for(qc_cpu_t level) {
    return level_set(qc_cpu_has(level) ? level : qc_cpu_max());
}

float qc_dot_f32(const float *a, const float *b, int64_t n) {
    return qc_kernels_for(qc_cpu_level())->dot_f32(a, b, n);
}

void qc_attend(const float *q, const qc_kv_rows_t *r, int n, int hd, float scale, int f16_acc, float *scores,
               float *o) {
    qc_kernels_for(qc_cpu_level())->attend(q, r, n, hd, scale, f16_acc, scores, o);
}

void qc_attend_block(const float *q, int64_t ldq, int nq, const qc_kv_rows_t *r, int n0, int hd, float scale,
                     int f16_acc, float *scores, float *o, int64_t ldo) {
    const qc_kernel_set_t *k = qc_kernels_for(qc_cpu_level());
    if (k->attend_block && nq <= QC_ATT_QB) {
        k->attend_block(q, ldq, nq, r, n0, hd, scale, f16_acc, scores, o, ldo);
        return;
    }
    for (int i = 0; i < nq; i++) k->attend(q + i * ldq, r, n0 + i, hd, scale, f16_acc, scores, o + i * ldo);
}

void qc_f32_to_f16_row(const float *x, uint16_t *y, int64_t n) {
    const qc_kernel_set_t *k = qc_kernels_for(qc_cpu_level());
    if (k->f16_row) {
        k->f16_row(x, y, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i] = qc_f32_to_f16(x[i]);
}

void qc_swiglu_row(const float *g, const float *u, float *out, int64_t n) {
    const qc_kernel_set_t *k = qc_kernels_for(qc_cpu_level());
    if (k->swiglu) {
        k->swiglu(g, u, out, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = qc_silu(g[i]) * u[i];
}

/* ==== half precision ==== */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ggml's portable fp32 -> fp16 (from the FP16 library): the two scalings
 * push the value into a range where adding a power-of-two bias makes the
 * FPU do the round-to-nearest-even at half precision, subnormals and
 * overflow to infinity included; NaN becomes 0x7e00 (with the sign). Needs
 * IEEE single arithmetic without flush-to-zero, which x86-64 SSE and ARM64
 * Linux (FPCR.FZ clear) give. */
uint16_t qc_f32_to_f16(float f) {
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    const uint32_t w = f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xff000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007c00u;
    const uint32_t mantissa_bits = bits & 0x00000fffu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}

/* ==== weight formats ==== */

size_t qc_row_bytes(qc_dtype_t t, int64_t n) {
    if (n < 0 || n > INT64_MAX / 8) return 0;
    switch (t) {
    case QC_DTYPE_F32: return (size_t)n * 4;
    case QC_DTYPE_F16:
    case QC_DTYPE_BF16: return (size_t)n * 2;
    default: break;
    }
    const qc_qtype_t *q = qc_qtype(t); /* the block types */
    return q && n % q->block == 0 ? (size_t)(n / q->block) * (size_t)q->block_bytes : 0;
}

static inline void store_u16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }


/* ggml's quantize_row_q8_0_ref, block by block. Blocks are written through
 * byte pointers: a caller may place them at any address (a GGUF tensor has
 * no alignment beyond its file offset). */
static void quantize_q8_0(const float *x, unsigned char *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QC_QK, y += QC_Q8_0_BYTES) {
        float amax = 0.0f;
        for (int j = 0; j < QC_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_u16(y, qc_f32_to_f16(d));
        for (int j = 0; j < QC_QK; j++) y[2 + j] = (unsigned char)(int8_t)roundf(clamp127(x[j] * id));
    }
}

/* ggml's quantize_row_q4_0_ref: the scale maps the value of largest
 * magnitude (first one on ties, sign kept) to -8; +8 would be 16, which the
 * MIN clamps to 15. */
static void quantize_q4_0(const float *x, unsigned char *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QC_QK, y += QC_Q4_0_BYTES) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QC_QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_u16(y, qc_f32_to_f16(d));
        for (int j = 0; j < QC_QK / 2; j++) {
            /* within [-8, 8], where finite blocks already are (NaN: -8) */
            float x0 = x[j] * id, x1 = x[QC_QK / 2 + j] * id;
            x0 = x0 >= -8.0f ? (x0 <= 8.0f ? x0 : 8.0f) : -8.0f;
            x1 = x1 >= -8.0f ? (x1 <= 8.0f ? x1 : 8.0f) : -8.0f;
            int8_t q0 = (int8_t)(x0 + 8.5f), q1 = (int8_t)(x1 + 8.5f);
            uint8_t xi0 = (uint8_t)(q0 < 15 ? q0 : 15), xi1 = (uint8_t)(q1 < 15 ? q1 : 15);
            y[2 + j] = (uint8_t)(xi0 | xi1 << 4);
        }
    }
}

void qc_quantize_row(qc_dtype_t t, const float *src, void *dst, int64_t n) {
    if (n <= 0 || n % QC_QK) return;
    if (t == QC_DTYPE_Q8_0) quantize_q8_0(src, dst, n / QC_QK);
    else if (t == QC_DTYPE_Q4_0) quantize_q4_0(src, dst, n / QC_QK);
}

void qc_dequantize_row(const qc_tensor_t *w, int64_t row, float *dst) {
    if (w->panel) {
        w->panel_ops->row(w, row, dst);
        return;
    }
    const int64_t n = w->cols;
    const unsigned char *p = (const unsigned char *)w->data + (size_t)row * qc_row_bytes(w->dtype, n);
    switch (w->dtype) {
    case QC_DTYPE_F32: memcpy(dst, p, (size_t)n * 4); break;
    case QC_DTYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = qc_f16_to_f32(qc_load_u16(p + 2 * i));
        break;
    case QC_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = qc_bf16_to_f32(qc_load_u16(p + 2 * i));
        break;
    default: qc_qtype(w->dtype)->dequantize(p, dst, n); break; /* the block types */
    }
}
