/* numfmt.h: number formatting for JSON output. */
#ifndef RATES_NUMFMT_H
#define RATES_NUMFMT_H

#include <stddef.h>

/* Writes the shortest decimal that reads back as exactly x ("1154.3333333333333", "1155"),
 * or "null" for NaN and infinities. cap >= 32. Returns the length written. */
size_t numfmt_double(double x, char *out, size_t cap);

#endif
