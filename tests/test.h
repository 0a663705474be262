/* test.h — the tiny harness every test program uses: CHECK counts passes
 * and failures, SKIP counts (and says) what could not be checked here,
 * test_done prints the closing line `NAME: N passed, N failed, N skipped`
 * and returns the exit code. */
#ifndef QC_TEST_H
#define QC_TEST_H
#include "base/base.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int test_passed, test_failed, test_skipped;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            test_passed++;                                                     \
        } else {                                                               \
            test_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* One check that cannot run here (a CPU level this machine lacks, ...):
 * counted, and its reason printed as a line starting "SKIP", which the
 * runner repeats in its summary, so a skip is never silent. */
#define SKIP(...)                                                              \
    do {                                                                       \
        test_skipped++;                                                        \
        printf("SKIP %s:%d: ", __FILE__, __LINE__);                            \
        printf(__VA_ARGS__);                                                   \
        putchar('\n');                                                         \
    } while (0)

/* The value of environment variable `name`, or def when unset or empty. */
static inline const char *test_env(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* The fixtures folder: $QC_FIXTURES or ../shared/fixtures. */
static inline const char *fixtures(void) { return test_env("QC_FIXTURES", "../shared/fixtures"); }

/* A whole file, NUL-terminated (caller frees); its length in *len if given.
 * NULL when it cannot be opened. */
static inline char *test_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (s && n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n > 0 ? n : 0] = 0;
    if (len) *len = (size_t)(n > 0 ? n : 0);
    fclose(f);
    return s;
}

static inline int test_done(const char *name) {
    printf("%s: %d passed, %d failed, %d skipped\n", name, test_passed, test_failed, test_skipped);
    return test_failed ? 1 : 0;
}
#endif
