# herd — the one build file. `make` builds libherd.so, the providers, the task
# plugins, the herd command and the examples into $(BUILD)/.
#   make demo        run the nino34 flow (sequential, then on a LocalCluster)
#   make test        build and run every test
#   make test-asan   the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan   the same under ThreadSanitizer
#   make bench       benchmarks, side by side with Dask
#   make install     PREFIX=/usr/local DESTDIR= (any prefix: nothing built depends on it)
#   make deps        install the Debian packages the build and the tests need (as root)
#   make print-deb-pkgs   that list (what .ci/run installs)

.SECONDEXPANSION:
.SECONDARY:          # keep every object (the .d files describe them)
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
SAN     ?=

VERSION     := 0.1.0
SOVERSION   := 0
PKGS        := libevent libevent_pthreads libevent_openssl msgpack yaml-0.1 libcurl openssl cmocka \
               jansson libxml-2.0
DEB_PKGS    := build-essential pkg-config libevent-dev libmsgpack-dev libyaml-dev \
               libcurl4-openssl-dev libssl-dev libcmocka-dev libjansson-dev libxml2-dev xxd
# What the tests need beyond the build (README.md, "Dependencies", says which
# test needs what): a real sshd and ssh client (the ssh provider's tests), ip
# (network namespaces for the multi-host ssh test), ps and pgrep (to find what
# a failed test left), nm (tests/install/test_exports.sh), Dask (the defaults
# compared with Dask's in test_local, and bench/), clang with its libFuzzer
# runtime (make fuzz), a real Slurm with munge (the SLURMCluster tests start
# munged, slurmctld and slurmd themselves: tests/slurm/slurm.sh), Prometheus's text
# parser (the /metrics test) and Chromium (the dashboard page loaded headless,
# tests/integration/test_observe.c).
DEB_TEST_PKGS := openssh-server openssh-client iproute2 procps binutils python3-distributed \
                 clang libclang-rt-14-dev slurmctld slurmd slurm-client munge \
                 python3-prometheus-client chromium

PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs libevent libevent_pthreads libevent_openssl msgpack yaml-0.1 libcurl openssl jansson 2>/dev/null)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)
# JSON (jansson) is libherd's (the dashboard's /api, the performance report)
# and the AWS provider's; XML (libxml2) the AWS provider's alone.
AWS_LIBS    = $(shell pkg-config --libs libxml-2.0 2>/dev/null)

ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1 -g
else ifeq ($(SAN),thread)
SANFLAGS := -fsanitize=thread
OPT      := -O1 -g
else ifeq ($(SAN),fuzz)
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1 -g
else
SANFLAGS :=
OPT      := -O2 -g
endif

# -Wno-missing-field-initializers: a herd_param schema lists its fields by
# position and leaves out the binding (HERD_PARAM_FIELD) where a schema is only
# validated, never bound (annotations, profiles, fixtures of older ABIs).
WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wshadow -Wstrict-prototypes
# Two include sets, chosen by directory (the object rules below): the core,
# the herd command and the tests see core/ (-Icore); providers, plugins,
# examples, bench and test fixtures see the public headers only, as an outside
# author does, so including a private core header there fails to build.
# -MMD -MP write each object's header dependencies beside it (.d, included below).
CFLAGS_PUB = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -fPIC -fvisibility=hidden \
             -MMD -MP -Iinclude $(PKG_CFLAGS) $(CFLAGS)
CFLAGS_INT = $(CFLAGS_PUB) -Icore
LDFLAGS_ALL = $(SANFLAGS) -Wl,--as-needed $(LDFLAGS)

