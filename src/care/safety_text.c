/* safety_text.c — how the safety net reads a message (and the phrases of
 * the rules, which go through the same steps, so both sides agree):
 *
 *   1. Unicode: NFKC (full-width letters, digits and punctuation become
 *      ASCII, compatibility spaces a space), case folding, and the
 *      default-ignorable characters removed (zero-width spaces and joiners,
 *      soft hyphens, BOMs, variation selectors, word joiners);
 *   2. the rules file's folds: traditional Chinese characters read as
 *      simplified (殺 as 杀, 傷 as 伤);
 *   3. apostrophes dropped ("can't" = "cant"), whitespace runs one space;
 *   4. letters spelled out one by one joined: "c h e s t", "s.u.i.c.i.d.e",
 *      "k-i-l-l" (three letters or more); Chinese characters typed apart
 *      ("自 杀", "想 死") joined where a character stands alone;
 *   5. a hyphen or underscore between letters is a space ("self-harm",
 *      "chest_pain", "5-year-old");
 *   6. digits and symbols for letters, only inside a word (a digit with a
 *      letter on both sides, a leading 0 or $ before three letters):
 *      "su1c1de", "k1ll", "0verdose", "$uicide" — so "30 tablets",
 *      "500mg", "10楼" and "b12" keep their numbers;
 *   7. "cannot" read as "cant".
 * Run-together words ("chestpain", "killmyself") are the matcher's: each
 * English phrase of several words is also looked for without its spaces. */
#include "care/safety.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static int is_alpha(unsigned char c) { return c >= 'a' && c <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
/* Separators of spelled-out letters. */
static int is_sep(unsigned char c) { return c == ' ' || c == '.' || c == '-' || c == '_' || c == '*'; }

/* A CJK ideograph (the unified blocks and their extensions). */
static int cjk(utf8proc_int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x3134F);
}

/* The code point starting at t + i (its length in *k), -1 when invalid. */
static utf8proc_int32_t cp_at(const char *t, size_t n, size_t i, size_t *k) {
    utf8proc_int32_t c;
    utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)t + i, (utf8proc_ssize_t)(n - i), &c);
    *k = r > 0 ? (size_t)r : 1;
    return r > 0 ? c : -1;
}
/* The code point ending right before t + i, -1 when none. */
static utf8proc_int32_t cp_before(const char *t, size_t i) {
    size_t j = i;
    while (j > 0 && ((unsigned char)t[j - 1] & 0xC0) == 0x80 && i - j < 3) j--;
    if (j == 0) return -1;
    size_t k;
    utf8proc_int32_t c = cp_at(t, i, j - 1, &k);
    return j - 1 + k == i ? c : -1;
}

static utf8proc_int32_t fold(const qc_safety_t *s, utf8proc_int32_t c) {
    if (!s || c < 0x80) return c;
    size_t lo = 0, hi = s->n_folds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->folds[mid].from == (uint32_t)c) return (utf8proc_int32_t)s->folds[mid].to;
        if (s->folds[mid].from < (uint32_t)c) lo = mid + 1;
        else hi = mid;
    }
    return c;
}

/* Steps 1-3 into out (room for 4 bytes per input byte); its length. */
static size_t unicode_pass(const qc_safety_t *s, const char *text, size_t len, char *out) {
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &mapped,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD |
                                          UTF8PROC_IGNORE);
    size_t o = 0;
    int space = 0;
    if (n < 0) { /* invalid UTF-8: ASCII folded byte by byte */
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)text[i];
            if (c == '\'' || c == '`') continue;
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                if (!space && o > 0) out[o++] = ' ';
                space = 1;
                continue;
            }
            space = 0;
            out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        return o;
    }
    const char *m = (const char *)mapped;
    for (size_t i = 0, k; i < (size_t)n; i += k) {
        utf8proc_int32_t c = cp_at(m, (size_t)n, i, &k);
        if (c == '\'' || c == '`' || c == 0x2018 || c == 0x2019 || c == 0x02BC) continue;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x3000) {
            if (!space && o > 0) out[o++] = ' ';
            space = 1;
            continue;
        }
        space = 0;
        if (c == 0x2010 || c == 0x2011) c = '-'; /* Unicode hyphens */
        c = fold(s, c);
        o += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)out + o);
    }
    free(mapped);
    return o;
}

/* Step 4 for ASCII: whether a run of at least three single letters apart
 * by one separator each starts at t + i; its end (past the last letter) in
 * *end. */
static int spelled_at(const char *t, size_t n, size_t i, size_t *end) {
    if (!is_alpha((unsigned char)t[i]) || (i > 0 && is_alnum((unsigned char)t[i - 1]))) return 0;
    size_t j = i, count = 1;
    while (j + 2 < n + 1 && j + 1 < n && is_sep((unsigned char)t[j + 1]) && j + 2 < n &&
           is_alpha((unsigned char)t[j + 2]) && (j + 3 >= n || !is_alnum((unsigned char)t[j + 3]))) {
        j += 2;
        count++;
    }
    if (j + 1 < n && is_alnum((unsigned char)t[j + 1])) return 0; /* "a b cd": not single letters */
    *end = j + 1;
    return count >= 3;
}

