# rates: build, test and run. `make` builds build/ratesd; see README.md.
BUILD   ?= build
CC      ?= cc
VERSION ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
# The commit: the file COMMIT when `git archive` filled it in (export-subst, .gitattributes:
# a `make dist` tarball, or the copy tools/build-deb.sh builds), else git's HEAD when this
# directory is the top of a clone, else "unknown".
ifeq ($(origin COMMIT),undefined)
COMMIT  := $(shell c=$$(sed -n 's/^\([0-9a-f]\{12\}\)[0-9a-f]*$$/\1/p' COMMIT 2>/dev/null); \
             [ -n "$$c" ] || { p=$$(git rev-parse --show-prefix 2>/dev/null) && [ -z "$$p" ] && \
             c=$$(git rev-parse --short=12 HEAD 2>/dev/null); }; echo "$${c:-unknown}")
endif

WARN    = -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes \
          -Wformat=2 -Wshadow -Wpointer-arith -Wcast-qual -Wwrite-strings \
          -Wno-unused-parameter -Wvla -Wundef
PKGS    = libmicrohttpd libpq yajl libcurl libcrypto zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) \
          -Isrc -I$(BUILD)/gen -MMD -MP \
          -DRATES_VERSION='"$(VERSION)"' -DRATES_COMMIT='"$(COMMIT)"'
LDLIBS  = $(PKG_LIBS) -lpthread -lm
# Each program links only what it uses (tests/integration/programs/test_build.py checks with readelf -d).
RATESD_LIBS := $(shell pkg-config --libs libmicrohttpd libpq yajl libcrypto zlib 2>/dev/null) -lpthread -lm

ifeq ($(SAN),1)
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
override BUILD := $(BUILD)-san
else ifeq ($(SAN),thread)
# ThreadSanitizer (make test's concurrency pass; suppressions: tests/tsan.supp).
SANFLAGS = -fsanitize=thread -fno-omit-frame-pointer
override BUILD := $(BUILD)-tsan
endif

SRCS      := $(wildcard src/*.c)
# ratesd's objects: src/ but the programs' own files (rates-load's src/load_*.c: mk/load.mk).
LIB_SRCS  := $(filter-out src/main.c src/load_%.c src/gen_main.c,$(SRCS))
LIB_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/migrations_gen.o $(BUILD)/obj/api_gen.o
MIGRATIONS := $(sort $(wildcard db/migrations/*.sql))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all clean test test-unit unit-bins up deps bench
all: $(BUILD)/ratesd

$(BUILD)/ratesd: $(BUILD)/obj/main.o $(LIB_OBJS)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(RATESD_LIBS)

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj $(BUILD)/gen/migrations_gen.c
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The list of migrations is a prerequisite too: a removed or renamed file (a revert, a branch
# switch) changes no timestamp but must leave the embedded set.
$(BUILD)/gen/migrations.list: FORCE | $(BUILD)/obj
	@echo "$(MIGRATIONS)" | cmp -s - $@ 2>/dev/null || echo "$(MIGRATIONS)" > $@

$(BUILD)/gen/migrations_gen.c: $(MIGRATIONS) $(BUILD)/gen/migrations.list tools/embed_migrations.sh | $(BUILD)/obj
	@sh tools/embed_migrations.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

# Objects that print the version or commit are rebuilt when either changes.
$(BUILD)/gen/version.stamp: FORCE | $(BUILD)/obj
	@echo "$(VERSION) $(COMMIT)" | cmp -s - $@ 2>/dev/null || echo "$(VERSION) $(COMMIT)" > $@
$(BUILD)/obj/main.o $(BUILD)/obj/metrics.o $(BUILD)/obj/upgrade.o: $(BUILD)/gen/version.stamp
.PHONY: FORCE
FORCE:

$(BUILD)/obj/migrations_gen.o: $(BUILD)/gen/migrations_gen.c
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)/tests
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(RATESD_LIBS) -lcmocka

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@ $(BUILD)/gen

unit-bins: $(UNIT_BINS)

test-unit: $(UNIT_BINS)
	@sh tests/run_unit.sh $(UNIT_BINS)

# The one command that runs every test (installs what it needs first).
test:
	@sh scripts/test.sh

# The one command that runs everything locally.
up:
	@sh scripts/up.sh

deps:
	@sh scripts/deps.sh

bench:
	@sh scripts/bench.sh

clean:
	rm -rf build build-san build-tsan

# Each area adds its own targets in mk/<area>.mk.
-include $(sort $(wildcard mk/*.mk))

-include $(wildcard $(BUILD)/obj/*.d) $(wildcard $(BUILD)/tests/*.d)
