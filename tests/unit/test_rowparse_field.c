/* test_rowparse_field.c: the shared field checks (codes, day, price) and message rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rowparse_int.h"

struct price_case {
    const char *in;
    int32_t want;    /* 0: invalid */
    const char *msg; /* substring of the message when invalid */
};

static const struct price_case price_cases[] = {
    { "1", 1, NULL },
    { "7", 7, NULL },
    { "1200", 1200, NULL },
    { "2147483647", 2147483647, NULL },
    { "2147483648", 0, "out of range" },
    { "4294967296", 0, "out of range" },
    { "18446744073709551617", 0, "out of range" },
    { "99999999999999999999999999999999999999", 0, "out of range" },
    { "0", 0, "out of range" },
    { "00", 0, "leading zeros" },
    { "01", 0, "leading zeros" },
    { "-1", 0, "has a sign" },
    { "+1", 0, "has a sign" },
    { "-0", 0, "has a sign" },
    { "1.5", 0, "has a fraction" },
    { "1.", 0, "has a fraction" },
    { ".5", 0, "not an integer" },
    { "1e3", 0, "has an exponent" },
    { "1E3", 0, "has an exponent" },
    { "e3", 0, "not an integer" },
    { "1 ", 0, "not an integer" },
    { " 1", 0, "not an integer" },
    { "0x1F", 0, "not an integer" },
    { "1_000", 0, "not an integer" },
    { "１", 0, "not an integer" }, /* a full-width digit */
    { "", 0, "price is empty" },
};

static void test_price(void **state)
{
    for (size_t i = 0; i < ARRAY_LEN(price_cases); i++) {
        const struct price_case *c = &price_cases[i];
        char msg[160] = "";
        int32_t v = 0;
        int rc = rowparse_check_price(c->in, strlen(c->in), &v, msg, sizeof msg);
        if (c->want) {
            if (rc != 0 || v != c->want)
                fail_msg("price '%s': rc %d value %d, want %d", c->in, rc, (int)v, (int)c->want);
        } else if (rc == 0 || !strstr(msg, c->msg)) {
            fail_msg("price '%s': rc %d message '%s', want '%s'", c->in, rc, msg, c->msg);
        }
    }
}

static void test_code(void **state)
{
    char msg[160];
    char long_code[ROWPARSE_MAX_CODE + 2];
    memset(long_code, 'A', sizeof long_code);
    assert_int_equal(rowparse_check_code("CNSGH", 5, "orig_code", msg, sizeof msg), 0);
    assert_int_equal(rowparse_check_code(long_code, ROWPARSE_MAX_CODE, "x", msg, sizeof msg), 0);
    assert_int_equal(rowparse_check_code(long_code, ROWPARSE_MAX_CODE + 1, "x", msg, sizeof msg),
                     -1);
    assert_non_null(strstr(msg, "longer than 64 bytes"));
    assert_int_equal(rowparse_check_code("", 0, "dest_code", msg, sizeof msg), -1);
    assert_string_equal(msg, "dest_code is empty");
    assert_int_equal(rowparse_check_code("A\0B", 3, "x", msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "NUL"));
    static const char *const bad_utf8[] = {
        "\x80",         "\xC0\x80",         "\xE0\x80\x80",
        "\xED\xB0\x80", "\xF4\x90\x80\x80", "\xF8\x88\x80\x80\x80",
        "\xC3",         "A\xE2\x82"
    };
    for (size_t i = 0; i < ARRAY_LEN(bad_utf8); i++) {
        assert_int_equal(
            rowparse_check_code(bad_utf8[i], strlen(bad_utf8[i]), "x", msg, sizeof msg), -1);
        assert_non_null(strstr(msg, "not valid UTF-8"));
    }
    assert_int_equal(rowparse_check_code("\xF0\x9F\x9A\xA2", 4, "x", msg, sizeof msg), 0);
}

static void test_day(void **state)
{
    char msg[160];
    int32_t d;
    assert_int_equal(rowparse_check_day("2016-01-01", 10, &d, msg, sizeof msg), 0);
    assert_int_equal(d, 16801);
    assert_int_equal(rowparse_check_day("2016-02-30", 10, &d, msg, sizeof msg), -1);
    assert_string_equal(msg, "day \"2016-02-30\" does not exist");
    assert_int_equal(rowparse_check_day("2016-1-01", 9, &d, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "not a date in the form YYYY-MM-DD"));
    assert_int_equal(rowparse_check_day("0000-01-01", 10, &d, msg, sizeof msg), -1);
    assert_int_equal(rowparse_check_day("2016-01-01\0", 11, &d, msg, sizeof msg), -1);
    assert_int_equal(rowparse_check_day("", 0, &d, msg, sizeof msg), -1);
    assert_string_equal(msg, "day is empty");
}

/* Values quoted in messages are printable ASCII and short, whatever the input. */
static void test_show(void **state)
{
    char out[40];
    rowparse_show(out, sizeof out, "abc", 3);
    assert_string_equal(out, "\"abc\"");
    rowparse_show(out, sizeof out, "a\"\\\n\xC3\xBC", 6);
    assert_string_equal(out, "\"a?????\"");
    rowparse_show(out, sizeof out, "0123456789012345678901234567890123456789", 40);
    assert_string_equal(out, "\"012345678901234567890123...\"");
    rowparse_show(out, 4, "abc", 3);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_price),
        cmocka_unit_test(test_code),
        cmocka_unit_test(test_day),
        cmocka_unit_test(test_show),
    };
    return cmocka_run_group_tests_name("rowparse_field", tests, NULL, NULL);
}
