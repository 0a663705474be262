/* pgserver.h — a throwaway PostgreSQL server for the C tests, made by
 * tests/pg.sh (initdb in a temporary folder, 127.0.0.1 on a free port, an
 * unprivileged user when run as root). A guardian process removes it when
 * this process ends, whatever the way (a failed check, a crash, SIGKILL):
 * it waits on a pipe only this process holds.
 *
 *   test_pg_t pg;
 *   char why[512];
 *   if (test_pg_create(&pg, 0, why, sizeof why)) SKIP("no PostgreSQL: %s", why);
 *   test_pg_createdb(&pg, "t1");
 *   test_pg_url(&pg, "t1", url, sizeof url);   // postgresql://qcare@127.0.0.1:PORT/t1
 *   test_pg_stop(&pg); test_pg_start(&pg);     // a server that goes away and comes back
 *   test_pg_destroy(&pg);
 *
 * Call test_pg_create while this process has one thread (it forks). The
 * script is $QC_PG_SH or tests/pg.sh (from the repository root). */
#ifndef QC_TEST_PGSERVER_H
#define QC_TEST_PGSERVER_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char dir[512];
    int port;
    pid_t guard; /* removes the server once guard_fd closes */
    int guard_fd;
} test_pg_t;

static inline const char *test_pg_script(void) {
    const char *s = getenv("QC_PG_SH");
    return s && *s ? s : "tests/pg.sh";
}

/* Runs `sh pg.sh CMD DIR [ARG]` quietly; its exit status. */
static inline int test_pg_run(const test_pg_t *pg, const char *cmd, const char *arg) {
    char line[1400];
    snprintf(line, sizeof line, "sh '%s' %s '%s' %s%s%s >/dev/null", test_pg_script(), cmd, pg->dir, arg ? "'" : "",
             arg ? arg : "", arg ? "'" : "");
    int st = system(line);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Makes and starts a server (fsync off unless fsync); 0, or -1 with the
 * reason in why (no server programs, no way to drop root, a failed start). */
static inline int test_pg_create(test_pg_t *pg, int fsync, char *why, size_t why_size) {
    char line[1200], out[600] = "";
    memset(pg, 0, sizeof *pg);
    pg->guard_fd = -1;
    if (access(test_pg_script(), R_OK)) {
        snprintf(why, why_size, "no %s (run from the repository root, or set QC_PG_SH)", test_pg_script());
        return -1;
    }
    snprintf(line, sizeof line, "sh '%s' check", test_pg_script());
    FILE *f = popen(line, "r");
    if (!f || !fgets(out, sizeof out, f)) out[0] = 0;
    int st = f ? pclose(f) : -1;
    if (st != 0) {
        out[strcspn(out, "\n")] = 0;
        snprintf(why, why_size, "%.400s", *out ? out : "tests/pg.sh check failed");
        return -1;
    }
    snprintf(line, sizeof line, "sh '%s' create%s", test_pg_script(), fsync ? " --fsync" : "");
    f = popen(line, "r");
    out[0] = 0;
    if (!f || !fgets(out, sizeof out, f)) out[0] = 0;
    st = f ? pclose(f) : -1;
    if (st != 0 || sscanf(out, "%511s %d", pg->dir, &pg->port) != 2) {
        snprintf(why, why_size, "tests/pg.sh create failed (its messages are above)");
        return -1;
    }
    int p[2];
    if (pipe(p)) {
        snprintf(why, why_size, "pipe failed");
        test_pg_run(pg, "destroy", NULL);
        return -1;
    }
    pid_t g = fork();
    if (g == 0) {
        dup2(p[0], 0);
        close(p[0]);
        close(p[1]);
        execl("/bin/sh", "sh", "-c", "trap '' INT TERM HUP; cat >/dev/null; exec sh \"$1\" destroy \"$2\"", "sh",
              test_pg_script(), pg->dir, (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    if (g < 0) {
        close(p[1]);
        test_pg_run(pg, "destroy", NULL);
        snprintf(why, why_size, "fork failed");
        return -1;
    }
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    pg->guard = g;
    pg->guard_fd = p[1];
    return 0;
}

/* The URL of database db into out. */
static inline void test_pg_url(const test_pg_t *pg, const char *db, char *out, size_t n) {
    snprintf(out, n, "postgresql://qcare@127.0.0.1:%d/%s", pg->port, db);
}

/* Makes database db (fine when it exists): 0 or the script's status. */
static inline int test_pg_createdb(const test_pg_t *pg, const char *db) { return test_pg_run(pg, "createdb", db); }

/* Stops the server (its clients are disconnected) / starts it again on the
 * same port and data: 0 or the script's status. */
static inline int test_pg_stop(const test_pg_t *pg) { return test_pg_run(pg, "stop", NULL); }
static inline int test_pg_start(const test_pg_t *pg) { return test_pg_run(pg, "start", NULL); }

/* Stops the server and removes its folder, waiting for both. */
static inline void test_pg_destroy(test_pg_t *pg) {
    if (pg->guard_fd < 0) return;
    close(pg->guard_fd);
    pg->guard_fd = -1;
    waitpid(pg->guard, NULL, 0);
}

#endif
