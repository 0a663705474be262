/* tokenizer_json.c — a Hugging Face tokenizer.json read into a vocabulary
 * description (vocab.h), from which qc_tokenizer_from_vocab builds the
 * tokenizer. Every section the tokenizer relies on (model, added_tokens,
 * normalizer, pre_tokenizer, decoder) is checked here, and what qcare does
 * not implement is refused by name; the description points into the JSON
 * tree, which is freed once the tokenizer is built. */
#include "engine/engine.h"
#include "engine/vocab.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2's ByteLevel regex, used when ByteLevel.use_regex is true. */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* The description being filled, and the arrays it points to (owned). */
typedef struct {
    qc_vocab_msg_t m;
    qc_vocab_desc_t v;
    qc_vocab_token_t *tokens;
    qc_vocab_merge_t *merges;
    qc_vocab_added_t *added;
} jload_t;

static qc_status oom(jload_t *J) { return qc_vocab_err(&J->m, QC_ERR_NOMEM, "out of memory"); }

/* The id of a JSON integer in [0, QC_VOCAB_MAX_ID), or -1. */
static int32_t json_id(const json_t *v) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x >= 0 && x < QC_VOCAB_MAX_ID ? (int32_t)x : -1;
}

/* A boolean member of an added token (absent: def); -1 for a wrong type. */
static int json_flag(const json_t *obj, const char *key, int def) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return def;
    if (!json_is_boolean(v)) return -1;
    return json_is_true(v);
}

/* Finds the largest id of the vocabulary and of added_tokens, checking the
 * types on the way. */
static qc_status scan_ids(jload_t *J, json_t *vocab, json_t *added, int32_t *n_tokens) {
    int32_t top = -1;
    for (void *it = json_object_iter(vocab); it; it = json_object_iter_next(vocab, it)) {
        int32_t id = json_id(json_object_iter_value(it));
        if (id < 0)
            return qc_vocab_err(&J->m, QC_ERR_FORMAT, "model.vocab[\"%.40s\"]: expected an integer id in [0, %d)",
                                json_object_iter_key(it), QC_VOCAB_MAX_ID);
        if (id > top) top = id;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *a = json_array_get(added, i);
        if (!json_is_object(a))
            return qc_vocab_err(&J->m, QC_ERR_FORMAT, "added_tokens[%zu]: expected an object", i);
        int32_t id = json_id(json_object_get(a, "id"));
        if (id < 0)
            return qc_vocab_err(&J->m, QC_ERR_FORMAT, "added_tokens[%zu].id: expected an integer in [0, %d)", i,
                                QC_VOCAB_MAX_ID);
        if (id > top) top = id;
    }
    *n_tokens = top + 1;
    return QC_OK;
}

/* model.vocab and model.merges (ids checked by scan_ids). */
static qc_status read_bpe(jload_t *J, json_t *model) {
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    size_t nv = json_object_size(vocab), nm = json_array_size(merges);
    J->tokens = malloc((nv ? nv : 1) * sizeof *J->tokens);
    J->merges = malloc((nm ? nm : 1) * sizeof *J->merges);
    if (!J->tokens || !J->merges) return oom(J);
    size_t k = 0;
    for (void *it = json_object_iter(vocab); it && k < nv; it = json_object_iter_next(vocab, it), k++)
        J->tokens[k] = (qc_vocab_token_t){json_id(json_object_iter_value(it)), json_object_iter_key(it),
                                          json_object_iter_key_len(it)};
    J->v.tokens = J->tokens;
    J->v.n_vocab = k;
    for (size_t r = 0; r < nm; r++) {
        json_t *m = json_array_get(merges, r);
        if (json_is_string(m)) {
            J->merges[r] = (qc_vocab_merge_t){json_string_value(m), json_string_length(m), NULL, 0};
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            J->merges[r] = (qc_vocab_merge_t){json_string_value(a), json_string_length(a), json_string_value(b),
                                              json_string_length(b)};
        } else {
            return qc_vocab_err(&J->m, QC_ERR_FORMAT,
                                "model.merges[%zu]: expected a string \"a b\" or an array of two strings", r);
        }
    }
    J->v.merges = J->merges;
    J->v.n_merges = nm;
    return QC_OK;
}

/* Reads added_tokens. */
static qc_status read_added(jload_t *J, json_t *added) {
    size_t n = json_array_size(added);
    if (n && !(J->added = calloc(n, sizeof *J->added))) return oom(J);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(added, i);
        json_t *c = json_object_get(a, "content");
        if (!json_is_string(c) || json_string_length(c) == 0)
            return qc_vocab_err(&J->m, QC_ERR_FORMAT, "added_tokens[%zu].content: expected a non-empty string", i);
        int sp = json_flag(a, "special", 0), ls = json_flag(a, "lstrip", 0),
            rs = json_flag(a, "rstrip", 0), sw = json_flag(a, "single_word", 0),
            nz = json_flag(a, "normalized", !sp);
        if (sp < 0 || ls < 0 || rs < 0 || sw < 0 || nz < 0)
            return qc_vocab_err(&J->m, QC_ERR_FORMAT,
                                "added_tokens[%zu]: special, lstrip, rstrip, single_word and normalized must "
                                "be booleans", i);
        J->added[i] = (qc_vocab_added_t){.id = json_id(json_object_get(a, "id")),
                                         .content = json_string_value(c),
                                         .len = json_string_length(c),
                                         .special = sp,
                                         .lstrip = ls,
                                         .rstrip = rs,
                                         .single_word = sw,
                                         .normalized = nz};
    }
    J->v.added = J->added;
    J->v.n_added = n;
    return QC_OK;
}