/* Step 4 for Chinese: whether the separator at t + i stands between two
 * ideographs one of which stands alone ("自 杀", "我 想 死"). */
static int cjk_gap(const char *t, size_t n, size_t i) {
    size_t k;
    if (!is_sep((unsigned char)t[i]) || i + 1 >= n) return 0;
    utf8proc_int32_t left = cp_before(t, i), right = cp_at(t, n, i + 1, &k);
    if (!cjk(left) || !cjk(right)) return 0;
    size_t lstart = i;
    while (lstart > 0 && ((unsigned char)t[lstart - 1] & 0xC0) == 0x80) lstart--;
    if (lstart > 0) lstart--;
    while (lstart > 0 && ((unsigned char)t[lstart] & 0xC0) == 0x80) lstart--;
    int left_alone = !cjk(cp_before(t, lstart));
    int right_alone = i + 1 + k >= n || !cjk(cp_at(t, n, i + 1 + k, &k));
    return left_alone || right_alone;
}

static char leet(unsigned char c) {
    switch (c) {
    case '0': return 'o';
    case '1': return 'i';
    case '3': return 'e';
    case '4': return 'a';
    case '5': return 's';
    case '7': return 't';
    case '@': return 'a';
    case '$': return 's';
    default: return 0;
    }
}

char *sf_normalize(const qc_safety_t *s, const char *text, size_t len, size_t *out_len) {
    /* NFKC may grow a character up to 18 times (U+FDFA): utf8proc_map
     * allocates for that itself. A fold may turn a 2-byte character into
     * a 4-byte one, so the folded text needs at most twice the mapped
     * length; the later passes only shrink or keep it. */
    utf8proc_uint8_t *probe = NULL;
    utf8proc_ssize_t grown = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &probe,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
    free(probe);
    size_t cap = 2 * (grown > 0 ? (size_t)grown : len) + 8;
    char *a = malloc(cap + 1), *b = malloc(cap + 1);
    if (!a || !b) {
        free(a), free(b);
        return NULL;
    }
    size_t n = unicode_pass(s, text, len, a), o = 0;
    a[n] = 0;
    /* 4: spelled-out letters and Chinese typed apart */
    for (size_t i = 0, end; i < n;) {
        if (spelled_at(a, n, i, &end)) {
            for (; i < end; i++)
                if (is_alpha((unsigned char)a[i])) b[o++] = a[i];
            continue;
        }
        if (cjk_gap(a, n, i)) {
            i++;
            continue;
        }
        b[o++] = a[i++];
    }
    /* 5 and 6: hyphens between letters, digits and symbols inside words */
    n = o, o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i], prev = i ? (unsigned char)b[i - 1] : 0,
                      next = i + 1 < n ? (unsigned char)b[i + 1] : 0;
        if ((c == '-' || c == '_') && is_alnum(prev) && is_alnum(next) && (is_alpha(prev) || is_alpha(next))) {
            a[o++] = ' ';
            continue;
        }
        char l = leet(c);
        if (l) {
            /* a digit run of at most two with letters on both sides */
            size_t j = i;
            while (j < n && leet((unsigned char)b[j]) && j - i < 3) j++;
            int inside = is_alpha(prev) && j < n && is_alpha((unsigned char)b[j]) && j - i <= 2;
            int leading = !is_alnum(prev) && (c == '0' || c == '$') && j == i + 1 && i + 3 < n &&
                          is_alpha((unsigned char)b[i + 1]) && is_alpha((unsigned char)b[i + 2]) &&
                          is_alpha((unsigned char)b[i + 3]);
            if (inside || leading) {
                for (; i < j; i++) a[o++] = leet((unsigned char)b[i]);
                i--;
                continue;
            }
        }
        a[o++] = (char)c;
    }
    /* 7: "cannot" as "cant" (the text only shrinks) */
    n = o, o = 0;
    for (size_t r = 0; r < n; r++) {
        if (!strncmp(a + r, "cannot", 6) && (r == 0 || !is_alnum((unsigned char)a[r - 1])) &&
            (r + 6 >= n || !is_alnum((unsigned char)a[r + 6]))) {
            memcpy(b + o, "cant", 4);
            o += 4;
            r += 5;
        } else {
            b[o++] = a[r];
        }
    }
    b[o] = 0;
    free(a);
    *out_len = o;
    return b;
}

/* ==== numbers ==== */

