# mk/parsers.mk: the body parsers' own objects, and their unit tests linked against only
# those (`make test-parsers`), so the parsers can be tested without the rest of the tree.
ROWPARSE_SRCS := $(wildcard src/rowparse*.c) src/utf8.c src/date.c src/common.c
ROWPARSE_OBJS := $(ROWPARSE_SRCS:src/%.c=$(BUILD)/obj/%.o)
ROWPARSE_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/ptests/%,$(wildcard tests/unit/test_rowparse_*.c))

.PHONY: test-parsers
test-parsers: $(ROWPARSE_TESTS)
	@sh tests/run_unit.sh $(ROWPARSE_TESTS)

$(BUILD)/ptests/%: tests/unit/%.c tests/unit/rowparse_check.h $(ROWPARSE_OBJS)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(ROWPARSE_OBJS) $(LDLIBS) -lcmocka

# Parser throughput on generated 1,000,000-row bodies, 64 KB chunks (BENCH_ROWS to change).
BENCH_ROWS ?= 1000000
.PHONY: bench-parse
bench-parse: $(BUILD)/bench_parse
	@$(BUILD)/bench_parse $(BENCH_ROWS)

$(BUILD)/bench_parse: tests/bench/bench_parse.c $(ROWPARSE_OBJS)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(ROWPARSE_OBJS) $(LDLIBS)
