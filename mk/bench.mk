# mk/bench.mk: the mixed benchmark (issue 13): reads during a burst of 4 x 1,000,000-row batches;
# bench-cache (issue 16): the response cache against nginx and pgbench.
.PHONY: bench-mixed

# BENCH_ENV="RATES_BATCH_WORKERS=1,..." changes the server's options; see scripts/bench_mixed.py.
bench-mixed: all
	@sh scripts/bench-py.sh mixed $(abspath $(BUILD)/ratesd)

# Issue 16: the README query through ratesd with the response cache on and off, nginx serving
# the same bytes and pgbench of the original SQL, side by side; then reads during a batch a
# second (hit rate, p99). scripts/bench-cache.sh; about 2 minutes.
.PHONY: bench-cache
bench-cache: all
	@sh scripts/bench-cache.sh $(abspath $(BUILD)/ratesd)