static int zh_digit(utf8proc_int32_t c) {
    static const struct { utf8proc_int32_t c; int v; } d[] = {
        {0x96F6, 0}, {0x3007, 0}, {0x4E00, 1}, {0x4E8C, 2}, {0x4E24, 2}, {0x5169, 2}, {0x4E09, 3}, {0x56DB, 4},
        {0x4E94, 5}, {0x516D, 6}, {0x4E03, 7}, {0x516B, 8}, {0x4E5D, 9}, {0x51E0, 3}, {0x5E7E, 3}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (d[i].c == c) return d[i].v;
    return -1;
}
static long zh_unit(utf8proc_int32_t c) {
    return c == 0x5341 ? 10 : c == 0x767E ? 100 : c == 0x5343 ? 1000 : c == 0x4E07 || c == 0x842C ? 10000 : 0;
}

static const char *const en_units[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                       "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                                       "sixteen", "seventeen", "eighteen", "nineteen", NULL};
static const char *const en_tens[] = {"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", NULL};

/* An English number word at t + i (whole word): its value, its end. */
static long en_word(const char *t, size_t n, size_t i, size_t *end) {
    if (i > 0 && is_alnum((unsigned char)t[i - 1])) return -1;
    for (int pass = 0; pass < 3; pass++) {
        const char *const *w = pass == 0 ? en_tens : en_units;
        if (pass == 2) {
            static const char *const other[] = {"dozen", "hundred", "dozens", "hundreds", NULL};
            w = other;
        }
        for (int k = 0; w[k]; k++) {
            size_t l = strlen(w[k]);
            if (i + l <= n && !memcmp(t + i, w[k], l) && (i + l == n || !is_alnum((unsigned char)t[i + l]))) {
                *end = i + l;
                if (pass == 2) return k % 2 ? (k == 1 ? 100 : 200) : (k == 0 ? 12 : 24);
                if (pass == 1) return k;
                long v = 20 + 10 * k;
                size_t e2;
                if (*end + 1 < n && t[*end] == ' ') { /* "twenty five" */
                    for (int u = 1; u <= 9; u++) {
                        size_t ul = strlen(en_units[u]);
                        e2 = *end + 1 + ul;
                        if (e2 <= n && !memcmp(t + *end + 1, en_units[u], ul) &&
                            (e2 == n || !is_alnum((unsigned char)t[e2]))) {
                            *end = e2;
                            return v + u;
                        }
                    }
                }
                return v;
            }
        }
    }
    return -1;
}

long sf_number_at(const char *t, size_t n, size_t i, size_t *end) {
    if (i >= n) return -1;
    unsigned char c = (unsigned char)t[i];
    if (is_digit(c)) {
        if (i > 0 && (is_digit((unsigned char)t[i - 1]) || t[i - 1] == '.' || t[i - 1] == ',')) return -1;
        long v = 0;
        size_t j = i;
        for (; j < n; j++) {
            unsigned char d = (unsigned char)t[j];
            if (is_digit(d)) {
                if (v < 100000000) v = v * 10 + (d - '0');
            } else if (d == ',' && j + 3 < n + 1 && j + 1 < n && is_digit((unsigned char)t[j + 1])) {
                continue; /* 1,000 */
            } else {
                break;
            }
        }
        if (j + 1 < n && t[j] == '.' && is_digit((unsigned char)t[j + 1])) /* 2.5: the whole part */
            for (j++; j < n && is_digit((unsigned char)t[j]); j++) {}
        size_t k;
        if (j < n && (cp_at(t, n, j, &k) == 0x591A || cp_at(t, n, j, &k) == 0x4F59)) j += k; /* 20多, 30余 */
        *end = j;
        return v;
    }
    if (is_alpha(c)) return en_word(t, n, i, end);
    size_t k;
    utf8proc_int32_t cp = cp_at(t, n, i, &k);
    if (zh_digit(cp) < 0 && !zh_unit(cp)) return -1;
    if (i > 0) {
        utf8proc_int32_t before = cp_before(t, i);
        if (zh_digit(before) >= 0 || zh_unit(before)) return -1;
    }
    long total = 0, section = 0, digit = -1;
    size_t j = i;
    while (j < n) {
        utf8proc_int32_t x = cp_at(t, n, j, &k);
        int d = zh_digit(x);
        long u = zh_unit(x);
        if (d >= 0) {
            digit = digit >= 0 && digit < 1000000 ? digit * 10 + d : d; /* 一三 reads as 13 */
        } else if (u == 10000) {
            total += (section + (digit > 0 ? digit : 0)) * 10000;
            section = 0, digit = -1;
        } else if (u) {
            section += (digit >= 0 ? digit : 1) * u;
            digit = -1;
        } else if (x == 0x591A || x == 0x4F59 || x == 0x6765) { /* 十多, 十余, 十来 */
            j += k;
            break;
        } else {
            break;
        }
        j += k;
    }
    *end = j;
    return total + section + (digit > 0 ? digit : 0);
}
