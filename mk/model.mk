# mk/model.mk: the read model's figures (tests/bench/bench_model.c, docs/readmodel.md): keys,
# bytes per key, load and apply times and the cost of one read, on rates-gen's prices.
#   make bench-model                   10,000,000 prices (BENCH_MODEL_PRICES to change)
#   make bench-model-load              the same size loaded by ratesd from PostgreSQL, then a
#                                      SIGUSR2 upgrade's peak RSS (BENCH_MODEL_LOAD_PRICES)
#   make bench-staleness               a second instance's staleness after 50,000-row batches,
#                                      sporadic and back-to-back (BENCH_STALENESS_ROWS,
#                                      BENCH_ROUNDS=20, BENCH_ENV; needs the dump)
BENCH_MODEL_PRICES ?= 10000000
MODEL_BENCH_OBJS := $(BUILD)/obj/model.o $(BUILD)/obj/model_nodes.o $(BUILD)/obj/date.o

.PHONY: bench-model
bench-model: $(BUILD)/bench_model $(BUILD)/rates-gen
	@$(BUILD)/rates-gen --prices $(BENCH_MODEL_PRICES) | /usr/bin/time -f "peak RSS %M kB" $(BUILD)/bench_model

$(BUILD)/bench_model: tests/bench/bench_model.c $(MODEL_BENCH_OBJS)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(MODEL_BENCH_OBJS) -lpthread

.PHONY: bench-model-load
bench-model-load: all
	@sh scripts/bench-py.sh model_load $(abspath $(BUILD)/ratesd)

.PHONY: bench-staleness
bench-staleness: all
	@sh scripts/bench-py.sh staleness $(abspath $(BUILD)/ratesd)
