/* chat.c — ChatML rendering of a conversation, the prompt format of the Qwen
 * models:
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n ... [<|im_start|>assistant\n]
 * The text is meant to be encoded with QC_TOK_PARSE_SPECIAL so that the
 * markers become their special tokens; qc_chat_encode gives the ids
 * directly, with the contents encoded as plain text (for untrusted
 * content). */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== rendering ==== */

static int role_ok(const char *r) {
    return r && (strcmp(r, "system") == 0 || strcmp(r, "user") == 0 || strcmp(r, "assistant") == 0);
}

/* Appends "<|im_start|>ROLE\nCONTENT<|im_end|>\n" at *o (or only counts its
 * length when p is NULL). */
static size_t put_turn(char *p, size_t o, const char *role, const char *content) {
    static const char a[] = "<|im_start|>", b[] = "<|im_end|>\n";
    size_t nr = strlen(role), nc = strlen(content);
    if (p) {
        memcpy(p + o, a, sizeof a - 1);
        memcpy(p + o + sizeof a - 1, role, nr);
        p[o + sizeof a - 1 + nr] = '\n';
        memcpy(p + o + sizeof a + nr, content, nc);
        memcpy(p + o + sizeof a + nr + nc, b, sizeof b - 1);
    }
    return o + (sizeof a - 1) + nr + 1 + nc + (sizeof b - 1);
}

/* Writes the whole prompt into p (NULL: only measures); returns its length. */
static size_t render(const qc_chat_msg_t *msgs, size_t n, const qc_chat_opts_t *opts, char *p) {
    static const char gen[] = "<|im_start|>assistant\n", think[] = "<think>\n\n</think>\n\n";
    size_t o = 0;
    if (opts && opts->default_system && (n == 0 || strcmp(msgs[0].role, "system") != 0))
        o = put_turn(p, o, "system", opts->default_system);
    for (size_t i = 0; i < n; i++) o = put_turn(p, o, msgs[i].role, msgs[i].content);
    if (opts && opts->add_generation_prompt) {
        if (p) memcpy(p + o, gen, sizeof gen - 1);
        o += sizeof gen - 1;
        if (opts->empty_think) {
            if (p) memcpy(p + o, think, sizeof think - 1);
            o += sizeof think - 1;
        }
    }
    return o;
}

qc_status qc_chat_render(const qc_chat_msg_t *msgs, size_t n_msgs, const qc_chat_opts_t *opts,
                         char **out) {
    if (!out) return QC_ERR_ARG;
    *out = NULL;
    if (!msgs && n_msgs) return QC_ERR_ARG;
    for (size_t i = 0; i < n_msgs; i++)
        if (!role_ok(msgs[i].role) || !msgs[i].content) return QC_ERR_ARG;
    size_t len = render(msgs, n_msgs, opts, NULL);
    char *p = malloc(len + 1);
    if (!p) return QC_ERR_NOMEM;
    render(msgs, n_msgs, opts, p);
    p[len] = 0;
    *out = p;
    return QC_OK;
}

/* ==== encoding (contents as plain text) ==== */

/* Appends text's ids (special tokens parsed or not). */
static qc_status add_text(const qc_tokenizer_t *tok, const char *text, int special, qc_ids_t *v) {
    int32_t *ids = NULL;
    size_t n = 0;
    qc_status st = qc_tokenizer_encode(tok, text, strlen(text), special ? QC_TOK_PARSE_SPECIAL : 0, &ids, &n);
    if (!st && qc_ids_add(v, ids, n)) st = QC_ERR_NOMEM;
    free(ids);
    return st;
}

/* Appends one turn: the markers and role as special tokens, content as text. */
static qc_status add_turn(const qc_tokenizer_t *tok, const char *role, const char *content, qc_ids_t *v) {
    char head[32];
    snprintf(head, sizeof head, "<|im_start|>%s\n", role); /* role_ok: at most "assistant" */
    qc_status st = add_text(tok, head, 1, v);
    if (!st) st = add_text(tok, content, 0, v);
    if (!st) st = add_text(tok, "<|im_end|>\n", 1, v);
    return st;
}

qc_status qc_chat_encode(const qc_tokenizer_t *tok, const qc_chat_msg_t *msgs, size_t n_msgs,
                         const qc_chat_opts_t *opts, int32_t **ids, size_t *n_ids) {
    if (!ids || !n_ids) return QC_ERR_ARG;
    *ids = NULL;
    *n_ids = 0;
    if (!tok || (!msgs && n_msgs)) return QC_ERR_ARG;
    for (size_t i = 0; i < n_msgs; i++)
        if (!role_ok(msgs[i].role) || !msgs[i].content) return QC_ERR_ARG;
    if (qc_tokenizer_find(tok, "<|im_start|>") < 0 || qc_tokenizer_find(tok, "<|im_end|>") < 0)
        return QC_ERR_UNSUPPORTED;
    qc_ids_t v = {0};
    qc_status st = QC_OK;
    if (opts && opts->default_system && (n_msgs == 0 || strcmp(msgs[0].role, "system") != 0))
        st = add_turn(tok, "system", opts->default_system, &v);
    for (size_t i = 0; !st && i < n_msgs; i++) st = add_turn(tok, msgs[i].role, msgs[i].content, &v);
    if (!st && opts && opts->add_generation_prompt) {
        st = add_text(tok, "<|im_start|>assistant\n", 1, &v);
        if (!st && opts->empty_think) st = add_text(tok, "<think>\n\n</think>\n\n", 1, &v);
    }
    if (st) {
        qc_ids_free(&v);
        return st;
    }
    *ids = v.p;
    *n_ids = v.n;
    return QC_OK;
}
