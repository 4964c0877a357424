# mk/load.mk: rates-load, the operators' loader (src/load_main.c, on libcurl, yajl and zlib); built by `make`.
LOAD_OBJS := $(BUILD)/obj/load_main.o $(BUILD)/obj/dynbuf.o $(BUILD)/obj/utf8.o $(BUILD)/obj/common.o

LOAD_LIBS := $(shell pkg-config --libs libcurl libcrypto yajl zlib 2>/dev/null) -lm

all: $(BUILD)/rates-load

$(BUILD)/rates-load: $(LOAD_OBJS)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $(LOAD_OBJS) $(LOAD_LIBS)
