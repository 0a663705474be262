/* records.c — the parts of the record every backend shares: UUIDv7 ids,
 * UTC times, names of enums, the session summary and its risk score, and
 * the blob encodings (records.h, backend.h). */
#include "records/backend.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

/* ==== time ==== */

int64_t qc_rec_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void qc_rec_time_format(int64_t ms, char out[32]) {
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int msec = (int)(ms - sec * 1000);
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        snprintf(out, 32, "%lld", (long long)ms);
        return;
    }
    /* The modulos only tell the compiler the widths (the values are in range). */
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u, (unsigned)msec % 1000u);
}

/* n decimal digits at *p into *v, advancing *p; -1 when they are not there. */
static int digits(const char **p, int n, int *v) {
    *v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return -1;
        *v = *v * 10 + (c - '0');
    }
    *p += n;
    return 0;
}

int qc_rec_time_parse(const char *s, int64_t *ms) {
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d)) return -1;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec)) return -1;
            if (*p == '.') {
                p++;
                int nd = 0;
                for (; *p >= '0' && *p <= '9'; p++, nd++)
                    if (nd < 3) frac = frac * 10 + (*p - '0');
                if (nd == 0) return -1;
                for (; nd < 3; nd++) frac *= 10;
            }
        }
    }
    if (*p == 'Z') p++;
    if (*p) return -1;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 60)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}

/* ==== ids ==== */

/* Fills p with n random bytes from the kernel; the clock and pid stirred
 * through a xorshift only if getrandom is unavailable (ids stay unique per
 * process thanks to the counter, and still unlikely to collide across). */
