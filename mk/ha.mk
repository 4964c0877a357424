# mk/ha.mk: high availability (issue 7): a replicated PostgreSQL and the drills.
# docs/high-availability.md explains each one; all run on loopback and stop by themselves.
.PHONY: ha-up ha-down ha-status ha-failover-drill ha-lb-drill ha-restore-drill ha-alerts-drill ha-drills
HA_FLAGS ?= --sync

ha-up: $(BUILD)/ratesd
	@RATES_BIN=$(BUILD)/ratesd sh scripts/ha/cluster.sh up $(HA_FLAGS)

ha-down:
	@sh scripts/ha/cluster.sh down --purge

ha-status:
	@sh scripts/ha/cluster.sh status

ha-failover-drill: $(BUILD)/ratesd
	@RATES_BIN=$(BUILD)/ratesd sh scripts/ha/failover-drill.sh

ha-lb-drill: $(BUILD)/ratesd
	@RATES_BIN=$(BUILD)/ratesd sh scripts/ha/lb-drill.sh

ha-restore-drill: $(BUILD)/ratesd
	@RATES_BIN=$(BUILD)/ratesd sh scripts/ha/restore-drill.sh

ha-alerts-drill: $(BUILD)/ratesd
	@RATES_BIN=$(BUILD)/ratesd sh scripts/ha/alerts-drill.sh

ha-drills: ha-failover-drill ha-lb-drill ha-restore-drill
