/* fuzz_json.c: libFuzzer target for the json body parser (see fuzz_driver.h). */
#define FUZZ_FORMAT ROWPARSE_JSON
#include "fuzz_driver.h"
