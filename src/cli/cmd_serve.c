/* cmd_serve.c — `qcare serve`: loads the model and runs the HTTP server
 * (src/server/) until SIGINT or SIGTERM, which drain it: /ready and new
 * requests answer 503, the requests in flight finish (at most
 * --drain-timeout seconds, then they are cut), and it exits 0; a second
 * signal meanwhile exits 1 at once. */
#include "cli/cli.h"
#include "records/ident.h"
#include "records/records.h"
#include "server/server.h"
#include "mkmodel.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#define SERVE_MAX_LIST 16    /* values of a repeatable option (--trusted-proxy, --allow-origin) */
#define SERVE_FD_RESERVE 64  /* open files kept for the model, logs and the server's own */
#define SERVE_CUT_GRACE_S 5  /* seconds the answers of requests cut at --drain-timeout get to go out */
#define SERVE_LINGER_S 1.0   /* seconds a drained server still answers 503 before it stops */

/* Raises the open-file limit to its hard limit (each connection is a
 * socket) and returns how many connections it leaves room for. */
static long fd_room(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return 1024 - SERVE_FD_RESERVE;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl)) getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000 ? 1000000 - SERVE_FD_RESERVE
                                                                   : (long)rl.rlim_cur - SERVE_FD_RESERVE;
}

/* Appends v to a repeatable option's NULL-terminated list; -1 (said) when
 * it is full. */
static int add_value(const char *opt, const char **list, int *n, int max, const char *v) {
    if (*n == max) {
        fprintf(stderr, "qcare serve: %s at most %d times\n", opt, max);
        return -1;
    }
    list[(*n)++] = v;
    return 0;
}

/* Whether host (an IPv4 or IPv6 address) is a loopback address. */
static int is_loopback(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* A key option: given, or from the environment variable env; -1 (printed) when empty. */
static int key_opt(const char **key, const char *opt, const char *env) {
    if (!*key) {
        const char *e = getenv(env);
        if (e && *e) *key = e;
    }
    if (*key && !**key) {
        fprintf(stderr, "qcare serve: %s must not be empty\n", opt);
        return -1;
    }
    return 0;
}

/* A PostgreSQL URL as the log may show it: the password (user:PASSWORD@)
 * masked and the query (which may carry password=...) left out. */
static const char *url_shown(const char *url, char *out, size_t n) {
    const char *auth = strstr(url, "://"), *end = url + strcspn(url, "?");
    auth = auth ? auth + 3 : url;
    const char *at = memchr(auth, '@', (size_t)(end - auth)), *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) snprintf(out, n, "%.*s:***%.*s", (int)(colon - url), url, (int)(end - at), at);
    else snprintf(out, n, "%.*s", (int)(end - url), url);
    return out;
}

/* A tenth of a second of the drain; a second SIGTERM or SIGINT meanwhile
 * ends the process at once, with exit status 1. */
static void drain_pause(const sigset_t *stop) {
    struct timespec ts = {0, 100 * 1000000L};
    int again = sigtimedwait(stop, NULL, &ts);
    if (again == SIGINT || again == SIGTERM) {
        fprintf(stderr, "qcare: %s while draining: stopping at once (exit status 1)\n",
                again == SIGINT ? "SIGINT" : "SIGTERM");
        _exit(1);
    }
}

/* The drain after the first SIGTERM / SIGINT (server.h): waits up to
 * drain_s seconds for the requests in flight, cuts those still running,
 * and gives their last answers SERVE_CUT_GRACE_S to go out. A second
 * signal meanwhile ends the process at once, with exit status 1. */
static void drain(qc_server_t *s, const sigset_t *stop, int sig, int drain_s) {
    qc_server_drain(s);
    double t0 = qc_now_s(), el = 0;
    int n = qc_server_inflight(s), cut = 0;
    fprintf(stderr, "qcare: %s: draining (/ready and new requests answer 503); up to %d s for %d request%s in flight\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", drain_s, n, n == 1 ? "" : "s");
    while ((n = qc_server_inflight(s)) > 0) {
        el = qc_now_s() - t0;
        if (!cut && el >= drain_s) {
            cut = n;
            qc_server_cut(s);
        }
        if (cut && el >= drain_s + SERVE_CUT_GRACE_S) break; /* a client that reads nothing is not waited for */
        drain_pause(stop);
    }
    /* A balancer may still pass a request on a keep-alive connection it
     * held before the drain: a moment more of 503s (each closing its
     * connection) instead of a connection closed under the request. */
    for (double t1 = qc_now_s(), e = 0; !cut && (e < SERVE_LINGER_S || (qc_server_inflight(s) > 0 && e < 2 * SERVE_LINGER_S));
         e = qc_now_s() - t1)
        drain_pause(stop);
    el = qc_now_s() - t0;
    if (cut)
        fprintf(stderr, "qcare: drained in %.1f s: %d request%s still running at --drain-timeout were cut; stopping\n",
                el, cut, cut == 1 ? "" : "s");
    else fprintf(stderr, "qcare: drained in %.1f s: every request in flight finished; stopping\n", el);
}

