/* cmd_serve.c — `qcare serve`: loads the model and runs the HTTP server
 * (src/server/) until SIGINT or SIGTERM. */
#include "cli/cli.h"
#include "server/server.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

int cmd_serve(int argc, char **argv) {
    const char *model = NULL, *dtype = NULL, *host = "127.0.0.1", *api_key = NULL, *v;
    int port = 8080, n_threads = 0, n_ctx = 0, quiet = 0, bad = 0, parallel = 4, queue = -2, timeout = 60;
    cli_safety_args_t sa = {0};
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qcare serve [--model M] [--host 127.0.0.1] [--port 8080] [--threads N] [--parallel N]\n"
                   "                   [--queue N] [--api-key KEY] [--safety-rules F] [--region R]\n\n"
                   "Serves the care pipeline over HTTP until SIGINT/SIGTERM:\n"
                   "  GET  /health                {\"status\": \"ok\"} (open even with an API key)\n"
                   "  POST /api/emotion           {\"text\"} -> {\"label\", \"probs\", \"urgent\"}\n"
                   "  POST /api/analyze           {\"text\", \"session\"?, \"max_tokens\"?, \"stream\"?} -> emotion,\n"
                   "                              urgent flag and notice, reply (Server-Sent Events with stream)\n"
                   "  GET  /v1/models, POST /v1/chat/completions   OpenAI-compatible\n"
                   "  GET  /metrics               Prometheus metrics\n"
                   "  GET  /                      the chat page\n\n"
                   "  --model M         a Hugging Face folder, a .gguf file or a pulled repo name\n"
                   "                    (default: the default model, once pulled)\n"
                   "  --dtype T         weights as q8_0 (default), q4_0, bf16 or f32\n"
                   "  --host ADDR       address to bind (default 127.0.0.1: this machine only)\n"
                   "  --port N          TCP port (default 8080)\n"
                   "  --threads N       model threads (default: one per core)\n"
                   "  --ctx N           context of each request in tokens (default 2048)\n"
                   "  --parallel N      requests generating at once, batched into each model pass (default 4)\n"
                   "  --queue N         requests that may wait for a slot; more get 503 + Retry-After\n"
                   "                    (default 4 x parallel)\n"
                   "  --timeout S       close connections idle for S seconds (slow clients; default 60)\n"
                   "  --api-key KEY     require \"Authorization: Bearer KEY\" (also $QCARE_API_KEY)\n"
                   "  --quiet           no per-request log lines on stderr\n" CLI_SAFETY_HELP);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--model", &model, &bad) || cli_opt(argc, argv, &i, "-m", &model, &bad) ||
            cli_opt(argc, argv, &i, "--dtype", &dtype, &bad) || cli_opt(argc, argv, &i, "--host", &host, &bad) ||
            cli_opt(argc, argv, &i, "--api-key", &api_key, &bad) || cli_safety_opt(argc, argv, &i, &sa, &bad))
            continue;
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
        if (cli_opt(argc, argv, &i, "--ctx", &v, &bad)) {
            if (!bad) n_ctx = (int)cli_parse_long("--ctx", v, 1024, 1 << 17, &bad);
            continue;
        }
        fprintf(stderr, "qcare serve: unknown argument '%s'\n", argv[i]);
        return 2;
    }
    if (bad) return 2;
    if (!api_key) {
        const char *e = getenv("QCARE_API_KEY");
        if (e && *e) api_key = e;
    }
    if (api_key && !*api_key) {
        fprintf(stderr, "qcare serve: --api-key must not be empty\n");
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

    qc_model_t *m = cli_load_model(model, dtype, n_threads);
    if (!m) {
        qc_safety_free(rules);
        return 1;
    }
    char err[512];
    qc_server_t *s;
    /* /v1/models reports the model folder's name. */
    const char *name = model ? model : "qcare", *slash = strrchr(name, '/');
    if (slash && slash[1]) name = slash + 1;
    qc_server_opts_t o = {.host = host, .port = port, .api_key = api_key, .n_ctx = n_ctx, .quiet = quiet,
                          .model_name = name, .parallel = parallel, .timeout_s = timeout,
                          .queue = queue == -2 ? 0 : queue == 0 ? -1 : queue};
    if (qc_server_start(m, &o, &s, err, sizeof err)) {
        fprintf(stderr, "qcare serve: %s\n", err);
        qc_model_free(m);
        qc_safety_free(rules);
        return 1;
    }
    fprintf(stderr, "qcare: serving %s, %d parallel, on http://%s%s%s:%d/%s\n", qc_model_dtype(m), parallel,
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port, api_key ? " (API key required)" : "");
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "qcare: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    qc_server_stop(s);
    qc_model_free(m);
    qc_safety_use(NULL);
    qc_safety_free(rules);
    return 0;
}
