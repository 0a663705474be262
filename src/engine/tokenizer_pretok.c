/* tokenizer_pretok.c — the pre-tokenizer: its Split steps' regexes compiled
 * so that they match as Hugging Face's (Oniguruma / Rust) regexes do, and
 * run over a segment of text (behavior Isolated: every match and every gap
 * between matches is a piece), the last step's pieces going to BPE. */
#include "engine/tokenizer_impl.h"

#define JIT_STACK_MAX (64u << 20) /* bytes; the largest JIT stack tried */

/* ==== compiling ==== */

/* Unicode White_Space, the \s of Oniguruma and Rust's regex, which Hugging
 * Face uses. PCRE2's \s (UCP) also takes U+180E, which has not been
 * White_Space since Unicode 6.3. */
#define WS_RANGES "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

/* Copies a regex into out with \s and \S spelled as White_Space classes (\S
 * inside a bracket class is left as it is: it cannot be spelled there). */
static int rewrite_ws(const char *p, size_t n, qc_buf_t *out) {
    int in_class = 0;
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[i + 1];
            const char *rep = NULL;
            if (e == 's') rep = in_class ? WS_RANGES : "[" WS_RANGES "]";
            else if (e == 'S' && !in_class) rep = "[^" WS_RANGES "]";
            else if (e == 'Q') { /* literal up to \E */
                const char *end = NULL;
                for (size_t k = i + 2; k + 1 < n; k++)
                    if (p[k] == '\\' && p[k + 1] == 'E') { end = p + k + 2; break; }
                size_t m = end ? (size_t)(end - (p + i)) : n - i;
                if (qc_buf_add(out, p + i, m)) return -1;
                i += m - 1;
                continue;
            }
            if (rep ? qc_buf_add(out, rep, strlen(rep)) : qc_buf_add(out, p + i, 2)) return -1;
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            size_t k = i + 1; /* a ']' first in the class is literal */
            if (k < n && p[k] == '^') k++;
            if (k < n && p[k] == ']') k++;
            if (qc_buf_add(out, p + i, k - i)) return -1;
            i = k - 1;
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') { /* [:alpha:] */
            const char *e = NULL;
            for (size_t k = i + 2; k + 1 < n; k++)
                if (p[k] == ':' && p[k + 1] == ']') { e = p + k + 2; break; }
            if (e) {
                if (qc_buf_add(out, p + i, (size_t)(e - (p + i)))) return -1;
                i = (size_t)(e - p) - 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = 0;
        if (qc_buf_add(out, &c, 1)) return -1;
    }
    return 0;
}

qc_status qc_tok_regex_compile(const qc_vocab_split_t *sp, pcre2_code **re, char *why, size_t why_size) {
    int ec;
    PCRE2_SIZE eo;
    uint32_t opt = PCRE2_UTF | PCRE2_UCP | (sp->literal ? PCRE2_LITERAL : 0);
    qc_buf_t tmp = {0};
    const char *src = sp->pattern;
    size_t srclen = sp->len;
    if (!sp->literal) {
        if (rewrite_ws(sp->pattern, sp->len, &tmp)) {
            qc_buf_free(&tmp);
            return QC_ERR_NOMEM;
        }
        src = tmp.n ? tmp.p : "";
        srclen = tmp.n;
    }
    *re = pcre2_compile((PCRE2_SPTR)src, srclen, opt, &ec, &eo, NULL);
    qc_buf_free(&tmp);
    if (!*re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        (void)eo; /* an offset into the rewritten pattern would mislead */
        return qc_seterr(why, why_size, QC_ERR_FORMAT, "%s", (const char *)msg);
    }
    /* JIT is an optimisation: without it pcre2_match interprets */
    (void)pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE);
    return QC_OK;
}

/* ==== matching ==== */

/* Finds the next match of regex `re` in s[0..n) from `start`: 1 with the
 * match in *ms..*me, 0 for none, -2 when the match hit one of PCRE2's
 * limits (match steps, depth, heap: a pattern that backtracks without
 * end on this text), -1 on another failure (memory). A JIT stack
 * overflow is retried with larger stacks, then by the interpreter (which
 * keeps its backtracking state on the heap, not the C stack). */
static int re_next(qc_tok_enc_t *E, const pcre2_code *re, const unsigned char *s, size_t n, size_t start,
                   size_t *ms, size_t *me) {
    int rc = pcre2_match(re, s, n, start, PCRE2_NO_UTF_CHECK, E->md, E->mctx);
    while (rc == PCRE2_ERROR_JIT_STACKLIMIT && E->jstack_size < JIT_STACK_MAX) {
        size_t size = E->jstack_size ? E->jstack_size * 4 : (1u << 20);
        pcre2_jit_stack_free(E->jstack);
        E->jstack = pcre2_jit_stack_create(32 * 1024, size, NULL);
        E->jstack_size = size;
        if (!E->jstack) break;
        pcre2_jit_stack_assign(E->mctx, NULL, E->jstack);
        rc = pcre2_match(re, s, n, start, PCRE2_NO_UTF_CHECK, E->md, E->mctx);
    }
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_NOMEMORY)
        rc = pcre2_match(re, s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, E->md, E->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) return -2;
    if (rc < 0) return -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(E->md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

/* Pre-tokenizer step `stage` over s[0..n): every match of its regex and
 * every gap between matches is a piece, handed to the next step (the last
 * step hands pieces to BPE). Recursion depth is bounded by QC_VOCAB_MAX_SPLITS. */
qc_status qc_tok_pretok(qc_tok_enc_t *E, int stage, const unsigned char *s, size_t n) {
    if (n == 0) return QC_OK;
    if (stage == E->t->n_re) return qc_tok_bpe_piece(E, s, n);
    const pcre2_code *re = E->t->re[stage];
    size_t prev = 0, pos = 0, ms, me;
    qc_status st;
    while (pos <= n) {
        int r = re_next(E, re, s, n, pos, &ms, &me);
        if (r < 0) return r == -2 ? QC_ERR_UNSUPPORTED : QC_ERR_NOMEM;
        if (r == 0) break;
        if (ms > prev && (st = qc_tok_pretok(E, stage + 1, s + prev, ms - prev))) return st;
        prev = ms;
        if (me == ms) { /* empty match: no piece; step past one character */
            if (ms >= n) break;
            size_t k;
            qc_tok_utf8_cp(s + ms, &k);
            pos = ms + k;
            continue;
        }
        if ((st = qc_tok_pretok(E, stage + 1, s + ms, me - ms))) return st;
        prev = pos = me;
    }
    if (prev < n) return qc_tok_pretok(E, stage + 1, s + prev, n - prev);
    return QC_OK;
}
