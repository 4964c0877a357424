# mk/env.mk: environments on demand (scripts/env.sh, docs/environments.md) and the synthetic
# data generator $(BUILD)/rates-gen.
#   make env-up NAME=x [TARGET=local|compose] [DATA=dump|sample|synthetic] [TTL=2h]
#   make env-ls | make env-down NAME=x | make env-down-all | make env-purge | make bench-scale
GEN_OBJS := $(BUILD)/obj/gen_main.o $(BUILD)/obj/date.o

all: $(BUILD)/rates-gen

$(BUILD)/rates-gen: $(GEN_OBJS)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $(GEN_OBJS) -lm

ENV_SH = RATES_BIN=$(abspath $(BUILD)/ratesd) RATES_GEN=$(abspath $(BUILD)/rates-gen) sh scripts/env.sh

.PHONY: env-up env-ls env-down env-down-all env-purge bench-scale
env-up: $(BUILD)/ratesd $(BUILD)/rates-gen
	@$(ENV_SH) up "$(NAME)" --target "$(or $(TARGET),local)" --data "$(or $(DATA),dump)" --ttl "$(TTL)"

env-ls:
	@$(ENV_SH) ls

env-down:
	@$(ENV_SH) down "$(NAME)"

env-down-all:
	@$(ENV_SH) down-all

# Every copy, the shared cluster and its templates.
env-purge:
	@$(ENV_SH) purge

bench-scale: $(BUILD)/ratesd $(BUILD)/rates-gen
	@$(ENV_SH) bench-scale
