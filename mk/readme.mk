# mk/readme.mk: regenerate the README's configuration table from the option table.
.PHONY: readme
readme: $(BUILD)/ratesd
	@RATES_BIN=$(BUILD)/ratesd sh scripts/readme-config.sh
