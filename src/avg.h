/* avg.h: the average of an integer sum over a count, bit for bit as PostgreSQL gives it. */
#ifndef RATES_AVG_H
#define RATES_AVG_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* The largest count avg_exact() takes: every count below 10^12 (three base-10000 digits)
 * keeps every intermediate below 2^128 (avg.c). */
#define AVG_N_MAX INT64_C(999999999999)

/* Room for avg_text(): a sign, 21 digits, a point and 28 decimals, rounded up. */
#define AVG_TEXT_MAX 64

/* Sets *avg to exactly what PostgreSQL 13 and 15 give for
 *     (sum::numeric / n)::float8        (sum int8, n int4 or int8)
 * which is also avg(integer column)::float8 over n values summing to sum: the quotient rounded
 * half away from zero to the scale numeric division picks (select_div_scale: 16 significant
 * digits for these operands, 17 to 21 printed), read back as the nearest double (ties to
 * even, as float8in's strtod does). Integer arithmetic only; no allocation; thread-safe.
 * Proven (avg.c) and checked against both servers (tests/integration/rates/test_avg_exact.py)
 * for every int64 sum and 1 <= n <= AVG_N_MAX.
 * Returns 0, or -1 (and leaves *avg alone) when n is outside [1, AVG_N_MAX]. */
int avg_exact(int64_t sum, int64_t n, double *avg) WUR;

/* Writes the numeric quotient itself, as PostgreSQL prints (sum::numeric / n)::text
 * ("1154.3333333333333333", "-0.50000000000000000000"), into out (cap >= AVG_TEXT_MAX).
 * Returns its length, or 0 (out untouched) when n is outside [1, AVG_N_MAX] or cap is short. */
size_t avg_text(int64_t sum, int64_t n, char *out, size_t cap);

#endif
