# mk/ops.mk: operations targets (issue 4): unit file checks and the ops tests alone.
.PHONY: verify-units test-ops

# systemd-analyze verify on deploy/systemd, plus the docs checks (JUnit XML in build/test-results).
verify-units: all
	@RATES_BIN=$(abspath $(BUILD)/ratesd) RATES_TEST_RESULTS=$(BUILD)/test-results sh tests/stages/ops-units.sh

# The operations integration tests only (tests/integration/ops, drills included), against
# $(BUILD)/ratesd.
test-ops: all
	@RATES_BIN=$(abspath $(BUILD)/ratesd) /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		tests/integration/ops
