# midge - one Makefile, no generated build system.
#
#   make            build everything into build/
#   make test       install missing Debian packages, build, run every test (scripts/run-tests)
#   make run        build and start the broker with midge.conf (with the web page on port 8080)
#   make fuzz       run the fuzzers for longer (FUZZ_SECONDS each, default 600)
#   make soak       persistence: SIGKILL the broker 100 times under QoS 1/2 traffic, print totals
#   make bench      run bench/ (numbers, not tests)
#   make install    PREFIX=/usr/local DESTDIR=
#
# Variants: SAN=asan (address+undefined), SAN=tsan (thread), SAN=fuzz (clang libFuzzer);
# each builds into its own BUILD directory so they never mix.
#   make SAN=asan   -> build/asan/...

SAN ?=
# Cross builds for the Raspberry Pi (docs/raspberry-pi.md): CROSS=aarch64-linux-gnu (64-bit
# Raspberry Pi OS) builds into build/arm64, CROSS=arm-linux-gnueabihf (32-bit) into build/armhf,
# with Debian's cross gcc and multiarch libraries (scripts/install-deps platforms).
CROSS ?=
ifneq ($(CROSS),)
CC := $(CROSS)-gcc
AR := $(CROSS)-ar
BUILD ?= build/$(or $(CROSS_ARCH_$(CROSS)),$(CROSS))
endif
CROSS_ARCH_aarch64-linux-gnu = arm64
CROSS_ARCH_arm-linux-gnueabihf = armhf
ifeq ($(SAN),)
BUILD ?= build
else
BUILD ?= build/$(SAN)
endif

CC ?= cc
ifeq ($(SAN),fuzz)
CC := clang
endif

PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

# The project's own flags live in MG_*; the user's CFLAGS/CPPFLAGS/LDFLAGS/LDLIBS come last on
# every command line, so `make CFLAGS=-O0` changes optimisation and keeps -std, -pthread, -fPIC
# and every warning.
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wvla -Wno-unused-parameter -Wno-missing-field-initializers
# 64-bit file offsets and time_t on 32-bit targets too (armhf: 32-bit Raspberry Pi OS), no-op on
# 64-bit ones: without them readdir() fails with EOVERFLOW on a filesystem with 64-bit inode
# numbers or directory offsets (include_dir read nothing), and the clock wraps in 2038. midge.h
# has no time_t or off_t, so libmidge's ABI does not depend on them (docs/raspberry-pi.md).
MG_CPPFLAGS := -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64 -DMIDGE_VERSION=\"$(VERSION)\" -Iinclude -I.
MG_CFLAGS := -std=c11 -fPIC -pthread $(WARN)
MG_OPT := -O2 -g
MG_LDFLAGS :=
MG_LDLIBS := -lpthread
CFLAGS ?=
CPPFLAGS ?=
LDFLAGS ?=
LDLIBS ?=

