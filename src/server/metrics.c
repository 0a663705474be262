/* metrics.c — what the server counts, and GET /metrics: requests by route
 * and status, latency histograms (per route, and time to first text),
 * token and stream counters, and the scheduler's statistics and gauges, in
 * Prometheus' text exposition format 0.0.4; and the vllm:* gauges the
 * Kubernetes inference gateway reads (print_gateway).
 *
 * The counters are written from every connection's thread and the
 * scheduler's: the per-request ones under a mutex, the token counters as
 * atomics. */
#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Status codes counted one by one (others as "other"). */
static const int status_codes[] = {200, 400, 401, 404, 405, 409, 413, 500, 503};
#define N_CODES (int)(sizeof status_codes / sizeof status_codes[0] + 1)
/* Upper bounds (seconds) of the latency histograms' buckets. */
static const double lat_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
#define N_BOUNDS (int)(sizeof lat_bounds / sizeof lat_bounds[0])

typedef struct {
    unsigned long long bucket[N_BOUNDS + 1], count;
    double sum; /* seconds */
} hist_t;

struct qs_metrics {
    atomic_ulong n_prompt_tokens, n_reply_tokens, n_streams_cancelled;
    pthread_mutex_t mu; /* the fields below */
    unsigned long long requests[QS_MAX_ROUTES + 1][N_CODES]; /* [route index (n_routes: none)][code] */
    hist_t latency[QS_MAX_ROUTES + 1], first_token;
    double t_start; /* ms on qc_now_ms's clock */
};

/* ==== counting ==== */

qs_metrics_t *qs_metrics_new(void) {
    qs_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->t_start = qc_now_ms();
    return m;
}