int cmd_serve(int argc, char **argv) {
    const char *model = NULL, *dtype = NULL, *host = "127.0.0.1", *api_key = NULL, *admin_key = NULL, *v;
    const char *records = NULL, *sync = NULL, *metrics_key = NULL;
    int watchdog = 30, drain_timeout = 30;
    int port = 8080, n_threads = 0, n_ctx = 0, quiet = 0, bad = 0, parallel = 4, queue = -2, timeout = 60;
    int prefix_mb = 64, risk = 0;
    int header_timeout = 10, max_conns = 0, max_client = 64, n_trusted = 0, max_sessions = 4096;
    const char *trusted[SERVE_MAX_LIST + 1] = {0}, *origins[SERVE_MAX_LIST + 1] = {0};
    int n_origins = 0, no_records = 0, retain_days = 0;
    cli_safety_args_t sa = {0};
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare serve [--model M] [--host 127.0.0.1] [--port 8080] [--threads N] [--parallel N]\n"
                   "                   [--queue N] [--api-key KEY] [--risk-model on|off] [--prefix-cache-mb N]\n"
                   "                   [--records PATH | --no-records] [--admin-key KEY]\n"
                   "                   [--safety-rules F] [--region R] [connection options] [operations options]\n\n"
                   "Serves the care pipeline over HTTP until SIGINT/SIGTERM (POST bodies are JSON sent as\n"
                   "Content-Type: application/json):\n"
                   "  GET  /health                liveness: {\"status\": \"ok\"}, 503 when the scheduler is stuck\n"
                   "                              (--watchdog); open even with an API key\n"
                   "  GET  /ready                 readiness: 200 when serving, 503 while draining (open)\n"
                   "  POST /api/emotion           {\"text\"} -> {\"label\", \"probs\", \"urgent\", \"notice\"?}\n"
                   "  POST /api/analyze           {\"text\", \"session\"?, \"max_tokens\"?, \"stream\"?} -> emotion,\n"
                   "                              urgent flag and notice, reply (Server-Sent Events with stream)\n"
                   "  POST /v1/classify           {\"text\", \"labels\", \"instruction\"?, \"examples\"?, \"calibrate\"?,\n"
                   "                              \"normalize\"?} -> each label's probability and log-likelihood\n"
                   "  GET  /v1/models, POST /v1/chat/completions, POST /v1/completions   OpenAI-compatible\n"
                   "                              (with logprobs / top_logprobs; /v1/completions echoes prompt logprobs)\n"
                   "  GET  /metrics               Prometheus metrics, with the vllm:* gauges the Kubernetes\n"
                   "                              inference gateway reads (open unless --metrics-key)\n"
                   "  GET  /                      the chat page\n"
                   "  GET  /dashboard, /api/records/...   the follow-up view (with --admin-key)\n\n"
                   "  --model M         a Hugging Face folder, a .gguf file or a pulled repo name\n"
                   "                    (default: the default model, once pulled)\n"
                   "  --dtype T         weights: auto (default: a GGUF as stored, else q8_0); converted: q8_0, q4_0, bf16, f16, f32\n"
                   "  --host ADDR       address to bind (default 127.0.0.1: this machine only)\n"
                   "  --port N          TCP port (default 8080)\n"
                   "  --threads N       model threads (default: one per core)\n"
                   "  --ctx N           context of each request in tokens (default 2048)\n"
                   "  --parallel N      requests generating at once, batched into each model pass (default 4)\n"
                   "  --queue N         requests that may wait for a slot; more get 503 + Retry-After\n"
                   "                    (default 4 x parallel)\n"
                   "  --max-sessions N  conversations kept (default 4096); a new one beyond drops the least\n"
                   "                    recently used idle one, its history and all\n"
                   "  --timeout S       close connections idle for S seconds (slow clients; default 60)\n"
                   "  --header-timeout S  close a connection whose request headers are not complete S seconds\n"
                   "                    after it opened or got its previous answer (default 10)\n"
                   "  --max-connections N         open connections in all (default 1000)\n"
                   "  --max-client-connections N  open connections from one client address (default 64)\n"
                   "  --trusted-proxy ADDR        a proxy's address (e.g. 127.0.0.1 for a local nginx), exempt\n"
                   "                    from --max-client-connections; repeatable\n"
                   "  --api-key KEY     require \"Authorization: Bearer KEY\" (also $QCARE_API_KEY)\n"
                   "  --risk-model on   /api/analyze also asks the model whether the message is urgent (label\n"
                   "                    scoring, its own few-shot prompt); the notice shows when the rules or\n"
                   "                    the model say urgent; both verdicts are returned (default off)\n"
                   "  --prefix-cache-mb N  MiB of KV state kept for /v1/classify prompt prefixes, least\n"
                   "                    recently used evicted first (default 64)\n"
                   "  --allow-origin O  let pages from origin O (https://app.example.org, or *) call the API;\n"
                   "                    repeatable (default: only the server's own page; requests without an\n"
                   "                    Origin header, e.g. curl, are always accepted)\n"
                   "  --quiet           no per-request log lines on stderr\n"
                   "  --records PATH    keep the consultation records (every turn of /api/emotion and\n"
                   "                    /api/analyze) in this SQLite file (default $QCARE_DATA/records.db,\n"
                   "                    $QCARE_DATA defaulting to ~/.local/share/qcare, created 0700)\n"
                   "  --records postgresql://USER@HOST:PORT/DB   ... or in this PostgreSQL database, which\n"
                   "                    replicas share: a conversation this process does not hold, or\n"
                   "                    holds but another replica has answered or erased since, is\n"
                   "                    rebuilt from its records, so any replica can take any turn; while\n"
                   "                    the database is away, turns get 503\n"
                   "  --no-records      keep none\n"
                   "  --records-sync full|normal   full: each commit survives a power cut (slower);\n"
                   "                    normal (default): it survives a crash of qcare\n"
                   "  --retain-days N   remove turns older than N days (at start, then hourly)\n"
                   "  --admin-key KEY   opens the follow-up view and its API with \"Authorization: Bearer\n"
                   "                    KEY\" (also $QCARE_ADMIN_KEY), and every other endpoint too\n" CLI_SAFETY_HELP
                   "\nOperations (several replicas behind a balancer: docs/deploy.md):\n"
                   "  --watchdog S      /health answers 503 when the scheduler has not finished a loop for S\n"
                   "                    seconds while work waits (default 30)\n"
                   "  --drain-timeout S on SIGTERM or SIGINT, let the requests in flight finish for at most S\n"
                   "                    seconds (default 30; then streams end with an error event, waiting\n"
                   "                    answers with 503), then exit 0; a second signal exits 1 at once\n"
                   "  --metrics-key KEY /metrics needs \"Authorization: Bearer KEY\" (the API or admin key\n"
                   "                    opens it too; without it /metrics is open, like /health and /ready)\n"
                   "The X-Session-Id header names the conversation like the body's \"session\" (both given:\n"
                   "they must be equal), so that a balancer can hash on it.\n");
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--model", &model, &bad) || cli_opt(argc, argv, &i, "-m", &model, &bad) ||
            cli_opt(argc, argv, &i, "--dtype", &dtype, &bad) || cli_opt(argc, argv, &i, "--host", &host, &bad) ||
            cli_opt(argc, argv, &i, "--api-key", &api_key, &bad) ||
            cli_opt(argc, argv, &i, "--admin-key", &admin_key, &bad) ||
            cli_opt(argc, argv, &i, "--records-sync", &sync, &bad) || cli_safety_opt(argc, argv, &i, &sa, &bad))
            continue;
        if (cli_opt(argc, argv, &i, "--records", &records, &bad)) { /* the last of --records / --no-records wins */
            no_records = 0;
            continue;
        }
        if (cli_opt(argc, argv, &i, "--no-records", NULL, &bad)) {
            no_records = 1;
            records = NULL;
            continue;
        }
        if (cli_opt(argc, argv, &i, "--retain-days", &v, &bad)) {
            if (!bad) retain_days = (int)cli_parse_long("--retain-days", v, 1, 365000, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--metrics-key", &metrics_key, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--watchdog", &v, &bad)) {
            if (!bad) watchdog = (int)cli_parse_long("--watchdog", v, 1, 86400, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--drain-timeout", &v, &bad)) {
            if (!bad) drain_timeout = (int)cli_parse_long("--drain-timeout", v, 0, 86400, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--quiet", NULL, &bad)) {
            quiet = 1;
            continue;
        }
        if (cli_opt(argc, argv, &i, "--port", &v, &bad)) {
            if (!bad) port = (int)cli_parse_long("--port", v, 1, 65535, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--threads", &v, &bad) || cli_opt(argc, argv, &i, "-t", &v, &bad)) {
            if (!bad) n_threads = (int)cli_parse_long("--threads", v, 1, 256, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--parallel", &v, &bad)) {
            if (!bad) parallel = (int)cli_parse_long("--parallel", v, 1, 64, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--queue", &v, &bad)) {
            if (!bad) queue = (int)cli_parse_long("--queue", v, 0, 100000, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--timeout", &v, &bad)) {
            if (!bad) timeout = (int)cli_parse_long("--timeout", v, 1, 86400, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--prefix-cache-mb", &v, &bad)) {
            if (!bad) prefix_mb = (int)cli_parse_long("--prefix-cache-mb", v, 1, 1 << 20, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--risk-model", &v, &bad)) {
            if (!bad && strcmp(v, "on") && strcmp(v, "off")) {
                fprintf(stderr, "qcare serve: --risk-model must be on or off\n");
                return 2;
            }
            if (!bad) risk = !strcmp(v, "on");
            continue;
        }
        if (cli_opt(argc, argv, &i, "--max-sessions", &v, &bad)) {
            if (!bad) max_sessions = (int)cli_parse_long("--max-sessions", v, 1, 1000000, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--header-timeout", &v, &bad)) {
            if (!bad) header_timeout = (int)cli_parse_long("--header-timeout", v, 1, 3600, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--max-connections", &v, &bad)) {
            if (!bad) max_conns = (int)cli_parse_long("--max-connections", v, 1, 1000000, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--max-client-connections", &v, &bad)) {
            if (!bad) max_client = (int)cli_parse_long("--max-client-connections", v, 1, 1000000, &bad);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--allow-origin", &v, &bad)) {
            if (!bad && add_value("--allow-origin", origins, &n_origins, SERVE_MAX_LIST, v)) return 2;
            continue;
        }
        if (cli_opt(argc, argv, &i, "--trusted-proxy", &v, &bad)) {
            if (!bad && add_value("--trusted-proxy", trusted, &n_trusted, SERVE_MAX_LIST, v)) return 2;
            continue;
        }
        if (cli_opt(argc, argv, &i, "--ctx", &v, &bad)) {
            if (!bad) n_ctx = (int)cli_parse_long("--ctx", v, 1024, 1 << 17, &bad);
            continue;
        }
        fprintf(stderr, "qcare serve: unknown argument '%s'\n", argv[i]);
        return 2;
    }
    if (bad) return 2;
    if (key_opt(&api_key, "--api-key", "QCARE_API_KEY") || key_opt(&admin_key, "--admin-key", "QCARE_ADMIN_KEY"))
        return 2;
    if (sync && strcmp(sync, "full") && strcmp(sync, "normal")) {
        fprintf(stderr, "qcare serve: --records-sync must be full or normal\n");
        return 2;
    }
    if (records && !*records) {
        fprintf(stderr, "qcare serve: --records needs a file name or a postgresql:// URL (or --no-records)\n");
        return 2;
    }
    if (sync && records && qc_store_path_is_url(records)) {
        fprintf(stderr, "qcare serve: --records-sync is for a SQLite file (PostgreSQL's durability is the server's)\n");
        return 2;
    }
    if (no_records && (sync || retain_days)) {
        fprintf(stderr, "qcare serve: --records-sync and --retain-days need records (not --no-records)\n");
        return 2;
    }
    char default_records[4096], err[512];
    if (!no_records && !records) {
        if (qc_rec_default_path(default_records, sizeof default_records, err, sizeof err)) {
            fprintf(stderr, "qcare serve: %s\n", err);
            return 1;
        }
        records = default_records;
    }
    if (metrics_key && !*metrics_key) {
        fprintf(stderr, "qcare serve: --metrics-key must not be empty\n");
        return 2;
    }
    /* The rules first: a malformed file is refused before the model loads. */
    qc_safety_t *rules = cli_safety_open("serve", &sa);
    if (!rules) return 1;
    /* Every thread (the model's pool, MHD's) inherits this mask, so the
     * signals reach only sigwait below. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    long room = fd_room();
    if (max_conns > room) {
        fprintf(stderr, "qcare serve: --max-connections %d is more than the open-file limit allows; using %ld\n",
                max_conns, room);
        max_conns = (int)room;
    }
    if (!max_conns) max_conns = (int)(room < 1000 ? room : 1000); /* the default quietly fits the system */
    qc_model_t *m = cli_load_model(model, dtype, n_threads);
    if (!m) {
        qc_safety_free(rules);
        return 1;
    }
    qc_server_t *s;
    /* /v1/models reports the model folder's name. */
    const char *name = model ? model : "qcare", *slash = strrchr(name, '/');
    if (slash && slash[1]) name = slash + 1;
    /* a folder qcare mkmodel wrote: random weights, which the page says */
    char marker[4096];
    struct stat mst;
    snprintf(marker, sizeof marker, "%s/%s", model ? model : "", QC_MKMODEL_MARKER);
    int fixture = model && !stat(marker, &mst) && S_ISREG(mst.st_mode);
    qc_server_opts_t o = {.host = host, .port = port, .api_key = api_key, .n_ctx = n_ctx, .quiet = quiet, .fixture = fixture,
                          .model_name = name, .parallel = parallel, .timeout_s = timeout,
                          .queue = queue == -2 ? 0 : queue == 0 ? -1 : queue, .prefix_cache_mb = prefix_mb,
                          .risk_model = risk, .header_timeout_s = header_timeout, .max_connections = max_conns,
                          .max_client_connections = max_client, .trusted_proxies = trusted,
                          .allow_origins = origins, .max_sessions = max_sessions, .records = records,
                          .records_sync_full = sync && !strcmp(sync, "full"), .retain_days = retain_days,
                          .admin_key = admin_key};
    /* A test hook (tests/test_recserve.c): the store's first N write transactions fail. */
    const char *fail = getenv("QCARE_TEST_RECORDS_FAIL");
    if (fail) o.records_fail_writes = atoi(fail);
    o.watchdog_s = watchdog;
    o.metrics_key = metrics_key;
    /* A test hook (tests/test_ops.c): every scheduler loop with work sleeps this many ms (a stuck scheduler). */
    const char *stall = getenv("QCARE_TEST_STALL_MS");
    if (stall) o.test_stall_ms = atoi(stall);
    if (qc_server_start(m, &o, &s, err, sizeof err)) {
        fprintf(stderr, "qcare serve: %s\n", err);
        qc_model_free(m);
        qc_safety_free(rules);
        return 1;
    }
    fprintf(stderr, "qcare: serving %s, %d parallel, on http://%s%s%s:%d/%s\n", qc_model_dtype(m), parallel,
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port, api_key ? " (API key required)" : "");
    if (!api_key && !is_loopback(host))
        fprintf(stderr, "qcare: warning: listening on %s without --api-key: anyone who can reach this address can use "
                        "the API\n", host);
    char shown[1024];
    if (records && qc_store_path_is_url(records))
        fprintf(stderr, "qcare: records in PostgreSQL, %s%s%s\n", url_shown(records, shown, sizeof shown),
                retain_days ? ", retention on" : "", admin_key ? "; follow-up view at /dashboard" : "");
    else if (records)
        fprintf(stderr, "qcare: records in %s (synchronous=%s%s)%s\n", records, o.records_sync_full ? "FULL" : "NORMAL",
                retain_days ? ", retention on" : "", admin_key ? "; follow-up view at /dashboard" : "");
    else fprintf(stderr, "qcare: no records kept (--no-records)\n");
    int sig = 0;
    sigwait(&stop, &sig);
    drain(s, &stop, sig, drain_timeout);
    qc_server_stop(s);
    qc_model_free(m);
    qc_safety_use(NULL);
    qc_safety_free(rules);
    return 0;
}
