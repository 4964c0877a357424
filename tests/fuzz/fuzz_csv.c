/* fuzz_csv.c: libFuzzer target for the csv body parser (see fuzz_driver.h). */
#define FUZZ_FORMAT ROWPARSE_CSV
#include "fuzz_driver.h"
