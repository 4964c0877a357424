# mk/api.mk: the OpenAPI document and the reference page compiled into ratesd (src/openapi.c),
# and `make api-lint`. Redoc's bundle comes from the pinned npm packages in tools/api/.
REDOC_JS := tools/api/node_modules/redoc/bundles/redoc.standalone.js

$(BUILD)/gen/api_gen.c: api/openapi.json api/docs.html tools/embed_api.sh tools/api/package-lock.json | $(BUILD)/obj
	@sh tools/api/setup.sh || echo "  warning: npm tools not installed: /docs will say so"
	@sh tools/embed_api.sh api/openapi.json api/docs.html $(REDOC_JS) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/api_gen.o: $(BUILD)/gen/api_gen.c src/openapi.h
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

.PHONY: api-lint
api-lint:
	@sh tools/api/lint.sh

# The tools print --version (version and commit) too.
$(BUILD)/obj/gen_main.o $(BUILD)/obj/load_main.o: $(BUILD)/gen/version.stamp