ifeq ($(SAN),asan)
MG_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
MG_LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
MG_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
MG_LDFLAGS += -fsanitize=thread
endif
ifeq ($(SAN),fuzz)
MG_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined
MG_LDFLAGS += -fsanitize=address,undefined
endif
ALL_CPPFLAGS = $(MG_CPPFLAGS) $(CPPFLAGS)
ALL_CFLAGS = $(MG_OPT) $(MG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(MG_LDFLAGS) $(LDFLAGS)
# What each kind of binary links besides its objects: the broker needs libm (ceil/log in
# $SYS load averages), libsqlite3 (persistence, broker/store*.c) and OpenSSL (TLS
# listeners; libcrypto also hashes passwords, broker/passwd.c); libmidge (client/tls.c) and
# what links it (the tools built on it, the examples, the client tests) need OpenSSL; a
# tool or test of proto/ or net/ alone only pthreads (PLAIN_LDLIBS), plus TLS_LDLIBS where
# named below.
BROKER_LDLIBS = $(MG_LDLIBS) -lm -lsqlite3 $(TLS_LDLIBS) $(LDLIBS)
# OpenSSL (net/tls.c): only what runs TLS links it (the broker, libmidge.so, midge_bench and
# the tests named in LDLIBS_<name> below); static archives pull tls.o in only when used.
TLS_LDLIBS = -lssl -lcrypto
CLIENT_LDLIBS = $(MG_LDLIBS) $(TLS_LDLIBS) $(LDLIBS)
PLAIN_LDLIBS = $(MG_LDLIBS) $(LDLIBS)

OBJ := $(BUILD)/obj
LIB := $(BUILD)/lib
BIN := $(BUILD)/bin

# ---- sources by layer (wildcards: add a file and it is built) ----
PROTO_SRC  := $(wildcard proto/*.c)
# net/plat_posix.c: the platform layer (net/plat.h) on Linux; other platforms have their own file.
NET_SRC    := $(filter-out net/plat_%.c,$(wildcard net/*.c)) net/plat_posix.c
# the NATS side of clustering (libnats) goes into the midge binary only, see CLUSTER_OBJ
CLUSTER_NATS_SRC := broker/cluster.c broker/cluster_session.c broker/cluster_js.c
BROKER_SRC := $(filter-out broker/main.c $(CLUSTER_NATS_SRC),$(wildcard broker/*.c))
CLIENT_SRC := $(filter-out client/tls_schannel.c,$(wildcard client/*.c))
TOOLS      := $(notdir $(patsubst %/,%,$(filter-out tools/common/,$(wildcard tools/*/))))
TOOLS_COMMON_SRC := $(filter-out tools/common/os_%.c,$(wildcard tools/common/*.c)) tools/common/os_posix.c
EXAMPLES   := $(basename $(notdir $(wildcard examples/*.c)))
UNIT_SRC   := $(wildcard test/unit/test_*.c)
UNIT_HELPER_SRC := $(filter-out $(UNIT_SRC),$(wildcard test/unit/*.c))
FUZZ_SRC   := $(wildcard test/fuzz/fuzz_*.c)
BENCH_SRC  := $(wildcard bench/micro_*.c)
# The libmidge test programs that test/client/*.py drive (one program per file, linked
# against libmidge.a as a user's program would be).
CLIENT_TEST_SRC := $(wildcard test/client/c/*.c)

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

LIBPROTO  := $(LIB)/libmgproto.a
LIBNET    := $(LIB)/libmgnet.a
LIBBROKER := $(LIB)/libmgbroker.a
LIBCLIENT := $(LIB)/libmgclient.a
LIBMIDGE  := $(LIB)/libmidge.a
LIBMIDGE_SO := $(LIB)/libmidge.so

MIDGE      := $(BIN)/midge
TOOL_BINS  := $(addprefix $(BIN)/,$(TOOLS))
EX_BINS    := $(addprefix $(BIN)/examples/,$(EXAMPLES))
UNIT_BINS  := $(patsubst test/unit/%.c,$(BUILD)/test/%,$(UNIT_SRC))
FUZZ_BINS  := $(patsubst test/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
CLIENT_TEST_BINS := $(patsubst test/client/c/%.c,$(BUILD)/test/client/%,$(CLIENT_TEST_SRC))
# bench/compare's ceiling (bench/trivial_router.c): not a broker, links nothing of midge
TRIVIAL_ROUTER := $(BUILD)/bench/trivial_router
WWW := build/www
WEB_SRC := $(wildcard web/src/*) web/build.mjs
WEB_MODULES := web/node_modules/.package-lock.json

.PHONY: all test run fuzz bench install clean unit asan tsan fuzzers soak platforms
.DEFAULT_GOAL := all
.SECONDARY:

ifeq ($(SAN),fuzz)
all: $(FUZZ_BINS)
else
all: $(LIBPROTO) $(LIBNET) $(LIBMIDGE) $(LIBMIDGE_SO) $(MIDGE) $(TOOL_BINS) $(EX_BINS) $(UNIT_BINS) $(BENCH_BINS) $(TRIVIAL_ROUTER) $(CLIENT_TEST_BINS) $(WWW)/index.html
endif

# ---- the web page (web/, docs/web.md) ----
# MQTT.js and uPlot from npm, pinned by web/package-lock.json, bundled by esbuild into
# build/www: one copy for every variant, as it has no C in it. `npm ci` runs when the lockfile
# changes (the only download; --ignore-scripts: no package's install script runs, esbuild finds
# its binary package without one).
$(WEB_MODULES): web/package.json web/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "make: the web page (web/) is built with node and npm; scripts/install-deps installs them (Debian's nodejs and npm)" >&2; exit 1; }
	cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

$(WWW)/index.html: $(WEB_MODULES) $(WEB_SRC)
	node web/build.mjs $(WWW)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

$(LIBPROTO): $(call objs,$(PROTO_SRC))
$(LIBNET): $(call objs,$(NET_SRC))
$(LIBBROKER): $(call objs,$(BROKER_SRC))
$(LIBCLIENT): $(call objs,$(CLIENT_SRC))
$(LIBMIDGE): $(call objs,$(CLIENT_SRC) $(NET_SRC) $(PROTO_SRC))
$(LIB)/%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(LIBMIDGE_SO): $(call objs,$(CLIENT_SRC) $(NET_SRC) $(PROTO_SRC)) client/libmidge.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libmidge.so.0 -Wl,--version-script=client/libmidge.map $(ALL_LDFLAGS) $(filter %.o,$^) -o $@ $(CLIENT_LDLIBS) $(TLS_LDLIBS)
	ln -sf libmidge.so $(LIB)/libmidge.so.0

# Clustering over NATS (broker/cluster.c, docs/cluster.md) links libnats into the midge binary
# alone: libmgbroker.a leaves it out, so the unit tests, fuzzers and tools never load it.
# Cross builds go without (no libnats for the Pi's architectures here): main.c's reference to
# it is weak, and cluster_nats_url is then refused at start.
CLUSTER_OBJ = $(if $(CROSS),,$(CLUSTER_NATS_SRC:%.c=$(OBJ)/%.o))
CLUSTER_LDLIBS = $(if $(CROSS),,-lnats)
$(MIDGE): $(OBJ)/broker/main.o $(CLUSTER_OBJ) $(LIBBROKER) $(LIBNET) $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(CLUSTER_LDLIBS) $(BROKER_LDLIBS)

.SECONDEXPANSION:
# A tool links libmidge unless TOOL_LIBS_<name> says otherwise (midge_bench speaks raw proto/);
# such a tool also goes without tools/common/, which is written against libmidge.
TOOL_LIBS_midge_bench = $(LIBNET) $(LIBPROTO)
# midge_db reads files, not sockets: proto/ for MQTT properties and topics, and libsqlite3
# (only it and the broker link SQLite).
TOOL_LIBS_midge_db = $(LIBPROTO)
TOOL_LDLIBS_midge_db = -lsqlite3
# midge_passwd writes lines with the broker's own reader/writer (broker/passwd.c) and hashes
# with libcrypto; nothing else of the broker.
TOOL_LIBS_midge_passwd = $(OBJ)/broker/passwd.o
TOOL_LDLIBS_midge_passwd = -lcrypto
# midge_bench speaks TLS through net/tls.c (--cafile, the hs scenario).
TOOL_LDLIBS_midge_bench = $(TLS_LDLIBS)
$(BIN)/%: $$(call objs,$$(wildcard tools/$$*/*.c) $$(if $$(TOOL_LIBS_$$*),,$(TOOLS_COMMON_SRC))) $$(or $$(TOOL_LIBS_$$*),$(LIBMIDGE))
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(TOOL_LDLIBS_$*) $(if $(TOOL_LIBS_$*),$(PLAIN_LDLIBS),$(CLIENT_LDLIBS))