static void random_bytes(uint8_t *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(p + got, n - got, 0);
        if (k <= 0) break;
        got += (size_t)k;
    }
    if (got == n) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 32);
    for (size_t i = got; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t id_last_ms;
static unsigned id_seq;

/* RFC 9562 §6.2 method 1: rand_a is a 12-bit counter, started at a random
 * value below 2048 each new ms so that at least 2048 ids fit in one ms; on
 * overflow (or a clock that stepped back) the time field runs ahead by one
 * ms, which keeps the ids increasing. */
void qc_rec_id_new(qc_rec_id_t *out) {
    uint8_t r[10];
    random_bytes(r, sizeof r);
    int64_t now = qc_rec_now_ms();
    pthread_mutex_lock(&id_lock);
    if (now > id_last_ms) {
        id_last_ms = now;
        id_seq = ((unsigned)r[0] << 8 | r[1]) & 0x7ff;
    } else if (++id_seq > 0xfff) {
        id_last_ms++;
        id_seq = 0;
    }
    int64_t ms = id_last_ms;
    unsigned seq = id_seq;
    pthread_mutex_unlock(&id_lock);
    for (int i = 0; i < 6; i++) out->b[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    out->b[6] = (uint8_t)(0x70 | (seq >> 8));
    out->b[7] = (uint8_t)seq;
    out->b[8] = (uint8_t)(0x80 | (r[2] & 0x3f));
    memcpy(out->b + 9, r + 3, 7);
}

void qc_rec_hex_encode(const void *p, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        *out++ = hex[b[i] >> 4];
        *out++ = hex[b[i] & 15];
    }
    *out = 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int qc_rec_hex_decode(const char *hex, size_t n, uint8_t *out) {
    for (size_t i = 0; i + 1 < n; i += 2) {
        int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void qc_rec_id_format(const qc_rec_id_t *id, char out[QC_REC_ID_STRLEN + 1]) {
    /* 8-4-4-4-12 hex digits */
    qc_rec_hex_encode(id->b, 4, out);
    out[8] = '-';
    qc_rec_hex_encode(id->b + 4, 2, out + 9);
    out[13] = '-';
    qc_rec_hex_encode(id->b + 6, 2, out + 14);
    out[18] = '-';
    qc_rec_hex_encode(id->b + 8, 2, out + 19);
    out[23] = '-';
    qc_rec_hex_encode(id->b + 10, 6, out + 24);
}

int qc_rec_id_parse(const char *s, qc_rec_id_t *out) {
    static const int8_t group[5][2] = {{0, 4}, {9, 2}, {14, 2}, {19, 2}, {24, 6}}; /* text offset, bytes */
    qc_rec_id_t id;
    if (strlen(s) != QC_REC_ID_STRLEN || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return -1;
    for (int g = 0, b = 0; g < 5; b += group[g][1], g++)
        if (qc_rec_hex_decode(s + group[g][0], 2 * (size_t)group[g][1], id.b + b)) return -1;
    *out = id;
    return 0;
}

int qc_rec_id_is_nil(const qc_rec_id_t *id) {
    for (int i = 0; i < 16; i++)
        if (id->b[i]) return 0;
    return 1;
}

int64_t qc_rec_id_ms(const qc_rec_id_t *id) {
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++) ms = ms << 8 | id->b[i];
    return (int64_t)ms;
}

/* ==== text ==== */

int qc_rec_utf8_clean(const char *s, size_t n, int keep_nul, qc_buf_t *out) {
    size_t i = 0;
    utf8proc_int32_t cp;
    for (utf8proc_ssize_t k; i < n; i += (size_t)k) {
        k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0 || (cp == 0 && !keep_nul)) break;
    }
    if (i == n) return 0;
    out->n = 0;
    qc_buf_add(out, s, i);
    while (i < n) {
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0 || (cp == 0 && !keep_nul)) {
            qc_buf_add(out, "\xef\xbf\xbd", 3);
            i++;
        } else {
            qc_buf_add(out, s + i, (size_t)k);
            i += (size_t)k;
        }
    }
    return out->failed ? -1 : 1;
}

/* ==== names ==== */

static const char *const finish_names[] = {"stop", "length", "cancelled", "error"};
static const char *const emotion_names[] = {"positive", "negative", "neutral"};

/* The index of s in names[0..n), or -1. */
static int name_index(const char *const *names, int n, const char *s) {
    for (int i = 0; s && i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

const char *qc_finish_name(qc_finish_t f) { return (unsigned)f < 4 ? finish_names[f] : "unknown"; }
int qc_finish_parse(const char *s) { return name_index(finish_names, 4, s); }
const char *qc_rec_emotion_name(int label) { return (unsigned)label < 3 ? emotion_names[label] : NULL; }
int qc_rec_emotion_parse(const char *s) { return name_index(emotion_names, 3, s); }

/* ==== summary and risk ==== */

void qc_rec_summary_add(qc_rec_summary_t *s, int64_t ts_ms, int emotion, float p_negative, int urgent) {
    if (s->turns == 0 || ts_ms < s->first_ms) s->first_ms = ts_ms;
    if (s->turns == 0 || ts_ms > s->last_ms) s->last_ms = ts_ms;
    s->turns++;
    s->urgent_count += urgent != 0;
    s->last_emotion = emotion;
    s->neg_streak = emotion == 1 ? s->neg_streak + 1 : 0;
    if (s->n_recent == QC_REC_TREND_TURNS) {
        memmove(s->recent, s->recent + 1, (QC_REC_TREND_TURNS - 1) * sizeof s->recent[0]);
        s->n_recent--;
    }
    s->recent[s->n_recent++] = p_negative;
}

/* Least-squares slope of P(negative) against the turn number: in P per
 * turn, 0 for fewer than two turns. */
double qc_rec_summary_trend(const qc_rec_summary_t *s) {
    int n = s->n_recent;
    if (n < 2) return 0;
    double xm = (n - 1) / 2.0, ym = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < n; i++) ym += s->recent[i];
    ym /= n;
    for (int i = 0; i < n; i++) {
        sxy += (i - xm) * (s->recent[i] - ym);
        sxx += (i - xm) * (i - xm);
    }
    return sxy / sxx;
}

/* risk = 100 * U + 50 * W + 20 * P + 10 * S, where
 *   U = 1 when any turn of the session was urgent (the safety net fired),
 *   W = clamp(trend / 0.3, 0, 1): how fast P(negative) rises over the last 5
 *       turns; 0.3 per turn is the steepest a least-squares slope of values
 *       in [0, 1] over 5 turns can be, so W = 1 is "as worsening as it gets",
 *       and an improving or flat session gets 0,
 *   P = P(negative) of the last turn,
 *   S = min(negative streak, 5) / 5.
 * The non-urgent part is at most 80 < 100, so every urgent session ranks
 * above every other; among the rest the trend weighs most, so a patient
 * getting worse ranks above one who is steadily (even steadily negative:
 * at most 20 + 10 = 30) the same, and the level and the streak order
 * sessions whose trends tie. Kept in millionths. */
int64_t qc_rec_summary_risk(const qc_rec_summary_t *s) {
    double w = qc_rec_summary_trend(s) / 0.3;
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    double p = s->n_recent ? s->recent[s->n_recent - 1] : 0;
    p = p < 0 ? 0 : p > 1 ? 1 : p;
    int streak = s->neg_streak < 5 ? s->neg_streak : 5;
    double risk = 100.0 * (s->urgent_count > 0) + 50.0 * w + 20.0 * p + 10.0 * streak / 5.0;
    return llround(risk * 1e6);
}

/* ==== blob encodings ==== */

void qc_rec_scratch_free(qc_rec_scratch_t *s) {
    for (int i = 0; i < 2; i++) {
        qc_buf_free(&s->blob[i]);
        qc_ids_free(&s->ids[i]);
    }
}

int qc_rec_ids_encode(const int32_t *ids, size_t n, qc_buf_t *out) {
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0) return -1;
        uint8_t b[5];
        int k = 0;
        uint32_t v = (uint32_t)ids[i];
        do {
            b[k] = v & 0x7f;
            v >>= 7;
            if (v) b[k] |= 0x80;
            k++;
        } while (v);
        if (qc_buf_add(out, b, (size_t)k)) return -1;
    }
    return 0;
}

int qc_rec_ids_decode(const void *p, size_t n, qc_ids_t *out) {
    const uint8_t *b = p;
    out->n = 0;
    for (size_t i = 0; i < n;) {
        uint64_t v = 0;
        int k = 0;
        for (;;) {
            if (i >= n || k == 5) return -1;
            uint8_t c = b[i++];
            v |= (uint64_t)(c & 0x7f) << (7 * k++);
            if (!(c & 0x80)) break;
        }
        if (v > INT32_MAX || qc_ids_push(out, (int32_t)v)) return -1;
    }
    return 0;
}

size_t qc_rec_recent_encode(const qc_rec_summary_t *s, uint8_t out[4 * QC_REC_TREND_TURNS]) {
    for (int i = 0; i < s->n_recent; i++) {
        uint32_t u;
        memcpy(&u, &s->recent[i], 4);
        for (int k = 0; k < 4; k++) out[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    return 4 * (size_t)s->n_recent;
}

int qc_rec_recent_decode(const void *p, size_t n, qc_rec_summary_t *s) {
    const uint8_t *b = p;
    if (n % 4 || n / 4 > QC_REC_TREND_TURNS) return -1;
    s->n_recent = (int)(n / 4);
    for (int i = 0; i < s->n_recent; i++) {
        uint32_t u = 0;
        for (int k = 0; k < 4; k++) u |= (uint32_t)b[4 * i + k] << (8 * k);
        memcpy(&s->recent[i], &u, 4);
    }
    return 0;
}
