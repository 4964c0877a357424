/* test_rowparse_csv.c: the CSV parser over good and malformed bodies, at every chunking. */
#include "rowparse_check.h"

static const struct rp_case csv_cases[] = {
    { "one row", "CNSGH,NLRTM,2016-01-01,100\n", 0, "L1:CNSGH,NLRTM,2016-01-01,100;", NULL, 0 },
    { "header skipped", "orig_code,dest_code,day,price\nA,B,2016-01-02,7\n", 0,
      "L2:A,B,2016-01-02,7;", NULL, 0 },
    { "quoted header skipped", "\"orig_code\",dest_code,\"day\",price\nA,B,2016-01-02,7\n", 0,
      "L2:A,B,2016-01-02,7;", NULL, 0 },
    { "header only on the first line", "A,B,2016-01-02,7\norig_code,dest_code,day,price\n", 0,
      "L1:A,B,2016-01-02,7;E2:day;E2:price;", "day \"day\" is not a date", 0 },
    { "header with other names", "orig,dest,day,price\n", 0, "E1:day;E1:price;", NULL, 0 },
    { "no final newline", "A,B,2016-01-02,7\nC,D,2016-01-03,8", 0,
      "L1:A,B,2016-01-02,7;L2:C,D,2016-01-03,8;", NULL, 0 },
    { "CRLF", "orig_code,dest_code,day,price\r\nA,B,2016-01-02,7\r\nC,D,2016-01-03,8\r\n", 0,
      "L2:A,B,2016-01-02,7;L3:C,D,2016-01-03,8;", NULL, 0 },
    { "CR at the very end", "A,B,2016-01-02,7\r", 0, "L1:A,B,2016-01-02,7;", NULL, 0 },
    { "bare CR", "A,B,2016-01-02,7\rC,D,2016-01-03,8\n", 0, "E1:body;",
      "carriage return not followed by line feed", 0 },
    { "BOM", "\xEF\xBB\xBForig_code,dest_code,day,price\nA,B,2016-01-02,7\n", 0,
      "L2:A,B,2016-01-02,7;", NULL, 0 },
    { "BOM then data",
      "\xEF\xBB\xBF"
      "A,B,2016-01-02,7\n",
      0, "L1:A,B,2016-01-02,7;", NULL, 0 },
    { "half a BOM is data",
      "\xEF\xBB"
      "A,B,2016-01-02,7\n",
      0, "E1:orig_code;", "not valid UTF-8", 0 },
    { "BOM alone", "\xEF\xBB\xBF", 0, "", NULL, 0 },
    { "two bytes only", "\xEF\xBB", 0, "E1:row;", "found 1", 0 },
    { "empty body", "", 0, "", NULL, 0 },
    { "blank lines ignored", "\n\r\nA,B,2016-01-02,7\n\n\nC,D,2016-01-03,8\n\n", 0,
      "L3:A,B,2016-01-02,7;L6:C,D,2016-01-03,8;", NULL, 0 },
    { "blank line then header", "\norig_code,dest_code,day,price\n", 0, "", NULL, 0 },
    { "spaces line", "  \n", 0, "E1:row;", "expected 4 fields", 0 },
    { "quoted fields", "\"A\",\"B\",\"2016-01-02\",\"7\"\n", 0, "L1:A,B,2016-01-02,7;", NULL, 0 },
    { "escaped quotes", "\"A\"\"x\",\"\"\"\",2016-01-02,7\n", 0, "L1:A\"x,\",2016-01-02,7;", NULL,
      0 },
    { "comma in quotes", "\"A,1\",B,2016-01-02,7\n", 0, "L1:A,1,B,2016-01-02,7;", NULL, 0 },
    { "newline in quotes counts lines",
      "\"A\nB\",C,2016-01-02,7\nD,E,2016-01-02,8\n\"F\r\nG\",H,2016-01-02,9\n", 0,
      "L1:A\\x0AB,C,2016-01-02,7;L3:D,E,2016-01-02,8;L4:F\\x0D\\x0AG,H,2016-01-02,9;", NULL, 0 },
    { "unterminated quote", "A,B,2016-01-02,7\n\"C,D,2016-01-03,8\nE,F,2016-01-03,9\n", 0,
      "L1:A,B,2016-01-02,7;E2:body;", "unterminated quoted field", 0 },
    { "quote inside unquoted", "A\"x,B,2016-01-02,7\nC,D,2016-01-03,8\n", 0,
      "E1:body;L2:C,D,2016-01-03,8;", "quote inside an unquoted field", 0 },
    { "junk after closing quote", "\"A\"x,B,2016-01-02,7\nC,D,2016-01-03,8\n", 0,
      "E1:body;L2:C,D,2016-01-03,8;", "after a closing quote", 0 },
    { "empty quoted code", "\"\",B,2016-01-02,7\n", 0, "E1:orig_code;", "orig_code is empty", 0 },
    { "empty dest", "A,,2016-01-02,7\n", 0, "E1:dest_code;", "dest_code is empty", 0 },
    { "missing field", "A,B,2016-01-02\n", 0, "E1:row;", "found 3", 0 },
    { "extra field", "A,B,2016-01-02,7,8\n", 0, "E1:row;", "found 5", 0 },
    { "trailing comma", "A,B,2016-01-02,7,\n", 0, "E1:row;", "found 5", 0 },
    { "one field", "A\n", 0, "E1:row;", "found 1", 0 },
    { "embedded NUL in code", RP_BIN("A\0B,C,2016-01-02,7\n"), "E1:orig_code;", "NUL", 0 },
    { "embedded NUL in price", RP_BIN("A,C,2016-01-02,7\0\n"), "E1:price;", "not an integer", 0 },
    { "invalid UTF-8", "\xC3\x28,B,2016-01-02,7\n", 0, "E1:orig_code;", "not valid UTF-8", 0 },
    { "overlong UTF-8", "A,\xC0\xAF,2016-01-02,7\n", 0, "E1:dest_code;", "not valid UTF-8", 0 },
    { "surrogate UTF-8", "\xED\xA0\x80,B,2016-01-02,7\n", 0, "E1:orig_code;", "UTF-8", 0 },
    { "valid UTF-8", "M\xC3\xBCnchen,\xE6\x9D\xB1\xE4\xBA\xAC,2016-01-02,7\n", 0,
      "L1:M\\xC3\\xBCnchen,\\xE6\\x9D\\xB1\\xE4\\xBA\\xAC,2016-01-02,7;", NULL, 0 },
    { "code of 64 bytes",
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,B,2016-01-02,7\n", 0,
      "L1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,B,2016-01-02,7;", NULL,
      0 },
    { "code of 65 bytes",
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,B,2016-01-02,7\n", 0,
      "E1:orig_code;", "longer than 64 bytes", 0 },
    { "price negative", "A,B,2016-01-02,-7\n", 0, "E1:price;", "has a sign", 0 },
    { "price plus", "A,B,2016-01-02,+7\n", 0, "E1:price;", "has a sign", 0 },
    { "price fraction", "A,B,2016-01-02,7.5\n", 0, "E1:price;", "has a fraction", 0 },
    { "price fraction zero", "A,B,2016-01-02,7.0\n", 0, "E1:price;", "has a fraction", 0 },
    { "price exponent", "A,B,2016-01-02,7e3\n", 0, "E1:price;", "has an exponent", 0 },
    { "price zero", "A,B,2016-01-02,0\n", 0, "E1:price;", "out of range", 0 },
    { "price max", "A,B,2016-01-02,2147483647\n", 0, "L1:A,B,2016-01-02,2147483647;", NULL, 0 },
    { "price max+1", "A,B,2016-01-02,2147483648\n", 0, "E1:price;", "out of range", 0 },
    { "price huge", "A,B,2016-01-02,99999999999999999999999999\n", 0, "E1:price;", "out of range",
      0 },
    { "price leading zero", "A,B,2016-01-02,007\n", 0, "E1:price;", "leading zeros", 0 },
    { "price empty", "A,B,2016-01-02,\n", 0, "E1:price;", "price is empty", 0 },
    { "price spaces", "A,B,2016-01-02, 7\n", 0, "E1:price;", "not an integer", 0 },
    { "price hex", "A,B,2016-01-02,0x10\n", 0, "E1:price;", "not an integer", 0 },
    { "day impossible", "A,B,2021-02-29,7\n", 0, "E1:day;", "does not exist", 0 },
    { "day month 13", "A,B,2021-13-01,7\n", 0, "E1:day;", "does not exist", 0 },
    { "day leap ok", "A,B,2020-02-29,7\n", 0, "L1:A,B,2020-02-29,7;", NULL, 0 },
    { "day not padded", "A,B,2021-1-1,7\n", 0, "E1:day;", "YYYY-MM-DD", 0 },
    { "day with time", "A,B,2021-01-01T00:00,7\n", 0, "E1:day;", "YYYY-MM-DD", 0 },
    { "day empty", "A,B,,7\n", 0, "E1:day;", "day is empty", 0 },
    { "every field bad", ",\xFF,2021-02-30,-1\n", 0, "E1:orig_code;E1:dest_code;E1:day;E1:price;",
      NULL, 0 },
    { "errors then rows go on", "A,B,x,7\nA,B,2016-01-02,7\nA,B\n", 0,
      "E1:day;L2:A,B,2016-01-02,7;E3:row;", NULL, 0 },
};

