# mk/avg.mk: $(BUILD)/tests/avg_check, the driver of src/avg.c that
# tests/integration/rates/test_avg_exact.py compares with PostgreSQL; `make unit-bins` builds it
# (so both test.sh builds have it), `make bench-avg` prints avg_exact()'s ns per call.
AVG_CHECK := $(BUILD)/tests/avg_check

.PHONY: bench-avg
unit-bins: $(AVG_CHECK)

$(AVG_CHECK): tests/avg_check.c $(BUILD)/obj/avg.o | $(BUILD)/tests
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/obj/avg.o

bench-avg: $(AVG_CHECK)
	@$(AVG_CHECK) --bench
