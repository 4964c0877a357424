/* avg.c: PostgreSQL's (sum::numeric / n)::float8 with integer arithmetic (docs in avg.h).
 *
 * What PostgreSQL does (numeric.c, the same in 13 and 15 for these operands):
 *  1. int8 and int4 become numerics of display scale 0, in base-10000 digits: the weight w
 *     is the index of the leading digit group (|v| in [10000^w, 10000^(w+1))), the first
 *     digit f that group's value (1..9999); zero has w = 0, f = 0.
 *  2. select_div_scale(): qweight = w1 - w2, one less when f1 <= f2; the result scale is
 *     rscale = 16 - 4 * qweight (NUMERIC_MIN_SIG_DIGITS - qweight * DEC_DIGITS), at least the
 *     operands' display scales (0 here) and 0, at most 1000.
 *  3. div_var(..., round = true): the exact quotient rounded half away from zero to rscale
 *     decimals (a truncated long division one digit past rscale, then round_var; the
 *     short-divisor path of 14 and later, div_var_int, rounds the same exact quotient).
 *  4. numeric_float8(): numeric_out prints those rscale decimals, float8in reads them with
 *     strtod: the double nearest to that decimal, ties to even.
 * Here: R = round_half_away(|sum| * 10^k / n) with k = rscale, then the double nearest to
 * R / 10^k = (R / 5^k) * 2^-k, built from its bits, and the sign.
 *
 * Bounds (why 128 bits suffice for every int64 sum and n <= AVG_N_MAX, so w2 <= 2):
 *  - qweight <= w1 <= 4 (|sum| <= 2^63 < 10^20), so k = 16 - 4 qweight >= 0: never clamped;
 *    qweight >= w1 - w2 - 1, so k <= 20 - 4 w1 + 4 w2 <= 28.
 *  - |sum| * 10^k < 10^(4 w1 + 4) * 10^(20 - 4 w1 + 4 w2) = 10^(24 + 4 w2) <= 10^32 < 2^107.
 *  - for sum != 0, 10^16 <= R < 2 * 10^20 < 2^68: with f1 > f2 the quotient times 10^k lies
 *    in [f1 / (f2 + 1), (f1 + 1) / f2) * 10^16, with f1 <= f2 in [f1 / (f2 + 1),
 *    (f1 + 1) / f2) * 10^20, and 1 <= f <= 9999. So the printed quotient always has 17 to
 *    21 significant digits (never fewer than 16, as PostgreSQL promises).
 *  - 5^k <= 5^28 < 2^66; R * 2^shift in avg_to_double() stays below 2^(56 + 66).
 *  - for sum != 0, 10^-12 <= |R / 10^k| <= 2^63: far inside the normal doubles, so there is
 *    no subnormal, overflow or zero case to round. */
#include "avg.h"

#include <string.h>

/* GCC and Clang on 64-bit targets; multiplications and divisions of two words. */
__extension__ typedef unsigned __int128 u128;

_Static_assert(AVG_N_MAX < INT64_C(1000000000000), "n must keep three base-10000 digits");
_Static_assert(sizeof(double) == sizeof(uint64_t), "double must be IEEE 754 binary64");

/* 10^k and 5^k for 0 <= k <= 28 (10^19 and 5^27 are the last that fit 64 bits). */
/* clang-format off */
static const uint64_t avg_p10[20] = {
    1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u, 1000000000u,
    10000000000u, 100000000000u, 1000000000000u, 10000000000000u, 100000000000000u,
    1000000000000000u, 10000000000000000u, 100000000000000000u, 1000000000000000000u,
    10000000000000000000u
};
static const uint64_t avg_p5[28] = {
    1u, 5u, 25u, 125u, 625u, 3125u, 15625u, 78125u, 390625u, 1953125u, 9765625u,
    48828125u, 244140625u, 1220703125u, 6103515625u, 30517578125u, 152587890625u,
    762939453125u, 3814697265625u, 19073486328125u, 95367431640625u, 476837158203125u,
    2384185791015625u, 11920928955078125u, 59604644775390625u, 298023223876953125u,
    1490116119384765625u, 7450580596923828125u
};
/* clang-format on */

static u128 avg_pow10(int k)
{
    return k < 20 ? (u128)avg_p10[k] : (u128)avg_p10[19] * avg_p10[k - 19];
}

static u128 avg_pow5(int k)
{
    return k < 28 ? (u128)avg_p5[k] : (u128)avg_p5[27] * avg_p5[k - 27];
}

