/* threads.h — one persistent pool of worker threads and a parallel_for. */
#ifndef QC_THREADS_H
#define QC_THREADS_H

typedef struct qc_pool qc_pool_t;

/* A task body: runs on thread ith of nth (0 is the caller's thread). */
typedef void (*qc_task_fn)(void *arg, int ith, int nth);

/* Starts n_threads - 1 workers (the caller is the n-th); n_threads <= 0
 * means one per online CPU. NULL when out of memory or threads. */
qc_pool_t *qc_pool_new(int n_threads);
void qc_pool_free(qc_pool_t *p);
int qc_pool_size(const qc_pool_t *p);

/* Runs fn(arg, i, n) on every thread i of the pool and returns when all have
 * finished. Calls from different threads take turns. Workers spin briefly
 * between tasks (a decode step runs a few hundred tasks), then sleep. */
void qc_pool_run(qc_pool_t *p, qc_task_fn fn, void *arg);

/* The half-open range [*lo, *hi) of n items that thread ith of nth takes,
 * in contiguous chunks whose size is a multiple of `align` (except the last). */
void qc_split(long n, int ith, int nth, long align, long *lo, long *hi);

#endif
