/* fuzz_config.c — the same bytes as config.json (qc_config_load) and as
 * generation_config.json (qc_genconfig_load). What loads must hold what
 * engine.h promises (fields in range, a head layout qc_config_check
 * accepts, eos ids inside the vocabulary); what fails must leave the
 * documented state (a zeroed config, the defaults) and a message. */
#include "fuzz.h"

#include "engine/engine.h"

static void check_config(const qc_config_t *c) {
    FUZZ_CHECK(c->arch == QC_ARCH_QWEN2 || c->arch == QC_ARCH_QWEN3, "arch %d", c->arch);
    FUZZ_CHECK(c->n_embd >= 1 && c->n_ff >= 1 && c->n_layer >= 1 && c->n_head >= 1 && c->n_head_kv >= 1 &&
                   c->n_vocab >= 1 && c->n_ctx_train >= 1 && c->head_dim >= 1,
               "a size below 1");
    FUZZ_CHECK(c->head_dim % 2 == 0 && c->head_dim <= 512, "head_dim %d", c->head_dim);
    FUZZ_CHECK(c->n_head % c->n_head_kv == 0, "heads %d / kv heads %d", c->n_head, c->n_head_kv);
    FUZZ_CHECK(qc_config_check("config", c, NULL, 0) == QC_OK, "qc_config_check refuses a loaded config");
    FUZZ_CHECK(c->rope_theta > 0 && c->rms_eps > 0, "theta %g eps %g", c->rope_theta, c->rms_eps);
    FUZZ_CHECK(c->bos_id >= -1 && c->bos_id < c->n_vocab, "bos %d", c->bos_id);
    FUZZ_CHECK(c->n_eos >= 0 && c->n_eos <= QC_MAX_EOS, "%d eos ids", c->n_eos);
    for (int i = 0; i < c->n_eos; i++)
        FUZZ_CHECK(c->eos_ids[i] >= 0 && c->eos_ids[i] < c->n_vocab, "eos %d", c->eos_ids[i]);
}

static void check_gen(const qc_genconfig_t *g) {
    const qc_sampling_t *s = &g->sampling;
    FUZZ_CHECK(s->temperature >= 0 && s->top_k >= 0 && s->top_p >= 0 && s->top_p <= 1 && s->min_p >= 0 &&
                   s->min_p <= 1 && s->repetition_penalty > 0,
               "sampling out of range");
    FUZZ_CHECK(g->n_eos >= 0 && g->n_eos <= QC_MAX_EOS, "%d eos ids", g->n_eos);
    for (int i = 0; i < g->n_eos; i++) FUZZ_CHECK(g->eos_ids[i] >= 0, "eos %d", g->eos_ids[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    char err[512] = "";
    qc_config_t c;
    memset(&c, 0x5a, sizeof c);
    if (qc_config_load(path, &c, err, sizeof err) == QC_OK) {
        check_config(&c);
    } else {
        static const qc_config_t zero;
        FUZZ_CHECK(!memcmp(&c, &zero, sizeof c), "a failed load left a config");
        FUZZ_CHECK(err[0], "no message");
    }
    qc_genconfig_t g, def;
    qc_genconfig_defaults(&def);
    err[0] = 0;
    if (qc_genconfig_load(path, &g, err, sizeof err) == QC_OK) {
        check_gen(&g);
    } else {
        FUZZ_CHECK(!memcmp(&g, &def, sizeof g), "a failed load left settings other than the defaults");
        FUZZ_CHECK(err[0], "no message");
    }
    return 0;
}
