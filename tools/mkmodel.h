/* mkmodel.h — writes the fixture models of ../shared/fixtures/README.md
 * ("Fixture models: how to generate them bit-exactly") as complete Hugging
 * Face folders, so tests and benchmarks need no downloaded weights.
 *
 *   char err[256];
 *   if (qc_mkmodel("tiny-qwen3", "build/models/tiny-qwen3", "../shared/fixtures/tokenizer",
 *                  0, err, sizeof err))
 *       fprintf(stderr, "%s\n", err);
 */
#ifndef QC_MKMODEL_H
#define QC_MKMODEL_H

#include <stddef.h>

#include "qcare.h"

/* Writes preset `preset` (one of qc_mkmodel_presets()) into out_dir (created,
 * with its parents, when missing): config.json, generation_config.json,
 * model.safetensors (BF16, tensors streamed out one chunk at a time), and
 * copies of tokenizer.json and tokenizer_config.json (required) and
 * vocab.json / merges.txt (when present) from tokenizer_dir (NULL: no
 * tokenizer files), and QC_MKMODEL_MARKER. Each file is written under a temporary name and renamed
 * when complete, model.safetensors last, so a folder holding it is whole.
 * With `progress`, prints progress lines to stderr. Unknown presets give
 * QC_ERR_ARG; the message goes into err. */
qc_status qc_mkmodel(const char *preset, const char *out_dir, const char *tokenizer_dir,
                     int progress, char *err, size_t err_size);

/* The file qc_mkmodel writes beside the others, saying the weights are
 * random: `qcare serve` finds it and the chat page shows a banner. */
#define QC_MKMODEL_MARKER "qcare-fixture.txt"

/* The preset names, NULL-terminated. Static. */
const char *const *qc_mkmodel_presets(void);

#endif
