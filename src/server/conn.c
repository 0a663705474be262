/* conn.c — what the server watches beside libmicrohttpd: the sockets of
 * suspended connections.
 *
 * A call suspends its connection while it waits for the scheduler (call.c),
 * and libmicrohttpd does not look at a suspended connection's socket, so a
 * client that hangs up would not be noticed until its request had run to
 * the end. One thread here watches those sockets with epoll: a hang-up
 * (EPOLLRDHUP, EPOLLHUP, EPOLLERR) cancels the call, queued or running; a
 * stream suspended for keepalive_ms is woken to send a keep-alive comment.
 *
 * A watched call is alive while it is registered: every path that resumes
 * or frees it unregisters it first (under wmu), so the thread may take a
 * reference to a registered call under wmu, drop wmu, and then act on it
 * under the call's own lock (call.c: qs_call_watched). Slots carry a
 * generation, so an event of a slot reused since is ignored. */
#include "server/srv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define QS_TICK_MS 200 /* the thread's wake-up interval (keep-alives) */
#define QS_BATCH 256   /* calls acted on per wake-up */

typedef struct {
    qs_call_t *c;  /* NULL: free */
    uint32_t gen;
    double due_ms; /* a stream's keep-alive time (0: none) */
    int next_free;
} wslot_t;

struct qs_conns {
    qc_server_t *s;
    int ep, stop_fd; /* the epoll of the watched sockets; an eventfd that stops the thread */
    pthread_t th;
    int started;
    pthread_mutex_t wmu; /* the slots, and each qs_call_t's watch */
    wslot_t *slots;
    int n_slots, free_head;
    uint32_t gen;
};

/* ==== the watch of suspended calls ==== */

void qs_watch_add(qs_conns_t *w, qs_call_t *c, int fd, double due_ms) {
    if (!w || fd < 0) return;
    pthread_mutex_lock(&w->wmu);
    if (w->free_head < 0) {
        int n = w->n_slots ? w->n_slots * 2 : 64;
        wslot_t *p = realloc(w->slots, (size_t)n * sizeof *p);
        if (!p) goto out; /* unwatched: a hang-up is noticed at the call's end */
        for (int i = w->n_slots; i < n; i++) p[i] = (wslot_t){.next_free = i + 1 < n ? i + 1 : -1};
        w->slots = p;
        w->free_head = w->n_slots;
        w->n_slots = n;
    }
    int i = w->free_head;
    wslot_t *sl = &w->slots[i];
    uint32_t gen = ++w->gen;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.u64 = (uint64_t)gen << 32 | (uint32_t)i};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) goto out;
    w->free_head = sl->next_free;
    *sl = (wslot_t){.c = c, .gen = gen, .due_ms = due_ms, .next_free = -1};
    c->watch = i;
    c->watch_fd = fd;
out:
    pthread_mutex_unlock(&w->wmu);
}

/* wmu held. */
static void slot_free(qs_conns_t *w, int i) {
    wslot_t *sl = &w->slots[i];
    epoll_ctl(w->ep, EPOLL_CTL_DEL, sl->c->watch_fd, NULL);
    sl->c->watch = -1;
    *sl = (wslot_t){.next_free = w->free_head};
    w->free_head = i;
}

void qs_watch_del(qs_conns_t *w, qs_call_t *c) {
    if (!w) return;
    pthread_mutex_lock(&w->wmu);
    if (c->watch >= 0) slot_free(w, c->watch);
    pthread_mutex_unlock(&w->wmu);
}

static void *watch_main(void *arg) {
    qs_conns_t *w = arg;
    struct epoll_event evs[64];
    qs_call_t *act[QS_BATCH];
    int hung[QS_BATCH];
    for (;;) {
        int n = epoll_wait(w->ep, evs, 64, QS_TICK_MS);
        if (n < 0 && errno != EINTR) break;
        int k = 0, stop = 0;
        double now = qc_now_ms();
        pthread_mutex_lock(&w->wmu);
        for (int e = 0; e < n; e++) {
            if (evs[e].data.u64 == UINT64_MAX) {
                stop = 1;
                continue;
            }
            int i = (int)(uint32_t)evs[e].data.u64;
            uint32_t gen = (uint32_t)(evs[e].data.u64 >> 32);
            if (i >= w->n_slots || !w->slots[i].c || w->slots[i].gen != gen || k == QS_BATCH) continue;
            act[k] = w->slots[i].c, hung[k++] = 1;
            atomic_fetch_add(&w->slots[i].c->refs, 1);
            slot_free(w, i);
        }
        for (int i = 0; i < w->n_slots && k < QS_BATCH; i++)
            if (w->slots[i].c && w->slots[i].due_ms > 0 && w->slots[i].due_ms <= now) {
                act[k] = w->slots[i].c, hung[k++] = 0;
                atomic_fetch_add(&w->slots[i].c->refs, 1);
                slot_free(w, i);
            }
        pthread_mutex_unlock(&w->wmu);
        for (int q = 0; q < k; q++) qs_call_watched(act[q], hung[q]);
        if (stop) break;
    }
    return NULL;
}

/* ==== start and stop ==== */

qs_conns_t *qs_conns_new(qc_server_t *s) {
    qs_conns_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->s = s;
    w->free_head = -1;
    pthread_mutex_init(&w->wmu, NULL);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (w->ep < 0 || w->stop_fd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->stop_fd, &ev) ||
        pthread_create(&w->th, NULL, watch_main, w)) {
        qs_conns_free(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

void qs_conns_free(qs_conns_t *w) {
    if (!w) return;
    if (w->started) {
        uint64_t one = 1;
        if (write(w->stop_fd, &one, sizeof one) != (ssize_t)sizeof one) { /* cannot fail: the counter is 0 */ }
        pthread_join(w->th, NULL);
    }
    if (w->ep >= 0) close(w->ep);
    if (w->stop_fd >= 0) close(w->stop_fd);
    pthread_mutex_destroy(&w->wmu);
    free(w->slots);
    free(w);
}
