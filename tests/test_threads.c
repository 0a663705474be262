/* test_threads.c — the thread pool runs every share exactly once per task,
 * many tasks in a row, and when the workers are slow (the caller, done
 * first, has spun out and sleeps); and qc_split covers a range without
 * gaps or overlap. */
#include "engine/threads.h"
#include "test.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef struct {
    long n;
    atomic_int *hits; /* [n] */
    atomic_int calls;
} job_t;

static void task(void *arg, int ith, int nth) {
    job_t *j = arg;
    long lo, hi;
    qc_split(j->n, ith, nth, 4, &lo, &hi);
    for (long i = lo; i < hi; i++) atomic_fetch_add(&j->hits[i], 1);
    atomic_fetch_add(&j->calls, 1);
}

/* Workers take 100 ms (past the caller's spinning) before finishing. */
static void slow_task(void *arg, int ith, int nth) {
    (void)nth;
    if (ith > 0) nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    atomic_fetch_add((atomic_int *)arg, 1);
}

int main(void) {
    /* qc_split: every index taken once, chunks aligned */
    for (int nth = 1; nth <= 7; nth++) {
        for (long n = 0; n <= 103; n += 7) {
            long covered = 0, prev_hi = 0;
            int ok = 1;
            for (int i = 0; i < nth; i++) {
                long lo, hi;
                qc_split(n, i, nth, 8, &lo, &hi);
                ok &= lo == prev_hi && hi >= lo && (lo % 8 == 0 || lo == n);
                covered += hi - lo;
                prev_hi = hi;
            }
            CHECK(ok && covered == n && prev_hi == n, "qc_split n=%ld nth=%d", n, nth);
        }
    }
    for (int threads = 1; threads <= 4; threads++) {
        qc_pool_t *p = qc_pool_new(threads);
        CHECK(p && qc_pool_size(p) == threads, "pool of %d", threads);
        if (!p) continue;
        static atomic_int hits[1000];
        job_t j = {.n = 1000, .hits = hits};
        memset(hits, 0, sizeof hits);
        const int rounds = 2000;
        for (int r = 0; r < rounds; r++) qc_pool_run(p, task, &j);
        int ok = 1;
        for (int i = 0; i < 1000; i++) ok &= atomic_load(&hits[i]) == rounds;
        CHECK(ok, "every index once per task (%d threads)", threads);
        CHECK(atomic_load(&j.calls) == rounds * threads, "each thread once per task: %d", atomic_load(&j.calls));
        atomic_int slow = 0;
        int all_back = 1;
        for (int r = 1; r <= 3; r++) {
            qc_pool_run(p, slow_task, &slow);
            all_back &= atomic_load(&slow) == r * threads;
        }
        CHECK(all_back, "slow workers: the caller returns after every share (%d threads)", threads);
        qc_pool_free(p);
    }
    qc_pool_free(NULL);
    return test_done("test_threads");
}
