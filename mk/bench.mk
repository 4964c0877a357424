# mk/bench.mk: the mixed benchmark (issue 13): reads during a burst of 4 x 1,000,000-row batches.
.PHONY: bench-mixed

# BENCH_ENV="RATES_BATCH_WORKERS=1,..." changes the server's options; see scripts/bench_mixed.py.
bench-mixed: all
	@sh scripts/bench-mixed.sh $(abspath $(BUILD)/ratesd)
