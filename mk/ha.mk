# mk/ha.mk: high availability (issue 14): Patroni + etcd + HAProxy + pgBackRest on loopback,
# 2 ratesd behind HAProxy, and the drills. docs/high-availability.md explains each one.
# The code is tests/support/ha/, run as modules from the repository root (make's directory).
.PHONY: ha-up ha-down ha-status ha-deps ha-crash-drill ha-switchover-drill ha-etcd-drill \
	ha-restore-drill ha-partition-drill ha-freeze-drill ha-failover-drill ha-lb-drill \
	ha-alerts-drill ha-drills
HA_PY = /usr/bin/python3
HA_RUN = RATES_BIN=$(abspath $(BUILD)/ratesd) $(HA_PY)

# Debian's patroni, etcd-server/etcd-client, haproxy, pgbackrest (scripts/packages-test.txt).
ha-deps:
	@sh scripts/deps.sh test

ha-up: ha-deps $(BUILD)/ratesd $(BUILD)/rates-gen
	@$(HA_RUN) -m tests.support.ha.stack up

ha-down:
	@$(HA_PY) -m tests.support.ha.stack down

ha-status:
	@$(HA_PY) -m tests.support.ha.stack status

# Each drill starts its own stack in a temp dir (or reuses the one of `make ha-up` with
# HA_DRILL_FLAGS=--reuse), prints a JSON report, and tears down what it started.
HA_DRILL = $(HA_RUN) -m tests.support.ha.drills $(HA_DRILL_FLAGS)
ha-crash-drill: ha-deps $(BUILD)/ratesd $(BUILD)/rates-gen
	@$(HA_DRILL) crash
ha-switchover-drill: ha-deps $(BUILD)/ratesd $(BUILD)/rates-gen $(BUILD)/rates-load
	@$(HA_DRILL) switchover
ha-etcd-drill: ha-deps $(BUILD)/ratesd $(BUILD)/rates-gen
	@$(HA_DRILL) etcd
ha-restore-drill: ha-deps $(BUILD)/ratesd $(BUILD)/rates-gen
	@$(HA_DRILL) restore
# Its own small stack, each node in a network namespace (tests/support/ha/partition.py, root).
ha-partition-drill: ha-deps $(BUILD)/ratesd $(BUILD)/rates-gen
	@$(HA_RUN) -m tests.support.ha.partition
ha-freeze-drill: ha-deps $(BUILD)/ratesd $(BUILD)/rates-gen
	@$(HA_DRILL) freeze
# The old name: the hard-crash drill is the failover drill now.
ha-failover-drill: ha-crash-drill

ha-lb-drill: ha-deps $(BUILD)/ratesd
	@RATES_BIN=$(BUILD)/ratesd sh scripts/ha/lb-drill.sh

ha-alerts-drill: ha-deps $(BUILD)/ratesd
	@RATES_BIN=$(BUILD)/ratesd sh scripts/ha/alerts-drill.sh

ha-drills: ha-deps $(BUILD)/ratesd $(BUILD)/rates-gen $(BUILD)/rates-load
	@$(HA_DRILL) all
