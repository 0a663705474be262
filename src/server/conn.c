/* conn.c — what the server watches beside libmicrohttpd: who may connect,
 * how long a request's headers may take, and the sockets of suspended
 * connections.
 *
 * Limits: at most max_conns connections in all and max_client per client
 * address (trusted proxies exempt: many clients reach the server through
 * them). A connection over a limit is refused before libmicrohttpd takes it
 * (its accept policy) or, when several threads accepted at once, closed as
 * soon as it is counted; either way one log line says why (at most one per
 * QS_LOG_MS, counting the others).
 *
 * Header timeout: libmicrohttpd 0.9.75 has only an idle timeout, which a
 * client sending one byte every few seconds never reaches. Here every
 * connection waiting for a request's headers (since it was opened, or since
 * its previous answer) is shut down once header_ms have passed; its first
 * call to the access handler (the headers are complete) stops the clock.
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

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define QS_TICK_MS 200 /* the thread's wake-up interval (keep-alives, header timeouts) */
#define QS_BATCH 256   /* calls acted on per wake-up */
#define QS_LOG_MS 10000 /* at most one log line per this long for refusals, one for header timeouts */
#define QS_BUCKETS 1024 /* of the client table */

/* One client address and its open connections. */
typedef struct client {
    struct client *next;
    unsigned char key[17]; /* 4 or 6, then the address (IPv4-mapped IPv6 as IPv4) */
    int n;
} client_t;

/* One connection (libmicrohttpd's socket context). */
typedef struct qs_conn {
    struct qs_conn *prev, *next;
    int fd;
    double since_ms;  /* waiting for a request's headers since then (accept, or the previous answer) */
    int in_request;   /* headers complete, not yet answered */
    int n_requests;   /* answered on it so far */
    int closing;      /* shut down here */
    int counted;      /* in the list and the counts */
    client_t *client; /* NULL: a trusted proxy */
} qs_conn_t;

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
    /* the connections, under cmu */
    pthread_mutex_t cmu;
    qs_conns_opts_t o;
    unsigned char (*trusted)[17];
    int n_trusted;
    qs_conn_t *head;
    int n_conns;
    client_t *buckets[QS_BUCKETS];
    double refused_log_ms, slow_log_ms; /* the last such lines */
    unsigned long n_refused, n_slow;    /* since them */
};

/* ==== addresses ==== */

/* The table key of an address; 0, or -1 when it is neither IPv4 nor IPv6. */
static int addr_key(const struct sockaddr *a, unsigned char key[17]) {
    memset(key, 0, 17);
    if (a && a->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)a)->sin_addr, 4);
        return 0;
    }
    if (a && a->sa_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(v6)) {
            key[0] = 4;
            memcpy(key + 1, v6->s6_addr + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, v6->s6_addr, 16);
        }
        return 0;
    }
    return -1;
}

static void key_str(const unsigned char key[17], char *out, size_t n) {
    if (!inet_ntop(key[0] == 4 ? AF_INET : AF_INET6, key + 1, out, (socklen_t)n)) snprintf(out, n, "?");
}

static int trusted(const qs_conns_t *w, const unsigned char key[17]) {
    for (int i = 0; i < w->n_trusted; i++)
        if (!memcmp(w->trusted[i], key, 17)) return 1;
    return 0;
}

/* The client of key (cmu held), created with n 0 when create; NULL when
 * absent or out of memory. */
static client_t *client_get(qs_conns_t *w, const unsigned char key[17], int create) {
    unsigned h = 2166136261u;
    for (int i = 0; i < 17; i++) h = (h ^ key[i]) * 16777619u;
    client_t **b = &w->buckets[h % QS_BUCKETS];
    for (client_t *c = *b; c; c = c->next)
        if (!memcmp(c->key, key, 17)) return c;
    client_t *c = create ? calloc(1, sizeof *c) : NULL;
    if (c) {
        memcpy(c->key, key, 17);
        c->next = *b;
        *b = c;
    }
    return c;
}

static void client_put(qs_conns_t *w, client_t *c) {
    if (!c || --c->n > 0) return;
    unsigned h = 2166136261u;
    for (int i = 0; i < 17; i++) h = (h ^ c->key[i]) * 16777619u;
    for (client_t **p = &w->buckets[h % QS_BUCKETS]; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            free(c);
            return;
        }
}

/* ==== limits ==== */

/* Why a connection from key is over a limit (cmu held; `extra` 1 when it
 * is already counted), or NULL. */
static const char *over_limit(const qs_conns_t *w, const client_t *c, int extra, char *why, size_t n) {
    if (w->n_conns - extra >= w->o.max_conns) {
        snprintf(why, n, "the server has %d connections open (--max-connections %d)", w->n_conns - extra,
                 w->o.max_conns);
        return why;
    }
    if (c && c->n - extra >= w->o.max_client) {
        snprintf(why, n, "%d connections open from that address (--max-client-connections %d)", c->n - extra,
                 w->o.max_client);
        return why;
    }
    return NULL;
}

/* Logs a refusal: the first at once, then at most one line per QS_LOG_MS
 * with the count since (cmu held). */
static void log_refused(qs_conns_t *w, const unsigned char key[17], const char *why) {
    w->n_refused++;
    double now = qc_now_ms();
    if (w->refused_log_ms > 0 && now - w->refused_log_ms < QS_LOG_MS) return;
    char a[INET6_ADDRSTRLEN];
    key_str(key, a, sizeof a);
    if (w->n_refused > 1)
        fprintf(stderr, "qcare: refused a connection from %s: %s (%lu refused since the last such line)\n", a, why,
                w->n_refused);
    else
        fprintf(stderr, "qcare: refused a connection from %s: %s\n", a, why);
    w->refused_log_ms = now;
    w->n_refused = 0;
}

