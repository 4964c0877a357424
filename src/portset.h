/* portset.h: an immutable set of port codes for checking a batch's rows in memory. */
#ifndef RATES_PORTSET_H
#define RATES_PORTSET_H

#include "common.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#define PORTSET_MAX_CODES 100000

struct portset;

/* Builds the set from column 0 of res (SELECT code FROM ports). Returns NULL when out of
 * memory or when there are more than PORTSET_MAX_CODES codes. The caller owns the set. */
struct portset *portset_from_result(const PGresult *res);
bool portset_has(const struct portset *s, const char *code, size_t len);
void portset_free(struct portset *s);

#endif
