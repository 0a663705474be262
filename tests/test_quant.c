/* test_quant.c — quantized weights (Q8_0, Q4_0).
 *
 * 1. qcare quantizes on load exactly as llama-quantize does (the blocks are
 *    byte-identical to the fixture GGUFs), and quantizes activations to 8 bits
 *    with a half-precision scale as llama.cpp's x86 build does, so its logits equal llama.cpp's
 *    own Q8_0 / Q4_0 runs (golden/tiny-qwen3-q8_0.jsonl, -q4_0.jsonl) to
 *    ~1e-6 — until an activation lands on a rounding tie of the 8-bit
 *    quantization, where a 1e-7 difference upstream flips one quant and moves
 *    later logits by up to ~0.2 (seen on a few positions of 3 of 5 prompts).
 *    Positions before the first flip match to 1e-6 (59% of positions for
 *    Q8_0, 76% for Q4_0). So: at least 50% within 2.5e-3, all within 0.25.
 * 2. Against the F32 goldens, quantization moves the logits: llama.cpp's own
 *    quantized runs move them by up to 0.22 (Q8_0) and 1.75 (Q4_0: uniform
 *    random weights quantize badly to 4 bits) on these prompts. The test
 *    reports the deviation and greedy agreement, and fails on twice those.
 * Every threshold below guards what was measured (2026-12-01, AVX2 and
 * scalar levels; the two differ only in which positions hit a tie), with a
 * margin; a check that could not fail is not made:
 *   vs llama.cpp's quantized runs: within 2.5e-3 at 60-83% of positions
 *     (min 50%); greedy tokens agreeing 46-65% (min 35%); since the
 *     activations are quantized as llama.cpp's x86 build does (id = 127 /
 *     amax, ties to even; 2026-12-02, AVX2): 88% (Q8_0) and 83% (Q4_0) of
 *     positions, greedy 109/120 and 95/120, max 0.137 and 0.158;
 *   vs the F32 goldens: mean deviation Q8_0 0.079-0.087 (max 0.12), Q4_0
 *     0.76-0.85 (max 1.1); greedy agreement Q8_0 29-38% (min 20%), Q4_0
 *     7/120 = 5.8% (min 3%); no position within 2.5e-3 (not checked);
 *   F32: mean 1e-4 to 2e-4 (max 5e-4), every greedy token (min 100%). */
#include "engine/engine.h"
#include "test.h"
#include "golden.h"

#include <string.h>

/* Runs model `name` with weights as `dtype` over every prompt of golden file
 * `gname` and checks the listed logits within tol (max) and tol_mean (mean),
 * at least min_greedy_pct% of the greedy tokens, and at least min_tight_pct%
 * of positions within 2.5e-3 (when min_tight_pct > 0). */
static void check(const char *name, const char *dtype, const char *gname, double tol, double tol_mean,
                  int min_greedy_pct, int min_tight_pct) {
    char dir[1024], golden[1024], err[512];
    snprintf(dir, sizeof dir, "%s/%s", test_env("QC_MODELS", "build/models"), name);
    snprintf(golden, sizeof golden, "%s/golden/%s.jsonl", fixtures(), gname);
    qc_model_opts_t o = {.dtype = dtype};
    qc_model_t *m;
    if (qc_model_load(dir, &o, &m, err, sizeof err)) {
        CHECK(0, "load %s as %s: %s", dir, dtype, err);
        return;
    }
    CHECK(!strcmp(qc_model_dtype(m), dtype), "model reports %s, asked %s", qc_model_dtype(m), dtype);
    golden_stats_t s = {0};
    golden_run(m, golden, &s);
    CHECK(s.positions > 0, "%s: golden lines read", golden);
    printf("%s %-5s vs %s: max |logit diff| %.4f, mean %.4f (tolerance %.4f), %ld/%ld positions within 2.5e-3; "
           "greedy tokens agreeing %ld/%ld\n",
           name, dtype, gname, s.max_diff, s.positions ? s.sum_pos / s.positions : 0, tol, s.tight, s.positions,
           s.greedy_same, s.greedy_total);
    if (min_tight_pct > 0)
        CHECK(s.tight * 100 >= (long)min_tight_pct * s.positions, "%s %s: %ld/%ld positions within 2.5e-3, below %d%%",
              name, dtype, s.tight, s.positions, min_tight_pct);
    CHECK(s.positions && s.sum_pos / s.positions <= tol_mean, "%s %s: mean deviation %.4f above %.3f", name, dtype,
          s.positions ? s.sum_pos / s.positions : 0, tol_mean);
    CHECK(s.max_diff <= tol, "%s %s: max deviation %.4f within %.2f", name, dtype, s.max_diff, tol);
    CHECK(s.greedy_same * 100 >= (long)min_greedy_pct * s.greedy_total, "%s %s: greedy agreement %ld/%ld below %d%%",
          name, dtype, s.greedy_same, s.greedy_total, min_greedy_pct);
    qc_model_free(m);
}

int main(void) {
    static const struct {
        const char *name, *dtype, *golden;
        double tol, tol_mean;
        int min_greedy_pct, min_tight_pct;
    } cases[] = {
        /* llama.cpp's own quantized runs: same numbers expected */
        {"tiny-qwen3", "q8_0", "tiny-qwen3-q8_0", 0.25, 0.04, 35, 50},
        {"tiny-qwen3", "q4_0", "tiny-qwen3-q4_0", 0.25, 0.04, 35, 50},
        /* the F32 goldens; converted to F32: as exact as BF16 */
        {"tiny-qwen2", "f32", "tiny-qwen2", 3e-3, 5e-4, 100, 100},
        {"tiny-qwen2", "q8_0", "tiny-qwen2", 0.44, 0.12, 20, 0},
        {"tiny-qwen2", "q4_0", "tiny-qwen2", 3.5, 1.1, 3, 0},
        {"tiny-qwen3", "f32", "tiny-qwen3", 3e-3, 5e-4, 100, 100},
        {"tiny-qwen3", "q8_0", "tiny-qwen3", 0.44, 0.12, 20, 0},
        {"tiny-qwen3", "q4_0", "tiny-qwen3", 3.5, 1.1, 3, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (test_case((long)i)) /* QC_TEST_CASES */
            check(cases[i].name, cases[i].dtype, cases[i].golden, cases[i].tol, cases[i].tol_mean,
                  cases[i].min_greedy_pct, cases[i].min_tight_pct);
    return test_done("test_quant");
}
