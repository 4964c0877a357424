/* test_rowparse_json.c: the streaming JSON array parser over good and malformed bodies, at
 * every chunking. */
#include "rowparse_check.h"

#define ROW(o, d, day, price) \
    "{\"orig_code\":\"" o "\",\"dest_code\":\"" d "\",\"day\":\"" day "\",\"price\":" price "}"

static const struct rp_case js_cases[] = {
    { "one row", "[" ROW("A", "B", "2016-01-02", "7") "]", 0, "L1:A,B,2016-01-02,7;", NULL, 0 },
    { "empty array", "[]", 0, "", NULL, 0 },
    { "empty array spaced", " \r\n[ \n ]\n", 0, "", NULL, 0 },
    { "pretty printed",
      "[\n  {\n    \"orig_code\": \"A\",\n    \"dest_code\": \"B\",\n    \"day\": "
      "\"2016-01-02\",\n    \"price\": 7\n  },\n  " ROW("C", "D", "2016-01-03", "8") "\n]\n",
      0, "L2:A,B,2016-01-02,7;L8:C,D,2016-01-03,8;", NULL, 0 },
    { "one line many rows",
      "[" ROW("A", "B", "2016-01-02", "7") "," ROW("C", "D", "2016-01-03", "8") "]", 0,
      "L1:A,B,2016-01-02,7;L1:C,D,2016-01-03,8;", NULL, 0 },
    { "CRLF",
      "[\r\n" ROW("A", "B", "2016-01-02", "7") ",\r\n" ROW("C", "D", "2016-01-03", "8") "\r\n]\r\n",
      0, "L2:A,B,2016-01-02,7;L3:C,D,2016-01-03,8;", NULL, 0 },
    { "BOM", "\xEF\xBB\xBF[" ROW("A", "B", "2016-01-02", "7") "]", 0, "L1:A,B,2016-01-02,7;", NULL,
      0 },
    { "empty body", "", 0, "E1:body;", "empty body", 1 },
    { "blank body", " \n\t\r\n", 0, "E3:body;", "empty body", 1 },
    { "BOM only", "\xEF\xBB\xBF", 0, "E1:body;", "empty body", 1 },
    { "top-level object", ROW("A", "B", "2016-01-02", "7"), 0, "E1:body;", "must be a JSON array",
      1 },
    { "top-level number", "5", 0, "E1:body;", "must be a JSON array", 1 },
    { "unterminated array", "[" ROW("A", "B", "2016-01-02", "7") ",\n", 0,
      "L1:A,B,2016-01-02,7;E2:body;", "premature EOF", 1 },
    { "unterminated object", "[\n{\"orig_code\":\"A\"", 0, "E2:body;", "premature EOF", 1 },
    { "unterminated string", "[\n{\"orig_code\":\"A}]\n", 0, "E2:body;", "invalid JSON", 1 },
    { "trailing comma", "[" ROW("A", "B", "2016-01-02", "7") ",]", 0,
      "L1:A,B,2016-01-02,7;E1:body;", "invalid JSON", 1 },
    { "trailing garbage", "[]\nx", 0, "E2:body;", "trailing garbage", 1 },
    { "two arrays", "[][]", 0, "E1:body;", "trailing garbage", 1 },
    { "syntax error stops",
      "[" ROW("A", "B", "2016-01-02", "7") ",\n{\"orig_code\" \"A\"},\n" ROW("C", "D", "2016-01-03",
                                                                             "8") "]",
      0, "L1:A,B,2016-01-02,7;E2:body;", "invalid JSON", 1 },
    { "raw NUL", RP_BIN("[{\"orig_code\":\"A\0\"}]"), "E1:body;", "invalid JSON", 1 },
    { "element not object",
      "[1,\n\"x\",\nnull,\n[" ROW("A", "B", "2016-01-02", "7") "],\n" ROW("C", "D", "2016-01-03",
                                                                          "8") "]",
      0, "E1:row;E2:row;E3:row;E4:row;L5:C,D,2016-01-03,8;", "array element is a number", 0 },
    { "escapes", "[" ROW("A\\u00fc\\\"", "\\/B", "2016-01-02", "7") "]", 0,
      "L1:A\\xC3\\xBC\",/B,2016-01-02,7;", NULL, 0 },
    { "escaped NUL", "[" ROW("A\\u0000", "B", "2016-01-02", "7") "]", 0, "E1:orig_code;", "NUL",
      0 },
    { "invalid UTF-8", "[" ROW("\xF0\x28\x8C\x28", "B", "2016-01-02", "7") "]", 0, "E1:orig_code;",
      "not valid UTF-8", 0 },
    { "price negative", "[" ROW("A", "B", "2016-01-02", "-7") "]", 0, "E1:price;", "sign", 0 },
    { "price fraction", "[" ROW("A", "B", "2016-01-02", "7.25") "]", 0, "E1:price;", "fraction",
      0 },
    { "price exponent", "[" ROW("A", "B", "2016-01-02", "7e+2") "]", 0, "E1:price;", "exponent",
      0 },
    { "price overflow", "[" ROW("A", "B", "2016-01-02", "9999999999") "]", 0, "E1:price;",
      "out of range", 0 },
    { "price string", "[" ROW("A", "B", "2016-01-02", "\"7\"") "]", 0, "E1:price;", "not a string",
      0 },
    { "price object", "[" ROW("A", "B", "2016-01-02", "{\"v\":7}") "]", 0, "E1:price;",
      "not an object", 0 },
    { "day impossible", "[" ROW("A", "B", "2015-02-29", "7") "]", 0, "E1:day;", "does not exist",
      0 },
    { "code too long",
      "[" ROW("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "B",
              "2016-01-02", "7") "]",
      0, "E1:orig_code;", "longer than 64", 0 },
    { "missing key", "[{\"orig_code\":\"A\",\"dest_code\":\"B\",\"day\":\"2016-01-02\"}]", 0,
      "E1:row;", "missing key \"price\"", 0 },
    { "extra key",
      "[{\"orig_code\":\"A\",\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7,\"note\":\"x\"}"
      "]",
      0, "E1:row;", "unknown key \"note\"", 0 },
    { "duplicate key",
      "[{\"price\":1,\"orig_code\":\"A\",\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7}]",
      0, "E1:row;", "duplicate key \"price\"", 0 },
    { "errors counted, rows go on",
      "[\n" ROW("A", "B", "x", "-1") ",\n" ROW("A", "B", "2016-01-02", "7") ",\n{}\n]", 0,
      "E2:day;E2:price;L3:A,B,2016-01-02,7;E4:row;E4:row;E4:row;E4:row;", NULL, 0 },
    { "too deep",
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]"
      "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
      0, "E1:row;E1:body;", "array element is an array", 1 },
};

