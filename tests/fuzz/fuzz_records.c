/* fuzz_records.c — the follow-up view's requests (/api/records/..., behind
 * the admin key) as far as they go without a connection: the query
 * arguments parsed as the handlers parse them (srv.h,
 * qs_records_list_args / qs_records_export_args, through a stand-in for
 * MHD's decoded GET arguments), then the store's calls the handlers make,
 * on a SQLite store in a temporary folder holding a fixed set of turns
 * (written at start). Byte 0 picks the request, the rest is its URL after
 * the route's prefix, decoded as MHD decodes it (%XX, '+' in arguments):
 *
 *   0  GET /api/records/sessions?ARGS          a page (and the next one)
 *   1  GET /api/records/patients/ID?ARGS       a patient's page
 *   2  GET /api/records/sessions/ID            a session's turns, its tombstone
 *   3  DELETE /api/records/sessions/ID         erasure (a fixed session erased is written again)
 *   4  GET /api/records/export?ARGS            the export, CSV or JSON lines
 *
 * Checks: a refused argument gives a message; accepted ones are in range,
 * dates print and parse back to the same time; the store answers QC_OK, or
 * QC_ERR_ARG only for a cursor or an empty id; a page holds at most its
 * limit, only the patient asked for, only urgent sessions when asked, in
 * its order, and the next page (from its cursor) goes on after it without
 * repeating one; a session's turns are its own and each is one JSON line;
 * the export holds exactly the fixed turns inside its dates, each a JSON
 * object (JSONL) or a CSV record. */
#include "fuzz.h"
#include "server/srv.h"

#include <ftw.h>
#include <math.h>
#include <jansson.h>

/* ==== the fixed store ==== */

typedef struct {
    const char *sid, *patient;
    int64_t ts;
    int emotion;
    float pneg;
    int urgent;
    const char *message;
} seed_turn_t;

#define DAY 86400000LL
#define T0 1790000000000LL /* 2026-09-21 */
static const seed_turn_t seeds[] = {
    {"s1", "p7", T0, 1, 0.9f, 0, "I feel awful"},
    {"s1", "p7", T0 + 60000, 1, 0.8f, 1, "chest pain, \"crushing\",\r\nleft arm"},
    {"s1", "p7", T0 + 120000, 1, 0.95f, 0, "still bad"},
    {"s2", "p7", T0 + DAY, 0, 0.1f, 0, "better today"},
    {"s2", "p7", T0 + DAY + 1000, 2, 0.3f, 0, "ok"},
    {"s3", NULL, T0 + 2 * DAY, 1, 0.6f, 0, "worried, a bit"},
    {"s4", "pat-w", T0 + 3 * DAY, 1, 0.7f, 0, "worse"},
    {"s4", "pat-w", T0 + 3 * DAY + 5, 1, 0.75f, 0, "worse still"},
    {"s4", "pat-w", T0 + 3 * DAY + 10, 1, 0.8f, 1, "我想自杀"},
    {"sess é/%?&=+", "p 8", T0 + 4 * DAY, 2, 0.2f, 0, "an id to escape"},
    {"s6", "p7", T0 + 40 * DAY, 0, 0.05f, 0, "all fine"},
    {"s7", NULL, T0 - 400 * DAY, 1, 0.5f, 0, "a year before"},
};
#define N_SEEDS (sizeof seeds / sizeof seeds[0])

static qc_store_t *store;
static char dir[64];

static void write_seed(const seed_turn_t *x) {
    float rest = (1 - x->pneg) / 2;
    qc_rec_turn_t t = {
        .session_id = x->sid,
        .patient_id = x->patient,
        .ts_ms = x->ts,
        .message = x->message,
        .message_len = strlen(x->message),
        .emotion = x->emotion,
        .probs = {rest, x->pneg, rest},
        .urgent = x->urgent,
        .urgent_kind = x->urgent ? "cardiac" : NULL,
        .reply = "a reply, with \"quotes\"",
        .reply_len = 22,
        .model_name = "fuzz",
        .model_hash = "abc",
        .weight_type = "q8_0",
        .model_urgent_p = 0.25,
    };
    char err[512];
    FUZZ_CHECK(!qc_store_write(store, &t, NULL, err, sizeof err), "writing a fixed turn: %s", err);
}

