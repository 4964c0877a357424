/* test_date.c: date parsing (Python strptime rules) and civil arithmetic, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "date.h"

struct date_case {
    const char *in;
    int ok;
    const char *norm;
};

static const struct date_case loose_cases[] = {
    { "2021-01-01", 1, "2021-01-01" },
    { "2021-1-1", 1, "2021-01-01" },
    { "2021-01-1", 1, "2021-01-01" },
    { "2021-1-03", 1, "2021-01-03" },
    { "2020-02-29", 1, "2020-02-29" },
    { "2000-02-29", 1, "2000-02-29" },
    { "0001-01-01", 1, "0001-01-01" },
    { "9999-12-31", 1, "9999-12-31" },
    { "2021-12-31", 1, "2021-12-31" },
    { "2021-02-29", 0, NULL },
    { "1900-02-29", 0, NULL },
    { "2021-13-01", 0, NULL },
    { "2021-00-10", 0, NULL },
    { "2021-01-00", 0, NULL },
    { "2021-01-32", 0, NULL },
    { "2021-04-31", 0, NULL },
    { "0000-01-01", 0, NULL },
    { "20210101", 0, NULL },
    { "21-01-01", 0, NULL },
    { "01-01-2021", 0, NULL },
    { "2021-01-01T00:00:00", 0, NULL },
    { "2021-01-01 ", 0, NULL },
    { " 2021-01-01", 0, NULL },
    { "2021-01- 5", 0, NULL },
    { "2021- 1-05", 0, NULL },
    { "2021/01/01", 0, NULL },
    { "", 0, NULL },
    { "garbage", 0, NULL },
    { "2021-001-01", 0, NULL },
    { "2021-01-001", 0, NULL },
    { "+2021-01-01", 0, NULL },
    { "20211-01-01", 0, NULL },
    { "2021-01-", 0, NULL },
    { "2021--01", 0, NULL },
};

static void test_loose(void **state)
{
    for (size_t i = 0; i < sizeof loose_cases / sizeof loose_cases[0]; i++) {
        const struct date_case *c = &loose_cases[i];
        int32_t d = 0;
        int rc = date_parse_loose(c->in, strlen(c->in), &d);
        if (c->ok) {
            assert_int_equal(rc, 0);
            char out[11];
            date_format(d, out);
            assert_string_equal(out, c->norm);
        } else {
            if (rc == 0)
                fail_msg("accepted invalid date '%s'", c->in);
        }
    }
}

static void test_nul_inside(void **state)
{
    int32_t d;
    assert_int_not_equal(date_parse_loose("2021-01-01\0x", 12, &d), 0);
    assert_int_not_equal(date_parse_loose("2021-01\0-01", 10, &d), 0);
}

static void test_strict(void **state)
{
    int32_t d;
    assert_int_equal(date_parse_strict("2021-01-01", 10, &d), 0);
    assert_int_not_equal(date_parse_strict("2021-1-01", 9, &d), 0);
    assert_int_not_equal(date_parse_strict("2021-02-30", 10, &d), 0);
    assert_int_not_equal(date_parse_strict("2021-0a-01", 10, &d), 0);
    assert_int_not_equal(date_parse_strict("0000-01-01", 10, &d), 0);
}

static void test_civil_roundtrip(void **state)
{
    assert_int_equal(date_from_civil(1970, 1, 1), 0);
    assert_int_equal(date_from_civil(2000, 3, 1), 11017);
    assert_int_equal(date_from_civil(1969, 12, 31), -1);
    int32_t lo = date_from_civil(1, 1, 1), hi = date_from_civil(9999, 12, 31);
    int py = 1, pm = 1, pd = 0;
    for (int32_t x = lo; x <= hi; x++) {
        int y, m, d;
        date_to_civil(x, &y, &m, &d);
        assert_int_equal(date_from_civil(y, m, d), x);
        /* consecutive days */
        if (d != pd + 1) {
            assert_int_equal(d, 1);
            assert_true(m == pm + 1 || (m == 1 && y == py + 1));
        }
        py = y;
        pm = m;
        pd = d;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loose),
        cmocka_unit_test(test_nul_inside),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_civil_roundtrip),
    };
    return cmocka_run_group_tests_name("date", tests, NULL, NULL);
}
