/* test_avg.c: avg_exact() and avg_text() against values PostgreSQL 15 gave for
 * (s::numeric / n)::text and float8send((s::numeric / n)::float8), with no database: the
 * table below was copied from the server; tests/integration/rates/test_avg_exact.py compares
 * millions more with a live server (13 and 15). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "avg.h"

static uint64_t bits_of(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

/* sum, n, PostgreSQL's numeric text, its float8's bits, why the case is here. */
static const struct {
    int64_t sum, n;
    const char *text;
    uint64_t bits;
    const char *why;
} avg_cases[] = {
    { 3463, 3, "1154.3333333333333333", UINT64_C(0x4092095555555555),
      "README's CNGGZ-EETLL price, 16 decimals" },
    { 3464, 3, "1154.6666666666666667", UINT64_C(0x40920aaaaaaaaaab),
      "... and its neighbour that rounds up" },
    { 1, 3, "0.33333333333333333333", UINT64_C(0x3fd5555555555555), "1/3: scale 20" },
    { 2, 3, "0.66666666666666666667", UINT64_C(0x3fe5555555555555),
      "2/3: the 20th decimal rounds up" },
    { -1, 3, "-0.33333333333333333333", UINT64_C(0xbfd5555555555555),
      "negative: the magnitude rounds, the sign stays" },
    { -2, 3, "-0.66666666666666666667", UINT64_C(0xbfe5555555555555),
      "negative, rounding away from zero" },
    { 0, 1, "0.00000000000000000000", UINT64_C(0x0000000000000000), "zero is +0" },
    { 0, 3000, "0.00000000000000000000", UINT64_C(0x0000000000000000), "zero, scale 20" },
    { 0, INT64_C(999999999999), "0.0000000000000000000000000000", UINT64_C(0x0000000000000000),
      "zero, scale 28" },
    { 10, 4, "2.5000000000000000", UINT64_C(0x4004000000000000), "exact half, no rounding" },
    { 1, 1, "1.00000000000000000000", UINT64_C(0x3ff0000000000000), "f1 <= f2: scale 20" },
    { 7, 1, "7.0000000000000000", UINT64_C(0x401c000000000000), "f1 > f2: scale 16" },
    { 9999, 1, "9999.0000000000000000", UINT64_C(0x40c3878000000000), "the last sum of weight 0" },
    { 10000, 1, "10000.0000000000000000", UINT64_C(0x40c3880000000000),
      "weight 1: scale 16 still (f1 = 1 = f2)" },
    { 10001, 1, "10001.0000000000000000", UINT64_C(0x40c3888000000000), "weight 1" },
    { 9999, 3, "3333.0000000000000000", UINT64_C(0x40aa0a0000000000), "exact quotient" },
    { 10000, 3, "3333.3333333333333333", UINT64_C(0x40aa0aaaaaaaaaab), "weight 1 over weight 0" },
    { 9999, 9999, "1.00000000000000000000", UINT64_C(0x3ff0000000000000),
      "f1 == f2: the scale assumes the quotient < 1" },
    { 10000, 9999, "1.0001000100010001", UINT64_C(0x3ff00068de3aefe5),
      "scale 16 for a quotient just above 1" },
    { 9999, 10000, "0.99990000000000000000", UINT64_C(0x3fefff2e48e8a71e),
      "scale 20 for a quotient just below 1" },
    { INT64_C(9007199254740993), 1, "9007199254740993.0000", UINT64_C(0x4340000000000000),
      "2^53 + 1: the double rounds to even, down" },
    { INT64_C(9007199254740995), 1, "9007199254740995.0000", UINT64_C(0x4340000000000002),
      "2^53 + 3: to even, up" },
    { INT64_C(-9007199254740993), 1, "-9007199254740993.0000", UINT64_C(0xc340000000000000),
      "-(2^53 + 1)" },
    { INT64_MAX, 1, "9223372036854775807", UINT64_C(0x43e0000000000000), "INT64_MAX, scale 0" },
    { INT64_MIN, 1, "-9223372036854775808", UINT64_C(0xc3e0000000000000), "INT64_MIN" },
    { INT64_MAX, 3, "3074457345618258602", UINT64_C(0x43c5555555555555), "INT64_MAX / 3" },
    { INT64_MIN, 3, "-3074457345618258603", UINT64_C(0xc3c5555555555555),
      "INT64_MIN / 3 rounds away" },
    { INT64_MAX, INT64_C(999999999999), "9223372.036863999179", UINT64_C(0x41619799812dfd69),
      "the largest count" },
    { INT64_MIN, INT64_C(999999999999), "-9223372.036863999180", UINT64_C(0xc1619799812dfd69),
      "... negative" },
    { 1, INT64_C(999999999999), "0.0000000000010000000000010000", UINT64_C(0x3d719799812dfd69),
      "the smallest magnitude: scale 28" },
    { 1, 2147483647, "0.0000000004656612875245796924", UINT64_C(0x3e00000000200000), "2^31 - 1" },
    { 1, INT64_C(2147483648), "0.0000000004656612873077392578", UINT64_C(0x3e00000000000000),
      "2^31" },
    { INT64_C(90000000000000001), 2, "45000000000000001", UINT64_C(0x4363fbe85edc9000),
      "a tie at scale 0 rounds away" },
    { INT64_C(-90000000000000001), 2, "-45000000000000001", UINT64_C(0xc363fbe85edc9000),
      "... from zero" },
    { INT64_C(1000000000000001), 32, "31250000000000.0313", UINT64_C(0x42bc6bf526340008),
      "a tie at the 4th decimal" },
    { INT64_C(-1000000000000001), 32, "-31250000000000.0313", UINT64_C(0xc2bc6bf526340008),
      "... negative" },
    { 1, 33554432, "0.000000029802322387695313", UINT64_C(0x3e60000000000000),
      "1/2^25: a tie at the 24th decimal" },
    { 3, 33554432, "0.000000089406967163085938", UINT64_C(0x3e78000000000000),
      "3/2^25: a tie at the 24th decimal" },
    { -3, 33554432, "-0.000000089406967163085938", UINT64_C(0xbe78000000000000), "... negative" },
    { 2470454, 142, "17397.563380281690", UINT64_C(0x40d0fd640e6c2b44),
      "(double)2470454 / 142 is one ulp above" },
    { 1000, 3, "333.3333333333333333", UINT64_C(0x4074d55555555555), "scale 16" },
    { 3000000, 3000, "1000.0000000000000000", UINT64_C(0x408f400000000000),
      "the service's largest sum and count" },
    { 2999999, 3000, "999.9996666666666667", UINT64_C(0x408f3fff513cc1e1),
      "17 significant digits" },
    { 1, 3000, "0.00033333333333333333", UINT64_C(0x3f35d867c3ece2a5),
      "a small average, scale 20" },
};

