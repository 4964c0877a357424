/* test_format.c: number formatting, JSON strings, UTF-8 validation and the /rates body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "date.h"
#include "dynbuf.h"
#include "numfmt.h"
#include "rates.h"
#include "utf8.h"

static void test_numfmt(void **state)
{
    struct {
        double x;
        const char *want;
    } cases[] = {
        { 1154.3333333333333, "1154.3333333333333" },
        { 1154.6666666666667, "1154.6666666666667" },
        { 1155.0, "1155" },
        { 0.1, "0.1" },
        { 1.0 / 3.0, "0.3333333333333333" },
        { 2147483647.0, "2147483647" },
        { 1316.6666666666667, "1316.6666666666667" },
        { 5e-324, "5e-324" },
        { 0.0, "0" },
        { -2.5, "-2.5" },
        { NAN, "null" },
        { INFINITY, "null" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[40];
        numfmt_double(cases[i].x, out, sizeof out);
        assert_string_equal(out, cases[i].want);
    }
    /* Round trip over many values. */
    unsigned seed = 7;
    for (int i = 0; i < 100000; i++) {
        seed = seed * 1103515245u + 12345u;
        double x = (double)(seed % 100000000) / (double)(1 + seed % 997);
        char out[40];
        numfmt_double(x, out, sizeof out);
        assert_true(strtod(out, NULL) == x);
    }
}

static void test_utf8(void **state)
{
    assert_true(utf8_valid("abc", 3));
    assert_true(utf8_valid("\xC3\x85RHUS", 6));
    assert_true(utf8_valid("\xF0\x9F\x98\x80", 4));
    assert_false(utf8_valid("\xFF", 1));
    assert_false(utf8_valid("\xC0\xAF", 2));         /* overlong */
    assert_false(utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    assert_false(utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(utf8_valid("\xC3", 1));             /* truncated */
}

static void test_json_string(void **state)
{
    struct dynbuf b;
    dynbuf_init(&b, 1024);
    assert_int_equal(dynbuf_add_json_string(&b, "a\"b\\c\n\x01\xff", 8), 0);
    assert_string_equal(b.buf, "\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\"");
    dynbuf_free(&b);
}

static void test_dynbuf_max(void **state)
{
    struct dynbuf b;
    dynbuf_init(&b, 8);
    assert_int_equal(dynbuf_adds(&b, "12345678"), 0);
    assert_int_equal(dynbuf_adds(&b, "9"), -1);
    assert_int_equal(b.len, 8);
    assert_int_equal(dynbuf_printf(&b, "%d", 1), -1);
    dynbuf_free(&b);
}

static void test_rates_render(void **state)
{
    int32_t from = date_from_civil(2021, 1, 1), to = date_from_civil(2021, 1, 4);
    /* Day 3: PostgreSQL's text passes through; day 1: fewer than 3 prices. */
    struct rates_day days[] = {
        { .offset = 3, .count = 3, .avg = 0.0, .avg_text = "1154.3333333333333" },
        { .offset = 1, .count = 2, .avg = 10.5, .avg_text = "" },
    };
    size_t len;
    char *body = rates_render(from, to, days, 2, &len);
    assert_non_null(body);
    assert_string_equal(
        body,
        "{\"rates\": [{\"count\": 3, \"day\": \"2021-01-04\", \"price\": 1154.3333333333333}, "
        "{\"count\": null, \"day\": \"2021-01-03\", \"price\": null}, "
        "{\"count\": 2, \"day\": \"2021-01-02\", \"price\": null}, "
        "{\"count\": null, \"day\": \"2021-01-01\", \"price\": null}]}");
    assert_int_equal(len, strlen(body));
    free(body);
    /* Without text (or with text that is not a plain number), the double is formatted. */
    struct rates_day odd[] = { { .offset = 0, .count = 4, .avg = 1155.0, .avg_text = "1.155e3" } };
    body = rates_render(from, from, odd, 1, &len);
    assert_string_equal(body,
                        "{\"rates\": [{\"count\": 4, \"day\": \"2021-01-01\", \"price\": 1155}]}");
    free(body);
    body = rates_render(from, from, NULL, 0, &len);
    assert_string_equal(
        body, "{\"rates\": [{\"count\": null, \"day\": \"2021-01-01\", \"price\": null}]}");
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numfmt),       cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_json_string),  cmocka_unit_test(test_dynbuf_max),
        cmocka_unit_test(test_rates_render),
    };
    return cmocka_run_group_tests_name("format", tests, NULL, NULL);
}