static qc_status load_normalizer(jload_t *J, json_t *nz) {
    if (!nz || json_is_null(nz)) return QC_OK;
    const char *type = json_string_value(json_object_get(nz, "type"));
    if (!type) return qc_vocab_err(&J->m, QC_ERR_FORMAT, "normalizer.type: expected a string");
    if (strcmp(type, "NFC") == 0) {
        J->v.nfc = 1;
        return QC_OK;
    }
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(nz, "normalizers");
        if (!json_is_array(list))
            return qc_vocab_err(&J->m, QC_ERR_FORMAT, "normalizer.normalizers: expected an array");
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *ty = json_string_value(json_object_get(json_array_get(list, i), "type"));
            if (!ty || strcmp(ty, "NFC") != 0)
                return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED,
                                    "normalizer.normalizers[%zu].type \"%s\" is not supported (only NFC)", i,
                                    ty ? ty : "?");
            J->v.nfc = 1;
        }
        return QC_OK;
    }
    return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "normalizer.type \"%s\" is not supported (only NFC or null)",
                        type);
}

/* Appends a Split step's pattern to the pre-tokenizer. */
static qc_status add_split(jload_t *J, const char *pat, size_t len, int literal, const char *where) {
    if (J->v.n_splits == QC_VOCAB_MAX_SPLITS)
        return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "%s: more than %d Split steps", where, QC_VOCAB_MAX_SPLITS);
    qc_vocab_split_t *sp = &J->v.splits[J->v.n_splits++];
    sp->pattern = pat;
    sp->len = len;
    sp->literal = literal;
    snprintf(sp->where, sizeof sp->where, "%s", where);
    return QC_OK;
}

/* One step of the pre-tokenizer: Split (regex, Isolated) or ByteLevel. */
static qc_status load_pretok_step(jload_t *J, json_t *p, const char *where, int last) {
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return qc_vocab_err(&J->m, QC_ERR_FORMAT, "%s.type: expected a string", where);
    if (strcmp(type, "Split") == 0) {
        const char *beh = json_string_value(json_object_get(p, "behavior"));
        if (!beh || strcmp(beh, "Isolated") != 0)
            return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "%s.behavior \"%s\" is not supported (only Isolated)",
                                where, beh ? beh : "?");
        if (json_flag(p, "invert", 0) != 0)
            return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "%s.invert: only false is supported", where);
        json_t *pat = json_object_get(p, "pattern");
        json_t *re = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
        if (json_is_string(re))
            return add_split(J, json_string_value(re), json_string_length(re), 0, where);
        if (json_is_string(str))
            return add_split(J, json_string_value(str), json_string_length(str), 1, where);
        return qc_vocab_err(&J->m, QC_ERR_FORMAT, "%s.pattern: expected {\"Regex\": ...} or {\"String\": ...}",
                            where);
    }
    if (strcmp(type, "ByteLevel") == 0) {
        if (!last)
            return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "%s: ByteLevel must be the last pre-tokenizer", where);
        int aps = json_flag(p, "add_prefix_space", 0), ur = json_flag(p, "use_regex", 1);
        if (aps < 0 || ur < 0)
            return qc_vocab_err(&J->m, QC_ERR_FORMAT, "%s: add_prefix_space and use_regex must be booleans",
                                where);
        if (aps)
            return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "%s.add_prefix_space: only false is supported", where);
        if (ur) return add_split(J, GPT2_REGEX, sizeof GPT2_REGEX - 1, 0, where);
        return QC_OK;
    }
    return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED,
                        "%s.type \"%s\" is not supported (only Split and ByteLevel)", where, type);
}

static qc_status load_pretok(jload_t *J, json_t *pt) {
    if (!json_is_object(pt))
        return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED,
                            "pre_tokenizer: missing; only byte-level BPE (ByteLevel pre-tokenizer) is supported");
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (type && strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(pt, "pretokenizers");
        if (!json_is_array(list) || json_array_size(list) == 0)
            return qc_vocab_err(&J->m, QC_ERR_FORMAT, "pre_tokenizer.pretokenizers: expected a non-empty array");
        size_t n = json_array_size(list);
        const char *lt = json_string_value(json_object_get(json_array_get(list, n - 1), "type"));
        if (!lt || strcmp(lt, "ByteLevel") != 0)
            return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED,
                                "pre_tokenizer.pretokenizers: the last step must be ByteLevel");
        for (size_t i = 0; i < n; i++) {
            char where[64];
            snprintf(where, sizeof where, "pre_tokenizer.pretokenizers[%zu]", i);
            qc_status st = load_pretok_step(J, json_array_get(list, i), where, i + 1 == n);
            if (st) return st;
        }
        return QC_OK;
    }
    if (type && strcmp(type, "ByteLevel") == 0) return load_pretok_step(J, pt, "pre_tokenizer", 1);
    return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED,
                        "pre_tokenizer.type \"%s\" is not supported (only ByteLevel or a Sequence ending in "
                        "ByteLevel)", type ? type : "?");
}