static void test_json_table(void **state)
{
    rp_run_cases(ROWPARSE_JSON, js_cases, ARRAY_LEN(js_cases));
}

static void test_json_limits(void **state)
{
    /* a row object of 5000 bytes (whitespace): reported, the next row still parses */
    char *a = rp_fill("[\n{\"orig_code\":\"A\",", 5000, ' ',
                      "\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7},\n" ROW(
                          "C", "D", "2016-01-03", "8") "]");
    /* a string longer than the limit between events: fatal */
    char *b = rp_fill("[\n{\"orig_code\":\"", ROWPARSE_MAX_ROW * 5, 'x', "\"}]");
    /* a long string as an array element, not inside a row */
    char *c = rp_fill("[\"", ROWPARSE_MAX_ROW * 4 + 10, 'x', "\"]");
    /* exactly ROWPARSE_MAX_ROW bytes of object */
    char *d = rp_fill("[{\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7,\"orig_code\":\"",
                      ROWPARSE_MAX_ROW - 61, 'x', "\"}]");
    char *e = rp_fill("[{\"dest_code\":\"B\",\"day\":\"2016-01-02\",\"price\":7,\"orig_code\":\"",
                      ROWPARSE_MAX_ROW - 60, 'x', "\"}]");
    const struct rp_case cases[] = {
        { "row too long", a, 0, "E2:row;L3:C,D,2016-01-03,8;", "longer than 4096", 0 },
        { "token too long", b, 0, "E2:body;", "without a complete JSON value", 1 },
        { "element string too long", c, 0, "E1:body;", "without a complete JSON value", 1 },
        { "object of exactly the maximum", d, 0, "E1:orig_code;", "longer than 64", 0 },
        { "object one byte over", e, 0, "E1:row;", "longer than 4096", 0 },
    };
    rp_run_cases(ROWPARSE_JSON, cases, ARRAY_LEN(cases));
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
}

/* A long body streams in bounded memory: 200,000 rows in 64 KB chunks. */
static int js_count(void *ctx, const struct rowparse_row *r)
{
    (*(uint64_t *)ctx)++;
    return 0;
}

static void test_json_many(void **state)
{
    const char *row = ROW("CNSGH", "NLRTM", "2016-01-02", "123") ",\n";
    size_t rl = strlen(row), n = 200000;
    char *body = malloc(rl * n + 64);
    assert_non_null(body);
    size_t len = 0;
    body[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        memcpy(body + len, row, rl);
        len += rl;
    }
    len -= 2;
    body[len++] = ']';
    uint64_t count = 0;
    struct rowparse *p = rowparse_new(ROWPARSE_JSON, js_count, NULL, &count);
    assert_non_null(p);
    for (size_t at = 0; at < len; at += 65536)
        assert_int_equal(rowparse_feed(p, body + at, len - at < 65536 ? len - at : 65536), 0);
    assert_int_equal(rowparse_finish(p), 0);
    assert_int_equal((int)count, (int)n);
    assert_int_equal((int)rowparse_errors(p), 0);
    rowparse_free(p);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_table),
        cmocka_unit_test(test_json_limits),
        cmocka_unit_test(test_json_many),
    };
    return cmocka_run_group_tests_name("rowparse_json", tests, NULL, NULL);
}
