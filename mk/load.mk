# mk/load.mk: rates-load, the operators' loader (src/load_*.c, on libcurl, yajl and zlib); built by `make`.
# src/load_main.c wires src/load_options.c (the command line), src/load_transfer.c (the HTTP side)
# and src/load_outcome.c (the retry and exit-code policy); none of them is in ratesd.
LOAD_OBJS := $(BUILD)/obj/load_main.o $(BUILD)/obj/load_options.o $(BUILD)/obj/load_transfer.o \
             $(BUILD)/obj/load_outcome.o $(BUILD)/obj/dynbuf.o $(BUILD)/obj/utf8.o $(BUILD)/obj/common.o

LOAD_LIBS := $(shell pkg-config --libs libcurl libcrypto yajl zlib 2>/dev/null) -lm

all: $(BUILD)/rates-load

$(BUILD)/rates-load: $(LOAD_OBJS)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $(LOAD_OBJS) $(LOAD_LIBS)

# The user agent names the version.
$(BUILD)/obj/load_transfer.o: $(BUILD)/gen/version.stamp

# The loader's unit tests link only the pure parts they test (not ratesd's objects, not libcurl).
$(BUILD)/tests/test_load_outcome: tests/unit/test_load_outcome.c $(BUILD)/obj/load_outcome.o | $(BUILD)/tests
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ -lcmocka

$(BUILD)/tests/test_load_options: tests/unit/test_load_options.c $(BUILD)/obj/load_options.o \
                                  $(BUILD)/obj/common.o | $(BUILD)/tests
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ -lcmocka