static void write_session(const char *sid) {
    for (size_t i = 0; i < N_SEEDS; i++)
        if (!strcmp(seeds[i].sid, sid)) write_seed(&seeds[i]);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void done(void) {
    qc_store_close(store);
    if (dir[0]) nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(dir, sizeof dir, "/tmp/qcare-fuzz-records-XXXXXX");
    FUZZ_CHECK(mkdtemp(dir), "mkdtemp failed");
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/records.db", dir);
    FUZZ_CHECK(!qc_store_open(path, NULL, &store, err, sizeof err), "cannot open %s: %s", path, err);
    for (size_t i = 0; i < N_SEEDS; i++) write_seed(&seeds[i]);
    atexit(done);
    return 0;
}

/* ==== the URL, decoded as MHD decodes it ==== */

#define MAX_ARGS 32
typedef struct {
    char *key[MAX_ARGS], *val[MAX_ARGS];
    int n;
} args_t;

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes p[0..n) in place into a C string (%XX, and '+' as a space when plus). */
static char *unescape(char *p, size_t n, int plus) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            p[o++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        } else {
            p[o++] = plus && p[i] == '+' ? ' ' : p[i];
        }
    }
    p[o] = 0;
    return p;
}

static void parse_args(char *q, args_t *a) {
    a->n = 0;
    while (*q && a->n < MAX_ARGS) {
        char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
        char *eq = memchr(q, '=', (size_t)(end - q));
        *end = 0;
        if (eq) *eq = 0;
        a->key[a->n] = unescape(q, strlen(q), 1);
        a->val[a->n] = eq ? unescape(eq + 1, strlen(eq + 1), 1) : NULL;
        a->n++;
        if (!amp) break;
        q = amp + 1;
    }
}

/* The first argument called name (as MHD_lookup_connection_value). */
static const char *get_arg(void *user, const char *name) {
    const args_t *a = user;
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->key[i], name)) return a->val[i] ? a->val[i] : "";
    return NULL;
}

static void check_date(int64_t ms) {
    if (!ms) return;
    char t[32];
    int64_t back = -1;
    qc_rec_time_format(ms, t);
    FUZZ_CHECK(!qc_rec_time_parse(t, &back) && back == ms, "%lld prints as %s, which reads as %lld", (long long)ms, t,
               (long long)back);
}

/* ==== pages ==== */

#define PAGE_MAX 64
typedef struct {
    const qc_rec_query_t *q;
    int n;
    char sid[PAGE_MAX][QC_REC_SESSION_MAX + 1];
    double risk[PAGE_MAX];
    int64_t last[PAGE_MAX];
} page_t;

static int page_row(void *user, const qc_rec_session_t *ss) {
    page_t *p = user;
    const qc_rec_query_t *q = p->q;
    FUZZ_CHECK(ss->session_id && *ss->session_id && strlen(ss->session_id) <= QC_REC_SESSION_MAX, "session id");
    if (q->patient_id)
        FUZZ_CHECK(ss->patient_id && !strcmp(ss->patient_id, q->patient_id), "patient %s in a page of %s",
                   ss->patient_id ? ss->patient_id : "(none)", q->patient_id);
    if (q->urgent_only) FUZZ_CHECK(ss->urgent_count > 0, "a session without urgent turns in an urgent page");
    if (q->since_ms) FUZZ_CHECK(ss->last_ms >= q->since_ms, "last turn %lld before since", (long long)ss->last_ms);
    if (q->until_ms) FUZZ_CHECK(ss->first_ms < q->until_ms, "first turn %lld after until", (long long)ss->first_ms);
    FUZZ_CHECK(ss->turns >= 1 && ss->first_ms <= ss->last_ms, "%lld turns", (long long)ss->turns);
    FUZZ_CHECK(p->n < PAGE_MAX, "a page longer than its limit");
    snprintf(p->sid[p->n], sizeof p->sid[p->n], "%s", ss->session_id);
    p->risk[p->n] = ss->risk;
    p->last[p->n] = ss->last_ms;
    p->n++;
    return 0;
}

/* Whether session b may follow a in the order. */
static int in_order(qc_rec_order_t o, double ra, int64_t la, double rb, int64_t lb) {
    if (o == QC_REC_ORDER_RECENT) return la >= lb;
    return llround(ra * 1e6) > llround(rb * 1e6) || (llround(ra * 1e6) == llround(rb * 1e6) && la >= lb);
}

static void check_page_order(const qc_rec_query_t *q, const page_t *p) {
    for (int i = 1; i < p->n; i++)
        FUZZ_CHECK(in_order(q->order, p->risk[i - 1], p->last[i - 1], p->risk[i], p->last[i]), "page out of order at %d",
                   i);
}

