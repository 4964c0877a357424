/* deflate.h: gzip compression of a whole response body (zlib), for Accept-Encoding: gzip. */
#ifndef RATES_DEFLATE_H
#define RATES_DEFLATE_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>

/* Compresses in[0..len) into one gzip member. Returns the malloc'd output (caller frees) and
 * its length, or NULL (out of memory, or the output would not be smaller than the input). */
char *deflate_gzip(const char *in, size_t len, size_t *outlen);
/* True when an Accept-Encoding header value accepts gzip (a "gzip" or "*" token whose q is
 * not 0). NULL: false. */
bool deflate_accepts_gzip(const char *accept_encoding);

#endif
