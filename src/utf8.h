/* utf8.h: UTF-8 validation. */
#ifndef RATES_UTF8_H
#define RATES_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the one valid UTF-8 sequence at the start of s (1-4), or 0 if invalid. */
size_t utf8_valid_prefix(const char *s, size_t len);
/* True when all len bytes of s are valid UTF-8 (overlongs and surrogates rejected). */
bool utf8_valid(const char *s, size_t len);

#endif