static void list(qc_rec_query_t *q) {
    char next[QC_REC_CURSOR_MAX], next2[QC_REC_CURSOR_MAX], err[512];
    if (q->limit > PAGE_MAX) q->limit = PAGE_MAX; /* more than the fixed sessions: the same pages */
    page_t *p = calloc(2, sizeof *p);
    FUZZ_CHECK(p, "out of memory");
    p[0].q = q;
    qc_status rc = qc_store_sessions(store, q, page_row, &p[0], next, err, sizeof err);
    if (rc) {
        FUZZ_CHECK(rc == QC_ERR_ARG && q->cursor && *q->cursor, "status %d: %s", rc, err);
        free(p);
        return;
    }
    FUZZ_CHECK(p[0].n <= (q->limit ? q->limit : 50), "%d sessions in a page of %d", p[0].n, q->limit);
    check_page_order(q, &p[0]);
    if (next[0]) {
        FUZZ_CHECK(p[0].n == (q->limit ? q->limit : 50), "a short page with a next cursor");
        qc_rec_query_t q2 = *q;
        q2.cursor = next;
        p[1].q = &q2;
        rc = qc_store_sessions(store, &q2, page_row, &p[1], next2, err, sizeof err);
        FUZZ_CHECK(!rc, "the page's own next cursor is refused: %s", err);
        check_page_order(q, &p[1]);
        if (p[1].n)
            FUZZ_CHECK(in_order(q->order, p[0].risk[p[0].n - 1], p[0].last[p[0].n - 1], p[1].risk[0], p[1].last[0]),
                       "the next page starts before the end of this one");
        for (int i = 0; i < p[0].n; i++)
            for (int j = 0; j < p[1].n; j++)
                FUZZ_CHECK(strcmp(p[0].sid[i], p[1].sid[j]), "session %s on two pages", p[0].sid[i]);
    }
    free(p);
}

static void list_request(char *query, const char *patient) {
    args_t a;
    parse_args(query, &a);
    qc_rec_query_t q = {.order = patient ? QC_REC_ORDER_RECENT : QC_REC_ORDER_RISK, .patient_id = patient};
    int min_streak = -1;
    char msg[512] = "";
    if (qs_records_list_args(get_arg, &a, &q, &min_streak, msg, sizeof msg)) {
        FUZZ_CHECK(*msg, "refused without a message");
        return;
    }
    FUZZ_CHECK(q.limit >= 1 && q.limit <= QC_REC_LIMIT_MAX, "limit %d", q.limit);
    FUZZ_CHECK(q.urgent_only == 0 || q.urgent_only == 1, "urgent %d", q.urgent_only);
    FUZZ_CHECK(q.order == QC_REC_ORDER_RISK || q.order == QC_REC_ORDER_RECENT, "order %d", (int)q.order);
    FUZZ_CHECK(min_streak >= 0, "min_streak %d", min_streak);
    FUZZ_CHECK(!q.cursor || strlen(q.cursor) < QC_REC_CURSOR_MAX, "a cursor too long");
    FUZZ_CHECK(!patient || q.patient_id == patient, "the path's patient replaced");
    check_date(q.since_ms);
    check_date(q.until_ms);
    list(&q);
}

/* ==== one session ==== */

typedef struct {
    const char *sid;
    int64_t n;
    qc_buf_t line;
} turns_t;

static int write_line(void *user, const void *p, size_t n) { return qc_buf_add(&((turns_t *)user)->line, p, n); }

static int turn_row(void *user, const qc_rec_turn_t *t) {
    turns_t *x = user;
    FUZZ_CHECK(t->session_id && !strcmp(t->session_id, x->sid), "a turn of %s among %s's", t->session_id, x->sid);
    x->n++;
    x->line.n = 0;
    FUZZ_CHECK(!qc_rec_turn_jsonl(t, write_line, x) && !x->line.failed, "qc_rec_turn_jsonl failed");
    const char *l = x->line.p;
    size_t n = x->line.n;
    FUZZ_CHECK(n >= 2 && l[n - 1] == '\n' && !memchr(l, '\n', n - 1), "a turn's JSON is not one line");
    json_error_t e;
    json_t *j = json_loadb(l, n, 0, &e);
    FUZZ_CHECK(json_is_object(j), "a turn's line is not a JSON object: %s", e.text);
    json_decref(j);
    return 0;
}

static int is_seeded(const char *sid) {
    for (size_t i = 0; i < N_SEEDS; i++)
        if (!strcmp(seeds[i].sid, sid)) return 1;
    return 0;
}

