# mk/fuzz.mk: libFuzzer targets for the body parsers (`make fuzz`, FUZZ_SECONDS each).
# Built with clang, not $(CC): the parser sources are compiled straight into each target.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_NAMES   := csv ndjson json
FUZZ_SRCS    := $(wildcard src/rowparse*.c) src/utf8.c src/date.c src/common.c
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -Wno-unused-function \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                $(shell pkg-config --cflags yajl 2>/dev/null) -Isrc
FUZZ_LIBS    := $(shell pkg-config --libs yajl 2>/dev/null)
FUZZ_BINS    := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_driver.h $(FUZZ_SRCS) $(wildcard src/rowparse*.h)
	@mkdir -p $(@D)
	@echo "  FUZZCC  $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS) $(FUZZ_LIBS)

# Runs every target for FUZZ_SECONDS from the seed corpus; new inputs go to $(BUILD)/fuzz/work.
fuzz: $(FUZZ_BINS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_DIR=$(BUILD)/fuzz sh tests/fuzz/run.sh $(FUZZ_NAMES)
