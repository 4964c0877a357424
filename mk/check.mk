# mk/check.mk: the fast loop (scripts/check.sh): one normal build, the unit tests and the
# integration tests that need only PostgreSQL, in a few minutes. `make test` is the whole suite.
#   make check                      everything of the fast tier
#   make check ARGS="-k golden"     pytest arguments (one file, one test: docs/development.md)
.PHONY: check
check:
	@sh scripts/check.sh $(ARGS)