static void test_avg_table(void **state)
{
    for (size_t i = 0; i < ARRAY_LEN(avg_cases); i++) {
        double avg = -1.0;
        char text[AVG_TEXT_MAX];
        assert_int_equal(avg_exact(avg_cases[i].sum, avg_cases[i].n, &avg), 0);
        size_t len = avg_text(avg_cases[i].sum, avg_cases[i].n, text, sizeof text);
        if (bits_of(avg) != avg_cases[i].bits || strcmp(text, avg_cases[i].text) != 0)
            fail_msg("%s: sum %lld n %lld: got %016llx %s, want %016llx %s", avg_cases[i].why,
                     (long long)avg_cases[i].sum, (long long)avg_cases[i].n,
                     (unsigned long long)bits_of(avg), text, (unsigned long long)avg_cases[i].bits,
                     avg_cases[i].text);
        assert_int_equal(len, strlen(avg_cases[i].text));
    }
}

/* The reason for this file: the plain double division rounds once from the exact quotient,
 * PostgreSQL rounds twice (to its decimal scale, then to binary). */
static void test_avg_differs_from_double_division(void **state)
{
    double avg;
    assert_int_equal(avg_exact(2470454, 142, &avg), 0);
    assert_true(avg == 17397.56338028169);
    assert_true((double)2470454 / 142 == 17397.563380281692);
    assert_true(avg != (double)2470454 / 142);
}

static void test_avg_bad_count(void **state)
{
    double avg = 42.0;
    char text[AVG_TEXT_MAX] = "x";
    const int64_t bad[] = { 0, -1, INT64_MIN, AVG_N_MAX + 1, INT64_MAX };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(avg_exact(1, bad[i], &avg), -1);
        assert_int_equal(avg_text(1, bad[i], text, sizeof text), 0);
    }
    assert_true(avg == 42.0);
    assert_string_equal(text, "x");
    assert_int_equal(avg_text(1, 3, text, AVG_TEXT_MAX - 1), 0); /* cap too short */
    assert_int_equal(avg_exact(1, AVG_N_MAX, &avg), 0);
}

/* xorshift64*, so the pairs are the same on every run. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* The binary step on its own, over the whole proven range: avg_exact() must be what strtod
 * (glibc's, correctly rounded, as in PostgreSQL's float8in) reads from avg_text(), and the
 * sign must only flip the result. 1,000,000 pairs: sums of every bit length, counts of every
 * magnitude up to AVG_N_MAX. */
static void test_avg_matches_strtod_of_text(void **state)
{
    uint64_t seed = 26;
    for (int i = 0; i < 1000000; i++) {
        uint64_t r = next_rand(&seed);
        int64_t sum = (int64_t)(next_rand(&seed) >> (r % 64));
        if (r & 64)
            sum = -sum;
        int64_t n = 1 + (int64_t)(next_rand(&seed) >> (24 + (r >> 8) % 40));
        if (n > AVG_N_MAX)
            n = AVG_N_MAX;
        double avg, neg;
        char text[AVG_TEXT_MAX];
        assert_int_equal(avg_exact(sum, n, &avg), 0);
        assert_true(avg_text(sum, n, text, sizeof text) > 0);
        if (bits_of(strtod(text, NULL)) != bits_of(avg))
            fail_msg("sum %lld n %lld: %s reads as %a, avg_exact gave %a", (long long)sum,
                     (long long)n, text, strtod(text, NULL), avg);
        if (sum != INT64_MIN) {
            assert_int_equal(avg_exact(-sum, n, &neg), 0);
            assert_true(sum == 0 ? neg == 0.0 : neg == -avg);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avg_table),
        cmocka_unit_test(test_avg_differs_from_double_division),
        cmocka_unit_test(test_avg_bad_count),
        cmocka_unit_test(test_avg_matches_strtod_of_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