/* Base-10000 weight of v (v > 0): the index of its leading digit group; *first gets that
 * group's value. v == 0 gives weight 0 and first 0, as select_div_scale's defaults. */
static int avg_weight(uint64_t v, uint64_t *first)
{
    int w = 0;
    while (v >= 10000) {
        v /= 10000;
        w++;
    }
    *first = v;
    return w;
}

/* select_div_scale() for two numerics of display scale 0 with these magnitudes. */
static int avg_scale(uint64_t num, uint64_t den)
{
    uint64_t f1, f2;
    int qweight = avg_weight(num, &f1) - avg_weight(den, &f2);
    if (f1 <= f2)
        qweight--;
    int rscale = 16 - qweight * 4;
    if (rscale < 0)
        rscale = 0;
    if (rscale > 1000)
        rscale = 1000;
    return rscale;
}

/* |sum| * 10^k / n rounded half away from zero, and k. n in [1, AVG_N_MAX]. */
static u128 avg_scaled(int64_t sum, int64_t n, int *k)
{
    uint64_t mag = sum < 0 ? (uint64_t)0 - (uint64_t)sum : (uint64_t)sum;
    *k = avg_scale(mag, (uint64_t)n);
    u128 num = (u128)mag * avg_pow10(*k);
    u128 q = num / (uint64_t)n;
    uint64_t rem = (uint64_t)(num - q * (uint64_t)n);
    if (rem >= (uint64_t)n - rem) /* 2 rem >= n: a half or more goes away from zero */
        q++;
    return q;
}

static int avg_bitlen(u128 v)
{
    uint64_t hi = (uint64_t)(v >> 64), lo = (uint64_t)v;
    return hi ? 128 - __builtin_clzll(hi) : lo ? 64 - __builtin_clzll(lo) : 0;
}

/* The bits of the double nearest to num / den * 2^e2, ties to even. num, den > 0; the
 * caller keeps num * 2^(56 + bitlen(den)) and den * 2^bitlen(num) below 2^128 and the value
 * inside the normal range (see the bounds on top). */
static uint64_t avg_to_double(u128 num, u128 den, int e2)
{
    /* Scale so that q = floor(num / den * 2^shift) has 55 or 56 bits. */
    int shift = 55 - avg_bitlen(num) + avg_bitlen(den);
    if (shift >= 0)
        num <<= shift;
    else
        den <<= -shift;
    u128 q128 = num / den;
    int sticky = num - q128 * den != 0;
    uint64_t q = (uint64_t)q128;
    e2 -= shift;
    /* Keep 54 bits: 53 for the significand and one rounding bit; the rest is sticky. */
    while (q >= (UINT64_C(1) << 54)) {
        sticky |= (int)(q & 1);
        q >>= 1;
        e2++;
    }
    uint64_t m = q >> 1;
    e2++;
    if ((q & 1) && (sticky || (m & 1)))
        m++;
    if (m == (UINT64_C(1) << 53)) {
        m >>= 1;
        e2++;
    }
    /* value = m * 2^e2 with 2^52 <= m < 2^53: biased exponent e2 + 52 + 1023. */
    return ((uint64_t)(e2 + 52 + 1023) << 52) | (m & ((UINT64_C(1) << 52) - 1));
}

int avg_exact(int64_t sum, int64_t n, double *avg)
{
    if (n < 1 || n > AVG_N_MAX)
        return -1;
    if (sum == 0) {
        *avg = 0.0; /* numeric zero is unsigned: +0 */
        return 0;
    }
    int k;
    u128 r = avg_scaled(sum, n, &k);
    uint64_t bits = avg_to_double(r, avg_pow5(k), -k);
    if (sum < 0)
        bits |= UINT64_C(1) << 63;
    memcpy(avg, &bits, sizeof bits);
    return 0;
}

size_t avg_text(int64_t sum, int64_t n, char *out, size_t cap)
{
    if (n < 1 || n > AVG_N_MAX || cap < AVG_TEXT_MAX)
        return 0;
    int k;
    u128 r = avg_scaled(sum, n, &k);
    /* Digits backwards into tmp: at least k + 1 of them, so there is a "0." when r < 10^k. */
    char tmp[AVG_TEXT_MAX];
    int nd = 0;
    while (r > 0 || nd <= k) {
        tmp[nd++] = (char)('0' + (int)(r % 10));
        r /= 10;
    }
    size_t len = 0;
    if (sum < 0)
        out[len++] = '-';
    while (nd > 0) {
        if (nd == k)
            out[len++] = '.';
        out[len++] = tmp[--nd];
    }
    out[len] = '\0';
    return len;
}