CORE_SRC  := $(wildcard core/*.c)
CLI_SRC   := $(wildcard core/cli/*.c)
PROVIDERS := $(notdir $(wildcard providers/*))
PLUGINS   := $(notdir $(wildcard plugins/*))
EXAMPLES  := $(notdir $(wildcard examples/*))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
CONF_SRC  := $(wildcard tests/conformance/test_*.c)
BENCH_SRC := $(wildcard bench/*.c)
TEST_HELPERS := $(wildcard tests/support/*.c)
FIXTURE_SRC  := $(wildcard tests/fixtures/*.c)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
# providers that break a conformance rule on purpose (not test_*.c)
CONF_PROV_SRC := $(filter-out tests/conformance/test_%.c,$(wildcard tests/conformance/*.c))

# the live page (core/dashboard.html) is compiled into libherd as a C array
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/dashboard_html.o
LIBSO     := $(BUILD)/lib/libherd.so.$(VERSION)
LIBA      := $(BUILD)/lib/libherd.a
HERD_BIN  := $(BUILD)/bin/herd
PROV_SO   := $(PROVIDERS:%=$(BUILD)/providers/%.so)
PLUG_SO   := $(PLUGINS:%=$(BUILD)/plugins/%.so)
EX_BIN    := $(foreach e,$(EXAMPLES),$(if $(wildcard examples/$(e)/*.c),$(BUILD)/examples/$(e)))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/%)
CONF_BIN  := $(CONF_SRC:tests/conformance/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/%)
TEST_BINS := $(UNIT_BIN) $(INTEG_BIN) $(CONF_BIN)
FIXTURE_SO := $(FIXTURE_SRC:tests/fixtures/%.c=$(BUILD)/tests/fixtures/%.so)
CONF_PROV_SO := $(CONF_PROV_SRC:tests/conformance/%.c=$(BUILD)/tests/conformance/%.so)

RPATH     = -Wl,-rpath,'$$ORIGIN/../lib'
LINK_HERD = -L$(BUILD)/lib -lherd $(RPATH)

.PHONY: all deps print-deb-pkgs check-deps demo test test-asan test-tsan fuzz bench install uninstall clean tests-build
all: check-deps $(LIBSO) $(BUILD)/lib/libherd.so $(LIBA) $(HERD_BIN) $(PROV_SO) $(PLUG_SO) $(EX_BIN) $(BUILD)/herd.pc

# ---- dependencies ----
# deps: every Debian package of both lists that is not installed yet.
deps:
	@missing=""; for p in $(DEB_PKGS) $(DEB_TEST_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "herd: installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then \
	    export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else echo "run as root:  apt-get install -y$$missing"; exit 1; fi; \
	fi

print-deb-pkgs:
	@echo $(DEB_PKGS) $(DEB_TEST_PKGS)

# check-deps (before every build): the build's libraries, through pkg-config.
check-deps:
	@missing=""; for p in $(PKGS); do pkg-config --exists $$p 2>/dev/null || missing="$$missing $$p"; done; \
	command -v pkg-config >/dev/null || missing="pkg-config"; \
	if [ -n "$$missing" ]; then \
	  echo "herd: missing build dependencies:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then \
	    export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $(DEB_PKGS) >/dev/null || exit 1; \
	  else echo "run as root:  apt-get install -y $(DEB_PKGS)   (or: make deps, which adds what the tests need)"; exit 1; fi; \
	fi

# ---- objects (GNU make picks the rule with the shortest stem) ----
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_PUB) -c $< -o $@
$(BUILD)/obj/core/%.o: core/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_INT) -c $< -o $@
$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_INT) -c $< -o $@
$(BUILD)/obj/tests/fixtures/%.o: tests/fixtures/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_PUB) -c $< -o $@
$(CONF_PROV_SRC:%.c=$(BUILD)/obj/%.o): $(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_PUB) -c $< -o $@

$(BUILD)/gen/dashboard_html.c: core/dashboard.html
	@mkdir -p $(dir $@)
	(cd core && xxd -i dashboard.html) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/dashboard_html.o: $(BUILD)/gen/dashboard_html.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_PUB) -c $< -o $@

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- libherd ----
$(LIBSO): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libherd.so.$(SOVERSION) -Wl,--no-undefined $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -ldl -lpthread -lm

$(BUILD)/lib/libherd.so: $(LIBSO)
	ln -sf libherd.so.$(VERSION) $(BUILD)/lib/libherd.so.$(SOVERSION)
	ln -sf libherd.so.$(VERSION) $@

$(LIBA): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

# The herd command links the runtime statically (its subcommands use internal
# functions) and exports the public API (-rdynamic) to the providers and
# plugins it loads.
$(HERD_BIN): $(CLI_SRC:%.c=$(BUILD)/obj/%.o) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -rdynamic -o $@ $(filter %.o,$^) -Wl,--whole-archive $(LIBA) -Wl,--no-whole-archive $(PKG_LIBS) -ldl -lpthread -lm

# Providers and plugins are not linked against libherd: they resolve herd_*
# from the process that loads them, so one copy of the runtime exists.
$(BUILD)/providers/%.so: $$(foreach f,$$(wildcard providers/$$*/*.c),$(BUILD)/obj/$$(basename $$(f)).o)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

