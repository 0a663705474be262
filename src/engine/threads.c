/* threads.c — the persistent thread pool. One task runs at a time: the
 * caller publishes it by bumping a generation counter, every worker runs its
 * share, and the caller waits for the count of finished workers. Both sides
 * spin for a while (cheap hand-offs inside a forward pass) and then sleep on
 * a condition variable, so an idle model costs no CPU, and a caller whose
 * workers were descheduled (more threads than free cores, or an emulator
 * running every thread slowly) does not burn the CPU they need. */
#include "engine/threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Waiting threads pause-spin briefly, then yield the CPU (so more threads
 * than cores still make progress), then sleep. */
#define SPIN_PAUSE 1000
#define SPIN_YIELD 20000

struct qc_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t run_lock; /* one qc_pool_run at a time */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t finished;  /* the last worker done, for a sleeping caller */
    atomic_uint gen;          /* bumped for each task */
    atomic_int done;          /* workers finished with the current task */
    atomic_int caller_sleeps; /* the caller waits on `finished` */
    atomic_int quit;
    qc_task_fn fn;
    void *arg;
};

typedef struct {
    qc_pool_t *p;
    int ith;
} worker_arg_t;

static void *worker(void *a) {
    worker_arg_t wa = *(worker_arg_t *)a;
    free(a);
    qc_pool_t *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (++spins < SPIN_PAUSE) {
                cpu_relax();
                continue;
            }
            if (spins < SPIN_YIELD) {
                sched_yield();
                continue;
            }
            pthread_mutex_lock(&p->lock);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->lock);
            pthread_mutex_unlock(&p->lock);
            spins = 0;
            if (atomic_load(&p->quit)) return NULL;
        }
        seen = g;
        if (atomic_load(&p->quit)) return NULL;
        p->fn(p->arg, wa.ith, p->n);
        /* sequentially consistent with the caller's caller_sleeps store and
         * done load: either it sees this count or this sees it asleep */
        if (atomic_fetch_add(&p->done, 1) + 1 == p->n - 1 && atomic_load(&p->caller_sleeps)) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->finished);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

qc_pool_t *qc_pool_new(int n_threads) {
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 256) n_threads = 256;
    qc_pool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = 1;
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->finished, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) goto fail;
    for (int i = 1; i < n_threads; i++) {
        worker_arg_t *a = malloc(sizeof *a);
        if (!a) goto fail;
        *a = (worker_arg_t){p, i};
        if (pthread_create(&p->threads[i], NULL, worker, a)) {
            free(a);
            goto fail;
        }
        p->n = i + 1;
    }
    /* Workers were started with p->n still growing; they only read it while
     * running a task, and no task runs before this returns. */
    return p;
fail:
    qc_pool_free(p);
    return NULL;
}

void qc_pool_free(qc_pool_t *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->quit, 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->run_lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->finished);
    free(p);
}

int qc_pool_size(const qc_pool_t *p) { return p ? p->n : 1; }

void qc_pool_run(qc_pool_t *p, qc_task_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->run_lock);
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    fn(arg, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < p->n - 1) {
        if (++spins < SPIN_PAUSE) {
            cpu_relax();
        } else if (spins < SPIN_YIELD) {
            sched_yield();
        } else {
            pthread_mutex_lock(&p->lock);
            atomic_store(&p->caller_sleeps, 1);
            while (atomic_load(&p->done) < p->n - 1) pthread_cond_wait(&p->finished, &p->lock);
            atomic_store(&p->caller_sleeps, 0);
            pthread_mutex_unlock(&p->lock);
        }
    }
    pthread_mutex_unlock(&p->run_lock);
}

void qc_split(long n, int ith, int nth, long align, long *lo, long *hi) {
    if (align < 1) align = 1;
    long chunks = (n + align - 1) / align;
    long per = chunks / nth, extra = chunks % nth;
    long c0 = ith * per + (ith < extra ? ith : extra);
    long c1 = c0 + per + (ith < extra ? 1 : 0);
    *lo = c0 * align < n ? c0 * align : n;
    *hi = c1 * align < n ? c1 * align : n;
}
