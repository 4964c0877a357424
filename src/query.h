/* query.h: URL query-string lookup with form decoding ('+' is a space, %XX a byte). */
#ifndef RATES_QUERY_H
#define RATES_QUERY_H

#include "common.h"

#include <stddef.h>

enum { QUERY_ABSENT = 0, QUERY_FOUND = 1, QUERY_TOO_LONG = -1 };

/* Finds the first parameter named key in query (the part after '?', not terminated by '#').
 * A parameter without '=' has the empty value. On QUERY_FOUND, out holds the decoded value
 * (NUL-terminated; it may itself contain NUL bytes) and *len its byte length. */
int query_get(const char *query, const char *key, char *out, size_t cap, size_t *len) WUR;
/* Decodes src[0..n) into out (cap bytes incl. terminator); returns length or -1 if too long. */
long query_decode(const char *src, size_t n, char *out, size_t cap);

#endif