void qs_metrics_free(qs_metrics_t *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void hist_add(hist_t *h, double v) {
    int i = 0;
    while (i < N_BOUNDS && v > lat_bounds[i]) i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

void qs_metrics_request(qs_metrics_t *m, int route, int status, double seconds) {
    int c = 0;
    while (c < N_CODES - 1 && status_codes[c] != status) c++;
    pthread_mutex_lock(&m->mu);
    m->requests[route][c]++;
    hist_add(&m->latency[route], seconds);
    pthread_mutex_unlock(&m->mu);
}

void qs_metrics_call(qs_metrics_t *m, size_t n_prompt, size_t n_out, double first_s) {
    atomic_fetch_add(&m->n_prompt_tokens, n_prompt);
    atomic_fetch_add(&m->n_reply_tokens, n_out);
    if (first_s >= 0) {
        pthread_mutex_lock(&m->mu);
        hist_add(&m->first_token, first_s);
        pthread_mutex_unlock(&m->mu);
    }
}

void qs_metrics_cancelled(qs_metrics_t *m) { atomic_fetch_add(&m->n_streams_cancelled, 1); }

/* ==== GET /metrics ==== */

/* One histogram in Prometheus' text format (labels: "" or `k="v",`). */
static void hist_print(qc_buf_t *t, const char *name, const char *labels, const hist_t *h) {
    unsigned long long cum = 0;
    for (int i = 0; i <= N_BOUNDS; i++) {
        cum += h->bucket[i];
        char le[32];
        if (i < N_BOUNDS) snprintf(le, sizeof le, "%g", lat_bounds[i]);
        else snprintf(le, sizeof le, "+Inf");
        qc_buf_printf(t, "%s_bucket{%sle=\"%s\"} %llu\n", name, labels, le, cum);
    }
    size_t ll = strlen(labels);
    char lab[128] = "";
    if (ll) snprintf(lab, sizeof lab, "{%.*s}", (int)(ll - 1), labels); /* without the trailing comma */
    qc_buf_printf(t, "%s_sum%s %.6f\n%s_count%s %llu\n", name, lab, h->sum, name, lab, h->count);
}

/* The per-route lines: requests by status, latency histograms (mu held). */
static void print_routes(const qc_server_t *s, qc_buf_t *t) {
    const qs_metrics_t *m = s->metrics;
    qc_buf_printf(t, "# HELP qcare_requests_total HTTP requests answered, by path and status.\n"
                     "# TYPE qcare_requests_total counter\n");
    for (int k = 0; k <= s->n_routes; k++)
        for (int c = 0; c < N_CODES; c++)
            if (m->requests[k][c]) {
                char code[8];
                if (c < N_CODES - 1) snprintf(code, sizeof code, "%d", status_codes[c]);
                else snprintf(code, sizeof code, "other");
                qc_buf_printf(t, "qcare_requests_total{path=\"%s\",code=\"%s\"} %llu\n",
                              k < s->n_routes ? s->routes[k]->path : "other", code, m->requests[k][c]);
            }
    qc_buf_printf(t, "# HELP qcare_request_duration_seconds Time from a request's arrival to its last byte.\n"
                     "# TYPE qcare_request_duration_seconds histogram\n");
    for (int k = 0; k <= s->n_routes; k++)
        if (m->latency[k].count) {
            char lab[64];
            snprintf(lab, sizeof lab, "path=\"%s\",", k < s->n_routes ? s->routes[k]->path : "other");
            hist_print(t, "qcare_request_duration_seconds", lab, &m->latency[k]);
        }
    qc_buf_printf(t, "# HELP qcare_time_to_first_token_seconds Time from a request's arrival to its first reply "
                     "text.\n# TYPE qcare_time_to_first_token_seconds histogram\n");
    hist_print(t, "qcare_time_to_first_token_seconds", "", &m->first_token);
}

/* The gauges the Gateway API Inference Extension's endpoint picker reads,
 * under the names vLLM exports (Prometheus allows ':' in metric names;
 * vLLM's are "vllm:..."), and the probes' state. What qcare means by them:
 *   num_requests_waiting  requests accepted and queued for a slot
 *   num_requests_running  requests holding one of the --parallel slots
 *                         (judging, reading their prompt or decoding)
 *   kv_cache_usage_perc   KV bytes in use over the KV budget, 0..1 (a
 *                         fraction, as vLLM's despite the name). The budget:
 *                         the conversations' (QS_SESSION_BUDGET, evicted
 *                         LRU beyond) plus one full --ctx context per slot;
 *                         in use: the conversations' KV state and the
 *                         tokens in the slots' contexts. The /v1/classify
 *                         prefix cache (--prefix-cache-mb) is apart.
 *   cache_config_info     that budget in blocks of QS_KV_BLOCK tokens:
 *                         block_size tokens per block, num_gpu_blocks blocks
 *                         (CPU memory here; the names are vLLM's). qcare does
 *                         not page its KV cache: a block is only a unit. */
#define QS_KV_BLOCK 16 /* tokens (vLLM's default block size) */

static void print_gateway(const qc_server_t *s, const qs_stats_t *st, qc_buf_t *t) {
    size_t bpt = qc_model_kv_bytes_per_token(s->m);
    double used = (double)st->session_bytes + (double)st->kv_tokens * (double)bpt;
    double budget = (double)s->kv_budget_tokens * (double)bpt, frac = budget > 0 ? used / budget : 0;
    qc_buf_printf(t,
                  "# HELP vllm:num_requests_waiting Requests accepted and waiting for a generation slot.\n"
                  "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting %d\n"
                  "# HELP vllm:num_requests_running Requests holding a generation slot (judging, prompt or decoding).\n"
                  "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running %d\n"
                  "# HELP vllm:kv_cache_usage_perc KV cache bytes in use over the KV budget (conversations and slots; "
                  "1 = full).\n"
                  "# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc %.9g\n"
                  "# HELP vllm:cache_config_info The KV budget in blocks: block_size tokens per block, num_gpu_blocks "
                  "blocks (CPU memory).\n"
                  "# TYPE vllm:cache_config_info gauge\n"
                  "vllm:cache_config_info{block_size=\"%d\",num_gpu_blocks=\"%zu\"} 1\n",
                  st->queued, st->active, frac < 1 ? frac : 1, QS_KV_BLOCK, s->kv_budget_tokens / QS_KV_BLOCK);
    qc_buf_printf(t,
                  "# HELP qcare_scheduler_stall_seconds Time the scheduler has been in its current loop while work "
                  "waits (0 when idle); /health is 503 from --watchdog on.\n"
                  "# TYPE qcare_scheduler_stall_seconds gauge\nqcare_scheduler_stall_seconds %.3f\n"
                  "# HELP qcare_draining 1 once SIGTERM or SIGINT came: /ready and new requests are 503.\n"
                  "# TYPE qcare_draining gauge\nqcare_draining %d\n",
                  qs_sched_stall_s(s->sched), atomic_load(&s->draining));
}

static enum MHD_Result reply_metrics(qc_server_t *s, struct MHD_Connection *con, qs_req_t *r) {
    qs_metrics_t *m = s->metrics;
    qs_stats_t st;
    qs_stats(s->sched, &st);
    qc_buf_t t = {0};
    pthread_mutex_lock(&m->mu);
    print_routes(s, &t);
    pthread_mutex_unlock(&m->mu);
    qc_buf_printf(&t,
                  "# HELP qcare_prompt_tokens_total Prompt tokens of finished requests.\n"
                  "# TYPE qcare_prompt_tokens_total counter\nqcare_prompt_tokens_total %lu\n"
                  "# HELP qcare_generated_tokens_total Tokens generated for finished requests.\n"
                  "# TYPE qcare_generated_tokens_total counter\nqcare_generated_tokens_total %lu\n"
                  "# HELP qcare_streams_cancelled_total Streams ended early (client gone or error).\n"
                  "# TYPE qcare_streams_cancelled_total counter\nqcare_streams_cancelled_total %lu\n"
                  "# HELP qcare_requests_cancelled_total Requests given up because their client went away, queued "
                  "or running.\n"
                  "# TYPE qcare_requests_cancelled_total counter\nqcare_requests_cancelled_total %llu\n",
                  (unsigned long)atomic_load(&m->n_prompt_tokens), (unsigned long)atomic_load(&m->n_reply_tokens),
                  (unsigned long)atomic_load(&m->n_streams_cancelled), st.cancelled);
    qc_buf_printf(&t,
                  "# HELP qcare_batch_passes_total Forward passes of the model (each batches every active request).\n"
                  "# TYPE qcare_batch_passes_total counter\nqcare_batch_passes_total %llu\n"
                  "# HELP qcare_batch_tokens_total Tokens run in those passes (decode and prompt).\n"
                  "# TYPE qcare_batch_tokens_total counter\nqcare_batch_tokens_total %llu\n"
                  "# HELP qcare_decode_tokens_total Decode tokens run in those passes.\n"
                  "# TYPE qcare_decode_tokens_total counter\nqcare_decode_tokens_total %llu\n"
                  "# HELP qcare_model_busy_seconds_total Time the model spent in passes and emotion judgments.\n"
                  "# TYPE qcare_model_busy_seconds_total counter\nqcare_model_busy_seconds_total %.3f\n"
                  "# HELP qcare_decode_only_seconds_total Time in passes without prompt tokens (steady decoding).\n"
                  "# TYPE qcare_decode_only_seconds_total counter\nqcare_decode_only_seconds_total %.3f\n"
                  "# HELP qcare_decode_only_tokens_total Tokens of those passes.\n"
                  "# TYPE qcare_decode_only_tokens_total counter\nqcare_decode_only_tokens_total %llu\n",
                  st.passes, st.pass_tokens, st.decode_tokens, st.busy_s, st.decode_s, st.decode_pass_tokens);
    qc_buf_printf(&t,
                  "# HELP qcare_queue_depth Requests waiting for a slot.\n# TYPE qcare_queue_depth gauge\n"
                  "qcare_queue_depth %d\n"
                  "# HELP qcare_queue_capacity Requests that may wait before 503.\n# TYPE qcare_queue_capacity gauge\n"
                  "qcare_queue_capacity %d\n"
                  "# HELP qcare_active_requests Requests generating now.\n# TYPE qcare_active_requests gauge\n"
                  "qcare_active_requests %d\n"
                  "# HELP qcare_parallel_slots Requests that may generate at once.\n# TYPE qcare_parallel_slots gauge\n"
                  "qcare_parallel_slots %d\n",
                  st.queued, s->queue, st.active, s->parallel);
    qc_buf_printf(&t,
                  "# HELP qcare_sessions Conversations kept.\n# TYPE qcare_sessions gauge\nqcare_sessions %d\n"
                  "# HELP qcare_sessions_resident Conversations holding their KV state in memory.\n"
                  "# TYPE qcare_sessions_resident gauge\nqcare_sessions_resident %d\n"
                  "# HELP qcare_sessions_kv_bytes KV cache bytes held by conversations.\n"
                  "# TYPE qcare_sessions_kv_bytes gauge\nqcare_sessions_kv_bytes %zu\n"
                  "# HELP qcare_uptime_seconds Seconds since the server started.\n# TYPE qcare_uptime_seconds gauge\n"
                  "qcare_uptime_seconds %.1f\n",
                  st.sessions, st.resident, st.session_bytes, (qc_now_ms() - m->t_start) / 1e3);
    qc_buf_printf(&t,
                  "# HELP qcare_session_rebuilds_total Conversations rebuilt from their recorded turns (held by another "
                  "replica, by this one before a restart, or outdated here).\n"
                  "# TYPE qcare_session_rebuilds_total counter\nqcare_session_rebuilds_total %llu\n"
                  "# HELP qcare_session_rebuilt_turns_total Recorded turns replayed by those rebuilds.\n"
                  "# TYPE qcare_session_rebuilt_turns_total counter\nqcare_session_rebuilt_turns_total %llu\n"
                  "# HELP qcare_session_rebuild_seconds_total Time those rebuilds took, their KV state included.\n"
                  "# TYPE qcare_session_rebuild_seconds_total counter\nqcare_session_rebuild_seconds_total %.6f\n"
                  "# HELP qcare_session_stale_drops_total Held conversations dropped because the records store had "
                  "turns they lacked (another replica answered or erased the session).\n"
                  "# TYPE qcare_session_stale_drops_total counter\nqcare_session_stale_drops_total %llu\n",
                  st.rebuilds, st.rebuilt_turns, st.rebuild_s, st.stale_drops);
    qs_records_metrics(s->rec, &t);
    print_gateway(s, &st, &t);
    size_t len = t.n;
    char *text = qc_buf_take(&t);
    if (!text) return qs_reply_error(con, r, 500, "out of memory");
    return qs_reply_bytes(con, r, 200, text, len, MHD_RESPMEM_MUST_FREE, "text/plain; version=0.0.4; charset=utf-8",
                          "Cache-Control", "no-cache");
}

const qs_route_t qs_metrics_routes[] = {
    {"/metrics", "GET", QS_PROBE, reply_metrics, 0},
    {0},
};
