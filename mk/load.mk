# mk/load.mk: rates-load, the operators' loader (src/load_main.c, on libcurl); built by `make`.
LOAD_OBJS := $(BUILD)/obj/load_main.o $(BUILD)/obj/dynbuf.o $(BUILD)/obj/utf8.o $(BUILD)/obj/common.o

all: $(BUILD)/rates-load

$(BUILD)/rates-load: $(LOAD_OBJS)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $(LOAD_OBJS) $(LDLIBS)
