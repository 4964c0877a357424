# ingest.mk: batch ingestion targets (issue 3).
.PHONY: bench-ingest
bench-ingest: $(BUILD)/ratesd
	@sh scripts/bench-ingest.sh $(BUILD)/ratesd