# A static pattern rule: the tools' $(BIN)/% rule above would match these paths too.
$(EX_BINS): $(BIN)/examples/%: $(OBJ)/examples/%.o $(LIBMIDGE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(CLIENT_LDLIBS)

# The client test programs: same flags and sanitizers as the library they test.
$(CLIENT_TEST_BINS): $(BUILD)/test/client/%: $(OBJ)/test/client/c/%.o $(LIBMIDGE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(CLIENT_LDLIBS)

# Unit tests, fuzzers and micro benchmarks link only the layer their name starts with, so a
# layer under construction never breaks another layer's tests: test_<layer>_*.c,
# fuzz_<layer>_*.c, micro_<layer>_*.c. A name without a known layer is an error, not a guess.
LAYERS := proto net broker client
LAYER_LIBS_proto  = $(LIBPROTO)
LAYER_LIBS_net    = $(LIBNET) $(LIBPROTO)
LAYER_LIBS_client = $(LIBCLIENT) $(LIBNET) $(LIBPROTO)
LAYER_LIBS_broker = $(LIBBROKER) $(LIBNET) $(LIBPROTO)
layer_of = $(or $(filter $(LAYERS),$(firstword $(subst _, ,$(1)))),$(error $(1): a test, fuzzer or micro benchmark is named <kind>_<layer>_..., layer one of: $(LAYERS)))
layer_libs = $(LAYER_LIBS_$(call layer_of,$(1)))
layer_ldlibs = $(if $(filter broker,$(call layer_of,$(1))),$(BROKER_LDLIBS),$(if $(filter client,$(call layer_of,$(1))),$(CLIENT_LDLIBS),$(PLAIN_LDLIBS)))
# Checked when the Makefile is read, so a misnamed file fails every build, not just its own.
LAYER_CHECK := $(foreach f,$(UNIT_SRC) $(FUZZ_SRC) $(BENCH_SRC),$(call layer_of,$(word 2,$(subst _, ,$(notdir $(f))))))

# Extra libraries of one unit test, fuzzer or micro benchmark: LDLIBS_<kind>_<name>.
LDLIBS_test_net_tls = $(TLS_LDLIBS)
$(BUILD)/test/test_%: $(OBJ)/test/unit/test_%.o $(call objs,$(UNIT_HELPER_SRC)) $$(call layer_libs,$$*)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(call layer_ldlibs,$*) $(LDLIBS_test_$*)

$(BUILD)/fuzz/fuzz_%: $(OBJ)/test/fuzz/fuzz_%.o $$(call layer_libs,$$*)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer $^ -o $@ $(call layer_ldlibs,$*)

$(BUILD)/bench/micro_%: $(OBJ)/bench/micro_%.o $$(call layer_libs,$$*)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(call layer_ldlibs,$*)

$(TRIVIAL_ROUTER): $(OBJ)/bench/trivial_router.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(PLAIN_LDLIBS)

# ---- convenience targets ----
unit: all
	@for t in $(UNIT_BINS); do $$t || exit 1; done

asan:
	$(MAKE) SAN=asan

tsan:
	$(MAKE) SAN=tsan

fuzzers:
	$(MAKE) SAN=fuzz

test:
	@scripts/install-deps
	@scripts/run-tests

# Not part of `make test`: cross-build for the Raspberry Pi (arm64, armhf) and run the unit
# tests and a broker smoke test under qemu-user (scripts/run-platforms, docs/raspberry-pi.md).
platforms:
	@scripts/install-deps platforms
	@scripts/run-platforms

# Not part of `make test`: the kill -9 test of persistence with 100 kills instead of 20.
soak: all
	MIDGE_SOAK_KILLS=$${MIDGE_SOAK_KILLS:-100} /usr/bin/python3 -m pytest -q -s \
		test/broker/test_persistence.py -k sigkill

# the port of midge.conf's WebSockets listener (the listener line before `protocol websockets`)
WEB_PORT = $(shell awk '$$1 == "listener" { p = $$2 } $$1 == "protocol" && $$2 == "websockets" { print p; exit }' midge.conf)
run:
	@scripts/install-deps
	@$(MAKE) --no-print-directory all
	@echo "midge: the web page is at http://localhost:$(WEB_PORT)/ (docs/web.md)"
	$(MIDGE) -v -c midge.conf

fuzz: fuzzers
	FUZZ_SECONDS=$${FUZZ_SECONDS:-600} scripts/run-fuzz

bench: all
	bench/run

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/midge $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(MIDGE) $(TOOL_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBMIDGE) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBMIDGE_SO) $(DESTDIR)$(PREFIX)/lib/libmidge.so.0
	ln -sf libmidge.so.0 $(DESTDIR)$(PREFIX)/lib/libmidge.so
	install -m 644 include/midge/*.h $(DESTDIR)$(PREFIX)/include/midge/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' midge.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/midge.pc
	-install -m 644 $(wildcard docs/man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	-install -m 644 $(wildcard docs/man/*.3) $(DESTDIR)$(PREFIX)/share/man/man3/
	-install -m 644 $(wildcard docs/man/*.5) $(DESTDIR)$(PREFIX)/share/man/man5/
	-install -m 644 $(wildcard docs/man/*.8) $(DESTDIR)$(PREFIX)/share/man/man8/
	install -d $(DESTDIR)$(PREFIX)/share/midge/www
	install -m 644 $(WWW)/* $(DESTDIR)$(PREFIX)/share/midge/www/

clean:
	rm -rf build

# make windows: the mingw-w64 build of libmidge, the tools and the examples (docs/windows.md).
include mk/windows.mk