# The AWS provider's client and provider files, linked whole into its tests.
AWS_OBJ      := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard providers/aws/*.c))
AWS_TEST_BIN := $(filter $(BUILD)/tests/test_aws_%,$(TEST_BINS))
$(BUILD)/providers/aws.so $(AWS_TEST_BIN): PKG_LIBS += $(AWS_LIBS)
$(AWS_TEST_BIN): $(AWS_OBJ)

$(BUILD)/plugins/%.so: $$(foreach f,$$(wildcard plugins/$$*/*.c),$(BUILD)/obj/$$(basename $$(f)).o)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread


$(BUILD)/examples/%: $$(foreach f,$$(wildcard examples/$$*/*.c),$(BUILD)/obj/$$(basename $$(f)).o) $(BUILD)/lib/libherd.so
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LINK_HERD) $(PKG_LIBS) -lpthread -lm

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/lib/libherd.so
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LINK_HERD) $(PKG_LIBS) -lpthread -lm

# Unit tests link the static archive whole (internal functions are reachable)
# and export it (-rdynamic) to the providers and plugins they load.
TEST_SUPPORT_OBJ := $(TEST_HELPERS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_SUPPORT_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -rdynamic -o $@ $(filter %.o,$^) -Wl,--whole-archive $(LIBA) -Wl,--no-whole-archive $(PKG_LIBS) $(CMOCKA_LIBS) -ldl -lpthread -lm
$(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(TEST_SUPPORT_OBJ) $(BUILD)/lib/libherd.so
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LINK_HERD) $(PKG_LIBS) $(CMOCKA_LIBS) -lpthread -lm
# Conformance tests run the suite the herd command has (core/cli/conformance.c).
$(BUILD)/tests/%: $(BUILD)/obj/tests/conformance/%.o $(TEST_SUPPORT_OBJ) $(BUILD)/obj/core/cli/conformance.o $(BUILD)/lib/libherd.so
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LINK_HERD) $(PKG_LIBS) $(CMOCKA_LIBS) -lpthread -lm

# Fuzz targets (tests/fuzz): with SAN=fuzz (clang) libFuzzer binaries for
# `make fuzz`; otherwise linked with driver.c, they replay the seed corpus in
# `make test` (tests/fuzz/test_corpus.sh), under every sanitizer build too.
ifeq ($(SAN),fuzz)
$(BUILD)/tests/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -fsanitize=fuzzer -o $@ $(filter %.o,$^) -Wl,--whole-archive $(LIBA) -Wl,--no-whole-archive $(PKG_LIBS) -ldl -lpthread -lm
else
$(BUILD)/tests/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/driver.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) -Wl,--whole-archive $(LIBA) -Wl,--no-whole-archive $(PKG_LIBS) -ldl -lpthread -lm
endif

# Test fixtures: deliberately broken or minimal providers/plugins as .so files.
$(BUILD)/tests/fixtures/%.so: $(BUILD)/obj/tests/fixtures/%.o
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -o $@ $^
$(BUILD)/tests/conformance/%.so: $(BUILD)/obj/tests/conformance/%.o
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -o $@ $^

# herd.pc is written for the PREFIX in force: at build time here, and again by
# `make install` for the prefix being installed. Outside /usr, Libs carries
# -Wl,-rpath,$${libdir}, so that a program built with `pkg-config --libs herd`
# finds libherd.so.0 at run time without LD_LIBRARY_PATH or ldconfig.
PC_RPATH = $(if $(filter /usr /usr/,$(PREFIX)),,-Wl,-rpath,$${libdir} )
define write_pc
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: herd\nDescription: run a program'"'"'s tasks in parallel on a cluster of workers\nVersion: %s\nRequires.private: libevent msgpack yaml-0.1 openssl jansson\nLibs: -L$${libdir} %s-lherd\nCflags: -I$${includedir}\n' '$(PREFIX)' '$(VERSION)' '$(PC_RPATH)' > $(1)
endef

$(BUILD)/herd.pc: Makefile
	@mkdir -p $(dir $@)
	$(call write_pc,$@)

# ---- running ----
tests-build: all $(TEST_BINS) $(FIXTURE_SO) $(CONF_PROV_SO) $(FUZZ_BIN)

# Test scripts (tests/install/test_*.sh): exported symbols, an install into a
# temporary prefix used from outside, the headers' own examples.
TEST_SCRIPTS := $(wildcard tests/install/test_*.sh) tests/fuzz/test_corpus.sh

test: tests-build
	@BUILD=$(BUILD) SAN=$(SAN) sh tests/run.sh $(TEST_BINS) $(TEST_SCRIPTS)

test-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 test

# Under ThreadSanitizer a test binary runs several times slower: each gets
# 900 s (TEST_TIMEOUT, tests/run.sh) unless told otherwise; test_peernet took
# 210 s alone and passed 300 s on a loaded machine.
test-tsan:
	@TEST_TIMEOUT="$${TEST_TIMEOUT:-900}" TSAN_OPTIONS="report_signal_unsafe=0 $(TSAN_OPTIONS)" \
	    $(MAKE) --no-print-directory BUILD=build-tsan SAN=thread test

# make fuzz: each fuzz target under libFuzzer (clang, ASan+UBSan) for
# FUZZ_SECONDS each, starting from the seed corpus (copied: the seeds stay as
# they are). A crash fails it and leaves crash-* in $(FUZZ_OUT).
FUZZ_SECONDS ?= 60
FUZZ_OUT     ?= build-fuzz/findings
fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz SAN=fuzz CC=clang \
	    $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/tests/%)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_OUT=$(FUZZ_OUT) sh tests/fuzz/run.sh build-fuzz/tests

demo: all
	$(BUILD)/examples/nino34

bench: all $(BENCH_BIN)
	@BUILD=$(BUILD) sh bench/run.sh

# ---- install ----
install: all
	install -d $(DESTDIR)$(PREFIX)/include/herd $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	           $(DESTDIR)$(PREFIX)/lib/herd/providers $(DESTDIR)$(PREFIX)/lib/herd/plugins $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/herd/*.h $(DESTDIR)$(PREFIX)/include/herd/
	install -m 755 $(LIBSO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libherd.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libherd.so.$(SOVERSION)
	ln -sf libherd.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libherd.so
	$(if $(PROV_SO),install -m 755 $(PROV_SO) $(DESTDIR)$(PREFIX)/lib/herd/providers/)
	$(if $(PLUG_SO),install -m 755 $(PLUG_SO) $(DESTDIR)$(PREFIX)/lib/herd/plugins/)
	install -m 755 $(HERD_BIN) $(DESTDIR)$(PREFIX)/bin/herd
	$(call write_pc,$(DESTDIR)$(PREFIX)/lib/pkgconfig/herd.pc)

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/herd $(DESTDIR)$(PREFIX)/lib/herd
	rm -f $(DESTDIR)$(PREFIX)/lib/libherd.so* $(DESTDIR)$(PREFIX)/bin/herd $(DESTDIR)$(PREFIX)/lib/pkgconfig/herd.pc

clean:
	rm -rf build build-asan build-tsan build-fuzz
