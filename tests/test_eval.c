/* test_eval.c — the classifier metrics on small confusion matrices whose
 * answers are worked out by hand below, and the report files. */
#include "care/eval.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

int main(void) {
    qc_eval_t e;
    qc_eval_init(&e);
    /* true positive:  4 predicted positive, 1 negative
     * true negative:  1 positive, 3 negative, 1 neutral
     * true neutral:   0, 2 negative, 3 neutral           (n = 15) */
    int rows[3][3] = {{4, 1, 0}, {1, 3, 1}, {0, 2, 3}};
    double lat = 1;
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 3; p++)
            for (int k = 0; k < rows[t][p]; k++) CHECK(qc_eval_add(&e, t, p, lat++) == 0, "add");
    CHECK(qc_eval_add(&e, 3, 0, 1) == -1 && qc_eval_add(&e, 0, -1, 1) == -1, "labels out of range refused");
    qc_eval_summary_t s;
    qc_eval_summarize(&e, &s);
    CHECK(s.n == 15, "n %ld", s.n);
    CHECK(NEAR(s.accuracy, 10.0 / 15), "accuracy %f", s.accuracy);
    /* positive: P = 4/5, R = 4/5, F1 = 0.8; negative: P = 3/6, R = 3/5,
     * F1 = 2*.5*.6/1.1 = 6/11; neutral: P = 3/4, R = 3/5, F1 = 2*.75*.6/1.35 = 2/3 */
    CHECK(NEAR(s.precision[0], 0.8) && NEAR(s.recall[0], 0.8) && NEAR(s.f1[0], 0.8), "positive P/R/F1");
    CHECK(NEAR(s.precision[1], 0.5) && NEAR(s.recall[1], 0.6) && NEAR(s.f1[1], 6.0 / 11), "negative P/R/F1");
    CHECK(NEAR(s.precision[2], 0.75) && NEAR(s.recall[2], 0.6) && NEAR(s.f1[2], 2.0 / 3), "neutral P/R/F1");
    CHECK(NEAR(s.macro_f1, (0.8 + 6.0 / 11 + 2.0 / 3) / 3), "macro-F1 %f", s.macro_f1);
    CHECK(s.support[0] == 5 && s.support[1] == 5 && s.support[2] == 5, "support");
    /* latencies 1..15 ms: nearest rank p50 = 8th = 8, p95 = ceil(14.25) = 15th = 15 */
    CHECK(NEAR(s.p50_ms, 8) && NEAR(s.p95_ms, 15), "percentiles %f %f", s.p50_ms, s.p95_ms);

    /* A class never predicted: precision 0, not NaN. */
    qc_eval_t z;
    qc_eval_init(&z);
    qc_eval_add(&z, 0, 1, 1);
    qc_eval_add(&z, 1, 1, 1);
    qc_eval_summary_t zs;
    qc_eval_summarize(&z, &zs);
    CHECK(zs.precision[0] == 0 && zs.f1[2] == 0 && !isnan(zs.macro_f1), "zero division gives 0");
    qc_eval_free(&z);

    char dir[] = "/tmp/qcare-eval-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[128];
    snprintf(path, sizeof path, "%s/report.html", dir);
    CHECK(qc_eval_write_html(path, "tiny <test> & co", &e, &s) == 0, "write report");
    FILE *f = fopen(path, "r");
    char buf[16384] = {0};
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    CHECK(strstr(buf, "<svg") && strstr(buf, "tiny &lt;test&gt; &amp; co") && strstr(buf, ">4</text>"),
          "report has the SVG matrix and the escaped title");
    CHECK(qc_eval_write_html("/nonexistent-dir/x.html", "t", &e, &s) == -1, "unwritable path reported");
    FILE *j = fopen(path, "w");
    qc_eval_write_json(j, &e, &s);
    fclose(j);
    f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    CHECK(strstr(buf, "\"n\": 15") && strstr(buf, "\"accuracy\": 0.6667") && strstr(buf, "[0, 2, 3]"),
          "JSON summary: %s", buf);
    unlink(path);
    rmdir(dir);
    CHECK(qc_emotion_index("neutral") == 2 && qc_emotion_index("happy") == -1 && !qc_emotion_name(3), "names");
    qc_eval_free(&e);
    qc_eval_free(NULL);
    return test_done("test_eval");
}
