/* fuzz.h — what the libFuzzer targets of tests/fuzz/ share: handing an input
 * to a loader that only takes a path (a memfd, reopened through
 * /proc/self/fd), reading every byte of what a parser hands out (so that
 * ASan checks each pointer it gave against the real allocation or mapping),
 * and a check that aborts with a message (a libFuzzer crash) when an
 * invariant of the API breaks.
 *
 * Each target is one file, built by `make fuzz-build` with clang
 * (-fsanitize=fuzzer,address,undefined) against a clang-built libqcare.a;
 * tests/fuzz/run.sh runs them (README.md there says how). */
#ifndef QC_FUZZ_H
#define QC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts (a crash for libFuzzer) when cond is false. */
#define FUZZ_CHECK(cond, ...)                                                        \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fprintf(stderr, "\n");                                                   \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* A file holding exactly data[0..n), named by a path: one memfd per name,
 * created on first use and rewritten on every call. Returns the path
 * (static storage per slot), or aborts when the memfd cannot be written. */
static inline const char *fuzz_file(int slot, const void *data, size_t n) {
    static int fds[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    static char paths[8][64];
    FUZZ_CHECK(slot >= 0 && slot < 8, "slot %d", slot);
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("qcare-fuzz", MFD_CLOEXEC);
        FUZZ_CHECK(fds[slot] >= 0, "memfd_create failed");
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    FUZZ_CHECK(ftruncate(fds[slot], 0) == 0, "ftruncate failed");
    const char *p = data;
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(fds[slot], p + done, n - done, (off_t)done);
        FUZZ_CHECK(w > 0, "pwrite failed");
        done += (size_t)w;
    }
    return paths[slot];
}

/* Reads every byte of p[0..n) (ASan reports any that lies outside what was
 * allocated or mapped). */
static inline void fuzz_touch(const void *p, size_t n) {
    const volatile unsigned char *b = p;
    unsigned char x = 0;
    for (size_t i = 0; i < n; i++) x ^= b[i];
    (void)x;
}

/* The fixtures folder: $QC_FIXTURES, else ../shared/fixtures (as tests/run.sh). */
static inline const char *fuzz_fixtures(void) {
    const char *f = getenv("QC_FIXTURES");
    return f && *f ? f : "../shared/fixtures";
}

#endif
