/* sample.h: whether the database holds make up's synthetic sample instead of the dump. */
#ifndef RATES_SAMPLE_H
#define RATES_SAMPLE_H

#include <libpq-fe.h>

/* Reads the mark that scripts/up.sh puts on public.prices when it loads the rates-gen sample
 * (a table comment); call from the health monitor on its connection. Never fails: on an error
 * the previous answer stays. */
void sample_check(PGconn *pg);
/* "sample" when the mark was seen, else "loaded"; for /readyz's details. */
const char *sample_kind(void);

#endif