static void test_csv_table(void **state)
{
    rp_run_cases(ROWPARSE_CSV, csv_cases, ARRAY_LEN(csv_cases));
}

/* Rows longer than ROWPARSE_MAX_ROW are errors, skipped to the next record. */
static void test_csv_overlong(void **state)
{
    char *a = rp_fill("A,B,2016-01-02,7\nX", ROWPARSE_MAX_ROW, 'x',
                      ",B,2016-01-02,7\nC,D,2016-01-03,8\n");
    char *b = rp_fill("\"", ROWPARSE_MAX_ROW, 'y', "\nz\",B,2016-01-02,7\nC,D,2016-01-03,8");
    char *c = rp_fill("A,B,2016-01-02,", ROWPARSE_MAX_ROW, '1', "\n");
    char *d = rp_fill("\"", ROWPARSE_MAX_ROW * 2, 'y', "");
    /* exactly ROWPARSE_MAX_ROW bytes: allowed (the code is then too long, not the row) */
    char *e = rp_fill("", ROWPARSE_MAX_ROW - 17, 'Q', ",B,2016-01-02,77\n");
    const struct rp_case cases[] = {
        { "overlong unquoted", a, 0, "L1:A,B,2016-01-02,7;E2:row;L3:C,D,2016-01-03,8;",
          "longer than 4096", 0 },
        { "overlong quoted with newline", b, 0, "E1:row;L3:C,D,2016-01-03,8;", "longer than", 0 },
        { "overlong price", c, 0, "E1:row;", "longer than", 0 },
        { "overlong unterminated", d, 0, "E1:body;", "unterminated", 0 },
        { "row of exactly the maximum", e, 0, "E1:orig_code;", "longer than 64", 0 },
    };
    rp_run_cases(ROWPARSE_CSV, cases, ARRAY_LEN(cases));
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
}

