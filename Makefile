# qcare — build with `make`, test with `make test`, sanitizers with `make debug`.
# Needs a C11 compiler and the Debian packages listed in scripts/deps.sh
# (installed automatically when run as root).

CC      ?= cc
# Cross build for ARM64 (make CROSS=aarch64-linux-gnu-): Debian's cross
# compiler and the arm64 -dev packages (scripts/deps.sh arm64), a build
# folder of its own; `make emu-test` runs the tests under qemu-aarch64.
CROSS   ?=
ifneq ($(CROSS),)
CC      := $(CROSS)gcc
BUILD   ?= build-$(firstword $(subst -, ,$(CROSS)))
PKG_CONFIG := PKG_CONFIG_LIBDIR=/usr/lib/$(CROSS:%-=%)/pkgconfig:/usr/share/pkgconfig pkg-config
DEPS_ARG := $(if $(EMU),arm64-test,arm64)
else
PKG_CONFIG := pkg-config
DEPS_ARG :=
endif
BUILD   ?= build
# The machine the code is built for: x86-only flags go to x86 files only.
TARGET_ARCH := $(shell $(CC) -dumpmachine 2>/dev/null | cut -d- -f1)
# The engine library (libqcare.a) needs only the first three; the care
# library adds nothing; the qcare binary (server, hub client, records) the rest.
ENGINE_PKGS = libpcre2-8 libutf8proc jansson
PKGS     = $(ENGINE_PKGS) libcrypto libcurl libmicrohttpd libedit sqlite3 libpq
# The emulated test programs (EMU=1) link the engine's packages only; and
# Debian 12's aarch64 gcc dies vectorizing one loop of test_kernels.c
# (internal compiler error in vect_transform_reduction), so test programs
# there are built without the loop vectorizer (the library is not affected).
ifneq ($(EMU),)
PKGS     = $(ENGINE_PKGS)
TEST_CFLAGS = -fno-tree-loop-vectorize
endif
OPT     ?= -O2
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Isrc -Itools -pthread
CFLAGS  ?= $(OPT) -g
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
LDLIBS   = $(PKG_LIBS) -lm -pthread

ENGINE_SRC = $(wildcard src/base/*.c src/engine/*.c)
CARE_SRC   = $(wildcard src/care/*.c)
CLI_SRC    = $(wildcard src/cli/*.c src/server/*.c src/records/*.c) tools/mkmodel.c
RECORDS_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/records/*.c))
TEST_SRC   = $(wildcard tests/test_*.c)

ENGINE_OBJ = $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
CARE_OBJ   = $(CARE_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/safety_rules.o $(BUILD)/obj/gen/safety_lex.o
LIBS_A     = $(BUILD)/libqcare_care.a $(BUILD)/libqcare.a
CLI_OBJ    = $(CLI_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/web_assets.o
WEB_FILES  = web/index.html web/dashboard.html web/theme.css
TEST_BIN   = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all deps test test-unit test-cli debug clean run emu-test emu-build fuzz fuzz-build safety-lex

all: deps $(BUILD)/qcare

deps:
	@sh scripts/deps.sh $(DEPS_ARG)

# libqcare.a: the engine (include/qcare.h); libqcare_care.a: the care
# pipeline on top of it (include/qcare_care.h).
$(BUILD)/libqcare.a: $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libqcare_care.a: $(CARE_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/qcare: $(CLI_OBJ) $(LIBS_A)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) -o $@ $(CLI_OBJ) $(LIBS_A) $(LDLIBS)

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h src/*/*.h tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) $(ISA_FLAGS) -c -o $@ $<

# The web page, embedded into the binary (tools/embed.c), by a tool that
# runs during the build: compiled for the build machine (HOSTCC), which a
# cross build's CC is not.
HOSTCC ?= cc
$(BUILD)/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(HOSTCC) $(OPT) $(CFLAGS_BASE) -o $@ $<

# The files embedded: the web pages (served by the CLI); the safety net's
# rules (docs/safety.md) and its second reader's weights (written by
# `make safety-lex`), compiled into the care library.
$(BUILD)/gen/web_assets.c: $(WEB_FILES) $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed $@ qc_web_index web/index.html qc_web_dashboard web/dashboard.html

$(BUILD)/gen/safety_rules.c: data/safety-rules.txt $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed $@ qc_safety_rules_txt data/safety-rules.txt

$(BUILD)/gen/safety_lex.c: data/safety-lex.txt $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed $@ qc_safety_lex_txt data/safety-lex.txt

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) -c -o $@ $<

# Only these files use instructions beyond x86-64's baseline; the CPU is
# checked at run time before any of their functions is called.
ifeq ($(TARGET_ARCH),x86_64)
$(BUILD)/obj/src/engine/kernels_avx2.o: ISA_FLAGS = -mavx2 -mfma -mf16c
$(BUILD)/obj/src/engine/kernels_avx512.o: ISA_FLAGS = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c
$(BUILD)/obj/src/engine/kernels_amx.o: ISA_FLAGS = -mamx-tile -mamx-int8 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c
endif

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(LIBS_A) $(BUILD)/obj/tools/mkmodel.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(TEST_CFLAGS) $(PKG_CFLAGS) -Itests -Itools -o $@ $< $(BUILD)/obj/tools/mkmodel.o $(LIBS_A) $(LDLIBS)

