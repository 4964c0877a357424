/* fuzz_ndjson.c: libFuzzer target for the ndjson body parser (see fuzz_driver.h). */
#define FUZZ_FORMAT ROWPARSE_NDJSON
#include "fuzz_driver.h"
