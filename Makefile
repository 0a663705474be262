# qcare — build with `make`, test with `make test`, sanitizers with `make debug`.
# Needs a C11 compiler and the Debian packages listed in scripts/deps.sh
# (installed automatically when run as root).

CC      ?= cc
BUILD   ?= build
# The engine library (libqcare.a) needs only the first three; the care
# library adds nothing; the qcare binary (server, hub client, records) the rest.
ENGINE_PKGS = libpcre2-8 libutf8proc jansson
PKGS     = $(ENGINE_PKGS) libcrypto libcurl libmicrohttpd libedit sqlite3
OPT     ?= -O2
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Isrc -Itools -pthread
CFLAGS  ?= $(OPT) -g
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS   = $(PKG_LIBS) -lm -pthread

ENGINE_SRC = $(wildcard src/base/*.c src/engine/*.c)
CARE_SRC   = $(wildcard src/care/*.c)
CLI_SRC    = $(wildcard src/cli/*.c src/server/*.c src/records/*.c) tools/mkmodel.c
RECORDS_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/records/*.c))
TEST_SRC   = $(wildcard tests/test_*.c)

ENGINE_OBJ = $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
CARE_OBJ   = $(CARE_SRC:%.c=$(BUILD)/obj/%.o)
LIBS_A     = $(BUILD)/libqcare_care.a $(BUILD)/libqcare.a
CLI_OBJ    = $(CLI_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/web_assets.o
WEB_FILES  = web/index.html web/dashboard.html
TEST_BIN   = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all deps test test-unit test-cli debug clean run

all: deps $(BUILD)/qcare

deps:
	@sh scripts/deps.sh

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

# The web page, embedded into the binary (tools/embed.c).
$(BUILD)/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(CFLAGS_BASE) -o $@ $<

$(BUILD)/gen/web_assets.c: $(WEB_FILES) $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed $@ qc_web_index web/index.html qc_web_dashboard web/dashboard.html

$(BUILD)/obj/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) -c -o $@ $<

# Only these files use instructions beyond x86-64's baseline; the CPU is
# checked at run time before any of their functions is called.
$(BUILD)/obj/src/engine/kernels_avx2.o: ISA_FLAGS = -mavx2 -mfma -mf16c
$(BUILD)/obj/src/engine/kernels_avx512.o: ISA_FLAGS = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mavx2 -mfma -mf16c

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(LIBS_A) $(BUILD)/obj/tools/mkmodel.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -Itools -o $@ $< $(BUILD)/obj/tools/mkmodel.o $(LIBS_A) $(LDLIBS)

# Unit and golden tests of one build (release by default).
test-unit: $(BUILD)/qcare $(TEST_BIN)
	@sh tests/run.sh $(BUILD)

# Everything: release build + its tests, then the sanitizer build's tests.
test: deps
	@rm -f build/tests/summary build-debug/tests/summary
	@st=0; $(MAKE) --no-print-directory test-unit || st=1; \
	  $(MAKE) --no-print-directory debug || st=1; \
	  cat build/tests/summary build-debug/tests/summary 2>/dev/null | \
	    awk '{p += $$1; f += $$2; s += $$3} END {printf "all builds: %d passed, %d failed, %d skipped\n", p, f, s}'; \
	  exit $$st

# ASan + UBSan build of the same tests, in build-debug/.
debug: deps
	@$(MAKE) --no-print-directory BUILD=build-debug OPT=-O1 \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  test-unit

clean:
	rm -rf build build-debug

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

# Kernel micro-benchmark (GB/s and GMAC/s per weight type, one thread).
$(BUILD)/kernels_bench: bench/kernels_bench.c $(BUILD)/libqcare.a
	$(CC) $(CFLAGS) $(CFLAGS_BASE) -o $@ $< $(BUILD)/libqcare.a $(LDLIBS)

# test_pull compiles the hub client in directly (to test its name checks).
$(BUILD)/tests/test_pull: src/cli/hub.c src/cli/hub_fetch.c src/cli/hub_http.c src/cli/hub.h src/cli/hub_impl.h \
  tests/hubstub.h

# test_records, test_recserve and the records benchmark link the store (src/records/) in.
$(BUILD)/tests/test_records: tests/test_records.c tests/test.h tests/diskfull.h $(RECORDS_OBJ) $(LIBS_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(RECORDS_OBJ) $(LIBS_A) $(LDLIBS)

$(BUILD)/tests/test_recserve: tests/test_recserve.c tests/test.h tests/serverproc.h tests/diskfull.h $(RECORDS_OBJ) $(LIBS_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(RECORDS_OBJ) $(LIBS_A) $(LDLIBS)

$(BUILD)/records_bench: bench/records_bench.c $(RECORDS_OBJ) $(BUILD)/libqcare.a
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -o $@ $< $(RECORDS_OBJ) $(BUILD)/libqcare.a $(LDLIBS)

# Aggregate decode speed of `qcare serve` with 1, 4 and 8 streams.
$(BUILD)/serve_bench: bench/serve_bench.c tests/serverproc.h tests/test.h $(BUILD)/qcare $(BUILD)/libqcare.a
	$(CC) $(CFLAGS) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests -o $@ $< $(BUILD)/libqcare.a $(LDLIBS)