# Unit and golden tests of one build (release by default).
test-unit: $(BUILD)/qcare $(TEST_BIN)
	@sh tests/run.sh $(BUILD)

# Everything: release build + its tests, the ARM64 build's under emulation,
# then the sanitizer build's tests. Each build compiles on every core (JOBS);
# the tests run one at a time.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
test: deps
	@sh scripts/deps.sh fuzz
	@sh scripts/deps.sh test
	@rm -f build/tests/summary build-debug/tests/summary build-aarch64/tests/summary
	@st=0; $(MAKE) --no-print-directory -j$(JOBS) test-unit || st=1; \
	  $(MAKE) --no-print-directory emu-test || st=1; \
	  $(MAKE) --no-print-directory debug || st=1; \
	  cat build/tests/summary build-aarch64/tests/summary build-debug/tests/summary 2>/dev/null | \
	    awk '{p += $$1; f += $$2; s += $$3} END {printf "all builds: %d passed, %d failed, %d skipped\n", p, f, s}'; \
	  exit $$st

# ASan + UBSan build of the same tests, in build-debug/.
debug: deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-debug OPT=-O1 \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  test-unit

# The ARM64 build's tests under qemu-aarch64 (tests/emu.sh), cross-built in
# build-aarch64/ without sanitizers, on the fixture models the native build
# generated (make test runs it after the release tests): test_kernels on
# both emulated CPUs (every level's kernels against scalar), the quantized
# model tests (test_quant, test_batch) at each level (i8mm, dotprod, neon,
# scalar), test_kquants (the K-quant GGUF against llama.cpp) at the ARM ones,
# test_golden at the best level and scalar, the others once (tests/emu.sh
# says why), on the first and the longest golden prompt (95 tokens: the
# batched prefill) and the first case of each list (EMU_CASES=1;
# EMU_CASES=0 runs them whole, tens of minutes per level under qemu); the
# README's care example (examples/ask.c), and its engine example on request
# (EMU_EXAMPLE=1).
EMU_TESTS ?= test_kernels test_golden test_quant test_kquants test_gguf test_care test_batch test_tokenizer
emu-test:
	@sh scripts/deps.sh arm64-test
	@$(MAKE) --no-print-directory -j$(JOBS) CROSS=aarch64-linux-gnu- EMU=1 BUILD=build-aarch64 EMU_TESTS="$(EMU_TESTS)" emu-build
	@EMU_TESTS="$(EMU_TESTS)" sh tests/emu.sh build-aarch64 $(BUILD)

emu-build: $(EMU_TESTS:%=$(BUILD)/tests/%)

clean:
	rm -rf build build-debug build-aarch64 build-fuzz

# Build, then serve the chat page and the API with MODEL (a Hugging Face
# folder, a .gguf file or a pulled repo name) until Ctrl-C. Without MODEL:
# the default model (Qwen/Qwen2.5-0.5B-Instruct) is pulled if absent;
# offline, a tiny random-weight fixture model from ../shared/fixtures is used
# instead (it runs the real code path; its text is noise).
MODEL ?=
HOST  ?= 127.0.0.1
PORT  ?= 8080
run: all
	@m="$(MODEL)"; \
	if [ -z "$$m" ]; then \
	  if m=$$($(BUILD)/qcare pull); then :; else \
	    m=$(BUILD)/models/tiny-qwen2; \
	    if [ ! -f $$m/model.safetensors ] && [ ! -f ../shared/fixtures/tokenizer/tokenizer.json ]; then \
	      echo "run: no model: the default one could not be downloaded, and the fixture tokenizer" >&2; \
	      echo "run: (../shared/fixtures/tokenizer) for the offline stand-in model is not here either." >&2; \
	      echo "run: give one: make run MODEL=path/to/Qwen2.5-0.5B-Instruct (a Hugging Face folder or a .gguf file)" >&2; \
	      exit 1; \
	    fi; \
	    echo "run: could not download the default model; using a tiny random-weight fixture model (its replies are noise)" >&2; \
	    [ -f $$m/model.safetensors ] || $(BUILD)/qcare mkmodel --preset tiny-qwen2 --out $$m --tokenizer ../shared/fixtures/tokenizer >/dev/null || exit 1; \
	  fi; \
	fi; \
	echo "run: open http://$(HOST):$(PORT)/ in a browser (Ctrl-C stops the server)"; \
	exec $(BUILD)/qcare serve --model "$$m" --host $(HOST) --port $(PORT)

