# ingest.mk: batch ingestion targets (issue 3).
.PHONY: bench-ingest
bench-ingest: $(BUILD)/ratesd
	@sh scripts/bench-py.sh ingest $(BUILD)/ratesd

# The daily aggregate at scale (issue 15): rates-gen prices (BENCH_AGG_PRICES, default
# 10,000,000), migrated; sizes and build times of prices, the route index and rates_daily,
# then aggregates check and rebuild, timed. About 15 minutes at 10 M on 2 cores.
.PHONY: bench-aggregates
bench-aggregates: $(BUILD)/ratesd $(BUILD)/rates-gen
	@RATES_BIN=$(abspath $(BUILD)/ratesd) /usr/bin/python3 -m scripts.bench_aggregates
