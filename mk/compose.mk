# mk/compose.mk: the compose stack in one command, beside `make up` (scripts/compose-up.sh;
# deploy/README.md, "Compose (one host)"). Docker and compose are installed when missing.
#   make compose-up [RATES_DUMP=/path/to/rates.sql] [RATES_PORT=3000]   build, start detached, wait for /readyz
#   make compose-down [VOLUMES=1]                                       stop (VOLUMES=1 also deletes the data)
.PHONY: compose-up compose-down
compose-up:
	@RATES_VERSION=$(VERSION) RATES_COMMIT=$(COMMIT) sh scripts/compose-up.sh up

compose-down:
	@RATES_COMPOSE_VOLUMES=$(VOLUMES) sh scripts/compose-up.sh down