/* Checks the model section's scalar settings. */
static qc_status check_model(jload_t *J, json_t *model) {
    if (!json_is_object(model)) return qc_vocab_err(&J->m, QC_ERR_FORMAT, "model: missing or not an object");
    json_t *ty = json_object_get(model, "type");
    if (ty && !json_is_string(ty)) return qc_vocab_err(&J->m, QC_ERR_FORMAT, "model.type: expected a string");
    if (ty && strcmp(json_string_value(ty), "BPE") != 0)
        return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "model.type \"%s\" is not supported (only BPE)",
                            json_string_value(ty));
    if (!json_is_object(json_object_get(model, "vocab")))
        return qc_vocab_err(&J->m, QC_ERR_FORMAT, "model.vocab: missing or not an object");
    if (!json_is_array(json_object_get(model, "merges")))
        return qc_vocab_err(&J->m, QC_ERR_FORMAT, "model.merges: missing or not an array");
    json_t *d = json_object_get(model, "dropout");
    if (d && !json_is_null(d) && !(json_is_number(d) && json_number_value(d) == 0))
        return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "model.dropout: only null is supported");
    static const char *empty_keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(model, empty_keys[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "model.%s: only \"\" or null is supported",
                                empty_keys[i]);
    }
    if (json_flag(model, "byte_fallback", 0) != 0)
        return qc_vocab_err(&J->m, QC_ERR_UNSUPPORTED, "model.byte_fallback: only false is supported");
    int im = json_flag(model, "ignore_merges", 0);
    if (im < 0) return qc_vocab_err(&J->m, QC_ERR_FORMAT, "model.ignore_merges: expected a boolean");
    J->v.ignore_merges = im;
    return QC_OK;
}

/* Parses the file with jansson, checks every section it relies on (model,
 * added_tokens, normalizer, pre_tokenizer, decoder) before building the
 * tables; the JSON tree is freed before returning. */
qc_status qc_tokenizer_load(const char *path, qc_tokenizer_t **out, char *err, size_t err_size) {
    jload_t J = {.m = {.path = path ? path : "(null)", .err = err, .err_size = err_size}};
    json_t *root = NULL;
    qc_status st;
    if (err && err_size) err[0] = 0;
    if (!out || !path) return qc_seterr(err, err_size, QC_ERR_ARG, "qc_tokenizer_load: NULL argument");
    *out = NULL;

    size_t len;
    char *text = qc_read_file(path, &len, err, err_size);
    if (!text) return QC_ERR_IO;
    json_error_t je;
    root = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    free(text);
    if (!root) {
        st = qc_vocab_err(&J.m, QC_ERR_FORMAT, "not valid JSON (line %d, column %d): %s", je.line, je.column,
                          je.text);
        goto done;
    }
    if (!json_is_object(root)) {
        st = qc_vocab_err(&J.m, QC_ERR_FORMAT, "expected a JSON object at the top level");
        goto done;
    }

    json_t *model = json_object_get(root, "model");
    if ((st = check_model(&J, model))) goto done;
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_null(added) && !json_is_array(added)) {
        st = qc_vocab_err(&J.m, QC_ERR_FORMAT, "added_tokens: expected an array");
        goto done;
    }
    json_t *dec = json_object_get(root, "decoder");
    if (dec && !json_is_null(dec)) {
        const char *ty = json_string_value(json_object_get(dec, "type"));
        if (!ty || strcmp(ty, "ByteLevel") != 0) {
            st = qc_vocab_err(&J.m, QC_ERR_UNSUPPORTED, "decoder.type \"%s\" is not supported (only ByteLevel)",
                              ty ? ty : "?");
            goto done;
        }
    }
    if ((st = load_normalizer(&J, json_object_get(root, "normalizer")))) goto done;
    if ((st = load_pretok(&J, json_object_get(root, "pre_tokenizer")))) goto done;

    if ((st = scan_ids(&J, json_object_get(model, "vocab"), added, &J.v.n_tokens))) goto done;
    if (J.v.n_tokens == 0) {
        st = qc_vocab_err(&J.m, QC_ERR_FORMAT, "model.vocab: empty");
        goto done;
    }
    if ((st = read_bpe(&J, model)) || (st = read_added(&J, added))) goto done;

    J.v.path = J.m.path;
    J.v.vocab_key = "model.vocab";
    J.v.merges_key = "model.merges";
    J.v.unk_id = -1;
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) {
        J.v.unk_text = json_string_value(unk);
        J.v.unk_len = json_string_length(unk);
    }
    st = qc_tokenizer_from_vocab(&J.v, out, err, err_size);

done:
    free(J.tokens);
    free(J.merges);
    free(J.added);
    json_decref(root);
    return st;
}