enum MHD_Result qs_conns_accept(void *cls, const struct sockaddr *addr, socklen_t len) {
    (void)len;
    qs_conns_t *w = cls;
    unsigned char key[17];
    if (addr_key(addr, key)) return MHD_YES;
    char why[160];
    pthread_mutex_lock(&w->cmu);
    const char *bad = over_limit(w, trusted(w, key) ? NULL : client_get(w, key, 0), 0, why, sizeof why);
    if (bad) log_refused(w, key, bad);
    pthread_mutex_unlock(&w->cmu);
    return bad ? MHD_NO : MHD_YES;
}

void qs_conns_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                     enum MHD_ConnectionNotificationCode code) {
    qs_conns_t *w = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fi = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        unsigned char key[17];
        qs_conn_t *k = calloc(1, sizeof *k);
        *socket_context = k;
        if (!k || !fi || !ai || addr_key(ai->client_addr, key)) return; /* not counted: it closes untracked */
        k->fd = fi->connect_fd;
        k->since_ms = qc_now_ms();
        char why[160];
        pthread_mutex_lock(&w->cmu);
        w->n_conns++;
        if (!trusted(w, key) && (k->client = client_get(w, key, 1))) k->client->n++;
        k->next = w->head;
        if (w->head) w->head->prev = k;
        w->head = k;
        k->counted = 1;
        /* the accept policy's check raced with another thread's accept */
        const char *bad = over_limit(w, k->client, 1, why, sizeof why);
        if (bad) {
            log_refused(w, key, bad);
            k->closing = 1;
            shutdown(k->fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&w->cmu);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        qs_conn_t *k = *socket_context;
        *socket_context = NULL;
        if (!k) return;
        if (k->counted) {
            pthread_mutex_lock(&w->cmu);
            if (k->prev) k->prev->next = k->next;
            else w->head = k->next;
            if (k->next) k->next->prev = k->prev;
            w->n_conns--;
            client_put(w, k->client);
            pthread_mutex_unlock(&w->cmu);
        }
        free(k);
    }
}

void qs_conns_request(qs_conns_t *w, struct MHD_Connection *con, int begins) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    qs_conn_t *k = ci ? ci->socket_context : NULL;
    if (!k) return;
    pthread_mutex_lock(&w->cmu);
    k->in_request = begins;
    if (!begins) {
        k->n_requests++;
        k->since_ms = qc_now_ms();
    }
    pthread_mutex_unlock(&w->cmu);
}

/* Shuts down the connections whose request headers took longer than
 * header_ms (libmicrohttpd then sees them closed); one log line per
 * QS_LOG_MS for those that never sent a whole request (an idle keep-alive
 * connection closed this way is normal). */
static void reap_slow(qs_conns_t *w) {
    double now = qc_now_ms();
    pthread_mutex_lock(&w->cmu);
    for (qs_conn_t *k = w->head; k; k = k->next)
        if (!k->in_request && !k->closing && now - k->since_ms > w->o.header_ms) {
            k->closing = 1;
            shutdown(k->fd, SHUT_RDWR);
            if (!k->n_requests) w->n_slow++;
        }
    if (w->n_slow && (w->slow_log_ms == 0 || now - w->slow_log_ms >= QS_LOG_MS)) {
        fprintf(stderr, "qcare: closed %lu connection%s whose request headers took longer than %.0f s (--header-timeout)\n",
                w->n_slow, w->n_slow == 1 ? "" : "s", w->o.header_ms / 1e3);
        w->slow_log_ms = now;
        w->n_slow = 0;
    }
    pthread_mutex_unlock(&w->cmu);
}

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
        reap_slow(w);
    }
    return NULL;
}

/* ==== start and stop ==== */

qs_conns_t *qs_conns_new(qc_server_t *s, const qs_conns_opts_t *o, char *err, size_t err_size) {
    qs_conns_t *w = calloc(1, sizeof *w);
    if (!w) {
        qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    w->s = s;
    w->o = *o;
    w->free_head = -1;
    w->ep = w->stop_fd = -1;
    pthread_mutex_init(&w->wmu, NULL);
    pthread_mutex_init(&w->cmu, NULL);
    for (int i = 0; o->trusted && o->trusted[i]; i++) w->n_trusted++;
    if (w->n_trusted && !(w->trusted = calloc((size_t)w->n_trusted, sizeof *w->trusted))) {
        qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
        qs_conns_free(w);
        return NULL;
    }
    for (int i = 0; i < w->n_trusted; i++) {
        struct sockaddr_in a4 = {.sin_family = AF_INET};
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
        const char *t = o->trusted[i];
        int ok = inet_pton(AF_INET, t, &a4.sin_addr) == 1 ? !addr_key((struct sockaddr *)&a4, w->trusted[i])
                 : inet_pton(AF_INET6, t, &a6.sin6_addr) == 1 ? !addr_key((struct sockaddr *)&a6, w->trusted[i])
                                                              : 0;
        if (!ok) {
            qc_seterr(err, err_size, QC_ERR_ARG, "--trusted-proxy '%s' is not an IPv4 or IPv6 address", t);
            qs_conns_free(w);
            return NULL;
        }
    }
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (w->ep < 0 || w->stop_fd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->stop_fd, &ev) ||
        pthread_create(&w->th, NULL, watch_main, w)) {
        qc_seterr(err, err_size, QC_ERR_NOMEM, "out of memory");
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
    pthread_mutex_destroy(&w->cmu);
    for (int i = 0; i < QS_BUCKETS; i++)
        for (client_t *c = w->buckets[i], *next; c; c = next) {
            next = c->next;
            free(c);
        }
    free(w->trusted);
    free(w->slots);
    free(w);
}