static int csv_stop_row(void *ctx, const struct rowparse_row *r)
{
    int *n = ctx;
    return ++*n == 2;
}

/* on_row asking to stop makes feed return -1, and every later call too. */
static void test_csv_stop(void **state)
{
    int n = 0;
    struct rowparse *p = rowparse_new(ROWPARSE_CSV, csv_stop_row, NULL, &n);
    assert_non_null(p);
    const char *body = "A,B,2016-01-02,7\nA,B,2016-01-02,7\nA,B,2016-01-02,7\n";
    assert_int_equal(rowparse_feed(p, body, strlen(body)), -1);
    assert_int_equal(n, 2);
    assert_int_equal(rowparse_feed(p, "x", 1), -1);
    assert_int_equal(rowparse_finish(p), -1);
    assert_int_equal((int)rowparse_rows(p), 2);
    rowparse_free(p);
}

static void test_content_type(void **state)
{
    assert_int_equal(rowparse_format_from_content_type("text/csv"), ROWPARSE_CSV);
    assert_int_equal(rowparse_format_from_content_type("Text/CSV; charset=utf-8"), ROWPARSE_CSV);
    assert_int_equal(rowparse_format_from_content_type(" text/csv ;header=present"), ROWPARSE_CSV);
    assert_int_equal(rowparse_format_from_content_type("application/x-ndjson"), ROWPARSE_NDJSON);
    assert_int_equal(rowparse_format_from_content_type("application/ndjson"), ROWPARSE_NDJSON);
    assert_int_equal(rowparse_format_from_content_type("application/jsonlines"), ROWPARSE_NDJSON);
    assert_int_equal(rowparse_format_from_content_type("application/json;charset=UTF-8"),
                     ROWPARSE_JSON);
    assert_int_equal(rowparse_format_from_content_type("application/jsonx"), -1);
    assert_int_equal(rowparse_format_from_content_type("application/js"), -1);
    assert_int_equal(rowparse_format_from_content_type("text/plain"), -1);
    assert_int_equal(rowparse_format_from_content_type(""), -1);
    assert_int_equal(rowparse_format_from_content_type(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_table),
        cmocka_unit_test(test_csv_overlong),
        cmocka_unit_test(test_csv_stop),
        cmocka_unit_test(test_content_type),
    };
    return cmocka_run_group_tests_name("rowparse_csv", tests, NULL, NULL);
}
