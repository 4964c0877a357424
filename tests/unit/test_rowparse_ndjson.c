/* test_rowparse_ndjson.c: the NDJSON parser over good and malformed bodies, at every chunking. */
#include "rowparse_check.h"

#define ROW(o, d, day, price) \
    "{\"orig_code\":\"" o "\",\"dest_code\":\"" d "\",\"day\":\"" day "\",\"price\":" price "}"

static const struct rp_case nd_cases[] = {
    { "one row", ROW("A", "B", "2016-01-02", "7") "\n", 0, "L1:A,B,2016-01-02,7;", NULL, 0 },
    { "no final newline", ROW("A", "B", "2016-01-02", "7") "\n" ROW("C", "D", "2016-01-03", "8"), 0,
      "L1:A,B,2016-01-02,7;L2:C,D,2016-01-03,8;", NULL, 0 },
    { "key order free",
      "{\"price\":5,\"day\":\"2016-01-02\",\"dest_code\":\"B\",\"orig_code\":\"A\"}", 0,
      "L1:A,B,2016-01-02,5;", NULL, 0 },
    { "whitespace",
      "  { \"orig_code\" : \"A\" , \"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\": 7 }  \n",
      0, "L1:A,B,2016-01-02,7;", NULL, 0 },
    { "CRLF", ROW("A", "B", "2016-01-02", "7") "\r\n" ROW("C", "D", "2016-01-03", "8") "\r\n", 0,
      "L1:A,B,2016-01-02,7;L2:C,D,2016-01-03,8;", NULL, 0 },
    { "BOM", "\xEF\xBB\xBF" ROW("A", "B", "2016-01-02", "7") "\n", 0, "L1:A,B,2016-01-02,7;", NULL,
      0 },
    { "blank lines", "\n  \n\r\n" ROW("A", "B", "2016-01-02", "7") "\n\n\t\n", 0,
      "L4:A,B,2016-01-02,7;", NULL, 0 },
    { "empty body", "", 0, "", NULL, 0 },
    { "escapes", ROW("A\\u00fc\\\"", "\\/B", "2016-01-02", "7") "\n", 0,
      "L1:A\\xC3\\xBC\",/B,2016-01-02,7;", NULL, 0 },
    { "escaped NUL", ROW("A\\u0000", "B", "2016-01-02", "7") "\n", 0, "E1:orig_code;", "NUL", 0 },
    { "raw NUL",
      RP_BIN("{\"orig_code\":\"A\0\",\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7}\n"),
      "E1:body;", "invalid JSON", 0 },
    { "invalid UTF-8", ROW("\xC3\x28", "B", "2016-01-02", "7") "\n", 0, "E1:orig_code;",
      "not valid UTF-8", 0 },
    { "price negative", ROW("A", "B", "2016-01-02", "-7") "\n", 0, "E1:price;", "has a sign", 0 },
    { "price fraction", ROW("A", "B", "2016-01-02", "7.5") "\n", 0, "E1:price;", "fraction", 0 },
    { "price exponent", ROW("A", "B", "2016-01-02", "7e2") "\n", 0, "E1:price;", "exponent", 0 },
    { "price exponent capital", ROW("A", "B", "2016-01-02", "1E2") "\n", 0, "E1:price;", "exponent",
      0 },
    { "price overflow", ROW("A", "B", "2016-01-02", "2147483648") "\n", 0, "E1:price;",
      "out of range", 0 },
    { "price huge", ROW("A", "B", "2016-01-02", "123456789012345678901234567890") "\n", 0,
      "E1:price;", "out of range", 0 },
    { "price zero", ROW("A", "B", "2016-01-02", "0") "\n", 0, "E1:price;", "out of range", 0 },
    { "price max", ROW("A", "B", "2016-01-02", "2147483647") "\n", 0,
      "L1:A,B,2016-01-02,2147483647;", NULL, 0 },
    { "price leading zero", ROW("A", "B", "2016-01-02", "07") "\n", 0, "E1:body;", "invalid JSON",
      0 },
    { "price plus", ROW("A", "B", "2016-01-02", "+7") "\n", 0, "E1:body;", "invalid JSON", 0 },
    { "price string", ROW("A", "B", "2016-01-02", "\"7\"") "\n", 0, "E1:price;",
      "price must be a JSON integer, not a string", 0 },
    { "price null", ROW("A", "B", "2016-01-02", "null") "\n", 0, "E1:price;", "not null", 0 },
    { "price bool", ROW("A", "B", "2016-01-02", "true") "\n", 0, "E1:price;", "not a boolean", 0 },
    { "price array", ROW("A", "B", "2016-01-02", "[7]") "\n", 0, "E1:price;", "not an array", 0 },
    { "code number", "{\"orig_code\":5,\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7}\n",
      0, "E1:orig_code;", "orig_code must be a JSON string, not a number", 0 },
    { "code object",
      "{\"orig_code\":{\"a\":1},\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7}\n", 0,
      "E1:orig_code;", "not an object", 0 },
    { "day number", "{\"orig_code\":\"A\",\"dest_code\":\"B\",\"day\":20160102,\"price\":7}\n", 0,
      "E1:day;", "day must be a JSON string", 0 },
    { "day impossible", ROW("A", "B", "2016-02-30", "7") "\n", 0, "E1:day;", "does not exist", 0 },
    { "day loose", ROW("A", "B", "2016-2-3", "7") "\n", 0, "E1:day;", "YYYY-MM-DD", 0 },
    { "code empty", ROW("", "B", "2016-01-02", "7") "\n", 0, "E1:orig_code;", "empty", 0 },
    { "missing key", "{\"orig_code\":\"A\",\"dest_code\":\"B\",\"price\":7}\n", 0, "E1:row;",
      "missing key \"day\"", 0 },
    { "empty object", "{}\n", 0, "E1:row;E1:row;E1:row;E1:row;", "missing key \"orig_code\"", 0 },
    { "extra key",
      "{\"orig_code\":\"A\",\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7,\"x\":1}\n", 0,
      "E1:row;", "unknown key \"x\"", 0 },
    { "duplicate key",
      "{\"orig_code\":\"A\",\"orig_code\":\"C\",\"dest_code\":\"B\",\"day\":\"2016-01-02\","
      "\"price\":7}\n",
      0, "E1:row;", "duplicate key \"orig_code\"", 0 },
    { "not an object", "[1,2]\n\"x\"\n5\n", 0, "E1:row;E2:row;E3:row;", "line is an array", 0 },
    { "two objects on a line",
      ROW("A", "B", "2016-01-02", "7") ROW("A", "B", "2016-01-02", "7") "\n", 0,
      "L1:A,B,2016-01-02,7;E1:body;", "more than one JSON value", 0 },
    { "object over two lines",
      "{\"orig_code\":\"A\",\n\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7}\n", 0,
      "E1:body;E2:row;E2:body;", "premature EOF", 0 },
    { "unterminated string", "{\"orig_code\":\"A}\n" ROW("C", "D", "2016-01-03", "8") "\n", 0,
      "E1:body;L2:C,D,2016-01-03,8;", "invalid JSON", 0 },
    { "garbage line then good", "nope\n" ROW("C", "D", "2016-01-03", "8"), 0,
      "E1:body;L2:C,D,2016-01-03,8;", "invalid JSON", 0 },
    { "bad then good", ROW("A", "B", "x", "7") "\n" ROW("C", "D", "2016-01-03", "8") "\n", 0,
      "E1:day;L2:C,D,2016-01-03,8;", NULL, 0 },
    { "nested deep",
      "{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]"
      "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}\n",
      0, "E1:row;E1:body;", "unknown key", 0 },
};

