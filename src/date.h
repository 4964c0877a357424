/* date.h: calendar dates as days since 1970-01-01 (proleptic Gregorian), years 1-9999. */
#ifndef RATES_DATE_H
#define RATES_DATE_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>

/* Parses like Python's strptime(s, "%Y-%m-%d") over ASCII: a 4-digit year 0001-9999,
 * month and day of 1 or 2 digits, a day that exists. Space-padded days are rejected.
 * len is the byte length (s need not be terminated). Returns 0 and sets *days, or -1. */
int date_parse_loose(const char *s, size_t len, int32_t *days) WUR;
/* Strict YYYY-MM-DD (exactly 10 bytes, zero-padded) that exists; for ingestion. */
int date_parse_strict(const char *s, size_t len, int32_t *days) WUR;
/* Writes "YYYY-MM-DD" and a NUL into out (at least 11 bytes). */
void date_format(int32_t days, char out[11]);
int32_t date_from_civil(int y, int m, int d);
void date_to_civil(int32_t days, int *y, int *m, int *d);
int date_days_in_month(int y, int m);

#endif