# The safety net's second reader's weights (docs/safety.md): trained on the
# blind sets' tune halves, the own cases and the everyday messages; the
# holdout halves are never read. Rewrites data/safety-lex.txt (commit it);
# tests/safety_lex.sh checks that the file is what this gives.
SAFETY_TRAIN = $(sort $(wildcard data/safety-blind/*-tune.jsonl)) tests/data/safety-cases.jsonl \
  $(wildcard data/safety-everyday/train.jsonl)
safety-lex: $(BUILD)/qcare
	$(BUILD)/qcare safety-train $(SAFETY_TRAIN:%=--data %) --folds 5 --l2 0.001 --ngram-l2 0.01 --epochs 15 --out data/safety-lex.txt

# Kernel micro-benchmark (GB/s and GMAC/s per weight type, one thread).
$(BUILD)/kernels_bench: bench/kernels_bench.c $(BUILD)/libqcare.a
	$(CC) $(CFLAGS) $(CFLAGS_BASE) -o $@ $< $(BUILD)/libqcare.a $(LDLIBS)

# test_records starts a PostgreSQL server of its own through these.
$(BUILD)/tests/test_records: tests/pgserver.h tests/pg.sh

# test_pull compiles the hub client in directly (to test its name checks).
$(BUILD)/tests/test_pull: src/cli/hub.c src/cli/hub_fetch.c src/cli/hub_http.c src/cli/hub.h src/cli/hub_impl.h \
  tests/hubstub.h

# test_records, test_recserve, test_recshare and the records benchmark link the store (src/records/) in.
$(BUILD)/tests/test_records: tests/test_records.c tests/test.h tests/diskfull.h $(RECORDS_OBJ) $(LIBS_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(RECORDS_OBJ) $(LIBS_A) $(LDLIBS)

$(BUILD)/tests/test_recserve: tests/test_recserve.c tests/test.h tests/serverproc.h tests/diskfull.h $(RECORDS_OBJ) $(LIBS_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(RECORDS_OBJ) $(LIBS_A) $(LDLIBS)

$(BUILD)/tests/test_recshare: tests/test_recshare.c tests/test.h tests/serverproc.h tests/pgserver.h tests/pg.sh \
  $(RECORDS_OBJ) $(LIBS_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(RECORDS_OBJ) $(LIBS_A) $(LDLIBS)

$(BUILD)/records_bench: bench/records_bench.c tests/pgserver.h $(RECORDS_OBJ) $(BUILD)/libqcare.a
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(RECORDS_OBJ) $(BUILD)/libqcare.a $(LDLIBS)

# Aggregate decode speed of `qcare serve` with 1, 4 and 8 streams.
$(BUILD)/serve_bench: bench/serve_bench.c bench/streams.h tests/serverproc.h tests/test.h $(BUILD)/qcare $(BUILD)/libqcare.a
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(BUILD)/libqcare.a $(LDLIBS)

# qcare serve against llama-server on one GGUF file (bench/vs-llamacpp.sh).
$(BUILD)/peer_bench: bench/peer_bench.c bench/streams.h tests/serverproc.h tests/test.h $(BUILD)/qcare $(LIBS_A)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(LIBS_A) $(LDLIBS)

# ==== fuzzing (tests/fuzz/README.md) ====
# libFuzzer targets built with clang (ASan + UBSan + coverage) against a
# clang-built copy of the engine in $(FUZZ_BUILD)/; the normal build stays on
# $(CC). `make fuzz` runs every target FUZZ_SECONDS seconds (after replaying
# tests/fuzz/regressions/); `make test` runs each for a few seconds.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_TARGETS  = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz:
	@sh scripts/deps.sh fuzz
	@sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Only builds the targets (tests/fuzz/run.sh calls this).
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT=-O1 \
	  CFLAGS="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link" $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz/%)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/libqcare.a
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(FUZZ_LINK) $(BUILD)/libqcare.a $(LDLIBS)

# The server's targets (request bodies, the event stream, the records'
# queries) link the server's and the records' files and the care library's;
# fuzz_rules and fuzz_lex (the safety rules and weights files) the care library's.
FUZZ_SERVER_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/server/*.c src/records/*.c)) \
                  $(BUILD)/obj/gen/web_assets.o $(CARE_OBJ)
$(BUILD)/fuzz/fuzz_api $(BUILD)/fuzz/fuzz_sse: tests/fuzz/fuzz_srv.h
$(BUILD)/fuzz/fuzz_api $(BUILD)/fuzz/fuzz_sse $(BUILD)/fuzz/fuzz_records: $(FUZZ_SERVER_OBJ)
$(BUILD)/fuzz/fuzz_api $(BUILD)/fuzz/fuzz_sse $(BUILD)/fuzz/fuzz_records: FUZZ_LINK = $(FUZZ_SERVER_OBJ)
$(BUILD)/fuzz/fuzz_rules $(BUILD)/fuzz/fuzz_lex: $(CARE_OBJ) tests/fuzz/fuzz_safety.h
$(BUILD)/fuzz/fuzz_rules $(BUILD)/fuzz/fuzz_lex: FUZZ_LINK = $(CARE_OBJ)

# fuzz_hub compiles the hub client's listing code in (as test_pull does).
$(BUILD)/fuzz/fuzz_hub: src/cli/hub.c src/cli/hub.h src/cli/hub_impl.h