static void session_request(const char *id, int erase) {
    if (strlen(id) > QC_REC_SESSION_MAX) return; /* the handlers' 404 (path_id) */
    char err[512];
    if (erase) {
        int64_t n = -1;
        int cp = -1;
        qc_status rc = qc_store_erase(store, id, &n, &cp, err, sizeof err);
        if (!*id) {
            FUZZ_CHECK(rc == QC_ERR_ARG, "an empty id erased: %d", rc);
            return;
        }
        FUZZ_CHECK(!rc, "erase: %s", err);
        FUZZ_CHECK(n == 0 || is_seeded(id), "%lld turns of an unknown session erased", (long long)n);
        if (n > 0) {
            int64_t gone = 0, left = -1;
            FUZZ_CHECK(!qc_store_tombstone(store, id, &gone, err, sizeof err) && gone > 0, "no tombstone: %s", err);
            FUZZ_CHECK(!qc_store_turns(store, id, NULL, NULL, &left, err, sizeof err) && left == 0,
                       "%lld turns left after the erasure", (long long)left);
            write_session(id);
        }
        return;
    }
    turns_t x = {.sid = id};
    int64_t n = -1;
    qc_status rc = qc_store_turns(store, id, turn_row, &x, &n, err, sizeof err);
    qc_buf_free(&x.line);
    if (!*id) {
        FUZZ_CHECK(rc == QC_ERR_ARG, "turns of an empty id: %d", rc);
        return;
    }
    FUZZ_CHECK(!rc, "turns: %s", err);
    FUZZ_CHECK(n == x.n, "%lld turns said, %lld given", (long long)n, (long long)x.n);
    int64_t want = 0;
    for (size_t i = 0; i < N_SEEDS; i++) want += !strcmp(seeds[i].sid, id);
    FUZZ_CHECK(n == want, "%lld turns of %s, %lld written", (long long)n, id, (long long)want);
    int64_t erased = -1;
    FUZZ_CHECK(!qc_store_tombstone(store, id, &erased, err, sizeof err) && erased >= 0, "tombstone: %s", err);
}

/* ==== the export ==== */

typedef struct {
    qc_rec_format_t fmt;
    qc_buf_t b;
} export_t;

static int export_write(void *user, const void *p, size_t n) {
    export_t *x = user;
    FUZZ_CHECK(x->b.n + n < (1u << 20), "an export of more than 1 MiB from %zu turns", N_SEEDS);
    return qc_buf_add(&x->b, p, n);
}

/* CSV records (RFC 4180: CRLF, quoted fields may hold line breaks) of p[0..n). */
static long csv_records(const char *p, size_t n) {
    long recs = 0;
    int quoted = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"') quoted = !quoted;
        else if (!quoted && p[i] == '\r') {
            FUZZ_CHECK(i + 1 < n && p[i + 1] == '\n', "a CR without LF outside quotes");
            recs++;
            i++;
        } else
            FUZZ_CHECK(quoted || p[i] != '\n', "a bare LF outside quotes");
    }
    FUZZ_CHECK(!quoted, "the export ends inside quotes");
    FUZZ_CHECK(n == 0 || (n >= 2 && p[n - 1] == '\n'), "the export does not end with a record");
    return recs;
}

static void export_request(char *query) {
    args_t a;
    parse_args(query, &a);
    export_t x = {0};
    int64_t since = -1, until = -1;
    char msg[512] = "";
    if (qs_records_export_args(get_arg, &a, &x.fmt, &since, &until, msg, sizeof msg)) {
        FUZZ_CHECK(*msg, "refused without a message");
        return;
    }
    FUZZ_CHECK(x.fmt == QC_REC_CSV || x.fmt == QC_REC_JSONL, "format %d", (int)x.fmt);
    check_date(since);
    check_date(until);
    char err[512];
    qc_status rc = qc_store_export(store, x.fmt, since, until, export_write, &x, err, sizeof err);
    FUZZ_CHECK(!rc && !x.b.failed, "export: %s", err);
    long want = 0;
    for (size_t i = 0; i < N_SEEDS; i++)
        want += seeds[i].ts >= since && (!until || seeds[i].ts < until);
    long got = 0;
    if (x.fmt == QC_REC_CSV) {
        got = csv_records(x.b.p, x.b.n) - 1; /* the header */
    } else {
        for (size_t at = 0; at < x.b.n;) {
            const char *e = memchr(x.b.p + at, '\n', x.b.n - at);
            FUZZ_CHECK(e, "a JSON line without its end");
            json_error_t je;
            json_t *j = json_loadb(x.b.p + at, (size_t)(e - (x.b.p + at)), 0, &je);
            FUZZ_CHECK(json_is_object(j), "an export line is not a JSON object: %s", je.text);
            json_decref(j);
            got++;
            at = (size_t)(e - x.b.p) + 1;
        }
    }
    FUZZ_CHECK(got == want, "%ld turns exported, %ld between %lld and %lld", got, want, (long long)since,
               (long long)until);
    qc_buf_free(&x.b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *url = malloc(size);
    FUZZ_CHECK(url, "out of memory");
    memcpy(url, data + 1, size - 1);
    url[size - 1] = 0; /* a URL is a C string to MHD: it ends at a NUL */
    char *q = strchr(url, '?');
    if (q) *q++ = 0;
    else q = url + strlen(url);
    unescape(url, strlen(url), 0);
    switch (data[0] % 5) {
    case 0: list_request(q, NULL); break;
    case 1: list_request(q, url); break;
    case 2: session_request(url, 0); break;
    case 3: session_request(url, 1); break;
    default: export_request(q); break;
    }
    free(url);
    return 0;
}