static void test_ndjson_table(void **state)
{
    rp_run_cases(ROWPARSE_NDJSON, nd_cases, ARRAY_LEN(nd_cases));
}

static void test_ndjson_overlong(void **state)
{
    char *a = rp_fill(ROW("A", "B", "2016-01-02", "7") "\n{\"orig_code\":\"", ROWPARSE_MAX_ROW, 'x',
                      "\"}\n" ROW("C", "D", "2016-01-03", "8") "\n");
    char *b = rp_fill("{\"orig_code\":\"", ROWPARSE_MAX_ROW * 3, 'x', "");
    /* exactly ROWPARSE_MAX_ROW bytes before CRLF: a row (its code is then too long) */
    char *c = rp_fill("{\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7,\"orig_code\":\"",
                      ROWPARSE_MAX_ROW - 61, 'x', "\"}\r\n");
    const struct rp_case cases[] = {
        { "overlong line", a, 0, "L1:A,B,2016-01-02,7;E2:row;L3:C,D,2016-01-03,8;",
          "longer than 4096", 0 },
        { "overlong last line", b, 0, "E1:row;", "longer than 4096", 0 },
        { "line of exactly the maximum", c, 0, "E1:orig_code;", "longer than 64", 0 },
    };
    rp_run_cases(ROWPARSE_NDJSON, cases, ARRAY_LEN(cases));
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ndjson_table),
        cmocka_unit_test(test_ndjson_overlong),
    };
    return cmocka_run_group_tests_name("rowparse_ndjson", tests, NULL, NULL);
}
