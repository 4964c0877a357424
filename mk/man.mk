# mk/man.mk: man pages ratesd(8), rates-load(1), rates-gen(1) from man/*.in (mdoc); ratesd's
# options come from its --help (tools/man.sh). `make man`; linted by tests/stages/contract.sh.
MAN_PAGES := $(BUILD)/man/ratesd.8 $(BUILD)/man/rates-load.1 $(BUILD)/man/rates-gen.1

.PHONY: man
man: $(MAN_PAGES)

$(BUILD)/man/%: man/%.in tools/man.sh $(BUILD)/ratesd VERSION
	@mkdir -p $(BUILD)/man
	@sh tools/man.sh $< $(BUILD)/ratesd $@
